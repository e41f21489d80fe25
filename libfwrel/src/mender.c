/* mender.c - a signed Mender Artifact v3 for mender-mcu, written with libarchive (mender.h;
 * the layout is in docs/exports.md "mender"). */
#include "fwrel/mender.h"

#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "fwrel/io.h"
#include "util.h"

#define FIELD_MAX 255

struct ent {
    const char *name;
    const uint8_t *data;
    size_t len;
};

/* An uncompressed ustar archive of the entries, in their order: regular files 0644, owner 0:0,
 * mtime 0, ended by exactly two zero blocks (mender-mcu reads a nested archive's end from them,
 * so no record padding follows). The size is known before anything is written. */
static int tar_build(uint8_t **out, size_t *outlen, const struct ent *e, size_t n)
{
    size_t cap = 1024, used = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].len > FWREL_IMAGE_MAX + FWREL_MENDER_OVERHEAD)
            return fwrel_error_set(FWREL_EUSAGE, "%s: too large for an artifact", e[i].name);
        cap += 512 + ((e[i].len + 511) & ~(size_t)511);
    }
    uint8_t *buf = malloc(cap);
    struct archive *a = archive_write_new();
    struct archive_entry *ae = archive_entry_new();
    int error = 0;
    if (buf == NULL || a == NULL || ae == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    if (archive_write_set_format_ustar(a) != ARCHIVE_OK ||
        archive_write_add_filter_none(a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a, 512) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open_memory(a, buf, cap, &used) != ARCHIVE_OK)
        goto failed;
    for (size_t i = 0; i < n; i++) {
        archive_entry_clear(ae);
        archive_entry_set_pathname(ae, e[i].name);
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_perm(ae, 0644);
        archive_entry_set_size(ae, (la_int64_t)e[i].len);
        if (archive_write_header(a, ae) != ARCHIVE_OK ||
            (e[i].len > 0 && archive_write_data(a, e[i].data, e[i].len) != (la_ssize_t)e[i].len) ||
            archive_write_finish_entry(a) != ARCHIVE_OK)
            goto failed;
    }
    if (archive_write_close(a) != ARCHIVE_OK || used != cap)
        goto failed;
    *out = buf;
    *outlen = used;
    buf = NULL;
    goto done;
failed:
    error = fwrel_error_set(FWREL_EIO, "mender artifact: %s",
                            archive_error_string(a) ? archive_error_string(a) : "tar size");
done:
    free(buf);
    if (a != NULL)
        archive_write_free(a);
    archive_entry_free(ae);
    return error;
}

/* The manifest's signature as mender-artifact writes and checks it: base64 of the RSA PKCS#1 v1.5
 * signature, or of r||s (32 bytes each) for ECDSA P-256, over SHA-256 of the manifest. */
static int sign_manifest(char b64[700], const fwrel_pkey *key, const uint8_t *m, size_t len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ECDSA_SIG *es = NULL;
    uint8_t sig[512], raw[64];
    size_t slen = sizeof(sig), olen;
    int ec = EVP_PKEY_is_a(key, "EC"), error = 0;
    if (!ec && !EVP_PKEY_is_a(key, "RSA"))
        return fwrel_error_set(FWREL_EKEY, "a Mender signing key is ECDSA P-256 or RSA");
    if (ec && EVP_PKEY_get_bits(key) != 256)
        return fwrel_error_set(FWREL_EKEY, "a Mender ECDSA key is P-256");
    if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, (EVP_PKEY *)key) != 1 ||
        EVP_DigestSign(ctx, sig, &slen, m, len) != 1) {
        error = fwrel_error_set_openssl(FWREL_EKEY, "cannot sign the Mender manifest");
        goto done;
    }
    olen = slen;
    if (ec) {
        const uint8_t *p = sig;
        const BIGNUM *r, *s;
        if ((es = d2i_ECDSA_SIG(NULL, &p, (long)slen)) == NULL) {
            error = fwrel_error_set_openssl(FWREL_EKEY, "cannot sign the Mender manifest");
            goto done;
        }
        ECDSA_SIG_get0(es, &r, &s);
        if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32) {
            error = fwrel_error_set(FWREL_EKEY, "ECDSA signature out of range");
            goto done;
        }
        memcpy(sig, raw, 64);
        olen = 64;
    }
    if (olen > 512) {
        error = fwrel_error_set(FWREL_EKEY, "signature too long");
        goto done;
    }
    EVP_EncodeBlock((unsigned char *)b64, sig, (int)olen);
done:
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(ctx);
    return error;
}

