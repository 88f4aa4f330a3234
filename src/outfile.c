/* outfile.c - atomic output files and directories, and the registry of
 * live temporaries (outfile.h; the rule is in docs/files.md). */
#include "outfile.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

/* ------------------------------------------------------------- registry */

/* Fixed slots, written by the thread that writes the outputs and read by a
 * signal handler: the path is complete before `used` is set. */
enum { N_SLOTS = 32, SLOT_PATH = 4096 };
static struct {
    volatile sig_atomic_t used;
    bool is_dir;
    char path[SLOT_PATH];
} slots[N_SLOTS];

int finch_temp_register(const char *path, bool is_dir) {
    size_t n = strlen(path);
    if (n >= SLOT_PATH) return -1;
    for (int i = 0; i < N_SLOTS; i++)
        if (!slots[i].used) {
            memcpy(slots[i].path, path, n + 1);
            slots[i].is_dir = is_dir;
            __atomic_signal_fence(__ATOMIC_SEQ_CST);
            slots[i].used = 1;
            return i;
        }
    return -1;
}

void finch_temp_forget(int slot) {
    if (slot >= 0 && slot < N_SLOTS) slots[slot].used = 0;
}

void finch_remove_flat_dir(const char *dir) {
#ifdef __linux__
    /* getdents64 and unlinkat are system calls: safe in a signal handler,
     * where opendir (malloc) is not. */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        char buf[4096] __attribute__((aligned(8)));
        long n;
        while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
            for (long off = 0; off < n;) {
                const char *rec = buf + off;
                unsigned short reclen;
                memcpy(&reclen, rec + 16, sizeof reclen); /* d_ino 8, d_off 8, d_reclen 2, d_type 1 */
                const char *name = rec + 19;
                if (strcmp(name, ".") && strcmp(name, "..")) unlinkat(fd, name, 0);
                off += reclen;
            }
        }
        close(fd);
    }
#endif
    rmdir(dir);
}

void finch_remove_temporaries(void) {
    for (int pass = 0; pass < 2; pass++) /* files, then directories */
        for (int i = 0; i < N_SLOTS; i++) {
            if (!slots[i].used || slots[i].is_dir != (pass == 1)) continue;
            if (pass == 0) unlink(slots[i].path);
            else finch_remove_flat_dir(slots[i].path);
            slots[i].used = 0;
        }
}

/* ---------------------------------------------------------------- checks */

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* The directory part of path ("." when none), malloc'ed. */
static char *parent_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return dup_str(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *p = malloc(n + 1);
    if (p) { memcpy(p, path, n); p[n] = 0; }
    return p;
}

/* The target: absent with a directory as parent, or of the wanted kind. */
static finch_status check_target(const char *path, bool want_dir) {
    if (!*path) return finch_fail(FINCH_ERR_ARG, "an output path is empty");
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) return FINCH_OK;
        return finch_fail(FINCH_ERR_ARG, "%s exists and is not a %s%s", path,
                          want_dir ? "directory" : "regular file", S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
    }
    if (errno != ENOENT) return finch_fail(FINCH_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    char *dir = parent_of(path);
    if (!dir) return finch_fail(FINCH_ERR_NOMEM, "out of memory");
    bool ok = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
    int e = errno;
    free(dir);
    if (!ok) return finch_fail(FINCH_ERR_IO, "cannot write %s: %s", path, strerror(e ? e : ENOTDIR));
    return FINCH_OK;
}

finch_status finch_outfile_check(const char *path) { return check_target(path, false); }
finch_status finch_outdir_check(const char *path) { return check_target(path, true); }

/* ----------------------------------------------------------------- files */

/* The FILE's writes go through write(2) here, so the first failure's
 * errno (ENOSPC, EFBIG, EIO) is kept for the message whatever stdio does
 * with its buffer afterwards. */
typedef struct {
    int fd;
    int err;
} sink;

static ssize_t sink_write(void *cookie, const char *buf, size_t n) {
    sink *s = cookie;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(s->fd, buf + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (!s->err) s->err = w < 0 ? errno : ENOSPC;
            return done ? (ssize_t)done : -1;
        }
        done += (size_t)w;
    }
    return (ssize_t)n;
}

static int sink_close(void *cookie) {
    sink *s = cookie;
    int rc = 0;
    if (!s->err && fsync(s->fd) != 0) s->err = errno;
    if (close(s->fd) != 0 && !s->err) s->err = errno;
    if (s->err) { errno = s->err; rc = -1; }
    free(s);
    return rc;
}

static void outfile_release(finch_outfile *o) {
    finch_temp_forget(o->slot);
    free(o->path);
    free(o->tmp);
    memset(o, 0, sizeof *o);
    o->slot = -1;
}

