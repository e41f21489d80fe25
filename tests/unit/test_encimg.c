/* test_encimg.c - esp_encrypted_img: every vector decrypts to its source image, every tampered
 * one is refused with its code and leaves nothing; round trips for both schemes and many sizes;
 * the header layout; bounds checked before crypto; every flipped field refused, nothing written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/rand.h>

#include "fixture.h"
#include "fwrel/encimg.h"
#include "testutil.h"
#include "util.h"

/* Keys made once: RSA-3072 and P-256 pairs (encryption uses the public halves, loaded from
 * PEM files as a release host would), a second pair of each for wrong-key cases, and keys
 * esp_encrypted_img refuses. */
static struct {
    char dir[64];
    fwrel_pkey *rsa, *rsa_pub, *rsa_other, *ec, *ec_pub, *ec_other, *rsa2048, *p384, *ed25519;
} K;

static const char *tmp(const char *name)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", K.dir, name);
    return path;
}

static int setup(void **state)
{
    (void)state;
    snprintf(K.dir, sizeof(K.dir), "%s", testutil_tmpdir());
    if (fwrel_key_generate(&K.rsa, FWREL_KEY_RSA3072) != 0 ||
        fwrel_key_generate(&K.rsa_other, FWREL_KEY_RSA3072) != 0 ||
        fwrel_key_generate(&K.ec, FWREL_KEY_ECDSA256) != 0 ||
        fwrel_key_generate(&K.ec_other, FWREL_KEY_ECDSA256) != 0 ||
        fwrel_key_generate(&K.p384, FWREL_KEY_ECDSA384) != 0)
        return -1;
    if (fwrel_key_write_public(K.rsa, tmp("rsa.pub"), 0) != 0 ||
        fwrel_key_load_public(&K.rsa_pub, tmp("rsa.pub"), 0) != 0 ||
        fwrel_key_write_public(K.ec, tmp("ec.pub"), 0) != 0 ||
        fwrel_key_load_public(&K.ec_pub, tmp("ec.pub"), 0) != 0)
        return -1;
    unlink(tmp("rsa.pub"));
    unlink(tmp("ec.pub"));
    K.rsa2048 = EVP_RSA_gen(2048);
    K.ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return K.rsa2048 == NULL || K.ed25519 == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    fwrel_pkey *all[] = {K.rsa,      K.rsa_pub, K.rsa_other, K.ec,     K.ec_pub,
                         K.ec_other, K.rsa2048, K.p384,      K.ed25519};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        fwrel_key_free(all[i]);
    testutil_rmtree(K.dir);
    return 0;
}

static uint8_t *random_bytes(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    assert_int_equal(RAND_bytes(p, (int)n), 1);
    return p;
}

/* Encrypt memory with the library (through a real fwrel_out) and read the file back. */
static uint8_t *encrypt_mem(size_t *enc_len, const uint8_t *pt, size_t n, const fwrel_pkey *key)
{
    fwrel_src src;
    fwrel_out *out = NULL;
    fwrel_src_mem(&src, pt, n);
    assert_int_equal(fwrel_out_open(&out, tmp("enc.bin"), 0, 0644), 0);
    assert_int_equal(fwrel_encimg_encrypt(out, &src, key), 0);
    assert_int_equal(fwrel_out_commit(out), 0);
    uint8_t *enc = testutil_read(tmp("enc.bin"), enc_len);
    assert_non_null(enc);
    unlink(tmp("enc.bin"));
    assert_int_equal(*enc_len, n + FWREL_ENCIMG_HEADER_LEN);
    return enc;
}

/*
 * Decrypt memory to K.dir/dec.bin. On success *pt receives the plaintext; on failure the
 * directory must be empty: no output, no temporary file.
 */
