/* keygen.c - a product's keys in its keystore directory as one transaction: the policy's keys
 * matched to the keystore and made, provisioning staged, rotation, revocation, the audit entry;
 * stage everything, then commit, or undo it all (keygen.h, docs/keystore.md). */
#include "fwrel/keygen.h"

#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "fwrel/audit.h"
#include "fwrel/hsm.h"
#include "fwrel/io.h"
#include "fwrel/outdir.h"
#include "fwrel/policy.h"
#include "fwrel/repo.h"
#include "fwrel/rules.h"
#include "fwrel/sbv2.h"
#include "util.h"

/* One run. */
struct kg {
    const fwrel_keygen_opts *o;
    fwrel_keystore *ks;
    fwrel_policy *p;
    fwrel_outdir *od; /* the provisioning files are staged there, published at the end */
    char *pass;
    size_t pass_len;
    /* The names of the entries this run made, rotated or revoked, in order (the audit entry). */
    char made[FWREL_KS_MAX_ENTRIES][FWREL_POLICY_NAME_MAX + 1];
    size_t nmade;
};

static void tell(const struct kg *kg, const fwrel_keygen_event *ev)
{
    if (kg->o->notify != NULL)
        kg->o->notify(kg->o->arg, ev);
}

/* Tell the last error, naming what failed (or NULL) when the error names nothing itself (the
 * keystore's functions name the keystore: keystore.h); its code. */
static int fail(const struct kg *kg, const char *path)
{
    const fwrel_keygen_event ev = {.kind = FWREL_KEYGEN_EV_FAIL, .path = path};
    tell(kg, &ev);
    return fwrel_error_last()->code ? fwrel_error_last()->code : FWREL_EIO;
}

static void tell_key(const struct kg *kg, const char *verb, const fwrel_keystore_entry *e,
                     int changed)
{
    const fwrel_keygen_event ev = {
        .kind = FWREL_KEYGEN_EV_KEY, .verb = verb, .entry = e, .changed = changed};
    tell(kg, &ev);
}

/* A change made: told, and kept for the audit entry. */
static void made(struct kg *kg, const char *verb, const fwrel_keystore_entry *e)
{
    tell_key(kg, verb, e, 1);
    if (kg->nmade < FWREL_KS_MAX_ENTRIES)
        memcpy(kg->made[kg->nmade++], e->name, sizeof(kg->made[0]));
}

/* The policy algorithm of an HSM key's public half (hsm.h opens RSA-3072, EC P-256, Ed25519). */
static int hsm_alg(const fwrel_pkey *pub)
{
    int alg = fwrel_keystore_key_alg(pub);
    return alg == FWREL_ALG_RSA3072 || alg == FWREL_ALG_ED25519 || alg == FWREL_ALG_ECDSA256 ? alg
                                                                                             : 0;
}

/*
 * Open the HSM key a policy key names (PIN: the URI's pin-source, else the PIN file, else the
 * terminal), check its algorithm is the policy's, and keep its public half and id; the token
 * is closed again. A revoked key is never recorded again, whatever its name.
 */
