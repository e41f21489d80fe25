/*
 * fwrel_ota.h - over-the-air updates through fwrel release manifests on ESP-IDF v5
 * (docs/device.md "The ESP-IDF component").
 *
 * A thin layer over the device core (fwrel_dev.h): the manifest is fetched over HTTP(S) and
 * verified by fwrel_dev_verify(); the image is streamed through esp_https_ota with
 * esp_encrypted_img's decrypt callback while fwrel_dev_bind_*() hash the downloaded and the
 * decrypted bytes; only when both equal the manifest's is the OTA finished (the boot partition
 * switched). The release counter is kept in NVS and raised by fwrel_ota_confirm(), after the new
 * app has confirmed itself. Every decision about the manifest and the image is the core's.
 */
#ifndef FWREL_OTA_H
#define FWREL_OTA_H

#include <stdint.h>

#include "esp_err.h"
#include "esp_http_client.h"
#include "fwrel_dev.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FWREL_OTA_ERR_BASE 0xf100
/** The manifest or the image was refused (fwrel_ota_result.first says at which step). */
#define FWREL_OTA_ERR_REJECTED (FWREL_OTA_ERR_BASE + 1)
/** The device's configuration (Kconfig, embedded keys, NVS) is missing or wrong. */
#define FWREL_OTA_ERR_CONFIG (FWREL_OTA_ERR_BASE + 2)
/** The manifest is larger than CONFIG_FWREL_OTA_MANIFEST_MAX or its download failed. */
#define FWREL_OTA_ERR_MANIFEST (FWREL_OTA_ERR_BASE + 3)

/** What fwrel_ota_update() may take instead of the Kconfig values (every field optional). */
typedef struct fwrel_ota_opts {
    /** The manifest's URL (NULL: CONFIG_FWREL_OTA_MANIFEST_URL). */
    const char *manifest_url;
    /** The image's URL (NULL: the manifest URL's directory followed by the manifest's
     *  image_name, percent-encoded). */
    const char *image_url;
    /** TLS and HTTP settings for both downloads (cert_pem, crt_bundle_attach, timeout_ms, ...);
     *  its url is ignored. NULL: the URL alone, CONFIG_FWREL_OTA_HTTP_TIMEOUT_MS. */
    const esp_http_client_config_t *http;
    /** The device clock, Unix seconds; 0: time(NULL). Ignored with CONFIG_FWREL_OTA_NO_CLOCK. */
    uint64_t now;
    /** Receives every step of the core as it is decided (NULL: logged with ESP_LOG). */
    fwrel_dev_step_fn step;
    void *step_ctx;
} fwrel_ota_opts;

/** What an update did. */
typedef struct fwrel_ota_result {
    fwrel_dev_manifest manifest;      /**< the accepted manifest (valid once verified) */
    int verified;                     /**< 1: the manifest was accepted */
    char first[FWREL_DEV_REASON_MAX]; /**< "<step>: <reason>" of a refusal, or "" */
} fwrel_ota_result;

/**
 * Fetch, verify and install the release the manifest names (docs/device.md "The update, step
 * by step"). On ESP_OK the new app is written and set to boot, and its counter is pending in
 * NVS: the caller restarts (esp_restart()); the new app calls fwrel_ota_confirm() once its
 * self-test passed. On any other return the boot partition and the stored counter are as they
 * were.
 *
 * @param res   receives the manifest and the refusal (may be NULL)
 * @param opts  NULL: the Kconfig values
 * @return ESP_OK; FWREL_OTA_ERR_REJECTED (res->first: the core's step and reason, or the OTA
 *         code's decision "ota.decision: ..."); FWREL_OTA_ERR_CONFIG; FWREL_OTA_ERR_MANIFEST;
 *         ESP_ERR_NO_MEM; esp_https_ota's, esp_encrypted_img's or NVS's error
 */
esp_err_t fwrel_ota_update(fwrel_ota_result *res, const fwrel_ota_opts *opts);

/**
 * Confirm the running app after its self-test: with the bootloader's rollback, mark it valid
 * (esp_ota_mark_app_valid_cancel_rollback()); then, if the counter pending in NVS belongs to
 * this app's partition, store it as the installed counter and drop the pending one. A pending
 * counter of another partition (an update cut before it was set to boot, or rolled back) is
 * dropped. Call it at every boot once the app works: it is idempotent, and a power loss between
 * its writes is completed by the next call.
 * @return ESP_OK; app_update's or NVS's error
 */
esp_err_t fwrel_ota_confirm(void);

/**
 * The self-test of a new app failed: mark it invalid and reboot into the previous one
 * (esp_ota_mark_app_invalid_rollback_and_reboot()). The stored counter is not raised (the
 * previous app's fwrel_ota_confirm() drops the pending one). Returns only on failure.
 * @return ESP_ERR_INVALID_STATE: the running app is not waiting for its confirmation
 *         (ESP_OTA_IMG_PENDING_VERIFY), so it is not rolled back; app_update's error
 */
esp_err_t fwrel_ota_reject(void);

/**
 * The installed counter kept in NVS.
 * @param counter  receives it
 * @return ESP_OK; ESP_ERR_NVS_NOT_FOUND (none stored yet); NVS's error
 */
esp_err_t fwrel_ota_get_counter(uint64_t *counter);

#ifdef __cplusplus
}
#endif
#endif
