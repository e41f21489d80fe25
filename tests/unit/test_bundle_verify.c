/* test_bundle_verify.c - release bundles verified as the device would (decrypt, bind, image) and as
 * CI would (sums, record, approvals, exports); real keys, real images, real encryption. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "fixture.h"
#include "fwrel/bundle.h"
#include "fwrel/bundle_verify.h"
#include "fwrel/encimg.h"
#include "fwrel/io.h"
#include "fwrel/key.h"
#include "fwrel/manifest.h"
#include "fwrel/release.h"
#include "testimg.h"
#include "testutil.h"
#include "util.h"

static char dir[4096];    /* keys, images, profiles */
static char tmpdir[4200]; /* TMPDIR of the verifier: must stay empty */
static fwrel_pkey *img_key, *dev_key, *signer;
static uint64_t now;

static void path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static int setup(void **state)
{
    (void)state;
    char p[4300], q[4300];
    testimg_opts io = {.chip = "esp32c3", .version = "1.2.0", .secure_version = 2, .size = 20000};
    fwrel_src src;
    fwrel_out *out = NULL;

    snprintf(dir, sizeof(dir), "%s", fixture_tmpdir());
    snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", dir);
    assert_int_equal(system(NULL) != 0, 1);
    char cmd[4300];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    setenv("TMPDIR", tmpdir, 1);
    now = 1790000000;

    assert_int_equal(fwrel_key_generate(&img_key, FWREL_KEY_ECDSA256), 0);
    fixture_defer_key(img_key);
    assert_int_equal(fwrel_key_generate(&dev_key, FWREL_KEY_ECDSA256), 0);
    fixture_defer_key(dev_key);
    assert_int_equal(fwrel_key_generate(&signer, FWREL_KEY_ECDSA256), 0);
    fixture_defer_key(signer);
    path(p, sizeof(p), "img.pem");
    assert_int_equal(fwrel_key_write_private(img_key, p, NULL, 0, 0), 0);
    path(p, sizeof(p), "dev.pem");
    assert_int_equal(fwrel_key_write_private(dev_key, p, NULL, 0, 0), 0);
    path(p, sizeof(p), "s1.pub");
    assert_int_equal(fwrel_key_write_public(signer, p, 0), 0);

    /* Secure boot off: the image is its own signed image (image.hash checks it). */
    path(p, sizeof(p), "app.bin");
    assert_int_equal(testimg_write(p, &io), 0);
    path(q, sizeof(q), "app.enc");
    assert_int_equal(fwrel_src_open(&src, p, FWREL_IMAGE_MAX), 0);
    assert_int_equal(fwrel_out_open(&out, q, 0, 0644), 0);
    assert_int_equal(fwrel_encimg_encrypt(out, &src, img_key), 0);
    assert_int_equal(fwrel_out_commit(out), 0);
    fwrel_src_close(&src);

    static const char profile[] =
        "chip: esp32c3\npartition_size: 0x100000\ndevice_type: thermo-a\n"
        "anti_rollback: {secure_version: 2}\nimage_key: img.pem\n"
        "product: thermo\nchannel: prod\nmanifest: {key: dev.pem, trusted_keys: [s1.pub]}\n";
    path(p, sizeof(p), "dev.yaml");
    assert_int_equal(fwrel_io_write_file(p, profile, strlen(profile), 0, 0644), 0);
    return 0;
}

