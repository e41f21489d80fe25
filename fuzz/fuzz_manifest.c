/* fuzz_manifest.c - strict manifest body decoding and signed-manifest verification. */
#include <stddef.h>
#include <stdint.h>

#include "fwrel/manifest.h"

#include "fuzz.h"

#include <stdlib.h>

#include <openssl/evp.h>

#include "fwrel/io.h"

static fwrel_pkey *key, *x25519;

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
        if (fwrel_manifest_encode(&again, &len, &m) != 0 || len != size ||
            __builtin_memcmp(again, data, size) != 0)
            __builtin_trap();
        __builtin_free(again);
    }
    if (fwrel_manifest_verify(&m, NULL, data, size, &trust) == 0)
        __builtin_trap(); /* nobody holds the key made here */
    /* The envelope: nothing opens without the recipient's key. */
    uint8_t *plain = NULL;
    size_t plen;
    if (x25519 == NULL && (x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519")) == NULL)
        __builtin_trap();
    if (fwrel_manifest_open(&plain, &plen, data, size, key) == 0 ||
        fwrel_manifest_open(&plain, &plen, data, size, x25519) == 0)
        __builtin_trap();
    return 0;
}
