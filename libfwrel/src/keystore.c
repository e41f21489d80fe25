/* keystore.c - the keystore directory (keystore.h, docs/keystore.md). */
#include "fwrel/keystore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "fwrel/io.h"
#include "util.h"

#define INDEX_FORMAT "fwrel-keystore-1"
#define LOCK_WAIT_MS 10000

/* Sealed secrets (.sec): scrypt as for private keys at rest, AES-256-GCM. */
#define SEC_MAGIC    "fwrelsec"
#define SEC_LOG2N    14
#define SEC_R        8
#define SEC_P        4
#define SEC_HDR      (8 + 4 + 16 + 12) /* magic, version/log2N/r/p, salt, nonce */
#define SEC_TAG      16
#define SEC_PEM_NAME "FWREL ENCRYPTED SECRET"

/* The staging directory of a change (fwrel_keystore_begin): DIR/.txn-XXXXXX. */
#define TXN_PREFIX ".txn-"
#define TXN_NEW    "index.new" /* the new index; present until the commit point */
#define TXN_OLD    "index.old" /* a link to the old index, for an undo after the commit */

/* What fwrel_keystore_open() made, removed again when the first change is aborted. */
enum { MADE_DIR = 1, MADE_KEYS = 2, MADE_INDEX = 4, MADE_LOCK = 8 };

struct fwrel_keystore {
    char *dir;
    int lock_fd; /* -1 when opened read-only */
    fwrel_keystore_entry *e;
    size_t n;
    unsigned made;      /* MADE_*: what this open created, until a change is committed */
    unsigned recovered; /* interrupted changes undone (or cleaned up) by the open */
    /* The change being made (fwrel_keystore_begin), NULL when none. */
    char *txn;
    char (*staged)[96]; /* basenames of the files staged in txn (keys/ once prepared) */
    size_t nstaged, nlinked;
    int dirty, prepared, committed;
};

/* The fixed PBKDF2 salt of the ECC image-encryption scheme (docs/esp-formats.md §4.1). */
static const uint8_t ecc_image_salt[32] = {
    0x0e, 0x21, 0x60, 0x64, 0x2d, 0xae, 0x76, 0xd3, 0x34, 0x48, 0xe4, 0x3d, 0x77, 0x20, 0x12, 0x3d,
    0x9f, 0x3b, 0x1e, 0xce, 0xb8, 0x8e, 0x57, 0x3a, 0x4e, 0x8f, 0x7f, 0xb9, 0x4f, 0xf0, 0xc8, 0x69};

static const char *const status_names[] = {NULL, "active", "retired", "revoked"};

const char *fwrel_keystore_status_name(int status)
{
    return status >= FWREL_KS_ACTIVE && status <= FWREL_KS_REVOKED ? status_names[status]
                                                                   : "unknown";
}

static const char *const reason_names[] = {"unstated", "superseded", "compromised"};

const char *fwrel_keystore_reason_name(int reason)
{
    return reason >= 0 && reason <= FWREL_KS_REASON_COMPROMISED ? reason_names[reason] : "unknown";
}

int fwrel_keystore_reason_parse(const char *s)
{
    for (int i = FWREL_KS_REASON_SUPERSEDED; s != NULL && i <= FWREL_KS_REASON_COMPROMISED; i++)
        if (strcmp(s, reason_names[i]) == 0)
            return i;
    return 0;
}

static int valid_name(const char *s)
{
    size_t len = s != NULL ? strlen(s) : 0;
    if (len == 0 || len > FWREL_POLICY_NAME_MAX)
        return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
              s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

static int valid_hex64(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return 0;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* "YYYY-MM-DDTHH:MM:SSZ", digits where digits belong. */
static int valid_time(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    if (s == NULL || strlen(s) != sizeof(shape) - 1)
        return 0;
    for (size_t i = 0; shape[i] != '\0'; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
            return 0;
    return 1;
}

int fwrel_keystore_parse_time(char out[21], const char *s)
{
    FWREL_ASSERT_ARG(out != NULL && s != NULL);
    char t[21];
    struct tm tm;
    uint64_t f[6];
    static const unsigned at[6] = {0, 5, 8, 11, 14, 17}, len[6] = {4, 2, 2, 2, 2, 2};
    int n = snprintf(t, sizeof(t), strlen(s) == 10 ? "%sT00:00:00Z" : "%s", s);
    if (n < 0 || (size_t)n >= sizeof(t) || !valid_time(t))
        return fwrel_error_set(FWREL_EUSAGE,
                               "not a date: \"%.32s\" (YYYY-MM-DD or "
                               "YYYY-MM-DDTHH:MM:SSZ)",
                               s);
    for (size_t i = 0; i < 6; i++) /* digits: valid_time() checked them */
        for (size_t k = f[i] = 0; k < len[i]; k++)
            f[i] = f[i] * 10 + (uint64_t)(t[at[i] + k] - '0');
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = (int)f[0] - 1900;
    tm.tm_mon = (int)f[1] - 1;
    tm.tm_mday = (int)f[2];
    tm.tm_hour = (int)f[3];
    tm.tm_min = (int)f[4];
    tm.tm_sec = (int)f[5];
    /* A real calendar time: timegm() normalises 02-30 into March; the round trip tells. */
    time_t v = timegm(&tm);
    char back[21];
    fwrel_rfc3339(back, (int64_t)v);
    if (f[0] < 1970 || strcmp(back, t) != 0)
        return fwrel_error_set(FWREL_EUSAGE, "not a date: \"%.32s\"", s);
    memcpy(out, t, sizeof(t));
    return 0;
}

static void now_rfc3339(char out[21])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * What failed in a keystore's change or load is the keystore, as its user gave it: an error
 * about a file inside it (a key file, the staged index) or about nothing named is said of the
 * keystore directory, so that every caller (fwrel-bundle, fwrel-keygen, provisioning) names it
 * the same way. An error about something else (an HSM URI) keeps its name, and a usage error (a
 * revocation date that is not one) is the caller's option's, not the keystore's.
 */
static int named(const fwrel_keystore *ks, int error)
{
    const fwrel_error *e = fwrel_error_last();
    size_t n = strlen(ks->dir);
    if (error != 0 && ((e->path[0] == '\0' && error != FWREL_EUSAGE) ||
                       (strncmp(e->path, ks->dir, n) == 0 && e->path[n] == '/')))
        fwrel_error_about(FWREL_ABOUT_KEYSTORE, ks->dir);
    return error;
}

/* Whether keys/<base> is a file staged by the open change. */
static int staged(const fwrel_keystore *ks, const char *base)
{
    for (size_t i = 0; ks->txn != NULL && i < ks->nstaged; i++)
        if (strcmp(ks->staged[i], base) == 0)
            return 1;
    return 0;
}

int fwrel_keystore_path(char *out, size_t size, const fwrel_keystore *ks, const char *rel)
{
    FWREL_ASSERT_ARG(out != NULL && ks != NULL && rel != NULL);
    int n = strncmp(rel, "keys/", 5) == 0 && staged(ks, rel + 5)
                ? snprintf(out, size, "%s/%s", ks->txn, rel + 5)
                : snprintf(out, size, "%s/%s", ks->dir, rel);
    if (n < 0 || (size_t)n >= size)
        return fwrel_error_set(FWREL_EUSAGE, "keystore path too long");
    return 0;
}

/* Nothing group or other can reach; owned by us; the right kind. */
static int check_mode(const struct stat *st, const char *what, int want_dir)
{
    if (want_dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
        return fwrel_error_set(FWREL_EKEY, "%s is not a %s", what,
                               want_dir ? "directory" : "regular file");
    if (st->st_uid != geteuid())
        return fwrel_error_set(FWREL_EKEY, "%s belongs to another user", what);
    if ((st->st_mode & 077) != 0)
        return fwrel_error_set(FWREL_EKEY, "%s is %s by group or others (mode %04o)", what,
                               want_dir ? "accessible" : "readable",
                               (unsigned)(st->st_mode & 07777));
    return 0;
}

/* Every file under keys/ must be private too, whatever the index says. */
static int check_tree(const char *dir)
{
    char path[4200];
    struct stat st;
    DIR *d = NULL;
    struct dirent *de;
    int error = 0;

    snprintf(path, sizeof(path), "%s/keys", dir);
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : fwrel_error_set_errno(FWREL_EIO, errno, "keys");
    if ((error = check_mode(&st, "keys", 1)) != 0)
        return error;
    if ((d = opendir(path)) == NULL)
        return fwrel_error_set_errno(FWREL_EIO, errno, "keys");
    while ((de = readdir(d)) != NULL) {
        char file[4500], what[300];
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
        snprintf(what, sizeof(what), "keys/%.250s", de->d_name);
        if (lstat(file, &st) != 0) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "%s", what);
            break;
        }
        if ((error = check_mode(&st, what, 0)) != 0)
            break;
    }
    closedir(d);
    return error;
}

static void entries_free(fwrel_keystore_entry *e, size_t n)
{
    for (size_t i = 0; e != NULL && i < n; i++)
        free(e[i].uri);
    free(e);
}

/* A relative file path the keystore itself would write: keys/<name>.<epoch><suffix>. */
static int valid_rel(const char *rel, const fwrel_keystore_entry *e, const char *const *suffixes)
{
    char want[160];
    for (size_t i = 0; suffixes[i] != NULL; i++) {
        snprintf(want, sizeof(want), "keys/%s.%u%s", e->name, e->epoch, suffixes[i]);
        if (strcmp(rel, want) == 0)
            return 1;
    }
    return 0;
}

static int get_str(const char **out, json_t *obj, const char *key, int required)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL)
        return required ? fwrel_error_set(FWREL_EFORMAT, "missing \"%s\"", key) : 0;
    if (!json_is_string(v))
        return fwrel_error_set(FWREL_EFORMAT, "\"%s\" is not a string", key);
    *out = json_string_value(v);
    return 0;
}