/* The manifest for enc (a file in dir); tweak_signed flips a bit of the signed image digest. */
static uint8_t *make_manifest(size_t *len, const char *enc, int tweak_signed)
{
    char tpl[256], plain[4300], encp[4300], *sj = NULL;
    size_t sj_len = 0;
    uint8_t *env = NULL;
    fwrel_manifest m;
    const fwrel_pkey *keys[1] = {signer}, *to[1] = {dev_key};
    snprintf(tpl, sizeof(tpl),
             "{\"product\": \"thermo\", \"device_types\": [\"thermo-a\"], \"channel\": \"prod\", "
             "\"counter\": 3, \"created\": %llu, \"expires\": %llu}",
             (unsigned long long)(now - 60), (unsigned long long)(now + 3600));
    path(plain, sizeof(plain), "app.bin");
    path(encp, sizeof(encp), enc);
    assert_int_equal(
        fwrel_manifest_from_images(&m, (const uint8_t *)tpl, strlen(tpl), plain, plain, encp), 0);
    if (tweak_signed)
        m.signed_image.sha256[0] ^= 1;
    assert_int_equal(fwrel_manifest_sign(&sj, &sj_len, &m, keys, 1), 0);
    assert_int_equal(fwrel_manifest_seal(&env, len, (const uint8_t *)sj, sj_len, to, 1), 0);
    free(sj);
    return env;
}

static void file_digest(fwrel_release_file *f, const char *name, const uint8_t *p, size_t n)
{
    uint8_t d[32];
    unsigned int dl = 0;
    assert_int_equal(EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL), 1);
    fwrel_hex(f->sha256, d, 32);
    f->size = n;
    snprintf(f->name, sizeof(f->name), "%s", name);
}

/* A bundle of enc (a file in dir) and fwm, a record (required approvals; bad_record: the image
 * digest of the record is another's), SHA256SUMS and an https-dir-like export copy. */
static uint8_t *make_bundle(size_t *len, const char *enc, const uint8_t *fwm, size_t fwm_len,
                            unsigned required, int bad_record, const uint8_t *copy)
{
    char p[4300], *json = NULL, *sums = NULL;
    size_t enc_len = 0, json_len = 0, sums_len = 0, app_len = 0;
    uint8_t *enc_data, *app, *out = NULL;
    fwrel_release r;
    path(p, sizeof(p), enc);
    assert_non_null(enc_data = testutil_read(p, &enc_len));
    path(p, sizeof(p), "app.bin");
    assert_non_null(app = testutil_read(p, &app_len));

    testutil_release_init(&r, "thermo", "1.2.0", "thermo-a", 3);
    r.created = now - 60;
    r.expires = now + 3600;
    memset(r.policy_sha256, 'a', 64);
    file_digest(&r.input, "", app, app_len);
    file_digest(&r.signed_image, "", app, app_len);
    file_digest(&r.image, "firmware.enc", bad_record ? app : enc_data,
                bad_record ? app_len : enc_len);
    snprintf(r.image.name, sizeof(r.image.name), "firmware.enc");
    file_digest(&r.manifest, "manifest.fwm", fwm, fwm_len);
    r.encrypted = 1;
    memset(r.sign_keys[0], 'b', 64);
    r.nsign_keys = 1;
    memset(r.manifest_signers[0], 'c', 64);
    r.nmanifest_signers = 1;
    r.manifest_threshold = 1;
    memset(r.recipients[0], 'd', 64);
    r.nrecipients = 1;
    snprintf(r.approvers[0], sizeof(r.approvers[0]), "0123456789ABCDEF0123456789ABCDEF01234567");
    r.napprovers = 1;
    r.approvals_required = required;
    assert_int_equal(fwrel_release_encode(&json, &json_len, &r), 0);

    fwrel_bundle_member m[5] = {
        {"firmware.enc", enc_data, enc_len},
        {"manifest.fwm", fwm, fwm_len},
        {"release.json", (const uint8_t *)json, json_len},
        {"exports/https-dir/thermo.bin", copy != NULL ? copy : enc_data, enc_len},
    };
    assert_int_equal(fwrel_bundle_sums(&sums, &sums_len, m, 4), 0);
    m[4] = (fwrel_bundle_member){"SHA256SUMS", (const uint8_t *)sums, sums_len};
    assert_int_equal(fwrel_bundle_write_mem(&out, len, m, 5, 1700000000), 0);
    free(enc_data);
    free(app);
    free(json);
    free(sums);
    return out;
}

