/* test_repo.c - repo: the release repository with real git repositories (libgit2, checked with
 * the git CLI) and real GnuPG keys: releases that `git verify-tag` accepts and `git log` shows,
 * releases on top keep earlier files, injected failures and SIGKILL at every step leave no tag
 * without its commit and no untagged branch advance (the next lock repairs it), the lock refuses
 * a second releaser, tampered objects and tags are caught by fwrel_repo_tag_verify(), and the
 * branch audit names untagged commits, merges, tags off the branch and releases that write
 * outside their directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "fixture.h"
#include "fwrel/pgp.h"
#include "fwrel/repo.h"
#include "fwrel/report.h"
#include "gpghome.h"
#include "testutil.h"

static const char *dir;
static char *home, *other;
static char fa[41], fb[41];
static const char *passfile;
static int nrepo;

static const uint8_t bundle1[] = "bundle v1.0.0 bytes\n";
static const uint8_t audit1[] = "{\"release\":\"v1.0.0\"}\n";
static const uint8_t bundle2[] = "bundle v1.1.0 bytes, a little longer\n";

static int setup(void **state)
{
    (void)state;
    dir = fixture_gpg_homes(&home, &other);
    if (gpghome_genkey(home, "Release A <a@example.org>", NULL, "never", fa) != 0 ||
        gpghome_genkey(home, "Release B <b@example.org>", "correct horse", "never", fb) != 0)
        return -1;
    if ((passfile = fixture_secret(dir, "pass", "correct horse\n")) == NULL)
        return -1;
    unsetenv("FWREL_TEST_FAIL_AT");
    unsetenv("FWREL_TEST_KILL_AT");
    return 0;
}

/* A fresh repository path (static buffer). */
static const char *new_repo_path(void)
{
    static char p[4096];
    snprintf(p, sizeof(p), "%s/releases%d", dir, nrepo++);
    return p;
}

