/* test_auditor.c - auditor: a release repository written with fwrel_repo_release() (real git,
 * real GnuPG key) whose tags carry hand-made messages: a well-formed message whose bundle is not
 * a bundle (the CI steps fail, the audit log steps pass), messages that are not fwrel's, repeat a
 * field or name an unsafe audit path (tag.message fails, the steps that need it are skipped),
 * counters with a gap and a duplicate, a lower secure_version and a lower version in the history,
 * --product keeps the unreadable tags, the HTML report escapes a hostile product name, and usage
 * errors. The end-to-end cases on releases made by fwrel-bundle are tests/cmd/audit_repo.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "fixture.h"
#include "fwrel/audit.h"
#include "fwrel/auditor.h"
#include "fwrel/html.h"
#include "fwrel/policy.h"
#include "fwrel/repo.h"
#include "gpghome.h"
#include "testutil.h"

static const char *dir;
static char *home;
static char fa[41];
static char repo_path[4096];

static const uint8_t not_a_bundle[] = "this is not a tar archive\n";

static void sha_hex(char out[65], const uint8_t *p, size_t n)
{
    uint8_t d[32];
    unsigned int len = 0;
    static const char hx[] = "0123456789abcdef";
    assert_int_equal(EVP_Digest(p, n, d, &len, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = '\0';
}

/* Record one release: its bundle bytes and the audit log as it is now, with this message. */
static void release(fwrel_repo *r, const char *tag, const char *message, const char *log, int64_t t)
{
    char bpath[300];
    size_t loglen = 0;
    uint8_t *logdata = testutil_read(log, &loglen);
    snprintf(bpath, sizeof(bpath), "%s/bundle.fwb", tag);
    fwrel_repo_file files[2] = {
        {bpath, not_a_bundle, sizeof(not_a_bundle) - 1},
        {"audit/audit.jsonl", logdata, loglen},
    };
    fwrel_repo_release_opts o;
    memset(&o, 0, sizeof(o));
    o.files = files;
    o.nfiles = 2;
    o.commit_message = "release";
    o.tag_name = tag;
    o.tag_message = message;
    o.who.name = "fwrel release";
    o.who.email = "release@example.org";
    o.who.time = t;
    o.gpg_home = home;
    o.signer_fpr = fa;
    assert_int_equal(fwrel_repo_release(r, &o, NULL, NULL), 0);
    free(logdata);
}

/* A well-formed fwrel tag message for tag (bundle <tag>/bundle.fwb), over the first log entry. */
static void good_msg(char *out, size_t n, const char *tag, const char *product, const char *version,
                     unsigned counter, unsigned sv, const char *sha, const char *head)
{
    snprintf(out, n,
             "fwrel release %s %s (beta)\n\ncounter: %u\nsecure_version: %u\n"
             "bundle: %s/bundle.fwb sha256:%s size:%zu\n"
             "release.json: sha256:%s\ninput: sha256:%s size:10\npolicy: sha256:%s\n"
             "approvals: 1 of 1: %s\naudit: audit/audit.jsonl head:%s entries:1\n",
             product, version, counter, sv, tag, sha, sizeof(not_a_bundle) - 1, sha, sha, sha, fa,
             head);
}

