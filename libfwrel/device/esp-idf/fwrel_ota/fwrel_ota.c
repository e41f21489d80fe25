/*
 * fwrel_ota.c - fwrel release manifests on ESP-IDF (fwrel_ota.h; docs/device.md "The ESP-IDF
 * component"). Gathers what the device is and holds (Kconfig, NVS, eFuse, the running app),
 * fetches the manifest, and calls the device core for every decision: fwrel_dev_verify() for the
 * manifest, fwrel_dev_ota_decision() for the OTA rule, fwrel_dev_bind_*() for the image bytes,
 * fwrel_dev_counter_to_store() for the counter. What is here is transport and state.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sdkconfig.h"

#include "esp_app_desc.h"
#include "esp_encrypted_img.h"
#include "esp_err.h"
#include "esp_http_client.h"
#include "esp_https_ota.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "esp_partition.h"
#include "hal/efuse_hal.h"
#include "mbedtls/pem.h"
#include "mbedtls/platform_util.h"
#include "nvs.h"
#if CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
#include "esp_efuse.h"
#endif

#include "fwrel_dev.h"
#include "fwrel_ota.h"

#if !CONFIG_ESP_HTTPS_OTA_DECRYPT_CB
#error "fwrel_ota needs CONFIG_ESP_HTTPS_OTA_DECRYPT_CB=y (esp_encrypted_img)"
#endif
#if CONFIG_FWREL_OTA_ENCRYPTED_IMAGE && CONFIG_PRE_ENCRYPTED_RSA_USE_DS
#error "fwrel_ota: the DS peripheral scheme of esp_encrypted_img is not supported yet"
#endif

static const char *TAG = "fwrel_ota";

/* The Kconfig files, embedded under fixed names by CMakeLists.txt (EMBED_TXTFILES end with a NUL,
 * which mbedtls_pem_read_buffer() and esp_encrypted_img's PEM parser need). */
extern const char trusted_pem_start[] asm("_binary_fwrel_trusted_keys_pem_start");
extern const char trusted_pem_end[] asm("_binary_fwrel_trusted_keys_pem_end");
#if CONFIG_FWREL_OTA_RECIPIENT_EMBEDDED
extern const uint8_t rcpt_key_start[] asm("_binary_fwrel_manifest_key_bin_start");
extern const uint8_t rcpt_key_end[] asm("_binary_fwrel_manifest_key_bin_end");
#endif
#if CONFIG_FWREL_OTA_ENCRYPTED_IMAGE && CONFIG_PRE_ENCRYPTED_OTA_USE_RSA
extern const char image_key_start[] asm("_binary_fwrel_image_key_pem_start");
extern const char image_key_end[] asm("_binary_fwrel_image_key_pem_end");
#endif

/* NVS keys (docs/device.md "State on the device"). */
#define KEY_COUNTER   "counter"   /* u64: the installed release counter */
#define KEY_PENDING   "pending"   /* u64: the counter of the release written, not yet confirmed */
#define KEY_PEND_ADDR "pend_addr" /* u32: flash address of the partition it was written to */
#define KEY_RCPT_TYPE "rcpt_type"
#define KEY_RCPT_ID   "rcpt_keyid"
#define KEY_RCPT_KEY  "rcpt_key"

#define RCPT_KEY_MAX 4096 /* an RSA-4096 private key's DER is about 2,400 bytes */
#define PEM_BEGIN    "-----BEGIN PUBLIC KEY-----"
#define PEM_END      "-----END PUBLIC KEY-----"

