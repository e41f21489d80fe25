/* export.c - update-server exports rendered from template directories (export.h, docs/exports.md).
 */
#include "fwrel/export.h"
#include "fwrel/mender.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "util.h"
#include "yamltree.h"

/* Directories below an export's root, and the whole tree's entries, are capped. */
#define EXPORT_DEPTH_MAX  4
#define EXPORT_COPIES_MAX 16
#define EXPORT_DECL_MAX   FWREL_EXPORT_VARS_MAX
#define EXPORT_YAML       "export.yaml"
#define EXPORT_DESC_MAX   1024

/* A list variable: rows of variables, repeated by a {{*name}}...{{/name}} loop. */
struct export_list {
    char *name;
    fwrel_export_vars **rows;
    size_t nrows;
};

struct fwrel_export_vars {
    size_t count;
    char *names[FWREL_EXPORT_VARS_MAX];
    char *values[FWREL_EXPORT_VARS_MAX];
    struct export_list lists[FWREL_EXPORT_LISTS_MAX];
    size_t nlists;
};

/* ---- variables ---------------------------------------------------------------------------- */

static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n > FWREL_EXPORT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
static int valid_utf8(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += k + 1;
    }
    return 1;
}

int fwrel_export_vars_new(fwrel_export_vars **out)
{
    FWREL_ASSERT_ARG(out != NULL);
    if ((*out = calloc(1, sizeof(**out))) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    return 0;
}

void fwrel_export_vars_free(fwrel_export_vars *vars)
{
    if (vars == NULL)
        return;
    for (size_t i = 0; i < vars->count; i++) {
        free(vars->names[i]);
        free(vars->values[i]);
    }
    for (size_t i = 0; i < vars->nlists; i++) {
        for (size_t k = 0; k < vars->lists[i].nrows; k++)
            fwrel_export_vars_free(vars->lists[i].rows[k]);
        free(vars->lists[i].rows);
        free(vars->lists[i].name);
    }
    free(vars);
}

static const struct export_list *vars_list(const fwrel_export_vars *vars, const char *name,
                                           size_t n)
{
    for (size_t i = 0; vars != NULL && i < vars->nlists; i++)
        if (strlen(vars->lists[i].name) == n && memcmp(vars->lists[i].name, name, n) == 0)
            return &vars->lists[i];
    return NULL;
}

int fwrel_export_vars_add_row(fwrel_export_vars *vars, const char *list, fwrel_export_vars *row)
{
    FWREL_ASSERT_ARG(vars != NULL && list != NULL && row != NULL && row != vars);
    struct export_list *l = (struct export_list *)vars_list(vars, list, strlen(list));
    if (!valid_name(list, strlen(list)))
        return fwrel_error_set(FWREL_EUSAGE, "list name must be 1 to %d characters of [a-z0-9_]",
                               FWREL_EXPORT_NAME_MAX);
    if (row->nlists != 0)
        return fwrel_error_set(FWREL_EUSAGE, "list '%s': a row holds no lists", list);
    if (l == NULL) {
        if (vars->nlists == FWREL_EXPORT_LISTS_MAX)
            return fwrel_error_set(FWREL_EUSAGE, "more than %d lists", FWREL_EXPORT_LISTS_MAX);
        l = &vars->lists[vars->nlists];
        if ((l->name = strdup(list)) == NULL)
            return fwrel_error_set(FWREL_EIO, "out of memory");
        vars->nlists++;
    }
    if (l->nrows == FWREL_EXPORT_ROWS_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "list '%s': more than %d rows", list,
                               FWREL_EXPORT_ROWS_MAX);
    fwrel_export_vars **rows = realloc(l->rows, (l->nrows + 1) * sizeof(*rows));
    if (rows == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    l->rows = rows;
    l->rows[l->nrows++] = row;
    return 0;
}

void fwrel_export_vars_clear_list(fwrel_export_vars *vars, const char *list)
{
    struct export_list *l = vars == NULL || list == NULL
                                ? NULL
                                : (struct export_list *)vars_list(vars, list, strlen(list));
    if (l == NULL)
        return;
    for (size_t k = 0; k < l->nrows; k++)
        fwrel_export_vars_free(l->rows[k]);
    l->nrows = 0;
}

size_t fwrel_export_vars_rows(const fwrel_export_vars *vars, const char *list)
{
    const struct export_list *l =
        vars == NULL || list == NULL ? NULL : vars_list(vars, list, strlen(list));
    return l == NULL ? 0 : l->nrows;
}

static const char *vars_lookup(const fwrel_export_vars *vars, const char *name, size_t n)
{
    for (size_t i = 0; vars != NULL && i < vars->count; i++)
        if (strlen(vars->names[i]) == n && memcmp(vars->names[i], name, n) == 0)
            return vars->values[i];
    return NULL;
}

const char *fwrel_export_vars_get(const fwrel_export_vars *vars, const char *name)
{
    if (vars == NULL || name == NULL)
        return NULL;
    return vars_lookup(vars, name, strlen(name));
}

int fwrel_export_vars_set(fwrel_export_vars *vars, const char *name, const char *value)
{
    FWREL_ASSERT_ARG(vars != NULL && name != NULL && value != NULL);
    size_t vlen = strlen(value);
    if (!valid_name(name, strlen(name)))
        return fwrel_error_set(FWREL_EUSAGE,
                               "variable name must be 1 to %d characters of [a-z0-9_]",
                               FWREL_EXPORT_NAME_MAX);
    if (vlen > FWREL_EXPORT_VALUE_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "variable '%s': value over %d bytes", name,
                               FWREL_EXPORT_VALUE_MAX);
    if (!valid_utf8((const uint8_t *)value, vlen))
        return fwrel_error_set(FWREL_EUSAGE, "variable '%s': value is not valid UTF-8", name);
    char *copy = strdup(value);
    if (copy == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    for (size_t i = 0; i < vars->count; i++)
        if (strcmp(vars->names[i], name) == 0) {
            free(vars->values[i]);
            vars->values[i] = copy;
            return 0;
        }
    char *ncopy = strdup(name);
    if (vars->count == FWREL_EXPORT_VARS_MAX || ncopy == NULL) {
        free(copy);
        free(ncopy);
        if (vars->count == FWREL_EXPORT_VARS_MAX)
            return fwrel_error_set(FWREL_EUSAGE, "more than %d variables", FWREL_EXPORT_VARS_MAX);
        return fwrel_error_set(FWREL_EIO, "out of memory");
    }
    vars->names[vars->count] = ncopy;
    vars->values[vars->count++] = copy;
    return 0;
}

/* Feed the rest of a source to update() in 64 KiB chunks: images are never read whole. update
 * returns 0, or an error already set. */
static int stream_src(fwrel_src *image, int (*update)(void *ctx, const uint8_t *p, size_t n),
                      void *ctx)
{
    uint8_t *buf = malloc(65536);
    int error = buf == NULL ? fwrel_error_set(FWREL_EIO, "out of memory") : 0;
    while (error == 0 && image->pos < image->size) {
        uint64_t left = image->size - image->pos;
        size_t chunk = left < 65536 ? (size_t)left : 65536;
        if ((error = fwrel_src_read(image, buf, chunk)) == 0)
            error = update(ctx, buf, chunk);
    }
    free(buf);
    return error;
}

static int hmac_update(void *ctx, const uint8_t *p, size_t n)
{
    return EVP_MAC_update(ctx, p, n) == 1 ? 0 : fwrel_error_set_openssl(FWREL_EKEY, "HMAC failed");
}

static int digest_update(void *ctx, const uint8_t *p, size_t n)
{
    EVP_MD_CTX **both = ctx;
    return EVP_DigestUpdate(both[0], p, n) == 1 && EVP_DigestUpdate(both[1], p, n) == 1
               ? 0
               : fwrel_error_set_openssl(FWREL_EIO, "digest failed");
}

static int sign_update(void *ctx, const uint8_t *p, size_t n)
{
    return EVP_DigestSignUpdate(ctx, p, n) == 1
               ? 0
               : fwrel_error_set_openssl(FWREL_EKEY, "signing failed");
}

int fwrel_export_vars_set_hmac(fwrel_export_vars *vars, const uint8_t *key, size_t keylen,
                               fwrel_src *image)
{
    FWREL_ASSERT_ARG(vars != NULL && key != NULL && image != NULL);
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    uint8_t tag[32];
    char hex[65];
    size_t taglen = 0;
    int error;
    if (keylen != 32)
        return fwrel_error_set(FWREL_EKEY, "HMAC key must be 32 bytes (hmac256), not %zu", keylen);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL || (ctx = EVP_MAC_CTX_new(mac)) == NULL ||
        EVP_MAC_init(ctx, key, keylen, params) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "HMAC setup failed");
        goto done;
    }
    if ((error = stream_src(image, hmac_update, ctx)) != 0)
        goto done;
    if (EVP_MAC_final(ctx, tag, &taglen, sizeof(tag)) != 1 || taglen != sizeof(tag)) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "HMAC failed");
        goto done;
    }
    fwrel_hex(hex, tag, sizeof(tag));
    error = fwrel_export_vars_set(vars, "hmac", hex);
done:
    OPENSSL_cleanse(tag, sizeof(tag));
    EVP_MAC_CTX_free(ctx); /* wipes its copy of the key */
    EVP_MAC_free(mac);
    return error;
}

