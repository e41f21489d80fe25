/* preflight.c - what a release checks before any private key is opened (preflight.h,
 * docs/bundle.md "Preflight"): templates, exports, OpenPGP secret keys, the output. */
#include "fwrel/preflight.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fwrel/approvals.h"
#include "fwrel/export.h"
#include "fwrel/pgp.h"
#include "run.h"
#include "util.h"

#ifndef FWREL_TEMPLATE_DIR
#define FWREL_TEMPLATE_DIR "/usr/local/share/fwrel/templates"
#endif

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int fwrel_preflight_templates(char *out, size_t size, const char *given)
{
    FWREL_ASSERT_ARG(out != NULL && size > 0);
    char exe[PATH_MAX], tried[3][PATH_MAX + 64];
    size_t n = 0;
    ssize_t len;

    out[0] = '\0';
    if (given != NULL) {
        struct stat st;
        if (stat(given, &st) != 0)
            return fwrel_error_set_errno(FWREL_EIO, errno, "export templates %s", given);
        if (!S_ISDIR(st.st_mode))
            return fwrel_error_set(FWREL_EIO, "export templates %s: not a directory", given);
        if ((size_t)snprintf(out, size, "%s", given) >= size)
            return fwrel_error_set(FWREL_EUSAGE, "export templates path too long");
        return 0;
    }
    /* Beside the running executable: the build tree it was built in, or the prefix it is in. */
    if ((len = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL)
            *slash = '\0';
#if defined(FWREL_BUILD_DIR) && defined(FWREL_SOURCE_TEMPLATES)
        char real_build[PATH_MAX];
        if (realpath(FWREL_BUILD_DIR, real_build) != NULL && strcmp(real_build, exe) == 0)
            snprintf(tried[n++], sizeof(tried[0]), "%s", FWREL_SOURCE_TEMPLATES);
#endif
        snprintf(tried[n++], sizeof(tried[0]), "%s/../share/fwrel/templates", exe);
    }
    snprintf(tried[n++], sizeof(tried[0]), "%s", FWREL_TEMPLATE_DIR);
    for (size_t i = 0; i < n; i++)
        if (is_dir(tried[i])) {
            /* The prefix's path without "bin/..": what a message names is where the files are. */
            char real[PATH_MAX];
            const char *p = realpath(tried[i], real) != NULL ? real : tried[i];
            if ((size_t)snprintf(out, size, "%s", p) >= size)
                return fwrel_error_set(FWREL_EUSAGE, "export templates path too long");
            return 0;
        }
    /* The message holds FWREL_ERROR_MSG_MAX bytes: each path is cut at 300. */
    char list[1000] = "";
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof(list) - used, "%s%.300s", i ? ", " : "", tried[i]);
    }
    return fwrel_error_set(FWREL_EIO, "no export templates (tried %s): give --templates DIR", list);
}

int fwrel_preflight_exports(const fwrel_policy *p, const char *root)
{
    FWREL_ASSERT_ARG(p != NULL && root != NULL);
    return fwrel_export_check_policy(p, root);
}

/* One OpenPGP key the run signs with later: pinned, and its secret key in the GnuPG home. */
int fwrel_run_ready_signer(struct run *r, const char *fpr, const char *role)
{
    int error = fwrel_pgp_check_signer(r->o->gnupg_home, fpr);
    if (error)
        fwrel_error_prefix("%s %s", role, fpr);
    return error;
}

/*
 * The release's preflight, after the image is read and before the lock and any key: the
 * templates found and every export able to take this release (its version included), every
 * approver's and the tag signer's secret key in the GnuPG home, the output's directory writable.
 * A refusal here writes nothing, not even to the audit log (docs/audit.md).
 */
/* The templates found and every export known with its settings and keys: the policy's part of
 * the preflight, before the image is read (once; fwrel_run_ready() asks again). */
int fwrel_run_ready_exports(struct run *r)
{
    int error;
    if (r->p->nexports == 0 || r->templates[0] != '\0')
        return 0;
    if ((error = fwrel_preflight_templates(r->templates, sizeof(r->templates),
                                           r->o->template_root)) == 0 &&
        (error = fwrel_preflight_exports(r->p, r->templates)) != 0)
        r->templates[0] = '\0';
    return error;
}