static fwrel_device *load_profile(const char *name)
{
    char p[4300];
    fwrel_device *d = NULL;
    path(p, sizeof(p), name);
    assert_int_equal(fwrel_device_load(&d, p), 0);
    return d;
}

static const fwrel_step *find_step(const fwrel_report *r, const char *name)
{
    for (size_t i = 0; i < fwrel_report_count(r); i++)
        if (strcmp(fwrel_report_step(r, i)->name, name) == 0)
            return fwrel_report_step(r, i);
    return NULL;
}

static void expect_step(const fwrel_report *r, const char *name, int verdict)
{
    const fwrel_step *s = find_step(r, name);
    if (s == NULL)
        fail_msg("no step %s", name);
    if (s->verdict != verdict)
        fail_msg("step %s: verdict %d, expected %d (%s)", name, s->verdict, verdict, s->detail);
}

static void expect_rejected_at(const char *step)
{
    char want[128];
    snprintf(want, sizeof(want), "rejected at %s:", step);
    if (strncmp(fwrel_error_last()->message, want, strlen(want)) != 0)
        fail_msg("'%s' does not start with '%s'", fwrel_error_last()->message, want);
}

static void expect_tmp_empty(void)
{
    assert_int_equal(testutil_count_entries(tmpdir), 0);
}

static void test_device_good(void **state)
{
    (void)state;
    size_t fwm_len = 0, len = 0;
    uint8_t *fwm = make_manifest(&fwm_len, "app.enc", 0);
    uint8_t *b = make_bundle(&len, "app.enc", fwm, fwm_len, 0, 0, NULL);
    fwrel_device *dev = load_profile("dev.yaml");
    fwrel_report *r = NULL;
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_int_equal(fwrel_bundle_verify_device_mem(r, dev, b, len, now), 0);
    assert_null(fwrel_report_first_failure(r));
    static const char *const order[] = {"bundle.read",   "manifest.open", "manifest.binds",
                                        "ota.decision",  "image.decrypt", "manifest.signed-image",
                                        "image.chip-id", "image.hash",    "anti-rollback"};
    size_t at = 0;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const fwrel_step *s;
        while (at < fwrel_report_count(r) && strcmp(fwrel_report_step(r, at)->name, order[i]))
            at++;
        if (at == fwrel_report_count(r))
            fail_msg("step %s missing or out of order", order[i]);
        s = fwrel_report_step(r, at);
        assert_int_equal(s->verdict, FWREL_PASS);
    }
    expect_tmp_empty();
    /* An expired manifest: the device's clock a day later. */
    fwrel_report_free(r);
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_int_equal(fwrel_bundle_verify_device_mem(r, dev, b, len, now + 86400), FWREL_EVERIFY);
    expect_rejected_at("manifest.expiry");
    expect_step(r, "manifest.binds", FWREL_SKIP);
    expect_step(r, "image.decrypt", FWREL_SKIP);
    expect_tmp_empty();
    fwrel_report_free(r);
    fwrel_device_free(dev);
    free(fwm);
    free(b);
}

/* The profile pins the product and the channels: a prod release of thermo is refused by a beta
 * device (one approval would have sufficed for beta) and by another product's device. */
