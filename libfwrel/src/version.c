/* version.c */
#include "fwrel/version.h"

const char *fwrel_version(void)
{
    return FWREL_VERSION;
}
