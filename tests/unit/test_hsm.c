/* test_hsm.c - pkcs11: URI parsing: every accepted attribute decoded, and each refusal with its
 * exact error code (pin-value is a usage error, everything else malformed input). HSM keys on a
 * real SoftHSM2 token made in a temporary directory (skipped without softhsm2-util): public keys
 * equal openssl's, signatures verify with OpenSSL alone, two keys open at once, and the errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "fixture.h"
#include "fwrel/hsm.h"

static void test_full_uri(void **state)
{
    (void)state;
    fwrel_hsm_uri u;
    assert_int_equal(fwrel_hsm_uri_parse(&u,
                                         "pkcs11:token=fwrel%20test;manufacturer=SoftHSM%20project;"
                                         "serial=1a2b;model=SoftHSM%20v2;object=sb-slot0;id=%01%ff;"
                                         "type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&"
                                         "pin-source=file:/tmp/pin"),
                     0);
    assert_int_equal(u.has, FWREL_HSM_TOKEN | FWREL_HSM_MANUFACTURER | FWREL_HSM_SERIAL |
                                FWREL_HSM_MODEL | FWREL_HSM_OBJECT | FWREL_HSM_ID |
                                FWREL_HSM_MODULE | FWREL_HSM_PIN_SOURCE);
    assert_string_equal(u.token, "fwrel test");
    assert_string_equal(u.manufacturer, "SoftHSM project");
    assert_string_equal(u.serial, "1a2b");
    assert_string_equal(u.model, "SoftHSM v2");
    assert_string_equal(u.object, "sb-slot0");
    assert_int_equal(u.id_len, 2);
    assert_int_equal(u.id[0], 0x01);
    assert_int_equal(u.id[1], 0xff);
    assert_string_equal(u.module_path, "/usr/lib/softhsm/libsofthsm2.so");
    assert_string_equal(u.pin_source, "/tmp/pin");
}

static void test_minimal(void **state)
{
    (void)state;
    fwrel_hsm_uri u;
    assert_int_equal(fwrel_hsm_uri_parse(&u, "pkcs11:object=k"), 0);
    assert_int_equal(u.has, FWREL_HSM_OBJECT);
    assert_string_equal(u.object, "k");
    assert_int_equal(fwrel_hsm_uri_parse(&u, "pkcs11:id=%00"), 0);
    assert_int_equal(u.has, FWREL_HSM_ID);
    assert_int_equal(u.id_len, 1);
    assert_int_equal(fwrel_hsm_is_uri("pkcs11:object=k"), 1);
    assert_int_equal(fwrel_hsm_is_uri("key.pem"), 0);
    assert_int_equal(fwrel_hsm_is_uri(NULL), 0);
}

static void test_refusals(void **state)
{
    (void)state;
    static const char *bad[] = {
        "pkcs11:",
        "pkcs11:token=t",
        "key.pem",
        "pkcs11:object=k;",
        "pkcs11:;object=k",
        "pkcs11:object=k?",
        "pkcs11:object=k?module-path=/m&",
        "pkcs11:object",
        "pkcs11:=k",
        "pkcs11:object=k;object=j",
        "pkcs11:object=%4",
        "pkcs11:object=%zz",
        "pkcs11:object=a%00b",
        "pkcs11:object=a b",
        "pkcs11:id=",
        "pkcs11:object=k;type=public",
        "pkcs11:object=k;type=private;type=private",
        "pkcs11:object=k;slot-id=1",
        "pkcs11:object=k?module-path=relative.so",
        "pkcs11:object=k?module-name=softhsm2",
        "pkcs11:object=k?pin-source=/tmp/pin",
        "pkcs11:object=k?pin-source=file:relative",
        "pkcs11:serial=01234567890123456;object=k",
        "pkcs11:token=012345678901234567890123456789012;object=k",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fwrel_hsm_uri u;
        memset(&u, 0xa5, sizeof(u));
        if (fwrel_hsm_uri_parse(&u, bad[i]) != FWREL_EFORMAT)
            fail_msg("accepted or wrong code: %s", bad[i]);
        assert_int_equal(u.has, 0);
    }
}

static void test_pin_value_refused(void **state)
{
    (void)state;
    fwrel_hsm_uri u;
    assert_int_equal(fwrel_hsm_uri_parse(&u, "pkcs11:object=k?pin-value=1234"), FWREL_EUSAGE);
    assert_int_equal(u.has, 0);
}

static void test_too_long(void **state)
{
    (void)state;
    static char big[FWREL_HSM_URI_MAX + 16];
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "pkcs11:object=", 14);
    fwrel_hsm_uri u;
    assert_int_equal(fwrel_hsm_uri_parse(&u, big), FWREL_EFORMAT);
}

/* ---- a SoftHSM2 token ---- */

