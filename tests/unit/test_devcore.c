/*
 * test_devcore.c - the device core (libfwrel/device/fwrel_dev.h), the one reader of manifests:
 * every manifest made here with libfwrel's writer (fwrel_manifest_sign, _seal) is read by
 * fwrel_device_read_manifest (what fwrel-verify --device runs: the core with the OpenSSL port,
 * configured from a device profile) and by fwrel_dev_verify through each crypto port (OpenSSL;
 * mbedTLS when built), and the verdict, the error line and every step (name, verdict, reason)
 * must be the same; each refusal is asserted at its step. Also the image binding, and with
 * $FWREL_VECTORS manifests of the vectors' images read and bound through both ports.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "fwrel/device.h"
#include "fwrel/manifest.h"
#include "fwrel/report.h"
#include "fwrel_dev.h"
#include "util.h"

#define NOW 1750000000ull

/* Signers: 3 Ed25519, 3 ECDSA P-256, 2 RSA-3072 (8 distinct keys); recipients of each type. */
enum { NSIGNERS = 8 };
static fwrel_pkey *signer[NSIGNERS], *stranger, *rcpt[3], *other_x25519;
static uint8_t *spki[NSIGNERS];
static int spki_len[NSIGNERS];
static char tmpdir[64];

static const fwrel_dev_crypto *ports[2];
static size_t nports;

static int group_setup(void **state)
{
    (void)state;
    for (int i = 0; i < NSIGNERS; i++) {
        if (i < 3)
            signer[i] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        else if (i < 6)
            assert_int_equal(fwrel_key_generate(&signer[i], FWREL_KEY_ECDSA256), 0);
        else
            assert_int_equal(fwrel_key_generate(&signer[i], FWREL_KEY_RSA3072), 0);
        assert_non_null(signer[i]);
        spki[i] = NULL;
        spki_len[i] = i2d_PUBKEY(signer[i], &spki[i]);
        assert_true(spki_len[i] > 0);
    }
    stranger = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    rcpt[0] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
    rcpt[1] = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    assert_int_equal(fwrel_key_generate(&rcpt[2], FWREL_KEY_ECDSA256), 0);
    other_x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    assert_non_null(stranger);
    assert_non_null(rcpt[0]);
    assert_non_null(rcpt[1]);
    assert_non_null(other_x25519);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/fwrel-devcore.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    char path[128];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/rcpt%d.pem", tmpdir, i);
        assert_int_equal(fwrel_key_write_private(rcpt[i], path, NULL, 0, 0), 0);
    }
    for (int i = 0; i < NSIGNERS; i++) {
        snprintf(path, sizeof(path), "%s/signer%d.pub.pem", tmpdir, i);
        assert_int_equal(fwrel_key_write_public(signer[i], path, 0), 0);
    }
    ports[nports++] = &fwrel_dev_crypto_openssl;
#ifdef FWREL_DEV_HAVE_MBEDTLS
    ports[nports++] = &fwrel_dev_crypto_mbedtls;
#endif
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    for (int i = 0; i < NSIGNERS; i++) {
        fwrel_key_free(signer[i]);
        OPENSSL_free(spki[i]);
    }
    for (int i = 0; i < 3; i++)
        fwrel_key_free(rcpt[i]);
    fwrel_key_free(stranger);
    fwrel_key_free(other_x25519);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The device both verifiers are: one profile for the host, one config for the core. */
struct device {
    int rcpt;       /* index into rcpt[] */
    int trusted[8]; /* indexes into signer[] */
    int ntrusted;
    unsigned threshold;
    const char *device_type; /* NULL: none given (any) */
    int counter;             /* -1: none */
    int anti_rollback;
    const char *chip; /* NULL: esp32c3 */
};

static const struct device default_device = {1, {0, 3, 6}, 3, 1, "board-b", 9, 1, NULL};

/* The core's view of a recipient key. */
struct rkey {
    uint8_t raw[32];
    uint8_t *der;
    int der_len;
};

static void core_key(struct rkey *k, fwrel_dev_recipient *r, int i)
{
    char hex[65];
    memset(k, 0, sizeof(*k));
    r->type = (uint8_t)(i == 0   ? FWREL_DEV_RCPT_RSA4096
                        : i == 1 ? FWREL_DEV_RCPT_X25519
                                 : FWREL_DEV_RCPT_P256);
    assert_int_equal(fwrel_key_id(hex, rcpt[i]), 0);
    assert_int_equal(fwrel_unhex(r->keyid, 32, hex), 0);
    if (i == 0) {
        k->der_len = i2d_PrivateKey(rcpt[0], &k->der);
        assert_true(k->der_len > 0);
        r->key = k->der;
        r->key_len = (size_t)k->der_len;
    } else if (i == 1) {
        size_t n = 32;
        assert_int_equal(EVP_PKEY_get_raw_private_key(rcpt[1], k->raw, &n), 1);
        r->key = k->raw;
        r->key_len = 32;
    } else {
        BIGNUM *bn = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(rcpt[2], OSSL_PKEY_PARAM_PRIV_KEY, &bn), 1);
        assert_int_equal(BN_bn2binpad(bn, k->raw, 32), 32);
        BN_clear_free(bn);
        r->key = k->raw;
        r->key_len = 32;
    }
}

static fwrel_device *host_device(const struct device *d)
{
    char yaml[4096];
    int n = snprintf(yaml, sizeof(yaml),
                     "chip: %s\nchip_revision: \"0.4\"\npartition_size: 0x100000\n"
                     "product: widget\nchannels: [beta, prod]\n%s%s%s"
                     "%s"
                     "running: {version: \"1.0.0\", secure_version: 2}\n"
                     "manifest:\n  key: %s/rcpt%d.pem\n  threshold: %u\n",
                     d->chip ? d->chip : "esp32c3", d->device_type ? "device_type: " : "",
                     d->device_type ? d->device_type : "", d->device_type ? "\n" : "",
                     d->anti_rollback ? "anti_rollback: {secure_version: 2}\n" : "", tmpdir,
                     d->rcpt, d->threshold);
    if (d->counter >= 0)
        n += snprintf(yaml + n, sizeof(yaml) - (size_t)n, "  counter: %d\n", d->counter);
    n += snprintf(yaml + n, sizeof(yaml) - (size_t)n, "  trusted_keys:\n");
    for (int i = 0; i < d->ntrusted; i++)
        n += snprintf(yaml + n, sizeof(yaml) - (size_t)n, "    - %s/signer%d.pub.pem\n", tmpdir,
                      d->trusted[i]);
    fwrel_device *dev = NULL;
    int rc = fwrel_device_parse(&dev, (const uint8_t *)yaml, (size_t)n);
    if (rc != 0)
        fail_msg("profile: %s\n%s", fwrel_error_last()->message, yaml);
    return dev;
}

