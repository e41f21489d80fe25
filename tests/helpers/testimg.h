/* testimg.h - build synthetic, byte-valid ESP app images for tests (never shipped). */
#ifndef FWREL_TESTIMG_H
#define FWREL_TESTIMG_H

#include <stddef.h>
#include <stdint.h>

typedef struct testimg_opts {
    const char *chip;        /* "esp32s3" (default "esp32c3") */
    size_t size;             /* approximate total data bytes (default 4096) */
    const char *version;     /* app version (default "1.0.0") */
    const char *project;     /* project name (default "fwrel-test") */
    const char *idf_ver;     /* default "v5.3" */
    uint32_t secure_version; /* default 0 */
    int no_app_desc;         /* 1: no esp_app_desc_t (IDF before v3.2) */
    int no_hash;             /* 1: no appended SHA-256 */
    uint16_t min_rev_full, max_rev_full; /* default 0 and 99 */
} testimg_opts;

/* Build an image in a malloc'd buffer; NULL on failure. */
uint8_t *testimg_build(size_t *len, const testimg_opts *opts);

/* Build an image into a file; 0 on success. */
int testimg_write(const char *path, const testimg_opts *opts);

#endif
