/* hsm.c - RFC 7512 pkcs11: URI parsing (bounded: the URI length is capped, every value is
 * decoded into a fixed buffer whose size is checked first). */
#include "fwrel/hsm.h"

#include <string.h>

#include "util.h"

int fwrel_hsm_is_uri(const char *arg)
{
    return arg != NULL && strncmp(arg, "pkcs11:", 7) == 0;
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
            int hi = fwrel_hexval(s[i + 1]);
            int lo = fwrel_hexval(s[i + 2]);
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

/* ---- HSM keys through PKCS#11 ------------------------------------------------------------ */

#include <dlfcn.h>
#include <stdlib.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <p11-kit/pkcs11.h>

#include "fwrel/sbv2.h"

/* A loaded module, shared by the keys opened through it (C_Initialize/C_Finalize are per
 * process: the last key closed finalizes the module only when fwrel initialized it). */
struct hsm_module {
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    unsigned refs;
    int finalize; /* we initialized it */
};

#define HSM_MODULES_MAX 8
static struct hsm_module g_modules[HSM_MODULES_MAX];

struct fwrel_hsm_key {
    struct hsm_module *mod;
    CK_SESSION_HANDLE session;
    int have_session;
    CK_OBJECT_HANDLE priv;
    EVP_PKEY *pub;
    int ec; /* EC P-256 */
    int ed; /* Ed25519 */
};

static const char *ckr_name(CK_RV rv)
{
    switch (rv) {
#define N(x)                                                                                       \
    case x:                                                                                        \
        return #x;
        N(CKR_OK)
        N(CKR_HOST_MEMORY)
        N(CKR_SLOT_ID_INVALID)
        N(CKR_GENERAL_ERROR)
        N(CKR_FUNCTION_FAILED)
        N(CKR_ARGUMENTS_BAD)
        N(CKR_ATTRIBUTE_TYPE_INVALID)
        N(CKR_ATTRIBUTE_SENSITIVE)
        N(CKR_DEVICE_ERROR)
        N(CKR_DEVICE_MEMORY)
        N(CKR_DEVICE_REMOVED)
        N(CKR_DATA_LEN_RANGE)
        N(CKR_FUNCTION_NOT_SUPPORTED)
        N(CKR_KEY_HANDLE_INVALID)
        N(CKR_KEY_TYPE_INCONSISTENT)
        N(CKR_KEY_FUNCTION_NOT_PERMITTED)
        N(CKR_MECHANISM_INVALID)
        N(CKR_MECHANISM_PARAM_INVALID)
        N(CKR_OPERATION_ACTIVE)
        N(CKR_PIN_INCORRECT)
        N(CKR_PIN_INVALID)
        N(CKR_PIN_LEN_RANGE)
        N(CKR_PIN_EXPIRED)
        N(CKR_PIN_LOCKED)
        N(CKR_SESSION_HANDLE_INVALID)
        N(CKR_TOKEN_NOT_PRESENT)
        N(CKR_TOKEN_NOT_RECOGNIZED)
        N(CKR_USER_NOT_LOGGED_IN)
        N(CKR_USER_PIN_NOT_INITIALIZED)
        N(CKR_BUFFER_TOO_SMALL)
        N(CKR_CRYPTOKI_NOT_INITIALIZED)
#undef N
    default:
        return NULL;
    }
}

/* FWREL_EKEY naming the PKCS#11 call and code ("wrong PIN" for CKR_PIN_INCORRECT). */
static int ck_fail(const char *uri, const char *call, CK_RV rv)
{
    (void)uri; /* the caller names the URI (commands: "<uri>: <reason>") */
    if (rv == CKR_PIN_INCORRECT)
        return fwrel_error_set(FWREL_EKEY, "wrong PIN");
    const char *name = ckr_name(rv);
    if (name != NULL)
        return fwrel_error_set(FWREL_EKEY, "%s failed: %s", call, name);
    return fwrel_error_set(FWREL_EKEY, "%s failed: CKR 0x%lx", call, (unsigned long)rv);
}

static int module_load(struct hsm_module **out, const char *path)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        const char *why = dlerror();
        return fwrel_error_set(FWREL_EIO, "cannot load PKCS#11 module %s: %s", path,
                               why ? why : "unknown error");
    }
    /* dlopen of the same file gives the same handle: share its state. */
    struct hsm_module *free_slot = NULL;
    for (size_t i = 0; i < HSM_MODULES_MAX; i++) {
        if (g_modules[i].refs > 0 && g_modules[i].dl == dl) {
            dlclose(dl); /* drop the extra reference */
            g_modules[i].refs++;
            *out = &g_modules[i];
            return 0;
        }
        if (g_modules[i].refs == 0 && free_slot == NULL)
            free_slot = &g_modules[i];
    }
    if (free_slot == NULL) {
        dlclose(dl);
        return fwrel_error_set(FWREL_EKEY, "too many PKCS#11 modules loaded");
    }
    CK_C_GetFunctionList gfl;
    *(void **)&gfl = dlsym(dl, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR f = NULL;
    if (gfl == NULL || gfl(&f) != CKR_OK || f == NULL) {
        dlclose(dl);
        return fwrel_error_set(FWREL_EIO, "cannot load PKCS#11 module %s: no C_GetFunctionList",
                               path);
    }
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        dlclose(dl);
        return ck_fail(path, "C_Initialize", rv);
    }
    free_slot->dl = dl;
    free_slot->f = f;
    free_slot->refs = 1;
    free_slot->finalize = rv == CKR_OK;
    *out = free_slot;
    return 0;
}

