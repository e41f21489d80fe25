/* test_hsm.c - pkcs11: URI parsing: every accepted attribute decoded, and each refusal with its
 * exact error code (pin-value is a usage error, everything else malformed input). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "fwrel/hsm.h"

static void test_full_uri(void **state)
{
    (void)state;
    fwrel_hsm_uri u;
    assert_int_equal(fwrel_hsm_uri_parse(&u,
                                         "pkcs11:token=fwrel%20test;manufacturer=SoftHSM%20project;"
                                         "serial=1a2b;model=SoftHSM%20v2;object=sb-slot0;id=%01%ff;"
                                         "type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&"
                                         "pin-source=file:/tmp/pin"),
                     0);
    assert_int_equal(u.has, FWREL_HSM_TOKEN | FWREL_HSM_MANUFACTURER | FWREL_HSM_SERIAL |
                                FWREL_HSM_MODEL | FWREL_HSM_OBJECT | FWREL_HSM_ID |
                                FWREL_HSM_MODULE | FWREL_HSM_PIN_SOURCE);
    assert_string_equal(u.token, "fwrel test");
    assert_string_equal(u.manufacturer, "SoftHSM project");
    assert_string_equal(u.serial, "1a2b");
    assert_string_equal(u.model, "SoftHSM v2");
    assert_string_equal(u.object, "sb-slot0");
    assert_int_equal(u.id_len, 2);
    assert_int_equal(u.id[0], 0x01);
    assert_int_equal(u.id[1], 0xff);
    assert_string_equal(u.module_path, "/usr/lib/softhsm/libsofthsm2.so");
    assert_string_equal(u.pin_source, "/tmp/pin");
}

static void test_minimal(void **state)
{
    (void)state;
    fwrel_hsm_uri u;
    assert_int_equal(fwrel_hsm_uri_parse(&u, "pkcs11:object=k"), 0);
    assert_int_equal(u.has, FWREL_HSM_OBJECT);
    assert_string_equal(u.object, "k");
    assert_int_equal(fwrel_hsm_uri_parse(&u, "pkcs11:id=%00"), 0);
    assert_int_equal(u.has, FWREL_HSM_ID);
    assert_int_equal(u.id_len, 1);
    assert_int_equal(fwrel_hsm_is_uri("pkcs11:object=k"), 1);
    assert_int_equal(fwrel_hsm_is_uri("key.pem"), 0);
    assert_int_equal(fwrel_hsm_is_uri(NULL), 0);
}

static void test_refusals(void **state)
{
    (void)state;
    static const char *bad[] = {
        "pkcs11:",
        "pkcs11:token=t",
        "key.pem",
        "pkcs11:object=k;",
        "pkcs11:;object=k",
        "pkcs11:object=k?",
        "pkcs11:object=k?module-path=/m&",
        "pkcs11:object",
        "pkcs11:=k",
        "pkcs11:object=k;object=j",
        "pkcs11:object=%4",
        "pkcs11:object=%zz",
        "pkcs11:object=a%00b",
        "pkcs11:object=a b",
        "pkcs11:id=",
        "pkcs11:object=k;type=public",
        "pkcs11:object=k;type=private;type=private",
        "pkcs11:object=k;slot-id=1",
        "pkcs11:object=k?module-path=relative.so",
        "pkcs11:object=k?module-name=softhsm2",
        "pkcs11:object=k?pin-source=/tmp/pin",
        "pkcs11:object=k?pin-source=file:relative",
        "pkcs11:serial=01234567890123456;object=k",
        "pkcs11:token=012345678901234567890123456789012;object=k",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fwrel_hsm_uri u;
        memset(&u, 0xa5, sizeof(u));
        if (fwrel_hsm_uri_parse(&u, bad[i]) != FWREL_EFORMAT)
            fail_msg("accepted or wrong code: %s", bad[i]);
        assert_int_equal(u.has, 0);
    }
}

static void test_pin_value_refused(void **state)
{
    (void)state;
    fwrel_hsm_uri u;
    assert_int_equal(fwrel_hsm_uri_parse(&u, "pkcs11:object=k?pin-value=1234"), FWREL_EUSAGE);
    assert_int_equal(u.has, 0);
}

static void test_too_long(void **state)
{
    (void)state;
    static char big[FWREL_HSM_URI_MAX + 16];
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "pkcs11:object=", 14);
    fwrel_hsm_uri u;
    assert_int_equal(fwrel_hsm_uri_parse(&u, big), FWREL_EFORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_uri), cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_refusals), cmocka_unit_test(test_pin_value_refused),
        cmocka_unit_test(test_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
