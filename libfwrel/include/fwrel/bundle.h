/*
 * bundle.h - the release bundle: a reproducible uncompressed tar of a fixed
 * member list, and its strict in-memory reader (docs/bundle.md).
 *
 * Members (names bytewise sorted in the tar):
 *   release.json                   required, <= 1 MiB
 *   firmware.enc                   required, <= 32 MiB
 *   manifest.fwm                   required, <= 1 MiB
 *   SHA256SUMS                     required, <= 1 MiB
 *   exports/<name>/<path>          optional, <= 32 MiB each (path: 1-3 components)
 *   approvals/<FPR40>.asc          optional, <= 1 MiB each (FPR40: 40 upper-case hex)
 * Name components are [A-Za-z0-9._-], not starting with '.', whole names at
 * most FWREL_BUNDLE_NAME_MAX bytes (so every header is plain ustar).
 */
#ifndef FWREL_BUNDLE_H
#define FWREL_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest member name in bytes. */
#define FWREL_BUNDLE_NAME_MAX 99
/** Most members in a bundle. */
#define FWREL_BUNDLE_MEMBERS_MAX 256
/** Largest firmware.enc and exports/ member. */
#define FWREL_BUNDLE_IMAGE_MAX ((uint64_t)32 << 20)
/** Largest release.json, manifest.fwm, SHA256SUMS and approval. */
#define FWREL_BUNDLE_SMALL_MAX ((uint64_t)1 << 20)
/** Largest sum of all member sizes. */
#define FWREL_BUNDLE_TOTAL_MAX ((uint64_t)128 << 20)
/** Largest bundle file read (members plus tar headers and padding). */
#define FWREL_BUNDLE_FILE_MAX                                                                      \
    (FWREL_BUNDLE_TOTAL_MAX + (uint64_t)FWREL_BUNDLE_MEMBERS_MAX * 1024 + 20480)
/** Latest mtime a bundle may carry (the ustar field's limit, 8^11 - 1). */
#define FWREL_BUNDLE_MTIME_MAX ((int64_t)077777777777)

/** One member: a name and its bytes. */
typedef struct fwrel_bundle_member {
    const char *name;    /**< member name (see the list above) */
    const uint8_t *data; /**< its bytes (NULL allowed when len is 0) */
    size_t len;          /**< its size */
} fwrel_bundle_member;

/** A bundle read into memory; everything is owned by it. */
typedef struct fwrel_bundle {
    fwrel_bundle_member *members; /**< sorted by name, as in the tar */
    size_t n;                     /**< number of members */
    int64_t mtime;                /**< mtime of the first member (the writer's mtime) */
} fwrel_bundle;

/**
 * Check a member name against the allow-list.
 *
 * @param name  NUL-terminated name
 * @return 0, or FWREL_EFORMAT with a reason ("absolute path", "'..' component",
 *         "empty or '.' component", "name longer than 99 bytes", "not a bundle member")
 */
int fwrel_bundle_name_check(const char *name) FWREL_WUR;

/**
 * Largest size allowed for a member of this (valid) name, in bytes.
 */
uint64_t fwrel_bundle_member_max(const char *name);

/**
 * Write the bundle's tar bytes into memory. Members are copied in bytewise name
 * order whatever their order in m; each entry is a regular file, mode 0644,
 * uid/gid 0, no user or group name, the given mtime. Same members and mtime give
 * the same bytes.
 *
 * @param out    receives a malloc'd buffer (free()) with the tar
 * @param len    receives its length
 * @param m      the members (not taken over)
 * @param n      their count
 * @param mtime  every member's mtime, 0..FWREL_BUNDLE_MTIME_MAX (SOURCE_DATE_EPOCH or the release
 * time)
 * @return 0; FWREL_EUSAGE for a name outside the allow-list, a duplicate, a missing
 *         required member, a member or total over its cap, too many members or a bad
 *         mtime (message names the member); FWREL_EIO if libarchive or memory fails
 */
int fwrel_bundle_write_mem(uint8_t **out, size_t *len, const fwrel_bundle_member *m, size_t n,
                           int64_t mtime) FWREL_WUR;

/**
 * Like fwrel_bundle_write_mem(), writing the file path atomically (io.h fwrel_out,
 * mode 0644): on failure nothing is left at path.
 *
 * @param path   the bundle file
 * @param m      the members; n their count; mtime as for fwrel_bundle_write_mem()
 * @param n      their count
 * @param mtime  the mtime
 * @param flags  io.h FWREL_OUT_* flags (FWREL_OUT_FORCE to replace)
 * @return as fwrel_bundle_write_mem(), or FWREL_EIO (output error) when path cannot be written
 */
int fwrel_bundle_write(const char *path, const fwrel_bundle_member *m, size_t n, int64_t mtime,
                       unsigned flags) FWREL_WUR;

