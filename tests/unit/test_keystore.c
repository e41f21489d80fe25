/*
 * test_key.c - the keystore directory: creation and permissions, index
 * round trip and strictness, generation of every algorithm, rotation and
 * revocation, sealed secrets, failure leaving the old state, the lock, policy
 * resolution, and the ECC image key derivation against esp_enc_img_gen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fixture.h"
#include "fwrel/error.h"
#include "fwrel/io.h"
#include "fwrel/key.h"
#include "fwrel/keystore.h"
#include "fwrel/policy.h"
#include "testutil.h"

#define PASS "correct horse"

static char dir[4096];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/ks", testutil_tmpdir());
    testutil_rmtree(dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    chmod(dir, 0700);
    testutil_rmtree(dir);
    return 0;
}

static uint8_t *slurp(const char *rel, size_t *len)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return testutil_read(path, len);
}

static void test_create_and_modes(void **state)
{
    (void)state;
    fwrel_keystore *ks = NULL;
    struct stat st;
    assert_int_equal(fwrel_keystore_open(&ks, dir, 0), FWREL_EIO); /* absent */
    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    assert_int_equal(fwrel_keystore_count(ks), 0);
    fwrel_keystore_close(ks);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    char path[4200];
    snprintf(path, sizeof(path), "%s/index.json", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(chmod(dir, 0750), 0);
    assert_int_equal(fwrel_keystore_open(&ks, dir, 0), FWREL_EKEY);
    assert_string_equal(fwrel_error_last()->message,
                        "keystore is accessible by group or others (mode 0750)");
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(fwrel_keystore_open(&ks, dir, 0), FWREL_EKEY);
    assert_string_equal(fwrel_error_last()->message,
                        "index.json is readable by group or others (mode 0644)");
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(path, sizeof(path), "%s/keys/stray.pem", dir);
    fixture_write_text(path, "x", 0640);
    assert_int_equal(fwrel_keystore_open(&ks, dir, 0), FWREL_EKEY);
    assert_string_equal(fwrel_error_last()->message,
                        "keys/stray.pem is readable by group or others (mode 0640)");
    unlink(path);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    assert_int_equal(fwrel_keystore_open(&ks, dir, 0), FWREL_EKEY);
    assert_string_equal(fwrel_error_last()->message, "keys/stray.pem is not a regular file");
    unlink(path);
    assert_int_equal(fwrel_keystore_open(&ks, dir, 0), 0);
    fwrel_keystore_close(ks);

    /* A non-empty directory without an index is not adopted. */
    char other[4000];
    snprintf(other, sizeof(other), "%s/notks", testutil_tmpdir());
    testutil_rmtree(other);
    assert_int_equal(mkdir(other, 0700), 0);
    snprintf(path, sizeof(path), "%s/file", other);
    fixture_write_text(path, "x", 0600);
    assert_int_equal(fwrel_keystore_open(&ks, other, FWREL_KS_CREATE), FWREL_EFORMAT);
    assert_string_equal(fwrel_error_last()->message, "not a keystore (no index.json)");
    testutil_rmtree(other);
}

static const struct {
    const char *name;
    int purpose, alg, slot;
} every[] = {
    {"sb0", FWREL_PURPOSE_SECURE_BOOT, FWREL_ALG_RSA3072, 0},
    {"sb1", FWREL_PURPOSE_SECURE_BOOT, FWREL_ALG_ECDSA384, 1},
    {"sb2", FWREL_PURPOSE_SECURE_BOOT, FWREL_ALG_ECDSA192, 2},
    {"mf-ed", FWREL_PURPOSE_MANIFEST_SIGN, FWREL_ALG_ED25519, -1},
    {"mf-rsa4096", FWREL_PURPOSE_MANIFEST_ENCRYPT, FWREL_ALG_RSA4096, -1},
    {"mf-x", FWREL_PURPOSE_MANIFEST_ENCRYPT, FWREL_ALG_X25519, -1},
    {"img-ecc", FWREL_PURPOSE_IMAGE_ENCRYPT, FWREL_ALG_ECDSA256, -1},
    {"flash", FWREL_PURPOSE_FLASH_ENCRYPT, FWREL_ALG_AES512, -1},
    {"ota-hmac", FWREL_PURPOSE_HMAC, FWREL_ALG_HMAC256, -1},
};

