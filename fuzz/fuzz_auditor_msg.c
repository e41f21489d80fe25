/* fuzz_auditor_msg.c - the auditor's reader of release tag messages (untrusted bytes from the
 * release repository): fwrel_auditor_parse_tag_message. No repository or GnuPG is involved.
 *
 * Properties:
 * - it never reads beyond the payload (the copy below is exactly that long, so ASan sees it);
 * - it answers 0 or 1; with 0 a reason is given; with 1 there is none;
 * - every string field it fills is NUL-terminated within its array;
 * - parsing is deterministic.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/auditor.h"

#include "fuzz.h"

#define TERMINATED(a) CHECK(memchr((a), '\0', sizeof(a)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fwrel_audit_release a, b;
    char err[256], err2[256];
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    int ok = fwrel_auditor_parse_tag_message(&a, err, sizeof(err), copy, size);
    CHECK(ok == 0 || ok == 1);
    CHECK(ok ? err[0] == '\0' : err[0] != '\0');
    TERMINATED(a.product);
    TERMINATED(a.version);
    TERMINATED(a.channel);
    TERMINATED(a.audit_path);
    TERMINATED(a.audit_head);
    CHECK(a.napprovals <= sizeof(a.approvals) / sizeof(a.approvals[0]));
    for (size_t i = 0; i < a.napprovals; i++)
        TERMINATED(a.approvals[i]);
    int ok2 = fwrel_auditor_parse_tag_message(&b, err2, sizeof(err2), copy, size);
    CHECK(ok2 == ok && strcmp(err, err2) == 0);
    CHECK(strcmp(a.product, b.product) == 0 && strcmp(a.version, b.version) == 0 &&
          a.counter == b.counter && a.secure_version == b.secure_version);
    free(copy);
    return 0;
}
