/*
 * fwrel-keygen - create signing keys: the private key (encrypted PKCS#8, 0600),
 * the public key, and the SBv2 eFuse key digest (or, for Secure Boot V1, the raw
 * 64-byte verification key); or export those from an existing key (--export).
 *
 * With --keystore: every key a policy names, in the keystore directory
 * (keystore.h), what goes onto the device (--provision), rotation and
 * revocation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"

#include "fwrel/io.h"
#include "fwrel/keygen.h"
#include "fwrel/key.h"
#include "fwrel/keystore.h"
#include "fwrel/policy.h"
#include "fwrel/sbv2.h"
#include "util.h"

static struct {
    const char *output, *scheme, *export_key, *pass_file, *pass_fd;
    const char *policy, *keystore, *provision, *rotate, *revoke, *repo, *pin_file, *reason, *since;
    int sbv1, no_pass, force, list;
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
    {"force", 'f', FWREL_OPT_FLAG, NULL,
     "replace existing output files; with --policy, rotate every key the policy names", &o.force},
    {"keystore", 'K', FWREL_OPT_STR, "DIR", "the keystore directory (created 0700 if absent)",
     &o.keystore},
    {"policy", 'p', FWREL_OPT_STR, "POLICY",
     "create in --keystore every key POLICY names that it lacks", &o.policy},
    {"provision", 0, FWREL_OPT_STR, "OUTDIR",
     "with --policy: write what goes onto the device into the new directory OUTDIR", &o.provision},
    {"repo", 'r', FWREL_OPT_STR, "DIR",
     "with --policy: the release repository whose audit log records the keys (default: the "
     "policy's)",
     &o.repo},
    {"rotate", 0, FWREL_OPT_STR, "NAME|PURPOSE",
     "retire the active key NAME (or every active key of PURPOSE) and create the next epoch",
     &o.rotate},
    {"revoke", 0, FWREL_OPT_STR, "NAME", "record the active key NAME as revoked", &o.revoke},
    {"reason", 0, FWREL_OPT_STR, "superseded|compromised",
     "with --revoke (required): why; a superseded key's earlier releases stay valid, a "
     "compromised key's releases from --since on fail",
     &o.reason},
    {"since", 0, FWREL_OPT_STR, "DATE",
     "with --revoke: from when the reason holds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC; "
     "default: now)",
     &o.since},
    {"list", 'l', FWREL_OPT_FLAG, NULL, "list the keystore's keys", &o.list},
    {"pin-file", 0, FWREL_OPT_STR, "FILE",
     "the PIN of the policy's HSM keys whose URI has no pin-source (a 0600 file; default: the "
     "terminal)",
     &o.pin_file},
    {NULL, 0, 0, NULL, NULL, NULL},
};

#define MAX_OUT 3

enum out_kind { OUT_PRIVATE, OUT_PUBLIC, OUT_RAW64, OUT_DIGEST };

/* One file of the key set. */
struct output {
    int kind; /* enum out_kind */
    char path[4200];
    const char *what; /* for the text output */
    const char *json; /* its name in the --json result */
};

static int run_keystore(fwrel_ctx *ctx);

