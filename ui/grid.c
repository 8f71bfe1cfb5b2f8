/* grid.c -- the off-screen character grid and UTF-8 helpers (see grid.h). */
#include "ui/grid.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "base/common.h"

void ui_grid_init(UiGrid *g, int w, int h, int ascii)
{
    memset(g, 0, sizeof *g);
    g->ascii = ascii;
    ui_grid_resize(g, w, h);
}

void ui_grid_free(UiGrid *g)
{
    free(g->cells);
    g->cells = NULL;
    g->w = g->h = 0;
}

void ui_grid_resize(UiGrid *g, int w, int h)
{
    if (w < 0) w = 0;
    if (h < 0) h = 0;
    free(g->cells);
    g->w = w;
    g->h = h;
    g->cells = ob_calloc((size_t)w * h + 1, sizeof(UiCell));
    ui_grid_clear(g);
}

void ui_grid_clear(UiGrid *g)
{
    for (int i = 0; i < g->w * g->h; i++) g->cells[i] = (UiCell){' ', UI_A_NORMAL};
}

UiCell *ui_grid_at(UiGrid *g, int x, int y)
{
    if (x < 0 || y < 0 || x >= g->w || y >= g->h) return NULL;
    return &g->cells[(size_t)y * g->w + x];
}

void ui_grid_put(UiGrid *g, int x, int y, uint32_t ch, int attr)
{
    UiCell *c = ui_grid_at(g, x, y);
    if (c) *c = (UiCell){ch, (uint8_t)attr};
}

int ui_grid_text(UiGrid *g, int x, int y, int maxw, int attr, const char *s)
{
    if (!s) return 0;
    if (maxw < 0 || x + maxw > g->w) maxw = g->w - x;
    int col = 0;
    while (*s && col < maxw) {
        uint32_t cp;
        s += ui_utf8_decode(s, &cp);
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) cp = '?';
        int cw = ui_cp_width(cp);
        if (cw == 0) continue;
        if (col + cw > maxw) break;
        ui_grid_put(g, x + col, y, cp, attr);
        if (cw == 2) ui_grid_put(g, x + col + 1, y, UI_WIDE_CONT, attr);
        col += cw;
    }
    return col;
}

int ui_grid_printf(UiGrid *g, int x, int y, int maxw, int attr, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return ui_grid_text(g, x, y, maxw, attr, buf);
}

void ui_grid_hline(UiGrid *g, int x, int y, int w, uint32_t ch, int attr)
{
    for (int i = 0; i < w; i++) ui_grid_put(g, x + i, y, ch, attr);
}

void ui_grid_box(UiGrid *g, int x, int y, int w, int h)
{
    int ascii = g->ascii;
    uint32_t hb = ascii ? '-' : 0x2500, vb = ascii ? '|' : 0x2502;
    uint32_t tl = ascii ? '+' : 0x250c, tr = ascii ? '+' : 0x2510, bl = ascii ? '+' : 0x2514, br = ascii ? '+' : 0x2518;
    for (int r = 0; r < h; r++) ui_grid_hline(g, x, y + r, w, ' ', UI_A_NORMAL);
    ui_grid_put(g, x, y, tl, UI_A_DIM);
    ui_grid_hline(g, x + 1, y, w - 2, hb, UI_A_DIM);
    ui_grid_put(g, x + w - 1, y, tr, UI_A_DIM);
    for (int r = 1; r < h - 1; r++) {
        ui_grid_put(g, x, y + r, vb, UI_A_DIM);
        ui_grid_put(g, x + w - 1, y + r, vb, UI_A_DIM);
    }
    ui_grid_put(g, x, y + h - 1, bl, UI_A_DIM);
    ui_grid_hline(g, x + 1, y + h - 1, w - 2, hb, UI_A_DIM);
    ui_grid_put(g, x + w - 1, y + h - 1, br, UI_A_DIM);
}