/* One OpenPGP key the run signs with later unlocks: the passphrase source given (a file, a
 * descriptor, the terminal) opens it, proven by signing a throwaway message
 * (fwrel_pgp_check_unlock); the passphrase that did is kept for its signatures, so that a
 * descriptor or a terminal is read once per key. Without a passphrase source only when always
 * (--record's tag signer). */
int fwrel_run_ready_unlock(struct run *r, const char *fpr)
{
    const fwrel_pass_src *src = r->o->pgp_pass;
    struct run_pgp *k;
    int error;
    for (size_t i = 0; i < r->npgp; i++)
        if (strcmp(r->pgp[i].fpr, fpr) == 0)
            return 0;
    if (r->npgp == sizeof(r->pgp) / sizeof(r->pgp[0]))
        return fwrel_error_set(FWREL_EINTERNAL, "too many OpenPGP keys");
    k = &r->pgp[r->npgp];
    memset(k, 0, sizeof(*k));
    if ((error = fwrel_pgp_check_unlock(&k->pass, &k->len, r->o->gnupg_home, fpr, src)) != 0)
        return error;
    memcpy(k->fpr, fpr, 41);
    k->src.kind = k->pass != NULL ? FWREL_PASS_MEM : FWREL_PASS_NONE;
    k->src.fd = -1;
    k->src.mem = k->pass;
    k->src.mem_len = k->len;
    r->npgp++;
    return 0;
}

const fwrel_pass_src *fwrel_run_pgp_pass(const struct run *r, const char *fpr)
{
    for (size_t i = 0; i < r->npgp; i++)
        if (strcmp(r->pgp[i].fpr, fpr) == 0 && r->pgp[i].pass != NULL)
            return &r->pgp[i].src;
    return r->o->pgp_pass;
}

int fwrel_run_ready(struct run *r)
{
    const fwrel_pipeline_opts *o = r->o;
    size_t npgp = 0;
    int error;

    if (r->p->nexports > 0 &&
        ((error = fwrel_run_ready_exports(r)) != 0 || (error = fwrel_run_exports_check(r)) != 0))
        return error;
    for (size_t i = 0; i < r->napprovers; i++, npgp++)
        if ((error = fwrel_run_ready_signer(r, r->approvers[i], "approver")) != 0)
            return error;
    if (r->tag_signer[0] != '\0') {
        if ((error = fwrel_run_ready_signer(r, r->tag_signer, "tag signer")) != 0)
            return error;
        npgp++;
    }
    if (o->output != NULL) {
        char dir[PATH_MAX];
        const char *slash = strrchr(o->output, '/');
        if (slash == NULL)
            snprintf(dir, sizeof(dir), ".");
        else
            snprintf(dir, sizeof(dir), "%.*s", slash == o->output ? 1 : (int)(slash - o->output),
                     o->output);
        if (access(dir, W_OK | X_OK) != 0) {
            (void)fwrel_error_set_errno(FWREL_EIO, errno, "cannot write in %s", dir);
            return fwrel_error_about(FWREL_ABOUT_OUTPUT, o->output);
        }
    }
    /* Last, as it reads the OpenPGP passphrases: each key unlocks (a wrong passphrase names the
     * key, fingerprint and user id; a protected key with no passphrase source names the options),
     * before the keystore's passphrase is read. */
    for (size_t i = 0; i < r->napprovers; i++)
        if ((error = fwrel_run_ready_unlock(r, r->approvers[i])) != 0)
            return error;
    if (r->tag_signer[0] != '\0' && (error = fwrel_run_ready_unlock(r, r->tag_signer)) != 0)
        return error;
    fwrel_report_add(r->report, "preflight", FWREL_PASS, "%zu export%s, %zu OpenPGP key%s%s%s",
                     r->p->nexports, r->p->nexports == 1 ? "" : "s", npgp, npgp == 1 ? "" : "s",
                     r->npgp > 0 ? " (unlocked)" : "",
                     o->output != NULL ? ", output writable" : "");
    return 0;
}
