/* fuzz_devcore.c - the device core (libfwrel/device/fwrel_dev.h: its canonical JSON reader,
 * envelope and verifier) behind the fixed trust of fuzz/keys/device.yaml (X25519 manifest key,
 * signer1..3 trusted with threshold 2, counter 4) at FWREL_FUZZ_NOW, against libfwrel's host
 * verifier (fwrel_device_read_manifest, which runs this core with the OpenSSL port from the
 * profile). Seeded with the manifests of manifest_trusted (fuzz/make-seeds.sh).
 *
 * Each input is read twice: as an envelope, and as signed.json sealed here to the device (the
 * envelope is only the wrapper: a mutated signed.json goes all the way to the reader). Each
 * time through every port built (OpenSSL; mbedTLS when found).
 *
 * Properties: the ports give the same verdict, the same first failure and the same body; the
 * profile's reading gives the same verdict and first failure as the configuration made here;
 * what is accepted is for the device's type, with a counter above 4.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "fwrel/device.h"
#include "fwrel/io.h"
#include "fwrel/manifest.h"
#include "fwrel/report.h"
#include "fwrel_dev.h"
#include "util.h"

#include "fuzz.h"

static fwrel_device *dev;
static fwrel_pkey *recipient;
static uint8_t *spki[3], raw[32];
static fwrel_dev_config cfg[2];
static size_t nports;
static fwrel_dev_work work;

static void init(void)
{
    static const char *const names[] = {"signer1.pub.pem", "signer2.pub.pem", "signer3.pub.pem"};
    static const fwrel_dev_crypto *ports[2] = {&fwrel_dev_crypto_openssl,
#ifdef FWREL_DEV_HAVE_MBEDTLS
                                               &fwrel_dev_crypto_mbedtls
#else
                                               NULL
#endif
    };
    fwrel_pkey *priv = NULL;
    fwrel_pass_src none = {0};
    char hex[65];
    size_t n = sizeof(raw);
    CHECK(fwrel_device_load(&dev, fuzz_key_path("device.yaml")) == 0);
    CHECK(fwrel_key_load_public(&recipient, fuzz_key_path("device-manifest.pem"), 0) == 0);
    CHECK(fwrel_key_load_private(&priv, fuzz_key_path("device-manifest.pem"), &none) == 0);
    CHECK(EVP_PKEY_get_raw_private_key(priv, raw, &n) == 1 && n == 32);
    CHECK(fwrel_key_id(hex, priv) == 0);
    fwrel_key_free(priv);
    for (size_t p = 0; p < 2 && ports[p] != NULL; p++, nports++) {
        fwrel_dev_config *c = &cfg[p];
        c->crypto = ports[p];
        c->recipient.type = FWREL_DEV_RCPT_X25519;
        CHECK(fwrel_unhex(c->recipient.keyid, 32, hex) == 0);
        c->recipient.key = raw;
        c->recipient.key_len = 32;
        for (size_t i = 0; i < 3; i++) {
            if (spki[i] == NULL) {
                fwrel_pkey *k = NULL;
                CHECK(fwrel_key_load_public(&k, fuzz_key_path(names[i]), 0) == 0);
                int len = i2d_PUBKEY(k, &spki[i]);
                CHECK(len > 0);
                c->trusted[i].len = (size_t)len;
                fwrel_key_free(k);
            } else {
                c->trusted[i].len = cfg[0].trusted[i].len;
            }
            c->trusted[i].spki = spki[i];
        }
        c->ntrusted = 3;
        c->threshold = 2;
        c->product = "fuzz";
        c->channels[0] = "prod";
        c->nchannels = 1;
        c->device_type = "fuzz-a";
        c->chip = "esp32c3";
        c->chip_rev = 4;
        c->has_counter = 1;
        c->counter = 4;
        c->anti_rollback = 1;
        c->efuse_secure_version = 2;
        c->running_version = "0.9.0";
    }
}

static void one(const uint8_t *env, size_t len)
{
    fwrel_manifest hm;
    fwrel_dev_manifest cm[2];
    fwrel_dev_result res[2];
    int crc[2] = {FWREL_DEV_EUSAGE, FWREL_DEV_EUSAGE};
    int hrc = fwrel_device_read_manifest(&hm, NULL, dev, env, len, FWREL_FUZZ_NOW);
    const char *hfirst = hrc ? fwrel_error_last()->message + strlen("rejected at ") : "";
    CHECK(hrc == 0 || hrc == FWREL_EVERIFY);
    for (size_t p = 0; p < nports; p++) {
        crc[p] =
            fwrel_dev_verify(&cm[p], &res[p], &work, &cfg[p], env, len, FWREL_FUZZ_NOW, NULL, NULL);
        CHECK(crc[p] == FWREL_DEV_OK || crc[p] == FWREL_DEV_EREJECT);
        if (p > 0) /* the ports agree */
            CHECK(crc[p] == crc[0] && strcmp(res[p].first, res[0].first) == 0 &&
                  (crc[p] != 0 || memcmp(&cm[p], &cm[0], sizeof(cm[0])) == 0));
    }
    /* fwrel_device_read_manifest runs the core with the OpenSSL port: the same verdict and the
     * same first failure, from a configuration made from the profile. */
    CHECK((hrc == 0) == (crc[0] == FWREL_DEV_OK));
    if (crc[0] == FWREL_DEV_OK) {
        CHECK(cm[0].counter == hm.counter && cm[0].counter > 4);
        CHECK(strcmp(cm[0].product, hm.product) == 0 && strcmp(cm[0].version, hm.version) == 0);
        CHECK(memcmp(cm[0].encrypted.sha256, hm.encrypted.sha256, 32) == 0 &&
              memcmp(cm[0].signed_image.sha256, hm.signed_image.sha256, 32) == 0);
        size_t i = 0;
        while (i < cm[0].device_type_count && strcmp(cm[0].device_types[i], "fuzz-a") != 0)
            i++;
        CHECK(i < cm[0].device_type_count);
    } else {
        CHECK(strcmp(hfirst, res[0].first) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dev == NULL)
        init();
    one(data, size);
    uint8_t *env = NULL;
    size_t env_len = 0;
    const fwrel_pkey *to[1] = {recipient};
    if (size <= FWREL_DEV_SIGNED_MAX &&
        fwrel_manifest_seal(&env, &env_len, data, size, to, 1) == 0) {
        one(env, env_len);
        free(env);
    }
    return 0;
}
