/*
 * repo.h - the release repository: a bare git repository (libgit2) where each
 * release is one commit on refs/heads/main plus an annotated tag signed with
 * OpenPGP exactly as `git tag -s` signs it, so that plain `git verify-tag`
 * accepts it. Layout, locking and crash windows: docs/repo.md.
 *
 * A release writes objects first (blobs, tree, commit, signed tag object:
 * harmless if orphaned), then moves the branch (refusing a concurrent move),
 * then creates the tag ref; if the tag ref cannot be created the branch is
 * moved back. Every release runs under the repository's lock
 * (fwrel_repo_lock()), which also repairs what a killed release can leave.
 *
 * Test-only failure injection: when the environment variable
 * FWREL_TEST_FAIL_AT lists a step (comma-separated: "blobs", "tree", "commit",
 * "sign", "tag-object", "branch", "tag-ref", "rollback"), that step fails with
 * FWREL_EIO "injected failure at STEP"; FWREL_TEST_KILL_AT=STEP sends the
 * process SIGKILL just before the step. Never set them in production.
 */
#ifndef FWREL_REPO_H
#define FWREL_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/key.h"
#include "fwrel/pgp.h"
#include "fwrel/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The release branch. */
#define FWREL_REPO_BRANCH "refs/heads/main"
/** The lock file, inside the repository directory. */
#define FWREL_REPO_LOCK_FILE "fwrel-release.lock"
/** The release journal (docs/repo.md "Crash windows"), inside the repository directory. */
#define FWREL_REPO_JOURNAL_FILE "fwrel-release.journal"
/** Largest file stored in or read from a release (bytes). */
#define FWREL_REPO_FILE_MAX ((size_t)256 << 20)
/** Largest tag or commit message (bytes). */
#define FWREL_REPO_MESSAGE_MAX ((size_t)16 << 10)
/** Largest tag object read for verification (bytes). */
#define FWREL_REPO_TAG_MAX ((size_t)128 << 10)
/** Most files in one release. */
#define FWREL_REPO_FILES_MAX 256

/** An open release repository (opaque). */
typedef struct fwrel_repo fwrel_repo;

/**
 * Open the bare release repository at path, or create it.
 *
 * @param out    receives the repository; free with fwrel_repo_free()
 * @param path   its directory (the git directory itself: bare)
 * @param create 1: create a bare repository (HEAD -> refs/heads/main) when path
 *               does not exist or is an empty directory; an existing
 *               repository is opened as is
 * @return 0; FWREL_EFORMAT "not a bare git repository" (a work tree, or no
 *         repository and create == 0, or a non-empty directory that is not a
 *         repository); FWREL_EIO when it cannot be created or read
 */
int fwrel_repo_open(fwrel_repo **out, const char *path, int create) FWREL_WUR;

/** Release the lock (if held) and close the repository. NULL is fine. */
void fwrel_repo_free(fwrel_repo *r);

/**
 * Take the repository's exclusive lock (flock on FWREL_REPO_LOCK_FILE inside
 * the repository; the holder's pid is written into it). The lock is released
 * by fwrel_repo_unlock(), fwrel_repo_free() or the death of the process.
 * A forked child shares the lock (flock follows the open file description):
 * a child that outlives the release must fwrel_repo_free() its copy or exec.
 * Once held, the repository is checked and repaired (docs/repo.md "Crash
 * windows"): stale git lock files of the branch and tags are removed, and a
 * branch left one untagged commit ahead of its last release tag by a killed
 * release (the release journal names that commit) is moved back
 * (fwrel_repo_repaired() then returns 1). An untagged tip one commit ahead of
 * a tagged one that the journal does not name is a release whose tag was
 * deleted: it is left as it is (the history refuses the next release, history.h).
 *
 * @param r          the repository
 * @param timeout_ms 0: do not wait; otherwise retry for up to this many ms
 * @return 0; FWREL_EIO "another release is running (lock held by pid N)"
 *         (or "... (lock held by another process)" when no pid is readable yet),
 *         or when the lock file cannot be opened; FWREL_EVERIFY when the
 *         branch is in a state no fwrel release leaves (then the lock is released)
 */
int fwrel_repo_lock(fwrel_repo *r, unsigned timeout_ms) FWREL_WUR;

/** Release the lock. Harmless when not held. */
void fwrel_repo_unlock(fwrel_repo *r);

/** 1 if the last fwrel_repo_lock() moved the branch back after a killed release, else 0. */
int fwrel_repo_repaired(const fwrel_repo *r);

