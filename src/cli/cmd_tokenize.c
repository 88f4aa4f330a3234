/* cmd_tokenize.c - `finch tokenize`: text to ids, or ids to text, with a
 * model or a tokenizer file alone (finch_tokenizer_load: no weights). */
#include "cli.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_tokenize(int argc, char **argv, cli_tokenize_opts *o) {
    cli_args a;
    *o = (cli_tokenize_opts){ .add_bos = true };
    cli_args_init(&a, argc, argv);
    while (cli_next(&a)) {
        if (cli_opt(&a, "-m", "--model")) o->model = cli_value(&a);
        else if (cli_opt(&a, "-f", "--file")) o->file = cli_value(&a);
        else if (cli_opt(&a, NULL, "--no-bos")) o->add_bos = false;
        else if (cli_opt(&a, NULL, "--ids")) o->ids = true;
        else if (cli_opt(&a, NULL, "--json")) o->json = true;
        else if (cli_opt(&a, NULL, "--decode")) o->decode = cli_value(&a);
        else if (!cli_positional(&a, 1)) cli_unknown(&a);
    }
    int rc = cli_args_error(&a);
    if (rc) return rc;
    if (!o->model) return cli_error("no tokenizer given (-m FILE: a model or a tokenizer file)");
    if (o->ids && o->json) return cli_error("--ids and --json choose the output: use one");
    if ((a.n_positional == 1) + !!o->file + !!o->decode != 1)
        return cli_error("tokenize needs one of: the text as one argument, -f FILE, --decode IDS");
    o->text = a.n_positional ? a.positional[0] : NULL;
    return 0;
}

/* "1,2,3" (spaces allowed) into ids below vocab. */
static int parse_ids(const char *list, size_t vocab, int32_t **ids, size_t *n) {
    size_t cap = strlen(list) / 2 + 1;
    *ids = malloc(cap * sizeof **ids);
    *n = 0;
    if (!*ids) return cli_out_of_memory();
    for (const char *p = list; *p;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || (size_t)v >= vocab || v > INT32_MAX) {
            free(*ids);
            return cli_error("--decode needs token ids in [0, %zu) separated by commas, got '%s'", vocab, list);
        }
        (*ids)[(*n)++] = (int32_t)v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    return 0;
}

/* A piece as JSON text: its bytes when they are UTF-8, else <0xXX> each. */
static cJSON *piece_json(const finch_tokenizer *t, int32_t prev, int32_t id) {
    char buf[256], hex[256 * 6 + 1];
    size_t n = finch_token_to_bytes(t, prev, id, buf, sizeof buf - 1);
    buf[n] = 0;
    if (finch_check_text(buf, n) == FINCH_OK) return cJSON_CreateString(buf);
    size_t h = 0;
    for (size_t i = 0; i < n; i++) h += (size_t)snprintf(hex + h, sizeof hex - h, "<0x%02X>", (unsigned char)buf[i]);
    return cJSON_CreateString(hex);
}

static int print_json(const finch_tokenizer *t, const int32_t *ids, size_t n, const char *text) {
    cJSON *j = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(j, "ids"), *p = cJSON_AddArrayToObject(j, "pieces");
    cJSON_AddStringToObject(j, "finch_version", finch_version());
    cJSON_AddStringToObject(j, "tokenizer", finch_tokenizer_kind(t));
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
        cJSON_AddItemToArray(p, piece_json(t, i ? ids[i - 1] : -1, ids[i]));
    }
    if (text) cJSON_AddStringToObject(j, "text", text);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s) return cli_out_of_memory();
    printf("%s\n", s);
    free(s);
    return 0;
}

static int decode(const cli_tokenize_opts *o, const finch_tokenizer *t) {
    int32_t *ids;
    size_t n;
    int rc = parse_ids(o->decode, finch_tokenizer_vocab(t), &ids, &n);
    if (rc) return rc;
    char *text = malloc(n * 256 + 1);
    size_t len = 0;
    if (!text) rc = cli_out_of_memory();
    for (size_t i = 0; !rc && i < n; i++)
        len += finch_token_to_bytes(t, i ? ids[i - 1] : -1, ids[i], text + len, 256);
    if (!rc) {
        text[len] = 0;
        if (o->json) rc = print_json(t, ids, n, text);
        else printf("%s\n", text);
    }
    free(text);
    free(ids);
    return rc;
}

static int encode(const cli_tokenize_opts *o, const finch_tokenizer *t) {
    char *file_text = NULL;
    size_t len = o->text ? strlen(o->text) : 0;
    finch_status st = o->file ? finch_read_file(o->file, &file_text, &len) : FINCH_OK;
    if (st) return cli_fail(st, "cannot read the text");
    const char *text = o->file ? file_text : o->text;
    int32_t *ids = NULL;
    size_t n = 0;
    st = finch_check_text(text, len);
    if (!st) st = finch_tokenize(t, text, len, o->add_bos ? 1 : 0, &ids, &n);
    int rc = st ? cli_fail(st, "cannot tokenize") : 0;
    if (!rc && o->json) rc = print_json(t, ids, n, NULL);
    else if (!rc) {
        if (o->ids) putchar('[');
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? (o->ids ? ", " : " ") : "", ids[i]);
        printf(o->ids ? "]\n" : "\n");
    }
    free(ids);
    free(file_text);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    cli_tokenize_opts o;
    int rc = cli_parse_tokenize(argc, argv, &o);
    if (rc) return rc;
    finch_tokenizer *t = NULL;
    finch_status st = finch_tokenizer_load(o.model, &t);
    if (st) return cli_fail(st, "cannot load the tokenizer");
    rc = o.decode ? decode(&o, t) : encode(&o, t);
    finch_tokenizer_free(t);
    return rc;
}