/* Everything one update holds, on the heap (about 45 KiB with the work area). */
typedef struct ota_state {
    fwrel_dev_config cfg;
    fwrel_dev_result res;
    mbedtls_pem_context pem[FWREL_DEV_MAX_TRUSTED];
    size_t npem;
    char channels[64];
    uint8_t *rcpt_key; /* NVS: the key read, wiped and freed at the end */
    size_t rcpt_len;
    uint8_t *envelope;
    size_t envelope_len;
    /* the download */
    fwrel_dev_bind enc, img; /* image.encrypted over the file, image.signed over the plaintext */
    esp_decrypt_handle_t dec;
    int bind_rc; /* a binding's refusal or failure inside the decrypt callback */
    fwrel_dev_step_fn step;
    void *step_ctx;
} ota_state;

static void log_step(void *ctx, const char *name, int verdict, const char *detail)
{
    (void)ctx;
    static const char *const v[] = {"pass", "FAIL", "skip", "info"};
    const char *vs = verdict >= 0 && verdict <= 3 ? v[verdict] : "?";
    if (verdict == FWREL_DEV_FAIL)
        ESP_LOGW(TAG, "%-24s %s  %s", name, vs, detail);
    else
        ESP_LOGI(TAG, "%-24s %s  %s", name, vs, detail);
}

static esp_err_t nvs_open_rw(nvs_handle_t *h)
{
    return nvs_open_from_partition(CONFIG_FWREL_OTA_NVS_PARTITION, CONFIG_FWREL_OTA_NVS_NAMESPACE,
                                   NVS_READWRITE, h);
}

esp_err_t fwrel_ota_get_counter(uint64_t *counter)
{
    nvs_handle_t h;
    esp_err_t err = nvs_open_from_partition(CONFIG_FWREL_OTA_NVS_PARTITION,
                                            CONFIG_FWREL_OTA_NVS_NAMESPACE, NVS_READONLY, &h);
    if (err != ESP_OK)
        return err;
    err = nvs_get_u64(h, KEY_COUNTER, counter);
    nvs_close(h);
    return err;
}

/* The counter floor: the installed counter, or the pending one when the running app is the
 * release it belongs to (written, booted, not yet confirmed): an unconfirmed app takes no
 * release older than itself. */
static esp_err_t load_counter(fwrel_dev_config *cfg)
{
    nvs_handle_t h;
    uint64_t counter = 0, pending = 0;
    uint32_t addr = 0;
    esp_err_t err = nvs_open_rw(&h);
    if (err != ESP_OK)
        return err;
    err = nvs_get_u64(h, KEY_COUNTER, &counter);
    if (err == ESP_OK) {
        cfg->has_counter = 1;
        cfg->counter = counter;
    } else if (err != ESP_ERR_NVS_NOT_FOUND) {
        goto done;
    }
    if (nvs_get_u64(h, KEY_PENDING, &pending) == ESP_OK &&
        nvs_get_u32(h, KEY_PEND_ADDR, &addr) == ESP_OK) {
        const esp_partition_t *running = esp_ota_get_running_partition();
        if (running != NULL && running->address == addr &&
            (!cfg->has_counter || pending > cfg->counter)) {
            cfg->has_counter = 1;
            cfg->counter = pending;
        }
    }
    err = ESP_OK;
done:
    nvs_close(h);
    return err;
}

/* The trusted keys: each PEM block of the embedded file decoded to its DER SubjectPublicKeyInfo,
 * held in st->pem until the end of the update. */
