/* test_tagmsg.c - the release tag message codec (tagmsg.h): what fwrel-bundle writes reads back
 * field for field, the commit message is the same field lines, each malformed line is refused
 * with its reason, and a lost tag's message is rebuilt from its commit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/error.h"
#include "fwrel/tagmsg.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"
#define H4 "4444444444444444444444444444444444444444444444444444444444444444"
#define H5 "5555555555555555555555555555555555555555555555555555555555555555"
#define F1 "7C57DB0F0E1EF516CF7145F5C5487145075A55F6"
#define F2 "90EF2F588100A96F7FC572110075722FD060490C"

static fwrel_tagmsg sample(void)
{
    fwrel_tagmsg m;
    memset(&m, 0, sizeof(m));
    snprintf(m.product, sizeof(m.product), "acme-thermostat");
    snprintf(m.version, sizeof(m.version), "1.2.0-rc.1+b7");
    snprintf(m.channel, sizeof(m.channel), "beta");
    m.counter = 4294967295u;
    m.secure_version = 7;
    snprintf(m.bundle_path, sizeof(m.bundle_path),
             "acme-thermostat/beta/v1.2.0-rc.1+b7/bundle.fwb");
    memcpy(m.bundle_sha, H1, 65);
    m.bundle_size = 849920;
    memcpy(m.rj_sha, H2, 65);
    memcpy(m.input_sha, H3, 65);
    m.input_size = 200096;
    memcpy(m.policy_sha, H4, 65);
    memcpy(m.approvals[0], F1, 41);
    memcpy(m.approvals[1], F2, 41);
    m.napprovals = 2;
    m.approvals_required = 2;
    snprintf(m.audit_path, sizeof(m.audit_path), "audit/audit.jsonl");
    memcpy(m.audit_head, H5, 65);
    m.audit_entries = 3;
    return m;
}

static const char expected[] =
    "fwrel release acme-thermostat 1.2.0-rc.1+b7 (beta)\n\n"
    "counter: 4294967295\nsecure_version: 7\n"
    "bundle: acme-thermostat/beta/v1.2.0-rc.1+b7/bundle.fwb sha256:" H1 " size:849920\n"
    "release.json: sha256:" H2 "\ninput: sha256:" H3 " size:200096\npolicy: sha256:" H4 "\n"
    "approvals: 2 of 2: " F1 ", " F2 "\n"
    "audit: audit/audit.jsonl head:" H5 " entries:3\n";

static void test_round_trip(void **state)
{
    (void)state;
    fwrel_tagmsg m = sample(), back;
    char *tag = NULL, *commit = NULL, err[256];
    assert_int_equal(fwrel_tagmsg_encode(&tag, &commit, &m, "acme-thermostat/beta/v1.2.0-rc.1+b7"),
                     0);
    assert_string_equal(tag, expected);
    /* The commit message: "release TAG", then the same field lines. */
    const char *fields = strstr(expected, "\n\n") + 2;
    char want[2048];
    snprintf(want, sizeof(want), "release acme-thermostat/beta/v1.2.0-rc.1+b7\n\n%s", fields);
    assert_string_equal(commit, want);
    assert_int_equal(fwrel_tagmsg_decode(&back, err, sizeof(err), (uint8_t *)tag, strlen(tag)), 1);
    assert_string_equal(err, "");
    assert_memory_equal(&back, &m, sizeof(m));

    /* A lost tag's message, rebuilt from its commit, is the message the tag had. */
    char *again = NULL;
    assert_int_equal(fwrel_tagmsg_from_commit(&again, commit, "acme-thermostat/beta/v1.2.0-rc.1+b7",
                                              m.product, m.version, m.channel),
                     0);
    assert_string_equal(again, tag);
    free(again);
    assert_int_equal(fwrel_tagmsg_from_commit(&again, commit, "acme-thermostat/beta/v1.3.0",
                                              m.product, m.version, m.channel),
                     FWREL_EVERIFY);
    assert_null(again);
    assert_string_equal(fwrel_error_last()->message, "its message is not a release's");
    free(tag);
    free(commit);

    /* Nobody approved: "none". */
    memset(m.approvals, 0, sizeof(m.approvals));
    m.napprovals = 0;
    m.approvals_required = 0;
    assert_int_equal(fwrel_tagmsg_encode(&tag, NULL, &m, "t"), 0);
    assert_non_null(strstr(tag, "\napprovals: 0 of 0: none\n"));
    assert_int_equal(fwrel_tagmsg_decode(&back, err, sizeof(err), (uint8_t *)tag, strlen(tag)), 1);
    assert_memory_equal(&back, &m, sizeof(m));
    free(tag);
}

