/* sbv1.c - Secure Boot V1 app signatures (sbv1.h; docs/esp-formats.md §3).
 *
 * ECDSA P-256 over SHA-256 with k derived per RFC 6979 section 3.2 (HMAC-SHA256). espsecure v4
 * signs with python-ecdsa's sign_deterministic(data, sha256) (esptool v4.11.0,
 * espsecure/__init__.py sign_secure_boot_v1), which is that RFC with the SHA-256 of the data as
 * h1 and no low-s normalisation; doing the same gives the same bytes for the same key and image.
 *
 * Only public OpenSSL 3.0 APIs are used: EC_GROUP/EC_POINT/BIGNUM (not deprecated in 3.0; the
 * deprecated part of the low-level EC API is EC_KEY, which is not needed here), EVP_MAC for the
 * HMAC and EVP_PKEY for verification. No deprecation warning is silenced.
 */
#include "fwrel/sbv1.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>

#include "util.h"

/* P-256: qlen = hlen = 256 bits, rlen = 32 bytes (RFC 6979 section 2.3). */
#define QLEN_BITS 256
#define RLEN      32

int fwrel_sbv1_parse_block(uint32_t *version, uint8_t sig[64], const uint8_t *block, size_t len)
{
    FWREL_ASSERT_ARG(version != NULL && sig != NULL && block != NULL);
    if (len != FWREL_SBV1_BLOCK_LEN)
        return fwrel_error_set(FWREL_EFORMAT, "a signature block is 68 bytes, not %zu", len);
    /* esp_secure_boot_sig_block_t: u32 LE version, r||s big-endian (docs/esp-formats.md §3). */
    *version = fwrel_le32(block);
    memcpy(sig, block + 4, 64);
    return 0;
}

void fwrel_sbv1_build_block(uint8_t block[FWREL_SBV1_BLOCK_LEN], const uint8_t sig[64])
{
    fwrel_put_le32(block, 0);
    memcpy(block + 4, sig, 64);
}

/* The key type Secure Boot V1 takes (P-256), with one message for every other kind. */
static int check_p256(const fwrel_pkey *key)
{
    int type;
    if (fwrel_key_type_of(&type, key) != 0 || type != FWREL_KEY_ECDSA256)
        return fwrel_error_set(FWREL_EKEY, "Secure Boot V1 needs an ECDSA P-256 key");
    return 0;
}

/*
 * RFC 6979 section 2.3.2 bits2int: the leftmost qlen bits of b as an integer. b is secret when
 * it is the candidate k, so out should be a secure, BN_FLG_CONSTTIME bignum then.
 */
static int bits2int(BIGNUM *out, const uint8_t *b, size_t blen)
{
    if (blen > (size_t)INT32_MAX / 8 || BN_bin2bn(b, (int)blen, out) == NULL)
        return 0;
    return blen * 8 <= QLEN_BITS || BN_rshift(out, out, (int)(blen * 8 - QLEN_BITS)) == 1;
}

/* RFC 6979 section 2.3.4 bits2octets: int2octets(bits2int(h) mod q), rlen bytes. */
static int bits2octets(uint8_t out[RLEN], const uint8_t *h, size_t hlen, const BIGNUM *q,
                       BN_CTX *ctx)
{
    BIGNUM *z = BN_new();
    /* z1 < 2^qlen < 2q, so "mod q" is at most one subtraction; h is public. */
    int ok = z != NULL && bits2int(z, h, hlen) && BN_nnmod(z, z, q, ctx) == 1 &&
             BN_bn2binpad(z, out, RLEN) == RLEN;
    BN_free(z);
    return ok;
}

/* HMAC_DRBG state of RFC 6979 section 3.2; K and V are secret (they determine k). */
typedef struct rfc6979 {
    EVP_MAC_CTX *mac;
    uint8_t K[32];
    uint8_t V[32];
} rfc6979;

