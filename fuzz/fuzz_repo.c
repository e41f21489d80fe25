/* fuzz_repo.c - the release repository's parser of untrusted bytes: signed tag objects
 * (fwrel_repo_tag_parse, fwrel_repo_tag_split). No repository or GnuPG is involved.
 *
 * Properties:
 * - split and parse never read outside the input and answer 0, FWREL_EVERIFY or FWREL_EFORMAT;
 * - a split point is the start of a line beginning with the PGP armor and no later line does;
 * - a parsed tag has a 40-lower-hex object id, a non-empty name without newline or NUL that is
 *   the input's "tag" line, a payload ending in the header's blank line or the message, and
 *   parsing is deterministic; a failure leaves the info zeroed.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fwrel/repo.h"

#include "fuzz.h"

static const char armor[] = "-----BEGIN PGP SIGNATURE-----";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t split = 0;
    int rc = fwrel_repo_tag_split(&split, data, size);
    CHECK(rc == 0 || rc == FWREL_EVERIFY);
    if (rc == 0) {
        CHECK(split + sizeof(armor) - 1 <= size);
        CHECK(memcmp(data + split, armor, sizeof(armor) - 1) == 0);
        CHECK(split == 0 || data[split - 1] == '\n');
        for (size_t i = split + 1; i + sizeof(armor) - 1 <= size; i++)
            CHECK(data[i - 1] != '\n' || memcmp(data + i, armor, sizeof(armor) - 1) != 0);
    } else {
        CHECK(split == 0);
    }

    fwrel_repo_tag_info info, again;
    rc = fwrel_repo_tag_parse(&info, data, size);
    CHECK(rc == 0 || rc == FWREL_EVERIFY || rc == FWREL_EFORMAT);
    if (rc != 0) {
        static const fwrel_repo_tag_info zero;
        CHECK(memcmp(&info, &zero, sizeof(info)) == 0);
        return 0;
    }
    CHECK(info.payload_len == split);
    CHECK(strlen(info.object) == 40);
    for (size_t i = 0; i < 40; i++)
        CHECK((info.object[i] >= '0' && info.object[i] <= '9') ||
              (info.object[i] >= 'a' && info.object[i] <= 'f'));
    size_t n = strlen(info.name);
    CHECK(n > 0 && n < sizeof(info.name) && strchr(info.name, '\n') == NULL);
    CHECK(memcmp(data, "object ", 7) == 0 && memcmp(data + 7, info.object, 40) == 0);
    CHECK(memcmp(data + 48, "type commit\ntag ", 16) == 0);
    CHECK(memcmp(data + 64, info.name, n) == 0 && data[64 + n] == '\n');
    CHECK(info.time >= 0);
    CHECK(fwrel_repo_tag_parse(&again, data, size) == 0);
    CHECK(memcmp(&info, &again, sizeof(info)) == 0);
    return 0;
}
