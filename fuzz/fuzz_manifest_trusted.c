/* fuzz_manifest_trusted.c - manifest verification behind trusted keys: the fixed device of
 * fuzz/keys/device.yaml (X25519 manifest key, trusting signer1..3 with threshold 2, counter 4)
 * at FWREL_FUZZ_NOW, seeded with manifests signed by those keys (fuzz/make-seeds.sh), so that
 * mutations reach every signature (Ed25519, ECDSA P-256, RSA-PSS), the threshold and the device
 * steps after it.
 *
 * Each input is tried three ways:
 * 1. as signed.json, against the device's trust (fwrel_manifest_verify);
 * 2. sealed here to the device's key, then read as the device does (fwrel_device_read_manifest):
 *    the envelope is only the wrapper, so a mutated signed.json goes all the way through;
 * 3. as an envelope itself (its bounds, the recipient entries, the GCM tag).
 *
 * Properties: the device accepts a sealed input only when its signatures meet the threshold
 * (1), and then reads the same body, for its own device type, with a counter above its own;
 * whatever verifies has a body that re-encodes into the signed bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/device.h"
#include "fwrel/manifest.h"
#include "fwrel/report.h"

#include "fuzz.h"

static fwrel_device *dev;
static fwrel_pkey *signers[3], *recipient;
static fwrel_manifest_trust trust;

static int contains(const uint8_t *h, size_t hn, const char *n, size_t nn)
{
    for (size_t i = 0; nn <= hn && i <= hn - nn; i++)
        if (memcmp(h + i, n, nn) == 0)
            return 1;
    return 0;
}

static void init(void)
{
    static const char *const names[] = {"signer1.pub.pem", "signer2.pub.pem", "signer3.pub.pem"};
    CHECK(fwrel_device_load(&dev, fuzz_key_path("device.yaml")) == 0);
    for (size_t i = 0; i < 3; i++) {
        CHECK(fwrel_key_load_public(&signers[i], fuzz_key_path(names[i]), 0) == 0);
        trust.keys[i] = signers[i];
    }
    trust.count = 3;
    trust.threshold = 2;
    /* The public half of the device's private key. */
    CHECK(fwrel_key_load_public(&recipient, fuzz_key_path("device-manifest.pem"), 0) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwrel_manifest m, dm;
    fwrel_report *r = NULL;
    if (dev == NULL)
        init();

    int verified = fwrel_manifest_verify(&m, NULL, data, size, &trust) == 0;
    if (verified) {
        char *body = NULL;
        size_t blen = 0;
        CHECK(fwrel_manifest_encode(&body, &blen, &m) == 0);
        CHECK(contains(data, size, body, blen));
        free(body);
    }

    uint8_t *env = NULL;
    size_t env_len = 0;
    const fwrel_pkey *to[1] = {recipient};
    if (size <= FWREL_MANIFEST_SIGNED_MAX &&
        fwrel_manifest_seal(&env, &env_len, data, size, to, 1) == 0) {
        CHECK(fwrel_report_new(&r) == 0);
        if (fwrel_device_read_manifest(&dm, r, dev, env, env_len, FWREL_FUZZ_NOW) == 0) {
            CHECK(verified && memcmp(&dm, &m, sizeof(m)) == 0);
            CHECK(dm.counter > 4 && fwrel_report_first_failure(r) == NULL);
            size_t i = 0;
            while (i < dm.device_type_count && strcmp(dm.device_types[i], "fuzz-a") != 0)
                i++;
            CHECK(i < dm.device_type_count);
        }
        fwrel_report_free(r);
        free(env);
    }

    CHECK(fwrel_report_new(&r) == 0);
    if (fwrel_device_read_manifest(&dm, r, dev, data, size, FWREL_FUZZ_NOW) == 0)
        CHECK(fwrel_report_first_failure(r) == NULL && dm.counter > 4);
    fwrel_report_free(r);
    return 0;
}
