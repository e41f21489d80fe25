/* encimg.c - esp_encrypted_img 2.7.1 (encimg.h; docs/esp-formats.md §4). */
#include "fwrel/encimg.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "util.h"

/* Header offsets (docs/esp-formats.md §4.1; esp_encrypted_img_priv.h, esp_enc_img_gen.py). */
enum { H_KEY = 4, H_IV = 388, H_SIZE = 404, H_TAG = 408, H_RESERVED = 424 };
/* Inside the key field: RSA wrapped key (384), or ECC ephemeral X||Y (64) then salt (32). */
enum { WRAPPED_LEN = 384, ECC_XY_LEN = 64, ECC_SALT_LEN = 32 };
enum { AES_KEY_LEN = 32, IV_LEN = 16, TAG_LEN = 16 };
#define ECC_INFO      "_esp_enc_img_ecc"
#define CHUNK         65536
#define UNWRAP_FAILED "cannot unwrap the image key: wrong key?"

int fwrel_encimg_parse_header(fwrel_encimg_header *h, const uint8_t buf[FWREL_ENCIMG_HEADER_LEN])
{
    FWREL_ASSERT_ARG(h != NULL && buf != NULL);
    h->magic = fwrel_le32(buf);
    memcpy(h->key_field, buf + H_KEY, sizeof(h->key_field));
    memcpy(h->iv, buf + H_IV, sizeof(h->iv));
    h->size = fwrel_le32(buf + H_SIZE);
    memcpy(h->tag, buf + H_TAG, sizeof(h->tag));
    memcpy(h->reserved, buf + H_RESERVED, sizeof(h->reserved));
    /* The device's first check, the only field checked alone (docs/esp-formats.md §4.3). */
    if (h->magic != FWREL_ENCIMG_MAGIC)
        return fwrel_error_set(FWREL_EFORMAT, "Magic Verification Failed (0x%08x, expected 0x%08x)",
                               h->magic, FWREL_ENCIMG_MAGIC);
    return 0;
}

void fwrel_encimg_build_header(uint8_t buf[FWREL_ENCIMG_HEADER_LEN], const fwrel_encimg_header *h)
{
    fwrel_put_le32(buf, h->magic);
    memcpy(buf + H_KEY, h->key_field, sizeof(h->key_field));
    memcpy(buf + H_IV, h->iv, sizeof(h->iv));
    fwrel_put_le32(buf + H_SIZE, h->size);
    memcpy(buf + H_TAG, h->tag, sizeof(h->tag));
    memcpy(buf + H_RESERVED, h->reserved, sizeof(h->reserved));
}

/* "RSA-2048", "EC secp384r1", "ED25519": what a refused key is, for the message. */
static void key_kind(char *out, size_t n, const fwrel_pkey *key)
{
    char group[64];
    size_t glen;
    const char *name = EVP_PKEY_get0_type_name(key);
    if (EVP_PKEY_is_a(key, "RSA"))
        snprintf(out, n, "RSA-%d", EVP_PKEY_get_bits(key));
    else if (EVP_PKEY_is_a(key, "EC") &&
             EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            &glen) == 1)
        snprintf(out, n, "EC %s", group);
    else
        snprintf(out, n, "%s", name != NULL ? name : "an unknown key type");
    ERR_clear_error();
}

int fwrel_encimg_key_scheme(int *scheme, const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(scheme != NULL && key != NULL);
    int type;
    char kind[80];
    if (fwrel_key_type_of(&type, key) != 0)
        type = -1; /* its message speaks of Secure Boot: ours below */
    if (type == FWREL_KEY_RSA3072)
        *scheme = FWREL_ENCIMG_RSA3072;
    else if (type == FWREL_KEY_ECDSA256)
        *scheme = FWREL_ENCIMG_ECC256;
    else {
        /* The tool writes a broken layout with another RSA size (docs/esp-formats.md §4.2). */
        key_kind(kind, sizeof(kind), key);
        return fwrel_error_set(
            FWREL_EKEY, "esp_encrypted_img takes an RSA-3072 or an EC P-256 key, not %s", kind);
    }
    return 0;
}

