/* espimg.c - ESP-IDF application images (espimg.h; docs/esp-formats.md §1). */
#include "fwrel/espimg.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"

#define CHUNK ((size_t)64 << 10) /* the one read buffer of a parse, whatever the image size */

#define RSA  FWREL_SCHEME_RSA3072
#define E192 FWREL_SCHEME_ECDSA192
#define E256 FWREL_SCHEME_ECDSA256
#define E384 FWREL_SCHEME_ECDSA384

/*
 * From docs/esp-formats.md: chip ids and bootloader offsets §1.7, signature blocks and schemes
 * §2.5, key digest length §2.4 (16 bytes on C2, as espefuse burns digest[:16]), MMU page sizes
 * §1.9. Flash windows: esptool targets/<chip>.py IROM_MAP_* / DROM_MAP_* (bb72741f), the ranges
 * elf2image aligns. The last field, 1 on C2, C6, H2, C61: SOC_MMU_PAGE_SIZE_CONFIGURABLE in
 * ESP-IDF v5.5.5 components/soc/<chip>/include/soc/soc_caps.h (set there for exactly these four;
 * commented out for H21 and H4), which makes the device require the app descriptor.
 */
static const fwrel_chip chips[] = {
    {"esp32", 0, 1, RSA, 1, 32, 0x1000, {0x400D0000, 0x40400000}, {0x3F400000, 0x3F800000}, 16, 16,
     0},
    {"esp32s2", 2, 3, RSA, 0, 32, 0x1000, {0x40080000, 0x40B80000}, {0x3F000000, 0x3F3F0000}, 16,
     16, 0},
    {"esp32c3", 5, 3, RSA, 0, 32, 0x0, {0x42000000, 0x42800000}, {0x3C000000, 0x3C800000}, 16, 16,
     0},
    {"esp32s3", 9, 3, RSA, 0, 32, 0x0, {0x42000000, 0x44000000}, {0x3C000000, 0x3E000000}, 16, 16,
     0},
    {"esp32c2", 12, 1, E192 | E256, 0, 16, 0x0, {0x42000000, 0x42400000}, {0x3C000000, 0x3C400000},
     14, 16, 1},
    {"esp32c6", 13, 3, RSA | E192 | E256, 0, 32, 0x0, {0x42000000, 0x42800000},
     {0x42800000, 0x43000000}, 13, 16, 1},
    /* H2 inherits C6's windows in esptool. */
    {"esp32h2", 16, 3, RSA | E192 | E256, 0, 32, 0x0, {0x42000000, 0x42800000},
     {0x42800000, 0x43000000}, 13, 16, 1},
    /*
     * P4: P-384 left out (docs/esp-formats.md §11.5). The Kconfig allows it where
     * SOC_ECDSA_SUPPORT_CURVE_P384, which only a third-party reading gives P4, and the newer docs
     * summary lists none: signing a P4 image with a curve its ROM may not verify would brick it,
     * refusing costs a re-sign.
     */
    {"esp32p4", 18, 3, RSA | E192 | E256, 0, 32, 0x2000, {0x40000000, 0x4C000000},
     {0x40000000, 0x4C000000}, 16, 16, 0},
    /* C61: ECDSA only (docs/esp-formats.md §2.5); P-384 not stated, so not claimed. Windows
     * inherited from C6. */
    {"esp32c61", 20, 3, E192 | E256, 0, 32, 0x0, {0x42000000, 0x42800000},
     {0x42800000, 0x43000000}, 13, 16, 1},
    /* C5: SOC_ECDSA_SUPPORT_CURVE_P384 (docs/esp-formats.md §2.5, §11.5). */
    {"esp32c5", 23, 3, RSA | E192 | E256 | E384, 0, 32, 0x2000, {0x42000000, 0x44000000},
     {0x42000000, 0x44000000}, 16, 16, 0},
    /*
     * H21, H4, E22, S31 are not in docs/esp-formats.md §2.5: no Secure Boot V2 claimed
     * (sbv2_blocks 0), so fwrel refuses to sign for them rather than guess a scheme. E22 and S31
     * are known from esptool only (docs/esp-formats.md §11.11); their windows are left unknown, so
     * no mapping alignment is checked.
     */
    {"esp32h21", 25, 0, FWREL_SCHEME_NONE, 0, 32, 0x0, {0x42000000, 0x42800000},
     {0x42800000, 0x43000000}, 13, 16, 0},
    {"esp32h4", 28, 0, FWREL_SCHEME_NONE, 0, 32, 0x2000, {0x42000000, 0x42800000},
     {0x42800000, 0x43000000}, 13, 16, 0},
    {"esp32e22", 31, 0, FWREL_SCHEME_NONE, 0, 32, 0x0, {0, 0}, {0, 0}, 16, 16, 0},
    {"esp32s31", 32, 0, FWREL_SCHEME_NONE, 0, 32, 0x2000, {0, 0}, {0, 0}, 15, 18, 0},
};

