/* audit.c - the hash-chained audit log: append under flock, all or nothing, and fsync; torn
 * tail recovery, streaming verification, the summary of a log (docs/audit.md). */
#include "fwrel/audit.h"

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
#include <openssl/evp.h>

#include "util.h"

static const char *const zero_head =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* Exactly n hex digits of one case: lower (SHA-256) or upper (OpenPGP fingerprints, as GnuPG
 * prints them). */
static int is_hex_case(const char *s, size_t n, char a)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= a && s[i] <= a + 5)))
            return 0;
    return 1;
}

static int is_hex(const char *s, size_t n)
{
    return is_hex_case(s, n, 'a');
}

static int event_ok(const char *e, int recovered_ok)
{
    static const char *const events[] = {"keygen",  "sign",    "encrypt", "bundle",
                                         "approve", "release", "repair"};
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        if (strcmp(e, events[i]) == 0)
            return 1;
    return recovered_ok && strcmp(e, "recovered") == 0;
}

/* RFC 3339 UTC, seconds: 2026-11-22T19:00:01Z. */
static int time_ok(const char *t)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    if (strlen(t) != sizeof(shape) - 1)
        return 0;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? !(t[i] >= '0' && t[i] <= '9') : t[i] != shape[i])
            return 0;
    return 1;
}

static int files_ok(json_t *a)
{
    if (!json_is_array(a))
        return 0;
    size_t i;
    json_t *f;
    json_array_foreach(a, i, f)
    {
        json_t *name = json_object_get(f, "name"), *sha = json_object_get(f, "sha256"),
               *size = json_object_get(f, "size");
        if (!json_is_object(f) || json_object_size(f) != 3 || !json_is_string(name) ||
            json_string_length(name) == 0 || !json_is_string(sha) ||
            !is_hex(json_string_value(sha), 64) || !json_is_integer(size) ||
            json_integer_value(size) < 0)
            return 0;
    }
    return 1;
}

/* Check the caller's fields (everything but seq, prev, time). Returns a reason or NULL. */
static const char *fields_check(json_t *o, int recovered_ok)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "event") && strcmp(key, "who") && strcmp(key, "inputs") &&
            strcmp(key, "outputs") && strcmp(key, "result") && strcmp(key, "reason") &&
            strcmp(key, "seq") && strcmp(key, "prev") && strcmp(key, "time"))
            return "unknown field";
    }
    json_t *ev = json_object_get(o, "event");
    if (!json_is_string(ev) || !event_ok(json_string_value(ev), recovered_ok))
        return "bad or missing event";
    json_t *who = json_object_get(o, "who");
    if (!json_is_object(who))
        return "bad or missing who";
    json_t *user = json_object_get(who, "user"), *fpr = json_object_get(who, "fingerprint");
    if (!json_is_string(user) || json_string_length(user) == 0 ||
        json_object_size(who) != 1u + (fpr != NULL))
        return "bad who";
    if (fpr && (!json_is_string(fpr) || !is_hex_case(json_string_value(fpr), 40, 'A')))
        return "bad who.fingerprint";
    if (!files_ok(json_object_get(o, "inputs")))
        return "bad or missing inputs";
    if (!files_ok(json_object_get(o, "outputs")))
        return "bad or missing outputs";
    json_t *res = json_object_get(o, "result"), *reason = json_object_get(o, "reason");
    if (!json_is_string(res))
        return "bad or missing result";
    if (strcmp(json_string_value(res), "ok") == 0) {
        if (reason)
            return "reason with result ok";
    } else if (strcmp(json_string_value(res), "fail") == 0) {
        if (!json_is_string(reason) || json_string_length(reason) == 0)
            return "result fail without reason";
    } else
        return "bad result";
    return NULL;
}

/* Parse one stored line strictly: canonical JSON of a full entry. Returns a reason or NULL;
 * on success *seq and prev are set. */
