/* ui/app.c -- the workbench main loop (the UI thread; every App function
 * asserts it): curses setup and teardown (a crash: ui/crash.c), options,
 * the settings file (ui/conf.h: read at start, written after the key or
 * event that changed it), poll() on the terminal + the event ring + a signal pipe +
 * captured stderr, key dispatch through the keymap, mouse reports (tabs,
 * the shown table's rows and titles, form fields, pick lists, the wheel as
 * list keys), the shown table's filter, sort picker and remembered sort, and drawing: the tab bar,
 * the current screen's body, overlays (help, form), the message line and the
 * status bar into one UiGrid that is blitted cell by cell where it changed,
 * then wnoutrefresh + one doupdate. Jobs' events and the screens' requests
 * (app_post) are dispatched to every screen, one at a time. */
#include "ui/app.h"

#include <assert.h>
#include <curses.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ui/crash.h"
#include "base/common.h"
#include "db/db.h"

#define MIN_W 64
#define MIN_H 18

/* ---- terminal restoration on exit, crash and signals -------------------- */
static volatile sig_atomic_t curses_on;
static int saved_stderr = -1, saved_stdout = -1;
static int sig_pipe[2] = {-1, -1};

static void restore_terminal(void)
{
    ui_crash_disarm(); /* from here on a crash only reports */
    if (curses_on) {
        curses_on = 0;
        endwin();
    }
    if (saved_stdout >= 0) {
        fflush(stdout);
        dup2(saved_stdout, 1);
        close(saved_stdout);
        saved_stdout = -1;
    }
    if (saved_stderr >= 0) {
        dup2(saved_stderr, 2);
        close(saved_stderr);
        saved_stderr = -1;
    }
}

static void quit_handler(int sig)
{
    char b = (char)sig;
    if (sig_pipe[1] >= 0) {
        ssize_t w = write(sig_pipe[1], &b, 1);
        (void)w;
    }
}