/* out = HMAC_K(V [|| sep] [|| x || h]); sep < 0: none; x == NULL: no x || h. */
static int drbg_hmac(rfc6979 *d, uint8_t out[32], int sep, const uint8_t *x, const uint8_t *h)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    uint8_t tmp[32], s = (uint8_t)sep;
    size_t n = 0;
    int ok = EVP_MAC_init(d->mac, d->K, sizeof(d->K), params) == 1 &&
             EVP_MAC_update(d->mac, d->V, sizeof(d->V)) == 1 &&
             (sep < 0 || EVP_MAC_update(d->mac, &s, 1) == 1) &&
             (x == NULL ||
              (EVP_MAC_update(d->mac, x, RLEN) == 1 && EVP_MAC_update(d->mac, h, RLEN) == 1)) &&
             EVP_MAC_final(d->mac, tmp, &n, sizeof(tmp)) == 1 && n == sizeof(tmp);
    if (ok)
        memcpy(out, tmp, sizeof(tmp));
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return ok ? 0 : fwrel_error_set_openssl(FWREL_EKEY, "HMAC-SHA256 failed");
}

/* RFC 6979 section 3.2 steps b-g. */
static int drbg_init(rfc6979 *d, const uint8_t x[RLEN], const uint8_t h[RLEN])
{
    int error;
    memset(d->V, 0x01, sizeof(d->V));
    memset(d->K, 0x00, sizeof(d->K));
    if ((error = drbg_hmac(d, d->K, 0x00, x, h)) != 0 ||     /* d */
        (error = drbg_hmac(d, d->V, -1, NULL, NULL)) != 0 || /* e */
        (error = drbg_hmac(d, d->K, 0x01, x, h)) != 0 ||     /* f */
        (error = drbg_hmac(d, d->V, -1, NULL, NULL)) != 0)   /* g */
        return error;
    return 0;
}

/* Step h.1-h.2: T = V = HMAC_K(V); as qlen = hlen, one block is enough. */
static int drbg_next(rfc6979 *d)
{
    return drbg_hmac(d, d->V, -1, NULL, NULL);
}

/* Step h.3, candidate refused: K = HMAC_K(V || 0x00), V = HMAC_K(V). */
static int drbg_reseed(rfc6979 *d)
{
    int error;
    if ((error = drbg_hmac(d, d->K, 0x00, NULL, NULL)) != 0 ||
        (error = drbg_hmac(d, d->V, -1, NULL, NULL)) != 0)
        return error;
    return 0;
}

/* The private scalar as a secure bignum, read into a buffer this function wipes. */
static int private_scalar(BIGNUM *x, const fwrel_pkey *key, const BIGNUM *q)
{
    uint8_t native[RLEN];
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, native, sizeof(native)),
        OSSL_PARAM_construct_end(),
    };
    int error = 0;
    memset(native, 0, sizeof(native));
    if (EVP_PKEY_get_params((EVP_PKEY *)key, params) != 1 || !OSSL_PARAM_modified(params) ||
        params[0].return_size == 0 || params[0].return_size > sizeof(native) ||
        BN_native2bn(native, (int)params[0].return_size, x) == NULL)
        error = fwrel_error_set(FWREL_EKEY, "not a private key: Secure Boot V1 signing needs "
                                            "the ECDSA P-256 private key");
    else if (BN_is_zero(x) || BN_cmp(x, q) >= 0)
        error = fwrel_error_set(FWREL_EKEY, "private key out of range");
    OPENSSL_cleanse(native, sizeof(native));
    ERR_clear_error();
    return error;
}

/* Per-signature bignums; the secret ones come from the secure heap and compute in constant time. */
typedef struct sign_state {
    BN_CTX *ctx;
    BN_MONT_CTX *mont; /* Montgomery context of q, for Fermat inversions */
    BIGNUM *x, *k, *kinv, *blind, *binv, *tmp, *qm2; /* secret (qm2 is q - 2, public) */
    BIGNUM *h, *r, *s;
    EC_POINT *R;
} sign_state;