static const char *line_check(const char *line, size_t len, uint64_t *seq, char prev[65])
{
    const char *why = NULL;
    char *canon = NULL;
    json_error_t jerr;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        why = "not a JSON object";
        goto done;
    }
    canon = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    if (!canon || strlen(canon) != len || memcmp(canon, line, len) != 0) {
        why = "not canonical JSON";
        goto done;
    }
    json_t *s = json_object_get(o, "seq"), *p = json_object_get(o, "prev"),
           *t = json_object_get(o, "time");
    if (!json_is_integer(s) || json_integer_value(s) < 1) {
        why = "bad or missing seq";
        goto done;
    }
    if (!json_is_string(p) || !is_hex(json_string_value(p), 64)) {
        why = "bad or missing prev";
        goto done;
    }
    if (!json_is_string(t) || !time_ok(json_string_value(t))) {
        why = "bad or missing time";
        goto done;
    }
    why = fields_check(o, 1);
    if (!why) {
        *seq = (uint64_t)json_integer_value(s);
        memcpy(prev, json_string_value(p), 65);
    }
done:
    free(canon);
    json_decref(o);
    return why;
}

int fwrel_audit_verify_stream(FILE *f, const char *expected_head, uint64_t expected_count,
                              uint64_t *count, char *head)
{
    int rc = 0;
    char *line = malloc(FWREL_AUDIT_LINE_MAX + 1);
    char cur[65];
    uint64_t n = 0;
    memcpy(cur, zero_head, 65);
    if (!line)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    for (;;) {
        size_t len = 0;
        int c = EOF;
        while ((c = getc(f)) != EOF && c != '\n') {
            if (len == FWREL_AUDIT_LINE_MAX) {
                rc = fwrel_error_set(FWREL_EFORMAT, "line %llu: longer than %u bytes",
                                     (unsigned long long)n + 1, FWREL_AUDIT_LINE_MAX);
                goto done;
            }
            line[len++] = (char)c;
        }
        if (c == EOF && ferror(f)) {
            rc = fwrel_error_set_errno(FWREL_EIO, errno, "reading the log");
            goto done;
        }
        if (c == EOF && len == 0)
            break;
        if (n == FWREL_AUDIT_ENTRIES_MAX) {
            rc = fwrel_error_set(FWREL_EFORMAT, "more than %u entries", FWREL_AUDIT_ENTRIES_MAX);
            goto done;
        }
        n++;
        if (c == EOF) {
            rc = fwrel_error_set(FWREL_EVERIFY, "line %llu: torn last line (no newline)",
                                 (unsigned long long)n);
            goto done;
        }
        uint64_t seq = 0;
        char prev[65];
        const char *why = line_check(line, len, &seq, prev);
        if (why) {
            rc = fwrel_error_set(FWREL_EFORMAT, "line %llu: %s", (unsigned long long)n, why);
            goto done;
        }
        if (seq != n) {
            rc = fwrel_error_set(FWREL_EVERIFY, "line %llu: seq %llu, expected %llu",
                                 (unsigned long long)n, (unsigned long long)seq,
                                 (unsigned long long)n);
            goto done;
        }
        if (strcmp(prev, cur) != 0) {
            /* The line before was edited (or this one's prev was). */
            if (n == 1)
                rc = fwrel_error_set(FWREL_EVERIFY, "line 1: prev is not zero");
            else
                rc = fwrel_error_set(FWREL_EVERIFY,
                                     "line %llu: does not match line %llu's prev (edited, "
                                     "removed or reordered)",
                                     (unsigned long long)n - 1, (unsigned long long)n);
            goto done;
        }
        fwrel_sha256_hex(cur, line, len);
    }
    if (expected_head && strcmp(expected_head, cur) != 0) {
        rc = fwrel_error_set(FWREL_EVERIFY,
                             "head of line %llu is not the expected head (truncated or rewritten)",
                             (unsigned long long)n);
        goto done;
    }
    if (n < expected_count) {
        rc = fwrel_error_set(FWREL_EVERIFY, "%llu entries, expected at least %llu (truncated)",
                             (unsigned long long)n, (unsigned long long)expected_count);
        goto done;
    }
    if (count)
        *count = n;
    if (head)
        memcpy(head, cur, 65);
done:
    free(line);
    return rc;
}

