/* manifest.c - the manifest writer: canonical body, threshold signatures, envelope, secure-fota
 * (manifest.h; docs/manifest.md). The reader is the device core (libfwrel/device, docs/device.md). */
#include "fwrel/manifest.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "fwrel/espimg.h"
#include "fwrel/io.h"
#include "util.h"

#define DOMAIN      "fwrel-manifest-v1"
#define JSON_MAX    ((uint64_t)1 << 53)
#define CANON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

static int is_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int is_text(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7E || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

static int is_channel(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 16)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
            return 0;
    return 1;
}

/* Every rule of section 1 that the struct itself can break. */
static int check(const fwrel_manifest *m)
{
    const fwrel_chip *chip = fwrel_chip_by_name(m->chip);
    if (!is_name(m->product, 64))
        return fwrel_error_set(FWREL_EFORMAT, "product: 1..64 characters of [A-Za-z0-9._-]");
    if (m->device_type_count < 1 || m->device_type_count > FWREL_MANIFEST_MAX_TYPES)
        return fwrel_error_set(FWREL_EFORMAT, "device_types: 1..16 entries");
    for (size_t i = 0; i < m->device_type_count; i++) {
        if (!is_name(m->device_types[i], 64))
            return fwrel_error_set(FWREL_EFORMAT,
                                   "device_types[%zu]: 1..64 characters of [A-Za-z0-9._-]", i);
        if (i > 0 && strcmp(m->device_types[i - 1], m->device_types[i]) >= 0)
            return fwrel_error_set(FWREL_EFORMAT, "device_types: sorted and unique");
    }
    if (chip == NULL || strcmp(chip->name, m->chip) != 0)
        return fwrel_error_set(FWREL_EFORMAT, "chip: an esptool chip name (esp32s3, ...)");
    if (m->chip_rev_min > m->chip_rev_max)
        return fwrel_error_set(FWREL_EFORMAT, "chip_rev_min above chip_rev_max");
    if (!is_text(m->version, 32))
        return fwrel_error_set(FWREL_EFORMAT, "version: 1..32 printable characters");
    if (!is_channel(m->channel))
        return fwrel_error_set(FWREL_EFORMAT, "channel: 1..16 characters of [a-z0-9-]");
    if (m->counter >= JSON_MAX || m->created >= JSON_MAX || m->expires >= JSON_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "counter, created, expires: below 2^53");
    if (m->created >= m->expires)
        return fwrel_error_set(FWREL_EFORMAT, "created must be before expires");
    if (!is_name(m->image_name, 128))
        return fwrel_error_set(FWREL_EFORMAT, "image_name: 1..128 characters of [A-Za-z0-9._-]");
    return 0;
}

static json_t *digest_json(const fwrel_manifest_digest *d)
{
    char hex[65];
    fwrel_hex(hex, d->sha256, 32);
    return json_pack("{s:s,s:I}", "sha256", hex, "size", (json_int_t)d->size);
}

static json_t *body_json(const fwrel_manifest *m)
{
    json_t *types = json_array();
    for (size_t i = 0; i < m->device_type_count; i++)
        json_array_append_new(types, json_string(m->device_types[i]));
    return json_pack("{s:s,s:i,s:s,s:o,s:s,s:i,s:i,s:s,s:I,s:I,s:s,s:I,s:I,s:{s:o,s:o,s:o},s:s}",
                     "format", "fwrel-manifest", "format_version", 1, "product", m->product,
                     "device_types", types, "chip", m->chip, "chip_rev_min", m->chip_rev_min,
                     "chip_rev_max", m->chip_rev_max, "version", m->version, "secure_version",
                     (json_int_t)m->secure_version, "counter", (json_int_t)m->counter, "channel",
                     m->channel, "created", (json_int_t)m->created, "expires",
                     (json_int_t)m->expires, "image", "plain", digest_json(&m->plain), "signed",
                     digest_json(&m->signed_image), "encrypted", digest_json(&m->encrypted),
                     "image_name", m->image_name);
}

