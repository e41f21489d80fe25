/* pipeline.c - the policy-driven release (pipeline.h, docs/bundle.md). */
#define _GNU_SOURCE /* memmem */
#include "fwrel/pipeline.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "fwrel/approvals.h"
#include "fwrel/audit.h"
#include "fwrel/bundle.h"
#include "fwrel/bundle_verify.h"
#include "fwrel/encimg.h"
#include "fwrel/espimg.h"
#include "fwrel/export.h"
#include "fwrel/history.h"
#include "fwrel/hsm.h"
#include "fwrel/io.h"
#include "fwrel/keystore.h"
#include "fwrel/manifest.h"
#include "fwrel/pgp.h"
#include "fwrel/policy.h"
#include "fwrel/repo.h"
#include "fwrel/rules.h"
#include "fwrel/sbv1.h"
#include "fwrel/sbv2.h"
#include "fwrel/tagmsg.h"
#include "fwrel/version.h"
#include "run.h"
#include "util.h"

static int file_digest(fwrel_release_file *f, const char *path)
{
    fwrel_src src;
    int error = fwrel_src_open(&src, path, FWREL_IMAGE_MAX);
    if (error)
        return error;
    error = fwrel_run_src_digest(f, &src);
    fwrel_src_close(&src);
    return error;
}

/* --- steps --------------------------------------------------------------------------- */

int fwrel_run_policy(struct run *r)
{
    const fwrel_pipeline_opts *o = r->o;
    int error;
    if ((error = fwrel_policy_load(&r->p, o->policy)) != 0)
        return error;
    if (o->channel != NULL) {
        r->ch = fwrel_policy_channel_get(r->p, o->channel);
        if (r->ch == NULL)
            return fwrel_error_set(FWREL_EUSAGE, "the policy has no channel '%.16s'", o->channel);
    } else {
        for (int c = 0; c < FWREL_CHANNEL_COUNT; c++)
            if (r->p->channels[c].present) {
                if (r->ch != NULL)
                    return fwrel_error_set(FWREL_EUSAGE, "the policy has several channels: "
                                                         "give --channel");
                r->ch = &r->p->channels[c];
            }
    }
    r->chname = r->ch->name;
    if ((error = fwrel_rules_policy_in_force(&r->rule, r->p, NULL, r->chname)) != 0)
        return error;
    /* The repository: as given, else the policy's, relative to the policy file. */
    if (o->repo != NULL)
        snprintf(r->repo_path, sizeof(r->repo_path), "%s", o->repo);
    else if ((error =
                  fwrel_policy_repo_path(r->repo_path, sizeof(r->repo_path), r->p, o->policy)) != 0)
        return error;
    fwrel_report_add(r->report, "policy", FWREL_PASS, "%s, channel %s", r->p->product, r->chname);
    return 0;
}

static int step_keys(struct run *r)
{
    char now[21];
    int error;
    /* The keys must be valid when they sign: now (docs/rules.md "Keys at release time"). */
    fwrel_rfc3339(now, (int64_t)time(NULL));
    if ((error = fwrel_keystore_open(&r->ks, r->o->keystore, 0)) != 0 ||
        (error = fwrel_rules_keys_in_force(r->ent, r->ks, r->p, now)) != 0)
        return error;
    int any = 0;
    for (size_t i = 0; i < r->p->nkeys; i++)
        any |= r->ent[i]->encrypted;
    if (any && r->o->keystore_pass != NULL && r->o->keystore_pass->kind != FWREL_PASS_NONE &&
        (error = fwrel_pass_read(&r->pass, &r->pass_len, r->o->keystore_pass,
                                 "Keystore passphrase: ", 0)) != 0)
        return error;
    if ((error = fwrel_keystore_check_pass(r->ks, r->pass, r->pass_len)) != 0)
        return error;
    fwrel_report_add(r->report, "keys", FWREL_PASS, "%zu keys active in the keystore", r->p->nkeys);
    return 0;
}

