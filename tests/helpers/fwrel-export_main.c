/* fwrel-export - render an export into a directory (tests only; fwrel-bundle puts exports into
 * the bundle instead). Values come as NAME=VALUE arguments; --image and --manifest name the
 * files copied for the export's artifacts and fill image_sha256/image_md5/image_size and
 * manifest_sha256/manifest_size (--secure-fota-manifest likewise); --hmac-key names a 32-byte raw
 * key for the "hmac" variable. device_type=T (with product and counter) sets the targets list for
 * that one type; with product, channel and counter the releases list holds this release alone (no
 * history). When rendering fails it prints the library's one-line message and creates nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fwrel/export.h"
#include "fwrel/io.h"
#include "util.h"

static int usage(void)
{
    fprintf(stderr, "usage: fwrel-export --root DIR [--image F] [--manifest F]\n"
                    "                    [--secure-fota-manifest F] [--hmac-key F]\n"
                    "                    NAME OUTDIR [VAR=VALUE]...\n");
    return 2;
}

static int fail(const char *what)
{
    fprintf(stderr, "fwrel-export: %s: %s\n", what, fwrel_error_last()->message);
    return fwrel_error_last()->code ? fwrel_error_last()->code : 5;
}

/* Set <prefix>_sha256 and <prefix>_size from a file. */
static int digest_vars(fwrel_export_vars *vars, const char *prefix, const char *path)
{
    fwrel_src src;
    uint8_t d[32];
    char hex[65], name[64], size[32];
    int error = fwrel_src_open(&src, path, FWREL_IMAGE_MAX);
    if (error == 0)
        error = fwrel_digest_src(d, NULL, &src, src.size);
    if (error == 0) {
        fwrel_hex(hex, d, sizeof(d));
        snprintf(name, sizeof(name), "%s_sha256", prefix);
        snprintf(size, sizeof(size), "%llu", (unsigned long long)src.size);
        error = fwrel_export_vars_set(vars, name, hex);
        snprintf(name, sizeof(name), "%s_size", prefix);
        if (error == 0)
            error = fwrel_export_vars_set(vars, name, size);
    }
    fwrel_src_close(&src);
    return error;
}

/* mkdir -p of the directories of rel below out. */
static int make_dirs(const char *out, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", out, rel);
    for (char *p = path + strlen(out) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = 0;
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *root = NULL, *image = NULL, *manifest = NULL, *hmac_key = NULL, *sfota = NULL;
    fwrel_export_vars *vars = NULL;
    fwrel_export_file *files = NULL;
    size_t count = 0;
    int i = 1, rc = 0;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--root") == 0)
            root = argv[i + 1];
        else if (strcmp(argv[i], "--image") == 0)
            image = argv[i + 1];
        else if (strcmp(argv[i], "--manifest") == 0)
            manifest = argv[i + 1];
        else if (strcmp(argv[i], "--secure-fota-manifest") == 0)
            sfota = argv[i + 1];
        else if (strcmp(argv[i], "--hmac-key") == 0)
            hmac_key = argv[i + 1];
        else
            return usage();
    }
    if (argc - i < 2 || root == NULL)
        return usage();
    const char *name = argv[i], *outdir = argv[i + 1];
    if (fwrel_export_vars_new(&vars) != 0)
        return fail("variables");
    for (int k = i + 2; k < argc; k++) {
        char *eq = strchr(argv[k], '=');
        if (eq == NULL)
            return usage();
        *eq = 0;
        if (fwrel_export_vars_set(vars, argv[k], eq + 1) != 0) {
            rc = fail(argv[k]);
            goto done;
        }
    }
    if (image != NULL) {
        fwrel_src src;
        int error = fwrel_src_open(&src, image, FWREL_IMAGE_MAX);
        if (error == 0) {
            error = fwrel_export_vars_set_image(vars, &src);
            fwrel_src_close(&src);
        }
        if (error) {
            rc = fail(image);
            goto done;
        }
    }
    if (manifest != NULL && digest_vars(vars, "manifest", manifest) != 0) {
        rc = fail(manifest);
        goto done;
    }
    if (sfota != NULL && digest_vars(vars, "secure_fota_manifest", sfota) != 0) {
        rc = fail(sfota);
        goto done;
    }
    if (hmac_key != NULL) {
        uint8_t *key = NULL;
        size_t klen = 0;
        fwrel_src src;
        int error = fwrel_io_read_small(&key, &klen, hmac_key, 64);
        if (error == 0 && image == NULL)
            error = fwrel_error_set(FWREL_EUSAGE, "--hmac-key needs --image");
        if (error == 0 && (error = fwrel_src_open(&src, image, FWREL_IMAGE_MAX)) == 0) {
            error = fwrel_export_vars_set_hmac(vars, key, klen, &src);
            fwrel_src_close(&src);
        }
        fwrel_io_free_secret(key, klen);
        if (error) {
            rc = fail(hmac_key);
            goto done;
        }
    }
    const char *type = fwrel_export_vars_get(vars, "device_type");
    if (type != NULL && fwrel_export_vars_get(vars, "product") != NULL &&
        fwrel_export_vars_get(vars, "counter") != NULL &&
        fwrel_export_vars_set_targets(vars, &type, 1, NULL) != 0) {
        rc = fail("device_type");
        goto done;
    }
    if (fwrel_export_vars_get(vars, "product") != NULL &&
        fwrel_export_vars_get(vars, "channel") != NULL &&
        fwrel_export_vars_get(vars, "counter") != NULL &&
        fwrel_export_vars_set_releases(vars, NULL) != 0) {
        rc = fail("releases");
        goto done;
    }
    if (fwrel_export_render(&files, &count, root, name, vars) != 0) {
        rc = fail(name);
        goto done;
    }
    if (mkdir(outdir, 0755) != 0) {
        fprintf(stderr, "fwrel-export: %s: cannot create: %s\n", outdir, strerror(errno));
        rc = 5;
        goto done;
    }
    for (size_t k = 0; k < count; k++) {
        char path[4096];
        uint8_t *data = files[k].data;
        size_t len = files[k].len;
        const char *src = NULL;
        if (files[k].artifact == NULL)
            src = NULL;
        else if (strcmp(files[k].artifact, FWREL_EXPORT_ARTIFACT_IMAGE) == 0)
            src = image;
        else if (strcmp(files[k].artifact, FWREL_EXPORT_ARTIFACT_MANIFEST) == 0)
            src = manifest;
        else
            src = sfota;
        uint8_t *copy = NULL;
        if (files[k].artifact != NULL) {
            if (src == NULL) {
                fprintf(stderr, "fwrel-export: %s: needs --%s\n", files[k].path, files[k].artifact);
                rc = 2;
                goto done;
            }
            if (fwrel_io_read_small(&copy, &len, src, FWREL_IMAGE_MAX) != 0) {
                rc = fail(src);
                goto done;
            }
            data = copy;
        }
        snprintf(path, sizeof(path), "%s/%s", outdir, files[k].path);
        int error =
            make_dirs(outdir, files[k].path) != 0
                ? fwrel_error_set(FWREL_EIO, "cannot create a directory")
                : fwrel_io_write_file(path, data, len, 0, files[k].executable ? 0755 : 0644);
        free(copy);
        if (error) {
            rc = fail(path);
            goto done;
        }
    }
done:
    fwrel_export_files_free(files, count);
    fwrel_export_vars_free(vars);
    return rc;
}
