/*
 * mender.h - a signed Mender Artifact (format version 3, uncompressed, for mender-mcu) written
 * with libarchive (docs/exports.md "mender").
 */
#ifndef FWREL_MENDER_H
#define FWREL_MENDER_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/key.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FWREL_MENDER_TYPES_MAX 8      /**< device types of one artifact */
#define FWREL_MENDER_OVERHEAD  65536u /**< the artifact is at most the payload plus this */

/** What an artifact says about its payload; every string printable, at most 255 bytes. */
typedef struct fwrel_mender_info {
    const char *artifact_name;       /**< artifact_provides.artifact_name */
    const char *const *device_types; /**< artifact_depends.device_type, 1..8 */
    size_t ndevice_types;
    const char *payload_type;     /**< "rootfs-image", or an update module's type */
    const char *software_name;    /**< module types: rootfs-image.<name>.version */
    const char *software_version; /**< the version the payload provides */
    const char *file_name;        /**< the payload's name in data/0000.tar (a plain name) */
} fwrel_mender_info;

/**
 * Write the artifact: version, manifest, manifest.sig, header.tar (header-info,
 * headers/0000/type-info, headers/0000/meta-data) and data/0000.tar holding the payload, as one
 * ustar archive with no compression (mender-mcu reads only that).
 * @param out     receives the malloc'd artifact (free()), at most len + FWREL_MENDER_OVERHEAD
 * @param key     signs the manifest: ECDSA P-256 (manifest.sig is base64 of r||s, 32 bytes each)
 *                or RSA (PKCS#1 v1.5), both over SHA-256 of the manifest
 * @return 0; FWREL_EUSAGE for a bad info field; FWREL_EKEY for another key type or a failed
 *         signature; FWREL_EIO out of memory or a libarchive failure. Nothing is returned on
 *         failure.
 */
int fwrel_mender_write(uint8_t **out, size_t *outlen, const fwrel_mender_info *info,
                       const uint8_t *payload, size_t len, const fwrel_pkey *key) FWREL_WUR;

#ifdef __cplusplus
}
#endif

#endif
