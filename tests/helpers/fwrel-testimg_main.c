/* fwrel-testimg - write a synthetic, byte-valid ESP app image (tests, examples, benchmarks).
 * Usage: fwrel-testimg [--chip NAME] [--size BYTES] [--version V] [--secure-version N]
 *                      [--project P] [--no-app-desc] [--no-hash] -o OUT */
#include <stdio.h>
#include <string.h>

#include "testimg.h"
#include "util.h"

int main(int argc, char **argv)
{
    testimg_opts o = {0};
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (strcmp(a, "--no-app-desc") == 0) {
            o.no_app_desc = 1;
            continue;
        }
        if (strcmp(a, "--no-hash") == 0) {
            o.no_hash = 1;
            continue;
        }
        if (v == NULL)
            goto usage;
        i++;
        if (strcmp(a, "--chip") == 0)
            o.chip = v;
        else if (strcmp(a, "--version") == 0)
            o.version = v;
        else if (strcmp(a, "--project") == 0)
            o.project = v;
        else if (strcmp(a, "-o") == 0)
            out = v;
        else if (strcmp(a, "--size") == 0 && fwrel_parse_u64(&n, v, 32u << 20) == 0)
            o.size = (size_t)n;
        else if (strcmp(a, "--secure-version") == 0 && fwrel_parse_u64(&n, v, UINT32_MAX) == 0)
            o.secure_version = (uint32_t)n;
        else
            goto usage;
    }
    if (out == NULL)
        goto usage;
    if (testimg_write(out, &o) != 0) {
        fprintf(stderr, "fwrel-testimg: %s: cannot build or write the image\n", out);
        return 1;
    }
    return 0;
usage:
    fprintf(stderr, "usage: fwrel-testimg [--chip NAME] [--size BYTES] [--version V] "
                    "[--secure-version N] [--project P] [--no-app-desc] [--no-hash] -o OUT\n");
    return 2;
}