static char g_dir[256];
static int g_have_hsm;
static char g_uri_rsa[512], g_uri_ec[512], g_pin[300], g_badpin[300];

/* Run a shell command in the token directory. */
static int sh_in_dir(const char *cmd)
{
    char buf[2048];
    snprintf(buf, sizeof(buf), "cd '%s' && %s", g_dir, cmd);
    return system(buf);
}

static int token_setup(void **state)
{
    (void)state;
    char path[512], conf[600];
    if (system("command -v softhsm2-util >/dev/null 2>&1") != 0)
        return 0;
    snprintf(g_dir, sizeof(g_dir), "%s/fwrel-hsm.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/softhsm2.conf", g_dir);
    snprintf(conf, sizeof(conf),
             "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", g_dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(conf, f);
    fclose(f);
    setenv("SOFTHSM2_CONF", path, 1);
    if (sh_in_dir(
            "softhsm2-util --init-token --free --label unit --pin 1234 --so-pin 5678 "
            ">/dev/null && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "
            "rsa.p8 "
            "2>/dev/null && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
            "-out ec.p8 2>/dev/null && openssl genpkey -algorithm RSA -pkeyopt "
            "rsa_keygen_bits:2048 "
            "-out small.p8 2>/dev/null && openssl genpkey -algorithm ED25519 -out ed.p8 && "
            "softhsm2-util --import ed.p8 --token unit --label ed --id 04 --pin 1234 >/dev/null && "
            "softhsm2-util --import rsa.p8 --token unit --label rsa --id 01 --pin 1234 >/dev/null "
            "&& "
            "softhsm2-util --import ec.p8 --token unit --label ec --id 02 --pin 1234 >/dev/null && "
            "softhsm2-util --import small.p8 --token unit --label small --id 03 --pin 1234 "
            ">/dev/null") != 0)
        return -1;
    snprintf(g_pin, sizeof(g_pin), "%s/pin", g_dir);
    snprintf(g_badpin, sizeof(g_badpin), "%s/badpin", g_dir);
    fixture_write_text(g_pin, "1234\n", 0600);
    fixture_write_text(g_badpin, "4321\n", 0600);
    snprintf(g_uri_rsa, sizeof(g_uri_rsa), "pkcs11:token=unit;object=rsa");
    snprintf(g_uri_ec, sizeof(g_uri_ec), "pkcs11:token=unit;id=%%02");
    g_have_hsm = 1;
    return 0;
}

static int token_teardown(void **state)
{
    (void)state;
    char cmd[300];
    if (g_dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

static EVP_PKEY *load_p8(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    return k;
}

/* Verify with OpenSSL alone (the key from the PKCS#8 file, not from the token). */
static int ossl_verify(EVP_PKEY *k, const uint8_t *dg, const uint8_t *sig, size_t n, int rsa)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k, NULL);
    int ok = EVP_PKEY_verify_init(c) == 1 && EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) == 1 &&
             (!rsa || (EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) == 1 &&
                       EVP_PKEY_CTX_set_rsa_pss_saltlen(c, 32) == 1)) &&
             EVP_PKEY_verify(c, sig, n, dg, 32) == 1;
    EVP_PKEY_CTX_free(c);
    return ok;
}

static const fwrel_pass_src *pin_file(const char *path)
{
    static fwrel_pass_src src;
    src.kind = FWREL_PASS_FILE;
    src.fd = -1;
    src.file = path;
    return &src;
}

