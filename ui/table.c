/* table.c -- sortable, filterable scrolling tables (see table.h). */
#include "ui/table.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

void ui_table_init(UiTable *t, const UiColumn *cols, int ncols)
{
    memset(t, 0, sizeof *t);
    t->cols = cols;
    t->ncols = ncols;
    t->sort_col = -1;
}

void ui_table_clear(UiTable *t)
{
    for (int i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
    t->nrows = t->nshow = 0;
    t->sel = t->top = 0;
}

void ui_table_free(UiTable *t)
{
    ui_table_clear(t);
    free(t->cells);
    free(t->keys);
    free(t->order);
    memset(t, 0, sizeof *t);
}

static void grow(void **p, size_t oldn, size_t newn, size_t sz)
{
    void *q = ob_calloc(newn, sz);
    if (*p) memcpy(q, *p, oldn * sz);
    free(*p);
    *p = q;
}

int ui_table_add(UiTable *t)
{
    if (t->nrows == t->caprows) {
        int nc = t->caprows ? t->caprows * 2 : 16;
        grow((void **)&t->cells, (size_t)t->caprows * t->ncols, (size_t)nc * t->ncols, sizeof(char *));
        grow((void **)&t->keys, (size_t)t->caprows * t->ncols, (size_t)nc * t->ncols, sizeof(double));
        grow((void **)&t->order, (size_t)t->caprows, (size_t)nc, sizeof(int));
        t->caprows = nc;
    }
    int r = t->nrows++;
    for (int c = 0; c < t->ncols; c++) {
        t->cells[(size_t)r * t->ncols + c] = ob_strdup("");
        t->keys[(size_t)r * t->ncols + c] = NAN;
    }
    t->order[t->nshow++] = r; /* shown until the next ui_table_sort filters */
    return r;
}

void ui_table_set(UiTable *t, int row, int col, const char *text, double key)
{
    if (row < 0 || row >= t->nrows || col < 0 || col >= t->ncols) return;
    size_t i = (size_t)row * t->ncols + col;
    free(t->cells[i]);
    t->cells[i] = ob_strdup(text ? text : "");
    t->keys[i] = key;
}

void ui_table_setf(UiTable *t, int row, int col, double key, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ui_table_set(t, row, col, buf, key);
}

const char *ui_table_get(const UiTable *t, int row, int col)
{
    if (row < 0 || row >= t->nrows || col < 0 || col >= t->ncols) return NULL;
    return t->cells[(size_t)row * t->ncols + col];
}

static const UiTable *sort_t;
static int cmp_rows(const void *pa, const void *pb)
{
    int a = *(const int *)pa, b = *(const int *)pb, c = sort_t->sort_col;
    double ka = sort_t->keys[(size_t)a * sort_t->ncols + c], kb = sort_t->keys[(size_t)b * sort_t->ncols + c];
    int r;
    if (!isnan(ka) && !isnan(kb)) r = ka < kb ? -1 : ka > kb;
    else if (isnan(ka) != isnan(kb)) r = isnan(ka) ? 1 : -1; /* numbers first */
    else r = strcmp(sort_t->cells[(size_t)a * sort_t->ncols + c], sort_t->cells[(size_t)b * sort_t->ncols + c]);
    if (sort_t->sort_desc) r = -r;
    return r ? r : (a < b ? -1 : a > b); /* stable */
}

static int row_matches(const UiTable *t, int r)
{
    for (int c = 0; c < t->ncols; c++)
        if (ui_text_find(t->cells[(size_t)r * t->ncols + c], t->filter)) return 1;
    return 0;
}

void ui_table_sort(UiTable *t, int col, int desc)
{
    int selrow = ui_table_selected(t);
    t->sort_col = col;
    t->sort_desc = desc;
    t->nshow = 0;
    for (int i = 0; i < t->nrows; i++)
        if (row_matches(t, i)) t->order[t->nshow++] = i;
    if (col >= 0 && col < t->ncols) {
        sort_t = t;
        qsort(t->order, t->nshow, sizeof(int), cmp_rows);
        sort_t = NULL;
    }
    t->sel = 0;
    if (selrow >= 0) ui_table_select_row(t, selrow);
}

void ui_table_filter(UiTable *t, const char *text)
{
    snprintf(t->filter, sizeof t->filter, "%s", text ? text : "");
    ui_table_sort(t, t->sort_col, t->sort_desc);
}

int ui_table_selected(const UiTable *t)
{
    if (t->nshow == 0) return -1;
    int s = t->sel < 0 ? 0 : t->sel >= t->nshow ? t->nshow - 1 : t->sel;
    return t->order[s];
}

void ui_table_select_row(UiTable *t, int row)
{
    for (int i = 0; i < t->nshow; i++)
        if (t->order[i] == row) t->sel = i;
}

int ui_scroll(long *pos, UiAction a, long page, long max)
{
    if (page < 1) page = 1;
    switch (a) {
    case A_UP: --*pos; break;
    case A_DOWN: ++*pos; break;
    case A_PGUP: *pos -= page; break;
    case A_PGDN: *pos += page; break;
    case A_HOME: *pos = 0; break;
    case A_END: *pos = max; break;
    default: return 0;
    }
    if (*pos > max) *pos = max;
    if (*pos < 0) *pos = 0;
    return 1;
}

int ui_table_nav(UiTable *t, UiAction a)
{
    long sel = t->sel;
    if (!ui_scroll(&sel, a, t->page, t->nshow - 1)) return 0;
    t->sel = (int)sel;
    return 1;
}

int ui_table_keys(UiTable *t, UiAction a, int nsort)
{
    switch (a) {
    case A_SORT: ui_table_sort(t, (t->sort_col + 1) % nsort, t->sort_desc); return 1;
    case A_SORT_REV: ui_table_sort(t, t->sort_col < 0 ? 0 : t->sort_col, !t->sort_desc); return 1;
    default: return ui_table_nav(t, a);
    }
}

/* column widths at a total width w: the fixed ones, the rest shared by the
 * flexible ones (cw: ncols entries, the caller frees) */
static int *col_widths(const UiTable *t, int w)
{
    int fixed = 0, flex = 0;
    for (int c = 0; c < t->ncols; c++) {
        if (t->cols[c].width) fixed += t->cols[c].width + 1;
        else flex++;
    }
    int rest = w - fixed, fw = flex ? (rest - flex) / flex : 0;
    if (fw < 4) fw = 4;
    int *cw = ob_malloc(sizeof(int) * (t->ncols + 1));
    for (int c = 0; c < t->ncols; c++) cw[c] = t->cols[c].width ? t->cols[c].width : fw;
    return cw;
}

int ui_table_click(UiTable *t, int x, int y)
{
    if (t->rw < 1 || x < t->rx || x >= t->rx + t->rw || y < t->ry) return UI_TABLE_MISS;
    if (y == t->ry) {
        int *cw = col_widths(t, t->rw), cx = t->rx, col = -1;
        for (int c = 0; c < t->ncols && col < 0; c++) {
            if (x < cx + cw[c] + 1) col = c;
            cx += cw[c] + 1;
        }
        free(cw);
        if (col < 0) return UI_TABLE_MISS;
        ui_table_sort(t, col, col == t->sort_col ? !t->sort_desc : 0);
        return UI_TABLE_HEADER;
    }
    int pos = t->top + y - t->ry - 1;
    if (y - t->ry > t->page || pos >= t->nshow) return UI_TABLE_MISS;
    if (pos == t->sel) return UI_TABLE_ROW_AGAIN;
    t->sel = pos;
    return UI_TABLE_ROW;
}

void ui_table_render(UiTable *t, UiGrid *g, int x, int y, int w, int h, int focused)
{
    if (w < 1 || h < 1) return;
    t->rx = x;
    t->ry = y;
    t->rw = w;
    int *cw = col_widths(t, w);
    /* header */
    ui_grid_hline(g, x, y, w, ' ', UI_A_TITLE);
    int cx = x;
    for (int c = 0; c < t->ncols && cx < x + w; c++) {
        char head[128];
        const char *arrow = c == t->sort_col ? (t->sort_desc ? (g->ascii ? "v" : "\u25bc") : (g->ascii ? "^" : "\u25b2")) : "";
        snprintf(head, sizeof head, "%s%s", t->cols[c].title, arrow);
        int hw = ui_text_width(head), lim = x + w - cx < cw[c] ? x + w - cx : cw[c];
        int off = t->cols[c].right && hw < lim ? lim - hw : 0;
        ui_grid_text(g, cx + off, y, lim - off, UI_A_TITLE, head);
        cx += cw[c] + 1;
    }
    if (t->filter[0]) { /* the filter at the header's right end */
        char f[200];
        int fl = snprintf(f, sizeof f, " /%s: %d of %d ", t->filter, t->nshow, t->nrows);
        if (fl > 0 && fl < w) ui_grid_text(g, x + w - fl, y, fl, UI_A_SEL, f);
    }
    int rows = h - 1;
    t->page = rows;
    if (t->sel >= t->nshow) t->sel = t->nshow - 1;
    if (t->sel < 0) t->sel = 0;
    if (t->sel < t->top) t->top = t->sel;
    if (t->sel >= t->top + rows) t->top = t->sel - rows + 1;
    if (t->top > t->nshow - rows) t->top = t->nshow - rows;
    if (t->top < 0) t->top = 0;
    if (t->nshow == 0 && t->nrows > 0 && rows > 0)
        ui_grid_printf(g, x + 1, y + 1, w - 1, UI_A_DIM, "no row matches /%s (Esc clears the filter)", t->filter);
    for (int i = 0; i < rows && t->top + i < t->nshow; i++) {
        int pos = t->top + i, row = t->order[pos], yy = y + 1 + i;
        int attr = pos == t->sel && focused ? UI_A_SEL : UI_A_NORMAL;
        if (attr == UI_A_SEL) ui_grid_hline(g, x, yy, w, ' ', attr);
        cx = x;
        for (int c = 0; c < t->ncols && cx < x + w; c++) {
            const char *s = t->cells[(size_t)row * t->ncols + c];
            int sw = ui_text_width(s), lim = x + w - cx < cw[c] ? x + w - cx : cw[c];
            int off = t->cols[c].right && sw < lim ? lim - sw : 0;
            ui_grid_text(g, cx + off, yy, lim - off, attr, s);
            cx += cw[c] + 1;
        }
    }
    free(cw);
}
