/*
 * fwrel-keygen - create signing keys: the private key (encrypted PKCS#8, 0600),
 * the public key, and the SBv2 eFuse key digest (or, for Secure Boot V1, the raw
 * 64-byte verification key); or export those from an existing key (--export).
 *
 * With --keystore: every key a policy names, in the keystore directory
 * (keystore_dir.h), what goes onto the device (--provision), rotation and
 * revocation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"

#include <errno.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pwd.h>

#include "fwrel/audit.h"
#include "fwrel/hsm.h"
#include "fwrel/io.h"
#include "fwrel/keystore.h"
#include "fwrel/keystore_dir.h"
#include "fwrel/outdir.h"
#include "fwrel/policy.h"
#include "fwrel/repo.h"
#include "fwrel/sbv2.h"
#include "util.h"

static struct {
    const char *output, *scheme, *export_key, *pass_file, *pass_fd;
    const char *policy, *keystore, *provision, *rotate, *revoke, *repo, *pin_file;
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
    {"keystore", 'k', FWREL_OPT_STR, "DIR", "the keystore directory (created 0700 if absent)",
     &o.keystore},
    {"policy", 'p', FWREL_OPT_STR, "POLICY",
     "create in --keystore every key POLICY names that it lacks", &o.policy},
    {"provision", 0, FWREL_OPT_STR, "OUTDIR",
     "with --policy: write what goes onto the device into the new directory OUTDIR", &o.provision},
    {"repo", 0, FWREL_OPT_STR, "DIR",
     "with --policy: the release repository whose audit log records the keys (default: the "
     "policy's)",
     &o.repo},
    {"rotate", 0, FWREL_OPT_STR, "NAME|PURPOSE",
     "retire the active key NAME (or every active key of PURPOSE) and create the next epoch",
     &o.rotate},
    {"revoke", 0, FWREL_OPT_STR, "NAME", "record the active key NAME as revoked", &o.revoke},
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
    if (o.policy || o.provision || o.rotate || o.revoke || o.list || o.pin_file)
        return fwrel_cmd_usage(ctx, "--policy, --provision, --rotate, --revoke, --list and "
                                    "--pin-file need --keystore");
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
            error = fwrel_cmd_fail(ctx, fwrel_error_last()->output ? path : NULL);
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

/* --- keystore mode ------------------------------------------------------------------- */

static json_t *entry_json(const fwrel_ks_entry *e)
{
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "name", e->name, "id", e->id, "purpose",
                  fwrel_purpose_name(e->purpose), "alg", fwrel_alg_name(e->alg), "status",
                  fwrel_ks_status_name(e->status), "epoch", (int)e->epoch, "created", e->created);
    if (e->slot >= 0)
        json_object_set_new(j, "slot", json_integer(e->slot));
    if (e->uri != NULL)
        json_object_set_new(j, "uri", json_string(e->uri));
    return j;
}

static void print_entry(fwrel_ctx *ctx, const char *verb, const fwrel_ks_entry *e)
{
    fwrel_cmd_print(ctx, "%-8s %-20s epoch %-3u %-16s %-9s %s%s%s\n", verb, e->name, e->epoch,
                    fwrel_purpose_name(e->purpose), fwrel_alg_name(e->alg), e->id,
                    e->uri != NULL ? " hsm " : "", e->uri != NULL ? e->uri : "");
}

/* The policy algorithm of an HSM key's public half (hsm.h opens RSA-3072, EC P-256, Ed25519). */
static int hsm_alg(const fwrel_pkey *pub)
{
    int type;
    switch (EVP_PKEY_get_base_id(pub)) {
    case EVP_PKEY_RSA:
        return EVP_PKEY_get_bits(pub) == 3072 ? FWREL_ALG_RSA3072 : 0;
    case EVP_PKEY_ED25519:
        return FWREL_ALG_ED25519;
    case EVP_PKEY_EC:
        if (fwrel_key_type_of(&type, pub) != 0) {
            fwrel_error_clear();
            return 0;
        }
        return type == FWREL_KEY_ECDSA256 ? FWREL_ALG_ECDSA256 : 0;
    default:
        return 0;
    }
}

/*
 * Open the HSM key a policy key names (PIN: the URI's pin-source, else --pin-file, else the
 * terminal), check its algorithm is the policy's, and keep its public half and id; the token
 * is closed again. A revoked key is never recorded again, whatever its name.
 */
static int hsm_public(fwrel_ctx *ctx, fwrel_pkey **pub, char id[65], const fwrel_keystore *ks,
                      const fwrel_policy_key *k)
{
    fwrel_hsm_key *hk = NULL;
    fwrel_pass_src pin = {o.pin_file != NULL ? FWREL_PASS_FILE : FWREL_PASS_TTY, -1, o.pin_file};
    int error, alg;

    *pub = NULL;
    if ((error = fwrel_hsm_key_open(&hk, k->hsm, NULL, &pin)) != 0) {
        error = fwrel_cmd_fail(ctx, k->hsm);
        goto done;
    }
    *pub = (fwrel_pkey *)fwrel_hsm_key_public(hk);
    if (EVP_PKEY_up_ref(*pub) != 1) {
        *pub = NULL;
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        error = fwrel_cmd_fail(ctx, NULL);
        goto done;
    }
    if ((error = fwrel_key_id(id, *pub)) != 0) {
        error = fwrel_cmd_fail(ctx, k->hsm);
        goto done;
    }
    if ((alg = hsm_alg(*pub)) != k->alg) {
        fwrel_error_set(FWREL_EKEY, "key %s: the HSM key (id %s) is %s, the policy says %s",
                        k->name, id, alg != 0 ? fwrel_alg_name(alg) : "another algorithm",
                        fwrel_alg_name(k->alg));
        error = fwrel_cmd_fail(ctx, o.policy);
        goto done;
    }
    for (size_t i = 0; i < fwrel_ks_count(ks); i++) {
        const fwrel_ks_entry *e = fwrel_ks_entry_at(ks, i);
        if (e->status == FWREL_KS_REVOKED && strcmp(e->id, id) == 0) {
            fwrel_error_set(FWREL_EKEY,
                            "key %s: the HSM key (id %s) is revoked (%s epoch %u): put a new "
                            "key on the token",
                            k->name, id, e->name, e->epoch);
            error = fwrel_cmd_fail(ctx, o.keystore);
            goto done;
        }
    }
    error = 0;
done:
    if (error) {
        fwrel_key_free(*pub);
        *pub = NULL;
    }
    fwrel_hsm_key_close(hk);
    return error;
}