/* Run a command, capture its stdout (malloc'd, trailing newline kept); *status its exit code. */
static char *run(int *status, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t k;
    while ((k = fread(out + n, 1, cap - 1 - n, p)) > 0)
        n += k;
    out[n] = '\0';
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

/* All refs with their targets, as git sees them. */
static char *refs(const char *repo)
{
    int st;
    char *s = run(&st, "git -C '%s' for-each-ref --format='%%(refname) %%(objectname)'", repo);
    assert_int_equal(st, 0);
    return s;
}

static void expect_error(int rc, int code, const char *message)
{
    assert_int_equal(rc, code);
    assert_string_equal(fwrel_error_last()->message, message);
}

static fwrel_repo_release_opts opts(const fwrel_repo_file *files, size_t n, const char *tag,
                                    const char *signer, const fwrel_pass_src *pass, int64_t t)
{
    fwrel_repo_release_opts o;
    memset(&o, 0, sizeof(o));
    o.files = files;
    o.nfiles = n;
    o.commit_message = "release prod/stable v1.0.0\n\nbundle and audit record";
    o.tag_name = tag;
    o.tag_message = "prod stable 1.0.0";
    o.who.name = "fwrel release";
    o.who.email = "release@example.org";
    o.who.time = t;
    o.who.offset_min = 60;
    o.gpg_home = home;
    o.signer_fpr = signer;
    o.pass = pass;
    return o;
}

static const fwrel_repo_file files1[] = {
    {"prod/stable/v1.0.0/bundle.fwb", bundle1, sizeof(bundle1) - 1},
    {"prod/stable/v1.0.0/audit.json", audit1, sizeof(audit1) - 1},
};
static const fwrel_repo_file files2[] = {
    {"prod/stable/v1.1.0/bundle.fwb", bundle2, sizeof(bundle2) - 1},
};

/* A repository with one release (tag prod/stable/v1.0.0 by A), locked. */
static fwrel_repo *repo_with_release(const char *path, char commit[41])
{
    fwrel_repo *r = NULL;
    assert_int_equal(fwrel_repo_open(&r, path, 1), 0);
    assert_int_equal(fwrel_repo_lock(r, 0), 0);
    fwrel_repo_release_opts o = opts(files1, 2, "prod/stable/v1.0.0", fa, NULL, 1700000000);
    assert_int_equal(fwrel_repo_release(r, &o, commit, NULL), 0);
    return r;
}

static void test_release_verifies_with_git(void **state)
{
    (void)state;
    const char *path = new_repo_path();
    char commit[41], tagid[41], buf[64];
    int st;
    fwrel_repo *r = NULL;
    assert_int_equal(fwrel_repo_open(&r, path, 1), 0);
    assert_int_equal(fwrel_repo_lock(r, 0), 0);
    assert_int_equal(fwrel_repo_repaired(r), 0);
    fwrel_repo_release_opts o = opts(files1, 2, "prod/stable/v1.0.0", fa, NULL, 1700000000);
    assert_int_equal(fwrel_repo_release(r, &o, commit, tagid), 0);

    /* Plain git: verify-tag with the GnuPG home, log, show, fsck. */
    char *out = run(&st, "GNUPGHOME='%s' git -C '%s' verify-tag prod/stable/v1.0.0 2>/dev/null",
                    home, path);
    assert_int_equal(st, 0);
    free(out);
    out = run(&st, "git -C '%s' log --format='%%H %%an <%%ae> %%at %%s' main", path);
    assert_int_equal(st, 0);
    char want[512];
    snprintf(want, sizeof(want),
             "%s fwrel release <release@example.org> 1700000000 release prod/stable v1.0.0\n",
             commit);
    assert_string_equal(out, want);
    free(out);
    out = run(&st, "git -C '%s' show prod/stable/v1.0.0:prod/stable/v1.0.0/bundle.fwb", path);
    assert_int_equal(st, 0);
    assert_string_equal(out, (const char *)bundle1);
    free(out);
    out = run(&st, "git -C '%s' rev-parse 'prod/stable/v1.0.0^{commit}' prod/stable/v1.0.0", path);
    snprintf(want, sizeof(want), "%s\n%s\n", commit, tagid);
    assert_string_equal(out, want);
    free(out);
    out = run(&st, "git -C '%s' fsck --strict --no-dangling 2>&1", path);
    assert_int_equal(st, 0);
    free(out);
    out = run(&st, "git -C '%s' rev-parse --is-bare-repository", path);
    assert_string_equal(out, "true\n");
    free(out);

    /* The raw tag object is what git prints; our verification agrees with git's. */
    uint8_t *raw = NULL;
    size_t len = 0, payload = 0;
    assert_int_equal(fwrel_repo_tag_raw(&raw, &len, r, "prod/stable/v1.0.0"), 0);
    out = run(&st, "git -C '%s' cat-file tag prod/stable/v1.0.0", path);
    assert_int_equal(strlen(out), len);
    assert_memory_equal(out, raw, len);
    free(out);
    snprintf(want, sizeof(want),
             "object %s\ntype commit\ntag prod/stable/v1.0.0\ntagger fwrel release "
             "<release@example.org> 1700000000 +0100\n\nprod stable 1.0.0\n-----BEGIN PGP "
             "SIGNATURE-----\n",
             commit);
    assert_memory_equal(raw, want, strlen(want));
    assert_int_equal(fwrel_repo_tag_split(&payload, raw, len), 0);
    assert_memory_equal(raw + payload, "-----BEGIN PGP SIGNATURE-----\n", 30);
    fwrel_repo_tag_info info;
    assert_int_equal(fwrel_repo_tag_parse(&info, raw, len), 0);
    assert_string_equal(info.object, commit);
    assert_string_equal(info.name, "prod/stable/v1.0.0");
    assert_int_equal(info.time, 1700000000);
    assert_int_equal(info.payload_len, payload);
    /* Malformed variants of the same object (header edits; the signature part kept). */
    struct {
        const char *from, *to, *msg;
        int code;
    } edits[] = {
        {"type commit", "type blob!!", "tag does not point to a commit", FWREL_EVERIFY},
        {"object ", "objekt ", "malformed tag object: no object line", FWREL_EFORMAT},
        {"\ntag prod", "\ntag\tprod", "malformed tag object: no tag line", FWREL_EFORMAT},
        {"> 1700000000 +0100", "> 170000000x +0100", "malformed tag object: bad tagger line",
         FWREL_EFORMAT},
        {"> 1700000000 +0100", "> 1700000000 +01a0", "malformed tag object: bad tagger line",
         FWREL_EFORMAT},
        {"+0100\n\nprod", "+0100\nxprod", "malformed tag object: no blank line after the header",
         FWREL_EFORMAT},
        {"-----BEGIN PGP SIGNATURE-----", "-----BEGIN PGP SIGNATURE----_", "tag is not signed",
         FWREL_EVERIFY},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char *copy = malloc(len + 1);
        assert_non_null(copy);
        memcpy(copy, raw, len);
        copy[len] = '\0';
        char *at = strstr(copy, edits[i].from);
        assert_non_null(at);
        assert_int_equal(strlen(edits[i].from), strlen(edits[i].to));
        memcpy(at, edits[i].to, strlen(edits[i].to));
        expect_error(fwrel_repo_tag_parse(&info, (uint8_t *)copy, len), edits[i].code,
                     edits[i].msg);
        assert_string_equal(info.name, "");
        free(copy);
    }
    /* Truncated anywhere inside the header: refused, never read past the end. */
    for (size_t cut = 0; cut < payload; cut++)
        assert_int_not_equal(fwrel_repo_tag_parse(&info, raw, cut), 0);
    free(raw);

    fwrel_pgp_result signer;
    char vcommit[41];
    assert_int_equal(fwrel_repo_tag_verify(&signer, vcommit, r, "prod/stable/v1.0.0", home), 0);
    assert_string_equal(signer.fpr, fa);
    assert_string_equal(vcommit, commit);
    assert_int_equal(fwrel_repo_tag_commit(buf, r, "prod/stable/v1.0.0"), 0);
    assert_string_equal(buf, commit);

    /* The same release in another repository makes the same commit (caller's time). */
    char commit2[41];
    fwrel_repo *r2 = repo_with_release(new_repo_path(), commit2);
    assert_string_equal(commit2, commit);
    fwrel_repo_free(r2);

    /* An existing tag is refused and nothing moves. */
    char *before = refs(path);
    expect_error(fwrel_repo_release(r, &o, NULL, NULL), FWREL_EVERIFY,
                 "tag prod/stable/v1.0.0 already exists");
    char *after = refs(path);
    assert_string_equal(before, after);
    free(before);
    free(after);
    fwrel_repo_free(r);

    /* Reopened without create, the release is there. */
    assert_int_equal(fwrel_repo_open(&r, path, 0), 0);
    assert_int_equal(fwrel_repo_tag_verify(&signer, NULL, r, "prod/stable/v1.0.0", home), 0);
    fwrel_repo_free(r);
}

static void test_second_release_keeps_files(void **state)
{
    (void)state;
    const char *path = new_repo_path();
    char c1[41], c2[41];
    int st;
    fwrel_repo *r = repo_with_release(path, c1);
    fwrel_pass_src pass = {.kind = FWREL_PASS_FILE, .file = passfile};
    fwrel_repo_release_opts o = opts(files2, 1, "prod/stable/v1.1.0", fb, &pass, 1700003600);
    o.commit_message = "release prod/stable v1.1.0";
    o.tag_message = "prod stable 1.1.0\n";
    assert_int_equal(fwrel_repo_release(r, &o, c2, NULL), 0);

    char *out = run(&st,
                    "GNUPGHOME='%s' git -C '%s' verify-tag prod/stable/v1.0.0 "
                    "prod/stable/v1.1.0 2>/dev/null",
                    home, path);
    assert_int_equal(st, 0);
    free(out);
    out = run(&st, "git -C '%s' log --format=%%s main", path);
    assert_string_equal(out, "release prod/stable v1.1.0\nrelease prod/stable v1.0.0\n");
    free(out);
    out = run(&st, "git -C '%s' rev-parse main main^", path);
    char want[128];
    snprintf(want, sizeof(want), "%s\n%s\n", c2, c1);
    assert_string_equal(out, want);
    free(out);
    out = run(&st, "git -C '%s' ls-tree -r --name-only prod/stable/v1.1.0", path);
    assert_string_equal(out, "prod/stable/v1.0.0/audit.json\nprod/stable/v1.0.0/bundle.fwb\n"
                             "prod/stable/v1.1.0/bundle.fwb\n");
    free(out);

    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(fwrel_repo_read_file(&data, &len, r, "prod/stable/v1.1.0",
                                          "prod/stable/v1.0.0/bundle.fwb", 1024),
                     0);
    assert_int_equal(len, sizeof(bundle1) - 1);
    assert_memory_equal(data, bundle1, len);
    free(data);
    expect_error(fwrel_repo_read_file(&data, &len, r, "prod/stable/v1.0.0",
                                      "prod/stable/v1.1.0/bundle.fwb", 1024),
                 FWREL_EVERIFY, "no file prod/stable/v1.1.0/bundle.fwb at prod/stable/v1.0.0");
    assert_null(data);
    assert_int_equal(fwrel_repo_read_file(&data, &len, r, "prod/stable/v1.1.0",
                                          "prod/stable/v1.1.0/bundle.fwb", 8),
                     FWREL_EFORMAT);
    expect_error(fwrel_repo_read_file(&data, &len, r, "prod/stable/v9", "x", 8), FWREL_EVERIFY,
                 "no tag prod/stable/v9");

    fwrel_pgp_result signer;
    assert_int_equal(fwrel_repo_tag_verify(&signer, NULL, r, "prod/stable/v1.1.0", home), 0);
    assert_string_equal(signer.fpr, fb);

    /* Listing by prefix, in tagger time order (names would sort the other way here). */
    fwrel_repo_release_opts o3 = opts(files2, 1, "prod/beta/v0.9.0", fa, NULL, 1600000000);
    fwrel_repo_file f3[] = {{"prod/beta/v0.9.0/bundle.fwb", bundle2, 4}};
    o3.files = f3;
    assert_int_equal(fwrel_repo_release(r, &o3, NULL, NULL), 0);
    fwrel_repo_release_opts o4 = opts(files2, 1, "prod/stable/v1.0.1", fa, NULL, 1700007200);
    fwrel_repo_file f4[] = {{"prod/stable/v1.0.1/bundle.fwb", bundle2, 5}};
    o4.files = f4;
    assert_int_equal(fwrel_repo_release(r, &o4, NULL, NULL), 0);
    fwrel_repo_tag *tags = NULL;
    size_t n = 0;
    assert_int_equal(fwrel_repo_tags(&tags, &n, r, "prod/stable/"), 0);
    assert_int_equal(n, 3);
    assert_string_equal(tags[0].name, "prod/stable/v1.0.0");
    assert_string_equal(tags[1].name, "prod/stable/v1.1.0");
    assert_string_equal(tags[2].name, "prod/stable/v1.0.1");
    assert_int_equal(tags[1].time, 1700003600);
    assert_int_equal(tags[1].annotated, 1);
    assert_string_equal(tags[1].target, c2);
    fwrel_repo_tags_free(tags, n);
    assert_int_equal(fwrel_repo_tags(&tags, &n, r, NULL), 0);
    assert_int_equal(n, 4);
    assert_string_equal(tags[0].name, "prod/beta/v0.9.0");
    fwrel_repo_tags_free(tags, n);
    assert_int_equal(fwrel_repo_tags(&tags, &n, r, "dev/"), 0);
    assert_int_equal(n, 0);
    assert_null(tags);
    fwrel_repo_free(r);
}

static const char *const steps[] = {"blobs",      "sign",   "tree",   "commit",
                                    "tag-object", "branch", "tag-ref"};

static void test_injected_failures(void **state)
{
    (void)state;
    char c1[41];
    char msg[128];
    /* On a repository with one release, and on an empty one (first release). */
    for (int first = 0; first < 2; first++) {
        const char *path = new_repo_path();
        fwrel_repo *r = NULL;
        if (first) {
            assert_int_equal(fwrel_repo_open(&r, path, 1), 0);
            assert_int_equal(fwrel_repo_lock(r, 0), 0);
        } else {
            r = repo_with_release(path, c1);
        }
        char *before = refs(path);
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
            fwrel_repo_release_opts o = opts(files2, 1, "prod/stable/v1.1.0", fa, NULL, 1700003600);
            setenv("FWREL_TEST_FAIL_AT", steps[i], 1);
            snprintf(msg, sizeof(msg), "injected failure at %s", steps[i]);
            expect_error(fwrel_repo_release(r, &o, NULL, NULL), FWREL_EIO, msg);
            unsetenv("FWREL_TEST_FAIL_AT");
            char *after = refs(path);
            assert_string_equal(before, after);
            free(after);
        }
        /* The tag ref fails and so does moving the branch back: the branch is left ahead,
         * the error says so, and the next lock moves it back. */
        fwrel_repo_release_opts o = opts(files2, 1, "prod/stable/v1.1.0", fa, NULL, 1700003600);
        setenv("FWREL_TEST_FAIL_AT", "tag-ref,rollback", 1);
        expect_error(fwrel_repo_release(r, &o, NULL, NULL), FWREL_EIO,
                     "injected failure at tag-ref; the release branch is left one untagged "
                     "commit ahead (the next lock repairs it)");
        unsetenv("FWREL_TEST_FAIL_AT");
        char *ahead = refs(path);
        assert_string_not_equal(ahead, before);
        assert_null(strstr(ahead, "refs/tags/prod/stable/v1.1.0"));
        free(ahead);
        fwrel_repo_unlock(r);
        assert_int_equal(fwrel_repo_lock(r, 0), 0);
        assert_int_equal(fwrel_repo_repaired(r), 1);
        char *after = refs(path);
        assert_string_equal(before, after);
        free(after);
        /* And the release then goes through. */
        assert_int_equal(fwrel_repo_release(r, &o, NULL, NULL), 0);
        free(before);
        fwrel_repo_free(r);
    }
}

