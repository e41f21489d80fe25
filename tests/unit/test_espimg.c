/* test_espimg.c - the image parser: real images against esptool's image_info, and every
 * malformation with its exact code and message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/espimg.h"
#include "testimg.h"
#include "testutil.h"
#include "util.h"

static int parse_buf(fwrel_espimg *img, const uint8_t *b, size_t len)
{
    fwrel_src src;
    fwrel_src_mem(&src, b, len);
    return fwrel_espimg_parse(img, &src, NULL);
}

static void test_synthetic_valid(void **state)
{
    (void)state;
    size_t len;
    testimg_opts o = {.chip = "esp32s3", .version = "v9.8.7", .secure_version = 5, .project = "p"};
    uint8_t *b = testimg_build(&len, &o);
    fwrel_espimg img;
    assert_int_equal(parse_buf(&img, b, len), 0);
    assert_string_equal(img.chip->name, "esp32s3");
    assert_true(img.checksum_ok && img.sha256_ok && img.has_app_desc);
    assert_string_equal(img.app_desc.version, "v9.8.7");
    assert_int_equal(img.app_desc.secure_version, 5);
    assert_int_equal(img.image_len, len);
    assert_int_equal(fwrel_espimg_check_integrity(&img), 0);
    free(b);
}

static void test_malformed(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = testimg_build(&len, NULL), *c = malloc(len + 8);
    fwrel_espimg img;
    struct {
        size_t off;
        uint8_t val;
        int code;
        const char *msg;
    } cases[] = {
        {0, 0xE8, FWREL_EFORMAT, "invalid magic byte 0xe8"},
        {1, 17, FWREL_EFORMAT, "17 segments, expected 1 to 16"},
        {1, 0, FWREL_EFORMAT, "0 segments"},
        {23, 2, FWREL_EFORMAT, "hash_appended byte is 2"},
        {28, 0x03, FWREL_EFORMAT, "segment 0: length 0x3 not a multiple of 4"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(c, b, len);
        if (cases[i].off == 28)
            memset(c + 28, 0, 4);
        c[cases[i].off] = cases[i].val;
        assert_int_equal(parse_buf(&img, c, len), cases[i].code);
        assert_non_null(strstr(fwrel_error_last()->message, cases[i].msg));
    }
    /* A length of 16 MiB, one that overflows the file, truncations. */
    memcpy(c, b, len);
    fwrel_put_le32(c + 28, 16u << 20);
    assert_int_equal(parse_buf(&img, c, len), FWREL_EFORMAT);
    assert_non_null(strstr(fwrel_error_last()->message, "16 MiB or more"));
    fwrel_put_le32(c + 28, 0xFFFFFFFCu);
    assert_int_equal(parse_buf(&img, c, len), FWREL_EFORMAT);
    fwrel_put_le32(c + 28, 0x00FFFFF0u);
    assert_int_equal(parse_buf(&img, c, len), FWREL_EFORMAT);
    assert_non_null(strstr(fwrel_error_last()->message, "past the end of the file"));
    size_t cuts[] = {0, 10, 24, 30, len - 33, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        assert_int_equal(parse_buf(&img, b, cuts[i]), FWREL_EFORMAT);
    /* Checksum and hash are facts, judged by check_integrity. */
    memcpy(c, b, len);
    c[len - 33] ^= 1;
    assert_int_equal(parse_buf(&img, c, len), 0);
    assert_false(img.checksum_ok);
    assert_int_equal(fwrel_espimg_check_integrity(&img), FWREL_EVERIFY);
    assert_non_null(strstr(fwrel_error_last()->message, "checksum mismatch"));
    memcpy(c, b, len);
    c[len - 1] ^= 1;
    assert_int_equal(parse_buf(&img, c, len), 0);
    assert_int_equal(fwrel_espimg_check_integrity(&img), FWREL_EVERIFY);
    assert_non_null(strstr(fwrel_error_last()->message, "image hash mismatch"));
    /* Trailing bytes are reported, not parsed. */
    memcpy(c, b, len);
    memset(c + len, 0xAB, 8);
    assert_int_equal(parse_buf(&img, c, len + 8), 0);
    assert_int_equal(img.file_len - img.image_len, 8);
    free(b);
    free(c);
}

