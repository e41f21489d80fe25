/* testimg.c - synthetic ESP app images (testimg.h), laid out as esptool elf2image does
 * (docs/esp-formats.md §1.1-§1.6). */
#include "testimg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fwrel/espimg.h"
#include "util.h"

enum kind { DROM, DRAM, IRAM, PAD, IROM };

/*
 * Where each chip's segments go: 64 KiB-aligned bases inside esptool's MEMORY_MAP windows
 * (targets/<chip>.py). Where DROM and IROM share one window (P4, C5, E22, S31) IROM sits far
 * enough above DROM that the two never share an MMU page.
 */
static const struct chip_map {
    const char *name;
    uint32_t drom, dram, iram, irom;
} maps[] = {
    {"esp32", 0x3F400000, 0x3FFB0000, 0x40080000, 0x400D0000},
    {"esp32s2", 0x3F000000, 0x3FFB0000, 0x40020000, 0x40080000},
    {"esp32c3", 0x3C000000, 0x3FC88000, 0x40380000, 0x42000000},
    {"esp32s3", 0x3C000000, 0x3FC88000, 0x40374000, 0x42000000},
    {"esp32c2", 0x3C000000, 0x3FCA0000, 0x4037C000, 0x42000000},
    {"esp32c6", 0x42800000, 0x40820000, 0x40800000, 0x42000000},
    {"esp32h2", 0x42800000, 0x40820000, 0x40800000, 0x42000000},
    {"esp32p4", 0x40000000, 0x4FF40000, 0x4FF00000, 0x48000000},
    {"esp32c61", 0x42800000, 0x40820000, 0x40800000, 0x42000000},
    {"esp32c5", 0x42000000, 0x40820000, 0x40800000, 0x43000000},
    {"esp32h21", 0x42800000, 0x40820000, 0x40800000, 0x42000000},
    {"esp32h4", 0x42800000, 0x40830000, 0x40810000, 0x42000000},
    {"esp32e22", 0x3C000000, 0x31000000, 0x30FE0000, 0x3E000000},
    {"esp32s31", 0x40000000, 0x2F040000, 0x2F000000, 0x48000000},
};

#define RAM_SHARE_MAX 8192u /* an implicit RAM segment stays small, as real ones are */

static char last_error[256];

static void *fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    return NULL;
}

const char *testimg_error(void)
{
    return last_error;
}

static void put_text(uint8_t *p, size_t n, const char *s)
{
    size_t l = strlen(s);
    memcpy(p, s, l < n ? l : n);
}

/* Deterministic, non-repeating filler so checksums and hashes depend on every byte. */
static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (uint8_t)(x >> 24);
    }
}

static void write_app_desc(uint8_t *d, size_t room, const testimg_opts *o, uint8_t page_log2)
{
    uint8_t desc[FWREL_APP_DESC_LEN] = {0};
    fwrel_put_le32(desc, FWREL_APP_DESC_MAGIC);
    fwrel_put_le32(desc + 4, o->secure_version);
    put_text(desc + 16, 32, o->version ? o->version : "1.0.0");
    put_text(desc + 48, 32, o->project ? o->project : "fwrel-test");
    put_text(desc + 80, 16, "12:00:00");
    put_text(desc + 96, 16, "Nov 22 2026");
    put_text(desc + 112, 32, o->idf_ver ? o->idf_ver : "v5.3");
    for (int i = 0; i < 32; i++)
        desc[144 + i] = (uint8_t)(0xA0 + i); /* where elf2image puts the ELF's SHA-256 */
    desc[180] = page_log2;
    /* A segment 0 shorter than the descriptor gets only its beginning (a test's choice). */
    memcpy(d, desc, room < sizeof(desc) ? room : sizeof(desc));
}

/* Per-segment kinds and lengths; lengths of PAD and of an implicit IROM are settled in layout. */
struct plan {
    unsigned n;
    enum kind kind[TESTIMG_MAX_SEGMENTS];
    uint32_t len[TESTIMG_MAX_SEGMENTS];
    int implicit[TESTIMG_MAX_SEGMENTS];
    size_t irom_share;
};

