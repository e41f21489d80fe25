/*
 * dev_verify.c - the device's reading of a manifest envelope (fwrel_dev.h; docs/manifest.md
 * section 4). fwrel-verify runs this code (libfwrel device.c fwrel_device_read_manifest, with the
 * OpenSSL port): its step names, order and reasons are fwrel-verify's, and there is no other
 * reader of manifests.
 */
#include "dev_json.h"
#include "dev_util.h"
#include "fwrel_dev.h"

#define DOMAIN     "fwrel-manifest-v1"
#define DOMAIN_LEN 18 /* with its NUL, the separator */
#define ENV_MAGIC  "FWRELMF1"
#define ENV_HEAD   32
#define ENV_ENTRY  608
#define ENTRY_DATA 36 /* type, 3 zero bytes, 32-byte key id */
#define KEK_INFO   "fwrel-manifest-kek-v1"
#define JSON_MAX   ((uint64_t)1 << 53)
#define ROOT_LEAD  12 /* '{"manifest":' */

/* The running state: steps after the first failure are skipped (device.c's struct run). */
struct run {
    fwrel_dev_step_fn fn;
    void *ctx;
    fwrel_dev_result *res;
    int failed;
};

static void emit(struct run *r, const char *name, int verdict, const char *detail)
{
    if (r->fn != NULL)
        r->fn(r->ctx, name, verdict, detail);
}

static int step(struct run *r, const char *name, int ok, const char *detail)
{
    if (r->failed) {
        emit(r, name, FWREL_DEV_SKIP, "not reached");
        return 0;
    }
    emit(r, name, ok ? FWREL_DEV_PASS : FWREL_DEV_FAIL, detail);
    if (!ok) {
        dev_sb b;
        r->failed = 1;
        sb_init(&b, r->res->first, sizeof(r->res->first));
        sb_s(&b, name);
        sb_s(&b, ": ");
        sb_s(&b, detail);
    }
    return ok;
}

