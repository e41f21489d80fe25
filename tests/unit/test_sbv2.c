/* test_sbv2.c - the Secure Boot V2 sector (docs/esp-formats.md §2).
 *
 * With $FWREL_VECTORS: key digests equal espsecure's; fwrel_sbv2_verify_compat() gives the
 * oracle's verdict on every verify-signature check of every sbv2/ and tampered sbv2 vector;
 * re-signing each image with the vector's keys reproduces every byte but the signature fields
 * and CRCs; appending reproduces the appended vectors with block 0 byte-identical; a fourth
 * block is refused. Without vectors (always): block round trips for every scheme, signing round
 * trips with private keys and external signatures, espsecure's verify quirks on crafted
 * sectors, and every refusal with its exact code and nothing written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "fwrel/sbv2.h"
#include "testimg.h"
#include "testutil.h"
#include "util.h"

#define SECTOR FWREL_SBV2_SECTOR_LEN
#define BLOCK  FWREL_SBV2_BLOCK_LEN

/* ---- helpers ---------------------------------------------------------------------------- */

static char *vpath(const char *rel)
{
    const char *p = testutil_vector_path(rel);
    assert_non_null(p);
    char *s = strdup(p);
    assert_non_null(s);
    return s;
}

static int exists(const char *path)
{
    return access(path, R_OK) == 0;
}

static fwrel_pkey *load_private(const char *path)
{
    fwrel_pkey *key = NULL;
    fwrel_pass_src none = {0};
    assert_int_equal(fwrel_key_load_private(&key, path, &none), 0);
    return key;
}

/* espsecure's verification key: a private or a public PEM. */
static fwrel_pkey *load_public(const char *path)
{
    fwrel_pkey *key = NULL;
    assert_int_equal(fwrel_key_load_public(&key, path, 0), 0);
    return key;
}

static int scheme_of(const fwrel_pkey *key)
{
    int scheme = 0;
    assert_int_equal(fwrel_sbv2_key_scheme(&scheme, key), 0);
    return scheme;
}

static void fix_crc(uint8_t *block)
{
    fwrel_put_le32(block + FWREL_SBV2_CRC_OFFSET, fwrel_crc32(0, block, FWREL_SBV2_CRC_OFFSET));
}

/* The signature field of a block as the block says (docs/esp-formats.md §2.2). */
static void sig_field(const uint8_t *block, size_t *off, size_t *len)
{
    if (block[1] == 2) {
        *off = 812;
        *len = 384;
    } else if (block[2] == 1) {
        *off = 149;
        *len = 96;
    } else {
        *off = 101;
        *len = 64;
    }
}

/*
 * got equals want byte for byte, except in the blocks of mask (bit i: block i), whose signature
 * field and CRC may differ (RSA-PSS salt and ECDSA k are random; docs/esp-formats.md §2.2).
 */
static void assert_same_but_sigs(const uint8_t *got, size_t got_len, const uint8_t *want,
                                 size_t want_len, unsigned mask, const char *what)
{
    if (got_len != want_len)
        fail_msg("%s: %zu bytes, the vector has %zu", what, got_len, want_len);
    assert_true(want_len >= SECTOR);
    size_t sector = want_len - SECTOR;
    for (size_t i = 0; i < want_len; i++) {
        if (got[i] == want[i])
            continue;
        if (i >= sector && i < sector + 3 * BLOCK) {
            size_t b = (i - sector) / BLOCK, in = (i - sector) % BLOCK, off, len;
            sig_field(want + sector + b * BLOCK, &off, &len);
            if ((mask & (1u << b)) &&
                ((in >= off && in < off + len) ||
                 (in >= FWREL_SBV2_CRC_OFFSET && in < FWREL_SBV2_CRC_OFFSET + 4)))
                continue;
        }
        fail_msg("%s: byte 0x%zx is 0x%02x, the vector has 0x%02x", what, i, got[i], want[i]);
    }
}

static uint8_t *read_all(const char *path, size_t *len)
{
    uint8_t *p = testutil_read(path, len);
    assert_non_null(p);
    return p;
}

static int verify_file(const char *path, const fwrel_pkey *key, int skip_padding,
                       fwrel_report **report)
{
    fwrel_src src = {.fd = -1};
    assert_int_equal(fwrel_src_open(&src, path, (uint64_t)1 << 30), 0);
    if (report != NULL)
        assert_int_equal(fwrel_report_new(report), 0);
    int rc = fwrel_sbv2_verify_compat(report != NULL ? *report : NULL, &src, key, skip_padding);
    fwrel_src_close(&src);
    return rc;
}

static int verify_mem(const uint8_t *p, size_t n, const fwrel_pkey *key, int skip_padding)
{
    fwrel_src src;
    fwrel_src_mem(&src, p, n);
    return fwrel_sbv2_verify_compat(NULL, &src, key, skip_padding);
}

static const fwrel_step *step_named(const fwrel_report *r, const char *name)
{
    for (size_t i = 0; i < fwrel_report_count(r); i++)
        if (strcmp(fwrel_report_step(r, i)->name, name) == 0)
            return fwrel_report_step(r, i);
    return NULL;
}

/* vectors.json, or NULL (the caller skips). */
static json_t *vectors(void)
{
    if (testutil_vectors() == NULL)
        return NULL;
    char *path = vpath("vectors.json");
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL)
        fail_msg("vectors.json: %s (line %d)", jerr.text, jerr.line);
    free(path);
    json_t *v = json_object_get(root, "vectors");
    assert_non_null(v);
    json_incref(v);
    json_decref(root);
    return v;
}

#define SKIP_WITHOUT_VECTORS(var)                                                                  \
    json_t *var = vectors();                                                                       \
    if (var == NULL) {                                                                             \
        print_message("skipped: no vectors\n");                                                    \
        skip();                                                                                    \
    }

static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* The vectors, as an array whatever the container (object keyed by id, or array). */
static size_t vec_count(const json_t *v)
{
    return json_is_array(v) ? json_array_size(v) : json_object_size(v);
}

static json_t *vec_at(json_t *v, size_t i, const char **id)
{
    if (json_is_array(v)) {
        json_t *x = json_array_get(v, i);
        *id = jstr(x, "id");
        return x;
    }
    size_t n = 0;
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (n++ == i) {
            *id = k;
            return x;
        }
    }
    return NULL;
}