static int decrypt_mem(uint8_t **pt, size_t *pt_len, const uint8_t *data, size_t n,
                       const fwrel_pkey *key)
{
    fwrel_src src;
    fwrel_src_mem(&src, data, n);
    int error = fwrel_encimg_decrypt(tmp("dec.bin"), 0, &src, key);
    if (error) {
        assert_int_equal(fwrel_error_last()->code, error);
        assert_int_equal(testutil_count_entries(K.dir), 0);
        return error;
    }
    struct stat st;
    assert_int_equal(stat(tmp("dec.bin"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    size_t len;
    uint8_t *p = testutil_read(tmp("dec.bin"), &len);
    assert_non_null(p);
    if (pt_len != NULL)
        *pt_len = len;
    unlink(tmp("dec.bin"));
    assert_int_equal(testutil_count_entries(K.dir), 0);
    if (pt != NULL)
        *pt = p;
    else
        free(p);
    return 0;
}

/* Decryption must fail with code, and the message must start with want (when not NULL). */
static void expect_refused(const uint8_t *data, size_t n, const fwrel_pkey *key, int code,
                           const char *want)
{
    int error = decrypt_mem(NULL, NULL, data, n, key);
    if (error != code)
        fail_msg("expected %d, got %d: %s", code, error, fwrel_error_last()->message);
    if (want != NULL && strncmp(fwrel_error_last()->message, want, strlen(want)) != 0)
        fail_msg("message \"%s\", expected \"%s...\"", fwrel_error_last()->message, want);
}

static const char TAG_MISMATCH[] = "GCM tag mismatch: the image is corrupt or the key is wrong";
static const char UNWRAP[] = "cannot unwrap the image key: wrong key?";

static int is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/* ---- header ---- */

static void test_header_parse_build(void **state)
{
    (void)state;
    uint8_t buf[FWREL_ENCIMG_HEADER_LEN], again[FWREL_ENCIMG_HEADER_LEN];
    fwrel_encimg_header h;
    assert_int_equal(RAND_bytes(buf, sizeof(buf)), 1);
    fwrel_put_le32(buf, FWREL_ENCIMG_MAGIC);
    fwrel_put_le32(buf + 404, 0x01020304);
    assert_int_equal(fwrel_encimg_parse_header(&h, buf), 0);
    assert_int_equal(h.magic, FWREL_ENCIMG_MAGIC);
    assert_int_equal(h.size, 0x01020304);
    assert_memory_equal(h.key_field, buf + 4, 384);
    assert_memory_equal(h.iv, buf + 388, 16);
    assert_memory_equal(h.tag, buf + 408, 16);
    /* The reserved bytes are not checked (the device does not), but reported. */
    assert_memory_equal(h.reserved, buf + 424, 88);
    fwrel_encimg_build_header(again, &h);
    assert_memory_equal(again, buf, sizeof(buf));
    /* Bytes CF B6 88 07: the magic is little-endian. */
    assert_memory_equal(buf, "\xcf\xb6\x88\x07", 4);
    buf[3] ^= 0x80;
    assert_int_equal(fwrel_encimg_parse_header(&h, buf), FWREL_EFORMAT);
    assert_string_equal(fwrel_error_last()->message,
                        "Magic Verification Failed (0x8788b6cf, expected 0x0788b6cf)");
}

static void test_key_scheme(void **state)
{
    (void)state;
    int scheme = 0;
    assert_int_equal(fwrel_encimg_key_scheme(&scheme, K.rsa_pub), 0);
    assert_int_equal(scheme, FWREL_ENCIMG_RSA3072);
    assert_int_equal(fwrel_encimg_key_scheme(&scheme, K.ec_pub), 0);
    assert_int_equal(scheme, FWREL_ENCIMG_ECC256);
    fwrel_pkey *bad[] = {K.rsa2048, K.p384, K.ed25519};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(fwrel_encimg_key_scheme(&scheme, bad[i]), FWREL_EKEY);
        assert_non_null(strstr(fwrel_error_last()->message,
                               "esp_encrypted_img takes an RSA-3072 or an EC P-256 key"));
    }
}

/* ---- encryption ---- */

static void test_round_trips(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 15, 16, 65537, (1u << 20) + 3};
    const fwrel_pkey *pub[] = {K.rsa_pub, K.ec_pub}, *priv[] = {K.rsa, K.ec};
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            size_t n = sizes[i], enc_len, pt_len;
            uint8_t *pt = random_bytes(n), *enc = encrypt_mem(&enc_len, pt, n, pub[s]), *dec;
            fwrel_encimg_header h;
            /* docs/esp-formats.md §4.1's layout, zeros where esp_enc_img_gen.py writes them. */
            assert_int_equal(fwrel_encimg_parse_header(&h, enc), 0);
            assert_int_equal(h.size, n);
            assert_true(is_zero(enc + 424, 88));
            assert_false(is_zero(enc + 388, 16)); /* IV */
            if (s == 1) {
                fwrel_pkey *eph = NULL;
                assert_int_equal(fwrel_key_parse_public(&eph, enc + 4, 64, 1), 0);
                fwrel_key_free(eph);
                assert_false(is_zero(enc + 68, 32)); /* salt */
                assert_true(is_zero(enc + 100, 288));
            }
            assert_int_equal(decrypt_mem(&dec, &pt_len, enc, enc_len, priv[s]), 0);
            assert_int_equal(pt_len, n);
            if (n > 0)
                assert_memory_equal(dec, pt, n);
            free(dec);
            free(enc);
            free(pt);
        }
    }
}

static void test_fresh_key_iv_salt(void **state)
{
    (void)state;
    uint8_t pt[100] = {0};
    const fwrel_pkey *pub[] = {K.rsa_pub, K.ec_pub};
    for (size_t s = 0; s < 2; s++) {
        size_t l1, l2;
        uint8_t *a = encrypt_mem(&l1, pt, sizeof(pt), pub[s]);
        uint8_t *b = encrypt_mem(&l2, pt, sizeof(pt), pub[s]);
        assert_memory_not_equal(a + 4, b + 4, 32);     /* wrapped key / ephemeral X */
        assert_memory_not_equal(a + 388, b + 388, 16); /* IV */
        assert_memory_not_equal(a + 408, b + 408, 16); /* tag */
        assert_memory_not_equal(a + 512, b + 512, sizeof(pt));
        if (s == 1)
            assert_memory_not_equal(a + 68, b + 68, 32); /* salt */
        free(a);
        free(b);
    }
}

