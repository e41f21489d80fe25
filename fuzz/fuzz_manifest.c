/* fuzz_manifest.c - strict manifest body decoding, and the device core (libfwrel/device) on
 * inputs no trusted key signed: a device whose keys were made here accepts nothing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "fwrel/manifest.h"
#include "fwrel_dev.h"
#include "util.h"

#include "fuzz.h"

static fwrel_pkey *key, *x25519;
static uint8_t *spki, raw[32];
static fwrel_dev_config cfg;
static fwrel_dev_work work;

static void init(void)
{
    char hex[65];
    size_t n = sizeof(raw);
    int len;
    CHECK(fwrel_key_generate(&key, FWREL_KEY_ECDSA256) == 0);
    CHECK((x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519")) != NULL);
    CHECK((len = i2d_PUBKEY(key, &spki)) > 0);
    CHECK(EVP_PKEY_get_raw_private_key(x25519, raw, &n) == 1 && n == 32);
    CHECK(fwrel_key_id(hex, x25519) == 0);
    cfg.crypto = &fwrel_dev_crypto_openssl;
    cfg.recipient.type = FWREL_DEV_RCPT_X25519;
    CHECK(fwrel_unhex(cfg.recipient.keyid, 32, hex) == 0);
    cfg.recipient.key = raw;
    cfg.recipient.key_len = 32;
    cfg.trusted[0].spki = spki;
    cfg.trusted[0].len = (size_t)len;
    cfg.ntrusted = 1;
    cfg.threshold = 1;
    cfg.product = "fuzz";
    cfg.channels[0] = "prod";
    cfg.nchannels = 1;
    cfg.chip = "esp32c3";
    cfg.no_clock = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwrel_manifest m;
    fwrel_dev_manifest dm;
    fwrel_dev_result res;
    if (key == NULL)
        init();
    if (fwrel_manifest_decode(&m, data, size) == 0) {
        char *again = NULL;
        size_t len;
        /* A body that decodes re-encodes to the same bytes (it was canonical). */
        CHECK(fwrel_manifest_encode(&again, &len, &m) == 0 && len == size &&
              memcmp(again, data, size) == 0);
        free(again);
    }
    /* As an envelope: nothing opens without the recipient's key, nothing verifies without the
     * signer's (held by nobody). Sealed to the device here: read up to the signatures. */
    CHECK(fwrel_dev_verify(&dm, &res, &work, &cfg, data, size, 0, NULL, NULL) == FWREL_DEV_EREJECT);
    uint8_t *env = NULL;
    size_t env_len = 0;
    const fwrel_pkey *to[1] = {x25519};
    if (size <= FWREL_DEV_SIGNED_MAX &&
        fwrel_manifest_seal(&env, &env_len, data, size, to, 1) == 0) {
        CHECK(fwrel_dev_verify(&dm, &res, &work, &cfg, env, env_len, 0, NULL, NULL) ==
              FWREL_DEV_EREJECT);
        CHECK(strncmp(res.first, "manifest.signatures: ", 21) == 0);
        free(env);
    }
    return 0;
}
