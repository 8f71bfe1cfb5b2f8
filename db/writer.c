/* writer.c -- the run store's writer thread (see db.h): takes training
 * Events from an EventRing (the producer never blocks), keeps them until
 * they are committed, and commits in batches: every max_events events or
 * max_seconds after the first uncommitted one, and at once for checkpoints
 * and status changes. A failed commit (locked, full disk, I/O error) is
 * rolled back, reported, and retried a second later with the same events;
 * what was committed before is never touched. */
#include <errno.h>
#include <time.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/common.h"
#include "base/file.h"
#include "db/db.h"
#include "db/db_internal.h"

#define RING_CAP 8192
#define MAX_PENDING 32768 /* beyond this (a database failing for long) the oldest steps go */
#define RETRY_SECONDS 1.0

struct DbWriter {
    char *path;
    int64_t run;
    sqlite3 *h;
    DbOwner self;
    EventRing ring, *notify;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t mu;           /* guards stats, err, has_err, batch limits */
    int max_events, busy_ms, busy_applied;
    double max_seconds;
    DbWriterStats stats;
    int committed_step;           /* the highest step whose metrics are committed (mu) */
    pthread_cond_t committed;     /* signalled when it grows or the writer fails (mu) */
    long commit_hook_count;       /* transactions seen by sqlite3_commit_hook */
    char err[OB_ERRLEN];
    int has_err;
    char final_err[OB_ERRLEN];
    char dataset[128];
    int final_rc;
    /* the writer thread's own */
    Event *pending;
    int npending, cap;
    double first_pending;
};

static int on_commit(void *user)
{
    DbWriter *w = user;
    w->commit_hook_count++;       /* the writer thread only */
    return 0;
}

static void set_error(DbWriter *w, const char *msg)
{
    pthread_mutex_lock(&w->mu);
    int fresh = !w->has_err || strcmp(w->err, msg);
    snprintf(w->err, sizeof w->err, "%s", msg);
    w->has_err = 1;
    pthread_cond_broadcast(&w->committed); /* a waiter gives up now */
    pthread_mutex_unlock(&w->mu);
    if (fresh && w->notify) {
        Event e = {.kind = EV_LOG, .run_id = w->run};
        snprintf(e.text, sizeof e.text, "run store: %.500s", msg);
        evring_push(w->notify, &e);
    }
}

static int stores(const Event *e)
{
    return e->kind == EV_STEP || e->kind == EV_EVAL || e->kind == EV_CKPT || e->kind == EV_STATUS;
}

static void keep(DbWriter *w, const Event *e)
{
    if (w->npending == 0) w->first_pending = ob_now();
    if (w->npending == MAX_PENDING) {
        /* drop the oldest step (never a checkpoint or a status) */
        int i = 0;
        while (i < w->npending && w->pending[i].kind != EV_STEP) i++;
        if (i == w->npending) i = 0;
        memmove(&w->pending[i], &w->pending[i + 1], (size_t)(w->npending - i - 1) * sizeof(Event));
        w->npending--;
        pthread_mutex_lock(&w->mu);
        w->stats.dropped++;
        pthread_mutex_unlock(&w->mu);
    }
    if (w->npending == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 512;
        w->pending = realloc(w->pending, (size_t)w->cap * sizeof(Event));
        if (!w->pending) abort();
    }
    w->pending[w->npending++] = *e;
}

