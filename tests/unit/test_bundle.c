/* test_bundle.c - the release bundle: byte-identical writes (also from another process), the
 * fixed ustar headers, round trip, writer refusals leaving no file, every hostile tar built
 * with libarchive rejected with its one reason, SHA256SUMS made and checked, approvals added. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "fwrel/bundle.h"
#include "fwrel/io.h"
#include "testutil.h"

static const char *dir;
static char *paths[64];
static size_t npaths;

static const char *tpath(const char *name)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    assert_true(npaths < sizeof(paths) / sizeof(paths[0]));
    paths[npaths] = strdup(buf);
    assert_non_null(paths[npaths]);
    unlink(paths[npaths]);
    return paths[npaths++];
}

static uint8_t firmware[100000];
static const char release_json[] = "{\"format\":1,\"product\":\"demo\",\"version\":\"1.2.3\"}";
static const char manifest[] = "FWM1 not really a manifest, bytes are bytes";
static const char export_json[] = "{\"url\":\"https://example.invalid/fw\"}";
static char *sums;
static size_t sums_len;

#define MTIME ((int64_t)1700000000)

/* The standard members, in a scrambled order; SHA256SUMS made by the library. */
static size_t members(fwrel_bundle_member *m)
{
    m[0] =
        (fwrel_bundle_member){"release.json", (const uint8_t *)release_json, strlen(release_json)};
    m[1] = (fwrel_bundle_member){"exports/ota/app.json", (const uint8_t *)export_json,
                                 strlen(export_json)};
    m[2] = (fwrel_bundle_member){"firmware.enc", firmware, sizeof(firmware)};
    m[3] = (fwrel_bundle_member){"manifest.fwm", (const uint8_t *)manifest, strlen(manifest)};
    if (!sums)
        assert_int_equal(fwrel_bundle_sums(&sums, &sums_len, m, 4), 0);
    m[4] = (fwrel_bundle_member){"SHA256SUMS", (const uint8_t *)sums, sums_len};
    return 5;
}

static void expect_read(const uint8_t *tar, size_t len, const char *msg)
{
    fwrel_bundle *b = (fwrel_bundle *)1;
    int rc = fwrel_bundle_read_mem(&b, tar, len);
    if (rc != FWREL_EFORMAT || strcmp(fwrel_error_last()->message, msg) != 0)
        fprintf(stderr, "read: %d %s\n", rc, fwrel_error_last()->message);
    assert_int_equal(rc, FWREL_EFORMAT);
    assert_string_equal(fwrel_error_last()->message, msg);
    assert_null(b);
}

