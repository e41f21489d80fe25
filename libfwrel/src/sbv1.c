/* sbv1.c - Secure Boot V1 app signatures (sbv1.h; spec/esp-formats.md section 3).
 * ECDSA P-256 with k derived per RFC 6979 section 3.2 (HMAC-SHA256), as python-ecdsa's
 * sign_digest_deterministic does for espsecure: the same key and image give the same bytes. */
#include "fwrel/sbv1.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>

#include "util.h"

int fwrel_sbv1_parse_block(uint32_t *version, uint8_t sig[64], const uint8_t *block, size_t len)
{
    FWREL_ASSERT_ARG(version != NULL && sig != NULL && block != NULL);
    if (len != FWREL_SBV1_BLOCK_LEN)
        return fwrel_error_set(FWREL_EFORMAT, "a signature block is 68 bytes, not %zu", len);
    *version = fwrel_le32(block);
    memcpy(sig, block + 4, 64);
    return 0;
}

static int hmac(uint8_t out[32], const uint8_t key[32], const uint8_t *a, size_t alen,
                const uint8_t *b, size_t blen)
{
    uint8_t msg[128];
    unsigned int n = 0;
    if (alen + blen > sizeof(msg))
        return fwrel_error_set(FWREL_EKEY, "HMAC input too long");
    memcpy(msg, a, alen);
    if (blen > 0)
        memcpy(msg + alen, b, blen);
    int ok = HMAC(EVP_sha256(), key, 32, msg, alen + blen, out, &n) != NULL && n == 32;
    OPENSSL_cleanse(msg, sizeof(msg));
    return ok ? 0 : fwrel_error_set_openssl(FWREL_EKEY, "HMAC failed");
}

int fwrel_sbv1_sign_digest(uint8_t sig[64], const fwrel_pkey *key, const uint8_t digest[32])
{
    FWREL_ASSERT_ARG(sig != NULL && key != NULL && digest != NULL);
    EC_GROUP *group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BN_CTX *ctx = BN_CTX_secure_new();
    BIGNUM *x = NULL, *k = BN_secure_new(), *h = BN_new(), *r = BN_new(), *s = BN_new(),
           *kinv = BN_secure_new(), *t = BN_secure_new();
    EC_POINT *R = NULL;
    uint8_t xb[32], hb[32], K[32], V[32], buf[32 + 1 + 64];
    int type, error = FWREL_EKEY;

    if (fwrel_key_type_of(&type, key) != 0 || type != FWREL_KEY_ECDSA256) {
        error = fwrel_error_set(FWREL_EKEY, "Secure Boot V1 needs an ECDSA P-256 private key");
        goto done;
    }
    if (group == NULL || ctx == NULL || k == NULL || h == NULL || r == NULL || s == NULL ||
        kinv == NULL || t == NULL || (R = EC_POINT_new(group)) == NULL ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &x) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot read the private key");
        goto done;
    }
    BN_set_flags(x, BN_FLG_CONSTTIME);
    BN_set_flags(k, BN_FLG_CONSTTIME);
    const BIGNUM *q = EC_GROUP_get0_order(group);
    /* int2octets(x); bits2octets(h1) = int(h1) mod q, as qlen = hlen = 256. */
    if (BN_bn2binpad(x, xb, 32) != 32 || BN_bin2bn(digest, 32, h) == NULL ||
        BN_nnmod(h, h, q, ctx) != 1 || BN_bn2binpad(h, hb, 32) != 32) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "bignum failure");
        goto done;
    }
    memset(V, 0x01, 32);
    memset(K, 0x00, 32);
    for (int round = 0; round < 2; round++) { /* RFC 6979 3.2 steps d-g */
        memcpy(buf, V, 32);
        buf[32] = (uint8_t)round;
        memcpy(buf + 33, xb, 32);
        memcpy(buf + 65, hb, 32);
        if ((error = hmac(K, K, buf, sizeof(buf), NULL, 0)) != 0 ||
            (error = hmac(V, K, V, 32, NULL, 0)) != 0)
            goto done;
    }
    /* h as an integer for s = k^-1 (h + r x) mod q: the digest itself, reduced. */
    if (BN_bin2bn(digest, 32, h) == NULL) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "bignum failure");
        goto done;
    }
    for (int tries = 0;; tries++) {
        if (tries == 64) { /* probability 2^-2000; a bug, not bad luck */
            error = fwrel_error_set(FWREL_EKEY, "RFC 6979: no usable k");
            goto done;
        }
        if ((error = hmac(V, K, V, 32, NULL, 0)) != 0)
            goto done;
        if (BN_bin2bn(V, 32, k) == NULL) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "bignum failure");
            goto done;
        }
        if (!BN_is_zero(k) && BN_cmp(k, q) < 0) {
            BIGNUM *xr = t;
            if (EC_POINT_mul(group, R, k, NULL, NULL, ctx) != 1 ||
                EC_POINT_get_affine_coordinates(group, R, r, NULL, ctx) != 1 ||
                BN_nnmod(r, r, q, ctx) != 1) {
                error = fwrel_error_set_openssl(FWREL_EKEY, "EC failure");
                goto done;
            }
            if (!BN_is_zero(r) && BN_mod_inverse(kinv, k, q, ctx) != NULL &&
                BN_mod_mul(xr, r, x, q, ctx) == 1 && BN_mod_add(s, h, xr, q, ctx) == 1 &&
                BN_mod_mul(s, s, kinv, q, ctx) == 1 && !BN_is_zero(s))
                break;
        }
        uint8_t zero = 0;
        if ((error = hmac(K, K, V, 32, &zero, 1)) != 0 || (error = hmac(V, K, V, 32, NULL, 0)) != 0)
            goto done;
    }
    if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "bignum failure");
        goto done;
    }
    error = 0;
