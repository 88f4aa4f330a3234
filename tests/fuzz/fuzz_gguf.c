/* fuzz_gguf.c - the GGUF reader, then the model binder on what it accepts.
 *
 * gguf_parse on the bytes; when it succeeds, every metadata value is read
 * back through the typed getters (every array element too) and the first
 * rows of every tensor are converted, all inside the input.  Then the same
 * bytes go through finch_model_load (as a memfd), which adds the
 * hyperparameter checks, the weight binding by name and shape, and the
 * tokenizer the file carries. */
#include "fuzz_common.h"
#include "gguf.h"

static FILE *describe_sink;

static void walk_metadata(const gguf_file *g) {
    char key[256];
    for (size_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        size_t n = kv->key.len < sizeof key - 1 ? kv->key.len : sizeof key - 1;
        memcpy(key, kv->key.ptr, n);
        key[n] = 0;
        uint64_t u;
        float f;
        gguf_str s;
        if (gguf_get_u64(g, key, &u)) fuzz_sink ^= (uint8_t)u;
        if (gguf_get_f32(g, key, &f)) fuzz_sink ^= (uint8_t)(f == f);
        if (gguf_get_str(g, key, &s)) fuzz_touch(s.ptr, s.len);
        if (kv->type != GGUF_ARRAY) continue;
        for (size_t e = 0; e < kv->v.arr.n; e++) {
            int64_t iv;
            float fv;
            if (gguf_arr_get_i64(kv, e, &iv)) fuzz_sink ^= (uint8_t)iv;
            if (gguf_arr_get_f32(kv, e, &fv)) fuzz_sink ^= (uint8_t)(fv == fv);
            if (kv->v.arr.strs) fuzz_touch(kv->v.arr.strs[e].ptr, kv->v.arr.strs[e].len);
        }
        /* Past the end must be refused, not read. */
        int64_t iv;
        float fv;
        if (gguf_arr_get_i64(kv, kv->v.arr.n, &iv) || gguf_arr_get_f32(kv, kv->v.arr.n, &fv)) abort();
    }
}

static void walk_tensors(const gguf_file *g) {
    for (size_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        fuzz_touch(t->name.ptr, t->name.len);
        /* The whole tensor must lie inside the input. */
        if (t->nbytes) {
            fuzz_touch(t->data, 1);
            fuzz_touch((const uint8_t *)t->data + t->nbytes - 1, 1);
        }
        fuzz_rows(t->type, t->data, t->nbytes, t->ne[0]);
    }
}

static void load_model(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_memfd(data, size, path, sizeof path);
    if (fd < 0) return;
    finch_model *m = NULL;
    finch_status st = finch_model_load(path, &m);
    fuzz_check_status(st);
    if (st == FINCH_OK) {
        if (!describe_sink) describe_sink = fopen("/dev/null", "w");
        if (describe_sink) finch_model_describe(m, describe_sink);
        finch_model_free(m);
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file g;
    finch_status st = gguf_parse(data, size, &g);
    fuzz_check_status(st);
    if (st != FINCH_OK) return 0;
    walk_metadata(&g);
    walk_tensors(&g);
    gguf_close(&g);
    load_model(data, size);
    return 0;
}