static int setup(void **state)
{
    (void)state;
    char log[4300], entry[512], head[65], sha[65], msg[2048];
    fwrel_repo *r = NULL;
    dir = fixture_tmpdir();
    home = gpghome_create(dir, "gnupg");
    fixture_defer_gpghome(home);
    if (gpghome_genkey(home, "Release A <a@example.org>", NULL, "never", fa) != 0)
        return -1;
    snprintf(repo_path, sizeof(repo_path), "%s/releases", dir);
    if (fwrel_repo_open(&r, repo_path, 1) != 0 || fwrel_repo_lock(r, 0) != 0)
        return -1;
    /* The live log, inside the repository, with the first release's "bundle" entry. */
    snprintf(log, sizeof(log), "%s/audit", repo_path);
    mkdir(log, 0750);
    snprintf(log, sizeof(log), "%s/audit/audit.jsonl", repo_path);
    sha_hex(sha, not_a_bundle, sizeof(not_a_bundle) - 1);
    snprintf(entry, sizeof(entry),
             "{\"event\":\"bundle\",\"who\":{\"user\":\"t\"},\"inputs\":[],\"outputs\":[{\"name\":"
             "\"p/beta/v1.0.0/bundle.fwb\",\"sha256\":\"%s\",\"size\":%zu}],\"result\":\"ok\"}",
             sha, sizeof(not_a_bundle) - 1);
    if (fwrel_audit_append(log, entry, strlen(entry), head) != 0)
        return -1;
    /* 1: a well-formed message; the bundle is not a tar. */
    good_msg(msg, sizeof(msg), "p/beta/v1.0.0", "p", "1.0.0", 1, 1, sha, head);
    release(r, "p/beta/v1.0.0", msg, log, 1700000000);
    /* 2: not an fwrel message. */
    release(r, "p/beta/v1.1.0", "hello", log, 1700000100);
    /* 3: a hostile product name, and an audit path out of the repository. */
    snprintf(msg, sizeof(msg),
             "fwrel release <x&y> 1.0.0 (beta)\n\ncounter: 1\nsecure_version: 1\n"
             "bundle: q/beta/v1.0.0/bundle.fwb sha256:%s size:%zu\n"
             "release.json: sha256:%s\ninput: sha256:%s size:10\npolicy: sha256:%s\n"
             "approvals: 1 of 1: %s\naudit: ../audit.jsonl head:%s entries:1\n",
             sha, sizeof(not_a_bundle) - 1, sha, sha, sha, fa, head);
    release(r, "q/beta/v1.0.0", msg, log, 1700000200);
    /* 4: a field twice. */
    release(r, "q/beta/v1.1.0", "fwrel release q 1.1.0 (beta)\n\ncounter: 2\ncounter: 3\n", log,
            1700000300);
    /* 5: p again, counter 3 (2 is missing), secure_version 0 (below 1). */
    good_msg(msg, sizeof(msg), "p/beta/v1.2.0", "p", "1.2.0", 3, 0, sha, head);
    release(r, "p/beta/v1.2.0", msg, log, 1700000400);
    /* 6: counter 3 again, and a version below the channel's last. */
    good_msg(msg, sizeof(msg), "p/beta/v0.9.0", "p", "0.9.0", 3, 1, sha, head);
    release(r, "p/beta/v0.9.0", msg, log, 1700000500);
    fwrel_repo_free(r);
    return 0;
}

/* A minimal valid policy for product. */
static fwrel_policy *policy_for(const char *product)
{
    char text[2048];
    fwrel_policy *p = NULL;
    int n = snprintf(text, sizeof(text),
                     "fwrel-policy: 1\nproduct: %s\nchip: esp32c6\ndevice_types: [d]\n"
                     "partition_size: 0x100000\n"
                     "secure_boot: {scheme: sbv2-ecdsa256, slots: [{slot: 0, key: sb}]}\n"
                     "anti_rollback: {min_secure_version: 0, efuse_bits: 16}\n"
                     "manifest: {signers: [ms], threshold: 1, recipients: [me], validity: 1d}\n"
                     "approvals: {fingerprints: [%s], required: 1}\n"
                     "channels: {beta: {}}\n"
                     "release: {repository: r, tag: \"{product}/{channel}/v{version}\"}\n"
                     "audit: {log: audit/audit.jsonl}\n"
                     "keys:\n  sb: {purpose: secure-boot, alg: ecdsa256}\n"
                     "  ms: {purpose: manifest-sign, alg: ed25519}\n"
                     "  me: {purpose: manifest-encrypt, alg: x25519}\n",
                     product, fa);
    if (fwrel_policy_parse(&p, (const uint8_t *)text, (size_t)n) != 0)
        fail_msg("%s", fwrel_error_last()->message);
    return p;
}

