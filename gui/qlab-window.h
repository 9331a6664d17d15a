/* qlab-window.h — QlabWindow: experiments, filters, the frontier chart, the selected
 * run's details and per-layer views, for one results database. All database work runs in
 * worker threads (qlab-loader.h); the window reloads on its own when the database changes:
 * on qlabd's progress events when a daemon answers (qlab-live.h), else by polling
 * PRAGMA data_version. The status bar says which ("live: qlabd" / "live: polling"). */
#pragma once

#include <gtk/gtk.h>

#include "qlab-chart.h"
#include "qlab-layer-view.h"

G_BEGIN_DECLS

#define QLAB_TYPE_WINDOW (qlab_window_get_type())
G_DECLARE_FINAL_TYPE(QlabWindow, qlab_window, QLAB, WINDOW, GtkApplicationWindow)

QlabWindow *qlab_window_new(GtkApplication *app);
/* Shows the database at path (read-only) and watches it for new runs. */
void qlab_window_open(QlabWindow *self, const char *path);
const char *qlab_window_get_path(QlabWindow *self);
/* Reloads the experiments and the current experiment's runs now. Safe to call from any
 * main-loop callback (e.g. a daemon progress event); calls made while a load is running
 * are merged into one more load. */
void qlab_window_reload(QlabWindow *self);
/* Selects an experiment in the list (and loads its runs); FALSE when it is not listed. */
gboolean qlab_window_select_experiment(QlabWindow *self, gint64 id);
gint64 qlab_window_get_experiment(QlabWindow *self);
/* Selects a run as a click on its marker does: the chart highlights it (when it is
 * plotted) and its details and per-layer views load. */
void qlab_window_select_run(QlabWindow *self, gint64 run_id);
/* TRUE while a load or a detail query is in flight (tests wait for FALSE). */
gboolean qlab_window_is_busy(QlabWindow *self);
QlabChart *qlab_window_get_chart(QlabWindow *self);
QlabLayerView *qlab_window_get_layer_view(QlabWindow *self);
/* Text of the details pane (the selected run's configuration and results). */
const char *qlab_window_get_details(QlabWindow *self);
guint qlab_window_get_n_experiments(QlabWindow *self);
/* TRUE while connected to qlabd; the status bar's text for it ("live: qlabd" or
 * "live: polling"); batches of daemon events that asked for a reload so far. */
gboolean qlab_window_is_live(QlabWindow *self);
const char *qlab_window_get_live_status(QlabWindow *self);
guint64 qlab_window_get_live_batches(QlabWindow *self);
/* Writes the current plot to a .png, .svg or .pdf file. */
gboolean qlab_window_export(QlabWindow *self, const char *path, GError **error);

G_END_DECLS
