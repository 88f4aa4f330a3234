/* test_wpack.c - packed weights (kernels_wpack.c): the layout round-trips
 * byte for byte, every table's vec_dotp gives finch_vec_dot_ref's bits,
 * and a packed weight gives every consumer (decode, small batches, the
 * quantized GEMM, FP32 arithmetic, the scalar fallback, the reference
 * matmul, row access) the bits of the unpacked one. */
#include "kernelutil.h"
#include "kernels_internal.h"

static const finch_dtype pack_types[] = {FINCH_Q4_0, FINCH_IQ4_NL, FINCH_Q4_1, FINCH_Q5_0, FINCH_Q5_1,
                                         FINCH_Q4_K, FINCH_Q5_K, FINCH_Q6_K};

/* Row lengths of type t that the tests pack: one block, several, a
 * length that is not a power of two, and a model's. */
static const size_t *test_cols(finch_dtype t) {
    static const size_t cols32[] = {32, 32 * 3, 256 * 2 + 32, 2048}, cols256[] = {256, 512, 256 * 11, 2048};
    return finch_quant_traits_of(t)->block == FINCH_QK_K ? cols256 : cols32;
}
#define N_COLS 4
#define N_PACK (sizeof pack_types / sizeof pack_types[0])

/* f16 scales of every kind a file may hold: normal, negative, subnormal,
 * zero, large (the products stay finite). */
static uint16_t pick_scale(void) {
    static const uint16_t s[] = {0x2148, 0xA148, 0x0001, 0x8001, 0x03FF, 0x0000, 0x3C00, 0xBC00, 0x5800, 0x1E66};
    return s[rng_next() % (sizeof s / sizeof s[0])];
}

/* rows x cols random blocks of t: random quants, some blocks all 0x00 or
 * all 0xFF (the extreme quants), scales from pick_scale (owned). */
static finch_weight packable_weight(finch_dtype t, size_t rows, size_t cols) {
    const finch_quant_traits *q = finch_quant_traits_of(t);
    size_t blocks = rows * cols / q->block;
    uint8_t *d = malloc(blocks * q->bytes);
    assert_non_null(d);
    for (size_t b = 0; b < blocks; b++) {
        uint8_t *p = d + b * q->bytes;
        uint64_t kind = rng_next() % 8;
        for (size_t i = 0; i < q->bytes; i++) p[i] = kind == 0 ? 0x00 : kind == 1 ? 0xFF : (uint8_t)(rng_next() >> 32);
        for (size_t s = 0; s < q->n_scales; s++) {
            uint16_t h = pick_scale();
            memcpy(p + q->scale_off[s], &h, 2);
        }
    }
    return (finch_weight){d, t, rows, cols, false};
}

/* A copy of w packed (owned). */
static finch_weight packed_copy(const finch_weight *w) {
    size_t bytes = w->rows * finch_row_bytes(w->type, w->cols);
    void *d = malloc(bytes);
    assert_non_null(d);
    memcpy(d, w->data, bytes);
    finch_weight p = *w;
    assert_ok(finch_weight_pack(NULL, &p, d));
    assert_true(p.packed);
    return p;
}

static void test_roundtrip(void **state) {
    (void)state;
    rng_seed(1);
    for (size_t ti = 0; ti < N_PACK; ti++) {
        finch_dtype t = pack_types[ti];
        assert_true(finch_wpack_supported(t));
        for (size_t ci = 0; ci < N_COLS; ci++) {
            size_t cols = test_cols(t)[ci], rb = finch_row_bytes(t, cols);
            finch_weight w = packable_weight(t, 32, cols), p = packed_copy(&w);
            assert_memory_not_equal(w.data, p.data, 32 * rb);
            uint8_t *rows = malloc(16 * rb), *row = malloc(rb);
            for (size_t g = 0; g < 2; g++) {
                finch_wunpack_group(t, (const uint8_t *)p.data + g * 16 * rb, cols, rows);
                assert_memory_equal(rows, (const uint8_t *)w.data + g * 16 * rb, 16 * rb);
            }
            for (size_t r = 0; r < 32; r++) /* the embedding's rows of a packed tied weight */
                assert_memory_equal(finch_weight_row(&p, r, row), (const uint8_t *)w.data + r * rb, rb);
            assert_ptr_equal(finch_weight_row(&w, 5, row), (const uint8_t *)w.data + 5 * rb);
            free(rows), free(row);
            free((void *)w.data), free((void *)p.data);
        }
    }
    assert_false(finch_wpack_supported(FINCH_F32));
    assert_false(finch_wpack_supported(FINCH_Q8_0));
}

