/*
 * encimg.h - pre-encrypted OTA images in the esp_encrypted_img 2.7.1 format
 * (spec/esp-formats.md section 4), as esp_enc_img_gen.py writes them and the
 * device's esp_encrypted_img component reads them.
 *
 * [512-byte header][ciphertext, exactly the plaintext's length]. AES-256-GCM
 * with a 16-byte IV and no AAD; the AES key is wrapped with RSA-3072 PKCS#1
 * v1.5, or derived by ECDH P-256 with an ephemeral key and HKDF-SHA256
 * (salt in the header, info "_esp_enc_img_ecc"). Both stream: memory does not
 * grow with image size. Decryption never publishes plaintext whose GCM tag has
 * not been checked.
 */
#ifndef FWREL_ENCIMG_H
#define FWREL_ENCIMG_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/io.h"
#include "fwrel/keystore.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FWREL_ENCIMG_HEADER_LEN 512
#define FWREL_ENCIMG_MAGIC      0x0788B6CFu

/** Key schemes (the header does not say which: the device is built for one, spec 11.2). */
enum fwrel_encimg_scheme {
    FWREL_ENCIMG_RSA3072 = 1, /**< RSA-3072 PKCS#1 v1.5 key wrap */
    FWREL_ENCIMG_ECC256 = 2,  /**< ECDH P-256 + HKDF-SHA256 */
};

/** The parsed header. */
typedef struct fwrel_encimg_header {
    uint32_t magic;
    uint8_t key_field[384]; /**< RSA: wrapped key; ECC: X||Y (64, big-endian), salt (32), zeros */
    uint8_t iv[16];
    uint32_t size; /**< plaintext (and ciphertext) length */
    uint8_t tag[16];
} fwrel_encimg_header;

/**
 * Parse a 512-byte header. The device checks the magic only; the reserved
 * bytes are not checked (spec 4.1).
 * @return 0, or FWREL_EFORMAT "Magic Verification Failed (0x...)"
 */
int fwrel_encimg_parse_header(fwrel_encimg_header *out,
                              const uint8_t buf[FWREL_ENCIMG_HEADER_LEN]) FWREL_WUR;

/** The scheme a key selects: RSA (exactly 3072 bits) or EC P-256; FWREL_EKEY otherwise. */
int fwrel_encimg_key_scheme(int *scheme, const fwrel_pkey *key) FWREL_WUR;

/** A streaming encryption; opaque. */
typedef struct fwrel_encimg_enc fwrel_encimg_enc;

/**
 * Start encrypting exactly size bytes to out (the header is written now and
 * completed by fwrel_encimg_enc_finish()). Fresh AES key, IV and (ECC)
 * ephemeral key and salt on every call.
 * @return 0; FWREL_EKEY (key); FWREL_EFORMAT (size over 4 GiB); FWREL_EIO
 */
int fwrel_encimg_enc_begin(fwrel_encimg_enc **enc, fwrel_out *out, const fwrel_pkey *key,
                           uint64_t size) FWREL_WUR;

/** Encrypt the next bytes (ctx is the fwrel_encimg_enc: usable as an espimg sink). */
int fwrel_encimg_enc_update(void *ctx, const uint8_t *data, size_t len) FWREL_WUR;

/** Check that exactly size bytes came, write the GCM tag into the header, free enc. */
int fwrel_encimg_enc_finish(fwrel_encimg_enc *enc) FWREL_WUR;

/** Abandon an encryption (wipes the key). NULL is fine. */
void fwrel_encimg_enc_free(fwrel_encimg_enc *enc);

/**
 * Encrypt src (from its current position to its end) to out, for the holder of
 * the private half of key (a public key is enough). Fresh AES key, IV and (ECC)
 * ephemeral key and salt on every call.
 * @return 0; FWREL_EKEY (key), FWREL_EFORMAT (input over 4 GiB), FWREL_EIO
 */
int fwrel_encimg_encrypt(fwrel_out *out, fwrel_src *src, const fwrel_pkey *key) FWREL_WUR;

/**
 * Decrypt an encrypted image the way the device does, to out_path: a temporary
 * file published only after the GCM tag checks; on any failure nothing is left.
 *
 * The file must be exactly 512 + size bytes (checked before any crypto).
 * @param key    the device's private key (RSA-3072 or P-256)
 * @param flags  FWREL_OUT_* (io.h)
 * @return 0; FWREL_EFORMAT (magic, sizes); FWREL_EVERIFY (the key does not
 *         unwrap, or the tag does not match: corrupt or wrong key); FWREL_EKEY; FWREL_EIO
 */
int fwrel_encimg_decrypt(const char *out_path, unsigned flags, fwrel_src *src,
                         const fwrel_pkey *key) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
