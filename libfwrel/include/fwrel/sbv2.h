/*
 * sbv2.h - the Secure Boot V2 signature sector (docs/esp-formats.md §2).
 *
 * A signed image is [image][0xFF to a 4 KiB boundary][sector 4096 B]; the
 * sector holds up to three 1216-byte blocks (RSA-3072-PSS or ECDSA
 * P-192/P-256/P-384), then 0xFF. Byte layout as espsecure v5.3.1 writes it.
 */
#ifndef FWREL_SBV2_H
#define FWREL_SBV2_H

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

#define FWREL_SBV2_SECTOR_LEN 4096
#define FWREL_SBV2_BLOCK_LEN  1216
#define FWREL_SBV2_MAX_BLOCKS 3
#define FWREL_SBV2_MAGIC      0xE7
#define FWREL_SBV2_CRC_OFFSET 1196

/** One parsed block; facts only, judged by the verifiers. */
typedef struct fwrel_sbv2_block {
    int present; /**< byte 0 is 0xE7 */
    int crc_ok;  /**< CRC-32 of bytes 0..1195 matches bytes 1196..1199 */
    int version; /**< byte 1: 2 RSA-PSS, 3 ECDSA */
    int scheme;  /**< FWREL_SCHEME_* from version, curve id and hash type; NONE if inconsistent */
    int valid;   /**< present && crc_ok && version in {2,3} (espsecure's and the ROM's test) */
    uint8_t image_digest[48];
    size_t image_digest_len; /**< 32 (SHA-256), or 48 (SHA-384, P-384) */
    uint8_t key_digest[32];  /**< SHA-256 of the key bytes (docs/esp-formats.md §2.4); set when
                                scheme != NONE */
    uint8_t raw[FWREL_SBV2_BLOCK_LEN];
} fwrel_sbv2_block;

/** A parsed sector. */
typedef struct fwrel_sbv2_sector {
    fwrel_sbv2_block blocks[FWREL_SBV2_MAX_BLOCKS];
    unsigned leading_valid; /**< number of valid blocks before the first invalid one */
} fwrel_sbv2_sector;

/** Parse a 4096-byte sector. Never fails on content: each block says what it is. */
void fwrel_sbv2_parse_sector(fwrel_sbv2_sector *out, const uint8_t sector[FWREL_SBV2_SECTOR_LEN]);

/**
 * The scheme of a key (FWREL_SCHEME_*).
 * @return 0; FWREL_EKEY "RSA key has N bits. Only RSA-3072 is supported.",
 *         "Unsupported ECDSA curve: NAME", or another algorithm
 */
int fwrel_sbv2_key_scheme(int *scheme, const fwrel_pkey *key) FWREL_WUR;

/** The eFuse public-key digest of a key, as `espsecure digest-sbv2-public-key` (32 bytes). */
int fwrel_sbv2_key_digest(uint8_t out[32], const fwrel_pkey *key) FWREL_WUR;

/** The public key embedded in a block (caller frees with fwrel_key_free()). */
int fwrel_sbv2_block_key(fwrel_pkey **out, const fwrel_sbv2_block *block) FWREL_WUR;

/**
 * Check a block's signature over a digest.
 *
 * @param key  the key to check with; NULL uses the key embedded in the block
 * @return 0; FWREL_EVERIFY with the reason ("signature does not verify")
 */
int fwrel_sbv2_block_verify(const fwrel_sbv2_block *block, const uint8_t *digest, size_t digest_len,
                            const fwrel_pkey *key) FWREL_WUR;

/**
 * Build a block. With sig == NULL, key must be private and signs digest
 * (RSA-PSS SHA-256 salt 32, or ECDSA); with sig, key is the public key and sig
 * a signature made elsewhere: RSA raw 384 bytes big-endian, ECDSA DER (as
 * espsecure --signature), checked before use.
 *
 * @return 0; FWREL_EKEY for an unsupported key; FWREL_EVERIFY when a given sig
 *         does not verify
 */
int fwrel_sbv2_block_build(uint8_t out[FWREL_SBV2_BLOCK_LEN], const fwrel_pkey *key,
                           const uint8_t *digest, size_t digest_len, const uint8_t *sig,
                           size_t sig_len) FWREL_WUR;

/** One signer: a private key, or a public key with a signature made elsewhere. */
typedef struct fwrel_sbv2_signer {
    const fwrel_pkey *key;
    const uint8_t *sig; /**< NULL to sign with key */
    size_t sig_len;
} fwrel_sbv2_signer;

