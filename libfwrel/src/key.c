/* key.c - key files, passphrase sources, key generation (key.h). */
#include "fwrel/key.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "fwrel/io.h"
#include "util.h"

/*
 * scrypt cost for private keys at rest. OpenSSL 3.0 (Debian 12, the project's
 * baseline) decodes scrypt with a fixed 32 MiB memory cap (PKCS5_v2_scrypt_keyivgen
 * passes maxmem 0), so N = 2^16 (64 MiB at r = 8) could be neither written by
 * PKCS5_pbe2_set_scrypt nor read back by `openssl pkcs8` or by fwrel itself. N = 2^14
 * (16 MiB, openssl pkcs8 -scrypt's own default) with p = 4 keeps the work of
 * N = 2^16, p = 1 (N * p block mixes) inside the cap.
 */
#define SCRYPT_N        ((uint64_t)1 << 14)
#define SCRYPT_R        8
#define SCRYPT_P        4
#define SCRYPT_SALT_LEN 16

/* Largest key file read: an RSA-3072 PEM is about 2.5 KiB. */
#define KEY_FILE_MAX (64 * 1024)

/* Every passphrase buffer has this size (fwrel_pass_free() wipes all of it). */
#define PASS_BUF (FWREL_PASS_MAX + 1)

void fwrel_pass_free(char *pass, size_t len)
{
    (void)len;
    if (pass != NULL)
        OPENSSL_secure_clear_free(pass, PASS_BUF);
}

void fwrel_pass_secure_heap(void)
{
    if (CRYPTO_secure_malloc_initialized() == 0)
        (void)CRYPTO_secure_malloc_init(1 << 16, 32);
}

/*
 * Read one line (without its newline) from fd into a secure buffer. One byte at a
 * time: the descriptor may hold further lines for later keys, which must stay unread.
 * A '\r' before the newline is kept, as `openssl -passin file:` keeps it, so that
 * both tools read the same passphrase from the same file. When stop is given (tty),
 * a signal noted there ends the read.
 */
static int read_line(char **out, size_t *len, int fd, const volatile sig_atomic_t *stop)
{
    char *buf = OPENSSL_secure_zalloc(PASS_BUF);
    size_t n = 0;
    char c = 0;
    int error;

    if (buf == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    for (;;) {
        if (stop != NULL && *stop) {
            error = fwrel_error_set(FWREL_EKEY, "passphrase entry interrupted");
            goto done;
        }
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot read the passphrase");
            goto done;
        }
        if (r == 0 || c == '\n')
            break;
        if (n == FWREL_PASS_MAX) {
            error = fwrel_error_set(FWREL_EKEY, "passphrase longer than %d bytes", FWREL_PASS_MAX);
            goto done;
        }
        buf[n++] = c;
    }
    if (n == 0) {
        error = fwrel_error_set(FWREL_EKEY, "empty passphrase");
        goto done;
    }
    *out = buf;
    *len = n;
    buf = NULL;
    error = 0;
done:
    OPENSSL_cleanse(&c, sizeof(c));
    if (buf != NULL)
        OPENSSL_secure_clear_free(buf, PASS_BUF);
    return error;
}

/*
 * Signals that would otherwise leave the terminal without echo (as OpenBSD's
 * readpassphrase(3)): caught while the prompt is up, then re-sent once the terminal
 * is restored, so that their default action (end or stop the process) happens with
 * echo back on. A stop signal restarts the prompt after the process continues.
 */
static const int tty_signals[] = {SIGALRM, SIGHUP,  SIGINT,  SIGPIPE, SIGQUIT,
                                  SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU};
#define N_TTY_SIGNALS (sizeof(tty_signals) / sizeof(tty_signals[0]))
static volatile sig_atomic_t tty_caught[N_TTY_SIGNALS];
static volatile sig_atomic_t tty_interrupted;

static void tty_handler(int signo)
{
    for (size_t i = 0; i < N_TTY_SIGNALS; i++)
        if (tty_signals[i] == signo)
            tty_caught[i] = 1;
    tty_interrupted = 1;
}

