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

#include <pthread.h>

#include <openssl/crypto.h>

static int src_open(fwrel_src *src, const char *path, uint64_t max)
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

int fwrel_src_open(fwrel_src *src, const char *path, uint64_t max)
{
    int error = src_open(src, path, max);
    return error ? fwrel_error_about(FWREL_ABOUT_INPUT, path) : 0;
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
        return fwrel_error_set(
            FWREL_EFORMAT, "truncated: %zu bytes needed at offset %llu, %llu left", n,
            (unsigned long long)src->pos, (unsigned long long)(src->size - src->pos));
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
    if ((error = fwrel_src_read(&src, buf, (size_t)src.size)) != 0) {
        fwrel_error_about(FWREL_ABOUT_INPUT, path);
        goto done;
    }
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
        fwrel_error_about(FWREL_ABOUT_OUTPUT, path);
    return error;
}

/* Start writeback every this many bytes, so the final fsync has little left to do. */
#define WRITEBACK_STEP ((uint64_t)1 << 20)

/*
 * FWREL_OUT_STREAM: two aligned buffers of DIRECT_CHUNK bytes. The caller fills one while the
 * writer thread writes the other with O_DIRECT, so the disk works while the caller hashes and
 * encrypts, and no CPU goes into the page cache. A buffer goes to the writer when it is full, or
 * as soon as the writer is idle and DIRECT_EAGER bytes are ready, so the disk never waits for a
 * full buffer and little is left to write at the commit. Every write starts at a multiple of
 * DIRECT_ALIGN in the file (the unaligned rest moves to the other buffer); the tail is written
 * padded to DIRECT_ALIGN and truncated.
 */
#define DIRECT_CHUNK ((size_t)512 << 10)
#define DIRECT_EAGER ((size_t)128 << 10)
#define DIRECT_ALIGN ((size_t)4096)

struct direct {
    uint8_t *buf[2];
    int cur;          /* buffer the caller fills */
    size_t fill;      /* bytes in buf[cur] */
    uint64_t cur_off; /* file offset of buf[cur] */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, busy, quit;
    int job; /* buffer the writer writes */
    uint64_t job_off;
    size_t job_len;
    int job_errno;              /* first write error of the writer, 0 if none */
    uint8_t head[DIRECT_ALIGN]; /* the file's first block once written, for a patch */
    int has_head;
};

struct fwrel_out {
    int fd;
    unsigned flags;
    uint64_t size;
    uint64_t flushed; /* bytes handed to writeback already */
    char *path;
    char *tmp;
    char *dir;
    struct direct *d; /* FWREL_OUT_STREAM with O_DIRECT in force, else NULL */
    int anon;         /* 1: an unnamed O_TMPFILE file (nothing to clean up if killed) */
    int scratch;      /* 1: fwrel_out_open_unnamed(): never published, read back */
};

/* Write all of len bytes at off, retrying short writes and EINTR; 0 or errno. */
static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* pwrite_all for O_DIRECT: a filesystem that takes the flag but refuses the write gets ordinary
 * writes. */
static int direct_pwrite(int fd, const uint8_t *p, size_t len, uint64_t off)
{
    int e = pwrite_all(fd, p, len, off);
    if (e == EINVAL) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0 && (fl & O_DIRECT) && fcntl(fd, F_SETFL, fl & ~O_DIRECT) == 0)
            e = pwrite_all(fd, p, len, off);
    }
    return e;
}

static void *direct_writer(void *arg)
{
    fwrel_out *o = arg;
    struct direct *d = o->d;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->busy && !d->quit)
            pthread_cond_wait(&d->cv, &d->mu);
        if (!d->busy)
            break;
        int job = d->job;
        uint64_t off = d->job_off;
        size_t len = d->job_len;
        pthread_mutex_unlock(&d->mu);
        int e = direct_pwrite(o->fd, d->buf[job], len, off);
        pthread_mutex_lock(&d->mu);
        if (e != 0 && d->job_errno == 0)
            d->job_errno = e;
        d->busy = 0;
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* Wait until the writer is idle; its first error, as errno, or 0. */
static int direct_wait(struct direct *d)
{
    pthread_mutex_lock(&d->mu);
    while (d->busy)
        pthread_cond_wait(&d->cv, &d->mu);
    int e = d->job_errno;
    pthread_mutex_unlock(&d->mu);
    return e;
}

static void direct_free(fwrel_out *o)
{
    struct direct *d = o->d;
    if (d == NULL)
        return;
    if (d->started) {
        pthread_mutex_lock(&d->mu);
        d->quit = 1;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
    }
    free(d->buf[0]);
    free(d->buf[1]);
    free(d);
    o->d = NULL;
}

