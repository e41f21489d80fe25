/* auditor.c - audit a release repository (auditor.h, docs/verify.md "Auditor mode"). */
#include "fwrel/auditor.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "fwrel/approvals.h"
#include "fwrel/audit.h"
#include "fwrel/bundle.h"
#include "fwrel/bverify.h"
#include "fwrel/history.h"
#include "fwrel/keystore_dir.h"
#include "fwrel/pgp.h"
#include "fwrel/policy.h"
#include "fwrel/repo.h"
#include "fwrel/rules.h"
#include "fwrel/tagmsg.h"
#include "util.h"

/* A live audit log, read once (under a shared flock) and shared read-only by the workers. */
typedef fwrel_audit_snapshot livelog;

/* What the tag message says, beyond the public fields. */
struct msg {
    int ok;
    char err[FWREL_ERROR_MSG_MAX];
    char bundle_path[300];
    char bundle_sha[65];
    uint64_t bundle_size;
    char rj_sha[65];
    char input_sha[65];
    uint64_t input_size;
    char policy_sha[65];
    int log;          /* index into logs, or -1 */
    int other_policy; /* made under another policy than the one given */
};

struct fwrel_auditor {
    fwrel_audit_release *rel;
    struct msg *msg;
    fwrel_audit_release **order; /* history order */
    size_t n;
    fwrel_report *report;
    livelog logs[FWREL_AUDITOR_LOGS_MAX];
    size_t nlogs;
    unsigned jobs;
    size_t failed;
    fwrel_policy *pol;   /* the policy in force, or NULL (no_policy) */
    char policy_sha[65]; /* its SHA-256, or "" */
    const char *tmpl;    /* the tag name template: the policy's, or the default */
};

/* Without a policy, tags are named as every shipped policy names them (docs/repo.md). */
#define DEFAULT_TAG_TEMPLATE "{product}/{channel}/v{version}"

/* --- the tag message ---------------------------------------------------------------------- */

/* The message of a raw signed tag (tagmsg.h, the reader of the writer fwrel-bundle uses). */
static void parse_message(fwrel_audit_release *R, struct msg *M, const uint8_t *raw,
                          size_t payload_len)
{
    fwrel_tagmsg *T = calloc(1, sizeof(*T));
    if (T == NULL) {
        M->ok = 0;
        snprintf(M->err, sizeof(M->err), "out of memory");
        return;
    }
    M->ok = fwrel_tagmsg_decode_tag(T, M->err, sizeof(M->err), raw, payload_len);
    memcpy(R->product, T->product, sizeof(R->product));
    memcpy(R->version, T->version, sizeof(R->version));
    memcpy(R->channel, T->channel, sizeof(R->channel));
    R->counter = T->counter;
    R->secure_version = T->secure_version;
    _Static_assert(sizeof(R->approvals) == sizeof(T->approvals), "approvals differ");
    memcpy(R->approvals, T->approvals, sizeof(R->approvals));
    R->napprovals = T->napprovals;
    R->approvals_required = T->approvals_required;
    memcpy(R->audit_path, T->audit_path, sizeof(R->audit_path));
    memcpy(R->audit_head, T->audit_head, sizeof(R->audit_head));
    R->audit_entries = T->audit_entries;
    memcpy(M->bundle_path, T->bundle_path, sizeof(M->bundle_path));
    memcpy(M->bundle_sha, T->bundle_sha, sizeof(M->bundle_sha));
    M->bundle_size = T->bundle_size;
    memcpy(M->rj_sha, T->rj_sha, sizeof(M->rj_sha));
    memcpy(M->input_sha, T->input_sha, sizeof(M->input_sha));
    M->input_size = T->input_size;
    memcpy(M->policy_sha, T->policy_sha, sizeof(M->policy_sha));
    free(T);
}

/* --- the tag name ------------------------------------------------------------------------- */

/* The tag name the template gives for product, channel and version (as the pipeline makes it);
 * 0, or -1 when it does not fit. */
static int render_tag(char out[256], const char *t, const char *product, const char *channel,
                      const char *version)
{
    size_t n = 0;
    while (*t != '\0') {
        const char *v = NULL;
        if (strncmp(t, "{product}", 9) == 0)
            v = product;
        else if (strncmp(t, "{channel}", 9) == 0)
            v = channel;
        else if (strncmp(t, "{version}", 9) == 0)
            v = version;
        size_t len = v != NULL ? strlen(v) : 1;
        if (n + len >= 256)
            return -1;
        memcpy(out + n, v != NULL ? v : t, len);
        n += len;
        t += v != NULL ? 9 : 1;
    }
    out[n] = '\0';
    return 0;
}

/* What a tag name says under the template. */
struct tname {
    char product[65], channel[17], version[33];
};

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static void span(char *out, size_t cap, const char *s, size_t n)
{
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
}

/* Does s match the template t, {product} being product (NULL: any policy name), {channel} one of
 * the three channels and {version} any text without '/'? What it says goes to o. The template has
 * a few placeholders (policy.c), so the backtracking is shallow; depth bounds it anyway. */
static int tmpl_match(struct tname *o, const char *t, const char *s, const char *product,
                      unsigned depth)
{
    static const char *const channels[] = {"dev", "beta", "prod"};
    if (depth > 12)
        return 0;
    while (*t != '\0') {
        if (strncmp(t, "{product}", 9) == 0 && product != NULL) {
            size_t n = strlen(product);
            if (strncmp(s, product, n) != 0)
                return 0;
            span(o->product, sizeof(o->product), s, n);
            s += n;
            t += 9;
        } else if (strncmp(t, "{product}", 9) == 0 || strncmp(t, "{version}", 9) == 0) {
            int prod = t[1] == 'p';
            for (size_t k = 1;
                 s[k - 1] != '\0' && s[k - 1] != '/' && (!prod || name_char(s[k - 1])); k++)
                if (tmpl_match(o, t + 9, s + k, product, depth + 1)) {
                    if (prod)
                        span(o->product, sizeof(o->product), s, k);
                    else
                        span(o->version, sizeof(o->version), s, k);
                    return 1;
                }
            return 0;
        } else if (strncmp(t, "{channel}", 9) == 0) {
            for (size_t c = 0; c < 3; c++) {
                size_t n = strlen(channels[c]);
                if (strncmp(s, channels[c], n) == 0 &&
                    tmpl_match(o, t + 9, s + n, product, depth + 1)) {
                    span(o->channel, sizeof(o->channel), s, n);
                    return 1;
                }
            }
            return 0;
        } else {
            if (*t != *s)
                return 0;
            t++;
            s++;
        }
    }
    return *s == '\0';
}