/* Prompt on the terminal with echo off; the terminal is restored on every path. */
static int read_tty(char **out, size_t *len, const char *prompt)
{
    int restart;
    int error;
    do {
        struct sigaction sa, saved[N_TTY_SIGNALS];
        struct termios old, quiet;
        int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);

        restart = 0;
        if (fd < 0)
            return fwrel_error_set(FWREL_EKEY, "a passphrase is needed and there is no terminal "
                                               "to ask (use --passphrase-file or --passphrase-fd)");
        if (tcgetattr(fd, &old) != 0) {
            close(fd);
            return fwrel_error_set(FWREL_EKEY, "cannot set up the terminal for a passphrase");
        }
        memset(&sa, 0, sizeof(sa));
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = tty_handler; /* no SA_RESTART: read() must return on a signal */
        tty_interrupted = 0;
        for (size_t i = 0; i < N_TTY_SIGNALS; i++) {
            tty_caught[i] = 0;
            (void)sigaction(tty_signals[i], &sa, &saved[i]);
        }
        quiet = old;
        quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
            error = fwrel_error_set_errno(FWREL_EKEY, errno, "cannot turn off terminal echo");
        } else {
            (void)!write(fd, prompt, strlen(prompt));
            error = read_line(out, len, fd, &tty_interrupted);
            (void)!write(fd, "\n", 1);
        }
        (void)tcsetattr(fd, TCSAFLUSH, &old);
        for (size_t i = 0; i < N_TTY_SIGNALS; i++)
            (void)sigaction(tty_signals[i], &saved[i], NULL);
        close(fd);
        for (size_t i = 0; i < N_TTY_SIGNALS; i++) {
            if (!tty_caught[i])
                continue;
            (void)kill(getpid(), tty_signals[i]);
            if (tty_signals[i] == SIGTSTP || tty_signals[i] == SIGTTIN || tty_signals[i] == SIGTTOU)
                restart = 1;
        }
    } while (restart && error != 0);
    return error;
}

/*
 * The passphrase file: a regular file that neither group nor others can read (they
 * would learn the passphrase) or write (they could choose it for a new key). The
 * checks are on the descriptor read, so a symbolic link adds no race.
 */