static void test_sign_rsa_and_ec(void **state)
{
    (void)state;
    if (!g_have_hsm)
        skip();
    uint8_t dg[32], sig[FWREL_HSM_SIG_MAX];
    size_t n = 0;
    for (int i = 0; i < 32; i++)
        dg[i] = (uint8_t)(i * 7 + 1);
    for (int rsa = 1; rsa >= 0; rsa--) {
        fwrel_hsm_key *k = NULL;
        EVP_PKEY *ref = load_p8(rsa ? "rsa.p8" : "ec.p8");
        assert_int_equal(fwrel_hsm_key_open(&k, rsa ? g_uri_rsa : g_uri_ec, NULL, pin_file(g_pin)),
                         0);
        assert_int_equal(EVP_PKEY_eq(fwrel_hsm_key_public(k), ref), 1);
        assert_int_equal(fwrel_hsm_key_sign(k, dg, 32, sig, &n), 0);
        assert_int_equal(n == 384, rsa); /* ECDSA: DER, at most 72 bytes */
        if (!rsa)
            assert_true(n <= 72 && sig[0] == 0x30);
        assert_true(ossl_verify(ref, dg, sig, n, rsa));
        dg[0] ^= 1;
        assert_false(ossl_verify(ref, dg, sig, n, rsa));
        dg[0] ^= 1;
        assert_int_equal(fwrel_hsm_key_sign(k, dg, 31, sig, &n), FWREL_EUSAGE);
        /* sign_message = SHA-256 then sign. */
        uint8_t md[32];
        unsigned mdl = 0;
        assert_int_equal(fwrel_hsm_key_sign_message(k, (const uint8_t *)"abc", 3, sig, &n), 0);
        assert_int_equal(EVP_Digest("abc", 3, md, &mdl, EVP_sha256(), NULL), 1);
        assert_true(ossl_verify(ref, md, sig, n, rsa));
        fwrel_hsm_key_close(k);
        EVP_PKEY_free(ref);
    }
}

/* Ed25519: whole messages (CKM_EDDSA), verified with OpenSSL alone; digests refused. */
static void test_sign_ed25519(void **state)
{
    (void)state;
    if (!g_have_hsm)
        skip();
    fwrel_hsm_key *k = NULL;
    uint8_t sig[FWREL_HSM_SIG_MAX], dg[32] = {0};
    size_t n = 0;
    static const uint8_t msg[] = "fwrel manifest bytes";
    EVP_PKEY *ref = load_p8("ed.p8");
    assert_int_equal(fwrel_hsm_key_open(&k, "pkcs11:token=unit;object=ed", NULL, pin_file(g_pin)),
                     0);
    assert_int_equal(EVP_PKEY_eq(fwrel_hsm_key_public(k), ref), 1);
    assert_int_equal(fwrel_hsm_key_sign_message(k, msg, sizeof(msg), sig, &n), 0);
    assert_int_equal(n, 64);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(c, NULL, NULL, NULL, ref), 1);
    assert_int_equal(EVP_DigestVerify(c, sig, n, msg, sizeof(msg)), 1);
    assert_int_equal(EVP_DigestVerifyInit(c, NULL, NULL, NULL, ref), 1);
    assert_int_not_equal(EVP_DigestVerify(c, sig, n, msg, sizeof(msg) - 1), 1);
    EVP_MD_CTX_free(c);
    assert_int_equal(fwrel_hsm_key_sign(k, dg, 32, sig, &n), FWREL_EKEY);
    fwrel_hsm_key_close(k);
    EVP_PKEY_free(ref);
}

