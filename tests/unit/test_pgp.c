/* test_pgp.c - pgp: detached OpenPGP signatures with real GnuPG homes and keys made by gpg:
 * round trips with and without a passphrase (loopback), wrong and missing passphrases, bad
 * signatures, unknown, missing, expired and revoked keys, subkeys mapped to their primary, and
 * m-of-n counting of pinned approvers, and two homes used in turn and from two threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "fwrel/pgp.h"
#include "gpghome.h"
#include "testutil.h"

static const char *dir;
static char *home;  /* all secret keys */
static char *other; /* only B's public key */
static char fa[41], fb[41], fd[41], fd_sub[41], fe[41], fx[41], fr[41];
static uint8_t *sig_x; /* made by X before it expired */
static size_t sig_x_len;
static const uint8_t msg[] = "release bundle v1.2.3\n";
static const char *passfile;

static int setup(void **state)
{
    (void)state;
    dir = fixture_gpg_homes(&home, &other);
    if (gpghome_genkey(home, "Alice <alice@example.org>", NULL, "never", fa) != 0 ||
        gpghome_genkey(home, "Bob <bob@example.org>", "correct horse", "never", fb) != 0 ||
        gpghome_genkey(home, "Dora <dora@example.org>", NULL, "never", fd) != 0 ||
        gpghome_add_subkey(home, fd, NULL, fd_sub) != 0 ||
        gpghome_genkey(home, "Eve <eve@example.org>", NULL, "never", fe) != 0 ||
        gpghome_genkey(home, "Rex <rex@example.org>", NULL, "never", fr) != 0 ||
        gpghome_copy_public(home, fb, other) != 0)
        return -1;
    /* X was made two days ago and expired one day later; it signed msg while it was valid (gpg
     * with a faked clock), and is refused now. */
    char msgpath[4200], sigpath[4200];
    long long made = (long long)time(NULL) - 2 * 86400;
    snprintf(msgpath, sizeof(msgpath), "%s/msg", dir);
    snprintf(sigpath, sizeof(sigpath), "%s/msg.x.asc", dir);
    FILE *mf = fopen(msgpath, "wb");
    if (mf == NULL || fwrite(msg, 1, sizeof(msg), mf) != sizeof(msg) || fclose(mf) != 0)
        return -1;
    if (gpghome_genkey_at(home, "Xena <xena@example.org>", NULL, "1d", made, fx) != 0 ||
        gpghome_sign_at(home, fx, made + 3600, msgpath, sigpath) != 0 ||
        (sig_x = testutil_read(sigpath, &sig_x_len)) == NULL)
        return -1;
    fixture_defer(free, sig_x);
    if ((passfile = fixture_secret(dir, "pass", "correct horse\n")) == NULL)
        return -1;
    return 0;
}

static void expect_error(int rc, int code, const char *message)
{
    assert_int_equal(rc, code);
    assert_string_equal(fwrel_error_last()->message, message);
}

