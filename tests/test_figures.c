/* test_figures.c - the figures of `finch eval` and `finch run --plot-kept`
 * (src/svg.c, src/bootstrap.c): the bootstrap intervals against values
 * computed independently (a Python splitmix64 of the same definition), the
 * fixed press styles, the subtitle, the error bars and the bins of a kept
 * map for a known kept set. */
#include "testutil.h"

#include <stdbool.h>

#include "bootstrap.h"
#include "svg.h"

static char *render_chart(const finch_svg_chart *c, finch_status *st) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    *st = finch_svg_line_chart(f, c);
    fclose(f);
    return text;
}

static char *render_kept(const finch_svg_kept *k, const finch_svg_kept_spans *sp, finch_status *st) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    *st = finch_svg_kept_map_spans(f, k, sp);
    fclose(f);
    return text;
}

static size_t count(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

static void test_bootstrap_ci(void **state) {
    (void)state;
    double lo, hi;
    /* expected: tools-free Python of the documented definition (seed
     * 20240601, 1000 resamples, means[25], means[974]) */
    const double a[5] = { 0, 1, 1, 0, 1 }, b[4] = { 0.5, 2.0, 3.5, 1.0 };
    assert_int_equal(finch_bootstrap_ci95(a, 5, 1000, FINCH_BOOTSTRAP_SEED, &lo, &hi), FINCH_OK);
    assert_true(lo == 0.2 && hi == 1.0);
    assert_int_equal(finch_bootstrap_ci95(b, 4, 1000, FINCH_BOOTSTRAP_SEED, &lo, &hi), FINCH_OK);
    assert_true(lo == 0.75 && hi == 2.875);
    assert_int_equal(FINCH_BOOTSTRAP_RESAMPLES, 1000);
    assert_true(FINCH_BOOTSTRAP_SEED == 20240601u);
    /* NaNs are skipped; one value: a zero-width interval; none: NaN */
    const double c[3] = { NAN, 0.25, NAN };
    assert_int_equal(finch_bootstrap_ci95(c, 3, 1000, 1, &lo, &hi), FINCH_OK);
    assert_true(lo == 0.25 && hi == 0.25);
    assert_int_equal(finch_bootstrap_ci95(c, 1, 1000, 1, &lo, &hi), FINCH_OK);
    assert_true(isnan(lo) && isnan(hi));
    /* all equal: every resample mean is that value */
    const double d[6] = { 3, 3, 3, 3, 3, 3 };
    assert_int_equal(finch_bootstrap_ci95(d, 6, 1000, 9, &lo, &hi), FINCH_OK);
    assert_true(lo == 3 && hi == 3);
}

static void test_press_styles(void **state) {
    (void)state;
    const char *names[] = { "finch", "full", "truncate", "streaming", "snapkv", "h2o", "tova", "knorm", "random",
                            "snapkv-q", "keydiff", "chunkkv", "rag", "lingua", "pyramidkv", "adakv", "adakv-finch" };
    size_t n = sizeof names / sizeof names[0];
    /* every press has its own (colour, marker, dash) */
    for (size_t i = 0; i < n; i++) {
        finch_svg_style a = finch_svg_press_style(names[i]);
        assert_int_not_equal(strcmp(a.color, "#777777"), 0); /* not the unknown grey */
        for (size_t j = 0; j < i; j++) {
            finch_svg_style b = finch_svg_press_style(names[j]);
            bool same_dash = (!a.dash && !b.dash) || (a.dash && b.dash && !strcmp(a.dash, b.dash));
            if (!strcmp(a.color, b.color) && a.marker == b.marker && same_dash)
                fail_msg("%s and %s share a style", names[i], names[j]);
        }
    }
    finch_svg_style f = finch_svg_press_style("finch");
    assert_string_equal(f.color, "#D55E00");
    assert_int_equal(f.marker, FINCH_MARK_CIRCLE);
    assert_null(f.dash);
    assert_string_equal(finch_svg_press_style("snapkv").color, "#0072B2");
    assert_int_equal(finch_svg_press_style("full").marker, FINCH_MARK_NONE);
    assert_string_equal(finch_svg_press_style("nope").color, "#777777");
}

/* The same press has the same colour whatever the order of the series. */
static void test_chart_colours_order_free(void **state) {
    (void)state;
    const double x[2] = { 2, 4 }, y[2] = { 0.5, 0.25 }, lo[2] = { 0.25, 0.125 }, hi[2] = { 0.75, 0.5 };
    finch_svg_series s[2] = { { "snapkv", x, y, 2, 0, lo, hi }, { "finch", x, y, 2, 0, NULL, NULL } };
    finch_svg_chart c = { "t", "x", "y", 1, 0, 1, s, 2, "needle.gguf | t.jsonl | 2 items | mode iterative" };
    finch_status st;
    char *one = render_chart(&c, &st);
    assert_int_equal(st, FINCH_OK);
    finch_svg_series r[2] = { s[1], s[0] };
    c.series = r;
    char *two = render_chart(&c, &st);
    for (int k = 0; k < 2; k++) {
        const char *svg = k ? two : one;
        assert_non_null(strstr(svg, "<polyline fill=\"none\" stroke=\"#0072B2\""));
        assert_non_null(strstr(svg, "<polyline fill=\"none\" stroke=\"#D55E00\""));
        /* snapkv: squares (2 points + legend); finch: circles (2 + legend) */
        assert_int_equal(count(svg, "<rect x=") - 1, 3); /* minus the white background */
        assert_int_equal(count(svg, "<circle"), 3);
        assert_int_equal(count(svg, "class=\"ci\""), 2); /* error bars: snapkv only */
        assert_non_null(strstr(svg, ">needle.gguf | t.jsonl | 2 items | mode iterative</text>"));
    }
    free(one);
    free(two);
}

/* 2 layers x 2 heads over 2500 positions: 1000 bins of 2.5 positions; 40
 * heads would be many: rows per layer. */
static void test_kept_bins(void **state) {
    (void)state;
    assert_int_equal(finch_svg_kept_bins(2500), 1000);
    assert_int_equal(finch_svg_kept_bins(22), 22);
    assert_int_equal(finch_svg_kept_bin_of(4, 2500, 1000), 1);  /* 4 * 1000 / 2500 = 1.6 */
    assert_int_equal(finch_svg_kept_bin_of(5, 2500, 1000), 2);
    assert_int_equal(finch_svg_kept_bin_of(2499, 2500, 1000), 999);
    /* bins of 2 or 3 positions: bin 0 = {0,1,2}, bin 1 = {3,4}, bin 2 = {5,6,7} */
    const int32_t kept[4][3] = { { 0, 1, 2 }, { 3, 5, 6 }, { 0, 3, 4 }, { 2499, 2498, -1 } };
    finch_svg_kept k = { "map", &kept[0][0], 2, 2, 3, 2500, 0, -1 };
    const long start = 5, end = 8;
    finch_svg_kept_spans sp = { &start, &end, 1, "answer" };
    finch_status st;
    char *svg = render_kept(&k, &sp, &st);
    assert_int_equal(st, FINCH_OK);
    /* 4 rows per head: L0 H0 bin 0 full; L0 H1 bin 1 half, bin 2 two thirds;
     * L1 H0 bin 0 a third, bin 1 full; L1 H1 bin 999 = {2498, 2499} full */
    assert_non_null(strstr(svg, ">L1 H1</text>"));
    assert_int_equal(count(svg, "fill=\"#0072B2\""), 1 + 2 + 2 + 1);
    assert_non_null(strstr(svg, "fill=\"#0072B2\" fill-opacity=\"0.500\""));
    assert_non_null(strstr(svg, "fill=\"#0072B2\" fill-opacity=\"0.667\""));
    /* all: bin 0 = 3+1 of 12, bin 1 = 1+2 of 8, bin 2 = 2 of 12, bin 999 = 2 of 8 */
    assert_int_equal(count(svg, "fill=\"#D55E00\""), 4);
    assert_non_null(strstr(svg, "fill=\"#D55E00\" fill-opacity=\"0.333\""));
    assert_non_null(strstr(svg, "fill=\"#D55E00\" fill-opacity=\"0.375\""));
    assert_non_null(strstr(svg, "fill=\"#D55E00\" fill-opacity=\"0.250\""));
    assert_non_null(strstr(svg, "fill=\"#D55E00\" fill-opacity=\"0.167\""));
    /* the span 5..7 falls in bin 2: a bracket from x 62 to 63 above the rows */
    assert_non_null(strstr(svg, "<path class=\"span\" d=\"M62.00 64.0V56.0H63.00V64.0\""));
    assert_non_null(strstr(svg, ">answer 5-7</text>"));
    assert_non_null(strstr(svg, "1000 bins of 2.5 positions"));
    free(svg);
    /* 40 heads: one row per layer, heads aggregated */
    int32_t many[40][1];
    for (int i = 0; i < 40; i++) many[i][0] = i;
    finch_svg_kept m = { "map", &many[0][0], 2, 20, 1, 100, 0, -1 };
    svg = render_kept(&m, NULL, &st);
    assert_int_equal(st, FINCH_OK);
    assert_non_null(strstr(svg, ">L1</text>"));
    assert_null(strstr(svg, ">L0 H0</text>"));
    assert_non_null(strstr(svg, "(heads of a layer together)"));
    /* L0: positions 0..19 each once of 20 heads: one rect at 0.050 */
    assert_non_null(strstr(svg, "width=\"200.00\" height=\"10\" fill=\"#0072B2\" fill-opacity=\"0.050\""));
    free(svg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap_ci),
        cmocka_unit_test(test_press_styles),
        cmocka_unit_test(test_chart_colours_order_free),
        cmocka_unit_test(test_kept_bins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
