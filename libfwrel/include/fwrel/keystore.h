/*
 * keystore.h - the keystore directory: every key of a product, with its
 * purpose, algorithm, status and epoch (docs/keystore.md).
 *
 * Layout (everything 0700 / 0600; anything group- or other-accessible is refused):
 *
 *     DIR/index.json                 {"format": "fwrel-keystore-1", "keys": [...]}
 *     DIR/.lock                      flock'd by every process that changes the index
 *     DIR/keys/NAME.EPOCH.pem        private key, encrypted PKCS#8 (or plain with no passphrase)
 *     DIR/keys/NAME.EPOCH.pub.pem    its SubjectPublicKeyInfo
 *     DIR/keys/NAME.EPOCH.sec        raw secret (flash encryption, HMAC, device HMAC key of an
 *                                    ECC image-encryption key), passphrase-encrypted
 *     DIR/keys/NAME.EPOCH.bin        the same, unencrypted (only with no passphrase)
 *     DIR/.txn-XXXXXX/               staging directory of a change being made (below)
 *
 * Entries are never deleted: a rotation marks the active entry "retired" and
 * adds the next epoch; a revocation marks it "revoked".
 *
 * A change (any number of new keys, rotations and revocations) is staged, then
 * committed at once: fwrel_keystore_begin() creates DIR/.txn-XXXXXX, new key files
 * are written there and the index changes in memory; fwrel_keystore_prepare() writes
 * the new index there too and links the files into keys/; fwrel_keystore_commit()
 * renames the new index over index.json (the commit point); fwrel_keystore_finish()
 * removes the staging directory; fwrel_keystore_abort() undoes it all, whatever step
 * it reached (after the commit too, from the old index kept in the staging
 * directory). A process killed half-way leaves the staging directory: the next
 * fwrel_keystore_open() with FWREL_KS_WRITE undoes the change when it had not reached
 * its commit point (its new index is still staged), else only removes the
 * staging directory (fwrel_keystore_recovered()).
 */
#ifndef FWREL_KEYSTORE_H
#define FWREL_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/key.h"
#include "fwrel/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FWREL_KS_MAX_ENTRIES 256
#define FWREL_KS_INDEX_MAX   (1024 * 1024)
#define FWREL_KS_SECRET_MAX  64

/** Status of a keystore entry. */
enum fwrel_keystore_status {
    FWREL_KS_ACTIVE = 1,
    FWREL_KS_RETIRED,
    FWREL_KS_REVOKED,
};

/** Why a key was revoked (docs/keystore.md "Rotation and revocation"). */
enum fwrel_keystore_reason {
    FWREL_KS_REASON_UNSTATED = 0, /**< an index written before reasons were recorded: read as
                                       compromised since the key was made (every release it made
                                       fails, as before) */
    FWREL_KS_REASON_SUPERSEDED,   /**< replaced: releases made before `since` stay valid */
    FWREL_KS_REASON_COMPROMISED,  /**< in other hands from `since` on: releases from then fail */
};

/** One key of the keystore (one epoch of a logical name). */
typedef struct fwrel_keystore_entry {
    char name[FWREL_POLICY_NAME_MAX + 1];
    char id[65];      /**< key id (key.h): SHA-256 of the public key; for a raw
                           secret (flash encryption, HMAC key) 32 random bytes drawn when it
                           is made, so that the id says nothing about the secret */
    int purpose;      /**< enum fwrel_purpose */
    int alg;          /**< enum fwrel_alg */
    char created[21]; /**< RFC 3339 UTC, "YYYY-MM-DDTHH:MM:SSZ" */
    char changed[21]; /**< when retired or revoked, else "" */
    int status;       /**< enum fwrel_keystore_status */
    int reason;       /**< revoked: enum fwrel_keystore_reason; else 0 */
    char since[21];   /**< revoked: from when the reason holds (RFC 3339 UTC, not after changed,
                           not before created); "" when unstated */
    unsigned epoch;   /**< 1 for a name's first key, +1 at each rotation */
    int slot;         /**< secure-boot eFuse digest slot 0..2, or -1 */
    int encrypted;    /**< the private file or secret is passphrase-encrypted */
    char priv[96];    /**< relative path of the private key (.pem), or "" */
    char pub[96];     /**< relative path of the public key (.pub.pem), or "" */
    char secret[96];  /**< relative path of the raw secret (.sec/.bin), or "" */
    char *uri;        /**< pkcs11: URI for an HSM key (owned), else NULL */
} fwrel_keystore_entry;