static int step_image(struct run *r)
{
    const fwrel_policy *p = r->p;
    fwrel_espimg *img = &r->img;
    fwrel_src src;
    int error;

    if ((error = fwrel_src_open(&src, r->o->image, FWREL_IMAGE_MAX)) != 0)
        return error;
    error = fwrel_espimg_parse(img, &src, NULL);
    fwrel_src_close(&src);
    /* A malformed or corrupt image is bad input (exit 3), as to fwrel-sign; named. */
    if (error || (error = fwrel_espimg_check_input(img)) != 0)
        return fwrel_error_about(FWREL_ABOUT_INPUT, r->o->image);
    if ((error = file_digest(&r->rec->input, r->o->image)) != 0)
        return error;
    if (img->chip != p->chip)
        return fwrel_error_set(FWREL_EVERIFY, "the image is for %s, the policy for %s",
                               img->chip != NULL ? img->chip->name : "an unknown chip",
                               p->chip->name);
    if ((error = fwrel_policy_check_chip_rev(p, img->min_chip_rev_full, img->max_chip_rev_full)) !=
        0)
        return error;
    if (!img->has_app_desc)
        return fwrel_error_set(FWREL_EVERIFY, "the image has no app descriptor (esp_app_desc_t)");
    if (img->file_len != img->image_len)
        return fwrel_error_set(FWREL_EVERIFY, "the image is signed already or has trailing "
                                              "bytes: give the unsigned image");
    uint64_t need = p->scheme == FWREL_POLICY_SBV1
                        ? img->image_len + FWREL_SBV1_BLOCK_LEN
                        : ((img->image_len + 4095) & ~(uint64_t)4095) + 4096;
    if (need > p->partition_size)
        return fwrel_error_set(FWREL_EVERIFY,
                               "the signed image needs %llu bytes, the partition has %llu",
                               (unsigned long long)need, (unsigned long long)p->partition_size);
    uint32_t sv = img->app_desc.secure_version;
    if (sv < p->min_secure_version)
        return fwrel_error_set(FWREL_EVERIFY, "secure_version %u is below the policy's minimum %u",
                               sv, p->min_secure_version);
    if (sv > p->efuse_bits)
        return fwrel_error_set(FWREL_EVERIFY,
                               "secure_version %u exceeds the eFuse field's capacity %u", sv,
                               p->efuse_bits);
    if ((error = fwrel_policy_release_version(r->rec->version, sizeof(r->rec->version), p,
                                              r->chname, img->app_desc.version)) != 0)
        return error;
    r->rec->secure_version = sv;
    fwrel_report_add(r->report, "image", FWREL_PASS, "%s %s, secure_version %u, %llu bytes",
                     p->chip->name, img->app_desc.version, sv, (unsigned long long)img->image_len);
    return 0;
}

/* release.json, then SHA256SUMS over every member so far. */
static int step_record(struct run *r)
{
    fwrel_release *rec = r->rec;
    fwrel_bundle_member *view = NULL;
    char *json = NULL;
    size_t jlen = 0;
    int error;

    snprintf(rec->product, sizeof(rec->product), "%s", r->p->product);
    snprintf(rec->channel, sizeof(rec->channel), "%s", r->chname);
    snprintf(rec->chip, sizeof(rec->chip), "%s", r->p->chip->name);
    for (size_t i = 0; i < r->p->ndevice_types && i < 8; i++)
        snprintf(rec->device_types[i], sizeof(rec->device_types[0]), "%s", r->p->device_types[i]);
    rec->ndevice_types = r->p->ndevice_types < 8 ? r->p->ndevice_types : 8;
    fwrel_hex(rec->policy_sha256, r->p->sha256, sizeof(r->p->sha256));
    for (size_t i = 0; i < r->p->napprovers && i < 16; i++)
        memcpy(rec->approvers[i], r->p->approvers[i], 41);
    rec->napprovers = r->p->napprovers < 16 ? r->p->napprovers : 16;
    rec->approvals_required = r->ch->approvals_required;
    snprintf(rec->tool_version, sizeof(rec->tool_version), "%s", fwrel_version());
    if ((error = fwrel_release_encode(&json, &jlen, rec)) != 0 ||
        (error = fwrel_run_add_member(r, "release.json", (const uint8_t *)json, jlen)) != 0 ||
        (error = fwrel_run_member_view(&view, r)) != 0 ||
        (error = fwrel_bundle_sums(&r->sums, &r->sums_len, view, r->nm)) != 0 ||
        (error = fwrel_run_add_member(r, "SHA256SUMS", (const uint8_t *)r->sums, r->sums_len)) != 0)
        goto done;
    fwrel_report_add(r->report, "record", FWREL_PASS,
                     "release.json and SHA256SUMS over %zu members", r->nm - 1);
    error = 0;
done:
    free(view);
    free(json);
    return error;
}