#define NCHIPS (sizeof(chips) / sizeof(chips[0]))

const fwrel_chip *fwrel_chip_by_id(uint16_t id)
{
    for (size_t i = 0; i < NCHIPS; i++)
        if (chips[i].id == id)
            return &chips[i];
    return NULL;
}

const fwrel_chip *fwrel_chip_by_name(const char *name)
{
    char norm[32];
    size_t n = 0;
    if (name == NULL)
        return NULL;
    for (; *name != '\0' && n + 1 < sizeof(norm); name++)
        if (*name != '-' && *name != '_')
            norm[n++] = (char)tolower((unsigned char)*name);
    if (*name != '\0')
        return NULL;
    norm[n] = '\0';
    for (size_t i = 0; i < NCHIPS; i++)
        if (strcmp(chips[i].name, norm) == 0)
            return &chips[i];
    return NULL;
}

const fwrel_chip *fwrel_chip_at(size_t i)
{
    return i < NCHIPS ? &chips[i] : NULL;
}

int fwrel_chip_flash_mapped(const fwrel_chip *chip, uint32_t addr)
{
    if (chip == NULL)
        return 0;
    return (addr >= chip->irom_map[0] && addr < chip->irom_map[1]) ||
           (addr >= chip->drom_map[0] && addr < chip->drom_map[1]);
}

const char *fwrel_espimg_flash_size_name(uint8_t nibble)
{
    static const char *const names[] = {"1MB",  "2MB",  "4MB",  "8MB",
                                        "16MB", "32MB", "64MB", "128MB"};
    return nibble < sizeof(names) / sizeof(names[0]) ? names[nibble] : "?";
}

const char *fwrel_espimg_spi_mode_name(uint8_t mode)
{
    static const char *const names[] = {"QIO", "QOUT", "DIO", "DOUT", "FAST_READ", "SLOW_READ"};
    return mode < sizeof(names) / sizeof(names[0]) ? names[mode] : "?";
}

/* The running state of one parse: where the bytes go and what is computed from them. */
struct parse {
    fwrel_src *src;
    uint64_t start; /* src->pos of the image's first byte */
    fwrel_sink_fn sink;
    void *sink_ctx;
    EVP_MD_CTX *md;  /* the caller's, may be NULL */
    EVP_MD_CTX *own; /* ours, for the appended hash when the caller's is not SHA-256 */
    int share;       /* the caller's context is SHA-256: the appended hash is derived from it */
    uint8_t checksum;
};

static uint64_t image_pos(const struct parse *p)
{
    return p->src->pos - p->start;
}

static uint64_t left(const struct parse *p)
{
    return p->src->size - p->src->pos;
}

/* Pass bytes already read on, in order, to the sink and the digests. */
static int emit(struct parse *p, const uint8_t *buf, size_t n)
{
    int error;
    if (p->sink != NULL && (error = p->sink(p->sink_ctx, buf, n)) != 0)
        return error;
    if (p->md != NULL && EVP_DigestUpdate(p->md, buf, n) != 1)
        return fwrel_error_set_openssl(FWREL_EIO, "digest failed");
    if (p->own != NULL && EVP_DigestUpdate(p->own, buf, n) != 1)
        return fwrel_error_set_openssl(FWREL_EIO, "digest failed");
    return 0;
}

static int take(struct parse *p, uint8_t *buf, size_t n)
{
    int error = fwrel_src_read(p->src, buf, n);
    return error ? error : emit(p, buf, n);
}

/* XOR of the bytes into the checksum: 64 at a time in four 16-byte lanes (vector registers
 * where the compiler has them), then 8 at a time, then folded (the same byte:
 * docs/esp-formats.md §1.4). */
typedef uint64_t xor_lane __attribute__((vector_size(16)));

