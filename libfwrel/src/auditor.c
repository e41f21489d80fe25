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

#include <git2.h>
#include <gpgme.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "fwrel/approvals.h"
#include "fwrel/audit.h"
#include "fwrel/bundle.h"
#include "fwrel/bverify.h"
#include "fwrel/history.h"
#include "fwrel/keystore_dir.h"
#include "fwrel/policy.h"
#include "fwrel/repo.h"
#include "fwrel/rules.h"
#include "fwrel/tagmsg.h"
#include "util.h"

/* A live audit log, read once (under a shared flock) and shared read-only by the workers. */
struct livelog {
    uint8_t *data;
    size_t len;
    size_t nlines;      /* complete lines */
    size_t *end;        /* offset just past line i's newline */
    uint8_t (*sha)[32]; /* SHA-256 of line i without its newline */
    fwrel_audit_log_summary sum;
};

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
    struct livelog logs[FWREL_AUDITOR_LOGS_MAX];
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

/* The tag a "bundle" entry's output names ("<tag>/bundle.fwb"), or NULL. */
static const char *entry_bundle(char *out, size_t n, json_t *entry)
{
    json_t *outs = json_object_get(entry, "outputs"), *o;
    size_t i;
    json_array_foreach(outs, i, o)
    {
        const char *name = json_string_value(json_object_get(o, "name"));
        size_t len = name != NULL ? strlen(name) : 0;
        if (len > 11 && len - 11 < n && strcmp(name + len - 11, "/bundle.fwb") == 0) {
            snprintf(out, n, "%.*s", (int)(len - 11), name);
            return out;
        }
    }
    return NULL;
}

/* Counts and times; "bundle" entries whose tag is not in the repository (names sorted). */
static void log_summarise(struct livelog *L, const char *const *names, size_t nnames)
{
    for (size_t i = 0; i < L->nlines; i++) {
        size_t start = i ? L->end[i - 1] : 0;
        json_t *j = json_loadb((const char *)L->data + start, L->end[i] - start - 1, 0, NULL);
        const char *ev = json_string_value(json_object_get(j, "event"));
        const char *res = json_string_value(json_object_get(j, "result"));
        const char *t = json_string_value(json_object_get(j, "time"));
        if (res != NULL && strcmp(res, "ok") == 0)
            L->sum.ok++;
        else if (res != NULL && strcmp(res, "fail") == 0)
            L->sum.fail++;
        if (ev != NULL && res != NULL && strcmp(ev, "bundle") == 0 && strcmp(res, "ok") == 0) {
            char tag[256];
            const char *key = entry_bundle(tag, sizeof(tag), j);
            L->sum.releases++;
            if (key != NULL &&
                (nnames == 0 || bsearch(&key, names, nnames, sizeof(*names), str_cmp) == NULL) &&
                L->sum.untagged++ == 0)
                snprintf(L->sum.first_untagged, sizeof(L->sum.first_untagged), "%s", tag);
        }
        if (t != NULL) {
            if (L->sum.first_time[0] == '\0')
                snprintf(L->sum.first_time, sizeof(L->sum.first_time), "%s", t);
            snprintf(L->sum.last_time, sizeof(L->sum.last_time), "%s", t);
        }
        json_decref(j);
    }
}

