/* policy.c - YAML release policies (policy.h, docs/policy.md). */
#include "fwrel/policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/sha.h>

#include "fwrel/io.h"
#include "fwrel/release.h"
#include "util.h"
#include "yamltree.h"

static const char *const purpose_names[] = {
    NULL,   "secure-boot", "manifest-sign", "manifest-encrypt", "image-encrypt", "flash-encrypt",
    "hmac", "mender-sign", "aws-ota-sign"};
static const char *const alg_names[] = {NULL,       "rsa3072",  "rsa4096", "ecdsa192",
                                        "ecdsa256", "ecdsa384", "ed25519", "x25519",
                                        "aes128",   "aes256",   "aes512",  "hmac256"};
static const char *const channel_names[FWREL_CHANNEL_COUNT] = {"dev", "beta", "prod"};
static const char *const channel_keys[] = {"dev", "beta", "prod", NULL};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *fwrel_purpose_name(int purpose)
{
    return purpose > 0 && (size_t)purpose < COUNT(purpose_names) ? purpose_names[purpose]
                                                                 : "unknown";
}

const char *fwrel_alg_name(int alg)
{
    return alg > 0 && (size_t)alg < COUNT(alg_names) ? alg_names[alg] : "unknown";
}

static int where(const yt_node *n, const char *fmt, ...) FWREL_PRINTF(2, 3);
static int where(const yt_node *n, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fwrel_error_set_at(FWREL_EFORMAT, (unsigned)n->line, (unsigned)n->col, "%s", msg);
}

/*
 * Why an audit log path is refused, or NULL. It is written and committed inside the release
 * repository (a bare git repository): a normalized relative path of plain names (no "", ".",
 * "..", nor any hidden name such as .git), whose first name is none of git's own (hooks, refs,
 * objects...: a log there would be a hook, a ref, an object), ending in .jsonl.
 */
static const char *audit_log_why(const char *path)
{
    static const char *const in_gitdir[] = {"hooks",       "refs",        "objects",
                                            "info",        "logs",        "branches",
                                            "worktrees",   "modules",     "lfs",
                                            "rr-cache",    "HEAD",        "config",
                                            "description", "packed-refs", "index",
                                            "shallow",     "commondir",   "FETCH_HEAD",
                                            "ORIG_HEAD",   "MERGE_HEAD",  "fwrel-release.lock",
                                            NULL};
    size_t len = strlen(path);
    if (path[0] == '/')
        return "an absolute path: give one relative to the release repository";
    if (len < 7 || strcmp(path + len - 6, ".jsonl") != 0)
        return "the log is JSON lines: its name ends in .jsonl";
    for (const char *c = path; *c != '\0';) {
        size_t n = strcspn(c, "/");
        if (n == 0)
            return "an empty path component (//, or a trailing /)";
        if (c[0] == '.')
            return "a component starts with '.' (., .., .git or another hidden name)";
        for (size_t i = 0; i < n; i++)
            if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') ||
                  (c[i] >= '0' && c[i] <= '9') || c[i] == '.' || c[i] == '_' || c[i] == '-'))
                return "components are names of [A-Za-z0-9._-]";
        if (c == path)
            for (size_t i = 0; in_gitdir[i] != NULL; i++)
                if (strlen(in_gitdir[i]) == n && strncasecmp(c, in_gitdir[i], n) == 0)
                    return "inside git's own files of the release repository";
        c += n;
        if (*c == '/' && *++c == '\0')
            return "an empty path component (//, or a trailing /)";
    }
    return NULL;
}

static const yt_node *need(const yt_node *map, const char *key, int *error)
{
    const yt_node *n = yt_get(map, key);
    if (n == NULL)
        *error = where(map, "missing '%s'", key);
    return n;
}

