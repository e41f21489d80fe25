/* sbv2.c - Secure Boot V2 signature sector (sbv2.h; docs/esp-formats.md §2). */
#include "fwrel/sbv2.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "util.h"

#define ALIGN4K(x) (((x) + 4095) & ~(uint64_t)4095)

/* Block field offsets (docs/esp-formats.md §2.2). */
enum {
    OFF_DIGEST = 4,
    RSA_KEY = 36, /* n 384 | e 4 | rinv 384 | mdash 4 */
    RSA_SIG = 812,
    EC_CRV = 36,
    EC_PT = 37,
    EC_SIG = 101,
    EC384_CRV = 52,
    EC384_PT = 53,
    EC384_SIG = 149,
};

static const char *curve_name(int scheme)
{
    return scheme == FWREL_SCHEME_ECDSA192   ? "prime192v1"
           : scheme == FWREL_SCHEME_ECDSA256 ? "prime256v1"
                                             : "secp384r1";
}

static size_t curve_len(int scheme)
{
    return scheme == FWREL_SCHEME_ECDSA192 ? 24 : scheme == FWREL_SCHEME_ECDSA256 ? 32 : 48;
}

/* docs/esp-formats.md §2.4: the key digest covers the key bytes as they sit in the block. */
static int block_key_digest(uint8_t out[32], const uint8_t *raw, int scheme)
{
    if (scheme == FWREL_SCHEME_RSA3072)
        return fwrel_sha256(out, raw + RSA_KEY, 776);
    if (scheme == FWREL_SCHEME_ECDSA384)
        return fwrel_sha256(out, raw + EC384_CRV, 97);
    return fwrel_sha256(out, raw + EC_CRV, 65);
}

void fwrel_sbv2_parse_sector(fwrel_sbv2_sector *out, const uint8_t sector[FWREL_SBV2_SECTOR_LEN])
{
    memset(out, 0, sizeof(*out));
    int leading = 1;
    for (int i = 0; i < FWREL_SBV2_MAX_BLOCKS; i++) {
        fwrel_sbv2_block *b = &out->blocks[i];
        memcpy(b->raw, sector + i * FWREL_SBV2_BLOCK_LEN, FWREL_SBV2_BLOCK_LEN);
        b->present = b->raw[0] == FWREL_SBV2_MAGIC;
        b->crc_ok = fwrel_crc32(0, b->raw, FWREL_SBV2_CRC_OFFSET) ==
                    fwrel_le32(b->raw + FWREL_SBV2_CRC_OFFSET);
        b->version = b->raw[1];
        b->valid = b->present && b->crc_ok && (b->version == 2 || b->version == 3);
        b->scheme = FWREL_SCHEME_NONE;
        if (b->version == 2) {
            b->scheme = FWREL_SCHEME_RSA3072;
            b->image_digest_len = 32;
        } else if (b->version == 3 && b->raw[2] == 0 &&
                   (b->raw[EC_CRV] == 1 || b->raw[EC_CRV] == 2)) {
            b->scheme = b->raw[EC_CRV] == 1 ? FWREL_SCHEME_ECDSA192 : FWREL_SCHEME_ECDSA256;
            b->image_digest_len = 32;
        } else if (b->version == 3 && b->raw[2] == 1 && b->raw[EC384_CRV] == 3) {
            b->scheme = FWREL_SCHEME_ECDSA384;
            b->image_digest_len = 48;
        }
        if (b->scheme != FWREL_SCHEME_NONE) {
            memcpy(b->image_digest, b->raw + OFF_DIGEST, b->image_digest_len);
            if (block_key_digest(b->key_digest, b->raw, b->scheme) != 0)
                b->scheme = FWREL_SCHEME_NONE;
        }
        if (leading && b->valid)
            out->leading_valid++;
        else
            leading = 0;
    }
}

int fwrel_sbv2_key_scheme(int *scheme, const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(scheme != NULL && key != NULL);
    int type, error = fwrel_key_type_of(&type, key);
    if (error)
        return error;
    *scheme = type == FWREL_KEY_RSA3072    ? FWREL_SCHEME_RSA3072
              : type == FWREL_KEY_ECDSA192 ? FWREL_SCHEME_ECDSA192
              : type == FWREL_KEY_ECDSA256 ? FWREL_SCHEME_ECDSA256
                                           : FWREL_SCHEME_ECDSA384;
    return 0;
}

/* Big-endian BIGNUM into a little-endian field of n bytes. */
static int bn_le(uint8_t *out, size_t n, const BIGNUM *bn)
{
    if (BN_bn2lebinpad(bn, out, (int)n) != (int)n)
        return fwrel_error_set(FWREL_EKEY, "number does not fit %zu bytes", n);
    return 0;
}

