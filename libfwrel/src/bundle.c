/* bundle.c - the release bundle: reproducible pax/ustar writer over a fixed member list, strict
 * in-memory reader, SHA256SUMS (docs/bundle.md). */
#include "fwrel/bundle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "fwrel/io.h"
#include "util.h"

static const char *const required[] = {"SHA256SUMS", "firmware.enc", "manifest.fwm",
                                       "release.json"};
#define NREQUIRED (sizeof(required) / sizeof(required[0]))

static int component_ok(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int is_approval(const char *name)
{
    if (strncmp(name, "approvals/", 10) != 0 || strlen(name) != 10 + 40 + 4 ||
        strcmp(name + 50, ".asc") != 0)
        return 0;
    for (size_t i = 10; i < 50; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'A' && name[i] <= 'F')))
            return 0;
    return 1;
}

static int is_export(const char *name)
{
    if (strncmp(name, "exports/", 8) != 0)
        return 0;
    /* exports/<name>/<file>, the file up to three levels deep (an export's own layout,
     * e.g. flask-ota's firmware/<version>.bin). */
    int parts = 0;
    for (const char *p = name + 8;; parts++) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (!component_ok(p, len) || parts >= 4)
            return 0;
        if (!slash)
            break;
        p = slash + 1;
    }
    return parts >= 1;
}

int fwrel_bundle_name_check(const char *name)
{
    size_t n = strlen(name);
    if (n == 0)
        return fwrel_error_set(FWREL_EFORMAT, "empty member name");
    if (name[0] == '/')
        return fwrel_error_set(FWREL_EFORMAT, "%s: absolute path", name);
    for (const char *p = name;;) {
        const char *e = strchr(p, '/');
        size_t cl = e ? (size_t)(e - p) : strlen(p);
        if (cl == 2 && p[0] == '.' && p[1] == '.')
            return fwrel_error_set(FWREL_EFORMAT, "%s: '..' component", name);
        if (cl == 0 || (cl == 1 && p[0] == '.'))
            return fwrel_error_set(FWREL_EFORMAT, "%s: empty or '.' component", name);
        if (!e)
            break;
        p = e + 1;
    }
    if (n > FWREL_BUNDLE_NAME_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "%.*s...: name longer than %d bytes", 40, name,
                               FWREL_BUNDLE_NAME_MAX);
    for (size_t i = 0; i < NREQUIRED; i++)
        if (strcmp(name, required[i]) == 0)
            return 0;
    if (is_export(name) || is_approval(name))
        return 0;
    return fwrel_error_set(FWREL_EFORMAT, "%s: not a bundle member", name);
}

uint64_t fwrel_bundle_member_max(const char *name)
{
    if (strcmp(name, "firmware.enc") == 0 || strncmp(name, "exports/", 8) == 0)
        return FWREL_BUNDLE_IMAGE_MAX;
    return FWREL_BUNDLE_SMALL_MAX;
}

static int cmp_member(const void *a, const void *b)
{
    return strcmp(((const fwrel_bundle_member *)a)->name, ((const fwrel_bundle_member *)b)->name);
}

/* Sorted copy of the member array (pointers only). */
static int sorted_copy(fwrel_bundle_member **out, const fwrel_bundle_member *m, size_t n)
{
    *out = malloc((n ? n : 1) * sizeof(**out));
    if (!*out)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    if (n)
        memcpy(*out, m, n * sizeof(*m));
    qsort(*out, n, sizeof(**out), cmp_member);
    return 0;
}

/* Growable buffer for libarchive's write callback. */
struct membuf {
    uint8_t *p;
    size_t len, cap;
};

static la_ssize_t mem_write(struct archive *a, void *ud, const void *buf, size_t n)
{
    struct membuf *m = ud;
    if (m->len + n > FWREL_BUNDLE_FILE_MAX) {
        archive_set_error(a, EFBIG, "bundle too large");
        return -1;
    }
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->len + n)
            cap *= 2;
        uint8_t *np = realloc(m->p, cap);
        if (!np) {
            archive_set_error(a, ENOMEM, "out of memory");
            return -1;
        }
        m->p = np;
        m->cap = cap;
    }
    memcpy(m->p + m->len, buf, n);
    m->len += n;
    return (la_ssize_t)n;
}

