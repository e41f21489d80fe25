/* approvals.c - the one approval rule (approvals.h, docs/verify.md). */
#include "fwrel/approvals.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fwrel/pgp.h"
#include "util.h"

int fwrel_approvals_rule_policy(fwrel_approvals_rule *rule, const fwrel_policy *p,
                                const char *channel)
{
    FWREL_ASSERT_ARG(rule != NULL && p != NULL);
    const fwrel_policy_channel *ch = fwrel_policy_channel_get(p, channel);
    memset(rule, 0, sizeof(*rule));
    rule->source = "the policy";
    for (size_t i = 0; i < p->napprovers && i < FWREL_APPROVALS_PINNED_MAX; i++)
        memcpy(rule->pinned[rule->npinned++], p->approvers[i], 41);
    if (ch == NULL) {
        /* No channel: nothing can meet the rule. */
        rule->required = 1;
        return fwrel_error_set(FWREL_EVERIFY, "the policy has no channel '%s'",
                               channel != NULL ? channel : "");
    }
    rule->required = ch->approvals_required;
    rule->allow_none = ch->approvals_required == 0 && ch->allow_no_approvals;
    return 0;
}

void fwrel_approvals_rule_record(fwrel_approvals_rule *rule, const fwrel_release *rec)
{
    if (rule == NULL || rec == NULL)
        return;
    memset(rule, 0, sizeof(*rule));
    rule->source = "the record";
    for (size_t i = 0; i < rec->napprovers && i < FWREL_APPROVALS_PINNED_MAX; i++)
        snprintf(rule->pinned[rule->npinned++], 41, "%s", rec->approvers[i]);
    rule->required = rec->approvals_required;
    /* A record cannot say the policy allowed no approvals: its tag signer must be pinned. */
    rule->allow_none = 0;
}

int fwrel_approvals_pinned(const fwrel_approvals_rule *rule, const char *fpr)
{
    for (size_t i = 0; rule != NULL && fpr != NULL && i < rule->npinned; i++)
        if (strcasecmp(rule->pinned[i], fpr) == 0)
            return 1;
    return 0;
}

int fwrel_approvals_tag_signer_ok(const fwrel_approvals_rule *rule, const char *fpr)
{
    if (rule == NULL || fpr == NULL || fpr[0] == '\0')
        return 0;
    if (rule->npinned == 0)
        return rule->allow_none;
    return fwrel_approvals_pinned(rule, fpr);
}

int fwrel_approvals_fpr(char out[41], const char *fpr)
{
    if (fpr == NULL || !fwrel_pgp_fpr_valid(fpr))
        return fwrel_error_set(FWREL_EUSAGE, "'%.48s' is not a 40-hex-digit OpenPGP fingerprint",
                               fpr != NULL ? fpr : "");
    for (size_t i = 0; i < 41; i++)
        out[i] = (char)(fpr[i] >= 'a' && fpr[i] <= 'f' ? fpr[i] - 32 : fpr[i]);
    return 0;
}

/*
 * An approver given by e-mail address or user id: the one key of the rule's pinned keys it stands
 * for (fwrel_pgp_match_pinned(): only the pinned keys' user ids, exact e-mail or whole user id).
 * Trust anchors never come from the keyring: a name the keyring knows for another key is none.
 */
static int resolve(char out[41], const fwrel_approvals_rule *rule, const char *home,
                   const char *who)
{
    const char *source = rule->source != NULL ? rule->source : "the policy";
    const char *pins[FWREL_APPROVALS_PINNED_MAX];
    fwrel_pgp_match m;
    char list[400] = "";
    int error;

    if (rule->npinned == 0)
        return fwrel_error_set(FWREL_EUSAGE,
                               "'%.200s': %s pins no approver, so no name stands for one: give "
                               "the key's 40-hex-digit fingerprint",
                               who, source);
    for (size_t i = 0; i < rule->npinned; i++)
        pins[i] = rule->pinned[i];
    if ((error = fwrel_pgp_match_pinned(&m, home, who, pins, rule->npinned)) != 0)
        return error;
    if (m.nmatches == 1) {
        memcpy(out, m.matches[0], 41);
        return 0;
    }
    for (size_t i = 0; i < (m.nmatches == 0 ? m.n : m.nmatches); i++) {
        size_t used = strlen(list);
        if (m.nmatches == 0 && m.uid_of[i].uid[0] != '\0')
            snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", m.uid_of[i].uid);
        else if (m.nmatches == 0)
            snprintf(list + used, sizeof(list) - used, "%s%s (not in the GnuPG home)",
                     i ? ", " : "", m.uid_of[i].fpr);
        else
            snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", m.matches[i]);
    }
    if (m.nmatches == 0)
        return fwrel_error_set(FWREL_EVERIFY,
                               "'%.100s' is none of the approvers %s pins (by e-mail or whole user "
                               "id): %s",
                               who, source, list);
    return fwrel_error_set(FWREL_EUSAGE,
                           "'%.100s' stands for %zu approvers %s pins: %s: give the fingerprint",
                           who, m.nmatches, source, list);
}

