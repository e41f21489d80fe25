/* bundle.c - the release bundle: reproducible pax/ustar writer over a fixed member list, strict
 * in-memory reader, SHA256SUMS (docs/bundle.md). */
#include "fwrel/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

#define TAR_RECORD 10240 /* the writer's record: the tar is zero-padded to a multiple */

/* The writer's tar (docs/bundle.md), for the writer and for the reader's last guard alike:
 * pax restricted gives plain ustar headers while names fit (they do: <= 99 bytes) and the mtime
 * is in the ustar range; no atime/ctime; one fixed block size. */
static int tar_open(struct archive *a, void *ud, archive_write_callback *cb)
{
    return archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
                   archive_write_add_filter_none(a) != ARCHIVE_OK ||
                   archive_write_set_bytes_per_block(a, TAR_RECORD) != ARCHIVE_OK ||
                   archive_write_open(a, ud, NULL, cb, NULL) != ARCHIVE_OK
               ? -1
               : 0;
}

/* One member as the writer makes it: a regular file 0644, owner 0:0, the bundle's mtime; an
 * export file that is a copy of one of the artifacts art[] (NULL: none may be linked) is a hard
 * link to it, without data. 0, or -1 with libarchive's error. */
static int tar_member(struct archive *a, struct archive_entry *e, const fwrel_bundle_member *mem,
                      const fwrel_bundle_member *const *art, int64_t mtime)
{
    const char *link = NULL;
    for (int t = 0; art != NULL && t < 2 && strncmp(mem->name, "exports/", 8) == 0; t++)
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
    if (link != NULL)
        archive_entry_set_hardlink(e, link);
    archive_entry_set_size(e, link != NULL ? 0 : (la_int64_t)mem->len);
    return archive_write_header(a, e) != ARCHIVE_OK ||
                   (link == NULL && mem->len > 0 &&
                    archive_write_data(a, mem->data, mem->len) != (la_ssize_t)mem->len) ||
                   archive_write_finish_entry(a) != ARCHIVE_OK
               ? -1
               : 0;
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
            rc = fwrel_error_recode(FWREL_EUSAGE);
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
    if (tar_open(a, &buf, mem_write) != 0) {
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
        if (k >= 2 && (mem == art[0] || mem == art[1]))
            continue;
        if (tar_member(a, e, mem, k < 2 ? NULL : art, mtime) != 0) {
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

/*
 * The reader takes exactly what the writer makes, and nothing else (docs/bundle.md "Reading"):
 * one reading of a bundle, whoever extracts it. libarchive, GNU tar and Python's tarfile each
 * apply some header forms the others ignore (pax global headers, GNU long names beside a pax
 * path, base-256 numbers, old-style types), so a tar that one of them reads differently is
 * refused here, before anything it says is believed. The writer's form (libarchive's ustar
 * writer under pax_restricted, for these names and sizes), per 512-byte header:
 *
 *   name[100]     the member name, NUL-padded (at most 99 bytes)
 *   mode[8]       "000644 \0"     uid[8], gid[8]  "000000 \0"
 *   size[12]      11 octal digits and ' '        mtime[12]  the same
 *   chksum[8]     6 octal digits, NUL, ' '       typeflag   '0' (file) or '1' (hard link)
 *   linkname[100] the link's target (firmware.enc or manifest.fwm) or zeros
 *   magic "ustar\0", version "00", uname/gname empty, devmajor/devminor "000000 \0",
 *   prefix and the last 12 bytes zero;
 *
 * the data zero-padded to 512 bytes; after the last member two zero blocks, then zeros up to a
 * multiple of 10240 bytes (the writer's record), and nothing after. As a last guard the members
 * read are written again and the bytes must be the input's.
 */
#define TAR_BLOCK 512

/* magic "ustar\0" and version "00" (POSIX ustar; GNU's old form is "ustar  \0"). */
static const uint8_t ustar_magic[8] = {'u', 's', 't', 'a', 'r', 0, '0', '0'};

/* The name field as printable text for a message (the name is not trusted yet). */
static void shown_name(char out[4 * 100 + 1], const uint8_t *h)
{
    size_t o = 0;
    for (size_t i = 0; i < 100 && h[i] != 0; i++) {
        if (h[i] >= 0x20 && h[i] < 0x7f && h[i] != '\\')
            out[o++] = (char)h[i];
        else
            o += (size_t)snprintf(out + o, 5, "\\x%02x", h[i]);
    }
    out[o] = '\0';
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/* A size field read for its cap only (its exact form is checked with the whole header): leading
 * octal digits; 1 when the field holds none or a base-256 number. */
static int tar_octal(uint64_t *v, const uint8_t *f, size_t n)
{
    size_t i = 0;
    *v = 0;
    if (f[0] & 0x80)
        return 1;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++)
        *v = (*v << 3) | (uint64_t)(f[i] - '0');
    return i == 0 ? 1 : 0;
}

/* The header the writer makes for this member (see above). */
static void writer_header(uint8_t h[TAR_BLOCK], const char *name, char type, const char *link,
                          uint64_t size, uint64_t mtime)
{
    static const char id[] = "000000 ";
    char num[16];
    unsigned sum = 0;
    memset(h, 0, TAR_BLOCK);
    memcpy(h, name, strlen(name));
    memcpy(h + 100, "000644 ", 8);
    memcpy(h + 108, id, 8);
    memcpy(h + 116, id, 8);
    snprintf(num, sizeof(num), "%011llo ", (unsigned long long)size);
    memcpy(h + 124, num, 12);
    snprintf(num, sizeof(num), "%011llo ", (unsigned long long)mtime);
    memcpy(h + 136, num, 12);
    memset(h + 148, ' ', 8);
    h[156] = (uint8_t)type;
    if (link != NULL)
        memcpy(h + 157, link, strlen(link));
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memcpy(h + 329, id, 8);
    memcpy(h + 337, id, 8);
    for (size_t i = 0; i < TAR_BLOCK; i++)
        sum += h[i];
    snprintf(num, sizeof(num), "%06o", sum);
    memcpy(h + 148, num, 7);
}

/* The field holding byte i of a ustar header. */
static const char *field_at(size_t i)
{
    static const struct {
        size_t end;
        const char *name;
    } f[] = {{100, "name"},     {108, "mode"},     {116, "uid"},      {124, "gid"},
             {136, "size"},     {148, "mtime"},    {156, "chksum"},   {157, "typeflag"},
             {257, "linkname"}, {263, "magic"},    {265, "version"},  {297, "uname"},
             {329, "gname"},    {337, "devmajor"}, {345, "devminor"}, {500, "prefix"},
             {512, "padding"}};
    for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++)
        if (i < f[k].end)
            return f[k].name;
    return "padding";
}

/* Why a typeflag the writer never writes is refused. */
static const char *type_refused(uint8_t t)
{
    switch (t) {
    case '2':
        return "symbolic link";
    case '3':
    case '4':
        return "device";
    case '5':
        return "directory";
    case '6':
        return "fifo";
    case '7':
        return "contiguous file (typeflag '7')";
    case 'g':
        return "pax global header (typeflag 'g'), which other readers apply to every member";
    case 'x':
        return "pax extended header (typeflag 'x')";
    case 'L':
        return "GNU long name header (typeflag 'L')";
    case 'K':
        return "GNU long link header (typeflag 'K')";
    case 'S':
        return "sparse member";
    case 0:
        return "old-style regular file (typeflag NUL)";
    default:
        return "not a regular file";
    }
}

/* The writer's order: firmware.enc, manifest.fwm, then every other name bytewise. */
static int order_rank(const char *name)
{
    return strcmp(name, "firmware.enc") == 0 ? 0 : strcmp(name, "manifest.fwm") == 0 ? 1 : 2;
}

/* libarchive's write callback, comparing what the writer makes with the bytes read. */
struct cmpbuf {
    const uint8_t *want;
    size_t len, pos;
};

static la_ssize_t cmp_write(struct archive *a, void *ud, const void *buf, size_t n)
{
    struct cmpbuf *c = ud;
    size_t k = 0;
    while (k < n && c->pos + k < c->len && ((const uint8_t *)buf)[k] == c->want[c->pos + k])
        k++;
    c->pos += k;
    if (k < n) {
        archive_set_error(a, EINVAL, "differs");
        return -1;
    }
    return (la_ssize_t)n;
}

/* The last guard: the writer, given the members read (in their order) and the mtime, makes the
 * same bytes. The member list is in tar order here. */
static int same_as_writer(const fwrel_bundle *b, const uint8_t *data, size_t len)
{
    struct cmpbuf c = {data, len, 0};
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    int rc = 0;
    const fwrel_bundle_member *art[2] = {&b->members[0], &b->members[1]};
    if (a == NULL || e == NULL) {
        rc = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    if (tar_open(a, &c, cmp_write) != 0)
        goto differs;
    for (size_t k = 0; k < b->n; k++)
        if (tar_member(a, e, &b->members[k], k < 2 ? NULL : art, b->mtime) != 0)
            goto differs;
    if (archive_write_close(a) != ARCHIVE_OK || c.pos != len)
        goto differs;
    goto done;
differs:
    rc = fwrel_error_set(FWREL_EFORMAT,
                         "not the tar the writer makes of these members (byte %zu "
                         "differs): refused",
                         c.pos);
done:
    if (a)
        archive_write_free(a);
    archive_entry_free(e);
    return rc;
}

int fwrel_bundle_read_mem(fwrel_bundle **out, const uint8_t *data, size_t len)
{
    int rc = 0;
    fwrel_bundle *b = NULL;
    uint64_t total = 0;
    size_t off = 0;
    char shown[4 * 100 + 1];

    *out = NULL;
    b = calloc(1, sizeof(*b));
    if (b)
        b->members = calloc(FWREL_BUNDLE_MEMBERS_MAX, sizeof(*b->members));
    if (!b || !b->members) {
        rc = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    for (;;) {
        const uint8_t *h = data + off;
        uint8_t want[TAR_BLOCK];
        char name[FWREL_BUNDLE_NAME_MAX + 1], link[FWREL_BUNDLE_NAME_MAX + 1];
        unsigned sum = 0;
        uint64_t size = 0;
        const fwrel_bundle_member *target = NULL;

        if (len - off < TAR_BLOCK) {
            if (b->n == 0)
                rc = fwrel_error_set(FWREL_EFORMAT, "not a tar archive");
            else
                rc = fwrel_error_set(FWREL_EFORMAT,
                                     "damaged or truncated tar after %s: no end-of-archive marker",
                                     b->members[b->n - 1].name);
            goto done;
        }
        if (all_zero(h, TAR_BLOCK)) {
            /* The end: a second zero block, then zeros to the end of the writer's record. */
            size_t end = off + 2 * TAR_BLOCK;
            size_t padded = end + (TAR_RECORD - end % TAR_RECORD) % TAR_RECORD;
            if (b->n == 0) {
                rc = fwrel_error_set(FWREL_EFORMAT, "not a tar archive");
                goto done;
            }
            if (len - off < 2 * TAR_BLOCK || !all_zero(h + TAR_BLOCK, TAR_BLOCK)) {
                rc = fwrel_error_set(FWREL_EFORMAT,
                                     "one zero block after %s, not the two of the end-of-archive "
                                     "marker",
                                     b->members[b->n - 1].name);
                goto done;
            }
            if (len != padded || !all_zero(data + end, len - end)) {
                rc = fwrel_error_set(FWREL_EFORMAT,
                                     "trailing data after the end-of-archive marker at byte %zu "
                                     "(the writer pads with zeros to byte %zu)",
                                     end, padded);
                goto done;
            }
            break;
        }
        shown_name(shown, h);
        /* The checksum first: nothing in a damaged header is believed. */
        for (size_t i = 0; i < TAR_BLOCK; i++)
            sum += (i >= 148 && i < 156) ? ' ' : h[i];
        char ck[8];
        snprintf(ck, sizeof(ck), "%06o", sum);
        if (memcmp(h + 148, ck, 7) != 0 || h[155] != ' ') {
            if (b->n == 0 && memcmp(h + 257, "ustar", 5) != 0)
                rc = fwrel_error_set(FWREL_EFORMAT, "not a tar archive");
            else
                rc = fwrel_error_set(
                    FWREL_EFORMAT, "%s: bad header checksum (tar header at byte %zu)", shown, off);
            goto done;
        }
        if (h[156] != '0' && h[156] != '1') {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: %s", shown, type_refused(h[156]));
            goto done;
        }
        if (memcmp(h + 257, ustar_magic, sizeof(ustar_magic)) != 0) {
            rc = fwrel_error_set(FWREL_EFORMAT,
                                 "%s: not a POSIX ustar header (magic and version are not "
                                 "\"ustar\\0\" \"00\")",
                                 shown);
            goto done;
        }
        /* The name: in the name field alone (no prefix), terminated, zero-padded. */
        if (memchr(h, 0, 100) == NULL || !all_zero(h + 345, 155)) {
            rc = fwrel_error_set(FWREL_EFORMAT,
                                 "%s: name not in the name field alone (longer than %d bytes, or "
                                 "a ustar prefix)",
                                 shown, FWREL_BUNDLE_NAME_MAX);
            goto done;
        }
        fwrel_text_field(name, h, 100);
        if ((rc = fwrel_bundle_name_check(name)) != 0)
            goto done;
        if (!all_zero(h + strlen(name), 100 - strlen(name))) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: bytes after the name's NUL", name);
            goto done;
        }
        for (size_t i = 0; i < b->n; i++)
            if (strcmp(b->members[i].name, name) == 0) {
                rc = fwrel_error_set(FWREL_EFORMAT, "%s: duplicate member", name);
                goto done;
            }
        if (b->n == FWREL_BUNDLE_MEMBERS_MAX) {
            rc = fwrel_error_set(FWREL_EFORMAT, "more than %d members", FWREL_BUNDLE_MEMBERS_MAX);
            goto done;
        }
        /* The one link allowed: an export file naming an artifact read before it, no data. */
        if (memchr(h + 157, 0, 100) == NULL) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: link name not terminated", name);
            goto done;
        }
        fwrel_text_field(link, h + 157, 100);
        if (h[156] == '1') {
            if (strncmp(name, "exports/", 8) != 0 ||
                (strcmp(link, "firmware.enc") != 0 && strcmp(link, "manifest.fwm") != 0)) {
                rc = fwrel_error_set(FWREL_EFORMAT, "%s: hard link", name);
                goto done;
            }
            for (size_t i = 0; i < b->n; i++)
                if (strcmp(b->members[i].name, link) == 0)
                    target = &b->members[i];
            if (target == NULL) {
                rc = fwrel_error_set(FWREL_EFORMAT, "%s: hard link to %s before it", name, link);
                goto done;
            }
        }
        /* Sizes from the header, before any data is read (a link: its target's). */
        if (h[124] & 0x80) {
            rc = fwrel_error_set(
                FWREL_EFORMAT, "%s: size in base-256 (binary) form, not the writer's octal", name);
            goto done;
        }
        if (tar_octal(&size, h + 124, 12) != 0) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: no size", name);
            goto done;
        }
        if (target != NULL && size != 0) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: hard link with data", name);
            goto done;
        }
        uint64_t max = fwrel_bundle_member_max(name);
        uint64_t msize = target != NULL ? (uint64_t)target->len : size;
        if (msize > max) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: declared size %llu larger than %llu bytes",
                                 name, (unsigned long long)msize, (unsigned long long)max);
            goto done;
        }
        total += msize;
        if (total > FWREL_BUNDLE_TOTAL_MAX) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: members larger than %llu bytes in all", name,
                                 (unsigned long long)FWREL_BUNDLE_TOTAL_MAX);
            goto done;
        }
        if (b->n > 0) {
            const char *prev = b->members[b->n - 1].name;
            int rp = order_rank(prev), rn = order_rank(name);
            if (rn < rp || (rn == 2 && rp == 2 && strcmp(prev, name) > 0)) {
                rc = fwrel_error_set(FWREL_EFORMAT,
                                     "%s: after %s, not in the writer's order (firmware.enc, "
                                     "manifest.fwm, then the other names bytewise)",
                                     name, prev);
                goto done;
            }
        }
        /* Every other byte of the header is the writer's (mode, owners, mtime of the first
         * member, number forms, empty user and group names, device numbers, padding). */
        uint64_t mtime = 0;
        if (b->n > 0)
            mtime = (uint64_t)b->mtime;
        else if (tar_octal(&mtime, h + 136, 12) != 0 || mtime > (uint64_t)FWREL_BUNDLE_MTIME_MAX)
            mtime = 0;
        writer_header(want, name, (char)h[156], target != NULL ? link : NULL, size, mtime);
        for (size_t i = 0; i < TAR_BLOCK; i++)
            if (h[i] != want[i] && (i < 148 || i >= 156)) { /* the checksum: checked above */
                rc = fwrel_error_set(FWREL_EFORMAT,
                                     "%s: tar header field %s is not the writer's (byte %zu)", name,
                                     field_at(i), i);
                goto done;
            }
        off += TAR_BLOCK;
        /* The data and its zero padding, within the file. */
        uint64_t padded = (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
        if (padded > len - off) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: truncated", name);
            goto done;
        }
        if (!all_zero(data + off + size, (size_t)(padded - size))) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: data padding is not zeros", name);
            goto done;
        }
        fwrel_bundle_member *m = &b->members[b->n];
        uint8_t *buf = malloc(msize ? (size_t)msize : 1);
        char *nm = strdup(name);
        if (!buf || !nm) {
            free(buf);
            free(nm);
            rc = fwrel_error_set(FWREL_EIO, "out of memory");
            goto done;
        }
        memcpy(buf, target != NULL ? target->data : data + off, (size_t)msize);
        m->name = nm;
        m->data = buf;
        m->len = (size_t)msize;
        if (b->n++ == 0)
            b->mtime = (int64_t)mtime;
        off += (size_t)padded;
    }
    for (size_t r = 0; r < NREQUIRED; r++) {
        size_t i = 0;
        while (i < b->n && strcmp(b->members[i].name, required[r]) != 0)
            i++;
        if (i == b->n) {
            rc = fwrel_error_set(FWREL_EFORMAT, "%s: missing", required[r]);
            goto done;
        }
    }
    /* The order makes firmware.enc and manifest.fwm the first two members. */
    if ((rc = same_as_writer(b, data, len)) != 0)
        goto done;
    qsort(b->members, b->n, sizeof(*b->members), cmp_member);
    *out = b;
    b = NULL;
