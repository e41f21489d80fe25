/*
 * repo.c - the release repository (repo.h, docs/repo.md): a bare git repository
 * written through libgit2, one commit and one OpenPGP-signed annotated tag per release.
 */
#include "fwrel/repo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "fwrel/error.h"
#include "fwrel/pgp.h"
#include "fwrel/report.h"
#include "util.h"

struct fwrel_repo {
    git_repository *repo;
    char *gitdir; /* with a trailing '/' */
    int lock_fd;
    int locked;
    int repaired;
    /* Trees (with everything below them) and blobs this handle has verified already: an object
     * is its id, so one verified stays verified, and each release tag's tree, which holds every
     * earlier release's files, is not re-hashed from scratch (the audit stays linear). */
    git_oid *verified;
    size_t nverified, capverified; /* open addressing; capverified a power of two or 0 */
};

static const char armor_begin[] = "-----BEGIN PGP SIGNATURE-----";

/* Record a libgit2 failure: "<what>: <libgit2's message>". */
static int git_fail(int code, const char *what)
{
    const git_error *e = git_error_last();
    return fwrel_error_set(code, "%s: %s", what,
                           e != NULL && e->message != NULL ? e->message : "unknown error");
}

/* Test-only failure injection (repo.h): FWREL_TEST_FAIL_AT / FWREL_TEST_KILL_AT. */
static int step(const char *name)
{
    return fwrel_test_hook(name);
}

/* ---- open, lock, repair ---------------------------------------------------------------- */

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int empty = 1;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

static int repo_open(fwrel_repo **out, const char *path, int create)
{
    fwrel_repo *r = NULL;
    git_repository *repo = NULL;
    struct stat st;
    int error;

    FWREL_ASSERT_ARG(out != NULL && path != NULL);
    *out = NULL;
    git_libgit2_init();
    /* Objects and refs reach the disk before the next step relies on them. */
    git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 1);
    int exists = stat(path, &st) == 0;
    if (create && (!exists || (S_ISDIR(st.st_mode) && dir_is_empty(path)))) {
        git_repository_init_options io;
        git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
        io.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKDIR;
        io.initial_head = "main";
        if (git_repository_init_ext(&repo, path, &io) != 0) {
            error = git_fail(FWREL_EIO, "cannot create the repository");
            goto done;
        }
    } else {
        if (!exists) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot open the repository");
            goto done;
        }
        if (git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) != 0) {
            error = fwrel_error_set(FWREL_EFORMAT, "not a bare git repository");
            goto done;
        }
    }
    if (!git_repository_is_bare(repo)) {
        error = fwrel_error_set(FWREL_EFORMAT, "not a bare git repository");
        goto done;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->gitdir = strdup(git_repository_path(repo))) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    r->repo = repo;
    repo = NULL;
    r->lock_fd = -1;
    *out = r;
    r = NULL;
    error = 0;
done:
    if (r != NULL)
        free(r->gitdir);
    free(r);
    git_repository_free(repo);
    if (error != 0)
        git_libgit2_shutdown();
    return error;
}

int fwrel_repo_open(fwrel_repo **out, const char *path, int create)
{
    return repo_open(out, path, create) ? fwrel_error_about(FWREL_ABOUT_REPOSITORY, path) : 0;
}

void fwrel_repo_unlock(fwrel_repo *r)
{
    if (r == NULL || r->lock_fd < 0)
        return;
    /* Closing releases the flock (once no forked copy of the descriptor is left). The pid
     * stays in the file: it is only read while someone holds the lock, who rewrote it. */
    close(r->lock_fd);
    r->lock_fd = -1;
    r->locked = 0;
}

void fwrel_repo_free(fwrel_repo *r)
{
    if (r == NULL)
        return;
    fwrel_repo_unlock(r);
    git_repository_free(r->repo);
    free(r->gitdir);
    free(r->verified);
    free(r);
    git_libgit2_shutdown();
}

int fwrel_repo_repaired(const fwrel_repo *r)
{
    return r != NULL && r->repaired;
}

/* Remove "*.lock" files under dir (depth-limited): git lock files a killed writer left. */
static int remove_stale_locks(const char *dir, int depth)
{
    DIR *d;
    struct dirent *e;
    int error = 0;
    if (depth > 16 || (d = opendir(dir)) == NULL)
        return 0;
    while (error == 0 && (e = readdir(d)) != NULL) {
        char p[4096];
        struct stat st;
        size_t n = strlen(e->d_name);
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= sizeof(p))
            continue;
        if (lstat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            error = remove_stale_locks(p, depth + 1);
        else if (n > 5 && strcmp(e->d_name + n - 5, ".lock") == 0 && unlink(p) != 0)
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot remove a stale lock");
    }
    closedir(d);
    return error;
}

/* Is commit one that some tag peels to? Sets *any_tag when the repository has tags. */
static int commit_is_tagged(int *tagged, int *any_tag, git_repository *repo, const git_oid *commit)
{
    git_reference_iterator *it = NULL;
    git_reference *ref = NULL;
    int rc;
    *tagged = 0;
    *any_tag = 0;
    if (git_reference_iterator_glob_new(&it, repo, "refs/tags/*") != 0)
        return git_fail(FWREL_EIO, "cannot list tags");
    while ((rc = git_reference_next(&ref, it)) == 0) {
        git_object *c = NULL;
        *any_tag = 1;
        /* A tag that cannot be followed to its commit may be the tip's: decide nothing. */
        if (git_reference_peel(&c, ref, GIT_OBJECT_COMMIT) != 0) {
            git_fail(FWREL_EVERIFY, "cannot read a tag");
            fwrel_error_prefix("tag %s", git_reference_shorthand(ref));
            git_reference_free(ref);
            git_reference_iterator_free(it);
            return FWREL_EVERIFY;
        }
        if (git_oid_equal(git_object_id(c), commit))
            *tagged = 1;
        git_object_free(c);
        git_reference_free(ref);
        ref = NULL;
    }
    git_reference_iterator_free(it);
    if (rc != GIT_ITEROVER)
        return git_fail(FWREL_EIO, "cannot list tags");
    return 0;
}

/*
 * The release journal (docs/repo.md "Crash windows"): written before a release moves the branch,
 * removed once its tag exists or the branch is back. It names the commit and the branch's old
 * tip, so the next lock tells a killed release (the journal names the untagged tip: undo it) from
 * a release whose tag was deleted afterwards (no journal: the history refuses until a repair).
 */
static void journal_path(char *out, size_t size, const fwrel_repo *r)
{
    snprintf(out, size, "%s%s", r->gitdir, FWREL_REPO_JOURNAL_FILE);
}

