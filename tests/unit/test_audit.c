/* test_audit.c - the hash-chained audit log: chain round trip, each kind of tampering named by
 * its line, truncation against an expected head, a torn last line found and recovered, entries
 * refused by the schema, two processes appending at once; the summary of a log, and a committed
 * copy checked against the live log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "fixture.h"
#include "fwrel/audit.h"
#include "testutil.h"

static const char *dir;
/* A path in the test directory, no file there. */
static const char *tpath(const char *name)
{
    return fixture_path(dir, name, 1);
}

static char entry_buf[1024];

static const char *entry(const char *event, const char *user)
{
    snprintf(entry_buf, sizeof(entry_buf),
             "{\"event\":\"%s\",\"who\":{\"user\":\"%s\",\"fingerprint\":"
             "\"0123456789ABCDEF0123456789ABCDEF01234567\"},"
             "\"inputs\":[{\"name\":\"app.bin\",\"sha256\":"
             "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"size\":0}],"
             "\"outputs\":[],\"result\":\"ok\"}",
             event, user);
    return entry_buf;
}

static void append_ok(const char *log, const char *event, const char *user, char *head)
{
    const char *e = entry(event, user);
    int rc = fwrel_audit_append(log, e, strlen(e), head);
    if (rc)
        fprintf(stderr, "append: %s\n", fwrel_error_last()->message);
    assert_int_equal(rc, 0);
}

