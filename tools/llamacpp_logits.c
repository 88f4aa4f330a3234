/* llamacpp_logits.c - llama.cpp's logits for given token ids, as a .npy, so
 * that finch can be compared with llama.cpp as a second oracle
 * (docs/llamacpp-agreement.md).  Our own small program, built against a
 * llama.cpp build by tools/build_peer_logits.sh; nothing of llama.cpp is
 * committed.
 *
 *   llamacpp_logits -m MODEL.gguf --ids 1,2,3 | --ids-npy FILE.npy
 *                   [-o OUT.npy] [--last] [-t THREADS] [--batch N]
 *                   [--kv f32|f16] [--flash-attn off|on] [--no-repack] [-v]
 *
 * Writes float32 [n, vocab] (every position; [1, vocab] with --last) to
 * OUT.npy; without -o it prints each written row's argmax and first logits.
 * Defaults are the ones that make a comparison exact where it can be: an F32
 * KV cache, flash attention off, one batch of up to 512 tokens (finch's
 * prefill batch), every thread count giving the same bits in both engines.
 * --no-repack turns off llama.cpp's "extra" (repacked) weight buffers (on
 * x86: Q4_0, IQ4_NL and Q4_K with AVX2, Q2_K with AVX-512), whose kernels
 * compute the same products in another float order.  The .npy reading and
 * writing are our own here: the tool stays apart from finch (libfinch.a's
 * gguf_* symbols would replace ggml's; libfinch.so exports finch_* only).
 * Errors: one line on stderr, exit 2 for bad input, 1 for llama.cpp failing. */
#include "llama.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer_common.h"

typedef struct {
    const char *model, *ids, *ids_npy, *out;
    int last, threads, batch, kv_f16, flash, no_repack, verbose;
} options;

static int fail(int code, const char *fmt, const char *arg) {
    fprintf(stderr, "llamacpp_logits: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return code;
}

/* llama.cpp's log: shown with -v; otherwise its first error line is kept
 * for our own one-line message. */
static char first_error[256];

static void quiet_log(enum ggml_log_level level, const char *text, void *user) {
    const options *o = user;
    if (o->verbose) fputs(text, stderr);
    if (level == GGML_LOG_LEVEL_ERROR && !first_error[0]) {
        snprintf(first_error, sizeof first_error, "%s", text);
        first_error[strcspn(first_error, "\n")] = '\0';
    }
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){ .threads = 1, .batch = 512 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        const char *v = has_value ? argv[i + 1] : NULL;
        if (!strcmp(a, "--last")) { o->last = 1; continue; }
        if (!strcmp(a, "--no-repack")) { o->no_repack = 1; continue; }
        if (!strcmp(a, "-v")) { o->verbose = 1; continue; }
        if (!has_value) return fail(2, "option %s needs a value (or is unknown)", a);
        i++;
        if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "--ids")) o->ids = v;
        else if (!strcmp(a, "--ids-npy")) o->ids_npy = v;
        else if (!strcmp(a, "-o")) o->out = v;
        else if (!strcmp(a, "-t")) { if (parse_int(v, 1, 256, &o->threads)) return fail(2, "-t %s: not a thread count in 1..256", v); }
        else if (!strcmp(a, "--batch")) { if (parse_int(v, 1, 1 << 16, &o->batch)) return fail(2, "--batch %s: not in 1..65536", v); }
        else if (!strcmp(a, "--kv")) {
            if (strcmp(v, "f32") && strcmp(v, "f16")) return fail(2, "--kv %s: expected f32 or f16", v);
            o->kv_f16 = !strcmp(v, "f16");
        } else if (!strcmp(a, "--flash-attn")) {
            if (strcmp(v, "on") && strcmp(v, "off")) return fail(2, "--flash-attn %s: expected on or off", v);
            o->flash = !strcmp(v, "on");
        } else return fail(2, "unknown option %s", a);
    }
    if (!o->model) return fail(2, "%s", "no model: give -m MODEL.gguf");
    if (!o->ids == !o->ids_npy) return fail(2, "%s", "give exactly one of --ids 1,2,3 and --ids-npy FILE.npy");
    return 0;
}

/* A 1-D little-endian int32 or int64 .npy (numpy's own writer: version 1
 * or 2 header, C order). */
static int read_id_npy(const char *path, llama_token **ids, int *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(2, "--ids-npy %s: cannot open", path);
    unsigned char pre[12];
    int rc = 2;
    char *hdr = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) goto bad;
    size_t hlen = pre[6] == 1 ? (size_t)(pre[8] | pre[9] << 8) : 0;
    if (pre[6] >= 2) {
        if (fread(pre + 10, 1, 2, f) != 2) goto bad;
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (hlen == 0 || hlen > 65536 || !(hdr = calloc(hlen + 1, 1)) || fread(hdr, 1, hlen, f) != hlen) goto bad;
    int wide = strstr(hdr, "'<i8'") != NULL;
    if ((!wide && !strstr(hdr, "'<i4'")) || strstr(hdr, "'fortran_order': True")) goto bad;
    const char *shape = strstr(hdr, "'shape': (");
    long count;
    if (!shape || sscanf(shape + 10, "%ld", &count) != 1 || count <= 0 || count > (1L << 20)) goto bad;
    const char *after = shape + 10 + strspn(shape + 10, "0123456789");
    if (strncmp(after, ",)", 2)) goto bad; /* one dimension only */
    *ids = malloc((size_t)count * sizeof **ids);
    if (!*ids) { rc = fail(1, "%s", "out of memory"); goto done; }
    for (long i = 0; i < count; i++) {
        int64_t v = 0;
        int32_t v32;
        if (wide ? fread(&v, 8, 1, f) != 1 : fread(&v32, 4, 1, f) != 1) goto bad;
        if (!wide) v = v32;
        if (v < 0 || v > INT32_MAX) goto bad;
        (*ids)[i] = (llama_token)v;
    }
    *n = (int)count;
    rc = 0;
    goto done;
bad:
    rc = fail(2, "--ids-npy %s: not a 1-D int32/int64 .npy of non-negative ids", path);
done:
    free(hdr);
    fclose(f);
    return rc;
}

