/*
 * release.h - the release record (release.json, docs/bundle.md) and the version
 * rule of release policies (SemVer 2.0 precedence).
 *
 * The release record is the cleartext statement a bundle makes about itself:
 * what went in (the input image and the policy, by hash), what came out (the
 * signed, the served and the manifest files, by hash and size), with which keys
 * (by key id), approved by whom. It is canonical JSON (sorted keys, compact, no
 * floats), so its bytes are determined by its content.
 */
#ifndef FWREL_RELEASE_H
#define FWREL_RELEASE_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FWREL_RELEASE_FORMAT   "fwrel-release-1"
#define FWREL_RELEASE_JSON_MAX (64 * 1024)
#define FWREL_RELEASE_MAX_KEYS 8

/**
 * Compare two versions by SemVer 2.0 precedence (build metadata ignored); a
 * leading 'v' is allowed on either.
 * @param cmp  receives <0, 0 or >0
 * @return 0, or FWREL_EFORMAT "version 'X' is not SemVer 2.0"
 */
int fwrel_semver_cmp(int *cmp, const char *a, const char *b) FWREL_WUR;

/** SHA-256 and size of one file of a release. */
typedef struct fwrel_release_file {
    char name[129];  /**< member name in the bundle, or "" for files that are not in it */
    char sha256[65]; /**< lower-case hex */
    uint64_t size;
} fwrel_release_file;

/** The release record. Strings are NUL-terminated. */
typedef struct fwrel_release {
    char product[65];
    char version[33];
    char channel[17];
    char chip[17];
    char device_types[8][65];
    size_t ndevice_types;
    uint64_t counter;        /**< monotonic per product: 1 for its first release */
    uint32_t secure_version;
    uint64_t created;        /**< release time, seconds since the epoch */
    uint64_t expires;        /**< the manifest's expiry */
    char policy_sha256[65];
    fwrel_release_file input;    /**< the image given to fwrel-bundle (name "") */
    fwrel_release_file signed_image; /**< after secure boot signing (name "") */
    fwrel_release_file image;    /**< the served image: pre-encrypted, or the signed image */
    fwrel_release_file manifest; /**< the signed, encrypted manifest */
    int encrypted;               /**< image is esp_encrypted_img */
    char sign_keys[3][65];       /**< key ids of the secure boot keys that signed */
    size_t nsign_keys;
    char manifest_signers[FWREL_RELEASE_MAX_KEYS][65];
    size_t nmanifest_signers;
    unsigned manifest_threshold;
    char recipients[FWREL_RELEASE_MAX_KEYS][65];
    size_t nrecipients;
    char image_key[65];          /**< key id of the image encryption key, or "" */
    char approvers[16][41];      /**< fingerprints the policy pins (upper-case hex) */
    size_t napprovers;
    unsigned approvals_required;
    char tool_version[33];
} fwrel_release;

/**
 * Encode canonically (sorted keys, compact, a final newline).
 * @param out  receives a malloc'd NUL-terminated string; free()
 * @return 0; FWREL_EFORMAT when a field breaks its rule
 */
int fwrel_release_encode(char **out, size_t *len, const fwrel_release *r) FWREL_WUR;

/**
 * Decode strictly: the canonical bytes only (re-encoded and compared), no
 * missing, unknown or duplicate field, every value in range.
 * @return 0, or FWREL_EFORMAT with the reason
 */
int fwrel_release_decode(fwrel_release *r, const uint8_t *json, size_t len) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