int fwrel_audit_verify(const char *path, const char *expected_head, uint64_t expected_count,
                       uint64_t *count, char *head)
{
    int rc = 0;
    FILE *f = NULL;
    /* O_NONBLOCK: opening a FIFO with no writer must not hang before fstat says what it is. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), fl;
    struct stat st;
    if (fd < 0)
        return fwrel_error_set_errno(FWREL_EIO, errno, "cannot open the log");
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = fwrel_error_set(FWREL_EIO, "the log is not a regular file");
        goto done;
    }
    if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        rc = fwrel_error_set_errno(FWREL_EIO, errno, "cannot read the log");
        goto done;
    }
    if (flock(fd, LOCK_SH) != 0) {
        rc = fwrel_error_set_errno(FWREL_EIO, errno, "cannot lock the log");
        goto done;
    }
    f = fdopen(fd, "r");
    if (!f) {
        rc = fwrel_error_set_errno(FWREL_EIO, errno, "cannot read the log");
        goto done;
    }
    fd = -1;
    rc = fwrel_audit_verify_stream(f, expected_head, expected_count, count, head);
done:
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* --- the summary ------------------------------------------------------------------------------ */

static int str_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The tag a "bundle" entry's output names ("<tag>/bundle.fwb"), or NULL. */
static const char *entry_bundle(char *out, size_t n, json_t *entry)
{
    json_t *outs = json_object_get(entry, "outputs"), *o;
    size_t i;
    json_array_foreach(outs, i, o)
    {
        const char *name = json_string_value(json_object_get(o, "name"));
        size_t len = name != NULL ? strlen(name) : 0;
        if (len > 11 && len - 11 < n && strcmp(name + len - 11, "/bundle.fwb") == 0) {
            snprintf(out, n, "%.*s", (int)(len - 11), name);
            return out;
        }
    }
    return NULL;
}

int fwrel_audit_summarise(fwrel_audit_log_summary *sum, const uint8_t *data, size_t len,
                          const char *const *tags, size_t ntags)
{
    char path[sizeof(sum->path)];
    uint8_t d[32];
    uint64_t count = 0;
    size_t last = 0, start = 0;
    int error;

    FWREL_ASSERT_ARG(sum != NULL && (data != NULL || len == 0) && (tags != NULL || ntags == 0));
    memcpy(path, sum->path, sizeof(path));
    memset(sum, 0, sizeof(*sum));
    memcpy(sum->path, path, sizeof(path));
    /* Its chain, from these bytes. */
    FILE *f = fmemopen((void *)(uintptr_t)data, len ? len : 1, "r");
    if (f == NULL)
        return fwrel_error_set_errno(FWREL_EIO, errno, "fmemopen");
    if (len == 0)
        fgetc(f); /* an empty log: a stream at its end */
    error = fwrel_audit_verify_stream(f, NULL, 0, &count, sum->head);
    fclose(f);
    if (error == FWREL_EVERIFY || error == FWREL_EFORMAT) {
        snprintf(sum->error, sizeof(sum->error), "%s", fwrel_error_last()->message);
        fwrel_error_clear();
    } else if (error != 0) {
        return error;
    } else {
        sum->valid = 1;
    }
    /* Counts and times, line by line (complete lines; a torn tail is not a line). */
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n')
            continue;
        sum->entries++;
        last = start;
        json_t *j = json_loadb((const char *)data + start, i - start, 0, NULL);
        const char *ev = json_string_value(json_object_get(j, "event"));
        const char *res = json_string_value(json_object_get(j, "result"));
        const char *t = json_string_value(json_object_get(j, "time"));
        if (res != NULL && strcmp(res, "ok") == 0)
            sum->ok++;
        else if (res != NULL && strcmp(res, "fail") == 0)
            sum->fail++;
        if (ev != NULL && res != NULL && strcmp(ev, "bundle") == 0 && strcmp(res, "ok") == 0) {
            char tag[256];
            const char *key = entry_bundle(tag, sizeof(tag), j);
            sum->releases++;
            if (key != NULL &&
                (ntags == 0 || bsearch(&key, tags, ntags, sizeof(*tags), str_cmp) == NULL) &&
                sum->untagged++ == 0)
                snprintf(sum->first_untagged, sizeof(sum->first_untagged), "%s", tag);
        }
        if (t != NULL) {
            if (sum->first_time[0] == '\0')
                snprintf(sum->first_time, sizeof(sum->first_time), "%s", t);
            snprintf(sum->last_time, sizeof(sum->last_time), "%s", t);
        }
        json_decref(j);
        start = i + 1;
    }
    /* A broken chain has no head of its own: the last complete line's hash stands for it. */
    if (!sum->valid && sum->entries > 0) {
        size_t end = start - 1;
        if ((error = fwrel_sha256(d, data + last, end - last)) != 0)
            return error;
        fwrel_hex(sum->head, d, 32);
    }
    return 0;
}

