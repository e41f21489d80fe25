/* test_key.c - keystore: the vector keys (public keys byte-identical to espsecure's),
 * every private key form openssl and espsecure write, the encrypted PKCS#8 round trip and its
 * parameters, passphrase sources and their refusals, key types, key ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fixture.h"
#include "fwrel/io.h"
#include "fwrel/key.h"
#include "testutil.h"

static const char *dir;
/* A path in the test directory, valid until the end of the tests. */
static const char *tpath(const char *name)
{
    return fixture_path(dir, name, 0);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* Write a key with an OpenSSL writer, as another tool would have. */
enum form { PKCS1_OR_SEC1, SEC1_WITH_PARAMS, LEGACY_ENCRYPTED, PKCS8_PBKDF2 };

static void write_form(const char *path, EVP_PKEY *key, enum form form, const char *pass)
{
    BIO *f = BIO_new_file(path, "w");
    assert_non_null(f);
    int ok = 0;
    switch (form) {
    case PKCS1_OR_SEC1:
        ok = PEM_write_bio_PrivateKey_traditional(f, key, NULL, NULL, 0, NULL, NULL);
        break;
    case SEC1_WITH_PARAMS: /* `openssl ecparam -genkey` puts EC PARAMETERS first */
        BIO_puts(f,
                 "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n");
        ok = PEM_write_bio_PrivateKey_traditional(f, key, NULL, NULL, 0, NULL, NULL);
        break;
    case LEGACY_ENCRYPTED: /* "Proc-Type: 4,ENCRYPTED" */
        ok = PEM_write_bio_PrivateKey_traditional(f, key, EVP_aes_256_cbc(), NULL, 0, NULL,
                                                  (void *)pass);
        break;
    case PKCS8_PBKDF2: /* openssl pkcs8 -topk8 -v2 aes-256-cbc */
        ok = PEM_write_bio_PKCS8PrivateKey(f, key, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)pass);
        break;
    }
    assert_int_equal(ok, 1);
    BIO_free(f);
}

static int file_equal(const char *a, const char *b)
{
    size_t la, lb;
    uint8_t *da = testutil_read(a, &la), *db = testutil_read(b, &lb);
    int same = da != NULL && db != NULL && la == lb && memcmp(da, db, la) == 0;
    free(da);
    free(db);
    return same;
}

static int contains(const char *path, const char *text)
{
    size_t len;
    uint8_t *d = testutil_read(path, &len);
    int found = 0;
    if (d != NULL) {
        d = realloc(d, len + 1);
        d[len] = 0;
        found = strstr((char *)d, text) != NULL;
    }
    free(d);
    return found;
}

static void assert_error(int got, int code, const char *message)
{
    assert_int_equal(got, code);
    assert_int_equal(fwrel_error_last()->code, code);
    if (message != NULL)
        assert_string_equal(fwrel_error_last()->message, message);
}

static void id_of(char id[65], const fwrel_pkey *key)
{
    assert_int_equal(fwrel_key_id(id, key), 0);
    assert_int_equal(strlen(id), 64);
    assert_int_equal(strspn(id, "0123456789abcdef"), 64);
}

static const fwrel_pass_src none = {.kind = FWREL_PASS_NONE, .fd = -1};

static fwrel_pass_src file_src(const char *path)
{
    fwrel_pass_src s = {.kind = FWREL_PASS_FILE, .fd = -1, .file = path};
    return s;
}

/* ---- the vector keys ---------------------------------------------------------------- */