static int check_field(const char *v, const char *what, int plain)
{
    size_t n = v != NULL ? strlen(v) : 0;
    if (n == 0 || n > FIELD_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "mender %s: 1 to %d bytes", what, FIELD_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        int ok = plain ? (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'
                       : c > 0x20 && c < 0x7f;
        if (!ok)
            return fwrel_error_set(FWREL_EUSAGE, "mender %s '%.64s': not a %s", what, v,
                                   plain ? "plain name" : "printable word");
    }
    return 0;
}

/* header-info and type-info as mender-artifact writes them (write rootfs-image, or write
 * module-image for another type): compact JSON in the writer's key order. */
static int header_json(char **hinfo, char **tinfo, const fwrel_mender_info *in)
{
    json_t *types = json_array(), *h = NULL, *t = NULL, *prov = NULL;
    char key[FIELD_MAX * 2 + 32];
    int rootfs = strcmp(in->payload_type, "rootfs-image") == 0, error = 0;
    for (size_t i = 0; types != NULL && i < in->ndevice_types; i++)
        if (json_array_append_new(types, json_string(in->device_types[i])) != 0) {
            json_decref(types);
            types = NULL;
        }
    if (types == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    h = json_pack("{s:[{s:s}],s:{s:s},s:{s:o}}", "payloads", "type", in->payload_type,
                  "artifact_provides", "artifact_name", in->artifact_name, "artifact_depends",
                  "device_type", types);
    if (rootfs)
        snprintf(key, sizeof(key), "rootfs-image.version");
    else
        snprintf(key, sizeof(key), "rootfs-image.%s.version", in->software_name);
    prov = json_pack("{s:s}", key, in->software_version);
    if (rootfs)
        snprintf(key, sizeof(key), "rootfs-image.*");
    else
        snprintf(key, sizeof(key), "rootfs-image.%s.*", in->software_name);
    if (prov != NULL)
        t = json_pack("{s:s,s:o,s:[s]}", "type", in->payload_type, "artifact_provides", prov,
                      "clears_artifact_provides", key);
    *hinfo = h ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    *tinfo = t ? json_dumps(t, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (*hinfo == NULL || *tinfo == NULL) {
        free(*hinfo);
        free(*tinfo);
        *hinfo = *tinfo = NULL;
        error = fwrel_error_set(FWREL_EIO, "out of memory");
    }
    json_decref(h);
    json_decref(t);
    return error;
}

int fwrel_mender_write(uint8_t **out, size_t *outlen, const fwrel_mender_info *in,
                       const uint8_t *payload, size_t len, const fwrel_pkey *key)
{
    FWREL_ASSERT_ARG(out != NULL && outlen != NULL && in != NULL && key != NULL &&
                     (payload != NULL || len == 0));
    static const char version[] = "{\"format\":\"mender\",\"version\":3}";
    char *hinfo = NULL, *tinfo = NULL, sig[700], manifest[3 * (64 + 2 + 128 + 1) + 1];
    char dname[FIELD_MAX + 16];
    uint8_t *htar = NULL, *dtar = NULL, hx[32];
    size_t hlen = 0, dlen = 0;
    char hh[3][65];
    int error;

    *out = NULL;
    *outlen = 0;
    if ((error = check_field(in->artifact_name, "artifact name", 0)) != 0 ||
        (error = check_field(in->payload_type, "payload type", 1)) != 0 ||
        (error = check_field(in->software_version, "software version", 0)) != 0 ||
        (error = check_field(in->file_name, "file name", 1)) != 0 ||
        (strcmp(in->payload_type, "rootfs-image") != 0 &&
         (error = check_field(in->software_name, "software name", 1)) != 0))
        return error;
    if (in->ndevice_types == 0 || in->ndevice_types > FWREL_MENDER_TYPES_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "mender: 1 to %d device types",
                               FWREL_MENDER_TYPES_MAX);
    for (size_t i = 0; i < in->ndevice_types; i++)
        if ((error = check_field(in->device_types[i], "device type", 0)) != 0)
            return error;
    if (len > FWREL_IMAGE_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "mender: the payload is too large");
    if ((error = header_json(&hinfo, &tinfo, in)) != 0)
        goto done;
    /* mender-artifact writes an empty meta-data beside type-info; mender-mcu reads it. */
    const struct ent hdr[] = {{"header-info", (const uint8_t *)hinfo, strlen(hinfo)},
                              {"headers/0000/type-info", (const uint8_t *)tinfo, strlen(tinfo)},
                              {"headers/0000/meta-data", NULL, 0}};
    const struct ent data[] = {{in->file_name, payload, len}};
    if ((error = tar_build(&htar, &hlen, hdr, 3)) != 0 ||
        (error = tar_build(&dtar, &dlen, data, 1)) != 0)
        goto done;
    /* The manifest: "<sha256>  <path>" per file, sorted by path; the payload under
     * data/0000/<name>. */
    snprintf(dname, sizeof(dname), "data/0000/%s", in->file_name);
    if ((error = fwrel_sha256(hx, payload, len)) != 0)
        goto done;
    fwrel_hex(hh[0], hx, 32);
    if ((error = fwrel_sha256(hx, htar, hlen)) != 0)
        goto done;
    fwrel_hex(hh[1], hx, 32);
    if ((error = fwrel_sha256(hx, version, strlen(version))) != 0)
        goto done;
    fwrel_hex(hh[2], hx, 32);
    int mlen = snprintf(manifest, sizeof(manifest), "%s  %s\n%s  header.tar\n%s  version\n", hh[0],
                        dname, hh[1], hh[2]);
    if (mlen < 0 || (size_t)mlen >= sizeof(manifest)) {
        error = fwrel_error_set(FWREL_EUSAGE, "mender: file name too long");
        goto done;
    }
    if ((error = sign_manifest(sig, key, (const uint8_t *)manifest, (size_t)mlen)) != 0)
        goto done;
    const struct ent outer[] = {{"version", (const uint8_t *)version, strlen(version)},
                                {"manifest", (const uint8_t *)manifest, (size_t)mlen},
                                {"manifest.sig", (const uint8_t *)sig, strlen(sig)},
                                {"header.tar", htar, hlen},
                                {"data/0000.tar", dtar, dlen}};
    error = tar_build(out, outlen, outer, 5);
done:
    free(hinfo);
    free(tinfo);
    free(htar);
    free(dtar);
    return error;
}
