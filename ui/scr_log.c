/* ui/scr_log.c -- screen 6, Log (UI thread only): every message, error and captured library
 * output with its time, newest at the bottom; long lines wrap (nothing is
 * cut off at the right edge); follows new lines while scrolled to the
 * bottom. Scrolling counts wrapped rows. */
#include "ui/app.h"

#include <string.h>

typedef struct {
    long top;          /* first wrapped row shown */
    int follow, page, width, inited;
} LogState;

static LogState *state(App *a) { return app_state(a, &ui_scr_log); }

typedef struct {
    UiGrid *g;
    long row, top;     /* current wrapped row; first row to draw */
    int indent;
} LogDraw;

enum { LOG_INDENT = 2 };  /* continuation rows are indented */

static void log_row(void *user, const char *start, int len)
{
    LogDraw *d = user;
    long y = d->row - d->top;
    if (y >= 0 && y < d->g->h && len > 0) {
        char buf[1024];
        if (len > (int)sizeof buf - 1) len = (int)sizeof buf - 1;
        memcpy(buf, start, (size_t)len);
        buf[len] = 0;
        ui_grid_text(d->g, d->indent, (int)y, d->g->w - d->indent, UI_A_NORMAL, buf);
    }
    d->row++;
    d->indent = LOG_INDENT;
}

/* rows line i takes at width w: the first row is w wide, the rest w-2 */
static long log_rows_of(const char *s, int w)
{
    int first = ui_text_width(s);
    if (first <= w && !strchr(s, '\n')) return 1;
    return ui_wrap(s, w > LOG_INDENT + 1 ? w - LOG_INDENT : 1, NULL, NULL);
}

static long log_total_rows(App *a, int w)
{
    long n = 0;
    for (long i = 0; i < a->nlog; i++) n += log_rows_of(app_log_line(a, i), w);
    return n;
}

static long log_maxtop(App *a, int w, int h)
{
    long total = log_total_rows(a, w);
    return total - h > 0 ? total - h : 0;
}

static void log_draw(App *a, UiGrid *g)
{
    LogState *L = state(a);
    if (!L->inited) { L->inited = 1; L->follow = 1; }
    L->page = g->h;
    L->width = g->w;
    long maxtop = log_maxtop(a, g->w, g->h);
    if (L->follow || L->top > maxtop) L->top = maxtop;
    if (a->nlog == 0) { ui_grid_text(g, 2, 1, g->w - 4, UI_A_DIM, "(empty)"); return; }
    LogDraw d = { .g = g, .row = 0, .top = L->top };
    for (long i = 0; i < a->nlog && d.row < L->top + g->h; i++) {
        const char *s = app_log_line(a, i);
        long n = log_rows_of(s, g->w);
        if (d.row + n <= L->top) { d.row += n; continue; }
        d.indent = 0;
        if (n == 1) log_row(&d, s, (int)strlen(s));
        else ui_wrap(s, g->w > LOG_INDENT + 1 ? g->w - LOG_INDENT : 1, log_row, &d);
    }
}

static int log_key(App *a, const UiKey *k, int key)
{
    (void)key;
    if (!k) return 0;
    LogState *L = state(a);
    int w = L->width > 0 ? L->width : 80, h = L->page > 0 ? L->page : 1;
    long maxtop = log_maxtop(a, w, h);
    if (L->follow) L->top = maxtop;
    switch (k->action) {
    case A_CLEAR: app_log_clear(a); L->top = 0; L->follow = 1; return 1;
    case A_UP: L->top--; break;
    case A_DOWN: L->top++; break;
    case A_PGUP: L->top -= L->page; break;
    case A_PGDN: L->top += L->page; break;
    case A_HOME: L->top = 0; break;
    case A_END: L->top = maxtop; break;
    default: return 0;
    }
    if (L->top < 0) L->top = 0;
    if (L->top > maxtop) L->top = maxtop;
    L->follow = L->top >= maxtop;
    return 1;
}

const UiScreen ui_scr_log = {
    .name = "Log", .number = 6, .ctx = UI_CTX_LOG, .list = 1,
    .draw = log_draw, .key = log_key, .state_size = sizeof(LogState),
};
