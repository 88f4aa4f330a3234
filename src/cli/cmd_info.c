/* cmd_info.c - `finch info`. */
#include "cli.h"
#include "finch_chat.h"
#include "gguf.h"
#include "kernels.h"

#include <stdlib.h>
#include <string.h>

/* llama.cpp's names of general.file_type (llama.h's LLAMA_FTYPE_*). */
static const char *file_type_name(uint64_t v) {
    static const char *names[] = {
        "ALL_F32", "MOSTLY_F16", "MOSTLY_Q4_0", "MOSTLY_Q4_1", "MOSTLY_Q4_1_SOME_F16 (removed)",
        "MOSTLY_Q4_2 (removed)", "MOSTLY_Q4_3 (removed)", "MOSTLY_Q8_0", "MOSTLY_Q5_0", "MOSTLY_Q5_1",
        "MOSTLY_Q2_K", "MOSTLY_Q3_K_S", "MOSTLY_Q3_K_M", "MOSTLY_Q3_K_L", "MOSTLY_Q4_K_S",
        "MOSTLY_Q4_K_M", "MOSTLY_Q5_K_S", "MOSTLY_Q5_K_M", "MOSTLY_Q6_K", "MOSTLY_IQ2_XXS",
        "MOSTLY_IQ2_XS", "MOSTLY_Q2_K_S", "MOSTLY_IQ3_XS", "MOSTLY_IQ3_XXS", "MOSTLY_IQ1_S",
        "MOSTLY_IQ4_NL", "MOSTLY_IQ3_S", "MOSTLY_IQ3_M", "MOSTLY_IQ2_S", "MOSTLY_IQ2_M",
        "MOSTLY_IQ4_XS", "MOSTLY_IQ1_M", "MOSTLY_BF16", "MOSTLY_Q4_0_4_4 (removed)",
        "MOSTLY_Q4_0_4_8 (removed)", "MOSTLY_Q4_0_8_8 (removed)", "MOSTLY_TQ1_0", "MOSTLY_TQ2_0",
        "MOSTLY_MXFP4_MOE", "MOSTLY_NVFP4", "MOSTLY_Q1_0", "MOSTLY_Q2_0"};
    if (v == 1024) return "GUESSED";
    return v < sizeof names / sizeof names[0] ? names[v] : "unknown";
}

/* A GGUF model: general.file_type and every tensor's type and shape (the
 * model loaded, so the file is valid; other formats print nothing). */
static void describe_gguf_tensors(const char *path) {
    size_t n = strlen(path);
    gguf_file g;
    if (n < 5 || strcmp(path + n - 5, ".gguf") || gguf_open(path, &g) != FINCH_OK) return;
    uint64_t ft;
    if (gguf_get_u64(&g, "general.file_type", &ft))
        printf("general.file_type: %llu (%s)\n", (unsigned long long)ft, file_type_name(ft));
    else
        printf("general.file_type: absent\n");
    printf("tensors: %zu\n", g.n_tensors);
    for (size_t i = 0; i < g.n_tensors; i++) {
        const gguf_tensor *t = &g.tensors[i];
        printf("  %-32.*s %-7s [", (int)t->name.len, t->name.ptr, finch_dtype_name(t->type));
        for (uint32_t d = 0; d < t->n_dims; d++) printf("%s%llu", d ? ", " : "", (unsigned long long)t->ne[d]);
        printf("]\n");
    }
    gguf_close(&g);
}

int cli_parse_info(int argc, char **argv, cli_info_opts *o) {
    cli_args a;
    *o = (cli_info_opts){ 0 };
    cli_args_init(&a, argc, argv);
    while (cli_next(&a)) {
        if (cli_opt(&a, "-m", "--model")) o->model = cli_value(&a);
        else if (!a.error) cli_unknown(&a);
    }
    return cli_args_error(&a);
}

/* What --chat-template auto would use (docs/chat-templates.md). */
static void print_chat_template(const finch_model *m) {
    const char *t = m->tokenizer ? finch_tokenizer_chat_template(m->tokenizer) : NULL;
    finch_chat_format f;
    if (!t) printf("chat template: none\n");
    else if (finch_chat_detect(t, &f) == FINCH_OK) printf("chat template: %s\n", finch_chat_format_name(f));
    else printf("chat template: %s\n", finch_last_error());
}

int cmd_info(int argc, char **argv) {
    cli_info_opts o;
    int rc = cli_parse_info(argc, argv, &o);
    finch_model *m = NULL;
    if (rc || (rc = cli_load_model(o.model, &m))) return rc;
    finch_model_describe(m, stdout);
    print_chat_template(m);
    describe_gguf_tensors(o.model);
    printf("kernels: %s\n", finch_kernels_describe());
    finch_model_free(m);
    return 0;
}
