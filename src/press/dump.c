/* dump.c - the dump of a press run, format v1 (include/finch_dump.h,
 * docs/dump-format.md): the arrays a press recorded and a meta.json that
 * says how to read them and what produced them. */
#include "finch_dump.h"
#include "press_internal.h"
#include "outfile.h"
#include "press_params_json.h"
#include "press_trace.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HEADER_HASH_BYTES ((size_t)1 << 20)

const char *finch_key_layout_name(finch_key_layout k) { return k == FINCH_KEYS_NATIVE ? "native" : "hf"; }

finch_status finch_key_layout_parse(const char *s, finch_key_layout *out) {
    if (s && !strcmp(s, "hf")) { *out = FINCH_KEYS_HF; return FINCH_OK; }
    if (s && !strcmp(s, "native")) { *out = FINCH_KEYS_NATIVE; return FINCH_OK; }
    return finch_fail(FINCH_ERR_ARG, "unknown key layout '%s' (hf or native)", s ? s : "");
}

const char *finch_rope_pairing_name(finch_rope_pairing p) {
    return p == FINCH_ROPE_ADJACENT ? "adjacent" : "half";
}

void finch_keys_adjacent_to_half(float *keys, size_t n_rows, size_t head_dim) {
    float tmp[1024];
    size_t half = head_dim / 2;
    if (head_dim > 1024 || head_dim % 2) return; /* no model has such heads; rows unchanged */
    for (size_t r = 0; r < n_rows; r++) {
        float *k = keys + r * head_dim;
        for (size_t i = 0; i < half; i++) {
            tmp[i] = k[2 * i];
            tmp[half + i] = k[2 * i + 1];
        }
        memcpy(k, tmp, head_dim * sizeof(float));
    }
}

void finch_dump_copy_kv(const finch_press *fp, finch_key_layout layout, float *keys, float *values) {
    finch_press_copy_kv(fp, keys, values);
    const finch_config *cfg = &finch_press_model(fp)->cfg;
    if (keys && layout == FINCH_KEYS_HF && cfg->rope_pairing == FINCH_ROPE_ADJACENT)
        finch_keys_adjacent_to_half(keys, cfg->n_layer * cfg->n_kv_head * finch_press_get_stats(fp)->n_kept,
                                    cfg->head_dim);
}

finch_dump_opts finch_dump_defaults(void) {
    finch_dump_opts o;
    memset(&o, 0, sizeof o);
    o.layout = FINCH_KEYS_HF;
    return o;
}

/* ------------------------------------------------------- model identity */

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* Hash up to `cap` first bytes of path into *h; *bytes += what was read. */
static void hash_file_head(const char *path, size_t cap, uint64_t *h, size_t *bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) return;
    uint8_t buf[65536];
    size_t n;
    while (cap > 0 && (n = fread(buf, 1, cap < sizeof buf ? cap : sizeof buf, f)) > 0) {
        *h = fnv1a(*h, buf, n);
        *bytes += n;
        cap -= n;
    }
    fclose(f);
}

/* A directory's size: its regular files (a Hugging Face model directory). */
static size_t dir_size(const char *dir) {
    DIR *dp = opendir(dir);
    size_t total = 0;
    if (!dp) return 0;
    struct dirent *e;
    char p[4400];
    struct stat st;
    while ((e = readdir(dp)) != NULL) {
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) total += (size_t)st.st_size;
    }
    closedir(dp);
    return total;
}

/* path, size and a hash of the model's header: a file's first MiB (GGUF:
 * metadata and tensor index); a directory's config.json and the first MiB
 * of model.safetensors (its tensor index). */
static void add_model_identity(cJSON *j, const char *path) {
    struct stat st;
    char *clean = finch_utf8_clean(path, strlen(path)); /* a path holds any bytes; JSON holds UTF-8 */
    cJSON_AddStringToObject(j, "path", clean ? clean : "");
    free(clean);
    if (stat(path, &st) != 0) return;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t bytes = 0;
    char p[4400];
    if (S_ISDIR(st.st_mode)) {
        cJSON_AddNumberToObject(j, "size_bytes", (double)dir_size(path));
        snprintf(p, sizeof p, "%s/config.json", path);
        hash_file_head(p, HEADER_HASH_BYTES, &h, &bytes);
        snprintf(p, sizeof p, "%s/model.safetensors", path);
        hash_file_head(p, HEADER_HASH_BYTES, &h, &bytes);
    } else {
        cJSON_AddNumberToObject(j, "size_bytes", (double)st.st_size);
        hash_file_head(path, HEADER_HASH_BYTES, &h, &bytes);
    }
    snprintf(p, sizeof p, "fnv1a64:%016llx", (unsigned long long)h);
    cJSON_AddStringToObject(j, "header_hash", p);
    cJSON_AddNumberToObject(j, "header_hash_bytes", (double)bytes);
}