static void test_round_trip_no_passphrase(void **state)
{
    (void)state;
    uint8_t *sig = NULL;
    size_t n = 0;
    fwrel_pgp_result r;
    assert_int_equal(fwrel_pgp_sign_detached(&sig, &n, home, fa, msg, sizeof(msg), NULL), 0);
    assert_true(n > 0 && n <= FWREL_PGP_SIG_MAX);
    assert_memory_equal(sig, "-----BEGIN PGP SIGNATURE-----", 29);
    assert_int_equal(fwrel_pgp_verify_detached(&r, home, msg, sizeof(msg), sig, n), 0);
    assert_string_equal(r.fpr, fa);
    assert_string_equal(r.sig_fpr, fa);
    assert_true(r.created > time(NULL) - 300 && r.created <= time(NULL));
    /* The same signature checked by gpg itself. */
    char cmd[8300];
    char sigpath[4096], datapath[4096];
    snprintf(sigpath, sizeof(sigpath), "%s/a.asc", dir);
    snprintf(datapath, sizeof(datapath), "%s/a.txt", dir);
    FILE *f = fopen(sigpath, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(sig, 1, n, f), n);
    fclose(f);
    f = fopen(datapath, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(msg, 1, sizeof(msg), f), sizeof(msg));
    fclose(f);
    snprintf(cmd, sizeof(cmd), "gpg --batch --verify \"%s\" \"%s\"", sigpath, datapath);
    assert_int_equal(gpghome_sh(home, cmd), 0);
    /* Lower-case fingerprints select the same key. */
    char lower[41];
    for (int i = 0; i < 41; i++)
        lower[i] = (char)(fa[i] >= 'A' && fa[i] <= 'F' ? fa[i] + 32 : fa[i]);
    free(sig);
    sig = NULL;
    assert_int_equal(fwrel_pgp_sign_detached(&sig, &n, home, lower, msg, sizeof(msg), NULL), 0);
    assert_int_equal(fwrel_pgp_verify_detached(&r, home, msg, sizeof(msg), sig, n), 0);
    assert_string_equal(r.fpr, fa);
    free(sig);
}

static void test_round_trip_passphrase(void **state)
{
    (void)state;
    uint8_t *sig = NULL;
    size_t n = 0;
    fwrel_pgp_result r;
    fwrel_pass_src file = {.kind = FWREL_PASS_FILE, .file = passfile};
    assert_int_equal(fwrel_pgp_sign_detached(&sig, &n, home, fb, msg, sizeof(msg), &file), 0);
    assert_int_equal(fwrel_pgp_verify_detached(&r, home, msg, sizeof(msg), sig, n), 0);
    assert_string_equal(r.fpr, fb);
    /* Verified in a home that has only B's public key. */
    assert_int_equal(fwrel_pgp_verify_detached(&r, other, msg, sizeof(msg), sig, n), 0);
    assert_string_equal(r.fpr, fb);
    free(sig);
    sig = NULL;

    /* Through a file descriptor. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "correct horse\n", 14), 14);
    close(p[1]);
    fwrel_pass_src fdsrc = {.kind = FWREL_PASS_FD, .fd = p[0]};
    assert_int_equal(fwrel_pgp_sign_detached(&sig, &n, home, fb, msg, sizeof(msg), &fdsrc), 0);
    close(p[0]);
    assert_int_equal(fwrel_pgp_verify_detached(&r, home, msg, sizeof(msg), sig, n), 0);
    assert_string_equal(r.fpr, fb);
    free(sig);
}

static void test_passphrase_refusals(void **state)
{
    (void)state;
    uint8_t *sig = (uint8_t *)"x";
    size_t n = 7;
    char wrong[4096], msgbuf[256];
    snprintf(wrong, sizeof(wrong), "%s/wrong", dir);
    int f = open(wrong, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(f >= 0);
    assert_int_equal(write(f, "battery staple\n", 15), 15);
    close(f);
    fwrel_pass_src src = {.kind = FWREL_PASS_FILE, .file = wrong};
    expect_error(fwrel_pgp_sign_detached(&sig, &n, home, fb, msg, sizeof(msg), &src), FWREL_EKEY,
                 "wrong passphrase");
    assert_null(sig);
    assert_int_equal(n, 0);

    expect_error(fwrel_pgp_sign_detached(&sig, &n, home, fb, msg, sizeof(msg), NULL), FWREL_EKEY,
                 "protected: a passphrase is needed (--pgp-passphrase-file, --pgp-passphrase-fd, "
                 "a terminal or gpg-agent)");
    assert_null(sig);
    /* Named by the key (fingerprint and user id), not by what is signed. */
    snprintf(msgbuf, sizeof(msgbuf), "OpenPGP key %s (", fb);
    assert_int_equal(fwrel_error_last()->about, FWREL_ABOUT_KEY);
    assert_true(strncmp(fwrel_error_last()->path, msgbuf, strlen(msgbuf)) == 0);

    /* A passphrase file others can read is refused before GnuPG sees it. */
    assert_int_equal(chmod(wrong, 0644), 0);
    expect_error(fwrel_pgp_sign_detached(&sig, &n, home, fb, msg, sizeof(msg), &src), FWREL_EKEY,
                 "passphrase file is readable by group or others");
    assert_null(sig);
}