static const fwrel_step *step(const fwrel_audit_release *R, const char *name)
{
    for (size_t i = 0; i < fwrel_report_count(R->report); i++)
        if (strcmp(fwrel_report_step(R->report, i)->name, name) == 0)
            return fwrel_report_step(R->report, i);
    fail_msg("no step %s for %s", name, R->tag);
    return NULL;
}

static void test_steps(void **state)
{
    (void)state;
    fwrel_auditor *a = NULL;
    fwrel_auditor_opts o = {.gnupg_home = home, .jobs = 2, .no_policy = 1};
    assert_int_equal(fwrel_auditor_run(&a, repo_path, &o), FWREL_EVERIFY);
    assert_non_null(a);
    assert_string_equal(fwrel_error_last()->message,
                        "6 of 6 releases failed; first: p/beta/v1.0.0: ci.bundle.read: not a "
                        "tar archive");
    assert_int_equal(fwrel_auditor_count(a), 6);
    assert_int_equal(fwrel_auditor_failed(a), 6);
    assert_int_equal(fwrel_auditor_jobs(a), 2);

    /* 1: the tag and the log are right; the bundle is not one. */
    const fwrel_audit_release *R = fwrel_auditor_release(a, 0);
    assert_string_equal(R->tag, "p/beta/v1.0.0");
    assert_int_equal(R->branch_pos, 1);
    assert_string_equal(R->signer, fa);
    assert_int_equal(R->counter, 1);
    assert_int_equal(step(R, "tag.signature")->verdict, FWREL_PASS);
    assert_int_equal(step(R, "tag.message")->verdict, FWREL_PASS);
    assert_int_equal(step(R, "bundle.blob")->verdict, FWREL_PASS);
    assert_int_equal(step(R, "ci.bundle.read")->verdict, FWREL_FAIL);
    assert_int_equal(step(R, "record.tree")->verdict, FWREL_FAIL);
    assert_int_equal(step(R, "tag.signer")->verdict, FWREL_SKIP);
    assert_int_equal(step(R, "tag.name")->verdict, FWREL_PASS);
    assert_int_equal(step(R, "policy")->verdict, FWREL_SKIP);
    assert_int_equal(step(R, "approvals")->verdict, FWREL_SKIP);
    assert_int_equal(step(R, "release.dir")->verdict, FWREL_FAIL);
    assert_string_equal(step(R, "release.dir")->detail, "p/beta/v1.0.0/release.json is missing");
    assert_int_equal(step(R, "audit.copy")->verdict, FWREL_PASS);
    assert_int_equal(step(R, "audit.live")->verdict, FWREL_PASS);
    assert_int_equal(step(R, "repo.branch")->verdict, FWREL_PASS);
    assert_int_equal(step(R, "history.counter")->verdict, FWREL_PASS);
    assert_int_equal(step(R, "keys")->verdict, FWREL_SKIP);

    /* 2: not fwrel's: what needs the message is skipped. */
    R = fwrel_auditor_release(a, 1);
    assert_string_equal(R->tag, "p/beta/v1.1.0");
    assert_int_equal(step(R, "tag.signature")->verdict, FWREL_PASS);
    assert_int_equal(step(R, "tag.message")->verdict, FWREL_FAIL);
    assert_string_equal(step(R, "tag.message")->detail,
                        "the message does not start 'fwrel release PRODUCT VERSION (CHANNEL)'");
    assert_int_equal(step(R, "bundle.blob")->verdict, FWREL_SKIP);
    assert_int_equal(step(R, "audit.live")->verdict, FWREL_SKIP);
    assert_int_equal(step(R, "history.counter")->verdict, FWREL_SKIP);
    /* Its commit changes the audit log only: nothing under its directory but the bundle. */
    assert_int_equal(step(R, "repo.branch")->verdict, FWREL_PASS);

    /* 3: the audit path leaves the repository. */
    R = fwrel_auditor_release(a, 2);
    assert_string_equal(step(R, "tag.message")->detail, "the message's 'audit:' line is malformed");
    assert_string_equal(R->product, "<x&y>");
    /* 4: a field twice. */
    R = fwrel_auditor_release(a, 3);
    assert_string_equal(step(R, "tag.message")->detail,
                        "the message's 'counter:' line is repeated");

    /* 5 and 6: the history of p. */
    R = fwrel_auditor_release(a, 4);
    assert_string_equal(R->tag, "p/beta/v1.2.0");
    assert_int_equal(step(R, "history.counter")->verdict, FWREL_FAIL);
    assert_string_equal(step(R, "history.counter")->detail,
                        "counter 3 follows 1 (p/beta/v1.0.0): a release is missing");
    assert_string_equal(step(R, "history.secure_version")->detail,
                        "secure_version 0 is below 1 of p/beta/v1.0.0, an earlier release "
                        "(rollback)");
    assert_int_equal(step(R, "history.version")->verdict, FWREL_PASS);
    R = fwrel_auditor_release(a, 5);
    assert_string_equal(R->tag, "p/beta/v0.9.0");
    assert_string_equal(step(R, "history.counter")->detail, "counter 3 is also p/beta/v1.2.0's");
    assert_int_equal(step(R, "history.secure_version")->verdict, FWREL_PASS);
    assert_string_equal(step(R, "history.version")->detail,
                        "version 0.9.0 is not above 1.2.0 of p/beta/v1.2.0, an earlier beta "
                        "release");
    /* Their tags, messages, bundles and log lines are as good as the first's. */
    assert_int_equal(step(R, "tag.message")->verdict, FWREL_PASS);
    assert_int_equal(step(R, "bundle.blob")->verdict, FWREL_PASS);
    assert_int_equal(step(R, "audit.live")->verdict, FWREL_PASS);

    /* The live log, read once: valid, one entry. */
    assert_int_equal(fwrel_auditor_nlogs(a), 1);
    const fwrel_audit_log_summary *l = fwrel_auditor_log(a, 0);
    assert_true(l->valid);
    assert_int_equal(l->entries, 1);
    assert_int_equal(l->releases, 1);
    assert_int_equal(l->untagged, 0);

    /* The page escapes what the repository says. */
    char *html = NULL;
    size_t len = 0;
    assert_int_equal(fwrel_html_audit(&html, &len, a, "rel<eases>", FWREL_HTML_MAX), 0);
    assert_int_equal(strlen(html), len);
    assert_non_null(strstr(html, "&lt;x&amp;y&gt;"));
    assert_null(strstr(html, "<x&y>"));
    assert_non_null(strstr(html, "rel&lt;eases&gt;"));
    assert_null(strstr(html, "<script"));
    assert_non_null(strstr(html, "default-src 'none'"));
    /* A page over its bound is an error, not a page cut short. */
    char *small = NULL;
    size_t slen = 1;
    assert_int_equal(fwrel_html_audit(&small, &slen, a, "rel<eases>", len - 1), FWREL_EFORMAT);
    char want[64];
    snprintf(want, sizeof(want), "the page would exceed %zu bytes", len - 1);
    assert_string_equal(fwrel_error_last()->message, want);
    assert_null(small);
    assert_int_equal(slen, 0);
    assert_int_equal(fwrel_html_audit(&small, &slen, a, "rel<eases>", len), 0);
    assert_int_equal(slen, len);
    assert_memory_equal(small, html, len);
    free(small);
    free(html);
    fwrel_auditor_free(a);
}

