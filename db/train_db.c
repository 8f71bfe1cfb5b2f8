/* db/train_db.c -- the run record of a training session (`train --db`, the
 * workbench): the run, resume by run id with the stored options read back
 * through the train option table, and the writer that stores the trainer's
 * events (see train_db.h). The session's owner thread calls it. */
#include "db/train_db.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "base/file.h"
#include "format/loader.h"
#include "format/trainer_state.h"
#include "db/db.h"
#include "base/opt.h"
#include "train/qat.h"

struct TrainDb {
    Db *db;
    DbWriter *w;
    int64_t run;
    char *out_path, *data_name;
    int ended;          /* a terminal EV_STATUS went to the writer */
    RunStatus last;
};

/* ---- a small JSON object writer ------------------------------------------------ */
typedef ObBuf Json;

static void jkey(Json *j, const char *k) { ob_buf_printf(j, "%s\"%s\":", j->n > 1 ? "," : "", k); }

static void jint(Json *j, const char *k, long long v) { jkey(j, k); ob_buf_printf(j, "%lld", v); }

static char *config_json(const ModelConfig *m)
{
    Json j = {0};
    ob_buf_printf(&j, "{");
    jint(&j, "dim", m->dim);
    jint(&j, "hidden_dim", m->hidden_dim);
    jint(&j, "n_layers", m->n_layers);
    jint(&j, "n_heads", m->n_heads);
    jint(&j, "n_kv_heads", m->n_kv_heads);
    jint(&j, "vocab_size", m->vocab_size);
    jint(&j, "seq_len", m->seq_len);
    ob_buf_printf(&j, "}");
    return j.s;
}

int64_t train_db_teacher(Db *db, const char *teacher_path, const char *sha, const ModelConfig *mc, char *err)
{
    char *cj = config_json(mc);
    char *tp = file_abs(teacher_path);
    char why[OB_ERRLEN];
    const LoaderFormat *lf = loader_detect(tp, why); /* by content, as the loader read it */
    const char *fmt = lf ? lf->name : "";
    int64_t id = db_teacher_upsert(db, tp, sha, fmt, cj, err);
    free(cj);
    free(tp);
    return id;
}

/* ---- resume: the stored options ----------------------------------------------- */

typedef struct {
    Db *db;
    int64_t run;
} Stored;

static int get_stored(void *ud, const char *key, char *buf, size_t n, char *err)
{
    Stored *st = ud;
    return db_run_hparam(st->db, st->run, key, buf, n, err);
}

int train_db_load_opts(Db *db, int64_t run, SessionOpts *o, char *err)
{
    Stored st = {db, run};
    char e2[OB_ERRLEN];
    if (opt_load(session_opts, o, get_stored, &st, e2) == 0) return 0;
    ob_seterr(err, "%s: run %lld: %s", db_path(db), (long long)run, e2);
    return -1;
}

int train_db_load_opts_named(const char *db_path, const char *run, SessionOpts *o, char *err)
{
    Db *db = db_open(db_path, 0, err);
    if (!db) return -1;
    DbRun r;
    int rc = db_run_find(db, run, &r, err);
    if (rc == 0) {
        rc = train_db_load_opts(db, r.id, o, err);
        db_run_free(&r);
    }
    db_close(db);
    return rc;
}

