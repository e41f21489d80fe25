/* fuzz_espimg.c - the image parser on arbitrary bytes, with the digest tap and a sink. */
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "fwrel/espimg.h"

#include "fuzz.h"

static int count_sink(void *ctx, const uint8_t *p, size_t n)
{
    (void)p;
    *(size_t *)ctx += n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwrel_src src;
    fwrel_espimg img;
    size_t seen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    fwrel_espimg_opts opts = {count_sink, &seen, md};
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        __builtin_trap();
    fwrel_src_mem(&src, data, size);
    if (fwrel_espimg_parse(&img, &src, &opts) == 0) {
        /* A sound parse consumed exactly image_len bytes, all of them through the sink. */
        if (seen != img.image_len || img.image_len > size || img.segment_count > 16)
            __builtin_trap();
        int sound = img.checksum_ok && (!img.hash_appended || img.sha256_ok);
        if ((fwrel_espimg_check_integrity(&img) == 0) != sound)
            __builtin_trap();
    }
    EVP_MD_CTX_free(md);
    return 0;
}
