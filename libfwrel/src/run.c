/* run.c - what the pipeline's steps share (run.h): the bundle's members, file digests, the audit
 * entries of a run, the repository lock, and a run's setup and end. The steps (pipeline.c,
 * pipeline_make.c, pipeline_history.c, pipeline_record.c) call these; these call no step. */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fwrel/audit.h"
#include "fwrel/bundle.h"
#include "fwrel/history.h"
#include "fwrel/io.h"
#include "fwrel/keystore.h"
#include "fwrel/policy.h"
#include "fwrel/repo.h"
#include "util.h"

#define REPO_LOCK_MS 30000

/* SHA-256 and size of a whole source. */
int fwrel_run_src_digest(fwrel_release_file *f, fwrel_src *src)
{
    uint8_t d[32];
    int error;
    if ((error = fwrel_src_seek(src, 0)) == 0 &&
        (error = fwrel_digest_src(d, NULL, src, src->size)) == 0) {
        fwrel_hex(f->sha256, d, sizeof(d));
        f->size = src->size;
    }
    return error;
}

int fwrel_run_add_member(struct run *r, const char *name, const uint8_t *data, size_t len)
{
    if (r->nm >= MAX_MEMBERS)
        return fwrel_error_set(FWREL_EFORMAT, "more than %d bundle members", MAX_MEMBERS);
    if (strlen(name) >= sizeof(r->m[0].name))
        return fwrel_error_set(FWREL_EFORMAT, "member name too long");
    if ((r->m[r->nm].data = malloc(len > 0 ? len : 1)) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    memcpy(r->m[r->nm].data, data, len);
    r->m[r->nm].len = len;
    snprintf(r->m[r->nm].name, sizeof(r->m[0].name), "%s", name);
    r->nm++;
    return 0;
}

const struct member *fwrel_run_find_member(const struct run *r, const char *name)
{
    for (size_t i = 0; i < r->nm; i++)
        if (strcmp(r->m[i].name, name) == 0)
            return &r->m[i];
    return NULL;
}

static int cmp_member(const void *a, const void *b)
{
    return strcmp(((const struct member *)a)->name, ((const struct member *)b)->name);
}

/* The members as bundle.h wants them, sorted; the array is malloc'd. */
int fwrel_run_member_view(fwrel_bundle_member **out, struct run *r)
{
    qsort(r->m, r->nm, sizeof(r->m[0]), cmp_member);
    if ((*out = calloc(r->nm + 1, sizeof(**out))) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    for (size_t i = 0; i < r->nm; i++) {
        (*out)[i].name = r->m[i].name;
        (*out)[i].data = r->m[i].data;
        (*out)[i].len = r->m[i].len;
    }
    return 0;
}

json_t *fwrel_run_file_json(const char *name, const char *sha256, uint64_t size)
{
    return json_pack("{s:s, s:s, s:I}", "name", name, "sha256", sha256, "size", (json_int_t)size);
}

/* Append one entry (audit.c builds it): the caller's event, inputs and outputs (arrays of
 * fwrel_run_file_json(), taken over), "ok" or the reason. */
int fwrel_run_log(struct run *r, const char *event, const char *fpr, json_t *in, json_t *out,
                  const char *reason)
{
    fwrel_audit_file *f = calloc(json_array_size(in) + json_array_size(out) + 1, sizeof(*f));
    json_t *arrays[2] = {in, out}, *j;
    size_t n = 0, i;
    int error;

    for (int a = 0; f != NULL && a < 2; a++)
        json_array_foreach(arrays[a], i, j)
        {
            f[n].name = json_string_value(json_object_get(j, "name"));
            snprintf(f[n].sha256, sizeof(f[n].sha256), "%s",
                     json_string_value(json_object_get(j, "sha256")));
            f[n++].size = (uint64_t)json_integer_value(json_object_get(j, "size"));
        }
    const fwrel_audit_entry e = {.event = event,
                                 .user = r->o->who,
                                 .fingerprint = fpr,
                                 .inputs = f,
                                 .ninputs = json_array_size(in),
                                 .outputs = f + json_array_size(in),
                                 .noutputs = json_array_size(out),
                                 .reason = reason};
    if (f == NULL)
        error = fwrel_error_set(FWREL_EIO, "out of memory");
    else
        error = fwrel_audit_record(r->audit_path, &e, r->res->audit_head);
    free(f);
    json_decref(in);
    json_decref(out);
    if (error)
        fwrel_error_prefix("audit log");
    return error;
}

/* The image given (once read) and the policy, as audit inputs. */
json_t *fwrel_run_inputs(struct run *r)
{
    const fwrel_pipeline_opts *o = r->o;
    json_t *in = json_array();
    const char *base = strrchr(o->image, '/');
    fwrel_audit_file policy;
    if (r->rec->input.sha256[0] != '\0' && !r->recording)
        json_array_append_new(in, fwrel_run_file_json(base != NULL ? base + 1 : o->image,
                                                      r->rec->input.sha256, r->rec->input.size));
    fwrel_audit_file_of(&policy, o->policy, r->p->sha256);
    json_array_append_new(in, fwrel_run_file_json(policy.name, policy.sha256, policy.size));
    return in;
}

/* The failure record ("release", result "fail"). */
static int audit_entry(struct run *r, const char *event, const char *reason)
{
    return fwrel_run_log(r, event, r->signer, fwrel_run_inputs(r), json_array(), reason);
}

/* The repository (created on first use) and its lock; from here a failure is logged, so the audit
 * log's directory is made now, once. */
int fwrel_run_lock(struct run *r)
{
    int error;
    if ((error = fwrel_repo_open(&r->repo, r->repo_path, 1)) != 0 ||
        (error = fwrel_repo_lock(r->repo, REPO_LOCK_MS)) != 0)
        return error;
    r->locked = 1;
    if ((error = fwrel_policy_audit_path(r->audit_path, sizeof(r->audit_path), r->p, r->repo_path,
                                         1)) != 0)
        return error;
    r->audit_ok = 1;
    fwrel_report_add(r->report, "lock", FWREL_PASS, "%s", r->repo_path);
    return 0;
}

/* Closes the HSM keys that fwrel_run_unlock() logged in to. */
void fwrel_run_close_keys(struct run *r)
{
    for (size_t i = 0; i < FWREL_POLICY_MAX_KEYS; i++) {
        fwrel_hsm_key_close(r->hsm[i]);
        r->hsm[i] = NULL;
    }
}

void fwrel_run_finish(struct run *r, int error, const char *failed)
{
    if (error) {
        /* Keep the reason: the cleanup below may overwrite the error. */
        char reason[FWREL_ERROR_MSG_MAX + 300];
        const fwrel_error *e = fwrel_error_last();
        fwrel_error saved = *e;
        snprintf(reason, sizeof(reason), "release %s failed at %s: %s",
                 r->res->tag[0] ? r->res->tag : "(no tag yet)", failed, e->message);
        if (r->report != NULL)
            fwrel_report_add(r->report, failed, FWREL_FAIL, "%s", e->message);
        /* Logged once the lock is held (the log's place is known and writes are serialized). */
        if (r->locked && r->audit_ok && !r->res->recorded && audit_entry(r, "release", reason) != 0)
            fwrel_error_clear();
        fwrel_error_restore(&saved);
        if (r->out != NULL)
            fwrel_out_abort(r->out);
    }
    for (size_t i = 0; i < r->nm; i++)
        free(r->m[i].data);
    free(r->bundle);
    free(r->sums);
    if (r->locked)
        fwrel_repo_unlock(r->repo);
    fwrel_history_free(r->history);
    fwrel_repo_free(r->repo);
    fwrel_run_close_keys(r);
    fwrel_pass_free(r->pass, r->pass_len);
    for (size_t i = 0; i < r->npgp; i++)
        fwrel_pass_free(r->pgp[i].pass, r->pgp[i].len);
    fwrel_keystore_close(r->ks);
    fwrel_policy_free(r->p);
    fwrel_src_close(&r->signed_src);
    fwrel_src_close(&r->enc_src);
}

/* Set up a run. Nothing is created: the intermediate files are unnamed, made when needed. */
int fwrel_run_init(struct run *r, fwrel_pipeline_result *res, fwrel_report *report,
                   const fwrel_pipeline_opts *o)
{
    memset(res, 0, sizeof(*res));
    memset(r, 0, sizeof(*r));
    r->o = o;
    r->res = res;
    r->report = report;
    r->rec = &res->record;
    r->signed_src.fd = -1;
    r->enc_src.fd = -1;
    r->tmpdir = getenv("TMPDIR") != NULL && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp";
    return 0;
}
