/* fuzz_sbv1.c - the SBv1 block, the espsecure-compatible verification and the signing path on
 * arbitrary bytes, with one fixed fuzzing-only key: the RFC 6979 A.2.5 P-256 test key (public in
 * the RFC, never for anything else), built at the first call. The seeds in corpus/sbv1/ are
 * signed with it, so mutations reach the signature check and not only the size and version.
 *
 * Properties:
 * - the block parses iff it is 68 bytes, and building it back gives the same bytes;
 * - verify_compat answers valid or invalid, never another code, the same with the private key
 *   and with its public half; valid means >= 68 bytes, version 0 and a signature that verifies
 *   over the SHA-256 of everything before the block; invalid names a failed step;
 * - signing the input as an image either writes exactly input || 00000000 || r||s, which
 *   verify_compat calls valid, or fails and leaves nothing in the output directory.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "fwrel/key.h"
#include "fwrel/sbv1.h"
#include "util.h"

#include "fuzz.h"

static const char X_HEX[] = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";

static fwrel_pkey *key, *pub;
static char dir[64], in_path[96], out_path[96];

static void cleanup(void)
{
    unlink(in_path);
    unlink(out_path);
    rmdir(dir);
}

/* The key pair from the scalar alone (the public point computed here, as OpenSSL 3.0's
 * fromdata does not derive it). */
static void make_keys(void)
{
    uint8_t x[32], point[65], raw[64];
    EC_GROUP *group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT *P = group ? EC_POINT_new(group) : NULL;
    BIGNUM *bx = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);

    CHECK(fwrel_unhex(x, sizeof(x), X_HEX) == 0);
    CHECK(P != NULL && bld != NULL && ctx != NULL && (bx = BN_bin2bn(x, 32, NULL)) != NULL);
    CHECK(EC_POINT_mul(group, P, bx, NULL, NULL, NULL) == 1);
    CHECK(EC_POINT_point2oct(group, P, POINT_CONVERSION_UNCOMPRESSED, point, sizeof(point), NULL) ==
          sizeof(point));
    CHECK(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0));
    CHECK(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bx));
    CHECK(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)));
    CHECK((params = OSSL_PARAM_BLD_to_param(bld)) != NULL);
    CHECK(EVP_PKEY_fromdata_init(ctx) == 1);
    CHECK(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) == 1);
    CHECK(fwrel_key_raw64(raw, key) == 0);
    CHECK(fwrel_key_parse_public(&pub, raw, sizeof(raw), 1) == 0);

    snprintf(dir, sizeof(dir), "/tmp/fwrel-fuzz-sbv1.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(in_path, sizeof(in_path), "%s/in.bin", dir);
    snprintf(out_path, sizeof(out_path), "%s/out.bin", dir);
    atexit(cleanup);

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(bx);
    EC_POINT_free(P);
    EC_GROUP_free(group);
}

static int compat(const uint8_t *data, size_t size, const fwrel_pkey *k, int *failed_step)
{
    fwrel_src src;
    fwrel_report *report = NULL;
    CHECK(fwrel_report_new(&report) == 0);
    fwrel_src_mem(&src, data, size);
    int error = fwrel_sbv1_verify_compat(report, &src, k);
    *failed_step = fwrel_report_first_failure(report) != NULL;
    fwrel_report_free(report);
    return error;
}

static void check_block(const uint8_t *data, size_t size)
{
    uint32_t version;
    uint8_t sig[64], block[FWREL_SBV1_BLOCK_LEN];
    int error = fwrel_sbv1_parse_block(&version, sig, data, size);
    CHECK((error == 0) == (size == FWREL_SBV1_BLOCK_LEN));
    if (error == 0) {
        CHECK(version == fwrel_le32(data));
        fwrel_sbv1_build_block(block, sig);
        fwrel_put_le32(block, version);
        CHECK(memcmp(block, data, sizeof(block)) == 0);
    } else {
        CHECK(error == FWREL_EFORMAT);
    }
}

static void check_compat(const uint8_t *data, size_t size)
{
    int failed, failed_pub;
    int error = compat(data, size, key, &failed);
    CHECK(error == 0 || error == FWREL_EVERIFY);
    CHECK(compat(data, size, pub, &failed_pub) == error);
    CHECK(failed == (error != 0) && failed_pub == failed);
    if (size < FWREL_SBV1_BLOCK_LEN) {
        CHECK(error == FWREL_EVERIFY);
        return;
    }
    const uint8_t *b = data + size - FWREL_SBV1_BLOCK_LEN;
    if (fwrel_le32(b) != 0) {
        CHECK(error == FWREL_EVERIFY);
        return;
    }
    uint8_t digest[32];
    unsigned int n = 0;
    CHECK(EVP_Digest(data, size - FWREL_SBV1_BLOCK_LEN, digest, &n, EVP_sha256(), NULL) == 1);
    CHECK(fwrel_sbv1_verify_digest(b + 4, pub, digest) == error);
}

/* Sign the input as an image (chip ignored, so any sound image gets through). */
static void check_sign(const uint8_t *data, size_t size)
{
    unlink(in_path);
    unlink(out_path);
    CHECK(fwrel_io_write_file(in_path, data, size, 0, 0600) == 0);
    fwrel_espimg img;
    int error = fwrel_sbv1_sign(in_path, out_path, 0, key, NULL, 1, &img);
    if (error != 0) {
        CHECK(error == FWREL_EFORMAT);
        CHECK(access(out_path, F_OK) != 0);
        return;
    }
    CHECK(img.image_len == size && img.file_len == size);
    fwrel_src src;
    CHECK(fwrel_src_open(&src, out_path, FWREL_IMAGE_MAX) == 0);
    CHECK(src.size == size + FWREL_SBV1_BLOCK_LEN);
    uint8_t *copy = malloc(size > 0 ? size : 1), block[FWREL_SBV1_BLOCK_LEN];
    CHECK(copy != NULL);
    CHECK(fwrel_src_read(&src, copy, size) == 0 && memcmp(copy, data, size) == 0);
    CHECK(fwrel_src_read(&src, block, sizeof(block)) == 0 && fwrel_le32(block) == 0);
    CHECK(fwrel_src_seek(&src, 0) == 0);
    CHECK(fwrel_sbv1_verify_compat(NULL, &src, pub) == 0);
    fwrel_src_close(&src);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (key == NULL)
        make_keys();
    check_block(data, size);
    check_compat(data, size);
    check_sign(data, size);
    return 0;
}
