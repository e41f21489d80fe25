/* test_pipeline.c - the release pipeline's steps (pipeline.h) on real keys made here (a keystore
 * of the dev policy's three keys, a GnuPG key for the tag) and a real temporary git repository:
 * the steps run in order and make what they say (the bundle, its record, the signed tag whose
 * message reads back through tagmsg.h); a policy or history refusal stops the run before any
 * signing key is loaded and leaves no output, no tag and no commit; a failure injected at a later
 * step leaves nothing either, and consumes no counter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "fwrel/error.h"
#include "fwrel/keystore.h"
#include "fwrel/pipeline.h"
#include "fwrel/repo.h"
#include "fwrel/report.h"
#include "fwrel/tagmsg.h"
#include "gpghome.h"
#include "testimg.h"
#include "testutil.h"
#include "util.h"

static char tmp[64], home_dir[128], ks_dir[128], repo_dir[128], policy[4096], templates[4096];
static char *gpg_home;
static char signer[41];

static void path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmp, name);
}

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("FWREL_SRC");
    fwrel_keystore *ks = NULL;
    static const fwrel_keystore_new keys[] = {
        {"sbv1-signing", FWREL_PURPOSE_SECURE_BOOT, FWREL_ALG_ECDSA256, 0},
        {"mf-dev", FWREL_PURPOSE_MANIFEST_SIGN, FWREL_ALG_ED25519, -1},
        {"mf-devkit", FWREL_PURPOSE_MANIFEST_ENCRYPT, FWREL_ALG_X25519, -1},
    };
    if (src == NULL)
        return -1;
    snprintf(tmp, sizeof(tmp), "%s", fixture_tmpdir());
    snprintf(policy, sizeof(policy), "%s/policies/esp32-sbv1-dev.yaml", src);
    snprintf(templates, sizeof(templates), "%s/templates", src);
    path(ks_dir, sizeof(ks_dir), "ks");
    path(repo_dir, sizeof(repo_dir), "releases");
    path(home_dir, sizeof(home_dir), "scratch");
    if (mkdir(home_dir, 0700) != 0 || setenv("TMPDIR", home_dir, 1) != 0)
        return -1;
    gpg_home = gpghome_create(tmp, "gnupg");
    fixture_defer_gpghome(gpg_home);
    if (gpghome_genkey(gpg_home, "Release <rel@example.invalid>", NULL, "never", signer) != 0)
        return -1;
    if (fwrel_keystore_open(&ks, ks_dir, FWREL_KS_CREATE | FWREL_KS_WRITE) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (fwrel_keystore_generate(ks, &keys[i], NULL, 0, 0, NULL) != 0) {
            fwrel_keystore_close(ks);
            return -1;
        }
    fwrel_keystore_close(ks);
    return 0;
}

/* An esp32 app image the dev policy accepts (chip revision v3.0..v3.99). */
static void image(char *out, size_t n, const char *version)
{
    testimg_opts io;
    char name[64];
    memset(&io, 0, sizeof(io));
    io.chip = "esp32";
    io.min_rev_full = 300;
    io.max_rev_full = 399;
    io.version = version;
    io.project = "devkit";
    snprintf(name, sizeof(name), "app-%s.bin", version);
    path(out, n, name);
    assert_int_equal(testimg_write(out, &io), 0);
}

static fwrel_pipeline_opts opts(const char *img, const char *output)
{
    fwrel_pipeline_opts o;
    memset(&o, 0, sizeof(o));
    o.policy = policy;
    o.keystore = ks_dir;
    o.repo = repo_dir;
    o.channel = "dev";
    o.image = img;
    o.output = output;
    o.template_root = templates;
    o.gnupg_home = gpg_home;
    o.tag_signer = signer;
    o.time = (int64_t)time(NULL) - 60;
    o.who = "test";
    return o;
}

/* The report's step names, space-separated, and the last step's verdict. */
static void steps(char *out, size_t n, int *last, const fwrel_report *r)
{
    out[0] = '\0';
    for (size_t i = 0; i < fwrel_report_count(r); i++) {
        const fwrel_step *s = fwrel_report_step(r, i);
        size_t k = strlen(out);
        snprintf(out + k, n - k, "%s%s", k ? " " : "", s->name);
        *last = s->verdict;
    }
}

