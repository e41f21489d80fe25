/*
 * pgp.h - detached OpenPGP signatures through gpgme and GnuPG.
 *
 * Every call works on an explicit GnuPG home directory: the caller passes it,
 * and NULL means $GNUPGHOME (never the user's default ~/.gnupg implicitly: with
 * neither, the call fails). Signatures are ASCII-armored.
 *
 * Trust: GnuPG's owner trust and web of trust are NOT consulted. A signature
 * counts when GnuPG reports it good (status "no error") and neither the
 * signature nor the signing key is expired or revoked; which keys may approve
 * is decided by the caller's pinned list of primary-key fingerprints
 * (fwrel_pgp_count_approvers()).
 *
 * Passphrases: when the signing key is protected, GnuPG asks through
 * loopback pinentry (GPGME_PINENTRY_MODE_LOOPBACK) and the answer is read from
 * a fwrel_pass_src (tty, fd or file; never argv), at most once per call, and
 * wiped. gpg-agent may cache an unlocked key for its cache TTL; release hosts
 * should set `default-cache-ttl 0` and `max-cache-ttl 0` in gpg-agent.conf.
 */
#ifndef FWREL_PGP_H
#define FWREL_PGP_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/error.h"
#include "fwrel/key.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest data signed or verified (bytes, held in memory). */
#define FWREL_PGP_DATA_MAX ((size_t)256 << 20)
/** Largest armored signature produced or accepted (bytes). */
#define FWREL_PGP_SIG_MAX ((size_t)64 << 10)
/** Most signatures examined in one call to fwrel_pgp_count_approvers(). */
#define FWREL_PGP_SIGS_MAX 64

/** A verified signature. */
typedef struct fwrel_pgp_result {
    char fpr[41];     /**< primary key fingerprint, 40 upper-case hex */
    char sig_fpr[41]; /**< fingerprint of the key that signed (a subkey or the primary) */
    int64_t created;  /**< signature creation time, seconds since the epoch */
} fwrel_pgp_result;

/**
 * Make a detached, armored signature of data with one secret key.
 *
 * @param sig        receives a malloc'd armored signature (free()); NULL on failure
 * @param sig_len    receives its length
 * @param home       GnuPG home directory; NULL means $GNUPGHOME
 * @param signer_fpr the signer's primary key fingerprint, exactly 40 hex digits
 *                   (either case); GnuPG picks its signing subkey, if any
 * @param data       the bytes to sign (len <= FWREL_PGP_DATA_MAX)
 * @param len        their length
 * @param pass       passphrase source, read only if GnuPG asks; NULL is FWREL_PASS_NONE
 * @return 0; FWREL_EUSAGE for no home (NULL and GNUPGHOME unset) or a
 *         fingerprint that is not 40 hex digits; FWREL_EFORMAT for data above
 *         the cap; FWREL_EKEY "no secret key FPR", "ambiguous key FPR ...",
 *         "key FPR has expired", "key FPR is revoked", "key FPR is disabled",
 *         "key FPR cannot sign", "wrong passphrase", "key FPR is protected: a
 *         passphrase is needed", a passphrase source error (fwrel_pass_read()),
 *         or "cannot sign: <gpgme reason>"; FWREL_EIO when GnuPG cannot be run
 */
int fwrel_pgp_sign_detached(uint8_t **sig, size_t *sig_len, const char *home,
                            const char *signer_fpr, const uint8_t *data, size_t len,
                            const fwrel_pass_src *pass) FWREL_WUR;

/**
 * Check, without unlocking it, that the GnuPG home holds exactly one usable secret key for
 * signer_fpr: what fwrel_pgp_sign_detached() checks before it asks for a passphrase (a release's
 * preflight, before any key is opened).
 *
 * @return 0; the FWREL_EUSAGE, FWREL_EKEY and FWREL_EIO errors of fwrel_pgp_sign_detached()
 *         that come before the passphrase ("no secret key FPR", "key FPR has expired", ...)
 */
int fwrel_pgp_check_signer(const char *home, const char *signer_fpr) FWREL_WUR;

/**
 * Check that signer_fpr's secret key unlocks, before anything is signed (a release's preflight):
 * a fixed message that is no approval is signed as fwrel_pgp_sign_detached() signs, with the same
 * passphrase source (at a terminal three tries), and the signature is wiped and dropped.
 *
 * @param pass_out  receives the passphrase that unlocked the key (secure heap, free with
 *                  fwrel_pass_free()), for the signatures to come as a FWREL_PASS_MEM source;
 *                  NULL when GnuPG asked none (an unprotected key, or one gpg-agent holds)
 * @param pass_len  receives its length
 * @return 0; the errors of fwrel_pgp_sign_detached(): a wrong passphrase is FWREL_EKEY
 *         "wrong passphrase" about the key (FWREL_ABOUT_KEY "OpenPGP key FPR (user id)")
 */
int fwrel_pgp_check_unlock(char **pass_out, size_t *pass_len, const char *home,
                           const char *signer_fpr, const fwrel_pass_src *pass) FWREL_WUR;

/** Most pinned keys fwrel_pgp_match_pinned() looks at. */
#define FWREL_PGP_MATCH_MAX 64

/** Outcome of fwrel_pgp_match_pinned(). */
typedef struct fwrel_pgp_match {
    size_t nmatches;                       /**< pinned keys the name stands for */
    char matches[FWREL_PGP_MATCH_MAX][41]; /**< their fingerprints, in the pinned order */
    size_t n;                              /**< pinned keys looked at */
    struct {
        char fpr[41];  /**< the pinned fingerprint (upper-case) */
        char uid[201]; /**< its first valid user id; "" when the key is not in the home */
    } uid_of[FWREL_PGP_MATCH_MAX]; /**< every pinned key, for the caller's messages */
} fwrel_pgp_match;

