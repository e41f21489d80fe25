/*
 * fwrel-bundle - the policy-driven release. For now: --check-policy, which
 * validates a release policy (docs/policy.md) and prints what it enforces. The
 * release pipeline itself is not written yet, and the command says so.
 */
#include <stdio.h>
#include <string.h>

#include "runner.h"

#include "fwrel/policy.h"
#include "util.h"

static struct {
    const char *check_policy;
} o;

static const fwrel_opt opts[] = {
    {"check-policy", 0, FWREL_OPT_STR, "POLICY",
     "validate a release policy and print what it would enforce", &o.check_policy},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static const char *scheme_name(int scheme)
{
    static const char *const names[] = {"none",          "sbv1",          "sbv2-rsa3072",
                                        "sbv2-ecdsa192", "sbv2-ecdsa256", "sbv2-ecdsa384"};
    return scheme > 0 && scheme < 6 ? names[scheme] : "none";
}

static json_t *key_names(const fwrel_policy *p, const size_t *idx, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(p->keys[idx[i]].name));
    return a;
}

static void print_names(fwrel_ctx *ctx, const fwrel_policy *p, const size_t *idx, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fwrel_cmd_print(ctx, "%s%s", i ? ", " : "", p->keys[idx[i]].name);
}

static int check_policy(fwrel_ctx *ctx, const char *path)
{
    fwrel_policy *p = NULL;
    int error = fwrel_policy_load(&p, path);
    if (error) {
        /* "LINE:COL: reason" becomes "FILE:LINE:COL: reason", as compilers write it. */
        const char *m = fwrel_error_last()->message;
        if (error == FWREL_EFORMAT && m[0] >= '0' && m[0] <= '9') {
            char msg[FWREL_ERROR_MSG_MAX];
            snprintf(msg, sizeof(msg), "%s", m);
            fwrel_error_set(FWREL_EFORMAT, "%s:%s", path, msg);
            return fwrel_cmd_fail(ctx, NULL);
        }
        return fwrel_cmd_fail(ctx, path);
    }
    char sha[65];
    fwrel_hex(sha, p->sha256, sizeof(p->sha256));
    uint64_t largest = p->partition_size - 4096;
    fwrel_cmd_print(ctx, "policy %s: valid (sha256 %s)\n", path, sha);
    fwrel_cmd_print(ctx, "product:        %s\n", p->product);
    fwrel_cmd_print(ctx, "chip:           %s", p->chip->name);
    if (p->has_rev)
        fwrel_cmd_print(ctx, ", revision v%u.%u to v%u.%u", p->rev_min / 100, p->rev_min % 100,
                        p->rev_max / 100, p->rev_max % 100);
    fwrel_cmd_print(ctx, "\ndevice types:   ");
    json_t *types = json_array();
    for (size_t i = 0; i < p->ndevice_types; i++) {
        fwrel_cmd_print(ctx, "%s%s", i ? ", " : "", p->device_types[i]);
        json_array_append_new(types, json_string(p->device_types[i]));
    }
    fwrel_cmd_print(ctx, "\npartition:      %llu bytes; the image may be at most %llu bytes before "
                         "its 4 KiB signature sector\n",
                    (unsigned long long)p->partition_size, (unsigned long long)largest);
    fwrel_cmd_print(ctx, "secure boot:    %s, slots", scheme_name(p->scheme));
    json_t *slots = json_array();
    for (size_t i = 0; i < p->nslots; i++) {
        fwrel_cmd_print(ctx, "%s %u=%s", i ? "," : "", p->slots[i].slot,
                        p->keys[p->slots[i].key].name);
        json_array_append_new(slots, json_pack("{s:i,s:s}", "slot", (int)p->slots[i].slot, "key",
                                               p->keys[p->slots[i].key].name));
    }
    fwrel_cmd_print(ctx, "\nanti-rollback:  secure_version from %u to %u (eFuse field of %u bits)%s\n",
                    p->min_secure_version, p->efuse_bits, p->efuse_bits,
                    p->monotonic ? ", never below the last release" : "");
    fwrel_cmd_print(ctx, "versions:       SemVer, strictly increasing per channel\n");
    if (p->has_image_key)
        fwrel_cmd_print(ctx, "pre-encryption: esp_encrypted_img with %s (%s)\n",
                        p->keys[p->image_key].name, fwrel_alg_name(p->keys[p->image_key].alg));
    fwrel_cmd_print(ctx, "manifest:       encrypted to ");
    print_names(ctx, p, p->recipients, p->nrecipients);
    fwrel_cmd_print(ctx, "\n");
    json_t *channels = json_object();
    for (size_t c = 0; c < FWREL_CHANNEL_COUNT; c++) {
        const fwrel_policy_channel *ch = &p->channels[c];
        if (!ch->present)
            continue;
        fwrel_cmd_print(ctx, "channel %-6s  sign with slots", ch->name);
        json_t *sl = json_array();
        for (size_t i = 0; i < p->nslots; i++)
            if (ch->sign_slots & (1u << i)) {
                fwrel_cmd_print(ctx, " %u", p->slots[i].slot);
                json_array_append_new(sl, json_integer(p->slots[i].slot));
            }
        fwrel_cmd_print(ctx, "; manifest %u of ", ch->threshold);
        print_names(ctx, p, ch->signers, ch->nsigners);
        fwrel_cmd_print(ctx, "; valid %llu h; %u approval(s)\n",
                        (unsigned long long)(ch->validity / 3600), ch->approvals_required);
        json_object_set_new(channels, ch->name,
                            json_pack("{s:o,s:o,s:i,s:I,s:i}", "sign_slots", sl,
                                      "manifest_signers", key_names(p, ch->signers, ch->nsigners),
                                      "manifest_threshold", (int)ch->threshold,
                                      "validity_seconds", (json_int_t)ch->validity,
                                      "approvals_required", (int)ch->approvals_required));
    }
    json_t *approvers = json_array();
    if (p->napprovers > 0)
        fwrel_cmd_print(ctx, "approvers:\n");
    for (size_t i = 0; i < p->napprovers; i++) {
        fwrel_cmd_print(ctx, "  %s\n", p->approvers[i]);
        json_array_append_new(approvers, json_string(p->approvers[i]));
    }
    fwrel_cmd_print(ctx, "repository:     %s, tags %s\naudit log:      %s\nexports:       ",
                    p->repository, p->tag, p->audit_log);
    json_t *exports = json_array();
    for (size_t i = 0; i < p->nexports; i++) {
        fwrel_cmd_print(ctx, " %s", p->exports[i]);
        json_array_append_new(exports, json_string(p->exports[i]));
    }
    fwrel_cmd_print(ctx, "%s\nkeys:\n", p->nexports ? "" : " none");
    json_t *keys = json_array();
    for (size_t i = 0; i < p->nkeys; i++) {
        const fwrel_policy_key *k = &p->keys[i];
        fwrel_cmd_print(ctx, "  %-20s %-16s %s%s%s%s\n", k->name, fwrel_purpose_name(k->purpose),
                        fwrel_alg_name(k->alg), k->id[0] ? " id " : "", k->id,
                        k->hsm ? " (HSM)" : "");
        json_t *j = json_pack("{s:s,s:s,s:s}", "name", k->name, "purpose",
                              fwrel_purpose_name(k->purpose), "alg", fwrel_alg_name(k->alg));
        if (k->id[0])
            json_object_set_new(j, "id", json_string(k->id));
        if (k->hsm)
            json_object_set_new(j, "hsm", json_string(k->hsm));
        json_array_append_new(keys, j);
    }
    fwrel_cmd_set(ctx, "policy", json_string(path));
    fwrel_cmd_set(ctx, "valid", json_true());
    fwrel_cmd_set(ctx, "sha256", json_string(sha));
    fwrel_cmd_set(ctx, "product", json_string(p->product));
    fwrel_cmd_set(ctx, "chip", json_string(p->chip->name));
    fwrel_cmd_set(ctx, "device_types", types);
    fwrel_cmd_set(ctx, "partition_size", json_integer((json_int_t)p->partition_size));
    fwrel_cmd_set(ctx, "max_image_size", json_integer((json_int_t)largest));
    fwrel_cmd_set(ctx, "secure_boot",
                  json_pack("{s:s,s:o}", "scheme", scheme_name(p->scheme), "slots", slots));
    fwrel_cmd_set(ctx, "anti_rollback",
                  json_pack("{s:i,s:i,s:b}", "min_secure_version", (int)p->min_secure_version,
                            "max_secure_version", (int)p->efuse_bits, "monotonic", p->monotonic));
    fwrel_cmd_set(ctx, "image_encryption_key",
                  p->has_image_key ? json_string(p->keys[p->image_key].name) : json_null());
    fwrel_cmd_set(ctx, "manifest_recipients", key_names(p, p->recipients, p->nrecipients));
    fwrel_cmd_set(ctx, "channels", channels);
    fwrel_cmd_set(ctx, "approvers", approvers);
    fwrel_cmd_set(ctx, "repository", json_string(p->repository));
    fwrel_cmd_set(ctx, "tag", json_string(p->tag));
    fwrel_cmd_set(ctx, "audit_log", json_string(p->audit_log));
    fwrel_cmd_set(ctx, "exports", exports);
    fwrel_cmd_set(ctx, "keys", keys);
    fwrel_policy_free(p);
    return 0;
}

static int run(fwrel_ctx *ctx)
{
    if (o.check_policy == NULL)
        return fwrel_cmd_usage(ctx, "the release pipeline is not available yet; only "
                                    "--check-policy POLICY is");
    return check_policy(ctx, o.check_policy);
}

static const fwrel_cmd cmd = {
    .name = "fwrel-bundle",
    .synopsis = "--check-policy POLICY",
    .summary = "check a release policy (the release pipeline comes later)",
    .opts = opts,
    .min_args = 0,
    .max_args = 0,
    .run = run,
};

int main(int argc, char **argv)
{
    return fwrel_cmd_main(&cmd, argc, argv);
}