/**
 * Read a bundle from memory, strictly: exactly the tar fwrel_bundle_write_mem()
 * makes, nothing else (docs/bundle.md "Reading"), so that every tar reader takes
 * it alike: ustar headers in the writer's form only (no pax global or extended
 * header, no GNU long name, no base-256 number, right checksum), each entry a
 * regular file with an allowed name (or an export's hard link to firmware.enc or
 * manifest.fwm read before it), no duplicates, the writer's order, each declared
 * size within its member's cap (checked from the header before its data is read)
 * and the total within FWREL_BUNDLE_TOTAL_MAX, zero padding, the two zero blocks
 * of the end and the writer's zero padding after them, nothing else; every
 * required member present; and the members written again give these bytes.
 * SHA256SUMS is not checked here: see fwrel_bundle_check_sums().
 *
 * @param out   receives the bundle; free with fwrel_bundle_free()
 * @param data  the tar bytes (not taken over)
 * @param len   their length
 * @return 0, or FWREL_EFORMAT with one reason naming the member; nothing is returned
 */
int fwrel_bundle_read_mem(fwrel_bundle **out, const uint8_t *data, size_t len) FWREL_WUR;

/**
 * fwrel_bundle_read_mem() on the regular file path (at most FWREL_BUNDLE_FILE_MAX
 * bytes, refused from its size before reading).
 *
 * @param out   receives the bundle; free with fwrel_bundle_free()
 * @param path  the bundle file
 * @return 0; FWREL_EFORMAT (also for a file too large or not regular); FWREL_EIO
 */
int fwrel_bundle_read(fwrel_bundle **out, const char *path) FWREL_WUR;

/** Free a bundle from fwrel_bundle_read*(). NULL is fine. */
void fwrel_bundle_free(fwrel_bundle *b);

/** The member of this name, or NULL. */
const fwrel_bundle_member *fwrel_bundle_find(const fwrel_bundle *b, const char *name);

/** Most MEMBER selections fwrel_bundle_extract() takes. */
#define FWREL_BUNDLE_EXTRACT_MAX FWREL_BUNDLE_MEMBERS_MAX

/**
 * Write members of a bundle (one already verified: the caller's duty) as files under dir
 * (docs/verify.md "Extracting a bundle"): all of them, or those the selections name, a selection
 * being a member's name or a directory of members ("exports/flask-ota" or "exports/flask-ota/").
 * A hard link of the tar (an export file linked to firmware.enc) becomes a regular file with its
 * target's bytes. dir is created (one level, mode 0755 before the umask) when absent.
 *
 * Everything is checked before the first file is written: every selection names a member; no
 * file exists already (nothing is overwritten); every directory on the way, under dir, is a
 * directory, not a symbolic link or a file. Files are made with O_EXCL | O_NOFOLLOW under a
 * directory opened component by component with O_NOFOLLOW, so nothing is written outside dir
 * even if its tree changes meanwhile. On any failure the files and directories made are removed
 * (dir too, when it was made): nothing partial is left.
 *
 * @param b     the bundle
 * @param dir   the directory to write under
 * @param sel   nsel selections (NULL with 0: every member)
 * @return 0; FWREL_EUSAGE "SEL: not in the bundle" (or not a member name: absolute, "..", empty
 *         component); FWREL_EIO (about the output DIR/NAME) "exists", "not a directory (a
 *         symbolic link)", "not a directory", or a write error
 */
int fwrel_bundle_extract(const fwrel_bundle *b, const char *dir, const char *const *sel,
                         size_t nsel) FWREL_WUR;

/**
 * Make SHA256SUMS: one line "<64 lower-case hex>  <name>\n" per member other than
 * SHA256SUMS and approvals/, in bytewise name order.
 *
 * @param out  receives a malloc'd NUL-terminated text (free())
 * @param len  receives its length without the NUL
 * @param m    the members (any order; SHA256SUMS and approvals are skipped)
 * @param n    their count (0 gives an empty text)
 * @return 0; FWREL_EUSAGE for a duplicate name; FWREL_EIO on memory failure
 */
int fwrel_bundle_sums(char **out, size_t *len, const fwrel_bundle_member *m, size_t n) FWREL_WUR;

/**
 * Check the bundle's SHA256SUMS strictly: lines "<64 lower-case hex>  <name>\n",
 * names strictly increasing, every member other than SHA256SUMS and approvals/
 * listed exactly once, each digest equal to its member's.
 *
 * @param b  a bundle from fwrel_bundle_read*()
 * @return 0; FWREL_EFORMAT "SHA256SUMS line N: ..." for a malformed or unsorted
 *         line; FWREL_EVERIFY "SHA256SUMS: <name>: ..." for a digest mismatch, a
 *         member not listed or a listed name that is not a member
 */
int fwrel_bundle_check_sums(const fwrel_bundle *b) FWREL_WUR;

/**
 * Add approvals/<fpr>.asc to the bundle file at path, rewriting it atomically with
 * its mtime kept. Refused if that approval is already there.
 *
 * @param path  the bundle file (read strictly, then replaced)
 * @param fpr   the approver's fingerprint, 40 upper-case hex
 * @param sig   the detached armored signature over SHA256SUMS (not checked here)
 * @param len   its length
 * @return 0; FWREL_EVERIFY "approvals/<fpr>.asc: already in the bundle";
 *         FWREL_EUSAGE for a bad fingerprint or an oversize signature; the codes of
 *         fwrel_bundle_read() and fwrel_bundle_write()
 */
int fwrel_bundle_add_approval(const char *path, const char *fpr, const uint8_t *sig,
                              size_t len) FWREL_WUR;

#ifdef __cplusplus
}
#endif

#endif