static int parse_entry(fwrel_keystore_entry *e, json_t *obj)
{
    static const char *const known[] = {
        "name",      "id",   "purpose", "alg",    "created", "changed", "status", "epoch", "slot",
        "encrypted", "file", "public",  "secret", "uri",     "reason",  "since",  NULL};
    static const char *const priv_sfx[] = {".pem", NULL};
    static const char *const pub_sfx[] = {".pub.pem", NULL};
    static const char *const sec_sfx[] = {".sec", ".bin", NULL};
    const char *key, *s;
    json_t *v;
    int error;

    memset(e, 0, sizeof(*e));
    e->slot = -1;
    if (!json_is_object(obj))
        return fwrel_error_set(FWREL_EFORMAT, "an entry is not an object");
    json_object_foreach(obj, key, v)
    {
        size_t i = 0;
        while (known[i] != NULL && strcmp(known[i], key) != 0)
            i++;
        if (known[i] == NULL)
            return fwrel_error_set(FWREL_EFORMAT, "unknown field \"%.64s\"", key);
    }
    if ((error = get_str(&s, obj, "name", 1)) != 0)
        return error;
    if (!valid_name(s))
        return fwrel_error_set(FWREL_EFORMAT, "bad key name \"%.64s\"", s);
    memcpy(e->name, s, strlen(s) + 1);
    if ((error = get_str(&s, obj, "id", 1)) != 0)
        return error;
    if (!valid_hex64(s))
        return fwrel_error_set(FWREL_EFORMAT, "%s: bad key id", e->name);
    memcpy(e->id, s, 65);
    if ((error = get_str(&s, obj, "purpose", 1)) != 0)
        return error;
    if ((e->purpose = fwrel_purpose_parse(s)) == 0)
        return fwrel_error_set(FWREL_EFORMAT, "%s: unknown purpose \"%.32s\"", e->name, s);
    if ((error = get_str(&s, obj, "alg", 1)) != 0)
        return error;
    if ((e->alg = fwrel_alg_parse(s)) == 0 || !fwrel_policy_alg_allowed(e->purpose, e->alg))
        return fwrel_error_set(FWREL_EFORMAT, "%s: algorithm \"%.32s\" not allowed for %s", e->name,
                               s, fwrel_purpose_name(e->purpose));
    if ((error = get_str(&s, obj, "created", 1)) != 0)
        return error;
    if (!valid_time(s))
        return fwrel_error_set(FWREL_EFORMAT, "%s: bad created time", e->name);
    memcpy(e->created, s, 21);
    if ((error = get_str(&s, obj, "status", 1)) != 0)
        return error;
    for (int i = FWREL_KS_ACTIVE; i <= FWREL_KS_REVOKED; i++)
        if (strcmp(s, status_names[i]) == 0)
            e->status = i;
    if (e->status == 0)
        return fwrel_error_set(FWREL_EFORMAT, "%s: unknown status \"%.32s\"", e->name, s);
    if ((error = get_str(&s, obj, "changed", e->status != FWREL_KS_ACTIVE)) != 0)
        return error;
    if (s != NULL) {
        if (!valid_time(s) || e->status == FWREL_KS_ACTIVE)
            return fwrel_error_set(FWREL_EFORMAT, "%s: bad changed time", e->name);
        memcpy(e->changed, s, 21);
    }
    /* Why and since when a key was revoked; an older index has neither (the rulebook reads that
     * as compromised since the key was made). */
    if ((error = get_str(&s, obj, "reason", 0)) != 0)
        return error;
    if (s != NULL &&
        (e->status != FWREL_KS_REVOKED || (e->reason = fwrel_keystore_reason_parse(s)) == 0))
        return fwrel_error_set(FWREL_EFORMAT, "%s: bad revocation reason", e->name);
    if ((error = get_str(&s, obj, "since", e->reason != 0)) != 0)
        return error;
    if (s != NULL) {
        if (e->reason == 0 || !valid_time(s) || strcmp(s, e->created) < 0 ||
            strcmp(s, e->changed) > 0)
            return fwrel_error_set(FWREL_EFORMAT, "%s: bad revocation date", e->name);
        memcpy(e->since, s, 21);
    }
    v = json_object_get(obj, "epoch");
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000)
        return fwrel_error_set(FWREL_EFORMAT, "%s: bad epoch", e->name);
    e->epoch = (unsigned)json_integer_value(v);
    if ((v = json_object_get(obj, "slot")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 2 ||
            e->purpose != FWREL_PURPOSE_SECURE_BOOT)
            return fwrel_error_set(FWREL_EFORMAT, "%s: bad slot", e->name);
        e->slot = (int)json_integer_value(v);
    }
    if ((v = json_object_get(obj, "encrypted")) != NULL) {
        if (!json_is_boolean(v))
            return fwrel_error_set(FWREL_EFORMAT, "%s: \"encrypted\" is not a boolean", e->name);
        e->encrypted = json_is_true(v);
    }
    if ((error = get_str(&s, obj, "file", 0)) != 0)
        return error;
    if (s != NULL) {
        if (!valid_rel(s, e, priv_sfx))
            return fwrel_error_set(FWREL_EFORMAT, "%s: bad file path", e->name);
        memcpy(e->priv, s, strlen(s) + 1);
    }
    if ((error = get_str(&s, obj, "public", 0)) != 0)
        return error;
    if (s != NULL) {
        if (!valid_rel(s, e, pub_sfx))
            return fwrel_error_set(FWREL_EFORMAT, "%s: bad public path", e->name);
        memcpy(e->pub, s, strlen(s) + 1);
    }
    if ((error = get_str(&s, obj, "secret", 0)) != 0)
        return error;
    if (s != NULL) {
        if (!valid_rel(s, e, sec_sfx))
            return fwrel_error_set(FWREL_EFORMAT, "%s: bad secret path", e->name);
        memcpy(e->secret, s, strlen(s) + 1);
    }
    if ((error = get_str(&s, obj, "uri", 0)) != 0)
        return error;
    if (s != NULL) {
        if (strncmp(s, "pkcs11:", 7) != 0 || strlen(s) > 4096 || e->priv[0] || e->secret[0])
            return fwrel_error_set(FWREL_EFORMAT, "%s: bad uri", e->name);
        if ((e->uri = strdup(s)) == NULL)
            return fwrel_error_set(FWREL_EIO, "out of memory");
    }
    int raw = e->alg >= FWREL_ALG_AES128; /* aes128..aes512, hmac256 */
    if (raw ? e->secret[0] == '\0' || e->priv[0] || e->pub[0]
            : e->pub[0] == '\0' || (e->uri == NULL) == (e->priv[0] == '\0'))
        return fwrel_error_set(FWREL_EFORMAT, "%s: files do not match the algorithm", e->name);
    return 0;
}

static int parse_index(fwrel_keystore *ks, const uint8_t *data, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *keys;
    size_t i;
    int error = 0;

    if (root == NULL)
        return fwrel_error_set(FWREL_EFORMAT, "index.json: %d:%d: %s", jerr.line, jerr.column,
                               jerr.text);
    if (!json_is_object(root) || json_object_size(root) != 2 ||
        !json_is_string(json_object_get(root, "format")) ||
        strcmp(json_string_value(json_object_get(root, "format")), INDEX_FORMAT) != 0 ||
        !json_is_array(keys = json_object_get(root, "keys"))) {
        error = fwrel_error_set(FWREL_EFORMAT, "index.json: not a %s index", INDEX_FORMAT);
        goto done;
    }
    if (json_array_size(keys) > FWREL_KS_MAX_ENTRIES) {
        error =
            fwrel_error_set(FWREL_EFORMAT, "index.json: more than %d keys", FWREL_KS_MAX_ENTRIES);
        goto done;
    }
    ks->n = json_array_size(keys);
    if (ks->n > 0 && (ks->e = calloc(ks->n, sizeof(*ks->e))) == NULL) {
        ks->n = 0;
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    for (i = 0; i < ks->n; i++) {
        if ((error = parse_entry(&ks->e[i], json_array_get(keys, i))) != 0) {
            fwrel_error_prefix("index.json: entry %zu", i + 1);
            goto done;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(ks->e[j].name, ks->e[i].name) != 0)
                continue;
            if (ks->e[j].epoch >= ks->e[i].epoch ||
                (ks->e[j].status == FWREL_KS_ACTIVE && ks->e[i].status == FWREL_KS_ACTIVE)) {
                error = fwrel_error_set(FWREL_EFORMAT,
                                        "index.json: entry %zu: epochs of %s out of order or "
                                        "two active",
                                        i + 1, ks->e[i].name);
                goto done;
            }
        }
    }
done:
    json_decref(root);
    return error;
}