static void test_vector_keys(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int type;
        const char *key_id; /* sha256sum of `openssl pkey -pubin -outform DER`; NULL: unchecked */
    } keys[] = {
        {"test-sbv2-rsa3072-a", FWREL_KEY_RSA3072,
         "00f48dfb71ffaf81557739bb27213dcaf8e4ae4c0a9f9149fe24a17fd1c453da"},
        {"test-sbv2-rsa3072-b", FWREL_KEY_RSA3072, NULL},
        {"test-sbv2-rsa3072-c", FWREL_KEY_RSA3072, NULL},
        {"test-sbv2-ecdsa192-a", FWREL_KEY_ECDSA192, NULL},
        {"test-sbv2-ecdsa256-a", FWREL_KEY_ECDSA256,
         "1cc452ab27213a0c3ad808151b5f65fc206474849480ca3ce80d5ab5e0192aed"},
        {"test-sbv2-ecdsa256-b", FWREL_KEY_ECDSA256, NULL},
        {"test-sbv2-ecdsa384-a", FWREL_KEY_ECDSA384, NULL},
    };
    if (testutil_vectors() == NULL) {
        print_message("skipped: no vectors ($FWREL_VECTORS unset)\n");
        skip();
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char rel[128], want_pub[4096], id_priv[65], id_pub[65];
        fwrel_pkey *priv = NULL, *pub = NULL;
        int type = 0;
        snprintf(rel, sizeof(rel), "keys/%s.pub.pem", keys[i].name);
        snprintf(want_pub, sizeof(want_pub), "%s", testutil_vector_path(rel));
        snprintf(rel, sizeof(rel), "keys/%s.pem", keys[i].name);
        /* espsecure writes unencrypted keys: no passphrase source is touched. */
        assert_int_equal(fwrel_key_load_private(&priv, testutil_vector_path(rel), &none), 0);
        assert_int_equal(fwrel_key_type_of(&type, priv), 0);
        assert_int_equal(type, keys[i].type);
        /* espsecure extract-public-key --version 2, byte for byte. */
        const char *out = tpath("pub.pem");
        unlink(out);
        assert_int_equal(fwrel_key_write_public(priv, out, 0), 0);
        assert_true(file_equal(out, want_pub));
        struct stat st;
        assert_int_equal(stat(out, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644);
        /* Its public key file gives the same key id, and writes back the same bytes. */
        assert_int_equal(fwrel_key_load_public(&pub, want_pub, 0), 0);
        id_of(id_priv, priv);
        id_of(id_pub, pub);
        assert_string_equal(id_priv, id_pub);
        if (keys[i].key_id != NULL)
            assert_string_equal(id_priv, keys[i].key_id);
        unlink(out);
        assert_int_equal(fwrel_key_write_public(pub, out, 0), 0);
        assert_true(file_equal(out, want_pub));
        /* A public key is not a private key. */
        fwrel_pkey *none_key = NULL;
        assert_error(fwrel_key_load_private(&none_key, want_pub, &none), FWREL_EFORMAT,
                     "no PEM private key found");
        assert_null(none_key);
        fwrel_key_free(priv);
        fwrel_key_free(pub);
    }

    /* SBv1: espsecure extract-public-key --version 1 gives X||Y. */
    fwrel_pkey *v1 = NULL, *raw = NULL, *raw_off = NULL;
    uint8_t xy[64];
    size_t len;
    char a[65], b[65];
    assert_int_equal(
        fwrel_key_load_private(&v1, testutil_vector_path("keys/test-sbv1-ecdsa256-a.pem"), &none),
        0);
    assert_int_equal(fwrel_key_raw64(xy, v1), 0);
    uint8_t *want = testutil_read(testutil_vector_path("keys/test-sbv1-ecdsa256-a.pub.raw"), &len);
    assert_non_null(want);
    assert_int_equal(len, 64);
    assert_memory_equal(xy, want, 64);
    free(want);
    assert_int_equal(
        fwrel_key_load_public(&raw, testutil_vector_path("keys/test-sbv1-ecdsa256-a.pub.raw"), 1),
        0);
    id_of(a, v1);
    id_of(b, raw);
    assert_string_equal(a, b);
    assert_error(fwrel_key_load_public(
                     &raw_off, testutil_vector_path("keys/test-sbv1-ecdsa256-a.pub.raw"), 0),
                 FWREL_EFORMAT, NULL);
    fwrel_key_free(v1);
    fwrel_key_free(raw);

    /* The esp_encrypted_img device keys (openssl-made PKCS#1 / SEC1) load too. */
    static const char *enc[][2] = {
        {"keys/test-enc-rsa3072-priv.pem", "keys/test-enc-rsa3072-pub.pem"},
        {"keys/test-enc-ecc256-priv.pem", "keys/test-enc-ecc256-pub.pem"},
    };
    for (size_t i = 0; i < 2; i++) {
        char want_pub[4096];
        fwrel_pkey *k = NULL;
        snprintf(want_pub, sizeof(want_pub), "%s", testutil_vector_path(enc[i][1]));
        assert_int_equal(fwrel_key_load_private(&k, testutil_vector_path(enc[i][0]), &none), 0);
        const char *out = tpath("enc.pub.pem");
        unlink(out);
        assert_int_equal(fwrel_key_write_public(k, out, 0), 0);
        assert_true(file_equal(out, want_pub));
        fwrel_key_free(k);
    }
}

/* ---- encrypted PKCS#8 ---------------------------------------------------------------- */

