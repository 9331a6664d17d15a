/* qlab-layer-view.c — QlabLayerView (see qlab-layer-view.h). The pictures are qlab-plot's
 * Cairo bars and histograms, drawn by GtkDrawingAreas. */
#include <math.h>
#include <string.h>

#include "qlab-layer-view.h"

struct _QlabLayerView {
    GtkBox parent_instance;
    qlab_results_run *detail;
    guint layer;
    GtkWidget *bars, *layer_dropdown, *hist[2];
    GtkStringList *layer_names;
    gboolean updating;
};

G_DEFINE_FINAL_TYPE(QlabLayerView, qlab_layer_view, GTK_TYPE_BOX)

static const char *const tensor_names[2] = {"weight", "output"};

static void theme_for(GtkWidget *w, qlab_plot_theme *t)
{
    GdkRGBA fg;
    G_GNUC_BEGIN_IGNORE_DEPRECATIONS
    gtk_style_context_get_color(gtk_widget_get_style_context(w), &fg);
    G_GNUC_END_IGNORE_DEPRECATIONS
    int dark = 0.299 * fg.red + 0.587 * fg.green + 0.114 * fg.blue > 0.5;
    qlab_plot_theme_init(t, dark);
    qlab_plot_theme_set_colours(t, (qlab_rgb){fg.red, fg.green, fg.blue},
                                dark ? (qlab_rgb){0.16, 0.16, 0.17} : (qlab_rgb){1, 1, 1});
    t->font_size = 11;
}

static void draw_bars(GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer data)
{
    QlabLayerView *self = data;
    if (!self->detail || self->detail->n_layers == 0)
        return;
    size_t n = self->detail->n_layers;
    const char **names = g_new(const char *, n);
    double *a = g_new(double, n), *b = g_new(double, n);
    for (size_t i = 0; i < n; i++) {
        names[i] = self->detail->layers[i].layer;
        a[i] = self->detail->layers[i].weight_sqnr_db;
        b[i] = self->detail->layers[i].output_sqnr_db;
    }
    char title[64];
    g_snprintf(title, sizeof(title), "per-layer SQNR, run #%" G_GINT64_FORMAT, self->detail->id);
    qlab_plot_bars bars = {n, names, a, b, "weights", "outputs", title, "dB"};
    qlab_plot_theme t;
    theme_for(GTK_WIDGET(area), &t);
    qlab_plot_render_bars(cr, w, h, &bars, &t);
    g_free(names);
    g_free(a);
    g_free(b);
}

static void draw_hist(GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer data)
{
    QlabLayerView *self = g_object_get_data(G_OBJECT(area), "layer-view");
    const char *tensor = data;
    const qlab_results_hist *hr = qlab_layer_view_get_histogram(self, tensor);
    if (!self->detail)
        return;
    qlab_plot_theme t;
    theme_for(GTK_WIDGET(area), &t);
    char title[96];
    const char *layer =
        self->layer < self->detail->n_layers ? self->detail->layers[self->layer].layer : "?";
    g_snprintf(title, sizeof(title), "%s %s error", layer, tensor);
    qlab_plot_hist hist = {0, 0, 0, NULL, title};
    if (hr)
        hist = (qlab_plot_hist){hr->lo, hr->hi, hr->nbins, hr->counts, title};
    qlab_plot_render_histogram(cr, w, h, &hist, &t);
}

static void on_layer_selected(GObject *dd, GParamSpec *pspec, QlabLayerView *self)
{
    if (self->updating)
        return;
    guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(dd));
    if (i != GTK_INVALID_LIST_POSITION)
        qlab_layer_view_set_layer(self, i);
}

static void layer_view_dispose(GObject *object)
{
    QlabLayerView *self = QLAB_LAYER_VIEW(object);
    if (self->detail) {
        qlab_results_run_clear(self->detail);
        g_clear_pointer(&self->detail, g_free);
    }
    G_OBJECT_CLASS(qlab_layer_view_parent_class)->dispose(object);
}

static void qlab_layer_view_class_init(QlabLayerViewClass *klass)
{
    G_OBJECT_CLASS(klass)->dispose = layer_view_dispose;
}

static GtkWidget *area_new(int min_h)
{
    GtkWidget *a = gtk_drawing_area_new();
    gtk_widget_set_hexpand(a, TRUE);
    gtk_widget_set_vexpand(a, TRUE);
    gtk_drawing_area_set_content_height(GTK_DRAWING_AREA(a), min_h);
    gtk_drawing_area_set_content_width(GTK_DRAWING_AREA(a), 240);
    return a;
}

