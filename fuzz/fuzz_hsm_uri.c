/* fuzz_hsm_uri.c - the pkcs11: URI parser on arbitrary bytes (NUL-terminated copy, capped). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/hsm.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FWREL_HSM_URI_MAX + 8)
        return 0;
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    fwrel_hsm_uri u;
    if (fwrel_hsm_uri_parse(&u, s) == 0 && u.has == 0)
        abort(); /* a parsed URI always names a key */
    free(s);
    return 0;
}