/* float32 [rows, cols] as a version-1 .npy, written to a temporary name
 * and renamed, so that no half-written file is left behind. */
static int write_npy(const char *path, const float *x, int rows, int cols) {
    char tmp[4096], hdr[128];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return fail(2, "-o %s: path too long", path);
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols);
    int pad = 64 - (10 + len + 1) % 64;
    FILE *f = fopen(tmp, "wb");
    if (!f) return fail(2, "-o %s: cannot create", path);
    unsigned short hl = (unsigned short)(len + pad + 1);
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8) };
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)len, f) == (size_t)len;
    for (int i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && fwrite(x, sizeof *x, (size_t)rows * cols, f) == (size_t)rows * cols;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) {
        remove(tmp);
        return fail(1, "-o %s: write failed", path);
    }
    return 0;
}

static struct llama_context *make_context(struct llama_model *model, const options *o, int n) {
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)n;
    cp.n_batch = cp.n_ubatch = (uint32_t)(o->batch < n ? o->batch : n);
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = o->threads;
    cp.type_k = cp.type_v = o->kv_f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
    cp.flash_attn_type = o->flash ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.no_perf = true;
    return llama_init_from_model(model, cp);
}

/* Feed ids in batches of o->batch, copying the wanted rows of each batch's
 * logits into out ([n or 1][vocab]). */
static int run_batches(struct llama_context *ctx, const options *o, const llama_token *ids, int n,
                       int vocab, float *out) {
    int step = o->batch < n ? o->batch : n;
    struct llama_batch b = llama_batch_init(step, 0, 1);
    int rc = 0;
    for (int p0 = 0; p0 < n && !rc; p0 += step) {
        int m = n - p0 < step ? n - p0 : step;
        b.n_tokens = m;
        for (int i = 0; i < m; i++) {
            b.token[i] = ids[p0 + i];
            b.pos[i] = p0 + i;
            b.n_seq_id[i] = 1;
            b.seq_id[i][0] = 0;
            b.logits[i] = !o->last || p0 + i == n - 1;
        }
        if (llama_decode(ctx, b)) { rc = fail(1, "llama_decode failed (%s)", first_error[0] ? first_error : "no reason given"); break; }
        for (int i = 0; i < m; i++) {
            if (!b.logits[i]) continue;
            const float *row = llama_get_logits_ith(ctx, i);
            if (!row) { rc = fail(1, "%s", "llama.cpp returned no logits"); break; }
            memcpy(out + (size_t)(o->last ? 0 : p0 + i) * vocab, row, (size_t)vocab * sizeof *row);
        }
    }
    llama_batch_free(b);
    return rc;
}

static int check_ids(const llama_token *ids, int n, int vocab) {
    for (int i = 0; i < n; i++) {
        if (ids[i] >= vocab) {
            char msg[64];
            snprintf(msg, sizeof msg, "%d (position %d)", ids[i], i);
            return fail(2, "token id %s is not below the vocabulary size", msg);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    options o;
    int rc = parse_args(argc, argv, &o), n = 0;
    llama_token *ids = NULL;
    if (rc) return rc;
    size_t n_list = 0;
    rc = o.ids ? peer_parse_id_list("llamacpp_logits", o.ids, &ids, &n_list) : read_id_npy(o.ids_npy, &ids, &n);
    if (o.ids && !rc && n_list > (1u << 20)) rc = fail(2, "%s", "--ids: more than 2^20 ids");
    if (o.ids) n = (int)n_list;
    if (!rc) rc = peer_check_output("llamacpp_logits", o.out);
    if (rc) { free(ids); return rc; }
    llama_log_set(quiet_log, &o);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.use_extra_bufts = !o.no_repack;
    struct llama_model *model = llama_model_load_from_file(o.model, mp);
    struct llama_context *ctx = NULL;
    float *logits = NULL;
    if (!model) {
        fprintf(stderr, "llamacpp_logits: %s: llama.cpp cannot load this model (%s)\n", o.model,
                first_error[0] ? first_error : "no reason given");
        rc = 2;
        goto done;
    }
    int vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    if ((rc = check_ids(ids, n, vocab))) goto done;
    if (!(ctx = make_context(model, &o, n))) {
        rc = fail(1, "llama.cpp cannot make a context (%s)", first_error[0] ? first_error : "no reason given");
        goto done;
    }
    int rows = o.last ? 1 : n;
    if (!(logits = malloc((size_t)rows * vocab * sizeof *logits))) { rc = fail(1, "%s", "out of memory"); goto done; }
    if ((rc = run_batches(ctx, &o, ids, n, vocab, logits))) goto done;
    if (o.out) rc = write_npy(o.out, logits, rows, vocab);
    else peer_print_rows(logits, (size_t)rows, (size_t)vocab);
done:
    free(logits);
    if (ctx) llama_free(ctx);
    if (model) llama_model_free(model);
    llama_backend_free();
    free(ids);
    return rc;
}
