/* scr_train.c -- screen 3, Train: a form with the trainer's defaults
 * (trainer_config_default) starts a QAT run in the background; more runs
 * wait in a queue and start one after the other. The data is read and
 * tokenized in a worker thread, then trainer_start runs the training thread,
 * whose events (EV_STEP/EV_EVAL/EV_CKPT/EV_STATUS/EV_LOG) reach the UI
 * through the app's ring and are forwarded to a DbWriter, so the run, its
 * curves and checkpoints land in the run store. Live charts: total, KL and
 * MSE loss (log scale and smoothing toggles), learning rate, held-out
 * perplexity; step, tokens/s, ETA; pause, resume, stop. The run store
 * side is train_db.h, as for `onebit-tui train --db`: the same
 * hyperparameter record, the same resume by run id. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "app.h"
#include "chart.h"
#include "common.h"
#include "data.h"
#include "db.h"
#include "qat.h"
#include "train_db.h"
#include "trainer.h"

typedef struct {
    TrainConfig cfg;
    char name[64], data[4096], split[64], out[4096], ckpt[4096], resume[4096];
    int64_t run_id;              /* 0: a new run; else the run to resume */
} QItem;

typedef struct {
    pthread_t th;
    int64_t id;
    EventRing *ring;
    const Model *m;
    const Tokenizer *t;
    QItem it;
    DataSet data;
    int rc;
    char err[OB_ERRLEN];
} Prep;

/* growing arrays of one run's curves */
typedef struct {
    double *step, *loss, *kl, *mse, *lr;
    int n, cap;
    double *estep, *eppl;        /* the student's held-out perplexity */
    int ne, ecap;
    double teacher_ppl, xnor_ppl, svid_ppl;  /* reference lines (NAN: not yet) */
    double ref_x[2], ref_t[2], ref_s[2];     /* drawn across the chart */
} Curves;

static struct {
    QItem *queue;
    int nq, capq;
    Prep *prep;                  /* reading the data of the next run */
    /* the active run */
    Trainer *tr;
    DataSet data;
    TrainDb *tdb;                /* the run store's record of the run (NULL: none) */
    QItem it;
    int64_t run_id;
    RunStatus status;
    int paused;
    char status_text[1024];
    Event last;                  /* the latest EV_STEP */
    Curves c;
    int logy, smooth;
    /* form defaults remembered between runs */
    char last_data[4096], last_split[64];
    long last_steps, last_seq, last_batch;
    int inited;
} R;

/* ---- curves ------------------------------------------------------------------ */
static void grow(double **p, int n, int cap)
{
    double *q = ob_malloc(sizeof(double) * cap);
    if (*p) memcpy(q, *p, sizeof(double) * n);
    free(*p);
    *p = q;
}

static void curves_add_step(Curves *c, const Event *e)
{
    if (c->n == c->cap) {
        int nc = c->cap ? c->cap * 2 : 256;
        grow(&c->step, c->n, nc); grow(&c->loss, c->n, nc); grow(&c->kl, c->n, nc);
        grow(&c->mse, c->n, nc); grow(&c->lr, c->n, nc);
        c->cap = nc;
    }
    c->step[c->n] = e->step;
    c->loss[c->n] = e->loss;
    c->kl[c->n] = e->kl;
    c->mse[c->n] = e->mse;
    c->lr[c->n] = e->lr;
    c->n++;
}

static void curves_add_eval(Curves *c, const Event *e)
{
    /* the trainer labels its evaluations: teacher, ptq-xnor, ptq-svid, student[-partial] */
    if (!strcmp(e->text, "teacher")) { c->teacher_ppl = e->eval_ppl; return; }
    if (!strcmp(e->text, "ptq-xnor")) { c->xnor_ppl = e->eval_ppl; return; }
    if (!strcmp(e->text, "ptq-svid")) c->svid_ppl = e->eval_ppl; /* also the student at step 0 */
    if (c->ne == c->ecap) {
        int nc = c->ecap ? c->ecap * 2 : 32;
        grow(&c->estep, c->ne, nc); grow(&c->eppl, c->ne, nc);
        c->ecap = nc;
    }
    c->estep[c->ne] = e->step;
    c->eppl[c->ne] = e->eval_ppl;
    c->ne++;
}

