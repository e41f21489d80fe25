/* release.c - the release record and SemVer precedence (release.h, docs/bundle.md). */
#include "fwrel/release.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util.h"

/* --- SemVer 2.0 ---------------------------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* Parse "MAJOR.MINOR.PATCH[-PRE][+BUILD]"; pre points into s (or NULL), pre_len its length. */
static int semver_parse(const char *s, uint64_t num[3], const char **pre, size_t *pre_len)
{
    const char *p = s;
    if (*p == 'v')
        p++;
    for (int i = 0; i < 3; i++) {
        if (!is_digit(*p) || (p[0] == '0' && is_digit(p[1])))
            return -1;
        num[i] = 0;
        while (is_digit(*p)) {
            if (num[i] > (UINT64_MAX - 9) / 10)
                return -1;
            num[i] = num[i] * 10 + (uint64_t)(*p++ - '0');
        }
        if (i < 2 && *p++ != '.')
            return -1;
    }
    *pre = NULL;
    *pre_len = 0;
    if (*p == '-') {
        *pre = ++p;
        /* Dot-separated non-empty identifiers; numeric ones without leading zeros. */
        const char *id = p;
        for (;; p++) {
            if (*p == '.' || *p == '+' || *p == '\0') {
                size_t n = (size_t)(p - id);
                int numeric = 1;
                for (size_t k = 0; k < n; k++)
                    numeric &= is_digit(id[k]);
                if (n == 0 || (numeric && n > 1 && id[0] == '0'))
                    return -1;
                if (*p != '.')
                    break;
                id = p + 1;
            } else if (!ident_char(*p)) {
                return -1;
            }
        }
        *pre_len = (size_t)(p - *pre);
    }
    if (*p == '+') {
        const char *id = ++p;
        for (;; p++) {
            if (*p == '.' || *p == '\0') {
                if (p == id)
                    return -1;
                if (*p == '\0')
                    break;
                id = p + 1;
            } else if (!ident_char(*p)) {
                return -1;
            }
        }
    }
    return *p == '\0' ? 0 : -1;
}

/* Compare two pre-release identifier lists (SemVer 2.0 section 11). */
static int pre_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i = 0, j = 0;
    while (i < alen && j < blen) {
        size_t ie = i, je = j;
        while (ie < alen && a[ie] != '.')
            ie++;
        while (je < blen && b[je] != '.')
            je++;
        int an = 1, bn = 1;
        for (size_t k = i; k < ie; k++)
            an &= is_digit(a[k]);
        for (size_t k = j; k < je; k++)
            bn &= is_digit(b[k]);
        size_t la = ie - i, lb = je - j;
        int c;
        if (an && bn)
            c = la != lb ? (la < lb ? -1 : 1) : memcmp(a + i, b + j, la);
        else if (an != bn)
            c = an ? -1 : 1; /* numeric identifiers have lower precedence */
        else {
            c = memcmp(a + i, b + j, la < lb ? la : lb);
            if (c == 0 && la != lb)
                c = la < lb ? -1 : 1;
        }
        if (c != 0)
            return c < 0 ? -1 : 1;
        i = ie < alen ? ie + 1 : ie;
        j = je < blen ? je + 1 : je;
        if ((i >= alen) != (j >= blen))
            return i >= alen ? -1 : 1;
        if (ie >= alen && je >= blen)
            break;
    }
    return 0;
}

int fwrel_semver_cmp(int *cmp, const char *a, const char *b)
{
    FWREL_ASSERT_ARG(cmp != NULL && a != NULL && b != NULL);
    uint64_t na[3], nb[3];
    const char *pa, *pb;
    size_t la, lb;
    if (semver_parse(a, na, &pa, &la) != 0)
        return fwrel_error_set(FWREL_EFORMAT, "version '%.32s' is not SemVer 2.0", a);
    if (semver_parse(b, nb, &pb, &lb) != 0)
        return fwrel_error_set(FWREL_EFORMAT, "version '%.32s' is not SemVer 2.0", b);
    *cmp = 0;
    for (int i = 0; i < 3 && *cmp == 0; i++)
        if (na[i] != nb[i])
            *cmp = na[i] < nb[i] ? -1 : 1;
    if (*cmp == 0 && (pa != NULL || pb != NULL))
        *cmp = pa == NULL ? 1 : pb == NULL ? -1 : pre_cmp(pa, la, pb, lb);
    return 0;
}