/** A file of a release: its path in the tree and its bytes (the caller keeps them alive). */
typedef struct fwrel_repo_file {
    const char *path;    /**< relative, '/'-separated: [A-Za-z0-9._+@-] components, no "." or
                              "..", no leading '.' in any component, at most 1024 bytes */
    const uint8_t *data; /**< contents */
    size_t len;          /**< length (<= FWREL_REPO_FILE_MAX) */
} fwrel_repo_file;

/** Who made a release and when (author, committer and tagger alike). */
typedef struct fwrel_repo_ident {
    const char *name;  /**< no '<', '>' or control characters, not empty */
    const char *email; /**< the same rules */
    int64_t time;      /**< seconds since the epoch (from the caller: reproducible) */
    int offset_min;    /**< UTC offset in minutes (-720..840) */
} fwrel_repo_ident;

/** What fwrel_repo_release() records. */
typedef struct fwrel_repo_release_opts {
    const fwrel_repo_file *files; /**< new or updated files, 1..FWREL_REPO_FILES_MAX, distinct */
    size_t nfiles;                /**< their number */
    const char *commit_message;   /**< printable text; a final newline is added if missing */
    const char *tag_name;         /**< e.g. "prod/stable/v1.2.3" (a valid git ref name) */
    const char *tag_message;      /**< as commit_message; must not contain a PGP armor line */
    fwrel_repo_ident who;         /**< author, committer and tagger */
    const char *gpg_home;         /**< GnuPG home of the signer; NULL means $GNUPGHOME */
    const char *signer_fpr;       /**< signer's primary key fingerprint (40 hex) */
    const fwrel_pass_src *pass;   /**< passphrase source for the key (NULL: none) */
} fwrel_repo_release_opts;

/**
 * Record a release: a commit on FWREL_REPO_BRANCH whose tree is the previous
 * release's tree plus the given files, and the signed annotated tag
 * refs/tags/<tag_name> pointing to it. The lock must be held.
 *
 * @param commit_hex receives the commit id (40 hex + NUL); may be NULL
 * @param tag_hex    receives the tag object id; may be NULL
 * @return 0; FWREL_EUSAGE when the lock is not held or for an invalid
 *         option (path, name, message, identity); FWREL_EVERIFY "tag NAME
 *         already exists" or "the release branch moved during the release";
 *         the signing errors of fwrel_pgp_sign_detached(); FWREL_EIO for
 *         repository failures. On failure the refs are as before the call.
 */
int fwrel_repo_release(fwrel_repo *r, const fwrel_repo_release_opts *o, char commit_hex[41],
                       char tag_hex[41]) FWREL_WUR;

/** A tag of the repository. */
typedef struct fwrel_repo_tag {
    char *name;      /**< without "refs/tags/" */
    int annotated;   /**< 1 for a tag object, 0 for a lightweight tag */
    int64_t time;    /**< tagger time (0 for lightweight tags) */
    char target[41]; /**< the object the tag points to (peeled to the commit) */
} fwrel_repo_tag;

/**
 * List the tags whose names start with prefix, sorted by tagger time, then by name.
 *
 * @param tags   receives an array (free with fwrel_repo_tags_free())
 * @param n      receives its length (0 is not an error)
 * @param prefix e.g. "prod/stable/"; NULL or "" for all
 * @return 0 or FWREL_EIO
 */
int fwrel_repo_tags(fwrel_repo_tag **tags, size_t *n, fwrel_repo *r, const char *prefix) FWREL_WUR;

/** Free a list from fwrel_repo_tags(). NULL is fine. */
void fwrel_repo_tags_free(fwrel_repo_tag *tags, size_t n);

/**
 * The commit a tag points to (peeling annotated tags).
 * @return 0; FWREL_EVERIFY "no tag NAME" or "tag NAME does not point to a commit"; FWREL_EIO
 */
int fwrel_repo_tag_commit(char commit_hex[41], fwrel_repo *r, const char *tag) FWREL_WUR;

/**
 * Whether a path can name a file of a release tree: components of [A-Za-z0-9._+@-], none empty
 * or starting with '.', at most 1024 bytes. The readers refuse others as bad input.
 */
int fwrel_repo_path_valid(const char *path);

/**
 * Read a file of the release tree at a tag. The blob's id is recomputed from
 * its bytes (a rewritten object is refused).
 *
 * @param data receives a malloc'd copy (free()); len its size (<= max)
 * @return 0; FWREL_EVERIFY "no tag NAME", "no file PATH at NAME", "object ID
 *         is corrupt"; FWREL_EFORMAT for a file above max, "invalid path in the repository",
 *         "invalid tag name" (bad input: paths and names come from the repository); FWREL_EIO
 */
