/*
 * fwrel_dev.h - the device side of the fwrel release manifest (docs/manifest.md section 4;
 * docs/device.md): open and verify a manifest envelope exactly as a device does, bind the
 * image bytes to it while they stream in, and make the update decision.
 *
 * Portable C99, freestanding: no malloc, no stdio, no OS calls. Every buffer is the
 * caller's (sizes below); the crypto is reached through a port (fwrel_dev_crypto.h). The
 * step names and reasons are those of libfwrel's fwrel-verify --manifest --device.
 *
 * Memory the caller provides (docs/device.md "Memory"):
 *   fwrel_dev_work      FWREL_DEV_WORK_SIZE + contexts (37,136 bytes on rv32): the decrypted
 *                       signed.json and the crypto contexts; wiped before return
 *   fwrel_dev_manifest  1,480 bytes on rv32: the accepted body
 *   fwrel_dev_result    FWREL_DEV_REASON_MAX bytes: the first failing step and its reason
 *   fwrel_dev_bind      1,120 bytes per stream being bound
 * Stack: bench/README.md (measured for rv32imc -Os, without the port's own stack).
 */
#ifndef FWREL_DEV_H
#define FWREL_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel_dev_crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sizes of docs/manifest.md sections 1-3. */
#define FWREL_DEV_ENVELOPE_MAX   (64 * 1024) /**< the whole envelope (manifest.fwm) */
#define FWREL_DEV_SIGNED_MAX     (32 * 1024) /**< signed.json */
#define FWREL_DEV_BODY_MAX       (16 * 1024) /**< the canonical body */
#define FWREL_DEV_MAX_SIGS       8           /**< signatures in signed.json */
#define FWREL_DEV_MAX_RECIPIENTS 8           /**< recipient entries in an envelope */
#define FWREL_DEV_MAX_TYPES      16          /**< device_types entries */
#define FWREL_DEV_MAX_TRUSTED    8           /**< trusted signer keys */
#define FWREL_DEV_MAX_CHANNELS   3           /**< release channels a device takes */
#define FWREL_DEV_SIG_MAX        512         /**< bytes of one signature */
#define FWREL_DEV_JSON_DEPTH     16          /**< nesting the JSON reader accepts */

/* Room the work area keeps in front of the plaintext: the signed message ("fwrel-manifest-v1",
 * 0x00, body) is laid over signed.json's '{"manifest":' in place, without a copy. */
#define FWREL_DEV_HEADROOM  6
#define FWREL_DEV_WORK_SIZE (FWREL_DEV_HEADROOM + FWREL_DEV_SIGNED_MAX)

#define FWREL_DEV_DETAIL_MAX 320 /**< one step's reason, NUL included (truncated beyond) */
#define FWREL_DEV_REASON_MAX 512 /**< "<step>: <reason>", NUL included */

/** Return codes. */
enum fwrel_dev_rc {
    FWREL_DEV_OK = 0,
    FWREL_DEV_EREJECT = 1, /**< the manifest (or image) is refused: result.first says where */
    FWREL_DEV_EUSAGE = 2,  /**< the configuration or the arguments are wrong */
    FWREL_DEV_ECRYPTO = 4, /**< the crypto port failed on something that is not the input */
};

/** Verdict of one step (the values of libfwrel's enum fwrel_verdict). */
enum fwrel_dev_verdict {
    FWREL_DEV_PASS = 0,
    FWREL_DEV_FAIL = 1,
    FWREL_DEV_SKIP = 2,
    FWREL_DEV_INFO = 3,
};

/**
 * Receives every step as it is decided, in the device's order (may be NULL).
 * @param ctx      the caller's
 * @param name     the step's stable name ("manifest.open", "manifest.signature", ...)
 * @param verdict  enum fwrel_dev_verdict
 * @param detail   one line, at most FWREL_DEV_DETAIL_MAX - 1 characters
 */
typedef void (*fwrel_dev_step_fn)(void *ctx, const char *name, int verdict, const char *detail);

/** A trusted signer: its DER SubjectPublicKeyInfo (Ed25519, ECDSA P-256, RSA-3072 e=65537). */
typedef struct fwrel_dev_key {
    const uint8_t *spki;
    size_t len;
} fwrel_dev_key;

