/* fixture.c - what the unit tests' cmocka fixtures share (fixture.h). */
#include "fixture.h"

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

#include "gpghome.h"
#include "testutil.h"

struct deferred {
    void (*fn)(void *);
    void *arg;
};
static struct deferred *cleanups;
static size_t ncleanups, cleanups_cap;

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    *cap = *cap ? *cap * 2 : 16;
    p = realloc(p, *cap * size);
    if (p == NULL)
        abort();
    return p;
}

void fixture_defer(void (*fn)(void *), void *arg)
{
    cleanups = grow(cleanups, &cleanups_cap, ncleanups, sizeof(*cleanups));
    cleanups[ncleanups++] = (struct deferred){fn, arg};
}

static void rmtree_free(void *dir)
{
    testutil_rmtree(dir);
    free(dir);
}

const char *fixture_tmpdir(void)
{
    char *dir = strdup(testutil_tmpdir());
    if (dir == NULL)
        abort();
    fixture_defer(rmtree_free, dir);
    return dir;
}

static void gpghome_kill_free(void *home)
{
    gpghome_kill(home);
    free(home);
}

void fixture_defer_gpghome(char *home)
{
    fixture_defer(gpghome_kill_free, home);
}

static void key_free(void *key)
{
    fwrel_key_free(key);
}

void fixture_defer_key(fwrel_pkey *key)
{
    fixture_defer(key_free, key);
}

const char *fixture_path(const char *dir, const char *name, int fresh)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p == NULL)
        abort();
    snprintf(p, n, "%s/%s", dir, name);
    if (fresh)
        unlink(p);
    fixture_defer(free, p);
    return p;
}

const char *fixture_gpg_homes(char **home, char **other)
{
    const char *dir = fixture_tmpdir();
    *home = gpghome_create(dir, "gnupg");
    fixture_defer_gpghome(*home);
    *other = gpghome_create(dir, "other");
    fixture_defer_gpghome(*other);
    return dir;
}

const char *fixture_secret(const char *dir, const char *name, const char *text)
{
    const char *path = fixture_path(dir, name, 0);
    size_t n = strlen(text);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return NULL;
    int ok = write(fd, text, n) == (ssize_t)n;
    if (close(fd) != 0 || !ok)
        return NULL;
    return path;
}

int fixture_teardown(void **state)
{
    (void)state;
    while (ncleanups > 0) {
        ncleanups--;
        cleanups[ncleanups].fn(cleanups[ncleanups].arg);
    }
    free(cleanups);
    cleanups = NULL;
    cleanups_cap = 0;
    return 0;
}

void fixture_write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

void fixture_wait_ok(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int fixture_vectors_or_skip(void)
{
    if (testutil_vectors() != NULL)
        return 1;
    print_message("skipped: no vectors ($FWREL_VECTORS unset)\n");
    skip();
    return 0;
}