static void test_device_product_channel(void **state)
{
    (void)state;
    static const struct {
        const char *pins, *step, *detail;
    } cases[] = {
        {"product: thermo\nchannel: beta\n", "manifest.channel",
         "a prod release, the device takes beta"},
        {"product: thermo\nchannels: [dev, beta]\n", "manifest.channel",
         "a prod release, the device takes dev, beta"},
        {"product: oven\nchannel: prod\n", "manifest.product",
         "manifest for product thermo, the device runs oven"},
        {"product: thermo\nchannels: [beta, prod]\n", NULL, NULL},
    };
    size_t fwm_len = 0, len = 0;
    uint8_t *fwm = make_manifest(&fwm_len, "app.enc", 0);
    uint8_t *b = make_bundle(&len, "app.enc", fwm, fwm_len, 0, 0, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[512], p[4300];
        snprintf(yaml, sizeof(yaml),
                 "chip: esp32c3\npartition_size: 0x100000\ndevice_type: thermo-a\n%s"
                 "anti_rollback: {secure_version: 2}\nimage_key: img.pem\n"
                 "manifest: {key: dev.pem, trusted_keys: [s1.pub]}\n",
                 cases[i].pins);
        path(p, sizeof(p), "pins.yaml");
        assert_int_equal(fwrel_io_write_file(p, yaml, strlen(yaml), FWREL_OUT_FORCE, 0644), 0);
        fwrel_device *dev = load_profile("pins.yaml");
        fwrel_report *r = NULL;
        assert_int_equal(fwrel_report_new(&r), 0);
        int rc = fwrel_bundle_verify_device_mem(r, dev, b, len, now);
        if (cases[i].step == NULL) {
            assert_int_equal(rc, 0);
            expect_step(r, "manifest.product", FWREL_PASS);
            expect_step(r, "manifest.channel", FWREL_PASS);
        } else {
            assert_int_equal(rc, FWREL_EVERIFY);
            expect_rejected_at(cases[i].step);
            assert_string_equal(find_step(r, cases[i].step)->detail, cases[i].detail);
            expect_step(r, "image.decrypt", FWREL_SKIP);
        }
        expect_tmp_empty();
        fwrel_report_free(r);
        fwrel_device_free(dev);
    }
    /* Both are required with a manifest section, each named. */
    static const struct {
        const char *pins, *msg;
    } missing[] = {
        {"channel: prod\n", "1:1: product is required with a manifest section (the product this "
                            "device runs: product: NAME)"},
        {"product: thermo\n", "1:1: channel is required with a manifest section (the release "
                              "channels this device takes: channel: C or channels: [C, ...])"},
    };
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        char yaml[512], p[4300];
        fwrel_device *dev = NULL;
        snprintf(yaml, sizeof(yaml),
                 "chip: esp32c3\npartition_size: 0x100000\n%s"
                 "manifest: {key: dev.pem, trusted_keys: [s1.pub]}\n",
                 missing[i].pins);
        path(p, sizeof(p), "pins.yaml");
        assert_int_equal(fwrel_io_write_file(p, yaml, strlen(yaml), FWREL_OUT_FORCE, 0644), 0);
        assert_int_equal(fwrel_device_load(&dev, p), FWREL_EFORMAT);
        assert_null(dev);
        assert_string_equal(fwrel_error_last()->message, missing[i].msg);
    }
    free(fwm);
    free(b);
}

/* A ciphertext byte flipped and a manifest made for that very file: it binds, and the GCM tag
 * refuses it; nothing is left in TMPDIR. */
static void test_device_gcm(void **state)
{
    (void)state;
    char p[4300], q[4300];
    size_t n = 0, fwm_len = 0, len = 0;
    path(p, sizeof(p), "app.enc");
    uint8_t *enc = testutil_read(p, &n);
    assert_non_null(enc);
    enc[n - 10] ^= 0x40;
    path(q, sizeof(q), "bad.enc");
    assert_int_equal(fwrel_io_write_file(q, enc, n, FWREL_OUT_FORCE, 0644), 0);
    free(enc);
    uint8_t *fwm = make_manifest(&fwm_len, "bad.enc", 0);
    uint8_t *b = make_bundle(&len, "bad.enc", fwm, fwm_len, 0, 0, NULL);
    fwrel_device *dev = load_profile("dev.yaml");
    fwrel_report *r = NULL;
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_int_equal(fwrel_bundle_verify_device_mem(r, dev, b, len, now), FWREL_EVERIFY);
    expect_rejected_at("image.decrypt");
    assert_non_null(strstr(fwrel_error_last()->message, "GCM tag mismatch"));
    expect_step(r, "manifest.binds", FWREL_PASS);
    expect_step(r, "manifest.signed-image", FWREL_SKIP);
    expect_tmp_empty();
    fwrel_report_free(r);
    fwrel_device_free(dev);
    free(fwm);
    free(b);
}