/*
 * AES key = HKDF-SHA256(IKM = X coordinate of ECDH(priv, peer), salt, info "_esp_enc_img_ecc",
 * L = 32) (docs/esp-formats.md §4.1: the tool's and the device's ECIES derivation). The shared
 * secret lives on the stack and is wiped; the output goes straight to the caller's secure buffer.
 */
static int ecc_derive(uint8_t aes_key[AES_KEY_LEN], const fwrel_pkey *priv, const fwrel_pkey *peer,
                      const uint8_t salt[ECC_SALT_LEN])
{
    EVP_PKEY_CTX *ctx = NULL;
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    uint8_t shared[32];
    size_t n = sizeof(shared);
    int error;

    /* OpenSSL pads the X coordinate to the field size (32 bytes), as mbedtls and pyca do. */
    if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)priv, NULL)) == NULL ||
        EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, (EVP_PKEY *)peer) != 1 ||
        EVP_PKEY_derive(ctx, shared, &n) != 1 || n != sizeof(shared)) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "ECDH with the P-256 key failed");
        goto done;
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, shared, sizeof(shared)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, ECC_SALT_LEN),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, ECC_INFO, strlen(ECC_INFO)),
        OSSL_PARAM_construct_end(),
    };
    if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL ||
        (kctx = EVP_KDF_CTX_new(kdf)) == NULL ||
        EVP_KDF_derive(kctx, aes_key, AES_KEY_LEN, params) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "HKDF-SHA256 failed");
        goto done;
    }
    error = 0;
done:
    OPENSSL_cleanse(shared, sizeof(shared));
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    EVP_PKEY_CTX_free(ctx);
    return error;
}

static int gcm_init(EVP_CIPHER_CTX **out, int enc, const uint8_t key[AES_KEY_LEN],
                    const uint8_t iv[IV_LEN])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    /* A 16-byte IV: J0 = GHASH(IV), not the 96-bit fast path (docs/esp-formats.md §4.1). The length
     * must be set before the key and IV. */
    if (c == NULL || EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, IV_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(c, NULL, NULL, key, iv, enc) != 1) {
        EVP_CIPHER_CTX_free(c);
        return fwrel_error_set_openssl(FWREL_EKEY, "AES-256-GCM setup failed");
    }
    *out = c;
    return 0;
}

/*
 * The relay: for an image of RELAY_MIN bytes or more, AES-GCM and the output writes run on a
 * thread of their own, overlapping the caller's work on the same bytes (fwrel-encrypt's image
 * check hashes them). The caller's bytes are copied into one of RELAY_BUFS buffers; the thread
 * takes the full ones in order. Only that thread touches the cipher and the output until
 * enc_finish or enc_free has joined it.
 */
#define RELAY_BUF  ((size_t)128 << 10)
#define RELAY_BUFS 3
#define RELAY_MIN  ((uint64_t)1 << 20)

struct relay {
    uint8_t *buf[RELAY_BUFS];
    size_t len[RELAY_BUFS];
    unsigned fill_idx; /* the buffer the caller fills */
    size_t fill;       /* bytes in it */
    unsigned next;     /* the buffer the thread takes next */
    unsigned queued;   /* full buffers handed over and not yet encrypted */
    int closed;        /* no more input: the thread ends when the queue is empty */
    int failed;        /* the thread failed (err), or the session is abandoned */
    fwrel_error err;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;
};

struct fwrel_encimg_enc {
    fwrel_out *out;
    fwrel_pkey *key; /* a reference of the session's own, until the header is made */
    int scheme;
    EVP_CIPHER_CTX *gcm;
    uint64_t base; /* offset of the header in out */
    uint64_t size, done;
    uint8_t *ct;     /* CHUNK bytes */
    struct relay *r; /* NULL: encrypted on the caller's thread */
};

/* Encrypt len bytes and append them to the output (the caller's or the relay's thread):
 * straight into the output's buffer when it has one, else through ct. */
