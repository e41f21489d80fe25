/* fuzz.h - what every fuzz target shares: the libFuzzer entry point (driver.c calls it when the
 * corpus is replayed without libFuzzer) and CHECK, which stops the run on a broken property. */
#ifndef FWREL_FUZZ_H
#define FWREL_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The clock of the trusted-path targets (fuzz/keys/device.yaml's device): the seeds that
 * fwrel-fuzzseeds makes are valid then, whenever the corpus is replayed. */
#define FWREL_FUZZ_NOW 1790000000ull

#ifdef FWREL_FUZZ_KEYS
#include <stdio.h>
#include <stdlib.h>

/* A file of fuzz/keys (the throw-away keys, device and policy of the trusted-path targets):
 * $FWREL_FUZZ_KEYS, else the source tree's, as the build says. Static buffer. */
static inline const char *fuzz_key_path(const char *name)
{
    static char p[4096];
    const char *dir = getenv("FWREL_FUZZ_KEYS");
    snprintf(p, sizeof(p), "%s/%s", dir != NULL && *dir ? dir : FWREL_FUZZ_KEYS, name);
    return p;
}
#endif

/* A property every input must keep; a trap, so that libFuzzer records the input. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#endif