/* Is path (a file in a commit) under a directory whose name is product's under the template? */
static int path_under(const char *tmpl, const char *path, const char *product)
{
    char dir[256];
    struct tname tn;
    for (const char *c = strchr(path, '/'); c != NULL; c = strchr(c + 1, '/')) {
        if ((size_t)(c - path) >= sizeof(dir))
            break;
        memcpy(dir, path, (size_t)(c - path));
        dir[c - path] = '\0';
        memset(&tn, 0, sizeof(tn));
        if (tmpl_match(&tn, tmpl, dir, product, 0))
            return 1;
    }
    return 0;
}

/* tag.name: the tag name, and so the directory of its files in the tree, is the template's for
 * the product, channel and version the (signed) message names. */
static void check_name(fwrel_problems *p, const char *tmpl, const fwrel_audit_release *R)
{
    char want[256] = "";
    struct tname tn;
    memset(&tn, 0, sizeof(tn));
    if (!tmpl_match(&tn, tmpl, R->tag, NULL, 0)) {
        fwrel_problem(p, "the tag name is not of the form %s", tmpl);
    } else {
        if (strcmp(tn.product, R->product) != 0)
            fwrel_problem(p, "the tag name says product %s, the message %s", tn.product,
                          R->product);
        if (strcmp(tn.channel, R->channel) != 0)
            fwrel_problem(p, "the tag name says channel %s, the message %s", tn.channel,
                          R->channel);
        if (strcmp(tn.version, R->version) != 0)
            fwrel_problem(p, "the tag name says version %s, the message %s", tn.version,
                          R->version);
    }
    if (p->n == 0 && (render_tag(want, tmpl, R->product, R->channel, R->version) != 0 ||
                      strcmp(want, R->tag) != 0))
        fwrel_problem(p, "the message's release is named %s under %s, not %s", want, tmpl, R->tag);
}

/* --- live logs ------------------------------------------------------------------------------ */

static int log_find(const fwrel_auditor *a, const char *path)
{
    for (size_t i = 0; i < a->nlogs; i++)
        if (strcmp(a->logs[i].sum.path, path) == 0)
            return (int)i;
    return -1;
}

static int str_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Read, index and summarise the live log at repo/path (fwrel_audit_snapshot_load()). */
static int log_load(livelog *L, const char *repo, const char *path, const char *const *names,
                    size_t nnames)
{
    char full[4096];
    int n = snprintf(full, sizeof(full), "%s/%s", repo, path);
    if (n < 0 || (size_t)n >= sizeof(full))
        return fwrel_error_set(FWREL_EUSAGE, "repository path too long");
    return fwrel_audit_snapshot_load(L, full, path, names, nnames, FWREL_REPO_FILE_MAX);
}

/* --- per release, in the workers --------------------------------------------------------- */

struct ctx {
    fwrel_auditor *a;
    const char *path;
    const char *home;
    pthread_mutex_t lock;
    size_t next;
    int error; /* first fatal error (not a failed check) */
    fwrel_error first;
};

#define ADD(R, name, verdict, ...)                                                                 \
    do {                                                                                           \
        if (fwrel_report_add((R)->report, name, verdict, __VA_ARGS__) != 0)                        \
            return FWREL_EIO;                                                                      \
    } while (0)

/* Is this one of the errors a check reports (rather than one that stops the audit)? A path or
 * tag name from the repository that the repository module refuses (FWREL_EUSAGE "invalid path in
 * the repository") is the repository's problem, not the caller's. */
static int check_error(int e)
{
    return e == FWREL_EVERIFY || e == FWREL_EFORMAT || e == FWREL_EUSAGE;
}

static int step_ci(fwrel_audit_release *R, const char *home, const uint8_t *data, size_t len)
{
    fwrel_report *ci = NULL;
    fwrel_bverify_ci_opts co = {home, NULL, NULL};
    int error;
    if ((error = fwrel_report_new(&ci)) != 0)
        return error;
    error = fwrel_bundle_verify_ci_mem(ci, data, len, &co);
    for (size_t i = 0; i < fwrel_report_count(ci); i++) {
        const fwrel_step *s = fwrel_report_step(ci, i);
        char name[FWREL_STEP_NAME_MAX];
        snprintf(name, sizeof(name), "ci.%.44s", s->name);
        if (fwrel_report_add(R->report, name, s->verdict, "%s", s->detail) != 0) {
            fwrel_report_free(ci);
            return FWREL_EIO;
        }
    }
    fwrel_report_free(ci);
    if (error != 0 && error != FWREL_EVERIFY) {
        char m[FWREL_ERROR_MSG_MAX];
        snprintf(m, sizeof(m), "%s", fwrel_error_last()->message);
        if (error == FWREL_EIO || error == FWREL_EUSAGE)
            return error;
        ADD(R, "ci", FWREL_FAIL, "%s", m);
    }
    fwrel_error_clear();
    return 0;
}

/* The bundle's release.json, decoded into R->record. */
static const fwrel_bundle_member *bundle_record(fwrel_bundle **b, fwrel_audit_release *R,
                                                const uint8_t *data, size_t len)
{
    const fwrel_bundle_member *m;
    if (fwrel_bundle_read_mem(b, data, len) != 0 ||
        (m = fwrel_bundle_find(*b, "release.json")) == NULL) {
        fwrel_error_clear();
        return NULL;
    }
    if (fwrel_release_decode(&R->record, m->data, m->len) == 0)
        R->have_record = 1;
    fwrel_error_clear();
    return m;
}