int fwrel_manifest_encode(char **out, size_t *len, const fwrel_manifest *m)
{
    FWREL_ASSERT_ARG(out != NULL && len != NULL && m != NULL);
    int error = check(m);
    if (error)
        return error;
    json_t *j = body_json(m);
    *out = j ? json_dumps(j, CANON_FLAGS) : NULL;
    json_decref(j);
    if (*out == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    *len = strlen(*out);
    return 0;
}

/* Exactly these keys, no more, no fewer. */
static int exact_keys(json_t *obj, const char *what, const char *const *keys)
{
    size_t n = 0;
    const char *k;
    json_t *v;
    if (!json_is_object(obj))
        return fwrel_error_set(FWREL_EFORMAT, "%s must be an object", what);
    json_object_foreach(obj, k, v)
    {
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], k) != 0)
            i++;
        if (keys[i] == NULL)
            return fwrel_error_set(FWREL_EFORMAT, "%s: unknown field '%.40s'", what, k);
        n++;
    }
    for (size_t i = 0; keys[i]; i++)
        if (json_object_get(obj, keys[i]) == NULL)
            return fwrel_error_set(FWREL_EFORMAT, "%s: missing field '%s'", what, keys[i]);
    (void)n;
    return 0;
}

static int get_str(char *out, size_t size, json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) >= size)
        return fwrel_error_set(FWREL_EFORMAT, "%s must be a string of at most %zu bytes", key,
                               size - 1);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_u64(uint64_t *out, json_t *obj, const char *key, uint64_t max)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_real(v))
        return fwrel_error_set(FWREL_EFORMAT, "%s: floats are not allowed", key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return fwrel_error_set(FWREL_EFORMAT, "%s must be a whole number from 0 to %llu", key,
                               (unsigned long long)max);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_digest(fwrel_manifest_digest *d, json_t *img, const char *key)
{
    static const char *const keys[] = {"sha256", "size", NULL};
    json_t *o = json_object_get(img, key);
    char hex[65];
    int error;
    if ((error = exact_keys(o, key, keys)) != 0 ||
        (error = get_str(hex, sizeof(hex), o, "sha256")) != 0 ||
        (error = get_u64(&d->size, o, "size", UINT32_MAX)) != 0)
        return error;
    for (const char *p = hex; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            return fwrel_error_set(FWREL_EFORMAT, "%s.sha256: lower-case hex", key);
    if (fwrel_unhex(d->sha256, 32, hex) != 0)
        return fwrel_error_set(FWREL_EFORMAT, "%s.sha256: 64 hex digits", key);
    return 0;
}

/* Parse JSON text strictly (no duplicates) and require it to be canonical. */
static int load_canonical(json_t **out, const uint8_t *text, size_t len, size_t max,
                          const char *what)
{
    json_error_t jerr;
    json_t *j;
    *out = NULL;
    if (len > max)
        return fwrel_error_set(FWREL_EFORMAT, "%s larger than %zu bytes", what, max);
    if ((j = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
        return fwrel_error_set(FWREL_EFORMAT, "%s: %d:%d: %s", what, jerr.line, jerr.column,
                               jerr.text);
    char *again = json_dumps(j, CANON_FLAGS);
    int same = again != NULL && strlen(again) == len && memcmp(again, text, len) == 0;
    free(again);
    if (!same) {
        json_decref(j);
        return fwrel_error_set(FWREL_EFORMAT,
                               "%s is not in canonical form (sorted keys, no spaces)", what);
    }
    *out = j;
    return 0;
}

static int decode_json(fwrel_manifest *m, json_t *j)
{
    static const char *const keys[] = {
        "format",         "format_version", "product",      "device_types",
        "chip",           "chip_rev_min",   "chip_rev_max", "version",
        "secure_version", "counter",        "channel",      "created",
        "expires",        "image",          "image_name",   NULL};
    static const char *const image_keys[] = {"plain", "signed", "encrypted", NULL};
    char format[32];
    uint64_t v;
    int error;
    memset(m, 0, sizeof(*m));
    if ((error = exact_keys(j, "manifest", keys)) != 0 ||
        (error = get_str(format, sizeof(format), j, "format")) != 0)
        return error;
    if (strcmp(format, "fwrel-manifest") != 0)
        return fwrel_error_set(FWREL_EFORMAT, "format must be \"fwrel-manifest\"");
    if ((error = get_u64(&v, j, "format_version", 1000)) != 0)
        return error;
    if (v != 1)
        return fwrel_error_set(FWREL_EFORMAT, "format_version %llu: this reader knows 1",
                               (unsigned long long)v);
    json_t *types = json_object_get(j, "device_types");
    if (!json_is_array(types) || json_array_size(types) < 1 ||
        json_array_size(types) > FWREL_MANIFEST_MAX_TYPES)
        return fwrel_error_set(FWREL_EFORMAT, "device_types: a list of 1..16 names");
    for (size_t i = 0; i < json_array_size(types); i++) {
        json_t *t = json_array_get(types, i);
        if (!json_is_string(t) || json_string_length(t) > 64)
            return fwrel_error_set(FWREL_EFORMAT, "device_types[%zu] must be a name", i);
        memcpy(m->device_types[i], json_string_value(t), json_string_length(t) + 1);
    }
    m->device_type_count = json_array_size(types);
    uint64_t rmin, rmax, sv;
    if ((error = get_str(m->product, sizeof(m->product), j, "product")) != 0 ||
        (error = get_str(m->chip, sizeof(m->chip), j, "chip")) != 0 ||
        (error = get_u64(&rmin, j, "chip_rev_min", 65535)) != 0 ||
        (error = get_u64(&rmax, j, "chip_rev_max", 65535)) != 0 ||
        (error = get_str(m->version, sizeof(m->version), j, "version")) != 0 ||
        (error = get_u64(&sv, j, "secure_version", UINT32_MAX)) != 0 ||
        (error = get_u64(&m->counter, j, "counter", JSON_MAX - 1)) != 0 ||
        (error = get_str(m->channel, sizeof(m->channel), j, "channel")) != 0 ||
        (error = get_u64(&m->created, j, "created", JSON_MAX - 1)) != 0 ||
        (error = get_u64(&m->expires, j, "expires", JSON_MAX - 1)) != 0 ||
        (error = get_str(m->image_name, sizeof(m->image_name), j, "image_name")) != 0)
        return error;
    m->chip_rev_min = (uint16_t)rmin;
    m->chip_rev_max = (uint16_t)rmax;
    m->secure_version = (uint32_t)sv;
    json_t *img = json_object_get(j, "image");
    if ((error = exact_keys(img, "image", image_keys)) != 0 ||
        (error = get_digest(&m->plain, img, "plain")) != 0 ||
        (error = get_digest(&m->signed_image, img, "signed")) != 0 ||
        (error = get_digest(&m->encrypted, img, "encrypted")) != 0)
        return error;
    return check(m);
}

int fwrel_manifest_decode(fwrel_manifest *m, const uint8_t *json, size_t len)
{
    FWREL_ASSERT_ARG(m != NULL && json != NULL);
    json_t *j = NULL;
    int error = load_canonical(&j, json, len, FWREL_MANIFEST_BODY_MAX, "manifest");
    if (error == 0)
        error = decode_json(m, j);
    json_decref(j);
    return error;
}

int fwrel_manifest_parse_input(fwrel_manifest *m, const uint8_t *json, size_t len)
{
    FWREL_ASSERT_ARG(m != NULL && json != NULL);
    json_error_t jerr;
    json_t *j;
    if (len > FWREL_MANIFEST_BODY_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "manifest larger than %d bytes",
                               FWREL_MANIFEST_BODY_MAX);
    if ((j = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
        return fwrel_error_set(FWREL_EFORMAT, "%d:%d: %s", jerr.line, jerr.column, jerr.text);
    int error = decode_json(m, j);
    json_decref(j);
    return error;
}

/* SHA-256 and size of a source, streaming from its start; errors prefixed with its name. */
static int src_digest(fwrel_manifest_digest *d, fwrel_src *src, const char *name)
{
    int error = fwrel_src_seek(src, 0);
    if (error == 0 && src->size > UINT32_MAX)
        error = fwrel_error_set(FWREL_EFORMAT, "larger than 4 GiB");
    if (error == 0) {
        d->size = src->size;
        error = fwrel_digest_src(d->sha256, NULL, src, src->size);
    }
    if (error)
        fwrel_error_prefix("%s", name);
    return error;
}

/* fwrel_manifest_from_sources(), each source named in messages. */
static int from_sources(fwrel_manifest *m, const uint8_t *tmpl, size_t len, fwrel_src *plain,
                        const char *plain_name, fwrel_src *signd, const char *signed_name,
                        fwrel_src *enc, const char *enc_name, const char *image_name)
{
    static const char *const keys[] = {"product", "device_types", "channel", "counter",
                                       "created", "expires",      NULL};
    json_error_t jerr;
    json_t *t = NULL, *full = NULL;
    fwrel_espimg img;
    char hex[65];
    int error;
    if (len > FWREL_MANIFEST_BODY_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "template larger than %d bytes",
                               FWREL_MANIFEST_BODY_MAX);
    if ((t = json_loadb((const char *)tmpl, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
        return fwrel_error_set(FWREL_EFORMAT, "%d:%d: %s", jerr.line, jerr.column, jerr.text);
    if ((error = exact_keys(t, "template", keys)) != 0)
        goto done;
    if ((error = fwrel_src_seek(signd, 0)) != 0 ||
        (error = fwrel_espimg_parse(&img, signd, NULL)) != 0) {
        fwrel_error_prefix("%s", signed_name);
        goto done;
    }
    if (!img.has_app_desc || img.chip == NULL) {
        error = fwrel_error_set(FWREL_EFORMAT,
                                "%s: no app descriptor or unknown chip: nothing to take the "
                                "version from",
                                signed_name);
        goto done;
    }
    fwrel_manifest_digest plain_d, signd_d, enc_d;
    if ((error = src_digest(&plain_d, plain, plain_name)) != 0 ||
        (error = src_digest(&signd_d, signd, signed_name)) != 0 ||
        (error = src_digest(&enc_d, enc, enc_name)) != 0)
        goto done;
    /* The template's fields plus the derived ones, decoded by the same strict rules. */
    full = json_deep_copy(t);
    json_object_set_new(full, "format", json_string("fwrel-manifest"));
    json_object_set_new(full, "format_version", json_integer(1));
    json_object_set_new(full, "chip", json_string(img.chip->name));
    json_object_set_new(full, "chip_rev_min", json_integer(img.min_chip_rev_full));
    json_object_set_new(full, "chip_rev_max",
                        json_integer(img.max_chip_rev_full == 0 ? 65535 : img.max_chip_rev_full));
    json_object_set_new(full, "version", json_string(img.app_desc.version));
    json_object_set_new(full, "secure_version", json_integer(img.app_desc.secure_version));
    json_object_set_new(full, "image_name", json_string(image_name));
    json_t *image = json_object();
    const fwrel_manifest_digest *ds[] = {&plain_d, &signd_d, &enc_d};
    const char *names[] = {"plain", "signed", "encrypted"};
    for (int i = 0; i < 3; i++) {
        fwrel_hex(hex, ds[i]->sha256, 32);
        json_object_set_new(image, names[i],
                            json_pack("{s:s,s:I}", "sha256", hex, "size", (json_int_t)ds[i]->size));
    }
    json_object_set_new(full, "image", image);
    error = decode_json(m, full);
done:
    json_decref(full);
    json_decref(t);
    return error;
}

int fwrel_manifest_from_sources(fwrel_manifest *m, const uint8_t *tmpl, size_t len,
                                fwrel_src *plain, fwrel_src *signd, fwrel_src *enc,
                                const char *image_name)
{
    FWREL_ASSERT_ARG(m != NULL && tmpl != NULL && plain != NULL && signd != NULL && enc != NULL &&
                     image_name != NULL);
    return from_sources(m, tmpl, len, plain, "the plain image", signd, "the signed image", enc,
                        "the encrypted image", image_name);
}

int fwrel_manifest_from_images(fwrel_manifest *m, const uint8_t *tmpl, size_t len,
                               const char *plain_path, const char *signed_path,
                               const char *encrypted_path)
{
    FWREL_ASSERT_ARG(m != NULL && tmpl != NULL && plain_path != NULL && signed_path != NULL &&
                     encrypted_path != NULL);
    fwrel_src src[3];
    const char *paths[3] = {plain_path, signed_path, encrypted_path};
    const uint64_t max[3] = {UINT32_MAX, FWREL_IMAGE_MAX, UINT32_MAX};
    int error = 0, n = 0;
    for (; n < 3 && error == 0; n++)
        if ((error = fwrel_src_open(&src[n], paths[n], max[n])) != 0) {
            fwrel_error_prefix("%s", paths[n]);
            break;
        }
    if (error == 0) {
        const char *slash = strrchr(encrypted_path, '/');
        error = from_sources(m, tmpl, len, &src[0], plain_path, &src[1], signed_path, &src[2],
                             encrypted_path, slash ? slash + 1 : encrypted_path);
    }
    while (n-- > 0)
        fwrel_src_close(&src[n]);
    return error;
}

static const char *alg_of(const fwrel_pkey *key)
{
    int type;
    if (EVP_PKEY_is_a(key, "ED25519"))
        return "ed25519";
    if (fwrel_key_type_of(&type, key) != 0)
        return NULL;
    return type == FWREL_KEY_RSA3072    ? "rsa-pss-sha256"
           : type == FWREL_KEY_ECDSA256 ? "ecdsa-p256-sha256"
                                        : NULL;
}

/* DOMAIN || 0x00 || body, signed or verified with the key's algorithm. */
static int sig_op(const fwrel_pkey *key, int sign, const char *body, size_t blen, uint8_t *sig,
                  size_t *siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t *msg = malloc(sizeof(DOMAIN) + blen);
    int ed = EVP_PKEY_is_a(key, "ED25519"), ok = 0;
    if (ctx == NULL || msg == NULL)
        goto done;
    memcpy(msg, DOMAIN, sizeof(DOMAIN)); /* the NUL is the separator */
    memcpy(msg + sizeof(DOMAIN), body, blen);
    const EVP_MD *md = ed ? NULL : EVP_sha256();
    if ((sign ? EVP_DigestSignInit(ctx, &pctx, md, NULL, (EVP_PKEY *)key)
              : EVP_DigestVerifyInit(ctx, &pctx, md, NULL, (EVP_PKEY *)key)) != 1)
        goto done;
    if (EVP_PKEY_is_a(key, "RSA") &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1))
        goto done;
    ok = sign ? EVP_DigestSign(ctx, sig, siglen, msg, sizeof(DOMAIN) + blen) == 1
              : EVP_DigestVerify(ctx, sig, *siglen, msg, sizeof(DOMAIN) + blen) == 1;
done:
    ERR_clear_error();
    free(msg);
    EVP_MD_CTX_free(ctx);
    return ok;
}

static int cmp_sig(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "keyid")),
                  json_string_value(json_object_get(*(json_t *const *)b, "keyid")));
}

int fwrel_manifest_sign(char **out, size_t *len, const fwrel_manifest *m,
                        const fwrel_pkey *const *keys, size_t nkeys)
{
    FWREL_ASSERT_ARG(out != NULL && len != NULL && m != NULL && keys != NULL);
    fwrel_manifest_signer signers[FWREL_MANIFEST_MAX_SIGS];
    if (nkeys < 1 || nkeys > FWREL_MANIFEST_MAX_SIGS)
        return fwrel_error_set(FWREL_EUSAGE, "1 to %d signing keys", FWREL_MANIFEST_MAX_SIGS);
    memset(signers, 0, sizeof(signers));
    for (size_t i = 0; i < nkeys; i++)
        signers[i].key = keys[i];
    return fwrel_manifest_sign_with(out, len, m, signers, nkeys);
}

/* DOMAIN || 0x00 || body signed by a signer's function, then verified with its public key. */
static int sig_ext(const fwrel_manifest_signer *s, const char *body, size_t blen, uint8_t *sig,
                   size_t *siglen)
{
    uint8_t *msg = malloc(sizeof(DOMAIN) + blen);
    int error;
    if (msg == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    memcpy(msg, DOMAIN, sizeof(DOMAIN));
    memcpy(msg + sizeof(DOMAIN), body, blen);
    error = s->sign(s->ctx, msg, sizeof(DOMAIN) + blen, sig, siglen);
    free(msg);
    /* Bounded before it is base64-encoded into the signer's 700-byte text. */
    if (error == 0 && (*siglen == 0 || *siglen > FWREL_MANIFEST_SIG_MAX))
        error = fwrel_error_set(FWREL_EKEY, "a signature of %zu bytes (1..%d)", *siglen,
                                FWREL_MANIFEST_SIG_MAX);
    if (error == 0 && !sig_op(s->key, 0, body, blen, sig, siglen))
        error = fwrel_error_set(FWREL_EVERIFY, "the signature made does not verify");
    return error;
}

int fwrel_manifest_sign_with(char **out, size_t *len, const fwrel_manifest *m,
                             const fwrel_manifest_signer *signers, size_t nkeys)
{
    FWREL_ASSERT_ARG(out != NULL && len != NULL && m != NULL && signers != NULL);
    json_t *sigs[FWREL_MANIFEST_MAX_SIGS] = {NULL}, *root = NULL, *arr = NULL;
    char *body = NULL;
    size_t blen;
    int error;
    *out = NULL;
    if (nkeys < 1 || nkeys > FWREL_MANIFEST_MAX_SIGS)
        return fwrel_error_set(FWREL_EUSAGE, "1 to %d signing keys", FWREL_MANIFEST_MAX_SIGS);
    if ((error = fwrel_manifest_encode(&body, &blen, m)) != 0)
        return error;
    for (size_t i = 0; i < nkeys; i++) {
        const fwrel_pkey *key = signers[i].key;
        const char *alg = key != NULL ? alg_of(key) : NULL;
        uint8_t sig[FWREL_MANIFEST_SIG_MAX];
        char b64[700], id[65];
        size_t slen = sizeof(sig);
        if (alg == NULL) {
            error = fwrel_error_set(
                FWREL_EKEY, "signer %zu: manifest keys are RSA-3072, ECDSA P-256 or Ed25519",
                i + 1);
            goto done;
        }
        if ((error = fwrel_key_id(id, key)) != 0)
            goto done;
        if (signers[i].sign != NULL) {
            if ((error = sig_ext(&signers[i], body, blen, sig, &slen)) != 0)
                goto done;
        } else if (!sig_op(key, 1, body, blen, sig, &slen)) {
            error = fwrel_error_set(FWREL_EKEY, "signer %zu: signing failed", i + 1);
            goto done;
        }
        EVP_EncodeBlock((unsigned char *)b64, sig, (int)slen);
        sigs[i] = json_pack("{s:s,s:s,s:s}", "alg", alg, "keyid", id, "sig", b64);
    }
    qsort(sigs, nkeys, sizeof(sigs[0]), cmp_sig);
    arr = json_array();
    for (size_t i = 0; i < nkeys; i++) {
        if (i > 0 && cmp_sig(&sigs[i - 1], &sigs[i]) == 0) {
            error = fwrel_error_set(FWREL_EUSAGE, "the same key signs twice");
            goto done;
        }
        json_array_append(arr, sigs[i]);
    }
    root = json_pack("{s:o,s:O}", "manifest", body_json(m), "signatures", arr);
    if (root == NULL || (*out = json_dumps(root, CANON_FLAGS)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    *len = strlen(*out);
    error = 0;
done:
    for (size_t i = 0; i < FWREL_MANIFEST_MAX_SIGS; i++)
        json_decref(sigs[i]);
    json_decref(arr);
    json_decref(root);
    free(body);
    return error;
}

/* The envelope (docs/manifest.md section 3). */
#define ENV_MAGIC  "FWRELMF1"
#define ENV_HEAD   32
#define ENV_ENTRY  608
#define ENTRY_DATA 36 /* type, 3 zero bytes, 32-byte key id */
#define KEK_INFO   "fwrel-manifest-kek-v1"
enum {
    R_RSA4096 = FWREL_MANIFEST_RCPT_RSA4096,
    R_X25519 = FWREL_MANIFEST_RCPT_X25519,
    R_P256 = FWREL_MANIFEST_RCPT_P256
};

int fwrel_manifest_recipient_type(int *type, const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(type != NULL && key != NULL);
    if (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) == 4096)
        *type = R_RSA4096;
    else if (EVP_PKEY_is_a(key, "X25519"))
        *type = R_X25519;
    else if (EVP_PKEY_is_a(key, "EC") && alg_of(key) != NULL &&
             strcmp(alg_of(key), "ecdsa-p256-sha256") == 0)
        *type = R_P256;
    else
        return fwrel_error_set(FWREL_EKEY,
                               "manifest recipients are RSA-4096, X25519 or EC P-256 keys");
    return 0;
}

/* AES-256-GCM one-shot; enc: out = ct || tag; dec: in = ct || tag. */
static int gcm(int enc, uint8_t *out, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
               size_t aad_len, const uint8_t *in, size_t in_len)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    size_t body = enc ? in_len : in_len - 16;
    int n,
        ok = c != NULL && (enc || in_len >= 16) &&
             EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) == 1 &&
             (aad_len == 0 || EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) == 1) &&
             EVP_CipherUpdate(c, out, &n, in, (int)body) == 1 &&
             (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(in + body)) == 1) &&
             EVP_CipherFinal_ex(c, out + n, &n) == 1 &&
             (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + body) == 1);
    EVP_CIPHER_CTX_free(c);
    ERR_clear_error();
    return ok;
}

/* KEK = HKDF-SHA256(ECDH(priv, peer), salt = key id, info = KEK_INFO). */
static int kek_derive(uint8_t kek[32], const fwrel_pkey *priv, const fwrel_pkey *peer,
                      const uint8_t keyid[32])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)priv, NULL);
    uint8_t shared[32];
    size_t n = sizeof(shared);
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer(ctx, (EVP_PKEY *)peer) == 1 &&
             EVP_PKEY_derive(ctx, shared, &n) == 1 && n == 32;
    EVP_PKEY_CTX_free(ctx);
    if (ok) {
        EVP_PKEY_CTX *h = EVP_PKEY_CTX_new_from_name(NULL, "HKDF", NULL);
        size_t klen = 32;
        ok = h != NULL && EVP_PKEY_derive_init(h) == 1 &&
             EVP_PKEY_CTX_set_hkdf_md(h, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set1_hkdf_salt(h, keyid, 32) == 1 &&
             EVP_PKEY_CTX_set1_hkdf_key(h, shared, 32) == 1 &&
             EVP_PKEY_CTX_add1_hkdf_info(h, (const unsigned char *)KEK_INFO,
                                         (int)strlen(KEK_INFO)) == 1 &&
             EVP_PKEY_derive(h, kek, &klen) == 1 && klen == 32;
        EVP_PKEY_CTX_free(h);
    }
    OPENSSL_cleanse(shared, sizeof(shared));
    ERR_clear_error();
    return ok;
}

