/*
 * fwrel-verify - verify ESP app images: --info (what esptool image-info
 * reports), compatibility mode (what espsecure verify-signature answers) and
 * device mode (what a given device would accept, step by step, in its order).
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runner.h"

#include "fwrel/auditor.h"
#include "fwrel/bundle.h"
#include "fwrel/bundle_verify.h"
#include "fwrel/device.h"
#include "fwrel/espimg.h"
#include "fwrel/html.h"
#include "fwrel/io.h"
#include "fwrel/junit.h"
#include "fwrel/key.h"
#include "fwrel/manifest.h"
#include "fwrel/policy.h"
#include "fwrel/report.h"
#include "fwrel/sbv1.h"
#include "fwrel/sbv2.h"
#include "fwrel/version.h"
#include "util.h"

static struct {
    int info, sbv1, sbv2, skip_padding, manifest, bundle;
    const char *key;
    const char *device;
    const char *policy, *gnupg_home, *against;
    const char *repo, *product, *keystore, *jobs, *report; /* --repo */
    const char *junit;
    const char *shard;   /* --repo --shard I/N */
    int merge;           /* --merge-reports */
    const char *extract; /* --bundle --extract DIR */
    int all;
    int no_policy; /* --bundle (CI) or --repo without a policy, said explicitly */
} o;

