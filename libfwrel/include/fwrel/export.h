/*
 * export.h - update-server exports rendered from template directories
 * (docs/exports.md).
 *
 * An export is a directory <root>/<name>/ holding an export.yaml (description,
 * variables, how each file's values are escaped, which release artifacts are
 * copied where) and template files whose names and contents may hold
 * {{variable}} placeholders. Users add exports by adding a directory; nothing
 * is compiled. Rendering is strict and bounded: unknown or unset variables,
 * unclosed braces, bad names, paths that leave the export directory, symbolic
 * links, non-regular files and oversize inputs or outputs are errors, and the
 * result is a sorted list of (relative path, bytes) in memory.
 */
#ifndef FWREL_EXPORT_H
#define FWREL_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/history.h"
#include "fwrel/io.h"
#include "fwrel/key.h"
#include "fwrel/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest template file (and export.yaml) read, in bytes. */
#define FWREL_EXPORT_TEMPLATE_MAX (64 * 1024)
/** Largest rendered file, in bytes. */
#define FWREL_EXPORT_OUTPUT_MAX (256 * 1024)
/** Most template files plus directories in one export. */
#define FWREL_EXPORT_FILES_MAX 64
/** Most variables in a set. */
#define FWREL_EXPORT_VARS_MAX 128
/** Longest variable name (characters [a-z0-9_]). */
#define FWREL_EXPORT_NAME_MAX 64
/** Longest variable value, in bytes (valid UTF-8, no NUL). */
#define FWREL_EXPORT_VALUE_MAX 4096
/** Most list variables in a set ({{*list}} loops). */
#define FWREL_EXPORT_LISTS_MAX 8
/** Most rows in a list. */
#define FWREL_EXPORT_ROWS_MAX 256
/** Longest rendered output path, in bytes. */
#define FWREL_EXPORT_PATH_MAX 255

/** Release artifact names an export.yaml may copy (fwrel_export_file.artifact). */
#define FWREL_EXPORT_ARTIFACT_IMAGE    "image"    /**< the served image (esp_encrypted_img file) */
#define FWREL_EXPORT_ARTIFACT_MANIFEST "manifest" /**< the encrypted manifest envelope */
/** The 1024-byte secure-FOTA compatibility manifest (docs/manifest.md section 5). */
#define FWREL_EXPORT_ARTIFACT_SECURE_FOTA "secure-fota-manifest"
/** a Mender Artifact of the served image, signed with the policy's mender key (mender.h); the
 *  caller makes it with fwrel_export_mender() */
#define FWREL_EXPORT_ARTIFACT_MENDER "mender"
/** the secure-boot-signed image, not encrypted: only for an export whose policy settings say
 *  plain_image: true (docs/exports.md section 0) */
#define FWREL_EXPORT_ARTIFACT_PLAIN "plain-image"

/** What an export needs signed (fwrel_export_check_policy() checks the policy has the key). */
#define FWREL_EXPORT_NEEDS_MENDER_KEY  1u /**< it copies the mender artifact */
#define FWREL_EXPORT_NEEDS_AWS_OTA_KEY 2u /**< it declares the aws_signature variable */
#define FWREL_EXPORT_NEEDS_PLAIN       4u /**< it copies the plain image */

/**
 * Whether the policy allows export i the plain image: its setting plain_image is "true".
 * @return 1 or 0
 */
int fwrel_export_plain_allowed(const fwrel_policy *p, size_t i);

/** How values are escaped in a file (export.yaml `escape:`), or by a {{name|filter}}. */
enum fwrel_export_escape {
    FWREL_EXPORT_NONE = 0,  /**< verbatim; values with control characters are refused */
    FWREL_EXPORT_JSON = 1,  /**< inside a JSON string: \" \\ and \uXXXX for controls */
    FWREL_EXPORT_SHELL = 2, /**< a whole POSIX-shell single-quoted word: 'it'\''s' */
    FWREL_EXPORT_URL = 3,   /**< percent-encoding of everything but A-Z a-z 0-9 - . _ ~ */
};

/** A set of variables (name -> string); opaque. */
typedef struct fwrel_export_vars fwrel_export_vars;

