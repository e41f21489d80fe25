/* html.c - HTML pages escaped by construction and bounded; the auditor's report page (html.h). */
#include "fwrel/html.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fwrel/audit.h"
#include "fwrel/report.h"

/* Where the next character of markup lands: what a %s there would be. */
enum html_ctx {
    H_TEXT, /* element content: text allowed */
    H_TAG,  /* inside <...>, outside quotes: names, unquoted values; no text */
    H_DQ,   /* a "..." attribute value: text allowed */
    H_SQ,   /* a '...' attribute value: text allowed */
    H_RAW   /* the content of <style> or <script>: no text */
};

struct fwrel_html {
    char *p;
    size_t n, cap, max;
    int error;         /* the first failure, sticky */
    fwrel_error first; /* its message */
    enum html_ctx ctx;
    char tag[8]; /* the name of the tag being read, lower case (enough for "script") */
    size_t taglen;
    int naming, closing;
};

int fwrel_html_new(fwrel_html **out, size_t max)
{
    FWREL_ASSERT_ARG(out != NULL);
    *out = NULL;
    if (max == 0 || max > SIZE_MAX / 4)
        return fwrel_error_set(FWREL_EUSAGE, "an HTML page of at most %zu bytes", max);
    fwrel_html *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    h->max = max;
    *out = h;
    return 0;
}

void fwrel_html_free(fwrel_html *h)
{
    if (h == NULL)
        return;
    free(h->p);
    free(h);
}

static int fail(fwrel_html *h, int code)
{
    h->error = code;
    h->first = *fwrel_error_last();
    return code;
}

/* Append n bytes, the bound checked first. */
static int put(fwrel_html *h, const char *s, size_t n)
{
    if (h->error != 0)
        return h->error;
    if (n > h->max - h->n)
        return fail(h, fwrel_error_set(FWREL_EFORMAT, "the page would exceed %zu bytes", h->max));
    if (h->n + n + 1 > h->cap) {
        size_t cap = h->cap ? h->cap : 16384;
        while (cap < h->n + n + 1)
            cap *= 2;
        char *m = realloc(h->p, cap);
        if (m == NULL)
            return fail(h, fwrel_error_set(FWREL_EIO, "out of memory"));
        h->p = m;
        h->cap = cap;
    }
    memcpy(h->p + h->n, s, n);
    h->n += n;
    h->p[h->n] = '\0';
    return 0;
}

/* The length of the valid UTF-8 sequence at s (n bytes left), 0 when it is not one: overlong
 * forms, surrogates, code points above U+10FFFF and truncated sequences are not. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    uint32_t cp, min;
    size_t len;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2, cp = s[0] & 0x1fu, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, cp = s[0] & 0x0fu, min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4, cp = s[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Text, escaped for element content and either kind of quoted attribute value. */
static int put_text(fwrel_html *h, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), i = 0;
    while (i < n && h->error == 0) {
        size_t k = 0;
        while (i + k < n && s[i + k] >= 0x20 && s[i + k] < 0x7f && !strchr("&<>\"'", s[i + k]))
            k++;
        if (k > 0) {
            put(h, text + i, k);
            i += k;
            continue;
        }
        switch (s[i]) {
        case '&':
            put(h, "&amp;", 5);
            break;
        case '<':
            put(h, "&lt;", 4);
            break;
        case '>':
            put(h, "&gt;", 4);
            break;
        case '"':
            put(h, "&quot;", 6);
            break;
        case '\'':
            put(h, "&#39;", 5);
            break;
        default:
            /* A C0 control or DEL; an invalid byte; a C1 control (U+0080..U+009F, 0xc2 0x80..0x9f)
             * as one character. */
            k = s[i] >= 0x80 ? utf8_len(s + i, n - i) : 0;
            if (k == 2 && s[i] == 0xc2 && s[i + 1] <= 0x9f) {
                put(h, "&#xfffd;", 8);
                i += 2;
                continue;
            }
            if (k == 0) {
                put(h, "&#xfffd;", 8);
                break;
            }
            put(h, text + i, k);
            i += k;
            continue;
        }
        i++;
    }
    return h->error;
}