/* Read the log at file under a shared flock: *data NULL when it is not read (sum->error says
 * why). */
static int load(uint8_t **data, size_t *len, fwrel_audit_log_summary *sum, const char *file,
                const char *name, size_t max)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t n = 0;
    int fd = -1, error;

    snprintf(sum->path, sizeof(sum->path), "%s", name);
    /* O_NONBLOCK: opening a FIFO with no writer must not hang before fstat says what it is. */
    fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(sum->error, sizeof(sum->error), "cannot open the live log: %s", strerror(errno));
        return 0;
    }
    if (fstat(fd, &st) != 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "audit log %s", name);
        goto done;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        snprintf(sum->error, sizeof(sum->error), "the live log is %s",
                 S_ISREG(st.st_mode) ? "too large" : "not a regular file");
        error = 0;
        goto done;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 || flock(fd, LOCK_SH) != 0 ||
        fstat(fd, &st) != 0) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "audit log %s", name);
        goto done;
    }
    if ((uint64_t)st.st_size > max) {
        snprintf(sum->error, sizeof(sum->error), "the live log is too large");
        error = 0;
        goto done;
    }
    n = (size_t)st.st_size;
    if ((buf = malloc(n ? n : 1)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            error = fwrel_error_set_errno(FWREL_EIO, r < 0 ? errno : EIO, "audit log %s", name);
            goto done;
        }
        got += (size_t)r;
    }
    *data = buf;
    *len = n;
    buf = NULL;
    error = 0;
done:
    free(buf);
    close(fd);
    return error;
}

int fwrel_audit_snapshot_load(fwrel_audit_snapshot *s, const char *file, const char *name,
                              const char *const *tags, size_t ntags, size_t max)
{
    int error;
    FWREL_ASSERT_ARG(s != NULL && file != NULL && name != NULL && (tags != NULL || ntags == 0));
    memset(s, 0, sizeof(*s));
    snprintf(s->sum.path, sizeof(s->sum.path), "%s", name);
    if ((error = load(&s->data, &s->len, &s->sum, file, name, max)) != 0 || s->data == NULL)
        return error;
    if ((error = fwrel_audit_summarise(&s->sum, s->data, s->len, tags, ntags)) != 0)
        goto fail;
    /* The line index (complete lines; a torn tail is not a line). */
    s->nlines = (size_t)s->sum.entries;
    s->end = malloc((s->nlines ? s->nlines : 1) * sizeof(*s->end));
    s->sha = malloc((s->nlines ? s->nlines : 1) * sizeof(*s->sha));
    if (s->end == NULL || s->sha == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto fail;
    }
    for (size_t i = 0, start = 0, k = 0; i < s->len; i++)
        if (s->data[i] == '\n') {
            s->end[k] = i + 1;
            if ((error = fwrel_sha256(s->sha[k], s->data + start, i - start)) != 0)
                goto fail;
            k++;
            start = i + 1;
        }
    return 0;
fail:
    fwrel_audit_snapshot_clear(s);
    return error;
}

