/* test_device.c - device profiles (strict YAML, line:column errors) and device verdicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/device.h"
#include "fwrel/key.h"
#include "fwrel/sbv2.h"
#include "testimg.h"
#include "testutil.h"
#include "util.h"

static int parse(const char *yaml)
{
    fwrel_device *d = NULL;
    int rc = fwrel_device_parse(&d, (const uint8_t *)yaml, strlen(yaml));
    fwrel_device_free(d);
    return rc;
}

static void expect_bad(const char *yaml, const char *msg)
{
    assert_int_equal(parse(yaml), FWREL_EFORMAT);
    if (strstr(fwrel_error_last()->message, msg) == NULL)
        fail_msg("'%s' does not contain '%s'", fwrel_error_last()->message, msg);
}

static void test_profiles(void **state)
{
    (void)state;
    assert_int_equal(parse("chip: esp32\npartition_size: 0x100000\n"), 0);
    assert_int_equal(parse("chip: ESP32-S3\nchip_revision: \"0.2\"\npartition_size: 4096\n"
                           "secure_boot:\n  mode: v2\n  key_digests: ["
                           "cf73768470bac20d92c6d1fc2f455f69dfe334848067275524533b761f663049]\n"
                           "  revoked: [1]\nanti_rollback: {secure_version: 3, field_bits: 16}\n"
                           "running: {version: \"1.0\", secure_version: 3}\n"),
                     0);
    expect_bad("chip: esp32\npartition_size: 4096\ncolour: red\n", "3:1: unknown key 'colour'");
    expect_bad("chip: esp32\nchip: esp32c3\npartition_size: 4096\n", "2:1: duplicate key 'chip'");
    expect_bad("a: &x [1]\nb: *x\n", "anchors are not allowed");
    expect_bad("chip: esp32\npartition_size: lots\n",
               "2:17: partition_size must be a whole number");
    expect_bad("chip: esp32\npartition_size: 99999999999999999999999\n", "2:17:");
    expect_bad("chip: esp32\npartition_size: 4095\n", "multiple of 4096");
    expect_bad("chip: esp99\npartition_size: 4096\n", "1:7: unknown chip 'esp99'");
    expect_bad("chip: esp32\npartition_size: 4096\nsecure_boot: {mode: v2, key_digests: [zz]}\n",
               "key digest must be 32 bytes of hex");
    expect_bad("chip: esp32\npartition_size: 4096\nsecure_boot: {mode: v2, key_digests: [a, b]}\n",
               "esp32 has 1 key digest slot, 2 given");
    expect_bad("chip: esp32c3\npartition_size: 4096\nsecure_boot: {mode: v1}\n",
               "has no Secure Boot V1");
    expect_bad("chip: esp32\npartition_size: 4096\nanti_rollback: {secure_version: 40}\n",
               "secure_version");
    expect_bad("x: [[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
               "nested too deeply");
    expect_bad("", "empty document");
    /* A device that reads manifests pins its product and channels (the manifest section is
     * checked after them: its key files are not reached here). */
    expect_bad("chip: esp32\npartition_size: 4096\nproduct: thermo\nchannel: staging\n",
               "4:10: channel 'staging' is not dev, beta or prod");
    expect_bad("chip: esp32\npartition_size: 4096\nproduct: thermo\nchannel: prod\n"
               "channels: [beta]\n",
               "5:11: give channel: or channels:, not both");
    expect_bad("chip: esp32\npartition_size: 4096\nchannels: [beta, beta]\n",
               "3:18: channel 'beta' listed twice");
    expect_bad("chip: esp32\npartition_size: 4096\nchannels: []\n",
               "3:11: channels lists 1 to 3 of dev, beta, prod");
    expect_bad("chip: esp32\npartition_size: 4096\nproduct: \"\"\n",
               "3:10: product must not be empty");
    assert_int_equal(parse("chip: esp32\npartition_size: 4096\nproduct: thermo\n"
                           "channels: [dev, beta, prod]\n"),
                     0);
    expect_bad("chip: [esp32\n", "1:");
}

static int verify_file(const char *profile, const char *image)
{
    fwrel_device *d = NULL;
    fwrel_report *r = NULL;
    fwrel_src src;
    int rc = fwrel_device_parse(&d, (const uint8_t *)profile, strlen(profile));
    if (rc)
        fail_msg("profile: %s", fwrel_error_last()->message);
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_int_equal(fwrel_src_open(&src, image, FWREL_IMAGE_MAX), 0);
    rc = fwrel_device_verify_image(r, d, &src);
    fwrel_src_close(&src);
    fwrel_report_free(r);
    fwrel_device_free(d);
    return rc;
}

