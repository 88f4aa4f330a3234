/* cmd_convert.c - `finch convert`: write a GGUF file (llama.cpp layout) from
 * a Hugging Face directory, a GGUF file or a llama2.c checkpoint; the work
 * is finch_convert() in src/convert.c.
 */
#include "cli.h"
#include "model.h"

#include <stdlib.h>
#include <string.h>

static bool parse_type(const char *s, finch_dtype *t) {
    static const struct { const char *name; finch_dtype t; } types[] = {
        { "f32", FINCH_F32 }, { "f16", FINCH_F16 }, { "bf16", FINCH_BF16 }, { "q8_0", FINCH_Q8_0 },
        { "q4_0", FINCH_Q4_0 } };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(s, types[i].name)) { *t = types[i].t; return true; }
    return false;
}

static bool is_llama2c(const char *path) {
    size_t n = strlen(path);
    return n > 4 && !strcmp(path + n - 4, ".bin");
}

int cli_parse_convert(int argc, char **argv, cli_convert_opts *o) {
    cli_args a;
    *o = (cli_convert_opts){ .type_name = "f32", .type = FINCH_F32 };
    cli_args_init(&a, argc, argv);
    while (cli_next(&a)) {
        if (cli_opt(&a, NULL, "--type")) o->type_name = cli_value(&a);
        else if (cli_opt(&a, NULL, "--tokenizer")) o->tokenizer = cli_value(&a);
        else if (!cli_positional(&a, 2)) cli_unknown(&a);
    }
    int rc = cli_args_error(&a);
    if (rc) return rc;
    if (a.n_positional != 2) return cli_error("convert needs INPUT and OUTPUT.gguf");
    if (!parse_type(o->type_name, &o->type))
        return cli_error("--type must be f32, f16, bf16, q8_0 or q4_0, got '%s'", o->type_name);
    o->input = a.positional[0];
    o->output = a.positional[1];
    return 0;
}

int cmd_convert(int argc, char **argv) {
    cli_convert_opts o;
    int rc = cli_parse_convert(argc, argv, &o);
    if (rc) return rc;
    const char *inputs[] = { o.input, o.tokenizer };
    if ((rc = cli_output_check("convert", o.output, inputs, 2))) return rc; /* before the work */
    cli_watch_mapped(o.input);
    finch_model *m = NULL;
    finch_status st = is_llama2c(o.input) ? finch_model_load_llama2c(o.input, o.tokenizer, &m)
                                          : finch_model_load(o.input, &m);
    if (st) return cli_fail(st, "cannot load model");
    st = finch_convert(m, o.type, o.output);
    finch_model_free(m);
    if (st) return cli_fail(st, "convert");
    fprintf(stderr, "finch: wrote %s (%s)\n", o.output, o.type_name);
    return 0;
}
