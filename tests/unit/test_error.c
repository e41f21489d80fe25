/* test_error.c - what an error says failed (kind, path, position), the one exit-code mapping, the
 * saved-error helpers, and a report that cannot lose a step silently. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fwrel/bundle.h"
#include "fwrel/device.h"
#include "fwrel/error.h"
#include "fwrel/espimg.h"
#include "fwrel/io.h"
#include "fwrel/key.h"
#include "fwrel/keystore.h"
#include "fwrel/policy.h"
#include "fwrel/repo.h"
#include "fwrel/report.h"
#include "testimg.h"
#include "testutil.h"

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* What the command writes before the message. */
static const char *where(const char *fallback, const char **sep)
{
    return fwrel_error_where(fwrel_error_last(), fallback, sep);
}

static void test_about_and_where(void **state)
{
    (void)state;
    const char *sep;
    const fwrel_error *e = fwrel_error_last();
    assert_int_equal(fwrel_error_set(FWREL_EIO, "cannot open"), FWREL_EIO);
    assert_int_equal(e->about, FWREL_ABOUT_NONE);
    assert_string_equal(e->path, "");
    /* Nothing named: the caller's file, or nothing. */
    assert_string_equal(where("app.bin", &sep), "app.bin");
    assert_string_equal(sep, ": ");
    assert_null(where(NULL, &sep));
    /* Named: the error's path wins over the caller's guess. */
    assert_int_equal(fwrel_error_about(FWREL_ABOUT_KEYSTORE, "/k/ks"), FWREL_EIO);
    assert_int_equal(e->about, FWREL_ABOUT_KEYSTORE);
    assert_string_equal(fwrel_error_about_name(e->about), "keystore");
    assert_string_equal(where("/r/releases", &sep), "/k/ks");
    assert_string_equal(sep, ": ");
    assert_string_equal(e->message, "cannot open");
    /* The next error forgets it. */
    fwrel_error_set(FWREL_EVERIFY, "no");
    assert_int_equal(e->about, FWREL_ABOUT_NONE);
    assert_string_equal(where("x", &sep), "x");
    /* A path too long to keep is not kept (never a truncated, wrong one). */
    char lng[FWREL_ERROR_PATH_MAX + 10];
    memset(lng, 'a', sizeof(lng) - 1);
    lng[sizeof(lng) - 1] = '\0';
    fwrel_error_about(FWREL_ABOUT_INPUT, lng);
    assert_int_equal(e->about, FWREL_ABOUT_INPUT);
    assert_string_equal(e->path, "");
    assert_string_equal(where("short", &sep), "short");
    fwrel_error_clear();
    assert_int_equal(e->code, FWREL_OK);
    assert_int_equal(e->about, FWREL_ABOUT_NONE);
}

static void test_position(void **state)
{
    (void)state;
    const char *sep;
    const fwrel_error *e = fwrel_error_last();
    fwrel_error_set_at(FWREL_EFORMAT, 3, 14, "unknown key '%s'", "x");
    assert_string_equal(e->message, "3:14: unknown key 'x'");
    assert_int_equal(e->line, 3);
    assert_int_equal(e->col, 14);
    /* The loader names the file the position is in: "p.yaml:3:14: unknown key 'x'". */
    fwrel_error_about(FWREL_ABOUT_POLICY, "p.yaml");
    assert_string_equal(where(NULL, &sep), "p.yaml");
    assert_string_equal(sep, ":");
    /* Naming another file (the bundle that held it) drops the position. */
    fwrel_error_about(FWREL_ABOUT_BUNDLE, "b.fwb");
    assert_int_equal(e->line, 0);
    assert_string_equal(where(NULL, &sep), "b.fwb");
    assert_string_equal(sep, ": ");
    /* A key named in a profile failed: the position in the profile, the key's path dropped. */
    fwrel_error_set(FWREL_EFORMAT, "no PEM public key");
    fwrel_error_about(FWREL_ABOUT_KEY, "/p/k.pem");
    fwrel_error_prefix_at(7, 3, "key %s", "k.pem");
    assert_string_equal(e->message, "7:3: key k.pem: no PEM public key");
    assert_int_equal(e->about, FWREL_ABOUT_NONE);
    assert_string_equal(e->path, "");
    fwrel_error_about(FWREL_ABOUT_PROFILE, "dev.yaml");
    assert_string_equal(where(NULL, &sep), "dev.yaml");
    assert_string_equal(sep, ":");
    assert_int_equal(e->line, 7);
}