int fwrel_export_vars_set_image(fwrel_export_vars *vars, fwrel_src *image)
{
    FWREL_ASSERT_ARG(vars != NULL && image != NULL);
    EVP_MD_CTX *sha = NULL, *md5 = NULL;
    EVP_MD *md5_md = NULL;
    uint8_t d[32], m[16];
    char hex[65], mhex[33], size[24];
    uint64_t total = image->size - image->pos;
    int error;
    /* MD5 only because ESPHome's OTA checks it (docs/exports.md): never for security. */
    if ((sha = EVP_MD_CTX_new()) == NULL || (md5 = EVP_MD_CTX_new()) == NULL ||
        (md5_md = EVP_MD_fetch(NULL, "MD5", NULL)) == NULL ||
        EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1 ||
        EVP_DigestInit_ex(md5, md5_md, NULL) != 1) {
        error = fwrel_error_set_openssl(FWREL_EIO, "digest setup failed");
        goto done;
    }
    EVP_MD_CTX *both[2] = {sha, md5};
    if ((error = stream_src(image, digest_update, both)) != 0)
        goto done;
    if (EVP_DigestFinal_ex(sha, d, NULL) != 1 || EVP_DigestFinal_ex(md5, m, NULL) != 1) {
        error = fwrel_error_set_openssl(FWREL_EIO, "digest failed");
        goto done;
    }
    snprintf(size, sizeof(size), "%llu", (unsigned long long)total);
    fwrel_hex(hex, d, sizeof(d));
    fwrel_hex(mhex, m, sizeof(m));
    if ((error = fwrel_export_vars_set(vars, "image_sha256", hex)) == 0 &&
        (error = fwrel_export_vars_set(vars, "image_size", size)) == 0)
        error = fwrel_export_vars_set(vars, "image_md5", mhex);
done:
    EVP_MD_CTX_free(sha);
    EVP_MD_CTX_free(md5);
    EVP_MD_free(md5_md);
    return error;
}

int fwrel_export_vars_set_signature(fwrel_export_vars *vars, const char *name,
                                    const fwrel_pkey *key, fwrel_src *image)
{
    FWREL_ASSERT_ARG(vars != NULL && name != NULL && key != NULL && image != NULL);
    EVP_MD_CTX *ctx = NULL;
    uint8_t sig[80];
    char b64[4 * sizeof(sig) / 3 + 4];
    size_t slen = sizeof(sig);
    int error;
    /* AWS IoT OTA's customCodeSigning "ECDSA" with "SHA256" (docs/exports.md, aws-iot-ota). */
    if (!EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_bits(key) != 256)
        return fwrel_error_set(FWREL_EKEY, "the %s key must be ECDSA P-256", name);
    if ((ctx = EVP_MD_CTX_new()) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, (EVP_PKEY *)key) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "signing failed");
        goto done;
    }
    if ((error = stream_src(image, sign_update, ctx)) != 0)
        goto done;
    /* A DER ECDSA-Sig-Value of P-256 is at most 72 bytes: checked before it is written. */
    if (EVP_DigestSignFinal(ctx, NULL, &slen) != 1 || slen > sizeof(sig) ||
        EVP_DigestSignFinal(ctx, sig, &slen) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "signing failed");
        goto done;
    }
    EVP_EncodeBlock((unsigned char *)b64, sig, (int)slen);
    error = fwrel_export_vars_set(vars, name, b64);
done:
    EVP_MD_CTX_free(ctx);
    return error;
}

/* A row of the releases list: each pair (name, value) whose value is not NULL. */
static int add_release_row(fwrel_export_vars *vars, const char *const (*kv)[2], size_t n)
{
    fwrel_export_vars *row = NULL;
    int error = fwrel_export_vars_new(&row);
    for (size_t i = 0; error == 0 && i < n; i++)
        if (kv[i][1] != NULL)
            error = fwrel_export_vars_set(row, kv[i][0], kv[i][1]);
    if (error == 0 && (error = fwrel_export_vars_add_row(vars, "releases", row)) == 0)
        return 0;
    fwrel_export_vars_free(row);
    return error;
}

int fwrel_export_vars_set_releases(fwrel_export_vars *vars, const fwrel_history *h)
{
    FWREL_ASSERT_ARG(vars != NULL);
    const char *product = fwrel_export_vars_get(vars, "product");
    const char *channel = fwrel_export_vars_get(vars, "channel");
    const char *counter = fwrel_export_vars_get(vars, "counter");
    uint64_t now = 0;
    size_t *idx = NULL, m = 0;
    int error;
    if (product == NULL || channel == NULL || counter == NULL ||
        fwrel_parse_u64(&now, counter, UINT64_MAX) != 0)
        return fwrel_error_set(FWREL_EUSAGE, "the releases list needs product, channel and "
                                             "counter set first");
    fwrel_export_vars_clear_list(vars, "releases");
    if (h != NULL && h->nrel > 0 && (idx = calloc(h->nrel, sizeof(*idx))) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    for (size_t i = 0; h != NULL && i < h->nrel; i++)
        if (strcmp(h->rel[i].record.product, product) == 0 &&
            strcmp(h->rel[i].record.channel, channel) == 0 && h->rel[i].record.counter < now)
            idx[m++] = i;
    /* The newest ones, this release included, when there are more than a list holds. */
    size_t from = m >= FWREL_EXPORT_ROWS_MAX ? m - (FWREL_EXPORT_ROWS_MAX - 1) : 0;
    error = 0;
    for (size_t k = from; error == 0 && k < m; k++) {
        const fwrel_release *r = &h->rel[idx[k]].record;
        char c[24], sv[12], size[24], created[21];
        snprintf(c, sizeof(c), "%llu", (unsigned long long)r->counter);
        snprintf(sv, sizeof(sv), "%u", r->secure_version);
        snprintf(size, sizeof(size), "%llu", (unsigned long long)r->image.size);
        fwrel_rfc3339(created, (int64_t)r->created);
        const char *const kv[][2] = {{"version", r->version},    {"counter", c},
                                     {"secure_version", sv},     {"image_sha256", r->image.sha256},
                                     {"image_size", size},       {"created", created},
                                     {"tag", h->rel[idx[k]].tag}};
        error = add_release_row(vars, kv, sizeof(kv) / sizeof(kv[0]));
    }
    free(idx);
    if (error)
        return error;
    static const char *const same[] = {"version",   "counter",    "secure_version", "image_sha256",
                                       "image_md5", "image_size", "created",        "hmac"};
    const char *kv[sizeof(same) / sizeof(same[0]) + 1][2];
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        kv[i][0] = same[i];
        kv[i][1] = fwrel_export_vars_get(vars, same[i]);
    }
    kv[sizeof(same) / sizeof(same[0])][0] = "current";
    kv[sizeof(same) / sizeof(same[0])][1] = "1";
    return add_release_row(vars, (const char *const(*)[2])kv, sizeof(kv) / sizeof(kv[0]));
}

/* The secure-FOTA upload id (docs/exports.md, secure-fota): slot * 65536 + counter, a positive
 * Java int. */
#define SF_COUNTER_MAX 65535u
#define SF_SLOT_MAX    32767u

static uint32_t sf_slot(const char *product, const char *device_type)
{
    static const char label[] = "fwrel secure-fota id";
    uint8_t d[32];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c, label, sizeof(label)) == 1 &&
             EVP_DigestUpdate(c, product, strlen(product) + 1) == 1 &&
             EVP_DigestUpdate(c, device_type, strlen(device_type)) == 1 &&
             EVP_DigestFinal_ex(c, d, NULL) == 1;
    EVP_MD_CTX_free(c);
    if (!ok)
        return 0;
    uint32_t v = ((uint32_t)d[0] << 24) | ((uint32_t)d[1] << 16) | ((uint32_t)d[2] << 8) | d[3];
    return 1 + v % SF_SLOT_MAX;
}

int fwrel_export_vars_set_targets(fwrel_export_vars *vars, const char *const *types, size_t n,
                                  const fwrel_export_vars *settings)
{
    FWREL_ASSERT_ARG(vars != NULL && (types != NULL || n == 0));
    const char *product = fwrel_export_vars_get(vars, "product");
    const char *counter = fwrel_export_vars_get(vars, "counter");
    const char *base = fwrel_export_vars_get(settings, "id_slot");
    char joined[FWREL_EXPORT_VALUE_MAX + 1] = "";
    uint64_t c = 0, slot0 = 0;
    int error = 0;
    if (product == NULL || counter == NULL || fwrel_parse_u64(&c, counter, UINT64_MAX) != 0)
        return fwrel_error_set(FWREL_EUSAGE, "the targets list needs product and counter set "
                                             "first");
    if (n == 0 || n > FWREL_EXPORT_ROWS_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "a release has 1 to %d device types",
                               FWREL_EXPORT_ROWS_MAX);
    if (base != NULL && (fwrel_parse_u64(&slot0, base, SF_SLOT_MAX) != 0 || slot0 == 0 ||
                         slot0 + n - 1 > SF_SLOT_MAX))
        return fwrel_error_set(FWREL_EFORMAT,
                               "setting id_slot: '%.16s' is not a number from 1 to %u - %zu "
                               "(one slot per device type)",
                               base, SF_SLOT_MAX, n - 1);
    fwrel_export_vars_clear_list(vars, "targets");
    for (size_t i = 0; error == 0 && i < n; i++) {
        fwrel_export_vars *row = NULL;
        char id[24];
        uint64_t slot = base != NULL ? slot0 + i : sf_slot(product, types[i]);
        if (slot == 0)
            return fwrel_error_set_openssl(FWREL_EIO, "SHA-256 failed");
        /* Past 65535 the id would run into the next slot: the upload id has 16 bits for it. */
        if (c > SF_COUNTER_MAX)
            snprintf(id, sizeof(id), "%s", "");
        else
            snprintf(id, sizeof(id), "%llu", (unsigned long long)(slot * 65536 + c));
        snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s%s", i ? "," : "",
                 types[i]);
        if ((error = fwrel_export_vars_new(&row)) == 0 &&
            (error = fwrel_export_vars_set(row, "device_type", types[i])) == 0 &&
            (id[0] == 0 || (error = fwrel_export_vars_set(row, "upload_id", id)) == 0) &&
            (error = fwrel_export_vars_add_row(vars, "targets", row)) == 0)
            row = NULL;
        fwrel_export_vars_free(row);
    }
    if (error == 0)
        error = fwrel_export_vars_set(vars, "device_types", joined);
    if (error == 0 && n == 1)
        error = fwrel_export_vars_set(vars, "device_type", types[0]);
    /* With several, no device_type: a template that wants one uses the targets list. */
    for (size_t i = 0; error == 0 && n > 1 && i < vars->count; i++)
        if (strcmp(vars->names[i], "device_type") == 0) {
            free(vars->names[i]);
            free(vars->values[i]);
            vars->names[i] = vars->names[vars->count - 1];
            vars->values[i] = vars->values[vars->count - 1];
            vars->count--;
            break;
        }
    return error;
}

