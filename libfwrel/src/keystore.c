/* keystore.c - key files, passphrase sources, key generation (keystore.h). */
#include "fwrel/keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "fwrel/io.h"
#include "util.h"

/* scrypt cost for private keys at rest: openssl pkcs8 -scrypt's own default (16 MiB),
 * the most OpenSSL 3.0 will decode without raising its 32 MiB scrypt memory cap. */
#define SCRYPT_N 16384
#define SCRYPT_R 8
#define SCRYPT_P 1

void fwrel_pass_free(char *pass, size_t len)
{
    if (pass != NULL)
        OPENSSL_secure_clear_free(pass, len + 1);
}

/* Read one line (without its newline) from fd into a secure buffer. */
static int read_line(char **out, size_t *len, int fd)
{
    char *buf = OPENSSL_secure_zalloc(FWREL_PASS_MAX + 1);
    size_t n = 0;
    if (buf == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            OPENSSL_secure_clear_free(buf, FWREL_PASS_MAX + 1);
            return fwrel_error_set_errno(FWREL_EIO, e, "cannot read the passphrase");
        }
        if (r == 0 || c == '\n')
            break;
        if (n == FWREL_PASS_MAX) {
            OPENSSL_secure_clear_free(buf, FWREL_PASS_MAX + 1);
            return fwrel_error_set(FWREL_EKEY, "passphrase longer than %d bytes", FWREL_PASS_MAX);
        }
        buf[n++] = c;
    }
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    if (n == 0) {
        OPENSSL_secure_clear_free(buf, FWREL_PASS_MAX + 1);
        return fwrel_error_set(FWREL_EKEY, "empty passphrase");
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Prompt on the terminal with echo off; the terminal state is restored on every path. */
static int read_tty(char **out, size_t *len, const char *prompt)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    struct termios old, quiet;
    int error;
    if (fd < 0)
        return fwrel_error_set(FWREL_EKEY, "a passphrase is needed and there is no terminal to ask "
                                           "(use --passphrase-file or --passphrase-fd)");
    if (tcgetattr(fd, &old) != 0) {
        close(fd);
        return fwrel_error_set(FWREL_EKEY, "cannot set up the terminal for a passphrase");
    }
    quiet = old;
    quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    sigset_t block, saved;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTSTP);
    sigaddset(&block, SIGQUIT);
    sigprocmask(SIG_BLOCK, &block, &saved);
    (void)!write(fd, prompt, strlen(prompt));
    tcsetattr(fd, TCSAFLUSH, &quiet);
    error = read_line(out, len, fd);
    tcsetattr(fd, TCSAFLUSH, &old);
    (void)!write(fd, "\n", 1);
    sigprocmask(SIG_SETMASK, &saved, NULL);
    close(fd);
    return error;
}

int fwrel_pass_read(char **out, size_t *len, const fwrel_pass_src *src, const char *prompt,
                    int confirm)
{
    FWREL_ASSERT_ARG(out != NULL && len != NULL && src != NULL);
    *out = NULL;
    *len = 0;
    switch (src->kind) {
    case FWREL_PASS_FD:
        return read_line(out, len, src->fd);
    case FWREL_PASS_FILE: {
        int fd = open(src->file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        int error;
        if (fd < 0)
            return fwrel_error_set_errno(FWREL_EIO, errno, "cannot open the passphrase file");
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return fwrel_error_set(FWREL_EKEY, "the passphrase file is not a regular file");
        }
        if (st.st_mode & 077) {
            close(fd);
            return fwrel_error_set(FWREL_EKEY, "the passphrase file is accessible by group or "
                                               "others (chmod 600 it)");
        }
        error = read_line(out, len, fd);
        close(fd);
        return error;
    }
    case FWREL_PASS_TTY: {
        char *again = NULL;
        size_t again_len = 0;
        int error = read_tty(out, len, prompt ? prompt : "Passphrase: ");
        if (error || !confirm)
            return error;
        error = read_tty(&again, &again_len, "Again: ");
        if (error == 0 && (again_len != *len || CRYPTO_memcmp(again, *out, *len) != 0))
            error = fwrel_error_set(FWREL_EKEY, "the passphrases do not match");
        fwrel_pass_free(again, again_len);
        if (error) {
            fwrel_pass_free(*out, *len);
            *out = NULL;
            *len = 0;
        }
        return error;
    }
    default:
        return fwrel_error_set(FWREL_EKEY, "no passphrase source");
    }
}

