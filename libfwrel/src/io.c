/* io.c - bounded sources and atomic outputs (io.h). */
#define _GNU_SOURCE
#include "fwrel/io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

int fwrel_src_open(fwrel_src *src, const char *path, uint64_t max)
{
    FWREL_ASSERT_ARG(src != NULL && path != NULL);
    memset(src, 0, sizeof(*src));
    src->fd = -1;
    /* O_NONBLOCK: opening a FIFO with no writer must not hang before fstat says no. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return fwrel_error_set_errno(FWREL_EIO, errno, "cannot open");
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fwrel_error_set_errno(FWREL_EIO, e, "cannot stat");
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fwrel_error_set(FWREL_EFORMAT, "not a regular file");
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return fwrel_error_set(FWREL_EFORMAT, "too large: %llu bytes, at most %llu",
                               (unsigned long long)st.st_size, (unsigned long long)max);
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    src->fd = fd;
    src->size = (uint64_t)st.st_size;
    return 0;
}

void fwrel_src_mem(fwrel_src *src, const void *data, size_t len)
{
    memset(src, 0, sizeof(*src));
    src->fd = -1;
    src->mem = data;
    src->size = len;
}

int fwrel_src_read(fwrel_src *src, void *buf, size_t n)
{
    FWREL_ASSERT_ARG(src != NULL && (buf != NULL || n == 0));
    if (n > src->size - src->pos)
        return fwrel_error_set(FWREL_EFORMAT, "truncated: %zu bytes needed at offset %llu, %llu left",
                               n, (unsigned long long)src->pos,
                               (unsigned long long)(src->size - src->pos));
    if (src->fd < 0) {
        memcpy(buf, src->mem + src->pos, n);
        src->pos += n;
        return 0;
    }
    uint8_t *p = buf;
    size_t left = n;
    while (left > 0) {
        ssize_t r = pread(src->fd, p, left, (off_t)src->pos);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return fwrel_error_set_errno(FWREL_EIO, errno, "read failed at offset %llu",
                                         (unsigned long long)src->pos);
        }
        if (r == 0) /* the file shrank under us */
            return fwrel_error_set(FWREL_EFORMAT, "truncated at offset %llu",
                                   (unsigned long long)src->pos);
        p += r;
        left -= (size_t)r;
        src->pos += (uint64_t)r;
    }
    return 0;
}

int fwrel_src_seek(fwrel_src *src, uint64_t pos)
{
    FWREL_ASSERT_ARG(src != NULL);
    if (pos > src->size)
        return fwrel_error_set(FWREL_EFORMAT, "offset %llu past the end (%llu bytes)",
                               (unsigned long long)pos, (unsigned long long)src->size);
    src->pos = pos;
    return 0;
}

void fwrel_src_close(fwrel_src *src)
{
    if (src == NULL)
        return;
    if (src->fd >= 0)
        close(src->fd);
    src->fd = -1;
}

