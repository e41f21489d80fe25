/* bundle_verify.c - a release bundle verified as the device would take it, and as CI checks it
 * (bundle_verify.h, docs/verify.md). */
#include "fwrel/bundle_verify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "fwrel/bundle.h"
#include "fwrel/encimg.h"
#include "fwrel/manifest.h"
#include "fwrel/pgp.h"
#include "fwrel/approvals.h"
#include "fwrel/policy.h"
#include "fwrel/release.h"
#include "fwrel_dev.h"
#include "fwrel/rules.h"
#include "util.h"

/* The running state of a verification. In device mode the first failure stops (the rest are
 * skipped); in CI mode every step runs and the first failure is remembered. */
struct run {
    fwrel_report *report;
    int stop_at_failure;
    int failed;
    char first[FWREL_ERROR_MSG_MAX];
};

static void step(struct run *r, const char *name, int verdict, const char *fmt, ...)
    FWREL_PRINTF(4, 5);
static void step(struct run *r, const char *name, int verdict, const char *fmt, ...)
{
    char detail[FWREL_STEP_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (r->failed && r->stop_at_failure) {
        fwrel_report_add(r->report, name, FWREL_SKIP, "not reached");
        return;
    }
    fwrel_report_add(r->report, name, verdict, "%s", detail);
    if (verdict == FWREL_FAIL && !r->failed) {
        r->failed = 1;
        snprintf(r->first, sizeof(r->first), "rejected at %s: %s", name, detail);
    }
}

/* The verdict of a run: FWREL_EVERIFY with its first failure as the message, or 0 and no error. */
static int verdict_of(const struct run *r)
{
    if (r->failed)
        return fwrel_error_set(FWREL_EVERIFY, "%s", r->first);
    fwrel_error_clear();
    return 0;
}

/* A failure whose message is already "rejected at <step>: <reason>" (a nested verifier that
 * recorded its own steps). */
static void nested_failure(struct run *r, const char *message)
{
    if (!r->failed) {
        r->failed = 1;
        snprintf(r->first, sizeof(r->first), "%s", message);
    }
}

static int is_encrypted(const fwrel_bundle_member *fw)
{
    return fw->len >= 4 && fwrel_le32(fw->data) == FWREL_ENCIMG_MAGIC;
}

/* --- device mode ----------------------------------------------------------------------- */

/* Decrypt firmware.enc as the device does into an unnamed scratch file in TMPDIR (never a name a
 * kill could leave behind with the plaintext): src then reads it through its descriptor. */
static int decrypt_to_src(fwrel_src *src, const fwrel_bundle_member *fw, const fwrel_pkey *key)
{
    const char *tmp = getenv("TMPDIR");
    fwrel_out *out = NULL;
    fwrel_src in;
    int error;

    fwrel_src_mem(&in, fw->data, fw->len);
    if ((error = fwrel_out_open_unnamed(&out, tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp",
                                        FWREL_OUT_STREAM)) != 0)
        return error;
    if ((error = fwrel_encimg_decrypt_to(out, &in, key)) != 0) {
        fwrel_out_abort(out);
        return error;
    }
    return fwrel_out_finish_src(out, src);
}

/* The device core's step into the run (its verdict values are libfwrel's). */
static void core_step(void *ctx, const char *name, int verdict, const char *detail)
{
    step(ctx, name, verdict, "%s", detail);
}

/*
 * docs/manifest.md section 4 step 9 as the device does it (the device core's fwrel_dev_bind):
 * the bytes of src, from its start, through a SHA-256 as they arrive in bounded pieces, compared
 * with the manifest's image at the end; the step is manifest.binds (FWREL_DEV_BIND_ENCRYPTED,
 * the file downloaded) or manifest.signed-image (the image decrypted). src is left at its start.
 */
static int bind_src(struct run *r, const fwrel_manifest *m, int kind, fwrel_src *src)
{
    const fwrel_manifest_digest *want = kind == FWREL_DEV_BIND_ENCRYPTED ? &m->encrypted
                                                                         : &m->signed_image;
    fwrel_dev_manifest dm;
    fwrel_dev_bind b;
    fwrel_dev_result res;
    uint8_t buf[16 * 1024];
    int error, rc;

    memset(&dm, 0, sizeof(dm));
    memcpy(kind == FWREL_DEV_BIND_ENCRYPTED ? dm.encrypted.sha256 : dm.signed_image.sha256,
           want->sha256, 32);
    (kind == FWREL_DEV_BIND_ENCRYPTED ? &dm.encrypted : &dm.signed_image)->size = want->size;
    if ((error = fwrel_src_seek(src, 0)) != 0)
        return error;
    if (fwrel_dev_bind_start(&b, &fwrel_dev_crypto_openssl, &dm, kind) != FWREL_DEV_OK)
        return fwrel_error_set_openssl(FWREL_EIO, "digest setup failed");
    while (src->pos < src->size) {
        size_t n = src->size - src->pos < sizeof(buf) ? (size_t)(src->size - src->pos)
                                                      : sizeof(buf);
        if ((error = fwrel_src_read(src, buf, n)) != 0) {
            fwrel_dev_bind_abort(&b);
            return error;
        }
        /* More bytes than the manifest names: refused at the end, with the whole file's size. */
        if (fwrel_dev_bind_update(&b, buf, n) == FWREL_DEV_ECRYPTO)
            return fwrel_error_set_openssl(FWREL_EIO, "digest failed");
    }
    rc = fwrel_dev_bind_finish(&b, &res, core_step, r);
    if (rc != FWREL_DEV_OK && rc != FWREL_DEV_EREJECT)
        return fwrel_error_set_openssl(FWREL_EIO, "digest failed");
    return fwrel_src_seek(src, 0);
}

/* After a failure: the device's later steps that were not recorded, as skipped. */
static void skip_missing(struct run *r)
{
    static const char *const rest[] = {"manifest.binds", "ota.decision", "image.decrypt",
                                       "manifest.signed-image", "image"};
    for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++) {
        int found = 0;
        for (size_t k = 0; k < fwrel_report_count(r->report) && !found; k++)
            found = strcmp(fwrel_report_step(r->report, k)->name, rest[i]) == 0;
        if (!found)
            fwrel_report_add(r->report, rest[i], FWREL_SKIP, "not reached");
    }
}

