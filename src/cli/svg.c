/* svg.c - the SVG writer (src/cli/svg.h): axes and ticks, the line chart of the
 * evaluation, the map of kept positions of `finch run --plot-kept`. */
#include "svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"


/* ================================================================= text */

void finch_svg_text(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void text_at(FILE *f, double x, double y, const char *anchor, const char *extra, const char *s) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s>", x, y, anchor, extra ? " " : "",
            extra ? extra : "");
    finch_svg_text(f, s);
    fputs("</text>\n", f);
}

static void begin(FILE *f, double w, double h, const char *title) {
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", w, h, w, h);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", w, h);
    if (title) text_at(f, w / 2, 22, "middle", "font-size=\"15\"", title);
}

static finch_status end(FILE *f) {
    fputs("</svg>\n", f);
    return ferror(f) ? finch_fail(FINCH_ERR_IO, "cannot write the SVG file") : FINCH_OK;
}

/* ================================================================ ticks */

/* A step of 1, 2 or 5 times a power of ten giving about `want` ticks. */
static double nice_step(double range, int want) {
    double raw = range / want, p = pow(10.0, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

/* ============================================================ line chart */

typedef struct {
    double x0, y0, w, h;         /* plot area (pixels)  */
    double xmin, xmax, ymin, ymax;
    int log2_x;
} frame;

/* Pixels between the axes and the data range, so markers at the ends of
 * the range do not sit on the axes or hide tick labels. */
#define PAD 12.0

static double px(const frame *fr, double x) {
    double t = fr->log2_x ? (log2(x) - log2(fr->xmin)) / (log2(fr->xmax) - log2(fr->xmin))
                          : (x - fr->xmin) / (fr->xmax - fr->xmin);
    return fr->x0 + PAD + t * (fr->w - 2 * PAD);
}

static double py(const frame *fr, double y) {
    return fr->y0 + fr->h - PAD - (y - fr->ymin) / (fr->ymax - fr->ymin) * (fr->h - 2 * PAD);
}

/* The data range; an empty or flat range is widened so the scale exists. */
static finch_status data_range(const finch_svg_chart *c, frame *fr) {
    fr->xmin = fr->ymin = INFINITY;
    fr->xmax = fr->ymax = -INFINITY;
    for (size_t s = 0; s < c->n_series; s++)
        for (size_t i = 0; i < c->series[s].n; i++) {
            double x = c->series[s].x[i], y = c->series[s].y[i];
            if (c->log2_x && !(x > 0)) return finch_fail(FINCH_ERR_ARG, "log2 axis: x must be > 0 (got %g)", x);
            fr->xmin = fmin(fr->xmin, x);
            fr->xmax = fmax(fr->xmax, x);
            if (!isnan(y)) {
                fr->ymin = fmin(fr->ymin, y);
                fr->ymax = fmax(fr->ymax, y);
            }
        }
    if (c->y_min < c->y_max) {
        fr->ymin = c->y_min;
        fr->ymax = c->y_max;
    }
    if (!(fr->xmin <= fr->xmax)) fr->xmin = 1, fr->xmax = 2;
    if (!(fr->ymin <= fr->ymax)) fr->ymin = 0, fr->ymax = 1;
    if (fr->xmax == fr->xmin) fr->xmax = c->log2_x ? fr->xmin * 2 : fr->xmin + 1;
    if (fr->ymax == fr->ymin) fr->ymin -= 0.5, fr->ymax += 0.5;
    return FINCH_OK;
}

static void axes(FILE *f, const frame *fr, const finch_svg_chart *c) {
    double bottom = fr->y0 + fr->h;
    fprintf(f, "<g stroke=\"#999\" stroke-width=\"1\">\n");
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fr->x0, bottom, fr->x0 + fr->w, bottom);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", fr->x0, fr->y0, fr->x0, bottom);
    fputs("</g>\n", f);
    char label[64];
    if (fr->log2_x) {
        for (double x = exp2(ceil(log2(fr->xmin) - 1e-9)); x <= fr->xmax * (1 + 1e-9); x *= 2) {
            snprintf(label, sizeof label, "%g", x);
            text_at(f, px(fr, x), bottom + 16, "middle", NULL, label);
        }
    } else {
        double st = nice_step(fr->xmax - fr->xmin, 6);
        for (double x = ceil(fr->xmin / st) * st; x <= fr->xmax + st * 1e-9; x += st) {
            snprintf(label, sizeof label, "%g", x);
            text_at(f, px(fr, x), bottom + 16, "middle", NULL, label);
        }
    }
    double st = nice_step(fr->ymax - fr->ymin, 5);
    for (double y = ceil(fr->ymin / st) * st; y <= fr->ymax + st * 1e-9; y += st) {
        snprintf(label, sizeof label, "%g", fabs(y) < st * 1e-9 ? 0.0 : y);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", fr->x0,
                py(fr, y), fr->x0 + fr->w, py(fr, y));
        text_at(f, fr->x0 - 6, py(fr, y) + 4, "end", NULL, label);
    }
    if (c->x_label) text_at(f, fr->x0 + fr->w / 2, bottom + 38, "middle", NULL, c->x_label);
    if (c->y_label) {
        char rot[96];
        snprintf(rot, sizeof rot, "transform=\"rotate(-90 %.1f %.1f)\"", 16.0, fr->y0 + fr->h / 2);
        text_at(f, 16, fr->y0 + fr->h / 2, "middle", rot, c->y_label);
    }
}

