/* encimg.c - esp_encrypted_img 2.7.1 (encimg.h; spec/esp-formats.md section 4). */
#include "fwrel/encimg.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "util.h"

/* Header offsets (spec 4.1). */
enum { H_KEY = 4, H_IV = 388, H_SIZE = 404, H_TAG = 408, H_RESERVED = 424 };
#define ECC_INFO "_esp_enc_img_ecc"
#define CHUNK    65536

int fwrel_encimg_parse_header(fwrel_encimg_header *h, const uint8_t buf[FWREL_ENCIMG_HEADER_LEN])
{
    FWREL_ASSERT_ARG(h != NULL && buf != NULL);
    h->magic = fwrel_le32(buf);
    if (h->magic != FWREL_ENCIMG_MAGIC)
        return fwrel_error_set(FWREL_EFORMAT, "Magic Verification Failed (0x%08x, expected 0x%08x)",
                               h->magic, FWREL_ENCIMG_MAGIC);
    memcpy(h->key_field, buf + H_KEY, sizeof(h->key_field));
    memcpy(h->iv, buf + H_IV, 16);
    h->size = fwrel_le32(buf + H_SIZE);
    memcpy(h->tag, buf + H_TAG, 16);
    return 0;
}

int fwrel_encimg_key_scheme(int *scheme, const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(scheme != NULL && key != NULL);
    int type, error = fwrel_key_type_of(&type, key);
    if (error)
        return error;
    if (type == FWREL_KEY_RSA3072)
        *scheme = FWREL_ENCIMG_RSA3072;
    else if (type == FWREL_KEY_ECDSA256)
        *scheme = FWREL_ENCIMG_ECC256;
    else
        return fwrel_error_set(FWREL_EKEY,
                               "esp_encrypted_img takes an RSA-3072 or an EC P-256 key, "
                               "not %s",
                               fwrel_key_type_name(type));
    return 0;
}

/* ECDH X coordinate of (priv, peer), then HKDF-SHA256 (spec 4.1, ECIES derivation). */
static int ecc_derive(uint8_t aes_key[32], const fwrel_pkey *priv, const fwrel_pkey *peer,
                      const uint8_t salt[32])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)priv, NULL);
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    uint8_t shared[32];
    size_t n = sizeof(shared);
    int error = FWREL_EKEY;
    if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
        EVP_PKEY_derive_set_peer(ctx, (EVP_PKEY *)peer) != 1 ||
        EVP_PKEY_derive(ctx, shared, &n) != 1 || n != 32) {
        error = fwrel_error_set_openssl(FWREL_EVERIFY, "ECDH failed");
        goto done;
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, shared, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, ECC_INFO, strlen(ECC_INFO)),
        OSSL_PARAM_construct_end(),
    };
    if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL ||
        (kctx = EVP_KDF_CTX_new(kdf)) == NULL || EVP_KDF_derive(kctx, aes_key, 32, params) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "HKDF failed");
        goto done;
    }
    error = 0;
done:
    OPENSSL_cleanse(shared, sizeof(shared));
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    EVP_PKEY_CTX_free(ctx);
    return error;
}

/* An EC P-256 public key from X||Y big-endian. */
static int ec_from_xy(fwrel_pkey **out, const uint8_t xy[64])
{
    return fwrel_key_parse_public(out, xy, 64, 1);
}

static int gcm_init(EVP_CIPHER_CTX **out, int enc, const uint8_t key[32], const uint8_t iv[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    /* A 16-byte IV: J0 = GHASH(IV), not the 96-bit fast path (spec 4.1). */
    if (c == NULL || EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 16, NULL) != 1 ||
        EVP_CipherInit_ex(c, NULL, NULL, key, iv, enc) != 1) {
        EVP_CIPHER_CTX_free(c);
        return fwrel_error_set_openssl(FWREL_EKEY, "AES-GCM setup failed");
    }
    *out = c;
    return 0;
}

struct fwrel_encimg_enc {
    fwrel_out *out;
    EVP_CIPHER_CTX *gcm;
    uint64_t base, size, done;
    uint8_t *ct;
};

void fwrel_encimg_enc_free(fwrel_encimg_enc *e)
{
    if (e == NULL)
        return;
    EVP_CIPHER_CTX_free(e->gcm); /* wipes the key schedule */
    free(e->ct);
    free(e);
}

