/*
 * port_mbedtls.c - the device core's crypto port on mbedTLS (fwrel_dev_crypto.h): written for
 * the 3.x API of ESP-IDF v5, and built on the host against Debian's 2.28 for the tests; the
 * few calls whose arguments differ are under MBEDTLS_VERSION_MAJOR.
 *
 * mbedTLS has no Ed25519: ed25519_verify() below is RFC 8032 section 5.1.7 on mbedTLS's
 * bignums (public data only: variable time is fine), cofactorless like OpenSSL's (the encoding
 * of [S]B - [k]A must be R's bytes). HKDF is HMAC-SHA256 (RFC 5869), since ESP-IDF builds
 * mbedTLS without MBEDTLS_HKDF_C by default.
 */
#include <string.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <mbedtls/sha512.h>
#include <mbedtls/version.h>

#include "fwrel_dev_crypto.h"

#if MBEDTLS_VERSION_MAJOR >= 3
#define SHA256_STARTS(c)       mbedtls_sha256_starts(c, 0)
#define SHA256_UPDATE(c, p, n) mbedtls_sha256_update(c, p, n)
#define SHA256_FINISH(c, o)    mbedtls_sha256_finish(c, o)
#define SHA256(p, n, o)        mbedtls_sha256(p, n, o, 0)
#define SHA512_STARTS(c)       mbedtls_sha512_starts(c, 0)
#define SHA512_UPDATE(c, p, n) mbedtls_sha512_update(c, p, n)
#define SHA512_FINISH(c, o)    mbedtls_sha512_finish(c, o)
#else
#define SHA256_STARTS(c)       mbedtls_sha256_starts_ret(c, 0)
#define SHA256_UPDATE(c, p, n) mbedtls_sha256_update_ret(c, p, n)
#define SHA256_FINISH(c, o)    mbedtls_sha256_finish_ret(c, o)
#define SHA256(p, n, o)        mbedtls_sha256_ret(p, n, o, 0)
#define SHA512_STARTS(c)       mbedtls_sha512_starts_ret(c, 0)
#define SHA512_UPDATE(c, p, n) mbedtls_sha512_update_ret(c, p, n)
#define SHA512_FINISH(c, o)    mbedtls_sha512_finish_ret(c, o)
#endif

/* The contexts live in the caller's storage (fwrel_dev_ctx), checked at compile time. */
typedef char sha_fits[sizeof(mbedtls_sha256_context) <= FWREL_DEV_CTX_MAX ? 1 : -1];
struct gcm_state {
    mbedtls_gcm_context gcm;
    int encrypt;
    uint8_t *pending; /* 3.x: where the last update's held-back bytes go at finish */
    size_t npending;
};
typedef char gcm_fits[sizeof(struct gcm_state) <= FWREL_DEV_CTX_MAX ? 1 : -1];

static mbedtls_sha256_context *sha_of(fwrel_dev_ctx *ctx)
{
    return (mbedtls_sha256_context *)(void *)ctx->bytes;
}

static struct gcm_state *gcm_of(fwrel_dev_ctx *ctx)
{
    return (struct gcm_state *)(void *)ctx->bytes;
}

static int sha256_start(fwrel_dev_ctx *ctx)
{
    mbedtls_sha256_init(sha_of(ctx));
    if (SHA256_STARTS(sha_of(ctx)) != 0) {
        mbedtls_sha256_free(sha_of(ctx));
        return -1;
    }
    return 0;
}

static int sha256_update(fwrel_dev_ctx *ctx, const uint8_t *data, size_t len)
{
    return SHA256_UPDATE(sha_of(ctx), data, len) == 0 ? 0 : -1;
}

static int sha256_finish(fwrel_dev_ctx *ctx, uint8_t out[32])
{
    int ok = SHA256_FINISH(sha_of(ctx), out) == 0;
    mbedtls_sha256_free(sha_of(ctx));
    return ok ? 0 : -1;
}

