/*
 * device.h - the device model: a device profile (YAML, docs/device-profile.md)
 * and the ordered acceptance checks the bootloader and the OTA code run
 * (docs/esp-formats.md §1.8, §2.6, §5).
 */
#ifndef FWREL_DEVICE_H
#define FWREL_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/io.h"
#include "fwrel/key.h"
#include "fwrel/manifest.h"
#include "fwrel/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A device profile; opaque. */
typedef struct fwrel_device fwrel_device;

/**
 * Parse a device profile from YAML text, strictly (unknown or duplicate keys,
 * aliases, wrong types, out-of-range numbers, bad hex are errors).
 *
 * @param out   receives the profile; free with fwrel_device_free()
 * @return 0; FWREL_EFORMAT "line:column: reason"
 */
int fwrel_device_parse(fwrel_device **out, const uint8_t *yaml, size_t len) FWREL_WUR;

/** Read and parse a profile file (bounded size). */
int fwrel_device_load(fwrel_device **out, const char *path) FWREL_WUR;

/** Free a profile. NULL is fine. */
void fwrel_device_free(fwrel_device *dev);

/**
 * Verify an image as this device would accept it over OTA and at boot, in the
 * device's order, recording each step in report.
 *
 * @return 0 accepted; FWREL_EVERIFY rejected (the first failing step is the
 *         report's first failure and the error message); FWREL_EFORMAT only
 *         where the device would not even get that far is still a reject,
 *         so malformed images are FWREL_EVERIFY too; FWREL_EIO on read errors
 */
int fwrel_device_verify_image(fwrel_report *report, const fwrel_device *dev,
                              fwrel_src *src) FWREL_WUR;

/**
 * Read a manifest envelope as this device would (docs/manifest.md section 4):
 * open it with the profile's manifest key, check the signatures against the
 * trusted keys and threshold, then device type, chip and revision, validity at
 * time now, the release counter and the secure_version. Steps go to report.
 * The profile needs a manifest section (docs/device-profile.md).
 * @return 0 accepted; FWREL_EVERIFY rejected ("rejected at <step>: <reason>");
 *         FWREL_EUSAGE when the profile has no manifest section
 */
int fwrel_device_verify_manifest(fwrel_report *report, const fwrel_device *dev,
                                 const uint8_t *envelope, size_t len, uint64_t now) FWREL_WUR;

/**
 * fwrel_device_verify_manifest(), also returning the body the device accepted.
 *
 * @param out     receives the manifest body when accepted (untouched otherwise)
 * @param report  receives the steps (NULL allowed)
 * @param dev     the profile (needs a manifest section)
 * @param envelope the encrypted manifest; len its size
 * @param len     its length
 * @param now     the device's clock, seconds since the epoch
 * @return as fwrel_device_verify_manifest()
 */
int fwrel_device_read_manifest(fwrel_manifest *out, fwrel_report *report, const fwrel_device *dev,
                               const uint8_t *envelope, size_t len, uint64_t now) FWREL_WUR;

/**
 * The profile's esp_encrypted_img private key (`image_key:`, RSA-3072 or EC P-256), or NULL when
 * the profile has none (the device takes plain images). Borrowed: valid while dev is.
 */
const fwrel_pkey *fwrel_device_image_key(const fwrel_device *dev);

/**
 * The file the profile was loaded from (fwrel_device_load()), "" for a parsed one: what an error
 * about the profile names (fwrel_error_about(FWREL_ABOUT_PROFILE, ...)). Borrowed.
 */
const char *fwrel_device_path(const fwrel_device *dev);

/**
 * The OTA code's decision before it writes an update (docs/esp-formats.md §5): with anti-rollback,
 * secure_version at least the eFuse's; with a running version, a different version string.
 *
 * @param why             receives one human line (the refusal as ESP-IDF words it, or why not)
 * @param n               its size
 * @param dev             the profile
 * @param version         the update's version string
 * @param secure_version  the update's secure_version
 * @return 1 when the device goes on with the update, 0 when it refuses
 */
int fwrel_device_ota_decision(char *why, size_t n, const fwrel_device *dev, const char *version,
                              uint32_t secure_version);

#ifdef __cplusplus
}
#endif
#endif