static int device_steps(struct run *r, const fwrel_device *dev, const fwrel_bundle *b, uint64_t now)
{
    const fwrel_bundle_member *fw = fwrel_bundle_find(b, "firmware.enc");
    const fwrel_bundle_member *mf = fwrel_bundle_find(b, "manifest.fwm");
    const fwrel_pkey *image_key = fwrel_device_image_key(dev);
    fwrel_src src = {.fd = -1};
    fwrel_manifest m;
    char why[FWREL_STEP_DETAIL_MAX];
    int error = 0;

    if (fw == NULL || mf == NULL) /* the strict reader guarantees both */
        return fwrel_error_set(FWREL_EFORMAT, "firmware.enc or manifest.fwm: missing");
    if (is_encrypted(fw) && image_key == NULL) {
        fwrel_error_set(FWREL_EUSAGE, "the device profile has no image_key, and firmware.enc is "
                                      "encrypted (esp_encrypted_img)");
        return fwrel_error_about(FWREL_ABOUT_PROFILE, fwrel_device_path(dev));
    }

    /* docs/manifest.md section 4: the device reads the manifest first. */
    error = fwrel_device_read_manifest(&m, r->report, dev, mf->data, mf->len, now);
    if (error == FWREL_EVERIFY) {
        nested_failure(r, fwrel_error_last()->message);
        error = 0;
        goto skip_rest;
    }
    if (error != 0)
        return error;

    /* The manifest names the file the device downloads: it must be this firmware.enc. */
    fwrel_src_mem(&src, fw->data, fw->len);
    if ((error = bind_src(r, &m, FWREL_DEV_BIND_ENCRYPTED, &src)) != 0)
        goto done;
    fwrel_src_close(&src);
    src = (fwrel_src){.fd = -1};
    if (r->failed)
        goto skip_rest;

    step(r, "ota.decision",
         fwrel_device_ota_decision(why, sizeof(why), dev, m.version, m.secure_version) ? FWREL_PASS
                                                                                       : FWREL_FAIL,
         "%s", why);
    if (r->failed)
        goto skip_rest;

    if (image_key != NULL) {
        error = decrypt_to_src(&src, fw, image_key);
        if (error == FWREL_EVERIFY || error == FWREL_EFORMAT) {
            step(r, "image.decrypt", FWREL_FAIL, "%s", fwrel_error_last()->message);
            error = 0;
            goto skip_rest;
        }
        if (error != 0)
            return error;
        step(r, "image.decrypt", FWREL_PASS,
             "esp_encrypted_img with the device's image key: GCM tag valid (%llu bytes)",
             (unsigned long long)src.size);
    } else {
        step(r, "image.decrypt", FWREL_SKIP,
             "the device takes plain images (no image_key): firmware.enc is the signed image");
        fwrel_src_mem(&src, fw->data, fw->len);
    }

    /* The decrypted image is the one the manifest's signers signed. */
    if ((error = bind_src(r, &m, FWREL_DEV_BIND_SIGNED, &src)) != 0)
        goto done;
    if (r->failed)
        goto skip_rest;

    error = fwrel_device_verify_image(r->report, dev, &src);
    if (error == FWREL_EVERIFY) {
        nested_failure(r, fwrel_error_last()->message);
        error = 0;
    }
    goto done;

skip_rest:
    skip_missing(r);
done:
    fwrel_src_close(&src);
    return error;
}