/* Reliability matrix CRY-02: no repeated IV (or wrapped key) over many encryptions. The
 * sessions go one after the other into a single output, so each header sits at a new offset. */
static void test_no_repeated_iv(void **state)
{
    (void)state;
    enum { N = 1000 };
    fwrel_out *out = NULL;
    fwrel_encimg_enc *enc = NULL;
    size_t len;
    assert_int_equal(fwrel_out_open(&out, tmp("many.bin"), 0, 0644), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(fwrel_encimg_enc_begin(&enc, out, K.rsa_pub, 0), 0);
        assert_int_equal(fwrel_encimg_enc_finish(enc), 0);
    }
    assert_int_equal(fwrel_out_commit(out), 0);
    uint8_t *all = testutil_read(tmp("many.bin"), &len);
    unlink(tmp("many.bin"));
    assert_int_equal(len, (size_t)N * 512);
    for (int i = 0; i < N; i++) {
        const uint8_t *a = all + (size_t)i * 512;
        assert_int_equal(fwrel_le32(a), FWREL_ENCIMG_MAGIC);
        for (int j = 0; j < i; j++) {
            const uint8_t *b = all + (size_t)j * 512;
            assert_memory_not_equal(a + 388, b + 388, 16);
            assert_memory_not_equal(a + 4, b + 4, 384);
        }
    }
    /* Each is a valid empty image: spot-check the first and the last. */
    assert_int_equal(decrypt_mem(NULL, NULL, all, 512, K.rsa), 0);
    assert_int_equal(decrypt_mem(NULL, NULL, all + (size_t)(N - 1) * 512, 512, K.rsa), 0);
    free(all);
}

static void test_streaming_session(void **state)
{
    (void)state;
    static const size_t chunks[] = {1, 7, 4096, 65535, 65537, 1};
    size_t n = 0;
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
        n += chunks[i];
    uint8_t *pt = random_bytes(n), *dec = NULL;
    fwrel_out *out = NULL;
    fwrel_encimg_enc *enc = NULL;
    size_t len;

    /* The header at a non-zero offset of the output: the tag goes into it, not at offset 408. */
    assert_int_equal(fwrel_out_open(&out, tmp("s.bin"), 0, 0644), 0);
    assert_int_equal(fwrel_out_write(out, "prefix", 6), 0);
    assert_int_equal(fwrel_encimg_enc_begin(&enc, out, K.ec_pub, n), 0);
    for (size_t i = 0, off = 0; i < sizeof(chunks) / sizeof(chunks[0]); off += chunks[i++])
        assert_int_equal(fwrel_encimg_enc_update(enc, pt + off, chunks[i]), 0);
    assert_int_equal(fwrel_encimg_enc_update(enc, pt, 1), FWREL_EUSAGE); /* one too many */
    assert_int_equal(fwrel_encimg_enc_finish(enc), 0);
    assert_int_equal(fwrel_out_commit(out), 0);
    uint8_t *file = testutil_read(tmp("s.bin"), &len);
    unlink(tmp("s.bin"));
    assert_int_equal(len, 6 + 512 + n);
    assert_false(is_zero(file + 6 + 408, 16));
    assert_int_equal(decrypt_mem(&dec, &len, file + 6, len - 6, K.ec), 0);
    assert_int_equal(len, n);
    assert_memory_equal(dec, pt, n);
    free(dec);
    free(file);

    /* Fewer bytes than announced: finish refuses (and frees the session). */
    assert_int_equal(fwrel_out_open(&out, tmp("s.bin"), 0, 0644), 0);
    assert_int_equal(fwrel_encimg_enc_begin(&enc, out, K.rsa_pub, 10), 0);
    assert_int_equal(fwrel_encimg_enc_update(enc, pt, 9), 0);
    assert_int_equal(fwrel_encimg_enc_finish(enc), FWREL_EUSAGE);
    assert_string_equal(fwrel_error_last()->message, "9 bytes encrypted, 10 announced");
    fwrel_out_abort(out);

    /* Refusals before anything is written. */
    assert_int_equal(fwrel_out_open(&out, tmp("s.bin"), 0, 0644), 0);
    assert_int_equal(fwrel_encimg_enc_begin(&enc, out, K.rsa_pub, (uint64_t)UINT32_MAX + 1),
                     FWREL_EFORMAT);
    assert_null(enc);
    assert_int_equal(fwrel_encimg_enc_begin(&enc, out, K.rsa2048, 10), FWREL_EKEY);
    assert_null(enc);
    assert_int_equal(fwrel_out_size(out), 0);
    fwrel_out_abort(out);
    fwrel_encimg_enc_free(NULL);
    assert_int_equal(testutil_count_entries(K.dir), 0);
    free(pt);
}