/* The eFuse digest slot a policy gives a secure-boot key, or -1. */
static int policy_slot(const fwrel_policy *p, size_t key)
{
    for (size_t j = 0; j < p->nslots; j++)
        if (p->slots[j].key == key)
            return (int)p->slots[j].slot;
    return -1;
}

/*
 * One passphrase for the whole run, checked against the keystore's encrypted
 * keys before anything is written. A tty asks twice for a keystore's first one.
 */
static int run_pass(fwrel_ctx *ctx, const fwrel_keystore *ks, const fwrel_pass_src *src,
                    char **pass, size_t *pass_len)
{
    int error, any = 0;
    *pass = NULL;
    *pass_len = 0;
    for (size_t i = 0; i < fwrel_ks_count(ks); i++)
        any |= fwrel_ks_entry_at(ks, i)->encrypted;
    if (src->kind != FWREL_PASS_NONE &&
        (error = fwrel_pass_read(pass, pass_len, src, "Keystore passphrase: ", !any)) != 0)
        return fwrel_cmd_fail(ctx, src->kind == FWREL_PASS_FILE ? o.pass_file : NULL);
    if ((error = fwrel_ks_check_pass(ks, *pass, *pass_len)) != 0) {
        fwrel_pass_free(*pass, *pass_len);
        *pass = NULL;
        return fwrel_cmd_fail(ctx, o.keystore);
    }
    return 0;
}

enum action { KEEP, CREATE, ROTATE };

/*
 * Decide for an HSM key (its public half and id read from the token already): KEEP when the
 * keystore's active entry has the policy's URI and that key; CREATE when the name is new;
 * ROTATE with --force; else refuse, naming the ids.
 */
static int hsm_action(fwrel_ctx *ctx, int *act, const fwrel_policy_key *k, const fwrel_ks_entry *e,
                      const char *id)
{
    if (k->id[0] != '\0' && strcmp(k->id, id) != 0) {
        fwrel_error_set(FWREL_EKEY, "key %s: the policy pins id %s, the HSM key is %s", k->name,
                        k->id, id);
        return fwrel_cmd_fail(ctx, o.policy);
    }
    if (e == NULL) {
        *act = CREATE;
        return 0;
    }
    if (e->purpose != k->purpose) {
        fwrel_error_set(FWREL_EKEY,
                        "key %s (id %s) is a %s key in the keystore, the policy says %s", k->name,
                        e->id, fwrel_purpose_name(e->purpose), fwrel_purpose_name(k->purpose));
        return fwrel_cmd_fail(ctx, o.keystore);
    }
    int same_uri = e->uri != NULL && strcmp(e->uri, k->hsm) == 0;
    if (same_uri && strcmp(e->id, id) == 0 && e->status == FWREL_KS_ACTIVE) {
        *act = KEEP;
        return 0;
    }
    if (o.force) {
        *act = ROTATE;
        return 0;
    }
    if (e->status != FWREL_KS_ACTIVE)
        fwrel_error_set(FWREL_EKEY,
                        "key %s (id %s) is %s, the HSM key is %s: give --force or --rotate %s "
                        "to record it",
                        k->name, e->id, fwrel_ks_status_name(e->status), id, k->name);
    else if (same_uri)
        fwrel_error_set(FWREL_EKEY,
                        "key %s: the keystore records id %s for this URI, the token now holds "
                        "id %s: give --force or --rotate %s to record the new key",
                        k->name, e->id, id, k->name);
    else
        fwrel_error_set(FWREL_EKEY,
                        "key %s (id %s) is recorded %s%s, the policy names the HSM key %s (id "
                        "%s): give --force or --rotate %s to record it",
                        k->name, e->id, e->uri != NULL ? "with the URI " : "as a software key",
                        e->uri != NULL ? e->uri : "", k->hsm, id, k->name);
    return fwrel_cmd_fail(ctx, o.keystore);
}

/*
 * The keys a policy names: every decision first, then a keystore change (fwrel_ks_begin(),
 * *began set) creating the new keys; the caller commits it.
 */