static int device_verify(fwrel_report *report, const fwrel_device *dev, const char *path,
                         const uint8_t *data, size_t len, uint64_t now)
{
    struct run r = {report, 1, 0, ""};
    fwrel_bundle *b = NULL;
    int error;

    if (dev == NULL)
        return fwrel_error_set(FWREL_EUSAGE, "no device profile");
    error = path != NULL ? fwrel_bundle_read(&b, path) : fwrel_bundle_read_mem(&b, data, len);
    if (error == FWREL_EFORMAT) {
        step(&r, "bundle.read", FWREL_FAIL, "%s", fwrel_error_last()->message);
        step(&r, "manifest", FWREL_SKIP, "not reached");
        skip_missing(&r);
        error = 0;
        goto verdict;
    }
    if (error != 0)
        return error;
    step(&r, "bundle.read", FWREL_PASS, "%zu members, strict", b->n);
    if ((error = device_steps(&r, dev, b, now)) != 0)
        goto done;
verdict:
    error = verdict_of(&r);
done:
    fwrel_bundle_free(b);
    return error;
}

int fwrel_bundle_verify_device(fwrel_report *report, const fwrel_device *dev, const char *path,
                               uint64_t now)
{
    FWREL_ASSERT_ARG(dev != NULL && path != NULL);
    return device_verify(report, dev, path, NULL, 0, now);
}

int fwrel_bundle_verify_device_mem(fwrel_report *report, const fwrel_device *dev,
                                   const uint8_t *data, size_t len, uint64_t now)
{
    FWREL_ASSERT_ARG(dev != NULL && (data != NULL || len == 0));
    return device_verify(report, dev, NULL, data, len, now);
}

/* --- CI mode --------------------------------------------------------------------------- */

/* A digest and size a text export may mention: the record's image and manifest, or a file of the
 * same export. */
struct known {
    char sha256[65];
    uint64_t size;
};

static int member_hex(char out[65], const fwrel_bundle_member *mb)
{
    uint8_t d[32];
    int error = fwrel_sha256(d, mb->data, mb->len);
    if (error == 0)
        fwrel_hex(out, d, 32);
    return error;
}

/* release.json's image and manifest are these members, byte for byte. */
static int check_members(struct run *r, const fwrel_bundle *b, const fwrel_release *rec)
{
    const fwrel_release_file *files[2] = {&rec->image, &rec->manifest};
    const char *what[2] = {"image", "manifest"};
    fwrel_problems p = {"", 0};
    char hex[65];
    int error;

    for (size_t i = 0; i < 2; i++) {
        const fwrel_bundle_member *mb = fwrel_bundle_find(b, files[i]->name);
        if (files[i]->name[0] == '\0' || mb == NULL) {
            fwrel_problem(&p, "%s '%s' is not a member", what[i], files[i]->name);
            continue;
        }
        if ((error = member_hex(hex, mb)) != 0)
            return error;
        if (strcmp(hex, files[i]->sha256) != 0 || mb->len != files[i]->size)
            fwrel_problem(
                &p, "%s: %zu bytes, sha256 %.16s..., the record says %llu bytes, %.16s...",
                files[i]->name, mb->len, hex, (unsigned long long)files[i]->size, files[i]->sha256);
    }
    if (strcmp(rec->image.name, "firmware.enc") != 0 || strcmp(rec->manifest.name, "manifest.fwm"))
        fwrel_problem(&p, "the record names '%s' and '%s', not firmware.enc and manifest.fwm",
                      rec->image.name, rec->manifest.name);
    const fwrel_bundle_member *fw = fwrel_bundle_find(b, "firmware.enc");
    if (fw != NULL && is_encrypted(fw) != (rec->encrypted != 0))
        fwrel_problem(&p,
                      "the record says %sencrypted, firmware.enc is %san esp_encrypted_img file",
                      rec->encrypted ? "" : "not ", is_encrypted(fw) ? "" : "not ");
    if (p.n == 0)
        step(r, "record.members", FWREL_PASS,
             "firmware.enc and manifest.fwm are the record's image (%llu bytes) and manifest",
             (unsigned long long)rec->image.size);
    else
        step(r, "record.members", FWREL_FAIL, "%s", p.text);
    return 0;
}