static int read_pass_file(char **out, size_t *len, const char *path)
{
    /* O_NONBLOCK: opening a FIFO with no writer must not hang before fstat says no. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    int error;

    if (fd < 0)
        return fwrel_error_set_errno(FWREL_EIO, errno, "cannot open the passphrase file");
    if (fstat(fd, &st) != 0)
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot stat the passphrase file");
    else if (!S_ISREG(st.st_mode))
        error = fwrel_error_set(FWREL_EKEY, "passphrase file is not a regular file");
    else if (st.st_mode & (S_IRGRP | S_IROTH))
        error = fwrel_error_set(FWREL_EKEY, "passphrase file is readable by group or others");
    else if (st.st_mode & (S_IWGRP | S_IWOTH))
        error = fwrel_error_set(FWREL_EKEY, "passphrase file is writable by group or others");
    else
        error = read_line(out, len, fd, NULL);
    close(fd);
    return error;
}

int fwrel_pass_read(char **out, size_t *len, const fwrel_pass_src *src, const char *prompt,
                    int confirm)
{
    FWREL_ASSERT_ARG(out != NULL && len != NULL && src != NULL);
    char *again = NULL;
    size_t again_len = 0;
    int error;

    *out = NULL;
    *len = 0;
    switch (src->kind) {
    case FWREL_PASS_FD:
        if (src->fd < 0)
            return fwrel_error_set(FWREL_EUSAGE, "invalid passphrase file descriptor %d", src->fd);
        return read_line(out, len, src->fd, NULL);
    case FWREL_PASS_FILE:
        FWREL_ASSERT_ARG(src->file != NULL);
        return read_pass_file(out, len, src->file);
    case FWREL_PASS_MEM:
        FWREL_ASSERT_ARG(src->mem != NULL && src->mem_len > 0 && src->mem_len <= FWREL_PASS_MAX);
        if ((*out = OPENSSL_secure_zalloc(PASS_BUF)) == NULL)
            return fwrel_error_set(FWREL_EIO, "out of memory");
        memcpy(*out, src->mem, src->mem_len);
        *len = src->mem_len;
        return 0;
    case FWREL_PASS_TTY:
        if ((error = read_tty(out, len, prompt != NULL ? prompt : "Passphrase: ")) != 0 || !confirm)
            return error;
        error = read_tty(&again, &again_len, "Repeat the passphrase: ");
        if (error == 0 && (again_len != *len || CRYPTO_memcmp(again, *out, *len) != 0))
            error = fwrel_error_set(FWREL_EKEY, "the passphrases do not match");
        fwrel_pass_free(again, again_len);
        if (error) {
            fwrel_pass_free(*out, *len);
            *out = NULL;
            *len = 0;
        }
        return error;
    default:
        return fwrel_error_set(FWREL_EKEY, "no passphrase source");
    }
}

int fwrel_key_type_parse(int *type, const char *name)
{
    FWREL_ASSERT_ARG(type != NULL && name != NULL);
    static const struct {
        const char *name;
        int type;
    } names[] = {{"rsa3072", FWREL_KEY_RSA3072},
                 {"ecdsa192", FWREL_KEY_ECDSA192},
                 {"ecdsa256", FWREL_KEY_ECDSA256},
                 {"ecdsa384", FWREL_KEY_ECDSA384}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i].name, name) == 0) {
            *type = names[i].type;
            return 0;
        }
    return fwrel_error_set(FWREL_EUSAGE,
                           "unknown scheme '%s' (rsa3072, ecdsa192, ecdsa256, ecdsa384)", name);
}

const char *fwrel_key_type_name(int type)
{
    switch (type) {
    case FWREL_KEY_RSA3072:
        return "rsa3072";
    case FWREL_KEY_ECDSA192:
        return "ecdsa192";
    case FWREL_KEY_ECDSA256:
        return "ecdsa256";
    case FWREL_KEY_ECDSA384:
        return "ecdsa384";
    default:
        return "unknown";
    }
}

int fwrel_key_type_of(int *type, const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(type != NULL && key != NULL);
    if (EVP_PKEY_is_a(key, "RSA")) {
        /* The messages are espsecure's (docs/esp-formats.md §7). */
        int bits = EVP_PKEY_get_bits(key);
        if (bits != 3072)
            return fwrel_error_set(FWREL_EKEY, "RSA key has %d bits. Only RSA-3072 is supported.",
                                   bits);
        *type = FWREL_KEY_RSA3072;
        return 0;
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        char curve[64] = "";
        size_t n = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
                                           &n) != 1)
            snprintf(curve, sizeof(curve), "explicit parameters");
        ERR_clear_error();
        if (strcmp(curve, "prime192v1") == 0 || strcmp(curve, "P-192") == 0)
            *type = FWREL_KEY_ECDSA192;
        else if (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0)
            *type = FWREL_KEY_ECDSA256;
        else if (strcmp(curve, "secp384r1") == 0 || strcmp(curve, "P-384") == 0)
            *type = FWREL_KEY_ECDSA384;
        else
            return fwrel_error_set(FWREL_EKEY, "Unsupported ECDSA curve: %s", curve);
        return 0;
    }
    const char *name = EVP_PKEY_get0_type_name(key);
    return fwrel_error_set(FWREL_EKEY, "unsupported key type %s (RSA-3072 or ECDSA)",
                           name != NULL ? name : "?");
}

int fwrel_key_generate(fwrel_pkey **out, int type)
{
    FWREL_ASSERT_ARG(out != NULL);
    *out = NULL;
    switch (type) {
    case FWREL_KEY_RSA3072:
        /* e = 65537, OpenSSL's default, as espsecure generate-signing-key. */
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
        break;
    case FWREL_KEY_ECDSA192:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime192v1");
        break;
    case FWREL_KEY_ECDSA256:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
        break;
    case FWREL_KEY_ECDSA384:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp384r1");
        break;
    default:
        return fwrel_error_set(FWREL_EUSAGE, "unknown key type %d", type);
    }
    if (*out == NULL)
        return fwrel_error_set_openssl(FWREL_EKEY, "key generation failed");
    return 0;
}

/*
 * EC keys are always encoded with a named curve and an uncompressed point, whatever
 * form the file had: that is what espsecure writes (SubjectPublicKeyInfo, docs/esp-formats.md §7),
 * and a key id must not depend on how the key happened to be stored.
 */
static int ec_canonical_form(EVP_PKEY *key)
{
    if (!EVP_PKEY_is_a(key, "EC"))
        return 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                         (char *)"uncompressed", 0),
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, (char *)"named_curve", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_PKEY_set_params(key, params) != 1)
        return fwrel_error_set_openssl(FWREL_EKEY, "cannot set the EC key encoding");
    return 0;
}

/* Hand *key over to *out in canonical form (ec_canonical_form()); on failure *key stays the
 * caller's to free. */
static int hand_over(EVP_PKEY **out, EVP_PKEY **key)
{
    int error = ec_canonical_form(*key);
    if (error == 0) {
        *out = *key;
        *key = NULL;
    }
    return error;
}

