/* fuzz_audit.c - the audit log verifier on arbitrary bytes (streamed from a temporary file). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/audit.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = tmpfile();
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    rewind(f);
    uint64_t count = 0;
    char head[FWREL_AUDIT_HEAD_LEN + 1];
    if (fwrel_audit_verify_stream(f, NULL, 0, &count, head) == 0) {
        /* A valid log has one entry per newline and its head verifies as expected. */
        uint64_t lines = 0;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        if (lines != count || strlen(head) != FWREL_AUDIT_HEAD_LEN)
            abort();
        rewind(f);
        if (fwrel_audit_verify_stream(f, head, count, NULL, NULL) != 0)
            abort();
    }
    fclose(f);
    return 0;
}