/* Switch an output to O_DIRECT with its writer; on any refusal stay with buffered writes. */
static void direct_start(fwrel_out *o)
{
    struct direct *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return;
    o->d = d;
    if (posix_memalign((void **)&d->buf[0], DIRECT_ALIGN, DIRECT_CHUNK) != 0 ||
        posix_memalign((void **)&d->buf[1], DIRECT_ALIGN, DIRECT_CHUNK) != 0) {
        direct_free(o);
        return;
    }
    int fl = fcntl(o->fd, F_GETFL);
    if (fl < 0 || fcntl(o->fd, F_SETFL, fl | O_DIRECT) != 0) {
        direct_free(o);
        return;
    }
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        direct_free(o);
        (void)fcntl(o->fd, F_SETFL, fl);
        return;
    }
    if (pthread_cond_init(&d->cv, NULL) != 0) {
        pthread_mutex_destroy(&d->mu);
        direct_free(o);
        (void)fcntl(o->fd, F_SETFL, fl);
        return;
    }
    if (pthread_create(&d->thread, NULL, direct_writer, o) != 0) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
        direct_free(o);
        (void)fcntl(o->fd, F_SETFL, fl);
        return;
    }
    d->started = 1;
}

/* The current error is about output o: its path, none for a scratch file (unnamed). */
static int out_error(const fwrel_out *o)
{
    return fwrel_error_about(FWREL_ABOUT_OUTPUT, o != NULL && !o->scratch ? o->path : NULL);
}

/* An output write failed with errno e (every write path of this file says so alike). */
static int write_error(const fwrel_out *o, int e)
{
    fwrel_error_set_errno(FWREL_EIO, e, "write failed");
    return out_error(o);
}

/* Whether the writer waits for work. */
static int direct_idle(struct direct *d)
{
    pthread_mutex_lock(&d->mu);
    int idle = !d->busy;
    pthread_mutex_unlock(&d->mu);
    return idle;
}

/* Hand the aligned part of the current buffer to the writer (after the previous one is
 * written); the rest starts the other buffer. */
static int direct_submit(fwrel_out *o)
{
    struct direct *d = o->d;
    size_t len = d->fill & ~(DIRECT_ALIGN - 1);
    pthread_mutex_lock(&d->mu);
    while (d->busy)
        pthread_cond_wait(&d->cv, &d->mu);
    int e = d->job_errno;
    if (e == 0) {
        d->job = d->cur;
        d->job_off = d->cur_off;
        d->job_len = len;
        d->busy = 1;
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    if (e != 0)
        return write_error(o, e);
    if (d->cur_off == 0) {
        memcpy(d->head, d->buf[d->cur], DIRECT_ALIGN);
        d->has_head = 1;
    }
    /* The writer only reads this buffer meanwhile. */
    memcpy(d->buf[d->cur ^ 1], d->buf[d->cur] + len, d->fill - len);
    d->cur ^= 1;
    d->cur_off += len;
    d->fill -= len;
    return 0;
}

/*
 * Overwrite [off, off+len) of bytes already on the disk (below cur_off): read, modify and
 * write the aligned blocks around it. Rare (a header's tag, once per image).
 */
static int direct_patch(fwrel_out *o, uint64_t off, const uint8_t *p, size_t len)
{
    struct direct *d = o->d;
    uint8_t *blk = NULL;
    int e = 0;
    if (posix_memalign((void **)&blk, DIRECT_ALIGN, DIRECT_ALIGN) != 0)
        return write_error(o, ENOMEM);
    while (len > 0 && e == 0) {
        uint64_t base = off & ~(uint64_t)(DIRECT_ALIGN - 1);
        size_t in = (size_t)(off - base);
        size_t n = DIRECT_ALIGN - in < len ? DIRECT_ALIGN - in : len;
        if (base == 0 && d->has_head) { /* the usual case: no read from the disk */
            memcpy(d->head + in, p, n);
            memcpy(blk, d->head, DIRECT_ALIGN);
        } else {
            ssize_t r = pread(o->fd, blk, DIRECT_ALIGN, (off_t)base);
            if (r != (ssize_t)DIRECT_ALIGN) {
                e = r < 0 ? errno : EIO;
                break;
            }
            memcpy(blk + in, p, n);
        }
        e = direct_pwrite(o->fd, blk, DIRECT_ALIGN, base);
        off += n;
        p += n;
        len -= n;
    }
    free(blk);
    return e ? write_error(o, e) : 0;
}

/* Write what is left in the current buffer (padded to a block), then cut the file to size. */
static int direct_finish(fwrel_out *o)
{
    struct direct *d = o->d;
    int e = direct_wait(d);
    if (e == 0 && d->fill > 0) {
        size_t padded = (d->fill + DIRECT_ALIGN - 1) & ~(DIRECT_ALIGN - 1);
        memset(d->buf[d->cur] + d->fill, 0, padded - d->fill);
        e = direct_pwrite(o->fd, d->buf[d->cur], padded, d->cur_off);
        if (e == 0 && ftruncate(o->fd, (off_t)o->size) != 0)
            e = errno;
    }
    direct_free(o);
    return e ? write_error(o, e) : 0;
}

static void out_free(fwrel_out *o)
{
    if (o == NULL)
        return;
    direct_free(o);
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
    /* A hidden temporary beside the destination, so rename/link stay on one filesystem.
     * Preferably unnamed (O_TMPFILE): a process killed before the commit leaves nothing; the
     * name is then used only for a moment by a --force commit. */
    o->fd = open(o->dir, ((flags & FWREL_OUT_STREAM) ? O_RDWR : O_WRONLY) | O_TMPFILE | O_CLOEXEC,
                 mode & 0777);
    o->anon = o->fd >= 0;
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
        if (o->anon)
            break;
        o->fd = open(o->tmp,
                     ((flags & FWREL_OUT_STREAM) ? O_RDWR : O_WRONLY) | O_CREAT | O_EXCL |
                         O_NOFOLLOW | O_CLOEXEC,
                     mode & 0777);
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
        if (!o->anon)
            unlink(o->tmp);
        goto done;
    }
    if (flags & FWREL_OUT_STREAM)
        direct_start(o);
    *out = o;
    o = NULL;
    error = 0;
done:
    if (error)
        fwrel_error_about(FWREL_ABOUT_OUTPUT, path);
    free(copy);
    out_free(o);
    return error;
}

