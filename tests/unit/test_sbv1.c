/* test_sbv1.c - RFC 6979 deterministic ECDSA (appendix A.2.5) and SBv1 signing/verifying. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <unistd.h>

#include "fwrel/sbv1.h"
#include "testimg.h"
#include "testutil.h"
#include "util.h"

/* RFC 6979 A.2.5: P-256 private key x. */
static const char *X = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";

static fwrel_pkey *rfc_key(void)
{
    uint8_t xb[32];
    assert_int_equal(fwrel_unhex(xb, 32, X), 0);
    BIGNUM *x = BN_bin2bn(xb, 32, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    assert_true(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0));
    assert_true(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, x));
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *key = NULL;
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params), 1);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(x);
    return key;
}

static void check_rfc(const char *msg, const char *r, const char *s)
{
    uint8_t digest[32], sig[64], want[64];
    unsigned int n;
    fwrel_pkey *key = rfc_key();
    EVP_Digest(msg, strlen(msg), digest, &n, EVP_sha256(), NULL);
    assert_int_equal(fwrel_sbv1_sign_digest(sig, key, digest), 0);
    assert_int_equal(fwrel_unhex(want, 32, r), 0);
    assert_int_equal(fwrel_unhex(want + 32, 32, s), 0);
    assert_memory_equal(sig, want, 64);
    fwrel_key_free(key);
}

static void test_rfc6979_sample(void **state)
{
    (void)state;
    check_rfc("sample", "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716",
              "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8");
}

static void test_rfc6979_test(void **state)
{
    (void)state;
    check_rfc("test", "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367",
              "019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083");
}

static void test_sign_verify_and_refusals(void **state)
{
    (void)state;
    const char *dir = testutil_tmpdir();
    char img[256], out[256], trail[256];
    fwrel_pkey *key = NULL, *rsa = NULL;
    testimg_opts o = {.chip = "esp32", .size = 3000};
    snprintf(img, sizeof(img), "%s/e.bin", dir);
    snprintf(out, sizeof(out), "%s/e.signed", dir);
    snprintf(trail, sizeof(trail), "%s/trail.bin", dir);
    assert_int_equal(testimg_write(img, &o), 0);
    assert_int_equal(fwrel_key_generate(&key, FWREL_KEY_ECDSA256), 0);
    assert_int_equal(fwrel_key_generate(&rsa, FWREL_KEY_RSA3072), 0);

    assert_int_equal(fwrel_sbv1_sign(img, out, 0, key, NULL, 0, NULL), 0);
    fwrel_src src;
    assert_int_equal(fwrel_src_open(&src, out, FWREL_IMAGE_MAX), 0);
    assert_int_equal(fwrel_sbv1_verify_compat(NULL, &src, key), 0);
    fwrel_src_close(&src);

    /* Refusals leave nothing: an existing output, an RSA key, trailing bytes, another chip. */
    assert_int_equal(fwrel_sbv1_sign(img, out, 0, key, NULL, 0, NULL), FWREL_EIO);
    assert_int_equal(fwrel_error_last()->output, 1);
    assert_int_equal(fwrel_sbv1_sign(img, trail, 0, rsa, NULL, 0, NULL), FWREL_EKEY);
    size_t len;
    uint8_t *b = testutil_read(img, &len);
    b = realloc(b, len + 4);
    memcpy(b + len, "junk", 4);
    char tin[256];
    snprintf(tin, sizeof(tin), "%s/t.in", dir);
    assert_int_equal(fwrel_io_write_file(tin, b, len + 4, 0, 0644), 0);
    free(b);
    assert_int_equal(fwrel_sbv1_sign(tin, trail, 0, key, NULL, 0, NULL), FWREL_EFORMAT);
    assert_non_null(strstr(fwrel_error_last()->message, "4 bytes past the end of the image"));
    testimg_opts c3 = {.chip = "esp32c3"};
    char c3img[256];
    snprintf(c3img, sizeof(c3img), "%s/c3.bin", dir);
    assert_int_equal(testimg_write(c3img, &c3), 0);
    assert_int_equal(fwrel_sbv1_sign(c3img, trail, 0, key, NULL, 0, NULL), FWREL_EKEY);
    assert_int_equal(access(trail, F_OK), -1);
    /* 4 entries: e.bin, e.signed, t.in, c3.bin; no temporary left. */
    assert_int_equal(testutil_count_entries(dir), 4);
    fwrel_key_free(key);
    fwrel_key_free(rsa);
    testutil_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6979_sample),
        cmocka_unit_test(test_rfc6979_test),
        cmocka_unit_test(test_sign_verify_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
