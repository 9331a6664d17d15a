/* qlab-window.c — QlabWindow (see qlab-window.h). */
#include <math.h>
#include <string.h>

#include "qlab-live.h"
#include "qlab-loader.h"
#include "qlab-window.h"

/* PRAGMA data_version polling: the only source of news without a daemon; a safety net
 * (a commit by another writer, a lost event) while qlabd's events drive the reloads. */
#define POLL_MS 500
#define POLL_LIVE_MS 5000

struct _QlabWindow {
    GtkApplicationWindow parent_instance;
    char *path;
    GCancellable *cancellable;
    QlabPoller *poller;
    QlabLive *live;
    gint64 experiment;
    gboolean loading, reload_pending, updating_list;
    int detail_loads;
    GArray *exp_ids; /* gint64 per list row */

    GtkWidget *exp_list, *chart, *layer_view, *details, *status, *live_label;
    GtkWidget *bits_min, *bits_max, *scheme, *gran, *calib, *act;
    GtkWidget *x_mode, *log_x;
    char *details_text;
};

G_DEFINE_FINAL_TYPE(QlabWindow, qlab_window, GTK_TYPE_APPLICATION_WINDOW)

/* Activation filter entries: "any", then FP32, then integer widths. */
static const int act_values[] = {-1, 0, 2, 3, 4, 5, 6, 7, 8, 16};
static const char *const act_labels[] = {"any activations",
                                         "FP32 activations",
                                         "int2",
                                         "int3",
                                         "int4",
                                         "int5",
                                         "int6",
                                         "int7",
                                         "int8",
                                         "int16",
                                         NULL};

