/*
 * io.h - bounded input sources and atomic outputs.
 *
 * Inputs are read through an fwrel_src: a regular file (FIFOs, devices and
 * directories are refused, so /dev/zero cannot feed a parser forever) or a
 * memory buffer (tests, fuzzers, bundle members). Every source has a size
 * known up front and capped by the caller.
 *
 * Outputs are written through an fwrel_out: a temporary file beside the
 * destination, fsync'd, then published by link() (no replace) or rename()
 * (with FWREL_OUT_FORCE) and the directory fsync'd. A failure, or
 * fwrel_out_abort(), leaves nothing behind.
 */
#ifndef FWREL_IO_H
#define FWREL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fwrel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest image file any fwrel command reads (ESP flash maps at most 32 MiB per app). */
#define FWREL_IMAGE_MAX ((uint64_t)64 << 20)
/** Largest small text input (key, profile, policy, signature) read whole. */
#define FWREL_SMALL_MAX ((size_t)1 << 20)

/** A bounded input source; fields are private to io.c. */
typedef struct fwrel_src {
    int fd;             /* -1 for a memory source */
    const uint8_t *mem; /* memory source */
    uint64_t size;      /* total size in bytes */
    uint64_t pos;       /* next offset read */
} fwrel_src;

/**
 * Open a regular file for reading.
 *
 * @param src   filled in; close with fwrel_src_close()
 * @param path  the file
 * @param max   largest size accepted
 * @return 0; FWREL_EIO when it cannot be opened; FWREL_EFORMAT when it is not a
 *         regular file or is larger than max
 */
int fwrel_src_open(fwrel_src *src, const char *path, uint64_t max) FWREL_WUR;

/** Make a source over memory the caller keeps alive while the source is used. */
void fwrel_src_mem(fwrel_src *src, const void *data, size_t len);

/**
 * Read exactly n bytes at the current position.
 * @return 0; FWREL_EFORMAT "truncated at offset N" when fewer remain; FWREL_EIO on a read error
 */
int fwrel_src_read(fwrel_src *src, void *buf, size_t n) FWREL_WUR;

/** Move to an absolute offset (<= size). @return 0 or FWREL_EFORMAT. */
int fwrel_src_seek(fwrel_src *src, uint64_t pos) FWREL_WUR;

/** Close a file source (no-op for memory sources or a zeroed struct). */
void fwrel_src_close(fwrel_src *src);

/**
 * Read a whole small file into memory (for keys, profiles, signatures).
 *
 * @param out  receives a malloc'd buffer with a NUL appended (not counted in
 *             *len); free with fwrel_io_free_secret() if it held secrets, else free()
 * @param len  receives the size
 * @param path the file
 * @param max  largest size accepted
 */
int fwrel_io_read_small(uint8_t **out, size_t *len, const char *path, size_t max) FWREL_WUR;

/** Wipe then free a buffer from fwrel_io_read_small(). NULL is fine. */
void fwrel_io_free_secret(uint8_t *buf, size_t len);

/** fwrel_out_open() flags. */
enum {
    FWREL_OUT_FORCE = 1 << 0, /**< replace an existing destination */
    /**
     * A large streamed output (images): bytes go to the disk with O_DIRECT from a
     * background writer thread while the caller computes, instead of through the
     * page cache. Falls back to ordinary writes where the filesystem refuses
     * O_DIRECT (tmpfs). Same contract: nothing is visible before commit.
     */
    FWREL_OUT_STREAM = 1 << 1,
};

/**
 * Check that path may be written with these flags (absent, or FWREL_OUT_FORCE
 * and not a directory), before slow work such as a passphrase prompt. The
 * check is repeated when the output is published.
 * @return 0, or FWREL_EIO "exists (use --force to replace)" (marked as an output error)
 */
int fwrel_io_check_new(const char *path, unsigned flags) FWREL_WUR;

/** An output being written; opaque. */
typedef struct fwrel_out fwrel_out;