static void module_unref(struct hsm_module *m)
{
    if (m == NULL || m->refs == 0 || --m->refs > 0)
        return;
    if (m->finalize)
        m->f->C_Finalize(NULL);
    dlclose(m->dl);
    memset(m, 0, sizeof(*m));
}

/* A blank-padded CK_TOKEN_INFO field equals a URI value. */
static int padded_eq(const CK_UTF8CHAR *field, size_t cap, const char *want)
{
    size_t n = strlen(want);
    if (n > cap || memcmp(field, want, n) != 0)
        return 0;
    for (size_t i = n; i < cap; i++)
        if (field[i] != ' ')
            return 0;
    return 1;
}

static int token_matches(const CK_TOKEN_INFO *ti, const fwrel_hsm_uri *u)
{
    if ((u->has & FWREL_HSM_TOKEN) && !padded_eq(ti->label, sizeof(ti->label), u->token))
        return 0;
    if ((u->has & FWREL_HSM_MANUFACTURER) &&
        !padded_eq(ti->manufacturerID, sizeof(ti->manufacturerID), u->manufacturer))
        return 0;
    if ((u->has & FWREL_HSM_SERIAL) &&
        !padded_eq(ti->serialNumber, sizeof(ti->serialNumber), u->serial))
        return 0;
    if ((u->has & FWREL_HSM_MODEL) && !padded_eq(ti->model, sizeof(ti->model), u->model))
        return 0;
    return 1;
}

static int find_slot(CK_SLOT_ID *slot, CK_FUNCTION_LIST_PTR f, const fwrel_hsm_uri *u,
                     const char *uri)
{
    (void)uri;
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK)
        return ck_fail(uri, "C_GetSlotList", rv);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        if (token_matches(&ti, u)) {
            *slot = slots[i];
            return 0;
        }
    }
    return fwrel_error_set(FWREL_EKEY, "no PKCS#11 token matches");
}

/* Read one attribute into a malloc'd buffer (at most cap bytes). */
static int get_attr(uint8_t **val, size_t *len, CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
                    CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, size_t cap)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    *val = NULL;
    if (f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0 || a.ulValueLen > cap)
        return -1;
    if ((*val = malloc(a.ulValueLen)) == NULL)
        return -1;
    a.pValue = *val;
    if (f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK) {
        free(*val);
        *val = NULL;
        return -1;
    }
    *len = a.ulValueLen;
    return 0;
}