/* The approvals under the rule of approvals.h (the one rule the auditor and the pipeline use too):
 * every approvals/<FPR>.asc verifies over SHA256SUMS, is signed by FPR, FPR is pinned; and the
 * pinned approvers reach the threshold. */
static int check_approvals(struct run *r, const fwrel_bundle *b, const char *home,
                           const fwrel_approvals_rule *rule)
{
    fwrel_approvals_outcome out;
    int error;
    if ((error = fwrel_approvals_check(&out, rule, b, home)) != 0)
        return error;
    step(r, "approvals", out.ok ? FWREL_PASS : FWREL_FAIL, "%s", out.detail);
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), n = strlen(suffix);
    return a >= n && strcmp(s + a - n, suffix) == 0;
}

static int is_lower_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* The known digest with this hex, or NULL. */
static const struct known *known_find(const struct known *k, size_t n, const char *hex)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k[i].sha256, hex) == 0)
            return &k[i];
    return NULL;
}

/* exports/<name>/SHA256SUMS: every line "<hex>  <file>" names a file of the export with that
 * digest. */
static void check_export_sums(fwrel_problems *p, const fwrel_bundle *b, const char *mname,
                              const char *dir, const fwrel_bundle_member *mb)
{
    size_t pos = 0, line = 0;
    while (pos < mb->len) {
        const uint8_t *nl = memchr(mb->data + pos, '\n', mb->len - pos);
        size_t end = nl != NULL ? (size_t)(nl - mb->data) : mb->len;
        char name[2 * FWREL_BUNDLE_NAME_MAX + 2], hex[65];
        const fwrel_bundle_member *sib;
        line++;
        if (end - pos < 67 || end - pos - 66 + strlen(dir) > FWREL_BUNDLE_NAME_MAX ||
            mb->data[pos + 64] != ' ' || mb->data[pos + 65] != ' ') {
            fwrel_problem(p, "%s line %zu: not '<sha256>  <file>'", mname, line);
            return;
        }
        snprintf(name, sizeof(name), "%s%.*s", dir, (int)(end - pos - 66),
                 (const char *)mb->data + pos + 66);
        if ((sib = fwrel_bundle_find(b, name)) == NULL) {
            fwrel_problem(p, "%s line %zu: no file %s in the export", mname, line,
                          name + strlen(dir));
        } else if (member_hex(hex, sib) == 0 && memcmp(hex, mb->data + pos, 64) != 0) {
            fwrel_problem(p, "%s line %zu: wrong sha256 for %s", mname, line, name + strlen(dir));
        }
        pos = end + 1;
    }
}

/* An object with "sha256" and "size" states a file's digest: the file of the export it names in
 * "file", or else one of the release's files. */
static void check_json_digests(fwrel_problems *p, const fwrel_bundle *b, const char *mname,
                               const char *dir, json_t *v, const struct known *k, size_t nk,
                               int depth)
{
    const char *key;
    json_t *item;
    size_t i;
    if (depth > 16)
        return;
    if (json_is_array(v)) {
        json_array_foreach(v, i, item) check_json_digests(p, b, mname, dir, item, k, nk, depth + 1);
        return;
    }
    if (!json_is_object(v))
        return;
    json_t *sha = json_object_get(v, "sha256"), *size = json_object_get(v, "size");
    if (json_is_string(sha) && json_is_integer(size)) {
        json_t *file = json_object_get(v, "file");
        const struct known *f = NULL;
        struct known sib_digest;
        if (json_is_string(file)) {
            char name[300];
            const fwrel_bundle_member *sib;
            snprintf(name, sizeof(name), "%s%s", dir, json_string_value(file));
            if ((sib = fwrel_bundle_find(b, name)) != NULL &&
                member_hex(sib_digest.sha256, sib) == 0) {
                sib_digest.size = sib->len;
                f = &sib_digest;
            } else {
                fwrel_problem(p, "%s: names %s, not a file of the export", mname,
                              json_string_value(file));
                return;
            }
        } else {
            f = known_find(k, nk, json_string_value(sha));
        }
        if (f == NULL || strcmp(f->sha256, json_string_value(sha)) != 0 ||
            (json_int_t)f->size != json_integer_value(size))
            fwrel_problem(p, "%s: sha256 %.16s... size %lld is not %s", mname,
                          json_string_value(sha), (long long)json_integer_value(size),
                          json_is_string(file) ? "that file's" : "a file of the release");
    }
    json_object_foreach(v, key, item) check_json_digests(p, b, mname, dir, item, k, nk, depth + 1);
}