static void core_config(fwrel_dev_config *c, struct rkey *k, const struct device *d,
                        const fwrel_dev_crypto *port)
{
    memset(c, 0, sizeof(*c));
    c->crypto = port;
    core_key(k, &c->recipient, d->rcpt);
    for (int i = 0; i < d->ntrusted; i++) {
        c->trusted[i].spki = spki[d->trusted[i]];
        c->trusted[i].len = (size_t)spki_len[d->trusted[i]];
    }
    c->ntrusted = (size_t)d->ntrusted;
    c->threshold = d->threshold;
    c->product = "widget";
    c->channels[0] = "beta";
    c->channels[1] = "prod";
    c->nchannels = 2;
    c->device_type = d->device_type;
    c->chip = d->chip ? d->chip : "esp32c3";
    c->chip_rev = 4;
    c->has_counter = d->counter >= 0;
    c->counter = d->counter >= 0 ? (uint64_t)d->counter : 0;
    c->anti_rollback = d->anti_rollback;
    c->efuse_secure_version = 2;
    c->running_version = "1.0.0";
}

/* The steps the core reports, as libfwrel's report holds them. */
struct steps {
    size_t n;
    fwrel_step s[64];
};

static void record(void *ctx, const char *name, int verdict, const char *detail)
{
    struct steps *st = ctx;
    assert_true(st->n < 64);
    assert_true(strlen(detail) < FWREL_STEP_DETAIL_MAX);
    snprintf(st->s[st->n].name, sizeof(st->s[0].name), "%s", name);
    st->s[st->n].verdict = verdict;
    snprintf(st->s[st->n].detail, sizeof(st->s[0].detail), "%s", detail);
    st->n++;
}

static fwrel_dev_work work;
static char first[FWREL_ERROR_MSG_MAX]; /* the host's error line of the last both() */
static fwrel_manifest last;             /* the body the host accepted in the last both() */

/*
 * Read env with the host and with the core through every port: the same verdict, error line
 * and steps. Returns the host's code; first receives the host's error line.
 */
static int both(const struct device *d, const uint8_t *env, size_t len, uint64_t now)
{
    fwrel_device *dev = host_device(d);
    fwrel_report *rep = NULL;
    fwrel_manifest hm;
    assert_int_equal(fwrel_report_new(&rep), 0);
    int hrc = fwrel_device_read_manifest(&hm, rep, dev, env, len, now);
    assert_true(hrc == 0 || hrc == FWREL_EVERIFY);
    snprintf(first, sizeof(first), "%s", hrc ? fwrel_error_last()->message : "");
    if (hrc == 0)
        last = hm;
    for (size_t p = 0; p < nports; p++) {
        fwrel_dev_config cfg;
        struct rkey k;
        struct steps st = {0};
        fwrel_dev_result res;
        fwrel_dev_manifest cm;
        char line[FWREL_DEV_REASON_MAX + 16];
        core_config(&cfg, &k, d, ports[p]);
        int crc = fwrel_dev_verify(&cm, &res, &work, &cfg, env, len, now, record, &st);
        OPENSSL_free(k.der);
        if (hrc == 0 && crc != FWREL_DEV_OK)
            fail_msg("%s: core rejects what the host accepts: %s", ports[p]->name, res.first);
        if (hrc != 0 && crc != FWREL_DEV_EREJECT)
            fail_msg("%s: core %d where the host rejects: %s", ports[p]->name, crc, first);
        snprintf(line, sizeof(line), "rejected at %s", res.first);
        if (hrc != 0)
            assert_string_equal(line, first);
        assert_int_equal(st.n, fwrel_report_count(rep));
        for (size_t i = 0; i < st.n; i++) {
            const fwrel_step *h = fwrel_report_step(rep, i);
            if (strcmp(h->name, st.s[i].name) != 0 || h->verdict != st.s[i].verdict ||
                strcmp(h->detail, st.s[i].detail) != 0)
                fail_msg("%s step %zu: host %s %d '%s', core %s %d '%s'", ports[p]->name, i,
                         h->name, h->verdict, h->detail, st.s[i].name, st.s[i].verdict,
                         st.s[i].detail);
        }
        if (hrc == 0) {
            assert_string_equal(cm.product, hm.product);
            assert_int_equal(cm.device_type_count, hm.device_type_count);
            for (size_t i = 0; i < hm.device_type_count; i++)
                assert_string_equal(cm.device_types[i], hm.device_types[i]);
            assert_string_equal(cm.chip, hm.chip);
            assert_int_equal(cm.chip_rev_min, hm.chip_rev_min);
            assert_int_equal(cm.chip_rev_max, hm.chip_rev_max);
            assert_string_equal(cm.version, hm.version);
            assert_int_equal(cm.secure_version, hm.secure_version);
            assert_int_equal(cm.counter, hm.counter);
            assert_string_equal(cm.channel, hm.channel);
            assert_int_equal(cm.created, hm.created);
            assert_int_equal(cm.expires, hm.expires);
            assert_memory_equal(cm.plain.sha256, hm.plain.sha256, 32);
            assert_memory_equal(cm.signed_image.sha256, hm.signed_image.sha256, 32);
            assert_memory_equal(cm.encrypted.sha256, hm.encrypted.sha256, 32);
            assert_int_equal(cm.encrypted.size, hm.encrypted.size);
            assert_string_equal(cm.image_name, hm.image_name);
            /* The update decision, as libfwrel makes it. */
            char hwhy[FWREL_STEP_DETAIL_MAX], cwhy[FWREL_STEP_DETAIL_MAX];
            int hd =
                fwrel_device_ota_decision(hwhy, sizeof(hwhy), dev, hm.version, hm.secure_version);
            assert_int_equal(fwrel_dev_ota_decision(cwhy, sizeof(cwhy), &cfg, &cm), hd);
            assert_string_equal(cwhy, hwhy);
            assert_int_equal(fwrel_dev_counter_to_store(&cm), hm.counter);
        }
    }
    fwrel_report_free(rep);
    fwrel_device_free(dev);
    return hrc;
}

