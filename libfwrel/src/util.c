/* util.c - internal helpers (util.h). */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "fwrel/error.h"
#include "fwrel/io.h"

void fwrel_reverse(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        uint8_t t = p[i];
        p[i] = p[n - 1 - i];
        p[n - 1 - i] = t;
    }
}

uint32_t fwrel_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    static uint32_t table[256];
    static int ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

void fwrel_hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void fwrel_rfc3339(char out[21], int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int fwrel_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int fwrel_unhex(uint8_t *out, size_t n, const char *s)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = fwrel_hexval(s[2 * i]), lo = fwrel_hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int fwrel_parse_u64(uint64_t *out, const char *s, uint64_t max)
{
    uint64_t v = 0;
    unsigned base = 10;
    if (s == NULL || *s == '\0')
        return -1;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        if (*s == '\0')
            return -1;
    }
    for (; *s; s++) {
        int d = fwrel_hexval(*s);
        if (d < 0 || (unsigned)d >= base)
            return -1;
        if (v > (UINT64_MAX - (uint64_t)d) / base)
            return -1;
        v = v * base + (uint64_t)d;
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

void fwrel_text_field(char *out, const uint8_t *field, size_t n)
{
    size_t i = 0;
    for (; i < n && field[i] != 0; i++)
        out[i] = (char)field[i];
    out[i] = '\0';
}

int fwrel_digest_src(uint8_t d256[32], uint8_t *d384, fwrel_src *src, uint64_t len)
{
    EVP_MD_CTX *a = EVP_MD_CTX_new(), *b = d384 != NULL ? EVP_MD_CTX_new() : NULL;
    uint8_t *buf = malloc(65536);
    unsigned int n;
    int error = 0;
    if (a == NULL || buf == NULL || (d384 != NULL && b == NULL) ||
        EVP_DigestInit_ex(a, EVP_sha256(), NULL) != 1 ||
        (b != NULL && EVP_DigestInit_ex(b, EVP_sha384(), NULL) != 1)) {
        error = fwrel_error_set_openssl(FWREL_EIO, "digest setup failed");
        goto done;
    }
    while (len > 0) {
        size_t chunk = len < 65536 ? (size_t)len : 65536;
        if ((error = fwrel_src_read(src, buf, chunk)) != 0)
            goto done;
        if (EVP_DigestUpdate(a, buf, chunk) != 1 ||
            (b != NULL && EVP_DigestUpdate(b, buf, chunk) != 1)) {
            error = fwrel_error_set_openssl(FWREL_EIO, "digest failed");
            goto done;
        }
        len -= chunk;
    }
    if (EVP_DigestFinal_ex(a, d256, &n) != 1 || (b != NULL && EVP_DigestFinal_ex(b, d384, &n) != 1))
        error = fwrel_error_set_openssl(FWREL_EIO, "digest failed");
done:
    free(buf);
    EVP_MD_CTX_free(a);
    EVP_MD_CTX_free(b);
    return error;
}

/* Is name one of the comma-separated items of list? */
static int listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return 1;
        p = comma != NULL ? comma + 1 : NULL;
    }
    return 0;
}

int fwrel_test_hook(const char *step)
{
    if (listed(getenv("FWREL_TEST_KILL_AT"), step))
        raise(SIGKILL);
    if (listed(getenv("FWREL_TEST_FAIL_AT"), step))
        return fwrel_error_set(FWREL_EIO, "injected failure at %s", step);
    return 0;
}

int fwrel_sha256(uint8_t out[32], const void *p, size_t n)
{
    unsigned int len = 0;
    if (EVP_Digest(p != NULL ? p : "", n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return fwrel_error_set_openssl(FWREL_EIO, "SHA-256 failed");
    return 0;
}

void fwrel_sha256_hex(char out[65], const void *p, size_t n)
{
    uint8_t d[32];
    if (fwrel_sha256(d, p, n) != 0) {
        fwrel_error_clear();
        memset(d, 0, sizeof(d));
    }
    fwrel_hex(out, d, sizeof(d));
}

int fwrel_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fwrel_error_set_errno(FWREL_EIO, errno, "cannot sync %s", dir);
    int r = fsync(fd), e = errno;
    close(fd);
    if (r != 0 && e != EINVAL) /* EINVAL: a filesystem without directory sync */
        return fwrel_error_set_errno(FWREL_EIO, e, "cannot sync %s", dir);
    return 0;
}

void fwrel_remove_flat(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[4400];
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) < sizeof(path))
            unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
}

int fwrel_make_parents(const char *path, unsigned mode)
{
    char buf[4200];
    if (strlen(path) >= sizeof(buf))
        return fwrel_error_set(FWREL_EUSAGE, "path too long");
    memcpy(buf, path, strlen(path) + 1);
    for (char *s = strchr(buf + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST)
            return fwrel_error_set_errno(FWREL_EIO, errno, "cannot create %s", buf);
        *s = '/';
    }
    return 0;
}

void fwrel_problem(fwrel_problems *p, const char *fmt, ...)
{
    size_t off = strlen(p->text);
    va_list ap;
    if (p->n++ > 0 && off + 2 < sizeof(p->text)) {
        memcpy(p->text + off, "; ", 3);
        off += 2;
    }
    if (off + 1 >= sizeof(p->text))
        return;
    va_start(ap, fmt);
    vsnprintf(p->text + off, sizeof(p->text) - off, fmt, ap);
    va_end(ap);
}

int fwrel_grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    if (nc > SIZE_MAX / size)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    void *m = realloc(*arr, nc * size);
    if (m == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    *arr = m;
    *cap = nc;
    return 0;
}

static int cpos_cmp(const void *x, const void *y)
{
    return strcmp(((const fwrel_cpos *)x)->id, ((const fwrel_cpos *)y)->id);
}

void fwrel_cpos_index(fwrel_cpos *cp, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cp[i].pos = n - i;
    if (n > 1)
        qsort(cp, n, sizeof(*cp), cpos_cmp);
}

fwrel_cpos *fwrel_cpos_find(fwrel_cpos *cp, size_t n, const char *id)
{
    fwrel_cpos key;
    snprintf(key.id, sizeof(key.id), "%s", id);
    return n ? bsearch(&key, cp, n, sizeof(*cp), cpos_cmp) : NULL;
}

int fwrel_json_text(char **text, size_t *len, const json_t *o, size_t flags)
{
    char *t = json_dumps(o, flags);
    *text = NULL;
    *len = 0;
    if (t == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    size_t n = strlen(t);
    char *m = realloc(t, n + 2);
    if (m == NULL) {
        free(t);
        return fwrel_error_set(FWREL_EIO, "out of memory");
    }
    m[n] = '\n';
    m[n + 1] = '\0';
    *text = m;
    *len = n + 1;
    return 0;
}
