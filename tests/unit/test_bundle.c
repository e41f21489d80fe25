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

#include "fixture.h"
#include "fwrel/bundle.h"
#include "fwrel/io.h"
#include "testutil.h"

static const char *dir;
/* A path in the test directory, no file there. */
static const char *tpath(const char *name)
{
    return fixture_path(dir, name, 1);
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

/* --- hostile tars ---------------------------------------------------------------------- */

/* A header in the writer's form (bundle.c, docs/bundle.md "Reading"), built by hand here so that
 * each hostile tar differs from a good one in exactly what the test changes. */
static void ustar(uint8_t h[512], const char *name, char type, const char *link, uint64_t size)
{
    char num[16];
    memset(h, 0, 512);
    memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
    memcpy(h + 100, "000644 ", 8);
    memcpy(h + 108, "000000 ", 8);
    memcpy(h + 116, "000000 ", 8);
    snprintf(num, sizeof(num), "%011llo ", (unsigned long long)size);
    memcpy(h + 124, num, 12);
    snprintf(num, sizeof(num), "%011llo ", (unsigned long long)MTIME);
    memcpy(h + 136, num, 12);
    h[156] = (uint8_t)type;
    if (link)
        memcpy(h + 157, link, strlen(link));
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memcpy(h + 329, "000000 ", 8);
    memcpy(h + 337, "000000 ", 8);
}

/* Set the checksum of a header (after an edit). */
static void fix_sum(uint8_t *h)
{
    unsigned sum = 0;
    char ck[8];
    memset(h + 148, ' ', 8);
    for (size_t i = 0; i < 512; i++)
        sum += h[i];
    snprintf(ck, sizeof(ck), "%06o", sum);
    memcpy(h + 148, ck, 7);
}

struct spec {
    const char *name;
    char type; /* ustar typeflag */
    const char *link;
    int64_t size;       /* -1: the data's length */
    const char *data;   /* NULL: none */
    size_t dlen;        /* 0: strlen(data) */
    const char *before; /* put before this standard member (NULL: in the writer's order) */
};

static int rank(const char *n)
{
    return strcmp(n, "firmware.enc") == 0 ? 0 : strcmp(n, "manifest.fwm") == 0 ? 1 : 2;
}

static int writer_before(const char *a, const char *b)
{
    return rank(a) != rank(b) ? rank(a) < rank(b) : strcmp(a, b) < 0;
}

struct capture {
    uint8_t *p;
    size_t len, cap;
};

static void put(struct capture *c, const void *p, size_t n)
{
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2;
        c->p = realloc(c->p, c->cap);
        assert_non_null(c->p);
    }
    memcpy(c->p + c->len, p, n);
    c->len += n;
}

static void put_entry(struct capture *c, const struct spec *s, int *stop)
{
    uint8_t h[512];
    size_t dl = s->data ? (s->dlen ? s->dlen : strlen(s->data)) : 0;
    uint64_t size = s->size >= 0 ? (uint64_t)s->size : dl;
    ustar(h, s->name, s->type, s->link, size);
    fix_sum(h);
    put(c, h, 512);
    if (size > dl) {
        /* Declared more than given: stop here, the reader must refuse from the header. */
        *stop = 1;
        return;
    }
    if (dl) {
        static const uint8_t zero[512];
        put(c, s->data, dl);
        put(c, zero, (512 - dl % 512) % 512);
    }
}

/* A tar in the writer's form of the standard members and the specs (in the writer's order, or
 * where they say); members named in skip are left out. */