static json_t *entry_json(const fwrel_keystore_entry *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(e->name));
    json_object_set_new(o, "id", json_string(e->id));
    json_object_set_new(o, "purpose", json_string(fwrel_purpose_name(e->purpose)));
    json_object_set_new(o, "alg", json_string(fwrel_alg_name(e->alg)));
    json_object_set_new(o, "created", json_string(e->created));
    if (e->changed[0] != '\0')
        json_object_set_new(o, "changed", json_string(e->changed));
    json_object_set_new(o, "status", json_string(fwrel_keystore_status_name(e->status)));
    if (e->reason != 0) {
        json_object_set_new(o, "reason", json_string(fwrel_keystore_reason_name(e->reason)));
        json_object_set_new(o, "since", json_string(e->since));
    }
    json_object_set_new(o, "epoch", json_integer(e->epoch));
    if (e->slot >= 0)
        json_object_set_new(o, "slot", json_integer(e->slot));
    if (e->uri == NULL)
        json_object_set_new(o, "encrypted", json_boolean(e->encrypted));
    if (e->priv[0] != '\0')
        json_object_set_new(o, "file", json_string(e->priv));
    if (e->pub[0] != '\0')
        json_object_set_new(o, "public", json_string(e->pub));
    if (e->secret[0] != '\0')
        json_object_set_new(o, "secret", json_string(e->secret));
    if (e->uri != NULL)
        json_object_set_new(o, "uri", json_string(e->uri));
    return o;
}

/* Write these entries as an index at path (atomic: fwrel_io_write_file). */
static int write_index_at(const char *path, const fwrel_keystore_entry *e, size_t n, unsigned flags)
{
    json_t *root = json_object(), *keys = json_array();
    char *text = NULL;
    int error;

    json_object_set_new(root, "format", json_string(INDEX_FORMAT));
    for (size_t i = 0; i < n; i++)
        json_array_append_new(keys, entry_json(&e[i]));
    json_object_set_new(root, "keys", keys);
    size_t len = 0;
    error = fwrel_json_text(&text, &len, root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (error != 0)
        return error;
    error = fwrel_io_write_file(path, text, len, flags, 0600);
    free(text);
    return error;
}

/* Replace index.json with these entries (atomic; the old one stays on failure). */
static int write_index(const fwrel_keystore *ks, const fwrel_keystore_entry *e, size_t n)
{
    char path[4200];
    int error = fwrel_keystore_path(path, sizeof(path), ks, "index.json");
    return error != 0 ? error : write_index_at(path, e, n, FWREL_OUT_FORCE);
}

static int take_lock(fwrel_keystore *ks)
{
    char path[4200];
    int error;
    if ((error = fwrel_keystore_path(path, sizeof(path), ks, ".lock")) != 0)
        return error;
    ks->lock_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (ks->lock_fd >= 0)
        ks->made |= MADE_LOCK;
    else if (errno == EEXIST)
        ks->lock_fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (ks->lock_fd < 0)
        return fwrel_error_set_errno(FWREL_EIO, errno, "cannot open the keystore lock");
    for (int waited = 0; flock(ks->lock_fd, LOCK_EX | LOCK_NB) != 0; waited += 50) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            return fwrel_error_set_errno(FWREL_EIO, errno, "cannot lock the keystore");
        if (waited >= LOCK_WAIT_MS)
            return fwrel_error_set(FWREL_EIO, "keystore is locked by another process");
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Remove what fwrel_keystore_open() created (a keystore no change was committed to). */
static void unmake(fwrel_keystore *ks)
{
    char path[4200];
    if (ks->made & MADE_INDEX) {
        snprintf(path, sizeof(path), "%s/index.json", ks->dir);
        unlink(path);
    }
    if (ks->made & MADE_KEYS) {
        snprintf(path, sizeof(path), "%s/keys", ks->dir);
        rmdir(path);
    }
    if (ks->made & MADE_LOCK) {
        snprintf(path, sizeof(path), "%s/.lock", ks->dir);
        unlink(path);
    }
    if (ks->made & MADE_DIR)
        rmdir(ks->dir);
    ks->made = 0;
}

/*
 * A change interrupted by a kill left its staging directory DIR/.txn-XXXXXX. While it holds
 * index.new, the change never reached its commit point: the files it linked into keys/ (the same
 * inodes as its staged files, so nothing else is touched) are removed. Without index.new the
 * change was committed (or never prepared): only the staging directory goes. Under the lock.
 */
static int recover(fwrel_keystore *ks)
{
    DIR *d = opendir(ks->dir), *t;
    struct dirent *de, *te;
    char txn[4200], path[4500], key[4500];
    struct stat st, kst;

    if (d == NULL)
        return fwrel_error_set_errno(FWREL_EIO, errno, "cannot read the keystore");
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, TXN_PREFIX, strlen(TXN_PREFIX)) != 0)
            continue;
        snprintf(txn, sizeof(txn), "%s/%.100s", ks->dir, de->d_name);
        int error = lstat(txn, &st) != 0
                        ? fwrel_error_set_errno(FWREL_EIO, errno, "%.100s", de->d_name)
                        : check_mode(&st, de->d_name, 1);
        if (error) {
            closedir(d);
            return error;
        }
        snprintf(path, sizeof(path), "%s/" TXN_NEW, txn);
        int undo = lstat(path, &st) == 0;
        if (undo && (t = opendir(txn)) != NULL) {
            while ((te = readdir(t)) != NULL) {
                if (te->d_name[0] == '.' || strcmp(te->d_name, TXN_NEW) == 0 ||
                    strcmp(te->d_name, TXN_OLD) == 0)
                    continue;
                snprintf(path, sizeof(path), "%s/%.200s", txn, te->d_name);
                snprintf(key, sizeof(key), "%s/keys/%.200s", ks->dir, te->d_name);
                if (lstat(path, &st) == 0 && lstat(key, &kst) == 0 && st.st_ino == kst.st_ino &&
                    st.st_dev == kst.st_dev)
                    unlink(key);
            }
            closedir(t);
        }
        fwrel_remove_flat(txn);
        ks->recovered++;
    }
    closedir(d);
    return 0;
}

static int ks_open(fwrel_keystore **out, const char *dir, unsigned flags)
{
    FWREL_ASSERT_ARG(out != NULL && dir != NULL);
    fwrel_keystore *ks = NULL;
    char path[4200];
    struct stat st;
    uint8_t *data = NULL;
    size_t len = 0;
    unsigned made = 0;
    int error;

    *out = NULL;
    if (strlen(dir) > 3800 || dir[0] == '\0')
        return fwrel_error_set(FWREL_EUSAGE, "keystore path too long or empty");
    if (lstat(dir, &st) != 0) {
        if (errno != ENOENT || !(flags & FWREL_KS_CREATE))
            return fwrel_error_set_errno(FWREL_EIO, errno, "cannot open the keystore");
        if (mkdir(dir, 0700) != 0)
            return fwrel_error_set_errno(FWREL_EIO, errno, "cannot create the keystore");
        made |= MADE_DIR;
        if (lstat(dir, &st) != 0) {
            rmdir(dir);
            return fwrel_error_set_errno(FWREL_EIO, errno, "cannot open the keystore");
        }
    }
    if ((error = check_mode(&st, "keystore", 1)) != 0)
        return error;
    if ((ks = calloc(1, sizeof(*ks))) == NULL || (ks->dir = strdup(dir)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    ks->lock_fd = -1;
    ks->made = made;
    if ((flags & (FWREL_KS_WRITE | FWREL_KS_CREATE)) &&
        ((error = take_lock(ks)) != 0 || (error = recover(ks)) != 0))
        goto done;
    if ((error = check_tree(dir)) != 0)
        goto done;
    snprintf(path, sizeof(path), "%s/index.json", dir);
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "index.json");
            goto done;
        }
        /* No index: a new keystore, or an empty directory to adopt. */
        DIR *d = opendir(dir);
        struct dirent *de;
        int empty = 1;
        while (d != NULL && (de = readdir(d)) != NULL)
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
                strcmp(de->d_name, ".lock") != 0 && strcmp(de->d_name, "keys") != 0)
                empty = 0;
        if (d != NULL)
            closedir(d);
        if (!empty) {
            error = fwrel_error_set(FWREL_EFORMAT, "not a keystore (no index.json)");
            goto done;
        }
        if (!(flags & FWREL_KS_CREATE)) {
            error = fwrel_error_set(FWREL_EIO, "no keystore here (no index.json)");
            goto done;
        }
        snprintf(path, sizeof(path), "%s/keys", dir);
        if (mkdir(path, 0700) == 0)
            ks->made |= MADE_KEYS;
        else if (errno != EEXIST) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot create keys/");
            goto done;
        }
        if ((error = write_index(ks, NULL, 0)) == 0)
            ks->made |= MADE_INDEX;
        goto done;
    }
    if ((error = check_mode(&st, "index.json", 0)) != 0)
        goto done;
    if ((error = fwrel_io_read_small(&data, &len, path, FWREL_KS_INDEX_MAX)) != 0)
        goto done;
    error = parse_index(ks, data, len);
