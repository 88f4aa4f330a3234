/* compare.c - two dumps side by side (include/finch_compare.h): kept-set
 * agreement with near ties excused by REF's scores, and the largest errors
 * of keys, values and logits. */
#include "finch_compare.h"
#include "finch_dump.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

finch_compare_opts finch_compare_defaults(void) { return (finch_compare_opts){ 1e-4, 1e-4, 1e-2 }; }

/* ------------------------------------------------------------ one dump */

typedef struct {
    const char *dir;
    int unpermute;            /* keys stored in the adjacent layout          */
    int original_positions;   /* row r's key is for position kept[r], not r  */
    double rope_base;         /* 0 when meta.json does not say               */
    size_t rope_dim;
    int32_t *kept;            /* [L][G][K]                                    */
    size_t L, G, K, d, N, vocab;
    float *keys, *values;     /* [L][G][K][d] or NULL                          */
    float *logits;            /* [vocab] or NULL                              */
    float *scores;            /* [L][G][N] or NULL                            */
    float *margins;           /* [L][G] or NULL                               */
} dump;

static void dump_free(dump *d) {
    free(d->kept); free(d->keys); free(d->values); free(d->logits); free(d->scores); free(d->margins);
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The RoPE facts that re-rotate a key: meta.model.rope {base, dim}, plain
 * RoPE only (no "scaling" other than "none", no local base): compare_row
 * leaves a key at another position uncompared otherwise. */
static void read_rope(dump *d, const cJSON *meta) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(meta, "model");
    const cJSON *rope = cJSON_GetObjectItemCaseSensitive(model, "rope");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(rope, "base");
    const cJSON *dim = cJSON_GetObjectItemCaseSensitive(rope, "dim");
    const cJSON *local = cJSON_GetObjectItemCaseSensitive(rope, "base_local");
    const char *scaling = jstr(rope, "scaling");
    if ((scaling && strcmp(scaling, "none")) || (cJSON_IsNumber(local) && local->valuedouble != 0)) return;
    if (cJSON_IsNumber(base) && base->valuedouble > 0 && cJSON_IsNumber(dim) && dim->valuedouble >= 2 &&
        dim->valuedouble <= 4096) {
        d->rope_base = base->valuedouble;
        d->rope_dim = (size_t)dim->valuedouble & ~(size_t)1;
    }
}

/* meta.json: "format": "finch-dump", "version": 1, the key layout. */
static finch_status read_meta(dump *d) {
    char path[4200], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/meta.json", d->dir);
    finch_status st = finch_read_file(path, &text, &len);
    if (st) return finch_fail(FINCH_ERR_IO, "%s: cannot read (a dump holds meta.json)", path);
    cJSON *meta = cJSON_Parse(text);
    free(text);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(meta, "version");
    const char *fmt = jstr(meta, "format"), *layout = jstr(meta, "key_layout"), *pairing = jstr(meta, "native_pairing");
    if (!cJSON_IsObject(meta)) st = finch_fail(FINCH_ERR_FORMAT, "%s: not a JSON object", path);
    else if (!fmt || strcmp(fmt, FINCH_DUMP_FORMAT))
        st = finch_fail(FINCH_ERR_FORMAT, "%s: \"format\" is not \"%s\"", path, FINCH_DUMP_FORMAT);
    else if (!cJSON_IsNumber(ver) || ver->valuedouble != FINCH_DUMP_VERSION)
        st = finch_fail(FINCH_ERR_FORMAT, "%s: \"version\" must be %d", path, FINCH_DUMP_VERSION);
    else if (layout && strcmp(layout, "hf") && strcmp(layout, "native"))
        st = finch_fail(FINCH_ERR_FORMAT, "%s: \"key_layout\" must be \"hf\" or \"native\"", path);
    else if (pairing && strcmp(pairing, "half") && strcmp(pairing, "adjacent"))
        st = finch_fail(FINCH_ERR_FORMAT, "%s: \"native_pairing\" must be \"half\" or \"adjacent\"", path);
    if (!st) {
        d->unpermute = layout && !strcmp(layout, "native") && pairing && !strcmp(pairing, "adjacent");
        const char *kp = jstr(meta, "key_positions");
        d->original_positions = kp && !strcmp(kp, "original");
        read_rope(d, meta);
    }
    cJSON_Delete(meta);
    return st;
}

