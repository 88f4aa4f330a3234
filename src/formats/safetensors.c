/* safetensors.c - Hugging Face model directories: config.json -> finch_config,
 * then the tensors of model.safetensors or of its shards.
 *
 * Every number in a header is JSON, so it is checked to be a non-negative
 * integer small enough to be exact in a double before use; every tensor must
 * lie inside its file's data section, match its dtype and shape exactly and
 * be aligned for its element type, because it is used in place. */
#include "safetensors.h"
#include "arch.h"
#include "hf_arch.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER (100u << 20) /* the limit the reference library uses */
#define JSON_MAX_EXACT 9007199254740992.0 /* 2^53 */

/* ------------------------------------------------------------ tensor list */

finch_status finch_tensor_list_push(finch_tensor_list *l, const finch_tensor_ref *t) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        finch_tensor_ref *nt = finch_alloc(cap, sizeof *nt);
        if (!nt) return FINCH_ERR_NOMEM;
        if (l->n) memcpy(nt, l->t, l->n * sizeof *nt);
        free(l->t);
        l->t = nt;
        l->cap = cap;
    }
    char *name = strdup(t->name);
    if (!name) return finch_fail(FINCH_ERR_NOMEM, "out of memory copying a tensor name");
    l->t[l->n] = *t;
    l->t[l->n++].name = name;
    return FINCH_OK;
}

static int ref_cmp(const void *a, const void *b) {
    return strcmp(((const finch_tensor_ref *)a)->name, ((const finch_tensor_ref *)b)->name);
}

finch_status finch_tensor_list_finish(finch_tensor_list *l) {
    if (l->n) qsort(l->t, l->n, sizeof *l->t, ref_cmp);
    for (size_t i = 1; i < l->n; i++)
        if (strcmp(l->t[i - 1].name, l->t[i].name) == 0)
            return finch_fail(FINCH_ERR_FORMAT, "duplicate tensor '%s'", l->t[i].name);
    return FINCH_OK;
}

const finch_tensor_ref *finch_tensor_list_find(const finch_tensor_list *l, const char *name) {
    finch_tensor_ref key = {.name = name};
    return l->n ? bsearch(&key, l->t, l->n, sizeof *l->t, ref_cmp) : NULL;
}

void finch_tensor_list_free(finch_tensor_list *l) {
    for (size_t i = 0; i < l->n; i++) free((char *)l->t[i].name);
    free(l->t);
    memset(l, 0, sizeof *l);
}

/* ------------------------------------------------------------ JSON values */

/* A non-negative integer exactly representable in a double (cJSON keeps
 * numbers as doubles). */
static bool json_size(const cJSON *j, size_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= JSON_MAX_EXACT) || d != floor(d) || d > (double)SIZE_MAX) return false;
    *out = (size_t)d;
    return true;
}

/* ------------------------------------------------------- one tensor entry */

static finch_status parse_dtype(const cJSON *j, const char *name, finch_dtype *t, size_t *esize) {
    static const struct { const char *s; finch_dtype t; size_t size; } known[] = {
        {"F32", FINCH_F32, 4}, {"F16", FINCH_F16, 2}, {"BF16", FINCH_BF16, 2}};
    if (!cJSON_IsString(j)) return finch_fail(FINCH_ERR_FORMAT, "tensor '%s' has no dtype string", name);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(j->valuestring, known[i].s) == 0) {
            *t = known[i].t;
            *esize = known[i].size;
            return FINCH_OK;
        }
    return finch_fail(FINCH_ERR_UNSUPPORTED, "tensor '%s' has dtype %.16s (supported: F32, F16, BF16)",
                      name, j->valuestring);
}

/* Shape [outer, ..., inner] -> ne[] innermost first; *count = elements. */
static finch_status parse_shape(const cJSON *j, finch_tensor_ref *t, size_t *count) {
    if (!cJSON_IsArray(j)) return finch_fail(FINCH_ERR_FORMAT, "tensor '%s' has no shape array", t->name);
    int n = cJSON_GetArraySize(j);
    if (n > 4) return finch_fail(FINCH_ERR_UNSUPPORTED, "tensor '%s' has %d dims (at most 4)", t->name, n);
    t->n_dims = (uint32_t)n;
    *count = 1;
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (int d = 0; d < n; d++) {
        size_t dim;
        if (!json_size(cJSON_GetArrayItem(j, d), &dim))
            return finch_fail(FINCH_ERR_FORMAT, "tensor '%s' shape[%d] is not a non-negative integer", t->name, d);
        if (!finch_mul_ok(*count, dim, count))
            return finch_fail(FINCH_ERR_FORMAT, "tensor '%s' element count overflows", t->name);
        t->ne[n - 1 - d] = dim;
    }
    return FINCH_OK;
}