done:
    free(data);
    if (error) {
        if (ks != NULL)
            unmake(ks);
        else if (made & MADE_DIR)
            rmdir(dir);
        fwrel_keystore_close(ks);
        return error;
    }
    *out = ks;
    return 0;
}

int fwrel_keystore_open(fwrel_keystore **out, const char *dir, unsigned flags)
{
    return ks_open(out, dir, flags) ? fwrel_error_about(FWREL_ABOUT_KEYSTORE, dir) : 0;
}

int fwrel_keystore_index_check(const uint8_t *data, size_t len, size_t *count)
{
    FWREL_ASSERT_ARG(data != NULL || len == 0);
    fwrel_keystore ks = {.lock_fd = -1};
    int error;
    if (len > FWREL_KS_INDEX_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "index.json: larger than %d bytes",
                               FWREL_KS_INDEX_MAX);
    error = parse_index(&ks, data != NULL ? data : (const uint8_t *)"", len);
    if (error == 0 && count != NULL)
        *count = ks.n;
    entries_free(ks.e, ks.n);
    return error;
}

static int abort_change(fwrel_keystore *ks, int unmake_too);

void fwrel_keystore_close(fwrel_keystore *ks)
{
    if (ks == NULL)
        return;
    /* A change left open: a committed one is kept, any other undone. */
    if (ks->txn != NULL && ks->committed)
        fwrel_keystore_finish(ks);
    else if (ks->txn != NULL && abort_change(ks, 1) != 0)
        fwrel_error_clear();
    if (ks->lock_fd >= 0)
        close(ks->lock_fd); /* releases the flock */
    entries_free(ks->e, ks->n);
    free(ks->staged);
    free(ks->dir);
    free(ks);
}

size_t fwrel_keystore_count(const fwrel_keystore *ks)
{
    return ks != NULL ? ks->n : 0;
}

const fwrel_keystore_entry *fwrel_keystore_entry_at(const fwrel_keystore *ks, size_t i)
{
    return ks != NULL && i < ks->n ? &ks->e[i] : NULL;
}

const fwrel_keystore_entry *fwrel_keystore_find(const fwrel_keystore *ks, const char *name)
{
    const fwrel_keystore_entry *best = NULL;
    for (size_t i = 0; ks != NULL && name != NULL && i < ks->n; i++)
        if (strcmp(ks->e[i].name, name) == 0 && (best == NULL || ks->e[i].epoch > best->epoch))
            best = &ks->e[i];
    return best;
}

const fwrel_keystore_entry *fwrel_keystore_find_id(const fwrel_keystore *ks, const char *id)
{
    for (size_t i = 0; ks != NULL && id != NULL && i < ks->n; i++)
        if (strcmp(ks->e[i].id, id) == 0)
            return &ks->e[i];
    return NULL;
}

/* --- changes: staged, then committed at once ------------------------------------------- */

unsigned fwrel_keystore_recovered(const fwrel_keystore *ks)
{
    return ks != NULL ? ks->recovered : 0;
}

int fwrel_keystore_begin(fwrel_keystore *ks)
{
    FWREL_ASSERT_ARG(ks != NULL);
    char tmpl[4200];
    if (ks->lock_fd < 0)
        return fwrel_error_set(FWREL_EUSAGE, "keystore not opened for writing");
    if (ks->txn != NULL)
        return fwrel_error_set(FWREL_EUSAGE, "a keystore change is open already");
    snprintf(tmpl, sizeof(tmpl), "%s/" TXN_PREFIX "XXXXXX", ks->dir);
    if (mkdtemp(tmpl) == NULL)
        return named(ks, fwrel_error_set_errno(FWREL_EIO, errno,
                                               "cannot create a staging directory"));
    if ((ks->txn = strdup(tmpl)) == NULL) {
        rmdir(tmpl);
        return fwrel_error_set(FWREL_EIO, "out of memory");
    }
    ks->nstaged = ks->nlinked = 0;
    ks->dirty = ks->prepared = ks->committed = 0;
    return 0;
}

/* Where a new file keys/<base> is written: the staging directory (recorded as staged). */
static int stage_path(char *out, size_t size, fwrel_keystore *ks, const char *rel)
{
    const char *base = rel + 5; /* after "keys/" */
    char(*v)[96] = realloc(ks->staged, (ks->nstaged + 1) * sizeof(*v));
    if (v == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    ks->staged = v;
    snprintf(v[ks->nstaged], sizeof(v[0]), "%s", base);
    int n = snprintf(out, size, "%s/%s", ks->txn, base);
    if (n < 0 || (size_t)n >= size)
        return fwrel_error_set(FWREL_EUSAGE, "keystore path too long");
    ks->nstaged++;
    return 0;
}

/* Take back the files staged after the first `keep` (an operation that failed half-way). */
static void unstage(fwrel_keystore *ks, size_t keep)
{
    char path[4200];
    for (; ks->nstaged > keep; ks->nstaged--) {
        snprintf(path, sizeof(path), "%s/%s", ks->txn, ks->staged[ks->nstaged - 1]);
        unlink(path);
    }
}

/* Take back the links made into keys/ by fwrel_keystore_prepare(). */
static void unlink_keys(fwrel_keystore *ks)
{
    char path[4200];
    for (; ks->nlinked > 0; ks->nlinked--) {
        snprintf(path, sizeof(path), "%s/keys/%s", ks->dir, ks->staged[ks->nlinked - 1]);
        unlink(path);
    }
}

int fwrel_keystore_prepare(fwrel_keystore *ks)
{
    FWREL_ASSERT_ARG(ks != NULL);
    char path[4200], to[4200];
    int error;

    if (ks->txn == NULL)
        return fwrel_error_set(FWREL_EUSAGE, "no keystore change is open");
    if (ks->prepared || !ks->dirty)
        return 0;
    /* The new index first: while it is in the staging directory, a killed run is undone by
     * the next open (recover()). */
    snprintf(path, sizeof(path), "%s/" TXN_NEW, ks->txn);
    if ((error = write_index_at(path, ks->e, ks->n, 0)) != 0)
        goto done;
    for (; ks->nlinked < ks->nstaged; ks->nlinked++) {
        snprintf(path, sizeof(path), "%s/%s", ks->txn, ks->staged[ks->nlinked]);
        snprintf(to, sizeof(to), "%s/keys/%s", ks->dir, ks->staged[ks->nlinked]);
        if ((error = fwrel_test_hook("keystore.link")) != 0)
            goto done;
        if (link(path, to) != 0) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot add keys/%s",
                                          ks->staged[ks->nlinked]);
            goto done;
        }
    }
    snprintf(path, sizeof(path), "%s/keys", ks->dir);
    if ((error = fwrel_fsync_dir(path)) != 0)
        goto done;
    snprintf(path, sizeof(path), "%s/index.json", ks->dir);
    snprintf(to, sizeof(to), "%s/" TXN_OLD, ks->txn);
    if (link(path, to) != 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot keep the old index.json");
        goto done;
    }
    if ((error = fwrel_fsync_dir(ks->txn)) != 0)
        goto done;
    ks->prepared = 1;
done:
    if (error) {
        unlink_keys(ks);
        snprintf(path, sizeof(path), "%s/" TXN_NEW, ks->txn);
        unlink(path);
        snprintf(path, sizeof(path), "%s/" TXN_OLD, ks->txn);
        unlink(path);
    }
    return named(ks, error);
}

static int commit_change(fwrel_keystore *ks)
{
    FWREL_ASSERT_ARG(ks != NULL);
    char from[4200], to[4200];
    int error;

    if ((error = fwrel_keystore_prepare(ks)) != 0 || !ks->dirty || ks->committed)
        return error;
    if ((error = fwrel_test_hook("keystore.commit")) != 0)
        return error;
    snprintf(from, sizeof(from), "%s/" TXN_NEW, ks->txn);
    snprintf(to, sizeof(to), "%s/index.json", ks->dir);
    if (rename(from, to) != 0)
        return fwrel_error_set_errno(FWREL_EIO, errno, "cannot replace index.json");
    ks->committed = 1;
    return fwrel_fsync_dir(ks->dir);
}

int fwrel_keystore_commit(fwrel_keystore *ks)
{
    FWREL_ASSERT_ARG(ks != NULL);
    return named(ks, commit_change(ks));
}