static void set_status(QlabWindow *self, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void set_status(QlabWindow *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    gtk_label_set_text(GTK_LABEL(self->status), s);
    g_free(s);
}

static void set_details(QlabWindow *self, const char *text)
{
    g_free(self->details_text);
    self->details_text = g_strdup(text);
    gtk_label_set_text(GTK_LABEL(self->details), text);
}

static char *exp_row_text(const qlab_results_exp *e)
{
    char acc[32] = "FP32 —";
    if (isfinite(e->fp32_accuracy))
        g_snprintf(acc, sizeof(acc), "FP32 %.2f%%", 100 * e->fp32_accuracy);
    char *name = g_markup_escape_text(e->name ? e->name : "?", -1);
    char *s = g_strdup_printf("<b>%s</b>  <small>#%" G_GINT64_FORMAT "</small>\n<small>%s · "
                              "%" G_GINT64_FORMAT "/%" G_GINT64_FORMAT " runs%s · %s</small>",
                              name, e->id, e->status ? e->status : "?", e->runs_done, e->runs_total,
                              e->runs_failed ? " (some failed)" : "", acc);
    g_free(name);
    return s;
}

static void update_list(QlabWindow *self, const QlabSnapshot *s)
{
    gboolean same = self->exp_ids->len == s->n_exps;
    for (size_t i = 0; same && i < s->n_exps; i++)
        same = g_array_index(self->exp_ids, gint64, i) == s->exps[i].id;
    self->updating_list = TRUE;
    if (!same) {
        GtkWidget *child;
        while ((child = gtk_widget_get_first_child(self->exp_list)))
            gtk_list_box_remove(GTK_LIST_BOX(self->exp_list), child);
        g_array_set_size(self->exp_ids, 0);
        for (size_t i = 0; i < s->n_exps; i++) {
            GtkWidget *label = gtk_label_new(NULL);
            gtk_label_set_xalign(GTK_LABEL(label), 0);
            gtk_widget_set_margin_start(label, 8);
            gtk_widget_set_margin_end(label, 8);
            gtk_widget_set_margin_top(label, 5);
            gtk_widget_set_margin_bottom(label, 5);
            gtk_list_box_append(GTK_LIST_BOX(self->exp_list), label);
            g_array_append_val(self->exp_ids, s->exps[i].id);
        }
    }
    for (size_t i = 0; i < s->n_exps; i++) {
        GtkListBoxRow *row = gtk_list_box_get_row_at_index(GTK_LIST_BOX(self->exp_list), (int)i);
        char *t = exp_row_text(&s->exps[i]);
        gtk_label_set_markup(GTK_LABEL(gtk_list_box_row_get_child(row)), t);
        g_free(t);
        if (s->exps[i].id == self->experiment)
            gtk_list_box_select_row(GTK_LIST_BOX(self->exp_list), row);
    }
    self->updating_list = FALSE;
}

static void on_snapshot(GObject *src, GAsyncResult *res, gpointer data)
{
    GError *error = NULL;
    QlabSnapshot *s = qlab_load_snapshot_finish(res, &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        g_error_free(error); /* the window is gone or switched databases */
        return;
    }
    QlabWindow *self = data;
    self->loading = FALSE;
    if (error) {
        set_status(self, "%s", error->message);
        g_error_free(error);
    } else {
        /* With nothing chosen yet, show the newest experiment. */
        if (self->experiment < 0 && s->n_exps > 0) {
            self->experiment = s->exps[0].id;
            self->reload_pending = TRUE;
        }
        update_list(self, s);
        if (s->runs && s->experiment_id == self->experiment) {
            QlabChart *chart = QLAB_CHART(self->chart);
            qlab_chart_set_data(chart, s->runs);
            s->runs = NULL;
            set_status(self, "%s — %u runs shown of %zu finished; loaded in %.0f ms", self->path,
                       qlab_chart_get_n_points(chart), qlab_chart_get_data(chart)->n,
                       s->elapsed_ms);
        } else if (s->n_exps == 0) {
            set_status(self, "%s — no experiments yet", self->path);
        }
        qlab_snapshot_free(s);
    }
    if (self->reload_pending) {
        self->reload_pending = FALSE;
        qlab_window_reload(self);
    }
}

void qlab_window_reload(QlabWindow *self)
{
    g_return_if_fail(QLAB_IS_WINDOW(self));
    if (!self->path)
        return;
    if (self->loading) {
        self->reload_pending = TRUE;
        return;
    }
    self->loading = TRUE;
    QlabChart *chart = QLAB_CHART(self->chart);
    qlab_plot_filter f;
    qlab_chart_get_filter(chart, &f);
    qlab_load_snapshot_async(self->path, self->experiment, &f,
                             qlab_chart_get_bits_per_weight(chart) ? QLAB_PLOT_X_BPW
                                                                   : QLAB_PLOT_X_BYTES,
                             qlab_chart_get_log_x(chart), self->cancellable, on_snapshot, self);
}

static gboolean on_db_changed(gpointer data)
{
    QlabWindow *self = data;
    qlab_window_reload(self);
    /* Someone writes: perhaps a qlabd started since the last attempt (rate-limited). */
    if (!qlab_live_is_connected(self->live))
        qlab_live_connect(self->live);
    return G_SOURCE_CONTINUE;
}

static void on_live_results(gpointer data)
{
    qlab_window_reload(data);
}

static void show_live_state(QlabWindow *self)
{
    gboolean on = qlab_live_is_connected(self->live);
    gtk_label_set_text(GTK_LABEL(self->live_label), on ? "live: qlabd" : "live: polling");
    char *tip = on ? g_strdup_printf("Progress events from qlabd at %s; the database is "
                                     "also checked every %d s.",
                                     qlab_live_get_socket(self->live), POLL_LIVE_MS / 1000)
                   : g_strdup_printf("No qlabd answers at %s: the database is checked for "
                                     "changes every %d ms.",
                                     qlab_live_get_socket(self->live), POLL_MS);
    gtk_widget_set_tooltip_text(self->live_label, tip);
    g_free(tip);
}

static void on_live_state(gpointer data)
{
    QlabWindow *self = data;
    gboolean on = qlab_live_is_connected(self->live);
    show_live_state(self);
    qlab_poller_set_interval(self->poller, on ? POLL_LIVE_MS : POLL_MS);
    /* Between the last event and a disconnection (or the last poll and a connection) the
     * database may have changed unseen. */
    qlab_window_reload(self);
}

static void on_detail(GObject *src, GAsyncResult *res, gpointer data)
{
    GError *error = NULL;
    qlab_results_run *d = qlab_load_detail_finish(res, &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        g_error_free(error);
        return;
    }
    QlabWindow *self = data;
    self->detail_loads--;
    if (error) {
        set_status(self, "%s", error->message);
        g_error_free(error);
        return;
    }
    /* A quicker later click may have finished first: keep only the current run. */
    if (d->id != qlab_chart_get_selected_run(QLAB_CHART(self->chart))) {
        qlab_results_run_clear(d);
        g_free(d);
        return;
    }
    GString *s = g_string_new(d->summary ? d->summary : "");
    if (d->n_layers) {
        g_string_append(s, "\nlayer     kind     params     bytes  bits  w.SQNR  out.SQNR\n");
        for (size_t i = 0; i < d->n_layers; i++) {
            const qlab_results_layer *l = &d->layers[i];
            g_string_append_printf(
                s, "%-8s  %-7s %7" G_GINT64_FORMAT " %9" G_GINT64_FORMAT "  %4d  %6.1f  %8.1f\n",
                l->layer, l->kind ? l->kind : "", l->params, l->bytes, l->bits, l->weight_sqnr_db,
                l->output_sqnr_db);
        }
    }
    if (d->manifest)
        g_string_append_printf(s, "\nmanifest:\n%s\n", d->manifest);
    set_details(self, s->str);
    g_string_free(s, TRUE);
    qlab_layer_view_set_detail(QLAB_LAYER_VIEW(self->layer_view), d);
}

static void on_run_selected(QlabChart *chart, gint64 run_id, QlabWindow *self)
{
    if (!self->path)
        return;
    self->detail_loads++;
    qlab_load_detail_async(self->path, run_id, self->cancellable, on_detail, self);
}

static void on_row_selected(GtkListBox *box, GtkListBoxRow *row, QlabWindow *self)
{
    if (self->updating_list || !row)
        return;
    int i = gtk_list_box_row_get_index(row);
    if (i < 0 || (guint)i >= self->exp_ids->len)
        return;
    gint64 id = g_array_index(self->exp_ids, gint64, i);
    if (id == self->experiment)
        return;
    self->experiment = id;
    qlab_chart_set_selected_run(QLAB_CHART(self->chart), -1);
    qlab_layer_view_set_detail(QLAB_LAYER_VIEW(self->layer_view), NULL);
    set_details(self, "Click a point of the plot to see that run.");
    qlab_window_reload(self);
}

static int dropdown_value(GtkWidget *dd)
{
    guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(dd));
    return i == GTK_INVALID_LIST_POSITION || i == 0 ? -1 : (int)i - 1;
}