static void test_every_algorithm_round_trip(void **state)
{
    (void)state;
    fwrel_keystore *ks = NULL;
    const fwrel_keystore_entry *e = NULL;
    size_t n = sizeof(every) / sizeof(every[0]);
    char ids[16][65];

    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    for (size_t i = 0; i < n; i++) {
        fwrel_keystore_new spec = {every[i].name, every[i].purpose, every[i].alg, every[i].slot};
        assert_int_equal(fwrel_keystore_generate(ks, &spec, PASS, strlen(PASS), 0, &e), 0);
        assert_string_equal(e->name, every[i].name);
        assert_int_equal(e->epoch, 1);
        assert_int_equal(e->status, FWREL_KS_ACTIVE);
        assert_true(e->encrypted);
        memcpy(ids[i], e->id, 65);
    }
    /* Once is enough without rotate. */
    fwrel_keystore_new again = {"sb0", FWREL_PURPOSE_SECURE_BOOT, FWREL_ALG_RSA3072, 0};
    assert_int_equal(fwrel_keystore_generate(ks, &again, PASS, strlen(PASS), 0, NULL), FWREL_EKEY);
    fwrel_keystore_close(ks);

    /* Read back: the same entries; keys load with the passphrase and match their ids. */
    assert_int_equal(fwrel_keystore_open(&ks, dir, 0), 0);
    assert_int_equal(fwrel_keystore_count(ks), n);
    assert_int_equal(fwrel_keystore_check_pass(ks, PASS, strlen(PASS)), 0);
    /* A wrong passphrase is the keystore's, named by its directory, not by the key tried. */
    assert_int_equal(fwrel_keystore_check_pass(ks, "wrong", 5), FWREL_EKEY);
    assert_string_equal(fwrel_error_last()->message, "wrong keystore passphrase");
    assert_int_equal(fwrel_error_last()->about, FWREL_ABOUT_KEYSTORE);
    assert_string_equal(fwrel_error_last()->path, dir);
    assert_int_equal(fwrel_keystore_check_pass(ks, NULL, 0), FWREL_EKEY);
    assert_string_equal(fwrel_error_last()->message,
                        "its keys are encrypted: a passphrase is needed");
    assert_int_equal(fwrel_error_last()->about, FWREL_ABOUT_KEYSTORE);
    for (size_t i = 0; i < n; i++) {
        e = fwrel_keystore_find(ks, every[i].name);
        assert_non_null(e);
        assert_string_equal(e->id, ids[i]);
        assert_ptr_equal(fwrel_keystore_find_id(ks, ids[i]), e);
        assert_int_equal(e->slot, every[i].slot);
        if (e->alg >= FWREL_ALG_AES128) {
            uint8_t *s = NULL;
            size_t len = 0;
            assert_int_equal(fwrel_keystore_load_secret(&s, &len, ks, e, PASS, strlen(PASS)), 0);
            assert_int_equal(len, e->alg == FWREL_ALG_AES512 ? 64 : 32);
            fwrel_io_free_secret(s, len);
            assert_int_equal(fwrel_keystore_load_secret(&s, &len, ks, e, "nope", 4), FWREL_EKEY);
            /* One key that does not open: that key, in the keystore. */
            char want[200];
            snprintf(want, sizeof(want), "key %s (id %s): wrong passphrase", e->name, e->id);
            assert_string_equal(fwrel_error_last()->message, want);
            assert_int_equal(fwrel_error_last()->about, FWREL_ABOUT_KEYSTORE);
            assert_string_equal(fwrel_error_last()->path, dir);
            assert_null(s);
            continue;
        }
        fwrel_pkey *priv = NULL, *pub = NULL;
        char id[65];
        assert_int_equal(fwrel_keystore_load_private(&priv, ks, e, PASS, strlen(PASS)), 0);
        assert_int_equal(fwrel_keystore_load_public(&pub, ks, e), 0);
        assert_int_equal(fwrel_key_id(id, priv), 0);
        assert_string_equal(id, e->id);
        fwrel_key_free(priv);
        fwrel_key_free(pub);
        assert_int_equal(fwrel_keystore_load_private(&priv, ks, e, "nope", 4), FWREL_EKEY);
        assert_null(priv);
        if (e->purpose == FWREL_PURPOSE_IMAGE_ENCRYPT) {
            /* The ECC image key derives from its HMAC key, as the device derives it. */
            uint8_t *s = NULL;
            size_t len = 0;
            fwrel_pkey *derived = NULL;
            assert_int_equal(fwrel_keystore_load_secret(&s, &len, ks, e, PASS, strlen(PASS)), 0);
            assert_int_equal(len, 32);
            assert_int_equal(fwrel_keystore_derive_ecc_image_key(&derived, s), 0);
            assert_int_equal(fwrel_key_id(id, derived), 0);
            assert_string_equal(id, e->id);
            fwrel_key_free(derived);
            fwrel_io_free_secret(s, len);
        }
    }
    fwrel_keystore_close(ks);
}