static const uint8_t P256_OID[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

/* CKA_EC_PARAMS of Ed25519: the OID 1.3.101.112, or the PrintableString "edwards25519". */
static const uint8_t ED25519_OID[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const uint8_t ED25519_NAME[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r',
                                       'd',  's',  '2', '5', '5', '1', '9'};

/* An Ed25519 public key from CKA_EC_PARAMS and CKA_EC_POINT; 0, -1 (missing), or an error. */
static int ed_pub_from(EVP_PKEY **out, CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
                       CK_OBJECT_HANDLE o)
{
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    int error = -1;
    if (get_attr(&a, &alen, f, s, o, CKA_EC_PARAMS, 64) != 0 ||
        get_attr(&b, &blen, f, s, o, CKA_EC_POINT, 64) != 0)
        goto done;
    if (!(alen == sizeof(ED25519_OID) && memcmp(a, ED25519_OID, alen) == 0) &&
        !(alen == sizeof(ED25519_NAME) && memcmp(a, ED25519_NAME, alen) == 0)) {
        error = fwrel_error_set(FWREL_EKEY, "only Ed25519 Edwards-curve HSM keys are supported");
        goto done;
    }
    /* DER OCTET STRING of the 32-byte key, or the bare key. */
    const uint8_t *pt = blen == 34 && b[0] == 0x04 && b[1] == 32 ? b + 2 : b;
    if ((blen != 34 || pt == b) && blen != 32) {
        error = fwrel_error_set(FWREL_EKEY, "malformed CKA_EC_POINT");
        goto done;
    }
    if ((*out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pt, 32)) == NULL) {
        error = fwrel_error_set(FWREL_EKEY, "cannot build the public key");
        goto done;
    }
    error = 0;
done:
    free(a);
    free(b);
    return error;
}

/* Build the public key from object o's attributes; 0 or -1 (attributes missing), or an error. */
static int pub_from(EVP_PKEY **out, CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                    int ec, int ed, const char *uri)
{
    (void)uri;
    if (ed)
        return ed_pub_from(out, f, s, o);
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    BIGNUM *n = NULL, *e = NULL;
    int error = -1;

    if (ec) {
        if (get_attr(&a, &alen, f, s, o, CKA_EC_PARAMS, 256) != 0 ||
            get_attr(&b, &blen, f, s, o, CKA_EC_POINT, 256) != 0)
            goto done;
        if (alen != sizeof(P256_OID) || memcmp(a, P256_OID, alen) != 0) {
            error = fwrel_error_set(FWREL_EKEY, "only EC P-256 HSM keys are supported");
            goto done;
        }
        /* CKA_EC_POINT: DER OCTET STRING holding 04||X||Y (some modules give it bare). */
        const uint8_t *pt = b;
        size_t ptlen = blen;
        if (blen == 67 && b[0] == 0x04 && b[1] == 65) {
            pt = b + 2;
            ptlen = 65;
        }
        if (ptlen != 65 || pt[0] != 0x04) {
            error = fwrel_error_set(FWREL_EKEY, "malformed CKA_EC_POINT");
            goto done;
        }
        if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
            !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, ptlen))
            goto ossl;
    } else {
        if (get_attr(&a, &alen, f, s, o, CKA_MODULUS, 1024) != 0 ||
            get_attr(&b, &blen, f, s, o, CKA_PUBLIC_EXPONENT, 64) != 0)
            goto done;
        if ((n = BN_bin2bn(a, (int)alen, NULL)) == NULL ||
            (e = BN_bin2bn(b, (int)blen, NULL)) == NULL)
            goto ossl;
        if (BN_num_bits(n) != 3072) {
            error = fwrel_error_set(FWREL_EKEY, "only RSA-3072 HSM keys are supported, not %d bits",
                                    BN_num_bits(n));
            goto done;
        }
        if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
            goto ossl;
    }
    if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, ec ? "EC" : "RSA", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto ossl;
    error = 0;
    goto done;
ossl:
    error = fwrel_error_set(FWREL_EKEY, "cannot build the public key");
done:
    free(a);
    free(b);
    BN_free(n);
    BN_free(e);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    return error;
}

