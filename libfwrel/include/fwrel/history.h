/*
 * history.h - the release history of a repository and the rules a release must keep against it
 * (docs/bundle.md "History", docs/repo.md "Crash windows and repair").
 *
 * One module for both sides: fwrel-bundle asks it before a release (pipeline.c), fwrel-verify
 * --repo after (auditor.c), so a rule changed here changes everywhere.
 *
 * The history is what the repository proves, nothing else: a release counts only through an
 * annotated tag whose OpenPGP signature is good, by a key the caller pins (the policy's
 * approvers, or the tag signer given when it pins none: rules.h), whose commit is on the release
 * branch (first parents from its tip) and whose release.json decodes. Every other tag is ignored
 * and listed with the reason (an attacker's unsigned tag with counter 4294967295 or secure_version
 * 16 does not steer the next release). A commit of the branch without such a tag is listed as
 * untagged: a release whose tag was deleted (or a commit made behind fwrel's back); the pipeline
 * refuses to release on top of it until it is repaired (fwrel-bundle --repair-history).
 */
#ifndef FWREL_HISTORY_H
#define FWREL_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/release.h"
#include "fwrel/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Most commits on the release branch, and most tags, that a history holds. */
#define FWREL_HISTORY_MAX 20000

/** A release the repository proves. */
typedef struct fwrel_history_release {
    char tag[256];        /**< the tag's name */
    char commit[41];      /**< its commit */
    size_t pos;           /**< position on the branch, 1 for the root */
    char signer[41];      /**< the tag's signer (primary fingerprint, upper-case) */
    fwrel_release record; /**< its release.json */
} fwrel_history_release;

/** A tag that is not part of the history, and why. */
typedef struct fwrel_history_ignored {
    char tag[256];
    char reason[FWREL_ERROR_MSG_MAX];
} fwrel_history_ignored;

/** A commit of the release branch that no verified tag names. */
typedef struct fwrel_history_untagged {
    char commit[41];
    size_t pos;      /**< position on the branch, 1 for the root */
    char tag[256];   /**< the release its message names ("release <tag>"), or "" */
    int have_record; /**< 1: it adds <tag>/release.json, decoded into record (unverified) */
    fwrel_release record;
} fwrel_history_untagged;

/** The history of a repository. */
typedef struct fwrel_history {
    fwrel_history_release *rel; /**< every verified release (all products), branch order */
    size_t nrel;
    fwrel_history_ignored *ign; /**< ignored tags, by name */
    size_t nign;
    fwrel_history_untagged *untagged; /**< untagged commits, branch order */
    size_t nuntagged;
    char **tags; /**< the name of every tag, verified or not, sorted */
    size_t ntags;
    size_t ncommits; /**< commits on the release branch */
} fwrel_history;

/** Which tags are believed. */
typedef struct fwrel_history_opts {
    const char *gnupg_home;   /**< GnuPG home with the signers' public keys; NULL: $GNUPGHOME */
    const char (*pinned)[41]; /**< fingerprints (upper-case hex) a tag may be signed by */
    size_t npinned;           /**< their number; 0: no tag is believed (the trust anchors
                                   are the caller's: fwrel_rules_history_opts()) */
} fwrel_history_opts;

/**
 * Read the history: the release branch, then every tag (signature, signer, reachability, record).
 * The caller should hold the repository's lock when it will release on top of it.
 *
 * @param out receives the history; free with fwrel_history_free()
 * @return 0; FWREL_EFORMAT for more than FWREL_HISTORY_MAX commits or tags, or a verified tag
 *         whose release.json does not decode (the message names the tag); FWREL_EVERIFY when the
 *         branch cannot be read; FWREL_EIO
 */
int fwrel_history_read(fwrel_history **out, fwrel_repo *r, const fwrel_history_opts *o) FWREL_WUR;

/** Free a history. NULL is fine. */
void fwrel_history_free(fwrel_history *h);

/** 1 when a tag of that name exists (verified or not). */
int fwrel_history_has_tag(const fwrel_history *h, const char *tag);

/* --- the rules ---------------------------------------------------------------------------- */

/** What the rules see of a release. */
typedef struct fwrel_history_item {
    const char *tag;
    const char *product;
    const char *version;
    const char *channel;
    uint64_t counter;
    uint32_t secure_version;
} fwrel_history_item;

/** A product's releases so far, as the rules need them (opaque; built with _add). */
typedef struct fwrel_history_state fwrel_history_state;

/** A new, empty state. @return 0 or FWREL_EIO */
int fwrel_history_state_new(fwrel_history_state **out) FWREL_WUR;

/** Free a state. NULL is fine. */
void fwrel_history_state_free(fwrel_history_state *s);

/**
 * Add a release (of one product) after the rules were applied to it. The item's strings must
 * outlive the state.
 * @return 0 or FWREL_EIO
 */
int fwrel_history_state_add(fwrel_history_state *s, const fwrel_history_item *it) FWREL_WUR;

/** The highest counter so far (0 for none). */
uint64_t fwrel_history_state_counter(const fwrel_history_state *s);

/**
 * Counters: a product's first release has counter 1, each next one the highest so far plus one
 * (never a counter used already, never a gap).
 * @return 0; FWREL_EVERIFY "the product's first counter is N, not 1", "counter N is also TAG's",
 *         "counter N follows M (TAG): a release is missing"
 */
int fwrel_history_rule_counter(const fwrel_history_state *s,
                               const fwrel_history_item *it) FWREL_WUR;

/**
 * secure_version never decreases over a product's releases (all channels), when monotonic: the
 * policy's `monotonic`; the auditor, which has no policy, passes 1.
 * @return 0; FWREL_EVERIFY "secure_version S is below M of TAG, an earlier release (rollback)"
 */
int fwrel_history_rule_secure_version(const fwrel_history_state *s, const fwrel_history_item *it,
                                      int monotonic) FWREL_WUR;

/**
 * Versions strictly increase per channel (SemVer 2.0 precedence).
 * @return 0; FWREL_EVERIFY "version V is not above W of TAG, an earlier CHANNEL release", or
 *         "version 'V' is not SemVer 2.0"
 */
int fwrel_history_rule_version(const fwrel_history_state *s,
                               const fwrel_history_item *it) FWREL_WUR;

/**
 * The rule on untagged release commits: none may be on the branch (a release on top of one would
 * hide it; its counter was given to devices).
 * @return 0; FWREL_EVERIFY "release commit C (TAG, counter N) on the release branch has no
 *         verified tag: repair it first (fwrel-bundle --repair-history C)" for the first one,
 *         or "commit C on the release branch is not a verified release: ..." when it names none
 */
int fwrel_history_rule_untagged(const fwrel_history *h) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