static int hsm_public(struct kg *kg, fwrel_pkey **pub, char id[65], const fwrel_policy_key *k)
{
    const fwrel_keygen_opts *o = kg->o;
    fwrel_hsm_key *hk = NULL;
    fwrel_pass_src pin = {.kind = o->pin_file != NULL ? FWREL_PASS_FILE : FWREL_PASS_TTY,
                          .fd = -1,
                          .file = o->pin_file};
    int error, alg;

    *pub = NULL;
    if ((error = fwrel_hsm_key_open(&hk, k->hsm, NULL, &pin)) != 0) {
        error = fail(kg, k->hsm);
        goto done;
    }
    *pub = (fwrel_pkey *)fwrel_hsm_key_public(hk);
    if (EVP_PKEY_up_ref(*pub) != 1) {
        *pub = NULL;
        fwrel_error_set(FWREL_EIO, "out of memory");
        error = fail(kg, NULL);
        goto done;
    }
    if ((error = fwrel_key_id(id, *pub)) != 0) {
        error = fail(kg, k->hsm);
        goto done;
    }
    if ((alg = hsm_alg(*pub)) != k->alg) {
        fwrel_error_set(FWREL_EKEY, "key %s: the HSM key (id %s) is %s, the policy says %s",
                        k->name, id, alg != 0 ? fwrel_alg_name(alg) : "another algorithm",
                        fwrel_alg_name(k->alg));
        error = fail(kg, o->policy);
        goto done;
    }
    for (size_t i = 0; i < fwrel_keystore_count(kg->ks); i++) {
        const fwrel_keystore_entry *e = fwrel_keystore_entry_at(kg->ks, i);
        if (e->status == FWREL_KS_REVOKED && strcmp(e->id, id) == 0) {
            fwrel_error_set(FWREL_EKEY,
                            "key %s: the HSM key (id %s) is revoked (%s epoch %u): put a new "
                            "key on the token",
                            k->name, id, e->name, e->epoch);
            error = fail(kg, o->keystore);
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
static int run_pass(struct kg *kg)
{
    const fwrel_pass_src *src = &kg->o->pass;
    int any = 0;
    for (size_t i = 0; i < fwrel_keystore_count(kg->ks); i++)
        any |= fwrel_keystore_entry_at(kg->ks, i)->encrypted;
    if (src->kind != FWREL_PASS_NONE &&
        fwrel_pass_read(&kg->pass, &kg->pass_len, src, "Keystore passphrase: ", !any) != 0)
        return fail(kg, src->kind == FWREL_PASS_FILE ? src->file : NULL);
    if (fwrel_keystore_check_pass(kg->ks, kg->pass, kg->pass_len) != 0) {
        fwrel_pass_free(kg->pass, kg->pass_len);
        kg->pass = NULL;
        kg->pass_len = 0;
        return fail(kg, kg->o->keystore);
    }
    return 0;
}

enum action { KEEP, CREATE, ROTATE };

/*
 * Decide for an HSM key (its public half and id read from the token already): KEEP when the
 * keystore's active entry has the policy's URI and that key; CREATE when the name is new;
 * ROTATE with force; else refuse, naming the ids.
 */
static int hsm_action(struct kg *kg, int *act, const fwrel_policy_key *k, const char *id)
{
    const fwrel_keygen_opts *o = kg->o;
    fwrel_keystore_match m;
    unsigned diff = fwrel_keystore_match_key(&m, kg->ks, k, id);
    const fwrel_keystore_entry *e = m.entry;

    if (k->id[0] != '\0' && strcmp(k->id, id) != 0) {
        fwrel_error_set(FWREL_EKEY, "key %s: the policy pins id %s, the HSM key is %s", k->name,
                        k->id, id);
        return fail(kg, o->policy);
    }
    if (diff & FWREL_KS_DIFF_ABSENT) {
        *act = CREATE;
        return 0;
    }
    if (diff & FWREL_KS_DIFF_PURPOSE) {
        fwrel_error_set(FWREL_EKEY,
                        "key %s (id %s) is a %s key in the keystore, the policy says %s", k->name,
                        e->id, fwrel_purpose_name(e->purpose), fwrel_purpose_name(k->purpose));
        return fail(kg, o->keystore);
    }
    if ((diff & (FWREL_KS_DIFF_HOLDER | FWREL_KS_DIFF_ID | FWREL_KS_DIFF_INACTIVE)) == 0) {
        *act = KEEP;
        return 0;
    }
    if (o->force) {
        *act = ROTATE;
        return 0;
    }
    if (diff & FWREL_KS_DIFF_INACTIVE)
        fwrel_error_set(FWREL_EKEY,
                        "key %s (id %s) is %s, the HSM key is %s: give --force or --rotate %s "
                        "to record it",
                        k->name, e->id, fwrel_keystore_status_name(e->status), id, k->name);
    else if (!(diff & FWREL_KS_DIFF_HOLDER))
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
    return fail(kg, o->keystore);
}

/* Decide for a software key: the same reading of fwrel_keystore_match_key() as hsm_action(). */
static int soft_action(struct kg *kg, int *act, const fwrel_policy_key *k)
{
    const fwrel_keygen_opts *o = kg->o;
    fwrel_keystore_match m;
    unsigned diff = fwrel_keystore_match_key(&m, kg->ks, k, NULL);
    const fwrel_keystore_entry *e = m.entry;

    *act = KEEP;
    if (diff & FWREL_KS_DIFF_ABSENT) {
        if (k->id[0] == '\0') {
            *act = CREATE;
            return 0;
        }
        fwrel_error_set(FWREL_EKEY, "key %s: the policy pins id %s, which is not in the keystore",
                        k->name, k->id);
        return fail(kg, o->policy);
    }
    if (diff & FWREL_KS_DIFF_PURPOSE) {
        fwrel_error_set(FWREL_EKEY,
                        "key %s (id %s) is a %s key in the keystore, the policy says %s", k->name,
                        e->id, fwrel_purpose_name(e->purpose), fwrel_purpose_name(k->purpose));
        return fail(kg, o->keystore);
    }
    if (o->force) {
        *act = ROTATE;
        return 0;
    }
    if (diff & FWREL_KS_DIFF_INACTIVE)
        fwrel_error_set(FWREL_EKEY, "key %s (id %s) is %s: give --rotate %s for a new one", k->name,
                        e->id, fwrel_keystore_status_name(e->status), k->name);
    else if (diff & FWREL_KS_DIFF_HOLDER)
        fwrel_error_set(FWREL_EKEY,
                        "key %s (id %s) is held in an HSM (%s), the policy names no hsm: give "
                        "--force for a software key",
                        k->name, e->id, e->uri);
    else if (diff & FWREL_KS_DIFF_ALG)
        fwrel_error_set(FWREL_EKEY, "key %s (id %s) is %s, the policy says %s: give --rotate %s",
                        k->name, e->id, fwrel_alg_name(e->alg), fwrel_alg_name(k->alg), k->name);
    else if (diff & FWREL_KS_DIFF_PIN) {
        fwrel_error_set(FWREL_EKEY, "key %s: the policy pins id %s, the keystore's key is %s",
                        k->name, k->id, e->id);
        return fail(kg, o->policy);
    } else
        return 0;
    return fail(kg, o->keystore);
}

/* Begin the keystore change. */
static int begin(struct kg *kg, int *began)
{
    if (fwrel_keystore_begin(kg->ks) != 0)
        return fail(kg, kg->o->keystore);
    *began = 1;
    return 0;
}

/*
 * The keys a policy names: every decision first, then a keystore change (fwrel_keystore_begin(),
 * *began set) creating the new keys; the caller commits it.
 */
static int keys_from_policy(struct kg *kg, int *began)
{
    const fwrel_policy *p = kg->p;
    int act[FWREL_POLICY_MAX_KEYS];
    fwrel_pkey *pubs[FWREL_POLICY_MAX_KEYS] = {NULL};
    char id[65];
    int error = 0;

    /* Decide everything first (HSM keys read from their tokens): a refusal leaves the keystore
     * as it was. */
    for (size_t i = 0; i < p->nkeys; i++) {
        const fwrel_policy_key *k = &p->keys[i];
        if (k->hsm != NULL && k->purpose == FWREL_PURPOSE_SECURE_BOOT &&
            p->scheme == FWREL_POLICY_SBV1) {
            fwrel_error_set(FWREL_EUSAGE,
                            "key %s: HSM keys sign Secure Boot V2 images only, not Secure Boot "
                            "V1",
                            k->name);
            error = fail(kg, kg->o->policy);
            goto done;
        }
        if (k->hsm != NULL ? (error = hsm_public(kg, &pubs[i], id, k)) != 0 ||
                                 (error = hsm_action(kg, &act[i], k, id)) != 0
                           : (error = soft_action(kg, &act[i], k)) != 0)
            goto done;
    }
    for (size_t i = 0; i < p->nkeys && !*began; i++)
        if (act[i] != KEEP && (error = begin(kg, began)) != 0)
            goto done;
    for (size_t i = 0; i < p->nkeys; i++) {
        const fwrel_policy_key *k = &p->keys[i];
        const fwrel_keystore_entry *e = fwrel_keystore_find(kg->ks, k->name);
        if (act[i] == KEEP) {
            tell_key(kg, "kept", e, 0);
            continue;
        }
        fwrel_keystore_new spec = {
            .name = k->name,
            .purpose = k->purpose,
            .alg = k->alg,
            .slot = k->purpose == FWREL_PURPOSE_SECURE_BOOT ? policy_slot(p, i) : -1,
        };
        if (spec.purpose == FWREL_PURPOSE_SECURE_BOOT && spec.slot < 0)
            spec.slot = 0;
        error = k->hsm != NULL
                    ? fwrel_keystore_add_hsm(kg->ks, &spec, k->hsm, pubs[i], act[i] == ROTATE, &e)
                    : fwrel_keystore_generate(kg->ks, &spec, kg->pass, kg->pass_len,
                                              act[i] == ROTATE, &e);
        if (error == 0)
            error = fwrel_test_hook("keygen.key"); /* tests: a failure after a key is made */
        if (error) {
            error = fail(kg, kg->o->keystore);
            goto done;
        }
        made(kg, act[i] == ROTATE ? "rotated" : "created", e);
    }
    error = 0;
done:
    for (size_t i = 0; i < p->nkeys; i++)
        fwrel_key_free(pubs[i]);
    return error;
}

/* --- provisioning --- */

struct prov {
    struct kg *kg;
    const char *dir;
    fwrel_outdir *od; /* the files are staged there, published when everything is made */
    FILE *readme;     /* memory stream */
    char *readme_buf;
    size_t readme_len;
    const char *chip;
};

/* Add to the README, built in memory (written as a staged file, never printed). */
static void readme(struct prov *pv, const char *fmt, ...) FWREL_PRINTF(2, 3);
static void readme(struct prov *pv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vfprintf(pv->readme, fmt, ap);
    va_end(ap);
}

/* A file staged: told (under its published path) and listed in the README. */
static int prov_done(struct prov *pv, const char *file, const fwrel_keystore_entry *e,
                     const char *what)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", pv->dir, file);
    if (fwrel_test_hook("keygen.provision") != 0) /* tests: a failure while provisioning */
        return fail(pv->kg, path);
    const fwrel_keygen_event ev = {
        .kind = FWREL_KEYGEN_EV_FILE, .entry = e, .path = path, .text = what};
    tell(pv->kg, &ev);
    readme(pv, "%s\n    %s; key %s, epoch %u, id %s\n", file, what, e->name, e->epoch, e->id);
    return 0;
}

/* Stage a file; the error names its published path. */
static int prov_write(struct prov *pv, const char *file, const void *data, size_t len,
                      unsigned mode, const fwrel_keystore_entry *e, const char *what)
{
    char path[4200];
    if (fwrel_outdir_path(path, sizeof(path), pv->od, file) != 0 ||
        fwrel_io_write_file(path, data, len, 0, (mode_t)mode) != 0) {
        snprintf(path, sizeof(path), "%s/%s", pv->dir, file);
        return fail(pv->kg, path);
    }
    return prov_done(pv, file, e, what);
}

static int prov_pem(struct prov *pv, const char *file, const fwrel_pkey *key, int private_key,
                    const fwrel_keystore_entry *e, const char *what)
{
    char path[4200];
    int error = fwrel_outdir_path(path, sizeof(path), pv->od, file);
    if (error == 0)
        error = private_key ? fwrel_key_write_private(key, path, NULL, 0, 0)
                            : fwrel_key_write_public(key, path, 0);
    if (error) {
        snprintf(path, sizeof(path), "%s/%s", pv->dir, file);
        return fail(pv->kg, path);
    }
    return prov_done(pv, file, e, what);
}

static int provision_key(struct prov *pv, const fwrel_policy *p, size_t i, const fwrel_keystore *ks,
                         const fwrel_keystore_entry *e, const char *pass, size_t pass_len)
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
        if ((error = fwrel_keystore_load_public(&key, ks, e)) != 0) {
            error = fail(pv->kg, pv->kg->o->keystore);
            break;
        }
        snprintf(file, sizeof(file), "%s.pub.pem", name);
        if ((error = prov_pem(pv, file, key, 0, e, "secure boot public key")) != 0)
            break;
        if (p->scheme == FWREL_POLICY_SBV1) {
            if (fwrel_key_raw64(buf, key) != 0) {
                error = fail(pv->kg, pv->kg->o->keystore);
                break;
            }
            snprintf(file, sizeof(file), "%s.pub.raw", name);
            error = prov_write(pv, file, buf, 64, 0644, e,
                               "Secure Boot V1 verification key, 64 bytes X||Y");
            readme(pv, "    Build it into the bootloader: CONFIG_SECURE_BOOT_V1 with "
                       "this key as signature_verification_key.bin.\n");
            break;
        }
        if (fwrel_sbv2_key_digest(buf, key) != 0) {
            error = fail(pv->kg, pv->kg->o->keystore);
            break;
        }
        snprintf(file, sizeof(file), "%s.digest.bin", name);
        if ((error = prov_write(pv, file, buf, 32, 0644, e,
                                "Secure Boot V2 public key digest (32 bytes)")) != 0)
            break;
        if (esp32)
            readme(pv, "    espefuse.py --chip esp32 burn_key secure_boot_v2 %s\n", file);
        else
            readme(pv,
                   "    espefuse.py --chip %s burn_key BLOCK_KEY%d %s SECURE_BOOT_DIGEST%d\n"
                   "    (BLOCK_KEY%d or any free key block)\n",
                   pv->chip, slot, file, slot, slot);
        break;
    }
    case FWREL_PURPOSE_MANIFEST_SIGN:
        if ((error = fwrel_keystore_load_public(&key, ks, e)) != 0) {
            error = fail(pv->kg, pv->kg->o->keystore);
            break;
        }
        snprintf(file, sizeof(file), "%s.pub.pem", name);
        error = prov_pem(pv, file, key, 0, e, "trusted manifest signing key");
        readme(pv, "    Embed in the firmware as a trusted manifest signer "
                   "(docs/manifest.md).\n");
        break;
    case FWREL_PURPOSE_MANIFEST_ENCRYPT:
    case FWREL_PURPOSE_IMAGE_ENCRYPT:
        if (e->uri != NULL) {
            readme(pv,
                   "%s: held in an HSM (%s); a device-side key cannot be exported "
                   "from it.\n",
                   name, e->uri);
            break;
        }
        if (e->purpose == FWREL_PURPOSE_IMAGE_ENCRYPT && e->secret[0] != '\0') {
            /* ECC scheme: the device derives its key from an HMAC key in eFuse. */
            if ((error = fwrel_keystore_load_secret(&secret, &secret_len, ks, e, pass, pass_len)) !=
                0) {
                error = fail(pv->kg, pv->kg->o->keystore);
                break;
            }
            snprintf(file, sizeof(file), "%s.device_hmac_key.bin", name);
            if ((error = prov_write(pv, file, secret, secret_len, 0600, e,
                                    "image decryption: device HMAC key (ECC scheme), SECRET")) != 0)
                break;
            readme(pv,
                   "    espefuse.py --chip %s burn_key BLOCK_KEYn %s HMAC_UP\n"
                   "    (a free key block; the device derives the P-256 key with "
                   "CONFIG_PRE_ENCRYPTED_OTA_USE_ECIES)\n",
                   pv->chip, file);
            /* The P-256 key the device derives from it: for device emulation on the host
             * (fwrel-verify's device profile image_key, fwrel-encrypt --decrypt). */
            if (secret_len != 32 || fwrel_keystore_derive_ecc_image_key(&key, secret) != 0) {
                error = fail(pv->kg, pv->kg->o->keystore);
                break;
            }
            snprintf(file, sizeof(file), "%s.private.pem", name);
            if ((error = prov_pem(pv, file, key, 1, e,
                                  "the P-256 key the device derives from it, SECRET")) != 0)
                break;
            readme(pv, "    (not for the device, which derives it: for fwrel-verify's device "
                       "profile image_key and fwrel-encrypt --decrypt)\n");
            fwrel_key_free(key);
            key = NULL;
            if ((error = fwrel_keystore_load_public(&key, ks, e)) != 0) {
                error = fail(pv->kg, pv->kg->o->keystore);
                break;
            }
            snprintf(file, sizeof(file), "%s.pub.pem", name);
            error = prov_pem(pv, file, key, 0, e, "image encryption public key (for the host)");
            break;
        }
        if ((error = fwrel_keystore_load_private(&key, ks, e, pass, pass_len)) != 0) {
            error = fail(pv->kg, pv->kg->o->keystore);
            break;
        }
        snprintf(file, sizeof(file), "%s.private.pem", name);
        if (e->purpose == FWREL_PURPOSE_IMAGE_ENCRYPT) {
            error = prov_pem(pv, file, key, 1, e, "image decryption private key, SECRET");
            readme(pv, "    Embed in the firmware as esp_encrypted_img's rsa_private.pem "
                       "(esp_encrypted_img RSA-3072 scheme).\n");
        } else {
            error = prov_pem(pv, file, key, 1, e, "manifest decryption private key, SECRET");
            readme(pv, "    Embed in the firmware (or its encrypted NVS) as the "
                       "manifest recipient key (docs/manifest.md).\n");
        }
        break;
    case FWREL_PURPOSE_FLASH_ENCRYPT:
    case FWREL_PURPOSE_HMAC:
        if ((error = fwrel_keystore_load_secret(&secret, &secret_len, ks, e, pass, pass_len)) !=
            0) {
            error = fail(pv->kg, pv->kg->o->keystore);
            break;
        }
        snprintf(file, sizeof(file), "%s.bin", name);
        if (e->purpose == FWREL_PURPOSE_HMAC) {
            if ((error = prov_write(pv, file, secret, secret_len, 0600, e,
                                    "HMAC key (32 bytes), SECRET")) == 0)
                readme(pv,
                       "    espefuse.py --chip %s burn_key BLOCK_KEYn %s HMAC_UP "
                       "(or keep it on the update server for the OTA HMAC)\n",
                       pv->chip, file);
            break;
        }
        if ((error = prov_write(pv, file, secret, secret_len, 0600, e,
                                "flash encryption key, SECRET")) != 0)
            break;
        if (esp32)
            readme(pv, "    espefuse.py --chip esp32 burn_key flash_encryption %s\n", file);
        else
            readme(pv, "    espefuse.py --chip %s burn_key BLOCK_KEYn %s %s\n", pv->chip, file,
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
 * Stage what goes onto the device in kg->od (fwrel_outdir_open() of the provisioning
 * directory), which the caller publishes with the keystore change, or aborts.
 */
static int provision(struct kg *kg)
{
    const fwrel_policy *p = kg->p;
    const char *dir = kg->o->provision;
    const fwrel_keystore_entry *entries[FWREL_POLICY_MAX_KEYS];
    struct prov pv = {.kg = kg, .dir = dir, .chip = p->chip->name};
    char path[4200], hex[65];
    int error;

    char now[21];
    fwrel_rfc3339(now, (int64_t)time(NULL));
    if (fwrel_rules_keys_in_force(entries, kg->ks, p, now) != 0)
        return fail(kg, kg->o->keystore);
    if (fwrel_outdir_open(&kg->od, dir, kg->o->force ? FWREL_OUT_FORCE : 0) != 0)
        return fail(kg, dir);
    pv.od = kg->od;
    if ((pv.readme = open_memstream(&pv.readme_buf, &pv.readme_len)) == NULL) {
        fwrel_error_set(FWREL_EIO, "out of memory");
        return fail(kg, NULL);
    }
    fwrel_hex(hex, p->sha256, sizeof(p->sha256));
    readme(&pv,
           "What goes onto each %s device (%s), made by fwrel-keygen --provision.\n"
           "Policy sha256 %s.\n"
           "Files marked SECRET are device secrets: copy them to the provisioning host only,\n"
           "burn or embed them, then delete them. eFuse writes are irreversible: check the\n"
           "block numbers against your chip's free key blocks (espefuse.py summary) first.\n\n",
           p->product, p->chip->name, hex);
    error = 0;
    for (size_t i = 0; i < p->nkeys && error == 0; i++)
        error = provision_key(&pv, p, i, kg->ks, entries[i], kg->pass, kg->pass_len);
    if (p->nslots > 0 && error == 0 && p->scheme != FWREL_POLICY_SBV1)
        readme(&pv,
               "\nAfter the digests: espefuse.py --chip %s burn_efuse "
               "SECURE_BOOT_EN 1 (or let the bootloader do it on first boot).\n",
               p->chip->name);
    fclose(pv.readme);
    if (error == 0) {
        if (fwrel_outdir_path(path, sizeof(path), pv.od, "README.txt") != 0 ||
            fwrel_io_write_file(path, pv.readme_buf, pv.readme_len, 0, 0644) != 0 ||
            fwrel_test_hook("keygen.provision") != 0) {
            snprintf(path, sizeof(path), "%s/README.txt", dir);
            error = fail(kg, path);
        } else {
            snprintf(path, sizeof(path), "%s/README.txt", dir);
            const fwrel_keygen_event ev = {
                .kind = FWREL_KEYGEN_EV_FILE, .path = path, .text = "which file goes where"};
            tell(kg, &ev);
        }
    }
    free(pv.readme_buf);
    const fwrel_keygen_event done = {.kind = FWREL_KEYGEN_EV_PROVISIONED};
    tell(kg, &done);
    return error;
}

/*
 * The audit log keygen records in (docs/audit.md): in the release repository o->repo names
 * (created if need be), or the policy's when it exists already (keygen does not create it
 * behind the user's back). log[0] is '\0' when there is none.
 */
static int audit_log_path(char *log, size_t size, const struct kg *kg)
{
    const fwrel_keygen_opts *o = kg->o;
    char repo_path[4096];
    fwrel_repo *repo = NULL;
    int error;

    log[0] = '\0';
    if (o->repo != NULL)
        snprintf(repo_path, sizeof(repo_path), "%s", o->repo);
    else if ((error = fwrel_policy_repo_path(repo_path, sizeof(repo_path), kg->p, o->policy)) != 0)
        return error;
    if (o->repo == NULL && access(repo_path, F_OK) != 0)
        return 0;
    if ((error = fwrel_repo_open(&repo, repo_path, 1)) != 0)
        return error;
    fwrel_repo_free(repo);
    /* Confined as the pipeline's: no symbolic link on the way, the log a regular file. */
    if ((error = fwrel_policy_audit_path(log, size, kg->p, repo_path, 1)) != 0)
        log[0] = '\0';
    return error;
}

/*
 * One audit entry (audit.c builds it) for the keys made, rotated or revoked under a policy
 * (reason NULL), or for a change that failed and was undone (result "fail", no outputs). A key
 * pair is named by its public key file and that file's SHA-256. A raw secret (flash
 * encryption, HMAC key) has no public half, and a hash of it would let anyone holding the log
 * confirm a guess: it is named "NAME.EPOCH (key id)" with its random key id (docs/keystore.md)
 * in the sha256 field, size 0.
 */
static int audit_keys(const char *log, const struct kg *kg, const char *reason)
{
    struct passwd *pw = getpwuid(getuid());
    size_t n = reason == NULL ? kg->nmade : 0, nout = 0;
    fwrel_audit_file in, *out = calloc(n + 1, sizeof(*out));
    char(*label)[120] = calloc(n + 1, sizeof(*label));
    int error = 0;

    if (out == NULL || label == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    fwrel_audit_file_of(&in, kg->o->policy, kg->p->sha256);
    for (size_t i = 0; i < n; i++) {
        const fwrel_keystore_entry *k = fwrel_keystore_find(kg->ks, kg->made[i]);
        char path[4200];
        uint8_t *data = NULL;
        size_t len = 0;
        if (k == NULL)
            continue;
        if (k->pub[0] == '\0') {
            snprintf(label[nout], sizeof(label[0]), "%s.%u (key id)", k->name, k->epoch);
            out[nout].name = label[nout];
            memcpy(out[nout].sha256, k->id, sizeof(out[0].sha256));
            out[nout++].size = 0;
            continue;
        }
        if ((error = fwrel_keystore_path(path, sizeof(path), kg->ks, k->pub)) != 0 ||
            (error = fwrel_io_read_small(&data, &len, path, 1u << 20)) != 0)
            goto done;
        out[nout].name = k->pub;
        fwrel_sha256_hex(out[nout].sha256, data, len);
        out[nout++].size = len;
        free(data);
    }
    const fwrel_audit_entry e = {.event = "keygen",
                                 .user = pw != NULL ? pw->pw_name : NULL,
                                 .inputs = &in,
                                 .ninputs = 1,
                                 .outputs = out,
                                 .noutputs = nout,
                                 .reason = reason};
    error = fwrel_audit_record(log, &e, NULL);
done:
    free(out);
    free(label);
    return error;
}

/*
 * A failed change: the provisioning directory and the keystore as they were, and (when keygen
 * logs) a "fail" entry naming the step. The error, told already, is kept.
 */
static void undo(struct kg *kg, int log_it, const char *step)
{
    fwrel_error saved = *fwrel_error_last();
    char reason[FWREL_ERROR_MSG_MAX + 100], log[6000];

    fwrel_outdir_abort(kg->od);
    kg->od = NULL;
    if (fwrel_keystore_abort(kg->ks) != 0)
        fail(kg, kg->o->keystore);
    if (log_it && kg->p != NULL) {
        snprintf(reason, sizeof(reason), "keygen failed at %s: %s", step, saved.message);
        if (audit_log_path(log, sizeof(log), kg) != 0 ||
            (log[0] != '\0' && audit_keys(log, kg, reason) != 0)) {
            fwrel_error_prefix("cannot record the failure");
            fail(kg, "audit log");
        }
    }
    fwrel_error_restore(&saved);
}

/*
 * The eFuse that revokes a secure boot key digest slot on the policy's chip, or NULL with why
 * there is none (docs/esp-formats.md §2.9: SECURE_BOOT_KEY_REVOKE0..2 exactly on the chips that
 * check three signature blocks; ESP32 and ESP32-C2, one digest, have none).
 */
static const char *revoke_efuse(char *out, size_t size, const fwrel_policy *p, int slot,
                                const char **why)
{
    *why = NULL;
    if (p == NULL) {
        snprintf(out, size, "espefuse.py burn_efuse SECURE_BOOT_KEY_REVOKE%d 1", slot);
        return out;
    }
    if (p->scheme == FWREL_POLICY_SBV1) {
        *why = "Secure Boot V1 has one key and no revocation eFuse";
        return NULL;
    }
    if (p->chip->sbv2_blocks < 3) {
        *why = "the chip holds one key digest and has no revocation eFuse";
        return NULL;
    }
    snprintf(out, size, "espefuse.py --chip %s burn_efuse SECURE_BOOT_KEY_REVOKE%d 1",
             p->chip->name, slot);
    return out;
}

/* --revoke: the active key NAME revoked, why and since when; a secure-boot slot's espefuse
 * command told where the chip has one. */
static int do_revoke(struct kg *kg, int *began)
{
    const char *name = kg->o->name;
    const fwrel_keystore_entry *e = fwrel_keystore_find(kg->ks, name);
    int error;

    if (e == NULL || e->status != FWREL_KS_ACTIVE) {
        fwrel_error_set(FWREL_EKEY, "no active key %.64s", name);
        return fail(kg, kg->o->keystore);
    }
    if ((error = begin(kg, began)) != 0)
        return error;
    if (fwrel_keystore_revoke(kg->ks, name, kg->o->reason, kg->o->since, &e) != 0)
        return fail(kg, fwrel_error_last()->code == FWREL_EUSAGE ? NULL : kg->o->keystore);
    made(kg, "revoked", e);
    if (e->purpose == FWREL_PURPOSE_SECURE_BOOT && e->slot >= 0) {
        char cmdline[200];
        const char *why = NULL;
        const char *efuse = revoke_efuse(cmdline, sizeof(cmdline), kg->p, e->slot, &why);
        const fwrel_keygen_event ev = {.kind = FWREL_KEYGEN_EV_REVOKED_SLOT,
                                       .count = (unsigned)e->slot,
                                       .text = efuse,
                                       .verb = why};
        tell(kg, &ev);
    }
    return 0;
}

/* --rotate NAME|PURPOSE: each key named (or every active key of the purpose) to a new epoch. */
static int do_rotate(struct kg *kg, int *began)
{
    fwrel_keystore *ks = kg->ks;
    const fwrel_policy *p = kg->p;
    const char *what = kg->o->name;
    int purpose = fwrel_purpose_parse(what), error;
    char names[FWREL_KS_MAX_ENTRIES][FWREL_POLICY_NAME_MAX + 1];
    fwrel_pkey *pubs[FWREL_KS_MAX_ENTRIES] = {NULL};
    size_t n = 0;

    if ((error = run_pass(kg)) != 0)
        goto done;
    /* The names first: each rotation adds an entry of that name. */
    for (size_t i = 0; i < fwrel_keystore_count(ks); i++) {
        const fwrel_keystore_entry *e = fwrel_keystore_entry_at(ks, i);
        if (purpose ? e->purpose == purpose && e->status == FWREL_KS_ACTIVE
                    : strcmp(e->name, what) == 0 && fwrel_keystore_find(ks, e->name) == e)
            memcpy(names[n++], e->name, sizeof(names[0]));
    }
    /* HSM keys are read from their tokens before anything changes. */
    for (size_t i = 0; i < n; i++) {
        const fwrel_keystore_entry *e = fwrel_keystore_find(ks, names[i]);
        const fwrel_policy_key *k = p != NULL ? fwrel_policy_key_get(p, e->name) : NULL;
        if (k != NULL && k->purpose == e->purpose && k->hsm != NULL) {
            char id[65];
            if ((error = hsm_public(kg, &pubs[i], id, k)) != 0)
                goto done;
            if (e->uri != NULL && strcmp(e->uri, k->hsm) == 0 && strcmp(e->id, id) == 0) {
                fwrel_error_set(FWREL_EKEY,
                                "key %s: the token holds the key recorded already (id %s): "
                                "put the new key on the token, or name it in the policy",
                                e->name, id);
                error = fail(kg, kg->o->keystore);
                goto done;
            }
        } else if (e->uri != NULL && k == NULL) {
            fwrel_error_set(FWREL_EKEY,
                            "key %s is held in an HSM: create the new key on the "
                            "token, name it in the policy and give --policy",
                            e->name);
            error = fail(kg, kg->o->keystore);
            goto done;
        }
    }
    if (n == 0) {
        fwrel_error_set(FWREL_EKEY, "no key named %.64s%s in the keystore", what,
                        purpose ? " and no active key of that purpose" : "");
        error = fail(kg, kg->o->keystore);
        goto done;
    }
    if ((error = begin(kg, began)) != 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const fwrel_keystore_entry *e = fwrel_keystore_find(ks, names[i]), *made_e = NULL;
        const fwrel_policy_key *k = p != NULL ? fwrel_policy_key_get(p, e->name) : NULL;
        fwrel_keystore_new spec = {.name = names[i],
                                   .purpose = e->purpose,
                                   .alg = k != NULL && k->purpose == e->purpose ? k->alg : e->alg,
                                   .slot = e->slot};
        if ((pubs[i] != NULL
                 ? fwrel_keystore_add_hsm(ks, &spec, k->hsm, pubs[i], 1, &made_e)
                 : fwrel_keystore_generate(ks, &spec, kg->pass, kg->pass_len, 1, &made_e)) != 0 ||
            fwrel_test_hook("keygen.key") != 0) {
            error = fail(kg, kg->o->keystore);
            goto done;
        }
        made(kg, "rotated", made_e);
    }
    error = 0;
done:
    for (size_t i = 0; i < FWREL_KS_MAX_ENTRIES; i++)
        fwrel_key_free(pubs[i]);
    return error;
}

/*
 * Everything is made: the keystore change prepared, logged, committed, then the provisioning
 * directory published. *step says where a failure happened.
 */
static int commit(struct kg *kg, int began, const char **step)
{
    char log[6000] = "";
    int logged = 0;

    if (began) {
        *step = "prepare";
        if (fwrel_keystore_prepare(kg->ks) != 0)
            return fail(kg, kg->o->keystore);
        *step = "audit";
        if (kg->p != NULL && kg->nmade > 0) {
            if (audit_log_path(log, sizeof(log), kg) != 0 || fwrel_test_hook("keygen.audit") != 0 ||
                (log[0] != '\0' && audit_keys(log, kg, NULL) != 0))
                return fail(kg, "audit log");
            logged = log[0] != '\0';
        }
        *step = "commit";
        if (fwrel_test_hook("keygen.commit") != 0 || fwrel_keystore_commit(kg->ks) != 0)
            return fail(kg, kg->o->keystore);
    }
    *step = "publish";
    if (kg->od != NULL &&
        (fwrel_test_hook("keygen.publish") != 0 || fwrel_outdir_publish(kg->od) != 0))
        return fail(kg, kg->o->provision);
    fwrel_keystore_finish(kg->ks);
    fwrel_outdir_finish(kg->od);
    kg->od = NULL;
    if (logged) {
        const fwrel_keygen_event ev = {.kind = FWREL_KEYGEN_EV_LOGGED, .path = log};
        tell(kg, &ev);
    }
    return 0;
}

int fwrel_keygen_run(const fwrel_keygen_opts *o)
{
    FWREL_ASSERT_ARG(o != NULL && o->keystore != NULL);
    struct kg *kg = calloc(1, sizeof(*kg));
    int error, began = 0, policy_mode = o->mode == FWREL_KEYGEN_POLICY;
    const char *step = "keys"; /* where a failure after the change began happened */

    if (kg == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    kg->o = o;
    if (o->policy != NULL && fwrel_policy_load(&kg->p, o->policy) != 0) {
        error = fail(kg, o->policy);
        goto done;
    }
    if (policy_mode && kg->p == NULL) {
        error = fwrel_error_set(FWREL_EUSAGE, "a policy is needed");
        goto done;
    }
    if (fwrel_keystore_open(&kg->ks, o->keystore,
                            o->mode == FWREL_KEYGEN_LIST
                                ? 0
                                : (FWREL_KS_WRITE | (policy_mode ? FWREL_KS_CREATE : 0))) != 0) {
        error = fail(kg, o->keystore);
        goto done;
    }
    if (fwrel_keystore_recovered(kg->ks) > 0) {
        const fwrel_keygen_event ev = {.kind = FWREL_KEYGEN_EV_RECOVERED,
                                       .path = o->keystore,
                                       .count = fwrel_keystore_recovered(kg->ks)};
        tell(kg, &ev);
    }
    switch (o->mode) {
    case FWREL_KEYGEN_LIST:
        for (size_t i = 0; i < fwrel_keystore_count(kg->ks); i++)
            tell_key(kg, fwrel_keystore_status_name(fwrel_keystore_entry_at(kg->ks, i)->status),
                     fwrel_keystore_entry_at(kg->ks, i), 0);
        error = 0;
        break;
    case FWREL_KEYGEN_REVOKE:
        error = do_revoke(kg, &began);
        break;
    case FWREL_KEYGEN_ROTATE:
        error = do_rotate(kg, &began);
        break;
    default:
        if ((error = run_pass(kg)) != 0 || (error = keys_from_policy(kg, &began)) != 0)
            break;
        step = "provision";
        if (o->provision != NULL)
            error = provision(kg);
        break;
    }
    if (error == 0)
        error = commit(kg, began, &step);
    if (error == 0)
        for (size_t i = 0; i < fwrel_keystore_count(kg->ks); i++) {
            const fwrel_keygen_event ev = {.kind = FWREL_KEYGEN_EV_STATE,
                                           .entry = fwrel_keystore_entry_at(kg->ks, i)};
            tell(kg, &ev);
        }
done:
    if (error && (began || kg->od != NULL))
        undo(kg, began, step);
    fwrel_pass_free(kg->pass, kg->pass_len);
    fwrel_keystore_close(kg->ks);
    fwrel_policy_free(kg->p);
    free(kg);
    return error;
}