static int keys_from_policy(fwrel_ctx *ctx, fwrel_keystore *ks, const fwrel_policy *p,
                            const char *pass, size_t pass_len, json_t *made, int *began)
{
    int act[FWREL_POLICY_MAX_KEYS];
    fwrel_pkey *pubs[FWREL_POLICY_MAX_KEYS] = {NULL};
    char id[65];
    int error = 0;

    /* Decide everything first (HSM keys read from their tokens): a refusal leaves the keystore
     * as it was. */
    for (size_t i = 0; i < p->nkeys; i++) {
        const fwrel_policy_key *k = &p->keys[i];
        const fwrel_ks_entry *e = fwrel_ks_find(ks, k->name);
        if (k->hsm != NULL && k->purpose == FWREL_PURPOSE_SECURE_BOOT &&
            p->scheme == FWREL_POLICY_SBV1) {
            fwrel_error_set(FWREL_EUSAGE,
                            "key %s: HSM keys sign Secure Boot V2 images only, not Secure Boot "
                            "V1",
                            k->name);
            error = fwrel_cmd_fail(ctx, o.policy);
            goto done;
        }
        if (k->hsm != NULL) {
            if ((error = hsm_public(ctx, &pubs[i], id, ks, k)) != 0 ||
                (error = hsm_action(ctx, &act[i], k, e, id)) != 0)
                goto done;
            continue;
        }
        if (e == NULL) {
            if (k->id[0] != '\0') {
                fwrel_error_set(FWREL_EKEY,
                                "key %s: the policy pins id %s, which is not in the "
                                "keystore",
                                k->name, k->id);
                error = fwrel_cmd_fail(ctx, o.policy);
                goto done;
            }
            act[i] = CREATE;
        } else if (e->purpose != k->purpose) {
            fwrel_error_set(FWREL_EKEY,
                            "key %s (id %s) is a %s key in the keystore, the policy "
                            "says %s",
                            k->name, e->id, fwrel_purpose_name(e->purpose),
                            fwrel_purpose_name(k->purpose));
            error = fwrel_cmd_fail(ctx, o.keystore);
            goto done;
        } else if (o.force) {
            act[i] = ROTATE;
        } else if (e->status != FWREL_KS_ACTIVE) {
            fwrel_error_set(FWREL_EKEY, "key %s (id %s) is %s: give --rotate %s for a new one",
                            k->name, e->id, fwrel_ks_status_name(e->status), k->name);
            error = fwrel_cmd_fail(ctx, o.keystore);
            goto done;
        } else if (e->uri != NULL) {
            fwrel_error_set(FWREL_EKEY,
                            "key %s (id %s) is held in an HSM (%s), the policy names no hsm: "
                            "give --force for a software key",
                            k->name, e->id, e->uri);
            error = fwrel_cmd_fail(ctx, o.keystore);
            goto done;
        } else if (e->alg != k->alg) {
            fwrel_error_set(FWREL_EKEY,
                            "key %s (id %s) is %s, the policy says %s: give --rotate "
                            "%s",
                            k->name, e->id, fwrel_alg_name(e->alg), fwrel_alg_name(k->alg),
                            k->name);
            error = fwrel_cmd_fail(ctx, o.keystore);
            goto done;
        } else if (k->id[0] != '\0' && strcmp(k->id, e->id) != 0) {
            fwrel_error_set(FWREL_EKEY, "key %s: the policy pins id %s, the keystore's key is %s",
                            k->name, k->id, e->id);
            error = fwrel_cmd_fail(ctx, o.policy);
            goto done;
        } else {
            act[i] = KEEP;
        }
    }
    for (size_t i = 0; i < p->nkeys && !*began; i++)
        if (act[i] != KEEP) {
            if ((error = fwrel_ks_begin(ks)) != 0) {
                error = fwrel_cmd_fail(ctx, o.keystore);
                goto done;
            }
            *began = 1;
        }
    for (size_t i = 0; i < p->nkeys; i++) {
        const fwrel_policy_key *k = &p->keys[i];
        const fwrel_ks_entry *e = fwrel_ks_find(ks, k->name);
        if (act[i] == KEEP) {
            print_entry(ctx, "kept", e);
            continue;
        }
        fwrel_ks_new spec = {
            .name = k->name,
            .purpose = k->purpose,
            .alg = k->alg,
            .slot = k->purpose == FWREL_PURPOSE_SECURE_BOOT ? policy_slot(p, i) : -1,
        };
        if (spec.purpose == FWREL_PURPOSE_SECURE_BOOT && spec.slot < 0)
            spec.slot = 0;
        error = k->hsm != NULL ? fwrel_ks_add_hsm(ks, &spec, k->hsm, pubs[i], act[i] == ROTATE, &e)
                               : fwrel_ks_generate(ks, &spec, pass, pass_len, act[i] == ROTATE, &e);
        if (error == 0)
            error = fwrel_test_hook("keygen.key"); /* tests: a failure after a key is made */
        if (error) {
            error = fwrel_cmd_fail(ctx, o.keystore);
            goto done;
        }
        print_entry(ctx, act[i] == ROTATE ? "rotated" : "created", e);
        json_array_append_new(made, entry_json(e));
    }
    error = 0;
done:
    for (size_t i = 0; i < p->nkeys; i++)
        fwrel_key_free(pubs[i]);
    return error;
}

/* --- provisioning --- */

struct prov {
    fwrel_ctx *ctx;
    const char *dir;
    fwrel_outdir *od; /* the files are staged there, published when everything is made */
    unsigned flags;
    FILE *readme; /* memory stream */
    char *readme_buf;
    size_t readme_len;
    json_t *files;
    const char *chip;
};

/* A file staged: listed for --json and the README (under its published path). */
static int prov_done(struct prov *pv, const char *file, const fwrel_ks_entry *e, const char *what)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", pv->dir, file);
    if (fwrel_test_hook("keygen.provision") != 0) /* tests: a failure while provisioning */
        return fwrel_cmd_fail(pv->ctx, path);
    json_array_append_new(pv->files, json_pack("{s:s, s:s, s:s, s:s}", "file", path, "key", e->name,
                                               "key_id", e->id, "what", what));
    fwrel_cmd_print(pv->ctx, "wrote %s (%s)\n", path, what);
    fprintf(pv->readme, "%s\n    %s; key %s, epoch %u, id %s\n", file, what, e->name, e->epoch,
            e->id);
    return 0;
}