/* Feed n bytes of pt to enc in pieces of 100003 bytes; the first error, or 0. */
static int feed(fwrel_encimg_enc *enc, const uint8_t *pt, size_t n)
{
    for (size_t off = 0; off < n; off += 100003) {
        int error = fwrel_encimg_enc_update(enc, pt + off, n - off < 100003 ? n - off : 100003);
        if (error)
            return error;
    }
    return 0;
}

/*
 * Sessions of 1 MiB and more encrypt on a thread of their own: a round trip through a streamed
 * output; a write failing on that thread comes back to the caller as an output error, and a
 * session abandoned midway leaves nothing.
 */
static void test_relay_thread(void **state)
{
    (void)state;
    size_t n = (3u << 20) + 12345, len;
    uint8_t *pt = random_bytes(n), *dec = NULL;
    fwrel_out *out = NULL;
    fwrel_encimg_enc *enc = NULL;

    assert_int_equal(fwrel_out_open(&out, tmp("r.bin"), FWREL_OUT_STREAM, 0644), 0);
    assert_int_equal(fwrel_encimg_enc_begin(&enc, out, K.rsa_pub, n), 0);
    assert_int_equal(feed(enc, pt, n), 0);
    assert_int_equal(fwrel_encimg_enc_finish(enc), 0);
    assert_int_equal(fwrel_out_commit(out), 0);
    uint8_t *file = testutil_read(tmp("r.bin"), &len);
    unlink(tmp("r.bin"));
    assert_int_equal(len, 512 + n);
    assert_int_equal(decrypt_mem(&dec, &len, file, len, K.rsa), 0);
    assert_int_equal(len, n);
    assert_memory_equal(dec, pt, n);
    free(dec);
    free(file);

    /* The file size limit makes the writes past 1 MiB fail (EFBIG, the signal ignored). */
    struct rlimit old, small;
    void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 1u << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    assert_int_equal(fwrel_out_open(&out, tmp("r.bin"), FWREL_OUT_STREAM, 0644), 0);
    assert_int_equal(fwrel_encimg_enc_begin(&enc, out, K.ec_pub, n), 0);
    int error = feed(enc, pt, n);
    if (error == 0)
        error = fwrel_encimg_enc_finish(enc);
    else
        fwrel_encimg_enc_free(enc);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, was);
    assert_int_equal(error, FWREL_EIO);
    assert_int_equal(fwrel_error_last()->about, FWREL_ABOUT_OUTPUT);
    assert_string_equal(fwrel_error_last()->message, "write failed: File too large");
    fwrel_out_abort(out);

    /* Abandoned with work queued. */
    assert_int_equal(fwrel_out_open(&out, tmp("r.bin"), FWREL_OUT_STREAM, 0644), 0);
    assert_int_equal(fwrel_encimg_enc_begin(&enc, out, K.rsa_pub, n), 0);
    assert_int_equal(feed(enc, pt, 2u << 20), 0);
    fwrel_encimg_enc_free(enc);
    fwrel_out_abort(out);
    assert_int_equal(testutil_count_entries(K.dir), 0);
    free(pt);
}

static void test_refused_keys_for_encryption(void **state)
{
    (void)state;
    uint8_t pt[16] = {0};
    fwrel_pkey *bad[] = {K.rsa2048, K.p384, K.ed25519};
    for (size_t i = 0; i < 3; i++) {
        fwrel_src src;
        fwrel_out *out = NULL;
        fwrel_src_mem(&src, pt, sizeof(pt));
        assert_int_equal(fwrel_out_open(&out, tmp("x.enc"), 0, 0644), 0);
        assert_int_equal(fwrel_encimg_encrypt(out, &src, bad[i]), FWREL_EKEY);
        assert_int_equal(fwrel_out_size(out), 0);
        fwrel_out_abort(out);
    }
    assert_string_equal(fwrel_error_last()->message,
                        "esp_encrypted_img takes an RSA-3072 or an EC P-256 key, not ED25519");
    assert_int_equal(testutil_count_entries(K.dir), 0);
}

/* ---- decryption: bounds, tampering, keys ---- */

static uint8_t *sample(size_t *len, const fwrel_pkey *pub, size_t n)
{
    uint8_t *pt = random_bytes(n), *enc = encrypt_mem(len, pt, n, pub);
    free(pt);
    return enc;
}