/* one transaction with every pending event; 0 ok, -1 with err */
static int commit_pending(DbWriter *w, int durable, char *err)
{
    static const char *const what = "storing training progress";
    sqlite3_stmt *sm = NULL, *se = NULL, *sc = NULL, *ss = NULL, *so = NULL, *su = NULL;
    int rc = SQLITE_OK, total = 0;
    const char *ctx = what;
    sqlite3_exec(w->h, durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    if ((rc = sqlite3_exec(w->h, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK) goto fail;
    if ((rc = sqlite3_prepare_v2(w->h, DB_SQL_METRIC_PUT, -1, &sm, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v2(w->h, DB_SQL_EVAL_PUT, -1, &se, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v2(w->h, DB_SQL_CKPT_PUT, -1, &sc, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v2(w->h,
                                 "UPDATE runs SET status=?2, message=?3, updated=?4, owner_pid=NULL, owner_start=NULL, "
                                 "owner_boot=NULL, owner_host=NULL WHERE id=?1",
                                 -1, &ss, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v2(w->h,
                                 "UPDATE runs SET status=?2, message=?3, updated=?4, owner_pid=?5, owner_start=?6, "
                                 "owner_boot=?7, owner_host=?8 WHERE id=?1",
                                 -1, &so, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v2(w->h,
                                 "UPDATE runs SET updated=?2, total_steps=CASE WHEN ?3 > 0 THEN ?3 ELSE total_steps END "
                                 "WHERE id=?1",
                                 -1, &su, NULL)) != SQLITE_OK)
        goto fail;
    double now = db_wall_time();
    for (int i = 0; i < w->npending; i++) {
        const Event *e = &w->pending[i];
        sqlite3_stmt *st = NULL;
        switch (e->kind) {
        case EV_STEP: {
            DbMetric m = {e->step, e->loss, e->kl, e->mse, e->lr, e->grad_norm, e->tokens_per_s, e->elapsed};
            st = sm;
            sqlite3_reset(st);
            db_bind_metric(st, w->run, &m);
            if (e->total_steps > 0) total = e->total_steps;
            break;
        }
        case EV_EVAL: {
            DbEval ev = {.step = e->step, .nll = e->eval_nll, .ppl = e->eval_ppl, .time = now};
            snprintf(ev.dataset, sizeof ev.dataset, "%s", w->dataset);
            snprintf(ev.model, sizeof ev.model, "%.31s", e->text);
            st = se;
            sqlite3_reset(st);
            db_bind_eval(st, w->run, &ev);
            break;
        }
        case EV_CKPT:
            st = sc;
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, w->run);
            sqlite3_bind_int(st, 2, e->step);
            sqlite3_bind_text(st, 3, event_path(e), -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 4, "", -1, SQLITE_STATIC);
            sqlite3_bind_double(st, 5, now);
            break;
        case EV_STATUS: {
            int owned = e->status == RUN_RUNNING || e->status == RUN_PAUSED;
            st = owned ? so : ss;
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, w->run);
            sqlite3_bind_text(st, 2, run_status_name(e->status), -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, e->text, -1, SQLITE_TRANSIENT);
            sqlite3_bind_double(st, 4, now);
            if (owned) {
                sqlite3_bind_int64(st, 5, w->self.pid);
                if (w->self.start >= 0) sqlite3_bind_int64(st, 6, w->self.start);
                else sqlite3_bind_null(st, 6);
                sqlite3_bind_text(st, 7, w->self.boot, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 8, w->self.host, -1, SQLITE_STATIC);
            }
            break;
        }
        default: continue;
        }
        if ((rc = sqlite3_step(st)) != SQLITE_DONE) goto fail;
    }
    sqlite3_bind_int64(su, 1, w->run);
    sqlite3_bind_double(su, 2, now);
    sqlite3_bind_int(su, 3, total);
    if ((rc = sqlite3_step(su)) != SQLITE_DONE) goto fail;
    if (sqlite3_changes(w->h) == 0) {
        ob_seterr(err, "%s: run %lld no longer exists (deleted?); its progress is not stored", w->path, (long long)w->run);
        rc = SQLITE_CONSTRAINT_FOREIGNKEY;
        goto fail_msg;
    }
    ctx = "committing training progress";
    if ((rc = sqlite3_exec(w->h, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) goto fail;
    sqlite3_finalize(sm); sqlite3_finalize(se); sqlite3_finalize(sc);
    sqlite3_finalize(ss); sqlite3_finalize(so); sqlite3_finalize(su);
    return 0;
fail:
    rc = sqlite3_extended_errcode(w->h) ? sqlite3_extended_errcode(w->h) : rc;
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        ob_seterr(err, "%s: run %lld no longer exists (deleted?); its progress is not stored", w->path, (long long)w->run);
    else
        db_set_sqlerr(w->h, rc, w->path, ctx, w->busy_applied, err);
fail_msg:
    sqlite3_finalize(sm); sqlite3_finalize(se); sqlite3_finalize(sc);
    sqlite3_finalize(ss); sqlite3_finalize(so); sqlite3_finalize(su);
    if (!sqlite3_get_autocommit(w->h)) sqlite3_exec(w->h, "ROLLBACK", NULL, NULL, NULL);
    return rc == SQLITE_CONSTRAINT_FOREIGNKEY ? -2 : -1;
}

/* After a checkpoint is committed: its sha256, unless the file was
 * replaced while hashing (the trainer rewrites one checkpoint file). A
 * failure here leaves the sha256 empty; the record itself is durable. */
static void hash_checkpoint(DbWriter *w, const Event *e)
{
    struct stat a, b;
    char hex[65], err[OB_ERRLEN];
    const char *path = event_path(e);
    if (stat(path, &a) != 0 || file_sha256(path, hex, err) || stat(path, &b) != 0) return;
    if (a.st_ino != b.st_ino || a.st_size != b.st_size || a.st_mtim.tv_sec != b.st_mtim.tv_sec ||
        a.st_mtim.tv_nsec != b.st_mtim.tv_nsec)
        return;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(w->h, "UPDATE checkpoints SET sha256=?4 WHERE run_id=?1 AND step=?2 AND path=?3", -1, &st,
                           NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, w->run);
    sqlite3_bind_int(st, 2, e->step);
    sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, hex, -1, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_finalize(st);
}

/* try to commit; on success forget the events, on failure keep them */
static int flush(DbWriter *w, int durable)
{
    char err[OB_ERRLEN];
    pthread_mutex_lock(&w->mu);
    int busy = w->busy_ms;
    pthread_mutex_unlock(&w->mu);
    if (busy != w->busy_applied) sqlite3_busy_timeout(w->h, w->busy_applied = busy);
    int n = w->npending, top = 0;
    for (int i = 0; i < n; i++)
        if (w->pending[i].kind == EV_STEP && w->pending[i].step > top) top = w->pending[i].step;
    int rc = commit_pending(w, durable, err);
    pthread_mutex_lock(&w->mu);
    if (rc == 0) {
        if (top > w->committed_step) {
            w->committed_step = top;
            pthread_cond_broadcast(&w->committed);
        }
        w->stats.events += n;
        w->stats.commits = w->commit_hook_count; /* counted by SQLite's commit hook */
        w->has_err = 0;
    } else {
        w->stats.failures++;
        if (rc == -2) w->stats.dropped += n; /* the run is gone: nothing can take them */
    }
    pthread_mutex_unlock(&w->mu);
    if (rc == 0) {
        /* the newest checkpoint of the batch (older ones were overwritten) */
        for (int i = n - 1; i >= 0; i--)
            if (w->pending[i].kind == EV_CKPT) { hash_checkpoint(w, &w->pending[i]); break; }
    }
    if (rc == 0 || rc == -2) w->npending = 0;
    if (rc != 0) set_error(w, err);
    pthread_mutex_lock(&w->mu);
    w->stats.pending = w->npending;
    pthread_mutex_unlock(&w->mu);
    return rc == 0 ? 0 : -1;
}

static void *writer_main(void *arg)
{
    DbWriter *w = arg;
    Event buf[256];
    double retry_at = 0;
    int urgent = 0;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int max_events = w->max_events;
        double max_seconds = w->max_seconds;
        pthread_mutex_unlock(&w->mu);
        int stopping = atomic_load(&w->stop);
        int timeout = -1;
        if (w->npending > 0) {
            double due = urgent || w->npending >= max_events ? 0 : w->first_pending + max_seconds;
            if (retry_at > due) due = retry_at;
            double dt = due - ob_now();
            timeout = dt <= 0 ? 0 : (int)(dt * 1000) + 1;
        }
        if (!stopping) {
            struct pollfd p = {evring_fd(&w->ring), POLLIN, 0};
            if (poll(&p, 1, timeout) < 0 && errno != EINTR) timeout = 0;
        }
        int n;
        while ((n = evring_pop(&w->ring, buf, 256)) > 0) {
            for (int i = 0; i < n; i++) {
                if (!stores(&buf[i])) continue;
                keep(w, &buf[i]);
                if (buf[i].kind == EV_CKPT || buf[i].kind == EV_STATUS) urgent = 1;
            }
            if (w->npending >= max_events) break;
        }
        /* ring overflow: count it as ours */
        pthread_mutex_lock(&w->ring.mu);
        long ring_dropped = w->ring.dropped;
        w->ring.dropped = 0;
        pthread_mutex_unlock(&w->ring.mu);
        pthread_mutex_lock(&w->mu);
        w->stats.dropped += ring_dropped;
        w->stats.pending = w->npending;
        pthread_mutex_unlock(&w->mu);
        stopping = atomic_load(&w->stop);
        double now = ob_now();
        if (w->npending > 0 && now >= retry_at &&
            (urgent || stopping || w->npending >= max_events || now >= w->first_pending + max_seconds)) {
            if (flush(w, urgent || stopping) == 0) urgent = 0;
            else retry_at = ob_now() + RETRY_SECONDS;
        }
        if (stopping) {
            /* drained: the ring is empty once stop is seen and a pop returned 0 */
            pthread_mutex_lock(&w->ring.mu);
            int left = w->ring.count;
            pthread_mutex_unlock(&w->ring.mu);
            if (left) continue;
            if (w->npending > 0) flush(w, 1); /* a last attempt, even right after a failure */
            break;
        }
    }
    pthread_mutex_lock(&w->mu);
    if (w->npending > 0 || w->stats.dropped > 0) {
        w->final_rc = -1;
        if (w->npending > 0)
            snprintf(w->final_err, sizeof w->final_err, "%.400s (%d events not stored)", w->err, w->npending);
        else
            snprintf(w->final_err, sizeof w->final_err, "%s: %ld training events were lost before they could be stored%s%.300s",
                     w->path, w->stats.dropped, w->has_err ? ": " : "", w->has_err ? w->err : "");
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

DbWriter *db_writer_start(const char *path, int64_t run_id, EventRing *notify, char *err)
{
    DbWriter *w = ob_calloc(1, sizeof *w);
    w->path = ob_strdup(path);
    w->run = run_id;
    w->notify = notify;
    w->max_events = 256;
    w->max_seconds = 0.25;
    w->busy_ms = w->busy_applied = DB_BUSY_MS;
    db_owner_self(&w->self);
    if (db_connect(path, 0, DB_BUSY_MS, &w->h, err)) goto fail;
    /* the run must exist; the schema must be current (a Db opened it) */
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(w->h, "SELECT 1 FROM runs WHERE id=?", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, run_id);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE) { ob_seterr(err, "%s: no run %lld", path, (long long)run_id); goto fail; }
        if (rc == SQLITE_ROW) rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK) { db_set_sqlerr(w->h, rc, path, "starting the writer", DB_BUSY_MS, err); goto fail; }
    sqlite3_commit_hook(w->h, on_commit, w);
    if (evring_init(&w->ring, RING_CAP)) { ob_seterr(err, "%s: cannot create the writer's event ring: %s", path, strerror(errno)); goto fail; }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->committed, NULL);
    atomic_init(&w->stop, 0);
    if ((errno = pthread_create(&w->thread, NULL, writer_main, w)) != 0) {
        ob_seterr(err, "%s: cannot start the writer thread: %s", path, strerror(errno));
        pthread_cond_destroy(&w->committed);
        pthread_mutex_destroy(&w->mu);
        evring_destroy(&w->ring);
        goto fail;
    }
    return w;
fail:
    if (w->h) sqlite3_close(w->h);
    free(w->path);
    free(w);
    return NULL;
}

void db_writer_set_batch(DbWriter *w, int max_events, double max_seconds)
{
    pthread_mutex_lock(&w->mu);
    if (max_events > 0) w->max_events = max_events;
    if (max_seconds > 0) w->max_seconds = max_seconds;
    pthread_mutex_unlock(&w->mu);
}

void db_writer_set_busy_timeout(DbWriter *w, int ms)
{
    pthread_mutex_lock(&w->mu);
    w->busy_ms = ms;
    pthread_mutex_unlock(&w->mu);
}

void db_writer_set_dataset(DbWriter *w, const char *name)
{
    pthread_mutex_lock(&w->mu);
    snprintf(w->dataset, sizeof w->dataset, "%s", name ? name : "");
    pthread_mutex_unlock(&w->mu);
}

void db_writer_push(DbWriter *w, const Event *ev)
{
    if (stores(ev)) evring_push(&w->ring, ev);
}

void db_writer_stats(DbWriter *w, DbWriterStats *st)
{
    pthread_mutex_lock(&w->mu);
    *st = w->stats;
    pthread_mutex_unlock(&w->mu);
}

int db_writer_error(DbWriter *w, char *err)
{
    pthread_mutex_lock(&w->mu);
    int e = w->has_err;
    if (e) snprintf(err, OB_ERRLEN, "%s", w->err);
    pthread_mutex_unlock(&w->mu);
    return e;
}

int db_writer_wait_step(DbWriter *w, int step, double timeout_s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)timeout_s;
    until.tv_nsec += (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
    if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    while (w->committed_step < step && !w->has_err && rc == 0)
        if (pthread_cond_timedwait(&w->committed, &w->mu, &until) == ETIMEDOUT) rc = -1;
    int ok = w->committed_step >= step;
    pthread_mutex_unlock(&w->mu);
    return ok ? 0 : -1;
}

int db_writer_stop(DbWriter *w, char *err)
{
    if (!w) return 0;
    atomic_store(&w->stop, 1);
    Event wake = {0}; /* kind 0: not stored, only wakes the thread */
    evring_push(&w->ring, &wake);
    pthread_join(w->thread, NULL);
    int rc = w->final_rc;
    if (rc) snprintf(err, OB_ERRLEN, "%s", w->final_err);
    sqlite3_close(w->h);
    evring_destroy(&w->ring);
    pthread_cond_destroy(&w->committed);
    pthread_mutex_destroy(&w->mu);
    free(w->pending);
    free(w->path);
    free(w);
    return rc;
}