/**
 * Start writing `path` atomically.
 *
 * Unless FWREL_OUT_FORCE, an existing destination (any kind, dangling link
 * included) is refused with FWREL_EIO "exists (use --force to replace)". The
 * temporary file is created O_EXCL|O_NOFOLLOW with the given mode, so secret
 * keys are 0600 from their first byte. Every failure of the fwrel_out
 * functions is marked as an output error (fwrel_error.output).
 *
 * @param out   receives the handle; pass to fwrel_out_commit() or fwrel_out_abort()
 * @param path  the destination
 * @param flags FWREL_OUT_* flags
 * @param mode  permission bits of the published file (e.g. 0600, 0644)
 */
int fwrel_out_open(fwrel_out **out, const char *path, unsigned flags, mode_t mode) FWREL_WUR;

/** Append bytes. @return 0 or FWREL_EIO. */
int fwrel_out_write(fwrel_out *out, const void *data, size_t len) FWREL_WUR;

/**
 * Room for the next bytes, for a producer that writes them in place (an encryption writes
 * its output there rather than copying it in): a pointer to *len bytes (at least one), or
 * NULL when the output has no buffer of its own (FWREL_OUT_STREAM on a filesystem with
 * O_DIRECT has); then use fwrel_out_write(). Valid until the next call on out.
 */
uint8_t *fwrel_out_room(fwrel_out *out, size_t *len);

/** Append the n bytes (at most the room's length) put at fwrel_out_room()'s pointer.
 * @return 0 or FWREL_EIO. */
int fwrel_out_advance(fwrel_out *out, size_t n) FWREL_WUR;

/**
 * Overwrite bytes already written, at offset off (off + len <= fwrel_out_size()),
 * e.g. a header completed after the data streamed. @return 0 or FWREL_EIO.
 */
int fwrel_out_pwrite(fwrel_out *out, uint64_t off, const void *data, size_t len) FWREL_WUR;

/** Append n copies of byte b. @return 0 or FWREL_EIO. */
int fwrel_out_fill(fwrel_out *out, uint8_t b, size_t n) FWREL_WUR;

/** Bytes written so far. */
uint64_t fwrel_out_size(const fwrel_out *out);

/**
 * fsync, publish and fsync the directory; frees the handle whatever happens.
 * On failure nothing is left at the destination or in the temporary file.
 */
int fwrel_out_commit(fwrel_out *out) FWREL_WUR;

/** Discard: remove the temporary file and free the handle. NULL is fine. */
void fwrel_out_abort(fwrel_out *out);

/**
 * Start an unnamed scratch file in directory dir, for an intermediate that must never have a
 * name (a signed plaintext image on its way to encryption): O_TMPFILE, or where the filesystem
 * has none, a file unlinked the moment it is created (a kill in between leaves it empty). It is
 * 0600 and readable. A process killed, or a write refused (a full disk, RLIMIT_FSIZE), at any
 * moment leaves nothing behind. Finish it with fwrel_out_finish_src() or fwrel_out_abort();
 * fwrel_out_commit() refuses it.
 *
 * @param flags 0 or FWREL_OUT_STREAM
 * @return 0, or FWREL_EIO (marked as an output error)
 */
int fwrel_out_open_unnamed(fwrel_out **out, const char *dir, unsigned flags) FWREL_WUR;

/**
 * Finish writing an unnamed output (fwrel_out_open_unnamed()) and read it back: src becomes a
 * source over its bytes, from offset 0; fwrel_src_close() then drops the file. Nothing is
 * synced to the disk (the file never outlives the process). The handle is freed whatever
 * happens.
 * @return 0, or FWREL_EIO (marked as an output error)
 */
int fwrel_out_finish_src(fwrel_out *out, fwrel_src *src) FWREL_WUR;

/**
 * Write a whole buffer atomically (open + write + commit).
 */
int fwrel_io_write_file(const char *path, const void *data, size_t len, unsigned flags,
                        mode_t mode) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