/* ---- output buffer ------------------------------------------------------------------------ */

struct buf {
    uint8_t *p;
    size_t len, cap, max;
};

static int buf_add(struct buf *b, const void *data, size_t n, int line)
{
    if (n > b->max - b->len)
        return fwrel_error_set(FWREL_EFORMAT, "line %d: rendered output over %zu bytes", line,
                               b->max);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (np == NULL)
            return fwrel_error_set(FWREL_EIO, "out of memory");
        b->p = np;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

/* ---- escaping ----------------------------------------------------------------------------- */

/* Context for file names: no escaping, but values that could leave the directory are refused. */
#define ESC_PATH 100

static int escape_value(struct buf *out, const char *v, size_t n, int esc, const char *name,
                        int line)
{
    static const char hexd[] = "0123456789ABCDEF";
    int error = 0;
    switch (esc) {
    case FWREL_EXPORT_NONE:
    case ESC_PATH:
        for (size_t i = 0; i < n; i++)
            if ((uint8_t)v[i] < 0x20 || v[i] == 0x7f)
                return fwrel_error_set(
                    FWREL_EFORMAT, "line %d: value of '%s' has a control character", line, name);
        if (esc == ESC_PATH && (memchr(v, '/', n) != NULL || memchr(v, '\\', n) != NULL ||
                                (n >= 2 && strstr(v, "..") != NULL)))
            return fwrel_error_set(FWREL_EFORMAT,
                                   "line %d: value of '%s' has '/', '\\' or '..' (not allowed in "
                                   "a file name)",
                                   line, name);
        return buf_add(out, v, n, line);
    case FWREL_EXPORT_JSON:
        for (size_t i = 0; i < n && error == 0; i++) {
            uint8_t c = (uint8_t)v[i];
            char e[8];
            if (c == '"' || c == '\\') {
                e[0] = '\\';
                e[1] = (char)c;
                error = buf_add(out, e, 2, line);
            } else if (c == '\n' || c == '\t' || c == '\r') {
                e[0] = '\\';
                e[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
                error = buf_add(out, e, 2, line);
            } else if (c < 0x20 || c == 0x7f) {
                memcpy(e, "\\u00", 4);
                e[4] = hexd[c >> 4];
                e[5] = hexd[c & 15];
                error = buf_add(out, e, 6, line);
            } else {
                error = buf_add(out, &v[i], 1, line);
            }
        }
        return error;
    case FWREL_EXPORT_SHELL:
        /* One single-quoted word; a quote closes it, is escaped and reopens it. Inside single
         * quotes nothing ($, `, \, newline) is special to a POSIX shell. */
        error = buf_add(out, "'", 1, line);
        for (size_t i = 0; i < n && error == 0; i++)
            error = v[i] == '\'' ? buf_add(out, "'\\''", 4, line) : buf_add(out, &v[i], 1, line);
        return error ? error : buf_add(out, "'", 1, line);
    case FWREL_EXPORT_URL:
        for (size_t i = 0; i < n && error == 0; i++) {
            uint8_t c = (uint8_t)v[i];
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == '~') {
                error = buf_add(out, &v[i], 1, line);
            } else {
                char e[3] = {'%', hexd[c >> 4], hexd[c & 15]};
                error = buf_add(out, e, 3, line);
            }
        }
        return error;
    }
    return fwrel_error_set(FWREL_EUSAGE, "unknown escaping %d", esc);
}

static int escape_by_name(int *out, const char *s, size_t n)
{
    /* Indexed by enum fwrel_export_escape (export.h: none 0, json 1, shell 2, url 3). */
    static const char *const names[] = {"none", "json", "shell", "url"};
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0) {
            *out = i;
            return 0;
        }
    return -1;
}

/* ---- the template language ---------------------------------------------------------------- */

struct spec;
static int spec_list(char *const **fields, size_t *nfields, const struct spec *sp, const char *name,
                     size_t n);

/* Which names a template may use: declared in export.yaml (known), and their values. Inside a
 * loop's body, the row's declared fields (and "first", "last") come first: a declared field the
 * row does not set is unset, never the outer variable of the same name. */
struct scope {
    const fwrel_export_vars *vars;
    const fwrel_export_vars *over[2]; /* looked up before vars: derived, settings */
    char *const *known;               /* NULL: every name set in vars is known, nothing else */
    size_t nknown;
    const struct spec *sp;        /* the lists export.yaml declares; NULL: any list of vars */
    const fwrel_export_vars *row; /* in a loop body: the row */
    char *const *fields;          /* its declared fields; NULL: the row's names */
    size_t nfields, index, nrows;
};

static int in_names(char *const *names, size_t count, const char *name, size_t n)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(names[i]) == n && memcmp(names[i], name, n) == 0)
            return 1;
    return 0;
}

static int is_loop_flag(const struct scope *s, const char *name, size_t n)
{
    return s->row != NULL &&
           ((n == 5 && memcmp(name, "first", 5) == 0) || (n == 4 && memcmp(name, "last", 4) == 0));
}

static const char *scope_lookup(const struct scope *s, const char *name, size_t n)
{
    if (is_loop_flag(s, name, n))
        return (name[0] == 'f' ? s->index == 0 : s->index + 1 == s->nrows) ? "1" : NULL;
    if (s->row != NULL && (s->fields == NULL ? vars_lookup(s->row, name, n) != NULL
                                             : in_names(s->fields, s->nfields, name, n)))
        return vars_lookup(s->row, name, n);
    for (size_t i = 0; i < 2; i++) {
        const char *v = vars_lookup(s->over[i], name, n);
        if (v != NULL)
            return v;
    }
    return vars_lookup(s->vars, name, n);
}

static int scope_knows(const struct scope *s, const char *name, size_t n)
{
    if (is_loop_flag(s, name, n))
        return 1;
    if (s->row != NULL && (s->fields == NULL ? vars_lookup(s->row, name, n) != NULL
                                             : in_names(s->fields, s->nfields, name, n)))
        return 1;
    if (s->known == NULL)
        return scope_lookup(s, name, n) != NULL;
    return in_names(s->known, s->nknown, name, n);
}

/* A placeholder's text for a message: at most 40 bytes, non-printables as '?'. */
static void show_tag(char out[48], const uint8_t *p, size_t n)
{
    size_t k = n > 40 ? 40 : n;
    for (size_t i = 0; i < k; i++)
        out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    memcpy(&out[k], n > k ? "..." : "", n > k ? 4 : 1);
}

/*
 * Where the shell would be after the literal text of a shell template: placeholders are
 * whole single-quoted words, so they may stand only where a word can start, never inside
 * quotes or a comment (a newline in a value would end a comment and run the rest).
 */
enum { SH_NORMAL, SH_SQUOTE, SH_DQUOTE, SH_COMMENT };

struct shlex {
    int state, escaped, word; /* word: the last character continues a word */
};

static void sh_lex(struct shlex *l, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (l->escaped) {
            l->escaped = 0;
            l->word = 1;
            continue;
        }
        switch (l->state) {
        case SH_NORMAL:
            if (c == '\\')
                l->escaped = 1;
            else if (c == '\'')
                l->state = SH_SQUOTE;
            else if (c == '"')
                l->state = SH_DQUOTE;
            else if (c == '#' && !l->word)
                l->state = SH_COMMENT;
            l->word = !(c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' ||
                        c == '(' || c == ')' || c == '<' || c == '>');
            break;
        case SH_SQUOTE:
            if (c == '\'')
                l->state = SH_NORMAL;
            break;
        case SH_DQUOTE:
            if (c == '\\')
                l->escaped = 1;
            else if (c == '"')
                l->state = SH_NORMAL;
            break;
        case SH_COMMENT:
            if (c == '\n') {
                l->state = SH_NORMAL;
                l->word = 0;
            }
            break;
        }
    }
}

static int render(struct buf *out, const uint8_t *t, size_t len, int esc, const struct scope *s,
                  struct shlex *sh, int line);

/* A loop {{*name}}: its body t[0, len) once per row of the list, with the row's fields. The body
 * starts on line; loops do not nest. */
static int render_loop(struct buf *out, const uint8_t *t, size_t len, int esc,
                       const struct scope *s, struct shlex *sh, int line, const char *name,
                       size_t nn)
{
    char *const *fields = NULL;
    size_t nfields = 0;
    if (s->row != NULL)
        return fwrel_error_set(FWREL_EFORMAT,
                               "line %d: loop '%.*s' inside a loop (loops do not "
                               "nest)",
                               line, (int)nn, name);
    if (esc == ESC_PATH)
        return fwrel_error_set(FWREL_EFORMAT, "line %d: loops are not allowed here", line);
    if (s->sp != NULL && spec_list(&fields, &nfields, s->sp, name, nn) != 0)
        return fwrel_error_set(FWREL_EFORMAT, "line %d: unknown list '%.*s'", line, (int)nn, name);
    const struct export_list *l = vars_list(s->vars, name, nn);
    if (s->sp == NULL && l == NULL)
        return fwrel_error_set(FWREL_EFORMAT, "line %d: unknown list '%.*s'", line, (int)nn, name);
    for (size_t r = 0; l != NULL && r < l->nrows; r++) {
        struct scope sub = *s;
        sub.row = l->rows[r];
        sub.fields = fields;
        sub.nfields = nfields;
        sub.index = r;
        sub.nrows = l->nrows;
        int error = render(out, t, len, esc, &sub, sh, line);
        if (error)
            return error;
    }
    return 0;
}