/* A scalar that is a name: [a-z0-9][a-z0-9._-]{0,63}. */
static int get_name(char out[FWREL_POLICY_NAME_MAX + 1], const yt_node *n, const char *what)
{
    const char *s;
    int error = yt_str(&s, n, FWREL_POLICY_NAME_MAX, what);
    if (error)
        return error;
    size_t len = strlen(s);
    int ok = len > 0 && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9'));
    for (size_t i = 0; ok && i < len; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
             s[i] == '_' || s[i] == '-';
    if (!ok)
        return where(n, "%s '%s' is not a name ([a-z0-9][a-z0-9._-]*)", what, s);
    memcpy(out, s, len + 1);
    return 0;
}

static int lookup(const char *const *names, size_t count, const char *s)
{
    for (size_t i = 1; i < count; i++)
        if (names[i] != NULL && strcmp(names[i], s) == 0)
            return (int)i;
    return 0;
}

int fwrel_purpose_parse(const char *name)
{
    return name != NULL ? lookup(purpose_names, COUNT(purpose_names), name) : 0;
}

int fwrel_alg_parse(const char *name)
{
    return name != NULL ? lookup(alg_names, COUNT(alg_names), name) : 0;
}

/* Which algorithms each purpose allows (docs/policy.md). */
int fwrel_policy_alg_allowed(int purpose, int alg)
{
    switch (purpose) {
    case FWREL_PURPOSE_SECURE_BOOT:
        return alg == FWREL_ALG_RSA3072 || alg == FWREL_ALG_ECDSA192 || alg == FWREL_ALG_ECDSA256 ||
               alg == FWREL_ALG_ECDSA384;
    case FWREL_PURPOSE_MANIFEST_SIGN:
        return alg == FWREL_ALG_RSA3072 || alg == FWREL_ALG_ECDSA256 || alg == FWREL_ALG_ED25519;
    case FWREL_PURPOSE_MANIFEST_ENCRYPT:
        return alg == FWREL_ALG_RSA4096 || alg == FWREL_ALG_X25519 || alg == FWREL_ALG_ECDSA256;
    case FWREL_PURPOSE_IMAGE_ENCRYPT:
        return alg == FWREL_ALG_RSA3072 || alg == FWREL_ALG_ECDSA256;
    case FWREL_PURPOSE_FLASH_ENCRYPT:
        return alg == FWREL_ALG_AES128 || alg == FWREL_ALG_AES256 || alg == FWREL_ALG_AES512;
    case FWREL_PURPOSE_HMAC:
        return alg == FWREL_ALG_HMAC256;
    case FWREL_PURPOSE_MENDER_SIGN: /* what mender-artifact verifies (docs/exports.md) */
        return alg == FWREL_ALG_ECDSA256 || alg == FWREL_ALG_RSA3072;
    case FWREL_PURPOSE_AWS_OTA_SIGN: /* AWS IoT OTA customCodeSigning: ECDSA P-256 */
        return alg == FWREL_ALG_ECDSA256;
    default:
        return 0;
    }
}

static int parse_keys(fwrel_policy *p, const yt_node *m)
{
    static const char *const keys[] = {"purpose", "alg", "id", "hsm", NULL};
    int error;
    if ((error = yt_expect(m, YT_MAP, "keys")) != 0)
        return error;
    if (m->count / 2 > FWREL_POLICY_MAX_KEYS)
        return where(m, "%zu keys, at most %d", m->count / 2, FWREL_POLICY_MAX_KEYS);
    if (m->count == 0)
        return where(m, "keys must name at least one key");
    for (size_t i = 0; i < m->count; i += 2) {
        fwrel_policy_key *k = &p->keys[p->nkeys];
        const yt_node *kn = m->items[i], *v = m->items[i + 1], *n;
        const char *s;
        if ((error = get_name(k->name, kn, "key name")) != 0 ||
            (error = yt_expect(v, YT_MAP, k->name)) != 0 || (error = yt_check_keys(v, keys)) != 0)
            return error;
        if ((n = need(v, "purpose", &error)) == NULL || (error = yt_str(&s, n, 32, "purpose")) != 0)
            return error;
        if ((k->purpose = lookup(purpose_names, COUNT(purpose_names), s)) == 0)
            return where(n, "unknown purpose '%s'", s);
        if ((n = need(v, "alg", &error)) == NULL || (error = yt_str(&s, n, 32, "alg")) != 0)
            return error;
        if ((k->alg = lookup(alg_names, COUNT(alg_names), s)) == 0)
            return where(n, "unknown algorithm '%s'", s);
        if (!fwrel_policy_alg_allowed(k->purpose, k->alg))
            return where(n, "%s cannot be used for %s", s, fwrel_purpose_name(k->purpose));
        if ((n = yt_get(v, "id")) != NULL) {
            uint8_t id[32];
            if ((error = yt_str(&s, n, 64, "id")) != 0)
                return error;
            if (strlen(s) != 64 || fwrel_unhex(id, sizeof(id), s) != 0)
                return where(n, "id must be 64 hex digits (SHA-256 of the public key)");
            fwrel_hex(k->id, id, sizeof(id));
        }
        if ((n = yt_get(v, "hsm")) != NULL) {
            if ((error = yt_str(&s, n, 4096, "hsm")) != 0)
                return error;
            if (strncmp(s, "pkcs11:", 7) != 0)
                return where(n, "hsm must be a pkcs11: URI");
            if (k->alg >= FWREL_ALG_AES128)
                return where(n, "%s keys cannot be held in an HSM here", fwrel_alg_name(k->alg));
            if ((k->hsm = strdup(s)) == NULL)
                return fwrel_error_set(FWREL_EIO, "out of memory");
        }
        p->nkeys++;
    }
    return 0;
}

/* A key reference: a name defined in keys: with the given purpose. */
static int key_ref(size_t *out, const fwrel_policy *p, const yt_node *n, int purpose)
{
    char name[FWREL_POLICY_NAME_MAX + 1];
    int error = get_name(name, n, "key");
    if (error)
        return error;
    for (size_t i = 0; i < p->nkeys; i++) {
        if (strcmp(p->keys[i].name, name) != 0)
            continue;
        if (p->keys[i].purpose != purpose)
            return where(n, "key '%s' is a %s key, not %s", name,
                         fwrel_purpose_name(p->keys[i].purpose), fwrel_purpose_name(purpose));
        *out = i;
        return 0;
    }
    return where(n, "key '%s' is not defined in keys", name);
}

static int key_list(size_t *out, size_t *count, const fwrel_policy *p, const yt_node *n,
                    int purpose, const char *what)
{
    int error;
    if ((error = yt_expect(n, YT_SEQ, what)) != 0)
        return error;
    if (n->count == 0 || n->count > FWREL_POLICY_MAX_LIST)
        return where(n, "%s must list 1 to %d keys", what, FWREL_POLICY_MAX_LIST);
    for (size_t i = 0; i < n->count; i++) {
        if ((error = key_ref(&out[i], p, n->items[i], purpose)) != 0)
            return error;
        for (size_t j = 0; j < i; j++)
            if (out[j] == out[i])
                return where(n->items[i], "key '%s' listed twice", p->keys[out[i]].name);
    }
    *count = n->count;
    return 0;
}

/* "Nh" or "Nd", 1 hour to 3650 days, in seconds. */
static int validity(uint64_t *out, const yt_node *n)
{
    const char *s;
    int error = yt_str(&s, n, 16, "validity");
    if (error)
        return error;
    size_t len = strlen(s);
    uint64_t v;
    char digits[16];
    if (len < 2 || len >= sizeof(digits) || (s[len - 1] != 'h' && s[len - 1] != 'd'))
        return where(n, "validity must be a number of hours or days, e.g. 30d or 12h");
    memcpy(digits, s, len - 1);
    digits[len - 1] = '\0';
    if (fwrel_parse_u64(&v, digits, 3650u * 24u) != 0 || v == 0)
        return where(n, "validity must be a number of hours or days, e.g. 30d or 12h");
    uint64_t secs = s[len - 1] == 'h' ? v * 3600 : v * 86400;
    if (v > 3650u * 24u || secs < 3600 || secs > 3650ull * 86400)
        return where(n, "validity must be between 1h and 3650d");
    *out = secs;
    return 0;
}

static int parse_secure_boot(fwrel_policy *p, const yt_node *sb)
{
    static const char *const keys[] = {"scheme", "slots", NULL};
    static const char *const schemes[] = {
        NULL, "sbv1", "sbv2-rsa3072", "sbv2-ecdsa192", "sbv2-ecdsa256", "sbv2-ecdsa384"};
    static const int scheme_alg[] = {0,
                                     FWREL_ALG_ECDSA256,
                                     FWREL_ALG_RSA3072,
                                     FWREL_ALG_ECDSA192,
                                     FWREL_ALG_ECDSA256,
                                     FWREL_ALG_ECDSA384};
    static const unsigned scheme_bit[] = {0,
                                          0,
                                          FWREL_SCHEME_RSA3072,
                                          FWREL_SCHEME_ECDSA192,
                                          FWREL_SCHEME_ECDSA256,
                                          FWREL_SCHEME_ECDSA384};
    const yt_node *n, *slots;
    const char *s;
    int error;
    if ((error = yt_expect(sb, YT_MAP, "secure_boot")) != 0 ||
        (error = yt_check_keys(sb, keys)) != 0)
        return error;
    if ((n = need(sb, "scheme", &error)) == NULL || (error = yt_str(&s, n, 32, "scheme")) != 0)
        return error;
    if ((p->scheme = lookup(schemes, COUNT(schemes), s)) == 0)
        return where(n,
                     "unknown scheme '%s' (sbv1, sbv2-rsa3072, sbv2-ecdsa192, sbv2-ecdsa256, "
                     "sbv2-ecdsa384)",
                     s);
    if (p->scheme == FWREL_POLICY_SBV1 ? !p->chip->sbv1
                                       : (p->chip->sbv2_schemes & scheme_bit[p->scheme]) == 0)
        return where(n, "%s does not support %s", p->chip->name, s);
    unsigned max = p->scheme == FWREL_POLICY_SBV1 ? 1 : p->chip->sbv2_blocks;
    if ((slots = need(sb, "slots", &error)) == NULL ||
        (error = yt_expect(slots, YT_SEQ, "slots")) != 0)
        return error;
    if (slots->count == 0 || slots->count > max)
        return where(slots, "%s with %s has 1 to %u key slots, not %zu", p->chip->name, s, max,
                     slots->count);
    for (size_t i = 0; i < slots->count; i++) {
        static const char *const skeys[] = {"slot", "key", NULL};
        const yt_node *e = slots->items[i];
        uint64_t slot;
        if ((error = yt_expect(e, YT_MAP, "slot")) != 0 || (error = yt_check_keys(e, skeys)) != 0)
            return error;
        if ((n = need(e, "slot", &error)) == NULL ||
            (error = yt_u64(&slot, n, max - 1, "slot")) != 0)
            return error;
        for (size_t j = 0; j < i; j++)
            if (p->slots[j].slot == slot)
                return where(n, "slot %u listed twice", (unsigned)slot);
        p->slots[i].slot = (unsigned)slot;
        if ((n = need(e, "key", &error)) == NULL ||
            (error = key_ref(&p->slots[i].key, p, n, FWREL_PURPOSE_SECURE_BOOT)) != 0)
            return error;
        if (p->keys[p->slots[i].key].alg != scheme_alg[p->scheme])
            return where(n, "key '%s' is %s; %s needs %s", p->keys[p->slots[i].key].name,
                         fwrel_alg_name(p->keys[p->slots[i].key].alg), s,
                         fwrel_alg_name(scheme_alg[p->scheme]));
    }
    p->nslots = slots->count;
    return 0;
}

static int parse_anti_rollback(fwrel_policy *p, const yt_node *ar)
{
    static const char *const keys[] = {"min_secure_version", "efuse_bits", "monotonic", NULL};
    const yt_node *n;
    uint64_t v;
    int error;
    if ((error = yt_expect(ar, YT_MAP, "anti_rollback")) != 0 ||
        (error = yt_check_keys(ar, keys)) != 0)
        return error;
    unsigned cap = strcmp(p->chip->name, "esp32") == 0 ? 32 : 16;
    if ((n = need(ar, "efuse_bits", &error)) == NULL ||
        (error = yt_u64(&v, n, cap, "efuse_bits")) != 0)
        return error;
    if (v == 0)
        return where(n, "efuse_bits must be 1 to %u on %s", cap, p->chip->name);
    p->efuse_bits = (unsigned)v;
    if ((n = need(ar, "min_secure_version", &error)) == NULL ||
        (error = yt_u64(&v, n, p->efuse_bits, "min_secure_version")) != 0)
        return error;
    p->min_secure_version = (uint32_t)v;
    p->monotonic = 1;
    if ((n = yt_get(ar, "monotonic")) != NULL && (error = yt_bool(&p->monotonic, n, "monotonic")))
        return error;
    return 0;
}

struct manifest_defaults {
    size_t signers[FWREL_POLICY_MAX_LIST];
    size_t nsigners;
    unsigned threshold;
    uint64_t validity;
};

static int parse_manifest(fwrel_policy *p, struct manifest_defaults *d, const yt_node *m)
{
    static const char *const keys[] = {"signers", "threshold", "recipients", "validity", NULL};
    const yt_node *n;
    uint64_t v;
    int error;
    if ((error = yt_expect(m, YT_MAP, "manifest")) != 0 || (error = yt_check_keys(m, keys)) != 0)
        return error;
    if ((n = need(m, "signers", &error)) == NULL ||
        (error =
             key_list(d->signers, &d->nsigners, p, n, FWREL_PURPOSE_MANIFEST_SIGN, "signers")) != 0)
        return error;
    if ((n = need(m, "threshold", &error)) == NULL ||
        (error = yt_u64(&v, n, d->nsigners, "threshold")) != 0)
        return error;
    if (v == 0)
        return where(n, "threshold must be at least 1");
    d->threshold = (unsigned)v;
    if ((n = need(m, "recipients", &error)) == NULL ||
        (error = key_list(p->recipients, &p->nrecipients, p, n, FWREL_PURPOSE_MANIFEST_ENCRYPT,
                          "recipients")) != 0)
        return error;
    if ((n = need(m, "validity", &error)) == NULL || (error = validity(&d->validity, n)) != 0)
        return error;
    return 0;
}

static int parse_approvals(fwrel_policy *p, unsigned *required, const yt_node *a)
{
    static const char *const keys[] = {"fingerprints", "required", NULL};
    const yt_node *n;
    uint64_t v;
    int error;
    if ((error = yt_expect(a, YT_MAP, "approvals")) != 0 || (error = yt_check_keys(a, keys)) != 0)
        return error;
    if ((n = need(a, "fingerprints", &error)) == NULL ||
        (error = yt_expect(n, YT_SEQ, "fingerprints")) != 0)
        return error;
    if (n->count == 0 || n->count > FWREL_POLICY_MAX_APPROVERS)
        return where(n, "fingerprints must list 1 to %d keys", FWREL_POLICY_MAX_APPROVERS);
    for (size_t i = 0; i < n->count; i++) {
        const char *s;
        uint8_t fpr[20];
        if ((error = yt_str(&s, n->items[i], 40, "fingerprint")) != 0)
            return error;
        if (strlen(s) != 40 || fwrel_unhex(fpr, sizeof(fpr), s) != 0)
            return where(n->items[i], "fingerprint must be 40 hex digits (an OpenPGP v4 primary "
                                      "key fingerprint)");
        char *f = p->approvers[i];
        for (size_t j = 0; j < 40; j++)
            f[j] = (char)(s[j] >= 'a' && s[j] <= 'f' ? s[j] - 'a' + 'A' : s[j]);
        f[40] = '\0';
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->approvers[j], f) == 0)
                return where(n->items[i], "fingerprint listed twice");
    }
    p->napprovers = n->count;
    if ((n = need(a, "required", &error)) == NULL ||
        (error = yt_u64(&v, n, p->napprovers, "required")) != 0)
        return error;
    if (v == 0)
        return where(n, "required must be at least 1 (leave approvals out for none)");
    *required = (unsigned)v;
    return 0;
}

