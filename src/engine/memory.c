/* memory.c - what a run needs, what the system has, and sizes as people
 * write them (include/finch.h, "memory").  The CLI compares the first two
 * before it allocates the KV cache, so a run that cannot fit is refused
 * with both numbers instead of dying in the kernel's OOM killer halfway. */
#include "finch.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Saturating arithmetic: an estimate that overflows is "more than any
 * machine has", which every limit refuses. */
static size_t sat_mul(size_t a, size_t b) {
    size_t r;
    return finch_mul_ok(a, b, &r) ? r : SIZE_MAX;
}
static size_t sat_add(size_t a, size_t b) {
    size_t r;
    return finch_add_ok(a, b, &r) ? r : SIZE_MAX;
}

/* ------------------------------------------------------------ estimate */

/* The forward pass's batch buffers (transformer.c): x, xn [dim]; q, att
 * [n_head*head_dim]; k, v [n_kv_head*head_dim]; gate, up [ffn_dim]; RoPE
 * cos/sin [rope_dim/2] each for both RoPE sets (global and sliding-window
 * layers), per token of the batch. */
static size_t batch_floats(const finch_config *c) {
    size_t qdim = sat_mul(c->n_head, c->head_dim), kvdim = sat_mul(c->n_kv_head, c->head_dim);
    return sat_add(sat_add(sat_mul(2, c->dim), sat_mul(2, qdim)),
                   sat_add(sat_add(sat_mul(2, kvdim), sat_mul(2, c->ffn_dim)), sat_mul(2, c->rope_dim)));
}

/* Bytes per cache position besides K and V: the attention scratch
 * (transformer.c: keys packed per KV head, n_kv_head*head_dim floats, with
 * an f16 cache the values converted as many again, and one score row per
 * query head a worker handles, taken as n_head), grown by half again; and
 * the press's bookkeeping per layer and KV head (original position i32,
 * kept index i32, score f64) plus one index and one score row entry
 * (finch.c). */
static size_t per_position_bytes(const finch_config *c, finch_cache_type cache_type) {
    size_t packed = sat_mul(sat_mul(c->n_kv_head, c->head_dim), cache_type == FINCH_CACHE_F16 ? 2 : 1);
    size_t att_floats = sat_add(packed, c->n_head);
    size_t att = sat_mul(att_floats, 6); /* 1.5 x 4-byte float */
    size_t press = sat_add(sat_mul(sat_mul(c->n_layer, c->n_kv_head), 16), 12);
    return sat_add(att, press);
}

size_t finch_memory_text(size_t text_bytes) {
    /* the text and its read buffer, which doubles as it grows: 3 copies at
     * most; the tokenizer's arrays (53 measured); the ids, doubled while
     * they grow; a margin */
    enum { TEXT = 3, TOKENIZER = 64, IDS = 2 * 4, MARGIN = 5 };
    return sat_mul(text_bytes, TEXT + TOKENIZER + IDS + MARGIN);
}

finch_memory finch_memory_estimate(const finch_model *m, size_t kv_positions, size_t max_batch) {
    return finch_memory_estimate_type(m, kv_positions, FINCH_CACHE_F32, max_batch);
}

finch_memory finch_memory_estimate_type(const finch_model *m, size_t kv_positions, finch_cache_type cache_type,
                                        size_t max_batch) {
    const finch_config *c = &m->cfg;
    finch_memory r;
    r.weights = finch_model_weight_bytes(m);
    size_t value = cache_type == FINCH_CACHE_F16 ? sizeof(uint16_t) : sizeof(float);
    size_t row = sat_mul(sat_mul(sat_mul(c->n_layer, c->n_kv_head), c->head_dim), 2 * value);
    r.kv_cache = sat_mul(row, kv_positions);
    /* Logits: the press's and the prompt's rows, the sampler's probs and
     * order (4 rows of vocab 4-byte values). */
    size_t fixed = sat_mul(c->vocab, 4 * sizeof(float));
    r.scratch = sat_add(sat_add(sat_mul(sat_mul(batch_floats(c), max_batch), sizeof(float)), fixed),
                        sat_mul(per_position_bytes(c, cache_type), kv_positions));
    r.total = sat_add(sat_add(r.weights, r.kv_cache), r.scratch);
    return r;
}

/* ----------------------------------------------------------- available */

/* MemAvailable of /proc/meminfo (the kernel's estimate of what can be
 * allocated without swapping, page cache included); false when absent. */
static bool meminfo_available(size_t *bytes) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return false;
    char line[256];
    unsigned long long kb = 0;
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "MemAvailable: %llu kB", &kb) == 1;
    fclose(f);
    if (!found) return false;
    *bytes = kb > SIZE_MAX / 1024 ? SIZE_MAX : (size_t)kb * 1024;
    return true;
}

finch_status finch_memory_available(size_t *bytes) {
    if (meminfo_available(bytes)) return FINCH_OK;
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) {
        *bytes = sat_mul((size_t)pages, (size_t)page);
        return FINCH_OK;
    }
    return finch_fail(FINCH_ERR_IO, "cannot tell how much memory is available (no /proc/meminfo)");
}

/* --------------------------------------------------------------- sizes */

/* The multiplier of a unit suffix: "", "B", "K", "KB", "KiB", ... "T...";
 * 0 when s is not one.  Units are powers of 1024. */
static double unit_multiplier(const char *s) {
    static const char units[] = "KMGT";
    double mult = 1;
    if (*s && *s != 'b' && *s != 'B') {
        const char *u = strchr(units, toupper((unsigned char)*s));
        if (!u) return 0;
        for (const char *p = units; p <= u; p++) mult *= 1024;
        s++;
        if (*s == 'i') s++;
    }
    if (*s == 'b' || *s == 'B') s++;
    return *s ? 0 : mult;
}

finch_status finch_parse_size(const char *s, size_t *bytes) {
    const char *p = s;
    double v = 0, scale = 1;
    bool digits = false;
    for (; isdigit((unsigned char)*p); p++, digits = true) v = v * 10 + (*p - '0');
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++, digits = true) v += (*p - '0') * (scale /= 10);
    double mult = digits ? unit_multiplier(p) : 0;
    if (mult == 0)
        return finch_fail(FINCH_ERR_ARG, "'%.64s' is not a size (bytes, or a number with K, M, G or T: 512M, 2G, 1.5G)", s);
    v *= mult;
    if (v < 1 || v >= 18446744073709551616.0 || v > (double)SIZE_MAX)
        return finch_fail(FINCH_ERR_ARG, "size '%.64s' is out of range", s);
    *bytes = (size_t)v;
    return FINCH_OK;
}

const char *finch_format_size(size_t bytes, char *buf, size_t cap) {
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    if (bytes < 1024) {
        snprintf(buf, cap, "%zu B", bytes);
        return buf;
    }
    double v = (double)bytes / 1024;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) v /= 1024, u++;
    snprintf(buf, cap, "%.*f %s", v < 10 ? 2 : 1, v, units[u]);
    return buf;
}
