/* test_manifest.c - canonical manifest bodies, strict decoding, and threshold signatures. */
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

static void test_threshold(void **state)
{
    (void)state;
    fwrel_manifest m = sample(), got;
    fwrel_pkey *rsa = NULL, *ec = NULL, *ed = NULL, *stranger = NULL;
    assert_int_equal(fwrel_key_generate(&rsa, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_key_generate(&ec, FWREL_KEY_ECDSA256), 0);
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    assert_int_equal(fwrel_key_generate(&stranger, FWREL_KEY_ECDSA256), 0);

    const fwrel_pkey *two[] = {rsa, ed};
    char *signed_json = NULL;
    size_t len;
    assert_int_equal(fwrel_manifest_sign(&signed_json, &len, &m, two, 2), 0);

    fwrel_manifest_trust all = {{rsa, ec, ed}, 3, 2};
    assert_int_equal(fwrel_manifest_verify(&got, NULL, (const uint8_t *)signed_json, len, &all), 0);
    assert_memory_equal(&got, &m, sizeof(m));
    /* 2 of 3 needed, only one of the signers trusted. */
    fwrel_manifest_trust one = {{rsa, ec, stranger}, 3, 2};
    assert_int_equal(fwrel_manifest_verify(&got, NULL, (const uint8_t *)signed_json, len, &one),
                     FWREL_EVERIFY);
    assert_non_null(
        strstr(fwrel_error_last()->message, "1 valid signature from trusted keys, 2 required"));
    fwrel_manifest_trust t3 = {{rsa, ec, ed}, 3, 3};
    assert_int_equal(fwrel_manifest_verify(&got, NULL, (const uint8_t *)signed_json, len, &t3),
                     FWREL_EVERIFY);

    /* A changed field breaks the signatures of trusted keys. */
    char *p = strstr(signed_json, "\"counter\":17");
    assert_non_null(p);
    p[11] = '8';
    assert_int_equal(fwrel_manifest_verify(&got, NULL, (const uint8_t *)signed_json, len, &all),
                     FWREL_EVERIFY);
    assert_non_null(strstr(fwrel_error_last()->message, "does not verify"));
    free(signed_json);

    /* The same key twice does not count twice. */
    const fwrel_pkey *dup[] = {rsa, rsa};
    assert_int_equal(fwrel_manifest_sign(&signed_json, &len, &m, dup, 2), FWREL_EUSAGE);
    const fwrel_pkey *bad[] = {stranger};
    fwrel_pkey *p384 = NULL;
    assert_int_equal(fwrel_key_generate(&p384, FWREL_KEY_ECDSA384), 0);
    bad[0] = p384;
    assert_int_equal(fwrel_manifest_sign(&signed_json, &len, &m, bad, 1), FWREL_EKEY);
    fwrel_key_free(p384);
    fwrel_key_free(rsa);
    fwrel_key_free(ec);
    fwrel_key_free(ed);
    fwrel_key_free(stranger);
}

static void test_envelope(void **state)
{
    (void)state;
    fwrel_manifest m = sample();
    fwrel_pkey *signer = NULL, *rsa = NULL, *p256 = NULL,
               *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519"),
               *other = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    assert_non_null(x);
    assert_int_equal(fwrel_key_generate(&signer, FWREL_KEY_ECDSA256), 0);
    assert_int_equal(fwrel_key_generate(&p256, FWREL_KEY_ECDSA256), 0);
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
    assert_non_null(rsa);
    const fwrel_pkey *signers[] = {signer};
    char *sj = NULL;
    size_t sj_len, env_len, plain_len;
    uint8_t *env = NULL, *plain = NULL;
    assert_int_equal(fwrel_manifest_sign(&sj, &sj_len, &m, signers, 1), 0);
    const fwrel_pkey *to[] = {rsa, x, p256};
    assert_int_equal(fwrel_manifest_seal(&env, &env_len, (const uint8_t *)sj, sj_len, to, 3), 0);
    assert_int_equal(env_len, 32 + 608 * 3 + sj_len + 16);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fwrel_manifest_open(&plain, &plain_len, env, env_len, to[i]), 0);
        assert_int_equal(plain_len, sj_len);
        assert_memory_equal(plain, sj, sj_len);
        fwrel_manifest got;
        fwrel_manifest_trust trust = {{signer}, 1, 1};
        assert_int_equal(fwrel_manifest_verify(&got, NULL, plain, plain_len, &trust), 0);
        free(plain);
    }
    /* Not addressed to this key. */
    assert_int_equal(fwrel_manifest_open(&plain, &plain_len, env, env_len, other), FWREL_EVERIFY);
    assert_non_null(strstr(fwrel_error_last()->message, "not addressed"));
    uint8_t *c = malloc(env_len + 1);
    /* A flipped byte anywhere after the header is refused by every recipient. */
    size_t offs[] = {32 + 608 + 40, 32 + 608 * 3 + 5, env_len - 1, 20};
    for (size_t i = 0; i < 4; i++) {
        memcpy(c, env, env_len);
        c[offs[i]] ^= 1;
        assert_int_equal(fwrel_manifest_open(&plain, &plain_len, c, env_len, p256), FWREL_EVERIFY);
    }
    /* Bounds: magic, truncation, an extra byte, a recipient count of 0 and 9. */
    memcpy(c, env, env_len);
    c[0] ^= 1;
    assert_int_equal(fwrel_manifest_open(&plain, &plain_len, c, env_len, p256), FWREL_EFORMAT);
    assert_int_equal(fwrel_manifest_open(&plain, &plain_len, env, env_len - 1, p256),
                     FWREL_EFORMAT);
    memcpy(c, env, env_len);
    c[env_len] = 0;
    assert_int_equal(fwrel_manifest_open(&plain, &plain_len, c, env_len + 1, p256), FWREL_EFORMAT);
    memcpy(c, env, env_len);
    c[10] = 0;
    assert_int_equal(fwrel_manifest_open(&plain, &plain_len, c, env_len, p256), FWREL_EFORMAT);
    c[10] = 9;
    assert_int_equal(fwrel_manifest_open(&plain, &plain_len, c, env_len, p256), FWREL_EFORMAT);
    /* Recipient kinds: RSA-3072 is not one. */
    fwrel_pkey *rsa3k = NULL;
    assert_int_equal(fwrel_key_generate(&rsa3k, FWREL_KEY_RSA3072), 0);
    const fwrel_pkey *bad[] = {rsa3k};
    uint8_t *e2 = NULL;
    assert_int_equal(fwrel_manifest_seal(&e2, &env_len, (const uint8_t *)sj, sj_len, bad, 1),
                     FWREL_EKEY);
    free(c);
    free(env);
    free(sj);
    fwrel_key_free(rsa3k);
    fwrel_key_free(signer);
    fwrel_key_free(rsa);
    fwrel_key_free(p256);
    fwrel_key_free(x);
    fwrel_key_free(other);
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

