/* device.c - device profiles and the device's ordered acceptance checks (device.h;
 * docs/esp-formats.md §1.8, §2.3-§2.6, §3, §5; docs/device-profile.md). */
#include "fwrel/device.h"

#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "fwrel/encimg.h"
#include "fwrel/espimg.h"
#include "fwrel/key.h"
#include "fwrel/manifest.h"
#include "fwrel/sbv1.h"
#include "fwrel/sbv2.h"
#include "fwrel_dev.h"
#include "util.h"
#include "yamltree.h"

#define PROFILE_MAX (64 * 1024)

enum { SB_OFF, SB_V1, SB_V2 };

struct fwrel_device {
    const fwrel_chip *chip;
    uint16_t chip_rev;
    int has_blk_rev;
    uint16_t blk_rev;
    int sb;
    int scheme_version; /* 2 RSA, 3 ECDSA: the blocks the device's build checks */
    int curve_id;       /* ECDSA: ESP_SECURE_BOOT_ECDSA_CURVE_ID, 1 P-192, 2 P-256, 3 P-384 */
    uint8_t digests[3][32];
    int digest_set[3];
    int revoked[3];
    fwrel_pkey *v1_key;
    int anti_rollback;
    uint32_t efuse_secure_version;
    unsigned field_bits;
    int has_running;
    char running_version[33];
    uint32_t running_secure_version;
    uint64_t partition_size;
    char device_type[65];
    char product[65];     /* the product this device runs (manifest.product) */
    char channels[3][17]; /* the release channels it takes (manifest.channel) */
    size_t nchannels;
    fwrel_pkey *manifest_key; /* the recipient key embedded in the device */
    /* The trusted signers as the device core takes them (DER SubjectPublicKeyInfo), and how many
     * must sign. */
    uint8_t *trusted[FWREL_DEV_MAX_TRUSTED];
    size_t trusted_len[FWREL_DEV_MAX_TRUSTED];
    size_t ntrusted;
    unsigned threshold;
    int has_counter;
    uint64_t counter;      /* the last installed release counter */
    fwrel_pkey *image_key; /* esp_encrypted_img private key (pre-encrypted OTA), or NULL */
    char path[FWREL_ERROR_PATH_MAX]; /* the file it was loaded from, "" if none or too long */
};

void fwrel_device_free(fwrel_device *d)
{
    if (d == NULL)
        return;
    fwrel_key_free(d->v1_key);
    fwrel_key_free(d->manifest_key);
    fwrel_key_free(d->image_key);
    for (size_t i = 0; i < FWREL_DEV_MAX_TRUSTED; i++)
        OPENSSL_free(d->trusted[i]);
    free(d);
}

static int where(const yt_node *n, const char *fmt, ...) FWREL_PRINTF(2, 3);
static int where(const yt_node *n, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fwrel_error_set_at(FWREL_EFORMAT, (unsigned)n->line, (unsigned)n->col, "%s", msg);
}

/*
 * The one ECDSA curve the device's build takes (CONFIG_SECURE_BOOT_ECDSA_KEY_LEN_*, whose Kconfig
 * default is 256 bits on every chip; 384 only where SOC_ECDSA_SUPPORT_CURVE_P384): its
 * validate_signature_block() refuses a block of another curve ("ECDSA curve mismatch") before
 * looking at the key, whatever eFuse trusts (ESP-IDF v5.5.5 secure_boot_signatures_app.c).
 */
static int parse_curve(fwrel_device *d, const yt_node *sb)
{
    static const struct {
        const char *name;
        int id, scheme;
    } curves[] = {{"p192", 1, FWREL_SCHEME_ECDSA192},
                  {"p256", 2, FWREL_SCHEME_ECDSA256},
                  {"p384", 3, FWREL_SCHEME_ECDSA384}};
    const yt_node *n = yt_get(sb, "ecdsa_curve");
    const char *s;
    int error;
    d->curve_id = 2;
    if (n == NULL)
        return 0;
    if ((error = yt_str(&s, n, 8, "ecdsa_curve")) != 0)
        return error;
    if (d->sb != SB_V2 || d->scheme_version != 3)
        return where(n, "ecdsa_curve needs mode v2 with scheme ecdsa");
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
        if (strcmp(s, curves[i].name) == 0) {
            if (!(d->chip->sbv2_schemes & (unsigned)curves[i].scheme))
                return where(n, "%s has no Secure Boot V2 ECDSA on %s", d->chip->name, s);
            d->curve_id = curves[i].id;
            return 0;
        }
    return where(n, "ecdsa_curve must be p192, p256 or p384, not '%s'", s);
}