/** One rendered file of an export. */
typedef struct fwrel_export_file {
    char *path;           /**< relative to the export's directory, '/'-separated */
    uint8_t *data;        /**< the rendered bytes; NULL for an artifact copy */
    size_t len;           /**< size of data */
    const char *artifact; /**< NULL, or one of the FWREL_EXPORT_ARTIFACT_* strings (compare
                               with strcmp): the caller puts that release file's bytes at path
                               (images are not read into memory here) */
    int executable;       /**< 1 when export.yaml marks the file executable (mode 0755) */
} fwrel_export_file;

/**
 * Create an empty variable set.
 * @param out  receives the set; free with fwrel_export_vars_free()
 * @return 0 or FWREL_EIO (out of memory)
 */
int fwrel_export_vars_new(fwrel_export_vars **out) FWREL_WUR;

/** Free a variable set. NULL is fine. */
void fwrel_export_vars_free(fwrel_export_vars *vars);

/**
 * Set (or replace) a variable. Both strings are copied.
 *
 * @param vars   the set
 * @param name   [a-z0-9_], 1 to FWREL_EXPORT_NAME_MAX characters
 * @param value  valid UTF-8, at most FWREL_EXPORT_VALUE_MAX bytes
 * @return 0; FWREL_EUSAGE for a bad name, a value that is too long or not
 *         UTF-8, or more than FWREL_EXPORT_VARS_MAX variables; FWREL_EIO
 */
int fwrel_export_vars_set(fwrel_export_vars *vars, const char *name, const char *value) FWREL_WUR;

/**
 * The value of a variable.
 * @return the value (owned by vars, valid until it is replaced or freed), or NULL when unset
 */
const char *fwrel_export_vars_get(const fwrel_export_vars *vars, const char *name);

/**
 * Set the variable "hmac" to the Flask OTA server's HMAC of the served file
 * (docs/exports.md section 5, flask-ota): lower-case hex of
 * HMAC-SHA256(key, every byte of image from its current position to its end),
 * i.e. of the whole file the device downloads (the esp_encrypted_img file),
 * keyed with the policy's 32-byte `hmac` key as raw bytes. Streams the image
 * (64 KiB at a time). The key is not copied; the caller wipes it.
 *
 * @param vars    the set
 * @param key     the raw HMAC key
 * @param keylen  must be 32 (hmac256)
 * @param image   the served file, positioned at its start
 * @return 0; FWREL_EKEY for a key that is not 32 bytes or an OpenSSL failure;
 *         a read error of image (FWREL_EIO / FWREL_EFORMAT)
 */
int fwrel_export_vars_set_hmac(fwrel_export_vars *vars, const uint8_t *key, size_t keylen,
                               fwrel_src *image) FWREL_WUR;

/**
 * Set the variable name to the base64 (RFC 4648, padded) of a DER ECDSA P-256 / SHA-256
 * signature over every byte of image from its current position to its end: AWS IoT OTA's
 * customCodeSigning signature of the served file (docs/exports.md, aws-iot-ota; `openssl dgst
 * -sha256 -verify pub.pem -signature sig.der file` checks it). Streams the image.
 *
 * @param key    the policy's aws_ota key (ECDSA P-256)
 * @return 0; FWREL_EKEY for another key or an OpenSSL failure; a read error of image
 */
int fwrel_export_vars_set_signature(fwrel_export_vars *vars, const char *name,
                                    const fwrel_pkey *key, fwrel_src *image) FWREL_WUR;

/**
 * Append a row to the list variable `list` (created when absent), repeated by a
 * {{*list}}...{{/list}} loop (docs/exports.md section 3).
 *
 * @param vars  the set
 * @param list  [a-z0-9_], 1 to FWREL_EXPORT_NAME_MAX characters
 * @param row   the row's variables, a set without lists; owned by vars on success,
 *              still the caller's on failure
 * @return 0; FWREL_EUSAGE for a bad name, a row holding lists, more than
 *         FWREL_EXPORT_LISTS_MAX lists or FWREL_EXPORT_ROWS_MAX rows; FWREL_EIO
 */
int fwrel_export_vars_add_row(fwrel_export_vars *vars, const char *list,
                              fwrel_export_vars *row) FWREL_WUR;

/** Remove every row of the list variable `list` (it stays, empty); NULL or no list: nothing. */
void fwrel_export_vars_clear_list(fwrel_export_vars *vars, const char *list);

/** The number of rows of the list variable `list` (0 when there is no such list). */
size_t fwrel_export_vars_rows(const fwrel_export_vars *vars, const char *list);

