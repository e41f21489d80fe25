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
#include "fwrel/bundle_verify.h"
#include "fwrel/history.h"
#include "fwrel/keystore.h"
#include "fwrel/pgp.h"
#include "fwrel/policy.h"
#include "fwrel/repo.h"
#include "fwrel/rules.h"
#include "fwrel/tagmsg.h"
#include "util.h"

#include "auditor_int.h"


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

/* --- the tag name (its template is the rulebook's: fwrel_rules_tag_*) ----------------------- */

/* Is path (a file in a commit) under a directory whose name is product's under the template? */
static int path_under(const char *tmpl, const char *path, const char *product)
{
    char dir[256];
    fwrel_rules_tag tn;
    for (const char *c = strchr(path, '/'); c != NULL; c = strchr(c + 1, '/')) {
        if ((size_t)(c - path) >= sizeof(dir))
            break;
        memcpy(dir, path, (size_t)(c - path));
        dir[c - path] = '\0';
        if (fwrel_rules_tag_parse(&tn, tmpl, dir, product))
            return 1;
    }
    return 0;
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

/* keys: each key of the record valid at the release's time, by the one key rule
 * (fwrel_rules_key_valid(), docs/rules.md "Keys at release time"). */
static int check_keys(fwrel_auditor *a, const fwrel_keystore *ks)
{
    char now[21];
    fwrel_rfc3339(now, (int64_t)time(NULL));
    for (size_t i = 0; i < a->n; i++) {
        fwrel_audit_release *R = &a->rel[i];
        const fwrel_release *rec = &R->record;
        fwrel_problems p = {"", 0}, info = {"", 0};
        int e;
        if (!a->mine[i])
            continue; /* another shard's: its record was not read here */
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
            /* No authenticated release time: judged now, the strict reading. */
            const char *when = R->logged[0] ? R->logged : now;
            size_t active = 0;
            for (size_t k = 0; k < R->nkeys; k++) {
                fwrel_audit_key *K = &R->keys[k];
                const fwrel_keystore_entry *en = fwrel_keystore_find_id(ks, K->id);
                int signs =
                    strcmp(K->role, "secure-boot") == 0 || strcmp(K->role, "manifest-sign") == 0;
                fwrel_rules_key_verdict v;
                if (en == NULL) {
                    K->status = "absent";
                    fwrel_problem(&p, "%s key %.16s... is not in the keystore", K->role, K->id);
                    continue;
                }
                snprintf(K->name, sizeof(K->name), "%s", en->name);
                K->epoch = en->epoch;
                K->status = fwrel_keystore_status_name(en->status);
                if (fwrel_rules_key_valid(&v, en, when) != 0)
                    return fwrel_error_last()->code;
                if (v.state == FWREL_RULES_KEY_INVALID)
                    fwrel_problem(&p, "%s with %s", signs ? "signed" : "encrypted", v.why);
                else if (v.state == FWREL_RULES_KEY_VALID_THEN)
                    fwrel_problem(&info, "%s with %s", signs ? "signed" : "encrypted", v.why);
                else
                    active++;
            }
            if (p.n)
                e = fwrel_report_add(R->report, "keys", FWREL_FAIL, "%s", p.text);
            else
                e = fwrel_report_add(R->report, "keys", FWREL_PASS,
                                     "%zu keys in the keystore, %zu in force, all valid at "
                                     "release time (%s)",
                                     R->nkeys, active, when);
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
    fwrel_rules_tag tn;
    if (R->product[0] == '\0' || strcmp(R->product, product) == 0 ||
        fwrel_rules_tag_parse(&tn, a->tmpl, R->tag, product))
        return 1;
    return writes_under(r, R->commit, a->tmpl, product);
}

/* The repository's state (fwrel_auditor_state()): a tag's name, target, time and raw object. */
static void state_tag(EVP_MD_CTX *st, const fwrel_repo_tag *t, const uint8_t *raw, size_t len)
{
    uint8_t h[32] = {0};
    char line[80];
    int n =
        snprintf(line, sizeof(line), "%s %d %lld ", t->target, t->annotated, (long long)t->time);
    if (raw != NULL)
        fwrel_sha256(h, raw, len);
    EVP_DigestUpdate(st, t->name, strlen(t->name) + 1);
    EVP_DigestUpdate(st, line, (size_t)n);
    EVP_DigestUpdate(st, h, sizeof(h));
}

/* Phase 1: read each tag's message (cheap, serial). Selects by product (selected()). Every tag,
 * selected or not, goes into the state st. */
static int read_tags(fwrel_auditor *a, fwrel_repo *r, const fwrel_repo_tag *tags, size_t ntags,
                     const char *product, EVP_MD_CTX *st)
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
        state_tag(st, &tags[i], e == 0 ? raw : NULL, len);
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

static int run_workers(fwrel_auditor *a, fwrel_repo *r0, const char *path, const char *home,
                       const fwrel_auditor_opts *o)
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
    c.progress = o->progress;
    c.progress_arg = o->progress_arg;
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
        fwrel_auditor_worker(&w[0]);
    } else {
        for (unsigned j = 0; j < jobs; j++) {
            int rc = pthread_create(&w[j].t, NULL, fwrel_auditor_worker, &w[j]);
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
    /* By the policy hash each tag message states (record.fields holds it to the record's): every
     * release's, in every shard alike. */
    for (size_t i = 0; i < a->n; i++)
        if (a->msg[i].ok && strcmp(a->msg[i].policy_sha, a->policy_sha) != 0 && other++ == 0)
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
    static const fwrel_auditor_opts defaults = {NULL, NULL, NULL, 0, NULL, 0, 0, 0, NULL, NULL};
    const fwrel_auditor_opts *o = opts != NULL ? opts : &defaults;
    fwrel_auditor *a = NULL;
    fwrel_repo *r0 = NULL;
    fwrel_keystore *ks = NULL;
    fwrel_repo_tag *tags = NULL;
    fwrel_repo_commit *tip = NULL;
    size_t ntags = 0, ncommits = 0;
    const char *home = o->gnupg_home;
    EVP_MD_CTX *st = NULL;
    int error;

    FWREL_ASSERT_ARG(out != NULL && path != NULL);
    *out = NULL;
    if (o->jobs > FWREL_AUDITOR_JOBS_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "jobs must be 1..%d", FWREL_AUDITOR_JOBS_MAX);
    if (o->nshards > FWREL_AUDITOR_SHARDS_MAX || (o->nshards == 0) != (o->shard == 0) ||
        o->shard > o->nshards)
        return fwrel_error_set(FWREL_EUSAGE, "shard %u of %u: must be 1..N, N 1..%d", o->shard,
                               o->nshards, FWREL_AUDITOR_SHARDS_MAX);
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
    if (o->keystore != NULL && (error = fwrel_keystore_open(&ks, o->keystore, 0)) != 0)
        return error; /* named by fwrel_keystore_open() (FWREL_ABOUT_KEYSTORE) */
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
    a->shown = calloc(ntags ? ntags : 1, sizeof(*a->shown));
    a->mine = calloc(ntags ? ntags : 1, 1);
    if (a->rel == NULL || a->msg == NULL || a->order == NULL || a->shown == NULL ||
        a->mine == NULL || (st = EVP_MD_CTX_new()) == NULL ||
        !EVP_DigestInit_ex(st, EVP_sha256(), NULL)) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    if ((error = read_tags(a, r0, tags, ntags, o->product, st)) != 0 ||
        (error = fwrel_repo_branch_commits(&tip, &ncommits, r0, FWREL_AUDITOR_TAGS_MAX)) != 0)
        goto done;
    /* The state: the tags, then the branch's tip (none: nothing). */
    {
        uint8_t h[32];
        if (ncommits > 0)
            EVP_DigestUpdate(st, tip[0].id, 40);
        EVP_DigestFinal_ex(st, h, NULL);
        fwrel_hex(a->state, h, 32);
    }
    /* The shard: the releases it audits (the others are read, and judged only as history). */
    a->shard = o->shard;
    a->nshards = o->nshards;
    for (size_t i = 0; i < a->n; i++) {
        a->mine[i] =
            a->nshards == 0 || fwrel_auditor_shard_of(a->rel[i].tag, a->nshards) == a->shard;
        a->nmine += a->mine[i];
    }
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
    if ((error = run_workers(a, r0, path, home, o)) != 0 ||
        (error = check_branch(a, r0, tags, ntags)) != 0 || (error = check_history(a)) != 0 ||
        (error = check_keys(a, ks)) != 0)
        goto done;
    if (ks != NULL &&
        (error = fwrel_report_add(a->report, "keystore", FWREL_INFO, "%zu keys in the index",
                                  fwrel_keystore_count(ks))) != 0)
        goto done;
    if ((error = policy_summary(a)) != 0)
        goto done;

    /* The verdict, of the shard's releases. */
    for (size_t i = 0; i < a->n; i++) {
        a->order[i] = &a->rel[i];
        a->rel[i].failed = a->mine[i] && fwrel_report_first_failure(a->rel[i].report) != NULL;
        a->failed += (size_t)a->rel[i].failed;
    }
    if (a->n > 0)
        qsort(a->order, a->n, sizeof(*a->order), history_order);
    size_t k = 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->mine[a->order[i] - a->rel])
            a->shown[k++] = a->order[i];
    const fwrel_step *rs = fwrel_report_first_failure(a->report), *s = NULL;
    const fwrel_audit_release *first = NULL;
    for (size_t i = 0; i < a->nmine && first == NULL; i++)
        if ((s = fwrel_report_first_failure(a->shown[i]->report)) != NULL)
            first = a->shown[i];
    error = fwrel_auditor_verdict(a->failed, a->nmine, first ? first->tag : NULL,
                                  first ? s->name : NULL, first ? s->detail : NULL,
                                  rs ? rs->name : NULL, rs ? rs->detail : NULL);
done:
    EVP_MD_CTX_free(st);
    free(tip);
    fwrel_repo_tags_free(tags, ntags);
    fwrel_repo_free(r0);
    fwrel_keystore_close(ks);
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
    free(a->shown);
    free(a->mine);
    free(a);
}

size_t fwrel_auditor_count(const fwrel_auditor *a)
{
    return a != NULL ? a->nmine : 0;
}

const fwrel_audit_release *fwrel_auditor_release(const fwrel_auditor *a, size_t i)
{
    return a != NULL && i < a->nmine ? a->shown[i] : NULL;
}

size_t fwrel_auditor_total(const fwrel_auditor *a)
{
    return a != NULL ? a->n : 0;
}

const char *fwrel_auditor_tag(const fwrel_auditor *a, size_t i)
{
    return a != NULL && i < a->n ? a->order[i]->tag : NULL;
}

void fwrel_auditor_shard(const fwrel_auditor *a, unsigned *shard, unsigned *nshards)
{
    *shard = a != NULL ? a->shard : 0;
    *nshards = a != NULL ? a->nshards : 0;
}

const char *fwrel_auditor_state(const fwrel_auditor *a)
{
    return a != NULL ? a->state : "";
}

unsigned fwrel_auditor_shard_of(const char *tag, unsigned nshards)
{
    uint8_t h[32];
    uint64_t v = 0;
    FWREL_ASSERT_ARG(tag != NULL && nshards >= 1);
    fwrel_sha256(h, tag, strlen(tag));
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    return 1 + (unsigned)(v % nshards);
}

int fwrel_auditor_verdict(size_t failed, size_t n, const char *tag, const char *step,
                          const char *detail, const char *rstep, const char *rdetail)
{
    if (tag != NULL)
        return fwrel_error_set(FWREL_EVERIFY, "%zu of %zu releases failed; first: %s: %s: %s",
                               failed, n, tag, step, detail);
    if (rstep != NULL)
        return fwrel_error_set(FWREL_EVERIFY, "repository: %s: %s", rstep, rdetail);
    fwrel_error_clear();
    return 0;
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
