/* fuzz_bverify_device.c - a release bundle verified as the fixed device of fuzz/keys/device.yaml
 * takes it (fwrel_bundle_verify_device_mem at FWREL_FUZZ_NOW): the strict tar reader, the sealed
 * manifest behind its trusted signers (threshold 2 of 3), its binding to firmware.enc, the OTA
 * decision, esp_encrypted_img decryption with the device's image key, and the image checks of the
 * decrypted image. Seeded with a bundle the device accepts (fuzz/make-seeds.sh).
 *
 * Property: an accepted bundle reads, its manifest is one the device accepts, and that manifest
 * names firmware.enc exactly (SHA-256 and size): no accepted bundle carries another image.
 * The plaintext goes to a private directory under $TMPDIR, removed by the verifier.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fwrel/bundle.h"
#include "fwrel/bverify.h"
#include "fwrel/device.h"
#include "fwrel/manifest.h"
#include "fwrel/report.h"
#include "util.h"

#include "fuzz.h"

static fwrel_device *dev;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwrel_report *r = NULL;
    if (dev == NULL)
        CHECK(fwrel_device_load(&dev, fuzz_key_path("device.yaml")) == 0);
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
    return 0;
}