done:
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
    return rc ? fwrel_error_about(FWREL_ABOUT_BUNDLE, path) : 0;
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

/* --- extraction (fwrel_bundle_extract(), docs/verify.md "Extracting a bundle") ------------- */

/* What an extraction made, undone in reverse on failure: each entry a file or directory, by
 * its name in the directory fd it was made in. The fds are kept open until the end. */
struct made_one {
    int dirfd;
    int isdir;
    char name[FWREL_BUNDLE_NAME_MAX + 1];
};
struct made {
    struct made_one *e; /* cap entries: a file and its directories per member at most */
    size_t n, cap;
    int *fds; /* directory fds kept open (cap of them at most) */
    size_t nfds;
};

static int extract_fail(const char *dir, const char *name, int code, int err, const char *what)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (err != 0)
        fwrel_error_set_errno(code, err, "%s", what);
    else
        fwrel_error_set(code, "%s", what);
    return fwrel_error_about(FWREL_ABOUT_OUTPUT, path);
}

static void made_add(struct made *m, int dirfd, int isdir, const char *name)
{
    struct made_one *e = &m->e[m->n++];
    e->dirfd = dirfd;
    e->isdir = isdir;
    snprintf(e->name, sizeof(e->name), "%s", name);
}

static int made_kept(const struct made *m, int fd)
{
    for (size_t k = 0; k < m->nfds; k++)
        if (m->fds[k] == fd)
            return 1;
    return 0;
}

