/* pipeline_make.c - what a release makes: the signed image, its encryption, the manifest and the
 * exports (run.h; the steps fwrel_pipeline_release() runs between the history and the record). */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fwrel/encimg.h"
#include "fwrel/espimg.h"
#include "fwrel/export.h"
#include "fwrel/hsm.h"
#include "fwrel/manifest.h"
#include "fwrel/sbv1.h"
#include "fwrel/sbv2.h"
#include "util.h"

/* A member holding a whole source (a scratch file: the served image). */
static int add_member_src(struct run *r, const char *name, fwrel_src *src)
{
    if (r->nm >= MAX_MEMBERS)
        return fwrel_error_set(FWREL_EFORMAT, "more than %d bundle members", MAX_MEMBERS);
    if (src->size > FWREL_IMAGE_MAX + 4096)
        return fwrel_error_set(FWREL_EFORMAT, "%s: too large", name);
    size_t len = (size_t)src->size;
    uint8_t *data = malloc(len > 0 ? len : 1);
    int error;
    if (data == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    if ((error = fwrel_src_seek(src, 0)) != 0 || (error = fwrel_src_read(src, data, len)) != 0) {
        free(data);
        return error;
    }
    r->m[r->nm].data = data;
    r->m[r->nm].len = len;
    snprintf(r->m[r->nm].name, sizeof(r->m[0].name), "%s", name);
    r->nm++;
    return 0;
}

/* A write to a scratch file failed (a full TMPDIR, a size limit): say which and where; it is not
 * the --output file, so the error is no longer marked as an output error. */
static int scratch_error(const struct run *r, const char *what)
{
    const fwrel_error *e = fwrel_error_last();
    if (e->about != FWREL_ABOUT_OUTPUT)
        return e->code;
    return fwrel_error_set(e->code, "%s (an unnamed file in %s): %s", what, r->tmpdir, e->message);
}

static int load_private(fwrel_pkey **key, struct run *r, size_t idx)
{
    return fwrel_keystore_load_private(key, r->ks, r->ent[idx], r->pass, r->pass_len);
}

/*
 * The HSM key of a policy key, or *hk NULL for a software key. The policy's hsm and the
 * keystore's uri must agree (fwrel-keygen --policy records them). The PIN: the URI's
 * pin-source, else o->hsm_pin. Opened (logged in) once, by fwrel_run_unlock() before the first
 * signature, and kept in the run until fwrel_run_close_keys().
 */
static int open_hsm(fwrel_hsm_key **hk, struct run *r, size_t idx)
{
    const fwrel_policy_key *k = &r->p->keys[idx];
    const fwrel_keystore_entry *e = r->ent[idx];
    char id[65];
    int error;

    *hk = r->hsm[idx];
    if (*hk != NULL || (k->hsm == NULL && e->uri == NULL))
        return 0;
    if (k->hsm == NULL || e->uri == NULL || strcmp(k->hsm, e->uri) != 0)
        return fwrel_error_set(FWREL_EKEY,
                               "key %s: the policy names %s%s, the keystore records %s%s (id "
                               "%s): run fwrel-keygen --policy",
                               k->name, k->hsm != NULL ? "the HSM key " : "a software key",
                               k->hsm != NULL ? k->hsm : "", e->uri != NULL ? "the HSM key " : "",
                               e->uri != NULL ? e->uri : "a software key", e->id);
    if ((error = fwrel_hsm_key_open(hk, e->uri, NULL, r->o->hsm_pin)) != 0)
        return fwrel_error_prefix("key %s (%s)", k->name, e->uri);
    /* The token must still hold the key the keystore recorded. */
    if ((error = fwrel_key_id(id, fwrel_hsm_key_public(*hk))) != 0 ||
        (strcmp(id, e->id) != 0 &&
         (error =
              fwrel_error_set(FWREL_EKEY, "key %s: the token holds id %s, the keystore records %s",
                              k->name, id, e->id)) != 0)) {
        fwrel_hsm_key_close(*hk);
        *hk = NULL;
        return error;
    }
    r->hsm[idx] = *hk;
    return 0;
}

/*
 * Before the first signature: every HSM key the channel signs with is opened and logged in (a
 * wrong PIN or a missing token fails here, with nothing signed), and a Secure Boot V1 policy
 * holding an HSM key is refused. Software keys were unlocked by the keys step
 * (fwrel_keystore_check_pass()).
 */
int fwrel_run_unlock(struct run *r)
{
    fwrel_hsm_key *hk = NULL;
    size_t n = 0;
    int error;
    for (size_t i = 0; i < r->p->nslots; i++) {
        size_t k = r->p->slots[i].key;
        if (!(r->ch->sign_slots & (1u << i)))
            continue;
        if (r->p->scheme == FWREL_POLICY_SBV1 && (r->ent[k]->uri || r->p->keys[k].hsm))
            return fwrel_error_set(FWREL_EUSAGE,
                                   "key %s is held in an HSM: HSM keys sign Secure Boot V2 "
                                   "images only, not Secure Boot V1",
                                   r->p->keys[k].name);
    }
    for (size_t i = 0; i < r->p->nslots; i++) {
        if (!(r->ch->sign_slots & (1u << i)))
            continue;
        if ((error = open_hsm(&hk, r, r->p->slots[i].key)) != 0)
            return error;
        n += hk != NULL;
    }
    for (size_t i = 0; i < r->ch->nsigners; i++) {
        if ((error = open_hsm(&hk, r, r->ch->signers[i])) != 0)
            return error;
        n += hk != NULL;
    }
    if (n > 0)
        fwrel_report_add(r->report, "keys", FWREL_PASS, "HSM keys logged in");
    return 0;
}

int fwrel_run_sign(struct run *r)
{
    fwrel_pkey *keys[3] = {NULL, NULL, NULL};
    uint8_t *sigs[3] = {NULL, NULL, NULL};
    size_t sig_lens[3] = {0, 0, 0};
    fwrel_out *out = NULL;
    int error = 0;
    size_t n = 0;

    for (size_t i = 0; i < r->p->nslots && error == 0; i++) {
        if (!(r->ch->sign_slots & (1u << i)))
            continue;
        size_t k = r->p->slots[i].key;
        fwrel_hsm_key *hk = NULL;
        if (r->p->scheme == FWREL_POLICY_SBV1 && (r->ent[k]->uri || r->p->keys[k].hsm)) {
            error = fwrel_error_set(FWREL_EUSAGE,
                                    "key %s is held in an HSM: HSM keys sign Secure Boot V2 "
                                    "images only, not Secure Boot V1",
                                    r->p->keys[k].name);
            break;
        }
        if ((error = open_hsm(&hk, r, k)) != 0)
            break;
        int image_failed;
        error = hk != NULL ? fwrel_hsm_key_sign_sbv2(&keys[n], &sigs[n], &sig_lens[n],
                                                     &image_failed, hk, r->o->image, 0)
                           : load_private(&keys[n], r, k);
        if (error == 0)
            memcpy(r->rec->sign_keys[n++], r->ent[k]->id, 65);
    }
    r->rec->nsign_keys = n;
    if (error == 0 && n == 0)
        error = fwrel_error_set(FWREL_EUSAGE, "the channel signs with no slot");
    if (error == 0)
        error = fwrel_out_open_unnamed(&out, r->tmpdir, FWREL_OUT_STREAM);
    if (error == 0 && r->p->scheme == FWREL_POLICY_SBV1) {
        error = fwrel_sbv1_sign_to(out, r->o->image, keys[0], NULL, 0, NULL);
    } else if (error == 0) {
        fwrel_sbv2_sign_opts so;
        memset(&so, 0, sizeof(so));
        for (size_t i = 0; i < n; i++) {
            so.signers[i].key = keys[i];
            so.signers[i].sig = sigs[i];
            so.signers[i].sig_len = sig_lens[i];
        }
        so.count = n;
        error = fwrel_sbv2_sign_to(out, r->o->image, &so, NULL);
    }
    for (size_t i = 0; i < 3; i++) {
        fwrel_key_free(keys[i]);
        free(sigs[i]);
    }
    if (error)
        fwrel_out_abort(out);
    else if ((error = fwrel_out_finish_src(out, &r->signed_src)) == 0)
        r->served = &r->signed_src;
    if (error)
        error = scratch_error(r, "the signed image");
    if (error == 0 && (error = fwrel_run_src_digest(&r->rec->signed_image, &r->signed_src)) == 0)
        fwrel_report_add(r->report, "secureboot", FWREL_PASS, "%s with %zu key%s",
                         r->p->scheme == FWREL_POLICY_SBV1 ? "Secure Boot V1" : "Secure Boot V2", n,
                         n == 1 ? "" : "s");
    return error;
}

int fwrel_run_encrypt(struct run *r)
{
    fwrel_pkey *pub = NULL;
    fwrel_out *out = NULL;
    int error;

    if (!r->p->has_image_key) {
        /* The member keeps its name: release.json "encrypted" says what it holds. */
        snprintf(r->rec->image.name, sizeof(r->rec->image.name), "firmware.enc");
        r->rec->image.size = r->rec->signed_image.size;
        memcpy(r->rec->image.sha256, r->rec->signed_image.sha256, 65);
        fwrel_report_add(r->report, "encrypt", FWREL_SKIP, "the policy has no image encryption");
        return add_member_src(r, "firmware.enc", r->served);
    }
    const fwrel_keystore_entry *e = r->ent[r->p->image_key];
    if ((error = fwrel_keystore_load_public(&pub, r->ks, e)) != 0)
        return error;
    memcpy(r->rec->image_key, e->id, 65);
    if ((error = fwrel_src_seek(&r->signed_src, 0)) == 0 &&
        (error = fwrel_out_open_unnamed(&out, r->tmpdir, 0)) == 0) {
        if ((error = fwrel_encimg_encrypt(out, &r->signed_src, pub)) == 0)
            error = fwrel_out_finish_src(out, &r->enc_src);
        else
            fwrel_out_abort(out);
    }
    fwrel_key_free(pub);
    if (error)
        return scratch_error(r, "the encrypted image");
    r->served = &r->enc_src;
    r->rec->encrypted = 1;
    snprintf(r->rec->image.name, sizeof(r->rec->image.name), "firmware.enc");
    if ((error = fwrel_run_src_digest(&r->rec->image, r->served)) != 0 ||
        (error = add_member_src(r, "firmware.enc", r->served)) != 0)
        return error;
    fwrel_report_add(r->report, "encrypt", FWREL_PASS, "esp_encrypted_img, %s scheme",
                     fwrel_alg_name(e->alg));
    return 0;
}

int fwrel_run_manifest(struct run *r)
{
    fwrel_pkey *signers[FWREL_POLICY_MAX_LIST] = {NULL}, *recips[FWREL_POLICY_MAX_LIST] = {NULL};
    fwrel_hsm_key *hsm[FWREL_POLICY_MAX_LIST] = {NULL};
    fwrel_manifest_signer ms[FWREL_POLICY_MAX_LIST];
    fwrel_manifest m;
    json_t *t = json_object(), *types = json_array();
    char *tpl = NULL, *signed_json = NULL;
    uint8_t *env = NULL;
    size_t slen = 0, elen = 0;
    int error = 0;

    for (size_t i = 0; i < r->p->ndevice_types; i++)
        json_array_append_new(types, json_string(r->p->device_types[i]));
    r->rec->created = (uint64_t)r->o->time;
    r->rec->expires = (uint64_t)r->o->time + r->ch->validity;
    json_object_set_new(t, "product", json_string(r->p->product));
    json_object_set_new(t, "device_types", types);
    json_object_set_new(t, "channel", json_string(r->chname));
    json_object_set_new(t, "counter", json_integer((json_int_t)r->rec->counter));
    json_object_set_new(t, "created", json_integer((json_int_t)r->rec->created));
    json_object_set_new(t, "expires", json_integer((json_int_t)r->rec->expires));
    tpl = json_dumps(t, JSON_COMPACT);
    json_decref(t);
    if (tpl == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    fwrel_src plain;
    if ((error = fwrel_src_open(&plain, r->o->image, FWREL_IMAGE_MAX)) == 0) {
        error = fwrel_manifest_from_sources(&m, (const uint8_t *)tpl, strlen(tpl), &plain,
                                            &r->signed_src, r->served, "firmware.enc");
        fwrel_src_close(&plain);
    }
    memset(ms, 0, sizeof(ms));
    for (size_t i = 0; error == 0 && i < r->ch->nsigners; i++) {
        size_t k = r->ch->signers[i];
        /* An HSM signer signs on its token, as fwrel-encrypt --sign-key pkcs11:... does. */
        if ((error = open_hsm(&hsm[i], r, k)) == 0 && hsm[i] != NULL) {
            ms[i].key = fwrel_hsm_key_public(hsm[i]);
            ms[i].sign = fwrel_hsm_key_sign_message;
            ms[i].ctx = hsm[i];
        } else if (error == 0 && (error = load_private(&signers[i], r, k)) == 0) {
            ms[i].key = signers[i];
        }
        if (error == 0)
            memcpy(r->rec->manifest_signers[i], r->ent[k]->id, 65);
    }
    r->rec->nmanifest_signers = r->ch->nsigners;
    r->rec->manifest_threshold = r->ch->threshold;
    for (size_t i = 0; error == 0 && i < r->p->nrecipients; i++) {
        size_t k = r->p->recipients[i];
        if ((error = fwrel_keystore_load_public(&recips[i], r->ks, r->ent[k])) == 0)
            memcpy(r->rec->recipients[i], r->ent[k]->id, 65);
    }
    r->rec->nrecipients = r->p->nrecipients;
    if (error == 0)
        error = fwrel_manifest_sign_with(&signed_json, &slen, &m, ms, r->ch->nsigners);
    if (error == 0)
        error = fwrel_manifest_seal(&env, &elen, (const uint8_t *)signed_json, slen,
                                    (const fwrel_pkey *const *)recips, r->p->nrecipients);
    if (error == 0 && (error = fwrel_run_add_member(r, "manifest.fwm", env, elen)) == 0) {
        snprintf(r->rec->manifest.name, sizeof(r->rec->manifest.name), "manifest.fwm");
        fwrel_sha256_hex(r->rec->manifest.sha256, env, elen);
        r->rec->manifest.size = elen;
        fwrel_report_add(r->report, "manifest", FWREL_PASS,
                         "signed by %zu key%s (threshold %u), encrypted to %zu recipient%s",
                         r->ch->nsigners, r->ch->nsigners == 1 ? "" : "s", r->ch->threshold,
                         r->p->nrecipients, r->p->nrecipients == 1 ? "" : "s");
    }
    for (size_t i = 0; i < FWREL_POLICY_MAX_LIST; i++) {
        fwrel_key_free(signers[i]);
        fwrel_key_free(recips[i]);
    }
    free(tpl);
    free(signed_json);
    free(env);
    return error;
}

/* The mender export's artifact of the served image, signed with the policy's mender key. */
static int add_mender(struct run *r, const char *mname, const fwrel_export_vars *v,
                      const fwrel_export_vars *settings, const struct member *img)
{
    fwrel_pkey *key = NULL;
    uint8_t *art = NULL;
    size_t len = 0;
    int error;
    if (!r->p->has_mender_key)
        return fwrel_error_set(FWREL_EUSAGE, "the mender export needs the policy's mender key");
    if ((error = load_private(&key, r, r->p->mender_key)) == 0 &&
        (error = fwrel_export_mender(&art, &len, v, settings, img->data, img->len, key)) == 0)
        error = fwrel_run_add_member(r, mname, art, len);
    fwrel_key_free(key);
    free(art);
    return error;
}

/*
 * The release's variables for the exports. dry: before anything is made (the preflight), with
 * this release's own values (product, version, channel, chip, ...) and placeholders of the right
 * shape for what the signing makes (digests, sizes, counter, secure-fota manifest, HMAC): what an
 * export refuses in a value it refuses before the first signature.
 */
static int export_vars(fwrel_export_vars **out, struct run *r, int dry)
{
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    fwrel_export_vars *v = NULL;
    char created[21], base[600];
    int error;

    *out = NULL;
    if ((error = fwrel_export_vars_new(&v)) != 0)
        return error;
    fwrel_rfc3339(created, r->o->time);
    if (r->p->base_url[0] != '\0')
        snprintf(base, sizeof(base), "%s", r->p->base_url);
    else
        snprintf(base, sizeof(base), "https://updates.invalid/%s", r->p->product);
    char counter[24], secure_version[12], image_size[24], manifest_size[24];
    snprintf(counter, sizeof(counter), "%llu",
             (unsigned long long)(dry ? r->rec->counter + 1 : r->rec->counter));
    snprintf(secure_version, sizeof(secure_version), "%u", r->img.app_desc.secure_version);
    snprintf(image_size, sizeof(image_size), "%llu", (unsigned long long)r->rec->image.size);
    snprintf(manifest_size, sizeof(manifest_size), "%llu",
             (unsigned long long)r->rec->manifest.size);
    const char *const vars[][2] = {
        {"product", r->p->product},
        {"version", r->rec->version},
        {"channel", r->chname},
        {"counter", counter},
        {"secure_version", secure_version},
        {"chip", r->p->chip->name},
        {"image_name", dry ? "firmware.enc" : r->rec->image.name},
        {"image_sha256", dry ? zeros : r->rec->image.sha256},
        {"image_size", image_size},
        {"manifest_name", "manifest.fwm"},
        {"manifest_sha256", dry ? zeros : r->rec->manifest.sha256},
        {"manifest_size", manifest_size},
        {"base_url", base},
        {"created", created},
    };
    for (size_t i = 0; error == 0 && i < sizeof(vars) / sizeof(vars[0]); i++)
        error = fwrel_export_vars_set(v, vars[i][0], vars[i][1]);
    if (!error && dry) {
        if (r->secure_fota)
            error = fwrel_export_vars_set(v, "secure_fota_manifest_sha256", zeros);
        if (!error && r->p->has_hmac_key)
            error = fwrel_export_vars_set(v, "hmac", zeros);
        if (!error)
            error = fwrel_export_vars_set(v, "image_md5", zeros + 32);
        /* The releases list: this release alone (the history is read under the lock). */
        if (!error)
            error = fwrel_export_vars_set_releases(v, NULL);
    }
    if (!error && !dry && r->secure_fota) {
        fwrel_pkey *sk = NULL, *rk = NULL;
        uint8_t desc[256];
        fwrel_src src;
        char sha[65];
        if ((error = fwrel_src_open(&src, r->o->image, FWREL_IMAGE_MAX)) == 0) {
            if ((error = fwrel_src_seek(&src, FWREL_APP_DESC_OFFSET)) == 0)
                error = fwrel_src_read(&src, desc, sizeof(desc));
            fwrel_src_close(&src);
        }
        if (!error && (error = load_private(&sk, r, r->sf_sign)) == 0 &&
            (error = fwrel_keystore_load_public(&rk, r->ks, r->ent[r->sf_recip])) == 0)
            error = fwrel_manifest_securefota_make(r->sfm, desc, sk, rk);
        fwrel_key_free(sk);
        fwrel_key_free(rk);
        fwrel_sha256_hex(sha, r->sfm, sizeof(r->sfm));
        if (!error)
            error = fwrel_export_vars_set(v, "secure_fota_manifest_sha256", sha);
        if (error)
            fwrel_error_prefix("export secure-fota");
    }
    if (!error && !dry && r->p->has_hmac_key) {
        uint8_t *key = NULL;
        size_t klen = 0;
        if ((error = fwrel_keystore_load_secret(&key, &klen, r->ks, r->ent[r->p->hmac_key], r->pass,
                                                r->pass_len)) == 0 &&
            (error = fwrel_src_seek(r->served, 0)) == 0)
            error = fwrel_export_vars_set_hmac(v, key, klen, r->served);
        fwrel_io_free_secret(key, klen);
    }
    /* image_md5 beside the SHA-256, and the channel's releases from the verified history the
     * history step read and checked (the lock is still held). */
    if (!error && !dry && r->history == NULL)
        error = fwrel_error_set(FWREL_EINTERNAL, "the exports need the history step first");
    if (!error && !dry && (error = fwrel_src_seek(r->served, 0)) == 0 &&
        (error = fwrel_export_vars_set_image(v, r->served)) == 0)
        error = fwrel_export_vars_set_releases(v, r->history);
    /* aws-iot-ota's customCodeSigning: the served file signed with the aws_ota key. */
    if (!error && !dry && r->p->has_aws_ota_key) {
        fwrel_pkey *ak = NULL;
        if ((error = load_private(&ak, r, r->p->aws_ota_key)) == 0 &&
            (error = fwrel_src_seek(r->served, 0)) == 0)
            error = fwrel_export_vars_set_signature(v, "aws_signature", ak, r->served);
        fwrel_key_free(ak);
    }
    /* Before the signing, a placeholder of the signature's shape: the key is opened later. */
    if (!error && dry && r->p->has_aws_ota_key)
        error = fwrel_export_vars_set(v, "aws_signature", "AAAA");
    if (error) {
        fwrel_export_vars_free(v);
        return error;
    }
    *out = v;
    return 0;
}

/* Render every export of the policy; dry: only to see that each takes this release. */
static int render_exports(struct run *r, fwrel_export_vars *v, int dry)
{
    fwrel_export_vars *settings = NULL;
    const struct member *img = fwrel_run_find_member(r, r->rec->image.name);
    const struct member *man = fwrel_run_find_member(r, "manifest.fwm");
    struct member sfm;
    memset(&sfm, 0, sizeof(sfm));
    sfm.data = r->sfm;
    sfm.len = sizeof(r->sfm);
    int error = 0;

    for (size_t i = 0; !error && i < r->p->nexports; i++) {
        fwrel_export_file *files = NULL;
        size_t count = 0;
        const char *name = r->p->exports[i];
        const char *types[FWREL_POLICY_MAX_LIST];
        for (size_t k = 0; k < r->p->ndevice_types; k++)
            types[k] = r->p->device_types[k];
        fwrel_export_vars_free(settings);
        settings = NULL;
        if ((error = fwrel_export_policy_settings(&settings, r->p, i)) != 0)
            break;
        if ((error = fwrel_export_vars_set_targets(v, types, r->p->ndevice_types, settings)) ||
            (error = fwrel_export_render_with(&files, &count, r->templates, name, v, settings)) !=
                0) {
            fwrel_error_prefix("export %s", name);
            break;
        }
        for (size_t k = 0; !error && k < count; k++) {
            char mname[300];
            const struct member *src = NULL;
            snprintf(mname, sizeof(mname), "exports/%s/%s", name, files[k].path);
            if (files[k].artifact == NULL) {
                if (!dry)
                    error = fwrel_run_add_member(r, mname, files[k].data, files[k].len);
                continue;
            }
            /* The mender artifact is signed: not before the first signature (dry). */
            if (strcmp(files[k].artifact, FWREL_EXPORT_ARTIFACT_MENDER) == 0) {
                if (!dry)
                    error = add_mender(r, mname, v, settings, img);
                continue;
            }
            if (strcmp(files[k].artifact, FWREL_EXPORT_ARTIFACT_PLAIN) == 0) {
                error = fwrel_export_plain_allowed(r->p, i)
                            ? (dry ? 0 : add_member_src(r, mname, &r->signed_src))
                            : fwrel_error_set(FWREL_EUSAGE,
                                              "export %s: the policy does not "
                                              "allow the plain image",
                                              name);
                continue;
            }
            if (strcmp(files[k].artifact, FWREL_EXPORT_ARTIFACT_IMAGE) == 0)
                src = dry ? &sfm : img;
            else if (strcmp(files[k].artifact, FWREL_EXPORT_ARTIFACT_MANIFEST) == 0)
                src = dry ? &sfm : man;
            else if (r->secure_fota &&
                     strcmp(files[k].artifact, FWREL_EXPORT_ARTIFACT_SECURE_FOTA) == 0)
                src = &sfm;
            if (src == NULL)
                error = fwrel_error_set(FWREL_EUSAGE,
                                        "export %s needs the %s, which this release does not "
                                        "make",
                                        name, files[k].artifact);
            else if (!dry)
                error = fwrel_run_add_member(r, mname, src->data, src->len);
        }
        fwrel_export_files_free(files, count);
    }
    fwrel_export_vars_free(settings);
    return error;
}

/* Preflight (preflight.c): every export renders with this release's values, before any key. */
int fwrel_run_exports_check(struct run *r)
{
    fwrel_export_vars *v = NULL;
    int error;
    if (r->p->nexports == 0)
        return 0;
    if ((error = export_vars(&v, r, 1)) == 0)
        error = render_exports(r, v, 1);
    fwrel_export_vars_free(v);
    return error;
}

int fwrel_run_exports(struct run *r)
{
    fwrel_export_vars *v = NULL;
    int error;

    if (r->p->nexports == 0) {
        fwrel_report_add(r->report, "exports", FWREL_SKIP, "the policy names no export");
        return 0;
    }
    if ((error = export_vars(&v, r, 0)) == 0)
        error = render_exports(r, v, 0);
    fwrel_export_vars_free(v);
    if (error == 0)
        fwrel_report_add(r->report, "exports", FWREL_PASS, "%zu export%s", r->p->nexports,
                         r->p->nexports == 1 ? "" : "s");
    return error;
}
