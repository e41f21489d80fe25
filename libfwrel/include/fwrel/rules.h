/*
 * rules.h - the release rulebook (docs/rules.md): the rules every release keeps, asked by the
 * pipeline before a release (fwrel-bundle), and by CI mode (fwrel-verify --bundle) and the
 * auditor (fwrel-verify --repo) after. Each rule is written once:
 *
 *   - counter, secure_version and version order: history.h (fwrel_history_rule_*), applied here
 *     together under the policy in force (fwrel_rules_history());
 *   - which release tags the history believes (its trust anchors): fwrel_rules_history_opts();
 *   - approvers, threshold and tag signer: approvals.h (fwrel_approvals_*);
 *   - the policy in force's anti-rollback: fwrel_rules_monotonic().
 */
#ifndef FWREL_RULES_H
#define FWREL_RULES_H

#include <stddef.h>

#include "fwrel/error.h"
#include "fwrel/history.h"
#include "fwrel/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Whether secure_version must never decrease: the policy in force's `monotonic`; with no policy
 * (fwrel-verify --repo --no-policy) 1, the strict reading.
 */
int fwrel_rules_monotonic(const fwrel_policy *in_force);

/** One history rule's verdict. */
typedef struct fwrel_rules_verdict {
    int error;                     /**< 0, or FWREL_EVERIFY when the rule is broken */
    char why[FWREL_ERROR_MSG_MAX]; /**< the reason ("" when kept) */
} fwrel_rules_verdict;

/** The history rules' verdicts on one release. */
typedef struct fwrel_rules_history_outcome {
    fwrel_rules_verdict counter;        /**< fwrel_history_rule_counter() */
    fwrel_rules_verdict secure_version; /**< fwrel_history_rule_secure_version(), monotonic as
                                             fwrel_rules_monotonic() says */
    fwrel_rules_verdict version;        /**< fwrel_history_rule_version() */
    int monotonic;                      /**< what the secure_version rule held */
} fwrel_rules_history_outcome;

/**
 * Apply every history rule to a release of a product against its releases so far (st), under the
 * policy in force. The pipeline stops at the first broken rule (fwrel_rules_history_first()); the
 * auditor reports each.
 *
 * @param out       the verdicts
 * @param st        the product's releases so far
 * @param it        the release
 * @param in_force  the policy in force, or NULL (no policy: secure_version held monotonic)
 * @return 0 (the verdicts say whether the rules hold)
 */
int fwrel_rules_history(fwrel_rules_history_outcome *out, const fwrel_history_state *st,
                        const fwrel_history_item *it, const fwrel_policy *in_force) FWREL_WUR;

/**
 * The first broken rule of an outcome as the error (counter, then secure_version, then version).
 * @return 0 when all hold; FWREL_EVERIFY with its reason
 */
int fwrel_rules_history_first(const fwrel_rules_history_outcome *out) FWREL_WUR;

/**
 * Which release tags the history believes (fwrel_history_read()): trust anchors come from the
 * policy or the operator, never from the repository or the GnuPG home. A tag counts when it is
 * signed by an approver the policy pins; when the policy pins none (a channel allowing releases
 * without approvals), only by the tag signer the operator names for this run (--tag-signer).
 *
 * @param ho         filled; its pinned list points into p or into own
 * @param own        storage for the tag signer's fingerprint (upper-case)
 * @param p          the policy in force
 * @param tag_signer the tag signer of this run (40 hex, either case), or NULL
 * @param gnupg_home GnuPG home with the public keys (NULL: $GNUPGHOME)
 * @return 0; FWREL_EUSAGE "the policy pins no approver: give --tag-signer FPR ..." when the
 *         policy pins none and no tag signer is given, or the fingerprint is invalid
 */
int fwrel_rules_history_opts(fwrel_history_opts *ho, char own[41], const fwrel_policy *p,
                             const char *tag_signer, const char *gnupg_home) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
