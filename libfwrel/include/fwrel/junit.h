/*
 * junit.h - a verification report as JUnit XML, the test report CI systems read
 * (docs/verify.md "For CI").
 *
 * One <testsuite> per report (a bundle, an image, or one release of an audited repository), one
 * <testcase> per step: a failed step has a <failure> element with its detail as the reason, a
 * skipped one a <skipped> element; the detail of every step is kept in <system-out>. Text is
 * escaped where it lands (& < > " ' as entities); control characters and bytes that are not
 * UTF-8 become U+FFFD, so that untrusted text (a tag, a version) cannot break the document.
 */
#ifndef FWREL_JUNIT_H
#define FWREL_JUNIT_H

#include <stddef.h>

#include "fwrel/error.h"
#include "fwrel/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest document fwrel_junit_render() makes (bytes, NUL excluded). */
#define FWREL_JUNIT_MAX ((size_t)64 << 20)

/**
 * Render reports as one JUnit XML document.
 * @param xml receives the document (NUL-terminated; free()); NULL on failure
 * @param len receives its length
 * @param name the name of the <testsuites> element (the command)
 * @param suites n suite names (the file a report is about, a release tag)
 * @param reports n reports, in the same order
 * @return 0; FWREL_EFORMAT when the document would exceed FWREL_JUNIT_MAX; FWREL_EIO out of memory
 */
int fwrel_junit_render(char **xml, size_t *len, const char *name, const char *const *suites,
                       const fwrel_report *const *reports, size_t n) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