void fwrel_audit_snapshot_clear(fwrel_audit_snapshot *s)
{
    if (s == NULL)
        return;
    free(s->data);
    free(s->end);
    free(s->sha);
    memset(s, 0, sizeof(*s));
}

/* Does p (n bytes) contain the string s? */
static int contains(const uint8_t *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (p[i] == (uint8_t)s[0] && memcmp(p + i, s, k) == 0)
            return 1;
    return 0;
}

#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (fwrel_report_add(report, __VA_ARGS__) != 0)                                            \
            return FWREL_EIO;                                                                      \
        return 0;                                                                                  \
    } while (0)

/* audit.live: the live log holds line at (the copy's last) with head, the copy is its prefix,
 * and the line records the bundle. */
static int check_live(fwrel_report *report, const fwrel_audit_snapshot *L, const char *name,
                      const uint8_t *copy, size_t len, const char *head, uint64_t at,
                      const char *bundle_sha)
{
    char want[65], needle[80];
    if (L == NULL || L->data == NULL)
        ADD("audit.live", FWREL_FAIL, "no live log at %s: %s", name,
            L != NULL ? L->sum.error : "not read");
    if (at > L->nlines)
        ADD("audit.live", FWREL_FAIL,
            "the live log has %zu entries; the tag names entry %llu (truncated?)", L->nlines,
            (unsigned long long)at);
    fwrel_hex(want, L->sha[at - 1], 32);
    if (strcmp(want, head) != 0)
        ADD("audit.live", FWREL_FAIL,
            "line %llu of the live log is not the one the tag names (head %.16s..., the line's "
            "%.16s...)",
            (unsigned long long)at, head, want);
    if (len != L->end[at - 1] || memcmp(copy, L->data, len) != 0) {
        size_t line = 1;
        for (size_t i = 0; i < len && i < L->len && copy[i] == L->data[i]; i++)
            line += copy[i] == '\n';
        ADD("audit.live", FWREL_FAIL,
            "the log committed at the tag is not a prefix of the live log (they differ at line "
            "%zu)",
            line);
    }
    /* The line is the release's own "bundle" entry: it names this bundle's digest. */
    size_t start = at > 1 ? L->end[at - 2] : 0;
    snprintf(needle, sizeof(needle), "\"sha256\":\"%s\"", bundle_sha);
    if (contains(L->data + start, L->end[at - 1] - start, needle))
        ADD("audit.live", FWREL_PASS,
            "line %llu of %zu of the live log records this bundle; the committed copy is its "
            "prefix",
            (unsigned long long)at, L->nlines);
    ADD("audit.live", FWREL_FAIL, "line %llu of the live log does not record this bundle",
        (unsigned long long)at);
}

#undef ADD

