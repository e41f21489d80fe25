/* fuzz_export.c - the export template language (export.h fwrel_export_render_text) on arbitrary
 * text. The first byte picks the escaping context (none, json, shell, url), the rest is the
 * template; the variables hold the values that escaping must contain (quotes, a newline, $(...),
 * backticks, backslashes, UTF-8, an empty value). A success must return exactly len bytes plus
 * a NUL within the output cap; a failure must return nothing and a bad-input code. */
#include <stdint.h>
#include <stdlib.h>

#include "fwrel/export.h"

#include "fuzz.h"

static fwrel_export_vars *vars;

static void setup(void)
{
    static const char *const kv[][2] = {
        {"product", "blinky"},
        {"version", "2.1.0"},
        {"q", "it's \"q\"\n\\ $(touch x) `id` \xc3\xa9"},
        {"empty", ""},
        {"base_url", "https://ota.example.net:8070"},
        {"hmac", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"},
        {"image_sha256", "3f1c9a0e5b7d2468ace013579bdf2468ace013579bdf2468ace013579bdf0a1b"},
        {"manifest_sha256", "9e8d7c6b5a4938271605f4e3d2c1b0a99e8d7c6b5a4938271605f4e3d2c1b0a9"},
        {"secure_fota_manifest_sha256", "51f0e1d2c3b4a596877869"},
        {"image_size", "1048624"},
        {"manifest_size", "1873"},
        {"counter", "17"},
        {"device_type", "dev&type=x y"},
        {"created", "2026-11-22T13:45:00Z"},
    };
    if (fwrel_export_vars_new(&vars) != 0)
        abort();
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (fwrel_export_vars_set(vars, kv[i][0], kv[i][1]) != 0)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out = NULL;
    size_t len = 0;
    if (vars == NULL)
        setup();
    if (size == 0)
        return 0;
    int esc = data[0] & 3;
    int rc = fwrel_export_render_text(&out, &len, data + 1, size - 1, esc, vars);
    if (rc == 0) {
        if (out == NULL || out[len] != 0 || len > FWREL_EXPORT_OUTPUT_MAX)
            abort();
        free(out);
    } else if (out != NULL || len != 0 || (rc != FWREL_EFORMAT && rc != FWREL_EIO)) {
        abort();
    }
    return 0;
}