static void test_bad_signature(void **state)
{
    (void)state;
    uint8_t *sig = NULL;
    size_t n = 0;
    fwrel_pgp_result r;
    uint8_t copy[sizeof(msg)];
    assert_int_equal(fwrel_pgp_sign_detached(&sig, &n, home, fa, msg, sizeof(msg), NULL), 0);
    memcpy(copy, msg, sizeof(msg));
    copy[3] ^= 1;
    expect_error(fwrel_pgp_verify_detached(&r, home, copy, sizeof(copy), sig, n), FWREL_EVERIFY,
                 "bad signature");
    assert_string_equal(r.fpr, "");
    /* One byte more or less is a bad signature too. */
    expect_error(fwrel_pgp_verify_detached(&r, home, msg, sizeof(msg) - 1, sig, n), FWREL_EVERIFY,
                 "bad signature");
    /* Not a signature at all. */
    expect_error(fwrel_pgp_verify_detached(&r, home, msg, sizeof(msg), msg, sizeof(msg)),
                 FWREL_EFORMAT, "not an OpenPGP signature");
    assert_int_equal(fwrel_pgp_verify_detached(&r, home, msg, sizeof(msg), sig, 0), FWREL_EFORMAT);
    /* Two armored signatures in one blob: GnuPG would read only the first; refused. */
    uint8_t *two = malloc(2 * n);
    assert_non_null(two);
    memcpy(two, sig, n);
    memcpy(two + n, sig, n);
    expect_error(fwrel_pgp_verify_detached(&r, home, msg, sizeof(msg), two, 2 * n), FWREL_EFORMAT,
                 "2 armored signatures in one blob: pass each on its own");
    free(two);
    free(sig);
}

static void test_unknown_and_missing_keys(void **state)
{
    (void)state;
    uint8_t *sig = NULL;
    size_t n = 0;
    fwrel_pgp_result r;
    char want[256];
    assert_int_equal(fwrel_pgp_sign_detached(&sig, &n, home, fa, msg, sizeof(msg), NULL), 0);
    snprintf(want, sizeof(want), "no public key for %s", fa);
    expect_error(fwrel_pgp_verify_detached(&r, other, msg, sizeof(msg), sig, n), FWREL_EVERIFY,
                 want);
    free(sig);
    sig = NULL;

    /* No secret key: B's public key only in "other"; a fingerprint nobody has. */
    snprintf(want, sizeof(want), "no secret key %s", fb);
    expect_error(fwrel_pgp_sign_detached(&sig, &n, other, fb, msg, sizeof(msg), NULL), FWREL_EKEY,
                 want);
    const char *nobody = "0123456789ABCDEF0123456789ABCDEF01234567";
    snprintf(want, sizeof(want), "no secret key %s", nobody);
    expect_error(fwrel_pgp_sign_detached(&sig, &n, home, nobody, msg, sizeof(msg), NULL),
                 FWREL_EKEY, want);
    /* A subkey fingerprint is not a primary key. */
    snprintf(want, sizeof(want), "no secret key %s", fd_sub);
    expect_error(fwrel_pgp_sign_detached(&sig, &n, home, fd_sub, msg, sizeof(msg), NULL),
                 FWREL_EKEY, want);
    /* Short ids, user ids and junk are usage errors. */
    expect_error(fwrel_pgp_sign_detached(&sig, &n, home, fa + 24, msg, sizeof(msg), NULL),
                 FWREL_EUSAGE, "signer must be a 40-hex-digit key fingerprint");
    expect_error(
        fwrel_pgp_sign_detached(&sig, &n, home, "alice@example.org", msg, sizeof(msg), NULL),
        FWREL_EUSAGE, "signer must be a 40-hex-digit key fingerprint");
    assert_null(sig);
}