int fwrel_audit_check_copy(fwrel_report *report, const fwrel_audit_snapshot *live, const char *name,
                           const uint8_t *copy, size_t len, const char *head, uint64_t entries,
                           const char *bundle_sha)
{
    uint64_t count = 0;
    char m[FWREL_ERROR_MSG_MAX];
    FILE *f = NULL;
    int error;

    FWREL_ASSERT_ARG(report != NULL && name != NULL && copy != NULL && len > 0 && head != NULL &&
                     entries > 0 && bundle_sha != NULL);
    if ((f = fmemopen((void *)(uintptr_t)copy, len, "r")) == NULL)
        return fwrel_error_set_errno(FWREL_EIO, errno, "fmemopen");
    error = fwrel_audit_verify_stream(f, head, 0, &count, NULL);
    fclose(f);
    if (error != 0 && error != FWREL_EVERIFY && error != FWREL_EFORMAT && error != FWREL_EUSAGE)
        return error;
    if (error != 0) {
        snprintf(m, sizeof(m), "%s", fwrel_error_last()->message);
        error = fwrel_report_add(report, "audit.copy", FWREL_FAIL,
                                 "the log committed at the tag: %s", m);
    } else if (count != entries) {
        error = fwrel_report_add(report, "audit.copy", FWREL_FAIL,
                                 "the log committed at the tag has %llu entries, the tag says %llu",
                                 (unsigned long long)count, (unsigned long long)entries);
    } else {
        error = fwrel_report_add(report, "audit.copy", FWREL_PASS,
                                 "the log committed at the tag: %llu entries, head %.16s...",
                                 (unsigned long long)count, head);
    }
    if (error != 0)
        return FWREL_EIO;
    fwrel_error_clear();
    return check_live(report, live, name, copy, len, head, entries, bundle_sha);
}

/* Find the last complete line and a torn tail of the open log. On success *seq and prev[]
 * describe the last complete line (0 and zeros if none), *keep is the length of the complete
 * part and torn_hash/torn_len the torn tail (torn_len 0 if none). */
static int read_tail(int fd, uint64_t *seq, char prev[65], off_t *keep, char torn_hash[65],
                     size_t *torn_len)
{
    int rc = 0;
    struct stat st;
    size_t cap = 2u * (FWREL_AUDIT_LINE_MAX + 1u);
    char *buf = NULL;
    *seq = 0;
    memcpy(prev, zero_head, 65);
    *torn_len = 0;
    if (fstat(fd, &st) != 0)
        return fwrel_error_set_errno(FWREL_EIO, errno, "cannot stat the log");
    *keep = st.st_size;
    if (st.st_size == 0)
        return 0;
    size_t n = (uint64_t)st.st_size < cap ? (size_t)st.st_size : cap;
    off_t start = st.st_size - (off_t)n;
    buf = malloc(n);
    if (!buf)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    for (size_t got = 0; got < n;) {
        ssize_t r = pread(fd, buf + got, n - got, start + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = fwrel_error_set_errno(FWREL_EIO, r < 0 ? errno : EIO, "reading the log");
            goto done;
        }
        got += (size_t)r;
    }
    /* end = one past the last newline in buf */
    size_t end = n;
    while (end > 0 && buf[end - 1] != '\n')
        end--;
    if (end == 0 && start > 0) {
        rc = fwrel_error_set(FWREL_EFORMAT, "the log ends in a line longer than %u bytes",
                             FWREL_AUDIT_LINE_MAX);
        goto done;
    }
    if (end < n) {
        *torn_len = n - end;
        if (*torn_len > FWREL_AUDIT_LINE_MAX) {
            rc = fwrel_error_set(FWREL_EFORMAT, "the log ends in a torn line longer than %u bytes",
                                 FWREL_AUDIT_LINE_MAX);
            goto done;
        }
        fwrel_sha256_hex(torn_hash, buf + end, *torn_len);
        *keep = start + (off_t)end;
    }
    if (end == 0)
        goto done; /* only a torn line */
    size_t b = end - 1;
    while (b > 0 && buf[b - 1] != '\n')
        b--;
    if ((b == 0 && start > 0) || end - 1 - b > FWREL_AUDIT_LINE_MAX) {
        rc = fwrel_error_set(FWREL_EFORMAT, "the log's last line is longer than %u bytes",
                             FWREL_AUDIT_LINE_MAX);
        goto done;
    }
    const char *why = line_check(buf + b, end - 1 - b, seq, prev);
    if (why) {
        rc = fwrel_error_set(FWREL_EFORMAT, "the log's last line: %s", why);
        goto done;
    }
    fwrel_sha256_hex(prev, buf + b, end - 1 - b);
done:
    free(buf);
    return rc;
}