static uint8_t xor_bytes(uint8_t sum, const uint8_t *b, size_t n)
{
    xor_lane v0 = {0, 0}, v1 = {0, 0}, v2 = {0, 0}, v3 = {0, 0};
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        xor_lane w[4];
        memcpy(w, b + i, sizeof(w));
        v0 ^= w[0];
        v1 ^= w[1];
        v2 ^= w[2];
        v3 ^= w[3];
    }
    v0 ^= v1 ^ v2 ^ v3;
    uint64_t acc = v0[0] ^ v0[1];
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        acc ^= w;
    }
    acc ^= acc >> 32;
    acc ^= acc >> 16;
    acc ^= acc >> 8;
    sum ^= (uint8_t)acc;
    for (; i < n; i++)
        sum ^= b[i];
    return sum;
}

/* docs/esp-formats.md §1.6: esp_app_desc_t, segment 0's first 256 bytes when it starts at 0x20. */
static void read_app_desc(fwrel_app_desc *d, const uint8_t *b)
{
    d->secure_version = fwrel_le32(b + 4);
    fwrel_text_field(d->version, b + 16, 32);
    fwrel_text_field(d->project_name, b + 48, 32);
    fwrel_text_field(d->time, b + 80, 16);
    fwrel_text_field(d->date, b + 96, 16);
    fwrel_text_field(d->idf_ver, b + 112, 32);
    memcpy(d->app_elf_sha256, b + 144, 32);
    d->min_efuse_blk_rev_full = fwrel_le16(b + 176);
    d->max_efuse_blk_rev_full = fwrel_le16(b + 178);
    d->mmu_page_size = b[180];
}

/* Stream one segment's data through the checksum, the sink and the digests. */
static int take_segment(struct parse *p, fwrel_espimg *img, unsigned idx, uint8_t *buf)
{
    const fwrel_espimg_segment *s = &img->segments[idx];
    uint32_t done = 0;
    while (done < s->data_len) {
        size_t chunk = s->data_len - done < CHUNK ? s->data_len - done : CHUNK;
        int error = take(p, buf, chunk);
        if (error)
            return error;
        /* Legacy images (before IDF v3.2) have no descriptor: has_app_desc stays 0. */
        if (idx == 0 && done == 0 && s->data_offset == FWREL_APP_DESC_OFFSET &&
            s->data_len >= FWREL_APP_DESC_LEN && fwrel_le32(buf) == FWREL_APP_DESC_MAGIC) {
            img->has_app_desc = 1;
            read_app_desc(&img->app_desc, buf);
        }
        p->checksum = xor_bytes(p->checksum, buf, chunk);
        done += (uint32_t)chunk;
    }
    return 0;
}

/*
 * The MMU page flash-mapped segments are checked against: the app's declared page
 * (CONFIG_MMU_PAGE_SIZE, which elf2image aligned to) when the chip allows it, else the chip's
 * smallest page, a condition every valid image meets whatever page it was built for.
 */
static uint8_t page_log2(const fwrel_espimg *img)
{
    const fwrel_chip *c = img->chip;
    uint8_t declared = img->has_app_desc ? img->app_desc.mmu_page_size : 0;
    if (declared >= c->mmu_page_log2_min && declared <= c->mmu_page_log2_max)
        return declared;
    return c->mmu_page_log2_min;
}

/* docs/esp-formats.md §1.3, §1.8: the device refuses a mapped segment whose data is not where the
 * MMU maps it. */
static int check_mapping(const fwrel_espimg *img, unsigned idx)
{
    const fwrel_espimg_segment *s = &img->segments[idx];
    if (img->mmu_page_log2 == 0 || !fwrel_chip_flash_mapped(img->chip, s->load_addr))
        return 0;
    uint64_t mask = ((uint64_t)1 << img->mmu_page_log2) - 1;
    if ((s->data_offset & mask) == (s->load_addr & mask))
        return 0;
    return fwrel_error_set(FWREL_EFORMAT,
                           "segment %u: load address 0x%08x does not match data offset 0x%llx "
                           "modulo the %u KiB MMU page",
                           idx, s->load_addr, (unsigned long long)s->data_offset,
                           (1u << img->mmu_page_log2) >> 10);
}

