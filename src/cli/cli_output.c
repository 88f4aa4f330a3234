/* cli_output.c - what `finch` writes, and how it stops: dump directories,
 * output files checked before the work, JSON strings as valid UTF-8,
 * signal handlers that remove temporaries, and stdout checked at exit.
 * docs/files.md states the rule these implement. */
#include "cli.h"
#include "finch_dump.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ dump rule */

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Is dir/meta.json the meta.json of a finch run or generate dump? */
static bool is_finch_meta(const char *dir) {
    char path[4200], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/meta.json", dir);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) return false;
    if (finch_read_text_file(path, &text, &len)) return false;
    cJSON *j = cJSON_Parse(text);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "command"), *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    bool ok = (cJSON_IsString(c) && (!strcmp(c->valuestring, "run") || !strcmp(c->valuestring, "generate"))) ||
              (cJSON_IsString(fmt) && !strcmp(fmt->valuestring, FINCH_DUMP_FORMAT)); /* finch_dump_write's */
    cJSON_Delete(j);
    free(text);
    return ok;
}

/* An existing dump target: 0 with *replace when it is empty or holds only
 * an earlier finch dump; otherwise the one-line refusal. */
static int check_existing_dump(const char *dir, bool *replace) {
    DIR *dp = opendir(dir);
    if (!dp) return cli_error("--dump %s: cannot read the directory: %s", dir, strerror(errno));
    struct dirent *e;
    char path[4400], stranger[256] = "";
    size_t n = 0;
    while ((e = readdir(dp)) != NULL && !stranger[0]) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        n++;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        bool dump_file = ends_with(e->d_name, ".npy") || !strcmp(e->d_name, "meta.json");
        if (!dump_file || lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            snprintf(stranger, sizeof stranger, "%.200s", e->d_name);
    }
    closedir(dp);
    if (stranger[0])
        return cli_error("--dump %s: the directory exists and is not a finch dump (it holds %s); choose another "
                         "directory", dir, stranger);
    if (n > 0 && !is_finch_meta(dir))
        return cli_error("--dump %s: the directory exists and is not a finch dump (no meta.json of finch run or "
                         "generate); choose another directory", dir);
    *replace = true;
    return 0;
}

/* The target's rule, checked before the work and again at the end. */
static int check_dump_target(const char *dir, bool *replace) {
    *replace = false;
    finch_status st = finch_outdir_check(dir); /* refuses symlinks and non-directories */
    if (st) return cli_fail(st, "--dump");
    struct stat sb;
    return lstat(dir, &sb) == 0 ? check_existing_dump(dir, replace) : 0;
}

int cli_dump_begin(cli_dump *d, const char *dir) {
    memset(d, 0, sizeof *d);
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    if (len == 0 || len >= sizeof d->path) return cli_error("--dump: bad directory name");
    memcpy(d->path, dir, len);
    d->path[len] = 0;
    return check_dump_target(d->path, &d->replace);
}

int cli_dump_create(cli_dump *d) {
    finch_status st = finch_outdir_begin(&d->dir, d->path);
    if (st) return cli_fail(st, "--dump");
    d->tmp = d->dir.tmp;
    d->active = true;
    return 0;
}

const char *cli_dump_path(cli_dump *d, const char *name) {
    static char buf[4200];
    snprintf(buf, sizeof buf, "%s/%s", d->tmp, name);
    return buf;
}

int cli_dump_npy(cli_dump *d, const char *name, finch_npy_type t, const void *data,
                 const size_t *shape, size_t ndim) {
    finch_status st = finch_npy_write(cli_dump_path(d, name), t, data, shape, ndim);
    return st ? cli_fail(st, "--dump") : 0;
}

int cli_dump_text(cli_dump *d, const char *name, const char *text) {
    return cli_write_text_file("--dump", cli_dump_path(d, name), text);
}

int cli_dump_commit(cli_dump *d) {
    if (!d->active) return 0;
    bool replace;
    int rc = check_dump_target(d->path, &replace); /* it may have changed during the run */
    if (rc) {
        cli_dump_abort(d);
        return rc;
    }
    d->active = false;
    finch_status st = finch_outdir_commit(&d->dir, replace);
    return st ? cli_fail(st, "--dump") : 0;
}