static void body(fwrel_manifest *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->product, sizeof(m->product), "widget");
    snprintf(m->device_types[0], sizeof(m->device_types[0]), "board-a");
    snprintf(m->device_types[1], sizeof(m->device_types[1]), "board-b");
    m->device_type_count = 2;
    snprintf(m->chip, sizeof(m->chip), "esp32c3");
    m->chip_rev_min = 3;
    m->chip_rev_max = 199;
    snprintf(m->version, sizeof(m->version), "1.2.3");
    m->secure_version = 3;
    m->counter = 10;
    snprintf(m->channel, sizeof(m->channel), "prod");
    m->created = NOW - 86400;
    m->expires = NOW + 86400;
    memset(m->plain.sha256, 0x11, 32);
    m->plain.size = 1000;
    memset(m->signed_image.sha256, 0x22, 32);
    m->signed_image.size = 5000;
    memset(m->encrypted.sha256, 0x33, 32);
    m->encrypted.size = 5100;
    snprintf(m->image_name, sizeof(m->image_name), "firmware.enc");
}

/* signed.json by the given signers, sealed to the given recipients. */
static uint8_t *make(size_t *len, const fwrel_manifest *m, const int *by, int nby, const int *to,
                     int nto)
{
    const fwrel_pkey *keys[8], *rs[8];
    char *signed_json = NULL;
    size_t slen = 0;
    uint8_t *env = NULL;
    for (int i = 0; i < nby; i++)
        keys[i] = by[i] < 0 ? stranger : signer[by[i]];
    for (int i = 0; i < nto; i++)
        rs[i] = to[i] < 0 ? other_x25519 : rcpt[to[i]];
    assert_int_equal(fwrel_manifest_sign(&signed_json, &slen, m, keys, (size_t)nby), 0);
    assert_int_equal(
        fwrel_manifest_seal(&env, len, (const uint8_t *)signed_json, slen, rs, (size_t)nto), 0);
    free(signed_json);
    return env;
}

/* make() read by both(): the host's code. */
static int made(const struct device *d, const fwrel_manifest *m, const int *by, int nby,
                const int *to, int nto, uint64_t now)
{
    size_t len;
    uint8_t *env = make(&len, m, by, nby, to, nto);
    int rc = both(d, env, len, now);
    free(env);
    return rc;
}

static uint8_t *seal_text(size_t *len, const char *text, int to)
{
    const fwrel_pkey *rs[1] = {rcpt[to]};
    uint8_t *env = NULL;
    assert_int_equal(fwrel_manifest_seal(&env, len, (const uint8_t *)text, strlen(text), rs, 1), 0);
    return env;
}

/* signed.json text sealed to the X25519 recipient and read by both(). */
static int sealed(const struct device *d, const char *text)
{
    size_t len;
    uint8_t *env = seal_text(&len, text, 1);
    int rc = both(d, env, len, NOW);
    free(env);
    return rc;
}

/* Each signature algorithm to each recipient type, alone: accepted. */
static void test_each_alg_each_recipient(void **state)
{
    (void)state;
    fwrel_manifest m;
    body(&m);
    for (int r = 0; r < 3; r++)
        for (int a = 0; a < 3; a++) {
            struct device d = default_device;
            int by[1] = {d.trusted[a]}, to[1] = {r};
            d.rcpt = r;
            assert_int_equal(made(&d, &m, by, 1, to, 1, NOW), 0);
        }
}

/* 1..8 signatures with threshold n, by 8 trusted keys; then one short of the threshold. */
static void test_threshold_1_to_8(void **state)
{
    (void)state;
    fwrel_manifest m;
    struct device d = default_device;
    int by[8] = {0, 1, 2, 3, 4, 5, 6, 7}, to[1] = {1};
    body(&m);
    d.ntrusted = 8;
    for (int i = 0; i < 8; i++)
        d.trusted[i] = i;
    for (int n = 1; n <= 8; n++) {
        size_t len;
        uint8_t *env = make(&len, &m, by, n, to, 1);
        d.threshold = (unsigned)n;
        assert_int_equal(both(&d, env, len, NOW), 0);
        if (n < 8) {
            d.threshold = (unsigned)n + 1;
            assert_int_equal(both(&d, env, len, NOW), FWREL_EVERIFY);
            assert_non_null(strstr(first, "rejected at manifest.signatures: "));
        }
        free(env);
    }
}

/* Unknown signers are ignored; a device among several recipients finds its entry. */
static void test_strangers_and_recipients(void **state)
{
    (void)state;
    fwrel_manifest m;
    struct device d = default_device;
    int by[3] = {-1, 0, 6}, to[4] = {-1, 0, 2, 1};
    size_t len;
    body(&m);
    d.threshold = 2;
    uint8_t *env = make(&len, &m, by, 3, to, 4);
    for (int r = 0; r < 3; r++) {
        d.rcpt = r;
        assert_int_equal(both(&d, env, len, NOW), 0);
    }
    free(env);
    /* Only a stranger signed: 0 of 1. */
    int alone[1] = {-1}, to1[1] = {1};
    d = default_device;
    assert_int_equal(made(&d, &m, alone, 1, to1, 1, NOW), FWREL_EVERIFY);
    assert_string_equal(first, "rejected at manifest.signatures: 0 valid signatures from trusted "
                               "keys, 1 required");
}

/* Each reason a device refuses a manifest, at the same step with the same reason. */
static void test_refusals(void **state)
{
    (void)state;
    struct {
        const char *step;
        void (*edit)(fwrel_manifest *m);
    } cases[] = {
        {"manifest.counter", NULL},  {"manifest.expiry", NULL},         {"manifest.product", NULL},
        {"manifest.channel", NULL},  {"manifest.device-type", NULL},    {"manifest.chip", NULL},
        {"manifest.chip-rev", NULL}, {"manifest.secure-version", NULL}, {"manifest.created", NULL},
    };
    int by[1] = {0}, to[1] = {1};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        fwrel_manifest m;
        struct device d = default_device;
        uint64_t now = NOW;
        body(&m);
        switch (c) {
        case 0:
            m.counter = 9;
            break; /* replayed: the device has 9 */
        case 1:
            now = m.expires;
            break;
        case 2:
            snprintf(m.product, sizeof(m.product), "gadget");
            break;
        case 3:
            snprintf(m.channel, sizeof(m.channel), "dev");
            break;
        case 4:
            d.device_type = "board-c";
            break;
        case 5:
            snprintf(m.chip, sizeof(m.chip), "esp32s3");
            break;
        case 6:
            m.chip_rev_min = 5;
            break;
        case 7:
            m.secure_version = 1;
            break;
        case 8:
            m.created = NOW + 301;
            m.expires = NOW + 400;
            break;
        }
        assert_int_equal(made(&d, &m, by, 1, to, 1, now), FWREL_EVERIFY);
        char want[80];
        snprintf(want, sizeof(want), "rejected at %s: ", cases[c].step);
        if (strncmp(first, want, strlen(want)) != 0)
            fail_msg("case %zu: %s", c, first);
    }
    /* No counter kept, no anti-rollback, any device type: those steps are not run. */
    fwrel_manifest m;
    struct device d = default_device;
    body(&m);
    m.secure_version = 0;
    d.counter = -1;
    d.anti_rollback = 0;
    d.device_type = NULL;
    assert_int_equal(made(&d, &m, by, 1, to, 1, NOW), 0);
}