/* Stage a file; the error names its published path. */
static int prov_write(struct prov *pv, const char *file, const void *data, size_t len,
                      unsigned mode, const fwrel_ks_entry *e, const char *what)
{
    char path[4200];
    if (fwrel_outdir_path(path, sizeof(path), pv->od, file) != 0 ||
        fwrel_io_write_file(path, data, len, 0, (mode_t)mode) != 0) {
        snprintf(path, sizeof(path), "%s/%s", pv->dir, file);
        return fwrel_cmd_fail(pv->ctx, path);
    }
    return prov_done(pv, file, e, what);
}

static int prov_pem(struct prov *pv, const char *file, const fwrel_pkey *key, int private_key,
                    const fwrel_ks_entry *e, const char *what)
{
    char path[4200];
    int error = fwrel_outdir_path(path, sizeof(path), pv->od, file);
    if (error == 0)
        error = private_key ? fwrel_key_write_private(key, path, NULL, 0, 0)
                            : fwrel_key_write_public(key, path, 0);
    if (error) {
        snprintf(path, sizeof(path), "%s/%s", pv->dir, file);
        return fwrel_cmd_fail(pv->ctx, path);
    }
    return prov_done(pv, file, e, what);
}

static int provision_key(struct prov *pv, const fwrel_policy *p, size_t i, const fwrel_keystore *ks,
                         const fwrel_ks_entry *e, const char *pass, size_t pass_len)
{
    char file[160];
    fwrel_pkey *key = NULL;
    uint8_t *secret = NULL, buf[64];
    size_t secret_len = 0;
    int error = 0, esp32 = strcmp(pv->chip, "esp32") == 0;
    const char *name = p->keys[i].name;

    switch (e->purpose) {
    case FWREL_PURPOSE_SECURE_BOOT: {
        int slot = policy_slot(p, i);
        if ((error = fwrel_ks_load_public(&key, ks, e)) != 0) {
            error = fwrel_cmd_fail(pv->ctx, o.keystore);
            break;
        }
        snprintf(file, sizeof(file), "%s.pub.pem", name);
        if ((error = prov_pem(pv, file, key, 0, e, "secure boot public key")) != 0)
            break;
        if (p->scheme == FWREL_POLICY_SBV1) {
            if (fwrel_key_raw64(buf, key) != 0) {
                error = fwrel_cmd_fail(pv->ctx, o.keystore);
                break;
            }
            snprintf(file, sizeof(file), "%s.pub.raw", name);
            error = prov_write(pv, file, buf, 64, 0644, e,
                               "Secure Boot V1 verification key, 64 bytes X||Y");
            fprintf(pv->readme, "    Build it into the bootloader: CONFIG_SECURE_BOOT_V1 with "
                                "this key as signature_verification_key.bin.\n");
            break;
        }
        if (fwrel_sbv2_key_digest(buf, key) != 0) {
            error = fwrel_cmd_fail(pv->ctx, o.keystore);
            break;
        }
        snprintf(file, sizeof(file), "%s.digest.bin", name);
        if ((error = prov_write(pv, file, buf, 32, 0644, e,
                                "Secure Boot V2 public key digest (32 bytes)")) != 0)
            break;
        if (esp32)
            fprintf(pv->readme, "    espefuse.py --chip esp32 burn_key secure_boot_v2 %s\n", file);
        else
            fprintf(pv->readme,
                    "    espefuse.py --chip %s burn_key BLOCK_KEY%d %s SECURE_BOOT_DIGEST%d\n"
                    "    (BLOCK_KEY%d or any free key block)\n",
                    pv->chip, slot, file, slot, slot);
        break;
    }
    case FWREL_PURPOSE_MANIFEST_SIGN:
        if ((error = fwrel_ks_load_public(&key, ks, e)) != 0) {
            error = fwrel_cmd_fail(pv->ctx, o.keystore);
            break;
        }
        snprintf(file, sizeof(file), "%s.pub.pem", name);
        error = prov_pem(pv, file, key, 0, e, "trusted manifest signing key");
        fprintf(pv->readme, "    Embed in the firmware as a trusted manifest signer "
                            "(docs/manifest.md).\n");
        break;
    case FWREL_PURPOSE_MANIFEST_ENCRYPT:
    case FWREL_PURPOSE_IMAGE_ENCRYPT:
        if (e->uri != NULL) {
            fprintf(pv->readme,
                    "%s: held in an HSM (%s); a device-side key cannot be exported "
                    "from it.\n",
                    name, e->uri);
            break;
        }
        if (e->purpose == FWREL_PURPOSE_IMAGE_ENCRYPT && e->secret[0] != '\0') {
            /* ECC scheme: the device derives its key from an HMAC key in eFuse. */
            if ((error = fwrel_ks_load_secret(&secret, &secret_len, ks, e, pass, pass_len)) != 0) {
                error = fwrel_cmd_fail(pv->ctx, o.keystore);
                break;
            }
            snprintf(file, sizeof(file), "%s.device_hmac_key.bin", name);
            if ((error = prov_write(pv, file, secret, secret_len, 0600, e,
                                    "image decryption: device HMAC key (ECC scheme), SECRET")) != 0)
                break;
            fprintf(pv->readme,
                    "    espefuse.py --chip %s burn_key BLOCK_KEYn %s HMAC_UP\n"
                    "    (a free key block; the device derives the P-256 key with "
                    "CONFIG_PRE_ENCRYPTED_OTA_USE_ECIES)\n",
                    pv->chip, file);
            /* The P-256 key the device derives from it: for device emulation on the host
             * (fwrel-verify's device profile image_key, fwrel-encrypt --decrypt). */
            if (secret_len != 32 || fwrel_ks_derive_ecc_image_key(&key, secret) != 0) {
                error = fwrel_cmd_fail(pv->ctx, o.keystore);
                break;
            }
            snprintf(file, sizeof(file), "%s.private.pem", name);
            if ((error = prov_pem(pv, file, key, 1, e,
                                  "the P-256 key the device derives from it, SECRET")) != 0)
                break;
            fprintf(pv->readme,
                    "    (not for the device, which derives it: for fwrel-verify's device "
                    "profile image_key and fwrel-encrypt --decrypt)\n");
            fwrel_key_free(key);
            key = NULL;
            if ((error = fwrel_ks_load_public(&key, ks, e)) != 0) {
                error = fwrel_cmd_fail(pv->ctx, o.keystore);
                break;
            }
            snprintf(file, sizeof(file), "%s.pub.pem", name);
            error = prov_pem(pv, file, key, 0, e, "image encryption public key (for the host)");
            break;
        }
        if ((error = fwrel_ks_load_private(&key, ks, e, pass, pass_len)) != 0) {
            error = fwrel_cmd_fail(pv->ctx, o.keystore);
            break;
        }
        snprintf(file, sizeof(file), "%s.private.pem", name);
        if (e->purpose == FWREL_PURPOSE_IMAGE_ENCRYPT) {
            error = prov_pem(pv, file, key, 1, e, "image decryption private key, SECRET");
            fprintf(pv->readme, "    Embed in the firmware as esp_encrypted_img's rsa_private.pem "
                                "(esp_encrypted_img RSA-3072 scheme).\n");
        } else {
            error = prov_pem(pv, file, key, 1, e, "manifest decryption private key, SECRET");
            fprintf(pv->readme, "    Embed in the firmware (or its encrypted NVS) as the "
                                "manifest recipient key (docs/manifest.md).\n");
        }
        break;
    case FWREL_PURPOSE_FLASH_ENCRYPT:
    case FWREL_PURPOSE_HMAC:
        if ((error = fwrel_ks_load_secret(&secret, &secret_len, ks, e, pass, pass_len)) != 0) {
            error = fwrel_cmd_fail(pv->ctx, o.keystore);
            break;
        }
        snprintf(file, sizeof(file), "%s.bin", name);
        if (e->purpose == FWREL_PURPOSE_HMAC) {
            if ((error = prov_write(pv, file, secret, secret_len, 0600, e,
                                    "HMAC key (32 bytes), SECRET")) == 0)
                fprintf(pv->readme,
                        "    espefuse.py --chip %s burn_key BLOCK_KEYn %s HMAC_UP "
                        "(or keep it on the update server for the OTA HMAC)\n",
                        pv->chip, file);
            break;
        }
        if ((error = prov_write(pv, file, secret, secret_len, 0600, e,
                                "flash encryption key, SECRET")) != 0)
            break;
        if (esp32)
            fprintf(pv->readme, "    espefuse.py --chip esp32 burn_key flash_encryption %s\n",
                    file);
        else
            fprintf(pv->readme, "    espefuse.py --chip %s burn_key BLOCK_KEYn %s %s\n", pv->chip,
                    file,
                    secret_len == 64   ? "XTS_AES_256_KEY"
                    : secret_len == 16 ? "XTS_AES_128_KEY_DERIVED_FROM_128_EFUSE_BITS"
                                       : "XTS_AES_128_KEY");
        break;
    default:
        break;
    }
    fwrel_io_free_secret(secret, secret_len);
    OPENSSL_cleanse(buf, sizeof(buf));
    fwrel_key_free(key);
    return error;
}