static const fwrel_opt opts[] = {
    {"info", 0, FWREL_OPT_FLAG, NULL, "report what the image holds (like esptool image-info)",
     &o.info},
    {"device", 0, FWREL_OPT_STR, "PROFILE", "verify as the device described by PROFILE would",
     &o.device},
    {"manifest", 0, FWREL_OPT_FLAG, NULL,
     "with --device: FILE is an encrypted manifest; check it as that device would", &o.manifest},
    {"bundle", 0, FWREL_OPT_FLAG, NULL,
     "FILE is a release bundle: with --device as that device would take it, else as CI checks it",
     &o.bundle},
    {"policy", 'p', FWREL_OPT_STR, "POLICY",
     "with --bundle (CI) or --repo: the release policy; its approvers and threshold are used",
     &o.policy},
    {"no-policy", 0, FWREL_OPT_FLAG, NULL,
     "with --bundle (CI) or --repo: check without a policy (the approvers and threshold are then "
     "each release's own, not checked; the verdict says so)",
     &o.no_policy},
    {"gnupg-home", 0, FWREL_OPT_STR, "DIR",
     "with --bundle (CI) or --repo: GnuPG home with the approvers' public keys (default "
     "$GNUPGHOME, else ~/.gnupg)",
     &o.gnupg_home},
    {"against", 0, FWREL_OPT_STR, "IMAGE",
     "with --bundle (CI): IMAGE must be the image the release was made from", &o.against},
    {"repo", 'r', FWREL_OPT_STR, "RELEASES",
     "audit the release repository RELEASES: every tag, bundle, the audit log, the history",
     &o.repo},
    {"product", 0, FWREL_OPT_STR, "PRODUCT", "with --repo: audit only this product's releases",
     &o.product},
    {"all", 0, FWREL_OPT_FLAG, NULL, "with --repo: audit every product's releases", &o.all},
    {"keystore", 'K', FWREL_OPT_STR, "DIR",
     "with --repo: check each release's key ids against this keystore's index", &o.keystore},
    {"jobs", 'j', FWREL_OPT_STR, "N", "with --repo: verify N releases at once (default: CPUs)",
     &o.jobs},
    {"shard", 0, FWREL_OPT_STR, "I/N", "with --repo: audit shard I of N only (1 <= I <= N <= 1024)",
     &o.shard},
    {"merge-reports", 0, FWREL_OPT_FLAG, NULL, "merge the shards' --json reports (the FILEs)",
     &o.merge},
    {"extract", 0, FWREL_OPT_STR, "DIR",
     "with --bundle: once verified, write its members (all, or the MEMBERs) into DIR", &o.extract},
    {"report", 0, FWREL_OPT_STR, "FILE.html",
     "with --repo: also write a self-contained HTML report (replaced if it exists)", &o.report},
    {"sbv2", 0, FWREL_OPT_FLAG, NULL, "compatibility mode: espsecure verify-signature --version 2",
     &o.sbv2},
    {"sbv1", 0, FWREL_OPT_FLAG, NULL, "compatibility mode: espsecure verify-signature --version 1",
     &o.sbv1},
    {"key", 'k', FWREL_OPT_STR, "KEY",
     "with --sbv2/--sbv1: public or private PEM (SBv1: also raw 64-byte) key", &o.key},
    {"keyfile", 0, FWREL_OPT_ALIAS, "key", "espsecure's spelling", NULL},
    {"junit", 0, FWREL_OPT_STR, "FILE",
     "also write the report as JUnit XML to FILE, one test case per step (replaced if it exists)",
     &o.junit},
    {"skip-padding", 0, FWREL_OPT_FLAG, NULL, "with --sbv2: the data is not 4 KiB-aligned",
     &o.skip_padding},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/* "esp32c3" -> "ESP32-C3", as esptool names chips. */
static void chip_display(char *out, size_t n, const fwrel_chip *chip)
{
    if (chip == NULL) {
        snprintf(out, n, "unknown");
        return;
    }
    const char *s = chip->name;
    size_t i = 0;
    for (; *s && i + 2 < n; s++) {
        if (s - chip->name == 5 && i + 2 < n)
            out[i++] = '-';
        out[i++] = (char)toupper((unsigned char)*s);
    }
    out[i] = '\0';
}

static json_t *hexj(const uint8_t *p, size_t n)
{
    char hex[2 * 64 + 1];
    fwrel_hex(hex, p, n);
    return json_string(hex);
}

/* Signature area after the image: an SBv2 sector at the 4 KiB boundary, or an SBv1 block. */
static void info_signature(fwrel_ctx *ctx, fwrel_src *src, const fwrel_espimg *img, json_t *j)
{
    uint64_t aligned = (img->image_len + 4095) & ~(uint64_t)4095;
    uint8_t sector[FWREL_SBV2_SECTOR_LEN];
    if (img->file_len == img->image_len) {
        fwrel_cmd_print(ctx, "\nSignature: none\n");
        json_object_set_new(j, "signature", json_string("none"));
        return;
    }
    if (img->file_len == aligned + FWREL_SBV2_SECTOR_LEN && fwrel_src_seek(src, aligned) == 0 &&
        fwrel_src_read(src, sector, sizeof(sector)) == 0) {
        fwrel_sbv2_sector sec;
        fwrel_sbv2_parse_sector(&sec, sector);
        json_t *blocks = json_array();
        fwrel_cmd_print(ctx, "\nSecure Boot V2 signature sector\n"
                             "===============================\n");
        for (int i = 0; i < FWREL_SBV2_MAX_BLOCKS; i++) {
            const fwrel_sbv2_block *b = &sec.blocks[i];
            char hex[65];
            if (!b->valid) {
                fwrel_cmd_print(ctx, "Signature block %d: %s\n", i,
                                b->present ? "invalid" : "absent");
                continue;
            }
            fwrel_hex(hex, b->key_digest, 32);
            const char *scheme = b->scheme == FWREL_SCHEME_RSA3072    ? "RSA-3072"
                                 : b->scheme == FWREL_SCHEME_ECDSA192 ? "ECDSA P-192"
                                 : b->scheme == FWREL_SCHEME_ECDSA256 ? "ECDSA P-256"
                                 : b->scheme == FWREL_SCHEME_ECDSA384 ? "ECDSA P-384"
                                                                      : "unknown";
            fwrel_cmd_print(ctx, "Signature block %d: %s, public key digest %s\n", i, scheme, hex);
            json_array_append_new(blocks, json_pack("{s:i,s:s,s:s}", "block", i, "scheme", scheme,
                                                    "key_digest", hex));
        }
        json_object_set_new(j, "signature", json_string("sbv2"));
        json_object_set_new(j, "sbv2_blocks", blocks);
        return;
    }
    if (img->file_len == img->image_len + FWREL_SBV1_BLOCK_LEN) {
        fwrel_cmd_print(ctx, "\nSignature: a 68-byte Secure Boot V1 block may follow the image\n");
        json_object_set_new(j, "signature", json_string("sbv1?"));
        return;
    }
    fwrel_cmd_print(ctx, "\nTrailing data: %llu bytes past the image\n",
                    (unsigned long long)(img->file_len - img->image_len));
    json_object_set_new(j, "signature", json_string("unknown"));
    json_object_set_new(j, "trailing_bytes",
                        json_integer((json_int_t)(img->file_len - img->image_len)));
}

static int run_info(fwrel_ctx *ctx, const char *path)
{
    fwrel_src src;
    fwrel_espimg img;
    char chip[32], hex[65];
    int error;

    if ((error = fwrel_src_open(&src, path, FWREL_IMAGE_MAX)) != 0)
        return fwrel_cmd_fail(ctx, path);
    if ((error = fwrel_espimg_parse(&img, &src, NULL)) != 0) {
        fwrel_src_close(&src);
        return fwrel_cmd_fail(ctx, path);
    }
    chip_display(chip, sizeof(chip), img.chip);
    json_t *j = json_object();
    json_object_set_new(j, "file_size", json_integer((json_int_t)img.file_len));
    json_object_set_new(j, "image_len", json_integer((json_int_t)img.image_len));
    json_object_set_new(j, "chip", json_string(img.chip ? img.chip->name : "unknown"));
    json_object_set_new(j, "chip_id", json_integer(img.chip_id));
    json_object_set_new(j, "entry_point", json_integer(img.entry_addr));
    json_object_set_new(j, "segment_count", json_integer(img.segment_count));
    json_object_set_new(j, "flash_size", json_string(fwrel_espimg_flash_size_name(img.spi_size)));
    json_object_set_new(j, "flash_mode", json_string(fwrel_espimg_spi_mode_name(img.spi_mode)));
    json_object_set_new(j, "min_chip_rev_full", json_integer(img.min_chip_rev_full));
    json_object_set_new(j, "max_chip_rev_full", json_integer(img.max_chip_rev_full));

    fwrel_cmd_print(ctx, "File size: %llu (bytes)\nDetected image type: %s\n\n",
                    (unsigned long long)img.file_len, chip);
    fwrel_cmd_print(ctx,
                    "Image header\n============\nEntry point: 0x%08x\nSegments: %u\n"
                    "Flash size: %s\nFlash mode: %s\nWP pin: 0x%02x\nChip ID: %u (%s)\n"
                    "Minimal chip revision: v%u.%u, (legacy min_rev = %u)\n"
                    "Maximal chip revision: v%u.%u\n\n",
                    img.entry_addr, img.segment_count, fwrel_espimg_flash_size_name(img.spi_size),
                    fwrel_espimg_spi_mode_name(img.spi_mode), img.wp_pin, img.chip_id, chip,
                    img.min_chip_rev_full / 100, img.min_chip_rev_full % 100, img.min_chip_rev,
                    img.max_chip_rev_full / 100, img.max_chip_rev_full % 100);
    fwrel_cmd_print(ctx, "Segments information\n====================\n"
                         "Segment   Length   Load addr   File offs\n"
                         "-------  -------  ----------  ----------\n");
    json_t *segs = json_array();
    for (unsigned i = 0; i < img.segment_count; i++) {
        const fwrel_espimg_segment *s = &img.segments[i];
        fwrel_cmd_print(ctx, "%7u  0x%05x  0x%08x  0x%08llx\n", i, s->data_len, s->load_addr,
                        (unsigned long long)(s->data_offset - 8));
        json_array_append_new(segs, json_pack("{s:I,s:I,s:I}", "length", (json_int_t)s->data_len,
                                              "load_addr", (json_int_t)s->load_addr, "file_offset",
                                              (json_int_t)(s->data_offset - 8)));
    }
    json_object_set_new(j, "segments", segs);
    fwrel_cmd_print(ctx, "\nImage footer\n============\nChecksum: 0x%02x (%s)\n",
                    img.checksum_stored, img.checksum_ok ? "valid" : "invalid");
    json_object_set_new(j, "checksum_valid", json_boolean(img.checksum_ok));
    if (img.hash_appended) {
        fwrel_hex(hex, img.sha256_stored, 32);
        fwrel_cmd_print(ctx, "Validation hash: %s (%s)\n", hex,
                        img.sha256_ok ? "valid" : "invalid");
        json_object_set_new(j, "validation_hash", json_string(hex));
        json_object_set_new(j, "validation_hash_valid", json_boolean(img.sha256_ok));
    } else {
        json_object_set_new(j, "validation_hash", json_null());
    }
    if (img.has_app_desc) {
        const fwrel_app_desc *d = &img.app_desc;
        fwrel_hex(hex, d->app_elf_sha256, 32);
        fwrel_cmd_print(ctx,
                        "\nApplication information\n=======================\n"
                        "Project name: %s\nApp version: %s\nCompile time: %s %s\n"
                        "ELF file SHA256: %s\nESP-IDF: %s\n"
                        "Minimal eFuse block revision: %u.%u\n"
                        "Maximal eFuse block revision: %u.%u\nSecure version: %u\n",
                        d->project_name, d->version, d->date, d->time, hex, d->idf_ver,
                        d->min_efuse_blk_rev_full / 100, d->min_efuse_blk_rev_full % 100,
                        d->max_efuse_blk_rev_full / 100, d->max_efuse_blk_rev_full % 100,
                        d->secure_version);
        json_object_set_new(
            j, "app",
            json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:i,s:i,s:I}", "project_name", d->project_name,
                      "version", d->version, "idf_ver", d->idf_ver, "date", d->date, "time",
                      d->time, "elf_sha256", hexj(d->app_elf_sha256, 32), "min_efuse_blk_rev_full",
                      d->min_efuse_blk_rev_full, "max_efuse_blk_rev_full",
                      d->max_efuse_blk_rev_full, "secure_version", (json_int_t)d->secure_version));
    } else {
        fwrel_cmd_print(ctx, "\nApplication information\n=======================\n"
                             "No application descriptor (image built before ESP-IDF v3.2)\n");
        json_object_set_new(j, "app", json_null());
    }
    info_signature(ctx, &src, &img, j);
    fwrel_src_close(&src);
    fwrel_cmd_set(ctx, "image", j);
    if ((error = fwrel_espimg_check_integrity(&img)) != 0)
        return fwrel_cmd_fail(ctx, path);
    return 0;
}