int fwrel_approvals_resolve(char out[41], const fwrel_approvals_rule *rule, const char *home,
                            const char *who)
{
    FWREL_ASSERT_ARG(out != NULL && rule != NULL);
    if (who == NULL || who[0] == '\0')
        return fwrel_error_set(FWREL_EUSAGE, "an empty approver");
    if (fwrel_pgp_fpr_valid(who))
        return fwrel_approvals_fpr(out, who);
    /* 40 characters of hex and others, or a short key id: a mistyped fingerprint, not a name. */
    size_t hex = strspn(who, "0123456789abcdefABCDEF");
    if (who[hex] == '\0' || (strncasecmp(who, "0x", 2) == 0 &&
                             who[2 + strspn(who + 2, "0123456789abcdefABCDEF")] == '\0'))
        return fwrel_approvals_fpr(out, who);
    return resolve(out, rule, home, who);
}

int fwrel_approvals_require_pinned(char out[41], const fwrel_approvals_rule *rule, const char *home,
                                   const char *who)
{
    FWREL_ASSERT_ARG(out != NULL && rule != NULL);
    char up[41];
    int error = fwrel_approvals_resolve(up, rule, home, who);
    if (error)
        return error;
    if (!fwrel_approvals_pinned(rule, up))
        return fwrel_error_set(FWREL_EVERIFY, "%s is not an approver %s pins", up,
                               rule->source != NULL ? rule->source : "the policy");
    memcpy(out, up, 41);
    return 0;
}

int fwrel_approvals_require_tag_signer(char out[41], const fwrel_approvals_rule *rule,
                                       const char *home, const char *who)
{
    FWREL_ASSERT_ARG(out != NULL && rule != NULL);
    if (rule->npinned == 0 && rule->allow_none)
        return fwrel_approvals_fpr(out, who);
    return fwrel_approvals_require_pinned(out, rule, home, who);
}

int fwrel_approvals_check(fwrel_approvals_outcome *out, const fwrel_approvals_rule *rule,
                          const fwrel_bundle *b, const char *home)
{
    FWREL_ASSERT_ARG(out != NULL && rule != NULL && b != NULL);
    const fwrel_bundle_member *sums = fwrel_bundle_find(b, "SHA256SUMS");
    fwrel_pgp_sig sigs[FWREL_PGP_SIGS_MAX];
    const char *pins[FWREL_APPROVALS_PINNED_MAX];
    fwrel_pgp_approvals ap;
    fwrel_problems p = {"", 0};
    size_t nsigs = 0;
    int error;

    memset(out, 0, sizeof(*out));
    memset(&ap, 0, sizeof(ap));
    if (sums == NULL)
        return fwrel_error_set(FWREL_EFORMAT, "the bundle has no SHA256SUMS");
    for (size_t i = 0; i < b->n; i++) {
        const fwrel_bundle_member *mb = &b->members[i];
        char fpr[41];
        fwrel_pgp_result res;
        if (strncmp(mb->name, "approvals/", 10) != 0)
            continue;
        snprintf(fpr, sizeof(fpr), "%.40s", mb->name + 10);
        if (nsigs == FWREL_PGP_SIGS_MAX) {
            fwrel_problem(&p, "more than %d approvals", FWREL_PGP_SIGS_MAX);
            break;
        }
        error = fwrel_pgp_verify_detached(&res, home, sums->data, sums->len, mb->data, mb->len);
        if (error == FWREL_EVERIFY || error == FWREL_EFORMAT) {
            fwrel_problem(&p, "%s: %s", mb->name, fwrel_error_last()->message);
            continue;
        }
        if (error != 0)
            return error;
        sigs[nsigs].data = mb->data;
        sigs[nsigs++].len = mb->len;
        if (strcmp(res.fpr, fpr) != 0)
            fwrel_problem(&p, "%s: signed by %s, not by that key", mb->name, res.fpr);
        else if (!fwrel_approvals_pinned(rule, fpr))
            fwrel_problem(&p, "%s: signed by a key %s does not pin", mb->name, rule->source);
    }
    if (nsigs > 0 && rule->npinned > 0) {
        for (size_t i = 0; i < rule->npinned; i++)
            pins[i] = rule->pinned[i];
        error = fwrel_pgp_count_approvers(&ap, home, sums->data, sums->len, sigs, nsigs, pins,
                                          rule->npinned, 0);
        if (error == FWREL_EFORMAT)
            fwrel_problem(&p, "%s", fwrel_error_last()->message);
        else if (error != 0)
            return error;
        out->count = ap.count;
    }
    if (out->count < rule->required)
        fwrel_problem(&p, "%zu of %u required approvals", out->count, rule->required);
    fwrel_error_clear();
    out->ok = p.n == 0;
    if (out->ok)
        snprintf(out->detail, sizeof(out->detail), "%zu of %u required approvals by keys %s pins",
                 out->count, rule->required, rule->source);
    else
        snprintf(out->detail, sizeof(out->detail), "%s", p.text);
    return 0;
}
