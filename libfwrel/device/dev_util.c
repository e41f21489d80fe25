/* dev_util.c - memory, string and text helpers of the device core (dev_util.h). */
#include "dev_util.h"

void dev_memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--)
        *d++ = *s++;
}

void dev_memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    while (n--)
        *d++ = (uint8_t)c;
}

void dev_wipe(void *dst, size_t n)
{
    volatile uint8_t *d = dst;
    while (n--)
        *d++ = 0;
}

int dev_memeq(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    while (n--)
        diff |= (uint8_t)(*x++ ^ *y++);
    return diff == 0;
}

size_t dev_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int dev_strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (int)(unsigned char)*a - (int)(unsigned char)*b;
}

int dev_cmpn(const char *a, size_t an, const char *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return (int)(unsigned char)a[i] - (int)(unsigned char)b[i];
    return an < bn ? -1 : an > bn ? 1 : 0;
}

void sb_init(dev_sb *b, char *buf, size_t cap)
{
    b->p = buf;
    b->cap = cap;
    b->len = 0;
    if (cap > 0)
        buf[0] = '\0';
}

void sb_c(dev_sb *b, char c)
{
    if (b->len + 1 < b->cap) {
        b->p[b->len++] = c;
        b->p[b->len] = '\0';
    }
}

void sb_s(dev_sb *b, const char *s)
{
    while (*s)
        sb_c(b, *s++);
}

void sb_sn(dev_sb *b, const char *s, size_t max)
{
    for (size_t i = 0; i < max && s[i]; i++)
        sb_c(b, s[i]);
}

void sb_u(dev_sb *b, uint64_t v)
{
    char d[20];
    size_t n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        sb_c(b, d[--n]);
}

void sb_hex(dev_sb *b, const uint8_t *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        sb_c(b, hx[p[i] >> 4]);
        sb_c(b, hx[p[i] & 15]);
    }
}