/* The repository's tags, one string ("" when there is no repository yet). */
static void tags(char *out, size_t n)
{
    fwrel_repo *r = NULL;
    fwrel_repo_tag *t = NULL;
    size_t nt = 0;
    out[0] = '\0';
    if (access(repo_dir, F_OK) != 0)
        return;
    assert_int_equal(fwrel_repo_open(&r, repo_dir, 0), 0);
    assert_int_equal(fwrel_repo_tags(&t, &nt, r, NULL), 0);
    for (size_t i = 0; i < nt; i++) {
        size_t k = strlen(out);
        snprintf(out + k, n - k, "%s %s\n", t[i].name, t[i].target);
    }
    fwrel_repo_tags_free(t, nt);
    fwrel_repo_free(r);
}

static void test_release(void **state)
{
    (void)state;
    char img[128], out[128], names[1024], tagmsg_err[256];
    fwrel_pipeline_result res;
    fwrel_report *report = NULL;
    int last = 0;
    image(img, sizeof(img), "1.0.0");
    path(out, sizeof(out), "out-1.0.0.fwb");
    fwrel_pipeline_opts o = opts(img, out);

    assert_int_equal(fwrel_report_new(&report), 0);
    assert_int_equal(fwrel_pipeline_release(&res, report, &o), 0);
    /* Every step, in order. */
    steps(names, sizeof(names), &last, report);
    assert_string_equal(
        names, "policy image preflight lock history keys secureboot encrypt manifest exports "
               "record approve bundle audit repo");
    fwrel_report_free(report);

    /* What it made: the record, the output (the bundle's bytes), the signed tag. */
    assert_int_equal(res.recorded, 1);
    assert_string_equal(res.tag, "acme-devkit/dev/v1.0.0");
    assert_int_equal(res.record.counter, 1);
    assert_string_equal(res.record.version, "1.0.0");
    assert_string_equal(res.record.channel, "dev");
    assert_int_equal(res.record.nsign_keys, 1);
    assert_int_equal(strlen(res.commit), 40);
    size_t len = 0;
    uint8_t *bundle = testutil_read(out, &len);
    assert_non_null(bundle);
    char sha[65];
    fwrel_sha256_hex(sha, bundle, len);
    assert_string_equal(sha, res.bundle_sha256);
    free(bundle);

    fwrel_repo *r = NULL;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    fwrel_repo_tag_info info;
    fwrel_tagmsg m;
    assert_int_equal(fwrel_repo_open(&r, repo_dir, 0), 0);
    assert_int_equal(fwrel_repo_tag_raw(&raw, &rawlen, r, res.tag), 0);
    assert_int_equal(fwrel_repo_tag_parse(&info, raw, rawlen), 0);
    assert_int_equal(
        fwrel_tagmsg_decode_tag(&m, tagmsg_err, sizeof(tagmsg_err), raw, info.payload_len), 1);
    assert_string_equal(m.product, "acme-devkit");
    assert_int_equal(m.counter, 1);
    assert_string_equal(m.bundle_sha, res.bundle_sha256);
    assert_int_equal(m.bundle_size, len);
    assert_string_equal(m.audit_head, res.audit_head);
    assert_int_equal(m.napprovals, 0);
    free(raw);
    fwrel_repo_free(r);
    assert_int_equal(testutil_count_entries(home_dir), 0); /* no scratch file left */
}

/* A run that fails: its code and message, the steps it ran, and that it left nothing. */
static void expect_refused(const fwrel_pipeline_opts *o, int code, const char *message,
                           const char *ran)
{
    fwrel_pipeline_result res;
    fwrel_report *report = NULL;
    char before[4096], after[4096], names[1024];
    int last = 0;
    tags(before, sizeof(before));
    assert_int_equal(fwrel_report_new(&report), 0);
    assert_int_equal(fwrel_pipeline_release(&res, report, o), code);
    assert_string_equal(fwrel_error_last()->message, message);
    steps(names, sizeof(names), &last, report);
    assert_string_equal(names, ran);
    assert_int_equal(last, FWREL_FAIL);
    fwrel_report_free(report);
    assert_int_equal(res.recorded, 0);
    assert_int_equal(access(o->output, F_OK), -1); /* no output */
    tags(after, sizeof(after));
    assert_string_equal(after, before); /* no tag, no signature */
    assert_int_equal(testutil_count_entries(home_dir), 0);
}