void cli_dump_abort(cli_dump *d) {
    if (!d->active) return;
    finch_outdir_abort(&d->dir);
    d->active = false;
}

/* ---------------------------------------------------------- output files */

int cli_output_check(const char *flag, const char *path, const char *const *inputs, size_t n_inputs) {
    finch_status st = finch_outfile_check(path);
    if (st) return cli_fail(st, flag);
    struct stat out, in;
    if (stat(path, &out) != 0) return 0; /* new: it cannot be an input */
    for (size_t i = 0; i < n_inputs; i++)
        if (inputs[i] && stat(inputs[i], &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino)
            return cli_error("%s %s is also an input (%s): choose another file", flag, path, inputs[i]);
    return 0;
}

int cli_write_text_file(const char *flag, const char *path, const char *text) {
    finch_status st = finch_outfile_write(path, text, strlen(text));
    return st ? cli_fail(st, flag) : 0;
}

void cli_json_string(cJSON *obj, const char *key, const char *s) {
    if (!s) {
        cJSON_AddNullToObject(obj, key);
        return;
    }
    char *clean = finch_utf8_clean(s, strlen(s));
    cJSON_AddStringToObject(obj, key, clean ? clean : "");
    free(clean);
}

/* --------------------------------------------------------------- signals */

static char mapped_path[1024]; /* for the SIGBUS message */

void cli_watch_mapped(const char *path) { snprintf(mapped_path, sizeof mapped_path, "%s", path); }

static void put(const char *s) {
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

/* Only async-signal-safe calls: write, unlink, rmdir, getdents, _exit. */
static void on_stop_signal(int sig) {
    finch_remove_temporaries();
    _exit(128 + sig);
}

/* A page of a mapped file that no longer exists (the file was truncated
 * while in use) raises SIGBUS on the next read of it, in whichever thread:
 * no read can be retried, so the run ends here, as one line. */
static void on_bus_error(int sig) {
    (void)sig;
    put("finch: error: ");
    put(mapped_path[0] ? mapped_path : "a mapped file");
    put(": the file shrank while in use (truncated or replaced in place); nothing was written\n");
    finch_remove_temporaries();
    _exit(EXIT_BAD_INPUT);
}

void cli_install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    int stops[] = { SIGINT, SIGTERM, SIGHUP };
    for (size_t i = 0; i < 3; i++) {
        struct sigaction old;
        /* a signal ignored by the parent (nohup, background jobs) stays ignored */
        if (sigaction(stops[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(stops[i], &sa, NULL);
    }
    sa.sa_handler = on_bus_error;
    sigaction(SIGBUS, &sa, NULL);
}

/* ---------------------------------------------------------------- stdout */

void cli_guard_std_fds(void) {
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int got = open("/dev/null", O_RDONLY);
            if (got >= 0 && got != fd) { /* cannot happen: open takes the lowest free fd */
                dup2(got, fd);
                close(got);
            }
        }
}

/* stdout's writes go through here, so the first failure's reason is kept
 * for the message at exit, whatever stdio does after it. */
static int stdout_errno;

static ssize_t stdout_write(void *cookie, const char *buf, size_t n) {
    (void)cookie;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(1, buf + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (!stdout_errno) stdout_errno = w < 0 ? errno : EIO;
            return done ? (ssize_t)done : -1;
        }
        done += (size_t)w;
    }
    return (ssize_t)n;
}

void cli_watch_stdout(void) {
    FILE *f = fopencookie(NULL, "w", (cookie_io_functions_t){ .write = stdout_write });
    if (!f) return; /* plain stdout: failures still detected, the reason may be generic */
    setvbuf(f, NULL, isatty(1) ? _IOLBF : _IOFBF, BUFSIZ);
    stdout = f;
}

int cli_finish_stdout(int rc) {
    errno = 0;
    bool ok = fflush(stdout) == 0 && !ferror(stdout);
    int e = errno;
    if (fclose(stdout) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (ok && !stdout_errno) return rc;
    cli_error("cannot write to standard output: %s", strerror(stdout_errno ? stdout_errno : e ? e : EIO));
    return rc ? rc : EXIT_BAD_INPUT;
}