static int keyid_raw(uint8_t out[32], const fwrel_pkey *key)
{
    char hex[65];
    int error = fwrel_key_id(hex, key);
    return error ? error
                 : (fwrel_unhex(out, 32, hex) == 0 ? 0 : fwrel_error_set(FWREL_EKEY, "key id"));
}

/* The ephemeral public key as stored in an entry: X25519 raw 32, P-256 uncompressed 65. */
static int eph_public(uint8_t out[65], const fwrel_pkey *eph, int type)
{
    size_t n = 65;
    if (type == R_X25519)
        return EVP_PKEY_get_raw_public_key(eph, out, &n) == 1 && n == 32 ? 0 : -1;
    uint8_t xy[64];
    if (fwrel_key_raw64(xy, eph) != 0)
        return -1;
    out[0] = 0x04;
    memcpy(out + 1, xy, 64);
    return 0;
}

int fwrel_manifest_seal(uint8_t **out, size_t *len, const uint8_t *signed_json, size_t signed_len,
                        const fwrel_pkey *const *recipients, size_t count)
{
    FWREL_ASSERT_ARG(out != NULL && len != NULL && signed_json != NULL && recipients != NULL);
    uint8_t *env = NULL, *cek = OPENSSL_secure_malloc(32), kek[32];
    fwrel_pkey *eph = NULL;
    int error = FWREL_EKEY;
    *out = NULL;
    if (cek == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    if (count < 1 || count > FWREL_MANIFEST_MAX_RECIPIENTS) {
        error = fwrel_error_set(FWREL_EUSAGE, "1 to %d recipients", FWREL_MANIFEST_MAX_RECIPIENTS);
        goto done;
    }
    if (signed_len > FWREL_MANIFEST_SIGNED_MAX) {
        error = fwrel_error_set(FWREL_EFORMAT, "signed manifest larger than %d bytes",
                                FWREL_MANIFEST_SIGNED_MAX);
        goto done;
    }
    size_t head = ENV_HEAD + ENV_ENTRY * count, total = head + signed_len + 16;
    if ((env = calloc(1, total)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    memcpy(env, ENV_MAGIC, 8);
    env[8] = 1;
    env[10] = (uint8_t)count;
    fwrel_put_le32(env + 12, (uint32_t)(signed_len + 16));
    if (RAND_bytes(cek, 32) != 1 || RAND_bytes(env + 16, 12) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "no random bytes");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        uint8_t *e = env + ENV_HEAD + ENV_ENTRY * i;
        int type;
        if ((error = fwrel_manifest_recipient_type(&type, recipients[i])) != 0 ||
            (error = keyid_raw(e + 4, recipients[i])) != 0) {
            fwrel_error_prefix("recipient %zu", i + 1);
            goto done;
        }
        e[0] = (uint8_t)type;
        if (type == R_RSA4096) {
            EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)recipients[i], NULL);
            size_t n = 512;
            int ok = c != NULL && EVP_PKEY_encrypt_init(c) == 1 &&
                     EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
                     EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) == 1 &&
                     EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) == 1 &&
                     EVP_PKEY_encrypt(c, e + ENTRY_DATA, &n, cek, 32) == 1 && n == 512;
            EVP_PKEY_CTX_free(c);
            if (!ok) {
                error =
                    fwrel_error_set_openssl(FWREL_EKEY, "recipient %zu: RSA-OAEP failed", i + 1);
                goto done;
            }
            continue;
        }
        static const uint8_t zero_nonce[12] = {0};
        eph = type == R_X25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "X25519") : NULL;
        if ((type == R_P256 && fwrel_key_generate(&eph, FWREL_KEY_ECDSA256) != 0) || eph == NULL ||
            eph_public(e + ENTRY_DATA, eph, type) != 0 ||
            !kek_derive(kek, eph, recipients[i], e + 4) ||
            !gcm(1, e + ENTRY_DATA + 65, kek, zero_nonce, NULL, 0, cek, 32)) {
            error =
                fwrel_error_set_openssl(FWREL_EKEY, "recipient %zu: key agreement failed", i + 1);
            goto done;
        }
        fwrel_key_free(eph);
        eph = NULL;
    }
    if (!gcm(1, env + head, cek, env + 16, env, head, signed_json, signed_len)) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "AES-GCM failed");
        goto done;
    }
    *out = env;
    *len = total;
    env = NULL;
    error = 0;
