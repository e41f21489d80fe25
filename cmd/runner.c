/* runner.c - the shared command runner (runner.h). */
#include "runner.h"

#include <assert.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fwrel/version.h"
#include "util.h"

static int opt_help, opt_version, opt_json, opt_quiet, opt_list;
static const char *opt_completion;

static const fwrel_opt common_opts[] = {
    {"json", 0, FWREL_OPT_FLAG, NULL, "print a machine-readable result on stdout", &opt_json},
    {"quiet", 'q', FWREL_OPT_FLAG, NULL, "print nothing but errors", &opt_quiet},
    {"help", 'h', FWREL_OPT_FLAG, NULL, "show this help and exit", &opt_help},
    {"version", 0, FWREL_OPT_FLAG, NULL, "show the version and exit (given alone)", &opt_version},
    {"list-options", 0, FWREL_OPT_FLAG, NULL,
     "list the options, one a line: --LONG -S ARG KIND (docs/cli.md's table)", &opt_list},
    {"completion", 0, FWREL_OPT_STR, "SHELL", "print the completion script for SHELL (bash)",
     &opt_completion},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/*
 * Everything a command prints passes through here: text from an image, a bundle, a manifest,
 * a tag or a policy must not drive the terminal. C0 controls (but a newline when nl is set),
 * DEL, C1 controls, the bidirectional overrides and isolates, and bytes that are not UTF-8 are
 * shown escaped: "\x1b", "\u009b", "\u202e". Well-formed UTF-8 text passes unchanged.
 */
static void put_escaped(FILE *f, const char *text, size_t n, int nl)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if ((c >= 0x20 && c < 0x7f) || (c == '\n' && nl)) {
            putc((int)c, f);
            i++;
            continue;
        }
        if (c < 0x80) { /* C0, DEL */
            fprintf(f, "\\x%02x", c);
            i++;
            continue;
        }
        /* A UTF-8 sequence: its length, its code point, and whether it is well formed (shortest
         * form, no surrogate, at most U+10FFFF). */
        size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
        uint32_t cp = len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        int good = len > 0 && i + len <= n;
        for (size_t k = 1; good && k < len; k++) {
            good = (s[i + k] & 0xc0) == 0x80;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        good = good && !(len == 3 && cp < 0x800) && !(len == 4 && cp < 0x10000) &&
               !(cp >= 0xd800 && cp <= 0xdfff) && cp <= 0x10ffff;
        if (!good) {
            fprintf(f, "\\x%02x", c);
            i++;
            continue;
        }
        if ((cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
            (cp >= 0x2066 && cp <= 0x2069))
            fprintf(f, "\\u%04x", (unsigned)cp);
        else
            fwrite(s + i, 1, len, f);
        i += len;
    }
}

static void put_text(FILE *f, const char *s)
{
    put_escaped(f, s, strlen(s), 0);
}

static void print_opts(FILE *f, const fwrel_opt *opts)
{
    for (const fwrel_opt *o = opts; o->name != NULL; o++) {
        char left[64], alias[64];
        const char *arg = o->kind == FWREL_OPT_ALIAS ? NULL : o->arg;
        if (o->short_name)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name, arg ? " " : "",
                     arg ? arg : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", o->name, arg ? " " : "", arg ? arg : "");
        if (o->kind == FWREL_OPT_ALIAS)
            snprintf(alias, sizeof(alias), "same as --%s (%s)", o->arg, o->help);
        fprintf(f, "  %-30s %s%s\n", left, o->kind == FWREL_OPT_ALIAS ? alias : o->help,
                o->kind == FWREL_OPT_MULTI ? " (repeatable)" : "");
    }
}

static void print_help(const fwrel_cmd *cmd)
{
    const char *s = cmd->synopsis;
    printf("%s - %s\n\nUsage:\n", cmd->name, cmd->summary);
    while (*s) {
        const char *nl = strchr(s, '\n');
        int len = nl ? (int)(nl - s) : (int)strlen(s);
        printf("  %s %.*s\n", cmd->name, len, s);
        s += len + (nl ? 1 : 0);
    }
    printf("\nOptions:\n");
    print_opts(stdout, cmd->opts);
    print_opts(stdout, common_opts);
    printf("\nExit codes: 0 success/valid, 1 rejected, 2 usage error, 3 bad input,\n"
           "4 key/passphrase/crypto error, 5 I/O or system error.\n"
           "See %s(1).\n",
           cmd->name);
}

int fwrel_cmd_usage(fwrel_ctx *ctx, const char *fmt, ...)
{
    char msg[FWREL_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fwrel_error_set(FWREL_EUSAGE, "%s", msg);
    /* One line, as every failure (docs/architecture.md §6). */
    fwrel_cmd_progress_end(ctx);
    fprintf(stderr, "%s: ", ctx->cmd->name);
    put_text(stderr, msg);
    fprintf(stderr, " (see %s --help)\n", ctx->cmd->name);
    if (ctx->result) {
        json_t *e =
            json_pack("{s:i,s:s,s:s}", "code", FWREL_EUSAGE, "name", "usage", "message", msg);
        json_object_set_new(ctx->result, "error", e);
    }
    return FWREL_EUSAGE;
}

int fwrel_cmd_fail(fwrel_ctx *ctx, const char *fallback)
{
    const fwrel_error *e = fwrel_error_last();
    int code = fwrel_error_exit_code(e);
    const char *msg = e->message[0] ? e->message : "failed", *sep;
    const char *what = fwrel_error_where(e, fallback, &sep);
    fwrel_cmd_progress_end(ctx);
    fprintf(stderr, "%s: ", ctx->cmd->name);
    if (what != NULL) {
        put_text(stderr, what);
        fputs(sep, stderr);
    }
    put_text(stderr, msg);
    putc('\n', stderr);
    if (ctx->result && !json_object_get(ctx->result, "error")) {
        json_t *j =
            json_pack("{s:i,s:s,s:s}", "code", code, "name",
                      fwrel_error_name(e->code != FWREL_OK ? e->code : code), "message", msg);
        if (what != NULL)
            json_object_set_new(j, "file", json_string(what));
        if (e->about != FWREL_ABOUT_NONE)
            json_object_set_new(j, "about", json_string(fwrel_error_about_name(e->about)));
        json_object_set_new(ctx->result, "error", j);
    }
    return code;
}

void fwrel_cmd_print(fwrel_ctx *ctx, const char *fmt, ...)
{
    if (ctx->json || ctx->quiet)
        return;
    char small[1024], *buf = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(small)) {
        if ((buf = malloc((size_t)n + 1)) == NULL)
            return;
        va_start(ap, fmt);
        vsnprintf(buf, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    /* The format's line breaks are kept; one that came with an argument is not (then the text
     * is shown on one line, its own final newline kept). */
    size_t fmt_nl = 0, out_nl = 0, len = (size_t)n;
    for (const char *p = fmt; *p; p++)
        fmt_nl += *p == '\n';
    for (size_t i = 0; i < len; i++)
        out_nl += buf[i] == '\n';
    if (out_nl == fmt_nl) {
        put_escaped(stdout, buf, len, 1);
    } else {
        int last =
            len > 0 && buf[len - 1] == '\n' && fmt[0] != '\0' && fmt[strlen(fmt) - 1] == '\n';
        put_escaped(stdout, buf, len - (size_t)last, 0);
        if (last)
            putc('\n', stdout);
    }
    if (buf != small)
        free(buf);
}

int fwrel_cmd_pass_pair(fwrel_ctx *ctx, fwrel_pass_src *src, const char *prefix, const char *file,
                        const char *fd, int otherwise)
{
    uint64_t n;
    memset(src, 0, sizeof(*src));
    if (file != NULL && fd != NULL)
        return fwrel_cmd_usage(ctx, "--%spassphrase-file and --%spassphrase-fd exclude each other",
                               prefix, prefix);
    src->kind = otherwise;
    if (file != NULL) {
        src->kind = FWREL_PASS_FILE;
        src->file = file;
    } else if (fd != NULL) {
        if (fwrel_parse_u64(&n, fd, 1024) != 0)
            return fwrel_cmd_usage(ctx, "--%spassphrase-fd needs a file descriptor number", prefix);
        src->kind = FWREL_PASS_FD;
        src->fd = (int)n;
    }
    return 0;
}

int fwrel_cmd_pass_source(fwrel_ctx *ctx, fwrel_pass_src *src, const char *file, const char *fd,
                          int no_pass)
{
    if ((file != NULL) + (fd != NULL) + (no_pass != 0) > 1)
        return fwrel_cmd_usage(ctx, "--passphrase-file, --passphrase-fd and --no-passphrase "
                                    "exclude each other");
    return fwrel_cmd_pass_pair(ctx, src, "", file, fd, no_pass ? FWREL_PASS_NONE : FWREL_PASS_TTY);
}

const char *fwrel_cmd_gnupg_home(const char *given)
{
    static char home[4096];
    const char *env = getenv("GNUPGHOME"), *h = getenv("HOME");
    if (given != NULL)
        return given;
    if (env != NULL && env[0] != '\0')
        return env;
    if (h == NULL || h[0] == '\0') {
        const struct passwd *pw = getpwuid(getuid());
        h = pw != NULL ? pw->pw_dir : NULL;
    }
    if (h == NULL || h[0] == '\0' ||
        snprintf(home, sizeof(home), "%s/.gnupg", h) >= (int)sizeof(home))
        return NULL;
    return home;
}

int fwrel_cmd_progress_on(const fwrel_ctx *ctx)
{
    return !ctx->json && !ctx->quiet && isatty(STDERR_FILENO);
}

void fwrel_cmd_progress(fwrel_ctx *ctx, size_t done, size_t total, const char *what)
{
    if (!fwrel_cmd_progress_on(ctx))
        return;
    fprintf(stderr, "\r%s: %s: %zu of %zu", ctx->cmd->name, what, done, total);
    fflush(stderr);
    ctx->progress_shown = 1;
}

void fwrel_cmd_progress_end(fwrel_ctx *ctx)
{
    if (!ctx->progress_shown)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    ctx->progress_shown = 0;
}

void fwrel_cmd_set(fwrel_ctx *ctx, const char *key, json_t *value)
{
    if (ctx->result != NULL && value != NULL)
        json_object_set_new(ctx->result, key, value);
    else
        json_decref(value);
}

static const char *verdict_name(int v)
{
    switch (v) {
    case FWREL_PASS:
        return "pass";
    case FWREL_FAIL:
        return "fail";
    case FWREL_SKIP:
        return "skip";
    default:
        return "info";
    }
}

void fwrel_cmd_report(fwrel_ctx *ctx, const fwrel_report *r)
{
    size_t n = fwrel_report_count(r);
    const fwrel_step *first = fwrel_report_first_failure(r);
    if (!fwrel_report_complete(r))
        snprintf(ctx->report_lost, sizeof(ctx->report_lost), "%s",
                 fwrel_report_step(r, n - 1)->detail);
    if (ctx->json) {
        json_t *steps = json_array();
        for (size_t i = 0; i < n; i++) {
            const fwrel_step *s = fwrel_report_step(r, i);
            json_array_append_new(steps, json_pack("{s:s,s:s,s:s}", "step", s->name, "verdict",
                                                   verdict_name(s->verdict), "detail", s->detail));
        }
        fwrel_cmd_set(ctx, "steps", steps);
        fwrel_cmd_set(ctx, "failed_step", first ? json_string(first->name) : json_null());
        return;
    }
    if (ctx->quiet)
        return;
    for (size_t i = 0; i < n; i++) {
        const fwrel_step *s = fwrel_report_step(r, i);
        static const char *tags[] = {"PASS", "FAIL", "SKIP", "INFO"};
        printf("%-4s ", tags[s->verdict & 3]);
        put_text(stdout, s->name);
        printf("%*s ", (int)(strlen(s->name) < 26 ? 26 - strlen(s->name) : 0), "");
        put_text(stdout, s->detail);
        putc('\n', stdout);
    }
}

/* Find an option by long name (len bytes of it) or short name in a table. */
static const fwrel_opt *find_opt(const fwrel_opt *opts, const char *name, size_t len, char c)
{
    for (const fwrel_opt *o = opts; o->name != NULL; o++) {
        if (c ? o->short_name == c : (strlen(o->name) == len && strncmp(o->name, name, len) == 0))
            return o;
    }
    return NULL;
}

/* The option an argument names in the command's table or the common one (an alias resolved to
 * the option it spells), or NULL; *len receives the length of a long name before any "=". */
static const fwrel_opt *lookup(const fwrel_cmd *cmd, const char *a, size_t *len)
{
    const fwrel_opt *o;
    *len = 0;
    if (a[0] != '-' || a[1] == '\0')
        return NULL;
    if (a[1] == '-') {
        const char *name = a + 2, *eq = strchr(name, '=');
        *len = eq ? (size_t)(eq - name) : strlen(name);
        if ((o = find_opt(cmd->opts, name, *len, 0)) == NULL)
            o = find_opt(common_opts, name, *len, 0);
    } else {
        if (a[2] != '\0')
            return NULL;
        if ((o = find_opt(cmd->opts, NULL, 0, a[1])) == NULL)
            o = find_opt(common_opts, NULL, 0, a[1]);
    }
    if (o != NULL && o->kind == FWREL_OPT_ALIAS)
        o = find_opt(cmd->opts, o->arg, strlen(o->arg), 0);
    return o;
}

/* Index of an option across both tables, for duplicate detection. */
static int set_opt(fwrel_ctx *ctx, const fwrel_opt *o, const char *value, unsigned char *seen,
                   int idx)
{
    if (o->kind != FWREL_OPT_MULTI && seen[idx])
        return fwrel_cmd_usage(ctx, "option --%s given more than once", o->name);
    seen[idx] = 1;
    switch (o->kind) {
    case FWREL_OPT_FLAG:
        *(int *)o->target = 1;
        break;
    case FWREL_OPT_STR:
        *(const char **)o->target = value;
        break;
    default: {
        fwrel_strlist *l = o->target;
        if (l->n == FWREL_STRLIST_MAX)
            return fwrel_cmd_usage(ctx, "option --%s given more than %d times", o->name,
                                   FWREL_STRLIST_MAX);
        l->v[l->n++] = value;
    }
    }
    return 0;
}

static int opt_index(const fwrel_cmd *cmd, const fwrel_opt *o)
{
    int n = 0;
    for (const fwrel_opt *p = cmd->opts; p->name; p++, n++)
        if (p == o)
            return n;
    for (const fwrel_opt *p = common_opts; p->name; p++, n++)
        if (p == o)
            return n;
    return n;
}

/*
 * Options go in any order, before, between or after the arguments. An option that takes a value
 * followed by a flag of the command ("--check-policy --json P") takes the next argument that is
 * not an option: a flag is never a value. Followed by another option that takes a value, it has
 * none (a usage error), rather than taking that option's name as a file.
 */
static int parse(fwrel_ctx *ctx, int argc, char **argv)
{
    const fwrel_cmd *cmd = ctx->cmd;
    unsigned char seen[128] = {0}; /* one per option of both tables */
    char **pos = calloc((size_t)argc + 1, sizeof(char *));
    const fwrel_opt *pending = NULL; /* waits for its value after flags */
    int npos = 0, only_args = 0, error = 0;
    if (pos == NULL) {
        fwrel_error_set(FWREL_EIO, "out of memory");
        return fwrel_cmd_fail(ctx, NULL);
    }
    for (int i = 1; i < argc && error == 0; i++) {
        char *a = argv[i];
        if (only_args || a[0] != '-' || a[1] == '\0') {
            if (pending != NULL) {
                error = set_opt(ctx, pending, a, seen, opt_index(cmd, pending));
                pending = NULL;
            } else {
                pos[npos++] = a;
            }
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = 1;
            continue;
        }
        size_t len;
        const fwrel_opt *o = lookup(cmd, a, &len);
        const char *value = NULL;
        if (o == NULL) {
            if (a[1] == '-')
                error = fwrel_cmd_usage(ctx, "unknown option --%.*s", (int)len, a + 2);
            else if (a[2] != '\0')
                error = fwrel_cmd_usage(ctx, "unknown option %s (short options do not combine)", a);
            else
                error = fwrel_cmd_usage(ctx, "unknown option %s", a);
            break;
        }
        if (a[1] == '-' && a[2 + len] == '=') {
            if (o->kind == FWREL_OPT_FLAG) {
                error = fwrel_cmd_usage(ctx, "option --%s takes no value", o->name);
                break;
            }
            value = a + 3 + len;
        }
        if (o->kind != FWREL_OPT_FLAG && pending != NULL) {
            error = fwrel_cmd_usage(ctx, "option --%s needs a value", pending->name);
            break;
        }
        if (o->kind != FWREL_OPT_FLAG && value == NULL) {
            size_t nlen;
            const fwrel_opt *next =
                i + 1 < argc && !only_args ? lookup(cmd, argv[i + 1], &nlen) : NULL;
            if (next != NULL && next->kind == FWREL_OPT_FLAG &&
                !(argv[i + 1][1] == '-' && argv[i + 1][2 + nlen] == '=')) {
                pending = o;
                continue;
            }
            if (i + 1 >= argc || next != NULL) {
                error = fwrel_cmd_usage(ctx, "option --%s needs a value", o->name);
                break;
            }
            value = argv[++i];
        }
        if (o->kind != FWREL_OPT_FLAG && value[0] == '\0') {
            error = fwrel_cmd_usage(ctx, "option --%s needs a non-empty value", o->name);
            break;
        }
        int idx = opt_index(cmd, o);
        assert(idx < (int)sizeof(seen)); /* a command with more than 128 options is a bug */
        error = set_opt(ctx, o, value, seen, idx);
    }
    if (error == 0 && pending != NULL)
        error = fwrel_cmd_usage(ctx, "option --%s needs a value", pending->name);
    if (error) {
        free(pos);
        return error;
    }
    ctx->argv = pos;
    ctx->argc = npos;
    return 0;
}

/* An espsecure or esp_enc_img_gen subcommand given to the fwrel command that does its work
 * (docs/cli.md "Coming from espsecure"): the fwrel commands take none. */
static const struct {
    const char *sub, *use;
} foreign_subs[] = {
    {"sign_data", "fwrel-sign -k KEY -o OUT IMAGE"},
    {"verify_signature", "fwrel-verify --sbv2 -k KEY IMAGE"},
    {"generate_signing_key", "fwrel-keygen --scheme SCHEME -o KEY.pem"},
    {"extract_public_key", "fwrel-keygen --export KEY.pem -o PREFIX"},
    {"digest_sbv2_public_key", "fwrel-keygen --export KEY.pem -o PREFIX"},
    {"digest_rsa_public_key", "fwrel-keygen --export KEY.pem -o PREFIX"},
    {"signature_info_v2", "fwrel-verify --info IMAGE"},
    {"encrypt", "fwrel-encrypt -k PUB.pem -o OUT IMAGE"},
    {"decrypt", "fwrel-encrypt -d -k KEY.pem -o OUT IMAGE"},
};

/* Usage errors a habit from espsecure makes, before anything else is read: a subcommand as the
 * first word, and --version with anything (espsecure's "--version 2" selects Secure Boot V2;
 * here it would print the version and sign nothing). Returns 0 or 2. */
static int check_habits(fwrel_ctx *ctx, int argc, char **argv)
{
    const fwrel_cmd *cmd = ctx->cmd;
    if (argc > 1 && argv[1][0] != '-' && access(argv[1], F_OK) != 0) {
        char norm[32];
        snprintf(norm, sizeof(norm), "%s", argv[1]);
        for (char *p = norm; *p; p++)
            *p = *p == '-' ? '_' : *p;
        for (size_t i = 0; i < sizeof(foreign_subs) / sizeof(foreign_subs[0]); i++)
            if (strcmp(norm, foreign_subs[i].sub) == 0)
                return fwrel_cmd_usage(ctx, "%s takes no subcommand: for '%s' use %s", cmd->name,
                                       argv[1], foreign_subs[i].use);
    }
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *a = argv[i], *v = NULL;
        if (strncmp(a, "--version", 9) != 0 || (a[9] != '\0' && a[9] != '='))
            continue;
        if (argc == 2 && a[9] == '\0')
            return 0;
        v = a[9] == '=' ? a + 10 : i + 1 < argc ? argv[i + 1] : "";
        if ((strcmp(v, "1") == 0 || strcmp(v, "2") == 0)) {
            size_t len;
            const char *sb = v[0] == '1' ? "--sbv1" : "--sbv2";
            if (lookup(cmd, sb, &len) != NULL)
                return fwrel_cmd_usage(ctx,
                                       "--version %s is espsecure's spelling of %s: use %s "
                                       "(--version alone prints the version)",
                                       v, sb, sb);
        }
        return fwrel_cmd_usage(ctx, "--version goes alone: it prints the version");
    }
    return 0;
}

/* --list-options: one line per option of both tables, "--LONG -S ARG KIND" ("-" for none; an
 * alias: "--LONG - --TARGET alias"). tests/cmd/options.sh compares it with docs/cli.md. */
static void list_options(const fwrel_cmd *cmd)
{
    static const char *kinds[] = {"flag", "value", "multi", "alias"};
    const fwrel_opt *tables[2] = {cmd->opts, common_opts};
    for (int t = 0; t < 2; t++)
        for (const fwrel_opt *o = tables[t]; o->name != NULL; o++) {
            printf("--%s ", o->name);
            if (o->short_name)
                printf("-%c ", o->short_name);
            else
                printf("- ");
            printf("%s%s %s\n", o->kind == FWREL_OPT_ALIAS ? "--" : "", o->arg ? o->arg : "-",
                   kinds[o->kind & 3]);
        }
}

/* --completion bash: a completion function from the option table. An option that takes a value
 * completes a file name (a directory for DIR); the arguments are files. */
static int print_completion(fwrel_ctx *ctx, const char *shell)
{
    const fwrel_cmd *cmd = ctx->cmd;
    const fwrel_opt *tables[2] = {cmd->opts, common_opts};
    char fn[64];
    if (strcmp(shell, "bash") != 0)
        return fwrel_cmd_usage(ctx, "--completion knows bash, not '%s'", shell);
    snprintf(fn, sizeof(fn), "_%s", cmd->name);
    for (char *p = fn; *p; p++)
        *p = *p == '-' ? '_' : *p;
    printf("# bash completion for %s (generated by %s --completion bash)\n", cmd->name, cmd->name);
    printf("%s()\n{\n    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n",
           fn);
    printf("    case $prev in\n");
    for (int t = 0; t < 2; t++)
        for (const fwrel_opt *o = tables[t]; o->name != NULL; o++) {
            const fwrel_opt *r =
                o->kind == FWREL_OPT_ALIAS ? find_opt(cmd->opts, o->arg, strlen(o->arg), 0) : o;
            if (r == NULL || r->kind == FWREL_OPT_FLAG || r->target == &opt_completion)
                continue;
            int dir =
                r->arg != NULL && (strcmp(r->arg, "DIR") == 0 || strcmp(r->arg, "OUTDIR") == 0);
            printf("    --%s", o->name);
            if (o->short_name)
                printf("|-%c", o->short_name);
            printf(") COMPREPLY=($(compgen -%s -- \"$cur\")); return ;;\n", dir ? "d" : "f");
        }
    printf("    --completion) COMPREPLY=($(compgen -W bash -- \"$cur\")); return ;;\n");
    printf("    esac\n    if [[ $cur == -* ]]; then\n        COMPREPLY=($(compgen -W \"");
    for (int t = 0; t < 2; t++)
        for (const fwrel_opt *o = tables[t]; o->name != NULL; o++)
            printf("%s--%s", t == 0 && o == tables[0] ? "" : " ", o->name);
    printf("\" -- \"$cur\"))\n    else\n        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
           "    fi\n}\ncomplete -o filenames -F %s %s\n",
           fn, cmd->name);
    return 0;
}

/* Make sure fds 0-2 are open, so no output file can become stdout or stderr. */
static void check_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) < 0) {
            int nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
            if (nfd >= 0 && nfd != fd)
                close(nfd);
        }
    }
}