/* Envelopes altered, cut, addressed elsewhere; a trusted key's bad signature. */
static void test_tampered(void **state)
{
    (void)state;
    fwrel_manifest m;
    struct device d = default_device;
    int by[2] = {0, 3}, to[2] = {1, 2};
    size_t len;
    body(&m);
    uint8_t *env = make(&len, &m, by, 2, to, 2);
    uint8_t *copy = malloc(len);
    /* A byte of every region: header, entries, ciphertext, tag. */
    size_t offs[] = {0, 8, 9, 10, 11, 12, 16, 28, 32, 36, 40, 100, 640, 700, 1300, len - 1};
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
        for (int r = 1; r < 3; r++) {
            memcpy(copy, env, len);
            copy[offs[i]] ^= 0x01;
            d.rcpt = r;
            assert_int_equal(both(&d, copy, len, NOW), FWREL_EVERIFY);
            assert_non_null(strstr(first, "rejected at manifest.open: "));
        }
    d.rcpt = 0; /* not addressed to RSA */
    assert_int_equal(both(&d, env, len, NOW), FWREL_EVERIFY);
    assert_string_equal(first,
                        "rejected at manifest.open: the manifest is not addressed to this device's "
                        "key");
    d.rcpt = 1;
    for (size_t cut = 0; cut < len; cut += len / 7 + 1)
        assert_int_equal(both(&d, env, cut, NOW), FWREL_EVERIFY);
    free(copy);
    free(env);

    /* The RSA recipient's wrapped key altered. */
    int to0[1] = {0};
    env = make(&len, &m, by, 2, to0, 1);
    env[32 + 36 + 100] ^= 0x80;
    d.rcpt = 0;
    assert_int_equal(both(&d, env, len, NOW), FWREL_EVERIFY);
    assert_string_equal(first, "rejected at manifest.open: cannot unwrap the manifest key");
    free(env);

    /* signed.json changed after signing (re-sealed): the trusted signature fails. */
    char *sj = NULL;
    size_t slen = 0;
    const fwrel_pkey *keys[3] = {signer[0], signer[3], signer[6]};
    assert_int_equal(fwrel_manifest_sign(&sj, &slen, &m, keys, 3), 0);
    for (int k = 0; k < 3; k++) {
        char *text = strdup(sj);
        char *p = strstr(text, "\"counter\":10");
        p[11] = '1'; /* counter 11 */
        if (k > 0) { /* restore, flip a signature byte of the k-th signature instead */
            p[11] = '0';
            char *s = text;
            for (int i = 0; i < k; i++)
                s = strstr(s + 1, "\"sig\":\"");
            s[8] = s[8] == 'A' ? 'B' : 'A';
        }
        d = default_device;
        d.threshold = 1;
        assert_int_equal(sealed(&d, text), FWREL_EVERIFY);
        assert_non_null(strstr(first, "rejected at manifest.signatures: "));
        free(text);
    }
    free(sj);
}

/* The threshold counts distinct trusted keys (moved from test_manifest.c with the host's
 * verifier it tested): 2 of 3 accepted with the same body; one trusted signer of two; 3 of 3
 * required; a changed field breaks a trusted key's signature. */
static void test_threshold_rules(void **state)
{
    (void)state;
    fwrel_manifest m;
    struct device d = default_device;
    int by[2] = {6, 0}, to[1] = {1};
    size_t len;
    body(&m);
    uint8_t *env = make(&len, &m, by, 2, to, 1);
    d.threshold = 2;
    d.trusted[0] = 6, d.trusted[1] = 3, d.trusted[2] = 0;
    assert_int_equal(both(&d, env, len, NOW), 0);
    assert_memory_equal(&last, &m, sizeof(m));
    d.trusted[2] = 1; /* signer 0 signed, signer 1 is trusted */
    assert_int_equal(both(&d, env, len, NOW), FWREL_EVERIFY);
    assert_string_equal(first, "rejected at manifest.signatures: 1 valid signature from trusted "
                               "keys, 2 required");
    d.trusted[2] = 0;
    d.threshold = 3;
    assert_int_equal(both(&d, env, len, NOW), FWREL_EVERIFY);
    assert_string_equal(first, "rejected at manifest.signatures: 2 valid signatures from trusted "
                               "keys, 3 required");
    free(env);
    /* The same key twice does not sign twice (the writer refuses it). */
    char *sj = NULL;
    size_t slen = 0;
    const fwrel_pkey *dup[2] = {signer[0], signer[0]};
    assert_int_equal(fwrel_manifest_sign(&sj, &slen, &m, dup, 2), FWREL_EUSAGE);
    const fwrel_pkey *keys[2] = {signer[6], signer[0]};
    assert_int_equal(fwrel_manifest_sign(&sj, &slen, &m, keys, 2), 0);
    char *p = strstr(sj, "\"counter\":10");
    assert_non_null(p);
    p[11] = '1';
    d.threshold = 2;
    assert_int_equal(sealed(&d, sj), FWREL_EVERIFY);
    assert_non_null(
        strstr(first, "rejected at manifest.signatures: the signature of trusted key "));
    assert_non_null(strstr(first, "... does not verify"));
    free(sj);
}

/* The envelope's bounds, before any crypto (moved from test_manifest.c): magic, one byte short,
 * one byte more, a recipient count of 0 and of 9. */