/* The approvers given sign SHA256SUMS; who signs the tag is decided here. */
static int step_approve(struct run *r)
{
    const fwrel_pipeline_opts *o = r->o;
    int error = 0;

    for (size_t i = 0; i < r->napprovers; i++) {
        const char *fpr = r->approvers[i];
        char name[64];
        uint8_t *sig = NULL;
        size_t len = 0;
        snprintf(name, sizeof(name), "approvals/%s.asc", fpr);
        if (fwrel_run_find_member(r, name) != NULL)
            continue; /* the same approver twice counts once */
        if ((error =
                 fwrel_pgp_sign_detached(&sig, &len, o->gnupg_home, fpr, (const uint8_t *)r->sums,
                                         r->sums_len, fwrel_run_pgp_pass(r, fpr))) != 0) {
            fwrel_error_prefix("approver %s", fpr);
            return error;
        }
        error = fwrel_run_add_member(r, name, sig, len);
        free(sig);
        if (error)
            return error;
        if (r->signer[0] == '\0')
            memcpy(r->signer, fpr, 41);
        r->napprovals++;
    }
    if (r->tag_signer[0] != '\0')
        memcpy(r->signer, r->tag_signer, 41);
    r->res->approvals = r->napprovals;
    fwrel_report_add(r->report, "approve",
                     r->napprovals >= r->ch->approvals_required ? FWREL_PASS : FWREL_INFO,
                     "%zu of %u required approvals", r->napprovals, r->ch->approvals_required);
    return 0;
}

static int step_bundle(struct run *r)
{
    fwrel_bundle_member *view = NULL;
    int error;
    if ((error = fwrel_run_member_view(&view, r)) == 0 &&
        (error = fwrel_bundle_write_mem(&r->bundle, &r->bundle_len, view, r->nm, r->o->time)) ==
            0) {
        fwrel_sha256_hex(r->res->bundle_sha256, r->bundle, r->bundle_len);
        fwrel_report_add(r->report, "bundle", FWREL_PASS, "%zu members, %zu bytes, sha256 %s",
                         r->nm, r->bundle_len, r->res->bundle_sha256);
    }
    free(view);
    return error;
}

static json_t *one_file(const char *name, const char *sha256, uint64_t size)
{
    json_t *a = json_array();
    json_array_append_new(a, fwrel_run_file_json(name, sha256, size));
    return a;
}

/*
 * What this run did, one entry per act: "sign" (image -> signed image) and "encrypt" (signed
 * image -> firmware.enc) when the bundle is made now, "approve" for each approval in the
 * bundle that is new to the log (made now, or added by --approve before --record), then
 * "bundle" (image and policy -> the bundle). All are appended after everything is made, just
 * before the commit: a failure earlier leaves only its failure record.
 */