/* The manifest's signed-image digest is not the decrypted image's. */
static void test_device_signed_image(void **state)
{
    (void)state;
    size_t fwm_len = 0, len = 0;
    uint8_t *fwm = make_manifest(&fwm_len, "app.enc", 1);
    uint8_t *b = make_bundle(&len, "app.enc", fwm, fwm_len, 0, 0, NULL);
    fwrel_device *dev = load_profile("dev.yaml");
    fwrel_report *r = NULL;
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_int_equal(fwrel_bundle_verify_device_mem(r, dev, b, len, now), FWREL_EVERIFY);
    expect_rejected_at("manifest.signed-image");
    expect_step(r, "image.decrypt", FWREL_PASS);
    expect_step(r, "image", FWREL_SKIP);
    expect_tmp_empty();
    fwrel_report_free(r);
    fwrel_device_free(dev);
    free(fwm);
    free(b);
}

static void test_device_usage(void **state)
{
    (void)state;
    size_t fwm_len = 0, len = 0;
    uint8_t *fwm = make_manifest(&fwm_len, "app.enc", 0);
    uint8_t *b = make_bundle(&len, "app.enc", fwm, fwm_len, 0, 0, NULL);
    fwrel_device *dev = NULL;
    static const char no_key[] =
        "chip: esp32c3\npartition_size: 0x100000\n"
        "product: thermo\nchannel: prod\nmanifest: {key: dev.pem, trusted_keys: [s1.pub]}\n";
    static const char no_manifest[] = "chip: esp32c3\npartition_size: 0x100000\n";
    char p[4300];

    path(p, sizeof(p), "nokey.yaml");
    assert_int_equal(fwrel_io_write_file(p, no_key, strlen(no_key), FWREL_OUT_FORCE, 0644), 0);
    dev = load_profile("nokey.yaml");
    assert_int_equal(fwrel_bundle_verify_device_mem(NULL, dev, b, len, now), FWREL_EUSAGE);
    assert_non_null(strstr(fwrel_error_last()->message, "no image_key"));
    fwrel_device_free(dev);
    assert_int_equal(fwrel_device_parse(&dev, (const uint8_t *)no_manifest, strlen(no_manifest)),
                     0);
    assert_int_equal(fwrel_bundle_verify_device_mem(NULL, dev, b, len, now), FWREL_EUSAGE);
    fwrel_device_free(dev);

    /* image_key must be an esp_encrypted_img key: not Ed25519. */
    static const char bad[] = "chip: esp32c3\npartition_size: 0x100000\nimage_key: ed.pem\n";
    path(p, sizeof(p), "ed.pem");
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    EVP_PKEY_free(k);
    path(p, sizeof(p), "bad.yaml");
    assert_int_equal(fwrel_io_write_file(p, bad, strlen(bad), FWREL_OUT_FORCE, 0644), 0);
    assert_int_not_equal(fwrel_device_load(&dev, p), 0);
    assert_non_null(strstr(fwrel_error_last()->message, "3:12: image_key ed.pem"));
    expect_tmp_empty();
    free(fwm);
    free(b);
}

static void test_read_failure(void **state)
{
    (void)state;
    static const uint8_t junk[1024] = {'x'};
    fwrel_device *dev = load_profile("dev.yaml");
    fwrel_report *r = NULL;
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_int_equal(fwrel_bundle_verify_device_mem(r, dev, junk, sizeof(junk), now),
                     FWREL_EVERIFY);
    expect_rejected_at("bundle.read");
    expect_step(r, "image", FWREL_SKIP);
    fwrel_report_free(r);
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_int_equal(fwrel_bundle_verify_ci_mem(r, junk, sizeof(junk), NULL), FWREL_EVERIFY);
    expect_rejected_at("bundle.read");
    expect_step(r, "approvals", FWREL_SKIP);
    fwrel_report_free(r);
    fwrel_device_free(dev);
}