static void test_product_filter(void **state)
{
    (void)state;
    fwrel_auditor *a = NULL;
    /* The tags whose first line names another product are left out; the unreadable one is
     * kept, since it cannot be told apart. */
    fwrel_auditor_opts o = {.gnupg_home = home, .product = "p", .jobs = 1, .no_policy = 1};
    assert_int_equal(fwrel_auditor_run(&a, repo_path, &o), FWREL_EVERIFY);
    assert_int_equal(fwrel_auditor_count(a), 4);
    assert_string_equal(fwrel_auditor_release(a, 0)->tag, "p/beta/v1.0.0");
    assert_string_equal(fwrel_auditor_release(a, 1)->tag, "p/beta/v1.1.0");
    assert_string_equal(fwrel_auditor_release(a, 2)->tag, "p/beta/v1.2.0");
    assert_string_equal(fwrel_auditor_release(a, 3)->tag, "p/beta/v0.9.0");
    fwrel_auditor_free(a);
    o.product = "none";
    assert_int_equal(fwrel_auditor_run(&a, repo_path, &o), FWREL_EVERIFY);
    assert_int_equal(fwrel_auditor_count(a), 1);
    assert_string_equal(fwrel_auditor_release(a, 0)->tag, "p/beta/v1.1.0");
    fwrel_auditor_free(a);
}

