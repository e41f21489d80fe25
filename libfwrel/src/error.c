/* error.c - the thread-local last error (error.h). */
#include "fwrel/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

static _Thread_local fwrel_error last;

static FWREL_PRINTF(2, 0) void vset(int code, const char *fmt, va_list ap)
{
    /* Formatted aside first: an argument may be the last message itself ("... (%s)"). */
    char msg[sizeof(last.message)];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    memcpy(last.message, msg, sizeof(msg));
    last.code = code;
    last.about = FWREL_ABOUT_NONE;
    last.path[0] = '\0';
    last.line = last.col = 0;
    /* One line: a message never carries a newline from untrusted text. */
    for (char *p = last.message; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

static void append(const char *s)
{
    size_t used = strlen(last.message);
    if (used + 2 >= sizeof(last.message))
        return;
    size_t room = sizeof(last.message) - used - 3;
    size_t n = strnlen(s, room);
    memcpy(last.message + used, ": ", 2);
    memcpy(last.message + used + 2, s, n);
    last.message[used + 2 + n] = '\0';
}

int fwrel_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(code, fmt, ap);
    va_end(ap);
    return code;
}

int fwrel_error_set_openssl(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(code, fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_error();
    if (e != 0) {
        const char *reason = ERR_reason_error_string(e);
        char buf[256];
        if (reason == NULL) {
            ERR_error_string_n(e, buf, sizeof(buf));
            reason = buf;
        }
        append(reason);
    }
    ERR_clear_error();
    return code;
}

int fwrel_error_set_at(int code, unsigned line, unsigned col, const char *fmt, ...)
{
    char reason[FWREL_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    fwrel_error_set(code, "%u:%u: %s", line, col, reason);
    last.line = line;
    last.col = col;
    return code;
}

int fwrel_error_set_errno(int code, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(code, fmt, ap);
    va_end(ap);
    append(strerror(errnum));
    return code;
}

int fwrel_error_prefix(const char *fmt, ...)
{
    char prefix[FWREL_ERROR_MSG_MAX];
    char old[FWREL_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, last.message, sizeof(old));
    /* Truncation is fine: the message stays one bounded line. */
    size_t plen = strlen(prefix);
    if (plen > sizeof(last.message) - 3)
        plen = sizeof(last.message) - 3;
    memcpy(last.message, prefix, plen);
    memcpy(last.message + plen, ": ", 2);
    size_t room = sizeof(last.message) - plen - 3;
    size_t olen = strnlen(old, room);
    memcpy(last.message + plen + 2, old, olen);
    last.message[plen + 2 + olen] = '\0';
    return last.code;
}

int fwrel_error_prefix_at(unsigned line, unsigned col, const char *fmt, ...)
{
    char prefix[FWREL_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    fwrel_error_prefix("%u:%u: %s", line, col, prefix);
    last.about = FWREL_ABOUT_NONE;
    last.path[0] = '\0';
    last.line = line;
    last.col = col;
    return last.code;
}

const fwrel_error *fwrel_error_last(void)
{
    return &last;
}

int fwrel_error_about(int about, const char *path)
{
    const char *p = path != NULL && strlen(path) < sizeof(last.path) ? path : "";
    /* A position is in the file first named (the one the parser read); naming another file
     * (the bundle that held it) drops it. */
    if (last.path[0] != '\0' && strcmp(last.path, p) != 0)
        last.line = last.col = 0;
    last.about = about;
    memmove(last.path, p, strlen(p) + 1);
    return last.code;
}

int fwrel_error_recode(int code)
{
    last.code = code;
    return code;
}

int fwrel_error_restore(const fwrel_error *saved)
{
    if (saved != &last)
        last = *saved;
    return last.code;
}

void fwrel_error_clear(void)
{
    last.code = FWREL_OK;
    last.message[0] = '\0';
    last.about = FWREL_ABOUT_NONE;
    last.path[0] = '\0';
    last.line = last.col = 0;
}

const char *fwrel_error_name(int code)
{
    switch (code) {
    case FWREL_OK:
        return "ok";
    case FWREL_EVERIFY:
        return "rejected";
    case FWREL_EUSAGE:
        return "usage";
    case FWREL_EFORMAT:
        return "bad-input";
    case FWREL_EKEY:
        return "key";
    case FWREL_EIO:
        return "io";
    case FWREL_EINTERNAL:
        return "internal";
    default:
        return "unknown";
    }
}

const char *fwrel_error_about_name(int about)
{
    static const char *const names[] = {"",       "input",   "output",     "key",   "keystore",
                                        "policy", "profile", "repository", "bundle"};
    return about >= 0 && about < (int)(sizeof(names) / sizeof(names[0])) ? names[about] : "";
}

int fwrel_error_exit_code(const fwrel_error *e)
{
    switch (e->code) {
    case FWREL_EVERIFY:
    case FWREL_EUSAGE:
    case FWREL_EFORMAT:
    case FWREL_EKEY:
    case FWREL_EIO:
        return e->code;
    default: /* FWREL_EINTERNAL, an unknown code, or a failure that recorded none */
        return FWREL_EIO;
    }
}

const char *fwrel_error_where(const fwrel_error *e, const char *fallback, const char **sep)
{
    const char *what = e->path[0] != '\0' ? e->path : fallback;
    *sep = what != NULL && e->line != 0 ? ":" : ": ";
    return what;
}
