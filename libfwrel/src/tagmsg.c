/* tagmsg.c - the release tag message, written and read (tagmsg.h, docs/repo.md section 2). */
#include "fwrel/tagmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/audit.h"
#include "fwrel/pgp.h"
#include "fwrel/repo.h"
#include "util.h"

/* --- small helpers ---------------------------------------------------------------------- */

static int is_hex64(const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0'; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return i == 64;
}

/* A relative path of safe components (the rule of repo.h for release files). */
static int path_safe(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n >= 128 || p[0] == '/')
        return 0;
    const char *c = p;
    while (*c) {
        const char *e = strchr(c, '/');
        size_t len = e != NULL ? (size_t)(e - c) : strlen(c);
        if (len == 0 || c[0] == '.')
            return 0;
        for (size_t i = 0; i < len; i++) {
            char ch = c[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '+' || ch == '@' ||
                  ch == '-'))
                return 0;
        }
        c += len;
        if (*c == '/')
            c++;
    }
    return p[n - 1] != '/';
}

/* Copy a token of at most max-1 bytes; 0 on success, -1 when too long. */
static int copy_tok(char *out, size_t max, const char *s, size_t n)
{
    if (n >= max)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* "sha256:<64 hex>" */
static int parse_sha(char out[65], const char *s, size_t n)
{
    if (n != 71 || strncmp(s, "sha256:", 7) != 0 || copy_tok(out, 65, s + 7, 64) != 0 ||
        !is_hex64(out))
        return -1;
    return 0;
}

/* "<prefix><decimal>" */
static int parse_num(uint64_t *v, const char *prefix, const char *s, size_t n, uint64_t max)
{
    char buf[32];
    size_t pl = strlen(prefix);
    if (n <= pl || strncmp(s, prefix, pl) != 0 || copy_tok(buf, sizeof(buf), s + pl, n - pl) != 0)
        return -1;
    for (const char *c = buf; *c; c++)
        if (*c < '0' || *c > '9')
            return -1;
    return fwrel_parse_u64(v, buf, max);
}

/* Split s (n bytes) at single spaces into at most max tokens. */
static size_t split(const char **tok, size_t *tlen, size_t max, const char *s, size_t n)
{
    size_t k = 0, i = 0;
    while (i < n && k < max) {
        size_t j = i;
        while (j < n && s[j] != ' ')
            j++;
        tok[k] = s + i;
        tlen[k++] = j - i;
        i = j + 1;
    }
    return i < n ? max + 1 : k;
}

/* --- reading ------------------------------------------------------------------------------ */

enum { F_COUNTER, F_SV, F_BUNDLE, F_RJ, F_INPUT, F_POLICY, F_APPROVALS, F_AUDIT, F_COUNT };
static const char *const field_names[F_COUNT] = {
    "counter", "secure_version", "bundle", "release.json", "input", "policy", "approvals", "audit"};

/* "approvals: K of M: FPR, FPR" or "approvals: K of M: none" */
static int parse_approvals(fwrel_tagmsg *T, const char *v, size_t n)
{
    const char *colon = memchr(v, ':', n);
    const char *tok[4];
    size_t tl[4];
    uint64_t k = 0, m = 0;
    if (colon == NULL || (size_t)(colon - v) + 2 > n || colon[1] != ' ')
        return -1;
    if (split(tok, tl, 3, v, (size_t)(colon - v)) != 3 || tl[1] != 2 ||
        strncmp(tok[1], "of", 2) != 0 || parse_num(&k, "", tok[0], tl[0], 64) != 0 ||
        parse_num(&m, "", tok[2], tl[2], 64) != 0)
        return -1;
    T->approvals_required = (unsigned)m;
    const char *s = colon + 2, *e = v + n;
    if (e - s == 4 && memcmp(s, "none", 4) == 0)
        return k == 0 ? 0 : -1;
    while (s < e) {
        const char *c = s;
        while (c < e && *c != ',')
            c++;
        if (T->napprovals == FWREL_TAGMSG_APPROVALS_MAX ||
            copy_tok(T->approvals[T->napprovals], 41, s, (size_t)(c - s)) != 0 ||
            !fwrel_pgp_fpr_valid(T->approvals[T->napprovals]))
            return -1;
        T->napprovals++;
        if (c == e)
            break;
        if (c + 2 > e || c[1] != ' ')
            return -1;
        s = c + 2;
    }
    return k == T->napprovals ? 0 : -1;
}

static int parse_field(fwrel_tagmsg *T, int f, const char *v, size_t n)
{
    const char *tok[4];
    size_t tl[4];
    uint64_t x = 0;
    switch (f) {
    case F_COUNTER:
        return parse_num(&T->counter, "", v, n, UINT64_MAX);
    case F_SV:
        if (parse_num(&x, "", v, n, UINT32_MAX) != 0)
            return -1;
        T->secure_version = (uint32_t)x;
        return 0;
    case F_BUNDLE:
        if (split(tok, tl, 3, v, n) != 3 ||
            copy_tok(T->bundle_path, sizeof(T->bundle_path), tok[0], tl[0]) != 0 ||
            parse_sha(T->bundle_sha, tok[1], tl[1]) != 0 ||
            parse_num(&T->bundle_size, "size:", tok[2], tl[2], FWREL_REPO_FILE_MAX) != 0)
            return -1;
        return 0;
    case F_RJ:
        return parse_sha(T->rj_sha, v, n);
    case F_INPUT:
        if (split(tok, tl, 2, v, n) != 2 || parse_sha(T->input_sha, tok[0], tl[0]) != 0 ||
            parse_num(&T->input_size, "size:", tok[1], tl[1], UINT64_MAX) != 0)
            return -1;
        return 0;
    case F_POLICY:
        return parse_sha(T->policy_sha, v, n);
    case F_APPROVALS:
        return parse_approvals(T, v, n);
    case F_AUDIT:
        if (split(tok, tl, 3, v, n) != 3 ||
            copy_tok(T->audit_path, sizeof(T->audit_path), tok[0], tl[0]) != 0 ||
            !path_safe(T->audit_path) || tl[1] != 69 || strncmp(tok[1], "head:", 5) != 0 ||
            copy_tok(T->audit_head, 65, tok[1] + 5, 64) != 0 || !is_hex64(T->audit_head) ||
            parse_num(&T->audit_entries, "entries:", tok[2], tl[2], FWREL_AUDIT_ENTRIES_MAX) != 0 ||
            T->audit_entries == 0)
            return -1;
        return 0;
    }
    return -1;
}

/* The field lines from line to end: each exactly once. 1, or 0 with err set. */
static int parse_fields(fwrel_tagmsg *T, char *err, size_t errlen, const char *line,
                        const char *end)
{
    int seen[F_COUNT] = {0};
    while (line < end) {
        const char *e = memchr(line, '\n', (size_t)(end - line));
        size_t n = e != NULL ? (size_t)(e - line) : (size_t)(end - line);
        for (int f = 0; f < F_COUNT; f++) {
            size_t kl = strlen(field_names[f]);
            if (n > kl + 2 && memcmp(line, field_names[f], kl) == 0 && line[kl] == ':' &&
                line[kl + 1] == ' ') {
                if (seen[f]++ || parse_field(T, f, line + kl + 2, n - kl - 2) != 0) {
                    snprintf(err, errlen, "the message's '%s:' line is %s", field_names[f],
                             seen[f] > 1 ? "repeated" : "malformed");
                    return 0;
                }
            }
        }
        line += n + 1;
    }
    for (int f = 0; f < F_COUNT; f++)
        if (!seen[f]) {
            snprintf(err, errlen, "the message has no '%s:' line", field_names[f]);
            return 0;
        }
    return 1;
}

int fwrel_tagmsg_decode(fwrel_tagmsg *m, char *err, size_t errlen, const uint8_t *msg, size_t len)
{
    const char *body = (const char *)msg, *end = body + len;
    char scratch[1];
    if (err == NULL || errlen == 0)
        err = scratch, errlen = sizeof(scratch);
    memset(m, 0, sizeof(*m));
    err[0] = '\0';
    /* "fwrel release <product> <version> (<channel>)" */
    const char *nl = len > 0 ? memchr(body, '\n', len) : NULL;
    const char *tok[5];
    size_t tl[5];
    if (nl == NULL || split(tok, tl, 5, body, (size_t)(nl - body)) != 5 || tl[0] != 5 ||
        memcmp(tok[0], "fwrel", 5) != 0 || tl[1] != 7 || memcmp(tok[1], "release", 7) != 0 ||
        tl[4] < 3 || tok[4][0] != '(' || tok[4][tl[4] - 1] != ')' ||
        copy_tok(m->product, sizeof(m->product), tok[2], tl[2]) != 0 ||
        copy_tok(m->version, sizeof(m->version), tok[3], tl[3]) != 0 ||
        copy_tok(m->channel, sizeof(m->channel), tok[4] + 1, tl[4] - 2) != 0) {
        m->product[0] = m->version[0] = m->channel[0] = '\0';
        snprintf(err, errlen,
                 "the message does not start 'fwrel release PRODUCT VERSION (CHANNEL)'");
        return 0;
    }
    return parse_fields(m, err, errlen, nl + 1, end);
}

int fwrel_tagmsg_decode_tag(fwrel_tagmsg *m, char *err, size_t errlen, const uint8_t *raw,
                            size_t payload_len)
{
    const char *p = (const char *)raw, *end = p + payload_len;
    for (const char *c = p; c + 1 < end; c++)
        if (c[0] == '\n' && c[1] == '\n')
            return fwrel_tagmsg_decode(m, err, errlen, (const uint8_t *)(c + 2),
                                       (size_t)(end - (c + 2)));
    memset(m, 0, sizeof(*m));
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "the tag has no message");
    return 0;
}

