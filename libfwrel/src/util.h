/*
 * util.h - small internal helpers shared by libfwrel modules (no API promise).
 */
#ifndef FWREL_UTIL_H
#define FWREL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/report.h"

static inline uint16_t fwrel_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t fwrel_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void fwrel_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/** Reverse n bytes in place (ESP fields store big numbers little-endian). */
void fwrel_reverse(uint8_t *p, size_t n);

/** zlib-compatible CRC-32 (ISO-HDLC), as espsecure's zlib.crc32 and the ROM's crc32_le. */
uint32_t fwrel_crc32(uint32_t crc, const uint8_t *p, size_t n);

/** Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void fwrel_hex(char *out, const uint8_t *p, size_t n);

/** A time (seconds since the epoch) as RFC 3339 UTC, "2026-11-22T13:45:00Z", into out. */
void fwrel_rfc3339(char out[21], int64_t t);

/** The value of one hex digit (upper or lower case), or -1. */
int fwrel_hexval(char c);

/**
 * Parse exactly n bytes of hex (upper or lower case, no separators).
 * @return 0, or -1 if s is not exactly 2n hex digits.
 */
int fwrel_unhex(uint8_t *out, size_t n, const char *s);

/**
 * Parse a decimal or 0x-prefixed unsigned integer no larger than max.
 * @return 0, or -1 (empty, junk, overflow, above max).
 */
int fwrel_parse_u64(uint64_t *out, const char *s, uint64_t max);

/*
 * Test-only failure injection (repo.h, pipeline.h): SIGKILL when FWREL_TEST_KILL_AT lists step,
 * FWREL_EIO "injected failure at STEP" when FWREL_TEST_FAIL_AT lists it (comma-separated
 * lists), else 0.
 */
int fwrel_test_hook(const char *step);

/** Copy a fixed-size, possibly unterminated, C text field into out (size n+1), stopping at NUL. */
void fwrel_text_field(char *out, const uint8_t *field, size_t n);

struct fwrel_src;

/* mkdir -p of path's parent directories (those that exist are kept), each created with mode:
 * 0, or FWREL_EIO "cannot create DIR: reason"; FWREL_EUSAGE for a path over 4 KiB. */
int fwrel_make_parents(const char *path, unsigned mode);

/* fsync a directory (after a rename, link or unlink in it): 0, or FWREL_EIO "cannot sync DIR". */
int fwrel_fsync_dir(const char *dir);

/* Remove a directory holding plain files only (a staging directory) with its files; best effort. */
void fwrel_remove_flat(const char *dir);

/* SHA-256 of n bytes at p (p may be NULL when n is 0): 0, or FWREL_EIO with OpenSSL's reason. */
int fwrel_sha256(uint8_t out[32], const void *p, size_t n);

/* The same as 64 lower-case hex digits and a NUL; all zeros in the (default-provider-impossible)
 * case that OpenSSL fails. */
void fwrel_sha256_hex(char out[65], const void *p, size_t n);

/**
 * Hash len bytes of src from its current position, streaming (64 KiB at a time):
 * SHA-256 into d256, and SHA-384 into d384 unless it is NULL.
 * @return 0, a read error of src, or FWREL_EIO
 */
int fwrel_digest_src(uint8_t d256[32], uint8_t *d384, struct fwrel_src *src, uint64_t len);

/** The problems one verification step found, joined by "; " into its detail line. Start it as
 * {"", 0}; n counts them. */
typedef struct fwrel_problems {
    char text[FWREL_STEP_DETAIL_MAX];
    size_t n;
} fwrel_problems;

/** Add a problem to p; what no longer fits in the line is cut. */
void fwrel_problem(fwrel_problems *p, const char *fmt, ...) FWREL_PRINTF(2, 3);

/**
 * Make room for one more element in *arr, an array of n elements of size bytes with room for *cap
 * (0 and NULL at first): doubles it (16 at first) when full.
 * @return 0, or FWREL_EIO "out of memory" (*arr and *cap unchanged)
 */
int fwrel_grow(void **arr, size_t *cap, size_t n, size_t size);

/** A commit of the release branch in a position index: its id, its place on the branch (1 for the
 * root) and the release tags that name it (counted by the caller, from 0). */
typedef struct fwrel_cpos {
    char id[41];
    size_t pos;
    size_t tags;
} fwrel_cpos;

/** Number the n commits of a branch listed tip first (ids filled in, tags 0), then sort them by id
 * for fwrel_cpos_find(). */
void fwrel_cpos_index(fwrel_cpos *cp, size_t n);

/** The entry of commit id in an index made by fwrel_cpos_index(), or NULL. */
fwrel_cpos *fwrel_cpos_find(fwrel_cpos *cp, size_t n, const char *id);

struct json_t;

/**
 * o (jansson, dumped with flags) as one text ending in a newline, NUL-terminated; *len counts the
 * newline, not the NUL. o stays the caller's.
 * @return 0, or FWREL_EIO "out of memory"
 */
int fwrel_json_text(char **text, size_t *len, const struct json_t *o, size_t flags);

#endif
