/* dev_util.h - the device core's own small helpers (no libc: the core is freestanding). */
#ifndef FWREL_DEV_UTIL_H
#define FWREL_DEV_UTIL_H

#include <stddef.h>
#include <stdint.h>

void dev_memcpy(void *dst, const void *src, size_t n);
void dev_memset(void *dst, int c, size_t n);
/** Wipe: a store the compiler keeps (volatile). */
void dev_wipe(void *dst, size_t n);
int dev_memeq(const void *a, const void *b, size_t n);
size_t dev_strlen(const char *s);
/** strcmp's sign. */
int dev_strcmp(const char *a, const char *b);
/** a[0..an) against b[0..bn): byte order, a proper prefix first (strcmp of the two strings). */
int dev_cmpn(const char *a, size_t an, const char *b, size_t bn);

/** A bounded text builder: truncates as snprintf does, always NUL-terminated. */
typedef struct dev_sb {
    char *p;
    size_t cap, len;
} dev_sb;

void sb_init(dev_sb *b, char *buf, size_t cap);
void sb_c(dev_sb *b, char c);
void sb_s(dev_sb *b, const char *s);
/** At most max characters of s (printf's %.Ns). */
void sb_sn(dev_sb *b, const char *s, size_t max);
void sb_u(dev_sb *b, uint64_t v);
void sb_hex(dev_sb *b, const uint8_t *p, size_t n);

#endif