/* Read the live log at repo/path under a shared flock, verify its chain, index its lines. */
static int log_load(struct livelog *L, const char *repo, const char *path, const char *const *names,
                    size_t nnames)
{
    char full[4096];
    struct stat st;
    int fd = -1, error;
    FILE *f = NULL;

    snprintf(L->sum.path, sizeof(L->sum.path), "%s", path);
    int n = snprintf(full, sizeof(full), "%s/%s", repo, path);
    if (n < 0 || (size_t)n >= sizeof(full))
        return fwrel_error_set(FWREL_EUSAGE, "repository path too long");
    /* O_NONBLOCK: opening a FIFO with no writer must not hang before fstat says what it is. */
    fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(L->sum.error, sizeof(L->sum.error), "cannot open the live log: %s",
                 strerror(errno));
        return 0;
    }
    if (fstat(fd, &st) != 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "audit log %s", path);
        goto done;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > FWREL_REPO_FILE_MAX) {
        snprintf(L->sum.error, sizeof(L->sum.error), "the live log is %s",
                 S_ISREG(st.st_mode) ? "too large" : "not a regular file");
        error = 0;
        goto done;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 || flock(fd, LOCK_SH) != 0 ||
        fstat(fd, &st) != 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "audit log %s", path);
        goto done;
    }
    if ((uint64_t)st.st_size > FWREL_REPO_FILE_MAX) {
        snprintf(L->sum.error, sizeof(L->sum.error), "the live log is too large");
        error = 0;
        goto done;
    }
    L->len = (size_t)st.st_size;
    L->data = malloc(L->len ? L->len : 1);
    if (L->data == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    for (size_t got = 0; got < L->len;) {
        ssize_t r = read(fd, L->data + got, L->len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            error = fwrel_error_set_errno(FWREL_EIO, r < 0 ? errno : EIO, "audit log %s", path);
            goto done;
        }
        got += (size_t)r;
    }
    /* Its chain, from the same bytes the workers compare. */
    f = fmemopen(L->data, L->len ? L->len : 1, "r");
    if (f == NULL) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "fmemopen");
        goto done;
    }
    if (L->len == 0)
        fgetc(f); /* an empty log: a stream at its end */
    uint64_t count = 0;
    error = fwrel_audit_verify_stream(f, NULL, 0, &count, L->sum.head);
    if (error == FWREL_EVERIFY || error == FWREL_EFORMAT) {
        snprintf(L->sum.error, sizeof(L->sum.error), "%s", fwrel_error_last()->message);
        fwrel_error_clear();
    } else if (error != 0) {
        goto done;
    } else {
        L->sum.valid = 1;
    }
    /* Line index (complete lines; a torn tail is not a line). */
    for (size_t i = 0; i < L->len; i++)
        L->nlines += L->data[i] == '\n';
    L->end = malloc((L->nlines ? L->nlines : 1) * sizeof(*L->end));
    L->sha = malloc((L->nlines ? L->nlines : 1) * sizeof(*L->sha));
    if (L->end == NULL || L->sha == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    for (size_t i = 0, start = 0, k = 0; i < L->len; i++)
        if (L->data[i] == '\n') {
            L->end[k] = i + 1;
            if ((error = fwrel_sha256(L->sha[k], L->data + start, i - start)) != 0)
                goto done;
            k++;
            start = i + 1;
        }
    L->sum.entries = L->nlines;
    if (!L->sum.valid && L->nlines > 0)
        fwrel_hex(L->sum.head, L->sha[L->nlines - 1], 32);
    log_summarise(L, names, nnames);
    error = 0;
done:
    if (f != NULL)
        fclose(f);
    if (fd >= 0)
        close(fd);
    return error;
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

/* Does p (n bytes) contain the string s? */
static int contains(const uint8_t *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (p[i] == (uint8_t)s[0] && memcmp(p + i, s, k) == 0)
            return 1;
    return 0;
}

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

/* Is s one of the record's pinned approvers? */
static int pinned(const fwrel_release *rec, const char *fpr)
{
    for (size_t i = 0; i < rec->napprovers; i++)
        if (strcasecmp(rec->approvers[i], fpr) == 0)
            return 1;
    return 0;
}

/* audit.copy and audit.live: the log committed at the tag, and the live log. */
static int step_audit_copy(fwrel_audit_release *R, const struct msg *M, fwrel_repo *r,
                           const struct livelog *L)
{
    uint8_t *copy = NULL;
    size_t len = 0;
    uint64_t count = 0;
    uint64_t at = R->audit_entries;
    char want[65], m[FWREL_ERROR_MSG_MAX];
    FILE *f = NULL;
    int error, v;

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
    if ((f = fmemopen(copy, len, "r")) == NULL) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "fmemopen");
        goto done;
    }
    error = fwrel_audit_verify_stream(f, R->audit_head, 0, &count, NULL);
    if (error != 0 && !check_error(error))
        goto done;
    if (error != 0) {
        snprintf(m, sizeof(m), "%s", fwrel_error_last()->message);
        error = fwrel_report_add(R->report, "audit.copy", FWREL_FAIL,
                                 "the log committed at the tag: %s", m);
    } else if (count != R->audit_entries) {
        error = fwrel_report_add(R->report, "audit.copy", FWREL_FAIL,
                                 "the log committed at the tag has %llu entries, the tag says %llu",
                                 (unsigned long long)count, (unsigned long long)R->audit_entries);
    } else {
        error = fwrel_report_add(R->report, "audit.copy", FWREL_PASS,
                                 "the log committed at the tag: %llu entries, head %.16s...",
                                 (unsigned long long)count, R->audit_head);
    }
    if (error != 0)
        goto done;
    fwrel_error_clear();

    /* The live log holds that line at that position, and the copy is its prefix. */
    if (L == NULL || L->data == NULL) {
        error = fwrel_report_add(R->report, "audit.live", FWREL_FAIL, "no live log at %s: %s",
                                 R->audit_path, L != NULL ? L->sum.error : "not read");
        goto done;
    }
    if (at > L->nlines) {
        error = fwrel_report_add(R->report, "audit.live", FWREL_FAIL,
                                 "the live log has %zu entries; the tag names entry %llu "
                                 "(truncated?)",
                                 L->nlines, (unsigned long long)at);
        goto done;
    }
    fwrel_hex(want, L->sha[at - 1], 32);
    if (strcmp(want, R->audit_head) != 0) {
        error = fwrel_report_add(R->report, "audit.live", FWREL_FAIL,
                                 "line %llu of the live log is not the one the tag names (head "
                                 "%.16s..., the line's %.16s...)",
                                 (unsigned long long)at, R->audit_head, want);
        goto done;
    }
    if (len != L->end[at - 1] || memcmp(copy, L->data, len) != 0) {
        size_t line = 1;
        for (size_t i = 0; i < len && i < L->len && copy[i] == L->data[i]; i++)
            line += copy[i] == '\n';
        error = fwrel_report_add(R->report, "audit.live", FWREL_FAIL,
                                 "the log committed at the tag is not a prefix of the live log "
                                 "(they differ at line %zu)",
                                 line);
        goto done;
    }
    /* The line is the release's own "bundle" entry: it names this bundle's digest. */
    char needle[80];
    size_t start = at > 1 ? L->end[at - 2] : 0;
    snprintf(needle, sizeof(needle), "\"sha256\":\"%s\"", M->bundle_sha);
    v = contains(L->data + start, L->end[at - 1] - start, needle);
    if (v)
        error = fwrel_report_add(R->report, "audit.live", FWREL_PASS,
                                 "line %llu of %zu of the live log records this bundle; the "
                                 "committed copy is its prefix",
                                 (unsigned long long)at, L->nlines);
    else
        error = fwrel_report_add(R->report, "audit.live", FWREL_FAIL,
                                 "line %llu of the live log does not record this bundle",
                                 (unsigned long long)at);