static int starts(const char *s, const char *prefix)
{
    return s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The key files of a signing vector: inputs.keyfile or inputs.keyfiles. */
static size_t vec_keyfiles(const json_t *x, const char *out[FWREL_SBV2_MAX_BLOCKS])
{
    const json_t *in = json_object_get(x, "inputs");
    const char *one = jstr(in, "keyfile");
    if (one != NULL) {
        out[0] = one;
        return 1;
    }
    const json_t *many = json_object_get(in, "keyfiles");
    size_t n = json_array_size(many);
    if (n > FWREL_SBV2_MAX_BLOCKS)
        return 0;
    for (size_t i = 0; i < n; i++)
        out[i] = json_string_value(json_array_get(many, i));
    return n;
}

/* ---- (a) key digests --------------------------------------------------------------------- */

static void test_key_digests_match_espsecure(void **state)
{
    (void)state;
    SKIP_WITHOUT_VECTORS(v);
    json_decref(v);
    char *dir = vpath("keys");
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int checked = 0;
    while ((e = readdir(d)) != NULL) {
        const char *suffix = ".pubkey-digest.bin";
        size_t n = strlen(e->d_name), sl = strlen(suffix);
        if (n <= sl || strcmp(e->d_name + n - sl, suffix) != 0)
            continue;
        char base[256], priv[512], pub[512], dig[512];
        snprintf(base, sizeof(base), "%.*s", (int)(n - sl), e->d_name);
        snprintf(priv, sizeof(priv), "%s/%s.pem", dir, base);
        snprintf(pub, sizeof(pub), "%s/%s.pub.pem", dir, base);
        snprintf(dig, sizeof(dig), "%s/%s", dir, e->d_name);
        size_t len;
        uint8_t *want = read_all(dig, &len), got[32];
        assert_int_equal(len, 32);
        if (exists(priv)) {
            fwrel_pkey *k = load_private(priv);
            assert_int_equal(fwrel_sbv2_key_digest(got, k), 0);
            if (memcmp(got, want, 32) != 0)
                fail_msg("%s: key digest differs from espsecure's", priv);
            fwrel_key_free(k);
            checked++;
        }
        if (exists(pub)) {
            fwrel_pkey *k = load_public(pub);
            assert_int_equal(fwrel_sbv2_key_digest(got, k), 0);
            if (memcmp(got, want, 32) != 0)
                fail_msg("%s: key digest differs from espsecure's", pub);
            fwrel_key_free(k);
            checked++;
        }
        free(want);
    }
    closedir(d);
    free(dir);
    print_message("%d key digests equal espsecure's\n", checked);
    assert_true(checked > 0);
}

/* ---- (b) verify-signature verdicts ------------------------------------------------------- */

/* The next space-separated token of *s into tok (truncated to n - 1); 0 at the end. */
static int next_token(const char **s, char *tok, size_t n)
{
    size_t i = 0;
    while (**s == ' ')
        (*s)++;
    if (**s == '\0')
        return 0;
    for (; **s != '\0' && **s != ' '; (*s)++)
        if (i + 1 < n)
            tok[i++] = **s;
    tok[i] = '\0';
    return 1;
}

/* Parse "espsecure verify-signature --version 2 [--skip-padding] --keyfile K FILE" (also the
 * v4 spelling verify_signature). */
static int parse_verify_command(const char *command, char *key, size_t key_len, char *file,
                                size_t file_len, int *skip_padding)
{
    char tok[512];
    int verify = 0, version2 = 0;
    key[0] = file[0] = '\0';
    *skip_padding = 0;
    if (command == NULL || !next_token(&command, tok, sizeof(tok)) || !starts(tok, "espsecure"))
        return 0;
    while (next_token(&command, tok, sizeof(tok))) {
        if (strcmp(tok, "verify-signature") == 0 || strcmp(tok, "verify_signature") == 0) {
            verify = 1;
        } else if (strcmp(tok, "--version") == 0 || strcmp(tok, "-v") == 0) {
            version2 = next_token(&command, tok, sizeof(tok)) && strcmp(tok, "2") == 0;
        } else if (strcmp(tok, "--keyfile") == 0 || strcmp(tok, "-k") == 0) {
            if (next_token(&command, tok, sizeof(tok)))
                snprintf(key, key_len, "%s", tok);
        } else if (strcmp(tok, "--skip-padding") == 0 || strcmp(tok, "--skip_padding") == 0) {
            *skip_padding = 1;
        } else if (tok[0] != '-') {
            snprintf(file, file_len, "%s", tok);
        }
    }
    return verify && version2 && key[0] != '\0' && file[0] != '\0';
}

static void test_vectors_verify_compat(void **state)
{
    (void)state;
    SKIP_WITHOUT_VECTORS(v);
    int checked = 0, absent = 0, valid = 0;
    for (size_t i = 0; i < vec_count(v); i++) {
        const char *id;
        json_t *x = vec_at(v, i, &id);
        if (!starts(id, "sbv2.") && !(starts(id, "tampered.") && strstr(id, "sbv2") != NULL))
            continue;
        json_t *checks = json_object_get(x, "checks"), *c;
        size_t ci;
        json_array_foreach(checks, ci, c)
        {
            char keyrel[512], filerel[512];
            int skip_padding;
            if (!parse_verify_command(jstr(c, "command"), keyrel, sizeof(keyrel), filerel,
                                      sizeof(filerel), &skip_padding))
                continue;
            char *key_path = vpath(keyrel), *file_path = vpath(filerel);
            if (!exists(key_path) || !exists(file_path)) {
                print_message("  %s: %s or %s not in this vector set\n", id, keyrel, filerel);
                absent++;
                free(key_path);
                free(file_path);
                continue;
            }
            const char *verdict = jstr(c, "verdict");
            assert_non_null(verdict);
            fwrel_pkey *key = load_public(key_path);
            fwrel_report *report = NULL;
            int rc = verify_file(file_path, key, skip_padding, &report);
            int want = strcmp(verdict, "valid") == 0 ? 0 : FWREL_EVERIFY;
            if (rc != want)
                fail_msg("%s (%s): oracle says %s, verify_compat returned %d: %s", id,
                         jstr(c, "description"), verdict, rc, fwrel_error_last()->message);
            /* Each block's outcome is in the report, unless the size was refused first. */
            if (step_named(report, "sbv2.size") == NULL)
                for (int b = 0; b < FWREL_SBV2_MAX_BLOCKS; b++) {
                    char name[16];
                    snprintf(name, sizeof(name), "sbv2.block%d", b);
                    assert_non_null(step_named(report, name));
                }
            int passed = 0;
            for (size_t st = 0; st < fwrel_report_count(report); st++)
                passed += fwrel_report_step(report, st)->verdict == FWREL_PASS;
            assert_int_equal(rc == 0, passed > 0);
            valid += rc == 0;
            checked++;
            fwrel_report_free(report);
            fwrel_key_free(key);
            free(key_path);
            free(file_path);
        }
    }
    print_message("%d verify-signature verdicts reproduced (%d valid), %d absent\n", checked, valid,
                  absent);
    assert_true(checked > 0);
    json_decref(v);
}

/* ---- (c) re-signing reproduces the vectors ---------------------------------------------- */

/* Sign; a chip refusal (docs/esp-formats.md §2.5: these vectors are format vectors there) retries
 * with ignore_chip. Returns 1 if the chip refused. */
static int sign_like_espsecure(const char *in, const char *out, fwrel_sbv2_sign_opts *so)
{
    so->ignore_chip = 0;
    int rc = fwrel_sbv2_sign(in, out, 0, so, NULL);
    if (rc == 0)
        return 0;
    if (rc != FWREL_EKEY || (strstr(fwrel_error_last()->message, "does not accept") == NULL &&
                             strstr(fwrel_error_last()->message, "checks only") == NULL))
        fail_msg("%s: %d %s", in, rc, fwrel_error_last()->message);
    assert_int_equal(access(out, F_OK), -1);
    so->ignore_chip = 1;
    rc = fwrel_sbv2_sign(in, out, 0, so, NULL);
    if (rc != 0)
        fail_msg("%s with ignore_chip: %d %s", in, rc, fwrel_error_last()->message);
    return 1;
}

/* Each block of a signed file verifies with its embedded key over the signing digest. */
static void assert_blocks_verify(const char *signed_path, const char *image_path, size_t n)
{
    size_t len;
    uint8_t *p = read_all(signed_path, &len);
    fwrel_sbv2_sector sec;
    fwrel_sbv2_parse_sector(&sec, p + len - SECTOR);
    assert_int_equal(sec.leading_valid, n);
    for (size_t b = 0; b < n; b++) {
        uint8_t d[48];
        size_t dlen = 0;
        assert_int_equal(fwrel_sbv2_signing_digest(d, &dlen, image_path, sec.blocks[b].scheme, 0),
                         0);
        assert_int_equal(dlen, sec.blocks[b].image_digest_len);
        assert_memory_equal(d, sec.blocks[b].image_digest, dlen);
        assert_int_equal(fwrel_sbv2_block_verify(&sec.blocks[b], d, dlen, NULL), 0);
    }
    free(p);
}

static void test_vectors_resign(void **state)
{
    (void)state;
    SKIP_WITHOUT_VECTORS(v);
    const char *dir = testutil_tmpdir();
    int checked = 0, absent = 0, chip = 0;
    for (size_t i = 0; i < vec_count(v); i++) {
        const char *id, *keyrel[FWREL_SBV2_MAX_BLOCKS];
        json_t *x = vec_at(v, i, &id);
        const char *kind = jstr(x, "kind"), *command = jstr(x, "command");
        const char *imgrel = jstr(json_object_get(x, "inputs"), "image");
        if (!starts(id, "sbv2.") || !starts(kind, "sbv2_sign") || imgrel == NULL)
            continue;
        if (command != NULL && strstr(command, "--skip-padding") != NULL) {
            /* fwrel signs only where the device looks (docs/esp-formats.md §2.1). */
            print_message("  %s: --skip-padding signing is not offered\n", id);
            continue;
        }
        size_t n = vec_keyfiles(x, keyrel);
        assert_true(n >= 1);
        char *img = vpath(imgrel), *want_path = vpath(jstr(x, "output"));
        fwrel_pkey *keys[FWREL_SBV2_MAX_BLOCKS] = {NULL};
        int have = exists(img) && exists(want_path);
        for (size_t k = 0; k < n && have; k++) {
            char *kp = vpath(keyrel[k]);
            if ((have = exists(kp)) != 0)
                keys[k] = load_private(kp);
            free(kp);
        }
        if (!have) {
            print_message("  %s: an input is not in this vector set\n", id);
            absent++;
        } else {
            char out[512];
            snprintf(out, sizeof(out), "%s/%s.bin", dir, id);
            fwrel_sbv2_sign_opts so;
            memset(&so, 0, sizeof(so));
            so.count = n;
            for (size_t k = 0; k < n; k++)
                so.signers[k].key = keys[k];
            chip += sign_like_espsecure(img, out, &so);
            size_t got_len, want_len;
            uint8_t *got = read_all(out, &got_len), *want = read_all(want_path, &want_len);
            assert_same_but_sigs(got, got_len, want, want_len, (1u << n) - 1, id);
            free(got);
            free(want);
            /* Our signatures verify: as espsecure would (same verdict as on the vector: the
             * mixed sector keeps its quirk), and as the device would (embedded key). */
            for (size_t k = 0; k < n; k++) {
                int on_vector = verify_file(want_path, keys[k], 0, NULL);
                assert_int_equal(verify_file(out, keys[k], 0, NULL), on_vector);
                if (scheme_of(keys[k]) == scheme_of(keys[0]))
                    assert_int_equal(on_vector, 0);
            }
            assert_blocks_verify(out, img, n);
            unlink(out);
            checked++;
        }
        for (size_t k = 0; k < n; k++)
            fwrel_key_free(keys[k]);
        free(img);
        free(want_path);
    }
    print_message("%d signing vectors reproduced outside the signatures (%d refused for the "
                  "chip first), %d absent\n",
                  checked, chip, absent);
    assert_true(checked > 0);
    testutil_rmtree(dir);
    json_decref(v);
}

/* ---- (d) append --------------------------------------------------------------------------- */

/* The vector whose output is path; NULL if none. */
static json_t *vec_by_output(json_t *v, const char *path)
{
    for (size_t i = 0; i < vec_count(v); i++) {
        const char *id;
        json_t *x = vec_at(v, i, &id);
        const char *o = jstr(x, "output");
        if (o != NULL && strcmp(o, path) == 0)
            return x;
    }
    return NULL;
}

static void test_vectors_append(void **state)
{
    (void)state;
    SKIP_WITHOUT_VECTORS(v);
    const char *dir = testutil_tmpdir();
    int checked = 0, absent = 0, refused = 0;
    for (size_t i = 0; i < vec_count(v); i++) {
        const char *id, *keyrel[FWREL_SBV2_MAX_BLOCKS];
        json_t *x = vec_at(v, i, &id);
        const char *kind = jstr(x, "kind");
        if (!starts(id, "sbv2."))
            continue;

        if (starts(kind, "sbv2_sign") && vec_keyfiles(x, keyrel) == FWREL_SBV2_MAX_BLOCKS) {
            /* "appending a 4th signature must be refused" */
            char *full = vpath(jstr(x, "output")), *kp = vpath(keyrel[0]), out[512];
            if (!exists(full) || !exists(kp)) {
                absent++;
            } else {
                fwrel_pkey *k = load_private(kp);
                snprintf(out, sizeof(out), "%s/fourth.bin", dir);
                fwrel_sbv2_sign_opts so = {.count = 1, .append = 1, .ignore_chip = 1};
                so.signers[0].key = k;
                int before = testutil_count_entries(dir);
                assert_int_equal(fwrel_sbv2_sign(full, out, 0, &so, NULL), FWREL_EUSAGE);
                assert_non_null(
                    strstr(fwrel_error_last()->message, "Up to 3 signature blocks are supported"));
                assert_int_equal(access(out, F_OK), -1);
                assert_int_equal(testutil_count_entries(dir), before);
                fwrel_key_free(k);
                refused++;
            }
            free(full);
            free(kp);
            continue;
        }
        if (!starts(kind, "sbv2_append"))
            continue;
        const json_t *in = json_object_get(x, "inputs");
        const char *signed_rel = jstr(in, "signed_image"), *brel = jstr(in, "keyfile");
        json_t *first = signed_rel != NULL ? vec_by_output(v, signed_rel) : NULL;
        assert_non_null(first);
        const char *arel = jstr(json_object_get(first, "inputs"), "keyfile");
        const char *imgrel = jstr(json_object_get(first, "inputs"), "image");
        assert_non_null(arel);
        assert_non_null(imgrel);
        char *signed_a = vpath(signed_rel), *want_path = vpath(jstr(x, "output"));
        char *ka = vpath(arel), *kb = vpath(brel), *img = vpath(imgrel);
        if (!exists(signed_a) || !exists(want_path) || !exists(ka) || !exists(kb) || !exists(img)) {
            print_message("  %s: an input is not in this vector set\n", id);
            absent++;
        } else {
            fwrel_pkey *a = load_private(ka), *b = load_private(kb);
            char out1[512], out_a[512], out_ab[512];
            snprintf(out1, sizeof(out1), "%s/vec-a+b.bin", dir);
            snprintf(out_a, sizeof(out_a), "%s/a.bin", dir);
            snprintf(out_ab, sizeof(out_ab), "%s/a+b.bin", dir);
            size_t want_len, got_len, a_len;
            uint8_t *want = read_all(want_path, &want_len), *got, *mine_a;

            /* The vector's a-signed file + b: everything but block 1's signature and CRC is
             * the vector's, block 0 included (espsecure 2.8 keeps it byte for byte). */
            fwrel_sbv2_sign_opts so = {.count = 1, .append = 1};
            so.signers[0].key = b;
            assert_int_equal(fwrel_sbv2_sign(signed_a, out1, 0, &so, NULL), 0);
            got = read_all(out1, &got_len);
            assert_same_but_sigs(got, got_len, want, want_len, 1u << 1, id);
            free(got);

            /* Our own a-signed file + b: data and block 0 are ours, unchanged. */
            so.append = 0;
            so.signers[0].key = a;
            assert_int_equal(fwrel_sbv2_sign(img, out_a, 0, &so, NULL), 0);
            so.append = 1;
            so.signers[0].key = b;
            assert_int_equal(fwrel_sbv2_sign(out_a, out_ab, 0, &so, NULL), 0);
            got = read_all(out_ab, &got_len);
            mine_a = read_all(out_a, &a_len);
            assert_same_but_sigs(got, got_len, want, want_len, 3u, id);
            assert_int_equal(a_len, got_len);
            assert_memory_equal(got, mine_a, got_len - SECTOR + BLOCK);
            assert_int_equal(verify_file(out_ab, a, 0, NULL), 0);
            assert_int_equal(verify_file(out_ab, b, 0, NULL), 0);
            free(got);
            free(mine_a);
            free(want);
            unlink(out1);
            unlink(out_a);
            unlink(out_ab);
            fwrel_key_free(a);
            fwrel_key_free(b);
            checked++;
        }
        free(signed_a);
        free(want_path);
        free(ka);
        free(kb);
        free(img);
    }
    print_message("%d append vectors reproduced, %d fourth blocks refused, %d absent\n", checked,
                  refused, absent);
    assert_true(checked + refused > 0);
    testutil_rmtree(dir);
    json_decref(v);
}

/* ---- self-contained: blocks ----------------------------------------------------------------- */

static void test_block_round_trip(void **state)
{
    (void)state;
    int types[] = {FWREL_KEY_RSA3072, FWREL_KEY_ECDSA192, FWREL_KEY_ECDSA256, FWREL_KEY_ECDSA384};
    for (size_t i = 0; i < 4; i++) {
        fwrel_pkey *key = NULL, *other = NULL, *embedded = NULL;
        uint8_t sector[SECTOR], digest[48], kd[32];
        size_t dlen = types[i] == FWREL_KEY_ECDSA384 ? 48 : 32;
        fwrel_sbv2_sector sec;
        memset(sector, 0xFF, sizeof(sector));
        memset(digest, 0x5A, sizeof(digest));
        assert_int_equal(fwrel_key_generate(&key, types[i]), 0);
        assert_int_equal(fwrel_key_generate(&other, types[i]), 0);
        assert_int_equal(fwrel_sbv2_block_build(sector, key, digest, dlen, NULL, 0), 0);
        /* Fixed fields (docs/esp-formats.md §2.2): magic, version, hash type, CRC, 16 zeros. */
        assert_int_equal(sector[0], 0xE7);
        assert_int_equal(sector[1], types[i] == FWREL_KEY_RSA3072 ? 2 : 3);
        assert_int_equal(sector[2], types[i] == FWREL_KEY_ECDSA384 ? 1 : 0);
        assert_int_equal(sector[3], 0);
        for (size_t z = 1200; z < BLOCK; z++)
            assert_int_equal(sector[z], 0);
        if (types[i] == FWREL_KEY_RSA3072) {
            /* M' * n0 == -1 mod 2^32; e = 65537 */
            assert_int_equal((uint32_t)(fwrel_le32(sector + 808) * fwrel_le32(sector + 36)),
                             0xFFFFFFFFu);
            assert_int_equal(fwrel_le32(sector + 420), 65537);
        } else {
            size_t L = types[i] == FWREL_KEY_ECDSA192   ? 24
                       : types[i] == FWREL_KEY_ECDSA256 ? 32
                                                        : 48;
            size_t end = types[i] == FWREL_KEY_ECDSA384 ? 245 : 165;
            assert_int_equal(sector[types[i] == FWREL_KEY_ECDSA384 ? 52 : 36],
                             types[i] == FWREL_KEY_ECDSA192   ? 1
                             : types[i] == FWREL_KEY_ECDSA256 ? 2
                                                              : 3);
            if (L == 24) /* P-192: zeros after X||Y and after r||s */
                for (size_t z = 0; z < 16; z++)
                    assert_int_equal(sector[37 + 48 + z] | sector[101 + 48 + z], 0);
            for (size_t z = end; z < FWREL_SBV2_CRC_OFFSET; z++)
                assert_int_equal(sector[z], 0);
        }
        fwrel_sbv2_parse_sector(&sec, sector);
        assert_int_equal(sec.leading_valid, 1);
        assert_true(sec.blocks[0].valid);
        assert_false(sec.blocks[1].present);
        assert_int_equal(sec.blocks[0].scheme, scheme_of(key));
        assert_int_equal(sec.blocks[0].image_digest_len, dlen);
        assert_int_equal(fwrel_sbv2_key_digest(kd, key), 0);
        assert_memory_equal(kd, sec.blocks[0].key_digest, 32);
        assert_int_equal(fwrel_sbv2_block_key(&embedded, &sec.blocks[0]), 0);
        assert_int_equal(fwrel_sbv2_key_digest(kd, embedded), 0);
        assert_memory_equal(kd, sec.blocks[0].key_digest, 32);
        assert_int_equal(fwrel_sbv2_block_verify(&sec.blocks[0], digest, dlen, NULL), 0);
        assert_int_equal(fwrel_sbv2_block_verify(&sec.blocks[0], digest, dlen, key), 0);
        assert_int_equal(fwrel_sbv2_block_verify(&sec.blocks[0], digest, dlen, other),
                         FWREL_EVERIFY);
        digest[0] ^= 1;
        assert_int_equal(fwrel_sbv2_block_verify(&sec.blocks[0], digest, dlen, NULL),
                         FWREL_EVERIFY);
        digest[0] ^= 1;
        /* A flipped signature byte with the CRC fixed fails the signature; without, the CRC. */
        size_t off, len;
        sig_field(sector, &off, &len);
        sector[off + 3] ^= 1;
        fix_crc(sector);
        fwrel_sbv2_parse_sector(&sec, sector);
        assert_true(sec.blocks[0].valid);
        assert_int_equal(fwrel_sbv2_block_verify(&sec.blocks[0], digest, dlen, NULL),
                         FWREL_EVERIFY);
        sector[off + 3] ^= 1;
        fwrel_sbv2_parse_sector(&sec, sector);
        assert_false(sec.blocks[0].valid);
        assert_false(sec.blocks[0].crc_ok);
        assert_int_equal(sec.leading_valid, 0);
        fwrel_key_free(key);
        fwrel_key_free(other);
        fwrel_key_free(embedded);
    }
}

static void test_parse_facts(void **state)
{
    (void)state;
    uint8_t sector[SECTOR];
    fwrel_sbv2_sector sec;
    memset(sector, 0xFF, sizeof(sector));
    fwrel_sbv2_parse_sector(&sec, sector);
    assert_int_equal(sec.leading_valid, 0);
    for (int i = 0; i < 3; i++)
        assert_false(sec.blocks[i].present);
    /* A version the ROM does not know: present, CRC fine, not valid, no scheme. */
    memset(sector, 0, BLOCK);
    sector[0] = 0xE7;
    sector[1] = 1;
    fix_crc(sector);
    fwrel_sbv2_parse_sector(&sec, sector);
    assert_true(sec.blocks[0].present && sec.blocks[0].crc_ok);
    assert_false(sec.blocks[0].valid);
    assert_int_equal(sec.blocks[0].scheme, FWREL_SCHEME_NONE);
    /* Version 3 with an unknown curve: valid for espsecure's test, no scheme. */
    sector[1] = 3;
    sector[36] = 9;
    fix_crc(sector);
    fwrel_sbv2_parse_sector(&sec, sector);
    assert_true(sec.blocks[0].valid);
    assert_int_equal(sec.blocks[0].scheme, FWREL_SCHEME_NONE);
    fwrel_pkey *k = NULL;
    assert_int_equal(fwrel_sbv2_block_key(&k, &sec.blocks[0]), FWREL_EVERIFY);
    assert_null(k);
    /* A point not on the curve is not a key. */
    sector[36] = 2;
    memset(sector + 37, 0x11, 64);
    fix_crc(sector);
    fwrel_sbv2_parse_sector(&sec, sector);
    assert_int_equal(sec.blocks[0].scheme, FWREL_SCHEME_ECDSA256);
    assert_int_equal(fwrel_sbv2_block_key(&k, &sec.blocks[0]), FWREL_EVERIFY);
    assert_null(k);
    /* leading_valid stops at the first invalid block. */
    memcpy(sector + 2 * BLOCK, sector, BLOCK);
    fwrel_sbv2_parse_sector(&sec, sector);
    assert_int_equal(sec.leading_valid, 1);
    assert_true(sec.blocks[2].valid);
}

/* ---- self-contained: espsecure's verify quirks on crafted files ------------------------- */

struct crafted {
    uint8_t file[4096 + SECTOR];
    uint8_t d256[32], d384[48];
};

static void craft(struct crafted *c)
{
    unsigned int n;
    for (size_t i = 0; i < 4096; i++)
        c->file[i] = (uint8_t)(i * 7 + 3);
    memset(c->file + 4096, 0xFF, SECTOR);
    assert_int_equal(EVP_Digest(c->file, 4096, c->d256, &n, EVP_sha256(), NULL), 1);
    assert_int_equal(EVP_Digest(c->file, 4096, c->d384, &n, EVP_sha384(), NULL), 1);
}

static void put_block(struct crafted *c, int slot, const fwrel_pkey *key)
{
    int is384 = scheme_of(key) == FWREL_SCHEME_ECDSA384;
    assert_int_equal(fwrel_sbv2_block_build(c->file + 4096 + slot * BLOCK, key,
                                            is384 ? c->d384 : c->d256, is384 ? 48 : 32, NULL, 0),
                     0);
}

static void test_verify_compat_quirks(void **state)
{
    (void)state;
    struct crafted *c = malloc(sizeof(*c));
    fwrel_pkey *rsa = NULL, *rsa2 = NULL, *p192 = NULL, *p256 = NULL, *p384 = NULL;
    assert_non_null(c);
    assert_int_equal(fwrel_key_generate(&rsa, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_key_generate(&rsa2, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_key_generate(&p192, FWREL_KEY_ECDSA192), 0);
    assert_int_equal(fwrel_key_generate(&p256, FWREL_KEY_ECDSA256), 0);
    assert_int_equal(fwrel_key_generate(&p384, FWREL_KEY_ECDSA384), 0);
    size_t len = sizeof(c->file);
    uint8_t *sec = c->file + 4096;

    /* Plain: one block per scheme. */
    fwrel_pkey *all[] = {rsa, p192, p256, p384};
    for (size_t i = 0; i < 4; i++) {
        craft(c);
        put_block(c, 0, all[i]);
        assert_int_equal(verify_mem(c->file, len, all[i], 0), 0);
        assert_int_equal(verify_mem(c->file, len, rsa2, 0), FWREL_EVERIFY);
    }

    /* The embedded key is ignored, the sector tail is not checked. */
    craft(c);
    put_block(c, 0, rsa);
    sec[100] ^= 0x40; /* inside n */
    fix_crc(sec);
    sec[3 * BLOCK + 10] ^= 1;
    assert_int_equal(verify_mem(c->file, len, rsa, 0), 0);

    /* An invalid block is skipped; a later one still counts. */
    craft(c);
    put_block(c, 0, rsa2);
    put_block(c, 1, rsa);
    sec[FWREL_SBV2_CRC_OFFSET] ^= 1;
    assert_int_equal(verify_mem(c->file, len, rsa, 0), 0);
    assert_int_equal(verify_mem(c->file, len, rsa2, 0), FWREL_EVERIFY);

    /* A valid block whose digest differs ends it, even after a success. */
    craft(c);
    put_block(c, 0, rsa);
    put_block(c, 1, rsa2);
    sec[BLOCK + 4] ^= 1;
    fix_crc(sec + BLOCK);
    assert_int_equal(verify_mem(c->file, len, rsa, 0), FWREL_EVERIFY);
    assert_non_null(strstr(fwrel_error_last()->message, "image digest does not match"));

    /* RSA key, SHA-384 block after a verified RSA block: espsecure dies (ValueError). The RSA
     * block's n low byte (its "curve id" for an EC key) is set to one espsecure asserts on. */
    craft(c);
    put_block(c, 0, rsa);
    put_block(c, 1, p384);
    sec[36] = 0x55;
    fix_crc(sec);
    assert_int_equal(verify_mem(c->file, len, rsa, 0), FWREL_EVERIFY);
    assert_int_equal(verify_mem(c->file, len, p384, 0), FWREL_EVERIFY); /* RSA block 0 first */
    craft(c);
    put_block(c, 0, p384);
    put_block(c, 1, rsa);
    sec[BLOCK + 36] = 0x55;
    fix_crc(sec + BLOCK);
    assert_int_equal(verify_mem(c->file, len, p384, 0), FWREL_EVERIFY); /* dies at block 1 */
    assert_int_equal(verify_mem(c->file, len, rsa, 0), FWREL_EVERIFY);
    sec[BLOCK + 36] = 0x02; /* read as P-256 over its SHA-256 digest: fails, goes on */
    fix_crc(sec + BLOCK);
    assert_int_equal(verify_mem(c->file, len, p384, 0), 0);
    sec[BLOCK + 36] = 0x03; /* read as P-384, SHA-256 digest of an RSA block: ValueError */
    fix_crc(sec + BLOCK);
    assert_int_equal(verify_mem(c->file, len, p384, 0), FWREL_EVERIFY);
    put_block(c, 1, p384); /* a second P-384 block, no RSA: fine */
    assert_int_equal(verify_mem(c->file, len, p384, 0), 0);

    /* EC key meets an RSA block first: the curve id is n's low byte (sector byte 36). */
    static const struct {
        uint8_t n0;
        int want;
    } mixed[] = {
        {0x55, FWREL_EVERIFY}, /* AssertionError: espsecure dies, the vector's case */
        {0x03, FWREL_EVERIFY}, /* curve 3 with a SHA-256 digest: ValueError */
        {0x01, 0},             /* read as P-192, fails, goes on: block 1 verifies */
        {0x02, 0},             /* read as P-256 with the wrong r, s: goes on */
    };
    for (size_t i = 0; i < sizeof(mixed) / sizeof(mixed[0]); i++) {
        craft(c);
        put_block(c, 0, rsa);
        put_block(c, 1, p256);
        sec[36] = mixed[i].n0;
        fix_crc(sec);
        fwrel_report *r = NULL;
        fwrel_src src;
        assert_int_equal(fwrel_report_new(&r), 0);
        fwrel_src_mem(&src, c->file, len);
        assert_int_equal(fwrel_sbv2_verify_compat(r, &src, p256, 0), mixed[i].want);
        assert_int_equal(step_named(r, "sbv2.block0")->verdict, FWREL_FAIL);
        assert_int_equal(step_named(r, "sbv2.block1")->verdict,
                         mixed[i].want == 0 ? FWREL_PASS : FWREL_SKIP);
        assert_int_equal(step_named(r, "sbv2.block2")->verdict, FWREL_SKIP);
        fwrel_report_free(r);
        assert_int_equal(verify_mem(c->file, len, rsa, 0), 0);
    }

    /* An EC key of another curve than the block's, the digest fitting: a failed check only. */
    craft(c);
    put_block(c, 0, p192);
    put_block(c, 1, p256);
    assert_int_equal(verify_mem(c->file, len, p256, 0), 0);
    assert_int_equal(verify_mem(c->file, len, p192, 0), 0);
    /* Hash type byte 2 with an EC key: espsecure dies (curve_id unbound). */
    sec[2] = 2;
    fix_crc(sec);
    assert_int_equal(verify_mem(c->file, len, p256, 0), FWREL_EVERIFY);
    assert_int_equal(verify_mem(c->file, len, p192, 0), FWREL_EVERIFY);

    /* The version byte does not pick the algorithm (version-flip-crcfixed). */
    craft(c);
    put_block(c, 0, rsa);
    sec[1] = 3;
    fix_crc(sec);
    assert_int_equal(verify_mem(c->file, len, rsa, 0), 0);
    sec[1] = 4; /* not 2 or 3: invalid, skipped */
    fix_crc(sec);
    assert_int_equal(verify_mem(c->file, len, rsa, 0), FWREL_EVERIFY);

    /* Sizes: a multiple of 4096, at least one sector; skip_padding needs only the latter. */
    craft(c);
    put_block(c, 0, rsa);
    assert_int_equal(verify_mem(c->file, 4095, rsa, 1), FWREL_EVERIFY);
    assert_non_null(strstr(fwrel_error_last()->message, "too small"));
    assert_int_equal(verify_mem(c->file, 0, rsa, 0), FWREL_EVERIFY);
    assert_int_equal(verify_mem(c->file + 1, len - 1, rsa, 0), FWREL_EVERIFY);
    assert_non_null(strstr(fwrel_error_last()->message, "multiple of 4096"));
    /* skip_padding: the digest is over the bytes before the last 4 KiB, whatever their length */
    uint8_t *odd = malloc(100 + SECTOR);
    unsigned int dn;
    assert_non_null(odd);
    memset(odd, 0x42, 100);
    memset(odd + 100, 0xFF, SECTOR);
    assert_int_equal(EVP_Digest(odd, 100, c->d256, &dn, EVP_sha256(), NULL), 1);
    assert_int_equal(fwrel_sbv2_block_build(odd + 100, rsa, c->d256, 32, NULL, 0), 0);
    assert_int_equal(verify_mem(odd, 100 + SECTOR, rsa, 1), 0);
    assert_int_equal(verify_mem(odd, 100 + SECTOR, rsa, 0), FWREL_EVERIFY);
    free(odd);

    fwrel_key_free(rsa);
    fwrel_key_free(rsa2);
    fwrel_key_free(p192);
    fwrel_key_free(p256);
    fwrel_key_free(p384);
    free(c);
}

/* ---- self-contained: signing ------------------------------------------------------------ */

/* Sign a prehashed digest outside the library, as an HSM or openssl pkeyutl would. */
static uint8_t *external_sign(size_t *len, const fwrel_pkey *key, const uint8_t *d, size_t dlen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new((EVP_PKEY *)key, NULL);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, dlen == 48 ? EVP_sha384() : EVP_sha256()),
                     1);
    if (EVP_PKEY_is_a(key, "RSA")) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32), 1);
    }
    assert_int_equal(EVP_PKEY_sign(ctx, NULL, len, d, dlen), 1);
    uint8_t *sig = malloc(*len);
    assert_non_null(sig);
    assert_int_equal(EVP_PKEY_sign(ctx, sig, len, d, dlen), 1);
    EVP_PKEY_CTX_free(ctx);
    return sig;
}