static void hex_sha256(char out[65], const void *p, size_t n)
{
    uint8_t d[32];
    unsigned int dl = 0;
    assert_int_equal(EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL), 1);
    for (size_t i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The log's lines (newlines kept), at most 16. */
struct lines {
    char *text;
    size_t len;
    char *line[16];
    size_t llen[16];
    size_t n;
};

static void split(struct lines *l, const char *log)
{
    memset(l, 0, sizeof(*l));
    l->text = (char *)testutil_read(log, &l->len);
    assert_non_null(l->text);
    for (size_t i = 0; i < l->len;) {
        size_t j = i;
        while (j < l->len && l->text[j] != '\n')
            j++;
        assert_true(l->n < 16);
        l->line[l->n] = l->text + i;
        l->llen[l->n++] = (j < l->len ? j + 1 : j) - i;
        i = j + 1;
    }
}

static void write_lines(const char *log, struct lines *l, const int *order, size_t n)
{
    FILE *f = fopen(log, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fwrite(l->line[order[i]], 1, l->llen[order[i]], f), l->llen[order[i]]);
    assert_int_equal(fclose(f), 0);
}

static void expect_verify(const char *log, const char *head, uint64_t count, int code,
                          const char *msg)
{
    uint64_t got = 99;
    int rc = fwrel_audit_verify(log, head, count, &got, NULL);
    if (rc != code || strcmp(fwrel_error_last()->message, msg) != 0)
        fprintf(stderr, "verify: %d %s\n", rc, fwrel_error_last()->message);
    assert_int_equal(rc, code);
    assert_string_equal(fwrel_error_last()->message, msg);
    assert_int_equal(got, 99); /* nothing reported on failure */
}

/* A log of four entries; heads[i] is the head after entry i+1. */
static const char *make_log(const char *name, char heads[4][65])
{
    const char *log = tpath(name);
    append_ok(log, "keygen", "alice", heads[0]);
    append_ok(log, "sign", "bob", heads[1]);
    append_ok(log, "encrypt", "carol", heads[2]);
    append_ok(log, "bundle", "dave", heads[3]);
    return log;
}

static void test_round_trip(void **state)
{
    (void)state;
    char heads[4][65], head[65];
    mode_t old = umask(022);
    const char *log = make_log("chain.log", heads);
    umask(old);
    struct stat st;
    assert_int_equal(stat(log, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);

    uint64_t count = 0;
    assert_int_equal(fwrel_audit_verify(log, heads[3], 4, &count, head), 0);
    assert_int_equal(count, 4);
    assert_string_equal(head, heads[3]);

    /* Each line is canonical JSON: seq, prev = SHA-256 of the previous line, the head is
     * that of the last line, and the caller's fields are kept. */
    struct lines l;
    split(&l, log);
    assert_int_equal(l.n, 4);
    char prev[65] = "0000000000000000000000000000000000000000000000000000000000000000";
    for (size_t i = 0; i < 4; i++) {
        json_error_t err;
        json_t *o = json_loadb(l.line[i], l.llen[i] - 1, 0, &err);
        assert_non_null(o);
        char *canon = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
        assert_int_equal(strlen(canon), l.llen[i] - 1);
        assert_memory_equal(canon, l.line[i], l.llen[i] - 1);
        free(canon);
        assert_int_equal(json_integer_value(json_object_get(o, "seq")), (json_int_t)i + 1);
        assert_string_equal(json_string_value(json_object_get(o, "prev")), prev);
        assert_int_equal(strlen(json_string_value(json_object_get(o, "time"))), 20);
        assert_string_equal(json_string_value(json_object_get(o, "result")), "ok");
        hex_sha256(prev, l.line[i], l.llen[i] - 1);
        assert_string_equal(prev, heads[i]);
        json_decref(o);
    }
    free(l.text);

    /* An empty log verifies with count 0 and the zero head. */
    const char *empty = tpath("empty.log");
    FILE *f = fopen(empty, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(fwrel_audit_verify(empty, NULL, 0, &count, head), 0);
    assert_int_equal(count, 0);
    assert_string_equal(head, "0000000000000000000000000000000000000000000000000000000000000000");

    /* A FIFO is refused at once (issue 13 point 11): opening it used to wait for a writer. */
    const char *fifo = tpath("fifo.log");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(fwrel_audit_verify(fifo, NULL, 0, &count, head), FWREL_EIO);
    assert_string_equal(fwrel_error_last()->message, "the log is not a regular file");
}

static void test_tamper_one_byte(void **state)
{
    (void)state;
    char heads[4][65];
    const char *log = make_log("tamper.log", heads);
    struct lines l;
    split(&l, log);
    /* "bob" -> "bpb" in line 2: still a valid entry, but line 3's prev no longer matches. */
    char *p = strstr(l.line[1], "\"bob\"");
    assert_non_null(p);
    p[2] = 'p';
    const int order[] = {0, 1, 2, 3};
    write_lines(log, &l, order, 4);
    expect_verify(log, NULL, 0, FWREL_EVERIFY,
                  "line 2: does not match line 3's prev (edited, removed or reordered)");
    /* The last line edited: only the expected head can tell. */
    p[2] = 'o';
    p = strstr(l.line[3], "\"dave\"");
    assert_non_null(p);
    p[1] = 'D';
    write_lines(log, &l, order, 4);
    assert_int_equal(fwrel_audit_verify(log, NULL, 4, NULL, NULL), 0);
    expect_verify(log, heads[3], 0, FWREL_EVERIFY,
                  "head of line 4 is not the expected head (truncated or rewritten)");
    /* A byte that breaks the JSON. */
    p[1] = 'd';
    l.line[2][0] = '[';
    write_lines(log, &l, order, 4);
    expect_verify(log, NULL, 0, FWREL_EFORMAT, "line 3: not a JSON object");
    free(l.text);
}

static void test_delete_reorder_duplicate(void **state)
{
    (void)state;
    char heads[4][65];
    const char *log = make_log("order.log", heads);
    struct lines l;
    split(&l, log);
    const int deleted[] = {0, 2, 3};
    write_lines(log, &l, deleted, 3);
    expect_verify(log, NULL, 0, FWREL_EVERIFY, "line 2: seq 3, expected 2");
    const int swapped[] = {0, 2, 1, 3};
    write_lines(log, &l, swapped, 4);
    expect_verify(log, NULL, 0, FWREL_EVERIFY, "line 2: seq 3, expected 2");
    const int dup[] = {0, 1, 1, 2, 3};
    write_lines(log, &l, dup, 5);
    expect_verify(log, NULL, 0, FWREL_EVERIFY, "line 3: seq 2, expected 3");
    /* The first line removed: seq 2 at line 1. */
    const int first[] = {1, 2, 3};
    write_lines(log, &l, first, 3);
    expect_verify(log, NULL, 0, FWREL_EVERIFY, "line 1: seq 2, expected 1");
    free(l.text);
}

static void test_truncation(void **state)
{
    (void)state;
    char heads[4][65], head[65];
    const char *log = make_log("trunc.log", heads);
    struct lines l;
    split(&l, log);
    const int three[] = {0, 1, 2};
    write_lines(log, &l, three, 3);
    /* A chain cut at a line boundary is valid by itself ... */
    uint64_t count = 0;
    assert_int_equal(fwrel_audit_verify(log, NULL, 0, &count, head), 0);
    assert_int_equal(count, 3);
    assert_string_equal(head, heads[2]);
    /* ... and found against the recorded head or count. */
    expect_verify(log, heads[3], 0, FWREL_EVERIFY,
                  "head of line 3 is not the expected head (truncated or rewritten)");
    expect_verify(log, NULL, 4, FWREL_EVERIFY, "3 entries, expected at least 4 (truncated)");
    free(l.text);
}

static void test_torn_line_recovery(void **state)
{
    (void)state;
    char heads[4][65], head[65], after[65];
    const char *log = make_log("torn.log", heads);
    /* A crash in the middle of a write: half a line, no newline. */
    const char torn[] = "{\"event\":\"sign\",\"inputs\":[{\"na";
    int fd = open(log, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, torn, strlen(torn)), (ssize_t)strlen(torn));
    close(fd);
    expect_verify(log, NULL, 0, FWREL_EVERIFY, "line 5: torn last line (no newline)");

    /* The next append cuts it away and records it in a "recovered" entry. */
    append_ok(log, "approve", "erin", after);
    uint64_t count = 0;
    assert_int_equal(fwrel_audit_verify(log, after, 6, &count, head), 0);
    assert_int_equal(count, 6);
    struct lines l;
    split(&l, log);
    assert_int_equal(l.n, 6);
    json_error_t err;
    json_t *o = json_loadb(l.line[4], l.llen[4] - 1, 0, &err);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "event")), "recovered");
    assert_string_equal(json_string_value(json_object_get(o, "prev")), heads[3]);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "who"), "user")),
                        "erin");
    json_t *in = json_array_get(json_object_get(o, "inputs"), 0);
    char want[65];
    hex_sha256(want, torn, strlen(torn));
    assert_string_equal(json_string_value(json_object_get(in, "sha256")), want);
    assert_int_equal(json_integer_value(json_object_get(in, "size")), strlen(torn));
    json_decref(o);
    o = json_loadb(l.line[5], l.llen[5] - 1, 0, &err);
    assert_string_equal(json_string_value(json_object_get(o, "event")), "approve");
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 6);
    json_decref(o);
    free(l.text);

    /* A log that is only a torn line. */
    const char *only = tpath("only-torn.log");
    fd = open(only, O_WRONLY | O_CREAT | O_EXCL, 0640);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"ev", 4), 4);
    close(fd);
    expect_verify(only, NULL, 0, FWREL_EVERIFY, "line 1: torn last line (no newline)");
    append_ok(only, "keygen", "alice", after);
    assert_int_equal(fwrel_audit_verify(only, after, 2, &count, NULL), 0);
    assert_int_equal(count, 2);
}

