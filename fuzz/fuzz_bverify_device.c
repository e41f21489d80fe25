/* fuzz_bverify_device.c - a release bundle verified as the two fixed devices of fuzz/keys take it
 * (device.yaml, secure boot off; device-sbv2.yaml, Secure Boot V2 RSA-3072 with slot 1 revoked)
 * (fwrel_bundle_verify_device_mem at FWREL_FUZZ_NOW): the strict tar reader, the sealed manifest
 * behind its trusted signers (threshold 2 of 3), its binding to firmware.enc, the OTA decision,
 * esp_encrypted_img decryption with the device's image key, and the image checks of the decrypted
 * image (the signature blocks on the second). Seeded with a bundle each device accepts
 * (fuzz/make-seeds.sh).
 *
 * Property: an accepted bundle reads, its manifest is one the device accepts, and that manifest
 * names firmware.enc exactly (SHA-256 and size): no accepted bundle carries another image.
 * The plaintext goes to a private directory under $TMPDIR, removed by the verifier.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fwrel/bundle.h"
#include "fwrel/bundle_verify.h"
#include "fwrel/device.h"
#include "fwrel/manifest.h"
#include "fwrel/report.h"
#include "util.h"

#include "fuzz.h"

static fwrel_device *devs[2];

static void verify(const fwrel_device *dev, const uint8_t *data, size_t size)
{
    fwrel_report *r = NULL;
    CHECK(fwrel_report_new(&r) == 0);
    if (fwrel_bundle_verify_device_mem(r, dev, data, size, FWREL_FUZZ_NOW) == 0) {
        fwrel_bundle *b = NULL;
        fwrel_manifest m;
        uint8_t d[32];
        CHECK(fwrel_report_first_failure(r) == NULL);
        CHECK(fwrel_bundle_read_mem(&b, data, size) == 0);
        const fwrel_bundle_member *fwm = fwrel_bundle_find(b, "manifest.fwm"),
                                  *enc = fwrel_bundle_find(b, "firmware.enc");
        CHECK(fwm != NULL && enc != NULL);
        CHECK(fwrel_device_read_manifest(&m, NULL, dev, fwm->data, fwm->len, FWREL_FUZZ_NOW) == 0);
        CHECK(fwrel_sha256(d, enc->data, enc->len) == 0);
        CHECK(m.encrypted.size == enc->len && memcmp(m.encrypted.sha256, d, 32) == 0);
        fwrel_bundle_free(b);
    }
    fwrel_report_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (devs[0] == NULL) {
        CHECK(fwrel_device_load(&devs[0], fuzz_key_path("device.yaml")) == 0);
        CHECK(fwrel_device_load(&devs[1], fuzz_key_path("device-sbv2.yaml")) == 0);
    }
    verify(devs[0], data, size);
    verify(devs[1], data, size);
    return 0;
}
