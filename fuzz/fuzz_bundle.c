/* fuzz_bundle.c - the strict bundle reader and SHA256SUMS checker on arbitrary bytes; a bundle
 * that reads is written again and must read back to the same members. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/bundle.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwrel_bundle *b = NULL, *again = NULL;
    uint8_t *tar = NULL;
    size_t len = 0;
    if (fwrel_bundle_read_mem(&b, data, size) != 0)
        return 0;
    /* What reads is on the allow-list, sorted, within the caps. */
    for (size_t i = 0; i < b->n; i++) {
        if (fwrel_bundle_name_check(b->members[i].name) != 0 ||
            b->members[i].len > fwrel_bundle_member_max(b->members[i].name))
            abort();
        if (i > 0 && strcmp(b->members[i - 1].name, b->members[i].name) >= 0)
            abort();
    }
    if (fwrel_bundle_check_sums(b) == 0) {
        /* Sums that check are exactly the ones the library makes. */
        char *sums = NULL;
        size_t slen = 0;
        const fwrel_bundle_member *m = fwrel_bundle_find(b, "SHA256SUMS");
        if (fwrel_bundle_sums(&sums, &slen, b->members, b->n) != 0 || !m || m->len != slen ||
            memcmp(m->data, sums, slen) != 0)
            abort();
        free(sums);
    }
    int64_t mtime = b->mtime >= 0 && b->mtime <= FWREL_BUNDLE_MTIME_MAX ? b->mtime : 0;
    if (fwrel_bundle_write_mem(&tar, &len, b->members, b->n, mtime) != 0)
        abort();
    if (fwrel_bundle_read_mem(&again, tar, len) != 0 || again->n != b->n)
        abort();
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(again->members[i].name, b->members[i].name) != 0 ||
            again->members[i].len != b->members[i].len ||
            (b->members[i].len &&
             memcmp(again->members[i].data, b->members[i].data, b->members[i].len) != 0))
            abort();
    free(tar);
    fwrel_bundle_free(again);
    fwrel_bundle_free(b);
    return 0;
}