static void check_fields(fwrel_problems *p, const fwrel_audit_release *R, const struct msg *M,
                         const fwrel_bundle *b)
{
    const fwrel_release *rec = &R->record;
    if (strcmp(R->product, rec->product) != 0)
        fwrel_problem(p, "product %s, the record's %s", R->product, rec->product);
    if (strcmp(R->version, rec->version) != 0)
        fwrel_problem(p, "version %s, the record's %s", R->version, rec->version);
    if (strcmp(R->channel, rec->channel) != 0)
        fwrel_problem(p, "channel %s, the record's %s", R->channel, rec->channel);
    if (R->counter != rec->counter)
        fwrel_problem(p, "counter %llu, the record's %llu", (unsigned long long)R->counter,
                      (unsigned long long)rec->counter);
    if (R->secure_version != rec->secure_version)
        fwrel_problem(p, "secure_version %u, the record's %u", R->secure_version,
                      rec->secure_version);
    if (strcmp(M->input_sha, rec->input.sha256) != 0 || M->input_size != rec->input.size)
        fwrel_problem(p, "input is not the record's");
    if (strcmp(M->policy_sha, rec->policy_sha256) != 0)
        fwrel_problem(p, "policy is not the record's");
    if (R->approvals_required != rec->approvals_required)
        fwrel_problem(p, "%u approvals required, the record says %u", R->approvals_required,
                      rec->approvals_required);
    /* The approvers listed are the bundle's approvals/<FPR>.asc, in the same order. */
    size_t k = 0, ok = 1;
    for (size_t i = 0; b != NULL && i < b->n; i++) {
        const char *name = b->members[i].name;
        if (strncmp(name, "approvals/", 10) != 0)
            continue;
        if (k >= R->napprovals || strncmp(name + 10, R->approvals[k], 40) != 0)
            ok = 0;
        k++;
    }
    if (!ok || k != R->napprovals)
        fwrel_problem(p, "the approvers listed are not the bundle's approvals");
}

/* audit.copy and audit.live: the log committed at the tag, and the live log
 * (fwrel_audit_check_copy()). */
static int step_audit_copy(fwrel_audit_release *R, const struct msg *M, fwrel_repo *r,
                           const livelog *L)
{
    uint8_t *copy = NULL;
    size_t len = 0;
    char m[FWREL_ERROR_MSG_MAX];
    int error;

    error = fwrel_repo_read_file(&copy, &len, r, R->tag, R->audit_path, FWREL_REPO_FILE_MAX);
    if (error != 0 && !check_error(error))
        goto done;
    if (error != 0 || len == 0) {
        snprintf(m, sizeof(m), "%s",
                 error != 0 ? fwrel_error_last()->message : "the committed log is empty");
        if ((error = fwrel_report_add(R->report, "audit.copy", FWREL_FAIL, "%s", m)) == 0)
            error = fwrel_report_add(R->report, "audit.live", FWREL_SKIP, "no committed copy");
        goto done;
    }
    error = fwrel_audit_check_copy(R->report, L, R->audit_path, copy, len, R->audit_head,
                                   R->audit_entries, M->bundle_sha);
done:
    free(copy);
    return error;
}

/* policy and approvals: with a policy, the release is of its product and of one of its channels,
 * and its approvals meet the policy's rule (fwrel_approvals_check(), the rule CI mode uses); a
 * release recording another policy's hash is noted (a policy change is visible, not a failure:
 * the given policy's rule is the one applied). Without a policy the release's own record is the
 * only rule there is: ci.approvals judged by it, and these steps say they were not run. */
static int step_policy(struct ctx *c, fwrel_audit_release *R, struct msg *M, const fwrel_bundle *b,
                       fwrel_approvals_rule *rule)
{
    const fwrel_policy *pol = c->a->pol;
    fwrel_problems p = {"", 0};
    fwrel_approvals_outcome out;
    int error;

    if (pol == NULL) {
        fwrel_approvals_rule_record(rule, &R->record);
        ADD(R, "policy", FWREL_SKIP, "no policy given: the release's own record says who approves");
        ADD(R, "approvals", FWREL_SKIP,
            "no policy given: approvals were checked against the approvers and threshold the "
            "release records (ci.approvals), not against a policy");
        return 0;
    }
    if (fwrel_approvals_rule_policy(rule, pol, R->channel) != 0) {
        fwrel_problem(&p, "%s", fwrel_error_last()->message);
        fwrel_error_clear();
    }
    if (strcmp(pol->product, R->product) != 0)
        fwrel_problem(&p, "the policy is for product %s, not %s", pol->product, R->product);
    if (p.n)
        ADD(R, "policy", FWREL_FAIL, "%s", p.text);
    else
        ADD(R, "policy", FWREL_PASS, "%s %s: %u approvals required, by the policy's %zu approvers",
            R->product, R->channel, rule->required, rule->npinned);
    if (R->have_record && strcmp(R->record.policy_sha256, c->a->policy_sha) != 0) {
        M->other_policy = 1;
        ADD(R, "policy", FWREL_INFO,
            "made under another policy (sha256 %.16s...); the given one's (%.16s...) rule is "
            "applied",
            R->record.policy_sha256, c->a->policy_sha);
    }
    if (b == NULL) {
        ADD(R, "approvals", FWREL_SKIP, "no bundle");
        return 0;
    }
    error = fwrel_approvals_check(&out, rule, b, c->home);
    if (error == FWREL_EFORMAT) {
        ADD(R, "approvals", FWREL_FAIL, "%s", fwrel_error_last()->message);
        fwrel_error_clear();
        return 0;
    }
    if (error != 0)
        return error;
    ADD(R, "approvals", out.ok ? FWREL_PASS : FWREL_FAIL, "%s", out.detail);
    return 0;
}