static void test_sigkill_at_each_step(void **state)
{
    (void)state;
    char c1[41];
    int st;
    const char *path = new_repo_path();
    fwrel_repo *r = repo_with_release(path, c1);
    fwrel_repo_free(r);
    char *before = refs(path);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            fwrel_repo *c = NULL;
            setenv("FWREL_TEST_KILL_AT", steps[i], 1);
            if (fwrel_repo_open(&c, path, 0) != 0 || fwrel_repo_lock(c, 0) != 0)
                _exit(3);
            fwrel_repo_release_opts o = opts(files2, 1, "prod/stable/v1.1.0", fa, NULL, 1700003600);
            (void)!fwrel_repo_release(c, &o, NULL, NULL);
            _exit(4); /* not reached: killed */
        }
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGKILL);
        /* After the branch moved, before the tag: the branch is ahead of every tag. */
        char *mid = refs(path);
        int ahead = strcmp(steps[i], "tag-ref") == 0;
        assert_int_equal(strcmp(mid, before) != 0, ahead);
        assert_null(strstr(mid, "refs/tags/prod/stable/v1.1.0"));
        free(mid);
        char *tip = run(&st, "git -C '%s' rev-parse main", path);
        assert_int_equal(strncmp(tip, c1, 40) != 0, ahead);
        free(tip);
        /* The journal names the commit the branch was moved to. */
        char jpath[4200];
        snprintf(jpath, sizeof(jpath), "%s/%s", path, FWREL_REPO_JOURNAL_FILE);
        if (ahead)
            assert_int_equal(access(jpath, F_OK), 0);
        /* The next lock repairs (or finds nothing to repair). */
        assert_int_equal(fwrel_repo_open(&r, path, 0), 0);
        assert_int_equal(fwrel_repo_lock(r, 0), 0);
        assert_int_equal(fwrel_repo_repaired(r), ahead);
        char *after = refs(path);
        assert_string_equal(before, after);
        free(after);
        fwrel_repo_free(r);
    }
    /* Finally a release succeeds, and git is happy with the repository. */
    assert_int_equal(fwrel_repo_open(&r, path, 0), 0);
    assert_int_equal(fwrel_repo_lock(r, 0), 0);
    fwrel_repo_release_opts o = opts(files2, 1, "prod/stable/v1.1.0", fa, NULL, 1700003600);
    assert_int_equal(fwrel_repo_release(r, &o, NULL, NULL), 0);
    fwrel_repo_free(r);
    char *out = run(&st,
                    "GNUPGHOME='%s' git -C '%s' verify-tag prod/stable/v1.1.0 2>/dev/null"
                    " && git -C '%s' fsck --strict --no-dangling 2>&1",
                    home, path, path);
    assert_int_equal(st, 0);
    free(out);
    free(before);
}

/* SIGKILL at random moments (seeded): after each, the next lock leaves the branch at a tagged
 * release, and every tag verifies and holds its bundle. */