static int parse_header(fwrel_espimg *img, const uint8_t *h)
{
    if (h[0] != FWREL_ESPIMG_MAGIC)
        return fwrel_error_set(FWREL_EFORMAT, "invalid magic byte 0x%02x (expected 0xe9)", h[0]);
    img->segment_count = h[1];
    img->spi_mode = h[2];
    img->spi_speed = h[3] & 0x0F;
    img->spi_size = h[3] >> 4;
    img->entry_addr = fwrel_le32(h + 4);
    img->wp_pin = h[8];
    img->chip_id = fwrel_le16(h + 12);
    img->chip = fwrel_chip_by_id(img->chip_id);
    img->min_chip_rev = h[14];
    img->min_chip_rev_full = fwrel_le16(h + 15);
    img->max_chip_rev_full = fwrel_le16(h + 17);
    /* esptool refuses anything else; the device would read a 2 as "no hash" and misplace the
     * signature sector. */
    if (h[23] > 1)
        return fwrel_error_set(FWREL_EFORMAT, "hash_appended byte is %u (0 or 1)", h[23]);
    img->hash_appended = h[23];
    if (img->segment_count > FWREL_ESPIMG_MAX_SEGMENTS)
        return fwrel_error_set(FWREL_EFORMAT, "%u segments, expected 1 to %u", img->segment_count,
                               FWREL_ESPIMG_MAX_SEGMENTS);
    if (img->segment_count == 0)
        return fwrel_error_set(FWREL_EFORMAT, "0 segments, expected 1 to %u", FWREL_ESPIMG_MAX_SEGMENTS);
    return 0;
}

