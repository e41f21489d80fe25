/*
 * fwrel_dev_crypto.h - the crypto port of the device core (fwrel_dev.h): the few primitives
 * docs/manifest.md uses, behind a table of functions, so that one core runs on OpenSSL (the
 * host, port_openssl.c) and on mbedTLS (ESP-IDF v5's 3.x, Debian's 2.28: port_mbedtls.c).
 *
 * Every function returns 0 on success and non-zero on any failure (a bad input and a failure
 * of the library are not told apart: the core turns both into the step's reason). The core
 * has already checked every length it passes. Contexts live in the caller's fwrel_dev_ctx;
 * a port whose context is larger than FWREL_DEV_CTX_MAX keeps a pointer there instead.
 */
#ifndef FWREL_DEV_CRYPTO_H
#define FWREL_DEV_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Storage of one hash or cipher context (mbedTLS 2.28's GCM context is 424 bytes on x86-64,
 *  ESP-IDF's hardware one about 420 on rv32; a port checks its size at compile time). */
#define FWREL_DEV_CTX_MAX 1024

typedef union fwrel_dev_ctx {
    uint64_t align_u64;
    void *align_ptr;
    uint8_t bytes[FWREL_DEV_CTX_MAX];
} fwrel_dev_ctx;

/** Signature algorithms (docs/manifest.md section 2). */
enum fwrel_dev_sig_alg {
    FWREL_DEV_SIG_NONE = 0,
    FWREL_DEV_SIG_RSA_PSS = 1, /**< rsa-pss-sha256: RSA-3072, PSS, MGF1-SHA-256, salt 32 */
    FWREL_DEV_SIG_ECDSA = 2,   /**< ecdsa-p256-sha256: DER signature over SHA-256 */
    FWREL_DEV_SIG_ED25519 = 3, /**< ed25519: 64 bytes, pure Ed25519 over the message */
};

/** Recipient types (docs/manifest.md section 3). */
enum fwrel_dev_rcpt {
    FWREL_DEV_RCPT_RSA4096 = 1, /**< RSA-4096-OAEP-SHA256 */
    FWREL_DEV_RCPT_X25519 = 2,  /**< X25519, HKDF-SHA256, AES-256-GCM key wrap */
    FWREL_DEV_RCPT_P256 = 3,    /**< ECDH P-256, HKDF-SHA256, AES-256-GCM key wrap */
};

typedef struct fwrel_dev_crypto {
    const char *name; /**< "openssl", "mbedtls" */

    /** SHA-256: start, update (any lengths), finish (releases the context). */
    int (*sha256_start)(fwrel_dev_ctx *ctx);
    int (*sha256_update)(fwrel_dev_ctx *ctx, const uint8_t *data, size_t len);
    int (*sha256_finish)(fwrel_dev_ctx *ctx, uint8_t out[32]);
    /** Releases a started context that will not be finished. */
    void (*sha256_abort)(fwrel_dev_ctx *ctx);

    /**
     * AES-256-GCM, streaming. start takes the whole AAD (mbedTLS 2.28 takes it at once);
     * update: every call but the last a multiple of 16 bytes, in == out allowed; finish:
     * encrypting, writes the tag; decrypting, compares it in constant time (non-zero when it
     * differs). finish and abort release the context.
     */
    int (*gcm_start)(fwrel_dev_ctx *ctx, int encrypt, const uint8_t key[32], const uint8_t iv[12],
                     const uint8_t *aad, size_t aad_len);
    int (*gcm_update)(fwrel_dev_ctx *ctx, const uint8_t *in, uint8_t *out, size_t len);
    int (*gcm_finish)(fwrel_dev_ctx *ctx, uint8_t tag[16]);
    void (*gcm_abort)(fwrel_dev_ctx *ctx);

    /** HKDF-SHA256 (RFC 5869), extract then expand, okm_len <= 255 * 32; okm may be ikm. */
    int (*hkdf_sha256)(uint8_t *okm, size_t okm_len, const uint8_t *salt, size_t salt_len,
                       const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len);

    /**
     * Verify a signature over msg (the whole message: the port hashes as alg says).
     * @param alg   enum fwrel_dev_sig_alg, already matched to the key's SPKI by the core
     * @param spki  the signer's DER SubjectPublicKeyInfo
     * @return 0 valid; non-zero invalid or failure
     */
    int (*sig_verify)(int alg, const uint8_t *spki, size_t spki_len, const uint8_t *msg,
                      size_t msg_len, const uint8_t *sig, size_t sig_len);

    /**
     * RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) decryption with an RSA-4096 private key.
     * @param key  its DER (PKCS#1 or PKCS#8)
     * @param in   512 bytes
     * @param out  receives at most out_max bytes; *out_len their number
     */
    int (*rsa_oaep_decrypt)(uint8_t *out, size_t *out_len, size_t out_max, const uint8_t *key,
                            size_t key_len, const uint8_t *in, size_t in_len);

    /**
     * ECDH: type FWREL_DEV_RCPT_X25519 (priv 32 bytes, peer 32 bytes, RFC 7748; an all-zero
     * result is a failure) or FWREL_DEV_RCPT_P256 (priv a 32-byte big-endian scalar, peer 65
     * bytes uncompressed and on the curve); shared receives the 32-byte secret (P-256: x).
     */
    int (*ecdh)(uint8_t shared[32], int type, const uint8_t *priv, size_t priv_len,
                const uint8_t *peer, size_t peer_len);
} fwrel_dev_crypto;

/** The OpenSSL 3 port (port_openssl.c). */
extern const fwrel_dev_crypto fwrel_dev_crypto_openssl;
/** The mbedTLS port (port_mbedtls.c): 3.x (ESP-IDF v5) and 2.28. */
extern const fwrel_dev_crypto fwrel_dev_crypto_mbedtls;

#ifdef __cplusplus
}
#endif
#endif
