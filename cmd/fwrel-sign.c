/*
 * fwrel-sign - sign an ESP app image: Secure Boot V2 signature sector (1 to 3
 * blocks, append) or Secure Boot V1; external signing with --digest-out and
 * --pub-key/--signature. Byte-compatible with espsecure sign-data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "runner.h"

#include "fwrel/hsm.h"
#include "fwrel/io.h"
#include "fwrel/key.h"
#include "fwrel/sbv1.h"
#include "fwrel/sbv2.h"
#include "util.h"

static struct {
    const char *output;
    fwrel_strlist keys;
    fwrel_strlist pub_keys;
    fwrel_strlist signatures;
    const char *digest_out;
    const char *scheme;
    const char *pass_file;
    const char *pass_fd;
    int sbv1, sbv2, append, force, ignore_chip;
} o;

static const fwrel_opt opts[] = {
    {"output", 'o', FWREL_OPT_STR, "FILE", "write the signed image to FILE", &o.output},
    {"key", 'k', FWREL_OPT_MULTI, "KEY",
     "private signing key (PEM or pkcs11: URI); one block per key", &o.keys},
    {"keyfile", 0, FWREL_OPT_ALIAS, "key", "espsecure's spelling", NULL},
    {"sbv2", 0, FWREL_OPT_FLAG, NULL, "Secure Boot V2 signature sector (default)", &o.sbv2},
    {"sbv1", 0, FWREL_OPT_FLAG, NULL, "Secure Boot V1 ECDSA signature (ESP32)", &o.sbv1},
    {"append", 'a', FWREL_OPT_FLAG, NULL, "add blocks to an image already signed (SBv2)",
     &o.append},
    {"append-signatures", 0, FWREL_OPT_ALIAS, "append", "espsecure's spelling", NULL},
    {"append_signatures", 0, FWREL_OPT_ALIAS, "append", "older espsecure's spelling", NULL},
    {"pub-key", 0, FWREL_OPT_MULTI, "PUB", "public key of a signature made elsewhere", &o.pub_keys},
    {"signature", 0, FWREL_OPT_MULTI, "SIG", "signature made elsewhere, paired with --pub-key",
     &o.signatures},
    {"digest-out", 0, FWREL_OPT_STR, "FILE", "write the digest to be signed elsewhere to FILE",
     &o.digest_out},
    {"scheme", 's', FWREL_OPT_STR, "SCHEME",
     "with --digest-out: rsa3072, ecdsa192, ecdsa256 or ecdsa384 (else from --pub-key)", &o.scheme},
    {"passphrase-file", 0, FWREL_OPT_STR, "FILE", "read the key passphrase from FILE",
     &o.pass_file},
    {"passphrase-fd", 0, FWREL_OPT_STR, "N", "read the key passphrase from file descriptor N",
     &o.pass_fd},
    {"force", 'f', FWREL_OPT_FLAG, NULL, "replace an existing output file", &o.force},
    {"ignore-chip", 0, FWREL_OPT_FLAG, NULL,
     "format only: sign although the image's chip would not check it", &o.ignore_chip},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static int check_options(fwrel_ctx *ctx)
{
    int external = o.pub_keys.n > 0 || o.signatures.n > 0;
    if (o.sbv1 && o.sbv2)
        return fwrel_cmd_usage(ctx, "--sbv1 and --sbv2 exclude each other");
    if (o.digest_out != NULL) {
        if (o.output || o.keys.n || o.signatures.n)
            return fwrel_cmd_usage(ctx, "--digest-out goes without --output, --key, --signature");
        if (o.pub_keys.n > 1)
            return fwrel_cmd_usage(ctx, "--digest-out takes at most one --pub-key");
        if (o.scheme && o.pub_keys.n)
            return fwrel_cmd_usage(ctx, "--scheme and --pub-key exclude each other");
        return 0;
    }
    if (o.scheme != NULL)
        return fwrel_cmd_usage(ctx, "--scheme goes with --digest-out");
    if (o.output == NULL)
        return fwrel_cmd_usage(ctx, "--output is required");
    if (external && o.keys.n)
        return fwrel_cmd_usage(ctx, "--key and --pub-key/--signature exclude each other");
    if (!external && o.keys.n == 0)
        return fwrel_cmd_usage(ctx, "a --key (or --pub-key with --signature) is required");
    if (o.pub_keys.n != o.signatures.n)
        return fwrel_cmd_usage(ctx, "%d --pub-key but %d --signature: they go in pairs",
                               o.pub_keys.n, o.signatures.n);
    int n = external ? o.pub_keys.n : o.keys.n;
    if (o.sbv1 && (n != 1 || o.append))
        return fwrel_cmd_usage(ctx, "Secure Boot V1 takes exactly one key and no --append");
    if (n > FWREL_SBV2_MAX_BLOCKS)
        return fwrel_cmd_usage(ctx, "at most %d signing keys", FWREL_SBV2_MAX_BLOCKS);
    return 0;
}

static json_t *image_json(const fwrel_espimg *img)
{
    json_t *j =
        json_pack("{s:s,s:I,s:I}", "chip", img->chip ? img->chip->name : "unknown", "image_len",
                  (json_int_t)img->image_len, "file_len", (json_int_t)img->file_len);
    if (img->has_app_desc) {
        json_object_set_new(j, "version", json_string(img->app_desc.version));
        json_object_set_new(j, "secure_version", json_integer(img->app_desc.secure_version));
    }
    return j;
}

/* --digest-out: export what must be signed elsewhere. */
static int run_digest_out(fwrel_ctx *ctx, const char *image)
{
    uint8_t digest[48];
    size_t len = 32;
    char hex[97];
    fwrel_pkey *pub = NULL;
    int scheme = FWREL_SCHEME_RSA3072, error;

    if (o.pub_keys.n == 1) {
        if ((error = fwrel_key_load_public(&pub, o.pub_keys.v[0], o.sbv1)) != 0)
            return fwrel_cmd_fail(ctx, o.pub_keys.v[0]);
        if (!o.sbv1 && (error = fwrel_sbv2_key_scheme(&scheme, pub)) != 0) {
            fwrel_key_free(pub);
            return fwrel_cmd_fail(ctx, o.pub_keys.v[0]);
        }
        fwrel_key_free(pub);
    } else if (o.scheme != NULL) {
        int type;
        if (fwrel_key_type_parse(&type, o.scheme) != 0)
            return fwrel_cmd_usage(ctx, "unknown scheme '%s'", o.scheme);
        scheme = type == FWREL_KEY_RSA3072    ? FWREL_SCHEME_RSA3072
                 : type == FWREL_KEY_ECDSA192 ? FWREL_SCHEME_ECDSA192
                 : type == FWREL_KEY_ECDSA256 ? FWREL_SCHEME_ECDSA256
                                              : FWREL_SCHEME_ECDSA384;
    }
    if (fwrel_io_check_new(o.digest_out, o.force ? FWREL_OUT_FORCE : 0) != 0)
        return fwrel_cmd_fail(ctx, o.digest_out);
    if (o.sbv1)
        error = fwrel_sbv1_signing_digest(digest, image, o.ignore_chip);
    else
        error = fwrel_sbv2_signing_digest(digest, &len, image, scheme, o.append);
    if (error)
        return fwrel_cmd_fail(ctx, image);
    if ((error = fwrel_io_write_file(o.digest_out, digest, len, o.force ? FWREL_OUT_FORCE : 0,
                                     0644)) != 0)
        return fwrel_cmd_fail(ctx, o.digest_out);
    fwrel_hex(hex, digest, len);
    fwrel_cmd_print(ctx, "%s digest of %s written to %s: %s\n", len == 48 ? "SHA-384" : "SHA-256",
                    image, o.digest_out, hex);
    fwrel_cmd_set(ctx, "digest", json_string(hex));
    fwrel_cmd_set(ctx, "digest_out", json_string(o.digest_out));
    return 0;
}