/* name.npy with ndim dimensions into *data (NULL when absent and optional). */
static finch_status read_array(const dump *d, const char *name, finch_npy_type t, size_t ndim, int required,
                               void **data, size_t *shape) {
    char path[4200];
    size_t nd = 0;
    snprintf(path, sizeof path, "%s/%s", d->dir, name);
    *data = NULL;
    if (!required && access(path, F_OK) != 0) return FINCH_OK;
    finch_status st = finch_npy_read(path, t, data, shape, &nd);
    if (st) return finch_fail_prefix(st, "%s", d->dir);
    if (nd != ndim) {
        free(*data);
        *data = NULL;
        return finch_fail(FINCH_ERR_FORMAT, "%s: %zu dimensions, the format says %zu", path, nd, ndim);
    }
    return FINCH_OK;
}

static finch_status shape_error(const dump *d, const char *name) {
    return finch_fail(FINCH_ERR_FORMAT, "%s/%s: its shape does not match kept.npy [%zu, %zu, %zu]", d->dir, name,
                      d->L, d->G, d->K);
}

/* keys.npy and values.npy [L, G, K, d], brought to the HF layout. */
static finch_status read_kv(dump *d) {
    size_t sk[8] = { 0 }, sv[8] = { 0 };
    finch_status st = read_array(d, "keys.npy", FINCH_NPY_F32, 4, 0, (void **)&d->keys, sk);
    if (!st) st = read_array(d, "values.npy", FINCH_NPY_F32, 4, 0, (void **)&d->values, sv);
    if (st) return st;
    if (d->keys && (sk[0] != d->L || sk[1] != d->G || sk[2] != d->K)) return shape_error(d, "keys.npy");
    if (d->values && (sv[0] != d->L || sv[1] != d->G || sv[2] != d->K)) return shape_error(d, "values.npy");
    if (d->keys && d->values && sk[3] != sv[3]) return shape_error(d, "values.npy");
    d->d = d->keys ? sk[3] : sv[3];
    if (d->d > 4096) return finch_fail(FINCH_ERR_FORMAT, "%s: head_dim %zu is beyond any model", d->dir, d->d);
    if (d->keys && d->unpermute) {
        if (d->d % 2) return finch_fail(FINCH_ERR_FORMAT, "%s/keys.npy: an odd head_dim %zu", d->dir, d->d);
        finch_keys_adjacent_to_half(d->keys, d->L * d->G * d->K, d->d);
    }
    return FINCH_OK;
}

static finch_status read_dump(dump *d) {
    size_t s[8] = { 0 };
    finch_status st = read_meta(d);
    if (!st) st = read_array(d, "kept.npy", FINCH_NPY_I32, 3, 1, (void **)&d->kept, s);
    if (st) return st;
    d->L = s[0], d->G = s[1], d->K = s[2];
    for (size_t i = 0; i < d->L * d->G * d->K; i++)
        if (d->kept[i] < 0) return finch_fail(FINCH_ERR_FORMAT, "%s/kept.npy: a negative position", d->dir);
    if ((st = read_kv(d))) return st;
    if ((st = read_array(d, "logits.npy", FINCH_NPY_F32, 1, 0, (void **)&d->logits, s))) return st;
    d->vocab = s[0];
    if ((st = read_array(d, "scores.npy", FINCH_NPY_F32, 3, 0, (void **)&d->scores, s))) return st;
    if (d->scores && (s[0] != d->L || s[1] != d->G)) return shape_error(d, "scores.npy");
    d->N = d->scores ? s[2] : 0;
    if ((st = read_array(d, "margins.npy", FINCH_NPY_F32, 2, 0, (void **)&d->margins, s))) return st;
    if (d->margins && (s[0] != d->L || s[1] != d->G)) return shape_error(d, "margins.npy");
    return FINCH_OK;
}

/* ------------------------------------------------------------- tensors */

static void tensor_add(finch_compare_tensor *t, const float *ref, const float *oth, size_t n,
                       const finch_compare_opts *o) {
    for (size_t i = 0; i < n; i++) {
        double a = ref[i], b = oth[i], e = fabs(a - b);
        double rel = e / (fabs(a) > 1e-30 ? fabs(a) : 1e-30);
        if (!(e <= o->atol + o->rtol * fabs(a))) t->ok = 0; /* NaN fails too */
        if (e > t->max_abs || isnan(e)) t->max_abs = e;
        if (rel > t->max_rel || isnan(rel)) t->max_rel = rel;
    }
    t->n += n;
}

/* Rotate a key in the HF (rotate-half) layout by delta positions. */
static void rotate_half(float *k, size_t rope_dim, double base, long delta) {
    size_t half = rope_dim / 2;
    for (size_t i = 0; i < half; i++) {
        double theta = (double)delta * pow(base, -2.0 * (double)i / (double)rope_dim);
        double c = cos(theta), s = sin(theta), x = k[i], y = k[i + half];
        k[i] = (float)(x * c - y * s);
        k[i + half] = (float)(y * c + x * s);
    }
}