static void test_rotate_and_revoke(void **state)
{
    (void)state;
    fwrel_keystore *ks = NULL;
    const fwrel_keystore_entry *e = NULL;
    char old_id[65];
    fwrel_keystore_new spec = {"sb0", FWREL_PURPOSE_SECURE_BOOT, FWREL_ALG_ECDSA256, 0};

    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    assert_int_equal(fwrel_keystore_generate(ks, &spec, NULL, 0, 0, &e), 0);
    assert_false(e->encrypted);
    assert_string_equal(e->secret, "");
    memcpy(old_id, e->id, 65);
    assert_int_equal(fwrel_keystore_generate(ks, &spec, NULL, 0, 1, &e), 0);
    assert_int_equal(e->epoch, 2);
    assert_string_equal(e->priv, "keys/sb0.2.pem");
    assert_string_not_equal(e->id, old_id);
    assert_int_equal(fwrel_keystore_find_id(ks, old_id)->status, FWREL_KS_RETIRED);
    assert_int_equal(fwrel_keystore_revoke(ks, "sb0", FWREL_KS_REASON_SUPERSEDED, NULL, &e), 0);
    assert_int_equal(e->status, FWREL_KS_REVOKED);
    assert_int_equal(e->epoch, 2);
    assert_int_equal(fwrel_keystore_revoke(ks, "sb0", FWREL_KS_REASON_SUPERSEDED, NULL, NULL),
                     FWREL_EKEY);
    assert_string_equal(fwrel_error_last()->message, "no active key sb0");
    /* A revoked name needs a rotation for a new key. */
    assert_int_equal(fwrel_keystore_generate(ks, &spec, NULL, 0, 0, NULL), FWREL_EKEY);
    assert_int_equal(fwrel_keystore_generate(ks, &spec, NULL, 0, 1, &e), 0);
    assert_int_equal(e->epoch, 3);
    fwrel_keystore_close(ks);

    /* Nothing deleted: three epochs, one of each status. */
    assert_int_equal(fwrel_keystore_open(&ks, dir, 0), 0);
    assert_int_equal(fwrel_keystore_count(ks), 3);
    assert_int_equal(fwrel_keystore_entry_at(ks, 0)->status, FWREL_KS_RETIRED);
    assert_int_equal(fwrel_keystore_entry_at(ks, 1)->status, FWREL_KS_REVOKED);
    assert_int_equal(fwrel_keystore_entry_at(ks, 2)->status, FWREL_KS_ACTIVE);
    assert_int_equal(strlen(fwrel_keystore_entry_at(ks, 1)->changed), 20);
    /* Read-only handles cannot change it. */
    assert_int_equal(fwrel_keystore_revoke(ks, "sb0", FWREL_KS_REASON_SUPERSEDED, NULL, NULL),
                     FWREL_EUSAGE);
    fwrel_keystore_close(ks);
}

/*
 * A failure half-way (the public key file cannot be written: a directory holds
 * its name) leaves the old index and no new file.
 */
static void test_failed_add_leaves_old_state(void **state)
{
    (void)state;
    fwrel_keystore *ks = NULL;
    fwrel_keystore_new a = {"mf-a", FWREL_PURPOSE_MANIFEST_SIGN, FWREL_ALG_ECDSA256, -1};
    fwrel_keystore_new b = {"mf-b", FWREL_PURPOSE_MANIFEST_SIGN, FWREL_ALG_ED25519, -1};
    size_t len1 = 0, len2 = 0;
    char keys[4200], blocker[4300];

    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    assert_int_equal(fwrel_keystore_generate(ks, &a, PASS, strlen(PASS), 0, NULL), 0);
    uint8_t *before = slurp("index.json", &len1);
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    snprintf(blocker, sizeof(blocker), "%s/mf-b.1.pub.pem", keys);
    assert_int_equal(mkdir(blocker, 0700), 0);
    assert_int_equal(fwrel_keystore_generate(ks, &b, PASS, strlen(PASS), 0, NULL), FWREL_EIO);
    assert_int_equal(rmdir(blocker), 0);
    uint8_t *after = slurp("index.json", &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(before, after, len1);
    assert_int_equal(testutil_count_entries(keys), 2); /* mf-a's two files, no mf-b.1.pem */
    assert_int_equal(fwrel_keystore_count(ks), 1);
    free(before);
    free(after);
    fwrel_keystore_close(ks);
}

/* The index is replaced last: when it cannot be, the new key files are removed. */
static void test_failed_index_write_removes_files(void **state)
{
    (void)state;
    fwrel_keystore *ks = NULL;
    fwrel_keystore_new a = {"hm", FWREL_PURPOSE_HMAC, FWREL_ALG_HMAC256, -1};
    fwrel_keystore_new b = {"sb", FWREL_PURPOSE_SECURE_BOOT, FWREL_ALG_RSA3072, 0};
    char idx[4200], keys[4200];

    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    snprintf(idx, sizeof(idx), "%s/index.json", dir);
    assert_int_equal(unlink(idx), 0);
    assert_int_equal(mkdir(idx, 0700), 0); /* index.json cannot be replaced now */
    assert_int_equal(fwrel_keystore_generate(ks, &a, PASS, strlen(PASS), 0, NULL), FWREL_EIO);
    assert_int_equal(fwrel_keystore_generate(ks, &b, NULL, 0, 0, NULL), FWREL_EIO);
    assert_int_equal(rmdir(idx), 0);
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    assert_int_equal(testutil_count_entries(keys), 0);
    assert_int_equal(fwrel_keystore_count(ks), 0);
    fwrel_keystore_close(ks);
}

static void test_malformed_index(void **state)
{
    (void)state;
    static const struct {
        const char *text, *message;
    } bad[] = {
        {"{", NULL},
        {"{\"format\":\"fwrel-keystore-2\",\"keys\":[]}",
         "index.json: not a fwrel-keystore-1 index"},
        {"{\"format\":\"fwrel-keystore-1\",\"keys\":[],\"keys\":[]}", NULL},
        {"{\"format\":\"fwrel-keystore-1\",\"keys\":[{\"name\":\"a\",\"extra\":1}]}",
         "index.json: entry 1: unknown field \"extra\""},
        {"{\"format\":\"fwrel-keystore-1\",\"keys\":[{\"name\":\"../a\"}]}",
         "index.json: entry 1: bad key name \"../a\""},
        {"{\"format\":\"fwrel-keystore-1\",\"keys\":[{\"name\":\"a\",\"id\":\""
         "0000000000000000000000000000000000000000000000000000000000000000\",\"purpose\":"
         "\"hmac\",\"alg\":\"hmac256\",\"created\":\"2026-01-01T00:00:00Z\",\"status\":"
         "\"active\",\"epoch\":1,\"secret\":\"keys/../../etc/passwd\"}]}",
         "index.json: entry 1: a: bad secret path"},
        {"{\"format\":\"fwrel-keystore-1\",\"keys\":[{\"name\":\"a\",\"id\":\""
         "0000000000000000000000000000000000000000000000000000000000000000\",\"purpose\":"
         "\"hmac\",\"alg\":\"rsa3072\",\"created\":\"2026-01-01T00:00:00Z\",\"status\":"
         "\"active\",\"epoch\":1}]}",
         "index.json: entry 1: a: algorithm \"rsa3072\" not allowed for hmac"},
        {"{\"format\":\"fwrel-keystore-1\",\"keys\":[{\"name\":\"a\",\"id\":\""
         "0000000000000000000000000000000000000000000000000000000000000000\",\"purpose\":"
         "\"hmac\",\"alg\":\"hmac256\",\"created\":\"2026-01-01T00:00:00Z\",\"status\":"
         "\"active\",\"epoch\":1.5,\"secret\":\"keys/a.1.bin\"}]}",
         "index.json: entry 1: a: bad epoch"},
    };
    char path[4200];
    fwrel_keystore *ks = NULL;
    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    fwrel_keystore_close(ks);
    snprintf(path, sizeof(path), "%s/index.json", dir);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fixture_write_text(path, bad[i].text, 0600);
        assert_int_equal(fwrel_keystore_open(&ks, dir, 0), FWREL_EFORMAT);
        assert_null(ks);
        if (bad[i].message != NULL)
            assert_string_equal(fwrel_error_last()->message, bad[i].message);
    }
}

