/* train_db.c -- `train --db`: the run record, resume by run id, and the
 * writer that stores the trainer's events (see train_db.h). */
#include "db/train_db.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "format/loader.h"
#include "db/db.h"
#include "train/qat.h"

struct TrainDb {
    Db *db;
    DbWriter *w;
    int64_t run;
    char *out_path, *data_name;
    int ended;          /* a terminal EV_STATUS went to the writer */
    RunStatus last;
};

/* the options stored for a run, in the order they are replayed */
static const char *const keys[] = {
    "teacher", "tokenizer", "data", "split", "self-generate", "data-cache", "steps", "seq-len", "batch", "accum",
    "lr", "lr-min", "warmup", "alpha", "kl-scale", "wd", "clip", "init", "seed", "threads", "out", "ckpt",
    "ckpt-every", "eval-every", "eval-windows", "log-every", NULL};

static char *abs_path(const char *p)
{
    if (!p) return NULL;
    if (p[0] == '/') return ob_strdup(p);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return ob_strdup(p);
    char *r = NULL;
    if (asprintf(&r, "%s/%s", cwd, p) < 0) abort();
    return r;
}

/* ---- a small JSON object writer ------------------------------------------------ */
typedef struct {
    char *s;
    size_t n, cap;
} Json;

static void jput(Json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jput(Json *j, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(j->s ? j->s + j->n : NULL, j->s ? j->cap - j->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) abort();
        if (j->s && j->n + (size_t)k < j->cap) { j->n += (size_t)k; return; }
        j->cap = (j->cap + (size_t)k + 1) * 2;
        j->s = realloc(j->s, j->cap);
        if (!j->s) abort();
    }
}

static void jkey(Json *j, const char *k) { jput(j, "%s\"%s\":", j->n > 1 ? "," : "", k); }

static void jstr(Json *j, const char *k, const char *v)
{
    if (!v) return;
    jkey(j, k);
    jput(j, "\"");
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\') jput(j, "\\%c", *p);
        else if (*p < 0x20) jput(j, "\\u%04x", *p);
        else jput(j, "%c", *p);
    }
    jput(j, "\"");
}

static void jint(Json *j, const char *k, long long v) { jkey(j, k); jput(j, "%lld", v); }
static void jflt(Json *j, const char *k, double v) { jkey(j, k); jput(j, "%.9g", v); }

static char *hparams_json(const TrainDbArgs *a, const TrainConfig *c)
{
    Json j = {0};
    jput(&j, "{");
    char *p = abs_path(a->teacher);
    jstr(&j, "teacher", p);
    free(p);
    p = abs_path(a->tokenizer);
    jstr(&j, "tokenizer", p);
    free(p);
    p = abs_path(a->data);
    jstr(&j, "data", p);
    free(p);
    jstr(&j, "split", a->split);
    if (a->self_generate > 0) jint(&j, "self-generate", a->self_generate);
    p = abs_path(a->data_cache);
    jstr(&j, "data-cache", p);
    free(p);
    jint(&j, "steps", c->steps);
    jint(&j, "seq-len", c->seq_len);
    jint(&j, "batch", c->batch);
    jint(&j, "accum", c->accum);
    jflt(&j, "lr", c->lr);
    if (c->lr_min >= 0) jflt(&j, "lr-min", c->lr_min);
    if (c->warmup >= 0) jint(&j, "warmup", c->warmup);
    jflt(&j, "alpha", c->alpha);
    jflt(&j, "kl-scale", c->kl_scale);
    jflt(&j, "wd", c->wd);
    jflt(&j, "clip", c->clip);
    jstr(&j, "init", c->init == SVID_SVD ? "svd" : "nmf");
    jint(&j, "seed", (long long)c->seed);
    jint(&j, "threads", c->threads);
    p = abs_path(c->out_path);
    jstr(&j, "out", p);
    free(p);
    p = abs_path(c->ckpt_path);
    jstr(&j, "ckpt", p);
    free(p);
    jint(&j, "ckpt-every", c->ckpt_every);
    jint(&j, "eval-every", c->eval_every);
    jint(&j, "eval-windows", c->max_eval_windows);
    jint(&j, "log-every", c->log_every);
    /* fixed by the method; recorded so a run documents itself */
    jflt(&j, "beta1", c->beta1);
    jflt(&j, "beta2", c->beta2);
    jflt(&j, "eps", c->eps);
    jput(&j, "}");
    return j.s;
}

