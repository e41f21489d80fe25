/*
 * fwrel-encrypt - pre-encrypt an ESP app image in the esp_encrypted_img format
 * (byte-compatible with esp_enc_img_gen.py, RSA-3072 and ECC P-256 schemes), or
 * decrypt one as the device would (--decrypt), publishing plaintext only after
 * its GCM tag checks.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "runner.h"

#include "fwrel/encimg.h"
#include "fwrel/espimg.h"
#include "fwrel/hsm.h"
#include "fwrel/io.h"
#include "fwrel/key.h"
#include "fwrel/manifest.h"
#include "util.h"

static struct {
    const char *output, *key, *pass_file, *pass_fd;
    int decrypt, raw, force, manifest, secure_fota;
    fwrel_strlist sign_keys, recipients;
    const char *from_signed, *from_plain, *from_encrypted;
} o;

static const fwrel_opt opts[] = {
    {"key", 'k', FWREL_OPT_STR, "KEY",
     "encrypt: the device's public key (RSA-3072 or EC P-256, PEM); --decrypt: its private key",
     &o.key},
    {"keyfile", 0, FWREL_OPT_ALIAS, "key", "espsecure's spelling", NULL},
    {"output", 'o', FWREL_OPT_STR, "FILE", "write the result to FILE", &o.output},
    {"decrypt", 'd', FWREL_OPT_FLAG, NULL, "decrypt an encrypted image, as the device does",
     &o.decrypt},
    {"raw", 0, FWREL_OPT_FLAG, NULL, "encrypt a file that is not an ESP app image", &o.raw},
    {"manifest", 0, FWREL_OPT_FLAG, NULL,
     "the input is a manifest (JSON): sign it and encrypt it to the recipients", &o.manifest},
    {"signed-image", 0, FWREL_OPT_STR, "FILE",
     "with --manifest: take version, chip and digests from the images; the input holds the rest",
     &o.from_signed},
    {"encrypted-image", 0, FWREL_OPT_STR, "FILE", "with --signed-image: the encrypted image",
     &o.from_encrypted},
    {"plain-image", 0, FWREL_OPT_STR, "FILE",
     "with --signed-image: the image before signing (default: the signed one)", &o.from_plain},
    {"secure-fota", 0, FWREL_OPT_FLAG, NULL,
     "write the 1024-byte secure-FOTA manifest of IMAGE (one --sign-key, one --recipient)",
     &o.secure_fota},
    {"sign-key", 0, FWREL_OPT_MULTI, "KEY",
     "with --manifest: a signing key (RSA-3072, P-256, Ed25519)", &o.sign_keys},
    {"recipient", 0, FWREL_OPT_MULTI, "PUB",
     "with --manifest: a device key it is encrypted to (RSA-4096, X25519, P-256)", &o.recipients},
    {"passphrase-file", 0, FWREL_OPT_STR, "FILE", "passphrase of an encrypted private key",
     &o.pass_file},
    {"passphrase-fd", 0, FWREL_OPT_STR, "N", "read that passphrase from file descriptor N",
     &o.pass_fd},
    {"force", 'f', FWREL_OPT_FLAG, NULL, "replace an existing output file", &o.force},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static const char *scheme_name(int s)
{
    return s == FWREL_ENCIMG_RSA3072 ? "RSA-3072" : "ECC-256";
}

/* The file a failure while encrypting is about when the error names none (writing the output
 * names it): the key for a crypto failure (maybe on the relay thread), else the input. */
static const char *blame(const char *in)
{
    return fwrel_error_last()->code == FWREL_EKEY ? o.key : in;
}

