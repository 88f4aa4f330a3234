/* finch_logits.c - finch's logits for every position of given token ids, as
 * a .npy float32 [n, vocab]: the finch side of tools/peer_compare.py
 * (`finch generate --dump` writes only the last position's logits).
 *
 *   finch_logits -m MODEL --ids 1,2,3 | --ids-npy FILE.npy [-o OUT.npy]
 *                [--last] [-t THREADS] [--batch N] [--quant-math q8|fp32]
 *
 * The ids are fed in forward calls of --batch tokens (default 512, the
 * prefill batch of `finch generate`), as tools/llamacpp_logits.c does on the
 * llama.cpp side.  --quant-math chooses how products with quantized weights
 * are computed (finch_set_quant_math of issue 13, looked up at run time so
 * that this file builds against a finch without it).  Built by
 * tools/build_peer_logits.sh against build/libfinch.so. */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include "finch.h"
#include "peer_common.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *model, *ids, *ids_npy, *out, *quant_math;
    int last;
    long threads, batch;
} options;

static int fail(int code, const char *what, const char *detail) {
    fprintf(stderr, "finch_logits: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return code;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){ .threads = 1, .batch = 512 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--last")) { o->last = 1; continue; }
        if (i + 1 >= argc) return fail(2, a, "needs a value (or is unknown)");
        const char *v = argv[++i];
        if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "--ids")) o->ids = v;
        else if (!strcmp(a, "--ids-npy")) o->ids_npy = v;
        else if (!strcmp(a, "-o")) o->out = v;
        else if (!strcmp(a, "--quant-math")) {
            if (strcmp(v, "q8") && strcmp(v, "fp32")) return fail(2, "--quant-math: expected q8 or fp32", v);
            o->quant_math = v;
        }
        else if (!strcmp(a, "-t")) { if (parse_long(v, 1, 256, &o->threads)) return fail(2, "-t: not in 1..256", v); }
        else if (!strcmp(a, "--batch")) { if (parse_long(v, 1, 65536, &o->batch)) return fail(2, "--batch: not in 1..65536", v); }
        else return fail(2, "unknown option", a);
    }
    if (!o->model) return fail(2, "no model: give -m MODEL", NULL);
    if (!o->ids == !o->ids_npy) return fail(2, "give exactly one of --ids 1,2,3 and --ids-npy FILE.npy", NULL);
    return 0;
}

static int read_ids(const options *o, int32_t **ids, size_t *n) {
    if (o->ids) return peer_parse_id_list("finch_logits", o->ids, ids, n);
    size_t shape[8], ndim;
    void *data = NULL;
    if (finch_npy_read(o->ids_npy, FINCH_NPY_I32, &data, shape, &ndim)) return fail(2, "--ids-npy", finch_last_error());
    *ids = data;
    *n = ndim == 1 ? shape[0] : 0;
    if (*n == 0) return fail(2, "--ids-npy: not a non-empty 1-D array", o->ids_npy);
    return 0;
}

/* Every position's logits (or the last one's) into out. */
static int run(const finch_model *m, const options *o, const int32_t *ids, size_t n, float *out) {
    size_t vocab = m->cfg.vocab, step = (size_t)o->batch < n ? (size_t)o->batch : n;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= vocab) return fail(2, "a token id is negative or not below the vocabulary size", NULL);
    if (n > m->cfg.ctx_len) return fail(2, "more ids than the model's context length", NULL);
    finch_ctx *ctx = NULL;
    finch_kv_cache kv = { 0 };
    finch_status st = finch_ctx_new(m, (size_t)o->threads, step, &ctx);
    if (!st) st = finch_kv_init(&kv, &m->cfg, n);
    for (size_t p0 = 0; p0 < n && !st; p0 += step) {
        size_t len = n - p0 < step ? n - p0 : step;
        if (o->last) st = finch_forward(ctx, &kv, ids + p0, len, p0, NULL, p0 + len == n ? out : NULL, p0 + len == n);
        else st = finch_forward(ctx, &kv, ids + p0, len, p0, NULL, out + p0 * vocab, len);
    }
    finch_kv_free(&kv);
    finch_ctx_free(ctx);
    return st ? fail(1, "forward pass failed", finch_last_error()) : 0;
}

/* finch_set_quant_math(0 = Q8, 1 = FP32), found in the loaded libfinch; its
 * enum argument is passed as the unsigned int GCC and Clang give it. */
static int set_quant_math(const char *mode) {
    void (*set)(unsigned) = NULL;
    void *sym = dlsym(RTLD_DEFAULT, "finch_set_quant_math");
    memcpy(&set, &sym, sizeof set); /* object to function pointer, as POSIX allows */
    if (!set) return fail(2, "--quant-math: this finch build has no finch_set_quant_math", mode);
    set(!strcmp(mode, "fp32") ? 1u : 0u);
    return 0;
}

int main(int argc, char **argv) {
    options o;
    int32_t *ids = NULL;
    size_t n = 0;
    finch_model *m = NULL;
    float *logits = NULL;
    int rc = parse_args(argc, argv, &o);
    if (rc || (rc = read_ids(&o, &ids, &n))) goto done;
    if (o.quant_math && (rc = set_quant_math(o.quant_math))) goto done;
    if ((rc = peer_check_output("finch_logits", o.out))) goto done;
    if (finch_model_load(o.model, &m)) { rc = fail(2, "cannot load model", finch_last_error()); goto done; }
    size_t rows = o.last ? 1 : n, vocab = m->cfg.vocab;
    if (!(logits = malloc(rows * vocab * sizeof *logits))) { rc = fail(1, "out of memory", NULL); goto done; }
    if ((rc = run(m, &o, ids, n, logits))) goto done;
    size_t shape[2] = { rows, vocab };
    if (!o.out) peer_print_rows(logits, rows, vocab);
    else if (finch_npy_write(o.out, FINCH_NPY_F32, logits, shape, 2)) rc = fail(1, "-o", finch_last_error());
done:
    free(logits);
    finch_model_free(m);
    free(ids);
    return rc;
}