static void on_filter_changed(QlabWindow *self)
{
    qlab_plot_filter f;
    qlab_plot_filter_init(&f);
    f.bits_min = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(self->bits_min));
    f.bits_max = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(self->bits_max));
    f.scheme = dropdown_value(self->scheme);
    f.granularity = dropdown_value(self->gran);
    f.calibration = dropdown_value(self->calib);
    guint a = gtk_drop_down_get_selected(GTK_DROP_DOWN(self->act));
    f.act_bits = a < G_N_ELEMENTS(act_values) ? act_values[a] : -1;
    qlab_chart_set_filter(QLAB_CHART(self->chart), &f);
}

static void on_axes_changed(QlabWindow *self)
{
    QlabChart *c = QLAB_CHART(self->chart);
    qlab_chart_set_bits_per_weight(c, gtk_drop_down_get_selected(GTK_DROP_DOWN(self->x_mode)) == 1);
    qlab_chart_set_log_x(c, gtk_check_button_get_active(GTK_CHECK_BUTTON(self->log_x)));
}

static GtkWidget *dropdown(const char *const *items, GCallback cb, QlabWindow *self)
{
    GtkWidget *dd = gtk_drop_down_new_from_strings(items);
    g_signal_connect_swapped(dd, "notify::selected", cb, self);
    return dd;
}

static void on_open_response(GtkNativeDialog *dialog, int response, QlabWindow *self)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        GFile *file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
        char *path = g_file_get_path(file);
        if (path)
            qlab_window_open(self, path);
        g_free(path);
        g_object_unref(file);
    }
    g_object_unref(dialog);
}