/* Write the key fields of a key into a block (RSA n, e, R^-1, M'; EC curve and point). */
static int put_key(uint8_t *raw, const fwrel_pkey *key, int scheme)
{
    BIGNUM *n = NULL, *e = NULL, *r = NULL, *x = NULL, *y = NULL;
    BN_CTX *ctx = NULL;
    int error;

    if (scheme == FWREL_SCHEME_RSA3072) {
        if ((r = BN_new()) == NULL || (ctx = BN_CTX_new()) == NULL ||
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "cannot read the RSA key");
            goto done;
        }
        if (BN_num_bits(e) > 32) {
            error = fwrel_error_set(FWREL_EKEY, "RSA exponent wider than 32 bits");
            goto done;
        }
        /* R^-1 field = 2^6144 mod n, i.e. R^2 mod n with R = 2^3072 (docs/esp-formats.md §2.2;
         * espsecure's _get_sbv2_rsa_primitives: rr = 1 << (key_size * 2)). */
        if (BN_set_bit(r, 6144) != 1 || BN_mod(r, r, n, ctx) != 1) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "bignum failure");
            goto done;
        }
        if ((error = bn_le(raw + RSA_KEY, 384, n)) != 0 ||
            (error = bn_le(raw + RSA_KEY + 388, 384, r)) != 0)
            goto done;
        /* M' = -n^-1 mod 2^32. n is odd, so n0 is its own inverse mod 8 and each Newton step
         * inv *= 2 - n0 * inv doubles the correct low bits: 3 -> 6 -> 12 -> 24 -> 48. */
        uint32_t n0 = fwrel_le32(raw + RSA_KEY), inv = n0;
        for (int i = 0; i < 4; i++)
            inv *= 2u - n0 * inv;
        fwrel_put_le32(raw + RSA_KEY + 384, (uint32_t)BN_get_word(e));
        fwrel_put_le32(raw + RSA_KEY + 772, 0u - inv);
        error = 0;
        goto done;
    }
    /* EC: curve id, then X and Y little-endian in fixed L-byte fields (docs/esp-formats.md §2.2).
     * Read from the affine coordinates, so a key held with a compressed point encodes the same. */
    size_t len = curve_len(scheme);
    size_t off = scheme == FWREL_SCHEME_ECDSA384 ? EC384_CRV : EC_CRV;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot read the EC public point");
        goto done;
    }
    raw[off] = scheme == FWREL_SCHEME_ECDSA192 ? 1 : scheme == FWREL_SCHEME_ECDSA256 ? 2 : 3;
    if ((error = bn_le(raw + off + 1, len, x)) != 0 ||
        (error = bn_le(raw + off + 1 + len, len, y)) != 0)
        goto done;
    error = 0;
done:
    BN_free(n);
    BN_free(e);
    BN_free(r);
    BN_free(x);
    BN_free(y);
    BN_CTX_free(ctx);
    return error;
}

int fwrel_sbv2_key_digest(uint8_t out[32], const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(out != NULL && key != NULL);
    uint8_t raw[FWREL_SBV2_BLOCK_LEN] = {0};
    int scheme, error;
    if ((error = fwrel_sbv2_key_scheme(&scheme, key)) != 0 ||
        (error = put_key(raw, key, scheme)) != 0)
        return error;
    return block_key_digest(out, raw, scheme);
}

int fwrel_sbv2_block_key(fwrel_pkey **out, const fwrel_sbv2_block *b)
{
    FWREL_ASSERT_ARG(out != NULL && b != NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *n = NULL, *e = NULL;
    /* The builder keeps a pointer to the point until OSSL_PARAM_BLD_to_param(): same scope. */
    uint8_t point[97];
    int error = FWREL_EVERIFY;
    *out = NULL;
    if (bld == NULL)
        return fwrel_error_set_openssl(FWREL_EIO, "out of memory");
    if (b->scheme == FWREL_SCHEME_RSA3072) {
        n = BN_lebin2bn(b->raw + RSA_KEY, 384, NULL);
        e = BN_new();
        if (n == NULL || e == NULL || BN_set_word(e, fwrel_le32(b->raw + RSA_KEY + 384)) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1) {
            error = fwrel_error_set_openssl(FWREL_EIO, "out of memory");
            goto done;
        }
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    } else if (b->scheme != FWREL_SCHEME_NONE) {
        size_t len = curve_len(b->scheme);
        size_t off = b->scheme == FWREL_SCHEME_ECDSA384 ? EC384_PT : EC_PT;
        point[0] = 0x04;
        for (size_t i = 0; i < len; i++) {
            point[1 + i] = b->raw[off + len - 1 - i];
            point[1 + len + i] = b->raw[off + 2 * len - 1 - i];
        }
        if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve_name(b->scheme),
                                            0) != 1 ||
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * len) !=
                1) {
            error = fwrel_error_set_openssl(FWREL_EIO, "out of memory");
            goto done;
        }
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    } else {
        error = fwrel_error_set(FWREL_EVERIFY, "block has no known key layout");
        goto done;
    }
    if (ctx == NULL || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        error = fwrel_error_set_openssl(FWREL_EVERIFY, "the embedded public key is invalid");
        goto done;
    }
    error = 0;
done:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return error;
}