int fwrel_run_audit(struct run *r)
{
    const fwrel_release *rec = r->rec;
    const struct member *sums = fwrel_run_find_member(r, "SHA256SUMS");
    char sums_sha[65], name[300];
    uint8_t *log = NULL;
    size_t log_len = 0;
    int error = 0;

    if (!r->recording) {
        error = fwrel_run_log(
            r, "sign", NULL, one_file("input image", rec->input.sha256, rec->input.size),
            one_file("signed image", rec->signed_image.sha256, rec->signed_image.size), NULL);
        if (error == 0 && rec->encrypted)
            error = fwrel_run_log(
                r, "encrypt", NULL,
                one_file("signed image", rec->signed_image.sha256, rec->signed_image.size),
                one_file(rec->image.name, rec->image.sha256, rec->image.size), NULL);
    }
    /* --record: approvals made with the bundle were logged then; only the later ones now. */
    if (r->recording && access(r->audit_path, F_OK) == 0 &&
        (error = fwrel_io_read_small(&log, &log_len, r->audit_path, FWREL_REPO_FILE_MAX)) != 0)
        return error;
    fwrel_sha256_hex(sums_sha, (const uint8_t *)sums->data, sums->len);
    for (size_t i = 0; error == 0 && i < r->nm; i++) {
        char sig_sha[65], fpr[41];
        if (strncmp(r->m[i].name, "approvals/", 10) != 0)
            continue;
        fwrel_sha256_hex(sig_sha, r->m[i].data, r->m[i].len);
        if (log != NULL && memmem(log, log_len, sig_sha, 64) != NULL)
            continue;
        snprintf(fpr, sizeof(fpr), "%.40s", r->m[i].name + 10);
        error = fwrel_run_log(r, "approve", fpr, one_file("SHA256SUMS", sums_sha, sums->len),
                              one_file(r->m[i].name, sig_sha, r->m[i].len), NULL);
    }
    /* The bundle: as the repository will hold it, or (waiting for approvals) the output file. */
    const char *out_base = r->o->output != NULL ? strrchr(r->o->output, '/') : NULL;
    if (!r->recording && r->napprovals < r->ch->approvals_required && r->o->output != NULL)
        snprintf(name, sizeof(name), "%s", out_base != NULL ? out_base + 1 : r->o->output);
    else
        snprintf(name, sizeof(name), "%s/bundle.fwb", r->res->tag);
    if (error == 0)
        error = fwrel_run_log(r, "bundle", r->signer, fwrel_run_inputs(r),
                              one_file(name, r->res->bundle_sha256, r->bundle_len), NULL);
    if (error == 0)
        fwrel_report_add(r->report, "audit", FWREL_PASS, "head %s", r->res->audit_head);
    free(log);
    return error;
}

/* The bundle, its release.json and the audit log committed; the signed tag. */
int fwrel_run_repo(struct run *r)
{
    const fwrel_pipeline_opts *o = r->o;
    const struct member *rj = fwrel_run_find_member(r, "release.json");
    char pbundle[300], prel[300], *msg = NULL, *commit_msg = NULL;
    fwrel_tagmsg tm;
    uint8_t *log = NULL;
    size_t log_len = 0;
    uint64_t entries = 0;
    char head[65], rj_sha[65];
    int error;

    /* The log read once: the bytes committed are the bytes verified, ending in this run's head. */
    FILE *f = NULL;
    if ((error = fwrel_io_read_small(&log, &log_len, r->audit_path, FWREL_REPO_FILE_MAX)) == 0) {
        if ((f = fmemopen(log, log_len, "r")) == NULL)
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot read it");
        else
            error = fwrel_audit_verify_stream(f, r->res->audit_head, 0, &entries, head);
        if (f != NULL)
            fclose(f);
    }
    if (error) {
        fwrel_error_prefix("audit log");
        goto done;
    }
    snprintf(pbundle, sizeof(pbundle), "%s/bundle.fwb", r->res->tag);
    snprintf(prel, sizeof(prel), "%s/release.json", r->res->tag);
    fwrel_sha256_hex(rj_sha, rj->data, rj->len);
    memset(&tm, 0, sizeof(tm));
    snprintf(tm.product, sizeof(tm.product), "%s", r->rec->product);
    snprintf(tm.version, sizeof(tm.version), "%s", r->rec->version);
    snprintf(tm.channel, sizeof(tm.channel), "%s", r->rec->channel);
    tm.counter = r->rec->counter;
    tm.secure_version = r->rec->secure_version;
    snprintf(tm.bundle_path, sizeof(tm.bundle_path), "%s", pbundle);
    memcpy(tm.bundle_sha, r->res->bundle_sha256, 65);
    tm.bundle_size = r->bundle_len;
    memcpy(tm.rj_sha, rj_sha, 65);
    memcpy(tm.input_sha, r->rec->input.sha256, 65);
    tm.input_size = r->rec->input.size;
    memcpy(tm.policy_sha, r->rec->policy_sha256, 65);
    for (size_t i = 0; i < r->nm && tm.napprovals < FWREL_TAGMSG_APPROVALS_MAX; i++)
        if (strncmp(r->m[i].name, "approvals/", 10) == 0)
            snprintf(tm.approvals[tm.napprovals++], 41, "%.40s", r->m[i].name + 10);
    tm.approvals_required = r->ch->approvals_required;
    if ((size_t)snprintf(tm.audit_path, sizeof(tm.audit_path), "%s", r->p->audit_log) >=
        sizeof(tm.audit_path)) {
        error = fwrel_error_set(FWREL_EFORMAT, "the audit log path is too long for the tag");
        goto done;
    }
    memcpy(tm.audit_head, head, 65);
    tm.audit_entries = entries;
    if ((error = fwrel_tagmsg_encode(&msg, &commit_msg, &tm, r->res->tag)) != 0)
        goto done;
    fwrel_repo_file files[3] = {
        {pbundle, r->bundle, r->bundle_len},
        {prel, rj->data, rj->len},
        {r->p->audit_log, log, log_len},
    };
    fwrel_repo_release_opts ro;
    memset(&ro, 0, sizeof(ro));
    ro.files = files;
    ro.nfiles = 3;
    ro.commit_message = commit_msg;
    ro.tag_name = r->res->tag;
    ro.tag_message = msg;
    ro.who.name = o->who != NULL && o->who[0] ? o->who : "fwrel";
    ro.who.email = o->email != NULL && o->email[0] ? o->email : "release@fwrel.invalid";
    ro.who.time = o->time;
    ro.gpg_home = o->gnupg_home;
    ro.signer_fpr = r->signer;
    ro.pass = fwrel_run_pgp_pass(r, r->signer);
    if ((error = fwrel_repo_release(r->repo, &ro, r->res->commit, NULL)) != 0)
        goto done;
    r->res->recorded = 1;
    fwrel_report_add(r->report, "repo", FWREL_PASS, "tag %s on commit %.12s, signed by %s",
                     r->res->tag, r->res->commit, r->signer);
    error = 0;
done:
    free(msg);
    free(commit_msg);
    free(log);
    return error;
}

