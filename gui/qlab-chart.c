/* qlab-chart.c — QlabChart (see qlab-chart.h).
 *
 * Redraw cost: the scatter, front, axes and legend are rasterised once into a cached
 * texture node (invalidated by new data, filters, zoom, size or theme); pointer motion and
 * selection only redraw the small highlight layer on top, so hovering stays smooth with
 * 100,000 runs. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "qlab-chart.h"

struct _QlabChart {
    GtkWidget parent_instance;
    qlab_plot_data *data;
    qlab_plot_filter filter;
    qlab_plot_view view, drag_start;
    qlab_plot_theme theme;
    gboolean log_x, bpw, user_view;
    gint64 selected_run;
    double pointer_x, pointer_y;
    GskRenderNode *base; /* cached layers below the highlights */
    int base_w, base_h;
};

enum { PROP_0, PROP_LOG_X, PROP_BITS_PER_WEIGHT, PROP_SELECTED_RUN, PROP_N_POINTS, N_PROPS };
static GParamSpec *properties[N_PROPS];

enum { SIGNAL_RUN_SELECTED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(QlabChart, qlab_chart, GTK_TYPE_WIDGET)

static void invalidate(QlabChart *self)
{
    g_clear_pointer(&self->base, gsk_render_node_unref);
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void update_theme(QlabChart *self)
{
    GdkRGBA fg;
    /* GTK 4.8 has no gtk_widget_get_color (4.10); the style context gives the CSS colour,
     * light on a dark theme, so the chart follows the system's dark style. */
    G_GNUC_BEGIN_IGNORE_DEPRECATIONS
    gtk_style_context_get_color(gtk_widget_get_style_context(GTK_WIDGET(self)), &fg);
    G_GNUC_END_IGNORE_DEPRECATIONS
    int dark = 0.299 * fg.red + 0.587 * fg.green + 0.114 * fg.blue > 0.5;
    qlab_plot_theme_init(&self->theme, dark);
    qlab_plot_theme_set_colours(&self->theme, (qlab_rgb){fg.red, fg.green, fg.blue},
                                dark ? (qlab_rgb){0.16, 0.16, 0.17} : (qlab_rgb){1, 1, 1});
}

static long index_of_run(const qlab_plot_data *d, gint64 id)
{
    if (!d || id < 0)
        return -1;
    for (size_t i = 0; i < d->n; i++)
        if (d->points[i].run_id == id)
            return (long)i;
    return -1;
}

/* After data, filters or axes change: recompute the front and, unless the user chose a
 * view, fit it. */
static void renormalise(QlabChart *self)
{
    if (!self->data)
        return;
    qlab_plot_data *d = self->data;
    enum qlab_plot_x xm = self->bpw ? QLAB_PLOT_X_BPW : QLAB_PLOT_X_BYTES;
    gboolean done = (d->tx || d->n == 0) && d->x_mode == xm && !d->log_x == !self->log_x &&
                    !memcmp(&d->filter, &self->filter, sizeof(d->filter));
    if (!done) {
        qlab_plot_data_apply_filter(d, &self->filter);
        if (qlab_plot_data_normalise(d, xm, self->log_x) < 0)
            g_warning("qlab-gui: out of memory normalising %zu runs", d->n);
    }
    if (!self->user_view)
        qlab_plot_view_fit(&self->view, self->data);
    self->view.selected = index_of_run(self->data, self->selected_run);
    self->view.hovered = -1;
    g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_N_POINTS]);
    invalidate(self);
}

static void free_surface(gpointer data)
{
    cairo_surface_destroy(data);
}

/* The layers below the highlights, rasterised once into an image surface at the
 * monitor's scale and kept as a texture node. (A node from gtk_snapshot_append_cairo
 * records the drawing and replays it on every frame; an image target also lets the
 * scatter layer stamp markers instead of filling paths.) */
static GskRenderNode *render_base(QlabChart *self, int w, int h)
{
    int sf = gtk_widget_get_scale_factor(GTK_WIDGET(self));
    cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w * sf, h * sf);
    if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surface);
        return NULL;
    }
    cairo_surface_set_device_scale(surface, sf, sf);
    cairo_t *cr = cairo_create(surface);
    qlab_plot_view v = self->view;
    v.hovered = v.selected = -1;
    qlab_plot_render_frontier(cr, w, h, self->data, &v, &self->theme);
    cairo_destroy(cr);
    cairo_surface_flush(surface);
    int stride = cairo_image_surface_get_stride(surface);
    /* Cairo's ARGB32 is premultiplied native-endian 32-bit: GDK_MEMORY_DEFAULT. */
    GBytes *bytes =
        g_bytes_new_with_free_func(cairo_image_surface_get_data(surface),
                                   (gsize)stride * (gsize)(h * sf), free_surface, surface);
    GdkTexture *tex =
        gdk_memory_texture_new(w * sf, h * sf, GDK_MEMORY_DEFAULT, bytes, (gsize)stride);
    g_bytes_unref(bytes);
    GskRenderNode *node = gsk_texture_node_new(tex, &GRAPHENE_RECT_INIT(0, 0, w, h));
    g_object_unref(tex);
    return node;
}

