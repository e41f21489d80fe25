/* fuzz_manifest_trusted.c - manifest verification behind trusted keys: the fixed device of
 * fuzz/keys/device.yaml (X25519 manifest key, trusting signer1..3 with threshold 2, counter 4)
 * at FWREL_FUZZ_NOW, seeded with manifests signed by those keys (fuzz/make-seeds.sh), so that
 * mutations reach every signature (Ed25519, ECDSA P-256, RSA-PSS), the threshold and the device
 * steps after it.
 *
 * Each input is tried two ways, read as the device does (fwrel_device_read_manifest, which runs
 * the device core of libfwrel/device):
 * 1. sealed here to the device's key: the envelope is only the wrapper, so a mutated signed.json
 *    goes all the way through;
 * 2. as an envelope itself (its bounds, the recipient entries, the GCM tag).
 *
 * Properties: whatever the device accepts has a body that libfwrel's writer re-encodes into the
 * signed bytes (the writer and the device's reader agree), for its own device type, with a
 * counter above its own, and no failed step.
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
static fwrel_pkey *recipient;

static int contains(const uint8_t *h, size_t hn, const char *n, size_t nn)
{
    for (size_t i = 0; nn <= hn && i <= hn - nn; i++)
        if (memcmp(h + i, n, nn) == 0)
            return 1;
    return 0;
}

static void init(void)
{
    CHECK(fwrel_device_load(&dev, fuzz_key_path("device.yaml")) == 0);
    /* The public half of the device's private key. */
    CHECK(fwrel_key_load_public(&recipient, fuzz_key_path("device-manifest.pem"), 0) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwrel_manifest dm;
    fwrel_report *r = NULL;
    if (dev == NULL)
        init();

    uint8_t *env = NULL;
    size_t env_len = 0;
    const fwrel_pkey *to[1] = {recipient};
    if (size <= FWREL_MANIFEST_SIGNED_MAX &&
        fwrel_manifest_seal(&env, &env_len, data, size, to, 1) == 0) {
        CHECK(fwrel_report_new(&r) == 0);
        if (fwrel_device_read_manifest(&dm, r, dev, env, env_len, FWREL_FUZZ_NOW) == 0) {
            char *body = NULL;
            size_t blen = 0;
            CHECK(fwrel_manifest_encode(&body, &blen, &dm) == 0);
            CHECK(contains(data, size, body, blen));
            free(body);
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