static int render(struct buf *out, const uint8_t *t, size_t len, int esc, const struct scope *s,
                  struct shlex *shl, int line)
{
    int error;
    int in_section = 0, keep = 1, section_line = 0;
    const uint8_t *section_name = NULL;
    size_t section_len = 0;
    size_t i = 0;
    if (len > FWREL_EXPORT_TEMPLATE_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "template over %d bytes", FWREL_EXPORT_TEMPLATE_MAX);
    while (i < len) {
        /* Literal text up to the next "{{". */
        size_t j = i;
        while (j < len && !(t[j] == '{' && j + 1 < len && t[j + 1] == '{'))
            j++;
        if (keep && (error = buf_add(out, t + i, j - i, line)) != 0)
            return error;
        if (keep && esc == FWREL_EXPORT_SHELL)
            sh_lex(shl, t + i, j - i);
        for (size_t k = i; k < j; k++)
            line += t[k] == '\n';
        if (j == len)
            break;
        /* A tag: "{{" ... "}}" on one line. */
        size_t a = j + 2, b = a;
        while (b < len && t[b] != '\n' && !(t[b] == '}' && b + 1 < len && t[b + 1] == '}'))
            b++;
        if (b >= len || t[b] == '\n')
            return fwrel_error_set(FWREL_EFORMAT, "line %d: unclosed '{{'", line);
        const uint8_t *tag = t + a;
        size_t tn = b - a;
        i = b + 2;
        char shown[48];
        show_tag(shown, tag, tn);
        char kind = tn > 0 && (tag[0] == '#' || tag[0] == '^' || tag[0] == '/' || tag[0] == '*')
                        ? (char)tag[0]
                        : 0;
        const char *name = (const char *)tag + (kind ? 1 : 0);
        size_t nn = tn - (kind ? 1 : 0), fn = 0;
        const char *filter = NULL;
        const char *bar = memchr(name, '|', nn);
        if (bar != NULL && !kind) {
            filter = bar + 1;
            fn = nn - (size_t)(filter - name);
            nn = (size_t)(bar - name);
        }
        int fesc = -1;
        if (!valid_name(name, nn) || (filter != NULL && escape_by_name(&fesc, filter, fn) != 0) ||
            (filter != NULL && fesc == FWREL_EXPORT_NONE))
            return fwrel_error_set(FWREL_EFORMAT,
                                   "line %d: placeholder '{{%s}}' is not a name of [a-z0-9_] "
                                   "(with an optional |url, |json or |shell)",
                                   line, shown);
        if (kind == '*') {
            /* The body runs to the first "{{/name}}". */
            size_t e = i;
            if (s->row != NULL)
                return fwrel_error_set(FWREL_EFORMAT,
                                       "line %d: loop '%.*s' inside a loop (loops do not nest)",
                                       line, (int)nn, name);
            for (; e + nn + 5 <= len; e++)
                if (memcmp(t + e, "{{/", 3) == 0 && memcmp(t + e + 3, name, nn) == 0 &&
                    memcmp(t + e + 3 + nn, "}}", 2) == 0)
                    break;
            if (e + nn + 5 > len)
                return fwrel_error_set(FWREL_EFORMAT, "line %d: loop '%.*s' is not closed", line,
                                       (int)nn, name);
            /* A loop in a section that is not kept is skipped with it. */
            if (keep && (error = render_loop(out, t + i, e - i, esc, s, shl, line, name, nn)) != 0)
                return error;
            for (size_t k = i; k < e; k++)
                line += t[k] == '\n';
            i = e + nn + 5;
            continue;
        }
        if (!scope_knows(s, name, nn))
            return fwrel_error_set(FWREL_EFORMAT, "line %d: unknown variable '%.*s'", line, (int)nn,
                                   name);
        const char *value = scope_lookup(s, name, nn);
        if (kind == '#' || kind == '^') {
            if (esc == ESC_PATH)
                return fwrel_error_set(FWREL_EFORMAT, "line %d: sections are not allowed here",
                                       line);
            if (in_section)
                return fwrel_error_set(FWREL_EFORMAT,
                                       "line %d: section '%.*s' inside section '%.*s' (sections "
                                       "do not nest)",
                                       line, (int)nn, name, (int)section_len,
                                       (const char *)section_name);
            int set = value != NULL && value[0] != 0;
            in_section = 1;
            keep = kind == '#' ? set : !set;
            section_name = (const uint8_t *)name;
            section_len = nn;
            section_line = line;
            continue;
        }
        if (kind == '/') {
            if (!in_section || section_len != nn || memcmp(section_name, name, nn) != 0)
                return fwrel_error_set(FWREL_EFORMAT, "line %d: '{{/%.*s}}' closes no open section",
                                       line, (int)nn, name);
            in_section = 0;
            keep = 1;
            continue;
        }
        if (!keep)
            continue;
        if (esc == FWREL_EXPORT_SHELL && (shl->state != SH_NORMAL || shl->escaped))
            return fwrel_error_set(FWREL_EFORMAT,
                                   "line %d: placeholder '{{%s}}' inside quotes or a comment "
                                   "(in shell files a placeholder is a whole quoted word)",
                                   line, shown);
        shl->word = 1;
        if (value == NULL)
            return fwrel_error_set(FWREL_EFORMAT,
                                   "line %d: variable '%.*s' is not set (use it inside "
                                   "{{#%.*s}}...{{/%.*s}})",
                                   line, (int)nn, name, (int)nn, name, (int)nn, name);
        if (filter != NULL) {
            struct buf f = {.max = FWREL_EXPORT_OUTPUT_MAX};
            char vname[FWREL_EXPORT_NAME_MAX + 1];
            memcpy(vname, name, nn);
            vname[nn] = 0;
            error = escape_value(&f, value, strlen(value), fesc, vname, line);
            if (error == 0)
                error = escape_value(out, f.p ? (const char *)f.p : "", f.len, esc, vname, line);
            free(f.p);
        } else {
            char vname[FWREL_EXPORT_NAME_MAX + 1];
            memcpy(vname, name, nn);
            vname[nn] = 0;
            error = escape_value(out, value, strlen(value), esc, vname, line);
        }
        if (error)
            return error;
    }
    if (in_section)
        return fwrel_error_set(FWREL_EFORMAT, "line %d: section '%.*s' is not closed", section_line,
                               (int)section_len, (const char *)section_name);
    return 0;
}

static int render_alloc(struct buf *out, const uint8_t *text, size_t len, int esc,
                        const struct scope *s, size_t max)
{
    memset(out, 0, sizeof(*out));
    out->max = max;
    struct shlex sh = {0};
    int error = render(out, text, len, esc, s, &sh, 1);
    if (error == 0 && out->p == NULL)
        error = buf_add(out, "", 0, 1); /* an empty result is still a buffer */
    if (error) {
        free(out->p);
        memset(out, 0, sizeof(*out));
    }
    return error;
}

int fwrel_export_render_text(uint8_t **out, size_t *outlen, const uint8_t *text, size_t len,
                             int escape, const fwrel_export_vars *vars)
{
    FWREL_ASSERT_ARG(out != NULL && outlen != NULL && (text != NULL || len == 0));
    struct scope s = {.vars = vars};
    struct buf b;
    *out = NULL;
    *outlen = 0;
    if (escape < FWREL_EXPORT_NONE || escape > FWREL_EXPORT_URL)
        return fwrel_error_set(FWREL_EUSAGE, "unknown escaping %d", escape);
    int error = render_alloc(&b, text ? text : (const uint8_t *)"", len, escape, &s,
                             FWREL_EXPORT_OUTPUT_MAX);
    if (error)
        return error;
    *out = b.p;
    *outlen = b.len;
    return 0;
}

/* ---- export.yaml -------------------------------------------------------------------------- */

struct decl_file {
    char *path; /* template path relative to the export directory */
    int escape, executable, seen;
};

struct decl_copy {
    char *path; /* output path template */
    const char *artifact;
};

struct spec {
    yt_node *tree;
    char *known[EXPORT_DECL_MAX];
    size_t nknown;
    char *required[EXPORT_DECL_MAX];
    size_t nrequired;
    char *plain[EXPORT_DECL_MAX]; /* values must be plain names (plain_name()) */
    size_t nplain;
    char *settings[EXPORT_DECL_MAX]; /* what the policy may set for this export */
    size_t nsettings;
    struct {
        char *name;
        char *fields[EXPORT_DECL_MAX];
        size_t nfields;
    } lists[FWREL_EXPORT_LISTS_MAX];
    size_t nlists;
    struct decl_file files[FWREL_EXPORT_FILES_MAX];
    size_t nfiles;
    struct decl_copy copies[EXPORT_COPIES_MAX];
    size_t ncopies;
};

static void spec_free(struct spec *sp)
{
    /* Strings point into the tree. */
    yt_free(sp->tree);
    memset(sp, 0, sizeof(*sp));
}

static int spec_list(char *const **fields, size_t *nfields, const struct spec *sp, const char *name,
                     size_t n)
{
    for (size_t i = 0; i < sp->nlists; i++)
        if (strlen(sp->lists[i].name) == n && memcmp(sp->lists[i].name, name, n) == 0) {
            *fields = sp->lists[i].fields;
            *nfields = sp->lists[i].nfields;
            return 0;
        }
    return -1;
}

/* Variables fwrel sets for every release (docs/exports.md section 4): a policy setting cannot
 * replace them, except base_url, which is a setting of every export. */
