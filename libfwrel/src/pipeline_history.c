/* pipeline_history.c - the release against its history (the rulebook, rules.h) and the repair of
 * the history (fwrel_pipeline_repair(), docs/bundle.md "History"). */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fwrel/approvals.h"
#include "fwrel/history.h"
#include "fwrel/rules.h"
#include "fwrel/tagmsg.h"
#include "util.h"

/* The history read under the lock (history.h): each ignored tag reported, untagged release
 * commits refused. */
int fwrel_run_read_history(fwrel_history **h, struct run *r)
{
    fwrel_history_opts ho;
    const char *ts = r->signer[0] != '\0'       ? r->signer
                     : r->tag_signer[0] != '\0' ? r->tag_signer
                                                : r->o->tag_signer;
    int error;
    if ((error = fwrel_rules_history_opts(&ho, r->history_signer, r->p, ts, r->o->gnupg_home)) !=
            0 ||
        (error = fwrel_history_read(h, r->repo, &ho)) != 0)
        return error;
    for (size_t i = 0; i < (*h)->nign; i++)
        if (fwrel_report_add(r->report, "history", FWREL_INFO, "tag %s ignored: %s",
                             (*h)->ign[i].tag, (*h)->ign[i].reason) != 0)
            return fwrel_error_set(FWREL_EIO, "out of memory");
    return 0;
}

static fwrel_history_item history_item(const char *tag, const fwrel_release *rec)
{
    fwrel_history_item it = {tag,          rec->product, rec->version,
                             rec->channel, rec->counter, rec->secure_version};
    return it;
}

/* The release against the verified history of its product (the rules of history.c). */
int fwrel_run_history(struct run *r)
{
    fwrel_history *h = NULL;
    fwrel_history_state *st = NULL;
    fwrel_history_item *items = NULL;
    size_t seen = 0;
    int error;

    if ((error = fwrel_rules_tag_name(r->res->tag, r->p->tag, r->p->product, r->chname,
                                      r->rec->version)) != 0)
        return error;
    if ((error = fwrel_run_read_history(&h, r)) != 0 ||
        (error = fwrel_history_rule_untagged(h)) != 0 ||
        (error = fwrel_history_state_new(&st)) != 0)
        goto done;
    if ((items = calloc(h->nrel ? h->nrel : 1, sizeof(*items))) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < h->nrel; i++) {
        const fwrel_history_release *old = &h->rel[i];
        if (strcmp(old->record.product, r->p->product) != 0)
            continue;
        if (strcmp(old->record.input.sha256, r->rec->input.sha256) == 0 &&
            strcmp(old->record.channel, r->chname) == 0) {
            error =
                fwrel_error_set(FWREL_EVERIFY, "this image was released already as %s", old->tag);
            goto done;
        }
        items[seen] = history_item(old->tag, &old->record);
        if ((error = fwrel_history_state_add(st, &items[seen++])) != 0)
            goto done;
    }
    if (fwrel_history_has_tag(h, r->res->tag)) {
        int released = 0;
        for (size_t i = 0; i < h->nrel; i++)
            released |= strcmp(h->rel[i].tag, r->res->tag) == 0;
        error = released ? fwrel_error_set(FWREL_EVERIFY,
                                           "tag %s exists: version %s was released "
                                           "already",
                                           r->res->tag, r->rec->version)
                         : fwrel_error_set(FWREL_EVERIFY, "tag %s exists already", r->res->tag);
        goto done;
    }
    uint64_t next = fwrel_history_state_counter(st) + 1;
    if (next > UINT32_MAX) {
        error =
            fwrel_error_set(FWREL_EVERIFY, "the release counter of %s is exhausted", r->p->product);
        goto done;
    }
    if (r->recording && r->rec->counter != next) {
        error = fwrel_error_set(FWREL_EVERIFY,
                                "the bundle's release counter is %llu, the next is %llu: a release "
                                "was recorded since the bundle was made; make it again",
                                (unsigned long long)r->rec->counter, (unsigned long long)next);
        goto done;
    }
    r->rec->counter = next;
    fwrel_history_item it = {r->res->tag, r->p->product,   r->rec->version,
                             r->chname,   r->rec->counter, r->rec->secure_version};
    fwrel_rules_history_outcome ro;
    if ((error = fwrel_rules_history(&ro, st, &it, r->p)) != 0 ||
        (error = fwrel_rules_history_first(&ro)) != 0)
        goto done;
    fwrel_report_add(r->report, "history", FWREL_PASS, "%zu earlier release%s of %s; counter %llu",
                     seen, seen == 1 ? "" : "s", r->p->product,
                     (unsigned long long)r->rec->counter);
    error = 0;
    r->history = h; /* kept for the exports: read once, under the lock */
    h = NULL;
done:
    free(items);
    fwrel_history_state_free(st);
    fwrel_history_free(h);
    return error;
}

/* --- repairing the history ------------------------------------------------------------------ */