int fwrel_repo_read_file(uint8_t **data, size_t *len, fwrel_repo *r, const char *tag,
                         const char *path, size_t max) FWREL_WUR;

/**
 * Read a file of a commit's tree (as fwrel_repo_read_file(), by commit id).
 *
 * @param commit 40 hex digits
 * @return 0; FWREL_EFORMAT for a malformed id or path; FWREL_EVERIFY "no commit ID",
 *         "no file PATH at ID", "object ID is corrupt"; FWREL_EFORMAT above max; FWREL_EIO
 */
int fwrel_repo_commit_read_file(uint8_t **data, size_t *len, fwrel_repo *r, const char *commit,
                                const char *path, size_t max) FWREL_WUR;

/**
 * A commit's raw message (untrusted text).
 * @param msg receives a malloc'd copy (free())
 * @return 0; FWREL_EFORMAT for a malformed id; FWREL_EVERIFY "no commit ID"; FWREL_EFORMAT above
 *         FWREL_REPO_MESSAGE_MAX; FWREL_EIO
 */
int fwrel_repo_commit_message(char **msg, fwrel_repo *r, const char *commit) FWREL_WUR;

/** A commit of the release branch. */
typedef struct fwrel_repo_commit {
    char id[41];       /**< 40 lower-case hex */
    char parent[41];   /**< its first parent, "" for the root */
    unsigned parents;  /**< number of parents */
    char subject[256]; /**< the message's first line, truncated, non-printable bytes as '?'
                            (untrusted: a hint, e.g. "release <tag>") */
} fwrel_repo_commit;

/**
 * The release branch's commits, following first parents from the tip to the root.
 *
 * @param list receives a malloc'd array (free()); NULL and *n 0 when there is no branch
 * @param max  most commits accepted
 * @return 0; FWREL_EFORMAT "the release branch has more than MAX commits";
 *         FWREL_EVERIFY when a commit cannot be read; FWREL_EIO
 */
int fwrel_repo_branch_commits(fwrel_repo_commit **list, size_t *n, fwrel_repo *r,
                              size_t max) FWREL_WUR;

/**
 * Tag an existing commit (a repair: its release tag was deleted; docs/repo.md): the signed
 * annotated tag o->tag_name, made from o->tag_message, o->who, o->gpg_home, o->signer_fpr and
 * o->pass as fwrel_repo_release() makes it (o->files and o->commit_message are ignored). The
 * lock must be held; the caller decides that the commit deserves the tag.
 *
 * @return 0; FWREL_EUSAGE (lock not held, invalid option or commit id); FWREL_EVERIFY "no
 *         commit ID", "tag NAME already exists"; the signing errors; FWREL_EIO
 */
int fwrel_repo_retag(fwrel_repo *r, const char *commit, const fwrel_repo_release_opts *o,
                     char tag_hex[41]) FWREL_WUR;

/**
 * Move the release branch from its tip, commit, back to the tip's parent (deleting the branch
 * when commit is a root): a repair that removes an untagged commit (docs/repo.md). The lock must
 * be held.
 *
 * @return 0; FWREL_EUSAGE; FWREL_EVERIFY "commit ID is not the release branch's tip"; FWREL_EIO
 */
int fwrel_repo_drop_tip(fwrel_repo *r, const char *commit) FWREL_WUR;

/**
 * The raw bytes of an annotated tag object (as `git cat-file tag` prints them),
 * checked against the id the tag ref names.
 *
 * @param raw receives a malloc'd buffer (free()); len its size (<= FWREL_REPO_TAG_MAX)
 * @return 0; FWREL_EVERIFY "no tag NAME", "tag NAME is not annotated", "object
 *         ID is corrupt"; FWREL_EFORMAT for a tag object above the cap; FWREL_EIO
 */
int fwrel_repo_tag_raw(uint8_t **raw, size_t *len, fwrel_repo *r, const char *tag) FWREL_WUR;

/**
 * Split a raw tag object as git does: the signed payload is everything before
 * the last line starting "-----BEGIN PGP SIGNATURE-----", the signature the rest.
 *
 * @param payload_len receives the payload's length (the signature starts there)
 * @return 0; FWREL_EVERIFY "tag is not signed"
 */
int fwrel_repo_tag_split(size_t *payload_len, const uint8_t *raw, size_t len) FWREL_WUR;

/** The header of a signed tag object. */
typedef struct fwrel_repo_tag_info {
    char object[41];    /**< the tagged commit's id, 40 lower-case hex */
    char name[256];     /**< the tag's own name (its "tag" line) */
    int64_t time;       /**< tagger time, seconds since the epoch */
    size_t payload_len; /**< length of the signed bytes; the signature starts there */
} fwrel_repo_tag_info;