static int parse_channels(fwrel_policy *p, const struct manifest_defaults *d, unsigned approvals,
                          const yt_node *c)
{
    static const char *const keys[] = {"sign_slots",
                                       "manifest_signers",
                                       "manifest_threshold",
                                       "approvals_required",
                                       "validity",
                                       "allow_no_approvals",
                                       NULL};
    int error;
    if ((error = yt_expect(c, YT_MAP, "channels")) != 0 ||
        (error = yt_check_keys(c, channel_keys)) != 0)
        return error;
    if (c->count == 0)
        return where(c, "channels must define dev, beta or prod");
    for (size_t i = 0; i < c->count; i += 2) {
        const yt_node *name = c->items[i], *v = c->items[i + 1], *n;
        size_t ci = 0;
        while (strcmp(channel_names[ci], name->value) != 0)
            ci++;
        fwrel_policy_channel *ch = &p->channels[ci];
        uint64_t u;
        ch->present = 1;
        ch->name = channel_names[ci];
        ch->sign_slots = (1u << p->nslots) - 1;
        memcpy(ch->signers, d->signers, sizeof(ch->signers));
        ch->nsigners = d->nsigners;
        ch->threshold = d->threshold;
        ch->approvals_required = approvals;
        ch->validity = d->validity;
        if ((error = yt_expect(v, YT_MAP, ch->name)) != 0 || (error = yt_check_keys(v, keys)) != 0)
            return error;
        if ((n = yt_get(v, "sign_slots")) != NULL) {
            if ((error = yt_expect(n, YT_SEQ, "sign_slots")) != 0)
                return error;
            if (n->count == 0)
                return where(n, "sign_slots must name at least one slot");
            ch->sign_slots = 0;
            for (size_t k = 0; k < n->count; k++) {
                size_t j = 0;
                if ((error = yt_u64(&u, n->items[k], 2, "slot")) != 0)
                    return error;
                while (j < p->nslots && p->slots[j].slot != u)
                    j++;
                if (j == p->nslots)
                    return where(n->items[k], "slot %u is not in secure_boot.slots", (unsigned)u);
                ch->sign_slots |= 1u << j;
            }
            if (p->scheme != FWREL_POLICY_SBV1 &&
                __builtin_popcount(ch->sign_slots) > (int)p->chip->sbv2_blocks)
                return where(n, "%s checks at most %u signature blocks", p->chip->name,
                             p->chip->sbv2_blocks);
        }
        if ((n = yt_get(v, "manifest_signers")) != NULL &&
            (error = key_list(ch->signers, &ch->nsigners, p, n, FWREL_PURPOSE_MANIFEST_SIGN,
                              "manifest_signers")) != 0)
            return error;
        if ((n = yt_get(v, "manifest_threshold")) != NULL) {
            if ((error = yt_u64(&u, n, ch->nsigners, "manifest_threshold")) != 0)
                return error;
            if (u == 0)
                return where(n, "manifest_threshold must be at least 1");
            ch->threshold = (unsigned)u;
        }
        if (ch->threshold > ch->nsigners)
            return where(v, "threshold %u is more than the %zu signers", ch->threshold,
                         ch->nsigners);
        if ((n = yt_get(v, "approvals_required")) != NULL) {
            if ((error = yt_u64(&u, n, p->napprovers, "approvals_required")) != 0)
                return error;
            ch->approvals_required = (unsigned)u;
        }
        if ((n = yt_get(v, "validity")) != NULL && (error = validity(&ch->validity, n)) != 0)
            return error;
        /* A channel that needs no approval is weak: only on purpose (docs/policy.md). */
        if ((n = yt_get(v, "allow_no_approvals")) != NULL &&
            (error = yt_bool(&ch->allow_no_approvals, n, "allow_no_approvals")) != 0)
            return error;
        if (ch->approvals_required == 0 && !ch->allow_no_approvals)
            return where(v,
                         "channel '%s' requires no approvals: say allow_no_approvals: true if "
                         "that is intended",
                         ch->name);
        if (ch->approvals_required > 0 && ch->allow_no_approvals)
            return where(n, "allow_no_approvals: true, but channel '%s' requires %u approvals",
                         ch->name, ch->approvals_required);
    }
    return 0;
}