static void sha256_abort(fwrel_dev_ctx *ctx)
{
    mbedtls_sha256_free(sha_of(ctx));
}

static int gcm_start(fwrel_dev_ctx *ctx, int encrypt, const uint8_t key[32], const uint8_t iv[12],
                     const uint8_t *aad, size_t aad_len)
{
    struct gcm_state *g = gcm_of(ctx);
    int mode = encrypt ? MBEDTLS_GCM_ENCRYPT : MBEDTLS_GCM_DECRYPT, ret;
    mbedtls_gcm_init(&g->gcm);
    g->encrypt = encrypt;
    g->pending = NULL;
    g->npending = 0;
    ret = mbedtls_gcm_setkey(&g->gcm, MBEDTLS_CIPHER_ID_AES, key, 256);
#if MBEDTLS_VERSION_MAJOR >= 3
    if (ret == 0)
        ret = mbedtls_gcm_starts(&g->gcm, mode, iv, 12);
    if (ret == 0 && aad_len > 0)
        ret = mbedtls_gcm_update_ad(&g->gcm, aad, aad_len);
#else
    if (ret == 0)
        ret = mbedtls_gcm_starts(&g->gcm, mode, iv, 12, aad, aad_len);
#endif
    if (ret != 0) {
        mbedtls_gcm_free(&g->gcm);
        return -1;
    }
    return 0;
}

static int gcm_update(fwrel_dev_ctx *ctx, const uint8_t *in, uint8_t *out, size_t len)
{
    struct gcm_state *g = gcm_of(ctx);
#if MBEDTLS_VERSION_MAJOR >= 3
    /* An implementation may hold back the last partial block until finish (ESP-IDF's
     * esp_aes_gcm_update documents "buffered output"): only after the last update. */
    size_t olen = 0;
    if (g->npending != 0 || mbedtls_gcm_update(&g->gcm, in, len, out, len, &olen) != 0 ||
        olen > len || len - olen >= 16)
        return -1;
    g->pending = out + olen;
    g->npending = len - olen;
    return 0;
#else
    return mbedtls_gcm_update(&g->gcm, len, in, out) == 0 ? 0 : -1;
#endif
}

static void gcm_abort(fwrel_dev_ctx *ctx)
{
    mbedtls_gcm_free(&gcm_of(ctx)->gcm);
}

static int gcm_finish(fwrel_dev_ctx *ctx, uint8_t tag[16])
{
    struct gcm_state *g = gcm_of(ctx);
    uint8_t mine[16];
    int ret;
#if MBEDTLS_VERSION_MAJOR >= 3
    uint8_t rest[16];
    size_t olen = 0;
    ret = mbedtls_gcm_finish(&g->gcm, rest, sizeof(rest), &olen, mine, 16);
    if (ret == 0 && olen != g->npending)
        ret = -1;
    if (ret == 0 && olen > 0)
        memcpy(g->pending, rest, olen);
    mbedtls_platform_zeroize(rest, sizeof(rest));
#else
    ret = mbedtls_gcm_finish(&g->gcm, mine, 16);
#endif
    if (ret == 0 && g->encrypt) {
        memcpy(tag, mine, 16);
    } else if (ret == 0) {
        uint8_t diff = 0; /* constant time */
        for (size_t i = 0; i < 16; i++)
            diff |= (uint8_t)(mine[i] ^ tag[i]);
        ret = diff != 0 ? -1 : 0;
    }
    mbedtls_platform_zeroize(mine, sizeof(mine));
    mbedtls_gcm_free(&g->gcm);
    return ret == 0 ? 0 : -1;
}

/* HMAC-SHA256 of up to two parts. */
static int hmac(uint8_t out[32], const uint8_t *key, size_t key_len, const uint8_t *a, size_t a_len,
                const uint8_t *b, size_t b_len)
{
    mbedtls_md_context_t md;
    int ret;
    mbedtls_md_init(&md);
    ret = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    if (ret == 0)
        ret = mbedtls_md_hmac_starts(&md, key, key_len);
    if (ret == 0 && a_len > 0)
        ret = mbedtls_md_hmac_update(&md, a, a_len);
    if (ret == 0 && b_len > 0)
        ret = mbedtls_md_hmac_update(&md, b, b_len);
    if (ret == 0)
        ret = mbedtls_md_hmac_finish(&md, out);
    mbedtls_md_free(&md);
    return ret == 0 ? 0 : -1;
}