/* A release's shard: the first 8 bytes of SHA-256(tag), big-endian, mod N, plus 1 (values from
 * python's hashlib); each tag in exactly one of 1..N. */
static void test_shard_of(void **state)
{
    (void)state;
    assert_int_equal(fwrel_auditor_shard_of("acme-thermostat/beta/v1.0.0", 2), 1);
    assert_int_equal(fwrel_auditor_shard_of("acme-thermostat/prod/v1.0.1", 2), 2);
    assert_int_equal(fwrel_auditor_shard_of("acme-thermostat/prod/v1.1.1", 3), 3);
    assert_int_equal(fwrel_auditor_shard_of("acme-thermostat/beta/v1.1.0", 3), 2);
    for (unsigned n = 1; n <= FWREL_AUDITOR_SHARDS_MAX; n += 97) {
        unsigned s = fwrel_auditor_shard_of("p/beta/v1.0.0", n);
        assert_true(s >= 1 && s <= n);
    }
    assert_int_equal(fwrel_auditor_shard_of("anything", 1), 1);
}

static void test_usage(void **state)
{
    (void)state;
    fwrel_auditor *a = (fwrel_auditor *)&a;
    fwrel_auditor_opts o = {.gnupg_home = home, .jobs = FWREL_AUDITOR_JOBS_MAX + 1, .no_policy = 1};
    assert_int_equal(fwrel_auditor_run(&a, repo_path, &o), FWREL_EUSAGE);
    assert_null(a);
    assert_string_equal(fwrel_error_last()->message, "jobs must be 1..256");
    o.jobs = 1;
    /* A shard: 1..N of N, N 1..FWREL_AUDITOR_SHARDS_MAX, both or neither. */
    static const unsigned bad[][2] = {{0, 2}, {3, 2}, {1, 0}, {1, FWREL_AUDITOR_SHARDS_MAX + 1}};
    for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++) {
        o.shard = bad[k][0];
        o.nshards = bad[k][1];
        assert_int_equal(fwrel_auditor_run(&a, repo_path, &o), FWREL_EUSAGE);
        assert_null(a);
    }
    assert_string_equal(fwrel_error_last()->message, "shard 1 of 1025: must be 1..N, N 1..1024");
    o.shard = o.nshards = 0;
    assert_int_equal(fwrel_auditor_run(&a, home, &o), FWREL_EFORMAT);
    assert_null(a);
    o.gnupg_home = NULL;
    unsetenv("GNUPGHOME");
    assert_int_equal(fwrel_auditor_run(&a, repo_path, &o), FWREL_EUSAGE);
    assert_string_equal(fwrel_error_last()->message, "no GnuPG home: pass one or set GNUPGHOME");
    o.gnupg_home = home;
    o.keystore = dir; /* not a keystore: the keystore's error, naming it (not the repository) */
    assert_int_not_equal(fwrel_auditor_run(&a, repo_path, &o), 0);
    assert_null(a);
    assert_int_equal(fwrel_error_last()->about, FWREL_ABOUT_KEYSTORE);
    assert_string_equal(fwrel_error_last()->path, dir);
    o.keystore = NULL;
    /* A policy, or an explicit no_policy: exactly one. */
    fwrel_policy *pol = policy_for("p");
    o.no_policy = 0;
    assert_int_equal(fwrel_auditor_run(&a, repo_path, &o), FWREL_EUSAGE);
    assert_null(a);
    assert_string_equal(fwrel_error_last()->message,
                        "no policy: give the policy in force, or say no_policy");
    o.policy = pol;
    o.no_policy = 1;
    assert_int_equal(fwrel_auditor_run(&a, repo_path, &o), FWREL_EUSAGE);
    assert_string_equal(fwrel_error_last()->message, "a policy and no_policy exclude each other");
    o.no_policy = 0;
    o.product = "q";
    assert_int_equal(fwrel_auditor_run(&a, repo_path, &o), FWREL_EUSAGE);
    assert_string_equal(fwrel_error_last()->message, "the policy is for product p, not q");
    assert_null(a);
    fwrel_policy_free(pol);
}