done:
    OPENSSL_cleanse(kek, sizeof(kek));
    OPENSSL_secure_clear_free(cek, 32);
    fwrel_key_free(eph);
    free(env);
    return error;
}

/* secure-fota (docs/manifest.md section 5): PKCS#1 v1.5 throughout, as that project's Java
 * Cipher.getInstance("RSA") and mbedtls_pk_decrypt use it. */
static int rsa_bits(const fwrel_pkey *k, int bits)
{
    return EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == bits;
}

static int pkcs1(int enc, uint8_t *out, size_t *out_len, const fwrel_pkey *key, const uint8_t *in,
                 size_t in_len)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)key, NULL);
    int ok = c != NULL && (enc ? EVP_PKEY_encrypt_init(c) : EVP_PKEY_decrypt_init(c)) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
             (enc ? EVP_PKEY_encrypt(c, out, out_len, in, in_len)
                  : EVP_PKEY_decrypt(c, out, out_len, in, in_len)) == 1;
    EVP_PKEY_CTX_free(c);
    ERR_clear_error();
    return ok;
}

static int sha256_rsa(int sign, const fwrel_pkey *key, const uint8_t *msg, size_t len, uint8_t *sig,
                      size_t *sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL &&
             (sign ? EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, (EVP_PKEY *)key)
                   : EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, (EVP_PKEY *)key)) == 1 &&
             (sign ? EVP_DigestSign(ctx, sig, sig_len, msg, len)
                   : EVP_DigestVerify(ctx, sig, *sig_len, msg, len)) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