/* An EVP_PKEY_CTX set up for RSA-PSS SHA-256 salt 32, or ECDSA over a prehashed digest. */
static EVP_PKEY_CTX *sig_ctx(const fwrel_pkey *key, int sign, size_t digest_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)key, NULL);
    const EVP_MD *md = digest_len == 48 ? EVP_sha384() : EVP_sha256();
    if (ctx == NULL || (sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx)) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)
        goto fail;
    if (EVP_PKEY_is_a(key, "RSA") &&
        (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) != 1))
        goto fail;
    return ctx;
fail:
    EVP_PKEY_CTX_free(ctx);
    return NULL;
}

/* DER ECDSA signature to fixed little-endian r||s of len bytes each. */
static int der_to_le(uint8_t *out, size_t len, const uint8_t *der, size_t der_len)
{
    const unsigned char *p = der;
    ECDSA_SIG *s = der_len <= 256 ? d2i_ECDSA_SIG(NULL, &p, (long)der_len) : NULL;
    int error = 0;
    if (s == NULL || p != der + der_len)
        error = fwrel_error_set(FWREL_EFORMAT, "the ECDSA signature is not DER");
    else if (BN_bn2lebinpad(ECDSA_SIG_get0_r(s), out, (int)len) != (int)len ||
             BN_bn2lebinpad(ECDSA_SIG_get0_s(s), out + len, (int)len) != (int)len)
        error = fwrel_error_set(FWREL_EFORMAT, "the ECDSA signature does not fit the curve");
    ECDSA_SIG_free(s);
    return error;
}

/* Little-endian r||s to DER (caller frees *der with OPENSSL_free). */
static int le_to_der(unsigned char **der, int *der_len, const uint8_t *rs, size_t len)
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_lebin2bn(rs, (int)len, NULL), *sv = BN_lebin2bn(rs + len, (int)len, NULL);
    *der = NULL;
    if (s == NULL || r == NULL || sv == NULL || ECDSA_SIG_set0(s, r, sv) != 1) {
        ECDSA_SIG_free(s);
        BN_free(r);
        BN_free(sv);
        return fwrel_error_set_openssl(FWREL_EIO, "out of memory");
    }
    *der_len = i2d_ECDSA_SIG(s, der);
    ECDSA_SIG_free(s);
    return *der_len > 0 ? 0 : fwrel_error_set_openssl(FWREL_EIO, "cannot encode the signature");
}

static int verify_raw(const fwrel_pkey *key, const uint8_t *digest, size_t dlen, const uint8_t *sig,
                      size_t sig_len)
{
    EVP_PKEY_CTX *ctx = sig_ctx(key, 0, dlen);
    if (ctx == NULL)
        return fwrel_error_set_openssl(FWREL_EKEY, "cannot set up verification");
    int ok = EVP_PKEY_verify(ctx, sig, sig_len, digest, dlen) == 1;
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return ok ? 0 : fwrel_error_set(FWREL_EVERIFY, "signature does not verify");
}

/* The RSA signature field (LE) checked with key over a SHA-256 digest. */
static int verify_rsa_field(const uint8_t *raw, const uint8_t *digest, size_t dlen,
                            const fwrel_pkey *key)
{
    uint8_t sig[384];
    memcpy(sig, raw + RSA_SIG, sizeof(sig));
    fwrel_reverse(sig, sizeof(sig));
    return verify_raw(key, digest, dlen, sig, sizeof(sig));
}

/* An ECDSA r||s field (len bytes each, LE) checked with key over a digest. */
static int verify_ec_field(const uint8_t *rs, size_t len, const uint8_t *digest, size_t dlen,
                           const fwrel_pkey *key)
{
    unsigned char *der = NULL;
    int der_len = 0;
    int error = le_to_der(&der, &der_len, rs, len);
    if (error == 0)
        error = verify_raw(key, digest, dlen, der, (size_t)der_len);
    OPENSSL_free(der);
    return error;
}

/* Verify a block as its own scheme with a given key. */
static int verify_as(const uint8_t *raw, int scheme, const uint8_t *digest, size_t dlen,
                     const fwrel_pkey *key)
{
    if (scheme == FWREL_SCHEME_RSA3072)
        return verify_rsa_field(raw, digest, dlen, key);
    size_t off = scheme == FWREL_SCHEME_ECDSA384 ? EC384_SIG : EC_SIG;
    return verify_ec_field(raw + off, curve_len(scheme), digest, dlen, key);
}

int fwrel_sbv2_block_verify(const fwrel_sbv2_block *b, const uint8_t *digest, size_t digest_len,
                            const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(b != NULL && digest != NULL);
    fwrel_pkey *embedded = NULL;
    int error;
    if (b->scheme == FWREL_SCHEME_NONE)
        return fwrel_error_set(FWREL_EVERIFY, "unknown signature scheme (version %d)", b->version);
    if (digest_len != b->image_digest_len)
        return fwrel_error_set(FWREL_EVERIFY, "digest length %zu, the block needs %zu", digest_len,
                               b->image_digest_len);
    if (key == NULL) {
        if ((error = fwrel_sbv2_block_key(&embedded, b)) != 0)
            return error;
        key = embedded;
    } else {
        int scheme;
        if ((error = fwrel_sbv2_key_scheme(&scheme, key)) != 0)
            return error;
        if (scheme != b->scheme)
            return fwrel_error_set(FWREL_EVERIFY, "the key's scheme does not match the block's");
    }
    error = verify_as(b->raw, b->scheme, digest, digest_len, key);
    fwrel_key_free(embedded);
    return error;
}