static int journal_write(fwrel_repo *r, const git_oid *commit, const git_oid *old)
{
    char path[4200], text[128], c[41], o[41] = "-";
    journal_path(path, sizeof(path), r);
    git_oid_tostr(c, sizeof(c), commit);
    if (old != NULL)
        git_oid_tostr(o, sizeof(o), old);
    int n = snprintf(text, sizeof(text), "fwrel-release-journal 1\ncommit %s\nparent %s\n", c, o);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return fwrel_error_set_errno(FWREL_EIO, errno, "cannot write the release journal");
    if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        return fwrel_error_set_errno(FWREL_EIO, e, "cannot write the release journal");
    }
    close(fd);
    /* The journal's name reaches the disk before the branch moves. */
    int dfd = open(r->gitdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* Remove the journal. A failure leaves a journal naming a tagged commit: the next lock removes
 * it (a journal counts only for an untagged tip it names). */
static void journal_remove(fwrel_repo *r)
{
    char path[4200];
    journal_path(path, sizeof(path), r);
    (void)unlink(path);
}

/* Read the journal: 1 and the commit and old tip ("" for none) when there is a well-formed one. */
static int journal_read(const fwrel_repo *r, char commit[41], char parent[41])
{
    char path[4200], text[128];
    journal_path(path, sizeof(path), r);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    static const char head[] = "fwrel-release-journal 1\ncommit ";
    const char *p = text;
    if (strncmp(p, head, sizeof(head) - 1) != 0)
        return 0;
    p += sizeof(head) - 1;
    if (strlen(p) < 48 || p[40] != '\n' || strncmp(p + 41, "parent ", 7) != 0)
        return 0;
    memcpy(commit, p, 40);
    commit[40] = '\0';
    p += 48;
    if (strcmp(p, "-\n") == 0) {
        parent[0] = '\0';
    } else if (strlen(p) == 41 && p[40] == '\n') {
        memcpy(parent, p, 40);
        parent[40] = '\0';
    } else {
        return 0;
    }
    for (size_t i = 0; i < 40; i++)
        if (!((commit[i] >= '0' && commit[i] <= '9') || (commit[i] >= 'a' && commit[i] <= 'f')))
            return 0;
    return 1;
}

/* Bring back the invariant "the branch tip is a tagged release" after a killed release. */
static int repair(fwrel_repo *r)
{
    git_reference *branch = NULL, *moved = NULL;
    git_commit *tip = NULL;
    char tipbuf[41] = "";
    int tagged = 0, any_tag = 0, error;
    char path[4200], jcommit[41] = "", jparent[41] = "";

    r->repaired = 0;
    int journaled = journal_read(r, jcommit, jparent);
    snprintf(path, sizeof(path), "%srefs", r->gitdir);
    if ((error = remove_stale_locks(path, 0)) != 0)
        goto done;
    snprintf(path, sizeof(path), "%spacked-refs.lock", r->gitdir);
    if (unlink(path) != 0 && errno != ENOENT) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot remove a stale lock");
        goto done;
    }
    int rc = git_reference_lookup(&branch, r->repo, FWREL_REPO_BRANCH);
    if (rc == GIT_ENOTFOUND) {
        error = 0;
        goto done;
    }
    if (rc != 0 || git_reference_type(branch) != GIT_REFERENCE_DIRECT) {
        error = git_fail(FWREL_EIO, "cannot read the release branch");
        goto done;
    }
    const git_oid *tip_id = git_reference_target(branch);
    git_oid_tostr(tipbuf, sizeof(tipbuf), tip_id);
    if ((error = commit_is_tagged(&tagged, &any_tag, r->repo, tip_id)) != 0)
        goto done;
    if (tagged)
        goto done;
    if (git_commit_lookup(&tip, r->repo, tip_id) != 0) {
        error = git_fail(FWREL_EVERIFY, "cannot read the release branch's commit");
        goto done;
    }
    unsigned parents = git_commit_parentcount(tip);
    char parentbuf[41] = "";
    if (parents == 1)
        git_oid_tostr(parentbuf, sizeof(parentbuf), git_commit_parent_id(tip, 0));
    /* Only the release the journal names was killed in its window; any other untagged tip is a
     * release whose tag was deleted, which the history reports (never undone silently). */
    if (!journaled || strcmp(jcommit, tipbuf) != 0 || strcmp(jparent, parentbuf) != 0 ||
        parents > 1) {
        int parent_tagged = parents == 0 && !any_tag;
        if (parents == 1 && (error = commit_is_tagged(&parent_tagged, &any_tag, r->repo,
                                                      git_commit_parent_id(tip, 0))) != 0)
            goto done;
        if (!parent_tagged)
            error = fwrel_error_set(FWREL_EVERIFY,
                                    "release branch tip %s is neither a tagged release nor one "
                                    "commit ahead of one; repair by hand (docs/repo.md)",
                                    tipbuf);
        goto done;
    }
    if (parents == 0) {
        /* The first release was killed between its branch and its tag. */
        if (git_reference_delete(branch) != 0) {
            error = git_fail(FWREL_EIO, "cannot remove the untagged release branch");
            goto done;
        }
        r->repaired = 1;
        goto done;
    }
    if (git_reference_create_matching(&moved, r->repo, FWREL_REPO_BRANCH,
                                      git_commit_parent_id(tip, 0), 1, tip_id,
                                      "fwrel: undo an untagged release") != 0) {
        error = git_fail(FWREL_EIO, "cannot move the release branch back");
        goto done;
    }
    r->repaired = 1;
    error = 0;
done:
    /* The journal has served: its release is complete, undone, or never moved the branch. */
    if (error == 0 && journaled)
        journal_remove(r);
    git_reference_free(moved);
    git_commit_free(tip);
    git_reference_free(branch);
    return error;
}

int fwrel_repo_lock(fwrel_repo *r, unsigned timeout_ms)
{
    char path[4200], buf[32];
    struct timespec start, now;
    int error;

    FWREL_ASSERT_ARG(r != NULL);
    if (r->locked)
        return 0;
    snprintf(path, sizeof(path), "%s%s", r->gitdir, FWREL_REPO_LOCK_FILE);
    r->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (r->lock_fd < 0)
        return fwrel_error_set_errno(FWREL_EIO, errno, "cannot open the release lock");
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot take the release lock");
            goto done;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t waited =
            (int64_t)(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (waited >= (int64_t)timeout_ms) {
            ssize_t n = pread(r->lock_fd, buf, sizeof(buf) - 1, 0);
            uint64_t pid = 0;
            buf[n > 0 ? n : 0] = '\0';
            char *nl = strchr(buf, '\n');
            if (nl != NULL)
                *nl = '\0';
            if (n > 0 && fwrel_parse_u64(&pid, buf, INT32_MAX) == 0 && pid > 0)
                error =
                    fwrel_error_set(FWREL_EIO, "another release is running (lock held by pid %llu)",
                                    (unsigned long long)pid);
            else
                error =
                    fwrel_error_set(FWREL_EIO, "another release is running (lock held by another "
                                               "process)");
            goto done;
        }
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(r->lock_fd, 0) != 0 || pwrite(r->lock_fd, buf, (size_t)len, 0) != len) {
        error = fwrel_error_set_errno(FWREL_EIO, errno, "cannot write the release lock");
        goto done;
    }
    r->locked = 1;
    if ((error = repair(r)) != 0)
        goto done;
    error = 0;
done:
    if (error != 0)
        fwrel_repo_unlock(r);
    return error;
}

/* ---- validation ------------------------------------------------------------------------ */

int fwrel_repo_path_valid(const char *p)
{
    size_t n = strlen(p), comp = 0;
    if (n == 0 || n > 1024)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        char c = p[i];
        if (c == '/' || c == '\0') {
            if (comp == 0)
                return 0; /* empty component, leading or trailing '/' */
            comp = 0;
            continue;
        }
        if (comp == 0 && c == '.')
            return 0; /* ".", "..", ".git", hidden files */
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '+' || c == '@' || c == '-'))
            return 0;
        comp++;
    }
    return 1;
}

static int text_valid(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

static int ident_valid(const fwrel_repo_ident *w)
{
    const char *parts[2] = {w->name, w->email};
    for (int k = 0; k < 2; k++) {
        const char *s = parts[k];
        if (s == NULL || s[0] == '\0' || strlen(s) > 256)
            return 0;
        for (; *s != '\0'; s++)
            if ((unsigned char)*s < 0x20 || *s == '<' || *s == '>' || *s == 0x7f)
                return 0;
    }
    return w->time >= 0 && w->time < ((int64_t)1 << 40) && w->offset_min >= -720 &&
           w->offset_min <= 840;
}

static int tag_name_valid(const char *name)
{
    char ref[600];
    int valid = 0;
    size_t n = strlen(name);
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '+' || c == '-' || c == '/'))
            return 0;
    }
    snprintf(ref, sizeof(ref), "refs/tags/%s", name);
    return git_reference_name_is_valid(&valid, ref) == 0 && valid;
}

/* A message cannot carry a line that would be taken for the signature's start. */
static int has_armor_line(const char *s)
{
    for (const char *p = s; p != NULL; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, "-----BEGIN ", 11) == 0)
            return 1;
    }
    return 0;
}

/* A file path must not turn a directory into a file or the reverse. */
static int dir_file_conflict(git_index *idx, const char *path)
{
    char prefix[1100];
    size_t pos;
    snprintf(prefix, sizeof(prefix), "%s/", path);
    if (git_index_find_prefix(&pos, idx, prefix) == 0)
        return 1;
    size_t n = strlen(path);
    for (size_t i = 0; i < n; i++) {
        if (path[i] != '/')
            continue;
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        if (git_index_get_bypath(idx, prefix, 0) != NULL)
            return 1;
    }
    return 0;
}

/* The message with exactly one final newline, malloc'd. */
static char *with_newline(const char *m)
{
    size_t n = strlen(m);
    while (n > 0 && m[n - 1] == '\n')
        n--;
    char *out = malloc(n + 2);
    if (out != NULL) {
        memcpy(out, m, n);
        out[n] = '\n';
        out[n + 1] = '\0';
    }
    return out;
}

/* The options a release tag is made from (the release's and a repair's). */
static int check_tag_opts(const fwrel_repo_release_opts *o)
{
    if (o->tag_message == NULL || !text_valid(o->tag_message, FWREL_REPO_MESSAGE_MAX) ||
        has_armor_line(o->tag_message))
        return fwrel_error_set(FWREL_EUSAGE, "invalid tag message");
    if (o->tag_name == NULL || !tag_name_valid(o->tag_name))
        return fwrel_error_set(FWREL_EUSAGE, "invalid tag name");
    if (!ident_valid(&o->who))
        return fwrel_error_set(FWREL_EUSAGE, "invalid release identity");
    return 0;
}

