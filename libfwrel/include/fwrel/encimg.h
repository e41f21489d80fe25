/*
 * encimg.h - pre-encrypted OTA images in the esp_encrypted_img 2.7.1 format
 * (docs/esp-formats.md §4), as esp_enc_img_gen.py writes them and the
 * device's esp_encrypted_img component reads them.
 *
 * [512-byte header][ciphertext, exactly the plaintext's length]. AES-256-GCM
 * with a 16-byte IV and no AAD; the AES key is wrapped with RSA-3072 PKCS#1
 * v1.5, or derived by ECDH P-256 with an ephemeral key and HKDF-SHA256
 * (salt in the header, info "_esp_enc_img_ecc"). Both stream: memory does not
 * grow with image size. Decryption never publishes plaintext whose GCM tag has
 * not been checked.
 *
 * What the device checks, in its order (docs/esp-formats.md §4.3), is what
 * fwrel_encimg_decrypt() checks: the magic; the key (RSA: a PKCS#1 v1.5
 * plaintext of at most 32 bytes, a shorter one zero-extended to 32 as the
 * device does; ECC: the ephemeral key is a P-256 point);
 * exactly `size` ciphertext bytes and nothing after them; the GCM tag. The
 * header is not authenticated (no AAD), and the device checks neither the 88
 * reserved bytes nor, in the ECC scheme, the 288 bytes after the salt: nor
 * does fwrel (they are reported in fwrel_encimg_header, and fwrel always
 * writes them as zeros).
 */
#ifndef FWREL_ENCIMG_H
#define FWREL_ENCIMG_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/io.h"
#include "fwrel/key.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FWREL_ENCIMG_HEADER_LEN 512
#define FWREL_ENCIMG_MAGIC      0x0788B6CFu

/** Key schemes (the header does not say which: docs/esp-formats.md §11.2). */
enum fwrel_encimg_scheme {
    FWREL_ENCIMG_RSA3072 = 1, /**< RSA-3072 PKCS#1 v1.5 key wrap */
    FWREL_ENCIMG_ECC256 = 2,  /**< ECDH P-256 + HKDF-SHA256 */
};

/** The header's fields (docs/esp-formats.md §4.1; offsets in the comments). */
typedef struct fwrel_encimg_header {
    uint32_t magic;         /**< 0: u32 LE, FWREL_ENCIMG_MAGIC for both schemes */
    uint8_t key_field[384]; /**< 4: RSA: wrapped key (big-endian); ECC: ephemeral X||Y
                                 (64, big-endian), HKDF salt (32), 288 unchecked bytes */
    uint8_t iv[16];         /**< 388: GCM IV (16 bytes: J0 = GHASH(IV)) */
    uint32_t size;          /**< 404: u32 LE, plaintext (and ciphertext) length */
    uint8_t tag[16];        /**< 408: GCM tag */
    uint8_t reserved[88];   /**< 424: zeros when written; not checked by the device */
} fwrel_encimg_header;

/**
 * Parse a 512-byte header (any bytes: fuzzed). Only the magic is checked, as
 * the device does first; the size is checked against the file by
 * fwrel_encimg_decrypt().
 *
 * @param out  filled in (also on failure, as far as parsed)
 * @param buf  the first 512 bytes of the file
 * @return 0, or FWREL_EFORMAT "Magic Verification Failed (0x..., expected 0x0788b6cf)"
 */
int fwrel_encimg_parse_header(fwrel_encimg_header *out,
                              const uint8_t buf[FWREL_ENCIMG_HEADER_LEN]) FWREL_WUR;

/**
 * Serialize a header: the inverse of fwrel_encimg_parse_header() (every field
 * written as given, magic and reserved bytes included).
 *
 * @param buf  receives 512 bytes
 * @param h    the fields
 */
void fwrel_encimg_build_header(uint8_t buf[FWREL_ENCIMG_HEADER_LEN], const fwrel_encimg_header *h);

/**
 * The scheme a key selects: RSA of exactly 3072 bits, or EC on P-256 (public
 * or private).
 *
 * @param scheme  receives FWREL_ENCIMG_RSA3072 or FWREL_ENCIMG_ECC256
 * @return 0, or FWREL_EKEY "esp_encrypted_img takes an RSA-3072 or an EC P-256
 *         key ..." (another size, curve or algorithm)
 */
int fwrel_encimg_key_scheme(int *scheme, const fwrel_pkey *key) FWREL_WUR;

/** A streaming encryption; opaque. */
typedef struct fwrel_encimg_enc fwrel_encimg_enc;

/**
 * Start encrypting exactly size bytes to out, for the holder of the private
 * half of key (the public half is enough). A fresh random AES key and IV, and
 * for ECC a fresh ephemeral key pair and salt, on every call. The header is
 * appended to out now, with a zero tag, and completed in place by
 * fwrel_encimg_enc_finish() (fwrel_out_pwrite()): out must not be published
 * before that returns 0. On any failure the caller aborts out. From 1 MiB on,
 * the encryption and the writes to out run on a thread of the session's own,
 * beside the caller's work: out is then the session's until
 * fwrel_encimg_enc_finish() or fwrel_encimg_enc_free() returns.
 *
 * @param enc   receives the session; end it with fwrel_encimg_enc_finish() or
 *              fwrel_encimg_enc_free()
 * @param out   the output, kept by the caller; must outlive the session
 * @param key   the recipient's key (scheme per fwrel_encimg_key_scheme())
 * @param size  the plaintext length the header announces
 * @return 0; FWREL_EKEY (an unsuitable key, no random bytes, an OpenSSL
 *         failure); FWREL_EFORMAT "larger than 4 GiB ..." (size above
 *         UINT32_MAX); FWREL_EIO (out of memory, or writing out)
 */
