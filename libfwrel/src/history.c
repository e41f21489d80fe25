/* history.c - the verified release history and its rules (history.h, docs/bundle.md "History"). */
#include "fwrel/history.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwrel/pgp.h"
#include "util.h"

/* --- reading ------------------------------------------------------------------------------ */

static int str_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int rel_cmp(const void *x, const void *y)
{
    const fwrel_history_release *a = x, *b = y;
    if (a->pos != b->pos)
        return a->pos < b->pos ? -1 : 1;
    return strcmp(a->tag, b->tag);
}

static int untagged_cmp(const void *x, const void *y)
{
    const fwrel_history_untagged *a = x, *b = y;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int ignore(fwrel_history *h, size_t *cap, const char *tag, const char *fmt, ...)
    FWREL_PRINTF(4, 5);

static int ignore(fwrel_history *h, size_t *cap, const char *tag, const char *fmt, ...)
{
    int error = fwrel_grow((void **)&h->ign, cap, h->nign, sizeof(*h->ign));
    if (error)
        return error;
    fwrel_history_ignored *g = &h->ign[h->nign++];
    va_list ap;
    snprintf(g->tag, sizeof(g->tag), "%s", tag);
    va_start(ap, fmt);
    vsnprintf(g->reason, sizeof(g->reason), fmt, ap);
    va_end(ap);
    fwrel_error_clear();
    return 0;
}

/* Only a pinned key's tags count: with nothing pinned, none (trust anchors are given by the
 * caller, never taken from the GnuPG home or the repository). */
static int is_pinned(const fwrel_history_opts *o, const char *fpr)
{
    for (size_t i = 0; i < o->npinned; i++)
        if (strcmp(o->pinned[i], fpr) == 0)
            return 1;
    return 0;
}

/* A verified tag: its release.json, or the reason to ignore it (*why set, 0 returned). */
static int tag_release(fwrel_history_release *out, int *why, fwrel_repo *r, const char *tag)
{
    char path[300];
    uint8_t *data = NULL;
    size_t len = 0;
    int error;
    *why = 0;
    if ((size_t)snprintf(path, sizeof(path), "%s/release.json", tag) >= sizeof(path)) {
        *why = 1;
        return fwrel_error_set(FWREL_EFORMAT, "tag name too long");
    }
    /* A tag whose name cannot be a directory of the tree is not a release tag. */
    error = fwrel_repo_path_valid(path)
                ? fwrel_repo_read_file(&data, &len, r, tag, path, FWREL_RELEASE_JSON_MAX)
                : FWREL_EVERIFY;
    if (error == FWREL_EVERIFY) {
        *why = 1;
        return fwrel_error_set(FWREL_EVERIFY, "no %s: not a release tag", path);
    }
    if (error == 0 && (error = fwrel_release_decode(&out->record, data, len)) != 0)
        fwrel_error_prefix("tag %s: %s", tag, path);
    free(data);
    return error;
}

/* What an untagged commit says of itself: "release <tag>" and the release.json it adds. */
static void untagged_release(fwrel_history_untagged *u, fwrel_repo *r, const fwrel_repo_commit *c)
{
    char path[300];
    uint8_t *data = NULL, *before = NULL;
    size_t len = 0, blen = 0;
    if (strncmp(c->subject, "release ", 8) == 0)
        snprintf(u->tag, sizeof(u->tag), "%s", c->subject + 8);
    if (u->tag[0] != '\0' &&
        (size_t)snprintf(path, sizeof(path), "%s/release.json", u->tag) < sizeof(path) &&
        fwrel_repo_commit_read_file(&data, &len, r, c->id, path, FWREL_RELEASE_JSON_MAX) == 0 &&
        (c->parent[0] == '\0' || fwrel_repo_commit_read_file(&before, &blen, r, c->parent, path,
                                                             FWREL_RELEASE_JSON_MAX) != 0) &&
        fwrel_release_decode(&u->record, data, len) == 0)
        u->have_record = 1;
    fwrel_error_clear();
    free(data);
    free(before);
}

int fwrel_history_read(fwrel_history **out, fwrel_repo *r, const fwrel_history_opts *o)
{
    fwrel_history *h = NULL;
    fwrel_repo_commit *commits = NULL;
    fwrel_repo_tag *tags = NULL;
    fwrel_cpos *cp = NULL;
    size_t ncommits = 0, ntags = 0, caprel = 0, capign = 0, capun = 0;
    int error;

    FWREL_ASSERT_ARG(out != NULL && r != NULL && o != NULL);
    *out = NULL;
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    if ((error = fwrel_repo_branch_commits(&commits, &ncommits, r, FWREL_HISTORY_MAX)) != 0 ||
        (error = fwrel_repo_tags(&tags, &ntags, r, NULL)) != 0)
        goto done;
    if (ntags > FWREL_HISTORY_MAX) {
        error = fwrel_error_set(FWREL_EFORMAT, "the repository has more than %d tags",
                                FWREL_HISTORY_MAX);
        goto done;
    }
    h->ncommits = ncommits;
    if ((cp = calloc(ncommits ? ncommits : 1, sizeof(*cp))) == NULL ||
        (h->tags = calloc(ntags ? ntags : 1, sizeof(*h->tags))) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < ncommits; i++)
        memcpy(cp[i].id, commits[i].id, 41);
    fwrel_cpos_index(cp, ncommits);
    for (size_t i = 0; i < ntags; i++) {
        if ((h->tags[i] = strdup(tags[i].name)) == NULL) {
            error = fwrel_error_set(FWREL_EIO, "out of memory");
            goto done;
        }
        h->ntags++;
    }
    qsort(h->tags, h->ntags, sizeof(*h->tags), str_cmp);

    for (size_t i = 0; i < ntags; i++) {
        const char *name = tags[i].name;
        fwrel_cpos *at = tags[i].target[0] ? fwrel_cpos_find(cp, ncommits, tags[i].target) : NULL;
        fwrel_pgp_result who;
        char commit[41];
        int why = 0;
        if (!tags[i].annotated) {
            error = ignore(h, &capign, name, "a lightweight tag, not a signed release tag");
        } else if (at == NULL) {
            error = ignore(h, &capign, name, "its commit %.40s is not on the release branch",
                           tags[i].target[0] ? tags[i].target : "(none)");
        } else if ((error = fwrel_repo_tag_verify(&who, commit, r, name, o->gnupg_home)) != 0) {
            if (error == FWREL_EIO)
                goto done;
            error = ignore(h, &capign, name, "%s", fwrel_error_last()->message);
        } else if (!is_pinned(o, who.fpr)) {
            error = ignore(h, &capign, name, "signed by %s, not a key the policy pins", who.fpr);
        } else {
            if ((error = fwrel_grow((void **)&h->rel, &caprel, h->nrel, sizeof(*h->rel))) != 0)
                goto done;
            fwrel_history_release *R = &h->rel[h->nrel];
            memset(R, 0, sizeof(*R));
            error = tag_release(R, &why, r, name);
            if (error != 0 && why)
                error = ignore(h, &capign, name, "%s", fwrel_error_last()->message);
            else if (error != 0)
                goto done;
            else {
                snprintf(R->tag, sizeof(R->tag), "%s", name);
                memcpy(R->commit, commit, 41);
                memcpy(R->signer, who.fpr, 41);
                R->pos = at->pos;
                at->tags++;
                h->nrel++;
            }
        }
        if (error)
            goto done;
    }
    if (h->nrel > 1)
        qsort(h->rel, h->nrel, sizeof(*h->rel), rel_cmp);

    for (size_t i = 0; i < ncommits; i++) {
        fwrel_cpos *at = fwrel_cpos_find(cp, ncommits, commits[i].id);
        if (at == NULL || at->tags > 0)
            continue;
        if ((error = fwrel_grow((void **)&h->untagged, &capun, h->nuntagged,
                                sizeof(*h->untagged))) != 0)
            goto done;
        fwrel_history_untagged *u = &h->untagged[h->nuntagged++];
        memset(u, 0, sizeof(*u));
        memcpy(u->commit, commits[i].id, 41);
        u->pos = at->pos;
        untagged_release(u, r, &commits[i]);
    }
    if (h->nuntagged > 1)
        qsort(h->untagged, h->nuntagged, sizeof(*h->untagged), untagged_cmp);
    *out = h;
    h = NULL;
    error = 0;
done:
    fwrel_history_free(h);
    free(cp);
    free(commits);
    fwrel_repo_tags_free(tags, ntags);
    return error;
}

void fwrel_history_free(fwrel_history *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->ntags; i++)
        free(h->tags[i]);
    free(h->tags);
    free(h->rel);
    free(h->ign);
    free(h->untagged);
    free(h);
}

