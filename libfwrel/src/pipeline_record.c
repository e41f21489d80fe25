/* pipeline_record.c - the second phase of a release: approvals gathered later
 * (fwrel_pipeline_approve()) and the recording of an approved bundle (fwrel_pipeline_record()). */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/approvals.h"
#include "fwrel/bundle.h"
#include "fwrel/bundle_verify.h"
#include "fwrel/pgp.h"
#include "fwrel/rules.h"
#include "util.h"

/* --- approvals gathered later, and the recording of an approved bundle --------------------- */

int fwrel_pipeline_approve(size_t *have, size_t *need, fwrel_report *report, const char *bundle,
                           const char *const *fprs, size_t nfprs, const char *gnupg_home,
                           const fwrel_pass_src *pass, fwrel_pipeline_show_fn show, void *arg)
{
    FWREL_ASSERT_ARG(have != NULL && need != NULL && bundle != NULL && fprs != NULL && nfprs > 0 &&
                     nfprs <= FWREL_PIPELINE_MAX_APPROVERS);
    fwrel_bundle *b = NULL;
    fwrel_release rec;
    fwrel_approvals_rule rule;
    const fwrel_bundle_member *sums;
    fwrel_bundle_member *m = NULL;
    uint8_t *sig[FWREL_PIPELINE_MAX_APPROVERS] = {NULL};
    char up[FWREL_PIPELINE_MAX_APPROVERS][41], names[FWREL_PIPELINE_MAX_APPROVERS][64];
    size_t n = 0;
    int error;

    /* One reading: what is checked and shown is what is signed and written back. */
    if ((error = fwrel_bundle_read(&b, bundle)) != 0)
        goto done;
    fwrel_report_add(report, "bundle.read", FWREL_PASS, "%zu members, strict", b->n);
    /* The CI checks of the members against the record (fwrel-verify --bundle's own code): the
     * approver signs SHA256SUMS, which covers the record, so the record must be the members'. */
    if ((error = fwrel_bundle_check_record(report, &rec, b)) != 0)
        goto done;
    fwrel_approvals_rule_record(&rule, &rec);
    rule.source = "the release's policy"; /* the record states its policy's rule */
    for (size_t i = 0; i < nfprs; i++) {
        if ((error = fwrel_approvals_require_pinned(up[i], &rule, gnupg_home, fprs[i])) != 0)
            goto done;
        snprintf(names[i], sizeof(names[i]), "approvals/%.40s.asc", up[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(up[j], up[i]) == 0) {
                error = fwrel_error_set(FWREL_EUSAGE, "%s: given twice", up[i]);
                goto done;
            }
        if (fwrel_bundle_find(b, names[i]) != NULL) {
            error = fwrel_error_set(FWREL_EVERIFY, "%s: already in the bundle", names[i]);
            goto done;
        }
    }
    /* What is approved, before any passphrase is asked for. */
    if (show != NULL)
        show(arg, &rec);
    sums = fwrel_bundle_find(b, "SHA256SUMS");
    m = malloc((b->n + nfprs) * sizeof(*m));
    if (m == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    memcpy(m, b->members, b->n * sizeof(*m));
    for (n = 0; n < nfprs; n++) {
        size_t len = 0;
        if ((error = fwrel_pgp_sign_detached(&sig[n], &len, gnupg_home, up[n], sums->data,
                                             sums->len, pass)) != 0)
            goto done;
        if (len > FWREL_BUNDLE_SMALL_MAX) {
            error = fwrel_error_set(FWREL_EUSAGE, "%s: larger than %llu bytes", names[n],
                                    (unsigned long long)FWREL_BUNDLE_SMALL_MAX);
            goto done;
        }
        m[b->n + n] = (fwrel_bundle_member){names[n], sig[n], len};
    }
    /* The bundle read, with the new approvals, mtime kept: the same bytes as a bundle written
     * with these approvals from the start. */
    if ((error = fwrel_bundle_write(bundle, m, b->n + nfprs, b->mtime, FWREL_OUT_FORCE)) != 0)
        goto done;
    *have = nfprs;
    for (size_t i = 0; i < b->n; i++)
        *have += strncmp(b->members[i].name, "approvals/", 10) == 0;
    *need = rec.approvals_required;
    error = 0;
done:
    for (size_t i = 0; i < FWREL_PIPELINE_MAX_APPROVERS; i++)
        free(sig[i]);
    free(m);
    fwrel_bundle_free(b);
    return error;
}

/* Whether the bundle being recorded holds an approval by fpr. */
static int has_approval(const struct run *r, const char *fpr)
{
    char name[64];
    snprintf(name, sizeof(name), "approvals/%s.asc", fpr);
    return fwrel_run_find_member(r, name) != NULL;
}

/*
 * The bundle's approvals under the channel's rule (fwrel_approvals_check(), as CI mode and the
 * auditor judge them). The tag is signed by the tag signer given; else by the first approver given
 * (-A, in the order given), who must have approved the bundle; else by the first of the policy's
 * pinned approvers, in the policy's order, whose approval the bundle holds (never the order of
 * the fingerprints).
 */
static int check_approvals(struct run *r)
{
    fwrel_bundle_member *view = NULL;
    fwrel_approvals_outcome out;
    int error;
    if ((error = fwrel_run_member_view(&view, r)) != 0)
        return error;
    fwrel_bundle b = {view, r->nm, 0};
    error = fwrel_approvals_check(&out, &r->rule, &b, r->o->gnupg_home);
    free(view);
    if (error)
        return error;
    r->napprovals = out.count;
    for (size_t i = 0; i < r->napprovers; i++)
        if (!has_approval(r, r->approvers[i]))
            return fwrel_error_set(FWREL_EVERIFY,
                                   "approver %s has not approved the bundle: approve it first "
                                   "(--approve), or give the tag signer with --tag-signer FPR",
                                   r->approvers[i]);
    if (r->tag_signer[0] != '\0')
        memcpy(r->signer, r->tag_signer, 41);
    else if (r->napprovers > 0)
        memcpy(r->signer, r->approvers[0], 41);
    else
        for (size_t i = 0; i < r->rule.npinned && r->signer[0] == '\0'; i++)
            if (has_approval(r, r->rule.pinned[i]))
                memcpy(r->signer, r->rule.pinned[i], 41);
    r->res->approvals = r->napprovals;
    if (r->signer[0] == '\0')
        return fwrel_error_set(FWREL_EUSAGE, "no one to sign the tag: give --tag-signer FPR");
    if (!out.ok)
        return fwrel_error_set(FWREL_EVERIFY, "%s", out.detail);
    fwrel_report_add(r->report, "approve", FWREL_PASS, "%s", out.detail);
    return 0;
}

/* The bundle read back: its members, its record, and that it was made under this policy. */
static int step_load_bundle(struct run *r)
{
    fwrel_bundle *b = NULL;
    char policy_sha[65];
    int error;

    if ((error = fwrel_io_read_small(&r->bundle, &r->bundle_len, r->o->image,
                                     (size_t)FWREL_BUNDLE_FILE_MAX)) != 0 ||
        (error = fwrel_bundle_read_mem(&b, r->bundle, r->bundle_len)) != 0)
        goto done;
    /* The CI checks of the members against the record (fwrel-verify --bundle's own code) before
     * anything the record says is recorded. */
    if ((error = fwrel_bundle_check_record(r->report, r->rec, b)) != 0)
        goto done;
    for (size_t i = 0; i < b->n && error == 0; i++)
        error = fwrel_run_add_member(r, b->members[i].name, b->members[i].data, b->members[i].len);
    if (error)
        goto done;
    fwrel_hex(policy_sha, r->p->sha256, sizeof(r->p->sha256));
    if (strcmp(r->rec->channel, r->chname) != 0) {
        error = fwrel_error_set(FWREL_EVERIFY, "the bundle is a %s release, not %s",
                                r->rec->channel, r->chname);
        goto done;
    }
    /* The record's product and channel under the policy: the rulebook's rule, the one the
     * auditor applies to a recorded release (fwrel_rules_policy_in_force(), docs/rules.md). */
    if ((error = fwrel_rules_policy_in_force(&r->rule, r->p, r->rec->product, r->rec->channel)) !=
        0)
        goto done;
    if (strcmp(r->rec->policy_sha256, policy_sha) != 0) {
        error = fwrel_error_set(FWREL_EVERIFY,
                                "the bundle was made under another policy "
                                "(sha256 %.16s...), not this one",
                                r->rec->policy_sha256);
        goto done;
    }
    fwrel_sha256_hex(r->res->bundle_sha256, r->bundle, r->bundle_len);
    fwrel_report_add(r->report, "bundle", FWREL_PASS, "%s %s (%s), %zu members, sha256 %s",
                     r->rec->product, r->rec->version, r->rec->channel, b->n,
                     r->res->bundle_sha256);
    error = 0;
done:
    if (error)
        fwrel_error_prefix("bundle");
    fwrel_bundle_free(b);
    return error;
}

/*
 * The tag signer's secret key is in the GnuPG home and unlocks, before the lock and the audit
 * log: the only key --record signs with. Chosen by default (no --tag-signer), its failure
 * names the option that picks another.
 */
static int ready_tag_signer(struct run *r)
{
    int error = fwrel_run_ready_signer(r, r->signer, "tag signer");
    if (error == 0)
        error = fwrel_run_ready_unlock(r, r->signer);
    if (error && r->tag_signer[0] == '\0') {
        fwrel_error e = *fwrel_error_last();
        fwrel_error_set(e.code, "%.400s; or let another approver sign the tag: --tag-signer FPR",
                        e.message);
        fwrel_error_about(e.about, e.path[0] != '\0' ? e.path : NULL);
    }
    return error;
}

/* The channel a bundle's release.json names ("" when it cannot be read: the reading step says
 * why later). */
static void bundle_channel(char out[17], const char *path)
{
    fwrel_bundle *b = NULL;
    fwrel_release rec;
    const fwrel_bundle_member *rj;
    out[0] = '\0';
    if (fwrel_bundle_read(&b, path) == 0 && (rj = fwrel_bundle_find(b, "release.json")) != NULL &&
        fwrel_release_decode(&rec, rj->data, rj->len) == 0)
        snprintf(out, 17, "%s", rec.channel);
    fwrel_error_clear();
    fwrel_bundle_free(b);
}

int fwrel_pipeline_record(fwrel_pipeline_result *res, fwrel_report *report,
                          const fwrel_pipeline_opts *opts)
{
    FWREL_ASSERT_ARG(res != NULL && opts != NULL && opts->policy != NULL && opts->image != NULL);
    struct run r;
    char channel[17];
    fwrel_pipeline_opts own = *opts;
    const fwrel_pipeline_opts *o = &own;
    const char *failed = "setup";
    int error;

    /* Without --channel: the bundle's own (checked against it again when it is read). */
    if (own.channel == NULL) {
        bundle_channel(channel, own.image);
        own.channel = channel[0] != '\0' ? channel : NULL;
    }
    if ((error = fwrel_run_init(&r, res, report, o)) != 0)
        return error;
    STEP("policy", fwrel_run_policy(&r));
    r.recording = 1;
    STEP("policy", fwrel_run_preflight(&r));
    STEP("bundle", step_load_bundle(&r));
    STEP("approve", check_approvals(&r));
    STEP("preflight", ready_tag_signer(&r));
    STEP("lock", fwrel_run_lock(&r));
    STEP("history", fwrel_run_history(&r));
    STEP("output", fwrel_run_output_prepare(&r));
    STEP("audit", fwrel_run_audit(&r));
    STEP("repo", fwrel_run_repo(&r));
    if (r.out != NULL)
        STEP("output", fwrel_run_output_commit(&r));
    error = 0;
done:
    fwrel_run_finish(&r, error, failed);
    return error;
}