/* A reason into the caller's detail buffer; returns FWREL_DEV_EREJECT. */
static int why(char *detail, const char *a, const char *b, const char *c)
{
    dev_sb s;
    sb_init(&s, detail, FWREL_DEV_DETAIL_MAX);
    sb_s(&s, a);
    if (b != NULL)
        sb_s(&s, b);
    if (c != NULL)
        sb_s(&s, c);
    return FWREL_DEV_EREJECT;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* --- steps 1-4: the envelope ------------------------------------------------------------ */

/* ECDH, HKDF and the AES-GCM unwrap of one entry (types 2 and 3). */
static int unwrap_ecdh(fwrel_dev_work *w, const fwrel_dev_config *cfg, const uint8_t *e)
{
    static const uint8_t zero_nonce[12] = {0};
    const fwrel_dev_crypto *c = cfg->crypto;
    const fwrel_dev_recipient *me = &cfg->recipient;
    size_t peer_len = me->type == FWREL_DEV_RCPT_X25519 ? 32 : 65;
    uint8_t tag[16];
    int ok;
    /* The ephemeral key as stored: X25519 raw, P-256 uncompressed (0x04 || x || y). */
    if (me->type == FWREL_DEV_RCPT_P256 && e[ENTRY_DATA] != 0x04)
        return -1;
    ok = c->ecdh(w->kek, me->type, me->key, me->key_len, e + ENTRY_DATA, peer_len) == 0 &&
         c->hkdf_sha256(w->kek, 32, me->keyid, 32, w->kek, 32, (const uint8_t *)KEK_INFO,
                        sizeof(KEK_INFO) - 1) == 0;
    if (!ok)
        return -1;
    if (c->gcm_start(&w->gcm, 0, w->kek, zero_nonce, NULL, 0) != 0)
        return -1;
    dev_memcpy(tag, e + ENTRY_DATA + 65 + 32, 16);
    if (c->gcm_update(&w->gcm, e + ENTRY_DATA + 65, w->key, 32) != 0) {
        c->gcm_abort(&w->gcm);
        return -1;
    }
    return c->gcm_finish(&w->gcm, tag) == 0 ? 0 : -1;
}

static int open_envelope(fwrel_dev_work *w, size_t *plen, char *detail, const fwrel_dev_config *cfg,
                         const uint8_t *env, size_t len)
{
    const fwrel_dev_crypto *c = cfg->crypto;
    const fwrel_dev_recipient *me = &cfg->recipient;
    const uint8_t *e = NULL;
    size_t n, head, clen;
    /* Step 1: bounds, before any crypto. */
    if (len > FWREL_DEV_ENVELOPE_MAX || len < ENV_HEAD + ENV_ENTRY + 16 ||
        !dev_memeq(env, ENV_MAGIC, 8) || env[8] != 1 || env[9] != 0 || env[11] != 0 ||
        le32(env + 28) != 0 || env[10] < 1 || env[10] > FWREL_DEV_MAX_RECIPIENTS)
        return why(detail, "not an fwrel manifest envelope (magic, version, sizes)", NULL, NULL);
    n = env[10];
    head = ENV_HEAD + ENV_ENTRY * n;
    clen = le32(env + 12);
    if (clen < 16 || clen > FWREL_DEV_SIGNED_MAX + 16 || head + clen != len) {
        dev_sb s;
        sb_init(&s, detail, FWREL_DEV_DETAIL_MAX);
        sb_s(&s, "envelope length ");
        sb_u(&s, len);
        sb_s(&s, " does not match its header");
        return FWREL_DEV_EREJECT;
    }
    /* Step 2: the entry for this device's key. */
    for (size_t i = 0; i < n && e == NULL; i++) {
        const uint8_t *cand = env + ENV_HEAD + ENV_ENTRY * i;
        if (cand[0] == me->type && dev_memeq(cand + 4, me->keyid, 32))
            e = cand;
    }
    if (e == NULL)
        return why(detail, "the manifest is not addressed to this device's key", NULL, NULL);
    /* Step 3: unwrap the content key; no other entry is tried. */
    if (me->type == FWREL_DEV_RCPT_RSA4096) {
        size_t got = 0;
        /* The plaintext buffer holds the unwrapped bytes for a moment (up to 512). */
        if (c->rsa_oaep_decrypt(w->plain, &got, 512, me->key, me->key_len, e + ENTRY_DATA, 512) !=
                0 ||
            got != 32) {
            dev_wipe(w->plain, 512);
            return why(detail, "cannot unwrap the manifest key", NULL, NULL);
        }
        dev_memcpy(w->key, w->plain, 32);
        dev_wipe(w->plain, 512);
    } else if (unwrap_ecdh(w, cfg, e) != 0) {
        return why(detail, "cannot unwrap the manifest key", NULL, NULL);
    }
    /* Step 4: decrypt, the recipient list as AAD. */
    uint8_t *plain = w->plain + FWREL_DEV_HEADROOM;
    uint8_t tag[16];
    dev_memcpy(tag, env + head + clen - 16, 16);
    if (c->gcm_start(&w->gcm, 0, w->key, env + 16, env, head) != 0)
        return why(detail, "manifest GCM tag mismatch: altered, or not for this key", NULL, NULL);
    if (c->gcm_update(&w->gcm, env + head, plain, clen - 16) != 0) {
        c->gcm_abort(&w->gcm);
        dev_wipe(plain, clen - 16);
        return why(detail, "manifest GCM tag mismatch: altered, or not for this key", NULL, NULL);
    }
    if (c->gcm_finish(&w->gcm, tag) != 0) {
        dev_wipe(plain, clen - 16);
        return why(detail, "manifest GCM tag mismatch: altered, or not for this key", NULL, NULL);
    }
    *plen = clen - 16;
    return FWREL_DEV_OK;
}

/* --- steps 5-7: signed.json, the body, the signatures ------------------------------------ */

static int is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

static int is_name(const char *s, size_t max)
{
    size_t n = dev_strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (; *s; s++)
        if (!is_name_char(*s))
            return 0;
    return 1;
}

/* Strings are printable ASCII without '"' and '\' by the reader already. */
static int is_text(const char *s, size_t max)
{
    size_t n = dev_strlen(s);
    return n > 0 && n <= max;
}

static int is_channel(const char *s)
{
    size_t n = dev_strlen(s);
    if (n == 0 || n > 16)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
            return 0;
    return 1;
}

/* esptool's chip names (libfwrel espimg.c's table; docs/manifest.md section 1). */
static int is_chip(const char *s)
{
    static const char *const chips[] = {"esp32",    "esp32s2", "esp32c3",  "esp32s3",  "esp32c2",
                                        "esp32c6",  "esp32h2", "esp32p4",  "esp32c61", "esp32c5",
                                        "esp32h21", "esp32h4", "esp32e22", "esp32s31"};
    for (size_t i = 0; i < sizeof(chips) / sizeof(chips[0]); i++)
        if (dev_strcmp(chips[i], s) == 0)
            return 1;
    return 0;
}

/* Exactly these keys, no more, no fewer (manifest.c exact_keys). */
static int exact_keys(char *detail, cj_val obj, const char *what, const char *const *keys)
{
    size_t it = 0;
    cj_val k, v;
    if (cj_type(obj) != CJ_OBJECT)
        return why(detail, what, " must be an object", NULL);
    while (cj_next_member(obj, &it, &k, &v)) {
        size_t i = 0;
        cj_val name = cj_str(k);
        while (keys[i] && dev_cmpn(name.p, name.n, keys[i], dev_strlen(keys[i])) != 0)
            i++;
        if (keys[i] == NULL) {
            dev_sb s;
            sb_init(&s, detail, FWREL_DEV_DETAIL_MAX);
            sb_s(&s, what);
            sb_s(&s, ": unknown field '");
            for (size_t j = 0; j < name.n && j < 40; j++)
                sb_c(&s, name.p[j]);
            sb_c(&s, '\'');
            return FWREL_DEV_EREJECT;
        }
    }
    for (size_t i = 0; keys[i]; i++)
        if (cj_get(obj, keys[i]).p == NULL) {
            why(detail, what, ": missing field '", keys[i]);
            dev_sb s = {detail, FWREL_DEV_DETAIL_MAX, dev_strlen(detail)};
            sb_c(&s, '\'');
            return FWREL_DEV_EREJECT;
        }
    return 0;
}

/* A string member of at most size - 1 bytes, in place. */
static int get_span(char *detail, cj_val *out, size_t size, cj_val obj, const char *key)
{
    cj_val v = cj_get(obj, key);
    if (cj_type(v) != CJ_STRING || (*out = cj_str(v)).n >= size) {
        dev_sb b;
        sb_init(&b, detail, FWREL_DEV_DETAIL_MAX);
        sb_s(&b, key);
        sb_s(&b, " must be a string of at most ");
        sb_u(&b, size - 1);
        sb_s(&b, " bytes");
        return FWREL_DEV_EREJECT;
    }
    return 0;
}

/* The same, copied into out (size bytes) and NUL-terminated. */
static int get_str(char *detail, char *out, size_t size, cj_val obj, const char *key)
{
    cj_val s;
    int error = get_span(detail, &s, size, obj, key);
    if (error)
        return error;
    dev_memcpy(out, s.p, s.n);
    out[s.n] = '\0';
    return 0;
}

/* s is the lower-case hex of the 32 bytes of raw (the key id as fwrel_key_id writes it). */
static int is_hex_of(const char *s, const uint8_t raw[32])
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++)
        if (s[2 * i] != hx[raw[i] >> 4] || s[2 * i + 1] != hx[raw[i] & 15])
            return 0;
    return s[64] == '\0';
}