static void expect_reject(const char *profile, const char *image, const char *step)
{
    assert_int_equal(verify_file(profile, image), FWREL_EVERIFY);
    if (strstr(fwrel_error_last()->message, step) == NULL)
        fail_msg("'%s' does not name '%s'", fwrel_error_last()->message, step);
}

static void digest_hex(char out[65], const char *rel)
{
    size_t len;
    uint8_t *d = testutil_read(testutil_vector_path(rel), &len);
    assert_non_null(d);
    assert_int_equal(len, 32);
    fwrel_hex(out, d, 32);
    free(d);
}

static void test_vectors(void **state)
{
    (void)state;
    char a[65], b[65], c[65], p[2048], img[1024];
    if (testutil_vectors() == NULL) {
        print_message("skipped: no vectors\n");
        skip();
    }
    digest_hex(a, "keys/test-sbv2-rsa3072-a.pubkey-digest.bin");
    digest_hex(b, "keys/test-sbv2-rsa3072-b.pubkey-digest.bin");
    digest_hex(c, "keys/test-sbv2-rsa3072-c.pubkey-digest.bin");
#define C3                                                                                         \
    "chip: esp32c3\nchip_revision: \"0.4\"\npartition_size: %s\nsecure_boot: {mode: v2, "          \
    "key_digests: [%s, %s, %s], revoked: [%s]}\nanti_rollback: {secure_version: %s}\n"
#define V(rel) (snprintf(img, sizeof(img), "%s", testutil_vector_path(rel)), img)
    snprintf(p, sizeof(p), C3, "0x100000", a, "none", "none", "", "0");
    assert_int_equal(
        verify_file(p, V("sbv2/esp32c3-idf5.3-hello_world-Jan13242342.sbv2-rsa3072-a.bin")), 0);
    /* espsecure says valid; the device checks the key digest and the scheme. */
    expect_reject(
        p,
        V("tampered/"
          "esp32c3-idf5.3-hello_world-Jan13242342.sbv2-rsa3072-a.pubkey-flip-crcfixed.bin"),
        "sbv2.accept");
    expect_reject(
        p,
        V("tampered/"
          "esp32c3-idf5.3-hello_world-Jan13242342.sbv2-rsa3072-a.version-flip-crcfixed.bin"),
        "RSA signing scheme selected");
    expect_reject(
        p, V("tampered/esp32c3-idf5.3-hello_world-Jan13242342.sbv2-rsa3072-a.payload-flip.bin"),
        "image.");
    snprintf(p, sizeof(p), C3, "0x100000", a, "none", "none", "0", "0");
    expect_reject(p, V("sbv2/esp32c3-idf5.3-hello_world-Jan13242342.sbv2-rsa3072-a.bin"),
                  "revoked eFuse slot");
    snprintf(p, sizeof(p), C3, "0x2B000", a, "none", "none", "", "0");
    expect_reject(p, V("sbv2/esp32c3-idf5.3-hello_world-Jan13242342.sbv2-rsa3072-a.bin"),
                  "partition.fit");
    snprintf(p, sizeof(p), C3, "0x100000", a, "none", "none", "", "1");
    expect_reject(p, V("sbv2/esp32c3-idf5.3-hello_world-Jan13242342.sbv2-rsa3072-a.bin"),
                  "anti-rollback");
    /* Three blocks: C3 checks all three, so key c alone in eFuse accepts. */
    snprintf(p, sizeof(p), C3, "0x100000", "none", "none", c, "", "0");
    assert_int_equal(
        verify_file(p, V("sbv2/esp32c3-idf5.3-hello_world-Jan13242342.sbv2-rsa3072-abc.bin")), 0);
    /* A C3 image on an ESP32 profile: the chip id. */
    snprintf(p, sizeof(p),
             "chip: esp32\npartition_size: 0x100000\nsecure_boot: {mode: v2, key_digests: [%s]}\n",
             a);
    expect_reject(p, V("sbv2/esp32c3-idf5.3-hello_world-Jan13242342.sbv2-rsa3072-a.bin"),
                  "Mismatch chip id");
    /* ESP32 checks block 0 only: an ECDSA-signed ESP32 image is refused on the scheme. */
    expect_reject(p, V("sbv2/esp32-idf5.1.2-hello_world-ErisdarDemo.sbv2-ecdsa256-a.bin"),
                  "RSA signing scheme selected");
    assert_int_equal(
        verify_file(p, V("sbv2/esp32-idf5.1.2-hello_world-ErisdarDemo.sbv2-rsa3072-a.bin")), 0);
}