/* A new public-only key in canonical form; the caller frees it. */
static int public_copy(EVP_PKEY **out, const EVP_PKEY *key)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *pub = NULL;
    int error;
    int len = i2d_PUBKEY(key, &der);

    *out = NULL;
    if (len <= 0)
        return fwrel_error_set_openssl(FWREL_EKEY, "cannot encode the public key");
    p = der;
    if ((pub = d2i_PUBKEY(NULL, &p, len)) == NULL) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot decode the public key");
        goto done;
    }
    error = hand_over(out, &pub);
done:
    EVP_PKEY_free(pub);
    OPENSSL_free(der);
    return error;
}

/* The passphrase callback's state: the source is read only if OpenSSL asks. */
struct pass_request {
    const fwrel_pass_src *src;
    const char *prompt;
    char *pass;
    size_t len;
    int asked;         /* the key is encrypted */
    int error;         /* reading the passphrase failed (message set) */
    const char *given; /* a passphrase already in memory (fwrel_key_load_private_pass) */
    size_t given_len;
};

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    struct pass_request *r = u;
    (void)rwflag;
    r->asked = 1;
    if (r->given != NULL) {
        if (size < 0 || r->given_len > (size_t)size)
            return -1;
        memcpy(buf, r->given, r->given_len);
        return (int)r->given_len;
    }
    if (r->error != 0 || r->src == NULL || r->src->kind == FWREL_PASS_NONE)
        return -1;
    /* Once per load, even if OpenSSL asks again: one prompt, one line of the fd. */
    if (r->pass == NULL &&
        (r->error = fwrel_pass_read(&r->pass, &r->len, r->src, r->prompt, 0)) != 0)
        return -1;
    if (size < 0 || r->len > (size_t)size) {
        r->error = fwrel_error_set(FWREL_EKEY, "passphrase longer than %d bytes", size);
        return -1;
    }
    memcpy(buf, r->pass, r->len);
    return (int)r->len;
}

/* A passphrase was given and decryption failed: tell a wrong one from an unusable key. */
static int decrypt_failure(void)
{
    unsigned long e;
    int error = 0;
    while ((e = ERR_get_error()) != 0 && error == 0) {
        if (ERR_GET_LIB(e) != ERR_LIB_EVP)
            continue;
        switch (ERR_GET_REASON(e)) {
        case EVP_R_MEMORY_LIMIT_EXCEEDED:
        case EVP_R_UNSUPPORTED_CIPHER:
        case EVP_R_UNSUPPORTED_KEY_DERIVATION_FUNCTION:
        case EVP_R_UNSUPPORTED_PRF:
        case EVP_R_UNKNOWN_CIPHER:
        case EVP_R_UNSUPPORTED_KEYLENGTH: {
            const char *reason = ERR_reason_error_string(e);
            error = fwrel_error_set(FWREL_EKEY, "cannot decrypt the key: %s",
                                    reason != NULL ? reason : "unsupported encryption");
            break;
        }
        default:
            break;
        }
    }
    ERR_clear_error();
    return error != 0 ? error : fwrel_error_set(FWREL_EKEY, "wrong passphrase");
}

static int load_private(fwrel_pkey **out, const char *path, const fwrel_pass_src *pass,
                        const char *given, size_t given_len)
{
    FWREL_ASSERT_ARG(out != NULL && path != NULL);
    uint8_t *data = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    char prompt[256];
    struct pass_request req = {
        .src = pass, .prompt = prompt, .given = given, .given_len = given_len};
    int error;

    *out = NULL;
    snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", path);
    if ((error = fwrel_io_read_small(&data, &len, path, KEY_FILE_MAX)) != 0)
        return error;
    if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
        error = fwrel_error_set_openssl(FWREL_EIO, "out of memory");
        goto done;
    }
    /* A clean queue: on failure its entries tell a wrong passphrase from an unusable key. */
    ERR_clear_error();
    key = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, &req);
    if (key == NULL) {
        if (req.error != 0)
            error = req.error; /* the passphrase source said why */
        else if (req.asked && given == NULL && (pass == NULL || pass->kind == FWREL_PASS_NONE))
            error = fwrel_error_set(FWREL_EKEY,
                                    "key is encrypted: a passphrase is needed (--passphrase-file, "
                                    "--passphrase-fd, or a terminal)");
        else if (req.asked)
            error = decrypt_failure();
        else
            error = fwrel_error_set(FWREL_EFORMAT, "no PEM private key found");
        goto done;
    }
    ERR_clear_error(); /* decoders tried before the one that worked leave entries */
    error = hand_over(out, &key);
