/* outfile.h - every file and directory finch writes goes through here
 * (docs/files.md states the rule):
 *   - the target is checked before any work: absent, or a regular file (a
 *     directory for finch_outdir); a symlink, device, FIFO or socket is
 *     refused, and so is a path whose parent is not a directory;
 *   - the bytes go to a temporary beside the target (same directory, so the
 *     rename is atomic), are flushed and fsync'ed, and only a complete file
 *     is renamed into place; on any failure the temporary is removed and the
 *     error names the target and the system's reason;
 *   - live temporaries are registered, so a signal handler (installed by the
 *     program, never by the library) can remove them with
 *     finch_remove_temporaries(), which is async-signal-safe. */
#ifndef FINCH_OUTFILE_H
#define FINCH_OUTFILE_H

#include "finch.h"

#include <stdbool.h>
#include <stdio.h>

/* FINCH_OK when path may be written: absent (its parent a directory), or an
 * existing regular file.  FINCH_ERR_ARG naming the path otherwise. */
finch_status finch_outfile_check(const char *path);

typedef struct {
    FILE *f;      /* write here (binary) between open and commit/abort */
    char *path;   /* the target */
    char *tmp;    /* the temporary beside it */
    int slot;     /* registry slot, -1 when none */
} finch_outfile;

/* Check the target, create the temporary (mode 0644 before umask). */
finch_status finch_outfile_open(finch_outfile *o, const char *path);
/* Flush, fsync and rename into place; on failure remove the temporary and
 * fail with "cannot write PATH: <reason>".  Always releases o. */
finch_status finch_outfile_commit(finch_outfile *o);
/* Remove the temporary (no-op on a zeroed or finished finch_outfile). */
void finch_outfile_abort(finch_outfile *o);
/* open + one write of n bytes + commit. */
finch_status finch_outfile_write(const char *path, const void *data, size_t n);

/* A directory made as a whole: files go into `tmp` (beside the target),
 * then the directory is renamed into place.  The rule for an existing
 * target is the caller's (src/cli/cli_dump.c); finch_outdir_commit moves an
 * existing target aside only when `replace` is true. */
typedef struct {
    char *path, *tmp;
    int slot;
} finch_outdir;

/* FINCH_OK when path is absent (its parent a directory) or a directory. */
finch_status finch_outdir_check(const char *path);
finch_status finch_outdir_begin(finch_outdir *d, const char *path);
finch_status finch_outdir_commit(finch_outdir *d, bool replace);
void finch_outdir_abort(finch_outdir *d);

/* Remove a directory and the regular files directly in it (no recursion);
 * async-signal-safe on Linux. */
void finch_remove_flat_dir(const char *dir);

/* Remove every registered temporary: files first, then directories.
 * Async-signal-safe: a handler may call it, then _exit. */
void finch_remove_temporaries(void);

/* Register a temporary made elsewhere (is_dir: a flat directory); returns
 * the slot (-1 when the table is full: the temporary still works, it is
 * just not removed on a signal).  finch_temp_forget(slot) drops it. */
int finch_temp_register(const char *path, bool is_dir);
void finch_temp_forget(int slot);

#endif