/* Follow one character of the template's markup. */
static void track(fwrel_html *h, char c)
{
    int letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    switch (h->ctx) {
    case H_TEXT:
    case H_RAW:
        if (c == '<') {
            h->ctx = H_TAG;
            h->taglen = 0;
            h->naming = 1;
            h->closing = 0;
        }
        break;
    case H_TAG:
        if (h->naming && letter) {
            if (h->taglen + 1 < sizeof(h->tag))
                h->tag[h->taglen++] = (char)(c | 0x20);
            h->tag[h->taglen] = '\0';
            break;
        }
        if (h->naming && c == '/' && h->taglen == 0) {
            h->closing = 1;
            break;
        }
        h->naming = 0;
        if (c == '"')
            h->ctx = H_DQ;
        else if (c == '\'')
            h->ctx = H_SQ;
        else if (c == '>')
            h->ctx = !h->closing && h->taglen > 0 &&
                             (strcmp(h->tag, "style") == 0 || strcmp(h->tag, "script") == 0)
                         ? H_RAW
                         : H_TEXT;
        break;
    case H_DQ:
        if (c == '"')
            h->ctx = H_TAG;
        break;
    case H_SQ:
        if (c == '\'')
            h->ctx = H_TAG;
        break;
    }
}

/* One number conversion: spec (at most 15 bytes) as printf reads it. */
static int put_number(fwrel_html *h, const char *spec, size_t len, char conv, int mod, va_list *ap)
{
    char f[16], buf[64];
    int n = -1;
    memcpy(f, spec, len);
    f[len] = '\0';
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    if (conv == 'd' || conv == 'i') {
        if (mod == 'l')
            n = snprintf(buf, sizeof(buf), f, va_arg(*ap, long));
        else if (mod == 'L')
            n = snprintf(buf, sizeof(buf), f, va_arg(*ap, long long));
        else if (mod != 'z')
            n = snprintf(buf, sizeof(buf), f, va_arg(*ap, int));
    } else {
        if (mod == 'l')
            n = snprintf(buf, sizeof(buf), f, va_arg(*ap, unsigned long));
        else if (mod == 'L')
            n = snprintf(buf, sizeof(buf), f, va_arg(*ap, unsigned long long));
        else if (mod == 'z')
            n = snprintf(buf, sizeof(buf), f, va_arg(*ap, size_t));
        else
            n = snprintf(buf, sizeof(buf), f, va_arg(*ap, unsigned));
    }
#pragma GCC diagnostic pop
    if (n < 0 || (size_t)n >= sizeof(buf))
        return fail(h, fwrel_error_set(FWREL_EUSAGE, "HTML template: conversion %s", f));
    return put(h, buf, (size_t)n);
}

int fwrel_html_put(fwrel_html *h, const char *tmpl, ...)
{
    va_list ap;
    const char *lit, *t;

    FWREL_ASSERT_ARG(h != NULL && tmpl != NULL);
    if (h->error != 0)
        return h->error;
    va_start(ap, tmpl);
    for (lit = t = tmpl; *t != '\0' && h->error == 0;) {
        if (*t != '%') {
            track(h, *t++);
            continue;
        }
        if (put(h, lit, (size_t)(t - lit)) != 0)
            break;
        const char *spec = t++;
        if (*t == '%') {
            put(h, "%", 1);
            lit = ++t;
            continue;
        }
        while (*t != '\0' && strchr("-+ #0", *t) != NULL)
            t++;
        while (*t >= '0' && *t <= '9')
            t++;
        if (*t == '.')
            for (t++; *t >= '0' && *t <= '9'; t++)
                ;
        int mod = 0;
        if (*t == 'h')
            mod = *++t == 'h' ? (t++, 'H') : 'h';
        else if (*t == 'l')
            mod = *++t == 'l' ? (t++, 'L') : 'l';
        else if (*t == 'z')
            mod = 'z', t++;
        char conv = *t;
        if (conv != '\0')
            t++;
        if (conv == 's' && t - spec == 2) {
            const char *text = va_arg(ap, const char *);
            if (h->ctx != H_TEXT && h->ctx != H_DQ && h->ctx != H_SQ)
                fail(h, fwrel_error_set(FWREL_EUSAGE, "HTML template: text where it cannot be "
                                                      "escaped (in a tag, a comment, or "
                                                      "<style>/<script>)"));
            else if (text == NULL)
                fail(h, fwrel_error_set(FWREL_EUSAGE, "HTML template: NULL text"));
            else
                put_text(h, text);
        } else if (conv != '\0' && strchr("diux", conv) != NULL && t - spec < 16) {
            put_number(h, spec, (size_t)(t - spec), conv, mod, &ap);
        } else {
            fail(h, fwrel_error_set(FWREL_EUSAGE, "HTML template: unsupported conversion %.*s",
                                    (int)(t - spec), spec));
        }
        lit = t;
    }
    if (h->error == 0)
        put(h, lit, (size_t)(t - lit));
    va_end(ap);
    return h->error;
}

