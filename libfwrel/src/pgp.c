/*
 * pgp.c - detached OpenPGP signatures through gpgme (pgp.h).
 *
 * Trust comes from the caller's pinned fingerprints, not from GnuPG's trust
 * database: a signature is accepted when gpgme reports status GPG_ERR_NO_ERROR
 * and the summary shows no expired or revoked key or signature.
 */
#include "fwrel/pgp.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gpgme.h>
#include <openssl/crypto.h>

#include "fwrel/error.h"
#include "fwrel/key.h"

int fwrel_pgp_fpr_valid(const char *s)
{
    if (s == NULL)
        return 0;
    for (size_t i = 0; i < 40; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return s[40] == '\0';
}

static void fpr_upper(char out[41], const char *s)
{
    size_t i = 0;
    for (; i < 40 && s[i] != '\0'; i++)
        out[i] = (char)toupper((unsigned char)s[i]);
    out[i] = '\0';
}

/*
 * The home is given to gpgme in its process-wide engine info, set again only when it changes,
 * and each new context copies it: gpgme_ctx_set_engine_info() runs `gpg --version` for every
 * context it is called on (53 of the 115 processes one fwrel-verify --repo of four releases
 * started), gpgme_new() copies the process-wide info without starting anything. The lock makes
 * "set the home, copy it into a new context" one step for the auditor's threads.
 */
static pthread_mutex_t home_lock = PTHREAD_MUTEX_INITIALIZER;
static char *home_set; /* the home in gpgme's process-wide engine info, or NULL */

static gpgme_error_t ctx_on_home(gpgme_ctx_t *ctx, const char *home)
{
    gpgme_error_t err = 0;
    pthread_mutex_lock(&home_lock);
    if (home_set == NULL || strcmp(home_set, home) != 0) {
        char *copy = strdup(home);
        if (copy == NULL)
            err = gpg_error(GPG_ERR_ENOMEM);
        else if ((err = gpgme_set_engine_info(GPGME_PROTOCOL_OpenPGP, NULL, home)) != 0)
            free(copy);
        else {
            free(home_set);
            home_set = copy;
        }
    }
    if (err == 0)
        err = gpgme_new(ctx);
    pthread_mutex_unlock(&home_lock);
    return err;
}

void fwrel_pgp_init(void)
{
    gpgme_check_version(NULL);
}

/* A gpgme context on an explicit home: OpenPGP, armor, loopback pinentry. */
static int ctx_new(gpgme_ctx_t *out, const char *home)
{
    gpgme_ctx_t ctx = NULL;
    gpgme_error_t err;
    int error;

    *out = NULL;
    if (home == NULL)
        home = getenv("GNUPGHOME");
    if (home == NULL || home[0] == '\0')
        return fwrel_error_set(FWREL_EUSAGE, "no GnuPG home: pass one or set GNUPGHOME");
    gpgme_check_version(NULL);
    err = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP);
    if (err != 0) {
        error = fwrel_error_set(FWREL_EIO, "GnuPG is not usable: %s", gpgme_strerror(err));
        goto done;
    }
    err = ctx_on_home(&ctx, home);
    if (err == 0)
        err = gpgme_set_protocol(ctx, GPGME_PROTOCOL_OpenPGP);
    if (err == 0)
        err = gpgme_set_pinentry_mode(ctx, GPGME_PINENTRY_MODE_LOOPBACK);
    if (err != 0) {
        error = fwrel_error_set(FWREL_EIO, "cannot set up GnuPG: %s", gpgme_strerror(err));
        goto done;
    }
    gpgme_set_armor(ctx, 1);
    gpgme_set_offline(ctx, 1);
    *out = ctx;
    ctx = NULL;
    error = 0;
done:
    gpgme_release(ctx);
    return error;
}

static gpgme_error_t get_key(gpgme_ctx_t ctx, const char *fpr, gpgme_key_t *out);

/* Tries of a passphrase typed at a terminal, as gpg and ssh give. */
#define PGP_TTY_TRIES 3

/* "OpenPGP key FPR (user id)", the user id cut at 200 bytes. */
#define PGP_WHO_MAX 272

/* Passphrase callback state: the source, read once (at a terminal: once per try, up to
 * PGP_TTY_TRIES, one signing each), wiped at the end. */
