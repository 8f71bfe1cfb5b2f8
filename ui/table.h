/* table.h -- a sortable, filterable, scrollable table with a selected row,
 * drawn into a UiGrid; it remembers where it was drawn, so that a mouse
 * click can be mapped to a row or a column. Cells are strings with an
 * optional numeric sort key. Pure: unit-tested. */
#ifndef OB_UI_TABLE_H
#define OB_UI_TABLE_H

#include "ui/grid.h"
#include "ui/keymap.h"

typedef struct {
    const char *title;
    int width;        /* columns; 0 = share the remaining width */
    int right;        /* right-aligned (numbers) */
} UiColumn;

typedef struct {
    const UiColumn *cols;
    int ncols;
    int nrows, caprows;
    char **cells;     /* (nrows, ncols), owned */
    double *keys;     /* (nrows, ncols) numeric sort keys; NaN = sort as text */
    int *order;       /* display position -> row; only rows matching the filter */
    int nshow;        /* display positions (rows that match the filter) */
    char filter[128]; /* case-insensitive text some cell must contain; "" = all */
    int sort_col;     /* -1: insertion order */
    int sort_desc;
    int sel;          /* display position of the selection */
    int top;          /* first displayed position */
    int page;         /* rows shown by the last render */
    int rx, ry, rw;   /* where the last render put the header (rw 0: never drawn) */
    int conf_done;    /* the workbench applied the remembered sort (app.c) */
} UiTable;

/* what a click at a grid position hit (ui_table_click) */
enum { UI_TABLE_MISS = 0, UI_TABLE_ROW, UI_TABLE_ROW_AGAIN, UI_TABLE_HEADER };

void ui_table_init(UiTable *t, const UiColumn *cols, int ncols);
void ui_table_free(UiTable *t);
void ui_table_clear(UiTable *t);                 /* rows only; keeps sort */
int ui_table_add(UiTable *t);                    /* a new empty row; returns its index */
void ui_table_set(UiTable *t, int row, int col, const char *text, double key);
void ui_table_setf(UiTable *t, int row, int col, double key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
const char *ui_table_get(const UiTable *t, int row, int col);
/* sort by col (desc or not) and apply the filter; the selected row stays
 * selected when it still matches */
void ui_table_sort(UiTable *t, int col, int desc);
/* a list position moved by A_UP/A_DOWN (one), A_PGUP/A_PGDN (page),
 * A_HOME/A_END, kept in [0, max]: 1, or 0 when a is none of them (every
 * scrolling view's keys: tables, the Log, the help, a run's chats) */
int ui_scroll(long *pos, UiAction a, long page, long max);
/* A_UP/A_DOWN/A_PGUP/A_PGDN/A_HOME/A_END; returns 1 if handled */
int ui_table_nav(UiTable *t, UiAction a);
/* ui_table_nav, plus A_SORT (the next of the first nsort columns) and
 * A_SORT_REV (reverse the order); 1 when handled */
int ui_table_keys(UiTable *t, UiAction a, int nsort);
int ui_table_selected(const UiTable *t);          /* row index, -1 when empty */
void ui_table_select_row(UiTable *t, int row);
/* show only rows with a cell containing text (case-insensitive; "" = all) */
void ui_table_filter(UiTable *t, const char *text);
/* a click at grid (x,y) of the last render: a row selects it
 * (UI_TABLE_ROW; the row already selected: UI_TABLE_ROW_AGAIN), a column
 * title sorts by that column (again: reversed; UI_TABLE_HEADER) */
int ui_table_click(UiTable *t, int x, int y);
void ui_table_render(UiTable *t, UiGrid *g, int x, int y, int w, int h, int focused);

#endif