/*
 * Stage what goes onto the device in *od (fwrel_outdir_open() of --provision), which the
 * caller publishes with the keystore change, or aborts.
 */
static int provision(fwrel_ctx *ctx, const fwrel_keystore *ks, const fwrel_policy *p,
                     const char *pass, size_t pass_len, fwrel_outdir **od)
{
    const fwrel_ks_entry *entries[FWREL_POLICY_MAX_KEYS];
    struct prov pv = {.ctx = ctx,
                      .dir = o.provision,
                      .flags = o.force ? FWREL_OUT_FORCE : 0,
                      .chip = p->chip->name};
    char path[4200], hex[65];
    int error;

    if (fwrel_ks_resolve(entries, ks, p) != 0)
        return fwrel_cmd_fail(ctx, o.keystore);
    if (fwrel_outdir_open(od, o.provision, pv.flags) != 0)
        return fwrel_cmd_fail(ctx, o.provision);
    pv.od = *od;
    if ((pv.readme = open_memstream(&pv.readme_buf, &pv.readme_len)) == NULL) {
        fwrel_error_set(FWREL_EIO, "out of memory");
        return fwrel_cmd_fail(ctx, NULL);
    }
    pv.files = json_array();
    fwrel_hex(hex, p->sha256, sizeof(p->sha256));
    fprintf(pv.readme,
            "What goes onto each %s device (%s), made by fwrel-keygen --provision.\n"
            "Policy sha256 %s.\n"
            "Files marked SECRET are device secrets: copy them to the provisioning host only,\n"
            "burn or embed them, then delete them. eFuse writes are irreversible: check the\n"
            "block numbers against your chip's free key blocks (espefuse.py summary) first.\n\n",
            p->product, p->chip->name, hex);
    error = 0;
    for (size_t i = 0; i < p->nkeys && error == 0; i++)
        error = provision_key(&pv, p, i, ks, entries[i], pass, pass_len);
    if (p->nslots > 0 && error == 0 && p->scheme != FWREL_POLICY_SBV1)
        fprintf(pv.readme,
                "\nAfter the digests: espefuse.py --chip %s burn_efuse "
                "SECURE_BOOT_EN 1 (or let the bootloader do it on first boot).\n",
                p->chip->name);
    fclose(pv.readme);
    if (error == 0) {
        if (fwrel_outdir_path(path, sizeof(path), pv.od, "README.txt") != 0 ||
            fwrel_io_write_file(path, pv.readme_buf, pv.readme_len, 0, 0644) != 0 ||
            fwrel_test_hook("keygen.provision") != 0) {
            snprintf(path, sizeof(path), "%s/README.txt", o.provision);
            error = fwrel_cmd_fail(ctx, path);
        } else {
            snprintf(path, sizeof(path), "%s/README.txt", o.provision);
            json_array_append_new(
                pv.files, json_pack("{s:s, s:s}", "file", path, "what", "which file goes where"));
        }
    }
    free(pv.readme_buf);
    fwrel_cmd_set(ctx, "provision", pv.files);
    return error;
}