static void open_action(GSimpleAction *a, GVariant *p, gpointer data)
{
    QlabWindow *self = data;
    GtkFileChooserNative *fc =
        gtk_file_chooser_native_new("Open results database", GTK_WINDOW(self),
                                    GTK_FILE_CHOOSER_ACTION_OPEN, "_Open", "_Cancel");
    GtkFileFilter *f = gtk_file_filter_new();
    gtk_file_filter_set_name(f, "qlab databases (*.db, *.sqlite)");
    gtk_file_filter_add_pattern(f, "*.db");
    gtk_file_filter_add_pattern(f, "*.sqlite");
    gtk_file_filter_add_pattern(f, "*.sqlite3");
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(fc), f);
    g_object_unref(f);
    g_signal_connect(fc, "response", G_CALLBACK(on_open_response), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

static void on_export_response(GtkNativeDialog *dialog, int response, QlabWindow *self)
{
    if (response == GTK_RESPONSE_ACCEPT) {
        GFile *file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
        char *path = g_file_get_path(file);
        const char *fmt = g_object_get_data(G_OBJECT(dialog), "format");
        if (path && !g_str_has_suffix(path, fmt)) {
            char *p2 = g_strconcat(path, fmt, NULL);
            g_free(path);
            path = p2;
        }
        GError *error = NULL;
        if (path && qlab_window_export(self, path, &error))
            set_status(self, "plot written to %s", path);
        else if (error) {
            set_status(self, "%s", error->message);
            g_error_free(error);
        }
        g_free(path);
        g_object_unref(file);
    }
    g_object_unref(dialog);
}

static void export_action(GSimpleAction *a, GVariant *param, gpointer data)
{
    QlabWindow *self = data;
    const char *fmt = g_variant_get_string(param, NULL);
    const char *ext = !strcmp(fmt, "svg") ? ".svg" : !strcmp(fmt, "pdf") ? ".pdf" : ".png";
    GtkFileChooserNative *fc = gtk_file_chooser_native_new(
        "Export plot", GTK_WINDOW(self), GTK_FILE_CHOOSER_ACTION_SAVE, "_Export", "_Cancel");
    char *name = g_strdup_printf("qlab-experiment-%" G_GINT64_FORMAT "%s", self->experiment, ext);
    gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(fc), name);
    g_free(name);
    g_object_set_data(G_OBJECT(fc), "format", (gpointer)ext);
    g_signal_connect(fc, "response", G_CALLBACK(on_export_response), self);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

static void reload_action(GSimpleAction *a, GVariant *p, gpointer data)
{
    qlab_window_reload(data);
}

static void zoom_reset_action(GSimpleAction *a, GVariant *p, gpointer data)
{
    qlab_chart_reset_view(qlab_window_get_chart(data));
}

static const GActionEntry win_actions[] = {
    {.name = "open", .activate = open_action},
    {.name = "reload", .activate = reload_action},
    {.name = "zoom-reset", .activate = zoom_reset_action},
    {.name = "export", .activate = export_action, .parameter_type = "s"},
};

static GtkWidget *heading(const char *text)
{
    GtkWidget *l = gtk_label_new(text);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_widget_add_css_class(l, "heading");
    gtk_widget_set_margin_top(l, 6);
    return l;
}

static GtkWidget *build_sidebar(QlabWindow *self)
{
    GtkWidget *side = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_widget_set_margin_start(side, 8);
    gtk_widget_set_margin_end(side, 8);
    gtk_widget_set_margin_bottom(side, 8);
    gtk_box_append(GTK_BOX(side), heading("Experiments"));
    self->exp_list = gtk_list_box_new();
    gtk_list_box_set_selection_mode(GTK_LIST_BOX(self->exp_list), GTK_SELECTION_BROWSE);
    gtk_widget_add_css_class(self->exp_list, "boxed-list");
    g_signal_connect(self->exp_list, "row-selected", G_CALLBACK(on_row_selected), self);
    GtkWidget *sw = gtk_scrolled_window_new();
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), self->exp_list);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sw), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
    gtk_widget_set_vexpand(sw, TRUE);
    gtk_widget_set_size_request(sw, 250, 160);
    gtk_box_append(GTK_BOX(side), sw);

    gtk_box_append(GTK_BOX(side), heading("Filters"));
    GtkWidget *bits = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 4);
    gtk_box_append(GTK_BOX(bits), gtk_label_new("bits"));
    self->bits_min = gtk_spin_button_new_with_range(1, 32, 1);
    self->bits_max = gtk_spin_button_new_with_range(1, 32, 1);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(self->bits_min), 1);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(self->bits_max), 32);
    g_signal_connect_swapped(self->bits_min, "value-changed", G_CALLBACK(on_filter_changed), self);
    g_signal_connect_swapped(self->bits_max, "value-changed", G_CALLBACK(on_filter_changed), self);
    gtk_box_append(GTK_BOX(bits), self->bits_min);
    gtk_box_append(GTK_BOX(bits), gtk_label_new("to"));
    gtk_box_append(GTK_BOX(bits), self->bits_max);
    gtk_box_append(GTK_BOX(side), bits);

    static const char *const schemes[] = {"any scheme", "symmetric", "asymmetric", NULL};
    static const char *const grans[] = {"any granularity", "per tensor", "per channel", "per group",
                                        NULL};
    static const char *const calibs[] = {"any calibration", "minmax", "percentile", "mse",
                                         "entropy",         NULL};
    self->scheme = dropdown(schemes, G_CALLBACK(on_filter_changed), self);
    self->gran = dropdown(grans, G_CALLBACK(on_filter_changed), self);
    self->calib = dropdown(calibs, G_CALLBACK(on_filter_changed), self);
    self->act = dropdown(act_labels, G_CALLBACK(on_filter_changed), self);
    gtk_box_append(GTK_BOX(side), self->scheme);
    gtk_box_append(GTK_BOX(side), self->gran);
    gtk_box_append(GTK_BOX(side), self->calib);
    gtk_box_append(GTK_BOX(side), self->act);
    return side;
}

