/* test_rules.c - the rulebook (rules.h): the history rules under the policy in force (the
 * policy's monotonic, the strict reading without a policy), the first broken rule in order, and
 * the history's trust anchors (the policy's approvers; when it pins none, only the tag signer
 * given; never "anyone"). The pipeline and the auditor call exactly these. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/approvals.h"
#include "fwrel/error.h"
#include "fwrel/rules.h"

#define F1 "7C57DB0F0E1EF516CF7145F5C5487145075A55F6"
#define F2 "90EF2F588100A96F7FC572110075722FD060490C"

static fwrel_policy *policy(int monotonic)
{
    fwrel_policy *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->monotonic = monotonic;
    return p;
}

static void test_history_under_policy(void **state)
{
    (void)state;
    fwrel_history_state *st = NULL;
    fwrel_history_item a = {"p/beta/v1.0.0", "p", "1.0.0", "beta", 1, 2};
    fwrel_history_item b = {"p/beta/v1.1.0", "p", "1.1.0", "beta", 2, 1}; /* lower sv */
    fwrel_rules_history_outcome out;
    fwrel_policy *strict = policy(1), *lax = policy(0);
    const char *rollback = "secure_version 1 is below 2 of p/beta/v1.0.0, an earlier release "
                           "(rollback)";

    assert_int_equal(fwrel_history_state_new(&st), 0);
    assert_int_equal(fwrel_rules_history(&out, st, &a, strict), 0);
    assert_int_equal(fwrel_rules_history_first(&out), 0);
    assert_int_equal(fwrel_history_state_add(st, &a), 0);

    /* monotonic: false: a lower secure_version keeps the rules (pipeline and auditor alike). */
    assert_int_equal(fwrel_rules_history(&out, st, &b, lax), 0);
    assert_int_equal(out.monotonic, 0);
    assert_int_equal(out.secure_version.error, 0);
    assert_int_equal(fwrel_rules_history_first(&out), 0);
    /* monotonic: true, and no policy at all: refused, with the same reason. */
    assert_int_equal(fwrel_rules_history(&out, st, &b, strict), 0);
    assert_int_equal(out.monotonic, 1);
    assert_int_equal(out.secure_version.error, FWREL_EVERIFY);
    assert_string_equal(out.secure_version.why, rollback);
    assert_int_equal(out.counter.error, 0);
    assert_int_equal(out.version.error, 0);
    assert_int_equal(fwrel_rules_history_first(&out), FWREL_EVERIFY);
    assert_string_equal(fwrel_error_last()->message, rollback);
    assert_int_equal(fwrel_rules_history(&out, st, &b, NULL), 0);
    assert_string_equal(out.secure_version.why, rollback);

    /* Every rule is judged; the first broken one (counter, secure_version, version) is told. */
    fwrel_history_item c = {"p/beta/v0.9.0", "p", "0.9.0", "beta", 3, 0};
    assert_int_equal(fwrel_rules_history(&out, st, &c, strict), 0);
    assert_string_equal(out.counter.why,
                        "counter 3 follows 1 (p/beta/v1.0.0): a release is missing");
    assert_int_equal(out.secure_version.error, FWREL_EVERIFY);
    assert_string_equal(
        out.version.why,
        "version 0.9.0 is not above 1.0.0 of p/beta/v1.0.0, an earlier beta release");
    assert_int_equal(fwrel_rules_history_first(&out), FWREL_EVERIFY);
    assert_string_equal(fwrel_error_last()->message,
                        "counter 3 follows 1 (p/beta/v1.0.0): a release is missing");
    fwrel_history_state_free(st);
    free(strict);
    free(lax);
}