static int encrypt_bytes(fwrel_encimg_enc *e, const uint8_t *data, size_t len)
{
    while (len > 0) {
        size_t chunk = len < CHUNK ? len : CHUNK, room;
        uint8_t *dst = fwrel_out_room(e->out, &room);
        int outl, error;
        if (dst != NULL && room < chunk)
            chunk = room;
        if (EVP_EncryptUpdate(e->gcm, dst != NULL ? dst : e->ct, &outl, data, (int)chunk) != 1 ||
            (size_t)outl != chunk)
            return fwrel_error_set_openssl(FWREL_EKEY, "AES-256-GCM failed");
        error =
            dst != NULL ? fwrel_out_advance(e->out, chunk) : fwrel_out_write(e->out, e->ct, chunk);
        if (error)
            return error;
        data += chunk;
        len -= chunk;
    }
    return 0;
}

static int enc_setup(fwrel_encimg_enc *e);

static void *relay_main(void *arg)
{
    fwrel_encimg_enc *e = arg;
    struct relay *r = e->r;
    int error = enc_setup(e);
    pthread_mutex_lock(&r->mu);
    if (error) { /* the rest is drained */
        r->failed = 1;
        r->err = *fwrel_error_last();
    }
    for (;;) {
        while (r->queued == 0 && !r->closed)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->queued == 0)
            break;
        unsigned i = r->next;
        int skip = r->failed; /* after a failure the rest is only drained */
        pthread_mutex_unlock(&r->mu);
        error = skip ? 0 : encrypt_bytes(e, r->buf[i], r->len[i]);
        pthread_mutex_lock(&r->mu);
        if (error && !r->failed) {
            r->failed = 1;
            r->err = *fwrel_error_last();
        }
        r->next = (i + 1) % RELAY_BUFS;
        r->queued--;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* The relay thread's error, as this thread's. */
static int relay_error(const struct relay *r)
{
    return fwrel_error_restore(&r->err);
}

/* Hand the buffer being filled to the thread, and wait for a free one. */
static int relay_push(struct relay *r)
{
    pthread_mutex_lock(&r->mu);
    r->len[r->fill_idx] = r->fill;
    r->queued++;
    pthread_cond_broadcast(&r->cv);
    while (r->queued == RELAY_BUFS && !r->failed)
        pthread_cond_wait(&r->cv, &r->mu);
    int failed = r->failed;
    pthread_mutex_unlock(&r->mu);
    r->fill_idx = (r->fill_idx + 1) % RELAY_BUFS;
    r->fill = 0;
    return failed ? relay_error(r) : 0;
}

/* End the thread: it drops what is queued when abandoning, else encrypts all of it. */
static void relay_stop(struct relay *r, int abandon)
{
    if (!r->started)
        return;
    pthread_mutex_lock(&r->mu);
    r->closed = 1;
    if (abandon)
        r->failed = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    r->started = 0;
}

/* The end of the input: hand over the last bytes, wait until all are encrypted and written;
 * 0 or the thread's error. NULL (no relay) is fine. */
static int relay_finish(struct relay *r)
{
    if (r == NULL)
        return 0;
    int error = r->fill > 0 ? relay_push(r) : 0;
    relay_stop(r, 0);
    return error == 0 && r->failed ? relay_error(r) : error;
}

static void relay_free(struct relay *r)
{
    if (r == NULL)
        return;
    relay_stop(r, 1);
    for (int i = 0; i < RELAY_BUFS; i++) {
        if (r->buf[i] != NULL)
            OPENSSL_cleanse(r->buf[i], RELAY_BUF); /* plaintext */
        free(r->buf[i]);
    }
    free(r);
}

/* Start the relay thread; on any refusal the session simply stays on the caller's thread. */
static void relay_start(fwrel_encimg_enc *e)
{
    struct relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return;
    for (int i = 0; i < RELAY_BUFS; i++)
        if ((r->buf[i] = malloc(RELAY_BUF)) == NULL) {
            relay_free(r);
            return;
        }
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        relay_free(r);
        return;
    }
    if (pthread_cond_init(&r->cv, NULL) != 0) {
        pthread_mutex_destroy(&r->mu);
        relay_free(r);
        return;
    }
    e->r = r;
    if (pthread_create(&r->thread, NULL, relay_main, e) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        e->r = NULL;
        relay_free(r);
        return;
    }
    r->started = 1;
}

