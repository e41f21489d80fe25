/*
 * pipeline.h - the policy-driven release (fwrel-bundle, docs/bundle.md).
 *
 * policy -> image checks -> preflight (preflight.c) -> lock and history checks -> keys (unlocked,
 * HSM keys logged in) -> secure boot
 * signing -> pre-encryption -> manifest (signed, encrypted) -> exports ->
 * release record, SHA256SUMS, OpenPGP approvals -> bundle -> audit record ->
 * commit and signed tag in the release repository.
 *
 * Everything is made in a private temporary directory and in memory; the
 * release repository and the output file change only at the end, each
 * atomically. A failure after the history checks appends one "fail" record to
 * the audit log (the chain stays valid) and changes nothing else.
 *
 * Test hook: FWREL_TEST_FAIL_AT names steps (comma-separated) that fail with
 * FWREL_EIO "injected failure at STEP"; FWREL_TEST_KILL_AT raises SIGKILL there.
 * Steps: policy image preflight lock history keys secureboot encrypt manifest exports
 * record approve bundle output audit repo (and the release repository's own,
 * repo.h).
 */
#ifndef FWREL_PIPELINE_H
#define FWREL_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/key.h"
#include "fwrel/release.h"
#include "fwrel/report.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FWREL_PIPELINE_MAX_APPROVERS 16

/** What to release, and with which credentials. */
typedef struct fwrel_pipeline_opts {
    const char *policy;        /**< policy file */
    const char *keystore;      /**< keystore directory */
    const char *repo;          /**< release repository; NULL: the policy's, relative to it */
    const char *channel;       /**< "dev", "beta", "prod"; NULL: the policy's only channel */
    const char *image;         /**< the app image to release (not yet signed) */
    const char *output;        /**< also write the bundle here (NULL: only into the repository) */
    unsigned out_flags;        /**< FWREL_OUT_* for output */
    const char *template_root; /**< export templates; NULL: the installed ones */
    const char *gnupg_home;    /**< GnuPG home of the approvers; NULL: $GNUPGHOME */
    /** Who approves now (--record: who signs the tag, the first one): each a fingerprint, or an
     *  e-mail or whole user id of exactly one pinned key (fwrel_approvals_resolve()). */
    const char *approvers[FWREL_PIPELINE_MAX_APPROVERS];
    size_t napprovers;
    const char *tag_signer; /**< who signs the tag, named the same way; NULL: the first approver */
    const fwrel_pass_src *keystore_pass; /**< passphrase of the keystore's keys */
    const fwrel_pass_src *pgp_pass;      /**< passphrase source for GnuPG keys (NULL: agent);
                                              given, the preflight checks each key unlocks */
    const fwrel_pass_src *hsm_pin;       /**< PIN of HSM keys whose URI has no pin-source (NULL:
                                              such a key is refused: "no PIN given") */
    int64_t time;      /**< release time (SOURCE_DATE_EPOCH or now; the caller decides) */
    const char *who;   /**< the operator's name for the audit log and the commit */
    const char *email; /**< the operator's e-mail for the commit */
} fwrel_pipeline_opts;

/** What a release made. */
typedef struct fwrel_pipeline_result {
    fwrel_release record;   /**< the release record */
    char tag[256];          /**< the tag created (or that would be) */
    char bundle_sha256[65]; /**< of the bundle file */
    char commit[41];        /**< the release commit ("" when not recorded) */
    char audit_head[65];    /**< the audit log's head after this release */
    size_t approvals;       /**< approvals in the bundle */
    int recorded;           /**< 1: committed and tagged; 0: approvals missing (output only) */
} fwrel_pipeline_result;

/**
 * Run the release. Each step is recorded in report (pass, or the failing one).
 *
 * @return 0; FWREL_EVERIFY when the policy or the history refuses the release
 *         (chip, revision, size, secure_version, version, an image released
 *         already, an approver the policy does not pin), the reason naming
 *         it; FWREL_EUSAGE for options; FWREL_EFORMAT for a malformed policy
 *         or image; FWREL_EKEY for keys (missing, revoked, wrong passphrase);
 *         FWREL_EIO
 */
int fwrel_pipeline_release(fwrel_pipeline_result *res, fwrel_report *report,
                           const fwrel_pipeline_opts *o) FWREL_WUR;