static void test_ci(void **state)
{
    (void)state;
    size_t fwm_len = 0, len = 0;
    uint8_t *fwm = make_manifest(&fwm_len, "app.enc", 0);
    fwrel_report *r = NULL;
    fwrel_bundle_verify_ci_opts o = {NULL, NULL, NULL};
    char app[4300], other[4300];
    path(app, sizeof(app), "app.bin");
    path(other, sizeof(other), "app.enc");

    /* No approval required, none present: every step passes, no GnuPG needed. */
    uint8_t *b = make_bundle(&len, "app.enc", fwm, fwm_len, 0, 0, NULL);
    o.against_image = app;
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_int_equal(fwrel_bundle_verify_ci_mem(r, b, len, &o), 0);
    expect_step(r, "bundle.sums", FWREL_PASS);
    expect_step(r, "record.members", FWREL_PASS);
    expect_step(r, "approvals", FWREL_PASS);
    expect_step(r, "exports", FWREL_PASS);
    expect_step(r, "against", FWREL_PASS);
    expect_step(r, "record.policy", FWREL_SKIP);
    fwrel_report_free(r);
    /* --against another file. */
    o.against_image = other;
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_int_equal(fwrel_bundle_verify_ci_mem(r, b, len, &o), FWREL_EVERIFY);
    expect_rejected_at("against");
    fwrel_report_free(r);
    free(b);

    /* One approval required, none there: approvals fails, and every other step still runs. */
    o.against_image = NULL;
    b = make_bundle(&len, "app.enc", fwm, fwm_len, 1, 0, NULL);
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_int_equal(fwrel_bundle_verify_ci_mem(r, b, len, &o), FWREL_EVERIFY);
    expect_rejected_at("approvals");
    assert_non_null(strstr(fwrel_error_last()->message, "0 of 1 required approvals"));
    expect_step(r, "exports", FWREL_PASS);
    expect_step(r, "against", FWREL_SKIP);
    fwrel_report_free(r);
    free(b);

    /* The record names another image: record.members (the sums were made to pass). */
    b = make_bundle(&len, "app.enc", fwm, fwm_len, 0, 1, NULL);
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_int_equal(fwrel_bundle_verify_ci_mem(r, b, len, &o), FWREL_EVERIFY);
    expect_rejected_at("record.members");
    expect_step(r, "bundle.sums", FWREL_PASS);
    fwrel_report_free(r);
    free(b);

    /* An export "copy" that is not the image. */
    char p[4300];
    size_t n = 0;
    path(p, sizeof(p), "app.enc");
    uint8_t *copy = testutil_read(p, &n);
    copy[600] ^= 1;
    b = make_bundle(&len, "app.enc", fwm, fwm_len, 0, 0, copy);
    assert_int_equal(fwrel_report_new(&r), 0);
    assert_int_equal(fwrel_bundle_verify_ci_mem(r, b, len, &o), FWREL_EVERIFY);
    expect_rejected_at("exports");
    assert_non_null(strstr(fwrel_error_last()->message,
                           "exports/https-dir/thermo.bin is not a copy of firmware.enc"));
    fwrel_report_free(r);
    free(copy);
    free(b);
    free(fwm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_good),
        cmocka_unit_test(test_device_gcm),
        cmocka_unit_test(test_device_product_channel),
        cmocka_unit_test(test_device_signed_image),
        cmocka_unit_test(test_device_usage),
        cmocka_unit_test(test_read_failure),
        cmocka_unit_test(test_ci),
    };
    return cmocka_run_group_tests(tests, setup, fixture_teardown);
}