/** The device's own recipient key (docs/manifest.md section 3). */
typedef struct fwrel_dev_recipient {
    uint8_t type;      /**< FWREL_DEV_RCPT_* */
    uint8_t keyid[32]; /**< SHA-256 of its SubjectPublicKeyInfo (fwrel-keygen prints it) */
    /** FWREL_DEV_RCPT_RSA4096: the private key's DER (PKCS#1 or PKCS#8);
     *  FWREL_DEV_RCPT_X25519: the 32-byte private key; FWREL_DEV_RCPT_P256: the 32-byte
     *  big-endian private scalar. Borrowed; the core never copies it. */
    const uint8_t *key;
    size_t key_len;
} fwrel_dev_recipient;

/** What the device is, holds and has installed (the Kconfig / NVS of docs/device.md). */
typedef struct fwrel_dev_config {
    const fwrel_dev_crypto *crypto; /**< the port */
    fwrel_dev_recipient recipient;
    fwrel_dev_key trusted[FWREL_DEV_MAX_TRUSTED];
    size_t ntrusted;    /**< 1..8 */
    unsigned threshold; /**< 1..ntrusted */
    const char *product;
    const char *channels[FWREL_DEV_MAX_CHANNELS];
    size_t nchannels;        /**< 1..3 */
    const char *device_type; /**< "" or NULL: any */
    const char *chip;        /**< esptool chip name ("esp32c3") */
    uint16_t chip_rev;       /**< major*100+minor */
    int has_counter;         /**< 0: no counter kept yet (the counter step is not run) */
    uint64_t counter;        /**< the last installed release counter */
    int anti_rollback;       /**< 1: secure_version must be >= efuse_secure_version */
    uint32_t efuse_secure_version;
    const char *running_version; /**< the running app's version, or NULL/"" */
    int no_clock; /**< 1: no trusted clock: expiry and created are skipped, not checked */
} fwrel_dev_config;

/** One image digest: SHA-256 and size. */
typedef struct fwrel_dev_digest {
    uint8_t sha256[32];
    uint64_t size;
} fwrel_dev_digest;

/** The accepted manifest body (docs/manifest.md section 1). Strings are NUL-terminated. */
typedef struct fwrel_dev_manifest {
    char product[65];
    char device_types[FWREL_DEV_MAX_TYPES][65];
    size_t device_type_count;
    char chip[17];
    uint16_t chip_rev_min, chip_rev_max;
    char version[33];
    uint32_t secure_version;
    uint64_t counter;
    char channel[17];
    uint64_t created, expires;
    fwrel_dev_digest plain, signed_image, encrypted;
    char image_name[129];
} fwrel_dev_manifest;

/** Where a verification stopped. */
typedef struct fwrel_dev_result {
    char first[FWREL_DEV_REASON_MAX]; /**< "<step>: <reason>" of the first failure, or "" */
} fwrel_dev_result;

/** The caller's work area for fwrel_dev_verify() (not kept between calls; wiped on return). */
typedef struct fwrel_dev_work {
    uint8_t plain[FWREL_DEV_WORK_SIZE]; /**< headroom, then signed.json */
    uint8_t sig[FWREL_DEV_SIG_MAX];     /**< one decoded signature */
    uint8_t ids[FWREL_DEV_MAX_TRUSTED][32];
    uint8_t key[32];      /**< the content key */
    uint8_t kek[32];      /**< the ECDH secret, then the KEK */
    fwrel_dev_manifest m; /**< the body being read */
    fwrel_dev_ctx sha;    /**< the port's SHA-256 context */
    fwrel_dev_ctx gcm;    /**< the port's AES-256-GCM context */
} fwrel_dev_work;

/**
 * Open and verify a manifest envelope as the device does (docs/manifest.md section 4, steps
 * 1-8): bounds; this device's recipient entry; unwrap; GCM with the recipient list as AAD;
 * strict canonical signed.json and body; threshold signatures by distinct trusted keys;
 * product, channel, device type, chip and revision, expiry at now, counter, secure_version.
 *
 * Steps reported: manifest.open, manifest.parse, manifest.signature (one per signature),
 * manifest.threshold, manifest.signatures (failure only), manifest.product, manifest.channel,
 * manifest.device-type, manifest.chip, manifest.chip-rev, manifest.expiry, manifest.created,
 * manifest.counter (with has_counter), manifest.secure-version (with anti_rollback); after the
 * first failure the later device steps are reported as skipped ("not reached").
 *
 * @param out       receives the body when accepted (untouched otherwise)
 * @param res       receives the first failure ("" when accepted)
 * @param work      the caller's work area; wiped before return
 * @param cfg       the device
 * @param envelope  manifest.fwm; len its length (any: bounds are checked)
 * @param len       its length
 * @param now       the device's clock, Unix seconds (ignored with cfg->no_clock)
 * @param step      receives the steps (NULL: none); step_ctx is passed to it
 * @param step_ctx  passed to step
 * @return FWREL_DEV_OK; FWREL_DEV_EREJECT (res->first); FWREL_DEV_EUSAGE (cfg);
 *         FWREL_DEV_ECRYPTO (the port failed on a hash)
 */