static void curves_free(Curves *c)
{
    free(c->step); free(c->loss); free(c->kl); free(c->mse); free(c->lr); free(c->estep); free(c->eppl);
    memset(c, 0, sizeof *c);
    c->teacher_ppl = c->xnor_ppl = c->svid_ppl = NAN;
}

/* ---- starting runs -------------------------------------------------------------- */
static void *prep_main(void *arg)
{
    Prep *p = arg;
    char *text = NULL;
    size_t len;
    p->rc = -1;
    if (ob_read_file(p->it.data, &text, &len, p->err) == 0) {
        char e2[OB_ERRLEN];
        if (data_from_text(&p->data, p->t, text, p->it.split[0] ? p->it.split : NULL, p->it.cfg.seq_len,
                           p->m->cfg.seq_len, p->m->cfg.vocab_size, e2) == 0)
            p->rc = 0;
        else ob_seterr(p->err, "%s: %s", p->it.data, e2);
    }
    free(text);
    Event ev = {.kind = EV_STATUS, .run_id = p->id, .status = p->rc ? RUN_FAILED : RUN_FINISHED};
    evring_push(p->ring, &ev);
    return NULL;
}

static void start_next(App *a)
{
    if (R.prep || R.tr || R.nq == 0) return;
    if (!a->teacher) { app_msg(a, 1, "the queued run waits for a teacher (screen 1)"); return; }
    Prep *p = ob_calloc(1, sizeof *p);
    p->id = app_new_id(a);
    p->ring = &a->ring;
    p->m = a->teacher;
    p->t = a->tok;
    p->it = R.queue[0];
    memmove(R.queue, R.queue + 1, sizeof(QItem) * (R.nq - 1));
    R.nq--;
    if (pthread_create(&p->th, NULL, prep_main, p)) {
        app_msg(a, 1, "cannot start a thread to read %s", p->it.data);
        free(p);
        return;
    }
    a->teacher_users++;
    R.prep = p;
    snprintf(R.status_text, sizeof R.status_text, "reading %.900s", p->it.data);
}

static void prep_done(App *a)
{
    Prep *p = R.prep;
    pthread_join(p->th, NULL);
    R.prep = NULL;
    a->teacher_users--;
    if (p->rc) {
        app_msg(a, 1, "run not started: %s", p->err);
        snprintf(R.status_text, sizeof R.status_text, "not started: %.900s", p->err);
        free(p);
        start_next(a);
        return;
    }
    char err[OB_ERRLEN];
    R.it = p->it;
    R.data = p->data;
    free(p);
    QItem *it = &R.it;
    if (!it->out[0]) { /* students/<name>-<time>.onebit beside the run store */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", a->db_path[0] ? a->db_path : "./runs.db");
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
        char sub[4200], stamp[32];
        snprintf(sub, sizeof sub, "%s/students", dir);
        mkdir(sub, 0777);
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        snprintf(it->out, sizeof it->out, "%.4000s/%.40s-%s.onebit", sub, it->name[0] ? it->name : "run", stamp);
    }
    if (!it->ckpt[0]) snprintf(it->ckpt, sizeof it->ckpt, "%.4080s.ckpt", it->out);
    it->cfg.out_path = it->out; /* pointers into R.it, which lives as long as the run */
    it->cfg.ckpt_path = it->ckpt;
    it->cfg.resume_path = NULL;
    R.tdb = NULL;
    if (a->db_path[0]) {
        TrainDbArgs args = {.teacher = a->teacher_path, .tokenizer = a->opt.tokenizer, .data = it->data,
                            .split = it->split[0] ? it->split : NULL};
        char rid[32];
        snprintf(rid, sizeof rid, "%lld", (long long)it->run_id);
        if (train_db_begin(&R.tdb, a->db_path, it->name[0] ? it->name : NULL, it->run_id ? rid : NULL, &args, &it->cfg,
                           a->teacher_sha, &a->teacher->cfg, err)) {
            app_msg(a, 1, "run not started: %s", err);
            data_free(&R.data);
            start_next(a);
            return;
        }
        if (train_db_attach(R.tdb, &a->ring, err)) {
            app_msg(a, 1, "run not started: %s", err);
            char e2[OB_ERRLEN];
            train_db_end(R.tdb, 1, e2);
            R.tdb = NULL;
            data_free(&R.data);
            start_next(a);
            return;
        }
    } else {
        it->cfg.run_id = app_new_id(a); /* not recorded, but the events still need an owner */
        app_msg(a, 1, "no run store: this run is not recorded");
    }
    int64_t run_id = it->cfg.run_id;
    curves_free(&R.c);
    memset(&R.last, 0, sizeof R.last);
    if (trainer_start(&R.tr, &R.it.cfg, a->teacher, a->tok, &R.data, a->teacher_sha, &a->ring, err)) {
        app_msg(a, 1, "run not started: %s", err);
        char e2[OB_ERRLEN];
        if (R.tdb && train_db_end(R.tdb, 1, e2)) app_msg(a, 1, "run store: %s", e2);
        R.tdb = NULL;
        data_free(&R.data);
        R.tr = NULL;
        start_next(a);
        return;
    }
    a->teacher_users++;
    R.run_id = run_id;
    R.status = RUN_RUNNING;
    R.paused = 0;
    snprintf(R.status_text, sizeof R.status_text, "starting");
    app_msg(a, 0, "run %lld started: %ld steps, student -> %s", (long long)run_id, R.it.cfg.steps, R.it.out);
}

