/* version.h - the library's version. */
#ifndef FWREL_VERSION_H
#define FWREL_VERSION_H

#define FWREL_VERSION "0.1.0"

/** The version string of the linked library, e.g. "0.1.0". */
const char *fwrel_version(void);

#endif
