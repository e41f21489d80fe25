/*
 * auditor.h - audit a whole release repository (docs/verify.md "Auditor mode"): every
 * release tag, the bundle and record it points to, the audit log, and the history across
 * releases, with every check recorded as a report step per release.
 *
 * Per release (in parallel, one repository handle and one set of gpgme contexts per thread):
 *
 *   tag.signature   the tag verifies as `git verify-tag` checks it (fwrel_repo_tag_verify():
 *                   OpenPGP signature, object ids of the commit and of its whole tree)
 *   tag.message     the tag message has every fwrel line (counter, secure_version, bundle,
 *                   release.json, input, policy, approvals, audit), well formed
 *   tag.name        the tag name (and so its directory in the tree) is the one the tag name
 *                   template (the policy's; without one "{product}/{channel}/v{version}") gives
 *                   the message's product, channel and version
 *   policy          (with a policy) the release is of the policy's product and one of its
 *                   channels; an info line when the release records another policy's hash
 *   approvals       (with a policy) the bundle's approvals meet the policy's rule
 *                   (fwrel_approvals_check(): its pinned approvers, the channel's
 *                   approvals_required)
 *   tag.signer      the tag's signer is an approver the policy pins (without a policy: one the
 *                   release's record pins)
 *   bundle.blob     the bundle at the path the message names hashes to the message's sha256
 *                   and size
 *   ci.<step>       the bundle's CI checks (fwrel_bundle_verify_ci_mem(): sums, record,
 *                   members, approvals m-of-n by the pinned keys, exports), one step each
 *   record.tree     <tag>/release.json in the tree is the bundle's release.json, with the
 *                   message's sha256
 *   record.fields   the message's product, version, channel, counter, secure_version, input,
 *                   policy and approvers are the record's and the bundle's
 *   audit.copy      the audit log committed at the tag is a valid chain whose head and entry
 *                   count are the message's
 *   audit.live      the live log (same path inside the repository) holds that line at that
 *                   position, the committed copy is a prefix of it, and the line records
 *                   this bundle
 *
 * Then, over the history (in the main thread):
 *
 *   repo.branch     the tag's commit is on the release branch, the only release tag there,
 *                   with one parent, and adds only files under <tag>/ besides the audit log
 *   release.dir     <tag>/ in the tagged tree holds exactly bundle.fwb and release.json, both
 *                   plain files (mode 100644: no symlink, no executable, no subdirectory), and
 *                   the audit log is a plain file
 *   history.counter counters of a product are 1..n, no gap, no duplicate, in branch order
 *   history.version versions strictly increase per product and channel (SemVer, by counter)
 *   history.secure_version  secure_version never decreases per product (by counter)
 *   keys            (with a keystore) every key id of the record is in the keystore's index
 *                   and valid at the release's time (fwrel_rules_key_valid(): the time `logged`;
 *                   when unknown, the audit's time): a key made after it, retired or superseded
 *                   before it, compromised since a time on or before it, or revoked with no
 *                   reason recorded fails; a key retired, superseded or compromised only later is
 *                   noted ("valid at release time")
 *
 * Repository-wide steps: repo.tags, repo.branch (untagged commits, merges), audit.log (the
 * live log's chain: edits, removed or reordered lines, a torn last line; a live log that is not a
 * regular file, e.g. a FIFO, is refused without waiting on it), keystore, policy (the policy
 * given and how many releases record another; without one, an info line saying approvals and tag
 * signers were judged only by each release's own record).
 *
 * --product P selects after reading, never by the unverified message alone: a tag is P's when its
 * message, its name under the template, or a path its commit writes (under a directory named as
 * P's releases are) says so; each selected tag is then verified like any other.
 *
 * What no check can see: lines removed from the end of the live log after the last release's
 * line (nothing signed names them); releases removed together with their tags and commits
 * from the end of the branch, when the live log is cut back to match.
 */
#ifndef FWREL_AUDITOR_H
#define FWREL_AUDITOR_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/audit.h"
#include "fwrel/error.h"
#include "fwrel/policy.h"
#include "fwrel/release.h"
#include "fwrel/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Most worker threads. */
#define FWREL_AUDITOR_JOBS_MAX 256
/** Most tags in an audited repository (about 10 KiB of state each). */
#define FWREL_AUDITOR_TAGS_MAX 20000
/** Most shards an audit is split into (fwrel_auditor_shard_of()). */
#define FWREL_AUDITOR_SHARDS_MAX 1024
/** Most distinct audit log paths named by the tags. */
#define FWREL_AUDITOR_LOGS_MAX 8

