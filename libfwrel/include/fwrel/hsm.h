/* hsm.h - PKCS#11 (RFC 7512) key URIs for HSM-held keys.
 *
 * This first part parses and validates `pkcs11:` URIs. A URI names a private key by the token
 * attributes and the object attributes of RFC 7512 section 2.3; the module to load comes from the
 * query attribute module-path, else from the caller, else FWREL_HSM_DEFAULT_MODULE. A PIN is
 * never accepted in the URI (pin-value is refused with FWREL_EUSAGE: a URI travels on argv);
 * pin-source=file:<path> names a 0600 file read like a passphrase file.
 */
#ifndef FWREL_HSM_H
#define FWREL_HSM_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/key.h"

/** SoftHSM2's module path on Debian, used when neither the URI nor the caller names a module. */
#define FWREL_HSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

/** Longest accepted URI, in bytes. */
#define FWREL_HSM_URI_MAX 4096

/** Presence bits of fwrel_hsm_uri.has. */
enum fwrel_hsm_uri_attr {
    FWREL_HSM_TOKEN = 1u << 0,        /**< token= (CK_TOKEN_INFO label) */
    FWREL_HSM_MANUFACTURER = 1u << 1, /**< manufacturer= */
    FWREL_HSM_SERIAL = 1u << 2,       /**< serial= */
    FWREL_HSM_MODEL = 1u << 3,        /**< model= */
    FWREL_HSM_OBJECT = 1u << 4,       /**< object= (CKA_LABEL) */
    FWREL_HSM_ID = 1u << 5,           /**< id= (CKA_ID, percent-encoded bytes) */
    FWREL_HSM_MODULE = 1u << 6,       /**< module-path= */
    FWREL_HSM_PIN_SOURCE = 1u << 7,   /**< pin-source=file:... */
};

/** A parsed `pkcs11:` URI; every string is percent-decoded and NUL-terminated. */
typedef struct fwrel_hsm_uri {
    unsigned has;           /**< enum fwrel_hsm_uri_attr bits of the attributes present */
    char token[33];         /**< token label, at most 32 bytes (CK_TOKEN_INFO.label) */
    char manufacturer[33];  /**< at most 32 bytes (CK_TOKEN_INFO.manufacturerID) */
    char serial[17];        /**< at most 16 bytes (CK_TOKEN_INFO.serialNumber) */
    char model[17];         /**< at most 16 bytes (CK_TOKEN_INFO.model) */
    char object[256];       /**< object label, at most 255 bytes */
    uint8_t id[128];        /**< object id bytes */
    size_t id_len;          /**< bytes used in id */
    char module_path[1024]; /**< absolute module path */
    char pin_source[1024];  /**< path of the PIN file (the part after "file:") */
} fwrel_hsm_uri;

/**
 * Whether a key argument names an HSM key (starts with "pkcs11:").
 *
 * @param arg a key argument as given to a command; NULL gives 0
 * @return 1 for a pkcs11: URI, else 0
 */
int fwrel_hsm_is_uri(const char *arg);

/**
 * Parse and validate an RFC 7512 `pkcs11:` URI naming one private key.
 *
 * Accepted path attributes: token, manufacturer, serial, model, object, id, type (only
 * "private"); query attributes: module-path (absolute), pin-source (only "file:<absolute path>").
 * Each attribute at most once; values percent-decoded, no NUL byte after decoding; at least one
 * of object and id must be present. Other attributes (RFC 7512 allows vendor ones) are refused so
 * that a typo cannot widen the match.
 *
 * @param out    filled on success; cleared on failure
 * @param uri    NUL-terminated URI, at most FWREL_HSM_URI_MAX bytes
 * @return 0; FWREL_EUSAGE when the URI carries pin-value (a PIN must not be on argv);
 *         FWREL_EFORMAT for any other malformed or unsupported URI (message says which part)
 */
int fwrel_hsm_uri_parse(fwrel_hsm_uri *out, const char *uri) FWREL_WUR;

/** An open HSM private key: a loaded module, a logged-in session and the key's handle. */
typedef struct fwrel_hsm_key fwrel_hsm_key;

/** Largest signature fwrel_hsm_key_sign() writes (an RSA-4096 signature; ECDSA DER is smaller). */
#define FWREL_HSM_SIG_MAX 512