/* --junit: the reports as JUnit XML, one suite each (junit.h), written through fwrel_out. The
 * verdict (the last error) is kept for the caller; a write failure is reported and returned. */
static int junit_write(fwrel_ctx *ctx, const char *const *names, const fwrel_report *const *reps,
                       size_t n)
{
    fwrel_error verdict = *fwrel_error_last();
    fwrel_out *out = NULL;
    char *xml = NULL;
    size_t len = 0;
    int error;

    if ((error = fwrel_junit_render(&xml, &len, ctx->cmd->name, names, reps, n)) == 0 &&
        (error = fwrel_out_open(&out, o.junit, FWREL_OUT_FORCE, 0644)) == 0 &&
        (error = fwrel_out_write(out, xml, len)) == 0) {
        error = fwrel_out_commit(out);
        out = NULL;
    }
    fwrel_out_abort(out);
    free(xml);
    if (error)
        return fwrel_cmd_fail(ctx, o.junit);
    fwrel_error_restore(&verdict);
    return 0;
}

static int junit_one(fwrel_ctx *ctx, const char *name, const fwrel_report *r)
{
    return o.junit != NULL ? junit_write(ctx, &name, &r, 1) : 0;
}

static int run_compat(fwrel_ctx *ctx, const char *path)
{
    fwrel_pkey *key = NULL;
    fwrel_report *report = NULL;
    fwrel_src src = {.fd = -1};
    int error;

    if ((error = fwrel_key_load_public(&key, o.key, o.sbv1)) != 0)
        return fwrel_cmd_fail(ctx, o.key);
    if ((error = fwrel_report_new(&report)) != 0 ||
        (error = fwrel_src_open(&src, path, FWREL_IMAGE_MAX)) != 0) {
        error = fwrel_cmd_fail(ctx, path);
        goto done;
    }
    if (o.sbv1)
        error = fwrel_sbv1_verify_compat(report, &src, key);
    else
        error = fwrel_sbv2_verify_compat(report, &src, key, o.skip_padding);
    fwrel_cmd_report(ctx, report);
    int jerr = junit_one(ctx, path, report);
    if (jerr != 0) {
        error = jerr;
        goto done;
    }
    fwrel_cmd_set(ctx, "mode", json_string(o.sbv1 ? "sbv1-compat" : "sbv2-compat"));
    fwrel_cmd_set(ctx, "valid", json_boolean(error == 0));
    if (error) {
        error = fwrel_cmd_fail(ctx, path);
        goto done;
    }
    fwrel_cmd_print(ctx, "Signature is valid.\n");
done:
    fwrel_src_close(&src);
    fwrel_report_free(report);
    fwrel_key_free(key);
    return error;
}

static int run_device(fwrel_ctx *ctx, const char *path)
{
    fwrel_device *dev = NULL;
    fwrel_report *report = NULL;
    fwrel_src src = {.fd = -1};
    int error;

    if ((error = fwrel_device_load(&dev, o.device)) != 0)
        return fwrel_cmd_fail(ctx, o.device);
    if ((error = fwrel_report_new(&report)) != 0 ||
        (error = fwrel_src_open(&src, path, FWREL_IMAGE_MAX)) != 0) {
        error = fwrel_cmd_fail(ctx, path);
        goto done;
    }
    if (o.manifest) {
        uint8_t *env = NULL;
        size_t len = 0;
        fwrel_src_close(&src);
        if ((error = fwrel_io_read_small(&env, &len, path, FWREL_MANIFEST_ENVELOPE_MAX)) != 0) {
            error = fwrel_cmd_fail(ctx, path);
            goto done;
        }
        error = fwrel_device_verify_manifest(report, dev, env, len, (uint64_t)time(NULL));
        free(env);
    } else {
        error = fwrel_device_verify_image(report, dev, &src);
    }
    fwrel_cmd_report(ctx, report);
    int jerr = junit_one(ctx, path, report);
    if (jerr != 0) {
        error = jerr;
        goto done;
    }
    fwrel_cmd_set(ctx, "mode", json_string("device"));
    fwrel_cmd_set(ctx, "accepted", json_boolean(error == 0));
    if (error) {
        error = fwrel_cmd_fail(ctx, path);
        goto done;
    }
    fwrel_cmd_print(ctx, "ACCEPTED: the device would accept %s\n", path);
done:
    fwrel_src_close(&src);
    fwrel_report_free(report);
    fwrel_device_free(dev);
    return error;
}