static void test_sign_round_trip(void **state)
{
    (void)state;
    const char *dir = testutil_tmpdir();
    char img[256], out[256], ext[256], app[256];
    snprintf(img, sizeof(img), "%s/c5.bin", dir);
    snprintf(out, sizeof(out), "%s/signed.bin", dir);
    snprintf(ext, sizeof(ext), "%s/ext.bin", dir);
    snprintf(app, sizeof(app), "%s/app.bin", dir);
    /* ESP32-C5 accepts every scheme (docs/esp-formats.md §2.5). */
    testimg_opts o = {.chip = "esp32c5", .size = 20000};
    assert_int_equal(testimg_write(img, &o), 0);
    size_t img_len;
    uint8_t *image = read_all(img, &img_len);
    int types[] = {FWREL_KEY_RSA3072, FWREL_KEY_ECDSA192, FWREL_KEY_ECDSA256, FWREL_KEY_ECDSA384};
    for (size_t i = 0; i < 4; i++) {
        fwrel_pkey *key = NULL, *pub = NULL, *second = NULL;
        assert_int_equal(fwrel_key_generate(&key, types[i]), 0);
        assert_int_equal(fwrel_key_generate(&second, types[i]), 0);
        fwrel_sbv2_sign_opts so = {.count = 1};
        so.signers[0].key = key;
        fwrel_espimg parsed;
        assert_int_equal(fwrel_sbv2_sign(img, out, 0, &so, &parsed), 0);
        assert_int_equal(parsed.image_len, img_len);
        size_t len;
        uint8_t *p = read_all(out, &len);
        size_t aligned = (img_len + 4095) & ~(size_t)4095;
        /* image, 0xFF to 4 KiB, block, 0xFF slots and tail (docs/esp-formats.md §2.1) */
        assert_int_equal(len, aligned + SECTOR);
        assert_memory_equal(p, image, img_len);
        for (size_t z = img_len; z < aligned; z++)
            assert_int_equal(p[z], 0xFF);
        for (size_t z = aligned + BLOCK; z < len; z++)
            assert_int_equal(p[z], 0xFF);
        assert_int_equal(verify_file(out, key, 0, NULL), 0);
        assert_blocks_verify(out, img, 1);

        /* External: the exported digest, signed elsewhere, attached with the public key. */
        uint8_t d[48];
        size_t dlen = 0, sig_len = 0;
        assert_int_equal(fwrel_sbv2_signing_digest(d, &dlen, img, scheme_of(key), 0), 0);
        assert_int_equal(dlen, types[i] == FWREL_KEY_ECDSA384 ? 48 : 32);
        uint8_t *sig = external_sign(&sig_len, key, d, dlen);
        char pem[256];
        snprintf(pem, sizeof(pem), "%s/pub.pem", dir);
        assert_int_equal(fwrel_key_write_public(key, pem, 0), 0);
        pub = load_public(pem);
        unlink(pem);
        so.signers[0].key = pub;
        so.signers[0].sig = sig;
        so.signers[0].sig_len = sig_len;
        assert_int_equal(fwrel_sbv2_sign(img, ext, 0, &so, NULL), 0);
        size_t ext_len;
        uint8_t *q = read_all(ext, &ext_len);
        assert_same_but_sigs(q, ext_len, p, len, 1u, "external signature");
        if (types[i] == FWREL_KEY_RSA3072) { /* reversed: docs/esp-formats.md §2.2 */
            for (size_t b = 0; b < 384; b++)
                assert_int_equal(q[aligned + 812 + b], sig[383 - b]);
        }
        assert_int_equal(verify_file(ext, pub, 0, NULL), 0);

        /* Append a second block of the scheme: both verify, block 0 and the data unchanged. */
        so.signers[0].key = second;
        so.signers[0].sig = NULL;
        so.append = 1;
        assert_int_equal(fwrel_sbv2_sign(ext, app, 0, &so, NULL), 0);
        size_t app_len;
        uint8_t *r = read_all(app, &app_len);
        assert_int_equal(app_len, ext_len);
        assert_memory_equal(r, q, aligned + BLOCK);
        for (size_t z = aligned + 2 * BLOCK; z < app_len; z++)
            assert_int_equal(r[z], 0xFF);
        assert_int_equal(verify_file(app, pub, 0, NULL), 0);
        assert_int_equal(verify_file(app, second, 0, NULL), 0);
        fwrel_sbv2_sector sec;
        fwrel_sbv2_parse_sector(&sec, r + aligned);
        assert_int_equal(sec.leading_valid, 2);
        uint8_t d2[48];
        size_t d2len = 0;
        assert_int_equal(fwrel_sbv2_signing_digest(d2, &d2len, ext, scheme_of(key), 1), 0);
        assert_int_equal(d2len, dlen);
        assert_memory_equal(d2, d, dlen);
        assert_int_equal(fwrel_sbv2_block_verify(&sec.blocks[1], d2, d2len, NULL), 0);
        assert_int_equal(fwrel_sbv2_block_verify(&sec.blocks[0], d, dlen, NULL), 0);

        unlink(out);
        unlink(ext);
        unlink(app);
        free(p);
        free(q);
        free(r);
        free(sig);
        fwrel_key_free(key);
        fwrel_key_free(pub);
        fwrel_key_free(second);
    }
    free(image);
    testutil_rmtree(dir);
}