void ui_grid_attr(UiGrid *g, int x, int y, int w, int attr)
{
    for (int i = 0; i < w; i++) {
        UiCell *c = ui_grid_at(g, x + i, y);
        if (c) c->attr = (uint8_t)attr;
    }
}

char *ui_grid_row(const UiGrid *g, int y, char *buf, size_t n)
{
    size_t k = 0;
    if (n == 0) return buf;
    for (int x = 0; x < g->w && y >= 0 && y < g->h; x++) {
        uint32_t ch = g->cells[(size_t)y * g->w + x].ch;
        if (ch == UI_WIDE_CONT) continue;
        char tmp[4];
        int m = ui_utf8_encode(ch, tmp);
        if (k + m + 1 > n) break;
        memcpy(buf + k, tmp, m);
        k += m;
    }
    buf[k] = 0;
    return buf;
}

int ui_grid_contains(const UiGrid *g, const char *text)
{
    size_t n = (size_t)g->w * 4 + 1;
    char *buf = ob_malloc(n);
    int found = 0;
    for (int y = 0; y < g->h && !found; y++) found = strstr(ui_grid_row(g, y, buf, n), text) != NULL;
    free(buf);
    return found;
}

/* ---- UTF-8 ---------------------------------------------------------------- */
int ui_utf8_decode(const char *str, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    int n;
    uint32_t c, min;
    if ((s[0] & 0xe0) == 0xc0) { n = 2; c = s[0] & 0x1f; min = 0x80; }
    else if ((s[0] & 0xf0) == 0xe0) { n = 3; c = s[0] & 0x0f; min = 0x800; }
    else if ((s[0] & 0xf8) == 0xf0) { n = 4; c = s[0] & 0x07; min = 0x10000; }
    else { *cp = 0xfffd; return 1; }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) { *cp = 0xfffd; return i; }
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) c = 0xfffd;
    *cp = c;
    return n;
}

int ui_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xc0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12); out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    if (cp > 0x10ffff) return ui_utf8_encode(0xfffd, out);
    out[0] = (char)(0xf0 | cp >> 18); out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

int ui_cp_width(uint32_t cp)
{
    if (cp < 0x80) return cp >= 0x20 && cp != 0x7f ? 1 : 0;
    int w = wcwidth((wchar_t)cp);
    if (w < 0) return 1; /* unknown to the C library: shown as one column */
    return w > 2 ? 2 : w;
}

int ui_text_width(const char *s)
{
    int w = 0;
    while (*s) {
        uint32_t cp;
        s += ui_utf8_decode(s, &cp);
        w += ui_cp_width(cp);
    }
    return w;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

int ui_text_find(const char *hay, const char *needle)
{
    for (;; hay++) {
        size_t i = 0;
        while (needle[i] && lower((unsigned char)hay[i]) == lower((unsigned char)needle[i])) i++;
        if (!needle[i]) return 1;
        if (!*hay) return 0;
    }
}

int ui_wrap(const char *s, int width, void (*line)(void *user, const char *start, int len), void *user)
{
    if (width < 1) width = 1;
    int lines = 0;
    const char *p = s;
    for (;;) {
        /* one line: scan up to width columns, remember the last space */
        const char *q = p, *brk = NULL;
        int col = 0;
        while (*q && *q != '\n') {
            uint32_t cp;
            int n = ui_utf8_decode(q, &cp);
            int cw = ui_cp_width(cp);
            if (col + cw > width) break;
            if (cp == ' ') brk = q;
            col += cw;
            q += n;
        }
        const char *end, *next;
        if (!*q || *q == '\n') { end = q; next = *q ? q + 1 : NULL; }
        else if (*q == ' ') { end = q; next = q + 1; } /* the line is exactly full */
        else if (brk && brk > p) { end = brk; next = brk + 1; }
        else { end = q > p ? q : q + ui_utf8_decode(q, &(uint32_t){0}); next = end; }
        if (line) line(user, p, (int)(end - p));
        lines++;
        if (!next) break;
        p = next;
    }
    return lines;
}