static int get_u64(char *detail, uint64_t *out, cj_val obj, const char *key, uint64_t max)
{
    cj_val v = cj_get(obj, key);
    if (cj_type(v) != CJ_NUMBER || cj_u64(v) > max) {
        dev_sb b;
        sb_init(&b, detail, FWREL_DEV_DETAIL_MAX);
        sb_s(&b, key);
        sb_s(&b, " must be a whole number from 0 to ");
        sb_u(&b, max);
        return FWREL_DEV_EREJECT;
    }
    *out = cj_u64(v);
    return 0;
}

static int nibble(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

static int get_digest(char *detail, fwrel_dev_digest *d, cj_val img, const char *key)
{
    static const char *const keys[] = {"sha256", "size", NULL};
    cj_val o = cj_get(img, key);
    char hex[65];
    int error;
    if ((error = exact_keys(detail, o, key, keys)) != 0 ||
        (error = get_str(detail, hex, sizeof(hex), o, "sha256")) != 0 ||
        (error = get_u64(detail, &d->size, o, "size", UINT32_MAX)) != 0)
        return error;
    for (const char *p = hex; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            return why(detail, key, ".sha256: lower-case hex", NULL);
    if (dev_strlen(hex) != 64)
        return why(detail, key, ".sha256: 64 hex digits", NULL);
    for (size_t i = 0; i < 32; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return why(detail, key, ".sha256: 64 hex digits", NULL);
        d->sha256[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int index_reason(char *detail, const char *a, size_t i, const char *b)
{
    dev_sb s;
    sb_init(&s, detail, FWREL_DEV_DETAIL_MAX);
    sb_s(&s, a);
    sb_u(&s, i);
    sb_s(&s, b);
    return FWREL_DEV_EREJECT;
}

/* Every rule of section 1 the decoded body can break (manifest.c check). */
static int check_body(char *detail, const fwrel_dev_manifest *m)
{
    if (!is_name(m->product, 64))
        return why(detail, "product: 1..64 characters of [A-Za-z0-9._-]", NULL, NULL);
    for (size_t i = 0; i < m->device_type_count; i++) {
        if (!is_name(m->device_types[i], 64))
            return index_reason(detail, "device_types[", i,
                                "]: 1..64 characters of [A-Za-z0-9._-]");
        if (i > 0 && dev_strcmp(m->device_types[i - 1], m->device_types[i]) >= 0)
            return why(detail, "device_types: sorted and unique", NULL, NULL);
    }
    if (!is_chip(m->chip))
        return why(detail, "chip: an esptool chip name (esp32s3, ...)", NULL, NULL);
    if (m->chip_rev_min > m->chip_rev_max)
        return why(detail, "chip_rev_min above chip_rev_max", NULL, NULL);
    if (!is_text(m->version, 32))
        return why(detail, "version: 1..32 printable characters", NULL, NULL);
    if (!is_channel(m->channel))
        return why(detail, "channel: 1..16 characters of [a-z0-9-]", NULL, NULL);
    if (m->counter >= JSON_MAX || m->created >= JSON_MAX || m->expires >= JSON_MAX)
        return why(detail, "counter, created, expires: below 2^53", NULL, NULL);
    if (m->created >= m->expires)
        return why(detail, "created must be before expires", NULL, NULL);
    if (!is_name(m->image_name, 128))
        return why(detail, "image_name: 1..128 characters of [A-Za-z0-9._-]", NULL, NULL);
    return 0;
}

/* The body, strictly (manifest.c decode_json): the same checks in the same order. */
static int decode_body(char *detail, fwrel_dev_manifest *m, cj_val j)
{
    static const char *const keys[] = {
        "format",         "format_version", "product",      "device_types",
        "chip",           "chip_rev_min",   "chip_rev_max", "version",
        "secure_version", "counter",        "channel",      "created",
        "expires",        "image",          "image_name",   NULL};
    static const char *const image_keys[] = {"plain", "signed", "encrypted", NULL};
    char format[32];
    uint64_t v, rmin, rmax, sv;
    int error;
    dev_memset(m, 0, sizeof(*m));
    if ((error = exact_keys(detail, j, "manifest", keys)) != 0 ||
        (error = get_str(detail, format, sizeof(format), j, "format")) != 0)
        return error;
    if (dev_strcmp(format, "fwrel-manifest") != 0)
        return why(detail, "format must be \"fwrel-manifest\"", NULL, NULL);
    if ((error = get_u64(detail, &v, j, "format_version", 1000)) != 0)
        return error;
    if (v != 1) {
        dev_sb s;
        sb_init(&s, detail, FWREL_DEV_DETAIL_MAX);
        sb_s(&s, "format_version ");
        sb_u(&s, v);
        sb_s(&s, ": this reader knows 1");
        return FWREL_DEV_EREJECT;
    }
    cj_val types = cj_get(j, "device_types"), t;
    size_t count = cj_type(types) == CJ_ARRAY ? cj_count(types) : 0, it = 0;
    if (count < 1 || count > FWREL_DEV_MAX_TYPES)
        return why(detail, "device_types: a list of 1..16 names", NULL, NULL);
    for (size_t i = 0; cj_next_item(types, &it, &t); i++) {
        cj_val s = cj_str(t);
        if (cj_type(t) != CJ_STRING || s.n > 64)
            return index_reason(detail, "device_types[", i, "] must be a name");
        dev_memcpy(m->device_types[i], s.p, s.n);
        m->device_types[i][s.n] = '\0';
    }
    m->device_type_count = count;
    if ((error = get_str(detail, m->product, sizeof(m->product), j, "product")) != 0 ||
        (error = get_str(detail, m->chip, sizeof(m->chip), j, "chip")) != 0 ||
        (error = get_u64(detail, &rmin, j, "chip_rev_min", 65535)) != 0 ||
        (error = get_u64(detail, &rmax, j, "chip_rev_max", 65535)) != 0 ||
        (error = get_str(detail, m->version, sizeof(m->version), j, "version")) != 0 ||
        (error = get_u64(detail, &sv, j, "secure_version", UINT32_MAX)) != 0 ||
        (error = get_u64(detail, &m->counter, j, "counter", JSON_MAX - 1)) != 0 ||
        (error = get_str(detail, m->channel, sizeof(m->channel), j, "channel")) != 0 ||
        (error = get_u64(detail, &m->created, j, "created", JSON_MAX - 1)) != 0 ||
        (error = get_u64(detail, &m->expires, j, "expires", JSON_MAX - 1)) != 0 ||
        (error = get_str(detail, m->image_name, sizeof(m->image_name), j, "image_name")) != 0)
        return error;
    m->chip_rev_min = (uint16_t)rmin;
    m->chip_rev_max = (uint16_t)rmax;
    m->secure_version = (uint32_t)sv;
    cj_val img = cj_get(j, "image");
    if ((error = exact_keys(detail, img, "image", image_keys)) != 0 ||
        (error = get_digest(detail, &m->plain, img, "plain")) != 0 ||
        (error = get_digest(detail, &m->signed_image, img, "signed")) != 0 ||
        (error = get_digest(detail, &m->encrypted, img, "encrypted")) != 0)
        return error;
    return check_body(detail, m);
}

static int b64_value(char ch)
{
    return ch >= 'A' && ch <= 'Z'   ? ch - 'A'
           : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
           : ch >= '0' && ch <= '9' ? ch - '0' + 52
           : ch == '+'              ? 62
           : ch == '/'              ? 63
                                    : -1;
}

/* Strict base64 (RFC 4648 section 4: padded, zero pad bits) of 1..max bytes; manifest.c
 * unbase64's rules. 0 or -1. */
static int unbase64(uint8_t *out, size_t *out_len, size_t max, const char *s, size_t b)
{
    size_t pad, n, o = 0;
    if (b == 0 || b % 4 != 0 || b / 4 * 3 > FWREL_DEV_SIG_MAX + 2)
        return -1;
    pad = s[b - 1] != '=' ? 0 : s[b - 2] != '=' ? 1 : 2;
    n = b / 4 * 3 - pad;
    if (n == 0 || n > max)
        return -1;
    uint32_t acc = 0;
    for (size_t i = 0; i < b - pad; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (pad == 1) { /* 3 characters: 18 bits, the last 2 zero */
        if (acc & 3)
            return -1;
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    } else if (pad == 2) { /* 2 characters: 12 bits, the last 4 zero */
        if (acc & 15)
            return -1;
        out[o++] = (uint8_t)(acc >> 4);
    }
    *out_len = o;
    return o == n ? 0 : -1;
}

/* A DER ECDSA-Sig-Value in its one canonical encoding (what OpenSSL requires: it re-encodes
 * and compares), so that every port sees only such signatures. */
static int der_int_ok(const uint8_t *p, size_t n)
{
    if (n == 0 || n > 33 || (p[0] & 0x80))
        return 0;
    return !(p[0] == 0 && (n == 1 || !(p[1] & 0x80)));
}

static int ecdsa_der_ok(const uint8_t *s, size_t n)
{
    size_t rl, sl;
    if (n < 8 || s[0] != 0x30 || s[1] != n - 2 || s[2] != 0x02)
        return 0;
    rl = s[3];
    if (4 + rl + 2 > n || s[4 + rl] != 0x02)
        return 0;
    sl = s[5 + rl];
    return 6 + rl + sl == n && der_int_ok(s + 4, rl) && der_int_ok(s + 6 + rl, sl);
}

/* The algorithm of a trusted key from its SPKI: the fixed DER layouts fwrel-keygen writes. */
static int spki_alg(const uint8_t *k, size_t n)
{
    static const uint8_t ed[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    static const uint8_t p256[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                   0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                   0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
    static const uint8_t rsa[] = {0x30, 0x82, 0x01, 0xa2, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48,
                                  0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00, 0x03, 0x82, 0x01,
                                  0x8f, 0x00, 0x30, 0x82, 0x01, 0x8a, 0x02, 0x82, 0x01, 0x81, 0x00};
    static const uint8_t e65537[] = {0x02, 0x03, 0x01, 0x00, 0x01};
    if (n == sizeof(ed) + 32 && dev_memeq(k, ed, sizeof(ed)))
        return FWREL_DEV_SIG_ED25519;
    if (n == sizeof(p256) + 64 && dev_memeq(k, p256, sizeof(p256)))
        return FWREL_DEV_SIG_ECDSA;
    if (n == sizeof(rsa) + 384 + sizeof(e65537) && dev_memeq(k, rsa, sizeof(rsa)) &&
        (k[sizeof(rsa)] & 0x80) && dev_memeq(k + sizeof(rsa) + 384, e65537, sizeof(e65537)))
        return FWREL_DEV_SIG_RSA_PSS;
    return FWREL_DEV_SIG_NONE;
}

static const char *alg_name(int alg)
{
    return alg == FWREL_DEV_SIG_RSA_PSS   ? "rsa-pss-sha256"
           : alg == FWREL_DEV_SIG_ECDSA   ? "ecdsa-p256-sha256"
           : alg == FWREL_DEV_SIG_ED25519 ? "ed25519"
                                          : NULL;
}

/* "key 0123456789abcdef..." + tail, a step of manifest.signature. */
static void sig_step(struct run *r, int verdict, const char *id, const char *tail, const char *alg)
{
    char d[FWREL_DEV_DETAIL_MAX];
    dev_sb s;
    sb_init(&s, d, sizeof(d));
    sb_s(&s, "key ");
    sb_sn(&s, id, 16);
    sb_s(&s, tail);
    if (alg != NULL) {
        sb_s(&s, alg);
        sb_c(&s, ')');
    }
    emit(r, "manifest.signature", verdict, d);
}

static void threshold_detail(char *d, unsigned valid, unsigned threshold)
{
    dev_sb s;
    sb_init(&s, d, FWREL_DEV_DETAIL_MAX);
    sb_u(&s, valid);
    sb_s(&s, " of ");
    sb_u(&s, threshold);
    sb_s(&s, " required signatures");
}

/* Steps 5-7: FWREL_DEV_EREJECT with detail set. */
static int verify_signed(struct run *r, fwrel_dev_work *w, char *detail,
                         const fwrel_dev_config *cfg, size_t plen)
{
    static const char *const root_keys[] = {"manifest", "signatures", NULL};
    static const char *const sig_keys[] = {"alg", "keyid", "sig", NULL};
    const fwrel_dev_crypto *c = cfg->crypto;
    fwrel_dev_manifest *m = &w->m;
    const char *text = (const char *)w->plain + FWREL_DEV_HEADROOM;
    cj_val root = {text, plen};
    unsigned used = 0, valid = 0;
    int error;

    if (cj_validate(text, plen) != 0)
        return why(detail, "signed manifest is not in canonical form (sorted keys, no spaces)",
                   NULL, NULL);
    if ((error = exact_keys(detail, root, "signed manifest", root_keys)) != 0)
        return error;
    cj_val body = cj_get(root, "manifest");
    if ((error = decode_body(detail, m, body)) != 0)
        return error;
    {
        char d[FWREL_DEV_DETAIL_MAX];
        dev_sb s;
        sb_init(&s, d, sizeof(d));
        sb_s(&s, m->product);
        sb_c(&s, ' ');
        sb_s(&s, m->version);
        sb_s(&s, " (");
        sb_s(&s, m->channel);
        sb_s(&s, "), counter ");
        sb_u(&s, m->counter);
        emit(r, "manifest.parse", FWREL_DEV_PASS, d);
    }
    cj_val sigs = cj_get(root, "signatures"), sv;
    size_t nsigs = cj_type(sigs) == CJ_ARRAY ? cj_count(sigs) : 0, it = 0;
    if (nsigs < 1 || nsigs > FWREL_DEV_MAX_SIGS)
        return why(detail, "signatures: a list of 1..8", NULL, NULL);
    /* The signed message laid over '{"manifest":' (canonical: "manifest" is the first key,
     * so the body starts ROOT_LEAD bytes in): DOMAIN, 0x00, body, without a copy. */
    uint8_t *msg = w->plain + FWREL_DEV_HEADROOM + ROOT_LEAD - DOMAIN_LEN;
    dev_memcpy(msg, DOMAIN, DOMAIN_LEN);
    char prev[65] = "";
    for (size_t i = 0; cj_next_item(sigs, &it, &sv); i++) {
        char alg[24], id[65];
        cj_val b64;
        size_t slen = 0, k = 0;
        if ((error = exact_keys(detail, sv, "signature", sig_keys)) != 0 ||
            (error = get_str(detail, alg, sizeof(alg), sv, "alg")) != 0 ||
            (error = get_str(detail, id, sizeof(id), sv, "keyid")) != 0 ||
            (error = get_span(detail, &b64, 700, sv, "sig")) != 0)
            return error;
        if (i > 0 && dev_strcmp(prev, id) >= 0)
            return why(detail, "signatures: sorted by keyid, one per key", NULL, NULL);
        dev_memcpy(prev, id, sizeof(id));
        while (k < cfg->ntrusted && !is_hex_of(id, w->ids[k]))
            k++;
        if (k == cfg->ntrusted) {
            sig_step(r, FWREL_DEV_INFO, id, "... is not trusted: ignored", NULL);
            continue;
        }
        if (unbase64(w->sig, &slen, sizeof(w->sig), b64.p, b64.n) != 0)
            return index_reason(detail, "signature ", i,
                                ": not the canonical base64 of 1..512 bytes");
        int want = spki_alg(cfg->trusted[k].spki, cfg->trusted[k].len);
        const char *want_name = alg_name(want);
        if (want_name == NULL || dev_strcmp(want_name, alg) != 0 ||
            (want == FWREL_DEV_SIG_ECDSA && !ecdsa_der_ok(w->sig, slen)) ||
            c->sig_verify(want, cfg->trusted[k].spki, cfg->trusted[k].len, msg, DOMAIN_LEN + body.n,
                          w->sig, slen) != 0) {
            sig_step(r, FWREL_DEV_FAIL, id, "... : invalid signature", NULL);
            why(detail, "the signature of trusted key ", NULL, NULL);
            dev_sb s = {detail, FWREL_DEV_DETAIL_MAX, dev_strlen(detail)};
            sb_sn(&s, id, 16);
            sb_s(&s, "... does not verify");
            return FWREL_DEV_EREJECT;
        }
        if (!(used & (1u << k))) {
            used |= 1u << k;
            valid++;
        }
        sig_step(r, FWREL_DEV_PASS, id, "... (", alg);
    }
    threshold_detail(detail, valid, cfg->threshold);
    if (valid < cfg->threshold) {
        emit(r, "manifest.threshold", FWREL_DEV_FAIL, detail);
        dev_sb s;
        sb_init(&s, detail, FWREL_DEV_DETAIL_MAX);
        sb_u(&s, valid);
        sb_s(&s, valid == 1 ? " valid signature" : " valid signatures");
        sb_s(&s, " from trusted keys, ");
        sb_u(&s, cfg->threshold);
        sb_s(&s, " required");
        return FWREL_DEV_EREJECT;
    }
    emit(r, "manifest.threshold", FWREL_DEV_PASS, detail);
    return FWREL_DEV_OK;
}

/* --- step 8: is it for this device, now? ------------------------------------------------- */

static void rev(dev_sb *s, unsigned v)
{
    sb_c(s, 'v');
    sb_u(s, v / 100);
    sb_c(s, '.');
    sb_u(s, v % 100);
}

static void device_steps(struct run *r, const fwrel_dev_config *cfg, const fwrel_dev_manifest *m,
                         uint64_t now)
{
    char d[FWREL_DEV_DETAIL_MAX];
    dev_sb s;
    int ok;

    sb_init(&s, d, sizeof(d));
    sb_s(&s, "manifest for product ");
    sb_s(&s, m->product);
    sb_s(&s, ", the device runs ");
    sb_s(&s, cfg->product);
    step(r, "manifest.product", dev_strcmp(m->product, cfg->product) == 0, d);

    ok = 0;
    sb_init(&s, d, sizeof(d));
    sb_s(&s, "a ");
    sb_s(&s, m->channel);
    sb_s(&s, " release, the device takes ");
    for (size_t i = 0; i < cfg->nchannels; i++) {
        ok |= dev_strcmp(m->channel, cfg->channels[i]) == 0;
        if (i)
            sb_s(&s, ", ");
        sb_s(&s, cfg->channels[i]);
    }
    step(r, "manifest.channel", ok, d);

    const char *type = cfg->device_type != NULL ? cfg->device_type : "";
    ok = type[0] == '\0';
    for (size_t i = 0; i < m->device_type_count && !ok; i++)
        ok = dev_strcmp(m->device_types[i], type) == 0;
    sb_init(&s, d, sizeof(d));
    sb_s(&s, type[0] ? type : "any");
    sb_s(&s, ok ? " is among" : " is not among");
    sb_s(&s, " the manifest's device types");
    step(r, "manifest.device-type", ok, d);

    sb_init(&s, d, sizeof(d));
    sb_s(&s, "manifest for ");
    sb_s(&s, m->chip);
    sb_s(&s, ", device is ");
    sb_s(&s, cfg->chip);
    step(r, "manifest.chip", dev_strcmp(m->chip, cfg->chip) == 0, d);

    sb_init(&s, d, sizeof(d));
    sb_s(&s, "chip ");
    rev(&s, cfg->chip_rev);
    sb_s(&s, ", manifest range ");
    rev(&s, m->chip_rev_min);
    sb_s(&s, "..");
    rev(&s, m->chip_rev_max);
    step(r, "manifest.chip-rev",
         cfg->chip_rev >= m->chip_rev_min && cfg->chip_rev <= m->chip_rev_max, d);

    if (cfg->no_clock) {
        /* No trusted clock: the counter is the only protection against a replay. */
        emit(r, "manifest.expiry", FWREL_DEV_SKIP, r->failed ? "not reached" : "no clock");
        emit(r, "manifest.created", FWREL_DEV_SKIP, r->failed ? "not reached" : "no clock");
    } else {
        sb_init(&s, d, sizeof(d));
        sb_s(&s, "now ");
        sb_u(&s, now);
        sb_s(&s, ", expires ");
        sb_u(&s, m->expires);
        if (now >= m->expires)
            sb_s(&s, ": expired (a frozen or replayed update)");
        step(r, "manifest.expiry", now < m->expires, d);

        sb_init(&s, d, sizeof(d));
        sb_s(&s, "created ");
        sb_u(&s, m->created);
        sb_s(&s, ", now ");
        sb_u(&s, now);
        step(r, "manifest.created", m->created <= now + 300, d); /* 5 minutes of clock skew */
    }

    if (cfg->has_counter) {
        sb_init(&s, d, sizeof(d));
        sb_s(&s, "release counter ");
        sb_u(&s, m->counter);
        sb_s(&s, ", last installed ");
        sb_u(&s, cfg->counter);
        if (m->counter <= cfg->counter)
            sb_s(&s, ": a replayed or older release");
        step(r, "manifest.counter", m->counter > cfg->counter, d);
    }
    if (cfg->anti_rollback) {
        sb_init(&s, d, sizeof(d));
        sb_s(&s, "secure_version ");
        sb_u(&s, m->secure_version);
        sb_s(&s, ", eFuse ");
        sb_u(&s, cfg->efuse_secure_version);
        step(r, "manifest.secure-version", m->secure_version >= cfg->efuse_secure_version, d);
    }
}

/* --- the whole procedure ------------------------------------------------------------------ */

static int config_ok(const fwrel_dev_config *cfg)
{
    const fwrel_dev_crypto *c = cfg->crypto;
    const fwrel_dev_recipient *me = &cfg->recipient;
    if (c == NULL || cfg->ntrusted < 1 || cfg->ntrusted > FWREL_DEV_MAX_TRUSTED ||
        cfg->threshold < 1 || cfg->threshold > cfg->ntrusted || cfg->product == NULL ||
        cfg->chip == NULL || cfg->nchannels < 1 || cfg->nchannels > FWREL_DEV_MAX_CHANNELS ||
        me->key == NULL)
        return 0;
    for (size_t i = 0; i < cfg->nchannels; i++)
        if (cfg->channels[i] == NULL)
            return 0;
    for (size_t i = 0; i < cfg->ntrusted; i++)
        if (cfg->trusted[i].spki == NULL || cfg->trusted[i].len == 0)
            return 0;
    switch (me->type) {
    case FWREL_DEV_RCPT_RSA4096:
        return me->key_len > 0;
    case FWREL_DEV_RCPT_X25519:
    case FWREL_DEV_RCPT_P256:
        return me->key_len == 32;
    default:
        return 0;
    }
}

/* The key ids of the trusted keys: SHA-256 of each SubjectPublicKeyInfo. */
static int trusted_ids(fwrel_dev_work *w, const fwrel_dev_config *cfg)
{
    const fwrel_dev_crypto *c = cfg->crypto;
    for (size_t k = 0; k < cfg->ntrusted; k++) {
        if (c->sha256_start(&w->sha) != 0)
            return FWREL_DEV_ECRYPTO;
        if (c->sha256_update(&w->sha, cfg->trusted[k].spki, cfg->trusted[k].len) != 0) {
            c->sha256_abort(&w->sha);
            return FWREL_DEV_ECRYPTO;
        }
        if (c->sha256_finish(&w->sha, w->ids[k]) != 0)
            return FWREL_DEV_ECRYPTO;
    }
    return FWREL_DEV_OK;
}

int fwrel_dev_verify(fwrel_dev_manifest *out, fwrel_dev_result *res, fwrel_dev_work *w,
                     const fwrel_dev_config *cfg, const uint8_t *env, size_t len, uint64_t now,
                     fwrel_dev_step_fn fn, void *step_ctx)
{
    struct run r = {fn, step_ctx, res, 0};
    char detail[FWREL_DEV_DETAIL_MAX];
    size_t plen = 0;
    int error;

    if (out == NULL || res == NULL || w == NULL || cfg == NULL || (env == NULL && len > 0))
        return FWREL_DEV_EUSAGE;
    res->first[0] = '\0';
    if (!config_ok(cfg))
        return FWREL_DEV_EUSAGE;
    if (env == NULL)
        env = (const uint8_t *)"";
    if ((error = trusted_ids(w, cfg)) != 0)
        goto done;
    /* Steps 1-4. */
    if ((error = open_envelope(w, &plen, detail, cfg, env, len)) != 0) {
        step(&r, "manifest.open", 0, detail);
        goto verdict;
    }
    {
        dev_sb s;
        sb_init(&s, detail, sizeof(detail));
        sb_s(&s, "decrypted with the device key (");
        sb_u(&s, plen);
        sb_s(&s, " bytes)");
        step(&r, "manifest.open", 1, detail);
    }
    /* Steps 5-7. */
    if ((error = verify_signed(&r, w, detail, cfg, plen)) != 0) {
        step(&r, "manifest.signatures", 0, detail);
        goto verdict;
    }
    /* Step 8. */
    device_steps(&r, cfg, &w->m, now);
verdict:
    error = r.failed ? FWREL_DEV_EREJECT : FWREL_DEV_OK;
    if (error == FWREL_DEV_OK)
        dev_memcpy(out, &w->m, sizeof(*out));
done:
    dev_wipe(w, sizeof(*w));
    return error;
}

int fwrel_dev_ota_decision(char *why_out, size_t n, const fwrel_dev_config *cfg,
                           const fwrel_dev_manifest *m)
{
    const char *running = cfg->running_version != NULL ? cfg->running_version : "";
    dev_sb s;
    sb_init(&s, why_out, n);
    /* docs/esp-formats.md §5: esp_efuse_check_secure_version() before the download is
     * written ... */
    if (cfg->anti_rollback && m->secure_version < cfg->efuse_secure_version) {
        sb_s(&s, "New firmware security version is less than eFuse programmed, ");
        sb_u(&s, m->secure_version);
        sb_s(&s, " < ");
        sb_u(&s, cfg->efuse_secure_version);
        return 0;
    }
    /* ... and the IDF OTA examples' version check against the running app. */
    if (running[0] && dev_strcmp(m->version, running) == 0) {
        sb_s(&s, "Current running version is the same as a new (");
        sb_s(&s, m->version);
        sb_s(&s, "). We will not continue the update.");
        return 0;
    }
    sb_s(&s, "update to ");
    sb_s(&s, m->version);
    sb_s(&s, " (secure_version ");
    sb_u(&s, m->secure_version);
    sb_s(&s, "): ");
    sb_s(&s, cfg->anti_rollback ? "eFuse secure_version allows it" : "no anti-rollback");
    if (running[0]) {
        sb_s(&s, ", running ");
        sb_s(&s, running);
    }
    return 1;
}

uint64_t fwrel_dev_counter_to_store(const fwrel_dev_manifest *m)
{
    return m->counter;
}
