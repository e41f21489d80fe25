/* port_openssl.c - the device core's crypto port on OpenSSL 3 (fwrel_dev_crypto.h): the host,
 * and the reference the mbedTLS port is compared with. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "fwrel_dev_crypto.h"

/* The contexts are OpenSSL's (heap): the caller's storage holds the pointer. */
static EVP_MD_CTX **md_of(fwrel_dev_ctx *ctx)
{
    return (EVP_MD_CTX **)(void *)ctx->bytes;
}

static EVP_CIPHER_CTX **cipher_of(fwrel_dev_ctx *ctx)
{
    return (EVP_CIPHER_CTX **)(void *)ctx->bytes;
}

static int sha256_start(fwrel_dev_ctx *ctx)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        ERR_clear_error();
        return -1;
    }
    *md_of(ctx) = md;
    return 0;
}

static int sha256_update(fwrel_dev_ctx *ctx, const uint8_t *data, size_t len)
{
    return EVP_DigestUpdate(*md_of(ctx), data, len) == 1 ? 0 : -1;
}

static int sha256_finish(fwrel_dev_ctx *ctx, uint8_t out[32])
{
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex(*md_of(ctx), out, &n) == 1 && n == 32;
    EVP_MD_CTX_free(*md_of(ctx));
    *md_of(ctx) = NULL;
    return ok ? 0 : -1;
}

static void sha256_abort(fwrel_dev_ctx *ctx)
{
    EVP_MD_CTX_free(*md_of(ctx));
    *md_of(ctx) = NULL;
}

static int gcm_start(fwrel_dev_ctx *ctx, int encrypt, const uint8_t key[32], const uint8_t iv[12],
                     const uint8_t *aad, size_t aad_len)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0;
    if (c == NULL || aad_len > INT32_MAX ||
        EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv, encrypt ? 1 : 0) != 1 ||
        (aad_len > 0 && EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) != 1)) {
        EVP_CIPHER_CTX_free(c);
        ERR_clear_error();
        return -1;
    }
    *cipher_of(ctx) = c;
    return 0;
}

static int gcm_update(fwrel_dev_ctx *ctx, const uint8_t *in, uint8_t *out, size_t len)
{
    int n = 0;
    if (len > INT32_MAX || EVP_CipherUpdate(*cipher_of(ctx), out, &n, in, (int)len) != 1 ||
        (size_t)n != len) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

static void gcm_abort(fwrel_dev_ctx *ctx)
{
    EVP_CIPHER_CTX_free(*cipher_of(ctx));
    *cipher_of(ctx) = NULL;
}

static int gcm_finish(fwrel_dev_ctx *ctx, uint8_t tag[16])
{
    EVP_CIPHER_CTX *c = *cipher_of(ctx);
    uint8_t rest[16];
    int n = 0, ok;
    if (EVP_CIPHER_CTX_is_encrypting(c))
        ok = EVP_CipherFinal_ex(c, rest, &n) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    else
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
             EVP_CipherFinal_ex(c, rest, &n) == 1; /* compares the tag in constant time */
    gcm_abort(ctx);
    ERR_clear_error();
    return ok && n == 0 ? 0 : -1;
}

static int hkdf_sha256(uint8_t *okm, size_t okm_len, const uint8_t *salt, size_t salt_len,
                       const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len)
{
    EVP_PKEY_CTX *h = EVP_PKEY_CTX_new_from_name(NULL, "HKDF", NULL);
    size_t n = okm_len;
    int ok = h != NULL && salt_len <= INT32_MAX && ikm_len <= INT32_MAX && info_len <= INT32_MAX &&
             EVP_PKEY_derive_init(h) == 1 && EVP_PKEY_CTX_set_hkdf_md(h, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set1_hkdf_salt(h, salt, (int)salt_len) == 1 &&
             EVP_PKEY_CTX_set1_hkdf_key(h, ikm, (int)ikm_len) == 1 &&
             EVP_PKEY_CTX_add1_hkdf_info(h, info, (int)info_len) == 1 &&
             EVP_PKEY_derive(h, okm, &n) == 1 && n == okm_len;
    EVP_PKEY_CTX_free(h);
    ERR_clear_error();
    return ok ? 0 : -1;
}

static int sig_verify(int alg, const uint8_t *spki, size_t spki_len, const uint8_t *msg,
                      size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    const unsigned char *p = spki;
    EVP_PKEY *key = spki_len <= INT32_MAX ? d2i_PUBKEY(NULL, &p, (long)spki_len) : NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;
    if (key == NULL || ctx == NULL || p != spki + spki_len)
        goto done;
    if (EVP_DigestVerifyInit(ctx, &pctx, alg == FWREL_DEV_SIG_ED25519 ? NULL : EVP_sha256(), NULL,
                             key) != 1)
        goto done;
    if (alg == FWREL_DEV_SIG_RSA_PSS &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1))
        goto done;
    ok = EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1;
done:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return ok ? 0 : -1;
}

static int rsa_oaep_decrypt(uint8_t *out, size_t *out_len, size_t out_max, const uint8_t *der,
                            size_t der_len, const uint8_t *in, size_t in_len)
{
    const unsigned char *p = der;
    EVP_PKEY *key = der_len <= INT32_MAX ? d2i_AutoPrivateKey(NULL, &p, (long)der_len) : NULL;
    EVP_PKEY_CTX *c = key != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL) : NULL;
    uint8_t buf[512];
    size_t got = sizeof(buf);
    int ok = c != NULL && EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) == 4096 &&
             EVP_PKEY_decrypt_init(c) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) == 1 &&
             EVP_PKEY_decrypt(c, buf, &got, in, in_len) == 1 && got <= out_max;
    if (ok) {
        memcpy(out, buf, got);
        *out_len = got;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return ok ? 0 : -1;
}

/* An EC P-256 key from its private scalar, or from its public point (uncompressed). */
static EVP_PKEY *p256_key(const uint8_t *data, size_t len, int priv)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    BIGNUM *d = priv ? BN_bin2bn(data, (int)len, NULL) : NULL;
    EVP_PKEY *key = NULL;
    if (bld == NULL || ctx == NULL || (priv && d == NULL) ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        (priv ? OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d)
              : OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, data, len)) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = NULL;
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_clear_free(d);
    return key;
}

static int ecdh(uint8_t shared[32], int type, const uint8_t *priv, size_t priv_len,
                const uint8_t *peer, size_t peer_len)
{
    EVP_PKEY *me = NULL, *other = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    size_t n = 32;
    int ok = 0;
    if (type == FWREL_DEV_RCPT_X25519 && priv_len == 32 && peer_len == 32) {
        me = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
        other = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
    } else if (type == FWREL_DEV_RCPT_P256 && priv_len == 32 && peer_len == 65) {
        me = p256_key(priv, 32, 1);
        other = p256_key(peer, 65, 0);
    }
    if (me == NULL || other == NULL)
        goto done;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, me, NULL);
    ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
         EVP_PKEY_derive_set_peer(ctx, other) == 1 && EVP_PKEY_derive(ctx, shared, &n) == 1 &&
         n == 32;
done:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(me);
    EVP_PKEY_free(other);
    ERR_clear_error();
    return ok ? 0 : -1;
}

const fwrel_dev_crypto fwrel_dev_crypto_openssl = {
    "openssl",  sha256_start, sha256_update, sha256_finish, sha256_abort,     gcm_start, gcm_update,
    gcm_finish, gcm_abort,    hkdf_sha256,   sig_verify,    rsa_oaep_decrypt, ecdh,
};
