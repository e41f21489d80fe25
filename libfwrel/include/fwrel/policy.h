/*
 * policy.h - YAML release policies: strict loading and cross-checking (docs/policy.md).
 *
 * A policy is read with the strict YAML reader (no anchors/aliases, no duplicate
 * or unknown keys, bounded depth and size) into a plain struct. Every key name a
 * section uses is resolved to an index into keys[] at load time, and checked
 * for the purpose that use needs; the chip must accept the secure boot scheme.
 */
#ifndef FWREL_POLICY_H
#define FWREL_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/espimg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FWREL_POLICY_MAX_KEYS 32
#define FWREL_POLICY_EXPORT_SETTINGS_MAX 8     /* settings of one export */
#define FWREL_POLICY_MAX_LIST 8     /* device types, signers, recipients, exports */
#define FWREL_POLICY_MAX_APPROVERS 16
#define FWREL_POLICY_NAME_MAX 64    /* names: [a-z0-9][a-z0-9._-]{0,63} */
#define FWREL_POLICY_FILE_MAX (256u * 1024u)

/** Key purposes (docs/policy.md, keys). */
enum fwrel_purpose {
    FWREL_PURPOSE_SECURE_BOOT = 1,
    FWREL_PURPOSE_MANIFEST_SIGN,
    FWREL_PURPOSE_MANIFEST_ENCRYPT,
    FWREL_PURPOSE_IMAGE_ENCRYPT,
    FWREL_PURPOSE_FLASH_ENCRYPT,
    FWREL_PURPOSE_HMAC,
    FWREL_PURPOSE_MENDER_SIGN,  /**< signs the mender export's artifact (docs/exports.md) */
    FWREL_PURPOSE_AWS_OTA_SIGN, /**< signs the aws-iot-ota export's file (docs/exports.md) */
};

/** Key algorithms. */
enum fwrel_alg {
    FWREL_ALG_RSA3072 = 1,
    FWREL_ALG_RSA4096,
    FWREL_ALG_ECDSA192,
    FWREL_ALG_ECDSA256,
    FWREL_ALG_ECDSA384,
    FWREL_ALG_ED25519,
    FWREL_ALG_X25519,
    FWREL_ALG_AES128,
    FWREL_ALG_AES256,
    FWREL_ALG_AES512,
    FWREL_ALG_HMAC256,
};

/** Name of a purpose ("secure-boot", ...); "unknown" for another value. */
const char *fwrel_purpose_name(int purpose);

/** Name of an algorithm ("rsa3072", ...); "unknown" for another value. */
const char *fwrel_alg_name(int alg);

/** The purpose named ("secure-boot", ...), or 0 for another name or NULL. */
int fwrel_purpose_parse(const char *name);

/** The algorithm named ("rsa3072", ...), or 0 for another name or NULL. */
int fwrel_alg_parse(const char *name);

/** Whether a purpose allows an algorithm (docs/policy.md, keys): 1 or 0. */
int fwrel_policy_alg_allowed(int purpose, int alg);

/** Secure boot schemes of a policy. */
enum fwrel_policy_scheme {
    FWREL_POLICY_SBV1 = 1,     /**< ESP32 Secure Boot V1, ECDSA P-256 */
    FWREL_POLICY_SBV2_RSA3072,
    FWREL_POLICY_SBV2_ECDSA192,
    FWREL_POLICY_SBV2_ECDSA256,
    FWREL_POLICY_SBV2_ECDSA384,
};

/** A key the policy names. */
/** A setting of one export (docs/exports.md). */
typedef struct fwrel_policy_setting {
    char name[FWREL_POLICY_NAME_MAX + 1]; /**< [a-z0-9_] */
    char value[512];                      /**< printable; an http(s) URL for base_url */
} fwrel_policy_setting;

typedef struct fwrel_policy_key {
    char name[FWREL_POLICY_NAME_MAX + 1];
    int purpose;  /**< enum fwrel_purpose */
    int alg;      /**< enum fwrel_alg */
    char id[65];  /**< pinned key id (64 lower-case hex), or "" */
    char *hsm;    /**< pkcs11: URI (owned), or NULL */
} fwrel_policy_key;

/** What one channel enforces (top-level values where the channel says nothing). */
typedef struct fwrel_policy_channel {
    int present;
    const char *name;                   /**< "dev", "beta", "prod" */
    unsigned sign_slots;                /**< bit i: secure_boot.slots[i] signs */
    size_t signers[FWREL_POLICY_MAX_LIST]; /**< indexes into keys[] */
    size_t nsigners;
    unsigned threshold;
    unsigned approvals_required;
    uint64_t validity;                  /**< seconds */
    int allow_no_approvals;             /**< the policy says approvals_required 0 on purpose */
} fwrel_policy_channel;

/** How an app's version (esp_app_desc_t.version) maps to the release version (docs/policy.md). */
enum fwrel_policy_version_scheme {
    FWREL_VERSION_SEMVER = 0,   /**< "semver": the app version is SemVer 2.0, taken as it is */
    FWREL_VERSION_V_SEMVER = 1, /**< "v-semver": "v" + SemVer 2.0 (a git tag); the v is dropped */
};

enum { FWREL_CHANNEL_DEV, FWREL_CHANNEL_BETA, FWREL_CHANNEL_PROD, FWREL_CHANNEL_COUNT };