static void test_block0_only_on_esp32(void **state)
{
    (void)state;
    const char *dir = testutil_tmpdir();
    char img[256], signed1[256], signed2[256], p[1024], hex[65];
    fwrel_pkey *k1 = NULL, *k2 = NULL;
    uint8_t dg[32];
    testimg_opts o = {.chip = "esp32"};
    snprintf(img, sizeof(img), "%s/e.bin", dir);
    snprintf(signed1, sizeof(signed1), "%s/e1.bin", dir);
    snprintf(signed2, sizeof(signed2), "%s/e2.bin", dir);
    assert_int_equal(testimg_write(img, &o), 0);
    assert_int_equal(fwrel_key_generate(&k1, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_key_generate(&k2, FWREL_KEY_RSA3072), 0);
    fwrel_sbv2_sign_opts so = {.count = 1, .signers = {{k1, NULL, 0}}, .ignore_chip = 1};
    assert_int_equal(fwrel_sbv2_sign(img, signed1, 0, &so, NULL), 0);
    so.signers[0].key = k2;
    so.append = 1;
    assert_int_equal(fwrel_sbv2_sign(signed1, signed2, 0, &so, NULL), 0);
    assert_int_equal(fwrel_sbv2_key_digest(dg, k2), 0);
    fwrel_hex(hex, dg, 32);
    snprintf(p, sizeof(p),
             "chip: esp32\npartition_size: 0x100000\nsecure_boot: {mode: v2, key_digests: [%s]}\n",
             hex);
    /* Block 1 is valid and signed by the trusted key, but ESP32 looks at block 0 only. */
    expect_reject(p, signed2, "sbv2.accept");
    fwrel_key_free(k1);
    fwrel_key_free(k2);
    testutil_rmtree(dir);
}

/* Sign a testimg with one SBv2 key (ignore_chip: format only), give the key's digest in hex. */
static void sign_with(const char *in, const char *out, fwrel_pkey *k, char hex[65])
{
    uint8_t dg[32];
    fwrel_sbv2_sign_opts so = {.count = 1, .signers = {{k, NULL, 0}}, .ignore_chip = 1};
    assert_int_equal(fwrel_sbv2_sign(in, out, 0, &so, NULL), 0);
    assert_int_equal(fwrel_sbv2_key_digest(dg, k), 0);
    fwrel_hex(hex, dg, 32);
}

static void expect_step_msg(const char *profile, const char *image, const char *msg)
{
    assert_int_equal(verify_file(profile, image), FWREL_EVERIFY);
    if (strstr(fwrel_error_last()->message, msg) == NULL)
        fail_msg("'%s' does not contain '%s'", fwrel_error_last()->message, msg);
}

/*
 * ESP-IDF v5.5.5 esp_image_format.c verify_segment_header(): on the chips whose soc_caps.h sets
 * SOC_MMU_PAGE_SIZE_CONFIGURABLE (C2, C6, C61, H2) an app without the descriptor's magic at 0x20
 * is refused ("Failed to fetch app description header!"); other chips load it.
 */
static void test_app_desc_required(void **state)
{
    (void)state;
    const char *dir = testutil_tmpdir();
    char img[256], sig[256], p[1024], hex[65];
    fwrel_pkey *rsa = NULL, *p256 = NULL;
    assert_int_equal(fwrel_key_generate(&rsa, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_key_generate(&p256, FWREL_KEY_ECDSA256), 0);
    static const struct {
        const char *chip;
        int required;
    } chips[] = {{"esp32c6", 1}, {"esp32h2", 1}, {"esp32c2", 1}, {"esp32c61", 1},
                 {"esp32c3", 0}, {"esp32s3", 0}, {"esp32", 0},   {"esp32c5", 0}};
    for (size_t i = 0; i < sizeof(chips) / sizeof(chips[0]); i++) {
        int ecdsa_only =
            strcmp(chips[i].chip, "esp32c2") == 0 || strcmp(chips[i].chip, "esp32c61") == 0;
        for (int desc = 0; desc < 2; desc++) {
            testimg_opts o = {.chip = chips[i].chip, .no_app_desc = !desc};
            snprintf(img, sizeof(img), "%s/%s-%d.bin", dir, chips[i].chip, desc);
            snprintf(sig, sizeof(sig), "%s/%s-%d.signed", dir, chips[i].chip, desc);
            assert_int_equal(testimg_write(img, &o), 0);
            sign_with(img, sig, ecdsa_only ? p256 : rsa, hex);
            snprintf(p, sizeof(p),
                     "chip: %s\npartition_size: 0x100000\nsecure_boot: {mode: v2, key_digests: "
                     "[%.*s]}\n",
                     chips[i].chip, strcmp(chips[i].chip, "esp32c2") == 0 ? 32 : 64, hex);
            if (desc || !chips[i].required)
                assert_int_equal(verify_file(p, sig), 0);
            else
                expect_step_msg(p, sig,
                                "rejected at image.app-desc: Failed to fetch app description "
                                "header! (word 0x");
            /* Secure boot off: the same rule (it is the loader's, not the signature's). */
            snprintf(p, sizeof(p), "chip: %s\npartition_size: 0x100000\n", chips[i].chip);
            if (desc || !chips[i].required)
                assert_int_equal(verify_file(p, img), 0);
            else
                expect_step_msg(p, img, "rejected at image.app-desc");
        }
    }
    fwrel_key_free(rsa);
    fwrel_key_free(p256);
    testutil_rmtree(dir);
}

/*
 * CONFIG_SECURE_BOOT_ECDSA_KEY_LEN_*: the device's build takes one curve and refuses a block of
 * another before it looks at the key (secure_boot_signatures_app.c validate_signature_block):
 * "ECDSA curve mismatch", even with that key's digest in eFuse. Default P-256 (Kconfig default).
 */
static void test_ecdsa_curve(void **state)
{
    (void)state;
    const char *dir = testutil_tmpdir();
    char img[256], s192[256], s256[256], p[1024], h192[65], h256[65];
    fwrel_pkey *k192 = NULL, *k256 = NULL;
    testimg_opts o = {.chip = "esp32c6"};
    snprintf(img, sizeof(img), "%s/c6.bin", dir);
    snprintf(s192, sizeof(s192), "%s/c6-p192.bin", dir);
    snprintf(s256, sizeof(s256), "%s/c6-p256.bin", dir);
    assert_int_equal(testimg_write(img, &o), 0);
    assert_int_equal(fwrel_key_generate(&k192, FWREL_KEY_ECDSA192), 0);
    assert_int_equal(fwrel_key_generate(&k256, FWREL_KEY_ECDSA256), 0);
    sign_with(img, s192, k192, h192);
    sign_with(img, s256, k256, h256);
#define C6E                                                                                        \
    "chip: esp32c6\npartition_size: 0x100000\nsecure_boot: {mode: v2, scheme: ecdsa%s, "           \
    "key_digests: [%s, %s]}\n"
    snprintf(p, sizeof(p), C6E, "", h192, h256);
    expect_step_msg(p, s192,
                    "rejected at sbv2.accept: no valid signature: block 0 ECDSA curve mismatch: "
                    "actual (curve_id 1), expected (curve_id 2)");
    assert_int_equal(verify_file(p, s256), 0);
    snprintf(p, sizeof(p), C6E, ", ecdsa_curve: p256", h192, h256);
    expect_step_msg(p, s192, "ECDSA curve mismatch: actual (curve_id 1), expected (curve_id 2)");
    snprintf(p, sizeof(p), C6E, ", ecdsa_curve: p192", h192, h256);
    assert_int_equal(verify_file(p, s192), 0);
    expect_step_msg(p, s256, "ECDSA curve mismatch: actual (curve_id 2), expected (curve_id 1)");
    /* The profile's field: only with the ECDSA scheme, only curves the chip has. */
    expect_bad("chip: esp32c6\npartition_size: 4096\nsecure_boot: {mode: v2, ecdsa_curve: p256}\n",
               "ecdsa_curve needs mode v2 with scheme ecdsa");
    expect_bad("chip: esp32c6\npartition_size: 4096\nsecure_boot: {mode: v2, scheme: ecdsa, "
               "ecdsa_curve: p384}\n",
               "esp32c6 has no Secure Boot V2 ECDSA on p384");
    expect_bad("chip: esp32c2\npartition_size: 4096\nsecure_boot: {mode: v2, ecdsa_curve: p521}\n",
               "ecdsa_curve must be p192, p256 or p384, not 'p521'");
    snprintf(p, sizeof(p),
             "chip: esp32c5\npartition_size: 4096\nsecure_boot: {mode: v2, scheme: ecdsa, "
             "ecdsa_curve: p384, key_digests: [%s]}\n",
             h256);
    assert_int_equal(parse(p), 0);
    fwrel_key_free(k192);
    fwrel_key_free(k256);
    testutil_rmtree(dir);
}

/* Write the first n bytes of src to dst. */
static void truncate_copy(const char *src, const char *dst, size_t n)
{
    size_t len;
    uint8_t *b = testutil_read(src, &len);
    assert_non_null(b);
    assert_true(n <= len);
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
    free(b);
}

/*
 * A signed file missing the end of its signature sector: the device reads the sector from flash,
 * where the bytes never written are erased (0xFF), and only the blocks it checks. It accepts as
 * long as a block it checks is whole up to its CRC (the 16 padding bytes after it are not read).
 */
static void test_truncated_sector(void **state)
{
    (void)state;
    const char *dir = testutil_tmpdir();
    char img[256], s1[256], s2[256], cut[256], p[1024], h1[65], h2[65];
    fwrel_pkey *k1 = NULL, *k2 = NULL;
    testimg_opts o = {.chip = "esp32c3"};
    snprintf(img, sizeof(img), "%s/c3.bin", dir);
    snprintf(s1, sizeof(s1), "%s/c3-1.bin", dir);
    snprintf(s2, sizeof(s2), "%s/c3-2.bin", dir);
    snprintf(cut, sizeof(cut), "%s/cut.bin", dir);
    assert_int_equal(testimg_write(img, &o), 0);
    assert_int_equal(fwrel_key_generate(&k1, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_key_generate(&k2, FWREL_KEY_RSA3072), 0);
    sign_with(img, s1, k1, h1);
    fwrel_sbv2_sign_opts so = {.count = 1, .signers = {{k2, NULL, 0}}, .append = 1};
    assert_int_equal(fwrel_sbv2_sign(s1, s2, 0, &so, NULL), 0);
    uint8_t dg[32];
    assert_int_equal(fwrel_sbv2_key_digest(dg, k2), 0);
    fwrel_hex(h2, dg, 32);
    size_t len;
    uint8_t *b = testutil_read(s1, &len);
    assert_non_null(b);
    free(b);
    size_t sector = len - 4096;
#define C3P "chip: esp32c3\npartition_size: 0x100000\nsecure_boot: {mode: v2, key_digests: [%s]}\n"
    snprintf(p, sizeof(p), C3P, h1);
    /* The 0xFF tail gone, then block 0's padding: accepted. */
    truncate_copy(s1, cut, sector + 3 * 1216);
    assert_int_equal(verify_file(p, cut), 0);
    truncate_copy(s1, cut, sector + 1200);
    assert_int_equal(verify_file(p, cut), 0);
    /* One byte of block 0's CRC missing (it reads 0xFF): refused, as the device does. */
    truncate_copy(s1, cut, sector + 1199);
    expect_step_msg(p, cut, "rejected at sbv2.accept: no valid signature: block 0 CRC mismatch");
    /* Nothing of the sector: the erased sector holds no block. */
    truncate_copy(s1, cut, sector);
    expect_step_msg(p, cut, "rejected at sbv2.sector: no signature sector at offset 0x");
    /* Two blocks, the trusted key in block 1: block 1 must be whole up to its CRC. */
    snprintf(p, sizeof(p), C3P, h2);
    truncate_copy(s2, cut, sector + 1216 + 1200);
    assert_int_equal(verify_file(p, cut), 0);
    truncate_copy(s2, cut, sector + 1216 + 1000);
    expect_step_msg(p, cut, "block 1 CRC mismatch");
    fwrel_key_free(k1);
    fwrel_key_free(k2);
    testutil_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_block0_only_on_esp32),
        cmocka_unit_test(test_app_desc_required),
        cmocka_unit_test(test_ecdsa_curve),
        cmocka_unit_test(test_truncated_sector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
