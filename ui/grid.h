/* grid.h -- an off-screen character grid that every widget and screen draws
 * into: one Unicode code point and one logical attribute per cell. The
 * curses front end (app.c) blits a grid into a WINDOW; tests read it back as
 * UTF-8 text without curses. Also small UTF-8 text helpers (decode, width,
 * word wrap). */
#ifndef OB_UI_GRID_H
#define OB_UI_GRID_H

#include <stddef.h>
#include <stdint.h>

/* logical attributes; app.c maps them to colours / bold / reverse */
enum {
    UI_A_NORMAL = 0,
    UI_A_DIM,      /* axes, labels, secondary text */
    UI_A_BOLD,     /* headings */
    UI_A_TITLE,    /* tab bar, table header */
    UI_A_SEL,      /* selected row, active tab */
    UI_A_ERR,      /* errors */
    UI_A_OK,       /* success, progress bars */
    UI_A_INPUT,    /* text being typed */
    UI_A_S1,       /* chart series 1..4 */
    UI_A_S2,
    UI_A_S3,
    UI_A_S4,
    UI_A_COUNT
};

#define UI_WIDE_CONT 0xFFFFFFFFu /* right half of a double-width character */

typedef struct {
    uint32_t ch;
    uint8_t attr;
} UiCell;

typedef struct {
    int w, h;
    UiCell *cells;   /* h rows of w cells */
    int ascii;       /* draw glyphs from ASCII only (no braille, no boxes) */
} UiGrid;

void ui_grid_init(UiGrid *g, int w, int h, int ascii);
void ui_grid_free(UiGrid *g);
void ui_grid_resize(UiGrid *g, int w, int h);   /* contents cleared */
void ui_grid_clear(UiGrid *g);
UiCell *ui_grid_at(UiGrid *g, int x, int y);    /* NULL outside */
void ui_grid_put(UiGrid *g, int x, int y, uint32_t ch, int attr);
/* write UTF-8 text at (x,y), at most maxw columns (maxw < 0: to the edge);
 * control characters become '?'. Returns the columns written. */
int ui_grid_text(UiGrid *g, int x, int y, int maxw, int attr, const char *s);
int ui_grid_printf(UiGrid *g, int x, int y, int maxw, int attr, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* fill columns [x, x+w) of row y with ch / set their attribute */
void ui_grid_hline(UiGrid *g, int x, int y, int w, uint32_t ch, int attr);
void ui_grid_attr(UiGrid *g, int x, int y, int w, int attr);
/* a box border around [x, x+w) x [y, y+h) (ASCII or line drawing), its
 * inside cleared */
void ui_grid_box(UiGrid *g, int x, int y, int w, int h);
/* row y as UTF-8 (trailing spaces kept); buf must hold 4*w+1 bytes */
char *ui_grid_row(const UiGrid *g, int y, char *buf, size_t n);
/* 1 if the text occurs in some row (for tests) */
int ui_grid_contains(const UiGrid *g, const char *text);

/* ---- UTF-8 text ---------------------------------------------------------- */
/* decode one code point at s (returns bytes consumed, >= 1; invalid bytes
 * decode as U+FFFD) */
int ui_utf8_decode(const char *s, uint32_t *cp);
int ui_utf8_encode(uint32_t cp, char *out); /* returns bytes (1..4) */
/* display width of a code point (0, 1 or 2) */
int ui_cp_width(uint32_t cp);
int ui_text_width(const char *s);
/* 1 when needle occurs in hay, ASCII letters compared without case (an
 * empty needle occurs everywhere) */
int ui_text_find(const char *hay, const char *needle);
/* Word-wrap s into lines of at most width columns, breaking at spaces when
 * possible and at newlines always. Calls line(user, start, len) per line,
 * start/len in bytes of s. Returns the number of lines (an empty string is
 * one empty line). */
int ui_wrap(const char *s, int width, void (*line)(void *user, const char *start, int len), void *user);

#endif
