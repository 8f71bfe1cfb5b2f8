/* chart.h -- line charts drawn into a UiGrid: braille dots (2x4 per cell)
 * or ASCII, auto-scaled labelled axes with "nice" ticks, optional log-scale
 * y axis and exponential smoothing, several series with a legend. Pure: no
 * curses, so the scaling and the glyphs are unit-tested. */
#ifndef OB_UI_CHART_H
#define OB_UI_CHART_H

#include "ui/grid.h"

#define UI_CHART_MAX_SERIES 4

typedef struct {
    const char *name;    /* legend text */
    const double *x;     /* NULL: x = 0, 1, 2, ... */
    const double *y;
    int n;
    int points;          /* 1: marks only (e.g. evaluations), no connecting line */
} UiSeries;

typedef struct {
    const char *title;
    const char *xlabel;  /* shown after the x tick labels, e.g. "step" */
    UiSeries series[UI_CHART_MAX_SERIES];
    int nseries;
    int logy;            /* log10 y axis; values <= 0 are skipped */
    double smooth;       /* 0 off, else EMA weight in (0,1), as TensorBoard's slider */
} UiChart;

/* Draw c into the rectangle (x0,y0,w,h) of g. Too-small rectangles and
 * empty charts draw what fits (at least the title / "no data"). */
void ui_chart_render(const UiChart *c, UiGrid *g, int x0, int y0, int w, int h);

/* ---- pieces, exposed for tests ------------------------------------------- */
/* "nice" ticks (1, 2, 5 x 10^k steps) covering [lo, hi]: fills at most max
 * values into ticks, returns how many; *step receives the spacing */
int ui_chart_ticks(double lo, double hi, int max, double *ticks, double *step);
/* widen [lo,hi] to nice tick boundaries; a zero-width range gets a margin */
void ui_chart_nice_range(double *lo, double *hi, int max_ticks);
/* compact number: 3 significant digits, k/M/G suffixes, e-notation for tiny */
char *ui_fmt_num(double v, char *buf, int n);
/* debiased exponential moving average (weight w in [0,1)); NaNs pass through */
void ui_chart_smooth(const double *in, double *out, int n, double w);
/* braille code point for a dot at (dx 0..1, dy 0..3) OR'ed into bits */
uint32_t ui_braille(unsigned bits);
unsigned ui_braille_dot(int dx, int dy);

#endif
