/* ui/scr_model.c -- screen 1, Model (UI thread only, but for load_main, the
 * load job's function): the teacher's path, config, parameter counts,
 * FP32/FP16 vs 1-bit size and bits per weight, and a table of the seven
 * projections. 'o' loads another teacher (path prompt with Tab completion);
 * loading runs in a background job (base/job.h) whose end event arrives
 * through the event ring. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ui/app.h"
#include "ui/chart.h"
#include "base/common.h"
#include "base/job.h"
#include "format/loader.h"
#include "train/data.h"
#include "db/db.h"
#include "onebit/open.h"
#include "onebit/student.h"
#include "ui/table.h"
#include "db/train_db.h"

typedef struct {
    Job *job;
    char *path, *tokarg;
    char tokpath[4096];
    Model *m;
    Tokenizer *t;
    char sha[65];
    char err[OB_ERRLEN];
} LoadJob;

typedef struct {
    LoadJob *loading;
    UiTable proj;
    UiTable recent;   /* recent teachers: the teachers of the run store's runs, newest first */
    int show_recent;
    int started;
} ModelScr;

static ModelScr *state(App *a) { return app_state(a, &ui_scr_model); }
static const UiColumn recent_cols[] = {{"recent teacher (Enter loads, Esc closes)", 0, 0}, {"last run", 16, 0}};
static const UiColumn proj_cols[] = {
    {"projection", 10, 0}, {"out x in", 12, 1}, {"layers", 6, 1}, {"params", 9, 1}, {"share", 6, 1}, {"1-bit bpw", 9, 1}, {"", 0, 0},
};
#define NCOLS ((int)(sizeof proj_cols / sizeof proj_cols[0]))

/* the loader the CLI uses too (open_teacher: every teacher format, an
 * embedded tokenizer, the same lookup rules); its error message goes to
 * stderr, which the workbench shows in the message line and the Log */
static int load_main(Job *job, void *arg)
{
    (void)job;
    LoadJob *j = arg;
    j->m = ob_calloc(1, sizeof(Model));
    j->t = ob_calloc(1, sizeof(Tokenizer));
    int rc = -1;
    char e2[OB_ERRLEN];
    int embedded = 0;
    if (open_teacher(j->path, j->tokarg, j->m, j->t, &embedded, e2) == 0) {
        char *kp = embedded ? NULL : open_resolve_tokenizer(j->tokarg, j->path, j->m->cfg.vocab_size, e2);
        snprintf(j->tokpath, sizeof j->tokpath, "%s", kp ? kp : "(inside the teacher)");
        free(kp);
        rc = 0;
        if (loader_fingerprint(j->path, j->sha, NULL, e2)) { /* not recorded in the run store */
            j->sha[0] = 0;
            fprintf(stderr, "%s\n", e2);
        }
    } else {
        fprintf(stderr, "error: %s\n", e2);
        ob_seterr(j->err, "cannot load the teacher %s", j->path);
    }
    return rc;
}

static void start_load(App *a, const char *path)
{
    ModelScr *M = state(a);
    if (M->loading) { app_msg(a, 1, "a teacher is already loading"); return; }
    if (a->teacher_users) { app_msg(a, 1, "stop the jobs that use the teacher first (generation, statistics)"); return; }
    LoadJob *j = ob_calloc(1, sizeof *j);
    j->path = ob_strdup(path);
    j->tokarg = a->opt.tokenizer ? ob_strdup(a->opt.tokenizer) : NULL;
    char err[OB_ERRLEN];
    JobSpec js = {.name = "teacher load", .id = app_new_id(a), .ring = &a->ring, .fn = load_main, .arg = j, .end_event = 1};
    if (job_start(&j->job, &js, err)) {
        app_msg(a, 1, "%s: %s", path, err);
        free(j->path);
        free(j->tokarg);
        free(j);
        return;
    }
    M->loading = j;
    app_msg(a, 0, "loading %s ...", path);
}

static void fill_table(App *a)
{
    ModelScr *M = state(a);
    ui_table_clear(&M->proj);
    if (!a->teacher) return;
    const ModelConfig *c = &a->teacher->cfg;
    double total = (double)model_count_params(c);
    for (int k = 0; k < LIN_PER_LAYER; k++) {
        const Linear *L = &a->teacher->lin[k];
        double m = L->out, n = L->in, p = m * n * c->n_layers, bpw = 1 + 16 * (m + n) / (m * n);
        int r = ui_table_add(&M->proj);
        ui_table_set(&M->proj, r, 0, model_lin_names[k], NAN);
        ui_table_setf(&M->proj, r, 1, m * n, "%d x %d", L->out, L->in);
        ui_table_setf(&M->proj, r, 2, c->n_layers, "%d", c->n_layers);
        char b[32];
        ui_table_set(&M->proj, r, 3, ui_fmt_num(p, b, sizeof b), p);
        ui_table_setf(&M->proj, r, 4, p / total, "%.1f%%", 100 * p / total);
        ui_table_setf(&M->proj, r, 5, bpw, "%.3f", bpw);
    }
    ui_table_sort(&M->proj, M->proj.sort_col, M->proj.sort_desc);
}