/* The file is PBES2 + scrypt (N=2^14, r=8, p=4, 16-byte salt) + AES-256-CBC. */
static void check_pbes2_scrypt(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509_SIG *sig = PEM_read_PKCS8(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(sig);
    const X509_ALGOR *alg = NULL;
    X509_SIG_get0(sig, &alg, NULL);
    assert_int_equal(OBJ_obj2nid(alg->algorithm), NID_pbes2);
    PBE2PARAM *pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
    assert_non_null(pbe2);
    assert_int_equal(OBJ_obj2nid(pbe2->keyfunc->algorithm), NID_id_scrypt);
    assert_int_equal(OBJ_obj2nid(pbe2->encryption->algorithm), NID_aes_256_cbc);
    SCRYPT_PARAMS *sp =
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS), pbe2->keyfunc->parameter);
    assert_non_null(sp);
    uint64_t n = 0, r = 0, p = 0;
    assert_int_equal(ASN1_INTEGER_get_uint64(&n, sp->costParameter), 1);
    assert_int_equal(ASN1_INTEGER_get_uint64(&r, sp->blockSize), 1);
    assert_int_equal(ASN1_INTEGER_get_uint64(&p, sp->parallelizationParameter), 1);
    assert_int_equal(n, 16384);
    assert_int_equal(r, 8);
    assert_int_equal(p, 4);
    assert_int_equal(ASN1_STRING_length(sp->salt), 16);
    SCRYPT_PARAMS_free(sp);
    PBE2PARAM_free(pbe2);
    X509_SIG_free(sig);
}

/* Rewrite the scrypt N of an encrypted key file (the ciphertext no longer matters). */
static void set_scrypt_n(const char *from, const char *to, uint64_t n)
{
    FILE *f = fopen(from, "r");
    assert_non_null(f);
    X509_SIG *sig = PEM_read_PKCS8(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(sig);
    X509_ALGOR *alg = NULL;
    X509_SIG_getm(sig, &alg, NULL);
    PBE2PARAM *pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
    SCRYPT_PARAMS *sp =
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS), pbe2->keyfunc->parameter);
    assert_int_equal(ASN1_INTEGER_set_uint64(sp->costParameter, n), 1);
    assert_non_null(
        ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS), sp, &pbe2->keyfunc->parameter));
    assert_non_null(ASN1_TYPE_pack_sequence(ASN1_ITEM_rptr(PBE2PARAM), pbe2, &alg->parameter));
    f = fopen(to, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PKCS8(f, sig), 1);
    fclose(f);
    SCRYPT_PARAMS_free(sp);
    PBE2PARAM_free(pbe2);
    X509_SIG_free(sig);
}