int fwrel_sbv2_block_build(uint8_t out[FWREL_SBV2_BLOCK_LEN], const fwrel_pkey *key,
                           const uint8_t *digest, size_t digest_len, const uint8_t *sig,
                           size_t sig_len)
{
    FWREL_ASSERT_ARG(out != NULL && key != NULL && digest != NULL);
    int scheme, error;
    uint8_t *made = NULL;
    size_t made_len = 0;
    EVP_PKEY_CTX *ctx = NULL;

    if ((error = fwrel_sbv2_key_scheme(&scheme, key)) != 0)
        return error;
    size_t need = scheme == FWREL_SCHEME_ECDSA384 ? 48 : 32;
    if (digest_len != need)
        return fwrel_error_set(FWREL_EUSAGE, "digest of %zu bytes, the scheme needs %zu",
                               digest_len, need);
    memset(out, 0, FWREL_SBV2_BLOCK_LEN);
    out[0] = FWREL_SBV2_MAGIC;
    out[1] = scheme == FWREL_SCHEME_RSA3072 ? 2 : 3;
    out[2] = scheme == FWREL_SCHEME_ECDSA384 ? 1 : 0;
    memcpy(out + OFF_DIGEST, digest, digest_len);
    if ((error = put_key(out, key, scheme)) != 0)
        return error;

    if (sig == NULL) {
        if ((ctx = sig_ctx(key, 1, digest_len)) == NULL ||
            EVP_PKEY_sign(ctx, NULL, &made_len, digest, digest_len) != 1 ||
            (made = OPENSSL_malloc(made_len)) == NULL ||
            EVP_PKEY_sign(ctx, made, &made_len, digest, digest_len) != 1) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "signing failed");
            goto done;
        }
        sig = made;
        sig_len = made_len;
    } else if (scheme == FWREL_SCHEME_RSA3072 && sig_len != 384) {
        error = fwrel_error_set(
            FWREL_EFORMAT, "an RSA-3072 signature is 384 bytes (big-endian), not %zu", sig_len);
        goto done;
    }
    /* Every signature is checked before it goes into a block: a given one as espsecure does
     * (docs/esp-formats.md §2.8), ours against a faulty signer. */
    if ((error = verify_raw(key, digest, digest_len, sig, sig_len)) != 0) {
        if (error == FWREL_EVERIFY)
            fwrel_error_set(FWREL_EVERIFY, made != NULL ? "the new signature does not verify"
                                                        : "the signature does not verify with the "
                                                          "given public key");
        goto done;
    }
    if (scheme == FWREL_SCHEME_RSA3072) {
        if (sig_len != 384) {
            error = fwrel_error_set(FWREL_EKEY, "RSA signature of %zu bytes", sig_len);
            goto done;
        }
        memcpy(out + RSA_SIG, sig, 384);
        fwrel_reverse(out + RSA_SIG, 384);
    } else {
        size_t off = scheme == FWREL_SCHEME_ECDSA384 ? EC384_SIG : EC_SIG;
        if ((error = der_to_le(out + off, curve_len(scheme), sig, sig_len)) != 0)
            goto done;
    }
    fwrel_put_le32(out + FWREL_SBV2_CRC_OFFSET, fwrel_crc32(0, out, FWREL_SBV2_CRC_OFFSET));
    error = 0;
done:
    OPENSSL_free(made);
    EVP_PKEY_CTX_free(ctx);
    return error;
}

/* The data every block signs, streamed: the image, 0xFF (or the file's own) padding to 4 KiB. */
struct prep {
    fwrel_espimg img;
    uint8_t d256[32];
    uint8_t d384[48];
    fwrel_sbv2_sector existing; /* with append */
    unsigned nexisting;
};

struct tee {
    fwrel_out *out;
    EVP_MD_CTX *md384;
};

static int tee_sink(void *ctx, const uint8_t *p, size_t n)
{
    struct tee *t = ctx;
    if (t->md384 != NULL && EVP_DigestUpdate(t->md384, p, n) != 1)
        return fwrel_error_set_openssl(FWREL_EIO, "digest failed");
    return t->out != NULL ? fwrel_out_write(t->out, p, n) : 0;
}