static int copy_str(char *out, size_t cap, const yt_node *n, const char *what)
{
    const char *s;
    int error = yt_str(&s, n, cap - 1, what);
    if (error)
        return error;
    if (s[0] == '\0')
        return where(n, "%s must not be empty", what);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

/* A base_url (the release section's, or an export's setting). */
static int get_base_url(char *out, size_t cap, const yt_node *n)
{
    int error = copy_str(out, cap, n, "base_url");
    if (error)
        return error;
    size_t len = strlen(out);
    if ((strncmp(out, "https://", 8) != 0 && strncmp(out, "http://", 7) != 0) ||
        out[len - 1] == '/')
        return where(n, "base_url must be an http(s) URL without a trailing '/'");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)out[i] <= 0x20 || (unsigned char)out[i] >= 0x7f)
            return where(n, "base_url must be printable ASCII without spaces");
    return 0;
}

/*
 * One entry of exports: a name, or a map with the name and the export's settings
 * ({name: https-dir, base_url: ...}, docs/exports.md). Which settings an export takes is in its
 * export.yaml: fwrel-bundle checks them against it (--check-policy, and before a release).
 */
static int parse_export(fwrel_policy *p, size_t i, const yt_node *e)
{
    const yt_node *n;
    int error;
    if (e->kind != YT_MAP)
        return get_name(p->exports[i], e, "export");
    if ((n = need(e, "name", &error)) == NULL || (error = get_name(p->exports[i], n, "export")))
        return error;
    if (e->count / 2 - 1 > FWREL_POLICY_EXPORT_SETTINGS_MAX)
        return where(e, "at most %d settings for an export", FWREL_POLICY_EXPORT_SETTINGS_MAX);
    for (size_t k = 0; k < e->count; k += 2) {
        const yt_node *key = e->items[k], *v = e->items[k + 1];
        if (strcmp(key->value, "name") == 0)
            continue;
        fwrel_policy_setting *st = &p->export_settings[i][p->nexport_settings[i]];
        size_t len = strlen(key->value);
        int ok = len > 0 && len <= FWREL_POLICY_NAME_MAX;
        for (size_t c = 0; ok && c < len; c++)
            ok = (key->value[c] >= 'a' && key->value[c] <= 'z') ||
                 (key->value[c] >= '0' && key->value[c] <= '9') || key->value[c] == '_';
        if (!ok)
            return where(key, "export setting '%.64s' is not a name ([a-z0-9_]*)", key->value);
        memcpy(st->name, key->value, len + 1);
        if (strcmp(st->name, "base_url") == 0) {
            if ((error = get_base_url(st->value, sizeof(st->value), v)) != 0)
                return error;
        } else {
            if ((error = copy_str(st->value, sizeof(st->value), v, st->name)) != 0)
                return error;
            for (const char *c = st->value; *c; c++)
                if ((unsigned char)*c < 0x20 || *c == 0x7f)
                    return where(v, "setting %s has a control character", st->name);
        }
        p->nexport_settings[i]++;
    }
    return 0;
}