static int run(fwrel_ctx *ctx)
{
    char prefix[4096];
    struct output out[MAX_OUT];
    int nout = 0, npub = 0, type = FWREL_KEY_ECDSA256, error;
    unsigned flags = o.force ? FWREL_OUT_FORCE : 0;
    fwrel_pkey *key = NULL;
    char *pass = NULL;
    size_t pass_len = 0;
    fwrel_pass_src src;
    char digest_hex[65] = "", id[65] = "";

    if (ctx->argc != 0)
        return fwrel_cmd_usage(ctx, "unexpected argument '%s'", ctx->argv[0]);
    if (o.keystore != NULL)
        return run_keystore(ctx);
    if (o.policy || o.provision || o.rotate || o.revoke || o.list || o.pin_file || o.reason ||
        o.since)
        return fwrel_cmd_usage(ctx, "--policy, --provision, --rotate, --revoke, --reason, --since, "
                                    "--list and --pin-file need --keystore");
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

    /* KEY.pem is written where -o says; its siblings are named from it without ".pem". */
    size_t n = strlen(o.output);
    if (n >= sizeof(prefix))
        return fwrel_cmd_usage(ctx, "output path too long");
    memcpy(prefix, o.output, n + 1);
    if (n > 4 && strcmp(prefix + n - 4, ".pem") == 0)
        prefix[n - 4] = '\0';
    if (o.export_key == NULL) {
        snprintf(out[nout].path, sizeof(out[0].path), "%s", o.output);
        out[nout].kind = OUT_PRIVATE;
        out[nout].what =
            src.kind == FWREL_PASS_NONE ? "private key, NOT encrypted" : "private key, encrypted";
        out[nout++].json = "private_key";
    }
    snprintf(out[nout].path, sizeof(out[0].path), "%s.pub.pem", prefix);
    out[nout].kind = OUT_PUBLIC;
    out[nout].what = "public key";
    out[nout++].json = "public_key";
    if (o.sbv1) {
        snprintf(out[nout].path, sizeof(out[0].path), "%s.pub.raw", prefix);
        out[nout].kind = OUT_RAW64;
        out[nout].what = "Secure Boot V1 verification key, 64 bytes X||Y";
        out[nout++].json = "sbv1_public_key";
    } else {
        snprintf(out[nout].path, sizeof(out[0].path), "%s.digest.bin", prefix);
        out[nout].kind = OUT_DIGEST;
        out[nout].what = "Secure Boot V2 key digest for eFuse";
        out[nout++].json = "sbv2_key_digest_file";
    }
    /* All outputs appear together or not at all: refuse before any slow work. */
    for (int i = 0; i < nout; i++)
        if (fwrel_io_check_new(out[i].path, flags) != 0)
            return fwrel_cmd_fail(ctx, out[i].path);

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
            snprintf(prompt, sizeof(prompt), "New passphrase for %s: ", out[0].path);
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

    if ((error = fwrel_key_id(id, key)) != 0) {
        error = fwrel_cmd_fail(ctx, NULL);
        goto done;
    }
    for (npub = 0; npub < nout; npub++) {
        const char *path = out[npub].path;
        uint8_t raw[64], digest[32];
        switch (out[npub].kind) {
        case OUT_PRIVATE:
            error = fwrel_key_write_private(key, path, pass, pass_len, flags);
            break;
        case OUT_PUBLIC:
            error = fwrel_key_write_public(key, path, flags);
            break;
        case OUT_RAW64:
            if ((error = fwrel_key_raw64(raw, key)) == 0)
                error = fwrel_io_write_file(path, raw, sizeof(raw), flags, 0644);
            break;
        default:
            if ((error = fwrel_sbv2_key_digest(digest, key)) == 0 &&
                (error = fwrel_io_write_file(path, digest, sizeof(digest), flags, 0644)) == 0)
                fwrel_hex(digest_hex, digest, sizeof(digest));
            break;
        }
        if (error) {
            error = fwrel_cmd_fail(ctx, fwrel_error_last()->about == FWREL_ABOUT_OUTPUT ? path : NULL);
            /* Take back what this run published, so that no half key set remains. */
            for (int k = 0; k < npub; k++)
                unlink(out[k].path);
            goto done;
        }
    }

    json_t *files = json_array();
    for (int k = 0; k < nout; k++) {
        json_array_append_new(files, json_string(out[k].path));
        fwrel_cmd_set(ctx, out[k].json, json_string(out[k].path));
        fwrel_cmd_print(ctx, "wrote %s (%s)\n", out[k].path, out[k].what);
    }
    fwrel_cmd_set(ctx, "files", files);
    fwrel_cmd_set(ctx, "scheme", json_string(fwrel_key_type_name(type)));
    fwrel_cmd_set(ctx, "key_id", json_string(id));
    if (o.export_key == NULL)
        fwrel_cmd_set(ctx, "encrypted", json_boolean(pass != NULL));
    fwrel_cmd_print(ctx, "scheme:  %s\nkey id:  %s\n", fwrel_key_type_name(type), id);
    if (digest_hex[0] != '\0') {
        fwrel_cmd_set(ctx, "sbv2_key_digest", json_string(digest_hex));
        fwrel_cmd_print(ctx, "digest:  %s\n", digest_hex);
    }
    error = 0;
done:
    fwrel_pass_free(pass, pass_len);
    fwrel_key_free(key);
    return error;
}

