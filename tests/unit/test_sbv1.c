/* test_sbv1.c - Secure Boot V1: RFC 6979 deterministic ECDSA (appendix A.2.5), the block,
 * signing (byte-exact against the espsecure vectors, refusals leaving nothing) and the
 * espsecure-compatible verification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "fixture.h"
#include "fwrel/sbv1.h"
#include "testimg.h"
#include "testutil.h"
#include "util.h"

/* The order q of P-256. */
static const char *Q_HEX = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

/* RFC 6979 A.2.5: the P-256 private key x and its public key (Ux, Uy). */
static const char *X_HEX = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
static const char *U_HEX = "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
                           "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";

/* The espsecure vectors' SBv1 key, and the suffix of their signed files. */
#define V1_KEY    "keys/test-sbv1-ecdsa256-a.pem"
#define V1_RAW    "keys/test-sbv1-ecdsa256-a.pub.raw"
#define V1_SUFFIX ".sbv1-ecdsa256-a.bin"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s", testutil_tmpdir());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testutil_rmtree(dir);
    return 0;
}

/* A path in this test's directory (one of eight rotating buffers). */
static const char *tmp(const char *name)
{
    static char bufs[8][512];
    static int i;
    char *p = bufs[i++ % 8];
    snprintf(p, sizeof(bufs[0]), "%s/%s", dir, name);
    return p;
}

static void unhex(uint8_t *out, size_t n, const char *hex)
{
    assert_int_equal(fwrel_unhex(out, n, hex), 0);
}

static void sha256(uint8_t out[32], const void *data, size_t len)
{
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(data, len, out, &n, EVP_sha256(), NULL), 1);
    assert_int_equal(n, 32);
}

/* The RFC's key pair (OpenSSL 3.0 does not derive the public point from the private scalar). */
static fwrel_pkey *rfc_key(void)
{
    uint8_t xb[32], point[65] = {0x04};
    unhex(xb, 32, X_HEX);
    unhex(point + 1, 64, U_HEX);
    BIGNUM *x = BN_bin2bn(xb, 32, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    assert_true(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0));
    assert_true(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, x));
    assert_true(
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)));
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *key = NULL;
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params), 1);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(x);
    return key;
}

static fwrel_pkey *generate(int type)
{
    fwrel_pkey *key = NULL;
    assert_int_equal(fwrel_key_generate(&key, type), 0);
    return key;
}

/* The public half of a P-256 key, through the 64 raw bytes espsecure extracts. */
static fwrel_pkey *public_of(const fwrel_pkey *key)
{
    uint8_t raw[64];
    fwrel_pkey *pub = NULL;
    assert_int_equal(fwrel_key_raw64(raw, key), 0);
    assert_int_equal(fwrel_key_parse_public(&pub, raw, sizeof(raw), 1), 0);
    return pub;
}

/* Check a raw r||s with OpenSSL's own ECDSA over the message (not through sbv1.c). */
static void openssl_verifies(const fwrel_pkey *key, const uint8_t sig[64], const void *msg,
                             size_t len)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)),
                     1);
    unsigned char *der = NULL;
    int der_len = i2d_ECDSA_SIG(es, &der);
    assert_true(der_len > 0);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, (EVP_PKEY *)key), 1);
    assert_int_equal(EVP_DigestVerify(md, der, (size_t)der_len, msg, len), 1);
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
}