/** Most keys one release names (sign keys, manifest signers, recipients, image key). */
#define FWREL_AUDITOR_KEYS_MAX (3 + 2 * FWREL_RELEASE_MAX_KEYS + 1)

/** A key a release names, and what the keystore says of it. */
typedef struct fwrel_audit_key {
    const char *role;   /**< "secure-boot", "manifest-sign", "manifest-recipient", "image-key" */
    char id[65];        /**< key id (64 lower-case hex) */
    char name[65];      /**< the keystore's name for it, "" without a keystore or when absent */
    unsigned epoch;     /**< its epoch (0 when unknown) */
    const char *status; /**< "active", "retired", "revoked", "absent", or "" (no keystore) */
} fwrel_audit_key;

/** Options of fwrel_auditor_run(); policy or no_policy is required. */
typedef struct fwrel_auditor_opts {
    const char *gnupg_home; /**< GnuPG home with the signers' and approvers' public keys;
                                 NULL means $GNUPGHOME */
    const char *product;    /**< audit only this product's releases; NULL: every product */
    const char *keystore;   /**< keystore directory for the key checks; NULL: none */
    unsigned jobs;          /**< worker threads, 1..FWREL_AUDITOR_JOBS_MAX; 0: online CPUs */
    const fwrel_policy *policy; /**< the policy in force (borrowed): its approvers, thresholds,
                                     channels and tag template judge every release; NULL only
                                     with no_policy */
    int no_policy;              /**< 1: audit without a policy, each release's own record saying who
                                     approves; the outcome says approvals were not checked against a
                                     policy (fwrel_auditor_policy_checked()) */
    unsigned shard;             /**< with nshards: audit only the releases of shard 1..nshards
                                     (fwrel_auditor_shard_of()); 0 with nshards 0: all */
    unsigned nshards;           /**< 0, or 1..FWREL_AUDITOR_SHARDS_MAX */
    void (*progress)(void *arg, size_t done, size_t total); /**< NULL, or called (serialised,
                                     from a worker thread) after each of the run's releases */
    void *progress_arg;                                     /**< its first argument */
} fwrel_auditor_opts;

/** One audited release. Fields from the tag message or the record are "" / 0 when absent. */
typedef struct fwrel_audit_release {
    char tag[256];               /**< the tag's name (untrusted text: escape it) */
    char commit[41];             /**< the tagged commit, "" when the tag cannot be read */
    int64_t time;                /**< tagger time (0 for a lightweight tag) */
    size_t branch_pos;           /**< 1 for the branch's root commit, ...; 0: not on it */
    char signer[41];             /**< the tag's signer, "" when its signature fails */
    char product[65];            /**< from the tag message's first line */
    char version[33];            /**< idem */
    char channel[17];            /**< idem */
    uint64_t counter;            /**< from the tag message */
    uint32_t secure_version;     /**< from the tag message */
    char approvals[16][41];      /**< approvers the message lists (their approvals) */
    size_t napprovals;           /**< their number */
    unsigned approvals_required; /**< the "of M" of the message */
    char audit_path[128];        /**< the audit log path the message names */
    char audit_head[65];         /**< its head at this release */
    uint64_t audit_entries;      /**< its entry count at this release */
    char logged[21];             /**< the release time: the time of its entry in the audit log
                                      its tag commits (once audit.copy passed), "" unknown */
    int have_record;             /**< 1 when record holds the bundle's release.json */
    fwrel_release record;        /**< the bundle's release.json (keys, pinned approvers) */
    fwrel_audit_key keys[FWREL_AUDITOR_KEYS_MAX]; /**< the record's keys, in the order
                                       sign_keys, manifest_signers, recipients, image_key */
    size_t nkeys;                                 /**< their number */
    int failed;                                   /**< 1 when a step of report failed */
    fwrel_report *report; /**< this release's steps (owned by the auditor) */
} fwrel_audit_release;

/** The outcome of an audit; opaque. */
typedef struct fwrel_auditor fwrel_auditor;

