/*
 * fwrel-keygen - create signing keys: the private key (encrypted PKCS#8, 0600),
 * the public key, and the SBv2 eFuse key digest (or, for Secure Boot V1, the raw
 * 64-byte verification key); or export those from an existing key (--export).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"

#include "fwrel/io.h"
#include "fwrel/keystore.h"
#include "fwrel/sbv2.h"
#include "util.h"

static struct {
    const char *output, *scheme, *export_key, *pass_file, *pass_fd;
    int sbv1, no_pass, force;
} o;

static const fwrel_opt opts[] = {
    {"output", 'o', FWREL_OPT_STR, "KEY.pem",
     "the private key; KEY.pub.pem and KEY.digest.bin (KEY.pub.raw with --sbv1) go beside it",
     &o.output},
    {"scheme", 's', FWREL_OPT_STR, "SCHEME", "rsa3072, ecdsa192, ecdsa256 or ecdsa384", &o.scheme},
    {"sbv1", 0, FWREL_OPT_FLAG, NULL, "a Secure Boot V1 key (ECDSA P-256; writes KEY.pub.raw)",
     &o.sbv1},
    {"export", 0, FWREL_OPT_STR, "KEY",
     "write the public key and digest of an existing private KEY to -o PREFIX", &o.export_key},
    {"passphrase-file", 0, FWREL_OPT_STR, "FILE", "read the passphrase from FILE", &o.pass_file},
    {"passphrase-fd", 0, FWREL_OPT_STR, "N", "read the passphrase from file descriptor N",
     &o.pass_fd},
    {"no-passphrase", 0, FWREL_OPT_FLAG, NULL, "write the private key unencrypted", &o.no_pass},
    {"force", 'f', FWREL_OPT_FLAG, NULL, "replace existing output files", &o.force},
    {NULL, 0, 0, NULL, NULL, NULL},
};

#define MAX_OUT 3

static int run(fwrel_ctx *ctx)
{
    char prefix[4096], paths[MAX_OUT][4200];
    const char *published[MAX_OUT] = {NULL};
    int npub = 0, type = FWREL_KEY_ECDSA256, error;
    unsigned flags = o.force ? FWREL_OUT_FORCE : 0;
    fwrel_pkey *key = NULL;
    char *pass = NULL;
    size_t pass_len = 0;
    fwrel_pass_src src;

    if (ctx->argc != 0)
        return fwrel_cmd_usage(ctx, "unexpected argument '%s'", ctx->argv[0]);
    if (o.output == NULL)
        return fwrel_cmd_usage(ctx, "--output is required");
    if ((o.export_key != NULL) == (o.scheme != NULL) && !(o.sbv1 && !o.scheme && !o.export_key))
        return fwrel_cmd_usage(ctx, "give --scheme (a new key) or --export KEY (an existing one)");
    if (o.scheme != NULL && fwrel_key_type_parse(&type, o.scheme) != 0)
        return fwrel_cmd_usage(ctx, "%s", fwrel_error_last()->message);
    if (o.sbv1 && type != FWREL_KEY_ECDSA256)
        return fwrel_cmd_usage(ctx, "Secure Boot V1 keys are ecdsa256");
    if ((error = fwrel_cmd_pass_source(ctx, &src, o.pass_file, o.pass_fd, o.no_pass)) != 0)
        return error;

    size_t n = strlen(o.output);
    if (n >= sizeof(prefix))
        return fwrel_cmd_usage(ctx, "output path too long");
    memcpy(prefix, o.output, n + 1);
    if (n > 4 && strcmp(prefix + n - 4, ".pem") == 0)
        prefix[n - 4] = '\0';
    int nout = 0;
    if (o.export_key == NULL)
        snprintf(paths[nout++], sizeof(paths[0]), "%s.pem", prefix);
    snprintf(paths[nout++], sizeof(paths[0]), "%s.pub.%s", prefix, o.sbv1 ? "raw" : "pem");
    if (!o.sbv1)
        snprintf(paths[nout++], sizeof(paths[0]), "%s.digest.bin", prefix);
    /* All outputs appear together or not at all: refuse before any slow work. */
    for (int i = 0; i < nout; i++)
        if (fwrel_io_check_new(paths[i], flags) != 0)
            return fwrel_cmd_fail(ctx, paths[i]);

    if (o.export_key != NULL) {
        if ((error = fwrel_key_load_private(&key, o.export_key, &src)) != 0) {
            error = fwrel_cmd_fail(ctx, o.export_key);
            goto done;
        }
        if ((error = fwrel_key_type_of(&type, key)) != 0 ||
            (o.sbv1 && type != FWREL_KEY_ECDSA256 &&
             (error = fwrel_error_set(FWREL_EKEY, "not an ECDSA P-256 key")) != 0)) {
            error = fwrel_cmd_fail(ctx, o.export_key);
            goto done;
        }
    } else {
        if (src.kind != FWREL_PASS_NONE) {
            char prompt[4300];
            snprintf(prompt, sizeof(prompt), "New passphrase for %s: ", paths[0]);
            if ((error = fwrel_pass_read(&pass, &pass_len, &src, prompt, 1)) != 0) {
                error = fwrel_cmd_fail(ctx, src.kind == FWREL_PASS_FILE ? o.pass_file : NULL);
                goto done;
            }
        }
        if ((error = fwrel_key_generate(&key, type)) != 0) {
            error = fwrel_cmd_fail(ctx, NULL);
            goto done;
        }
    }

    int i = 0;
    if (o.export_key == NULL) {
        if ((error = fwrel_key_write_private(key, paths[i], pass, pass_len, flags)) != 0)
            goto write_failed;
        published[npub++] = paths[i++];
    }
    if (o.sbv1) {
        uint8_t raw[64];
        if ((error = fwrel_key_raw64(raw, key)) != 0 ||
            (error = fwrel_io_write_file(paths[i], raw, sizeof(raw), flags, 0644)) != 0)
            goto write_failed;
        published[npub++] = paths[i++];
    } else {
        uint8_t digest[32];
        char hex[65];
        if ((error = fwrel_key_write_public(key, paths[i], flags)) != 0)
            goto write_failed;
        published[npub++] = paths[i++];
        if ((error = fwrel_sbv2_key_digest(digest, key)) != 0 ||
            (error = fwrel_io_write_file(paths[i], digest, sizeof(digest), flags, 0644)) != 0)
            goto write_failed;
        published[npub++] = paths[i++];
        fwrel_hex(hex, digest, 32);
        fwrel_cmd_set(ctx, "sbv2_key_digest", json_string(hex));
    }
    char id[65];
    if (fwrel_key_id(id, key) == 0)
        fwrel_cmd_set(ctx, "key_id", json_string(id));
    fwrel_cmd_set(ctx, "scheme", json_string(fwrel_key_type_name(type)));
    fwrel_cmd_set(ctx, "encrypted", json_boolean(pass != NULL));
    json_t *files = json_array();
    for (int k = 0; k < npub; k++) {
        json_array_append_new(files, json_string(published[k]));
        fwrel_cmd_print(ctx, "wrote %s\n", published[k]);
    }
    fwrel_cmd_set(ctx, "files", files);
    if (o.export_key == NULL && pass == NULL)
        fwrel_cmd_print(ctx, "note: the private key is not encrypted (--no-passphrase)\n");
    error = 0;
    goto done;

write_failed:
    error = fwrel_cmd_fail(ctx, fwrel_error_last()->output ? paths[i] : NULL);
    /* Take back what this run published, so that no half key set remains. */
    for (int k = 0; k < npub; k++)
        unlink(published[k]);
done:
    fwrel_pass_free(pass, pass_len);
    fwrel_key_free(key);
    return error;
}

static const fwrel_cmd cmd = {
    .name = "fwrel-keygen",
    .synopsis = "--scheme SCHEME [--sbv1] [--passphrase-file F | --passphrase-fd N | "
                "--no-passphrase] -o KEY.pem\n"
                "--export KEY.pem [--sbv1] [--passphrase-file F | --passphrase-fd N] -o PREFIX",
    .summary = "create Secure Boot signing keys, or export what the device needs from one",
    .opts = opts,
    .min_args = 0,
    .max_args = 0,
    .run = run,
};

int main(int argc, char **argv)
{
    return fwrel_cmd_main(&cmd, argc, argv);
}