/* Every x86 table's vec_dotp called directly: out[r] is the reference's
 * bits for each of the 16 rows. */
static void test_dotp_bits(void **state) {
    (void)state;
    const finch_kernels *tables[4] = {&finch_kernels_scalar, NULL, NULL, NULL};
#if defined(__x86_64__)
    if (finch_isa_set(FINCH_ISA_AVX2)) tables[1] = &finch_kernels_avx2;
    if (finch_isa_set(FINCH_ISA_AVX512)) {
        tables[2] = &finch_kernels_avx512;
        if (finch_kernels_get() == &finch_kernels_avx512_vnni) tables[3] = &finch_kernels_avx512_vnni;
    }
#endif
    finch_isa_set(finch_isa_detect());
    rng_seed(2);
    size_t checked = 0;
    for (size_t ti = 0; ti < N_PACK; ti++) {
        finch_dtype t = pack_types[ti], partner = finch_quant_traits_of(t)->partner;
        for (size_t ci = 0; ci < N_COLS; ci++) {
            size_t cols = test_cols(t)[ci], rb = finch_row_bytes(t, cols);
            finch_weight w = packable_weight(t, 16, cols), p = packed_copy(&w);
            float *x = random_floats(cols), out[16];
            for (size_t c = 0; c < cols; c += 7) x[c] *= 100.0f; /* a few large activations */
            void *xq = malloc(finch_row_bytes(partner, cols));
            finch_quantize_act(partner, x, xq, cols);
            for (size_t k = 0; k < 4; k++) {
                if (!tables[k] || !tables[k]->vec_dotp[t]) continue;
                tables[k]->vec_dotp[t](p.data, cols, xq, out);
                checked++;
                for (size_t r = 0; r < 16; r++) {
                    float ref = finch_vec_dot_ref(t)((const uint8_t *)w.data + r * rb, xq, cols);
                    if (memcmp(&ref, &out[r], sizeof ref))
                        fail_msg("%s, %zu cols, table %zu, row %zu: %g, not the scalar %g", finch_dtype_name(t),
                                 cols, k, r, out[r], ref);
                }
            }
            free(x), free(xq);
            free((void *)w.data), free((void *)p.data);
        }
    }
    if (!checked) fprintf(stderr, "note: no table with vec_dotp on this CPU\n");
}

/* finch_matmul with a packed weight == with the unpacked one, bit for bit:
 * 1-3 threads, 1, 3, 8 and 40 tokens (decode, vec_dotn, the GEMM), in both
 * arithmetics, on the detected table, AVX2's and the scalar one (no
 * vec_dotp: groups unpacked); and finch_matmul_ref. */
static void check_matmul(finch_dtype t, finch_pool *const *pools) {
    const size_t rows = 80, cols = finch_quant_traits_of(t)->block == FINCH_QK_K ? 768 : 256 + 64, ns[] = {1, 3, 8, 40};
    finch_weight w = packable_weight(t, rows, cols), p = packed_copy(&w);
    float *x = random_floats(40 * cols), *a = malloc(40 * rows * sizeof(float)), *b = malloc(40 * rows * sizeof(float));
    const finch_isa isas[] = {finch_isa_detect(), FINCH_ISA_AVX2, FINCH_ISA_SCALAR};
    for (size_t ii = 0; ii < 3; ii++)
        for (int math = 0; math < 2; math++)
            for (size_t ni = 0; ni < 4; ni++)
                for (size_t th = 0; th < 3; th++) {
                    if (!finch_isa_set(isas[ii])) continue; /* not this CPU */
                    finch_set_quant_math(math ? FINCH_QUANT_MATH_FP32 : FINCH_QUANT_MATH_Q8);
                    size_t n = ns[ni];
                    assert_ok(finch_matmul(pools[th], a, x, n, &w));
                    assert_ok(finch_matmul(pools[th], b, x, n, &p));
                    if (memcmp(a, b, n * rows * sizeof(float)))
                        fail_msg("%s: isa %zu, math %d, %zu tokens, %zu threads: packed differs", finch_dtype_name(t),
                                 ii, math, n, th + 1);
                }
    restore_defaults(NULL);
    finch_matmul_ref(a, x, 3, &w);
    finch_matmul_ref(b, x, 3, &p);
    assert_memory_equal(a, b, 3 * rows * sizeof(float));
    free(x), free(a), free(b);
    free((void *)w.data), free((void *)p.data);
}