/* The fixed press -> style table (svg.h).  Each (colour, marker, dash)
 * triple is used once; "full" is the black dashed reference line. */
static const struct {
    const char *name;
    finch_svg_style style;
} press_styles[] = {
    { "full", { "#000000", FINCH_MARK_NONE, "6 4" } },
    { "finch", { "#D55E00", FINCH_MARK_CIRCLE, NULL } },
    { "adakv-finch", { "#D55E00", FINCH_MARK_SQUARE, "5 3" } },
    { "snapkv", { "#0072B2", FINCH_MARK_SQUARE, NULL } },
    { "snapkv-q", { "#0072B2", FINCH_MARK_TRIANGLE, "5 3" } },
    { "streaming", { "#009E73", FINCH_MARK_TRIANGLE, NULL } },
    { "truncate", { "#009E73", FINCH_MARK_DIAMOND, "5 3" } },
    { "pyramidkv", { "#009E73", FINCH_MARK_CIRCLE, "2 2" } },
    { "h2o", { "#E69F00", FINCH_MARK_DIAMOND, NULL } },
    { "tova", { "#E69F00", FINCH_MARK_TRIANGLE_DOWN, "5 3" } },
    { "adakv", { "#E69F00", FINCH_MARK_SQUARE, "2 2" } },
    { "knorm", { "#CC79A7", FINCH_MARK_TRIANGLE_DOWN, NULL } },
    { "keydiff", { "#CC79A7", FINCH_MARK_CIRCLE, "5 3" } },
    { "random", { "#56B4E9", FINCH_MARK_PLUS, NULL } },
    { "chunkkv", { "#56B4E9", FINCH_MARK_SQUARE, "5 3" } },
    { "rag", { "#000000", FINCH_MARK_TRIANGLE, NULL } },
    { "lingua", { "#000000", FINCH_MARK_DIAMOND, "2 2" } }, /* dotted: only full is black and dashed */
};

finch_svg_style finch_svg_press_style(const char *name) {
    for (size_t i = 0; name && i < sizeof press_styles / sizeof press_styles[0]; i++)
        if (!strcmp(name, press_styles[i].name)) return press_styles[i].style;
    return (finch_svg_style){ "#777777", FINCH_MARK_CIRCLE, NULL };
}

/* A marker of size ~7 px centred on (x, y). */
static void marker(FILE *f, finch_svg_marker m, double x, double y, const char *color) {
    const double r = 3.5;
    switch (m) {
    case FINCH_MARK_NONE: break;
    case FINCH_MARK_CIRCLE:
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", x, y, r, color);
        break;
    case FINCH_MARK_SQUARE:
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", x - r, y - r, 2 * r,
                2 * r, color);
        break;
    case FINCH_MARK_TRIANGLE:
    case FINCH_MARK_TRIANGLE_DOWN: {
        double d = m == FINCH_MARK_TRIANGLE ? 1 : -1, h = r * 1.2;
        fprintf(f, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"%s\"/>\n", x, y - d * h, x - h,
                y + d * h * 0.8, x + h, y + d * h * 0.8, color);
        break;
    }
    case FINCH_MARK_DIAMOND:
        fprintf(f, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"%s\"/>\n", x, y - r * 1.3,
                x + r * 1.1, y, x, y + r * 1.3, x - r * 1.1, y, color);
        break;
    case FINCH_MARK_PLUS:
        fprintf(f, "<path d=\"M%.1f %.1fh%.1fM%.1f %.1fv%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n", x - r - 1, y,
                2 * r + 2, x, y - r - 1, 2 * r + 2, color);
        break;
    }
}