/**
 * Set image_sha256, image_md5 and image_size from the served file, from its current position
 * to its end, streamed 64 KiB at a time. MD5 is there for ESPHome's OTA, which checks it.
 *
 * @return 0; a read error of image (FWREL_EIO / FWREL_EFORMAT); FWREL_EIO
 */
int fwrel_export_vars_set_image(fwrel_export_vars *vars, fwrel_src *image) FWREL_WUR;

/**
 * Set the list `releases`: the channel's releases that h proves, oldest first, then this one
 * (docs/exports.md section 4). A row of h is one whose product and channel are the variables
 * product and channel and whose counter is below the variable counter; its fields are version,
 * counter, secure_version, image_sha256, image_size, created (RFC 3339) and tag. The last row,
 * this release, has version, counter, secure_version, image_sha256, image_md5, image_size,
 * created and hmac from vars (each when set) and current = "1". At most
 * FWREL_EXPORT_ROWS_MAX rows: the newest. Call it after every other variable is set.
 *
 * @param vars  the set, with product, channel and counter set
 * @param h     the verified release history (NULL: none)
 * @return 0; FWREL_EUSAGE when product, channel or counter is missing; FWREL_EIO
 */
int fwrel_export_vars_set_releases(fwrel_export_vars *vars, const fwrel_history *h) FWREL_WUR;

/**
 * Set the device types of the release: the variable device_types (comma-separated), the
 * variable device_type when there is exactly one, and the list `targets` with one row per type:
 * device_type and upload_id, the secure-FOTA Update Server's id for it (docs/exports.md,
 * secure-fota): slot * 65536 + counter, where slot is the setting id_slot plus the type's index
 * when settings has id_slot, else 1 + (the first 4 bytes of SHA-256("fwrel secure-fota id\0"
 * product "\0" device_type), big-endian) mod 32767. upload_id is left unset when counter is over
 * 65535.
 *
 * @param vars      the set, with product and counter set
 * @param types     the release's device types, in the policy's order
 * @param n         their number, 1 to FWREL_EXPORT_ROWS_MAX
 * @param settings  the export's policy settings (NULL: none)
 * @return 0; FWREL_EFORMAT for an id_slot that is not 1..32767 minus n - 1; FWREL_EUSAGE;
 *         FWREL_EIO
 */
int fwrel_export_vars_set_targets(fwrel_export_vars *vars, const char *const *types, size_t n,
                                  const fwrel_export_vars *settings) FWREL_WUR;

/**
 * Render one template text (docs/exports.md "Template language"): {{name}},
 * {{name|url}}, {{name|json}}, {{name|shell}}, sections {{#name}}..{{/name}}
 * (kept when name is set and not empty) and {{^name}}..{{/name}} (kept when it
 * is not), not nested. Every name used must be set in vars. A filter is
 * applied first, then the context's escaping.
 *
 * @param out     receives the malloc'd bytes (NUL-terminated, not counted); free()
 * @param outlen  receives their count
 * @param text    the template
 * @param len     its size, at most FWREL_EXPORT_TEMPLATE_MAX
 * @param escape  the context, an enum fwrel_export_escape
 * @param vars    the variables
 * @return 0; FWREL_EFORMAT "line N: reason" (unclosed {{, a name outside
 *         [a-z0-9_], unknown variable, unbalanced section, a value a context
 *         refuses, input or output over its cap); FWREL_EIO
 */
int fwrel_export_render_text(uint8_t **out, size_t *outlen, const uint8_t *text, size_t len,
                             int escape, const fwrel_export_vars *vars) FWREL_WUR;

/**
 * Render the export `name` found under root.
 *
 * Reads <root>/<name>/export.yaml and every file below <root>/<name>/ without
 * following symbolic links. Each template file must be declared in export.yaml
 * and each declared file must exist; every placeholder must name a declared
 * variable; every required variable must be set. File names are rendered too:
 * a value holding '/', '\\', "..", or a control character is refused there, and
 * every output path must be relative, free of empty, "." and ".." components
 * and unique. Rendered `json` files must parse as JSON.
 *
 * @param files  receives the files sorted bytewise by path; free with
 *               fwrel_export_files_free()
 * @param count  receives their number
 * @param root   the template root (fwrel_preflight_templates() finds it); the
 *               root itself may be a symbolic link, nothing below it may
 * @param name   the export: [a-z0-9][a-z0-9._-]{0,63}, no ".."
 * @param vars   the release's variables (docs/exports.md lists them)
 * @return 0; FWREL_EUSAGE for a bad export name; FWREL_EFORMAT "<file>:<line>: reason"
 *         (file relative to the export directory) or "export.yaml:line:col: reason";
 *         FWREL_EIO when the export does not exist or cannot be read. Nothing is
 *         returned on failure.
 */