done:
    if (f != NULL)
        fclose(f);
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

struct cpos {
    char id[41];
    size_t pos;  /* 1 for the root */
    size_t tags; /* release tags pointing to it (all products) */
};

static int cpos_cmp(const void *x, const void *y)
{
    return strcmp(((const struct cpos *)x)->id, ((const struct cpos *)y)->id);
}

static struct cpos *cpos_find(struct cpos *cp, size_t n, const char *id)
{
    struct cpos key;
    snprintf(key.id, sizeof(key.id), "%s", id);
    return n ? bsearch(&key, cp, n, sizeof(*cp), cpos_cmp) : NULL;
}

static const char *delta_name(git_delta_t s)
{
    switch (s) {
    case GIT_DELTA_ADDED:
        return "adds";
    case GIT_DELTA_DELETED:
        return "deletes";
    case GIT_DELTA_MODIFIED:
        return "modifies";
    case GIT_DELTA_TYPECHANGE:
        return "changes the type of";
    default:
        return "changes";
    }
}

/* The release's commit adds files under <tag>/ and updates the audit log, nothing else. */
static int tree_delta(fwrel_problems *p, size_t *added, git_repository *repo,
                      const fwrel_audit_release *R)
{
    git_oid id;
    git_commit *c = NULL, *parent = NULL;
    git_tree *t = NULL, *pt = NULL;
    git_diff *diff = NULL;
    char dir[260];
    int n = snprintf(dir, sizeof(dir), "%s/", R->tag);
    *added = 0;
    if (git_oid_fromstr(&id, R->commit) != 0 || git_commit_lookup(&c, repo, &id) != 0 ||
        git_commit_tree(&t, c) != 0 ||
        (git_commit_parentcount(c) == 1 &&
         (git_commit_parent(&parent, c, 0) != 0 || git_commit_tree(&pt, parent) != 0)) ||
        git_diff_tree_to_tree(&diff, repo, pt, t, NULL) != 0) {
        const git_error *ge = git_error_last();
        fwrel_problem(p, "the commit cannot be compared with its parent: %s",
                      ge != NULL ? ge->message : "?");
    } else {
        size_t nd = git_diff_num_deltas(diff);
        for (size_t k = 0; k < nd; k++) {
            const git_diff_delta *dd = git_diff_get_delta(diff, k);
            const char *path =
                dd->status == GIT_DELTA_DELETED ? dd->old_file.path : dd->new_file.path;
            if (dd->status == GIT_DELTA_ADDED && n > 0 && strncmp(path, dir, (size_t)n) == 0)
                (*added)++;
            else if (R->audit_path[0] != '\0' && strcmp(path, R->audit_path) == 0 &&
                     (dd->status == GIT_DELTA_ADDED || dd->status == GIT_DELTA_MODIFIED))
                continue;
            else
                fwrel_problem(p, "the commit %s %s, outside its release", delta_name(dd->status),
                              path);
        }
    }
    git_diff_free(diff);
    git_tree_free(pt);
    git_tree_free(t);
    git_commit_free(parent);
    git_commit_free(c);
    return 0;
}

/* release.dir: <tag>/ in the tagged tree holds exactly the files a release writes, as plain files
 * (mode 100644, as fwrel_repo_release() writes them), and the audit log is a plain file. A
 * symlink (its blob is a link target that a checkout follows), an executable, a subdirectory or
 * any other entry fails. */