static int check_opts(const fwrel_repo_release_opts *o)
{
    if (o->files == NULL || o->nfiles == 0 || o->nfiles > FWREL_REPO_FILES_MAX)
        return fwrel_error_set(FWREL_EUSAGE, "a release has 1 to %d files", FWREL_REPO_FILES_MAX);
    for (size_t i = 0; i < o->nfiles; i++) {
        const fwrel_repo_file *f = &o->files[i];
        if (f->path == NULL || !fwrel_repo_path_valid(f->path))
            return fwrel_error_set(FWREL_EUSAGE, "file %zu: invalid path in the repository", i + 1);
        if (f->len > FWREL_REPO_FILE_MAX || (f->data == NULL && f->len != 0))
            return fwrel_error_set(FWREL_EUSAGE, "file %s: more than %zu bytes", f->path,
                                   FWREL_REPO_FILE_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(o->files[j].path, f->path) == 0)
                return fwrel_error_set(FWREL_EUSAGE, "file %s given twice", f->path);
    }
    if (o->commit_message == NULL || !text_valid(o->commit_message, FWREL_REPO_MESSAGE_MAX))
        return fwrel_error_set(FWREL_EUSAGE, "invalid commit message");
    return check_tag_opts(o);
}

/* ---- release --------------------------------------------------------------------------- */

/* Steps "sign" and "tag-object": the tag payload laid out exactly as `git tag -s` lays it out,
 * signed, and the signed tag object written (no ref). tmsg ends with one newline. */