/* Why and since when a key is revoked: recorded, read back; an older index's entry without a
 * reason still reads (unstated); a reason or date out of place is refused; --since never in the
 * future nor before the key was made. */
static void test_revocation_reason_and_date(void **state)
{
    (void)state;
#define ENTRY(status, extra)                                                                       \
    "{\"format\":\"fwrel-keystore-1\",\"keys\":[{\"name\":\"a\",\"id\":\""                         \
    "0000000000000000000000000000000000000000000000000000000000000000\",\"purpose\":"              \
    "\"hmac\",\"alg\":\"hmac256\",\"created\":\"2026-01-01T00:00:00Z\",\"status\":\"" status       \
    "\",\"epoch\":1,\"secret\":\"keys/a.1.bin\"" extra "}]}"
    static const char *const good[] = {
        ENTRY("revoked", ",\"changed\":\"2026-02-01T00:00:00Z\""),
        ENTRY("revoked", ",\"changed\":\"2026-02-01T00:00:00Z\",\"reason\":\"compromised\","
                         "\"since\":\"2026-01-01T00:00:00Z\""),
    };
    static const char *const bad[] = {
        ENTRY("revoked", ",\"changed\":\"2026-02-01T00:00:00Z\",\"reason\":\"lost\","
                         "\"since\":\"2026-01-01T00:00:00Z\""),
        ENTRY("revoked", ",\"changed\":\"2026-02-01T00:00:00Z\",\"reason\":\"superseded\""),
        ENTRY("revoked", ",\"changed\":\"2026-02-01T00:00:00Z\",\"reason\":\"superseded\","
                         "\"since\":\"2026-03-01T00:00:00Z\""),
        ENTRY("revoked", ",\"changed\":\"2026-02-01T00:00:00Z\",\"reason\":\"superseded\","
                         "\"since\":\"2025-12-31T00:00:00Z\""),
        ENTRY("retired", ",\"changed\":\"2026-02-01T00:00:00Z\",\"reason\":\"superseded\","
                         "\"since\":\"2026-01-01T00:00:00Z\""),
        ENTRY("revoked",
              ",\"changed\":\"2026-02-01T00:00:00Z\",\"since\":\"2026-01-01T00:00:00Z\""),
    };
#undef ENTRY
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(
            fwrel_keystore_index_check((const uint8_t *)good[i], strlen(good[i]), NULL), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(fwrel_keystore_index_check((const uint8_t *)bad[i], strlen(bad[i]), NULL),
                         FWREL_EFORMAT);

    fwrel_keystore *ks = NULL;
    const fwrel_keystore_entry *e = NULL;
    fwrel_keystore_new mf = {"mf", FWREL_PURPOSE_MANIFEST_SIGN, FWREL_ALG_ED25519, -1};
    char created[21], msg[200];
    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    assert_int_equal(fwrel_keystore_generate(ks, &mf, NULL, 0, 0, &e), 0);
    memcpy(created, e->created, sizeof(created));
    assert_int_equal(
        fwrel_keystore_revoke(ks, "mf", FWREL_KS_REASON_COMPROMISED, "2999-01-01", NULL),
        FWREL_EUSAGE);
    assert_string_equal(fwrel_error_last()->message,
                        "the revocation date 2999-01-01T00:00:00Z is in the future");
    assert_int_equal(
        fwrel_keystore_revoke(ks, "mf", FWREL_KS_REASON_COMPROMISED, "2020-01-01", NULL),
        FWREL_EUSAGE);
    snprintf(msg, sizeof(msg),
             "the revocation date 2020-01-01T00:00:00Z is before key mf was made (%s)", created);
    assert_string_equal(fwrel_error_last()->message, msg);
    assert_int_equal(
        fwrel_keystore_revoke(ks, "mf", FWREL_KS_REASON_COMPROMISED, "2026-13-01", NULL),
        FWREL_EUSAGE);
    assert_int_equal(fwrel_keystore_find(ks, "mf")->status, FWREL_KS_ACTIVE);
    assert_int_equal(fwrel_keystore_revoke(ks, "mf", FWREL_KS_REASON_COMPROMISED, created, &e), 0);
    fwrel_keystore_close(ks);
    assert_int_equal(fwrel_keystore_open(&ks, dir, 0), 0);
    e = fwrel_keystore_find(ks, "mf");
    assert_int_equal(e->status, FWREL_KS_REVOKED);
    assert_int_equal(e->reason, FWREL_KS_REASON_COMPROMISED);
    assert_string_equal(e->since, created);
    fwrel_keystore_close(ks);
}

/* A second writer waits for the lock; it sees the first one's key when it gets it. */
static void test_lock(void **state)
{
    (void)state;
    fwrel_keystore *ks = NULL;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork(); /* before the parent's lock: the child must not inherit its descriptor */
    assert_true(pid >= 0);
    if (pid == 0) {
        fwrel_keystore *k2 = NULL;
        char c;
        close(pipefd[1]);
        if (read(pipefd[0], &c, 1) != 1) /* the parent holds the lock now */
            _exit(2);
        int rc = fwrel_keystore_open(&k2, dir, FWREL_KS_WRITE);
        int ok = rc == 0 && fwrel_keystore_count(k2) == 1;
        fwrel_keystore_close(k2);
        _exit(ok ? 0 : 1);
    }
    close(pipefd[0]);
    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    assert_int_equal(write(pipefd[1], "x", 1), 1);
    usleep(200 * 1000); /* the child is blocked on the lock meanwhile */
    fwrel_keystore_new a = {"hm", FWREL_PURPOSE_HMAC, FWREL_ALG_HMAC256, -1};
    assert_int_equal(fwrel_keystore_generate(ks, &a, NULL, 0, 0, NULL), 0);
    fwrel_keystore_close(ks);
    close(pipefd[1]);
    fixture_wait_ok(pid);
}

static void test_resolve_policy(void **state)
{
    (void)state;
    static const char policy[] =
        "fwrel-policy: 1\nproduct: p\nchip: esp32c6\ndevice_types: [d]\npartition_size: 0x100000\n"
        "secure_boot: {scheme: sbv2-ecdsa256, slots: [{slot: 0, key: sb0}]}\n"
        "anti_rollback: {min_secure_version: 0, efuse_bits: 16}\n"
        "manifest: {signers: [mf], threshold: 1, recipients: [dev], validity: 30d}\n"
        "channels: {dev: {allow_no_approvals: true}}\naudit: {log: a.jsonl}\nexports: []\n"
        "release: {repository: r, tag: \"{product}/{channel}/v{version}\"}\n"
        "keys:\n  sb0: {purpose: secure-boot, alg: ecdsa256}\n"
        "  mf: {purpose: manifest-sign, alg: ed25519}\n"
        "  dev: {purpose: manifest-encrypt, alg: x25519}\n";
    fwrel_policy *p = NULL;
    fwrel_keystore *ks = NULL;
    const fwrel_keystore_entry *entries[FWREL_POLICY_MAX_KEYS], *e = NULL;
    if (fwrel_policy_parse(&p, (const uint8_t *)policy, sizeof(policy) - 1) != 0)
        fail_msg("%s", fwrel_error_last()->message);
    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    fwrel_keystore_new sb0 = {"sb0", FWREL_PURPOSE_SECURE_BOOT, FWREL_ALG_ECDSA256, 0};
    fwrel_keystore_new mf = {"mf", FWREL_PURPOSE_MANIFEST_SIGN, FWREL_ALG_ED25519, -1};
    fwrel_keystore_new dev = {"dev", FWREL_PURPOSE_MANIFEST_ENCRYPT, FWREL_ALG_RSA4096, -1};
    assert_int_equal(fwrel_keystore_generate(ks, &sb0, NULL, 0, 0, &e), 0);
    assert_int_equal(fwrel_keystore_generate(ks, &mf, NULL, 0, 0, NULL), 0);
    assert_int_equal(fwrel_keystore_resolve(entries, ks, p), FWREL_EKEY);
    assert_string_equal(fwrel_error_last()->message, "key dev is not in the keystore");
    assert_int_equal(fwrel_keystore_generate(ks, &dev, NULL, 0, 0, &e), 0);
    char msg[512];
    snprintf(msg, sizeof(msg),
             "key dev (id %s) is manifest-encrypt rsa4096, the policy says manifest-encrypt "
             "x25519",
             e->id);
    assert_int_equal(fwrel_keystore_resolve(entries, ks, p), FWREL_EKEY);
    assert_string_equal(fwrel_error_last()->message, msg);
    dev.alg = FWREL_ALG_X25519;
    assert_int_equal(fwrel_keystore_generate(ks, &dev, NULL, 0, 1, NULL), 0);
    assert_int_equal(fwrel_keystore_resolve(entries, ks, p), 0);
    assert_string_equal(entries[0]->name, "sb0");
    assert_int_equal(fwrel_keystore_revoke(ks, "mf", FWREL_KS_REASON_SUPERSEDED, NULL, &e), 0);
    /* Matching only: whether a revoked key may still sign is the rulebook's (test_rules.c). */
    assert_int_equal(fwrel_keystore_resolve(entries, ks, p), 0);
    assert_ptr_equal(entries[1], e);
    assert_int_equal(e->status, FWREL_KS_REVOKED);
    assert_int_equal(e->reason, FWREL_KS_REASON_SUPERSEDED);
    assert_string_equal(e->since, e->changed);
    fwrel_keystore_close(ks);
    fwrel_policy_free(p);
}

/*
 * fwrel_keystore_match_key(), the one comparison of a policy key with the keystore (read by
 * fwrel_keystore_resolve() and by keygen's plan): each difference is told by its own bit, and none
 * when the active entry is the key the policy means.
 */
static void test_match_policy_key(void **state)
{
    (void)state;
    fwrel_keystore *ks = NULL;
    const fwrel_keystore_entry *e = NULL, *h = NULL;
    fwrel_pkey *pub = NULL;
    fwrel_keystore_match m;
    fwrel_policy_key k = {"sb0", FWREL_PURPOSE_SECURE_BOOT, FWREL_ALG_ECDSA256, "", NULL};
    char uri[] = "pkcs11:token=t;object=o", other[] = "pkcs11:token=t;object=p";
    char id[65], zeros[65];

    memset(zeros, '0', 64);
    zeros[64] = '\0';
    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    assert_int_equal(fwrel_keystore_match_key(&m, ks, &k, NULL), FWREL_KS_DIFF_ABSENT);
    assert_null(m.entry);
    assert_null(m.pinned);

    fwrel_keystore_new sb0 = {"sb0", FWREL_PURPOSE_SECURE_BOOT, FWREL_ALG_ECDSA256, 0};
    assert_int_equal(fwrel_keystore_generate(ks, &sb0, NULL, 0, 0, &e), 0);
    memcpy(id, e->id, sizeof(id));
    assert_int_equal(fwrel_keystore_match_key(&m, ks, &k, NULL), 0);
    assert_ptr_equal(m.entry, fwrel_keystore_find(ks, "sb0"));
    assert_int_equal(fwrel_keystore_match_key(&m, ks, &k, id), 0);
    assert_int_equal(fwrel_keystore_match_key(&m, ks, &k, zeros), FWREL_KS_DIFF_ID);

    k.alg = FWREL_ALG_ECDSA384;
    assert_int_equal(fwrel_keystore_match_key(&m, ks, &k, NULL), FWREL_KS_DIFF_ALG);
    k.alg = FWREL_ALG_ECDSA256;
    k.purpose = FWREL_PURPOSE_MANIFEST_SIGN;
    assert_int_equal(fwrel_keystore_match_key(&m, ks, &k, NULL), FWREL_KS_DIFF_PURPOSE);
    k.purpose = FWREL_PURPOSE_SECURE_BOOT;

    /* A pinned id: the entry holding it is found, whatever its name. */
    memcpy(k.id, id, sizeof(k.id));
    assert_int_equal(fwrel_keystore_match_key(&m, ks, &k, NULL), 0);
    assert_ptr_equal(m.pinned, m.entry);
    memcpy(k.id, zeros, sizeof(k.id));
    assert_int_equal(fwrel_keystore_match_key(&m, ks, &k, NULL), FWREL_KS_DIFF_PIN);
    assert_null(m.pinned);
    k.id[0] = '\0';

    /* The holder: a software entry is not the HSM key a policy names. */
    k.hsm = uri;
    assert_int_equal(fwrel_keystore_match_key(&m, ks, &k, NULL), FWREL_KS_DIFF_HOLDER);
    k.hsm = NULL;

    /* An HSM entry: the same URI matches, another does not, nor a software policy key. */
    fwrel_keystore_new hs = {"hs", FWREL_PURPOSE_MANIFEST_SIGN, FWREL_ALG_ECDSA256, -1};
    assert_int_equal(fwrel_key_generate(&pub, FWREL_KEY_ECDSA256), 0);
    assert_int_equal(fwrel_keystore_add_hsm(ks, &hs, uri, pub, 0, &h), 0);
    fwrel_policy_key hk = {"hs", FWREL_PURPOSE_MANIFEST_SIGN, FWREL_ALG_ECDSA256, "", uri};
    memcpy(id, h->id, sizeof(id));
    assert_int_equal(fwrel_keystore_match_key(&m, ks, &hk, id), 0);
    hk.hsm = other;
    assert_int_equal(fwrel_keystore_match_key(&m, ks, &hk, id), FWREL_KS_DIFF_HOLDER);
    hk.hsm = NULL;
    assert_int_equal(fwrel_keystore_match_key(&m, ks, &hk, NULL), FWREL_KS_DIFF_HOLDER);

    /* Revoked: inactive, and a pin of its id finds it revoked. */
    assert_int_equal(fwrel_keystore_revoke(ks, "sb0", FWREL_KS_REASON_SUPERSEDED, NULL, &e), 0);
    memcpy(k.id, e->id, sizeof(k.id));
    assert_int_equal(fwrel_keystore_match_key(&m, ks, &k, NULL), FWREL_KS_DIFF_INACTIVE);
    assert_non_null(m.pinned);
    assert_int_equal(m.pinned->status, FWREL_KS_REVOKED);
    fwrel_key_free(pub);
    fwrel_keystore_close(ks);
}

/*
 * A device HMAC key and the public key esp_enc_img_gen --generate_ecc_key wrote
 * for it (esp_encrypted_img 2.7.1): the device's derivation must give that key.
 */
static void test_ecc_image_key_matches_tool(void **state)
{
    (void)state;
    static const char hmac_hex[] =
        "04f5f26f5fdae2532ce8d7f6dd32bf720b28bd7f5eea64620bc12a43216bd96a";
    static const char pub_pem[] =
        "-----BEGIN PUBLIC KEY-----\n"
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7HkWd4SeZVs0X784Z2b+Clxi2v6O\n"
        "UX3P1L7TK7iEddWtEUCP7ssNYQGANrY1jkb8OGTlq2EXqZnkfMmDTJEfbQ==\n"
        "-----END PUBLIC KEY-----\n";
    uint8_t hmac[32];
    fwrel_pkey *derived = NULL, *pub = NULL;
    char a[65], b[65];
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(sscanf(hmac_hex + 2 * i, "%2hhx", &hmac[i]), 1);
    assert_int_equal(fwrel_keystore_derive_ecc_image_key(&derived, hmac), 0);
    assert_int_equal(fwrel_key_parse_public(&pub, (const uint8_t *)pub_pem, sizeof(pub_pem) - 1, 0),
                     0);
    assert_int_equal(fwrel_key_id(a, derived), 0);
    assert_int_equal(fwrel_key_id(b, pub), 0);
    assert_string_equal(a, b);
    fwrel_key_free(derived);
    fwrel_key_free(pub);
}

/*
 * A change of several keys is all or nothing: aborted before or after its commit point, the
 * index and keys/ are as before and no staging directory remains; committed, every key is there.
 */
static void test_change_all_or_nothing(void **state)
{
    (void)state;
    fwrel_keystore *ks = NULL;
    fwrel_keystore_new a = {"mf-a", FWREL_PURPOSE_MANIFEST_SIGN, FWREL_ALG_ECDSA256, -1};
    fwrel_keystore_new b = {"hm", FWREL_PURPOSE_HMAC, FWREL_ALG_HMAC256, -1};
    fwrel_keystore_new c = {"mf-c", FWREL_PURPOSE_MANIFEST_SIGN, FWREL_ALG_ED25519, -1};
    size_t len1 = 0, len2 = 0;
    char keys[4200];

    snprintf(keys, sizeof(keys), "%s/keys", dir);
    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    assert_int_equal(fwrel_keystore_generate(ks, &a, NULL, 0, 0, NULL), 0);
    uint8_t *before = slurp("index.json", &len1);
    for (int commit = 0; commit < 2; commit++) {
        assert_int_equal(fwrel_keystore_begin(ks), 0);
        assert_int_equal(fwrel_keystore_begin(ks), FWREL_EUSAGE);
        assert_int_equal(fwrel_keystore_generate(ks, &b, NULL, 0, 0, NULL), 0);
        assert_int_equal(fwrel_keystore_generate(ks, &c, NULL, 0, 0, NULL), 0);
        assert_int_equal(fwrel_keystore_revoke(ks, "mf-a", FWREL_KS_REASON_SUPERSEDED, NULL, NULL),
                         0);
        assert_int_equal(fwrel_keystore_count(ks), 3);
        assert_int_equal(testutil_count_entries(keys), 2); /* staged, not in keys/ yet */
        assert_int_equal(fwrel_keystore_prepare(ks), 0);
        assert_int_equal(testutil_count_entries(keys), 5);
        if (commit)
            assert_int_equal(fwrel_keystore_commit(ks), 0);
        assert_int_equal(fwrel_keystore_abort(ks), 0);
        uint8_t *after = slurp("index.json", &len2);
        assert_int_equal(len1, len2);
        assert_memory_equal(before, after, len1);
        free(after);
        assert_int_equal(testutil_count_entries(keys), 2);
        assert_int_equal(testutil_count_entries(dir), 3); /* .lock, index.json, keys */
        assert_int_equal(fwrel_keystore_count(ks), 1);
        assert_int_equal(fwrel_keystore_entry_at(ks, 0)->status, FWREL_KS_ACTIVE);
    }
    assert_int_equal(fwrel_keystore_begin(ks), 0);
    assert_int_equal(fwrel_keystore_generate(ks, &b, NULL, 0, 0, NULL), 0);
    assert_int_equal(fwrel_keystore_generate(ks, &c, NULL, 0, 0, NULL), 0);
    assert_int_equal(fwrel_keystore_commit(ks), 0);
    fwrel_keystore_finish(ks);
    assert_int_equal(testutil_count_entries(dir), 3);
    fwrel_keystore_close(ks);
    assert_int_equal(fwrel_keystore_open(&ks, dir, 0), 0);
    assert_int_equal(fwrel_keystore_count(ks), 3);
    assert_int_equal(testutil_count_entries(keys), 5);
    fwrel_keystore_close(ks);
    free(before);
}

/* A keystore the failed change's open created goes again: nothing remains. */
static void test_failed_first_change(void **state)
{
    (void)state;
    fwrel_keystore *ks = NULL;
    fwrel_keystore_new a = {"hm", FWREL_PURPOSE_HMAC, FWREL_ALG_HMAC256, -1};
    struct stat st;
    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    assert_int_equal(fwrel_keystore_begin(ks), 0);
    assert_int_equal(fwrel_keystore_generate(ks, &a, PASS, strlen(PASS), 0, NULL), 0);
    assert_int_equal(fwrel_keystore_abort(ks), 0);
    fwrel_keystore_close(ks);
    assert_int_equal(lstat(dir, &st), -1);
}

/*
 * A process killed after the key files were linked into keys/ but before the commit point: the
 * next open for writing takes them out again (and says so); a read-only open leaves it.
 */
static void test_recover_killed_change(void **state)
{
    (void)state;
    fwrel_keystore *ks = NULL;
    char keys[4200];
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    fwrel_keystore_close(ks);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fwrel_keystore *k = NULL;
        fwrel_keystore_new a = {"sb", FWREL_PURPOSE_SECURE_BOOT, FWREL_ALG_ECDSA256, 0};
        if (fwrel_keystore_open(&k, dir, FWREL_KS_WRITE) != 0 || fwrel_keystore_begin(k) != 0 ||
            fwrel_keystore_generate(k, &a, NULL, 0, 0, NULL) != 0 || fwrel_keystore_prepare(k) != 0)
            _exit(1);
        _exit(0); /* as killed: nothing cleaned up */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(testutil_count_entries(keys), 2);
    assert_int_equal(testutil_count_entries(dir), 4); /* and .txn-XXXXXX */
    assert_int_equal(fwrel_keystore_open(&ks, dir, 0), 0);
    assert_int_equal(fwrel_keystore_recovered(ks), 0);
    assert_int_equal(fwrel_keystore_count(ks), 0);
    fwrel_keystore_close(ks);
    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_WRITE), 0);
    assert_int_equal(fwrel_keystore_recovered(ks), 1);
    assert_int_equal(testutil_count_entries(keys), 0);
    assert_int_equal(testutil_count_entries(dir), 3);
    fwrel_keystore_close(ks);
}

