/* testutil.h - small helpers shared by the unit tests. */
#ifndef FWREL_TESTUTIL_H
#define FWREL_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

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

#endif
