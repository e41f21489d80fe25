/* fuzz_keystore_index.c - the keystore index parser (strict JSON, entry rules) on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fwrel/keystore.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t count = 0;
    if (fwrel_keystore_index_check(data, size, &count) == 0 && count > FWREL_KS_MAX_ENTRIES)
        abort();
    return 0;
}