/*
 * A raw secret's id is random: neither the SHA-256 of the secret nor fwrel's former
 * domain-separated hash of it. A sealed secret is bound to its entry's id: moved to another
 * entry, it does not open.
 */
/* SHA-256 of n bytes as lower-case hex. */
static void sha256_hex(char out[65], const void *p, size_t n)
{
    uint8_t d[32];
    unsigned int dl = 0;
    assert_int_equal(EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL), 1);
    for (size_t i = 0; i < sizeof(d); i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_secret_id_random_and_bound(void **state)
{
    (void)state;
    fwrel_keystore *ks = NULL;
    const fwrel_keystore_entry *e = NULL;
    fwrel_keystore_new a = {"hm-a", FWREL_PURPOSE_HMAC, FWREL_ALG_HMAC256, -1};
    fwrel_keystore_new b = {"hm-b", FWREL_PURPOSE_HMAC, FWREL_ALG_HMAC256, -1};
    uint8_t *s = NULL, buf[25 + 32];
    size_t len = 0;
    char hex[65], pa[4200], pb[4200], pt[4300];

    assert_int_equal(fwrel_keystore_open(&ks, dir, FWREL_KS_CREATE | FWREL_KS_WRITE), 0);
    assert_int_equal(fwrel_keystore_generate(ks, &a, PASS, strlen(PASS), 0, NULL), 0);
    assert_int_equal(fwrel_keystore_generate(ks, &b, PASS, strlen(PASS), 0, &e), 0);
    e = fwrel_keystore_find(ks, "hm-a");
    assert_int_equal(fwrel_keystore_load_secret(&s, &len, ks, e, PASS, strlen(PASS)), 0);
    assert_int_equal(len, 32);
    sha256_hex(hex, s, len);
    assert_string_not_equal(hex, e->id);
    memcpy(buf, "fwrel-keystore-secret-id", 25); /* with its NUL */
    memcpy(buf + 25, s, 32);
    sha256_hex(hex, buf, sizeof(buf));
    assert_string_not_equal(hex, e->id);
    fwrel_io_free_secret(s, len);
    /* Swap the two sealed files: each now fails its tag. */
    assert_int_equal(fwrel_keystore_path(pa, sizeof(pa), ks, "keys/hm-a.1.sec"), 0);
    assert_int_equal(fwrel_keystore_path(pb, sizeof(pb), ks, "keys/hm-b.1.sec"), 0);
    snprintf(pt, sizeof(pt), "%s.t", pa);
    assert_int_equal(rename(pa, pt), 0);
    assert_int_equal(rename(pb, pa), 0);
    assert_int_equal(rename(pt, pb), 0);
    assert_int_equal(fwrel_keystore_load_secret(&s, &len, ks, e, PASS, strlen(PASS)), FWREL_EKEY);
    assert_null(s);
    fwrel_keystore_close(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_algorithm_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_and_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_add_leaves_old_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_index_write_removes_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_reason_and_date, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_policy_key, setup, teardown),
        cmocka_unit_test(test_ecc_image_key_matches_tool),
        cmocka_unit_test_setup_teardown(test_change_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_first_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_killed_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_id_random_and_bound, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