/*
 * The audit log keygen records in (docs/audit.md): in the release repository --repo names
 * (created if need be), or the policy's when it exists already (keygen does not create it
 * behind the user's back). log[0] is '\0' when there is none.
 */
static int audit_log_path(char *log, size_t size, const fwrel_policy *p)
{
    char repo_path[4096];
    fwrel_repo *repo = NULL;
    int error;

    log[0] = '\0';
    if (o.repo != NULL)
        snprintf(repo_path, sizeof(repo_path), "%s", o.repo);
    else if ((error = fwrel_policy_repo_path(repo_path, sizeof(repo_path), p, o.policy)) != 0)
        return error;
    if (o.repo == NULL && access(repo_path, F_OK) != 0)
        return 0;
    if ((error = fwrel_repo_open(&repo, repo_path, 1)) != 0)
        return error;
    fwrel_repo_free(repo);
    /* Confined as the pipeline's: no symbolic link on the way, the log a regular file. */
    if ((error = fwrel_policy_audit_path(log, size, p, repo_path, 1)) != 0)
        log[0] = '\0';
    return error;
}

/*
 * One audit entry for the keys made, rotated or revoked under a policy (reason NULL), or for
 * a change that failed and was undone (result "fail", no outputs). A key pair is named by its
 * public key file and that file's SHA-256. A raw secret (flash encryption, HMAC key) has no
 * public half, and a hash of it would let anyone holding the log confirm a guess: it is named
 * "NAME.EPOCH (key id)" with its random key id (docs/keystore.md) in the sha256 field, size 0.
 */