typedef struct fwrel_sbv2_sign_opts {
    fwrel_sbv2_signer signers[FWREL_SBV2_MAX_BLOCKS];
    size_t count;    /**< 1..3 new blocks */
    int append;      /**< input is already signed: keep its valid blocks, add ours */
    int ignore_chip; /**< format only: allow schemes/block counts the chip does not check */
} fwrel_sbv2_sign_opts;

/**
 * Sign an image file, streaming, to out_path (atomically; nothing written on failure).
 *
 * The input must be a sound image (fwrel_espimg_parse + integrity) with no
 * byte past image_len (the device never looks there), or with append, such an
 * image followed by 0xFF padding and a sector holding 1..2 valid blocks that
 * match it. Refuses: more blocks than the chip checks (ESP32, C2: 1), a
 * scheme the chip does not accept, more than 3 blocks in all.
 *
 * One pass over the input: the image is parsed, hashed and copied to the
 * output's temporary file together; 0xFF padding to 4 KiB (hashed), then the
 * sector: kept blocks byte for byte, new blocks, 0xFF. Every new signature is
 * verified before it is written.
 *
 * @param out_flags  FWREL_OUT_* (io.h)
 * @param img        optional: receives the parsed image
 * @return 0; FWREL_EFORMAT (input: malformed or corrupt image, trailing bytes,
 *         an already signed image without append, with append no valid block,
 *         a block that does not match, padding other than 0xFF; an RSA
 *         signature not 384 bytes, an ECDSA signature not DER); FWREL_EKEY
 *         (key, scheme, what the chip checks: "esp32 does not accept ECDSA
 *         P-256 signatures", "esp32 checks only 1 signature block, not 2");
 *         FWREL_EUSAGE (count not 1..3, "Up to 3 signature blocks are
 *         supported" with the existing ones); FWREL_EVERIFY (a given signature
 *         does not verify); FWREL_EIO (the output exists, or I/O)
 */
int fwrel_sbv2_sign(const char *in_path, const char *out_path, unsigned out_flags,
                    const fwrel_sbv2_sign_opts *opts, fwrel_espimg *img) FWREL_WUR;

/**
 * fwrel_sbv2_sign() into an output the caller opened (an unnamed scratch file:
 * fwrel_out_open_unnamed()), which it then commits, reads back or aborts: the
 * same checks and codes, the same bytes; out is left as it is on failure.
 */
int fwrel_sbv2_sign_to(fwrel_out *out, const char *in_path, const fwrel_sbv2_sign_opts *opts,
                       fwrel_espimg *img) FWREL_WUR;

/**
 * The digest a signer must sign for in_path (what --digest-out exports):
 * SHA-256, or SHA-384 when scheme is FWREL_SCHEME_ECDSA384, of the padded
 * data, after the same input checks as fwrel_sbv2_sign().
 */
int fwrel_sbv2_signing_digest(uint8_t out[48], size_t *out_len, const char *in_path, int scheme,
                              int append) FWREL_WUR;

/**
 * What `espsecure verify-signature --version 2` (v5.3.1) answers, quirks
 * included (docs/esp-formats.md §2.7): the file is at least 4096 bytes and a multiple of 4096
 * (with skip_padding only the former); the last 4 KiB is the sector. Blocks
 * 0..2 in order: an invalid block (magic, version, CRC) is skipped; a valid
 * block whose image_digest differs makes the answer invalid at once; else its
 * signature is checked with the supplied key only (the embedded key, the
 * sector tail and the version byte beyond {2, 3} play no part), the algorithm
 * being the key's. Where espsecure dies with an exception (e.g. an EC key
 * meeting an RSA block whose modulus byte is not a curve id, as in the
 * mixed RSA + ECDSA sector) the answer is invalid at once. Valid when some
 * block verified and nothing stopped the loop.
 *
 * Each block's outcome goes to report as "sbv2.block0".."sbv2.block2" (PASS,
 * FAIL, or SKIP for an invalid block or one after a stop); a size failure as
 * "sbv2.size". report may be NULL.
 *
 * @param src  the whole file (read from 0; its position moves)
 * @param key  public or private; RSA-3072 or EC P-192/256/384
 * @return 0 valid; FWREL_EVERIFY invalid (the message is espsecure's
 *         decisive line, or why it would fail); FWREL_EKEY for an unsupported
 *         key; a read error of src
 */
int fwrel_sbv2_verify_compat(fwrel_report *report, fwrel_src *src, const fwrel_pkey *key,
                             int skip_padding) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