int fwrel_encimg_enc_begin(fwrel_encimg_enc **enc, fwrel_out *out, const fwrel_pkey *key,
                           uint64_t size)
{
    FWREL_ASSERT_ARG(enc != NULL && out != NULL && key != NULL);
    uint8_t hdr[FWREL_ENCIMG_HEADER_LEN] = {0};
    uint8_t *aes = OPENSSL_secure_malloc(32);
    EVP_PKEY_CTX *pctx = NULL;
    fwrel_pkey *eph = NULL;
    fwrel_encimg_enc *e = calloc(1, sizeof(*e));
    int scheme, error;

    *enc = NULL;
    if (aes == NULL || e == NULL || (e->ct = malloc(CHUNK)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    e->out = out;
    e->base = fwrel_out_size(out);
    e->size = size;
    if ((error = fwrel_encimg_key_scheme(&scheme, key)) != 0)
        goto done;
    if (size > UINT32_MAX) {
        error =
            fwrel_error_set(FWREL_EFORMAT, "larger than 4 GiB: the header's size field is 32 bits");
        goto done;
    }
    fwrel_put_le32(hdr, FWREL_ENCIMG_MAGIC);
    if (RAND_bytes(aes, 32) != 1 || RAND_bytes(hdr + H_IV, 16) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "no random bytes");
        goto done;
    }
    if (scheme == FWREL_ENCIMG_RSA3072) {
        size_t n = 384;
        if ((pctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)key, NULL)) == NULL ||
            EVP_PKEY_encrypt_init(pctx) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1 ||
            EVP_PKEY_encrypt(pctx, hdr + H_KEY, &n, aes, 32) != 1 || n != 384) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "RSA key wrap failed");
            goto done;
        }
    } else {
        uint8_t xy[64];
        if ((error = fwrel_key_generate(&eph, FWREL_KEY_ECDSA256)) != 0 ||
            (error = fwrel_key_raw64(xy, eph)) != 0)
            goto done;
        memcpy(hdr + H_KEY, xy, 64);
        if (RAND_bytes(hdr + H_KEY + 64, 32) != 1) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "no random bytes");
            goto done;
        }
        if ((error = ecc_derive(aes, eph, key, hdr + H_KEY + 64)) != 0)
            goto done;
    }
    fwrel_put_le32(hdr + H_SIZE, (uint32_t)size);
    /* The tag is known only at the end: write the header now, complete it then. */
    if ((error = fwrel_out_write(out, hdr, sizeof(hdr))) != 0 ||
        (error = gcm_init(&e->gcm, 1, aes, hdr + H_IV)) != 0)
        goto done;
    *enc = e;
    e = NULL;
done:
    OPENSSL_secure_clear_free(aes, 32);
    EVP_PKEY_CTX_free(pctx);
    fwrel_key_free(eph);
    fwrel_encimg_enc_free(e);
    return error;
}

int fwrel_encimg_enc_update(void *ctx, const uint8_t *data, size_t len)
{
    fwrel_encimg_enc *e = ctx;
    FWREL_ASSERT_ARG(e != NULL && (data != NULL || len == 0));
    if (len > e->size - e->done)
        return fwrel_error_set(FWREL_EUSAGE, "more bytes than announced (%llu)",
                               (unsigned long long)e->size);
    while (len > 0) {
        size_t chunk = len < CHUNK ? len : CHUNK;
        int outl, error;
        if (EVP_EncryptUpdate(e->gcm, e->ct, &outl, data, (int)chunk) != 1)
            return fwrel_error_set_openssl(FWREL_EKEY, "AES-GCM failed");
        if ((error = fwrel_out_write(e->out, e->ct, (size_t)outl)) != 0)
            return error;
        data += chunk;
        len -= chunk;
        e->done += chunk;
    }
    return 0;
}