/* a^-1 mod q = a^(q-2) mod q (q prime), in constant time: OpenSSL's own choice for ECDSA
 * (ec_field_inverse_mod_ord in crypto/ec/ec_lib.c) rather than the branching Euclid. */
static int inverse_mod_q(BIGNUM *out, const BIGNUM *a, const BIGNUM *q, sign_state *st)
{
    return BN_mod_exp_mont_consttime(out, a, st->qm2, q, st->ctx, st->mont) == 1;
}

/*
 * s = k^-1 (h + r x) mod q, blinded as OpenSSL 1.1.0's ecdsa_sign_sig does with public APIs:
 * s = (b x r + b h) * k^-1 * b^-1 for a random b, so the arithmetic on x is done on values the
 * caller cannot predict. b cancels: the result is the deterministic s.
 */
static int compute_s(sign_state *st, const BIGNUM *q)
{
    do {
        if (BN_priv_rand_range_ex(st->blind, q, 0, st->ctx) != 1)
            return 0;
    } while (BN_is_zero(st->blind));
    return BN_mod_mul(st->tmp, st->blind, st->x, q, st->ctx) == 1 && /* b x */
           BN_mod_mul(st->tmp, st->tmp, st->r, q, st->ctx) == 1 &&   /* b x r */
           BN_mod_mul(st->s, st->blind, st->h, q, st->ctx) == 1 &&   /* b h */
           BN_mod_add_quick(st->s, st->s, st->tmp, q) == 1 &&        /* b (h + x r) */
           BN_mod_mul(st->s, st->s, st->kinv, q, st->ctx) == 1 &&    /* b k^-1 (h + x r) */
           inverse_mod_q(st->binv, st->blind, q, st) &&              /* b^-1 */
           BN_mod_mul(st->s, st->s, st->binv, q, st->ctx) == 1;
}