int fwrel_cmd_main(const fwrel_cmd *cmd, int argc, char **argv)
{
    fwrel_ctx ctx = {.cmd = cmd};
    int code;

    check_fds();
    umask(077);
    /* A size limit (RLIMIT_FSIZE) fails the write (EFBIG) instead of killing the command, so that
     * it cleans up, logs the failure and says why. */
    (void)signal(SIGXFSZ, SIG_IGN);
    /* Secrets must not end up in a core file. */
    struct rlimit nocore = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &nocore);
    /* A secure heap for passphrases and key bytes; optional where mlock is refused. */
    fwrel_pass_secure_heap();

    ctx.result = json_object();
    json_object_set_new(ctx.result, "command", json_string(cmd->name));
    json_object_set_new(ctx.result, "version", json_string(fwrel_version()));

    code = check_habits(&ctx, argc, argv);
    if (code == 0)
        code = parse(&ctx, argc, argv);
    ctx.json = opt_json;
    ctx.quiet = opt_quiet;
    if (code == 0 && (opt_help || opt_version || opt_list || opt_completion)) {
        if (opt_help)
            print_help(cmd);
        else if (opt_version)
            printf("%s %s\n", cmd->name, fwrel_version());
        else if (opt_list)
            list_options(cmd);
        else
            code = print_completion(&ctx, opt_completion);
        json_decref(ctx.result);
        free(ctx.argv);
        return code;
    }
    if (code == 0 && (ctx.argc < cmd->min_args || ctx.argc > cmd->max_args)) {
        if (ctx.argc < cmd->min_args)
            code = fwrel_cmd_usage(&ctx, "missing argument");
        else
            code = fwrel_cmd_usage(&ctx, "unexpected argument '%s'", ctx.argv[cmd->max_args]);
    }
    if (code == 0)
        code = cmd->run(&ctx);
    if (code == 0 && ctx.report_lost[0] != '\0') {
        /* What was printed is not all that was checked: not a success. */
        fwrel_error_set(FWREL_EIO, "report: %s", ctx.report_lost);
        code = fwrel_cmd_fail(&ctx, NULL);
    }
    if (ctx.json) {
        json_object_set_new(ctx.result, "ok", json_boolean(code == 0));
        json_object_set_new(ctx.result, "exit", json_integer(code));
        /* ENSURE_ASCII: C1 controls and bidi overrides are \u escapes too, not raw bytes. */
        char *s = json_dumps(ctx.result, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        if (s != NULL) {
            puts(s);
            free(s);
        }
    }
    if (fflush(stdout) != 0 && code == 0) {
        fprintf(stderr, "%s: cannot write standard output\n", cmd->name);
        code = FWREL_EIO;
    }
    json_decref(ctx.result);
    free(ctx.argv);
    return code;
}

/* Every command's main(): the command file defines fwrel_command (runner.h). */
int main(int argc, char **argv)
{
    return fwrel_cmd_main(&fwrel_command, argc, argv);
}