/* Text: every 64-hex token is a known digest, and "<N> bytes" just before one is its size. */
static void check_text(fwrel_problems *p, const char *mname, const fwrel_bundle_member *mb,
                       const struct known *k, size_t nk)
{
    const uint8_t *s = mb->data;
    size_t n = mb->len, last_bytes_at = (size_t)-1;
    uint64_t last_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9' && (i == 0 || !is_lower_hex(s[i - 1]))) {
            uint64_t v = 0;
            size_t j = i;
            while (j < n && s[j] >= '0' && s[j] <= '9' && v < ((uint64_t)1 << 50))
                v = v * 10 + (uint64_t)(s[j++] - '0');
            if (j + 6 <= n && memcmp(s + j, " bytes", 6) == 0) {
                last_bytes = v;
                last_bytes_at = j + 6;
            }
        }
        if (!is_lower_hex(s[i]) || (i > 0 && is_lower_hex(s[i - 1])))
            continue;
        size_t j = i;
        while (j < n && is_lower_hex(s[j]))
            j++;
        if (j - i != 64 ||
            (j < n && ((s[j] >= 'A' && s[j] <= 'Z') || (s[j] >= 'g' && s[j] <= 'z'))))
            continue;
        char hex[65];
        memcpy(hex, s + i, 64);
        hex[64] = '\0';
        const struct known *f = known_find(k, nk, hex);
        if (f == NULL)
            fwrel_problem(p, "%s: sha256 %.16s... is not a file of the release", mname, hex);
        else if (last_bytes_at != (size_t)-1 && i - last_bytes_at < 80 && last_bytes != f->size)
            fwrel_problem(p, "%s: says %llu bytes for %.16s..., the file has %llu", mname,
                          (unsigned long long)last_bytes, hex, (unsigned long long)f->size);
        last_bytes_at = (size_t)-1;
        i = j - 1;
    }
}

/* docs/verify.md "exports": copies are byte-equal to their artifact, digests and sizes stated in
 * text are the release's. */