static void test_policy_refusal(void **state)
{
    (void)state;
    char img[128], out[128];
    image(img, sizeof(img), "1.1.0");
    path(out, sizeof(out), "out-refused.fwb");
    fwrel_pipeline_opts o = opts(img, out);
    /* The keystore does not exist: had the keys step run, it would say so. */
    o.keystore = "/nonexistent/keystore";
    o.channel = "prod";
    expect_refused(&o, FWREL_EUSAGE, "the policy has no channel 'prod'", "policy");
    /* An approver the policy does not pin: refused before the keys are opened. */
    o.channel = "dev";
    o.approvers[0] = signer;
    o.napprovers = 1;
    char want[128];
    snprintf(want, sizeof(want), "%s is not an approver the policy pins", signer);
    expect_refused(&o, FWREL_EVERIFY, want, "policy policy");
}

static void test_history_refusal(void **state)
{
    (void)state;
    char img[128], out[128];
    image(img, sizeof(img), "1.0.0");
    path(out, sizeof(out), "out-again.fwb");
    fwrel_pipeline_opts o = opts(img, out);
    /* The same image again: the history refuses before the keystore is unlocked (no keys
     * step: the preflight runs before any key is opened), nothing is signed. */
    expect_refused(&o, FWREL_EVERIFY, "this image was released already as acme-devkit/dev/v1.0.0",
                   "policy image preflight lock history");
    /* The refusal is in the audit log (its last entry). */
    char log[256];
    snprintf(log, sizeof(log), "%s/audit/audit.jsonl", repo_dir);
    size_t len = 0;
    char *text = (char *)testutil_read(log, &len);
    assert_non_null(text);
    text = realloc(text, len + 1);
    text[len] = '\0';
    char *lastline = text;
    for (char *p = text; p + 1 < text + len; p++)
        if (*p == '\n')
            lastline = p + 1;
    assert_non_null(strstr(lastline, "\"reason\":\"release acme-devkit/dev/v1.0.0 failed at "
                                     "history: this image was released already"));
    free(text);
}

static void test_injected_failures(void **state)
{
    (void)state;
    static const char *const at[][2] = {
        {"secureboot", "policy image preflight lock history keys secureboot"},
        {"manifest", "policy image preflight lock history keys secureboot encrypt manifest"},
        {"record",
         "policy image preflight lock history keys secureboot encrypt manifest exports record"},
        {"repo",
         "policy image preflight lock history keys secureboot encrypt manifest exports record "
         "approve bundle audit repo"},
    };
    char img[128], out[128], want[128];
    image(img, sizeof(img), "1.1.0");
    path(out, sizeof(out), "out-1.1.0.fwb");
    fwrel_pipeline_opts o = opts(img, out);
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        assert_int_equal(setenv("FWREL_TEST_FAIL_AT", at[i][0], 1), 0);
        snprintf(want, sizeof(want), "injected failure at %s", at[i][0]);
        expect_refused(&o, FWREL_EIO, want, at[i][1]);
    }
    assert_int_equal(unsetenv("FWREL_TEST_FAIL_AT"), 0);
    /* None of them used a counter. */
    fwrel_pipeline_result res;
    fwrel_report *report = NULL;
    assert_int_equal(fwrel_report_new(&report), 0);
    assert_int_equal(fwrel_pipeline_release(&res, report, &o), 0);
    fwrel_report_free(report);
    assert_int_equal(res.record.counter, 2);
    assert_int_equal(access(out, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_policy_refusal),
        cmocka_unit_test(test_history_refusal),
        cmocka_unit_test(test_injected_failures),
    };
    return cmocka_run_group_tests(tests, setup, fixture_teardown);
}
