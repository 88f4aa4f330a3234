/* cmd_compare.c - `finch compare REF OTHER`: does another implementation's
 * dump (OTHER) agree with finch's (REF)?  The comparison is the library's
 * (src/compare.c); this file reports it.  Exit 0 within tolerance, 1 not,
 * 2 on bad input. */
#include "cli.h"
#include "finch_compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *ref, *other;
    finch_compare_opts o;
    bool json;
} compare_opts;

static int parse_compare(int argc, char **argv, compare_opts *c) {
    cli_args a;
    cli_args_init(&a, argc, argv);
    memset(c, 0, sizeof *c);
    c->o = finch_compare_defaults();
    while (cli_next(&a)) {
        if (cli_opt(&a, NULL, "--atol")) c->o.atol = cli_double(&a, 0, 1e30);
        else if (cli_opt(&a, NULL, "--rtol")) c->o.rtol = cli_double(&a, 0, 1e30);
        else if (cli_opt(&a, NULL, "--tie")) c->o.tie = cli_double(&a, 0, 1);
        else if (cli_opt(&a, NULL, "--json")) c->json = true;
        else if (!cli_positional(&a, 2)) cli_unknown(&a);
    }
    int rc = cli_args_error(&a);
    if (rc) return rc;
    if (a.n_positional != 2) return cli_error("compare needs two dump directories: REF OTHER");
    c->ref = a.positional[0];
    c->other = a.positional[1];
    return 0;
}

static const char *verdict_name(finch_head_verdict v) {
    return v == FINCH_HEAD_AGREE ? "agree" : v == FINCH_HEAD_EXCUSED ? "excused" : "disagree";
}

static void print_tensor(const char *name, const finch_compare_tensor *t, bool decides) {
    if (!t->present) {
        printf("%s: not compared (not in both dumps)\n", name);
        return;
    }
    printf("%s: %zu values, max abs error %.3g, max rel error %.3g", name, t->n, t->max_abs, t->max_rel);
    if (t->n_skipped) printf(", %zu rows at other ranks not compared (no RoPE facts)", t->n_skipped);
    printf(": %s\n", !decides ? "not judged (the kept sets differ)" : t->ok ? "ok" : "OUT OF TOLERANCE");
}

static void print_report(const compare_opts *c, const finch_compare_result *r) {
    size_t LG = r->n_layer * r->n_kv_head, shown = 0;
    printf("finch compare: %s (ref) vs %s (atol %g, rtol %g, tie %g)\n", c->ref, c->other, c->o.atol, c->o.rtol,
           c->o.tie);
    printf("kept sets: %zu heads (%zu layers x %zu KV heads), n_kept %zu vs %zu: %zu agree, %zu excused "
           "(%zu positions in near ties), %zu disagree (%zu positions)\n", LG, r->n_layer, r->n_kv_head,
           r->ref_n_kept, r->other_n_kept, r->agree, r->excused, r->excused_positions, r->disagree,
           r->disagree_positions);
    for (size_t lg = 0; lg < LG; lg++) {
        if (r->verdict[lg] == FINCH_HEAD_AGREE) continue;
        if (shown++ == 20) {
            printf("  ... and more\n");
            break;
        }
        printf("  layer %zu head %zu: %s, %zu positions kept by one side (ref margin %.3g)\n", lg / r->n_kv_head,
               lg % r->n_kv_head, verdict_name(r->verdict[lg]), r->n_differ[lg], r->ref_margin[lg]);
    }
    print_tensor("keys", &r->keys, true);
    print_tensor("values", &r->values, true);
    print_tensor("logits", &r->logits, r->logits_decide);
    printf("result: %s\n", r->ok ? "ok" : "FAIL");
}

static cJSON *tensor_json(const finch_compare_tensor *t, bool decides) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "compared", t->present);
    cJSON_AddNumberToObject(j, "n", (double)t->n);
    cJSON_AddNumberToObject(j, "skipped_rows", (double)t->n_skipped);
    cli_json_number(j, "max_abs", t->max_abs);
    cli_json_number(j, "max_rel", t->max_rel);
    cJSON_AddBoolToObject(j, "judged", t->present && decides);
    cJSON_AddBoolToObject(j, "ok", t->ok);
    return j;
}

static char *report_json(const compare_opts *c, const finch_compare_result *r) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "ref", c->ref);
    cJSON_AddStringToObject(j, "other", c->other);
    cJSON_AddNumberToObject(j, "atol", c->o.atol);
    cJSON_AddNumberToObject(j, "rtol", c->o.rtol);
    cJSON_AddNumberToObject(j, "tie", c->o.tie);
    cJSON_AddNumberToObject(j, "ref_n_kept", (double)r->ref_n_kept);
    cJSON_AddNumberToObject(j, "other_n_kept", (double)r->other_n_kept);
    cJSON *k = cJSON_AddObjectToObject(j, "kept");
    cJSON_AddNumberToObject(k, "heads", (double)(r->n_layer * r->n_kv_head));
    cJSON_AddNumberToObject(k, "agree", (double)r->agree);
    cJSON_AddNumberToObject(k, "excused", (double)r->excused);
    cJSON_AddNumberToObject(k, "disagree", (double)r->disagree);
    cJSON_AddNumberToObject(k, "excused_positions", (double)r->excused_positions);
    cJSON_AddNumberToObject(k, "disagree_positions", (double)r->disagree_positions);
    cJSON *heads = cJSON_AddArrayToObject(k, "differing_heads");
    for (size_t lg = 0; lg < r->n_layer * r->n_kv_head; lg++) {
        if (r->verdict[lg] == FINCH_HEAD_AGREE) continue;
        cJSON *h = cJSON_CreateObject();
        cJSON_AddNumberToObject(h, "layer", (double)(lg / r->n_kv_head));
        cJSON_AddNumberToObject(h, "head", (double)(lg % r->n_kv_head));
        cJSON_AddStringToObject(h, "verdict", verdict_name(r->verdict[lg]));
        cJSON_AddNumberToObject(h, "positions", (double)r->n_differ[lg]);
        cli_json_number(h, "ref_margin", r->ref_margin[lg]);
        cJSON_AddItemToArray(heads, h);
    }
    cJSON_AddItemToObject(j, "keys", tensor_json(&r->keys, true));
    cJSON_AddItemToObject(j, "values", tensor_json(&r->values, true));
    cJSON_AddItemToObject(j, "logits", tensor_json(&r->logits, r->logits_decide));
    cJSON_AddBoolToObject(j, "ok", r->ok);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

int cmd_compare(int argc, char **argv) {
    compare_opts c;
    int rc = parse_compare(argc, argv, &c);
    if (rc) return rc;
    finch_compare_result r;
    finch_status st = finch_compare_dumps(c.ref, c.other, &c.o, &r);
    if (st) return cli_fail(st, "compare");
    if (c.json) {
        char *s = report_json(&c, &r);
        if (!s) {
            finch_compare_free(&r);
            return cli_out_of_memory();
        }
        printf("%s\n", s);
        free(s);
    } else {
        print_report(&c, &r);
    }
    rc = r.ok ? 0 : 1;
    finch_compare_free(&r);
    return rc;
}
