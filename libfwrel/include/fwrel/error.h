/*
 * error.h - fwrel error codes and the thread-local "last error".
 *
 * Every fallible libfwrel function returns an int: 0 on success, or one of the
 * FWREL_E* codes below. fwrel_error_exit_code() maps a code onto the exit
 * codes 0-5 of the commands (docs/architecture.md §6); codes 1-5 are those exit
 * codes themselves: never renumber them. The one-line message is built where
 * the failure happened with fwrel_error_set() and passed up unchanged.
 *
 * Library messages never name the file being processed. Where the library
 * knows which file failed (it opened or loaded it), it says so with
 * fwrel_error_about(): what kind of thing failed and its path. The command
 * prints "<prog>: <path>: <message>" from that (fwrel_error_where()), and
 * falls back to the file it passed in when the error names none; it never
 * reads the message to guess.
 */
#ifndef FWREL_ERROR_H
#define FWREL_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Error codes; each equals the exit code of the commands. Never renumber. */
enum fwrel_error_code {
    FWREL_OK = 0,      /**< success / valid */
    FWREL_EVERIFY = 1, /**< rejected: a verification or policy check said no */
    FWREL_EUSAGE = 2,  /**< usage error: bad options or arguments */
    FWREL_EFORMAT = 3, /**< bad input: malformed image, profile, key file ... */
    FWREL_EKEY = 4,    /**< key, passphrase, HSM or crypto backend error */
    FWREL_EIO = 5,     /**< I/O or system error, out of memory */
    /**
     * Not an exit code: a library function was called wrongly (a NULL or out-of-range argument,
     * a bug in the caller, not the user's usage). Exits 5 (fwrel_error_exit_code()).
     */
    FWREL_EINTERNAL = 6,
};

/** What a failure is about: the kind of thing that failed; with fwrel_error.path. */
enum fwrel_error_about {
    FWREL_ABOUT_NONE = 0,   /**< no one file: a check, a computation, an option */
    FWREL_ABOUT_INPUT,      /**< an input file (image, envelope, signature, ...) */
    FWREL_ABOUT_OUTPUT,     /**< an output file being created or written (io.h fwrel_out) */
    FWREL_ABOUT_KEY,        /**< a key file or key URI */
    FWREL_ABOUT_KEYSTORE,   /**< a keystore directory */
    FWREL_ABOUT_POLICY,     /**< a release policy file */
    FWREL_ABOUT_PROFILE,    /**< a device profile */
    FWREL_ABOUT_REPOSITORY, /**< a release repository */
    FWREL_ABOUT_BUNDLE,     /**< a release bundle */
};

/** Room for the path of what failed, terminating NUL included; a longer path is not kept. */
#define FWREL_ERROR_PATH_MAX 1024

/** Maximum length of an error message, terminating NUL included. */
#define FWREL_ERROR_MSG_MAX 512

#if defined(__GNUC__)
#define FWREL_WUR             __attribute__((warn_unused_result))
#define FWREL_PRINTF(fmt, va) __attribute__((format(printf, fmt, va)))
#else
#define FWREL_WUR
#define FWREL_PRINTF(fmt, va)
#endif

/** The last error recorded on this thread. */
typedef struct fwrel_error {
    int code;                          /**< one of enum fwrel_error_code */
    char message[FWREL_ERROR_MSG_MAX]; /**< one line, no trailing newline */
    int about;                         /**< enum fwrel_error_about: what failed */
    char path[FWREL_ERROR_PATH_MAX];   /**< its path; "" when not known */
    /** Position in path the message begins with ("LINE:COL: "), set by fwrel_error_set_at(). */
    unsigned line, col;
} fwrel_error;

/**
 * Record an error for this thread.
 *
 * @param code  the FWREL_E* code (not FWREL_OK)
 * @param fmt   printf format of the one-line reason
 * @return code, so that `return fwrel_error_set(...)` reads naturally
 */
int fwrel_error_set(int code, const char *fmt, ...) FWREL_PRINTF(2, 3);

/**
 * Like fwrel_error_set(), then appends ": <reason>" from OpenSSL's error queue
 * (the earliest entry's reason string, if any) and clears the queue.
 */