int fwrel_dev_verify(fwrel_dev_manifest *out, fwrel_dev_result *res, fwrel_dev_work *work,
                     const fwrel_dev_config *cfg, const uint8_t *envelope, size_t len, uint64_t now,
                     fwrel_dev_step_fn step, void *step_ctx);

/** The two images a manifest binds (docs/manifest.md section 4 step 9). */
enum fwrel_dev_bind_kind {
    FWREL_DEV_BIND_ENCRYPTED = 0, /**< the downloaded file: step manifest.binds */
    FWREL_DEV_BIND_SIGNED = 1,    /**< the decrypted image: step manifest.signed-image */
};

/** A streaming image binding: SHA-256 over the bytes as they arrive, compared at the end. */
typedef struct fwrel_dev_bind {
    fwrel_dev_ctx sha;
    const fwrel_dev_crypto *crypto;
    fwrel_dev_digest want;
    uint8_t got_sha256[32];
    uint64_t got;
    int kind;
    int state; /**< 0 idle, 1 hashing, 2 finished */
} fwrel_dev_bind;

/**
 * Start binding a stream to the manifest's image.
 * @param b       the caller's binding state
 * @param crypto  the port
 * @param m       the accepted manifest
 * @param kind    FWREL_DEV_BIND_ENCRYPTED (image.encrypted) or FWREL_DEV_BIND_SIGNED
 *                (image.signed)
 * @return FWREL_DEV_OK; FWREL_DEV_EUSAGE; FWREL_DEV_ECRYPTO
 */
int fwrel_dev_bind_start(fwrel_dev_bind *b, const fwrel_dev_crypto *crypto,
                         const fwrel_dev_manifest *m, int kind);

/**
 * Hash the next bytes.
 * @return FWREL_DEV_OK; FWREL_DEV_EREJECT once more bytes arrived than the manifest names (they
 *         are still hashed: a caller may stop the download there, or go on to the end);
 *         FWREL_DEV_ECRYPTO; FWREL_DEV_EUSAGE (not started)
 */
int fwrel_dev_bind_update(fwrel_dev_bind *b, const uint8_t *data, size_t len);

/**
 * End the stream and compare: the size and the SHA-256 must be the manifest's.
 * @param step  receives the step (manifest.binds or manifest.signed-image; NULL: none)
 * @return FWREL_DEV_OK (same bytes); FWREL_DEV_EREJECT; FWREL_DEV_ECRYPTO; FWREL_DEV_EUSAGE
 */
int fwrel_dev_bind_finish(fwrel_dev_bind *b, fwrel_dev_result *res, fwrel_dev_step_fn step,
                          void *step_ctx);

/** Release a binding that is not finished (a cut download). NULL and finished ones are fine. */
void fwrel_dev_bind_abort(fwrel_dev_bind *b);

/**
 * The OTA code's decision before it writes an update (libfwrel's ota.decision step): with
 * anti-rollback, secure_version at least the eFuse's; with a running version, a different
 * version string.
 * @param why  receives one line (the refusal as ESP-IDF words it, or why it goes on); n its size
 * @return 1 go on with the update, 0 refuse
 */
int fwrel_dev_ota_decision(char *why, size_t n, const fwrel_dev_config *cfg,
                           const fwrel_dev_manifest *m);

/**
 * The counter to store once the new app has confirmed itself (docs/manifest.md section 4
 * step 10): m->counter. Never store it earlier (docs/device.md "Power loss").
 */
uint64_t fwrel_dev_counter_to_store(const fwrel_dev_manifest *m);

#ifdef __cplusplus
}
#endif
#endif
