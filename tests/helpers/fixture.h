/* fixture.h - what the unit tests' cmocka fixtures share: a test directory and the paths under
 * it, cleanups run by one group teardown, small files, child processes, the vectors. */
#ifndef FWREL_FIXTURE_H
#define FWREL_FIXTURE_H

#include <sys/types.h>

#include "fwrel/key.h"

/** A fresh temporary directory (testutil_tmpdir), removed by fixture_teardown. */
const char *fixture_tmpdir(void);

/**
 * dir/name in a buffer that lives until fixture_teardown; with fresh, any file of that name is
 * removed first. Aborts when out of memory.
 */
const char *fixture_path(const char *dir, const char *name, int fresh);

/** Run fn(arg) at fixture_teardown, the last deferred first. */
void fixture_defer(void (*fn)(void *), void *arg);

/** Stop the GnuPG home's agent and free home (gpghome_create's path) at fixture_teardown. */
void fixture_defer_gpghome(char *home);

/**
 * A fresh test directory (fixture_tmpdir) with two GnuPG homes in it, gnupg and other
 * (gpghome_create), stopped and freed at fixture_teardown. Returns the directory.
 */
const char *fixture_gpg_homes(char **home, char **other);

/**
 * A new file dir/name holding text, created mode 0600 and exclusive (a passphrase file). Returns
 * its path (fixture_path), NULL on failure.
 */
const char *fixture_secret(const char *dir, const char *name, const char *text);

/** Free the key at fixture_teardown. */
void fixture_defer_key(fwrel_pkey *key);

/** The cmocka group teardown of the fixtures above: runs the deferred cleanups, frees the paths. */
int fixture_teardown(void **state);

/** Write text to path, then chmod it to mode (asserts both). */
void fixture_write_text(const char *path, const char *text, mode_t mode);

/** Wait for the child pid and assert that it exited with status 0. */
void fixture_wait_ok(pid_t pid);

/** 1 with the shared vectors; without them the running test is skipped (and 0 returned). */
int fixture_vectors_or_skip(void);

#endif