static void test_history_trust_anchors(void **state)
{
    (void)state;
    fwrel_history_opts ho;
    char own[41];
    fwrel_policy *p = policy(1);

    /* The policy's approvers. */
    memcpy(p->approvers[0], F1, 41);
    memcpy(p->approvers[1], F2, 41);
    p->napprovers = 2;
    assert_int_equal(fwrel_rules_history_opts(&ho, own, p, NULL, "/g"), 0);
    assert_int_equal(ho.npinned, 2);
    assert_string_equal(ho.pinned[1], F2);
    assert_string_equal(ho.gnupg_home, "/g");
    /* ... not the tag signer given besides them. */
    assert_int_equal(fwrel_rules_history_opts(&ho, own, p, F2, NULL), 0);
    assert_int_equal(ho.npinned, 2);

    /* None pinned: only the tag signer given (upper-cased), never every key of the home. */
    p->napprovers = 0;
    assert_int_equal(
        fwrel_rules_history_opts(&ho, own, p, "7c57db0f0e1ef516cf7145f5c5487145075a55f6", NULL), 0);
    assert_int_equal(ho.npinned, 1);
    assert_string_equal(ho.pinned[0], F1);
    assert_int_equal(fwrel_rules_history_opts(&ho, own, p, NULL, NULL), FWREL_EUSAGE);
    assert_string_equal(fwrel_error_last()->message,
                        "the policy pins no approver: give --tag-signer FPR, the one key whose "
                        "release tags the history believes");
    assert_int_equal(fwrel_rules_history_opts(&ho, own, p, "F1", NULL), FWREL_EUSAGE);
    assert_string_equal(fwrel_error_last()->message,
                        "'F1' is not a 40-hex-digit OpenPGP fingerprint");
    free(p);
}

/* Who may approve and who may sign the tag (approvals.h), as the pipeline asks before a release. */
static void test_approvers_and_tag_signer(void **state)
{
    (void)state;
    fwrel_approvals_rule rule;
    char out[41];
    memset(&rule, 0, sizeof(rule));
    rule.source = "the policy";
    memcpy(rule.pinned[0], F1, 41);
    rule.npinned = 1;
    rule.required = 1;
    assert_int_equal(fwrel_approvals_require_pinned(out, &rule, NULL,
                                                    "7c57db0f0e1ef516cf7145f5c5487145075a55f6"),
                     0);
    assert_string_equal(out, F1);
    assert_int_equal(fwrel_approvals_require_pinned(out, &rule, NULL, F2), FWREL_EVERIFY);
    assert_string_equal(fwrel_error_last()->message, F2 " is not an approver the policy pins");
    assert_int_equal(fwrel_approvals_require_tag_signer(out, &rule, NULL, F2), FWREL_EVERIFY);
    /* Nobody pinned: any key may sign the tag only where the policy allows no approvals. */
    rule.npinned = 0;
    assert_int_equal(fwrel_approvals_require_tag_signer(out, &rule, NULL, F2), FWREL_EVERIFY);
    rule.allow_none = 1;
    assert_int_equal(fwrel_approvals_require_tag_signer(out, &rule, NULL, F2), 0);
    assert_string_equal(out, F2);
    assert_int_equal(fwrel_approvals_require_tag_signer(out, &rule, NULL, "xyz"), FWREL_EUSAGE);
    /* A name stands only for a pinned key: with nobody pinned, none (GnuPG is not asked). */
    rule.allow_none = 0;
    assert_int_equal(fwrel_approvals_require_pinned(out, &rule, NULL, "a1@example.invalid"),
                     FWREL_EUSAGE);
    assert_string_equal(fwrel_error_last()->message,
                        "'a1@example.invalid': the policy pins no approver, so no name stands for "
                        "one: give the key's 40-hex-digit fingerprint");
    /* Hex that is not a whole fingerprint (a short key id) is a mistyped fingerprint. */
    rule.npinned = 1;
    assert_int_equal(fwrel_approvals_require_pinned(out, &rule, NULL, "0x0075722FD060490C"),
                     FWREL_EUSAGE);
    assert_string_equal(fwrel_error_last()->message,
                        "'0x0075722FD060490C' is not a 40-hex-digit OpenPGP fingerprint");
}