/* A polyline per unbroken run of points (NaN breaks it), an error bar and a
 * marker at each point; `dx` shifts the series apart from the others. */
static void series_lines(FILE *f, const frame *fr, const finch_svg_series *s, finch_svg_style st, double dx) {
    const char *dash = s->dashed ? "6 4" : st.dash;
    size_t i = 0;
    while (i < s->n) {
        while (i < s->n && isnan(s->y[i])) i++;
        if (i == s->n) break;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"", st.color);
        if (dash) fprintf(f, " stroke-dasharray=\"%s\"", dash);
        fputs(" points=\"", f);
        for (; i < s->n && !isnan(s->y[i]); i++) fprintf(f, "%.1f,%.1f ", px(fr, s->x[i]) + dx, py(fr, s->y[i]));
        fputs("\"/>\n", f);
    }
    if (s->dashed) return;
    for (size_t j = 0; j < s->n; j++) {
        if (isnan(s->y[j])) continue;
        double x = px(fr, s->x[j]) + dx;
        if (s->lo && s->hi && !isnan(s->lo[j]) && !isnan(s->hi[j]))
            fprintf(f, "<path class=\"ci\" d=\"M%.1f %.1fV%.1fM%.1f %.1fh6M%.1f %.1fh6\" stroke=\"%s\" "
                       "stroke-width=\"1.2\" stroke-opacity=\"0.7\"/>\n",
                    x, py(fr, s->lo[j]), py(fr, s->hi[j]), x - 3, py(fr, s->lo[j]), x - 3, py(fr, s->hi[j]),
                    st.color);
        marker(f, st.marker, x, py(fr, s->y[j]), st.color);
    }
}

static void legend_entry(FILE *f, double lx, double ly, const finch_svg_series *s, finch_svg_style st) {
    const char *dash = s->dashed ? "6 4" : st.dash;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"", lx, ly,
            lx + 26, ly, st.color);
    if (dash) fprintf(f, " stroke-dasharray=\"%s\"", dash);
    fputs("/>\n", f);
    if (!s->dashed) marker(f, st.marker, lx + 13, ly, st.color);
    text_at(f, lx + 32, ly + 4, "start", NULL, s->name);
}

/* Error bars widen the range the axis must show. */
static void include_bars(const finch_svg_chart *c, frame *fr) {
    for (size_t s = 0; s < c->n_series; s++)
        for (size_t i = 0; c->series[s].lo && c->series[s].hi && i < c->series[s].n; i++) {
            if (!isnan(c->series[s].lo[i])) fr->ymin = fmin(fr->ymin, c->series[s].lo[i]);
            if (!isnan(c->series[s].hi[i])) fr->ymax = fmax(fr->ymax, c->series[s].hi[i]);
        }
}

finch_status finch_svg_line_chart(FILE *f, const finch_svg_chart *c) {
    double top = c->subtitle ? 58 : 40;
    frame fr = { 70, top, 520, 320, 0, 0, 0, 0, c->log2_x };
    finch_status st = data_range(c, &fr);
    if (st) return st;
    if (!(c->y_min < c->y_max)) include_bars(c, &fr);
    begin(f, 760, top + 380, c->title);
    if (c->subtitle) text_at(f, 380, 40, "middle", "font-size=\"11\" fill=\"#555\"", c->subtitle);
    axes(f, &fr, c);
    /* the dashed references first, under the presses they are compared to */
    for (int pass = 0; pass < 2; pass++)
        for (size_t s = 0; s < c->n_series; s++) {
            if (c->series[s].dashed != !pass) continue;
            finch_svg_style sty = finch_svg_press_style(c->series[s].name);
            double dx = c->n_series > 2 ? ((double)s - (double)(c->n_series - 2) / 2) * 2.5 : 0;
            series_lines(f, &fr, &c->series[s], sty, c->series[s].dashed ? 0 : dx);
        }
    for (size_t s = 0; s < c->n_series; s++)
        legend_entry(f, fr.x0 + fr.w + 20, fr.y0 + 10 + 18.0 * (double)s, &c->series[s],
                     finch_svg_press_style(c->series[s].name));
    return end(f);
}