static void test_sigkill_at_random(void **state)
{
    (void)state;
    char c1[41];
    const char *path = new_repo_path();
    fwrel_repo *r = repo_with_release(path, c1);
    fwrel_repo_free(r);
    srand(20261122);
    int completed = 0, killed = 0;
    for (int i = 0; i < 16; i++) {
        char tag[64], file[96];
        snprintf(tag, sizeof(tag), "prod/stable/v2.%d.0", i);
        snprintf(file, sizeof(file), "%s/bundle.fwb", tag);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            fwrel_repo *c = NULL;
            if (fwrel_repo_open(&c, path, 0) != 0 || fwrel_repo_lock(c, 5000) != 0)
                _exit(3);
            fwrel_repo_file f[] = {{file, bundle2, sizeof(bundle2) - 1}};
            fwrel_repo_release_opts o = opts(f, 1, tag, fa, NULL, 1700003600 + i);
            _exit(fwrel_repo_release(c, &o, NULL, NULL) == 0 ? 0 : 4);
        }
        /* Every fourth release runs to its end; the others are killed within 40 ms, which
         * falls anywhere from before the lock to after the tag on this kind of machine. */
        useconds_t delay = (useconds_t)(rand() % 40000);
        if (i % 4 != 3) {
            usleep(delay);
            kill(pid, SIGKILL);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (WIFEXITED(st)) {
            assert_int_equal(WEXITSTATUS(st), 0);
            completed++;
        } else {
            killed++;
        }
        assert_int_equal(fwrel_repo_open(&r, path, 0), 0);
        /* A killed releaser's gpg child, forked but not yet exec'd, may hold a copy of the
         * lock descriptor for a moment: wait for it like a real second run would. */
        int lrc = fwrel_repo_lock(r, 5000);
        if (lrc != 0)
            fprintf(stderr, "lock: %s\n", fwrel_error_last()->message);
        assert_int_equal(lrc, 0);
        char tip[41];
        int rc;
        char *out = run(&rc, "git -C '%s' rev-parse main", path);
        memcpy(tip, out, 40);
        tip[40] = '\0';
        free(out);
        fwrel_repo_tag *tags = NULL;
        size_t n = 0, tip_tagged = 0;
        assert_int_equal(fwrel_repo_tags(&tags, &n, r, NULL), 0);
        for (size_t k = 0; k < n; k++) {
            fwrel_pgp_result signer;
            char commit[41];
            uint8_t *data = NULL;
            size_t len = 0;
            char fpath[128];
            assert_int_equal(fwrel_repo_tag_verify(&signer, commit, r, tags[k].name, home), 0);
            snprintf(fpath, sizeof(fpath), "%s/bundle.fwb", tags[k].name);
            assert_int_equal(fwrel_repo_read_file(&data, &len, r, tags[k].name, fpath, 1024), 0);
            free(data);
            tip_tagged += strcmp(commit, tip) == 0;
        }
        assert_int_equal(tip_tagged, 1);
        /* The tag of the newest release is the last by time and points to the tip. */
        assert_string_equal(tags[n - 1].target, tip);
        fwrel_repo_tags_free(tags, n);
        fwrel_repo_free(r);
    }
    /* The delays cover both outcomes. */
    assert_true(completed > 0);
    assert_true(killed > 0);
    int rc;
    char *out = run(&rc, "git -C '%s' fsck --strict --no-dangling 2>&1", path);
    assert_int_equal(rc, 0);
    free(out);
}

/* The branch moved by someone else while a release waits for its passphrase: the branch
 * compare-and-swap refuses, no tag is created and the other move is kept. */