/**
 * Open the private key a `pkcs11:` URI names.
 *
 * Loads the module (the URI's module-path, else module, else FWREL_HSM_DEFAULT_MODULE) with
 * dlopen(RTLD_NOW | RTLD_LOCAL), initializes it (CKF_OS_LOCKING_OK; an already initialized
 * module is accepted), picks the first slot whose token matches the URI's token attributes,
 * opens a session, logs in as CKU_USER with the PIN from the URI's pin-source file, else from
 * pin_src, and finds exactly one CKO_PRIVATE_KEY matching object/id. The public key is read
 * from the matching CKO_PUBLIC_KEY object (same id/label), else from the private object's
 * attributes. RSA-3072, EC P-256 and Ed25519 keys are accepted (Ed25519 only signs messages:
 * fwrel_hsm_key_sign_message()). PIN buffers are wiped. Not thread-safe: open, use and close
 * keys from one thread (keys opened through one module share its initialization).
 *
 * @param out      receives the key; release with fwrel_hsm_key_close()
 * @param uri      a `pkcs11:` URI (fwrel_hsm_uri_parse())
 * @param module   module path used when the URI has no module-path; NULL: the default
 * @param pin_src  where the PIN comes from when the URI has no pin-source (a
 *                 FWREL_PASS_FILE must be 0600, as for passphrases)
 * @return 0; FWREL_EUSAGE (pin-value in the URI); FWREL_EFORMAT (malformed URI);
 *         FWREL_EIO ("cannot load PKCS#11 module PATH: ...", an unreadable PIN file);
 *         FWREL_EKEY (no matching token, "wrong PIN", no key or more than one key matching
 *         the URI, an unsupported key type, any other PKCS#11 failure by its CKR_ name); the
 *         messages do not repeat the URI (callers name it)
 */
int fwrel_hsm_key_open(fwrel_hsm_key **out, const char *uri, const char *module,
                       const fwrel_pass_src *pin_src) FWREL_WUR;

/**
 * The key's public half.
 *
 * @param key  an open key
 * @return an EVP_PKEY public key owned by key (valid until fwrel_hsm_key_close()); never NULL
 */
const fwrel_pkey *fwrel_hsm_key_public(const fwrel_hsm_key *key);

/**
 * Sign a SHA-256 digest on the HSM: RSA keys give an RSA-PSS signature (SHA-256, MGF1-SHA256,
 * salt length 32, as Secure Boot V2 and manifests use), EC P-256 keys an ECDSA signature
 * encoded as DER. The signature is verified with the public key in software before it is
 * returned.
 *
 * @param key      an open key
 * @param digest   the SHA-256 digest
 * @param dlen     32
 * @param sig      receives the signature, at least FWREL_HSM_SIG_MAX bytes
 * @param sig_len  receives its length
 * @return 0; FWREL_EUSAGE (dlen not 32); FWREL_EKEY (the HSM refused: CKR_ name; an Ed25519
 *         key, which signs messages only);
 *         FWREL_EVERIFY (the HSM's signature does not verify)
 */
int fwrel_hsm_key_sign(fwrel_hsm_key *key, const uint8_t *digest, size_t dlen, uint8_t *sig,
                       size_t *sig_len) FWREL_WUR;

/**
 * Sign a message: SHA-256 in software, then fwrel_hsm_key_sign(); an Ed25519 key signs the
 * whole message on the HSM (CKM_EDDSA, pure Ed25519), verified in software. Its shape fits
 * fwrel_manifest_sign_fn (manifest.h), with key as the context.
 *
 * @param ctx      the fwrel_hsm_key
 * @param msg      message bytes
 * @param len      their length
 * @param sig      receives the signature, at least FWREL_HSM_SIG_MAX bytes
 * @param sig_len  receives its length
 * @return as fwrel_hsm_key_sign()
 */
int fwrel_hsm_key_sign_message(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig,
                               size_t *sig_len) FWREL_WUR;

/**
 * The Secure Boot V2 signature of an image by this key, ready for fwrel_sbv2_sign() as an
 * external signature (fwrel_sbv2_signer key and sig): the scheme from the key, the image's
 * signing digest (fwrel_sbv2_signing_digest()), the HSM's signature over it.
 *
 * @param pub          receives a reference to the key's public key (fwrel_key_free())
 * @param sig          receives a malloc'd signature (free(); also on failure, may be NULL)
 * @param sig_len      receives its length
 * @param image_failed receives 1 when the failure is the image's (its digest), else 0
 * @param key          an open key (RSA-3072 or EC P-256)
 * @param image        the image file
 * @param append       the image is signed already: the digest of its unsigned part
 * @return 0; the codes of fwrel_sbv2_key_scheme(), fwrel_sbv2_signing_digest() and
 *         fwrel_hsm_key_sign(); FWREL_EIO (memory)
 */
int fwrel_hsm_key_sign_sbv2(fwrel_pkey **pub, uint8_t **sig, size_t *sig_len, int *image_failed,
                            fwrel_hsm_key *key, const char *image, int append) FWREL_WUR;

/**
 * Log out, close the session, finalize and unload the module, free the key. NULL is fine.
 *
 * @param key  the key to close
 */
void fwrel_hsm_key_close(fwrel_hsm_key *key);

#endif