/* ---- the run ---------------------------------------------------------------------- */

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int train_db_begin(TrainDb **out, const char *store, SessionOpts *o, const char *teacher_sha, const ModelConfig *mc,
                   char *err)
{
    const char *resume = o->resume, *name = o->name;
    TrainConfig *cfg = &o->cfg;
    *out = NULL;
    TrainDb *t = ob_calloc(1, sizeof *t);
    if (!(t->db = db_open(store, 0, err))) goto fail;
    if (resume) {
        DbRun r;
        if (db_run_find(t->db, resume, &r, err)) goto fail;
        t->run = r.id;
        int bad = 0;
        if (r.status == RUN_FINISHED) {
            ob_seterr(err, "%s: run %lld '%s' has finished already; nothing to resume", db_path(t->db), (long long)r.id, r.name);
            bad = 1;
        } else if (r.status == RUN_RUNNING || r.status == RUN_PAUSED) {
            ob_seterr(err, "%s: run %lld '%s' is being trained by process %lld; stop it first", db_path(t->db),
                      (long long)r.id, r.name, (long long)r.owner_pid);
            bad = 1;
        }
        if (bad) { db_run_free(&r); goto fail; }
        DbCheckpoint c;
        int k = db_checkpoint_latest(t->db, r.id, &c, err);
        if (k < 0) { db_run_free(&r); goto fail; }
        if (k == 1 && access(c.path, R_OK) != 0) {
            ob_seterr(err, "%s: the latest checkpoint of run %lld (step %d) is gone: %s", c.path, (long long)r.id, c.step,
                      strerror(errno));
            free(c.path);
            db_run_free(&r);
            goto fail;
        }
        /* the trainer keeps the latest checkpoint in one file: resume from it */
        free(o->resume_ckpt);
        o->resume_ckpt = NULL;
        if (k == 1) {
            o->resume_ckpt = ob_strdup(c.path);
            printf("run %lld '%s' in %s: resuming from the checkpoint of step %d (%s)\n", (long long)r.id, r.name,
                   db_path(t->db), c.step, c.path);
            free(c.path);
        } else if (r.status == RUN_PENDING) {
            printf("run %lld '%s' in %s: starting the queued run\n", (long long)r.id, r.name, db_path(t->db));
        } else {
            printf("run %lld '%s' in %s: no checkpoint was recorded; starting it over from step 0\n", (long long)r.id,
                   r.name, db_path(t->db));
        }
        db_run_free(&r);
        if (db_run_set_status(t->db, t->run, RUN_RUNNING, "resuming", err)) goto fail;
    } else {
        int64_t teacher = train_db_teacher(t->db, o->teacher, teacher_sha, mc, err);
        if (teacher < 0) goto fail;
        char *hp = opt_to_json(session_opts, o);
        t->run = db_run_create(t->db, name, teacher, hp, (int)cfg->steps, err);
        free(hp);
        if (t->run < 0) goto fail;
        DbRun r;
        if (db_run_get(t->db, t->run, &r, err)) goto fail;
        printf("run %lld '%s' recorded in %s\n", (long long)r.id, r.name, db_path(t->db));
        db_run_free(&r);
    }
    fflush(stdout);
    cfg->run_id = t->run;
    t->out_path = file_abs(o->out);
    if (o->data) {
        if (asprintf(&t->data_name, "%s held-out", base_name(o->data)) < 0) abort();
    } else {
        t->data_name = ob_strdup("self-generated held-out");
    }
    *out = t;
    return 0;
fail:
    if (t->db) db_close(t->db);
    free(t->out_path);
    free(t->data_name);
    free(t);
    return -1;
}

int64_t train_db_queue(const char *store, const SessionOpts *o, const char *teacher_sha, const ModelConfig *mc,
                       const char *sweep, char *err)
{
    Db *db = db_open(store, 0, err);
    if (!db) return -1;
    int64_t teacher = train_db_teacher(db, o->teacher, teacher_sha, mc, err), id = -1;
    if (teacher >= 0) {
        char *hp = opt_to_json(session_opts, o);
        id = db_run_queue(db, o->name, teacher, hp, (int)o->cfg.steps, sweep, err);
        free(hp);
    }
    db_close(db);
    return id;
}

int train_db_attach(TrainDb *t, EventRing *notify, char *err)
{
    t->w = db_writer_start(db_path(t->db), t->run, notify, err);
    if (t->w) db_writer_set_dataset(t->w, t->data_name);
    return t->w ? 0 : -1;
}

int train_db_wait_step(TrainDb *t, int step)
{
    return t && t->w ? db_writer_wait_step(t->w, step, 10.0) : 0;
}

void train_db_event(TrainDb *t, const Event *e)
{
    if (!t || !t->w) return;
    if (e->kind == EV_CKPT && event_path(e)[0] && event_path(e)[0] != '/') { /* resumable from any directory */
        Event c = *e;
        char *p = file_abs(event_path(e));
        c.path = evring_intern(p); /* whole, however long (events.h) */
        snprintf(c.text, sizeof c.text, "%s", p);
        free(p);
        db_writer_push(t->w, &c);
        return;
    }
    if (e->kind == EV_STATUS) {
        t->last = e->status;
        t->ended = e->status == RUN_FINISHED || e->status == RUN_FAILED || e->status == RUN_STOPPED;
    }
    db_writer_push(t->w, e);
}

int train_db_end(TrainDb *t, int exit_code, char *err)
{
    if (!t) return 0;
    int rc = t->w ? db_writer_stop(t->w, err) : 0;
    char e2[OB_ERRLEN];
    if (!t->ended) {
        char msg[128];
        snprintf(msg, sizeof msg, "the train command failed (exit %d) before the run ended; see its output", exit_code);
        if (db_run_set_status(t->db, t->run, RUN_FAILED, msg, e2) && rc == 0) {
            snprintf(err, OB_ERRLEN, "%s", e2);
            rc = -1;
        }
    } else if (t->last == RUN_FINISHED && t->out_path && access(t->out_path, F_OK) == 0) {
        if (db_run_set_student(t->db, t->run, t->out_path, e2) && rc == 0) {
            snprintf(err, OB_ERRLEN, "%s", e2);
            rc = -1;
        }
    }
    db_close(t->db);
    free(t->out_path);
    free(t->data_name);
    free(t);
    return rc;
}

