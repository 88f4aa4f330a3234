/* fuzz_hf_dir.c - a Hugging Face model directory: config.json,
 * model.safetensors or model.safetensors.index.json and its shards, and
 * whatever else the input names (tokenizer.json, ...).
 *
 * Layout of an input: the text of config.json, then any number of files,
 * each introduced by a line "\n##file NAME\n" and running to the next such
 * line or the end.  NAME is 1..64 of [A-Za-z0-9._-] (not "." or ".."),
 * otherwise the file is dropped; a later file of the same name replaces an
 * earlier one.  The files are written into one directory (on /dev/shm when
 * it exists) emptied before each input, then the directory goes through
 * hf_open (every tensor walked, inside its mapping) and finch_model_load
 * (config checks, shard index, binding by name and shape, the NaN scan,
 * the tokenizer), whose memory estimate is then computed. */
#include "fuzz_common.h"
#include "safetensors.h"

#include <dirent.h>

#define SEP "\n##file "
#define MAX_FILES 8

static char dir[64];

static void clear_dir(void) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[128];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static void remove_dir(void) {
    clear_dir();
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/finch-fuzz-hf-XXXXXX", base);
    if (!mkdtemp(dir)) abort();
    atexit(remove_dir);
    return 0;
}

static bool good_name(const char *s, size_t n) {
    if (n == 0 || n > 64 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

static void write_file(const char *name, size_t name_len, const uint8_t *data, size_t n) {
    char path[160];
    snprintf(path, sizeof path, "%s/%.*s", dir, (int)name_len, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    if (fclose(f) != 0) abort();
}

/* Split the input into files (see the top of the file). */
static void write_files(const uint8_t *data, size_t size) {
    const uint8_t *end = data + size, *p = data;
    const char *name = "config.json";
    size_t name_len = strlen(name);
    for (int files = 0; files < MAX_FILES; files++) {
        const uint8_t *sep = memmem(p, (size_t)(end - p), SEP, strlen(SEP));
        const uint8_t *stop = sep ? sep : end;
        if (good_name(name, name_len)) write_file(name, name_len, p, (size_t)(stop - p));
        if (!sep) return;
        name = (const char *)sep + strlen(SEP);
        const uint8_t *nl = memchr(name, '\n', (size_t)(end - (const uint8_t *)name));
        if (!nl) return;
        name_len = (size_t)(nl - (const uint8_t *)name);
        p = nl + 1;
    }
}

static void walk(const hf_model_files *h) {
    for (size_t i = 0; i < h->tensors.n; i++) {
        const finch_tensor_ref *t = &h->tensors.t[i];
        fuzz_touch(t->name, strlen(t->name));
        if (t->nbytes) {
            fuzz_touch(t->data, 1);
            fuzz_touch((const uint8_t *)t->data + t->nbytes - 1, 1);
        }
        fuzz_rows(t->type, t->data, t->nbytes, t->ne[0]);
        if (hf_find(h, t->name) == NULL) abort(); /* the list is sorted and finds what it holds */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *sink;
    clear_dir();
    write_files(data, size);
    hf_model_files h;
    finch_status st = hf_open(dir, &h);
    fuzz_check_status(st);
    if (st != FINCH_OK) return 0;
    walk(&h);
    hf_close(&h);
    finch_model *m = NULL;
    st = finch_model_load(dir, &m);
    fuzz_check_status(st);
    if (st == FINCH_OK) {
        if (!sink) sink = fopen("/dev/null", "w");
        if (sink) finch_model_describe(m, sink);
        finch_memory need = finch_memory_estimate(m, 64, 8);
        if (need.total < need.weights || need.total < need.kv_cache) abort(); /* saturates, never wraps */
        finch_model_free(m);
    }
    return 0;
}