static int parse_secure_boot(fwrel_device *d, const yt_node *sb, const char *dir)
{
    static const char *const keys[] = {"mode",    "scheme", "ecdsa_curve", "key_digests",
                                       "revoked", "key",    NULL};
    const yt_node *n;
    const char *s;
    int error;
    if ((error = yt_expect(sb, YT_MAP, "secure_boot")) != 0 ||
        (error = yt_check_keys(sb, keys)) != 0)
        return error;
    if ((n = yt_get(sb, "mode")) == NULL)
        return where(sb, "secure_boot needs a mode (off, v1 or v2)");
    if ((error = yt_str(&s, n, 8, "mode")) != 0)
        return error;
    if (strcmp(s, "off") == 0)
        d->sb = SB_OFF;
    else if (strcmp(s, "v1") == 0)
        d->sb = SB_V1;
    else if (strcmp(s, "v2") == 0)
        d->sb = SB_V2;
    else
        return where(n, "mode must be off, v1 or v2, not '%s'", s);
    if (d->sb == SB_V1 && !d->chip->sbv1)
        return where(n, "%s has no Secure Boot V1", d->chip->name);
    if (d->sb == SB_V2 && d->chip->sbv2_blocks == 0)
        return where(n, "%s has no known Secure Boot V2", d->chip->name);

    d->scheme_version = (d->chip->sbv2_schemes & FWREL_SCHEME_RSA3072) ? 2 : 3;
    if ((n = yt_get(sb, "scheme")) != NULL) {
        if ((error = yt_str(&s, n, 16, "scheme")) != 0)
            return error;
        if (strcmp(s, "rsa3072") == 0 && (d->chip->sbv2_schemes & FWREL_SCHEME_RSA3072))
            d->scheme_version = 2;
        else if (strcmp(s, "ecdsa") == 0 &&
                 (d->chip->sbv2_schemes & ~(unsigned)FWREL_SCHEME_RSA3072))
            d->scheme_version = 3;
        else
            return where(n, "scheme must be one %s supports (rsa3072 or ecdsa), not '%s'",
                         d->chip->name, s);
    }
    if ((error = parse_curve(d, sb)) != 0)
        return error;
    if ((n = yt_get(sb, "key_digests")) != NULL) {
        if ((error = yt_expect(n, YT_SEQ, "key_digests")) != 0)
            return error;
        if (n->count > 3 || n->count > d->chip->sbv2_blocks)
            return where(n, "%s has %u key digest slot%s, %zu given", d->chip->name,
                         d->chip->sbv2_blocks, d->chip->sbv2_blocks == 1 ? "" : "s", n->count);
        for (size_t i = 0; i < n->count; i++) {
            const yt_node *h = n->items[i];
            size_t len = d->chip->key_digest_len;
            if ((error = yt_str(&s, h, 64, "key digest")) != 0)
                return error;
            if (strcmp(s, "") == 0 || strcmp(s, "none") == 0)
                continue;
            if (fwrel_unhex(d->digests[i], len, s) != 0)
                return where(h, "key digest must be %zu bytes of hex", len);
            d->digest_set[i] = 1;
        }
    }
    if ((n = yt_get(sb, "revoked")) != NULL) {
        if ((error = yt_expect(n, YT_SEQ, "revoked")) != 0)
            return error;
        for (size_t i = 0; i < n->count; i++) {
            uint64_t slot;
            if ((error = yt_u64(&slot, n->items[i], 2, "revoked slot")) != 0)
                return error;
            d->revoked[slot] = 1;
        }
    }
    if ((n = yt_get(sb, "key")) != NULL) {
        char path[4096];
        if ((error = yt_str(&s, n, 1024, "key")) != 0)
            return error;
        if (d->sb != SB_V1)
            return where(n, "key is the Secure Boot V1 verification key (mode v1)");
        snprintf(path, sizeof(path), "%s%s%s", s[0] == '/' || dir == NULL ? "" : dir,
                 s[0] == '/' || dir == NULL ? "" : "/", s);
        if ((error = fwrel_key_load_public(&d->v1_key, path, 1)) != 0)
            return fwrel_error_prefix_at((unsigned)n->line, (unsigned)n->col, "key %s", s);
    }
    if (d->sb == SB_V1 && d->v1_key == NULL)
        return where(sb, "Secure Boot V1 needs the verification key (key: FILE)");
    if (d->sb == SB_V2 && !d->digest_set[0] && !d->digest_set[1] && !d->digest_set[2])
        return where(sb, "Secure Boot V2 needs at least one key digest");
    return 0;
}

static void profile_path(char *out, size_t n, const char *dir, const char *s)
{
    int rel = s[0] != '/' && dir != NULL;
    snprintf(out, n, "%s%s%s", rel ? dir : "", rel ? "/" : "", s);
}

static int parse_manifest(fwrel_device *d, const yt_node *mn, const char *dir)
{
    static const char *const keys[] = {"key", "trusted_keys", "threshold", "counter", NULL};
    const yt_node *n;
    const char *s;
    char path[4096];
    uint64_t v;
    int error;
    fwrel_pass_src none = {0};
    if ((error = yt_expect(mn, YT_MAP, "manifest")) != 0 || (error = yt_check_keys(mn, keys)) != 0)
        return error;
    if ((n = yt_get(mn, "key")) == NULL)
        return where(mn, "manifest needs the device's key (key: FILE)");
    if ((error = yt_str(&s, n, 1024, "key")) != 0)
        return error;
    profile_path(path, sizeof(path), dir, s);
    if ((error = fwrel_key_load_private(&d->manifest_key, path, &none)) != 0)
        return fwrel_error_prefix_at((unsigned)n->line, (unsigned)n->col, "key %s", s);
    if ((n = yt_get(mn, "trusted_keys")) == NULL)
        return where(mn, "manifest needs trusted_keys");
    if ((error = yt_expect(n, YT_SEQ, "trusted_keys")) != 0)
        return error;
    if (n->count < 1 || n->count > FWREL_DEV_MAX_TRUSTED)
        return where(n, "1 to %d trusted keys", FWREL_DEV_MAX_TRUSTED);
    for (size_t i = 0; i < n->count; i++) {
        fwrel_pkey *key = NULL;
        int len;
        if ((error = yt_str(&s, n->items[i], 1024, "trusted key")) != 0)
            return error;
        profile_path(path, sizeof(path), dir, s);
        if ((error = fwrel_key_load_public(&key, path, 0)) != 0)
            return fwrel_error_prefix_at((unsigned)n->items[i]->line, (unsigned)n->items[i]->col,
                                         "trusted key %s", s);
        len = i2d_PUBKEY(key, &d->trusted[i]);
        fwrel_key_free(key);
        if (len <= 0)
            return fwrel_error_set_openssl(FWREL_EKEY, "trusted key %s: no public key encoding", s);
        d->trusted_len[i] = (size_t)len;
    }
    d->ntrusted = n->count;
    d->threshold = 1;
    if ((n = yt_get(mn, "threshold")) != NULL) {
        if ((error = yt_u64(&v, n, d->ntrusted, "threshold")) != 0)
            return error;
        if (v == 0)
            return where(n, "threshold must be at least 1");
        d->threshold = (unsigned)v;
    }
    if ((n = yt_get(mn, "counter")) != NULL) {
        if ((error = yt_u64(&d->counter, n, ((uint64_t)1 << 53) - 1, "counter")) != 0)
            return error;
        d->has_counter = 1;
    }
    return 0;
}

