/* ui/scr_log.c -- screen 6, Log (UI thread only): every message, error and captured library
 * output with its time, newest at the bottom; long lines wrap (nothing is
 * cut off at the right edge); follows new lines while scrolled to the
 * bottom. Scrolling counts wrapped rows. / searches as you type (the
 * matching lines in bold, the current one highlighted and scrolled to), n
 * and N go to the next and previous match, f shows only the matching
 * lines (a filter), a click selects a line. */
#include "ui/app.h"
#include "ui/table.h"

#include <stdio.h>
#include <string.h>

enum { LOG_ROWS_MAX = 1024 };

typedef struct {
    long top;          /* first wrapped row shown */
    int follow, page, width, inited;
    char search[128];  /* "" = no search */
    int nomatch;       /* the search matches no line */
    int only;          /* show only the lines that match the search (f) */
    long sel;          /* the selected line, counted from the log's start (log_total); -1: none */
    long rowline[LOG_ROWS_MAX]; /* the line index drawn on each row of the last draw (-1: none) */
} LogState;

static LogState *state(App *a) { return app_state(a, &ui_scr_log); }

typedef struct {
    UiGrid *g;
    LogState *L;
    long row, top;     /* current wrapped row; first row to draw */
    long line;         /* the log line being drawn */
    int h;             /* rows for log lines */
    int indent, attr;
} LogDraw;

enum { LOG_INDENT = 2 };  /* continuation rows are indented */

static void log_row(void *user, const char *start, int len)
{
    LogDraw *d = user;
    long y = d->row - d->top;
    if (y >= 0 && y < d->h) {
        if (y < LOG_ROWS_MAX) d->L->rowline[y] = d->line;
        if (d->attr == UI_A_SEL) ui_grid_hline(d->g, 0, (int)y, d->g->w, ' ', d->attr);
        char buf[1024];
        if (len > (int)sizeof buf - 1) len = (int)sizeof buf - 1;
        if (len > 0) memcpy(buf, start, (size_t)len);
        buf[len > 0 ? len : 0] = 0;
        ui_grid_text(d->g, d->indent, (int)y, d->g->w - d->indent, d->attr, buf);
    }
    d->row++;
    d->indent = LOG_INDENT;
}

/* rows line s takes at width w: the first row is w wide, the rest w-2;
 * none when only matching lines show and it does not match */
static long log_rows_of(const LogState *L, const char *s, int w)
{
    if (L->only && L->search[0] && !ui_text_find(s, L->search)) return 0;
    int first = ui_text_width(s);
    if (first <= w && !strchr(s, '\n')) return 1;
    return ui_wrap(s, w > LOG_INDENT + 1 ? w - LOG_INDENT : 1, NULL, NULL);
}

static long log_total_rows(App *a, const LogState *L, int w)
{
    long n = 0;
    for (long i = 0; i < a->nlog; i++) n += log_rows_of(L, app_log_line(a, i), w);
    return n;
}

static long log_maxtop(App *a, const LogState *L, int w, int h)
{
    long total = log_total_rows(a, L, w);
    return total - h > 0 ? total - h : 0;
}

/* the selected line's index in [0, nlog), or -1 */
static long sel_line(App *a, LogState *L)
{
    long i = L->sel - (a->log_total - a->nlog);
    return L->sel >= 0 && i >= 0 && i < a->nlog ? i : -1;
}

static void log_init(LogState *L)
{
    if (L->inited) return;
    L->inited = 1;
    L->follow = 1;
    L->sel = -1;
}

static void log_draw(App *a, UiGrid *g)
{
    LogState *L = state(a);
    log_init(L);
    int h = g->h - (L->search[0] ? 1 : 0); /* the last row says where the search is */
    L->page = h;
    L->width = g->w;
    long maxtop = log_maxtop(a, L, g->w, h);
    if (L->follow || L->top > maxtop) L->top = maxtop;
    for (int y = 0; y < LOG_ROWS_MAX; y++) L->rowline[y] = -1;
    if (a->nlog == 0) { ui_grid_text(g, 2, 1, g->w - 4, UI_A_DIM, "(empty)"); return; }
    LogDraw d = { .g = g, .L = L, .row = 0, .top = L->top, .h = h };
    long sel = sel_line(a, L);
    if (L->search[0]) {
        if (L->nomatch || sel < 0)
            ui_grid_printf(g, 0, h, g->w, UI_A_ERR, "search '%s': no line of the log contains it", L->search);
        else
            ui_grid_printf(g, 0, h, g->w, UI_A_DIM, "search '%s': line %ld of %d%s   (n next, N previous, f %s, Esc ends)",
                           L->search, sel + 1, a->nlog, L->only ? ", only the matching lines shown" : "",
                           L->only ? "all lines" : "only these");
    }
    for (long i = 0; i < a->nlog && d.row < L->top + h; i++) {
        const char *s = app_log_line(a, i);
        long n = log_rows_of(L, s, g->w);
        if (n == 0) continue; /* filtered out */
        if (d.row + n <= L->top) { d.row += n; continue; }
        d.indent = 0;
        d.line = i;
        d.attr = i == sel ? UI_A_SEL : L->search[0] && ui_text_find(s, L->search) ? UI_A_BOLD : UI_A_NORMAL;
        if (n == 1) log_row(&d, s, (int)strlen(s));
        else ui_wrap(s, g->w > LOG_INDENT + 1 ? g->w - LOG_INDENT : 1, log_row, &d);
    }
}