static void test_refused_entries(void **state)
{
    (void)state;
    char heads[4][65];
    const char *log = make_log("refuse.log", heads);
    size_t before_len = 0, after_len = 0;
    uint8_t *before = testutil_read(log, &before_len);
    static const struct {
        const char *json;
        const char *msg;
    } bad[] = {
        {"[]", "audit entry: not a JSON object"},
        {"{\"event\":\"sign\"", "audit entry: not a JSON object"},
        {"{\"seq\":5,\"event\":\"sign\",\"who\":{\"user\":\"a\"},\"inputs\":[],\"outputs\":[],"
         "\"result\":\"ok\"}",
         "audit entry: seq, prev and time are set by the log"},
        {"{\"event\":\"recovered\",\"who\":{\"user\":\"a\"},\"inputs\":[],\"outputs\":[],"
         "\"result\":\"ok\"}",
         "audit entry: bad or missing event"},
        {"{\"event\":\"sign\",\"who\":{\"user\":\"a\",\"fingerprint\":\"12\"},\"inputs\":[],"
         "\"outputs\":[],\"result\":\"ok\"}",
         "audit entry: bad who.fingerprint"},
        {"{\"event\":\"sign\",\"who\":{\"user\":\"a\"},\"inputs\":[{\"name\":\"x\"}],"
         "\"outputs\":[],\"result\":\"ok\"}",
         "audit entry: bad or missing inputs"},
        {"{\"event\":\"sign\",\"who\":{\"user\":\"a\"},\"inputs\":[],\"outputs\":[],"
         "\"result\":\"fail\"}",
         "audit entry: result fail without reason"},
        {"{\"event\":\"sign\",\"who\":{\"user\":\"a\"},\"inputs\":[],\"outputs\":[],"
         "\"result\":\"ok\",\"extra\":1}",
         "audit entry: unknown field"},
        {"{\"event\":\"sign\",\"event\":\"sign\",\"who\":{\"user\":\"a\"},\"inputs\":[],"
         "\"outputs\":[],\"result\":\"ok\"}",
         "audit entry: not a JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(fwrel_audit_append(log, bad[i].json, strlen(bad[i].json), NULL),
                         FWREL_EUSAGE);
        assert_string_equal(fwrel_error_last()->message, bad[i].msg);
    }
    uint8_t *after = testutil_read(log, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);

    /* A failure with its reason is accepted. */
    const char *fail = "{\"event\":\"sign\",\"who\":{\"user\":\"a\"},\"inputs\":[],\"outputs\":[],"
                       "\"result\":\"fail\",\"reason\":\"wrong passphrase\"}";
    assert_int_equal(fwrel_audit_append(log, fail, strlen(fail), NULL), 0);
    assert_int_equal(fwrel_audit_verify(log, NULL, 5, NULL, NULL), 0);

    /* A log whose last line is not an entry is not appended to. */
    const char *junk = tpath("junk.log");
    FILE *f = fopen(junk, "w");
    assert_non_null(f);
    fputs("{\"a\": 1}\n", f);
    fclose(f);
    const char *e = entry("sign", "bob");
    assert_int_equal(fwrel_audit_append(junk, e, strlen(e), NULL), FWREL_EFORMAT);
    assert_string_equal(fwrel_error_last()->message, "the log's last line: not canonical JSON");
    expect_verify(junk, NULL, 0, FWREL_EFORMAT, "line 1: not canonical JSON");

    /* A line over the cap. */
    const char *longl = tpath("long.log");
    f = fopen(longl, "w");
    assert_non_null(f);
    for (size_t i = 0; i < FWREL_AUDIT_LINE_MAX + 10; i++)
        fputc('x', f);
    fputc('\n', f);
    fclose(f);
    expect_verify(longl, NULL, 0, FWREL_EFORMAT, "line 1: longer than 65536 bytes");
    assert_int_equal(fwrel_audit_append(longl, e, strlen(e), NULL), FWREL_EFORMAT);
    assert_string_equal(fwrel_error_last()->message,
                        "the log's last line is longer than 65536 bytes");
}