/* ---- self-contained: refusals ------------------------------------------------------------- */

/* rc is the code and out_path (and nothing else) did not appear in dir. */
#define REFUSED(call, code, what)                                                                  \
    do {                                                                                           \
        int before_ = testutil_count_entries(dir);                                                 \
        int rc_ = (call);                                                                          \
        if (rc_ != (code))                                                                         \
            fail_msg("%s: returned %d (%s), expected %d", what, rc_, fwrel_error_last()->message,  \
                     code);                                                                        \
        assert_int_equal(access(out, F_OK), -1);                                                   \
        assert_int_equal(testutil_count_entries(dir), before_);                                    \
    } while (0)

static void test_sign_refusals(void **state)
{
    (void)state;
    const char *dir = testutil_tmpdir();
    char esp32[256], c2[256], s3[256], out[256], three[256], trail[256], signed1[256], badpad[256],
        corrupt[256], exists_path[256];
    fwrel_pkey *rsa = NULL, *rsa_b = NULL, *ec = NULL;
    snprintf(esp32, sizeof(esp32), "%s/e.bin", dir);
    snprintf(c2, sizeof(c2), "%s/c2.bin", dir);
    snprintf(s3, sizeof(s3), "%s/s3.bin", dir);
    snprintf(out, sizeof(out), "%s/out.bin", dir);
    snprintf(three, sizeof(three), "%s/three.bin", dir);
    snprintf(trail, sizeof(trail), "%s/trail.bin", dir);
    snprintf(signed1, sizeof(signed1), "%s/signed1.bin", dir);
    snprintf(badpad, sizeof(badpad), "%s/badpad.bin", dir);
    snprintf(corrupt, sizeof(corrupt), "%s/corrupt.bin", dir);
    snprintf(exists_path, sizeof(exists_path), "%s/exists.bin", dir);
    testimg_opts oe = {.chip = "esp32"}, oc2 = {.chip = "esp32c2"}, os3 = {.chip = "esp32s3"};
    assert_int_equal(testimg_write(esp32, &oe), 0);
    assert_int_equal(testimg_write(c2, &oc2), 0);
    assert_int_equal(testimg_write(s3, &os3), 0);
    assert_int_equal(fwrel_key_generate(&rsa, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_key_generate(&rsa_b, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_key_generate(&ec, FWREL_KEY_ECDSA256), 0);
    fwrel_sbv2_sign_opts so = {.count = 1};

    /* What the chip checks (docs/esp-formats.md §2.5). */
    so.signers[0].key = ec;
    REFUSED(fwrel_sbv2_sign(esp32, out, 0, &so, NULL), FWREL_EKEY, "ESP32 + ECDSA");
    assert_non_null(strstr(fwrel_error_last()->message, "esp32 does not accept ECDSA P-256"));
    so.signers[0].key = rsa;
    REFUSED(fwrel_sbv2_sign(c2, out, 0, &so, NULL), FWREL_EKEY, "C2 + RSA");
    assert_non_null(strstr(fwrel_error_last()->message, "esp32c2 does not accept RSA-3072"));
    so.count = 2;
    so.signers[1].key = rsa_b;
    REFUSED(fwrel_sbv2_sign(esp32, out, 0, &so, NULL), FWREL_EKEY, "ESP32 + 2 keys");
    assert_non_null(strstr(fwrel_error_last()->message, "checks only 1 signature block"));
    /* ignore_chip: format only, the same files sign. */
    so.ignore_chip = 1;
    assert_int_equal(fwrel_sbv2_sign(esp32, out, 0, &so, NULL), 0);
    unlink(out);
    so.ignore_chip = 0;
    so.count = 1;

    /* An RSA key other than 3072 bits. */
    EVP_PKEY *rsa2048 = EVP_RSA_gen(2048);
    assert_non_null(rsa2048);
    so.signers[0].key = rsa2048;
    REFUSED(fwrel_sbv2_sign(s3, out, 0, &so, NULL), FWREL_EKEY, "RSA-2048");
    assert_non_null(strstr(fwrel_error_last()->message, "RSA key has 2048 bits"));
    EVP_PKEY_free(rsa2048);

    /* Trailing bytes past image_len. */
    size_t n;
    uint8_t *img = read_all(s3, &n);
    FILE *f = fopen(trail, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(img, 1, n, f), n);
    assert_int_equal(fwrite("xyz!", 1, 4, f), 4);
    fclose(f);
    so.signers[0].key = rsa;
    REFUSED(fwrel_sbv2_sign(trail, out, 0, &so, NULL), FWREL_EFORMAT, "trailing bytes");
    assert_non_null(strstr(fwrel_error_last()->message, "4 bytes past the end of the image"));

    /* An integrity failure: one data byte flipped, the checksum no longer matches. */
    img[n / 2] ^= 1;
    f = fopen(corrupt, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(img, 1, n, f), n);
    fclose(f);
    img[n / 2] ^= 1;
    REFUSED(fwrel_sbv2_sign(corrupt, out, 0, &so, NULL), FWREL_EFORMAT, "corrupt image");

    /* External signatures: junk, the wrong length, another key's, not DER. */
    uint8_t d[48], junk[384] = {1};
    size_t dlen = 0, other_len = 0;
    assert_int_equal(fwrel_sbv2_signing_digest(d, &dlen, s3, FWREL_SCHEME_RSA3072, 0), 0);
    so.signers[0].sig = junk;
    so.signers[0].sig_len = sizeof(junk);
    REFUSED(fwrel_sbv2_sign(s3, out, 0, &so, NULL), FWREL_EVERIFY, "junk signature");
    so.signers[0].sig_len = 383;
    REFUSED(fwrel_sbv2_sign(s3, out, 0, &so, NULL), FWREL_EFORMAT, "383-byte signature");
    uint8_t *other = external_sign(&other_len, rsa_b, d, dlen);
    so.signers[0].sig = other;
    so.signers[0].sig_len = other_len;
    REFUSED(fwrel_sbv2_sign(s3, out, 0, &so, NULL), FWREL_EVERIFY, "another key's signature");
    free(other);
    uint8_t *ecsig = external_sign(&other_len, ec, d, dlen);
    so.signers[0].key = ec;
    so.signers[0].sig = ecsig;
    so.signers[0].sig_len = other_len;
    so.ignore_chip = 1;
    assert_int_equal(fwrel_sbv2_sign(s3, out, 0, &so, NULL), 0); /* the right one signs */
    unlink(out);
    ecsig[other_len - 1] ^= 1;
    REFUSED(fwrel_sbv2_sign(s3, out, 0, &so, NULL), FWREL_EVERIFY, "flipped ECDSA signature");
    free(ecsig);
    so.ignore_chip = 0;
    so.signers[0].key = rsa;
    so.signers[0].sig = NULL;
    so.signers[0].sig_len = 0;

    /* An existing output is not replaced (and is left as it was). */
    f = fopen(exists_path, "wb");
    assert_non_null(f);
    fputs("mine", f);
    fclose(f);
    int before = testutil_count_entries(dir);
    assert_int_equal(fwrel_sbv2_sign(s3, exists_path, 0, &so, NULL), FWREL_EIO);
    assert_int_equal(testutil_count_entries(dir), before);
    size_t el;
    uint8_t *ec_content = read_all(exists_path, &el);
    assert_int_equal(el, 4);
    assert_memory_equal(ec_content, "mine", 4);
    free(ec_content);
    assert_int_equal(fwrel_sbv2_sign(s3, exists_path, FWREL_OUT_FORCE, &so, NULL), 0);

    /* Signing a signed image again without append; appending to an unsigned one. */
    REFUSED(fwrel_sbv2_sign(exists_path, out, 0, &so, NULL), FWREL_EFORMAT, "already signed");
    assert_non_null(strstr(fwrel_error_last()->message, "already signed"));
    so.append = 1;
    REFUSED(fwrel_sbv2_sign(s3, out, 0, &so, NULL), FWREL_EFORMAT, "append to an unsigned image");

    /* Append: padding other than 0xFF; a block that does not match the data; no valid block. */
    uint8_t *sgn = read_all(exists_path, &n);
    size_t aligned = n - SECTOR;
    uint8_t keep = sgn[aligned - 1];
    sgn[aligned - 1] = 0xFE;
    f = fopen(badpad, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(sgn, 1, n, f), n);
    fclose(f);
    REFUSED(fwrel_sbv2_sign(badpad, out, 0, &so, NULL), FWREL_EFORMAT, "padding not 0xFF");
    assert_non_null(strstr(fwrel_error_last()->message, "not 0xFF"));
    sgn[aligned - 1] = keep;
    sgn[aligned + 4] ^= 1; /* the block's image digest */
    fix_crc(sgn + aligned);
    f = fopen(badpad, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(sgn, 1, n, f), n);
    fclose(f);
    REFUSED(fwrel_sbv2_sign(badpad, out, 0, &so, NULL), FWREL_EFORMAT, "block does not match");
    sgn[aligned] = 0xE6; /* magic: no valid block left */
    fix_crc(sgn + aligned);
    f = fopen(badpad, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(sgn, 1, n, f), n);
    fclose(f);
    REFUSED(fwrel_sbv2_sign(badpad, out, 0, &so, NULL), FWREL_EFORMAT, "no valid block");
    free(sgn);

    /* Append on ESP32: one block is all it checks. */
    so.append = 0;
    assert_int_equal(fwrel_sbv2_sign(esp32, signed1, 0, &so, NULL), 0);
    so.append = 1;
    REFUSED(fwrel_sbv2_sign(signed1, out, 0, &so, NULL), FWREL_EKEY, "append on ESP32");

    /* Three blocks, then a fourth. */
    so.append = 0;
    so.count = 3;
    so.signers[1].key = rsa_b;
    so.signers[2].key = rsa;
    assert_int_equal(fwrel_sbv2_sign(s3, three, 0, &so, NULL), 0);
    so.count = 1;
    so.append = 1;
    REFUSED(fwrel_sbv2_sign(three, out, 0, &so, NULL), FWREL_EUSAGE, "a fourth block");
    assert_non_null(strstr(fwrel_error_last()->message, "Up to 3 signature blocks"));
    uint8_t dd[48];
    assert_int_equal(fwrel_sbv2_signing_digest(dd, &dlen, three, FWREL_SCHEME_RSA3072, 1),
                     FWREL_EUSAGE);
    /* Two present, two more: more signers than free slots. */
    so.append = 0;
    so.count = 2;
    assert_int_equal(fwrel_sbv2_sign(s3, signed1, FWREL_OUT_FORCE, &so, NULL), 0);
    so.append = 1;
    REFUSED(fwrel_sbv2_sign(signed1, out, 0, &so, NULL), FWREL_EUSAGE, "two more on two");
    so.count = 4;
    REFUSED(fwrel_sbv2_sign(s3, out, 0, &so, NULL), FWREL_EUSAGE, "four signers");

    free(img);
    fwrel_key_free(rsa);
    fwrel_key_free(rsa_b);
    fwrel_key_free(ec);
    testutil_rmtree(dir);
}

/*
 * Where soc_caps.h sets SOC_MMU_PAGE_SIZE_CONFIGURABLE (ESP-IDF v5.5.5: C2, C6, C61, H2) the
 * device refuses an app without the descriptor: signing one is refused unless --ignore-chip;
 * other chips still sign it (a legacy image without descriptor loads there).
 */
static void test_sign_needs_app_desc(void **state)
{
    (void)state;
    const char *dir = testutil_tmpdir();
    char in[256], out[256];
    fwrel_pkey *rsa = NULL, *ec = NULL;
    assert_int_equal(fwrel_key_generate(&rsa, FWREL_KEY_RSA3072), 0);
    assert_int_equal(fwrel_key_generate(&ec, FWREL_KEY_ECDSA256), 0);
    snprintf(out, sizeof(out), "%s/out.bin", dir);
    static const char *const need[] = {"esp32c6", "esp32h2", "esp32c2", "esp32c61"};
    for (size_t i = 0; i < 4; i++) {
        testimg_opts o = {.chip = need[i], .no_app_desc = 1};
        snprintf(in, sizeof(in), "%s/%s.bin", dir, need[i]);
        assert_int_equal(testimg_write(in, &o), 0);
        int rsa_ok = strcmp(need[i], "esp32c6") == 0 || strcmp(need[i], "esp32h2") == 0;
        fwrel_sbv2_sign_opts so = {.count = 1, .signers = {{rsa_ok ? rsa : ec, NULL, 0}}};
        REFUSED(fwrel_sbv2_sign(in, out, 0, &so, NULL), FWREL_EFORMAT, need[i]);
        char want[160];
        snprintf(want, sizeof(want),
                 "%s refuses an app without an app descriptor at 0x20 (\"Failed to fetch app "
                 "description header!\"): --ignore-chip to sign anyway",
                 need[i]);
        assert_string_equal(fwrel_error_last()->message, want);
        so.ignore_chip = 1;
        assert_int_equal(fwrel_sbv2_sign(in, out, 0, &so, NULL), 0);
        unlink(out);
        unlink(in);
    }
    static const char *const free_[] = {"esp32c3", "esp32s3", "esp32", "esp32c5", "esp32p4"};
    for (size_t i = 0; i < 5; i++) {
        testimg_opts o = {.chip = free_[i], .no_app_desc = 1};
        snprintf(in, sizeof(in), "%s/%s.bin", dir, free_[i]);
        assert_int_equal(testimg_write(in, &o), 0);
        fwrel_sbv2_sign_opts so = {.count = 1, .signers = {{rsa, NULL, 0}}};
        assert_int_equal(fwrel_sbv2_sign(in, out, 0, &so, NULL), 0);
        unlink(out);
        unlink(in);
    }
    fwrel_key_free(rsa);
    fwrel_key_free(ec);
    testutil_rmtree(dir);
}

/*
 * espsecure v5.3.1 verify_signature_v2 reads the whole file: without --skip-padding a size that is
 * not a multiple of 4096 is "Invalid datafile" (the device, reading flash, would accept a file
 * missing its sector's 0xFF tail: device mode does, test_device.c); with --skip-padding the last
 * 4096 bytes are taken as the sector, which then holds image bytes, not the blocks.
 */
static void test_compat_truncated_sector(void **state)
{
    (void)state;
    const char *dir = testutil_tmpdir();
    char in[256], out[256];
    fwrel_pkey *rsa = NULL;
    assert_int_equal(fwrel_key_generate(&rsa, FWREL_KEY_RSA3072), 0);
    snprintf(in, sizeof(in), "%s/c3.bin", dir);
    snprintf(out, sizeof(out), "%s/c3.signed", dir);
    testimg_opts o = {.chip = "esp32c3"};
    assert_int_equal(testimg_write(in, &o), 0);
    fwrel_sbv2_sign_opts so = {.count = 1, .signers = {{rsa, NULL, 0}}};
    assert_int_equal(fwrel_sbv2_sign(in, out, 0, &so, NULL), 0);
    size_t n;
    uint8_t *b = read_all(out, &n);
    assert_int_equal(verify_mem(b, n, rsa, 0), 0);
    assert_int_equal(verify_mem(b, n - (4096 - 3 * 1216), rsa, 0), FWREL_EVERIFY);
    assert_string_equal(fwrel_error_last()->message,
                        "Invalid datafile. Data size should be non-zero & a multiple of 4096.");
    assert_int_equal(verify_mem(b, n - (4096 - 1200), rsa, 0), FWREL_EVERIFY);
    assert_int_equal(verify_mem(b, n - (4096 - 3 * 1216), rsa, 1), FWREL_EVERIFY);
    free(b);
    fwrel_key_free(rsa);
    testutil_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_digests_match_espsecure),
        cmocka_unit_test(test_vectors_verify_compat),
        cmocka_unit_test(test_vectors_resign),
        cmocka_unit_test(test_vectors_append),
        cmocka_unit_test(test_block_round_trip),
        cmocka_unit_test(test_parse_facts),
        cmocka_unit_test(test_verify_compat_quirks),
        cmocka_unit_test(test_sign_round_trip),
        cmocka_unit_test(test_sign_refusals),
        cmocka_unit_test(test_sign_needs_app_desc),
        cmocka_unit_test(test_compat_truncated_sector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