void fwrel_keystore_finish(fwrel_keystore *ks)
{
    if (ks == NULL || ks->txn == NULL)
        return;
    if (ks->committed)
        ks->made = 0; /* a keystore with a committed change stays */
    fwrel_remove_flat(ks->txn);
    free(ks->txn);
    ks->txn = NULL;
    ks->nstaged = ks->nlinked = 0;
}

/* Undo the open change; unmake: also remove what fwrel_keystore_open() created. */
static int abort_change(fwrel_keystore *ks, int unmake_too)
{
    char from[4200], to[4200];
    uint8_t *data = NULL;
    size_t len = 0;
    int error = 0;

    if (ks == NULL || ks->txn == NULL)
        return 0;
    if (ks->committed) {
        snprintf(from, sizeof(from), "%s/" TXN_OLD, ks->txn);
        snprintf(to, sizeof(to), "%s/index.json", ks->dir);
        if (rename(from, to) != 0 || fwrel_fsync_dir(ks->dir) != 0) {
            /* The new index stays, with its files: the change is whole, not undone. */
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot restore index.json");
            ks->nlinked = 0;
        }
    }
    unlink_keys(ks);
    snprintf(to, sizeof(to), "%s/keys", ks->dir);
    if (fwrel_fsync_dir(to) != 0)
        fwrel_error_clear();
    fwrel_remove_flat(ks->txn);
    free(ks->txn);
    ks->txn = NULL;
    ks->nstaged = 0;
    ks->committed = ks->prepared = 0;
    if (error == 0 && ks->made && unmake_too) {
        unmake(ks);
        entries_free(ks->e, ks->n);
        ks->e = NULL;
        ks->n = 0;
        return 0;
    }
    /* The entries in memory are those on the disk again. */
    entries_free(ks->e, ks->n);
    ks->e = NULL;
    ks->n = 0;
    snprintf(to, sizeof(to), "%s/index.json", ks->dir);
    if (fwrel_io_read_small(&data, &len, to, FWREL_KS_INDEX_MAX) == 0)
        (void)parse_index(ks, data, len);
    free(data);
    return error;
}

int fwrel_keystore_abort(fwrel_keystore *ks)
{
    return named(ks, abort_change(ks, 1));
}

/* An operation outside fwrel_keystore_begin() is a change of its own (its failure keeps the
 * keystore fwrel_keystore_open() created: the handle stays usable). */
static int implicit_end(fwrel_keystore *ks, int error)
{
    if (error == 0 && (error = fwrel_keystore_commit(ks)) == 0) {
        fwrel_keystore_finish(ks);
        return 0;
    }
    fwrel_error save = *fwrel_error_last();
    (void)abort_change(ks, 0);
    return fwrel_error_restore(&save);
}

/* --- raw secrets at rest ------------------------------------------------------------- */

static int sec_kdf(uint8_t key[32], const char *pass, size_t pass_len, const uint8_t *salt,
                   unsigned log2n, unsigned r, unsigned p)
{
    if (EVP_PBE_scrypt(pass, pass_len, salt, 16, (uint64_t)1 << log2n, r, p, 64u << 20, key, 32) !=
        1)
        return fwrel_error_set_openssl(FWREL_EKEY, "scrypt failed");
    return 0;
}

static int gcm(int enc, uint8_t *out, const uint8_t *in, size_t len, const uint8_t key[32],
               const uint8_t *nonce, const uint8_t *aad, size_t aad_len, uint8_t tag[SEC_TAG])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, ok = c != NULL && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) &&
                    EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) &&
                    EVP_CipherUpdate(c, out, &n, in, (int)len);
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEC_TAG, tag);
    if (ok)
        ok = EVP_CipherFinal_ex(c, out + n, &n) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEC_TAG, tag);
    EVP_CIPHER_CTX_free(c);
    return ok;
}

/* The authenticated data of a sealed secret: its header, and from version 2 on the key id of
 * its entry, so that a sealed file moved to another entry of the index fails to open. */
static size_t sec_aad(uint8_t aad[SEC_HDR + 64], const uint8_t *hdr, const char *id)
{
    memcpy(aad, hdr, SEC_HDR);
    if (hdr[8] == 1)
        return SEC_HDR;
    memcpy(aad + SEC_HDR, id, 64);
    return SEC_HDR + 64;
}

static int seal_secret(const char *path, const uint8_t *secret, size_t len, const char *pass,
                       size_t pass_len, const char *id)
{
    uint8_t buf[SEC_HDR + FWREL_KS_SECRET_MAX + SEC_TAG], key[32], aad[SEC_HDR + 64];
    BIO *bio = NULL;
    BUF_MEM *mem = NULL;
    int error = 0;

    memcpy(buf, SEC_MAGIC, 8);
    buf[8] = 2;
    buf[9] = SEC_LOG2N;
    buf[10] = SEC_R;
    buf[11] = SEC_P;
    if (RAND_bytes(buf + 12, 16 + 12) != 1)
        return fwrel_error_set_openssl(FWREL_EKEY, "no randomness");
    if ((error = sec_kdf(key, pass, pass_len, buf + 12, SEC_LOG2N, SEC_R, SEC_P)) != 0)
        goto done;
    if (!gcm(1, buf + SEC_HDR, secret, len, key, buf + 28, aad, sec_aad(aad, buf, id),
             buf + SEC_HDR + len)) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot encrypt the secret");
        goto done;
    }
    if ((bio = BIO_new(BIO_s_mem())) == NULL ||
        PEM_write_bio(bio, SEC_PEM_NAME, "", buf, (long)(SEC_HDR + len + SEC_TAG)) <= 0) {
        error = fwrel_error_set_openssl(FWREL_EIO, "out of memory");
        goto done;
    }
    BIO_get_mem_ptr(bio, &mem);
    error = fwrel_io_write_file(path, mem->data, mem->length, 0, 0600);
done:
    BIO_free(bio);
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(buf, sizeof(buf));
    return error;
}

static int open_secret(uint8_t **out, size_t *out_len, int *version, const uint8_t *file,
                       size_t file_len, const char *pass, size_t pass_len, const char *id)
{
    BIO *bio = BIO_new_mem_buf(file, (int)file_len);
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    uint8_t key[32], *plain = NULL, aad[SEC_HDR + 64];
    int error = 0;

    *out = NULL;
    if (bio == NULL || PEM_read_bio(bio, &name, &header, &data, &len) != 1 ||
        strcmp(name, SEC_PEM_NAME) != 0 || len < SEC_HDR + 16 + SEC_TAG ||
        len > SEC_HDR + FWREL_KS_SECRET_MAX + SEC_TAG || memcmp(data, SEC_MAGIC, 8) != 0 ||
        (data[8] != 1 && data[8] != 2) || data[9] < 10 || data[9] > 20 || data[10] == 0 ||
        data[10] > 16 || data[11] == 0 || data[11] > 16) {
        error = fwrel_error_set(FWREL_EFORMAT, "not a sealed secret");
        goto done;
    }
    if (pass == NULL) {
        error = fwrel_error_set(FWREL_EKEY, "secret is encrypted: a passphrase is needed");
        goto done;
    }
    size_t n = (size_t)len - SEC_HDR - SEC_TAG;
    if ((error = sec_kdf(key, pass, pass_len, data + 12, data[9], data[10], data[11])) != 0)
        goto done;
    if ((plain = malloc(n + 1)) == NULL) { /* +1: fwrel_io_free_secret() wipes len + 1 */
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    if (!gcm(0, plain, data + SEC_HDR, n, key, data + 28, aad, sec_aad(aad, data, id),
             data + SEC_HDR + n)) {
        error = fwrel_error_set(FWREL_EKEY, "wrong passphrase");
        goto done;
    }
    *version = data[8];
    *out = plain;
    *out_len = n;
    plain = NULL;
done:
    if (plain != NULL) {
        OPENSSL_cleanse(plain, (size_t)len - SEC_HDR - SEC_TAG);
        free(plain);
    }
    OPENSSL_cleanse(key, sizeof(key));
    if (data != NULL)
        OPENSSL_clear_free(data, (size_t)len);
    OPENSSL_free(name);
    OPENSSL_free(header);
    BIO_free(bio);
    ERR_clear_error();
    return error;
}

/* The key id fwrel gave a raw secret before version 2 of sealed secrets (a domain-separated
 * SHA-256 of it): only compared with the id of such an entry, never written anywhere. New
 * secrets have a random id. */
static void secret_id(char out[65], const uint8_t *secret, size_t len)
{
    static const char domain[] = "fwrel-keystore-secret-id";
    uint8_t d[32], buf[sizeof(domain) + FWREL_KS_SECRET_MAX];
    memcpy(buf, domain, sizeof(domain)); /* with its NUL */
    memcpy(buf + sizeof(domain), secret, len);
    SHA256(buf, sizeof(domain) + len, d);
    OPENSSL_cleanse(buf, sizeof(buf));
    fwrel_hex(out, d, sizeof(d));
}

/* --- generation ---------------------------------------------------------------------- */

int fwrel_keystore_derive_ecc_image_key(fwrel_pkey **out, const uint8_t hmac_key[32])
{
    FWREL_ASSERT_ARG(out != NULL && hmac_key != NULL);
    uint8_t d[32];
    BIGNUM *priv = NULL;
    EC_GROUP *group = NULL;
    EC_POINT *pub = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t point[65];
    int error = 0;

    *out = NULL;
    if (PKCS5_PBKDF2_HMAC((const char *)hmac_key, 32, ecc_image_salt, sizeof(ecc_image_salt), 2048,
                          EVP_sha256(), sizeof(d), d) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "PBKDF2 failed");
        goto done;
    }
    if ((group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) == NULL ||
        (priv = BN_secure_new()) == NULL || BN_bin2bn(d, sizeof(d), priv) == NULL ||
        (pub = EC_POINT_new(group)) == NULL) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "out of memory");
        goto done;
    }
    if (BN_is_zero(priv) || BN_cmp(priv, EC_GROUP_get0_order(group)) >= 0) {
        error = fwrel_error_set(FWREL_EKEY, "the HMAC key derives no valid P-256 key");
        goto done;
    }
    if (EC_POINT_mul(group, pub, priv, NULL, NULL, NULL) != 1 ||
        EC_POINT_point2oct(group, pub, POINT_CONVERSION_UNCOMPRESSED, point, sizeof(point), NULL) !=
            sizeof(point) ||
        (bld = OSSL_PARAM_BLD_new()) == NULL ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_KEYPAIR, params) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot build the P-256 key");
        goto done;
    }