static int hkdf_sha256(uint8_t *okm, size_t okm_len, const uint8_t *salt, size_t salt_len,
                       const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len)
{
    static const uint8_t zeros[32] = {0};
    uint8_t prk[32], t[32 + 1];
    size_t done = 0, tlen = 0;
    int ret = 0;
    if (okm_len > 255 * 32)
        return -1;
    if (salt_len == 0) {
        salt = zeros;
        salt_len = sizeof(zeros);
    }
    ret = hmac(prk, salt, salt_len, ikm, ikm_len, NULL, 0);
    for (uint8_t i = 1; ret == 0 && done < okm_len; i++) {
        /* T(i) = HMAC(PRK, T(i-1) || info || i): T(i-1) and i in t, info between. */
        mbedtls_md_context_t md;
        mbedtls_md_init(&md);
        ret = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
        if (ret == 0)
            ret = mbedtls_md_hmac_starts(&md, prk, 32);
        if (ret == 0 && tlen > 0)
            ret = mbedtls_md_hmac_update(&md, t, tlen);
        if (ret == 0 && info_len > 0)
            ret = mbedtls_md_hmac_update(&md, info, info_len);
        if (ret == 0)
            ret = mbedtls_md_hmac_update(&md, &i, 1);
        if (ret == 0)
            ret = mbedtls_md_hmac_finish(&md, t);
        mbedtls_md_free(&md);
        tlen = 32;
        size_t take = okm_len - done < 32 ? okm_len - done : 32;
        if (ret == 0)
            memcpy(okm + done, t, take);
        done += take;
    }
    mbedtls_platform_zeroize(prk, sizeof(prk));
    mbedtls_platform_zeroize(t, sizeof(t));
    return ret == 0 ? 0 : -1;
}

/* A DRBG for the blinding mbedTLS 3.x requires of private-key operations. */
struct rng {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};

static int rng_init(struct rng *r)
{
    static const char pers[] = "fwrel-dev";
    mbedtls_entropy_init(&r->entropy);
    mbedtls_ctr_drbg_init(&r->drbg);
    return mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy,
                                 (const unsigned char *)pers, sizeof(pers) - 1) == 0
               ? 0
               : -1;
}

static void rng_free(struct rng *r)
{
    mbedtls_ctr_drbg_free(&r->drbg);
    mbedtls_entropy_free(&r->entropy);
}

/* --- Ed25519 verification (RFC 8032 5.1.7) ------------------------------------------------ */

/* Extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, x*y = T/Z, on -x^2 + y^2 = 1 + d x^2 y^2. */
struct ed_pt {
    mbedtls_mpi X, Y, Z, T;
};

struct ed_curve {
    mbedtls_mpi p, d2, L, sqrtm1;
};

#define ED_P      "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFED"
#define ED_D2     "2406D9DC56DFFCE7198E80F2EEF3D13000E0149A8283B156EBD69B9426B2F159"
#define ED_L      "1000000000000000000000000000000014DEF9DEA2F79CD65812631A5CF5D3ED"
#define ED_SQRTM1 "2B8324804FC1DF0B2B4D00993DFBD7A72F431806AD2FE478C4EE1B274A0EA0B0"
#define ED_BX     "216936D3CD6E53FEC0A4E231FDD6DC5C692CC7609525A7B2C9562D608F25D51A"
#define ED_BY     "6666666666666666666666666666666666666666666666666666666666666658"
#define ED_D      "52036CEE2B6FFE738CC740797779E89800700A4D4141D8AB75EB4DCA135978A3"