/* image_key: FILE, the private key esp_encrypted_img decrypts with (docs/esp-formats.md §4;
 * RSA-3072 or P-256). */
static int parse_image_key(fwrel_device *d, const yt_node *n, const char *dir)
{
    const char *s;
    char path[4096];
    int scheme, error;
    fwrel_pass_src none = {0};
    if ((error = yt_str(&s, n, 1024, "image_key")) != 0)
        return error;
    profile_path(path, sizeof(path), dir, s);
    if ((error = fwrel_key_load_private(&d->image_key, path, &none)) != 0 ||
        (error = fwrel_encimg_key_scheme(&scheme, d->image_key)) != 0)
        return fwrel_error_prefix_at((unsigned)n->line, (unsigned)n->col, "image_key %s", s);
    return 0;
}

/* product: NAME and channel: C or channels: [C, ...] (dev, beta, prod): what a manifest must name
 * for this device (docs/device-profile.md). */
static int parse_product_channel(fwrel_device *d, const yt_node *root)
{
    static const char *const names[] = {"dev", "beta", "prod"};
    const yt_node *n, *c = yt_get(root, "channel"), *cs = yt_get(root, "channels");
    const char *s;
    int error;
    if ((n = yt_get(root, "product")) != NULL) {
        if ((error = yt_str(&s, n, 64, "product")) != 0)
            return error;
        if (s[0] == '\0')
            return where(n, "product must not be empty");
        snprintf(d->product, sizeof(d->product), "%s", s);
    }
    if (c != NULL && cs != NULL)
        return where(cs, "give channel: or channels:, not both");
    if (cs != NULL) {
        if ((error = yt_expect(cs, YT_SEQ, "channels")) != 0)
            return error;
        if (cs->count == 0 || cs->count > 3)
            return where(cs, "channels lists 1 to 3 of dev, beta, prod");
    }
    for (size_t i = 0; c != NULL || (cs != NULL && i < cs->count); i++) {
        const yt_node *item = c != NULL ? c : cs->items[i];
        size_t k = 0;
        if ((error = yt_str(&s, item, 16, "channel")) != 0)
            return error;
        while (k < 3 && strcmp(s, names[k]) != 0)
            k++;
        if (k == 3)
            return where(item, "channel '%s' is not dev, beta or prod", s);
        for (size_t j = 0; j < d->nchannels; j++)
            if (strcmp(d->channels[j], s) == 0)
                return where(item, "channel '%s' listed twice", s);
        snprintf(d->channels[d->nchannels++], sizeof(d->channels[0]), "%s", s);
        if (c != NULL)
            break;
    }
    return 0;
}