static int audit_one(struct ctx *c, fwrel_repo *r, size_t i)
{
    fwrel_audit_release *R = &c->a->rel[i];
    const struct msg *M = &c->a->msg[i];
    fwrel_pgp_result s;
    char commit[41];
    uint8_t *bundle = NULL, *rj = NULL;
    size_t blen = 0, rjlen = 0;
    fwrel_bundle *b = NULL;
    const fwrel_bundle_member *brj = NULL;
    fwrel_approvals_rule rule;
    int error;

    memset(&rule, 0, sizeof(rule));
    if ((error = fwrel_report_new(&R->report)) != 0)
        return error;
    error = fwrel_repo_tag_verify(&s, commit, r, R->tag, c->home);
    if (error == 0) {
        memcpy(R->signer, s.fpr, 41);
        ADD(R, "tag.signature", FWREL_PASS, "good signature by %s on commit %.12s", s.fpr, commit);
    } else if (check_error(error)) {
        ADD(R, "tag.signature", FWREL_FAIL, "%s", fwrel_error_last()->message);
    } else {
        return error;
    }
    if (!M->ok) {
        static const char *const rest[] = {
            "tag.name",   "bundle.blob",   "ci",         "record.tree", "policy", "approvals",
            "tag.signer", "record.fields", "audit.copy", "audit.live"};
        ADD(R, "tag.message", FWREL_FAIL, "%s", M->err);
        for (size_t k = 0; k < sizeof(rest) / sizeof(rest[0]); k++)
            ADD(R, rest[k], FWREL_SKIP, "no fwrel tag message");
        return 0;
    }
    ADD(R, "tag.message", FWREL_PASS, "%s %s (%s), counter %llu, secure_version %u", R->product,
        R->version, R->channel, (unsigned long long)R->counter, R->secure_version);
    {
        fwrel_problems p = {"", 0};
        check_name(&p, c->a->tmpl, R);
        if (p.n)
            ADD(R, "tag.name", FWREL_FAIL, "%s", p.text);
        else
            ADD(R, "tag.name", FWREL_PASS, "%s is the name %s gives this release", R->tag,
                c->a->tmpl);
    }

    /* The bundle blob. */
    char want_path[300];
    uint8_t d[32];
    char hex[65];
    snprintf(want_path, sizeof(want_path), "%s/bundle.fwb", R->tag);
    if (strcmp(M->bundle_path, want_path) != 0) {
        /* Not this release's own bundle: not read. */
        if ((error = fwrel_report_add(R->report, "bundle.blob", FWREL_FAIL,
                                      "the tag names %s, not %s", M->bundle_path, want_path)) != 0)
            goto done;
    } else {
        error =
            fwrel_repo_read_file(&bundle, &blen, r, R->tag, M->bundle_path, FWREL_REPO_FILE_MAX);
        if (error != 0 && !check_error(error))
            goto done;
    }
    if (error != 0) {
        if ((error = fwrel_report_add(R->report, "bundle.blob", FWREL_FAIL, "%s",
                                      fwrel_error_last()->message)) != 0)
            goto done;
    } else if (bundle != NULL) {
        if ((error = fwrel_sha256(d, bundle, blen)) != 0)
            goto done;
        fwrel_hex(hex, d, 32);
        if (strcmp(hex, M->bundle_sha) != 0 || blen != M->bundle_size)
            error = fwrel_report_add(R->report, "bundle.blob", FWREL_FAIL,
                                     "%s in the tree has sha256 %.16s... (%zu bytes), the tag "
                                     "says %.16s... (%llu bytes)",
                                     M->bundle_path, hex, blen, M->bundle_sha,
                                     (unsigned long long)M->bundle_size);
        else
            error = fwrel_report_add(R->report, "bundle.blob", FWREL_PASS,
                                     "%s: sha256 %.16s..., %zu bytes, as the tag says",
                                     M->bundle_path, hex, blen);
        if (error != 0)
            goto done;
    }
    fwrel_error_clear();

    /* CI checks, and the record. */
    if (bundle != NULL) {
        if ((error = step_ci(R, c->home, bundle, blen)) != 0)
            goto done;
        brj = bundle_record(&b, R, bundle, blen);
    } else if ((error = fwrel_report_add(R->report, "ci", FWREL_SKIP, "no bundle")) != 0) {
        goto done;
    }

    char rjpath[300];
    snprintf(rjpath, sizeof(rjpath), "%s/release.json", R->tag);
    error = fwrel_repo_read_file(&rj, &rjlen, r, R->tag, rjpath, FWREL_RELEASE_JSON_MAX);
    if (error != 0 && !check_error(error))
        goto done;
    {
        fwrel_problems p = {"", 0};
        if (error != 0) {
            fwrel_problem(&p, "%s", fwrel_error_last()->message);
        } else {
            if ((error = fwrel_sha256(d, rj, rjlen)) != 0)
                goto done;
            fwrel_hex(hex, d, 32);
            if (strcmp(hex, M->rj_sha) != 0)
                fwrel_problem(&p, "%s has sha256 %.16s..., the tag says %.16s...", rjpath, hex,
                              M->rj_sha);
            if (brj == NULL)
                fwrel_problem(&p, "the bundle has no readable release.json");
            else if (brj->len != rjlen || memcmp(brj->data, rj, rjlen) != 0)
                fwrel_problem(&p, "%s is not the bundle's release.json", rjpath);
        }
        fwrel_error_clear();
        if ((error = fwrel_report_add(R->report, "record.tree", p.n ? FWREL_FAIL : FWREL_PASS, "%s",
                                      p.n ? p.text : "release.json in the tree is the bundle's")) !=
            0)
            goto done;
    }

    /* The policy in force, its approval rule, and the tag signer under that rule. */
    if ((error = step_policy(c, R, &c->a->msg[i], b, &rule)) != 0)
        goto done;
    if (c->a->pol == NULL && !R->have_record)
        error = fwrel_report_add(R->report, "tag.signer", FWREL_SKIP, "no release record");
    else if (R->signer[0] == '\0')
        error = fwrel_report_add(R->report, "tag.signer", FWREL_SKIP, "the signature failed");
    else if (!fwrel_approvals_tag_signer_ok(&rule, R->signer))
        error = fwrel_report_add(R->report, "tag.signer", FWREL_FAIL,
                                 "the tag is signed by %s, not an approver %s pins", R->signer,
                                 c->a->pol != NULL ? "the policy" : "the release");
    else if (rule.npinned == 0)
        error = fwrel_report_add(R->report, "tag.signer", FWREL_PASS,
                                 "signed by %s; the policy pins no approver and allows a %s "
                                 "release without approvals",
                                 R->signer, R->channel);
    else
        error = fwrel_report_add(R->report, "tag.signer", FWREL_PASS, "%s is an approver %s pins",
                                 R->signer, c->a->pol != NULL ? "the policy" : "the release");
    if (error != 0)
        goto done;
    if (R->have_record) {
        fwrel_problems p = {"", 0};
        check_fields(&p, R, M, b);
        error = fwrel_report_add(R->report, "record.fields", p.n ? FWREL_FAIL : FWREL_PASS, "%s",
                                 p.n ? p.text
                                     : "the tag message states the record's product, version, "
                                       "channel, counter, secure_version, input, policy and "
                                       "approvals");
    } else {
        error = fwrel_report_add(R->report, "record.fields", FWREL_SKIP, "no release record");
    }
    if (error != 0)
        goto done;

    /* The audit log. */
    error = step_audit_copy(R, M, r, M->log >= 0 ? &c->a->logs[M->log] : NULL);
done:
    fwrel_bundle_free(b);
    free(bundle);
    free(rj);
    return error;
}

struct worker {
    struct ctx *c;
    fwrel_repo *r;
    pthread_t t;
    int started;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct ctx *c = w->c;
    for (;;) {
        pthread_mutex_lock(&c->lock);
        size_t i = c->next++;
        int stop = c->error != 0;
        pthread_mutex_unlock(&c->lock);
        if (stop || i >= c->a->n)
            break;
        int e = audit_one(c, w->r, i);
        if (e != 0) {
            pthread_mutex_lock(&c->lock);
            if (c->error == 0) {
                c->error = e;
                c->first = *fwrel_error_last();
            }
            pthread_mutex_unlock(&c->lock);
            break;
        }
    }
    return NULL;
}

