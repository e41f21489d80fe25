/* fuzz_sbv1.c - the SBv1 block and espsecure-compatible verification on arbitrary files. */
#include <stddef.h>
#include <stdint.h>

#include "fwrel/keystore.h"
#include "fwrel/sbv1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fwrel_pkey *key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwrel_src src;
    uint32_t version;
    uint8_t sig[64];
    if (key == NULL && fwrel_key_generate(&key, FWREL_KEY_ECDSA256) != 0)
        __builtin_trap();
    if (fwrel_sbv1_parse_block(&version, sig, data, size) == 0 && size != FWREL_SBV1_BLOCK_LEN)
        __builtin_trap();
    fwrel_src_mem(&src, data, size);
    if (fwrel_sbv1_verify_compat(NULL, &src, key) == 0)
        __builtin_trap(); /* nobody can sign with a key made here */
    return 0;
}