static void model_event(App *a, const Event *ev)
{
    ModelScr *M = state(a);
    if (!M->loading || ev->run_id != job_id(M->loading->job) || ev->kind != EV_STATUS) return;
    LoadJob *j = M->loading;
    int rc = job_join(j->job);
    job_free(j->job);
    M->loading = NULL;
    if (rc == 0) {
        if (app_set_teacher(a, j->m, j->t, j->path, j->tokpath)) {
            app_msg(a, 1, "%s: not installed: jobs are using the current teacher", j->path);
            model_free(j->m);
            tok_free(j->t);
            free(j->m);
            free(j->t);
        } else {
            const ModelConfig *c = &a->teacher->cfg;
            snprintf(a->teacher_sha, sizeof a->teacher_sha, "%s", j->sha);
            a->teacher_id = 0;
            if (a->db && !a->db_ro && a->teacher_sha[0]) { /* the teacher record of train --db and inspect --db */
                char err[OB_ERRLEN];
                a->teacher_id = train_db_teacher(a->db, j->path, j->sha, c, err);
                if (a->teacher_id <= 0) { a->teacher_id = 0; app_msg(a, 1, "run store: %s", err); }
            }
            app_msg(a, 0, "loaded %s: dim %d, %d layers, vocab %d", j->path, c->dim, c->n_layers, c->vocab_size);
            fill_table(a);
            for (int i = 0; i < a->nscreens; i++) /* screens that follow the teacher (Layers) */
                if (a->screens[i]->teacher) a->screens[i]->teacher(a);
        }
    } else {
        app_msg(a, 1, "error: %s", j->err);
        free(j->m);
        free(j->t);
    }
    free(j->path);
    free(j->tokarg);
    free(j);
    app_dirty(a);
}

static void open_recent(App *a)
{
    ModelScr *M = state(a);
    if (!a->db) { app_msg(a, 1, "no run store"); return; }
    DbRun *runs;
    int n;
    char err[OB_ERRLEN];
    if (db_run_list(a->db, &runs, &n, err)) { app_msg(a, 1, "run store: %s", err); return; }
    ui_table_clear(&M->recent);
    for (int i = 0; i < n; i++) {
        const char *tp = runs[i].teacher_path;
        if (!tp || !tp[0]) continue;
        int dup = 0;
        for (int r = 0; r < M->recent.nrows && !dup; r++) dup = !strcmp(ui_table_get(&M->recent, r, 0), tp);
        if (dup) continue;
        int r = ui_table_add(&M->recent);
        ui_table_set(&M->recent, r, 0, tp, NAN);
        char b[32];
        time_t tt = (time_t)runs[i].updated;
        struct tm tm;
        localtime_r(&tt, &tm);
        strftime(b, sizeof b, "%Y-%m-%d %H:%M", &tm);
        ui_table_set(&M->recent, r, 1, b, runs[i].updated);
    }
    db_run_list_free(runs, n);
    if (M->recent.nrows == 0) { app_msg(a, 0, "no teacher in the run store yet (they are recorded with runs)"); return; }
    M->show_recent = 1;
}

static void prompt_done(App *a, const char *text)
{
    if (!text[0]) return;
    start_load(a, text);
}

static void size_line(UiGrid *g, int y, const char *what, double bytes, double params)
{
    char b[32];
    ui_grid_printf(g, 2, y, g->w - 4, UI_A_NORMAL, "%-28s %10sB   %6.3f bits/weight", what, ui_fmt_num(bytes, b, sizeof b),
                   params > 0 ? bytes * 8 / params : 0);
}

