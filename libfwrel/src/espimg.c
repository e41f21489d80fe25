/* espimg.c - ESP-IDF application images (espimg.h; spec/esp-formats.md section 1). */
#include "fwrel/espimg.h"

#include <ctype.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"

/* spec 1.7, 2.4, 2.5. Digest length 16 on C2 (espefuse burns digest[:16]). */
static const fwrel_chip chips[] = {
    {"esp32", 0, 1, FWREL_SCHEME_RSA3072, 1, 32, 0x1000},
    {"esp32s2", 2, 3, FWREL_SCHEME_RSA3072, 0, 32, 0x1000},
    {"esp32c3", 5, 3, FWREL_SCHEME_RSA3072, 0, 32, 0x0},
    {"esp32s3", 9, 3, FWREL_SCHEME_RSA3072, 0, 32, 0x0},
    {"esp32c2", 12, 1, FWREL_SCHEME_ECDSA192 | FWREL_SCHEME_ECDSA256, 0, 16, 0x0},
    {"esp32c6", 13, 3, FWREL_SCHEME_RSA3072 | FWREL_SCHEME_ECDSA192 | FWREL_SCHEME_ECDSA256, 0, 32,
     0x0},
    {"esp32h2", 16, 3, FWREL_SCHEME_RSA3072 | FWREL_SCHEME_ECDSA192 | FWREL_SCHEME_ECDSA256, 0, 32,
     0x0},
    /* P4: spec 11.5 doubts P-384 there; only what is confirmed. */
    {"esp32p4", 18, 3, FWREL_SCHEME_RSA3072 | FWREL_SCHEME_ECDSA192 | FWREL_SCHEME_ECDSA256, 0, 32,
     0x2000},
    {"esp32c61", 20, 3, FWREL_SCHEME_ECDSA192 | FWREL_SCHEME_ECDSA256, 0, 32, 0x0},
    {"esp32c5", 23, 3,
     FWREL_SCHEME_RSA3072 | FWREL_SCHEME_ECDSA192 | FWREL_SCHEME_ECDSA256 | FWREL_SCHEME_ECDSA384,
     0, 32, 0x2000},
    {"esp32h21", 25, 3, FWREL_SCHEME_RSA3072 | FWREL_SCHEME_ECDSA192 | FWREL_SCHEME_ECDSA256, 0, 32,
     0x0},
    {"esp32h4", 28, 3, FWREL_SCHEME_RSA3072 | FWREL_SCHEME_ECDSA192 | FWREL_SCHEME_ECDSA256, 0, 32,
     0x2000},
    /* E22, S31: chip ids from esptool only (spec 11.11); secure boot facts unknown. */
    {"esp32e22", 31, 0, FWREL_SCHEME_NONE, 0, 32, 0x0},
    {"esp32s31", 32, 0, FWREL_SCHEME_NONE, 0, 32, 0x2000},
};

const fwrel_chip *fwrel_chip_by_id(uint16_t id)
{
    for (size_t i = 0; i < sizeof(chips) / sizeof(chips[0]); i++)
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
    for (; *name && n + 1 < sizeof(norm); name++)
        if (*name != '-' && *name != '_')
            norm[n++] = (char)tolower((unsigned char)*name);
    if (*name)
        return NULL;
    norm[n] = '\0';
    for (size_t i = 0; i < sizeof(chips) / sizeof(chips[0]); i++)
        if (strcmp(chips[i].name, norm) == 0)
            return &chips[i];
    return NULL;
}

const fwrel_chip *fwrel_chip_at(size_t i)
{
    return i < sizeof(chips) / sizeof(chips[0]) ? &chips[i] : NULL;
}

const char *fwrel_espimg_flash_size_name(uint8_t nibble)
{
    static const char *names[] = {"1MB", "2MB", "4MB", "8MB", "16MB", "32MB", "64MB", "128MB"};
    return nibble < 8 ? names[nibble] : "?";
}

const char *fwrel_espimg_spi_mode_name(uint8_t mode)
{
    static const char *names[] = {"QIO", "QOUT", "DIO", "DOUT", "FAST_READ", "SLOW_READ"};
    return mode < 6 ? names[mode] : "?";
}

