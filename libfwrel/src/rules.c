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

int fwrel_rules_policy_in_force(fwrel_approvals_rule *rule, const fwrel_policy *p,
                                const char *product, const char *channel)
{
    FWREL_ASSERT_ARG(rule != NULL && p != NULL);
    fwrel_problems why = {"", 0};
    if (fwrel_approvals_rule_policy(rule, p, channel) != 0) {
        fwrel_problem(&why, "%s", fwrel_error_last()->message);
        fwrel_error_clear();
    }
    if (product != NULL && strcmp(p->product, product) != 0)
        fwrel_problem(&why, "the policy is for product %s, not %s", p->product, product);
    return why.n ? fwrel_error_set(FWREL_EVERIFY, "%s", why.text) : 0;
}

/* --- the release tag's name (docs/repo.md) ----------------------------------------------- */

int fwrel_rules_tag_name(char out[256], const char *tmpl, const char *product, const char *channel,
                         const char *version)
{
    FWREL_ASSERT_ARG(out != NULL && tmpl != NULL && product != NULL && channel != NULL &&
                     version != NULL);
    size_t n = 0;
    for (const char *t = tmpl; *t != '\0';) {
        const char *v = NULL;
        if (strncmp(t, "{product}", 9) == 0)
            v = product;
        else if (strncmp(t, "{channel}", 9) == 0)
            v = channel;
        else if (strncmp(t, "{version}", 9) == 0)
            v = version;
        size_t len = v != NULL ? strlen(v) : 1;
        if (n + len >= 256)
            return fwrel_error_set(FWREL_EFORMAT, "tag name too long");
        memcpy(out + n, v != NULL ? v : t, len);
        n += len;
        t += v != NULL ? 9 : 1;
    }
    out[n] = '\0';
    return 0;
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static void span(char *out, size_t cap, const char *s, size_t n)
{
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
}

/* Does s match the template t? The template has a few placeholders (policy.c), so the
 * backtracking is shallow; depth bounds it anyway. */
static int tmpl_match(fwrel_rules_tag *o, const char *t, const char *s, const char *product,
                      unsigned depth)
{
    static const char *const channels[] = {"dev", "beta", "prod"};
    if (depth > 12)
        return 0;
    while (*t != '\0') {
        if (strncmp(t, "{product}", 9) == 0 && product != NULL) {
            size_t n = strlen(product);
            if (strncmp(s, product, n) != 0)
                return 0;
            span(o->product, sizeof(o->product), s, n);
            s += n;
            t += 9;
        } else if (strncmp(t, "{product}", 9) == 0 || strncmp(t, "{version}", 9) == 0) {
            int prod = t[1] == 'p';
            for (size_t k = 1;
                 s[k - 1] != '\0' && s[k - 1] != '/' && (!prod || name_char(s[k - 1])); k++)
                if (tmpl_match(o, t + 9, s + k, product, depth + 1)) {
                    if (prod)
                        span(o->product, sizeof(o->product), s, k);
                    else
                        span(o->version, sizeof(o->version), s, k);
                    return 1;
                }
            return 0;
        } else if (strncmp(t, "{channel}", 9) == 0) {
            for (size_t c = 0; c < 3; c++) {
                size_t n = strlen(channels[c]);
                if (strncmp(s, channels[c], n) == 0 &&
                    tmpl_match(o, t + 9, s + n, product, depth + 1)) {
                    span(o->channel, sizeof(o->channel), s, n);
                    return 1;
                }
            }
            return 0;
        } else {
            if (*t != *s)
                return 0;
            t++;
            s++;
        }
    }
    return *s == '\0';
}

int fwrel_rules_tag_parse(fwrel_rules_tag *o, const char *tmpl, const char *name,
                          const char *product)
{
    FWREL_ASSERT_ARG(o != NULL && tmpl != NULL && name != NULL);
    memset(o, 0, sizeof(*o));
    return tmpl_match(o, tmpl, name, product, 0);
}

int fwrel_rules_tag_check(const char *tmpl, const char *tag, const char *product,
                          const char *channel, const char *version)
{
    FWREL_ASSERT_ARG(tmpl != NULL && tag != NULL && product != NULL && channel != NULL &&
                     version != NULL);
    fwrel_problems p = {"", 0};
    fwrel_rules_tag tn;
    char want[256] = "";
    if (!fwrel_rules_tag_parse(&tn, tmpl, tag, NULL)) {
        fwrel_problem(&p, "the tag name is not of the form %s", tmpl);
    } else {
        if (strcmp(tn.product, product) != 0)
            fwrel_problem(&p, "the tag name says product %s, the message %s", tn.product, product);
        if (strcmp(tn.channel, channel) != 0)
            fwrel_problem(&p, "the tag name says channel %s, the message %s", tn.channel, channel);
        if (strcmp(tn.version, version) != 0)
            fwrel_problem(&p, "the tag name says version %s, the message %s", tn.version, version);
    }
    if (p.n == 0 && (fwrel_rules_tag_name(want, tmpl, product, channel, version) != 0 ||
                     strcmp(want, tag) != 0)) {
        fwrel_error_clear();
        fwrel_problem(&p, "the message's release is named %s under %s, not %s", want, tmpl, tag);
    }
    return p.n ? fwrel_error_set(FWREL_EVERIFY, "%s", p.text) : 0;
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
    if ((error = fwrel_approvals_require_tag_signer(own, &anyone, gnupg_home, tag_signer)) != 0)
        return error;
    ho->pinned = (const char(*)[41])own;
    ho->npinned = 1;
    return 0;
}

/* The one key rule (rules.h, docs/rules.md "Keys at release time"). RFC 3339 UTC of one shape
 * orders as text. */
int fwrel_rules_key_valid(fwrel_rules_key_verdict *v, const fwrel_keystore_entry *e,
                          const char *when)
{
    FWREL_ASSERT_ARG(v != NULL && e != NULL && when != NULL);
    char t[21];
    const char *then = ": valid at release time";

    memset(v, 0, sizeof(*v));
    if (strlen(when) != 20 || fwrel_keystore_parse_time(t, when) != 0)
        return fwrel_error_set(FWREL_EFORMAT, "release time \"%.32s\" is not RFC 3339 UTC", when);
    int n =
        snprintf(v->why, sizeof(v->why), "%s epoch %u (id %.16s...) ", e->name, e->epoch, e->id);
    char *s = v->why + n;
    size_t room = sizeof(v->why) - (size_t)n;
    if (strcmp(e->created, t) > 0) {
        v->state = FWREL_RULES_KEY_INVALID;
        snprintf(s, room, "made at %s, after the release at %s", e->created, t);
    } else if (e->status == FWREL_KS_RETIRED) {
        v->state = strcmp(e->changed, t) < 0 ? FWREL_RULES_KEY_INVALID : FWREL_RULES_KEY_VALID_THEN;
        snprintf(s, room, "retired at %s, %s the release at %s%s", e->changed,
                 v->state == FWREL_RULES_KEY_INVALID ? "before" : "after", t,
                 v->state == FWREL_RULES_KEY_INVALID ? "" : then);
    } else if (e->status == FWREL_KS_REVOKED && e->reason == FWREL_KS_REASON_SUPERSEDED) {
        v->state = strcmp(e->since, t) < 0 ? FWREL_RULES_KEY_INVALID : FWREL_RULES_KEY_VALID_THEN;
        snprintf(s, room, "superseded at %s, %s the release at %s%s", e->since,
                 v->state == FWREL_RULES_KEY_INVALID ? "before" : "after", t,
                 v->state == FWREL_RULES_KEY_INVALID ? "" : then);
    } else if (e->status == FWREL_KS_REVOKED && e->reason == FWREL_KS_REASON_COMPROMISED) {
        v->state = strcmp(e->since, t) <= 0 ? FWREL_RULES_KEY_INVALID : FWREL_RULES_KEY_VALID_THEN;
        snprintf(s, room, "compromised since %s, %s the release at %s%s", e->since,
                 v->state == FWREL_RULES_KEY_INVALID ? "at or before" : "after", t,
                 v->state == FWREL_RULES_KEY_INVALID ? "" : then);
    } else if (e->status == FWREL_KS_REVOKED) {
        v->state = FWREL_RULES_KEY_INVALID;
        snprintf(s, room,
                 "revoked at %s with no reason recorded (read as compromised since it was made, "
                 "%s)",
                 e->changed, e->created);
    } else {
        v->why[0] = '\0';
    }
    return 0;
}

int fwrel_rules_keys_in_force(const fwrel_keystore_entry **entries, const fwrel_keystore *ks,
                              const fwrel_policy *p, const char *when)
{
    FWREL_ASSERT_ARG(entries != NULL && ks != NULL && p != NULL && when != NULL);
    fwrel_rules_key_verdict v;
    int error;
    if ((error = fwrel_keystore_resolve(entries, ks, p)) != 0)
        return error;
    for (size_t i = 0; i < p->nkeys; i++) {
        if ((error = fwrel_rules_key_valid(&v, entries[i], when)) != 0)
            return error;
        if (v.state == FWREL_RULES_KEY_INVALID) {
            entries[i] = NULL;
            return fwrel_error_set(FWREL_EKEY, "key %s", v.why);
        }
    }
    return 0;
}