/* --- writing ------------------------------------------------------------------------------ */

/* The field lines (after the first line and its blank line). */
static int fields_text(char *out, size_t cap, const fwrel_tagmsg *m)
{
    char approvers[FWREL_TAGMSG_APPROVALS_MAX * 42 + 1] = "";
    for (size_t i = 0; i < m->napprovals && i < FWREL_TAGMSG_APPROVALS_MAX; i++) {
        size_t n = strlen(approvers);
        snprintf(approvers + n, sizeof(approvers) - n, "%s%.40s", n ? ", " : "", m->approvals[i]);
    }
    int n = snprintf(out, cap,
                     "counter: %llu\nsecure_version: %u\n"
                     "bundle: %s sha256:%s size:%llu\n"
                     "release.json: sha256:%s\ninput: sha256:%s size:%llu\npolicy: sha256:%s\n"
                     "approvals: %zu of %u: %s\n"
                     "audit: %s head:%s entries:%llu\n",
                     (unsigned long long)m->counter, m->secure_version, m->bundle_path,
                     m->bundle_sha, (unsigned long long)m->bundle_size, m->rj_sha, m->input_sha,
                     (unsigned long long)m->input_size, m->policy_sha, m->napprovals,
                     m->approvals_required, approvers[0] ? approvers : "none", m->audit_path,
                     m->audit_head, (unsigned long long)m->audit_entries);
    if (n < 0 || (size_t)n >= cap)
        return fwrel_error_set(FWREL_EFORMAT, "the tag message is too long");
    return 0;
}

