/* chart.c -- braille / ASCII line charts (see chart.h). */
#include "ui/chart.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

uint32_t ui_braille(unsigned bits) { return 0x2800u + (bits & 0xffu); }

unsigned ui_braille_dot(int dx, int dy)
{
    static const unsigned dots[2][4] = {{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}};
    if (dx < 0 || dx > 1 || dy < 0 || dy > 3) return 0;
    return dots[dx][dy];
}

char *ui_fmt_num(double v, char *buf, int n)
{
    double a = fabs(v);
    if (isnan(v)) snprintf(buf, n, "nan");
    else if (isinf(v)) snprintf(buf, n, v > 0 ? "inf" : "-inf");
    else if (a == 0) snprintf(buf, n, "0");
    else if (a >= 1e9) snprintf(buf, n, "%.3gG", v / 1e9);
    else if (a >= 1e6) snprintf(buf, n, "%.3gM", v / 1e6);
    else if (a >= 1e4) snprintf(buf, n, "%.3gk", v / 1e3);
    else if (a >= 1e3) snprintf(buf, n, "%.0f", v);
    else if (a >= 1e-3) snprintf(buf, n, "%.3g", v);
    else snprintf(buf, n, "%.2g", v);
    return buf;
}

static double nice_step(double span, int max)
{
    if (max < 2) max = 2;
    double raw = span / (max - 1);
    if (!(raw > 0)) return 1;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * mag;
}

void ui_chart_nice_range(double *lo, double *hi, int max_ticks)
{
    if (!isfinite(*lo) || !isfinite(*hi)) { *lo = 0; *hi = 1; return; }
    if (*hi < *lo) { double t = *lo; *lo = *hi; *hi = t; }
    if (*hi == *lo) {
        double m = fabs(*lo) * 0.1;
        if (m == 0) m = 1;
        *lo -= m;
        *hi += m;
    }
    double st = nice_step(*hi - *lo, max_ticks);
    *lo = floor(*lo / st) * st;
    *hi = ceil(*hi / st) * st;
}

int ui_chart_ticks(double lo, double hi, int max, double *ticks, double *step)
{
    if (max < 1 || !(hi >= lo)) return 0;
    double st = nice_step(hi - lo > 0 ? hi - lo : 1, max);
    if (step) *step = st;
    int n = 0;
    double first = ceil(lo / st - 1e-9) * st;
    for (double t = first; t <= hi + st * 1e-9 && n < max; t += st) ticks[n++] = fabs(t) < st * 1e-9 ? 0 : t;
    return n;
}

void ui_chart_smooth(const double *in, double *out, int n, double w)
{
    if (w <= 0 || w >= 1) { memmove(out, in, sizeof(double) * n); return; }
    double acc = 0, norm = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(in[i])) { out[i] = in[i]; continue; }
        acc = acc * w + (1 - w) * in[i];
        norm = norm * w + (1 - w);
        out[i] = acc / norm;
    }
}

/* the plot area in pixels and the value->pixel mapping */
typedef struct {
    int px, py, pw, ph;       /* plot rectangle in cells */
    int sx, sy;               /* pixels per cell: 2x4 braille, 1x1 ascii */
    double xlo, xhi, ylo, yhi;
    int logy;
} Frame;

static double yval(const Frame *f, double y) { return f->logy ? log10(y) : y; }

static int ok_y(const Frame *f, double y) { return isfinite(y) && (!f->logy || y > 0); }

static void plot_pixel(UiGrid *g, const Frame *f, int X, int Y, int attr, uint32_t mark)
{
    if (X < 0 || Y < 0 || X >= f->pw * f->sx || Y >= f->ph * f->sy) return;
    int cx = f->px + X / f->sx, cy = f->py + Y / f->sy;
    UiCell *c = ui_grid_at(g, cx, cy);
    if (!c) return;
    if (f->sx == 2) {
        uint32_t cur = (c->ch >= 0x2800 && c->ch <= 0x28ff) ? c->ch : 0x2800;
        c->ch = cur | ui_braille_dot(X % 2, Y % 4);
    } else {
        c->ch = mark;
    }
    c->attr = (uint8_t)attr;
}

static void to_pixel(const Frame *f, double x, double y, int *X, int *Y)
{
    int W = f->pw * f->sx, H = f->ph * f->sy;
    double fx = f->xhi > f->xlo ? (x - f->xlo) / (f->xhi - f->xlo) : 0.5;
    double fy = f->yhi > f->ylo ? (yval(f, y) - f->ylo) / (f->yhi - f->ylo) : 0.5;
    *X = (int)lround(fx * (W - 1));
    *Y = (H - 1) - (int)lround(fy * (H - 1));
}