/* ======================================================= kept positions */

enum { KEPT_ROW_H = 10, KEPT_ROW_GAP = 2, KEPT_LEFT = 60, KEPT_WIDTH = 1000, KEPT_TOP = 70, KEPT_MAX_HEAD_ROWS = 32 };

static double row_y(size_t r) { return KEPT_TOP + (double)r * (KEPT_ROW_H + KEPT_ROW_GAP); }

size_t finch_svg_kept_bins(size_t total) { return total < KEPT_WIDTH ? total : KEPT_WIDTH; }

size_t finch_svg_kept_bin_of(size_t pos, size_t total, size_t bins) {
    return total ? (size_t)((unsigned long long)pos * bins / total) : 0;
}

/* The first position of bin b: bins split [0, total) as evenly as integers
 * allow (the inverse of finch_svg_kept_bin_of). */
static size_t bin_start(size_t b, size_t total, size_t bins) {
    return (size_t)(((unsigned long long)b * total + bins - 1) / bins);
}

/* count[bin] += 1 for each position of rows [r0, r1) (masked -1 skipped). */
static void count_rows(const finch_svg_kept *k, size_t r0, size_t r1, size_t total, size_t bins, unsigned *count) {
    for (size_t i = r0 * k->n_kept; i < r1 * k->n_kept; i++)
        if (k->kept[i] >= 0 && (size_t)k->kept[i] < total)
            count[finch_svg_kept_bin_of((size_t)k->kept[i], total, bins)]++;
}

/* One row of bins: a rect per run of bins with the same fraction kept
 * (count / (positions in the bin x rows aggregated)), its opacity. */
static void bin_row(FILE *f, const unsigned *count, size_t total, size_t bins, size_t n_rows, double y,
                    const char *color) {
    double cell = (double)KEPT_WIDTH / (double)bins;
    size_t b = 0;
    while (b < bins) {
        double w = (double)(bin_start(b + 1, total, bins) - bin_start(b, total, bins)) * (double)n_rows;
        double frac = count[b] / w;
        size_t e = b + 1;
        while (e < bins && count[e] / ((double)(bin_start(e + 1, total, bins) - bin_start(e, total, bins)) *
                                       (double)n_rows) == frac)
            e++;
        if (frac > 0)
            fprintf(f, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"%s\" fill-opacity=\"%.3f\"/>\n",
                    KEPT_LEFT + cell * (double)b, y, cell * (double)(e - b), KEPT_ROW_H, color, frac);
        b = e;
    }
}

/* The marked spans on a track above the rows (not over them): a bracket per
 * span, red, with its first position. */
static void span_track(FILE *f, const finch_svg_kept_spans *sp, size_t total, size_t bins, double bottom) {
    double cell = (double)KEPT_WIDTH / (double)bins, y = KEPT_TOP - 14;
    char label[64];
    for (size_t i = 0; sp && i < sp->n; i++) {
        if (sp->start[i] < 0 || (size_t)sp->start[i] >= total) continue;
        size_t end = sp->end[i] > sp->start[i] ? (size_t)sp->end[i] : (size_t)sp->start[i] + 1;
        if (end > total) end = total;
        double x0 = KEPT_LEFT + cell * (double)finch_svg_kept_bin_of((size_t)sp->start[i], total, bins);
        double x1 = KEPT_LEFT + cell * (double)(finch_svg_kept_bin_of(end - 1, total, bins) + 1);
        fprintf(f, "<path class=\"span\" d=\"M%.2f %.1fV%.1fH%.2fV%.1f\" fill=\"none\" stroke=\"red\" "
                   "stroke-width=\"1.5\"/>\n", x0, y + 8, y, x1, y + 8);
        fprintf(f, "<path d=\"M%.2f %.1fH%.2f\" stroke=\"red\" stroke-width=\"3\"/>\n", x0, bottom + 3, x1);
        const char *word = sp->label ? sp->label : "mark";
        if (end - (size_t)sp->start[i] > 1) snprintf(label, sizeof label, "%s %ld-%zu", word, sp->start[i], end - 1);
        else snprintf(label, sizeof label, "%s %ld", word, sp->start[i]);
        text_at(f, (x0 + x1) / 2, y - 3, "middle", "fill=\"red\" font-size=\"10\"", label);
    }
}