/* The tag message of a release commit: its commit message says the same after its first line
 * (step_repo writes both from one text, tagmsg.h). */
static int retag_message(char **msg, struct run *r, const fwrel_history_untagged *u)
{
    char *cmsg = NULL;
    const fwrel_release *rec = &u->record;
    int error = fwrel_repo_commit_message(&cmsg, r->repo, u->commit);
    if (error == 0 && (error = fwrel_tagmsg_from_commit(msg, cmsg, u->tag, rec->product,
                                                        rec->version, rec->channel)) != 0)
        fwrel_error_prefix("commit %s", u->commit);
    free(cmsg);
    return error;
}

/* The untagged release keeps the rules against the verified releases before it on the branch. */
static int retag_rules(struct run *r, const fwrel_history *h, const fwrel_history_untagged *u)
{
    fwrel_history_state *st = NULL;
    fwrel_history_item *items = calloc(h->nrel ? h->nrel : 1, sizeof(*items));
    size_t k = 0;
    int error =
        items == NULL ? fwrel_error_set(FWREL_EIO, "out of memory") : fwrel_history_state_new(&st);
    for (size_t i = 0; error == 0 && i < h->nrel; i++)
        if (h->rel[i].pos < u->pos && strcmp(h->rel[i].record.product, r->p->product) == 0) {
            items[k] = history_item(h->rel[i].tag, &h->rel[i].record);
            error = fwrel_history_state_add(st, &items[k++]);
        }
    fwrel_history_item it = history_item(u->tag, &u->record);
    fwrel_rules_history_outcome ro;
    if (error == 0 && ((error = fwrel_rules_history(&ro, st, &it, r->p)) != 0 ||
                       (error = fwrel_rules_history_first(&ro)) != 0))
        fwrel_error_prefix("commit %s (%s) breaks the history; if it is not a release of yours, "
                           "drop it (--drop)",
                           u->commit, u->tag);
    fwrel_history_state_free(st);
    free(items);
    return error;
}

static int do_repair(struct run *r, const char *commit, int drop)
{
    fwrel_history *h = NULL;
    const fwrel_history_untagged *u = NULL;
    char path[300], tag[256], rj_sha[65], name[400];
    char *msg = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *in = json_array(), *out = json_array();
    int error;

    if ((error = fwrel_run_read_history(&h, r)) != 0)
        goto done;
    for (size_t i = 0; i < h->nuntagged; i++)
        if (strcmp(h->untagged[i].commit, commit) == 0)
            u = &h->untagged[i];
    if (u == NULL) {
        error = fwrel_error_set(
            FWREL_EVERIFY, "commit %.40s is not an untagged commit of the release branch", commit);
        goto done;
    }
    snprintf(r->res->tag, sizeof(r->res->tag), "%s", u->tag);
    if (u->have_record) {
        snprintf(path, sizeof(path), "%s/release.json", u->tag);
        if ((error = fwrel_repo_commit_read_file(&data, &len, r->repo, u->commit, path,
                                                 FWREL_RELEASE_JSON_MAX)) != 0)
            goto done;
        fwrel_sha256_hex(rj_sha, data, len);
        snprintf(name, sizeof(name), "%s at commit %s", path, u->commit);
    } else {
        char *cmsg = NULL;
        if ((error = fwrel_repo_commit_message(&cmsg, r->repo, u->commit)) != 0)
            goto done;
        fwrel_sha256_hex(rj_sha, (const uint8_t *)cmsg, strlen(cmsg));
        len = strlen(cmsg);
        free(cmsg);
        snprintf(name, sizeof(name), "message of commit %s", u->commit);
    }
    json_array_append_new(in, fwrel_run_file_json(name, rj_sha, len));
    if (drop) {
        if (u->pos != h->ncommits) {
            error = fwrel_error_set(FWREL_EVERIFY,
                                    "commit %s is not the release branch's tip: only the tip can "
                                    "be dropped",
                                    u->commit);
            goto done;
        }
        if ((error = fwrel_repo_drop_tip(r->repo, u->commit)) != 0)
            goto done;
        fwrel_report_add(r->report, "repair", FWREL_PASS, "commit %s dropped from the branch",
                         u->commit);
    } else {
        fwrel_repo_release_opts ro;
        uint8_t *raw = NULL;
        size_t rawlen = 0;
        char tag_sha[65];
        if (!u->have_record) {
            error = fwrel_error_set(FWREL_EVERIFY,
                                    "commit %s adds no release record: it is not a release; "
                                    "drop it (--drop)",
                                    u->commit);
            goto done;
        }
        if (strcmp(u->record.product, r->p->product) != 0) {
            error = fwrel_error_set(FWREL_EVERIFY, "commit %s is a release of %s, not of %s",
                                    u->commit, u->record.product, r->p->product);
            goto done;
        }
        if ((error = fwrel_rules_tag_name(tag, r->p->tag, r->p->product, u->record.channel,
                                          u->record.version)) != 0)
            goto done;
        if (strcmp(tag, u->tag) != 0) {
            error = fwrel_error_set(FWREL_EVERIFY, "commit %s names tag %s, the policy makes %s",
                                    u->commit, u->tag, tag);
            goto done;
        }
        if (fwrel_history_has_tag(h, tag)) {
            error = fwrel_error_set(FWREL_EVERIFY,
                                    "tag %s exists but is not a verified release tag (see the "
                                    "ignored tags): delete it, then repair",
                                    tag);
            goto done;
        }
        if ((error = retag_rules(r, h, u)) != 0 || (error = retag_message(&msg, r, u)) != 0)
            goto done;
        memset(&ro, 0, sizeof(ro));
        ro.tag_name = tag;
        ro.tag_message = msg;
        ro.who.name = r->o->who != NULL && r->o->who[0] ? r->o->who : "fwrel";
        ro.who.email =
            r->o->email != NULL && r->o->email[0] ? r->o->email : "release@fwrel.invalid";
        ro.who.time = r->o->time;
        ro.gpg_home = r->o->gnupg_home;
        ro.signer_fpr = r->signer;
        ro.pass = r->o->pgp_pass;
        if ((error = fwrel_repo_retag(r->repo, u->commit, &ro, NULL)) != 0 ||
            (error = fwrel_repo_tag_raw(&raw, &rawlen, r->repo, tag)) != 0)
            goto done;
        fwrel_sha256_hex(tag_sha, raw, rawlen);
        free(raw);
        snprintf(name, sizeof(name), "refs/tags/%s", tag);
        json_array_append_new(out, fwrel_run_file_json(name, tag_sha, rawlen));
        memcpy(r->res->commit, u->commit, 41);
        r->res->record = u->record;
        fwrel_report_add(r->report, "repair", FWREL_PASS,
                         "tag %s (counter %llu) signed again on commit %s by %s", tag,
                         (unsigned long long)u->record.counter, u->commit, r->signer);
    }
    /* The repair is in the audit log (the next release commits it). */
    r->res->recorded = 1; /* done: a failure to log is not a failed repair */
    error = fwrel_run_log(r, "repair", r->signer, in, out, NULL);
    in = out = NULL;
done:
    json_decref(in);
    json_decref(out);
    free(msg);
    free(data);
    fwrel_history_free(h);
    return error;
}