static void test_bounds_before_crypto(void **state)
{
    (void)state;
    size_t len;
    uint8_t *enc = sample(&len, K.rsa_pub, 1000), *copy = malloc(len + 1);
    memcpy(copy, enc, len);
    /* Size checks come before the key is even looked at: RSA-2048 gets a format error. */
    fwrel_put_le32(copy + 404, 0xFFFFFFFFu);
    expect_refused(copy, len, K.rsa2048, FWREL_EFORMAT,
                   "truncated: the header announces 4294967295 bytes of image, 1000 follow it");
    expect_refused(copy, len, K.rsa, FWREL_EFORMAT, "truncated");
    fwrel_put_le32(copy + 404, 1000);
    expect_refused(copy, len - 1, K.rsa, FWREL_EFORMAT,
                   "truncated: the header announces 1000 bytes of image, 999 follow it");
    copy[len] = 0;
    expect_refused(copy, len + 1, K.rsa2048, FWREL_EFORMAT,
                   "1 bytes after the 1000-byte image (the device refuses them)");
    fwrel_put_le32(copy + 404, 1001); /* the size field one too big: truncated */
    expect_refused(copy, len, K.rsa, FWREL_EFORMAT, "truncated");
    expect_refused(copy, 511, K.rsa, FWREL_EFORMAT, "511 bytes: shorter than the 512-byte header");
    expect_refused(copy, 0, K.rsa, FWREL_EFORMAT, "0 bytes: shorter than the 512-byte header");
    /* Header only, size 0 but the tag of a 1000-byte image: the tag check fails. */
    fwrel_put_le32(copy + 404, 0);
    expect_refused(copy, 512, K.rsa, FWREL_EVERIFY, TAG_MISMATCH);
    /* A magic error comes before the size (the device reads the magic first). */
    copy[0] ^= 1;
    expect_refused(copy, len, K.rsa2048, FWREL_EFORMAT, "Magic Verification Failed");
    free(copy);
    free(enc);
}

struct flip {
    size_t off; /* from the start; (size_t)-1: the last byte */
    int code;
    const char *message;
};

static void flips(const fwrel_pkey *pub, const fwrel_pkey *priv, const struct flip *f, size_t nf)
{
    size_t len;
    uint8_t *enc = sample(&len, pub, 70000);
    for (size_t i = 0; i < nf; i++) {
        size_t off = f[i].off == (size_t)-1 ? len - 1 : f[i].off;
        enc[off] ^= 0x01;
        if (f[i].code == 0)
            assert_int_equal(decrypt_mem(NULL, NULL, enc, len, priv), 0);
        else
            expect_refused(enc, len, priv, f[i].code, f[i].message);
        enc[off] ^= 0x01;
    }
    assert_int_equal(decrypt_mem(NULL, NULL, enc, len, priv), 0);
    free(enc);
}

static void test_tampered_rsa(void **state)
{
    (void)state;
    static const struct flip f[] = {
        {0, FWREL_EFORMAT, "Magic Verification Failed"},
        {4, FWREL_EVERIFY, UNWRAP},   /* wrapped key, first byte */
        {100, FWREL_EVERIFY, UNWRAP}, /* wrapped key */
        {387, FWREL_EVERIFY, UNWRAP}, /* wrapped key, last byte */
        {388, FWREL_EVERIFY, TAG_MISMATCH},
        {403, FWREL_EVERIFY, TAG_MISMATCH}, /* IV, last byte */
        {404, FWREL_EFORMAT, "truncated"},  /* size field 70001 */
        {408, FWREL_EVERIFY, TAG_MISMATCH},
        {423, FWREL_EVERIFY, TAG_MISMATCH},
        {512, FWREL_EVERIFY, TAG_MISMATCH},
        {40000, FWREL_EVERIFY, TAG_MISMATCH},
        {(size_t)-1, FWREL_EVERIFY, TAG_MISMATCH},
        {424, 0, NULL}, /* reserved: not authenticated, not checked by the device */
        {511, 0, NULL},
    };
    flips(K.rsa_pub, K.rsa, f, sizeof(f) / sizeof(f[0]));
}

static void test_tampered_ecc(void **state)
{
    (void)state;
    static const struct flip f[] = {
        {0, FWREL_EFORMAT, "Magic Verification Failed"},
        {4, FWREL_EVERIFY, UNWRAP},        /* ephemeral X: no longer on the curve */
        {67, FWREL_EVERIFY, UNWRAP},       /* ephemeral Y */
        {68, FWREL_EVERIFY, TAG_MISMATCH}, /* salt */
        {99, FWREL_EVERIFY, TAG_MISMATCH},
        {390, FWREL_EVERIFY, TAG_MISMATCH},
        {410, FWREL_EVERIFY, TAG_MISMATCH},
        {700, FWREL_EVERIFY, TAG_MISMATCH},
        {(size_t)-1, FWREL_EVERIFY, TAG_MISMATCH},
        {100, 0, NULL}, /* the 288 bytes after the salt: not used by the device */
        {387, 0, NULL},
        {500, 0, NULL},
    };
    flips(K.ec_pub, K.ec, f, sizeof(f) / sizeof(f[0]));
}