static void test_concurrent_branch_move(void **state)
{
    (void)state;
    char c1[41];
    int st;
    const char *path = new_repo_path();
    fwrel_repo *r = repo_with_release(path, c1);
    fwrel_repo_free(r);
    static const uint8_t marker[] = "concurrent move marker blob\n";
    int pass[2];
    assert_int_equal(pipe(pass), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fwrel_repo *c = NULL;
        close(pass[1]);
        fwrel_pass_src src = {.kind = FWREL_PASS_FD, .fd = pass[0]};
        fwrel_repo_file f[] = {{"prod/stable/v1.1.0/bundle.fwb", marker, sizeof(marker) - 1}};
        fwrel_repo_release_opts o = opts(f, 1, "prod/stable/v1.1.0", fb, &src, 1700003600);
        if (fwrel_repo_open(&c, path, 0) != 0 || fwrel_repo_lock(c, 0) != 0)
            _exit(10);
        int rc = fwrel_repo_release(c, &o, NULL, NULL);
        if (rc != FWREL_EVERIFY ||
            strcmp(fwrel_error_last()->message, "the release branch moved during the release") != 0)
            _exit(11);
        _exit(0);
    }
    close(pass[0]);
    /* Once the release's blob exists, it has read the branch and waits for the passphrase. */
    char *blob = run(&st, "printf 'concurrent move marker blob\\n' | git hash-object --stdin");
    assert_int_equal(st, 0);
    blob[40] = '\0';
    for (int i = 0; i < 500; i++) {
        char *o = run(&st, "git -C '%s' cat-file -e %s 2>/dev/null", path, blob);
        free(o);
        if (st == 0)
            break;
        usleep(20 * 1000);
    }
    assert_int_equal(st, 0);
    char *out = run(&st,
                    "cd '%s' && t=$(git rev-parse main^{tree}) && "
                    "x=$(git -c user.name=x -c user.email=x@y commit-tree -p main -m other $t) && "
                    "git update-ref refs/heads/main $x && echo $x",
                    path);
    assert_int_equal(st, 0);
    assert_int_equal(write(pass[1], "correct horse\n", 14), 14);
    close(pass[1]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    char *tip = run(&st, "git -C '%s' rev-parse main", path);
    assert_string_equal(tip, out);
    free(tip);
    char *tags = run(&st, "git -C '%s' tag -l", path);
    assert_string_equal(tags, "prod/stable/v1.0.0\n");
    free(tags);
    free(out);
    free(blob);
}

static void test_repair_refuses_foreign_state(void **state)
{
    (void)state;
    char c1[41];
    int st;
    const char *path = new_repo_path();
    fwrel_repo *r = repo_with_release(path, c1);
    fwrel_repo_free(r);
    /* Two commits made behind fwrel's back: not a state a release leaves. */
    char *out = run(&st,
                    "cd '%s' && t=$(git rev-parse main^{tree}) && "
                    "a=$(git -c user.name=x -c user.email=x@y commit-tree -p main -m one $t) && "
                    "b=$(git -c user.name=x -c user.email=x@y commit-tree -p $a -m two $t) && "
                    "git update-ref refs/heads/main $b",
                    path);
    assert_int_equal(st, 0);
    free(out);
    char *tip = run(&st, "git -C '%s' rev-parse main", path);
    char want[256];
    snprintf(want, sizeof(want),
             "release branch tip %.40s is neither a tagged release nor one commit ahead of one; "
             "repair by hand (docs/repo.md)",
             tip);
    assert_int_equal(fwrel_repo_open(&r, path, 0), 0);
    expect_error(fwrel_repo_lock(r, 0), FWREL_EVERIFY, want);
    /* The lock was released: another process can take it. */
    fwrel_repo_release_opts o = opts(files2, 1, "prod/stable/v1.1.0", fa, NULL, 1700003600);
    expect_error(fwrel_repo_release(r, &o, NULL, NULL), FWREL_EUSAGE,
                 "the release lock is not held");
    free(tip);
    fwrel_repo_free(r);
}

/* A deleted newest tag is not a killed release: the lock leaves its commit on the branch (the
 * journal names only a release in its window); a repair signs its tag again or drops it. */
static void test_deleted_tag_is_not_undone(void **state)
{
    (void)state;
    char c1[41], c2[41], tagid[41];
    int st;
    const char *path = new_repo_path();
    fwrel_repo *r = repo_with_release(path, c1);
    fwrel_repo_release_opts o = opts(files2, 1, "prod/stable/v1.1.0", fa, NULL, 1700003600);
    assert_int_equal(fwrel_repo_release(r, &o, c2, NULL), 0);
    char jpath[4200];
    snprintf(jpath, sizeof(jpath), "%s/%s", path, FWREL_REPO_JOURNAL_FILE);
    assert_int_equal(access(jpath, F_OK), -1); /* a complete release leaves no journal */
    fwrel_repo_unlock(r);
    char *out = run(&st, "git -C '%s' tag -d prod/stable/v1.1.0", path);
    assert_int_equal(st, 0);
    free(out);
    assert_int_equal(fwrel_repo_lock(r, 0), 0);
    assert_int_equal(fwrel_repo_repaired(r), 0);
    char *tip = run(&st, "git -C '%s' rev-parse main", path);
    assert_int_equal(strncmp(tip, c2, 40), 0);
    free(tip);
    /* The branch, tip first, as the history reads it. */
    fwrel_repo_commit *list = NULL;
    size_t n = 0;
    assert_int_equal(fwrel_repo_branch_commits(&list, &n, r, 100), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, c2);
    assert_string_equal(list[0].parent, c1);
    assert_string_equal(list[1].id, c1);
    assert_string_equal(list[1].parent, "");
    assert_string_equal(list[0].subject, "release prod/stable v1.0.0");
    free(list);
    expect_error(fwrel_repo_branch_commits(&list, &n, r, 1), FWREL_EFORMAT,
                 "the release branch has more than 1 commits");
    uint8_t *data = NULL;
    size_t len = 0;
    assert_int_equal(
        fwrel_repo_commit_read_file(&data, &len, r, c2, "prod/stable/v1.1.0/bundle.fwb", 1024), 0);
    assert_int_equal(len, sizeof(bundle2) - 1);
    assert_memory_equal(data, bundle2, len);
    free(data);
    /* Dropping a commit that is not the tip is refused; the tag signed again verifies. */
    char want[200];
    snprintf(want, sizeof(want), "commit %s is not the release branch's tip", c1);
    expect_error(fwrel_repo_drop_tip(r, c1), FWREL_EVERIFY, want);
    o.tag_message = "prod stable 1.1.0";
    assert_int_equal(fwrel_repo_retag(r, c2, &o, tagid), 0);
    fwrel_pgp_result who;
    char commit[41];
    assert_int_equal(fwrel_repo_tag_verify(&who, commit, r, "prod/stable/v1.1.0", home), 0);
    assert_string_equal(commit, c2);
    expect_error(fwrel_repo_retag(r, c2, &o, NULL), FWREL_EVERIFY,
                 "tag prod/stable/v1.1.0 already exists");
    fwrel_repo_free(r);

    /* Deleted again and dropped instead: the branch is back at the first release. */
    out = run(&st, "git -C '%s' tag -d prod/stable/v1.1.0", path);
    assert_int_equal(st, 0);
    free(out);
    assert_int_equal(fwrel_repo_open(&r, path, 0), 0);
    expect_error(fwrel_repo_drop_tip(r, c2), FWREL_EUSAGE, "the release lock is not held");
    assert_int_equal(fwrel_repo_lock(r, 0), 0);
    assert_int_equal(fwrel_repo_repaired(r), 0);
    assert_int_equal(fwrel_repo_drop_tip(r, c2), 0);
    tip = run(&st, "git -C '%s' rev-parse main", path);
    assert_int_equal(strncmp(tip, c1, 40), 0);
    free(tip);
    fwrel_repo_free(r);
}

static void test_lock(void **state)
{
    (void)state;
    const char *path = new_repo_path();
    fwrel_repo *r = NULL;
    int st;
    assert_int_equal(fwrel_repo_open(&r, path, 1), 0);
    fwrel_repo_release_opts o = opts(files1, 2, "prod/stable/v1.0.0", fa, NULL, 1700000000);
    expect_error(fwrel_repo_release(r, &o, NULL, NULL), FWREL_EUSAGE,
                 "the release lock is not held");
    assert_int_equal(fwrel_repo_lock(r, 0), 0);
    char want[128];
    snprintf(want, sizeof(want), "another release is running (lock held by pid %ld)",
             (long)getpid());
    /* A second releaser in another process is refused at once, and after a timeout. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fwrel_repo *c = NULL;
        struct timespec t0, t1;
        if (fwrel_repo_open(&c, path, 0) != 0)
            _exit(10);
        if (fwrel_repo_lock(c, 0) != FWREL_EIO || strcmp(fwrel_error_last()->message, want) != 0)
            _exit(11);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (fwrel_repo_lock(c, 300) != FWREL_EIO || strcmp(fwrel_error_last()->message, want) != 0)
            _exit(12);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms < 300 || ms > 5000)
            _exit(13);
        if (fwrel_repo_release(c, &o, NULL, NULL) != FWREL_EUSAGE)
            _exit(14);
        fwrel_repo_free(c);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    char *out = run(&st, "cat '%s/fwrel-release.lock'", path);
    snprintf(want, sizeof(want), "%ld\n", (long)getpid());
    assert_string_equal(out, want);
    free(out);

    /* Released: a waiting releaser gets it once the holder unlocks. */
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fwrel_repo *c = NULL;
        char b;
        close(go[1]);
        /* The inherited copy of the parent's lock descriptor would keep the flock alive. */
        fwrel_repo_free(r);
        if (fwrel_repo_open(&c, path, 0) != 0 || read(go[0], &b, 1) != 1)
            _exit(10);
        if (fwrel_repo_lock(c, 10000) != 0)
            _exit(11);
        fwrel_repo_release_opts oc = opts(files1, 2, "prod/stable/v1.0.0", fa, NULL, 1700000000);
        _exit(fwrel_repo_release(c, &oc, NULL, NULL) == 0 ? 0 : 12);
    }
    close(go[0]);
    assert_int_equal(write(go[1], "x", 1), 1);
    usleep(200 * 1000);
    fwrel_repo_unlock(r);
    close(go[1]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* The child's release is visible and a killed holder's lock is free again. */
    assert_int_equal(fwrel_repo_lock(r, 0), 0);
    fwrel_pgp_result signer;
    assert_int_equal(fwrel_repo_tag_verify(&signer, NULL, r, "prod/stable/v1.0.0", home), 0);
    fwrel_repo_unlock(r);

    /* A holder that has not written its pid yet. */
    char lockpath[4200];
    snprintf(lockpath, sizeof(lockpath), "%s/fwrel-release.lock", path);
    int fd = open(lockpath, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    expect_error(fwrel_repo_lock(r, 0), FWREL_EIO,
                 "another release is running (lock held by another process)");
    close(fd);

    /* Stale git lock files of a killed ref update are removed under the lock. */
    char stale[4200];
    snprintf(stale, sizeof(stale), "%s/refs/heads/main.lock", path);
    fd = open(stale, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    close(fd);
    snprintf(stale, sizeof(stale), "%s/refs/tags/prod/stable/v1.1.0.lock", path);
    fd = open(stale, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(fwrel_repo_lock(r, 0), 0);
    assert_int_equal(access(stale, F_OK), -1);
    fwrel_repo_release_opts o2 = opts(files2, 1, "prod/stable/v1.1.0", fa, NULL, 1700003600);
    assert_int_equal(fwrel_repo_release(r, &o2, NULL, NULL), 0);
    fwrel_repo_free(r);
}

/* Replace the loose object file of id with the bytes of the loose object file of src. */
static void overwrite_object(const char *repo, const char *id, const char *src)
{
    char p[4200], q[4200];
    size_t n = 0;
    snprintf(p, sizeof(p), "%s/objects/%.2s/%s", repo, id, id + 2);
    snprintf(q, sizeof(q), "%s/objects/%.2s/%s", repo, src, src + 2);
    uint8_t *bytes = testutil_read(q, &n);
    assert_non_null(bytes);
    assert_int_equal(chmod(p, 0644), 0);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
    free(bytes);
}

static char *git_line(const char *fmt, const char *a, const char *b)
{
    int st;
    char *out = run(&st, fmt, a, b);
    assert_int_equal(st, 0);
    char *nl = strchr(out, '\n');
    if (nl != NULL)
        *nl = '\0';
    return out;
}

static void test_tampering_detected(void **state)
{
    (void)state;
    char c1[41], want[256];
    int st;
    fwrel_pgp_result signer;
    const char *tag = "prod/stable/v1.0.0";

    /* A rewritten blob. */
    const char *path = new_repo_path();
    fwrel_repo *r = repo_with_release(path, c1);
    char *blob = git_line("git -C '%s' rev-parse '%s:prod/stable/v1.0.0/bundle.fwb'", path, tag);
    char *audit = git_line("git -C '%s' rev-parse '%s:prod/stable/v1.0.0/audit.json'", path, tag);
    overwrite_object(path, blob, audit);
    snprintf(want, sizeof(want), "object %s is corrupt", blob);
    expect_error(fwrel_repo_tag_verify(&signer, NULL, r, tag, home), FWREL_EVERIFY, want);
    assert_string_equal(signer.fpr, "");
    uint8_t *data = NULL;
    size_t len = 0;
    expect_error(fwrel_repo_read_file(&data, &len, r, tag, "prod/stable/v1.0.0/bundle.fwb", 1024),
                 FWREL_EVERIFY, want);
    /* The untouched file still reads. */
    assert_int_equal(
        fwrel_repo_read_file(&data, &len, r, tag, "prod/stable/v1.0.0/audit.json", 1024), 0);
    free(data);
    free(blob);
    free(audit);
    fwrel_repo_free(r);

    /* A rewritten commit (the bytes of another commit). */
    path = new_repo_path();
    r = repo_with_release(path, c1);
    fwrel_repo_release_opts o = opts(files2, 1, "prod/stable/v1.1.0", fa, NULL, 1700003600);
    char c2[41];
    assert_int_equal(fwrel_repo_release(r, &o, c2, NULL), 0);
    overwrite_object(path, c1, c2);
    snprintf(want, sizeof(want), "object %s is corrupt", c1);
    assert_int_equal(fwrel_repo_tag_verify(&signer, NULL, r, tag, home), FWREL_EVERIFY);
    assert_int_equal(fwrel_repo_tag_verify(&signer, NULL, r, "prod/stable/v1.1.0", home), 0);
    fwrel_repo_free(r);

    /* A tag object with an edited message, written as a valid object: bad signature, for git
     * too. Another ref name pointing to a genuine tag object: refused by name. */
    path = new_repo_path();
    r = repo_with_release(path, c1);
    uint8_t *raw = NULL;
    assert_int_equal(fwrel_repo_tag_raw(&raw, &len, r, tag), 0);
    uint8_t *edited = malloc(len);
    assert_non_null(edited);
    memcpy(edited, raw, len);
    uint8_t *m = (uint8_t *)strstr((char *)edited, "prod stable 1.0.0");
    assert_non_null(m);
    m[16] = '1'; /* "1.0.1" */
    git_repository *g = NULL;
    git_odb *odb = NULL;
    git_oid id;
    git_reference *ref = NULL;
    assert_int_equal(git_repository_open(&g, path), 0);
    assert_int_equal(git_repository_odb(&odb, g), 0);
    assert_int_equal(git_odb_write(&id, odb, edited, len, GIT_OBJECT_TAG), 0);
    assert_int_equal(git_reference_create(&ref, g, "refs/tags/prod/stable/v1.0.0", &id, 1, NULL),
                     0);
    git_reference_free(ref);
    expect_error(fwrel_repo_tag_verify(&signer, NULL, r, tag, home), FWREL_EVERIFY,
                 "tag prod/stable/v1.0.0: bad signature");
    char *out = run(&st, "GNUPGHOME='%s' git -C '%s' verify-tag %s 2>/dev/null", home, path, tag);
    assert_int_not_equal(st, 0);
    free(out);
    assert_int_equal(git_odb_write(&id, odb, raw, len, GIT_OBJECT_TAG), 0);
    assert_int_equal(git_reference_create(&ref, g, "refs/tags/prod/stable/v9.9.9", &id, 1, NULL),
                     0);
    git_reference_free(ref);
    expect_error(fwrel_repo_tag_verify(&signer, NULL, r, "prod/stable/v9.9.9", home), FWREL_EVERIFY,
                 "tag object is named prod/stable/v1.0.0, not prod/stable/v9.9.9");
    /* A lightweight tag and a tag object overwritten by other bytes. */
    git_oid cid;
    assert_int_equal(git_oid_fromstr(&cid, c1), 0);
    assert_int_equal(git_reference_create(&ref, g, "refs/tags/light", &cid, 1, NULL), 0);
    git_reference_free(ref);
    expect_error(fwrel_repo_tag_verify(&signer, NULL, r, "light", home), FWREL_EVERIFY,
                 "tag light is not annotated");
    char idhex[41];
    git_oid_tostr(idhex, sizeof(idhex), &id);
    overwrite_object(path, idhex, c1);
    snprintf(want, sizeof(want), "object %s is corrupt", idhex);
    expect_error(fwrel_repo_tag_verify(&signer, NULL, r, "prod/stable/v9.9.9", home), FWREL_EVERIFY,
                 want);
    /* Unknown signer. */
    path = new_repo_path();
    fwrel_repo *r2 = repo_with_release(path, c1);
    snprintf(want, sizeof(want), "tag %s: no public key for %s", tag, fa);
    expect_error(fwrel_repo_tag_verify(&signer, NULL, r2, tag, other), FWREL_EVERIFY, want);
    fwrel_repo_free(r2);
    git_odb_free(odb);
    git_repository_free(g);
    free(edited);
    free(raw);
    fwrel_repo_free(r);
}

/* The releases of r by its tags (at most 8, in tag order), their audit log audit/log.jsonl, each
 * with its report; and the repository's report, after fwrel_repo_branch_audit(). */
struct baudit {
    fwrel_report *rep;
    fwrel_repo_branch_release rel[8];
    char tag[8][256], commit[8][41];
    size_t n;
};

static int branch_audit(struct baudit *b, fwrel_repo *r, size_t max)
{
    fwrel_repo_tag *tags = NULL;
    size_t ntags = 0;
    memset(b, 0, sizeof(*b));
    assert_int_equal(fwrel_repo_tags(&tags, &ntags, r, NULL), 0);
    assert_true(ntags <= 8);
    assert_int_equal(fwrel_report_new(&b->rep), 0);
    for (size_t i = 0; i < ntags; i++) {
        snprintf(b->tag[i], sizeof(b->tag[i]), "%s", tags[i].name);
        snprintf(b->commit[i], sizeof(b->commit[i]), "%s", tags[i].target);
        b->rel[i].tag = b->tag[i];
        b->rel[i].commit = b->commit[i];
        b->rel[i].audit_path = "audit/log.jsonl";
        b->rel[i].pos = 99;
        assert_int_equal(fwrel_report_new(&b->rel[i].report), 0);
    }
    b->n = ntags;
    int rc = fwrel_repo_branch_audit(b->rep, b->rel, b->n, r, tags, ntags, max);
    fwrel_repo_tags_free(tags, ntags);
    return rc;
}

static void baudit_free(struct baudit *b)
{
    fwrel_report_free(b->rep);
    for (size_t i = 0; i < b->n; i++)
        fwrel_report_free(b->rel[i].report);
}

/* Step k of report: its verdict and detail. */
static void expect_step(const fwrel_report *rep, size_t k, const char *name, int verdict,
                        const char *detail)
{
    assert_true(k < fwrel_report_count(rep));
    const fwrel_step *s = fwrel_report_step(rep, k);
    assert_string_equal(s->name, name);
    assert_string_equal(s->detail, detail);
    assert_int_equal(s->verdict, verdict);
}

/* A release of tag with the given files under <tag>/ (NULL-terminated) and an update of the audit
 * log; extra: one more file outside, or NULL. */
static void brelease(fwrel_repo *r, const char *tag, const char *const *names, const char *extra,
                     int64_t t, char commit[41])
{
    static const uint8_t data[] = "bytes\n";
    char paths[4][300], log[64];
    fwrel_repo_file f[5];
    size_t n = 0;
    for (; names[n] != NULL; n++) {
        snprintf(paths[n], sizeof(paths[n]), "%s/%s", tag, names[n]);
        f[n] = (fwrel_repo_file){paths[n], data, sizeof(data) - 1};
    }
    snprintf(log, sizeof(log), "log at %s\n", tag);
    f[n++] = (fwrel_repo_file){"audit/log.jsonl", (const uint8_t *)log, strlen(log)};
    if (extra != NULL)
        f[n++] = (fwrel_repo_file){extra, data, sizeof(data) - 1};
    fwrel_repo_release_opts o = opts(f, n, tag, fa, NULL, t);
    assert_int_equal(fwrel_repo_release(r, &o, commit, NULL), 0);
}

static int under_other(const char *path, void *arg)
{
    return strncmp(path, (const char *)arg, strlen((const char *)arg)) == 0;
}

/* The branch audit: the repository's steps (untagged commits, merges), each release's (on the
 * branch, alone there, what its commit changes, what its directory holds), the cap on the walk;
 * and which paths a commit writes. */
static void test_branch_audit(void **state)
{
    (void)state;
    static const char *const both[] = {"bundle.fwb", "release.json", NULL};
    static const char *const bundle_only[] = {"bundle.fwb", NULL};
    char c1[41], c2[41], c3[41], want[512];
    int st, hit = -1;
    struct baudit b;
    const char *path = new_repo_path();
    fwrel_repo *r = NULL;

    /* An empty repository: nothing wrong. */
    assert_int_equal(fwrel_repo_open(&r, path, 1), 0);
    assert_int_equal(branch_audit(&b, r, 100), 0);
    assert_int_equal(fwrel_report_count(b.rep), 1);
    expect_step(b.rep, 0, "repo.branch", FWREL_PASS, "0 commits, linear, each one release tag");
    baudit_free(&b);

    /* Two good releases, and one that writes outside its directory and lacks release.json. */
    assert_int_equal(fwrel_repo_lock(r, 0), 0);
    brelease(r, "prod/stable/v1.0.0", both, NULL, 1700000000, c1);
    brelease(r, "prod/stable/v1.1.0", both, NULL, 1700000100, c2);
    brelease(r, "prod/stable/v1.2.0", bundle_only, "other/x", 1700000200, c3);
    assert_int_equal(branch_audit(&b, r, 100), 0);
    assert_int_equal(fwrel_report_count(b.rep), 1);
    expect_step(b.rep, 0, "repo.branch", FWREL_PASS, "3 commits, linear, each one release tag");
    assert_int_equal(b.n, 3);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(b.rel[i].pos, i + 1);
        snprintf(want, sizeof(want),
                 "commit %zu of 3 on the release branch; adds 2 files under its directory and "
                 "updates the audit log",
                 i + 1);
        expect_step(b.rel[i].report, 0, "repo.branch", FWREL_PASS, want);
        expect_step(b.rel[i].report, 1, "release.dir", FWREL_PASS,
                    "bundle.fwb and release.json, plain files (100644), nothing else; the audit "
                    "log a plain file");
    }
    assert_int_equal(b.rel[2].pos, 3);
    expect_step(b.rel[2].report, 0, "repo.branch", FWREL_FAIL,
                "the commit adds other/x, outside its release");
    expect_step(b.rel[2].report, 1, "release.dir", FWREL_FAIL,
                "prod/stable/v1.2.0/release.json is missing");
    baudit_free(&b);

    /* Which paths a commit writes: against its parent, a root against the empty tree. */
    assert_int_equal(fwrel_repo_commit_writes(&hit, r, c3, under_other, "other/"), 0);
    assert_int_equal(hit, 1);
    assert_int_equal(fwrel_repo_commit_writes(&hit, r, c2, under_other, "other/"), 0);
    assert_int_equal(hit, 0);
    assert_int_equal(fwrel_repo_commit_writes(&hit, r, c2, under_other, "prod/stable/v1.0.0/"), 0);
    assert_int_equal(hit, 0);
    assert_int_equal(fwrel_repo_commit_writes(&hit, r, c1, under_other, "prod/stable/v1.0.0/"), 0);
    assert_int_equal(hit, 1);
    assert_int_equal(fwrel_repo_commit_writes(&hit, r, "0123", under_other, "x"), FWREL_EVERIFY);
    assert_int_equal(
        strncmp(fwrel_error_last()->message, "the commit cannot be compared with its parent: ", 47),
        0);

    /* The walk's cap (as the auditor has always counted it: the walk stops at max + 2). */
    assert_int_equal(branch_audit(&b, r, 2), 0);
    baudit_free(&b);
    expect_error(branch_audit(&b, r, 1), FWREL_EFORMAT,
                 "the release branch has more than 1 commits");
    baudit_free(&b);

    /* A tag on a commit beside the branch (signed by git itself), a lightweight tag on a release's
     * commit: neither verifies as a release (fwrel_repo_tag_verify()), and the branch audit says
     * where they are. */
    char *out = run(&st,
                    "cd '%s' && t=$(git rev-parse main^{tree}) && "
                    "x=$(git -c user.name=x -c user.email=x@y commit-tree -p main -m side $t) && "
                    "GNUPGHOME='%s' git -c user.name=x -c user.email=x@y tag -s -u %s -m side "
                    "side $x && git tag light main~1",
                    path, home, fa);
    assert_int_equal(st, 0);
    free(out);
    fwrel_pgp_result signer;
    expect_error(fwrel_repo_tag_verify(&signer, NULL, r, "light", home), FWREL_EVERIFY,
                 "tag light is not annotated");
    assert_int_equal(branch_audit(&b, r, 100), 0);
    expect_step(b.rep, 0, "repo.branch", FWREL_PASS, "3 commits, linear, each one release tag");
    for (size_t i = 0; i < b.n; i++) {
        const fwrel_step *s = fwrel_report_step(b.rel[i].report, 0);
        if (strcmp(b.tag[i], "side") == 0) {
            snprintf(want, sizeof(want), "commit %.12s is not on the release branch", b.commit[i]);
            expect_step(b.rel[i].report, 0, "repo.branch", FWREL_FAIL, want);
            expect_step(b.rel[i].report, 1, "release.dir", FWREL_FAIL,
                        "side/ is not a directory of the tagged tree");
            assert_int_equal(b.rel[i].pos, 0);
        } else if (strcmp(b.tag[i], "light") == 0 || strcmp(b.tag[i], "prod/stable/v1.1.0") == 0) {
            snprintf(want, sizeof(want), "commit %.12s carries 2 release tags", c2);
            assert_int_equal(s->verdict, FWREL_FAIL);
            assert_int_equal(strncmp(s->detail, want, strlen(want)), 0);
            assert_int_equal(b.rel[i].pos, 2);
        }
    }
    baudit_free(&b);

    /* A deleted release tag leaves its commit untagged; a merge commit on the branch. */
    out = run(&st,
              "cd '%s' && git tag -d side light prod/stable/v1.0.0 && "
              "m=$(git -c user.name=x -c user.email=x@y commit-tree -p main -p main~1 -m merge "
              "main^{tree}) && git update-ref refs/heads/main $m",
              path);
    assert_int_equal(st, 0);
    free(out);
    assert_int_equal(branch_audit(&b, r, 100), 0);
    assert_int_equal(fwrel_report_count(b.rep), 2);
    const fwrel_step *s0 = fwrel_report_step(b.rep, 0);
    assert_int_equal(s0->verdict, FWREL_FAIL);
    assert_int_equal(
        strncmp(s0->detail, "2 commits of the release branch have no release tag (", 53), 0);
    expect_step(b.rep, 1, "repo.branch", FWREL_FAIL, "the release branch has 1 merge commit");
    baudit_free(&b);
    fwrel_repo_free(r);

    /* A rewritten blob of a release fails its tag's verification. */
    path = new_repo_path();
    r = repo_with_release(path, c1);
    fwrel_repo_release_opts o = opts(files2, 1, "prod/stable/v1.1.0", fa, NULL, 1700003600);
    assert_int_equal(fwrel_repo_release(r, &o, c2, NULL), 0);
    char *blob = git_line("git -C '%s' rev-parse '%s:prod/stable/v1.0.0/audit.json'", path,
                          "prod/stable/v1.0.0");
    char *other_blob = git_line("git -C '%s' rev-parse '%s:prod/stable/v1.1.0/bundle.fwb'", path,
                                "prod/stable/v1.1.0");
    overwrite_object(path, blob, other_blob);
    snprintf(want, sizeof(want), "object %s is corrupt", blob);
    expect_error(fwrel_repo_tag_verify(&signer, NULL, r, "prod/stable/v1.0.0", home), FWREL_EVERIFY,
                 want);
    free(blob);
    free(other_blob);
    fwrel_repo_free(r);
}

static void test_refusals(void **state)
{
    (void)state;
    const char *path = new_repo_path();
    fwrel_repo *r = NULL;
    int st;
    char c1[41];
    r = repo_with_release(path, c1);
    char *before = refs(path);
    struct {
        const char *path, *tag, *tmsg, *msg;
    } bad[] = {
        {"../x", "t1", "m", "file 1: invalid path in the repository"},
        {".git/config", "t1", "m", "file 1: invalid path in the repository"},
        {"a//b", "t1", "m", "file 1: invalid path in the repository"},
        {"a/b/", "t1", "m", "file 1: invalid path in the repository"},
        {"/abs", "t1", "m", "file 1: invalid path in the repository"},
        {"a b", "t1", "m", "file 1: invalid path in the repository"},
        {"ok", "bad..name", "m", "invalid tag name"},
        {"ok", "with space", "m", "invalid tag name"},
        {"ok", "x.lock", "m", "invalid tag name"},
        {"ok", "t1", "text\n-----BEGIN PGP SIGNATURE-----\n", "invalid tag message"},
        {"ok", "t1", "", "invalid tag message"},
        {"prod/stable/v1.0.0/bundle.fwb/inner", "t1", "m",
         "file prod/stable/v1.0.0/bundle.fwb/inner: a file and a directory of the same name"},
        {"prod/stable", "t1", "m", "file prod/stable: a file and a directory of the same name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fwrel_repo_file f[] = {{bad[i].path, bundle1, 3}};
        fwrel_repo_release_opts o = opts(f, 1, bad[i].tag, fa, NULL, 1700000000);
        o.tag_message = bad[i].tmsg;
        expect_error(fwrel_repo_release(r, &o, NULL, NULL), FWREL_EUSAGE, bad[i].msg);
    }
    fwrel_repo_file dup[] = {{"a", bundle1, 1}, {"a", bundle1, 2}};
    fwrel_repo_release_opts o = opts(dup, 2, "t1", fa, NULL, 1700000000);
    expect_error(fwrel_repo_release(r, &o, NULL, NULL), FWREL_EUSAGE, "file a given twice");
    o = opts(files2, 1, "t1", fa, NULL, 1700000000);
    o.who.email = "a<b";
    expect_error(fwrel_repo_release(r, &o, NULL, NULL), FWREL_EUSAGE, "invalid release identity");
    /* Signing failures leave the refs alone too. */
    o = opts(files2, 1, "t1", fb, NULL, 1700000000);
    char want[128];
    expect_error(fwrel_repo_release(r, &o, NULL, NULL), FWREL_EKEY,
                 "protected: a passphrase is needed (--pgp-passphrase-file, --pgp-passphrase-fd, "
                 "a terminal or gpg-agent)");
    /* The error names the key by fingerprint (and user id), not the file being signed. */
    snprintf(want, sizeof(want), "OpenPGP key %s (", fb);
    assert_int_equal(fwrel_error_last()->about, FWREL_ABOUT_KEY);
    assert_true(strncmp(fwrel_error_last()->path, want, strlen(want)) == 0);
    char *after = refs(path);
    assert_string_equal(before, after);
    free(before);
    free(after);
    fwrel_repo_free(r);

    /* Not a bare repository; nothing there without create; a non-empty directory. */
    char p[4200];
    snprintf(p, sizeof(p), "%s/worktree", dir);
    char *out = run(&st, "git init -q '%s'", p);
    assert_int_equal(st, 0);
    free(out);
    expect_error(fwrel_repo_open(&r, p, 1), FWREL_EFORMAT, "not a bare git repository");
    assert_null(r);
    snprintf(p, sizeof(p), "%s/missing", dir);
    assert_int_equal(fwrel_repo_open(&r, p, 0), FWREL_EIO);
    assert_int_equal(access(p, F_OK), -1);
    snprintf(p, sizeof(p), "%s/gnupg", dir);
    expect_error(fwrel_repo_open(&r, p, 1), FWREL_EFORMAT, "not a bare git repository");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_verifies_with_git),
        cmocka_unit_test(test_second_release_keeps_files),
        cmocka_unit_test(test_injected_failures),
        cmocka_unit_test(test_sigkill_at_each_step),
        cmocka_unit_test(test_sigkill_at_random),
        cmocka_unit_test(test_concurrent_branch_move),
        cmocka_unit_test(test_repair_refuses_foreign_state),
        cmocka_unit_test(test_deleted_tag_is_not_undone),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_tampering_detected),
        cmocka_unit_test(test_branch_audit),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, fixture_teardown);
}