int fwrel_manifest_securefota_make(uint8_t out[FWREL_SECURE_FOTA_LEN], const uint8_t app_desc[256],
                                   const fwrel_pkey *sign_key, const fwrel_pkey *enc_key)
{
    FWREL_ASSERT_ARG(out != NULL && app_desc != NULL && sign_key != NULL && enc_key != NULL);
    uint8_t sig[384];
    size_t slen = sizeof(sig), n = 512;
    if (!rsa_bits(sign_key, 3072) || !rsa_bits(enc_key, 4096))
        return fwrel_error_set(
            FWREL_EKEY, "secure-fota needs an RSA-3072 signing key and an RSA-4096 device key");
    if (fwrel_le32(app_desc) != FWREL_APP_DESC_MAGIC)
        return fwrel_error_set(FWREL_EFORMAT, "no app descriptor (magic 0xABCD5432)");
    if (!sha256_rsa(1, sign_key, app_desc, 256, sig, &slen) || slen != 384)
        return fwrel_error_set(FWREL_EKEY, "signing failed");
    int ok = pkcs1(1, out, &n, enc_key, app_desc, 256) && n == 512;
    n = 512;
    ok = ok && pkcs1(1, out + 512, &n, enc_key, sig, 384) && n == 512;
    if (!ok)
        return fwrel_error_set(FWREL_EKEY, "RSA-4096 encryption failed");
    return 0;
}

int fwrel_manifest_securefota_read(uint8_t app_desc[256], const uint8_t in[FWREL_SECURE_FOTA_LEN],
                                   const fwrel_pkey *dec_key, const fwrel_pkey *verify_key)
{
    FWREL_ASSERT_ARG(app_desc != NULL && in != NULL && dec_key != NULL && verify_key != NULL);
    uint8_t desc[512], sig[512];
    size_t dlen = sizeof(desc), slen = sizeof(sig);
    if (!rsa_bits(dec_key, 4096) || !rsa_bits(verify_key, 3072))
        return fwrel_error_set(
            FWREL_EKEY, "secure-fota needs the RSA-4096 device key and the RSA-3072 signer key");
    if (!pkcs1(0, desc, &dlen, dec_key, in, 512) || dlen != 256 ||
        !pkcs1(0, sig, &slen, dec_key, in + 512, 512) || slen != 384)
        return fwrel_error_set(FWREL_EVERIFY,
                               "cannot decrypt the manifest blocks: wrong key or altered");
    if (!sha256_rsa(0, verify_key, desc, 256, sig, &slen))
        return fwrel_error_set(FWREL_EVERIFY, "the manifest signature does not verify");
    memcpy(app_desc, desc, 256);
    return 0;
}