static void test_sums_text(void **state)
{
    (void)state;
    fwrel_bundle_member m[5];
    members(m);
    /* sha256sum's format, sorted, SHA256SUMS itself and approvals left out. */
    char line[200];
    uint8_t d[32];
    unsigned int dl;
    char hex[65];
    assert_int_equal(EVP_Digest(firmware, sizeof(firmware), d, &dl, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    snprintf(line, sizeof(line), "%s  firmware.enc\n", hex);
    assert_non_null(strstr(sums, line));
    const char *names[] = {"  exports/ota/app.json\n", "  firmware.enc\n", "  manifest.fwm\n",
                           "  release.json\n"};
    const char *p = sums;
    for (size_t i = 0; i < 4; i++) {
        assert_memory_equal(p + 64, names[i], strlen(names[i]));
        p += 64 + strlen(names[i]);
    }
    assert_int_equal(p - sums, (ptrdiff_t)sums_len);
    assert_int_equal(sums[sums_len], '\0');
}

static void test_deterministic(void **state)
{
    (void)state;
    fwrel_bundle_member m[5], r[5];
    size_t n = members(m);
    for (size_t i = 0; i < n; i++)
        r[i] = m[n - 1 - i];
    uint8_t *a = NULL, *b = NULL, *c = NULL;
    size_t alen, blen, clen;
    assert_int_equal(fwrel_bundle_write_mem(&a, &alen, m, n, MTIME), 0);
    assert_int_equal(fwrel_bundle_write_mem(&b, &blen, r, n, MTIME), 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    assert_int_equal(alen % 10240, 0);

    /* Another process (another pid) writes the same bytes to a file. */
    const char *path = tpath("child.tar");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fwrel_bundle_write(path, r, n, MTIME, 0) == 0 ? 0 : 1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t flen = 0;
    uint8_t *f = testutil_read(path, &flen);
    assert_int_equal(flen, alen);
    assert_memory_equal(f, a, alen);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644 & ~0022 & 0777);

    /* Another mtime, other bytes. */
    assert_int_equal(fwrel_bundle_write_mem(&c, &clen, m, n, MTIME + 1), 0);
    assert_int_equal(clen, alen);
    assert_memory_not_equal(a, c, alen);

    /* Plain ustar headers: first member firmware.enc (the artifacts first, then bytewise
     * order), mode 0644, uid/gid 0, empty user and group names, the mtime, no pax header. */
    assert_string_equal((const char *)a, "firmware.enc");
    assert_memory_equal(a + 100, "000644 ", 7);
    assert_memory_equal(a + 108, "000000 ", 7);
    assert_memory_equal(a + 116, "000000 ", 7);
    char mt[16];
    snprintf(mt, sizeof(mt), "%011llo", (unsigned long long)MTIME);
    assert_memory_equal(a + 136, mt, 11);
    assert_int_equal(a[156], '0');
    assert_memory_equal(a + 257, "ustar", 5);
    assert_int_equal(a[265], '\0');
    assert_int_equal(a[297], '\0');
    free(a);
    free(b);
    free(c);
    free(f);
}

static void test_round_trip(void **state)
{
    (void)state;
    fwrel_bundle_member m[5];
    size_t n = members(m);
    const char *path = tpath("round.tar");
    assert_int_equal(fwrel_bundle_write(path, m, n, MTIME, 0), 0);
    fwrel_bundle *b = NULL;
    assert_int_equal(fwrel_bundle_read(&b, path), 0);
    assert_int_equal(b->n, 5);
    assert_int_equal(b->mtime, MTIME);
    const char *order[] = {"SHA256SUMS", "exports/ota/app.json", "firmware.enc", "manifest.fwm",
                           "release.json"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(b->members[i].name, order[i]);
    const fwrel_bundle_member *fw = fwrel_bundle_find(b, "firmware.enc");
    assert_non_null(fw);
    assert_int_equal(fw->len, sizeof(firmware));
    assert_memory_equal(fw->data, firmware, sizeof(firmware));
    assert_null(fwrel_bundle_find(b, "nope"));
    assert_int_equal(fwrel_bundle_check_sums(b), 0);
    fwrel_bundle_free(b);

    /* An existing file is not replaced without FWREL_OUT_FORCE. */
    assert_int_equal(fwrel_bundle_write(path, m, n, MTIME + 5, 0), FWREL_EIO);
    assert_int_equal(fwrel_bundle_write(path, m, n, MTIME + 5, FWREL_OUT_FORCE), 0);
}

static void expect_write_refused(fwrel_bundle_member *m, size_t n, int64_t mtime, const char *msg)
{
    const char *path = tpath("refused.tar");
    int rc = fwrel_bundle_write(path, m, n, mtime, 0);
    if (rc != FWREL_EUSAGE || strcmp(fwrel_error_last()->message, msg) != 0)
        fprintf(stderr, "write: %d %s\n", rc, fwrel_error_last()->message);
    assert_int_equal(rc, FWREL_EUSAGE);
    assert_string_equal(fwrel_error_last()->message, msg);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_write_refusals(void **state)
{
    (void)state;
    fwrel_bundle_member m[6];
    size_t n = members(m);
    int before = testutil_count_entries(dir);
    m[n] = m[0];
    expect_write_refused(m, n + 1, MTIME, "release.json: duplicate member");
    m[n] = (fwrel_bundle_member){"notes.txt", (const uint8_t *)"x", 1};
    expect_write_refused(m, n + 1, MTIME, "notes.txt: not a bundle member");
    m[n] = (fwrel_bundle_member){"exports/../x", (const uint8_t *)"x", 1};
    expect_write_refused(m, n + 1, MTIME, "exports/../x: '..' component");
    m[n] = (fwrel_bundle_member){"approvals/0123456789abcdef0123456789ABCDEF01234567.asc",
                                 (const uint8_t *)"x", 1};
    expect_write_refused(m, n + 1, MTIME,
                         "approvals/0123456789abcdef0123456789ABCDEF01234567.asc: not a bundle "
                         "member");
    expect_write_refused(m, n - 1, MTIME, "SHA256SUMS: missing");
    expect_write_refused(m, n, -1, "bundle mtime -1 out of range");
    expect_write_refused(m, n, FWREL_BUNDLE_MTIME_MAX + 1, "bundle mtime 8589934592 out of range");
    size_t big = (size_t)FWREL_BUNDLE_IMAGE_MAX + 1;
    uint8_t *huge = calloc(1, big);
    assert_non_null(huge);
    m[2] = (fwrel_bundle_member){"firmware.enc", huge, big};
    expect_write_refused(m, n, MTIME, "firmware.enc: larger than 33554432 bytes");
    free(huge);
    assert_int_equal(testutil_count_entries(dir), before);
}

/* --- hostile tars, built with libarchive ----------------------------------------------- */

struct capture {
    uint8_t *p;
    size_t len, cap;
    int stop; /* set: refuse further writes (so a declared 10 GiB is never padded out) */
};

static la_ssize_t cap_write(struct archive *a, void *ud, const void *buf, size_t n)
{
    (void)a;
    struct capture *c = ud;
    if (c->stop)
        return -1;
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2;
        c->p = realloc(c->p, c->cap);
        assert_non_null(c->p);
    }
    memcpy(c->p + c->len, buf, n);
    c->len += n;
    return (la_ssize_t)n;
}

struct spec {
    const char *name;
    unsigned type; /* AE_IF* */
    const char *link;
    int hard;
    int64_t size; /* -1: len of data */
    const char *data;
};

/* A tar of the standard members followed by the specs; members named in skip are left out. */
static uint8_t *build(size_t *len, const struct spec *s, size_t ns, const char *skip)
{
    struct capture c = {0};
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_bytes_per_block(a, 0), ARCHIVE_OK);
    assert_int_equal(archive_write_open(a, &c, NULL, cap_write, NULL), ARCHIVE_OK);
    fwrel_bundle_member m[5];
    size_t n = members(m);
    for (size_t i = 0; i < n; i++) {
        if (skip && strcmp(skip, m[i].name) == 0)
            continue;
        archive_entry_clear(e);
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)m[i].len);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        assert_int_equal(archive_write_data(a, m[i].data, m[i].len), (la_ssize_t)m[i].len);
    }
    for (size_t i = 0; i < ns; i++) {
        archive_entry_clear(e);
        archive_entry_set_pathname(e, s[i].name);
        archive_entry_set_filetype(e, s[i].type);
        archive_entry_set_perm(e, 0644);
        if (s[i].link && s[i].hard)
            archive_entry_set_hardlink(e, s[i].link);
        else if (s[i].link)
            archive_entry_set_symlink(e, s[i].link);
        if (s[i].type == AE_IFCHR)
            archive_entry_set_rdev(e, 0x0103);
        size_t dl = s[i].data ? strlen(s[i].data) : 0;
        archive_entry_set_size(e, s[i].size >= 0 ? s[i].size : (la_int64_t)dl);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (s[i].size > (int64_t)dl) {
            /* Declared more than given: stop here, the reader must refuse from the header. */
            c.stop = 1;
            break;
        }
        if (dl)
            assert_int_equal(archive_write_data(a, s[i].data, dl), (la_ssize_t)dl);
    }
    if (!c.stop)
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    archive_entry_free(e);
    *len = c.len;
    return c.p;
}

