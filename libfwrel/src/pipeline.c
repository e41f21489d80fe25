/* pipeline.c - the policy-driven release (pipeline.h, docs/bundle.md). */
#define _GNU_SOURCE /* memmem */
#include "fwrel/pipeline.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "fwrel/audit.h"
#include "fwrel/bundle.h"
#include "fwrel/bverify.h"
#include "fwrel/encimg.h"
#include "fwrel/espimg.h"
#include "fwrel/export.h"
#include "fwrel/history.h"
#include "fwrel/hsm.h"
#include "fwrel/io.h"
#include "fwrel/keystore_dir.h"
#include "fwrel/manifest.h"
#include "fwrel/pgp.h"
#include "fwrel/policy.h"
#include "fwrel/repo.h"
#include "fwrel/sbv1.h"
#include "fwrel/sbv2.h"
#include "fwrel/version.h"
#include "util.h"

#define MAX_MEMBERS  80
#define REPO_LOCK_MS 30000

struct member {
    char name[300];
    uint8_t *data;
    size_t len;
};

struct run {
    const fwrel_pipeline_opts *o;
    fwrel_pipeline_result *res;
    fwrel_report *report;
    fwrel_policy *p;
    const fwrel_policy_channel *ch;
    const char *chname;
    fwrel_keystore *ks;
    const fwrel_ks_entry *ent[FWREL_POLICY_MAX_KEYS];
    char *pass;
    size_t pass_len;
    fwrel_repo *repo;
    char repo_path[4096];
    char audit_path[4200];
    /* The signed image and the encrypted one: unnamed scratch files (fwrel_out_open_unnamed()) in
     * TMPDIR, so that a kill or a full disk at any moment leaves no plaintext behind. */
    const char *tmpdir;
    fwrel_src signed_src, enc_src;
    fwrel_src *served; /* what the bundle serves: enc_src, or signed_src when not encrypted */
    fwrel_espimg img;
    fwrel_release *rec;
    struct member m[MAX_MEMBERS];
    size_t nm;
    uint8_t *bundle;
    size_t bundle_len;
    int locked;
    int audit_ok;  /* the log's path was checked under the lock: failures may be logged */
    int recording; /* fwrel_pipeline_record(): the record comes from a bundle */
    char *sums;    /* SHA256SUMS */
    size_t sums_len;
    size_t napprovals;
    char signer[41];          /* who signs the tag: an approver the policy pins */
    fwrel_out *out;           /* the --output file, published after the repository */
    int secure_fota;          /* the policy exports secure-fota: its 1024-byte manifest is made */
    size_t sf_sign, sf_recip; /* its keys: an RSA-3072 signer, an RSA-4096 recipient */
    uint8_t sfm[FWREL_SECURE_FOTA_LEN];
};

/* SHA-256 and size of a whole source. */
static int src_digest(fwrel_release_file *f, fwrel_src *src)
{
    uint8_t d[32];
    int error;
    if ((error = fwrel_src_seek(src, 0)) == 0 &&
        (error = fwrel_digest_src(d, NULL, src, src->size)) == 0) {
        fwrel_hex(f->sha256, d, sizeof(d));
        f->size = src->size;
    }
    return error;
}

static int file_digest(fwrel_release_file *f, const char *path)
{
    fwrel_src src;
    int error = fwrel_src_open(&src, path, FWREL_IMAGE_MAX);
    if (error)
        return error;
    error = src_digest(f, &src);
    fwrel_src_close(&src);
    return error;
}

static int add_member(struct run *r, const char *name, const uint8_t *data, size_t len)
{
    if (r->nm >= MAX_MEMBERS)
        return fwrel_error_set(FWREL_EFORMAT, "more than %d bundle members", MAX_MEMBERS);
    if (strlen(name) >= sizeof(r->m[0].name))
        return fwrel_error_set(FWREL_EFORMAT, "member name too long");
    if ((r->m[r->nm].data = malloc(len > 0 ? len : 1)) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    memcpy(r->m[r->nm].data, data, len);
    r->m[r->nm].len = len;
    snprintf(r->m[r->nm].name, sizeof(r->m[0].name), "%s", name);
    r->nm++;
    return 0;
}

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
    if (!e->output)
        return e->code;
    return fwrel_error_set(e->code, "%s (an unnamed file in %s): %s", what, r->tmpdir, e->message);
}

static const struct member *find_member(const struct run *r, const char *name)
{
    for (size_t i = 0; i < r->nm; i++)
        if (strcmp(r->m[i].name, name) == 0)
            return &r->m[i];
    return NULL;
}

/* --- steps --------------------------------------------------------------------------- */

static int step_policy(struct run *r)
{
    const fwrel_pipeline_opts *o = r->o;
    int error;
    if ((error = fwrel_policy_load(&r->p, o->policy)) != 0)
        return error;
    if (o->channel != NULL) {
        r->ch = fwrel_policy_channel_get(r->p, o->channel);
        if (r->ch == NULL)
            return fwrel_error_set(FWREL_EUSAGE, "the policy has no channel '%.16s'", o->channel);
    } else {
        for (int c = 0; c < FWREL_CHANNEL_COUNT; c++)
            if (r->p->channels[c].present) {
                if (r->ch != NULL)
                    return fwrel_error_set(FWREL_EUSAGE, "the policy has several channels: "
                                                         "give --channel");
                r->ch = &r->p->channels[c];
            }
    }
    r->chname = r->ch->name;
    /* The repository: as given, else the policy's, relative to the policy file. */
    if (o->repo != NULL)
        snprintf(r->repo_path, sizeof(r->repo_path), "%s", o->repo);
    else if ((error =
                  fwrel_policy_repo_path(r->repo_path, sizeof(r->repo_path), r->p, o->policy)) != 0)
        return error;
    fwrel_report_add(r->report, "policy", FWREL_PASS, "%s, channel %s", r->p->product, r->chname);
    return 0;
}

static int step_keys(struct run *r)
{
    int error;
    if ((error = fwrel_ks_open(&r->ks, r->o->keystore, 0)) != 0 ||
        (error = fwrel_ks_resolve(r->ent, r->ks, r->p)) != 0)
        return error;
    int any = 0;
    for (size_t i = 0; i < r->p->nkeys; i++)
        any |= r->ent[i]->encrypted;
    if (any && r->o->keystore_pass != NULL && r->o->keystore_pass->kind != FWREL_PASS_NONE &&
        (error = fwrel_pass_read(&r->pass, &r->pass_len, r->o->keystore_pass,
                                 "Keystore passphrase: ", 0)) != 0)
        return error;
    if ((error = fwrel_ks_check_pass(r->ks, r->pass, r->pass_len)) != 0)
        return error;
    fwrel_report_add(r->report, "keys", FWREL_PASS, "%zu keys active in the keystore", r->p->nkeys);
    return 0;
}

static int step_image(struct run *r)
{
    const fwrel_policy *p = r->p;
    fwrel_espimg *img = &r->img;
    fwrel_src src;
    int error;

    if ((error = fwrel_src_open(&src, r->o->image, FWREL_IMAGE_MAX)) != 0)
        return error;
    error = fwrel_espimg_parse(img, &src, NULL);
    fwrel_src_close(&src);
    if (error || (error = fwrel_espimg_check_integrity(img)) != 0)
        return error;
    if ((error = file_digest(&r->rec->input, r->o->image)) != 0)
        return error;
    if (img->chip != p->chip)
        return fwrel_error_set(FWREL_EVERIFY, "the image is for %s, the policy for %s",
                               img->chip != NULL ? img->chip->name : "an unknown chip",
                               p->chip->name);
    if (p->has_rev && (img->min_chip_rev_full < p->rev_min ||
                       (img->max_chip_rev_full != 0 && img->max_chip_rev_full != 0xffff &&
                        img->max_chip_rev_full > p->rev_max)))
        return fwrel_error_set(FWREL_EVERIFY,
                               "the image's chip revisions v%u.%u..v%u.%u are outside the "
                               "policy's v%u.%u..v%u.%u",
                               img->min_chip_rev_full / 100, img->min_chip_rev_full % 100,
                               img->max_chip_rev_full / 100, img->max_chip_rev_full % 100,
                               p->rev_min / 100, p->rev_min % 100, p->rev_max / 100,
                               p->rev_max % 100);
    if (!img->has_app_desc)
        return fwrel_error_set(FWREL_EVERIFY, "the image has no app descriptor (esp_app_desc_t)");
    if (img->file_len != img->image_len)
        return fwrel_error_set(FWREL_EVERIFY, "the image is signed already or has trailing "
                                              "bytes: give the unsigned image");
    uint64_t need = p->scheme == FWREL_POLICY_SBV1
                        ? img->image_len + FWREL_SBV1_BLOCK_LEN
                        : ((img->image_len + 4095) & ~(uint64_t)4095) + 4096;
    if (need > p->partition_size)
        return fwrel_error_set(FWREL_EVERIFY,
                               "the signed image needs %llu bytes, the partition has %llu",
                               (unsigned long long)need, (unsigned long long)p->partition_size);
    uint32_t sv = img->app_desc.secure_version;
    if (sv < p->min_secure_version)
        return fwrel_error_set(FWREL_EVERIFY, "secure_version %u is below the policy's minimum %u",
                               sv, p->min_secure_version);
    if (sv > p->efuse_bits)
        return fwrel_error_set(FWREL_EVERIFY,
                               "secure_version %u exceeds the eFuse field's capacity %u", sv,
                               p->efuse_bits);
    int c;
    if ((error = fwrel_semver_cmp(&c, img->app_desc.version, "0.0.0")) != 0)
        return fwrel_error_set(FWREL_EVERIFY, "the image's version '%s' is not SemVer 2.0",
                               img->app_desc.version);
    snprintf(r->rec->version, sizeof(r->rec->version), "%s", img->app_desc.version);
    r->rec->secure_version = sv;
    fwrel_report_add(r->report, "image", FWREL_PASS, "%s %s, secure_version %u, %llu bytes",
                     p->chip->name, img->app_desc.version, sv, (unsigned long long)img->image_len);
    return 0;
}