static int run_encrypt(fwrel_ctx *ctx, const char *in, unsigned flags)
{
    fwrel_pkey *key = NULL;
    fwrel_src src = {.fd = -1};
    fwrel_out *out = NULL;
    fwrel_encimg_enc *enc = NULL;
    fwrel_espimg img;
    int scheme, error;

    if ((error = fwrel_key_load_public(&key, o.key, 0)) != 0)
        return fwrel_cmd_fail(ctx, o.key);
    if ((error = fwrel_encimg_key_scheme(&scheme, key)) != 0) {
        error = fwrel_cmd_fail(ctx, o.key);
        goto done;
    }
    if ((error = fwrel_src_open(&src, in, FWREL_IMAGE_MAX)) != 0) {
        error = fwrel_cmd_fail(ctx, in);
        goto done;
    }
    if ((error = fwrel_out_open(&out, o.output, flags | FWREL_OUT_STREAM, 0644)) != 0) {
        error = fwrel_cmd_fail(ctx, o.output);
        goto done;
    }
    if ((error = fwrel_encimg_enc_begin(&enc, out, key, src.size)) != 0) {
        error = fwrel_cmd_fail(ctx, o.key);
        goto done;
    }
    if (!o.raw) {
        /* One pass: the image is checked as it is encrypted (a device refuses a broken one). */
        fwrel_espimg_opts po = {fwrel_encimg_enc_update, enc, NULL};
        if (fwrel_espimg_parse(&img, &src, &po) != 0 || fwrel_espimg_check_input(&img) != 0) {
            if (fwrel_error_last()->about != FWREL_ABOUT_OUTPUT &&
                fwrel_error_last()->code == FWREL_EFORMAT)
                fwrel_error_set(FWREL_EFORMAT,
                                "not a sound ESP app image (%s); --raw to encrypt it anyway",
                                fwrel_error_last()->message);
            error = fwrel_cmd_fail(ctx, blame(in));
            goto done;
        }
        fwrel_cmd_set(ctx, "signed", json_boolean(img.file_len > img.image_len));
    }
    /* The rest: a signature after the image, or all of a --raw file. */
    uint8_t buf[65536];
    while (src.pos < src.size) {
        size_t chunk =
            src.size - src.pos < sizeof(buf) ? (size_t)(src.size - src.pos) : sizeof(buf);
        if ((error = fwrel_src_read(&src, buf, chunk)) != 0 ||
            (error = fwrel_encimg_enc_update(enc, buf, chunk)) != 0) {
            error = fwrel_cmd_fail(ctx, blame(in));
            goto done;
        }
    }
    error = fwrel_encimg_enc_finish(enc);
    enc = NULL;
    if (error == 0)
        error = fwrel_out_commit(out);
    out = NULL;
    if (error) {
        error = fwrel_cmd_fail(ctx, blame(in));
        goto done;
    }
    fwrel_cmd_print(ctx, "Encrypted %s (%llu bytes, %s) to %s\n", in, (unsigned long long)src.size,
                    scheme_name(scheme), o.output);
    fwrel_cmd_set(ctx, "scheme", json_string(scheme_name(scheme)));
    fwrel_cmd_set(ctx, "input", json_string(in));
    fwrel_cmd_set(ctx, "output", json_string(o.output));
    fwrel_cmd_set(ctx, "size", json_integer((json_int_t)src.size));
done:
    fwrel_encimg_enc_free(enc);
    fwrel_out_abort(out);
    fwrel_src_close(&src);
    fwrel_key_free(key);
    return error;
}