/* The --output file is written now and published only after the repository took the release. */
int fwrel_run_output_prepare(struct run *r)
{
    int error;
    if (r->o->output == NULL)
        return 0;
    if ((error = fwrel_out_open(&r->out, r->o->output, r->o->out_flags, 0644)) != 0)
        return error;
    if ((error = fwrel_out_write(r->out, r->bundle, r->bundle_len)) != 0) {
        fwrel_out_abort(r->out);
        r->out = NULL;
    }
    return error;
}

int fwrel_run_output_commit(struct run *r)
{
    fwrel_out *out = r->out;
    r->out = NULL; /* committed or aborted by the call */
    return fwrel_out_commit(out);
}

/* Checks that need no work: can this run end in a recorded release or a written output? */
int fwrel_run_preflight(struct run *r)
{
    const fwrel_pipeline_opts *o = r->o;
    int error;
    if (o->napprovers > FWREL_PIPELINE_MAX_APPROVERS)
        return fwrel_error_set(FWREL_EUSAGE, "at most %d approvers at once",
                               FWREL_PIPELINE_MAX_APPROVERS);
    /* Each approver and the tag signer as the fingerprint of a pinned key, once, before any key
     * is opened: a name stands for exactly one pinned key (approvals.h). */
    for (size_t i = 0; i < o->napprovers; i++)
        if ((error = fwrel_approvals_require_pinned(r->approvers[r->napprovers++], &r->rule,
                                                    o->gnupg_home, o->approvers[i])) != 0)
            return error;
    if (o->tag_signer != NULL && (error = fwrel_approvals_require_tag_signer(
                                      r->tag_signer, &r->rule, o->gnupg_home, o->tag_signer)) != 0)
        return error;
    if (!r->recording && o->napprovers < r->ch->approvals_required && o->output == NULL)
        return fwrel_error_set(FWREL_EUSAGE,
                               "the %s channel needs %u approvals and %zu approver%s given: "
                               "give --output to write the bundle for approval",
                               r->chname, r->ch->approvals_required, o->napprovers,
                               o->napprovers == 1 ? " is" : "s are");
    if (!r->recording && o->napprovers >= r->ch->approvals_required && o->napprovers == 0 &&
        o->tag_signer == NULL)
        return fwrel_error_set(FWREL_EUSAGE, "no one to sign the tag: give --tag-signer FPR");
    /* The secure-fota export's manifest is signed by the channel's RSA-3072 manifest signer and
     * encrypted to the policy's RSA-4096 recipient (docs/exports.md). */
    for (size_t i = 0; i < r->p->nexports; i++)
        if (strcmp(r->p->exports[i], "secure-fota") == 0)
            r->secure_fota = 1;
    if (r->secure_fota) {
        size_t s = SIZE_MAX, c = SIZE_MAX;
        for (size_t i = r->ch->nsigners; i-- > 0;)
            if (r->p->keys[r->ch->signers[i]].alg == FWREL_ALG_RSA3072)
                s = r->ch->signers[i];
        for (size_t i = r->p->nrecipients; i-- > 0;)
            if (r->p->keys[r->p->recipients[i]].alg == FWREL_ALG_RSA4096)
                c = r->p->recipients[i];
        if (s == SIZE_MAX || c == SIZE_MAX)
            return fwrel_error_set(FWREL_EUSAGE,
                                   "the secure-fota export needs an RSA-3072 manifest signer in "
                                   "the %s channel and an RSA-4096 manifest recipient",
                                   r->chname);
        r->sf_sign = s;
        r->sf_recip = c;
    }
    /* The exports, their settings and the keys they sign with (docs/exports.md section 0). */
    if (!r->recording && (error = fwrel_run_ready_exports(r)) != 0)
        return error;
    /* The manifest is valid from the release time for the channel's validity: a release time
     * (SOURCE_DATE_EPOCH) so old that it is expired now, or later than a device's clock skew
     * allows (docs/manifest.md section 4: created <= now + 5 min), would be refused on arrival. */
    int64_t now = (int64_t)time(NULL);
    if (!r->recording && o->time + (int64_t)r->ch->validity <= now) {
        char t[21], e[21];
        fwrel_rfc3339(t, o->time);
        fwrel_rfc3339(e, o->time + (int64_t)r->ch->validity);
        return fwrel_error_set(FWREL_EUSAGE,
                               "the release time %s (SOURCE_DATE_EPOCH) plus the %s channel's "
                               "validity of %llu h ends at %s, in the past: the manifest would be "
                               "expired on arrival",
                               t, r->chname, (unsigned long long)(r->ch->validity / 3600), e);
    }
    if (!r->recording && o->time > now + 300) {
        char t[21];
        fwrel_rfc3339(t, o->time);
        return fwrel_error_set(FWREL_EUSAGE,
                               "the release time %s (SOURCE_DATE_EPOCH) is in the future: devices "
                               "would refuse the manifest as not yet valid",
                               t);
    }
    if (o->output != NULL && (error = fwrel_io_check_new(o->output, o->out_flags)) != 0)
        return error;
    /* No symbolic link on the way to the log (checked again, and made, under the lock). */
    return fwrel_policy_audit_path(r->audit_path, sizeof(r->audit_path), r->p, r->repo_path, 0);
}

