/* fuzz_policy.c - the release policy parser (strict YAML, cross-checks) on arbitrary text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fwrel/policy.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwrel_policy *p = NULL;
    if (fwrel_policy_parse(&p, data, size) == 0) {
        /* A policy that loads is consistent: every reference is inside keys[]. */
        for (size_t i = 0; i < p->nslots; i++)
            if (p->slots[i].key >= p->nkeys)
                abort();
        for (size_t i = 0; i < p->nrecipients; i++)
            if (p->recipients[i] >= p->nkeys)
                abort();
        for (size_t c = 0; c < FWREL_CHANNEL_COUNT; c++)
            if (p->channels[c].present && (p->channels[c].threshold == 0 ||
                                           p->channels[c].threshold > p->channels[c].nsigners))
                abort();
        fwrel_policy_free(p);
    }
    return 0;
}
