/* qlab-app.h — QlabApp, the GtkApplication of qlab-gui (org.qlab.Gui): actions and
 * shortcuts, the remembered database, the system's dark style. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define QLAB_TYPE_APP (qlab_app_get_type())
G_DECLARE_FINAL_TYPE(QlabApp, qlab_app, QLAB, APP, GtkApplication)

QlabApp *qlab_app_new(void);
/* The database opened last, from $XDG_CONFIG_HOME/qlab/gui.ini, or NULL (g_free it). */
char *qlab_app_load_last_database(void);
void qlab_app_save_last_database(const char *path);
/* Asks GTK for the dark theme when the desktop prefers dark (or QLAB_GUI_DARK=1; 0 forces
 * light). Call after gtk_init. */
void qlab_app_follow_dark_style(void);

G_END_DECLS
