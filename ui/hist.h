/* hist.h -- histograms: binning of float arrays and vertical bar charts
 * drawn into a UiGrid (eighth-block glyphs, '#' in ASCII), with labelled
 * value range and peak count. Pure: unit-tested without curses. */
#ifndef OB_UI_HIST_H
#define OB_UI_HIST_H

#include "ui/grid.h"

/* min and max of the finite values (0,0 when there are none) */
void ui_hist_range(const float *v, long n, double *lo, double *hi);
/* count v into nbins equal bins over [lo, hi]; v == hi goes to the last bin;
 * values outside [lo,hi] and non-finite values are not counted. Returns the
 * number of values counted. */
long ui_hist_bin(const float *v, long n, int nbins, double lo, double hi, long *counts);

typedef struct {
    const char *title;
    const long *counts;
    int nbins;
    double lo, hi;       /* value range of the bins (x axis labels) */
    int logcount;        /* bar heights by log(1+count) */
} UiHist;

/* bars: one column per bin when the widths agree, else bins are merged or
 * stretched to the plot width */
void ui_hist_render(const UiHist *h, UiGrid *g, int x0, int y0, int w, int ht);
/* the plot width ui_hist_render gives bins in a w-wide rectangle, so the
 * caller can bin at exactly that resolution */
int ui_hist_plot_width(int w);

#endif