static void release_dir(fwrel_problems *p, git_repository *repo, const fwrel_audit_release *R)
{
    static const char *const want[] = {"bundle.fwb", "release.json"};
    git_oid id;
    git_commit *c = NULL;
    git_tree *t = NULL, *d = NULL;
    git_tree_entry *e = NULL, *le = NULL;
    int seen[2] = {0, 0};

    if (git_oid_fromstr(&id, R->commit) != 0 || git_commit_lookup(&c, repo, &id) != 0 ||
        git_commit_tree(&t, c) != 0) {
        fwrel_problem(p, "the tagged tree cannot be read");
        goto done;
    }
    if (git_tree_entry_bypath(&e, t, R->tag) != 0 ||
        git_tree_entry_filemode_raw(e) != GIT_FILEMODE_TREE ||
        git_tree_lookup(&d, repo, git_tree_entry_id(e)) != 0) {
        fwrel_problem(p, "%s/ is not a directory of the tagged tree", R->tag);
    } else {
        for (size_t k = 0; k < git_tree_entrycount(d); k++) {
            const git_tree_entry *x = git_tree_entry_byindex(d, k);
            const char *name = git_tree_entry_name(x);
            unsigned m = (unsigned)git_tree_entry_filemode_raw(x);
            size_t w = 0;
            while (w < 2 && strcmp(name, want[w]) != 0)
                w++;
            const char *kind = m == GIT_FILEMODE_LINK              ? ", a symlink"
                               : m == GIT_FILEMODE_BLOB_EXECUTABLE ? ", executable"
                               : m == GIT_FILEMODE_TREE            ? ", a directory"
                               : m == GIT_FILEMODE_COMMIT          ? ", a submodule"
                                                                   : "";
            if (w == 2) {
                fwrel_problem(p, "%s/%s is not a file of a release (mode %06o%s)", R->tag, name, m,
                              kind);
                continue;
            }
            seen[w] = 1;
            if (m != GIT_FILEMODE_BLOB)
                fwrel_problem(p, "%s/%s has mode %06o%s, not 100644", R->tag, name, m, kind);
        }
        for (size_t w = 0; w < 2; w++)
            if (!seen[w])
                fwrel_problem(p, "%s/%s is missing", R->tag, want[w]);
    }
    if (R->audit_path[0] != '\0') {
        if (git_tree_entry_bypath(&le, t, R->audit_path) != 0)
            fwrel_problem(p, "no audit log %s in the tagged tree", R->audit_path);
        else if ((unsigned)git_tree_entry_filemode_raw(le) != GIT_FILEMODE_BLOB)
            fwrel_problem(p, "the audit log %s in the tree has mode %06o, not 100644",
                          R->audit_path, (unsigned)git_tree_entry_filemode_raw(le));
    }
done:
    git_tree_entry_free(le);
    git_tree_entry_free(e);
    git_tree_free(d);
    git_tree_free(t);
    git_commit_free(c);
}