static void test_envelope_bounds(void **state)
{
    (void)state;
    fwrel_manifest m;
    int by[1] = {0}, to[3] = {0, 1, 2};
    size_t len;
    body(&m);
    uint8_t *env = make(&len, &m, by, 1, to, 3);
    uint8_t *c = malloc(len + 1);
    char want[128];
    assert_non_null(c);
    memcpy(c, env, len);
    c[0] ^= 1;
    assert_int_equal(both(&default_device, c, len, NOW), FWREL_EVERIFY);
    assert_string_equal(first, "rejected at manifest.open: not an fwrel manifest envelope (magic, "
                               "version, sizes)");
    assert_int_equal(both(&default_device, env, len - 1, NOW), FWREL_EVERIFY);
    snprintf(want, sizeof(want),
             "rejected at manifest.open: envelope length %zu does not match its header", len - 1);
    assert_string_equal(first, want);
    memcpy(c, env, len);
    c[len] = 0;
    assert_int_equal(both(&default_device, c, len + 1, NOW), FWREL_EVERIFY);
    snprintf(want, sizeof(want),
             "rejected at manifest.open: envelope length %zu does not match its header", len + 1);
    assert_string_equal(first, want);
    for (int n = 0; n <= 9; n += 9) {
        memcpy(c, env, len);
        c[10] = (uint8_t)n;
        assert_int_equal(both(&default_device, c, len, NOW), FWREL_EVERIFY);
        assert_string_equal(first, "rejected at manifest.open: not an fwrel manifest envelope "
                                   "(magic, version, sizes)");
    }
    free(c);
    free(env);
}

/* signed_json with its first signature text replaced by sig; malloc'd. */
static char *with_sig(const char *signed_json, const char *sig)
{
    const char *a = strstr(signed_json, "\"sig\":\"");
    assert_non_null(a);
    a += strlen("\"sig\":\"");
    const char *b = strchr(a, '"');
    assert_non_null(b);
    size_t n = (size_t)(a - signed_json) + strlen(sig) + strlen(b) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%.*s%s%s", (int)(a - signed_json), signed_json, sig, b);
    return out;
}

static int sealed_with_sig(const char *signed_json, const char *sig)
{
    char *t = with_sig(signed_json, sig);
    int rc = sealed(&default_device, t);
    free(t);
    return rc;
}

/* A trusted key's signature text is bounded before it is decoded: 696 valid base64 characters
 * are 522 bytes, which once overflowed a 520-byte stack buffer (issue 13; moved from
 * test_manifest.c). */
static void test_signature_base64_bounds(void **state)
{
    (void)state;
    static const char *const bad64 =
        "rejected at manifest.signatures: signature 0: not the canonical base64 of 1..512 bytes";
    fwrel_manifest m;
    const fwrel_pkey *one[1] = {signer[0]};
    char *sj = NULL, text[700];
    size_t len;
    body(&m);
    assert_int_equal(fwrel_manifest_sign(&sj, &len, &m, one, 1), 0);
    assert_int_equal(sealed(&default_device, sj), 0);

    /* 684 characters (512 bytes, the largest signature) decode, and do not verify. */
    memset(text, 'A', 699);
    text[683] = '=';
    text[684] = 0;
    assert_int_equal(sealed_with_sig(sj, text), FWREL_EVERIFY);
    assert_non_null(strstr(first, "does not verify"));
    /* Refused before decoding: 696 and 699 characters (the most a sig field holds), 684 without
     * padding (513 bytes), 688; 696 of '/'. */
    static const size_t over[] = {696, 699, 684, 688};
    for (size_t i = 0; i < 5; i++) {
        memset(text, i < 4 ? 'A' : '/', 699);
        text[i < 4 ? over[i] : 696] = 0;
        assert_int_equal(sealed_with_sig(sj, text), FWREL_EVERIFY);
        assert_string_equal(first, bad64);
    }
    /* Only the canonical text: no whitespace, no inner padding, zero pad bits, not empty. */
    const char *a = strstr(sj, "\"sig\":\"") + 7;
    size_t n = strcspn(a, "\"");
    assert_int_equal(n, 88);
    assert_memory_equal(a + 86, "==", 2);
    for (size_t i = 0; i < 6; i++) {
        /* " " and "\n" lead, "=" replaces the first character, "B" sets a pad bit. */
        if (i == 0)
            snprintf(text, sizeof(text), " %.*s", (int)n, a);
        else if (i == 1)
            snprintf(text, sizeof(text), "=%.*s", (int)n - 1, a + 1);
        else if (i == 2)
            snprintf(text, sizeof(text), "\\n%.*s", (int)n, a);
        else if (i == 3)
            snprintf(text, sizeof(text), "%.*s%c==", 85, a, a[85] == 'B' ? 'C' : 'B');
        else
            snprintf(text, sizeof(text), "%s", i == 4 ? "" : "====");
        int rc = sealed_with_sig(sj, text);
        assert_int_equal(rc, FWREL_EVERIFY);
        /* An escape is not canonical for the device before it is bad base64. */
        if (i == 2)
            assert_string_equal(first, "rejected at manifest.signatures: signed manifest is not "
                                       "in canonical form (sorted keys, no spaces)");
        else
            assert_string_equal(first, bad64);
    }
    free(sj);
}