static int check_exports(struct run *r, const fwrel_bundle *b, const fwrel_release *rec)
{
    const fwrel_bundle_member *fw = fwrel_bundle_find(b, "firmware.enc");
    const fwrel_bundle_member *mf = fwrel_bundle_find(b, "manifest.fwm");
    fwrel_problems p = {"", 0};
    struct known k[2 + 64];
    size_t nfiles = 0, ncopies = 0;

    for (size_t i = 0; i < b->n; i++) {
        const fwrel_bundle_member *mb = &b->members[i];
        const fwrel_bundle_member *artifact = NULL;
        char dir[FWREL_BUNDLE_NAME_MAX + 1];
        const char *slash;
        size_t nk = 2;
        if (strncmp(mb->name, "exports/", 8) != 0 || (slash = strchr(mb->name + 8, '/')) == NULL)
            continue;
        nfiles++;
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash + 1 - mb->name), mb->name);
        /* The shipped templates' copies: *.bin is the served image, *.fwm the manifest. */
        if (ends_with(mb->name, ".bin"))
            artifact = fw;
        else if (ends_with(mb->name, ".fwm"))
            artifact = mf;
        if (artifact != NULL) {
            ncopies++;
            if (artifact->len != mb->len || memcmp(artifact->data, mb->data, mb->len) != 0)
                fwrel_problem(&p, "%s is not a copy of %s", mb->name, artifact->name);
            continue;
        }
        if (memchr(mb->data, '\0', mb->len) != NULL)
            continue; /* not text (secure-fota's firmware.manifest) */
        /* What a text may mention: the record's image and manifest, the export's files. */
        snprintf(k[0].sha256, sizeof(k[0].sha256), "%s", rec->image.sha256);
        k[0].size = rec->image.size;
        snprintf(k[1].sha256, sizeof(k[1].sha256), "%s", rec->manifest.sha256);
        k[1].size = rec->manifest.size;
        for (size_t s = 0; s < b->n && nk < sizeof(k) / sizeof(k[0]); s++)
            if (strncmp(b->members[s].name, dir, strlen(dir)) == 0 &&
                member_hex(k[nk].sha256, &b->members[s]) == 0)
                k[nk++].size = b->members[s].len;
        if (strcmp(slash + 1, "SHA256SUMS") == 0) {
            check_export_sums(&p, b, mb->name, dir, mb);
        } else if (ends_with(mb->name, ".json")) {
            json_error_t jerr;
            json_t *j = json_loadb((const char *)mb->data, mb->len, JSON_REJECT_DUPLICATES, &jerr);
            if (j == NULL)
                fwrel_problem(&p, "%s: not JSON: %s", mb->name, jerr.text);
            check_json_digests(&p, b, mb->name, dir, j, k, nk, 0);
            json_decref(j);
        } else {
            check_text(&p, mb->name, mb, k, nk);
        }
    }
    if (nfiles == 0)
        step(r, "exports", FWREL_PASS, "no exports");
    else if (p.n == 0)
        step(r, "exports", FWREL_PASS,
             "%zu files, %zu copies equal to their artifact, stated digests and sizes the "
             "release's",
             nfiles, ncopies);
    else
        step(r, "exports", FWREL_FAIL, "%s", p.text);
    return 0;
}

static int check_against(struct run *r, const char *image, const fwrel_release *rec)
{
    fwrel_src src = {.fd = -1};
    uint8_t d[32];
    char hex[65];
    int error;
    if ((error = fwrel_src_open(&src, image, FWREL_IMAGE_MAX)) != 0 ||
        (error = fwrel_digest_src(d, NULL, &src, src.size)) != 0) {
        fwrel_src_close(&src);
        return fwrel_error_prefix("--against %s", image);
    }
    fwrel_hex(hex, d, 32);
    if (strcmp(hex, rec->input.sha256) == 0 && src.size == rec->input.size)
        step(r, "against", FWREL_PASS, "the image is the release's input (%llu bytes, %.16s...)",
             (unsigned long long)src.size, hex);
    else
        step(r, "against", FWREL_FAIL,
             "the image (%llu bytes, sha256 %.16s...) is not the release's input (%llu bytes, "
             "%.16s...)",
             (unsigned long long)src.size, hex, (unsigned long long)rec->input.size,
             rec->input.sha256);
    fwrel_src_close(&src);
    return 0;
}

/* bundle.sums and record.parse, as CI runs them; *have_record: rec holds the record. */
static int sums_and_record(struct run *r, const fwrel_bundle *b, fwrel_release *rec,
                           int *have_record)
{
    const fwrel_bundle_member *mb = fwrel_bundle_find(b, "release.json");
    int error = fwrel_bundle_check_sums(b);
    if (error != 0 && error != FWREL_EVERIFY && error != FWREL_EFORMAT)
        return error;
    step(r, "bundle.sums", error ? FWREL_FAIL : FWREL_PASS, "%s",
         error ? fwrel_error_last()->message : "every member listed once with its SHA-256");
    error = fwrel_release_decode(rec, mb->data, mb->len);
    if (error != 0 && error != FWREL_EFORMAT)
        return error;
    *have_record = error == 0;
    step(r, "record.parse", error ? FWREL_FAIL : FWREL_PASS, "%s",
         error ? fwrel_error_last()->message : "release.json is a canonical release record");
    if (*have_record)
        step(r, "record.parse", FWREL_INFO, "%s %s (%s), counter %llu, for %s", rec->product,
             rec->version, rec->channel, (unsigned long long)rec->counter, rec->chip);
    return 0;
}

