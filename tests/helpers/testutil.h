/* testutil.h - small helpers shared by the unit tests. */
#ifndef FWREL_TESTUTIL_H
#define FWREL_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "fwrel/release.h"

/** The shared vectors directory from $FWREL_VECTORS, or NULL when absent. */
const char *testutil_vectors(void);

/** Path of a vectors file (static buffer, valid until the next call); NULL without vectors. */
const char *testutil_vector_path(const char *relative);

/** Read a whole file into a malloc'd buffer; NULL on failure. */
uint8_t *testutil_read(const char *path, size_t *len);

/** Create a fresh temporary directory (static buffer). Aborts on failure. */
const char *testutil_tmpdir(void);

/** Remove a directory tree (rm -rf). */
void testutil_rmtree(const char *path);

/** Number of entries (hidden included) in a directory, -1 on error. */
int testutil_count_entries(const char *dir);

/**
 * Zero r, then the release the test bundles describe: product version on channel prod for one
 * ESP32-C3 device type, its counter, secure_version 2, tool version 0.1.0.
 */
void testutil_release_init(fwrel_release *r, const char *product, const char *version,
                           const char *device_type, uint64_t counter);

#endif