/**
 * Which of the pinned keys a name stands for: only the pinned keys are looked up in the GnuPG
 * home (each by its full primary fingerprint), never another key of the home. A key matches when
 * one of its valid user ids (neither revoked nor invalid) has the name as its e-mail address
 * (`alice@example.org` or `<alice@example.org>`, compared without regard to case) or is the
 * name exactly (`Alice Example <alice@example.org>`): no substring, as gpg's `<mail>` and
 * `=user id` do, never its looser search.
 *
 * @param out     the matching pinned fingerprints and every pinned key's first user id
 * @param home    GnuPG home with the pinned keys' public keys; NULL means $GNUPGHOME
 * @param name    the e-mail address or user id given
 * @param pinned  the pinned primary fingerprints (40 hex); npinned <= FWREL_PGP_MATCH_MAX
 * @return 0 (out->nmatches says how many matched); FWREL_EUSAGE for no home, a malformed
 *         pinned fingerprint; FWREL_EIO when GnuPG cannot be run
 */
int fwrel_pgp_match_pinned(fwrel_pgp_match *out, const char *home, const char *name,
                           const char *const *pinned, size_t npinned) FWREL_WUR;

/**
 * Verify a detached signature holding exactly one OpenPGP signature.
 *
 * @param result  filled with the signer (primary key fingerprint) on success;
 *                zeroed on failure
 * @param home    GnuPG home with the signers' public keys; NULL means $GNUPGHOME
 * @param data    the signed bytes (len <= FWREL_PGP_DATA_MAX)
 * @param sig     the signature, armored or binary (sig_len <= FWREL_PGP_SIG_MAX)
 * @return 0 for a good signature by a key that is neither expired nor revoked;
 *         FWREL_EVERIFY "bad signature", "no public key for KEYID",
 *         "signing key FPR has expired", "signing key FPR is revoked",
 *         "signature has expired", "signature uses the weak hash NAME",
 *         "signature not valid: <reason>"; FWREL_EFORMAT "not an OpenPGP
 *         signature", "N signatures found, expected one", sizes above the caps;
 *         FWREL_EUSAGE for no home; FWREL_EIO when GnuPG cannot be run
 */
int fwrel_pgp_verify_detached(fwrel_pgp_result *result, const char *home, const uint8_t *data,
                              size_t len, const uint8_t *sig, size_t sig_len) FWREL_WUR;

/** One detached signature blob (may hold several concatenated signatures). */
typedef struct fwrel_pgp_sig {
    const uint8_t *data; /**< armored or binary signature bytes */
    size_t len;          /**< their length (<= FWREL_PGP_SIG_MAX) */
} fwrel_pgp_sig;

/** Outcome of fwrel_pgp_count_approvers(). */
typedef struct fwrel_pgp_approvals {
    size_t count;                            /**< distinct pinned keys with a good signature */
    char approvers[FWREL_PGP_SIGS_MAX][41];  /**< their primary fingerprints, first seen first */
    size_t nunpinned;                        /**< distinct good signers not in the pinned list */
    char unpinned[FWREL_PGP_SIGS_MAX][41];   /**< their primary fingerprints */
    size_t ninvalid;                         /**< signatures that did not verify */
    char first_invalid[FWREL_ERROR_MSG_MAX]; /**< the first one's reason ("" if none) */
} fwrel_pgp_approvals;

/**
 * Count the distinct approvers of data among pinned primary-key fingerprints
 * (m-of-n). Every signature in every blob is checked as in
 * fwrel_pgp_verify_detached(); a signature by a subkey counts for its primary
 * key; several signatures by one key count once; good signatures by keys not
 * in the list are ignored but reported in out->unpinned; signatures that do not
 * verify are counted in out->ninvalid and never fail the call by themselves.
 *
 * @param out       filled in (also on FWREL_EVERIFY, for the caller's report)
 * @param home      GnuPG home with the approvers' public keys; NULL means $GNUPGHOME
 * @param data      the signed bytes (len <= FWREL_PGP_DATA_MAX)
 * @param sigs      the signature blobs (nsigs >= 1; FWREL_PGP_SIGS_MAX signatures in all)
 * @param pinned    the allowed approvers: 40-hex primary fingerprints (either case)
 * @param npinned   their number (>= 1)
 * @param threshold m: approvals required (0: only count)
 * @return 0 when out->count >= threshold; FWREL_EVERIFY "N of M required
 *         approvals" otherwise; FWREL_EUSAGE for a malformed pinned
 *         fingerprint, no signature or no pinned key; FWREL_EFORMAT for a blob
 *         that is not OpenPGP or too many signatures; FWREL_EIO as above
 */
int fwrel_pgp_count_approvers(fwrel_pgp_approvals *out, const char *home, const uint8_t *data,
                              size_t len, const fwrel_pgp_sig *sigs, size_t nsigs,
                              const char *const *pinned, size_t npinned,
                              size_t threshold) FWREL_WUR;

/**
 * Check that s is a full v4 fingerprint: exactly 40 hex digits.
 * @return 1 if so, else 0
 */
int fwrel_pgp_fpr_valid(const char *s);

/**
 * Initialise gpgme once, before a program starts threads that use this module (gpgme asks for
 * its version check to run first, single-threaded). Safe to call more than once.
 */
void fwrel_pgp_init(void);

#ifdef __cplusplus
}
#endif
#endif