int fwrel_encimg_enc_begin(fwrel_encimg_enc **enc, fwrel_out *out, const fwrel_pkey *key,
                           uint64_t size) FWREL_WUR;

/**
 * Encrypt the next len bytes and append them to the output (in chunks of at
 * most 64 KiB), or, on the session's thread, copy them for it. The signature
 * matches an espimg sink, so ctx may be handed to the image parser and the
 * image checked as it is encrypted.
 *
 * @param ctx  the fwrel_encimg_enc
 * @return 0; FWREL_EUSAGE when more bytes come than announced; FWREL_EKEY
 *         (OpenSSL); FWREL_EIO (writing the output); with a thread, its error
 *         may concern bytes given earlier
 */
int fwrel_encimg_enc_update(void *ctx, const uint8_t *data, size_t len) FWREL_WUR;

/**
 * Check that exactly the announced number of bytes came, compute the GCM tag
 * and write it into the header. Frees enc whatever happens; the caller then
 * commits (0) or aborts (error) the output.
 *
 * @return 0; FWREL_EUSAGE when fewer bytes came than announced; FWREL_EKEY
 *         (OpenSSL); FWREL_EIO (writing the output)
 */
int fwrel_encimg_enc_finish(fwrel_encimg_enc *enc) FWREL_WUR;

/** Abandon an encryption (the AES key schedule is wiped). NULL is fine. */
void fwrel_encimg_enc_free(fwrel_encimg_enc *enc);

/**
 * Encrypt src, from its current position to its end, to out (begin, update
 * in 64 KiB chunks, finish). The caller commits out on 0, aborts it otherwise.
 *
 * @param out  the output (kept by the caller)
 * @param src  the plaintext (kept by the caller)
 * @param key  the recipient's key, as for fwrel_encimg_enc_begin()
 * @return 0; FWREL_EKEY; FWREL_EFORMAT "larger than 4 GiB ..."; the errors of
 *         fwrel_src_read(); FWREL_EIO
 */
int fwrel_encimg_encrypt(fwrel_out *out, fwrel_src *src, const fwrel_pkey *key) FWREL_WUR;

/**
 * Decrypt an encrypted image the way the device does, to out_path: the
 * plaintext goes to a temporary file (mode 0600, as is the published file:
 * the image was encrypted because it is confidential) published only after the
 * GCM tag checks; on any failure nothing is left.
 *
 * src, from its current position to its end, must be exactly 512 + size bytes
 * (the header's size): this and the magic are checked before any allocation or
 * crypto, so a header claiming 4 GiB costs nothing.
 *
 * @param out_path  the destination
 * @param flags     FWREL_OUT_* (io.h)
 * @param src       the encrypted image (kept by the caller)
 * @param key       the device's private key: RSA-3072 or EC P-256
 * @return 0;
 *         FWREL_EFORMAT: "Magic Verification Failed ...", "N bytes: shorter than
 *         the 512-byte header", "truncated: the header announces N bytes of
 *         image, M follow it", "N bytes after the M-byte image ...", or a read
 *         error of src (fwrel_src_read());
 *         FWREL_EVERIFY: "cannot unwrap the image key: wrong key?" (RSA: bad
 *         padding or more than 32 bytes; ECC: the ephemeral key is not a P-256
 *         point), "GCM tag mismatch: the image is corrupt or the key is wrong";
 *         FWREL_EKEY: an unsuitable key (fwrel_encimg_key_scheme()), a key
 *         without its private half, an OpenSSL failure;
 *         FWREL_EIO: the output (exists, cannot be written; marked as an
 *         output error), out of memory
 */
int fwrel_encimg_decrypt(const char *out_path, unsigned flags, fwrel_src *src,
                         const fwrel_pkey *key) FWREL_WUR;

/** What a successful decryption found worth a warning (fwrel_encimg_decrypt_ex()). */
typedef struct fwrel_encimg_notes {
    /**
     * Bytes of AES key the RSA-wrapped field held: 32 as esp_enc_img_gen.py writes; fewer (0 to
     * 31) were zero-extended to 32, as the device does (esp_encrypted_img 2.7.1 with mbedtls 3.6
     * decrypts such an image too). 32 for the ECC scheme.
     */
    size_t wrapped_key_len;
} fwrel_encimg_notes;

/**
 * fwrel_encimg_decrypt(), and on success (0) fills *notes (may be NULL). An RSA-wrapped key of
 * fewer than 32 bytes is zero-extended to 32, as the device does: not an error, a note.
 */
int fwrel_encimg_decrypt_ex(const char *out_path, unsigned flags, fwrel_src *src,
                            const fwrel_pkey *key, fwrel_encimg_notes *notes) FWREL_WUR;

/**
 * fwrel_encimg_decrypt() into an output the caller opened (an unnamed scratch file:
 * fwrel_out_open_unnamed()): the same checks and codes. On 0 the GCM tag is valid and the
 * caller commits or reads it back; on failure out holds unauthenticated bytes: abort it.
 */
int fwrel_encimg_decrypt_to(fwrel_out *out, fwrel_src *src, const fwrel_pkey *key) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
