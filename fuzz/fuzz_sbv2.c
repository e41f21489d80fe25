/* fuzz_sbv2.c - sector parsing, embedded-key extraction and espsecure-compatible verification. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fwrel/key.h"
#include "fwrel/report.h"
#include "fwrel/sbv2.h"

#include "fuzz.h"

static fwrel_pkey *rsa, *ec;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t sector[FWREL_SBV2_SECTOR_LEN];
    fwrel_sbv2_sector sec;
    fwrel_src src;
    if (rsa == NULL && (fwrel_key_generate(&rsa, FWREL_KEY_RSA3072) != 0 ||
                        fwrel_key_generate(&ec, FWREL_KEY_ECDSA256) != 0))
        __builtin_trap();
    memset(sector, 0xFF, sizeof(sector));
    memcpy(sector, data, size < sizeof(sector) ? size : sizeof(sector));
    fwrel_sbv2_parse_sector(&sec, sector);
    for (int i = 0; i < FWREL_SBV2_MAX_BLOCKS; i++) {
        fwrel_pkey *k = NULL;
        if (sec.blocks[i].scheme != FWREL_SCHEME_NONE &&
            fwrel_sbv2_block_key(&k, &sec.blocks[i]) == 0) {
            uint8_t digest[48] = {0};
            if (fwrel_sbv2_block_verify(&sec.blocks[i], digest, sec.blocks[i].image_digest_len,
                                        NULL) == 0)
                __builtin_trap(); /* no signature verifies over an all-zero digest */
            fwrel_key_free(k);
        }
    }
    /* Keys made here sign nothing, so nothing may verify with them. */
    fwrel_src_mem(&src, data, size);
    if (fwrel_sbv2_verify_compat(NULL, &src, rsa, 0) == 0)
        __builtin_trap();
    fwrel_src_mem(&src, data, size);
    if (fwrel_sbv2_verify_compat(NULL, &src, ec, 1) == 0)
        __builtin_trap();
    return 0;
}
