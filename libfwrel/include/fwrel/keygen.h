/*
 * keygen.h - a product's keys in its keystore directory, as one transaction
 * (docs/keystore.md): every key a policy names made or kept, what goes onto the
 * device staged (--provision), rotation, revocation, listing, and the audit
 * entry of each change.
 *
 * A run decides everything first (the policy's keys matched to the keystore,
 * fwrel_keystore_match_key(); HSM keys read from their tokens), then stages: the
 * keystore change (fwrel_keystore_begin()) and the provisioning directory
 * (fwrel_outdir_open()); then the keystore change is prepared, logged in the
 * audit log, committed, and the provisioning directory published. A failure at
 * any step undoes them all (the keystore and the directory as they were) and
 * appends a "fail" entry naming the step. A process killed before the
 * keystore's commit point leaves staging directories only, which the next run
 * undoes (fwrel_keystore_open()).
 *
 * The library never prints: what the command shows comes as events through
 * the caller's callback, in the order they happen.
 */
#ifndef FWREL_KEYGEN_H
#define FWREL_KEYGEN_H

#include <stddef.h>

#include "fwrel/error.h"
#include "fwrel/key.h"
#include "fwrel/keystore.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a run does. */
enum fwrel_keygen_mode {
    FWREL_KEYGEN_POLICY = 1, /**< create every key the policy names that the keystore lacks */
    FWREL_KEYGEN_ROTATE,     /**< retire the active key NAME (or of PURPOSE), make the next */
    FWREL_KEYGEN_REVOKE,     /**< record the active key NAME as revoked */
    FWREL_KEYGEN_LIST,       /**< list the keystore's keys */
};

/** What a run tells its caller. */
enum fwrel_keygen_event_kind {
    FWREL_KEYGEN_EV_RECOVERED = 1, /**< count: interrupted changes undone at the open */
    FWREL_KEYGEN_EV_KEY,           /**< verb, entry: a key listed (verb its status), kept,
                                        created, rotated or revoked */
    FWREL_KEYGEN_EV_REVOKED_SLOT,  /**< count: the slot, text: the espefuse command to revoke
                                        it on a device, or NULL when the chip has no
                                        revocation eFuse (verb: why; docs/esp-formats.md §2.9) */
    FWREL_KEYGEN_EV_FILE,          /**< path, text (what it is), entry (NULL for the README):
                                        a provisioning file staged */
    FWREL_KEYGEN_EV_PROVISIONED,   /**< the provisioning files are all told (also on failure) */
    FWREL_KEYGEN_EV_FAIL,          /**< path (what failed, or NULL): fwrel_error_last() is
                                        the failure; a run may tell more than one (an undo
                                        that failed too) */
    FWREL_KEYGEN_EV_LOGGED,        /**< path: the audit log the change is recorded in */
    FWREL_KEYGEN_EV_STATE,         /**< entry: one of the keystore's entries after a run that
                                        succeeded, in index order */
};

/** One event; its pointers are valid during the callback only. */
typedef struct fwrel_keygen_event {
    int kind;                    /**< enum fwrel_keygen_event_kind */
    const char *verb;            /**< FWREL_KEYGEN_EV_KEY; _REVOKED_SLOT without a command */
    const fwrel_keystore_entry *entry; /**< FWREL_KEYGEN_EV_KEY, _FILE, _STATE */
    const char *path;            /**< FWREL_KEYGEN_EV_FILE, _FAIL, _LOGGED */
    const char *text;            /**< FWREL_KEYGEN_EV_FILE, _REVOKED_SLOT */
    unsigned count;              /**< FWREL_KEYGEN_EV_RECOVERED, _REVOKED_SLOT */
    int changed;                 /**< FWREL_KEYGEN_EV_KEY: 1 when this run created, rotated or
                                      revoked the key (0 for one kept or listed) */
} fwrel_keygen_event;

/** A run's parameters. */
typedef struct fwrel_keygen_opts {
    int mode;              /**< enum fwrel_keygen_mode */
    const char *keystore;  /**< the keystore directory (created 0700 by FWREL_KEYGEN_POLICY) */
    const char *policy;    /**< the policy file: needed by FWREL_KEYGEN_POLICY, else optional
                                (its HSM keys, its chip, and the audit log) */
    const char *provision; /**< FWREL_KEYGEN_POLICY: the provisioning directory, or NULL */
    const char *repo;      /**< the release repository whose audit log records the change
                                (created if need be), or NULL: the policy's, when it exists */
    const char *name;      /**< FWREL_KEYGEN_ROTATE: NAME or PURPOSE; _REVOKE: NAME */
    int reason;            /**< FWREL_KEYGEN_REVOKE: enum fwrel_keystore_reason (not 0) */
    const char *since;     /**< FWREL_KEYGEN_REVOKE: from when (fwrel_keystore_parse_time()
                                form), or NULL: now */
    int force;             /**< rotate every key the policy names; replace the provisioning
                                directory's files */
    fwrel_pass_src pass;   /**< the keystore passphrase's source */
    const char *pin_file;  /**< the PIN of HSM keys whose URI has no pin-source, or NULL (tty) */
    void (*notify)(void *arg, const fwrel_keygen_event *ev); /**< the caller's callback */
    void *arg;                                               /**< passed to notify */
} fwrel_keygen_opts;

/**
 * Run keygen in keystore mode (the options checked by the caller: one mode,
 * --provision with FWREL_KEYGEN_POLICY only).
 *
 * @return 0; else the code of the failure told by FWREL_KEYGEN_EV_FAIL:
 *         FWREL_EKEY (a policy key the keystore or the token contradicts, a
 *         wrong passphrase, no such key), FWREL_EUSAGE, FWREL_EFORMAT (policy,
 *         index), FWREL_EIO. Nothing is changed then (the audit log gains a
 *         "fail" entry when the change had begun).
 */
int fwrel_keygen_run(const fwrel_keygen_opts *o) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