/* A name stands for a pinned key only: exact e-mail (any case, bare or in <>) or whole user id. */
static void test_match_pinned(void **state)
{
    (void)state;
    const char *nobody = "0123456789ABCDEF0123456789ABCDEF01234567";
    const char *pins[] = {fa, fb, nobody};
    fwrel_pgp_match m;
    assert_int_equal(fwrel_pgp_match_pinned(&m, home, "alice@example.org", pins, 3), 0);
    assert_int_equal(m.nmatches, 1);
    assert_string_equal(m.matches[0], fa);
    assert_int_equal(fwrel_pgp_match_pinned(&m, home, "<BOB@Example.ORG>", pins, 3), 0);
    assert_int_equal(m.nmatches, 1);
    assert_string_equal(m.matches[0], fb);
    assert_int_equal(fwrel_pgp_match_pinned(&m, home, "Alice <alice@example.org>", pins, 3), 0);
    assert_int_equal(m.nmatches, 1);
    assert_string_equal(m.matches[0], fa);
    /* No substring, no other case of a whole user id. */
    assert_int_equal(fwrel_pgp_match_pinned(&m, home, "Alice", pins, 3), 0);
    assert_int_equal(m.nmatches, 0);
    assert_int_equal(fwrel_pgp_match_pinned(&m, home, "alice <alice@example.org>", pins, 3), 0);
    assert_int_equal(m.nmatches, 0);
    assert_int_equal(fwrel_pgp_match_pinned(&m, home, "example.org", pins, 3), 0);
    assert_int_equal(m.nmatches, 0);
    /* Dora's key is in the home but not pinned: never a candidate. The pinned keys' user ids
     * are there for the message; one not in the home has none. */
    assert_int_equal(fwrel_pgp_match_pinned(&m, home, "dora@example.org", pins, 3), 0);
    assert_int_equal(m.nmatches, 0);
    assert_int_equal(m.n, 3);
    assert_string_equal(m.uid_of[0].uid, "Alice <alice@example.org>");
    assert_string_equal(m.uid_of[1].uid, "Bob <bob@example.org>");
    assert_string_equal(m.uid_of[2].fpr, nobody);
    assert_string_equal(m.uid_of[2].uid, "");
    /* In a home holding only Bob's public key, Alice is unknown. */
    assert_int_equal(fwrel_pgp_match_pinned(&m, other, "alice@example.org", pins, 3), 0);
    assert_int_equal(m.nmatches, 0);
    const char *bad[] = {"alice@example.org"};
    expect_error(fwrel_pgp_match_pinned(&m, home, "alice@example.org", bad, 1), FWREL_EUSAGE,
                 "pinned key 1 is not a 40-hex fingerprint");
}

/* The preflight's unlock check: the passphrase that unlocked the key is handed back, signs again
 * as a FWREL_PASS_MEM source; a wrong one names the key. */