/* Build the canonical line for fields + seq/prev/time. Returns malloc'd text or NULL. */
static char *make_line(json_t *o, uint64_t seq, const char *prev)
{
    char t[32];
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return NULL;
    if (json_object_set_new(o, "seq", json_integer((json_int_t)seq)) != 0 ||
        json_object_set_new(o, "prev", json_string(prev)) != 0 ||
        json_object_set_new(o, "time", json_string(t)) != 0)
        return NULL;
    return json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
}

/*
 * Append line + newline and fsync, all or nothing: a write cut short (a full disk, RLIMIT_FSIZE)
 * or a failed fsync cuts the file back to its size before, so the log never ends in a torn line
 * of ours, and the error names the cause (errno), not "short write".
 */
static int write_line(int fd, const char *line, char *head)
{
    size_t len = strlen(line);
    struct stat st;
    if (len > FWREL_AUDIT_LINE_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "entry longer than %u bytes", FWREL_AUDIT_LINE_MAX);
    if (fstat(fd, &st) != 0)
        return fwrel_error_set_errno(FWREL_EIO, errno, "cannot stat the log");
    char *buf = malloc(len + 1);
    if (!buf)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    memcpy(buf, line, len);
    buf[len] = '\n';
    size_t done = 0;
    int e = 0;
    while (done < len + 1) {
        ssize_t w = write(fd, buf + done, len + 1 - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            break;
        }
        done += (size_t)w;
    }
    free(buf);
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    if (e != 0) {
        int cut = ftruncate(fd, st.st_size) == 0 && fsync(fd) == 0 ? 0 : errno;
        if (cut != 0)
            return fwrel_error_set(FWREL_EIO,
                                   "writing the log: %s; cutting the partial line back: %s",
                                   strerror(e), strerror(cut));
        return fwrel_error_set_errno(FWREL_EIO, e, "writing the log");
    }
    if (head)
        fwrel_sha256_hex(head, line, len);
    return 0;
}

static int fsync_parent(const char *path)
{
    char *d = strdup(path);
    if (!d)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    char *slash = strrchr(d, '/');
    const char *dir = ".";
    if (slash == d)
        dir = "/";
    else if (slash) {
        *slash = '\0';
        dir = d;
    }
    int rc = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        rc = fwrel_error_set_errno(FWREL_EIO, errno, "fsync of the log's directory");
    if (dfd >= 0)
        close(dfd);
    free(d);
    return rc;
}

