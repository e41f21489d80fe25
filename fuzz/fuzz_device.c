/* fuzz_device.c - the device profile parser (strict YAML) on arbitrary text. */
#include <stddef.h>
#include <stdint.h>

#include "fwrel/device.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwrel_device *dev = NULL;
    if (fwrel_device_parse(&dev, data, size) == 0)
        fwrel_device_free(dev);
    return 0;
}