static void test_concurrent_appenders(void **state)
{
    (void)state;
    const char *log = tpath("concurrent.log");
    enum { PER_CHILD = 40 };
    pid_t pids[2];
    for (int c = 0; c < 2; c++) {
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            for (int i = 0; i < PER_CHILD; i++) {
                const char *e = entry("sign", c ? "child-b" : "child-a");
                if (fwrel_audit_append(log, e, strlen(e), NULL) != 0)
                    _exit(1);
            }
            _exit(0);
        }
    }
    for (int c = 0; c < 2; c++) {
        int status = 0;
        assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    uint64_t count = 0;
    int rc = fwrel_audit_verify(log, NULL, 2 * PER_CHILD, &count, NULL);
    if (rc)
        fprintf(stderr, "verify: %s\n", fwrel_error_last()->message);
    assert_int_equal(rc, 0);
    assert_int_equal(count, 2 * PER_CHILD);
}

/* Whole lines (newlines) in the file at path; 0 when it is absent. */
static size_t lines_in(const char *path)
{
    size_t n = 0;
    int c;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* SIGKILL an appender at random moments: the log is always a valid chain, or one whose only
 * fault is a torn last line that the next append recovers. */
static void test_sigkill(void **state)
{
    (void)state;
    const char *log = tpath("killed.log");
    uint64_t total = 0;
    for (int round = 0; round < 6; round++) {
        size_t before = lines_in(log);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (;;) {
                const char *e = entry("encrypt", "killed");
                if (fwrel_audit_append(log, e, strlen(e), NULL) != 0)
                    _exit(1);
            }
        }
        /* The child has written one whole line of this round first (a loaded machine, or a
         * sanitizer build, may not have run it that far yet): each round adds an entry of its
         * own, so the total below counts more than the parent's six. */
        for (int w = 0; w < 20000 && lines_in(log) <= before; w++)
            usleep(1000);
        usleep(2000 + (useconds_t)(round * 3571 % 20000));
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        uint64_t count = 0;
        int rc = fwrel_audit_verify(log, NULL, total, &count, NULL);
        if (rc != 0) {
            /* Only a torn last line is acceptable, and the next append repairs it. */
            assert_int_equal(rc, FWREL_EVERIFY);
            assert_non_null(strstr(fwrel_error_last()->message, "torn last line"));
        }
        char head[65], head2[65];
        append_ok(log, "release", "parent", head);
        assert_int_equal(fwrel_audit_verify(log, head, total + 1, &count, head2), 0);
        assert_string_equal(head, head2);
        total = count;
    }
    assert_true(total > 6);
}

/* In a child with SIGXFSZ ignored and RLIMIT_FSIZE at the log's size plus room bytes: one
 * append's code (exit status) and message (the pipe). */