/* Issue 13 point 5: a release under p's name and path whose (signed) message names product q.
 * --product p used to skip it by its message before anything was verified, and audited VERIFIED;
 * now it is selected by its name and path, and tag.name fails naming the disagreement. Also a
 * release of q whose commit writes under p's path is selected by that path. */
static void test_product_bypass(void **state)
{
    (void)state;
    char path[4096], log[4300], entry[512], head[65], sha[65], msg[2048];
    fwrel_repo *r = NULL;
    fwrel_auditor *a = NULL;
    snprintf(path, sizeof(path), "%s/forged", dir);
    assert_int_equal(fwrel_repo_open(&r, path, 1), 0);
    assert_int_equal(fwrel_repo_lock(r, 0), 0);
    snprintf(log, sizeof(log), "%s/audit", path);
    mkdir(log, 0750);
    snprintf(log, sizeof(log), "%s/audit/audit.jsonl", path);
    sha_hex(sha, not_a_bundle, sizeof(not_a_bundle) - 1);
    snprintf(entry, sizeof(entry),
             "{\"event\":\"bundle\",\"who\":{\"user\":\"t\"},\"inputs\":[],\"outputs\":[{\"name\":"
             "\"p/prod/v9.0.0/bundle.fwb\",\"sha256\":\"%s\",\"size\":%zu}],\"result\":\"ok\"}",
             sha, sizeof(not_a_bundle) - 1);
    assert_int_equal(fwrel_audit_append(log, entry, strlen(entry), head), 0);
    /* The message names q; name, path and bundle path are p's. */
    good_msg(msg, sizeof(msg), "p/prod/v9.0.0", "q", "9.0.0", 1, 1, sha, head);
    release(r, "p/prod/v9.0.0", msg, log, 1700000000);
    fwrel_repo_free(r);

    fwrel_auditor_opts o = {.gnupg_home = home, .product = "p", .jobs = 1, .no_policy = 1};
    assert_int_equal(fwrel_auditor_run(&a, path, &o), FWREL_EVERIFY);
    assert_int_equal(fwrel_auditor_count(a), 1);
    const fwrel_audit_release *R = fwrel_auditor_release(a, 0);
    assert_string_equal(R->tag, "p/prod/v9.0.0");
    assert_int_equal(step(R, "tag.signature")->verdict, FWREL_PASS);
    assert_int_equal(step(R, "tag.name")->verdict, FWREL_FAIL);
    assert_string_equal(step(R, "tag.name")->detail,
                        "the tag name says product p, the message q; the tag name says channel "
                        "prod, the message beta");
    fwrel_auditor_free(a);
    /* --all: the same failure. */
    o.product = NULL;
    assert_int_equal(fwrel_auditor_run(&a, path, &o), FWREL_EVERIFY);
    assert_int_equal(step(fwrel_auditor_release(a, 0), "tag.name")->verdict, FWREL_FAIL);
    fwrel_auditor_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps),          cmocka_unit_test(test_product_filter),
        cmocka_unit_test(test_usage),          cmocka_unit_test(test_shard_of),
        cmocka_unit_test(test_product_bypass),
    };
    return cmocka_run_group_tests(tests, setup, fixture_teardown);
}