static GtkWidget *build_header(QlabWindow *self)
{
    GtkWidget *hb = gtk_header_bar_new();
    GtkWidget *open = gtk_button_new_from_icon_name("document-open-symbolic");
    gtk_widget_set_tooltip_text(open, "Open a results database (Ctrl+O)");
    gtk_actionable_set_action_name(GTK_ACTIONABLE(open), "win.open");
    gtk_header_bar_pack_start(GTK_HEADER_BAR(hb), open);
    GtkWidget *reload = gtk_button_new_from_icon_name("view-refresh-symbolic");
    gtk_widget_set_tooltip_text(reload, "Reload (Ctrl+R, F5)");
    gtk_actionable_set_action_name(GTK_ACTIONABLE(reload), "win.reload");
    gtk_header_bar_pack_start(GTK_HEADER_BAR(hb), reload);

    GMenu *menu = g_menu_new();
    g_menu_append(menu, "Export plot as PNG…", "win.export('png')");
    g_menu_append(menu, "Export plot as SVG…", "win.export('svg')");
    g_menu_append(menu, "Export plot as PDF…", "win.export('pdf')");
    GtkWidget *export = gtk_menu_button_new();
    gtk_menu_button_set_icon_name(GTK_MENU_BUTTON(export), "document-save-as-symbolic");
    gtk_widget_set_tooltip_text(export, "Export the plot");
    gtk_menu_button_set_menu_model(GTK_MENU_BUTTON(export), G_MENU_MODEL(menu));
    g_object_unref(menu);
    gtk_header_bar_pack_end(GTK_HEADER_BAR(hb), export);
    GtkWidget *zoom = gtk_button_new_from_icon_name("zoom-fit-best-symbolic");
    gtk_widget_set_tooltip_text(zoom, "Reset zoom (Ctrl+0); scroll to zoom, drag to pan");
    gtk_actionable_set_action_name(GTK_ACTIONABLE(zoom), "win.zoom-reset");
    gtk_header_bar_pack_end(GTK_HEADER_BAR(hb), zoom);
    self->log_x = gtk_check_button_new_with_label("log x");
    gtk_check_button_set_active(GTK_CHECK_BUTTON(self->log_x), TRUE);
    g_signal_connect_swapped(self->log_x, "toggled", G_CALLBACK(on_axes_changed), self);
    gtk_header_bar_pack_end(GTK_HEADER_BAR(hb), self->log_x);
    static const char *const xs[] = {"x: total bytes", "x: bits per weight", NULL};
    self->x_mode = dropdown(xs, G_CALLBACK(on_axes_changed), self);
    gtk_header_bar_pack_end(GTK_HEADER_BAR(hb), self->x_mode);
    return hb;
}

static void window_dispose(GObject *object)
{
    QlabWindow *self = QLAB_WINDOW(object);
    g_cancellable_cancel(self->cancellable);
    g_clear_pointer(&self->live, qlab_live_free);
    g_clear_pointer(&self->poller, qlab_poller_free);
    G_OBJECT_CLASS(qlab_window_parent_class)->dispose(object);
}

static void window_finalize(GObject *object)
{
    QlabWindow *self = QLAB_WINDOW(object);
    g_clear_object(&self->cancellable);
    g_array_unref(self->exp_ids);
    g_free(self->path);
    g_free(self->details_text);
    G_OBJECT_CLASS(qlab_window_parent_class)->finalize(object);
}