static void run_ended(App *a)
{
    TrainSummary s;
    int rc = trainer_join(R.tr, &s);
    trainer_free(R.tr);
    R.tr = NULL;
    a->teacher_users--;
    char err[OB_ERRLEN];
    if (R.tdb && train_db_end(R.tdb, rc ? 1 : 0, err)) app_msg(a, 1, "run store: %s", err);
    R.tdb = NULL;
    data_free(&R.data);
    R.status = rc ? RUN_FAILED : s.status;
    if (rc) app_msg(a, 1, "run %lld failed: %s", (long long)R.run_id, s.message);
    else if (s.status == RUN_FINISHED)
        app_msg(a, 0, "run %lld finished: student ppl %.3f (teacher %.3f, PTQ SVID %.3f); wrote %s", (long long)R.run_id,
                exp(s.student_nll), exp(s.teacher_nll), exp(s.svid_nll), R.it.out);
    else app_msg(a, 0, "run %lld stopped at step %ld; resume it from the Runs screen", (long long)R.run_id, s.steps_done);
    snprintf(R.status_text, sizeof R.status_text, "%.900s", s.message);
    ui_runs_refresh(a);
    start_next(a);
}

static void enqueue(App *a, const QItem *q)
{
    if (R.nq == R.capq) {
        R.capq = R.capq ? R.capq * 2 : 8;
        QItem *nq = ob_malloc(sizeof(QItem) * R.capq);
        if (R.queue) memcpy(nq, R.queue, sizeof(QItem) * R.nq);
        free(R.queue);
        R.queue = nq;
    }
    R.queue[R.nq++] = *q;
    if (R.tr || R.prep) app_msg(a, 0, "queued: %d run(s) waiting", R.nq);
    start_next(a);
}

/* ---- the form --------------------------------------------------------------------- */
enum { F_NAME, F_DATA, F_SPLIT, F_STEPS, F_SEQ, F_BATCH, F_LR, F_WARMUP, F_EVAL, F_EVALWIN, F_CKPT, F_INIT, F_OUT };