static void add_model(cJSON *root, const finch_model *m, const char *path) {
    const finch_config *c = &m->cfg;
    cJSON *j = cJSON_AddObjectToObject(root, "model");
    if (path) add_model_identity(j, path);
    cJSON_AddStringToObject(j, "source_format", m->source_format);
    cJSON_AddStringToObject(j, "architecture", c->arch);
    cJSON_AddNumberToObject(j, "n_layer", (double)c->n_layer);
    cJSON_AddNumberToObject(j, "n_head", (double)c->n_head);
    cJSON_AddNumberToObject(j, "n_kv_head", (double)c->n_kv_head);
    cJSON_AddNumberToObject(j, "head_dim", (double)c->head_dim);
    cJSON_AddNumberToObject(j, "vocab", (double)c->vocab);
    cJSON *r = cJSON_AddObjectToObject(j, "rope");
    cJSON_AddStringToObject(r, "pairing", finch_rope_pairing_name(c->rope_pairing));
    cJSON_AddNumberToObject(r, "base", c->rope_base);
    cJSON_AddNumberToObject(r, "dim", (double)c->rope_dim);
    const char *scaling[] = { "none", "linear", "yarn", "llama3" };
    cJSON_AddStringToObject(r, "scaling", (size_t)c->rope_scaling < 4 ? scaling[c->rope_scaling] : "other");
    cJSON_AddNumberToObject(r, "base_local", c->rope_base_local);
}

/* ------------------------------------------------------------- meta.json */

static void add_params(cJSON *root, const finch_press *fp) {
    finch_press_params_json(cJSON_AddObjectToObject(root, "params"), fp);
}

/* Copy the members of the JSON object text `extra` not already in root. */
static finch_status merge_extra(cJSON *root, const char *extra) {
    cJSON *e = cJSON_Parse(extra);
    if (!cJSON_IsObject(e)) {
        cJSON_Delete(e);
        return finch_fail(FINCH_ERR_ARG, "dump: the extra meta is not a JSON object");
    }
    for (cJSON *it = e->child; it; it = it->next)
        if (it->string && !cJSON_HasObjectItem(root, it->string))
            cJSON_AddItemToObject(root, it->string, cJSON_Duplicate(it, 1));
    cJSON_Delete(e);
    return FINCH_OK;
}

/* The names of the files the dump holds, in meta.json's "files". */
static cJSON *file_list(const finch_press *fp, const finch_dump_opts *o) {
    const char *names[] = { "kept.npy", "keys.npy", "values.npy", "logits.npy", "scores.npy", "margins.npy",
                            "schedule.npy", "context_ids.npy", "question_ids.npy", "prompt_ids.npy",
                            "steps_kept.npy", "steps_scores.npy" };
    int has[] = { 1, 1, 1, finch_press_prompt_logits(fp) != NULL, 1, 1, 1, o->context != NULL,
                  o->question != NULL, o->prompt != NULL, o->steps, o->steps };
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (has[i]) cJSON_AddItemToArray(a, cJSON_CreateString(names[i]));
    if (o->extra_file) cJSON_AddItemToArray(a, cJSON_CreateString(o->extra_file));
    return a;
}

finch_status finch_dump_meta(const finch_press *fp, const finch_dump_opts *o, char **json) {
    *json = NULL;
    finch_dump_opts dflt = finch_dump_defaults();
    if (!o) o = &dflt;
    const finch_model *m = finch_press_model(fp);
    cJSON *j = cJSON_CreateObject();
    if (!j) return FINCH_ERR_NOMEM;
    cJSON_AddStringToObject(j, "format", FINCH_DUMP_FORMAT);
    cJSON_AddNumberToObject(j, "version", FINCH_DUMP_VERSION);
    cJSON *f = cJSON_AddObjectToObject(j, "finch");
    cJSON_AddStringToObject(f, "version", finch_version());
    cJSON_AddStringToObject(f, "commit", finch_build_commit());
    cJSON_AddStringToObject(j, "key_layout", finch_key_layout_name(o->layout));
    cJSON_AddStringToObject(j, "native_pairing", finch_rope_pairing_name(m->cfg.rope_pairing));
    /* row r's key is rotated for position r (re-rotated), or for kept[r] */
    cJSON_AddStringToObject(j, "key_positions", finch_press_get_params(fp)->no_rerotate ? "original" : "rank");
    cJSON_AddItemToObject(j, "files", file_list(fp, o));
    add_model(j, m, o->model_path);
    add_params(j, fp);
    finch_status st = o->extra_json ? merge_extra(j, o->extra_json) : FINCH_OK;
    if (!st && !(*json = cJSON_Print(j))) st = FINCH_ERR_NOMEM;
    cJSON_Delete(j);
    return st;
}

