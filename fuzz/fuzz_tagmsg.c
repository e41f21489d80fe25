/* fuzz_tagmsg.c - the reader of release tag messages (untrusted bytes from the release
 * repository): fwrel_tagmsg_decode_tag, as the auditor calls it on a raw tag's signed payload.
 * No repository or GnuPG is involved.
 *
 * Properties:
 * - it never reads beyond the payload (the copy below is exactly that long, so ASan sees it);
 * - it answers 0 or 1; with 0 a reason is given; with 1 there is none;
 * - every string field it fills is NUL-terminated within its array;
 * - parsing is deterministic;
 * - a message it reads, written again by fwrel_tagmsg_encode, reads back to the same fields
 *   (the writer and the reader agree).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/tagmsg.h"

#include "fuzz.h"

#define TERMINATED(a) CHECK(memchr((a), '\0', sizeof(a)) != NULL)

static int same(const fwrel_tagmsg *a, const fwrel_tagmsg *b)
{
    int ok = strcmp(a->product, b->product) == 0 && strcmp(a->version, b->version) == 0 &&
             strcmp(a->channel, b->channel) == 0 && a->counter == b->counter &&
             a->secure_version == b->secure_version &&
             strcmp(a->bundle_path, b->bundle_path) == 0 &&
             strcmp(a->bundle_sha, b->bundle_sha) == 0 && a->bundle_size == b->bundle_size &&
             strcmp(a->rj_sha, b->rj_sha) == 0 && strcmp(a->input_sha, b->input_sha) == 0 &&
             a->input_size == b->input_size && strcmp(a->policy_sha, b->policy_sha) == 0 &&
             a->napprovals == b->napprovals && a->approvals_required == b->approvals_required &&
             strcmp(a->audit_path, b->audit_path) == 0 &&
             strcmp(a->audit_head, b->audit_head) == 0 && a->audit_entries == b->audit_entries;
    for (size_t i = 0; ok && i < a->napprovals; i++)
        ok = strcmp(a->approvals[i], b->approvals[i]) == 0;
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fwrel_tagmsg a, b, c;
    char err[256], err2[256];
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    int ok = fwrel_tagmsg_decode_tag(&a, err, sizeof(err), copy, size);
    CHECK(ok == 0 || ok == 1);
    CHECK(ok ? err[0] == '\0' : err[0] != '\0');
    TERMINATED(a.product);
    TERMINATED(a.version);
    TERMINATED(a.channel);
    TERMINATED(a.bundle_path);
    TERMINATED(a.audit_path);
    TERMINATED(a.audit_head);
    CHECK(a.napprovals <= FWREL_TAGMSG_APPROVALS_MAX);
    for (size_t i = 0; i < a.napprovals; i++)
        TERMINATED(a.approvals[i]);
    int ok2 = fwrel_tagmsg_decode_tag(&b, err2, sizeof(err2), copy, size);
    CHECK(ok2 == ok && strcmp(err, err2) == 0 && same(&a, &b));
    if (ok) {
        char *tm = NULL, *cm = NULL;
        if (fwrel_tagmsg_encode(&tm, &cm, &a, "t") == 0) {
            CHECK(fwrel_tagmsg_decode(&c, err2, sizeof(err2), (const uint8_t *)tm, strlen(tm)) ==
                  1);
            CHECK(same(&a, &c));
        }
        free(tm);
        free(cm);
    }
    free(copy);
    return 0;
}
