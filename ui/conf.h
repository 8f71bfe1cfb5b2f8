/* conf.h -- the workbench's settings file: "key = value" lines, '#'
 * comments, read at start and written back whole (atomically, base/file.h)
 * when a setting changes. Unknown keys are kept and ignored; a line that is
 * not "key = value" is skipped with a message (the rest still counts).
 * The file is $XDG_CONFIG_HOME/onebit-tui/config, else
 * ~/.config/onebit-tui/config. Pure but for the file I/O: unit-tested.
 * Threads: the UI thread owns the App's UiConf; the functions keep no
 * global state. */
#ifndef OB_UI_CONF_H
#define OB_UI_CONF_H

typedef struct {
    char **keys, **vals;  /* n pairs, owned, in the file's order */
    int n, cap;
} UiConf;

void ui_conf_free(UiConf *c);
/* add the settings of text (the file's contents) to c; 0, or the number of
 * lines skipped with the first one's line number and why in err */
int ui_conf_parse(UiConf *c, const char *text, char *err);
/* the value of key, or NULL */
const char *ui_conf_get(const UiConf *c, const char *key);
/* set key (replaces); 1 when the value changed */
int ui_conf_set(UiConf *c, const char *key, const char *val);
/* the file's text (malloc'd) */
char *ui_conf_text(const UiConf *c);
/* the path of the settings file (malloc'd), or NULL with err when neither
 * XDG_CONFIG_HOME nor HOME is set */
char *ui_conf_path(char *err);
/* read path into c: 0; a missing file is no error (c stays empty); -1 with
 * err when it cannot be read, >0 lines skipped (see ui_conf_parse) */
int ui_conf_load(UiConf *c, const char *path, char *err);
/* write c to path atomically, creating its directory: 0, or -1 with err */
int ui_conf_save(const UiConf *c, const char *path, char *err);

#endif