done:
    EVP_PKEY_free(key);
    BIO_free(bio);
    fwrel_pass_free(req.pass, req.len);
    fwrel_io_free_secret(data, len);
    return error;
}

int fwrel_key_load_private(fwrel_pkey **out, const char *path, const fwrel_pass_src *pass)
{
    return load_private(out, path, pass, NULL, 0) ? fwrel_error_about(FWREL_ABOUT_KEY, path) : 0;
}

int fwrel_key_load_private_pass(fwrel_pkey **out, const char *path, const char *pass,
                                size_t pass_len)
{
    FWREL_ASSERT_ARG(pass == NULL || pass_len <= FWREL_PASS_MAX);
    return load_private(out, path, NULL, pass, pass_len) ? fwrel_error_about(FWREL_ABOUT_KEY, path)
                                                         : 0;
}

/* espsecure extract-public-key --version 1: X||Y big-endian, P-256 (docs/esp-formats.md §3). */
static int parse_raw64(EVP_PKEY **out, const uint8_t *data)
{
    uint8_t point[65];
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *key = NULL;
    int error;

    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, data, 64);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
        OSSL_PARAM_construct_end(),
    };
    /* fromdata checks that the point is on the curve. */
    if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        error = fwrel_error_set_openssl(FWREL_EFORMAT, "64 raw bytes that are not a P-256 point");
        goto done;
    }
    error = hand_over(out, &key);
done:
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(ctx);
    return error;
}

int fwrel_key_parse_public(fwrel_pkey **out, const uint8_t *data, size_t len, int allow_raw64)
{
    FWREL_ASSERT_ARG(out != NULL && data != NULL);
    EVP_PKEY *key = NULL;
    BIO *bio = NULL;
    int error;

    *out = NULL;
    if (allow_raw64 && len == 64)
        return parse_raw64(out, data);
    if (len > INT_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "too large for a key");
    if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL)
        return fwrel_error_set_openssl(FWREL_EIO, "out of memory");
    /* Never ask for a passphrase here: without a callback OpenSSL would prompt itself. */
    struct pass_request none = {0};
    key = PEM_read_bio_PUBKEY(bio, NULL, pass_cb, &none);
    if (key != NULL) {
        /* Public only already: no copy (an encoder and a decoder round, 0.4 ms, per key). */
        error = hand_over(out, &key);
        goto done;
    }
    /* The public half of an unencrypted private key. */
    BIO_free(bio);
    if ((bio = BIO_new_mem_buf(data, (int)len)) != NULL)
        key = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, &none);
    ERR_clear_error(); /* the reason is ours below; OpenSSL's tries are noise */
    if (key == NULL) {
        error =
            fwrel_error_set(FWREL_EFORMAT, "no PEM public key (or unencrypted private key) found%s",
                            allow_raw64 ? ", nor 64 raw bytes" : "");
        goto done;
    }
    /* Hand back the public part only: no private key travels where none is needed. */
    error = public_copy(out, key);
done:
    EVP_PKEY_free(key);
    BIO_free(bio);
    return error;
}

int fwrel_key_load_public(fwrel_pkey **out, const char *path, int allow_raw64)
{
    FWREL_ASSERT_ARG(out != NULL && path != NULL);
    uint8_t *data = NULL;
    size_t len = 0;
    int error;

    *out = NULL;
    if ((error = fwrel_io_read_small(&data, &len, path, KEY_FILE_MAX)) != 0)
        return fwrel_error_about(FWREL_ABOUT_KEY, path);
    error = fwrel_key_parse_public(out, data, len, allow_raw64);
    /* It may have been an unencrypted private key. */
    fwrel_io_free_secret(data, len);
    return error ? fwrel_error_about(FWREL_ABOUT_KEY, path) : 0;
}

