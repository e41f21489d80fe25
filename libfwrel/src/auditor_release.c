/* auditor_release.c - one release of the repository audited, in a worker thread (auditor_int.h). */
#include "auditor_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fwrel/approvals.h"
#include "fwrel/bundle.h"
#include "fwrel/bundle_verify.h"
#include "fwrel/keystore.h"
#include "fwrel/rules.h"
#include "fwrel/tagmsg.h"

/* --- per release, in the workers --------------------------------------------------------- */

#define ADD(R, name, verdict, ...)                                                                 \
    do {                                                                                           \
        if (fwrel_report_add((R)->report, name, verdict, __VA_ARGS__) != 0)                        \
            return FWREL_EIO;                                                                      \
    } while (0)

static int step_ci(fwrel_audit_release *R, const char *home, const uint8_t *data, size_t len)
{
    fwrel_report *ci = NULL;
    fwrel_bundle_verify_ci_opts co = {home, NULL, NULL};
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

/* The release time the key rule judges by (docs/rules.md "Keys at release time"): the time of
 * the release's entry, the last line of the log its tag commits (a chain the signed tag names
 * the head and length of, audit.copy), written after the release's signatures. "" when the
 * line has none of the right shape. */
static void logged_time(char out[21], const uint8_t *copy, size_t len)
{
    size_t b = len > 0 ? len - 1 : 0;
    json_t *j;
    out[0] = '\0';
    while (b > 0 && copy[b - 1] != '\n')
        b--;
    if ((j = json_loadb((const char *)copy + b, len - b, JSON_REJECT_DUPLICATES, NULL)) == NULL)
        return;
    const char *t = json_string_value(json_object_get(j, "time"));
    char v[21];
    if (t != NULL && strlen(t) == 20 && fwrel_keystore_parse_time(v, t) == 0)
        memcpy(out, v, sizeof(v));
    fwrel_error_clear();
    json_decref(j);
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
    size_t before = fwrel_report_count(R->report);
    error = fwrel_audit_check_copy(R->report, L, R->audit_path, copy, len, R->audit_head,
                                   R->audit_entries, M->bundle_sha);
    const fwrel_step *st = fwrel_report_step(R->report, before);
    if (error == 0 && st != NULL && strcmp(st->name, "audit.copy") == 0 &&
        st->verdict == FWREL_PASS)
        logged_time(R->logged, copy, len);
done:
    free(copy);
    return error;
}

/* policy and approvals: with a policy, the release is of its product and of one of its channels,
 * and its approvals meet the policy's rule (fwrel_approvals_check(), the rule CI mode uses); a
 * release recording another policy's hash is noted (a policy change is visible, not a failure:
 * the given policy's rule is the one applied). Without a policy the release's own record is the
 * only rule there is: ci.approvals judged by it, and these steps say they were not run. */
static int step_policy(struct ctx *c, fwrel_audit_release *R, const fwrel_bundle *b,
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
    if (fwrel_rules_policy_in_force(rule, pol, R->product, R->channel) != 0) {
        fwrel_problem(&p, "%s", fwrel_error_last()->message);
        fwrel_error_clear();
    }
    if (p.n)
        ADD(R, "policy", FWREL_FAIL, "%s", p.text);
    else
        ADD(R, "policy", FWREL_PASS, "%s %s: %u approvals required, by the policy's %zu approvers",
            R->product, R->channel, rule->required, rule->npinned);
    if (R->have_record && strcmp(R->record.policy_sha256, c->a->policy_sha) != 0) {
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
    /* tag.name: the tag name, and so the directory of its files in the tree, is the template's
     * for the product, channel and version the (signed) message names. */
    if (fwrel_rules_tag_check(c->a->tmpl, R->tag, R->product, R->channel, R->version) != 0) {
        ADD(R, "tag.name", FWREL_FAIL, "%s", fwrel_error_last()->message);
        fwrel_error_clear();
    } else {
        ADD(R, "tag.name", FWREL_PASS, "%s is the name %s gives this release", R->tag, c->a->tmpl);
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
    if ((error = step_policy(c, R, b, &rule)) != 0)
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

void *fwrel_auditor_worker(void *arg)
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
        /* Another shard's release: only the whole-history steps are added to its report. */
        int e = c->a->mine[i] ? audit_one(c, w->r, i) : fwrel_report_new(&c->a->rel[i].report);
        if (e == 0 && c->a->mine[i] && c->progress != NULL) {
            pthread_mutex_lock(&c->lock);
            c->progress(c->progress_arg, ++c->done, c->a->nmine);
            pthread_mutex_unlock(&c->lock);
        }
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