int fwrel_espimg_parse(fwrel_espimg *img, fwrel_src *src, const fwrel_espimg_opts *opts)
{
    FWREL_ASSERT_ARG(img != NULL && src != NULL && src->pos <= src->size);
    struct parse p = {.src = src, .start = src->pos, .checksum = 0xEF};
    uint8_t hdr[FWREL_ESPIMG_HEADER_LEN], tail[16], *buf = NULL;
    EVP_MD_CTX *copy = NULL;
    unsigned int n = 0;
    int error;

    memset(img, 0, sizeof(*img));
    img->file_len = src->size;
    if (opts != NULL) {
        p.sink = opts->sink;
        p.sink_ctx = opts->sink_ctx;
        p.md = opts->md;
    }
    if (p.md != NULL) {
        const EVP_MD *type = EVP_MD_CTX_get0_md(p.md);
        p.share = type != NULL && EVP_MD_get_type(type) == NID_sha256;
    }

    if (left(&p) < sizeof(hdr)) {
        error = fwrel_error_set(FWREL_EFORMAT, "truncated: %llu bytes, shorter than the %u-byte "
                                "image header",
                                (unsigned long long)left(&p), FWREL_ESPIMG_HEADER_LEN);
        goto done;
    }
    if ((error = fwrel_src_read(src, hdr, sizeof(hdr))) != 0 ||
        (error = parse_header(img, hdr)) != 0)
        goto done;
    /* The simple hash needs a context of its own only when the caller's cannot give it. */
    if (img->hash_appended && !p.share) {
        if ((p.own = EVP_MD_CTX_new()) == NULL ||
            EVP_DigestInit_ex(p.own, EVP_sha256(), NULL) != 1) {
            error = fwrel_error_set_openssl(FWREL_EIO, "digest failed");
            goto done;
        }
    }
    if ((error = emit(&p, hdr, sizeof(hdr))) != 0)
        goto done;
    if ((buf = malloc(CHUNK)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    if (img->chip != NULL && img->chip->irom_map[1] != 0)
        img->mmu_page_log2 = img->chip->mmu_page_log2_min; /* until segment 0 told more */

    for (unsigned i = 0; i < img->segment_count; i++) {
        fwrel_espimg_segment *s = &img->segments[i];
        uint8_t sh[8];
        if (left(&p) < sizeof(sh)) {
            error = fwrel_error_set(FWREL_EFORMAT,
                                    "truncated: segment %u header at offset 0x%llx needs 8 bytes, "
                                    "%llu left",
                                    i, (unsigned long long)image_pos(&p),
                                    (unsigned long long)left(&p));
            goto done;
        }
        if ((error = take(&p, sh, sizeof(sh))) != 0)
            goto done;
        s->load_addr = fwrel_le32(sh);
        s->data_len = fwrel_le32(sh + 4);
        s->data_offset = image_pos(&p);
        /* docs/esp-formats.md §1.3: the device refuses both with "invalid segment length". */
        if (s->data_len % 4 != 0) {
            error = fwrel_error_set(FWREL_EFORMAT, "segment %u: length 0x%x not a multiple of 4", i,
                                    s->data_len);
            goto done;
        }
        if (s->data_len >= FWREL_ESPIMG_SEG_MAX) {
            error = fwrel_error_set(FWREL_EFORMAT, "segment %u: length 0x%x is 16 MiB or more", i,
                                    s->data_len);
            goto done;
        }
        if (s->data_len > left(&p)) {
            error = fwrel_error_set(FWREL_EFORMAT,
                                    "segment %u: length 0x%x past the end of the file (data at "
                                    "offset 0x%llx, %llu bytes left)",
                                    i, s->data_len, (unsigned long long)s->data_offset,
                                    (unsigned long long)left(&p));
            goto done;
        }
        if (i > 0 && (error = check_mapping(img, i)) != 0)
            goto done;
        if ((error = take_segment(&p, img, i, buf)) != 0)
            goto done;
        if (i == 0 && img->mmu_page_log2 != 0) {
            /* Segment 0 holds the descriptor that names the page size: checked once read. */
            img->mmu_page_log2 = page_log2(img);
            if ((error = check_mapping(img, 0)) != 0)
                goto done;
        }
    }

    /* docs/esp-formats.md §1.4: zero padding up to position % 16 == 15, then the checksum byte.
     * The device reads the padding without checking it; the hash and signatures cover it. */
    size_t need = 16 - (size_t)(image_pos(&p) % 16);
    if (left(&p) < need) {
        error = fwrel_error_set(FWREL_EFORMAT,
                                "truncated: padding and checksum at offset 0x%llx need %zu bytes, "
                                "%llu left",
                                (unsigned long long)image_pos(&p), need,
                                (unsigned long long)left(&p));
        goto done;
    }
    if ((error = take(&p, tail, need)) != 0)
        goto done;
    img->checksum_stored = tail[need - 1];
    img->checksum_computed = p.checksum;
    img->checksum_ok = img->checksum_stored == img->checksum_computed;
    img->image_len = image_pos(&p);

    if (img->hash_appended) {
        /* docs/esp-formats.md §1.5: SHA-256 over [0, checksum] inclusive: all emitted so far. */
        if (left(&p) < 32) {
            error = fwrel_error_set(FWREL_EFORMAT,
                                    "truncated: the appended SHA-256 at offset 0x%llx needs 32 "
                                    "bytes, %llu left",
                                    (unsigned long long)image_pos(&p),
                                    (unsigned long long)left(&p));
            goto done;
        }
        EVP_MD_CTX *h = p.own;
        if (p.share) {
            /* One pass: the caller's SHA-256 so far is exactly the simple hash's input. */
            if ((copy = EVP_MD_CTX_new()) == NULL || EVP_MD_CTX_copy_ex(copy, p.md) != 1) {
                error = fwrel_error_set_openssl(FWREL_EIO, "digest failed");
                goto done;
            }
            h = copy;
        }
        if (EVP_DigestFinal_ex(h, img->sha256_computed, &n) != 1 || n != 32) {
            error = fwrel_error_set_openssl(FWREL_EIO, "digest failed");
            goto done;
        }
        /* The stored hash still goes to the sink and the caller's digest, not into ours. */
        EVP_MD_CTX_free(p.own);
        p.own = NULL;
        if ((error = take(&p, img->sha256_stored, 32)) != 0)
            goto done;
        img->sha256_ok = memcmp(img->sha256_stored, img->sha256_computed, 32) == 0;
        img->image_len = image_pos(&p);
    }
    error = 0;
done:
    EVP_MD_CTX_free(copy);
    EVP_MD_CTX_free(p.own);
    free(buf);
    return error;
}

int fwrel_espimg_check_integrity(const fwrel_espimg *img)
{
    FWREL_ASSERT_ARG(img != NULL);
    if (!img->checksum_ok)
        return fwrel_error_set(FWREL_EVERIFY, "checksum mismatch (stored 0x%02x, computed 0x%02x)",
                               img->checksum_stored, img->checksum_computed);
    if (img->hash_appended && !img->sha256_ok)
        return fwrel_error_set(FWREL_EVERIFY, "image hash mismatch: the image is corrupt");
    return 0;
}

int fwrel_espimg_check_input(const fwrel_espimg *img)
{
    return fwrel_espimg_check_integrity(img) != 0 ? fwrel_error_recode(FWREL_EFORMAT) : 0;
}