static int parse_profile(fwrel_device *d, const yt_node *root, const char *dir)
{
    static const char *const keys[] = {"chip",
                                       "chip_revision",
                                       "efuse_block_revision",
                                       "secure_boot",
                                       "anti_rollback",
                                       "running",
                                       "partition_size",
                                       "device_type",
                                       "manifest",
                                       "image_key",
                                       "product",
                                       "channel",
                                       "channels",
                                       NULL};
    static const char *const ar_keys[] = {"enabled", "secure_version", "field_bits", NULL};
    static const char *const run_keys[] = {"version", "secure_version", NULL};
    const yt_node *n, *m;
    const char *s;
    uint64_t v;
    int error;

    if ((error = yt_expect(root, YT_MAP, "the profile")) != 0 ||
        (error = yt_check_keys(root, keys)) != 0)
        return error;
    if ((n = yt_get(root, "chip")) == NULL)
        return where(root, "chip is required");
    if ((error = yt_str(&s, n, 32, "chip")) != 0)
        return error;
    if ((d->chip = fwrel_chip_by_name(s)) == NULL)
        return where(n, "unknown chip '%s'", s);
    if ((n = yt_get(root, "chip_revision")) != NULL &&
        (error = yt_rev(&d->chip_rev, n, "chip_revision")) != 0)
        return error;
    if ((n = yt_get(root, "efuse_block_revision")) != NULL) {
        if ((error = yt_rev(&d->blk_rev, n, "efuse_block_revision")) != 0)
            return error;
        d->has_blk_rev = 1;
    }
    if ((n = yt_get(root, "partition_size")) == NULL)
        return where(root, "partition_size is required");
    if ((error = yt_u64(&d->partition_size, n, (uint64_t)1 << 32, "partition_size")) != 0)
        return error;
    if (d->partition_size == 0 || d->partition_size % 4096 != 0)
        return where(n, "partition_size must be a non-zero multiple of 4096");
    d->sb = SB_OFF;
    if ((n = yt_get(root, "secure_boot")) != NULL && (error = parse_secure_boot(d, n, dir)) != 0)
        return error;
    if ((n = yt_get(root, "device_type")) != NULL) {
        if ((error = yt_str(&s, n, 64, "device_type")) != 0)
            return error;
        snprintf(d->device_type, sizeof(d->device_type), "%s", s);
    }
    if ((error = parse_product_channel(d, root)) != 0)
        return error;
    if ((n = yt_get(root, "manifest")) != NULL && (error = parse_manifest(d, n, dir)) != 0)
        return error;
    /* A device that reads manifests takes one product's releases on its channels only. */
    if (n != NULL && d->product[0] == '\0')
        return where(root, "product is required with a manifest section (the product this device "
                           "runs: product: NAME)");
    if (n != NULL && d->nchannels == 0)
        return where(root, "channel is required with a manifest section (the release channels this "
                           "device takes: channel: C or channels: [C, ...])");
    if ((n = yt_get(root, "image_key")) != NULL && (error = parse_image_key(d, n, dir)) != 0)
        return error;
    d->field_bits = d->chip->id == 0 ? 32 : 16;
    if ((n = yt_get(root, "anti_rollback")) != NULL) {
        if ((error = yt_expect(n, YT_MAP, "anti_rollback")) != 0 ||
            (error = yt_check_keys(n, ar_keys)) != 0)
            return error;
        d->anti_rollback = 1;
        if ((m = yt_get(n, "enabled")) != NULL &&
            (error = yt_bool(&d->anti_rollback, m, "enabled")) != 0)
            return error;
        if ((m = yt_get(n, "field_bits")) != NULL) {
            if ((error = yt_u64(&v, m, 32, "field_bits")) != 0)
                return error;
            if (v == 0)
                return where(m, "field_bits must be 1 to 32");
            d->field_bits = (unsigned)v;
        }
        if ((m = yt_get(n, "secure_version")) != NULL) {
            if ((error = yt_u64(&v, m, d->field_bits, "secure_version")) != 0)
                return error;
            d->efuse_secure_version = (uint32_t)v;
        }
    }
    if ((n = yt_get(root, "running")) != NULL) {
        if ((error = yt_expect(n, YT_MAP, "running")) != 0 ||
            (error = yt_check_keys(n, run_keys)) != 0)
            return error;
        d->has_running = 1;
        if ((m = yt_get(n, "version")) != NULL) {
            if ((error = yt_str(&s, m, 32, "version")) != 0)
                return error;
            snprintf(d->running_version, sizeof(d->running_version), "%s", s);
        }
        if ((m = yt_get(n, "secure_version")) != NULL) {
            if ((error = yt_u64(&v, m, UINT32_MAX, "secure_version")) != 0)
                return error;
            d->running_secure_version = (uint32_t)v;
        }
    }
    return 0;
}