int fwrel_sbv1_sign_digest(uint8_t sig[64], const fwrel_pkey *key, const uint8_t digest[32])
{
    FWREL_ASSERT_ARG(sig != NULL && key != NULL && digest != NULL);
    EC_GROUP *group = NULL;
    EVP_MAC *mac = NULL;
    rfc6979 d = {NULL, {0}, {0}};
    sign_state st;
    uint8_t xb[RLEN], hb[RLEN];
    int error;

    memset(&st, 0, sizeof(st));
    if ((error = check_p256(key)) != 0)
        return error;
    ERR_clear_error();
    if ((group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) == NULL ||
        (mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL)) == NULL ||
        (d.mac = EVP_MAC_CTX_new(mac)) == NULL || (st.ctx = BN_CTX_secure_new()) == NULL ||
        (st.mont = BN_MONT_CTX_new()) == NULL || (st.x = BN_secure_new()) == NULL ||
        (st.k = BN_secure_new()) == NULL || (st.kinv = BN_secure_new()) == NULL ||
        (st.blind = BN_secure_new()) == NULL || (st.binv = BN_secure_new()) == NULL ||
        (st.tmp = BN_secure_new()) == NULL || (st.qm2 = BN_new()) == NULL ||
        (st.h = BN_new()) == NULL || (st.r = BN_new()) == NULL || (st.s = BN_new()) == NULL ||
        (st.R = EC_POINT_new(group)) == NULL) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot set up ECDSA P-256 signing");
        goto done;
    }
    const BIGNUM *q = EC_GROUP_get0_order(group);
    BN_set_flags(st.x, BN_FLG_CONSTTIME);
    BN_set_flags(st.k, BN_FLG_CONSTTIME);
    BN_set_flags(st.kinv, BN_FLG_CONSTTIME);
    BN_set_flags(st.blind, BN_FLG_CONSTTIME);
    BN_set_flags(st.binv, BN_FLG_CONSTTIME);
    BN_set_flags(st.tmp, BN_FLG_CONSTTIME);
    if ((error = private_scalar(st.x, key, q)) != 0)
        goto done;
    /* RFC 6979 3.2 a: h1 is the digest; int2octets(x) || bits2octets(h1) seed the DRBG. */
    if (BN_MONT_CTX_set(st.mont, q, st.ctx) != 1 || BN_copy(st.qm2, q) == NULL ||
        BN_sub_word(st.qm2, 2) != 1 || BN_bn2binpad(st.x, xb, RLEN) != RLEN ||
        !bits2octets(hb, digest, 32, q, st.ctx) ||
        !bits2int(st.h, digest, 32)) { /* the e of s = k^-1 (e + r x) (FIPS 186-4 6.4) */
        error = fwrel_error_set_openssl(FWREL_EKEY, "bignum failure");
        goto done;
    }
    if ((error = drbg_init(&d, xb, hb)) != 0)
        goto done;
    /* Step h: the first candidate k in [1, q-1] giving r != 0 and s != 0 (python-ecdsa's
     * retry_gen loop takes the same next candidate). Another round has probability ~2^-32. */
    for (int tries = 0;; tries++) {
        if (tries == 64) { /* ~2^-2048: a bug, not bad luck */
            error = fwrel_error_set(FWREL_EKEY, "RFC 6979: no usable k");
            goto done;
        }
        if ((error = drbg_next(&d)) != 0)
            goto done;
        if (!bits2int(st.k, d.V, sizeof(d.V))) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "bignum failure");
            goto done;
        }
        if (!BN_is_zero(st.k) && BN_cmp(st.k, q) < 0) {
            /* R = k G: OpenSSL's P-256 scalar multiplication is constant-time in k. */
            if (EC_POINT_mul(group, st.R, st.k, NULL, NULL, st.ctx) != 1 ||
                EC_POINT_get_affine_coordinates(group, st.R, st.r, NULL, st.ctx) != 1 ||
                BN_nnmod(st.r, st.r, q, st.ctx) != 1) {
                error = fwrel_error_set_openssl(FWREL_EKEY, "EC point multiplication failed");
                goto done;
            }
            if (!BN_is_zero(st.r)) {
                if (!inverse_mod_q(st.kinv, st.k, q, &st) || !compute_s(&st, q)) {
                    error = fwrel_error_set_openssl(FWREL_EKEY, "bignum failure");
                    goto done;
                }
                if (!BN_is_zero(st.s))
                    break;
            }
        }
        if ((error = drbg_reseed(&d)) != 0)
            goto done;
    }
    /* No low-s normalisation: python-ecdsa and espsecure keep s as computed. */
    if (BN_bn2binpad(st.r, sig, 32) != 32 || BN_bn2binpad(st.s, sig + 32, 32) != 32) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "bignum failure");
        goto done;
    }
    error = 0;
done:
    OPENSSL_cleanse(xb, sizeof(xb));
    OPENSSL_cleanse(&d.K, sizeof(d.K));
    OPENSSL_cleanse(&d.V, sizeof(d.V));
    EVP_MAC_CTX_free(d.mac);
    EVP_MAC_free(mac);
    BN_clear_free(st.x);
    BN_clear_free(st.k);
    BN_clear_free(st.kinv);
    BN_clear_free(st.blind);
    BN_clear_free(st.binv);
    BN_clear_free(st.tmp);
    BN_clear_free(st.s); /* s and R, with r and h, give k; s is output only on success */
    BN_free(st.qm2);
    BN_free(st.h);
    BN_free(st.r);
    EC_POINT_clear_free(st.R);
    BN_MONT_CTX_free(st.mont);
    BN_CTX_free(st.ctx);
    EC_GROUP_free(group);
    if (error)
        OPENSSL_cleanse(sig, 64);
    return error;
}