done:
    OPENSSL_cleanse(d, sizeof(d));
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EC_POINT_free(pub);
    BN_clear_free(priv);
    EC_GROUP_free(group);
    return error;
}

static int generate_pair(EVP_PKEY **out, int alg)
{
    switch (alg) {
    case FWREL_ALG_RSA3072:
        return fwrel_key_generate(out, FWREL_KEY_RSA3072);
    case FWREL_ALG_ECDSA192:
        return fwrel_key_generate(out, FWREL_KEY_ECDSA192);
    case FWREL_ALG_ECDSA256:
        return fwrel_key_generate(out, FWREL_KEY_ECDSA256);
    case FWREL_ALG_ECDSA384:
        return fwrel_key_generate(out, FWREL_KEY_ECDSA384);
    case FWREL_ALG_RSA4096:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
        break;
    case FWREL_ALG_ED25519:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    case FWREL_ALG_X25519:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        break;
    default:
        return fwrel_error_set(FWREL_EUSAGE, "not a key pair algorithm");
    }
    if (*out == NULL)
        return fwrel_error_set_openssl(FWREL_EKEY, "cannot generate a %s key", fwrel_alg_name(alg));
    return 0;
}

static size_t secret_len(int alg)
{
    switch (alg) {
    case FWREL_ALG_AES128:
        return 16;
    case FWREL_ALG_AES256:
    case FWREL_ALG_HMAC256:
        return 32;
    case FWREL_ALG_AES512:
        return 64;
    default:
        return 0;
    }
}

/* The algorithm a public key is, in the policy's terms (0 when none fits). */
static int alg_of(const EVP_PKEY *key)
{
    int type;
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        return EVP_PKEY_get_bits(key) == 4096   ? FWREL_ALG_RSA4096
               : EVP_PKEY_get_bits(key) == 3072 ? FWREL_ALG_RSA3072
                                                : 0;
    case EVP_PKEY_ED25519:
        return FWREL_ALG_ED25519;
    case EVP_PKEY_X25519:
        return FWREL_ALG_X25519;
    default:
        if (fwrel_key_type_of(&type, key) != 0) {
            fwrel_error_clear();
            return 0;
        }
        return type == FWREL_KEY_ECDSA192   ? FWREL_ALG_ECDSA192
               : type == FWREL_KEY_ECDSA256 ? FWREL_ALG_ECDSA256
               : type == FWREL_KEY_ECDSA384 ? FWREL_ALG_ECDSA384
                                            : 0;
    }
}

int fwrel_keystore_key_alg(const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(key != NULL);
    return alg_of(key);
}

static int check_new(const fwrel_keystore *ks, const fwrel_keystore_new *spec, int rotate,
                     unsigned *epoch)
{
    if (ks->lock_fd < 0)
        return fwrel_error_set(FWREL_EUSAGE, "keystore not opened for writing");
    if (spec == NULL || !valid_name(spec->name))
        return fwrel_error_set(FWREL_EUSAGE, "bad key name");
    if (!fwrel_policy_alg_allowed(spec->purpose, spec->alg))
        return fwrel_error_set(FWREL_EUSAGE, "%s is not allowed for %s", fwrel_alg_name(spec->alg),
                               fwrel_purpose_name(spec->purpose));
    if ((spec->purpose == FWREL_PURPOSE_SECURE_BOOT) != (spec->slot >= 0) || spec->slot > 2)
        return fwrel_error_set(FWREL_EUSAGE, "a slot 0..2 is for secure-boot keys only");
    if (ks->n >= FWREL_KS_MAX_ENTRIES)
        return fwrel_error_set(FWREL_EKEY, "keystore holds %d keys already", FWREL_KS_MAX_ENTRIES);
    const fwrel_keystore_entry *old = fwrel_keystore_find(ks, spec->name);
    *epoch = old != NULL ? old->epoch + 1 : 1;
    if (old != NULL && !rotate)
        return fwrel_error_set(FWREL_EKEY, "key %s exists (id %s, %s)", old->name, old->id,
                               fwrel_keystore_status_name(old->status));
    if (old != NULL && (old->purpose != spec->purpose))
        return fwrel_error_set(FWREL_EKEY, "key %s exists with purpose %s", old->name,
                               fwrel_purpose_name(old->purpose));
    return 0;
}

/* Append the new entry (the old active one of its name retired), in memory: the index is
 * written when the change is committed. */
static int add_entry(fwrel_keystore *ks, fwrel_keystore_entry *e, const fwrel_keystore_entry **out)
{
    fwrel_keystore_entry *v = realloc(ks->e, (ks->n + 1) * sizeof(*v));
    if (v == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    ks->e = v;
    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(v[i].name, e->name) == 0 && v[i].status == FWREL_KS_ACTIVE) {
            v[i].status = FWREL_KS_RETIRED;
            memcpy(v[i].changed, e->created, sizeof(v[i].changed));
        }
    v[ks->n++] = *e;
    e->uri = NULL; /* owned by the keystore now */
    ks->dirty = 1;
    if (out != NULL)
        *out = &ks->e[ks->n - 1];
    return 0;
}

/* Write the files of a new entry into the staging directory and add it. */
static int generate_staged(fwrel_keystore *ks, const fwrel_keystore_new *spec, const char *pass,
                           size_t pass_len, int rotate, const fwrel_keystore_entry **out)
{
    fwrel_keystore_entry e;
    EVP_PKEY *key = NULL;
    uint8_t secret[FWREL_KS_SECRET_MAX], id[32];
    size_t slen = 0, keep = ks->nstaged;
    char path[4200];
    int error;

    memset(&e, 0, sizeof(e));
    if ((error = check_new(ks, spec, rotate, &e.epoch)) != 0)
        return error;
    memcpy(e.name, spec->name, strlen(spec->name) + 1);
    e.purpose = spec->purpose;
    e.alg = spec->alg;
    e.slot = spec->slot;
    e.status = FWREL_KS_ACTIVE;
    e.encrypted = pass != NULL;
    now_rfc3339(e.created);

    if ((slen = secret_len(spec->alg)) != 0) {
        /* A raw secret is known by a random id, drawn apart from it: the id goes into logs and
         * listings, and a hash of the secret would let anyone confirm a guess of it. */
        if (RAND_priv_bytes(secret, (int)slen) != 1 || RAND_bytes(id, sizeof(id)) != 1) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "no randomness");
            goto done;
        }
        fwrel_hex(e.id, id, sizeof(id));
    } else if (spec->purpose == FWREL_PURPOSE_IMAGE_ENCRYPT && spec->alg == FWREL_ALG_ECDSA256) {
        /* As esp_enc_img_gen --generate_ecc_key: draw HMAC keys until one derives a key. */
        slen = 32;
        do {
            if (RAND_priv_bytes(secret, 32) != 1) {
                error = fwrel_error_set_openssl(FWREL_EKEY, "no randomness");
                goto done;
            }
            error = fwrel_keystore_derive_ecc_image_key(&key, secret);
        } while (error == FWREL_EKEY && key == NULL &&
                 strstr(fwrel_error_last()->message, "derives no valid") != NULL);
        if (error)
            goto done;
    } else if ((error = generate_pair(&key, spec->alg)) != 0) {
        goto done;
    }
    if (key != NULL && (error = fwrel_key_id(e.id, key)) != 0)
        goto done;

    if (key != NULL) {
        snprintf(e.priv, sizeof(e.priv), "keys/%s.%u.pem", e.name, e.epoch);
        snprintf(e.pub, sizeof(e.pub), "keys/%s.%u.pub.pem", e.name, e.epoch);
        if ((error = stage_path(path, sizeof(path), ks, e.priv)) != 0 ||
            (error = fwrel_key_write_private(key, path, pass, pass_len, 0)) != 0)
            goto done;
        if ((error = stage_path(path, sizeof(path), ks, e.pub)) != 0 ||
            (error = fwrel_key_write_public_mode(key, path, 0, 0600)) != 0)
            goto done;
    }
    if (slen != 0) {
        snprintf(e.secret, sizeof(e.secret), "keys/%s.%u.%s", e.name, e.epoch,
                 pass != NULL ? "sec" : "bin");
        if ((error = stage_path(path, sizeof(path), ks, e.secret)) != 0)
            goto done;
        error = pass != NULL ? seal_secret(path, secret, slen, pass, pass_len, e.id)
                             : fwrel_io_write_file(path, secret, slen, 0, 0600);
        if (error)
            goto done;
    }
    error = add_entry(ks, &e, out);