#define CHK(x)                                                                                     \
    do {                                                                                           \
        if ((ret = (x)) != 0)                                                                      \
            goto done;                                                                             \
    } while (0)

static void pt_init(struct ed_pt *q)
{
    mbedtls_mpi_init(&q->X);
    mbedtls_mpi_init(&q->Y);
    mbedtls_mpi_init(&q->Z);
    mbedtls_mpi_init(&q->T);
}

static void pt_free(struct ed_pt *q)
{
    mbedtls_mpi_free(&q->X);
    mbedtls_mpi_free(&q->Y);
    mbedtls_mpi_free(&q->Z);
    mbedtls_mpi_free(&q->T);
}

/* r = a * b mod p; r = a + b mod p; r = a - b mod p (r may be a or b). */
static int fmul(mbedtls_mpi *r, const mbedtls_mpi *a, const mbedtls_mpi *b, const mbedtls_mpi *p)
{
    int ret = mbedtls_mpi_mul_mpi(r, a, b);
    return ret ? ret : mbedtls_mpi_mod_mpi(r, r, p);
}

static int fadd(mbedtls_mpi *r, const mbedtls_mpi *a, const mbedtls_mpi *b, const mbedtls_mpi *p)
{
    int ret = mbedtls_mpi_add_mpi(r, a, b);
    return ret ? ret : mbedtls_mpi_mod_mpi(r, r, p);
}

static int fsub(mbedtls_mpi *r, const mbedtls_mpi *a, const mbedtls_mpi *b, const mbedtls_mpi *p)
{
    int ret = mbedtls_mpi_sub_mpi(r, a, b);
    return ret ? ret : mbedtls_mpi_mod_mpi(r, r, p);
}

/* r = a + b (add-2008-hwcd-3, complete for a = -1: also doubles). r may alias a or b. */
static int pt_add(struct ed_pt *r, const struct ed_pt *a, const struct ed_pt *b,
                  const struct ed_curve *c)
{
    mbedtls_mpi A, B, C, D, t;
    int ret;
    mbedtls_mpi_init(&A);
    mbedtls_mpi_init(&B);
    mbedtls_mpi_init(&C);
    mbedtls_mpi_init(&D);
    mbedtls_mpi_init(&t);
    CHK(fsub(&A, &a->Y, &a->X, &c->p));
    CHK(fsub(&t, &b->Y, &b->X, &c->p));
    CHK(fmul(&A, &A, &t, &c->p)); /* A = (Y1-X1)(Y2-X2) */
    CHK(fadd(&B, &a->Y, &a->X, &c->p));
    CHK(fadd(&t, &b->Y, &b->X, &c->p));
    CHK(fmul(&B, &B, &t, &c->p)); /* B = (Y1+X1)(Y2+X2) */
    CHK(fmul(&C, &a->T, &b->T, &c->p));
    CHK(fmul(&C, &C, &c->d2, &c->p)); /* C = T1 2d T2 */
    CHK(fmul(&D, &a->Z, &b->Z, &c->p));
    CHK(fadd(&D, &D, &D, &c->p)); /* D = 2 Z1 Z2 */
    /* E = B-A, F = D-C, G = D+C, H = B+A; X3 = EF, Y3 = GH, T3 = EH, Z3 = FG */
    CHK(fsub(&t, &B, &A, &c->p)); /* t = E */
    CHK(fadd(&B, &B, &A, &c->p)); /* B = H */
    CHK(fsub(&A, &D, &C, &c->p)); /* A = F */
    CHK(fadd(&D, &D, &C, &c->p)); /* D = G */
    CHK(fmul(&r->X, &t, &A, &c->p));
    CHK(fmul(&r->Y, &D, &B, &c->p));
    CHK(fmul(&r->T, &t, &B, &c->p));
    CHK(fmul(&r->Z, &A, &D, &c->p));
done:
    mbedtls_mpi_free(&A);
    mbedtls_mpi_free(&B);
    mbedtls_mpi_free(&C);
    mbedtls_mpi_free(&D);
    mbedtls_mpi_free(&t);
    return ret;
}

