/* test_sbv2.c - SBv2 blocks: key digests against espsecure's, build/parse/verify round trips
 * for every scheme, and the signing refusals with their codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fwrel/sbv2.h"
#include "testimg.h"
#include "testutil.h"

static void test_key_digests_match_espsecure(void **state)
{
    (void)state;
    static const char *keys[] = {"rsa3072-a",  "rsa3072-b",  "rsa3072-c", "ecdsa256-a",
                                 "ecdsa256-b", "ecdsa384-a", "ecdsa192-a"};
    if (testutil_vectors() == NULL) {
        print_message("skipped: no vectors\n");
        skip();
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char rel[128];
        fwrel_pkey *priv = NULL, *pub = NULL;
        fwrel_pass_src none = {0};
        uint8_t d1[32], d2[32];
        size_t len;
        snprintf(rel, sizeof(rel), "keys/test-sbv2-%s.pem", keys[i]);
        assert_int_equal(fwrel_key_load_private(&priv, testutil_vector_path(rel), &none), 0);
        snprintf(rel, sizeof(rel), "keys/test-sbv2-%s.pub.pem", keys[i]);
        assert_int_equal(fwrel_key_load_public(&pub, testutil_vector_path(rel), 0), 0);
        snprintf(rel, sizeof(rel), "keys/test-sbv2-%s.pubkey-digest.bin", keys[i]);
        uint8_t *want = testutil_read(testutil_vector_path(rel), &len);
        assert_int_equal(len, 32);
        assert_int_equal(fwrel_sbv2_key_digest(d1, priv), 0);
        assert_int_equal(fwrel_sbv2_key_digest(d2, pub), 0);
        assert_memory_equal(d1, want, 32);
        assert_memory_equal(d2, want, 32);
        free(want);
        fwrel_key_free(priv);
        fwrel_key_free(pub);
    }
}

static void test_block_round_trip(void **state)
{
    (void)state;
    int types[] = {FWREL_KEY_RSA3072, FWREL_KEY_ECDSA192, FWREL_KEY_ECDSA256, FWREL_KEY_ECDSA384};
    for (size_t i = 0; i < 4; i++) {
        fwrel_pkey *key = NULL, *other = NULL, *embedded = NULL;
        uint8_t sector[FWREL_SBV2_SECTOR_LEN], digest[48], kd[32];
        size_t dlen = types[i] == FWREL_KEY_ECDSA384 ? 48 : 32;
        fwrel_sbv2_sector sec;
        memset(sector, 0xFF, sizeof(sector));
        memset(digest, 0x5A, sizeof(digest));
        assert_int_equal(fwrel_key_generate(&key, types[i]), 0);
        assert_int_equal(fwrel_key_generate(&other, types[i]), 0);
        assert_int_equal(fwrel_sbv2_block_build(sector, key, digest, dlen, NULL, 0), 0);
        fwrel_sbv2_parse_sector(&sec, sector);
        assert_int_equal(sec.leading_valid, 1);
        assert_true(sec.blocks[0].valid);
        assert_false(sec.blocks[1].present);
        assert_int_equal(sec.blocks[0].image_digest_len, dlen);
        assert_int_equal(fwrel_sbv2_key_digest(kd, key), 0);
        assert_memory_equal(kd, sec.blocks[0].key_digest, 32);
        assert_int_equal(fwrel_sbv2_block_key(&embedded, &sec.blocks[0]), 0);
        assert_int_equal(fwrel_sbv2_block_verify(&sec.blocks[0], digest, dlen, NULL), 0);
        assert_int_equal(fwrel_sbv2_block_verify(&sec.blocks[0], digest, dlen, key), 0);
        assert_int_equal(fwrel_sbv2_block_verify(&sec.blocks[0], digest, dlen, other),
                         FWREL_EVERIFY);
        digest[0] ^= 1;
        assert_int_equal(fwrel_sbv2_block_verify(&sec.blocks[0], digest, dlen, NULL),
                         FWREL_EVERIFY);
        /* A flipped signature byte with the CRC fixed, and a broken CRC. */
        sector[dlen == 48 ? 150 : (types[i] == FWREL_KEY_RSA3072 ? 900 : 102)] ^= 1;
        fwrel_sbv2_parse_sector(&sec, sector);
        assert_false(sec.blocks[0].valid);
        fwrel_key_free(key);
        fwrel_key_free(other);
        fwrel_key_free(embedded);
    }
}

static void test_sign_refusals(void **state)
{
    (void)state;
    const char *dir = testutil_tmpdir();
    char esp32[256], c2[256], s3[256], out[256], three[256];
    fwrel_pkey *rsa = NULL, *ec = NULL;
    snprintf(esp32, sizeof(esp32), "%s/e.bin", dir);
    snprintf(c2, sizeof(c2), "%s/c2.bin", dir);
    snprintf(s3, sizeof(s3), "%s/s3.bin", dir);
    snprintf(out, sizeof(out), "%s/out.bin", dir);
    snprintf(three, sizeof(three), "%s/three.bin", dir);
    testimg_opts oe = {.chip = "esp32"}, oc2 = {.chip = "esp32c2"}, os3 = {.chip = "esp32s3"};
    assert_int_equal(testimg_write(esp32, &oe), 0);
    assert_int_equal(testimg_write(c2, &oc2), 0);
    assert_int_equal(testimg_write(s3, &os3), 0);
    assert_int_equal(fwrel_key_generate(&rsa, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_key_generate(&ec, FWREL_KEY_ECDSA256), 0);
    fwrel_sbv2_sign_opts so = {.count = 1, .signers = {{ec, NULL, 0}}};
    assert_int_equal(fwrel_sbv2_sign(esp32, out, 0, &so, NULL), FWREL_EKEY);
    assert_non_null(strstr(fwrel_error_last()->message, "esp32 does not accept ECDSA P-256"));
    so.signers[0].key = rsa;
    assert_int_equal(fwrel_sbv2_sign(c2, out, 0, &so, NULL), FWREL_EKEY);
    so.count = 2;
    so.signers[1].key = rsa;
    assert_int_equal(fwrel_sbv2_sign(esp32, out, 0, &so, NULL), FWREL_EKEY);
    assert_non_null(strstr(fwrel_error_last()->message, "checks only 1 signature block"));
    assert_int_equal(access(out, F_OK), -1);
    so.count = 3;
    so.signers[2].key = rsa;
    assert_int_equal(fwrel_sbv2_sign(s3, three, 0, &so, NULL), 0);
    so.count = 1;
    so.append = 1;
    assert_int_equal(fwrel_sbv2_sign(three, out, 0, &so, NULL), FWREL_EUSAGE);
    assert_non_null(strstr(fwrel_error_last()->message, "Up to 3 signature blocks"));
    /* An external signature that does not verify. */
    uint8_t junk[384] = {1};
    so.append = 0;
    so.signers[0].sig = junk;
    so.signers[0].sig_len = sizeof(junk);
    assert_int_equal(fwrel_sbv2_sign(s3, out, 0, &so, NULL), FWREL_EVERIFY);
    assert_int_equal(access(out, F_OK), -1);
    assert_int_equal(testutil_count_entries(dir), 4);
    fwrel_key_free(rsa);
    fwrel_key_free(ec);
    testutil_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_digests_match_espsecure),
        cmocka_unit_test(test_block_round_trip),
        cmocka_unit_test(test_sign_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
