/*
 * testimg.h - build synthetic, byte-valid ESP app images for tests, examples and benchmarks
 * (never shipped).
 *
 * The layout is elf2image's (docs/esp-formats.md §1.1-§1.6): a 24-byte header; segment 0 a DROM
 * segment whose data starts at file offset 0x20 with the esp_app_desc_t; then RAM segments
 * (DRAM, IRAM, alternating); with `irom`, a padding segment (load address 0) and an IROM segment
 * whose data lands on its MMU page as the device requires; zero padding to position % 16 == 15,
 * the checksum (seed 0xEF over segment data), and the SHA-256 of everything before it. Load
 * addresses lie in the chip's windows (esptool targets/<chip>.py), so esptool image_info accepts
 * the result and fwrel_espimg_parse() finds it sound. A zeroed testimg_opts gives a 3-segment
 * ESP32-C3 image of about 4 KiB.
 */
#ifndef FWREL_TESTIMG_H
#define FWREL_TESTIMG_H

#include <stddef.h>
#include <stdint.h>

#define TESTIMG_MAX_SEGMENTS 16

typedef struct testimg_opts {
    const char *chip;     /* esptool name, "esp32s3", "ESP32-S3" (default "esp32c3") */
    int use_chip_id;      /* 1: write chip_id below in the header instead of the chip's own */
    uint16_t chip_id;     /* e.g. an unknown id (0x1234) on an otherwise esp32c3 layout */
    uint16_t min_rev_full;  /* header min_chip_rev_full (default 0); min_chip_rev derived */
    uint16_t max_rev_full;  /* header max_chip_rev_full (0: 99, as IDF writes for S3) */
    size_t size;            /* bytes of segment data in all, padding segment included (default
                               4096); rounded down to 4. Explicit seg_len count towards it. */
    unsigned segments;      /* segments in the image, padding included: 1..16 (default 3; with
                               irom at least 3, the last two being padding and IROM) */
    uint32_t seg_len[TESTIMG_MAX_SEGMENTS]; /* data length of segment i, a multiple of 4 below
                                               16 MiB; 0: a share of size */
    int irom;               /* 1: end with a padding segment and an IROM segment (elf2image) */
    uint8_t mmu_page_log2;  /* page the IROM segment is aligned to and the descriptor declares
                               (default 16, 64 KiB) */
    int no_app_desc;        /* 1: no esp_app_desc_t (IDF before v3.2): junk at 0x20 */
    const char *version;    /* app version (default "1.0.0") */
    const char *project;    /* project name (default "fwrel-test") */
    const char *idf_ver;    /* default "v5.3" */
    uint32_t secure_version; /* default 0 */
    int no_hash;            /* 1: hash_appended = 0, no SHA-256 */
} testimg_opts;

/*
 * Build an image in a malloc'd buffer (free() it); NULL on bad options (unknown chip, a length
 * not a multiple of 4, a segment of 16 MiB or more, ...): testimg_error() says why.
 */
uint8_t *testimg_build(size_t *len, const testimg_opts *opts);

/* Build an image into a file (created or truncated); 0 on success, -1 (testimg_error()). */
int testimg_write(const char *path, const testimg_opts *opts);

/*
 * Recompute the checksum and, when hash_appended, the SHA-256 of an image a test edited in place
 * (so that only the edit it means is wrong). 0, or -1 if the segments do not fit in len.
 */
int testimg_refresh(uint8_t *img, size_t len);

/* Why the last testimg_build/testimg_write/testimg_refresh failed (static text). */
const char *testimg_error(void);

#endif