/* An HSM key (pkcs11: URI): sign the image's SBv2 digest on the HSM; key receives the public
 * key and sig the signature, which fwrel_sbv2_sign() checks and places like an external one.
 * *what is what a failure is about: the image (its digest) or the URI (everything else). */
static int hsm_sign(fwrel_pkey **key, uint8_t **sig, size_t *sig_len, const char **what,
                    const char *uri, const char *image, const fwrel_pass_src *pass)
{
    fwrel_hsm_key *hk = NULL;
    int image_failed = 0, error;

    if (o.sbv1)
        return fwrel_error_set(FWREL_EUSAGE,
                               "HSM keys sign Secure Boot V2 images only, not --sbv1");
    if ((error = fwrel_hsm_key_open(&hk, uri, NULL, pass)) != 0)
        return error;
    error = fwrel_hsm_key_sign_sbv2(key, sig, sig_len, &image_failed, hk, image, o.append);
    if (image_failed)
        *what = image;
    fwrel_hsm_key_close(hk);
    return error;
}

static int run(fwrel_ctx *ctx)
{
    const char *image = ctx->argv[0];
    fwrel_pkey *keys[FWREL_SBV2_MAX_BLOCKS] = {NULL};
    uint8_t *sigs[FWREL_SBV2_MAX_BLOCKS] = {NULL};
    size_t sig_lens[FWREL_SBV2_MAX_BLOCKS] = {0};
    fwrel_espimg img;
    fwrel_pass_src pass;
    int error, n = 0;

    if ((error = check_options(ctx)) != 0 ||
        (error = fwrel_cmd_pass_source(ctx, &pass, o.pass_file, o.pass_fd, 0)) != 0)
        return error;
    if (o.digest_out != NULL)
        return run_digest_out(ctx, image);

    unsigned flags = o.force ? FWREL_OUT_FORCE : 0;
    /* Refuse an existing output before asking for a passphrase. */
    if (fwrel_io_check_new(o.output, flags) != 0)
        return fwrel_cmd_fail(ctx, o.output);
    int external = o.pub_keys.n > 0;
    n = external ? o.pub_keys.n : o.keys.n;
    for (int i = 0; i < n; i++) {
        const char *path = external ? o.pub_keys.v[i] : o.keys.v[i];
        if (!external && fwrel_hsm_is_uri(path)) {
            error = hsm_sign(&keys[i], &sigs[i], &sig_lens[i], &path, path, image, &pass);
        } else {
            error = external ? fwrel_key_load_public(&keys[i], path, o.sbv1)
                             : fwrel_key_load_private(&keys[i], path, &pass);
        }
        if (error) {
            error = fwrel_cmd_fail(ctx, path);
            goto done;
        }
        if (external &&
            (error = fwrel_io_read_small(&sigs[i], &sig_lens[i], o.signatures.v[i], 4096)) != 0) {
            error = fwrel_cmd_fail(ctx, o.signatures.v[i]);
            goto done;
        }
    }

    if (o.sbv1) {
        if (external && sig_lens[0] != 64) {
            fwrel_error_set(FWREL_EFORMAT, "a Secure Boot V1 signature is 64 bytes (r||s), not %zu",
                            sig_lens[0]);
            error = fwrel_cmd_fail(ctx, o.signatures.v[0]);
            goto done;
        }
        error = fwrel_sbv1_sign(image, o.output, flags, keys[0], sigs[0], o.ignore_chip, &img);
    } else {
        fwrel_sbv2_sign_opts so;
        memset(&so, 0, sizeof(so));
        for (int i = 0; i < n; i++) {
            so.signers[i].key = keys[i];
            so.signers[i].sig = sigs[i];
            so.signers[i].sig_len = sig_lens[i];
        }
        so.count = (size_t)n;
        so.append = o.append;
        so.ignore_chip = o.ignore_chip;
        error = fwrel_sbv2_sign(image, o.output, flags, &so, &img);
    }
    if (error) {
        /* Output-side failures name the output; everything else is about the input image. */
        error = fwrel_cmd_fail(ctx, image);
        goto done;
    }

    fwrel_cmd_print(ctx, "Signed %s (%s, %llu bytes) with %d %s key%s: %s\n", image,
                    img.chip ? img.chip->name : "unknown chip", (unsigned long long)img.image_len,
                    n, o.sbv1 ? "Secure Boot V1" : "Secure Boot V2", n == 1 ? "" : "s", o.output);
    json_t *jk = json_array();
    for (int i = 0; i < n; i++) {
        char id[65], hex[65];
        uint8_t digest[32];
        json_t *k = json_object();
        if (fwrel_key_id(id, keys[i]) == 0)
            json_object_set_new(k, "key_id", json_string(id));
        if (!o.sbv1 && fwrel_sbv2_key_digest(digest, keys[i]) == 0) {
            fwrel_hex(hex, digest, 32);
            json_object_set_new(k, "sbv2_key_digest", json_string(hex));
            fwrel_cmd_print(ctx, "  block key digest: %s\n", hex);
        }
        json_array_append_new(jk, k);
    }
    fwrel_cmd_set(ctx, "scheme", json_string(o.sbv1 ? "sbv1" : "sbv2"));
    fwrel_cmd_set(ctx, "input", json_string(image));
    fwrel_cmd_set(ctx, "output", json_string(o.output));
    fwrel_cmd_set(ctx, "image", image_json(&img));
    fwrel_cmd_set(ctx, "keys", jk);
    error = 0;
done:
    for (int i = 0; i < FWREL_SBV2_MAX_BLOCKS; i++) {
        fwrel_key_free(keys[i]);
        free(sigs[i]);
    }
    return error;
}

const fwrel_cmd fwrel_command = {
    .name = "fwrel-sign",
    .synopsis = "[--sbv2] -k KEY [-k KEY2 [-k KEY3]] [--append] -o OUT IMAGE\n"
                "--sbv1 -k KEY -o OUT IMAGE\n"
                "[--sbv1] --pub-key PUB --signature SIG [...] -o OUT IMAGE\n"
                "[--sbv1] --digest-out FILE [--pub-key PUB | --scheme SCHEME] IMAGE",
    .summary = "sign an ESP app image for Secure Boot (V2 or V1)",
    .opts = opts,
    .min_args = 1,
    .max_args = 1,
    .run = run,
};