/* The running state of one parse: where bytes go and what is computed from them. */
struct parse {
    fwrel_src *src;
    const fwrel_espimg_opts *opts;
    EVP_MD_CTX *md;  /* caller's, may be NULL */
    EVP_MD_CTX *own; /* ours, when the caller's is not SHA-256 */
    int share;       /* the caller's context is SHA-256: derive the simple hash from it */
    uint8_t checksum;
};

/* Read n bytes into buf and pass them on to the sink and the digests. */
static int take(struct parse *p, uint8_t *buf, size_t n)
{
    int error = fwrel_src_read(p->src, buf, n);
    if (error)
        return error;
    if (p->opts != NULL && p->opts->sink != NULL &&
        (error = p->opts->sink(p->opts->sink_ctx, buf, n)) != 0)
        return error;
    if (p->md != NULL && EVP_DigestUpdate(p->md, buf, n) != 1)
        return fwrel_error_set_openssl(FWREL_EIO, "digest failed");
    if (p->own != NULL && EVP_DigestUpdate(p->own, buf, n) != 1)
        return fwrel_error_set_openssl(FWREL_EIO, "digest failed");
    return 0;
}

/* Stream a segment's data: checksum, sink, digests, and the app descriptor from segment 0. */
static int take_segment(struct parse *p, fwrel_espimg *img, unsigned idx, uint32_t len)
{
    uint8_t buf[65536];
    uint32_t done_len = 0;
    while (done_len < len) {
        size_t chunk = len - done_len < sizeof(buf) ? len - done_len : sizeof(buf);
        int error = take(p, buf, chunk);
        if (error)
            return error;
        if (idx == 0 && done_len == 0 && img->segments[0].data_offset == FWREL_APP_DESC_OFFSET &&
            chunk >= FWREL_APP_DESC_LEN && fwrel_le32(buf) == FWREL_APP_DESC_MAGIC) {
            /* spec 1.6: esp_app_desc_t, the first 256 bytes of the first (DROM) segment. */
            fwrel_app_desc *d = &img->app_desc;
            img->has_app_desc = 1;
            d->secure_version = fwrel_le32(buf + 4);
            fwrel_text_field(d->version, buf + 16, 32);
            fwrel_text_field(d->project_name, buf + 48, 32);
            fwrel_text_field(d->time, buf + 80, 16);
            fwrel_text_field(d->date, buf + 96, 16);
            fwrel_text_field(d->idf_ver, buf + 112, 32);
            memcpy(d->app_elf_sha256, buf + 144, 32);
            d->min_efuse_blk_rev_full = fwrel_le16(buf + 176);
            d->max_efuse_blk_rev_full = fwrel_le16(buf + 178);
            d->mmu_page_size = buf[180];
        }
        /* XOR a word at a time, then fold: the same byte (spec 1.4), eight times fewer steps. */
        uint64_t acc = 0;
        size_t i = 0;
        for (; i + 8 <= chunk; i += 8) {
            uint64_t w;
            memcpy(&w, buf + i, 8);
            acc ^= w;
        }
        for (int sh = 0; sh < 64; sh += 8)
            p->checksum ^= (uint8_t)(acc >> sh);
        for (; i < chunk; i++)
            p->checksum ^= buf[i];
        done_len += (uint32_t)chunk;
    }
    return 0;
}

