/*
 * key.h - key files, passphrase sources and key generation.
 *
 * Private keys are held as EVP_PKEY so an HSM key fits the same slot later.
 * Private keys are written as encrypted PKCS#8 (PBES2, scrypt KDF with N=2^14,
 * r=8, p=4 and a 16-byte salt, AES-256-CBC) unless the caller passes no
 * passphrase explicitly; files are 0600, created O_EXCL|O_NOFOLLOW (see io.h),
 * never replaced without FWREL_OUT_FORCE. Passphrases come from the tty (no
 * echo), a file descriptor or a file, never from argv, and live in OpenSSL's
 * secure heap.
 *
 * EC keys are always encoded with a named curve and an uncompressed point (as
 * espsecure writes them), whatever form the file had, so that public key files
 * and key ids do not depend on how a key was stored.
 *
 * (The keystore directory with its index, purposes and epochs is built on
 * these functions; see the policies/keystore work.)
 */
#ifndef FWREL_KEY_H
#define FWREL_KEY_H

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
    FWREL_PASS_MEM,      /**< a passphrase read and checked already, given again at each read
                              (a release's preflight keeps the one that unlocked a key) */
};

typedef struct fwrel_pass_src {
    int kind;         /**< enum fwrel_pass_kind */
    int fd;           /**< FWREL_PASS_FD */
    const char *file; /**< FWREL_PASS_FILE */
    const char *mem;  /**< FWREL_PASS_MEM: the passphrase (not NUL-terminated; the caller's) */
    size_t mem_len;   /**< its length, 1..FWREL_PASS_MAX */
} fwrel_pass_src;

/** Longest passphrase accepted, in bytes. */
#define FWREL_PASS_MAX 1024

/**
 * Obtain a passphrase: one line, up to its newline (exclusive) or the end of
 * input. Other bytes, '\r' included, are kept, as `openssl -passin file:` keeps
 * them. FWREL_PASS_FD reads byte by byte and stops after the newline, so each
 * call takes the next line (one per key). FWREL_PASS_FILE reads the first line
 * and refuses a file that is not regular or that group or others can read or
 * write. FWREL_PASS_TTY turns echo off on /dev/tty and restores the terminal on
 * every path; a signal during the prompt (SIGINT, SIGTERM, SIGTSTP, ...) is
 * delivered after the terminal is restored.
 *
 * @param out     receives a NUL-terminated passphrase in the secure heap;
 *                release with fwrel_pass_free()
 * @param len     receives its length (1..FWREL_PASS_MAX)
 * @param src     the source
 * @param prompt  tty prompt, e.g. "Passphrase for key.pem: " (NULL: a default)
 * @param confirm for FWREL_PASS_TTY: ask twice and require equality (new keys)
 * @return 0; FWREL_EKEY for an empty or too long passphrase, a mismatch, no
 *         tty, an interrupted prompt, FWREL_PASS_NONE, a passphrase file that
 *         is not regular ("passphrase file is not a regular file") or is
 *         readable ("passphrase file is readable by group or others") or
 *         writable by group/others; FWREL_EUSAGE for a negative fd; FWREL_EIO
 *         when the file cannot be opened or read
 */
int fwrel_pass_read(char **out, size_t *len, const fwrel_pass_src *src, const char *prompt,
                    int confirm) FWREL_WUR;

/** Wipe and free a passphrase from fwrel_pass_read() (its whole buffer). NULL is fine. */
void fwrel_pass_free(char *pass, size_t len);

/**
 * Set up the secure heap (OpenSSL's, 64 KiB, mlock'd) that passphrases and key bytes are
 * kept in, once per process; a command calls it at start. Where mlock is refused the secure
 * allocations fall back to the ordinary heap (still wiped on free). Calling it again does
 * nothing.
 */
void fwrel_pass_secure_heap(void);

/** Key types fwrel generates. */
enum fwrel_key_type {
    FWREL_KEY_RSA3072 = 1,
    FWREL_KEY_ECDSA192, /**< NIST P-192 (SBv2 on chips that use it) */
    FWREL_KEY_ECDSA256, /**< NIST P-256 (SBv2, SBv1) */
    FWREL_KEY_ECDSA384, /**< NIST P-384 (SBv2) */
};

/**
 * Parse "rsa3072", "ecdsa192", "ecdsa256", "ecdsa384" (espsecure's scheme names).
 * @return 0, or FWREL_EUSAGE for another name
 */
int fwrel_key_type_parse(int *type, const char *name) FWREL_WUR;

/**
 * The type of a key: RSA must be 3072 bits, EC one of the three curves.
 * @return 0; FWREL_EKEY with espsecure's messages "RSA key has N bits. Only
 *         RSA-3072 is supported." or "Unsupported ECDSA curve: NAME", or
 *         "unsupported key type NAME" for other algorithms
 */
int fwrel_key_type_of(int *type, const fwrel_pkey *key) FWREL_WUR;

/** espsecure's scheme name of a type ("rsa3072", ...); "unknown" for another value. */
const char *fwrel_key_type_name(int type);