/* Find objects of a class matching label/id; *count is 0, 1 or 2 (2: two or more). */
static CK_RV find_objects(CK_OBJECT_HANDLE *found, CK_ULONG *count, CK_FUNCTION_LIST_PTR f,
                          CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label,
                          const uint8_t *id, size_t id_len)
{
    CK_ATTRIBUTE t[3];
    CK_ULONG nt = 0;
    t[nt].type = CKA_CLASS;
    t[nt].pValue = &cls;
    t[nt++].ulValueLen = sizeof(cls);
    if (label != NULL) {
        t[nt].type = CKA_LABEL;
        t[nt].pValue = (void *)label;
        t[nt++].ulValueLen = strlen(label);
    }
    if (id != NULL) {
        t[nt].type = CKA_ID;
        t[nt].pValue = (void *)id;
        t[nt++].ulValueLen = id_len;
    }
    CK_RV rv = f->C_FindObjectsInit(s, t, nt);
    if (rv != CKR_OK)
        return rv;
    rv = f->C_FindObjects(s, found, 2, count);
    CK_RV rv2 = f->C_FindObjectsFinal(s);
    return rv != CKR_OK ? rv : rv2;
}

int fwrel_hsm_key_open(fwrel_hsm_key **out, const char *uri, const char *module,
                       const fwrel_pass_src *pin_src)
{
    fwrel_hsm_uri *u = NULL;
    fwrel_hsm_key *k = NULL;
    char *pin = NULL;
    size_t pin_len = 0;
    uint8_t *id = NULL;
    size_t id_len = 0;
    int error;

    *out = NULL;
    if ((u = calloc(1, sizeof(*u))) == NULL || (k = calloc(1, sizeof(*k))) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    if ((error = fwrel_hsm_uri_parse(u, uri)) != 0)
        goto done;
    const char *path = (u->has & FWREL_HSM_MODULE) ? u->module_path
                       : module != NULL            ? module
                                                   : FWREL_HSM_DEFAULT_MODULE;
    if ((error = module_load(&k->mod, path)) != 0)
        goto done;
    CK_FUNCTION_LIST_PTR f = k->mod->f;
    CK_SLOT_ID slot = 0;
    if ((error = find_slot(&slot, f, u, uri)) != 0)
        goto done;
    CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &k->session);
    if (rv != CKR_OK) {
        error = ck_fail(uri, "C_OpenSession", rv);
        goto done;
    }
    k->have_session = 1;

    fwrel_pass_src file_src = {.kind = FWREL_PASS_FILE, .fd = -1, .file = u->pin_source};
    const fwrel_pass_src *src = (u->has & FWREL_HSM_PIN_SOURCE) ? &file_src : pin_src;
    if (src == NULL || src->kind == FWREL_PASS_NONE) {
        error = fwrel_error_set(FWREL_EKEY, "no PIN given (pin-source or a passphrase option)");
        goto done;
    }
    if ((error = fwrel_pass_read(&pin, &pin_len, src, "PIN for the HSM key: ", 0)) != 0)
        goto done;
    rv = f->C_Login(k->session, CKU_USER, (CK_UTF8CHAR_PTR)pin, pin_len);
    fwrel_pass_free(pin, pin_len);
    pin = NULL;
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        error = ck_fail(uri, "C_Login", rv);
        goto done;
    }

    CK_OBJECT_HANDLE found[2];
    CK_ULONG count = 0;
    rv = find_objects(found, &count, f, k->session, CKO_PRIVATE_KEY,
                      (u->has & FWREL_HSM_OBJECT) ? u->object : NULL,
                      (u->has & FWREL_HSM_ID) ? u->id : NULL, u->id_len);
    if (rv != CKR_OK) {
        error = ck_fail(uri, "C_FindObjects", rv);
        goto done;
    }
    if (count != 1) {
        error = fwrel_error_set(FWREL_EKEY, "%s",
                                count == 0 ? "no private key matches"
                                           : "more than one private key matches");
        goto done;
    }
    k->priv = found[0];

    CK_KEY_TYPE kt;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof(kt)};
    if ((rv = f->C_GetAttributeValue(k->session, k->priv, &a, 1)) != CKR_OK) {
        error = ck_fail(uri, "C_GetAttributeValue", rv);
        goto done;
    }
    if (kt != CKK_RSA && kt != CKK_EC && kt != CKK_EC_EDWARDS) {
        error = fwrel_error_set(FWREL_EKEY,
                                "only RSA-3072, EC P-256 and Ed25519 HSM keys are supported");
        goto done;
    }
    k->ec = kt == CKK_EC;
    k->ed = kt == CKK_EC_EDWARDS;

    /* The public key: the public object with the private key's id (or label), else the
     * private object's own attributes. */
    char label[256] = "";
    uint8_t *lab = NULL;
    size_t lab_len = 0;
    if (get_attr(&lab, &lab_len, f, k->session, k->priv, CKA_LABEL, sizeof(label) - 1) == 0) {
        memcpy(label, lab, lab_len);
        label[lab_len] = '\0';
        free(lab);
    }
    int have_id = get_attr(&id, &id_len, f, k->session, k->priv, CKA_ID, 255) == 0;
    rv = find_objects(found, &count, f, k->session, CKO_PUBLIC_KEY, have_id ? NULL : label,
                      have_id ? id : NULL, id_len);
    error = -1;
    if (rv == CKR_OK && count == 1 && (have_id || label[0] != '\0'))
        error = pub_from(&k->pub, f, k->session, found[0], k->ec, k->ed, uri);
    if (error == -1)
        error = pub_from(&k->pub, f, k->session, k->priv, k->ec, k->ed, uri);
    if (error == -1)
        error = fwrel_error_set(FWREL_EKEY, "no public key found for the private key");
    if (error)
        goto done;
    *out = k;
    k = NULL;