int fwrel_key_type_parse(int *type, const char *name)
{
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
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve), &n);
        if (strcmp(curve, "prime192v1") == 0 || strcmp(curve, "P-192") == 0)
            *type = FWREL_KEY_ECDSA192;
        else if (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0)
            *type = FWREL_KEY_ECDSA256;
        else if (strcmp(curve, "secp384r1") == 0 || strcmp(curve, "P-384") == 0)
            *type = FWREL_KEY_ECDSA384;
        else
            return fwrel_error_set(FWREL_EKEY, "Unsupported ECDSA curve: %s",
                                   curve[0] ? curve : "?");
        return 0;
    }
    return fwrel_error_set(FWREL_EKEY, "unsupported key type %s (RSA-3072 or ECDSA)",
                           EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "?");
}

int fwrel_key_generate(fwrel_pkey **out, int type)
{
    FWREL_ASSERT_ARG(out != NULL);
    *out = NULL;
    switch (type) {
    case FWREL_KEY_RSA3072:
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

/* Passphrase callback that refuses to ask: used where no passphrase was given. */
static int no_pass_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int is_encrypted_pem(const uint8_t *data, size_t len)
{
    /* PKCS#8 "BEGIN ENCRYPTED PRIVATE KEY" or legacy "Proc-Type: 4,ENCRYPTED". */
    const char *s = (const char *)data;
    (void)len;
    return strstr(s, "ENCRYPTED") != NULL;
}

int fwrel_key_load_private(fwrel_pkey **out, const char *path, const fwrel_pass_src *pass)
{
    FWREL_ASSERT_ARG(out != NULL && path != NULL);
    uint8_t *data = NULL;
    size_t len = 0;
    char *pw = NULL;
    size_t pwlen = 0;
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    int error;

    *out = NULL;
    if ((error = fwrel_io_read_small(&data, &len, path, 64 * 1024)) != 0)
        return error;
    int encrypted = is_encrypted_pem(data, len);
    if (encrypted) {
        if (pass == NULL || pass->kind == FWREL_PASS_NONE) {
            error =
                fwrel_error_set(FWREL_EKEY, "the key is encrypted: a passphrase is needed "
                                            "(--passphrase-file, --passphrase-fd or a terminal)");
            goto done;
        }
        char prompt[256];
        snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", path);
        if ((error = fwrel_pass_read(&pw, &pwlen, pass, prompt, 0)) != 0)
            goto done;
    }
    if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
        error = fwrel_error_set_openssl(FWREL_EIO, "out of memory");
        goto done;
    }
    key = encrypted ? PEM_read_bio_PrivateKey(bio, NULL, NULL, pw)
                    : PEM_read_bio_PrivateKey(bio, NULL, no_pass_cb, NULL);
    if (key == NULL) {
        ERR_clear_error();
        error = encrypted ? fwrel_error_set(FWREL_EKEY, "wrong passphrase, or a damaged key")
                          : fwrel_error_set(FWREL_EFORMAT, "no PEM private key found");
        goto done;
    }
    *out = key;
    error = 0;
done:
    BIO_free(bio);
    fwrel_pass_free(pw, pwlen);
    fwrel_io_free_secret(data, len);
    return error;
}

int fwrel_key_parse_public(fwrel_pkey **out, const uint8_t *data, size_t len, int allow_raw64)
{
    FWREL_ASSERT_ARG(out != NULL && data != NULL);
    EVP_PKEY *key = NULL;
    *out = NULL;
    if (allow_raw64 && len == 64) {
        /* espsecure extract-public-key --version 1: X||Y big-endian, P-256. */
        uint8_t point[65];
        point[0] = 0x04;
        memcpy(point + 1, data, 64);
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0),
            OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
            OSSL_PARAM_construct_end(),
        };
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
            EVP_PKEY_CTX_free(ctx);
            return fwrel_error_set_openssl(FWREL_EFORMAT, "not a P-256 public key");
        }
        EVP_PKEY_CTX_free(ctx);
        *out = key;
        return 0;
    }
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    if (bio == NULL)
        return fwrel_error_set_openssl(FWREL_EIO, "out of memory");
    key = PEM_read_bio_PUBKEY(bio, NULL, no_pass_cb, NULL);
    if (key == NULL) {
        (void)BIO_reset(bio);
        key = PEM_read_bio_PrivateKey(bio, NULL, no_pass_cb, NULL);
    }
    BIO_free(bio);
    ERR_clear_error();
    if (key == NULL)
        return fwrel_error_set(FWREL_EFORMAT,
                               "no PEM public key (or unencrypted private key) found%s",
                               allow_raw64 ? ", nor 64 raw bytes" : "");
    *out = key;
    return 0;
}