void fwrel_encimg_enc_free(fwrel_encimg_enc *e)
{
    if (e == NULL)
        return;
    relay_free(e->r); /* first: its thread uses the cipher and the output */
    fwrel_key_free(e->key);
    EVP_CIPHER_CTX_free(e->gcm); /* wipes the key schedule */
    free(e->ct);
    free(e);
}

/* RSA-3072 PKCS#1 v1.5 encryption of the AES key (docs/esp-formats.md §4.1, §11.1: not OAEP). */
static int rsa_wrap(uint8_t wrapped[WRAPPED_LEN], const uint8_t aes[AES_KEY_LEN],
                    const fwrel_pkey *key)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)key, NULL);
    size_t n = WRAPPED_LEN;
    int error = 0;
    if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
        EVP_PKEY_encrypt(ctx, wrapped, &n, aes, AES_KEY_LEN) != 1 || n != WRAPPED_LEN)
        error = fwrel_error_set_openssl(FWREL_EKEY, "RSA key wrap failed");
    EVP_PKEY_CTX_free(ctx);
    return error;
}

/*
 * The session's key and IV, the header with the wrapped key (or the ECC ephemeral key and
 * salt) appended to the output, and the cipher: on the caller's thread, or first thing on the
 * relay's, while the caller already goes on with its work.
 */
static int enc_setup(fwrel_encimg_enc *e)
{
    fwrel_encimg_header h;
    uint8_t hdr[FWREL_ENCIMG_HEADER_LEN];
    uint8_t *aes = NULL;
    fwrel_pkey *eph = NULL;
    int error;

    if ((aes = OPENSSL_secure_malloc(AES_KEY_LEN)) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    /* Everything not set below (the ECC tail after the salt, the tag, the reserved bytes) is
     * zero, as esp_enc_img_gen.py writes it. */
    memset(&h, 0, sizeof(h));
    h.magic = FWREL_ENCIMG_MAGIC;
    h.size = (uint32_t)e->size;
    /* Fresh key and IV every time: a repeated (key, IV) pair would give away GCM's hash key. */
    if (RAND_priv_bytes(aes, AES_KEY_LEN) != 1 || RAND_bytes(h.iv, IV_LEN) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "no random bytes");
        goto done;
    }
    if (e->scheme == FWREL_ENCIMG_RSA3072) {
        if ((error = rsa_wrap(h.key_field, aes, e->key)) != 0)
            goto done;
    } else {
        /* ECIES: ephemeral X||Y big-endian, then the HKDF salt (docs/esp-formats.md §4.1). */
        if ((error = fwrel_key_generate(&eph, FWREL_KEY_ECDSA256)) != 0 ||
            (error = fwrel_key_raw64(h.key_field, eph)) != 0)
            goto done;
        if (RAND_bytes(h.key_field + ECC_XY_LEN, ECC_SALT_LEN) != 1) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "no random bytes");
            goto done;
        }
        if ((error = ecc_derive(aes, eph, e->key, h.key_field + ECC_XY_LEN)) != 0)
            goto done;
    }
    fwrel_encimg_build_header(hdr, &h);
    /* The tag is known only at the end: the header goes out now and is completed then. */
    if ((error = fwrel_out_write(e->out, hdr, sizeof(hdr))) != 0 ||
        (error = gcm_init(&e->gcm, 1, aes, h.iv)) != 0)
        goto done;
    error = 0;
done:
    OPENSSL_secure_clear_free(aes, AES_KEY_LEN);
    fwrel_key_free(eph);
    fwrel_key_free(e->key);
    e->key = NULL;
    return error;
}

