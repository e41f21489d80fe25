/*
 * run.h - a release run of the pipeline (pipeline.h), shared by its files: run.c (what the steps
 * share: members, digests, audit entries, the lock, a run's setup and end), pipeline.c (the run:
 * policy, keys, image, record, bundle, audit and repository steps),
 * pipeline_make.c (signed image, encryption, manifest, exports), pipeline_history.c (the history
 * rules before a release, and the repair of the history) and pipeline_record.c (approvals gathered
 * later, recording an approved bundle). Internal to libfwrel.
 */
#ifndef FWREL_RUN_H
#define FWREL_RUN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fwrel/approvals.h"
#include "fwrel/espimg.h"
#include "fwrel/history.h"
#include "fwrel/hsm.h"
#include "fwrel/io.h"
#include "fwrel/keystore.h"
#include "fwrel/manifest.h"
#include "fwrel/pipeline.h"
#include "fwrel/policy.h"
#include "fwrel/release.h"
#include "fwrel/repo.h"

#define MAX_MEMBERS 80

struct member {
    char name[300];
    uint8_t *data;
    size_t len;
};

struct run {
    const fwrel_pipeline_opts *o;
    fwrel_pipeline_result *res;
    fwrel_report *report;
    fwrel_policy *p;
    const fwrel_policy_channel *ch;
    const char *chname;
    fwrel_keystore *ks;
    const fwrel_keystore_entry *ent[FWREL_POLICY_MAX_KEYS];
    char *pass;
    size_t pass_len;
    fwrel_repo *repo;
    fwrel_history *history; /* the verified history the history step read; the exports list it */
    char repo_path[4096];
    char audit_path[4200];
    /* The signed image and the encrypted one: unnamed scratch files (fwrel_out_open_unnamed()) in
     * TMPDIR, so that a kill or a full disk at any moment leaves no plaintext behind. */
    const char *tmpdir;
    fwrel_src signed_src, enc_src;
    fwrel_src *served; /* what the bundle serves: enc_src, or signed_src when not encrypted */
    fwrel_espimg img;
    fwrel_release *rec;
    struct member m[MAX_MEMBERS];
    size_t nm;
    uint8_t *bundle;
    size_t bundle_len;
    int locked;
    int audit_ok;  /* the log's path was checked under the lock: failures may be logged */
    int recording; /* fwrel_pipeline_record(): the record comes from a bundle */
    char *sums;    /* SHA256SUMS */
    size_t sums_len;
    size_t napprovals;
    char signer[41];           /* who signs the tag: an approver the policy pins */
    fwrel_approvals_rule rule; /* the channel's approval rule (approvals.h) */
    char history_signer[41];   /* the history's trust anchor when the policy pins none */
    fwrel_out *out;            /* the --output file, published after the repository */
    int secure_fota;           /* the policy exports secure-fota: its 1024-byte manifest is made */
    size_t sf_sign, sf_recip;  /* its keys: an RSA-3072 signer, an RSA-4096 recipient */
    uint8_t sfm[FWREL_SECURE_FOTA_LEN];
    char templates[4096];                      /* the export template root (preflight.c) */
    fwrel_hsm_key *hsm[FWREL_POLICY_MAX_KEYS]; /* HSM keys, logged in by fwrel_run_unlock() */
    /* The approvers and the tag signer given, as fingerprints: resolved once by
     * fwrel_run_preflight() (fwrel_approvals_require_pinned(): a fingerprint, an e-mail or a user
     * id of a pinned key); tag_signer "" when none was given. */
    char approvers[FWREL_PIPELINE_MAX_APPROVERS][41];
    size_t napprovers;
    char tag_signer[41];
    /* OpenPGP keys whose unlock the preflight checked (fwrel_run_ready_unlock()), with the
     * passphrase that unlocked each (NULL when none was asked), given again to its signatures
     * (fwrel_run_pgp_pass()); wiped by fwrel_run_finish(). */
    struct run_pgp {
        char fpr[41];
        char *pass;
        size_t len;
        fwrel_pass_src src;
    } pgp[FWREL_PIPELINE_MAX_APPROVERS + 1];
    size_t npgp;
};

/* Run one step behind the test hook (pipeline.h: fail or die at a named step). */
#define STEP(name, call)                                                                           \
    do {                                                                                           \
        if ((error = fwrel_test_hook(name)) != 0 || (error = (call)) != 0) {                       \
            failed = name;                                                                         \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

/* Members of the bundle being made (copied). */
int fwrel_run_add_member(struct run *r, const char *name, const uint8_t *data, size_t len);
const struct member *fwrel_run_find_member(const struct run *r, const char *name);
/* The members as bundle.h wants them, sorted; the array is malloc'd. */
int fwrel_run_member_view(fwrel_bundle_member **out, struct run *r);
/* SHA-256 and size of a whole source. */
int fwrel_run_src_digest(fwrel_release_file *f, fwrel_src *src);
/* One audit log entry (taken over: in, out), and a file as an audit input or output. */
int fwrel_run_log(struct run *r, const char *event, const char *fpr, json_t *in, json_t *out,
                  const char *reason);
json_t *fwrel_run_file_json(const char *name, const char *sha256, uint64_t size);
/* The image given (once read) and the policy, as audit inputs. */
json_t *fwrel_run_inputs(struct run *r);

/* Setup and end of a run (the end releases everything, and logs a failure under the lock);
 * the repository and its lock (run.c). */
int fwrel_run_init(struct run *r, fwrel_pipeline_result *res, fwrel_report *report,
                   const fwrel_pipeline_opts *o);
void fwrel_run_finish(struct run *r, int error, const char *failed);
int fwrel_run_lock(struct run *r);

/* The steps, in the order fwrel_pipeline_release() runs them. */
int fwrel_run_policy(struct run *r);
int fwrel_run_preflight(struct run *r);
int fwrel_run_ready(struct run *r); /* preflight.c: the checks before any key is opened */
int fwrel_run_ready_exports(struct run *r); /* preflight.c: templates and exports, no image */
int fwrel_run_ready_signer(struct run *r, const char *fpr, const char *role);
/* preflight.c: the OpenPGP key fpr unlocks with the passphrase source given, or with none (an
 * unprotected key, or one gpg-agent has unlocked); what unlocked it is kept for
 * fwrel_run_pgp_pass(). */
int fwrel_run_ready_unlock(struct run *r, const char *fpr);
/* The passphrase source a signature by fpr uses: the one that unlocked it, else the options'. */
const fwrel_pass_src *fwrel_run_pgp_pass(const struct run *r, const char *fpr);
int fwrel_run_exports_check(struct run *r);
int fwrel_run_read_history(fwrel_history **h, struct run *r);
int fwrel_run_history(struct run *r);
int fwrel_run_unlock(struct run *r); /* every HSM key logged in before the first signature */
void fwrel_run_close_keys(struct run *r);
int fwrel_run_sign(struct run *r);
int fwrel_run_encrypt(struct run *r);
int fwrel_run_manifest(struct run *r);
int fwrel_run_exports(struct run *r);
int fwrel_run_output_prepare(struct run *r);
int fwrel_run_audit(struct run *r);
int fwrel_run_repo(struct run *r);
int fwrel_run_output_commit(struct run *r);

#endif