int fwrel_history_has_tag(const fwrel_history *h, const char *tag)
{
    return h != NULL && tag != NULL && h->ntags > 0 &&
           bsearch(&tag, h->tags, h->ntags, sizeof(*h->tags), str_cmp) != NULL;
}

/* --- the rules ---------------------------------------------------------------------------- */

struct top {
    const char *channel;
    const fwrel_history_item *it; /* the highest version of that channel so far */
};

struct fwrel_history_state {
    const fwrel_history_item *counter; /* the highest counter so far (the first to reach it) */
    const fwrel_history_item *sv;      /* the highest secure_version so far (the first) */
    struct top *tops;
    size_t ntops, captops;
};

int fwrel_history_state_new(fwrel_history_state **out)
{
    FWREL_ASSERT_ARG(out != NULL);
    if ((*out = calloc(1, sizeof(**out))) == NULL)
        return fwrel_error_set(FWREL_EIO, "out of memory");
    return 0;
}

void fwrel_history_state_free(fwrel_history_state *s)
{
    if (s == NULL)
        return;
    free(s->tops);
    free(s);
}

static struct top *top_of(const fwrel_history_state *s, const char *channel)
{
    for (size_t i = 0; i < s->ntops; i++)
        if (strcmp(s->tops[i].channel, channel) == 0)
            return &s->tops[i];
    return NULL;
}