int fwrel_encimg_enc_begin(fwrel_encimg_enc **enc, fwrel_out *out, const fwrel_pkey *key,
                           uint64_t size)
{
    FWREL_ASSERT_ARG(enc != NULL && out != NULL && key != NULL);
    fwrel_encimg_enc *e = NULL;
    int scheme, error;

    *enc = NULL;
    if ((error = fwrel_encimg_key_scheme(&scheme, key)) != 0)
        return error;
    if (size > UINT32_MAX)
        return fwrel_error_set(FWREL_EFORMAT,
                               "larger than 4 GiB (%llu bytes): the header's size field is 32 bits",
                               (unsigned long long)size);
    if ((e = calloc(1, sizeof(*e))) == NULL || (e->ct = malloc(CHUNK)) == NULL) {
        free(e);
        return fwrel_error_set(FWREL_EIO, "out of memory");
    }
    e->out = out;
    e->base = fwrel_out_size(out);
    e->size = size;
    e->scheme = scheme;
    if (EVP_PKEY_up_ref((fwrel_pkey *)key) != 1) {
        fwrel_encimg_enc_free(e);
        return fwrel_error_set_openssl(FWREL_EKEY, "cannot hold the key");
    }
    e->key = (fwrel_pkey *)key;
    if (size >= RELAY_MIN)
        relay_start(e);
    if (e->r == NULL && (error = enc_setup(e)) != 0) {
        fwrel_encimg_enc_free(e);
        return error;
    }
    *enc = e;
    return 0;
}

int fwrel_encimg_enc_update(void *ctx, const uint8_t *data, size_t len)
{
    fwrel_encimg_enc *e = ctx;
    FWREL_ASSERT_ARG(e != NULL && (data != NULL || len == 0));
    if (len > e->size - e->done)
        return fwrel_error_set(FWREL_EUSAGE, "more bytes to encrypt than announced (%llu)",
                               (unsigned long long)e->size);
    e->done += len;
    struct relay *r = e->r;
    if (r == NULL)
        return encrypt_bytes(e, data, len);
    while (len > 0) {
        size_t n = RELAY_BUF - r->fill < len ? RELAY_BUF - r->fill : len;
        memcpy(r->buf[r->fill_idx] + r->fill, data, n);
        r->fill += n;
        data += n;
        len -= n;
        int error;
        if (r->fill == RELAY_BUF && (error = relay_push(r)) != 0)
            return error;
    }
    return 0;
}

int fwrel_encimg_enc_finish(fwrel_encimg_enc *e)
{
    FWREL_ASSERT_ARG(e != NULL);
    uint8_t tag[TAG_LEN];
    int outl, error;
    if (e->done != e->size)
        error = fwrel_error_set(FWREL_EUSAGE, "%llu bytes encrypted, %llu announced",
                                (unsigned long long)e->done, (unsigned long long)e->size);
    else if ((error = relay_finish(e->r)) != 0)
        ; /* the relay thread's error, now this thread's */
    else if (EVP_EncryptFinal_ex(e->gcm, e->ct, &outl) != 1 || outl != 0 ||
             EVP_CIPHER_CTX_ctrl(e->gcm, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        error = fwrel_error_set_openssl(FWREL_EKEY, "AES-256-GCM failed");
    else
        error = fwrel_out_pwrite(e->out, e->base + H_TAG, tag, TAG_LEN);
    fwrel_encimg_enc_free(e);
    return error;
}

int fwrel_encimg_encrypt(fwrel_out *out, fwrel_src *src, const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(out != NULL && src != NULL && key != NULL && src->pos <= src->size);
    fwrel_encimg_enc *e = NULL;
    uint8_t *buf = NULL;
    uint64_t left = src->size - src->pos;
    int error;
    if ((error = fwrel_encimg_enc_begin(&e, out, key, left)) != 0)
        return error;
    if ((buf = malloc(CHUNK)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    while (left > 0) {
        size_t chunk = left < CHUNK ? (size_t)left : CHUNK;
        if ((error = fwrel_src_read(src, buf, chunk)) != 0 ||
            (error = fwrel_encimg_enc_update(e, buf, chunk)) != 0)
            goto done;
        left -= chunk;
    }
    error = fwrel_encimg_enc_finish(e);
    e = NULL;
done:
    if (buf != NULL)
        OPENSSL_cleanse(buf, CHUNK); /* the plaintext: confidential, or it would not be encrypted */
    free(buf);
    fwrel_encimg_enc_free(e);
    return error;
}

/* Whether an RSA key has its private exponent (asked only after a decryption failed). */
static int rsa_has_private(const fwrel_pkey *key)
{
    BIGNUM *d = NULL;
    int ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_D, &d) == 1;
    BN_clear_free(d);
    ERR_clear_error();
    return ok;
}

/*
 * RSA-3072 PKCS#1 v1.5 unwrap, as the device does it (esp_encrypted_img 2.7.1 decipher_gcm_key:
 * mbedtls_pk_decrypt into the 32-byte gcm_key with output size 32, olen ignored). A plaintext
 * longer than 32 bytes fails there (MBEDTLS_ERR_RSA_OUTPUT_TOO_LARGE); a shorter one does not:
 * mbedtls 3.6 (mbedtls_ct_rsaes_pkcs1_v15_unpadding) copies it followed by zeros, so the device
 * decrypts with the key zero-extended to 32 bytes. Done the same here; *key_len tells the caller
 * so it can warn. Bad padding fails (mbedtls rejects explicitly; OpenSSL 3.2+'s implicit
 * rejection is turned off so that a random synthetic plaintext cannot pass for a short key).
 * Every failure caused by the input gives the same message (reliability matrix ENC-06).
 */
static int rsa_unwrap(uint8_t aes[AES_KEY_LEN], size_t *key_len, const uint8_t wrapped[WRAPPED_LEN],
                      const fwrel_pkey *key)
{
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t *buf = OPENSSL_secure_malloc(WRAPPED_LEN);
    size_t n = WRAPPED_LEN;
    int error;

    if (buf == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)key, NULL)) == NULL ||
        EVP_PKEY_decrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot decrypt with the RSA key");
        goto done;
    }
#ifdef OSSL_ASYM_CIPHER_PARAM_IMPLICIT_REJECTION
    unsigned int implicit = 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_IMPLICIT_REJECTION, &implicit),
        OSSL_PARAM_construct_end()};
    if (EVP_PKEY_CTX_set_params(ctx, params) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot decrypt with the RSA key");
        goto done;
    }