int fwrel_pipeline_repair(fwrel_pipeline_result *res, fwrel_report *report,
                          const fwrel_pipeline_opts *o, const char *commit, int drop)
{
    FWREL_ASSERT_ARG(res != NULL && o != NULL && o->policy != NULL && commit != NULL);
    struct run r;
    const char *failed = "setup";
    int error;

    if ((error = fwrel_run_init(&r, res, report, o)) != 0)
        return error;
    STEP("policy", fwrel_policy_load(&r.p, o->policy));
    if (o->repo != NULL)
        snprintf(r.repo_path, sizeof(r.repo_path), "%s", o->repo);
    else
        STEP("policy", fwrel_policy_repo_path(r.repo_path, sizeof(r.repo_path), r.p, o->policy));
    int n = snprintf(r.audit_path, sizeof(r.audit_path), "%s/%s", r.repo_path, r.p->audit_log);
    if (n < 0 || (size_t)n >= sizeof(r.audit_path))
        STEP("policy", fwrel_error_set(FWREL_EUSAGE, "audit log path too long"));
    const char *signer = o->tag_signer != NULL ? o->tag_signer
                         : o->napprovers > 0   ? o->approvers[0]
                                               : NULL;
    if (signer == NULL)
        STEP("policy", fwrel_error_set(FWREL_EUSAGE, "a repair needs --tag-signer FPR"));
    /* The channel is the untagged commit's: a policy pinning nobody allows every channel without
     * approvals (fwrel_policy_load() refuses anything else). */
    if (fwrel_approvals_rule_policy(&r.rule, r.p, NULL) != 0)
        fwrel_error_clear();
    r.rule.allow_none = r.rule.npinned == 0;
    STEP("policy", fwrel_approvals_require_tag_signer(r.signer, &r.rule, o->gnupg_home, signer));
    STEP("lock", fwrel_run_lock(&r));
    STEP("repair", do_repair(&r, commit, drop));
    error = 0;
done:
    if (error && r.locked && !res->recorded) {
        /* The failure is logged as a repair's, not a release's. */
        fwrel_error saved = *fwrel_error_last();
        char reason[FWREL_ERROR_MSG_MAX + 100];
        snprintf(reason, sizeof(reason), "repair of commit %.40s failed at %s: %s", commit, failed,
                 saved.message);
        if (fwrel_run_log(&r, "repair", r.signer, json_array(), json_array(), reason) != 0)
            fwrel_error_clear();
        res->recorded = 1; /* logged here, not by fwrel_run_finish() */
        fwrel_error_restore(&saved);
    }
    fwrel_run_finish(&r, error, failed);
    res->recorded = error == 0;
    return error;
}
