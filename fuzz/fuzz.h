/* fuzz.h - what every fuzz target shares: the libFuzzer entry point (driver.c calls it when the
 * corpus is replayed without libFuzzer) and CHECK, which stops the run on a broken property. */
#ifndef FWREL_FUZZ_H
#define FWREL_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property every input must keep; a trap, so that libFuzzer records the input. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#endif