int fwrel_bundle_write_mem(uint8_t **out, size_t *len, const fwrel_bundle_member *m, size_t n,
                           int64_t mtime)
{
    int rc = 0;
    fwrel_bundle_member *s = NULL;
    struct archive *a = NULL;
    struct archive_entry *e = NULL;
    struct membuf buf = {0};
    uint64_t total = 0;

    *out = NULL;
    *len = 0;
    if (mtime < 0 || mtime > FWREL_BUNDLE_MTIME_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "bundle mtime %lld out of range", (long long)mtime);
    if (n > FWREL_BUNDLE_MEMBERS_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "more than %d bundle members",
                               FWREL_BUNDLE_MEMBERS_MAX);
    if ((rc = sorted_copy(&s, m, n)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (fwrel_bundle_name_check(s[i].name) != 0) {
            char why[FWREL_ERROR_MSG_MAX];
            snprintf(why, sizeof(why), "%s", fwrel_error_last()->message);
            rc = fwrel_error_set(FWREL_EUSAGE, "%s", why);
            goto done;
        }
        if (i > 0 && strcmp(s[i - 1].name, s[i].name) == 0) {
            rc = fwrel_error_set(FWREL_EUSAGE, "%s: duplicate member", s[i].name);
            goto done;
        }
        if (s[i].len > fwrel_bundle_member_max(s[i].name)) {
            rc = fwrel_error_set(FWREL_EUSAGE, "%s: larger than %llu bytes", s[i].name,
                                 (unsigned long long)fwrel_bundle_member_max(s[i].name));
            goto done;
        }
        total += s[i].len;
        if (total > FWREL_BUNDLE_TOTAL_MAX) {
            rc = fwrel_error_set(FWREL_EUSAGE, "%s: members larger than %llu bytes in all",
                                 s[i].name, (unsigned long long)FWREL_BUNDLE_TOTAL_MAX);
            goto done;
        }
    }
    for (size_t r = 0; r < NREQUIRED; r++) {
        fwrel_bundle_member key = {required[r], NULL, 0};
        if (!bsearch(&key, s, n, sizeof(*s), cmp_member)) {
            rc = fwrel_error_set(FWREL_EUSAGE, "%s: missing", required[r]);
            goto done;
        }
    }

    a = archive_write_new();
    e = archive_entry_new();
    if (!a || !e) {
        rc = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    /* pax restricted: plain ustar headers while names fit (they do: <= 99 bytes) and the
     * mtime is in the ustar range; no atime/ctime; one fixed block size. */
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_add_filter_none(a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a, 10240) != ARCHIVE_OK ||
        archive_write_open(a, &buf, NULL, mem_write, NULL) != ARCHIVE_OK) {
        rc = fwrel_error_set(FWREL_EIO, "tar writer: %s", archive_error_string(a));
        goto done;
    }
    /*
     * The served artifacts first, then every other member in name order; an export file that is
     * a copy of an artifact is written as a hard link to it (no data: the bundle holds each
     * image once, and `tar x` still gives the export directory whole).
     */
    fwrel_bundle_member key_img = {"firmware.enc", NULL, 0}, key_man = {"manifest.fwm", NULL, 0};
    const fwrel_bundle_member *art[2] = {bsearch(&key_img, s, n, sizeof(*s), cmp_member),
                                         bsearch(&key_man, s, n, sizeof(*s), cmp_member)};
    for (size_t k = 0; k < n + 2; k++) {
        const fwrel_bundle_member *mem = k < 2 ? art[k] : &s[k - 2];
        const char *link = NULL;
        if (k >= 2 && (mem == art[0] || mem == art[1]))
            continue;
        for (int t = 0; t < 2 && strncmp(mem->name, "exports/", 8) == 0; t++)
            if (art[t]->len == mem->len && art[t]->len > 0 &&
                memcmp(art[t]->data, mem->data, mem->len) == 0)
                link = art[t]->name;
        archive_entry_clear(e);
        archive_entry_set_pathname(e, mem->name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        archive_entry_set_mtime(e, (time_t)mtime, 0);
        if (link != NULL) {
            archive_entry_set_hardlink(e, link);
            archive_entry_set_size(e, 0);
        } else {
            archive_entry_set_size(e, (la_int64_t)mem->len);
        }
        if (archive_write_header(a, e) != ARCHIVE_OK ||
            (link == NULL && mem->len > 0 &&
             archive_write_data(a, mem->data, mem->len) != (la_ssize_t)mem->len) ||
            archive_write_finish_entry(a) != ARCHIVE_OK) {
            rc = fwrel_error_set(FWREL_EIO, "%s: tar writer: %s", mem->name,
                                 archive_error_string(a));
            goto done;
        }
    }
    if (archive_write_close(a) != ARCHIVE_OK) {
        rc = fwrel_error_set(FWREL_EIO, "tar writer: %s", archive_error_string(a));
        goto done;
    }
    *out = buf.p;
    *len = buf.len;
    buf.p = NULL;
done:
    if (a)
        archive_write_free(a);
    archive_entry_free(e);
    free(buf.p);
    free(s);
    return rc;
}

int fwrel_bundle_write(const char *path, const fwrel_bundle_member *m, size_t n, int64_t mtime,
                       unsigned flags)
{
    uint8_t *tar = NULL;
    size_t len = 0;
    int rc = fwrel_bundle_write_mem(&tar, &len, m, n, mtime);
    if (rc == 0)
        rc = fwrel_io_write_file(path, tar, len, flags, 0644);
    free(tar);
    return rc;
}

void fwrel_bundle_free(fwrel_bundle *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free((char *)b->members[i].name);
        free((uint8_t *)b->members[i].data);
    }
    free(b->members);
    free(b);
}

const fwrel_bundle_member *fwrel_bundle_find(const fwrel_bundle *b, const char *name)
{
    fwrel_bundle_member key = {name, NULL, 0};
    return bsearch(&key, b->members, b->n, sizeof(key), cmp_member);
}

int fwrel_bundle_read_mem(fwrel_bundle **out, const uint8_t *data, size_t len)
{
    int rc = 0;
    struct archive *a = NULL;
    struct archive_entry *e = NULL;
    fwrel_bundle *b = NULL;
    uint64_t total = 0;
    char last[FWREL_BUNDLE_NAME_MAX + 1] = "";

    *out = NULL;
    b = calloc(1, sizeof(*b));
    if (b)
        b->members = calloc(FWREL_BUNDLE_MEMBERS_MAX, sizeof(*b->members));
    a = archive_read_new();
    if (!b || !b->members || !a) {
        rc = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    /* Uncompressed tar only: no other format, no decompression filter. */
    if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_support_filter_none(a) != ARCHIVE_OK ||
        archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
        rc = fwrel_error_set(FWREL_EFORMAT, "not a tar archive");
        goto done;
    }
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK) {
            if (b->n == 0)
                rc = fwrel_error_set(FWREL_EFORMAT, "not a tar archive");
            else
                rc = fwrel_error_set(FWREL_EFORMAT, "damaged or truncated tar after %s", last);
            goto done;
        }
        const char *name = archive_entry_pathname(e);
        if (!name) {
            rc = fwrel_error_set(FWREL_EFORMAT, "member without a name");
            goto done;
        }
        /* The one link allowed: an export file naming an artifact read before it. */
        const char *hl = archive_entry_hardlink(e);
        const fwrel_bundle_member *target = NULL;
        if (hl != NULL) {
            if (strncmp(name, "exports/", 8) != 0 ||
                (strcmp(hl, "firmware.enc") != 0 && strcmp(hl, "manifest.fwm") != 0)) {
                rc = fwrel_error_set(FWREL_EFORMAT, "%s: hard link", name);
                goto done;
            }
            for (size_t i = 0; i < b->n; i++)
                if (strcmp(b->members[i].name, hl) == 0)
                    target = &b->members[i];
            if (target == NULL) {
                rc = fwrel_error_set(FWREL_EFORMAT, "%s: hard link to %s before it", name, hl);
                goto done;
            }
            if (archive_entry_size(e) != 0) {
                rc = fwrel_error_set(FWREL_EFORMAT, "%s: hard link with data", name);
                goto done;
            }
        }
        switch (hl != NULL ? AE_IFREG : archive_entry_filetype(e)) {
        case AE_IFREG:
            break;
        case AE_IFLNK:
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: symbolic link", name);
            goto done;
        case AE_IFDIR:
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: directory", name);
            goto done;
        case AE_IFCHR:
        case AE_IFBLK:
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: device", name);
            goto done;
        case AE_IFIFO:
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: fifo", name);
            goto done;
        default:
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: not a regular file", name);
            goto done;
        }
        if ((rc = fwrel_bundle_name_check(name)) != 0)
            goto done;
        for (size_t i = 0; i < b->n; i++)
            if (strcmp(b->members[i].name, name) == 0) {
                rc = fwrel_error_set(FWREL_EFORMAT, "%s: duplicate member", name);
                goto done;
            }
        if (b->n == FWREL_BUNDLE_MEMBERS_MAX) {
            rc = fwrel_error_set(FWREL_EFORMAT, "more than %d members", FWREL_BUNDLE_MEMBERS_MAX);
            goto done;
        }
        /* Sizes from the header, before any data is read (a link: its target's). */
        uint64_t max = fwrel_bundle_member_max(name);
        la_int64_t size = target != NULL ? (la_int64_t)target->len : archive_entry_size(e);
        if ((target == NULL && !archive_entry_size_is_set(e)) || size < 0) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: no size", name);
            goto done;
        }
        if ((uint64_t)size > max) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: declared size %lld larger than %llu bytes",
                                 name, (long long)size, (unsigned long long)max);
            goto done;
        }
        if (archive_entry_sparse_count(e) > 0) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: sparse member", name);
            goto done;
        }
        total += (uint64_t)size;
        if (total > FWREL_BUNDLE_TOTAL_MAX) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: members larger than %llu bytes in all", name,
                                 (unsigned long long)FWREL_BUNDLE_TOTAL_MAX);
            goto done;
        }
        fwrel_bundle_member *m = &b->members[b->n];
        uint8_t *buf = malloc((size_t)size + 1);
        char *nm = strdup(name);
        if (!buf || !nm) {
            free(buf);
            free(nm);
            rc = fwrel_error_set(FWREL_EIO, "out of memory");
            goto done;
        }
        m->name = nm;
        m->data = buf;
        b->n++;
        if (b->n == 1)
            b->mtime = (int64_t)archive_entry_mtime(e);
        /* Read at most the declared size, plus one byte to see that nothing more comes. */
        size_t got = 0;
        if (target != NULL) {
            memcpy(buf, target->data, target->len);
            got = target->len;
        }
        for (; target == NULL;) {
            la_ssize_t k = archive_read_data(a, buf + got, (size_t)size + 1 - got);
            if (k < 0) {
                rc = fwrel_error_set(FWREL_EFORMAT, "%s: truncated or damaged", name);
                goto done;
            }
            if (k == 0)
                break;
            got += (size_t)k;
            if (got > (size_t)size) {
                rc = fwrel_error_set(FWREL_EFORMAT, "%s: more data than declared", name);
                goto done;
            }
        }
        if (got != (size_t)size) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: truncated", name);
            goto done;
        }
        m->len = got;
        snprintf(last, sizeof(last), "%s", name);
    }
    qsort(b->members, b->n, sizeof(*b->members), cmp_member);
    for (size_t r = 0; r < NREQUIRED; r++)
        if (!fwrel_bundle_find(b, required[r])) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: missing", required[r]);
            goto done;
        }
    *out = b;
    b = NULL;