static void chart_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
    QlabChart *self = QLAB_CHART(widget);
    int w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
    if (!self->data || w <= 0 || h <= 0)
        return;
    if (!self->base || self->base_w != w || self->base_h != h) {
        g_clear_pointer(&self->base, gsk_render_node_unref);
        self->base = render_base(self, w, h);
        self->base_w = w;
        self->base_h = h;
    }
    if (self->base)
        gtk_snapshot_append_node(snapshot, self->base);
    if (self->view.hovered >= 0 || self->view.selected >= 0) {
        cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, w, h));
        qlab_plot_render_highlights(cr, w, h, self->data, &self->view, &self->theme);
        cairo_destroy(cr);
    }
}

static void chart_css_changed(GtkWidget *widget, GtkCssStyleChange *change)
{
    GTK_WIDGET_CLASS(qlab_chart_parent_class)->css_changed(widget, change);
    update_theme(QLAB_CHART(widget));
    invalidate(QLAB_CHART(widget));
}

static void set_hovered(QlabChart *self, long i)
{
    if (i == self->view.hovered)
        return;
    self->view.hovered = i;
    if (i >= 0) {
        char buf[256];
        qlab_plot_point_describe(&self->data->points[i], buf, sizeof(buf));
        gtk_widget_set_tooltip_text(GTK_WIDGET(self), buf);
    } else {
        gtk_widget_set_tooltip_text(GTK_WIDGET(self), NULL);
    }
    gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void on_motion(GtkEventControllerMotion *c, double x, double y, QlabChart *self)
{
    self->pointer_x = x;
    self->pointer_y = y;
    if (!self->data)
        return;
    set_hovered(self,
                qlab_plot_hit_test(self->data, &self->view, gtk_widget_get_width(GTK_WIDGET(self)),
                                   gtk_widget_get_height(GTK_WIDGET(self)), x, y, 8));
}

static void on_leave(GtkEventControllerMotion *c, QlabChart *self)
{
    set_hovered(self, -1);
}

static gboolean on_scroll(GtkEventControllerScroll *c, double dx, double dy, QlabChart *self)
{
    if (!self->data || dy == 0)
        return FALSE;
    /* One wheel notch zooms by 15 %; smooth scrolling scales the same per unit. */
    qlab_plot_view_zoom(&self->view, self->data, gtk_widget_get_width(GTK_WIDGET(self)),
                        gtk_widget_get_height(GTK_WIDGET(self)), self->pointer_x, self->pointer_y,
                        pow(1.15, dy));
    self->user_view = TRUE;
    invalidate(self);
    return TRUE;
}

static void on_drag_begin(GtkGestureDrag *g, double x, double y, QlabChart *self)
{
    self->drag_start = self->view;
}

static void on_drag_update(GtkGestureDrag *g, double dx, double dy, QlabChart *self)
{
    if (!self->data || hypot(dx, dy) < 4)
        return;
    qlab_plot_view v = self->drag_start;
    qlab_plot_view_pan(&v, self->data, gtk_widget_get_width(GTK_WIDGET(self)),
                       gtk_widget_get_height(GTK_WIDGET(self)), dx, dy);
    self->view.x_lo = v.x_lo;
    self->view.x_hi = v.x_hi;
    self->view.y_lo = v.y_lo;
    self->view.y_hi = v.y_hi;
    self->user_view = TRUE;
    invalidate(self);
}

static void on_drag_end(GtkGestureDrag *g, double dx, double dy, QlabChart *self)
{
    double x, y;
    /* A press and release without movement is a click: select the run under it. */
    if (hypot(dx, dy) < 4 && gtk_gesture_drag_get_start_point(g, &x, &y))
        qlab_chart_select_at(self, x, y);
}

static void chart_get_property(GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
    QlabChart *self = QLAB_CHART(object);
    switch (id) {
    case PROP_LOG_X:
        g_value_set_boolean(value, self->log_x);
        break;
    case PROP_BITS_PER_WEIGHT:
        g_value_set_boolean(value, self->bpw);
        break;
    case PROP_SELECTED_RUN:
        g_value_set_int64(value, self->selected_run);
        break;
    case PROP_N_POINTS:
        g_value_set_uint(value, qlab_chart_get_n_points(self));
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
    }
}

static void chart_set_property(GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
    QlabChart *self = QLAB_CHART(object);
    switch (id) {
    case PROP_LOG_X:
        qlab_chart_set_log_x(self, g_value_get_boolean(value));
        break;
    case PROP_BITS_PER_WEIGHT:
        qlab_chart_set_bits_per_weight(self, g_value_get_boolean(value));
        break;
    case PROP_SELECTED_RUN:
        qlab_chart_set_selected_run(self, g_value_get_int64(value));
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
    }
}

static void chart_finalize(GObject *object)
{
    QlabChart *self = QLAB_CHART(object);
    g_clear_pointer(&self->base, gsk_render_node_unref);
    if (self->data) {
        qlab_plot_data_clear(self->data);
        g_free(self->data);
    }
    G_OBJECT_CLASS(qlab_chart_parent_class)->finalize(object);
}

static void qlab_chart_class_init(QlabChartClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    oc->finalize = chart_finalize;
    oc->get_property = chart_get_property;
    oc->set_property = chart_set_property;
    wc->snapshot = chart_snapshot;
    wc->css_changed = chart_css_changed;

    properties[PROP_LOG_X] =
        g_param_spec_boolean("log-x", NULL, "Logarithmic x axis", TRUE,
                             G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
    properties[PROP_BITS_PER_WEIGHT] = g_param_spec_boolean(
        "bits-per-weight", NULL, "x is bits per weight instead of total bytes", FALSE,
        G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
    properties[PROP_SELECTED_RUN] = g_param_spec_int64(
        "selected-run", NULL, "Id of the selected run, -1 for none", -1, G_MAXINT64, -1,
        G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
    properties[PROP_N_POINTS] =
        g_param_spec_uint("n-points", NULL, "Runs drawn after filtering", 0, G_MAXUINT, 0,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
    g_object_class_install_properties(oc, N_PROPS, properties);

    signals[SIGNAL_RUN_SELECTED] =
        g_signal_new("run-selected", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 1, G_TYPE_INT64);
    gtk_widget_class_set_css_name(wc, "qlabchart");
}

static void qlab_chart_init(QlabChart *self)
{
    self->log_x = TRUE;
    self->selected_run = -1;
    qlab_plot_filter_init(&self->filter);
    qlab_plot_view_init(&self->view);
    qlab_plot_theme_init(&self->theme, 0);
    gtk_widget_set_focusable(GTK_WIDGET(self), TRUE);
    gtk_widget_set_hexpand(GTK_WIDGET(self), TRUE);
    gtk_widget_set_vexpand(GTK_WIDGET(self), TRUE);
    gtk_widget_set_size_request(GTK_WIDGET(self), 420, 280);

    GtkEventController *motion = gtk_event_controller_motion_new();
    g_signal_connect(motion, "motion", G_CALLBACK(on_motion), self);
    g_signal_connect(motion, "leave", G_CALLBACK(on_leave), self);
    gtk_widget_add_controller(GTK_WIDGET(self), motion);

    GtkEventController *scroll =
        gtk_event_controller_scroll_new(GTK_EVENT_CONTROLLER_SCROLL_VERTICAL);
    g_signal_connect(scroll, "scroll", G_CALLBACK(on_scroll), self);
    gtk_widget_add_controller(GTK_WIDGET(self), scroll);

    GtkGesture *drag = gtk_gesture_drag_new();
    g_signal_connect(drag, "drag-begin", G_CALLBACK(on_drag_begin), self);
    g_signal_connect(drag, "drag-update", G_CALLBACK(on_drag_update), self);
    g_signal_connect(drag, "drag-end", G_CALLBACK(on_drag_end), self);
    gtk_widget_add_controller(GTK_WIDGET(self), GTK_EVENT_CONTROLLER(drag));
}

GtkWidget *qlab_chart_new(void)
{
    return g_object_new(QLAB_TYPE_CHART, NULL);
}

void qlab_chart_set_data(QlabChart *self, qlab_plot_data *data)
{
    g_return_if_fail(QLAB_IS_CHART(self));
    /* A different experiment starts with a fitted view. */
    if (!self->data || !data || strcmp(self->data->title, data->title) != 0)
        self->user_view = FALSE;
    if (self->data) {
        qlab_plot_data_clear(self->data);
        g_free(self->data);
    }
    self->data = data;
    renormalise(self);
    invalidate(self);
}

const qlab_plot_data *qlab_chart_get_data(QlabChart *self)
{
    g_return_val_if_fail(QLAB_IS_CHART(self), NULL);
    return self->data;
}

guint qlab_chart_get_n_points(QlabChart *self)
{
    g_return_val_if_fail(QLAB_IS_CHART(self), 0);
    return self->data ? (guint)self->data->n_visible : 0;
}

void qlab_chart_set_filter(QlabChart *self, const qlab_plot_filter *filter)
{
    g_return_if_fail(QLAB_IS_CHART(self));
    self->filter = *filter;
    renormalise(self);
}

void qlab_chart_get_filter(QlabChart *self, qlab_plot_filter *filter)
{
    *filter = self->filter;
}

gboolean qlab_chart_get_log_x(QlabChart *self)
{
    return self->log_x;
}

void qlab_chart_set_log_x(QlabChart *self, gboolean log_x)
{
    g_return_if_fail(QLAB_IS_CHART(self));
    log_x = !!log_x;
    if (self->log_x == log_x)
        return;
    self->log_x = log_x;
    self->user_view = FALSE;
    renormalise(self);
    g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_LOG_X]);
}

gboolean qlab_chart_get_bits_per_weight(QlabChart *self)
{
    return self->bpw;
}

void qlab_chart_set_bits_per_weight(QlabChart *self, gboolean bpw)
{
    g_return_if_fail(QLAB_IS_CHART(self));
    bpw = !!bpw;
    if (self->bpw == bpw)
        return;
    self->bpw = bpw;
    self->user_view = FALSE;
    renormalise(self);
    g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_BITS_PER_WEIGHT]);
}

gint64 qlab_chart_get_selected_run(QlabChart *self)
{
    return self->selected_run;
}

void qlab_chart_set_selected_run(QlabChart *self, gint64 run_id)
{
    g_return_if_fail(QLAB_IS_CHART(self));
    if (self->selected_run == run_id)
        return;
    self->selected_run = run_id;
    self->view.selected = index_of_run(self->data, run_id);
    gtk_widget_queue_draw(GTK_WIDGET(self));
    g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_SELECTED_RUN]);
}