/* A keystore record, as the index holds it. */
static fwrel_keystore_entry key(int status, int reason, const char *changed, const char *since)
{
    fwrel_keystore_entry e;
    memset(&e, 0, sizeof(e));
    snprintf(e.name, sizeof(e.name), "sb0");
    memset(e.id, 'a', 64);
    e.epoch = 2;
    e.status = status;
    e.reason = reason;
    snprintf(e.created, sizeof(e.created), "2026-01-01T00:00:00Z");
    snprintf(e.changed, sizeof(e.changed), "%s", changed);
    snprintf(e.since, sizeof(e.since), "%s", since);
    return e;
}

#define KEY "sb0 epoch 2 (id aaaaaaaaaaaaaaaa...) "

/* The one key rule (docs/rules.md "Keys at release time"): each verdict, at its boundaries. A row:
 * the key's record (status, reason, changed, since; made at MADE), the release time, the verdict
 * and its why. */
#define MADE  "2026-01-01T00:00:00Z"
#define AT    "2026-03-01T12:00:00Z"
#define LATER "2026-04-01T00:00:00Z"
#define THEN  ": valid at release time"
static const struct key_case {
    int status, reason;
    const char *changed, *since, *release;
    int state;
    const char *why;
} key_cases[] = {
    {FWREL_KS_ACTIVE, 0, "", "", AT, FWREL_RULES_KEY_VALID, ""},
    /* Made the same second: valid; made after the release: invalid. */
    {FWREL_KS_ACTIVE, 0, "", "", MADE, FWREL_RULES_KEY_VALID, ""},
    {FWREL_KS_ACTIVE, 0, "", "", "2025-12-31T23:59:59Z", FWREL_RULES_KEY_INVALID,
     KEY "made at " MADE ", after the release at 2025-12-31T23:59:59Z"},
    /* Superseded after the release (or in its second): valid at release time, a note; before
     * it: invalid. */
    {FWREL_KS_REVOKED, FWREL_KS_REASON_SUPERSEDED, LATER, AT, AT, FWREL_RULES_KEY_VALID_THEN,
     KEY "superseded at " AT ", after the release at " AT THEN},
    {FWREL_KS_REVOKED, FWREL_KS_REASON_SUPERSEDED, LATER, AT, "2026-03-01T12:00:01Z",
     FWREL_RULES_KEY_INVALID,
     KEY "superseded at " AT ", before the release at 2026-03-01T12:00:01Z"},
    /* Compromised since a time on or before the release: invalid; after it: valid then. */
    {FWREL_KS_REVOKED, FWREL_KS_REASON_COMPROMISED, LATER, AT, AT, FWREL_RULES_KEY_INVALID,
     KEY "compromised since " AT ", at or before the release at " AT},
    {FWREL_KS_REVOKED, FWREL_KS_REASON_COMPROMISED, LATER, AT, "2026-03-01T11:59:59Z",
     FWREL_RULES_KEY_VALID_THEN,
     KEY "compromised since " AT ", after the release at 2026-03-01T11:59:59Z" THEN},
    /* An older index's revocation, no reason: every release it made fails, as before. */
    {FWREL_KS_REVOKED, FWREL_KS_REASON_UNSTATED, LATER, "", MADE, FWREL_RULES_KEY_INVALID,
     KEY "revoked at " LATER
         " with no reason recorded (read as compromised since it was made, " MADE ")"},
    /* Retired by a rotation: as a supersession at the rotation. */
    {FWREL_KS_RETIRED, 0, LATER, "", AT, FWREL_RULES_KEY_VALID_THEN,
     KEY "retired at " LATER ", after the release at " AT THEN},
    {FWREL_KS_RETIRED, 0, LATER, "", "2026-05-01T00:00:00Z", FWREL_RULES_KEY_INVALID,
     KEY "retired at " LATER ", before the release at 2026-05-01T00:00:00Z"},
};

