/* junit.c - reports as JUnit XML (junit.h), built with html.h's builder: its markup is XML's, and
 * its escaping (entities, U+FFFD for controls and bytes that are not UTF-8) is what XML 1.0
 * text needs. */
#include "fwrel/junit.h"

#include <stdlib.h>

#include "fwrel/html.h"
#include "util.h"

static size_t count(const fwrel_report *r, int verdict)
{
    size_t n = 0;
    for (size_t i = 0; i < fwrel_report_count(r); i++)
        n += fwrel_report_step(r, i)->verdict == verdict;
    return n;
}

static void suite(fwrel_html *h, const char *cls, const char *name, const fwrel_report *r)
{
    fwrel_html_put(h,
                   "  <testsuite name=\"%s\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" "
                   "skipped=\"%zu\">\n",
                   name, fwrel_report_count(r), count(r, FWREL_FAIL), count(r, FWREL_SKIP));
    for (size_t i = 0; i < fwrel_report_count(r); i++) {
        const fwrel_step *s = fwrel_report_step(r, i);
        fwrel_html_put(h, "    <testcase classname=\"%s\" name=\"%s\">\n", cls, s->name);
        if (s->verdict == FWREL_FAIL)
            fwrel_html_put(h, "      <failure type=\"rejected\" message=\"%s\">%s</failure>\n",
                           s->detail, s->detail);
        else if (s->verdict == FWREL_SKIP)
            fwrel_html_put(h, "      <skipped message=\"%s\"/>\n", s->detail);
        fwrel_html_put(h, "      <system-out>%s</system-out>\n    </testcase>\n", s->detail);
    }
    fwrel_html_put(h, "  </testsuite>\n");
}

int fwrel_junit_render(char **xml, size_t *len, const char *name, const char *const *suites,
                       const fwrel_report *const *reports, size_t n)
{
    fwrel_html *h = NULL;
    size_t tests = 0, failures = 0, skipped = 0;
    int error;

    FWREL_ASSERT_ARG(xml != NULL && len != NULL && name != NULL &&
                     (n == 0 || (suites != NULL && reports != NULL)));
    *xml = NULL;
    *len = 0;
    for (size_t r = 0; r < n; r++) {
        tests += fwrel_report_count(reports[r]);
        failures += count(reports[r], FWREL_FAIL);
        skipped += count(reports[r], FWREL_SKIP);
    }
    if ((error = fwrel_html_new(&h, FWREL_JUNIT_MAX)) != 0)
        return error;
    fwrel_html_put(h, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fwrel_html_put(h,
                   "<testsuites name=\"%s\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" "
                   "skipped=\"%zu\">\n",
                   name, tests, failures, skipped);
    for (size_t r = 0; r < n; r++)
        suite(h, name, suites[r], reports[r]);
    fwrel_html_put(h, "</testsuites>\n");
    error = fwrel_html_finish(xml, len, h);
    fwrel_html_free(h);
    return error;
}