/* --------------------------------------------------------------- writing */

static finch_status write_npy(const char *dir, const char *name, finch_npy_type t, const void *data,
                              const size_t *shape, size_t ndim) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return finch_npy_write(path, t, data, shape, ndim);
}

/* Through a temporary renamed into place, as every output (outfile.h). */
static finch_status write_text(const char *dir, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    finch_outfile out;
    finch_status st = finch_outfile_open(&out, path);
    if (st) return st;
    fputs(text, out.f);
    fputc('\n', out.f);
    return finch_outfile_commit(&out);
}

/* kept, keys, values, logits: the compressed cache and what it predicts. */
static finch_status write_cache(const finch_press *fp, const char *dir, finch_key_layout layout) {
    const finch_kv_cache *kv = finch_press_cache(fp);
    size_t L = kv->n_layer, G = kv->n_kv_head, nk = finch_press_get_stats(fp)->n_kept, d = kv->head_dim;
    size_t shape[4] = { L, G, nk, d }, vocab = finch_press_model(fp)->cfg.vocab;
    finch_status st = write_npy(dir, "kept.npy", FINCH_NPY_I32, finch_press_kept(fp), shape, 3);
    if (st) return st;
    float *k = finch_alloc(L * G * (nk ? nk : 1), 2 * d * sizeof(float));
    if (!k) return FINCH_ERR_NOMEM;
    float *v = k + L * G * nk * d;
    finch_dump_copy_kv(fp, layout, k, v);
    st = write_npy(dir, "keys.npy", FINCH_NPY_F32, k, shape, 4);
    if (!st) st = write_npy(dir, "values.npy", FINCH_NPY_F32, v, shape, 4);
    free(k);
    if (st || !finch_press_prompt_logits(fp)) return st;
    return write_npy(dir, "logits.npy", FINCH_NPY_F32, finch_press_prompt_logits(fp), &vocab, 1);
}

/* scores, margins, schedule and (o->steps) every step's selection. */
static finch_status write_trace(const finch_press_trace *t, const char *dir, int steps) {
    size_t L = t->n_layer, G = t->n_kv_head, T = t->n_steps;
    size_t s3[3] = { L, G, t->n_ctx }, s2[2] = { L, G };
    finch_status st = write_npy(dir, "scores.npy", FINCH_NPY_F32, t->scores, s3, 3);
    if (!st) st = write_npy(dir, "margins.npy", FINCH_NPY_F32, t->margins, s2, 2);
    if (!st) st = write_npy(dir, "schedule.npy", FINCH_NPY_I32, t->schedule, &T, 1);
    if (st || !steps) return st;
    if (!t->steps_kept) return finch_fail(FINCH_ERR_ARG, "dump: steps asked but the press did not record them");
    size_t sk[4] = { T, L, G, t->k_max }, ss[4] = { T, L, G, t->n_ctx };
    st = write_npy(dir, "steps_kept.npy", FINCH_NPY_I32, t->steps_kept, sk, 4);
    return st ? st : write_npy(dir, "steps_scores.npy", FINCH_NPY_F32, t->steps_scores, ss, 4);
}

static finch_status write_ids(const char *dir, const char *name, const int32_t *ids, size_t n) {
    return ids ? write_npy(dir, name, FINCH_NPY_I32, ids, &n, 1) : FINCH_OK;
}

finch_status finch_dump_write(const finch_press *fp, const char *dir, const finch_dump_opts *o) {
    finch_dump_opts dflt = finch_dump_defaults();
    if (!o) o = &dflt;
    if (!finch_press_kept(fp)) return finch_fail(FINCH_ERR_ARG, "Finch: nothing to dump before compression");
    char *meta = NULL;
    finch_status st = finch_dump_meta(fp, o, &meta);
    if (!st) st = write_cache(fp, dir, o->layout);
    if (!st) st = write_trace(finch_press_get_trace(fp), dir, o->steps);
    if (!st) st = write_ids(dir, "context_ids.npy", o->context, o->n_context);
    if (!st) st = write_ids(dir, "question_ids.npy", o->question, o->n_question);
    if (!st) st = write_ids(dir, "prompt_ids.npy", o->prompt, o->n_prompt);
    if (!st) st = write_text(dir, "meta.json", meta);
    free(meta);
    return st;
}

finch_status finch_press_dump(const finch_press *fp, const char *dir) { return finch_dump_write(fp, dir, NULL); }