/* want384: also hash with SHA-384 (a P-384 signer, or blocks of unknown kind with append). */
static int prepare(struct prep *p, const char *in_path, fwrel_out *out, int append, int want384)
{
    fwrel_src src = {.fd = -1};
    EVP_MD_CTX *md256 = EVP_MD_CTX_new(), *md384 = want384 ? EVP_MD_CTX_new() : NULL;
    struct tee tee = {out, md384};
    fwrel_espimg_opts opts = {tee_sink, &tee, NULL};
    uint8_t buf[4096];
    unsigned int n;
    int error;

    memset(p, 0, sizeof(*p));
    if (md256 == NULL || (want384 && md384 == NULL) ||
        EVP_DigestInit_ex(md256, EVP_sha256(), NULL) != 1 ||
        (md384 != NULL && EVP_DigestInit_ex(md384, EVP_sha384(), NULL) != 1)) {
        error = fwrel_error_set_openssl(FWREL_EIO, "digest setup failed");
        goto done;
    }
    opts.md = md256;
    if ((error = fwrel_src_open(&src, in_path, FWREL_IMAGE_MAX)) != 0 ||
        (error = fwrel_espimg_parse(&p->img, &src, &opts)) != 0)
        goto done;
    if ((error = fwrel_espimg_check_input(&p->img)) != 0)
        goto done;
    uint64_t aligned = ALIGN4K(p->img.image_len);
    if (append) {
        if (p->img.file_len != aligned + FWREL_SBV2_SECTOR_LEN) {
            error = fwrel_error_set(FWREL_EFORMAT,
                                    "not a signed image: %llu bytes, expected %llu "
                                    "(image, padding to 4 KiB, signature sector)",
                                    (unsigned long long)p->img.file_len,
                                    (unsigned long long)(aligned + FWREL_SBV2_SECTOR_LEN));
            goto done;
        }
    } else if (p->img.file_len != p->img.image_len) {
        /* docs/esp-formats.md §2.3: espsecure would pad after these bytes and put the sector where
         * the device does not look, or sign bytes no image parser shows the signer. */
        if (p->img.file_len == aligned + FWREL_SBV2_SECTOR_LEN) {
            uint8_t magic = 0;
            if ((error = fwrel_src_seek(&src, aligned)) != 0 ||
                (error = fwrel_src_read(&src, &magic, 1)) != 0)
                goto done;
            if (magic == FWREL_SBV2_MAGIC) {
                error = fwrel_error_set(FWREL_EFORMAT,
                                        "already signed (a signature sector follows the image): "
                                        "append to it, or sign the image alone");
                goto done;
            }
        }
        error = fwrel_error_set(FWREL_EFORMAT,
                                "%llu bytes past the end of the image: the device "
                                "would not look there (sign the image alone)",
                                (unsigned long long)(p->img.file_len - p->img.image_len));
        goto done;
    }
    /* The padding: 0xFF as espsecure writes it (docs/esp-formats.md §2.1). With append the file's
     * own padding must be exactly that, so the new block signs what a fresh signature would. */
    size_t pad = (size_t)(aligned - p->img.image_len);
    if (append) {
        if ((error = fwrel_src_read(&src, buf, pad)) != 0)
            goto done;
        for (size_t i = 0; i < pad; i++)
            if (buf[i] != 0xFF) {
                error = fwrel_error_set(FWREL_EFORMAT,
                                        "padding byte at 0x%llx is 0x%02x, not 0xFF: not the "
                                        "layout of a signed image",
                                        (unsigned long long)(p->img.image_len + i), buf[i]);
                goto done;
            }
    } else {
        memset(buf, 0xFF, pad);
    }
    if (EVP_DigestUpdate(md256, buf, pad) != 1 || (error = tee_sink(&tee, buf, pad)) != 0) {
        error = error ? error : fwrel_error_set_openssl(FWREL_EIO, "digest failed");
        goto done;
    }
    if (EVP_DigestFinal_ex(md256, p->d256, &n) != 1 ||
        (md384 != NULL && EVP_DigestFinal_ex(md384, p->d384, &n) != 1)) {
        error = fwrel_error_set_openssl(FWREL_EIO, "digest failed");
        goto done;
    }
    if (append) {
        uint8_t sector[FWREL_SBV2_SECTOR_LEN];
        if ((error = fwrel_src_read(&src, sector, sizeof(sector))) != 0)
            goto done;
        fwrel_sbv2_parse_sector(&p->existing, sector);
        p->nexisting = p->existing.leading_valid;
        if (p->nexisting == 0) {
            error = fwrel_error_set(FWREL_EFORMAT, "no valid signature block to append to");
            goto done;
        }
        for (unsigned i = 0; i < p->nexisting; i++) {
            const fwrel_sbv2_block *b = &p->existing.blocks[i];
            const uint8_t *d =
                b->image_digest_len == 48 ? p->d384 : p->d256; /* append: both hashed */
            if (b->scheme == FWREL_SCHEME_NONE ||
                memcmp(b->image_digest, d, b->image_digest_len) != 0) {
                error = fwrel_error_set(FWREL_EFORMAT,
                                        "signature block %u does not match the image", i);
                goto done;
            }
        }
    }
    error = 0;
done:
    EVP_MD_CTX_free(md256);
    EVP_MD_CTX_free(md384);
    fwrel_src_close(&src);
    return error;
}

