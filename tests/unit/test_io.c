/* test_io.c - error and io modules: bounded sources, atomic outputs. */
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
#include <unistd.h>

#include "fwrel/error.h"
#include "fwrel/io.h"
#include "testutil.h"
#include "util.h"

static char dir[] = "/tmp/fwrel-io.XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int count_entries(void)
{
    return testutil_count_entries(dir);
}

static void test_error_set_returns_code(void **state)
{
    (void)state;
    assert_int_equal(fwrel_error_set(FWREL_EFORMAT, "bad %s", "thing\nnext"), FWREL_EFORMAT);
    assert_int_equal(fwrel_error_last()->code, FWREL_EFORMAT);
    assert_string_equal(fwrel_error_last()->message, "bad thing next");
    fwrel_error_prefix("block %d", 2);
    assert_string_equal(fwrel_error_last()->message, "block 2: bad thing next");
    /* The last message as an argument of the next one. */
    fwrel_error_set(FWREL_EFORMAT, "not sound (%s); try again", fwrel_error_last()->message);
    assert_string_equal(fwrel_error_last()->message,
                        "not sound (block 2: bad thing next); try again");
    fwrel_error_clear();
    assert_int_equal(fwrel_error_last()->code, FWREL_OK);
}

static void test_src_refuses_fifo_and_devices(void **state)
{
    (void)state;
    fwrel_src src;
    char fifo[256];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(fwrel_src_open(&src, fifo, 100), FWREL_EFORMAT);
    assert_string_equal(fwrel_error_last()->message, "not a regular file");
    assert_int_equal(fwrel_src_open(&src, "/dev/zero", 100), FWREL_EFORMAT);
    assert_int_equal(fwrel_src_open(&src, "/nonexistent/x", 100), FWREL_EIO);
    unlink(fifo);
}

static void test_src_bounded(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof(path), "%s/ten", dir);
    assert_int_equal(fwrel_io_write_file(path, "0123456789", 10, 0, 0644), 0);
    fwrel_src src;
    assert_int_equal(fwrel_src_open(&src, path, 9), FWREL_EFORMAT);
    assert_int_equal(fwrel_src_open(&src, path, 10), 0);
    char buf[11];
    assert_int_equal(fwrel_src_read(&src, buf, 4), 0);
    assert_memory_equal(buf, "0123", 4);
    assert_int_equal(fwrel_src_read(&src, buf, 7), FWREL_EFORMAT);
    assert_int_equal(fwrel_src_seek(&src, 11), FWREL_EFORMAT);
    fwrel_src_close(&src);
    unlink(path);
}

static void test_out_no_replace_without_force(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof(path), "%s/out", dir);
    assert_int_equal(fwrel_io_write_file(path, "a", 1, 0, 0600), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fwrel_io_write_file(path, "b", 1, 0, 0600), FWREL_EIO);
    assert_string_equal(fwrel_error_last()->message, "exists (use --force to replace)");
    assert_int_equal(fwrel_io_write_file(path, "bc", 2, FWREL_OUT_FORCE, 0644), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 2);
    assert_int_equal(st.st_mode & 0777, 0644);
    unlink(path);
    assert_int_equal(count_entries(), 0);
}

static void test_out_abort_leaves_nothing(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof(path), "%s/aborted", dir);
    fwrel_out *o = NULL;
    assert_int_equal(fwrel_out_open(&o, path, 0, 0644), 0);
    assert_int_equal(fwrel_out_write(o, "xyz", 3), 0);
    assert_int_equal(fwrel_out_fill(o, 0xFF, 5000), 0);
    assert_int_equal(fwrel_out_size(o), 5003);
    fwrel_out_abort(o);
    assert_int_equal(count_entries(), 0);
    fwrel_out_abort(NULL);
}

/* Stream outputs (O_DIRECT with a writer thread, or the fallback) give the bytes written. */
static void stream_round_trip(const char *where)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/stream", where);
    size_t len = (3u << 20) + 1234;
    uint8_t *want = malloc(len), *got = NULL;
    assert_non_null(want);
    for (size_t i = 0; i < len; i++)
        want[i] = (uint8_t)(i * 131 + (i >> 12));
    fwrel_out *o = NULL;
    assert_int_equal(fwrel_out_open(&o, path, FWREL_OUT_STREAM, 0600), 0);
    for (size_t off = 0; off < len;) {
        size_t n = len - off < 7777 ? len - off : 7777;
        assert_int_equal(fwrel_out_write(o, want + off, n), 0);
        off += n;
    }
    /* Patches: twice in the first block (kept in memory), from it into the next block (read
     * back from the disk), across writes on disk, across disk and memory, at the end. */
    const struct {
        size_t off, len;
    } patch[] = {{100, 16},   {90, 20}, {4000, 200}, {(1u << 20) - 2, 4}, {(3u << 20) - 10, 20},
                 {len - 5, 5}};
    for (size_t k = 0; k < sizeof(patch) / sizeof(patch[0]); k++) {
        for (size_t i = 0; i < patch[k].len; i++)
            want[patch[k].off + i] ^= 0x5A;
        assert_int_equal(fwrel_out_pwrite(o, patch[k].off, want + patch[k].off, patch[k].len), 0);
    }
    assert_int_equal(fwrel_out_size(o), len);
    assert_int_equal(fwrel_out_commit(o), 0);
    size_t got_len = 0;
    assert_int_equal(fwrel_io_read_small(&got, &got_len, path, len + 1), 0);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, want, len);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    unlink(path);
    /* Aborted after chunks reached the disk: nothing left. */
    assert_int_equal(fwrel_out_open(&o, path, FWREL_OUT_STREAM, 0600), 0);
    assert_int_equal(fwrel_out_write(o, want, len), 0);
    fwrel_out_abort(o);
    assert_int_equal(testutil_count_entries(where), 0);
    fwrel_io_free_secret(got, got_len);
    free(want);
}