static esp_err_t load_trusted(ota_state *st)
{
    const char *p = trusted_pem_start;
    while ((p = strstr(p, PEM_BEGIN)) != NULL) {
        size_t used = 0, len = 0;
        if (st->npem == FWREL_DEV_MAX_TRUSTED) {
            ESP_LOGE(TAG, "more than %d trusted keys in %s", FWREL_DEV_MAX_TRUSTED,
                     CONFIG_FWREL_OTA_TRUSTED_KEYS_FILE);
            return FWREL_OTA_ERR_CONFIG;
        }
        mbedtls_pem_context *pem = &st->pem[st->npem++];
        mbedtls_pem_init(pem);
        int rc = mbedtls_pem_read_buffer(pem, PEM_BEGIN, PEM_END, (const unsigned char *)p, NULL, 0,
                                         &used);
        if (rc != 0 || used == 0) {
            ESP_LOGE(TAG, "trusted key %u: not a PEM public key (mbedTLS -0x%04x)",
                     (unsigned)st->npem, (unsigned)-rc);
            return FWREL_OTA_ERR_CONFIG;
        }
        st->cfg.trusted[st->cfg.ntrusted].spki = mbedtls_pem_get_buffer(pem, &len);
        st->cfg.trusted[st->cfg.ntrusted].len = len;
        st->cfg.ntrusted++;
        p += used;
    }
    if (st->cfg.ntrusted == 0) {
        ESP_LOGE(TAG, "no trusted key in %s", CONFIG_FWREL_OTA_TRUSTED_KEYS_FILE);
        return FWREL_OTA_ERR_CONFIG;
    }
    return ESP_OK;
}

/* The release channels of the Kconfig string, split at the commas into st->channels. */
static esp_err_t load_channels(ota_state *st)
{
    size_t n = strlen(CONFIG_FWREL_OTA_CHANNELS);
    if (n == 0 || n >= sizeof(st->channels))
        return FWREL_OTA_ERR_CONFIG;
    memcpy(st->channels, CONFIG_FWREL_OTA_CHANNELS, n + 1);
    char *s = st->channels;
    for (;;) {
        char *comma = strchr(s, ',');
        if (comma != NULL)
            *comma = '\0';
        if (*s == '\0' || st->cfg.nchannels == FWREL_DEV_MAX_CHANNELS)
            return FWREL_OTA_ERR_CONFIG;
        st->cfg.channels[st->cfg.nchannels++] = s;
        if (comma == NULL)
            return ESP_OK;
        s = comma + 1;
    }
}

#if CONFIG_FWREL_OTA_RECIPIENT_EMBEDDED
static int unhex32(uint8_t out[32], const char *s)
{
    if (strlen(s) != 64)
        return -1;
    for (size_t i = 0; i < 64; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | v : v << 4);
    }
    return 0;
}
#endif

/* The device's manifest key (Kconfig FWREL_OTA_RECIPIENT_*). */
static esp_err_t load_recipient(ota_state *st)
{
    fwrel_dev_recipient *r = &st->cfg.recipient;
#if CONFIG_FWREL_OTA_RECIPIENT_EMBEDDED
#if CONFIG_FWREL_OTA_RECIPIENT_RSA4096
    r->type = FWREL_DEV_RCPT_RSA4096;
#elif CONFIG_FWREL_OTA_RECIPIENT_P256
    r->type = FWREL_DEV_RCPT_P256;
#elif CONFIG_FWREL_OTA_RECIPIENT_X25519
    r->type = FWREL_DEV_RCPT_X25519;
#else
#error "fwrel_ota: no FWREL_OTA_RECIPIENT_* key type"
#endif
    if (unhex32(r->keyid, CONFIG_FWREL_OTA_RECIPIENT_KEYID) != 0) {
        ESP_LOGE(TAG, "CONFIG_FWREL_OTA_RECIPIENT_KEYID: not 64 hex digits");
        return FWREL_OTA_ERR_CONFIG;
    }
    r->key = rcpt_key_start;
    r->key_len = (size_t)(rcpt_key_end - rcpt_key_start);
    return ESP_OK;
#elif CONFIG_FWREL_OTA_RECIPIENT_NVS
    nvs_handle_t h;
    uint8_t type = 0;
    size_t idlen = sizeof(r->keyid), len = 0;
    esp_err_t err = nvs_open_from_partition(CONFIG_FWREL_OTA_NVS_PARTITION,
                                            CONFIG_FWREL_OTA_NVS_NAMESPACE, NVS_READONLY, &h);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "no manifest key in NVS (%s)", esp_err_to_name(err));
        return FWREL_OTA_ERR_CONFIG;
    }
    if (nvs_get_u8(h, KEY_RCPT_TYPE, &type) != ESP_OK || type < FWREL_DEV_RCPT_RSA4096 ||
        type > FWREL_DEV_RCPT_P256 || nvs_get_blob(h, KEY_RCPT_ID, r->keyid, &idlen) != ESP_OK ||
        idlen != sizeof(r->keyid) || nvs_get_blob(h, KEY_RCPT_KEY, NULL, &len) != ESP_OK ||
        len == 0 || len > RCPT_KEY_MAX) {
        nvs_close(h);
        ESP_LOGE(TAG, "NVS %s: rcpt_type, rcpt_keyid or rcpt_key missing or wrong",
                 CONFIG_FWREL_OTA_NVS_NAMESPACE);
        return FWREL_OTA_ERR_CONFIG;
    }
    st->rcpt_key = malloc(len);
    if (st->rcpt_key == NULL) {
        nvs_close(h);
        return ESP_ERR_NO_MEM;
    }
    st->rcpt_len = len;
    err = nvs_get_blob(h, KEY_RCPT_KEY, st->rcpt_key, &len);
    nvs_close(h);
    if (err != ESP_OK || len != st->rcpt_len)
        return FWREL_OTA_ERR_CONFIG;
    r->type = type;
    r->key = st->rcpt_key;
    r->key_len = len;
    return ESP_OK;