void qlab_chart_reset_view(QlabChart *self)
{
    g_return_if_fail(QLAB_IS_CHART(self));
    self->user_view = FALSE;
    if (self->data)
        qlab_plot_view_fit(&self->view, self->data);
    invalidate(self);
}

gboolean qlab_chart_select_at(QlabChart *self, double x, double y)
{
    g_return_val_if_fail(QLAB_IS_CHART(self), FALSE);
    if (!self->data)
        return FALSE;
    long i = qlab_plot_hit_test(self->data, &self->view, gtk_widget_get_width(GTK_WIDGET(self)),
                                gtk_widget_get_height(GTK_WIDGET(self)), x, y, 8);
    if (i < 0)
        return FALSE;
    gint64 id = self->data->points[i].run_id;
    qlab_chart_set_selected_run(self, id);
    g_signal_emit(self, signals[SIGNAL_RUN_SELECTED], 0, id);
    return TRUE;
}

gboolean qlab_chart_get_run_position(QlabChart *self, gint64 run_id, double *x, double *y)
{
    g_return_val_if_fail(QLAB_IS_CHART(self), FALSE);
    long i = index_of_run(self->data, run_id);
    if (i < 0 || !(self->data->points[i].flags & QLAB_POINT_VISIBLE))
        return FALSE;
    return qlab_plot_point_position(self->data, &self->view, gtk_widget_get_width(GTK_WIDGET(self)),
                                    gtk_widget_get_height(GTK_WIDGET(self)), (size_t)i, x, y) == 0;
}