static int run_decrypt(fwrel_ctx *ctx, const char *in, unsigned flags)
{
    fwrel_pkey *key = NULL;
    fwrel_src src = {.fd = -1};
    fwrel_pass_src pass;
    int error;

    if ((error = fwrel_cmd_pass_source(ctx, &pass, o.pass_file, o.pass_fd, 0)) != 0)
        return error;
    if (fwrel_io_check_new(o.output, flags) != 0)
        return fwrel_cmd_fail(ctx, o.output);
    if ((error = fwrel_key_load_private(&key, o.key, &pass)) != 0)
        return fwrel_cmd_fail(ctx, o.key);
    if ((error = fwrel_src_open(&src, in, (uint64_t)FWREL_ENCIMG_HEADER_LEN + UINT32_MAX)) != 0) {
        error = fwrel_cmd_fail(ctx, in);
        goto done;
    }
    fwrel_encimg_notes notes;
    if ((error = fwrel_encimg_decrypt_ex(o.output, flags, &src, key, &notes)) != 0) {
        error = fwrel_cmd_fail(ctx, in);
        goto done;
    }
    json_t *warnings = json_array();
    if (notes.wrapped_key_len < 32) {
        /* The device decrypts it too (esp_encrypted_img + mbedtls zero-extend the key): say so,
         * on stderr even under --quiet or --json, and in the JSON result. */
        char w[200];
        snprintf(w, sizeof(w),
                 "the RSA-wrapped image key is %zu bytes, not 32: zero-extended to 32, as the "
                 "device does",
                 notes.wrapped_key_len);
        fprintf(stderr, "%s: %s: warning: %s\n", ctx->cmd->name, in, w);
        json_array_append_new(warnings, json_string(w));
    }
    fwrel_cmd_print(ctx, "Decrypted %s: GCM tag valid, %llu bytes written to %s\n", in,
                    (unsigned long long)(src.size - FWREL_ENCIMG_HEADER_LEN), o.output);
    fwrel_cmd_set(ctx, "input", json_string(in));
    fwrel_cmd_set(ctx, "output", json_string(o.output));
    fwrel_cmd_set(ctx, "warnings", warnings);
done:
    fwrel_src_close(&src);
    fwrel_key_free(key);
    return error;
}

/* --manifest: body (JSON) -> signed by every --sign-key -> sealed to every --recipient. */
static int run_manifest(fwrel_ctx *ctx, const char *in, unsigned flags)
{
    fwrel_pkey *signers[FWREL_STRLIST_MAX] = {NULL}, *recips[FWREL_STRLIST_MAX] = {NULL};
    fwrel_hsm_key *hsm[FWREL_STRLIST_MAX] = {NULL};
    fwrel_manifest_signer ms[FWREL_STRLIST_MAX];
    fwrel_pass_src pass;
    fwrel_manifest m;
    uint8_t *text = NULL, *env = NULL;
    char *signed_json = NULL;
    size_t len = 0, slen = 0, elen = 0;
    int error;

    if ((error = fwrel_cmd_pass_source(ctx, &pass, o.pass_file, o.pass_fd, 0)) != 0)
        return error;
    if (fwrel_io_check_new(o.output, flags) != 0)
        return fwrel_cmd_fail(ctx, o.output);
    if ((error = fwrel_io_read_small(&text, &len, in, FWREL_MANIFEST_BODY_MAX)) != 0 ||
        (error = o.from_signed ? fwrel_manifest_from_images(
                                     &m, text, len, o.from_plain ? o.from_plain : o.from_signed,
                                     o.from_signed, o.from_encrypted)
                               : fwrel_manifest_parse_input(&m, text, len)) != 0) {
        error = fwrel_cmd_fail(ctx, in);
        goto done;
    }
    /* A device refuses a manifest whose expires has passed: none is made expired on arrival. */
    if (m.expires <= (uint64_t)time(NULL)) {
        fwrel_error_set(FWREL_EFORMAT,
                        "expires %llu is in the past (now %llu): the manifest would be expired "
                        "on arrival",
                        (unsigned long long)m.expires, (unsigned long long)time(NULL));
        error = fwrel_cmd_fail(ctx, in);
        goto done;
    }
    memset(ms, 0, sizeof(ms));
    for (int i = 0; i < o.sign_keys.n; i++) {
        /* A pkcs11: URI signs on the HSM (the PIN from the passphrase source). */
        if (fwrel_hsm_is_uri(o.sign_keys.v[i])) {
            error = fwrel_hsm_key_open(&hsm[i], o.sign_keys.v[i], NULL, &pass);
            if (error == 0) {
                ms[i].key = fwrel_hsm_key_public(hsm[i]);
                ms[i].sign = fwrel_hsm_key_sign_message;
                ms[i].ctx = hsm[i];
            }
        } else if ((error = fwrel_key_load_private(&signers[i], o.sign_keys.v[i], &pass)) == 0) {
            ms[i].key = signers[i];
        }
        if (error) {
            error = fwrel_cmd_fail(ctx, o.sign_keys.v[i]);
            goto done;
        }
    }
    for (int i = 0; i < o.recipients.n; i++)
        if ((error = fwrel_key_load_public(&recips[i], o.recipients.v[i], 0)) != 0) {
            error = fwrel_cmd_fail(ctx, o.recipients.v[i]);
            goto done;
        }
    if ((error = fwrel_manifest_sign_with(&signed_json, &slen, &m, ms, (size_t)o.sign_keys.n)) !=
            0 ||
        (error = fwrel_manifest_seal(&env, &elen, (const uint8_t *)signed_json, slen,
                                     (const fwrel_pkey *const *)recips, (size_t)o.recipients.n)) !=
            0) {
        error = fwrel_cmd_fail(ctx, in);
        goto done;
    }
    if ((error = fwrel_io_write_file(o.output, env, elen, flags, 0644)) != 0) {
        error = fwrel_cmd_fail(ctx, o.output);
        goto done;
    }
    fwrel_cmd_print(
        ctx,
        "Manifest %s %s (%s, counter %llu) signed by %d key%s, encrypted to %d recipient%s: %s\n",
        m.product, m.version, m.channel, (unsigned long long)m.counter, o.sign_keys.n,
        o.sign_keys.n == 1 ? "" : "s", o.recipients.n, o.recipients.n == 1 ? "" : "s", o.output);
    fwrel_cmd_set(ctx, "output", json_string(o.output));
    fwrel_cmd_set(ctx, "signatures", json_integer(o.sign_keys.n));
    fwrel_cmd_set(ctx, "recipients", json_integer(o.recipients.n));
done:
    for (int i = 0; i < FWREL_STRLIST_MAX; i++) {
        fwrel_key_free(signers[i]);
        fwrel_key_free(recips[i]);
        fwrel_hsm_key_close(hsm[i]);
    }
    free(signed_json);
    free(env);
    free(text);
    return error;
}