/** An open keystore; opaque. */
typedef struct fwrel_keystore fwrel_keystore;

/** fwrel_keystore_open() flags. */
enum {
    FWREL_KS_CREATE = 1 << 0, /**< create the directory (0700) if absent, or adopt an empty one */
    FWREL_KS_WRITE = 1 << 1,  /**< take the lock: this process will change the index */
};

/**
 * Open a keystore directory and read its index.
 *
 * The directory must belong to this user and be 0700 or stricter, and every
 * file in it (index.json, keys/ and its files) must be a regular file or
 * directory that group and others cannot access. With FWREL_KS_WRITE the
 * lock file is flock'd exclusively (waiting up to 10 s for another keygen).
 *
 * @param out   receives the keystore; free with fwrel_keystore_close()
 * @param dir   the directory
 * @param flags FWREL_KS_* flags
 * @return 0; FWREL_EKEY "keystore is accessible by group or others (mode
 *         0755)", "keys/X is readable by group or others (mode 0644)", "... is
 *         not a regular file", "keystore belongs to another user"; FWREL_EFORMAT
 *         for a malformed index.json (strict: unknown fields, duplicates, bad
 *         names, ids, paths or dates, a name+epoch twice, two active epochs of a
 *         name) or a non-empty directory without one ("not a keystore");
 *         FWREL_EIO when absent (without FWREL_KS_CREATE), locked too long, or
 *         unreadable
 */
int fwrel_keystore_open(fwrel_keystore **out, const char *dir, unsigned flags) FWREL_WUR;

/**
 * Check an index.json held in memory with the rules fwrel_keystore_open() applies
 * (no files are looked at): for fuzzing, and for tools that inspect an index.
 * @param count  optional: receives the number of entries
 * @return 0, or FWREL_EFORMAT with the reason
 */
int fwrel_keystore_index_check(const uint8_t *data, size_t len, size_t *count) FWREL_WUR;

/** Release the lock and free; a change left open is finished when committed, else aborted.
 *  NULL is fine. */
void fwrel_keystore_close(fwrel_keystore *ks);

/** Number of entries (every epoch of every name). */
size_t fwrel_keystore_count(const fwrel_keystore *ks);

/** Entry i (0 <= i < fwrel_keystore_count()), in index order (the order they were added). */
const fwrel_keystore_entry *fwrel_keystore_entry_at(const fwrel_keystore *ks, size_t i);

/** The newest epoch of a name, whatever its status, or NULL. */
const fwrel_keystore_entry *fwrel_keystore_find(const fwrel_keystore *ks, const char *name);

/** The entry with that key id (64 lower-case hex), or NULL. */
const fwrel_keystore_entry *fwrel_keystore_find_id(const fwrel_keystore *ks, const char *id);

/** Name of a status ("active", "retired", "revoked"); "unknown" for another value. */
const char *fwrel_keystore_status_name(int status);

/** Name of a revocation reason ("superseded", "compromised"; "unstated" for 0). */
const char *fwrel_keystore_reason_name(int reason);

/** The reason named (exactly "superseded" or "compromised"), or 0. */
int fwrel_keystore_reason_parse(const char *s);