/* --- keystore mode: keygen.h does the work, this shows it ------------------------------- */

static json_t *entry_json(const fwrel_keystore_entry *e)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "name", e->name, "id", e->id,
                          "purpose", fwrel_purpose_name(e->purpose), "alg", fwrel_alg_name(e->alg),
                          "status", fwrel_keystore_status_name(e->status), "epoch", (int)e->epoch,
                          "created", e->created);
    if (e->slot >= 0)
        json_object_set_new(j, "slot", json_integer(e->slot));
    if (e->uri != NULL)
        json_object_set_new(j, "uri", json_string(e->uri));
    if (e->status == FWREL_KS_REVOKED) {
        json_object_set_new(j, "reason", json_string(fwrel_keystore_reason_name(e->reason)));
        json_object_set_new(j, "since", e->since[0] ? json_string(e->since) : json_null());
    }
    return j;
}

/* What a keystore run shows: its text output and its --json result. */
struct shown {
    fwrel_ctx *ctx;
    json_t *made, *keys, *files;
};

static void show(void *arg, const fwrel_keygen_event *ev)
{
    struct shown *sh = arg;
    fwrel_ctx *ctx = sh->ctx;
    const fwrel_keystore_entry *e = ev->entry;

    switch (ev->kind) {
    case FWREL_KEYGEN_EV_RECOVERED:
        fwrel_cmd_print(ctx,
                        "%s: undid %u change(s) left unfinished by a killed fwrel-keygen "
                        "(keystore as before them)\n",
                        o.keystore, ev->count);
        break;
    case FWREL_KEYGEN_EV_KEY:
        fwrel_cmd_print(ctx, "%-8s %-20s epoch %-3u %-16s %-9s %s%s%s%s%s%s%s\n", ev->verb, e->name,
                        e->epoch, fwrel_purpose_name(e->purpose), fwrel_alg_name(e->alg), e->id,
                        e->uri != NULL ? " hsm " : "", e->uri != NULL ? e->uri : "",
                        e->reason ? " " : "",
                        e->reason ? fwrel_keystore_reason_name(e->reason) : "",
                        e->reason ? " since " : "", e->reason ? e->since : "");
        if (ev->changed)
            json_array_append_new(sh->made, entry_json(e));
        break;
    case FWREL_KEYGEN_EV_REVOKED_SLOT:
        if (ev->text == NULL) { /* docs/esp-formats.md §2.9 */
            fwrel_cmd_print(ctx,
                            "Secure boot slot %u is recorded as revoked. %s: no espefuse "
                            "command revokes it on a device; devices keep accepting it.\n",
                            ev->count, ev->verb);
            fwrel_cmd_set(ctx, "efuse_command", json_null());
            break;
        }
        fwrel_cmd_print(ctx,
                        "Secure boot slot %u is recorded as revoked. To revoke it on a "
                        "device (irreversible; sign with another slot first):\n    %s\n",
                        ev->count, ev->text);
        fwrel_cmd_set(ctx, "efuse_command", json_string(ev->text));
        break;
    case FWREL_KEYGEN_EV_FILE:
        if (sh->files == NULL)
            sh->files = json_array();
        if (e == NULL) { /* the README: listed, not printed */
            json_array_append_new(sh->files,
                                  json_pack("{s:s, s:s}", "file", ev->path, "what", ev->text));
            break;
        }
        json_array_append_new(sh->files, json_pack("{s:s, s:s, s:s, s:s}", "file", ev->path, "key",
                                                   e->name, "key_id", e->id, "what", ev->text));
        fwrel_cmd_print(ctx, "wrote %s (%s)\n", ev->path, ev->text);
        break;
    case FWREL_KEYGEN_EV_PROVISIONED:
        fwrel_cmd_set(ctx, "provision", sh->files != NULL ? sh->files : json_array());
        sh->files = NULL;
        break;
    case FWREL_KEYGEN_EV_FAIL:
        fwrel_cmd_fail(ctx, ev->path);
        break;
    case FWREL_KEYGEN_EV_LOGGED:
        fwrel_cmd_print(ctx, "recorded in the audit log %s\n", ev->path);
        break;
    case FWREL_KEYGEN_EV_STATE:
        json_array_append_new(sh->keys, entry_json(e));
        break;
    default:
        break;
    }
}