done:
    if (a)
        archive_read_free(a);
    fwrel_bundle_free(b);
    return rc;
}

int fwrel_bundle_read(fwrel_bundle **out, const char *path)
{
    fwrel_src src;
    uint8_t *data = NULL;
    int rc;
    *out = NULL;
    if ((rc = fwrel_src_open(&src, path, FWREL_BUNDLE_FILE_MAX)) != 0)
        return rc;
    data = malloc(src.size ? (size_t)src.size : 1);
    if (!data)
        rc = fwrel_error_set(FWREL_EIO, "out of memory");
    else if ((rc = fwrel_src_read(&src, data, (size_t)src.size)) == 0)
        rc = fwrel_bundle_read_mem(out, data, (size_t)src.size);
    fwrel_src_close(&src);
    free(data);
    return rc;
}

static int summed(const char *name)
{
    return strcmp(name, "SHA256SUMS") != 0 && strncmp(name, "approvals/", 10) != 0;
}

int fwrel_bundle_sums(char **out, size_t *len, const fwrel_bundle_member *m, size_t n)
{
    fwrel_bundle_member *s = NULL;
    size_t cap = 1, pos = 0;
    int rc;
    *out = NULL;
    *len = 0;
    if ((rc = sorted_copy(&s, m, n)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(s[i - 1].name, s[i].name) == 0) {
            free(s);
            return fwrel_error_set(FWREL_EUSAGE, "%s: duplicate member", s[i].name);
        }
        if (summed(s[i].name))
            cap += 64 + 2 + strlen(s[i].name) + 1;
    }
    char *t = malloc(cap);
    if (!t) {
        free(s);
        return fwrel_error_set(FWREL_EIO, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (!summed(s[i].name))
            continue;
        fwrel_sha256_hex(t + pos, s[i].data, s[i].len);
        pos += 64;
        size_t nl = strlen(s[i].name);
        memcpy(t + pos, "  ", 2);
        memcpy(t + pos + 2, s[i].name, nl);
        t[pos + 2 + nl] = '\n';
        pos += 2 + nl + 1;
    }
    t[pos] = '\0';
    free(s);
    *out = t;
    *len = pos;
    return 0;
}

int fwrel_bundle_check_sums(const fwrel_bundle *b)
{
    const fwrel_bundle_member *sums = fwrel_bundle_find(b, "SHA256SUMS");
    if (!sums)
        return fwrel_error_set(FWREL_EFORMAT, "SHA256SUMS: missing");
    /* Pass 0 checks the form and the order of every line, pass 1 the members. */
    for (int pass = 0; pass < 2; pass++) {
        const char *p = (const char *)sums->data, *end = p + sums->len;
        size_t line = 0, next = 0; /* next: index of the next summed member expected */
        char prevname[FWREL_BUNDLE_NAME_MAX + 1] = "";
        while (p < end) {
            line++;
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl)
                return fwrel_error_set(FWREL_EFORMAT, "SHA256SUMS line %zu: no newline", line);
            size_t ll = (size_t)(nl - p);
            char hex[65];
            if (ll < 64 + 2 + 1 || p[64] != ' ' || p[65] != ' ')
                return fwrel_error_set(FWREL_EFORMAT, "SHA256SUMS line %zu: not '<sha256>  <name>'",
                                       line);
            memcpy(hex, p, 64);
            hex[64] = '\0';
            for (size_t i = 0; i < 64; i++)
                if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
                    return fwrel_error_set(FWREL_EFORMAT,
                                           "SHA256SUMS line %zu: not a lower-case SHA-256", line);
            size_t nlen = ll - 66;
            if (nlen > FWREL_BUNDLE_NAME_MAX || memchr(p + 66, '\0', nlen))
                return fwrel_error_set(FWREL_EFORMAT, "SHA256SUMS line %zu: bad name", line);
            char name[FWREL_BUNDLE_NAME_MAX + 1];
            memcpy(name, p + 66, nlen);
            name[nlen] = '\0';
            if (line > 1 && strcmp(prevname, name) >= 0)
                return fwrel_error_set(
                    FWREL_EFORMAT, "SHA256SUMS line %zu: %s not after %s (unsorted or repeated)",
                    line, name, prevname);
            memcpy(prevname, name, nlen + 1);
            if (pass == 0) {
                p = nl + 1;
                continue;
            }
            /* Members are sorted: walk them alongside. */
            while (next < b->n && !summed(b->members[next].name))
                next++;
            if (next < b->n && strcmp(b->members[next].name, name) < 0)
                return fwrel_error_set(FWREL_EVERIFY, "SHA256SUMS: %s: not listed",
                                       b->members[next].name);
            if (next == b->n || strcmp(b->members[next].name, name) != 0 || !summed(name))
                return fwrel_error_set(FWREL_EVERIFY, "SHA256SUMS: %s: not a summed member", name);
            char want[65];
            fwrel_sha256_hex(want, b->members[next].data, b->members[next].len);
            if (strcmp(want, hex) != 0)
                return fwrel_error_set(FWREL_EVERIFY, "SHA256SUMS: %s: digest mismatch", name);
            next++;
            p = nl + 1;
        }
        while (pass == 1 && next < b->n && !summed(b->members[next].name))
            next++;
        if (pass == 1 && next < b->n)
            return fwrel_error_set(FWREL_EVERIFY, "SHA256SUMS: %s: not listed",
                                   b->members[next].name);
    }
    return 0;
}