int fwrel_error_set_openssl(int code, const char *fmt, ...) FWREL_PRINTF(2, 3);

/**
 * Like fwrel_error_set(), for a position in a text file (a YAML policy or profile): the message
 * becomes "LINE:COL: <reason>" and line and col are kept, so that the command writes
 * "<file>:LINE:COL: <reason>" as compilers do.
 */
int fwrel_error_set_at(int code, unsigned line, unsigned col, const char *fmt, ...)
    FWREL_PRINTF(4, 5);

/** Like fwrel_error_set(), then appends ": <strerror(errnum)>". */
int fwrel_error_set_errno(int code, int errnum, const char *fmt, ...) FWREL_PRINTF(3, 4);

/**
 * Prefix the current message with "<prefix>: " (context added by a caller,
 * e.g. "sig block 1"). Returns the current code.
 */
int fwrel_error_prefix(const char *fmt, ...) FWREL_PRINTF(1, 2);

/**
 * fwrel_error_prefix() for a position in the text file being parsed (a YAML profile naming a key
 * file that failed): the message becomes "LINE:COL: <prefix>: <message>", the position is kept,
 * and the error names no other file any more (the caller names the one it parses).
 */
int fwrel_error_prefix_at(unsigned line, unsigned col, const char *fmt, ...) FWREL_PRINTF(3, 4);

/**
 * Say what the current error is about: the kind of thing that failed (enum fwrel_error_about)
 * and its path (NULL or too long: not known). Called where the file is known, after the error
 * is set; a caller that knows better (the policy that a read failure was about) calls it again.
 * Any fwrel_error_set*() forgets it. Returns the current code, so that
 * `return fwrel_error_about(FWREL_ABOUT_POLICY, path);` passes the error up.
 */
int fwrel_error_about(int about, const char *path);

/**
 * Keep the current message, what it is about and where, with another code: the same failure
 * means something else to this caller (a corrupt image is a rejection to a verifier, bad input
 * to a signer). Returns code.
 */
int fwrel_error_recode(int code);

/**
 * Make a saved copy of an error (`fwrel_error saved = *fwrel_error_last();`) this thread's last
 * error again, whole: after cleanup that may have overwritten it, or from another thread.
 * Returns its code.
 */
int fwrel_error_restore(const fwrel_error *saved);

/** The last error of this thread; code FWREL_OK and "" if none. Never NULL. */
const fwrel_error *fwrel_error_last(void);

/** Forget the last error of this thread. */
void fwrel_error_clear(void);

/** Short stable name of a code ("rejected", "usage", "bad-input", "key", "io", "internal"). */
const char *fwrel_error_name(int code);

/** Short stable name of what an error is about ("input", "output", "key", ...; "" for none). */
const char *fwrel_error_about_name(int about);

/**
 * The exit code of a command that failed with this error, the one mapping every command uses:
 * codes 1-5 are themselves, FWREL_EINTERNAL and an unknown code 5, and a failure without a code
 * (FWREL_OK) 5 as well: a command that fails never exits 0.
 */
int fwrel_error_exit_code(const fwrel_error *e);

/**
 * What an error names, as the command writes it before ": <message>": its path, or fallback
 * (the file the caller passed in; may be NULL) when the error names none. When the message
 * begins with a position in that file (fwrel_error_set_at()), *sep is ":" (then
 * "<path>:LINE:COL: reason"), else ": ". Returns NULL when nothing is named.
 */
const char *fwrel_error_where(const fwrel_error *e, const char *fallback, const char **sep);

/**
 * Argument check for programmer errors: aborts in debug builds, records
 * FWREL_EINTERNAL and returns it from the calling function in release builds.
 */
#ifdef NDEBUG
#define FWREL_ASSERT_ARG(cond)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return fwrel_error_set(FWREL_EINTERNAL, "invalid argument: %s", #cond);                \
    } while (0)
#else
#include <assert.h>
#define FWREL_ASSERT_ARG(cond) assert(cond)
#endif

#ifdef __cplusplus
}
#endif
#endif