static void expect_hostile(const struct spec *s, size_t ns, const char *skip, const char *msg)
{
    size_t len = 0;
    uint8_t *tar = build(&len, s, ns, skip);
    expect_read(tar, len, msg);
    free(tar);
}

static void test_hostile_tars(void **state)
{
    (void)state;
    /* The standard members alone read fine (the builder is sound). */
    size_t len = 0;
    uint8_t *tar = build(&len, NULL, 0, NULL);
    fwrel_bundle *b = NULL;
    assert_int_equal(fwrel_bundle_read_mem(&b, tar, len), 0);
    assert_int_equal(b->n, 5);
    assert_int_equal(fwrel_bundle_check_sums(b), 0);
    fwrel_bundle_free(b);

    const struct spec abs = {"/exports/a/b", AE_IFREG, NULL, 0, -1, "x"};
    expect_hostile(&abs, 1, NULL, "/exports/a/b: absolute path");
    const struct spec dotdot = {"../x", AE_IFREG, NULL, 0, -1, "x"};
    expect_hostile(&dotdot, 1, NULL, "../x: '..' component");
    const struct spec inner = {"exports/a/../../x", AE_IFREG, NULL, 0, -1, "x"};
    expect_hostile(&inner, 1, NULL, "exports/a/../../x: '..' component");
    const struct spec empty = {"exports//x", AE_IFREG, NULL, 0, -1, "x"};
    expect_hostile(&empty, 1, NULL, "exports//x: empty or '.' component");
    const struct spec dot = {"exports/./x", AE_IFREG, NULL, 0, -1, "x"};
    expect_hostile(&dot, 1, NULL, "exports/./x: empty or '.' component");
    const struct spec sym = {"exports/a/link", AE_IFLNK, "/etc/passwd", 0, 0, NULL};
    expect_hostile(&sym, 1, NULL, "exports/a/link: symbolic link");
    /* Hard links: only an export file to an artifact read before it, without data. */
    const struct spec hard_rel = {"exports/a/hard", AE_IFREG, "release.json", 1, 0, NULL};
    expect_hostile(&hard_rel, 1, NULL, "exports/a/hard: hard link");
    const struct spec hard_out = {"exports/a/hard", AE_IFREG, "/etc/passwd", 1, 0, NULL};
    expect_hostile(&hard_out, 1, NULL, "exports/a/hard: hard link");
    const struct spec hard_appr = {"approvals/0123456789ABCDEF0123456789ABCDEF01234567.asc",
                                   AE_IFREG,
                                   "firmware.enc",
                                   1,
                                   0,
                                   NULL};
    expect_hostile(&hard_appr, 1, NULL,
                   "approvals/0123456789ABCDEF0123456789ABCDEF01234567.asc: hard link");
    const struct spec hard_early[2] = {{"exports/a/hard", AE_IFREG, "firmware.enc", 1, 0, NULL},
                                       {"firmware.enc", AE_IFREG, NULL, 0, -1, "fw"}};
    expect_hostile(hard_early, 2, "firmware.enc",
                   "exports/a/hard: hard link to firmware.enc before it");
    {
        const struct spec hard = {"exports/a/hard", AE_IFREG, "firmware.enc", 1, 0, NULL};
        size_t hl = 0;
        uint8_t *ht = build(&hl, &hard, 1, NULL);
        fwrel_bundle *hb = NULL;
        assert_int_equal(fwrel_bundle_read_mem(&hb, ht, hl), 0);
        const fwrel_bundle_member *copy = fwrel_bundle_find(hb, "exports/a/hard");
        const fwrel_bundle_member *fw = fwrel_bundle_find(hb, "firmware.enc");
        assert_non_null(copy);
        assert_int_equal(copy->len, fw->len);
        assert_memory_equal(copy->data, fw->data, fw->len);
        fwrel_bundle_free(hb);
        free(ht);
    }
    const struct spec chr = {"exports/a/null", AE_IFCHR, NULL, 0, 0, NULL};
    expect_hostile(&chr, 1, NULL, "exports/a/null: device");
    const struct spec fifo = {"exports/a/fifo", AE_IFIFO, NULL, 0, 0, NULL};
    expect_hostile(&fifo, 1, NULL, "exports/a/fifo: fifo");
    const struct spec d = {"exports/a", AE_IFDIR, NULL, 0, 0, NULL};
    expect_hostile(&d, 1, NULL, "exports/a/: directory");
    const struct spec dup = {"release.json", AE_IFREG, NULL, 0, -1, "{}"};
    expect_hostile(&dup, 1, NULL, "release.json: duplicate member");
    const struct spec unknown = {"notes.txt", AE_IFREG, NULL, 0, -1, "hello"};
    expect_hostile(&unknown, 1, NULL, "notes.txt: not a bundle member");
    const struct spec deep = {"exports/a/b/c/d/e", AE_IFREG, NULL, 0, -1, "x"};
    expect_hostile(&deep, 1, NULL, "exports/a/b/c/d/e: not a bundle member");
    expect_hostile(NULL, 0, "manifest.fwm", "manifest.fwm: missing");
    /* Oversize from the declared size: nothing after the header exists to be read. */
    const struct spec over = {
        "exports/a/big.bin", AE_IFREG, NULL, 0, (int64_t)FWREL_BUNDLE_IMAGE_MAX + 1, "x"};
    expect_hostile(&over, 1, NULL,
                   "exports/a/big.bin: declared size 33554433 larger than 33554432 bytes");
    const struct spec sparse10g = {"exports/a/sparse.bin", AE_IFREG, NULL, 0,
                                   (int64_t)10 << 30,      "x"};
    expect_hostile(&sparse10g, 1, NULL,
                   "exports/a/sparse.bin: declared size 10737418240 larger than 33554432 bytes");
    const struct spec small_over = {"approvals/0123456789ABCDEF0123456789ABCDEF01234567.asc",
                                    AE_IFREG,
                                    NULL,
                                    0,
                                    (int64_t)FWREL_BUNDLE_SMALL_MAX + 1,
                                    "x"};
    expect_hostile(&small_over, 1, NULL,
                   "approvals/0123456789ABCDEF0123456789ABCDEF01234567.asc: declared size "
                   "1048577 larger than 1048576 bytes");

    /* Truncated: the written bundle cut inside firmware.enc's data. */
    free(tar);
    fwrel_bundle_member m[5];
    size_t nm = members(m);
    assert_int_equal(fwrel_bundle_write_mem(&tar, &len, m, nm, MTIME), 0);
    size_t off = 0;
    for (; off + 512 <= len; off += 512)
        if (strcmp((const char *)tar + off, "firmware.enc") == 0)
            break;
    assert_true(off + 512 < len);
    expect_read(tar, off + 512 + 5000, "firmware.enc: truncated or damaged");
    /* Cut inside a header block (manifest.fwm's, after firmware.enc: the artifacts first). */
    for (off = 0; off + 512 <= len; off += 512)
        if (strcmp((const char *)tar + off, "manifest.fwm") == 0)
            break;
    assert_true(off + 512 < len);
    expect_read(tar, off + 100, "damaged or truncated tar after firmware.enc");
    /* Cut at a member boundary, end marker gone: libarchive sees a shorter tar, and the last
     * member in bytewise order, release.json, is always the one missing. */
    for (off = 0; off + 512 <= len; off += 512)
        if (strcmp((const char *)tar + off, "release.json") == 0)
            break;
    assert_true(off + 512 < len);
    expect_read(tar, off, "release.json: missing");
    /* Bytes after the end-of-archive marker are not read: the same bundle. */
    uint8_t *longer = malloc(len + 1024);
    assert_non_null(longer);
    memcpy(longer, tar, len);
    memset(longer + len, 'G', 1024);
    assert_int_equal(fwrel_bundle_read_mem(&b, longer, len + 1024), 0);
    assert_int_equal(b->n, 5);
    fwrel_bundle_free(b);
    free(longer);
    /* Not a tar. */
    expect_read((const uint8_t *)"hello, this is not a tar archive at all", 39,
                "not a tar archive");
    uint8_t noise[4096];
    assert_int_equal(RAND_bytes(noise, sizeof(noise)), 1);
    noise[0] = 'X'; /* not a gzip/bzip2/xz magic either: those are not supported anyway */
    expect_read(noise, sizeof(noise), "not a tar archive");
    /* A gzip'd tar is not a bundle. */
    static const uint8_t gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    expect_read(gz, sizeof(gz), "not a tar archive");
    free(tar);

    /* A 10 GiB sparse file on disk is refused from its size, never read. */
    const char *big = tpath("sparse.tar");
    int fd = open(big, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)10 << 30), 0);
    close(fd);
    b = (fwrel_bundle *)1;
    assert_int_equal(fwrel_bundle_read(&b, big), FWREL_EFORMAT);
    assert_null(b);
    char want[128];
    snprintf(want, sizeof(want), "too large: 10737418240 bytes, at most %llu",
             (unsigned long long)FWREL_BUNDLE_FILE_MAX);
    assert_string_equal(fwrel_error_last()->message, want);
    unlink(big);
}