static int make_plan(struct plan *pl, const testimg_opts *o)
{
    size_t budget = (o->size ? o->size : 4096) & ~(size_t)3, fixed = 0, rest;
    unsigned n_ram = 0, n_flash = 0;

    memset(pl, 0, sizeof(*pl));
    pl->n = o->segments ? o->segments : 3;
    if (pl->n > TESTIMG_MAX_SEGMENTS || (o->irom && pl->n < 3)) {
        fail("%u segments: 1 to 16, at least 3 with irom", pl->n);
        return -1;
    }
    for (unsigned i = 0; i < pl->n; i++) {
        pl->kind[i] = i == 0 ? DROM : (i % 2 ? DRAM : IRAM);
        if (o->irom && i == pl->n - 2)
            pl->kind[i] = PAD;
        if (o->irom && i == pl->n - 1)
            pl->kind[i] = IROM;
        uint32_t l = o->seg_len[i];
        if (l % 4 != 0 || l >= FWREL_ESPIMG_SEG_MAX || (l != 0 && pl->kind[i] == PAD)) {
            fail("segment %u: length 0x%x: a multiple of 4 below 16 MiB, none for padding", i, l);
            return -1;
        }
        pl->len[i] = l;
        pl->implicit[i] = l == 0 && pl->kind[i] != PAD;
        fixed += l;
        if (pl->implicit[i] && (pl->kind[i] == DRAM || pl->kind[i] == IRAM))
            n_ram++;
        else if (pl->implicit[i])
            n_flash++;
    }
    rest = budget > fixed ? budget - fixed : 0;
    if (n_ram > 0) {
        size_t each = n_flash ? rest / (2 * (n_ram + n_flash)) : rest / n_ram;
        if (n_flash && each > RAM_SHARE_MAX)
            each = RAM_SHARE_MAX;
        each &= ~(size_t)3;
        for (unsigned i = 0; i < pl->n; i++)
            if (pl->implicit[i] && (pl->kind[i] == DRAM || pl->kind[i] == IRAM))
                pl->len[i] = (uint32_t)each;
        rest -= each * n_ram;
    }
    int drom_implicit = pl->implicit[0], irom_implicit = o->irom && pl->implicit[pl->n - 1];
    size_t drom = irom_implicit && drom_implicit ? (rest / 2) & ~(size_t)3 : rest & ~(size_t)3;
    if (drom_implicit) {
        if (drom < FWREL_APP_DESC_LEN)
            drom = FWREL_APP_DESC_LEN;
        if (drom >= FWREL_ESPIMG_SEG_MAX) {
            fail("size %zu puts 16 MiB or more in the DROM segment: use irom", budget);
            return -1;
        }
        pl->len[0] = (uint32_t)drom;
        rest = rest > drom ? rest - drom : 0;
    }
    pl->irom_share = irom_implicit ? rest : 0;
    return 0;
}