static void form_done(App *a, UiForm *f, int ok)
{
    if (!ok) { ui_form_free(f); free(f); return; }
    QItem q;
    memset(&q, 0, sizeof q);
    trainer_config_default(&q.cfg);
    double v;
    snprintf(q.name, sizeof q.name, "%s", ui_form_text(f, F_NAME));
    snprintf(q.data, sizeof q.data, "%s", ui_form_text(f, F_DATA));
    snprintf(q.split, sizeof q.split, "%s", ui_form_text(f, F_SPLIT));
    ui_form_num(f, F_STEPS, &v); q.cfg.steps = (long)v;
    ui_form_num(f, F_SEQ, &v); q.cfg.seq_len = (int)v;
    ui_form_num(f, F_BATCH, &v); q.cfg.batch = (int)v;
    ui_form_num(f, F_LR, &v); q.cfg.lr = (float)v;
    ui_form_num(f, F_WARMUP, &v); q.cfg.warmup = (long)v;
    ui_form_num(f, F_EVAL, &v); q.cfg.eval_every = (long)v;
    ui_form_num(f, F_EVALWIN, &v); q.cfg.max_eval_windows = (long)v;
    ui_form_num(f, F_CKPT, &v); q.cfg.ckpt_every = (long)v;
    const char *init = ui_form_text(f, F_INIT);
    snprintf(q.out, sizeof q.out, "%s", ui_form_text(f, F_OUT));
    char err[OB_ERRLEN];
    const char *bad = NULL;
    if (!q.data[0]) bad = "give a training text file";
    else if (strcmp(init, "nmf") && strcmp(init, "svd")) bad = "init must be nmf or svd";
    else if (trainer_config_check(&q.cfg, a->teacher ? &a->teacher->cfg : NULL, err)) bad = err;
    if (bad) { /* back to the form with the message */
        snprintf(f->err, sizeof f->err, "%.250s", bad);
        app_form(a, f, form_done);
        return;
    }
    q.cfg.init = !strcmp(init, "svd") ? QAT_INIT_SVD : QAT_INIT_NMF;
    snprintf(R.last_data, sizeof R.last_data, "%s", q.data);
    snprintf(R.last_split, sizeof R.last_split, "%s", q.split);
    R.last_steps = q.cfg.steps;
    R.last_seq = q.cfg.seq_len;
    R.last_batch = q.cfg.batch;
    ui_form_free(f);
    free(f);
    enqueue(a, &q);
}

static void open_form(App *a)
{
    if (!a->teacher) { app_msg(a, 1, "load a teacher first (screen 1)"); return; }
    TrainConfig d;
    trainer_config_default(&d);
    int ctx = a->teacher->cfg.seq_len;
    UiForm *f = ob_malloc(sizeof *f);
    ui_form_init(f, "New training run");
    char b[16][64];
    snprintf(b[0], 64, "%ld", R.last_steps ? R.last_steps : 200);
    snprintf(b[1], 64, "%ld", R.last_seq ? R.last_seq : (ctx < 256 ? ctx : 256));
    snprintf(b[2], 64, "%ld", R.last_batch ? R.last_batch : 4);
    snprintf(b[3], 64, "%g", (double)d.lr);
    snprintf(b[4], 64, "%ld", d.warmup);
    ui_form_add(f, "name", UI_F_TEXT, "", 0, 0, "unique name of the run; empty: run-<id>");
    ui_form_add(f, "data file", UI_F_PATH, R.last_data, 0, 0, "training text (Tab completes); 5% is held out");
    ui_form_add(f, "split", UI_F_TEXT, R.last_split, 0, 0, "document separator, e.g. <|endoftext|>; empty: one stream");
    ui_form_add(f, "steps", UI_F_INT, b[0], 1, 1e9, "optimizer steps");
    ui_form_add(f, "seq len", UI_F_INT, b[1], 2, ctx, "tokens per sequence, at most the model's context");
    ui_form_add(f, "batch", UI_F_INT, b[2], 1, 65536, "sequences per step");
    ui_form_add(f, "lr", UI_F_NUM, b[3], 1e-9, 10, "peak learning rate (cosine schedule, floor lr/10)");
    ui_form_add(f, "warmup", UI_F_INT, b[4], -1, 1e9, "warmup steps; -1: steps/20");
    ui_form_add(f, "eval every", UI_F_INT, "50", 0, 1e9, "held-out perplexity every K steps; 0: only at the end");
    ui_form_add(f, "eval windows", UI_F_INT, "16", 0, 1e9, "held-out windows per periodic evaluation; 0: all");
    ui_form_add(f, "ckpt every", UI_F_INT, "100", 0, 1e9, "checkpoint every K steps; 0: only at stop/end");
    ui_form_add(f, "init", UI_F_TEXT, "nmf", 0, 0, "SVID initialisation: nmf or svd");
    ui_form_add(f, "student file", UI_F_PATH, "", 0, 0, "the .onebit written at the end; empty: students/<name>-<time>.onebit");
    app_form(a, f, form_done);
}