static int parse_release(fwrel_policy *p, const yt_node *r)
{
    static const char *const keys[] = {"repository", "tag", "base_url", NULL};
    const yt_node *n;
    int error;
    if ((error = yt_expect(r, YT_MAP, "release")) != 0 || (error = yt_check_keys(r, keys)) != 0)
        return error;
    if ((n = yt_get(r, "base_url")) != NULL &&
        (error = get_base_url(p->base_url, sizeof(p->base_url), n)) != 0)
        return error;
    if ((n = need(r, "repository", &error)) == NULL ||
        (error = copy_str(p->repository, sizeof(p->repository), n, "repository")) != 0)
        return error;
    if ((n = need(r, "tag", &error)) == NULL ||
        (error = copy_str(p->tag, sizeof(p->tag), n, "tag")) != 0)
        return error;
    /* Only the three placeholders, each present: a tag must tell releases apart. */
    static const char *const ph[] = {"{product}", "{channel}", "{version}"};
    for (size_t i = 0; i < COUNT(ph); i++)
        if (strstr(p->tag, ph[i]) == NULL)
            return where(n, "tag must contain %s", ph[i]);
    for (const char *c = p->tag; *c; c++) {
        if (*c == '{') {
            size_t i = 0;
            while (i < COUNT(ph) && strncmp(c, ph[i], strlen(ph[i])) != 0)
                i++;
            if (i == COUNT(ph))
                return where(n, "tag has an unknown placeholder (use {product}, {channel}, "
                                "{version})");
            c += strlen(ph[i]) - 1;
        } else if (*c == '}' || *c == ' ' || *c == '~' || *c == '^' || *c == ':' || *c == '?' ||
                   *c == '*' || *c == '[' || *c == '\\' || (unsigned char)*c < 0x20) {
            return where(n, "tag has a character git refuses in a tag name");
        }
    }
    return 0;
}