static void test_no_app_desc(void **state)
{
    (void)state;
    size_t len;
    testimg_opts o = {.chip = "esp32", .no_app_desc = 1, .no_hash = 1};
    uint8_t *b = testimg_build(&len, &o);
    fwrel_espimg img;
    assert_int_equal(parse_buf(&img, b, len), 0);
    assert_false(img.has_app_desc);
    assert_false(img.hash_appended);
    assert_int_equal(fwrel_espimg_check_integrity(&img), 0);
    free(b);
}

/* The value after "label" on a line of esptool's image_info output. */
static int info_field(const char *text, const char *label, char *out, size_t n)
{
    const char *p = strstr(text, label);
    if (p == NULL)
        return -1;
    p += strlen(label);
    size_t i = 0;
    while (p[i] && p[i] != '\n' && i + 1 < n) {
        out[i] = p[i];
        i++;
    }
    out[i] = '\0';
    return 0;
}

static void test_vectors_match_esptool(void **state)
{
    (void)state;
    static const char *names[] = {
        "esp32-idf5.1.2-hello_world-ErisdarDemo", "esp32c3-idf5.3-hello_world-Jan13242342",
        "esp32s3-idf5.1.2-hello_world-Gimhan-AI", "esp32-legacy-noappdesc-hello-world-gjyoung1974"};
    if (testutil_vectors() == NULL) {
        print_message("skipped: no vectors\n");
        skip();
    }
    for (size_t i = 0; i < 4; i++) {
        char rel[256], v[128];
        size_t len, tlen;
        snprintf(rel, sizeof(rel), "images/%s.image_info.txt", names[i]);
        char *info = (char *)testutil_read(testutil_vector_path(rel), &tlen);
        assert_non_null(info);
        info = realloc(info, tlen + 1);
        info[tlen] = '\0';
        snprintf(rel, sizeof(rel), "images/%s.bin", names[i]);
        fwrel_src src;
        fwrel_espimg img;
        assert_int_equal(fwrel_src_open(&src, testutil_vector_path(rel), FWREL_IMAGE_MAX), 0);
        assert_int_equal(fwrel_espimg_parse(&img, &src, NULL), 0);
        fwrel_src_close(&src);
        (void)len;
        assert_int_equal(info_field(info, "Segments: ", v, sizeof(v)), 0);
        uint64_t segs;
        assert_int_equal(fwrel_parse_u64(&segs, v, 16), 0);
        assert_int_equal(segs, img.segment_count);
        assert_int_equal(info_field(info, "Entry point: ", v, sizeof(v)), 0);
        uint64_t entry;
        assert_int_equal(fwrel_parse_u64(&entry, v, UINT32_MAX), 0);
        assert_int_equal(entry, img.entry_addr);
        assert_int_equal(info_field(info, "Checksum: ", v, sizeof(v)), 0);
        assert_non_null(strstr(v, img.checksum_ok ? "(valid)" : "(invalid)"));
        assert_int_equal(info_field(info, "Validation hash: ", v, sizeof(v)), 0);
        char hex[65];
        fwrel_hex(hex, img.sha256_stored, 32);
        assert_memory_equal(v, hex, 64);
        assert_non_null(strstr(v, img.sha256_ok ? "(valid)" : "(invalid)"));
        assert_int_equal(info_field(info, "Chip ID: ", v, sizeof(v)), 0);
        uint64_t id;
        *strchr(v, ' ') = '\0';
        assert_int_equal(fwrel_parse_u64(&id, v, 0xFFFF), 0);
        assert_int_equal(id, img.chip_id);
        if (info_field(info, "App version: ", v, sizeof(v)) == 0) {
            assert_true(img.has_app_desc);
            assert_string_equal(v, img.app_desc.version);
            assert_int_equal(info_field(info, "Project name: ", v, sizeof(v)), 0);
            assert_string_equal(v, img.app_desc.project_name);
            assert_int_equal(info_field(info, "ESP-IDF: ", v, sizeof(v)), 0);
            assert_string_equal(v, img.app_desc.idf_ver);
            assert_int_equal(info_field(info, "Secure version: ", v, sizeof(v)), 0);
            assert_int_equal(fwrel_parse_u64(&id, v, UINT32_MAX), 0);
            assert_int_equal(id, img.app_desc.secure_version);
        } else {
            assert_false(img.has_app_desc);
        }
        free(info);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_valid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_no_app_desc),
        cmocka_unit_test(test_vectors_match_esptool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