done:
    if (error)
        unstage(ks, keep);
    OPENSSL_cleanse(secret, sizeof(secret));
    fwrel_key_free(key);
    return error;
}

static int ks_generate(fwrel_keystore *ks, const fwrel_keystore_new *spec, const char *pass,
                       size_t pass_len, int rotate, const fwrel_keystore_entry **out)
{
    FWREL_ASSERT_ARG(ks != NULL);
    int implicit = ks->txn == NULL, error;
    if (implicit && (error = check_new(ks, spec, rotate, &(unsigned){0})) != 0)
        return error;
    if (implicit && (error = fwrel_keystore_begin(ks)) != 0)
        return error;
    error = generate_staged(ks, spec, pass, pass_len, rotate, out);
    return implicit ? implicit_end(ks, error) : error;
}

static int add_hsm_staged(fwrel_keystore *ks, const fwrel_keystore_new *spec, const char *uri,
                          const fwrel_pkey *pub, int rotate, const fwrel_keystore_entry **out)
{
    fwrel_keystore_entry e;
    char path[4200];
    size_t keep = ks->nstaged;
    int error;

    memset(&e, 0, sizeof(e));
    if ((error = check_new(ks, spec, rotate, &e.epoch)) != 0)
        return error;
    if (strncmp(uri, "pkcs11:", 7) != 0 || strlen(uri) > 4096)
        return fwrel_error_set(FWREL_EUSAGE, "not a pkcs11: URI");
    if (alg_of(pub) != spec->alg)
        return fwrel_error_set(FWREL_EKEY, "the HSM key is not %s", fwrel_alg_name(spec->alg));
    memcpy(e.name, spec->name, strlen(spec->name) + 1);
    e.purpose = spec->purpose;
    e.alg = spec->alg;
    e.slot = spec->slot;
    e.status = FWREL_KS_ACTIVE;
    now_rfc3339(e.created);
    if ((error = fwrel_key_id(e.id, pub)) != 0)
        return error;
    snprintf(e.pub, sizeof(e.pub), "keys/%s.%u.pub.pem", e.name, e.epoch);
    if ((error = stage_path(path, sizeof(path), ks, e.pub)) != 0 ||
        (error = fwrel_key_write_public_mode(pub, path, 0, 0600)) != 0)
        goto done;
    if ((e.uri = strdup(uri)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    error = add_entry(ks, &e, out);
done:
    if (error) {
        unstage(ks, keep);
        free(e.uri);
    }
    return error;
}

static int ks_add_hsm(fwrel_keystore *ks, const fwrel_keystore_new *spec, const char *uri,
                      const fwrel_pkey *pub, int rotate, const fwrel_keystore_entry **out)
{
    FWREL_ASSERT_ARG(ks != NULL && uri != NULL && pub != NULL);
    int implicit = ks->txn == NULL, error;
    if (implicit && (error = check_new(ks, spec, rotate, &(unsigned){0})) != 0)
        return error;
    if (implicit && (error = fwrel_keystore_begin(ks)) != 0)
        return error;
    error = add_hsm_staged(ks, spec, uri, pub, rotate, out);
    return implicit ? implicit_end(ks, error) : error;
}

static int ks_revoke(fwrel_keystore *ks, const char *name, int reason, const char *since,
                     const fwrel_keystore_entry **out)
{
    FWREL_ASSERT_ARG(
        ks != NULL && name != NULL &&
        (reason == FWREL_KS_REASON_SUPERSEDED || reason == FWREL_KS_REASON_COMPROMISED));
    size_t at = ks->n;
    int implicit = ks->txn == NULL, error;
    char now[21], from[21];

    if (ks->lock_fd < 0)
        return fwrel_error_set(FWREL_EUSAGE, "keystore not opened for writing");
    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(ks->e[i].name, name) == 0 && ks->e[i].status == FWREL_KS_ACTIVE)
            at = i;
    if (at == ks->n)
        return fwrel_error_set(FWREL_EKEY, "no active key %.64s", name);
    now_rfc3339(now);
    if (since == NULL)
        memcpy(from, now, sizeof(from));
    else if ((error = fwrel_keystore_parse_time(from, since)) != 0)
        return error;
    if (strcmp(from, now) > 0)
        return fwrel_error_set(FWREL_EUSAGE, "the revocation date %s is in the future", from);
    if (strcmp(from, ks->e[at].created) < 0)
        return fwrel_error_set(FWREL_EUSAGE,
                               "the revocation date %s is before key %s was made (%s)", from, name,
                               ks->e[at].created);
    if (implicit && (error = fwrel_keystore_begin(ks)) != 0)
        return error;
    ks->e[at].status = FWREL_KS_REVOKED;
    ks->e[at].reason = reason;
    memcpy(ks->e[at].changed, now, sizeof(now));
    memcpy(ks->e[at].since, from, sizeof(from));
    ks->dirty = 1;
    if (implicit && (error = implicit_end(ks, 0)) != 0)
        return error;
    if (out != NULL)
        *out = &ks->e[at];
    return 0;
}

/* --- loading ------------------------------------------------------------------------- */

/* An entry's private key file decrypted (not yet checked against the index's id). */
static int read_private(fwrel_pkey **out, const fwrel_keystore *ks, const fwrel_keystore_entry *e,
                        const char *pass, size_t pass_len)
{
    char path[4200];
    int error;
    *out = NULL;
    if (e->priv[0] == '\0')
        return fwrel_error_set(FWREL_EKEY, "key %s has no private key file%s", e->name,
                               e->uri != NULL ? " (it is an HSM key)" : "");
    if ((error = fwrel_keystore_path(path, sizeof(path), ks, e->priv)) != 0 ||
        (error = fwrel_key_load_private_pass(out, path, e->encrypted ? pass : NULL,
                                             e->encrypted ? pass_len : 0)) != 0)
        return fwrel_error_prefix("key %s (id %s)", e->name, e->id);
    return 0;
}

/* An entry's sealed secret opened (or its unencrypted .bin read): the bytes and the version of
 * the seal (0 for a .bin), not yet checked against the index. */
static int read_secret(uint8_t **out, size_t *len, int *version, const fwrel_keystore *ks,
                       const fwrel_keystore_entry *e, const char *pass, size_t pass_len)
{
    char path[4200];
    uint8_t *file = NULL;
    size_t file_len = 0;
    int error;

    *out = NULL;
    *len = 0;
    *version = 0;
    if (e->secret[0] == '\0')
        return fwrel_error_set(FWREL_EKEY, "key %s has no secret", e->name);
    if ((error = fwrel_keystore_path(path, sizeof(path), ks, e->secret)) != 0 ||
        (error = fwrel_io_read_small(&file, &file_len, path, 4096)) != 0)
        return fwrel_error_prefix("key %s (id %s)", e->name, e->id);
    if (!e->encrypted) {
        *out = file;
        *len = file_len;
        return 0;
    }
    if ((error = open_secret(out, len, version, file, file_len, pass, pass_len, e->id)) != 0)
        fwrel_error_prefix("key %s (id %s)", e->name, e->id);
    fwrel_io_free_secret(file, file_len);
    return error;
}

/*
 * One passphrase opens every key of a keystore: it is the keystore's, and its failure names the
 * keystore, not the key it was tried on (which may not be the one the caller uses). A key file
 * that does not decrypt with it (FWREL_EKEY) means a wrong passphrase; the keystore's own files
 * are written by fwrel_key_write_private() and seal_secret() only.
 */
static int check_pass(const fwrel_keystore *ks, const char *pass, size_t pass_len)
{
    int seen_pem = 0, seen_sec = 0, error = 0;
    for (size_t i = 0; i < ks->n && !(seen_pem && seen_sec); i++) {
        const fwrel_keystore_entry *e = &ks->e[i];
        if (!e->encrypted)
            continue;
        if (pass == NULL)
            return fwrel_error_set(FWREL_EKEY, "its keys are encrypted: a passphrase is needed");
        if (e->priv[0] != '\0' && !seen_pem) {
            fwrel_pkey *key = NULL;
            seen_pem = 1;
            error = read_private(&key, ks, e, pass, pass_len);
            fwrel_key_free(key);
        } else if (e->secret[0] != '\0' && !seen_sec) {
            uint8_t *s = NULL;
            size_t n = 0;
            int version = 0;
            seen_sec = 1;
            error = read_secret(&s, &n, &version, ks, e, pass, pass_len);
            fwrel_io_free_secret(s, n);
        }
        if (error == FWREL_EKEY)
            return fwrel_error_set(FWREL_EKEY, "wrong keystore passphrase");
        if (error)
            return error;
    }
    return 0;
}

static int load_private(fwrel_pkey **out, const fwrel_keystore *ks, const fwrel_keystore_entry *e,
                        const char *pass, size_t pass_len)
{
    char id[65];
    int error;
    if ((error = read_private(out, ks, e, pass, pass_len)) != 0)
        return error;
    if ((error = fwrel_key_id(id, *out)) != 0 ||
        (strcmp(id, e->id) != 0 &&
         (error = fwrel_error_set(FWREL_EKEY, "%s is not the key the index names (id %s)", e->priv,
                                  e->id)) != 0)) {
        fwrel_key_free(*out);
        *out = NULL;
    }
    return error;
}

static int load_public(fwrel_pkey **out, const fwrel_keystore *ks, const fwrel_keystore_entry *e)
{
    char path[4200], id[65];
    int error;

    *out = NULL;
    if (e->pub[0] == '\0')
        return fwrel_error_set(FWREL_EKEY, "key %s has no public key", e->name);
    if ((error = fwrel_keystore_path(path, sizeof(path), ks, e->pub)) != 0 ||
        (error = fwrel_key_load_public(out, path, 0)) != 0)
        return error;
    if ((error = fwrel_key_id(id, *out)) != 0 ||
        (strcmp(id, e->id) != 0 &&
         (error = fwrel_error_set(FWREL_EKEY, "%s is not the key the index names (id %s)", e->pub,
                                  e->id)) != 0)) {
        fwrel_key_free(*out);
        *out = NULL;
    }
    return error;
}

static int load_secret(uint8_t **out, size_t *len, const fwrel_keystore *ks,
                       const fwrel_keystore_entry *e, const char *pass, size_t pass_len)
{
    char id[65];
    uint8_t *plain = NULL;
    size_t n = 0;
    int error, version = 0;

    *out = NULL;
    *len = 0;
    if ((error = read_secret(&plain, &n, &version, ks, e, pass, pass_len)) != 0)
        return error;
    size_t want = secret_len(e->alg) != 0 ? secret_len(e->alg) : 32;
    if (n != want) {
        error = fwrel_error_set(FWREL_EFORMAT, "%s holds %zu bytes, not %zu", e->secret, n, want);
        goto done;
    }
    /* Version 2 binds the id in the authenticated data; an unencrypted .bin holds the bare
     * secret, which a random id cannot be checked against. */
    if (secret_len(e->alg) != 0 && version == 1) {
        secret_id(id, plain, n);
        if (strcmp(id, e->id) != 0) {
            error = fwrel_error_set(FWREL_EKEY, "%s is not the secret the index names (id %s)",
                                    e->secret, e->id);
            goto done;
        }
    }
    *out = plain;
    *len = n;
    plain = NULL;
done:
    fwrel_io_free_secret(plain, n);
    return error;
}

unsigned fwrel_keystore_match_key(fwrel_keystore_match *m, const fwrel_keystore *ks,
                                  const fwrel_policy_key *k, const char *id)
{
    FWREL_ASSERT_ARG(m != NULL && ks != NULL && k != NULL);
    const fwrel_keystore_entry *e = fwrel_keystore_find(ks, k->name);
    m->entry = e;
    m->pinned = k->id[0] != '\0' ? fwrel_keystore_find_id(ks, k->id) : NULL;
    m->diff = 0;
    if (e == NULL)
        return m->diff = FWREL_KS_DIFF_ABSENT;
    if (e->purpose != k->purpose)
        m->diff |= FWREL_KS_DIFF_PURPOSE;
    if (e->alg != k->alg)
        m->diff |= FWREL_KS_DIFF_ALG;
    if (e->status != FWREL_KS_ACTIVE)
        m->diff |= FWREL_KS_DIFF_INACTIVE;
    if (k->id[0] != '\0' && strcmp(k->id, e->id) != 0)
        m->diff |= FWREL_KS_DIFF_PIN;
    if (k->hsm != NULL ? e->uri == NULL || strcmp(e->uri, k->hsm) != 0 : e->uri != NULL)
        m->diff |= FWREL_KS_DIFF_HOLDER;
    if (id != NULL && strcmp(e->id, id) != 0)
        m->diff |= FWREL_KS_DIFF_ID;
    return m->diff;
}

/* A key is signed with wherever it is held: the holder is not resolve's to check; nor is its
 * status (retired, revoked): whether it is valid at a release's time is the rulebook's. */
int fwrel_keystore_resolve(const fwrel_keystore_entry **entries, const fwrel_keystore *ks,
                           const fwrel_policy *p)
{
    FWREL_ASSERT_ARG(entries != NULL && ks != NULL && p != NULL);
    for (size_t i = 0; i < p->nkeys; i++) {
        const fwrel_policy_key *k = &p->keys[i];
        fwrel_keystore_match m;
        unsigned diff = fwrel_keystore_match_key(&m, ks, k, NULL);
        const fwrel_keystore_entry *e = m.entry;
        entries[i] = NULL;
        if (k->id[0] != '\0' && m.pinned == NULL)
            return fwrel_error_set(FWREL_EKEY, "key %s (id %s) is not in the keystore", k->name,
                                   k->id);
        if (diff & FWREL_KS_DIFF_ABSENT)
            return fwrel_error_set(FWREL_EKEY, "key %s is not in the keystore", k->name);
        if (diff & FWREL_KS_DIFF_PIN)
            return fwrel_error_set(FWREL_EKEY,
                                   "key %s: the policy pins id %s, the keystore's active key is %s",
                                   k->name, k->id, e->id);
        if (diff & (FWREL_KS_DIFF_PURPOSE | FWREL_KS_DIFF_ALG))
            return fwrel_error_set(FWREL_EKEY, "key %s (id %s) is %s %s, the policy says %s %s",
                                   k->name, e->id, fwrel_purpose_name(e->purpose),
                                   fwrel_alg_name(e->alg), fwrel_purpose_name(k->purpose),
                                   fwrel_alg_name(k->alg));
        entries[i] = e;
    }
    return 0;
}

/* --- the public changes and loads: a failure names the keystore ------------------------- */

int fwrel_keystore_generate(fwrel_keystore *ks, const fwrel_keystore_new *spec, const char *pass,
                            size_t pass_len, int rotate, const fwrel_keystore_entry **out)
{
    FWREL_ASSERT_ARG(ks != NULL);
    return named(ks, ks_generate(ks, spec, pass, pass_len, rotate, out));
}

int fwrel_keystore_add_hsm(fwrel_keystore *ks, const fwrel_keystore_new *spec, const char *uri,
                           const fwrel_pkey *pub, int rotate, const fwrel_keystore_entry **out)
{
    FWREL_ASSERT_ARG(ks != NULL);
    return named(ks, ks_add_hsm(ks, spec, uri, pub, rotate, out));
}

int fwrel_keystore_revoke(fwrel_keystore *ks, const char *name, int reason, const char *since,
                          const fwrel_keystore_entry **out)
{
    FWREL_ASSERT_ARG(ks != NULL);
    return named(ks, ks_revoke(ks, name, reason, since, out));
}

int fwrel_keystore_check_pass(const fwrel_keystore *ks, const char *pass, size_t pass_len)
{
    FWREL_ASSERT_ARG(ks != NULL);
    return named(ks, check_pass(ks, pass, pass_len));
}

int fwrel_keystore_load_private(fwrel_pkey **out, const fwrel_keystore *ks,
                                const fwrel_keystore_entry *e, const char *pass, size_t pass_len)
{
    FWREL_ASSERT_ARG(out != NULL && ks != NULL && e != NULL);
    return named(ks, load_private(out, ks, e, pass, pass_len));
}

int fwrel_keystore_load_public(fwrel_pkey **out, const fwrel_keystore *ks,
                               const fwrel_keystore_entry *e)
{
    FWREL_ASSERT_ARG(out != NULL && ks != NULL && e != NULL);
    return named(ks, load_public(out, ks, e));
}

int fwrel_keystore_load_secret(uint8_t **out, size_t *len, const fwrel_keystore *ks,
                               const fwrel_keystore_entry *e, const char *pass, size_t pass_len)
{
    FWREL_ASSERT_ARG(out != NULL && len != NULL && ks != NULL && e != NULL);
    return named(ks, load_secret(out, len, ks, e, pass, pass_len));
}