done:
    OPENSSL_cleanse(xb, sizeof(xb));
    OPENSSL_cleanse(K, sizeof(K));
    OPENSSL_cleanse(V, sizeof(V));
    OPENSSL_cleanse(buf, sizeof(buf));
    BN_clear_free(x);
    BN_clear_free(k);
    BN_clear_free(kinv);
    BN_clear_free(t);
    BN_free(h);
    BN_free(r);
    BN_free(s);
    EC_POINT_free(R);
    EC_GROUP_free(group);
    BN_CTX_free(ctx);
    return error;
}

int fwrel_sbv1_verify_digest(const uint8_t sig[64], const fwrel_pkey *key, const uint8_t digest[32])
{
    FWREL_ASSERT_ARG(sig != NULL && key != NULL && digest != NULL);
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    int type, error = FWREL_EVERIFY;
    if (fwrel_key_type_of(&type, key) != 0 || type != FWREL_KEY_ECDSA256) {
        error = fwrel_error_set(FWREL_EKEY, "Secure Boot V1 needs an ECDSA P-256 key");
        goto done;
    }
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        error = fwrel_error_set_openssl(FWREL_EIO, "out of memory");
        goto done;
    }
    r = s = NULL;
    int der_len = i2d_ECDSA_SIG(es, &der);
    if (der_len <= 0 || (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)key, NULL)) == NULL ||
        EVP_PKEY_verify_init(ctx) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot set up verification");
        goto done;
    }
    error = EVP_PKEY_verify(ctx, der, (size_t)der_len, digest, 32) == 1
                ? 0
                : fwrel_error_set(FWREL_EVERIFY, "Signature is not valid.");
    ERR_clear_error();
done:
    OPENSSL_free(der);
    EVP_PKEY_CTX_free(ctx);
    ECDSA_SIG_free(es);
    BN_free(r);
    BN_free(s);
    return error;
}

/* Parse the image (copying it to out when given), check it may be signed, return its digest. */
static int prepare(uint8_t digest[32], fwrel_espimg *img, const char *in_path, fwrel_out *out,
                   int ignore_chip)
{
    fwrel_src src = {.fd = -1};
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    fwrel_espimg_opts opts = {NULL, out, md};
    unsigned int n;
    int error;
    if (out != NULL)
        opts.sink = (fwrel_sink_fn)(void (*)(void))fwrel_out_write;
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        error = fwrel_error_set_openssl(FWREL_EIO, "digest setup failed");
        goto done;
    }
    if ((error = fwrel_src_open(&src, in_path, FWREL_IMAGE_MAX)) != 0 ||
        (error = fwrel_espimg_parse(img, &src, &opts)) != 0)
        goto done;
    if (fwrel_espimg_check_integrity(img) != 0) {
        error = fwrel_error_set(FWREL_EFORMAT, "%s", fwrel_error_last()->message);
        goto done;
    }
    if (img->file_len != img->image_len) {
        error = fwrel_error_set(FWREL_EFORMAT,
                                "%llu bytes past the end of the image: the device "
                                "would not look there (sign the image alone)",
                                (unsigned long long)(img->file_len - img->image_len));
        goto done;
    }
    if (!ignore_chip && (img->chip == NULL || !img->chip->sbv1)) {
        error = fwrel_error_set(FWREL_EKEY, "%s has no Secure Boot V1 app signing (ESP32 only)",
                                img->chip ? img->chip->name : "this chip");
        goto done;
    }
    if (EVP_DigestFinal_ex(md, digest, &n) != 1)
        error = fwrel_error_set_openssl(FWREL_EIO, "digest failed");
