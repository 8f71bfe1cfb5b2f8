/* scr_log.c -- screen 6, Log: every message, error and captured library
 * output with its time, newest at the bottom; follows new lines while
 * scrolled to the bottom. */
#include "app.h"

static struct {
    long top;
    int follow, page, inited;
} L;

static void log_draw(App *a, UiGrid *g)
{
    if (!L.inited) { L.inited = 1; L.follow = 1; }
    int rows = g->h;
    L.page = rows;
    long maxtop = a->nlog - rows > 0 ? a->nlog - rows : 0;
    if (L.follow || L.top > maxtop) L.top = maxtop;
    if (a->nlog == 0) ui_grid_text(g, 2, 1, g->w - 4, UI_A_DIM, "(empty)");
    for (int i = 0; i < rows && L.top + i < a->nlog; i++)
        ui_grid_text(g, 0, i, g->w, UI_A_NORMAL, app_log_line(a, L.top + i));
}

static int log_key(App *a, const UiKey *k, int key)
{
    if (!k) return 0;
    long maxtop = a->nlog - L.page > 0 ? a->nlog - L.page : 0;
    if (L.follow) L.top = maxtop;
    switch (k->action) {
    case A_CLEAR: app_log_clear(a); L.top = 0; L.follow = 1; return 1;
    case A_UP: L.top--; break;
    case A_DOWN: L.top++; break;
    case A_PGUP: L.top -= L.page; break;
    case A_PGDN: L.top += L.page; break;
    case A_HOME: L.top = 0; break;
    case A_END: L.top = maxtop; break;
    default: return 0;
    }
    if (L.top < 0) L.top = 0;
    L.follow = L.top >= maxtop;
    return 1;
}

const UiScreen ui_scr_log = {
    .name = "Log", .number = 6, .ctx = UI_CTX_LOG, .list = 1,
    .draw = log_draw, .key = log_key,
};