static void qlab_window_class_init(QlabWindowClass *klass)
{
    G_OBJECT_CLASS(klass)->dispose = window_dispose;
    G_OBJECT_CLASS(klass)->finalize = window_finalize;
}

static void qlab_window_init(QlabWindow *self)
{
    self->experiment = -1;
    self->cancellable = g_cancellable_new();
    self->exp_ids = g_array_new(FALSE, FALSE, sizeof(gint64));
    g_action_map_add_action_entries(G_ACTION_MAP(self), win_actions, G_N_ELEMENTS(win_actions),
                                    self);
    gtk_window_set_title(GTK_WINDOW(self), "qlab");
    gtk_window_set_icon_name(GTK_WINDOW(self), "org.qlab.Gui");
    gtk_window_set_default_size(GTK_WINDOW(self), 1360, 900);
    gtk_window_set_titlebar(GTK_WINDOW(self), build_header(self));

    self->chart = qlab_chart_new();
    g_signal_connect(self->chart, "run-selected", G_CALLBACK(on_run_selected), self);
    self->layer_view = qlab_layer_view_new();
    self->details = gtk_label_new("Click a point of the plot to see that run.");
    gtk_label_set_selectable(GTK_LABEL(self->details), TRUE);
    gtk_label_set_xalign(GTK_LABEL(self->details), 0);
    gtk_label_set_yalign(GTK_LABEL(self->details), 0);
    gtk_label_set_wrap(GTK_LABEL(self->details), TRUE);
    gtk_label_set_wrap_mode(GTK_LABEL(self->details), PANGO_WRAP_WORD_CHAR);
    gtk_widget_add_css_class(self->details, "monospace");
    gtk_widget_set_margin_start(self->details, 6);
    GtkWidget *dsw = gtk_scrolled_window_new();
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(dsw), self->details);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(dsw), GTK_POLICY_NEVER,
                                   GTK_POLICY_AUTOMATIC);
    gtk_widget_set_size_request(dsw, 380, -1);

    GtkWidget *bottom = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    gtk_box_append(GTK_BOX(bottom), dsw);
    gtk_box_append(GTK_BOX(bottom), self->layer_view);
    gtk_widget_set_hexpand(self->layer_view, TRUE);

    GtkWidget *vpaned = gtk_paned_new(GTK_ORIENTATION_VERTICAL);
    gtk_paned_set_start_child(GTK_PANED(vpaned), self->chart);
    gtk_paned_set_end_child(GTK_PANED(vpaned), bottom);
    gtk_paned_set_resize_end_child(GTK_PANED(vpaned), FALSE);
    gtk_paned_set_shrink_end_child(GTK_PANED(vpaned), FALSE);
    gtk_paned_set_position(GTK_PANED(vpaned), 500);

    GtkWidget *hpaned = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
    gtk_paned_set_start_child(GTK_PANED(hpaned), build_sidebar(self));
    gtk_paned_set_end_child(GTK_PANED(hpaned), vpaned);
    gtk_paned_set_resize_start_child(GTK_PANED(hpaned), FALSE);
    gtk_paned_set_shrink_start_child(GTK_PANED(hpaned), FALSE);
    gtk_widget_set_vexpand(hpaned, TRUE);

    self->status = gtk_label_new("Open a results database (Ctrl+O).");
    gtk_label_set_xalign(GTK_LABEL(self->status), 0);
    gtk_label_set_ellipsize(GTK_LABEL(self->status), PANGO_ELLIPSIZE_MIDDLE);
    gtk_widget_set_margin_start(self->status, 8);
    gtk_widget_set_margin_bottom(self->status, 4);
    gtk_widget_add_css_class(self->status, "dim-label");
    gtk_widget_set_hexpand(self->status, TRUE);
    self->live_label = gtk_label_new("");
    gtk_widget_set_margin_end(self->live_label, 8);
    gtk_widget_set_margin_bottom(self->live_label, 4);
    gtk_widget_add_css_class(self->live_label, "dim-label");
    GtkWidget *status_bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    gtk_box_append(GTK_BOX(status_bar), self->status);
    gtk_box_append(GTK_BOX(status_bar), self->live_label);

    GtkWidget *root = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
    gtk_box_append(GTK_BOX(root), hpaned);
    gtk_box_append(GTK_BOX(root), status_bar);
    gtk_window_set_child(GTK_WINDOW(self), root);
}