/* --- the branch, in the main thread ---------------------------------------------------------- */

/* repo.branch and release.dir (fwrel_repo_branch_audit()): each release's place on the branch. */
static int check_branch(fwrel_auditor *a, fwrel_repo *r, const fwrel_repo_tag *tags, size_t ntags)
{
    fwrel_repo_branch_release *b = calloc(a->n ? a->n : 1, sizeof(*b));
    int error;
    if (b == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    for (size_t i = 0; i < a->n; i++) {
        b[i].tag = a->rel[i].tag;
        b[i].commit = a->rel[i].commit;
        b[i].audit_path = a->rel[i].audit_path;
        b[i].report = a->rel[i].report;
    }
    error = fwrel_repo_branch_audit(a->report, b, a->n, r, tags, ntags, FWREL_AUDITOR_TAGS_MAX);
    for (size_t i = 0; i < a->n && error == 0; i++)
        a->rel[i].branch_pos = b[i].pos;
    free(b);
    return error;
}

/* --- history, in the main thread -------------------------------------------------------------- */

static int by_counter(const void *x, const void *y)
{
    const fwrel_audit_release *a = *(fwrel_audit_release *const *)x;
    const fwrel_audit_release *b = *(fwrel_audit_release *const *)y;
    if (a->counter != b->counter)
        return a->counter < b->counter ? -1 : 1;
    if (a->branch_pos != b->branch_pos)
        return a->branch_pos < b->branch_pos ? -1 : 1;
    return strcmp(a->tag, b->tag);
}

/* One rule's verdict as a report step: PASS with the detail given, or FAIL with the rule's
 * reason (history.h). */
static int history_step(fwrel_audit_release *R, const char *name, int broken, const char *fmt, ...)
    FWREL_PRINTF(4, 5);

static int history_step(fwrel_audit_release *R, const char *name, int broken, const char *fmt, ...)
{
    char pass[FWREL_ERROR_MSG_MAX];
    va_list ap;
    if (broken) {
        char m[FWREL_ERROR_MSG_MAX];
        snprintf(m, sizeof(m), "%s", fwrel_error_last()->message);
        fwrel_error_clear();
        return fwrel_report_add(R->report, name, FWREL_FAIL, "%s", m) != 0 ? FWREL_EIO : 0;
    }
    va_start(ap, fmt);
    vsnprintf(pass, sizeof(pass), fmt, ap);
    va_end(ap);
    return fwrel_report_add(R->report, name, FWREL_PASS, "%s", pass) != 0 ? FWREL_EIO : 0;
}

/* The rulebook's history rules (rules.h) over one product's releases, in counter order, under the
 * policy in force (the pipeline's rules; under --no-policy secure_version is held monotonic). */
static int history_product(fwrel_audit_release **g, size_t n, const fwrel_policy *in_force)
{
    fwrel_history_state *st = NULL;
    fwrel_history_item *items = NULL;
    int error = 0;
    qsort(g, n, sizeof(*g), by_counter);
    if ((error = fwrel_history_state_new(&st)) != 0)
        return error;
    if ((items = calloc(n ? n : 1, sizeof(*items))) == NULL) {
        fwrel_history_state_free(st);
        return fwrel_error_set(FWREL_EIO, "out of memory");
    }
    for (size_t k = 0; k < n && error == 0; k++) {
        fwrel_audit_release *R = g[k];
        const fwrel_audit_release *prev = k ? g[k - 1] : NULL;
        fwrel_history_item *it = &items[k];
        it->tag = R->tag;
        it->product = R->product;
        it->version = R->version;
        it->channel = R->channel;
        it->counter = R->counter;
        it->secure_version = R->secure_version;
        fwrel_rules_history_outcome ro;
        if ((error = fwrel_rules_history(&ro, st, it, in_force)) != 0)
            break;
        /* Counters: 1..n, in branch order. */
        int broken =
            ro.counter.error != 0 && fwrel_error_set(ro.counter.error, "%s", ro.counter.why);
        if (!broken && prev != NULL && R->branch_pos != 0 && prev->branch_pos != 0 &&
            R->branch_pos < prev->branch_pos)
            broken = fwrel_error_set(FWREL_EVERIFY,
                                     "counter %llu was committed before counter %llu (%s)",
                                     (unsigned long long)R->counter,
                                     (unsigned long long)prev->counter, prev->tag) != 0;
        if ((error =
                 history_step(R, "history.counter", broken, "counter %llu of %zu, in branch order",
                              (unsigned long long)R->counter, n)) != 0)
            break;
        /* secure_version never decreases, where the policy in force says so. */
        broken = ro.secure_version.error != 0 &&
                 fwrel_error_set(ro.secure_version.error, "%s", ro.secure_version.why);
        if ((error =
                 history_step(R, "history.secure_version", broken,
                              ro.monotonic ? "secure_version %u, not below any earlier release's"
                                           : "secure_version %u (the policy does not hold it "
                                             "monotonic)",
                              R->secure_version)) != 0)
            break;
        /* Versions strictly increase per channel. */
        broken = ro.version.error != 0 && fwrel_error_set(ro.version.error, "%s", ro.version.why);
        if ((error = history_step(R, "history.version", broken,
                                  "version %s is above every earlier %s release", R->version,
                                  R->channel)) != 0)
            break;
        error = fwrel_history_state_add(st, it);
    }
    fwrel_history_state_free(st);
    free(items);
    return error;
}

static int check_history(fwrel_auditor *a)
{
    fwrel_audit_release **g = calloc(a->n ? a->n : 1, sizeof(*g));
    unsigned char *done = calloc(a->n ? a->n : 1, 1);
    int error = 0;
    if (g == NULL || done == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < a->n && error == 0; i++) {
        if (done[i])
            continue;
        if (!a->msg[i].ok) {
            static const char *const steps[] = {"history.counter", "history.secure_version",
                                                "history.version"};
            for (size_t k = 0; k < 3 && error == 0; k++)
                if (fwrel_report_add(a->rel[i].report, steps[k], FWREL_SKIP,
                                     "no fwrel tag message") != 0)
                    error = FWREL_EIO;
            continue;
        }
        size_t n = 0;
        for (size_t j = i; j < a->n; j++)
            if (!done[j] && a->msg[j].ok && strcmp(a->rel[j].product, a->rel[i].product) == 0) {
                done[j] = 1;
                g[n++] = &a->rel[j];
            }
        error = history_product(g, n, a->pol);
    }
out:
    free(g);
    free(done);
    return error;
}

/* --- keys ------------------------------------------------------------------------------------ */

static void key_add(fwrel_audit_release *R, const char *role, const char *id)
{
    if (R->nkeys < FWREL_AUDITOR_KEYS_MAX && id[0] != '\0') {
        fwrel_audit_key *k = &R->keys[R->nkeys++];
        k->role = role;
        snprintf(k->id, sizeof(k->id), "%s", id);
        k->status = "";
    }
}

static int check_keys(fwrel_auditor *a, const fwrel_keystore *ks)
{
    for (size_t i = 0; i < a->n; i++) {
        fwrel_audit_release *R = &a->rel[i];
        const fwrel_release *rec = &R->record;
        fwrel_problems p = {"", 0}, info = {"", 0};
        int e;
        if (R->have_record) {
            for (size_t k = 0; k < rec->nsign_keys; k++)
                key_add(R, "secure-boot", rec->sign_keys[k]);
            for (size_t k = 0; k < rec->nmanifest_signers; k++)
                key_add(R, "manifest-sign", rec->manifest_signers[k]);
            for (size_t k = 0; k < rec->nrecipients; k++)
                key_add(R, "manifest-recipient", rec->recipients[k]);
            key_add(R, "image-key", rec->image_key);
        }
        if (ks == NULL) {
            e = fwrel_report_add(R->report, "keys", FWREL_SKIP, "no keystore given");
        } else if (!R->have_record) {
            e = fwrel_report_add(R->report, "keys", FWREL_SKIP, "no release record");
        } else {
            size_t active = 0;
            for (size_t k = 0; k < R->nkeys; k++) {
                fwrel_audit_key *K = &R->keys[k];
                const fwrel_ks_entry *en = fwrel_ks_find_id(ks, K->id);
                int signs =
                    strcmp(K->role, "secure-boot") == 0 || strcmp(K->role, "manifest-sign") == 0;
                if (en == NULL) {
                    K->status = "absent";
                    fwrel_problem(&p, "%s key %.16s... is not in the keystore", K->role, K->id);
                    continue;
                }
                snprintf(K->name, sizeof(K->name), "%s", en->name);
                K->epoch = en->epoch;
                K->status = fwrel_ks_status_name(en->status);
                if (en->status == FWREL_KS_REVOKED)
                    fwrel_problem(
                        &p, "%s with a key later revoked: %s epoch %u (id %.16s...), revoked %s",
                        signs ? "signed" : "encrypted", en->name, en->epoch, K->id, en->changed);
                else if (en->status == FWREL_KS_RETIRED)
                    fwrel_problem(&info,
                                  "%s epoch %u is retired (%s); it still verifies this release",
                                  en->name, en->epoch, en->changed);
                else
                    active++;
            }
            if (p.n)
                e = fwrel_report_add(R->report, "keys", FWREL_FAIL, "%s", p.text);
            else
                e = fwrel_report_add(R->report, "keys", FWREL_PASS,
                                     "%zu keys in the keystore, %zu active, none revoked", R->nkeys,
                                     active);
            if (e == 0 && info.n)
                e = fwrel_report_add(R->report, "keys", FWREL_INFO, "%s", info.text);
        }
        if (e != 0)
            return FWREL_EIO;
    }
    return 0;
}

/* --- the run ------------------------------------------------------------------------------- */

static int history_order(const void *x, const void *y)
{
    const fwrel_audit_release *a = *(fwrel_audit_release *const *)x;
    const fwrel_audit_release *b = *(fwrel_audit_release *const *)y;
    /* On the branch first, in branch order; then the others by time. */
    if ((a->branch_pos == 0) != (b->branch_pos == 0))
        return a->branch_pos == 0 ? 1 : -1;
    if (a->branch_pos != b->branch_pos)
        return a->branch_pos < b->branch_pos ? -1 : 1;
    if (a->time != b->time)
        return a->time < b->time ? -1 : 1;
    return strcmp(a->tag, b->tag);
}

struct under {
    const char *tmpl, *product;
};

static int under_match(const char *path, void *arg)
{
    const struct under *u = arg;
    return path_under(u->tmpl, path, u->product);
}

/* Does the commit write (add, change or delete) a path under a directory named as product's
 * releases are? An unreadable commit counts as yes: the tag is kept, and fails. */
static int writes_under(fwrel_repo *r, const char *commit, const char *tmpl, const char *product)
{
    struct under u = {tmpl, product};
    int hit = 0;
    if (fwrel_repo_commit_writes(&hit, r, commit, under_match, &u) != 0) {
        fwrel_error_clear();
        return 1;
    }
    return hit;
}

/* --product: is this tag the product's? By its message, its name under the template, or where its
 * commit writes; a tag whose message cannot be read is kept (it fails). Never by the message
 * alone: a release under the product's name or path whose message names another product is
 * audited here, and fails tag.name. */
static int selected(const fwrel_auditor *a, fwrel_repo *r, const fwrel_audit_release *R,
                    const char *product)
{
    struct tname tn;
    memset(&tn, 0, sizeof(tn));
    if (R->product[0] == '\0' || strcmp(R->product, product) == 0 ||
        tmpl_match(&tn, a->tmpl, R->tag, product, 0))
        return 1;
    return writes_under(r, R->commit, a->tmpl, product);
}

/* Phase 1: read each tag's message (cheap, serial). Selects by product (selected()). */
static int read_tags(fwrel_auditor *a, fwrel_repo *r, const fwrel_repo_tag *tags, size_t ntags,
                     const char *product)
{
    for (size_t i = 0; i < ntags; i++) {
        fwrel_audit_release *R = &a->rel[a->n];
        struct msg *M = &a->msg[a->n];
        uint8_t *raw = NULL;
        size_t len = 0;
        fwrel_repo_tag_info info;
        memset(R, 0, sizeof(*R));
        memset(M, 0, sizeof(*M));
        M->log = -1;
        snprintf(R->tag, sizeof(R->tag), "%s", tags[i].name);
        snprintf(R->commit, sizeof(R->commit), "%s", tags[i].target);
        R->time = tags[i].time;
        int e = fwrel_repo_tag_raw(&raw, &len, r, R->tag);
        if (e == 0)
            e = fwrel_repo_tag_parse(&info, raw, len);
        if (e == 0) {
            parse_message(R, M, raw, info.payload_len);
        } else if (check_error(e)) {
            snprintf(M->err, sizeof(M->err), "%s", fwrel_error_last()->message);
            fwrel_error_clear();
        } else {
            free(raw);
            return e;
        }
        free(raw);
        if (product != NULL && !selected(a, r, R, product))
            continue;
        a->n++;
    }
    return 0;
}

static int load_logs_sorted(fwrel_auditor *a, const char *path, const char *const *names,
                            size_t nnames)
{
    for (size_t i = 0; i < a->n; i++) {
        struct msg *M = &a->msg[i];
        if (!M->ok)
            continue;
        M->log = log_find(a, a->rel[i].audit_path);
        if (M->log >= 0 || a->nlogs == FWREL_AUDITOR_LOGS_MAX)
            continue;
        int e = log_load(&a->logs[a->nlogs], path, a->rel[i].audit_path, names, nnames);
        if (e != 0)
            return e;
        M->log = (int)a->nlogs++;
    }
    for (size_t i = 0; i < a->nlogs; i++) {
        const fwrel_audit_log_summary *s = &a->logs[i].sum;
        int e = s->valid ? fwrel_report_add(a->report, "audit.log", FWREL_PASS,
                                            "%s: %llu entries, chain valid, head %.16s...", s->path,
                                            (unsigned long long)s->entries, s->head)
                         : fwrel_report_add(a->report, "audit.log", FWREL_FAIL, "%s: %s", s->path,
                                            s->error);
        if (e == 0 && s->untagged > 0)
            e = fwrel_report_add(a->report, "audit.log", FWREL_INFO,
                                 "%s: %llu bundle %s no tag of the repository (first %s): "
                                 "bundles awaiting approvals, or releases removed",
                                 s->path, (unsigned long long)s->untagged,
                                 s->untagged == 1 ? "entry names" : "entries name",
                                 s->first_untagged);
        if (e != 0)
            return FWREL_EIO;
    }
    return 0;
}

/* The live logs the tags name, with the repository's tag names for the summary. */
static int load_logs(fwrel_auditor *a, const char *path, const fwrel_repo_tag *tags, size_t ntags)
{
    const char **names = calloc(ntags ? ntags : 1, sizeof(*names));
    if (names == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    for (size_t i = 0; i < ntags; i++)
        names[i] = tags[i].name;
    if (ntags > 0)
        qsort(names, ntags, sizeof(*names), str_cmp);
    int error = load_logs_sorted(a, path, names, ntags);
    free(names);
    return error;
}

static int run_workers(fwrel_auditor *a, fwrel_repo *r0, const char *path, const char *home)
{
    struct ctx c;
    struct worker w[FWREL_AUDITOR_JOBS_MAX];
    unsigned jobs = a->jobs;
    int error = 0;

    memset(&c, 0, sizeof(c));
    memset(w, 0, sizeof(w));
    c.a = a;
    c.path = path;
    c.home = home;
    pthread_mutex_init(&c.lock, NULL);
    /* Library set-up that must happen before threads: gpgme, jansson's hash seed. libgit2 was
     * initialised by fwrel_repo_open(); each worker gets its own repository handle. */
    fwrel_pgp_init();
    json_object_seed(0);
    w[0].r = r0;
    for (unsigned j = 1; j < jobs; j++)
        if ((error = fwrel_repo_open(&w[j].r, path, 0)) != 0)
            goto done;
    for (unsigned j = 0; j < jobs; j++)
        w[j].c = &c;
    if (jobs == 1) {
        worker_main(&w[0]);
    } else {
        for (unsigned j = 0; j < jobs; j++) {
            int rc = pthread_create(&w[j].t, NULL, worker_main, &w[j]);
            if (rc != 0) {
                pthread_mutex_lock(&c.lock);
                if (c.error == 0) {
                    c.error = fwrel_error_set_errno(FWREL_EIO, rc, "cannot start a thread");
                    c.first = *fwrel_error_last();
                }
                pthread_mutex_unlock(&c.lock);
                break;
            }
            w[j].started = 1;
        }
        for (unsigned j = 0; j < jobs; j++)
            if (w[j].started)
                pthread_join(w[j].t, NULL);
    }
    if (c.error != 0) {
        fwrel_error_restore(&c.first);
        error = fwrel_error_recode(c.error);
        goto done;
    }
    error = 0;
done:
    for (unsigned j = 1; j < jobs; j++)
        fwrel_repo_free(w[j].r);
    pthread_mutex_destroy(&c.lock);
    return error;
}

/* The repository's "policy" step: which rule judged the approvals. */
static int policy_summary(fwrel_auditor *a)
{
    size_t other = 0;
    const char *first = NULL;
    if (a->pol == NULL)
        return fwrel_report_add(a->report, "policy", FWREL_INFO,
                                "no policy given: approvals and tag signers were checked only "
                                "against the approvers and thresholds each release records, not "
                                "against a policy");
    for (size_t i = 0; i < a->n; i++)
        if (a->msg[i].other_policy && other++ == 0)
            first = a->rel[i].tag;
    if (other == 0)
        return fwrel_report_add(a->report, "policy", FWREL_PASS,
                                "policy sha256 %.16s... (%s): every release records it",
                                a->policy_sha, a->pol->product);
    return fwrel_report_add(a->report, "policy", FWREL_INFO,
                            "policy sha256 %.16s... (%s) applied; %zu release%s record%s another "
                            "policy (first %s): the policy changed",
                            a->policy_sha, a->pol->product, other, other == 1 ? "" : "s",
                            other == 1 ? "s" : "", first);
}

static unsigned default_jobs(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > FWREL_AUDITOR_JOBS_MAX ? FWREL_AUDITOR_JOBS_MAX : (unsigned)n;
}

int fwrel_auditor_run(fwrel_auditor **out, const char *path, const fwrel_auditor_opts *opts)
{
    static const fwrel_auditor_opts defaults = {NULL, NULL, NULL, 0, NULL, 0};
    const fwrel_auditor_opts *o = opts != NULL ? opts : &defaults;
    fwrel_auditor *a = NULL;
    fwrel_repo *r0 = NULL;
    fwrel_keystore *ks = NULL;
    fwrel_repo_tag *tags = NULL;
    size_t ntags = 0;
    const char *home = o->gnupg_home;
    int error;

    FWREL_ASSERT_ARG(out != NULL && path != NULL);
    *out = NULL;
    if (o->jobs > FWREL_AUDITOR_JOBS_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "jobs must be 1..%d", FWREL_AUDITOR_JOBS_MAX);
    if ((o->policy != NULL) == (o->no_policy != 0))
        return fwrel_error_set(FWREL_EUSAGE, o->policy != NULL
                                                 ? "a policy and no_policy exclude each other"
                                                 : "no policy: give the policy in force, or say "
                                                   "no_policy");
    if (o->policy != NULL && o->product != NULL && strcmp(o->policy->product, o->product) != 0)
        return fwrel_error_set(FWREL_EUSAGE, "the policy is for product %s, not %s",
                               o->policy->product, o->product);
    if (home == NULL)
        home = getenv("GNUPGHOME");
    if (home == NULL || home[0] == '\0')
        return fwrel_error_set(FWREL_EUSAGE, "no GnuPG home: pass one or set GNUPGHOME");
    if (o->keystore != NULL && (error = fwrel_ks_open(&ks, o->keystore, 0)) != 0)
        return error; /* named by fwrel_ks_open() (FWREL_ABOUT_KEYSTORE) */
    if ((error = fwrel_repo_open(&r0, path, 0)) != 0)
        goto done;
    if ((a = calloc(1, sizeof(*a))) == NULL || (error = fwrel_report_new(&a->report)) != 0) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    a->pol = (fwrel_policy *)o->policy;
    a->tmpl = o->policy != NULL ? o->policy->tag : DEFAULT_TAG_TEMPLATE;
    if (o->policy != NULL)
        fwrel_hex(a->policy_sha, o->policy->sha256, 32);
    if ((error = fwrel_repo_tags(&tags, &ntags, r0, NULL)) != 0)
        goto done;
    if (ntags > FWREL_AUDITOR_TAGS_MAX) {
        error = fwrel_error_set(FWREL_EFORMAT, "more than %d tags", FWREL_AUDITOR_TAGS_MAX);
        goto done;
    }
    a->rel = calloc(ntags ? ntags : 1, sizeof(*a->rel));
    a->msg = calloc(ntags ? ntags : 1, sizeof(*a->msg));
    a->order = calloc(ntags ? ntags : 1, sizeof(*a->order));
    if (a->rel == NULL || a->msg == NULL || a->order == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    if ((error = read_tags(a, r0, tags, ntags, o->product)) != 0)
        goto done;
    if (o->product != NULL)
        error = fwrel_report_add(a->report, "repo.tags", a->n ? FWREL_INFO : FWREL_FAIL,
                                 "%zu tags, %zu of them releases of %s (or unreadable)", ntags,
                                 a->n, o->product);
    else
        error = fwrel_report_add(a->report, "repo.tags", a->n ? FWREL_INFO : FWREL_FAIL, "%zu tags",
                                 ntags);
    if (error != 0 || (error = load_logs(a, path, tags, ntags)) != 0)
        goto done;
    a->jobs = o->jobs ? o->jobs : default_jobs();
    if (a->jobs > a->n)
        a->jobs = a->n ? (unsigned)a->n : 1;
    if ((error = run_workers(a, r0, path, home)) != 0 ||
        (error = check_branch(a, r0, tags, ntags)) != 0 || (error = check_history(a)) != 0 ||
        (error = check_keys(a, ks)) != 0)
        goto done;
    if (ks != NULL && (error = fwrel_report_add(a->report, "keystore", FWREL_INFO,
                                                "%zu keys in the index", fwrel_ks_count(ks))) != 0)
        goto done;
    if ((error = policy_summary(a)) != 0)
        goto done;

    /* The verdict. */
    for (size_t i = 0; i < a->n; i++) {
        a->order[i] = &a->rel[i];
        a->rel[i].failed = fwrel_report_first_failure(a->rel[i].report) != NULL;
        a->failed += (size_t)a->rel[i].failed;
    }
    if (a->n > 0)
        qsort(a->order, a->n, sizeof(*a->order), history_order);
    const fwrel_step *rs = fwrel_report_first_failure(a->report);
    error = 0;
    for (size_t i = 0; i < a->n; i++) {
        const fwrel_step *s = fwrel_report_first_failure(a->order[i]->report);
        if (s != NULL) {
            error = fwrel_error_set(FWREL_EVERIFY, "%zu of %zu releases failed; first: %s: %s: %s",
                                    a->failed, a->n, a->order[i]->tag, s->name, s->detail);
            break;
        }
    }
    if (error == 0 && rs != NULL)
        error = fwrel_error_set(FWREL_EVERIFY, "repository: %s: %s", rs->name, rs->detail);
    if (error == 0)
        fwrel_error_clear();
done:
    fwrel_repo_tags_free(tags, ntags);
    fwrel_repo_free(r0);
    fwrel_ks_close(ks);
    if (error == 0 || error == FWREL_EVERIFY) {
        *out = a;
    } else {
        fwrel_error saved = *fwrel_error_last();
        fwrel_auditor_free(a);
        fwrel_error_restore(&saved);
    }
    return error;
}

void fwrel_auditor_free(fwrel_auditor *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++)
        fwrel_report_free(a->rel[i].report);
    for (size_t i = 0; i < a->nlogs; i++)
        fwrel_audit_snapshot_clear(&a->logs[i]);
    fwrel_report_free(a->report);
    free(a->rel);
    free(a->msg);
    free(a->order);
    free(a);
}

size_t fwrel_auditor_count(const fwrel_auditor *a)
{
    return a != NULL ? a->n : 0;
}

const fwrel_audit_release *fwrel_auditor_release(const fwrel_auditor *a, size_t i)
{
    return a != NULL && i < a->n ? a->order[i] : NULL;
}

const fwrel_report *fwrel_auditor_report(const fwrel_auditor *a)
{
    return a != NULL ? a->report : NULL;
}

size_t fwrel_auditor_nlogs(const fwrel_auditor *a)
{
    return a != NULL ? a->nlogs : 0;
}

const fwrel_audit_log_summary *fwrel_auditor_log(const fwrel_auditor *a, size_t i)
{
    return a != NULL && i < a->nlogs ? &a->logs[i].sum : NULL;
}

unsigned fwrel_auditor_jobs(const fwrel_auditor *a)
{
    return a != NULL ? a->jobs : 0;
}

int fwrel_auditor_policy_checked(const fwrel_auditor *a)
{
    return a != NULL && a->policy_sha[0] != '\0';
}

size_t fwrel_auditor_failed(const fwrel_auditor *a)
{
    return a != NULL ? a->failed : 0;
}