uint8_t *testimg_build(size_t *len, const testimg_opts *opts)
{
    static const testimg_opts defaults;
    const testimg_opts *o = opts != NULL ? opts : &defaults;
    const char *name = o->chip ? o->chip : "esp32c3";
    const fwrel_chip *chip = fwrel_chip_by_name(name);
    const struct chip_map *m = NULL;
    uint8_t page_log2 = o->mmu_page_log2 ? o->mmu_page_log2 : 16;
    struct plan pl;

    if (chip == NULL)
        return fail("unknown chip %s", name);
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
        if (strcmp(maps[i].name, chip->name) == 0)
            m = &maps[i];
    if (m == NULL)
        return fail("no memory map for %s", chip->name);
    if (page_log2 < 13 || page_log2 > 18)
        return fail("MMU page 2^%u: 8 KiB to 256 KiB", page_log2);
    if (make_plan(&pl, o) != 0)
        return NULL;

    /* Padding before IROM: its data must land at 0x20 modulo the page, as the IROM vaddr
     * (docs/esp-formats.md §1.3); the padding comes out of IROM's share of size. */
    size_t page = (size_t)1 << page_log2, pos = FWREL_ESPIMG_HEADER_LEN;
    for (unsigned i = 0; i < pl.n; i++) {
        if (pl.kind[i] == PAD) {
            size_t at = (pos + 16) % page;
            pl.len[i] = (uint32_t)((0x20 + page - at) % page);
        } else if (pl.kind[i] == IROM && pl.implicit[i]) {
            size_t share = pl.irom_share > pl.len[i - 1] ? pl.irom_share - pl.len[i - 1] : 0;
            if (share >= FWREL_ESPIMG_SEG_MAX)
                return fail("size puts 16 MiB or more in the IROM segment");
            pl.len[i] = (uint32_t)(share & ~(size_t)3);
        }
        pos += 8 + pl.len[i];
    }
    size_t total = pos + 16 + 32;
    uint8_t *b = calloc(1, total);
    if (b == NULL)
        return fail("out of memory for %zu bytes", total);

    uint32_t iram_at = m->iram, dram_at = m->dram;
    b[0] = FWREL_ESPIMG_MAGIC;
    b[1] = (uint8_t)pl.n;
    b[2] = 2;    /* DIO */
    b[3] = 0x10; /* 2MB; speed 0 is valid on every chip (docs/esp-formats.md §1.2) */
    fwrel_put_le32(b + 4, m->iram + 4);
    b[8] = 0xEE; /* wp pin disabled, as esptool writes */
    uint16_t id = o->use_chip_id ? o->chip_id : chip->id;
    b[12] = (uint8_t)id;
    b[13] = (uint8_t)(id >> 8);
    /* docs/esp-formats.md §1.2: the legacy byte is the minor revision on C3, else the major. */
    b[14] = (uint8_t)(chip->id == 5 ? o->min_rev_full % 100 : o->min_rev_full / 100);
    b[15] = (uint8_t)o->min_rev_full;
    b[16] = (uint8_t)(o->min_rev_full >> 8);
    uint16_t maxrev = o->max_rev_full ? o->max_rev_full : 99;
    b[17] = (uint8_t)maxrev;
    b[18] = (uint8_t)(maxrev >> 8);
    b[23] = o->no_hash ? 0 : 1;

    uint8_t sum = 0xEF;
    pos = FWREL_ESPIMG_HEADER_LEN;
    for (unsigned i = 0; i < pl.n; i++) {
        uint32_t l = pl.len[i], addr = 0;
        uint8_t *d = b + pos + 8;
        switch (pl.kind[i]) {
        case DROM:
            addr = m->drom + (uint32_t)(pos + 8); /* data at 0x20: vaddr == offset mod page */
            fill(d, l, i + 1);
            if (o->no_app_desc)
                memset(d, 0, l < 4 ? l : 4);
            else
                write_app_desc(d, l, o, page_log2);
            break;
        case DRAM:
            addr = dram_at;
            dram_at += l;
            fill(d, l, i + 1);
            break;
        case IRAM:
            addr = iram_at;
            iram_at += l;
            fill(d, l, i + 1);
            break;
        case PAD:
            break; /* load address 0, zero data (docs/esp-formats.md §1.3) */
        case IROM:
            addr = m->irom + 0x20;
            fill(d, l, i + 1);
            break;
        }
        fwrel_put_le32(b + pos, addr);
        fwrel_put_le32(b + pos + 4, l);
        for (uint32_t k = 0; k < l; k++)
            sum ^= d[k];
        pos += 8 + l;
    }
    while (pos % 16 != 15)
        b[pos++] = 0;
    b[pos++] = sum;
    if (!o->no_hash) {
        unsigned int n = 0;
        if (EVP_Digest(b, pos, b + pos, &n, EVP_sha256(), NULL) != 1) {
            free(b);
            return fail("SHA-256 failed");
        }
        pos += 32;
    }
    *len = pos;
    return b;
}

int testimg_write(const char *path, const testimg_opts *o)
{
    size_t len = 0;
    uint8_t *b = testimg_build(&len, o);
    if (b == NULL)
        return -1;
    FILE *f = fopen(path, "wb");
    int rc = f != NULL && fwrite(b, 1, len, f) == len ? 0 : -1;
    if (f != NULL && fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        fail("cannot write %s", path);
    free(b);
    return rc;
}

int testimg_refresh(uint8_t *b, size_t len)
{
    size_t pos = FWREL_ESPIMG_HEADER_LEN;
    uint8_t sum = 0xEF;
    if (len < pos) {
        fail("%zu bytes: no header", len);
        return -1;
    }
    for (unsigned i = 0; i < b[1]; i++) {
        if (len - pos < 8 || fwrel_le32(b + pos + 4) > len - pos - 8) {
            fail("segment %u does not fit", i);
            return -1;
        }
        uint32_t l = fwrel_le32(b + pos + 4);
        for (uint32_t k = 0; k < l; k++)
            sum ^= b[pos + 8 + k];
        pos += 8 + l;
    }
    pos += 15 - pos % 16;
    if (pos >= len || (b[23] == 1 && len - pos - 1 < 32)) {
        fail("no room for the checksum or hash");
        return -1;
    }
    b[pos++] = sum;
    unsigned int n = 0;
    if (b[23] == 1 && EVP_Digest(b, pos, b + pos, &n, EVP_sha256(), NULL) != 1) {
        fail("SHA-256 failed");
        return -1;
    }
    return 0;
}
