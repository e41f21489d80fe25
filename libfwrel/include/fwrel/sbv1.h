/*
 * sbv1.h - Secure Boot V1 app signatures, ESP32 (spec/esp-formats.md section 3).
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
#include "fwrel/keystore.h"
#include "fwrel/report.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FWREL_SBV1_BLOCK_LEN 68

/** Parse a 68-byte block. @return 0 or FWREL_EFORMAT. */
int fwrel_sbv1_parse_block(uint32_t *version, uint8_t sig[64], const uint8_t *block, size_t len)
    FWREL_WUR;

/**
 * Deterministic ECDSA P-256 (RFC 6979, HMAC-SHA256) over a SHA-256 digest.
 * @param sig  receives r||s big-endian
 * @return 0; FWREL_EKEY if the key is not a P-256 private key
 */
int fwrel_sbv1_sign_digest(uint8_t sig[64], const fwrel_pkey *key, const uint8_t digest[32])
    FWREL_WUR;

/** Verify r||s over a digest. @return 0 or FWREL_EVERIFY. */
int fwrel_sbv1_verify_digest(const uint8_t sig[64], const fwrel_pkey *key,
                             const uint8_t digest[32]) FWREL_WUR;

/**
 * Sign an image file: out = image || block. Streaming, atomic.
 * The input must be a sound image with nothing past image_len; unless
 * ignore_chip, its chip must have SBv1 (ESP32).
 *
 * @param sig  NULL to sign with key (private); else a 64-byte r||s made
 *             elsewhere, checked against key (public) before use
 */
int fwrel_sbv1_sign(const char *in_path, const char *out_path, unsigned out_flags,
                    const fwrel_pkey *key, const uint8_t *sig, int ignore_chip,
                    fwrel_espimg *img) FWREL_WUR;

/** SHA-256 of the image a signer must sign (what --digest-out exports), with the same checks. */
int fwrel_sbv1_signing_digest(uint8_t out[32], const char *in_path, int ignore_chip) FWREL_WUR;

/**
 * What `espsecure verify-signature --version 1` answers: data = file minus
 * its last 68 bytes; version must be 0; the signature must verify with key.
 * @return 0 valid; FWREL_EVERIFY invalid; other codes for errors
 */
int fwrel_sbv1_verify_compat(fwrel_report *report, fwrel_src *src, const fwrel_pkey *key)
    FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
