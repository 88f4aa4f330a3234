/* cmd_info.c - `finch info`. */
#include "cli.h"
#include "finch_chat.h"
#include "kernels.h"

#include <stdlib.h>

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
    printf("kernels: %s\n", finch_kernels_describe());
    finch_model_free(m);
    return 0;
}