/* signed.json that breaks a rule of sections 1 and 2 (field rules: the host's reasons). */
static void test_field_rules(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"manifest\":{},\"signatures\":[]}",
        "{\"manifest\":[],\"signatures\":[]}",
        "{\"extra\":1,\"manifest\":{},\"signatures\":[]}",
        "{\"manifest\":{\"a\":1}}",
        "[1,2]",
        "{\"signatures\":[]}",
    };
    struct device d = default_device;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        assert_int_equal(sealed(&d, bodies[i]), FWREL_EVERIFY);
    /* A valid signed.json with one field of the body replaced by something else. */
    static const char *const edits[][2] = {
        {"\"format_version\":1", "\"format_version\":2"},
        {"\"format_version\":1", "\"format_version\":1001"},
        {"\"format\":\"fwrel-manifest\"", "\"format\":\"fwrel-manifesto\""},
        {"\"chip\":\"esp32c3\"", "\"chip\":\"esp99\""},
        {"\"chip_rev_max\":199", "\"chip_rev_max\":2"},
        {"\"chip_rev_max\":199", "\"chip_rev_max\":65536"},
        {"\"channel\":\"prod\"", "\"channel\":\"Prod\""},
        {"\"channel\":\"prod\"", "\"channel\":7"},
        {"\"counter\":10", "\"counter\":9007199254740992"},
        {"\"product\":\"widget\"", "\"product\":\"wid get\""},
        {"\"device_types\":[\"board-a\",\"board-b\"]",
         "\"device_types\":[\"board-b\",\"board-a\"]"},
        {"\"device_types\":[\"board-a\",\"board-b\"]", "\"device_types\":[]"},
        {"\"device_types\":[\"board-a\",\"board-b\"]", "\"device_types\":[\"a\",3]"},
        {"\"image_name\":\"firmware.enc\"", "\"image_name\":\"a/b\""},
        {"\"version\":\"1.2.3\"", "\"version\":\"\""},
        {"\"size\":1000", "\"size\":4294967296"},
        {"\"sha256\":\"1111", "\"sha256\":\"111G"},
        {"\"sha256\":\"1111", "\"sha256\":\"111"},
        {"\"sha256\":\"1111", "\"sha256\":\"AAAA"},
        {"\"image_name\":\"firmware.enc\"", "\"image_name\":\"firmware.enc\",\"zz\":true"},
        {"\"alg\":\"", "\"alg\":\"x"},
        {"\"keyid\":\"", "\"keyid\":\"0"},
        {"\"sig\":\"", "\"sig\":\"="},
        {"\"sig\":\"", "\"sig\":\"AAAA"},
        {"\"alg\":\"", "\"alg\":\"0123456789012345678901234"},
        {"\"signatures\":[",
         "\"signatures\":[{\"alg\":\"ed25519\",\"keyid\":\"ff\",\"sig\":\"AA==\"},"},
        {"\"signatures\":[",
         "\"signatures\":[{\"alg\":\"ed25519\",\"keyid\":\"00\",\"sig\":\"AA==\"},"},
        {"\"signatures\":[",
         "\"signatures\":[{\"alg\":\"ed25519\",\"keyid\":\"00\",\"sig\":\"AA==\",\"x\":1},"},
    };
    fwrel_manifest m;
    char *sj = NULL;
    size_t slen = 0;
    const fwrel_pkey *keys[2] = {signer[0], signer[3]};
    body(&m);
    assert_int_equal(fwrel_manifest_sign(&sj, &slen, &m, keys, 2), 0);
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        char text[8192];
        const char *at = strstr(sj, edits[i][0]);
        assert_non_null(at);
        snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - sj), sj, edits[i][1],
                 at + strlen(edits[i][0]));
        /* Refused but for the stranger's signature sorted first (ignored): both() compares. */
        assert_int_equal(sealed(&d, text),
                         i == sizeof(edits) / sizeof(edits[0]) - 2 ? 0 : FWREL_EVERIFY);
    }
    free(sj);
}

/* Not canonical JSON: refused at manifest.signatures with the core's reason (before the core
 * ran in fwrel-verify, the reason was where jansson stopped; the step is the same). */
static void test_not_canonical(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{\"manifest\": {}}",
        "{\"signatures\":[],\"manifest\":{}}",
        "{\"a\":1,\"a\":1}",
        "{\"a\":1.5}",
        "{\"a\":-1}",
        "{\"a\":01}",
        "{\"a\":\"\\u0041\"}",
        "{\"a\":null}",
        "{\"a\":[1,]}",
        "{",
        "",
        "{\"a\":1}x",
        "{\"a\":\"\t\"}",
        "{\"a\":1e5}",
        "{\"a\":99999999999999999999}",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        assert_int_equal(sealed(&default_device, texts[i]), FWREL_EVERIFY);
        assert_string_equal(first, "rejected at manifest.signatures: signed manifest is not in "
                                   "canonical form (sorted keys, no spaces)");
    }
}

/* Canonical for jansson but not for the device (docs/device.md): a string that is not printable
 * ASCII, here an ignored stranger's key id. fwrel-verify accepted it before it ran the core; now
 * it refuses it as the device does. */
static void test_stricter_strings(void **state)
{
    (void)state;
    fwrel_manifest m;
    char *sj = NULL, text[8192];
    size_t slen = 0;
    const fwrel_pkey *keys[1] = {signer[0]};
    body(&m);
    assert_int_equal(fwrel_manifest_sign(&sj, &slen, &m, keys, 1), 0);
    snprintf(text, sizeof(text), "%.*s,{\"alg\":\"x\",\"keyid\":\"\xc3\xa9\",\"sig\":\"A\"}]}",
             (int)slen - 2, sj);
    free(sj);
    assert_int_equal(sealed(&default_device, text), FWREL_EVERIFY);
    assert_string_equal(first, "rejected at manifest.signatures: signed manifest is not in "
                               "canonical form (sorted keys, no spaces)");
}

/* A wrong configuration is a usage error, never a verdict; the work area is wiped. */
static void test_config(void **state)
{
    (void)state;
    fwrel_dev_config cfg;
    struct rkey k;
    fwrel_dev_result res;
    fwrel_dev_manifest cm;
    uint8_t env[700] = {0};
    core_config(&cfg, &k, &default_device, ports[0]);
    cfg.threshold = 4;
    assert_int_equal(fwrel_dev_verify(&cm, &res, &work, &cfg, env, sizeof(env), NOW, NULL, NULL),
                     FWREL_DEV_EUSAGE);
    cfg.threshold = 0;
    assert_int_equal(fwrel_dev_verify(&cm, &res, &work, &cfg, env, sizeof(env), NOW, NULL, NULL),
                     FWREL_DEV_EUSAGE);
    cfg.threshold = 1;
    cfg.recipient.type = 9;
    assert_int_equal(fwrel_dev_verify(&cm, &res, &work, &cfg, env, sizeof(env), NOW, NULL, NULL),
                     FWREL_DEV_EUSAGE);
    cfg.recipient.type = FWREL_DEV_RCPT_X25519;
    cfg.nchannels = 0;
    assert_int_equal(fwrel_dev_verify(&cm, &res, &work, &cfg, env, sizeof(env), NOW, NULL, NULL),
                     FWREL_DEV_EUSAGE);
    assert_int_equal(fwrel_dev_verify(&cm, &res, &work, NULL, env, sizeof(env), NOW, NULL, NULL),
                     FWREL_DEV_EUSAGE);
    cfg.nchannels = 2;
    memset(&work, 0xA5, sizeof(work));
    assert_int_equal(fwrel_dev_verify(&cm, &res, &work, &cfg, env, sizeof(env), NOW, NULL, NULL),
                     FWREL_DEV_EREJECT);
    for (size_t i = 0; i < sizeof(work); i++)
        assert_int_equal(((uint8_t *)&work)[i], 0);
    OPENSSL_free(k.der);
}