static int run_bundle(fwrel_ctx *ctx, const char *path)
{
    fwrel_device *dev = NULL;
    fwrel_report *report = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    fwrel_bundle_verify_ci_opts co = {fwrel_cmd_gnupg_home(o.gnupg_home), o.policy, o.against};
    int error;

    if (o.device != NULL && (error = fwrel_device_load(&dev, o.device)) != 0)
        return fwrel_cmd_fail(ctx, o.device);
    if ((error = fwrel_report_new(&report)) != 0) {
        error = fwrel_cmd_fail(ctx, path);
        goto done;
    }
    if (dev != NULL) {
        error = fwrel_bundle_verify_device(report, dev, path, (uint64_t)time(NULL));
    } else if (o.extract != NULL) {
        /* --extract: the bytes verified are the bytes written (read once). */
        if ((error = fwrel_io_read_small(&data, &len, path, FWREL_BUNDLE_FILE_MAX)) != 0) {
            error = fwrel_cmd_fail(ctx, path);
            goto done;
        }
        error = fwrel_bundle_verify_ci_mem(report, data, len, &co);
    } else {
        error = fwrel_bundle_verify_ci(report, path, &co);
    }
    fwrel_cmd_report(ctx, report);
    int jerr = junit_one(ctx, path, report);
    if (jerr != 0) {
        error = jerr;
        goto done;
    }
    fwrel_cmd_set(ctx, "mode", json_string(dev != NULL ? "bundle-device" : "bundle-ci"));
    fwrel_cmd_set(ctx, "accepted", json_boolean(error == 0));
    if (dev == NULL)
        fwrel_cmd_set(ctx, "policy_checked", json_boolean(o.policy != NULL));
    if (error) {
        /* The error names the profile or the policy when it is about them (error.h). */
        error = fwrel_cmd_fail(ctx, path);
        goto done;
    }
    if (o.extract != NULL) {
        /* Only now, every check passed: the members, written under the directory alone. */
        fwrel_bundle *b = NULL;
        if ((error = fwrel_bundle_read_mem(&b, data, len)) == 0)
            error = fwrel_bundle_extract(b, o.extract, (const char *const *)ctx->argv + 1,
                                         (size_t)ctx->argc - 1);
        fwrel_bundle_free(b);
        if (error != 0) {
            error = fwrel_cmd_fail(ctx, path);
            goto done;
        }
        fwrel_cmd_set(ctx, "extracted_to", json_string(o.extract));
    }
    if (dev != NULL)
        fwrel_cmd_print(ctx, "ACCEPTED: the device would accept %s\n", path);
    else if (o.no_policy)
        /* Said in the verdict: what the policy would have checked was not. */
        fwrel_cmd_print(ctx,
                        "VERIFIED (without policy: approvers and thresholds not checked against "
                        "a policy, the bundle's own were used): every other check of %s passed\n",
                        path);
    else
        fwrel_cmd_print(ctx, "VERIFIED: every check of %s passed\n", path);
done:
    free(data);
    fwrel_report_free(report);
    fwrel_device_free(dev);
    return error;
}

/* --- --repo: the auditor mode (docs/verify.md "Auditor mode") --------------------------- */

/* Text from the repository, made safe for a terminal: control characters become '?'. */
static void term_safe(char *out, size_t n, const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < n; i++)
        out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    out[i] = '\0';
}

static json_t *repo_steps_json(const fwrel_report *r)
{
    static const char *const names[] = {"pass", "fail", "skip", "info"};
    json_t *a = json_array();
    for (size_t i = 0; i < fwrel_report_count(r); i++) {
        const fwrel_step *s = fwrel_report_step(r, i);
        json_array_append_new(a, json_pack("{s:s,s:s,s:s}", "step", s->name, "verdict",
                                           names[s->verdict & 3], "detail", s->detail));
    }
    return a;
}

static json_t *repo_release_json(const fwrel_audit_release *R)
{
    const fwrel_step *f = fwrel_report_first_failure(R->report);
    json_t *ap = json_array(), *pins = json_array(), *keys = json_array();
    for (size_t i = 0; i < R->napprovals; i++)
        json_array_append_new(ap, json_string(R->approvals[i]));
    for (size_t i = 0; R->have_record && i < R->record.napprovers; i++)
        json_array_append_new(pins, json_string(R->record.approvers[i]));
    for (size_t i = 0; i < R->nkeys; i++) {
        const fwrel_audit_key *k = &R->keys[i];
        json_t *kj = json_pack("{s:s,s:s}", "role", k->role, "id", k->id);
        if (k->status[0] != '\0') {
            json_object_set_new(kj, "status", json_string(k->status));
            if (k->name[0] != '\0') {
                json_object_set_new(kj, "name", json_string(k->name));
                json_object_set_new(kj, "epoch", json_integer(k->epoch));
            }
        }
        json_array_append_new(keys, kj);
    }
    return json_pack(
        "{s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:I,s:o,s:o,s:i,s:o,s:s,s:o,s:o}", "tag", R->tag,
        "product", R->product, "channel", R->channel, "version", R->version, "secure_version",
        (json_int_t)R->secure_version, "counter", (json_int_t)R->counter, "commit", R->commit,
        "signer", R->signer, "time", (json_int_t)R->time, "approvers", ap, "pinned_approvers", pins,
        "approvals_required", (int)R->approvals_required, "keys", keys, "verdict",
        f != NULL ? "fail" : "pass", "failed_step", f != NULL ? json_string(f->name) : json_null(),
        "steps", repo_steps_json(R->report));
}

/* The audit's report (docs/verify.md "Auditor mode"): what --json prints of a run, a shard or a
 * merge of shards (--merge-reports reads it back), and what the text and --junit are made from. */
static json_t *repo_json(const fwrel_auditor *a, const char *path)
{
    json_t *rels = json_array(), *logs = json_array(), *all = json_array(), *shard = json_null();
    unsigned si, sn;
    for (size_t i = 0; i < fwrel_auditor_count(a); i++)
        json_array_append_new(rels, repo_release_json(fwrel_auditor_release(a, i)));
    for (size_t i = 0; i < fwrel_auditor_total(a); i++)
        json_array_append_new(all, json_string(fwrel_auditor_tag(a, i)));
    for (size_t i = 0; i < fwrel_auditor_nlogs(a); i++) {
        const fwrel_audit_log_summary *l = fwrel_auditor_log(a, i);
        json_array_append_new(
            logs, json_pack("{s:s,s:b,s:s,s:I,s:s,s:I,s:I,s:I,s:s,s:s}", "path", l->path, "valid",
                            l->valid, "error", l->error, "entries", (json_int_t)l->entries, "head",
                            l->head, "ok", (json_int_t)l->ok, "failed", (json_int_t)l->fail,
                            "releases", (json_int_t)l->releases, "first_time", l->first_time,
                            "last_time", l->last_time));
        json_object_set_new(json_array_get(logs, i), "untagged",
                            json_integer((json_int_t)l->untagged));
        json_object_set_new(json_array_get(logs, i), "first_untagged",
                            json_string(l->first_untagged));
    }
    fwrel_auditor_shard(a, &si, &sn);
    if (sn != 0)
        shard = json_pack("{s:i,s:i}", "index", (int)si, "count", (int)sn);
    return json_pack("{s:s,s:i,s:o,s:o,s:o,s:I,s:{s:s,s:s,s:o,s:o},s:o}", "mode", "repo", "jobs",
                     (int)fwrel_auditor_jobs(a), "releases", rels, "repository_steps",
                     repo_steps_json(fwrel_auditor_report(a)), "audit_logs", logs,
                     "failed_releases", (json_int_t)fwrel_auditor_failed(a), "repository", "path",
                     path, "state", fwrel_auditor_state(a), "product",
                     o.product ? json_string(o.product) : json_null(), "releases", all, "shard",
                     shard);
}