done:
    if (pin != NULL)
        fwrel_pass_free(pin, pin_len);
    free(id);
    if (u != NULL)
        OPENSSL_cleanse(u, sizeof(*u));
    free(u);
    fwrel_hsm_key_close(k);
    return error;
}

const fwrel_pkey *fwrel_hsm_key_public(const fwrel_hsm_key *key)
{
    return key->pub;
}

static int verify_sig(const fwrel_hsm_key *k, const uint8_t *digest, const uint8_t *sig,
                      size_t sig_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pub, NULL);
    int ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
             (k->ec || (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                        EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) == 1 &&
                        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1)) &&
             EVP_PKEY_verify(ctx, sig, sig_len, digest, 32) == 1;
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

int fwrel_hsm_key_sign(fwrel_hsm_key *key, const uint8_t *digest, size_t dlen, uint8_t *sig,
                       size_t *sig_len)
{
    CK_FUNCTION_LIST_PTR f = key->mod->f;
    CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    uint8_t raw[FWREL_HSM_SIG_MAX];
    CK_ULONG raw_len = sizeof(raw);
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    int error = 0;

    *sig_len = 0;
    if (key->ed)
        return fwrel_error_set(FWREL_EKEY,
                               "an Ed25519 HSM key signs whole messages (manifests), not digests");
    if (dlen != 32)
        return fwrel_error_set(FWREL_EUSAGE, "an HSM signs a SHA-256 digest (32 bytes), not %zu",
                               dlen);
    if (!key->ec) {
        mech.mechanism = CKM_RSA_PKCS_PSS;
        mech.pParameter = &pss;
        mech.ulParameterLen = sizeof(pss);
    }
    CK_RV rv = f->C_SignInit(key->session, &mech, key->priv);
    if (rv == CKR_OK)
        rv = f->C_Sign(key->session, (CK_BYTE_PTR)digest, 32, raw, &raw_len);
    if (rv != CKR_OK)
        return ck_fail("PKCS#11 key", "C_Sign", rv);
    if (key->ec) {
        if (raw_len != 64) {
            error = fwrel_error_set(FWREL_EKEY, "HSM ECDSA signature is %lu bytes, not 64",
                                    (unsigned long)raw_len);
            goto done;
        }
        unsigned char *p = sig;
        if ((es = ECDSA_SIG_new()) == NULL || (r = BN_bin2bn(raw, 32, NULL)) == NULL ||
            (s = BN_bin2bn(raw + 32, 32, NULL)) == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
            error = fwrel_error_set(FWREL_EKEY, "cannot encode the ECDSA signature");
            goto done;
        }
        r = s = NULL;
        int n = i2d_ECDSA_SIG(es, NULL);
        if (n <= 0 || n > FWREL_HSM_SIG_MAX || i2d_ECDSA_SIG(es, &p) != n) {
            error = fwrel_error_set(FWREL_EKEY, "cannot encode the ECDSA signature");
            goto done;
        }
        *sig_len = (size_t)n;
    } else {
        memcpy(sig, raw, raw_len);
        *sig_len = raw_len;
    }
    if (!verify_sig(key, digest, sig, *sig_len)) {
        error = fwrel_error_set(FWREL_EVERIFY, "the HSM's signature does not verify");
        OPENSSL_cleanse(sig, *sig_len);
        *sig_len = 0;
    }
done:
    ECDSA_SIG_free(es);
    BN_free(r);
    BN_free(s);
    return error;
}

