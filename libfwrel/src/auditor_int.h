/*
 * auditor_int.h - what auditor.c (the repository walk) and auditor_release.c (one release's
 * audit, in the worker threads) share. Internal to the library.
 */
#ifndef FWREL_AUDITOR_INT_H
#define FWREL_AUDITOR_INT_H

#include <pthread.h>
#include <stdint.h>

#include "fwrel/audit.h"
#include "fwrel/auditor.h"
#include "fwrel/error.h"
#include "fwrel/policy.h"
#include "fwrel/repo.h"
#include "util.h"

/* A live audit log, read once (under a shared flock) and shared read-only by the workers. */
typedef fwrel_audit_snapshot livelog;

/* What the tag message says, beyond the public fields. */
struct msg {
    int ok;
    char err[FWREL_ERROR_MSG_MAX];
    char bundle_path[300];
    char bundle_sha[65];
    uint64_t bundle_size;
    char rj_sha[65];
    char input_sha[65];
    uint64_t input_size;
    char policy_sha[65];
    int log; /* index into logs, or -1 */
};

struct fwrel_auditor {
    fwrel_audit_release *rel;
    struct msg *msg;
    fwrel_audit_release **order; /* history order */
    size_t n;
    fwrel_report *report;
    livelog logs[FWREL_AUDITOR_LOGS_MAX];
    size_t nlogs;
    unsigned jobs;
    size_t failed;
    fwrel_policy *pol;   /* the policy in force, or NULL (no_policy) */
    char policy_sha[65]; /* its SHA-256, or "" */
    const char *tmpl;    /* the tag name template: the policy's, or the default */
    unsigned shard, nshards;     /* this run's shard (1-based) of nshards; 0 of 0: all */
    unsigned char *mine;         /* per release: 1 when this shard audits it */
    size_t nmine;                /* their number */
    fwrel_audit_release **shown; /* the shard's releases, in history order */
    char state[65];              /* SHA-256 of the tags and the branch tip (auditor.h) */
};

/* Without a policy, tags are named as every shipped policy names them (docs/repo.md). */
#define DEFAULT_TAG_TEMPLATE "{product}/{channel}/v{version}"

/* The workers' shared state. */
struct ctx {
    fwrel_auditor *a;
    const char *path;
    const char *home;
    pthread_mutex_t lock;
    size_t next;
    int error; /* first fatal error (not a failed check) */
    fwrel_error first;
    size_t done;                              /* the shard's releases audited */
    void (*progress)(void *, size_t, size_t); /* opts' progress callback, or NULL */
    void *progress_arg;
};

/* One worker thread and its own repository handle. */
struct worker {
    struct ctx *c;
    fwrel_repo *r;
    pthread_t t;
    int started;
};

/* Is this one of the errors a check reports (rather than one that stops the audit)? A path or
 * tag name from the repository that the repository module refuses is bad input (FWREL_EFORMAT
 * "invalid path in the repository"): the repository's problem, not the caller's. */
static inline int check_error(int e)
{
    return e == FWREL_EVERIFY || e == FWREL_EFORMAT;
}

/* A worker: audits releases c->next, c->next + 1, ... until none is left (auditor_release.c). */
void *fwrel_auditor_worker(void *arg);

#endif
