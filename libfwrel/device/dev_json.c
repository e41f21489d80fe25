/* dev_json.c - the canonical JSON reader of the device core (dev_json.h). */
#include "dev_json.h"

#include "dev_util.h"
#include "fwrel_dev.h"

/* A string at text[*pos] (the opening quote): printable ASCII, no '"' inside, no '\'. */
static int scan_string(const char *s, size_t n, size_t *pos)
{
    size_t i = *pos + 1;
    for (; i < n && s[i] != '"'; i++)
        if (s[i] < 0x20 || s[i] > 0x7E || s[i] == '\\')
            return -1;
    if (i >= n)
        return -1;
    *pos = i + 1;
    return 0;
}

/* 0 or [1-9][0-9]* up to 2^63 - 1 (the integers jansson writes; no sign, no fraction). */
static int scan_number(const char *s, size_t n, size_t *pos)
{
    const uint64_t max = ((uint64_t)1 << 63) - 1;
    size_t i = *pos;
    uint64_t v = 0;
    if (s[i] == '0') {
        *pos = i + 1;
        return *pos < n && s[*pos] >= '0' && s[*pos] <= '9' ? -1 : 0;
    }
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *pos = i;
    return 0;
}

static int scan_word(const char *s, size_t n, size_t *pos, const char *w)
{
    size_t k = dev_strlen(w);
    if (n - *pos < k || !dev_memeq(s + *pos, w, k))
        return -1;
    *pos += k;
    return 0;
}

int cj_validate(const char *s, size_t n)
{
    /* Per open container: its kind and the last key seen (objects), to check the order. */
    struct {
        char kind;
        const char *key;
        size_t key_len;
    } st[FWREL_DEV_JSON_DEPTH];
    size_t depth = 0, pos = 0;

    if (n == 0 || (s[0] != '{' && s[0] != '['))
        return -1;
value:
    if (pos >= n)
        return -1;
    switch (s[pos]) {
    case '{':
    case '[':
        if (depth == FWREL_DEV_JSON_DEPTH)
            return -1;
        st[depth].kind = s[pos];
        st[depth].key = NULL;
        st[depth].key_len = 0;
        depth++;
        pos++;
        if (pos < n && s[pos] == (s[pos - 1] == '{' ? '}' : ']')) {
            pos++;
            depth--;
            goto after;
        }
        if (s[pos - 1] == '{')
            goto key;
        goto value;
    case '"':
        if (scan_string(s, n, &pos) != 0)
            return -1;
        goto after;
    case 't':
        if (scan_word(s, n, &pos, "true") != 0)
            return -1;
        goto after;
    case 'f':
        if (scan_word(s, n, &pos, "false") != 0)
            return -1;
        goto after;
    default:
        if (s[pos] < '0' || s[pos] > '9' || scan_number(s, n, &pos) != 0)
            return -1;
        goto after;
    }
key:
    if (pos >= n || s[pos] != '"')
        return -1;
    {
        size_t start = pos + 1;
        if (scan_string(s, n, &pos) != 0)
            return -1;
        size_t klen = pos - 1 - start;
        if (st[depth - 1].key != NULL &&
            dev_cmpn(st[depth - 1].key, st[depth - 1].key_len, s + start, klen) >= 0)
            return -1; /* not sorted, or a duplicate */
        st[depth - 1].key = s + start;
        st[depth - 1].key_len = klen;
    }
    if (pos >= n || s[pos] != ':')
        return -1;
    pos++;
    goto value;
after:
    if (depth == 0)
        return pos == n ? 0 : -1;
    if (pos >= n)
        return -1;
    if (s[pos] == ',') {
        pos++;
        if (st[depth - 1].kind == '{')
            goto key;
        goto value;
    }
    if (s[pos] == (st[depth - 1].kind == '{' ? '}' : ']')) {
        pos++;
        depth--;
        goto after;
    }
    return -1;
}

/* The end of the value at p (validated text): strings hold no brackets that count. */
static size_t skip(const char *p)
{
    size_t i = 0;
    int depth = 0;
    do {
        char c = p[i];
        if (c == '"') {
            i++;
            while (p[i] != '"')
                i++;
            i++;
        } else if (c == '{' || c == '[') {
            depth++;
            i++;
        } else if (c == '}' || c == ']') {
            depth--;
            i++;
        } else {
            while (p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ':')
                i++;
        }
        while (depth > 0 && (p[i] == ',' || p[i] == ':'))
            i++;
    } while (depth > 0);
    return i;
}

int cj_type(cj_val v)
{
    if (v.p == NULL || v.n == 0)
        return CJ_NONE;
    switch (v.p[0]) {
    case '{':
        return CJ_OBJECT;
    case '[':
        return CJ_ARRAY;
    case '"':
        return CJ_STRING;
    case 't':
    case 'f':
        return CJ_BOOL;
    default:
        return CJ_NUMBER;
    }
}

int cj_next_member(cj_val obj, size_t *it, cj_val *key, cj_val *val)
{
    size_t i = *it == 0 ? 1 : *it;
    if (cj_type(obj) != CJ_OBJECT || i >= obj.n - 1)
        return 0;
    key->p = obj.p + i;
    key->n = skip(key->p);
    i += key->n + 1; /* the ':' */
    val->p = obj.p + i;
    val->n = skip(val->p);
    i += val->n;
    if (obj.p[i] == ',')
        i++;
    *it = i;
    return 1;
}

int cj_next_item(cj_val arr, size_t *it, cj_val *val)
{
    size_t i = *it == 0 ? 1 : *it;
    if (cj_type(arr) != CJ_ARRAY || i >= arr.n - 1)
        return 0;
    val->p = arr.p + i;
    val->n = skip(val->p);
    i += val->n;
    if (arr.p[i] == ',')
        i++;
    *it = i;
    return 1;
}

size_t cj_count(cj_val arr)
{
    size_t it = 0, n = 0;
    cj_val v;
    while (cj_next_item(arr, &it, &v))
        n++;
    return n;
}

cj_val cj_str(cj_val v)
{
    cj_val s = {v.p + 1, v.n - 2};
    return s;
}

cj_val cj_get(cj_val obj, const char *key)
{
    size_t it = 0, kn = dev_strlen(key);
    cj_val k, v, none = {NULL, 0};
    while (cj_next_member(obj, &it, &k, &v))
        if (dev_cmpn(k.p + 1, k.n - 2, key, kn) == 0)
            return v;
    return none;
}

uint64_t cj_u64(cj_val v)
{
    uint64_t r = 0;
    for (size_t i = 0; i < v.n; i++)
        r = r * 10 + (uint64_t)(v.p[i] - '0');
    return r;
}