static int check_branch(fwrel_auditor *a, const char *path, const fwrel_repo_tag *tags,
                        size_t ntags)
{
    git_repository *repo = NULL;
    git_reference *ref = NULL;
    struct cpos *cp = NULL;
    size_t n = 0, cap = 0, untagged = 0, merges = 0;
    char first_untagged[41] = "";
    git_oid id;
    int error;

    if (git_repository_open_bare(&repo, path) != 0) {
        const git_error *ge = git_error_last();
        return fwrel_error_set(FWREL_EIO, "cannot open the repository: %s",
                               ge != NULL ? ge->message : "?");
    }
    int rc = git_reference_lookup(&ref, repo, FWREL_REPO_BRANCH);
    if (rc == 0 && git_reference_type(ref) == GIT_REFERENCE_DIRECT) {
        git_oid_cpy(&id, git_reference_target(ref));
        for (;;) {
            git_commit *c = NULL;
            if (n == FWREL_AUDITOR_TAGS_MAX + 1) {
                error =
                    fwrel_error_set(FWREL_EFORMAT, "the release branch has more than %d commits",
                                    FWREL_AUDITOR_TAGS_MAX);
                goto done;
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                struct cpos *m = realloc(cp, nc * sizeof(*cp));
                if (m == NULL) {
                    error = fwrel_error_set(FWREL_EIO, "out of memory");
                    goto done;
                }
                cp = m;
                cap = nc;
            }
            git_oid_tostr(cp[n].id, sizeof(cp[n].id), &id);
            cp[n].tags = 0;
            n++;
            if (git_commit_lookup(&c, repo, &id) != 0) {
                if (fwrel_report_add(a->report, "repo.branch", FWREL_FAIL,
                                     "commit %s of the release branch cannot be read",
                                     cp[n - 1].id) != 0) {
                    error = FWREL_EIO;
                    goto done;
                }
                break;
            }
            unsigned parents = git_commit_parentcount(c);
            merges += parents > 1;
            if (parents >= 1)
                git_oid_cpy(&id, git_commit_parent_id(c, 0));
            git_commit_free(c);
            if (parents == 0)
                break;
        }
    } else if (rc != GIT_ENOTFOUND) {
        if (fwrel_report_add(a->report, "repo.branch", FWREL_FAIL,
                             "the release branch cannot be read") != 0) {
            error = FWREL_EIO;
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++)
        cp[i].pos = n - i;
    if (n > 0)
        qsort(cp, n, sizeof(*cp), cpos_cmp);
    for (size_t i = 0; i < ntags; i++) {
        struct cpos *f = cpos_find(cp, n, tags[i].target);
        if (f != NULL)
            f->tags++;
    }
    for (size_t i = 0; i < n; i++)
        if (cp[i].tags == 0 && untagged++ == 0)
            memcpy(first_untagged, cp[i].id, 41);
    if (untagged > 0)
        error = fwrel_report_add(a->report, "repo.branch", FWREL_FAIL,
                                 "%zu commit%s of the release branch ha%s no release tag (%s%s)",
                                 untagged, untagged == 1 ? "" : "s", untagged == 1 ? "s" : "ve",
                                 first_untagged, untagged > 1 ? ", ..." : "");
    else if (merges > 0)
        error = fwrel_report_add(a->report, "repo.branch", FWREL_FAIL,
                                 "the release branch has %zu merge commit%s", merges,
                                 merges == 1 ? "" : "s");
    else
        error = fwrel_report_add(a->report, "repo.branch", FWREL_PASS,
                                 "%zu commits, linear, each one release tag", n);
    if (error != 0)
        goto done;
    if (merges > 0 && untagged > 0 &&
        fwrel_report_add(a->report, "repo.branch", FWREL_FAIL,
                         "the release branch has %zu merge commit%s", merges,
                         merges == 1 ? "" : "s") != 0) {
        error = FWREL_EIO;
        goto done;
    }

    /* Each release: on the branch, alone there, and what its commit changes. */
    for (size_t i = 0; i < a->n; i++) {
        fwrel_audit_release *R = &a->rel[i];
        struct cpos *f = R->commit[0] ? cpos_find(cp, n, R->commit) : NULL;
        fwrel_problems p = {"", 0};
        size_t added = 0;
        if (f == NULL) {
            error = fwrel_report_add(R->report, "repo.branch", FWREL_FAIL,
                                     "commit %.12s is not on the release branch",
                                     R->commit[0] ? R->commit : "(none)");
        } else {
            R->branch_pos = f->pos;
            if (f->tags > 1)
                fwrel_problem(&p, "commit %.12s carries %zu release tags", R->commit, f->tags);
            tree_delta(&p, &added, repo, R);
            if (p.n == 0 && added == 0)
                fwrel_problem(&p, "the commit adds no file under %s/", R->tag);
            if (p.n)
                error = fwrel_report_add(R->report, "repo.branch", FWREL_FAIL, "%s", p.text);
            else
                error = fwrel_report_add(R->report, "repo.branch", FWREL_PASS,
                                         "commit %zu of %zu on the release branch; adds %zu "
                                         "files under its directory and updates the audit log",
                                         f->pos, n, added);
        }
        if (error != 0)
            goto done;
        fwrel_problems d = {"", 0};
        if (R->commit[0] == '\0') {
            error = fwrel_report_add(R->report, "release.dir", FWREL_SKIP, "no commit");
        } else {
            release_dir(&d, repo, R);
            error = fwrel_report_add(R->report, "release.dir", d.n ? FWREL_FAIL : FWREL_PASS, "%s",
                                     d.n ? d.text
                                         : "bundle.fwb and release.json, plain files (100644), "
                                           "nothing else; the audit log a plain file");
        }
        if (error != 0)
            goto done;
    }
    error = 0;
done:
    free(cp);
    git_reference_free(ref);
    git_repository_free(repo);
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

/* Does the commit write (add, change or delete) a path under a directory named as product's
 * releases are? An unreadable commit counts as yes: the tag is kept, and fails. */
static int writes_under(git_repository *repo, const char *commit, const char *tmpl,
                        const char *product)
{
    git_oid id;
    git_commit *c = NULL, *parent = NULL;
    git_tree *t = NULL, *pt = NULL;
    git_diff *diff = NULL;
    int hit = 1;
    if (repo != NULL && git_oid_fromstr(&id, commit) == 0 &&
        git_commit_lookup(&c, repo, &id) == 0 && git_commit_tree(&t, c) == 0 &&
        (git_commit_parentcount(c) == 0 ||
         (git_commit_parent(&parent, c, 0) == 0 && git_commit_tree(&pt, parent) == 0)) &&
        git_diff_tree_to_tree(&diff, repo, pt, t, NULL) == 0) {
        hit = 0;
        for (size_t k = 0; k < git_diff_num_deltas(diff) && !hit; k++) {
            const git_diff_delta *dd = git_diff_get_delta(diff, k);
            hit = (dd->new_file.path != NULL && path_under(tmpl, dd->new_file.path, product)) ||
                  (dd->old_file.path != NULL && path_under(tmpl, dd->old_file.path, product));
        }
    }
    git_diff_free(diff);
    git_tree_free(pt);
    git_tree_free(t);
    git_commit_free(parent);
    git_commit_free(c);
    return hit;
}

/* --product: is this tag the product's? By its message, its name under the template, or where its
 * commit writes; a tag whose message cannot be read is kept (it fails). Never by the message
 * alone: a release under the product's name or path whose message names another product is
 * audited here, and fails tag.name. */
static int selected(const fwrel_auditor *a, git_repository *repo, const fwrel_audit_release *R,
                    const char *product)
{
    struct tname tn;
    memset(&tn, 0, sizeof(tn));
    if (R->product[0] == '\0' || strcmp(R->product, product) == 0 ||
        tmpl_match(&tn, a->tmpl, R->tag, product, 0))
        return 1;
    return writes_under(repo, R->commit, a->tmpl, product);
}

/* Phase 1: read each tag's message (cheap, serial). Selects by product (selected()). */
static int read_tags(fwrel_auditor *a, fwrel_repo *r, git_repository *repo,
                     const fwrel_repo_tag *tags, size_t ntags, const char *product)
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
        if (product != NULL && !selected(a, repo, R, product))
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
    gpgme_check_version(NULL);
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
        error = fwrel_error_set(c.error, "%s", c.first.message);
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
    git_repository *gr = NULL;
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
    if (o->keystore != NULL && (error = fwrel_ks_open(&ks, o->keystore, 0)) != 0) {
        fwrel_error_prefix("keystore");
        return error;
    }
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
    if (o->product != NULL && git_repository_open_bare(&gr, path) != 0) {
        const git_error *ge = git_error_last();
        error = fwrel_error_set(FWREL_EIO, "cannot open the repository: %s",
                                ge != NULL ? ge->message : "?");
        goto done;
    }
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
    if ((error = read_tags(a, r0, gr, tags, ntags, o->product)) != 0)
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
        (error = check_branch(a, path, tags, ntags)) != 0 || (error = check_history(a)) != 0 ||
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
    git_repository_free(gr);
    fwrel_repo_tags_free(tags, ntags);
    fwrel_repo_free(r0);
    fwrel_ks_close(ks);
    if (error == 0 || error == FWREL_EVERIFY) {
        *out = a;
    } else {
        fwrel_error saved = *fwrel_error_last();
        fwrel_auditor_free(a);
        fwrel_error_set(saved.code, "%s", saved.message);
    }
    return error;
}

void fwrel_auditor_free(fwrel_auditor *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++)
        fwrel_report_free(a->rel[i].report);
    for (size_t i = 0; i < a->nlogs; i++) {
        free(a->logs[i].data);
        free(a->logs[i].end);
        free(a->logs[i].sha);
    }
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

/* --- the HTML report -------------------------------------------------------------------------- */

struct sb {
    char *p;
    size_t n, cap;
    int oom;
};

static void sb_put(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *m = realloc(b->p, cap);
        if (m == NULL) {
            b->oom = 1;
            return;
        }
        b->p = m;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* Trusted text only: the page's own markup, numbers, names of steps and verdicts. */
static void sb_fmt(struct sb *b, const char *fmt, ...) FWREL_PRINTF(2, 3);
static void sb_fmt(struct sb *b, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(buf)) {
        sb_put(b, buf, (size_t)n);
        return;
    }
    /* Longer than the buffer: format again into one of its size. */
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_put(b, big, (size_t)n);
    free(big);
}

/* Any text from the repository: escaped for element content and quoted attributes. Control
 * characters become U+FFFD. */
static void sb_esc(struct sb *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&':
            sb_put(b, "&amp;", 5);
            break;
        case '<':
            sb_put(b, "&lt;", 4);
            break;
        case '>':
            sb_put(b, "&gt;", 4);
            break;
        case '"':
            sb_put(b, "&quot;", 6);
            break;
        case '\'':
            sb_put(b, "&#39;", 5);
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                sb_put(b, "&#xfffd;", 8);
            else
                sb_put(b, (const char *)&c, 1);
        }
    }
}