/**
 * Audit the release repository at path.
 *
 * @param out  receives the outcome (also when a check fails); free with fwrel_auditor_free();
 *             NULL on any other error
 * @param path the bare release repository
 * @param o    options (NULL: all defaults)
 * @return 0 when every step of every release and of the repository passes;
 *         FWREL_EVERIFY "N of M releases failed; first: TAG: STEP: DETAIL" (or "repository:
 *         STEP: DETAIL" when only a repository step failed); FWREL_EUSAGE (jobs out of range,
 *         no GnuPG home, neither or both of policy and no_policy, "the policy is for product X,
 *         not P"); FWREL_EFORMAT "not a bare git repository"; the errors of fwrel_keystore_open()
 * for the keystore; FWREL_EIO
 */
int fwrel_auditor_run(fwrel_auditor **out, const char *path, const fwrel_auditor_opts *o) FWREL_WUR;

/** Free an outcome. NULL is fine. */
void fwrel_auditor_free(fwrel_auditor *a);

/** Number of audited releases. */
size_t fwrel_auditor_count(const fwrel_auditor *a);

/**
 * Release i (0 <= i < fwrel_auditor_count()), in history order: branch order, then tags off
 * the branch by tagger time. Borrowed: valid until fwrel_auditor_free().
 */
const fwrel_audit_release *fwrel_auditor_release(const fwrel_auditor *a, size_t i);

/** The repository-wide steps (borrowed). */
const fwrel_report *fwrel_auditor_report(const fwrel_auditor *a);

/** Number of live audit logs summarised. */
size_t fwrel_auditor_nlogs(const fwrel_auditor *a);

/** Log i's summary (borrowed), NULL if out of range. */
const fwrel_audit_log_summary *fwrel_auditor_log(const fwrel_auditor *a, size_t i);

/** Worker threads used. */
unsigned fwrel_auditor_jobs(const fwrel_auditor *a);

/**
 * Whether approvals and tag signers were judged against a policy: 1 with opts->policy, 0 with
 * no_policy (then a passing audit must not be reported as verified without saying so).
 */
int fwrel_auditor_policy_checked(const fwrel_auditor *a);

/** Number of failed releases (of the shard's, in a sharded run). */
size_t fwrel_auditor_failed(const fwrel_auditor *a);

/**
 * The shard a release belongs to when an audit is split into nshards (1..FWREL_AUDITOR_SHARDS_MAX,
 * docs/verify.md "Sharding"): 1 + (the first 8 bytes of SHA-256(tag name), big-endian) mod
 * nshards. It depends on the tag's name only, so a release stays in its shard as the history
 * grows, and every release falls in exactly one shard.
 */
unsigned fwrel_auditor_shard_of(const char *tag, unsigned nshards);

/**
 * A sharded run (opts shard, nshards): every release of the history is read, the repository-wide
 * steps and each release's branch and history steps judge the whole history, but only the
 * shard's releases get the per-release steps and are reported: fwrel_auditor_count(),
 * fwrel_auditor_release() and fwrel_auditor_failed() count the shard's; these give all.
 */
size_t fwrel_auditor_total(const fwrel_auditor *a);

/** Tag of release i of the whole history (0 <= i < fwrel_auditor_total()), in history order. */
const char *fwrel_auditor_tag(const fwrel_auditor *a, size_t i);

/** The run's shard and number of shards (0 and 0 when not sharded). */
void fwrel_auditor_shard(const fwrel_auditor *a, unsigned *shard, unsigned *nshards);

/**
 * The repository's state the audit read, 64 hex: SHA-256 over every tag (name, target, raw
 * object) and the release branch's tip. Shards of one audit have the same state.
 */
const char *fwrel_auditor_state(const fwrel_auditor *a);

/**
 * Set the audit's verdict as fwrel_auditor_run() returns it (one wording for a run and a merge
 * of shard reports): FWREL_EVERIFY "FAILED of N releases failed; first: TAG: STEP: DETAIL" when
 * tag is not NULL, else "repository: RSTEP: RDETAIL" when rstep is not NULL; else 0 (cleared).
 */
int fwrel_auditor_verdict(size_t failed, size_t n, const char *tag, const char *step,
                          const char *detail, const char *rstep, const char *rdetail);

#ifdef __cplusplus
}
#endif
#endif
