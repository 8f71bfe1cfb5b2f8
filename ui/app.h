/* ui/app.h -- the workbench shell: the App state shared by the screens, the
 * screen interface, and the services screens use (message line, log, path
 * prompt and live prompt, yes/no question, modal form, pick list, settings,
 * background-job ids, requests to other screens). The main loop in app.c blocks in poll() on the terminal,
 * the EventRing that background jobs (base/job.h) push to, and a signal
 * self-pipe; it redraws only when something changed.
 *
 * Threads: everything here is for the UI thread, the one that runs ui_main
 * (asserted); background jobs reach the UI only through a->ring.
 *
 * Screens own their state: a screen declares state_size, the app allocates
 * it (zeroed) before the first call and frees it after fini; the screen
 * finds it with app_state. Screens do not call each other: they post a
 * request (app_post, an EV_REQUEST event with one of the UI_REQ_ numbers)
 * that every screen's event callback sees, as it sees the jobs' events. */
#ifndef OB_UI_APP_H
#define OB_UI_APP_H

#include <stdint.h>

#include "base/events.h"
#include "base/job.h"
#include "ui/conf.h"
#include "ui/form.h"
#include "ui/grid.h"
#include "ui/keymap.h"
#include "model/model.h"
#include "ui/table.h"
#include "ui/textinput.h"
#include "format/tokenizer.h"
#include "ui/tui.h"

typedef struct App App;

typedef struct {
    const char *name;
    int number;                        /* its number key */
    UiCtx ctx;                         /* its keymap context */
    int list;                          /* also takes the "Lists" keys */
    void (*draw)(App *a, UiGrid *g);   /* draw the body (g is the body grid) */
    /* a key: k is its keymap entry in ctx/LIST, or NULL; return 1 if used */
    int (*key)(App *a, const UiKey *k, int key);
    void (*event)(App *a, const Event *ev);
    /* nonzero while a text field of the screen has focus: its keymap ctx */
    UiCtx (*typing)(App *a);
    /* right side of the status bar (progress of what runs here), or NULL */
    void (*status)(App *a, char *buf, int n);
    void (*enter)(App *a);             /* became visible; may be NULL */
    /* what quitting would cut short, into why (n bytes): nonzero when
     * something would (a run training, runs queued); may be NULL */
    int (*busy)(App *a, char *why, int n);
    void (*teacher)(App *a);           /* a new teacher was installed; may be NULL */               /* a run would be cut short by quitting; may be NULL */
    void (*fini)(App *a);              /* stop workers, free what the state points to; may be NULL */
    size_t state_size;                 /* its state (app_state), owned by the app */
    /* while shown, draw at least every watch_ms milliseconds, so that the
     * screen can notice changes made outside (another process's runs);
     * 0: only on input and events (an idle workbench sleeps) */
    int watch_ms;
    /* the table shown now, or NULL (may be NULL): the app gives it mouse
     * clicks, the / filter, the F6 sort picker, and keeps its sort in the
     * settings as sort.<name in lower case> */
    UiTable *(*table)(App *a);
    /* a click at body (x,y) that no table took; may be NULL */
    void (*click)(App *a, int x, int y);
} UiScreen;

/* what screens ask each other for (Event.req of an EV_REQUEST) */
enum {
    UI_REQ_RESUME_RUN = 1,   /* Train: queue the resume of run run_id */
    UI_REQ_CHAT_STUDENT,     /* Chat: load the student at path (run run_id) and show it */
    UI_REQ_RUNS_CHANGED,     /* Runs: the run store changed, read it again */
};

typedef struct {
    const char *teacher, *tokenizer, *db;
    int ascii, color; /* color 0: --no-color or NO_COLOR (the mono theme) */
    int mouse;        /* -1: as the settings say (on), 0: --no-mouse */
} UiOptions;

enum { UI_THEME_DARK, UI_THEME_LIGHT, UI_THEME_MONO };
#define UI_MENU_MAX 16

#define UI_LOG_MAX 2000

struct App {
    UiOptions opt;
    EventRing ring;
    int64_t next_id;

    /* the teacher (owned; replaced only when teacher_users == 0) */
    Model *teacher;
    Tokenizer *tok;
    char teacher_path[4096], tok_path[4096];
    int teacher_users;                 /* background jobs reading the teacher */
    char teacher_sha[65];              /* SHA-256 of the teacher file */
    int64_t teacher_id;                /* its row in the run store (0: none) */

    /* the run store (NULL when it could not be opened: then db_path is ""
     * and runs train unrecorded); db_ro: opened read-only (browse, no
     * training); banner: the persistent line that says either */
    struct Db *db;
    char db_path[4096];
    int db_ro;
    char banner[512];

    const UiScreen *screens[8];
    void *state[8];                    /* screens[i]'s state */
    int nscreens, cur;
    Event *posted;                     /* requests waiting for dispatch (app_post) */
    int nposted, capposted;
    pthread_t ui_thread;               /* the thread of ui_main */