static void qlab_layer_view_init(QlabLayerView *self)
{
    gtk_orientable_set_orientation(GTK_ORIENTABLE(self), GTK_ORIENTATION_VERTICAL);
    gtk_box_set_spacing(GTK_BOX(self), 6);
    self->bars = area_new(150);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(self->bars), draw_bars, self, NULL);
    gtk_box_append(GTK_BOX(self), self->bars);

    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    gtk_box_append(GTK_BOX(row), gtk_label_new("Error histograms of layer"));
    self->layer_names = gtk_string_list_new(NULL);
    self->layer_dropdown = gtk_drop_down_new(G_LIST_MODEL(self->layer_names), NULL);
    g_signal_connect(self->layer_dropdown, "notify::selected", G_CALLBACK(on_layer_selected), self);
    gtk_box_append(GTK_BOX(row), self->layer_dropdown);
    gtk_box_append(GTK_BOX(self), row);

    GtkWidget *hrow = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    gtk_box_set_homogeneous(GTK_BOX(hrow), TRUE);
    for (int k = 0; k < 2; k++) {
        self->hist[k] = area_new(160);
        g_object_set_data(G_OBJECT(self->hist[k]), "layer-view", self);
        gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(self->hist[k]), draw_hist,
                                       (gpointer)tensor_names[k], NULL);
        gtk_box_append(GTK_BOX(hrow), self->hist[k]);
    }
    gtk_box_append(GTK_BOX(self), hrow);
}

GtkWidget *qlab_layer_view_new(void)
{
    return g_object_new(QLAB_TYPE_LAYER_VIEW, NULL);
}

static void redraw(QlabLayerView *self)
{
    gtk_widget_queue_draw(self->bars);
    gtk_widget_queue_draw(self->hist[0]);
    gtk_widget_queue_draw(self->hist[1]);
}

void qlab_layer_view_set_detail(QlabLayerView *self, qlab_results_run *detail)
{
    g_return_if_fail(QLAB_IS_LAYER_VIEW(self));
    /* Keep showing the same layer name when the user moves between runs. */
    char *keep = NULL;
    if (self->detail && self->layer < self->detail->n_layers)
        keep = g_strdup(self->detail->layers[self->layer].layer);
    if (self->detail) {
        qlab_results_run_clear(self->detail);
        g_free(self->detail);
    }
    self->detail = detail;
    self->layer = 0;
    self->updating = TRUE;
    guint old = g_list_model_get_n_items(G_LIST_MODEL(self->layer_names));
    const char **names = g_new0(const char *, (detail ? detail->n_layers : 0) + 1);
    for (size_t i = 0; detail && i < detail->n_layers; i++) {
        names[i] = detail->layers[i].layer;
        if (keep && !strcmp(keep, names[i]))
            self->layer = (guint)i;
    }
    gtk_string_list_splice(self->layer_names, 0, old, names);
    gtk_drop_down_set_selected(GTK_DROP_DOWN(self->layer_dropdown), self->layer);
    self->updating = FALSE;
    g_free(names);
    g_free(keep);
    redraw(self);
}

const qlab_results_run *qlab_layer_view_get_detail(QlabLayerView *self)
{
    return self->detail;
}

guint qlab_layer_view_get_layer(QlabLayerView *self)
{
    return self->layer;
}

void qlab_layer_view_set_layer(QlabLayerView *self, guint layer)
{
    g_return_if_fail(QLAB_IS_LAYER_VIEW(self));
    if (!self->detail || layer >= self->detail->n_layers)
        return;
    self->layer = layer;
    if (gtk_drop_down_get_selected(GTK_DROP_DOWN(self->layer_dropdown)) != layer) {
        self->updating = TRUE;
        gtk_drop_down_set_selected(GTK_DROP_DOWN(self->layer_dropdown), layer);
        self->updating = FALSE;
    }
    redraw(self);
}

const qlab_results_hist *qlab_layer_view_get_histogram(QlabLayerView *self, const char *tensor)
{
    g_return_val_if_fail(QLAB_IS_LAYER_VIEW(self), NULL);
    if (!self->detail || self->layer >= self->detail->n_layers)
        return NULL;
    const char *layer = self->detail->layers[self->layer].layer;
    for (size_t i = 0; i < self->detail->n_hists; i++)
        if (!strcmp(self->detail->hists[i].layer, layer) &&
            !strcmp(self->detail->hists[i].tensor, tensor))
            return &self->detail->hists[i];
    return NULL;
}