static void model_draw(App *a, UiGrid *g)
{
    ModelScr *M = state(a);
    int y = 1;
    if (M->loading) ui_grid_printf(g, 2, y++, g->w - 4, UI_A_BOLD, "Loading %s ...", M->loading->path);
    if (!a->teacher) {
        ui_grid_text(g, 2, y + 1, g->w - 4, UI_A_NORMAL, "No teacher loaded. Press o to open one, r for a recent one:");
        ui_grid_text(g, 2, y + 2, g->w - 4, UI_A_DIM,
                     "a llama2.c .bin, a GGUF or a Hugging Face directory (man onebit-tui)");
        if (M->show_recent) ui_table_render(&M->recent, g, 2, y + 4, g->w - 4, g->h - y - 4, 1);
        return;
    }
    const ModelConfig *c = &a->teacher->cfg;
    ui_grid_text(g, 2, y, 12, UI_A_BOLD, "Teacher");
    ui_grid_text(g, 14, y++, g->w - 16, UI_A_NORMAL, a->teacher_path);
    ui_grid_text(g, 2, y, 12, UI_A_BOLD, "Tokenizer");
    ui_grid_printf(g, 14, y++, g->w - 16, UI_A_NORMAL, "%s (%d tokens)", a->tok_path, a->tok->vocab_size);
    y++;
    ui_grid_text(g, 2, y++, g->w - 4, UI_A_BOLD, "Config");
    ui_grid_printf(g, 4, y++, g->w - 6, UI_A_NORMAL, "dim %d   hidden %d   layers %d   heads %d   kv heads %d   head dim %d",
                   c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim);
    ui_grid_printf(g, 4, y++, g->w - 6, UI_A_NORMAL, "vocab %d   context %d   rope theta %g   norm eps %g   %s classifier",
                   c->vocab_size, c->seq_len, c->rope_theta, c->norm_eps, c->shared_classifier ? "shared" : "separate");
    y++;
    /* counts and sizes: 1-bit projections at 1 bit + 16-bit g,h; the rest FP16 */
    double total = (double)model_count_params(c), lin = 0, onebit_bits = 0;
    for (int k = 0; k < LIN_PER_LAYER; k++) {
        double m = a->teacher->lin[k].out, n = a->teacher->lin[k].in;
        lin += m * n * c->n_layers;
        onebit_bits += (m * n + 16 * (m + n)) * c->n_layers;
    }
    double rest = total - lin;
    char b1[32], b2[32], b3[32];
    ui_grid_text(g, 2, y++, g->w - 4, UI_A_BOLD, "Parameters");
    ui_grid_printf(g, 4, y++, g->w - 6, UI_A_NORMAL, "total %s   in projections %s (%.1f%%)   embeddings, head, norms %s",
                   ui_fmt_num(total, b1, sizeof b1), ui_fmt_num(lin, b2, sizeof b2), 100 * lin / total,
                   ui_fmt_num(rest, b3, sizeof b3));
    y++;
    ui_grid_text(g, 2, y++, g->w - 4, UI_A_BOLD, "Size");
    size_line(g, y++, "FP32", total * 4, total);
    size_line(g, y++, "FP16", total * 2, total);
    size_line(g, y++, "1-bit projections, rest FP16", (double)student_onebit_bytes(c), total); /* as inspect counts */
    size_line(g, y++, "projections alone: 1-bit", onebit_bits / 8, lin);
    y++;
    if (y < g->h - 2) ui_table_render(&M->proj, g, 2, y, g->w - 4, g->h - y, !M->show_recent);
    if (M->show_recent) { /* a box over the lower half */
        int top = g->h / 2;
        for (int r = top - 1; r < g->h; r++) ui_grid_hline(g, 0, r, g->w, ' ', UI_A_NORMAL);
        ui_grid_hline(g, 0, top - 1, g->w, g->ascii ? '-' : 0x2500, UI_A_DIM);
        ui_table_render(&M->recent, g, 2, top, g->w - 4, g->h - top, 1);
    }
}

static int model_key(App *a, const UiKey *k, int key)
{
    ModelScr *M = state(a);
    if (!k) return 0;
    if (M->show_recent) {
        if (k->action == A_ESCAPE) { M->show_recent = 0; return 1; }
        if (k->action == A_FOCUS) {
            int r = ui_table_selected(&M->recent);
            M->show_recent = 0;
            if (r >= 0) start_load(a, ui_table_get(&M->recent, r, 0));
            return 1;
        }
        return ui_table_nav(&M->recent, k->action);
    }
    switch (k->action) {
    case A_RECENT: open_recent(a); return 1;
    case A_OPEN: app_prompt(a, "Teacher file", a->teacher ? a->teacher_path : "", 1, prompt_done); return 1;
    default: return ui_table_keys(&M->proj, k->action, (NCOLS - 1));
    }
}

static void model_enter(App *a)
{
    ModelScr *M = state(a);
    if (M->started) return;
    M->started = 1;
    ui_table_init(&M->proj, proj_cols, NCOLS);
    ui_table_init(&M->recent, recent_cols, 2);
    char err[OB_ERRLEN];
    char *p = open_resolve_teacher(a->opt.teacher, err);
    if (p) start_load(a, p);
    else app_msg(a, 0, "%s", err);
    free(p);
}

static void model_status(App *a, char *buf, int n)
{
    if (state(a)->loading) snprintf(buf, n, "loading teacher ");
}

static void model_fini(App *a)
{
    ModelScr *M = state(a);
    if (M->loading) {
        if (job_join(M->loading->job) == 0) { model_free(M->loading->m); tok_free(M->loading->t); }
        job_free(M->loading->job);
        free(M->loading->m);
        free(M->loading->t);
        free(M->loading->path);
        free(M->loading->tokarg);
        free(M->loading);
        M->loading = NULL;
    }
    ui_table_free(&M->proj);
    ui_table_free(&M->recent);
}

const UiScreen ui_scr_model = {
    .name = "Model", .number = 1, .ctx = UI_CTX_MODEL, .list = 1,
    .draw = model_draw, .key = model_key, .event = model_event,
    .status = model_status, .enter = model_enter, .fini = model_fini, .state_size = sizeof(ModelScr),
};
