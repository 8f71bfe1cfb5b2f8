/* ui/scr_layers.c -- screen 2, Layers (UI thread only): every linear layer
 * of the teacher with its NMF / SVD / XNOR relative error, sign balance and
 * g/h range (svid_model_stats, the numbers of `onebit-tui inspect`),
 * computed in a background job (base/job.h) as soon as a teacher is loaded,
 * with a progress bar,
 * and stored in the run store so the next visit is instant. Sortable;
 * Enter shows the layer's |W| and W histograms and the spread of the sign
 * balance over rows and columns. `inspect --db` stores the same records. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ui/app.h"
#include "ui/chart.h"
#include "base/common.h"
#include "base/job.h"
#include "db/db.h"
#include "db/db_svid.h"
#include "ui/hist.h"
#include "onebit/svid.h"
#include "ui/table.h"

/* what the statistics job works on; the UI frees it after job_join */
typedef struct {
    Job *job;
    const Model *m;
    LayerStats *out;
    int n, threads;
    char err[OB_ERRLEN];
} StatsJob;

static const UiColumn cols[] = {
    {"layer", 15, 0}, {"out x in", 11, 1}, {"NMF err", 8, 1}, {"SVD err", 8, 1}, {"XNOR err", 8, 1},
    {"w>=0", 6, 1}, {"row balance", 13, 1}, {"g range", 15, 1}, {"h range", 15, 1}, {"bpw", 6, 1},
};
#define NCOLS ((int)(sizeof cols / sizeof cols[0]))

typedef struct {
    UiTable t;
    LayerStats *st;
    int n;
    StatsJob *job;
    long done, total;
    int detail;
    const Model *for_model;  /* the teacher st belongs to */
    int inited;
} LayersState;

static LayersState *state(App *a) { return app_state(a, &ui_scr_layers); }

/* ---- the run-store cache (db_svid.h: the same records as inspect --db) ---- */
static void store(App *a)
{
    LayersState *L = state(a);
    if (!a->db || !a->teacher_id) return;
    char err[OB_ERRLEN];
    if (db_layer_stats_save(a->db, a->teacher_id, L->st, L->n, err)) app_msg(a, 1, "run store: %s", err);
}

static int load_cached(App *a)
{
    LayersState *L = state(a);
    if (!a->db || !a->teacher_id || !a->teacher) return 0;
    LayerStats *st;
    int n;
    char err[OB_ERRLEN];
    if (db_layer_stats_load(a->db, a->teacher_id, &st, &n, err)) { app_msg(a, 1, "run store: %s", err); return 0; }
    if (n != a->teacher->cfg.n_layers * LIN_PER_LAYER) { free(st); return 0; }
    free(L->st);
    L->st = st;
    L->n = n;
    return 1;
}

/* ---- the table ---------------------------------------------------------------- */
static void fill(LayersState *L)
{
    ui_table_clear(&L->t);
    for (int i = 0; i < L->n; i++) {
        const LayerStats *s = &L->st[i];
        int r = ui_table_add(&L->t);
        ui_table_set(&L->t, r, 0, s->name, NAN);
        ui_table_setf(&L->t, r, 1, (double)s->rows * s->cols, "%dx%d", s->rows, s->cols);
        ui_table_setf(&L->t, r, 2, s->nmf_err, "%.4f", s->nmf_err);
        ui_table_setf(&L->t, r, 3, s->svd_err, "%.4f", s->svd_err);
        ui_table_setf(&L->t, r, 4, s->xnor_err, "%.4f", s->xnor_err);
        ui_table_setf(&L->t, r, 5, s->pos_frac, "%.3f", s->pos_frac);
        ui_table_setf(&L->t, r, 6, s->row_pos_max - s->row_pos_min, "%.2f-%.2f", s->row_pos_min, s->row_pos_max);
        ui_table_setf(&L->t, r, 7, s->g_max, "%.3g..%.3g", s->g_min, s->g_max);
        ui_table_setf(&L->t, r, 8, s->h_max, "%.3g..%.3g", s->h_min, s->h_max);
        ui_table_setf(&L->t, r, 9, s->bpw, "%.3f", s->bpw);
    }
    ui_table_sort(&L->t, L->t.sort_col, L->t.sort_desc);
}

/* ---- the worker --------------------------------------------------------------- */
static int stats_main(Job *job, void *arg)
{
    StatsJob *j = arg;
    return svid_model_stats(j->m, j->threads, SVID_NMF, j->out, job_progress_cb, job, j->err);
}