static uint8_t *build(size_t *len, const struct spec *s, size_t ns, const char *skip)
{
    struct capture c = {0};
    fwrel_bundle_member m[5];
    struct spec all[5 + 16];
    size_t n = members(m), na = 0;
    int stop = 0;
    assert_true(ns <= 16);
    for (size_t i = 0; i < n; i++)
        if (!skip || strcmp(skip, m[i].name) != 0)
            all[na++] =
                (struct spec){m[i].name, '0', NULL, -1, (const char *)m[i].data, m[i].len, NULL};
    /* The standard members in the writer's order (insertion sort), then each spec placed. */
    for (size_t i = 1; i < na; i++)
        for (size_t k = i; k > 0 && writer_before(all[k].name, all[k - 1].name); k--) {
            struct spec t = all[k];
            all[k] = all[k - 1];
            all[k - 1] = t;
        }
    for (size_t j = 0; j < ns; j++) {
        size_t at = 0;
        if (s[j].before)
            while (at < na && strcmp(all[at].name, s[j].before) != 0)
                at++;
        else
            while (at < na && !writer_before(s[j].name, all[at].name))
                at++;
        memmove(&all[at + 1], &all[at], (na - at) * sizeof(all[0]));
        all[at] = s[j];
        na++;
    }
    for (size_t i = 0; i < na && !stop; i++)
        put_entry(&c, &all[i], &stop);
    if (!stop) {
        static const uint8_t zero[10240];
        put(&c, zero, 1024);
        put(&c, zero, (10240 - c.len % 10240) % 10240);
    }
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

/* The offset of the header of member name in tar. */
static size_t header_of(const uint8_t *tar, size_t len, const char *name)
{
    size_t off = 0;
    for (; off + 512 <= len; off += 512)
        if (strcmp((const char *)tar + off, name) == 0 && memcmp(tar + off + 257, "ustar", 5) == 0)
            return off;
    fail_msg("no header %s", name);
    return 0;
}

/* A copy of tar with n bytes inserted at off. */
static uint8_t *inserted(size_t *olen, const uint8_t *tar, size_t len, size_t off, const void *p,
                         size_t n)
{
    uint8_t *t = malloc(len + n);
    assert_non_null(t);
    memcpy(t, tar, off);
    memcpy(t + off, p, n);
    memcpy(t + off + n, tar + off, len - off);
    *olen = len + n;
    return t;
}

static void test_hostile_tars(void **state)
{
    (void)state;
    /* The standard members alone read fine (the builder makes the writer's bytes). */
    size_t len = 0, wlen = 0;
    uint8_t *tar = build(&len, NULL, 0, NULL), *w = NULL;
    fwrel_bundle_member sm[5];
    size_t nsm = members(sm);
    assert_int_equal(fwrel_bundle_write_mem(&w, &wlen, sm, nsm, MTIME), 0);
    assert_int_equal(len, wlen);
    assert_memory_equal(tar, w, len);
    free(w);
    fwrel_bundle *b = NULL;
    assert_int_equal(fwrel_bundle_read_mem(&b, tar, len), 0);
    assert_int_equal(b->n, 5);
    assert_int_equal(fwrel_bundle_check_sums(b), 0);
    fwrel_bundle_free(b);

    const struct spec abs = {"/exports/a/b", '0', NULL, -1, "x", 0, NULL};
    expect_hostile(&abs, 1, NULL, "/exports/a/b: absolute path");
    const struct spec dotdot = {"../x", '0', NULL, -1, "x", 0, NULL};
    expect_hostile(&dotdot, 1, NULL, "../x: '..' component");
    const struct spec inner = {"exports/a/../../x", '0', NULL, -1, "x", 0, NULL};
    expect_hostile(&inner, 1, NULL, "exports/a/../../x: '..' component");
    const struct spec empty = {"exports//x", '0', NULL, -1, "x", 0, NULL};
    expect_hostile(&empty, 1, NULL, "exports//x: empty or '.' component");
    const struct spec dot = {"exports/./x", '0', NULL, -1, "x", 0, NULL};
    expect_hostile(&dot, 1, NULL, "exports/./x: empty or '.' component");
    const struct spec sym = {"exports/a/link", '2', "/etc/passwd", 0, NULL, 0, NULL};
    expect_hostile(&sym, 1, NULL, "exports/a/link: symbolic link");
    /* Hard links: only an export file to an artifact read before it, without data. */
    const struct spec hard_rel = {"exports/a/hard", '1', "release.json", 0, NULL, 0, NULL};
    expect_hostile(&hard_rel, 1, NULL, "exports/a/hard: hard link");
    const struct spec hard_out = {"exports/a/hard", '1', "../../etc/passwd", 0, NULL, 0, NULL};
    expect_hostile(&hard_out, 1, NULL, "exports/a/hard: hard link");
    const struct spec hard_appr = {"approvals/0123456789ABCDEF0123456789ABCDEF01234567.asc",
                                   '1',
                                   "firmware.enc",
                                   0,
                                   NULL,
                                   0,
                                   NULL};
    expect_hostile(&hard_appr, 1, NULL,
                   "approvals/0123456789ABCDEF0123456789ABCDEF01234567.asc: hard link");
    const struct spec hard_early = {"exports/a/hard", '1', "manifest.fwm", 0, NULL, 0,
                                    "manifest.fwm"};
    expect_hostile(&hard_early, 1, NULL, "exports/a/hard: hard link to manifest.fwm before it");
    const struct spec hard_data = {"exports/a/hard", '1', "firmware.enc", 2, "xx", 0, NULL};
    expect_hostile(&hard_data, 1, NULL, "exports/a/hard: hard link with data");
    {
        const struct spec hard = {"exports/a/hard", '1', "firmware.enc", 0, NULL, 0, NULL};
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
        /* The same copy stored with its data: not what the writer makes (it links). */
        const struct spec copydata = {"exports/a/hard", '0', NULL, -1, (const char *)firmware,
                                      sizeof(firmware), NULL};
        expect_hostile(&copydata, 1, NULL,
                       "not the tar the writer makes of these members (byte 103041 differs): "
                       "refused");
    }
    const struct spec chr = {"exports/a/null", '3', NULL, 0, NULL, 0, NULL};
    expect_hostile(&chr, 1, NULL, "exports/a/null: device");
    const struct spec fifo = {"exports/a/fifo", '6', NULL, 0, NULL, 0, NULL};
    expect_hostile(&fifo, 1, NULL, "exports/a/fifo: fifo");
    const struct spec d = {"exports/a/", '5', NULL, 0, NULL, 0, NULL};
    expect_hostile(&d, 1, NULL, "exports/a/: directory");
    const struct spec dup = {"release.json", '0', NULL, -1, "{}", 0, NULL};
    expect_hostile(&dup, 1, NULL, "release.json: duplicate member");
    const struct spec unknown = {"notes.txt", '0', NULL, -1, "hello", 0, NULL};
    expect_hostile(&unknown, 1, NULL, "notes.txt: not a bundle member");
    const struct spec deep = {"exports/a/b/c/d/e", '0', NULL, -1, "x", 0, NULL};
    expect_hostile(&deep, 1, NULL, "exports/a/b/c/d/e: not a bundle member");
    expect_hostile(NULL, 0, "manifest.fwm", "manifest.fwm: missing");
    const struct spec late = {"exports/a/x", '0', NULL, -1, "x", 0, "SHA256SUMS"};
    expect_hostile(&late, 1, NULL,
                   "SHA256SUMS: after exports/a/x, not in the writer's order (firmware.enc, "
                   "manifest.fwm, then the other names bytewise)");
    /* Header forms other readers apply and the writer never makes. A pax global header setting
     * path (Python's tarfile and GNU tar apply it to every member: ../../pwned), a pax extended
     * header, a GNU long name (with a pax path beside it, read differently by each reader). */
    const struct spec global = {"pax_global_header",     'g', NULL,          -1,
                                "24 path=../../pwned\n", 0,   "firmware.enc"};
    expect_hostile(&global, 1, NULL,
                   "pax_global_header: pax global header (typeflag 'g'), which other readers "
                   "apply to every member");
    const struct spec pax = {"PaxHeader/release.json", 'x', NULL,          -1,
                             "24 path=../../pwned\n",  0,   "release.json"};
    expect_hostile(&pax, 1, NULL, "PaxHeader/release.json: pax extended header (typeflag 'x')");
    const struct spec gnu[2] = {
        {"././@LongLink", 'L', NULL, -1, "../../pwned", 12, "release.json"},
        {"PaxHeader/release.json", 'x', NULL, -1, "21 path=release.json\n", 0, "release.json"}};
    expect_hostile(gnu, 2, NULL, "././@LongLink: GNU long name header (typeflag 'L')");
    const struct spec gnusparse = {"exports/a/holes.bin", 'S', NULL, -1, "x", 0, NULL};
    expect_hostile(&gnusparse, 1, NULL, "exports/a/holes.bin: sparse member");
    const struct spec oldreg = {"exports/a/x", '\0', NULL, -1, "x", 0, NULL};
    expect_hostile(&oldreg, 1, NULL, "exports/a/x: old-style regular file (typeflag NUL)");
    /* Oversize from the declared size: nothing after the header exists to be read. */
    const struct spec over = {
        "exports/a/big.bin", '0', NULL, (int64_t)FWREL_BUNDLE_IMAGE_MAX + 1, "x", 0, NULL};
    expect_hostile(&over, 1, NULL,
                   "exports/a/big.bin: declared size 33554433 larger than 33554432 bytes");
    const struct spec sparse10g = {
        "exports/a/sparse.bin", '0', NULL, (int64_t)10 << 30, "x", 0, NULL};
    expect_hostile(&sparse10g, 1, NULL,
                   "exports/a/sparse.bin: declared size 10737418240 larger than 33554432 bytes");
    const struct spec small_over = {"approvals/0123456789ABCDEF0123456789ABCDEF01234567.asc",
                                    '0',
                                    NULL,
                                    (int64_t)FWREL_BUNDLE_SMALL_MAX + 1,
                                    "x",
                                    0,
                                    NULL};
    expect_hostile(&small_over, 1, NULL,
                   "approvals/0123456789ABCDEF0123456789ABCDEF01234567.asc: declared size "
                   "1048577 larger than 1048576 bytes");

    /* Byte edits of a good tar, each a header field the writer does not make. */
    size_t off = header_of(tar, len, "manifest.fwm");
    uint8_t *t = malloc(len);
    assert_non_null(t);
#define EDIT(field_off, bytes, n, fix, msg)                                                        \
    do {                                                                                           \
        memcpy(t, tar, len);                                                                       \
        memcpy(t + off + (field_off), bytes, n);                                                   \
        if (fix)                                                                                   \
            fix_sum(t + off);                                                                      \
        expect_read(t, len, msg);                                                                  \
    } while (0)
    EDIT(100, "000755 ", 7, 0, "manifest.fwm: bad header checksum (tar header at byte 100864)");
    EDIT(100, "000755 ", 7, 1,
         "manifest.fwm: tar header field mode is not the writer's (byte 103)");
    EDIT(100, "0000644", 8, 1,
         "manifest.fwm: tar header field mode is not the writer's (byte 103)");
    EDIT(108, "001750 ", 7, 1, "manifest.fwm: tar header field uid is not the writer's (byte 110)");
    EDIT(136, "00000000001 ", 12, 1,
         "manifest.fwm: tar header field mtime is not the writer's (byte 136)");
    EDIT(265, "root", 4, 1, "manifest.fwm: tar header field uname is not the writer's (byte 265)");
    EDIT(257, "ustar  ", 8, 1,
         "manifest.fwm: not a POSIX ustar header (magic and version are not \"ustar\\0\" \"00\")");
    EDIT(345, "x", 1, 1,
         "manifest.fwm: name not in the name field alone (longer than 99 bytes, or a ustar "
         "prefix)");
    EDIT(13, "x", 1, 1, "manifest.fwm: bytes after the name's NUL");
    EDIT(500, "x", 1, 1, "manifest.fwm: tar header field padding is not the writer's (byte 500)");
    EDIT(157, "firmware.enc", 12, 1,
         "manifest.fwm: tar header field linkname is not the writer's (byte 157)");
    /* A size in base-256 (GNU's binary form, same value): refused by form. */
    {
        uint8_t b256[12] = {0x80};
        size_t ms = strlen(manifest);
        b256[11] = (uint8_t)ms;
        EDIT(124, b256, 12, 1,
             "manifest.fwm: size in base-256 (binary) form, not the writer's octal");
        EDIT(124, "00000000054\0", 12, 1,
             "manifest.fwm: tar header field size is not the writer's (byte 135)");
    }
    /* Data padding that is not zeros. */
    memcpy(t, tar, len);
    t[off + 512 + strlen(manifest)] = 'P';
    expect_read(t, len, "manifest.fwm: data padding is not zeros");
#undef EDIT
    free(t);

    /* Truncated: the written bundle cut inside firmware.enc's data. */
    off = header_of(tar, len, "firmware.enc");
    expect_read(tar, off + 512 + 5000, "firmware.enc: truncated");
    /* Cut inside a header block (manifest.fwm's, after firmware.enc: the artifacts first). */
    off = header_of(tar, len, "manifest.fwm");
    expect_read(tar, off + 100,
                "damaged or truncated tar after firmware.enc: no end-of-archive marker");
    /* Cut at a member boundary, end marker gone. */
    off = header_of(tar, len, "release.json");
    expect_read(tar, off,
                "damaged or truncated tar after exports/ota/app.json: no end-of-archive "
                "marker");
    /* One zero block, then a member. */
    {
        static const uint8_t zero[512];
        size_t zl = 0;
        uint8_t *z = inserted(&zl, tar, len, off, zero, 512);
        expect_read(z, len,
                    "one zero block after exports/ota/app.json, not the two of the "
                    "end-of-archive marker");
        free(z);
    }
    /* Trailing data after the end-of-archive marker: another member (which other readers could
     * take), or bytes, or a record more of zeros. */
    {
        size_t end = 0;
        while (end + 512 <= len && tar[end] != 0)
            end = header_of(tar, len, (const char *)tar + end) + 512 +
                  (strtoull((const char *)tar + end + 124, NULL, 8) + 511) / 512 * 512;
        char trailing[160];
        snprintf(trailing, sizeof(trailing),
                 "trailing data after the end-of-archive marker at byte %zu (the writer pads "
                 "with zeros to byte %zu)",
                 end + 1024, len);
        uint8_t h[512];
        ustar(h, "exports/a/late", '0', NULL, 0);
        fix_sum(h);
        size_t ll = 0;
        uint8_t *l = inserted(&ll, tar, len, end + 1024, h, 512);
        expect_read(l, len, trailing);
        free(l);
        uint8_t more[10240];
        memset(more, 'G', sizeof(more));
        l = inserted(&ll, tar, len, len, more, 1024);
        expect_read(l, ll, trailing);
        free(l);
        memset(more, 0, sizeof(more));
        l = inserted(&ll, tar, len, len, more, sizeof(more));
        expect_read(l, ll, trailing);
        free(l);
    }
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
    char *chunk = calloc(1, (size_t)FWREL_BUNDLE_IMAGE_MAX);
    assert_non_null(chunk);
    struct spec s[4];
    for (int i = 0; i < 4; i++)
        s[i] = (struct spec){NULL,  '0',
                             NULL,  (int64_t)FWREL_BUNDLE_IMAGE_MAX,
                             chunk, i < 3 ? (size_t)FWREL_BUNDLE_IMAGE_MAX : 1,
                             NULL};
    s[0].name = "exports/x/0.bin";
    s[1].name = "exports/x/1.bin";
    s[2].name = "exports/x/2.bin";
    s[3].name = "exports/x/3.bin";
    expect_hostile(s, 4, NULL, "exports/x/3.bin: members larger than 134217728 bytes in all");
    free(chunk);
}

static la_ssize_t cap_write(struct archive *a, void *ud, const void *buf, size_t n)
{
    (void)a;
    put(ud, buf, n);
    return (la_ssize_t)n;
}

/* A pax sparse entry (GNU.sparse 1.0, as libarchive writes it): refused at its pax header. */
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
    expect_read(c.p, c.len, "exports/a/PaxHeader/holes.bin: pax extended header (typeflag 'x')");
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

/* Read back the file dir/name; its size in *len. */
static uint8_t *slurp(const char *d, const char *name, size_t *len)
{
    char p[4096];
    uint8_t *data = NULL;
    snprintf(p, sizeof(p), "%s/%s", d, name);
    assert_int_equal(fwrel_io_read_small(&data, len, p, (size_t)1 << 20), 0);
    return data;
}

/* fwrel_bundle_extract(): every member or a directory of them, a hard link as a file; an
 * existing file, a missing member, a symbolic link under the directory refused, nothing
 * written. */
static void test_extract(void **state)
{
    (void)state;
    fwrel_bundle_member m[6];
    size_t n = members(m), len;
    uint8_t *tar = NULL, *got;
    fwrel_bundle *b = NULL;
    struct stat st;
    char p[4096], out[4096];
    m[n++] = (fwrel_bundle_member){"exports/ota/app.bin", firmware, sizeof(firmware)};
    assert_int_equal(fwrel_bundle_write_mem(&tar, &len, m, n, MTIME), 0);
    assert_int_equal(fwrel_bundle_read_mem(&b, tar, len), 0);

    const char *all = tpath("x-all");
    assert_int_equal(fwrel_bundle_extract(b, all, NULL, 0), 0);
    for (size_t i = 0; i < n; i++) {
        got = slurp(all, m[i].name, &len);
        assert_int_equal(len, m[i].len);
        assert_memory_equal(got, m[i].data, len);
        free(got);
    }
    snprintf(p, sizeof(p), "%s/exports/ota/app.bin", all);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISREG(st.st_mode) && st.st_nlink == 1);
    /* Again: every file exists; none is replaced. */
    assert_int_equal(fwrel_bundle_extract(b, all, NULL, 0), FWREL_EIO);
    snprintf(p, sizeof(p), "%s/SHA256SUMS", all);
    assert_string_equal(fwrel_error_last()->path, p);
    assert_string_equal(fwrel_error_last()->message, "exists");

    /* A directory of members. */
    const char *one = tpath("x-one");
    const char *sel[] = {"exports/ota/"};
    assert_int_equal(fwrel_bundle_extract(b, one, sel, 1), 0);
    snprintf(p, sizeof(p), "%s/release.json", one);
    assert_int_equal(lstat(p, &st), -1);
    got = slurp(one, "exports/ota/app.json", &len);
    assert_memory_equal(got, export_json, strlen(export_json));
    free(got);

    /* A member not in the bundle, a name that is not a member's: nothing made. */
    const char *none = tpath("x-none");
    const char *missing[] = {"release.json", "exports/ot"}, *dotdot[] = {"../release.json"};
    assert_int_equal(fwrel_bundle_extract(b, none, missing, 2), FWREL_EUSAGE);
    assert_string_equal(fwrel_error_last()->message, "exports/ot: not in the bundle");
    assert_int_equal(fwrel_bundle_extract(b, none, dotdot, 1), FWREL_EUSAGE);
    assert_int_equal(lstat(none, &st), -1);

    /* A symbolic link under the directory, to outside it: refused, nothing written anywhere. */
    const char *sl = tpath("x-link"), *outside = tpath("x-outside");
    assert_int_equal(mkdir(sl, 0700), 0);
    assert_int_equal(mkdir(outside, 0700), 0);
    snprintf(p, sizeof(p), "%s/exports", sl);
    assert_int_equal(symlink(outside, p), 0);
    assert_int_equal(fwrel_bundle_extract(b, sl, NULL, 0), FWREL_EIO);
    assert_string_equal(fwrel_error_last()->path, p);
    assert_int_equal(rmdir(outside), 0); /* still empty */
    snprintf(out, sizeof(out), "%s/release.json", sl);
    assert_int_equal(lstat(out, &st), -1);
    fwrel_bundle_free(b);
    free(tar);
}

static int setup(void **state)
{
    (void)state;
    dir = fixture_tmpdir();
    for (size_t i = 0; i < sizeof(firmware); i++)
        firmware[i] = (uint8_t)(i * 7 + (i >> 8));
    return 0;
}

static int teardown(void **state)
{
    free(sums);
    return fixture_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sums_text),    cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_write_refusals),
        cmocka_unit_test(test_hostile_tars), cmocka_unit_test(test_total_cap),
        cmocka_unit_test(test_sparse_entry), cmocka_unit_test(test_check_sums),
        cmocka_unit_test(test_add_approval), cmocka_unit_test(test_extract),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