static char *config_json(const ModelConfig *m)
{
    Json j = {0};
    jput(&j, "{");
    jint(&j, "dim", m->dim);
    jint(&j, "hidden_dim", m->hidden_dim);
    jint(&j, "n_layers", m->n_layers);
    jint(&j, "n_heads", m->n_heads);
    jint(&j, "n_kv_heads", m->n_kv_heads);
    jint(&j, "vocab_size", m->vocab_size);
    jint(&j, "seq_len", m->seq_len);
    jput(&j, "}");
    return j.s;
}

int64_t train_db_teacher(Db *db, const char *teacher_path, const char *sha, const ModelConfig *mc, char *err)
{
    char *cj = config_json(mc);
    char *tp = abs_path(teacher_path);
    char why[OB_ERRLEN];
    const LoaderFormat *lf = loader_detect(tp, why); /* by content, as the loader read it */
    const char *fmt = lf ? lf->name : "";
    int64_t id = db_teacher_upsert(db, tp, sha, fmt, cj, err);
    free(cj);
    free(tp);
    return id;
}

/* ---- resume: rebuild the command line ------------------------------------------ */

int train_db_resume_argv(const char *db_path, const char *run, int argc, char **argv, int *out_argc, char ***out_argv,
                         char *err)
{
    Db *db = db_open(db_path, 0, err);
    if (!db) return -1;
    DbRun r;
    if (db_run_find(db, run, &r, err)) { db_close(db); return -1; }
    int n = 0;
    char **v = ob_calloc((size_t)argc + 2 * 32 + 1, sizeof *v);
    v[n++] = ob_strdup(argv[0]);
    char val[4096];
    for (int i = 0; keys[i]; i++) {
        int k = db_run_hparam(db, r.id, keys[i], val, sizeof val, err);
        if (k < 0) { db_run_free(&r); db_close(db); train_db_free_argv(n, v); return -1; }
        if (k == 0) continue;
        char *opt = ob_malloc(strlen(keys[i]) + 3);
        sprintf(opt, "--%s", keys[i]);
        v[n++] = opt;
        v[n++] = ob_strdup(val);
    }
    for (int i = 1; i < argc; i++) v[n++] = ob_strdup(argv[i]);
    db_run_free(&r);
    db_close(db);
    *out_argc = n;
    *out_argv = v;
    return 0;
}

void train_db_free_argv(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) free(argv[i]);
    free(argv);
}

/* ---- the run ---------------------------------------------------------------------- */

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int train_db_begin(TrainDb **out, const char *store, const char *name, const char *resume, const TrainDbArgs *a,
                   TrainConfig *cfg, const char *teacher_sha, const ModelConfig *mc, char *err)
{
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
        static char resume_from[4096];
        if (k == 1) {
            snprintf(resume_from, sizeof resume_from, "%s", c.path);
            cfg->resume_path = resume_from;
            printf("run %lld '%s' in %s: resuming from the checkpoint of step %d (%s)\n", (long long)r.id, r.name,
                   db_path(t->db), c.step, c.path);
            free(c.path);
        } else {
            cfg->resume_path = NULL;
            printf("run %lld '%s' in %s: no checkpoint was recorded; starting it over from step 0\n", (long long)r.id,
                   r.name, db_path(t->db));
        }
        db_run_free(&r);
        if (db_run_set_status(t->db, t->run, RUN_RUNNING, "resuming", err)) goto fail;
    } else {
        int64_t teacher = train_db_teacher(t->db, a->teacher, teacher_sha, mc, err);
        if (teacher < 0) goto fail;
        char *hp = hparams_json(a, cfg);
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
    t->out_path = abs_path(cfg->out_path);
    if (a->data) {
        if (asprintf(&t->data_name, "%s held-out", base_name(a->data)) < 0) abort();
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

int train_db_attach(TrainDb *t, EventRing *notify, char *err)
{
    t->w = db_writer_start(db_path(t->db), t->run, notify, err);
    if (t->w) db_writer_set_dataset(t->w, t->data_name);
    return t->w ? 0 : -1;
}

void train_db_event(TrainDb *t, const Event *e)
{
    if (!t || !t->w) return;
    if (e->kind == EV_CKPT && e->text[0] && e->text[0] != '/') { /* resumable from any directory */
        Event c = *e;
        char *p = abs_path(e->text);
        snprintf(c.text, sizeof c.text, "%.511s", p);
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
