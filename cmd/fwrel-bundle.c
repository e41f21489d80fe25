/*
 * fwrel-bundle - the policy-driven release (docs/bundle.md, docs/repo.md):
 * IMAGE -> signed, pre-encrypted, manifest, exports, approvals -> bundle ->
 * audit record -> commit and signed tag. --approve adds an approval to a
 * bundle made without enough of them; --record then records it. --check-policy
 * validates a policy and prints what it enforces.
 */
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

#include "fwrel/bundle.h"
#include "fwrel/io.h"
#include "fwrel/pipeline.h"
#include "fwrel/export.h"
#include "fwrel/policy.h"
#include "fwrel/preflight.h"
#include "util.h"

static struct {
    const char *check_policy, *policy, *keystore, *repo, *channel, *tag_signer, *gnupg_home;
    const char *output, *templates, *pass_file, *pass_fd, *pgp_pass_file, *pgp_pass_fd;
    const char *approve, *record, *user, *email, *pin_file, *repair;
    fwrel_strlist approvers;
    int no_pass, force, drop;
} o;

static const fwrel_opt opts[] = {
    {"check-policy", 0, FWREL_OPT_STR, "POLICY",
     "validate a release policy and print what it would enforce", &o.check_policy},
    {"policy", 'p', FWREL_OPT_STR, "POLICY", "the release policy", &o.policy},
    {"keystore", 'K', FWREL_OPT_STR, "DIR", "the keystore holding the policy's keys", &o.keystore},
    {"repo", 'r', FWREL_OPT_STR, "DIR",
     "the release repository (default: the policy's, relative to the policy file)", &o.repo},
    {"channel", 'c', FWREL_OPT_STR, "CHANNEL", "dev, beta or prod (default: the policy's only one)",
     &o.channel},
    {"approver", 'A', FWREL_OPT_MULTI, "FPR",
     "an approver who signs now: a fingerprint the policy pins, or the e-mail or user id of "
     "exactly one pinned key; may repeat",
     &o.approvers},
    {"tag-signer", 0, FWREL_OPT_STR, "FPR",
     "who signs the git tag, named as --approver (default: the first approver given)",
     &o.tag_signer},
    {"gnupg-home", 0, FWREL_OPT_STR, "DIR",
     "the approvers' GnuPG home (default: $GNUPGHOME, else ~/.gnupg)", &o.gnupg_home},
    {"output", 'o', FWREL_OPT_STR, "FILE",
     "also write the bundle here (needed when approvals are still missing)", &o.output},
    {"force", 'f', FWREL_OPT_FLAG, NULL, "replace an existing output file", &o.force},
    {"templates", 0, FWREL_OPT_STR, "DIR", "export templates (default: the installed ones)",
     &o.templates},
    {"passphrase-file", 0, FWREL_OPT_STR, "FILE", "the keystore passphrase from FILE",
     &o.pass_file},
    {"passphrase-fd", 0, FWREL_OPT_STR, "N", "the keystore passphrase from file descriptor N",
     &o.pass_fd},
    {"no-passphrase", 0, FWREL_OPT_FLAG, NULL, "the keystore's keys are not encrypted", &o.no_pass},
    {"pgp-passphrase-file", 0, FWREL_OPT_STR, "FILE",
     "the approvers' GnuPG passphrase from FILE (default: none, or gpg-agent)", &o.pgp_pass_file},
    {"pgp-passphrase-fd", 0, FWREL_OPT_STR, "N",
     "the approvers' GnuPG passphrase from file descriptor N", &o.pgp_pass_fd},
    {"pin-file", 0, FWREL_OPT_STR, "FILE",
     "the PIN of the policy's HSM keys whose URI has no pin-source (a 0600 file; default: the "
     "terminal)",
     &o.pin_file},
    {"approve", 0, FWREL_OPT_STR, "BUNDLE", "add the --approver's signatures to BUNDLE",
     &o.approve},
    {"record", 0, FWREL_OPT_STR, "BUNDLE",
     "record an approved BUNDLE in the release repository (commit and signed tag)", &o.record},
    {"user", 0, FWREL_OPT_STR, "NAME",
     "the operator's name for the audit log and the commit "
     "(default: the login name)",
     &o.user},
    {"email", 0, FWREL_OPT_STR, "ADDR", "the operator's e-mail for the commit", &o.email},
    {"repair-history", 0, FWREL_OPT_STR, "COMMIT",
     "repair the history: sign the deleted tag of the release commit COMMIT again (with --drop: "
     "move the branch back over it)",
     &o.repair},
    {"drop", 0, FWREL_OPT_FLAG, NULL,
     "with --repair-history: COMMIT is not a release of yours; drop it from the branch's tip",
     &o.drop},
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

static int check_policy(fwrel_ctx *ctx, const char *path, const char *templates)
{
    fwrel_policy *p = NULL;
    int error = fwrel_policy_load(&p, path);
    /* Each export exists and takes the settings the policy gives it (its export.yaml): the
     * policy's part of a release's preflight (preflight.h). */
    char root[4096];
    if (error == 0 && p->nexports > 0 &&
        ((error = fwrel_preflight_templates(root, sizeof(root), templates)) != 0 ||
         (error = fwrel_preflight_exports(p, root)) != 0)) {
        fwrel_policy_free(p);
        return fwrel_cmd_fail(ctx, path);
    }
    /* The error names the policy, with the line and column ("FILE:LINE:COL: reason"). */
    if (error)
        return fwrel_cmd_fail(ctx, path);
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
    fwrel_cmd_print(ctx,
                    "\npartition:      %llu bytes; the image may be at most %llu bytes before "
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
    fwrel_cmd_print(ctx,
                    "\nanti-rollback:  secure_version from %u to %u (eFuse field of %u bits)%s\n",
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
                            json_pack("{s:o,s:o,s:i,s:I,s:i}", "sign_slots", sl, "manifest_signers",
                                      key_names(p, ch->signers, ch->nsigners), "manifest_threshold",
                                      (int)ch->threshold, "validity_seconds",
                                      (json_int_t)ch->validity, "approvals_required",
                                      (int)ch->approvals_required));
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

/* The approvers' GnuPG passphrase: from a file or a descriptor, else none (or gpg-agent's). */
static int pgp_source(fwrel_ctx *ctx, fwrel_pass_src *src)
{
    /* Neither option: asked at the terminal when there is one (three tries, as gpg), else none
     * (gpg-agent may hold it). */
    int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (tty >= 0)
        close(tty);
    return fwrel_cmd_pass_pair(ctx, src, "pgp-", o.pgp_pass_file, o.pgp_pass_fd,
                               tty >= 0 ? FWREL_PASS_TTY : FWREL_PASS_NONE);
}

/* The release time: SOURCE_DATE_EPOCH when set (reproducible builds), else now. */
static int release_time(fwrel_ctx *ctx, int64_t *t)
{
    const char *s = getenv("SOURCE_DATE_EPOCH");
    uint64_t v = 0;
    if (s == NULL || s[0] == '\0') {
        *t = (int64_t)time(NULL);
        return 0;
    }
    if (fwrel_parse_u64(&v, s, (uint64_t)FWREL_BUNDLE_MTIME_MAX) != 0)
        return fwrel_cmd_usage(ctx, "SOURCE_DATE_EPOCH '%.24s' is not a time in seconds", s);
    *t = (int64_t)v;
    return 0;
}

static void print_result(fwrel_ctx *ctx, const fwrel_pipeline_result *res, const char *output)
{
    const fwrel_release *rec = &res->record;
    if (res->recorded)
        fwrel_cmd_print(ctx,
                        "released %s %s (%s), counter %llu, secure_version %u: tag %s, "
                        "commit %.12s\n",
                        rec->product, rec->version, rec->channel, (unsigned long long)rec->counter,
                        rec->secure_version, res->tag, res->commit);
    else
        fwrel_cmd_print(ctx,
                        "bundle %s written with %zu of %u approvals; add them with "
                        "--approve, then --record it\n",
                        output, res->approvals, rec->approvals_required);
    fwrel_cmd_print(ctx, "bundle sha256 %s\naudit head %s\n", res->bundle_sha256, res->audit_head);
    fwrel_cmd_set(ctx, "recorded", json_boolean(res->recorded));
    fwrel_cmd_set(ctx, "tag", json_string(res->tag));
    fwrel_cmd_set(ctx, "commit", res->recorded ? json_string(res->commit) : json_null());
    fwrel_cmd_set(ctx, "bundle_sha256", json_string(res->bundle_sha256));
    fwrel_cmd_set(ctx, "audit_head", json_string(res->audit_head));
    fwrel_cmd_set(ctx, "approvals", json_integer((json_int_t)res->approvals));
    fwrel_cmd_set(ctx, "product", json_string(rec->product));
    fwrel_cmd_set(ctx, "release_version", json_string(rec->version));
    fwrel_cmd_set(ctx, "channel", json_string(rec->channel));
    fwrel_cmd_set(ctx, "counter", json_integer((json_int_t)rec->counter));
    fwrel_cmd_set(ctx, "secure_version", json_integer((json_int_t)rec->secure_version));
}

static int release(fwrel_ctx *ctx)
{
    fwrel_pipeline_opts po;
    fwrel_pipeline_result res;
    fwrel_pass_src ks_pass, pgp_pass;
    fwrel_pass_src pin = {.kind = o.pin_file != NULL ? FWREL_PASS_FILE : FWREL_PASS_TTY,
                          .fd = -1,
                          .file = o.pin_file};
    fwrel_report *report = NULL;
    struct passwd *pw = getpwuid(getuid());
    int error;

    memset(&po, 0, sizeof(po));
    if (o.keystore == NULL && o.record == NULL)
        return fwrel_cmd_usage(ctx, "a release needs --keystore DIR");
    if ((o.record == NULL) != (ctx->argc == 1))
        return fwrel_cmd_usage(ctx, o.record != NULL ? "--record takes no IMAGE"
                                                     : "a release needs one IMAGE");
    if ((error = fwrel_cmd_pass_source(ctx, &ks_pass, o.pass_file, o.pass_fd, o.no_pass)) != 0)
        return error;
    if ((error = pgp_source(ctx, &pgp_pass)) != 0)
        return error;
    if ((error = release_time(ctx, &po.time)) != 0)
        return error;
    po.policy = o.policy;
    po.keystore = o.keystore;
    po.repo = o.repo;
    po.channel = o.channel;
    po.image = o.record != NULL ? o.record : ctx->argv[0];
    po.output = o.output;
    po.out_flags = o.force ? FWREL_OUT_FORCE : 0;
    po.template_root = o.templates;
    po.gnupg_home = o.gnupg_home;
    for (int i = 0; i < o.approvers.n; i++)
        po.approvers[po.napprovers++] = o.approvers.v[i];
    po.tag_signer = o.tag_signer;
    po.keystore_pass = &ks_pass;
    po.pgp_pass = &pgp_pass;
    po.hsm_pin = &pin;
    po.who = o.user != NULL ? o.user : pw != NULL ? pw->pw_name : "fwrel";
    po.email = o.email;
    if ((error = fwrel_report_new(&report)) != 0)
        return fwrel_cmd_fail(ctx, NULL);
    error = o.record != NULL ? fwrel_pipeline_record(&res, report, &po)
                             : fwrel_pipeline_release(&res, report, &po);
    fwrel_cmd_report(ctx, report);
    fwrel_report_free(report);
    if (error)
        return fwrel_cmd_fail(ctx, NULL);
    print_result(ctx, &res, o.output);
    return 0;
}

/* What the approver approves, before any passphrase is asked for (the JSON result holds it). */
static void show_release(void *arg, const fwrel_release *rec)
{
    fwrel_ctx *ctx = arg;
    fwrel_cmd_print(ctx,
                    "approving %s %s (%s), counter %llu, secure_version %u, for %s\n"
                    "  image    firmware.enc, %llu bytes, sha256 %s\n"
                    "  signed   %llu bytes, sha256 %s\n"
                    "  manifest manifest.fwm, %llu bytes, sha256 %s\n",
                    rec->product, rec->version, rec->channel, (unsigned long long)rec->counter,
                    rec->secure_version, rec->chip, (unsigned long long)rec->image.size,
                    rec->image.sha256, (unsigned long long)rec->signed_image.size,
                    rec->signed_image.sha256, (unsigned long long)rec->manifest.size,
                    rec->manifest.sha256);
    fflush(stdout);
    fwrel_cmd_set(ctx, "product", json_string(rec->product));
    fwrel_cmd_set(ctx, "release_version", json_string(rec->version));
    fwrel_cmd_set(ctx, "channel", json_string(rec->channel));
    fwrel_cmd_set(ctx, "counter", json_integer((json_int_t)rec->counter));
    fwrel_cmd_set(ctx, "secure_version", json_integer((json_int_t)rec->secure_version));
    fwrel_cmd_set(ctx, "image_sha256", json_string(rec->image.sha256));
    fwrel_cmd_set(ctx, "signed_image_sha256", json_string(rec->signed_image.sha256));
    fwrel_cmd_set(ctx, "manifest_sha256", json_string(rec->manifest.sha256));
}

static int approve(fwrel_ctx *ctx)
{
    fwrel_pass_src pgp_pass;
    fwrel_report *report = NULL;
    size_t have = 0, need = 0;
    int error;
    if (ctx->argc != 0)
        return fwrel_cmd_usage(ctx, "--approve takes no IMAGE");
    if (o.approvers.n == 0)
        return fwrel_cmd_usage(ctx, "--approve needs --approver FPR");
    if (o.approvers.n > FWREL_PIPELINE_MAX_APPROVERS)
        return fwrel_cmd_usage(ctx, "more than %d --approver", FWREL_PIPELINE_MAX_APPROVERS);
    if ((error = pgp_source(ctx, &pgp_pass)) != 0)
        return error;
    if (fwrel_report_new(&report) != 0)
        return fwrel_cmd_fail(ctx, NULL);
    error =
        fwrel_pipeline_approve(&have, &need, report, o.approve, (const char *const *)o.approvers.v,
                               (size_t)o.approvers.n, o.gnupg_home, &pgp_pass, show_release, ctx);
    if (error) {
        fwrel_cmd_report(ctx, report);
        fwrel_report_free(report);
        return fwrel_cmd_fail(ctx, o.approve);
    }
    fwrel_report_free(report);
    for (int i = 0; i < o.approvers.n; i++)
        fwrel_cmd_print(ctx, "%s: approved by %s\n", o.approve, o.approvers.v[i]);
    fwrel_cmd_print(ctx, "%s: %zu of %zu required approvals%s\n", o.approve, have, need,
                    have >= need ? "; record it with --record" : "");
    fwrel_cmd_set(ctx, "approvals", json_integer((json_int_t)have));
    fwrel_cmd_set(ctx, "approvals_required", json_integer((json_int_t)need));
    return 0;
}

/* --repair-history COMMIT [--drop] (fwrel_pipeline_repair()). */
static int repair(fwrel_ctx *ctx)
{
    fwrel_pipeline_opts po;
    fwrel_pipeline_result res;
    fwrel_pass_src pgp_pass;
    fwrel_report *report = NULL;
    struct passwd *pw = getpwuid(getuid());
    int error;

    memset(&po, 0, sizeof(po));
    if (ctx->argc != 0)
        return fwrel_cmd_usage(ctx, "--repair-history takes no IMAGE");
    if ((error = pgp_source(ctx, &pgp_pass)) != 0 || (error = release_time(ctx, &po.time)) != 0)
        return error;
    po.policy = o.policy;
    po.repo = o.repo;
    po.gnupg_home = o.gnupg_home;
    for (int i = 0; i < o.approvers.n && i < FWREL_PIPELINE_MAX_APPROVERS; i++)
        po.approvers[po.napprovers++] = o.approvers.v[i];
    po.tag_signer = o.tag_signer;
    po.pgp_pass = &pgp_pass;
    po.who = o.user != NULL ? o.user : pw != NULL ? pw->pw_name : "fwrel";
    po.email = o.email;
    if ((error = fwrel_report_new(&report)) != 0)
        return fwrel_cmd_fail(ctx, NULL);
    error = fwrel_pipeline_repair(&res, report, &po, o.repair, o.drop);
    fwrel_cmd_report(ctx, report);
    fwrel_report_free(report);
    if (error)
        return fwrel_cmd_fail(ctx, NULL);
    if (o.drop)
        fwrel_cmd_print(ctx, "dropped commit %s from the release branch\n", o.repair);
    else
        fwrel_cmd_print(ctx, "repaired %s %s (%s), counter %llu: tag %s on commit %.12s\n",
                        res.record.product, res.record.version, res.record.channel,
                        (unsigned long long)res.record.counter, res.tag, res.commit);
    fwrel_cmd_print(ctx, "audit head %s\n", res.audit_head);
    fwrel_cmd_set(ctx, "commit", json_string(o.repair));
    fwrel_cmd_set(ctx, "dropped", json_boolean(o.drop));
    fwrel_cmd_set(ctx, "tag", o.drop ? json_null() : json_string(res.tag));
    fwrel_cmd_set(ctx, "audit_head", json_string(res.audit_head));
    return 0;
}

static int run(fwrel_ctx *ctx)
{
    int modes =
        (o.check_policy != NULL) + (o.approve != NULL) + (o.record != NULL) + (o.repair != NULL);
    if (modes > 1)
        return fwrel_cmd_usage(ctx, "--check-policy, --approve, --record and --repair-history "
                                    "exclude each other");
    if (o.drop && o.repair == NULL)
        return fwrel_cmd_usage(ctx, "--drop goes with --repair-history");
    o.gnupg_home = fwrel_cmd_gnupg_home(o.gnupg_home);
    if (o.check_policy != NULL)
        return ctx->argc == 0 ? check_policy(ctx, o.check_policy, o.templates)
                              : fwrel_cmd_usage(ctx, "--check-policy takes no IMAGE");
    if (o.approve != NULL)
        return approve(ctx);
    if (o.policy == NULL)
        return fwrel_cmd_usage(ctx, "a release needs --policy POLICY");
    if (o.repair != NULL)
        return repair(ctx);
    return release(ctx);
}

const fwrel_cmd fwrel_command = {
    .name = "fwrel-bundle",
    .synopsis = "--policy POLICY --keystore DIR [--repo DIR] [--channel C] [--approver FPR]... "
                "[--tag-signer FPR] [--gnupg-home DIR] [-o BUNDLE] IMAGE\n"
                "--approve BUNDLE --approver FPR... [--gnupg-home DIR]\n"
                "--record BUNDLE --policy POLICY [--repo DIR] [--channel C] [--approver FPR]... "
                "[--tag-signer FPR]\n"
                "--repair-history COMMIT [--drop] --policy POLICY [--repo DIR] --tag-signer FPR\n"
                "--check-policy POLICY",
    .summary = "make a release: signed, encrypted, approved bundle, audit record, signed git tag",
    .opts = opts,
    .min_args = 0,
    .max_args = 1,
    .run = run,
};
