/*
 * audit.h - the hash-chained audit log (docs/audit.md).
 *
 * The log is a file of JSON lines, one entry per line, each canonical JSON
 * (keys sorted, compact) with a "seq" counting from 1 and a "prev" holding
 * the SHA-256 (lowercase hex) of the previous line's bytes without its newline
 * (64 zeros for the first entry). Appends are serialised with an exclusive
 * flock, written all or nothing and fsync'd. A torn last line left by a
 * crash is cut away by the next append, which first records a "recovered"
 * entry naming the torn bytes' hash and size, so the chain stays valid and the
 * loss stays visible.
 */
#ifndef FWREL_AUDIT_H
#define FWREL_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fwrel/error.h"
#include "fwrel/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest line of the log in bytes, newline excluded. */
#define FWREL_AUDIT_LINE_MAX (64u * 1024u)
/** Most entries a log may hold. */
#define FWREL_AUDIT_ENTRIES_MAX 10000000u
/** Length of a hex SHA-256 head, NUL excluded. */
#define FWREL_AUDIT_HEAD_LEN 64

/**
 * Append one entry to the log at path, creating the file (mode 0640) if absent.
 *
 * @param path      the log file
 * @param entry     JSON text of an object with the caller's fields: "event"
 *                  (keygen|sign|encrypt|bundle|approve|release), "who"
 *                  {"user", optional "fingerprint" (40 upper-case hex, as GnuPG prints it)},
 * "inputs" and "outputs" (arrays of {"name","sha256","size"}), "result"
 *                  ("ok"|"fail") and, with "fail", "reason". It must not hold
 *                  "seq", "prev" or "time": the library adds them (time is the
 *                  current time as RFC 3339 UTC). Not taken over.
 * @param len       length of entry in bytes
 * @param head      if not NULL, receives the hex SHA-256 of the written line
 *                  (NUL-terminated, FWREL_AUDIT_HEAD_LEN + 1 bytes)
 * @return 0; FWREL_EUSAGE if the entry does not follow the schema;
 *         FWREL_EFORMAT if the log's last complete line is not a valid entry,
 *         a torn tail is longer than a line, or the log is full;
 *         FWREL_EIO on a system error, "writing the log: No space left on
 *         device" for a full disk: the entry is written whole and fsync'd, or
 *         the log is cut back to its size before (only a crash mid-write can
 *         leave a torn line, which the next append recovers).
 */
int fwrel_audit_append(const char *path, const char *entry, size_t len, char *head) FWREL_WUR;

/** A file an audit entry names: "inputs" and "outputs" are arrays of these. */
typedef struct fwrel_audit_file {
    const char *name; /**< the file's name (not empty), as the entry shows it */
    char sha256[65];  /**< its SHA-256, 64 lower-case hex */
    uint64_t size;    /**< its size in bytes */
} fwrel_audit_file;

/** One entry, as its writer gives it (the log adds "seq", "prev" and "time"). */
typedef struct fwrel_audit_entry {
    const char *event;              /**< keygen|sign|encrypt|bundle|approve|release */
    const char *user;               /**< who.user; NULL or "" gives "fwrel" */
    const char *fingerprint;        /**< who.fingerprint (40 upper-case hex), or NULL / "" */
    const fwrel_audit_file *inputs; /**< ninputs files (NULL when 0) */
    size_t ninputs;
    const fwrel_audit_file *outputs; /**< noutputs files (NULL when 0) */
    size_t noutputs;
    const char *reason; /**< NULL: result "ok"; else result "fail" with it */
} fwrel_audit_entry;

/**
 * Fill f for a file given by its path: its name is the path's last component,
 * its size the file's (0 when it cannot be stat'ed), its SHA-256 the one given.
 */
void fwrel_audit_file_of(fwrel_audit_file *f, const char *path, const uint8_t sha256[32]);

/**
 * Build the JSON text of an entry, as fwrel_audit_append() takes it: the one
 * place the entry's fields are written (the pipeline's release entries and
 * keygen's key entries), canonical (keys sorted, compact).
 *
 * @param text  receives the malloc'd, NUL-terminated text; free() it
 * @param len   optional: receives its length
 * @return 0; FWREL_EIO "out of memory"
 */
int fwrel_audit_entry_text(char **text, size_t *len, const fwrel_audit_entry *e) FWREL_WUR;

/**
 * fwrel_audit_entry_text(), then fwrel_audit_append() of it to the log at path.
 * @param head  as fwrel_audit_append()
 * @return as fwrel_audit_entry_text() and fwrel_audit_append()
 */
int fwrel_audit_record(const char *path, const fwrel_audit_entry *e, char *head) FWREL_WUR;

/**
 * Verify a whole log at path, streaming it line by line (memory does not grow
 * with the log). A shared flock is held while reading.
 *
 * @param path            the log file
 * @param expected_head   if not NULL, the head (hex SHA-256 of the last line)
 *                        recorded elsewhere, e.g. in a signed tag; the
 *                        log's head must equal it exactly (64 lowercase hex)
 * @param expected_count  if not 0, the log must hold at least this many entries
 * @param count           if not NULL, receives the number of entries
 * @param head            if not NULL, receives the head as NUL-terminated hex
 *                        (FWREL_AUDIT_HEAD_LEN + 1 bytes; 64 zeros for an empty log)
 * @return 0 if valid; FWREL_EVERIFY naming the line for a broken chain (an
 *         edited, removed, duplicated or reordered line, a seq out of order,
 *         a torn last line), or for a head or count other than expected;
 *         FWREL_EFORMAT naming the line for a line that is too long, not
 *         canonical JSON or not an entry of the schema; FWREL_EIO if the file
 *         cannot be read.
 */