/* --- the record ---------------------------------------------------------------------- */

static json_t *file_json(const fwrel_release_file *f)
{
    json_t *o = json_pack("{s:s, s:I}", "sha256", f->sha256, "size", (json_int_t)f->size);
    if (f->name[0] != '\0')
        json_object_set_new(o, "name", json_string(f->name));
    return o;
}

static json_t *str_array(const char (*v)[65], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static int hex_ok(const char *s, size_t n, int upper)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(is_digit(s[i]) || (upper ? (s[i] >= 'A' && s[i] <= 'F') : (s[i] >= 'a' && s[i] <= 'f'))))
            return 0;
    return 1;
}

/*
 * The numeric limits of the record, one table for the encoder and the decoder: a value the
 * decoder would refuse is never written (a counter of 2^32 written once would make every later
 * read of the history fail). Counters and secure_version are 32-bit on the device side.
 */
enum field {
    F_COUNTER,
    F_SECURE_VERSION,
    F_CREATED,
    F_EXPIRES,
    F_FILE_SIZE,
    F_THRESHOLD,
    F_REQUIRED
};

static const struct limit {
    enum field field;
    const char *name;
    uint64_t max;
} limits[] = {
    {F_COUNTER, "counter", UINT32_MAX},
    {F_SECURE_VERSION, "secure_version", UINT32_MAX},
    {F_CREATED, "created", (uint64_t)1 << 40},
    {F_EXPIRES, "expires", (uint64_t)1 << 40},
    {F_FILE_SIZE, "size", (uint64_t)1 << 40},
    {F_THRESHOLD, "manifest_threshold", FWREL_RELEASE_MAX_KEYS},
    {F_REQUIRED, "required", 16},
};

static uint64_t limit_of(enum field f)
{
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
        if (limits[i].field == f)
            return limits[i].max;
    return 0;
}

/* The largest value the record holds in a field (for file sizes: the largest of the four). */
static uint64_t field_value(const fwrel_release *r, enum field f)
{
    switch (f) {
    case F_COUNTER:
        return r->counter;
    case F_SECURE_VERSION:
        return r->secure_version;
    case F_CREATED:
        return r->created;
    case F_EXPIRES:
        return r->expires;
    case F_FILE_SIZE: {
        uint64_t m = r->input.size;
        const fwrel_release_file *f4[] = {&r->signed_image, &r->image, &r->manifest};
        for (size_t i = 0; i < 3; i++)
            if (f4[i]->size > m)
                m = f4[i]->size;
        return m;
    }
    case F_THRESHOLD:
        return r->manifest_threshold;
    case F_REQUIRED:
        return r->approvals_required;
    }
    return 0;
}