int fwrel_bundle_add_approval(const char *path, const char *fpr, const uint8_t *sig, size_t len)
{
    fwrel_bundle *b = NULL;
    fwrel_bundle_member *m = NULL;
    char name[64];
    int rc;
    if (strlen(fpr) != 40)
        return fwrel_error_set(FWREL_EUSAGE, "approval: fingerprint is not 40 upper-case hex");
    snprintf(name, sizeof(name), "approvals/%s.asc", fpr);
    if (!is_approval(name))
        return fwrel_error_set(FWREL_EUSAGE, "approval: fingerprint is not 40 upper-case hex");
    if (len > FWREL_BUNDLE_SMALL_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "%s: larger than %llu bytes", name,
                               (unsigned long long)FWREL_BUNDLE_SMALL_MAX);
    if ((rc = fwrel_bundle_read(&b, path)) != 0)
        return rc;
    if (fwrel_bundle_find(b, name)) {
        rc = fwrel_error_set(FWREL_EVERIFY, "%s: already in the bundle", name);
        goto done;
    }
    m = malloc((b->n + 1) * sizeof(*m));
    if (!m) {
        rc = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    memcpy(m, b->members, b->n * sizeof(*m));
    m[b->n].name = name;
    m[b->n].data = sig;
    m[b->n].len = len;
    rc = fwrel_bundle_write(path, m, b->n + 1, b->mtime, FWREL_OUT_FORCE);
done:
    free(m);
    fwrel_bundle_free(b);
    return rc;
}