/* s -> q - s: the other valid signature with the same r. */
static void flip_s(uint8_t sig[64])
{
    uint8_t qb[32];
    unhex(qb, 32, Q_HEX);
    BIGNUM *q = BN_bin2bn(qb, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    assert_int_equal(BN_sub(s, q, s), 1);
    assert_int_equal(BN_bn2binpad(s, sig + 32, 32), 32);
    BN_free(q);
    BN_free(s);
}

static void write_file(const char *path, const void *data, size_t len)
{
    unlink(path);
    assert_int_equal(fwrel_io_write_file(path, data, len, 0, 0644), 0);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    uint8_t *b = testutil_read(path, len);
    assert_non_null(b);
    return b;
}

static void assert_absent(const char *path)
{
    assert_int_equal(access(path, F_OK), -1);
}

static void assert_message(const char *want)
{
    if (strstr(fwrel_error_last()->message, want) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", fwrel_error_last()->message, want);
}

/* ---- RFC 6979 ---- */

static void check_rfc(const char *msg, const char *r, const char *s)
{
    uint8_t digest[32], sig[64], again[64], want[64];
    fwrel_pkey *key = rfc_key();
    sha256(digest, msg, strlen(msg));
    assert_int_equal(fwrel_sbv1_sign_digest(sig, key, digest), 0);
    unhex(want, 32, r);
    unhex(want + 32, 32, s);
    assert_memory_equal(sig, want, 64);
    assert_int_equal(fwrel_sbv1_sign_digest(again, key, digest), 0);
    assert_memory_equal(again, want, 64);
    assert_int_equal(fwrel_sbv1_verify_digest(sig, key, digest), 0);
    openssl_verifies(key, sig, msg, strlen(msg));
    fwrel_key_free(key);
}

static void test_rfc6979_key(void **state)
{
    (void)state;
    uint8_t raw[64], want[64];
    fwrel_pkey *key = rfc_key();
    unhex(want, 64, U_HEX);
    assert_int_equal(fwrel_key_raw64(raw, key), 0);
    assert_memory_equal(raw, want, 64);
    fwrel_key_free(key);
}

/* RFC 6979 A.2.5, "With SHA-256, message = "sample"". */
static void test_rfc6979_sample(void **state)
{
    (void)state;
    check_rfc("sample", "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716",
              "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8");
}

/* RFC 6979 A.2.5, "With SHA-256, message = "test"". */
static void test_rfc6979_test(void **state)
{
    (void)state;
    check_rfc("test", "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367",
              "019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083");
}

/*
 * Digests at the edges of bits2octets: 0xff..ff is above q (reduced once), zero is zero. The
 * expected values are python-ecdsa 0.18.0's sign_digest_deterministic(d, sha256) with the RFC
 * key (the library espsecure v4 signs SBv1 with), which also gives the A.2.5 values above.
 */
static void test_rfc6979_edge_digests(void **state)
{
    (void)state;
    static const struct {
        uint8_t fill;
        const char *r, *s;
    } cases[] = {
        {0xff, "1f2adbc54b88764c279f689fc9505959fc9e73e80dc20889a4e0be91865de75b",
         "9d109b65e2fbfc0ae42ba0b2e5f03670cd458cff4882df6783f3d93d607d1755"},
        {0x00, "68897a78df51058b490c6012251c95921abba96e2e488c8cc998942e440db9b7",
         "80587fb387363a1df2c9e83c00f8ca990fc0a55b5e470946499b82ca3b552a87"},
    };
    fwrel_pkey *key = rfc_key();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t digest[32], sig[64], want[64];
        memset(digest, cases[i].fill, sizeof(digest));
        unhex(want, 32, cases[i].r);
        unhex(want + 32, 32, cases[i].s);
        assert_int_equal(fwrel_sbv1_sign_digest(sig, key, digest), 0);
        assert_memory_equal(sig, want, 64);
        assert_int_equal(fwrel_sbv1_verify_digest(sig, key, digest), 0);
    }
    fwrel_key_free(key);
}

static void test_sign_digest_refuses_keys(void **state)
{
    (void)state;
    uint8_t digest[32] = {1}, sig[64];
    fwrel_pkey *p384 = generate(FWREL_KEY_ECDSA384), *rsa = generate(FWREL_KEY_RSA3072);
    fwrel_pkey *p192 = generate(FWREL_KEY_ECDSA192), *key = rfc_key(), *pub = public_of(key);

    assert_int_equal(fwrel_sbv1_sign_digest(sig, p384, digest), FWREL_EKEY);
    assert_message("needs an ECDSA P-256 key");
    assert_int_equal(fwrel_sbv1_sign_digest(sig, p192, digest), FWREL_EKEY);
    assert_int_equal(fwrel_sbv1_sign_digest(sig, rsa, digest), FWREL_EKEY);
    memset(sig, 0xa5, sizeof(sig));
    assert_int_equal(fwrel_sbv1_sign_digest(sig, pub, digest), FWREL_EKEY);
    assert_message("not a private key");
    static const uint8_t zero[64];
    assert_memory_equal(sig, zero, 64); /* nothing half-made is left in the output */

    /* Verification: another curve is a key error, not a verdict. */
    assert_int_equal(fwrel_sbv1_sign_digest(sig, key, digest), 0);
    assert_int_equal(fwrel_sbv1_verify_digest(sig, pub, digest), 0);
    assert_int_equal(fwrel_sbv1_verify_digest(sig, p384, digest), FWREL_EKEY);
    assert_int_equal(fwrel_sbv1_verify_digest(sig, rsa, digest), FWREL_EKEY);
    digest[0] ^= 1;
    assert_int_equal(fwrel_sbv1_verify_digest(sig, pub, digest), FWREL_EVERIFY);
    assert_string_equal(fwrel_error_last()->message, "Signature is not valid.");
    fwrel_key_free(p384);
    fwrel_key_free(p192);
    fwrel_key_free(rsa);
    fwrel_key_free(key);
    fwrel_key_free(pub);
}

/* ---- the block ---- */

static void test_block(void **state)
{
    (void)state;
    uint8_t sig[64], block[FWREL_SBV1_BLOCK_LEN + 1], back[64];
    uint32_t version = 99;
    for (size_t i = 0; i < sizeof(sig); i++)
        sig[i] = (uint8_t)i;
    fwrel_sbv1_build_block(block, sig);
    assert_memory_equal(block, "\0\0\0\0", 4);
    assert_memory_equal(block + 4, sig, 64);
    assert_int_equal(fwrel_sbv1_parse_block(&version, back, block, FWREL_SBV1_BLOCK_LEN), 0);
    assert_int_equal(version, 0);
    assert_memory_equal(back, sig, 64);
    block[0] = 0x01;
    block[3] = 0x80; /* little-endian */
    assert_int_equal(fwrel_sbv1_parse_block(&version, back, block, FWREL_SBV1_BLOCK_LEN), 0);
    assert_int_equal(version, 0x80000001u);
    assert_int_equal(fwrel_sbv1_parse_block(&version, back, block, 67), FWREL_EFORMAT);
    assert_int_equal(fwrel_sbv1_parse_block(&version, back, block, 69), FWREL_EFORMAT);
    assert_int_equal(fwrel_sbv1_parse_block(&version, back, block, 0), FWREL_EFORMAT);
}

/* ---- signing ---- */

/* out must be exactly image || 00000000 || sign_digest(SHA-256(image)). */
static void check_signed(const char *out, const char *in, const fwrel_pkey *key)
{
    size_t in_len, out_len;
    uint8_t *image = read_file(in, &in_len), *signed_img = read_file(out, &out_len);
    uint8_t digest[32], sig[64], d2[32];
    assert_int_equal(out_len, in_len + FWREL_SBV1_BLOCK_LEN);
    assert_memory_equal(signed_img, image, in_len);
    assert_memory_equal(signed_img + in_len, "\0\0\0\0", 4);
    sha256(digest, image, in_len);
    assert_int_equal(fwrel_sbv1_signing_digest(d2, in, 1), 0);
    assert_memory_equal(d2, digest, 32);
    assert_int_equal(fwrel_sbv1_sign_digest(sig, key, digest), 0);
    assert_memory_equal(signed_img + in_len + 4, sig, 64);
    openssl_verifies(key, sig, image, in_len);
    free(image);
    free(signed_img);
}

static void test_sign_images(void **state)
{
    (void)state;
    fwrel_pkey *key = generate(FWREL_KEY_ECDSA256);
    const testimg_opts kinds[] = {
        {.chip = "esp32", .size = 3000},
        {.chip = "esp32", .size = 70000, .no_hash = 1},
        {.chip = "esp32", .size = 100, .no_app_desc = 1},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        fwrel_espimg img;
        fwrel_src src;
        fwrel_report *report = NULL;
        assert_int_equal(testimg_write(tmp("in.bin"), &kinds[i]), 0);
        memset(&img, 0, sizeof(img));
        assert_int_equal(fwrel_sbv1_sign(tmp("in.bin"), tmp("out.bin"), 0, key, NULL, 0, &img), 0);
        assert_string_equal(img.chip->name, "esp32");
        assert_int_equal(img.image_len, img.file_len);
        check_signed(tmp("out.bin"), tmp("in.bin"), key);

        /* Deterministic: signing again gives the same file. */
        size_t a_len, b_len;
        assert_int_equal(
            fwrel_sbv1_sign(tmp("in.bin"), tmp("out.bin"), FWREL_OUT_FORCE, key, NULL, 0, NULL), 0);
        uint8_t *a = read_file(tmp("out.bin"), &a_len);
        assert_int_equal(fwrel_sbv1_sign(tmp("in.bin"), tmp("again.bin"), 0, key, NULL, 0, NULL),
                         0);
        uint8_t *b = read_file(tmp("again.bin"), &b_len);
        assert_int_equal(a_len, b_len);
        assert_memory_equal(a, b, a_len);
        free(a);
        free(b);

        assert_int_equal(fwrel_report_new(&report), 0);
        assert_int_equal(fwrel_src_open(&src, tmp("out.bin"), FWREL_IMAGE_MAX), 0);
        assert_int_equal(fwrel_sbv1_verify_compat(report, &src, key), 0);
        fwrel_src_close(&src);
        assert_int_equal(fwrel_report_count(report), 3);
        assert_string_equal(fwrel_report_step(report, 0)->name, "sbv1.version");
        assert_string_equal(fwrel_report_step(report, 1)->name, "sbv1.data");
        assert_string_equal(fwrel_report_step(report, 2)->name, "sbv1.signature");
        assert_int_equal(fwrel_report_step(report, 2)->verdict, FWREL_PASS);
        assert_null(fwrel_report_first_failure(report));
        fwrel_report_free(report);
        unlink(tmp("in.bin"));
        unlink(tmp("out.bin"));
        unlink(tmp("again.bin"));
    }
    assert_int_equal(testutil_count_entries(dir), 0);
    fwrel_key_free(key);
}

/* A signature made elsewhere (--signature with --pub-key): checked, then used as it is. */
static void test_sign_external(void **state)
{
    (void)state;
    fwrel_pkey *key = generate(FWREL_KEY_ECDSA256), *pub = public_of(key);
    fwrel_pkey *other = generate(FWREL_KEY_ECDSA256);
    testimg_opts o = {.chip = "esp32", .size = 5000};
    uint8_t digest[32], sig[64];
    size_t a_len, b_len;

    assert_int_equal(testimg_write(tmp("in.bin"), &o), 0);
    assert_int_equal(fwrel_sbv1_signing_digest(digest, tmp("in.bin"), 0), 0);
    assert_int_equal(fwrel_sbv1_sign_digest(sig, key, digest), 0);
    assert_int_equal(fwrel_sbv1_sign(tmp("in.bin"), tmp("priv.bin"), 0, key, NULL, 0, NULL), 0);
    assert_int_equal(fwrel_sbv1_sign(tmp("in.bin"), tmp("ext.bin"), 0, pub, sig, 0, NULL), 0);
    uint8_t *a = read_file(tmp("priv.bin"), &a_len), *b = read_file(tmp("ext.bin"), &b_len);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    free(b);

    /* The other s of the pair verifies too (espsecure keeps what it is given). */
    flip_s(sig);
    assert_int_equal(fwrel_sbv1_sign(tmp("in.bin"), tmp("high.bin"), 0, pub, sig, 0, NULL), 0);
    b = read_file(tmp("high.bin"), &b_len);
    assert_memory_equal(b + b_len - 64, sig, 64);
    free(b);
    free(a);

    /* A signature of another key, or of other bytes: refused, nothing written. */
    assert_int_equal(fwrel_sbv1_sign(tmp("in.bin"), tmp("bad.bin"), 0, other, sig, 0, NULL),
                     FWREL_EVERIFY);
    assert_string_equal(fwrel_error_last()->message,
                        "the signature does not verify with the given public key");
    sig[10] ^= 0x40;
    assert_int_equal(fwrel_sbv1_sign(tmp("in.bin"), tmp("bad.bin"), 0, pub, sig, 0, NULL),
                     FWREL_EVERIFY);
    assert_int_not_equal(fwrel_error_last()->about, FWREL_ABOUT_OUTPUT);
    assert_absent(tmp("bad.bin"));
    /* A public key cannot sign by itself. */
    assert_int_equal(fwrel_sbv1_sign(tmp("in.bin"), tmp("bad.bin"), 0, pub, NULL, 0, NULL),
                     FWREL_EKEY);
    assert_absent(tmp("bad.bin"));
    assert_int_equal(testutil_count_entries(dir), 4);
    fwrel_key_free(key);
    fwrel_key_free(pub);
    fwrel_key_free(other);
}

/* One refusal: the code, the message, and nothing at the output. */
static void refused(const char *in, const fwrel_pkey *key, int ignore_chip, int code,
                    const char *message)
{
    uint8_t digest[32];
    assert_int_equal(fwrel_sbv1_sign(in, tmp("out.bin"), 0, key, NULL, ignore_chip, NULL), code);
    if (message != NULL)
        assert_message(message);
    assert_absent(tmp("out.bin"));
    /* --digest-out makes the same checks (the key ones aside). */
    if (code != FWREL_EKEY || strstr(fwrel_error_last()->message, "Secure Boot V1 app") != NULL)
        assert_int_equal(fwrel_sbv1_signing_digest(digest, in, ignore_chip), code);
}

static void test_sign_refusals(void **state)
{
    (void)state;
    fwrel_pkey *key = generate(FWREL_KEY_ECDSA256), *p384 = generate(FWREL_KEY_ECDSA384);
    fwrel_pkey *rsa = generate(FWREL_KEY_RSA3072);
    testimg_opts o = {.chip = "esp32", .size = 3000};
    size_t len;
    uint8_t *image = testimg_build(&len, &o);
    assert_non_null(image);
    write_file(tmp("e.bin"), image, len);

    /* Keys: P-384, P-192, RSA; nothing is created. */
    refused(tmp("e.bin"), p384, 0, FWREL_EKEY, "needs an ECDSA P-256 key");
    refused(tmp("e.bin"), rsa, 0, FWREL_EKEY, "needs an ECDSA P-256 key");

    /* Trailing bytes, including a signature already there. */
    uint8_t *more = malloc(len + FWREL_SBV1_BLOCK_LEN);
    assert_non_null(more);
    memcpy(more, image, len);
    memcpy(more + len, "junk", 4);
    write_file(tmp("t.bin"), more, len + 4);
    refused(tmp("t.bin"), key, 0, FWREL_EFORMAT,
            "4 bytes past the end of the image: the device would not look there");
    assert_int_equal(fwrel_sbv1_sign(tmp("e.bin"), tmp("s.bin"), 0, key, NULL, 0, NULL), 0);
    refused(tmp("s.bin"), key, 0, FWREL_EFORMAT, "68 bytes past the end of the image");
    unlink(tmp("s.bin"));

    /* Integrity: a wrong checksum (no hash appended) and a wrong appended hash. */
    testimg_opts nh = {.chip = "esp32", .size = 2000, .no_hash = 1};
    size_t nh_len;
    uint8_t *nohash = testimg_build(&nh_len, &nh);
    nohash[nh_len - 1] ^= 0x01;
    write_file(tmp("ck.bin"), nohash, nh_len);
    refused(tmp("ck.bin"), key, 0, FWREL_EFORMAT, "checksum mismatch");
    free(nohash);
    memcpy(more, image, len);
    more[len - 1] ^= 0x80;
    write_file(tmp("h.bin"), more, len);
    refused(tmp("h.bin"), key, 0, FWREL_EFORMAT, "image hash mismatch");
    memcpy(more, image, len);
    more[0] = 0xe8;
    write_file(tmp("m.bin"), more, len);
    refused(tmp("m.bin"), key, 0, FWREL_EFORMAT, NULL);
    memcpy(more, image, len);
    write_file(tmp("short.bin"), more, len - 40);
    refused(tmp("short.bin"), key, 0, FWREL_EFORMAT, NULL);
    free(more);

    /* A chip without SBv1, unless told to ignore the chip. */
    testimg_opts c3 = {.chip = "esp32c3", .size = 1000};
    assert_int_equal(testimg_write(tmp("c3.bin"), &c3), 0);
    refused(tmp("c3.bin"), key, 0, FWREL_EKEY, "esp32c3 has no Secure Boot V1 app signing");
    assert_int_equal(fwrel_sbv1_sign(tmp("c3.bin"), tmp("c3s.bin"), 0, key, NULL, 1, NULL), 0);
    check_signed(tmp("c3s.bin"), tmp("c3.bin"), key);

    /* Not a regular file: a FIFO is refused at once (no hang), a directory, a missing file. */
    assert_int_equal(mkfifo(tmp("fifo"), 0600), 0);
    refused(tmp("fifo"), key, 0, FWREL_EFORMAT, "not a regular file");
    refused(dir, key, 0, FWREL_EFORMAT, NULL);
    refused(tmp("missing.bin"), key, 0, FWREL_EIO, NULL);

    /* An existing output is left as it was without FWREL_OUT_FORCE, replaced with it. */
    write_file(tmp("exists.bin"), "keep me", 7);
    assert_int_equal(fwrel_sbv1_sign(tmp("e.bin"), tmp("exists.bin"), 0, key, NULL, 0, NULL),
                     FWREL_EIO);
    assert_int_equal(fwrel_error_last()->about, FWREL_ABOUT_OUTPUT);
    size_t kept_len;
    uint8_t *kept = read_file(tmp("exists.bin"), &kept_len);
    assert_int_equal(kept_len, 7);
    assert_memory_equal(kept, "keep me", 7);
    free(kept);
    assert_int_equal(
        fwrel_sbv1_sign(tmp("e.bin"), tmp("exists.bin"), FWREL_OUT_FORCE, key, NULL, 0, NULL), 0);
    check_signed(tmp("exists.bin"), tmp("e.bin"), key);

    /* Only the inputs and the two good outputs: no temporary file left by any refusal. */
    static const char *const left[] = {"e.bin",     "t.bin",  "ck.bin",  "h.bin", "m.bin",
                                       "short.bin", "c3.bin", "c3s.bin", "fifo",  "exists.bin"};
    assert_int_equal(testutil_count_entries(dir), (int)(sizeof(left) / sizeof(left[0])));
    for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++)
        assert_int_equal(access(tmp(left[i]), F_OK), 0);
    free(image);
    fwrel_key_free(key);
    fwrel_key_free(p384);
    fwrel_key_free(rsa);
}

