/*
 * manifest.h - the fwrel release manifest (docs/manifest.md): the canonical JSON
 * body (section 1), its threshold signatures (section 2), and the encrypted
 * envelope addressed to one or more recipients (section 3).
 */
#ifndef FWREL_MANIFEST_H
#define FWREL_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/io.h"
#include "fwrel/key.h"
#include "fwrel/report.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FWREL_MANIFEST_BODY_MAX   (16 * 1024)
#define FWREL_MANIFEST_SIGNED_MAX (32 * 1024)
#define FWREL_MANIFEST_MAX_SIGS   8
#define FWREL_MANIFEST_MAX_TYPES  16
#define FWREL_MANIFEST_SIG_MAX    512 /**< bytes of one signature (RSA up to 4096 bits) */

/** One image digest: SHA-256 and size. */
typedef struct fwrel_manifest_digest {
    uint8_t sha256[32];
    uint64_t size;
} fwrel_manifest_digest;

/** The manifest body (docs/manifest.md section 1). Strings are NUL-terminated. */
typedef struct fwrel_manifest {
    char product[65];
    char device_types[FWREL_MANIFEST_MAX_TYPES][65];
    size_t device_type_count;
    char chip[17];
    uint16_t chip_rev_min, chip_rev_max;
    char version[33];
    uint32_t secure_version;
    uint64_t counter;
    char channel[17];
    uint64_t created, expires;
    fwrel_manifest_digest plain, signed_image, encrypted;
    char image_name[129];
} fwrel_manifest;

/**
 * Encode a body canonically (the bytes that are signed).
 * @param out  receives a malloc'd NUL-terminated string; free()
 * @return 0; FWREL_EFORMAT naming the field that breaks a rule
 */
int fwrel_manifest_encode(char **out, size_t *len, const fwrel_manifest *m) FWREL_WUR;

/**
 * Decode a body strictly: canonical bytes only (re-encoded and compared), no
 * duplicate, unknown or missing field, no float, every value in range.
 * @return 0 or FWREL_EFORMAT with the reason
 */
int fwrel_manifest_decode(fwrel_manifest *m, const uint8_t *json, size_t len) FWREL_WUR;

/**
 * Read a body written by a person: any JSON layout and key order, but the same
 * field rules as fwrel_manifest_decode() (no duplicates, unknown fields, floats).
 */
int fwrel_manifest_parse_input(fwrel_manifest *m, const uint8_t *json, size_t len) FWREL_WUR;

/**
 * Build a body from the release's image files and a template holding only the
 * release fields (product, device_types, channel, counter, created, expires;
 * any JSON layout, strict fields): version, secure_version, chip and revision
 * range come from the signed image's header and app descriptor; the SHA-256 and
 * size of each file, and image_name (the encrypted file's name), are computed.
 * @param plain_path  the image before signing (may be the same file as signed_path)
 * @return 0; FWREL_EFORMAT (template, or an image without app descriptor); FWREL_EIO
 */
int fwrel_manifest_from_images(fwrel_manifest *m, const uint8_t *template_json, size_t len,
                               const char *plain_path, const char *signed_path,
                               const char *encrypted_path) FWREL_WUR;

/**
 * fwrel_manifest_from_images() over sources (each read from its start; a
 * release's unnamed scratch files): image_name is given.
 */
int fwrel_manifest_from_sources(fwrel_manifest *m, const uint8_t *template_json, size_t len,
                                fwrel_src *plain, fwrel_src *signed_image, fwrel_src *encrypted,
                                const char *image_name) FWREL_WUR;

/**
 * Sign a body with 1..8 keys (RSA-3072 PSS, ECDSA P-256, Ed25519), giving signed.json.
 * @param out  receives a malloc'd NUL-terminated string; free()
 */
int fwrel_manifest_sign(char **out, size_t *len, const fwrel_manifest *m,
                        const fwrel_pkey *const *keys, size_t nkeys) FWREL_WUR;

/**
 * Signs msg for a signer whose private key is held elsewhere (an HSM:
 * fwrel_hsm_key_sign_message()).
 * @param ctx      the signer's context
 * @param msg      the bytes to sign (hash them as the algorithm requires)
 * @param len      their length
 * @param sig      receives the signature (RSA-PSS bytes, ECDSA DER), room for 512 bytes
 * @param sig_len  receives its length
 * @return 0, or an FWREL_* code with the error set
 */
