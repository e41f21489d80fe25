/* report.c - ordered verification steps (report.h). */
#include "fwrel/report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A verifier records tens of steps; the cap keeps a hostile input from growing it. */
#define REPORT_MAX_STEPS 4096

struct fwrel_report {
    fwrel_step *steps;
    size_t count;
    size_t cap;
    size_t lost;           /* steps that could not be recorded */
    fwrel_step incomplete; /* the final FAIL step saying so, shown once lost > 0 */
};

/* A step was not recorded: count it in the final "report" step, and say why to a caller that
 * checks. */
static int lose(fwrel_report *r, const char *why)
{
    r->lost++;
    snprintf(r->incomplete.name, sizeof(r->incomplete.name), "report");
    r->incomplete.verdict = FWREL_FAIL;
    snprintf(r->incomplete.detail, sizeof(r->incomplete.detail), "%zu step%s not recorded: %s",
             r->lost, r->lost == 1 ? "" : "s", why);
    return fwrel_error_set(FWREL_EIO, "%s", why);
}

int fwrel_report_new(fwrel_report **out)
{
    FWREL_ASSERT_ARG(out != NULL);
    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    return 0;
}

void fwrel_report_free(fwrel_report *r)
{
    if (r == NULL)
        return;
    free(r->steps);
    free(r);
}

int fwrel_report_add(fwrel_report *r, const char *name, int verdict, const char *fmt, ...)
{
    if (r == NULL)
        return 0;
    if (r->count == REPORT_MAX_STEPS)
        return lose(r, "report full");
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        fwrel_step *s = realloc(r->steps, cap * sizeof(*s));
        if (s == NULL)
            return lose(r, "out of memory");
        r->steps = s;
        r->cap = cap;
    }
    fwrel_step *s = &r->steps[r->count++];
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->verdict = verdict;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
    va_end(ap);
    for (char *p = s->detail; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return 0;
}

int fwrel_report_complete(const fwrel_report *r)
{
    return r == NULL || r->lost == 0;
}

size_t fwrel_report_count(const fwrel_report *r)
{
    return r == NULL ? 0 : r->count + (r->lost > 0);
}

const fwrel_step *fwrel_report_step(const fwrel_report *r, size_t i)
{
    if (r == NULL || i >= fwrel_report_count(r))
        return NULL;
    return i < r->count ? &r->steps[i] : &r->incomplete;
}

const fwrel_step *fwrel_report_first_failure(const fwrel_report *r)
{
    for (size_t i = 0; r != NULL && i < r->count; i++)
        if (r->steps[i].verdict == FWREL_FAIL)
            return &r->steps[i];
    return r != NULL && r->lost > 0 ? &r->incomplete : NULL;
}
