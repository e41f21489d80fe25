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

#endif