/* ---- the session's run record -------------------------------------------------- */

typedef struct {
    SessionRecord r;    /* first: the session hands back &r */
    char *store;
    TrainDb *t;
} Record;

static int rec_begin(SessionRecord *r, SessionOpts *o, const char *teacher_sha, const ModelConfig *mc, char *err)
{
    Record *x = (Record *)r;
    return train_db_begin(&x->t, x->store, o, teacher_sha, mc, err);
}

static int rec_attach(SessionRecord *r, EventRing *notify, char *err)
{
    return train_db_attach(((Record *)r)->t, notify, err);
}

static void rec_event(SessionRecord *r, const Event *e) { train_db_event(((Record *)r)->t, e); }

static int rec_wait_step(SessionRecord *r, int step) { return train_db_wait_step(((Record *)r)->t, step); }

static int rec_end(SessionRecord *r, int exit_code, char *err)
{
    Record *x = (Record *)r;
    int rc = x->t ? train_db_end(x->t, exit_code, err) : 0;
    free(x->store);
    free(x);
    return rc;
}

SessionRecord *train_db_record(const char *db_path)
{
    Record *x = ob_calloc(1, sizeof *x);
    x->r = (SessionRecord){rec_begin, rec_attach, rec_event, rec_wait_step, rec_end};
    x->store = ob_strdup(db_path);
    return &x->r;
}

/* ---- a run trained elsewhere ------------------------------------------------------ */

static int import_rows(Db *db, int64_t run, const TState *ts, int *nm, int *ne, char *err)
{
    *nm = *ne = 0;
    for (int i = 0; ts && i < ts->n; i++) {
        const TStateRow *r = &ts->rows[i];
        if (isfinite(r->loss)) {
            DbMetric m = {r->step, r->loss, r->kl, r->mse, r->lr, r->grad_norm, NAN, NAN};
            if (db_metric_put(db, run, &m, err)) return -1;
            ++*nm;
        }
        if (isfinite(r->eval_loss)) {
            DbEval e = {.step = r->step, .nll = r->eval_loss, .ppl = exp(r->eval_loss), .time = NAN};
            snprintf(e.dataset, sizeof e.dataset, "imported eval_loss");
            snprintf(e.model, sizeof e.model, "student");
            if (db_eval_put(db, run, &e, err)) return -1;
            ++*ne;
        }
    }
    return 0;
}

int64_t train_db_import(const char *db_path, const TrainImport *im, int (*write_student)(void *ud, char *err), void *ud,
                        TrainImportCounts *counts, char *err)
{
    Db *db = db_open(db_path, 0, err);
    if (!db) return -1;
    int64_t teacher = 0, run = -1;
    if (im->teacher_path && (teacher = train_db_teacher(db, im->teacher_path, im->teacher_sha, im->mc, err)) < 0) goto fail;
    const TState *ts = im->ts;
    int total = ts ? (ts->max_steps > 0 ? ts->max_steps : ts->global_step > 0 ? ts->global_step : 0) : 0;
    for (int i = 0; ts && i < ts->n; i++)
        if (ts->rows[i].step > total) total = ts->rows[i].step;
    char *src = file_abs(im->source), *student = file_abs(im->student_path);
    Json j = {0};
    ob_buf_printf(&j, "{");
    jkey(&j, "imported-from");
    ob_buf_printf(&j, "\"");
    ob_buf_json_string(&j, src);
    ob_buf_printf(&j, "\"");
    jkey(&j, "format");
    ob_buf_printf(&j, "\"bitllama\"");
    if (ts && ts->global_step >= 0) jint(&j, "global-step", ts->global_step);
    if (ts && ts->max_steps >= 0) jint(&j, "max-steps", ts->max_steps);
    if (ts && isfinite(ts->train_runtime)) { jkey(&j, "train-runtime"); ob_buf_printf(&j, "%.9g", ts->train_runtime); }
    ob_buf_printf(&j, "}");
    run = db_run_create(db, im->name, teacher, j.s, total, err);
    free(j.s);
    int nm = 0, ne = 0, ok = run > 0 && import_rows(db, run, ts, &nm, &ne, err) == 0 && write_student(ud, err) == 0;
    if (ok) {
        char msg[512];
        snprintf(msg, sizeof msg, "imported from %s", src);
        ok = db_run_set_student(db, run, student, err) == 0 && db_run_set_status(db, run, RUN_FINISHED, msg, err) == 0;
    }
    free(src);
    free(student);
    if (!ok) goto fail;
    if (counts) *counts = (TrainImportCounts){nm, ne};
    db_close(db);
    return run;
fail:
    if (run > 0) { /* nothing half-written: the run goes again */
        char e2[OB_ERRLEN];
        db_run_delete(db, run, e2);
    }
    db_close(db);
    return -1;
}