/* Runs screen: resume a stopped/interrupted run from its latest checkpoint */
void ui_train_queue_resume(App *a, int64_t run_id)
{
    char err[OB_ERRLEN], v[4096];
    if (!a->db) { app_msg(a, 1, "no run store"); return; }
    if (R.tr && R.run_id == run_id) { app_msg(a, 1, "run %lld is training", (long long)run_id); return; }
    for (int i = 0; i < R.nq; i++)
        if (R.queue[i].run_id == run_id) { app_msg(a, 1, "run %lld is queued already", (long long)run_id); return; }
    QItem q;
    memset(&q, 0, sizeof q);
    trainer_config_default(&q.cfg);
    q.run_id = run_id;
    /* the options `train --db` recorded (train_db.h), by option name */
#define HP(key) (db_run_hparam(a->db, run_id, key, v, sizeof v, err) == 1)
    if (!HP("data")) { app_msg(a, 1, "run %lld: no training text recorded (self-generated data: resume it with 'train --db --resume')", (long long)run_id); return; }
    snprintf(q.data, sizeof q.data, "%s", v);
    if (HP("split")) snprintf(q.split, sizeof q.split, "%.63s", v);
    if (HP("out")) snprintf(q.out, sizeof q.out, "%s", v);
    if (HP("ckpt")) snprintf(q.ckpt, sizeof q.ckpt, "%s", v);
    if (HP("steps")) q.cfg.steps = atol(v);
    if (HP("seq-len")) q.cfg.seq_len = atoi(v);
    if (HP("batch")) q.cfg.batch = atoi(v);
    if (HP("accum")) q.cfg.accum = atoi(v);
    if (HP("lr")) q.cfg.lr = (float)atof(v);
    if (HP("lr-min")) q.cfg.lr_min = (float)atof(v);
    if (HP("warmup")) q.cfg.warmup = atol(v);
    if (HP("alpha")) q.cfg.alpha = (float)atof(v);
    if (HP("kl-scale")) q.cfg.kl_scale = (float)atof(v);
    if (HP("wd")) q.cfg.wd = (float)atof(v);
    if (HP("clip")) q.cfg.clip = (float)atof(v);
    if (HP("init")) q.cfg.init = !strcmp(v, "svd") ? QAT_INIT_SVD : QAT_INIT_NMF;
    if (HP("seed")) q.cfg.seed = strtoull(v, NULL, 10);
    if (HP("threads")) q.cfg.threads = atoi(v);
    if (HP("eval-every")) q.cfg.eval_every = atol(v);
    if (HP("eval-windows")) q.cfg.max_eval_windows = atol(v);
    if (HP("ckpt-every")) q.cfg.ckpt_every = atol(v);
    if (HP("log-every")) q.cfg.log_every = atol(v);
#undef HP
    DbRun r;
    if (db_run_get(a->db, run_id, &r, err) == 0) {
        snprintf(q.name, sizeof q.name, "%s", r.name);
        db_run_free(&r);
    }
    if (trainer_config_check(&q.cfg, a->teacher ? &a->teacher->cfg : NULL, err)) {
        app_msg(a, 1, "run %lld cannot resume: %s", (long long)run_id, err);
        return;
    }
    enqueue(a, &q);
    app_switch(a, 3);
}