int fwrel_sbv1_verify_digest(const uint8_t sig[64], const fwrel_pkey *key, const uint8_t digest[32])
{
    FWREL_ASSERT_ARG(sig != NULL && key != NULL && digest != NULL);
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    int error;

    if ((error = check_p256(key)) != 0)
        return error;
    ERR_clear_error();
    /* r and s as python-ecdsa / pyca read them: any 256-bit big-endian value; OpenSSL
     * refuses 0 and values >= q, as they do. */
    if ((es = ECDSA_SIG_new()) == NULL || (r = BN_bin2bn(sig, 32, NULL)) == NULL ||
        (s = BN_bin2bn(sig + 32, 32, NULL)) == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        error = fwrel_error_set_openssl(FWREL_EIO, "out of memory");
        goto done;
    }
    r = s = NULL;
    int der_len = i2d_ECDSA_SIG(es, &der);
    if (der_len <= 0 || (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)key, NULL)) == NULL ||
        EVP_PKEY_verify_init(ctx) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot set up ECDSA verification");
        goto done;
    }
    if (EVP_PKEY_verify(ctx, der, (size_t)der_len, digest, 32) != 1) {
        ERR_clear_error();
        error = fwrel_error_set(FWREL_EVERIFY, "Signature is not valid.");
        goto done;
    }
    error = 0;
done:
    OPENSSL_free(der);
    EVP_PKEY_CTX_free(ctx);
    ECDSA_SIG_free(es);
    BN_free(r);
    BN_free(s);
    return error;
}

/* fwrel_espimg_opts.sink: the parser's bytes go to the output as they are read. */
static int sink_to_out(void *ctx, const uint8_t *data, size_t len)
{
    return fwrel_out_write(ctx, data, len);
}

/*
 * Parse the image (copying it to out when given, hashing it in the same pass), check that it may
 * be signed for Secure Boot V1 and return the SHA-256 to sign.
 */
static int prepare(uint8_t digest[32], fwrel_espimg *img, const char *in_path, fwrel_out *out,
                   int ignore_chip)
{
    fwrel_src src = {.fd = -1};
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    fwrel_espimg_opts opts = {out != NULL ? sink_to_out : NULL, out, md};
    unsigned int n = 0;
    int error;

    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        error = fwrel_error_set_openssl(FWREL_EIO, "cannot set up SHA-256");
        goto done;
    }
    if ((error = fwrel_src_open(&src, in_path, FWREL_IMAGE_MAX)) != 0 ||
        (error = fwrel_espimg_parse(img, &src, &opts)) != 0)
        goto done;
    if ((error = fwrel_espimg_check_input(img)) != 0)
        goto done;
    /* espsecure signs the whole file, the device hashes [0, image_len) and reads the block at
     * image_len (docs/esp-formats.md §3): with anything in between, the signature would be over
     * other bytes. */
    if (img->file_len != img->image_len) {
        error = fwrel_error_set(FWREL_EFORMAT,
                                "%llu bytes past the end of the image: the device would not "
                                "look there",
                                (unsigned long long)(img->file_len - img->image_len));
        goto done;
    }
    if (!ignore_chip && (img->chip == NULL || !img->chip->sbv1)) {
        if (img->chip != NULL)
            error = fwrel_error_set(FWREL_EKEY, "%s has no Secure Boot V1 app signing",
                                    img->chip->name);
        else
            error = fwrel_error_set(FWREL_EKEY,
                                    "chip id %u: unknown chip, no Secure Boot V1 app signing",
                                    img->chip_id);
        goto done;
    }
    if (EVP_DigestFinal_ex(md, digest, &n) != 1 || n != 32) {
        error = fwrel_error_set_openssl(FWREL_EIO, "SHA-256 failed");
        goto done;
    }
    error = 0;
done:
    EVP_MD_CTX_free(md);
    fwrel_src_close(&src);
    return error;
}