int fwrel_history_state_add(fwrel_history_state *s, const fwrel_history_item *it)
{
    FWREL_ASSERT_ARG(s != NULL && it != NULL);
    int cmp = 0, error;
    if (s->counter == NULL || it->counter > s->counter->counter)
        s->counter = it;
    if (s->sv == NULL || it->secure_version > s->sv->secure_version)
        s->sv = it;
    /* A version that is not SemVer ranks nowhere (its own rule said so). */
    if (fwrel_semver_cmp(&cmp, it->version, "0.0.0") != 0) {
        fwrel_error_clear();
        return 0;
    }
    struct top *t = top_of(s, it->channel);
    if (t == NULL) {
        if ((error = fwrel_grow((void **)&s->tops, &s->captops, s->ntops, sizeof(*s->tops))) != 0)
            return error;
        t = &s->tops[s->ntops++];
        t->channel = it->channel;
        t->it = it;
    } else if (fwrel_semver_cmp(&cmp, it->version, t->it->version) == 0 && cmp > 0) {
        t->it = it;
    }
    return 0;
}

uint64_t fwrel_history_state_counter(const fwrel_history_state *s)
{
    return s != NULL && s->counter != NULL ? s->counter->counter : 0;
}

int fwrel_history_rule_counter(const fwrel_history_state *s, const fwrel_history_item *it)
{
    FWREL_ASSERT_ARG(s != NULL && it != NULL);
    const fwrel_history_item *prev = s->counter;
    if (prev == NULL && it->counter != 1)
        return fwrel_error_set(FWREL_EVERIFY, "the product's first counter is %llu, not 1",
                               (unsigned long long)it->counter);
    if (prev != NULL && it->counter == prev->counter)
        return fwrel_error_set(FWREL_EVERIFY, "counter %llu is also %s's",
                               (unsigned long long)it->counter, prev->tag);
    if (prev != NULL && it->counter != prev->counter + 1)
        return fwrel_error_set(
            FWREL_EVERIFY, "counter %llu follows %llu (%s): a release is missing",
            (unsigned long long)it->counter, (unsigned long long)prev->counter, prev->tag);
    return 0;
}

int fwrel_history_rule_secure_version(const fwrel_history_state *s, const fwrel_history_item *it,
                                      int monotonic)
{
    FWREL_ASSERT_ARG(s != NULL && it != NULL);
    if (monotonic && s->sv != NULL && it->secure_version < s->sv->secure_version)
        return fwrel_error_set(FWREL_EVERIFY,
                               "secure_version %u is below %u of %s, an earlier release (rollback)",
                               it->secure_version, s->sv->secure_version, s->sv->tag);
    return 0;
}

int fwrel_history_rule_version(const fwrel_history_state *s, const fwrel_history_item *it)
{
    FWREL_ASSERT_ARG(s != NULL && it != NULL);
    const struct top *t = top_of(s, it->channel);
    int cmp = 0;
    if (fwrel_semver_cmp(&cmp, it->version, t != NULL ? t->it->version : "0.0.0") != 0)
        return fwrel_error_recode(FWREL_EVERIFY);
    if (t != NULL && cmp <= 0)
        return fwrel_error_set(FWREL_EVERIFY,
                               "version %s is not above %s of %s, an earlier %s release",
                               it->version, t->it->version, t->it->tag, it->channel);
    return 0;
}

int fwrel_history_rule_untagged(const fwrel_history *h)
{
    FWREL_ASSERT_ARG(h != NULL);
    if (h->nuntagged == 0)
        return 0;
    const fwrel_history_untagged *u = &h->untagged[h->nuntagged - 1];
    char more[64] = "";
    if (h->nuntagged > 1)
        snprintf(more, sizeof(more), " (and %zu more untagged commit%s)", h->nuntagged - 1,
                 h->nuntagged > 2 ? "s" : "");
    if (u->have_record)
        return fwrel_error_set(FWREL_EVERIFY,
                               "release commit %s (%s, counter %llu) on the release branch has no "
                               "verified tag%s: repair it first (fwrel-bundle --repair-history %s)",
                               u->commit, u->tag, (unsigned long long)u->record.counter, more,
                               u->commit);
    return fwrel_error_set(FWREL_EVERIFY,
                           "commit %s on the release branch is not a verified release%s: repair "
                           "it first (fwrel-bundle --repair-history %s)",
                           u->commit, more, u->commit);
}
