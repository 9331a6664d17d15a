/* qlab-plot-private.h — helpers shared by the plot library's drawing files. */
#pragma once

#include "qlab-plot.h"

void qlab_plot_set_rgb(cairo_t *cr, qlab_rgb c, double alpha);
/* Draws s anchored at (x, y): ax, ay in 0..1 pick left/centre/right and top/middle/bottom. */
void qlab_plot_text(cairo_t *cr, double x, double y, const char *s, double ax, double ay);
/* Adds the marker of a calibration (circle, square, triangle, diamond) to the path. */
void qlab_plot_marker(cairo_t *cr, int shape, double x, double y, double r);
/* Composites the markers of each style (xy pairs, style s in [start[s], start[s+1])) onto
 * an ARGB32 image target inside clip. Returns 1 when done, 0 when the target needs paths
 * (vector surfaces, rotations). See qlab-plot-raster.c. */
int qlab_plot_raster_markers(cairo_t *cr, const float *xy, const size_t *start, int n_styles,
                             const qlab_plot_theme *t, qlab_plot_rect clip, double r, double alpha);
