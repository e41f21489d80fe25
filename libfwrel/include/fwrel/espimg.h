/*
 * espimg.h - ESP-IDF application images (docs/esp-formats.md §1).
 *
 * fwrel_espimg_parse() reads an image strictly and streaming (memory does not
 * grow with image size): header, chip, segments, checksum, appended SHA-256
 * and the esp_app_desc_t. Structural faults (magic, segment count, lengths,
 * bounds, truncation) are errors; facts a verifier judges (checksum and hash
 * validity, trailing bytes, chip revision range) are reported in the struct.
 */
#ifndef FWREL_ESPIMG_H
#define FWREL_ESPIMG_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/io.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FWREL_ESPIMG_MAGIC        0xE9
#define FWREL_ESPIMG_HEADER_LEN   24
#define FWREL_ESPIMG_MAX_SEGMENTS 16 /* ESP_IMAGE_MAX_SEGMENTS */
#define FWREL_ESPIMG_SEG_MAX      (16u << 20) /* a segment is below 16 MiB (esp_image_format.c) */
#define FWREL_APP_DESC_MAGIC      0xABCD5432u
#define FWREL_APP_DESC_OFFSET     0x20
#define FWREL_APP_DESC_LEN        256

/** SBv2 signature schemes, as bits (fwrel_chip.sbv2_schemes). */
enum fwrel_sbv2_scheme {
    FWREL_SCHEME_NONE = 0,
    FWREL_SCHEME_RSA3072 = 1 << 0,
    FWREL_SCHEME_ECDSA192 = 1 << 1,
    FWREL_SCHEME_ECDSA256 = 1 << 2,
    FWREL_SCHEME_ECDSA384 = 1 << 3,
};

/** What fwrel knows of a chip (docs/esp-formats.md §1.7, §1.9, §2.4, §2.5). */
typedef struct fwrel_chip {
    const char *name;          /**< "esp32", "esp32c3", ... (esptool's names) */
    uint16_t id;               /**< image header chip_id */
    unsigned sbv2_blocks;      /**< signature blocks the device checks (1 or 3); 0: no SBv2 */
    unsigned sbv2_schemes;     /**< FWREL_SCHEME_* bits the device accepts */
    int sbv1;                  /**< 1 if Secure Boot V1 app signing exists (ESP32 only) */
    unsigned key_digest_len;   /**< bytes of the key digest in eFuse: 32, or 16 on ESP32-C2 */
    uint32_t bootloader_offset; /**< esptool BOOTLOADER_FLASH_OFFSET */
    /**
     * Flash-mapped windows, [start, end): esptool IROM_MAP_* and DROM_MAP_* (esptool/targets/).
     * A segment loaded there must sit in the file at its load address modulo the MMU page
     * (docs/esp-formats.md §1.3). All zero when not known: no alignment is checked then.
     */
    uint32_t irom_map[2];
    uint32_t drom_map[2];
    uint8_t mmu_page_log2_min; /**< smallest MMU page elf2image allows, log2 */
    uint8_t mmu_page_log2_max; /**< largest, log2; 16 (64 KiB) on most chips */
    /**
     * 1 where the chip's soc_caps.h sets SOC_MMU_PAGE_SIZE_CONFIGURABLE (ESP-IDF v5.5.5: C2, C6,
     * C61, H2): esp_image_format.c verify_segment_header() then reads the app descriptor's
     * magic at segment 0's data and refuses an app without it ("Failed to fetch app description
     * header!").
     */
    int app_desc_required;
} fwrel_chip;

/** The chip with that header id, or NULL. */
const fwrel_chip *fwrel_chip_by_id(uint16_t id);

/** The chip with that name ("esp32s3", case-insensitive, "-" ignored: "ESP32-S3"), or NULL. */
const fwrel_chip *fwrel_chip_by_name(const char *name);

/** The i-th chip of the table (for listings), NULL past the end. */
const fwrel_chip *fwrel_chip_at(size_t i);

/**
 * 1 if addr lies in one of the chip's flash-mapped windows (irom_map, drom_map), else 0
 * (also for a NULL chip or one whose windows are not known).
 */
int fwrel_chip_flash_mapped(const fwrel_chip *chip, uint32_t addr);

/** One segment. */
typedef struct fwrel_espimg_segment {
    uint32_t load_addr;
    uint32_t data_len;
    uint64_t data_offset; /**< offset of the segment's data from the image's first byte */
} fwrel_espimg_segment;

/** esp_app_desc_t (docs/esp-formats.md §1.6). Text fields are NUL-terminated copies. */
typedef struct fwrel_app_desc {
    uint32_t secure_version;
    char version[33];
    char project_name[33];
    char time[17];
    char date[17];
    char idf_ver[33];
    uint8_t app_elf_sha256[32];
    uint16_t min_efuse_blk_rev_full;
    uint16_t max_efuse_blk_rev_full;
    uint8_t mmu_page_size; /**< log2; 0 = unset */
} fwrel_app_desc;

