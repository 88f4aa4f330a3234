/* cmd_info.c - `finch info` and `finch tokenize`. */
#include "cli.h"
#include "kernels.h"

#include <stdlib.h>

int cmd_info(int argc, char **argv) {
    cli_args a;
    const char *model = NULL;
    cli_args_init(&a, argc, argv);
    while (cli_next(&a)) {
        if (cli_opt(&a, "-m", "--model")) model = cli_value(&a);
        else if (!a.error) cli_unknown(&a);
    }
    int rc = cli_args_error(&a);
    finch_model *m = NULL;
    if (rc || (rc = cli_load_model(model, &m))) return rc;
    finch_model_describe(m, stdout);
    printf("kernels: %s%s\n", finch_isa_name(finch_isa_current()),
           finch_blas_available() ? ", OpenBLAS sgemm for f32 prefill" : "");
    finch_model_free(m);
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    cli_args a;
    const char *model = NULL;
    int no_bos = 0;
    cli_args_init(&a, argc, argv);
    while (cli_next(&a)) {
        if (cli_opt(&a, "-m", "--model")) model = cli_value(&a);
        else if (cli_opt(&a, NULL, "--no-bos")) no_bos = 1;
        else if (!cli_positional(&a, 1)) cli_unknown(&a);
    }
    int rc = cli_args_error(&a);
    if (rc) return rc;
    if (a.n_positional != 1) return cli_error("tokenize needs the text as one argument");
    finch_model *m = NULL;
    if ((rc = cli_load_model(model, &m))) return rc;
    int32_t *ids = NULL;
    size_t n = 0;
    rc = cli_tokenize(m, a.positional[0], !no_bos, &ids, &n);
    for (size_t i = 0; !rc && i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
    if (!rc) printf("\n");
    free(ids);
    finch_model_free(m);
    return rc;
}