/* data_offsets [begin, end] within the data section of `avail` bytes. */
static finch_status parse_offsets(const cJSON *j, const char *name, size_t avail, size_t *begin, size_t *end) {
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 2 ||
        !json_size(cJSON_GetArrayItem(j, 0), begin) || !json_size(cJSON_GetArrayItem(j, 1), end))
        return finch_fail(FINCH_ERR_FORMAT, "tensor '%s' data_offsets is not [begin, end]", name);
    if (*begin > *end || *end > avail)
        return finch_fail(FINCH_ERR_FORMAT, "tensor '%s' data_offsets [%zu, %zu] outside the %zu-byte data section",
                          name, *begin, *end, avail);
    return FINCH_OK;
}

static finch_status parse_entry(const cJSON *e, const uint8_t *data, size_t avail, finch_tensor_ref *t) {
    size_t esize = 0, count = 0, nbytes, begin = 0, end = 0;
    t->name = e->string;
    if (!cJSON_IsObject(e)) return finch_fail(FINCH_ERR_FORMAT, "tensor '%s' entry is not an object", t->name);
    finch_status st = parse_dtype(cJSON_GetObjectItemCaseSensitive(e, "dtype"), t->name, &t->type, &esize);
    if (st == FINCH_OK) st = parse_shape(cJSON_GetObjectItemCaseSensitive(e, "shape"), t, &count);
    if (st == FINCH_OK)
        st = parse_offsets(cJSON_GetObjectItemCaseSensitive(e, "data_offsets"), t->name, avail, &begin, &end);
    if (st != FINCH_OK) return st;
    if (!finch_mul_ok(count, esize, &nbytes) || nbytes != end - begin)
        return finch_fail(FINCH_ERR_FORMAT, "tensor '%s' holds %zu bytes but its shape and dtype need %zu x %zu",
                          t->name, end - begin, count, esize);
    t->data = data + begin;
    t->nbytes = nbytes;
    if ((uintptr_t)t->data % esize != 0)
        return finch_fail(FINCH_ERR_FORMAT, "tensor '%s' data is not aligned to its %zu-byte elements",
                          t->name, esize);
    return FINCH_OK;
}

/* "__metadata__": string -> string.  Add {removed: kept} tied-weight aliases. */
static finch_status add_aliases(const cJSON *meta, finch_tensor_list *list) {
    if (!cJSON_IsObject(meta)) return finch_fail(FINCH_ERR_FORMAT, "__metadata__ is not an object");
    size_t n_before = list->n;
    for (const cJSON *m = meta->child; m; m = m->next) {
        if (!cJSON_IsString(m)) return finch_fail(FINCH_ERR_FORMAT, "__metadata__ value of '%s' is not a string", m->string);
        const finch_tensor_ref *kept = finch_tensor_list_find(list, m->valuestring);
        if (!kept || finch_tensor_list_find(list, m->string)) continue;
        finch_tensor_ref alias = *kept; /* push may move the array */
        alias.name = m->string;
        finch_status st = finch_tensor_list_push(list, &alias);
        if (st != FINCH_OK) return st;
    }
    /* Two aliases of one name are duplicates, which finish reports. */
    return list->n > n_before ? finch_tensor_list_finish(list) : FINCH_OK;
}

/* ------------------------------------------------------------ one file */

static finch_status parse_header(const uint8_t *data, size_t size, cJSON **root, size_t *data_start) {
    if (size < 8) return finch_fail(FINCH_ERR_FORMAT, "safetensors file of %zu bytes has no header", size);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)data[i] << (8 * i);
    if (hlen > size - 8 || hlen > ST_MAX_HEADER)
        return finch_fail(FINCH_ERR_FORMAT, "safetensors header length %llu exceeds the file (%zu bytes)",
                          (unsigned long long)hlen, size);
    if (hlen < 2 || data[8] != '{') return finch_fail(FINCH_ERR_FORMAT, "safetensors header is not a JSON object");
    *root = cJSON_ParseWithLength((const char *)data + 8, (size_t)hlen);
    if (!*root || !cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return finch_fail(FINCH_ERR_FORMAT, "safetensors header is not valid JSON");
    }
    *data_start = 8 + (size_t)hlen;
    return FINCH_OK;
}