/**
 * A date or time given by the operator as RFC 3339 UTC: "YYYY-MM-DD" (midnight UTC) or
 * "YYYY-MM-DDTHH:MM:SSZ", a real calendar time.
 * @return 0 with out filled ("YYYY-MM-DDTHH:MM:SSZ"); FWREL_EUSAGE "not a date: ..."
 */
int fwrel_keystore_parse_time(char out[21], const char *s) FWREL_WUR;

/**
 * Build the absolute path of an entry's relative file path (in the staging
 * directory for a file the open change staged, fwrel_keystore_begin()).
 * @return 0, or FWREL_EUSAGE when it does not fit in size bytes
 */
int fwrel_keystore_path(char *out, size_t size, const fwrel_keystore *ks,
                        const char *rel) FWREL_WUR;

/**
 * Check a passphrase against the keystore's encrypted keys (one of each kind:
 * a PEM key and a sealed secret), before anything is written.
 * @return 0 (also when nothing is encrypted yet); FWREL_EKEY "wrong
 *         passphrase for key NAME (id ID)", or "key NAME is encrypted: a
 *         passphrase is needed" when pass is NULL
 */
int fwrel_keystore_check_pass(const fwrel_keystore *ks, const char *pass,
                              size_t pass_len) FWREL_WUR;

/**
 * Number of interrupted changes (staging directories left by a killed process)
 * that fwrel_keystore_open() undid or removed; 0 for a read-only open, which leaves them.
 */
unsigned fwrel_keystore_recovered(const fwrel_keystore *ks);

/**
 * Begin a change: until fwrel_keystore_commit(), fwrel_keystore_generate(),
 * fwrel_keystore_add_hsm() and fwrel_keystore_revoke() write their files into a new
 * staging directory DIR/.txn-XXXXXX (0700) and change the index in memory
 * only; fwrel_keystore_path() and the loaders find the staged files. Without a change
 * begun, each of those calls is a change of its own, committed before it returns.
 * @return 0; FWREL_EUSAGE (read-only, a change open already); FWREL_EIO
 */
int fwrel_keystore_begin(fwrel_keystore *ks) FWREL_WUR;

/**
 * Prepare the open change: write the new index into the staging directory,
 * link the staged files into keys/ (never replacing a file), keep a link to the
 * old index, fsync. Everything but the commit point; nothing changes when no
 * key was added or changed.
 * @return 0; FWREL_EIO "cannot add keys/FILE: reason" (the links made are taken
 *         back; the change stays open and can be aborted)
 */
int fwrel_keystore_prepare(fwrel_keystore *ks) FWREL_WUR;

/**
 * Commit the change (preparing it first when needed): rename the new index over
 * index.json and fsync the directory. It can still be undone by
 * fwrel_keystore_abort() until fwrel_keystore_finish().
 * @return 0; FWREL_EIO (the change stays open and can be aborted)
 */
int fwrel_keystore_commit(fwrel_keystore *ks) FWREL_WUR;

/** End a committed change: remove the staging directory and the old index. NULL is fine. */
void fwrel_keystore_finish(fwrel_keystore *ks);

/**
 * Undo the open change, whatever step it reached: the old index back, the links
 * in keys/ and the staging directory removed; a keystore that fwrel_keystore_open()
 * created (and no change was committed to since) is removed again. The entries
 * in memory are read again from the disk. Nothing to do without a change open.
 * @return 0, or FWREL_EIO "cannot restore index.json" (a committed change then
 *         stays whole)
 */
int fwrel_keystore_abort(fwrel_keystore *ks);

/** What fwrel_keystore_generate() makes. */
typedef struct fwrel_keystore_new {
    const char *name; /**< logical name, [a-z0-9][a-z0-9._-]{0,63} */
    int purpose;      /**< enum fwrel_purpose */
    int alg;          /**< enum fwrel_alg, allowed for the purpose (policy.h) */
    int slot;         /**< secure-boot slot 0..2, else -1 */
} fwrel_keystore_new;

