/* tokenizer_file.c - a tokenizer from a file alone, without weights: what
 * `finch tokenize` reads.  The format is told from the file's first bytes
 * and its name; the builders are those of tokenizer_load.c and
 * tokenizer_spm.c. */
#include "finch.h"
#include "gguf.h"
#include "tokenizer.h"
#include "util.h"

#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

static bool ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && !strcmp(s + n - t, tail);
}

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static finch_status from_gguf_file(const char *path, finch_tokenizer **out) {
    gguf_file g;
    finch_status st = gguf_open(path, &g);
    if (st) return st;
    st = finch_tokenizer_from_gguf(&g, out);
    gguf_close(&g);
    if (!st && !*out) st = finch_fail(FINCH_ERR_FORMAT, "%s carries no tokenizer", path);
    return st;
}

/* tokenizer.json, with the tokenizer_config.json beside it when there is one. */
static finch_status from_json_file(const char *path, finch_tokenizer **out) {
    char config[4096];
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path) : 1;
    snprintf(config, sizeof config, "%.*s/tokenizer_config.json", dir_len, slash ? path : ".");
    return finch_tokenizer_from_json(path, is_file(config) ? config : NULL, out);
}

/* A llama2.c tokenizer.bin does not store its size: count the entries
 * (float score, int32 length, bytes) after the int32 max_token_length. */
static finch_status llama2c_vocab(const finch_map *m, const char *path, size_t *vocab) {
    size_t off = 4, n = 0;
    while (m->size >= off + 8) {
        uint32_t len;
        memcpy(&len, m->data + off + 4, 4);
        if (len > m->size - off - 8) break;
        off += 8 + len;
        n++;
    }
    if (off != m->size || n == 0)
        return finch_fail(FINCH_ERR_FORMAT, "%s: not a llama2.c tokenizer (entry %zu runs past the end)", path, n);
    *vocab = n;
    return FINCH_OK;
}

/* tiktoken: lines of "base64 rank". */
static bool looks_tiktoken(const finch_map *m) {
    size_t i = 0;
    while (i < m->size && i < 256 && m->data[i] != ' ') {
        uint8_t c = m->data[i++];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
              c == '='))
            return false;
    }
    return i > 0 && i < m->size && m->data[i] == ' ' && i + 1 < m->size && m->data[i + 1] >= '0' &&
           m->data[i + 1] <= '9';
}

static finch_status from_plain_file(const char *path, finch_tokenizer **out) {
    finch_map m;
    finch_status st = finch_map_file(path, &m);
    if (st) return st;
    size_t vocab = 0;
    if (m.size >= 4 && !memcmp(m.data, "GGUF", 4)) st = from_gguf_file(path, out);
    else if (ends_with(path, ".json") || (m.size && m.data[0] == '{')) st = from_json_file(path, out);
    else if (looks_tiktoken(&m)) st = finch_tokenizer_from_tiktoken(path, out);
    else if (ends_with(path, ".bin")) {
        if (!(st = llama2c_vocab(&m, path, &vocab))) st = finch_tokenizer_from_llama2c(path, vocab, out);
    } else if (m.size && m.data[0] == 0x0A) /* protobuf field 1, length-delimited: the first piece */
        st = finch_tokenizer_from_spm_model(path, out);
    else
        st = finch_fail(FINCH_ERR_FORMAT, "%s: not a tokenizer finch reads (GGUF, tokenizer.json, llama2.c "
                        "tokenizer.bin, SentencePiece or tiktoken tokenizer.model)", path);
    finch_unmap(&m);
    return st;
}

finch_status finch_tokenizer_load(const char *path, finch_tokenizer **out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return finch_fail(FINCH_ERR_IO, "cannot open %s", path);
    if (!S_ISDIR(sb.st_mode)) return from_plain_file(path, out);
    char file[4096];
    snprintf(file, sizeof file, "%s/tokenizer.json", path);
    if (is_file(file)) return from_json_file(file, out);
    snprintf(file, sizeof file, "%s/tokenizer.model", path);
    if (is_file(file)) return from_plain_file(file, out);
    return finch_fail(FINCH_ERR_IO, "%s: no tokenizer.json or tokenizer.model in this directory", path);
}
