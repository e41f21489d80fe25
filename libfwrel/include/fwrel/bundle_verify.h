/*
 * bundle_verify.h - verify a release bundle (docs/verify.md): as a given device would
 * take it (device mode, with the device's secrets), or as CI checks it (CI mode,
 * no device secrets: sums, the release record, approvals, exports).
 *
 * Both record every step in a report (report.h) and answer with one error line
 * "rejected at <step>: <reason>" naming the first failing step.
 */
#ifndef FWREL_BUNDLE_VERIFY_H
#define FWREL_BUNDLE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/bundle.h"
#include "fwrel/device.h"
#include "fwrel/error.h"
#include "fwrel/release.h"
#include "fwrel/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Device mode: replay what the device does with the bundle's manifest.fwm and
 * firmware.enc, in its order: bundle.read (strict) -> manifest.* (open with the
 * profile's manifest key, signatures and threshold, device type, chip, expiry at
 * now, counter, secure_version) -> manifest.binds (firmware.enc is the manifest's
 * encrypted image: SHA-256 and size) -> ota.decision (secure_version against the
 * eFuse, version against the running one) -> image.decrypt (esp_encrypted_img with
 * the profile's image_key, GCM tag checked; skipped for a profile without
 * image_key, whose device takes plain images) -> manifest.signed-image (the
 * decrypted image is the manifest's signed image) -> the image and secure boot
 * checks of fwrel_device_verify_image(). The first failure stops: the steps
 * after it are recorded as skipped.
 *
 * release.json, SHA256SUMS and approvals are not read: the device never sees
 * them. The plaintext is decrypted to a private temporary directory under
 * $TMPDIR (or /tmp), mode 0700 / 0600, opened and unlinked at once, and read in
 * bounded chunks; nothing is left whatever happens (short of a crash during the
 * decryption itself).
 *
 * @param report  receives the steps (NULL allowed)
 * @param dev     the device profile (needs a manifest section; image_key for an
 *                encrypted firmware.enc)
 * @param path    the bundle file
 * @param now     the device's clock, seconds since the epoch
 * @return 0 accepted; FWREL_EVERIFY "rejected at <step>: <reason>";
 *         FWREL_EUSAGE "the device profile has no manifest section" or "the
 *         device profile has no image_key, and firmware.enc is encrypted
 *         (esp_encrypted_img)"; FWREL_EKEY, FWREL_EIO (temporary file, reading)
 */
int fwrel_bundle_verify_device(fwrel_report *report, const fwrel_device *dev, const char *path,
                               uint64_t now) FWREL_WUR;

/**
 * fwrel_bundle_verify_device() on a bundle in memory.
 *
 * @param report  receives the steps (NULL allowed)
 * @param dev     the device profile
 * @param data    the bundle's tar bytes (not taken over)
 * @param len     their length
 * @param now     the device's clock
 * @return as fwrel_bundle_verify_device()
 */
int fwrel_bundle_verify_device_mem(fwrel_report *report, const fwrel_device *dev,
                                   const uint8_t *data, size_t len, uint64_t now) FWREL_WUR;

/** CI mode options. */
typedef struct fwrel_bundle_verify_ci_opts {
    /** GnuPG home with the approvers' public keys; NULL means $GNUPGHOME (pgp.h). */
    const char *gnupg_home;
    /**
     * The release policy, or NULL. When given, its SHA-256 must equal release.json
     * policy_sha256, and its pinned approvers and the channel's approvals_required
     * are used instead of release.json's.
     */
    const char *policy;
    /** The image given to the release (its SHA-256 must equal input.sha256), or NULL. */
    const char *against_image;
} fwrel_bundle_verify_ci_opts;

/**
 * CI mode: every check that needs no device secret, all of them run (CI wants
 * every problem): bundle.read, bundle.sums, record.parse, record.policy,
 * record.members, approvals, exports, against (docs/verify.md gives the rules).
 * Only when bundle.read fails are the others skipped, and the steps that need
 * the record when record.parse fails.
 *
 * @param report  receives the steps (NULL allowed)
 * @param path    the bundle file
 * @param o       the options (NULL: all defaults)
 * @return 0 when every step passes; FWREL_EVERIFY "rejected at <step>: <reason>"
 *         naming the first failing step; FWREL_EFORMAT for a malformed policy
 *         (as fwrel_policy_load()); FWREL_EUSAGE for no GnuPG home when approvals
 *         must be checked; FWREL_EIO (reading, GnuPG cannot be run)
 */
int fwrel_bundle_verify_ci(fwrel_report *report, const char *path,
                           const fwrel_bundle_verify_ci_opts *o) FWREL_WUR;

/**
 * fwrel_bundle_verify_ci() on a bundle in memory.
 *
 * @param report  receives the steps (NULL allowed)
 * @param data    the bundle's tar bytes (not taken over)
 * @param len     their length
 * @param o       the options (NULL: all defaults)
 * @return as fwrel_bundle_verify_ci()
 */
int fwrel_bundle_verify_ci_mem(fwrel_report *report, const uint8_t *data, size_t len,
                               const fwrel_bundle_verify_ci_opts *o) FWREL_WUR;

/**
 * The CI checks of a bundle's members against its own release record, the same code as
 * fwrel_bundle_verify_ci(): bundle.sums, record.parse, record.members (firmware.enc and
 * manifest.fwm are the record's image and manifest, byte for byte), exports. fwrel-bundle
 * --approve and --record run them before they sign or record what the record says; they check
 * the approvals and the policy themselves.
 *
 * @param report  receives the steps (NULL allowed)
 * @param rec     receives the decoded release record (valid when record.parse passed)
 * @param b       a bundle from fwrel_bundle_read*()
 * @return 0 when every step passes; FWREL_EVERIFY "rejected at <step>: <reason>" naming the
 *         first failing step; FWREL_EIO
 */
int fwrel_bundle_check_record(fwrel_report *report, fwrel_release *rec,
                              const fwrel_bundle *b) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