static void test_check_unlock(void **state)
{
    (void)state;
    char *pass = NULL, who[128];
    size_t len = 0, n = 0;
    uint8_t *sig = NULL;
    fwrel_pgp_result r;
    fwrel_pass_src file = {.kind = FWREL_PASS_FILE, .file = passfile};
    assert_int_equal(fwrel_pgp_check_unlock(&pass, &len, home, fb, &file), 0);
    assert_non_null(pass);
    assert_int_equal(len, 13);
    assert_memory_equal(pass, "correct horse", 13);
    fwrel_pass_src mem = {.kind = FWREL_PASS_MEM, .fd = -1, .mem = pass, .mem_len = len};
    assert_int_equal(fwrel_pgp_sign_detached(&sig, &n, home, fb, msg, sizeof(msg), &mem), 0);
    assert_int_equal(fwrel_pgp_verify_detached(&r, home, msg, sizeof(msg), sig, n), 0);
    assert_string_equal(r.fpr, fb);
    free(sig);
    fwrel_pass_free(pass, len);
    /* No passphrase asked for an unprotected key. */
    assert_int_equal(fwrel_pgp_check_unlock(&pass, &len, home, fa, &file), 0);
    assert_null(pass);
    assert_int_equal(len, 0);
    const char *wrong = fixture_secret(dir, "wrong-unlock", "battery staple\n");
    assert_non_null(wrong);
    fwrel_pass_src bad = {.kind = FWREL_PASS_FILE, .file = wrong};
    expect_error(fwrel_pgp_check_unlock(&pass, &len, home, fb, &bad), FWREL_EKEY,
                 "wrong passphrase");
    snprintf(who, sizeof(who), "OpenPGP key %s (Bob <bob@example.org>)", fb);
    assert_int_equal(fwrel_error_last()->about, FWREL_ABOUT_KEY);
    assert_string_equal(fwrel_error_last()->path, who);
    assert_null(pass);
}

static void test_no_home(void **state)
{
    (void)state;
    uint8_t *sig = NULL;
    size_t n = 0;
    fwrel_pgp_result r;
    char *saved = getenv("GNUPGHOME") ? strdup(getenv("GNUPGHOME")) : NULL;
    unsetenv("GNUPGHOME");
    expect_error(fwrel_pgp_sign_detached(&sig, &n, NULL, fa, msg, sizeof(msg), NULL), FWREL_EUSAGE,
                 "no GnuPG home: pass one or set GNUPGHOME");
    expect_error(fwrel_pgp_verify_detached(&r, NULL, msg, sizeof(msg), msg, 1), FWREL_EUSAGE,
                 "no GnuPG home: pass one or set GNUPGHOME");
    /* NULL means $GNUPGHOME. */
    setenv("GNUPGHOME", home, 1);
    assert_int_equal(fwrel_pgp_sign_detached(&sig, &n, NULL, fa, msg, sizeof(msg), NULL), 0);
    assert_int_equal(fwrel_pgp_verify_detached(&r, NULL, msg, sizeof(msg), sig, n), 0);
    assert_string_equal(r.fpr, fa);
    free(sig);
    if (saved != NULL) {
        setenv("GNUPGHOME", saved, 1);
        free(saved);
    } else {
        unsetenv("GNUPGHOME");
    }
}

static void test_revoked(void **state)
{
    (void)state;
    uint8_t *sig = NULL, *sig2 = NULL;
    size_t n = 0, n2 = 0;
    fwrel_pgp_result r;
    char want[256];
    assert_int_equal(fwrel_pgp_sign_detached(&sig, &n, home, fr, msg, sizeof(msg), NULL), 0);
    assert_int_equal(fwrel_pgp_verify_detached(&r, home, msg, sizeof(msg), sig, n), 0);
    assert_int_equal(gpghome_revoke(home, fr), 0);
    snprintf(want, sizeof(want), "key %s is revoked", fr);
    expect_error(fwrel_pgp_sign_detached(&sig2, &n2, home, fr, msg, sizeof(msg), NULL), FWREL_EKEY,
                 want);
    assert_null(sig2);
    snprintf(want, sizeof(want), "signing key %s is revoked", fr);
    expect_error(fwrel_pgp_verify_detached(&r, home, msg, sizeof(msg), sig, n), FWREL_EVERIFY,
                 want);
    free(sig);
}

/* One verification of A's signature in h: 0 (by A) in home, "no public key" in other. */
struct home_run {
    const char *home;
    const uint8_t *sig;
    size_t n;
    int failures;
};