int fwrel_key_load_public(fwrel_pkey **out, const char *path, int allow_raw64)
{
    FWREL_ASSERT_ARG(out != NULL && path != NULL);
    uint8_t *data = NULL;
    size_t len = 0;
    int error = fwrel_io_read_small(&data, &len, path, 64 * 1024);
    if (error)
        return error;
    error = fwrel_key_parse_public(out, data, len, allow_raw64);
    fwrel_io_free_secret(data, len);
    return error;
}

/* Publish the bytes of a memory BIO to path; wipes the BIO's buffer. */
static int write_bio(BIO *bio, const char *path, unsigned flags, mode_t mode)
{
    BUF_MEM *mem = NULL;
    BIO_get_mem_ptr(bio, &mem);
    if (mem == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    int error = fwrel_io_write_file(path, mem->data, mem->length, flags, mode);
    OPENSSL_cleanse(mem->data, mem->length);
    return error;
}

int fwrel_key_write_private(const fwrel_pkey *key, const char *path, const char *pass,
                            size_t pass_len, unsigned flags)
{
    FWREL_ASSERT_ARG(key != NULL && path != NULL);
    BIO *bio = BIO_new(BIO_s_secmem());
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    X509_ALGOR *pbe = NULL;
    X509_SIG *sig = NULL;
    int error = FWREL_EKEY;

    if (bio == NULL)
        return fwrel_error_set_openssl(FWREL_EIO, "out of memory");
    if (pass == NULL) {
        if (PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "cannot encode the private key");
            goto done;
        }
    } else {
        /* PBES2 with scrypt and AES-256-CBC (RFC 7914 section 7). */
        if ((p8 = EVP_PKEY2PKCS8(key)) == NULL ||
            (pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL, SCRYPT_N, SCRYPT_R,
                                         SCRYPT_P)) == NULL ||
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
    PKCS8_PRIV_KEY_INFO_free(p8);
    BIO_free(bio);
    return error;
}

int fwrel_key_write_public(const fwrel_pkey *key, const char *path, unsigned flags)
{
    FWREL_ASSERT_ARG(key != NULL && path != NULL);
    BIO *bio = BIO_new(BIO_s_mem());
    int error;
    if (bio == NULL)
        return fwrel_error_set_openssl(FWREL_EIO, "out of memory");
    if (PEM_write_bio_PUBKEY(bio, key) != 1)
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot encode the public key");
    else
        error = write_bio(bio, path, flags, 0644);
    BIO_free(bio);
    return error;
}

int fwrel_key_raw64(uint8_t out[64], const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(out != NULL && key != NULL);
    int type;
    uint8_t point[65];
    size_t n = 0;
    if (fwrel_key_type_of(&type, key) != 0 || type != FWREL_KEY_ECDSA256)
        return fwrel_error_set(FWREL_EKEY, "Secure Boot V1 needs an ECDSA P-256 key");
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &n) !=
            1 ||
        n != 65 || point[0] != 0x04) {
        /* A compressed encoding: ask for the uncompressed one explicitly. */
        return fwrel_error_set_openssl(FWREL_EKEY, "cannot read the public point");
    }
    memcpy(out, point + 1, 64);
    return 0;
}

int fwrel_key_id(char out[65], const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(out != NULL && key != NULL);
    unsigned char *der = NULL;
    uint8_t digest[32];
    unsigned int n = 0;
    int len = i2d_PUBKEY(key, &der);
    if (len <= 0)
        return fwrel_error_set_openssl(FWREL_EKEY, "cannot encode the public key");
    int ok = EVP_Digest(der, (size_t)len, digest, &n, EVP_sha256(), NULL) == 1;
    OPENSSL_free(der);
    if (!ok)
        return fwrel_error_set_openssl(FWREL_EKEY, "digest failed");
    fwrel_hex(out, digest, 32);
    return 0;
}

void fwrel_key_free(fwrel_pkey *key)
{
    EVP_PKEY_free(key);
}
