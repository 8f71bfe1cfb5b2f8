/* hist.c -- histogram binning and bar rendering (see hist.h). */
#include "ui/hist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/chart.h"
#include "base/common.h"

void ui_hist_range(const float *v, long n, double *lo, double *hi)
{
    int any = 0;
    double a = 0, b = 0;
    for (long i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        if (!any || v[i] < a) a = v[i];
        if (!any || v[i] > b) b = v[i];
        any = 1;
    }
    *lo = a;
    *hi = b;
}

long ui_hist_bin(const float *v, long n, int nbins, double lo, double hi, long *counts)
{
    if (nbins < 1) return 0;
    memset(counts, 0, sizeof(long) * nbins);
    long k = 0;
    double span = hi - lo;
    for (long i = 0; i < n; i++) {
        double x = v[i];
        if (!isfinite(x) || x < lo || x > hi) continue;
        int b = span > 0 ? (int)((x - lo) / span * nbins) : 0;
        if (b >= nbins) b = nbins - 1;
        if (b < 0) b = 0;
        counts[b]++;
        k++;
    }
    return k;
}

#define LABEL_W 7

int ui_hist_plot_width(int w) { return w - LABEL_W - 1 > 1 ? w - LABEL_W - 1 : 1; }

void ui_hist_render(const UiHist *h, UiGrid *g, int x0, int y0, int w, int ht)
{
    int ascii = g->ascii;
    if (w < 1 || ht < 1) return;
    if (h->title) ui_grid_text(g, x0, y0, w, UI_A_BOLD, h->title);
    int ph = ht - 3, pw = ui_hist_plot_width(w), px = x0 + LABEL_W + 1, py = y0 + 1;
    if (ph < 1 || h->nbins < 1 || w <= LABEL_W + 2) {
        if (ht > 1) ui_grid_text(g, x0, y0 + 1, w, UI_A_DIM, "(too small)");
        return;
    }
    /* column values: merge bins into columns (sum) or repeat them */
    double *col = ob_calloc(pw, sizeof(double));
    for (int b = 0; b < h->nbins; b++) {
        int c0 = (int)((long)b * pw / h->nbins), c1 = (int)((long)(b + 1) * pw / h->nbins);
        if (c1 <= c0) col[c0 < pw ? c0 : pw - 1] += (double)h->counts[b];
        else for (int c = c0; c < c1 && c < pw; c++) col[c] = (double)h->counts[b];
    }
    double peak = 0;
    long peak_count = 0;
    for (int b = 0; b < h->nbins; b++) if (h->counts[b] > peak_count) peak_count = h->counts[b];
    for (int c = 0; c < pw; c++) if (col[c] > peak) peak = col[c];
    double top = h->logcount ? log1p(peak) : peak;
    static const uint32_t eighths[9] = {' ', 0x2581, 0x2582, 0x2583, 0x2584, 0x2585, 0x2586, 0x2587, 0x2588};
    for (int c = 0; c < pw; c++) {
        double v = h->logcount ? log1p(col[c]) : col[c];
        int units = top > 0 ? (int)lround(v / top * ph * 8) : 0;
        if (col[c] > 0 && units == 0) units = 1; /* a nonzero bin is always visible */
        for (int r = 0; r < ph; r++) {
            int u = units - r * 8;
            if (u <= 0) break;
            uint32_t ch = ascii ? (u >= 4 ? '#' : '.') : eighths[u > 8 ? 8 : u];
            ui_grid_put(g, px + c, py + ph - 1 - r, ch, UI_A_S1);
        }
    }
    free(col);
    /* axes and labels */
    char buf[32];
    uint32_t vbar = ascii ? '|' : 0x2502, hbar = ascii ? '-' : 0x2500, corner = ascii ? '+' : 0x2514;
    for (int r = 0; r < ph; r++) ui_grid_put(g, px - 1, py + r, vbar, UI_A_DIM);
    ui_grid_put(g, px - 1, py + ph, corner, UI_A_DIM);
    ui_grid_hline(g, px, py + ph, pw, hbar, UI_A_DIM);
    ui_fmt_num((double)peak_count, buf, sizeof buf);
    ui_grid_text(g, px - 1 - (int)strlen(buf), py, LABEL_W, UI_A_DIM, buf);
    ui_grid_text(g, px - 2, py + ph - 1, 1, UI_A_DIM, "0");
    ui_fmt_num(h->lo, buf, sizeof buf);
    ui_grid_text(g, px, py + ph + 1, pw, UI_A_DIM, buf);
    ui_fmt_num(h->hi, buf, sizeof buf);
    int l = (int)strlen(buf);
    if (pw > l + 8) ui_grid_text(g, px + pw - l, py + ph + 1, l, UI_A_DIM, buf);
    if (h->lo < 0 && h->hi > 0 && pw > 24) { /* mark zero */
        int zc = px + (int)((0 - h->lo) / (h->hi - h->lo) * pw);
        if (zc > px + 4 && zc < px + pw - 6) ui_grid_text(g, zc, py + ph + 1, 1, UI_A_DIM, "0");
    }
}