#endif
    if (EVP_PKEY_decrypt(ctx, buf, &n, wrapped, WRAPPED_LEN) != 1 || n > AES_KEY_LEN) {
        if (!rsa_has_private(key))
            error =
                fwrel_error_set(FWREL_EKEY, "decrypting needs the private key, not a public one");
        else
            error = fwrel_error_set(FWREL_EVERIFY, UNWRAP_FAILED);
        goto done;
    }
    memset(aes, 0, AES_KEY_LEN);
    memcpy(aes, buf, n);
    *key_len = n;
    error = 0;
done:
    ERR_clear_error();
    OPENSSL_secure_clear_free(buf, WRAPPED_LEN);
    EVP_PKEY_CTX_free(ctx);
    return error;
}

/* ECIES unwrap: the header's ephemeral public key with the device's private key. */
static int ecc_unwrap(uint8_t aes[AES_KEY_LEN], const uint8_t key_field[ECC_XY_LEN + ECC_SALT_LEN],
                      const fwrel_pkey *key)
{
    fwrel_pkey *peer = NULL;
    int error;
    /* A point not on P-256 is refused here (the device's mbedtls_ecp_check_pubkey): no
     * invalid-curve games with the device key. An RSA image, read as ECC, lands here too. */
    if (fwrel_key_parse_public(&peer, key_field, ECC_XY_LEN, 1) != 0)
        return fwrel_error_set(FWREL_EVERIFY,
                               UNWRAP_FAILED " (the header holds no P-256 point: an RSA image?)");
    error = ecc_derive(aes, key, peer, key_field + ECC_XY_LEN);
    fwrel_key_free(peer);
    return error;
}