static int ci_verify(fwrel_report *report, const char *path, const uint8_t *data, size_t len,
                     const fwrel_bundle_verify_ci_opts *opts)
{
    static const fwrel_bundle_verify_ci_opts defaults = {NULL, NULL, NULL};
    const fwrel_bundle_verify_ci_opts *o = opts != NULL ? opts : &defaults;
    struct run r = {report, 0, 0, ""};
    fwrel_policy *pol = NULL;
    fwrel_bundle *b = NULL;
    fwrel_release rec;
    fwrel_approvals_rule rule;
    int error, have_record = 0;

    if (o->policy != NULL && (error = fwrel_policy_load(&pol, o->policy)) != 0)
        return error;
    error = path != NULL ? fwrel_bundle_read(&b, path) : fwrel_bundle_read_mem(&b, data, len);
    if (error == FWREL_EFORMAT) {
        static const char *const rest[] = {"bundle.sums",    "record.parse", "record.policy",
                                           "record.members", "approvals",    "exports",
                                           "against"};
        step(&r, "bundle.read", FWREL_FAIL, "%s", fwrel_error_last()->message);
        for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
            step(&r, rest[i], FWREL_SKIP, "the bundle cannot be read");
        error = 0;
        goto verdict;
    }
    if (error != 0)
        goto done;
    step(&r, "bundle.read", FWREL_PASS, "%zu members, strict", b->n);

    if ((error = sums_and_record(&r, b, &rec, &have_record)) != 0)
        goto done;
    if (!have_record) {
        static const char *const rest[] = {"record.policy", "record.members", "approvals",
                                           "exports", "against"};
        for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
            step(&r, rest[i], FWREL_SKIP, "no release record");
        error = 0;
        goto verdict;
    }

    if (pol != NULL) {
        char hex[65];
        /* The channel and its approval rule: the rulebook's (without the channel nothing meets
         * the rule: required 1; record.policy says why). The product is the hash's to vouch for
         * here, as before. */
        int in_force = fwrel_rules_policy_in_force(&rule, pol, NULL, rec.channel);
        fwrel_hex(hex, pol->sha256, 32);
        if (strcmp(hex, rec.policy_sha256) != 0)
            step(&r, "record.policy", FWREL_FAIL,
                 "the policy's sha256 %.16s... is not the record's %.16s...", hex,
                 rec.policy_sha256);
        else if (in_force != 0)
            step(&r, "record.policy", FWREL_FAIL, "%s", fwrel_error_last()->message);
        else
            step(&r, "record.policy", FWREL_PASS,
                 "the release was made under this policy; its approvers are used");
        fwrel_error_clear();
    } else {
        step(&r, "record.policy", FWREL_SKIP, "no --policy: the record's approvers are used");
        fwrel_approvals_rule_record(&rule, &rec);
        rule.source = "the policy"; /* the record states its policy's approvers */
    }

    if ((error = check_members(&r, b, &rec)) != 0 ||
        (error = check_approvals(&r, b, o->gnupg_home, &rule)) != 0 ||
        (error = check_exports(&r, b, &rec)) != 0)
        goto done;
    if (o->against_image != NULL) {
        if ((error = check_against(&r, o->against_image, &rec)) != 0)
            goto done;
    } else {
        step(&r, "against", FWREL_SKIP, "no --against IMAGE");
    }
verdict:
    error = verdict_of(&r);
done:
    fwrel_bundle_free(b);
    fwrel_policy_free(pol);
    return error;
}

int fwrel_bundle_verify_ci(fwrel_report *report, const char *path,
                           const fwrel_bundle_verify_ci_opts *o)
{
    FWREL_ASSERT_ARG(path != NULL);
    return ci_verify(report, path, NULL, 0, o);
}

int fwrel_bundle_verify_ci_mem(fwrel_report *report, const uint8_t *data, size_t len,
                               const fwrel_bundle_verify_ci_opts *o)
{
    FWREL_ASSERT_ARG(data != NULL || len == 0);
    return ci_verify(report, NULL, data, len, o);
}

int fwrel_bundle_check_record(fwrel_report *report, fwrel_release *rec, const fwrel_bundle *b)
{
    FWREL_ASSERT_ARG(rec != NULL && b != NULL);
    struct run r = {report, 0, 0, ""};
    int error, have_record = 0;
    if ((error = sums_and_record(&r, b, rec, &have_record)) != 0)
        return error;
    if (!have_record) {
        step(&r, "record.members", FWREL_SKIP, "no release record");
        step(&r, "exports", FWREL_SKIP, "no release record");
    } else if ((error = check_members(&r, b, rec)) != 0 ||
               (error = check_exports(&r, b, rec)) != 0) {
        return error;
    }
    return verdict_of(&r);
}
