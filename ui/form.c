/* form.c -- forms of validated fields (see form.h). */
#include "ui/form.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "ui/keymap.h"

void ui_form_init(UiForm *f, const char *title)
{
    memset(f, 0, sizeof *f);
    snprintf(f->title, sizeof f->title, "%s", title);
}

void ui_form_free(UiForm *f)
{
    for (int i = 0; i < f->n; i++) ui_input_free(&f->f[i].in);
    f->n = 0;
}

int ui_form_add(UiForm *f, const char *label, UiFieldKind kind, const char *init, double lo, double hi,
                const char *help)
{
    if (f->n >= UI_FORM_MAX) return -1;
    UiField *d = &f->f[f->n];
    snprintf(d->label, sizeof d->label, "%s", label);
    d->kind = kind;
    d->lo = lo;
    d->hi = hi;
    snprintf(d->help, sizeof d->help, "%s", help ? help : "");
    ui_input_init(&d->in);
    ui_input_set(&d->in, init ? init : "");
    return f->n++;
}

int ui_form_num(const UiForm *f, int i, double *out)
{
    const UiField *d = &f->f[i];
    double v;
    if (d->kind == UI_F_INT) {
        long l;
        if (ob_parse_int(d->in.buf, (long)d->lo, (long)d->hi, &l)) return -1;
        v = (double)l;
    } else {
        if (ob_parse_float(d->in.buf, &v) || !isfinite(v) || v < d->lo || v > d->hi) return -1;
    }
    *out = v;
    return 0;
}

const char *ui_form_text(const UiForm *f, int i) { return f->f[i].in.buf; }

int ui_form_validate(UiForm *f)
{
    for (int i = 0; i < f->n; i++) {
        UiField *d = &f->f[i];
        double v;
        if ((d->kind == UI_F_INT || d->kind == UI_F_NUM) && ui_form_num(f, i, &v)) {
            char lo[32], hi[32];
            snprintf(lo, sizeof lo, "%g", d->lo);
            snprintf(hi, sizeof hi, "%g", d->hi);
            snprintf(f->err, sizeof f->err, "%s: '%s' is not %s in [%s, %s]", d->label, d->in.buf,
                     d->kind == UI_F_INT ? "an integer" : "a number", lo, hi);
            f->cur = i;
            return -1;
        }
    }
    f->err[0] = 0;
    return 0;
}

int ui_form_key(UiForm *f, int key)
{
    if (f->n == 0) return UI_FORM_CANCEL;
    UiField *d = &f->f[f->cur];
    if (d->kind == UI_F_PATH && key == '\t') { /* Tab completes in a path field */
        int n = ui_input_complete(&d->in, f->listing, sizeof f->listing);
        if (n <= 1) f->listing[0] = 0;
        return UI_FORM_CONTINUE;
    }
    const UiKey *k = ui_keymap_find(UI_CTX_FORM, key);
    if (k) {
        f->listing[0] = 0;
        switch (k->action) {
        case A_ACCEPT: return ui_form_validate(f) ? UI_FORM_CONTINUE : UI_FORM_ACCEPT;
        case A_CANCEL: return UI_FORM_CANCEL;
        case A_NEXT_FIELD: f->cur = (f->cur + 1) % f->n; return UI_FORM_CONTINUE;
        case A_PREV_FIELD: f->cur = (f->cur + f->n - 1) % f->n; return UI_FORM_CONTINUE;
        default: break;
        }
    }
    ui_input_key(&d->in, key);
    return UI_FORM_CONTINUE;
}

void ui_form_render(UiForm *f, UiGrid *g, int *cx, int *cy)
{
    int lw = 0;
    for (int i = 0; i < f->n; i++) {
        int l = ui_text_width(f->f[i].label);
        if (l > lw) lw = l;
    }
    int w = g->w - 4 < 76 ? g->w - 4 : 76, h = f->n + 6;
    if (h > g->h) h = g->h;
    int x = (g->w - w) / 2, y = (g->h - h) / 2;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    ui_grid_box(g, x, y, w, h);
    ui_grid_printf(g, x + 2, y, w - 4, UI_A_BOLD, " %s ", f->title);
    int fx = x + 2 + lw + 2, fw = w - (fx - x) - 2;
    int rows = h - 5 > 1 ? h - 5 : 1; /* rows for fields, above help, error and hints */
    if (f->cur < f->top) f->top = f->cur;
    if (f->cur >= f->top + rows) f->top = f->cur - rows + 1;
    if (f->top > f->n - rows) f->top = f->n - rows;
    if (f->top < 0) f->top = 0;
    if (f->n > rows) {
        char pos[48];
        int last = f->top + rows < f->n ? f->top + rows : f->n;
        int l = snprintf(pos, sizeof pos, " fields %d-%d of %d ", f->top + 1, last, f->n);
        ui_grid_text(g, x + w - 2 - l, y, l, UI_A_DIM, pos);
    }
    f->ry = y + 1;
    f->rrows = rows;
    for (int r = 0; r < rows && f->top + r < f->n; r++) {
        int i = f->top + r, yy = y + 1 + r, cur = i == f->cur;
        ui_grid_text(g, x + 2, yy, lw, cur ? UI_A_BOLD : UI_A_NORMAL, f->f[i].label);
        int cxx;
        ui_input_render(&f->f[i].in, g, fx, yy, fw, cur ? UI_A_INPUT : UI_A_NORMAL, &cxx);
        if (cur) { *cx = cxx; *cy = yy; }
    }
    int hy = y + h - 4;
    if (f->listing[0]) ui_grid_text(g, x + 2, hy, w - 4, UI_A_DIM, f->listing);
    else ui_grid_text(g, x + 2, hy, w - 4, UI_A_DIM, f->f[f->cur].help);
    if (f->err[0]) ui_grid_text(g, x + 2, hy + 1, w - 4, UI_A_ERR, f->err);
    char hints[200];
    UiCtx fc = UI_CTX_FORM;
    ui_grid_text(g, x + 2, y + h - 2, w - 4, UI_A_DIM, ui_keymap_hints(&fc, 1, hints, sizeof hints));
}

int ui_form_click(UiForm *f, int y)
{
    int i = f->top + y - f->ry;
    if (y < f->ry || y >= f->ry + f->rrows || i < 0 || i >= f->n) return 0;
    f->cur = i;
    f->listing[0] = 0;
    return 1;
}