/* ---- drawing ------------------------------------------------------------------------ */
static void progress_bar(UiGrid *g, int x, int y, int w, double frac)
{
    if (w < 3) return;
    if (frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    int units = (int)(frac * w * 8 + 0.5);
    static const uint32_t part[8] = {' ', 0x258f, 0x258e, 0x258d, 0x258c, 0x258b, 0x258a, 0x2589};
    for (int i = 0; i < w; i++) {
        int u = units - i * 8;
        uint32_t ch = u >= 8 ? (g->ascii ? '#' : 0x2588) : u > 0 ? (g->ascii ? '#' : part[u]) : (g->ascii ? '.' : 0x2591);
        ui_grid_put(g, x + i, y, ch, u > 0 ? UI_A_OK : UI_A_DIM);
    }
}

static void train_draw(App *a, UiGrid *g)
{
    int y = 0;
    if (!R.tr && !R.prep && !R.it.cfg.steps && R.nq == 0) { /* no run yet in this session */
        ui_grid_text(g, 2, 1, g->w - 4, UI_A_NORMAL, "No run yet. Press n for a new training run (a form with the trainer's defaults).");
        if (R.status_text[0]) ui_grid_text(g, 2, 3, g->w - 4, UI_A_DIM, R.status_text);
        return;
    }
    const Event *e = &R.last;
    char el[32], eta[32];
    ob_fmt_duration(el, sizeof el, e->elapsed);
    ob_fmt_duration(eta, sizeof eta, e->eta);
    const char *st = R.prep ? "reading data" : R.tr ? (R.paused ? "paused" : run_status_name(R.status)) : run_status_name(R.status);
    ui_grid_printf(g, 0, y++, g->w, UI_A_BOLD, "run %lld %s  [%s]  step %d/%ld  %.0f tokens/s  elapsed %s  ETA %s",
                   (long long)(R.run_id < ((int64_t)1 << 40) ? R.run_id : 0), R.it.name, st, e->step, R.it.cfg.steps,
                   e->tokens_per_s, el, eta);
    int bw = g->w - 2;
    progress_bar(g, 0, y++, bw, R.it.cfg.steps ? (double)e->step / R.it.cfg.steps : 0);
    ui_grid_printf(g, 0, y++, g->w, UI_A_DIM, "loss %.4f  kl %.4f  mse %.4f  lr %.2e  grad norm %.3f   %s", e->loss, e->kl,
                   e->mse, e->lr, e->grad_norm, R.status_text);
    if (isfinite(R.c.teacher_ppl)) {
        char sp[48] = "-";
        if (R.c.ne) snprintf(sp, sizeof sp, "%.3f (step %.0f)", R.c.eppl[R.c.ne - 1], R.c.estep[R.c.ne - 1]);
        ui_grid_printf(g, 0, y++, g->w, UI_A_DIM, "held-out ppl: teacher %.3f   PTQ XNOR %.3f   PTQ SVID %.3f   student %s",
                       R.c.teacher_ppl, R.c.xnor_ppl, R.c.svid_ppl, sp);
    }
    if (R.nq) {
        char q[256] = "";
        size_t k = 0;
        for (int i = 0; i < R.nq && k < sizeof q - 40; i++)
            k += (size_t)snprintf(q + k, sizeof q - k, "%s%s", i ? ", " : "", R.queue[i].name[0] ? R.queue[i].name : R.queue[i].data);
        ui_grid_printf(g, 0, y++, g->w, UI_A_DIM, "queued (%d): %s", R.nq, q);
    }
    int ch = g->h - y;
    if (ch < 8) return;
    int lh = ch * 3 / 5, rh = ch - lh, lw = g->w * 3 / 5, rw = g->w - lw - 1;
    UiChart c = {.title = "loss", .xlabel = "step", .logy = R.logy, .smooth = R.smooth ? 0.9 : 0};
    c.series[c.nseries++] = (UiSeries){"total", R.c.step, R.c.loss, R.c.n, 0};
    ui_chart_render(&c, g, 0, y, lw, lh);
    UiChart k = {.title = "KL / MSE", .xlabel = "step", .logy = R.logy, .smooth = R.smooth ? 0.9 : 0};
    k.series[k.nseries++] = (UiSeries){"KL", R.c.step, R.c.kl, R.c.n, 0};
    k.series[k.nseries++] = (UiSeries){"MSE", R.c.step, R.c.mse, R.c.n, 0};
    ui_chart_render(&k, g, lw + 1, y, rw, lh);
    UiChart l = {.title = "learning rate", .xlabel = "step"};
    l.series[l.nseries++] = (UiSeries){NULL, R.c.step, R.c.lr, R.c.n, 0};
    ui_chart_render(&l, g, 0, y + lh, lw, rh);
    UiChart p = {.title = "held-out ppl", .xlabel = "step", .logy = 1}; /* spans decades: always log */
    p.series[p.nseries++] = (UiSeries){"student", R.c.estep, R.c.eppl, R.c.ne, 1};
    if (isfinite(R.c.teacher_ppl) && R.c.ne > 0) { /* the teacher as a line across */
        R.c.ref_x[0] = 0;
        R.c.ref_x[1] = R.it.cfg.steps;
        R.c.ref_t[0] = R.c.ref_t[1] = R.c.teacher_ppl;
        p.series[p.nseries++] = (UiSeries){"teacher", R.c.ref_x, R.c.ref_t, 2, 0};
    }
    ui_chart_render(&p, g, lw + 1, y + lh, rw, rh);
}

/* ---- keys and events ------------------------------------------------------------------ */
static void stop_answer(App *a, int yes)
{
    if (yes && R.tr) {
        trainer_stop(R.tr);
        app_msg(a, 0, "stopping run %lld after this step (a checkpoint is written)", (long long)R.run_id);
    }
}

static int train_key(App *a, const UiKey *k, int key)
{
    if (!k) return 0;
    switch (k->action) {
    case A_NEW_RUN: open_form(a); return 1;
    case A_PAUSE:
        if (!R.tr) { app_msg(a, 1, "no run is training"); return 1; }
        if (R.paused) { trainer_resume(R.tr); R.paused = 0; app_msg(a, 0, "resumed"); }
        else { trainer_pause(R.tr); R.paused = 1; app_msg(a, 0, "pausing after this step"); }
        return 1;
    case A_STOP:
        if (!R.tr) { app_msg(a, 1, "no run is training"); return 1; }
        app_confirm(a, "Stop the run? It writes a checkpoint and can be resumed", stop_answer);
        return 1;
    case A_LOGSCALE: R.logy = !R.logy; return 1;
    case A_SMOOTH: R.smooth = !R.smooth; return 1;
    default: return 0;
    }
}

static void train_event(App *a, const Event *ev)
{
    if (R.prep && ev->run_id == R.prep->id && ev->kind == EV_STATUS) { prep_done(a); app_dirty(a); return; }
    if (!R.tr || ev->run_id != R.run_id) {
        if (ev->kind == EV_LOG && ev->run_id == R.run_id) app_log(a, "%s", ev->text); /* writer errors */
        return;
    }
    if (R.tdb) train_db_event(R.tdb, ev);
    switch (ev->kind) {
    case EV_STEP: R.last = *ev; curves_add_step(&R.c, ev); break;
    case EV_EVAL:
        curves_add_eval(&R.c, ev);
        app_log(a, "run %lld: held-out ppl %.3f at step %d", (long long)R.run_id, ev->eval_ppl, ev->step);
        break;
    case EV_CKPT: app_log(a, "run %lld: checkpoint at step %d: %s", (long long)R.run_id, ev->step, ev->text); break;
    case EV_LOG: app_log(a, "run %lld: %s", (long long)R.run_id, ev->text); break;
    case EV_STATUS:
        R.status = ev->status;
        R.paused = ev->status == RUN_PAUSED;
        snprintf(R.status_text, sizeof R.status_text, "%.900s", ev->text);
        app_log(a, "run %lld: [%s] %s", (long long)R.run_id, run_status_name(ev->status), ev->text);
        if (ev->status == RUN_FINISHED || ev->status == RUN_STOPPED || ev->status == RUN_FAILED) run_ended(a);
        break;
    default: break;
    }
    app_dirty(a);
}

static void train_status(App *a, char *buf, int n)
{
    if (R.prep) snprintf(buf, n, "run: reading data ");
    else if (R.tr) {
        char eta[32];
        ob_fmt_duration(eta, sizeof eta, R.last.eta);
        snprintf(buf, n, "run %lld: %s step %d/%ld ETA %s%s ", (long long)R.run_id, R.paused ? "paused" : "training",
                 R.last.step, R.it.cfg.steps, eta, R.nq ? " +queued" : "");
    }
}

static int train_busy(App *a) { return R.tr != NULL || R.prep != NULL; }

static void train_teacher(App *a) { start_next(a); }

static void train_fini(App *a)
{
    if (R.prep) {
        pthread_join(R.prep->th, NULL);
        data_free(&R.prep->data);
        free(R.prep);
        R.prep = NULL;
    }
    if (R.tr) { /* quitting: the run keeps its checkpoint */
        trainer_stop(R.tr);
        TrainSummary s;
        trainer_join(R.tr, &s);
        Event ev[64];
        int n;
        while ((n = evring_pop(&a->ring, ev, 64)) > 0)
            for (int i = 0; i < n; i++)
                if (R.tdb && ev[i].run_id == R.run_id) train_db_event(R.tdb, &ev[i]);
        trainer_free(R.tr);
        R.tr = NULL;
        data_free(&R.data);
        char err[OB_ERRLEN];
        if (R.tdb) train_db_end(R.tdb, 0, err);
        R.tdb = NULL;
    }
    curves_free(&R.c);
    free(R.queue);
    memset(&R, 0, sizeof R);
}

const UiScreen ui_scr_train = {
    .name = "Train", .number = 3, .ctx = UI_CTX_TRAIN,
    .draw = train_draw, .key = train_key, .event = train_event,
    .status = train_status, .busy = train_busy, .teacher = train_teacher, .fini = train_fini,
};