/**
 * Generate a new key pair: RSA-3072 with e = 65537, or EC on P-192/P-256/P-384.
 * @param out  receives the key; free with fwrel_key_free()
 * @return 0; FWREL_EUSAGE for an unknown type; FWREL_EKEY when OpenSSL fails
 */
int fwrel_key_generate(fwrel_pkey **out, int type) FWREL_WUR;

/**
 * Load a private key from a PEM file (at most 64 KiB): PKCS#8 (encrypted or
 * not), PKCS#1 "RSA PRIVATE KEY", SEC1 "EC PRIVATE KEY", legacy encrypted PEM
 * ("Proc-Type: 4,ENCRYPTED"), as espsecure and openssl write them. The
 * passphrase source is read only when OpenSSL asks for it, i.e. only if the key
 * is encrypted, and at most once. Any key algorithm loads; fwrel_key_type_of()
 * says whether it can sign for Secure Boot.
 *
 * @param out  receives the key; free with fwrel_key_free()
 * @param path the PEM file
 * @param pass the passphrase source; NULL is FWREL_PASS_NONE
 * @return 0; FWREL_EFORMAT "no PEM private key found"; FWREL_EKEY "wrong
 *         passphrase", "key is encrypted: a passphrase is needed ..." (no
 *         source), "cannot decrypt the key: ..." (an encryption OpenSSL
 *         cannot undo, e.g. scrypt above its memory cap), or the passphrase
 *         source's own error (fwrel_pass_read()); FWREL_EIO when unreadable
 */
int fwrel_key_load_private(fwrel_pkey **out, const char *path,
                           const fwrel_pass_src *pass) FWREL_WUR;

/**
 * As fwrel_key_load_private(), with a passphrase already in memory (e.g. one
 * passphrase read once for a whole keystore run).
 * @param pass  the passphrase, or NULL for an unencrypted key
 * @return as fwrel_key_load_private(); "wrong passphrase" (FWREL_EKEY) when
 *         the key does not decrypt with it, "key is encrypted: ..." when NULL
 */
int fwrel_key_load_private_pass(fwrel_pkey **out, const char *path, const char *pass,
                                size_t pass_len) FWREL_WUR;

/**
 * Load a public key: a "PUBLIC KEY" PEM, a public half of an unencrypted
 * private PEM, or (allow_raw64) the 64 raw bytes X||Y big-endian of a P-256
 * key, as `espsecure extract-public-key --version 1` writes it.
 *
 * @param out  receives a public-only key; free with fwrel_key_free()
 * @return 0; FWREL_EFORMAT when the file holds none of these (or 64 bytes
 *         that are not a P-256 point); FWREL_EIO when unreadable
 */
int fwrel_key_load_public(fwrel_pkey **out, const char *path, int allow_raw64) FWREL_WUR;

/** Load a public key from memory (PEM, or 64 raw bytes when allow_raw64), as above. */
int fwrel_key_parse_public(fwrel_pkey **out, const uint8_t *data, size_t len,
                           int allow_raw64) FWREL_WUR;

/**
 * Write a private key as PKCS#8 PEM ("BEGIN ENCRYPTED PRIVATE KEY": PBES2,
 * scrypt, AES-256-CBC; `openssl pkcs8 -passin` decrypts it), through fwrel_out.
 *
 * @param pass   passphrase (1..FWREL_PASS_MAX bytes); NULL writes the key
 *               unencrypted ("BEGIN PRIVATE KEY"; only for --no-passphrase)
 * @param flags  FWREL_OUT_* (io.h); the file is 0600
 * @return 0; FWREL_EKEY for an empty or too long passphrase or an encoding
 *         failure; FWREL_EIO (output) when the file cannot be written or exists
 */
int fwrel_key_write_private(const fwrel_pkey *key, const char *path, const char *pass,
                            size_t pass_len, unsigned flags) FWREL_WUR;

/**
 * Write the SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"), mode 0644: the same
 * bytes as `espsecure extract-public-key --version 2`.
 * @return 0; FWREL_EKEY when the key cannot be encoded; FWREL_EIO (output)
 */
int fwrel_key_write_public(const fwrel_pkey *key, const char *path, unsigned flags) FWREL_WUR;

/**
 * As fwrel_key_write_public(), with the given permission bits (a keystore's
 * public files are 0600 like everything in it).
 */
int fwrel_key_write_public_mode(const fwrel_pkey *key, const char *path, unsigned flags,
                                unsigned mode) FWREL_WUR;

/**
 * The 64 raw bytes X||Y big-endian of a P-256 key (SBv1 verification key, as
 * `espsecure extract-public-key --version 1`). @return 0 or FWREL_EKEY (not P-256)
 */
int fwrel_key_raw64(uint8_t out[64], const fwrel_pkey *key) FWREL_WUR;

/**
 * Key id: SHA-256 of the DER SubjectPublicKeyInfo (EC: named curve, uncompressed
 * point), as 64 lower-case hex + NUL. The same for a private key and its public
 * key, whatever file form either came from. @return 0 or FWREL_EKEY
 */
int fwrel_key_id(char out[65], const fwrel_pkey *key) FWREL_WUR;

/** Free a key. NULL is fine. */
void fwrel_key_free(fwrel_pkey *key);

#ifdef __cplusplus
}
#endif
#endif
