/* testutil.c - small helpers shared by the unit tests (testutil.h). */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *testutil_vectors(void)
{
    const char *v = getenv("FWREL_VECTORS");
    static char probe[4096];
    if (v == NULL || v[0] == '\0')
        return NULL;
    snprintf(probe, sizeof(probe), "%s/vectors.json", v);
    return access(probe, R_OK) == 0 ? v : NULL;
}

const char *testutil_vector_path(const char *relative)
{
    static char path[4096];
    const char *v = testutil_vectors();
    if (v == NULL)
        return NULL;
    snprintf(path, sizeof(path), "%s/%s", v, relative);
    return path;
}

uint8_t *testutil_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    rewind(f);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf == NULL || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

const char *testutil_tmpdir(void)
{
    static char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/fwrel-unit.XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    return dir;
}

void testutil_rmtree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[4096];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            testutil_rmtree(p);
        else
            unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(path);
}

int testutil_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

void testutil_release_init(fwrel_release *r, const char *product, const char *version,
                           const char *device_type, uint64_t counter)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->product, sizeof(r->product), "%s", product);
    snprintf(r->version, sizeof(r->version), "%s", version);
    snprintf(r->channel, sizeof(r->channel), "prod");
    snprintf(r->chip, sizeof(r->chip), "esp32c3");
    snprintf(r->device_types[0], sizeof(r->device_types[0]), "%s", device_type);
    r->ndevice_types = 1;
    r->counter = counter;
    r->secure_version = 2;
    snprintf(r->tool_version, sizeof(r->tool_version), "0.1.0");
}
