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
} finch_svg_series;

typedef struct {
    const char *title, *x_label, *y_label;
    int log2_x;          /* 1: x on a log2 axis (x > 0), ticks at powers of 2 */
    double y_min, y_max; /* equal: the range is taken from the data          */
    const finch_svg_series *series;
    size_t n_series;
} finch_svg_chart;

/* One <polyline> per series (with a <circle> per point unless dashed), axes
 * with tick labels, a legend with every series name.  FINCH_ERR_IO when the
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

/* One row per layer and KV head ("L0 H1"): a dark <rect> per run of kept
 * positions; a last row "all" with one <rect> per position kept anywhere,
 * its opacity the fraction of rows that kept it; a red vertical line at
 * `mark`.  Errors as finch_svg_line_chart. */
finch_status finch_svg_kept_map(FILE *f, const finch_svg_kept *k);

/* Write s with the XML special characters escaped. */
void finch_svg_text(FILE *f, const char *s);

#endif
