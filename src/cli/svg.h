/* svg.h - a small SVG writer for the evaluation's plots and the map of kept
 * positions: plain text, no dependencies, written to a FILE the caller
 * chooses (the library never opens stdout itself). */
#ifndef FINCH_SVG_H
#define FINCH_SVG_H

#include "finch.h"

/* ------------------------------------------------------------ line chart */

typedef struct {
    const char *name;    /* legend entry                                  */
    const double *x, *y; /* n points; a NaN y leaves a gap in the line    */
    size_t n;
    int dashed;          /* 1: a dashed line without markers (a reference) */
    const double *lo, *hi; /* NULL, or an error bar per point (NaN: none)  */
} finch_svg_series;

/* How a press is drawn in every figure: a fixed table by press name (not by
 * the order of --press), so a press keeps its colour, marker and dash
 * pattern across figures and runs.  Colours are Okabe-Ito's; 8 colours x
 * markers x dash patterns keep the 16 presses apart. */
typedef enum { FINCH_MARK_NONE, FINCH_MARK_CIRCLE, FINCH_MARK_SQUARE, FINCH_MARK_TRIANGLE, FINCH_MARK_DIAMOND,
               FINCH_MARK_TRIANGLE_DOWN, FINCH_MARK_PLUS } finch_svg_marker;

typedef struct {
    const char *color;    /* "#RRGGBB"                                     */
    finch_svg_marker marker;
    const char *dash;     /* stroke-dasharray, or NULL for a solid line    */
} finch_svg_style;

/* The style of a press ("full": black, dashed, no marker); an unknown name
 * gets grey circles. */
finch_svg_style finch_svg_press_style(const char *name);

typedef struct {
    const char *title, *x_label, *y_label;
    int log2_x;          /* 1: x on a log2 axis (x > 0), ticks at powers of 2 */
    double y_min, y_max; /* equal: the range is taken from the data          */
    const finch_svg_series *series;
    size_t n_series;
    const char *subtitle; /* NULL, or a line under the title (the settings) */
} finch_svg_chart;

/* One <polyline> per series in its press style (finch_svg_press_style of
 * its name) with a marker per point unless dashed, an error bar per point
 * where lo/hi are given (series shifted a few pixels apart so the bars do not
 * hide each other), axes with tick labels, a legend with every series name.  FINCH_ERR_IO when the
 * stream reports an error, FINCH_ERR_ARG on a log2 axis with x <= 0. */
finch_status finch_svg_line_chart(FILE *f, const finch_svg_chart *c);

/* ------------------------------------------------------ kept positions map */

typedef struct {
    const char *title;
    const int32_t *kept;   /* [n_layer][n_kv_head][n_kept], ascending per row */
    size_t n_layer, n_kv_head, n_kept;
    size_t n_ctx;          /* context positions 0..n_ctx-1 along x           */
    size_t n_question;     /* positions n_ctx.. (oneshot keeps the question),
                              drawn on a shaded band after the context       */
    long mark;             /* a position to mark (the needle), or -1          */
} finch_svg_kept;

/* Spans of positions to mark (the needle, the answer): [start[i], end[i]). */
typedef struct {
    const long *start, *end;
    size_t n;
    const char *label;  /* the word before each span's positions ("answer"); NULL: "mark" */
} finch_svg_kept_spans;

/* A map that stays readable at any context length: positions fall into
 * finch_svg_kept_bins(total) bins (one per pixel column at most), each bin's
 * shade (fill-opacity) the fraction of its positions kept; one row per layer
 * and KV head when there are at most 32 of them, else one per layer with its
 * heads aggregated; a last row "all" over every head; the spans as red
 * brackets on a track above the rows and bars under them (never over the
 * rows).  Adjacent bins with the same fraction share one <rect>.  Errors as
 * finch_svg_line_chart. */
finch_status finch_svg_kept_map_spans(FILE *f, const finch_svg_kept *k, const finch_svg_kept_spans *spans);

/* finch_svg_kept_map_spans with the one position k->mark (when >= 0). */
finch_status finch_svg_kept_map(FILE *f, const finch_svg_kept *k);

/* How many bins the map uses for `total` positions, and the bin of pos. */
size_t finch_svg_kept_bins(size_t total);
size_t finch_svg_kept_bin_of(size_t pos, size_t total, size_t bins);

/* Write s with the XML special characters escaped. */
void finch_svg_text(FILE *f, const char *s);

#endif