static const char *scheme_name(int s)
{
    return s == FWREL_SCHEME_RSA3072    ? "RSA-3072"
           : s == FWREL_SCHEME_ECDSA192 ? "ECDSA P-192"
           : s == FWREL_SCHEME_ECDSA256 ? "ECDSA P-256"
                                        : "ECDSA P-384";
}

/* What the image's chip would check (docs/esp-formats.md §2.5). */
static int check_chip(const fwrel_espimg *img, const int *schemes, size_t count, unsigned total)
{
    if (total > FWREL_SBV2_MAX_BLOCKS)
        return fwrel_error_set(FWREL_EUSAGE,
                               "Up to 3 signature blocks are supported (%u requested)", total);
    if (img->chip == NULL)
        return fwrel_error_set(FWREL_EKEY,
                               "unknown chip id %u: cannot tell what it checks "
                               "(--ignore-chip to sign anyway)",
                               img->chip_id);
    if (img->chip->sbv2_blocks == 0)
        return fwrel_error_set(FWREL_EKEY, "%s has no known Secure Boot V2", img->chip->name);
    if (total > img->chip->sbv2_blocks)
        return fwrel_error_set(FWREL_EKEY, "%s checks only %u signature block%s, not %u",
                               img->chip->name, img->chip->sbv2_blocks,
                               img->chip->sbv2_blocks == 1 ? "" : "s", total);
    for (size_t i = 0; i < count; i++)
        if (!(img->chip->sbv2_schemes & (unsigned)schemes[i]))
            return fwrel_error_set(FWREL_EKEY, "%s does not accept %s signatures", img->chip->name,
                                   scheme_name(schemes[i]));
    /* ESP-IDF v5.5.5 esp_image_format.c verify_segment_header() (SOC_MMU_PAGE_SIZE_CONFIGURABLE):
     * such a chip refuses to load an app without the descriptor, signed or not. */
    if (img->chip->app_desc_required && !img->has_app_desc)
        return fwrel_error_set(FWREL_EFORMAT,
                               "%s refuses an app without an app descriptor at 0x20 (\"Failed to "
                               "fetch app description header!\"): --ignore-chip to sign anyway",
                               img->chip->name);
    return 0;
}

/* The signers' schemes, each one Secure Boot V2 takes, 1..3 of them. */
static int signer_schemes(int schemes[FWREL_SBV2_MAX_BLOCKS], const fwrel_sbv2_sign_opts *opts)
{
    int error;
    if (opts->count < 1 || opts->count > FWREL_SBV2_MAX_BLOCKS)
        return fwrel_error_set(FWREL_EUSAGE, "1 to 3 signers, not %zu", opts->count);
    for (size_t i = 0; i < opts->count; i++)
        if ((error = fwrel_sbv2_key_scheme(&schemes[i], opts->signers[i].key)) != 0)
            return error;
    return 0;
}