static void *verify_in_home(void *arg)
{
    struct home_run *h = arg;
    char want[256];
    snprintf(want, sizeof(want), "no public key for %s", fa);
    for (int k = 0; k < 3; k++) {
        fwrel_pgp_result r;
        int rc = fwrel_pgp_verify_detached(&r, h->home, msg, sizeof(msg), h->sig, h->n);
        if (h->home == home ? rc != 0 || strcmp(r.fpr, fa) != 0
                            : rc != FWREL_EVERIFY || strcmp(fwrel_error_last()->message, want) != 0)
            h->failures++;
    }
    return NULL;
}

/* The home is handed to gpgme once per change (pgp.c ctx_on_home): each call still runs on its
 * own home, in turn and from two threads at once. */
static void test_homes_in_turn_and_threads(void **state)
{
    (void)state;
    uint8_t *sig = NULL;
    size_t n = 0;
    assert_int_equal(fwrel_pgp_sign_detached(&sig, &n, home, fa, msg, sizeof(msg), NULL), 0);
    struct home_run in_home = {home, sig, n, 0}, in_other = {other, sig, n, 0};
    verify_in_home(&in_other);
    verify_in_home(&in_home);
    verify_in_home(&in_other);
    assert_int_equal(in_home.failures, 0);
    assert_int_equal(in_other.failures, 0);
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, verify_in_home, &in_home), 0);
    assert_int_equal(pthread_create(&t2, NULL, verify_in_home, &in_other), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(in_home.failures, 0);
    assert_int_equal(in_other.failures, 0);
    free(sig);
}

static void test_expired(void **state)
{
    (void)state;
    uint8_t *sig = NULL;
    size_t n = 0;
    fwrel_pgp_result r;
    char want[256];
    snprintf(want, sizeof(want), "key %s has expired", fx);
    expect_error(fwrel_pgp_sign_detached(&sig, &n, home, fx, msg, sizeof(msg), NULL), FWREL_EKEY,
                 want);
    assert_null(sig);
    snprintf(want, sizeof(want), "signing key %s has expired", fx);
    expect_error(fwrel_pgp_verify_detached(&r, home, msg, sizeof(msg), sig_x, sig_x_len),
                 FWREL_EVERIFY, want);
}