int fwrel_audit_verify(const char *path, const char *expected_head, uint64_t expected_count,
                       uint64_t *count, char *head) FWREL_WUR;

/**
 * Like fwrel_audit_verify() on an open stream read from its current position
 * to its end (no lock taken). The stream is not closed.
 *
 * @param f  the stream; the other parameters and the return codes are those of
 *           fwrel_audit_verify()
 */
int fwrel_audit_verify_stream(FILE *f, const char *expected_head, uint64_t expected_count,
                              uint64_t *count, char *head) FWREL_WUR;

/** Summary of one audit log (fwrel_audit_summarise(), fwrel_audit_load()). */
typedef struct fwrel_audit_log_summary {
    char path[128];                  /**< relative to the repository */
    int valid;                       /**< 1 when its chain verifies */
    char error[FWREL_ERROR_MSG_MAX]; /**< why not ("" when valid) */
    uint64_t entries;                /**< complete lines */
    char head[65];                   /**< hex SHA-256 of the last line (64 zeros when empty) */
    uint64_t ok, fail;               /**< entries with result "ok" / "fail" */
    uint64_t releases;               /**< entries with event "bundle" and result "ok" */
    char first_time[32];             /**< "time" of the first entry, "" if none */
    char last_time[32];              /**< "time" of the last entry, "" if none */
    uint64_t untagged;               /**< "bundle" entries naming a tag the repository lacks
                                          (awaiting approvals, or a release removed) */
    char first_untagged[256];        /**< the first such tag name ("" if none) */
} fwrel_audit_log_summary;

/**
 * Summarise a log from its bytes: whether its chain verifies (fwrel_audit_verify_stream()) and if
 * not why, its complete lines and head, the entries with result "ok" and "fail", the "bundle"
 * entries with result "ok" (releases), the first and last entry's "time", and the "bundle"
 * entries whose tag (the output named "<tag>/bundle.fwb") is not among tags: bundles awaiting
 * approvals, or releases removed.
 *
 * @param sum  filled in, but for sum->path (left as it is)
 * @param data the log's bytes (untrusted); a torn last line is not an entry
 * @param len  their length
 * @param tags the repository's tag names, sorted by strcmp(); NULL when ntags is 0 (then no
 *             "bundle" entry counts as untagged)
 * @return 0 (a broken chain is recorded in sum->valid and sum->error, not returned); FWREL_EIO
 */
int fwrel_audit_summarise(fwrel_audit_log_summary *sum, const uint8_t *data, size_t len,
                          const char *const *tags, size_t ntags) FWREL_WUR;

/** A log read once, with its line index and summary (fwrel_audit_snapshot_load()). Read-only
 * once loaded: threads may share it. */
typedef struct fwrel_audit_snapshot {
    uint8_t *data;      /**< the log's bytes; NULL when it was not read (sum.error says why) */
    size_t len;         /**< their length */
    size_t nlines;      /**< complete lines (a torn tail is not a line) */
    size_t *end;        /**< offset just past line i's newline */
    uint8_t (*sha)[32]; /**< SHA-256 of line i without its newline */
    fwrel_audit_log_summary sum; /**< its summary (fwrel_audit_summarise()) */
} fwrel_audit_snapshot;

/**
 * Read the log at file under a shared flock, as it is at that moment, index its lines and
 * summarise it (fwrel_audit_summarise()). The file is opened without following a symlink and
 * without waiting on a FIFO: what is not a regular file of at most max bytes is not read.
 *
 * @param s    filled in (zeroed first); free its contents with fwrel_audit_snapshot_clear(). When
 *             the log is not read, s->data is NULL and s->sum.error says why ("cannot open the
 *             live log: <reason>", "the live log is not a regular file", "the live log is too
 *             large")
 * @param file the log to open
 * @param name what the summary (s->sum.path) and the messages call it, e.g. its path in the
 *             repository
 * @param tags, ntags as for fwrel_audit_summarise()
 * @param max  the largest log read (bytes)
 * @return 0 (also when the log is not read); FWREL_EIO "audit log NAME: <reason>" for a read,
 *         lock or stat failure, or out of memory
 */
int fwrel_audit_snapshot_load(fwrel_audit_snapshot *s, const char *file, const char *name,
                              const char *const *tags, size_t ntags, size_t max) FWREL_WUR;

/** Free what a snapshot holds (not s itself) and zero it. NULL is fine. */
void fwrel_audit_snapshot_clear(fwrel_audit_snapshot *s);

/**
 * The steps audit.copy and audit.live of a release (docs/verify.md "Auditor mode"): copy, the log
 * committed at the release's tag, is a valid chain of exactly entries entries whose head is head;
 * the live log holds that line at that position, copy is its prefix, and the line records the
 * release's bundle (it holds "sha256":"<bundle_sha>").
 *
 * @param report     receives the two steps (PASS or FAIL, with what differs)
 * @param live       the live log, or NULL when it was not read
 * @param name       the log's path (for the steps' text)
 * @param copy       the committed copy's bytes (untrusted), len of them (> 0)
 * @param head       the head the tag names (64 hex), entries its entry count (>= 1)
 * @param bundle_sha the bundle's SHA-256 the tag names (64 hex)
 * @return 0 (a failed check is a step); FWREL_EIO
 */
int fwrel_audit_check_copy(fwrel_report *report, const fwrel_audit_snapshot *live, const char *name,
                           const uint8_t *copy, size_t len, const char *head, uint64_t entries,
                           const char *bundle_sha) FWREL_WUR;

#ifdef __cplusplus
}
#endif

#endif