/* --secure-fota: the compatibility manifest of an image (docs/manifest.md section 5). */
static int run_secure_fota(fwrel_ctx *ctx, const char *in, unsigned flags)
{
    fwrel_pkey *signer = NULL, *recip = NULL;
    fwrel_pass_src pass;
    fwrel_src src = {.fd = -1};
    fwrel_espimg img;
    uint8_t desc[256], out[FWREL_SECURE_FOTA_LEN];
    int error;
    if ((error = fwrel_cmd_pass_source(ctx, &pass, o.pass_file, o.pass_fd, 0)) != 0)
        return error;
    if (fwrel_io_check_new(o.output, flags) != 0)
        return fwrel_cmd_fail(ctx, o.output);
    if ((error = fwrel_src_open(&src, in, FWREL_IMAGE_MAX)) != 0 ||
        (error = fwrel_espimg_parse(&img, &src, NULL)) != 0) {
        error = fwrel_cmd_fail(ctx, in);
        goto done;
    }
    if (!img.has_app_desc) {
        fwrel_error_set(FWREL_EFORMAT,
                        "no app descriptor: the secure-fota manifest is the esp_app_desc_t");
        error = fwrel_cmd_fail(ctx, in);
        goto done;
    }
    if ((error = fwrel_src_seek(&src, FWREL_APP_DESC_OFFSET)) != 0 ||
        (error = fwrel_src_read(&src, desc, 256)) != 0) {
        error = fwrel_cmd_fail(ctx, in);
        goto done;
    }
    if ((error = fwrel_key_load_private(&signer, o.sign_keys.v[0], &pass)) != 0) {
        error = fwrel_cmd_fail(ctx, o.sign_keys.v[0]);
        goto done;
    }
    if ((error = fwrel_key_load_public(&recip, o.recipients.v[0], 0)) != 0) {
        error = fwrel_cmd_fail(ctx, o.recipients.v[0]);
        goto done;
    }
    if ((error = fwrel_manifest_securefota_make(out, desc, signer, recip)) != 0) {
        error = fwrel_cmd_fail(ctx, NULL);
        goto done;
    }
    if ((error = fwrel_io_write_file(o.output, out, sizeof(out), flags, 0644)) != 0) {
        error = fwrel_cmd_fail(ctx, o.output);
        goto done;
    }
    fwrel_cmd_print(ctx, "secure-fota manifest of %s (%s %s) written to %s\n", in,
                    img.app_desc.project_name, img.app_desc.version, o.output);
    fwrel_cmd_set(ctx, "output", json_string(o.output));
done:
    fwrel_src_close(&src);
    fwrel_key_free(signer);
    fwrel_key_free(recip);
    return error;
}

