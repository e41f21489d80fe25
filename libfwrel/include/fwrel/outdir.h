/*
 * outdir.h - a directory of outputs written all or none (fwrel-keygen --provision).
 *
 * The files are written into a staging directory beside the target, on the same
 * filesystem: PARENT/.BASE.fwrel-staging-XXXXXX (mkdtemp, 0700; never a name the
 * caller asked for). fwrel_outdir_publish() then publishes them at once: a new
 * target is the staging directory renamed (renameat2 RENAME_NOREPLACE); into an
 * existing directory (FWREL_OUT_FORCE) each file is linked or renamed, a file it
 * replaces kept in the staging directory until fwrel_outdir_finish(), so that
 * fwrel_outdir_abort() can put it back. Whatever else the directory holds stays.
 *
 * A process killed before the publication leaves only the staging directory
 * (0700, its name says what it is); the next fwrel_outdir_open() of the same
 * target removes such leftovers.
 */
#ifndef FWREL_OUTDIR_H
#define FWREL_OUTDIR_H

#include <stddef.h>

#include "fwrel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The staging directory's name after the target's base name. */
#define FWREL_OUTDIR_STAGING ".fwrel-staging-"

/** A directory being written; opaque. */
typedef struct fwrel_outdir fwrel_outdir;

/**
 * Start writing into the directory dir.
 *
 * @param out    receives the handle: fwrel_outdir_publish() then fwrel_outdir_finish(),
 *               or fwrel_outdir_abort()
 * @param dir    the target directory
 * @param flags  FWREL_OUT_FORCE (io.h): dir may exist, its files of the same names are replaced
 * @return 0; FWREL_EIO "exists (use --force to write into it)" (dir exists, no
 *         FWREL_OUT_FORCE, or it is not a directory), "cannot create a staging
 *         directory: reason"; FWREL_EUSAGE for a path too long
 */
int fwrel_outdir_open(fwrel_outdir **out, const char *dir, unsigned flags) FWREL_WUR;

/**
 * The path to write the file `name` (a plain file name, no '/') at: inside the
 * staging directory. The name is recorded for the publication; write the file
 * with fwrel_out (io.h), with the mode it must have.
 * @return 0; FWREL_EUSAGE for a name with '/', a dot first, or too long
 */
int fwrel_outdir_path(char *out, size_t size, fwrel_outdir *od, const char *name) FWREL_WUR;

/**
 * Publish every file written (fsync'd first). Until fwrel_outdir_finish(), the
 * publication can be undone with fwrel_outdir_abort().
 * @return 0; FWREL_EIO (what was published is taken back; abort the handle)
 */
int fwrel_outdir_publish(fwrel_outdir *od) FWREL_WUR;

/** Keep what was published; remove the staging directory and free. NULL is fine. */
void fwrel_outdir_finish(fwrel_outdir *od);

/**
 * Undo: take back what was published (replaced files put back), remove the
 * staging directory and free. NULL is fine.
 */
void fwrel_outdir_abort(fwrel_outdir *od);

#ifdef __cplusplus
}
#endif
#endif