/**
 * Generate a key and record it: RSA-3072/4096, EC P-192/256/384, Ed25519,
 * X25519 pairs; raw random secrets (RAND_priv_bytes) for aes128/256/512 and
 * hmac256. An ECC image-encryption key (image-encrypt, ecdsa256) is made as
 * esp_enc_img_gen --generate_ecc_key makes it: a random 32-byte device HMAC key
 * (kept as the entry's secret) and the P-256 key PBKDF2-HMAC-SHA256 derives from
 * it (docs/esp-formats.md §4.1), so the device can hold the HMAC key in eFuse.
 *
 * @param pass    passphrase for the files at rest, or NULL (unencrypted)
 * @param rotate  0: refused if the name has an active or revoked entry;
 *                1: the active entry (if any) becomes "retired" and the new
 *                key gets the next epoch
 * @param out     optional: receives the new entry (valid until the keystore changes)
 * @return 0; FWREL_EUSAGE (bad name, purpose/alg, slot, not opened for
 *         writing); FWREL_EKEY ("key NAME exists (id ...)", generation);
 *         FWREL_EIO. On failure the index and the directory are unchanged (in a
 *         change begun with fwrel_keystore_begin(), the change is as before the call).
 */
int fwrel_keystore_generate(fwrel_keystore *ks, const fwrel_keystore_new *spec, const char *pass,
                            size_t pass_len, int rotate,
                            const fwrel_keystore_entry **out) FWREL_WUR;

/**
 * Record an HSM-held key by its pkcs11: URI and its public key (no file).
 * @param rotate, out  as fwrel_keystore_generate()
 * @return as fwrel_keystore_generate(); FWREL_EKEY when the public key's algorithm is
 *         not spec->alg
 */
int fwrel_keystore_add_hsm(fwrel_keystore *ks, const fwrel_keystore_new *spec, const char *uri,
                           const fwrel_pkey *pub, int rotate,
                           const fwrel_keystore_entry **out) FWREL_WUR;

/**
 * Revoke the active entry of a name (recorded with the time, the reason and since when; never
 * deleted). What a revocation means for the releases made with the key is the rulebook's
 * (fwrel_rules_key_valid(), docs/rules.md).
 *
 * @param reason FWREL_KS_REASON_SUPERSEDED or FWREL_KS_REASON_COMPROMISED
 * @param since  from when the reason holds (fwrel_keystore_parse_time() form), or NULL: now. A
 *               compromise may date back; never after now nor before the key was made
 * @return 0; FWREL_EKEY "no active key NAME"; FWREL_EUSAGE "the revocation date D is in the
 *         future" / "is before key NAME was made (C)"; FWREL_EIO
 */
int fwrel_keystore_revoke(fwrel_keystore *ks, const char *name, int reason, const char *since,
                          const fwrel_keystore_entry **out) FWREL_WUR;

/**
 * Load an entry's private key (file keys; not HSM keys).
 * @return 0; FWREL_EKEY (wrong or missing passphrase, an HSM entry, no
 *         private key); as fwrel_key_load_private_pass()
 */
int fwrel_keystore_load_private(fwrel_pkey **out, const fwrel_keystore *ks,
                                const fwrel_keystore_entry *e, const char *pass,
                                size_t pass_len) FWREL_WUR;

/**
 * Load an entry's public key (the .pub.pem, or for an HSM entry none:
 * FWREL_EKEY). The key id is checked against the index.
 * @return 0; FWREL_EKEY (no public key, id mismatch); FWREL_EFORMAT; FWREL_EIO
 */
int fwrel_keystore_load_public(fwrel_pkey **out, const fwrel_keystore *ks,
                               const fwrel_keystore_entry *e) FWREL_WUR;

/**
 * Load an entry's raw secret (decrypting a .sec with pass).
 * @param out  receives a malloc'd buffer; wipe and free with fwrel_io_free_secret()
 * @return 0; FWREL_EKEY (wrong passphrase, no secret, id mismatch); FWREL_EFORMAT; FWREL_EIO
 */