finch_status hf_parse_safetensors(const uint8_t *data, size_t size, finch_tensor_list *list) {
    cJSON *root = NULL;
    size_t start;
    finch_status st = parse_header(data, size, &root, &start);
    const cJSON *meta = NULL;
    for (const cJSON *e = root ? root->child : NULL; e && st == FINCH_OK; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            meta = e;
            continue;
        }
        finch_tensor_ref t;
        st = parse_entry(e, data + start, size - start, &t);
        if (st == FINCH_OK) st = finch_tensor_list_push(list, &t);
    }
    if (st == FINCH_OK) st = finch_tensor_list_finish(list);
    if (st == FINCH_OK && meta) st = add_aliases(meta, list);
    cJSON_Delete(root);
    return st;
}

/* ----------------------------------------------------------- config.json */

/* A positive integer field; `dflt` 0 means the field is required. */
static finch_status cfg_size(const cJSON *root, const char *key, size_t dflt, size_t *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) {
        if (!dflt) return finch_fail(FINCH_ERR_FORMAT, "config.json has no %s", key);
        *out = dflt;
        return FINCH_OK;
    }
    if (!json_size(j, out) || *out == 0)
        return finch_fail(FINCH_ERR_FORMAT, "config.json %s is not a positive integer", key);
    return FINCH_OK;
}

static finch_status cfg_float(const cJSON *root, const char *key, float dflt, float *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = dflt;
    if (!j || cJSON_IsNull(j)) return FINCH_OK;
    if (!cJSON_IsNumber(j) || !(j->valuedouble > 0) || !isfinite((float)j->valuedouble))
        return finch_fail(FINCH_ERR_FORMAT, "config.json %s is not a positive number", key);
    *out = (float)j->valuedouble;
    return FINCH_OK;
}

/* A boolean field that must equal `want` when present. */
static bool cfg_flag_is(const cJSON *root, const char *key, bool want) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    return !j || cJSON_IsNull(j) || (cJSON_IsBool(j) && cJSON_IsTrue(j) == want);
}

static finch_status cfg_arch(const cJSON *root, finch_config *cfg) {
    static const struct { const char *hf, *arch; } archs[] = {
        {"LlamaForCausalLM", "llama"}, {"MistralForCausalLM", "llama"}, {"Qwen2ForCausalLM", "qwen2"},
        {"Qwen3ForCausalLM", "qwen3"}, {"Gemma2ForCausalLM", "gemma2"}, {"Gemma3ForCausalLM", "gemma3"},
        {"Phi3ForCausalLM", "phi3"}};
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *first = cJSON_IsArray(list) ? cJSON_GetArrayItem(list, 0) : NULL;
    if (!cJSON_IsString(first)) return finch_fail(FINCH_ERR_FORMAT, "config.json has no architectures list");
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (strcmp(first->valuestring, archs[i].hf) == 0) {
            finch_status st = finch_arch_setup(archs[i].arch, strlen(archs[i].arch), cfg);
            cfg->rope_pairing = FINCH_ROPE_HALF; /* HF checkpoints rotate (i, i + d/2) */
            return st;
        }
    return finch_fail(FINCH_ERR_UNSUPPORTED, "architecture %.64s is not supported "
                      "(LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
                      "Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM)", first->valuestring);
}

/* An activation field, when present, must name the family's activation. */
static bool cfg_act_is(const cJSON *root, const char *key, const char *want) {
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, key);
    return !act || cJSON_IsNull(act) || (cJSON_IsString(act) && strcmp(act->valuestring, want) == 0);
}

/* What this engine does not implement must be absent or off. */
static finch_status cfg_reject_unsupported(const cJSON *root, const finch_config *cfg) {
    const char *want = cfg->ffn_act == FINCH_ACT_GELU_TANH ? "gelu_pytorch_tanh" : "silu";
    if (!cfg_act_is(root, "hidden_act", want) || !cfg_act_is(root, "hidden_activation", want))
        return finch_fail(FINCH_ERR_UNSUPPORTED, "config.json hidden_act is not %s", want);
    if (!cfg_flag_is(root, "attention_bias", false) || !cfg_flag_is(root, "mlp_bias", false))
        return finch_fail(FINCH_ERR_UNSUPPORTED, "config.json attention_bias / mlp_bias are not supported");
    return FINCH_OK;
}

/* Sliding-window attention equals full attention while the sequence fits
 * in the window, so a window just caps the usable context. */