/* Ed25519 (pure EdDSA, CKM_EDDSA without parameters) over the whole message. */
static int ed_sign(fwrel_hsm_key *key, const uint8_t *msg, size_t len, uint8_t *sig,
                   size_t *sig_len)
{
    CK_FUNCTION_LIST_PTR f = key->mod->f;
    CK_MECHANISM mech = {CKM_EDDSA, NULL, 0};
    CK_ULONG n = FWREL_HSM_SIG_MAX;
    CK_RV rv = f->C_SignInit(key->session, &mech, key->priv);
    if (rv == CKR_OK)
        rv = f->C_Sign(key->session, (CK_BYTE_PTR)msg, len, sig, &n);
    if (rv != CKR_OK)
        return ck_fail("PKCS#11 key", "C_Sign", rv);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = n == 64 && c != NULL && EVP_DigestVerifyInit(c, NULL, NULL, NULL, key->pub) == 1 &&
             EVP_DigestVerify(c, sig, n, msg, len) == 1;
    EVP_MD_CTX_free(c);
    ERR_clear_error();
    if (!ok) {
        OPENSSL_cleanse(sig, n);
        return fwrel_error_set(FWREL_EVERIFY, "the HSM's signature does not verify");
    }
    *sig_len = n;
    return 0;
}

int fwrel_hsm_key_sign_message(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig,
                               size_t *sig_len)
{
    uint8_t digest[32];
    unsigned int dl = 0;
    *sig_len = 0;
    if (((fwrel_hsm_key *)ctx)->ed)
        return ed_sign(ctx, msg, len, sig, sig_len);
    if (EVP_Digest(msg, len, digest, &dl, EVP_sha256(), NULL) != 1)
        return fwrel_error_set(FWREL_EKEY, "SHA-256 failed");
    return fwrel_hsm_key_sign(ctx, digest, dl, sig, sig_len);
}

void fwrel_hsm_key_close(fwrel_hsm_key *key)
{
    if (key == NULL)
        return;
    if (key->have_session)
        key->mod->f->C_CloseSession(key->session);
    module_unref(key->mod);
    EVP_PKEY_free(key->pub);
    free(key);
}

int fwrel_hsm_key_sign_sbv2(fwrel_pkey **pub, uint8_t **sig, size_t *sig_len, int *image_failed,
                            fwrel_hsm_key *key, const char *image, int append)
{
    FWREL_ASSERT_ARG(pub != NULL && sig != NULL && sig_len != NULL && image_failed != NULL &&
                     key != NULL && image != NULL);
    uint8_t digest[48];
    size_t dlen = 0;
    int scheme, error;

    *pub = NULL;
    *sig = NULL;
    *image_failed = 0;
    if ((error = fwrel_sbv2_key_scheme(&scheme, fwrel_hsm_key_public(key))) != 0)
        return error;
    if ((error = fwrel_sbv2_signing_digest(digest, &dlen, image, scheme, append)) != 0) {
        *image_failed = 1;
        return error;
    }
    if ((*sig = malloc(FWREL_HSM_SIG_MAX)) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    if ((error = fwrel_hsm_key_sign(key, digest, dlen, *sig, sig_len)) != 0)
        return error;
    *pub = (fwrel_pkey *)fwrel_hsm_key_public(key);
    if (EVP_PKEY_up_ref(*pub) != 1) {
        *pub = NULL;
        return fwrel_error_set(FWREL_EIO, "out of memory");
    }
    return 0;
}