/* fwrel_encimg_decrypt_ex() to out_path, or into given (left to the caller) when not NULL. */
static int decrypt(fwrel_out *given, const char *out_path, unsigned flags, fwrel_src *src,
                   const fwrel_pkey *key, fwrel_encimg_notes *notes)
{
    FWREL_ASSERT_ARG((out_path != NULL || given != NULL) && src != NULL && key != NULL &&
                     src->pos <= src->size);
    size_t key_len = AES_KEY_LEN;
    uint8_t hdr[FWREL_ENCIMG_HEADER_LEN];
    fwrel_encimg_header h;
    uint8_t *aes = NULL, *buf = NULL;
    EVP_CIPHER_CTX *gcm = NULL;
    fwrel_out *out = NULL;
    uint64_t avail = src->size - src->pos, body;
    int scheme, outl, error;

    /* Bounds first: nothing is allocated or computed for a file that cannot be an image. */
    if (avail < FWREL_ENCIMG_HEADER_LEN)
        return fwrel_error_set(FWREL_EFORMAT, "%llu bytes: shorter than the 512-byte header",
                               (unsigned long long)avail);
    if ((error = fwrel_src_read(src, hdr, sizeof(hdr))) != 0 ||
        (error = fwrel_encimg_parse_header(&h, hdr)) != 0)
        return error;
    /* esp_encrypted_img_decrypt_end: exactly `size` ciphertext bytes, nothing after
     * (docs/esp-formats.md §4.3). */
    body = avail - FWREL_ENCIMG_HEADER_LEN;
    if (body < h.size)
        return fwrel_error_set(FWREL_EFORMAT,
                               "truncated: the header announces %u bytes of image, %llu follow it",
                               h.size, (unsigned long long)body);
    if (body > h.size)
        return fwrel_error_set(FWREL_EFORMAT,
                               "%llu bytes after the %u-byte image (the device refuses them)",
                               (unsigned long long)(body - h.size), h.size);
    if ((error = fwrel_encimg_key_scheme(&scheme, key)) != 0)
        return error;

    if ((aes = OPENSSL_secure_malloc(AES_KEY_LEN)) == NULL || (buf = malloc(CHUNK)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    error = scheme == FWREL_ENCIMG_RSA3072 ? rsa_unwrap(aes, &key_len, h.key_field, key)
                                           : ecc_unwrap(aes, h.key_field, key);
    if (error != 0 || (error = gcm_init(&gcm, 0, aes, h.iv)) != 0)
        goto done;
    /* Unauthenticated plaintext goes only to an unpublished 0600 temporary file. */
    if (given == NULL &&
        (error = fwrel_out_open(&out, out_path, flags | FWREL_OUT_STREAM, 0600)) != 0)
        goto done;
    if (given != NULL)
        out = given;
    for (uint64_t left = h.size; left > 0;) {
        size_t chunk = left < CHUNK ? (size_t)left : CHUNK;
        if ((error = fwrel_src_read(src, buf, chunk)) != 0)
            goto done;
        /* In place: OpenSSL allows out == in for GCM. */
        if (EVP_DecryptUpdate(gcm, buf, &outl, buf, (int)chunk) != 1 || (size_t)outl != chunk) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "AES-256-GCM failed");
            goto done;
        }
        if ((error = fwrel_out_write(out, buf, chunk)) != 0)
            goto done;
        left -= chunk;
    }
    if (EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_SET_TAG, TAG_LEN, h.tag) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "AES-256-GCM failed");
        goto done;
    }
    if (EVP_DecryptFinal_ex(gcm, buf, &outl) != 1) {
        ERR_clear_error();
        error = fwrel_error_set(FWREL_EVERIFY,
                                "GCM tag mismatch: the image is corrupt or the key is wrong");
        goto done;
    }
    /* Only now may the plaintext appear. */
    error = given != NULL ? 0 : fwrel_out_commit(out);
    out = NULL;
    if (error == 0 && notes != NULL)
        notes->wrapped_key_len = key_len;
done:
    if (out != given)
        fwrel_out_abort(out);
    OPENSSL_secure_clear_free(aes, AES_KEY_LEN);
    if (buf != NULL)
        OPENSSL_cleanse(buf, CHUNK);
    free(buf);
    EVP_CIPHER_CTX_free(gcm);
    return error;
}

int fwrel_encimg_decrypt(const char *out_path, unsigned flags, fwrel_src *src,
                         const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(out_path != NULL);
    return decrypt(NULL, out_path, flags, src, key, NULL);
}

int fwrel_encimg_decrypt_ex(const char *out_path, unsigned flags, fwrel_src *src,
                            const fwrel_pkey *key, fwrel_encimg_notes *notes)
{
    FWREL_ASSERT_ARG(out_path != NULL);
    return decrypt(NULL, out_path, flags, src, key, notes);
}

int fwrel_encimg_decrypt_to(fwrel_out *out, fwrel_src *src, const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(out != NULL);
    return decrypt(out, NULL, 0, src, key, NULL);
}
