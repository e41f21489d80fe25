/* fwrel-fuzzseeds - the valid, signed seeds of the trusted-path fuzz targets (fuzz/make-seeds.sh
 * runs it; docs/fuzzing.md).
 *
 *   fwrel-fuzzseeds KEYDIR OUTDIR [GNUPGHOME]
 *
 * KEYDIR is fuzz/keys (the fixed device, its signers, image key, policy and approvers); OUTDIR
 * gets manifest_trusted/ (and the same in devcore/), bverify_device/, bverify_ci/ and release/ with
 * small seeds (a 2 KiB ESP32-C3 test image): signed manifests that meet the device's threshold (2
 * of 3) and one that does not, the same sealed to the device, a release bundle the device accepts,
 * the same approved by both approvers of the policy (with GNUPGHOME holding their secret keys) and
 * by one, its release record, and a bundle for the Secure Boot V2 device (device-sbv2.yaml).
 * Everything the fuzz targets check at FWREL_FUZZ_NOW is valid then. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fwrel/bundle.h"
#include "fwrel/encimg.h"
#include "fwrel/io.h"
#include "fwrel/key.h"
#include "fwrel/manifest.h"
#include "fwrel/pgp.h"
#include "fwrel/policy.h"
#include "fwrel/release.h"
#include "fwrel/sbv2.h"
#include "testimg.h"
#include "testutil.h"
#include "util.h"

#include "../../fuzz/fuzz.h"

static const char *keydir, *outdir;

static void die(const char *what)
{
    fprintf(stderr, "fwrel-fuzzseeds: %s: %s\n", what, fwrel_error_last()->message);
    exit(1);
}

static const char *kpath(const char *name)
{
    static char p[4200];
    snprintf(p, sizeof(p), "%s/%s", keydir, name);
    return p;
}

static void put(const char *target, const char *name, const void *data, size_t len)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", outdir, target);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/%s/%s", outdir, target, name);
    if (fwrel_io_write_file(p, data, len, FWREL_OUT_FORCE, 0644) != 0)
        die(p);
}

static fwrel_pkey *load_private(const char *name)
{
    fwrel_pkey *k = NULL;
    fwrel_pass_src none = {0};
    if (fwrel_key_load_private(&k, kpath(name), &none) != 0)
        die(name);
    return k;
}

static void key_hex(char out[65], const fwrel_pkey *k)
{
    if (fwrel_key_id(out, k) != 0)
        die("key id");
}

static void digest(fwrel_release_file *f, const char *name, const uint8_t *p, size_t n)
{
    uint8_t d[32];
    if (fwrel_sha256(d, p, n) != 0)
        die("sha256");
    fwrel_hex(f->sha256, d, 32);
    f->size = n;
    snprintf(f->name, sizeof(f->name), "%s", name);
}

static void encrypt(const char *in, const char *out_path, const fwrel_pkey *key)
{
    fwrel_src src;
    fwrel_out *out = NULL;
    if (fwrel_src_open(&src, in, FWREL_IMAGE_MAX) != 0 ||
        fwrel_out_open(&out, out_path, 0, 0644) != 0 || fwrel_encimg_encrypt(out, &src, key) != 0 ||
        fwrel_out_commit(out) != 0)
        die(out_path);
    fwrel_src_close(&src);
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: fwrel-fuzzseeds KEYDIR OUTDIR [GNUPGHOME]\n");
        return 2;
    }
    keydir = argv[1];
    outdir = argv[2];
    const char *home = argc == 4 ? argv[3] : NULL;
    const char *tmp = testutil_tmpdir();
    char plain_p[4200], enc_p[4200], tpl[512];
    fwrel_pkey *s[3] = {load_private("signer1.pem"), load_private("signer2.pem"),
                        load_private("signer3.pem")},
               *img_key = load_private("image.pem"), *dev = NULL;
    if (fwrel_key_load_public(&dev, kpath("device-manifest.pem"), 0) != 0)
        die("device-manifest.pem");

    /* The image (secure boot off: its own signed image) and its esp_encrypted_img form. */
    testimg_opts io = {.chip = "esp32c3", .version = "1.0.0", .secure_version = 2, .size = 2048};
    snprintf(plain_p, sizeof(plain_p), "%s/app.bin", tmp);
    snprintf(enc_p, sizeof(enc_p), "%s/firmware.enc", tmp);
    if (testimg_write(plain_p, &io) != 0) {
        fprintf(stderr, "fwrel-fuzzseeds: %s\n", testimg_error());
        return 1;
    }
    encrypt(plain_p, enc_p, img_key);

    /* The manifest: counter 5 (the device has 4), valid around FWREL_FUZZ_NOW. */
    fwrel_manifest m;
    snprintf(tpl, sizeof(tpl),
             "{\"product\": \"fuzz\", \"device_types\": [\"fuzz-a\"], \"channel\": \"prod\", "
             "\"counter\": 5, \"created\": %llu, \"expires\": %llu}",
             (unsigned long long)(FWREL_FUZZ_NOW - 3600),
             (unsigned long long)(FWREL_FUZZ_NOW + 365ull * 86400));
    if (fwrel_manifest_from_images(&m, (const uint8_t *)tpl, strlen(tpl), plain_p, plain_p,
                                   enc_p) != 0)
        die("manifest");
    static const struct {
        const char *name;
        size_t n, first;
    } sets[] = {{"signed-2of3-ed25519-p256.json", 2, 0},
                {"signed-3of3.json", 3, 0},
                {"signed-2of3-p256-rsa.json", 2, 1},
                {"signed-1of3-below-threshold.json", 1, 2}};
    char *sj[4] = {NULL};
    size_t sj_len[4];
    for (size_t i = 0; i < 4; i++) {
        const fwrel_pkey *keys[3];
        for (size_t k = 0; k < sets[i].n; k++)
            keys[k] = s[sets[i].first + k];
        if (fwrel_manifest_sign(&sj[i], &sj_len[i], &m, keys, sets[i].n) != 0)
            die("sign");
        put("manifest_trusted", sets[i].name, sj[i], sj_len[i]);
        put("devcore", sets[i].name, sj[i], sj_len[i]); /* the device core's target */
    }
    /* Regression (issue 13): a trusted key's signature of 696 valid base64 characters. */
    {
        const char *a = strstr(sj[3], "\"sig\":\"") + 7, *b = strchr(a, '"');
        size_t n = (size_t)(a - sj[3]) + 696 + strlen(b);
        char *t = malloc(n + 1);
        memcpy(t, sj[3], (size_t)(a - sj[3]));
        memset(t + (a - sj[3]), 'A', 696);
        memcpy(t + (a - sj[3]) + 696, b, strlen(b) + 1);
        put("manifest_trusted", "regress-sig-696-base64.json", t, n);
        free(t);
    }
    uint8_t *env = NULL;
    size_t env_len = 0;
    const fwrel_pkey *to[1] = {dev};
    if (fwrel_manifest_seal(&env, &env_len, (const uint8_t *)sj[0], sj_len[0], to, 1) != 0)
        die("seal");
    put("manifest_trusted", "envelope-2of3.fwm", env, env_len);
    put("devcore", "envelope-2of3.fwm", env, env_len);

    /* The release record, under fuzz/keys/policy.yaml, approved by its two approvers. */
    fwrel_policy *pol = NULL;
    if (fwrel_policy_load(&pol, kpath("policy.yaml")) != 0)
        die("policy.yaml");
    size_t app_len = 0, enc_len = 0;
    uint8_t *app = testutil_read(plain_p, &app_len), *enc = testutil_read(enc_p, &enc_len);
    fwrel_release r;
    testutil_release_init(&r, "fuzz", "1.0.0", "fuzz-a", 5);
    r.created = m.created;
    r.expires = m.expires;
    fwrel_hex(r.policy_sha256, pol->sha256, 32);
    digest(&r.input, "", app, app_len);
    digest(&r.signed_image, "", app, app_len);
    digest(&r.image, "firmware.enc", enc, enc_len);
    digest(&r.manifest, "manifest.fwm", env, env_len);
    r.encrypted = 1;
    for (size_t i = 0; i < 3; i++)
        key_hex(r.manifest_signers[i], s[i]);
    r.nmanifest_signers = 3;
    r.manifest_threshold = 2;
    key_hex(r.recipients[0], dev);
    r.nrecipients = 1;
    key_hex(r.image_key, img_key);
    for (size_t i = 0; i < pol->napprovers && i < 16; i++)
        snprintf(r.approvers[i], sizeof(r.approvers[i]), "%s", pol->approvers[i]);
    r.napprovers = pol->napprovers;
    r.approvals_required = 2;
    char *json = NULL, *sums = NULL;
    size_t json_len = 0, sums_len = 0;
    if (fwrel_release_encode(&json, &json_len, &r) != 0)
        die("release.json");
    put("release", "release.json", json, json_len);

    /* An https-dir-like export: copies of both artifacts, and a sums file, a JSON index and a
     * text that state their digests and sizes (docs/verify.md "exports"). */
    char esums[256], ejson[512], etext[256];
    snprintf(esums, sizeof(esums), "%s  fuzz.bin\n%s  fuzz.fwm\n", r.image.sha256,
             r.manifest.sha256);
    snprintf(ejson, sizeof(ejson),
             "{\"image\": {\"file\": \"fuzz.bin\", \"sha256\": \"%s\", \"size\": %llu},\n"
             " \"manifest\": {\"sha256\": \"%s\", \"size\": %llu}}\n",
             r.image.sha256, (unsigned long long)r.image.size, r.manifest.sha256,
             (unsigned long long)r.manifest.size);
    snprintf(etext, sizeof(etext), "fuzz 1.0.0: fuzz.bin, %llu bytes, sha256 %s\n",
             (unsigned long long)r.image.size, r.image.sha256);
    fwrel_bundle_member mb[12] = {
        {"firmware.enc", enc, enc_len},
        {"manifest.fwm", env, env_len},
        {"release.json", (const uint8_t *)json, json_len},
        {"exports/https-dir/fuzz.bin", enc, enc_len},
        {"exports/https-dir/fuzz.fwm", env, env_len},
        {"exports/https-dir/SHA256SUMS", (const uint8_t *)esums, strlen(esums)},
        {"exports/https-dir/index.json", (const uint8_t *)ejson, strlen(ejson)},
        {"exports/https-dir/README.txt", (const uint8_t *)etext, strlen(etext)},
    };
    size_t nm = 8;
    if (fwrel_bundle_sums(&sums, &sums_len, mb, nm) != 0)
        die("SHA256SUMS");
    mb[nm++] = (fwrel_bundle_member){"SHA256SUMS", (const uint8_t *)sums, sums_len};
    uint8_t *tar = NULL;
    size_t tar_len = 0;
    if (fwrel_bundle_write_mem(&tar, &tar_len, mb, nm, (int64_t)FWREL_FUZZ_NOW) != 0)
        die("bundle");
    put("bverify_device", "valid.fwb", tar, tar_len);
    put("bverify_ci", "unapproved.fwb", tar, tar_len);
    free(tar);

    /* The Secure Boot V2 device (device-sbv2.yaml): the image signed with secure-boot.pem. */
    {
        char sb_p[4200], sbenc_p[4200], *ssj = NULL, *ssums = NULL;
        size_t ssj_len = 0, sbenc_len = 0, senv_len = 0, ssums_len = 0;
        uint8_t *senv = NULL, *sbenc = NULL;
        fwrel_pkey *sb = load_private("secure-boot.pem");
        fwrel_sbv2_sign_opts so = {.count = 1};
        fwrel_manifest ms;
        const fwrel_pkey *two[2] = {s[0], s[1]};
        so.signers[0].key = sb;
        snprintf(sb_p, sizeof(sb_p), "%s/app-sbv2.bin", tmp);
        snprintf(sbenc_p, sizeof(sbenc_p), "%s/firmware-sbv2.enc", tmp);
        if (fwrel_sbv2_sign(plain_p, sb_p, 0, &so, NULL) != 0)
            die("secure boot v2 signature");
        encrypt(sb_p, sbenc_p, img_key);
        if (fwrel_manifest_from_images(&ms, (const uint8_t *)tpl, strlen(tpl), plain_p, sb_p,
                                       sbenc_p) != 0 ||
            fwrel_manifest_sign(&ssj, &ssj_len, &ms, two, 2) != 0 ||
            fwrel_manifest_seal(&senv, &senv_len, (const uint8_t *)ssj, ssj_len, to, 1) != 0)
            die("secure boot v2 manifest");
        sbenc = testutil_read(sbenc_p, &sbenc_len);
        fwrel_bundle_member sm[4] = {
            {"firmware.enc", sbenc, sbenc_len},
            {"manifest.fwm", senv, senv_len},
            {"release.json", (const uint8_t *)json, json_len}, /* not read by the device */
        };
        if (sbenc == NULL || fwrel_bundle_sums(&ssums, &ssums_len, sm, 3) != 0)
            die("secure boot v2 bundle");
        sm[3] = (fwrel_bundle_member){"SHA256SUMS", (const uint8_t *)ssums, ssums_len};
        if (fwrel_bundle_write_mem(&tar, &tar_len, sm, 4, (int64_t)FWREL_FUZZ_NOW) != 0)
            die("secure boot v2 bundle");
        put("bverify_device", "valid-sbv2.fwb", tar, tar_len);
        free(tar);
        free(ssj);
        free(ssums);
        free(senv);
        free(sbenc);
        fwrel_key_free(sb);
    }

    if (home != NULL) {
        uint8_t *sig[2] = {NULL, NULL};
        size_t sig_len[2];
        char names[2][64];
        for (size_t i = 0; i < 2 && i < pol->napprovers; i++) {
            if (fwrel_pgp_sign_detached(&sig[i], &sig_len[i], home, pol->approvers[i],
                                        (const uint8_t *)sums, sums_len, NULL) != 0)
                die("approval");
            snprintf(names[i], sizeof(names[i]), "approvals/%s.asc", pol->approvers[i]);
            mb[nm + i] = (fwrel_bundle_member){names[i], sig[i], sig_len[i]};
        }
        for (size_t n = 1; n <= 2; n++) {
            if (fwrel_bundle_write_mem(&tar, &tar_len, mb, nm + n, (int64_t)FWREL_FUZZ_NOW) != 0)
                die("bundle");
            put("bverify_ci", n == 2 ? "approved-2of2.fwb" : "approved-1of2.fwb", tar, tar_len);
            free(tar);
        }
        free(sig[0]);
        free(sig[1]);
    }

    free(json);
    free(sums);
    free(app);
    free(enc);
    free(env);
    for (size_t i = 0; i < 4; i++)
        free(sj[i]);
    fwrel_policy_free(pol);
    for (size_t i = 0; i < 3; i++)
        fwrel_key_free(s[i]);
    fwrel_key_free(img_key);
    fwrel_key_free(dev);
    testutil_rmtree(tmp);
    return 0;
}