static void test_m_of_n(void **state)
{
    (void)state;
    uint8_t *sa = NULL, *sb = NULL, *sd = NULL, *se = NULL, *sa2 = NULL;
    size_t na = 0, nb = 0, nd = 0, ne = 0, na2 = 0;
    fwrel_pgp_approvals out;
    fwrel_pgp_result r;
    fwrel_pass_src file = {.kind = FWREL_PASS_FILE, .file = passfile};
    assert_int_equal(fwrel_pgp_sign_detached(&sa, &na, home, fa, msg, sizeof(msg), NULL), 0);
    assert_int_equal(fwrel_pgp_sign_detached(&sa2, &na2, home, fa, msg, sizeof(msg), NULL), 0);
    assert_int_equal(fwrel_pgp_sign_detached(&sb, &nb, home, fb, msg, sizeof(msg), &file), 0);
    assert_int_equal(fwrel_pgp_sign_detached(&sd, &nd, home, fd, msg, sizeof(msg), NULL), 0);
    assert_int_equal(fwrel_pgp_sign_detached(&se, &ne, home, fe, msg, sizeof(msg), NULL), 0);
    /* D's signature is made by its signing subkey and reported for the primary. */
    assert_int_equal(fwrel_pgp_verify_detached(&r, home, msg, sizeof(msg), sd, nd), 0);
    assert_string_equal(r.fpr, fd);
    assert_string_equal(r.sig_fpr, fd_sub);

    const char *pinned[] = {fa, fb, fd};
    fwrel_pgp_sig sigs[] = {{sa, na}, {sa2, na2}, {se, ne}, {sd, nd}};
    assert_int_equal(fwrel_pgp_count_approvers(&out, home, msg, sizeof(msg), sigs, 4, pinned, 3, 2),
                     0);
    assert_int_equal(out.count, 2); /* A twice counts once; D through its subkey */
    assert_string_equal(out.approvers[0], fa);
    assert_string_equal(out.approvers[1], fd);
    assert_int_equal(out.nunpinned, 1);
    assert_string_equal(out.unpinned[0], fe);
    assert_int_equal(out.ninvalid, 0);

    expect_error(fwrel_pgp_count_approvers(&out, home, msg, sizeof(msg), sigs, 4, pinned, 3, 3),
                 FWREL_EVERIFY, "2 of 3 required approvals");
    assert_int_equal(out.count, 2);

    /* With B (passphrase-protected key): 3 of 3. */
    fwrel_pgp_sig sigs2[] = {{sa, na}, {sb, nb}, {se, ne}, {sd, nd}};
    assert_int_equal(
        fwrel_pgp_count_approvers(&out, home, msg, sizeof(msg), sigs2, 4, pinned, 3, 3), 0);
    assert_int_equal(out.count, 3);
    assert_string_equal(out.approvers[1], fb);

    /* Two armored signatures pasted into one blob are refused, not half-read. */
    uint8_t *cat = malloc(nb + ne);
    assert_non_null(cat);
    memcpy(cat, sb, nb);
    memcpy(cat + nb, se, ne);
    fwrel_pgp_sig sigs3[] = {{sa, na}, {cat, nb + ne}};
    expect_error(fwrel_pgp_count_approvers(&out, home, msg, sizeof(msg), sigs3, 2, pinned, 3, 1),
                 FWREL_EFORMAT,
                 "signature 2: 2 armored signatures in one blob: pass each on its own");

    /* Over other data every signature is bad: 0 approvals, all reported invalid. */
    static const uint8_t other_msg[] = "release bundle v1.2.4\n";
    expect_error(
        fwrel_pgp_count_approvers(&out, home, other_msg, sizeof(other_msg), sigs2, 4, pinned, 3, 1),
        FWREL_EVERIFY, "0 of 1 required approvals");
    assert_int_equal(out.ninvalid, 4);
    assert_string_equal(out.first_invalid, "bad signature");

    /* Unknown keys in a home holding only B: B counts, the rest are invalid. */
    assert_int_equal(
        fwrel_pgp_count_approvers(&out, other, msg, sizeof(msg), sigs2, 4, pinned, 3, 1), 0);
    assert_int_equal(out.count, 1);
    assert_string_equal(out.approvers[0], fb);
    assert_int_equal(out.ninvalid, 3);

    /* Pinned list and input checks. */
    const char *badpin[] = {fa, "ABCD"};
    expect_error(fwrel_pgp_count_approvers(&out, home, msg, sizeof(msg), sigs, 4, badpin, 2, 1),
                 FWREL_EUSAGE, "pinned approver 2 is not a 40-hex fingerprint");
    fwrel_pgp_sig junk[] = {{sa, na}, {msg, sizeof(msg)}};
    expect_error(fwrel_pgp_count_approvers(&out, home, msg, sizeof(msg), junk, 2, pinned, 3, 1),
                 FWREL_EFORMAT, "signature 2: not an OpenPGP signature");
    free(cat);
    free(sa);
    free(sa2);
    free(sb);
    free(sd);
    free(se);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_no_passphrase),
        cmocka_unit_test(test_round_trip_passphrase),
        cmocka_unit_test(test_passphrase_refusals),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_unknown_and_missing_keys),
        cmocka_unit_test(test_no_home),
        cmocka_unit_test(test_match_pinned),
        cmocka_unit_test(test_check_unlock),
        cmocka_unit_test(test_revoked),
        cmocka_unit_test(test_m_of_n),
        cmocka_unit_test(test_homes_in_turn_and_threads),
        cmocka_unit_test(test_expired),
    };
    return cmocka_run_group_tests(tests, setup, fixture_teardown);
}