int fwrel_keystore_load_secret(uint8_t **out, size_t *len, const fwrel_keystore *ks,
                               const fwrel_keystore_entry *e, const char *pass,
                               size_t pass_len) FWREL_WUR;

/**
 * The algorithm a public key is, in the policy's terms (enum fwrel_alg): RSA
 * 3072/4096, EC P-192/256/384, Ed25519, X25519; 0 for any other key.
 */
int fwrel_keystore_key_alg(const fwrel_pkey *key);

/** What differs between a policy key and the keystore (fwrel_keystore_match()); 0: nothing. */
enum {
    FWREL_KS_DIFF_ABSENT = 1 << 0,   /**< no entry of the key's name */
    FWREL_KS_DIFF_PURPOSE = 1 << 1,  /**< the entry has another purpose */
    FWREL_KS_DIFF_ALG = 1 << 2,      /**< the entry has another algorithm */
    FWREL_KS_DIFF_INACTIVE = 1 << 3, /**< the entry is retired or revoked */
    FWREL_KS_DIFF_PIN = 1 << 4,      /**< the policy pins an id, the entry's is another */
    FWREL_KS_DIFF_HOLDER = 1 << 5,   /**< held elsewhere: an HSM entry for a software key, or
                                          for an HSM key a software entry or another URI */
    FWREL_KS_DIFF_ID = 1 << 6,       /**< the entry's id is not the one given (an HSM key's) */
};

/** How a policy key stands against the keystore. */
typedef struct fwrel_keystore_match {
    const fwrel_keystore_entry *entry;  /**< the newest epoch of the key's name, or NULL */
    const fwrel_keystore_entry *pinned; /**< the entry holding the policy's pinned id, or NULL */
    unsigned diff;                      /**< FWREL_KS_DIFF_* bits */
} fwrel_keystore_match;

/**
 * Match one policy key to the keystore: the one comparison of a policy's keys
 * with the keystore, which fwrel_keystore_resolve() (signing: every difference is an
 * error) and keygen's plan (keygen.h: keep, create, rotate or refuse) both
 * read. With no difference the entry is the active key the policy means.
 *
 * @param m   receives the entries and the differences
 * @param k   the policy key
 * @param id  for an HSM key, the id of the key its token holds (sets
 *            FWREL_KS_DIFF_ID when the entry's is another), else NULL
 * @return m->diff
 */
unsigned fwrel_keystore_match_key(fwrel_keystore_match *m, const fwrel_keystore *ks,
                                  const fwrel_policy_key *k, const char *id);

/**
 * Resolve every key a policy names to the keystore's newest entry of that
 * name, checking purpose, algorithm, secure-boot slot and a pinned id. Not its
 * status: whether a retired or revoked key may still be used at a release's time
 * is the rulebook's (fwrel_rules_keys_in_force(), rules.h).
 *
 * @param entries  receives p->nkeys pointers, in the order of p->keys
 * @return 0; FWREL_EKEY naming the key and its id: "key NAME is not in the
 *         keystore", "key NAME: the policy pins id X, the keystore's active key
 *         is ID", "key NAME (id ID) is alg A, the policy says B"
 */
int fwrel_keystore_resolve(const fwrel_keystore_entry **entries, const fwrel_keystore *ks,
                           const fwrel_policy *p) FWREL_WUR;

/**
 * Derive the P-256 private key an ESP device computes from its 32-byte eFuse
 * HMAC key for the ECC image-encryption scheme (docs/esp-formats.md §4.1).
 * @return 0; FWREL_EKEY when the derived scalar is not a valid P-256 key (the
 *         device would fail; esp_enc_img_gen draws another HMAC key)
 */
int fwrel_keystore_derive_ecc_image_key(fwrel_pkey **out, const uint8_t hmac_key[32]) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