/* select line i and scroll it into view (a third down the page) */
static void select_line(App *a, LogState *L, long i)
{
    L->sel = a->log_total - a->nlog + i;
    int w = L->width > 0 ? L->width : 80, h = L->page > 0 ? L->page : 1;
    long row = 0;
    for (long j = 0; j < i; j++) row += log_rows_of(L, app_log_line(a, j), w);
    long maxtop = log_maxtop(a, L, w, h);
    if (row < L->top || row >= L->top + h) L->top = row - h / 3;
    if (L->top > maxtop) L->top = maxtop;
    if (L->top < 0) L->top = 0;
    L->follow = 0;
}

/* the first line from start on (dir +1 or -1, around the end) that
 * contains the search, or -1 */
static long find_line(App *a, const LogState *L, long start, int dir)
{
    for (long k = 0; k < a->nlog; k++) {
        long i = ((start + dir * k) % a->nlog + a->nlog) % a->nlog;
        if (ui_text_find(app_log_line(a, i), L->search)) return i;
    }
    return -1;
}

static void search_live(App *a, const char *text)
{
    LogState *L = state(a);
    snprintf(L->search, sizeof L->search, "%s", text);
    L->nomatch = 0;
    if (!text[0] || a->nlog == 0) { L->sel = -1; return; }
    long from = sel_line(a, L);
    if (from < 0) from = L->rowline[0] >= 0 ? L->rowline[0] : 0;
    long i = find_line(a, L, from, 1);
    L->nomatch = i < 0;
    if (i >= 0) select_line(a, L, i);
}

static void search_next(App *a, LogState *L, int dir)
{
    if (!L->search[0]) { app_msg(a, 1, "no search: / first"); return; }
    long cur = sel_line(a, L), i = a->nlog ? find_line(a, L, cur < 0 ? 0 : cur + dir, dir) : -1;
    L->nomatch = i < 0;
    if (i >= 0) select_line(a, L, i);
}

static void log_click(App *a, int x, int y)
{
    (void)x;
    LogState *L = state(a);
    if (y >= 0 && y < LOG_ROWS_MAX && L->rowline[y] >= 0) {
        L->sel = a->log_total - a->nlog + L->rowline[y];
        app_dirty(a);
    }
}

static int log_key(App *a, const UiKey *k, int key)
{
    (void)key;
    if (!k) return 0;
    LogState *L = state(a);
    log_init(L);
    int w = L->width > 0 ? L->width : 80, h = L->page > 0 ? L->page : 1;
    long maxtop = log_maxtop(a, L, w, h);
    if (L->follow) L->top = maxtop;
    switch (k->action) {
    case A_CLEAR: app_log_clear(a); L->top = 0; L->follow = 1; L->sel = -1; return 1;
    case A_FILTER: app_prompt_live(a, "Search the log (Enter keeps, Esc ends)", L->search, search_live); return 1;
    case A_NEXT_MATCH: search_next(a, L, 1); return 1;
    case A_PREV_MATCH: search_next(a, L, -1); return 1;
    case A_ESCAPE: L->search[0] = 0; L->sel = -1; L->only = 0; return 1;
    case A_LOG_ONLY:
        if (!L->search[0]) { app_msg(a, 1, "no search: / first"); return 1; }
        L->only = !L->only;
        L->follow = 0;
        if (sel_line(a, L) >= 0) select_line(a, L, sel_line(a, L));
        return 1;
    default:
        if (!ui_scroll(&L->top, k->action, L->page, maxtop)) return 0;
        L->follow = L->top >= maxtop;
        return 1;
    }
}

const UiScreen ui_scr_log = {
    .name = "Log", .number = 6, .ctx = UI_CTX_LOG, .list = 1,
    .draw = log_draw, .key = log_key, .click = log_click, .state_size = sizeof(LogState),
};
