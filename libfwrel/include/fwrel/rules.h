/*
 * rules.h - the release rulebook (docs/rules.md): the rules every release keeps, asked by the
 * pipeline before a release (fwrel-bundle), and by CI mode (fwrel-verify --bundle) and the
 * auditor (fwrel-verify --repo) after. Each rule is written once:
 *
 *   - counter, secure_version and version order: history.h (fwrel_history_rule_*), applied here
 *     together under the policy in force (fwrel_rules_history());
 *   - which release tags the history believes (its trust anchors): fwrel_rules_history_opts();
 *   - approvers, threshold and tag signer: approvals.h (fwrel_approvals_*);
 *   - the policy in force's anti-rollback: fwrel_rules_monotonic();
 *   - the policy in force over a release (its product, one of its channels, that channel's
 *     approval rule): fwrel_rules_policy_in_force();
 *   - the release tag's name under the policy's template: fwrel_rules_tag_name() (the pipeline
 *     names its tag), fwrel_rules_tag_check() and fwrel_rules_tag_parse() (the auditor);
 *   - a key's validity at release time (created, retired, revoked and why):
 *     fwrel_rules_key_valid(); every key of a release at once: fwrel_rules_keys_in_force().
 */
#ifndef FWREL_RULES_H
#define FWREL_RULES_H

#include <stddef.h>

#include "fwrel/approvals.h"
#include "fwrel/error.h"
#include "fwrel/history.h"
#include "fwrel/keystore.h"
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

/**
 * The policy in force over a release: the release is of the policy's product and of one of its
 * channels, and that channel's approval rule (fwrel_approvals_rule_policy()) is the one its
 * approvals meet. The pipeline asks before a release (its product is the policy's: product
 * NULL), CI mode and the auditor after, of the release's record or tag.
 *
 * @param rule     receives the channel's approval rule (without the channel: one nobody meets)
 * @param p        the policy in force
 * @param product  the release's product, or NULL (the policy's own)
 * @param channel  the release's channel
 * @return 0; FWREL_EVERIFY "the policy has no channel 'C'" and/or "the policy is for product P,
 *         not Q" (both, "; "-joined, when both hold)
 */
int fwrel_rules_policy_in_force(fwrel_approvals_rule *rule, const fwrel_policy *p,
                                const char *product, const char *channel) FWREL_WUR;

/**
 * The release tag's name: the template (the policy's `release.tag`, docs/repo.md) with
 * {product}, {channel} and {version} replaced.
 * @return 0; FWREL_EFORMAT "tag name too long" (255 bytes at most)
 */
int fwrel_rules_tag_name(char out[256], const char *tmpl, const char *product, const char *channel,
                         const char *version) FWREL_WUR;

/** What a tag name says under a template (fwrel_rules_tag_parse()). */
typedef struct fwrel_rules_tag {
    char product[65], channel[17], version[33];
} fwrel_rules_tag;

/**
 * Read a tag name (untrusted) under a template: {product} a policy name (exactly `product` when
 * not NULL), {channel} dev, beta or prod, {version} any text without '/'.
 * @return 1 when it matches (what it says in o), else 0
 */
int fwrel_rules_tag_parse(fwrel_rules_tag *o, const char *tmpl, const char *name,
                          const char *product);

/**
 * Is tag the name the template gives this product, channel and version (a release's signed
 * message)? The auditor's tag.name.
 * @return 0; FWREL_EVERIFY "the tag name is not of the form T", "the tag name says product P,
 *         the message Q" (and channel, version; "; "-joined), "the message's release is named
 *         N under T, not TAG"
 */
int fwrel_rules_tag_check(const char *tmpl, const char *tag, const char *product,
                          const char *channel, const char *version) FWREL_WUR;

/** A key's standing at a release's time (fwrel_rules_key_valid()). */
enum fwrel_rules_key_state {
    FWREL_RULES_KEY_VALID = 0,  /**< made before the release, neither retired nor revoked */
    FWREL_RULES_KEY_VALID_THEN, /**< retired, superseded or compromised only after the release:
                                     valid at release time (a note, not a failure) */
    FWREL_RULES_KEY_INVALID,    /**< made after the release; retired or superseded before it;
                                     compromised since a time on or before it; revoked with no
                                     reason recorded */
};

/** A key's verdict. */
typedef struct fwrel_rules_key_verdict {
    int state;                     /**< enum fwrel_rules_key_state */
    char why[FWREL_ERROR_MSG_MAX]; /**< "NAME epoch E (id X...) STATE", "" when VALID */
} fwrel_rules_key_verdict;

/**
 * Whether a key was valid when a release was made (docs/rules.md "Keys at release time"): the one
 * key rule, which the pipeline applies at the moment it signs and the auditor at the time each
 * release was logged. Times are RFC 3339 UTC ("YYYY-MM-DDTHH:MM:SSZ"), compared to the second:
 * created after `when` is invalid; retired or superseded at S is invalid when S is before `when`
 * (a release logged in the second of its key's supersession was signed before it: the log entry
 * is written after the signatures); compromised since S is invalid when S is not after `when`;
 * a revocation with no reason recorded (an older index) is read as compromised since the key was
 * made, so every release it made is invalid.
 *
 * @param v     the verdict
 * @param e     the keystore's record of the key
 * @param when  the release time: authenticated (the pipeline's clock when it signs; for the
 *              auditor, the time of the release's entry in the audit log its signed tag commits)
 * @return 0; FWREL_EFORMAT when `when` is not RFC 3339 UTC
 */
int fwrel_rules_key_valid(fwrel_rules_key_verdict *v, const fwrel_keystore_entry *e,
                          const char *when) FWREL_WUR;

/**
 * Every key a policy names, as the keystore holds it (fwrel_keystore_resolve()), each valid at
 * `when` (fwrel_rules_key_valid(); a note-only verdict is accepted): the keys a release is made
 * with.
 *
 * @param entries  receives p->nkeys pointers, in the order of p->keys
 * @return 0; the errors of fwrel_keystore_resolve(); FWREL_EKEY "key NAME epoch E (id X...)
 *         STATE" for the first key not valid
 */
int fwrel_rules_keys_in_force(const fwrel_keystore_entry **entries, const fwrel_keystore *ks,
                              const fwrel_policy *p, const char *when) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