/* No clock: expiry and created are skipped, the rest decides (an expired manifest passes). */
static void test_no_clock(void **state)
{
    (void)state;
    fwrel_manifest m;
    int by[1] = {0}, to[1] = {1};
    size_t len;
    body(&m);
    uint8_t *env = make(&len, &m, by, 1, to, 1);
    for (size_t p = 0; p < nports; p++) {
        fwrel_dev_config cfg;
        struct rkey k;
        struct steps st = {0};
        fwrel_dev_result res;
        fwrel_dev_manifest cm;
        core_config(&cfg, &k, &default_device, ports[p]);
        cfg.no_clock = 1;
        assert_int_equal(
            fwrel_dev_verify(&cm, &res, &work, &cfg, env, len, m.expires + 1000, record, &st),
            FWREL_DEV_OK);
        int seen = 0;
        for (size_t i = 0; i < st.n; i++)
            if (strcmp(st.s[i].name, "manifest.expiry") == 0 ||
                strcmp(st.s[i].name, "manifest.created") == 0) {
                assert_int_equal(st.s[i].verdict, FWREL_DEV_SKIP);
                assert_string_equal(st.s[i].detail, "no clock");
                seen++;
            }
        assert_int_equal(seen, 2);
        OPENSSL_free(k.der);
    }
    free(env);
}

/* The image binding: bytes streamed in pieces of every size, against a digest computed here
 * with OpenSSL's one-shot SHA-256 (no vectors needed). */
static void test_bind(void **state)
{
    (void)state;
    enum { N = 70000 };
    uint8_t *img = malloc(N);
    fwrel_dev_manifest m;
    assert_non_null(img);
    for (size_t i = 0; i < N; i++)
        img[i] = (uint8_t)(i * 31 + (i >> 8));
    memset(&m, 0, sizeof(m));
    assert_int_equal(fwrel_sha256(m.encrypted.sha256, img, N), 0);
    m.encrypted.size = N;
    assert_int_equal(fwrel_sha256(m.signed_image.sha256, img, N - 1), 0);
    m.signed_image.size = N - 1;
    for (size_t p = 0; p < nports; p++) {
        size_t pieces[] = {1, 15, 16, 63, 64, 65, 4096, N};
        for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
            fwrel_dev_bind b;
            fwrel_dev_result res;
            struct steps st = {0};
            assert_int_equal(fwrel_dev_bind_start(&b, ports[p], &m, FWREL_DEV_BIND_ENCRYPTED),
                             FWREL_DEV_OK);
            for (size_t off = 0; off < N; off += pieces[k]) {
                size_t n = N - off < pieces[k] ? N - off : pieces[k];
                assert_int_equal(fwrel_dev_bind_update(&b, img + off, n), FWREL_DEV_OK);
            }
            assert_int_equal(fwrel_dev_bind_finish(&b, &res, record, &st), FWREL_DEV_OK);
            assert_int_equal(st.n, 1);
            assert_string_equal(st.s[0].name, "manifest.binds");
            char want[128], hex[17];
            fwrel_hex(hex, m.encrypted.sha256, 8);
            snprintf(want, sizeof(want),
                     "firmware.enc is the manifest's image (%d bytes, sha256 "
                     "%s...)",
                     N, hex);
            assert_string_equal(st.s[0].detail, want);
        }
        /* One byte more than the manifest names: refused as it arrives, and at the end. */
        fwrel_dev_bind b;
        fwrel_dev_result res;
        struct steps st = {0};
        assert_int_equal(fwrel_dev_bind_start(&b, ports[p], &m, FWREL_DEV_BIND_SIGNED), 0);
        assert_int_equal(fwrel_dev_bind_update(&b, img, N - 1), FWREL_DEV_OK);
        assert_int_equal(fwrel_dev_bind_update(&b, img + N - 1, 1), FWREL_DEV_EREJECT);
        assert_int_equal(fwrel_dev_bind_finish(&b, &res, record, &st), FWREL_DEV_EREJECT);
        assert_string_equal(st.s[0].name, "manifest.signed-image");
        assert_int_equal(st.s[0].verdict, FWREL_DEV_FAIL);
        assert_non_null(strstr(res.first, "manifest.signed-image: the image (70000 bytes"));
        /* A changed byte; a short stream; an aborted stream. */
        for (int c = 0; c < 2; c++) {
            assert_int_equal(fwrel_dev_bind_start(&b, ports[p], &m, FWREL_DEV_BIND_ENCRYPTED), 0);
            img[c == 0 ? 1234 : 0] ^= 1;
            assert_int_equal(fwrel_dev_bind_update(&b, img, c == 0 ? N : N - 1), FWREL_DEV_OK);
            img[c == 0 ? 1234 : 0] ^= 1;
            assert_int_equal(fwrel_dev_bind_finish(&b, &res, NULL, NULL), FWREL_DEV_EREJECT);
            assert_non_null(strstr(res.first, "is not the image the manifest names"));
        }
        assert_int_equal(fwrel_dev_bind_start(&b, ports[p], &m, FWREL_DEV_BIND_ENCRYPTED), 0);
        assert_int_equal(fwrel_dev_bind_update(&b, img, 100), FWREL_DEV_OK);
        fwrel_dev_bind_abort(&b);
        assert_int_equal(fwrel_dev_bind_update(&b, img, 1), FWREL_DEV_EUSAGE);
        assert_int_equal(fwrel_dev_bind_finish(&b, &res, NULL, NULL), FWREL_DEV_EUSAGE);
    }
    free(img);
}

/* A file streamed through fwrel_dev_bind in 4096-byte pieces by every port: accepted. */
static void bind_file(const fwrel_manifest *m, int kind, const uint8_t *data, size_t len)
{
    fwrel_dev_manifest dm;
    memset(&dm, 0, sizeof(dm));
    memcpy(dm.encrypted.sha256, m->encrypted.sha256, 32);
    dm.encrypted.size = m->encrypted.size;
    memcpy(dm.signed_image.sha256, m->signed_image.sha256, 32);
    dm.signed_image.size = m->signed_image.size;
    for (size_t p = 0; p < nports; p++) {
        fwrel_dev_bind b;
        fwrel_dev_result res;
        assert_int_equal(fwrel_dev_bind_start(&b, ports[p], &dm, kind), FWREL_DEV_OK);
        for (size_t off = 0; off < len; off += 4096)
            assert_int_equal(
                fwrel_dev_bind_update(&b, data + off, len - off < 4096 ? len - off : 4096),
                FWREL_DEV_OK);
        assert_int_equal(fwrel_dev_bind_finish(&b, &res, NULL, NULL), FWREL_DEV_OK);
    }
}