/**
 * Parse a raw signed tag object (untrusted bytes, at most FWREL_REPO_TAG_MAX):
 * "object <40 hex>", "type commit", "tag <name>" (1..255 bytes), "tagger <ident>
 * <seconds> <+hhmm>", a blank line, the message, and the signature as
 * fwrel_repo_tag_split() finds it. No other header lines are accepted.
 *
 * @param info filled in on success, zeroed on failure
 * @return 0; FWREL_EVERIFY "tag is not signed", "tag does not point to a
 *         commit"; FWREL_EFORMAT "malformed tag object: ..." or a size above the cap
 */
int fwrel_repo_tag_parse(fwrel_repo_tag_info *info, const uint8_t *raw, size_t len) FWREL_WUR;

/**
 * Verify a release tag: its object bytes match its id; it is an annotated tag
 * of a commit named like its ref; its OpenPGP signature (over the payload, as
 * `git verify-tag` checks it) is good (fwrel_pgp_verify_detached()); and the
 * commit and every tree and blob of its tree are intact (ids recomputed).
 *
 * @param signer     receives the signer (primary key fingerprint)
 * @param commit_hex receives the tagged commit's id; may be NULL
 * @param home       GnuPG home with the signers' public keys; NULL means $GNUPGHOME
 * @return 0; FWREL_EVERIFY for any failed check (message says which);
 *         FWREL_EFORMAT for a malformed tag object; FWREL_EIO
 */
int fwrel_repo_tag_verify(fwrel_pgp_result *signer, char commit_hex[41], fwrel_repo *r,
                          const char *tag, const char *home) FWREL_WUR;

/** A release as the branch audit sees it (fwrel_repo_branch_audit()). */
typedef struct fwrel_repo_branch_release {
    const char *tag;        /**< its tag's name */
    const char *commit;     /**< the tagged commit (40 hex), "" when the tag cannot be read */
    const char *audit_path; /**< the audit log its message names, "" when unknown */
    fwrel_report *report;   /**< receives its "repo.branch" and "release.dir" steps */
    size_t pos;             /**< set: its commit's place on the branch, 1 for the root commit;
                                 0 when not on it */
} fwrel_repo_branch_release;

/**
 * The branch audit (docs/repo.md section 7; the auditor's repo.branch and release.dir steps,
 * docs/verify.md): walk FWREL_REPO_BRANCH by first parents from its tip and judge it against the
 * tags, and each release's commit and tree. Every finding is a report step; the walk goes on after
 * a failed check, so one run names every problem.
 *
 * In report, "repo.branch": PASS "N commits, linear, each one release tag"; or FAIL "K commit(s)
 * of the release branch ha(s|ve) no release tag (ID[, ...])" (any tag of tags counts) and/or
 * "the release branch has M merge commit(s)"; FAIL "commit ID of the release branch cannot be
 * read" (the walk stops there) or "the release branch cannot be read".
 * In each rels[i].report, "repo.branch": the commit is on the branch, no other tag of tags points
 * to it, and compared with its parent it adds files under "<tag>/" and adds or modifies the
 * audit log, nothing else; "release.dir": "<tag>/" in its tree holds exactly bundle.fwb and
 * release.json, both plain files (mode 100644: no symlink, executable, subdirectory or
 * submodule), and the audit log is a plain file (SKIP without a commit).
 *
 * @param report the repository-wide steps
 * @param rels   the releases (nrels of them, in any order); each one's pos is set
 * @param tags   the repository's tags (fwrel_repo_tags()), ntags of them
 * @param max    most commits accepted on the branch
 * @return 0 (checks that fail are steps, not errors); FWREL_EFORMAT "the release branch has more
 *         than MAX commits"; FWREL_EIO
 */
int fwrel_repo_branch_audit(fwrel_report *report, fwrel_repo_branch_release *rels, size_t nrels,
                            fwrel_repo *r, const fwrel_repo_tag *tags, size_t ntags,
                            size_t max) FWREL_WUR;

/**
 * Whether a commit writes (adds, changes or deletes) a path match() accepts, compared with its
 * first parent (a root commit: with the empty tree).
 *
 * @param hit   receives 1 when match(path, arg) returned non-zero for a path the commit writes,
 *              else 0
 * @param match called with each path written (repository-relative) until it accepts one
 * @return 0; FWREL_EVERIFY "the commit cannot be compared with its parent: ..." (malformed id,
 *         no such commit, an unreadable commit or tree)
 */
int fwrel_repo_commit_writes(int *hit, fwrel_repo *r, const char *commit,
                             int (*match)(const char *path, void *arg), void *arg) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
