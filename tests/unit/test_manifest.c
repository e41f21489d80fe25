/* test_manifest.c - the manifest writer: canonical bodies, strict decoding, signing, sealing.
 * The reader (envelope, signatures, threshold, device steps) is the device core's:
 * tests/unit/test_devcore.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fwrel/manifest.h"

static fwrel_manifest sample(void)
{
    fwrel_manifest m;
    memset(&m, 0, sizeof(m));
    snprintf(m.product, sizeof(m.product), "thermo");
    snprintf(m.device_types[0], 65, "thermo-a");
    snprintf(m.device_types[1], 65, "thermo-b");
    m.device_type_count = 2;
    snprintf(m.chip, sizeof(m.chip), "esp32s3");
    m.chip_rev_max = 99;
    snprintf(m.version, sizeof(m.version), "1.2.3");
    m.secure_version = 4;
    m.counter = 17;
    snprintf(m.channel, sizeof(m.channel), "prod");
    m.created = 1790000000;
    m.expires = 1800000000;
    m.plain.size = 1000;
    m.signed_image.size = 8192;
    m.encrypted.size = 8704;
    memset(m.encrypted.sha256, 0xAB, 32);
    snprintf(m.image_name, sizeof(m.image_name), "thermo-1.2.3.enc");
    return m;
}

static int decode_str(const char *s)
{
    fwrel_manifest m;
    return fwrel_manifest_decode(&m, (const uint8_t *)s, strlen(s));
}

static void test_round_trip_and_strictness(void **state)
{
    (void)state;
    fwrel_manifest m = sample(), back;
    char *text = NULL;
    size_t len;
    assert_int_equal(fwrel_manifest_encode(&text, &len, &m), 0);
    assert_int_equal(fwrel_manifest_decode(&back, (const uint8_t *)text, len), 0);
    assert_memory_equal(&m, &back, sizeof(m));
    assert_non_null(strstr(text, "{\"channel\":\"prod\",\"chip\":\"esp32s3\","));

    char *bad = malloc(len + 64);
    /* A space makes it non-canonical. */
    snprintf(bad, len + 64, "{ %s", text + 1);
    assert_int_equal(decode_str(bad), FWREL_EFORMAT);
    assert_non_null(strstr(fwrel_error_last()->message, "canonical"));
    /* A duplicate key. */
    snprintf(bad, len + 64, "{\"channel\":\"prod\",%s", text + 1);
    assert_int_equal(decode_str(bad), FWREL_EFORMAT);
    /* A float where an integer belongs. */
    char *p = strstr(text, "\"counter\":17");
    assert_non_null(p);
    snprintf(bad, len + 64, "%.*s\"counter\":17.0%s", (int)(p - text), text,
             p + strlen("\"counter\":17"));
    assert_int_equal(decode_str(bad), FWREL_EFORMAT);
    /* An unknown field (sorted in place so only that rule breaks). */
    snprintf(bad, len + 64, "{\"aaa\":1,%s", text + 1);
    assert_int_equal(decode_str(bad), FWREL_EFORMAT);
    assert_non_null(strstr(fwrel_error_last()->message, "unknown field 'aaa'"));
    free(bad);
    free(text);

    m.created = m.expires;
    assert_int_equal(fwrel_manifest_encode(&text, &len, &m), FWREL_EFORMAT);
    m = sample();
    snprintf(m.version, sizeof(m.version), "bad\"quote");
    assert_int_equal(fwrel_manifest_encode(&text, &len, &m), FWREL_EFORMAT);
    m = sample();
    snprintf(m.device_types[1], 65, "thermo-a");
    assert_int_equal(fwrel_manifest_encode(&text, &len, &m), FWREL_EFORMAT);
    assert_int_equal(decode_str("[]"), FWREL_EFORMAT);
    assert_int_equal(decode_str("{\"format\":"), FWREL_EFORMAT);
}

/* The writer's refusals. Reading, the threshold and the envelope's bounds are the device core's
 * (tests/unit/test_devcore.c: test_threshold_rules, test_envelope_bounds, test_tampered). */
static void test_sign_refusals(void **state)
{
    (void)state;
    fwrel_manifest m = sample();
    fwrel_pkey *rsa = NULL, *p384 = NULL;
    char *signed_json = NULL;
    size_t len;
    assert_int_equal(fwrel_key_generate(&rsa, FWREL_KEY_RSA3072), 0);
    /* The same key twice does not count twice. */
    const fwrel_pkey *dup[] = {rsa, rsa};
    assert_int_equal(fwrel_manifest_sign(&signed_json, &len, &m, dup, 2), FWREL_EUSAGE);
    assert_int_equal(fwrel_key_generate(&p384, FWREL_KEY_ECDSA384), 0);
    const fwrel_pkey *bad[] = {p384};
    assert_int_equal(fwrel_manifest_sign(&signed_json, &len, &m, bad, 1), FWREL_EKEY);
    fwrel_key_free(p384);
    fwrel_key_free(rsa);
}