static int parse_in(fwrel_device **out, const uint8_t *yaml, size_t len, const char *dir)
{
    FWREL_ASSERT_ARG(out != NULL && yaml != NULL);
    yt_node *root = NULL;
    fwrel_device *d = calloc(1, sizeof(*d));
    int error;
    *out = NULL;
    if (d == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    if (len > PROFILE_MAX)
        error = fwrel_error_set(FWREL_EFORMAT, "a profile is at most %d bytes", PROFILE_MAX);
    else if ((error = yt_parse(&root, yaml, len)) == 0)
        error = parse_profile(d, root, dir);
    yt_free(root);
    if (error) {
        fwrel_device_free(d);
        return error;
    }
    *out = d;
    return 0;
}

int fwrel_device_parse(fwrel_device **out, const uint8_t *yaml, size_t len)
{
    return parse_in(out, yaml, len, NULL);
}

int fwrel_device_load(fwrel_device **out, const char *path)
{
    FWREL_ASSERT_ARG(out != NULL && path != NULL);
    uint8_t *text = NULL;
    size_t len = 0;
    char *copy = strdup(path);
    int error;
    if (copy == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    if ((error = fwrel_io_read_small(&text, &len, path, PROFILE_MAX)) == 0)
        error = parse_in(out, text, len, dirname(copy));
    free(text);
    free(copy);
    if (error)
        return fwrel_error_about(FWREL_ABOUT_PROFILE, path);
    if (strlen(path) < sizeof((*out)->path))
        memcpy((*out)->path, path, strlen(path) + 1);
    return 0;
}

/* The running state of a verification: steps after the first failure are skipped. */
struct run {
    fwrel_report *report;
    int failed;
    char first[FWREL_ERROR_MSG_MAX];
};

static int step(struct run *r, const char *name, int ok, const char *fmt, ...) FWREL_PRINTF(4, 5);
static int step(struct run *r, const char *name, int ok, const char *fmt, ...)
{
    char detail[FWREL_STEP_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (r->failed) {
        fwrel_report_add(r->report, name, FWREL_SKIP, "not reached");
        return 0;
    }
    fwrel_report_add(r->report, name, ok ? FWREL_PASS : FWREL_FAIL, "%s", detail);
    if (!ok) {
        r->failed = 1;
        snprintf(r->first, sizeof(r->first), "%s: %s", name, detail);
    }
    return ok;
}

struct hashes {
    EVP_MD_CTX *h384;
};

static int sink384(void *ctx, const uint8_t *p, size_t n)
{
    struct hashes *h = ctx;
    return EVP_DigestUpdate(h->h384, p, n) == 1
               ? 0
               : fwrel_error_set_openssl(FWREL_EIO, "digest failed");
}

static void check_sbv2(struct run *r, const fwrel_device *d, const uint8_t *sector,
                       const uint8_t d256[32], const uint8_t d384[48])
{
    fwrel_sbv2_sector sec;
    int accepted = -1;
    unsigned nblocks = d->chip->sbv2_blocks;
    size_t dlen = d->chip->key_digest_len;
    char why[3][160];
    fwrel_sbv2_parse_sector(&sec, sector);
    for (unsigned i = 0; i < nblocks; i++) {
        const fwrel_sbv2_block *b = &sec.blocks[i];
        int slot = -1, revoked = 0;
        char name[32];
        snprintf(name, sizeof(name), "sbv2.block%u", i);
        snprintf(why[i], sizeof(why[i]), "ok");
        if (!b->present || !b->crc_ok) {
            snprintf(why[i], sizeof(why[i]), "%s",
                     !b->present ? "absent (no 0xE7 magic)" : "CRC mismatch");
        } else if (b->version != d->scheme_version) {
            snprintf(why[i], sizeof(why[i]),
                     "%s signing scheme selected but signature block generated for %s scheme",
                     d->scheme_version == 2 ? "RSA" : "ECDSA",
                     b->version == 2   ? "RSA"
                     : b->version == 3 ? "ECDSA"
                                       : "an unknown");
        } else if (b->version == 3 && b->raw[d->curve_id == 3 ? 52 : 36] != d->curve_id) {
            /* The build's struct puts curve_id at 36, or at 52 in a P-384 build. */
            snprintf(why[i], sizeof(why[i]),
                     "ECDSA curve mismatch: actual (curve_id %u), expected (curve_id %u)",
                     b->raw[d->curve_id == 3 ? 52 : 36], (unsigned)d->curve_id);
        } else if (b->scheme == FWREL_SCHEME_NONE ||
                   (b->version == 3 && b->scheme != (d->curve_id == 1   ? FWREL_SCHEME_ECDSA192
                                                     : d->curve_id == 2 ? FWREL_SCHEME_ECDSA256
                                                                        : FWREL_SCHEME_ECDSA384))) {
            snprintf(why[i], sizeof(why[i]), "malformed ECDSA block (curve or hash type)");
        } else {
            for (int s = 0; s < 3 && slot < 0; s++)
                if (d->digest_set[s] && memcmp(d->digests[s], b->key_digest, dlen) == 0) {
                    if (d->revoked[s])
                        revoked = 1;
                    else
                        slot = s;
                }
            char hex[65];
            fwrel_hex(hex, b->key_digest, dlen);
            const uint8_t *dg = b->image_digest_len == 48 ? d384 : d256;
            if (slot < 0)
                snprintf(why[i], sizeof(why[i]), "key digest %.16s... %s", hex,
                         revoked ? "is in a revoked eFuse slot" : "is not in eFuse");
            else if (memcmp(b->image_digest, dg, b->image_digest_len) != 0)
                snprintf(why[i], sizeof(why[i]),
                         "image digest in the block does not match the image");
            else if (fwrel_sbv2_block_verify(b, dg, b->image_digest_len, NULL) != 0)
                snprintf(why[i], sizeof(why[i]), "signature does not verify with the embedded key");
            else if (accepted < 0)
                accepted = (int)i;
        }
        if (!r->failed)
            fwrel_report_add(
                r->report, name, strcmp(why[i], "ok") == 0 ? FWREL_PASS : FWREL_INFO, "%s%s",
                why[i],
                strcmp(why[i], "ok") == 0 ? ": key in eFuse, digest and signature valid" : "");
    }
    if (accepted >= 0) {
        step(r, "sbv2.accept", 1, "block %d verified with a trusted key", accepted);
    } else {
        char all[FWREL_STEP_DETAIL_MAX];
        int off = snprintf(all, sizeof(all), "no valid signature: ");
        for (unsigned i = 0; i < nblocks && off > 0 && (size_t)off < sizeof(all); i++)
            off += snprintf(all + off, sizeof(all) - (size_t)off, "%sblock %u %s", i ? "; " : "", i,
                            why[i]);
        step(r, "sbv2.accept", 0, "%s", all);
    }
}

int fwrel_device_verify_image(fwrel_report *report, const fwrel_device *d, fwrel_src *src)
{
    FWREL_ASSERT_ARG(d != NULL && src != NULL);
    struct run r = {report, 0, ""};
    struct hashes hs = {EVP_MD_CTX_new()};
    EVP_MD_CTX *h256 = EVP_MD_CTX_new();
    fwrel_espimg_opts opts = {sink384, &hs, h256};
    fwrel_espimg img;
    uint8_t hdr[FWREL_ESPIMG_HEADER_LEN], d256[32], d384[48], buf[4096];
    unsigned int n;
    int error = 0;

    if (hs.h384 == NULL || h256 == NULL || EVP_DigestInit_ex(h256, EVP_sha256(), NULL) != 1 ||
        EVP_DigestInit_ex(hs.h384, EVP_sha384(), NULL) != 1) {
        error = fwrel_error_set_openssl(FWREL_EIO, "digest setup failed");
        goto done;
    }
    /* esp_https_ota: the chip id of the header, then esp_ota_write's magic byte
     * (docs/esp-formats.md §5). */
    if (src->size < sizeof(hdr)) {
        step(&r, "image.header", 0, "%llu bytes: shorter than an image header",
             (unsigned long long)src->size);
        goto verdict;
    }
    if ((error = fwrel_src_read(src, hdr, sizeof(hdr))) != 0 ||
        (error = fwrel_src_seek(src, 0)) != 0)
        goto done;
    uint16_t chip_id = fwrel_le16(hdr + 12);
    if (chip_id == d->chip->id)
        step(&r, "image.chip-id", 1, "%s (%u)", d->chip->name, chip_id);
    else
        step(&r, "image.chip-id", 0, "Mismatch chip id, expected %u, found %u", d->chip->id,
             chip_id);
    if (hdr[0] == FWREL_ESPIMG_MAGIC)
        step(&r, "image.magic", 1, "0xE9");
    else
        step(&r, "image.magic", 0, "OTA image has invalid magic byte (expected 0xE9, saw 0x%02x)",
             hdr[0]);
    if (r.failed)
        goto verdict;

    if (fwrel_espimg_parse(&img, src, &opts) != 0) {
        step(&r, "image.segments", 0, "%s", fwrel_error_last()->message);
        goto verdict;
    }
    if (d->has_running && d->running_version[0] && img.has_app_desc) {
        if (strcmp(img.app_desc.version, d->running_version) != 0)
            step(&r, "ota.version", 1, "new version %s, running %s", img.app_desc.version,
                 d->running_version);
        else
            step(&r, "ota.version", 0,
                 "Current running version is the same as a new (%s). We will "
                 "not continue the update.",
                 img.app_desc.version);
    }
    step(&r, "image.chip-rev", d->chip_rev >= img.min_chip_rev_full,
         "chip v%u.%u, image minimum v%u.%u", d->chip_rev / 100, d->chip_rev % 100,
         img.min_chip_rev_full / 100, img.min_chip_rev_full % 100);
    if (img.max_chip_rev_full != 0 && img.max_chip_rev_full != 0xFFFF)
        step(&r, "image.chip-rev-max", d->chip_rev <= img.max_chip_rev_full,
             "chip v%u.%u, image maximum v%u.%u", d->chip_rev / 100, d->chip_rev % 100,
             img.max_chip_rev_full / 100, img.max_chip_rev_full % 100);
    /* docs/esp-formats.md §1.6: the eFuse block revision range, not on ESP32, when set. */
    if (d->chip->id != 0 && d->has_blk_rev && img.has_app_desc) {
        uint16_t lo = img.app_desc.min_efuse_blk_rev_full, hi = img.app_desc.max_efuse_blk_rev_full;
        int ok = (lo == 0 || lo == 0xFFFF || d->blk_rev >= lo) &&
                 (hi == 0 || hi == 0xFFFF || d->blk_rev <= hi);
        step(&r, "image.efuse-blk-rev", ok, "eFuse block v%u.%u, image range v%u.%u..v%u.%u",
             d->blk_rev / 100, d->blk_rev % 100, lo / 100, lo % 100, hi / 100, hi % 100);
    }
    /* esp_image_format.c verify_segment_header(): where SOC_MMU_PAGE_SIZE_CONFIGURABLE, the
     * word at segment 0's data (file offset 0x20) must be the app descriptor's magic. */
    if (d->chip->app_desc_required) {
        uint64_t pos = src->pos;
        uint8_t w[4];
        if ((error = fwrel_src_seek(src, FWREL_APP_DESC_OFFSET)) != 0 ||
            (error = fwrel_src_read(src, w, sizeof(w))) != 0 ||
            (error = fwrel_src_seek(src, pos)) != 0)
            goto done;
        step(&r, "image.app-desc", fwrel_le32(w) == FWREL_APP_DESC_MAGIC,
             "%s (word 0x%08x at 0x20)",
             fwrel_le32(w) == FWREL_APP_DESC_MAGIC ? "app descriptor present"
                                                   : "Failed to fetch app description header!",
             fwrel_le32(w));
    }
    step(&r, "image.checksum", img.checksum_ok, "%sCalculated 0x%02x read 0x%02x",
         img.checksum_ok ? "" : "Checksum failed. ", img.checksum_computed, img.checksum_stored);

    uint64_t aligned = (img.image_len + 4095) & ~(uint64_t)4095;
    uint64_t need = d->sb == SB_V2   ? aligned + FWREL_SBV2_SECTOR_LEN
                    : d->sb == SB_V1 ? img.image_len + FWREL_SBV1_BLOCK_LEN
                                     : img.image_len;
    step(&r, "partition.fit", need <= d->partition_size,
         "Image length %llu %s partition length %llu", (unsigned long long)need,
         need <= d->partition_size ? "fits in" : "doesn't fit in",
         (unsigned long long)d->partition_size);
    if (r.failed)
        goto verdict;

    if (d->sb == SB_V2) {
        /*
         * The device maps the sector at ALIGN_UP(end, 4096) from flash and reads only its blocks
         * (esp_image_format.c verify_signature_and_adjust_image_len,
         * secure_boot_signatures_app.c). Bytes the file lacks there read as erased flash: every
         * esp_ota_begin mode erases the whole sector a write reaches (the partition, the image
         * size rounded up, or each sector as it is written). A file that ends before the sector
         * leaves nothing but 0xFF or old data there: no block this image can pass.
         */
        if (img.file_len <= aligned) {
            step(&r, "sbv2.sector", 0, "no signature sector at offset 0x%llx",
                 (unsigned long long)aligned);
            goto verdict;
        }
        size_t have = img.file_len - aligned < FWREL_SBV2_SECTOR_LEN
                          ? (size_t)(img.file_len - aligned)
                          : FWREL_SBV2_SECTOR_LEN;
        size_t pad = (size_t)(aligned - img.image_len);
        if ((error = fwrel_src_read(src, buf, pad)) != 0)
            goto done;
        if (EVP_DigestUpdate(h256, buf, pad) != 1 || EVP_DigestUpdate(hs.h384, buf, pad) != 1 ||
            EVP_DigestFinal_ex(h256, d256, &n) != 1 || EVP_DigestFinal_ex(hs.h384, d384, &n) != 1) {
            error = fwrel_error_set_openssl(FWREL_EIO, "digest failed");
            goto done;
        }
        uint8_t sector[FWREL_SBV2_SECTOR_LEN];
        memset(sector, 0xFF, sizeof(sector));
        if ((error = fwrel_src_read(src, sector, have)) != 0)
            goto done;
        if (have < sizeof(sector))
            fwrel_report_add(report, "sbv2.sector", FWREL_INFO,
                             "the file ends %zu bytes into the signature sector at 0x%llx: the "
                             "other %zu read as erased flash (0xFF), as on the device",
                             have, (unsigned long long)aligned, sizeof(sector) - have);
        check_sbv2(&r, d, sector, d256, d384);
    } else if (d->sb == SB_V1) {
        uint8_t block[FWREL_SBV1_BLOCK_LEN], sig[64];
        uint32_t version;
        if (img.file_len < img.image_len + FWREL_SBV1_BLOCK_LEN) {
            step(&r, "sbv1.signature", 0, "no signature block after the image");
            goto verdict;
        }
        if (EVP_DigestFinal_ex(h256, d256, &n) != 1) {
            error = fwrel_error_set_openssl(FWREL_EIO, "digest failed");
            goto done;
        }
        if ((error = fwrel_src_read(src, block, sizeof(block))) != 0 ||
            (error = fwrel_sbv1_parse_block(&version, sig, block, sizeof(block))) != 0)
            goto done;
        if (step(&r, "sbv1.version", version == 0, "%s0x%08x",
                 version == 0 ? "" : "image has invalid signature version field ", version)) {
            int ok = fwrel_sbv1_verify_digest(sig, d->v1_key, d256) == 0;
            step(&r, "sbv1.signature", ok, "%s",
                 ok ? "valid with the bootloader's key"
                    : "Secure boot signature verification failed");
        }
    } else if (img.hash_appended) {
        step(&r, "image.hash", img.sha256_ok,
             img.sha256_ok ? "SHA-256 valid" : "Image hash failed - image is corrupt");
    } else {
        step(&r, "image.hash", 1, "no hash appended; secure boot off: nothing more to check");
    }

    /* docs/esp-formats.md §5: anti-rollback (esp_ota_set_boot_partition, bootloader). */
    if (d->anti_rollback) {
        if (!img.has_app_desc) {
            step(&r, "anti-rollback", 0,
                 "no app descriptor: anti-rollback needs its secure_version");
        } else {
            uint32_t sv = img.app_desc.secure_version;
            int ok = sv >= d->efuse_secure_version;
            if (step(&r, "anti-rollback", ok, "%s%u %s %u",
                     ok ? "secure_version "
                        : "New firmware security version is less than eFuse programmed, ",
                     sv, ok ? ">= eFuse" : "<", d->efuse_secure_version))
                step(&r, "anti-rollback.capacity", sv <= d->field_bits,
                     "secure_version %u, eFuse field of %u bits%s", sv, d->field_bits,
                     sv <= d->field_bits ? "" : ": Max secure version exceeded");
        }
    }

verdict:
    if (r.failed)
        error = fwrel_error_set(FWREL_EVERIFY, "rejected at %s", r.first);
    else
        fwrel_error_clear();
done:
    EVP_MD_CTX_free(h256);
    EVP_MD_CTX_free(hs.h384);
    return error;
}

int fwrel_device_verify_manifest(fwrel_report *report, const fwrel_device *d, const uint8_t *env,
                                 size_t len, uint64_t now)
{
    fwrel_manifest m;
    return fwrel_device_read_manifest(&m, report, d, env, len, now);
}

/* The profile's manifest key as the device core holds it (fwrel_dev_recipient): its type and key
 * id, and its private bytes (X25519: the raw key; P-256: the big-endian scalar; RSA-4096: the
 * DER) in *secret, wiped and freed by the caller with OPENSSL_clear_free(*secret, *secret_len). */
static int core_recipient(fwrel_dev_recipient *r, uint8_t **secret, size_t *secret_len,
                          const fwrel_pkey *key)
{
    char hex[65];
    int type, error;
    *secret = NULL;
    *secret_len = 0;
    if ((error = fwrel_manifest_recipient_type(&type, key)) != 0 ||
        (error = fwrel_key_id(hex, key)) != 0)
        return error;
    memset(r, 0, sizeof(*r));
    r->type = (uint8_t)type;
    if (fwrel_unhex(r->keyid, sizeof(r->keyid), hex) != 0)
        return fwrel_error_set(FWREL_EKEY, "manifest key: no key id");
    if (type == FWREL_MANIFEST_RCPT_RSA4096) {
        unsigned char *der = NULL;
        int n = i2d_PrivateKey(key, &der);
        if (n <= 0)
            return fwrel_error_set_openssl(FWREL_EKEY, "manifest key: no private key encoding");
        *secret = der;
        *secret_len = (size_t)n;
    } else {
        size_t n = 32;
        BIGNUM *bn = NULL;
        int ok;
        if ((*secret = OPENSSL_zalloc(32)) == NULL)
            return fwrel_error_set(FWREL_EIO, "out of memory");
        *secret_len = 32;
        if (type == FWREL_MANIFEST_RCPT_X25519)
            ok = EVP_PKEY_get_raw_private_key(key, *secret, &n) == 1 && n == 32;
        else
            ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1 &&
                 BN_bn2binpad(bn, *secret, 32) == 32;
        BN_clear_free(bn);
        if (!ok)
            return fwrel_error_set_openssl(FWREL_EKEY, "manifest key: no private key bytes");
    }
    r->key = *secret;
    r->key_len = *secret_len;
    return 0;
}

/* What the profile says the device is, holds and has installed (everything but the recipient). */
static void core_config(fwrel_dev_config *c, const fwrel_device *d)
{
    memset(c, 0, sizeof(*c));
    c->crypto = &fwrel_dev_crypto_openssl;
    for (size_t i = 0; i < d->ntrusted; i++) {
        c->trusted[i].spki = d->trusted[i];
        c->trusted[i].len = d->trusted_len[i];
    }
    c->ntrusted = d->ntrusted;
    c->threshold = d->threshold;
    c->product = d->product;
    for (size_t i = 0; i < d->nchannels; i++)
        c->channels[i] = d->channels[i];
    c->nchannels = d->nchannels;
    c->device_type = d->device_type;
    c->chip = d->chip->name;
    c->chip_rev = d->chip_rev;
    c->has_counter = d->has_counter;
    c->counter = d->counter;
    c->anti_rollback = d->anti_rollback;
    c->efuse_secure_version = d->efuse_secure_version;
    c->running_version = d->has_running ? d->running_version : NULL;
}

/* The core's steps into libfwrel's report (the verdict values are the same). */
static void core_step(void *ctx, const char *name, int verdict, const char *detail)
{
    fwrel_report_add(ctx, name, verdict, "%s", detail);
}

static void digest_from_core(fwrel_manifest_digest *out, const fwrel_dev_digest *in)
{
    memcpy(out->sha256, in->sha256, sizeof(out->sha256));
    out->size = in->size;
}

static void manifest_from_core(fwrel_manifest *out, const fwrel_dev_manifest *in)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->product, in->product, sizeof(out->product));
    memcpy(out->device_types, in->device_types, sizeof(out->device_types));
    out->device_type_count = in->device_type_count;
    memcpy(out->chip, in->chip, sizeof(out->chip));
    out->chip_rev_min = in->chip_rev_min;
    out->chip_rev_max = in->chip_rev_max;
    memcpy(out->version, in->version, sizeof(out->version));
    out->secure_version = in->secure_version;
    out->counter = in->counter;
    memcpy(out->channel, in->channel, sizeof(out->channel));
    out->created = in->created;
    out->expires = in->expires;
    digest_from_core(&out->plain, &in->plain);
    digest_from_core(&out->signed_image, &in->signed_image);
    digest_from_core(&out->encrypted, &in->encrypted);
    memcpy(out->image_name, in->image_name, sizeof(out->image_name));
}

_Static_assert(sizeof(((fwrel_manifest *)0)->device_types) ==
                       sizeof(((fwrel_dev_manifest *)0)->device_types) &&
                   sizeof(((fwrel_manifest *)0)->image_name) ==
                       sizeof(((fwrel_dev_manifest *)0)->image_name) &&
                   FWREL_DEV_DETAIL_MAX == FWREL_STEP_DETAIL_MAX &&
                   FWREL_DEV_MAX_TRUSTED == FWREL_MANIFEST_MAX_SIGS,
               "the device core's manifest and steps are libfwrel's");

/* The device's procedure is the device core's (libfwrel/device, docs/device.md): this builds its
 * configuration from the profile and runs it with the OpenSSL port. */
int fwrel_device_read_manifest(fwrel_manifest *out, fwrel_report *report, const fwrel_device *d,
                               const uint8_t *env, size_t len, uint64_t now)
{
    FWREL_ASSERT_ARG(out != NULL && d != NULL && env != NULL);
    fwrel_dev_config cfg;
    fwrel_dev_work *work = NULL;
    fwrel_dev_manifest m;
    fwrel_dev_result res;
    uint8_t *secret = NULL;
    size_t secret_len = 0;
    int rc, error;
    if (d->manifest_key == NULL) {
        fwrel_error_set(FWREL_EUSAGE, "the device profile has no manifest section");
        return fwrel_error_about(FWREL_ABOUT_PROFILE, d->path);
    }
    core_config(&cfg, d);
    if ((error = core_recipient(&cfg.recipient, &secret, &secret_len, d->manifest_key)) != 0)
        goto done;
    if ((work = malloc(sizeof(*work))) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    rc = fwrel_dev_verify(&m, &res, work, &cfg, env, len, now, report ? core_step : NULL, report);
    if (rc == FWREL_DEV_OK) {
        manifest_from_core(out, &m);
        fwrel_error_clear();
        error = 0;
    } else if (rc == FWREL_DEV_EREJECT) {
        error = fwrel_error_set(FWREL_EVERIFY, "rejected at %s", res.first);
    } else {
        error = fwrel_error_set(FWREL_EKEY,
                                "the device core could not run with this profile's "
                                "keys (%s)",
                                rc == FWREL_DEV_EUSAGE ? "configuration" : "crypto");
    }
done:
    free(work); /* wiped by fwrel_dev_verify */
    OPENSSL_clear_free(secret, secret_len);
    return error;
}

const fwrel_pkey *fwrel_device_image_key(const fwrel_device *d)
{
    return d != NULL ? d->image_key : NULL;
}

const char *fwrel_device_path(const fwrel_device *d)
{
    return d != NULL ? d->path : "";
}

int fwrel_device_ota_decision(char *why, size_t n, const fwrel_device *d, const char *version,
                              uint32_t secure_version)
{
    FWREL_ASSERT_ARG(why != NULL && d != NULL && version != NULL);
    fwrel_dev_config cfg;
    fwrel_dev_manifest m;
    memset(&m, 0, sizeof(m));
    snprintf(m.version, sizeof(m.version), "%s", version);
    m.secure_version = secure_version;
    core_config(&cfg, d);
    return fwrel_dev_ota_decision(why, n, &cfg, &m);
}