static void start(App *a, int force)
{
    LayersState *L = state(a);
    if (!a->teacher || L->job) return;
    if (!L->inited) { ui_table_init(&L->t, cols, NCOLS); L->inited = 1; }
    if (!force && L->for_model == a->teacher && L->n) return;
    if (!force && load_cached(a)) {
        L->for_model = a->teacher;
        fill(L);
        app_log(a, "layer statistics of %s read from the run store", a->teacher_path);
        return;
    }
    if (!model_lin_dense(a->teacher, 0)) { app_msg(a, 1, "layer statistics need a dense teacher"); return; }
    StatsJob *j = ob_calloc(1, sizeof *j);
    j->m = a->teacher;
    j->n = a->teacher->cfg.n_layers * LIN_PER_LAYER;
    j->out = ob_calloc(j->n, sizeof(LayerStats));
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    j->threads = nc < 1 ? 1 : nc > 4 ? 4 : (int)nc;
    if (app_start_teacher_job(a, &j->job, "layer statistics", stats_main, j)) {
        free(j->out);
        free(j);
        return;
    }
    L->job = j;
    L->done = 0;
    L->total = j->n;
    app_log(a, "computing layer statistics of %s", a->teacher_path);
}

static void finish(App *a)
{
    LayersState *L = state(a);
    StatsJob *j = L->job;
    int rc = app_join_teacher_job(a, j->job);
    L->job = NULL;
    if (rc) {
        app_msg(a, 1, "layer statistics failed: %s", j->err);
        free(j->out);
    } else {
        free(L->st);
        L->st = j->out;
        L->n = j->n;
        L->for_model = j->m;
        fill(L);
        store(a);
        app_msg(a, 0, "layer statistics of %d linears computed%s", L->n, a->db && a->teacher_id ? " and stored" : "");
    }
    free(j);
}

/* ---- drawing -------------------------------------------------------------------- */
static void balance_hist(const float *W, int rows, int cols_, int by_rows, long *counts, int nb)
{
    int n = by_rows ? rows : cols_;
    float *frac = ob_malloc(sizeof(float) * (n > 0 ? n : 1));
    for (int i = 0; i < n; i++) {
        long pos = 0, m = by_rows ? cols_ : rows;
        for (long k = 0; k < m; k++) pos += (by_rows ? W[(size_t)i * cols_ + k] : W[(size_t)k * cols_ + i]) >= 0;
        frac[i] = m ? (float)pos / (float)m : 0;
    }
    ui_hist_bin(frac, n, nb, 0, 1, counts);
    free(frac);
}

static void draw_detail(App *a, UiGrid *g, const LayerStats *s)
{
    ui_grid_printf(g, 0, 0, g->w, UI_A_BOLD, "%s  %d x %d   NMF %.4f  SVD %.4f  XNOR %.4f   w>=0 %.3f   bpw %.3f", s->name,
                   s->rows, s->cols, s->nmf_err, s->svd_err, s->xnor_err, s->pos_frac, s->bpw);
    ui_grid_printf(g, 0, 1, g->w, UI_A_DIM,
                   "row balance %.3f..%.3f (sd %.3f)   column balance %.3f..%.3f (sd %.3f)   g %.3g..%.3g   h %.3g..%.3g",
                   s->row_pos_min, s->row_pos_max, s->row_pos_std, s->col_pos_min, s->col_pos_max, s->col_pos_std, s->g_min,
                   s->g_max, s->h_min, s->h_max);
    int hh = (g->h - 2) / 2, hw = g->w / 2 - 1;
    UiHist h1 = {"|W| histogram", s->abs_hist, SVID_BINS, s->abs_lo, s->abs_hi, 0};
    UiHist h2 = {"W histogram", s->w_hist, SVID_BINS, s->w_lo, s->w_hi, 0};
    ui_hist_render(&h1, g, 0, 2, hw, hh);
    ui_hist_render(&h2, g, hw + 2, 2, g->w - hw - 2, hh);
    int rows, cc;
    float *tmp = NULL;
    const float *W = a->teacher && model_lin_dense(a->teacher, 0)
                         ? svid_model_weight(a->teacher, s->layer, s->kind, &rows, &cc, &tmp) : NULL;
    if (!W || rows != s->rows || cc != s->cols) {
        free(tmp);
        ui_grid_text(g, 0, 2 + hh + 1, g->w, UI_A_DIM, "(sign balance charts need the teacher loaded)");
        return;
    }
    int nb = ui_hist_plot_width(hw);
    long *c1 = ob_calloc(nb, sizeof(long)), *c2 = ob_calloc(nb, sizeof(long));
    balance_hist(W, rows, cc, 1, c1, nb);
    balance_hist(W, rows, cc, 0, c2, nb);
    UiHist b1 = {"sign balance of rows (fraction w>=0)", c1, nb, 0, 1, 0};
    UiHist b2 = {"sign balance of columns", c2, nb, 0, 1, 0};
    ui_hist_render(&b1, g, 0, 2 + hh, hw, g->h - 2 - hh);
    ui_hist_render(&b2, g, hw + 2, 2 + hh, g->w - hw - 2, g->h - 2 - hh);
    free(c1);
    free(c2);
    free(tmp);
}

