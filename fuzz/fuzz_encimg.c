/* fuzz_encimg.c - the encrypted-image header and the device-side decryption of arbitrary
 * files: nothing may be published (no key made here encrypted them). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fwrel/encimg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fwrel_pkey *rsa, *ec;
static char out[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwrel_encimg_header h;
    fwrel_src src;
    if (rsa == NULL) {
        if (fwrel_key_generate(&rsa, FWREL_KEY_RSA3072) != 0 ||
            fwrel_key_generate(&ec, FWREL_KEY_ECDSA256) != 0)
            __builtin_trap();
        snprintf(out, sizeof(out), "/tmp/fwrel-fuzz-encimg.%d", (int)getpid());
    }
    if (size >= FWREL_ENCIMG_HEADER_LEN && fwrel_encimg_parse_header(&h, data) == 0 &&
        h.magic != FWREL_ENCIMG_MAGIC)
        __builtin_trap();
    fwrel_src_mem(&src, data, size);
    if (fwrel_encimg_decrypt(out, 0, &src, rsa) == 0)
        __builtin_trap();
    fwrel_src_mem(&src, data, size);
    if (fwrel_encimg_decrypt(out, 0, &src, ec) == 0)
        __builtin_trap();
    if (access(out, F_OK) == 0)
        __builtin_trap(); /* a failed decryption left plaintext behind */
    return 0;
}