/* <open>escaped text</close> */
static void sb_el(struct sb *b, const char *open, const char *text, const char *close)
{
    sb_put(b, open, strlen(open));
    sb_esc(b, text);
    sb_put(b, close, strlen(close));
}

static const char *verdict_name(int v)
{
    return v == FWREL_PASS ? "pass" : v == FWREL_FAIL ? "fail" : v == FWREL_SKIP ? "skip" : "info";
}

static void sb_time(struct sb *b, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char buf[32];
    if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
        strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M", &tm) == 0)
        sb_fmt(b, "-");
    else
        sb_fmt(b, "%s", buf);
}

static void sb_steps(struct sb *b, const fwrel_report *r)
{
    sb_fmt(b, "<table class=\"steps\"><tr><th>check</th><th>verdict</th><th>detail</th></tr>\n");
    for (size_t i = 0; i < fwrel_report_count(r); i++) {
        const fwrel_step *s = fwrel_report_step(r, i);
        const char *v = verdict_name(s->verdict);
        sb_el(b, "<tr><td><code>", s->name, "</code></td>");
        sb_fmt(b, "<td class=\"%s\">%s</td>", v, v);
        sb_el(b, "<td>", s->detail, "</td></tr>\n");
    }
    sb_fmt(b, "</table>\n");
}

static int approved(const fwrel_audit_release *R, const char *fpr)
{
    for (size_t i = 0; i < R->napprovals; i++)
        if (strcasecmp(R->approvals[i], fpr) == 0)
            return 1;
    return 0;
}

