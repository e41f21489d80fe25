/* fuzz_manifest.c - strict manifest body decoding and signed-manifest verification. */
#include <stddef.h>
#include <stdint.h>

#include "fwrel/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fwrel_pkey *key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwrel_manifest m;
    if (key == NULL && fwrel_key_generate(&key, FWREL_KEY_ECDSA256) != 0)
        __builtin_trap();
    fwrel_manifest_trust trust = {{key}, 1, 1};
    if (fwrel_manifest_decode(&m, data, size) == 0) {
        char *again = NULL;
        size_t len;
        /* A body that decodes re-encodes to the same bytes (it was canonical). */
        if (fwrel_manifest_encode(&again, &len, &m) != 0 || len != size || __builtin_memcmp(again, data, size) != 0)
            __builtin_trap();
        __builtin_free(again);
    }
    if (fwrel_manifest_verify(&m, NULL, data, size, &trust) == 0)
        __builtin_trap(); /* nobody holds the key made here */
    return 0;
}