/* Publish the bytes of a memory BIO to path (io.h: temp file, fsync, link). */
static int write_bio(BIO *bio, const char *path, unsigned flags, mode_t mode)
{
    BUF_MEM *mem = NULL;
    BIO_get_mem_ptr(bio, &mem);
    if (mem == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    return fwrel_io_write_file(path, mem->data, mem->length, flags, mode);
}

int fwrel_key_write_private(const fwrel_pkey *key, const char *path, const char *pass,
                            size_t pass_len, unsigned flags)
{
    FWREL_ASSERT_ARG(key != NULL && path != NULL);
    BIO *bio = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    X509_ALGOR *pbe = NULL;
    X509_SIG *sig = NULL;
    unsigned char salt[SCRYPT_SALT_LEN];
    int error;

    if (pass != NULL && pass_len == 0)
        return fwrel_error_set(FWREL_EKEY, "empty passphrase");
    if (pass_len > FWREL_PASS_MAX)
        return fwrel_error_set(FWREL_EKEY, "passphrase longer than %d bytes", FWREL_PASS_MAX);
    /* The secure-heap BIO wipes the encoding when freed. */
    if ((bio = BIO_new(BIO_s_secmem())) == NULL)
        return fwrel_error_set_openssl(FWREL_EIO, "out of memory");
    if (pass == NULL) {
        if (PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "cannot encode the private key");
            goto done;
        }
    } else {
        /* PKCS#8 EncryptedPrivateKeyInfo, PBES2 with scrypt (RFC 7914 §7) and AES-256-CBC. */
        if (RAND_bytes(salt, sizeof(salt)) != 1 || (p8 = EVP_PKEY2PKCS8(key)) == NULL ||
            (pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), salt, sizeof(salt), NULL, SCRYPT_N,
                                         SCRYPT_R, SCRYPT_P)) == NULL ||
            (sig = PKCS8_set0_pbe(pass, (int)pass_len, p8, pbe)) == NULL) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "cannot encrypt the private key");
            goto done;
        }
        pbe = NULL; /* owned by sig now */
        if (PEM_write_bio_PKCS8(bio, sig) != 1) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "cannot encode the private key");
            goto done;
        }
    }
    error = write_bio(bio, path, flags, 0600);
done:
    X509_SIG_free(sig);
    X509_ALGOR_free(pbe);
    PKCS8_PRIV_KEY_INFO_free(p8); /* clears the key bytes */
    BIO_free(bio);
    return error;
}

int fwrel_key_write_public(const fwrel_pkey *key, const char *path, unsigned flags)
{
    return fwrel_key_write_public_mode(key, path, flags, 0644);
}

int fwrel_key_write_public_mode(const fwrel_pkey *key, const char *path, unsigned flags,
                                unsigned mode)
{
    FWREL_ASSERT_ARG(key != NULL && path != NULL);
    EVP_PKEY *pub = NULL;
    BIO *bio = NULL;
    int error;

    if ((error = public_copy(&pub, key)) != 0)
        return error;
    if ((bio = BIO_new(BIO_s_mem())) == NULL) {
        error = fwrel_error_set_openssl(FWREL_EIO, "out of memory");
        goto done;
    }
    if (PEM_write_bio_PUBKEY(bio, pub) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot encode the public key");
        goto done;
    }
    error = write_bio(bio, path, flags, (mode_t)mode);
done:
    BIO_free(bio);
    EVP_PKEY_free(pub);
    return error;
}

int fwrel_key_raw64(uint8_t out[64], const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(out != NULL && key != NULL);
    BIGNUM *x = NULL, *y = NULL;
    int type, error;

    if (fwrel_key_type_of(&type, key) != 0 || type != FWREL_KEY_ECDSA256)
        return fwrel_error_set(FWREL_EKEY, "Secure Boot V1 needs an ECDSA P-256 key");
    /* The affine coordinates, whatever point encoding the key carries. */
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
        BN_bn2binpad(x, out, 32) != 32 || BN_bn2binpad(y, out + 32, 32) != 32) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot read the public point");
        goto done;
    }
    error = 0;
done:
    BN_free(x);
    BN_free(y);
    return error;
}

int fwrel_key_id(char out[65], const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(out != NULL && key != NULL);
    EVP_PKEY *pub = NULL;
    unsigned char *der = NULL;
    uint8_t digest[32];
    unsigned int n = 0;
    int len, error;

    if ((error = public_copy(&pub, key)) != 0)
        return error;
    if ((len = i2d_PUBKEY(pub, &der)) <= 0) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot encode the public key");
        goto done;
    }
    if (EVP_Digest(der, (size_t)len, digest, &n, EVP_sha256(), NULL) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot hash the public key");
        goto done;
    }
    fwrel_hex(out, digest, sizeof(digest));
    error = 0;
done:
    OPENSSL_free(der);
    EVP_PKEY_free(pub);
    return error;
}

void fwrel_key_free(fwrel_pkey *key)
{
    EVP_PKEY_free(key);
}