/* r = k * q, double and add from the top bit. */
static int pt_mul(struct ed_pt *r, const mbedtls_mpi *k, const struct ed_pt *q,
                  const struct ed_curve *c)
{
    int ret;
    CHK(mbedtls_mpi_lset(&r->X, 0));
    CHK(mbedtls_mpi_lset(&r->Y, 1));
    CHK(mbedtls_mpi_lset(&r->Z, 1));
    CHK(mbedtls_mpi_lset(&r->T, 0));
    for (size_t i = mbedtls_mpi_bitlen(k); i-- > 0;) {
        CHK(pt_add(r, r, r, c));
        if (mbedtls_mpi_get_bit(k, i))
            CHK(pt_add(r, r, q, c));
    }
done:
    return ret;
}

/* RFC 8032 5.1.3: a point from its 32-byte encoding. */
static int pt_decode(struct ed_pt *q, const uint8_t in[32], const struct ed_curve *c)
{
    uint8_t b[32];
    mbedtls_mpi u, v, t, d, e;
    int ret, sign = in[31] >> 7;
    memcpy(b, in, 32);
    b[31] &= 0x7F;
    mbedtls_mpi_init(&u);
    mbedtls_mpi_init(&v);
    mbedtls_mpi_init(&t);
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&e);
    CHK(mbedtls_mpi_read_binary_le(&q->Y, b, 32));
    if (mbedtls_mpi_cmp_mpi(&q->Y, &c->p) >= 0) {
        ret = -1;
        goto done;
    }
    CHK(mbedtls_mpi_read_string(&d, 16, ED_D));
    CHK(fmul(&u, &q->Y, &q->Y, &c->p));
    CHK(fmul(&v, &u, &d, &c->p));
    CHK(mbedtls_mpi_sub_int(&u, &u, 1));
    CHK(mbedtls_mpi_mod_mpi(&u, &u, &c->p)); /* u = y^2 - 1 */
    CHK(mbedtls_mpi_add_int(&v, &v, 1));
    CHK(mbedtls_mpi_mod_mpi(&v, &v, &c->p)); /* v = d y^2 + 1 */
    /* x = u v^3 (u v^7)^((p-5)/8) */
    CHK(fmul(&t, &v, &v, &c->p));
    CHK(fmul(&t, &t, &v, &c->p)); /* v^3 */
    CHK(fmul(&d, &t, &t, &c->p));
    CHK(fmul(&d, &d, &v, &c->p)); /* v^7 */
    CHK(fmul(&d, &d, &u, &c->p)); /* u v^7 */
    CHK(mbedtls_mpi_sub_int(&e, &c->p, 5));
    CHK(mbedtls_mpi_shift_r(&e, 3));
    CHK(mbedtls_mpi_exp_mod(&d, &d, &e, &c->p, NULL));
    CHK(fmul(&t, &t, &u, &c->p));
    CHK(fmul(&q->X, &t, &d, &c->p));
    /* v x^2 against u and -u */
    CHK(fmul(&t, &q->X, &q->X, &c->p));
    CHK(fmul(&t, &t, &v, &c->p));
    if (mbedtls_mpi_cmp_mpi(&t, &u) != 0) {
        CHK(fadd(&t, &t, &u, &c->p));
        if (mbedtls_mpi_cmp_int(&t, 0) != 0) {
            ret = -1;
            goto done;
        }
        CHK(fmul(&q->X, &q->X, &c->sqrtm1, &c->p));
    }
    if (mbedtls_mpi_cmp_int(&q->X, 0) == 0 && sign) {
        ret = -1;
        goto done;
    }
    if ((int)mbedtls_mpi_get_bit(&q->X, 0) != sign)
        CHK(mbedtls_mpi_sub_mpi(&q->X, &c->p, &q->X));
    CHK(mbedtls_mpi_lset(&q->Z, 1));
    CHK(fmul(&q->T, &q->X, &q->Y, &c->p));
