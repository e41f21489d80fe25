/* test_history.c - the history rules (history.h): counters, secure_version, versions per channel,
 * each with the exact reason; the same functions fwrel-bundle and fwrel-verify --repo call.
 * Reading the history from a real repository is tested by tests/cmd/history.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fwrel/error.h"
#include "fwrel/history.h"

static void expect_rule(int rc, const char *message)
{
    if (message == NULL) {
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, FWREL_EVERIFY);
    assert_string_equal(fwrel_error_last()->message, message);
}

static fwrel_history_item item(const char *tag, const char *version, const char *channel,
                               uint64_t counter, uint32_t sv)
{
    fwrel_history_item it = {tag, "p", version, channel, counter, sv};
    return it;
}

static void test_rules(void **state)
{
    (void)state;
    fwrel_history_state *s = NULL;
    assert_int_equal(fwrel_history_state_new(&s), 0);
    assert_int_equal(fwrel_history_state_counter(s), 0);
    fwrel_history_item a = item("p/beta/v1.0.0", "1.0.0", "beta", 1, 2);
    fwrel_history_item first2 = item("x", "1.0.0", "beta", 2, 0);
    expect_rule(fwrel_history_rule_counter(s, &first2), "the product's first counter is 2, not 1");
    expect_rule(fwrel_history_rule_counter(s, &a), NULL);
    expect_rule(fwrel_history_rule_secure_version(s, &a, 1), NULL);
    expect_rule(fwrel_history_rule_version(s, &a), NULL);
    assert_int_equal(fwrel_history_state_add(s, &a), 0);
    fwrel_history_item b = item("p/prod/v0.9.0", "0.9.0", "prod", 2, 3);
    expect_rule(fwrel_history_rule_counter(s, &b), NULL);
    expect_rule(fwrel_history_rule_version(s, &b), NULL); /* another channel */
    assert_int_equal(fwrel_history_state_add(s, &b), 0);
    assert_int_equal(fwrel_history_state_counter(s), 2);

    fwrel_history_item dup = item("p/beta/v1.1.0", "1.1.0", "beta", 2, 3);
    expect_rule(fwrel_history_rule_counter(s, &dup), "counter 2 is also p/prod/v0.9.0's");
    fwrel_history_item gap = item("p/beta/v1.1.0", "1.1.0", "beta", 4, 3);
    expect_rule(fwrel_history_rule_counter(s, &gap),
                "counter 4 follows 2 (p/prod/v0.9.0): a release is missing");
    fwrel_history_item max = item("p/beta/v99.0.0", "99.0.0", "beta", 4294967295u, 16);
    expect_rule(fwrel_history_rule_counter(s, &max),
                "counter 4294967295 follows 2 (p/prod/v0.9.0): a release is missing");
    /* secure_version: the highest of any channel, unless the policy is not monotonic. */
    fwrel_history_item low = item("p/beta/v1.2.0", "1.2.0", "beta", 3, 2);
    expect_rule(fwrel_history_rule_secure_version(s, &low, 1),
                "secure_version 2 is below 3 of p/prod/v0.9.0, an earlier release (rollback)");
    expect_rule(fwrel_history_rule_secure_version(s, &low, 0), NULL);
    /* Versions: above the channel's highest (SemVer precedence, build metadata ignored). */
    fwrel_history_item same = item("p/beta/v1.0.0+b", "1.0.0+b", "beta", 3, 3);
    expect_rule(fwrel_history_rule_version(s, &same),
                "version 1.0.0+b is not above 1.0.0 of p/beta/v1.0.0, an earlier beta release");
    fwrel_history_item pre = item("p/beta/v1.0.0-rc.1", "1.0.0-rc.1", "beta", 3, 3);
    expect_rule(fwrel_history_rule_version(s, &pre),
                "version 1.0.0-rc.1 is not above 1.0.0 of p/beta/v1.0.0, an earlier beta release");
    fwrel_history_item bad = item("p/beta/vx", "x", "beta", 3, 3);
    expect_rule(fwrel_history_rule_version(s, &bad), "version 'x' is not SemVer 2.0");
    fwrel_history_item next = item("p/beta/v1.0.1", "1.0.1", "beta", 3, 3);
    expect_rule(fwrel_history_rule_counter(s, &next), NULL);
    expect_rule(fwrel_history_rule_secure_version(s, &next, 1), NULL);
    expect_rule(fwrel_history_rule_version(s, &next), NULL);
    fwrel_history_state_free(s);
}

/* The rule on untagged commits names the commit, its release and counter. */
static void test_untagged_rule(void **state)
{
    (void)state;
    fwrel_history h;
    fwrel_history_untagged u[2];
    memset(&h, 0, sizeof(h));
    memset(u, 0, sizeof(u));
    assert_int_equal(fwrel_history_rule_untagged(&h), 0);
    h.untagged = u;
    h.nuntagged = 1;
    snprintf(u[0].commit, sizeof(u[0].commit), "%040d", 7);
    expect_rule(fwrel_history_rule_untagged(&h),
                "commit 0000000000000000000000000000000000000007 on the release branch is not a "
                "verified release: repair it first (fwrel-bundle --repair-history "
                "0000000000000000000000000000000000000007)");
    h.nuntagged = 2;
    snprintf(u[1].commit, sizeof(u[1].commit), "%040d", 8);
    snprintf(u[1].tag, sizeof(u[1].tag), "p/beta/v1.2.0");
    u[1].have_record = 1;
    u[1].record.counter = 3;
    expect_rule(fwrel_history_rule_untagged(&h),
                "release commit 0000000000000000000000000000000000000008 (p/beta/v1.2.0, counter "
                "3) on the release branch has no verified tag (and 1 more untagged commit): "
                "repair it first (fwrel-bundle --repair-history "
                "0000000000000000000000000000000000000008)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_untagged_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
