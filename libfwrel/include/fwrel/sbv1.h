/*
 * sbv1.h - Secure Boot V1 app signatures, ESP32 (docs/esp-formats.md §3).
 *
 * The signature block (68 bytes) follows the image directly: u32 LE version 0,
 * then r||s, 32 bytes each, big-endian. ECDSA P-256 over SHA-256 of the whole
 * image, with k derived per RFC 6979 (HMAC-SHA256), so the bytes equal
 * espsecure's.
 */
#ifndef FWREL_SBV1_H
#define FWREL_SBV1_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/espimg.h"
#include "fwrel/io.h"
#include "fwrel/key.h"
#include "fwrel/report.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FWREL_SBV1_BLOCK_LEN 68

/**
 * Parse a 68-byte block.
 * @param version  receives the u32 LE version word (0 is the only one defined)
 * @param sig      receives r||s big-endian
 * @return 0, or FWREL_EFORMAT when len is not 68
 */
int fwrel_sbv1_parse_block(uint32_t *version, uint8_t sig[64], const uint8_t *block,
                           size_t len) FWREL_WUR;

/** Build the block espsecure appends: version word 0, then sig (r||s big-endian). */
void fwrel_sbv1_build_block(uint8_t block[FWREL_SBV1_BLOCK_LEN], const uint8_t sig[64]);

/**
 * Deterministic ECDSA P-256 (RFC 6979 section 3.2, HMAC-SHA256) over a SHA-256
 * digest, s not normalised (as python-ecdsa sign_digest_deterministic). The
 * private scalar and k live in OpenSSL's secure heap and are wiped.
 * @param sig  receives r||s big-endian (zeroed on failure)
 * @return 0; FWREL_EKEY if the key is not a P-256 private key, or OpenSSL fails
 */
int fwrel_sbv1_sign_digest(uint8_t sig[64], const fwrel_pkey *key,
                           const uint8_t digest[32]) FWREL_WUR;

/**
 * Verify r||s over a digest with a P-256 key (public or private).
 * @return 0; FWREL_EVERIFY "Signature is not valid."; FWREL_EKEY if the key is
 *         not P-256
 */
int fwrel_sbv1_verify_digest(const uint8_t sig[64], const fwrel_pkey *key,
                             const uint8_t digest[32]) FWREL_WUR;

/**
 * Sign an image file: out = image || block. Streaming (the image is parsed,
 * copied and hashed in one pass), atomic: on any failure nothing is left at
 * out_path.
 * The input must be a sound image with nothing past image_len; unless
 * ignore_chip, its chip must have SBv1 (ESP32).
 *
 * @param out_flags  FWREL_OUT_* (io.h); the output is 0644
 * @param sig  NULL to sign with key (private); else a 64-byte r||s made
 *             elsewhere, checked against key (public) before use
 * @param img  NULL, or receives the parsed image on success
 * @return 0; FWREL_EKEY for a key that is not P-256 (or not private when sig
 *         is NULL), or "esp32c3 has no Secure Boot V1 app signing";
 *         FWREL_EFORMAT for a malformed image, a checksum or hash mismatch, or
 *         "N bytes past the end of the image: the device would not look there";
 *         FWREL_EVERIFY "the signature does not verify with the given public
 *         key"; FWREL_EIO for read errors and output errors (an existing output
 *         without FWREL_OUT_FORCE; fwrel_error.output set)
 */
int fwrel_sbv1_sign(const char *in_path, const char *out_path, unsigned out_flags,
                    const fwrel_pkey *key, const uint8_t *sig, int ignore_chip,
                    fwrel_espimg *img) FWREL_WUR;

/**
 * fwrel_sbv1_sign() into an output the caller opened (an unnamed scratch file:
 * fwrel_out_open_unnamed()), which it then commits, reads back or aborts: the
 * same checks and codes, the same bytes; out is left as it is on failure.
 */
int fwrel_sbv1_sign_to(fwrel_out *out, const char *in_path, const fwrel_pkey *key,
                       const uint8_t *sig, int ignore_chip, fwrel_espimg *img) FWREL_WUR;

/**
 * SHA-256 of the image a signer must sign (what --digest-out exports), with
 * the same checks and codes as fwrel_sbv1_sign().
 */
int fwrel_sbv1_signing_digest(uint8_t out[32], const char *in_path, int ignore_chip) FWREL_WUR;

/**
 * What `espsecure verify-signature --version 1` answers: data = file minus
 * its last 68 bytes; version must be 0; the signature must verify with key.
 * The image is not parsed (espsecure does not). Steps recorded in report (may
 * be NULL): sbv1.key (on failure), sbv1.size (on failure), sbv1.version,
 * sbv1.data (INFO), sbv1.signature.
 *
 * @param src  read from offset 0 to its end (its position moves)
 * @param key  P-256 public or private key
 * @return 0 valid; FWREL_EVERIFY invalid (fewer than 68 bytes, version != 0,
 *         bad signature); FWREL_EKEY for a key that is not P-256; read errors
 */
int fwrel_sbv1_verify_compat(fwrel_report *report, fwrel_src *src, const fwrel_pkey *key) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