static void test_total_cap(void **state)
{
    (void)state;
    /* Four 32 MiB exports declared = 128 MiB + the standard members: over the total cap,
     * refused at the fourth header before its data. */
    struct capture c = {0};
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_bytes_per_block(a, 0), ARCHIVE_OK);
    assert_int_equal(archive_write_open(a, &c, NULL, cap_write, NULL), ARCHIVE_OK);
    uint8_t *chunk = calloc(1, (size_t)FWREL_BUNDLE_IMAGE_MAX);
    assert_non_null(chunk);
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "exports/x/%d.bin", i);
        archive_entry_clear(e);
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)FWREL_BUNDLE_IMAGE_MAX);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (i == 3)
            break;
        assert_int_equal(archive_write_data(a, chunk, (size_t)FWREL_BUNDLE_IMAGE_MAX),
                         (la_ssize_t)FWREL_BUNDLE_IMAGE_MAX);
    }
    free(chunk);
    c.stop = 1;
    archive_write_free(a);
    archive_entry_free(e);
    /* The standard members in front, so that the fourth export passes the cap. */
    size_t slen = 0;
    uint8_t *std = build(&slen, NULL, 0, NULL);
    /* std ends with the end-of-archive blocks (1024 bytes of zeros, block-padded to 512). */
    size_t body = slen;
    while (body >= 512 && std[body - 1] == 0) {
        int zero = 1;
        for (size_t k = body - 512; k < body; k++)
            if (std[k]) {
                zero = 0;
                break;
            }
        if (!zero)
            break;
        body -= 512;
    }
    uint8_t *all = malloc(body + c.len);
    assert_non_null(all);
    memcpy(all, std, body);
    memcpy(all + body, c.p, c.len);
    expect_read(all, body + c.len, "exports/x/3.bin: members larger than 134217728 bytes in all");
    free(all);
    free(std);
    free(c.p);
}

