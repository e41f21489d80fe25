/*
 * keystore.h - key files, passphrase sources and key generation.
 *
 * Private keys are held as EVP_PKEY so an HSM key fits the same slot later.
 * Private keys are written as encrypted PKCS#8 (PBES2, scrypt KDF, AES-256-CBC)
 * unless the caller passes no passphrase explicitly; files are 0600, created
 * O_EXCL (see io.h), never replaced without FWREL_OUT_FORCE. Passphrases come
 * from the tty (no echo), a file descriptor or a file, never from argv, and
 * live in OpenSSL's secure heap.
 *
 * (The keystore directory with its index, purposes and epochs is built on
 * these functions; see the policies/keystore work.)
 */
#ifndef FWREL_KEYSTORE_H
#define FWREL_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* OpenSSL's key type, without including OpenSSL headers here. */
typedef struct evp_pkey_st fwrel_pkey;

/** Where a passphrase comes from. */
enum fwrel_pass_kind {
    FWREL_PASS_NONE = 0, /**< no passphrase: keys are read/written unencrypted */
    FWREL_PASS_TTY,      /**< prompt on /dev/tty without echo */
    FWREL_PASS_FD,       /**< read one line from a file descriptor */
    FWREL_PASS_FILE,     /**< read the first line of a file (must not be group/other readable) */
};

typedef struct fwrel_pass_src {
    int kind;         /**< enum fwrel_pass_kind */
    int fd;           /**< FWREL_PASS_FD */
    const char *file; /**< FWREL_PASS_FILE */
} fwrel_pass_src;

/** Longest passphrase accepted, in bytes. */
#define FWREL_PASS_MAX 1024

/**
 * Obtain a passphrase.
 *
 * @param out     receives a NUL-terminated passphrase in the secure heap;
 *                release with fwrel_pass_free()
 * @param len     receives its length (trailing newline removed)
 * @param src     the source
 * @param prompt  tty prompt, e.g. "Passphrase for key.pem: "
 * @param confirm for FWREL_PASS_TTY: ask twice and require equality (new keys)
 * @return 0; FWREL_EKEY for an empty passphrase, a mismatch, no tty, a
 *         passphrase file readable by group/others; FWREL_EIO on read errors
 */
int fwrel_pass_read(char **out, size_t *len, const fwrel_pass_src *src, const char *prompt,
                    int confirm) FWREL_WUR;

/** Wipe and free a passphrase. NULL is fine. */
void fwrel_pass_free(char *pass, size_t len);

/** Key types fwrel generates. */
enum fwrel_key_type {
    FWREL_KEY_RSA3072 = 1,
    FWREL_KEY_ECDSA192, /**< NIST P-192 (SBv2 on chips that use it) */
    FWREL_KEY_ECDSA256, /**< NIST P-256 (SBv2, SBv1) */
    FWREL_KEY_ECDSA384, /**< NIST P-384 (SBv2) */
};

/** Parse "rsa3072", "ecdsa192", "ecdsa256", "ecdsa384" (espsecure's scheme names). */
int fwrel_key_type_parse(int *type, const char *name) FWREL_WUR;

/** The type of a key (RSA must be 3072 bits, EC one of the three curves), or FWREL_EKEY. */
int fwrel_key_type_of(int *type, const fwrel_pkey *key) FWREL_WUR;

/** espsecure's scheme name of a type ("rsa3072", ...). */
const char *fwrel_key_type_name(int type);

/** Generate a new key pair. @return 0 or FWREL_EKEY. */
int fwrel_key_generate(fwrel_pkey **out, int type) FWREL_WUR;

/**
 * Load a private key from a PEM file: PKCS#8 (encrypted or not), PKCS#1
 * "RSA PRIVATE KEY", SEC1 "EC PRIVATE KEY" (as espsecure and openssl write
 * them). The passphrase source is used only if the key is encrypted.
 *
 * @return 0; FWREL_EFORMAT when the file holds no private key PEM; FWREL_EKEY
 *         for a wrong/missing passphrase ("wrong passphrase") or an unusable
 *         key; FWREL_EIO when unreadable
 */
int fwrel_key_load_private(fwrel_pkey **out, const char *path, const fwrel_pass_src *pass)
    FWREL_WUR;

/**
 * Load a public key: a "PUBLIC KEY" PEM, a public half of an unencrypted
 * private PEM, or (allow_raw64) the 64 raw bytes X||Y big-endian of a P-256
 * key, as `espsecure extract-public-key --version 1` writes it.
 */
int fwrel_key_load_public(fwrel_pkey **out, const char *path, int allow_raw64) FWREL_WUR;

/** Load a public key from memory (PEM, or raw 64 bytes when allow_raw64). */
int fwrel_key_parse_public(fwrel_pkey **out, const uint8_t *data, size_t len, int allow_raw64)
    FWREL_WUR;

/**
 * Write a private key as PKCS#8 PEM.
 *
 * @param pass   passphrase; NULL writes it unencrypted (only for --no-passphrase)
 * @param flags  FWREL_OUT_* (io.h); the file is 0600
 */
int fwrel_key_write_private(const fwrel_pkey *key, const char *path, const char *pass,
                            size_t pass_len, unsigned flags) FWREL_WUR;

/** Write the SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"), mode 0644. */
int fwrel_key_write_public(const fwrel_pkey *key, const char *path, unsigned flags) FWREL_WUR;

/** The 64 raw bytes X||Y big-endian of a P-256 key (SBv1 verification key). */
int fwrel_key_raw64(uint8_t out[64], const fwrel_pkey *key) FWREL_WUR;

/** Key id: SHA-256 of the DER SubjectPublicKeyInfo, as 64 lower-case hex + NUL. */
int fwrel_key_id(char out[65], const fwrel_pkey *key) FWREL_WUR;

/** Free a key. NULL is fine. */
void fwrel_key_free(fwrel_pkey *key);

#ifdef __cplusplus
}
#endif
#endif