done:
    EVP_MD_CTX_free(md);
    fwrel_src_close(&src);
    return error;
}

int fwrel_sbv1_sign(const char *in_path, const char *out_path, unsigned out_flags,
                    const fwrel_pkey *key, const uint8_t *sig, int ignore_chip, fwrel_espimg *img)
{
    FWREL_ASSERT_ARG(in_path != NULL && out_path != NULL && key != NULL);
    fwrel_espimg local;
    fwrel_out *out = NULL;
    uint8_t digest[32], block[FWREL_SBV1_BLOCK_LEN] = {0};
    int type, error;

    if (fwrel_key_type_of(&type, key) != 0 || type != FWREL_KEY_ECDSA256)
        return fwrel_error_set(FWREL_EKEY, "Secure Boot V1 needs an ECDSA P-256 key");
    if ((error = fwrel_out_open(&out, out_path, out_flags, 0644)) != 0 ||
        (error = prepare(digest, &local, in_path, out, ignore_chip)) != 0)
        goto done;
    if (sig != NULL) {
        if (fwrel_sbv1_verify_digest(sig, key, digest) != 0) {
            error = fwrel_error_set(FWREL_EVERIFY, "the signature does not verify with the given "
                                                   "public key");
            goto done;
        }
        memcpy(block + 4, sig, 64);
    } else if ((error = fwrel_sbv1_sign_digest(block + 4, key, digest)) != 0) {
        goto done;
    }
    /* spec 3: u32 LE version 0, then r||s big-endian. */
    if ((error = fwrel_out_write(out, block, sizeof(block))) != 0)
        goto done;
    error = fwrel_out_commit(out);
    out = NULL;
    if (error == 0 && img != NULL)
        *img = local;
done:
    fwrel_out_abort(out);
    return error;
}

int fwrel_sbv1_signing_digest(uint8_t out[32], const char *in_path, int ignore_chip)
{
    FWREL_ASSERT_ARG(out != NULL && in_path != NULL);
    fwrel_espimg img;
    return prepare(out, &img, in_path, NULL, ignore_chip);
}

int fwrel_sbv1_verify_compat(fwrel_report *report, fwrel_src *src, const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(src != NULL && key != NULL);
    uint8_t block[FWREL_SBV1_BLOCK_LEN], sig[64], digest[32];
    uint32_t version;
    int error;

    if (src->size < FWREL_SBV1_BLOCK_LEN) {
        fwrel_report_add(report, "sbv1.size", FWREL_FAIL, "%llu bytes",
                         (unsigned long long)src->size);
        return fwrel_error_set(FWREL_EVERIFY, "too short for a signature block");
    }
    uint64_t len = src->size - FWREL_SBV1_BLOCK_LEN;
    if ((error = fwrel_src_seek(src, len)) != 0 ||
        (error = fwrel_src_read(src, block, sizeof(block))) != 0 ||
        (error = fwrel_sbv1_parse_block(&version, sig, block, sizeof(block))) != 0)
        return error;
    if (version != 0) {
        fwrel_report_add(report, "sbv1.version", FWREL_FAIL, "version word %u", version);
        return fwrel_error_set(FWREL_EVERIFY,
                               "Signature block has version %u. This version of "
                               "espsecure only supports version 0.",
                               version);
    }
    if ((error = fwrel_src_seek(src, 0)) != 0 ||
        (error = fwrel_digest_src(digest, NULL, src, len)) != 0)
        return error;
    error = fwrel_sbv1_verify_digest(sig, key, digest);
    fwrel_report_add(report, "sbv1.signature", error ? FWREL_FAIL : FWREL_PASS, "%s",
                     error ? "Signature is not valid." : "Signature is valid.");
    return error;
}