static void test_wrong_keys(void **state)
{
    (void)state;
    size_t rl, el;
    uint8_t *r = sample(&rl, K.rsa_pub, 5000), *e = sample(&el, K.ec_pub, 5000);
    expect_refused(r, rl, K.rsa_other, FWREL_EVERIFY, UNWRAP);
    expect_refused(r, rl, K.ec, FWREL_EVERIFY, UNWRAP);
    assert_non_null(strstr(fwrel_error_last()->message, "no P-256 point"));
    expect_refused(e, el, K.ec_other, FWREL_EVERIFY, TAG_MISMATCH);
    expect_refused(e, el, K.rsa, FWREL_EVERIFY, UNWRAP);
    /* Keys esp_encrypted_img does not use, and public halves, which cannot decrypt. */
    expect_refused(r, rl, K.rsa2048, FWREL_EKEY, "esp_encrypted_img takes");
    expect_refused(e, el, K.p384, FWREL_EKEY, "esp_encrypted_img takes");
    expect_refused(r, rl, K.rsa_pub, FWREL_EKEY, NULL);
    expect_refused(e, el, K.ec_pub, FWREL_EKEY, NULL);
    free(r);
    free(e);
}

static void test_output_rules(void **state)
{
    (void)state;
    size_t len, got;
    uint8_t *enc = sample(&len, K.ec_pub, 300), *prefixed = malloc(len + 7);
    fwrel_src src;

    /* An existing destination is kept unless FWREL_OUT_FORCE. */
    assert_int_equal(fwrel_io_write_file(tmp("dec.bin"), "old", 3, 0, 0644), 0);
    fwrel_src_mem(&src, enc, len);
    assert_int_equal(fwrel_encimg_decrypt(tmp("dec.bin"), 0, &src, K.ec), FWREL_EIO);
    assert_int_equal(fwrel_error_last()->about, FWREL_ABOUT_OUTPUT);
    uint8_t *old = testutil_read(tmp("dec.bin"), &got);
    assert_int_equal(got, 3);
    assert_memory_equal(old, "old", 3);
    free(old);
    assert_int_equal(testutil_count_entries(K.dir), 1);
    fwrel_src_mem(&src, enc, len);
    assert_int_equal(fwrel_encimg_decrypt(tmp("dec.bin"), FWREL_OUT_FORCE, &src, K.ec), 0);
    assert_int_equal(unlink(tmp("dec.bin")), 0);

    /* The image is read from the source's current position to its end. */
    memcpy(prefixed, "garbage", 7);
    memcpy(prefixed + 7, enc, len);
    fwrel_src_mem(&src, prefixed, len + 7);
    assert_int_equal(fwrel_src_seek(&src, 7), 0);
    assert_int_equal(fwrel_encimg_decrypt(tmp("dec.bin"), 0, &src, K.ec), 0);
    assert_int_equal(unlink(tmp("dec.bin")), 0);
    free(prefixed);
    free(enc);
}

/* ---- the shared vectors (esp_enc_img_gen 2.7.1) ---- */

static fwrel_pkey *vector_key(const char *rel)
{
    fwrel_pkey *key = NULL;
    fwrel_pass_src none = {0};
    assert_int_equal(fwrel_key_load_private(&key, testutil_vector_path(rel), &none), 0);
    return key;
}

/* Word w (0-based, space-separated) of an oracle command line, into out. */
static void command_word(char *out, size_t n, const char *cmd, int w)
{
    const char *p = cmd;
    for (int i = 0; i < w && p != NULL; i++) {
        p = strchr(p, ' ');
        if (p != NULL)
            p++;
    }
    assert_non_null(p);
    size_t len = strcspn(p, " ");
    assert_true(len < n);
    memcpy(out, p, len);
    out[len] = '\0';
}

static void sha256_hex(char out[65], const uint8_t *p, size_t n)
{
    uint8_t d[32];
    unsigned dl = 0;
    assert_int_equal(EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL), 1);
    fwrel_hex(out, d, 32);
}

/* Run the decryption the oracle check describes ("esp_enc_img_gen decrypt FILE KEY OUT"). */
static int vector_decrypt(const char *cmd, const char *out)
{
    char file[512], keyrel[512];
    fwrel_src src;
    command_word(file, sizeof(file), cmd, 2);
    command_word(keyrel, sizeof(keyrel), cmd, 3);
    fwrel_pkey *key = vector_key(keyrel);
    assert_int_equal(fwrel_src_open(&src, testutil_vector_path(file), FWREL_IMAGE_MAX), 0);
    int error = fwrel_encimg_decrypt(out, 0, &src, key);
    fwrel_src_close(&src);
    fwrel_key_free(key);
    return error;
}