int fwrel_audit_append(const char *path, const char *entry, size_t len, char *head)
{
    int rc = 0, fd = -1, created = 0;
    json_t *o = NULL, *rec = NULL;
    char *line = NULL;
    json_error_t jerr;
    struct stat st;

    o = json_loadb(entry, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        rc = fwrel_error_set(FWREL_EUSAGE, "audit entry: not a JSON object");
        goto done;
    }
    if (json_object_get(o, "seq") || json_object_get(o, "prev") || json_object_get(o, "time")) {
        rc = fwrel_error_set(FWREL_EUSAGE, "audit entry: seq, prev and time are set by the log");
        goto done;
    }
    const char *why = fields_check(o, 0);
    if (why) {
        rc = fwrel_error_set(FWREL_EUSAGE, "audit entry: %s", why);
        goto done;
    }

    fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd >= 0)
        created = 1;
    else if (errno == EEXIST)
        fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    if (fd < 0) {
        rc = fwrel_error_set_errno(FWREL_EIO, errno, "cannot open the log");
        goto done;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = fwrel_error_set(FWREL_EIO, "the log is not a regular file");
        goto done;
    }
    if (st.st_mode & S_IWOTH) {
        rc = fwrel_error_set(FWREL_EIO, "the log is writable by others");
        goto done;
    }
    if (created && (rc = fsync_parent(path)) != 0)
        goto done;
    if (flock(fd, LOCK_EX) != 0) {
        rc = fwrel_error_set_errno(FWREL_EIO, errno, "cannot lock the log");
        goto done;
    }

    uint64_t seq;
    char prev[65], torn_hash[65];
    off_t keep;
    size_t torn_len;
    if ((rc = read_tail(fd, &seq, prev, &keep, torn_hash, &torn_len)) != 0)
        goto done;
    if (seq + 1 + (torn_len > 0) > FWREL_AUDIT_ENTRIES_MAX) {
        rc = fwrel_error_set(FWREL_EFORMAT, "the log holds %u entries", FWREL_AUDIT_ENTRIES_MAX);
        goto done;
    }
    if (torn_len > 0) {
        /* Cut the torn tail away and record it, so that the loss is visible. */
        if (ftruncate(fd, keep) != 0 || fsync(fd) != 0) {
            rc = fwrel_error_set_errno(FWREL_EIO, errno, "cutting the torn last line");
            goto done;
        }
        /* Recorded as done by whoever appends now. */
        rec = json_pack("{s:s, s:O, s:[{s:s, s:s, s:I}], s:[], s:s}", "event", "recovered", "who",
                        json_object_get(o, "who"), "inputs", "name", "torn line", "sha256",
                        torn_hash, "size", (json_int_t)torn_len, "outputs", "result", "ok");
        if (!rec || !(line = make_line(rec, seq + 1, prev))) {
            rc = fwrel_error_set(FWREL_EIO, "out of memory");
            goto done;
        }
        if ((rc = write_line(fd, line, prev)) != 0)
            goto done;
        free(line);
        line = NULL;
        seq++;
    }
    if (!(line = make_line(o, seq + 1, prev))) {
        rc = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    rc = write_line(fd, line, head);
done:
    free(line);
    json_decref(rec);
    json_decref(o);
    if (fd >= 0)
        close(fd);
    return rc;
}

void fwrel_audit_file_of(fwrel_audit_file *f, const char *path, const uint8_t sha256[32])
{
    const char *base = strrchr(path, '/');
    struct stat st;
    f->name = base != NULL ? base + 1 : path;
    fwrel_hex(f->sha256, sha256, 32);
    f->size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static json_t *files_json(const fwrel_audit_file *f, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        if (json_array_append_new(a, json_pack("{s:s, s:s, s:I}", "name", f[i].name, "sha256",
                                               f[i].sha256, "size", (json_int_t)f[i].size)) != 0) {
            json_decref(a);
            a = NULL;
        }
    return a;
}

int fwrel_audit_entry_text(char **text, size_t *len, const fwrel_audit_entry *e)
{
    json_t *o = json_object(), *who = json_object();
    int error = 0;

    *text = NULL;
    json_object_set_new(who, "user",
                        json_string(e->user != NULL && e->user[0] ? e->user : "fwrel"));
    if (e->fingerprint != NULL && e->fingerprint[0] != '\0')
        json_object_set_new(who, "fingerprint", json_string(e->fingerprint));
    json_object_set_new(o, "event", json_string(e->event));
    json_object_set_new(o, "who", who);
    json_object_set_new(o, "inputs", files_json(e->inputs, e->ninputs));
    json_object_set_new(o, "outputs", files_json(e->outputs, e->noutputs));
    json_object_set_new(o, "result", json_string(e->reason == NULL ? "ok" : "fail"));
    if (e->reason != NULL)
        json_object_set_new(o, "reason", json_string(e->reason));
    if (json_object_size(o) != (e->reason != NULL ? 6u : 5u) ||
        (*text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
        error = fwrel_error_set(FWREL_EIO, "out of memory");
    else if (len != NULL)
        *len = strlen(*text);
    json_decref(o);
    return error;
}

int fwrel_audit_record(const char *path, const fwrel_audit_entry *e, char *head)
{
    char *text = NULL;
    size_t len = 0;
    int error = fwrel_audit_entry_text(&text, &len, e);
    if (error == 0)
        error = fwrel_audit_append(path, text, len, head);
    free(text);
    return error;
}