static void plot_line(UiGrid *g, const Frame *f, int x0, int y0, int x1, int y1, int attr, uint32_t mark)
{
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (int guard = 0; guard < 100000; guard++) {
        plot_pixel(g, f, x0, y0, attr, mark);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) { err += dy; x0 += sx; }
        if (e2 <= dx) { err += dx; y0 += sy; }
    }
}

void ui_chart_render(const UiChart *c, UiGrid *g, int x0, int y0, int w, int h)
{
    static const int attrs[UI_CHART_MAX_SERIES] = {UI_A_S1, UI_A_S2, UI_A_S3, UI_A_S4};
    static const char marks[UI_CHART_MAX_SERIES] = {'*', '+', 'o', 'x'};
    if (w < 1 || h < 1) return;
    int ascii = g->ascii;
    /* title and legend */
    int tx = x0;
    if (c->title) tx += ui_grid_text(g, tx, y0, w, UI_A_BOLD, c->title) + 1;
    int ns = c->nseries < UI_CHART_MAX_SERIES ? c->nseries : UI_CHART_MAX_SERIES;
    for (int s = 0; s < ns && tx < x0 + w; s++) {
        if (!c->series[s].name) continue;
        char key[8];
        int kl = ui_utf8_encode(ascii ? (uint32_t)marks[s] : 0x28ff, key);
        key[kl] = 0;
        tx += ui_grid_text(g, tx, y0, x0 + w - tx, attrs[s], key);
        tx += ui_grid_text(g, tx, y0, x0 + w - tx, UI_A_DIM, " ");
        tx += ui_grid_text(g, tx, y0, x0 + w - tx, UI_A_NORMAL, c->series[s].name) + 2;
    }
    if (c->logy && tx < x0 + w - 5) tx += ui_grid_text(g, tx, y0, x0 + w - tx, UI_A_DIM, "[log]") + 1;
    if (c->smooth > 0 && tx < x0 + w - 8) ui_grid_text(g, tx, y0, x0 + w - tx, UI_A_DIM, "[smooth]");

    /* smoothed copies and the data range */
    double *ys[UI_CHART_MAX_SERIES] = {0};
    double xlo = DBL_MAX, xhi = -DBL_MAX, ylo = DBL_MAX, yhi = -DBL_MAX;
    Frame f = {.logy = c->logy};
    int any = 0;
    for (int s = 0; s < ns; s++) {
        const UiSeries *se = &c->series[s];
        if (se->n <= 0 || !se->y) continue;
        ys[s] = ob_malloc(sizeof(double) * se->n);
        ui_chart_smooth(se->y, ys[s], se->n, se->points ? 0 : c->smooth);
        for (int i = 0; i < se->n; i++) {
            double xv = se->x ? se->x[i] : i, yv = ys[s][i];
            if (!isfinite(xv) || !ok_y(&f, yv)) continue;
            any = 1;
            if (xv < xlo) xlo = xv;
            if (xv > xhi) xhi = xv;
            double v = yval(&f, yv);
            if (v < ylo) ylo = v;
            if (v > yhi) yhi = v;
        }
    }
    int ph = h - 3; /* title, x axis, x labels */
    if (!any || ph < 1) {
        if (h > 1) ui_grid_text(g, x0, y0 + 1, w, UI_A_DIM, any ? "(too small)" : "no data yet");
        for (int s = 0; s < ns; s++) free(ys[s]);
        return;
    }
    int yt_max = ph / 2 + 1;
    if (yt_max > 6) yt_max = 6;
    if (yt_max < 2) yt_max = 2;
    ui_chart_nice_range(&ylo, &yhi, yt_max);
    if (xhi <= xlo) xhi = xlo + 1;

    /* y labels decide the left margin */
    double yt[8];
    int nyt = ui_chart_ticks(ylo, yhi, yt_max, yt, NULL);
    char lab[8][24];
    int lw = 1;
    for (int i = 0; i < nyt; i++) {
        ui_fmt_num(c->logy ? pow(10, yt[i]) : yt[i], lab[i], sizeof lab[i]);
        int l = (int)strlen(lab[i]);
        if (l > lw) lw = l;
    }
    f.px = x0 + lw + 1;
    f.py = y0 + 1;
    f.pw = w - lw - 1;
    f.ph = ph;
    if (f.pw < 2) { for (int s = 0; s < ns; s++) free(ys[s]); return; }
    f.sx = ascii ? 1 : 2;
    f.sy = ascii ? 1 : 4;
    f.xlo = xlo; f.xhi = xhi; f.ylo = ylo; f.yhi = yhi;

    /* axes */
    uint32_t vbar = ascii ? '|' : 0x2502, hbar = ascii ? '-' : 0x2500, corner = ascii ? '+' : 0x2514;
    uint32_t ytick = ascii ? '+' : 0x2524, xtick = ascii ? '+' : 0x252c;
    for (int r = 0; r < f.ph; r++) ui_grid_put(g, f.px - 1, f.py + r, vbar, UI_A_DIM);
    ui_grid_put(g, f.px - 1, f.py + f.ph, corner, UI_A_DIM);
    ui_grid_hline(g, f.px, f.py + f.ph, f.pw, hbar, UI_A_DIM);
    for (int i = 0; i < nyt; i++) {
        double fy = (yt[i] - ylo) / (yhi - ylo);
        int r = f.py + (f.ph - 1) - (int)lround(fy * (f.ph - 1));
        ui_grid_text(g, x0 + lw - (int)strlen(lab[i]), r, lw, UI_A_DIM, lab[i]);
        ui_grid_put(g, f.px - 1, r, ytick, UI_A_DIM);
    }
    /* x ticks: as many labels as fit with two spaces between */
    int xt_max = f.pw / 8 + 1;
    if (xt_max > 8) xt_max = 8;
    double xt[8];
    int nxt = ui_chart_ticks(xlo, xhi, xt_max, xt, NULL);
    int last_end = -1;
    for (int i = 0; i < nxt; i++) {
        int col = f.px + (int)lround((xt[i] - xlo) / (xhi - xlo) * (f.pw - 1));
        char xl[24];
        ui_fmt_num(xt[i], xl, sizeof xl);
        int l = (int)strlen(xl), start = col - l / 2;
        if (start < f.px - 1) start = f.px - 1;
        if (start + l > x0 + w) start = x0 + w - l;
        if (start <= last_end + 1) continue;
        ui_grid_put(g, col, f.py + f.ph, xtick, UI_A_DIM);
        ui_grid_text(g, start, f.py + f.ph + 1, l, UI_A_DIM, xl);
        last_end = start + l - 1;
    }
    if (c->xlabel) {
        int l = ui_text_width(c->xlabel);
        if (x0 + w - l > last_end + 1) ui_grid_text(g, x0 + w - l, f.py + f.ph + 1, l, UI_A_DIM, c->xlabel);
    }

    /* data */
    for (int s = 0; s < ns; s++) {
        const UiSeries *se = &c->series[s];
        if (!ys[s]) continue;
        int have = 0, pX = 0, pY = 0, clo = 0, chi = 0; /* the dots of column pX drawn: rows clo..chi */
        for (int i = 0; i < se->n; i++) {
            double xv = se->x ? se->x[i] : i, yv = ys[s][i];
            if (!isfinite(xv) || !ok_y(&f, yv)) { have = 0; continue; }
            int X, Y;
            to_pixel(&f, xv, yv, &X, &Y);
            /* a long run has many points to a column of dots: a line within
             * what the column already shows draws nothing new */
            if (!se->points && have && X == pX && Y >= clo && Y <= chi) { pY = Y; continue; }
            if (!have || X != pX) clo = chi = Y;
            if (have && X == pX) { clo = Y < clo ? Y : clo; chi = Y > chi ? Y : chi; }
            if (se->points) {
                plot_pixel(g, &f, X, Y, attrs[s], (uint32_t)marks[s]);
                if (f.sx == 2) { /* a visible mark: 2x2 dots */
                    plot_pixel(g, &f, X ^ 1, Y, attrs[s], 0);
                    plot_pixel(g, &f, X, Y ^ 1, attrs[s], 0);
                    plot_pixel(g, &f, X ^ 1, Y ^ 1, attrs[s], 0);
                }
            } else if (have) {
                plot_line(g, &f, pX, pY, X, Y, attrs[s], (uint32_t)marks[s]);
            } else {
                plot_pixel(g, &f, X, Y, attrs[s], (uint32_t)marks[s]);
            }
            have = 1;
            pX = X;
            pY = Y;
        }
        free(ys[s]);
    }
}