/* ---- espsecure verify-signature --version 1 ---- */

static int compat_mem(fwrel_report *report, const uint8_t *data, size_t len, const fwrel_pkey *key)
{
    fwrel_src src;
    fwrel_src_mem(&src, data, len);
    return fwrel_sbv1_verify_compat(report, &src, key);
}

static void test_verify_compat_edges(void **state)
{
    (void)state;
    fwrel_pkey *key = rfc_key(), *pub = public_of(key), *p384 = generate(FWREL_KEY_ECDSA384);
    uint8_t file[5 + FWREL_SBV1_BLOCK_LEN], digest[32], sig[64];
    fwrel_report *report = NULL;

    /* Shorter than a block: espsecure's struct.unpack fails. */
    assert_int_equal(fwrel_report_new(&report), 0);
    assert_int_equal(compat_mem(report, file, 0, pub), FWREL_EVERIFY);
    assert_int_equal(compat_mem(NULL, file, 67, pub), FWREL_EVERIFY);
    assert_string_equal(fwrel_report_first_failure(report)->name, "sbv1.size");
    fwrel_report_free(report);

    /* Exactly a block: the data is empty, and a signature of nothing is valid. */
    sha256(digest, "", 0);
    assert_int_equal(fwrel_sbv1_sign_digest(sig, key, digest), 0);
    fwrel_sbv1_build_block(file, sig);
    assert_int_equal(compat_mem(NULL, file, FWREL_SBV1_BLOCK_LEN, pub), 0);
    assert_int_equal(compat_mem(NULL, file, FWREL_SBV1_BLOCK_LEN, key), 0);

    /* "hello" || block. */
    memcpy(file, "hello", 5);
    sha256(digest, "hello", 5);
    assert_int_equal(fwrel_sbv1_sign_digest(sig, key, digest), 0);
    fwrel_sbv1_build_block(file + 5, sig);
    assert_int_equal(compat_mem(NULL, file, sizeof(file), pub), 0);

    /* Any version word but 0, with espsecure's message; the signature is not looked at. */
    static const uint32_t versions[] = {1, 0x100, 0x80000000u};
    for (size_t i = 0; i < 3; i++) {
        fwrel_put_le32(file + 5, versions[i]);
        assert_int_equal(fwrel_report_new(&report), 0);
        assert_int_equal(compat_mem(report, file, sizeof(file), pub), FWREL_EVERIFY);
        assert_string_equal(fwrel_report_first_failure(report)->name, "sbv1.version");
        assert_null(fwrel_report_step(report, 1));
        fwrel_report_free(report);
    }
    assert_string_equal(fwrel_error_last()->message,
                        "Signature block has version 2147483648. This version of espsecure "
                        "only supports version 0.");
    fwrel_put_le32(file + 5, 0);

    /* The other s verifies; r or s of 0 or >= q, a flipped bit in data or r, do not. */
    uint8_t sig2[64];
    memcpy(sig2, sig, 64);
    flip_s(sig2);
    memcpy(file + 9, sig2, 64);
    assert_int_equal(compat_mem(NULL, file, sizeof(file), pub), 0);
    uint8_t qb[32];
    unhex(qb, 32, Q_HEX);
    const struct {
        size_t off;
        int what; /* 0: zero, 1: q, 2: flip a bit */
    } bad[] = {{9, 0}, {41, 0}, {9, 1}, {41, 1}, {9, 2}, {72, 2}, {0, 2}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(file, "hello", 5);
        memcpy(file + 9, sig, 64);
        if (bad[i].what == 0)
            memset(file + bad[i].off, 0, 32);
        else if (bad[i].what == 1)
            memcpy(file + bad[i].off, qb, 32);
        else
            file[bad[i].off] ^= 0x01;
        assert_int_equal(fwrel_report_new(&report), 0);
        assert_int_equal(compat_mem(report, file, sizeof(file), pub), FWREL_EVERIFY);
        assert_string_equal(fwrel_report_first_failure(report)->name, "sbv1.signature");
        assert_string_equal(fwrel_report_first_failure(report)->detail, "Signature is not valid.");
        fwrel_report_free(report);
    }

    /* A key on another curve: a key error, found before the file is read. */
    assert_int_equal(fwrel_report_new(&report), 0);
    assert_int_equal(compat_mem(report, file, 3, p384), FWREL_EKEY);
    assert_string_equal(fwrel_report_first_failure(report)->name, "sbv1.key");
    fwrel_report_free(report);
    fwrel_key_free(key);
    fwrel_key_free(pub);
    fwrel_key_free(p384);
}

