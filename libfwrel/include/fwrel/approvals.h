/*
 * approvals.h - the one approval rule (issue 14): which OpenPGP fingerprints count as trusted
 * approvers of a release, how many of them must approve, and whether a bundle's approvals meet
 * that. Used by CI-mode bundle verification (bundle_verify.c) and the auditor (auditor.c); the rule
 * is the policy's (its pinned approvers and the channel's approvals_required) whenever a policy is
 * given, and the record's own only when the caller explicitly has none (docs/verify.md). The
 * pipeline (fwrel-bundle) asks it too: who may approve, who may sign the tag, and whether a
 * bundle's approvals suffice to record it. Part of the rulebook (rules.h, docs/rules.md).
 */
#ifndef FWREL_APPROVALS_H
#define FWREL_APPROVALS_H

#include <stddef.h>

#include "fwrel/bundle.h"
#include "fwrel/error.h"
#include "fwrel/policy.h"
#include "fwrel/release.h"
#include "fwrel/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Most pinned approvers of a rule (a policy's, or a record's). */
#define FWREL_APPROVALS_PINNED_MAX 16

/** Who may approve, and how many must. */
typedef struct fwrel_approvals_rule {
    char pinned[FWREL_APPROVALS_PINNED_MAX][41]; /**< primary fingerprints, 40 hex */
    size_t npinned;                              /**< their number (0: nobody may approve) */
    unsigned required;                           /**< distinct pinned approvals needed */
    int allow_none;     /**< 1 when the policy explicitly allows a release without approvals
                             (the channel's allow_no_approvals), so any tag signer is accepted
                             when it pins nobody */
    const char *source; /**< "the policy" or "the record", for messages */
} fwrel_approvals_rule;

/**
 * The rule a policy sets for a channel: its pinned approvers and that channel's
 * approvals_required.
 * @return 0; FWREL_EVERIFY "the policy has no channel 'NAME'"
 */
int fwrel_approvals_rule_policy(fwrel_approvals_rule *rule, const fwrel_policy *p,
                                const char *channel) FWREL_WUR;

/** The rule a release record states about itself (trusted only without a policy). */
void fwrel_approvals_rule_record(fwrel_approvals_rule *rule, const fwrel_release *rec);

/** Whether fpr (40 hex, either case) is one of the rule's pinned approvers: 1 or 0. */
int fwrel_approvals_pinned(const fwrel_approvals_rule *rule, const char *fpr);

/**
 * Whether fpr may sign a release tag under this rule: a pinned approver, or anyone when the rule
 * pins nobody and explicitly allows no approvals (as the pipeline decides the tag signer).
 */
int fwrel_approvals_tag_signer_ok(const fwrel_approvals_rule *rule, const char *fpr);

/**
 * A fingerprint in GnuPG's upper-case spelling.
 * @return 0; FWREL_EUSAGE "'FPR' is not a 40-hex-digit OpenPGP fingerprint"
 */
int fwrel_approvals_fpr(char out[41], const char *fpr) FWREL_WUR;

/**
 * The fingerprint an approver given on the command line stands for (docs/approvers.md "Name an
 * approver"): a full fingerprint (40 hex, either case) as it is; else an e-mail address
 * (`alice@example.org`, `<alice@example.org>`, without regard to case) or a whole user id that
 * exactly ONE of the rule's pinned keys carries (fwrel_pgp_match_pinned(): the pinned keys are
 * looked up in the GnuPG home by fingerprint, never any other key of it). The one place a name
 * becomes a key, before any key is opened.
 *
 * @param out  receives the fingerprint (upper-case hex)
 * @param home GnuPG home with the pinned keys' public keys (NULL: $GNUPGHOME; not used for a
 *             fingerprint)
 * @return 0; FWREL_EUSAGE "'X' is not a 40-hex-digit OpenPGP fingerprint" (hex that is not a
 *         whole fingerprint), "'NAME' stands for N approvers SOURCE pins: FPR, FPR: give the
 *         fingerprint", a name where the rule pins nobody, no GnuPG home; FWREL_EVERIFY "'NAME' is
 *         none of the approvers SOURCE pins (by e-mail or whole user id): UID, UID"; FWREL_EIO
 */
int fwrel_approvals_resolve(char out[41], const fwrel_approvals_rule *rule, const char *home,
                            const char *who) FWREL_WUR;

/**
 * Require an approver given (fwrel_approvals_resolve(): a fingerprint, an e-mail or a user id)
 * to be one of the rule's pinned approvers, as the pipeline does for each approver given
 * (--approver, -A) before anything is signed.
 * @param out receives the pinned spelling (upper-case hex)
 * @return 0; the errors of fwrel_approvals_resolve(); FWREL_EVERIFY "FPR is not an approver
 *         SOURCE pins" (SOURCE: rule->source)
 */
int fwrel_approvals_require_pinned(char out[41], const fwrel_approvals_rule *rule, const char *home,
                                   const char *who) FWREL_WUR;

/**
 * Require who to be a key that may sign a release tag under the rule
 * (fwrel_approvals_tag_signer_ok()), with the errors of fwrel_approvals_require_pinned(); where
 * the rule pins nobody (and allows no approvals) only a fingerprint is taken.
 * @param out receives it in upper-case hex
 */
int fwrel_approvals_require_tag_signer(char out[41], const fwrel_approvals_rule *rule,
                                       const char *home, const char *who) FWREL_WUR;

/** Outcome of fwrel_approvals_check(). */
typedef struct fwrel_approvals_outcome {
    int ok;                             /**< 1 when every rule holds */
    size_t count;                       /**< distinct pinned approvers with a good signature */
    char detail[FWREL_STEP_DETAIL_MAX]; /**< the problems (joined), or what passed */
} fwrel_approvals_outcome;

/**
 * Judge a bundle's approvals under a rule: each approvals/<FPR>.asc is a good detached signature
 * over SHA256SUMS (pgp.h) by the key FPR, and FPR is pinned; the distinct pinned signers
 * (fwrel_pgp_count_approvers()) reach rule->required. A bad signature, a signature by another
 * key than its name says, or an approval by an unpinned key is a problem even when enough pinned
 * approvals are there.
 *
 * @param out   the verdict and its detail line (filled also when a check fails)
 * @param rule  the rule
 * @param b     the bundle (must have SHA256SUMS, as fwrel_bundle_read() guarantees)
 * @param home  GnuPG home with the approvers' public keys (NULL: $GNUPGHOME)
 * @return 0 (out says whether the rule holds); FWREL_EUSAGE (no GnuPG home), FWREL_EIO
 */
int fwrel_approvals_check(fwrel_approvals_outcome *out, const fwrel_approvals_rule *rule,
                          const fwrel_bundle *b, const char *home) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