/* signed_json with its (only) signature text replaced by sig; malloc'd. */
static char *with_sig(const char *signed_json, const char *sig)
{
    const char *a = strstr(signed_json, "\"sig\":\"");
    assert_non_null(a);
    a += strlen("\"sig\":\"");
    const char *b = strchr(a, '"');
    assert_non_null(b);
    size_t n = (size_t)(a - signed_json) + strlen(sig) + strlen(b) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%.*s%s%s", (int)(a - signed_json), signed_json, sig, b);
    return out;
}

static int verify_with_sig(const char *signed_json, const char *sig,
                           const fwrel_manifest_trust *trust)
{
    fwrel_manifest got;
    char *t = with_sig(signed_json, sig);
    int error = fwrel_manifest_verify(&got, NULL, (const uint8_t *)t, strlen(t), trust);
    free(t);
    return error;
}

/* A trusted key's signature text is bounded before it is decoded: 696 valid base64 characters
 * are 522 bytes, which once overflowed the 520-byte stack buffer (issue 13). */
static void test_signature_base64_bounds(void **state)
{
    (void)state;
    fwrel_manifest m = sample();
    fwrel_pkey *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    const fwrel_pkey *one[] = {ed};
    fwrel_manifest_trust trust = {{ed}, 1, 1};
    char *sj = NULL, text[700];
    size_t len;
    assert_int_equal(fwrel_manifest_sign(&sj, &len, &m, one, 1), 0);
    assert_int_equal(fwrel_manifest_verify(&m, NULL, (const uint8_t *)sj, len, &trust), 0);

    /* 684 characters (512 bytes, the largest signature) decode, and do not verify. */
    memset(text, 'A', 699);
    text[683] = '=';
    text[684] = 0;
    assert_int_equal(verify_with_sig(sj, text, &trust), FWREL_EVERIFY);
    assert_non_null(strstr(fwrel_error_last()->message, "does not verify"));
    /* Refused before decoding: 696 and 699 characters (the most a sig field holds), 684 without
     * padding (513 bytes), 688. */
    static const size_t over[] = {696, 699, 684, 688};
    for (size_t i = 0; i < 4; i++) {
        memset(text, 'A', 699);
        text[over[i]] = 0;
        assert_int_equal(verify_with_sig(sj, text, &trust), FWREL_EFORMAT);
        assert_string_equal(fwrel_error_last()->message,
                            "signature 0: not the canonical base64 of 1..512 bytes");
    }
    memset(text, '/', 696);
    text[696] = 0;
    assert_int_equal(verify_with_sig(sj, text, &trust), FWREL_EFORMAT);

    /* Only the canonical text: no whitespace, no inner padding, zero pad bits, not empty. */
    const char *a = strstr(sj, "\"sig\":\"") + 7;
    size_t n = strcspn(a, "\"");
    assert_int_equal(n, 88);
    assert_string_equal(a + 86, "==\"}]}");
    static const char *const edits[] = {" ", "=", "\\n", "B"};
    for (size_t i = 0; i < 4; i++) {
        /* " " and "\n" lead, "=" replaces the first character, "B" sets a pad bit. */
        if (i == 0 || i == 2)
            snprintf(text, sizeof(text), "%s%.*s", edits[i], (int)n, a);
        else if (i == 1)
            snprintf(text, sizeof(text), "=%.*s", (int)n - 1, a + 1);
        else
            snprintf(text, sizeof(text), "%.*s%c==", 85, a, a[85] == 'B' ? 'C' : 'B');
        assert_int_equal(verify_with_sig(sj, text, &trust), FWREL_EFORMAT);
    }
    assert_int_equal(verify_with_sig(sj, "", &trust), FWREL_EFORMAT);
    assert_int_equal(verify_with_sig(sj, "====", &trust), FWREL_EFORMAT);
    free(sj);
    fwrel_key_free(ed);
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
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_secure_fota),
        cmocka_unit_test(test_signature_base64_bounds),
        cmocka_unit_test(test_sign_fn_length_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