int fwrel_io_read_small(uint8_t **out, size_t *len, const char *path, size_t max)
{
    FWREL_ASSERT_ARG(out != NULL && len != NULL && path != NULL);
    fwrel_src src;
    uint8_t *buf = NULL;
    int error = fwrel_src_open(&src, path, max);
    if (error)
        return error;
    buf = malloc((size_t)src.size + 1);
    if (buf == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    if ((error = fwrel_src_read(&src, buf, (size_t)src.size)) != 0)
        goto done;
    buf[src.size] = 0;
    *out = buf;
    *len = (size_t)src.size;
    buf = NULL;
done:
    if (buf != NULL)
        fwrel_io_free_secret(buf, (size_t)src.size);
    fwrel_src_close(&src);
    return error;
}

void fwrel_io_free_secret(uint8_t *buf, size_t len)
{
    if (buf == NULL)
        return;
    OPENSSL_cleanse(buf, len + 1);
    free(buf);
}

int fwrel_io_check_new(const char *path, unsigned flags)
{
    struct stat st;
    int error = 0;
    if (path[0] == '\0')
        error = fwrel_error_set(FWREL_EUSAGE, "empty output path");
    else if (!(flags & FWREL_OUT_FORCE) && lstat(path, &st) == 0)
        error = fwrel_error_set(FWREL_EIO, "exists (use --force to replace)");
    else if ((flags & FWREL_OUT_FORCE) && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        error = fwrel_error_set(FWREL_EIO, "is a directory");
    if (error)
        fwrel_error_mark_output();
    return error;
}

/* Start writeback every this many bytes, so the final fsync has little left to do. */
#define WRITEBACK_STEP ((uint64_t)1 << 20)

struct fwrel_out {
    int fd;
    unsigned flags;
    uint64_t size;
    uint64_t flushed; /* bytes handed to writeback already */
    char *path;
    char *tmp;
    char *dir;
};

static void out_free(fwrel_out *o)
{
    if (o == NULL)
        return;
    if (o->fd >= 0)
        close(o->fd);
    free(o->path);
    free(o->tmp);
    free(o->dir);
    free(o);
}

int fwrel_out_open(fwrel_out **out, const char *path, unsigned flags, mode_t mode)
{
    FWREL_ASSERT_ARG(out != NULL && path != NULL);
    fwrel_out *o = NULL;
    char *copy = NULL;
    int error = FWREL_EIO;

    *out = NULL;
    if ((error = fwrel_io_check_new(path, flags)) != 0)
        return error;

    if ((o = calloc(1, sizeof(*o))) == NULL || (o->path = strdup(path)) == NULL ||
        (copy = strdup(path)) == NULL || (o->dir = strdup(dirname(copy))) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    o->fd = -1;
    o->flags = flags;
    free(copy);
    copy = strdup(path);
    if (copy == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    const char *base = basename(copy);
    size_t n = strlen(o->dir) + strlen(base) + 16;
    if ((o->tmp = malloc(n)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    /* A hidden temporary beside the destination, so rename/link stay on one filesystem. */
    for (int attempt = 0; attempt < 16; attempt++) {
        unsigned char rnd[4];
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd)) {
            if (fd >= 0)
                close(fd);
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot read /dev/urandom");
            goto done;
        }
        close(fd);
        snprintf(o->tmp, n, "%s/.%s.%02x%02x%02x%02x~", o->dir, base, rnd[0], rnd[1], rnd[2],
                 rnd[3]);
        o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
        if (o->fd >= 0 || errno != EEXIST)
            break;
    }
    if (o->fd < 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot create output");
        goto done;
    }
    /* The umask must not loosen or tighten what the caller asked for. */
    if (fchmod(o->fd, mode & 0777) != 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot set mode");
        unlink(o->tmp);
        goto done;
    }
    *out = o;
    o = NULL;
    error = 0;
done:
    if (error)
        fwrel_error_mark_output();
    free(copy);
    out_free(o);
    return error;
}

int fwrel_out_write(fwrel_out *o, const void *data, size_t len)
{
    FWREL_ASSERT_ARG(o != NULL && (data != NULL || len == 0));
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(o->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            {
            fwrel_error_set_errno(FWREL_EIO, errno, "write failed");
            fwrel_error_mark_output();
            return FWREL_EIO;
        }
        }
        p += w;
        len -= (size_t)w;
        o->size += (uint64_t)w;
    }
    if (o->size - o->flushed >= WRITEBACK_STEP) {
        /* Asynchronous: overlaps the disk with the hashing; durability still comes from fsync. */
        (void)sync_file_range(o->fd, (off_t)o->flushed, (off_t)(o->size - o->flushed),
                              SYNC_FILE_RANGE_WRITE);
        o->flushed = o->size;
    }
    return 0;
}

int fwrel_out_pwrite(fwrel_out *o, uint64_t off, const void *data, size_t len)
{
    FWREL_ASSERT_ARG(o != NULL && (data != NULL || len == 0));
    if (off > o->size || len > o->size - off) {
        fwrel_error_set(FWREL_EUSAGE, "positional write past the end of the output");
        fwrel_error_mark_output();
        return FWREL_EUSAGE;
    }
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = pwrite(o->fd, p, len, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fwrel_error_set_errno(FWREL_EIO, errno, "write failed");
            fwrel_error_mark_output();
            return FWREL_EIO;
        }
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int fwrel_out_fill(fwrel_out *o, uint8_t b, size_t n)
{
    uint8_t buf[4096];
    memset(buf, b, sizeof(buf));
    while (n > 0) {
        size_t chunk = n < sizeof(buf) ? n : sizeof(buf);
        int error = fwrel_out_write(o, buf, chunk);
        if (error)
            return error;
        n -= chunk;
    }
    return 0;
}

uint64_t fwrel_out_size(const fwrel_out *o)
{
    return o == NULL ? 0 : o->size;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fwrel_error_set_errno(FWREL_EIO, errno, "cannot open directory");
    int r = fsync(fd);
    int e = errno;
    close(fd);
    if (r != 0 && e != EINVAL)
        return fwrel_error_set_errno(FWREL_EIO, e, "cannot sync directory");
    return 0;
}

int fwrel_out_commit(fwrel_out *o)
{
    FWREL_ASSERT_ARG(o != NULL);
    int error = FWREL_EIO;
    if (fsync(o->fd) != 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot sync output");
        goto done;
    }
    if (close(o->fd) != 0) {
        o->fd = -1;
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot close output");
        goto done;
    }
    o->fd = -1;
    if (o->flags & FWREL_OUT_FORCE) {
        if (rename(o->tmp, o->path) != 0) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot publish output");
            goto done;
        }
    } else {
        /* link() fails with EEXIST if the destination appeared meanwhile: no replace, ever. */
        if (link(o->tmp, o->path) != 0) {
            int e = errno;
            if (e == EEXIST)
                error = fwrel_error_set(FWREL_EIO, "exists (use --force to replace)");
            else
                error = fwrel_error_set_errno(FWREL_EIO, e, "cannot publish output");
            goto done;
        }
        unlink(o->tmp);
    }
    free(o->tmp);
    o->tmp = NULL;
    error = fsync_dir(o->dir);
done:
    if (error)
        fwrel_error_mark_output();
    if (o->tmp != NULL)
        unlink(o->tmp);
    out_free(o);
    return error;
}

void fwrel_out_abort(fwrel_out *o)
{
    if (o == NULL)
        return;
    if (o->tmp != NULL) {
        if (o->fd >= 0) {
            close(o->fd);
            o->fd = -1;
        }
        unlink(o->tmp);
    }
    out_free(o);
}

int fwrel_io_write_file(const char *path, const void *data, size_t len, unsigned flags, mode_t mode)
{
    fwrel_out *o = NULL;
    int error = fwrel_out_open(&o, path, flags, mode);
    if (error)
        return error;
    if ((error = fwrel_out_write(o, data, len)) != 0) {
        fwrel_out_abort(o);
        return error;
    }
    return fwrel_out_commit(o);
}