#else
#error "fwrel_ota: no FWREL_OTA_RECIPIENT_* source"
#endif
}

/* What the device is and holds: fwrel_dev_config (fwrel_dev.h) from Kconfig, NVS and eFuse. */
static esp_err_t load_config(ota_state *st)
{
    fwrel_dev_config *cfg = &st->cfg;
    esp_err_t err;
    cfg->crypto = &fwrel_dev_crypto_mbedtls;
    cfg->threshold = CONFIG_FWREL_OTA_THRESHOLD;
    cfg->product = CONFIG_FWREL_OTA_PRODUCT;
    cfg->device_type = CONFIG_FWREL_OTA_DEVICE_TYPE;
    cfg->chip = CONFIG_IDF_TARGET; /* ESP-IDF's target names are esptool's chip names */
    cfg->chip_rev = (uint16_t)efuse_hal_chip_revision();
#if CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
    cfg->anti_rollback = 1;
    cfg->efuse_secure_version = esp_efuse_read_secure_version();
#endif
    cfg->running_version = esp_app_get_description()->version;
#if CONFIG_FWREL_OTA_NO_CLOCK
    cfg->no_clock = 1;
#endif
    if ((err = load_channels(st)) != ESP_OK) {
        ESP_LOGE(TAG, "CONFIG_FWREL_OTA_CHANNELS: 1 to 3 names separated by commas");
        return err;
    }
    if ((err = load_trusted(st)) != ESP_OK || (err = load_recipient(st)) != ESP_OK)
        return err;
    return load_counter(cfg);
}

/* What only the verification needs goes before the image is downloaded (docs/device.md
 * "Memory"): the keys (the device's wiped), the envelope. */
static void free_verify_inputs(ota_state *st)
{
    for (size_t i = 0; i < st->npem; i++)
        mbedtls_pem_free(&st->pem[i]);
    st->npem = 0;
    memset(st->cfg.trusted, 0, sizeof(st->cfg.trusted));
    memset(&st->cfg.recipient, 0, sizeof(st->cfg.recipient));
    if (st->rcpt_key != NULL) {
        mbedtls_platform_zeroize(st->rcpt_key, st->rcpt_len);
        free(st->rcpt_key);
        st->rcpt_key = NULL;
    }
    free(st->envelope);
    st->envelope = NULL;
}

static void free_state(ota_state *st)
{
    free_verify_inputs(st);
    fwrel_dev_bind_abort(&st->enc);
    fwrel_dev_bind_abort(&st->img);
    if (st->dec != NULL)
        esp_encrypted_img_decrypt_abort(st->dec);
    free(st);
}