static void test_out_stream(void **state)
{
    (void)state;
    stream_round_trip(dir);
    /* tmpfs refuses O_DIRECT: the same bytes through ordinary writes. */
    char shm[] = "/dev/shm/fwrel-io.XXXXXX";
    if (mkdtemp(shm) != NULL) {
        stream_round_trip(shm);
        rmdir(shm);
    }
}

/* Unnamed scratch outputs: never a name in the directory, while written, read back or after;
 * the bytes read back are the bytes written (streamed, with a patch, and plain). */
static void unnamed_round_trip(const char *where, unsigned flags)
{
    size_t len = (2u << 20) + 777;
    uint8_t *want = malloc(len), *got = malloc(len);
    assert_non_null(want);
    assert_non_null(got);
    for (size_t i = 0; i < len; i++)
        want[i] = (uint8_t)(i * 7 + (i >> 10));
    fwrel_out *o = NULL;
    assert_int_equal(fwrel_out_open_unnamed(&o, where, flags), 0);
    assert_int_equal(testutil_count_entries(where), 0);
    assert_int_equal(fwrel_out_write(o, want, len), 0);
    want[10] ^= 0xFF;
    assert_int_equal(fwrel_out_pwrite(o, 10, want + 10, 1), 0);
    assert_int_equal(testutil_count_entries(where), 0);
    fwrel_src src;
    assert_int_equal(fwrel_out_finish_src(o, &src), 0);
    assert_int_equal(src.size, len);
    assert_int_equal(fwrel_src_read(&src, got, len), 0);
    assert_memory_equal(got, want, len);
    assert_int_equal(fwrel_src_seek(&src, 5), 0); /* read again from anywhere */
    assert_int_equal(fwrel_src_read(&src, got, 10), 0);
    assert_memory_equal(got, want + 5, 10);
    assert_int_equal(testutil_count_entries(where), 0);
    fwrel_src_close(&src);
    /* Aborted: nothing either. */
    assert_int_equal(fwrel_out_open_unnamed(&o, where, flags), 0);
    assert_int_equal(fwrel_out_write(o, want, len), 0);
    fwrel_out_abort(o);
    assert_int_equal(testutil_count_entries(where), 0);
    free(want);
    free(got);
}

static void test_out_unnamed(void **state)
{
    (void)state;
    unnamed_round_trip(dir, 0);
    unnamed_round_trip(dir, FWREL_OUT_STREAM);
    char shm[] = "/dev/shm/fwrel-io.XXXXXX";
    if (mkdtemp(shm) != NULL) {
        unnamed_round_trip(shm, FWREL_OUT_STREAM);
        rmdir(shm);
    }
    char missing[300];
    fwrel_out *o = NULL;
    snprintf(missing, sizeof(missing), "%s/no-such-dir", dir);
    assert_int_equal(fwrel_out_open_unnamed(&o, missing, 0), FWREL_EIO);
    assert_null(o);
}

static void test_util(void **state)
{
    (void)state;
    /* zlib.crc32(b"123456789") == 0xCBF43926 */
    assert_int_equal(fwrel_crc32(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
    uint8_t b[3];
    assert_int_equal(fwrel_unhex(b, 3, "0aFf10"), 0);
    assert_int_equal(b[1], 0xFF);
    assert_int_equal(fwrel_unhex(b, 3, "0aFf1"), -1);
    assert_int_equal(fwrel_unhex(b, 3, "0aFg10"), -1);
    char hex[7];
    fwrel_hex(hex, b, 3);
    assert_string_equal(hex, "0aff10");
    uint64_t v;
    assert_int_equal(fwrel_parse_u64(&v, "0x10", 100), 0);
    assert_int_equal(v, 16);
    assert_int_equal(fwrel_parse_u64(&v, "101", 100), -1);
    assert_int_equal(fwrel_parse_u64(&v, "99999999999999999999999", UINT64_MAX), -1);
    assert_int_equal(fwrel_parse_u64(&v, "", 100), -1);
    assert_int_equal(fwrel_parse_u64(&v, "-1", 100), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_set_returns_code),
        cmocka_unit_test(test_src_refuses_fifo_and_devices),
        cmocka_unit_test(test_src_bounded),
        cmocka_unit_test(test_out_no_replace_without_force),
        cmocka_unit_test(test_out_abort_leaves_nothing),
        cmocka_unit_test(test_out_stream),
        cmocka_unit_test(test_out_unnamed),
        cmocka_unit_test(test_util),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