/* What is written must read back as written (the auditor's reader is this one). */
static int reads_back(const char *text, const fwrel_tagmsg *m)
{
    fwrel_tagmsg *back = malloc(sizeof(*back));
    char err[FWREL_ERROR_MSG_MAX];
    int error = 0;
    if (back == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    if (!fwrel_tagmsg_decode(back, err, sizeof(err), (const uint8_t *)text, strlen(text)))
        error = fwrel_error_set(FWREL_EFORMAT, "the tag message would not read back: %s", err);
    else if (strcmp(back->product, m->product) != 0 || strcmp(back->version, m->version) != 0 ||
             strcmp(back->channel, m->channel) != 0 || back->counter != m->counter ||
             back->secure_version != m->secure_version || back->napprovals != m->napprovals)
        error = fwrel_error_set(FWREL_EFORMAT, "the tag message would not read back as written");
    free(back);
    return error;
}

int fwrel_tagmsg_encode(char **tag_msg, char **commit_msg, const fwrel_tagmsg *m, const char *tag)
{
    FWREL_ASSERT_ARG(tag_msg != NULL && m != NULL && tag != NULL);
    char *fields = NULL, *t = NULL, *c = NULL;
    size_t cap = 4096, tcap, ccap;
    int error;

    *tag_msg = NULL;
    if (commit_msg != NULL)
        *commit_msg = NULL;
    if ((fields = malloc(cap)) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    if ((error = fields_text(fields, cap, m)) != 0)
        goto done;
    tcap = strlen(fields) + 300;
    ccap = strlen(fields) + strlen(tag) + 16;
    if ((t = malloc(tcap)) == NULL || (commit_msg != NULL && (c = malloc(ccap)) == NULL)) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    snprintf(t, tcap, "fwrel release %s %s (%s)\n\n%s", m->product, m->version, m->channel, fields);
    if ((error = reads_back(t, m)) != 0)
        goto done;
    if (c != NULL)
        snprintf(c, ccap, "release %s\n\n%s", tag, fields);
    *tag_msg = t;
    t = NULL;
    if (commit_msg != NULL) {
        *commit_msg = c;
        c = NULL;
    }
    error = 0;
done:
    free(fields);
    free(t);
    free(c);
    return error;
}

int fwrel_tagmsg_from_commit(char **tag_msg, const char *commit_msg, const char *tag,
                             const char *product, const char *version, const char *channel)
{
    FWREL_ASSERT_ARG(tag_msg != NULL && commit_msg != NULL && tag != NULL && product != NULL &&
                     version != NULL && channel != NULL);
    char head[300];
    *tag_msg = NULL;
    int n = snprintf(head, sizeof(head), "release %s\n\n", tag);
    if (n < 0 || (size_t)n >= sizeof(head) || strncmp(commit_msg, head, (size_t)n) != 0)
        return fwrel_error_set(FWREL_EVERIFY, "its message is not a release's");
    size_t len = strlen(commit_msg) + 400;
    char *t = malloc(len);
    if (t == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    snprintf(t, len, "fwrel release %s %s (%s)\n\n%s", product, version, channel, commit_msg + n);
    *tag_msg = t;
    return 0;
}