static void test_matmul_packed(void **state) {
    (void)state;
    finch_pool *pools[3];
    for (size_t p = 0; p < 3; p++) assert_ok(finch_pool_new(p + 1, &pools[p]));
    rng_seed(3);
    for (size_t ti = 0; ti < N_PACK; ti++) check_matmul(pack_types[ti], pools);
    for (size_t p = 0; p < 3; p++) finch_pool_free(pools[p]);
}

/* A model load packs what the kernels have vec_dotp for (and only with
 * packing on); the logits of a prefill and of decode steps are the
 * unpacked model's bits, also with a packed embedding (as a tied output
 * makes it) and with the scalar table forced after load. */
static void forward_logits(finch_model *m, size_t threads, float *out, size_t n) {
    static const int32_t tokens[] = {1, 5, 9, 3, 17, 30, 2, 8, 11, 4, 7, 6};
    finch_ctx *ctx;
    finch_kv_cache kv;
    size_t v = m->cfg.vocab;
    assert_ok(finch_ctx_new(m, threads, n, &ctx));
    assert_ok(finch_kv_init(&kv, &m->cfg, n));
    assert_ok(finch_forward(ctx, &kv, tokens, n - 2, 0, NULL, out, n - 2));
    for (size_t i = n - 2; i < n; i++) /* decode steps */
        assert_ok(finch_forward(ctx, &kv, tokens + i, 1, i, NULL, out + i * v, 1));
    finch_kv_free(&kv);
    finch_ctx_free(ctx);
}

static void test_model_packed(void **state) {
    (void)state;
    const char *files[] = {"quant/tiny-quant-q4_0.gguf", "quant/tiny-quant-iq4_nl.gguf", "quant/tiny-quant-q5_1.gguf",
                           "quant/tiny-quant-q4_K.gguf", "quant/tiny-quant-q6_K.gguf"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char rel[128];
        snprintf(rel, sizeof rel, "models/%s", files[f]);
        finch_set_weight_packing(FINCH_WPACK_OFF);
        finch_model *u = test_load_data_model(rel);
        finch_set_weight_packing(FINCH_WPACK_AUTO); /* a small file is mapped: kept as stored */
        finch_model *m = test_load_data_model(rel);
        bool mapped_packed = m && m->layers[0].wq.packed;
        finch_model_free(m);
        assert_false(mapped_packed);
        finch_set_weight_packing(FINCH_WPACK_ON); /* ... unless asked: copied on write */
        finch_model *p = test_load_data_model(rel);
        if (!u || !p) {
            finch_model_free(u), finch_model_free(p);
            SKIP_MSG("testdata/%s absent", rel);
        }
        finch_dtype t = p->layers[0].wq.type;
        bool want = finch_kernels_get()->vec_dotp[t] != NULL;
        assert_int_equal(p->layers[0].wq.packed, want);
        assert_int_equal(p->layers[0].w_down.packed, want);
        assert_false(u->layers[0].wq.packed);
        assert_false(p->tok_embd.packed); /* not tied: not a matmul weight */
        size_t n = 12, v = p->cfg.vocab;
        float *a = malloc(n * v * sizeof(float)), *b = malloc(n * v * sizeof(float));
        for (size_t th = 1; th <= 2; th++) {
            forward_logits(u, th, a, n);
            forward_logits(p, th, b, n);
            assert_memory_equal(a, b, n * v * sizeof(float));
        }
        if (p->tok_embd.rows % 16 == 0) { /* the embedding lookup of a packed (tied) embedding */
            finch_weight e = p->tok_embd, pe = packed_copy(&e);
            p->tok_embd = pe;
            forward_logits(p, 1, b, n);
            p->tok_embd = e;
            free((void *)pe.data);
            assert_memory_equal(a, b, n * v * sizeof(float));
        }
        assert_true(finch_isa_set(FINCH_ISA_SCALAR)); /* no vec_dotp: the groups unpacked */
        forward_logits(p, 1, b, n);
        forward_logits(u, 1, a, n); /* the same table: a model's f32/f16 parts have its sums */
        restore_defaults(NULL);
        assert_memory_equal(a, b, n * v * sizeof(float));
        free(a), free(b);
        finch_model_free(u), finch_model_free(p);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_roundtrip, restore_defaults),
        cmocka_unit_test_teardown(test_dotp_bits, restore_defaults),
        cmocka_unit_test_teardown(test_matmul_packed, restore_defaults),
        cmocka_unit_test_teardown(test_model_packed, restore_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