static void position_ticks(FILE *f, size_t total, size_t bins, double y) {
    double st = nice_step((double)(total ? total : 1), 10), cell = (double)KEPT_WIDTH / (double)bins;
    if (st < 1) st = 1;
    char label[32];
    for (double p = 0; p < (double)total; p += st) {
        snprintf(label, sizeof label, "%.0f", p);
        text_at(f, KEPT_LEFT + cell * (double)finch_svg_kept_bin_of((size_t)p, total, bins), y, "middle", NULL,
                label);
    }
}

/* Rows: per layer and head when there are few, else per layer (heads
 * aggregated); then "all". */
static finch_status kept_rows(FILE *f, const finch_svg_kept *k, size_t total, size_t bins, bool per_head) {
    size_t heads = k->n_layer * k->n_kv_head, group = per_head ? 1 : k->n_kv_head, n = heads / (group ? group : 1);
    unsigned *count = finch_zalloc(bins ? bins : 1, sizeof *count);
    if (!count) return FINCH_ERR_NOMEM;
    char label[64];
    for (size_t r = 0; r <= n; r++) {
        bool all = r == n;
        if (all) snprintf(label, sizeof label, "all");
        else if (per_head) snprintf(label, sizeof label, "L%zu H%zu", r / k->n_kv_head, r % k->n_kv_head);
        else snprintf(label, sizeof label, "L%zu", r);
        text_at(f, KEPT_LEFT - 6, row_y(r) + KEPT_ROW_H - 1, "end", "font-size=\"9\"", label);
        fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"#f4f4f4\"/>\n", KEPT_LEFT, row_y(r),
                KEPT_WIDTH, KEPT_ROW_H);
        memset(count, 0, bins * sizeof *count);
        count_rows(k, all ? 0 : r * group, all ? heads : (r + 1) * group, total, bins, count);
        bin_row(f, count, total, bins, all ? heads : group, row_y(r), all ? "#D55E00" : "#0072B2");
    }
    free(count);
    return FINCH_OK;
}

finch_status finch_svg_kept_map_spans(FILE *f, const finch_svg_kept *k, const finch_svg_kept_spans *spans) {
    size_t heads = k->n_layer * k->n_kv_head, total = k->n_ctx + k->n_question, bins = finch_svg_kept_bins(total);
    if (!bins) bins = 1;
    bool per_head = heads <= KEPT_MAX_HEAD_ROWS;
    size_t n_rows = per_head ? heads : k->n_layer;
    double cell = (double)KEPT_WIDTH / (double)bins, bottom = row_y(n_rows + 1);
    begin(f, KEPT_LEFT + KEPT_WIDTH + 20, bottom + 64, k->title);
    if (k->n_question) { /* the question band (oneshot keeps the question) */
        double x = KEPT_LEFT + cell * (double)finch_svg_kept_bin_of(k->n_ctx, total, bins);
        fprintf(f, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%.1f\" fill=\"#f3e6c8\"/>\n", x, KEPT_TOP,
                KEPT_LEFT + KEPT_WIDTH - x, bottom - KEPT_TOP);
        text_at(f, (x + KEPT_LEFT + KEPT_WIDTH) / 2, bottom + 12, "middle", "font-size=\"9\"", "question");
    }
    finch_status st = kept_rows(f, k, total, bins, per_head);
    if (st) return st;
    span_track(f, spans, total, bins, bottom);
    position_ticks(f, total, bins, bottom + 26);
    char label[160];
    snprintf(label, sizeof label, "%zu of %zu positions kept per head; %zu bins of %.3g positions, shade = fraction "
             "kept%s", k->n_kept, total, bins, (double)total / (double)bins, per_head ? "" : " (heads of a layer together)");
    text_at(f, KEPT_LEFT + KEPT_WIDTH / 2.0, bottom + 48, "middle", NULL, label);
    return end(f);
}

finch_status finch_svg_kept_map(FILE *f, const finch_svg_kept *k) {
    long end = k->mark + 1;
    finch_svg_kept_spans one = { &k->mark, &end, 1, NULL };
    return finch_svg_kept_map_spans(f, k, k->mark >= 0 ? &one : NULL);
}
