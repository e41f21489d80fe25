/* fwrel-testimg - write a synthetic, byte-valid ESP app image (tests, examples, benchmarks).
 * Options: see usage() below; the layout is described in testimg.h. */
#include <stdio.h>
#include <string.h>

#include "testimg.h"
#include "util.h"

#define SIZE_MAX_ARG ((uint64_t)32 << 20) /* two segments below 16 MiB each, with --irom */

static int usage(void)
{
    fprintf(stderr,
            "usage: fwrel-testimg [--chip NAME] [--chip-id N] [--size BYTES] [--segments N]\n"
            "                     [--irom] [--version V] [--secure-version N] [--project P]\n"
            "                     [--idf-ver V] [--min-rev N] [--max-rev N] [--no-app-desc]\n"
            "                     [--no-hash] -o OUT\n");
    return 2;
}

static int bad_value(const char *opt, const char *v)
{
    fprintf(stderr, "fwrel-testimg: %s: invalid value '%s'\n", opt, v);
    return usage();
}

int main(int argc, char **argv)
{
    testimg_opts o = {0};
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t n = 0;
        if (strcmp(a, "--no-app-desc") == 0) {
            o.no_app_desc = 1;
            continue;
        }
        if (strcmp(a, "--no-hash") == 0) {
            o.no_hash = 1;
            continue;
        }
        if (strcmp(a, "--irom") == 0) {
            o.irom = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "fwrel-testimg: %s: missing value or unknown option\n", a);
            return usage();
        }
        const char *v = argv[++i];
        if (strcmp(a, "--chip") == 0) {
            o.chip = v;
        } else if (strcmp(a, "--version") == 0) {
            o.version = v;
        } else if (strcmp(a, "--project") == 0) {
            o.project = v;
        } else if (strcmp(a, "--idf-ver") == 0) {
            o.idf_ver = v;
        } else if (strcmp(a, "-o") == 0) {
            out = v;
        } else if (strcmp(a, "--size") == 0) {
            if (fwrel_parse_u64(&n, v, SIZE_MAX_ARG) != 0)
                return bad_value(a, v);
            o.size = (size_t)n;
        } else if (strcmp(a, "--segments") == 0) {
            if (fwrel_parse_u64(&n, v, TESTIMG_MAX_SEGMENTS) != 0 || n == 0)
                return bad_value(a, v);
            o.segments = (unsigned)n;
        } else if (strcmp(a, "--secure-version") == 0) {
            if (fwrel_parse_u64(&n, v, UINT32_MAX) != 0)
                return bad_value(a, v);
            o.secure_version = (uint32_t)n;
        } else if (strcmp(a, "--chip-id") == 0) {
            if (fwrel_parse_u64(&n, v, UINT16_MAX) != 0)
                return bad_value(a, v);
            o.use_chip_id = 1;
            o.chip_id = (uint16_t)n;
        } else if (strcmp(a, "--min-rev") == 0) {
            if (fwrel_parse_u64(&n, v, UINT16_MAX) != 0)
                return bad_value(a, v);
            o.min_rev_full = (uint16_t)n;
        } else if (strcmp(a, "--max-rev") == 0) {
            if (fwrel_parse_u64(&n, v, UINT16_MAX) != 0)
                return bad_value(a, v);
            o.max_rev_full = (uint16_t)n;
        } else {
            fprintf(stderr, "fwrel-testimg: unknown option %s\n", a);
            return usage();
        }
    }
    if (out == NULL) {
        fprintf(stderr, "fwrel-testimg: -o OUT is required\n");
        return usage();
    }
    if (testimg_write(out, &o) != 0) {
        fprintf(stderr, "fwrel-testimg: %s: %s\n", out, testimg_error());
        return 1;
    }
    return 0;
}