int fwrel_encimg_enc_finish(fwrel_encimg_enc *e)
{
    FWREL_ASSERT_ARG(e != NULL);
    uint8_t tag[16];
    int outl, error;
    if (e->done != e->size)
        error = fwrel_error_set(FWREL_EUSAGE, "%llu bytes encrypted, %llu announced",
                                (unsigned long long)e->done, (unsigned long long)e->size);
    else if (EVP_EncryptFinal_ex(e->gcm, e->ct, &outl) != 1 ||
             EVP_CIPHER_CTX_ctrl(e->gcm, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
        error = fwrel_error_set_openssl(FWREL_EKEY, "AES-GCM failed");
    else
        error = fwrel_out_pwrite(e->out, e->base + H_TAG, tag, 16);
    fwrel_encimg_enc_free(e);
    return error;
}

int fwrel_encimg_encrypt(fwrel_out *out, fwrel_src *src, const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(out != NULL && src != NULL && key != NULL);
    fwrel_encimg_enc *e = NULL;
    uint8_t *buf = malloc(CHUNK);
    uint64_t left = src->size - src->pos;
    int error;
    if (buf == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    if ((error = fwrel_encimg_enc_begin(&e, out, key, left)) != 0)
        goto done;
    while (left > 0) {
        size_t chunk = left < CHUNK ? (size_t)left : CHUNK;
        if ((error = fwrel_src_read(src, buf, chunk)) != 0 ||
            (error = fwrel_encimg_enc_update(e, buf, chunk)) != 0)
            goto done;
        left -= chunk;
    }
    error = fwrel_encimg_enc_finish(e);
    e = NULL;
done:
    OPENSSL_cleanse(buf, CHUNK);
    free(buf);
    fwrel_encimg_enc_free(e);
    return error;
}

/* Recover the AES key from the header with the device key. */
static int unwrap(uint8_t aes[32], const fwrel_encimg_header *h, const fwrel_pkey *key, int scheme)
{
    if (scheme == FWREL_ENCIMG_ECC256) {
        fwrel_pkey *peer = NULL;
        int error = ec_from_xy(&peer, h->key_field);
        if (error)
            return fwrel_error_set(FWREL_EVERIFY,
                                   "the header's ephemeral key is not a P-256 point");
        error = ecc_derive(aes, key, peer, h->key_field + 64);
        fwrel_key_free(peer);
        return error;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)key, NULL);
    uint8_t *buf = OPENSSL_secure_malloc(384);
    size_t n = 384;
    int error = 0;
    if (ctx == NULL || buf == NULL || EVP_PKEY_decrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
        error = fwrel_error_set_openssl(FWREL_EKEY, "RSA setup failed");
    else if (EVP_PKEY_decrypt(ctx, buf, &n, h->key_field, 384) != 1)
        error = fwrel_error_set(FWREL_EVERIFY, "cannot unwrap the image key: wrong key?");
    else if (n != 32) /* the device unwraps into a 32-byte buffer (spec 4.3) */
        error = fwrel_error_set(FWREL_EVERIFY, "the unwrapped image key is %zu bytes, not 32", n);
    else
        memcpy(aes, buf, 32);
    ERR_clear_error();
    OPENSSL_secure_clear_free(buf, 384);
    EVP_PKEY_CTX_free(ctx);
    return error;
}

int fwrel_encimg_decrypt(const char *out_path, unsigned flags, fwrel_src *src,
                         const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(out_path != NULL && src != NULL && key != NULL);
    uint8_t hdr[FWREL_ENCIMG_HEADER_LEN];
    fwrel_encimg_header h;
    uint8_t *aes = OPENSSL_secure_malloc(32), *in = NULL, *pt = NULL;
    EVP_CIPHER_CTX *gcm = NULL;
    fwrel_out *out = NULL;
    int scheme, outl, error;

    if (aes == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    if ((error = fwrel_encimg_key_scheme(&scheme, key)) != 0)
        goto done;
    if (src->size < FWREL_ENCIMG_HEADER_LEN) {
        error = fwrel_error_set(FWREL_EFORMAT, "%llu bytes: shorter than the 512-byte header",
                                (unsigned long long)src->size);
        goto done;
    }
    if ((error = fwrel_src_read(src, hdr, sizeof(hdr))) != 0 ||
        (error = fwrel_encimg_parse_header(&h, hdr)) != 0)
        goto done;
    /* esp_encrypted_img_decrypt_end: exactly `size` ciphertext bytes, nothing after. */
    if (src->size - FWREL_ENCIMG_HEADER_LEN != h.size) {
        error =
            fwrel_error_set(FWREL_EFORMAT, "the header says %u bytes of image, the file holds %llu",
                            h.size, (unsigned long long)(src->size - FWREL_ENCIMG_HEADER_LEN));
        goto done;
    }
    if ((error = unwrap(aes, &h, key, scheme)) != 0 || (error = gcm_init(&gcm, 0, aes, h.iv)) != 0)
        goto done;
    if ((error = fwrel_out_open(&out, out_path, flags, 0644)) != 0)
        goto done;
    if ((in = malloc(CHUNK)) == NULL || (pt = malloc(CHUNK + 16)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    uint64_t left = h.size;
    while (left > 0) {
        size_t chunk = left < CHUNK ? (size_t)left : CHUNK;
        if ((error = fwrel_src_read(src, in, chunk)) != 0)
            goto done;
        if (EVP_DecryptUpdate(gcm, pt, &outl, in, (int)chunk) != 1) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "AES-GCM failed");
            goto done;
        }
        if ((error = fwrel_out_write(out, pt, (size_t)outl)) != 0)
            goto done;
        left -= chunk;
    }
    /* The plaintext so far sits in an unpublished temporary file; it appears only if the tag
     * checks. */
    if (EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_SET_TAG, 16, h.tag) != 1 ||
        EVP_DecryptFinal_ex(gcm, pt, &outl) != 1) {
        ERR_clear_error();
        error = fwrel_error_set(FWREL_EVERIFY,
                                "GCM tag mismatch: the image is corrupt or the key is wrong");
        goto done;
    }
    error = fwrel_out_commit(out);
    out = NULL;
done:
    fwrel_out_abort(out);
    OPENSSL_secure_clear_free(aes, 32);
    if (pt != NULL)
        OPENSSL_cleanse(pt, CHUNK + 16);
    free(in);
    free(pt);
    EVP_CIPHER_CTX_free(gcm);
    return error;
}
