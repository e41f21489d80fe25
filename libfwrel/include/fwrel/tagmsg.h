/*
 * tagmsg.h - the release tag message (docs/repo.md section 2): one codec, the writer fwrel-bundle
 * uses (pipeline.c) and the reader fwrel-verify --repo uses (auditor.c), so the two cannot drift.
 *
 *   fwrel release PRODUCT VERSION (CHANNEL)
 *
 *   counter: N
 *   secure_version: S
 *   bundle: TAG/bundle.fwb sha256:HEX size:N
 *   release.json: sha256:HEX
 *   input: sha256:HEX size:N
 *   policy: sha256:HEX
 *   approvals: K of M: FPR, FPR        (or "approvals: 0 of M: none")
 *   audit: PATH head:HEX entries:N
 *
 * The release commit's message is "release TAG", a blank line, and the same field lines.
 * The reader takes untrusted bytes: every length is bounded, each field line must appear exactly
 * once, unknown lines are ignored.
 */
#ifndef FWREL_TAGMSG_H
#define FWREL_TAGMSG_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Most approvers a tag message lists. */
#define FWREL_TAGMSG_APPROVALS_MAX 16

/** What a release tag message says. */
typedef struct fwrel_tagmsg {
    char product[65];
    char version[33];
    char channel[17];
    uint64_t counter;
    uint32_t secure_version;
    char bundle_path[300]; /**< "<tag>/bundle.fwb" */
    char bundle_sha[65];   /**< lower-case hex */
    uint64_t bundle_size;
    char rj_sha[65]; /**< release.json's SHA-256 */
    char input_sha[65];
    uint64_t input_size;
    char policy_sha[65];
    char approvals[FWREL_TAGMSG_APPROVALS_MAX][41]; /**< the approvers (fingerprints), in order */
    size_t napprovals;
    unsigned approvals_required;
    char audit_path[128]; /**< a relative path of safe components */
    char audit_head[65];
    uint64_t audit_entries; /**< >= 1 */
} fwrel_tagmsg;

/**
 * Write the tag message, and the release commit's message, of a release.
 *
 * @param tag_msg     receives the tag message (malloc'd, NUL-terminated)
 * @param commit_msg  receives "release TAG\n\n" and the field lines (malloc'd); NULL: not wanted
 * @param m           the fields (product, version and channel must not contain a space)
 * @param tag         the tag's name
 * @return 0; FWREL_EFORMAT when a field cannot be written so that it reads back
 *         (fwrel_tagmsg_decode() is run on the result); FWREL_EIO
 */
int fwrel_tagmsg_encode(char **tag_msg, char **commit_msg, const fwrel_tagmsg *m,
                        const char *tag) FWREL_WUR;

/**
 * The tag message of a release commit whose tag is lost (fwrel-bundle --repair-history): the
 * first line from the record, the field lines from the commit message, which the writer made from
 * the same text.
 *
 * @param tag_msg    receives the tag message (malloc'd)
 * @param commit_msg the commit's message
 * @param tag        the tag the commit names
 * @return 0; FWREL_EVERIFY "its message is not a release's" when commit_msg does not start
 *         "release TAG" and a blank line; FWREL_EIO
 */
int fwrel_tagmsg_from_commit(char **tag_msg, const char *commit_msg, const char *tag,
                             const char *product, const char *version,
                             const char *channel) FWREL_WUR;

/**
 * Read a tag message (the text after the tag object's header).
 *
 * @param m      receives the fields (zeroed first; the first line's fields are kept when a later
 *               line fails)
 * @param err    receives the reason on failure ("" on success)
 * @param errlen its capacity (>= 1)
 * @return 1 when the message has the first line and every field line once, well formed; else 0
 */
int fwrel_tagmsg_decode(fwrel_tagmsg *m, char *err, size_t errlen, const uint8_t *msg, size_t len);

/**
 * Read the message of a raw tag object's signed payload: after the header's blank line.
 * @return as fwrel_tagmsg_decode(); "the tag has no message" without a blank line
 */
int fwrel_tagmsg_decode_tag(fwrel_tagmsg *m, char *err, size_t errlen, const uint8_t *raw,
                            size_t payload_len);

#ifdef __cplusplus
}
#endif
#endif
