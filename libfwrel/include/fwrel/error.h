/*
 * error.h - fwrel error codes and the thread-local "last error".
 *
 * Every fallible libfwrel function returns an int: 0 on success, or one of the
 * FWREL_E* codes below. The code is also the exit code the commands use
 * (docs/architecture.md §6); never renumber them. The one-line message is built
 * where the failure happened with fwrel_error_set() and passed up unchanged.
 * Library messages never name the file being processed: the command that
 * opened it prefixes "<prog>: <file>: ".
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
    FWREL_EIO = 5,     /**< I/O or system error */
};

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
    int output; /**< 1 when the failure was creating or writing an output file (io.h fwrel_out) */
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

/** Like fwrel_error_set(), then appends ": <strerror(errnum)>". */
int fwrel_error_set_errno(int code, int errnum, const char *fmt, ...) FWREL_PRINTF(3, 4);

/**
 * Prefix the current message with "<prefix>: " (context added by a caller,
 * e.g. "sig block 1"). Returns the current code.
 */
int fwrel_error_prefix(const char *fmt, ...) FWREL_PRINTF(1, 2);

/** Mark the current error as one about an output file (set by io.c's fwrel_out functions). */
void fwrel_error_mark_output(void);

/** The last error of this thread; code FWREL_OK and "" if none. Never NULL. */
const fwrel_error *fwrel_error_last(void);

/** Forget the last error of this thread. */
void fwrel_error_clear(void);

/** Short stable name of a code ("rejected", "usage", "bad-input", "key", "io"). */
const char *fwrel_error_name(int code);

/**
 * Argument check for programmer errors: aborts in debug builds, records
 * FWREL_EUSAGE and returns it from the calling function in release builds.
 */
#ifdef NDEBUG
#define FWREL_ASSERT_ARG(cond)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return fwrel_error_set(FWREL_EUSAGE, "invalid argument: %s", #cond);                   \
    } while (0)
#else
#include <assert.h>
#define FWREL_ASSERT_ARG(cond) assert(cond)
#endif

#ifdef __cplusplus
}
#endif
#endif