static int run(fwrel_ctx *ctx)
{
    unsigned flags = o.force ? FWREL_OUT_FORCE : 0;
    if (o.secure_fota) {
        if (o.manifest || o.key || o.decrypt || o.raw || o.output == NULL || o.sign_keys.n != 1 ||
            o.recipients.n != 1)
            return fwrel_cmd_usage(
                ctx, "--secure-fota takes one --sign-key, one --recipient and --output");
        return run_secure_fota(ctx, ctx->argv[0], flags);
    }
    if (o.manifest) {
        if (o.key || o.decrypt || o.raw || o.output == NULL || o.sign_keys.n == 0 ||
            o.recipients.n == 0)
            return fwrel_cmd_usage(
                ctx, "--manifest takes --sign-key (1..8), --recipient (1..8) and --output");
        if ((o.from_plain || o.from_encrypted) && !o.from_signed)
            return fwrel_cmd_usage(ctx,
                                   "--plain-image and --encrypted-image go with --signed-image");
        if (o.from_signed && !o.from_encrypted)
            return fwrel_cmd_usage(ctx, "--signed-image needs --encrypted-image");
        return run_manifest(ctx, ctx->argv[0], flags);
    }
    if (o.from_signed || o.from_plain || o.from_encrypted)
        return fwrel_cmd_usage(
            ctx, "--signed-image, --plain-image and --encrypted-image go with --manifest");
    if (o.sign_keys.n || o.recipients.n)
        return fwrel_cmd_usage(ctx, "--sign-key and --recipient go with --manifest");
    if (o.key == NULL || o.output == NULL)
        return fwrel_cmd_usage(ctx, "--key and --output are required");
    if (o.decrypt && o.raw)
        return fwrel_cmd_usage(ctx, "--raw goes with encryption");
    if (!o.decrypt && (o.pass_file || o.pass_fd))
        return fwrel_cmd_usage(ctx,
                               "a passphrase goes with --decrypt (encryption needs a public key)");
    if (!o.decrypt && fwrel_io_check_new(o.output, flags) != 0)
        return fwrel_cmd_fail(ctx, o.output);
    return o.decrypt ? run_decrypt(ctx, ctx->argv[0], flags)
                     : run_encrypt(ctx, ctx->argv[0], flags);
}

const fwrel_cmd fwrel_command = {
    .name = "fwrel-encrypt",
    .synopsis =
        "--key DEVICE_PUB.pem [--raw] -o OUT.enc IMAGE\n"
        "--decrypt --key DEVICE_PRIV.pem -o OUT IMAGE.enc\n"
        "--manifest --sign-key KEY [...] --recipient PUB [...] -o OUT.fwm MANIFEST.json\n"
        "--manifest --signed-image S --encrypted-image E [--plain-image P] --sign-key KEY [...]"
        " --recipient PUB [...] -o OUT.fwm RELEASE.json\n"
        "--secure-fota --sign-key RSA3072.pem --recipient RSA4096.pub -o OUT.manifest IMAGE",
    .summary = "pre-encrypt ESP app images (esp_encrypted_img), or decrypt them as the device does",
    .opts = opts,
    .min_args = 1,
    .max_args = 1,
    .run = run,
};
