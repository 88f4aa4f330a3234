/* fuzz_hf_dir.c - a Hugging Face model directory: config.json,
 * model.safetensors or model.safetensors.index.json and its shards, and
 * whatever else the input names (tokenizer.json, ...).
 *
 * Layout of an input: config.json, then files framed by "\n##file NAME\n"
 * lines (hf_frame.h), written into one directory (on /dev/shm when it
 * exists) emptied before each input.  The directory then goes through
 * hf_open (every tensor walked, inside its mapping) and finch_model_load
 * (config checks, shard index, binding by name and shape, the NaN scan,
 * the tokenizer), whose memory estimate is then computed. */
#include "fuzz_common.h"
#include "hf_frame.h"
#include "safetensors.h"

#include <dirent.h>

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
    if (!hf_frame_write(dir, data, size)) abort();
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
