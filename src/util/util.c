/* util.c - errors, allocation, file mapping, half floats, row conversion. */
#include "util.h"
#include "quants.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ errors */

static _Thread_local char last_error[512];

const char *finch_last_error(void) { return last_error; }

const char *finch_status_name(finch_status st) {
    switch (st) {
    case FINCH_OK: return "ok";
    case FINCH_ERR_IO: return "i/o error";
    case FINCH_ERR_FORMAT: return "format error";
    case FINCH_ERR_UNSUPPORTED: return "unsupported";
    case FINCH_ERR_ARG: return "bad argument";
    case FINCH_ERR_NOMEM: return "out of memory";
    case FINCH_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}

finch_status finch_fail(finch_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

finch_status finch_fail_prefix(finch_status st, const char *fmt, ...) {
    char prefix[256], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof last_error - 3) n = sizeof last_error - 3;
    memcpy(last_error, prefix, n);
    memcpy(last_error + n, ": ", 2);
    size_t rest = sizeof last_error - n - 3, m = strlen(old);
    if (m > rest) m = rest;
    memcpy(last_error + n + 2, old, m);
    last_error[n + 2 + m] = 0;
    return st;
}

/* -------------------------------------------------------------- allocation */

void *finch_alloc(size_t n, size_t size) {
    size_t bytes;
    if (!finch_mul_ok(n, size, &bytes)) {
        finch_fail(FINCH_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (!p) finch_fail(FINCH_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *finch_zalloc(size_t n, size_t size) {
    size_t bytes;
    if (!finch_mul_ok(n, size, &bytes)) {
        finch_fail(FINCH_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) finch_fail(FINCH_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

/* ------------------------------------------------------------------- files */

/* ---- --load read: the file read into anonymous memory backed by 2 MB
 * pages where the kernel gives them (MADV_HUGEPAGE): one TLB entry covers
 * 512 pages of weights, so the streams of decode's matvec (8-16 rows in
 * flight, one 4 KB page each) and of the GEMM's packs rarely walk the page
 * tables.  Costs a private copy (no page cache sharing) and the read time
 * at load (finch_set_load_mode in finch.h). */
#define READ_MIN_BYTES ((size_t)64 << 20) /* smaller files: mapped as usual */
#define HUGE_PAGE ((size_t)2 << 20)

static _Atomic int load_mode = FINCH_LOAD_MMAP;

void finch_set_load_mode(finch_load_mode mode) { load_mode = (int)mode; }

finch_load_mode finch_get_load_mode(void) { return (finch_load_mode)load_mode; }

bool finch_load_reads(size_t size) {
    finch_load_mode mode = finch_get_load_mode();
    if (size < READ_MIN_BYTES || mode == FINCH_LOAD_MMAP) return false;
    if (mode == FINCH_LOAD_READ) return true;
    size_t avail; /* AUTO: a private copy only where it leaves room for the rest */
    return finch_memory_available(&avail) == FINCH_OK && size <= avail / 2;
}

static finch_status read_into_memory(int fd, const char *path, size_t size, finch_map *m) {
    size_t len = (size + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return finch_fail(FINCH_ERR_NOMEM, "cannot allocate %zu bytes to read %s", size, path);
#ifdef MADV_HUGEPAGE
    madvise(p, len, MADV_HUGEPAGE); /* a hint: without it the read still works */
#endif
    for (size_t done = 0; done < size;) {
        size_t want = size - done < ((size_t)1 << 30) ? size - done : ((size_t)1 << 30);
        ssize_t got = read(fd, p + done, want);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            munmap(p, len);
            return finch_fail(FINCH_ERR_IO, "cannot read %s: %s", path, got < 0 ? strerror(errno) : "file shrank");
        }
        done += (size_t)got;
    }
    mprotect(p, len, PROT_READ);
    m->data = p;
    m->size = size;
    m->mapped = len;
    m->private_copy = true;
    return FINCH_OK;
}

finch_status finch_map_file(const char *path, finch_map *m) {
    m->data = NULL;
    m->size = m->mapped = 0;
    m->private_copy = false;
    /* non-blocking: a FIFO given as a model must not hang in open() */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return finch_fail(FINCH_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return finch_fail(FINCH_ERR_IO, "%s is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return finch_fail(FINCH_ERR_FORMAT, "%s is empty", path);
    }
    if (finch_load_reads((size_t)st.st_size)) {
        finch_status rs = read_into_memory(fd, path, (size_t)st.st_size, m);
        close(fd);
        return rs;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return finch_fail(FINCH_ERR_IO, "cannot map %s: %s", path, strerror(errno));
    m->data = p;
    m->size = m->mapped = (size_t)st.st_size;
    return FINCH_OK;
}

void finch_unmap(finch_map *m) {
    if (m->data) munmap((void *)m->data, m->mapped);
    m->data = NULL;
    m->size = m->mapped = 0;
}

/* Open for reading without hanging on a FIFO with no writer yet (then
 * wait for one, as reading a FIFO means); directories are refused, and
 * with `regular` everything but a regular file. */
static finch_status open_for_reading(const char *path, bool regular, int *fd_out) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return finch_fail(FINCH_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode) || (regular && !S_ISREG(st.st_mode))) {
        close(fd);
        return finch_fail(FINCH_ERR_IO, regular ? "%s is not a regular file" : "%s is a directory", path);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    *fd_out = fd;
    return FINCH_OK;
}

static finch_status read_whole(const char *path, bool text, bool regular, char **buf, size_t *len) {
    *buf = NULL;
    int fd = -1;
    finch_status st = open_for_reading(path, regular, &fd);
    if (st) return st;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b && st == FINCH_OK) {
        if (n + 1 >= cap) { /* grow, within the bound */
            char *nb = cap >= FINCH_MAX_TEXT_BYTES ? NULL : realloc(b, cap * 2);
            if (!nb) break;
            b = nb;
            cap *= 2;
        }
        ssize_t got = read(fd, b + n, cap - n - 1);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) st = finch_fail(FINCH_ERR_IO, "cannot read %s: %s", path, strerror(errno));
        if (got <= 0) break;
        const char *nul = text ? memchr(b + n, 0, (size_t)got) : NULL; /* fail at once, not after gigabytes */
        if (nul) st = finch_fail(FINCH_ERR_FORMAT, "%s holds a NUL byte at byte %zu", path, n + (size_t)(nul - (b + n)));
        n += (size_t)got;
    }
    close(fd);
    if (st == FINCH_OK && (!b || n + 1 >= cap))
        st = !b || cap < FINCH_MAX_TEXT_BYTES ? finch_fail(FINCH_ERR_NOMEM, "out of memory reading %s", path)
                                              : finch_fail(FINCH_ERR_FORMAT, "%s is longer than %zu MiB", path,
                                                           (size_t)FINCH_MAX_TEXT_BYTES >> 20);
    if (st) { free(b); return st; }
    b[n] = 0;
    *buf = b;
    if (len) *len = n;
    return FINCH_OK;
}

finch_status finch_read_file(const char *path, char **buf, size_t *len) {
    return read_whole(path, false, false, buf, len);
}

finch_status finch_read_text_file(const char *path, char **buf, size_t *len) {
    return read_whole(path, true, false, buf, len);
}

finch_status finch_read_regular_text_file(const char *path, char **buf, size_t *len) {
    return read_whole(path, true, true, buf, len);
}

/* -------------------------------------------------------------- half float */

float finch_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { mant <<= 1; e++; } while (!(mant & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) { /* a NaN comes out quiet, as F16C's vcvtph2ps gives it */
        bits = sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    union { uint32_t u; float f; } v = { bits };
    return v.f;
}

uint16_t finch_f32_to_f16(float f) {
    union { float f; uint32_t u; } v = { f };
    uint32_t x = v.u, sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf, or a quiet NaN with the payload's top bits, as F16C's vcvtps2ph */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 | ((absx >> 13) & 0x3ff) : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* overflow -> inf */
    if (absx < 0x38800000u) { /* subnormal half or zero */
        if (absx < 0x33000000u) return (uint16_t)sign;
        uint32_t mant = (absx & 0x7fffff) | 0x800000;
        int shift = 113 - (int)(absx >> 23) + 13; /* 14..24 */
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((absx >> 13) - ((127 - 15) << 10));
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)(sign | half);
}

uint16_t finch_f32_to_bf16(float f) {
    union { float f; uint32_t u; } v = { f };
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40); /* quiet nan */
    uint32_t lsb = (v.u >> 16) & 1;
    return (uint16_t)((v.u + 0x7fff + lsb) >> 16);
}

/* ------------------------------------------------------------ row convert */

void finch_row_to_f32(finch_dtype t, const void *row, float *out, size_t n) {
    switch (t) {
    case FINCH_F32: memcpy(out, row, n * sizeof(float)); break;
    case FINCH_F16: {
        const uint16_t *h = row;
        for (size_t i = 0; i < n; i++) out[i] = finch_f16_to_f32(h[i]);
        break;
    }
    case FINCH_BF16: {
        const uint16_t *h = row;
        for (size_t i = 0; i < n; i++) out[i] = finch_bf16_to_f32(h[i]);
        break;
    }
    default: finch_dequantize_row(t, row, out, n); break; /* quants.c */
    }
}

/* Q8_0 as ggml defines it: d = max|x| / 127, q = round(x / d). */
void finch_row_from_f32(finch_dtype t, const float *in, void *row, size_t n) {
    switch (t) {
    case FINCH_F32: memcpy(row, in, n * sizeof(float)); break;
    case FINCH_F16: {
        uint16_t *h = row;
        for (size_t i = 0; i < n; i++) h[i] = finch_f32_to_f16(in[i]);
        break;
    }
    case FINCH_BF16: {
        uint16_t *h = row;
        for (size_t i = 0; i < n; i++) h[i] = finch_f32_to_bf16(in[i]);
        break;
    }
    case FINCH_Q8_0: {
        finch_block_q8_0 *b = row;
        for (size_t i = 0; i < n / FINCH_QK8_0; i++) {
            const float *x = in + i * FINCH_QK8_0;
            float amax = 0;
            for (size_t j = 0; j < FINCH_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
            float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
            b[i].d = finch_f32_to_f16(d);
            for (size_t j = 0; j < FINCH_QK8_0; j++) b[i].qs[j] = (int8_t)roundf(x[j] * id);
        }
        break;
    }
    case FINCH_Q4_0: finch_quantize_q4_0(in, row, n); break;
    default: break; /* no writer for the other quantized types */
    }
}

const char *finch_dtype_name(finch_dtype t) {
    switch (t) {
    case FINCH_F32: return "f32";
    case FINCH_F16: return "f16";
    case FINCH_BF16: return "bf16";
    default: return finch_ggml_type_name((uint32_t)t);
    }
}

size_t finch_row_bytes(finch_dtype t, size_t n) {
    size_t out;
    switch (t) {
    case FINCH_F32: return finch_mul_ok(n, 4, &out) ? out : 0;
    case FINCH_F16:
    case FINCH_BF16: return finch_mul_ok(n, 2, &out) ? out : 0;
    default: {
        const finch_quant_traits *q = finch_quant_traits_of(t);
        if (!q || n % q->block) return 0;
        return (n / q->block) * q->bytes;
    }
    }
}

/* ------------------------------------------------------------------- misc */

size_t finch_num_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

double finch_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