static const char *const release_vars[] = {"product",        "version",
                                           "channel",        "counter",
                                           "secure_version", "device_type",
                                           "device_types",   "chip",
                                           "image_name",     "image_sha256",
                                           "image_md5",      "image_size",
                                           "manifest_name",  "manifest_sha256",
                                           "manifest_size",  "secure_fota_manifest_sha256",
                                           "created",        "hmac",
                                           "base_host",      "base_port",
                                           "base_path",      "first",
                                           "last",           NULL};

static int is_release_var(const char *name)
{
    if (strcmp(name, "aws_signature") == 0) /* set by the release when the policy signs */
        return 1;
    for (size_t i = 0; release_vars[i] != NULL; i++)
        if (strcmp(release_vars[i], name) == 0)
            return 1;
    return 0;
}

static int yerr(const yt_node *n, const char *fmt, const char *arg)
{
    char shown[48] = "";
    if (arg != NULL)
        show_tag(shown, (const uint8_t *)arg, strlen(arg));
    return fwrel_error_set(FWREL_EFORMAT, "%d:%d: %s%s", n->line, n->col, fmt, shown);
}

/* A path key of export.yaml: printable, so that messages naming it stay one line. */
static int printable(const char *s)
{
    for (; *s; s++)
        if ((uint8_t)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* Turn a rendering message "line N: reason" into "<where>:N: reason". */
static int rewhere(const char *where)
{
    char msg[FWREL_ERROR_MSG_MAX];
    const fwrel_error *e = fwrel_error_last();
    int code = e->code;
    snprintf(msg, sizeof(msg), "%s", e->message);
    if (strncmp(msg, "line ", 5) == 0)
        return fwrel_error_set(code, "%s:%s", where, msg + 5);
    return fwrel_error_set(code, "%s: %s", where, msg);
}

/*
 * variables.required, .optional, .plain and .settings (docs/exports.md section 2): lists of names.
 * required and optional declare variables; plain names declared variables whose values servers
 * use as file names; settings are what the policy may set for this export (declared by being
 * listed there, and required when variables.required lists it too).
 */
enum { DECL_REQUIRED, DECL_OPTIONAL, DECL_SETTING, DECL_PLAIN };

static int spec_names(struct spec *sp, const yt_node *list, int kind)
{
    static const char *const what[] = {"variables.required", "variables.optional",
                                       "variables.settings", "variables.plain"};
    int error;
    if ((error = yt_expect(list, YT_SEQ, what[kind])))
        return error;
    for (size_t i = 0; i < list->count; i++) {
        const yt_node *v = list->items[i];
        if ((error = yt_expect(v, YT_SCALAR,
                               kind == DECL_SETTING ? "a setting name" : "a variable name")))
            return error;
        char *name = v->value;
        size_t n = strlen(name);
        int known = in_names(sp->known, sp->nknown, name, n);
        if (kind == DECL_PLAIN) {
            if (!known)
                return yerr(v, "variables.plain names an undeclared variable: ", name);
            if (in_names(sp->plain, sp->nplain, name, n))
                return yerr(v, "variable listed twice: ", name);
            sp->plain[sp->nplain++] = name;
            continue;
        }
        if (!valid_name(name, n))
            return yerr(v, kind == DECL_SETTING ? "setting names are [a-z0-9_]: "
                                                : "variable names are [a-z0-9_]: ",
                        name);
        if (kind != DECL_SETTING && known)
            return yerr(v, "variable declared twice: ", name);
        if (kind == DECL_SETTING && strcmp(name, "base_url") != 0 && is_release_var(name))
            return yerr(v, "a variable fwrel sets cannot be a setting: ", name);
        if (kind == DECL_SETTING && in_names(sp->settings, sp->nsettings, name, n))
            return yerr(v, "setting listed twice: ", name);
        if (!known && sp->nknown == EXPORT_DECL_MAX)
            return yerr(v, "too many variables", NULL);
        if (!known)
            sp->known[sp->nknown++] = name;
        if (kind == DECL_REQUIRED)
            sp->required[sp->nrequired++] = name;
        else if (kind == DECL_SETTING)
            sp->settings[sp->nsettings++] = name;
    }
    return 0;
}

/*
 * A plain name: [A-Za-z0-9._-], 1 to 64 characters, starting and ending with a letter or a
 * digit, no "..". What werkzeug's secure_filename() leaves unchanged (the Flask server refuses
 * other versions) and what is safe as one file name on any server.
 */
static int plain_name(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 64 || strstr(v, "..") != NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && ((c != '.' && c != '_' && c != '-') || i == 0 || i == n - 1))
            return 0;
    }
    return 1;
}

/* variables.lists: {list: [fields]} for {{*list}} loops. */
static int spec_lists(struct spec *sp, const yt_node *map)
{
    int error;
    if ((error = yt_expect(map, YT_MAP, "variables.lists")))
        return error;
    for (size_t i = 0; i < map->count; i += 2) {
        const yt_node *k = map->items[i], *f = map->items[i + 1];
        if (sp->nlists == FWREL_EXPORT_LISTS_MAX)
            return yerr(k, "too many lists", NULL);
        if (!valid_name(k->value, strlen(k->value)))
            return yerr(k, "list names are [a-z0-9_]: ", k->value);
        if ((error = yt_expect(f, YT_SEQ, "a list's fields")))
            return error;
        sp->lists[sp->nlists].name = k->value;
        for (size_t j = 0; j < f->count; j++) {
            const yt_node *v = f->items[j];
            if ((error = yt_expect(v, YT_SCALAR, "a field name")))
                return error;
            if (!valid_name(v->value, strlen(v->value)) || strcmp(v->value, "first") == 0 ||
                strcmp(v->value, "last") == 0)
                return yerr(v, "field names are [a-z0-9_], not first or last: ", v->value);
            if (in_names(sp->lists[sp->nlists].fields, sp->lists[sp->nlists].nfields, v->value,
                         strlen(v->value)))
                return yerr(v, "field declared twice: ", v->value);
            if (sp->lists[sp->nlists].nfields == EXPORT_DECL_MAX)
                return yerr(v, "too many fields", NULL);
            sp->lists[sp->nlists].fields[sp->lists[sp->nlists].nfields++] = v->value;
        }
        sp->nlists++;
    }
    return 0;
}

static int spec_parse(struct spec *sp, const uint8_t *text, size_t len)
{
    static const char *const top[] = {"description", "variables", "files", "copies", NULL};
    static const char *const varkeys[] = {"required", "optional", "plain",
                                          "settings", "lists",    NULL};
    static const char *const filekeys[] = {"escape", "executable", NULL};
    const yt_node *n, *v;
    const char *s;
    int error;
    memset(sp, 0, sizeof(*sp));
    if ((error = yt_parse(&sp->tree, text, len)) != 0)
        return error;
    const yt_node *root = sp->tree;
    if ((error = yt_expect(root, YT_MAP, "export.yaml")) || (error = yt_check_keys(root, top)))
        return error;
    if ((n = yt_get(root, "description")) == NULL)
        return fwrel_error_set(FWREL_EFORMAT, "1:1: 'description' is missing");
    if ((error = yt_str(&s, n, EXPORT_DESC_MAX, "description")))
        return error;
    if ((n = yt_get(root, "variables")) != NULL) {
        if ((error = yt_expect(n, YT_MAP, "variables")) || (error = yt_check_keys(n, varkeys)))
            return error;
        /* In kind order: plain names what the others declared. */
        static const char *const keys[] = {"required", "optional", "settings", "plain"};
        for (int kind = DECL_REQUIRED; kind <= DECL_PLAIN; kind++)
            if ((v = yt_get(n, keys[kind])) != NULL && (error = spec_names(sp, v, kind)))
                return error;
        if ((v = yt_get(n, "lists")) != NULL && (error = spec_lists(sp, v)))
            return error;
    }
    if ((n = yt_get(root, "files")) == NULL)
        return fwrel_error_set(FWREL_EFORMAT, "1:1: 'files' is missing");
    if ((error = yt_expect(n, YT_MAP, "files")))
        return error;
    for (size_t i = 0; i < n->count; i += 2) {
        const yt_node *k = n->items[i], *f = n->items[i + 1];
        struct decl_file *d = &sp->files[sp->nfiles];
        if (sp->nfiles == FWREL_EXPORT_FILES_MAX)
            return yerr(k, "too many files", NULL);
        if ((error = yt_expect(f, YT_MAP, "a file entry")) || (error = yt_check_keys(f, filekeys)))
            return error;
        if ((v = yt_get(f, "escape")) == NULL)
            return yerr(f, "'escape' is missing for ", k->value);
        if ((error = yt_expect(v, YT_SCALAR, "escape")))
            return error;
        if (escape_by_name(&d->escape, v->value, strlen(v->value)) != 0)
            return yerr(v, "escape must be json, shell, url or none, not ", v->value);
        if ((v = yt_get(f, "executable")) != NULL &&
            (error = yt_bool(&d->executable, v, "executable")))
            return error;
        if (strcmp(k->value, EXPORT_YAML) == 0)
            return yerr(k, "export.yaml is not a template", NULL);
        if (!printable(k->value))
            return yerr(k, "a file name has a control character", NULL);
        d->path = k->value;
        sp->nfiles++;
    }
    if ((n = yt_get(root, "copies")) != NULL) {
        if ((error = yt_expect(n, YT_MAP, "copies")))
            return error;
        for (size_t i = 0; i < n->count; i += 2) {
            const yt_node *k = n->items[i], *a = n->items[i + 1];
            if (sp->ncopies == EXPORT_COPIES_MAX)
                return yerr(k, "too many copies", NULL);
            if ((error = yt_expect(a, YT_SCALAR, "an artifact")))
                return error;
            static const char *const arts[] = {
                FWREL_EXPORT_ARTIFACT_IMAGE, FWREL_EXPORT_ARTIFACT_MANIFEST,
                FWREL_EXPORT_ARTIFACT_SECURE_FOTA, FWREL_EXPORT_ARTIFACT_MENDER,
                FWREL_EXPORT_ARTIFACT_PLAIN};
            const char *art = NULL;
            for (size_t m = 0; m < sizeof(arts) / sizeof(arts[0]); m++)
                if (strcmp(a->value, arts[m]) == 0)
                    art = arts[m];
            if (art == NULL)
                return yerr(a,
                            "artifact must be image, manifest, secure-fota-manifest, mender or "
                            "plain-image, not ",
                            a->value);
            if (!printable(k->value))
                return yerr(k, "a file name has a control character", NULL);
            sp->copies[sp->ncopies].path = k->value;
            sp->copies[sp->ncopies++].artifact = art;
        }
    }
    return 0;
}