int fwrel_sbv1_sign_to(fwrel_out *out, const char *in_path, const fwrel_pkey *key,
                       const uint8_t *sig, int ignore_chip, fwrel_espimg *img)
{
    FWREL_ASSERT_ARG(out != NULL && in_path != NULL && key != NULL);
    fwrel_espimg local;
    uint8_t digest[32], rs[64], block[FWREL_SBV1_BLOCK_LEN];
    int error;

    if ((error = check_p256(key)) != 0 ||
        (error = prepare(digest, &local, in_path, out, ignore_chip)) != 0)
        return error;
    if (sig != NULL) {
        /* espsecure back-verifies a pre-computed signature with the public key (sign_data). */
        if (fwrel_sbv1_verify_digest(sig, key, digest) != 0)
            return fwrel_error_set(FWREL_EVERIFY,
                                   "the signature does not verify with the given public key");
        memcpy(rs, sig, sizeof(rs));
    } else if ((error = fwrel_sbv1_sign_digest(rs, key, digest)) != 0) {
        return error;
    }
    fwrel_sbv1_build_block(block, rs);
    if ((error = fwrel_out_write(out, block, sizeof(block))) != 0)
        return error;
    if (img != NULL)
        *img = local;
    return 0;
}

int fwrel_sbv1_sign(const char *in_path, const char *out_path, unsigned out_flags,
                    const fwrel_pkey *key, const uint8_t *sig, int ignore_chip, fwrel_espimg *img)
{
    FWREL_ASSERT_ARG(in_path != NULL && out_path != NULL && key != NULL);
    fwrel_espimg local;
    fwrel_out *out = NULL;
    int error;

    /* Before anything is created: a key that cannot sign for SBv1 is refused up front. */
    if ((error = check_p256(key)) != 0 ||
        (error = fwrel_out_open(&out, out_path, out_flags, 0644)) != 0)
        return error;
    if ((error = fwrel_sbv1_sign_to(out, in_path, key, sig, ignore_chip, &local)) != 0) {
        fwrel_out_abort(out);
        return error;
    }
    if ((error = fwrel_out_commit(out)) == 0 && img != NULL)
        *img = local;
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

    /* espsecure's order (verify_signature_v1): the key's curve, the block, then the data. */
    if ((error = check_p256(key)) != 0) {
        fwrel_report_add(report, "sbv1.key", FWREL_FAIL, "%s", fwrel_error_last()->message);
        return error;
    }
    if (src->size < FWREL_SBV1_BLOCK_LEN) {
        /* struct.unpack on fewer than 68 bytes: espsecure fails, so the verdict is invalid. */
        fwrel_report_add(report, "sbv1.size", FWREL_FAIL, "%llu bytes, less than a 68-byte block",
                         (unsigned long long)src->size);
        return fwrel_error_set(FWREL_EVERIFY, "%llu bytes: too short for a signature block",
                               (unsigned long long)src->size);
    }
    uint64_t len = src->size - FWREL_SBV1_BLOCK_LEN;
    if ((error = fwrel_src_seek(src, len)) != 0 ||
        (error = fwrel_src_read(src, block, sizeof(block))) != 0 ||
        (error = fwrel_sbv1_parse_block(&version, sig, block, sizeof(block))) != 0)
        return error;
    if (version != 0) {
        fwrel_report_add(report, "sbv1.version", FWREL_FAIL, "version word %u", version);
        return fwrel_error_set(FWREL_EVERIFY,
                               "Signature block has version %u. This version of espsecure only "
                               "supports version 0.",
                               version);
    }
    fwrel_report_add(report, "sbv1.version", FWREL_PASS, "version word 0");
    fwrel_report_add(report, "sbv1.data", FWREL_INFO, "Verifying %llu bytes of data",
                     (unsigned long long)len);
    if ((error = fwrel_src_seek(src, 0)) != 0 ||
        (error = fwrel_digest_src(digest, NULL, src, len)) != 0)
        return error;
    error = fwrel_sbv1_verify_digest(sig, key, digest);
    fwrel_report_add(report, "sbv1.signature", error ? FWREL_FAIL : FWREL_PASS, "%s",
                     error ? fwrel_error_last()->message : "Signature is valid.");
    return error;
}