static int write_signed_tag(git_oid *tag_id, fwrel_repo *r, git_odb *odb, const git_oid *commit_id,
                            const fwrel_repo_release_opts *o, const char *tmsg)
{
    char *payload = NULL, *obj = NULL, hex[41];
    uint8_t *pgp = NULL;
    size_t pgp_len = 0, payload_len = 0;
    git_tag *check = NULL;
    int error, rc;

    if ((error = step("sign")) != 0)
        return error;
    git_oid_tostr(hex, sizeof(hex), commit_id);
    int off = o->who.offset_min < 0 ? -o->who.offset_min : o->who.offset_min;
    size_t cap =
        strlen(tmsg) + strlen(o->tag_name) + strlen(o->who.name) + strlen(o->who.email) + 200;
    payload = malloc(cap);
    if (payload == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    rc = snprintf(payload, cap,
                  "object %s\ntype commit\ntag %s\ntagger %s <%s> %lld %c%02d%02d\n\n%s", hex,
                  o->tag_name, o->who.name, o->who.email, (long long)o->who.time,
                  o->who.offset_min < 0 ? '-' : '+', off / 60, off % 60, tmsg);
    if (rc < 0 || (size_t)rc >= cap) {
        error = fwrel_error_set(FWREL_EIO, "cannot format the tag");
        goto done;
    }
    payload_len = (size_t)rc;
    if ((error = fwrel_pgp_sign_detached(&pgp, &pgp_len, o->gpg_home, o->signer_fpr,
                                         (const uint8_t *)payload, payload_len, o->pass)) != 0)
        goto done;
    if ((error = step("tag-object")) != 0)
        goto done;
    obj = malloc(payload_len + pgp_len);
    if (obj == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    memcpy(obj, payload, payload_len);
    memcpy(obj + payload_len, pgp, pgp_len);
    if (git_odb_write(tag_id, odb, obj, payload_len + pgp_len, GIT_OBJECT_TAG) != 0 ||
        git_tag_lookup(&check, r->repo, tag_id) != 0) {
        error = git_fail(FWREL_EIO, "cannot write the tag object");
        goto done;
    }
    error = 0;
done:
    git_tag_free(check);
    free(obj);
    free(pgp);
    free(payload);
    return error;
}

int fwrel_repo_release(fwrel_repo *r, const fwrel_repo_release_opts *o, char commit_hex[41],
                       char tag_hex[41])
{
    git_reference *branch = NULL, *ref = NULL, *tagref = NULL;
    git_commit *old = NULL;
    git_tree *old_tree = NULL, *tree = NULL;
    git_index *idx = NULL;
    git_signature *sig = NULL;
    git_odb *odb = NULL;
    git_oid old_id, tree_id, commit_id, tag_id;
    char *cmsg = NULL, *tmsg = NULL;
    char refname[600];
    int have_old = 0, error, rc;

    FWREL_ASSERT_ARG(r != NULL && o != NULL);
    if (!r->locked)
        return fwrel_error_set(FWREL_EUSAGE, "the release lock is not held");
    if ((error = check_opts(o)) != 0)
        return error;
    snprintf(refname, sizeof(refname), "refs/tags/%s", o->tag_name);
    rc = git_reference_lookup(&tagref, r->repo, refname);
    if (rc == 0) {
        error = fwrel_error_set(FWREL_EVERIFY, "tag %s already exists", o->tag_name);
        goto done;
    }
    if (rc != GIT_ENOTFOUND) {
        error = git_fail(FWREL_EIO, "cannot read the tags");
        goto done;
    }
    rc = git_reference_lookup(&branch, r->repo, FWREL_REPO_BRANCH);
    if (rc == 0) {
        if (git_reference_type(branch) != GIT_REFERENCE_DIRECT) {
            error = fwrel_error_set(FWREL_EVERIFY, "the release branch is not a direct ref");
            goto done;
        }
        git_oid_cpy(&old_id, git_reference_target(branch));
        have_old = 1;
        if (git_commit_lookup(&old, r->repo, &old_id) != 0 ||
            git_commit_tree(&old_tree, old) != 0) {
            error = git_fail(FWREL_EVERIFY, "cannot read the last release");
            goto done;
        }
    } else if (rc != GIT_ENOTFOUND) {
        error = git_fail(FWREL_EIO, "cannot read the release branch");
        goto done;
    }
    if (git_repository_odb(&odb, r->repo) != 0 || git_index_new(&idx) != 0 ||
        (old_tree != NULL && git_index_read_tree(idx, old_tree) != 0)) {
        error = git_fail(FWREL_EIO, "cannot prepare the release tree");
        goto done;
    }

    /* 1. blobs */
    if ((error = step("blobs")) != 0)
        goto done;
    for (size_t i = 0; i < o->nfiles; i++) {
        git_index_entry e;
        memset(&e, 0, sizeof(e));
        if (dir_file_conflict(idx, o->files[i].path)) {
            error = fwrel_error_set(
                FWREL_EUSAGE, "file %s: a file and a directory of the same name", o->files[i].path);
            goto done;
        }
        e.mode = GIT_FILEMODE_BLOB;
        e.path = o->files[i].path;
        if (git_blob_create_from_buffer(&e.id, r->repo,
                                        o->files[i].len ? (const void *)o->files[i].data : "",
                                        o->files[i].len) != 0 ||
            git_index_add(idx, &e) != 0) {
            error = git_fail(FWREL_EIO, "cannot store a file");
            goto done;
        }
    }
    /* 2. tree */
    if ((error = step("tree")) != 0)
        goto done;
    if (git_index_write_tree_to(&tree_id, idx, r->repo) != 0 ||
        git_tree_lookup(&tree, r->repo, &tree_id) != 0) {
        error = git_fail(FWREL_EIO, "cannot write the tree");
        goto done;
    }
    /* 3. commit (no ref update here) */
    if ((error = step("commit")) != 0)
        goto done;
    cmsg = with_newline(o->commit_message);
    tmsg = with_newline(o->tag_message);
    if (cmsg == NULL || tmsg == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    const git_commit *parents[1] = {old};
    if (git_signature_new(&sig, o->who.name, o->who.email, (git_time_t)o->who.time,
                          o->who.offset_min) != 0 ||
        git_commit_create(&commit_id, r->repo, NULL, sig, sig, NULL, cmsg, tree, have_old ? 1 : 0,
                          parents) != 0) {
        error = git_fail(FWREL_EIO, "cannot write the commit");
        goto done;
    }
    /* 4. sign the tag payload, 5. the signed tag object */
    if ((error = write_signed_tag(&tag_id, r, odb, &commit_id, o, tmsg)) != 0)
        goto done;
    /* 6. move the branch, refusing a concurrent move; the journal first says which commit */
    if ((error = journal_write(r, &commit_id, have_old ? &old_id : NULL)) != 0)
        goto done;
    if ((error = step("branch")) != 0) {
        journal_remove(r);
        goto done;
    }
    rc = have_old ? git_reference_create_matching(&ref, r->repo, FWREL_REPO_BRANCH, &commit_id, 1,
                                                  &old_id, "fwrel: release")
                  : git_reference_create(&ref, r->repo, FWREL_REPO_BRANCH, &commit_id, 0,
                                         "fwrel: first release");
    if (rc == GIT_EMODIFIED || rc == GIT_EEXISTS) {
        journal_remove(r);
        error = fwrel_error_set(FWREL_EVERIFY, "the release branch moved during the release");
        goto done;
    }
    if (rc != 0) {
        error = git_fail(FWREL_EIO, "cannot move the release branch");
        goto done; /* the journal stays: the branch may have moved */
    }
    git_reference_free(ref);
    ref = NULL;
    /* 7. the tag ref; on failure the branch goes back */
    error = step("tag-ref");
    if (error == 0) {
        rc = git_reference_create(&ref, r->repo, refname, &tag_id, 0, "fwrel: release tag");
        if (rc == GIT_EEXISTS)
            error = fwrel_error_set(FWREL_EVERIFY, "tag %s already exists", o->tag_name);
        else if (rc != 0)
            error = git_fail(FWREL_EIO, "cannot create the tag");
    }
    if (error != 0) {
        fwrel_error saved = *fwrel_error_last();
        git_reference *back = NULL, *cur = NULL;
        int undone = step("rollback") == 0;
        if (undone && have_old)
            undone = git_reference_create_matching(&back, r->repo, FWREL_REPO_BRANCH, &old_id, 1,
                                                   &commit_id, "fwrel: undo release") == 0;
        else if (undone)
            undone = git_reference_lookup(&cur, r->repo, FWREL_REPO_BRANCH) == 0 &&
                     git_oid_equal(git_reference_target(cur), &commit_id) &&
                     git_reference_delete(cur) == 0;
        git_reference_free(back);
        git_reference_free(cur);
        if (undone)
            journal_remove(r);
        if (undone)
            fwrel_error_restore(&saved);
        else
            fwrel_error_set(saved.code,
                            "%s; the release branch is left one untagged commit ahead (the "
                            "next lock repairs it)",
                            saved.message);
        goto done;
    }
    journal_remove(r);
    if (commit_hex != NULL)
        git_oid_tostr(commit_hex, 41, &commit_id);
    if (tag_hex != NULL)
        git_oid_tostr(tag_hex, 41, &tag_id);
    error = 0;
done:
    free(cmsg);
    free(tmsg);
    git_odb_free(odb);
    git_signature_free(sig);
    git_index_free(idx);
    git_tree_free(tree);
    git_tree_free(old_tree);
    git_commit_free(old);
    git_reference_free(ref);
    git_reference_free(branch);
    git_reference_free(tagref);
    return error;
}

/* ---- reading --------------------------------------------------------------------------- */

/* Read an object and recompute its id from its bytes; refuse another type or a size above max. */
static int read_checked(git_odb_object **out, git_odb *odb, const git_oid *id, git_object_t want,
                        size_t max)
{
    git_odb_object *o = NULL;
    git_oid again;
    char hex[41];
    int error;

    *out = NULL;
    git_oid_tostr(hex, sizeof(hex), id);
    int rc = git_odb_read(&o, odb, id);
    if (rc != 0) {
        const git_error *e = git_error_last();
        if (rc != GIT_EMISMATCH && rc != GIT_ENOTFOUND && e != NULL && e->klass == GIT_ERROR_OS)
            return git_fail(FWREL_EIO, "cannot read an object");
        return fwrel_error_set(FWREL_EVERIFY, "object %s is %s", hex,
                               rc == GIT_ENOTFOUND ? "missing" : "corrupt");
    }
    if (git_odb_object_type(o) != want) {
        error = fwrel_error_set(FWREL_EVERIFY, "object %s is a %s, not a %s", hex,
                                git_object_type2string(git_odb_object_type(o)),
                                git_object_type2string(want));
        goto done;
    }
    if (git_odb_object_size(o) > max) {
        error = fwrel_error_set(FWREL_EFORMAT, "object %s is larger than %zu bytes", hex, max);
        goto done;
    }
    if (git_odb_hash(&again, git_odb_object_data(o), git_odb_object_size(o), want) != 0 ||
        !git_oid_equal(&again, id)) {
        error = fwrel_error_set(FWREL_EVERIFY, "object %s is corrupt", hex);
        goto done;
    }
    *out = o;
    o = NULL;
    error = 0;
done:
    git_odb_object_free(o);
    return error;
}

/* read_checked() an object of the repository into a malloc'd copy (*data, *len). */
static int read_copy(uint8_t **data, size_t *len, fwrel_repo *r, const git_oid *id,
                     git_object_t want, size_t max)
{
    git_odb *odb = NULL;
    git_odb_object *o = NULL;
    int error;

    if (git_repository_odb(&odb, r->repo) != 0) {
        error = git_fail(FWREL_EIO, "cannot open the object store");
        goto done;
    }
    if ((error = read_checked(&o, odb, id, want, max)) != 0)
        goto done;
    size_t n = git_odb_object_size(o);
    if ((*data = malloc(n ? n : 1)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    memcpy(*data, git_odb_object_data(o), n);
    *len = n;
    error = 0;
done:
    git_odb_object_free(o);
    git_odb_free(odb);
    return error;
}

static int lookup_tag_ref(git_reference **ref, fwrel_repo *r, const char *tag)
{
    char name[600];
    if (tag == NULL || (size_t)snprintf(name, sizeof(name), "refs/tags/%s", tag) >= sizeof(name))
        return fwrel_error_set(FWREL_EFORMAT, "invalid tag name");
    int rc = git_reference_lookup(ref, r->repo, name);
    if (rc == GIT_ENOTFOUND || rc == GIT_EINVALIDSPEC)
        return fwrel_error_set(FWREL_EVERIFY, "no tag %s", tag);
    if (rc != 0)
        return git_fail(FWREL_EIO, "cannot read the tag");
    if (git_reference_type(*ref) != GIT_REFERENCE_DIRECT) {
        git_reference_free(*ref);
        *ref = NULL;
        return fwrel_error_set(FWREL_EVERIFY, "tag %s is a symbolic ref", tag);
    }
    return 0;
}

static int tag_cmp(const void *a, const void *b)
{
    const fwrel_repo_tag *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return strcmp(x->name, y->name);
}

void fwrel_repo_tags_free(fwrel_repo_tag *tags, size_t n)
{
    if (tags == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(tags[i].name);
    free(tags);
}

int fwrel_repo_tags(fwrel_repo_tag **tags, size_t *n, fwrel_repo *r, const char *prefix)
{
    git_reference_iterator *it = NULL;
    git_reference *ref = NULL;
    fwrel_repo_tag *list = NULL;
    size_t count = 0, cap = 0, plen = prefix != NULL ? strlen(prefix) : 0;
    int error, rc;

    FWREL_ASSERT_ARG(tags != NULL && n != NULL && r != NULL);
    *tags = NULL;
    *n = 0;
    if (git_reference_iterator_glob_new(&it, r->repo, "refs/tags/*") != 0) {
        error = git_fail(FWREL_EIO, "cannot list tags");
        goto done;
    }
    while ((rc = git_reference_next(&ref, it)) == 0) {
        const char *name = git_reference_name(ref) + strlen("refs/tags/");
        git_object *o = NULL, *c = NULL;
        if (plen > 0 && strncmp(name, prefix, plen) != 0)
            goto next;
        if ((error = fwrel_grow((void **)&list, &cap, count, sizeof(*list))) != 0)
            goto done;
        fwrel_repo_tag *t = &list[count];
        memset(t, 0, sizeof(*t));
        if ((t->name = strdup(name)) == NULL) {
            error = fwrel_error_set(FWREL_EIO, "out of memory");
            goto done;
        }
        count++;
        if (git_reference_type(ref) == GIT_REFERENCE_DIRECT &&
            git_object_lookup(&o, r->repo, git_reference_target(ref), GIT_OBJECT_ANY) == 0 &&
            git_object_type(o) == GIT_OBJECT_TAG) {
            const git_signature *tagger = git_tag_tagger((git_tag *)o);
            t->annotated = 1;
            t->time = tagger != NULL ? (int64_t)tagger->when.time : 0;
        }
        if (git_reference_peel(&c, ref, GIT_OBJECT_COMMIT) == 0)
            git_oid_tostr(t->target, sizeof(t->target), git_object_id(c));
        git_object_free(o);
        git_object_free(c);
    next:
        git_reference_free(ref);
        ref = NULL;
    }
    if (rc != GIT_ITEROVER) {
        error = git_fail(FWREL_EIO, "cannot list tags");
        goto done;
    }
    if (count > 1)
        qsort(list, count, sizeof(*list), tag_cmp);
    *tags = list;
    *n = count;
    list = NULL;
    count = 0;
    error = 0;
done:
    fwrel_repo_tags_free(list, count);
    git_reference_free(ref);
    git_reference_iterator_free(it);
    return error;
}

int fwrel_repo_tag_commit(char commit_hex[41], fwrel_repo *r, const char *tag)
{
    git_reference *ref = NULL;
    git_object *c = NULL;
    int error;

    FWREL_ASSERT_ARG(commit_hex != NULL && r != NULL);
    commit_hex[0] = '\0';
    if ((error = lookup_tag_ref(&ref, r, tag)) != 0)
        return error;
    if (git_reference_peel(&c, ref, GIT_OBJECT_COMMIT) != 0) {
        error = fwrel_error_set(FWREL_EVERIFY, "tag %s does not point to a commit", tag);
        goto done;
    }
    git_oid_tostr(commit_hex, 41, git_object_id(c));
    error = 0;
done:
    git_object_free(c);
    git_reference_free(ref);
    return error;
}

/* A commit id given as 40 hex digits, or FWREL_EFORMAT. */
static int commit_id(git_oid *id, const char *commit)
{
    if (strlen(commit) != 40 || git_oid_fromstr(id, commit) != 0)
        return fwrel_error_set(FWREL_EFORMAT, "'%.48s' is not a commit id (40 hex digits)", commit);
    return 0;
}

/* The commit of that id (commit_id()), or FWREL_EVERIFY when the repository has none. */
static int commit_lookup(git_commit **c, git_oid *id, fwrel_repo *r, const char *commit)
{
    int error = commit_id(id, commit);
    if (error == 0 && git_commit_lookup(c, r->repo, id) != 0)
        error = fwrel_error_set(FWREL_EVERIFY, "no commit %s", commit);
    return error;
}

/* A file of a commit's tree, its blob id recomputed; label names the commit in messages. */
static int commit_file(uint8_t **data, size_t *len, fwrel_repo *r, git_commit *c, const char *label,
                       const char *path, size_t max)
{
    git_tree *tree = NULL;
    git_tree_entry *entry = NULL;
    int error;

    if (git_commit_tree(&tree, c) != 0) {
        error = git_fail(FWREL_EVERIFY, "cannot read the release");
        goto done;
    }
    if (git_tree_entry_bypath(&entry, tree, path) != 0 ||
        git_tree_entry_type(entry) != GIT_OBJECT_BLOB) {
        error = fwrel_error_set(FWREL_EVERIFY, "no file %s at %s", path, label);
        goto done;
    }
    error = read_copy(data, len, r, git_tree_entry_id(entry), GIT_OBJECT_BLOB, max);
done:
    git_tree_entry_free(entry);
    git_tree_free(tree);
    return error;
}

/* What both file reads do first: no data yet, and a path that may name a file of a release. */
static int file_start(uint8_t **data, size_t *len, const char *path)
{
    *data = NULL;
    *len = 0;
    if (path == NULL || !fwrel_repo_path_valid(path))
        return fwrel_error_set(FWREL_EFORMAT, "invalid path in the repository");
    return 0;
}

int fwrel_repo_read_file(uint8_t **data, size_t *len, fwrel_repo *r, const char *tag,
                         const char *path, size_t max)
{
    git_reference *ref = NULL;
    git_object *c = NULL;
    int error;

    FWREL_ASSERT_ARG(data != NULL && len != NULL && r != NULL);
    if ((error = file_start(data, len, path)) != 0)
        return error;
    if ((error = lookup_tag_ref(&ref, r, tag)) != 0)
        return error;
    if (git_reference_peel(&c, ref, GIT_OBJECT_COMMIT) != 0)
        error = git_fail(FWREL_EVERIFY, "cannot read the release");
    else
        error = commit_file(data, len, r, (git_commit *)c, tag, path, max);
    git_object_free(c);
    git_reference_free(ref);
    return error;
}

int fwrel_repo_commit_read_file(uint8_t **data, size_t *len, fwrel_repo *r, const char *commit,
                                const char *path, size_t max)
{
    git_commit *c = NULL;
    git_oid id;
    int error;

    FWREL_ASSERT_ARG(data != NULL && len != NULL && r != NULL && commit != NULL);
    if ((error = file_start(data, len, path)) != 0)
        return error;
    if ((error = commit_lookup(&c, &id, r, commit)) != 0)
        return error;
    error = commit_file(data, len, r, c, commit, path, max);
    git_commit_free(c);
    return error;
}

int fwrel_repo_commit_message(char **msg, fwrel_repo *r, const char *commit)
{
    git_commit *c = NULL;
    git_oid id;
    int error;
    FWREL_ASSERT_ARG(msg != NULL && r != NULL && commit != NULL);
    *msg = NULL;
    if ((error = commit_lookup(&c, &id, r, commit)) != 0)
        return error;
    const char *m = git_commit_message_raw(c);
    if (m == NULL || strlen(m) > FWREL_REPO_MESSAGE_MAX)
        error = fwrel_error_set(FWREL_EFORMAT, "the message of commit %s is larger than %zu bytes",
                                commit, FWREL_REPO_MESSAGE_MAX);
    else if ((*msg = strdup(m)) == NULL)
        error = fwrel_error_set(FWREL_EIO, "out of memory");
    git_commit_free(c);
    return error;
}

int fwrel_repo_branch_commits(fwrel_repo_commit **list, size_t *n, fwrel_repo *r, size_t max)
{
    git_reference *branch = NULL;
    fwrel_repo_commit *l = NULL;
    size_t count = 0, cap = 0;
    git_oid id;
    int error;

    FWREL_ASSERT_ARG(list != NULL && n != NULL && r != NULL);
    *list = NULL;
    *n = 0;
    int rc = git_reference_lookup(&branch, r->repo, FWREL_REPO_BRANCH);
    if (rc == GIT_ENOTFOUND)
        return 0;
    if (rc != 0 || git_reference_type(branch) != GIT_REFERENCE_DIRECT) {
        error = git_fail(FWREL_EVERIFY, "cannot read the release branch");
        goto done;
    }
    git_oid_cpy(&id, git_reference_target(branch));
    for (;;) {
        git_commit *c = NULL;
        if (count == max) {
            error =
                fwrel_error_set(FWREL_EFORMAT, "the release branch has more than %zu commits", max);
            goto done;
        }
        if ((error = fwrel_grow((void **)&l, &cap, count, sizeof(*l))) != 0)
            goto done;
        fwrel_repo_commit *e = &l[count++];
        memset(e, 0, sizeof(*e));
        git_oid_tostr(e->id, sizeof(e->id), &id);
        if (git_commit_lookup(&c, r->repo, &id) != 0) {
            error = git_fail(FWREL_EVERIFY, "cannot read a commit of the release branch");
            fwrel_error_prefix("commit %s", e->id);
            goto done;
        }
        e->parents = git_commit_parentcount(c);
        const char *m = git_commit_message(c);
        size_t k = 0;
        while (m != NULL && m[k] != '\0' && m[k] != '\n' && k < sizeof(e->subject) - 1) {
            e->subject[k] = m[k] >= 0x20 && m[k] < 0x7f ? m[k] : '?';
            k++;
        }
        e->subject[k] = '\0';
        if (e->parents >= 1) {
            git_oid_cpy(&id, git_commit_parent_id(c, 0));
            git_oid_tostr(e->parent, sizeof(e->parent), &id);
        }
        git_commit_free(c);
        if (e->parents == 0)
            break;
    }
    *list = l;
    *n = count;
    l = NULL;
    error = 0;
done:
    free(l);
    git_reference_free(branch);
    return error;
}

int fwrel_repo_retag(fwrel_repo *r, const char *commit, const fwrel_repo_release_opts *o,
                     char tag_hex[41])
{
    git_reference *ref = NULL;
    git_odb *odb = NULL;
    git_commit *c = NULL;
    git_oid id, tag_id;
    char refname[600], *tmsg = NULL;
    int error, rc;

    FWREL_ASSERT_ARG(r != NULL && commit != NULL && o != NULL);
    if (!r->locked)
        return fwrel_error_set(FWREL_EUSAGE, "the release lock is not held");
    if ((error = check_tag_opts(o)) != 0 || (error = commit_lookup(&c, &id, r, commit)) != 0)
        return error;
    snprintf(refname, sizeof(refname), "refs/tags/%s", o->tag_name);
    if ((tmsg = with_newline(o->tag_message)) == NULL) {
        error = fwrel_error_set(FWREL_EIO, "out of memory");
        goto done;
    }
    if (git_repository_odb(&odb, r->repo) != 0) {
        error = git_fail(FWREL_EIO, "cannot open the object store");
        goto done;
    }
    if ((error = write_signed_tag(&tag_id, r, odb, &id, o, tmsg)) != 0 ||
        (error = step("tag-ref")) != 0)
        goto done;
    rc = git_reference_create(&ref, r->repo, refname, &tag_id, 0, "fwrel: repair a release tag");
    if (rc == GIT_EEXISTS) {
        error = fwrel_error_set(FWREL_EVERIFY, "tag %s already exists", o->tag_name);
        goto done;
    }
    if (rc != 0) {
        error = git_fail(FWREL_EIO, "cannot create the tag");
        goto done;
    }
    if (tag_hex != NULL)
        git_oid_tostr(tag_hex, 41, &tag_id);
    error = 0;
done:
    free(tmsg);
    git_reference_free(ref);
    git_odb_free(odb);
    git_commit_free(c);
    return error;
}

int fwrel_repo_drop_tip(fwrel_repo *r, const char *commit)
{
    git_reference *branch = NULL, *moved = NULL;
    git_commit *c = NULL;
    git_oid id;
    int error;

    FWREL_ASSERT_ARG(r != NULL && commit != NULL);
    if (!r->locked)
        return fwrel_error_set(FWREL_EUSAGE, "the release lock is not held");
    if ((error = commit_id(&id, commit)) != 0)
        return error;
    if (git_reference_lookup(&branch, r->repo, FWREL_REPO_BRANCH) != 0 ||
        git_reference_type(branch) != GIT_REFERENCE_DIRECT ||
        !git_oid_equal(git_reference_target(branch), &id)) {
        error = fwrel_error_set(FWREL_EVERIFY, "commit %s is not the release branch's tip", commit);
        goto done;
    }
    if (git_commit_lookup(&c, r->repo, &id) != 0) {
        error = git_fail(FWREL_EVERIFY, "cannot read the release branch's commit");
        goto done;
    }
    if ((error = step("branch")) != 0)
        goto done;
    if (git_commit_parentcount(c) == 0)
        error = git_reference_delete(branch) != 0
                    ? git_fail(FWREL_EIO, "cannot remove the release branch")
                    : 0;
    else if (git_reference_create_matching(&moved, r->repo, FWREL_REPO_BRANCH,
                                           git_commit_parent_id(c, 0), 1, &id,
                                           "fwrel: drop an untagged commit") != 0)
        error = git_fail(FWREL_EIO, "cannot move the release branch back");
    else
        error = 0;
done:
    git_reference_free(moved);
    git_commit_free(c);
    git_reference_free(branch);
    return error;
}

int fwrel_repo_tag_raw(uint8_t **raw, size_t *len, fwrel_repo *r, const char *tag)
{
    git_reference *ref = NULL;
    int error;

    FWREL_ASSERT_ARG(raw != NULL && len != NULL && r != NULL);
    *raw = NULL;
    *len = 0;
    if ((error = lookup_tag_ref(&ref, r, tag)) != 0)
        return error;
    error = read_copy(raw, len, r, git_reference_target(ref), GIT_OBJECT_TAG, FWREL_REPO_TAG_MAX);
    if (error == FWREL_EVERIFY && strstr(fwrel_error_last()->message, "is a commit") != NULL)
        error = fwrel_error_set(FWREL_EVERIFY, "tag %s is not annotated", tag);
    git_reference_free(ref);
    return error;
}

int fwrel_repo_tag_split(size_t *payload_len, const uint8_t *raw, size_t len)
{
    size_t match = len, pos = 0;
    const size_t alen = sizeof(armor_begin) - 1;
    FWREL_ASSERT_ARG(payload_len != NULL && (raw != NULL || len == 0));
    *payload_len = 0;
    /* As git's parse_signed_buffer(): the last line that starts a signature. */
    while (pos < len) {
        if (len - pos >= alen && memcmp(raw + pos, armor_begin, alen) == 0)
            match = pos;
        const uint8_t *eol = memchr(raw + pos, '\n', len - pos);
        pos = eol != NULL ? (size_t)(eol - raw) + 1 : len;
    }
    if (match == len)
        return fwrel_error_set(FWREL_EVERIFY, "tag is not signed");
    *payload_len = match;
    return 0;
}

/* Take one header line "<key> <value>\n" from (*p, *len); value points into the buffer. */
static int header_line(const char **value, size_t *vlen, const char **p, size_t *len,
                       const char *key)
{
    size_t klen = strlen(key);
    if (*len < klen + 1 || memcmp(*p, key, klen) != 0 || (*p)[klen] != ' ')
        return fwrel_error_set(FWREL_EFORMAT, "malformed tag object: no %s line", key);
    const char *v = *p + klen + 1;
    const char *eol = memchr(v, '\n', *len - klen - 1);
    if (eol == NULL)
        return fwrel_error_set(FWREL_EFORMAT, "malformed tag object: unterminated %s line", key);
    if (memchr(v, '\0', (size_t)(eol - v)) != NULL)
        return fwrel_error_set(FWREL_EFORMAT, "malformed tag object: NUL in the %s line", key);
    *value = v;
    *vlen = (size_t)(eol - v);
    *len -= (size_t)(eol + 1 - *p);
    *p = eol + 1;
    return 0;
}

int fwrel_repo_tag_parse(fwrel_repo_tag_info *info, const uint8_t *raw, size_t len)
{
    const char *p, *v;
    size_t rest, vlen;
    uint64_t t;
    int error;

    FWREL_ASSERT_ARG(info != NULL && (raw != NULL || len == 0));
    memset(info, 0, sizeof(*info));
    if (len > FWREL_REPO_TAG_MAX)
        return fwrel_error_set(FWREL_EFORMAT, "tag object larger than %zu bytes",
                               FWREL_REPO_TAG_MAX);
    if ((error = fwrel_repo_tag_split(&info->payload_len, raw, len)) != 0)
        goto done;
    p = (const char *)raw;
    rest = info->payload_len;
    if ((error = header_line(&v, &vlen, &p, &rest, "object")) != 0)
        goto done;
    for (size_t i = 0; i < vlen; i++)
        if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
            vlen = 0;
    if (vlen != 40) {
        error = fwrel_error_set(FWREL_EFORMAT, "malformed tag object: bad object id");
        goto done;
    }
    memcpy(info->object, v, 40);
    if ((error = header_line(&v, &vlen, &p, &rest, "type")) != 0)
        goto done;
    if (vlen != 6 || memcmp(v, "commit", 6) != 0) {
        error = fwrel_error_set(FWREL_EVERIFY, "tag does not point to a commit");
        goto done;
    }
    if ((error = header_line(&v, &vlen, &p, &rest, "tag")) != 0)
        goto done;
    if (vlen == 0 || vlen >= sizeof(info->name)) {
        error = fwrel_error_set(FWREL_EFORMAT, "malformed tag object: bad tag name");
        goto done;
    }
    memcpy(info->name, v, vlen);
    if ((error = header_line(&v, &vlen, &p, &rest, "tagger")) != 0)
        goto done;
    /* "<name> <<email>> <seconds> <+hhmm>": the time is the field after the last '>'. */
    const char *gt = NULL;
    for (size_t i = 0; i < vlen; i++)
        if (v[i] == '>')
            gt = v + i;
    char num[24];
    size_t k = 0;
    const char *q = gt != NULL ? gt + 1 : v + vlen;
    if (q < v + vlen && *q == ' ')
        q++;
    while (q < v + vlen && *q >= '0' && *q <= '9' && k < sizeof(num) - 1)
        num[k++] = *q++;
    num[k] = '\0';
    if (gt == NULL || k == 0 || q + 6 != v + vlen || q[0] != ' ' || (q[1] != '+' && q[1] != '-') ||
        fwrel_parse_u64(&t, num, INT64_MAX) != 0) {
        error = fwrel_error_set(FWREL_EFORMAT, "malformed tag object: bad tagger line");
        goto done;
    }
    for (int i = 2; i < 6; i++)
        if (q[i] < '0' || q[i] > '9') {
            error = fwrel_error_set(FWREL_EFORMAT, "malformed tag object: bad tagger line");
            goto done;
        }
    info->time = (int64_t)t;
    if (rest == 0 || *p != '\n') {
        error = fwrel_error_set(FWREL_EFORMAT, "malformed tag object: no blank line after the "
                                               "header");
        goto done;
    }
    error = 0;
done:
    if (error != 0)
        memset(info, 0, sizeof(*info));
    return error;
}

static size_t oid_slot(const git_oid *id, size_t cap)
{
    uint64_t h;
    memcpy(&h, id->id, sizeof(h));
    return (size_t)h & (cap - 1);
}

static int was_verified(const fwrel_repo *r, const git_oid *id)
{
    if (r->capverified == 0)
        return 0;
    for (size_t i = oid_slot(id, r->capverified);; i = (i + 1) & (r->capverified - 1)) {
        if (git_oid_is_zero(&r->verified[i]))
            return 0;
        if (git_oid_equal(&r->verified[i], id))
            return 1;
    }
}

/* Remember a verified object; out of memory only loses the shortcut. */
static void mark_verified(fwrel_repo *r, const git_oid *id)
{
    if (git_oid_is_zero(id) || was_verified(r, id))
        return;
    if (2 * (r->nverified + 1) > r->capverified) {
        size_t cap = r->capverified ? 2 * r->capverified : 1024;
        git_oid *v = calloc(cap, sizeof(*v));
        if (v == NULL)
            return;
        for (size_t k = 0; k < r->capverified; k++) {
            if (git_oid_is_zero(&r->verified[k]))
                continue;
            size_t i = oid_slot(&r->verified[k], cap);
            while (!git_oid_is_zero(&v[i]))
                i = (i + 1) & (cap - 1);
            v[i] = r->verified[k];
        }
        free(r->verified);
        r->verified = v;
        r->capverified = cap;
    }
    size_t i = oid_slot(id, r->capverified);
    while (!git_oid_is_zero(&r->verified[i]))
        i = (i + 1) & (r->capverified - 1);
    r->verified[i] = *id;
    r->nverified++;
}

/* Every tree and blob under a tree is present and intact. */
static int check_tree(fwrel_repo *r, git_odb *odb, const git_oid *id, int depth)
{
    git_repository *repo = r->repo;
    git_odb_object *o = NULL;
    git_tree *tree = NULL;
    int error;
    if (depth > 64)
        return fwrel_error_set(FWREL_EFORMAT, "release tree deeper than 64 levels");
    if ((error = read_checked(&o, odb, id, GIT_OBJECT_TREE, FWREL_REPO_TAG_MAX * 64)) != 0)
        return error;
    git_odb_object_free(o);
    if (git_tree_lookup(&tree, repo, id) != 0)
        return git_fail(FWREL_EVERIFY, "cannot read a release tree");
    size_t n = git_tree_entrycount(tree);
    error = 0;
    for (size_t i = 0; i < n && error == 0; i++) {
        const git_tree_entry *e = git_tree_entry_byindex(tree, i);
        git_object_t t = git_tree_entry_type(e);
        if (t == GIT_OBJECT_TREE) {
            if (!was_verified(r, git_tree_entry_id(e)))
                error = check_tree(r, odb, git_tree_entry_id(e), depth + 1);
        } else if (t == GIT_OBJECT_BLOB) {
            if (was_verified(r, git_tree_entry_id(e)))
                continue;
            error =
                read_checked(&o, odb, git_tree_entry_id(e), GIT_OBJECT_BLOB, FWREL_REPO_FILE_MAX);
            git_odb_object_free(o);
            o = NULL;
            if (error == 0)
                mark_verified(r, git_tree_entry_id(e));
        } else {
            error = fwrel_error_set(FWREL_EVERIFY, "unexpected %s in a release tree",
                                    git_object_type2string(t));
        }
    }
    git_tree_free(tree);
    if (error == 0)
        mark_verified(r, id); /* after everything below it */
    return error;
}

int fwrel_repo_tag_verify(fwrel_pgp_result *signer, char commit_hex[41], fwrel_repo *r,
                          const char *tag, const char *home)
{
    uint8_t *raw = NULL;
    size_t len = 0, payload_len = 0;
    fwrel_repo_tag_info info;
    git_oid commit_id;
    git_odb *odb = NULL;
    git_odb_object *co = NULL;
    git_commit *commit = NULL;
    int error;

    FWREL_ASSERT_ARG(signer != NULL && r != NULL);
    memset(signer, 0, sizeof(*signer));
    if (commit_hex != NULL)
        commit_hex[0] = '\0';
    if ((error = fwrel_repo_tag_raw(&raw, &len, r, tag)) != 0)
        goto done;
    if ((error = fwrel_repo_tag_parse(&info, raw, len)) != 0)
        goto done;
    payload_len = info.payload_len;
    if (strcmp(info.name, tag) != 0) {
        error = fwrel_error_set(FWREL_EVERIFY, "tag object is named %s, not %s", info.name, tag);
        goto done;
    }
    if (git_oid_fromstr(&commit_id, info.object) != 0) {
        error = fwrel_error_set(FWREL_EFORMAT, "malformed tag object: bad object id");
        goto done;
    }
    if ((error = fwrel_pgp_verify_detached(signer, home, raw, payload_len, raw + payload_len,
                                           len - payload_len)) != 0) {
        fwrel_error_prefix("tag %s", tag);
        goto done;
    }
    if (git_repository_odb(&odb, r->repo) != 0) {
        error = git_fail(FWREL_EIO, "cannot open the object store");
        goto done;
    }
    if ((error = read_checked(&co, odb, &commit_id, GIT_OBJECT_COMMIT, FWREL_REPO_TAG_MAX)) != 0)
        goto done;
    if (git_commit_lookup(&commit, r->repo, &commit_id) != 0) {
        error = git_fail(FWREL_EVERIFY, "cannot read the tagged commit");
        goto done;
    }
    if (!was_verified(r, git_commit_tree_id(commit)) &&
        (error = check_tree(r, odb, git_commit_tree_id(commit), 0)) != 0)
        goto done;
    if (commit_hex != NULL)
        git_oid_tostr(commit_hex, 41, &commit_id);
    error = 0;
done:
    if (error != 0)
        memset(signer, 0, sizeof(*signer));
    git_commit_free(commit);
    git_odb_object_free(co);
    git_odb_free(odb);
    free(raw);
    return error;
}

/* ---- the branch audit (the auditor's repo.branch and release.dir) ------------------------- */

static const char *delta_name(git_delta_t s)
{
    switch (s) {
    case GIT_DELTA_ADDED:
        return "adds";
    case GIT_DELTA_DELETED:
        return "deletes";
    case GIT_DELTA_MODIFIED:
        return "modifies";
    case GIT_DELTA_TYPECHANGE:
        return "changes the type of";
    default:
        return "changes";
    }
}

/* The release's commit adds files under <tag>/ and updates the audit log, nothing else. */
static void tree_delta(fwrel_problems *p, size_t *added, git_repository *repo,
                       const fwrel_repo_branch_release *R)
{
    git_oid id;
    git_commit *c = NULL, *parent = NULL;
    git_tree *t = NULL, *pt = NULL;
    git_diff *diff = NULL;
    char dir[260];
    int n = snprintf(dir, sizeof(dir), "%s/", R->tag);
    *added = 0;
    if (git_oid_fromstr(&id, R->commit) != 0 || git_commit_lookup(&c, repo, &id) != 0 ||
        git_commit_tree(&t, c) != 0 ||
        (git_commit_parentcount(c) == 1 &&
         (git_commit_parent(&parent, c, 0) != 0 || git_commit_tree(&pt, parent) != 0)) ||
        git_diff_tree_to_tree(&diff, repo, pt, t, NULL) != 0) {
        const git_error *ge = git_error_last();
        fwrel_problem(p, "the commit cannot be compared with its parent: %s",
                      ge != NULL ? ge->message : "?");
    } else {
        size_t nd = git_diff_num_deltas(diff);
        for (size_t k = 0; k < nd; k++) {
            const git_diff_delta *dd = git_diff_get_delta(diff, k);
            const char *path =
                dd->status == GIT_DELTA_DELETED ? dd->old_file.path : dd->new_file.path;
            if (dd->status == GIT_DELTA_ADDED && n > 0 && strncmp(path, dir, (size_t)n) == 0)
                (*added)++;
            else if (R->audit_path[0] != '\0' && strcmp(path, R->audit_path) == 0 &&
                     (dd->status == GIT_DELTA_ADDED || dd->status == GIT_DELTA_MODIFIED))
                continue;
            else
                fwrel_problem(p, "the commit %s %s, outside its release", delta_name(dd->status),
                              path);
        }
    }
    git_diff_free(diff);
    git_tree_free(pt);
    git_tree_free(t);
    git_commit_free(parent);
    git_commit_free(c);
}

/* release.dir: <tag>/ in the tagged tree holds exactly the files a release writes, as plain files
 * (mode 100644, as fwrel_repo_release() writes them), and the audit log is a plain file. A
 * symlink (its blob is a link target that a checkout follows), an executable, a subdirectory or
 * any other entry fails. */
static void release_dir(fwrel_problems *p, git_repository *repo, const fwrel_repo_branch_release *R)
{
    static const char *const want[] = {"bundle.fwb", "release.json"};
    git_oid id;
    git_commit *c = NULL;
    git_tree *t = NULL, *d = NULL;
    git_tree_entry *e = NULL, *le = NULL;
    int seen[2] = {0, 0};

    if (git_oid_fromstr(&id, R->commit) != 0 || git_commit_lookup(&c, repo, &id) != 0 ||
        git_commit_tree(&t, c) != 0) {
        fwrel_problem(p, "the tagged tree cannot be read");
        goto done;
    }
    if (git_tree_entry_bypath(&e, t, R->tag) != 0 ||
        git_tree_entry_filemode_raw(e) != GIT_FILEMODE_TREE ||
        git_tree_lookup(&d, repo, git_tree_entry_id(e)) != 0) {
        fwrel_problem(p, "%s/ is not a directory of the tagged tree", R->tag);
    } else {
        for (size_t k = 0; k < git_tree_entrycount(d); k++) {
            const git_tree_entry *x = git_tree_entry_byindex(d, k);
            const char *name = git_tree_entry_name(x);
            unsigned m = (unsigned)git_tree_entry_filemode_raw(x);
            size_t w = 0;
            while (w < 2 && strcmp(name, want[w]) != 0)
                w++;
            const char *kind = m == GIT_FILEMODE_LINK              ? ", a symlink"
                               : m == GIT_FILEMODE_BLOB_EXECUTABLE ? ", executable"
                               : m == GIT_FILEMODE_TREE            ? ", a directory"
                               : m == GIT_FILEMODE_COMMIT          ? ", a submodule"
                                                                   : "";
            if (w == 2) {
                fwrel_problem(p, "%s/%s is not a file of a release (mode %06o%s)", R->tag, name, m,
                              kind);
                continue;
            }
            seen[w] = 1;
            if (m != GIT_FILEMODE_BLOB)
                fwrel_problem(p, "%s/%s has mode %06o%s, not 100644", R->tag, name, m, kind);
        }
        for (size_t w = 0; w < 2; w++)
            if (!seen[w])
                fwrel_problem(p, "%s/%s is missing", R->tag, want[w]);
    }
    if (R->audit_path[0] != '\0') {
        if (git_tree_entry_bypath(&le, t, R->audit_path) != 0)
            fwrel_problem(p, "no audit log %s in the tagged tree", R->audit_path);
        else if ((unsigned)git_tree_entry_filemode_raw(le) != GIT_FILEMODE_BLOB)
            fwrel_problem(p, "the audit log %s in the tree has mode %06o, not 100644",
                          R->audit_path, (unsigned)git_tree_entry_filemode_raw(le));
    }
done:
    git_tree_entry_free(le);
    git_tree_entry_free(e);
    git_tree_free(d);
    git_tree_free(t);
    git_commit_free(c);
}

/* Walk the branch from its tip by first parents into *cp (tip first), counting merges. An
 * unreadable branch or commit is a FAIL step in report; the walk stops there. */
static int branch_walk(fwrel_cpos **cp, size_t *n, size_t *merges, fwrel_report *report,
                       fwrel_repo *r, size_t max)
{
    git_reference *ref = NULL;
    size_t cap = 0;
    git_oid id;
    int error = 0;

    int rc = git_reference_lookup(&ref, r->repo, FWREL_REPO_BRANCH);
    if (rc == 0 && git_reference_type(ref) == GIT_REFERENCE_DIRECT) {
        git_oid_cpy(&id, git_reference_target(ref));
        for (;;) {
            git_commit *c = NULL;
            if (*n == max + 1) {
                error = fwrel_error_set(FWREL_EFORMAT,
                                        "the release branch has more than %zu commits", max);
                break;
            }
            if ((error = fwrel_grow((void **)cp, &cap, *n, sizeof(**cp))) != 0)
                break;
            fwrel_cpos *e = &(*cp)[(*n)++];
            git_oid_tostr(e->id, sizeof(e->id), &id);
            e->tags = 0;
            if (git_commit_lookup(&c, r->repo, &id) != 0) {
                if (fwrel_report_add(report, "repo.branch", FWREL_FAIL,
                                     "commit %s of the release branch cannot be read", e->id) != 0)
                    error = FWREL_EIO;
                break;
            }
            unsigned parents = git_commit_parentcount(c);
            *merges += parents > 1;
            if (parents >= 1)
                git_oid_cpy(&id, git_commit_parent_id(c, 0));
            git_commit_free(c);
            if (parents == 0)
                break;
        }
    } else if (rc != GIT_ENOTFOUND && fwrel_report_add(report, "repo.branch", FWREL_FAIL,
                                                       "the release branch cannot be read") != 0) {
        error = FWREL_EIO;
    }
    git_reference_free(ref);
    return error;
}

int fwrel_repo_branch_audit(fwrel_report *report, fwrel_repo_branch_release *rels, size_t nrels,
                            fwrel_repo *r, const fwrel_repo_tag *tags, size_t ntags, size_t max)
{
    fwrel_cpos *cp = NULL;
    size_t n = 0, untagged = 0, merges = 0;
    char first_untagged[41] = "";
    int error;

    FWREL_ASSERT_ARG(report != NULL && (rels != NULL || nrels == 0) && r != NULL &&
                     (tags != NULL || ntags == 0));
    if ((error = branch_walk(&cp, &n, &merges, report, r, max)) != 0)
        goto done;
    fwrel_cpos_index(cp, n);
    for (size_t i = 0; i < ntags; i++) {
        fwrel_cpos *f = fwrel_cpos_find(cp, n, tags[i].target);
        if (f != NULL)
            f->tags++;
    }
    for (size_t i = 0; i < n; i++)
        if (cp[i].tags == 0 && untagged++ == 0)
            memcpy(first_untagged, cp[i].id, 41);
    if (untagged > 0)
        error = fwrel_report_add(report, "repo.branch", FWREL_FAIL,
                                 "%zu commit%s of the release branch ha%s no release tag (%s%s)",
                                 untagged, untagged == 1 ? "" : "s", untagged == 1 ? "s" : "ve",
                                 first_untagged, untagged > 1 ? ", ..." : "");
    else if (merges > 0)
        error = fwrel_report_add(report, "repo.branch", FWREL_FAIL,
                                 "the release branch has %zu merge commit%s", merges,
                                 merges == 1 ? "" : "s");
    else
        error = fwrel_report_add(report, "repo.branch", FWREL_PASS,
                                 "%zu commits, linear, each one release tag", n);
    if (error == 0 && merges > 0 && untagged > 0)
        error = fwrel_report_add(report, "repo.branch", FWREL_FAIL,
                                 "the release branch has %zu merge commit%s", merges,
                                 merges == 1 ? "" : "s");
    if (error != 0) {
        error = FWREL_EIO;
        goto done;
    }

    /* Each release: on the branch, alone there, and what its commit changes. */
    for (size_t i = 0; i < nrels; i++) {
        fwrel_repo_branch_release *R = &rels[i];
        fwrel_cpos *f = R->commit[0] ? fwrel_cpos_find(cp, n, R->commit) : NULL;
        fwrel_problems p = {"", 0}, d = {"", 0};
        size_t added = 0;
        R->pos = 0;
        if (f == NULL) {
            error = fwrel_report_add(R->report, "repo.branch", FWREL_FAIL,
                                     "commit %.12s is not on the release branch",
                                     R->commit[0] ? R->commit : "(none)");
        } else {
            R->pos = f->pos;
            if (f->tags > 1)
                fwrel_problem(&p, "commit %.12s carries %zu release tags", R->commit, f->tags);
            tree_delta(&p, &added, r->repo, R);
            if (p.n == 0 && added == 0)
                fwrel_problem(&p, "the commit adds no file under %s/", R->tag);
            if (p.n)
                error = fwrel_report_add(R->report, "repo.branch", FWREL_FAIL, "%s", p.text);
            else
                error = fwrel_report_add(R->report, "repo.branch", FWREL_PASS,
                                         "commit %zu of %zu on the release branch; adds %zu "
                                         "files under its directory and updates the audit log",
                                         f->pos, n, added);
        }
        if (error == 0 && R->commit[0] == '\0') {
            error = fwrel_report_add(R->report, "release.dir", FWREL_SKIP, "no commit");
        } else if (error == 0) {
            release_dir(&d, r->repo, R);
            error = fwrel_report_add(R->report, "release.dir", d.n ? FWREL_FAIL : FWREL_PASS, "%s",
                                     d.n ? d.text
                                         : "bundle.fwb and release.json, plain files (100644), "
                                           "nothing else; the audit log a plain file");
        }
        if (error != 0) {
            error = FWREL_EIO;
            goto done;
        }
    }
    error = 0;
done:
    free(cp);
    return error;
}

int fwrel_repo_commit_writes(int *hit, fwrel_repo *r, const char *commit,
                             int (*match)(const char *path, void *arg), void *arg)
{
    git_oid id;
    git_commit *c = NULL, *parent = NULL;
    git_tree *t = NULL, *pt = NULL;
    git_diff *diff = NULL;
    int error = 0;

    FWREL_ASSERT_ARG(hit != NULL && r != NULL && commit != NULL && match != NULL);
    *hit = 0;
    if (git_oid_fromstr(&id, commit) != 0 || git_commit_lookup(&c, r->repo, &id) != 0 ||
        git_commit_tree(&t, c) != 0 ||
        (git_commit_parentcount(c) > 0 &&
         (git_commit_parent(&parent, c, 0) != 0 || git_commit_tree(&pt, parent) != 0)) ||
        git_diff_tree_to_tree(&diff, r->repo, pt, t, NULL) != 0) {
        error = git_fail(FWREL_EVERIFY, "the commit cannot be compared with its parent");
        goto done;
    }
    for (size_t k = 0; k < git_diff_num_deltas(diff) && !*hit; k++) {
        const git_diff_delta *dd = git_diff_get_delta(diff, k);
        *hit = (dd->new_file.path != NULL && match(dd->new_file.path, arg)) ||
               (dd->old_file.path != NULL && match(dd->old_file.path, arg));
    }
done:
    git_diff_free(diff);
    git_tree_free(pt);
    git_tree_free(t);
    git_commit_free(parent);
    git_commit_free(c);
    return error;
}