done:
    mbedtls_mpi_free(&u);
    mbedtls_mpi_free(&v);
    mbedtls_mpi_free(&t);
    mbedtls_mpi_free(&d);
    mbedtls_mpi_free(&e);
    return ret;
}

static int pt_encode(uint8_t out[32], const struct ed_pt *q, const struct ed_curve *c)
{
    mbedtls_mpi zi, x, y;
    int ret;
    mbedtls_mpi_init(&zi);
    mbedtls_mpi_init(&x);
    mbedtls_mpi_init(&y);
    CHK(mbedtls_mpi_inv_mod(&zi, &q->Z, &c->p));
    CHK(fmul(&x, &q->X, &zi, &c->p));
    CHK(fmul(&y, &q->Y, &zi, &c->p));
    CHK(mbedtls_mpi_write_binary_le(&y, out, 32));
    out[31] |= (uint8_t)(mbedtls_mpi_get_bit(&x, 0) << 7);
done:
    mbedtls_mpi_free(&zi);
    mbedtls_mpi_free(&x);
    mbedtls_mpi_free(&y);
    return ret;
}

static int ed25519_verify(const uint8_t pub[32], const uint8_t *msg, size_t len,
                          const uint8_t sig[64])
{
    struct ed_curve c;
    struct ed_pt A, B, sB, kA;
    mbedtls_mpi S, k;
    mbedtls_sha512_context h;
    uint8_t digest[64], again[32];
    int ret;
    mbedtls_mpi_init(&c.p);
    mbedtls_mpi_init(&c.d2);
    mbedtls_mpi_init(&c.L);
    mbedtls_mpi_init(&c.sqrtm1);
    pt_init(&A);
    pt_init(&B);
    pt_init(&sB);
    pt_init(&kA);
    mbedtls_mpi_init(&S);
    mbedtls_mpi_init(&k);
    mbedtls_sha512_init(&h);
    CHK(mbedtls_mpi_read_string(&c.p, 16, ED_P));
    CHK(mbedtls_mpi_read_string(&c.d2, 16, ED_D2));
    CHK(mbedtls_mpi_read_string(&c.L, 16, ED_L));
    CHK(mbedtls_mpi_read_string(&c.sqrtm1, 16, ED_SQRTM1));
    /* S < L, A a point */
    CHK(mbedtls_mpi_read_binary_le(&S, sig + 32, 32));
    if (mbedtls_mpi_cmp_mpi(&S, &c.L) >= 0) {
        ret = -1;
        goto done;
    }
    CHK(pt_decode(&A, pub, &c));
    /* k = SHA-512(R || A || M) mod L */
    CHK(SHA512_STARTS(&h));
    CHK(SHA512_UPDATE(&h, sig, 32));
    CHK(SHA512_UPDATE(&h, pub, 32));
    CHK(SHA512_UPDATE(&h, msg, len));
    CHK(SHA512_FINISH(&h, digest));
    CHK(mbedtls_mpi_read_binary_le(&k, digest, 64));
    CHK(mbedtls_mpi_mod_mpi(&k, &k, &c.L));
    /* [S]B - [k]A, encoded, must be R */
    CHK(mbedtls_mpi_read_string(&B.X, 16, ED_BX));
    CHK(mbedtls_mpi_read_string(&B.Y, 16, ED_BY));
    CHK(mbedtls_mpi_lset(&B.Z, 1));
    CHK(fmul(&B.T, &B.X, &B.Y, &c.p));
    CHK(pt_mul(&sB, &S, &B, &c));
    CHK(mbedtls_mpi_sub_mpi(&A.X, &c.p, &A.X)); /* -A = (-x, y) */
    CHK(mbedtls_mpi_mod_mpi(&A.X, &A.X, &c.p));
    CHK(fmul(&A.T, &A.X, &A.Y, &c.p));
    CHK(pt_mul(&kA, &k, &A, &c));
    CHK(pt_add(&sB, &sB, &kA, &c));
    CHK(pt_encode(again, &sB, &c));
    ret = memcmp(again, sig, 32) == 0 ? 0 : -1;
done:
    mbedtls_sha512_free(&h);
    mbedtls_mpi_free(&S);
    mbedtls_mpi_free(&k);
    pt_free(&A);
    pt_free(&B);
    pt_free(&sB);
    pt_free(&kA);
    mbedtls_mpi_free(&c.p);
    mbedtls_mpi_free(&c.d2);
    mbedtls_mpi_free(&c.L);
    mbedtls_mpi_free(&c.sqrtm1);
    return ret == 0 ? 0 : -1;
}