static void sb_release(struct sb *b, const fwrel_audit_release *R, size_t idx)
{
    const fwrel_step *f = fwrel_report_first_failure(R->report);
    sb_fmt(b, "<section class=\"release\" id=\"r%zu\">\n<h3>", idx + 1);
    sb_esc(b, R->tag);
    sb_fmt(b, " <span class=\"%s\">%s</span></h3>\n", f ? "fail" : "pass",
           f ? "FAILED" : "VERIFIED");
    sb_fmt(b, "<table class=\"facts\">");
    sb_el(b, "<tr><th>product</th><td>", R->product, "</td></tr>");
    sb_el(b, "<tr><th>channel</th><td>", R->channel, "</td></tr>");
    sb_el(b, "<tr><th>version</th><td>", R->version, "</td></tr>");
    sb_fmt(b, "<tr><th>secure_version</th><td>%u</td></tr>", R->secure_version);
    sb_fmt(b, "<tr><th>counter</th><td>%llu</td></tr>", (unsigned long long)R->counter);
    sb_fmt(b, "<tr><th>tagged</th><td>");
    sb_time(b, R->time);
    sb_fmt(b, " UTC</td></tr>");
    sb_el(b, "<tr><th>commit</th><td><code>", R->commit, "</code></td></tr>");
    sb_el(b, "<tr><th>tag signer</th><td><code>", R->signer[0] ? R->signer : "(no good signature)",
          "</code></td></tr>");
    if (f != NULL) {
        sb_el(b, "<tr><th>first failure</th><td class=\"fail\"><code>", f->name, "</code>: ");
        sb_esc(b, f->detail);
        sb_fmt(b, "</td></tr>");
    }
    sb_fmt(b, "</table>\n");

    /* Approvers: those the release pins, and who approved. */
    sb_fmt(b,
           "<h4>Approvers (%zu of %u required)</h4>\n<table class=\"keys\"><tr><th>fingerprint</th>"
           "<th>pinned</th><th>approved</th></tr>\n",
           R->napprovals, R->approvals_required);
    if (R->have_record) {
        for (size_t i = 0; i < R->record.napprovers; i++) {
            int ap = approved(R, R->record.approvers[i]);
            sb_el(b, "<tr><td><code>", R->record.approvers[i], "</code></td><td>yes</td>");
            sb_fmt(b, "<td class=\"%s\">%s</td></tr>\n", ap ? "pass" : "skip", ap ? "yes" : "no");
        }
    }
    for (size_t i = 0; i < R->napprovals; i++)
        if (!R->have_record || !pinned(&R->record, R->approvals[i]))
            sb_el(b, "<tr><td><code>", R->approvals[i],
                  "</code></td><td class=\"fail\">no</td><td>yes</td></tr>\n");
    sb_fmt(b, "</table>\n");

    /* Keys. */
    sb_fmt(b, "<h4>Keys</h4>\n<table class=\"keys\"><tr><th>role</th><th>key id</th><th>keystore "
              "name</th><th>epoch</th><th>status</th></tr>\n");
    for (size_t i = 0; i < R->nkeys; i++) {
        const fwrel_audit_key *k = &R->keys[i];
        const char *cls = strcmp(k->status, "revoked") == 0 || strcmp(k->status, "absent") == 0
                              ? "fail"
                          : strcmp(k->status, "retired") == 0 ? "info"
                                                              : "pass";
        sb_fmt(b, "<tr><td>%s</td>", k->role);
        sb_el(b, "<td><code>", k->id, "</code></td>");
        sb_el(b, "<td>", k->name[0] ? k->name : "-", "</td>");
        if (k->epoch)
            sb_fmt(b, "<td>%u</td>", k->epoch);
        else
            sb_fmt(b, "<td>-</td>");
        sb_fmt(b, "<td class=\"%s\">%s</td></tr>\n", k->status[0] ? cls : "skip",
               k->status[0] ? k->status : "not checked");
    }
    sb_fmt(b, "</table>\n<h4>Checks</h4>\n");
    sb_steps(b, R->report);
    sb_fmt(b, "</section>\n");
}

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}"
    "h1{font-size:1.6em}h3{margin-top:2em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}code{font-size:12px;"
    "word-break:break-all}.pass{color:#065f0e;font-weight:600}.fail{color:#b00020;"
    "font-weight:700}.skip{color:#777}.info{color:#1a4f8a}.verdict{font-size:1.2em;padding:.5em;"
    "border:2px solid}.bar{display:inline-block;height:10px;background:#4a78b5;margin-right:4px}"
    "tr.failed td{background:#fde8ec}";