int fwrel_espimg_parse(fwrel_espimg *img, fwrel_src *src, const fwrel_espimg_opts *opts)
{
    FWREL_ASSERT_ARG(img != NULL && src != NULL);
    struct parse p = {.src = src, .opts = opts, .checksum = 0xEF};
    uint8_t hdr[FWREL_ESPIMG_HEADER_LEN], tail[16], buf[32];
    int error;

    memset(img, 0, sizeof(*img));
    img->file_len = src->size;
    p.md = opts != NULL ? opts->md : NULL;
    p.share = p.md != NULL && EVP_MD_get_type(EVP_MD_CTX_get0_md(p.md)) == NID_sha256;
    if (!p.share && (p.own = EVP_MD_CTX_new()) == NULL) {
        error = fwrel_error_set_openssl(FWREL_EIO, "out of memory");
        goto done;
    }
    if (p.own != NULL && EVP_DigestInit_ex(p.own, EVP_sha256(), NULL) != 1) {
        error = fwrel_error_set_openssl(FWREL_EIO, "digest failed");
        goto done;
    }

    if ((error = take(&p, hdr, sizeof(hdr))) != 0)
        goto done;
    if (hdr[0] != FWREL_ESPIMG_MAGIC) {
        error = fwrel_error_set(FWREL_EFORMAT, "invalid magic byte 0x%02x (expected 0xe9)", hdr[0]);
        goto done;
    }
    img->segment_count = hdr[1];
    img->spi_mode = hdr[2];
    img->spi_speed = hdr[3] & 0x0F;
    img->spi_size = hdr[3] >> 4;
    img->entry_addr = fwrel_le32(hdr + 4);
    img->wp_pin = hdr[8];
    img->chip_id = fwrel_le16(hdr + 12);
    img->chip = fwrel_chip_by_id(img->chip_id);
    img->min_chip_rev = hdr[14];
    img->min_chip_rev_full = fwrel_le16(hdr + 15);
    img->max_chip_rev_full = fwrel_le16(hdr + 17);
    if (hdr[23] > 1) {
        error = fwrel_error_set(FWREL_EFORMAT, "hash_appended byte is %u (0 or 1)", hdr[23]);
        goto done;
    }
    img->hash_appended = hdr[23];
    if (img->segment_count == 0 || img->segment_count > FWREL_ESPIMG_MAX_SEGMENTS) {
        error = fwrel_error_set(FWREL_EFORMAT, "%u segments, expected 1 to %u", img->segment_count,
                                FWREL_ESPIMG_MAX_SEGMENTS);
        goto done;
    }

    for (unsigned i = 0; i < img->segment_count; i++) {
        uint8_t sh[8];
        if ((error = take(&p, sh, sizeof(sh))) != 0) {
            fwrel_error_prefix("segment %u header", i);
            goto done;
        }
        fwrel_espimg_segment *s = &img->segments[i];
        s->load_addr = fwrel_le32(sh);
        s->data_len = fwrel_le32(sh + 4);
        s->data_offset = src->pos;
        /* spec 1.3: the device rejects these with "invalid segment length". */
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
        if (s->data_len > src->size - src->pos) {
            error = fwrel_error_set(FWREL_EFORMAT,
                                    "segment %u: length 0x%x past the end of the file (%llu bytes)",
                                    i, s->data_len, (unsigned long long)src->size);
            goto done;
        }
        if ((error = take_segment(&p, img, i, s->data_len)) != 0)
            goto done;
    }

    /* spec 1.4: zero padding until position % 16 == 15, then the checksum byte. */
    size_t pad = 15 - (size_t)(src->pos % 16);
    if ((error = take(&p, tail, pad + 1)) != 0) {
        fwrel_error_prefix("checksum");
        goto done;
    }
    img->checksum_stored = tail[pad];
    img->checksum_computed = p.checksum;
    img->checksum_ok = img->checksum_stored == img->checksum_computed;
    img->image_len = src->pos;

    if (img->hash_appended) {
        /* spec 1.5: SHA-256 over [0, checksum] inclusive, i.e. everything taken so far. */
        EVP_MD_CTX *h = p.own;
        unsigned int n = 0;
        if (p.share) {
            if ((h = EVP_MD_CTX_new()) == NULL || EVP_MD_CTX_copy_ex(h, p.md) != 1) {
                EVP_MD_CTX_free(h);
                error = fwrel_error_set_openssl(FWREL_EIO, "digest failed");
                goto done;
            }
        }
        int ok = EVP_DigestFinal_ex(h, img->sha256_computed, &n) == 1;
        if (p.share)
            EVP_MD_CTX_free(h);
        if (!ok) {
            error = fwrel_error_set_openssl(FWREL_EIO, "digest failed");
            goto done;
        }
        /* The stored hash still goes to the sink and the caller's digest; ours is final. */
        EVP_MD_CTX_free(p.own);
        p.own = NULL;
        if ((error = take(&p, buf, 32)) != 0) {
            fwrel_error_prefix("appended SHA-256");
            goto done;
        }
        memcpy(img->sha256_stored, buf, 32);
        img->sha256_ok = memcmp(img->sha256_stored, img->sha256_computed, 32) == 0;
        img->image_len = src->pos;
    }
    error = 0;
done:
    EVP_MD_CTX_free(p.own);
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