/* --- signatures, key unwrapping ----------------------------------------------------------- */

static int sig_verify(int alg, const uint8_t *spki, size_t spki_len, const uint8_t *msg,
                      size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    mbedtls_pk_context pk;
    uint8_t hash[32], full[384];
    int ok = 0;
    if (alg == FWREL_DEV_SIG_ED25519) /* the core matched the 44-byte SPKI: the key at 12 */
        return spki_len == 44 && sig_len == 64 ? ed25519_verify(spki + 12, msg, msg_len, sig) : -1;
    mbedtls_pk_init(&pk);
    if (mbedtls_pk_parse_public_key(&pk, spki, spki_len) != 0 || SHA256(msg, msg_len, hash) != 0)
        goto done;
    if (alg == FWREL_DEV_SIG_RSA_PSS && mbedtls_pk_get_type(&pk) == MBEDTLS_PK_RSA &&
        mbedtls_pk_get_bitlen(&pk) == 3072 && sig_len <= sizeof(full)) {
        mbedtls_rsa_context *rsa = mbedtls_pk_rsa(pk);
        /* OpenSSL takes a signature shorter than the modulus as its value: so does this. */
        memset(full, 0, sizeof(full));
        memcpy(full + sizeof(full) - sig_len, sig, sig_len);
#if MBEDTLS_VERSION_MAJOR >= 3
        ok = mbedtls_rsa_rsassa_pss_verify_ext(rsa, MBEDTLS_MD_SHA256, 32, hash, MBEDTLS_MD_SHA256,
                                               32, full) == 0;
#else
        ok = mbedtls_rsa_rsassa_pss_verify_ext(rsa, NULL, NULL, MBEDTLS_RSA_PUBLIC,
                                               MBEDTLS_MD_SHA256, 32, hash, MBEDTLS_MD_SHA256, 32,
                                               full) == 0;
#endif
    } else if (alg == FWREL_DEV_SIG_ECDSA && mbedtls_pk_get_type(&pk) == MBEDTLS_PK_ECKEY &&
               mbedtls_pk_get_bitlen(&pk) == 256) {
        /* The core passed the one canonical DER encoding only. */
        ok = mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, hash, 32, sig, sig_len) == 0;
    }
done:
    mbedtls_pk_free(&pk);
    return ok ? 0 : -1;
}

static int rsa_oaep_decrypt(uint8_t *out, size_t *out_len, size_t out_max, const uint8_t *der,
                            size_t der_len, const uint8_t *in, size_t in_len)
{
    mbedtls_pk_context pk;
    struct rng r;
    int ok = 0;
    mbedtls_pk_init(&pk);
    if (rng_init(&r) != 0)
        goto done;
#if MBEDTLS_VERSION_MAJOR >= 3
    if (mbedtls_pk_parse_key(&pk, der, der_len, NULL, 0, mbedtls_ctr_drbg_random, &r.drbg) != 0)
        goto done;
#else
    if (mbedtls_pk_parse_key(&pk, der, der_len, NULL, 0) != 0)
        goto done;
#endif
    if (mbedtls_pk_get_type(&pk) != MBEDTLS_PK_RSA || mbedtls_pk_get_bitlen(&pk) != 4096 ||
        in_len != 512)
        goto done;
    mbedtls_rsa_context *rsa = mbedtls_pk_rsa(pk);
#if MBEDTLS_VERSION_MAJOR >= 3
    ok = mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256) == 0 &&
         mbedtls_rsa_rsaes_oaep_decrypt(rsa, mbedtls_ctr_drbg_random, &r.drbg, NULL, 0, out_len, in,
                                        out, out_max) == 0;