/* A pax sparse entry (GNU.sparse 1.0, as libarchive writes it): refused. */
static void test_sparse_entry(void **state)
{
    (void)state;
    struct capture c = {0};
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    assert_int_equal(archive_write_set_format_pax(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open(a, &c, NULL, cap_write, NULL), ARCHIVE_OK);
    archive_entry_set_pathname(e, "exports/a/holes.bin");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 8192);
    archive_entry_sparse_add_entry(e, 4096, 512);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    uint8_t data[512];
    memset(data, 'D', sizeof(data));
    assert_int_equal(archive_write_data(a, data, sizeof(data)), (la_ssize_t)sizeof(data));
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    archive_entry_free(e);
    expect_read(c.p, c.len, "exports/a/holes.bin: sparse member");
    free(c.p);
}

static void test_check_sums(void **state)
{
    (void)state;
    fwrel_bundle_member m[5];
    size_t n = members(m);
    static uint8_t other[sizeof(firmware)];
    memcpy(other, firmware, sizeof(firmware));
    other[5000] ^= 1;
    /* A changed member after the sums were made. */
    m[2].data = other;
    uint8_t *tar = NULL;
    size_t len = 0;
    fwrel_bundle *b = NULL;
    assert_int_equal(fwrel_bundle_write_mem(&tar, &len, m, n, MTIME), 0);
    assert_int_equal(fwrel_bundle_read_mem(&b, tar, len), 0);
    assert_int_equal(fwrel_bundle_check_sums(b), FWREL_EVERIFY);
    assert_string_equal(fwrel_error_last()->message, "SHA256SUMS: firmware.enc: digest mismatch");
    fwrel_bundle_free(b);
    free(tar);
    m[2].data = firmware;

    /* Hand-edited SHA256SUMS texts. */
    char *lines[4];
    char *copy = strdup(sums);
    char *save = NULL;
    size_t nl = 0;
    for (char *t = strtok_r(copy, "\n", &save); t && nl < 4; t = strtok_r(NULL, "\n", &save))
        lines[nl++] = t;
    assert_int_equal(nl, 4);
    struct {
        char text[1024];
        int code;
        const char *msg;
    } v[7];
    snprintf(v[0].text, 1024, "%s\n%s\n%s\n", lines[0], lines[1], lines[2]);
    v[0].code = FWREL_EVERIFY, v[0].msg = "SHA256SUMS: release.json: not listed";
    snprintf(v[1].text, 1024, "%s\n%s\n%s\n", lines[1], lines[2], lines[3]);
    v[1].code = FWREL_EVERIFY, v[1].msg = "SHA256SUMS: exports/ota/app.json: not listed";
    snprintf(v[2].text, 1024, "%s\n%s\n%s\n%s\n", lines[1], lines[0], lines[2], lines[3]);
    v[2].code = FWREL_EFORMAT,
    v[2].msg = "SHA256SUMS line 2: exports/ota/app.json not after firmware.enc (unsorted or "
               "repeated)";
    snprintf(v[3].text, 1024, "%s\n%s\n%s\n%s", lines[0], lines[1], lines[2], lines[3]);
    v[3].code = FWREL_EFORMAT, v[3].msg = "SHA256SUMS line 4: no newline";
    snprintf(v[4].text, 1024, "%s\n%s\n%s\n%s\n%s\n", lines[0], lines[1], lines[1], lines[2],
             lines[3]);
    v[4].code = FWREL_EFORMAT,
    v[4].msg = "SHA256SUMS line 3: firmware.enc not after firmware.enc (unsorted or repeated)";
    snprintf(v[5].text, 1024, "%s *%s\n", "00", "x");
    v[5].code = FWREL_EFORMAT, v[5].msg = "SHA256SUMS line 1: not '<sha256>  <name>'";
    snprintf(v[6].text, 1024, "%s\n%s\n%s\n%s\n", lines[0], lines[1], lines[2], lines[3]);
    v[6].text[3] = 'G';
    v[6].code = FWREL_EFORMAT, v[6].msg = "SHA256SUMS line 1: not a lower-case SHA-256";
    for (size_t i = 0; i < 7; i++) {
        m[4].data = (const uint8_t *)v[i].text;
        m[4].len = strlen(v[i].text);
        assert_int_equal(fwrel_bundle_write_mem(&tar, &len, m, n, MTIME), 0);
        assert_int_equal(fwrel_bundle_read_mem(&b, tar, len), 0);
        int rc = fwrel_bundle_check_sums(b);
        if (rc != v[i].code || strcmp(fwrel_error_last()->message, v[i].msg) != 0)
            fprintf(stderr, "case %zu: %d %s\n", i, rc, fwrel_error_last()->message);
        assert_int_equal(rc, v[i].code);
        assert_string_equal(fwrel_error_last()->message, v[i].msg);
        fwrel_bundle_free(b);
        free(tar);
    }
    free(copy);
}