/* Keep fd open (an entry was made in it) unless it is dirfd or kept already. */
static void made_keep(struct made *m, int fd, int dirfd)
{
    if (fd != dirfd && !made_kept(m, fd))
        m->fds[m->nfds++] = fd;
}

/* Open (and, when make, create) the directories of name's path under dirfd, component by
 * component, never following a symbolic link. *out: the fd of the last directory (the caller
 * closes it unless it is dirfd or kept), -1 when a directory is absent and !make; *base: the
 * file's name in it. */
static int extract_dirs(int *out, const char **base, struct made *m, int dirfd, const char *dir,
                        const char *name, int make)
{
    char comp[FWREL_BUNDLE_NAME_MAX + 1], sofar[FWREL_BUNDLE_NAME_MAX + 1];
    const char *p = name, *slash;
    int fd = dirfd, error = 0;
    *out = -1;
    while ((slash = strchr(p, '/')) != NULL) {
        size_t len = (size_t)(slash - p), plen = (size_t)(slash - name);
        memcpy(comp, p, len);
        comp[len] = '\0';
        memcpy(sofar, name, plen);
        sofar[plen] = '\0';
        int nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0 && errno == ENOENT && make) {
            if (mkdirat(fd, comp, 0755) != 0) {
                error = extract_fail(dir, sofar, FWREL_EIO, errno, "cannot make the directory");
                break;
            }
            made_add(m, fd, 1, comp);
            made_keep(m, fd, dirfd);
            nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (nfd < 0 && errno == ENOENT && !make)
            break; /* absent: made when written, so nothing under it exists yet */
        if (nfd < 0) {
            struct stat st;
            int e = errno;
            if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                error = extract_fail(dir, sofar, FWREL_EIO, 0,
                                     "not a directory (a symbolic link): nothing is written "
                                     "outside the directory given");
            else
                error =
                    extract_fail(dir, sofar, FWREL_EIO, e == ENOTDIR ? 0 : e,
                                 e == ENOTDIR ? "not a directory" : "cannot open the directory");
            break;
        }
        if (fd != dirfd && !made_kept(m, fd))
            close(fd);
        fd = nfd;
        p = slash + 1;
    }
    if (slash != NULL) { /* stopped early: an error, or absent */
        if (fd != dirfd && !made_kept(m, fd))
            close(fd);
        return error;
    }
    *out = fd;
    *base = p;
    return 0;
}