/* Two keys through one module: closing the first leaves the second usable. */
static void test_two_keys_open(void **state)
{
    (void)state;
    if (!g_have_hsm)
        skip();
    fwrel_hsm_key *a = NULL, *b = NULL;
    uint8_t dg[32] = {1}, sig[FWREL_HSM_SIG_MAX];
    size_t n = 0;
    assert_int_equal(fwrel_hsm_key_open(&a, g_uri_rsa, NULL, pin_file(g_pin)), 0);
    assert_int_equal(fwrel_hsm_key_open(&b, g_uri_ec, FWREL_HSM_DEFAULT_MODULE, pin_file(g_pin)),
                     0);
    fwrel_hsm_key_close(a);
    assert_int_equal(fwrel_hsm_key_sign(b, dg, 32, sig, &n), 0);
    fwrel_hsm_key_close(b);
    /* and the module can be loaded again afterwards */
    assert_int_equal(fwrel_hsm_key_open(&a, g_uri_rsa, NULL, pin_file(g_pin)), 0);
    assert_int_equal(fwrel_hsm_key_sign(a, dg, 32, sig, &n), 0);
    fwrel_hsm_key_close(a);
    fwrel_hsm_key_close(NULL);
}

static void expect_open(const char *uri, const char *module, const fwrel_pass_src *pin, int code,
                        const char *msg_prefix)
{
    fwrel_hsm_key *k = (fwrel_hsm_key *)&k; /* must be reset to NULL */
    assert_int_equal(fwrel_hsm_key_open(&k, uri, module, pin), code);
    assert_null(k);
    if (strncmp(fwrel_error_last()->message, msg_prefix, strlen(msg_prefix)) != 0)
        fail_msg("message '%s' does not start with '%s'", fwrel_error_last()->message, msg_prefix);
}

static void test_open_errors(void **state)
{
    (void)state;
    if (!g_have_hsm)
        skip();
    char uri[1024];
    fwrel_pass_src none = {.kind = FWREL_PASS_NONE, .fd = -1};
    expect_open(g_uri_rsa, NULL, pin_file(g_badpin), FWREL_EKEY, "wrong PIN");
    expect_open(g_uri_rsa, NULL, &none, FWREL_EKEY, "no PIN given");
    expect_open("pkcs11:token=unit;object=nope", NULL, pin_file(g_pin), FWREL_EKEY,
                "no private key matches");
    expect_open("pkcs11:token=other;object=rsa", NULL, pin_file(g_pin), FWREL_EKEY,
                "no PKCS#11 token matches");
    expect_open("pkcs11:token=unit;object=small", NULL, pin_file(g_pin), FWREL_EKEY,
                "only RSA-3072 HSM keys are supported, not 2048 bits");
    expect_open(g_uri_rsa, "/nonexistent/module.so", pin_file(g_pin), FWREL_EIO,
                "cannot load PKCS#11 module /nonexistent/module.so: ");
    expect_open(g_uri_rsa, "/bin/true", pin_file(g_pin), FWREL_EIO,
                "cannot load PKCS#11 module /bin/true");
    expect_open("pkcs11:object=rsa?pin-value=1234", NULL, pin_file(g_pin), FWREL_EUSAGE, "");
    expect_open("pkcs11:token=unit", NULL, pin_file(g_pin), FWREL_EFORMAT, "");
    /* pin-source in the URI wins over the caller's source */
    snprintf(uri, sizeof(uri), "%s?pin-source=file:%s", g_uri_rsa, g_pin);
    fwrel_hsm_key *k = NULL;
    assert_int_equal(fwrel_hsm_key_open(&k, uri, NULL, pin_file(g_badpin)), 0);
    fwrel_hsm_key_close(k);
    /* a readable PIN file is refused like a passphrase file */
    assert_int_equal(chmod(g_badpin, 0644), 0);
    expect_open(g_uri_rsa, NULL, pin_file(g_badpin), FWREL_EKEY, "passphrase file is readable");
    assert_int_equal(chmod(g_badpin, 0600), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_uri), cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_refusals), cmocka_unit_test(test_pin_value_refused),
        cmocka_unit_test(test_too_long),
    };
    const struct CMUnitTest token_tests[] = {
        cmocka_unit_test(test_sign_rsa_and_ec),
        cmocka_unit_test(test_sign_ed25519),
        cmocka_unit_test(test_two_keys_open),
        cmocka_unit_test(test_open_errors),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + cmocka_run_group_tests(token_tests, token_setup, token_teardown);
}
