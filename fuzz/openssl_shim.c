/*
 * openssl_shim.c - OpenSSL's base64 writes into fwrel's buffers, made visible to AddressSanitizer
 * (linked into every fuzz target).
 *
 * libcrypto is not instrumented: a write it makes past the end of a caller's buffer goes
 * unnoticed, which is how `uint8_t sig[520]` in fwrel_manifest_verify took 522 bytes without a
 * report (issue 13). These definitions take the place of libcrypto's for the code linked into the
 * target: they let the real function write into a heap buffer of its own and copy the result
 * with memcpy, which ASan checks against the caller's buffer.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

typedef int (*block_fn)(unsigned char *t, const unsigned char *f, int n);

static int through(const char *name, unsigned char *t, const unsigned char *f, int n, size_t room)
{
    static block_fn fns[2];
    int which = name[4] == 'D'; /* EVP_DecodeBlock : EVP_EncodeBlock */
    if (fns[which] == NULL)
        fns[which] = (block_fn)dlsym(RTLD_NEXT, name);
    if (fns[which] == NULL || n < 0)
        abort();
    unsigned char *tmp = malloc(room);
    if (tmp == NULL)
        abort();
    int r = fns[which](tmp, f, n);
    if (which && r > 0)
        memcpy(t, tmp, (size_t)r);
    else if (!which && r >= 0)
        memcpy(t, tmp, (size_t)r + 1); /* and its NUL */
    free(tmp);
    return r;
}

int EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n)
{
    return through("EVP_DecodeBlock", t, f, n, (size_t)n / 4 * 3 + 3);
}

int EVP_EncodeBlock(unsigned char *t, const unsigned char *f, int n)
{
    return through("EVP_EncodeBlock", t, f, n, ((size_t)n + 2) / 3 * 4 + 1);
}