int fwrel_pipeline_release(fwrel_pipeline_result *res, fwrel_report *report,
                           const fwrel_pipeline_opts *o)
{
    FWREL_ASSERT_ARG(res != NULL && o != NULL && o->policy != NULL && o->keystore != NULL &&
                     o->image != NULL);
    struct run r;
    const char *failed = "setup";
    int error;

    if ((error = fwrel_run_init(&r, res, report, o)) != 0)
        return error;
    STEP("policy", fwrel_run_policy(&r));
    STEP("policy", fwrel_run_preflight(&r));
    STEP("image", step_image(&r));
    STEP("preflight", fwrel_run_ready(&r));
    STEP("lock", fwrel_run_lock(&r));
    STEP("history", fwrel_run_history(&r));
    STEP("keys", step_keys(&r));
    STEP("keys", fwrel_run_unlock(&r));
    STEP("secureboot", fwrel_run_sign(&r));
    STEP("encrypt", fwrel_run_encrypt(&r));
    STEP("manifest", fwrel_run_manifest(&r));
    STEP("exports", fwrel_run_exports(&r));
    STEP("record", step_record(&r));
    STEP("approve", step_approve(&r));
    STEP("bundle", step_bundle(&r));
    STEP("output", fwrel_run_output_prepare(&r));
    STEP("audit", fwrel_run_audit(&r));
    if (r.napprovals >= r.ch->approvals_required) {
        STEP("repo", fwrel_run_repo(&r));
    } else {
        fwrel_report_add(report, "repo", FWREL_SKIP,
                         "%zu of %u approvals: not recorded; approve the bundle, then record it",
                         r.napprovals, r.ch->approvals_required);
    }
    if (r.out != NULL)
        STEP("output", fwrel_run_output_commit(&r));
    error = 0;
done:
    fwrel_run_finish(&r, error, failed);
    return error;
}