/* GET url into st->envelope, refusing more than CONFIG_FWREL_OTA_MANIFEST_MAX bytes before they
 * are read (a Content-Length above it) or as soon as one byte more arrives. */
static esp_err_t fetch_manifest(ota_state *st, const esp_http_client_config_t *hc)
{
    const size_t max = CONFIG_FWREL_OTA_MANIFEST_MAX;
    esp_err_t err = ESP_OK;
    size_t got = 0;
    esp_http_client_handle_t client = esp_http_client_init(hc);
    if (client == NULL)
        return ESP_ERR_NO_MEM;
    if ((st->envelope = malloc(max)) == NULL) {
        err = ESP_ERR_NO_MEM;
        goto done;
    }
    if ((err = esp_http_client_open(client, 0)) != ESP_OK)
        goto done;
    int64_t clen = esp_http_client_fetch_headers(client);
    int status = esp_http_client_get_status_code(client);
    if (clen < 0 || status != 200 || clen > (int64_t)max) {
        ESP_LOGE(TAG, "manifest: HTTP %d, length %lld (at most %u)", status, (long long)clen,
                 (unsigned)max);
        err = FWREL_OTA_ERR_MANIFEST;
        goto done;
    }
    for (int eagain = 0;;) {
        char extra;
        int n = got < max
                    ? esp_http_client_read(client, (char *)st->envelope + got, (int)(max - got))
                    : esp_http_client_read(client, &extra, 1);
        if (n == -ESP_ERR_HTTP_EAGAIN && ++eagain < 3)
            continue; /* a timeout before data was ready: twice more, then give up */
        if (n < 0 || (n > 0 && got == max)) {
            ESP_LOGE(TAG, "manifest: %s", n < 0 ? "read failed" : "larger than allowed");
            err = FWREL_OTA_ERR_MANIFEST;
            goto done;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (!esp_http_client_is_complete_data_received(client)) {
        ESP_LOGE(TAG, "manifest: download cut after %u bytes", (unsigned)got);
        err = FWREL_OTA_ERR_MANIFEST;
        goto done;
    }
    st->envelope_len = got;
done:
    esp_http_client_close(client);
    esp_http_client_cleanup(client);
    return err;
}

/* The image's URL: the manifest URL up to its last '/' (before a query), then image_name with
 * every byte outside RFC 3986's unreserved set percent-encoded. */
static char *image_url(const char *manifest_url, const char *name)
{
    size_t q = strcspn(manifest_url, "?#"), dir = 0;
    for (size_t i = 0; i < q; i++)
        if (manifest_url[i] == '/')
            dir = i + 1;
    if (dir == 0)
        return NULL;
    char *url = malloc(dir + 3 * strlen(name) + 1);
    if (url == NULL)
        return NULL;
    memcpy(url, manifest_url, dir);
    char *o = url + dir;
    for (const unsigned char *s = (const unsigned char *)name; *s != '\0'; s++) {
        if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
            *s == '-' || *s == '.' || *s == '_' || *s == '~') {
            *o++ = (char)*s;
        } else {
            static const char hex[] = "0123456789ABCDEF";
            *o++ = '%';
            *o++ = hex[*s >> 4];
            *o++ = hex[*s & 15];
        }
    }
    *o = '\0';
    return url;
}

/* esp_https_ota's decrypt callback: every downloaded byte is hashed for image.encrypted before
 * esp_encrypted_img decrypts it, every decrypted byte for image.signed before it is written. A
 * byte beyond the manifest's sizes stops the download there. */
static esp_err_t decrypt_cb(decrypt_cb_arg_t *args, void *user)
{
    ota_state *st = user;
    pre_enc_decrypt_arg_t p = {0};
    int rc = fwrel_dev_bind_update(&st->enc, (const uint8_t *)args->data_in, args->data_in_len);
    if (rc != FWREL_DEV_OK) {
        st->bind_rc = rc;
        return ESP_FAIL;
    }
    if (st->dec == NULL) {
        /* a plain image: the bytes written are the bytes downloaded (esp_https_ota frees
         * data_out, so they are handed over in a buffer of their own) */
        if ((p.data_out = malloc(args->data_in_len)) == NULL)
            return ESP_ERR_NO_MEM;
        memcpy(p.data_out, args->data_in, args->data_in_len);
        p.data_out_len = args->data_in_len;
    } else {
        p.data_in = args->data_in;
        p.data_in_len = args->data_in_len;
        esp_err_t err = esp_encrypted_img_decrypt_data(st->dec, &p);
        if (err != ESP_OK && err != ESP_ERR_NOT_FINISHED) {
            free(p.data_out);
            return err;
        }
    }
    if (p.data_out_len > 0) {
        rc = fwrel_dev_bind_update(&st->img, (const uint8_t *)p.data_out, p.data_out_len);
        if (rc != FWREL_DEV_OK) {
            free(p.data_out);
            st->bind_rc = rc;
            return ESP_FAIL;
        }
    }
    /* esp_https_ota writes data_out to flash and frees it. */
    args->data_out = p.data_out;
    args->data_out_len = p.data_out_len;
    return ESP_OK;
}

static esp_err_t set_pending(uint64_t counter, uint32_t addr)
{
    nvs_handle_t h;
    esp_err_t err = nvs_open_rw(&h);
    if (err != ESP_OK)
        return err;
    if ((err = nvs_set_u64(h, KEY_PENDING, counter)) == ESP_OK &&
        (err = nvs_set_u32(h, KEY_PEND_ADDR, addr)) == ESP_OK)
        err = nvs_commit(h);
    nvs_close(h);
    return err;
}

static void drop_pending(nvs_handle_t h)
{
    nvs_erase_key(h, KEY_PENDING);
    nvs_erase_key(h, KEY_PEND_ADDR);
}

/* Download, decrypt and write the image, binding both streams; finish the OTA only when both
 * equal the manifest's, with the pending counter stored first. */
static esp_err_t install(ota_state *st, fwrel_ota_result *res, const char *url,
                         const esp_http_client_config_t *base)
{
    const fwrel_dev_manifest *m = &res->manifest;
    esp_http_client_config_t hc = *base;
    esp_https_ota_handle_t ota = NULL;
    esp_err_t err;
    const esp_partition_t *staging = esp_ota_get_next_update_partition(NULL);
    if (staging == NULL)
        return ESP_ERR_NOT_FOUND;
#if CONFIG_FWREL_OTA_ENCRYPTED_IMAGE
    esp_decrypt_cfg_t dcfg = {0};
#if CONFIG_PRE_ENCRYPTED_OTA_USE_RSA
    dcfg.rsa_priv_key = image_key_start;
    dcfg.rsa_priv_key_len = (size_t)(image_key_end - image_key_start);
#elif CONFIG_PRE_ENCRYPTED_OTA_USE_ECIES
    dcfg.hmac_key_id = CONFIG_FWREL_OTA_IMAGE_HMAC_KEY_ID;
#endif
    if ((st->dec = esp_encrypted_img_decrypt_start(&dcfg)) == NULL)
        return ESP_FAIL;
#endif
    if (fwrel_dev_bind_start(&st->enc, st->cfg.crypto, m, FWREL_DEV_BIND_ENCRYPTED) != 0 ||
        fwrel_dev_bind_start(&st->img, st->cfg.crypto, m, FWREL_DEV_BIND_SIGNED) != 0)
        return ESP_FAIL;
    hc.url = url;
    esp_https_ota_config_t oc = {
        .http_config = &hc,
        .decrypt_cb = decrypt_cb,
        .decrypt_user_ctx = st,
        .enc_img_header_size = st->dec != NULL ? esp_encrypted_img_get_header_size() : 0,
    };
    /* esp_https_ota_begin() writes to the same partition when none is given. */
    if ((err = esp_https_ota_begin(&oc, &ota)) != ESP_OK)
        return err;
    do
        err = esp_https_ota_perform(ota);
    while (err == ESP_ERR_HTTPS_OTA_IN_PROGRESS);

    if (st->bind_rc == FWREL_DEV_EREJECT) {
        /* more bytes than the manifest names, in the file or in its plaintext: the core
         * words the refusal */
        fwrel_dev_bind_finish(st->enc.got > st->enc.want.size ? &st->enc : &st->img, &st->res,
                              st->step, st->step_ctx);
        err = FWREL_OTA_ERR_REJECTED;
        goto abort;
    }
    if (err != ESP_OK)
        goto abort;
    if (!esp_https_ota_is_complete_data_received(ota)) {
        ESP_LOGE(TAG, "image: download cut");
        err = ESP_FAIL;
        goto abort;
    }
    /* docs/manifest.md section 4 step 9: the file, then (after the GCM tag) the plaintext. */
    if (fwrel_dev_bind_finish(&st->enc, &st->res, st->step, st->step_ctx) != FWREL_DEV_OK) {
        err = FWREL_OTA_ERR_REJECTED;
        goto abort;
    }
    if (st->dec != NULL) {
        err = esp_encrypted_img_decrypt_end(st->dec); /* frees the handle, whatever it returns */
        st->dec = NULL;
        if (err != ESP_OK)
            goto abort;
    }
    if (fwrel_dev_bind_finish(&st->img, &st->res, st->step, st->step_ctx) != FWREL_DEV_OK) {
        err = FWREL_OTA_ERR_REJECTED;
        goto abort;
    }
    /* The counter waits in NVS, tied to the partition, before the boot partition is switched
     * (docs/device.md "Power loss and cut downloads"). */
    if ((err = set_pending(fwrel_dev_counter_to_store(m), staging->address)) != ESP_OK)
        goto abort;
    err = esp_https_ota_finish(ota); /* esp_ota_end(): the image and Secure Boot checks */
    if (err != ESP_OK) {
        nvs_handle_t h;
        if (nvs_open_rw(&h) == ESP_OK) {
            drop_pending(h);
            nvs_commit(h);
            nvs_close(h);
        }
    }
    return err;
abort:
    esp_https_ota_abort(ota);
    return err;
}

esp_err_t fwrel_ota_update(fwrel_ota_result *res, const fwrel_ota_opts *opts)
{
    static const fwrel_ota_opts none = {0};
    fwrel_ota_result local;
    esp_http_client_config_t hc = {0};
    fwrel_dev_work *work = NULL;
    char *url = NULL;
    esp_err_t err;
    if (res == NULL)
        res = &local;
    if (opts == NULL)
        opts = &none;
    memset(res, 0, sizeof(*res));
    ota_state *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return ESP_ERR_NO_MEM;
    st->step = opts->step != NULL ? opts->step : log_step;
    st->step_ctx = opts->step_ctx;
    if ((err = load_config(st)) != ESP_OK)
        goto done;

    if (opts->http != NULL)
        hc = *opts->http;
    if (hc.timeout_ms == 0)
        hc.timeout_ms = CONFIG_FWREL_OTA_HTTP_TIMEOUT_MS;
    hc.url = opts->manifest_url != NULL ? opts->manifest_url : CONFIG_FWREL_OTA_MANIFEST_URL;
    if ((err = fetch_manifest(st, &hc)) != ESP_OK)
        goto done;

    uint64_t now = opts->now;
    if (now == 0 && time(NULL) > 0)
        now = (uint64_t)time(NULL);
    if ((work = malloc(sizeof(*work))) == NULL) {
        err = ESP_ERR_NO_MEM;
        goto done;
    }
    int rc = fwrel_dev_verify(&res->manifest, &st->res, work, &st->cfg, st->envelope,
                              st->envelope_len, now, st->step, st->step_ctx);
    free(work); /* wiped by the core */
    free_verify_inputs(st);
    if (rc != FWREL_DEV_OK) {
        err = rc == FWREL_DEV_EREJECT ? FWREL_OTA_ERR_REJECTED : FWREL_OTA_ERR_CONFIG;
        goto done;
    }
    res->verified = 1;
    char why[FWREL_DEV_DETAIL_MAX];
    if (!fwrel_dev_ota_decision(why, sizeof(why), &st->cfg, &res->manifest)) {
        st->step(st->step_ctx, "ota.decision", FWREL_DEV_FAIL, why);
        snprintf(st->res.first, sizeof(st->res.first), "ota.decision: %s", why);
        err = FWREL_OTA_ERR_REJECTED;
        goto done;
    }
    st->step(st->step_ctx, "ota.decision", FWREL_DEV_PASS, why);

    if (opts->image_url == NULL && (url = image_url(hc.url, res->manifest.image_name)) == NULL) {
        err = ESP_ERR_NO_MEM;
        goto done;
    }
    err = install(st, res, opts->image_url != NULL ? opts->image_url : url, &hc);
done:
    if (st->res.first[0] != '\0')
        memcpy(res->first, st->res.first, sizeof(res->first));
    free(url);
    free_state(st);
    return err;
}

esp_err_t fwrel_ota_confirm(void)
{
    const esp_partition_t *running = esp_ota_get_running_partition();
    esp_ota_img_states_t state;
    uint64_t counter = 0, pending = 0;
    uint32_t addr = 0;
    nvs_handle_t h;
    esp_err_t err;
    if (running == NULL)
        return ESP_ERR_NOT_FOUND;
    /* 1. the app is valid: the bootloader no longer rolls it back */
    if (esp_ota_get_state_partition(running, &state) == ESP_OK &&
        state == ESP_OTA_IMG_PENDING_VERIFY &&
        (err = esp_ota_mark_app_valid_cancel_rollback()) != ESP_OK)
        return err;
    if ((err = nvs_open_rw(&h)) != ESP_OK)
        return err;
    if (nvs_get_u64(h, KEY_PENDING, &pending) != ESP_OK ||
        nvs_get_u32(h, KEY_PEND_ADDR, &addr) != ESP_OK) {
        err = ESP_OK; /* nothing pending (or half of it: dropped below) */
        drop_pending(h);
        goto commit;
    }
    /* 2. its counter becomes the installed one; 3. the pending one goes. A power loss between
     * 2 and 3 leaves both, and the next call does 2 again (max) and 3. */
    if (addr == running->address) {
        if (nvs_get_u64(h, KEY_COUNTER, &counter) != ESP_OK || pending > counter) {
            if ((err = nvs_set_u64(h, KEY_COUNTER, pending)) != ESP_OK ||
                (err = nvs_commit(h)) != ESP_OK)
                goto close;
            ESP_LOGI(TAG, "release counter %llu installed", (unsigned long long)pending);
        }
    } else {
        ESP_LOGW(TAG, "release counter %llu of another partition dropped (update not booted)",
                 (unsigned long long)pending);
    }
    drop_pending(h);
commit:
    if (err == ESP_OK)
        err = nvs_commit(h);
close:
    nvs_close(h);
    return err;
}

esp_err_t fwrel_ota_reject(void)
{
    const esp_partition_t *running = esp_ota_get_running_partition();
    esp_ota_img_states_t state;
    /* Only an app still on trial goes back: a confirmed one that fails a later self-test stays. */
    if (running == NULL || esp_ota_get_state_partition(running, &state) != ESP_OK ||
        state != ESP_OTA_IMG_PENDING_VERIFY)
        return ESP_ERR_INVALID_STATE;
    return esp_ota_mark_app_invalid_rollback_and_reboot();
}