/* Every string NUL-terminated inside its array, as the decoder's lengths allow. */
static int strings_ok(const fwrel_release *r)
{
    const struct {
        const char *s;
        size_t cap;
        const char *name;
    } v[] = {
        {r->product, sizeof(r->product), "product"},
        {r->version, sizeof(r->version), "version"},
        {r->channel, sizeof(r->channel), "channel"},
        {r->chip, sizeof(r->chip), "chip"},
        {r->tool_version, sizeof(r->tool_version), "tool_version"},
        {r->image_key, sizeof(r->image_key), "image_encryption"},
        {r->input.name, sizeof(r->input.name), "input.name"},
        {r->signed_image.name, sizeof(r->signed_image.name), "signed_image.name"},
        {r->image.name, sizeof(r->image.name), "image.name"},
        {r->manifest.name, sizeof(r->manifest.name), "manifest.name"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (strnlen(v[i].s, v[i].cap) == v[i].cap)
            return fwrel_error_set(FWREL_EFORMAT, "release record: %s is too long", v[i].name);
    for (size_t i = 0; i < r->ndevice_types; i++) {
        size_t n = strnlen(r->device_types[i], sizeof(r->device_types[i]));
        if (n == 0 || n == sizeof(r->device_types[i]))
            return fwrel_error_set(FWREL_EFORMAT, "release record: bad device type");
    }
    return 0;
}

static int decode_fields(fwrel_release *r, const uint8_t *json, size_t len);

int fwrel_release_encode(char **out, size_t *len, const fwrel_release *r)
{
    FWREL_ASSERT_ARG(out != NULL && len != NULL && r != NULL);
    json_t *o, *keys, *appr;
    char *t = NULL;
    int error;

    *out = NULL;
    if (!hex_ok(r->policy_sha256, 64, 0) || !hex_ok(r->input.sha256, 64, 0) ||
        !hex_ok(r->signed_image.sha256, 64, 0) || !hex_ok(r->image.sha256, 64, 0) ||
        !hex_ok(r->manifest.sha256, 64, 0) || r->ndevice_types == 0 || r->ndevice_types > 8 ||
        r->nsign_keys > 3 || r->nmanifest_signers > FWREL_RELEASE_MAX_KEYS ||
        r->nrecipients > FWREL_RELEASE_MAX_KEYS || r->napprovers > 16 || r->counter == 0 ||
        r->image.name[0] == '\0' || r->manifest.name[0] == '\0')
        return fwrel_error_set(FWREL_EFORMAT, "release record: a field is out of range");
    /* The decoder's limits, from the same table: what is written can be read back. */
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        uint64_t v = field_value(r, limits[i].field);
        if (v > limits[i].max)
            return fwrel_error_set(FWREL_EFORMAT, "release record: %s %llu is above its limit %llu",
                                   limits[i].name, (unsigned long long)v,
                                   (unsigned long long)limits[i].max);
    }
    if ((error = strings_ok(r)) != 0)
        return error;
    keys = json_pack("{s:o, s:o, s:I, s:o}", "secure_boot",
                     str_array(r->sign_keys, r->nsign_keys), "manifest_signers",
                     str_array(r->manifest_signers, r->nmanifest_signers), "manifest_threshold",
                     (json_int_t)r->manifest_threshold, "manifest_recipients",
                     str_array(r->recipients, r->nrecipients));
    if (r->image_key[0] != '\0')
        json_object_set_new(keys, "image_encryption", json_string(r->image_key));
    appr = json_array();
    for (size_t i = 0; i < r->napprovers; i++)
        json_array_append_new(appr, json_string(r->approvers[i]));
    json_t *types = json_array();
    for (size_t i = 0; i < r->ndevice_types; i++)
        json_array_append_new(types, json_string(r->device_types[i]));
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:s}", "format",
                  FWREL_RELEASE_FORMAT, "product", r->product, "version", r->version, "channel",
                  r->channel, "chip", r->chip, "device_types", types, "counter",
                  (json_int_t)r->counter, "secure_version", (json_int_t)r->secure_version,
                  "created", (json_int_t)r->created, "expires", (json_int_t)r->expires,
                  "policy_sha256", r->policy_sha256);
    if (o == NULL) {
        json_decref(keys);
        json_decref(appr);
        return fwrel_error_set(FWREL_EFORMAT, "release record: a string is not UTF-8");
    }
    json_object_set_new(o, "input", file_json(&r->input));
    json_object_set_new(o, "signed_image", file_json(&r->signed_image));
    json_object_set_new(o, "image", file_json(&r->image));
    json_object_set_new(o, "manifest", file_json(&r->manifest));
    json_object_set_new(o, "encrypted", json_boolean(r->encrypted));
    json_object_set_new(o, "keys", keys);
    json_object_set_new(o, "approvals", json_pack("{s:o, s:I}", "approvers", appr, "required",
                                                  (json_int_t)r->approvals_required));
    json_object_set_new(o, "tool_version", json_string(r->tool_version));
    size_t n = 0; /* with the newline */
    error = fwrel_json_text(&t, &n, o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    if (error != 0)
        return error;
    /* The decoder reads it back (every check but the canonical form, which holds by
     * construction): a record it would refuse is never written. */
    fwrel_release *back = malloc(sizeof(*back));
    if (back == NULL) {
        free(t);
        return fwrel_error_set(FWREL_EIO, "out of memory");
    }
    error = decode_fields(back, (const uint8_t *)t, n);
    free(back);
    if (error) {
        free(t);
        return error;
    }
    *out = t;
    *len = n;
    return 0;
}

