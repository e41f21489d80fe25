/* fwrel-mkbundle - build release bundles from parts in tests (fwrel-bundle makes real ones).
 *
 *   fwrel-mkbundle record -o RELEASE.json KEY=VALUE...
 *       a canonical release.json (fwrel_release_encode). Keys: product version channel chip
 *       device_type (repeatable) counter secure_version created expires policy_sha256
 *       input=FILE signed=FILE image=FILE manifest=FILE (digest and size of the file; image is
 *       named firmware.enc, manifest manifest.fwm) encrypted=0|1 approver=FPR (repeatable)
 *       required=N sign_key=ID manifest_signer=ID threshold=N recipient=ID image_key=ID.
 *   fwrel-mkbundle write [--sums] [--mtime N] -o OUT.fwb [-C DIR] [NAME=FILE]...
 *       a bundle of every file under DIR (member name = path below DIR) and the NAME=FILE
 *       members (which replace those of DIR); --sums (re)makes SHA256SUMS over them.
 *   fwrel-mkbundle approve BUNDLE FPR SIG.asc
 *       add approvals/FPR.asc (fwrel_bundle_add_approval).
 * Errors print the library's message and exit with its code. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fwrel/bundle.h"
#include "fwrel/io.h"
#include "fwrel/release.h"
#include "util.h"

#define MAX_MEMBERS 256

static int fail(const char *what)
{
    fprintf(stderr, "fwrel-mkbundle: %s: %s\n", what, fwrel_error_last()->message);
    return fwrel_error_last()->code ? fwrel_error_last()->code : 5;
}

static int usage(void)
{
    fprintf(stderr, "usage: fwrel-mkbundle record -o RELEASE.json KEY=VALUE...\n"
                    "       fwrel-mkbundle write [--sums] [--mtime N] -o OUT [-C DIR] "
                    "[NAME=FILE]...\n"
                    "       fwrel-mkbundle approve BUNDLE FPR SIG.asc\n");
    return 2;
}

static int file_digest(fwrel_release_file *f, const char *name, const char *path)
{
    fwrel_src src;
    uint8_t d[32];
    int error = fwrel_src_open(&src, path, FWREL_IMAGE_MAX);
    if (error == 0)
        error = fwrel_digest_src(d, NULL, &src, src.size);
    if (error == 0) {
        fwrel_hex(f->sha256, d, 32);
        f->size = src.size;
        snprintf(f->name, sizeof(f->name), "%s", name);
    }
    fwrel_src_close(&src);
    return error;
}

static int num(uint64_t *out, const char *v, uint64_t max)
{
    return fwrel_parse_u64(out, v, max) == 0 ? 0 : -1;
}

static int record(int argc, char **argv)
{
    fwrel_release r;
    const char *out = NULL;
    char *json = NULL;
    size_t len = 0;
    uint64_t v;
    int error;

    memset(&r, 0, sizeof(r));
    snprintf(r.tool_version, sizeof(r.tool_version), "0.1.0");
    r.manifest_threshold = 1;
    for (int i = 0; i < argc; i++) {
        char *k = argv[i], *val;
        if (strcmp(k, "-o") == 0 && i + 1 < argc) {
            out = argv[++i];
            continue;
        }
        if ((val = strchr(k, '=')) == NULL)
            return usage();
        *val++ = '\0';
#define STR(field)                                                                                 \
    if (strcmp(k, #field) == 0) {                                                                  \
        snprintf(r.field, sizeof(r.field), "%s", val);                                             \
        continue;                                                                                  \
    }
        STR(product)
        STR(version)
        STR(channel)
        STR(chip)
        STR(policy_sha256)
        STR(image_key)
        STR(tool_version)
#undef STR
        if (strcmp(k, "device_type") == 0 && r.ndevice_types < 8)
            snprintf(r.device_types[r.ndevice_types++], 65, "%s", val);
        else if (strcmp(k, "approver") == 0 && r.napprovers < 16)
            snprintf(r.approvers[r.napprovers++], 41, "%s", val);
        else if (strcmp(k, "sign_key") == 0 && r.nsign_keys < 3)
            snprintf(r.sign_keys[r.nsign_keys++], 65, "%s", val);
        else if (strcmp(k, "manifest_signer") == 0 && r.nmanifest_signers < 8)
            snprintf(r.manifest_signers[r.nmanifest_signers++], 65, "%s", val);
        else if (strcmp(k, "recipient") == 0 && r.nrecipients < 8)
            snprintf(r.recipients[r.nrecipients++], 65, "%s", val);
        else if (strcmp(k, "input") == 0 && (error = file_digest(&r.input, "", val)) != 0)
            return fail(val);
        else if (strcmp(k, "signed") == 0 && (error = file_digest(&r.signed_image, "", val)) != 0)
            return fail(val);
        else if (strcmp(k, "image") == 0 &&
                 (error = file_digest(&r.image, "firmware.enc", val)) != 0)
            return fail(val);
        else if (strcmp(k, "manifest") == 0 &&
                 (error = file_digest(&r.manifest, "manifest.fwm", val)) != 0)
            return fail(val);
        else if (strcmp(k, "counter") == 0 && num(&r.counter, val, UINT32_MAX) != 0)
            return usage();
        else if (strcmp(k, "created") == 0 && num(&r.created, val, (uint64_t)1 << 40) != 0)
            return usage();
        else if (strcmp(k, "expires") == 0 && num(&r.expires, val, (uint64_t)1 << 40) != 0)
            return usage();
        else if (strcmp(k, "secure_version") == 0) {
            if (num(&v, val, UINT32_MAX) != 0)
                return usage();
            r.secure_version = (uint32_t)v;
        } else if (strcmp(k, "encrypted") == 0) {
            r.encrypted = strcmp(val, "1") == 0;
        } else if (strcmp(k, "required") == 0 || strcmp(k, "threshold") == 0) {
            if (num(&v, val, 16) != 0)
                return usage();
            if (k[0] == 'r')
                r.approvals_required = (unsigned)v;
            else
                r.manifest_threshold = (unsigned)v;
        }
    }
    if (out == NULL)
        return usage();
    if ((error = fwrel_release_encode(&json, &len, &r)) != 0)
        return fail("release.json");
    error = fwrel_io_write_file(out, json, len, FWREL_OUT_FORCE, 0644);
    free(json);
    return error ? fail(out) : 0;
}

struct members {
    char *name[MAX_MEMBERS];
    uint8_t *data[MAX_MEMBERS];
    size_t len[MAX_MEMBERS];
    size_t n;
};

static int add(struct members *m, const char *name, const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int error;
    if ((error = fwrel_io_read_small(&data, &len, path, (size_t)64 << 20)) != 0)
        return fail(path);
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->name[i], name) == 0) {
            free(m->data[i]);
            m->data[i] = data;
            m->len[i] = len;
            return 0;
        }
    if (m->n == MAX_MEMBERS) {
        free(data);
        fprintf(stderr, "fwrel-mkbundle: too many members\n");
        return 2;
    }
    m->name[m->n] = strdup(name);
    m->data[m->n] = data;
    m->len[m->n++] = len;
    return 0;
}

/* Every regular file below root/rel, recursively. */
static int add_dir(struct members *m, const char *root, const char *rel)
{
    char path[8200], sub[4096];
    struct dirent *e;
    struct stat st;
    int error = 0;
    snprintf(path, sizeof(path), "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    if (d == NULL) {
        fprintf(stderr, "fwrel-mkbundle: %s: cannot open\n", path);
        return 5;
    }
    while (error == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        snprintf(path, sizeof(path), "%s/%s", root, sub);
        if (lstat(path, &st) != 0)
            error = 5;
        else if (S_ISDIR(st.st_mode))
            error = add_dir(m, root, sub);
        else if (S_ISREG(st.st_mode))
            error = add(m, sub, path);
    }
    closedir(d);
    return error;
}

