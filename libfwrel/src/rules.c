/* rules.c - the release rulebook (rules.h, docs/rules.md). */
#include "fwrel/rules.h"

#include <stdio.h>
#include <string.h>

#include "fwrel/approvals.h"
#include "util.h"

int fwrel_rules_monotonic(const fwrel_policy *in_force)
{
    return in_force != NULL ? in_force->monotonic : 1;
}

/* A rule's result as a verdict; the error is cleared (the verdict holds it). */
static void verdict(fwrel_rules_verdict *v, int error)
{
    v->error = error;
    v->why[0] = '\0';
    if (error) {
        snprintf(v->why, sizeof(v->why), "%s", fwrel_error_last()->message);
        fwrel_error_clear();
    }
}

int fwrel_rules_history(fwrel_rules_history_outcome *out, const fwrel_history_state *st,
                        const fwrel_history_item *it, const fwrel_policy *in_force)
{
    FWREL_ASSERT_ARG(out != NULL && st != NULL && it != NULL);
    memset(out, 0, sizeof(*out));
    out->monotonic = fwrel_rules_monotonic(in_force);
    verdict(&out->counter, fwrel_history_rule_counter(st, it));
    verdict(&out->secure_version, fwrel_history_rule_secure_version(st, it, out->monotonic));
    verdict(&out->version, fwrel_history_rule_version(st, it));
    return 0;
}

int fwrel_rules_history_first(const fwrel_rules_history_outcome *out)
{
    const fwrel_rules_verdict *v[] = {&out->counter, &out->secure_version, &out->version};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (v[i]->error)
            return fwrel_error_set(v[i]->error, "%s", v[i]->why);
    return 0;
}

int fwrel_rules_history_opts(fwrel_history_opts *ho, char own[41], const fwrel_policy *p,
                             const char *tag_signer, const char *gnupg_home)
{
    FWREL_ASSERT_ARG(ho != NULL && own != NULL && p != NULL);
    fwrel_approvals_rule anyone;
    int error;
    memset(ho, 0, sizeof(*ho));
    ho->gnupg_home = gnupg_home;
    if (p->napprovers > 0) {
        ho->pinned = (const char(*)[41])p->approvers;
        ho->npinned = p->napprovers;
        return 0;
    }
    if (tag_signer == NULL)
        return fwrel_error_set(FWREL_EUSAGE,
                               "the policy pins no approver: give --tag-signer FPR, the one key "
                               "whose release tags the history believes");
    memset(&anyone, 0, sizeof(anyone));
    anyone.allow_none = 1;
    if ((error = fwrel_approvals_require_tag_signer(own, &anyone, tag_signer)) != 0)
        return error;
    ho->pinned = (const char(*)[41])own;
    ho->npinned = 1;
    return 0;
}