/* The tag name from the policy's template. */
static int make_tag(char out[256], const fwrel_policy *p, const char *channel, const char *version)
{
    size_t n = 0;
    for (const char *t = p->tag; *t != '\0';) {
        const char *v = NULL;
        if (strncmp(t, "{product}", 9) == 0)
            v = p->product, t += 9;
        else if (strncmp(t, "{channel}", 9) == 0)
            v = channel, t += 9;
        else if (strncmp(t, "{version}", 9) == 0)
            v = version, t += 9;
        size_t len = v != NULL ? strlen(v) : 1;
        if (n + len >= 256)
            return fwrel_error_set(FWREL_EFORMAT, "tag name too long");
        memcpy(out + n, v != NULL ? v : t, len);
        n += len;
        if (v == NULL)
            t++;
    }
    out[n] = '\0';
    return 0;
}

/* Which tags the history believes: signed by an approver the policy pins (by anyone when it pins
 * none, as its tag signer may then be anyone). */
static fwrel_history_opts history_opts(const struct run *r)
{
    fwrel_history_opts ho = {r->o->gnupg_home, (const char(*)[41])r->p->approvers,
                             r->p->napprovers};
    return ho;
}

/* The history read under the lock (history.h): each ignored tag reported, untagged release
 * commits refused. */
static int read_history(fwrel_history **h, struct run *r)
{
    fwrel_history_opts ho = history_opts(r);
    int error;
    if ((error = fwrel_history_read(h, r->repo, &ho)) != 0)
        return error;
    for (size_t i = 0; i < (*h)->nign; i++)
        if (fwrel_report_add(r->report, "history", FWREL_INFO, "tag %s ignored: %s",
                             (*h)->ign[i].tag, (*h)->ign[i].reason) != 0)
            return fwrel_error_set(FWREL_EIO, "out of memory");
    return 0;
}

static fwrel_history_item history_item(const char *tag, const fwrel_release *rec)
{
    fwrel_history_item it = {tag,          rec->product, rec->version,
                             rec->channel, rec->counter, rec->secure_version};
    return it;
}

/* The release against the verified history of its product (the rules of history.c). */
static int step_history(struct run *r)
{
    fwrel_history *h = NULL;
    fwrel_history_state *st = NULL;
    fwrel_history_item *items = NULL;
    size_t seen = 0;
    int error;

    if ((error = make_tag(r->res->tag, r->p, r->chname, r->rec->version)) != 0)
        return error;
    if ((error = read_history(&h, r)) != 0 || (error = fwrel_history_rule_untagged(h)) != 0 ||
        (error = fwrel_history_state_new(&st)) != 0)
        goto done;
    if ((items = calloc(h->nrel ? h->nrel : 1, sizeof(*items))) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < h->nrel; i++) {
        const fwrel_history_release *old = &h->rel[i];
        if (strcmp(old->record.product, r->p->product) != 0)
            continue;
        if (strcmp(old->record.input.sha256, r->rec->input.sha256) == 0 &&
            strcmp(old->record.channel, r->chname) == 0) {
            error =
                fwrel_error_set(FWREL_EVERIFY, "this image was released already as %s", old->tag);
            goto done;
        }
        items[seen] = history_item(old->tag, &old->record);
        if ((error = fwrel_history_state_add(st, &items[seen++])) != 0)
            goto done;
    }
    if (fwrel_history_has_tag(h, r->res->tag)) {
        int released = 0;
        for (size_t i = 0; i < h->nrel; i++)
            released |= strcmp(h->rel[i].tag, r->res->tag) == 0;
        error = released ? fwrel_error_set(FWREL_EVERIFY,
                                           "tag %s exists: version %s was released "
                                           "already",
                                           r->res->tag, r->rec->version)
                         : fwrel_error_set(FWREL_EVERIFY, "tag %s exists already", r->res->tag);
        goto done;
    }
    uint64_t next = fwrel_history_state_counter(st) + 1;
    if (next > UINT32_MAX) {
        error =
            fwrel_error_set(FWREL_EVERIFY, "the release counter of %s is exhausted", r->p->product);
        goto done;
    }
    if (r->recording && r->rec->counter != next) {
        error = fwrel_error_set(FWREL_EVERIFY,
                                "the bundle's release counter is %llu, the next is %llu: a release "
                                "was recorded since the bundle was made; make it again",
                                (unsigned long long)r->rec->counter, (unsigned long long)next);
        goto done;
    }
    r->rec->counter = next;
    fwrel_history_item it = {r->res->tag, r->p->product,   r->rec->version,
                             r->chname,   r->rec->counter, r->rec->secure_version};
    if ((error = fwrel_history_rule_counter(st, &it)) != 0 ||
        (error = fwrel_history_rule_secure_version(st, &it, r->p->monotonic)) != 0 ||
        (error = fwrel_history_rule_version(st, &it)) != 0)
        goto done;
    fwrel_report_add(r->report, "history", FWREL_PASS, "%zu earlier release%s of %s; counter %llu",
                     seen, seen == 1 ? "" : "s", r->p->product,
                     (unsigned long long)r->rec->counter);
    error = 0;
done:
    free(items);
    fwrel_history_state_free(st);
    fwrel_history_free(h);
    return error;
}

static int load_private(fwrel_pkey **key, struct run *r, size_t idx)
{
    return fwrel_ks_load_private(key, r->ks, r->ent[idx], r->pass, r->pass_len);
}

/*
 * The HSM key of a policy key, or *hk NULL for a software key. The policy's hsm and the
 * keystore's uri must agree (fwrel-keygen --policy records them). The PIN: the URI's
 * pin-source, else o->hsm_pin.
 */
static int open_hsm(fwrel_hsm_key **hk, struct run *r, size_t idx)
{
    const fwrel_policy_key *k = &r->p->keys[idx];
    const fwrel_ks_entry *e = r->ent[idx];
    char id[65];
    int error;

    *hk = NULL;
    if (k->hsm == NULL && e->uri == NULL)
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
    }
    return error;
}

static int step_sign(struct run *r)
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
        fwrel_hsm_key_close(hk);
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
    if (error == 0 && (error = src_digest(&r->rec->signed_image, &r->signed_src)) == 0)
        fwrel_report_add(r->report, "secureboot", FWREL_PASS, "%s with %zu key%s",
                         r->p->scheme == FWREL_POLICY_SBV1 ? "Secure Boot V1" : "Secure Boot V2", n,
                         n == 1 ? "" : "s");
    return error;
}

static int step_encrypt(struct run *r)
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
    const fwrel_ks_entry *e = r->ent[r->p->image_key];
    if ((error = fwrel_ks_load_public(&pub, r->ks, e)) != 0)
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
    if ((error = src_digest(&r->rec->image, r->served)) != 0 ||
        (error = add_member_src(r, "firmware.enc", r->served)) != 0)
        return error;
    fwrel_report_add(r->report, "encrypt", FWREL_PASS, "esp_encrypted_img, %s scheme",
                     fwrel_alg_name(e->alg));
    return 0;
}