struct pass_state {
    const fwrel_pass_src *src;
    const char *who; /* the key, named in the prompt */
    char *pass;
    size_t len;
    int tries;     /* passphrases read */
    int asked;     /* the callback ran */
    int bad;       /* GnuPG said the passphrase was wrong */
    int src_error; /* fwrel_pass_read failed (message recorded) */
    int none;      /* no source */
};

static gpgme_error_t pass_cb(void *hook, const char *uid_hint, const char *info, int prev_was_bad,
                             int fd)
{
    struct pass_state *st = hook;
    (void)uid_hint;
    (void)info;
    char prompt[PGP_WHO_MAX + 64];
    st->asked = 1;
    if (prev_was_bad) {
        /* The next try at a terminal is another signing (fwrel_pgp_sign_detached). */
        st->bad = 1;
        return gpgme_error(GPG_ERR_CANCELED);
    }
    if (st->src == NULL || st->src->kind == FWREL_PASS_NONE) {
        st->none = 1;
        return gpgme_error(GPG_ERR_CANCELED);
    }
    if (st->pass == NULL && st->tries > 0)
        snprintf(prompt, sizeof(prompt),
                 "Wrong passphrase (try %d of %d). Passphrase for %s: ", st->tries + 1,
                 PGP_TTY_TRIES, st->who);
    else
        snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", st->who);
    if (st->pass == NULL &&
        (st->tries++, fwrel_pass_read(&st->pass, &st->len, st->src, prompt, 0) != 0)) {
        st->src_error = 1;
        return gpgme_error(GPG_ERR_CANCELED);
    }
    if (gpgme_io_writen(fd, st->pass, st->len) != 0 || gpgme_io_writen(fd, "\n", 1) != 0)
        return gpgme_error(GPG_ERR_CANCELED);
    return 0;
}

/* Find exactly one secret key with this primary fingerprint, usable for signing. */
static int find_signer(gpgme_key_t *out, gpgme_ctx_t ctx, const char *fpr)
{
    gpgme_key_t key = NULL, k = NULL;
    gpgme_error_t err;
    size_t n = 0;
    int error;

    *out = NULL;
    err = gpgme_op_keylist_start(ctx, fpr, 1);
    while (err == 0 && (err = gpgme_op_keylist_next(ctx, &k)) == 0) {
        /* The pattern also matches subkeys and user ids: keep primaries only. */
        if (k->fpr != NULL && strcasecmp(k->fpr, fpr) == 0 && n++ == 0) {
            key = k;
            k = NULL;
        }
        gpgme_key_unref(k);
        k = NULL;
    }
    gpgme_op_keylist_end(ctx);
    if (gpg_err_code(err) != GPG_ERR_EOF) {
        error = fwrel_error_set(FWREL_EIO, "cannot list keys: %s", gpgme_strerror(err));
        goto done;
    }
    if (n == 0) {
        error = fwrel_error_set(FWREL_EKEY, "no secret key %s", fpr);
        goto done;
    }
    if (n > 1) {
        error = fwrel_error_set(FWREL_EKEY, "ambiguous key %s: %zu keys match", fpr, n);
        goto done;
    }
    if (key->revoked) {
        error = fwrel_error_set(FWREL_EKEY, "key %s is revoked", fpr);
        goto done;
    }
    if (key->expired) {
        error = fwrel_error_set(FWREL_EKEY, "key %s has expired", fpr);
        goto done;
    }
    if (key->disabled) {
        error = fwrel_error_set(FWREL_EKEY, "key %s is disabled", fpr);
        goto done;
    }
    if (key->invalid || !key->can_sign) {
        error = fwrel_error_set(FWREL_EKEY, "key %s cannot sign", fpr);
        goto done;
    }
    *out = key;
    key = NULL;
    error = 0;
done:
    gpgme_key_unref(key);
    return error;
}

/* A detached signature; with kept != NULL the passphrase that unlocked the key is handed over
 * (NULL when GnuPG asked none). */