/* The shared position at REF row r and OTHER row s of head lg.  A key is
 * rotated for its rank (re-rotated) or for its original position
 * ("key_positions": "original"); OTHER's is rotated to REF's position
 * before the comparison. */
static void compare_row(const dump *ref, const dump *oth, size_t lg, size_t r, size_t s,
                        const finch_compare_opts *o, finch_compare_result *res) {
    size_t d = ref->d;
    if (ref->values && oth->values)
        tensor_add(&res->values, ref->values + (lg * ref->K + r) * d, oth->values + (lg * oth->K + s) * d, d, o);
    if (!ref->keys || !oth->keys) return;
    float tmp[4096];
    memcpy(tmp, oth->keys + (lg * oth->K + s) * d, d * sizeof(float));
    long at_ref = ref->original_positions ? (long)ref->kept[lg * ref->K + r] : (long)r;
    long at_oth = oth->original_positions ? (long)oth->kept[lg * oth->K + s] : (long)s;
    if (at_ref != at_oth) {
        if (!ref->rope_base || ref->rope_dim > d) {
            res->keys.n_skipped++;
            return;
        }
        rotate_half(tmp, ref->rope_dim, ref->rope_base, at_ref - at_oth);
    }
    tensor_add(&res->keys, ref->keys + (lg * ref->K + r) * d, tmp, d, o);
}

/* ------------------------------------------------------------ kept sets */

typedef struct {
    int32_t pos;
    size_t row;
} pos_row;