static int step_manifest(struct run *r)
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
        if ((error = fwrel_ks_load_public(&recips[i], r->ks, r->ent[k])) == 0)
            memcpy(r->rec->recipients[i], r->ent[k]->id, 65);
    }
    r->rec->nrecipients = r->p->nrecipients;
    if (error == 0)
        error = fwrel_manifest_sign_with(&signed_json, &slen, &m, ms, r->ch->nsigners);
    if (error == 0)
        error = fwrel_manifest_seal(&env, &elen, (const uint8_t *)signed_json, slen,
                                    (const fwrel_pkey *const *)recips, r->p->nrecipients);
    if (error == 0 && (error = add_member(r, "manifest.fwm", env, elen)) == 0) {
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
        fwrel_hsm_key_close(hsm[i]);
    }
    free(tpl);
    free(signed_json);
    free(env);
    return error;
}

static int step_exports(struct run *r)
{
    fwrel_export_vars *v = NULL, *settings = NULL;
    fwrel_history *hist = NULL;
    char created[21], base[600];
    const struct member *img = find_member(r, r->rec->image.name);
    const struct member *man = find_member(r, "manifest.fwm");
    struct member sfm;
    memset(&sfm, 0, sizeof(sfm));
    sfm.data = r->sfm;
    sfm.len = sizeof(r->sfm);
    int error;

    if (r->p->nexports == 0) {
        fwrel_report_add(r->report, "exports", FWREL_SKIP, "the policy names no export");
        return 0;
    }
    if ((error = fwrel_export_vars_new(&v)) != 0)
        return error;
    fwrel_rfc3339(created, r->o->time);
    if (r->p->base_url[0] != '\0')
        snprintf(base, sizeof(base), "%s", r->p->base_url);
    else
        snprintf(base, sizeof(base), "https://updates.invalid/%s", r->p->product);
    char counter[24], secure_version[12], image_size[24], manifest_size[24];
    snprintf(counter, sizeof(counter), "%llu", (unsigned long long)r->rec->counter);
    snprintf(secure_version, sizeof(secure_version), "%u", r->img.app_desc.secure_version);
    snprintf(image_size, sizeof(image_size), "%llu", (unsigned long long)r->rec->image.size);
    snprintf(manifest_size, sizeof(manifest_size), "%llu",
             (unsigned long long)r->rec->manifest.size);
    const char *const vars[][2] = {
        {"product", r->p->product},
        {"version", r->img.app_desc.version},
        {"channel", r->chname},
        {"counter", counter},
        {"secure_version", secure_version},
        {"chip", r->p->chip->name},
        {"image_name", r->rec->image.name},
        {"image_sha256", r->rec->image.sha256},
        {"image_size", image_size},
        {"manifest_name", "manifest.fwm"},
        {"manifest_sha256", r->rec->manifest.sha256},
        {"manifest_size", manifest_size},
        {"base_url", base},
        {"created", created},
    };
    error = 0;
    for (size_t i = 0; error == 0 && i < sizeof(vars) / sizeof(vars[0]); i++)
        error = fwrel_export_vars_set(v, vars[i][0], vars[i][1]);
    if (!error && r->secure_fota) {
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
            (error = fwrel_ks_load_public(&rk, r->ks, r->ent[r->sf_recip])) == 0)
            error = fwrel_manifest_securefota_make(r->sfm, desc, sk, rk);
        fwrel_key_free(sk);
        fwrel_key_free(rk);
        fwrel_sha256_hex(sha, r->sfm, sizeof(r->sfm));
        if (!error)
            error = fwrel_export_vars_set(v, "secure_fota_manifest_sha256", sha);
        if (error)
            fwrel_error_prefix("export secure-fota");
    }
    if (!error && r->p->has_hmac_key) {
        uint8_t *key = NULL;
        size_t klen = 0;
        if ((error = fwrel_ks_load_secret(&key, &klen, r->ks, r->ent[r->p->hmac_key], r->pass,
                                          r->pass_len)) == 0 &&
            (error = fwrel_src_seek(r->served, 0)) == 0)
            error = fwrel_export_vars_set_hmac(v, key, klen, r->served);
        fwrel_io_free_secret(key, klen);
    }
    /* image_md5 beside the SHA-256, and the channel's releases from the verified history (the
     * lock is still held: it is the history step_history checked). */
    fwrel_history_opts ho = history_opts(r);
    if (!error && (error = fwrel_src_seek(r->served, 0)) == 0 &&
        (error = fwrel_export_vars_set_image(v, r->served)) == 0 &&
        (error = fwrel_history_read(&hist, r->repo, &ho)) == 0)
        error = fwrel_export_vars_set_releases(v, hist);
    fwrel_history_free(hist);
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
            (error = fwrel_export_render_with(&files, &count, r->o->template_root, name, v,
                                              settings)) != 0) {
            fwrel_error_prefix("export %s", name);
            break;
        }
        for (size_t k = 0; !error && k < count; k++) {
            char mname[300];
            const struct member *src = NULL;
            snprintf(mname, sizeof(mname), "exports/%s/%s", name, files[k].path);
            if (files[k].artifact == NULL) {
                error = add_member(r, mname, files[k].data, files[k].len);
                continue;
            }
            if (strcmp(files[k].artifact, FWREL_EXPORT_ARTIFACT_IMAGE) == 0)
                src = img;
            else if (strcmp(files[k].artifact, FWREL_EXPORT_ARTIFACT_MANIFEST) == 0)
                src = man;
            else if (r->secure_fota &&
                     strcmp(files[k].artifact, FWREL_EXPORT_ARTIFACT_SECURE_FOTA) == 0)
                src = &sfm;
            if (src == NULL)
                error = fwrel_error_set(FWREL_EUSAGE,
                                        "export %s needs the %s, which this release does not "
                                        "make",
                                        name, files[k].artifact);
            else
                error = add_member(r, mname, src->data, src->len);
        }
        fwrel_export_files_free(files, count);
    }
    fwrel_export_vars_free(settings);
    fwrel_export_vars_free(v);
    if (error == 0)
        fwrel_report_add(r->report, "exports", FWREL_PASS, "%zu export%s", r->p->nexports,
                         r->p->nexports == 1 ? "" : "s");
    return error;
}

static int cmp_member(const void *a, const void *b)
{
    return strcmp(((const struct member *)a)->name, ((const struct member *)b)->name);
}