#else
    mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, MBEDTLS_MD_SHA256);
    ok = mbedtls_rsa_rsaes_oaep_decrypt(rsa, mbedtls_ctr_drbg_random, &r.drbg, MBEDTLS_RSA_PRIVATE,
                                        NULL, 0, out_len, in, out, out_max) == 0;
#endif
done:
    mbedtls_pk_free(&pk);
    rng_free(&r);
    return ok ? 0 : -1;
}

static int ecdh(uint8_t shared[32], int type, const uint8_t *priv, size_t priv_len,
                const uint8_t *peer, size_t peer_len)
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point Q, R;
    mbedtls_mpi d;
    struct rng r;
    uint8_t buf[65], acc = 0;
    size_t olen = 0;
    int ok = 0, x25519 = type == FWREL_DEV_RCPT_X25519;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&Q);
    mbedtls_ecp_point_init(&R);
    mbedtls_mpi_init(&d);
    if (rng_init(&r) != 0 || priv_len != 32 || peer_len != (size_t)(x25519 ? 32 : 65) ||
        (!x25519 && type != FWREL_DEV_RCPT_P256))
        goto done;
    if (mbedtls_ecp_group_load(&grp,
                               x25519 ? MBEDTLS_ECP_DP_CURVE25519 : MBEDTLS_ECP_DP_SECP256R1) != 0)
        goto done;
    if (x25519) {
        /* RFC 7748 5: the scalar clamped, the peer's top bit masked (read_binary does). */
        if (mbedtls_mpi_read_binary_le(&d, priv, 32) != 0 || mbedtls_mpi_set_bit(&d, 0, 0) != 0 ||
            mbedtls_mpi_set_bit(&d, 1, 0) != 0 || mbedtls_mpi_set_bit(&d, 2, 0) != 0 ||
            mbedtls_mpi_set_bit(&d, 255, 0) != 0 || mbedtls_mpi_set_bit(&d, 254, 1) != 0)
            goto done;
    } else if (mbedtls_mpi_read_binary(&d, priv, 32) != 0 ||
               mbedtls_ecp_check_privkey(&grp, &d) != 0) {
        goto done;
    }
    if (mbedtls_ecp_point_read_binary(&grp, &Q, peer, peer_len) != 0 ||
        mbedtls_ecp_check_pubkey(&grp, &Q) != 0 ||
        mbedtls_ecp_mul(&grp, &R, &d, &Q, mbedtls_ctr_drbg_random, &r.drbg) != 0 ||
        mbedtls_ecp_point_write_binary(&grp, &R, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, buf,
                                       sizeof(buf)) != 0 ||
        olen != (size_t)(x25519 ? 32 : 65))
        goto done;
    memcpy(shared, x25519 ? buf : buf + 1, 32); /* X25519: u; P-256: x */
    for (size_t i = 0; i < 32; i++)
        acc |= shared[i];
    ok = acc != 0; /* an all-zero secret (a small-order peer) is refused, as OpenSSL does */
done:
    mbedtls_platform_zeroize(buf, sizeof(buf));
    mbedtls_mpi_free(&d);
    mbedtls_ecp_point_free(&Q);
    mbedtls_ecp_point_free(&R);
    mbedtls_ecp_group_free(&grp);
    rng_free(&r);
    return ok ? 0 : -1;
}

const fwrel_dev_crypto fwrel_dev_crypto_mbedtls = {
    "mbedtls",  sha256_start, sha256_update, sha256_finish, sha256_abort,     gcm_start, gcm_update,
    gcm_finish, gcm_abort,    hkdf_sha256,   sig_verify,    rsa_oaep_decrypt, ecdh,
};