static void test_add_approval(void **state)
{
    (void)state;
    fwrel_bundle_member m[5];
    size_t n = members(m);
    const char *path = tpath("approve.tar");
    assert_int_equal(fwrel_bundle_write(path, m, n, MTIME, 0), 0);
    const char *fpr = "0123456789ABCDEF0123456789ABCDEF01234567";
    const char *sig = "-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
    assert_int_equal(fwrel_bundle_add_approval(path, fpr, (const uint8_t *)sig, strlen(sig)), 0);
    fwrel_bundle *b = NULL;
    assert_int_equal(fwrel_bundle_read(&b, path), 0);
    assert_int_equal(b->n, 6);
    assert_int_equal(b->mtime, MTIME);
    const fwrel_bundle_member *a =
        fwrel_bundle_find(b, "approvals/0123456789ABCDEF0123456789ABCDEF01234567.asc");
    assert_non_null(a);
    assert_int_equal(a->len, strlen(sig));
    assert_memory_equal(a->data, sig, a->len);
    assert_int_equal(fwrel_bundle_check_sums(b), 0); /* approvals are outside SHA256SUMS */
    fwrel_bundle_free(b);

    /* The same bytes as a bundle written with the approval at once. */
    fwrel_bundle_member m6[6];
    memcpy(m6, m, sizeof(m));
    m6[5] = (fwrel_bundle_member){"approvals/0123456789ABCDEF0123456789ABCDEF01234567.asc",
                                  (const uint8_t *)sig, strlen(sig)};
    uint8_t *tar = NULL;
    size_t len = 0, flen = 0;
    assert_int_equal(fwrel_bundle_write_mem(&tar, &len, m6, 6, MTIME), 0);
    uint8_t *file = testutil_read(path, &flen);
    assert_int_equal(flen, len);
    assert_memory_equal(file, tar, len);
    free(tar);

    /* Twice: refused, file unchanged. */
    assert_int_equal(fwrel_bundle_add_approval(path, fpr, (const uint8_t *)"other", 5),
                     FWREL_EVERIFY);
    assert_string_equal(fwrel_error_last()->message,
                        "approvals/0123456789ABCDEF0123456789ABCDEF01234567.asc: already in the "
                        "bundle");
    assert_int_equal(fwrel_bundle_add_approval(path, "0123456789abcdef0123456789ABCDEF01234567",
                                               (const uint8_t *)"x", 1),
                     FWREL_EUSAGE);
    assert_string_equal(fwrel_error_last()->message,
                        "approval: fingerprint is not 40 upper-case hex");
    uint8_t *again = testutil_read(path, &len);
    assert_int_equal(len, flen);
    assert_memory_equal(again, file, len);
    free(again);
    free(file);
}

static int setup(void **state)
{
    (void)state;
    dir = testutil_tmpdir();
    for (size_t i = 0; i < sizeof(firmware); i++)
        firmware[i] = (uint8_t)(i * 7 + (i >> 8));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testutil_rmtree(dir);
    for (size_t i = 0; i < npaths; i++)
        free(paths[i]);
    free(sums);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sums_text),    cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_write_refusals),
        cmocka_unit_test(test_hostile_tars), cmocka_unit_test(test_total_cap),
        cmocka_unit_test(test_sparse_entry), cmocka_unit_test(test_check_sums),
        cmocka_unit_test(test_add_approval),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