/* The members as bundle.h wants them, sorted; the array is malloc'd. */
static int member_view(fwrel_bundle_member **out, struct run *r)
{
    qsort(r->m, r->nm, sizeof(r->m[0]), cmp_member);
    if ((*out = calloc(r->nm + 1, sizeof(**out))) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    for (size_t i = 0; i < r->nm; i++) {
        (*out)[i].name = r->m[i].name;
        (*out)[i].data = r->m[i].data;
        (*out)[i].len = r->m[i].len;
    }
    return 0;
}

/* A valid fingerprint (40 hex, either case) in GnuPG's upper-case spelling. */
static int fpr_upper(char out[41], const char *fpr)
{
    if (!fwrel_pgp_fpr_valid(fpr))
        return fwrel_error_set(FWREL_EUSAGE, "'%.48s' is not a 40-hex-digit OpenPGP fingerprint",
                               fpr);
    for (size_t i = 0; i < 41; i++)
        out[i] = (char)(fpr[i] >= 'a' && fpr[i] <= 'f' ? fpr[i] - 32 : fpr[i]);
    return 0;
}

/* The policy pins this approver (fpr: 40 hex, either case); the pinned spelling to out. */
static int approver_pinned(char out[41], const fwrel_policy *p, const char *fpr)
{
    char up[41];
    int error = fpr_upper(up, fpr);
    if (error)
        return error;
    for (size_t i = 0; i < p->napprovers; i++)
        if (strcmp(p->approvers[i], up) == 0) {
            memcpy(out, p->approvers[i], 41);
            return 0;
        }
    return fwrel_error_set(FWREL_EVERIFY, "%s is not an approver the policy pins", up);
}

/* Who may sign the tag: an approver the policy pins, or anyone when it pins none (dev). */
static int tag_signer_ok(char out[41], const fwrel_policy *p, const char *fpr)
{
    if (p->napprovers > 0)
        return approver_pinned(out, p, fpr);
    return fpr_upper(out, fpr);
}

/* release.json, then SHA256SUMS over every member so far. */
static int step_record(struct run *r)
{
    fwrel_release *rec = r->rec;
    fwrel_bundle_member *view = NULL;
    char *json = NULL;
    size_t jlen = 0;
    int error;

    snprintf(rec->product, sizeof(rec->product), "%s", r->p->product);
    snprintf(rec->channel, sizeof(rec->channel), "%s", r->chname);
    snprintf(rec->chip, sizeof(rec->chip), "%s", r->p->chip->name);
    for (size_t i = 0; i < r->p->ndevice_types && i < 8; i++)
        snprintf(rec->device_types[i], sizeof(rec->device_types[0]), "%s", r->p->device_types[i]);
    rec->ndevice_types = r->p->ndevice_types < 8 ? r->p->ndevice_types : 8;
    fwrel_hex(rec->policy_sha256, r->p->sha256, sizeof(r->p->sha256));
    for (size_t i = 0; i < r->p->napprovers && i < 16; i++)
        memcpy(rec->approvers[i], r->p->approvers[i], 41);
    rec->napprovers = r->p->napprovers < 16 ? r->p->napprovers : 16;
    rec->approvals_required = r->ch->approvals_required;
    snprintf(rec->tool_version, sizeof(rec->tool_version), "%s", fwrel_version());
    if ((error = fwrel_release_encode(&json, &jlen, rec)) != 0 ||
        (error = add_member(r, "release.json", (const uint8_t *)json, jlen)) != 0 ||
        (error = member_view(&view, r)) != 0 ||
        (error = fwrel_bundle_sums(&r->sums, &r->sums_len, view, r->nm)) != 0 ||
        (error = add_member(r, "SHA256SUMS", (const uint8_t *)r->sums, r->sums_len)) != 0)
        goto done;
    fwrel_report_add(r->report, "record", FWREL_PASS,
                     "release.json and SHA256SUMS over %zu members", r->nm - 1);
    error = 0;
done:
    free(view);
    free(json);
    return error;
}

/* The approvers given sign SHA256SUMS; who signs the tag is decided here. */
static int step_approve(struct run *r)
{
    const fwrel_pipeline_opts *o = r->o;
    int error = 0;

    for (size_t i = 0; i < o->napprovers; i++) {
        char fpr[41], name[64];
        uint8_t *sig = NULL;
        size_t len = 0;
        if ((error = approver_pinned(fpr, r->p, o->approvers[i])) != 0)
            return error;
        snprintf(name, sizeof(name), "approvals/%s.asc", fpr);
        if (find_member(r, name) != NULL)
            continue; /* the same approver twice counts once */
        if ((error = fwrel_pgp_sign_detached(&sig, &len, o->gnupg_home, fpr,
                                             (const uint8_t *)r->sums, r->sums_len, o->pgp_pass)) !=
            0) {
            fwrel_error_prefix("approver %s", fpr);
            return error;
        }
        error = add_member(r, name, sig, len);
        free(sig);
        if (error)
            return error;
        if (r->signer[0] == '\0')
            memcpy(r->signer, fpr, 41);
        r->napprovals++;
    }
    if (o->tag_signer != NULL && (error = tag_signer_ok(r->signer, r->p, o->tag_signer)) != 0)
        return error;
    r->res->approvals = r->napprovals;
    fwrel_report_add(r->report, "approve",
                     r->napprovals >= r->ch->approvals_required ? FWREL_PASS : FWREL_INFO,
                     "%zu of %u required approvals", r->napprovals, r->ch->approvals_required);
    return 0;
}

static int step_bundle(struct run *r)
{
    fwrel_bundle_member *view = NULL;
    int error;
    if ((error = member_view(&view, r)) == 0 &&
        (error = fwrel_bundle_write_mem(&r->bundle, &r->bundle_len, view, r->nm, r->o->time)) ==
            0) {
        fwrel_sha256_hex(r->res->bundle_sha256, r->bundle, r->bundle_len);
        fwrel_report_add(r->report, "bundle", FWREL_PASS, "%zu members, %zu bytes, sha256 %s",
                         r->nm, r->bundle_len, r->res->bundle_sha256);
    }
    free(view);
    return error;
}

static json_t *file_json(const char *name, const char *sha256, uint64_t size)
{
    return json_pack("{s:s, s:s, s:I}", "name", name, "sha256", sha256, "size", (json_int_t)size);
}

/* Append one entry: the caller's event, inputs and outputs (taken over), "ok" or the reason. */
static int append_entry(struct run *r, const char *event, const char *fpr, json_t *in, json_t *out,
                        const char *reason)
{
    const fwrel_pipeline_opts *o = r->o;
    json_t *e = json_object(), *who = json_object();
    char *text = NULL;
    int error;

    json_object_set_new(who, "user", json_string(o->who != NULL && o->who[0] ? o->who : "fwrel"));
    if (fpr != NULL && fpr[0] != '\0')
        json_object_set_new(who, "fingerprint", json_string(fpr));
    json_object_set_new(e, "event", json_string(event));
    json_object_set_new(e, "who", who);
    json_object_set_new(e, "inputs", in);
    json_object_set_new(e, "outputs", out);
    json_object_set_new(e, "result", json_string(reason == NULL ? "ok" : "fail"));
    if (reason != NULL)
        json_object_set_new(e, "reason", json_string(reason));
    text = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(e);
    if (text == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    error = fwrel_audit_append(r->audit_path, text, strlen(text), r->res->audit_head);
    free(text);
    if (error)
        fwrel_error_prefix("audit log");
    return error;
}

/* The image given (once read) and the policy, as audit inputs. */
static json_t *release_inputs(struct run *r)
{
    const fwrel_pipeline_opts *o = r->o;
    json_t *in = json_array();
    const char *base = strrchr(o->image, '/');
    char policy_sha[65];
    struct stat st;
    if (r->rec->input.sha256[0] != '\0' && !r->recording)
        json_array_append_new(in, file_json(base != NULL ? base + 1 : o->image,
                                            r->rec->input.sha256, r->rec->input.size));
    fwrel_hex(policy_sha, r->p->sha256, sizeof(r->p->sha256));
    base = strrchr(o->policy, '/');
    json_array_append_new(in, file_json(base != NULL ? base + 1 : o->policy, policy_sha,
                                        stat(o->policy, &st) == 0 ? (uint64_t)st.st_size : 0));
    return in;
}

/* The failure record ("release", result "fail"). */
static int audit_entry(struct run *r, const char *event, const char *reason)
{
    return append_entry(r, event, r->signer, release_inputs(r), json_array(), reason);
}

static json_t *one_file(const char *name, const char *sha256, uint64_t size)
{
    json_t *a = json_array();
    json_array_append_new(a, file_json(name, sha256, size));
    return a;
}

/*
 * What this run did, one entry per act: "sign" (image -> signed image) and "encrypt" (signed
 * image -> firmware.enc) when the bundle is made now, "approve" for each approval in the
 * bundle that is new to the log (made now, or added by --approve before --record), then
 * "bundle" (image and policy -> the bundle). All are appended after everything is made, just
 * before the commit: a failure earlier leaves only its failure record.
 */
static int step_audit(struct run *r)
{
    const fwrel_release *rec = r->rec;
    const struct member *sums = find_member(r, "SHA256SUMS");
    char sums_sha[65], name[300];
    uint8_t *log = NULL;
    size_t log_len = 0;
    int error = 0;

    if (!r->recording) {
        error = append_entry(
            r, "sign", NULL, one_file("input image", rec->input.sha256, rec->input.size),
            one_file("signed image", rec->signed_image.sha256, rec->signed_image.size), NULL);
        if (error == 0 && rec->encrypted)
            error = append_entry(
                r, "encrypt", NULL,
                one_file("signed image", rec->signed_image.sha256, rec->signed_image.size),
                one_file(rec->image.name, rec->image.sha256, rec->image.size), NULL);
    }
    /* --record: approvals made with the bundle were logged then; only the later ones now. */
    if (r->recording && access(r->audit_path, F_OK) == 0 &&
        (error = fwrel_io_read_small(&log, &log_len, r->audit_path, FWREL_REPO_FILE_MAX)) != 0)
        return error;
    fwrel_sha256_hex(sums_sha, (const uint8_t *)sums->data, sums->len);
    for (size_t i = 0; error == 0 && i < r->nm; i++) {
        char sig_sha[65], fpr[41];
        if (strncmp(r->m[i].name, "approvals/", 10) != 0)
            continue;
        fwrel_sha256_hex(sig_sha, r->m[i].data, r->m[i].len);
        if (log != NULL && memmem(log, log_len, sig_sha, 64) != NULL)
            continue;
        snprintf(fpr, sizeof(fpr), "%.40s", r->m[i].name + 10);
        error = append_entry(r, "approve", fpr, one_file("SHA256SUMS", sums_sha, sums->len),
                             one_file(r->m[i].name, sig_sha, r->m[i].len), NULL);
    }
    /* The bundle: as the repository will hold it, or (waiting for approvals) the output file. */
    const char *out_base = r->o->output != NULL ? strrchr(r->o->output, '/') : NULL;
    if (!r->recording && r->napprovals < r->ch->approvals_required && r->o->output != NULL)
        snprintf(name, sizeof(name), "%s", out_base != NULL ? out_base + 1 : r->o->output);
    else
        snprintf(name, sizeof(name), "%s/bundle.fwb", r->res->tag);
    if (error == 0)
        error = append_entry(r, "bundle", r->signer, release_inputs(r),
                             one_file(name, r->res->bundle_sha256, r->bundle_len), NULL);
    if (error == 0)
        fwrel_report_add(r->report, "audit", FWREL_PASS, "head %s", r->res->audit_head);
    free(log);
    return error;
}

/* The bundle, its release.json and the audit log committed; the signed tag. */
static int step_repo(struct run *r)
{
    const fwrel_pipeline_opts *o = r->o;
    const struct member *rj = find_member(r, "release.json");
    char pbundle[300], prel[300], msg[4096], approvers[16 * 42 + 1] = "", commit_msg[4400];
    uint8_t *log = NULL;
    size_t log_len = 0;
    uint64_t entries = 0;
    char head[65], rj_sha[65];
    int error;

    /* The log read once: the bytes committed are the bytes verified, ending in this run's head. */
    FILE *f = NULL;
    if ((error = fwrel_io_read_small(&log, &log_len, r->audit_path, FWREL_REPO_FILE_MAX)) == 0) {
        if ((f = fmemopen(log, log_len, "r")) == NULL)
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot read it");
        else
            error = fwrel_audit_verify_stream(f, r->res->audit_head, 0, &entries, head);
        if (f != NULL)
            fclose(f);
    }
    if (error) {
        fwrel_error_prefix("audit log");
        goto done;
    }
    snprintf(pbundle, sizeof(pbundle), "%s/bundle.fwb", r->res->tag);
    snprintf(prel, sizeof(prel), "%s/release.json", r->res->tag);
    fwrel_sha256_hex(rj_sha, rj->data, rj->len);
    for (size_t i = 0; i < r->nm; i++)
        if (strncmp(r->m[i].name, "approvals/", 10) == 0) {
            size_t n = strlen(approvers);
            snprintf(approvers + n, sizeof(approvers) - n, "%s%.40s", n ? ", " : "",
                     r->m[i].name + 10);
        }
    snprintf(msg, sizeof(msg),
             "fwrel release %s %s (%s)\n\n"
             "counter: %llu\nsecure_version: %u\n"
             "bundle: %s sha256:%s size:%zu\n"
             "release.json: sha256:%s\ninput: sha256:%s size:%llu\npolicy: sha256:%s\n"
             "approvals: %zu of %u: %s\n"
             "audit: %s head:%s entries:%llu\n",
             r->rec->product, r->rec->version, r->rec->channel, (unsigned long long)r->rec->counter,
             r->rec->secure_version, pbundle, r->res->bundle_sha256, r->bundle_len, rj_sha,
             r->rec->input.sha256, (unsigned long long)r->rec->input.size, r->rec->policy_sha256,
             r->napprovals, r->ch->approvals_required, approvers[0] ? approvers : "none",
             r->p->audit_log, head, (unsigned long long)entries);
    snprintf(commit_msg, sizeof(commit_msg), "release %s\n\n%s", r->res->tag,
             strchr(msg, '\n') + 2);
    fwrel_repo_file files[3] = {
        {pbundle, r->bundle, r->bundle_len},
        {prel, rj->data, rj->len},
        {r->p->audit_log, log, log_len},
    };
    fwrel_repo_release_opts ro;
    memset(&ro, 0, sizeof(ro));
    ro.files = files;
    ro.nfiles = 3;
    ro.commit_message = commit_msg;
    ro.tag_name = r->res->tag;
    ro.tag_message = msg;
    ro.who.name = o->who != NULL && o->who[0] ? o->who : "fwrel";
    ro.who.email = o->email != NULL && o->email[0] ? o->email : "release@fwrel.invalid";
    ro.who.time = o->time;
    ro.gpg_home = o->gnupg_home;
    ro.signer_fpr = r->signer;
    ro.pass = o->pgp_pass;
    if ((error = fwrel_repo_release(r->repo, &ro, r->res->commit, NULL)) != 0)
        goto done;
    r->res->recorded = 1;
    fwrel_report_add(r->report, "repo", FWREL_PASS, "tag %s on commit %.12s, signed by %s",
                     r->res->tag, r->res->commit, r->signer);
    error = 0;
done:
    free(log);
    return error;
}

/* The repository (created on first use) and its lock; from here a failure is logged, so the audit
 * log's directory is made now, once. */
static int step_lock(struct run *r)
{
    int error;
    if ((error = fwrel_repo_open(&r->repo, r->repo_path, 1)) != 0 ||
        (error = fwrel_repo_lock(r->repo, REPO_LOCK_MS)) != 0)
        return error;
    r->locked = 1;
    if ((error = fwrel_policy_audit_path(r->audit_path, sizeof(r->audit_path), r->p, r->repo_path,
                                         1)) != 0)
        return error;
    r->audit_ok = 1;
    fwrel_report_add(r->report, "lock", FWREL_PASS, "%s", r->repo_path);
    return 0;
}

/* The --output file is written now and published only after the repository took the release. */
static int step_output_prepare(struct run *r)
{
    int error;
    if (r->o->output == NULL)
        return 0;
    if ((error = fwrel_out_open(&r->out, r->o->output, r->o->out_flags, 0644)) != 0)
        return error;
    if ((error = fwrel_out_write(r->out, r->bundle, r->bundle_len)) != 0) {
        fwrel_out_abort(r->out);
        r->out = NULL;
    }
    return error;
}

static int step_output_commit(struct run *r)
{
    fwrel_out *out = r->out;
    r->out = NULL; /* committed or aborted by the call */
    return fwrel_out_commit(out);
}

/* --- the whole run ------------------------------------------------------------------- */

/* Run one step behind the test hook (pipeline.h: fail or die at a named step). */
#define STEP(name, call)                                                                           \
    do {                                                                                           \
        if ((error = fwrel_test_hook(name)) != 0 || (error = (call)) != 0) {                       \
            failed = name;                                                                         \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

static void finish(struct run *r, int error, const char *failed)
{
    if (error) {
        /* Keep the reason: the cleanup below may overwrite the error. */
        char reason[FWREL_ERROR_MSG_MAX + 300];
        const fwrel_error *e = fwrel_error_last();
        fwrel_error saved = *e;
        snprintf(reason, sizeof(reason), "release %s failed at %s: %s",
                 r->res->tag[0] ? r->res->tag : "(no tag yet)", failed, e->message);
        if (r->report != NULL)
            fwrel_report_add(r->report, failed, FWREL_FAIL, "%s", e->message);
        /* Logged once the lock is held (the log's place is known and writes are serialized). */
        if (r->locked && r->audit_ok && !r->res->recorded && audit_entry(r, "release", reason) != 0)
            fwrel_error_clear();
        fwrel_error_set(saved.code, "%s", saved.message);
        if (saved.output)
            fwrel_error_mark_output();
        if (r->out != NULL)
            fwrel_out_abort(r->out);
    }
    for (size_t i = 0; i < r->nm; i++)
        free(r->m[i].data);
    free(r->bundle);
    free(r->sums);
    if (r->locked)
        fwrel_repo_unlock(r->repo);
    fwrel_repo_free(r->repo);
    fwrel_pass_free(r->pass, r->pass_len);
    fwrel_ks_close(r->ks);
    fwrel_policy_free(r->p);
    fwrel_src_close(&r->signed_src);
    fwrel_src_close(&r->enc_src);
}

/* Set up a run. Nothing is created: the intermediate files are unnamed, made when needed. */
static int run_init(struct run *r, fwrel_pipeline_result *res, fwrel_report *report,
                    const fwrel_pipeline_opts *o)
{
    memset(res, 0, sizeof(*res));
    memset(r, 0, sizeof(*r));
    r->o = o;
    r->res = res;
    r->report = report;
    r->rec = &res->record;
    r->signed_src.fd = -1;
    r->enc_src.fd = -1;
    r->tmpdir = getenv("TMPDIR") != NULL && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp";
    return 0;
}

/* Checks that need no work: can this run end in a recorded release or a written output? */
static int preflight(struct run *r)
{
    const fwrel_pipeline_opts *o = r->o;
    int error;
    if (o->napprovers > FWREL_PIPELINE_MAX_APPROVERS)
        return fwrel_error_set(FWREL_EUSAGE, "at most %d approvers at once",
                               FWREL_PIPELINE_MAX_APPROVERS);
    for (size_t i = 0; i < o->napprovers; i++) {
        char fpr[41];
        if ((error = approver_pinned(fpr, r->p, o->approvers[i])) != 0)
            return error;
    }
    if (o->tag_signer != NULL && (error = tag_signer_ok(r->signer, r->p, o->tag_signer)) != 0)
        return error;
    r->signer[0] = '\0';
    if (!r->recording && o->napprovers < r->ch->approvals_required && o->output == NULL)
        return fwrel_error_set(FWREL_EUSAGE,
                               "the %s channel needs %u approvals and %zu approver%s given: "
                               "give --output to write the bundle for approval",
                               r->chname, r->ch->approvals_required, o->napprovers,
                               o->napprovers == 1 ? " is" : "s are");
    if (!r->recording && o->napprovers >= r->ch->approvals_required && o->napprovers == 0 &&
        o->tag_signer == NULL)
        return fwrel_error_set(FWREL_EUSAGE, "no one to sign the tag: give --tag-signer FPR");
    /* The secure-fota export's manifest is signed by the channel's RSA-3072 manifest signer and
     * encrypted to the policy's RSA-4096 recipient (docs/exports.md). */
    for (size_t i = 0; i < r->p->nexports; i++)
        if (strcmp(r->p->exports[i], "secure-fota") == 0)
            r->secure_fota = 1;
    if (r->secure_fota) {
        size_t s = SIZE_MAX, c = SIZE_MAX;
        for (size_t i = r->ch->nsigners; i-- > 0;)
            if (r->p->keys[r->ch->signers[i]].alg == FWREL_ALG_RSA3072)
                s = r->ch->signers[i];
        for (size_t i = r->p->nrecipients; i-- > 0;)
            if (r->p->keys[r->p->recipients[i]].alg == FWREL_ALG_RSA4096)
                c = r->p->recipients[i];
        if (s == SIZE_MAX || c == SIZE_MAX)
            return fwrel_error_set(FWREL_EUSAGE,
                                   "the secure-fota export needs an RSA-3072 manifest signer in "
                                   "the %s channel and an RSA-4096 manifest recipient",
                                   r->chname);
        r->sf_sign = s;
        r->sf_recip = c;
    }
    /* The manifest is valid from the release time for the channel's validity: a release time
     * (SOURCE_DATE_EPOCH) so old that it is expired now, or later than a device's clock skew
     * allows (docs/manifest.md section 4: created <= now + 5 min), would be refused on arrival. */
    int64_t now = (int64_t)time(NULL);
    if (!r->recording && o->time + (int64_t)r->ch->validity <= now) {
        char t[21], e[21];
        fwrel_rfc3339(t, o->time);
        fwrel_rfc3339(e, o->time + (int64_t)r->ch->validity);
        return fwrel_error_set(FWREL_EUSAGE,
                               "the release time %s (SOURCE_DATE_EPOCH) plus the %s channel's "
                               "validity of %llu h ends at %s, in the past: the manifest would be "
                               "expired on arrival",
                               t, r->chname, (unsigned long long)(r->ch->validity / 3600), e);
    }
    if (!r->recording && o->time > now + 300) {
        char t[21];
        fwrel_rfc3339(t, o->time);
        return fwrel_error_set(FWREL_EUSAGE,
                               "the release time %s (SOURCE_DATE_EPOCH) is in the future: devices "
                               "would refuse the manifest as not yet valid",
                               t);
    }
    if (o->output != NULL && (error = fwrel_io_check_new(o->output, o->out_flags)) != 0)
        return error;
    /* No symbolic link on the way to the log (checked again, and made, under the lock). */
    return fwrel_policy_audit_path(r->audit_path, sizeof(r->audit_path), r->p, r->repo_path, 0);
}

int fwrel_pipeline_release(fwrel_pipeline_result *res, fwrel_report *report,
                           const fwrel_pipeline_opts *o)
{
    FWREL_ASSERT_ARG(res != NULL && o != NULL && o->policy != NULL && o->keystore != NULL &&
                     o->image != NULL);
    struct run r;
    const char *failed = "setup";
    int error;

    if ((error = run_init(&r, res, report, o)) != 0)
        return error;
    STEP("policy", step_policy(&r));
    STEP("policy", preflight(&r));
    STEP("keys", step_keys(&r));
    STEP("image", step_image(&r));
    STEP("lock", step_lock(&r));
    STEP("history", step_history(&r));
    STEP("secureboot", step_sign(&r));
    STEP("encrypt", step_encrypt(&r));
    STEP("manifest", step_manifest(&r));
    STEP("exports", step_exports(&r));
    STEP("record", step_record(&r));
    STEP("approve", step_approve(&r));
    STEP("bundle", step_bundle(&r));
    STEP("output", step_output_prepare(&r));
    STEP("audit", step_audit(&r));
    if (r.napprovals >= r.ch->approvals_required) {
        STEP("repo", step_repo(&r));
    } else {
        fwrel_report_add(report, "repo", FWREL_SKIP,
                         "%zu of %u approvals: not recorded; approve the bundle, then record it",
                         r.napprovals, r.ch->approvals_required);
    }
    if (r.out != NULL)
        STEP("output", step_output_commit(&r));
    error = 0;
done:
    finish(&r, error, failed);
    return error;
}

/* --- approvals gathered later, and the recording of an approved bundle --------------------- */

int fwrel_pipeline_approve(size_t *have, size_t *need, fwrel_report *report, const char *bundle,
                           const char *const *fprs, size_t nfprs, const char *gnupg_home,
                           const fwrel_pass_src *pass, fwrel_pipeline_show_fn show, void *arg)
{
    FWREL_ASSERT_ARG(have != NULL && need != NULL && bundle != NULL && fprs != NULL && nfprs > 0 &&
                     nfprs <= FWREL_PIPELINE_MAX_APPROVERS);
    fwrel_bundle *b = NULL;
    fwrel_release rec;
    const fwrel_bundle_member *sums;
    fwrel_bundle_member *m = NULL;
    uint8_t *sig[FWREL_PIPELINE_MAX_APPROVERS] = {NULL};
    char up[FWREL_PIPELINE_MAX_APPROVERS][41], names[FWREL_PIPELINE_MAX_APPROVERS][64];
    size_t n = 0;
    int error;

    for (size_t i = 0; i < nfprs; i++)
        if ((error = fpr_upper(up[i], fprs[i])) != 0)
            return error;
    /* One reading: what is checked and shown is what is signed and written back. */
    if ((error = fwrel_bundle_read(&b, bundle)) != 0)
        goto done;
    fwrel_report_add(report, "bundle.read", FWREL_PASS, "%zu members, strict", b->n);
    /* The CI checks of the members against the record (fwrel-verify --bundle's own code): the
     * approver signs SHA256SUMS, which covers the record, so the record must be the members'. */
    if ((error = fwrel_bundle_check_record(report, &rec, b)) != 0)
        goto done;
    for (size_t i = 0; i < nfprs; i++) {
        size_t k = 0;
        while (k < rec.napprovers && strcmp(rec.approvers[k], up[i]) != 0)
            k++;
        if (k == rec.napprovers) {
            error = fwrel_error_set(FWREL_EVERIFY,
                                    "%s is not an approver the release's policy pins", up[i]);
            goto done;
        }
        snprintf(names[i], sizeof(names[i]), "approvals/%.40s.asc", up[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(up[j], up[i]) == 0) {
                error = fwrel_error_set(FWREL_EUSAGE, "%s: given twice", up[i]);
                goto done;
            }
        if (fwrel_bundle_find(b, names[i]) != NULL) {
            error = fwrel_error_set(FWREL_EVERIFY, "%s: already in the bundle", names[i]);
            goto done;
        }
    }
    /* What is approved, before any passphrase is asked for. */
    if (show != NULL)
        show(arg, &rec);
    sums = fwrel_bundle_find(b, "SHA256SUMS");
    m = malloc((b->n + nfprs) * sizeof(*m));
    if (m == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    memcpy(m, b->members, b->n * sizeof(*m));
    for (n = 0; n < nfprs; n++) {
        size_t len = 0;
        if ((error = fwrel_pgp_sign_detached(&sig[n], &len, gnupg_home, up[n], sums->data,
                                             sums->len, pass)) != 0)
            goto done;
        if (len > FWREL_BUNDLE_SMALL_MAX) {
            error = fwrel_error_set(FWREL_EUSAGE, "%s: larger than %llu bytes", names[n],
                                    (unsigned long long)FWREL_BUNDLE_SMALL_MAX);
            goto done;
        }
        m[b->n + n] = (fwrel_bundle_member){names[n], sig[n], len};
    }
    /* The bundle read, with the new approvals, mtime kept: the same bytes as a bundle written
     * with these approvals from the start. */
    if ((error = fwrel_bundle_write(bundle, m, b->n + nfprs, b->mtime, FWREL_OUT_FORCE)) != 0)
        goto done;
    *have = nfprs;
    for (size_t i = 0; i < b->n; i++)
        *have += strncmp(b->members[i].name, "approvals/", 10) == 0;
    *need = rec.approvals_required;
    error = 0;
done:
    for (size_t i = 0; i < FWREL_PIPELINE_MAX_APPROVERS; i++)
        free(sig[i]);
    free(m);
    fwrel_bundle_free(b);
    return error;
}

/* Every approval in the bundle: signed over SHA256SUMS by the key its name says, pinned. */
static int check_approvals(struct run *r)
{
    const struct member *sums = find_member(r, "SHA256SUMS");
    int error;
    r->napprovals = 0;
    for (size_t i = 0; i < r->nm; i++) {
        const char *name = r->m[i].name;
        fwrel_pgp_result who;
        char fpr[41];
        if (strncmp(name, "approvals/", 10) != 0)
            continue;
        snprintf(fpr, sizeof(fpr), "%.40s", name + 10);
        if ((error = approver_pinned(fpr, r->p, fpr)) != 0 ||
            (error = fwrel_pgp_verify_detached(&who, r->o->gnupg_home, sums->data, sums->len,
                                               r->m[i].data, r->m[i].len)) != 0) {
            fwrel_error_prefix("%s", name);
            return error;
        }
        if (strcmp(who.fpr, fpr) != 0)
            return fwrel_error_set(FWREL_EVERIFY, "%s: signed by %s, not by that key", name,
                                   who.fpr);
        if (r->signer[0] == '\0')
            memcpy(r->signer, fpr, 41);
        r->napprovals++;
    }
    if (r->o->tag_signer != NULL && (error = tag_signer_ok(r->signer, r->p, r->o->tag_signer)) != 0)
        return error;
    r->res->approvals = r->napprovals;
    if (r->signer[0] == '\0')
        return fwrel_error_set(FWREL_EUSAGE, "no one to sign the tag: give --tag-signer FPR");
    if (r->napprovals < r->ch->approvals_required)
        return fwrel_error_set(FWREL_EVERIFY, "%zu of %u required approvals", r->napprovals,
                               r->ch->approvals_required);
    fwrel_report_add(r->report, "approve", FWREL_PASS, "%zu of %u required approvals",
                     r->napprovals, r->ch->approvals_required);
    return 0;
}

/* The bundle read back: its members, its record, and that it was made under this policy. */
static int step_load_bundle(struct run *r)
{
    fwrel_bundle *b = NULL;
    char policy_sha[65];
    int error;

    if ((error = fwrel_io_read_small(&r->bundle, &r->bundle_len, r->o->image,
                                     (size_t)FWREL_BUNDLE_FILE_MAX)) != 0 ||
        (error = fwrel_bundle_read_mem(&b, r->bundle, r->bundle_len)) != 0)
        goto done;
    /* The CI checks of the members against the record (fwrel-verify --bundle's own code) before
     * anything the record says is recorded. */
    if ((error = fwrel_bundle_check_record(r->report, r->rec, b)) != 0)
        goto done;
    for (size_t i = 0; i < b->n && error == 0; i++)
        error = add_member(r, b->members[i].name, b->members[i].data, b->members[i].len);
    if (error)
        goto done;
    fwrel_hex(policy_sha, r->p->sha256, sizeof(r->p->sha256));
    if (strcmp(r->rec->product, r->p->product) != 0 || strcmp(r->rec->channel, r->chname) != 0) {
        error = fwrel_error_set(FWREL_EVERIFY, "the bundle is a %s release of %s, not %s of %s",
                                r->rec->channel, r->rec->product, r->chname, r->p->product);
        goto done;
    }
    if (strcmp(r->rec->policy_sha256, policy_sha) != 0) {
        error = fwrel_error_set(FWREL_EVERIFY,
                                "the bundle was made under another policy "
                                "(sha256 %.16s...), not this one",
                                r->rec->policy_sha256);
        goto done;
    }
    fwrel_sha256_hex(r->res->bundle_sha256, r->bundle, r->bundle_len);
    fwrel_report_add(r->report, "bundle", FWREL_PASS, "%s %s (%s), %zu members, sha256 %s",
                     r->rec->product, r->rec->version, r->rec->channel, b->n,
                     r->res->bundle_sha256);
    error = 0;
done:
    if (error)
        fwrel_error_prefix("bundle");
    fwrel_bundle_free(b);
    return error;
}

/* The channel a bundle's release.json names ("" when it cannot be read: the reading step says
 * why later). */
static void bundle_channel(char out[17], const char *path)
{
    fwrel_bundle *b = NULL;
    fwrel_release rec;
    const fwrel_bundle_member *rj;
    out[0] = '\0';
    if (fwrel_bundle_read(&b, path) == 0 && (rj = fwrel_bundle_find(b, "release.json")) != NULL &&
        fwrel_release_decode(&rec, rj->data, rj->len) == 0)
        snprintf(out, 17, "%s", rec.channel);
    fwrel_error_clear();
    fwrel_bundle_free(b);
}

int fwrel_pipeline_record(fwrel_pipeline_result *res, fwrel_report *report,
                          const fwrel_pipeline_opts *opts)
{
    FWREL_ASSERT_ARG(res != NULL && opts != NULL && opts->policy != NULL && opts->image != NULL);
    struct run r;
    char channel[17];
    fwrel_pipeline_opts own = *opts;
    const fwrel_pipeline_opts *o = &own;
    const char *failed = "setup";
    int error;

    /* Without --channel: the bundle's own (checked against it again when it is read). */
    if (own.channel == NULL) {
        bundle_channel(channel, own.image);
        own.channel = channel[0] != '\0' ? channel : NULL;
    }
    if ((error = run_init(&r, res, report, o)) != 0)
        return error;
    STEP("policy", step_policy(&r));
    r.recording = 1;
    STEP("policy", preflight(&r));
    STEP("bundle", step_load_bundle(&r));
    STEP("approve", check_approvals(&r));
    STEP("lock", step_lock(&r));
    STEP("history", step_history(&r));
    STEP("output", step_output_prepare(&r));
    STEP("audit", step_audit(&r));
    STEP("repo", step_repo(&r));
    if (r.out != NULL)
        STEP("output", step_output_commit(&r));
    error = 0;
done:
    finish(&r, error, failed);
    return error;
}

/* --- repairing the history ------------------------------------------------------------------ */

/* The tag message of a release commit: its commit message says the same after its first line
 * (step_repo writes both from one text). */
static int retag_message(char **msg, struct run *r, const fwrel_history_untagged *u)
{
    char *cmsg = NULL, head[300];
    int error = fwrel_repo_commit_message(&cmsg, r->repo, u->commit);
    if (error)
        return error;
    int n = snprintf(head, sizeof(head), "release %s\n\n", u->tag);
    const fwrel_release *rec = &u->record;
    if (n < 0 || (size_t)n >= sizeof(head) || strncmp(cmsg, head, (size_t)n) != 0) {
        error =
            fwrel_error_set(FWREL_EVERIFY, "commit %s: its message is not a release's", u->commit);
    } else {
        size_t len = strlen(cmsg) + 400;
        if ((*msg = malloc(len)) == NULL)
            error = fwrel_error_set(FWREL_EIO, "out of memory");
        else
            snprintf(*msg, len, "fwrel release %s %s (%s)\n\n%s", rec->product, rec->version,
                     rec->channel, cmsg + n);
    }
    free(cmsg);
    return error;
}

/* The untagged release keeps the rules against the verified releases before it on the branch. */
static int retag_rules(struct run *r, const fwrel_history *h, const fwrel_history_untagged *u)
{
    fwrel_history_state *st = NULL;
    fwrel_history_item *items = calloc(h->nrel ? h->nrel : 1, sizeof(*items));
    size_t k = 0;
    int error =
        items == NULL ? fwrel_error_set(FWREL_EIO, "out of memory") : fwrel_history_state_new(&st);
    for (size_t i = 0; error == 0 && i < h->nrel; i++)
        if (h->rel[i].pos < u->pos && strcmp(h->rel[i].record.product, r->p->product) == 0) {
            items[k] = history_item(h->rel[i].tag, &h->rel[i].record);
            error = fwrel_history_state_add(st, &items[k++]);
        }
    fwrel_history_item it = history_item(u->tag, &u->record);
    if (error == 0 && ((error = fwrel_history_rule_counter(st, &it)) != 0 ||
                       (error = fwrel_history_rule_secure_version(st, &it, r->p->monotonic)) != 0 ||
                       (error = fwrel_history_rule_version(st, &it)) != 0))
        fwrel_error_prefix("commit %s (%s) breaks the history; if it is not a release of yours, "
                           "drop it (--drop)",
                           u->commit, u->tag);
    fwrel_history_state_free(st);
    free(items);
    return error;
}

static int do_repair(struct run *r, const char *commit, int drop)
{
    fwrel_history *h = NULL;
    const fwrel_history_untagged *u = NULL;
    char path[300], tag[256], rj_sha[65], name[400];
    char *msg = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    json_t *in = json_array(), *out = json_array();
    int error;

    if ((error = read_history(&h, r)) != 0)
        goto done;
    for (size_t i = 0; i < h->nuntagged; i++)
        if (strcmp(h->untagged[i].commit, commit) == 0)
            u = &h->untagged[i];
    if (u == NULL) {
        error = fwrel_error_set(
            FWREL_EVERIFY, "commit %.40s is not an untagged commit of the release branch", commit);
        goto done;
    }
    snprintf(r->res->tag, sizeof(r->res->tag), "%s", u->tag);
    if (u->have_record) {
        snprintf(path, sizeof(path), "%s/release.json", u->tag);
        if ((error = fwrel_repo_commit_read_file(&data, &len, r->repo, u->commit, path,
                                                 FWREL_RELEASE_JSON_MAX)) != 0)
            goto done;
        fwrel_sha256_hex(rj_sha, data, len);
        snprintf(name, sizeof(name), "%s at commit %s", path, u->commit);
    } else {
        char *cmsg = NULL;
        if ((error = fwrel_repo_commit_message(&cmsg, r->repo, u->commit)) != 0)
            goto done;
        fwrel_sha256_hex(rj_sha, (const uint8_t *)cmsg, strlen(cmsg));
        len = strlen(cmsg);
        free(cmsg);
        snprintf(name, sizeof(name), "message of commit %s", u->commit);
    }
    json_array_append_new(in, file_json(name, rj_sha, len));
    if (drop) {
        if (u->pos != h->ncommits) {
            error = fwrel_error_set(FWREL_EVERIFY,
                                    "commit %s is not the release branch's tip: only the tip can "
                                    "be dropped",
                                    u->commit);
            goto done;
        }
        if ((error = fwrel_repo_drop_tip(r->repo, u->commit)) != 0)
            goto done;
        fwrel_report_add(r->report, "repair", FWREL_PASS, "commit %s dropped from the branch",
                         u->commit);
    } else {
        fwrel_repo_release_opts ro;
        uint8_t *raw = NULL;
        size_t rawlen = 0;
        char tag_sha[65];
        if (!u->have_record) {
            error = fwrel_error_set(FWREL_EVERIFY,
                                    "commit %s adds no release record: it is not a release; "
                                    "drop it (--drop)",
                                    u->commit);
            goto done;
        }
        if (strcmp(u->record.product, r->p->product) != 0) {
            error = fwrel_error_set(FWREL_EVERIFY, "commit %s is a release of %s, not of %s",
                                    u->commit, u->record.product, r->p->product);
            goto done;
        }
        if ((error = make_tag(tag, r->p, u->record.channel, u->record.version)) != 0)
            goto done;
        if (strcmp(tag, u->tag) != 0) {
            error = fwrel_error_set(FWREL_EVERIFY, "commit %s names tag %s, the policy makes %s",
                                    u->commit, u->tag, tag);
            goto done;
        }
        if (fwrel_history_has_tag(h, tag)) {
            error = fwrel_error_set(FWREL_EVERIFY,
                                    "tag %s exists but is not a verified release tag (see the "
                                    "ignored tags): delete it, then repair",
                                    tag);
            goto done;
        }
        if ((error = retag_rules(r, h, u)) != 0 || (error = retag_message(&msg, r, u)) != 0)
            goto done;
        memset(&ro, 0, sizeof(ro));
        ro.tag_name = tag;
        ro.tag_message = msg;
        ro.who.name = r->o->who != NULL && r->o->who[0] ? r->o->who : "fwrel";
        ro.who.email =
            r->o->email != NULL && r->o->email[0] ? r->o->email : "release@fwrel.invalid";
        ro.who.time = r->o->time;
        ro.gpg_home = r->o->gnupg_home;
        ro.signer_fpr = r->signer;
        ro.pass = r->o->pgp_pass;
        if ((error = fwrel_repo_retag(r->repo, u->commit, &ro, NULL)) != 0 ||
            (error = fwrel_repo_tag_raw(&raw, &rawlen, r->repo, tag)) != 0)
            goto done;
        fwrel_sha256_hex(tag_sha, raw, rawlen);
        free(raw);
        snprintf(name, sizeof(name), "refs/tags/%s", tag);
        json_array_append_new(out, file_json(name, tag_sha, rawlen));
        memcpy(r->res->commit, u->commit, 41);
        r->res->record = u->record;
        fwrel_report_add(r->report, "repair", FWREL_PASS,
                         "tag %s (counter %llu) signed again on commit %s by %s", tag,
                         (unsigned long long)u->record.counter, u->commit, r->signer);
    }
    /* The repair is in the audit log (the next release commits it). */
    r->res->recorded = 1; /* done: a failure to log is not a failed repair */
    error = append_entry(r, "repair", r->signer, in, out, NULL);
    in = out = NULL;
done:
    json_decref(in);
    json_decref(out);
    free(msg);
    free(data);
    fwrel_history_free(h);
    return error;
}

int fwrel_pipeline_repair(fwrel_pipeline_result *res, fwrel_report *report,
                          const fwrel_pipeline_opts *o, const char *commit, int drop)
{
    FWREL_ASSERT_ARG(res != NULL && o != NULL && o->policy != NULL && commit != NULL);
    struct run r;
    const char *failed = "setup";
    int error;

    if ((error = run_init(&r, res, report, o)) != 0)
        return error;
    STEP("policy", fwrel_policy_load(&r.p, o->policy));
    if (o->repo != NULL)
        snprintf(r.repo_path, sizeof(r.repo_path), "%s", o->repo);
    else
        STEP("policy", fwrel_policy_repo_path(r.repo_path, sizeof(r.repo_path), r.p, o->policy));
    int n = snprintf(r.audit_path, sizeof(r.audit_path), "%s/%s", r.repo_path, r.p->audit_log);
    if (n < 0 || (size_t)n >= sizeof(r.audit_path))
        STEP("policy", fwrel_error_set(FWREL_EUSAGE, "audit log path too long"));
    const char *signer = o->tag_signer != NULL ? o->tag_signer
                         : o->napprovers > 0   ? o->approvers[0]
                                               : NULL;
    if (signer == NULL)
        STEP("policy", fwrel_error_set(FWREL_EUSAGE, "a repair needs --tag-signer FPR"));
    STEP("policy", tag_signer_ok(r.signer, r.p, signer));
    STEP("lock", step_lock(&r));
    STEP("repair", do_repair(&r, commit, drop));
    error = 0;
done:
    if (error && r.locked && !res->recorded) {
        /* The failure is logged as a repair's, not a release's. */
        fwrel_error saved = *fwrel_error_last();
        char reason[FWREL_ERROR_MSG_MAX + 100];
        snprintf(reason, sizeof(reason), "repair of commit %.40s failed at %s: %s", commit, failed,
                 saved.message);
        if (append_entry(&r, "repair", r.signer, json_array(), json_array(), reason) != 0)
            fwrel_error_clear();
        res->recorded = 1; /* logged here, not by finish() */
        fwrel_error_set(saved.code, "%s", saved.message);
    }
    finish(&r, error, failed);
    res->recorded = error == 0;
    return error;
}