typedef int (*fwrel_manifest_sign_fn)(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig,
                                      size_t *sig_len);

/** One manifest signer: a private key (sign NULL), or a public key and a sign function. */
typedef struct fwrel_manifest_signer {
    const fwrel_pkey *key;       /**< private key, or with sign: the public key */
    fwrel_manifest_sign_fn sign; /**< NULL: sign with key */
    void *ctx;                   /**< passed to sign */
} fwrel_manifest_signer;

/**
 * fwrel_manifest_sign() with signers that may sign elsewhere: a sign function's signature is
 * verified with the signer's public key before it is used.
 *
 * @param out      receives a malloc'd NUL-terminated string; free()
 * @param len      receives its length
 * @param m        the body
 * @param signers  1..8 signers (keys RSA-3072, ECDSA P-256 or Ed25519)
 * @param nkeys    how many
 * @return 0; FWREL_EUSAGE (count, the same key twice); FWREL_EKEY (key type, signing);
 *         FWREL_EVERIFY (a sign function's signature does not verify); a sign function's error
 */
int fwrel_manifest_sign_with(char **out, size_t *len, const fwrel_manifest *m,
                             const fwrel_manifest_signer *signers, size_t nkeys) FWREL_WUR;

#define FWREL_MANIFEST_ENVELOPE_MAX   (64 * 1024)
#define FWREL_MANIFEST_MAX_RECIPIENTS 8

/**
 * Encrypt signed.json to 1..8 recipients: RSA-4096 (OAEP-SHA256), X25519 or EC
 * P-256 (ECDH, HKDF-SHA256, AES-256-GCM key wrap) public keys. A fresh content
 * key and nonce, and fresh ephemeral keys, on every call.
 * @param out  receives a malloc'd envelope; free()
 * @return 0; FWREL_EKEY (a recipient key of another kind); FWREL_EFORMAT (too large)
 */
int fwrel_manifest_seal(uint8_t **out, size_t *len, const uint8_t *signed_json, size_t signed_len,
                        const fwrel_pkey *const *recipients, size_t count) FWREL_WUR;

/** Recipient types (docs/manifest.md section 3): the type byte of an envelope entry. */
enum fwrel_manifest_rcpt {
    FWREL_MANIFEST_RCPT_RSA4096 = 1, /**< RSA-4096-OAEP-SHA256 */
    FWREL_MANIFEST_RCPT_X25519 = 2,  /**< X25519, HKDF-SHA256, AES-256-GCM key wrap */
    FWREL_MANIFEST_RCPT_P256 = 3,    /**< ECDH P-256, HKDF-SHA256, AES-256-GCM key wrap */
};

/**
 * The recipient type of a key (public or private): what fwrel_manifest_seal() writes for it, and
 * what a device holding it looks for. Opening and verifying an envelope is the device core's
 * (libfwrel/device/fwrel_dev.h; fwrel_device_read_manifest() runs it).
 * @return 0; FWREL_EKEY (not RSA-4096, X25519 or EC P-256)
 */
int fwrel_manifest_recipient_type(int *type, const fwrel_pkey *key) FWREL_WUR;

/* The secure-FOTA-environment-ESP32 compatibility profile (docs/manifest.md section 5). */
#define FWREL_SECURE_FOTA_LEN 1024

/**
 * Make the 1024-byte secure-fota manifest: RSA-4096-PKCS1v1.5(app_desc) ||
 * RSA-4096-PKCS1v1.5(SHA256withRSA-3072 PKCS#1 v1.5 signature of app_desc).
 * @param app_desc  the image's 256-byte esp_app_desc_t
 * @param sign_key  RSA-3072 private key; enc_key: the devices' RSA-4096 public key
 */
int fwrel_manifest_securefota_make(uint8_t out[FWREL_SECURE_FOTA_LEN], const uint8_t app_desc[256],
                                   const fwrel_pkey *sign_key, const fwrel_pkey *enc_key) FWREL_WUR;

/**
 * Read it back as such a device does: decrypt both blocks with dec_key (RSA-4096
 * private), verify the signature with verify_key (RSA-3072 public).
 * @return 0; FWREL_EVERIFY (decryption or signature); FWREL_EKEY
 */
int fwrel_manifest_securefota_read(uint8_t app_desc[256], const uint8_t in[FWREL_SECURE_FOTA_LEN],
                                   const fwrel_pkey *dec_key,
                                   const fwrel_pkey *verify_key) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