static const char *jstr(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s != NULL ? s : "";
}

/* The text of a report: the table, every failed step by release, the repository's steps. */
static void repo_print(fwrel_ctx *ctx, const json_t *j)
{
    const json_t *rels = json_object_get(j, "releases"), *R, *s;
    size_t i, k;
    fwrel_cmd_print(ctx, "%-40s %-12s %5s %7s %-10s %s\n", "TAG", "VERSION", "SV", "COUNTER",
                    "APPROVERS", "VERDICT");
    json_array_foreach(rels, i, R)
    {
        char tag[256], ver[33], ap[24];
        term_safe(tag, sizeof(tag), jstr(R, "tag"));
        term_safe(ver, sizeof(ver), jstr(R, "version"));
        snprintf(ap, sizeof(ap), "%zu of %u", json_array_size(json_object_get(R, "approvers")),
                 (unsigned)json_integer_value(json_object_get(R, "approvals_required")));
        fwrel_cmd_print(ctx, "%-40s %-12s %5u %7llu %-10s %s\n", tag, ver,
                        (unsigned)json_integer_value(json_object_get(R, "secure_version")),
                        (unsigned long long)json_integer_value(json_object_get(R, "counter")), ap,
                        strcmp(jstr(R, "verdict"), "fail") == 0 ? "FAILED" : "verified");
    }
    json_array_foreach(rels, i, R)
    {
        json_array_foreach(json_object_get(R, "steps"), k, s)
        {
            char tag[256], detail[FWREL_STEP_DETAIL_MAX];
            if (strcmp(jstr(s, "verdict"), "fail") != 0)
                continue;
            term_safe(tag, sizeof(tag), jstr(R, "tag"));
            term_safe(detail, sizeof(detail), jstr(s, "detail"));
            fwrel_cmd_print(ctx, "FAIL %s %s: %s\n", tag, jstr(s, "step"), detail);
        }
    }
    json_array_foreach(json_object_get(j, "repository_steps"), k, s)
    {
        char detail[FWREL_STEP_DETAIL_MAX], v[8];
        size_t n = 0;
        for (const char *p = jstr(s, "verdict"); *p && n + 1 < sizeof(v); p++)
            v[n++] = (char)toupper((unsigned char)*p);
        v[n] = '\0';
        term_safe(detail, sizeof(detail), jstr(s, "detail"));
        fwrel_cmd_print(ctx, "%s %s: %s\n", v, jstr(s, "step"), detail);
    }
}

/* A report's steps back as an fwrel_report (for --junit). */
static int steps_report(fwrel_report **out, const json_t *steps)
{
    static const char *const names[] = {"pass", "fail", "skip", "info"};
    const json_t *s;
    size_t i;
    int error = fwrel_report_new(out);
    json_array_foreach(steps, i, s)
    {
        int v = FWREL_INFO;
        for (int k = 0; k < 4; k++)
            if (strcmp(jstr(s, "verdict"), names[k]) == 0)
                v = k == 0 ? FWREL_PASS : k == 1 ? FWREL_FAIL : k == 2 ? FWREL_SKIP : FWREL_INFO;
        if (error == 0)
            error = fwrel_report_add(*out, jstr(s, "step"), v, "%s", jstr(s, "detail"));
    }
    return error;
}

/* --junit of a report: one suite per release, then the repository's. */
static int repo_junit(fwrel_ctx *ctx, const json_t *j, const char *path)
{
    const json_t *rels = json_object_get(j, "releases");
    size_t n = json_array_size(rels);
    const char **names = calloc(n + 1, sizeof(*names));
    fwrel_report **reps = calloc(n + 1, sizeof(*reps));
    int e = 0;
    if (names == NULL || reps == NULL) {
        fwrel_error_set(FWREL_EIO, "out of memory");
        e = fwrel_cmd_fail(ctx, o.junit);
        goto done;
    }
    for (size_t i = 0; i <= n && e == 0; i++) {
        const json_t *R = json_array_get(rels, i);
        names[i] = i < n ? jstr(R, "tag") : path;
        e = steps_report(&reps[i],
                         json_object_get(i < n ? R : j, i < n ? "steps" : "repository_steps"));
    }
    if (e != 0)
        e = fwrel_cmd_fail(ctx, o.junit);
    else
        e = junit_write(ctx, names, (const fwrel_report *const *)reps, n + 1);
done:
    for (size_t i = 0; reps != NULL && i <= n; i++)
        fwrel_report_free(reps[i]);
    free(names);
    free(reps);
    return e;
}

/* What a run, a shard and a merge print once the report j is whole: --junit, the report's keys
 * and text, the verdict line. error is the audit's verdict (0, or FWREL_EVERIFY, its message
 * set), path the repository's. */
static int repo_finish(fwrel_ctx *ctx, json_t *j, int error, const char *path)
{
    fwrel_error verdict = *fwrel_error_last();
    const json_t *shard = json_object_get(j, "shard"), *pol = json_object_get(j, "policy");
    size_t n = json_array_size(json_object_get(j, "releases"));
    int checked = json_is_string(pol);
    const char *key;
    json_t *v;
    if (o.junit != NULL) {
        int e = repo_junit(ctx, j, path);
        if (e != 0)
            return e;
        fwrel_error_restore(&verdict);
    }
    repo_print(ctx, j);
    json_object_foreach(j, key, v) fwrel_cmd_set(ctx, key, json_incref(v));
    /* Without a policy nothing vouches for the approvers: not "verified", whatever passed. */
    fwrel_cmd_set(ctx, "verified", json_boolean(error == 0 && checked));
    fwrel_cmd_set(ctx, "checks_passed", json_boolean(error == 0));
    if (error != 0)
        return fwrel_cmd_fail(ctx, path);
    if (json_is_object(shard))
        fwrel_cmd_print(
            ctx,
            "SHARD %lld/%lld: %zu of %zu releases, every check passed (merge the "
            "shards' --json reports with --merge-reports for the repository's "
            "verdict)\n",
            json_integer_value(json_object_get(shard, "index")),
            json_integer_value(json_object_get(shard, "count")), n,
            json_array_size(json_object_get(json_object_get(j, "repository"), "releases")));
    else if (checked)
        fwrel_cmd_print(ctx, "VERIFIED: %zu releases, every check passed\n", n);
    else
        fwrel_cmd_print(ctx,
                        "NOT VERIFIED AGAINST A POLICY: %zu releases, every check passed, but "
                        "approvals and tag signers were checked only against each release's own "
                        "record (--no-policy)\n",
                        n);
    return 0;
}

