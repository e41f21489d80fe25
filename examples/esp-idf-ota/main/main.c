/*
 * main.c - an app that takes its updates through fwrel release manifests (README.md,
 * docs/device.md "The ESP-IDF component").
 *
 * At each boot: the self-test, then fwrel_ota_confirm() (marks this app valid and, if it is the
 * release just installed, stores its counter); then connect, set the clock, and ask for an update.
 */
#include <stdbool.h>

#include "esp_crt_bundle.h"
#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_netif_sntp.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "nvs_flash.h"
#include "protocol_examples_common.h"

#include "fwrel_ota.h"

static const char *TAG = "example";

/* What the product checks before it trusts a new app: its sensors, its peripherals, that it can
 * reach its server... Here: that the network comes up. */
static bool self_test(void)
{
    return example_connect() == ESP_OK;
}

static void update_task(void *arg)
{
    (void)arg;
    fwrel_ota_result res;
    const esp_http_client_config_t http = {
        .crt_bundle_attach = esp_crt_bundle_attach,
        .timeout_ms = 10000,
        .keep_alive_enable = true,
    };
    const fwrel_ota_opts opts = {.http = &http};

    /* Expiry is checked against the clock: set it first (or CONFIG_FWREL_OTA_NO_CLOCK). */
    esp_sntp_config_t sntp = ESP_NETIF_SNTP_DEFAULT_CONFIG("pool.ntp.org");
    esp_netif_sntp_init(&sntp);
    if (esp_netif_sntp_sync_wait(pdMS_TO_TICKS(15000)) != ESP_OK)
        ESP_LOGW(TAG, "no time from SNTP: the manifest will be refused (manifest.created)");

    esp_err_t err = fwrel_ota_update(&res, &opts);
    if (err == ESP_OK) {
        ESP_LOGI(TAG, "release %s (counter %llu) installed, restarting", res.manifest.version,
                 (unsigned long long)res.manifest.counter);
        esp_restart();
    } else if (err == FWREL_OTA_ERR_REJECTED) {
        /* The normal answer when there is nothing new: "manifest.counter: ..." */
        ESP_LOGI(TAG, "no update: %s", res.first);
    } else {
        ESP_LOGE(TAG, "update failed: %s", esp_err_to_name(err));
    }
    vTaskDelete(NULL);
}

void app_main(void)
{
    /* Never erase the NVS partition that holds the release counter (docs/device.md): a device
     * that forgets it takes an older release again. */
    ESP_ERROR_CHECK(nvs_flash_init());
    ESP_ERROR_CHECK(esp_netif_init());
    ESP_ERROR_CHECK(esp_event_loop_create_default());

    if (!self_test()) {
        ESP_LOGE(TAG, "self-test failed: back to the previous app");
        fwrel_ota_reject(); /* returns only if there is no previous app to go back to */
        return;
    }
    ESP_ERROR_CHECK(fwrel_ota_confirm());

    xTaskCreate(update_task, "fwrel_ota", 12 * 1024, NULL, 5, NULL);
}
