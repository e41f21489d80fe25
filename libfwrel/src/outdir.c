/* outdir.c - a directory of outputs written all or none (outdir.h). */
#define _GNU_SOURCE
#include "fwrel/outdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fwrel/io.h"
#include "util.h"

#define NAME_MAX_LEN 200
#define OLD_PREFIX   ".old."

struct fwrel_outdir {
    char dir[4096], parent[4096], staging[4400];
    unsigned flags;
    int existed; /* the target existed: files are published one by one */
    int renamed; /* the staging directory became the target */
    char (*names)[NAME_MAX_LEN + 1];
    int *replaced; /* per file published: it replaced a file (kept as .old.NAME) */
    size_t n, npub;
};

static int exists_error(const char *dir)
{
    fwrel_error_set(FWREL_EIO, "exists (use --force to write into it)");
    return fwrel_error_about(FWREL_ABOUT_OUTPUT, dir);
}

/* Staging directories of this target left by a killed run: .BASE.fwrel-staging-XXXXXX. */
static void remove_leftovers(const char *parent, const char *base)
{
    char prefix[300], path[4500];
    DIR *d = opendir(parent);
    struct dirent *de;
    snprintf(prefix, sizeof(prefix), ".%.200s" FWREL_OUTDIR_STAGING, base);
    while (d != NULL && (de = readdir(d)) != NULL) {
        struct stat st;
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 ||
            strlen(de->d_name) != strlen(prefix) + 6)
            continue;
        snprintf(path, sizeof(path), "%s/%s", parent, de->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid())
            fwrel_remove_flat(path);
    }
    if (d != NULL)
        closedir(d);
}

int fwrel_outdir_open(fwrel_outdir **out, const char *dir, unsigned flags)
{
    FWREL_ASSERT_ARG(out != NULL && dir != NULL);
    fwrel_outdir *od = NULL;
    struct stat st;
    size_t len = strlen(dir);

    *out = NULL;
    while (len > 1 && dir[len - 1] == '/')
        len--;
    if (len == 0 || len >= 4000)
        return fwrel_error_set(FWREL_EUSAGE, "output directory path empty or too long");
    if (lstat(dir, &st) == 0 && (!(flags & FWREL_OUT_FORCE) || !S_ISDIR(st.st_mode)))
        return exists_error(dir);
    if ((od = calloc(1, sizeof(*od))) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    od->flags = flags;
    od->existed = lstat(dir, &st) == 0;
    memcpy(od->dir, dir, len);
    od->dir[len] = '\0';
    const char *slash = strrchr(od->dir, '/'), *base = slash != NULL ? slash + 1 : od->dir;
    if (slash == NULL)
        snprintf(od->parent, sizeof(od->parent), ".");
    else if (slash == od->dir)
        snprintf(od->parent, sizeof(od->parent), "/");
    else
        snprintf(od->parent, sizeof(od->parent), "%.*s", (int)(slash - od->dir), od->dir);
    if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
        strlen(base) > NAME_MAX_LEN) {
        free(od);
        return fwrel_error_set(FWREL_EUSAGE, "not a directory name");
    }
    remove_leftovers(od->parent, base);
    snprintf(od->staging, sizeof(od->staging), "%s/.%.200s" FWREL_OUTDIR_STAGING "XXXXXX",
             od->parent, base);
    if (mkdtemp(od->staging) == NULL) {
        int e = errno;
        free(od);
        fwrel_error_set_errno(FWREL_EIO, e, "cannot create a staging directory");
        return fwrel_error_about(FWREL_ABOUT_OUTPUT, dir);
    }
    *out = od;
    return 0;
}