static void test_key_valid_at_release_time(void **state)
{
    (void)state;
    fwrel_rules_key_verdict v;
    fwrel_keystore_entry e;

    for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
        const struct key_case *c = &key_cases[i];
        e = key(c->status, c->reason, c->changed, c->since);
        assert_int_equal(fwrel_rules_key_valid(&v, &e, c->release), 0);
        assert_int_equal(v.state, c->state);
        assert_string_equal(v.why, c->why);
    }

    /* The release time is RFC 3339 UTC, exactly. */
    assert_int_equal(fwrel_rules_key_valid(&v, &e, "2026-03-01"), FWREL_EFORMAT);
    assert_int_equal(fwrel_rules_key_valid(&v, &e, "2026-02-30T00:00:00Z"), FWREL_EFORMAT);
    assert_int_equal(fwrel_rules_key_valid(&v, &e, "2026-03-01T12:00:00+01:00"), FWREL_EFORMAT);
}

/* The policy in force over a release, and the tag name its template gives: one place each, for
 * the pipeline (naming its tag), CI mode and the auditor (checking them). */
static void test_policy_in_force_and_tag_name(void **state)
{
    (void)state;
    fwrel_policy *p = policy(1);
    fwrel_approvals_rule rule;
    char tag[256];
    fwrel_rules_tag tn;
    snprintf(p->product, sizeof(p->product), "acme");
    p->channels[1].present = 1;
    p->channels[1].approvals_required = 2;
    p->channels[1].name = "beta";
    assert_int_equal(fwrel_rules_policy_in_force(&rule, p, "acme", "beta"), 0);
    assert_int_equal(rule.required, 2);
    assert_int_equal(fwrel_rules_policy_in_force(&rule, p, NULL, "beta"), 0);
    assert_int_equal(fwrel_rules_policy_in_force(&rule, p, "other", "prod"), FWREL_EVERIFY);
    assert_string_equal(fwrel_error_last()->message,
                        "the policy has no channel 'prod'; the policy is for product acme, not "
                        "other");
    assert_int_equal(rule.required, 1); /* nobody meets a missing channel's rule */

    assert_int_equal(fwrel_rules_tag_name(tag, "{product}/{channel}/v{version}", "acme", "beta",
                                          "1.2.3-rc.1"),
                     0);
    assert_string_equal(tag, "acme/beta/v1.2.3-rc.1");
    assert_int_equal(fwrel_rules_tag_parse(&tn, "{product}/{channel}/v{version}", tag, NULL), 1);
    assert_string_equal(tn.product, "acme");
    assert_string_equal(tn.channel, "beta");
    assert_string_equal(tn.version, "1.2.3-rc.1");
    assert_int_equal(fwrel_rules_tag_parse(&tn, "{product}/{channel}/v{version}", tag, "other"),
                     0);
    assert_int_equal(fwrel_rules_tag_check("{product}/{channel}/v{version}", tag, "acme", "beta",
                                           "1.2.3-rc.1"),
                     0);
    assert_int_equal(fwrel_rules_tag_check("{product}/{channel}/v{version}", tag, "acme", "prod",
                                           "1.2.4"),
                     FWREL_EVERIFY);
    assert_string_equal(fwrel_error_last()->message,
                        "the tag name says channel beta, the message prod; the tag name says "
                        "version 1.2.3-rc.1, the message 1.2.4");
    assert_int_equal(
        fwrel_rules_tag_check("{product}/{channel}/v{version}", "acme/x", "acme", "beta", "1"),
        FWREL_EVERIFY);
    assert_string_equal(fwrel_error_last()->message,
                        "the tag name is not of the form {product}/{channel}/v{version}");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_in_force_and_tag_name),
        cmocka_unit_test(test_key_valid_at_release_time),
        cmocka_unit_test(test_history_under_policy),
        cmocka_unit_test(test_history_trust_anchors),
        cmocka_unit_test(test_approvers_and_tag_signer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