/* The page's title: the repository directory's last component. */
static void repo_title(char *out, size_t n, const char *path)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/')
        start--;
    snprintf(out, n, "%.*s", (int)(len - start), path + start);
}

static int repo_report(const fwrel_auditor *a, const char *repo, const char *file)
{
    char *html = NULL, title[256];
    size_t len = 0;
    fwrel_out *out = NULL;
    int error;
    repo_title(title, sizeof(title), repo);
    if ((error = fwrel_html_audit(&html, &len, a, title, FWREL_HTML_MAX)) != 0)
        return error;
    if ((error = fwrel_out_open(&out, file, FWREL_OUT_FORCE, 0644)) == 0 &&
        (error = fwrel_out_write(out, html, len)) == 0)
        error = fwrel_out_commit(out);
    else if (out != NULL)
        fwrel_out_abort(out);
    free(html);
    return error;
}

/* --shard I/N: two decimal numbers without sign or leading zero, 1 <= I <= N <= the bound. */
static int parse_shard(unsigned *i, unsigned *n, const char *s)
{
    const char *slash = strchr(s, '/');
    char a[8], b[8];
    uint64_t x, y;
    if (slash == NULL || slash == s || slash - s >= (ptrdiff_t)sizeof(a) ||
        strlen(slash + 1) == 0 || strlen(slash + 1) >= sizeof(b))
        return -1;
    snprintf(a, sizeof(a), "%.*s", (int)(slash - s), s);
    snprintf(b, sizeof(b), "%s", slash + 1);
    for (const char *p = a; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    for (const char *p = b; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    if (a[0] == '0' || b[0] == '0' || fwrel_parse_u64(&x, a, FWREL_AUDITOR_SHARDS_MAX) != 0 ||
        fwrel_parse_u64(&y, b, FWREL_AUDITOR_SHARDS_MAX) != 0 || x < 1 || x > y) {
        fwrel_error_clear();
        return -1;
    }
    *i = (unsigned)x;
    *n = (unsigned)y;
    return 0;
}

/* Progress on a terminal (fwrel_cmd_progress()): one line, rewritten. */
static void repo_progress(void *arg, size_t done, size_t total)
{
    fwrel_cmd_progress(arg, done, total, "auditing releases");
}

static int run_repo(fwrel_ctx *ctx)
{
    fwrel_auditor *a = NULL;
    fwrel_policy *pol = NULL;
    fwrel_auditor_opts ao = {fwrel_cmd_gnupg_home(o.gnupg_home),
                             o.product,
                             o.keystore,
                             0,
                             NULL,
                             o.no_policy,
                             0,
                             0,
                             fwrel_cmd_progress_on(ctx) ? repo_progress : NULL,
                             ctx};
    json_t *j = NULL;
    uint64_t jobs = 0;
    int error;

    if (ctx->argc != 0)
        return fwrel_cmd_usage(ctx, "--repo takes no FILE argument");
    if ((o.product != NULL) == (o.all != 0))
        return fwrel_cmd_usage(ctx, "--repo needs --product PRODUCT or --all");
    if ((o.policy != NULL) == (o.no_policy != 0))
        return fwrel_cmd_usage(ctx, o.no_policy ? "--policy and --no-policy exclude each other"
                                                : "--repo needs --policy POLICY (the approvers "
                                                  "in force) or --no-policy");
    if (o.jobs != NULL &&
        (fwrel_parse_u64(&jobs, o.jobs, FWREL_AUDITOR_JOBS_MAX) != 0 || jobs == 0))
        return fwrel_cmd_usage(ctx, "--jobs must be 1..%d", FWREL_AUDITOR_JOBS_MAX);
    if (o.shard != NULL && parse_shard(&ao.shard, &ao.nshards, o.shard) != 0)
        return fwrel_cmd_usage(ctx, "--shard must be I/N, 1 <= I <= N <= %d",
                               FWREL_AUDITOR_SHARDS_MAX);
    ao.jobs = (unsigned)jobs;
    if (o.policy != NULL && (error = fwrel_policy_load(&pol, o.policy)) != 0)
        return fwrel_cmd_fail(ctx, o.policy);
    if (pol != NULL && o.product != NULL && strcmp(pol->product, o.product) != 0) {
        error = fwrel_cmd_usage(ctx, "the policy is for product %s, not %s", pol->product,
                                o.product);
        fwrel_policy_free(pol);
        return error;
    }
    ao.policy = pol;
    error = fwrel_auditor_run(&a, o.repo, &ao);
    fwrel_cmd_progress_end(ctx);
    if (a == NULL) {
        /* A keystore that does not open is named by the error itself (error.h). */
        error = fwrel_cmd_fail(ctx, o.repo);
        fwrel_policy_free(pol);
        return error;
    }
    /* The audit's verdict is kept while the report is written: a report failure replaces it. */
    fwrel_error verdict = *fwrel_error_last();
    if (o.report != NULL) {
        int e = repo_report(a, o.repo, o.report);
        if (e != 0) {
            error = fwrel_cmd_fail(ctx, o.report);
            goto done;
        }
    }
    fwrel_error_restore(&verdict);
    j = repo_json(a, o.repo);
    if (pol != NULL) {
        char hex[65];
        fwrel_hex(hex, pol->sha256, 32);
        json_object_set_new(j, "policy", json_string(hex));
    } else {
        json_object_set_new(j, "policy", json_null());
    }
    error = repo_finish(ctx, j, error, o.repo);
done:
    json_decref(j);
    fwrel_auditor_free(a);
    fwrel_policy_free(pol);
    return error;
}

/* --- --merge-reports: the shards' reports, one audit's (docs/verify.md "Sharding") --------- */

/* Most bytes of one shard's report. */
#define MERGE_REPORT_MAX ((size_t)256 << 20)

/* A report refused: bad input, named by its file. */
#define merge_refuse(ctx, file, ...)                                                               \
    (fwrel_error_set(FWREL_EFORMAT, __VA_ARGS__), fwrel_cmd_fail(ctx, file))

/* The fields every shard of one audit has alike. */
static const char *const merge_same[] = {"version", "policy", "repository_steps", "audit_logs"};

static int run_merge(fwrel_ctx *ctx)
{
    size_t nf = (size_t)ctx->argc;
    if (nf == 0)
        return fwrel_cmd_usage(ctx, "--merge-reports needs the shards' reports (FILE...)");
    json_t **in = calloc(nf, sizeof(*in)), *j = NULL, *rels = json_array();
    const json_t **byshard = calloc(nf, sizeof(*byshard));
    const json_t *all = NULL, *repo0 = NULL, *rel;
    size_t nall = 0, failed = 0, i, k;
    json_int_t jobs = 0;
    const char *path = NULL;
    int error = 0;

    if (in == NULL || byshard == NULL || rels == NULL) {
        error = fwrel_cmd_fail(ctx, ctx->argv[0]);
        goto done;
    }
    for (i = 0; i < nf; i++) {
        const char *f = ctx->argv[i];
        uint8_t *buf = NULL;
        size_t len = 0;
        json_error_t je;
        if ((error = fwrel_io_read_small(&buf, &len, f, MERGE_REPORT_MAX)) != 0) {
            error = fwrel_cmd_fail(ctx, f);
            goto done;
        }
        in[i] = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
        free(buf);
        const json_t *r = in[i], *sh = json_object_get(r, "shard"), *rp;
        if (!json_is_object(r) || strcmp(jstr(r, "command"), "fwrel-verify") != 0 ||
            strcmp(jstr(r, "mode"), "repo") != 0 ||
            !json_is_array(json_object_get(r, "releases")) ||
            !json_is_array(json_object_get(r, "repository_steps")) ||
            !json_is_array(json_object_get(r, "audit_logs")) ||
            !(json_is_string(json_object_get(r, "policy")) ||
              json_is_null(json_object_get(r, "policy"))) ||
            !json_is_object(rp = json_object_get(r, "repository")) ||
            !json_is_array(json_object_get(rp, "releases"))) {
            error = merge_refuse(ctx, f, "not the --json report of fwrel-verify --repo");
            goto done;
        }
        if (strcmp(jstr(r, "version"), fwrel_version()) != 0) {
            error = merge_refuse(ctx, f, "made by fwrel %s, this is %s", jstr(r, "version"),
                                 fwrel_version());
            goto done;
        }
        if (!json_is_object(sh)) {
            error = merge_refuse(ctx, f, "not the report of a shard (--shard I/N)");
            goto done;
        }
        json_int_t si = json_integer_value(json_object_get(sh, "index")),
                   sn = json_integer_value(json_object_get(sh, "count"));
        if (sn != (json_int_t)nf || si < 1 || si > sn) {
            error = merge_refuse(ctx, f, "shard %lld/%lld, but %zu reports are merged",
                                 (long long)si, (long long)sn, nf);
            goto done;
        }
        if (byshard[si - 1] != NULL) {
            error =
                merge_refuse(ctx, f, "shard %lld/%lld given twice", (long long)si, (long long)sn);
            goto done;
        }
        byshard[si - 1] = r;
        if (i == 0) {
            repo0 = rp;
            path = jstr(rp, "path");
            all = json_object_get(rp, "releases");
            nall = json_array_size(all);
            continue;
        }
        /* One audit: one repository state, selection, policy, history and repository steps. */
        if (strcmp(jstr(rp, "state"), jstr(repo0, "state")) != 0) {
            error = merge_refuse(ctx, f,
                                 "another repository or state (%.16s..., the first "
                                 "report's %.16s...)",
                                 jstr(rp, "state"), jstr(repo0, "state"));
            goto done;
        }
        if (!json_equal(json_object_get(rp, "product"), json_object_get(repo0, "product")) ||
            !json_equal(json_object_get(rp, "releases"), all)) {
            error = merge_refuse(ctx, f, "another selection of releases than the first report's");
            goto done;
        }
        for (k = 0; k < sizeof(merge_same) / sizeof(*merge_same); k++)
            if (!json_equal(json_object_get(r, merge_same[k]),
                            json_object_get(in[0], merge_same[k]))) {
                error =
                    merge_refuse(ctx, f, "its %s differs from the first report's", merge_same[k]);
                goto done;
            }
    }
    /* Each release of the history in exactly one report, the one of its shard. */
    unsigned char *seen = calloc(nall ? nall : 1, 1);
    const json_t **found = calloc(nall ? nall : 1, sizeof(*found));
    if (seen == NULL || found == NULL) {
        free(seen);
        free(found);
        fwrel_error_set(FWREL_EIO, "out of memory");
        error = fwrel_cmd_fail(ctx, ctx->argv[0]);
        goto done;
    }
    for (i = 0; i < nf && error == 0; i++) {
        json_int_t si =
            json_integer_value(json_object_get(json_object_get(in[i], "shard"), "index"));
        json_array_foreach(json_object_get(in[i], "releases"), k, rel)
        {
            const char *tag = jstr(rel, "tag");
            size_t p = 0;
            while (p < nall && strcmp(json_string_value(json_array_get(all, p)), tag) != 0)
                p++;
            if (p == nall)
                error = merge_refuse(ctx, ctx->argv[i], "release %s is not in the history", tag);
            else if (seen[p])
                error = merge_refuse(ctx, ctx->argv[i], "release %s is given twice", tag);
            else if (fwrel_auditor_shard_of(tag, (unsigned)nf) != (unsigned)si)
                error = merge_refuse(ctx, ctx->argv[i], "release %s is shard %u's, not %lld's", tag,
                                     fwrel_auditor_shard_of(tag, (unsigned)nf), (long long)si);
            if (error != 0)
                break;
            seen[p] = 1;
            found[p] = rel;
        }
        json_int_t jb = json_integer_value(json_object_get(in[i], "jobs"));
        jobs = jb > jobs ? jb : jobs;
    }
    for (k = 0; k < nall && error == 0; k++)
        if (!seen[k])
            error = merge_refuse(
                ctx, ctx->argv[0], "release %s is in no report (shard %u of %zu)",
                json_string_value(json_array_get(all, k)),
                fwrel_auditor_shard_of(json_string_value(json_array_get(all, k)), (unsigned)nf),
                nf);
    for (k = 0; k < nall && error == 0; k++) {
        json_array_append(rels, (json_t *)found[k]);
        failed += strcmp(jstr(found[k], "verdict"), "fail") == 0;
    }
    free(seen);
    free(found);
    if (error != 0)
        goto done;

    /* The whole audit's report and verdict, as one run gives them. */
    j = json_pack("{s:s,s:I,s:O,s:O,s:O,s:I,s:O,s:n,s:O}", "mode", "repo", "jobs", jobs, "releases",
                  rels, "repository_steps", json_object_get(in[0], "repository_steps"),
                  "audit_logs", json_object_get(in[0], "audit_logs"), "failed_releases",
                  (json_int_t)failed, "repository", repo0, "shard", "policy",
                  json_object_get(in[0], "policy"));
    const json_t *first = NULL, *fs = NULL, *rs = NULL, *s;
    json_array_foreach(rels, k, rel)
    {
        if (first == NULL && strcmp(jstr(rel, "verdict"), "fail") == 0)
            first = rel;
    }
    if (first != NULL)
        json_array_foreach(json_object_get(first, "steps"), k, s)
        {
            if (fs == NULL && strcmp(jstr(s, "step"), jstr(first, "failed_step")) == 0 &&
                strcmp(jstr(s, "verdict"), "fail") == 0)
                fs = s;
        }
    json_array_foreach(json_object_get(j, "repository_steps"), k, s)
    {
        if (rs == NULL && strcmp(jstr(s, "verdict"), "fail") == 0)
            rs = s;
    }
    error = fwrel_auditor_verdict(
        failed, nall, first ? jstr(first, "tag") : NULL, first ? jstr(first, "failed_step") : NULL,
        fs ? jstr(fs, "detail") : "", rs ? jstr(rs, "step") : NULL, rs ? jstr(rs, "detail") : NULL);
    error = repo_finish(ctx, j, error, path);
done:
    json_decref(j);
    json_decref(rels);
    for (i = 0; in != NULL && i < nf; i++)
        json_decref(in[i]);
    free(in);
    free(byshard);
    return error;
}

static int run(fwrel_ctx *ctx)
{
    const char *image = ctx->argv[0];
    int modes =
        o.info + (o.device != NULL || o.bundle) + (o.sbv1 || o.sbv2) + (o.repo != NULL) + o.merge;
    if (modes != 1)
        return fwrel_cmd_usage(ctx, "choose one mode: --info, --device PROFILE, --bundle, "
                                    "--sbv2/--sbv1 --key KEY, --repo RELEASES or --merge-reports");
    if ((o.product || o.all || o.keystore || o.jobs || o.report || o.shard) && o.repo == NULL)
        return fwrel_cmd_usage(ctx, "--product, --all, --keystore, --jobs, --report and --shard "
                                    "go with --repo");
    if (o.merge) {
        if (o.policy || o.no_policy || o.gnupg_home || o.against || o.extract)
            return fwrel_cmd_usage(ctx, "--merge-reports takes only the reports, --junit and "
                                        "--json");
        return run_merge(ctx);
    }
    if (o.extract != NULL && !(o.bundle && !o.device))
        return fwrel_cmd_usage(ctx, "--extract goes with --bundle without --device");
    if (o.extract == NULL && ctx->argc > 1)
        return fwrel_cmd_usage(ctx, "give one FILE");
    if (o.junit != NULL && o.info)
        return fwrel_cmd_usage(ctx,
                               "--junit goes with --bundle, --device, --sbv2/--sbv1 or --repo");
    if (o.repo != NULL) {
        if (o.against)
            return fwrel_cmd_usage(ctx, "--against goes with --bundle");
        return run_repo(ctx);
    }
    if (ctx->argc < 1)
        return fwrel_cmd_usage(ctx, "give one FILE");
    if (o.sbv1 && o.sbv2)
        return fwrel_cmd_usage(ctx, "--sbv1 and --sbv2 exclude each other");
    if ((o.sbv1 || o.sbv2) != (o.key != NULL))
        return fwrel_cmd_usage(ctx, "--key goes with --sbv2 or --sbv1");
    if (o.manifest && !o.device)
        return fwrel_cmd_usage(ctx, "--manifest goes with --device PROFILE");
    if (o.skip_padding && !o.sbv2)
        return fwrel_cmd_usage(ctx, "--skip-padding goes with --sbv2");
    if ((o.policy || o.gnupg_home || o.against) && !(o.bundle && !o.device))
        return fwrel_cmd_usage(ctx, "--policy, --gnupg-home and --against go with --bundle "
                                    "without --device");
    if (o.bundle && o.manifest)
        return fwrel_cmd_usage(ctx, "--bundle and --manifest exclude each other");
    if (o.bundle && (o.info || o.sbv1 || o.sbv2))
        return fwrel_cmd_usage(ctx, "--bundle goes alone or with --device PROFILE");
    if (o.no_policy && !(o.bundle && !o.device))
        return fwrel_cmd_usage(ctx, "--no-policy goes with --bundle without --device");
    if (o.bundle && !o.device && (o.policy != NULL) == o.no_policy)
        return fwrel_cmd_usage(ctx, o.no_policy ? "--policy and --no-policy exclude each other"
                                                : "--bundle without --device (CI) needs --policy "
                                                  "POLICY, or --no-policy to check without one");
    if (o.bundle)
        return run_bundle(ctx, image);
    if (o.info)
        return run_info(ctx, image);
    if (o.device)
        return run_device(ctx, image);
    return run_compat(ctx, image);
}

const fwrel_cmd fwrel_command = {
    .name = "fwrel-verify",
    .synopsis = "--info IMAGE\n"
                "--device PROFILE IMAGE\n"
                "--manifest --device PROFILE MANIFEST.fwm\n"
                "--bundle --device PROFILE BUNDLE.fwb\n"
                "--bundle (--policy POLICY | --no-policy) [--gnupg-home DIR] [--against IMAGE] "
                "BUNDLE.fwb\n"
                "--sbv2 [--skip-padding] --key KEY IMAGE\n"
                "--sbv1 --key KEY IMAGE\n"
                "--bundle (--policy POLICY | --no-policy) --extract DIR BUNDLE.fwb [MEMBER...]\n"
                "--repo RELEASES (--product P | --all) (--policy POLICY | --no-policy) "
                "[--gnupg-home DIR] [--keystore DIR] [--jobs N] [--report FILE.html] "
                "[--shard I/N]\n"
                "--merge-reports [--junit FILE] REPORT.json...",
    .summary = "verify images, manifests and release bundles as the device, CI or espsecure would, "
               "and audit a release repository",
    .opts = opts,
    .min_args = 0,
    .max_args = FWREL_AUDITOR_SHARDS_MAX,
    .run = run,
};