/* ---- the espsecure vectors ---- */

static fwrel_pkey *vector_key(const char *rel)
{
    fwrel_pkey *key = NULL;
    fwrel_pass_src none = {0};
    const char *path = testutil_vector_path(rel);
    size_t n = strlen(rel);
    if (n > 4 && strcmp(rel + n - 4, ".pem") == 0 && strstr(rel, ".pub.") == NULL)
        assert_int_equal(fwrel_key_load_private(&key, path, &none), 0);
    else
        assert_int_equal(fwrel_key_load_public(&key, path, 1), 0);
    return key;
}

static int verify_file(const char *path, const fwrel_pkey *key)
{
    fwrel_src src;
    assert_int_equal(fwrel_src_open(&src, path, FWREL_IMAGE_MAX), 0);
    int error = fwrel_sbv1_verify_compat(NULL, &src, key);
    fwrel_src_close(&src);
    return error;
}

/* Re-sign every sbv1/ vector's image with the vector key: every byte must match espsecure's. */
static void test_vectors_sign(void **state)
{
    (void)state;
    if (!fixture_vectors_or_skip())
        return;
    fwrel_pkey *key = vector_key(V1_KEY), *raw = vector_key(V1_RAW);
    fwrel_pkey *other = generate(FWREL_KEY_ECDSA256);
    char sbv1_dir[4096];
    snprintf(sbv1_dir, sizeof(sbv1_dir), "%s", testutil_vector_path("sbv1"));
    DIR *d = opendir(sbv1_dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sfx = strlen(V1_SUFFIX);
        if (len <= sfx || strcmp(e->d_name + len - sfx, V1_SUFFIX) != 0)
            continue;
        char base[256], rel[512], vec[4096], img_path[4096];
        snprintf(base, sizeof(base), "%.*s", (int)(len - sfx), e->d_name);
        snprintf(rel, sizeof(rel), "sbv1/%s", e->d_name);
        snprintf(vec, sizeof(vec), "%s", testutil_vector_path(rel));
        snprintf(rel, sizeof(rel), "images/%s.bin", base);
        snprintf(img_path, sizeof(img_path), "%s", testutil_vector_path(rel));

        /* ESP32 images sign as they are; the others only with ignore_chip. */
        fwrel_espimg img;
        int esp32 = strncmp(base, "esp32-", 6) == 0;
        int error = fwrel_sbv1_sign(img_path, tmp("v.bin"), 0, key, NULL, 0, &img);
        if (esp32) {
            if (error)
                fail_msg("%s: %s", base, fwrel_error_last()->message);
            assert_string_equal(img.chip->name, "esp32");
        } else {
            assert_int_equal(error, FWREL_EKEY);
            assert_message("has no Secure Boot V1 app signing");
            assert_absent(tmp("v.bin"));
            assert_int_equal(fwrel_sbv1_sign(img_path, tmp("v.bin"), 0, key, NULL, 1, NULL), 0);
        }
        size_t got_len, want_len;
        uint8_t *got = read_file(tmp("v.bin"), &got_len), *want = read_file(vec, &want_len);
        assert_int_equal(got_len, want_len);
        for (size_t i = 0; i < want_len; i++)
            if (got[i] != want[i])
                fail_msg("%s: byte %zu is 0x%02x, espsecure wrote 0x%02x", base, i, got[i],
                         want[i]);
        free(got);
        free(want);
        unlink(tmp("v.bin"));

        /* And the vector verifies with the private PEM and the raw public key, not another. */
        assert_int_equal(verify_file(vec, key), 0);
        assert_int_equal(verify_file(vec, raw), 0);
        assert_int_equal(verify_file(vec, other), FWREL_EVERIFY);
        n++;
    }
    closedir(d);
    print_message("%d sbv1 vectors re-signed byte for byte\n", n);
    assert_true(n >= 4);
    fwrel_key_free(key);
    fwrel_key_free(raw);
    fwrel_key_free(other);
}

