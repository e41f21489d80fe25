/*
 * preflight.h - what a release checks before any private key is opened (docs/bundle.md
 * "Preflight"): the export templates found, every export the policy names known and able to take
 * this release, the approvers' and the tag signer's secret keys present, the output writable.
 * fwrel-bundle --check-policy runs the policy's part of it.
 */
#ifndef FWREL_PREFLIGHT_H
#define FWREL_PREFLIGHT_H

#include <stddef.h>

#include "fwrel/error.h"
#include "fwrel/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The export template root. `given` (--templates) when not NULL, as it is; else the first
 * directory of: the source tree's templates/ when the running executable is in the build tree it
 * was built in; <prefix>/share/fwrel/templates where <prefix> is the directory above the running
 * executable's (/proc/self/exe: an installed or unpacked package, wherever it was carried); the
 * configured install path.
 *
 * @param out   receives the path
 * @param size  out's capacity
 * @return 0; FWREL_EIO "no export templates (tried A, B, C): give --templates DIR" when none is a
 *         directory (a `given` one that is not: "export templates DIR: REASON")
 */
int fwrel_preflight_templates(char *out, size_t size, const char *given) FWREL_WUR;

/**
 * Every export the policy names exists under root and takes the policy's settings: the rule is
 * fwrel_export_check_policy()'s (a misspelt name refused with the known names as a hint), with
 * the root that fwrel_preflight_templates() found.
 *
 * @return 0, or the errors of fwrel_export_check_policy()
 */
int fwrel_preflight_exports(const fwrel_policy *p, const char *root) FWREL_WUR;

#ifdef __cplusplus
}
#endif
#endif
