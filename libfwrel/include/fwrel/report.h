/*
 * report.h - an ordered list of verification steps and their verdicts.
 *
 * Verifiers record each check they run, in the order the device runs them, so
 * a command can print every step (text or --json) and name the first failure.
 */
#ifndef FWREL_REPORT_H
#define FWREL_REPORT_H

#include <stddef.h>

#include "fwrel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Verdict of one step. */
enum fwrel_verdict {
    FWREL_PASS = 0, /**< the check passed */
    FWREL_FAIL = 1, /**< the check said no */
    FWREL_SKIP = 2, /**< not run (not applicable, or an earlier step failed) */
    FWREL_INFO = 3, /**< a fact, not a check */
};

#define FWREL_STEP_NAME_MAX   48
#define FWREL_STEP_DETAIL_MAX 320

/** One recorded step. */
typedef struct fwrel_step {
    char name[FWREL_STEP_NAME_MAX];     /**< stable machine name, e.g. "sbv2.key-digest" */
    int verdict;                        /**< enum fwrel_verdict */
    char detail[FWREL_STEP_DETAIL_MAX]; /**< one human line */
} fwrel_step;

/** A report; opaque. */
typedef struct fwrel_report fwrel_report;

/** Create an empty report. @return 0 or FWREL_EIO (out of memory). */
int fwrel_report_new(fwrel_report **out) FWREL_WUR;

/** Free a report. NULL is fine. */
void fwrel_report_free(fwrel_report *report);

/**
 * Append a step. A NULL report is accepted and ignores the step, so
 * verifiers can be called without one.
 *
 * A step that cannot be recorded (out of memory, or more than 4096 steps) is
 * not lost silently: the report keeps the failure and ends with a FAIL step
 * "report" ("N steps not recorded: ..."), which fwrel_report_first_failure()
 * returns when no earlier step failed, and fwrel_report_complete() says 0. So
 * a caller may ignore the result: an incomplete report fails closed, and the
 * command that prints it fails (runner.c). Callers that stop at once can still
 * test it.
 * @return 0, or FWREL_EIO (out of memory, report full; the last error set)
 */
int fwrel_report_add(fwrel_report *report, const char *name, int verdict, const char *fmt, ...)
    FWREL_PRINTF(4, 5);

/** 1 when every step added was recorded (also for NULL), 0 when some were not. */
int fwrel_report_complete(const fwrel_report *report);

/** Number of steps (with the final "report" step of an incomplete report). */
size_t fwrel_report_count(const fwrel_report *report);

/** Step i (borrowed; valid until the report changes), NULL if out of range. */
const fwrel_step *fwrel_report_step(const fwrel_report *report, size_t i);

/** The first FWREL_FAIL step, or NULL. */
const fwrel_step *fwrel_report_first_failure(const fwrel_report *report);

#ifdef __cplusplus
}
#endif
#endif
