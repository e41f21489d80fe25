/* gpghome.h - temporary GnuPG homes with real keys for tests (gpg CLI, loopback pinentry). */
#ifndef FWREL_GPGHOME_H
#define FWREL_GPGHOME_H

/**
 * Create the GnuPG home dir/name (mode 0700) with a gpg-agent.conf that allows loopback pinentry
 * and caches no passphrase. Returns a malloc'd path; aborts on failure.
 */
char *gpghome_create(const char *dir, const char *name);

/**
 * Generate an ed25519 signing key "uid" in home: pass NULL for no protection; expire as gpg's
 * --quick-gen-key takes it ("never", "seconds=3"). Writes its 40-hex fingerprint. Returns 0.
 */
int gpghome_genkey(const char *home, const char *uid, const char *pass, const char *expire,
                   char fpr[41]);

/**
 * gpghome_genkey as if the clock said when (seconds since the epoch, gpg's --faked-system-time):
 * a key made two days ago that expired after one is expired now, without waiting. 0: now.
 */
int gpghome_genkey_at(const char *home, const char *uid, const char *pass, const char *expire,
                      long long when, char fpr[41]);

/** An armored detached signature of in by fpr (no passphrase) made at when, written to out. */
int gpghome_sign_at(const char *home, const char *fpr, long long when, const char *in,
                    const char *out);

/** Add an ed25519 signing subkey to fpr (gpg then signs with it); writes the subkey's fpr. */
int gpghome_add_subkey(const char *home, const char *fpr, const char *pass, char subfpr[41]);

/** Copy the public key fpr from home into other (export | import). Returns 0. */
int gpghome_copy_public(const char *home, const char *fpr, const char *other);

/** Revoke fpr in home with the revocation certificate gpg stored at key generation. */
int gpghome_revoke(const char *home, const char *fpr);

/** Run a shell command with GNUPGHOME=home; returns its exit status (or -1). */
int gpghome_sh(const char *home, const char *cmd);

/** Stop the home's agent (gpgconf --kill all). */
void gpghome_kill(const char *home);

#endif