int fwrel_html_finish(char **out, size_t *len, fwrel_html *h)
{
    FWREL_ASSERT_ARG(out != NULL && len != NULL && h != NULL);
    *out = NULL;
    *len = 0;
    int error = h->error;
    if (error != 0) {
        fwrel_error_set(error, "%s", h->first.message);
        free(h->p);
    } else if (h->p == NULL && (h->p = calloc(1, 1)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
    } else {
        *out = h->p;
        *len = h->n;
    }
    h->p = NULL;
    h->n = h->cap = 0;
    return error;
}

/* --- the auditor's report ------------------------------------------------------------------- */

static const char *verdict_name(int v)
{
    return v == FWREL_PASS ? "pass" : v == FWREL_FAIL ? "fail" : v == FWREL_SKIP ? "skip" : "info";
}

static void put_time(fwrel_html *h, int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    char buf[32];
    if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
        strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M", &tm) == 0)
        fwrel_html_put(h, "-");
    else
        fwrel_html_put(h, "%s", buf);
}

static void put_steps(fwrel_html *h, const fwrel_report *r)
{
    fwrel_html_put(
        h, "<table class=\"steps\"><tr><th>check</th><th>verdict</th><th>detail</th></tr>\n");
    for (size_t i = 0; i < fwrel_report_count(r); i++) {
        const fwrel_step *s = fwrel_report_step(r, i);
        const char *v = verdict_name(s->verdict);
        fwrel_html_put(h, "<tr><td><code>%s</code></td><td class=\"%s\">%s</td><td>%s</td></tr>\n",
                       s->name, v, v, s->detail);
    }
    fwrel_html_put(h, "</table>\n");
}

/* Is fpr among the approvers listed (n of them)? */
static int listed(const char (*list)[41], size_t n, const char *fpr)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(list[i], fpr) == 0)
            return 1;
    return 0;
}

static void put_release(fwrel_html *h, const fwrel_audit_release *R, size_t idx)
{
    const fwrel_step *f = fwrel_report_first_failure(R->report);
    fwrel_html_put(
        h, "<section class=\"release\" id=\"r%zu\">\n<h3>%s <span class=\"%s\">%s</span></h3>\n",
        idx + 1, R->tag, f ? "fail" : "pass", f ? "FAILED" : "VERIFIED");
    fwrel_html_put(h,
                   "<table class=\"facts\"><tr><th>product</th><td>%s</td></tr>"
                   "<tr><th>channel</th><td>%s</td></tr><tr><th>version</th><td>%s</td></tr>"
                   "<tr><th>secure_version</th><td>%u</td></tr>"
                   "<tr><th>counter</th><td>%llu</td></tr><tr><th>tagged</th><td>",
                   R->product, R->channel, R->version, R->secure_version,
                   (unsigned long long)R->counter);
    put_time(h, R->time);
    fwrel_html_put(h,
                   " UTC</td></tr><tr><th>commit</th><td><code>%s</code></td></tr>"
                   "<tr><th>tag signer</th><td><code>%s</code></td></tr>",
                   R->commit, R->signer[0] ? R->signer : "(no good signature)");
    if (f != NULL)
        fwrel_html_put(h,
                       "<tr><th>first failure</th><td class=\"fail\"><code>%s</code>: %s</td></tr>",
                       f->name, f->detail);
    fwrel_html_put(h, "</table>\n");

    /* Approvers: those the release pins, and who approved. */
    fwrel_html_put(h,
                   "<h4>Approvers (%zu of %u required)</h4>\n<table class=\"keys\"><tr><th>"
                   "fingerprint</th><th>pinned</th><th>approved</th></tr>\n",
                   R->napprovals, R->approvals_required);
    if (R->have_record) {
        for (size_t i = 0; i < R->record.napprovers; i++) {
            int ap = listed(R->approvals, R->napprovals, R->record.approvers[i]);
            fwrel_html_put(
                h, "<tr><td><code>%s</code></td><td>yes</td><td class=\"%s\">%s</td></tr>\n",
                R->record.approvers[i], ap ? "pass" : "skip", ap ? "yes" : "no");
        }
    }
    for (size_t i = 0; i < R->napprovals; i++)
        if (!R->have_record || !listed(R->record.approvers, R->record.napprovers, R->approvals[i]))
            fwrel_html_put(h,
                           "<tr><td><code>%s</code></td><td class=\"fail\">no</td><td>yes</td>"
                           "</tr>\n",
                           R->approvals[i]);
    fwrel_html_put(h, "</table>\n");

    /* Keys. */
    fwrel_html_put(h, "<h4>Keys</h4>\n<table class=\"keys\"><tr><th>role</th><th>key id</th><th>"
                      "keystore name</th><th>epoch</th><th>status</th></tr>\n");
    for (size_t i = 0; i < R->nkeys; i++) {
        const fwrel_audit_key *k = &R->keys[i];
        const char *cls = strcmp(k->status, "revoked") == 0 || strcmp(k->status, "absent") == 0
                              ? "fail"
                          : strcmp(k->status, "retired") == 0 ? "info"
                                                              : "pass";
        fwrel_html_put(h, "<tr><td>%s</td><td><code>%s</code></td><td>%s</td>", k->role, k->id,
                       k->name[0] ? k->name : "-");
        if (k->epoch)
            fwrel_html_put(h, "<td>%u</td>", k->epoch);
        else
            fwrel_html_put(h, "<td>-</td>");
        fwrel_html_put(h, "<td class=\"%s\">%s</td></tr>\n", k->status[0] ? cls : "skip",
                       k->status[0] ? k->status : "not checked");
    }
    fwrel_html_put(h, "</table>\n<h4>Checks</h4>\n");
    put_steps(h, R->report);
    fwrel_html_put(h, "</section>\n");
}