static int cmp_pos_row(const void *a, const void *b) {
    const pos_row *x = a, *y = b;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* The row holding position p, or -1 (rows sorted by position). */
static long find_row(const pos_row *rows, size_t n, int32_t p) {
    pos_row key = { p, 0 };
    const pos_row *hit = bsearch(&key, rows, n, sizeof *rows, cmp_pos_row);
    return hit ? (long)hit->row : -1;
}

static void sort_rows(const int32_t *kept, size_t n, pos_row *out) {
    for (size_t i = 0; i < n; i++) out[i] = (pos_row){ kept[i], i };
    qsort(out, n, sizeof *out, cmp_pos_row);
}

/* REF's cut in one head: its lowest kept and highest dropped score and the
 * largest |score|, over the positions it scored. */
typedef struct {
    double lo_kept, hi_dropped, top;
} ref_cut;

static ref_cut head_cut(const float *sc, size_t N, const pos_row *ref_rows, size_t K) {
    ref_cut c = { INFINITY, -INFINITY, 0 };
    for (size_t p = 0; p < N; p++) {
        if (!isfinite(sc[p])) continue;
        if (fabs(sc[p]) > c.top) c.top = fabs(sc[p]);
        if (find_row(ref_rows, K, (int32_t)p) >= 0) c.lo_kept = sc[p] < c.lo_kept ? sc[p] : c.lo_kept;
        else c.hi_dropped = sc[p] > c.hi_dropped ? sc[p] : c.hi_dropped;
    }
    if (c.top < 1e-30) c.top = 1e-30;
    return c;
}

/* Is position p, kept by one side only, a near tie for REF? */
static int excused(const dump *ref, size_t lg, const ref_cut *c, int32_t p, int ref_kept_it, double tie) {
    const float *sc = ref->scores ? ref->scores + lg * ref->N : NULL;
    if (sc && (size_t)p < ref->N && isfinite(sc[p])) {
        double dist = ref_kept_it ? (sc[p] - c->hi_dropped) / c->top : (c->lo_kept - sc[p]) / c->top;
        return dist <= tie;
    }
    return ref->margins && ref->margins[lg] <= tie;
}

/* One head: the verdict, and the tensors on the positions both kept. */
static void compare_head(const dump *ref, const dump *oth, size_t lg, pos_row *rr, pos_row *ro,
                         const finch_compare_opts *o, finch_compare_result *res) {
    const int32_t *kr = ref->kept + lg * ref->K, *ko = oth->kept + lg * oth->K;
    sort_rows(kr, ref->K, rr);
    sort_rows(ko, oth->K, ro);
    ref_cut cut = ref->scores ? head_cut(ref->scores + lg * ref->N, ref->N, rr, ref->K) : (ref_cut){ 0, 0, 1 };
    size_t n_exc = 0, n_bad = 0;
    for (size_t r = 0; r < ref->K; r++) {
        long s = find_row(ro, oth->K, kr[r]);
        if (s >= 0) compare_row(ref, oth, lg, r, (size_t)s, o, res);
        else if (excused(ref, lg, &cut, kr[r], 1, o->tie)) n_exc++;
        else n_bad++;
    }
    for (size_t s = 0; s < oth->K; s++) {
        if (find_row(rr, ref->K, ko[s]) >= 0) continue;
        if (excused(ref, lg, &cut, ko[s], 0, o->tie)) n_exc++;
        else n_bad++;
    }
    res->n_differ[lg] = n_exc + n_bad;
    res->ref_margin[lg] = ref->margins ? ref->margins[lg] : NAN;
    res->verdict[lg] = n_bad ? FINCH_HEAD_DISAGREE : n_exc ? FINCH_HEAD_EXCUSED : FINCH_HEAD_AGREE;
    res->excused_positions += n_bad ? 0 : n_exc;
    res->disagree_positions += n_bad ? n_exc + n_bad : 0;
}

/* ----------------------------------------------------------- the verdict */

static finch_status check_comparable(const dump *ref, const dump *oth) {
    if (ref->L != oth->L || ref->G != oth->G)
        return finch_fail(FINCH_ERR_ARG, "the dumps are of different models: kept.npy has %zu layers x %zu heads "
                          "in %s, %zu x %zu in %s", ref->L, ref->G, ref->dir, oth->L, oth->G, oth->dir);
    if (ref->keys && oth->keys && ref->d != oth->d)
        return finch_fail(FINCH_ERR_ARG, "the dumps are of different models: head_dim %zu in %s, %zu in %s",
                          ref->d, ref->dir, oth->d, oth->dir);
    if (ref->logits && oth->logits && ref->vocab != oth->vocab)
        return finch_fail(FINCH_ERR_ARG, "the dumps are of different models: vocab %zu in %s, %zu in %s",
                          ref->vocab, ref->dir, oth->vocab, oth->dir);
    return FINCH_OK;
}

static finch_status compare_loaded(const dump *ref, const dump *oth, const finch_compare_opts *o,
                                   finch_compare_result *res) {
    size_t LG = ref->L * ref->G, kmax = ref->K > oth->K ? ref->K : oth->K;
    res->n_layer = ref->L, res->n_kv_head = ref->G, res->ref_n_kept = ref->K, res->other_n_kept = oth->K;
    res->verdict = finch_zalloc(LG ? LG : 1, sizeof *res->verdict);
    res->n_differ = finch_zalloc(LG ? LG : 1, sizeof *res->n_differ);
    res->ref_margin = finch_zalloc(LG ? LG : 1, sizeof *res->ref_margin);
    pos_row *rr = finch_alloc(kmax ? kmax : 1, 2 * sizeof(pos_row));
    if (!res->verdict || !res->n_differ || !res->ref_margin || !rr) {
        free(rr);
        return FINCH_ERR_NOMEM;
    }
    finch_compare_tensor fresh = { 0, 0, 0, 0, 0, 1 };
    res->keys = res->values = res->logits = fresh;
    res->keys.present = ref->keys && oth->keys;
    res->values.present = ref->values && oth->values;
    res->logits.present = ref->logits && oth->logits;
    for (size_t lg = 0; lg < LG; lg++) {
        compare_head(ref, oth, lg, rr, rr + kmax, o, res);
        res->agree += res->verdict[lg] == FINCH_HEAD_AGREE;
        res->excused += res->verdict[lg] == FINCH_HEAD_EXCUSED;
        res->disagree += res->verdict[lg] == FINCH_HEAD_DISAGREE;
    }
    free(rr);
    if (res->logits.present) tensor_add(&res->logits, ref->logits, oth->logits, ref->vocab, o);
    res->logits_decide = res->agree == LG && ref->K == oth->K;
    res->ok = ref->K == oth->K && res->disagree == 0 && res->keys.ok && res->values.ok &&
              (!res->logits_decide || res->logits.ok);
    return FINCH_OK;
}

finch_status finch_compare_dumps(const char *ref_dir, const char *other_dir, const finch_compare_opts *o,
                                 finch_compare_result *out) {
    memset(out, 0, sizeof *out);
    finch_compare_opts dflt = finch_compare_defaults();
    if (!o) o = &dflt;
    dump ref = { .dir = ref_dir }, oth = { .dir = other_dir };
    finch_status st = read_dump(&ref);
    if (!st) st = read_dump(&oth);
    if (!st) st = check_comparable(&ref, &oth);
    if (!st) st = compare_loaded(&ref, &oth, o, out);
    dump_free(&ref);
    dump_free(&oth);
    if (st) finch_compare_free(out);
    return st;
}

void finch_compare_free(finch_compare_result *r) {
    free(r->verdict); free(r->n_differ); free(r->ref_margin);
    r->verdict = NULL;
    r->n_differ = NULL;
    r->ref_margin = NULL;
}
