/* fuzz_release.c - the release record decoder (fwrel_release_decode), seeded with the record of
 * the trusted-path bundles (fuzz/make-seeds.sh).
 *
 * Properties: what decodes re-encodes to the same bytes (the decoder takes canonical records
 * only), every string field is NUL-terminated within its array, the counts are within their
 * arrays, and a refused record leaves the struct zeroed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/release.h"

#include "fuzz.h"

#define TERMINATED(a) CHECK(memchr((a), '\0', sizeof(a)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fwrel_release r, zero;
    if (fwrel_release_decode(&r, data, size) != 0) {
        CHECK(memcmp(&r, &zero, sizeof(r)) == 0);
        return 0;
    }
    char *again = NULL;
    size_t len = 0;
    CHECK(fwrel_release_encode(&again, &len, &r) == 0);
    CHECK(len == size && memcmp(again, data, size) == 0);
    free(again);
    TERMINATED(r.product);
    TERMINATED(r.version);
    TERMINATED(r.channel);
    TERMINATED(r.chip);
    TERMINATED(r.policy_sha256);
    TERMINATED(r.tool_version);
    TERMINATED(r.image_key);
    CHECK(r.ndevice_types >= 1 && r.ndevice_types <= 8);
    CHECK(r.nsign_keys <= 3 && r.napprovers <= 16);
    CHECK(r.nmanifest_signers <= FWREL_RELEASE_MAX_KEYS && r.nrecipients <= FWREL_RELEASE_MAX_KEYS);
    for (size_t i = 0; i < r.ndevice_types; i++)
        TERMINATED(r.device_types[i]);
    for (size_t i = 0; i < r.napprovers; i++)
        TERMINATED(r.approvers[i]);
    return 0;
}