static int append_limited(const char *log, size_t room, char *msg, size_t msg_size)
{
    int fds[2];
    struct stat st;
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(stat(log, &st), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {(rlim_t)st.st_size + room, (rlim_t)st.st_size + room};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(99);
        const char *e = entry("sign", "limited");
        int rc = fwrel_audit_append(log, e, strlen(e), NULL);
        const char *m = fwrel_error_last()->message;
        if (write(fds[1], m, strlen(m)) < 0)
            _exit(98);
        _exit(rc);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], msg, msg_size - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* A write cut short by a size limit (EFBIG after part of the line): the log is cut back to its
 * bytes before, its chain verifies, and the message names the cause, not "short write". */
static void test_size_limit_all_or_nothing(void **state)
{
    (void)state;
    char heads[4][65], msg[512];
    const char *log = make_log("limited.log", heads);
    size_t before_len = 0, after_len = 0;
    uint8_t *before = testutil_read(log, &before_len);
    for (size_t room = 0; room < 300; room += 37) {
        assert_int_equal(append_limited(log, room, msg, sizeof(msg)), FWREL_EIO);
        assert_string_equal(msg, "writing the log: File too large");
        uint8_t *after = testutil_read(log, &after_len);
        assert_int_equal(after_len, before_len);
        assert_memory_equal(after, before, before_len);
        free(after);
        uint64_t count = 0;
        assert_int_equal(fwrel_audit_verify(log, heads[3], 4, &count, NULL), 0);
        assert_int_equal(count, 4);
    }
    free(before);
}

/* A full disk (a 64 KiB tmpfs, when this process may mount one): the entry does not fit in what
 * is left of the log's last page. The log stays byte-identical, the message says why. */
static void test_disk_full_all_or_nothing(void **state)
{
    (void)state;
    char mnt[4096], filler[4200];
    snprintf(mnt, sizeof(mnt), "%s/small-fs", dir);
    assert_int_equal(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") != 0) {
        rmdir(mnt);
        skip();
    }
    char log[4200];
    snprintf(log, sizeof(log), "%s/audit.log", mnt);
    /* Entries until what is left of the last page is less than one more line. */
    size_t len = 0, line = 0;
    for (int i = 0; i < 64; i++) {
        append_ok(log, "sign", "full", NULL);
        struct stat st;
        assert_int_equal(stat(log, &st), 0);
        line = (size_t)st.st_size - len;
        len = (size_t)st.st_size;
        if (4096 - len % 4096 < line - 8 && len % 4096 != 0)
            break;
    }
    assert_true(4096 - len % 4096 < line - 8);
    /* Fill the rest of the file system. */
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    char block[4096];
    memset(block, 'x', sizeof(block));
    while (write(fd, block, sizeof(block)) > 0)
        ;
    close(fd);
    size_t before_len = 0, after_len = 0;
    uint8_t *before = testutil_read(log, &before_len);
    const char *e = entry("sign", "full");
    assert_int_equal(fwrel_audit_append(log, e, strlen(e), NULL), FWREL_EIO);
    assert_string_equal(fwrel_error_last()->message, "writing the log: No space left on device");
    uint8_t *after = testutil_read(log, &after_len);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    assert_int_equal(fwrel_audit_verify(log, NULL, 0, NULL, NULL), 0);
    free(before);
    free(after);
    /* Room again: the next append goes on the intact chain. */
    assert_int_equal(unlink(filler), 0);
    append_ok(log, "sign", "full", NULL);
    assert_int_equal(fwrel_audit_verify(log, NULL, 0, NULL, NULL), 0);
    assert_int_equal(umount(mnt), 0);
    rmdir(mnt);
}

/* An entry with one output (its sha256 64 times the digit d), with result ok or fail. */
static void append_out(const char *log, const char *event, const char *output, int ok, char d)
{
    char sha[65];
    memset(sha, d, 64);
    sha[64] = '\0';
    snprintf(entry_buf, sizeof(entry_buf),
             "{\"event\":\"%s\",\"who\":{\"user\":\"u\"},\"inputs\":[],\"outputs\":[{\"name\":"
             "\"%s\",\"sha256\":\"%s\",\"size\":0}],\"result\":\"%s\"%s}",
             event, output, sha, ok ? "ok" : "fail", ok ? "" : ",\"reason\":\"no\"");
    assert_int_equal(fwrel_audit_append(log, entry_buf, strlen(entry_buf), NULL), 0);
}

/* The summary of a log: counts, first and last time, the "bundle" entries naming no tag of the
 * repository, the head; a broken chain is named, the head then being the last line's hash; a
 * missing log, a FIFO and a log above the cap are not read, and say why. */
static void test_summary(void **state)
{
    (void)state;
    const char *log = tpath("summary.jsonl");
    static const char *const tags[] = {"p/beta/v1.0.0", "p/beta/v1.1.0"}; /* sorted */
    fwrel_audit_log_summary sum;
    fwrel_audit_snapshot snap;
    uint64_t count = 0;
    char head[65], want[65];

    append_out(log, "bundle", "p/beta/v1.0.0/bundle.fwb", 1, '1');
    append_out(log, "sign", "app.signed.bin", 0, '2');
    append_out(log, "bundle", "p/beta/v2.0.0/bundle.fwb", 1, '3'); /* awaiting approvals */
    append_out(log, "bundle", "p/beta/v3.0.0/bundle.fwb", 0, '4'); /* failed: not a release */
    append_out(log, "bundle", "p/beta/v1.1.0/bundle.fwb", 1, '5');
    assert_int_equal(fwrel_audit_verify(log, NULL, 0, &count, head), 0);
    assert_int_equal(count, 5);

    assert_int_equal(fwrel_audit_snapshot_load(&snap, log, "audit/log.jsonl", tags, 2, 1 << 20), 0);
    assert_non_null(snap.data);
    assert_int_equal(snap.nlines, 5);
    assert_int_equal(snap.end[4], snap.len);
    sum = snap.sum;
    const uint8_t *data = snap.data;
    size_t len = snap.len;
    assert_string_equal(sum.path, "audit/log.jsonl");
    assert_true(sum.valid);
    assert_string_equal(sum.error, "");
    assert_int_equal(sum.entries, 5);
    assert_string_equal(sum.head, head);
    assert_int_equal(sum.ok, 3);
    assert_int_equal(sum.fail, 2);
    assert_int_equal(sum.releases, 3);
    assert_int_equal(sum.untagged, 1);
    assert_string_equal(sum.first_untagged, "p/beta/v2.0.0");
    assert_int_equal(strlen(sum.first_time), 20); /* RFC 3339 UTC, to the second */
    assert_true(strcmp(sum.first_time, sum.last_time) <= 0);

    /* Without the repository's tags every release counts as untagged. */
    assert_int_equal(fwrel_audit_summarise(&sum, data, len, NULL, 0), 0);
    assert_string_equal(sum.path, "audit/log.jsonl");
    assert_int_equal(sum.untagged, 3);
    assert_string_equal(sum.first_untagged, "p/beta/v1.0.0");

    /* An edited second line: the chain is broken there; a torn tail is not an entry. */
    uint8_t *edited = malloc(len + 4);
    assert_non_null(edited);
    memcpy(edited, data, len);
    char *second = memchr(edited, '\n', len) + 1;
    char *u = strstr(second, "\"user\":\"u\"");
    assert_non_null(u);
    u[8] = 'v';
    memcpy(edited + len, "{\"ev", 4);
    assert_int_equal(fwrel_audit_summarise(&sum, edited, len + 4, tags, 2), 0);
    assert_false(sum.valid);
    assert_string_equal(sum.error,
                        "line 2: does not match line 3's prev (edited, removed or reordered)");
    assert_int_equal(sum.entries, 5);
    const uint8_t *lastline = (const uint8_t *)data + len - 1;
    while (lastline > data && lastline[-1] != '\n')
        lastline--;
    hex_sha256(want, lastline, (size_t)(data + len - 1 - lastline));
    assert_string_equal(sum.head, want);
    assert_int_equal(sum.ok, 3);
    free(edited);

    /* An empty log: valid, no entry, the zero head. */
    assert_int_equal(fwrel_audit_summarise(&sum, NULL, 0, NULL, 0), 0);
    assert_true(sum.valid);
    assert_int_equal(sum.entries, 0);
    assert_string_equal(sum.head,
                        "0000000000000000000000000000000000000000000000000000000000000000");
    fwrel_audit_snapshot_clear(&snap);
    assert_null(snap.data);

    /* Not read: above the cap, missing, a FIFO (without waiting on it). */
    assert_int_equal(fwrel_audit_snapshot_load(&snap, log, "l", tags, 2, 100), 0);
    assert_null(snap.data);
    assert_string_equal(snap.sum.error, "the live log is too large");
    assert_string_equal(snap.sum.path, "l");
    assert_false(snap.sum.valid);
    assert_int_equal(snap.sum.entries, 0);
    const char *missing = tpath("missing.jsonl");
    assert_int_equal(fwrel_audit_snapshot_load(&snap, missing, "l", tags, 2, 100), 0);
    assert_null(snap.data);
    assert_string_equal(snap.sum.error, "cannot open the live log: No such file or directory");
    const char *fifo = tpath("fifo.jsonl");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(fwrel_audit_snapshot_load(&snap, fifo, "l", tags, 2, 100), 0);
    assert_null(snap.data);
    assert_string_equal(snap.sum.error, "the live log is not a regular file");
    fwrel_audit_snapshot_clear(&snap);
}

/* Steps k and k + 1 of rep: audit.copy and audit.live with these verdicts and details. */
static void expect_copy_steps(const fwrel_report *rep, size_t k, int vc, const char *dc, int vl,
                              const char *dl)
{
    assert_int_equal(fwrel_report_count(rep), k + 2);
    assert_string_equal(fwrel_report_step(rep, k)->name, "audit.copy");
    assert_string_equal(fwrel_report_step(rep, k)->detail, dc);
    assert_int_equal(fwrel_report_step(rep, k)->verdict, vc);
    assert_string_equal(fwrel_report_step(rep, k + 1)->name, "audit.live");
    assert_string_equal(fwrel_report_step(rep, k + 1)->detail, dl);
    assert_int_equal(fwrel_report_step(rep, k + 1)->verdict, vl);
}

/* A release's committed copy of the log against the live log (fwrel_audit_check_copy()): a good
 * prefix naming the bundle; another bundle; a count the tag does not say; no live log; a live log
 * cut back below the copy; an edited copy. */
static void test_check_copy(void **state)
{
    (void)state;
    const char *log = tpath("live.jsonl"), *shortlog = tpath("short.jsonl");
    fwrel_audit_snapshot live, cut;
    fwrel_report *rep = NULL;
    char head3[65], head5[65], b3[65], b4[65], want[256];

    for (int i = 0; i < 5; i++) {
        append_out(log, "bundle", "p/beta/v1.0.0/bundle.fwb", 1, (char)('1' + i));
        if (i < 3)
            append_out(shortlog, "bundle", "p/beta/v1.0.0/bundle.fwb", 1, (char)('1' + i));
    }
    assert_int_equal(fwrel_audit_snapshot_load(&live, log, "audit/log.jsonl", NULL, 0, 1 << 20), 0);
    assert_int_equal(fwrel_audit_snapshot_load(&cut, shortlog, "audit/log.jsonl", NULL, 0, 1 << 20),
                     0);
    assert_int_equal(live.nlines, 5);
    assert_int_equal(cut.nlines, 3);
    hex_sha256(head3, live.data + live.end[1], live.end[2] - live.end[1] - 1);
    hex_sha256(head5, live.data + live.end[3], live.end[4] - live.end[3] - 1);
    memset(b3, '3', 64);
    b3[64] = '\0';
    memset(b4, '4', 64);
    b4[64] = '\0';
    size_t len3 = live.end[2];
    assert_int_equal(fwrel_report_new(&rep), 0);

    /* The copy is lines 1..3 and line 3 records bundle 3. */
    assert_int_equal(
        fwrel_audit_check_copy(rep, &live, "audit/log.jsonl", live.data, len3, head3, 3, b3), 0);
    snprintf(want, sizeof(want), "the log committed at the tag: 3 entries, head %.16s...", head3);
    expect_copy_steps(rep, 0, FWREL_PASS, want, FWREL_PASS,
                      "line 3 of 5 of the live log records this bundle; the committed copy is its "
                      "prefix");
    /* Line 3 is not bundle 4's entry. */
    assert_int_equal(
        fwrel_audit_check_copy(rep, &live, "audit/log.jsonl", live.data, len3, head3, 3, b4), 0);
    expect_copy_steps(rep, 2, FWREL_PASS, want, FWREL_FAIL,
                      "line 3 of the live log does not record this bundle");
    /* The tag says 2 entries. */
    assert_int_equal(
        fwrel_audit_check_copy(rep, &live, "audit/log.jsonl", live.data, len3, head3, 2, b3), 0);
    char want2[256];
    hex_sha256(want2, live.data + live.end[0], live.end[1] - live.end[0] - 1);
    snprintf(want, sizeof(want),
             "line 2 of the live log is not the one the tag names (head %.16s..., the line's "
             "%.16s...)",
             head3, want2);
    expect_copy_steps(rep, 4, FWREL_FAIL,
                      "the log committed at the tag has 3 entries, the tag says 2", FWREL_FAIL,
                      want);
    /* No live log. */
    assert_int_equal(
        fwrel_audit_check_copy(rep, NULL, "audit/log.jsonl", live.data, len3, head3, 3, b3), 0);
    snprintf(want, sizeof(want), "the log committed at the tag: 3 entries, head %.16s...", head3);
    expect_copy_steps(rep, 6, FWREL_PASS, want, FWREL_FAIL,
                      "no live log at audit/log.jsonl: not read");
    /* The live log was cut back to 3 entries; the copy (5) is longer. */
    assert_int_equal(
        fwrel_audit_check_copy(rep, &cut, "audit/log.jsonl", live.data, live.len, head5, 5, b3), 0);
    snprintf(want, sizeof(want), "the log committed at the tag: 5 entries, head %.16s...", head5);
    expect_copy_steps(rep, 8, FWREL_PASS, want, FWREL_FAIL,
                      "the live log has 3 entries; the tag names entry 5 (truncated?)");
    /* An edited first line of the copy. */
    uint8_t *edited = malloc(len3);
    assert_non_null(edited);
    memcpy(edited, live.data, len3);
    char *u = strstr((char *)edited, "\"user\":\"u\"");
    assert_non_null(u);
    u[8] = 'v';
    assert_int_equal(
        fwrel_audit_check_copy(rep, &live, "audit/log.jsonl", edited, len3, head3, 3, b3), 0);
    expect_copy_steps(rep, 10, FWREL_FAIL,
                      "the log committed at the tag: line 1: does not match line 2's prev "
                      "(edited, removed or reordered)",
                      FWREL_FAIL,
                      "the log committed at the tag is not a prefix of the live log (they differ "
                      "at line 1)");
    free(edited);
    fwrel_report_free(rep);
    fwrel_audit_snapshot_clear(&live);
    fwrel_audit_snapshot_clear(&cut);
}

/*
 * The entry builder (fwrel_audit_entry_text, the one writer of the entry's fields for the
 * pipeline and keygen): each shape it makes is taken by the log and read back by the reader
 * (fwrel_audit_verify) with the fields as given; a file's name, hash and size survive.
 */
static void test_entry_builder_round_trip(void **state)
{
    (void)state;
    const char *log = tpath("builder.log");
    fwrel_audit_file in[2], out[1];
    static const uint8_t policy_sha[32] = {0xab, 0x01};
    char *text = NULL;
    size_t len = 0;
    uint64_t count = 0;

    const char *policy = tpath("policy.yaml");
    FILE *f = fopen(policy, "w");
    assert_non_null(f);
    fputs("product: x\n", f);
    fclose(f);
    in[0].name = "app.bin";
    snprintf(in[0].sha256, sizeof(in[0].sha256), "%064d", 7);
    in[0].size = 123456789012ull;
    fwrel_audit_file_of(&in[1], policy, policy_sha);
    assert_string_equal(in[1].name, "policy.yaml");
    assert_int_equal(in[1].size, 11);
    assert_string_equal(in[1].sha256,
                        "ab01000000000000000000000000000000000000000000000000000000000000");
    out[0].name = "kg.1 (key id)";
    snprintf(out[0].sha256, sizeof(out[0].sha256), "%064d", 0);
    out[0].size = 0;

    const fwrel_audit_entry entries[] = {
        {.event = "bundle",
         .user = "ci",
         .fingerprint = "0123456789ABCDEF0123456789ABCDEF01234567",
         .inputs = in,
         .ninputs = 2,
         .outputs = out,
         .noutputs = 1},
        {.event = "keygen",
         .user = NULL,
         .inputs = in + 1,
         .ninputs = 1,
         .reason = "keygen failed"},
        {.event = "sign", .user = "", .fingerprint = "", .outputs = out, .noutputs = 1},
    };
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        assert_int_equal(fwrel_audit_entry_text(&text, &len, &entries[i]), 0);
        assert_int_equal(len, strlen(text));
        assert_int_equal(fwrel_audit_append(log, text, len, NULL), 0);
        free(text);
    }
    assert_int_equal(fwrel_audit_record(log, &entries[0], NULL), 0);
    assert_int_equal(fwrel_audit_verify(log, NULL, 4, &count, NULL), 0);
    assert_int_equal(count, 4);

    /* Read back: the fields as given, nothing else than the log's own. */
    size_t n = 0;
    uint8_t *data = testutil_read(log, &n);
    char *line = (char *)data, *nl;
    json_error_t jerr;
    json_t *e[4];
    for (size_t i = 0; i < 4; i++) {
        assert_non_null(nl = memchr(line, '\n', n - (size_t)(line - (char *)data)));
        e[i] = json_loadb(line, (size_t)(nl - line), 0, &jerr);
        assert_non_null(e[i]);
        line = nl + 1;
    }
    assert_string_equal(json_string_value(json_object_get(e[0], "event")), "bundle");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e[0], "who"), "user")),
                        "ci");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(e[0], "who"), "fingerprint")),
        "0123456789ABCDEF0123456789ABCDEF01234567");
    json_t *i0 = json_array_get(json_object_get(e[0], "inputs"), 0);
    assert_string_equal(json_string_value(json_object_get(i0, "name")), "app.bin");
    assert_int_equal(json_integer_value(json_object_get(i0, "size")), 123456789012ll);
    assert_string_equal(json_string_value(json_object_get(i0, "sha256")), in[0].sha256);
    assert_int_equal(json_array_size(json_object_get(e[0], "outputs")), 1);
    assert_string_equal(json_string_value(json_object_get(e[0], "result")), "ok");
    assert_null(json_object_get(e[0], "reason"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(e[1], "who"), "user")),
                        "fwrel");
    assert_null(json_object_get(json_object_get(e[1], "who"), "fingerprint"));
    assert_string_equal(json_string_value(json_object_get(e[1], "result")), "fail");
    assert_string_equal(json_string_value(json_object_get(e[1], "reason")), "keygen failed");
    assert_int_equal(json_array_size(json_object_get(e[1], "outputs")), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e[2], "who"), "user")),
                        "fwrel");
    assert_int_equal(json_object_size(json_object_get(e[2], "who")), 1);
    assert_int_equal(json_array_size(json_object_get(e[2], "inputs")), 0);
    assert_int_equal(json_integer_value(json_object_get(e[3], "seq")), 4);
    for (size_t i = 0; i < 4; i++)
        json_decref(e[i]);
    free(data);

    /* A field the schema refuses is refused at the append, not written. */
    const fwrel_audit_entry bad = {.event = "keygen", .fingerprint = "12"};
    assert_int_equal(fwrel_audit_record(log, &bad, NULL), FWREL_EUSAGE);
    assert_int_equal(fwrel_audit_verify(log, NULL, 0, &count, NULL), 0);
    assert_int_equal(count, 4);
}

static int setup(void **state)
{
    (void)state;
    dir = fixture_tmpdir();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tamper_one_byte),
        cmocka_unit_test(test_delete_reorder_duplicate),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_torn_line_recovery),
        cmocka_unit_test(test_refused_entries),
        cmocka_unit_test(test_entry_builder_round_trip),
        cmocka_unit_test(test_concurrent_appenders),
        cmocka_unit_test(test_sigkill),
        cmocka_unit_test(test_size_limit_all_or_nothing),
        cmocka_unit_test(test_disk_full_all_or_nothing),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_check_copy),
    };
    return cmocka_run_group_tests(tests, setup, fixture_teardown);
}