static void cfg_sliding_window(const cJSON *root, finch_config *cfg) {
    size_t window;
    if (strcmp(cfg->arch, "qwen2") && strcmp(cfg->arch, "qwen3")) return; /* hf_family_fields */
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "use_sliding_window"))) return;
    if (json_size(cJSON_GetObjectItemCaseSensitive(root, "sliding_window"), &window) && window > 0 &&
        window < cfg->ctx_len)
        cfg->ctx_len = window;
}

static finch_status cfg_shapes(const cJSON *root, finch_config *cfg) {
    finch_status st = cfg_size(root, "hidden_size", 0, &cfg->dim);
    if (st == FINCH_OK) st = cfg_size(root, "num_hidden_layers", 0, &cfg->n_layer);
    if (st == FINCH_OK) st = cfg_size(root, "num_attention_heads", 0, &cfg->n_head);
    if (st == FINCH_OK) st = cfg_size(root, "num_key_value_heads", cfg->n_head, &cfg->n_kv_head);
    if (st == FINCH_OK) st = cfg_size(root, "intermediate_size", 0, &cfg->ffn_dim);
    if (st == FINCH_OK) st = cfg_size(root, "vocab_size", 0, &cfg->vocab);
    if (st == FINCH_OK) st = cfg_size(root, "max_position_embeddings", 0, &cfg->ctx_len);
    if (st != FINCH_OK) return st;
    if (cfg->n_head % cfg->n_kv_head != 0)
        return finch_fail(FINCH_ERR_FORMAT, "config.json: %zu heads is not a multiple of %zu kv heads",
                          cfg->n_head, cfg->n_kv_head);
    if (!cJSON_GetObjectItemCaseSensitive(root, "head_dim") && cfg->dim % cfg->n_head != 0)
        return finch_fail(FINCH_ERR_FORMAT, "config.json: hidden_size %zu is not a multiple of %zu heads",
                          cfg->dim, cfg->n_head);
    if ((st = cfg_size(root, "head_dim", cfg->dim / cfg->n_head, &cfg->head_dim)) != FINCH_OK) return st;
    if (cfg->head_dim % 2 != 0)
        return finch_fail(FINCH_ERR_FORMAT, "config.json: head_dim %zu is odd (RoPE rotates pairs)", cfg->head_dim);
    cfg->rope_dim = cfg->head_dim;
    return FINCH_OK;
}

finch_status hf_parse_config(const char *json, size_t len, finch_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return finch_fail(FINCH_ERR_FORMAT, "config.json is not a JSON object");
    }
    finch_status st = cfg_arch(root, cfg);
    if (st == FINCH_OK) st = cfg_reject_unsupported(root, cfg);
    if (st == FINCH_OK) st = cfg_shapes(root, cfg);
    if (st == FINCH_OK) st = cfg_float(root, "rms_norm_eps", 1e-6f, &cfg->rms_eps);
    if (st == FINCH_OK) st = cfg_float(root, "rope_theta", 10000.0f, &cfg->rope_base);
    if (st == FINCH_OK) st = hf_rope_scaling(root, cfg);
    if (st == FINCH_OK) st = hf_family_fields(root, cfg);
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (st == FINCH_OK && tie && !cJSON_IsBool(tie) && !cJSON_IsNull(tie))
        st = finch_fail(FINCH_ERR_FORMAT, "config.json tie_word_embeddings is not a boolean");
    if (st == FINCH_OK) {
        cfg->tied_output = cJSON_IsTrue(tie);
        cfg_sliding_window(root, cfg);
    }
    cJSON_Delete(root);
    return st;
}

/* ------------------------------------------------------ model directory */

/* dir/name into out[HF_PATH_MAX]. */
static finch_status path_join(const char *dir, const char *name, char *out) {
    int n = snprintf(out, HF_PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= HF_PATH_MAX) return finch_fail(FINCH_ERR_ARG, "path %s/%s is too long", dir, name);
    return FINCH_OK;
}

/* out = dir/name when that file is readable, else "".  One that is there
 * but not a regular file (a FIFO would block its reader) is refused. */
static finch_status optional_file(const char *dir, const char *name, char *out) {
    finch_status st = path_join(dir, name, out);
    struct stat sb;
    if (st == FINCH_OK && access(out, R_OK) != 0) out[0] = 0;
    else if (st == FINCH_OK && (stat(out, &sb) != 0 || !S_ISREG(sb.st_mode)))
        st = finch_fail(FINCH_ERR_IO, "%s is not a regular file", out);
    return st;
}