int fwrel_sbv2_sign_to(fwrel_out *out, const char *in_path, const fwrel_sbv2_sign_opts *opts,
                       fwrel_espimg *img)
{
    FWREL_ASSERT_ARG(out != NULL && in_path != NULL && opts != NULL);
    struct prep *p = calloc(1, sizeof(*p));
    uint8_t sector[FWREL_SBV2_SECTOR_LEN];
    int schemes[FWREL_SBV2_MAX_BLOCKS];
    int error;

    if (p == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    if ((error = signer_schemes(schemes, opts)) != 0)
        goto done;
    int want384 = opts->append;
    for (size_t i = 0; i < opts->count; i++)
        want384 |= schemes[i] == FWREL_SCHEME_ECDSA384;
    if ((error = prepare(p, in_path, out, opts->append, want384)) != 0)
        goto done;
    unsigned total = p->nexisting + (unsigned)opts->count;
    if (total > FWREL_SBV2_MAX_BLOCKS) {
        error = fwrel_error_set(FWREL_EUSAGE,
                                "Up to 3 signature blocks are supported: %u present, "
                                "%zu more requested",
                                p->nexisting, opts->count);
        goto done;
    }
    if (!opts->ignore_chip && (error = check_chip(&p->img, schemes, opts->count, total)) != 0)
        goto done;

    memset(sector, 0xFF, sizeof(sector));
    for (unsigned i = 0; i < p->nexisting; i++)
        memcpy(sector + i * FWREL_SBV2_BLOCK_LEN, p->existing.blocks[i].raw, FWREL_SBV2_BLOCK_LEN);
    for (size_t i = 0; i < opts->count; i++) {
        const fwrel_sbv2_signer *s = &opts->signers[i];
        int is384 = schemes[i] == FWREL_SCHEME_ECDSA384;
        error =
            fwrel_sbv2_block_build(sector + (p->nexisting + i) * FWREL_SBV2_BLOCK_LEN, s->key,
                                   is384 ? p->d384 : p->d256, is384 ? 48 : 32, s->sig, s->sig_len);
        if (error) {
            fwrel_error_prefix("signer %zu", i + 1);
            goto done;
        }
    }
    if ((error = fwrel_out_write(out, sector, sizeof(sector))) != 0)
        goto done;
    if (img != NULL)
        *img = p->img;
done:
    OPENSSL_cleanse(sector, sizeof(sector));
    free(p);
    return error;
}

int fwrel_sbv2_sign(const char *in_path, const char *out_path, unsigned out_flags,
                    const fwrel_sbv2_sign_opts *opts, fwrel_espimg *img)
{
    FWREL_ASSERT_ARG(in_path != NULL && out_path != NULL && opts != NULL);
    fwrel_out *out = NULL;
    fwrel_espimg local;
    int schemes[FWREL_SBV2_MAX_BLOCKS];
    int error;

    /* Signers that cannot sign are refused before the output is created. */
    if ((error = signer_schemes(schemes, opts)) != 0 ||
        (error = fwrel_out_open(&out, out_path, out_flags | FWREL_OUT_STREAM, 0644)) != 0)
        return error;
    if ((error = fwrel_sbv2_sign_to(out, in_path, opts, &local)) != 0) {
        fwrel_out_abort(out);
        return error;
    }
    if ((error = fwrel_out_commit(out)) == 0 && img != NULL)
        *img = local;
    return error;
}

int fwrel_sbv2_signing_digest(uint8_t out[48], size_t *out_len, const char *in_path, int scheme,
                              int append)
{
    FWREL_ASSERT_ARG(out != NULL && out_len != NULL && in_path != NULL);
    struct prep *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    int error = prepare(p, in_path, NULL, append, append || scheme == FWREL_SCHEME_ECDSA384);
    if (error == 0 && append && p->nexisting >= FWREL_SBV2_MAX_BLOCKS)
        error = fwrel_error_set(FWREL_EUSAGE, "Up to 3 signature blocks are supported: 3 present");
    if (error == 0) {
        *out_len = scheme == FWREL_SCHEME_ECDSA384 ? 48 : 32;
        memcpy(out, scheme == FWREL_SCHEME_ECDSA384 ? p->d384 : p->d256, *out_len);
    }
    free(p);
    return error;
}

/* espsecure v5.3.1's verify_signature_v2 on one valid block (docs/esp-formats.md §2.7). */
enum { COMPAT_PASS, COMPAT_NEXT, COMPAT_ABORT };

/* Python locals outlive the loop iteration that set them: what the EC path last unpacked. */
struct compat_ec {
    int set;
    unsigned curve;
    uint8_t rs[96];
};

/*
 * The algorithm comes from the supplied key, the field offsets from the block's hash-type byte
 * and the curve from the block's curve byte, whatever the version byte says. The cases where
 * espsecure dies with a Python exception (exit 1, no verdict but "invalid") are COMPAT_ABORT:
 * an RSA key against a SHA-384 digest (Prehashed(SHA256) raises ValueError); a curve byte other
 * than 1..3 (AssertionError: the mixed-rsa-ecdsa vector's RSA block seen with an EC key, whose
 * curve byte is n's low byte); a curve whose hash does not fit the digest (ValueError); a
 * hash-type byte other than 0 or 1 with nothing unpacked before (curve_id unbound). After an
 * earlier EC block, such a block reuses that block's curve id and r||s, as the Python does. A
 * curve that is not the key's, with a fitting digest, is only a failed check: espsecure reads r
 * and s at that curve's width and the verification fails.
 */
static int compat_block(char *why, size_t why_len, struct compat_ec *ec, const uint8_t *raw,
                        int key_scheme, const uint8_t *digest, size_t dlen, const fwrel_pkey *key)
{
    if (key_scheme == FWREL_SCHEME_RSA3072) {
        if (dlen != 32) {
            snprintf(why, why_len,
                     "a SHA-384 block checked with an RSA key: espsecure fails "
                     "(ValueError)");
            return COMPAT_ABORT;
        }
        return verify_rsa_field(raw, digest, dlen, key) == 0 ? COMPAT_PASS : COMPAT_NEXT;
    }
    if (raw[2] == 0 || raw[2] == 1) {
        /* struct.unpack("B64s64s...", blk[36:]) or ("B96s96s...", blk[52:]) */
        memset(ec->rs, 0, sizeof(ec->rs));
        if (raw[2] == 0) {
            ec->curve = raw[EC_CRV];
            memcpy(ec->rs, raw + EC_SIG, 64);
        } else {
            ec->curve = raw[EC384_CRV];
            memcpy(ec->rs, raw + EC384_SIG, 96);
        }
        ec->set = 1;
    } else if (!ec->set) {
        snprintf(why, why_len, "hash type %u: espsecure fails (UnboundLocalError)", raw[2]);
        return COMPAT_ABORT;
    }
    if (ec->curve < 1 || ec->curve > 3) {
        snprintf(why, why_len,
                 "curve id %u read with an ECDSA key: espsecure fails "
                 "(AssertionError)",
                 ec->curve);
        return COMPAT_ABORT;
    }
    if ((ec->curve == 3 ? 48u : 32u) != dlen) {
        snprintf(why, why_len, "curve id %u with a %zu-byte digest: espsecure fails (ValueError)",
                 ec->curve, dlen);
        return COMPAT_ABORT;
    }
    /* With curve 3 read from a 64-byte field, s is what Python's slice gives: 16 bytes, then
     * zeros here; such a pair never fits a SHA-256 digest anyway (caught just above). */
    size_t len = ec->curve == 1 ? 24 : ec->curve == 2 ? 32 : 48;
    return verify_ec_field(ec->rs, len, digest, dlen, key) == 0 ? COMPAT_PASS : COMPAT_NEXT;
}

int fwrel_sbv2_verify_compat(fwrel_report *report, fwrel_src *src, const fwrel_pkey *key,
                             int skip_padding)
{
    FWREL_ASSERT_ARG(src != NULL && key != NULL);
    uint8_t sector[FWREL_SBV2_SECTOR_LEN], d256[32], d384[48];
    fwrel_sbv2_sector sec;
    struct compat_ec ec = {0};
    int key_scheme, error, verified = 0;

    if ((error = fwrel_sbv2_key_scheme(&key_scheme, key)) != 0)
        return error;
    /* docs/esp-formats.md §2.7: espsecure's size rule. */
    if (src->size < FWREL_SBV2_SECTOR_LEN) {
        fwrel_report_add(report, "sbv2.size", FWREL_FAIL, "%llu bytes, less than one sector",
                         (unsigned long long)src->size);
        return fwrel_error_set(FWREL_EVERIFY, skip_padding
                                                  ? "Invalid datafile. File too small (must be at "
                                                    "least 4096 bytes)."
                                                  : "Invalid datafile. Data size should be "
                                                    "non-zero & a multiple of 4096.");
    }
    if (!skip_padding && src->size % FWREL_SBV2_SECTOR_LEN != 0) {
        fwrel_report_add(report, "sbv2.size", FWREL_FAIL, "%llu bytes, not a multiple of 4096",
                         (unsigned long long)src->size);
        return fwrel_error_set(FWREL_EVERIFY, "Invalid datafile. Data size should be non-zero & a "
                                              "multiple of 4096.");
    }
    uint64_t data_len = src->size - FWREL_SBV2_SECTOR_LEN;
    if ((error = fwrel_src_seek(src, data_len)) != 0 ||
        (error = fwrel_src_read(src, sector, sizeof(sector))) != 0)
        return error;
    fwrel_sbv2_parse_sector(&sec, sector);
    /* espsecure hashes with SHA-384 for a valid block with version 3 and hash type 1. */
    int want384 = 0;
    for (int i = 0; i < FWREL_SBV2_MAX_BLOCKS; i++)
        want384 |= sec.blocks[i].valid && sec.blocks[i].version == 3 && sec.blocks[i].raw[2] == 1;
    if ((error = fwrel_src_seek(src, 0)) != 0 ||
        (error = fwrel_digest_src(d256, want384 ? d384 : NULL, src, data_len)) != 0)
        return error;

    for (int i = 0; i < FWREL_SBV2_MAX_BLOCKS; i++) {
        const fwrel_sbv2_block *b = &sec.blocks[i];
        char name[32], why[160];
        snprintf(name, sizeof(name), "sbv2.block%d", i);
        if (!b->valid) {
            fwrel_report_add(report, name, FWREL_SKIP, "Signature block %d invalid. Skipping.", i);
            continue;
        }
        int is384 = b->version == 3 && b->raw[2] == 1;
        const uint8_t *digest = is384 ? d384 : d256;
        size_t dlen = is384 ? 48 : 32;
        int outcome = COMPAT_ABORT;
        if (memcmp(b->raw + OFF_DIGEST, digest, dlen) != 0) {
            /* espsecure raises a FatalError here, whatever earlier blocks said. */
            snprintf(why, sizeof(why),
                     "Signature block %d image digest does not match the actual image digest", i);
        } else {
            outcome = compat_block(why, sizeof(why), &ec, b->raw, key_scheme, digest, dlen, key);
        }
        if (outcome == COMPAT_ABORT) {
            fwrel_report_add(report, name, FWREL_FAIL, "%s", why);
            for (int j = i + 1; j < FWREL_SBV2_MAX_BLOCKS; j++) {
                snprintf(name, sizeof(name), "sbv2.block%d", j);
                fwrel_report_add(report, name, FWREL_SKIP,
                                 "not checked: espsecure stops at "
                                 "block %d",
                                 i);
            }
            return fwrel_error_set(FWREL_EVERIFY, "%s", why);
        }
        if (outcome == COMPAT_PASS) {
            fwrel_report_add(report, name, FWREL_PASS,
                             "Signature block %d verification successful using the supplied key "
                             "(%s).",
                             i, key_scheme == FWREL_SCHEME_RSA3072 ? "RSA" : "ECDSA");
            verified++;
        } else {
            fwrel_report_add(report, name, FWREL_FAIL,
                             "Signature block %d is not signed by the supplied key.", i);
        }
    }
    fwrel_error_clear();
    if (!verified)
        return fwrel_error_set(FWREL_EVERIFY, "Checked all blocks. Signature could not be verified "
                                              "with the provided key.");
    return 0;
}