static int sign(uint8_t **sig, size_t *sig_len, const char *home, const char *signer_fpr,
                const uint8_t *data, size_t len, const fwrel_pass_src *pass, char **kept,
                size_t *kept_len)
{
    gpgme_ctx_t ctx = NULL;
    gpgme_key_t key = NULL;
    gpgme_data_t in = NULL, out = NULL;
    gpgme_error_t err;
    struct pass_state st = {.src = pass};
    char fpr[41], who[PGP_WHO_MAX];
    char *mem = NULL;
    size_t n = 0;
    int error;

    FWREL_ASSERT_ARG(sig != NULL && sig_len != NULL && (data != NULL || len == 0));
    *sig = NULL;
    *sig_len = 0;
    if (!fwrel_pgp_fpr_valid(signer_fpr))
        return fwrel_error_set(FWREL_EUSAGE, "signer must be a 40-hex-digit key fingerprint");
    fpr_upper(fpr, signer_fpr);
    if (len > FWREL_PGP_DATA_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "data of %zu bytes is above the %zu-byte limit", len,
                               FWREL_PGP_DATA_MAX);
    if ((error = ctx_new(&ctx, home)) != 0)
        goto done;
    if ((error = find_signer(&key, ctx, fpr)) != 0)
        goto done;
    /* The key by fingerprint and its first user id: a passphrase error names it. */
    snprintf(
        who, sizeof(who), "OpenPGP key %s%s%.200s%s", fpr, key->uids && key->uids->uid ? " (" : "",
        key->uids && key->uids->uid ? key->uids->uid : "", key->uids && key->uids->uid ? ")" : "");
    st.who = who;
    gpgme_set_passphrase_cb(ctx, pass_cb, &st);
    err = gpgme_signers_add(ctx, key);
    if (err == 0)
        err = gpgme_data_new_from_mem(
            &in, (const char *)(data != NULL ? data : (const uint8_t *)""), len, 0);
    if (err == 0)
        err = gpgme_data_new(&out);
    if (err != 0) {
        error = fwrel_error_set(FWREL_EIO, "cannot set up signing: %s", gpgme_strerror(err));
        goto done;
    }
    err = gpgme_op_sign(ctx, in, out, GPGME_SIG_MODE_DETACH);
    /* gpg-agent asks a loopback caller once: a terminal's next try is another signing. */
    while (!st.src_error && !st.none && (st.bad || gpg_err_code(err) == GPG_ERR_BAD_PASSPHRASE) &&
           pass != NULL && pass->kind == FWREL_PASS_TTY && st.tries < PGP_TTY_TRIES) {
        fwrel_pass_free(st.pass, st.len);
        st.pass = NULL;
        st.bad = 0;
        gpgme_data_release(out);
        out = NULL;
        if (gpgme_data_seek(in, 0, SEEK_SET) != 0 || (err = gpgme_data_new(&out)) != 0) {
            error = fwrel_error_set(FWREL_EIO, "cannot set up signing: %s", gpgme_strerror(err));
            goto done;
        }
        err = gpgme_op_sign(ctx, in, out, GPGME_SIG_MODE_DETACH);
    }
    if (st.src_error) {
        error = fwrel_error_last()->code;
        goto done;
    }
    if (err != 0 || st.bad || st.none) {
        if (st.none)
            error = fwrel_error_set(FWREL_EKEY,
                                    "protected: a passphrase is needed (--pgp-passphrase-file, "
                                    "--pgp-passphrase-fd, a terminal or gpg-agent)");
        else if (st.bad || gpg_err_code(err) == GPG_ERR_BAD_PASSPHRASE)
            error = st.tries > 1
                        ? fwrel_error_set(FWREL_EKEY, "wrong passphrase (%d tries)", st.tries)
                        : fwrel_error_set(FWREL_EKEY, "wrong passphrase");
        else
            error = fwrel_error_set(FWREL_EKEY, "cannot sign: %s", gpgme_strerror(err));
        /* Named by the key and its user id, not by the file being signed. */
        fwrel_error_about(FWREL_ABOUT_KEY, who);
        goto done;
    }
    gpgme_sign_result_t res = gpgme_op_sign_result(ctx);
    if (res == NULL || res->invalid_signers != NULL || res->signatures == NULL ||
        res->signatures->next != NULL) {
        error = fwrel_error_set(FWREL_EKEY, "cannot sign: key %s was not used", fpr);
        goto done;
    }
    mem = gpgme_data_release_and_get_mem(out, &n);
    out = NULL;
    if (mem == NULL || n == 0 || n > FWREL_PGP_SIG_MAX) {
        error = fwrel_error_set(FWREL_EKEY, "cannot sign: unexpected signature size %zu", n);
        goto done;
    }
    *sig = malloc(n);
    if (*sig == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    memcpy(*sig, mem, n);
    *sig_len = n;
    if (kept != NULL) {
        *kept = st.pass;
        *kept_len = st.len;
        st.pass = NULL;
    }
    error = 0;
done:
    if (st.pass != NULL)
        fwrel_pass_free(st.pass, st.len);
    gpgme_free(mem);
    gpgme_data_release(in);
    gpgme_data_release(out);
    gpgme_key_unref(key);
    gpgme_release(ctx);
    return error;
}

int fwrel_pgp_sign_detached(uint8_t **sig, size_t *sig_len, const char *home,
                            const char *signer_fpr, const uint8_t *data, size_t len,
                            const fwrel_pass_src *pass)
{
    return sign(sig, sig_len, home, signer_fpr, data, len, pass, NULL, NULL);
}

/* What the unlock check signs: never an approval (an approval signs a bundle's SHA256SUMS, lines
 * of "<64 hex>  <name>"), and the signature is wiped unseen. */
static const char unlock_probe[] = "fwrel unlock check: not an approval, signature discarded\n";

int fwrel_pgp_check_unlock(char **pass_out, size_t *pass_len, const char *home,
                           const char *signer_fpr, const fwrel_pass_src *pass)
{
    FWREL_ASSERT_ARG(pass_out != NULL && pass_len != NULL);
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    *pass_out = NULL;
    *pass_len = 0;
    int error = sign(&sig, &sig_len, home, signer_fpr, (const uint8_t *)unlock_probe,
                     sizeof(unlock_probe) - 1, pass, pass_out, pass_len);
    if (sig != NULL)
        OPENSSL_cleanse(sig, sig_len);
    free(sig);
    return error;
}

/* Whether a user id stands for name: its e-mail address (name bare or in <>), without regard to
 * case, or the whole user id, exactly. */
static int uid_matches(gpgme_user_id_t u, const char *name)
{
    size_t n = strlen(name);
    if (u->uid != NULL && strcmp(u->uid, name) == 0)
        return 1;
    if (n >= 2 && name[0] == '<' && name[n - 1] == '>') {
        name++;
        n -= 2;
    }
    return n > 0 && u->email != NULL && strlen(u->email) == n &&
           strncasecmp(u->email, name, n) == 0;
}

int fwrel_pgp_match_pinned(fwrel_pgp_match *out, const char *home, const char *name,
                           const char *const *pinned, size_t npinned)
{
    FWREL_ASSERT_ARG(out != NULL && name != NULL && (pinned != NULL || npinned == 0));
    gpgme_ctx_t ctx = NULL;
    int error;

    memset(out, 0, sizeof(*out));
    if (npinned > FWREL_PGP_MATCH_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "more than %d pinned keys", FWREL_PGP_MATCH_MAX);
    if ((error = ctx_new(&ctx, home)) != 0)
        return error;
    for (size_t p = 0; p < npinned; p++) {
        gpgme_key_t key = NULL;
        char fpr[41];
        if (!fwrel_pgp_fpr_valid(pinned[p])) {
            error =
                fwrel_error_set(FWREL_EUSAGE, "pinned key %zu is not a 40-hex fingerprint", p + 1);
            goto done;
        }
        fpr_upper(fpr, pinned[p]);
        memcpy(out->uid_of[p].fpr, fpr, 41);
        out->n = p + 1;
        /* The pinned key itself (its primary fingerprint, not a subkey's or a user id's match):
         * a name is looked for only among the user ids of the keys pinned. */
        gpgme_error_t err = get_key(ctx, fpr, &key);
        if (err != 0 || key == NULL || key->fpr == NULL || strcasecmp(key->fpr, fpr) != 0) {
            gpgme_key_unref(key);
            continue;
        }
        int hit = 0;
        for (gpgme_user_id_t u = key->uids; u != NULL; u = u->next) {
            if (u->revoked || u->invalid || u->uid == NULL)
                continue;
            if (out->uid_of[p].uid[0] == '\0')
                snprintf(out->uid_of[p].uid, sizeof(out->uid_of[p].uid), "%.200s", u->uid);
            hit |= uid_matches(u, name);
        }
        if (hit)
            memcpy(out->matches[out->nmatches++], fpr, 41);
        gpgme_key_unref(key);
    }
    error = 0;
done:
    gpgme_release(ctx);
    return error;
}

int fwrel_pgp_check_signer(const char *home, const char *signer_fpr)
{
    gpgme_ctx_t ctx = NULL;
    gpgme_key_t key = NULL;
    char fpr[41];
    int error;
    if (signer_fpr == NULL || !fwrel_pgp_fpr_valid(signer_fpr))
        return fwrel_error_set(FWREL_EUSAGE, "signer must be a 40-hex-digit key fingerprint");
    fpr_upper(fpr, signer_fpr);
    if ((error = ctx_new(&ctx, home)) == 0)
        error = find_signer(&key, ctx, fpr);
    gpgme_key_unref(key);
    gpgme_release(ctx);
    return error;
}

/* What we keep of a gpgme signature (its result is only valid until the next operation). */
struct sig_info {
    gpgme_error_t status;
    unsigned summary;
    int wrong_key_usage;
    int hash_algo;
    char fpr[41]; /* may be a 16-hex key id when the key is unknown */
    int64_t created;
};

/* Verify all signatures of one blob into infos; returns the count or sets an error. */
static int verify_blob(struct sig_info *infos, size_t max, size_t *count, gpgme_ctx_t ctx,
                       const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len)
{
    gpgme_data_t dsig = NULL, dtext = NULL;
    gpgme_error_t err;
    size_t n = 0;
    int error;

    *count = 0;
    if (sig_len == 0 || sig_len > FWREL_PGP_SIG_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "signature of %zu bytes: not within 1..%zu", sig_len,
                               FWREL_PGP_SIG_MAX);
    if (len > FWREL_PGP_DATA_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "data of %zu bytes is above the %zu-byte limit", len,
                               FWREL_PGP_DATA_MAX);
    /* GnuPG reads only the first armor block of a blob: refuse more than one rather than
     * silently ignoring the others. */
    size_t armors = 0;
    static const char begin[] = "-----BEGIN PGP SIGNATURE-----";
    for (size_t off = 0; off + sizeof(begin) - 1 <= sig_len; off++)
        if (memcmp(sig + off, begin, sizeof(begin) - 1) == 0)
            armors++;
    if (armors > 1)
        return fwrel_error_set(FWREL_EFORMAT,
                               "%zu armored signatures in one blob: pass each on its own", armors);
    err = gpgme_data_new_from_mem(&dsig, (const char *)sig, sig_len, 0);
    if (err == 0)
        err = gpgme_data_new_from_mem(
            &dtext, (const char *)(data != NULL ? data : (const uint8_t *)""), len, 0);
    if (err != 0) {
        error = fwrel_error_set(FWREL_EIO, "cannot set up verification: %s", gpgme_strerror(err));
        goto done;
    }
    err = gpgme_op_verify(ctx, dsig, dtext, NULL);
    gpgme_verify_result_t res = err == 0 ? gpgme_op_verify_result(ctx) : NULL;
    if (err != 0 || res == NULL || res->signatures == NULL) {
        error = fwrel_error_set(FWREL_EFORMAT, "not an OpenPGP signature");
        goto done;
    }
    for (gpgme_signature_t s = res->signatures; s != NULL; s = s->next) {
        if (n == max) {
            error = fwrel_error_set(FWREL_EFORMAT, "more than %zu signatures", max);
            goto done;
        }
        struct sig_info *i = &infos[n++];
        memset(i, 0, sizeof(*i));
        i->status = s->status;
        i->summary = (unsigned)s->summary;
        i->wrong_key_usage = s->wrong_key_usage;
        i->hash_algo = (int)s->hash_algo;
        i->created = (int64_t)s->timestamp;
        if (s->fpr != NULL)
            fpr_upper(i->fpr, s->fpr);
    }
    *count = n;
    error = 0;
done:
    gpgme_data_release(dsig);
    gpgme_data_release(dtext);
    return error;
}

/*
 * The one public key fpr names, as gpgme_get_key() finds it (a second key with the same
 * fingerprint is a duplicate, another key makes the name ambiguous), but listed on ctx itself:
 * gpgme_get_key() lists on a clone of ctx and runs `gpg --version` to set up the clone's engine.
 * ctx must be idle: a listing ends the result of its last operation.
 */
static gpgme_error_t get_key(gpgme_ctx_t ctx, const char *fpr, gpgme_key_t *out)
{
    gpgme_key_t key = NULL, next = NULL;
    gpgme_error_t err;

    *out = NULL;
    err = gpgme_op_keylist_start(ctx, fpr, 0);
    if (err == 0)
        err = gpgme_op_keylist_next(ctx, &key);
    while (err == 0 && (err = gpgme_op_keylist_next(ctx, &next)) == 0) {
        int same = next->subkeys != NULL && next->subkeys->fpr != NULL && key->subkeys != NULL &&
                   key->subkeys->fpr != NULL && strcmp(next->subkeys->fpr, key->subkeys->fpr) == 0;
        gpgme_key_unref(next);
        next = NULL;
        if (!same)
            err = gpg_error(GPG_ERR_AMBIGUOUS_NAME);
    }
    gpgme_op_keylist_end(ctx);
    if (key != NULL && gpg_err_code(err) == GPG_ERR_EOF) {
        *out = key;
        return 0;
    }
    gpgme_key_unref(key);
    return err != 0 ? err : gpg_error(GPG_ERR_GENERAL);
}

/* Judge one signature; on success fill r with the primary key's fingerprint. */
static int judge(fwrel_pgp_result *r, gpgme_ctx_t ctx, const struct sig_info *i)
{
    gpgme_key_t key = NULL;
    int error;

    memset(r, 0, sizeof(*r));
    switch (gpg_err_code(i->status)) {
    case GPG_ERR_NO_ERROR:
        break;
    case GPG_ERR_BAD_SIGNATURE:
        return fwrel_error_set(FWREL_EVERIFY, "bad signature");
    case GPG_ERR_NO_PUBKEY:
        return fwrel_error_set(FWREL_EVERIFY, "no public key for %s",
                               i->fpr[0] != '\0' ? i->fpr : "the signer");
    case GPG_ERR_KEY_EXPIRED:
        return fwrel_error_set(FWREL_EVERIFY, "signing key %s has expired", i->fpr);
    case GPG_ERR_CERT_REVOKED:
        return fwrel_error_set(FWREL_EVERIFY, "signing key %s is revoked", i->fpr);
    case GPG_ERR_SIG_EXPIRED:
        return fwrel_error_set(FWREL_EVERIFY, "signature has expired");
    default:
        return fwrel_error_set(FWREL_EVERIFY, "signature not valid: %s", gpgme_strerror(i->status));
    }
    if (i->summary & GPGME_SIGSUM_KEY_REVOKED)
        return fwrel_error_set(FWREL_EVERIFY, "signing key %s is revoked", i->fpr);
    if (i->summary & GPGME_SIGSUM_KEY_EXPIRED)
        return fwrel_error_set(FWREL_EVERIFY, "signing key %s has expired", i->fpr);
    if (i->summary & GPGME_SIGSUM_SIG_EXPIRED)
        return fwrel_error_set(FWREL_EVERIFY, "signature has expired");
    if (i->summary & (GPGME_SIGSUM_RED | GPGME_SIGSUM_BAD_POLICY | GPGME_SIGSUM_SYS_ERROR))
        return fwrel_error_set(FWREL_EVERIFY, "signature not valid: summary 0x%x", i->summary);
    if (i->wrong_key_usage)
        return fwrel_error_set(FWREL_EVERIFY, "signature not valid: key %s may not sign", i->fpr);
    if (i->hash_algo == GPGME_MD_MD5 || i->hash_algo == GPGME_MD_SHA1 ||
        i->hash_algo == GPGME_MD_RMD160 || i->hash_algo == GPGME_MD_MD2)
        return fwrel_error_set(FWREL_EVERIFY, "signature uses the weak hash %s",
                               gpgme_hash_algo_name((gpgme_hash_algo_t)i->hash_algo));
    if (!fwrel_pgp_fpr_valid(i->fpr))
        return fwrel_error_set(FWREL_EVERIFY, "signature not valid: no signer fingerprint");
    /* Map a subkey to its primary key. */
    gpgme_error_t err = get_key(ctx, i->fpr, &key);
    if (err != 0 || key == NULL || key->fpr == NULL || !fwrel_pgp_fpr_valid(key->fpr)) {
        error = fwrel_error_set(FWREL_EVERIFY, "no public key for %s", i->fpr);
        goto done;
    }
    if (key->revoked) {
        error = fwrel_error_set(FWREL_EVERIFY, "signing key %s is revoked", key->fpr);
        goto done;
    }
    if (key->expired) {
        error = fwrel_error_set(FWREL_EVERIFY, "signing key %s has expired", key->fpr);
        goto done;
    }
    fpr_upper(r->fpr, key->fpr);
    memcpy(r->sig_fpr, i->fpr, sizeof(r->sig_fpr));
    r->created = i->created;
    error = 0;
done:
    gpgme_key_unref(key);
    return error;
}

int fwrel_pgp_verify_detached(fwrel_pgp_result *result, const char *home, const uint8_t *data,
                              size_t len, const uint8_t *sig, size_t sig_len)
{
    gpgme_ctx_t ctx = NULL;
    struct sig_info infos[FWREL_PGP_SIGS_MAX];
    size_t n = 0;
    int error;

    FWREL_ASSERT_ARG(result != NULL && (sig != NULL || sig_len == 0) && (data != NULL || len == 0));
    memset(result, 0, sizeof(*result));
    if ((error = ctx_new(&ctx, home)) != 0)
        goto done;
    if ((error = verify_blob(infos, FWREL_PGP_SIGS_MAX, &n, ctx, data, len, sig, sig_len)) != 0)
        goto done;
    if (n != 1) {
        error = fwrel_error_set(FWREL_EFORMAT, "%zu signatures found, expected one", n);
        goto done;
    }
    error = judge(result, ctx, &infos[0]);
done:
    gpgme_release(ctx);
    return error;
}

int fwrel_pgp_count_approvers(fwrel_pgp_approvals *out, const char *home, const uint8_t *data,
                              size_t len, const fwrel_pgp_sig *sigs, size_t nsigs,
                              const char *const *pinned, size_t npinned, size_t threshold)
{
    gpgme_ctx_t ctx = NULL;
    struct sig_info infos[FWREL_PGP_SIGS_MAX];
    size_t total = 0;
    int error;

    FWREL_ASSERT_ARG(out != NULL);
    memset(out, 0, sizeof(*out));
    if (sigs == NULL || nsigs == 0)
        return fwrel_error_set(FWREL_EUSAGE, "no signature given");
    if (pinned == NULL || npinned == 0)
        return fwrel_error_set(FWREL_EUSAGE, "no approver key pinned");
    for (size_t p = 0; p < npinned; p++)
        if (!fwrel_pgp_fpr_valid(pinned[p]))
            return fwrel_error_set(FWREL_EUSAGE, "pinned approver %zu is not a 40-hex fingerprint",
                                   p + 1);
    if ((error = ctx_new(&ctx, home)) != 0)
        goto done;
    for (size_t b = 0; b < nsigs; b++) {
        size_t n = 0;
        if ((error = verify_blob(infos + total, FWREL_PGP_SIGS_MAX - total, &n, ctx, data, len,
                                 sigs[b].data, sigs[b].len)) != 0) {
            fwrel_error_prefix("signature %zu", b + 1);
            goto done;
        }
        total += n;
    }
    for (size_t s = 0; s < total; s++) {
        fwrel_pgp_result r;
        if (judge(&r, ctx, &infos[s]) != 0) {
            if (out->ninvalid++ == 0)
                snprintf(out->first_invalid, sizeof(out->first_invalid), "%s",
                         fwrel_error_last()->message);
            continue;
        }
        int is_pinned = 0;
        for (size_t p = 0; p < npinned && !is_pinned; p++)
            is_pinned = strcasecmp(pinned[p], r.fpr) == 0;
        char(*list)[41] = is_pinned ? out->approvers : out->unpinned;
        size_t *count = is_pinned ? &out->count : &out->nunpinned;
        int seen = 0;
        for (size_t k = 0; k < *count && !seen; k++)
            seen = strcmp(list[k], r.fpr) == 0;
        if (!seen)
            memcpy(list[(*count)++], r.fpr, 41);
    }
    fwrel_error_clear();
    if (out->count < threshold) {
        error =
            fwrel_error_set(FWREL_EVERIFY, "%zu of %zu required approvals", out->count, threshold);
        goto done;
    }
    error = 0;
done:
    gpgme_release(ctx);
    return error;
}