QlabWindow *qlab_window_new(GtkApplication *app)
{
    return g_object_new(QLAB_TYPE_WINDOW, "application", app, NULL);
}

void qlab_window_open(QlabWindow *self, const char *path)
{
    g_return_if_fail(QLAB_IS_WINDOW(self));
    /* Results of loads on the previous database must not land in this one. */
    g_cancellable_cancel(self->cancellable);
    g_clear_object(&self->cancellable);
    self->cancellable = g_cancellable_new();
    self->loading = self->reload_pending = FALSE;
    self->detail_loads = 0;
    g_clear_pointer(&self->live, qlab_live_free);
    g_clear_pointer(&self->poller, qlab_poller_free);
    g_free(self->path);
    self->path = g_strdup(path);
    self->experiment = -1;
    g_array_set_size(self->exp_ids, 0);
    GtkWidget *child;
    while ((child = gtk_widget_get_first_child(self->exp_list)))
        gtk_list_box_remove(GTK_LIST_BOX(self->exp_list), child);
    qlab_chart_set_selected_run(QLAB_CHART(self->chart), -1);
    qlab_chart_set_data(QLAB_CHART(self->chart), NULL);
    qlab_layer_view_set_detail(QLAB_LAYER_VIEW(self->layer_view), NULL);
    set_details(self, "Click a point of the plot to see that run.");
    char *base = g_path_get_basename(path);
    char *title = g_strdup_printf("%s — qlab", base);
    gtk_window_set_title(GTK_WINDOW(self), title);
    g_free(title);
    g_free(base);
    set_status(self, "%s — loading…", path);
    self->poller = qlab_poller_new(path, POLL_MS, on_db_changed, self);
    self->live = qlab_live_new(path, on_live_results, on_live_state, self);
    show_live_state(self);
    qlab_window_reload(self);
}

const char *qlab_window_get_path(QlabWindow *self)
{
    return self->path;
}

gboolean qlab_window_select_experiment(QlabWindow *self, gint64 id)
{
    g_return_val_if_fail(QLAB_IS_WINDOW(self), FALSE);
    for (guint i = 0; i < self->exp_ids->len; i++)
        if (g_array_index(self->exp_ids, gint64, i) == id) {
            GtkListBoxRow *row =
                gtk_list_box_get_row_at_index(GTK_LIST_BOX(self->exp_list), (int)i);
            gtk_list_box_select_row(GTK_LIST_BOX(self->exp_list), row);
            /* Selecting the row already shown emits nothing: load anyway. */
            if (self->experiment != id) {
                self->experiment = id;
                qlab_window_reload(self);
            }
            return TRUE;
        }
    return FALSE;
}

gint64 qlab_window_get_experiment(QlabWindow *self)
{
    return self->experiment;
}

void qlab_window_select_run(QlabWindow *self, gint64 run_id)
{
    g_return_if_fail(QLAB_IS_WINDOW(self));
    qlab_chart_set_selected_run(QLAB_CHART(self->chart), run_id);
    on_run_selected(QLAB_CHART(self->chart), run_id, self);
}

gboolean qlab_window_is_busy(QlabWindow *self)
{
    return self->loading || self->reload_pending || self->detail_loads > 0;
}

QlabChart *qlab_window_get_chart(QlabWindow *self)
{
    return QLAB_CHART(self->chart);
}

QlabLayerView *qlab_window_get_layer_view(QlabWindow *self)
{
    return QLAB_LAYER_VIEW(self->layer_view);
}

const char *qlab_window_get_details(QlabWindow *self)
{
    return self->details_text ? self->details_text : "";
}

guint qlab_window_get_n_experiments(QlabWindow *self)
{
    return self->exp_ids->len;
}

gboolean qlab_window_is_live(QlabWindow *self)
{
    return qlab_live_is_connected(self->live);
}

const char *qlab_window_get_live_status(QlabWindow *self)
{
    return gtk_label_get_text(GTK_LABEL(self->live_label));
}

guint64 qlab_window_get_live_batches(QlabWindow *self)
{
    return qlab_live_get_n_batches(self->live);
}

gboolean qlab_window_export(QlabWindow *self, const char *path, GError **error)
{
    return qlab_chart_export(QLAB_CHART(self->chart), path, error);
}