/* The page's style sheet: markup of the library's own (a literal of the template). */
#define AUDIT_CSS                                                                                  \
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}"              \
    "h1{font-size:1.6em}h3{margin-top:2em;border-bottom:1px solid #ccc}"                           \
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;"    \
    "text-align:left;vertical-align:top}th{background:#f3f3f3}code{font-size:12px;"                \
    "word-break:break-all}.pass{color:#065f0e;font-weight:600}.fail{color:#b00020;"                \
    "font-weight:700}.skip{color:#777}.info{color:#1a4f8a}.verdict{font-size:1.2em;padding:.5em;"  \
    "border:2px solid}.bar{display:inline-block;height:10px;background:#4a78b5;margin-right:4px}"  \
    "tr.failed td{background:#fde8ec}"

/* Every failure, each linked to its release; then the repository's. */
static void put_failures(fwrel_html *h, const fwrel_auditor *a)
{
    const fwrel_report *rr = fwrel_auditor_report(a);
    fwrel_html_put(h, "<h2>Failures</h2>\n<table class=\"steps\"><tr><th>release</th><th>check</th>"
                      "<th>detail</th></tr>\n");
    for (size_t i = 0; i < fwrel_auditor_count(a); i++) {
        const fwrel_audit_release *R = fwrel_auditor_release(a, i);
        for (size_t k = 0; k < fwrel_report_count(R->report); k++) {
            const fwrel_step *st = fwrel_report_step(R->report, k);
            if (st->verdict == FWREL_FAIL)
                fwrel_html_put(h,
                               "<tr><td><a href=\"#r%zu\">%s</a></td><td class=\"fail\"><code>%s"
                               "</code></td><td>%s</td></tr>\n",
                               i + 1, R->tag, st->name, st->detail);
        }
    }
    for (size_t k = 0; k < fwrel_report_count(rr); k++) {
        const fwrel_step *st = fwrel_report_step(rr, k);
        if (st->verdict == FWREL_FAIL)
            fwrel_html_put(h,
                           "<tr><td>(repository)</td><td class=\"fail\"><code>%s</code></td>"
                           "<td>%s</td></tr>\n",
                           st->name, st->detail);
    }
    fwrel_html_put(h, "</table>\n");
}

static void put_timeline(fwrel_html *h, const fwrel_auditor *a)
{
    uint32_t max_sv = 1;
    size_t n = fwrel_auditor_count(a);
    for (size_t i = 0; i < n; i++)
        if (fwrel_auditor_release(a, i)->secure_version > max_sv)
            max_sv = fwrel_auditor_release(a, i)->secure_version;
    fwrel_html_put(h, "<h2>Timeline</h2>\n<table class=\"timeline\"><tr><th>#</th><th>tagged "
                      "(UTC)</th><th>tag</th><th>channel</th><th>version</th><th>secure_version"
                      "</th><th>counter</th><th>approvers</th><th>verdict</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        const fwrel_audit_release *R = fwrel_auditor_release(a, i);
        unsigned w = (unsigned)(1 + (uint64_t)R->secure_version * 120 / max_sv);
        fwrel_html_put(
            h, R->failed ? "<tr class=\"failed\"><td>%zu</td><td>" : "<tr><td>%zu</td><td>", i + 1);
        put_time(h, R->time);
        fwrel_html_put(h,
                       "</td><td><a href=\"#r%zu\">%s</a></td><td>%s</td><td>%s</td><td><span "
                       "class=\"bar\" style=\"width:%upx\"></span>%u</td><td>%llu</td><td>%zu of "
                       "%u</td><td class=\"%s\">%s</td></tr>\n",
                       i + 1, R->tag, R->channel, R->version, w, R->secure_version,
                       (unsigned long long)R->counter, R->napprovals, R->approvals_required,
                       R->failed ? "fail" : "pass", R->failed ? "FAILED" : "verified");
    }
    fwrel_html_put(h, "</table>\n");
}

static void put_logs(fwrel_html *h, const fwrel_auditor *a)
{
    fwrel_html_put(h, "<h2>Audit log</h2>\n");
    for (size_t i = 0; i < fwrel_auditor_nlogs(a); i++) {
        const fwrel_audit_log_summary *s = fwrel_auditor_log(a, i);
        fwrel_html_put(h,
                       "<table class=\"facts\"><tr><th>path</th><td><code>%s</code></td></tr>"
                       "<tr><th>chain</th><td class=\"%s\">%s</td></tr>",
                       s->path, s->valid ? "pass" : "fail", s->valid ? "valid" : "BROKEN");
        if (!s->valid)
            fwrel_html_put(h, "<tr><th>problem</th><td class=\"fail\">%s</td></tr>", s->error);
        fwrel_html_put(h,
                       "<tr><th>entries</th><td>%llu (%llu ok, %llu failed; %llu bundles "
                       "made)</td></tr><tr><th>head</th><td><code>%s</code></td></tr>",
                       (unsigned long long)s->entries, (unsigned long long)s->ok,
                       (unsigned long long)s->fail, (unsigned long long)s->releases, s->head);
        if (s->untagged > 0)
            fwrel_html_put(h,
                           "<tr><th>bundles without a tag</th><td class=\"info\">%llu (first %s): "
                           "awaiting approvals, or releases removed</td></tr>",
                           (unsigned long long)s->untagged, s->first_untagged);
        fwrel_html_put(h,
                       "<tr><th>first entry</th><td>%s</td></tr><tr><th>last entry</th><td>%s"
                       "</td></tr></table>\n",
                       s->first_time[0] ? s->first_time : "-",
                       s->last_time[0] ? s->last_time : "-");
    }
    if (fwrel_auditor_nlogs(a) == 0)
        fwrel_html_put(h, "<p>No audit log is named by the releases.</p>\n");
}

int fwrel_html_audit(char **out, size_t *len, const fwrel_auditor *a, const char *title, size_t max)
{
    fwrel_html *h = NULL;
    int error;

    FWREL_ASSERT_ARG(out != NULL && len != NULL && a != NULL && title != NULL);
    *out = NULL;
    *len = 0;
    if ((error = fwrel_html_new(&h, max)) != 0)
        return error;
    size_t n = fwrel_auditor_count(a), failed = fwrel_auditor_failed(a);
    unsigned jobs = fwrel_auditor_jobs(a);
    const fwrel_step *rf = fwrel_report_first_failure(fwrel_auditor_report(a));
    fwrel_html_put(h,
                   "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                   "style-src 'unsafe-inline'\">\n<title>fwrel release audit: %s</title>\n"
                   "<style>" AUDIT_CSS "</style>\n</head>\n<body>\n<h1>Release audit: %s</h1>\n",
                   title, title);
    if (failed == 0 && rf == NULL && fwrel_auditor_policy_checked(a))
        fwrel_html_put(
            h, "<p class=\"verdict pass\">VERIFIED: %zu releases, every check passed</p>\n", n);
    else if (failed == 0 && rf == NULL)
        fwrel_html_put(h,
                       "<p class=\"verdict info\">NOT VERIFIED AGAINST A POLICY: %zu releases, "
                       "every check passed, but approvals and tag signers were checked only "
                       "against each release's own record</p>\n",
                       n);
    else
        fwrel_html_put(h, "<p class=\"verdict fail\">REJECTED: %zu of %zu releases failed%s</p>\n",
                       failed, n, rf != NULL ? ", and a repository check failed" : "");
    fwrel_html_put(h, "<p>%zu releases verified with %u worker thread%s.</p>\n", n, jobs,
                   jobs == 1 ? "" : "s");
    if (failed > 0 || rf != NULL)
        put_failures(h, a);
    put_timeline(h, a);
    fwrel_html_put(h, "<h2>Repository checks</h2>\n");
    put_steps(h, fwrel_auditor_report(a));
    put_logs(h, a);
    fwrel_html_put(h, "<h2>Releases</h2>\n");
    for (size_t i = 0; i < n; i++)
        put_release(h, fwrel_auditor_release(a, i), i);
    fwrel_html_put(h, "</body>\n</html>\n");
    error = fwrel_html_finish(out, len, h);
    fwrel_html_free(h);
    return error;
}