static int run_keystore(fwrel_ctx *ctx)
{
    int policy_mode = o.policy && !o.rotate && !o.revoke && !o.list;
    int error, modes = policy_mode + (o.rotate != NULL) + (o.revoke != NULL) + o.list;
    struct shown sh = {.ctx = ctx, .made = json_array(), .keys = json_array()};
    fwrel_keygen_opts ko = {
        .mode = policy_mode ? FWREL_KEYGEN_POLICY
                : o.rotate  ? FWREL_KEYGEN_ROTATE
                : o.revoke  ? FWREL_KEYGEN_REVOKE
                            : FWREL_KEYGEN_LIST,
        .keystore = o.keystore,
        .policy = o.policy,
        .provision = o.provision,
        .repo = o.repo,
        .name = o.rotate != NULL ? o.rotate : o.revoke,
        .reason = fwrel_keystore_reason_parse(o.reason),
        .since = o.since,
        .force = o.force,
        .pin_file = o.pin_file,
        .notify = show,
        .arg = &sh,
    };

    if (o.output || o.scheme || o.export_key || o.sbv1)
        error = fwrel_cmd_usage(ctx, "--keystore does not take -o, --scheme, --export or --sbv1");
    else if (modes != 1)
        error = fwrel_cmd_usage(ctx, "with --keystore give one of --policy, --rotate, --revoke "
                                     "and --list");
    else if ((o.reason || o.since) && !o.revoke)
        error = fwrel_cmd_usage(ctx, "--reason and --since go with --revoke");
    else if (o.revoke && ko.reason == 0)
        error = fwrel_cmd_usage(ctx, "--revoke needs --reason superseded or --reason compromised");
    else if (o.repo && !o.policy)
        error = fwrel_cmd_usage(ctx, "--repo needs --policy");
    else if (o.provision && !policy_mode)
        error = fwrel_cmd_usage(ctx, "--provision needs --policy");
    else if ((error = fwrel_cmd_pass_source(ctx, &ko.pass, o.pass_file, o.pass_fd, o.no_pass)) == 0)
        error = fwrel_keygen_run(&ko);
    fwrel_cmd_set(ctx, "changed", error ? json_array() : json_incref(sh.made));
    json_decref(sh.made);
    fwrel_cmd_set(ctx, "keys", error ? json_array() : sh.keys);
    if (error)
        json_decref(sh.keys);
    json_decref(sh.files);
    return error;
}

const fwrel_cmd fwrel_command = {
    .name = "fwrel-keygen",
    .synopsis =
        "--scheme SCHEME [--sbv1] [--passphrase-file F | --passphrase-fd N | "
        "--no-passphrase] [--force] -o KEY.pem\n"
        "--export KEY.pem [--sbv1] [--passphrase-file F | --passphrase-fd N] [--force] "
        "-o PREFIX\n"
        "--keystore DIR --policy POLICY [--provision OUTDIR] [--force] [passphrase options]\n"
        "--keystore DIR (--rotate NAME|PURPOSE | --revoke NAME --reason superseded|compromised "
        "[--since DATE] | --list) [--policy POLICY]",
    .summary = "create a product's keys in a keystore from its policy, or single signing keys",
    .opts = opts,
    .min_args = 0,
    .max_args = 0,
    .run = run,
};
