/* fuzz_bverify_ci.c - a release bundle verified as CI checks it (fwrel_bundle_verify_ci_mem) under
 * the fixed policy fuzz/keys/policy.yaml, with its two OpenPGP approvers: the tar reader,
 * SHA256SUMS, the release record, its policy hash, the members against the record, the approvals
 * (detached signatures over SHA256SUMS, verified by GnuPG through gpgme: 2 of 2 required on prod)
 * and the exports. Seeded with bundles approved by both approvers, by one and by none
 * (fuzz/make-seeds.sh).
 *
 * The GnuPG home is made once at start in $TMPDIR from fuzz/keys/approvers.pub.asc (public keys
 * only: verifying needs no gpg-agent) and removed at exit. Each approval costs a gpg process:
 * this target runs at tens of inputs a second, not thousands.
 *
 * Property: a verified bundle reads, its sums check, its record decodes and is for the policy's
 * product, and it holds at least two approvals.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/bundle.h"
#include "fwrel/bundle_verify.h"
#include "fwrel/release.h"
#include "fwrel/report.h"

#include "fuzz.h"

static char home[4096];
static char policy[4096];

static void remove_home(void)
{
    char cmd[8300];
    snprintf(cmd, sizeof(cmd), "gpgconf --homedir '%s' --kill all >/dev/null 2>&1; rm -rf '%s'",
             home, home);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_bverify_ci: cannot remove %s\n", home);
}

static void init(void)
{
    const char *tmp = getenv("TMPDIR");
    char cmd[8300];
    snprintf(home, sizeof(home), "%s/fwrel-fuzz-gpg.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(home) != NULL);
    atexit(remove_home);
    snprintf(cmd, sizeof(cmd), "gpg --homedir '%s' --batch --quiet --import '%s' 2>/dev/null", home,
             fuzz_key_path("approvers.pub.asc"));
    CHECK(system(cmd) == 0);
    snprintf(policy, sizeof(policy), "%s", fuzz_key_path("policy.yaml"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fwrel_report *r = NULL;
    if (home[0] == '\0')
        init();
    fwrel_bundle_verify_ci_opts o = {.gnupg_home = home, .policy = policy};
    CHECK(fwrel_report_new(&r) == 0);
    if (fwrel_bundle_verify_ci_mem(r, data, size, &o) == 0) {
        fwrel_bundle *b = NULL;
        fwrel_release rec;
        size_t approvals = 0;
        CHECK(fwrel_report_first_failure(r) == NULL);
        CHECK(fwrel_bundle_read_mem(&b, data, size) == 0 && fwrel_bundle_check_sums(b) == 0);
        const fwrel_bundle_member *rj = fwrel_bundle_find(b, "release.json");
        CHECK(rj != NULL && fwrel_release_decode(&rec, rj->data, rj->len) == 0);
        CHECK(strcmp(rec.product, "fuzz") == 0);
        for (size_t i = 0; i < b->n; i++)
            approvals += strncmp(b->members[i].name, "approvals/", 10) == 0;
        CHECK(approvals >= 2);
        fwrel_bundle_free(b);
    }
    fwrel_report_free(r);
    return 0;
}