static void install_signals(void)
{
    /* fatal signals: ui_crash_arm, once curses is set up */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = quit_handler;
    sa.sa_flags = 0;
    int quit[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof quit / sizeof quit[0]; i++) sigaction(quit[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ---- services for the screens ------------------------------------------- */
void app_assert_ui(const App *a)
{
    assert(pthread_equal(pthread_self(), a->ui_thread) && "the workbench's App is for the UI thread only");
    (void)a;
}

int64_t app_new_id(App *a) { app_assert_ui(a); return ((int64_t)1 << 40) + ++a->next_id; }

int app_start_teacher_job(App *a, Job **out, const char *name, JobFn fn, void *arg)
{
    char err[OB_ERRLEN];
    JobSpec js = {.name = name, .id = app_new_id(a), .ring = &a->ring, .fn = fn, .arg = arg, .end_event = 1};
    if (job_start(out, &js, err)) {
        app_msg(a, 1, "%s", err);
        return -1;
    }
    a->teacher_users++;
    return 0;
}

int app_join_teacher_job(App *a, Job *job)
{
    int rc = job_join(job);
    job_free(job);
    a->teacher_users--;
    return rc;
}
void app_dirty(App *a) { app_assert_ui(a); a->dirty = 1; }

void *app_state(App *a, const UiScreen *s)
{
    app_assert_ui(a);
    for (int i = 0; i < a->nscreens; i++)
        if (a->screens[i] == s) return a->state[i];
    assert(!"app_state: not a screen of this app");
    return NULL;
}

void app_post(App *a, const Event *ev)
{
    app_assert_ui(a);
    a->posted = ob_grow(a->posted, (size_t)a->nposted, &a->capposted, 8, sizeof(Event));
    a->posted[a->nposted++] = *ev;
}

static void dispatch(App *a, const Event *ev)
{
    for (int s = 0; s < a->nscreens; s++)
        if (a->screens[s]->event) a->screens[s]->event(a, ev);
}

void app_dispatch_posted(App *a)
{
    app_assert_ui(a);
    /* requests may post requests: take one at a time from the front */
    while (a->nposted > 0) {
        Event ev = a->posted[0];
        memmove(a->posted, a->posted + 1, sizeof(Event) * (a->nposted - 1));
        a->nposted--;
        dispatch(a, &ev);
    }
}

static void log_add(App *a, const char *line)
{
    app_assert_ui(a);
    char stamp[16];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%H:%M:%S ", &tm);
    size_t n = strlen(stamp) + strlen(line) + 1;
    char *s = ob_malloc(n);
    snprintf(s, n, "%s%s", stamp, line);
    if (a->nlog == UI_LOG_MAX) {
        free(a->log[a->log_first]);
        a->log[a->log_first] = s;
        a->log_first = (a->log_first + 1) % UI_LOG_MAX;
    } else {
        a->log[(a->log_first + a->nlog) % UI_LOG_MAX] = s;
        a->nlog++;
    }
    a->log_total++;
    a->dirty = 1;
}

const char *app_log_line(const App *a, long i)
{
    if (i < 0 || i >= a->nlog) return "";
    return a->log[(a->log_first + i) % UI_LOG_MAX];
}

void app_log_clear(App *a)
{
    for (int i = 0; i < a->nlog; i++) free(a->log[(a->log_first + i) % UI_LOG_MAX]);
    a->nlog = a->log_first = 0;
    a->dirty = 1;
}

void app_log(App *a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_add(a, buf);
}

void app_msg(App *a, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->msg, sizeof a->msg, fmt, ap);
    va_end(ap);
    a->msg_err = err;
    log_add(a, a->msg);
}

void app_prompt(App *a, const char *title, const char *init, int path, void (*cb)(App *, const char *))
{
    a->prompt_live = NULL;
    snprintf(a->prompt_title, sizeof a->prompt_title, "%s", title);
    ui_input_set(&a->prompt, init ? init : "");
    a->prompt_path = path;
    a->prompt_cb = cb;
    a->prompt_listing[0] = 0;
    a->prompting = 1;
    a->dirty = 1;
}

void app_prompt_live(App *a, const char *title, const char *init, void (*live)(App *, const char *))
{
    app_prompt(a, title, init, 0, live);
    a->prompt_live = live;
}

void app_menu(App *a, const char *title, const char *const *items, int n, int cur, void (*cb)(App *, int choice))
{
    snprintf(a->menu_title, sizeof a->menu_title, "%s", title);
    a->menu_n = n < UI_MENU_MAX ? n : UI_MENU_MAX;
    for (int i = 0; i < a->menu_n; i++) snprintf(a->menu_items[i], sizeof a->menu_items[i], "%s", items[i]);
    a->menu_cur = cur >= 0 && cur < a->menu_n ? cur : 0;
    a->menu_cb = cb;
    a->menu = a->menu_n > 0;
    a->dirty = 1;
}

const char *app_conf(App *a, const char *key)
{
    app_assert_ui(a);
    return ui_conf_get(&a->conf, key);
}

double app_conf_num(App *a, const char *key, double def, double lo, double hi)
{
    const char *v = app_conf(a, key);
    double x;
    if (!v) return def;
    if (ob_parse_float(v, &x) || !(x >= lo && x <= hi)) {
        app_msg(a, 1, "settings: %s = '%.40s' is not a number in [%g, %g] (%g used)", key, v, lo, hi, def);
        return def;
    }
    return x;
}

void app_conf_set(App *a, const char *key, const char *fmt, ...)
{
    app_assert_ui(a);
    char v[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    if (ui_conf_set(&a->conf, key, v) && a->conf_path[0]) a->conf_dirty = 1;
}

/* the main loop, after a key or event changed settings: one write for all */
static void conf_save(App *a)
{
    char err[OB_ERRLEN];
    if (!a->conf_dirty) return;
    a->conf_dirty = 0;
    if (ui_conf_save(&a->conf, a->conf_path, err) && !a->conf_err_shown) {
        a->conf_err_shown = 1; /* once: the settings still hold for this session */
        app_msg(a, 1, "settings not saved: %s", err);
    }
}

void app_confirm(App *a, const char *question, void (*cb)(App *, int yes))
{
    snprintf(a->question, sizeof a->question, "%s", question);
    a->confirm_cb = cb;
    a->confirming = 1;
    a->dirty = 1;
}

void app_form(App *a, UiForm *f, void (*cb)(App *, UiForm *, int accepted))
{
    a->form = f;
    a->form_cb = cb;
    a->dirty = 1;
}

void app_cursor(App *a, int x, int y)
{
    a->cursor_on = 1;
    a->cx = x;
    a->cy = y;
}

static const UiScreen *cur_screen(App *a) { return a->screens[a->cur]; }

void app_switch(App *a, int number)
{
    for (int i = 0; i < a->nscreens; i++)
        if (a->screens[i]->number == number) {
            a->cur = i;
            if (a->screens[i]->enter) a->screens[i]->enter(a);
            a->dirty = 1;
            return;
        }
}

int app_set_teacher(App *a, Model *m, Tokenizer *t, const char *path, const char *tokpath)
{
    app_assert_ui(a);
    if (a->teacher_users > 0) return -1;
    if (a->teacher) {
        model_free(a->teacher);
        tok_free(a->tok);
        free(a->teacher);
        free(a->tok);
    }
    a->teacher = m;
    a->tok = t;
    snprintf(a->teacher_path, sizeof a->teacher_path, "%s", path);
    snprintf(a->tok_path, sizeof a->tok_path, "%s", tokpath);
    a->dirty = 1;
    return 0;
}

/* ---- quitting ------------------------------------------------------------ */
static void quit_answer(App *a, int yes)
{
    if (yes) a->quit = 1;
}

static void request_quit(App *a)
{
    /* a screen with a training run or queued runs asks first; generations just stop */
    for (int i = 0; i < a->nscreens; i++) {
        char why[200], q[256];
        if (a->screens[i]->busy && a->screens[i]->busy(a, why, sizeof why)) {
            snprintf(q, sizeof q, "%s. Quit?", why);
            app_confirm(a, q, quit_answer);
            return;
        }
    }
    a->quit = 1;
}

/* SIGTERM, SIGHUP or the terminal gone (poll's POLLHUP, a read error):
 * nobody can answer a question, so no question: the screens' fini stop the
 * runs with a checkpoint (status stopped, resumable) and the loop ends */
static void terminate(App *a, const char *why)
{
    if (a->quit) return;
    app_log(a, "%s: stopping the runs with a checkpoint and quitting", why);
    a->confirming = 0;
    a->quit = 1;
}

/* the terminal was hung up (or closed): its ioctls fail with EIO */
static int tty_gone(void)
{
    struct termios t;
    return tcgetattr(0, &t) < 0 && errno != EINTR;
}

/* ---- the process's figures ---------------------------------------------------- */
/* CPU seconds (user + system) and threads of this process from
 * /proc/self/stat, RSS bytes from /proc/self/statm; -1 when unreadable */
static int proc_read(double *cpu, long *threads, double *rss)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut, st;
    long nt;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %ld", &ut, &st, &nt) != 3)
        return -1;
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    unsigned long size, res;
    f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    int ok = fscanf(f, "%lu %lu", &size, &res) == 2;
    fclose(f);
    if (!ok || tck <= 0) return -1;
    *cpu = (double)(ut + st) / (double)tck;
    *threads = nt;
    *rss = (double)res * (double)page;
    return 0;
}

/* a->ps_text from a sample at least a second after the last one */
static void proc_sample(App *a)
{
    double now = ob_now(), cpu, rss;
    long nt;
    if (a->ps_wall > 0 && now - a->ps_wall < 1.0) return;
    if (proc_read(&cpu, &nt, &rss)) { a->ps_text[0] = 0; return; }
    if (a->ps_wall > 0)
        snprintf(a->ps_text, sizeof a->ps_text, "CPU %.0f%%  RSS %.0fM  %ld threads", 100 * (cpu - a->ps_cpu) / (now - a->ps_wall),
                 rss / 1048576.0, nt);
    a->ps_wall = now;
    a->ps_cpu = cpu;
}

/* ---- drawing --------------------------------------------------------------- */
static int color_on;
enum { PAIR_DIM = 1, PAIR_TITLE, PAIR_SEL, PAIR_ERR, PAIR_OK, PAIR_S1, PAIR_S2, PAIR_S3, PAIR_S4 };

/* the theme's colours: dark (light text on a dark background), light
 * (darker hues that read on white), mono (none: attributes only) */
static void init_colors(App *a)
{
    color_on = a->theme != UI_THEME_MONO && has_colors() && start_color() == OK;
    if (!color_on) return;
    use_default_colors();
    int light = a->theme == UI_THEME_LIGHT;
    init_pair(PAIR_DIM, light ? COLOR_BLUE : COLOR_CYAN, -1);
    init_pair(PAIR_TITLE, light ? COLOR_WHITE : COLOR_BLACK, light ? COLOR_BLUE : COLOR_CYAN);
    init_pair(PAIR_SEL, light ? COLOR_WHITE : COLOR_BLACK, light ? COLOR_BLACK : COLOR_GREEN);
    init_pair(PAIR_ERR, COLOR_RED, -1);
    init_pair(PAIR_OK, light ? COLOR_BLUE : COLOR_GREEN, -1);
    init_pair(PAIR_S1, light ? COLOR_BLUE : COLOR_GREEN, -1);
    init_pair(PAIR_S2, light ? COLOR_RED : COLOR_YELLOW, -1);
    init_pair(PAIR_S3, COLOR_MAGENTA, -1);
    init_pair(PAIR_S4, light ? COLOR_BLACK : COLOR_CYAN, -1);
}

static attr_t map_attr(int at, short *pair)
{
    *pair = 0;
    switch (at) {
    case UI_A_DIM: if (color_on) { *pair = PAIR_DIM; return A_NORMAL; } return A_DIM;
    case UI_A_BOLD: return A_BOLD;
    case UI_A_TITLE: if (color_on) { *pair = PAIR_TITLE; return A_NORMAL; } return A_REVERSE;
    case UI_A_SEL: if (color_on) { *pair = PAIR_SEL; return A_BOLD; } return A_REVERSE | A_BOLD;
    case UI_A_ERR: if (color_on) { *pair = PAIR_ERR; return A_BOLD; } return A_BOLD | A_REVERSE; /* mono: still stands out */
    case UI_A_OK: if (color_on) *pair = PAIR_OK; return A_NORMAL;
    case UI_A_INPUT: return A_UNDERLINE;
    case UI_A_S1: if (color_on) *pair = PAIR_S1; return A_NORMAL;
    case UI_A_S2: if (color_on) { *pair = PAIR_S2; return A_NORMAL; } return A_BOLD;
    case UI_A_S3: if (color_on) *pair = PAIR_S3; return A_NORMAL;
    case UI_A_S4: if (color_on) { *pair = PAIR_S4; return A_NORMAL; } return A_BOLD;
    default: return A_NORMAL;
    }
}

static UiGrid screen_grid, shown_grid, body_grid;
static int shown_valid;

static void blit(void)
{
    UiGrid *g = &screen_grid;
    for (int y = 0; y < g->h; y++)
        for (int x = 0; x < g->w; x++) {
            UiCell c = g->cells[(size_t)y * g->w + x];
            if (shown_valid) {
                UiCell o = shown_grid.cells[(size_t)y * g->w + x];
                if (o.ch == c.ch && o.attr == c.attr) continue;
            }
            if (c.ch == UI_WIDE_CONT) continue;
            short pair;
            attr_t at = map_attr(c.attr, &pair);
            wchar_t wc[2] = {(wchar_t)c.ch, 0};
            cchar_t cc;
            setcchar(&cc, wc, at, pair, NULL);
            mvwadd_wch(stdscr, y, x, &cc);
        }
    ui_grid_resize(&shown_grid, g->w, g->h);
    memcpy(shown_grid.cells, g->cells, sizeof(UiCell) * g->w * g->h);
    shown_valid = 1;
}

static UiCtx typing_ctx(App *a)
{
    const UiScreen *s = cur_screen(a);
    return s->typing ? s->typing(a) : 0;
}

/* the contexts whose keys apply now, most specific first */
static int active_ctxs(App *a, UiCtx *out)
{
    int n = 0;
    if (a->confirming) out[n++] = UI_CTX_CONFIRM;
    else if (a->form) out[n++] = UI_CTX_FORM;
    else if (a->prompting) out[n++] = UI_CTX_PROMPT;
    else if (a->menu) out[n++] = UI_CTX_MENU;
    else if (a->help) { out[n++] = UI_CTX_HELP; out[n++] = UI_CTX_LIST; }
    else {
        UiCtx t = typing_ctx(a);
        if (t) out[n++] = t;
        else {
            out[n++] = cur_screen(a)->ctx;
            if (cur_screen(a)->list) out[n++] = UI_CTX_LIST;
            out[n++] = UI_CTX_GLOBAL;
        }
    }
    out[n++] = UI_CTX_ANYWHERE;
    return n;
}

typedef struct { UiGrid *g; int y, top, bottom; } HelpDraw;
static void help_line(void *user, const char *text, int heading)
{
    HelpDraw *h = user;
    if (h->y >= h->top && h->y - h->top < h->bottom) ui_grid_text(h->g, 1, h->y - h->top, h->g->w - 2, heading ? UI_A_BOLD : UI_A_NORMAL, text);
    h->y++;
}

static void help_contexts(App *a, UiCtx *ctxs, int *n)
{
    *n = 0;
    const UiScreen *s = cur_screen(a);
    ctxs[(*n)++] = UI_CTX_ANYWHERE;
    ctxs[(*n)++] = UI_CTX_GLOBAL;
    ctxs[(*n)++] = s->ctx;
    if (s->ctx == UI_CTX_CHAT) { ctxs[(*n)++] = UI_CTX_CHAT_READY; ctxs[(*n)++] = UI_CTX_CHAT_INPUT; }
    if (s->list) ctxs[(*n)++] = UI_CTX_LIST;
    for (int i = 0; i < a->nscreens; i++) {
        UiCtx c = a->screens[i]->ctx;
        if (c == s->ctx) continue;
        ctxs[(*n)++] = c;
        if (c == UI_CTX_CHAT) { ctxs[(*n)++] = UI_CTX_CHAT_READY; ctxs[(*n)++] = UI_CTX_CHAT_INPUT; }
    }
    if (!s->list) ctxs[(*n)++] = UI_CTX_LIST;
    ctxs[(*n)++] = UI_CTX_EDIT;
    ctxs[(*n)++] = UI_CTX_PROMPT;
    ctxs[(*n)++] = UI_CTX_FORM;
    ctxs[(*n)++] = UI_CTX_CONFIRM;
    ctxs[(*n)++] = UI_CTX_HELP;
    ctxs[(*n)++] = UI_CTX_MENU;
    ctxs[(*n)++] = UI_CTX_MOUSE;
}

static void draw_help(App *a, UiGrid *g)
{
    UiCtx ctxs[UI_CTX_COUNT + 8];
    int n;
    help_contexts(a, ctxs, &n);
    int total = ui_keymap_help(ctxs, n, NULL, NULL);
    int rows = g->h - 1;
    if (a->help_top > total - rows) a->help_top = total - rows;
    if (a->help_top < 0) a->help_top = 0;
    ui_grid_clear(g);
    HelpDraw h = {g, 0, a->help_top, rows};
    ui_keymap_help(ctxs, n, help_line, &h);
    ui_grid_printf(g, 1, g->h - 1, g->w - 2, UI_A_DIM, "Keys %d-%d of %d lines. Esc closes; Up/Down/PgUp/PgDn scroll.",
                   a->help_top + 1, a->help_top + rows < total ? a->help_top + rows : total, total);
}

/* the pick list: a box in the middle of the body, the choice highlighted */
static void draw_menu(App *a, UiGrid *g)
{
    int w = ui_text_width(a->menu_title) + 6;
    for (int i = 0; i < a->menu_n; i++)
        if (ui_text_width(a->menu_items[i]) + 6 > w) w = ui_text_width(a->menu_items[i]) + 6;
    if (w > g->w) w = g->w;
    int h = a->menu_n + 2, x = (g->w - w) / 2, y = (g->h - h) / 2;
    if (y < 0) y = 0;
    ui_grid_box(g, x, y, w, h);
    ui_grid_printf(g, x + 2, y, w - 4, UI_A_BOLD, " %s ", a->menu_title);
    a->menu_y0 = y + 1;
    for (int i = 0; i < a->menu_n; i++) {
        int at = i == a->menu_cur ? UI_A_SEL : UI_A_NORMAL;
        ui_grid_hline(g, x + 1, y + 1 + i, w - 2, ' ', at);
        ui_grid_text(g, x + 2, y + 1 + i, w - 4, at, a->menu_items[i]);
    }
}

/* ---- the shown table: filter, sort picker, remembered sort --------------- */
static UiTable *cur_table(App *a)
{
    const UiScreen *s = cur_screen(a);
    UiTable *t = s->table ? s->table(a) : NULL;
    return t && t->cols ? t : NULL;
}

/* the settings key of the shown screen's sort: sort.runs */
static void sort_key(App *a, char *key, size_t n)
{
    int k = snprintf(key, n, "sort.%s", cur_screen(a)->name);
    for (int i = 5; i < k && i < (int)n; i++)
        if (key[i] >= 'A' && key[i] <= 'Z') key[i] = (char)(key[i] + 32);
}

/* after a draw: the first time a table is shown it takes the sort the
 * settings remember ("sort.runs = best ppl desc"); after that, a changed
 * sort (s, S, F6, a click on a title) is written to the settings */
static void table_conf(App *a)
{
    UiTable *t = cur_table(a);
    if (!t) return;
    char key[64];
    sort_key(a, key, sizeof key);
    if (!t->conf_done) {
        t->conf_done = 1;
        const char *v = app_conf(a, key);
        const char *sp = v ? strrchr(v, ' ') : NULL;
        for (int c = 0; sp && c < t->ncols; c++)
            if (!strncmp(v, t->cols[c].title, (size_t)(sp - v)) && !t->cols[c].title[sp - v]) {
                ui_table_sort(t, c, !strcmp(sp + 1, "desc"));
                a->dirty = 1; /* drawn again, sorted */
            }
        return;
    }
    if (t->sort_col >= 0 && t->sort_col < t->ncols)
        app_conf_set(a, key, "%s %s", t->cols[t->sort_col].title, t->sort_desc ? "desc" : "asc");
}

static void filter_live(App *a, const char *text)
{
    UiTable *t = cur_table(a);
    if (t) ui_table_filter(t, text);
}

static void sort_pick(App *a, int col)
{
    UiTable *t = cur_table(a);
    if (!t || col < 0 || col >= t->ncols) return;
    ui_table_sort(t, col, col == t->sort_col ? !t->sort_desc : 0);
    app_msg(a, 0, "sorted by %s, %s", t->cols[col].title, t->sort_desc ? "descending" : "ascending");
}

/* the keys the app handles for the shown table: 1 when k was one */
static int table_key(App *a, const UiKey *k)
{
    UiTable *t = cur_table(a);
    if (!t || !k) return 0;
    switch (k->action) {
    case A_FILTER: app_prompt_live(a, "Filter rows (Enter keeps, Esc clears)", t->filter, filter_live); return 1;
    case A_ESCAPE:
        if (!t->filter[0]) return 0;
        ui_table_filter(t, "");
        return 1;
    case A_SORT_PICK: {
        const char *items[UI_MENU_MAX];
        char lab[UI_MENU_MAX][64];
        int n = t->ncols < UI_MENU_MAX ? t->ncols : UI_MENU_MAX;
        for (int c = 0; c < n; c++) {
            snprintf(lab[c], sizeof lab[c], "%s%s", t->cols[c].title,
                     c != t->sort_col ? "" : t->sort_desc ? "  (sorted, descending)" : "  (sorted, ascending)");
            items[c] = lab[c];
        }
        app_menu(a, "Sort by", items, n, t->sort_col, sort_pick);
        return 1;
    }
    default: return 0;
    }
}

static void menu_key(App *a, int key)
{
    const UiKey *k = ui_keymap_find(UI_CTX_MENU, key);
    if (!k) return;
    switch (k->action) {
    case A_UP: a->menu_cur = (a->menu_cur + a->menu_n - 1) % a->menu_n; break;
    case A_DOWN: a->menu_cur = (a->menu_cur + 1) % a->menu_n; break;
    case A_ACCEPT: a->menu = 0; if (a->menu_cb) a->menu_cb(a, a->menu_cur); break;
    case A_CANCEL: a->menu = 0; break;
    default: break;
    }
}

static void render(App *a)
{
    int H, W;
    getmaxyx(stdscr, H, W);
    a->cursor_on = 0;
    if (W < MIN_W || H < MIN_H) {
        shown_valid = 0;
        werase(stdscr);
        char m[96];
        snprintf(m, sizeof m, "terminal too small: %dx%d, need %dx%d", W, H, MIN_W, MIN_H);
        mvwaddnstr(stdscr, H / 2, 0, m, W);
        curs_set(0);
        wnoutrefresh(stdscr);
        doupdate();
        return;
    }
    if (screen_grid.w != W || screen_grid.h != H) {
        ui_grid_resize(&screen_grid, W, H);
        shown_valid = 0;
        clearok(stdscr, TRUE);
    }
    UiGrid *g = &screen_grid;
    ui_grid_clear(g);
    /* tab bar */
    ui_grid_hline(g, 0, 0, W, ' ', UI_A_TITLE);
    int x = ui_grid_text(g, 0, 0, W, UI_A_TITLE, " onebit-tui ");
    for (int i = 0; i < a->nscreens; i++) {
        char t[64];
        snprintf(t, sizeof t, " %d %s ", a->screens[i]->number, a->screens[i]->name);
        a->tab_x[i] = x;
        x += ui_grid_text(g, x, 0, W - x, i == a->cur ? UI_A_SEL : UI_A_TITLE, t);
    }
    a->tab_x[a->nscreens] = x;
    if (a->teacher) {
        const char *base = strrchr(a->teacher_path, '/');
        base = base ? base + 1 : a->teacher_path;
        int l = ui_text_width(base) + 2;
        if (W - l > x + 1) ui_grid_printf(g, W - l, 0, l, UI_A_TITLE, " %s ", base);
    }
    /* the store's banner, then the body */
    int by = 1;
    if (a->banner[0]) {
        ui_grid_hline(g, 0, 1, W, ' ', UI_A_ERR);
        ui_grid_text(g, 0, 1, W, UI_A_ERR, a->banner);
        by = 2;
    }
    a->body_y = by;
    a->body_w = W;
    a->body_h = H - 2 - by;
    if (body_grid.w != W || body_grid.h != a->body_h) ui_grid_resize(&body_grid, W, a->body_h);
    body_grid.ascii = g->ascii;
    ui_grid_clear(&body_grid);
    if (a->help) draw_help(a, &body_grid);
    else {
        cur_screen(a)->draw(a, &body_grid);
        table_conf(a);
        if (a->form) {
            int cx = 0, cy = 0;
            ui_form_render(a->form, &body_grid, &cx, &cy);
            app_cursor(a, cx, cy);
        }
        if (a->menu) draw_menu(a, &body_grid);
    }
    memcpy(g->cells + (size_t)W * by, body_grid.cells, sizeof(UiCell) * W * a->body_h);
    /* message line: a prompt, a question or the last message */
    int my = H - 2;
    if (a->prompting) {
        int l = ui_grid_printf(g, 0, my, W, UI_A_BOLD, "%s: ", a->prompt_title), cx;
        ui_input_render(&a->prompt, g, l, my, W - l, UI_A_INPUT, &cx);
        a->cursor_on = 1;
        a->cx = cx;
        a->cy = my - by;
        if (a->prompt_listing[0]) { /* completion choices above the prompt */
            ui_grid_hline(g, 0, my - 1, W, ' ', UI_A_NORMAL);
            ui_grid_text(g, 0, my - 1, W, UI_A_DIM, a->prompt_listing);
        }
    } else if (a->confirming) {
        ui_grid_printf(g, 0, my, W, UI_A_BOLD, "%s (y/n)", a->question);
    } else if (a->msg[0]) {
        ui_grid_text(g, 0, my, W, a->msg_err ? UI_A_ERR : UI_A_NORMAL, a->msg);
    }
    /* status bar: the keys that apply, then what is running and what it
     * costs (the process's CPU, RSS and threads, as top shows them) */
    UiCtx ctxs[8];
    int nc = active_ctxs(a, ctxs);
    for (int i = 0; i < nc - 1; i++) /* q and ? are listed: F10 and F1 need no hint */
        if (ctxs[i] == UI_CTX_GLOBAL) nc--;
    char hints[512], right[256] = "";
    ui_keymap_hints(ctxs, nc, hints, sizeof hints);
    for (int i = 0; i < a->nscreens && !right[0]; i++)
        if (a->screens[i]->status) a->screens[i]->status(a, right, sizeof right);
    if (right[0] || a->teacher_users) {
        proc_sample(a);
        size_t k = strlen(right);
        if (a->ps_text[0]) snprintf(right + k, sizeof right - k, "%s%s ", k ? "| " : " ", a->ps_text);
    }
    ui_grid_hline(g, 0, H - 1, W, ' ', UI_A_TITLE);
    int rw = ui_text_width(right);
    ui_grid_text(g, 0, H - 1, W - rw - 1, UI_A_TITLE, hints);
    if (rw) ui_grid_text(g, W - rw, H - 1, rw, UI_A_TITLE, right);
    blit();
    if (a->cursor_on) {
        curs_set(1);
        wmove(stdscr, a->cy + a->body_y, a->cx);
    } else curs_set(0);
    wnoutrefresh(stdscr);
    doupdate();
}

/* ---- input ------------------------------------------------------------------ */
static void prompt_key(App *a, int key)
{
    const UiKey *k = ui_keymap_find(UI_CTX_PROMPT, key);
    if (k && k->action == A_ED_COMPLETE && !a->prompt_path) k = NULL;
    if (k) {
        switch (k->action) {
        case A_ACCEPT: {
            a->prompting = 0;
            char *text = ob_strdup(a->prompt.buf);
            a->prompt_listing[0] = 0;
            if (a->prompt_cb) a->prompt_cb(a, text);
            free(text);
            return;
        }
        case A_CANCEL:
            a->prompting = 0;
            a->prompt_listing[0] = 0;
            if (a->prompt_live) a->prompt_live(a, "");
            return;
        case A_ED_COMPLETE: {
            int n = ui_input_complete(&a->prompt, a->prompt_listing, sizeof a->prompt_listing);
            if (n <= 1) a->prompt_listing[0] = 0;
            if (n == 0) app_msg(a, 1, "no file name starts like that");
            return;
        }
        default: break;
        }
    }
    ui_input_key(&a->prompt, key);
    if (a->prompt_live) a->prompt_live(a, a->prompt.buf);
}

static void global_action(App *a, const UiKey *k)
{
    switch (k->action) {
    case A_QUIT: request_quit(a); break;
    case A_HELP: a->help = !a->help; a->help_top = 0; break;
    case A_REDRAW: shown_valid = 0; clearok(stdscr, TRUE); break;
    case A_SCREEN: app_switch(a, k->arg ? k->arg : k->key - '0'); break; /* arg 0: the digit pressed */
    case A_NEXT_SCREEN: app_switch(a, a->screens[(a->cur + 1) % a->nscreens]->number); break;
    case A_PREV_SCREEN: app_switch(a, a->screens[(a->cur + a->nscreens - 1) % a->nscreens]->number); break;
    default: break;
    }
}

static void handle_mouse(App *a);

static void handle_key(App *a, int key)
{
    a->dirty = 1;
    if (key == UI_FN(KEY_RESIZE)) { shown_valid = 0; return; }
    if (key == UI_FN(KEY_MOUSE)) { handle_mouse(a); return; }
    const UiKey *any = ui_keymap_find(UI_CTX_ANYWHERE, key);
    if (any) {
        if (any->action == A_QUIT && a->confirming && a->confirm_cb == quit_answer) a->quit = 1;
        else if (any->action == A_HELP && (a->form || a->prompting || a->confirming)) { /* finish the modal first */ }
        else global_action(a, any);
        return;
    }
    if (a->confirming) {
        const UiKey *k = ui_keymap_find(UI_CTX_CONFIRM, key);
        if (!k) return;
        a->confirming = 0;
        if (a->confirm_cb) a->confirm_cb(a, k->action == A_YES);
        return;
    }
    if (a->form) {
        int r = ui_form_key(a->form, key);
        if (r != UI_FORM_CONTINUE) {
            UiForm *f = a->form;
            a->form = NULL;
            a->form_cb(a, f, r == UI_FORM_ACCEPT);
        }
        return;
    }
    if (a->prompting) { prompt_key(a, key); return; }
    if (a->menu) { menu_key(a, key); return; }
    if (a->help) {
        UiCtx hc[2] = {UI_CTX_HELP, UI_CTX_LIST};
        const UiKey *k = ui_keymap_lookup(hc, 2, key);
        if (!k) return;
        int page = a->body_h - 2;
        switch (k->action) {
        case A_CANCEL: a->help = 0; break;
        case A_UP: a->help_top--; break;
        case A_DOWN: a->help_top++; break;
        case A_PGUP: a->help_top -= page; break;
        case A_PGDN: a->help_top += page; break;
        case A_HOME: a->help_top = 0; break;
        case A_END: a->help_top = 1 << 20; break;
        default: break;
        }
        return;
    }
    const UiScreen *s = cur_screen(a);
    UiCtx t = typing_ctx(a);
    if (t) {
        const UiKey *tk = ui_keymap_find(t, key);
        /* a typing context may keep the screen keys (Chat before typing) */
        if (tk && (tk->action == A_SCREEN || tk->action == A_NEXT_SCREEN || tk->action == A_PREV_SCREEN))
            global_action(a, tk);
        else s->key(a, tk, key);
        return;
    }
    UiCtx ctxs[3];
    int n = 0;
    ctxs[n++] = s->ctx;
    if (s->list) ctxs[n++] = UI_CTX_LIST;
    ctxs[n++] = UI_CTX_GLOBAL;
    const UiKey *k = ui_keymap_lookup(ctxs, n, key);
    if (k && k->ctx == UI_CTX_GLOBAL) global_action(a, k);
    else if (!table_key(a, k)) s->key(a, k, key);
}

/* a mouse event (KEY_MOUSE): the wheel scrolls what is shown (as Up/Down
 * three times on lists, else PgUp/PgDn), a click takes a tab, a pick-list
 * choice, a form field, a table row (again: Enter) or column title, else
 * goes to the screen's click */
static void handle_mouse(App *a)
{
    MEVENT me;
    if (getmouse(&me) != OK) return;
    int wheel = (me.bstate & BUTTON4_PRESSED) ? -1 : 0;
#ifdef BUTTON5_PRESSED
    if (me.bstate & BUTTON5_PRESSED) wheel = 1;
#endif
    int click = (me.bstate & (BUTTON1_PRESSED | BUTTON1_CLICKED)) != 0, by = me.y - a->body_y;
    if ((!wheel && !click) || a->confirming || a->prompting) return;
    if (a->menu) {
        if (wheel) a->menu_cur = (a->menu_cur + a->menu_n + wheel) % a->menu_n;
        else if (by >= a->menu_y0 && by < a->menu_y0 + a->menu_n) {
            a->menu_cur = by - a->menu_y0;
            menu_key(a, '\n');
        }
        return;
    }
    if (a->form) {
        if (wheel) handle_key(a, UI_FN(wheel < 0 ? KEY_UP : KEY_DOWN));
        else ui_form_click(a->form, by);
        return;
    }
    if (a->help) { a->help_top += 3 * wheel; return; }
    if (click && me.y == 0) {
        for (int i = 0; i < a->nscreens; i++)
            if (me.x >= a->tab_x[i] && me.x < a->tab_x[i + 1]) app_switch(a, a->screens[i]->number);
        return;
    }
    if (by < 0 || by >= a->body_h) return;
    const UiScreen *s = cur_screen(a);
    if (wheel) {
        int key = s->list ? (wheel < 0 ? KEY_UP : KEY_DOWN) : (wheel < 0 ? KEY_PPAGE : KEY_NPAGE);
        for (int i = 0; i < (s->list ? 3 : 1); i++) handle_key(a, UI_FN(key));
        return;
    }
    UiTable *t = cur_table(a);
    int hit = t ? ui_table_click(t, me.x, by) : UI_TABLE_MISS;
    /* a click on the selected row is Enter, but not the second click of a
     * double click on it (that would undo the first's Enter) */
    double now = ob_now();
    int second = hit == UI_TABLE_ROW_AGAIN && a->click_enter_y == by && now - a->click_enter_t < 0.4;
    a->click_enter_y = -1;
    if (hit == UI_TABLE_ROW_AGAIN && !second) {
        a->click_enter_y = by;
        a->click_enter_t = now;
        handle_key(a, '\r');
    } else if (hit == UI_TABLE_MISS && s->click) s->click(a, me.x, by);
}

/* ---- captured stdout and stderr: what the library prints goes to the Log,
 * not behind the screen (curses writes to its own copy of the terminal) --- */
static int err_pipe[2] = {-1, -1};
static char err_buf[4096];
static size_t err_len;

static void capture_stderr(void)
{
    if (pipe(err_pipe)) return;
    fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(err_pipe[1], F_SETFL, O_NONBLOCK);
    fcntl(err_pipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(err_pipe[1], F_SETFD, FD_CLOEXEC);
    fflush(stderr);
    fflush(stdout);
    saved_stderr = dup(2);
    fcntl(saved_stderr, F_SETFD, FD_CLOEXEC);
    saved_stdout = dup(1);
    fcntl(saved_stdout, F_SETFD, FD_CLOEXEC);
    dup2(err_pipe[1], 2);
    dup2(err_pipe[1], 1);
    setvbuf(stderr, NULL, _IOLBF, 0);
    setvbuf(stdout, NULL, _IOLBF, 0);
}

static void drain_stderr(App *a)
{
    ssize_t n;
    while ((n = read(err_pipe[0], err_buf + err_len, sizeof err_buf - 1 - err_len)) > 0) {
        err_len += (size_t)n;
        char *nl;
        err_buf[err_len] = 0;
        while ((nl = memchr(err_buf, '\n', err_len))) {
            *nl = 0;
            app_msg(a, 1, "%s", err_buf);
            size_t used = (size_t)(nl - err_buf) + 1;
            memmove(err_buf, nl + 1, err_len - used);
            err_len -= used;
        }
        if (err_len == sizeof err_buf - 1) { err_buf[err_len] = 0; app_msg(a, 1, "%s", err_buf); err_len = 0; }
    }
}

/* ---- the run store --------------------------------------------------------- */
/* read-write when it may (as `runs`), else read-only (browse, no
 * training), else none: runs train unrecorded. Either of the last two keeps
 * a banner on the screen (a message would be overwritten by the next). */
static void open_db(App *a)
{
    char err[OB_ERRLEN], e2[OB_ERRLEN];
    char *p = a->opt.db ? ob_strdup(a->opt.db) : db_default_path(err);
    if (!p) {
        snprintf(a->banner, sizeof a->banner, "No run store (%.300s): runs train unrecorded", err);
        app_msg(a, 1, "run store: %s (runs are not recorded)", err);
        return;
    }
    snprintf(a->db_path, sizeof a->db_path, "%s", p);
    free(p);
    int exists = access(a->db_path, F_OK) == 0;
    if (!exists || access(a->db_path, W_OK) == 0) a->db = db_open(a->db_path, 0, err);
    else snprintf(err, sizeof err, "%.400s: %s", a->db_path, strerror(EACCES));
    if (!a->db && exists && (a->db = db_open(a->db_path, 1, e2))) {
        a->db_ro = 1;
        snprintf(a->banner, sizeof a->banner, "Run store %.300s is read-only: runs can be browsed, not trained", a->db_path);
        app_log(a, "run store: %s (read-only: %s)", a->db_path, err);
        return;
    }
    if (!a->db) {
        snprintf(a->banner, sizeof a->banner, "No run store: %.300s; runs train unrecorded", err);
        app_msg(a, 1, "run store: %s (runs are not recorded)", err);
        a->db_path[0] = 0;
        return;
    }
    app_log(a, "run store: %s", a->db_path);
}

int app_db_writable(App *a, const char *what)
{
    if (!a->db_ro) return 1;
    app_msg(a, 1, "cannot %s: the run store %s is read-only (start with --db on a writable file)", what, a->db_path);
    return 0;
}

/* ---- the settings file ---------------------------------------------------- */
/* read at start; a file that cannot be read or has bad lines is reported
 * and then left alone (not written over) for this session */
static void load_conf(App *a)
{
    char err[OB_ERRLEN];
    char *p = ui_conf_path(err);
    if (!p) app_log(a, "settings: %s (not kept)", err);
    else {
        snprintf(a->conf_path, sizeof a->conf_path, "%s", p);
        free(p);
        int r = ui_conf_load(&a->conf, a->conf_path, err);
        if (r) {
            if (r < 0) app_msg(a, 1, "settings: %s (defaults used; the file is left as it is)", err);
            else app_msg(a, 1, "settings: %s (%d bad line%s skipped; %s is left as it is)", err, r, r == 1 ? "" : "s",
                         a->conf_path);
            a->conf_path[0] = 0;
        } else app_log(a, "settings: %s", a->conf_path);
    }
    const char *t = ui_conf_get(&a->conf, "theme"), *m = ui_conf_get(&a->conf, "mouse");
    a->theme = UI_THEME_DARK;
    if (t && !strcmp(t, "light")) a->theme = UI_THEME_LIGHT;
    else if (t && !strcmp(t, "mono")) a->theme = UI_THEME_MONO;
    else if (t && strcmp(t, "dark")) app_msg(a, 1, "settings: theme '%.40s' is not dark, light or mono (dark used)", t);
    if (!a->opt.color) a->theme = UI_THEME_MONO;
    a->mouse = a->opt.mouse != 0 && !(m && (!strcmp(m, "off") || !strcmp(m, "no") || !strcmp(m, "0")));
}

/* ---- options and the loop -------------------------------------------------- */
static void usage(FILE *f)
{
    fprintf(f,
            "Usage: onebit-tui [--teacher M] [--tokenizer T] [--db FILE] [--ascii] [--no-color] [--no-mouse]\n"
            "       onebit-tui COMMAND [OPTIONS]   (see 'onebit-tui --help')\n"
            "\n"
            "Start the full-screen workbench.\n"
            "\n"
            "  --teacher M     teacher to load at start (default: $ONEBIT_TEACHER, models/stories260K.bin)\n"
            "  --tokenizer T   its tokenizer (default: beside the teacher)\n"
            "  --db FILE       the run store (default $XDG_DATA_HOME/onebit-tui/runs.db)\n"
            "  --ascii         ASCII charts and borders (default when the locale is not UTF-8)\n"
            "  --no-color      no colours: the mono theme (also when NO_COLOR is set)\n"
            "  --no-mouse      leave the mouse to the terminal (its own selection; mouse = off)\n"
            "\n"
            "Settings (sort orders, chat sampling, the New-run form, theme, mouse) are kept\n"
            "in $XDG_CONFIG_HOME/onebit-tui/config (default ~/.config/onebit-tui/config).\n");
}

/* the workbench's own command-line errors, worded as the subcommands' */
enum { APP_EXIT_OK = 0, APP_EXIT_RUNTIME = 1, APP_EXIT_USAGE = 2 };

/* the shortest time between two frames drawn for jobs' reports (keys draw at once) */
#define UI_FRAME_S 0.05

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "onebit-tui: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'onebit-tui --help' for more information.\n");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ob_verror(fmt, ap);
    va_end(ap);
    return APP_EXIT_RUNTIME;
}

static int parse_options(int argc, char **argv, UiOptions *o)
{
    static const struct option opts[] = {
        {"teacher", required_argument, 0, 'm'}, {"tokenizer", required_argument, 0, 'z'},
        {"db", required_argument, 0, 'd'},      {"ascii", no_argument, 0, 'a'},
        {"no-color", no_argument, 0, 'c'},      {"help", no_argument, 0, 'h'},
        {"no-mouse", no_argument, 0, 'M'},      {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->color = 1;
    o->mouse = -1;
    const char *nc = getenv("NO_COLOR"); /* no-color.org: set and not empty */
    if (nc && *nc) o->color = 0;
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': o->teacher = optarg; break;
        case 'z': o->tokenizer = optarg; break;
        case 'd': o->db = optarg; break;
        case 'a': o->ascii = 1; break;
        case 'c': o->color = 0; break;
        case 'M': o->mouse = 0; break;
        case 'h': usage(stdout); return 1;
        case ':': usage_error("option '%s' needs a value", argv[optind - 1]); return 2;
        default: usage_error("unknown option '%s'", argv[optind - 1]); return 2;
        }
    }
    if (optind < argc) { usage_error("unknown command '%s'", argv[optind]); return 2; }
    return 0;
}

static int read_key(int *key)
{
    wint_t wc;
    int r = wget_wch(stdscr, &wc);
    if (r == ERR) return 0;
    *key = r == KEY_CODE_YES ? UI_FN((int)wc) : (int)wc;
    return 1;
}

int ui_main(int argc, char **argv)
{
    App *a = ob_calloc(1, sizeof *a);
    a->ui_thread = pthread_self();
    int rc = parse_options(argc, argv, &a->opt);
    if (rc) { free(a); return rc == 1 ? APP_EXIT_OK : APP_EXIT_USAGE; }
    if (!isatty(0) || !isatty(1)) {
        free(a);
        return fail("the workbench needs a terminal (the subcommands work without one: see --help)");
    }
    setlocale(LC_ALL, "");
    const char *cs = nl_langinfo(CODESET);
    int utf8 = cs && (!strcmp(cs, "UTF-8") || !strcmp(cs, "utf8"));
    if (!utf8) a->opt.ascii = 1;
    if (evring_init(&a->ring, 4096) || pipe(sig_pipe)) {
        free(a);
        return fail("cannot create the event pipes: %s", strerror(errno));
    }
    fcntl(sig_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK);
    install_signals();
    atexit(restore_terminal);
    ui_input_init(&a->prompt);
    a->screens[a->nscreens++] = &ui_scr_model;
    a->screens[a->nscreens++] = &ui_scr_layers;
    a->screens[a->nscreens++] = &ui_scr_train;
    a->screens[a->nscreens++] = &ui_scr_runs;
    a->screens[a->nscreens++] = &ui_scr_chat;
    a->screens[a->nscreens++] = &ui_scr_log;
    for (int i = 0; i < a->nscreens; i++) /* each screen's state, owned here */
        a->state[i] = ob_calloc(1, a->screens[i]->state_size ? a->screens[i]->state_size : 1);
    ui_grid_init(&screen_grid, 0, 0, a->opt.ascii);
    ui_grid_init(&shown_grid, 0, 0, a->opt.ascii);
    ui_grid_init(&body_grid, 0, 0, a->opt.ascii);

    /* curses gets its own stream on the terminal; fd 1 and 2 then go to the Log */
    int ttyfd = dup(1);
    FILE *tty = ttyfd >= 0 ? fdopen(ttyfd, "w") : NULL;
    if (tty) fcntl(ttyfd, F_SETFD, FD_CLOEXEC);
    if (tty) ui_crash_save_modes(ttyfd);
    SCREEN *scr = tty ? newterm(NULL, tty, stdin) : NULL;
    if (!scr) {
        if (tty) fclose(tty);
        free(a);
        return fail("cannot start curses on this terminal (TERM=%s)", getenv("TERM") ? getenv("TERM") : "");
    }
    curses_on = 1;
    capture_stderr();
    ui_crash_arm(ttyfd, NULL, saved_stderr); /* async-signal-safe restore, computed now */
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    set_escdelay(25);
    load_conf(a);
    init_colors(a);
    if (a->mouse) {
        /* presses only (mouseinterval 0: no waiting to tell clicks apart);
         * the terminal (tmux too) then reports them, as SGR 1006 where
         * terminfo says so */
        mmask_t want = BUTTON1_PRESSED | BUTTON4_PRESSED;
#ifdef BUTTON5_PRESSED
        want |= BUTTON5_PRESSED;
#endif
        mouseinterval(0);
        if (mousemask(want, NULL)) ui_crash_add("\033[?1006l\033[?1000l");
        else a->mouse = 0;
    }
    app_log(a, "onebit-tui started (%s, %s, mouse %s)", a->opt.ascii ? "ASCII" : "UTF-8",
            color_on ? (a->theme == UI_THEME_LIGHT ? "light theme" : "dark theme") : "no colour", a->mouse ? "on" : "off");
    open_db(a);
    for (int i = 0; i < a->nscreens; i++)
        if (a->screens[i]->enter && a->screens[i] == &ui_scr_model) a->screens[i]->enter(a);
    a->dirty = 1;

    /* a key draws at once; what jobs report (a training step, a streamed
     * token: tens a second) draws at most UI_FRAME_S after the last frame */
    double drawn = 0;
    int urgent = 1;
    while (!a->quit) {
        int frame_ms = -1; /* > 0: a frame is due in this many ms */
        if (a->dirty) {
            double since = ob_now() - drawn;
            if (urgent || since >= UI_FRAME_S) {
                a->dirty = urgent = 0;
                render(a);
                drawn = ob_now();
            } else {
                frame_ms = (int)((UI_FRAME_S - since) * 1000) + 1;
            }
        }
        conf_save(a);
        struct pollfd p[4] = {{0, POLLIN, 0}, {evring_fd(&a->ring), POLLIN, 0}, {sig_pipe[0], POLLIN, 0},
                              {err_pipe[0], POLLIN, 0}};
        int np = err_pipe[0] >= 0 ? 4 : 3;
        int watch = cur_screen(a)->watch_ms, timeout = watch > 0 ? watch : -1;
        if (frame_ms > 0 && (timeout < 0 || frame_ms < timeout)) timeout = frame_ms;
        int r = poll(p, np, timeout);
        if (r < 0 && errno != EINTR) break;
        if (r == 0) a->dirty = 1; /* the frame that was due, or the shown screen's watch interval */
        /* input (also after EINTR: SIGWINCH makes curses queue KEY_RESIZE) */
        int key, got = 0;
        while (!a->quit && read_key(&key)) {
            urgent = 1;
            got = 1;
            handle_key(a, key);
            app_dispatch_posted(a);
        }
        /* a dropped terminal: poll says so at once and ever after (POLLHUP),
         * or reads fail (EIO); waiting for keys again would spin */
        if (r > 0 && (p[0].revents & (POLLHUP | POLLERR | POLLNVAL))) terminate(a, "the terminal hung up");
        else if (r > 0 && (p[0].revents & POLLIN) && !got && tty_gone()) terminate(a, "the terminal is gone");
        if (r > 0 && (p[1].revents & POLLIN)) {
            Event ev[64];
            int n;
            while ((n = evring_pop(&a->ring, ev, 64)) > 0)
                for (int i = 0; i < n; i++) {
                    dispatch(a, &ev[i]);
                    app_dispatch_posted(a);
                }
        }
        if (r > 0 && (p[2].revents & POLLIN)) {
            char b[16];
            ssize_t nb;
            while ((nb = read(sig_pipe[0], b, sizeof b)) > 0)
                for (ssize_t i = 0; i < nb; i++) {
                    if (b[i] == SIGINT) request_quit(a); /* ^C: someone is at the keyboard */
                    else terminate(a, b[i] == SIGHUP ? "SIGHUP (the terminal hung up)" : "SIGTERM");
                }
        }
        if (r > 0 && np > 3 && (p[3].revents & POLLIN)) drain_stderr(a);
    }
    for (int i = 0; i < a->nscreens; i++)
        if (a->screens[i]->fini) a->screens[i]->fini(a);
    for (int i = 0; i < a->nscreens; i++) free(a->state[i]);
    free(a->posted);
    conf_save(a);
    restore_terminal();
    delscreen(scr);
    fclose(tty);
    /* the screens' fini joined every job that used the teacher; the end
     * events that would count them down are never read now */
    a->teacher_users = 0;
    if (a->teacher) app_set_teacher(a, NULL, NULL, "", "");
    if (a->db) db_close(a->db);
    for (int i = 0; i < a->nlog; i++) free(a->log[(a->log_first + i) % UI_LOG_MAX]);
    ui_input_free(&a->prompt);
    ui_conf_free(&a->conf);
    ui_grid_free(&screen_grid);
    ui_grid_free(&shown_grid);
    ui_grid_free(&body_grid);
    evring_destroy(&a->ring);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    if (err_pipe[0] >= 0) { close(err_pipe[0]); close(err_pipe[1]); }
    free(a);
    return APP_EXIT_OK;
}
