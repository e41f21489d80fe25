/* test_html.c - the HTML builder: hostile text (markup, quotes, control bytes, invalid UTF-8,
 * very long) comes out escaped in element content and in attribute values; text where it cannot
 * be escaped (a tag, an unquoted value, a comment, <style>) fails the page; the size bound fails
 * the page with an error instead of cutting it. The auditor's page: tests/unit/test_auditor.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fwrel/html.h"

static void expect_error(int rc, int code, const char *message)
{
    assert_int_equal(rc, code);
    assert_string_equal(fwrel_error_last()->message, message);
}

/* The page from a builder, which must have succeeded. */
static char *page(fwrel_html *h, size_t *len)
{
    char *out = NULL;
    assert_int_equal(fwrel_html_finish(&out, len, h), 0);
    assert_non_null(out);
    assert_int_equal(strlen(out), *len);
    fwrel_html_free(h);
    return out;
}

/* One %s in element content, and the same in a double- and a single-quoted attribute. */
static void check_text(const char *text, const char *want)
{
    fwrel_html *h = NULL;
    size_t len = 0, wl = strlen(want);
    assert_int_equal(fwrel_html_new(&h, FWREL_HTML_MAX), 0);
    assert_int_equal(fwrel_html_put(h, "<p>%s</p>", text), 0);
    assert_int_equal(fwrel_html_put(h, "<a title=\"%s\" class='%s'>x</a>", text, text), 0);
    char *out = page(h, &len);
    assert_int_equal(len, 3 + wl + 4 + 10 + wl + 9 + wl + 7);
    assert_memory_equal(out, "<p>", 3);
    assert_memory_equal(out + 3, want, wl);
    assert_memory_equal(out + 3 + wl, "</p><a title=\"", 14);
    assert_memory_equal(out + 17 + wl, want, wl);
    assert_memory_equal(out + 17 + 2 * wl, "\" class='", 9);
    assert_memory_equal(out + 26 + 2 * wl, want, wl);
    assert_string_equal(out + 26 + 3 * wl, "'>x</a>");
    free(out);
}