/* With $FWREL_VECTORS: manifests fwrel makes of the vectors' ESP-IDF images (plain = signed =
 * the image, encrypted = its esp_encrypted_img file), signed by all 8 keys, sealed to every
 * recipient type, read through both ports with the same steps (and refused at the chip by a
 * device of another chip); both files bound by streaming through both ports. */
static void test_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *image, *enc, *chip;
    } cases[] = {
        {"esp32-idf5.1.2-hello_world-ErisdarDemo", "enc-ecc256", "esp32"},
        {"esp32-idf5.1.2-hello_world-ErisdarDemo", "enc-rsa3072", "esp32"},
        {"esp32c3-idf5.3-hello_world-Jan13242342", "enc-rsa3072", "esp32c3"},
        {"esp32s3-idf5.1.2-hello_world-Gimhan-AI", "enc-rsa3072", "esp32s3"},
    };
    const char *dir = getenv("FWREL_VECTORS");
    if (dir == NULL || dir[0] == '\0') {
        print_message("skipped: no vectors\n");
        skip();
    }
    char tpl[256];
    snprintf(tpl, sizeof(tpl),
             "{\"product\": \"widget\", \"device_types\": [\"board-a\", \"board-b\"], "
             "\"channel\": \"prod\", \"counter\": 10, \"created\": %llu, \"expires\": %llu}",
             NOW - 86400, NOW + 86400);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char img[1024], enc[1024];
        uint8_t *ib = NULL, *eb = NULL;
        size_t il = 0, el = 0, len;
        fwrel_manifest m;
        int by[8] = {0, 1, 2, 3, 4, 5, 6, 7}, to[3] = {0, 1, 2};
        snprintf(img, sizeof(img), "%s/images/%s.bin", dir, cases[c].image);
        snprintf(enc, sizeof(enc), "%s/enc/%s.%s.bin", dir, cases[c].image, cases[c].enc);
        assert_int_equal(
            fwrel_manifest_from_images(&m, (const uint8_t *)tpl, strlen(tpl), img, img, enc), 0);
        assert_string_equal(m.chip, cases[c].chip);
        uint8_t *env = make(&len, &m, by, 8, to, 3);
        struct device d = default_device;
        d.ntrusted = 8;
        for (int i = 0; i < 8; i++)
            d.trusted[i] = i;
        d.threshold = 8;
        d.anti_rollback = 0;
        d.chip = cases[c].chip;
        for (int r = 0; r < 3; r++) {
            d.rcpt = r;
            assert_int_equal(both(&d, env, len, NOW), 0);
            assert_memory_equal(&last, &m, sizeof(m));
        }
        d.chip = strcmp(cases[c].chip, "esp32c3") == 0 ? "esp32s3" : "esp32c3";
        assert_int_equal(both(&d, env, len, NOW), FWREL_EVERIFY);
        assert_non_null(strstr(first, "rejected at manifest.chip: "));
        free(env);
        assert_int_equal(fwrel_io_read_small(&ib, &il, img, 1 << 22), 0);
        assert_int_equal(fwrel_io_read_small(&eb, &el, enc, 1 << 22), 0);
        bind_file(&m, FWREL_DEV_BIND_SIGNED, ib, il);
        bind_file(&m, FWREL_DEV_BIND_ENCRYPTED, eb, el);
        free(ib);
        free(eb);
    }
}

/* The two ports compute the same primitives (GCM streaming in pieces, HKDF, ECDH). */
static void test_ports_agree(void **state)
{
    (void)state;
    uint8_t key[32], iv[12], aad[100], pt[1000], ct[2][1000], tag[2][16];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;
    memset(iv, 7, sizeof(iv));
    memset(aad, 9, sizeof(aad));
    for (size_t i = 0; i < sizeof(pt); i++)
        pt[i] = (uint8_t)(i * 7);
    for (size_t p = 0; p < nports; p++) {
        fwrel_dev_ctx c;
        const fwrel_dev_crypto *x = ports[p];
        assert_int_equal(x->gcm_start(&c, 1, key, iv, aad, sizeof(aad)), 0);
        assert_int_equal(x->gcm_update(&c, pt, ct[p], 512), 0);
        assert_int_equal(x->gcm_update(&c, pt + 512, ct[p] + 512, sizeof(pt) - 512), 0);
        assert_int_equal(x->gcm_finish(&c, tag[p]), 0);
        uint8_t back[1000];
        assert_int_equal(x->gcm_start(&c, 0, key, iv, aad, sizeof(aad)), 0);
        assert_int_equal(x->gcm_update(&c, ct[p], back, sizeof(pt)), 0);
        assert_int_equal(x->gcm_finish(&c, tag[p]), 0);
        assert_memory_equal(back, pt, sizeof(pt));
        tag[p][3] ^= 1;
        assert_int_equal(x->gcm_start(&c, 0, key, iv, aad, sizeof(aad)), 0);
        assert_int_equal(x->gcm_update(&c, ct[p], back, sizeof(pt)), 0);
        assert_int_not_equal(x->gcm_finish(&c, tag[p]), 0);
        tag[p][3] ^= 1;
    }
    if (nports == 2) {
        assert_memory_equal(ct[0], ct[1], sizeof(pt));
        assert_memory_equal(tag[0], tag[1], 16);
        uint8_t o[2][80];
        for (size_t p = 0; p < 2; p++)
            assert_int_equal(ports[p]->hkdf_sha256(o[p], 80, iv, 12, key, 32, aad, 10), 0);
        assert_memory_equal(o[0], o[1], 80);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_alg_each_recipient),
        cmocka_unit_test(test_threshold_1_to_8),
        cmocka_unit_test(test_strangers_and_recipients),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_threshold_rules),
        cmocka_unit_test(test_envelope_bounds),
        cmocka_unit_test(test_signature_base64_bounds),
        cmocka_unit_test(test_field_rules),
        cmocka_unit_test(test_not_canonical),
        cmocka_unit_test(test_stricter_strings),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_no_clock),
        cmocka_unit_test(test_bind),
        cmocka_unit_test(test_ports_agree),
        cmocka_unit_test(test_vectors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