typedef struct fwrel_policy {
    uint8_t sha256[32]; /**< SHA-256 of the policy file's bytes */
    char product[FWREL_POLICY_NAME_MAX + 1];
    const fwrel_chip *chip;
    int has_rev;
    uint16_t rev_min, rev_max; /**< major*100+minor */
    int version_scheme;        /**< enum fwrel_policy_version_scheme (versioning: scheme:) */
    char device_types[FWREL_POLICY_MAX_LIST][FWREL_POLICY_NAME_MAX + 1];
    size_t ndevice_types;
    uint64_t partition_size;

    int scheme; /**< enum fwrel_policy_scheme */
    struct {
        unsigned slot; /**< eFuse digest slot 0..2 */
        size_t key;    /**< index into keys[] */
    } slots[3];
    size_t nslots;

    uint32_t min_secure_version;
    unsigned efuse_bits; /**< largest secure_version a device records */
    int monotonic;

    int has_image_key;
    size_t image_key;

    size_t recipients[FWREL_POLICY_MAX_LIST];
    size_t nrecipients;

    char approvers[FWREL_POLICY_MAX_APPROVERS][41]; /**< upper-case 40 hex */
    size_t napprovers;

    fwrel_policy_channel channels[FWREL_CHANNEL_COUNT];

    char repository[1024]; /**< as written (relative to the policy file) */
    char tag[256];
    char base_url[512]; /**< the update server's base URL (exports), or "" */
    char audit_log[1024];
    char exports[FWREL_POLICY_MAX_LIST][FWREL_POLICY_NAME_MAX + 1];
    size_t nexports;
    /** each export's settings ({name: X, setting: value}), in the policy's order */
    fwrel_policy_setting export_settings[FWREL_POLICY_MAX_LIST][FWREL_POLICY_EXPORT_SETTINGS_MAX];
    size_t nexport_settings[FWREL_POLICY_MAX_LIST];

    int has_flash_key, has_hmac_key;
    size_t flash_key, hmac_key;
    int has_mender_key, has_aws_ota_key; /**< mender: {key}, aws_ota: {key} (docs/exports.md) */
    size_t mender_key, aws_ota_key;

    fwrel_policy_key keys[FWREL_POLICY_MAX_KEYS];
    size_t nkeys;
} fwrel_policy;

/**
 * Load and check a policy file (at most FWREL_POLICY_FILE_MAX bytes).
 * @param out  receives the policy; free with fwrel_policy_free()
 * @return 0; FWREL_EFORMAT "LINE:COL: reason" for any malformed or
 *         inconsistent content (the caller prefixes the file name); FWREL_EIO
 *         when unreadable or too large
 */
int fwrel_policy_load(fwrel_policy **out, const char *path) FWREL_WUR;

/** Load from memory, as fwrel_policy_load(). */
int fwrel_policy_parse(fwrel_policy **out, const uint8_t *text, size_t len) FWREL_WUR;

/**
 * The release repository's path: the policy's release.repository, relative to the directory of
 * the policy file (policy_path) unless absolute.
 * @param out   receives the path; size its capacity
 * @return 0, or FWREL_EUSAGE "path too long"
 */
int fwrel_policy_repo_path(char *out, size_t size, const fwrel_policy *p,
                           const char *policy_path) FWREL_WUR;

/**
 * The audit log's path: repo_path + "/" + the policy's audit.log (a normalized relative path
 * outside git's own files, fwrel_policy_load() checked it), with every directory between them a
 * real directory, never a symbolic link, and the log itself absent or a regular file.
 * @param create  make the missing directories (0750)
 * @return 0; FWREL_EUSAGE "audit log path too long"; FWREL_EIO "audit log: DIR is a symbolic
 *         link, not a directory" (or a file), "audit log: PATH is a symbolic link, not a
 *         regular file", or a directory that cannot be made
 */
int fwrel_policy_audit_path(char *out, size_t size, const fwrel_policy *p, const char *repo_path,
                            int create) FWREL_WUR;

/** The channel named "dev", "beta" or "prod" if the policy has it, else NULL. */
const fwrel_policy_channel *fwrel_policy_channel_get(const fwrel_policy *p, const char *name);

/** The key with that logical name, or NULL. */
const fwrel_policy_key *fwrel_policy_key_get(const fwrel_policy *p, const char *name);

/**
 * The release version of an app version (esp_app_desc_t.version) under the policy's versioning
 * scheme, for a release in `channel` (docs/policy.md "Versions"): SemVer 2.0 as it is
 * (scheme semver), or "v" + SemVer 2.0 with the v dropped (scheme v-semver); a version from a
 * modified tree ("-dirty", git describe --dirty) is never released in the prod channel.
 *
 * @param out      receives the release version
 * @param size     out's capacity
 * @return 0; FWREL_EVERIFY with a message that says where ESP-IDF takes the version from
 *         (PROJECT_VER, version.txt, git describe)
 */
int fwrel_policy_release_version(char *out, size_t size, const fwrel_policy *p, const char *channel,
                                 const char *app_version) FWREL_WUR;

/**
 * The image's chip revision range (esp_image_header_t min/max_chip_rev_full, major*100+minor;
 * a max of 0 or 0xffff means none) against the policy's chip_revision (docs/policy.md "Chip
 * revision"); the refusal names both ranges and the ESP-IDF option that sets the image's.
 *
 * @return 0 (also when the policy has no chip_revision); FWREL_EVERIFY
 */
int fwrel_policy_check_chip_rev(const fwrel_policy *p, unsigned img_min,
                                unsigned img_max) FWREL_WUR;

/** Free a policy. NULL is fine. */
void fwrel_policy_free(fwrel_policy *p);

#ifdef __cplusplus
}
#endif
#endif