/**
 * Record a bundle made earlier without enough approvals (fwrel-bundle --record):
 * read it strictly, run the CI checks of its members against its release.json
 * (fwrel_bundle_check_record(): SHA256SUMS, the record's image and manifest are
 * the members, exports), check it was made under this policy for
 * this product and channel, verify every approvals/<FPR>.asc over SHA256SUMS by
 * its pinned key and the channel's threshold, then under the lock re-run the
 * history checks (its counter must still be the next one), append the audit
 * record, commit and tag. o->image is the bundle; o->keystore is not used.
 *
 * @return as fwrel_pipeline_release(); FWREL_EVERIFY for a failed check ("bundle:
 *         rejected at <step>: ..."), too few approvals, a bad approval, another
 *         policy, or a release recorded since
 */
int fwrel_pipeline_record(fwrel_pipeline_result *res, fwrel_report *report,
                          const fwrel_pipeline_opts *o) FWREL_WUR;

/**
 * Repair the history (fwrel-bundle --repair-history, docs/bundle.md "History"): a commit of the
 * release branch that no verified tag names stops every release until it is repaired, one of two
 * ways, under the lock:
 * - drop == 0: the release is genuine and its tag was deleted: sign its tag again (the tag name
 *   and message its commit records, signed by o->tag_signer or the first o->approvers, pinned by
 *   the policy), after checking that it is a release of this policy's product whose counter,
 *   secure_version and version keep the rules against the verified releases before it;
 * - drop == 1: the commit is not a release of yours (made by hand, forged): move the branch back
 *   over it (the branch's tip only).
 * Either is appended to the audit log as a "repair" entry (inputs: the commit's release.json, or
 * its message; outputs: the new tag object); a refused repair as a "repair" failure entry.
 * Uses o->policy, o->repo, o->gnupg_home, o->tag_signer / o->approvers, o->pgp_pass, o->time,
 * o->who and o->email.
 *
 * @param commit the untagged commit (40 hex), as the refusal of the next release names it
 * @return 0 (res->tag, res->commit, res->record and res->audit_head set for a retag);
 *         FWREL_EVERIFY when the commit is not an untagged commit of the branch, or is not a
 *         release that may be tagged again (the message says why), or is not the tip (drop);
 *         FWREL_EUSAGE without a tag signer; the codes of fwrel_pipeline_release()
 */
int fwrel_pipeline_repair(fwrel_pipeline_result *res, fwrel_report *report,
                          const fwrel_pipeline_opts *o, const char *commit, int drop) FWREL_WUR;

/**
 * Shows the approver what they approve (fwrel-bundle --approve), after the checks and before any
 * signature or passphrase: rec is the bundle's release record, whose image (firmware.enc) and
 * manifest are the bundle's members.
 */
typedef void (*fwrel_pipeline_show_fn)(void *arg, const fwrel_release *rec);

/**
 * Add approvals to a bundle file (fwrel-bundle --approve): each approver's detached OpenPGP
 * signature over its SHA256SUMS, as approvals/<FPR>.asc. The bundle is read once, strictly; the
 * CI checks of its members against its release.json run first (fwrel_bundle_check_record():
 * bundle.sums, record.parse, record.members, exports); each approver must be one the record
 * pins, not given twice, not already in the bundle; show is called; then each signs, and the
 * bundle read (not the file again) is written back with the new approvals, atomically.
 *
 * @param have        receives the number of approvals now in the bundle
 * @param need        receives the number the release requires
 * @param report      receives the check steps (NULL allowed)
 * @param bundle      the bundle file
 * @param fprs        the approvers' fingerprints (40 hex, either case)
 * @param nfprs       their count, 1..FWREL_PIPELINE_MAX_APPROVERS
 * @param gnupg_home  GnuPG home with the approvers' secret keys (NULL: $GNUPGHOME)
 * @param pass        GnuPG passphrase source (NULL: none)
 * @param show        called with the record before signing (NULL: not shown)
 * @param arg         passed to show
 * @return 0; FWREL_EVERIFY "rejected at <step>: <reason>" for a failed check, an approver not
 *         pinned or an approval already there; FWREL_EUSAGE for a fingerprint given twice; the
 *         codes of fwrel_bundle_read(), fwrel_pgp_sign_detached() and fwrel_bundle_write();
 *         nothing is written on failure
 */
int fwrel_pipeline_approve(size_t *have, size_t *need, fwrel_report *report, const char *bundle,
                           const char *const *fprs, size_t nfprs, const char *gnupg_home,
                           const fwrel_pass_src *pass, fwrel_pipeline_show_fn show,
                           void *arg) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