/* The envelope's layout and its recipient types (opened by the device core: test_devcore.c). */
static void test_envelope(void **state)
{
    (void)state;
    fwrel_manifest m = sample();
    fwrel_pkey *signer = NULL, *rsa = NULL, *p256 = NULL, *rsa3k = NULL,
               *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    assert_non_null(x);
    assert_int_equal(fwrel_key_generate(&signer, FWREL_KEY_ECDSA256), 0);
    assert_int_equal(fwrel_key_generate(&p256, FWREL_KEY_ECDSA256), 0);
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
    assert_non_null(rsa);
    const fwrel_pkey *signers[] = {signer};
    char *sj = NULL;
    size_t sj_len, env_len;
    uint8_t *env = NULL;
    assert_int_equal(fwrel_manifest_sign(&sj, &sj_len, &m, signers, 1), 0);
    const fwrel_pkey *to[] = {rsa, x, p256};
    assert_int_equal(fwrel_manifest_seal(&env, &env_len, (const uint8_t *)sj, sj_len, to, 3), 0);
    assert_int_equal(env_len, 32 + 608 * 3 + sj_len + 16);
    static const int types[] = {FWREL_MANIFEST_RCPT_RSA4096, FWREL_MANIFEST_RCPT_X25519,
                                FWREL_MANIFEST_RCPT_P256};
    for (int i = 0; i < 3; i++) {
        int type = 0;
        assert_int_equal(fwrel_manifest_recipient_type(&type, to[i]), 0);
        assert_int_equal(type, types[i]);
        assert_int_equal(env[32 + 608 * i], types[i]);
    }
    /* Recipient kinds: RSA-3072 is not one. */
    assert_int_equal(fwrel_key_generate(&rsa3k, FWREL_KEY_RSA3072), 0);
    const fwrel_pkey *bad[] = {rsa3k};
    uint8_t *e2 = NULL;
    int type = 0;
    assert_int_equal(fwrel_manifest_seal(&e2, &env_len, (const uint8_t *)sj, sj_len, bad, 1),
                     FWREL_EKEY);
    assert_int_equal(fwrel_manifest_recipient_type(&type, rsa3k), FWREL_EKEY);
    assert_string_equal(fwrel_error_last()->message,
                        "manifest recipients are RSA-4096, X25519 or EC P-256 keys");
    free(env);
    free(sj);
    fwrel_key_free(rsa3k);
    fwrel_key_free(signer);
    fwrel_key_free(rsa);
    fwrel_key_free(p256);
    fwrel_key_free(x);
}

static void test_secure_fota(void **state)
{
    (void)state;
    uint8_t desc[256] = {0x32, 0x54, 0xCD, 0xAB, 7}, got[256], out[FWREL_SECURE_FOTA_LEN];
    fwrel_pkey *sign = NULL, *dev = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096),
               *other = NULL;
    assert_non_null(dev);
    assert_int_equal(fwrel_key_generate(&sign, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_key_generate(&other, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_manifest_securefota_make(out, desc, sign, dev), 0);
    assert_int_equal(fwrel_manifest_securefota_read(got, out, dev, sign), 0);
    assert_memory_equal(got, desc, 256);
    assert_int_equal(fwrel_manifest_securefota_read(got, out, dev, other), FWREL_EVERIFY);
    out[100] ^= 1;
    assert_int_equal(fwrel_manifest_securefota_read(got, out, dev, sign), FWREL_EVERIFY);
    desc[0] = 0;
    assert_int_equal(fwrel_manifest_securefota_make(out, desc, sign, dev), FWREL_EFORMAT);
    assert_int_equal(fwrel_manifest_securefota_make(out, got, sign, sign), FWREL_EKEY);
    fwrel_key_free(sign);
    fwrel_key_free(dev);
    fwrel_key_free(other);
}

/* A sign function that claims more bytes than the 512 it may write. */
static int long_sign(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len)
{
    (void)ctx;
    (void)msg;
    (void)len;
    memset(sig, 0x5A, FWREL_MANIFEST_SIG_MAX);
    *sig_len = FWREL_MANIFEST_SIG_MAX + 1;
    return 0;
}

/* An external signer's length is bounded before the signature is verified or encoded. */
static void test_sign_fn_length_bound(void **state)
{
    (void)state;
    fwrel_manifest m = sample();
    fwrel_pkey *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    fwrel_manifest_signer s = {ed, long_sign, NULL};
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(fwrel_manifest_sign_with(&out, &len, &m, &s, 1), FWREL_EKEY);
    assert_string_equal(fwrel_error_last()->message, "a signature of 513 bytes (1..512)");
    assert_null(out);
    fwrel_key_free(ed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_strictness),
        cmocka_unit_test(test_sign_refusals),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_secure_fota),
        cmocka_unit_test(test_sign_fn_length_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