/** A parsed image. */
typedef struct fwrel_espimg {
    /* header (docs/esp-formats.md §1.2) */
    uint8_t segment_count;
    uint8_t spi_mode;
    uint8_t spi_speed; /**< low nibble of byte 3 */
    uint8_t spi_size;  /**< high nibble of byte 3 */
    uint32_t entry_addr;
    uint8_t wp_pin;
    uint16_t chip_id;
    const fwrel_chip *chip; /**< NULL if the chip id is unknown */
    uint8_t min_chip_rev;
    uint16_t min_chip_rev_full;
    uint16_t max_chip_rev_full;
    int hash_appended;

    fwrel_espimg_segment segments[FWREL_ESPIMG_MAX_SEGMENTS];

    /* checksum (docs/esp-formats.md §1.4) */
    uint8_t checksum_stored;
    uint8_t checksum_computed;
    int checksum_ok;

    /* appended SHA-256 (docs/esp-formats.md §1.5); meaningful when hash_appended */
    uint8_t sha256_stored[32];
    uint8_t sha256_computed[32];
    int sha256_ok;

    /** image_len as the device computes it: through the checksum, plus 32 if hash_appended. */
    uint64_t image_len;
    /** Size of the whole input; bytes past image_len are a signature or trailing data. */
    uint64_t file_len;

    int has_app_desc; /**< 0 for images before IDF v3.2 (no magic at 0x20) */
    fwrel_app_desc app_desc;

    /**
     * log2 of the MMU page that flash-mapped segments were checked against: the descriptor's
     * mmu_page_size when the chip allows it, else the chip's smallest page; 0 when the chip's
     * flash windows are not known and nothing was checked.
     */
    uint8_t mmu_page_log2;
} fwrel_espimg;

/** A consumer of the image bytes, called in order as they are read. */
typedef int (*fwrel_sink_fn)(void *ctx, const uint8_t *data, size_t len);

/** Options of fwrel_espimg_parse(); a NULL pointer means all defaults. */
typedef struct fwrel_espimg_opts {
    /** Called with every byte of [0, image_len), in order (e.g. to copy the image while parsing). */
    fwrel_sink_fn sink;
    void *sink_ctx;
    /**
     * An EVP_MD_CTX * (void * keeps OpenSSL out of this header) the caller
     * initialised, fed with every byte of [0, image_len). When it is SHA-256
     * the parser derives the appended-hash check from a copy of it instead of
     * hashing the image twice.
     */
    void *md;
} fwrel_espimg_opts;

/**
 * Parse an image from the current position of src (normally offset 0).
 *
 * Reads [0, image_len) only; src->pos is image_len afterwards, and
 * out->file_len is src->size. Offsets in out count from the image's first
 * byte (the file offset when src starts at 0). Memory use is bounded (one
 * 64 KiB buffer) whatever the image size.
 *
 * Checked, as the device does (docs/esp-formats.md §1.2-§1.5, §1.8): magic 0xE9, hash_appended
 * 0 or 1, 1..16 segments, each length a multiple of 4 and below 16 MiB, each
 * segment's data inside the file, and, for a known chip, a flash-mapped
 * segment's data offset equal to its load address modulo the MMU page
 * (mmu_page_log2). Not errors (reported): checksum, hash, trailing bytes
 * (file_len > image_len), chip id and revisions, non-zero checksum padding.
 *
 * @param out   filled in (no allocation; nothing to free)
 * @param src   the image
 * @param opts  NULL or options
 * @return 0 when the structure is sound (checksum_ok / sha256_ok tell the
 *         rest); FWREL_EFORMAT with a reason for a malformed image ("invalid
 *         magic byte 0x..", "segment 3: length 0x.. not a multiple of 4",
 *         "17 segments, expected 1 to 16", "segment 2: length 0x.. past the end of
 *         the file ...", "truncated: ..."); FWREL_EIO on a read or digest
 *         error; a sink's own error code.
 */
int fwrel_espimg_parse(fwrel_espimg *out, fwrel_src *src, const fwrel_espimg_opts *opts) FWREL_WUR;

/**
 * The device's image checks that need no eFuse state: checksum and, when
 * appended, the SHA-256.
 * @return 0, or FWREL_EVERIFY "checksum mismatch (stored 0x.., computed 0x..)"
 *         / "image hash mismatch".
 */
int fwrel_espimg_check_integrity(const fwrel_espimg *img) FWREL_WUR;

/**
 * The same check for an image given to be signed, encrypted or released: there a corrupt image
 * is bad input, not a verdict, so the code is FWREL_EFORMAT (the message is the same). A verifier
 * (fwrel-verify) uses fwrel_espimg_check_integrity(): there it is its refusal.
 * @return 0, or FWREL_EFORMAT "checksum mismatch ..." / "image hash mismatch ...".
 */
int fwrel_espimg_check_input(const fwrel_espimg *img) FWREL_WUR;

/** Flash size nibble as text ("4MB"), "?" if unknown. */
const char *fwrel_espimg_flash_size_name(uint8_t nibble);

/** SPI mode as text ("DIO"), "?" if unknown. */
const char *fwrel_espimg_spi_mode_name(uint8_t mode);

#ifdef __cplusplus
}
#endif
#endif