static int parse_root(fwrel_policy *p, const yt_node *root)
{
    static const char *const keys[] = {"fwrel-policy",
                                       "product",
                                       "chip",
                                       "chip_revision",
                                       "device_types",
                                       "partition_size",
                                       "secure_boot",
                                       "anti_rollback",
                                       "versioning",
                                       "image_encryption",
                                       "manifest",
                                       "approvals",
                                       "channels",
                                       "release",
                                       "audit",
                                       "exports",
                                       "flash_encryption",
                                       "hmac",
                                       "keys",
                                       "mender",
                                       "aws_ota",
                                       NULL};
    const yt_node *n, *m;
    const char *s;
    uint64_t v;
    int error;
    struct manifest_defaults d;
    unsigned approvals = 0;
    memset(&d, 0, sizeof(d));

    if ((error = yt_expect(root, YT_MAP, "the policy")) != 0 ||
        (error = yt_check_keys(root, keys)) != 0)
        return error;
    if ((n = need(root, "fwrel-policy", &error)) == NULL ||
        (error = yt_u64(&v, n, UINT32_MAX, "fwrel-policy")) != 0)
        return error;
    if (v != 1)
        return where(n, "policy schema version %llu; this fwrel reads version 1",
                     (unsigned long long)v);
    if ((n = need(root, "product", &error)) == NULL ||
        (error = get_name(p->product, n, "product")) != 0)
        return error;
    if ((n = need(root, "chip", &error)) == NULL || (error = yt_str(&s, n, 32, "chip")) != 0)
        return error;
    if ((p->chip = fwrel_chip_by_name(s)) == NULL)
        return where(n, "unknown chip '%s'", s);
    if ((n = yt_get(root, "chip_revision")) != NULL) {
        static const char *const rkeys[] = {"min", "max", NULL};
        if ((error = yt_expect(n, YT_MAP, "chip_revision")) != 0 ||
            (error = yt_check_keys(n, rkeys)) != 0)
            return error;
        p->has_rev = 1;
        p->rev_max = 0xFFFF;
        if ((m = yt_get(n, "min")) != NULL && (error = yt_rev(&p->rev_min, m, "min")) != 0)
            return error;
        if ((m = yt_get(n, "max")) != NULL && (error = yt_rev(&p->rev_max, m, "max")) != 0)
            return error;
        if (p->rev_min > p->rev_max)
            return where(n, "chip_revision min is above max");
    }
    if ((n = need(root, "device_types", &error)) == NULL ||
        (error = yt_expect(n, YT_SEQ, "device_types")) != 0)
        return error;
    if (n->count == 0 || n->count > FWREL_POLICY_MAX_LIST)
        return where(n, "device_types must list 1 to %d names", FWREL_POLICY_MAX_LIST);
    for (size_t i = 0; i < n->count; i++) {
        if ((error = get_name(p->device_types[i], n->items[i], "device type")) != 0)
            return error;
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->device_types[j], p->device_types[i]) == 0)
                return where(n->items[i], "device type '%s' listed twice", p->device_types[i]);
    }
    p->ndevice_types = n->count;
    /* 64 KiB .. 16 MiB: an app partition must at least hold an image and its signature sector. */
    if ((n = need(root, "partition_size", &error)) == NULL ||
        (error = yt_u64(&p->partition_size, n, 16u << 20, "partition_size")) != 0)
        return error;
    if (p->partition_size < (64u << 10) || p->partition_size % 4096 != 0)
        return where(n, "partition_size must be a multiple of 4096 from 64 KiB to 16 MiB");

    /* Keys first: every other section refers to them. */
    if ((n = need(root, "keys", &error)) == NULL || (error = parse_keys(p, n)) != 0)
        return error;
    if ((n = need(root, "secure_boot", &error)) == NULL || (error = parse_secure_boot(p, n)) != 0)
        return error;
    if ((n = need(root, "anti_rollback", &error)) == NULL ||
        (error = parse_anti_rollback(p, n)) != 0)
        return error;
    if ((n = yt_get(root, "versioning")) != NULL) {
        static const char *const vkeys[] = {"rule", "scheme", NULL};
        if ((error = yt_expect(n, YT_MAP, "versioning")) != 0 ||
            (error = yt_check_keys(n, vkeys)) != 0)
            return error;
        if ((m = yt_get(n, "rule")) != NULL && (error = yt_str(&s, m, 32, "rule")) != 0)
            return error;
        if (m != NULL && strcmp(s, "semver-increasing") != 0)
            return where(m, "unknown version rule '%s' (semver-increasing)", s);
        /* How an app version maps to the release version (docs/policy.md "Versions"). */
        if ((m = yt_get(n, "scheme")) != NULL && (error = yt_str(&s, m, 32, "scheme")) != 0)
            return error;
        if (m != NULL && strcmp(s, "semver") == 0)
            p->version_scheme = FWREL_VERSION_SEMVER;
        else if (m != NULL && strcmp(s, "v-semver") == 0)
            p->version_scheme = FWREL_VERSION_V_SEMVER;
        else if (m != NULL)
            return where(m, "unknown version scheme '%s' (semver, v-semver)", s);
    }
    /* The sections that name one key, the purpose it must have, where it goes. */
    static const char *const sections[] = {"image_encryption", "flash_encryption", "hmac", "mender",
                                           "aws_ota"};
    static const int purposes[] = {FWREL_PURPOSE_IMAGE_ENCRYPT, FWREL_PURPOSE_FLASH_ENCRYPT,
                                   FWREL_PURPOSE_HMAC, FWREL_PURPOSE_MENDER_SIGN,
                                   FWREL_PURPOSE_AWS_OTA_SIGN};
    for (size_t i = 0; i < COUNT(sections); i++) {
        static const char *const kkeys[] = {"key", NULL};
        size_t *const idxs[] = {&p->image_key, &p->flash_key, &p->hmac_key, &p->mender_key,
                                &p->aws_ota_key};
        int *const hass[] = {&p->has_image_key, &p->has_flash_key, &p->has_hmac_key,
                             &p->has_mender_key, &p->has_aws_ota_key};
        size_t *idx = idxs[i];
        int *has = hass[i];
        if ((n = yt_get(root, sections[i])) == NULL)
            continue;
        if ((error = yt_expect(n, YT_MAP, sections[i])) != 0 ||
            (error = yt_check_keys(n, kkeys)) != 0)
            return error;
        if ((m = need(n, "key", &error)) == NULL || (error = key_ref(idx, p, m, purposes[i])) != 0)
            return error;
        *has = 1;
    }
    if ((n = need(root, "manifest", &error)) == NULL || (error = parse_manifest(p, &d, n)) != 0)
        return error;
    if ((n = yt_get(root, "approvals")) != NULL && (error = parse_approvals(p, &approvals, n)) != 0)
        return error;
    if ((n = need(root, "channels", &error)) == NULL ||
        (error = parse_channels(p, &d, approvals, n)) != 0)
        return error;
    if ((n = need(root, "release", &error)) == NULL || (error = parse_release(p, n)) != 0)
        return error;
    if ((n = need(root, "audit", &error)) == NULL)
        return error;
    {
        static const char *const akeys[] = {"log", NULL};
        if ((error = yt_expect(n, YT_MAP, "audit")) != 0 || (error = yt_check_keys(n, akeys)) != 0)
            return error;
        if ((m = need(n, "log", &error)) == NULL ||
            (error = copy_str(p->audit_log, sizeof(p->audit_log), m, "log")) != 0)
            return error;
        const char *why = audit_log_why(p->audit_log);
        if (why != NULL)
            return where(m, "log '%.64s': %s", p->audit_log, why);
    }
    if ((n = yt_get(root, "exports")) != NULL) {
        if ((error = yt_expect(n, YT_SEQ, "exports")) != 0)
            return error;
        if (n->count > FWREL_POLICY_MAX_LIST)
            return where(n, "at most %d exports", FWREL_POLICY_MAX_LIST);
        for (size_t i = 0; i < n->count; i++) {
            if ((error = parse_export(p, i, n->items[i])) != 0)
                return error;
            for (size_t j = 0; j < i; j++)
                if (strcmp(p->exports[j], p->exports[i]) == 0)
                    return where(n->items[i], "export '%s' listed twice", p->exports[i]);
        }
        p->nexports = n->count;
    }
    /* Every defined key must be used: an unused key in a policy is a mistake waiting to happen. */
    for (size_t k = 0; k < p->nkeys; k++) {
        int used =
            (p->has_image_key && p->image_key == k) || (p->has_flash_key && p->flash_key == k) ||
            (p->has_hmac_key && p->hmac_key == k) || (p->has_mender_key && p->mender_key == k) ||
            (p->has_aws_ota_key && p->aws_ota_key == k);
        for (size_t i = 0; !used && i < p->nslots; i++)
            used = p->slots[i].key == k;
        for (size_t i = 0; !used && i < p->nrecipients; i++)
            used = p->recipients[i] == k;
        for (size_t i = 0; !used && i < d.nsigners; i++)
            used = d.signers[i] == k;
        for (size_t c = 0; !used && c < FWREL_CHANNEL_COUNT; c++)
            for (size_t i = 0; !used && i < p->channels[c].nsigners; i++)
                used = p->channels[c].present && p->channels[c].signers[i] == k;
        if (!used)
            return where(yt_get(root, "keys"), "key '%s' is defined but not used", p->keys[k].name);
    }
    return 0;
}

/* --- the image against the policy: versions and chip revisions ------------------------------ */