static void test_encode_refuses_unreadable(void **state)
{
    (void)state;
    fwrel_tagmsg m = sample();
    char *tag = NULL;
    /* A product with a space would not read back: nothing is written. */
    snprintf(m.product, sizeof(m.product), "acme thermostat");
    assert_int_equal(fwrel_tagmsg_encode(&tag, NULL, &m, "t"), FWREL_EFORMAT);
    assert_null(tag);
    assert_string_equal(fwrel_error_last()->message,
                        "the tag message would not read back: the message does not start 'fwrel "
                        "release PRODUCT VERSION (CHANNEL)'");
    m = sample();
    snprintf(m.audit_path, sizeof(m.audit_path), "../audit.jsonl");
    assert_int_equal(fwrel_tagmsg_encode(&tag, NULL, &m, "t"), FWREL_EFORMAT);
    assert_string_equal(fwrel_error_last()->message,
                        "the tag message would not read back: the message's 'audit:' line is "
                        "malformed");
}

/* expected with one substring replaced, decoded: its verdict and reason. */
static void expect_decode(const char *from, const char *to, int ok, const char *reason)
{
    char text[2048], err[256];
    fwrel_tagmsg m;
    const char *at = strstr(expected, from);
    assert_non_null(at);
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - expected), expected, to, at + strlen(from));
    assert_int_equal(fwrel_tagmsg_decode(&m, err, sizeof(err), (uint8_t *)text, strlen(text)), ok);
    assert_string_equal(err, reason);
}

static void test_decode_refuses(void **state)
{
    (void)state;
    expect_decode("fwrel release", "fwrel rel", 0,
                  "the message does not start 'fwrel release PRODUCT VERSION (CHANNEL)'");
    expect_decode("(beta)", "beta", 0,
                  "the message does not start 'fwrel release PRODUCT VERSION (CHANNEL)'");
    expect_decode("counter: 4294967295", "counter: 42x", 0,
                  "the message's 'counter:' line is malformed");
    expect_decode("secure_version: 7", "secure_version: 4294967296", 0,
                  "the message's 'secure_version:' line is malformed");
    expect_decode("secure_version: 7\n", "secure_version: 7\ncounter: 1\n", 0,
                  "the message's 'counter:' line is repeated");
    expect_decode("sha256:" H2, "sha256:" H2 "0", 0,
                  "the message's 'release.json:' line is malformed");
    expect_decode("2 of 2: " F1 ", " F2, "3 of 2: " F1 ", " F2, 0,
                  "the message's 'approvals:' line is malformed");
    expect_decode("2 of 2: " F1 ", " F2, "2 of 2: none", 0,
                  "the message's 'approvals:' line is malformed");
    expect_decode(" entries:3", " entries:0", 0, "the message's 'audit:' line is malformed");
    expect_decode("audit: audit/", "audit: /audit/", 0, "the message's 'audit:' line is malformed");
    expect_decode("policy: sha256:" H4 "\n", "", 0, "the message has no 'policy:' line");
    /* Unknown lines are ignored. */
    expect_decode("counter:", "note: hello\ncounter:", 1, "");

    /* The raw tag: after the header's blank line. */
    char raw[2048], err[256];
    fwrel_tagmsg m;
    snprintf(raw, sizeof(raw), "object 0\ntype commit\ntag t\n\n%s", expected);
    assert_int_equal(fwrel_tagmsg_decode_tag(&m, err, sizeof(err), (uint8_t *)raw, strlen(raw)), 1);
    assert_int_equal(m.counter, 4294967295u);
    assert_int_equal(fwrel_tagmsg_decode_tag(&m, err, sizeof(err), (uint8_t *)raw, 20), 0);
    assert_string_equal(err, "the tag has no message");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encode_refuses_unreadable),
        cmocka_unit_test(test_decode_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