static finch_status load_config(const char *dir, finch_config *cfg) {
    char path[HF_PATH_MAX], *text = NULL;
    size_t len;
    finch_status st = path_join(dir, "config.json", path);
    if (st == FINCH_OK) st = finch_read_regular_text_file(path, &text, &len);
    if (st == FINCH_OK && (st = hf_parse_config(text, len, cfg)) != FINCH_OK) finch_fail_prefix(st, "%s", path);
    free(text);
    return st;
}

static finch_status load_safetensors(hf_model_files *m, const char *dir, const char *file) {
    char path[HF_PATH_MAX];
    finch_status st = path_join(dir, file, path);
    if (st != FINCH_OK) return st;
    finch_map *maps = finch_alloc(m->n_maps + 1, sizeof *maps);
    if (!maps) return FINCH_ERR_NOMEM;
    if (m->n_maps) memcpy(maps, m->maps, m->n_maps * sizeof *maps);
    free(m->maps);
    m->maps = maps;
    if ((st = finch_map_file(path, &m->maps[m->n_maps])) != FINCH_OK) return st;
    const finch_map *map = &m->maps[m->n_maps++];
    if ((st = hf_parse_safetensors(map->data, map->size, &m->tensors)) != FINCH_OK)
        finch_fail_prefix(st, "%s", path);
    return st;
}

/* A shard name from the index must name a file inside the directory. */
static bool plain_file_name(const char *s) {
    return *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Load each distinct shard of weight_map once, then check every listed
 * tensor was found. */
static finch_status load_shards(hf_model_files *m, const char *dir, const cJSON *map) {
    if (!cJSON_IsObject(map)) return finch_fail(FINCH_ERR_FORMAT, "index has no weight_map object");
    finch_status st = FINCH_OK;
    for (const cJSON *e = map->child; e && st == FINCH_OK; e = e->next) {
        if (!cJSON_IsString(e) || !plain_file_name(e->valuestring))
            return finch_fail(FINCH_ERR_FORMAT, "weight_map entry '%s' does not name a file", e->string);
        const cJSON *prev = map->child;
        while (prev != e && strcmp(prev->valuestring, e->valuestring) != 0) prev = prev->next;
        if (prev == e) st = load_safetensors(m, dir, e->valuestring);
    }
    for (const cJSON *e = map->child; e && st == FINCH_OK; e = e->next)
        if (!finch_tensor_list_find(&m->tensors, e->string))
            st = finch_fail(FINCH_ERR_FORMAT, "tensor '%s' listed in the index is missing from %s",
                            e->string, e->valuestring);
    return st;
}

static finch_status load_index(hf_model_files *m, const char *dir, const char *path) {
    char *text = NULL;
    size_t len;
    finch_status st = finch_read_regular_text_file(path, &text, &len);
    if (st != FINCH_OK) return st;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(root))
        st = finch_fail(FINCH_ERR_FORMAT, "%s is not a JSON object", path);
    else
        st = load_shards(m, dir, cJSON_GetObjectItemCaseSensitive(root, "weight_map"));
    cJSON_Delete(root);
    return st;
}

static finch_status load_weights(hf_model_files *m, const char *dir) {
    char single[HF_PATH_MAX], index[HF_PATH_MAX];
    finch_status st = optional_file(dir, "model.safetensors", single);
    if (st == FINCH_OK) st = optional_file(dir, "model.safetensors.index.json", index);
    if (st != FINCH_OK) return st;
    if (single[0]) return load_safetensors(m, dir, "model.safetensors");
    if (index[0]) return load_index(m, dir, index);
    return finch_fail(FINCH_ERR_IO, "%s has no model.safetensors or model.safetensors.index.json", dir);
}

finch_status hf_open(const char *dir, hf_model_files *out) {
    memset(out, 0, sizeof *out);
    finch_status st = load_config(dir, &out->cfg);
    if (st == FINCH_OK) st = load_weights(out, dir);
    if (st == FINCH_OK) st = optional_file(dir, "tokenizer.json", out->tokenizer_json);
    if (st == FINCH_OK) st = optional_file(dir, "tokenizer_config.json", out->tokenizer_config);
    if (st != FINCH_OK) hf_close(out);
    return st;
}

void hf_close(hf_model_files *m) {
    for (size_t i = 0; i < m->n_maps; i++) finch_unmap(&m->maps[i]);
    free(m->maps);
    finch_tensor_list_free(&m->tensors);
    memset(m, 0, sizeof *m);
}

const finch_tensor_ref *hf_find(const hf_model_files *m, const char *name) {
    return finch_tensor_list_find(&m->tensors, name);
}