static void test_vectors(void **state)
{
    (void)state;
    if (!fixture_vectors_or_skip())
        return;
    json_error_t jerr;
    json_t *root = json_load_file(testutil_vector_path("vectors.json"), 0, &jerr), *v;
    size_t i, valid = 0, invalid = 0, tampered = 0, ecc = 0;
    assert_non_null(root);
    json_array_foreach(json_object_get(root, "vectors"), i, v)
    {
        const char *kind = json_string_value(json_object_get(v, "kind"));
        const char *id = json_string_value(json_object_get(v, "id"));
        int is_tampered = strcmp(kind, "tampered_pre_encrypted") == 0;
        if (strncmp(kind, "pre_encrypted_", 14) != 0 && !is_tampered)
            continue;
        ecc += strcmp(kind, "pre_encrypted_ecc") == 0;
        json_t *c;
        size_t j;
        json_array_foreach(json_object_get(v, "checks"), j, c)
        {
            const char *cmd = json_string_value(json_object_get(c, "command"));
            const char *verdict = json_string_value(json_object_get(c, "verdict"));
            if (strncmp(cmd, "esp_enc_img_gen decrypt ", 24) != 0)
                continue;
            int error = vector_decrypt(cmd, tmp("dec.bin"));
            if (strcmp(verdict, "valid") == 0) {
                /* The plaintext is the source image, byte for byte (and the oracle's digest). */
                size_t got_len, src_len;
                char hex[65];
                if (error)
                    fail_msg("%s: %s", id, fwrel_error_last()->message);
                uint8_t *got = testutil_read(tmp("dec.bin"), &got_len);
                uint8_t *want = testutil_read(
                    testutil_vector_path(json_string_value(json_object_get(v, "source_image"))),
                    &src_len);
                assert_non_null(got);
                assert_non_null(want);
                assert_int_equal(got_len, src_len);
                assert_memory_equal(got, want, src_len);
                sha256_hex(hex, got, got_len);
                assert_string_equal(hex, json_string_value(json_object_get(c, "decrypted_sha256")));
                free(got);
                free(want);
                unlink(tmp("dec.bin"));
                valid++;
            } else {
                /* A magic flip and a truncation are format errors (checked before crypto, as
                 * the device's state machine does); everything else fails the unwrap or the
                 * tag. The oracle itself says InvalidTag for the truncation. */
                int want = FWREL_EVERIFY;
                if (strstr(id, ".magic-flip") != NULL || strstr(id, ".truncated") != NULL)
                    want = FWREL_EFORMAT;
                if (error != want)
                    fail_msg("%s: expected %d, got %d: %s", id, want, error,
                             fwrel_error_last()->message);
                assert_int_equal(testutil_count_entries(K.dir), 0);
                tampered += is_tampered;
                invalid += !is_tampered;
            }
        }
    }
    json_decref(root);
    print_message("vectors: %zu decrypted to their source, %zu wrong-key and %zu tampered "
                  "refused\n",
                  valid, invalid, tampered);
    assert_int_equal(valid, 6);
    assert_int_equal(invalid, 5);
    assert_int_equal(tampered, 6);
    assert_int_equal(ecc, 1);
}

/* Every file in enc/ is covered above; and the keys of one scheme never open the other. */
static void test_vectors_cross_keys(void **state)
{
    (void)state;
    if (!fixture_vectors_or_skip())
        return;
    static const char *ecc_img = "enc/esp32-idf5.1.2-hello_world-ErisdarDemo.enc-ecc256.bin";
    static const char *rsa_img = "enc/esp32-idf5.1.2-hello_world-ErisdarDemo.enc-rsa3072.bin";
    fwrel_pkey *rsa = vector_key("keys/test-enc-rsa3072-priv.pem");
    fwrel_pkey *ecc = vector_key("keys/test-enc-ecc256-priv.pem");
    fwrel_pkey *ecc_other = vector_key("keys/test-sbv2-ecdsa256-a.pem");
    struct {
        const char *img;
        fwrel_pkey *key;
        const char *message;
    } cases[] = {
        {ecc_img, rsa, UNWRAP},
        {ecc_img, ecc_other, TAG_MISMATCH},
        {rsa_img, ecc, UNWRAP},
    };
    for (size_t i = 0; i < 3; i++) {
        fwrel_src src;
        assert_int_equal(fwrel_src_open(&src, testutil_vector_path(cases[i].img), FWREL_IMAGE_MAX),
                         0);
        assert_int_equal(fwrel_encimg_decrypt(tmp("dec.bin"), 0, &src, cases[i].key),
                         FWREL_EVERIFY);
        assert_true(
            strncmp(fwrel_error_last()->message, cases[i].message, strlen(cases[i].message)) == 0);
        assert_int_equal(testutil_count_entries(K.dir), 0);
        fwrel_src_close(&src);
    }
    fwrel_key_free(rsa);
    fwrel_key_free(ecc);
    fwrel_key_free(ecc_other);
}

