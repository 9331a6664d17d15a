/* qlab-app.c — QlabApp (see qlab-app.h). */
#include "qlab-app.h"
#include "qlab-window.h"

struct _QlabApp {
    GtkApplication parent_instance;
};

G_DEFINE_FINAL_TYPE(QlabApp, qlab_app, GTK_TYPE_APPLICATION)

static char *config_path(void)
{
    return g_build_filename(g_get_user_config_dir(), "qlab", "gui.ini", NULL);
}

char *qlab_app_load_last_database(void)
{
    char *file = config_path();
    GKeyFile *kf = g_key_file_new();
    char *path = NULL;
    if (g_key_file_load_from_file(kf, file, G_KEY_FILE_NONE, NULL))
        path = g_key_file_get_string(kf, "gui", "last-database", NULL);
    g_key_file_unref(kf);
    g_free(file);
    return path;
}

void qlab_app_save_last_database(const char *path)
{
    char *file = config_path();
    char *dir = g_path_get_dirname(file);
    GKeyFile *kf = g_key_file_new();
    g_key_file_load_from_file(kf, file, G_KEY_FILE_KEEP_COMMENTS, NULL);
    g_key_file_set_string(kf, "gui", "last-database", path);
    /* Remembering is a convenience: a read-only home must not stop the app. */
    if (g_mkdir_with_parents(dir, 0700) == 0)
        g_key_file_save_to_file(kf, file, NULL);
    g_key_file_unref(kf);
    g_free(dir);
    g_free(file);
}

/* GTK 4.8 alone does not follow the desktop's colour scheme (libadwaita's style manager
 * does); read GNOME's setting when its schema is installed and ask GTK for the dark
 * variant of the theme. */
void qlab_app_follow_dark_style(void)
{
    GSettingsSchemaSource *src = g_settings_schema_source_get_default();
    GSettingsSchema *schema =
        src ? g_settings_schema_source_lookup(src, "org.gnome.desktop.interface", TRUE) : NULL;
    gboolean dark = FALSE;
    if (schema && g_settings_schema_has_key(schema, "color-scheme")) {
        GSettings *s = g_settings_new("org.gnome.desktop.interface");
        char *v = g_settings_get_string(s, "color-scheme");
        dark = g_strcmp0(v, "prefer-dark") == 0;
        g_free(v);
        g_object_unref(s);
    }
    if (schema)
        g_settings_schema_unref(schema);
    const char *env = g_getenv("QLAB_GUI_DARK");
    if (env)
        dark = g_strcmp0(env, "1") == 0;
    if (dark)
        g_object_set(gtk_settings_get_default(), "gtk-application-prefer-dark-theme", TRUE, NULL);
}

static void quit_action(GSimpleAction *a, GVariant *p, gpointer app)
{
    g_application_quit(G_APPLICATION(app));
}

static const GActionEntry app_actions[] = {
    {.name = "quit", .activate = quit_action},
};

static void app_startup(GApplication *app)
{
    G_APPLICATION_CLASS(qlab_app_parent_class)->startup(app);
    qlab_app_follow_dark_style();
    g_action_map_add_action_entries(G_ACTION_MAP(app), app_actions, G_N_ELEMENTS(app_actions), app);
    static const struct {
        const char *action, *accels[3];
    } accels[] = {
        {"app.quit", {"<Control>q", NULL}},          {"win.open", {"<Control>o", NULL}},
        {"win.reload", {"<Control>r", "F5", NULL}},  {"win.zoom-reset", {"<Control>0", NULL}},
        {"win.export('png')", {"<Control>e", NULL}},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(accels); i++)
        gtk_application_set_accels_for_action(GTK_APPLICATION(app), accels[i].action,
                                              accels[i].accels);
}

static QlabWindow *window_for(GApplication *app)
{
    GtkWindow *w = gtk_application_get_active_window(GTK_APPLICATION(app));
    if (QLAB_IS_WINDOW(w))
        return QLAB_WINDOW(w);
    return qlab_window_new(GTK_APPLICATION(app));
}

static void open_path(QlabWindow *win, const char *path)
{
    qlab_window_open(win, path);
    qlab_app_save_last_database(path);
}

static void app_activate(GApplication *app)
{
    QlabWindow *win = window_for(app);
    if (!qlab_window_get_path(win)) {
        char *last = qlab_app_load_last_database();
        if (last && g_file_test(last, G_FILE_TEST_IS_REGULAR))
            qlab_window_open(win, last);
        else if (g_file_test("qlab.db", G_FILE_TEST_IS_REGULAR))
            open_path(win, "qlab.db");
        g_free(last);
    }
    gtk_window_present(GTK_WINDOW(win));
}

static void app_open(GApplication *app, GFile **files, int n, const char *hint)
{
    QlabWindow *win = window_for(app);
    char *path = n > 0 ? g_file_get_path(files[0]) : NULL;
    if (path)
        open_path(win, path);
    g_free(path);
    gtk_window_present(GTK_WINDOW(win));
}

static void qlab_app_class_init(QlabAppClass *klass)
{
    GApplicationClass *ac = G_APPLICATION_CLASS(klass);
    ac->startup = app_startup;
    ac->activate = app_activate;
    ac->open = app_open;
}

static void qlab_app_init(QlabApp *self)
{
}

QlabApp *qlab_app_new(void)
{
    return g_object_new(QLAB_TYPE_APP, "application-id", "org.qlab.Gui", "flags",
                        G_APPLICATION_HANDLES_OPEN | G_APPLICATION_NON_UNIQUE, NULL);
}