static void layers_draw(App *a, UiGrid *g)
{
    LayersState *L = state(a);
    if (!a->teacher) { ui_grid_text(g, 2, 1, g->w - 4, UI_A_NORMAL, "No teacher loaded (screen 1)."); return; }
    int y = 0;
    if (L->job) {
        ui_grid_printf(g, 0, y, g->w, UI_A_BOLD, "computing layer statistics: %ld/%ld ", L->done, L->total);
        int x = 40, w = g->w - x - 1;
        double f = L->total ? (double)L->done / L->total : 0;
        for (int i = 0; i < w; i++)
            ui_grid_put(g, x + i, y, i < (int)(f * w) ? (g->ascii ? '#' : 0x2588) : (g->ascii ? '.' : 0x2591),
                        i < (int)(f * w) ? UI_A_OK : UI_A_DIM);
        y++;
    }
    if (!L->n || L->for_model != a->teacher) {
        if (!L->job) ui_grid_text(g, 2, y + 1, g->w - 4, UI_A_DIM, "no statistics yet");
        return;
    }
    int r = ui_table_selected(&L->t);
    if (L->detail && r >= 0) { draw_detail(a, g, &L->st[r]); return; }
    ui_table_render(&L->t, g, 0, y, g->w, g->h - y, 1);
}

static int layers_key(App *a, const UiKey *k, int key)
{
    LayersState *L = state(a);
    if (!k) return 0;
    switch (k->action) {
    case A_OPEN: if (L->n) L->detail = !L->detail; return 1;
    case A_ESCAPE: L->detail = 0; return 1;
    case A_RECOMPUTE:
        if (L->job) { app_msg(a, 1, "the statistics are being computed"); return 1; }
        start(a, 1);
        return 1;
    default: return ui_table_keys(&L->t, k->action, NCOLS);
    }
}

static void layers_event(App *a, const Event *ev)
{
    LayersState *L = state(a);
    if (!L->job || ev->run_id != job_id(L->job->job)) return;
    if (ev->kind == EV_PROGRESS) { L->done = ev->done; L->total = ev->total; }
    else if (ev->kind == EV_STATUS) finish(a);
    app_dirty(a);
}

static void layers_teacher(App *a)
{
    LayersState *L = state(a);
    L->detail = 0;
    start(a, 0);
}

static void layers_status(App *a, char *buf, int n)
{
    LayersState *L = state(a);
    if (L->job) snprintf(buf, n, "layer statistics %ld/%ld ", L->done, L->total);
}

static void layers_fini(App *a)
{
    LayersState *L = state(a);
    if (L->job) { /* quitting: skip the layers not started yet */
        job_cancel(L->job->job);
        job_free(L->job->job);
        free(L->job->out);
        free(L->job);
        a->teacher_users--;
    }
    free(L->st);
    if (L->inited) ui_table_free(&L->t);
    memset(L, 0, sizeof *L); /* the app frees the state itself */
}

/* the table while it is shown (not behind a layer's charts) */
static UiTable *layers_table(App *a)
{
    LayersState *L = state(a);
    return L->inited && !L->detail ? &L->t : NULL;
}

const UiScreen ui_scr_layers = {
    .name = "Layers", .number = 2, .ctx = UI_CTX_LAYERS, .list = 1,
    .draw = layers_draw, .key = layers_key, .event = layers_event,
    .status = layers_status, .teacher = layers_teacher, .fini = layers_fini, .state_size = sizeof(LayersState),
    .table = layers_table,
};