/* The word after flag in a command into out; "" if the flag is absent. */
static void word_after(char *out, size_t size, const char *cmd, const char *flag)
{
    const char *p = strstr(cmd, flag);
    out[0] = '\0';
    if (p == NULL)
        return;
    p += strlen(flag);
    size_t n = strcspn(p, " ");
    snprintf(out, size, "%.*s", (int)n, p);
}

static void last_word(char *out, size_t size, const char *cmd)
{
    const char *p = strrchr(cmd, ' ');
    snprintf(out, size, "%s", p != NULL ? p + 1 : cmd);
}

/* Every recorded `verify-signature --version 1` check, replayed: the same verdict. */
static void test_vectors_verify(void **state)
{
    (void)state;
    if (!fixture_vectors_or_skip())
        return;
    json_error_t jerr;
    json_t *root = json_load_file(testutil_vector_path("vectors.json"), 0, &jerr), *v;
    size_t i, valid = 0, invalid = 0, tampered = 0;
    assert_non_null(root);
    json_array_foreach(json_object_get(root, "vectors"), i, v)
    {
        const char *kind = json_string_value(json_object_get(v, "kind"));
        const char *id = json_string_value(json_object_get(v, "id"));
        if (strcmp(kind, "sbv1_sign") != 0 && strcmp(kind, "tampered_sbv1") != 0)
            continue;
        json_t *c;
        size_t j;
        json_array_foreach(json_object_get(v, "checks"), j, c)
        {
            const char *cmd = json_string_value(json_object_get(c, "command"));
            const char *verdict = json_string_value(json_object_get(c, "verdict"));
            if (cmd == NULL || (strstr(cmd, " verify-signature --version 1 ") == NULL &&
                                strstr(cmd, " verify_signature --version 1 ") == NULL))
                continue;
            char keyrel[512], file[512];
            word_after(keyrel, sizeof(keyrel), cmd, "--keyfile ");
            last_word(file, sizeof(file), cmd);
            assert_true(keyrel[0] != '\0');
            fwrel_pkey *key = vector_key(keyrel);
            int error = verify_file(testutil_vector_path(file), key);
            fwrel_key_free(key);
            if (strcmp(verdict, "valid") == 0) {
                if (error != 0)
                    fail_msg("%s: %s: %s", id, cmd, fwrel_error_last()->message);
                valid++;
            } else {
                if (error != FWREL_EVERIFY)
                    fail_msg("%s: %s: got %d, want invalid", id, cmd, error);
                invalid++;
                tampered += strcmp(kind, "tampered_sbv1") == 0;
            }
        }
    }
    json_decref(root);
    print_message("sbv1 oracle checks replayed: %zu valid, %zu invalid\n", valid, invalid);
    assert_true(valid >= 12); /* 4 images x (private PEM, raw key, espsecure v4) */
    assert_true(tampered >= 3);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_rfc6979_key),
        T(test_rfc6979_sample),
        T(test_rfc6979_test),
        T(test_rfc6979_edge_digests),
        T(test_sign_digest_refuses_keys),
        T(test_block),
        T(test_sign_images),
        T(test_sign_external),
        T(test_sign_refusals),
        T(test_verify_compat_edges),
        T(test_vectors_sign),
        T(test_vectors_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