    /* message line and log */
    char msg[512];
    int msg_err;
    char *log[UI_LOG_MAX];
    int nlog, log_first;               /* ring of lines */
    long log_total;

    /* modal state */
    int help, help_top;
    int prompting;
    UiInput prompt;
    char prompt_title[128], prompt_listing[512];
    int prompt_path;
    void (*prompt_cb)(App *a, const char *text);
    int confirming;
    char question[256];
    void (*confirm_cb)(App *a, int yes);
    void (*prompt_live)(App *a, const char *text); /* on every edit (app_prompt_live) */
    UiForm *form;
    void (*form_cb)(App *a, UiForm *f, int accepted);
    int menu, menu_n, menu_cur, menu_y0; /* a pick list (app_menu); menu_y0: its first row in the body */
    char menu_title[64], menu_items[UI_MENU_MAX][64];
    void (*menu_cb)(App *a, int choice);

    /* the settings file (ui/conf.h) */
    UiConf conf;
    char conf_path[4096];              /* "" when there is none */
    int conf_dirty, conf_err_shown, theme, mouse; /* conf_dirty: written after this key or event */
    int tab_x[9];                      /* the tab bar: tab i spans [tab_x[i], tab_x[i+1]) */
    int click_enter_y;                 /* the body row a click made Enter on, and when */
    double click_enter_t;

    /* the process's own figures for the status bar while something runs
     * (from /proc/self, sampled at most once a second) */
    double ps_wall, ps_cpu;            /* when, and CPU seconds then */
    char ps_text[64];                  /* "CPU 150%  RSS 480M  5 threads" */

    int dirty, quit;
    int cursor_on, cx, cy;             /* cursor in body coordinates */
    int body_h, body_w, body_y;        /* the body's size, and its first line on the screen */
};

/* ids of UI jobs (generation, loading); far above run ids, so events of
 * both can share the ring */
int64_t app_new_id(App *a);
/* a background job that reads the teacher, its events on the app's ring:
 * 0 and teacher_users counted, or -1 with the error shown */
int app_start_teacher_job(App *a, Job **out, const char *name, JobFn fn, void *arg);
/* join and free such a job, teacher_users uncounted; fn's result */
int app_join_teacher_job(App *a, Job *job);
void app_dirty(App *a);
/* message line (err: in the error colour); also appended to the log */
void app_msg(App *a, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void app_log(App *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *app_log_line(const App *a, long i); /* i in [0, a->nlog) */
void app_log_clear(App *a);
/* one-line prompt in the message line; path: Tab completes file names */
void app_prompt(App *a, const char *title, const char *init, int path, void (*cb)(App *, const char *));
void app_confirm(App *a, const char *question, void (*cb)(App *, int yes));
/* a prompt whose live(a, text) runs after every edit, on Enter, and with ""
 * on Esc (a filter that follows the typing) */
void app_prompt_live(App *a, const char *title, const char *init, void (*live)(App *, const char *));
/* a pick list of n items (n <= UI_MENU_MAX), cur selected: cb gets the
 * index taken (never called on Esc) */
void app_menu(App *a, const char *title, const char *const *items, int n, int cur, void (*cb)(App *, int choice));
/* a setting of the settings file, or NULL */
const char *app_conf(App *a, const char *key);
/* a numeric setting in [lo, hi], else def (a value that is not one is
 * reported in the message line) */
double app_conf_num(App *a, const char *key, double def, double lo, double hi);
/* change a setting; when it changed the file is written (atomically) once
 * the current key or event is handled */
void app_conf_set(App *a, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* show f as a modal form; cb gets it back (the callee frees it) */
void app_form(App *a, UiForm *f, void (*cb)(App *, UiForm *, int accepted));
/* the cursor goes to body (x,y) after this draw */
void app_cursor(App *a, int x, int y);
void app_switch(App *a, int number);
/* install a loaded teacher (takes ownership); fails while jobs use the old */
int app_set_teacher(App *a, Model *m, Tokenizer *t, const char *path, const char *tokpath);
/* the state of screen s (allocated by the app, s->state_size bytes) */
void *app_state(App *a, const UiScreen *s);
/* a request to the screens (ev->kind EV_REQUEST): every screen's event
 * callback gets it after the current key or event is handled. Never
 * dropped; a path travels in ev->path (evring_intern). */
void app_post(App *a, const Event *ev);
/* deliver the posted requests (the main loop; tests) */
void app_dispatch_posted(App *a);
/* assert that the caller is the UI thread */
void app_assert_ui(const App *a);
/* the run store can be written: 1, else 0 with the reason in the message line
 * (what: the refused action, "train") */
int app_db_writable(App *a, const char *what);

/* the screens */
extern const UiScreen ui_scr_model, ui_scr_layers, ui_scr_train, ui_scr_runs, ui_scr_chat, ui_scr_log;


#endif