void qlab_chart_render(QlabChart *self, cairo_t *cr, double w, double h)
{
    g_return_if_fail(QLAB_IS_CHART(self));
    if (!self->data)
        return;
    qlab_plot_view v = self->view;
    v.hovered = -1;
    qlab_plot_render_frontier(cr, w, h, self->data, &v, &self->theme);
}

static void export_draw(cairo_t *cr, double w, double h, void *ctx)
{
    qlab_chart_render(ctx, cr, w, h);
}

gboolean qlab_chart_export(QlabChart *self, const char *path, GError **error)
{
    g_return_val_if_fail(QLAB_IS_CHART(self), FALSE);
    double w = MAX(gtk_widget_get_width(GTK_WIDGET(self)), 640);
    double h = MAX(gtk_widget_get_height(GTK_WIDGET(self)), 400);
    int r = qlab_plot_export(path, w, h, export_draw, self);
    if (r < 0) {
        g_set_error(error, G_IO_ERROR,
                    r == -EINVAL ? G_IO_ERROR_INVALID_FILENAME : G_IO_ERROR_FAILED,
                    r == -EINVAL ? "%s: the name must end in .png, .svg or .pdf"
                                 : "%s: cannot write the file",
                    path);
        return FALSE;
    }
    return TRUE;
}