static void test_encrypted_round_trip(void **state)
{
    (void)state;
    static const int types[] = {FWREL_KEY_RSA3072, FWREL_KEY_ECDSA192, FWREL_KEY_ECDSA256,
                                FWREL_KEY_ECDSA384};
    const char *pass = "correct horse battery staple";
    write_text(tpath("pass"), "correct horse battery staple\n", 0600);
    write_text(tpath("wrong"), "correct horse battery stapler\n", 0600);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        fwrel_pkey *key = NULL, *back = NULL;
        char id1[65], id2[65];
        int type = 0;
        const char *path = tpath("enc.pem");
        unlink(path);
        assert_int_equal(fwrel_key_generate(&key, types[i]), 0);
        assert_int_equal(fwrel_key_write_private(key, path, pass, strlen(pass), 0), 0);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_true(contains(path, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        check_pbes2_scrypt(path);

        fwrel_pass_src right = file_src(tpath("pass")), wrong = file_src(tpath("wrong"));
        assert_int_equal(fwrel_key_load_private(&back, path, &right), 0);
        assert_int_equal(fwrel_key_type_of(&type, back), 0);
        assert_int_equal(type, types[i]);
        id_of(id1, key);
        id_of(id2, back);
        assert_string_equal(id1, id2);
        assert_int_equal(EVP_PKEY_eq(key, back), 1);
        fwrel_key_free(back);
        back = NULL;

        assert_error(fwrel_key_load_private(&back, path, &wrong), FWREL_EKEY, "wrong passphrase");
        assert_null(back);
        assert_error(fwrel_key_load_private(&back, path, &none), FWREL_EKEY,
                     "key is encrypted: a passphrase is needed (--passphrase-file, "
                     "--passphrase-fd, or a terminal)");
        assert_error(fwrel_key_load_private(&back, path, NULL), FWREL_EKEY, NULL);
        /* The passphrase source's own refusal comes through unchanged. */
        chmod(tpath("pass"), 0644);
        assert_error(fwrel_key_load_private(&back, path, &right), FWREL_EKEY,
                     "passphrase file is readable by group or others");
        chmod(tpath("pass"), 0600);
        assert_null(back);
        fwrel_key_free(key);
    }
}

static void test_encrypted_refusals(void **state)
{
    (void)state;
    fwrel_pkey *key = NULL, *back = NULL;
    const char *path = tpath("k.pem");
    assert_int_equal(fwrel_key_generate(&key, FWREL_KEY_ECDSA256), 0);
    unlink(path);
    /* An empty passphrase is no encryption: refused, nothing written. */
    assert_error(fwrel_key_write_private(key, path, "", 0, 0), FWREL_EKEY, "empty passphrase");
    assert_int_equal(access(path, F_OK), -1);
    assert_error(fwrel_key_write_private(key, path, "x", FWREL_PASS_MAX + 1, 0), FWREL_EKEY, NULL);
    assert_int_equal(access(path, F_OK), -1);

    /* Never replaced without FWREL_OUT_FORCE. */
    assert_int_equal(fwrel_key_write_private(key, path, "one", 3, 0), 0);
    uint8_t *before;
    size_t before_len, after_len;
    before = testutil_read(path, &before_len);
    assert_error(fwrel_key_write_private(key, path, "two", 3, 0), FWREL_EIO,
                 "exists (use --force to replace)");
    assert_int_equal(fwrel_error_last()->about, FWREL_ABOUT_OUTPUT);
    uint8_t *after = testutil_read(path, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(after);
    assert_int_equal(fwrel_key_write_private(key, path, "two", 3, FWREL_OUT_FORCE), 0);
    after = testutil_read(path, &after_len);
    assert_true(after_len != before_len || memcmp(before, after, before_len) != 0);
    free(before);
    free(after);

    /* A key encrypted with scrypt beyond OpenSSL's memory cap: said so, not "wrong passphrase". */
    write_text(tpath("two"), "two\n", 0600);
    fwrel_pass_src two = file_src(tpath("two"));
    set_scrypt_n(path, tpath("n16.pem"), (uint64_t)1 << 16);
    assert_error(fwrel_key_load_private(&back, tpath("n16.pem"), &two), FWREL_EKEY,
                 "cannot decrypt the key: memory limit exceeded");
    assert_null(back);

    /* The longest passphrase round-trips. */
    char *longest = malloc(FWREL_PASS_MAX + 2);
    assert_non_null(longest);
    memset(longest, 'p', FWREL_PASS_MAX);
    longest[FWREL_PASS_MAX] = '\n';
    longest[FWREL_PASS_MAX + 1] = '\0';
    write_text(tpath("long"), longest, 0600);
    assert_int_equal(fwrel_key_write_private(key, path, longest, FWREL_PASS_MAX, FWREL_OUT_FORCE),
                     0);
    fwrel_pass_src lsrc = file_src(tpath("long"));
    assert_int_equal(fwrel_key_load_private(&back, path, &lsrc), 0);
    assert_int_equal(EVP_PKEY_eq(key, back), 1);
    fwrel_key_free(back);
    free(longest);
    fwrel_key_free(key);
}

static void test_unencrypted_write(void **state)
{
    (void)state;
    fwrel_pkey *key = NULL, *back = NULL;
    const char *path = tpath("plain.pem");
    unlink(path);
    assert_int_equal(fwrel_key_generate(&key, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_key_write_private(key, path, NULL, 0, 0), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(contains(path, "-----BEGIN PRIVATE KEY-----\n"));
    assert_false(contains(path, "ENCRYPTED"));
    assert_int_equal(fwrel_key_load_private(&back, path, &none), 0);
    assert_int_equal(EVP_PKEY_eq(key, back), 1);
    fwrel_key_free(back);
    fwrel_key_free(key);
}

/* ---- private and public key forms -------------------------------------------------- */

static void test_private_key_forms(void **state)
{
    (void)state;
    fwrel_pkey *rsa = NULL, *ec = NULL, *back = NULL;
    char want[65], got[65];
    write_text(tpath("pw"), "pw\n", 0600);
    write_text(tpath("bad"), "bad\n", 0600);
    fwrel_pass_src pw = file_src(tpath("pw")), bad = file_src(tpath("bad"));

    assert_int_equal(fwrel_key_generate(&rsa, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_key_generate(&ec, FWREL_KEY_ECDSA256), 0);
    struct {
        EVP_PKEY *key;
        enum form form;
        const char *marker;
    } cases[] = {
        {rsa, PKCS1_OR_SEC1, "BEGIN RSA PRIVATE KEY"},
        {ec, PKCS1_OR_SEC1, "BEGIN EC PRIVATE KEY"},
        {ec, SEC1_WITH_PARAMS, "BEGIN EC PARAMETERS"},
        {rsa, LEGACY_ENCRYPTED, "Proc-Type: 4,ENCRYPTED"},
        {ec, LEGACY_ENCRYPTED, "Proc-Type: 4,ENCRYPTED"},
        {rsa, PKCS8_PBKDF2, "BEGIN ENCRYPTED PRIVATE KEY"},
        {ec, PKCS8_PBKDF2, "BEGIN ENCRYPTED PRIVATE KEY"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = tpath("form.pem");
        int encrypted = cases[i].form == LEGACY_ENCRYPTED || cases[i].form == PKCS8_PBKDF2;
        write_form(path, cases[i].key, cases[i].form, "pw");
        assert_true(contains(path, cases[i].marker));
        if (fwrel_key_load_private(&back, path, encrypted ? &pw : &none) != 0)
            fail_msg("form %zu: %s", i, fwrel_error_last()->message);
        id_of(want, cases[i].key);
        id_of(got, back);
        assert_string_equal(want, got);
        fwrel_key_free(back);
        back = NULL;
        if (encrypted) {
            assert_error(fwrel_key_load_private(&back, path, &bad), FWREL_EKEY, "wrong passphrase");
            assert_error(fwrel_key_load_private(&back, path, &none), FWREL_EKEY, NULL);
            assert_non_null(strstr(fwrel_error_last()->message, "key is encrypted"));
        }
    }

    /* A compressed point: the public key file and key id are the canonical ones. */
    EVP_PKEY *compressed = EVP_PKEY_dup(ec);
    assert_non_null(compressed);
    assert_int_equal(EVP_PKEY_set_utf8_string_param(
                         compressed, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"),
                     1);
    write_form(tpath("compressed.pem"), compressed, PKCS1_OR_SEC1, NULL);
    assert_int_equal(fwrel_key_load_private(&back, tpath("compressed.pem"), &none), 0);
    id_of(want, ec);
    id_of(got, back);
    assert_string_equal(want, got);
    id_of(got, compressed);
    assert_string_equal(want, got);
    unlink(tpath("a.pub.pem"));
    unlink(tpath("b.pub.pem"));
    assert_int_equal(fwrel_key_write_public(ec, tpath("a.pub.pem"), 0), 0);
    assert_int_equal(fwrel_key_write_public(back, tpath("b.pub.pem"), 0), 0);
    assert_true(file_equal(tpath("a.pub.pem"), tpath("b.pub.pem")));
    uint8_t xy1[64], xy2[64];
    assert_int_equal(fwrel_key_raw64(xy1, ec), 0);
    assert_int_equal(fwrel_key_raw64(xy2, compressed), 0);
    assert_memory_equal(xy1, xy2, 64);
    fwrel_key_free(back);
    back = NULL;
    EVP_PKEY_free(compressed);

    /* Not a key: a bad-input error, and the passphrase source is not consulted. */
    write_text(tpath("junk.pem"), "hello\n", 0600);
    assert_error(fwrel_key_load_private(&back, tpath("junk.pem"), &pw), FWREL_EFORMAT,
                 "no PEM private key found");
    write_text(tpath("empty.pem"), "", 0600);
    assert_error(fwrel_key_load_private(&back, tpath("empty.pem"), &pw), FWREL_EFORMAT,
                 "no PEM private key found");
    write_text(tpath("damaged.pem"),
               "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0600);
    assert_error(fwrel_key_load_private(&back, tpath("damaged.pem"), &pw), FWREL_EFORMAT,
                 "no PEM private key found");
    assert_error(fwrel_key_load_private(&back, tpath("missing.pem"), &pw), FWREL_EIO, NULL);
    /* Bounded read: a huge file is refused before it is parsed. */
    char *big = malloc(70000);
    assert_non_null(big);
    memset(big, 'A', 69999);
    big[69999] = '\0';
    write_text(tpath("big.pem"), big, 0600);
    free(big);
    assert_error(fwrel_key_load_private(&back, tpath("big.pem"), &none), FWREL_EFORMAT, NULL);
    assert_null(back);
    fwrel_key_free(rsa);
    fwrel_key_free(ec);
}

static void test_public_key_forms(void **state)
{
    (void)state;
    fwrel_pkey *ec = NULL, *pub = NULL;
    char a[65], b[65];
    uint8_t xy[64];
    assert_int_equal(fwrel_key_generate(&ec, FWREL_KEY_ECDSA256), 0);

    /* Raw 64 bytes round trip, only when allowed. */
    assert_int_equal(fwrel_key_raw64(xy, ec), 0);
    assert_int_equal(fwrel_key_parse_public(&pub, xy, sizeof(xy), 1), 0);
    id_of(a, ec);
    id_of(b, pub);
    assert_string_equal(a, b);
    fwrel_key_free(pub);
    pub = NULL;
    assert_error(fwrel_key_parse_public(&pub, xy, sizeof(xy), 0), FWREL_EFORMAT, NULL);
    assert_error(fwrel_key_parse_public(&pub, xy, sizeof(xy) - 1, 1), FWREL_EFORMAT, NULL);
    uint8_t zero[64] = {0}; /* not on the curve */
    assert_error(fwrel_key_parse_public(&pub, zero, sizeof(zero), 1), FWREL_EFORMAT, NULL);
    assert_null(pub);

    /* The public half of an unencrypted private key, and nothing private in it. */
    const char *path = tpath("pp.pem");
    unlink(path);
    assert_int_equal(fwrel_key_write_private(ec, path, NULL, 0, 0), 0);
    assert_int_equal(fwrel_key_load_public(&pub, path, 0), 0);
    id_of(b, pub);
    assert_string_equal(a, b);
    BIGNUM *priv = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_PRIV_KEY, &priv), 0);
    BN_free(priv);
    fwrel_key_free(pub);
    pub = NULL;

    /* An encrypted private key is no public key, and no passphrase is asked for. */
    unlink(path);
    assert_int_equal(fwrel_key_write_private(ec, path, "pw", 2, 0), 0);
    assert_error(fwrel_key_load_public(&pub, path, 1), FWREL_EFORMAT,
                 "no PEM public key (or unencrypted private key) found, nor 64 raw bytes");
    assert_error(fwrel_key_load_public(&pub, tpath("nope"), 0), FWREL_EIO, NULL);
    assert_null(pub);

    /* SBv1 needs P-256. */
    fwrel_pkey *p384 = NULL;
    assert_int_equal(fwrel_key_generate(&p384, FWREL_KEY_ECDSA384), 0);
    assert_error(fwrel_key_raw64(xy, p384), FWREL_EKEY, NULL);
    fwrel_key_free(p384);
    fwrel_key_free(ec);
}

/* ---- key types and ids -------------------------------------------------------------- */

static void test_key_types(void **state)
{
    (void)state;
    static const char *names[] = {"rsa3072", "ecdsa192", "ecdsa256", "ecdsa384"};
    for (size_t i = 0; i < 4; i++) {
        int type = 0, of = 0;
        fwrel_pkey *key = NULL;
        assert_int_equal(fwrel_key_type_parse(&type, names[i]), 0);
        assert_string_equal(fwrel_key_type_name(type), names[i]);
        assert_int_equal(fwrel_key_generate(&key, type), 0);
        assert_int_equal(fwrel_key_type_of(&of, key), 0);
        assert_int_equal(of, type);
        if (type == FWREL_KEY_RSA3072) {
            BIGNUM *e = NULL;
            assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e), 1);
            assert_true(BN_is_word(e, 65537));
            BN_free(e);
        }
        fwrel_key_free(key);
    }
    int type = 0;
    assert_error(fwrel_key_type_parse(&type, "rsa2048"), FWREL_EUSAGE, NULL);
    assert_error(fwrel_key_type_parse(&type, "RSA3072"), FWREL_EUSAGE, NULL);
    assert_string_equal(fwrel_key_type_name(99), "unknown");
    fwrel_pkey *key = NULL;
    assert_error(fwrel_key_generate(&key, 99), FWREL_EUSAGE, NULL);
    assert_null(key);

    /* espsecure's refusals, with its words. */
    EVP_PKEY *rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp521r1");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(rsa2048);
    assert_non_null(p521);
    assert_non_null(ed);
    assert_error(fwrel_key_type_of(&type, rsa2048), FWREL_EKEY,
                 "RSA key has 2048 bits. Only RSA-3072 is supported.");
    assert_error(fwrel_key_type_of(&type, p521), FWREL_EKEY, "Unsupported ECDSA curve: secp521r1");
    assert_error(fwrel_key_type_of(&type, ed), FWREL_EKEY, NULL);
    /* A refused RSA key still loads (the type check is the caller's), then is refused. */
    write_form(tpath("rsa2048.pem"), rsa2048, PKCS1_OR_SEC1, NULL);
    assert_int_equal(fwrel_key_load_private(&key, tpath("rsa2048.pem"), &none), 0);
    assert_error(fwrel_key_type_of(&type, key), FWREL_EKEY,
                 "RSA key has 2048 bits. Only RSA-3072 is supported.");
    fwrel_key_free(key);
    EVP_PKEY_free(rsa2048);
    EVP_PKEY_free(p521);
    EVP_PKEY_free(ed);
}

static void test_key_id_stable(void **state)
{
    (void)state;
    fwrel_pkey *key = NULL, *other = NULL, *pub = NULL;
    char a[65], b[65], c[65];
    assert_int_equal(fwrel_key_generate(&key, FWREL_KEY_ECDSA384), 0);
    assert_int_equal(fwrel_key_generate(&other, FWREL_KEY_ECDSA384), 0);
    id_of(a, key);
    id_of(b, key);
    assert_string_equal(a, b);
    id_of(c, other);
    assert_string_not_equal(a, c);
    /* The same id from the written public key file. */
    unlink(tpath("id.pub.pem"));
    assert_int_equal(fwrel_key_write_public(key, tpath("id.pub.pem"), 0), 0);
    assert_int_equal(fwrel_key_load_public(&pub, tpath("id.pub.pem"), 0), 0);
    id_of(b, pub);
    assert_string_equal(a, b);
    /* And it is SHA-256 of the DER SubjectPublicKeyInfo. */
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    assert_true(len > 0);
    uint8_t md[32];
    assert_int_equal(EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL), 1);
    OPENSSL_free(der);
    for (int i = 0; i < 32; i++) {
        char hex[3];
        snprintf(hex, sizeof(hex), "%02x", md[i]);
        assert_memory_equal(a + 2 * i, hex, 2);
    }
    fwrel_key_free(key);
    fwrel_key_free(other);
    fwrel_key_free(pub);
}

/* ---- passphrase sources ------------------------------------------------------------- */

static void expect_pass(const fwrel_pass_src *src, const char *want, size_t want_len)
{
    char *pass = NULL;
    size_t len = 0;
    assert_int_equal(fwrel_pass_read(&pass, &len, src, NULL, 0), 0);
    assert_non_null(pass);
    assert_int_equal(len, want_len);
    assert_memory_equal(pass, want, want_len);
    assert_int_equal(pass[len], '\0');
    if (CRYPTO_secure_malloc_initialized())
        assert_true(CRYPTO_secure_allocated(pass));
    fwrel_pass_free(pass, len);
}

static void expect_pass_error(const fwrel_pass_src *src, int code, const char *message)
{
    char *pass = (char *)"sentinel";
    size_t len = 99;
    assert_error(fwrel_pass_read(&pass, &len, src, NULL, 0), code, message);
    assert_null(pass);
    assert_int_equal(len, 0);
}

static void test_pass_file(void **state)
{
    (void)state;
    const char *p = tpath("passfile");
    fwrel_pass_src src = file_src(p);

    write_text(p, "secret\nsecond line\n", 0600);
    expect_pass(&src, "secret", 6);
    write_text(p, "no newline", 0400);
    expect_pass(&src, "no newline", 10);
    write_text(p, "crlf\r\n", 0600); /* kept, as openssl -passin file: keeps it */
    expect_pass(&src, "crlf\r", 5);

    write_text(p, "secret\n", 0644);
    expect_pass_error(&src, FWREL_EKEY, "passphrase file is readable by group or others");
    write_text(p, "secret\n", 0640);
    expect_pass_error(&src, FWREL_EKEY, "passphrase file is readable by group or others");
    write_text(p, "secret\n", 0604);
    expect_pass_error(&src, FWREL_EKEY, "passphrase file is readable by group or others");
    write_text(p, "secret\n", 0620);
    expect_pass_error(&src, FWREL_EKEY, "passphrase file is writable by group or others");
    write_text(p, "\n", 0600);
    expect_pass_error(&src, FWREL_EKEY, "empty passphrase");
    write_text(p, "", 0600);
    expect_pass_error(&src, FWREL_EKEY, "empty passphrase");

    char line[FWREL_PASS_MAX + 3];
    memset(line, 'x', sizeof(line));
    line[FWREL_PASS_MAX] = '\n';
    line[FWREL_PASS_MAX + 1] = '\0';
    write_text(p, line, 0600);
    expect_pass(&src, line, FWREL_PASS_MAX);
    line[FWREL_PASS_MAX] = 'x';
    line[FWREL_PASS_MAX + 1] = '\n';
    line[FWREL_PASS_MAX + 2] = '\0';
    write_text(p, line, 0600);
    expect_pass_error(&src, FWREL_EKEY, NULL);

    /* Not regular files; a FIFO must not hang the open. */
    src.file = dir;
    expect_pass_error(&src, FWREL_EKEY, "passphrase file is not a regular file");
    const char *fifo = tpath("fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    src.file = fifo;
    expect_pass_error(&src, FWREL_EKEY, "passphrase file is not a regular file");
    src.file = tpath("absent");
    expect_pass_error(&src, FWREL_EIO, NULL);
    /* A link is followed; the checks apply to the file read. */
    write_text(p, "linked\n", 0600);
    const char *link = tpath("link");
    assert_int_equal(symlink(p, link), 0);
    src.file = link;
    expect_pass(&src, "linked", 6);
    chmod(p, 0644);
    expect_pass_error(&src, FWREL_EKEY, "passphrase file is readable by group or others");
}

static void test_pass_fd(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    const char *data = "first\nsecond";
    assert_int_equal(write(fds[1], data, strlen(data)), (ssize_t)strlen(data));
    close(fds[1]);
    fwrel_pass_src src = {.kind = FWREL_PASS_FD, .fd = fds[0]};
    /* One line per call: nothing after the newline is consumed. */
    expect_pass(&src, "first", 5);
    expect_pass(&src, "second", 6);
    expect_pass_error(&src, FWREL_EKEY, "empty passphrase");
    close(fds[0]);
    expect_pass_error(&src, FWREL_EIO, NULL);
    src.fd = -1;
    expect_pass_error(&src, FWREL_EUSAGE, NULL);
    fwrel_pass_src nosrc = {.kind = FWREL_PASS_NONE, .fd = -1};
    expect_pass_error(&nosrc, FWREL_EKEY, NULL);

    /* Loading: an unencrypted key leaves the descriptor alone; each encrypted key takes one
     * line. */
    fwrel_pkey *key = NULL, *back = NULL;
    assert_int_equal(fwrel_key_generate(&key, FWREL_KEY_ECDSA256), 0);
    unlink(tpath("a.pem"));
    unlink(tpath("b.pem"));
    unlink(tpath("plain.pem"));
    assert_int_equal(fwrel_key_write_private(key, tpath("a.pem"), "alpha", 5, 0), 0);
    assert_int_equal(fwrel_key_write_private(key, tpath("b.pem"), "beta", 4, 0), 0);
    assert_int_equal(fwrel_key_write_private(key, tpath("plain.pem"), NULL, 0, 0), 0);
    assert_int_equal(pipe(fds), 0);
    data = "alpha\nbeta\n";
    assert_int_equal(write(fds[1], data, strlen(data)), (ssize_t)strlen(data));
    close(fds[1]);
    src.fd = fds[0];
    assert_int_equal(fwrel_key_load_private(&back, tpath("plain.pem"), &src), 0);
    fwrel_key_free(back);
    assert_int_equal(fwrel_key_load_private(&back, tpath("a.pem"), &src), 0);
    fwrel_key_free(back);
    assert_int_equal(fwrel_key_load_private(&back, tpath("b.pem"), &src), 0);
    fwrel_key_free(back);
    close(fds[0]);
    fwrel_key_free(key);
}

static void test_pass_tty_without_terminal(void **state)
{
    (void)state;
    /* In a new session there is no controlling terminal: refused, never hangs. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *pass = NULL;
        size_t len = 0;
        fwrel_pass_src tty = {.kind = FWREL_PASS_TTY, .fd = -1};
        if (setsid() < 0)
            _exit(10);
        int e = fwrel_pass_read(&pass, &len, &tty, "Passphrase: ", 1);
        _exit(e == FWREL_EKEY && pass == NULL &&
                      strstr(fwrel_error_last()->message, "no terminal") != NULL
                  ? 0
                  : 11);
    }
    fixture_wait_ok(pid);
}

static int setup(void **state)
{
    (void)state;
    /* As the commands do: passphrases then live in the secure heap. */
    if (!CRYPTO_secure_malloc_initialized())
        (void)CRYPTO_secure_malloc_init(1 << 16, 32);
    dir = fixture_tmpdir();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_keys),
        cmocka_unit_test(test_encrypted_round_trip),
        cmocka_unit_test(test_encrypted_refusals),
        cmocka_unit_test(test_unencrypted_write),
        cmocka_unit_test(test_private_key_forms),
        cmocka_unit_test(test_public_key_forms),
        cmocka_unit_test(test_key_types),
        cmocka_unit_test(test_key_id_stable),
        cmocka_unit_test(test_pass_file),
        cmocka_unit_test(test_pass_fd),
        cmocka_unit_test(test_pass_tty_without_terminal),
    };
    return cmocka_run_group_tests(tests, setup, fixture_teardown);
}