/* Strict readers: the object holds exactly the named keys. */
static int only_keys(json_t *o, const char *const *keys, const char *what)
{
    const char *k;
    json_t *v;
    if (!json_is_object(o))
        return fwrel_error_set(FWREL_EFORMAT, "release record: %s is not an object", what);
    json_object_foreach(o, k, v) {
        size_t i = 0;
        while (keys[i] != NULL && strcmp(keys[i], k) != 0)
            i++;
        if (keys[i] == NULL)
            return fwrel_error_set(FWREL_EFORMAT, "release record: unknown field %s.%.64s", what, k);
    }
    return 0;
}

static int get_s(char *out, size_t cap, json_t *o, const char *key, int optional)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL && optional) {
        out[0] = '\0';
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) >= cap ||
        strlen(json_string_value(v)) != json_string_length(v))
        return fwrel_error_set(FWREL_EFORMAT, "release record: bad or missing \"%s\"", key);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_u(uint64_t *out, json_t *o, const char *key, uint64_t max)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return fwrel_error_set(FWREL_EFORMAT, "release record: bad or missing \"%s\"", key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_file(fwrel_release_file *f, json_t *o, const char *key)
{
    static const char *const keys[] = {"name", "sha256", "size", NULL};
    json_t *v = json_object_get(o, key);
    int error;
    if ((error = only_keys(v, keys, key)) != 0 ||
        (error = get_s(f->name, sizeof(f->name), v, "name", 1)) != 0 ||
        (error = get_s(f->sha256, sizeof(f->sha256), v, "sha256", 0)) != 0 ||
        (error = get_u(&f->size, v, "size", limit_of(F_FILE_SIZE))) != 0)
        return error;
    return 0;
}

static int get_list(char (*out)[65], size_t *n, size_t cap, json_t *o, const char *key)
{
    json_t *a = json_object_get(o, key), *v;
    size_t i;
    if (!json_is_array(a) || json_array_size(a) > cap)
        return fwrel_error_set(FWREL_EFORMAT, "release record: bad or missing \"%s\"", key);
    json_array_foreach(a, i, v) {
        if (!json_is_string(v) || !hex_ok(json_string_value(v), 64, 0))
            return fwrel_error_set(FWREL_EFORMAT, "release record: \"%s\" holds a bad key id", key);
        memcpy(out[i], json_string_value(v), 65);
    }
    *n = json_array_size(a);
    return 0;
}

/* Every rule of the record except its canonical form; r is zeroed on failure. */
static int decode_fields(fwrel_release *r, const uint8_t *json, size_t len)
{
    static const char *const top[] = {
        "approvals", "channel",  "chip",    "counter",        "created",      "device_types",
        "encrypted", "expires",  "format",  "image",          "input",        "keys",
        "manifest",  "policy_sha256", "product", "secure_version", "signed_image", "tool_version",
        "version",   NULL};
    static const char *const kkeys[] = {"image_encryption", "manifest_recipients",
                                        "manifest_signers", "manifest_threshold", "secure_boot",
                                        NULL};
    static const char *const akeys[] = {"approvers", "required", NULL};
    json_error_t jerr;
    json_t *o = NULL, *v, *k;
    char fmt[32];
    size_t i;
    uint64_t u;
    int error;

    memset(r, 0, sizeof(*r));
    if (len > FWREL_RELEASE_JSON_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "release record larger than %d bytes",
                               FWREL_RELEASE_JSON_MAX);
    o = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &jerr);
    if (o == NULL) {
        error = fwrel_error_set(FWREL_EFORMAT, "release record: %s", jerr.text);
        goto done;
    }
    if ((error = only_keys(o, top, "record")) != 0 ||
        (error = get_s(fmt, sizeof(fmt), o, "format", 0)) != 0)
        goto done;
    if (strcmp(fmt, FWREL_RELEASE_FORMAT) != 0) {
        error = fwrel_error_set(FWREL_EFORMAT, "release record: format is not %s",
                                FWREL_RELEASE_FORMAT);
        goto done;
    }
    if ((error = get_s(r->product, sizeof(r->product), o, "product", 0)) != 0 ||
        (error = get_s(r->version, sizeof(r->version), o, "version", 0)) != 0 ||
        (error = get_s(r->channel, sizeof(r->channel), o, "channel", 0)) != 0 ||
        (error = get_s(r->chip, sizeof(r->chip), o, "chip", 0)) != 0 ||
        (error = get_s(r->policy_sha256, sizeof(r->policy_sha256), o, "policy_sha256", 0)) != 0 ||
        (error = get_s(r->tool_version, sizeof(r->tool_version), o, "tool_version", 0)) != 0 ||
        (error = get_u(&r->counter, o, "counter", limit_of(F_COUNTER))) != 0 ||
        (error = get_u(&u, o, "secure_version", limit_of(F_SECURE_VERSION))) != 0 ||
        (error = get_u(&r->created, o, "created", limit_of(F_CREATED))) != 0 ||
        (error = get_u(&r->expires, o, "expires", limit_of(F_EXPIRES))) != 0 ||
        (error = get_file(&r->input, o, "input")) != 0 ||
        (error = get_file(&r->signed_image, o, "signed_image")) != 0 ||
        (error = get_file(&r->image, o, "image")) != 0 ||
        (error = get_file(&r->manifest, o, "manifest")) != 0)
        goto done;
    r->secure_version = (uint32_t)u;
    v = json_object_get(o, "device_types");
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 8) {
        error = fwrel_error_set(FWREL_EFORMAT, "release record: bad or missing \"device_types\"");
        goto done;
    }
    json_array_foreach(v, i, k) {
        if (!json_is_string(k) || json_string_length(k) == 0 || json_string_length(k) > 64) {
            error = fwrel_error_set(FWREL_EFORMAT, "release record: bad device type");
            goto done;
        }
        memcpy(r->device_types[i], json_string_value(k), json_string_length(k) + 1);
    }
    r->ndevice_types = json_array_size(v);
    if (!json_is_boolean(v = json_object_get(o, "encrypted"))) {
        error = fwrel_error_set(FWREL_EFORMAT, "release record: bad or missing \"encrypted\"");
        goto done;
    }
    r->encrypted = json_is_true(v);
    k = json_object_get(o, "keys");
    if ((error = only_keys(k, kkeys, "keys")) != 0 ||
        (error = get_list(r->sign_keys, &r->nsign_keys, 3, k, "secure_boot")) != 0 ||
        (error = get_list(r->manifest_signers, &r->nmanifest_signers, FWREL_RELEASE_MAX_KEYS, k,
                          "manifest_signers")) != 0 ||
        (error = get_list(r->recipients, &r->nrecipients, FWREL_RELEASE_MAX_KEYS, k,
                          "manifest_recipients")) != 0 ||
        (error = get_u(&u, k, "manifest_threshold", limit_of(F_THRESHOLD))) != 0 ||
        (error = get_s(r->image_key, sizeof(r->image_key), k, "image_encryption", 1)) != 0)
        goto done;
    r->manifest_threshold = (unsigned)u;
    k = json_object_get(o, "approvals");
    if ((error = only_keys(k, akeys, "approvals")) != 0 ||
        (error = get_u(&u, k, "required", limit_of(F_REQUIRED))) != 0)
        goto done;
    r->approvals_required = (unsigned)u;
    v = json_object_get(k, "approvers");
    if (!json_is_array(v) || json_array_size(v) > 16) {
        error = fwrel_error_set(FWREL_EFORMAT, "release record: bad \"approvers\"");
        goto done;
    }
    json_array_foreach(v, i, k) {
        if (!json_is_string(k) || !hex_ok(json_string_value(k), 40, 1)) {
            error = fwrel_error_set(FWREL_EFORMAT, "release record: bad approver fingerprint");
            goto done;
        }
        memcpy(r->approvers[i], json_string_value(k), 41);
    }
    r->napprovers = json_array_size(v);
    error = 0;
done:
    json_decref(o);
    if (error)
        memset(r, 0, sizeof(*r));
    return error;
}

int fwrel_release_decode(fwrel_release *r, const uint8_t *json, size_t len)
{
    FWREL_ASSERT_ARG(r != NULL && json != NULL);
    char *again = NULL;
    size_t again_len = 0;
    int error;

    if ((error = decode_fields(r, json, len)) != 0)
        return error;
    /* Canonical bytes only: what is signed is what is read. */
    if ((error = fwrel_release_encode(&again, &again_len, r)) == 0 &&
        (again_len != len || memcmp(again, json, len) != 0))
        error = fwrel_error_set(FWREL_EFORMAT, "release record is not in canonical form");
    free(again);
    if (error)
        memset(r, 0, sizeof(*r));
    return error;
}