static void test_recode_restore(void **state)
{
    (void)state;
    const fwrel_error *e = fwrel_error_last();
    fwrel_error_set(FWREL_EVERIFY, "checksum mismatch");
    fwrel_error_about(FWREL_ABOUT_INPUT, "app.bin");
    assert_int_equal(fwrel_error_recode(FWREL_EFORMAT), FWREL_EFORMAT);
    assert_int_equal(e->code, FWREL_EFORMAT);
    assert_string_equal(e->message, "checksum mismatch");
    assert_string_equal(e->path, "app.bin");
    fwrel_error saved = *e;
    fwrel_error_set(FWREL_EIO, "cleanup failed");
    assert_int_equal(fwrel_error_restore(&saved), FWREL_EFORMAT);
    assert_string_equal(e->message, "checksum mismatch");
    assert_int_equal(e->about, FWREL_ABOUT_INPUT);
    assert_string_equal(e->path, "app.bin");
    assert_memory_equal(e, &saved, sizeof(saved));
}

static void test_exit_code(void **state)
{
    (void)state;
    fwrel_error e;
    memset(&e, 0, sizeof(e));
    static const int codes[] = {FWREL_EVERIFY, FWREL_EUSAGE, FWREL_EFORMAT, FWREL_EKEY, FWREL_EIO};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        e.code = codes[i];
        assert_int_equal(fwrel_error_exit_code(&e), codes[i]);
    }
    /* A caller's bug, an unknown code and a failure that recorded none: 5, never 0. */
    e.code = FWREL_EINTERNAL;
    assert_int_equal(fwrel_error_exit_code(&e), 5);
    assert_string_equal(fwrel_error_name(FWREL_EINTERNAL), "internal");
    e.code = 42;
    assert_int_equal(fwrel_error_exit_code(&e), 5);
    e.code = FWREL_OK;
    assert_int_equal(fwrel_error_exit_code(&e), 5);
}

/* Each loader names what failed: kind and path. */
static void expect_about(int about, const char *path)
{
    assert_int_equal(fwrel_error_last()->about, about);
    assert_string_equal(fwrel_error_last()->path, path);
}

static void test_library_names_what_failed(void **state)
{
    (void)state;
    const char *dir = testutil_tmpdir();
    char missing[128], yaml[128], notdir[128], out[128];
    snprintf(yaml, sizeof(yaml), "%s/bad.yaml", dir);
    put(yaml, "fwrel-policy: 1\nproduct: [\n");
    snprintf(notdir, sizeof(notdir), "%s/file", dir);
    put(notdir, "x"); /* a file where a directory, a key or a bundle is wanted */
    snprintf(missing, sizeof(missing), "%s/missing", dir);
    snprintf(out, sizeof(out), "%s/out.bin", dir);

    fwrel_src src;
    assert_int_equal(fwrel_src_open(&src, missing, 1024), FWREL_EIO);
    expect_about(FWREL_ABOUT_INPUT, missing);

    fwrel_policy *pol = NULL;
    assert_int_equal(fwrel_policy_load(&pol, yaml), FWREL_EFORMAT);
    expect_about(FWREL_ABOUT_POLICY, yaml);
    assert_int_not_equal(fwrel_error_last()->line, 0);
    assert_int_equal(fwrel_policy_load(&pol, missing), FWREL_EIO);
    expect_about(FWREL_ABOUT_POLICY, missing);

    fwrel_device *dev = NULL;
    assert_int_equal(fwrel_device_load(&dev, yaml), FWREL_EFORMAT);
    expect_about(FWREL_ABOUT_PROFILE, yaml);

    fwrel_pkey *key = NULL;
    assert_int_equal(fwrel_key_load_public(&key, notdir, 0), FWREL_EFORMAT);
    expect_about(FWREL_ABOUT_KEY, notdir);
    fwrel_pass_src none = {.kind = FWREL_PASS_NONE};
    assert_int_not_equal(fwrel_key_load_private(&key, missing, &none), 0);
    expect_about(FWREL_ABOUT_KEY, missing);

    fwrel_keystore *ks = NULL;
    assert_int_not_equal(fwrel_keystore_open(&ks, notdir, 0), 0);
    expect_about(FWREL_ABOUT_KEYSTORE, notdir);

    fwrel_repo *repo = NULL;
    assert_int_not_equal(fwrel_repo_open(&repo, dir, 0), 0);
    expect_about(FWREL_ABOUT_REPOSITORY, dir);

    fwrel_bundle *b = NULL;
    assert_int_equal(fwrel_bundle_read(&b, notdir), FWREL_EFORMAT);
    expect_about(FWREL_ABOUT_BUNDLE, notdir);

    /* An output that exists: about the output, by its path. */
    fwrel_out *o = NULL;
    assert_int_equal(fwrel_out_open(&o, notdir, 0, 0644), FWREL_EIO);
    expect_about(FWREL_ABOUT_OUTPUT, notdir);
    assert_int_equal(fwrel_out_open(&o, out, 0, 0644), 0);
    assert_int_equal(fwrel_out_pwrite(o, 10, "x", 1), FWREL_EINTERNAL);
    expect_about(FWREL_ABOUT_OUTPUT, out);
    fwrel_out_abort(o);
    testutil_rmtree(dir);
}