int fwrel_export_render(fwrel_export_file **files, size_t *count, const char *root,
                        const char *name, const fwrel_export_vars *vars) FWREL_WUR;

/**
 * fwrel_export_render() with the policy's settings for this export (docs/exports.md section 2,
 * `settings:`): each must be a setting export.yaml declares, and its value is used in place of
 * the variable of the same name in vars (base_url). base_host, base_port and base_path are
 * derived from the base_url in use.
 *
 * @param settings  the export's settings (NULL: none)
 * @return as fwrel_export_render(); FWREL_EFORMAT "export 'x' has no setting 'y' (...)"
 */
int fwrel_export_render_with(fwrel_export_file **files, size_t *count, const char *root,
                             const char *name, const fwrel_export_vars *vars,
                             const fwrel_export_vars *settings) FWREL_WUR;

/**
 * Check that the export `name` under root is well formed, without a release:
 * everything fwrel_export_render() checks, with every declared variable set
 * to "0" (for `fwrel-bundle --check-policy`).
 *
 * @param description  receives export.yaml's description (malloc'd; free()),
 *                     NULL on failure
 * @param root         the template root
 * @param name         the export
 * @return 0, or the codes and messages of fwrel_export_render()
 */
int fwrel_export_check(char **description, const char *root, const char *name) FWREL_WUR;

/**
 * fwrel_export_check() with the policy's settings for the export, each checked as
 * fwrel_export_render_with() does (for `fwrel-bundle --check-policy`).
 */
int fwrel_export_check_with(char **description, const char *root, const char *name,
                            const fwrel_export_vars *settings) FWREL_WUR;

/**
 * Check every export a policy names (exports:) against the templates under root, with the
 * settings the policy gives it: an export that does not exist, is malformed, or does not declare
 * a setting the policy sets is an error (for `fwrel-bundle --check-policy`, so that a misspelt
 * `exports: [secure_fota]` is caught before a release).
 *
 * @param p     the policy
 * @param root  the template root (fwrel_preflight_templates() finds it)
 * @return 0; FWREL_EFORMAT "export 'NAME': no such export in ROOT (known: a, b, c)" for a name
 *         with no export.yaml under root; FWREL_EIO when root cannot be listed; or the codes of
 *         fwrel_export_check_with(), the message prefixed "export NAME: "
 */
int fwrel_export_check_policy(const fwrel_policy *p, const char *root) FWREL_WUR;

/**
 * Make the release's Mender artifact (docs/exports.md, mender) with fwrel_mender_write():
 * artifact name `<product>-<version>`, the device types of the targets list, the settings
 * payload_type (default rootfs-image) and software_name (default the product), the payload
 * `<product>-<version>.bin` with the given bytes (the served file).
 *
 * @param out  receives the malloc'd artifact (free())
 * @param key  the policy's mender key
 * @return 0, or the codes of fwrel_mender_write(); FWREL_EUSAGE when vars lack product,
 *         version or targets
 */
int fwrel_export_mender(uint8_t **out, size_t *len, const fwrel_export_vars *vars,
                        const fwrel_export_vars *settings, const uint8_t *payload, size_t plen,
                        const fwrel_pkey *key) FWREL_WUR;

/**
 * The settings the policy gives its export number i (exports: [{name: x, key: value}]), as a
 * variable set for fwrel_export_render_with().
 *
 * @param out  receives the set (possibly empty); free with fwrel_export_vars_free()
 * @return 0; FWREL_EUSAGE for an index past p->nexports; FWREL_EIO
 */
int fwrel_export_policy_settings(fwrel_export_vars **out, const fwrel_policy *p,
                                 size_t i) FWREL_WUR;

/** Free files from fwrel_export_render(). NULL is fine. */
void fwrel_export_files_free(fwrel_export_file *files, size_t count);

#ifdef __cplusplus
}
#endif
#endif
