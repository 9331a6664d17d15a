/* qlab-layer-view.h — QlabLayerView: the selected run's per-layer SQNR bars and, for one
 * layer chosen in a drop-down, its weight and output error histograms. */
#pragma once

#include <gtk/gtk.h>

#include "qlab-results.h"

G_BEGIN_DECLS

#define QLAB_TYPE_LAYER_VIEW (qlab_layer_view_get_type())
G_DECLARE_FINAL_TYPE(QlabLayerView, qlab_layer_view, QLAB, LAYER_VIEW, GtkBox)

GtkWidget *qlab_layer_view_new(void);
/* Takes ownership of detail (NULL clears the view). */
void qlab_layer_view_set_detail(QlabLayerView *self, qlab_results_run *detail);
const qlab_results_run *qlab_layer_view_get_detail(QlabLayerView *self);
/* Index into detail->layers of the layer whose histograms are shown. */
guint qlab_layer_view_get_layer(QlabLayerView *self);
void qlab_layer_view_set_layer(QlabLayerView *self, guint layer);
/* The histogram shown for tensor "weight" or "output", or NULL. */
const qlab_results_hist *qlab_layer_view_get_histogram(QlabLayerView *self, const char *tensor);

G_END_DECLS
