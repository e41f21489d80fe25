/* test_release.c - SemVer precedence and the release record (canonical, strict). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/error.h"
#include "fwrel/release.h"

static int cmp(const char *a, const char *b)
{
    int c = 99;
    assert_int_equal(fwrel_semver_cmp(&c, a, b), 0);
    return c;
}

static void test_semver_order(void **state)
{
    (void)state;
    /* SemVer 2.0 section 11's example chain, each lower than the next. */
    static const char *const chain[] = {"1.0.0-alpha",      "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                        "1.0.0-beta",       "1.0.0-beta.2",  "1.0.0-beta.11",
                                        "1.0.0-rc.1",       "1.0.0",         "v1.0.1",
                                        "1.1.0",            "1.10.0",        "2.0.0"};
    size_t n = sizeof(chain) / sizeof(chain[0]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int c = cmp(chain[i], chain[j]);
            assert_int_equal(c, i < j ? -1 : i > j ? 1 : 0);
        }
    assert_int_equal(cmp("1.2.3+build.5", "1.2.3"), 0);
    assert_int_equal(cmp("v1.2.3", "1.2.3"), 0);
}

static void test_semver_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"1.2",     "1.2.3.4", "01.2.3",  "1.2.3-",  "1.2.3-01",
                                      "1.2.3+",  "1..3",    "a.b.c",   "1.2.3 ",  "",
                                      "1.2.3-a..b", "99999999999999999999.0.0"};
    int c;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(fwrel_semver_cmp(&c, bad[i], "1.0.0"), FWREL_EFORMAT);
        assert_int_equal(fwrel_semver_cmp(&c, "1.0.0", bad[i]), FWREL_EFORMAT);
    }
}

static void fill(fwrel_release *r)
{
    memset(r, 0, sizeof(*r));
    strcpy(r->product, "acme");
    strcpy(r->version, "1.2.3");
    strcpy(r->channel, "prod");
    strcpy(r->chip, "esp32s3");
    strcpy(r->device_types[0], "thermo");
    r->ndevice_types = 1;
    r->counter = 7;
    r->secure_version = 2;
    r->created = 1700000000;
    r->expires = 1700086400;
    memset(r->policy_sha256, 'a', 64);
    memset(r->input.sha256, 'b', 64);
    r->input.size = 1000;
    memset(r->signed_image.sha256, 'c', 64);
    r->signed_image.size = 8192;
    strcpy(r->image.name, "firmware.enc");
    memset(r->image.sha256, 'd', 64);
    r->image.size = 8704;
    strcpy(r->manifest.name, "manifest.fwm");
    memset(r->manifest.sha256, 'e', 64);
    r->manifest.size = 900;
    r->encrypted = 1;
    memset(r->sign_keys[0], '1', 64);
    r->nsign_keys = 1;
    memset(r->manifest_signers[0], '2', 64);
    memset(r->manifest_signers[1], '3', 64);
    r->nmanifest_signers = 2;
    r->manifest_threshold = 2;
    memset(r->recipients[0], '4', 64);
    r->nrecipients = 1;
    memset(r->image_key, '5', 64);
    memset(r->approvers[0], 'A', 40);
    r->napprovers = 1;
    r->approvals_required = 1;
    strcpy(r->tool_version, "0.1.0");
}

static void test_record_round_trip(void **state)
{
    (void)state;
    fwrel_release r, back;
    char *json = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    fill(&r);
    assert_int_equal(fwrel_release_encode(&json, &len, &r), 0);
    assert_int_equal(json[len - 1], '\n');
    assert_non_null(strstr(json, "\"format\":\"fwrel-release-1\""));
    assert_int_equal(fwrel_release_decode(&back, (const uint8_t *)json, len), 0);
    assert_int_equal(fwrel_release_encode(&again, &len2, &back), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(json, again, len);
    assert_string_equal(back.image.name, "firmware.enc");
    assert_int_equal(back.counter, 7);
    assert_int_equal(back.nmanifest_signers, 2);
    free(again);

    /* Not canonical (a space), a duplicate, an unknown field, a float: refused. */
    char *spaced = malloc(len + 2);
    spaced[0] = ' ';
    memcpy(spaced + 1, json, len + 1);
    assert_int_equal(fwrel_release_decode(&back, (const uint8_t *)spaced, len + 1), FWREL_EFORMAT);
    free(spaced);
    char *p = strstr(json, "\"counter\":7");
    assert_non_null(p);
    p[10] = '8';
    assert_int_equal(fwrel_release_decode(&back, (const uint8_t *)json, len), 0); /* still canonical */
    p[10] = '7';
    static const char *const edits[][2] = {
        {"\"counter\":7", "\"counter\":7.0"},
        {"\"chip\":\"esp32s3\"", "\"chip\":\"esp32s3\",\"chip\":\"esp32\""},
        {"\"encrypted\":true", "\"encrypted\":true,\"extra\":1"},
        {"\"required\":1", "\"required\":-1"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char buf[8192];
        const char *at = strstr(json, edits[i][0]);
        assert_non_null(at);
        size_t pre = (size_t)(at - json);
        snprintf(buf, sizeof(buf), "%.*s%s%s", (int)pre, json, edits[i][1],
                 at + strlen(edits[i][0]));
        assert_int_equal(fwrel_release_decode(&back, (const uint8_t *)buf, strlen(buf)),
                         FWREL_EFORMAT);
    }
    free(json);
}

/* The encoder refuses every value its decoder refuses (one table of limits): a counter of 2^32
 * written once would make every later read of the history fail. */
static void test_encode_refuses_what_decode_refuses(void **state)
{
    (void)state;
    fwrel_release r;
    char *json = NULL;
    size_t len = 0;
    fill(&r);
    r.counter = (uint64_t)UINT32_MAX + 1;
    assert_int_equal(fwrel_release_encode(&json, &len, &r), FWREL_EFORMAT);
    assert_string_equal(fwrel_error_last()->message,
                        "release record: counter 4294967296 is above its limit 4294967295");
    assert_null(json);
    r.counter = UINT32_MAX; /* the largest a device and the decoder take */
    assert_int_equal(fwrel_release_encode(&json, &len, &r), 0);
    fwrel_release back;
    assert_int_equal(fwrel_release_decode(&back, (const uint8_t *)json, len), 0);
    assert_int_equal(back.counter, UINT32_MAX);
    free(json);
    json = NULL;
    fill(&r);
    r.input.size = ((uint64_t)1 << 40) + 1;
    assert_int_equal(fwrel_release_encode(&json, &len, &r), FWREL_EFORMAT);
    assert_string_equal(fwrel_error_last()->message,
                        "release record: size 1099511627777 is above its limit 1099511627776");
    fill(&r);
    r.approvals_required = 17;
    assert_int_equal(fwrel_release_encode(&json, &len, &r), FWREL_EFORMAT);
    fill(&r);
    memset(r.version, 'x', sizeof(r.version)); /* no terminating NUL */
    assert_int_equal(fwrel_release_encode(&json, &len, &r), FWREL_EFORMAT);
    assert_string_equal(fwrel_error_last()->message, "release record: version is too long");
    /* A key id the decoder would refuse (not 64 lower-case hex) is not written either. */
    fill(&r);
    snprintf(r.sign_keys[0], sizeof(r.sign_keys[0]), "not-a-key-id");
    assert_int_equal(fwrel_release_encode(&json, &len, &r), FWREL_EFORMAT);
    assert_null(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_semver_order),
        cmocka_unit_test(test_semver_refused),
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_encode_refuses_what_decode_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