/* A corrupt image: a verdict to a verifier, bad input to a signer, the same words. */
static void test_image_check_input(void **state)
{
    (void)state;
    size_t len;
    testimg_opts to = {.chip = "esp32s3"};
    uint8_t *b = testimg_build(&len, &to);
    assert_non_null(b);
    b[len - 33] ^= 0xff; /* the checksum byte, before the 32-byte hash */
    fwrel_src src;
    fwrel_src_mem(&src, b, len);
    fwrel_espimg img;
    assert_int_equal(fwrel_espimg_parse(&img, &src, NULL), 0);
    assert_int_equal(fwrel_espimg_check_integrity(&img), FWREL_EVERIFY);
    char msg[FWREL_ERROR_MSG_MAX];
    snprintf(msg, sizeof(msg), "%s", fwrel_error_last()->message);
    assert_int_equal(fwrel_espimg_check_input(&img), FWREL_EFORMAT);
    assert_string_equal(fwrel_error_last()->message, msg);
    assert_non_null(strstr(msg, "checksum mismatch"));
    free(b);
}

static void test_report_cannot_lose_a_step(void **state)
{
    (void)state;
    fwrel_report *r = NULL;
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_true(fwrel_report_complete(r));
    for (int i = 0; i < 4096; i++)
        assert_int_equal(fwrel_report_add(r, "s", FWREL_PASS, "%d", i), 0);
    assert_null(fwrel_report_first_failure(r));
    /* Past the cap: refused, and the report says so at its end. */
    assert_int_equal(fwrel_report_add(r, "late", FWREL_FAIL, "a failure"), FWREL_EIO);
    assert_int_equal(fwrel_report_add(r, "later", FWREL_PASS, "ok"), FWREL_EIO);
    assert_false(fwrel_report_complete(r));
    assert_int_equal(fwrel_report_count(r), 4097);
    const fwrel_step *last = fwrel_report_step(r, 4096);
    assert_non_null(last);
    assert_string_equal(last->name, "report");
    assert_int_equal(last->verdict, FWREL_FAIL);
    assert_string_equal(last->detail, "2 steps not recorded: report full");
    assert_null(fwrel_report_step(r, 4097));
    /* The lost FAIL cannot read as a pass: the report's own failure stands in for it. */
    assert_ptr_equal(fwrel_report_first_failure(r), last);
    fwrel_report_free(r);

    /* An earlier real failure stays the first one. */
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_int_equal(fwrel_report_add(r, "a", FWREL_FAIL, "no"), 0);
    for (int i = 0; i < 4096; i++)
        (void)fwrel_report_add(r, "s", FWREL_PASS, "%d", i);
    assert_false(fwrel_report_complete(r));
    assert_string_equal(fwrel_report_first_failure(r)->name, "a");
    fwrel_report_free(r);
    assert_true(fwrel_report_complete(NULL));
    assert_int_equal(fwrel_report_add(NULL, "x", FWREL_PASS, "ignored"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_about_and_where),
        cmocka_unit_test(test_position),
        cmocka_unit_test(test_recode_restore),
        cmocka_unit_test(test_exit_code),
        cmocka_unit_test(test_library_names_what_failed),
        cmocka_unit_test(test_image_check_input),
        cmocka_unit_test(test_report_cannot_lose_a_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