uint8_t *fwrel_out_room(fwrel_out *o, size_t *len)
{
    if (o == NULL || o->d == NULL) {
        *len = 0;
        return NULL;
    }
    *len = DIRECT_CHUNK - o->d->fill; /* never 0: a full buffer goes to the writer at once */
    return o->d->buf[o->d->cur] + o->d->fill;
}

int fwrel_out_advance(fwrel_out *o, size_t n)
{
    FWREL_ASSERT_ARG(o != NULL && o->d != NULL && n <= DIRECT_CHUNK - o->d->fill);
    struct direct *d = o->d;
    d->fill += n;
    o->size += n;
    if (d->fill == DIRECT_CHUNK || (d->fill >= DIRECT_EAGER && direct_idle(d)))
        return direct_submit(o);
    return 0;
}

int fwrel_out_write(fwrel_out *o, const void *data, size_t len)
{
    FWREL_ASSERT_ARG(o != NULL && (data != NULL || len == 0));
    const uint8_t *p = data;
    if (o->d != NULL) {
        while (len > 0) {
            size_t n;
            uint8_t *room = fwrel_out_room(o, &n);
            n = n < len ? n : len;
            memcpy(room, p, n);
            int error = fwrel_out_advance(o, n);
            if (error)
                return error;
            p += n;
            len -= n;
        }
        return 0;
    }
    while (len > 0) {
        ssize_t w = write(o->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return write_error(o, errno);
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
        fwrel_error_set(FWREL_EINTERNAL, "positional write past the end of the output");
        out_error(o);
        return FWREL_EINTERNAL;
    }
    const uint8_t *p = data;
    if (o->d != NULL) {
        struct direct *d = o->d;
        int e = direct_wait(d);
        if (e != 0)
            return write_error(o, e);
        if (off < d->cur_off) {
            size_t n = d->cur_off - off < len ? (size_t)(d->cur_off - off) : len;
            int error = direct_patch(o, off, p, n);
            if (error)
                return error;
            off += n;
            p += n;
            len -= n;
        }
        if (len > 0)
            memcpy(d->buf[d->cur] + (off - d->cur_off), p, len);
        return 0;
    }
    int e = pwrite_all(o->fd, p, len, off);
    return e ? write_error(o, e) : 0;
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

/* A failed no-replace publication: the destination that appeared meanwhile, or why not. */
static int publish_error(int e)
{
    if (e == EEXIST)
        return fwrel_error_set(FWREL_EIO, "exists (use --force to replace)");
    return fwrel_error_set_errno(FWREL_EIO, e, "cannot publish output");
}

int fwrel_out_commit(fwrel_out *o)
{
    FWREL_ASSERT_ARG(o != NULL && !o->scratch);
    int error = FWREL_EIO;
    if (o->d != NULL && (error = direct_finish(o)) != 0)
        goto done;
    error = FWREL_EIO;
    if (fsync(o->fd) != 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot sync output");
        goto done;
    }
    /* The unnamed file is linked straight to its path (no replace: linkat fails with EEXIST),
     * or with --force to its temporary name, which the rename below then publishes. */
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", o->fd);
    if (o->anon && !(o->flags & FWREL_OUT_FORCE)) {
        if (linkat(AT_FDCWD, proc, AT_FDCWD, o->path, AT_SYMLINK_FOLLOW) != 0) {
            error = publish_error(errno);
            goto done;
        }
    } else if (o->anon && linkat(AT_FDCWD, proc, AT_FDCWD, o->tmp, AT_SYMLINK_FOLLOW) != 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot publish output");
        goto done;
    } else if (o->anon) {
        o->anon = 0; /* named from here on */
    }
    if (close(o->fd) != 0) {
        o->fd = -1;
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot close output");
        if (o->anon) /* linked to its path above: take it back, nothing is left */
            unlink(o->path);
        goto done;
    }
    o->fd = -1;
    if (o->flags & FWREL_OUT_FORCE) {
        if (rename(o->tmp, o->path) != 0) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot publish output");
            goto done;
        }
    } else if (!o->anon) {
        /* link() fails with EEXIST if the destination appeared meanwhile: no replace, ever. */
        if (link(o->tmp, o->path) != 0) {
            error = publish_error(errno);
            goto done;
        }
        unlink(o->tmp);
    }
    free(o->tmp);
    o->tmp = NULL;
    error = fsync_dir(o->dir);
done:
    if (error)
        out_error(o);
    if (o->tmp != NULL && !o->anon)
        unlink(o->tmp);
    out_free(o);
    return error;
}

void fwrel_out_abort(fwrel_out *o)
{
    if (o == NULL)
        return;
    direct_free(o); /* the writer thread first: it may be writing to the descriptor */
    if (o->anon) {
        if (o->fd >= 0)
            close(o->fd); /* the unnamed file goes with its last descriptor */
        o->fd = -1;
    } else if (o->tmp != NULL) {
        if (o->fd >= 0) {
            close(o->fd);
            o->fd = -1;
        }
        unlink(o->tmp);
    }
    out_free(o);
}

int fwrel_out_open_unnamed(fwrel_out **out, const char *dir, unsigned flags)
{
    FWREL_ASSERT_ARG(out != NULL && dir != NULL && (flags & ~(unsigned)FWREL_OUT_STREAM) == 0);
    fwrel_out *o = NULL;
    int error;

    *out = NULL;
    if ((o = calloc(1, sizeof(*o))) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    o->flags = flags;
    o->scratch = 1;
    o->anon = 1; /* fwrel_out_abort() only closes it */
    o->fd = open(dir, O_RDWR | O_TMPFILE | O_EXCL | O_CLOEXEC, 0600);
    if (o->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        /* No O_TMPFILE here: a name for as long as it takes to unlink it, never with data. */
        size_t n = strlen(dir) + 24;
        if ((o->tmp = malloc(n)) == NULL) {
            error = fwrel_error_set(FWREL_EIO, "out of memory");
            goto done;
        }
        snprintf(o->tmp, n, "%s/.fwrel-XXXXXX", dir);
        o->fd = mkostemp(o->tmp, O_CLOEXEC);
        if (o->fd >= 0 && unlink(o->tmp) != 0) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot unlink a scratch file");
            goto done;
        }
        free(o->tmp);
        o->tmp = NULL;
    }
    if (o->fd < 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot create a scratch file in %s", dir);
        goto done;
    }
    if (flags & FWREL_OUT_STREAM)
        direct_start(o);
    *out = o;
    o = NULL;
    error = 0;
done:
    if (error)
        fwrel_error_about(FWREL_ABOUT_OUTPUT, NULL);
    out_free(o);
    return error;
}

int fwrel_out_finish_src(fwrel_out *o, fwrel_src *src)
{
    FWREL_ASSERT_ARG(o != NULL && o->scratch && src != NULL);
    struct stat st;
    int error = 0;
    memset(src, 0, sizeof(*src));
    src->fd = -1;
    if (o->d != NULL && (error = direct_finish(o)) != 0)
        goto done;
    /* Read back through the page cache: O_DIRECT would want aligned buffers. */
    int fl = fcntl(o->fd, F_GETFL);
    if (fl < 0 || ((fl & O_DIRECT) && fcntl(o->fd, F_SETFL, fl & ~O_DIRECT) != 0) ||
        fstat(o->fd, &st) != 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot read a scratch file back");
        out_error(o);
        goto done;
    }
    src->fd = o->fd;
    src->size = (uint64_t)st.st_size;
    o->fd = -1;
done:
    out_free(o);
    return error;
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
