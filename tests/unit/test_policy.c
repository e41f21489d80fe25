/* test_policy.c - release policies: the examples load with the values they state; cross-checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "fwrel/error.h"
#include "fwrel/io.h"
#include "fwrel/policy.h"

static char *path_of(const char *name)
{
    static char p[1024];
    snprintf(p, sizeof(p), "%s/policies/%s", getenv("FWREL_SRC") ? getenv("FWREL_SRC") : ".",
             name);
    return p;
}

static void test_s3_example(void **state)
{
    (void)state;
    fwrel_policy *p = NULL;
    const char *path = path_of("esp32s3-sbv2-rsa-prod.yaml");
    assert_int_equal(fwrel_policy_load(&p, path), 0);
    uint8_t *text = NULL, md[32];
    size_t len = 0;
    assert_int_equal(fwrel_io_read_small(&text, &len, path, 1 << 20), 0);
    SHA256(text, len, md);
    free(text);
    assert_memory_equal(p->sha256, md, 32);
    assert_string_equal(p->product, "acme-thermostat");
    assert_string_equal(p->chip->name, "esp32s3");
    assert_int_equal(p->partition_size, 0x1e0000);
    assert_int_equal(p->scheme, FWREL_POLICY_SBV2_RSA3072);
    assert_int_equal(p->nslots, 3);
    assert_int_equal(p->efuse_bits, 16);
    assert_int_equal(p->min_secure_version, 1);
    assert_true(p->has_image_key && p->has_hmac_key && p->has_flash_key);
    assert_int_equal(p->napprovers, 3);
    assert_null(fwrel_policy_channel_get(p, "dev"));
    const fwrel_policy_channel *prod = fwrel_policy_channel_get(p, "prod");
    const fwrel_policy_channel *beta = fwrel_policy_channel_get(p, "beta");
    assert_non_null(prod);
    assert_non_null(beta);
    assert_int_equal(prod->threshold, 2);
    assert_int_equal(prod->nsigners, 3);
    assert_int_equal(prod->approvals_required, 2);
    assert_int_equal(prod->validity, 90u * 86400u);
    assert_int_equal(prod->sign_slots, 1u);
    assert_int_equal(beta->approvals_required, 1);
    assert_int_equal(beta->validity, 30u * 86400u);
    const fwrel_policy_key *k = fwrel_policy_key_get(p, "mf-device");
    assert_non_null(k);
    assert_int_equal(k->purpose, FWREL_PURPOSE_MANIFEST_ENCRYPT);
    assert_int_equal(k->alg, FWREL_ALG_X25519);
    assert_null(fwrel_policy_key_get(p, "nope"));
    fwrel_policy_free(p);
}

static const char base[] =
    "fwrel-policy: 1\n"
    "product: p\n"
    "chip: esp32c6\n"
    "device_types: [d]\n"
    "partition_size: 0x100000\n"
    "secure_boot: {scheme: sbv2-ecdsa256, slots: [{slot: 0, key: sb}]}\n"
    "anti_rollback: {min_secure_version: 0, efuse_bits: 16}\n"
    "manifest: {signers: [ms], threshold: 1, recipients: [me], validity: %s}\n"
    "channels: {dev: {allow_no_approvals: true}}\n"
    "release: {repository: r, tag: \"%s\"}\n"
    "audit: {log: a.jsonl}\n"
    "keys:\n"
    "  sb: {purpose: secure-boot, alg: ecdsa256%s}\n"
    "  ms: {purpose: manifest-sign, alg: ed25519}\n"
    "  me: {purpose: manifest-encrypt, alg: x25519}\n";

static int load(const char *validity, const char *tag, const char *extra, fwrel_policy **out)
{
    char text[2048];
    int n = snprintf(text, sizeof(text), base, validity, tag, extra);
    return fwrel_policy_parse(out, (const uint8_t *)text, (size_t)n);
}

static void test_cross_checks(void **state)
{
    (void)state;
    fwrel_policy *p = NULL;
    assert_int_equal(load("12h", "{product}/{channel}/v{version}", "", &p), 0);
    assert_int_equal(p->channels[FWREL_CHANNEL_DEV].validity, 12u * 3600u);
    fwrel_policy_free(p);
    /* A pinned id is kept in lower case. */
    assert_int_equal(load("1d", "{product}/{channel}/v{version}",
                          ", id: ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
                          &p),
                     0);
    assert_string_equal(p->keys[0].id,
                        "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    fwrel_policy_free(p);
    static const struct {
        const char *validity, *tag, *extra, *msg;
    } bad[] = {
        {"0d", "{product}/{channel}/v{version}", "", "validity must be a number"},
        {"3651d", "{product}/{channel}/v{version}", "", "validity must be"},
        {"5m", "{product}/{channel}/v{version}", "", "validity must be a number"},
        {"1d", "{product}/v{version}", "", "tag must contain {channel}"},
        {"1d", "{product}/{channel}/v{version}/{x}", "", "unknown placeholder"},
        {"1d", "{product}/{channel}/v{version}~1", "", "character git refuses"},
        {"1d", "{product}/{channel}/v{version}", ", id: 12", "id must be 64 hex digits"},
        {"1d", "{product}/{channel}/v{version}", ", hsm: /dev/x", "hsm must be a pkcs11: URI"},
        {"1d", "{product}/{channel}/v{version}", ", color: red", "unknown key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = NULL;
        assert_int_equal(load(bad[i].validity, bad[i].tag, bad[i].extra, &p), FWREL_EFORMAT);
        assert_null(p);
        if (strstr(fwrel_error_last()->message, bad[i].msg) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, fwrel_error_last()->message, bad[i].msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s3_example),
        cmocka_unit_test(test_cross_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