static int audit_keys(const char *log, const fwrel_keystore *ks, const fwrel_policy *p,
                      json_t *made, const char *reason)
{
    char sha[65], *text = NULL;
    struct passwd *pw = getpwuid(getuid());
    json_t *e = NULL, *in = json_array(), *out = json_array();
    int error;

    fwrel_hex(sha, p->sha256, sizeof(p->sha256));
    struct stat st;
    const char *base = strrchr(o.policy, '/');
    json_array_append_new(in, json_pack("{s:s,s:s,s:I}", "name", base != NULL ? base + 1 : o.policy,
                                        "sha256", sha, "size",
                                        (json_int_t)(stat(o.policy, &st) == 0 ? st.st_size : 0)));
    for (size_t i = 0; reason == NULL && i < json_array_size(made); i++) {
        const char *name = json_string_value(json_object_get(json_array_get(made, i), "name"));
        const fwrel_ks_entry *k = name != NULL ? fwrel_ks_find(ks, name) : NULL;
        char path[4200], label[120];
        uint8_t *data = NULL;
        size_t len = 0;
        if (k == NULL)
            continue;
        if (k->pub[0] == '\0') {
            snprintf(label, sizeof(label), "%s.%u (key id)", k->name, k->epoch);
            json_array_append_new(
                out, json_pack("{s:s,s:s,s:i}", "name", label, "sha256", k->id, "size", 0));
            continue;
        }
        if ((error = fwrel_ks_path(path, sizeof(path), ks, k->pub)) != 0 ||
            (error = fwrel_io_read_small(&data, &len, path, 1u << 20)) != 0)
            goto done;
        fwrel_sha256_hex(sha, data, len);
        free(data);
        json_array_append_new(out, json_pack("{s:s,s:s,s:I}", "name", k->pub, "sha256", sha, "size",
                                             (json_int_t)len));
    }
    e = json_pack("{s:s,s:{s:s},s:O,s:O,s:s}", "event", "keygen", "who", "user",
                  pw != NULL ? pw->pw_name : "fwrel", "inputs", in, "outputs", out, "result",
                  reason == NULL ? "ok" : "fail");
    if (e != NULL && reason != NULL)
        json_object_set_new(e, "reason", json_string(reason));
    if (e == NULL || (text = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    error = fwrel_audit_append(log, text, strlen(text), NULL);
done:
    free(text);
    json_decref(e);
    json_decref(in);
    json_decref(out);
    return error;
}

/*
 * A failed change: the provisioning directory and the keystore as they were, and (when keygen
 * logs) a "fail" entry naming the step. The error, printed already, is kept.
 */
static void undo(fwrel_ctx *ctx, fwrel_keystore *ks, fwrel_outdir *od, const fwrel_policy *p,
                 json_t *made, const char *step)
{
    fwrel_error saved = *fwrel_error_last();
    char reason[FWREL_ERROR_MSG_MAX + 100], log[6000];

    fwrel_outdir_abort(od);
    if (fwrel_ks_abort(ks) != 0)
        fwrel_cmd_fail(ctx, o.keystore);
    if (p != NULL) {
        snprintf(reason, sizeof(reason), "keygen failed at %s: %s", step, saved.message);
        if (audit_log_path(log, sizeof(log), p) != 0 ||
            (log[0] != '\0' && audit_keys(log, ks, p, made, reason) != 0)) {
            fwrel_error_prefix("cannot record the failure");
            fwrel_cmd_fail(ctx, "audit log");
        }
    }
    fwrel_error_set(saved.code, "%s", saved.message);
}

/* Begin the keystore change of --rotate or --revoke. */
static int begin(fwrel_ctx *ctx, fwrel_keystore *ks, int *began)
{
    if (fwrel_ks_begin(ks) != 0)
        return fwrel_cmd_fail(ctx, o.keystore);
    *began = 1;
    return 0;
}

static int run_keystore(fwrel_ctx *ctx)
{
    fwrel_keystore *ks = NULL;
    fwrel_policy *p = NULL;
    fwrel_outdir *od = NULL;
    fwrel_pass_src src;
    char *pass = NULL, log[6000] = "";
    size_t pass_len = 0;
    int policy_mode = o.policy && !o.rotate && !o.revoke && !o.list;
    int error, modes = policy_mode + (o.rotate != NULL) + (o.revoke != NULL) + o.list;
    int began = 0, logged = 0;
    const char *step = "keys"; /* where a failure after the change began happened */
    json_t *made = json_array(), *keys = json_array();
    fwrel_pkey *rot_pubs[FWREL_KS_MAX_ENTRIES] = {NULL};

    if (o.output || o.scheme || o.export_key || o.sbv1) {
        error = fwrel_cmd_usage(ctx, "--keystore does not take -o, --scheme, --export or --sbv1");
        goto done;
    }
    if (modes != 1) {
        error = fwrel_cmd_usage(ctx, "with --keystore give one of --policy, --rotate, --revoke "
                                     "and --list");
        goto done;
    }
    if (o.repo && !o.policy) {
        error = fwrel_cmd_usage(ctx, "--repo needs --policy");
        goto done;
    }
    if (o.provision && !policy_mode) {
        error = fwrel_cmd_usage(ctx, "--provision needs --policy");
        goto done;
    }
    if ((error = fwrel_cmd_pass_source(ctx, &src, o.pass_file, o.pass_fd, o.no_pass)) != 0)
        goto done;
    if (o.policy != NULL && fwrel_policy_load(&p, o.policy) != 0) {
        error = fwrel_cmd_fail(ctx, o.policy);
        goto done;
    }
    if (fwrel_ks_open(&ks, o.keystore,
                      o.list ? 0 : (FWREL_KS_WRITE | (policy_mode ? FWREL_KS_CREATE : 0))) != 0) {
        error = fwrel_cmd_fail(ctx, o.keystore);
        goto done;
    }
    if (fwrel_ks_recovered(ks) > 0)
        fwrel_cmd_print(ctx,
                        "%s: undid %u change(s) left unfinished by a killed fwrel-keygen "
                        "(keystore as before them)\n",
                        o.keystore, fwrel_ks_recovered(ks));
    if (o.list) {
        for (size_t i = 0; i < fwrel_ks_count(ks); i++)
            print_entry(ctx, fwrel_ks_status_name(fwrel_ks_entry_at(ks, i)->status),
                        fwrel_ks_entry_at(ks, i));
    } else if (o.revoke) {
        const fwrel_ks_entry *e = NULL;
        if (fwrel_ks_find(ks, o.revoke) == NULL ||
            fwrel_ks_find(ks, o.revoke)->status != FWREL_KS_ACTIVE) {
            fwrel_error_set(FWREL_EKEY, "no active key %.64s", o.revoke);
            error = fwrel_cmd_fail(ctx, o.keystore);
            goto done;
        }
        if ((error = begin(ctx, ks, &began)) != 0)
            goto done;
        if (fwrel_ks_revoke(ks, o.revoke, &e) != 0) {
            error = fwrel_cmd_fail(ctx, o.keystore);
            goto done;
        }
        print_entry(ctx, "revoked", e);
        json_array_append_new(made, entry_json(e));
        if (e->purpose == FWREL_PURPOSE_SECURE_BOOT && e->slot >= 0) {
            char cmdline[200];
            snprintf(cmdline, sizeof(cmdline),
                     "espefuse.py%s%s burn_efuse SECURE_BOOT_KEY_REVOKE%d 1",
                     p != NULL ? " --chip " : "", p != NULL ? p->chip->name : "", e->slot);
            fwrel_cmd_print(ctx,
                            "Secure boot slot %d is recorded as revoked. To revoke it on a "
                            "device (irreversible; sign with another slot first):\n    %s\n",
                            e->slot, cmdline);
            fwrel_cmd_set(ctx, "efuse_command", json_string(cmdline));
        }
    } else if (o.rotate) {
        int purpose = fwrel_purpose_parse(o.rotate);
        char names[FWREL_KS_MAX_ENTRIES][FWREL_POLICY_NAME_MAX + 1];
        size_t n = 0;
        if ((error = run_pass(ctx, ks, &src, &pass, &pass_len)) != 0)
            goto done;
        /* The names first: each rotation adds an entry of that name. */
        for (size_t i = 0; i < fwrel_ks_count(ks); i++) {
            const fwrel_ks_entry *e = fwrel_ks_entry_at(ks, i);
            if (purpose ? e->purpose == purpose && e->status == FWREL_KS_ACTIVE
                        : strcmp(e->name, o.rotate) == 0 && fwrel_ks_find(ks, e->name) == e)
                memcpy(names[n++], e->name, sizeof(names[0]));
        }
        /* HSM keys are read from their tokens before anything changes. */
        for (size_t i = 0; i < n; i++) {
            const fwrel_ks_entry *e = fwrel_ks_find(ks, names[i]);
            const fwrel_policy_key *k = p != NULL ? fwrel_policy_key_get(p, e->name) : NULL;
            if (k != NULL && k->purpose == e->purpose && k->hsm != NULL) {
                char id[65];
                if ((error = hsm_public(ctx, &rot_pubs[i], id, ks, k)) != 0)
                    goto done;
                if (e->uri != NULL && strcmp(e->uri, k->hsm) == 0 && strcmp(e->id, id) == 0) {
                    fwrel_error_set(FWREL_EKEY,
                                    "key %s: the token holds the key recorded already (id %s): "
                                    "put the new key on the token, or name it in the policy",
                                    e->name, id);
                    error = fwrel_cmd_fail(ctx, o.keystore);
                    goto done;
                }
            } else if (e->uri != NULL && k == NULL) {
                fwrel_error_set(FWREL_EKEY,
                                "key %s is held in an HSM: create the new key on the "
                                "token, name it in the policy and give --policy",
                                e->name);
                error = fwrel_cmd_fail(ctx, o.keystore);
                goto done;
            }
        }
        if (n == 0) {
            fwrel_error_set(FWREL_EKEY, "no key named %.64s%s in the keystore", o.rotate,
                            purpose ? " and no active key of that purpose" : "");
            error = fwrel_cmd_fail(ctx, o.keystore);
            goto done;
        }
        if ((error = begin(ctx, ks, &began)) != 0)
            goto done;
        for (size_t i = 0; i < n; i++) {
            const fwrel_ks_entry *e = fwrel_ks_find(ks, names[i]), *made_e = NULL;
            const fwrel_policy_key *k = p != NULL ? fwrel_policy_key_get(p, e->name) : NULL;
            fwrel_ks_new spec = {.name = names[i],
                                 .purpose = e->purpose,
                                 .alg = k != NULL && k->purpose == e->purpose ? k->alg : e->alg,
                                 .slot = e->slot};
            if ((rot_pubs[i] != NULL
                     ? fwrel_ks_add_hsm(ks, &spec, k->hsm, rot_pubs[i], 1, &made_e)
                     : fwrel_ks_generate(ks, &spec, pass, pass_len, 1, &made_e)) != 0 ||
                fwrel_test_hook("keygen.key") != 0) {
                error = fwrel_cmd_fail(ctx, o.keystore);
                goto done;
            }
            print_entry(ctx, "rotated", made_e);
            json_array_append_new(made, entry_json(made_e));
        }
    } else {
        if ((error = run_pass(ctx, ks, &src, &pass, &pass_len)) != 0)
            goto done;
        if ((error = keys_from_policy(ctx, ks, p, pass, pass_len, made, &began)) != 0)
            goto done;
        step = "provision";
        if (o.provision && (error = provision(ctx, ks, p, pass, pass_len, &od)) != 0)
            goto done;
    }
    /* Everything is made: the keystore change prepared, logged, committed, then the
     * provisioning directory published. A failure of any step undoes them all. */
    if (began) {
        step = "prepare";
        if ((error = fwrel_ks_prepare(ks)) != 0) {
            error = fwrel_cmd_fail(ctx, o.keystore);
            goto done;
        }
        step = "audit";
        if (p != NULL && json_array_size(made) > 0) {
            if ((error = audit_log_path(log, sizeof(log), p)) != 0 ||
                (error = fwrel_test_hook("keygen.audit")) != 0 ||
                (log[0] != '\0' && (error = audit_keys(log, ks, p, made, NULL)) != 0)) {
                error = fwrel_cmd_fail(ctx, "audit log");
                goto done;
            }
            logged = log[0] != '\0';
        }
        step = "commit";
        if ((error = fwrel_test_hook("keygen.commit")) != 0 || (error = fwrel_ks_commit(ks)) != 0) {
            error = fwrel_cmd_fail(ctx, o.keystore);
            goto done;
        }
    }
    step = "publish";
    if (od != NULL && ((error = fwrel_test_hook("keygen.publish")) != 0 ||
                       (error = fwrel_outdir_publish(od)) != 0)) {
        error = fwrel_cmd_fail(ctx, o.provision);
        goto done;
    }
    fwrel_ks_finish(ks);
    fwrel_outdir_finish(od);
    od = NULL;
    if (logged)
        fwrel_cmd_print(ctx, "recorded in the audit log %s\n", log);
    for (size_t i = 0; i < fwrel_ks_count(ks); i++)
        json_array_append_new(keys, entry_json(fwrel_ks_entry_at(ks, i)));
    error = 0;
done:
    if (error && (began || od != NULL))
        undo(ctx, ks, od, began ? p : NULL, made, step);
    fwrel_cmd_set(ctx, "changed", error ? json_array() : json_incref(made));
    json_decref(made);
    fwrel_cmd_set(ctx, "keys", keys);
    for (size_t i = 0; i < FWREL_KS_MAX_ENTRIES; i++)
        fwrel_key_free(rot_pubs[i]);
    fwrel_pass_free(pass, pass_len);
    fwrel_ks_close(ks);
    fwrel_policy_free(p);
    return error;
}

static const fwrel_cmd cmd = {
    .name = "fwrel-keygen",
    .synopsis =
        "--scheme SCHEME [--sbv1] [--passphrase-file F | --passphrase-fd N | "
        "--no-passphrase] [--force] -o KEY.pem\n"
        "--export KEY.pem [--sbv1] [--passphrase-file F | --passphrase-fd N] [--force] "
        "-o PREFIX\n"
        "--keystore DIR --policy POLICY [--provision OUTDIR] [--force] [passphrase options]\n"
        "--keystore DIR (--rotate NAME|PURPOSE | --revoke NAME | --list) [--policy POLICY]",
    .summary = "create a product's keys in a keystore from its policy, or single signing keys",
    .opts = opts,
    .min_args = 0,
    .max_args = 0,
    .run = run,
};

int main(int argc, char **argv)
{
    return fwrel_cmd_main(&cmd, argc, argv);
}
