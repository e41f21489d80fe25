/*
 * runner.h - what every fwrel command shares: the option table parser,
 * --help, --list-options and --completion generated from it, --version,
 * --json, --quiet, duplicate-option rejection, the umask, and the one-line
 * error report. docs/cli.md holds the table of every command's options.
 *
 * A command file declares its options and a run() callback in fwrel_command;
 * main(), in runner.c, runs it through fwrel_cmd_main(). run() returns an exit
 * code (docs/architecture.md §6).
 */
#ifndef FWREL_CMD_RUNNER_H
#define FWREL_CMD_RUNNER_H

#include <jansson.h>

#include "fwrel/error.h"
#include "fwrel/key.h"
#include "fwrel/report.h"

enum fwrel_opt_kind {
    FWREL_OPT_FLAG,  /* int *target set to 1 */
    FWREL_OPT_STR,   /* const char **target */
    FWREL_OPT_MULTI, /* fwrel_strlist *target; may repeat */
    FWREL_OPT_ALIAS, /* another spelling (espsecure's) of the option named by arg; no target */
};

#define FWREL_STRLIST_MAX 8

typedef struct fwrel_strlist {
    const char *v[FWREL_STRLIST_MAX];
    int n;
} fwrel_strlist;

typedef struct fwrel_opt {
    const char *name; /* long name, without "--" */
    char short_name;  /* 0 when none */
    int kind;         /* enum fwrel_opt_kind */
    const char *arg;  /* metavariable shown in --help, NULL for flags; an alias: its option */
    const char *help; /* one line */
    void *target;
} fwrel_opt;

struct fwrel_ctx;

typedef struct fwrel_cmd {
    const char *name;      /* "fwrel-sign" */
    const char *synopsis;  /* usage lines after the name, '\n'-separated */
    const char *summary;   /* one line */
    const fwrel_opt *opts; /* terminated by an entry with name NULL */
    int min_args;
    int max_args;
    int (*run)(struct fwrel_ctx *ctx);
} fwrel_cmd;

typedef struct fwrel_ctx {
    const fwrel_cmd *cmd;
    int argc; /* positional arguments */
    char **argv;
    int json;       /* --json */
    int quiet;      /* --quiet */
    json_t *result; /* the --json result object; commands add their fields */
    /* A report printed had steps it could not record (report.h): the command fails with this. */
    char report_lost[FWREL_STEP_DETAIL_MAX];
    int progress_shown; /* a progress line is on stderr (fwrel_cmd_progress()) */
} fwrel_ctx;

/** The command a program runs: each cmd/fwrel-*.c defines it (runner.c has main()). */
extern const fwrel_cmd fwrel_command;

/** Parse, run, print the JSON result, return the exit code. */
int fwrel_cmd_main(const fwrel_cmd *cmd, int argc, char **argv);

/**
 * Report the library's last error as "<prog>: <what>: <message>" on stderr,
 * record it in the JSON result (code, name, message, file, about), and return
 * the exit code (fwrel_error_exit_code(): the one mapping of every command).
 * what is the path the error names (fwrel_error_about()), else fallback (the
 * file the command handed to the call that failed; may be NULL: none).
 */
int fwrel_cmd_fail(fwrel_ctx *ctx, const char *fallback);

/** Report a usage error "<prog>: <message>" plus a hint; returns 2. */
int fwrel_cmd_usage(fwrel_ctx *ctx, const char *fmt, ...) FWREL_PRINTF(2, 3);

/** Text output to stdout, unless --json or --quiet. */
void fwrel_cmd_print(fwrel_ctx *ctx, const char *fmt, ...) FWREL_PRINTF(2, 3);

/**
 * Print a report: in text mode one line per step ("PASS name: detail"), in
 * JSON mode as result.steps[] plus result.failed_step. An incomplete report
 * (steps not recorded, report.h) makes a command that would succeed exit 5.
 */
void fwrel_cmd_report(fwrel_ctx *ctx, const fwrel_report *report);

/**
 * The passphrase source from the common options: --passphrase-file FILE,
 * --passphrase-fd N, or none given (a terminal prompt, or no passphrase when
 * no_pass). More than one is a usage error. Returns 0 or 2.
 */
int fwrel_cmd_pass_source(fwrel_ctx *ctx, fwrel_pass_src *src, const char *file, const char *fd,
                          int no_pass);

/**
 * A passphrase source from another pair of options, --PREFIXpassphrase-file
 * FILE and --PREFIXpassphrase-fd N (prefix "pgp-": the approvers' GnuPG
 * passphrase), which exclude each other; neither given gives otherwise
 * (FWREL_PASS_NONE or FWREL_PASS_TTY). Returns 0 or 2.
 */
int fwrel_cmd_pass_pair(fwrel_ctx *ctx, fwrel_pass_src *src, const char *prefix, const char *file,
                        const char *fd, int otherwise);

/**
 * The GnuPG home as gpg finds it: given (--gnupg-home), else $GNUPGHOME, else ~/.gnupg ($HOME,
 * else the password database's home directory). NULL only when none of these is known.
 */
const char *fwrel_cmd_gnupg_home(const char *given);

/** Set result[key] (steals the reference). */
void fwrel_cmd_set(fwrel_ctx *ctx, const char *key, json_t *value);

/** Whether progress is shown: stderr is a terminal, and neither --quiet nor --json was given. */
int fwrel_cmd_progress_on(const fwrel_ctx *ctx);

/** Progress of long work: "<cmd>: WHAT: DONE of TOTAL" on one line of stderr, rewritten in place;
 * nothing unless fwrel_cmd_progress_on(). */
void fwrel_cmd_progress(fwrel_ctx *ctx, size_t done, size_t total, const char *what);

/** Erase the progress line, if one is shown (before any other output on stderr). */
void fwrel_cmd_progress_end(fwrel_ctx *ctx);

#endif
