/* gpghome.c - temporary GnuPG homes with real keys for tests (gpghome.h). */
#include "gpghome.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

int gpghome_sh(const char *home, const char *cmd)
{
    char buf[8192];
    if ((size_t)snprintf(buf, sizeof(buf), "GNUPGHOME='%s' sh -c '%s' >/dev/null 2>&1", home,
                         cmd) >= sizeof(buf))
        return -1;
    int st = system(buf);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

char *gpghome_create(const char *dir, const char *name)
{
    char path[4096], conf[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (mkdir(path, 0700) != 0)
        abort();
    snprintf(conf, sizeof(conf), "%s/gpg-agent.conf", path);
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        abort();
    fputs("allow-loopback-pinentry\ndefault-cache-ttl 0\nmax-cache-ttl 0\n", f);
    fclose(f);
    char *p = strdup(path);
    if (p == NULL)
        abort();
    return p;
}

/* The fingerprint of the last key (or subkey) whose colon line matches "kind". */
static int last_fpr(const char *home, const char *pattern, const char *kind, char fpr[41])
{
    char cmd[4400], line[1024], want[64];
    snprintf(cmd, sizeof(cmd),
             "GNUPGHOME='%s' gpg --batch --with-colons --list-keys '%s' 2>/dev/null", home,
             pattern);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    int take = 0, found = -1;
    snprintf(want, sizeof(want), "%s:", kind);
    while (fgets(line, sizeof(line), p) != NULL) {
        if (strncmp(line, "pub:", 4) == 0 || strncmp(line, "sub:", 4) == 0)
            take = strncmp(line, want, strlen(want)) == 0;
        else if (take && strncmp(line, "fpr:::::::::", 12) == 0 && strlen(line) >= 52) {
            memcpy(fpr, line + 12, 40);
            fpr[40] = '\0';
            found = 0;
            take = 0;
        }
    }
    pclose(p);
    return found;
}

int gpghome_genkey(const char *home, const char *uid, const char *pass, const char *expire,
                   char fpr[41])
{
    return gpghome_genkey_at(home, uid, pass, expire, 0, fpr);
}

int gpghome_genkey_at(const char *home, const char *uid, const char *pass, const char *expire,
                      long long when, char fpr[41])
{
    char cmd[2048], faked[64] = "";
    if (when > 0)
        snprintf(faked, sizeof(faked), "--faked-system-time %lld ", when);
    snprintf(cmd, sizeof(cmd),
             "gpg --batch %s--pinentry-mode loopback --passphrase \"%s\" --quick-gen-key \"%s\" "
             "ed25519 sign %s",
             faked, pass != NULL ? pass : "", uid, expire);
    if (gpghome_sh(home, cmd) != 0)
        return -1;
    return last_fpr(home, uid, "pub", fpr);
}

int gpghome_sign_at(const char *home, const char *fpr, long long when, const char *in,
                    const char *out)
{
    char cmd[8400];
    snprintf(cmd, sizeof(cmd),
             "gpg --batch --faked-system-time %lld --pinentry-mode loopback --passphrase '' "
             "--armor --detach-sign -u %s -o \"%s\" \"%s\"",
             when, fpr, out, in);
    return gpghome_sh(home, cmd);
}

int gpghome_add_subkey(const char *home, const char *fpr, const char *pass, char subfpr[41])
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "gpg --batch --pinentry-mode loopback --passphrase \"%s\" --quick-add-key %s "
             "ed25519 sign never",
             pass != NULL ? pass : "", fpr);
    if (gpghome_sh(home, cmd) != 0)
        return -1;
    return last_fpr(home, fpr, "sub", subfpr);
}

int gpghome_copy_public(const char *home, const char *fpr, const char *other)
{
    char cmd[4400];
    snprintf(cmd, sizeof(cmd), "gpg --batch --export %s | GNUPGHOME=\"%s\" gpg --batch --import",
             fpr, other);
    return gpghome_sh(home, cmd);
}

int gpghome_revoke(const char *home, const char *fpr)
{
    char cmd[4400];
    /* gpg stores the certificate with its armor line disarmed by a leading ":". */
    snprintf(cmd, sizeof(cmd),
             "sed \"s/^:-----BEGIN/-----BEGIN/\" \"%s/openpgp-revocs.d/%s.rev\" | "
             "gpg --batch --import",
             home, fpr);
    return gpghome_sh(home, cmd);
}

void gpghome_kill(const char *home)
{
    (void)gpghome_sh(home, "gpgconf --kill all");
}