/* Where ESP-IDF takes an app's version from (tools/cmake/project.cmake, docs/policy.md
 * "Versions"): said in every refusal of a version. */
#define IDF_VERSION_SOURCE "ESP-IDF takes it from PROJECT_VER, version.txt or git describe"

int fwrel_policy_release_version(char *out, size_t size, const fwrel_policy *p, const char *channel,
                                 const char *app_version)
{
    FWREL_ASSERT_ARG(out != NULL && size > 0 && p != NULL && channel != NULL &&
                     app_version != NULL);
    const char *v = app_version;
    size_t len = strlen(app_version);
    int cmp;
    out[0] = '\0';
    if (p->version_scheme == FWREL_VERSION_V_SEMVER) {
        if (v[0] != 'v')
            return fwrel_error_set(FWREL_EVERIFY,
                                   "app version \"%.32s\" does not start with v (the policy's "
                                   "versioning scheme is v-semver; %s; set PROJECT_VER to "
                                   "v<major>.<minor>.<patch>)",
                                   app_version, IDF_VERSION_SOURCE);
        v++;
    }
    /* fwrel_semver_cmp() tolerates a leading v: the scheme decides here, strictly. */
    if (v[0] == 'v' || fwrel_semver_cmp(&cmp, v, "0.0.0") != 0) {
        fwrel_error_clear();
        if (v[0] == 'v' && fwrel_semver_cmp(&cmp, v + 1, "0.0.0") == 0)
            return fwrel_error_set(FWREL_EVERIFY,
                                   "app version \"%.32s\" is not SemVer 2.0 (%s; set PROJECT_VER "
                                   "without the v, or versioning scheme v-semver in the policy)",
                                   app_version, IDF_VERSION_SOURCE);
        fwrel_error_clear();
        return fwrel_error_set(FWREL_EVERIFY,
                               "app version \"%.32s\" is not SemVer 2.0 (%s; set PROJECT_VER)",
                               app_version, IDF_VERSION_SOURCE);
    }
    /* git describe --dirty marks a build from a modified tree: never a production release. */
    if (strcmp(channel, "prod") == 0 && len >= 6 && strcmp(app_version + len - 6, "-dirty") == 0)
        return fwrel_error_set(FWREL_EVERIFY,
                               "app version \"%.32s\" is a build from a modified tree (git "
                               "describe --dirty): the prod channel releases no -dirty version; "
                               "build from a clean checkout or set PROJECT_VER",
                               app_version);
    if (strlen(v) >= size)
        return fwrel_error_set(FWREL_EVERIFY, "app version \"%.32s\" is too long", app_version);
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

/*
 * Each chip's "Minimum Supported Revision" options (the choice <CHIP>_REV_MIN in
 * components/esp_hw_support/port/<chip>/Kconfig.hw_support, ESP-IDF v5.5), each with the
 * <CHIP>_REV_MIN_FULL value it sets, "FULL NAME" pairs in order (docs/policy.md "Chip revision").
 * The names are not regular (ESP32C3_REV_MIN_3 is v0.3, ESP32C3_REV_MIN_101 is v1.1), so they are
 * listed.
 */
static const char *const rev_min_options[][2] = {
    {"esp32", "0 ESP32_REV_MIN_0 100 ESP32_REV_MIN_1 101 ESP32_REV_MIN_1_1 200 ESP32_REV_MIN_2 "
              "300 ESP32_REV_MIN_3 301 ESP32_REV_MIN_3_1"},
    {"esp32s2", "0 ESP32S2_REV_MIN_0 100 ESP32S2_REV_MIN_1"},
    {"esp32s3", "0 ESP32S3_REV_MIN_0 1 ESP32S3_REV_MIN_1 2 ESP32S3_REV_MIN_2"},
    {"esp32c2", "100 ESP32C2_REV_MIN_1 101 ESP32C2_REV_MIN_1_1 200 ESP32C2_REV_MIN_200"},
    {"esp32c3", "0 ESP32C3_REV_MIN_0 1 ESP32C3_REV_MIN_1 2 ESP32C3_REV_MIN_2 3 ESP32C3_REV_MIN_3 "
                "4 ESP32C3_REV_MIN_4 101 ESP32C3_REV_MIN_101"},
    {"esp32c5", "100 ESP32C5_REV_MIN_100 102 ESP32C5_REV_MIN_102"},
    {"esp32c6", "0 ESP32C6_REV_MIN_0 1 ESP32C6_REV_MIN_1 2 ESP32C6_REV_MIN_2"},
    {"esp32c61", "100 ESP32C61_REV_MIN_100 101 ESP32C61_REV_MIN_101"},
    {"esp32h2",
     "0 ESP32H2_REV_MIN_0 1 ESP32H2_REV_MIN_1 2 ESP32H2_REV_MIN_2 102 ESP32H2_REV_MIN_102"},
    {"esp32p4", "0 ESP32P4_REV_MIN_0 1 ESP32P4_REV_MIN_1 100 ESP32P4_REV_MIN_100 "
                "300 ESP32P4_REV_MIN_300 301 ESP32P4_REV_MIN_301"},
};

/* The lowest option of the chip that reaches rev_min (into name), and the menu's prompt. */
static int rev_min_option(char name[48], char menu[64], const char *chip, unsigned rev_min)
{
    for (size_t i = 0; i < COUNT(rev_min_options); i++) {
        if (strcmp(rev_min_options[i][0], chip) != 0)
            continue;
        /* "esp32c6" -> "ESP32-C6", as the prompt spells it. */
        char upper[16];
        size_t n = 0;
        for (const char *c = chip; *c != '\0' && n + 2 < sizeof(upper); c++) {
            if (c - chip == 5)
                upper[n++] = '-';
            upper[n++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
        }
        upper[n] = '\0';
        snprintf(menu, 64, "Minimum Supported %s Revision", upper);
        for (const char *p = rev_min_options[i][1]; *p != '\0';) {
            unsigned full = 0;
            size_t len;
            while (*p >= '0' && *p <= '9')
                full = full * 10 + (unsigned)(*p++ - '0');
            p++; /* the space */
            len = strcspn(p, " ");
            if (full >= rev_min && len < 48) {
                memcpy(name, p, len);
                name[len] = '\0';
                return 1;
            }
            p += len;
            p += *p == ' ';
        }
        return 0;
    }
    return 0;
}

int fwrel_policy_check_chip_rev(const fwrel_policy *p, unsigned img_min, unsigned img_max)
{
    FWREL_ASSERT_ARG(p != NULL);
    int has_max = img_max != 0 && img_max != 0xffff;
    char range[64], upper[16];
    if (!p->has_rev || (img_min >= p->rev_min && (!has_max || img_max <= p->rev_max)))
        return 0;
    if (has_max)
        snprintf(upper, sizeof(upper), "v%u.%u", img_max / 100, img_max % 100);
    else
        snprintf(upper, sizeof(upper), "any");
    snprintf(range, sizeof(range), "image supports chip revision v%u.%u..%s", img_min / 100,
             img_min % 100, upper);
    if (img_min < p->rev_min) {
        /* The lowest option that reaches the policy's floor. */
        char opt[48], menu[64];
        if (rev_min_option(opt, menu, p->chip->name, p->rev_min))
            return fwrel_error_set(FWREL_EVERIFY,
                                   "%s, policy requires min v%u.%u: set CONFIG_%s (%s) in "
                                   "menuconfig and build again",
                                   range, p->rev_min / 100, p->rev_min % 100, opt, menu);
        return fwrel_error_set(FWREL_EVERIFY,
                               "%s, policy requires min v%u.%u: raise the image's minimum chip "
                               "revision (ESP-IDF's Minimum Supported Revision) and build again",
                               range, p->rev_min / 100, p->rev_min % 100);
    }
    /* The maximum is ESP-IDF's own (<CHIP>_REV_MAX_FULL, not a user option). */
    return fwrel_error_set(FWREL_EVERIFY,
                           "%s, policy allows at most v%u.%u: ESP-IDF sets the image's maximum "
                           "(its supported revisions, not a menuconfig option); raise the "
                           "policy's chip_revision max if the product takes those revisions",
                           range, p->rev_max / 100, p->rev_max % 100);
}

int fwrel_policy_parse(fwrel_policy **out, const uint8_t *text, size_t len)
{
    FWREL_ASSERT_ARG(out != NULL && (text != NULL || len == 0));
    fwrel_policy *p = NULL;
    yt_node *root = NULL;
    int error;
    *out = NULL;
    if (len > FWREL_POLICY_FILE_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "policy is %zu bytes, at most %u", len,
                               FWREL_POLICY_FILE_MAX);
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    SHA256(text, len, p->sha256);
    if ((error = yt_parse(&root, text, len)) != 0 || (error = parse_root(p, root)) != 0)
        goto done;
    *out = p;
    p = NULL;
    error = 0;
done:
    yt_free(root);
    fwrel_policy_free(p);
    return error;
}

int fwrel_policy_load(fwrel_policy **out, const char *path)
{
    FWREL_ASSERT_ARG(out != NULL && path != NULL);
    uint8_t *text = NULL;
    size_t len = 0;
    *out = NULL;
    int error = fwrel_io_read_small(&text, &len, path, FWREL_POLICY_FILE_MAX);
    if (error == 0)
        error = fwrel_policy_parse(out, text, len);
    free(text);
    return error ? fwrel_error_about(FWREL_ABOUT_POLICY, path) : 0;
}

const fwrel_policy_channel *fwrel_policy_channel_get(const fwrel_policy *p, const char *name)
{
    for (size_t i = 0; p != NULL && name != NULL && i < FWREL_CHANNEL_COUNT; i++)
        if (p->channels[i].present && strcmp(channel_names[i], name) == 0)
            return &p->channels[i];
    return NULL;
}

const fwrel_policy_key *fwrel_policy_key_get(const fwrel_policy *p, const char *name)
{
    for (size_t i = 0; p != NULL && name != NULL && i < p->nkeys; i++)
        if (strcmp(p->keys[i].name, name) == 0)
            return &p->keys[i];
    return NULL;
}

void fwrel_policy_free(fwrel_policy *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nkeys; i++)
        free(p->keys[i].hsm);
    free(p);
}

int fwrel_policy_repo_path(char *out, size_t size, const fwrel_policy *p, const char *policy_path)
{
    FWREL_ASSERT_ARG(out != NULL && p != NULL && policy_path != NULL);
    const char *slash = strrchr(policy_path, '/');
    int n;
    if (p->repository[0] == '/')
        n = snprintf(out, size, "%s", p->repository);
    else if (slash != NULL)
        n = snprintf(out, size, "%.*s/%s", (int)(slash - policy_path), policy_path, p->repository);
    else
        n = snprintf(out, size, "./%s", p->repository);
    return n < 0 || (size_t)n >= size ? fwrel_error_set(FWREL_EUSAGE, "path too long") : 0;
}

int fwrel_policy_audit_path(char *out, size_t size, const fwrel_policy *p, const char *repo_path,
                            int create)
{
    FWREL_ASSERT_ARG(out != NULL && p != NULL && repo_path != NULL);
    struct stat st;
    int n = snprintf(out, size, "%s/%s", repo_path, p->audit_log);
    if (n < 0 || (size_t)n >= size)
        return fwrel_error_set(FWREL_EUSAGE, "audit log path too long");
    /* Every directory below the repository is a real one, never a symbolic link: the log stays
     * where the policy's checks put it. */
    for (char *c = strchr(out + strlen(repo_path) + 1, '/'); c != NULL; c = strchr(c + 1, '/')) {
        *c = '\0';
        int e = 0;
        if (lstat(out, &st) != 0) {
            e = errno;
            if (e == ENOENT && create && (mkdir(out, 0750) == 0 || errno == EEXIST))
                e = lstat(out, &st) != 0 ? errno : 0;
            else if (e == ENOENT && create)
                e = errno;
        }
        if (e != 0 && !(e == ENOENT && !create)) {
            fwrel_error_set_errno(FWREL_EIO, e, "audit log: cannot create %s", out);
            *c = '/';
            return FWREL_EIO;
        }
        if (e == 0 && !S_ISDIR(st.st_mode)) {
            fwrel_error_set(FWREL_EIO, "audit log: %s is %s, not a directory", out,
                            S_ISLNK(st.st_mode) ? "a symbolic link" : "a file");
            *c = '/';
            return FWREL_EIO;
        }
        *c = '/';
        if (e == ENOENT)
            return 0; /* not there yet, nor anything below it */
    }
    if (lstat(out, &st) == 0 && !S_ISREG(st.st_mode))
        return fwrel_error_set(FWREL_EIO, "audit log: %s is %s, not a regular file", out,
                               S_ISLNK(st.st_mode) ? "a symbolic link" : "not a file");
    return 0;
}