finch_status finch_outfile_open(finch_outfile *o, const char *path) {
    memset(o, 0, sizeof *o);
    o->slot = -1;
    finch_status st = check_target(path, false);
    if (st) return st;
    size_t n = strlen(path) + 16;
    o->path = dup_str(path);
    o->tmp = malloc(n);
    sink *s = malloc(sizeof *s);
    if (!o->path || !o->tmp || !s) {
        free(s);
        outfile_release(o);
        return finch_fail(FINCH_ERR_NOMEM, "out of memory");
    }
    snprintf(o->tmp, n, "%s.tmp.XXXXXX", path);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* a signal sees the temporary registered or absent */
    int fd = mkostemp(o->tmp, O_CLOEXEC);
    if (fd >= 0) o->slot = finch_temp_register(o->tmp, false);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (fd < 0) {
        st = finch_fail(FINCH_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        free(s);
        outfile_release(o);
        return st;
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask); /* mkstemp makes 0600: outputs are not secret */
    *s = (sink){ fd, 0 };
    o->f = fopencookie(s, "wb", (cookie_io_functions_t){ .write = sink_write, .close = sink_close });
    if (!o->f) {
        close(fd);
        free(s);
        finch_outfile_abort(o);
        return finch_fail(FINCH_ERR_NOMEM, "out of memory");
    }
    return FINCH_OK;
}

finch_status finch_outfile_commit(finch_outfile *o) {
    if (!o->f) return finch_fail(FINCH_ERR_INTERNAL, "output file not open");
    bool ok = fflush(o->f) == 0 && !ferror(o->f);
    int e = errno;
    if (fclose(o->f) != 0 && ok) { ok = false; e = errno; }
    else if (!ok) e = errno ? e : EIO;
    o->f = NULL;
    if (ok && rename(o->tmp, o->path) != 0) { ok = false; e = errno; }
    finch_status st = FINCH_OK;
    if (!ok) {
        unlink(o->tmp);
        st = finch_fail(FINCH_ERR_IO, "cannot write %s: %s", o->path, strerror(e ? e : EIO));
    }
    outfile_release(o);
    return st;
}

void finch_outfile_abort(finch_outfile *o) {
    if (o->f) fclose(o->f);
    o->f = NULL;
    if (o->tmp) unlink(o->tmp);
    if (o->path || o->tmp) outfile_release(o);
}

finch_status finch_outfile_write(const char *path, const void *data, size_t n) {
    finch_outfile o;
    finch_status st = finch_outfile_open(&o, path);
    if (st) return st;
    if (n) fwrite(data, 1, n, o.f);
    return finch_outfile_commit(&o);
}

/* ----------------------------------------------------------- directories */

static void outdir_release(finch_outdir *d) {
    finch_temp_forget(d->slot);
    free(d->path);
    free(d->tmp);
    memset(d, 0, sizeof *d);
    d->slot = -1;
}

finch_status finch_outdir_begin(finch_outdir *d, const char *path) {
    memset(d, 0, sizeof *d);
    d->slot = -1;
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    d->path = malloc(len + 1);
    d->tmp = malloc(len + 16);
    if (!d->path || !d->tmp) {
        outdir_release(d);
        return finch_fail(FINCH_ERR_NOMEM, "out of memory");
    }
    memcpy(d->path, path, len);
    d->path[len] = 0;
    finch_status st = check_target(d->path, true);
    if (!st) {
        snprintf(d->tmp, len + 16, "%s.tmp.XXXXXX", d->path);
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old); /* registered or absent when a signal comes */
        if (!mkdtemp(d->tmp)) st = finch_fail(FINCH_ERR_IO, "cannot write %s: %s", d->path, strerror(errno));
        else d->slot = finch_temp_register(d->tmp, true);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (st) {
        outdir_release(d);
        return st;
    }
    return FINCH_OK;
}

finch_status finch_outdir_commit(finch_outdir *d, bool replace) {
    if (!d->tmp) return finch_fail(FINCH_ERR_INTERNAL, "output directory not begun");
    size_t n = strlen(d->path) + 32;
    char *old = malloc(n);
    if (!old) { finch_outdir_abort(d); return finch_fail(FINCH_ERR_NOMEM, "out of memory"); }
    snprintf(old, n, "%s.old.XXXXXX", d->path);
    bool moved = false;
    finch_status st = FINCH_OK;
    if (replace) { /* an empty directory takes the old one's name meanwhile */
        if (!mkdtemp(old) || rename(d->path, old) != 0)
            st = finch_fail(FINCH_ERR_IO, "cannot replace %s: %s", d->path, strerror(errno));
        else moved = true;
    }
    if (!st && rename(d->tmp, d->path) != 0) {
        st = finch_fail(FINCH_ERR_IO, "cannot write %s: %s", d->path, strerror(errno));
        if (moved) rename(old, d->path);
        moved = false;
    }
    if (moved) finch_remove_flat_dir(old);
    else if (replace) rmdir(old);
    free(old);
    if (st) finch_outdir_abort(d);
    else outdir_release(d);
    return st;
}

void finch_outdir_abort(finch_outdir *d) {
    if (d->tmp) finch_remove_flat_dir(d->tmp);
    if (d->path || d->tmp) outdir_release(d);
}