/* The vectors' header layout: what fwrel writes is what esp_enc_img_gen.py wrote. */
static void test_vectors_header_layout(void **state)
{
    (void)state;
    if (!fixture_vectors_or_skip())
        return;
    static const char *files[] = {
        "enc/esp32-idf5.1.2-hello_world-ErisdarDemo.enc-ecc256.bin",
        "enc/esp32c3-idf5.3-hello_world-Jan13242342.enc-rsa3072.bin",
    };
    for (size_t i = 0; i < 2; i++) {
        size_t len;
        fwrel_encimg_header h;
        uint8_t *f = testutil_read(testutil_vector_path(files[i]), &len);
        assert_non_null(f);
        assert_int_equal(fwrel_encimg_parse_header(&h, f), 0);
        assert_int_equal(h.size + 512, len);
        assert_true(is_zero(h.reserved, 88));
        if (i == 0)
            assert_true(is_zero(h.key_field + 96, 288));
        free(f);
    }
}

/*
 * Build an RSA image whose wrapped AES key is key_len bytes (esp_enc_img_gen.py always wraps 32):
 * PKCS#1 v1.5 of the short key, the body AES-256-GCM under that key zero-extended to 32 bytes.
 */
static uint8_t *short_key_image(size_t *len, const uint8_t *pt, size_t n, size_t key_len)
{
    uint8_t aes[48] = {0}, *img = malloc(FWREL_ENCIMG_HEADER_LEN + n);
    fwrel_encimg_header h;
    memset(&h, 0, sizeof(h));
    assert_non_null(img);
    assert_int_equal(RAND_bytes(aes, (int)key_len), 1);
    assert_int_equal(RAND_bytes(h.iv, sizeof(h.iv)), 1);
    h.magic = FWREL_ENCIMG_MAGIC;
    h.size = (uint32_t)n;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(K.rsa_pub, NULL);
    size_t wl = sizeof(h.key_field);
    assert_non_null(pc);
    assert_int_equal(EVP_PKEY_encrypt_init(pc), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING), 1);
    assert_int_equal(EVP_PKEY_encrypt(pc, h.key_field, &wl, aes, key_len), 1);
    assert_int_equal(wl, sizeof(h.key_field));
    EVP_PKEY_CTX_free(pc);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0;
    assert_non_null(c);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 16, NULL), 1);
    assert_int_equal(EVP_EncryptInit_ex(c, NULL, NULL, aes, h.iv), 1);
    assert_int_equal(EVP_EncryptUpdate(c, img + FWREL_ENCIMG_HEADER_LEN, &outl, pt, (int)n), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, img + FWREL_ENCIMG_HEADER_LEN + outl, &outl), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, h.tag), 1);
    EVP_CIPHER_CTX_free(c);
    fwrel_encimg_build_header(img, &h);
    *len = FWREL_ENCIMG_HEADER_LEN + n;
    return img;
}

/*
 * esp_encrypted_img 2.7.1 decrypts a wrapped key shorter than 32 bytes: mbedtls_pk_decrypt into
 * its 32-byte gcm_key leaves the key followed by zeros. "As the device does": decrypted, with a
 * note (the command's warning); more than 32 bytes fails on the device and here.
 */
static void test_short_wrapped_key(void **state)
{
    (void)state;
    uint8_t *pt = random_bytes(3000), *got = NULL;
    size_t len, glen;
    static const size_t lens[] = {16, 24, 31, 0, 32};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t *img = short_key_image(&len, pt, 3000, lens[i]);
        fwrel_src src;
        fwrel_encimg_notes notes = {99};
        fwrel_src_mem(&src, img, len);
        assert_int_equal(fwrel_encimg_decrypt_ex(tmp("dec.bin"), 0, &src, K.rsa, &notes), 0);
        assert_int_equal(notes.wrapped_key_len, lens[i]);
        got = testutil_read(tmp("dec.bin"), &glen);
        assert_non_null(got);
        assert_int_equal(glen, 3000);
        assert_memory_equal(got, pt, 3000);
        free(got);
        unlink(tmp("dec.bin"));
        /* The plain entry point decrypts it too. */
        assert_int_equal(decrypt_mem(NULL, NULL, img, len, K.rsa), 0);
        free(img);
    }
    /* 33 bytes: the device's 32-byte buffer is too small (MBEDTLS_ERR_RSA_OUTPUT_TOO_LARGE). */
    uint8_t *img = short_key_image(&len, pt, 3000, 33);
    expect_refused(img, len, K.rsa, FWREL_EVERIFY, UNWRAP);
    free(img);
    free(pt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_parse_build),
        cmocka_unit_test(test_key_scheme),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_fresh_key_iv_salt),
        cmocka_unit_test(test_no_repeated_iv),
        cmocka_unit_test(test_streaming_session),
        cmocka_unit_test(test_relay_thread),
        cmocka_unit_test(test_refused_keys_for_encryption),
        cmocka_unit_test(test_bounds_before_crypto),
        cmocka_unit_test(test_tampered_rsa),
        cmocka_unit_test(test_tampered_ecc),
        cmocka_unit_test(test_wrong_keys),
        cmocka_unit_test(test_short_wrapped_key),
        cmocka_unit_test(test_output_rules),
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_vectors_cross_keys),
        cmocka_unit_test(test_vectors_header_layout),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
