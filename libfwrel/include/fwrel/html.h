/*
 * html.h - HTML pages escaped by construction and bounded in size, and the auditor's report page
 * (docs/verify.md "Auditor mode").
 *
 * A page is built with fwrel_html_put(): its template is a string literal of the library's own
 * markup (-Wformat=2 refuses any other template), and every text argument (%s) is escaped where it
 * lands. There is no call that writes caller text as markup. Text is allowed in element content
 * and in quoted attribute values only; a %s anywhere else (a tag or attribute name, an unquoted
 * value, a comment, the content of <style> or <script>) fails the page with FWREL_EUSAGE. The page
 * has a maximum size, checked before each write: a page that would exceed it fails with
 * FWREL_EFORMAT, it is never cut short.
 *
 * Escaping: & < > " ' become entities (safe in element content and in either kind of quoted
 * attribute value); control characters (C0, DEL, C1) and every byte that is not part of a valid
 * UTF-8 sequence (overlong forms, surrogates, above U+10FFFF, truncated) become U+FFFD.
 */
#ifndef FWREL_HTML_H
#define FWREL_HTML_H

#include <stddef.h>

#include "fwrel/auditor.h"
#include "fwrel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest page fwrel-verify writes (bytes, NUL excluded). */
#define FWREL_HTML_MAX ((size_t)256 << 20)

/** A page being built (opaque). */
typedef struct fwrel_html fwrel_html;

/**
 * Start a page of at most max bytes.
 * @param out receives the builder; free with fwrel_html_free()
 * @return 0; FWREL_EUSAGE for max 0; FWREL_EIO (out of memory)
 */
int fwrel_html_new(fwrel_html **out, size_t max) FWREL_WUR;

/** Free a builder and its page. NULL is fine. */
void fwrel_html_free(fwrel_html *h);

/**
 * Append the template with its arguments: the template's own characters as markup, each %s
 * argument escaped (see above), numbers (%d %i %u %x with the h, l, ll and z modifiers, a width
 * and a precision) as printf writes them. After the first failure the page is failed: later
 * calls do nothing and return that error.
 *
 * @return 0; FWREL_EUSAGE for text outside element content or a quoted attribute value, a NULL
 *         text or an unsupported conversion; FWREL_EFORMAT "the page would exceed MAX bytes";
 *         FWREL_EIO (out of memory)
 */
int fwrel_html_put(fwrel_html *h, const char *tmpl, ...) FWREL_PRINTF(2, 3);

/**
 * Take the page.
 * @param out receives the malloc'd NUL-terminated page (free()); len its length without the NUL
 * @return 0, or the page's first error (then *out is NULL); the builder is left empty either way
 */
int fwrel_html_finish(char **out, size_t *len, fwrel_html *h) FWREL_WUR;

/**
 * The auditor's report as one self-contained page: no external resource, no script. A timeline
 * of the releases (version, secure_version), the keys and approvers of each, every step's
 * verdict, the repository steps and the audit log summary. Every string taken from the
 * repository is escaped.
 *
 * @param out   receives a malloc'd NUL-terminated page (free())
 * @param len   receives its length without the NUL
 * @param a     the outcome of fwrel_auditor_run()
 * @param title the page title (escaped; e.g. the repository's name)
 * @param max   the page's maximum size (FWREL_HTML_MAX for fwrel-verify)
 * @return 0; FWREL_EFORMAT "the page would exceed MAX bytes"; FWREL_EIO (out of memory)
 */
int fwrel_html_audit(char **out, size_t *len, const fwrel_auditor *a, const char *title,
                     size_t max) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