/* ---- reading the template tree without following links ------------------------------------ */

struct tfile {
    char rel[FWREL_EXPORT_PATH_MAX + 1];
    uint8_t *data;
    size_t len;
};

struct tree {
    struct tfile files[FWREL_EXPORT_FILES_MAX];
    size_t nfiles, entries;
    uint8_t *yaml;
    size_t yaml_len;
};

static void tree_free(struct tree *t)
{
    for (size_t i = 0; i < t->nfiles; i++)
        free(t->files[i].data);
    free(t->yaml);
    memset(t, 0, sizeof(*t));
}

/* Read a regular file at dirfd/name, refusing links and other kinds, at most max bytes. */
static int read_at(uint8_t **out, size_t *len, int dirfd, const char *name, const char *rel,
                   size_t max)
{
    uint8_t *buf = NULL;
    int error, fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    *out = NULL;
    *len = 0;
    if (fd < 0) {
        if (errno == ELOOP)
            return fwrel_error_set(FWREL_EFORMAT, "%s: is a symbolic link (not followed)", rel);
        return fwrel_error_set_errno(FWREL_EIO, errno, "%s: cannot open", rel);
    }
    if (fstat(fd, &st) != 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "%s: cannot stat", rel);
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        error = fwrel_error_set(FWREL_EFORMAT, "%s: not a regular file", rel);
        goto done;
    }
    if ((uint64_t)st.st_size > max) {
        error = fwrel_error_set(FWREL_EFORMAT, "%s: %llu bytes, more than the %zu allowed", rel,
                                (unsigned long long)st.st_size, max);
        goto done;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    size_t got = 0;
    for (;;) { /* one byte more than announced, to see a file that grew */
        ssize_t r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "%s: read failed", rel);
            goto done;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > (size_t)st.st_size) {
            error = fwrel_error_set(FWREL_EFORMAT, "%s: changed while read", rel);
            goto done;
        }
    }
    buf[got] = 0;
    *out = buf;
    *len = got;
    buf = NULL;
    error = 0;
done:
    close(fd);
    return error;
}

static int walk(struct tree *t, int dirfd, const char *prefix, int depth)
{
    DIR *d = NULL;
    struct dirent *e;
    char *names[FWREL_EXPORT_FILES_MAX];
    size_t nnames = 0;
    int error = 0;
    int fd = dup(dirfd);
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        error =
            fwrel_error_set_errno(FWREL_EIO, errno, "%s: cannot list", prefix[0] ? prefix : ".");
        if (fd >= 0)
            close(fd);
        return error;
    }
    while ((errno = 0, e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (!printable(e->d_name)) {
            error = fwrel_error_set(FWREL_EFORMAT, "%s: a file name has a control character",
                                    prefix[0] ? prefix : ".");
            goto done;
        }
        if (++t->entries > FWREL_EXPORT_FILES_MAX) {
            error = fwrel_error_set(FWREL_EFORMAT, "more than %d files and directories",
                                    FWREL_EXPORT_FILES_MAX);
            goto done;
        }
        if ((names[nnames] = strdup(e->d_name)) == NULL) {
            error = fwrel_error_set(FWREL_EIO, "out of memory");
            goto done;
        }
        nnames++;
    }
    if (errno != 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot list a directory");
        goto done;
    }
    for (size_t i = 0; i < nnames; i++) {
        char rel[FWREL_EXPORT_PATH_MAX + 1];
        struct stat st;
        int n = snprintf(rel, sizeof(rel), "%s%s", prefix, names[i]);
        if (n < 0 || (size_t)n >= sizeof(rel)) {
            error = fwrel_error_set(FWREL_EFORMAT, "%s...: path over %d bytes", prefix,
                                    FWREL_EXPORT_PATH_MAX);
            goto done;
        }
        if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "%s: cannot stat", rel);
            goto done;
        }
        if (S_ISLNK(st.st_mode)) {
            error = fwrel_error_set(FWREL_EFORMAT, "%s: is a symbolic link (not followed)", rel);
            goto done;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth + 1 >= EXPORT_DEPTH_MAX) {
                error = fwrel_error_set(FWREL_EFORMAT, "%s: directories nest deeper than %d", rel,
                                        EXPORT_DEPTH_MAX);
                goto done;
            }
            int sub = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                error = errno == ELOOP || errno == ENOTDIR
                            ? fwrel_error_set(FWREL_EFORMAT,
                                              "%s: is a symbolic link (not followed)", rel)
                            : fwrel_error_set_errno(FWREL_EIO, errno, "%s: cannot open", rel);
                goto done;
            }
            char sp[FWREL_EXPORT_PATH_MAX + 2];
            snprintf(sp, sizeof(sp), "%s/", rel);
            error = walk(t, sub, sp, depth + 1);
            close(sub);
            if (error)
                goto done;
            continue;
        }
        if (!S_ISREG(st.st_mode)) {
            error = fwrel_error_set(FWREL_EFORMAT, "%s: not a regular file", rel);
            goto done;
        }
        if (depth == 0 && strcmp(names[i], EXPORT_YAML) == 0) {
            error =
                read_at(&t->yaml, &t->yaml_len, dirfd, names[i], rel, FWREL_EXPORT_TEMPLATE_MAX);
        } else {
            struct tfile *f = &t->files[t->nfiles];
            memcpy(f->rel, rel, (size_t)n + 1);
            error = read_at(&f->data, &f->len, dirfd, names[i], rel, FWREL_EXPORT_TEMPLATE_MAX);
            if (error == 0)
                t->nfiles++;
        }
        if (error)
            goto done;
    }
    error = 0;
done:
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    closedir(d);
    return error;
}

/* ---- rendering an export ------------------------------------------------------------------ */

static int valid_export_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || strstr(s, "..") != NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 (i > 0 && (c == '.' || c == '_' || c == '-'));
        if (!ok)
            return 0;
    }
    return 1;
}

/* A rendered output path: relative, no empty, "." or ".." component, no backslash. */
static int check_path(const char *p, size_t n, const char *where)
{
    if (n == 0 || n > FWREL_EXPORT_PATH_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "%s: output path is empty or over %d bytes", where,
                               FWREL_EXPORT_PATH_MAX);
    if (p[0] == '/')
        return fwrel_error_set(FWREL_EFORMAT, "%s: output path '%s' is absolute", where, p);
    if (memchr(p, '\\', n) != NULL)
        return fwrel_error_set(FWREL_EFORMAT, "%s: output path '%s' has a backslash", where, p);
    const char *c = p;
    while (c <= p + n) {
        const char *end = memchr(c, '/', (size_t)(p + n - c));
        size_t cl = end ? (size_t)(end - c) : (size_t)(p + n - c);
        if (cl == 0 || (cl == 1 && c[0] == '.') || (cl == 2 && c[0] == '.' && c[1] == '.'))
            return fwrel_error_set(FWREL_EFORMAT,
                                   "%s: output path '%s' leaves the export directory or has an "
                                   "empty component",
                                   where, p);
        if (end == NULL)
            break;
        c = end + 1;
    }
    return 0;
}

static int render_path(char **out, const char *tmpl, const struct scope *s)
{
    struct buf b;
    int error =
        render_alloc(&b, (const uint8_t *)tmpl, strlen(tmpl), ESC_PATH, s, FWREL_EXPORT_PATH_MAX);
    *out = NULL;
    if (error) {
        char where[FWREL_EXPORT_PATH_MAX + 16];
        snprintf(where, sizeof(where), "%s: file name", tmpl);
        const char *m = fwrel_error_last()->message;
        if (strncmp(m, "line 1: ", 8) == 0) {
            char msg[FWREL_ERROR_MSG_MAX];
            snprintf(msg, sizeof(msg), "%s", m + 8);
            return fwrel_error_set(fwrel_error_last()->code, "%s: %s", where, msg);
        }
        return fwrel_error_prefix("%s", where);
    }
    if ((error = check_path((const char *)b.p, b.len, tmpl)) != 0) {
        free(b.p);
        return error;
    }
    *out = (char *)b.p;
    return 0;
}

void fwrel_export_files_free(fwrel_export_file *files, size_t count)
{
    if (files == NULL)
        return;
    for (size_t i = 0; i < count; i++) {
        free(files[i].path);
        free(files[i].data);
    }
    free(files);
}

static int cmp_tfiles(const void *a, const void *b)
{
    return strcmp(((const struct tfile *)a)->rel, ((const struct tfile *)b)->rel);
}

static int cmp_files(const void *a, const void *b)
{
    return strcmp(((const fwrel_export_file *)a)->path, ((const fwrel_export_file *)b)->path);
}

/*
 * base_host, base_port and base_path from an http(s) base URL: "https://h:8070/a/b" gives "h",
 * "8070", "/a/b"; without a port, 443 (https) or 80 (http); without a path, "". Another URL
 * sets none of them.
 */