int fwrel_outdir_path(char *out, size_t size, fwrel_outdir *od, const char *name)
{
    FWREL_ASSERT_ARG(out != NULL && od != NULL && name != NULL);
    if (name[0] == '\0' || name[0] == '.' || strchr(name, '/') != NULL ||
        strlen(name) > NAME_MAX_LEN)
        return fwrel_error_set(FWREL_EUSAGE, "bad output file name");
    for (size_t i = 0; i < od->n; i++)
        if (strcmp(od->names[i], name) == 0)
            return fwrel_error_set(FWREL_EUSAGE, "%s: written twice", name);
    char(*v)[NAME_MAX_LEN + 1] = realloc(od->names, (od->n + 1) * sizeof(*v));
    int *r = v != NULL ? realloc(od->replaced, (od->n + 1) * sizeof(*r)) : NULL;
    if (v != NULL)
        od->names = v;
    if (r == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    od->replaced = r;
    int n = snprintf(out, size, "%s/%s", od->staging, name);
    if (n < 0 || (size_t)n >= size)
        return fwrel_error_set(FWREL_EUSAGE, "output path too long");
    memcpy(od->names[od->n], name, strlen(name) + 1);
    od->replaced[od->n++] = 0;
    return 0;
}

/* Take back the files published into an existing directory, the last first. */
static void unpublish(fwrel_outdir *od)
{
    char tgt[4400], old[4700];
    for (; od->npub > 0; od->npub--) {
        const char *name = od->names[od->npub - 1];
        snprintf(tgt, sizeof(tgt), "%s/%s", od->dir, name);
        if (od->replaced[od->npub - 1]) {
            snprintf(old, sizeof(old), "%s/" OLD_PREFIX "%s", od->staging, name);
            rename(old, tgt);
        } else {
            unlink(tgt);
        }
    }
    if (fwrel_fsync_dir(od->dir) != 0)
        fwrel_error_clear();
}

/* Publish into the existing target: each file linked (new) or renamed over (replaced). */
static int publish_files(fwrel_outdir *od)
{
    char src[4700], tgt[4400], old[4700];
    struct stat st;
    int error = 0;

    for (; od->npub < od->n; od->npub++) {
        const char *name = od->names[od->npub];
        snprintf(src, sizeof(src), "%s/%s", od->staging, name);
        snprintf(tgt, sizeof(tgt), "%s/%s", od->dir, name);
        if ((error = fwrel_test_hook("outdir.file")) != 0)
            break;
        if (lstat(tgt, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                error = fwrel_error_set(FWREL_EIO, "%s: is a directory", name);
                break;
            }
            snprintf(old, sizeof(old), "%s/" OLD_PREFIX "%s", od->staging, name);
            if (link(tgt, old) != 0) {
                error =
                    fwrel_error_set_errno(FWREL_EIO, errno, "%s: cannot keep the old file", name);
                break;
            }
            if (rename(src, tgt) != 0) {
                error = fwrel_error_set_errno(FWREL_EIO, errno, "%s: cannot replace", name);
                unlink(old);
                break;
            }
            od->replaced[od->npub] = 1;
        } else if (link(src, tgt) != 0) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "%s: cannot publish", name);
            break;
        }
    }
    if (error == 0)
        error = fwrel_fsync_dir(od->dir);
    if (error)
        unpublish(od);
    return error;
}

int fwrel_outdir_publish(fwrel_outdir *od)
{
    FWREL_ASSERT_ARG(od != NULL);
    struct stat st;
    int error;

    if ((error = fwrel_fsync_dir(od->staging)) != 0 ||
        (error = fwrel_test_hook("outdir.publish")) != 0)
        goto done;
    if (od->existed) {
        error = publish_files(od);
        goto done;
    }
    /* A new target: the staging directory, renamed. Never over a directory made meanwhile. */
    if (renameat2(AT_FDCWD, od->staging, AT_FDCWD, od->dir, RENAME_NOREPLACE) != 0) {
        if (errno == EEXIST) {
            error = exists_error(od->dir);
            goto done;
        }
        if ((errno != EINVAL && errno != ENOSYS) || lstat(od->dir, &st) == 0 ||
            rename(od->staging, od->dir) != 0) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot publish the directory");
            goto done;
        }
    }
    od->renamed = 1;
    if ((error = fwrel_fsync_dir(od->parent)) != 0) {
        if (rename(od->dir, od->staging) == 0)
            od->renamed = 0;
    }
done:
    if (error)
        fwrel_error_about(FWREL_ABOUT_OUTPUT, od->dir);
    return error;
}

static void outdir_free(fwrel_outdir *od)
{
    free(od->names);
    free(od->replaced);
    free(od);
}

void fwrel_outdir_finish(fwrel_outdir *od)
{
    if (od == NULL)
        return;
    if (!od->renamed)
        fwrel_remove_flat(od->staging); /* the replaced files and the staged names */
    outdir_free(od);
}

void fwrel_outdir_abort(fwrel_outdir *od)
{
    if (od == NULL)
        return;
    if (od->renamed) {
        /* The target did not exist before: it goes (back to the staging name, then away). */
        if (rename(od->dir, od->staging) != 0)
            snprintf(od->staging, sizeof(od->staging), "%s", od->dir);
        if (fwrel_fsync_dir(od->parent) != 0)
            fwrel_error_clear();
    } else {
        unpublish(od);
    }
    fwrel_remove_flat(od->staging);
    outdir_free(od);
}
