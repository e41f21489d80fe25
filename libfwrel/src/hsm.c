/* hsm.c - RFC 7512 pkcs11: URI parsing (bounded: the URI length is capped, every value is
 * decoded into a fixed buffer whose size is checked first). */
#include "fwrel/hsm.h"

#include <string.h>

int fwrel_hsm_is_uri(const char *arg)
{
    return arg != NULL && strncmp(arg, "pkcs11:", 7) == 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (cap bytes); *outlen is the decoded length. */
static int pct_decode(uint8_t *out, size_t cap, size_t *outlen, const char *s, size_t n,
                      const char *name)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = (unsigned char)s[i];
        if (s[i] == '%') {
            if (n - i < 3)
                return fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI: %s: truncated %%-escape", name);
            int hi = hexval(s[i + 1]);
            int lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI: %s: bad %%-escape", name);
            v = hi * 16 + lo;
            i += 2;
        } else if (v <= 0x20 || v >= 0x7f) {
            return fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI: %s: invalid character", name);
        }
        if (o >= cap)
            return fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI: %s: value too long", name);
        out[o++] = (uint8_t)v;
    }
    *outlen = o;
    return 0;
}

/* Decode a text value into a NUL-terminated buffer of size cap (value at most cap-1). */
static int text_value(char *out, size_t cap, const char *s, size_t n, const char *name)
{
    size_t len = 0;
    int error = pct_decode((uint8_t *)out, cap - 1, &len, s, n, name);
    if (error)
        return error;
    if (memchr(out, 0, len) != NULL)
        return fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI: %s: NUL byte", name);
    out[len] = '\0';
    return 0;
}

static int set_once(fwrel_hsm_uri *u, unsigned bit, const char *name)
{
    if (u->has & bit)
        return fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI: %s given twice", name);
    u->has |= bit;
    return 0;
}

static int path_attr(fwrel_hsm_uri *u, const char *k, size_t kn, const char *v, size_t vn,
                     int *seen_type)
{
#define KEY(s) (kn == sizeof(s) - 1 && memcmp(k, s, kn) == 0)
    int error;
    if (KEY("token")) {
        if ((error = set_once(u, FWREL_HSM_TOKEN, "token")) != 0)
            return error;
        return text_value(u->token, sizeof(u->token), v, vn, "token");
    }
    if (KEY("manufacturer")) {
        if ((error = set_once(u, FWREL_HSM_MANUFACTURER, "manufacturer")) != 0)
            return error;
        return text_value(u->manufacturer, sizeof(u->manufacturer), v, vn, "manufacturer");
    }
    if (KEY("serial")) {
        if ((error = set_once(u, FWREL_HSM_SERIAL, "serial")) != 0)
            return error;
        return text_value(u->serial, sizeof(u->serial), v, vn, "serial");
    }
    if (KEY("model")) {
        if ((error = set_once(u, FWREL_HSM_MODEL, "model")) != 0)
            return error;
        return text_value(u->model, sizeof(u->model), v, vn, "model");
    }
    if (KEY("object")) {
        if ((error = set_once(u, FWREL_HSM_OBJECT, "object")) != 0)
            return error;
        return text_value(u->object, sizeof(u->object), v, vn, "object");
    }
    if (KEY("id")) {
        if ((error = set_once(u, FWREL_HSM_ID, "id")) != 0)
            return error;
        error = pct_decode(u->id, sizeof(u->id), &u->id_len, v, vn, "id");
        if (error)
            return error;
        if (u->id_len == 0)
            return fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI: id: empty");
        return 0;
    }
    if (KEY("type")) {
        if (*seen_type)
            return fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI: type given twice");
        *seen_type = 1;
        if (!(vn == 7 && memcmp(v, "private", 7) == 0))
            return fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI: type must be private");
        return 0;
    }
    return fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI: unsupported path attribute '%.*s'",
                           (int)(kn > 32 ? 32 : kn), k);
}

static int query_attr(fwrel_hsm_uri *u, const char *k, size_t kn, const char *v, size_t vn)
{
    int error;
    if (KEY("pin-value"))
        return fwrel_error_set(FWREL_EUSAGE,
                               "pkcs11 URI: pin-value refused (use pin-source=file: or "
                               "--passphrase-file/-fd)");
    if (KEY("module-path")) {
        if ((error = set_once(u, FWREL_HSM_MODULE, "module-path")) != 0)
            return error;
        if ((error = text_value(u->module_path, sizeof(u->module_path), v, vn, "module-path")))
            return error;
        if (u->module_path[0] != '/')
            return fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI: module-path must be absolute");
        return 0;
    }
    if (KEY("pin-source")) {
        char tmp[sizeof(u->pin_source) + 5];
        if ((error = set_once(u, FWREL_HSM_PIN_SOURCE, "pin-source")) != 0)
            return error;
        if ((error = text_value(tmp, sizeof(tmp), v, vn, "pin-source")) != 0)
            return error;
        if (strncmp(tmp, "file:", 5) != 0 || tmp[5] != '/')
            return fwrel_error_set(FWREL_EFORMAT,
                                   "pkcs11 URI: pin-source must be file:<absolute path>");
        if (strlen(tmp + 5) >= sizeof(u->pin_source))
            return fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI: pin-source: value too long");
        memcpy(u->pin_source, tmp + 5, strlen(tmp + 5) + 1);
        return 0;
    }
    return fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI: unsupported query attribute '%.*s'",
                           (int)(kn > 32 ? 32 : kn), k);
#undef KEY
}

int fwrel_hsm_uri_parse(fwrel_hsm_uri *out, const char *uri)
{
    FWREL_ASSERT_ARG(out != NULL && uri != NULL);
    memset(out, 0, sizeof(*out));
    int error = 0, seen_type = 0;
    size_t n = strnlen(uri, FWREL_HSM_URI_MAX + 1);
    if (n > FWREL_HSM_URI_MAX) {
        error =
            fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI longer than %d bytes", FWREL_HSM_URI_MAX);
        goto done;
    }
    if (!fwrel_hsm_is_uri(uri)) {
        error = fwrel_error_set(FWREL_EFORMAT, "not a pkcs11: URI");
        goto done;
    }
    const char *end = uri + n;
    const char *q = memchr(uri + 7, '?', (size_t)(end - uri - 7));
    /* Two parts: path attributes separated by ';', query attributes by '&'. */
    for (int query = 0; query < 2; query++) {
        const char *p = query ? (q ? q + 1 : end) : uri + 7;
        const char *stop = query ? end : (q ? q : end);
        if (query && q == NULL)
            break;
        char sep = query ? '&' : ';';
        for (;;) {
            const char *e = memchr(p, sep, (size_t)(stop - p));
            if (e == NULL)
                e = stop;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            if (e == p || eq == NULL || eq == p) {
                error = fwrel_error_set(FWREL_EFORMAT,
                                        "pkcs11 URI: empty attribute or attribute without '='");
                goto done;
            }
            error = query ? query_attr(out, p, (size_t)(eq - p), eq + 1, (size_t)(e - eq - 1))
                          : path_attr(out, p, (size_t)(eq - p), eq + 1, (size_t)(e - eq - 1),
                                      &seen_type);
            if (error)
                goto done;
            if (e == stop)
                break;
            p = e + 1;
        }
    }
    if (!(out->has & (FWREL_HSM_OBJECT | FWREL_HSM_ID))) {
        error = fwrel_error_set(FWREL_EFORMAT, "pkcs11 URI names no key (object= or id=)");
        goto done;
    }
    error = 0;
done:
    if (error)
        memset(out, 0, sizeof(*out));
    return error;
}
