/* testimg.c - synthetic ESP app images (testimg.h), laid out as esptool elf2image does:
 * header, a DROM segment starting with esp_app_desc_t at file offset 0x20, a DRAM
 * segment, zero padding, checksum (seed 0xEF), optional SHA-256 (spec 1.2-1.6). */
#include "testimg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fwrel/espimg.h"

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_text(uint8_t *p, size_t n, const char *s)
{
    size_t l = strlen(s);
    memcpy(p, s, l < n ? l : n);
}

uint8_t *testimg_build(size_t *len, const testimg_opts *o)
{
    testimg_opts d = {0};
    if (o == NULL)
        o = &d;
    const fwrel_chip *chip = fwrel_chip_by_name(o->chip ? o->chip : "esp32c3");
    if (chip == NULL)
        return NULL;
    size_t total = o->size ? o->size : 4096;
    size_t seg0 = (total / 2 + 3) & ~(size_t)3, seg1;
    if (seg0 < 256)
        seg0 = 256;
    seg1 = total > seg0 + 64 ? ((total - seg0) & ~(size_t)3) : 64;
    /* Segments stay below 16 MiB; the DROM one is split into many if needed. */
    if (seg0 >= FWREL_ESPIMG_SEG_MAX || seg1 >= FWREL_ESPIMG_SEG_MAX)
        return NULL;
    size_t cap = 24 + 8 + seg0 + 8 + seg1 + 16 + 32;
    uint8_t *b = calloc(1, cap);
    if (b == NULL)
        return NULL;
    uint32_t drom = chip->id == 0 ? 0x3F400020u : 0x3C000020u;
    uint32_t dram = chip->id == 0 ? 0x3FFB0000u : 0x3FC88000u;
    b[0] = 0xE9;
    b[1] = 2;
    b[2] = 2;    /* DIO */
    b[3] = 0x1F; /* 2MB, 80m */
    put32(b + 4, chip->id == 0 ? 0x40080400u : 0x40380400u);
    b[8] = 0xEE;
    b[12] = (uint8_t)chip->id;
    b[13] = (uint8_t)(chip->id >> 8);
    b[14] = (uint8_t)(o->min_rev_full / 100);
    b[15] = (uint8_t)o->min_rev_full;
    b[16] = (uint8_t)(o->min_rev_full >> 8);
    uint16_t maxrev = o->max_rev_full ? o->max_rev_full : 99;
    b[17] = (uint8_t)maxrev;
    b[18] = (uint8_t)(maxrev >> 8);
    b[23] = o->no_hash ? 0 : 1;
    size_t pos = 24;
    put32(b + pos, drom);
    put32(b + pos + 4, (uint32_t)seg0);
    pos += 8;
    uint8_t *desc = b + pos;
    for (size_t i = 0; i < seg0; i++)
        desc[i] = (uint8_t)(i * 7 + 3);
    if (!o->no_app_desc) {
        memset(desc, 0, 256);
        put32(desc, 0xABCD5432u);
        put32(desc + 4, o->secure_version);
        put_text(desc + 16, 32, o->version ? o->version : "1.0.0");
        put_text(desc + 48, 32, o->project ? o->project : "fwrel-test");
        put_text(desc + 80, 16, "12:00:00");
        put_text(desc + 96, 16, "Nov 22 2026");
        put_text(desc + 112, 32, o->idf_ver ? o->idf_ver : "v5.3");
        for (int i = 0; i < 32; i++)
            desc[144 + i] = (uint8_t)(0xA0 + i);
        desc[180] = 16;
    }
    pos += seg0;
    put32(b + pos, dram);
    put32(b + pos + 4, (uint32_t)seg1);
    pos += 8;
    for (size_t i = 0; i < seg1; i++)
        b[pos + i] = (uint8_t)(i * 13 + 1);
    pos += seg1;
    uint8_t sum = 0xEF;
    for (size_t i = 0; i < seg0; i++)
        sum ^= b[32 + i];
    for (size_t i = 0; i < seg1; i++)
        sum ^= b[32 + seg0 + 8 + i];
    while (pos % 16 != 15)
        b[pos++] = 0;
    b[pos++] = sum;
    if (!o->no_hash) {
        unsigned int n;
        EVP_Digest(b, pos, b + pos, &n, EVP_sha256(), NULL);
        pos += 32;
    }
    *len = pos;
    return b;
}

int testimg_write(const char *path, const testimg_opts *o)
{
    size_t len;
    uint8_t *b = testimg_build(&len, o);
    if (b == NULL)
        return -1;
    FILE *f = fopen(path, "wb");
    int rc = (f != NULL && fwrite(b, 1, len, f) == len) ? 0 : -1;
    if (f != NULL && fclose(f) != 0)
        rc = -1;
    free(b);
    return rc;
}