static int extract_write(int fd, const char *base, const fwrel_bundle_member *mem, const char *dir)
{
    int out = openat(fd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0)
        return extract_fail(dir, mem->name, FWREL_EIO, errno == EEXIST ? 0 : errno,
                            errno == EEXIST ? "exists" : "cannot create");
    for (size_t off = 0; off < mem->len;) {
        ssize_t w = write(out, mem->data + off, mem->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(out);
            return extract_fail(dir, mem->name, FWREL_EIO, e, "cannot write");
        }
        off += (size_t)w;
    }
    if (fsync(out) != 0 || close(out) != 0)
        return extract_fail(dir, mem->name, FWREL_EIO, errno, "cannot write");
    return 0;
}

/* Does selection s name member name (the member, or a directory above it)? */
static int extract_selects(const char *s, const char *name)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    return n > 0 && strncmp(s, name, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

int fwrel_bundle_extract(const fwrel_bundle *b, const char *dir, const char *const *sel,
                         size_t nsel)
{
    struct made m = {NULL, 0, 0, NULL, 0};
    unsigned char want[FWREL_BUNDLE_MEMBERS_MAX] = {0};
    int dfd = -1, made_dir = 0, error = 0;

    FWREL_ASSERT_ARG(b != NULL && dir != NULL && (sel != NULL || nsel == 0));
    if (nsel > FWREL_BUNDLE_EXTRACT_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "more than %d members named",
                               FWREL_BUNDLE_EXTRACT_MAX);
    if (b->n > FWREL_BUNDLE_MEMBERS_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "more than %d members", FWREL_BUNDLE_MEMBERS_MAX);
    /* The selection: names as the bundle's, each naming at least one member. */
    for (size_t k = 0; k < nsel; k++) {
        int hit = 0;
        if (sel[k][0] == '\0' || sel[k][0] == '/' || strstr(sel[k], "..") != NULL ||
            strstr(sel[k], "//") != NULL || strlen(sel[k]) > FWREL_BUNDLE_NAME_MAX)
            return fwrel_error_set(FWREL_EUSAGE, "%s: not a member name of a bundle", sel[k]);
        for (size_t i = 0; i < b->n; i++)
            if (extract_selects(sel[k], b->members[i].name))
                hit = want[i] = 1;
        if (!hit)
            return fwrel_error_set(FWREL_EUSAGE, "%s: not in the bundle", sel[k]);
    }
    for (size_t i = 0; i < b->n; i++) {
        want[i] |= nsel == 0;
        for (const char *c = b->members[i].name; want[i] && *c; c++)
            m.cap += *c == '/';
        m.cap += want[i];
    }
    m.e = calloc(m.cap ? m.cap : 1, sizeof(*m.e));
    m.fds = calloc(m.cap ? m.cap : 1, sizeof(*m.fds));
    if (m.e == NULL || m.fds == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }

    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT) {
        if (mkdir(dir, 0755) != 0) {
            fwrel_error_set_errno(FWREL_EIO, errno, "cannot make the directory");
            error = fwrel_error_about(FWREL_ABOUT_OUTPUT, dir);
            goto done;
        }
        made_dir = 1;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (dfd < 0) {
        fwrel_error_set_errno(FWREL_EIO, errno, "cannot open the directory");
        error = fwrel_error_about(FWREL_ABOUT_OUTPUT, dir);
        goto done;
    }
    /* First every check, then the writes. */
    for (size_t i = 0; i < b->n && error == 0; i++) {
        struct stat st;
        const char *base = NULL;
        int fd = -1;
        if (!want[i])
            continue;
        if ((error = extract_dirs(&fd, &base, &m, dfd, dir, b->members[i].name, 0)) == 0 &&
            fd >= 0 && fstatat(fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0)
            error = extract_fail(dir, b->members[i].name, FWREL_EIO, 0, "exists");
        if (fd >= 0 && fd != dfd)
            close(fd);
    }
    for (size_t i = 0; i < b->n && error == 0; i++) {
        const char *base = NULL;
        int fd = -1;
        if (!want[i])
            continue;
        if ((error = extract_dirs(&fd, &base, &m, dfd, dir, b->members[i].name, 1)) != 0)
            break;
        if ((error = extract_write(fd, base, &b->members[i], dir)) != 0) {
            if (fd != dfd && !made_kept(&m, fd))
                close(fd);
            break;
        }
        made_add(&m, fd, 0, base);
        made_keep(&m, fd, dfd);
    }
    for (size_t k = 0; k < m.nfds && error == 0; k++)
        if (fsync(m.fds[k]) != 0)
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot write");
    if (error == 0 && fsync(dfd) != 0) {
        fwrel_error_set_errno(FWREL_EIO, errno, "cannot write");
        error = fwrel_error_about(FWREL_ABOUT_OUTPUT, dir);
    }
done:
    if (error != 0) {
        fwrel_error saved = *fwrel_error_last();
        for (size_t k = m.n; k-- > 0;)
            unlinkat(m.e[k].dirfd, m.e[k].name, m.e[k].isdir ? AT_REMOVEDIR : 0);
        if (made_dir)
            rmdir(dir);
        fwrel_error_restore(&saved);
    }
    for (size_t k = 0; k < m.nfds; k++)
        close(m.fds[k]);
    if (dfd >= 0)
        close(dfd);
    free(m.e);
    free(m.fds);
    return error;
}