static int write_bundle(int argc, char **argv)
{
    struct members m;
    fwrel_bundle_member bm[MAX_MEMBERS + 1];
    const char *out = NULL;
    int sums = 0, error = 0;
    uint64_t mtime = 1700000000;
    char *text = NULL;
    size_t tlen = 0, n = 0;

    memset(&m, 0, sizeof(m));
    for (int i = 0; i < argc && error == 0; i++) {
        char *eq;
        if (strcmp(argv[i], "--sums") == 0)
            sums = 1;
        else if (strcmp(argv[i], "--mtime") == 0 && i + 1 < argc)
            error = num(&mtime, argv[++i], FWREL_BUNDLE_MTIME_MAX) ? usage() : 0;
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "-C") == 0 && i + 1 < argc)
            error = add_dir(&m, argv[++i], "");
        else if ((eq = strchr(argv[i], '=')) != NULL) {
            *eq = '\0';
            error = add(&m, argv[i], eq + 1);
        } else
            error = usage();
    }
    if (error == 0 && out == NULL)
        error = usage();
    for (size_t i = 0; i < m.n; i++)
        if (!sums || strcmp(m.name[i], "SHA256SUMS") != 0)
            bm[n++] = (fwrel_bundle_member){m.name[i], m.data[i], m.len[i]};
    if (error == 0 && sums) {
        if ((error = fwrel_bundle_sums(&text, &tlen, bm, n)) != 0)
            error = fail("SHA256SUMS");
        else
            bm[n++] = (fwrel_bundle_member){"SHA256SUMS", (const uint8_t *)text, tlen};
    }
    if (error == 0 && fwrel_bundle_write(out, bm, n, (int64_t)mtime, FWREL_OUT_FORCE) != 0)
        error = fail(out);
    free(text);
    for (size_t i = 0; i < m.n; i++) {
        free(m.name[i]);
        free(m.data[i]);
    }
    return error;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "record") == 0)
        return record(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "write") == 0)
        return write_bundle(argc - 2, argv + 2);
    if (argc == 5 && strcmp(argv[1], "approve") == 0) {
        uint8_t *sig = NULL;
        size_t len = 0;
        int error = fwrel_io_read_small(&sig, &len, argv[4], FWREL_SMALL_MAX);
        if (error != 0)
            return fail(argv[4]);
        error = fwrel_bundle_add_approval(argv[2], argv[3], sig, len);
        free(sig);
        return error ? fail(argv[2]) : 0;
    }
    return usage();
}