int fwrel_auditor_html(char **out, size_t *len, const fwrel_auditor *a, const char *title)
{
    struct sb b = {NULL, 0, 0, 0};
    uint32_t max_sv = 1;

    FWREL_ASSERT_ARG(out != NULL && len != NULL && a != NULL && title != NULL);
    *out = NULL;
    *len = 0;
    const fwrel_step *rf = fwrel_report_first_failure(a->report);
    sb_fmt(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
               "style-src 'unsafe-inline'\">\n");
    sb_el(&b, "<title>fwrel release audit: ", title, "</title>\n");
    sb_fmt(&b, "<style>%s</style>\n</head>\n<body>\n", css);
    sb_el(&b, "<h1>Release audit: ", title, "</h1>\n");
    if (a->failed == 0 && rf == NULL && fwrel_auditor_policy_checked(a))
        sb_fmt(&b, "<p class=\"verdict pass\">VERIFIED: %zu releases, every check passed</p>\n",
               a->n);
    else if (a->failed == 0 && rf == NULL)
        sb_fmt(&b,
               "<p class=\"verdict info\">NOT VERIFIED AGAINST A POLICY: %zu releases, every "
               "check passed, but approvals and tag signers were checked only against each "
               "release's own record</p>\n",
               a->n);
    else
        sb_fmt(&b, "<p class=\"verdict fail\">REJECTED: %zu of %zu releases failed%s</p>\n",
               a->failed, a->n, rf != NULL ? ", and a repository check failed" : "");
    sb_fmt(&b, "<p>%zu releases verified with %u worker thread%s.</p>\n", a->n, a->jobs,
           a->jobs == 1 ? "" : "s");

    /* Every failure first, each linked to its release. */
    if (a->failed > 0 || rf != NULL) {
        sb_fmt(&b, "<h2>Failures</h2>\n<table class=\"steps\"><tr><th>release</th><th>check</th>"
                   "<th>detail</th></tr>\n");
        for (size_t i = 0; i < a->n; i++) {
            const fwrel_report *r = a->order[i]->report;
            for (size_t k = 0; k < fwrel_report_count(r); k++) {
                const fwrel_step *st = fwrel_report_step(r, k);
                if (st->verdict != FWREL_FAIL)
                    continue;
                sb_fmt(&b, "<tr><td><a href=\"#r%zu\">", i + 1);
                sb_esc(&b, a->order[i]->tag);
                sb_el(&b, "</a></td><td class=\"fail\"><code>", st->name, "</code></td>");
                sb_el(&b, "<td>", st->detail, "</td></tr>\n");
            }
        }
        for (size_t k = 0; k < fwrel_report_count(a->report); k++) {
            const fwrel_step *st = fwrel_report_step(a->report, k);
            if (st->verdict != FWREL_FAIL)
                continue;
            sb_el(&b, "<tr><td>(repository)</td><td class=\"fail\"><code>", st->name,
                  "</code></td>");
            sb_el(&b, "<td>", st->detail, "</td></tr>\n");
        }
        sb_fmt(&b, "</table>\n");
    }

    /* Timeline. */
    for (size_t i = 0; i < a->n; i++)
        if (a->order[i]->secure_version > max_sv)
            max_sv = a->order[i]->secure_version;
    sb_fmt(&b, "<h2>Timeline</h2>\n<table class=\"timeline\"><tr><th>#</th><th>tagged "
               "(UTC)</th><th>tag</th><th>channel</th><th>version</th><th>secure_version</th>"
               "<th>counter</th><th>approvers</th><th>verdict</th></tr>\n");
    for (size_t i = 0; i < a->n; i++) {
        const fwrel_audit_release *R = a->order[i];
        unsigned w = (unsigned)(1 + (uint64_t)R->secure_version * 120 / max_sv);
        sb_fmt(&b, "<tr%s><td>%zu</td><td>", R->failed ? " class=\"failed\"" : "", i + 1);
        sb_time(&b, R->time);
        sb_fmt(&b, "</td><td><a href=\"#r%zu\">", i + 1);
        sb_esc(&b, R->tag);
        sb_fmt(&b, "</a></td>");
        sb_el(&b, "<td>", R->channel, "</td>");
        sb_el(&b, "<td>", R->version, "</td>");
        sb_fmt(&b, "<td><span class=\"bar\" style=\"width:%upx\"></span>%u</td>", w,
               R->secure_version);
        sb_fmt(&b, "<td>%llu</td><td>%zu of %u</td>", (unsigned long long)R->counter, R->napprovals,
               R->approvals_required);
        sb_fmt(&b, "<td class=\"%s\">%s</td></tr>\n", R->failed ? "fail" : "pass",
               R->failed ? "FAILED" : "verified");
    }
    sb_fmt(&b, "</table>\n");

    /* Repository and audit log. */
    sb_fmt(&b, "<h2>Repository checks</h2>\n");
    sb_steps(&b, a->report);
    sb_fmt(&b, "<h2>Audit log</h2>\n");
    for (size_t i = 0; i < a->nlogs; i++) {
        const fwrel_audit_log_summary *s = &a->logs[i].sum;
        sb_fmt(&b, "<table class=\"facts\">");
        sb_el(&b, "<tr><th>path</th><td><code>", s->path, "</code></td></tr>");
        sb_fmt(&b, "<tr><th>chain</th><td class=\"%s\">%s</td></tr>", s->valid ? "pass" : "fail",
               s->valid ? "valid" : "BROKEN");
        if (!s->valid)
            sb_el(&b, "<tr><th>problem</th><td class=\"fail\">", s->error, "</td></tr>");
        sb_fmt(&b,
               "<tr><th>entries</th><td>%llu (%llu ok, %llu failed; %llu bundles "
               "made)</td></tr>",
               (unsigned long long)s->entries, (unsigned long long)s->ok,
               (unsigned long long)s->fail, (unsigned long long)s->releases);
        sb_el(&b, "<tr><th>head</th><td><code>", s->head, "</code></td></tr>");
        if (s->untagged > 0) {
            sb_fmt(&b, "<tr><th>bundles without a tag</th><td class=\"info\">%llu (first ",
                   (unsigned long long)s->untagged);
            sb_esc(&b, s->first_untagged);
            sb_fmt(&b, "): awaiting approvals, or releases removed</td></tr>");
        }
        sb_el(&b, "<tr><th>first entry</th><td>", s->first_time[0] ? s->first_time : "-",
              "</td></tr>");
        sb_el(&b, "<tr><th>last entry</th><td>", s->last_time[0] ? s->last_time : "-",
              "</td></tr>");
        sb_fmt(&b, "</table>\n");
    }
    if (a->nlogs == 0)
        sb_fmt(&b, "<p>No audit log is named by the releases.</p>\n");

    sb_fmt(&b, "<h2>Releases</h2>\n");
    for (size_t i = 0; i < a->n; i++)
        sb_release(&b, a->order[i], i);
    sb_fmt(&b, "</body>\n</html>\n");
    if (b.oom) {
        free(b.p);
        return fwrel_error_set(FWREL_EIO, "out of memory");
    }
    *out = b.p;
    *len = b.n;
    return 0;
}