static int derive_base(fwrel_export_vars *d, const char *url)
{
    const char *p;
    const char *port = NULL;
    char host[FWREL_EXPORT_VALUE_MAX + 1], num[8];
    size_t hl, pl = 0;
    int error;
    if (strncmp(url, "https://", 8) == 0)
        p = url + 8, port = "443";
    else if (strncmp(url, "http://", 7) == 0)
        p = url + 7, port = "80";
    else
        return 0;
    const char *slash = strchr(p, '/');
    const char *end = slash ? slash : p + strlen(p);
    const char *colon = NULL;
    if (p[0] == '[') { /* [IPv6]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            return 0;
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
    }
    hl = (size_t)((colon ? colon : end) - p);
    if (colon != NULL) {
        pl = (size_t)(end - colon - 1);
        if (pl == 0 || pl > 5)
            return 0;
        for (size_t i = 0; i < pl; i++)
            if (colon[1 + i] < '0' || colon[1 + i] > '9')
                return 0;
        memcpy(num, colon + 1, pl);
        num[pl] = 0;
        port = num;
    }
    if (hl == 0)
        return 0;
    memcpy(host, p, hl);
    host[hl] = 0;
    if ((error = fwrel_export_vars_set(d, "base_host", host)) != 0 ||
        (error = fwrel_export_vars_set(d, "base_port", port)) != 0 ||
        (error = fwrel_export_vars_set(d, "base_path", slash ? slash : "")) != 0)
        return error;
    return 0;
}

/* Check mode: every declared variable "0" (a value that fits a JSON number or string, a URL
 * and a file name), every list one row of "0"s. */
static int dummy_vars(fwrel_export_vars **out, const struct spec *sp)
{
    fwrel_export_vars *d = NULL, *row = NULL;
    int error;
    if ((error = fwrel_export_vars_new(&d)) != 0)
        return error;
    for (size_t i = 0; error == 0 && i < sp->nknown; i++)
        error = fwrel_export_vars_set(d, sp->known[i], "0");
    for (size_t i = 0; error == 0 && i < sp->nlists; i++) {
        if ((error = fwrel_export_vars_new(&row)) != 0)
            break;
        for (size_t k = 0; error == 0 && k < sp->lists[i].nfields; k++)
            error = fwrel_export_vars_set(row, sp->lists[i].fields[k], "0");
        if (error == 0 && (error = fwrel_export_vars_add_row(d, sp->lists[i].name, row)) == 0)
            row = NULL;
    }
    fwrel_export_vars_free(row);
    if (error) {
        fwrel_export_vars_free(d);
        return error;
    }
    *out = d;
    return 0;
}

/* Render; with vars NULL, check the export with dummy_vars() and return its description. */
static int render_export(fwrel_export_file **files, size_t *count, char **description,
                         const char *root, const char *name, const fwrel_export_vars *vars,
                         const fwrel_export_vars *settings, unsigned *keys)
{
    struct tree t;
    struct spec sp;
    fwrel_export_vars *dummy = NULL, *derived = NULL;
    fwrel_export_file *out = NULL;
    size_t n = 0, total = 0; /* filled, allocated (zeroed) entries of out */
    int error, rootfd = -1, dirfd = -1;
    memset(&t, 0, sizeof(t));
    memset(&sp, 0, sizeof(sp));
    *files = NULL;
    *count = 0;
    if (!valid_export_name(name))
        return fwrel_error_set(FWREL_EUSAGE,
                               "export name must be [a-z0-9][a-z0-9._-]{0,63} without '..'");
    if ((rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "template root %s", root);
        goto done;
    }
    if ((dirfd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        error =
            errno == ELOOP || errno == ENOTDIR
                ? fwrel_error_set(FWREL_EFORMAT,
                                  "export '%s' is not a directory (links are not followed)", name)
                : fwrel_error_set_errno(FWREL_EIO, errno, "export '%s'", name);
        goto done;
    }
    if ((error = walk(&t, dirfd, "", 0)) != 0)
        goto done;
    /* Templates in path order, so that the first error reported does not depend on readdir. */
    qsort(t.files, t.nfiles, sizeof(t.files[0]), cmp_tfiles);
    if (t.yaml == NULL) {
        error = fwrel_error_set(FWREL_EFORMAT, "export '%s' has no export.yaml", name);
        goto done;
    }
    if ((error = spec_parse(&sp, t.yaml, t.yaml_len)) != 0) {
        char msg[FWREL_ERROR_MSG_MAX];
        snprintf(msg, sizeof(msg), "%s", fwrel_error_last()->message);
        error = fwrel_error_set(error, EXPORT_YAML ":%s", msg);
        goto done;
    }
    /* What the release must sign for this export: a Mender artifact, the served file. */
    for (size_t i = 0; keys != NULL && i < sp.ncopies; i++)
        *keys |= strcmp(sp.copies[i].artifact, FWREL_EXPORT_ARTIFACT_MENDER) == 0
                     ? FWREL_EXPORT_NEEDS_MENDER_KEY
                 : strcmp(sp.copies[i].artifact, FWREL_EXPORT_ARTIFACT_PLAIN) == 0
                     ? FWREL_EXPORT_NEEDS_PLAIN
                     : 0;
    for (size_t i = 0; keys != NULL && i < sp.nknown; i++)
        if (strcmp(sp.known[i], "aws_signature") == 0)
            *keys |= FWREL_EXPORT_NEEDS_AWS_OTA_KEY;
    if (vars == NULL) {
        if ((error = dummy_vars(&dummy, &sp)) != 0)
            goto done;
        vars = dummy;
        if ((*description = strdup(yt_get(sp.tree, "description")->value)) == NULL) {
            error = fwrel_error_set(FWREL_EIO, "out of memory");
            goto done;
        }
    }
    /* The policy's settings for this export: each one export.yaml declares. */
    for (size_t i = 0; settings != NULL && i < settings->count; i++)
        if (!in_names(sp.settings, sp.nsettings, settings->names[i], strlen(settings->names[i]))) {
            char list[256] = "";
            for (size_t k = 0; k < sp.nsettings; k++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", k ? ", " : "",
                         sp.settings[k]);
            error =
                fwrel_error_set(FWREL_EFORMAT, "export '%s' has no setting '%s' (%s%s)", name,
                                settings->names[i], sp.nsettings ? "its settings: " : "none", list);
            goto done;
        }
    if ((error = fwrel_export_vars_new(&derived)) != 0)
        goto done;
    struct scope s = {.vars = vars,
                      .over = {derived, settings},
                      .known = sp.known,
                      .nknown = sp.nknown,
                      .sp = &sp};
    const char *base = scope_lookup(&s, "base_url", 8);
    if (base != NULL && (error = derive_base(derived, base)) != 0)
        goto done;
    for (size_t i = 0; i < sp.nrequired; i++)
        if (scope_lookup(&s, sp.required[i], strlen(sp.required[i])) == NULL) {
            error = fwrel_error_set(FWREL_EFORMAT, "export '%s' needs variable '%s'", name,
                                    sp.required[i]);
            goto done;
        }
    for (size_t i = 0; i < sp.nplain; i++) {
        const char *value = scope_lookup(&s, sp.plain[i], strlen(sp.plain[i]));
        if (value != NULL && !plain_name(value)) {
            char shown[48];
            show_tag(shown, (const uint8_t *)value, strlen(value));
            error = fwrel_error_set(FWREL_EFORMAT,
                                    "export '%s' needs a plain name in '%s' ([A-Za-z0-9._-], "
                                    "starting and ending with a letter or digit): '%s'",
                                    name, sp.plain[i], shown);
            goto done;
        }
    }
    /* Every template file is declared, and every declared file exists. */
    for (size_t i = 0; i < t.nfiles; i++) {
        size_t k = 0;
        while (k < sp.nfiles && strcmp(sp.files[k].path, t.files[i].rel) != 0)
            k++;
        if (k == sp.nfiles) {
            error = fwrel_error_set(FWREL_EFORMAT, "%s: not declared in export.yaml's files",
                                    t.files[i].rel);
            goto done;
        }
        sp.files[k].seen = 1;
    }
    for (size_t k = 0; k < sp.nfiles; k++)
        if (!sp.files[k].seen) {
            error = fwrel_error_set(FWREL_EFORMAT, "%s: declared in export.yaml but missing",
                                    sp.files[k].path);
            goto done;
        }
    if ((out = calloc(t.nfiles + sp.ncopies + 1, sizeof(*out))) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    total = t.nfiles + sp.ncopies;
    for (size_t i = 0; i < t.nfiles; i++, n++) {
        const struct decl_file *d = NULL;
        for (size_t k = 0; k < sp.nfiles; k++)
            if (strcmp(sp.files[k].path, t.files[i].rel) == 0)
                d = &sp.files[k];
        struct buf b;
        if ((error = render_path(&out[n].path, t.files[i].rel, &s)) != 0)
            goto done;
        if ((error = render_alloc(&b, t.files[i].data, t.files[i].len, d->escape, &s,
                                  FWREL_EXPORT_OUTPUT_MAX)) != 0) {
            error = rewhere(t.files[i].rel);
            goto done;
        }
        out[n].data = b.p;
        out[n].len = b.len;
        out[n].executable = d->executable;
        if (d->escape == FWREL_EXPORT_JSON) {
            json_error_t je;
            json_t *j = json_loadb((const char *)b.p, b.len, JSON_REJECT_DUPLICATES, &je);
            if (j == NULL) {
                for (char *c = je.text; *c; c++) /* jansson may quote the bad token */
                    if ((uint8_t)*c < 0x20 || *c == 0x7f)
                        *c = '?';
                error = fwrel_error_set(FWREL_EFORMAT, "%s:%d: rendered file is not JSON: %s",
                                        t.files[i].rel, je.line, je.text);
                goto done;
            }
            json_decref(j);
        }
    }
    for (size_t i = 0; i < sp.ncopies; i++, n++) {
        if ((error = render_path(&out[n].path, sp.copies[i].path, &s)) != 0) {
            error = fwrel_error_prefix(EXPORT_YAML ": copies");
            goto done;
        }
        out[n].artifact = sp.copies[i].artifact;
    }
    qsort(out, n, sizeof(*out), cmp_files);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < n; k++) {
            size_t l = strlen(out[i].path);
            /* Equal paths, or a file that is also a directory ("a" and "a/b"). */
            if (i != k && strncmp(out[i].path, out[k].path, l) == 0 &&
                (out[k].path[l] == 0 || out[k].path[l] == '/')) {
                error = fwrel_error_set(FWREL_EFORMAT, "output path '%s' is produced twice",
                                        out[i].path);
                goto done;
            }
        }
    *files = out;
    *count = n;
    out = NULL;
    error = 0;
done:
    fwrel_export_files_free(out, total); /* also the entry a failure left half made */
    fwrel_export_vars_free(dummy);
    fwrel_export_vars_free(derived);
    spec_free(&sp);
    tree_free(&t);
    if (dirfd >= 0)
        close(dirfd);
    if (rootfd >= 0)
        close(rootfd);
    return error;
}

int fwrel_export_render(fwrel_export_file **files, size_t *count, const char *root,
                        const char *name, const fwrel_export_vars *vars)
{
    FWREL_ASSERT_ARG(files != NULL && count != NULL && root != NULL && name != NULL &&
                     vars != NULL);
    return render_export(files, count, NULL, root, name, vars, NULL, NULL);
}

int fwrel_export_render_with(fwrel_export_file **files, size_t *count, const char *root,
                             const char *name, const fwrel_export_vars *vars,
                             const fwrel_export_vars *settings)
{
    FWREL_ASSERT_ARG(files != NULL && count != NULL && root != NULL && name != NULL &&
                     vars != NULL);
    return render_export(files, count, NULL, root, name, vars, settings, NULL);
}

int fwrel_export_check(char **description, const char *root, const char *name)
{
    return fwrel_export_check_with(description, root, name, NULL);
}

static int check_with(char **description, const char *root, const char *name,
                      const fwrel_export_vars *settings, unsigned *keys)
{
    fwrel_export_file *files = NULL;
    size_t count = 0;
    *description = NULL;
    int error = render_export(&files, &count, description, root, name, NULL, settings, keys);
    fwrel_export_files_free(files, count);
    if (error) {
        free(*description);
        *description = NULL;
    }
    return error;
}

int fwrel_export_check_with(char **description, const char *root, const char *name,
                            const fwrel_export_vars *settings)
{
    FWREL_ASSERT_ARG(description != NULL && root != NULL && name != NULL);
    return check_with(description, root, name, settings, NULL);
}

int fwrel_export_policy_settings(fwrel_export_vars **out, const fwrel_policy *p, size_t i)
{
    FWREL_ASSERT_ARG(out != NULL && p != NULL);
    fwrel_export_vars *v = NULL;
    int error;
    *out = NULL;
    if (i >= p->nexports)
        return fwrel_error_set(FWREL_EUSAGE, "the policy has no export %zu", i);
    if ((error = fwrel_export_vars_new(&v)) != 0)
        return error;
    for (size_t k = 0; error == 0 && k < p->nexport_settings[i]; k++)
        error =
            fwrel_export_vars_set(v, p->export_settings[i][k].name, p->export_settings[i][k].value);
    if (error) {
        fwrel_export_vars_free(v);
        return fwrel_error_prefix("export %s", p->exports[i]);
    }
    *out = v;
    return 0;
}

int fwrel_export_plain_allowed(const fwrel_policy *p, size_t i)
{
    FWREL_ASSERT_ARG(p != NULL);
    for (size_t k = 0; i < p->nexports && k < p->nexport_settings[i]; k++)
        if (strcmp(p->export_settings[i][k].name, "plain_image") == 0)
            return strcmp(p->export_settings[i][k].value, "true") == 0;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the exports under root (directories with an export.yaml), sorted, ", "-joined. */
static int known_exports(char *out, size_t size, const char *root)
{
    DIR *d = opendir(root);
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    out[0] = '\0';
    if (d == NULL)
        return fwrel_error_set_errno(FWREL_EIO, errno, "export templates %s", root);
    while ((e = readdir(d)) != NULL && n < sizeof(names) / sizeof(names[0])) {
        char path[PATH_MAX];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s/export.yaml", root, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (names[n] = strdup(e->d_name)) != NULL)
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_str);
    for (size_t i = 0; i < n; i++) {
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? ", " : "", names[i]);
        free(names[i]);
    }
    return 0;
}

int fwrel_export_check_policy(const fwrel_policy *p, const char *root)
{
    FWREL_ASSERT_ARG(p != NULL && root != NULL);
    int error = 0;
    for (size_t i = 0; error == 0 && i < p->nexports; i++) {
        fwrel_export_vars *set = NULL;
        char *description = NULL;
        struct stat st;
        char path[4096];
        /* A name that is no export is the policy's mistake (exports: [secure_fota]): say which
         * names there are. */
        snprintf(path, sizeof(path), "%s/%s/export.yaml", root, p->exports[i]);
        if (strchr(p->exports[i], '/') != NULL || stat(path, &st) != 0) {
            char known[1024];
            if ((error = known_exports(known, sizeof(known), root)) != 0)
                return error;
            return fwrel_error_set(FWREL_EFORMAT,
                                   "export '%s': no such export in %.300s (known: %s)",
                                   p->exports[i], root, known[0] ? known : "none");
        }
        unsigned keys = 0;
        if ((error = fwrel_export_policy_settings(&set, p, i)) == 0 &&
            (error = check_with(&description, root, p->exports[i], set, &keys)) != 0)
            fwrel_error_prefix("export %s", p->exports[i]);
        /* Its signing key is the policy's, of its own purpose: missing, the release stops
         * before any key is opened (docs/exports.md section 0). */
        if (error == 0 && (keys & FWREL_EXPORT_NEEDS_MENDER_KEY) && !p->has_mender_key)
            error = fwrel_error_set(FWREL_EFORMAT,
                                    "export '%s' signs a Mender artifact: the policy needs "
                                    "mender: {key: NAME} (a key of purpose mender-sign)",
                                    p->exports[i]);
        if (error == 0 && (keys & FWREL_EXPORT_NEEDS_AWS_OTA_KEY) && !p->has_aws_ota_key)
            error = fwrel_error_set(FWREL_EFORMAT,
                                    "export '%s' signs the served file: the policy needs "
                                    "aws_ota: {key: NAME} (a key of purpose aws-ota-sign)",
                                    p->exports[i]);
        /* They sign in the release with software keys (an HSM key would fail there). */
        for (int k = 0; error == 0 && k < 2; k++) {
            unsigned need = k == 0 ? FWREL_EXPORT_NEEDS_MENDER_KEY : FWREL_EXPORT_NEEDS_AWS_OTA_KEY;
            int has = k == 0 ? p->has_mender_key : p->has_aws_ota_key;
            size_t key = k == 0 ? p->mender_key : p->aws_ota_key;
            if ((keys & need) && has && p->keys[key].hsm != NULL)
                error = fwrel_error_set(FWREL_EFORMAT,
                                        "export '%s': the %s key must be a software key, not "
                                        "an HSM key",
                                        p->exports[i], k == 0 ? "mender" : "aws_ota");
        }
        /* A plain image only where the policy says so, per export. */
        if (error == 0 && (keys & FWREL_EXPORT_NEEDS_PLAIN) && !fwrel_export_plain_allowed(p, i))
            error = fwrel_error_set(FWREL_EFORMAT,
                                    "export '%s' copies the plain image: the policy allows it "
                                    "only with the setting plain_image: true",
                                    p->exports[i]);
        free(description);
        fwrel_export_vars_free(set);
    }
    return error;
}

/* The release's Mender artifact (docs/exports.md, mender): named <product>-<version>, for the
 * device types of the targets list, the payload <product>-<version>.bin. */
int fwrel_export_mender(uint8_t **out, size_t *len, const fwrel_export_vars *vars,
                        const fwrel_export_vars *settings, const uint8_t *payload, size_t plen,
                        const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(out != NULL && len != NULL && vars != NULL && key != NULL);
    const char *product = fwrel_export_vars_get(vars, "product");
    const char *version = fwrel_export_vars_get(vars, "version");
    const struct export_list *t = vars_list(vars, "targets", 7);
    const char *types[FWREL_MENDER_TYPES_MAX];
    char name[2 * FWREL_EXPORT_VALUE_MAX + 8], file[2 * FWREL_EXPORT_VALUE_MAX + 8];
    *out = NULL;
    *len = 0;
    if (product == NULL || version == NULL || t == NULL || t->nrows == 0)
        return fwrel_error_set(FWREL_EUSAGE, "the Mender artifact needs product, version and "
                                             "the targets list");
    if (t->nrows > FWREL_MENDER_TYPES_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "a Mender artifact has at most %d device types",
                               FWREL_MENDER_TYPES_MAX);
    for (size_t i = 0; i < t->nrows; i++)
        types[i] = fwrel_export_vars_get(t->rows[i], "device_type");
    snprintf(name, sizeof(name), "%s-%s", product, version);
    snprintf(file, sizeof(file), "%s-%s.bin", product, version);
    const char *type = fwrel_export_vars_get(settings, "payload_type");
    const char *sw = fwrel_export_vars_get(settings, "software_name");
    fwrel_mender_info info = {
        .artifact_name = name,
        .device_types = types,
        .ndevice_types = t->nrows,
        .payload_type = type != NULL ? type : "rootfs-image",
        .software_name = sw != NULL ? sw : product,
        .software_version = version,
        .file_name = file,
    };
    return fwrel_mender_write(out, len, &info, payload, plen, key);
}