static void test_hostile_text(void **state)
{
    (void)state;
    check_text("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;");
    check_text("\" onmouseover=\"x", "&quot; onmouseover=&quot;x");
    check_text("' onfocus='x", "&#39; onfocus=&#39;x");
    check_text("a&amp;b", "a&amp;amp;b");
    check_text("", "");
    /* Control bytes: C0, DEL, and C1 (U+0085 as UTF-8). */
    check_text("a\x01\n\t\x1b\x7f"
               "b",
               "a&#xfffd;&#xfffd;&#xfffd;&#xfffd;&#xfffd;b");
    check_text("\xc2\x85", "&#xfffd;");
    /* Invalid UTF-8: a stray byte, overlong '/', a surrogate, above U+10FFFF, truncated. */
    check_text("\xff", "&#xfffd;");
    check_text("\xc0\xaf", "&#xfffd;&#xfffd;");
    check_text("\xed\xa0\x80", "&#xfffd;&#xfffd;&#xfffd;");
    check_text("\xf4\x90\x80\x80", "&#xfffd;&#xfffd;&#xfffd;&#xfffd;");
    check_text("\xe2\x82", "&#xfffd;&#xfffd;");
    check_text("\xe0\x80\x80<", "&#xfffd;&#xfffd;&#xfffd;&lt;");
    /* Valid UTF-8 is kept. */
    check_text("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
               "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

static void test_long_text(void **state)
{
    (void)state;
    size_t n = (size_t)1 << 20;
    char *text = malloc(n + 1);
    assert_non_null(text);
    memset(text, '<', n);
    text[n] = '\0';
    fwrel_html *h = NULL;
    size_t len = 0;
    assert_int_equal(fwrel_html_new(&h, FWREL_HTML_MAX), 0);
    assert_int_equal(fwrel_html_put(h, "<td>%s</td>", text), 0);
    char *out = page(h, &len);
    assert_int_equal(len, 4 + 4 * n + 5);
    for (size_t i = 0; i < n; i++)
        assert_memory_equal(out + 4 + 4 * i, "&lt;", 4);
    assert_string_equal(out + 4 + 4 * n, "</td>");
    free(out);
    free(text);
}

static void test_numbers(void **state)
{
    (void)state;
    fwrel_html *h = NULL;
    size_t len = 0;
    assert_int_equal(fwrel_html_new(&h, 1024), 0);
    assert_int_equal(fwrel_html_put(h,
                                    "<tr id=\"r%zu\"><td style=\"width:%upx\">%d %llu %x %5u "
                                    "100%%</td></tr>",
                                    (size_t)7, 42u, -3, 18446744073709551615ull, 255u, 9u),
                     0);
    char *out = page(h, &len);
    assert_string_equal(out, "<tr id=\"r7\"><td style=\"width:42px\">-3 18446744073709551615 ff "
                             "    9 100%</td></tr>");
    free(out);
}

/* Text where no escaping makes it safe fails the page, and the page stays failed. */
static void test_text_out_of_context(void **state)
{
    (void)state;
    /* The same template text in each case of the switch (templates are literals). */
    for (size_t i = 0; i < 6; i++) {
        fwrel_html *h = NULL;
        char *out = NULL;
        size_t len = 1;
        assert_int_equal(fwrel_html_new(&h, 1024), 0);
        assert_int_equal(fwrel_html_put(h, "<p>ok</p>"), 0);
        int rc;
        switch (i) {
        case 0:
            rc = fwrel_html_put(h, "<a %s>", "onclick=x");
            break;
        case 1:
            rc = fwrel_html_put(h, "<td class=%s>", "x onclick=y");
            break;
        case 2:
            rc = fwrel_html_put(h, "<!-- %s -->", "--><script>");
            break;
        case 3:
            rc = fwrel_html_put(h, "<style>%s</style>", "</style><script>");
            break;
        case 4:
            rc = fwrel_html_put(h, "<script>%s</script>", "alert(1)");
            break;
        default:
            rc = fwrel_html_put(h, "<%s>", "script");
            break;
        }
        expect_error(rc, FWREL_EUSAGE,
                     "HTML template: text where it cannot be escaped (in a tag, a comment, or "
                     "<style>/<script>)");
        fwrel_error_clear();
        /* Sticky: later text is refused, and the page is not handed out. */
        assert_int_equal(fwrel_html_put(h, "<p>%s</p>", "more"), FWREL_EUSAGE);
        expect_error(fwrel_html_finish(&out, &len, h), FWREL_EUSAGE,
                     "HTML template: text where it cannot be escaped (in a tag, a comment, or "
                     "<style>/<script>)");
        assert_null(out);
        assert_int_equal(len, 0);
        fwrel_html_free(h);
    }
    /* After a closed <style>, text is allowed again; a NULL text is refused. */
    fwrel_html *h = NULL;
    size_t len = 0;
    assert_int_equal(fwrel_html_new(&h, 1024), 0);
    assert_int_equal(fwrel_html_put(h, "<style>p{color:red}</style><p>%s</p>", "<b>"), 0);
    char *out = page(h, &len);
    assert_string_equal(out, "<style>p{color:red}</style><p>&lt;b&gt;</p>");
    free(out);
    assert_int_equal(fwrel_html_new(&h, 1024), 0);
    const char *volatile none = NULL; /* not a constant: the compiler would refuse it */
    expect_error(fwrel_html_put(h, "<p>%s</p>", none), FWREL_EUSAGE, "HTML template: NULL text");
    fwrel_html_free(h);
}

/* The bound: reached exactly is fine; one byte over, escaped text included, fails the page. */
static void test_bound(void **state)
{
    (void)state;
    fwrel_html *h = NULL;
    char *out = NULL;
    size_t len = 0;

    assert_int_equal(fwrel_html_new(&h, 8), 0);
    assert_int_equal(fwrel_html_put(h, "%s", "<<"), 0); /* "&lt;&lt;": 8 bytes */
    out = page(h, &len);
    assert_string_equal(out, "&lt;&lt;");
    free(out);

    assert_int_equal(fwrel_html_new(&h, 8), 0);
    expect_error(fwrel_html_put(h, "%s", "<<<"), FWREL_EFORMAT, "the page would exceed 8 bytes");
    fwrel_error_clear();
    expect_error(fwrel_html_finish(&out, &len, h), FWREL_EFORMAT, "the page would exceed 8 bytes");
    assert_null(out);
    fwrel_html_free(h);

    assert_int_equal(fwrel_html_new(&h, 16), 0);
    assert_int_equal(fwrel_html_put(h, "<p>0123456789"), 0);
    expect_error(fwrel_html_put(h, "</p>"), FWREL_EFORMAT, "the page would exceed 16 bytes");
    assert_int_equal(fwrel_html_put(h, "x"), FWREL_EFORMAT);
    assert_int_equal(fwrel_html_finish(&out, &len, h), FWREL_EFORMAT);
    assert_null(out);
    fwrel_html_free(h);

    expect_error(fwrel_html_new(&h, 0), FWREL_EUSAGE, "an HTML page of at most 0 bytes");
    assert_null(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_text), cmocka_unit_test(test_long_text),
        cmocka_unit_test(test_numbers),      cmocka_unit_test(test_text_out_of_context),
        cmocka_unit_test(test_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
