/* qlab-chart.h — QlabChart, the accuracy-versus-memory frontier widget.
 *
 * Its model is a qlab_plot_data (plain arrays rather than a GListModel of 100,000
 * GObjects); qlab_chart_set_data replaces it and queues a redraw. The drawing itself is
 * qlab-plot's Cairo code through gtk_snapshot_append_cairo, so exports and `qlab plot` show
 * the same picture. Hover names the run in a tooltip, a click selects it ("run-selected"),
 * scrolling zooms about the pointer, dragging pans. */
#pragma once

#include <gtk/gtk.h>

#include "qlab-plot.h"

G_BEGIN_DECLS

#define QLAB_TYPE_CHART (qlab_chart_get_type())
G_DECLARE_FINAL_TYPE(QlabChart, qlab_chart, QLAB, CHART, GtkWidget)

GtkWidget *qlab_chart_new(void);
/* Takes ownership of data (the chart applies its filter and normalises it, unless data
 * was already normalised with the chart's filter and axes, e.g. by the loader). The selection
 * follows the same run id; the view is refitted unless the user zoomed or panned. */
void qlab_chart_set_data(QlabChart *self, qlab_plot_data *data);
const qlab_plot_data *qlab_chart_get_data(QlabChart *self);
/* Points drawn (visible after the filters). */
guint qlab_chart_get_n_points(QlabChart *self);
void qlab_chart_set_filter(QlabChart *self, const qlab_plot_filter *filter);
void qlab_chart_get_filter(QlabChart *self, qlab_plot_filter *filter);

gboolean qlab_chart_get_log_x(QlabChart *self);
void qlab_chart_set_log_x(QlabChart *self, gboolean log_x);
gboolean qlab_chart_get_bits_per_weight(QlabChart *self);
void qlab_chart_set_bits_per_weight(QlabChart *self, gboolean bpw);
gint64 qlab_chart_get_selected_run(QlabChart *self); /* -1: none */
void qlab_chart_set_selected_run(QlabChart *self, gint64 run_id);

void qlab_chart_reset_view(QlabChart *self);
/* Hit test at widget coordinates; selects the run there (emitting "run-selected") and
 * returns TRUE, or FALSE when no run is within reach. What a click does. */
gboolean qlab_chart_select_at(QlabChart *self, double x, double y);
/* Widget coordinates of a run's marker; FALSE when it is not drawn. */
gboolean qlab_chart_get_run_position(QlabChart *self, gint64 run_id, double *x, double *y);
/* Draws the current picture (view, filters, selection) at w x h. */
void qlab_chart_render(QlabChart *self, cairo_t *cr, double w, double h);
/* Writes the current picture to a .png, .svg or .pdf file at the widget's size. */
gboolean qlab_chart_export(QlabChart *self, const char *path, GError **error);

G_END_DECLS
