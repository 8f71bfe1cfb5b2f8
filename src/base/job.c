/* src/base/job.c -- background jobs (see job.h); which thread may call
 * what is listed in job.h and checked here with assert.
 *
 * Design, in the spirit of redis's bio.c: one place that knows how work is
 * put into the background, so that the trainer, data self-generation, the
 * layer statistics and the workbench's load / generate / prepare jobs do
 * not each carry their own thread struct, flags and hand-written joins.
 *
 * What a job is. A function (JobFn) and its argument, run once in a thread
 * of its own, plus the state the outside world needs to steer and watch it:
 * a cancel flag, a pause flag, the latest progress (done of total), whether
 * the function has returned, and its result. A job is not a pool worker:
 * it runs until its function returns, which may take hours (training).
 *
 * Which thread calls what. The thread that calls job_start is the job's
 * owner: only it waits for, joins and frees the job (one joiner, as
 * pthreads requires). The function runs in the job's thread and is the only
 * caller of job_wait_resumed; it (or helpers it fans out to, such as the
 * per-layer workers of the layer statistics) calls job_progress. Flags (cancel, pause) are set
 * from any thread, typically the owner's UI or a signal-driven main loop.
 *
 * Events. A job with a ring reports through it and only through it:
 * EV_PROGRESS with done/total (throttled to about 256 per job), and, when
 * spec.end_event is set, one EV_STATUS (finished / stopped / failed) as its
 * last event. run_id is the job's id, so consumers match events to jobs the
 * way they match them to runs. A job whose function sends its own final
 * status (the trainer) sets end_event 0.
 *
 * Lifetime. job_start allocates; the job lives until job_free, which may
 * come before or after the function returned: it cancels, joins and frees.
 * What arg points to is borrowed and must outlive the thread: free it after
 * job_join (or job_free). The end event is pushed before the job counts as
 * done, so an owner that sees job_done() == 1 finds the event in the ring.
 *
 * Cancellation is cooperative: job_cancel sets a flag and wakes a paused
 * job; the function polls job_cancelled() at points where stopping is safe
 * (between optimizer steps, between sequences, between layers) and returns.
 * Nothing is ever killed, so a cancelled job frees what it allocated and
 * leaves no half-written file behind (writes are atomic renames). */
#include "base/job.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/common.h"

struct Job {
    JobSpec spec;
    char name[64];
    pthread_t th, owner;
    int joined;                 /* owner only */
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* signalled on resume, cancel and the end */
    atomic_int cancel, pause, done;
    atomic_long p_done, p_total;
    pthread_mutex_t pmu;        /* serialises job_progress */
    long pushed;                /* the last pushed done (under pmu) */
    int rc;                     /* valid once done */
};

static _Thread_local Job *current;

Job *job_current(void) { return current; }

static int is_owner(const Job *j) { return pthread_equal(pthread_self(), j->owner); }

static void *trampoline(void *arg)
{
    Job *j = arg;
    current = j;
    int rc = j->spec.fn(j, j->spec.arg);
    current = NULL;
    if (j->spec.end_event && j->spec.ring) {
        Event ev = {.kind = EV_STATUS, .run_id = j->spec.id,
                    .status = rc ? RUN_FAILED : atomic_load(&j->cancel) ? RUN_STOPPED : RUN_FINISHED};
        ev.done = atomic_load(&j->p_done);
        ev.total = atomic_load(&j->p_total);
        snprintf(ev.text, sizeof ev.text, "%s", j->name);
        evring_push(j->spec.ring, &ev);
    }
    pthread_mutex_lock(&j->mu);
    j->rc = rc;
    atomic_store(&j->done, 1);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

int job_start(Job **out, const JobSpec *spec, char *err)
{
    *out = NULL;
    assert(spec && spec->fn);
    Job *j = ob_calloc(1, sizeof *j);
    j->spec = *spec;
    snprintf(j->name, sizeof j->name, "%s", spec->name ? spec->name : "job");
    j->spec.name = j->name;
    j->owner = pthread_self();
    j->pushed = -1;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    pthread_mutex_init(&j->pmu, NULL);
    int e = pthread_create(&j->th, NULL, trampoline, j);
    if (e) {
        ob_seterr(err, "cannot start a thread for %s: %s", j->name, strerror(e));
        pthread_mutex_destroy(&j->mu);
        pthread_cond_destroy(&j->cv);
        pthread_mutex_destroy(&j->pmu);
        free(j);
        return -1;
    }
    *out = j;
    return 0;
}

typedef struct {
    void (*loop)(void *arg);
    void *arg;
} LoopCall;

static int loop_job(Job *self, void *p)
{
    (void)self;
    const LoopCall *c = p;
    c->loop(c->arg);
    return 0;
}

void job_run_parallel(const char *name, int threads, void (*loop)(void *arg), void *arg)
{
    LoopCall call = {loop, arg};
    Job **helpers = ob_calloc(threads > 1 ? (size_t)threads : 1, sizeof *helpers);
    int started = 0;
    char e2[OB_ERRLEN];
    for (int t = 1; t < threads; t++)
        if (job_start(&helpers[started], &(JobSpec){.name = name, .fn = loop_job, .arg = &call}, e2) == 0) started++;
    loop(arg); /* the calling thread works too */
    for (int t = 0; t < started; t++) {
        job_join(helpers[t]);
        job_free(helpers[t]);
    }
    free(helpers);
}

typedef struct {
    int (*fn)(void *ctx, int i, char *err);
    void *ctx;
    int (*progress)(void *user, int done, int total);
    void *user;
    int total, next, done, failed, cancelled;
    char *err;
    pthread_mutex_t mu;
} ItemsWork;

static void items_loop(void *arg)
{
    ItemsWork *w = arg;
    char why[OB_ERRLEN];
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int i = w->failed || w->cancelled ? w->total : w->next++;
        pthread_mutex_unlock(&w->mu);
        if (i >= w->total) break;
        why[0] = '\0';
        int rc = w->fn(w->ctx, i, why);
        pthread_mutex_lock(&w->mu);
        if (rc && !w->failed) {
            w->failed = 1;
            snprintf(w->err, OB_ERRLEN, "%s", why);
        }
        if (!rc) {
            w->done++;
            if (w->progress && w->progress(w->user, w->done, w->total)) w->cancelled = 1;
        }
        pthread_mutex_unlock(&w->mu);
    }
}

int job_for_items(const char *name, int threads, int total, int (*fn)(void *ctx, int i, char *err), void *ctx,
                  int (*progress)(void *user, int done, int total), void *user, char *err)
{
    if (threads > total) threads = total;
    if (threads < 1) threads = 1;
    ItemsWork w = {fn, ctx, progress, user, total, 0, 0, 0, 0, err, PTHREAD_MUTEX_INITIALIZER};
    job_run_parallel(name, threads, items_loop, &w);
    pthread_mutex_destroy(&w.mu);
    return w.failed ? -1 : w.cancelled ? 1 : 0;
}

int job_progress_cb(void *job, int done, int total)
{
    job_progress(job, done, total);
    return job_cancelled(job);
}

/* set a flag under the lock and wake the waiters (a paused worker) */
static void set_and_wake(Job *j, atomic_int *flag, int v)
{
    pthread_mutex_lock(&j->mu);
    atomic_store(flag, v);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void job_cancel(Job *j) { set_and_wake(j, &j->cancel, 1); }

int job_cancelled(Job *j) { return atomic_load(&j->cancel); }

void job_pause(Job *j) { atomic_store(&j->pause, 1); }

void job_resume(Job *j) { set_and_wake(j, &j->pause, 0); }

int job_done(Job *j) { return atomic_load(&j->done); }

void job_progress_get(Job *j, long *done, long *total)
{
    if (done) *done = atomic_load(&j->p_done);
    if (total) *total = atomic_load(&j->p_total);
}

int64_t job_id(const Job *j) { return j->spec.id; }

int job_wait(Job *j, double seconds)
{
    assert(is_owner(j) && "job_wait: only the job's owner waits for it");
    pthread_mutex_lock(&j->mu);
    if (seconds < 0) {
        while (!atomic_load(&j->done)) pthread_cond_wait(&j->cv, &j->mu);
    } else if (!atomic_load(&j->done)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double end = ts.tv_sec + ts.tv_nsec * 1e-9 + seconds;
        ts.tv_sec = (time_t)end;
        ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
        if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
        if (ts.tv_nsec < 0) ts.tv_nsec = 0;
        while (!atomic_load(&j->done))
            if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) == ETIMEDOUT) break;
    }
    int d = atomic_load(&j->done);
    pthread_mutex_unlock(&j->mu);
    return d;
}

int job_join(Job *j)
{
    assert(is_owner(j) && "job_join: only the job's owner joins it");
    assert(current != j && "job_join: a job cannot join itself");
    if (!j->joined) {
        pthread_join(j->th, NULL);
        j->joined = 1;
    }
    return j->rc;
}

void job_free(Job *j)
{
    if (!j) return;
    if (!j->joined) {
        job_cancel(j);
        job_join(j);
    }
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->pmu);
    free(j);
}

void job_progress(Job *j, long done, long total)
{
    assert(!atomic_load(&j->done) && "job_progress: the job has ended");
    pthread_mutex_lock(&j->pmu);
    atomic_store(&j->p_total, total);
    atomic_store(&j->p_done, done);
    long step = (total + 255) / 256 > 1 ? (total + 255) / 256 : 1;
    if (j->spec.ring && (j->pushed < 0 || done == total || done - j->pushed >= step)) {
        j->pushed = done;
        Event ev = {.kind = EV_PROGRESS, .run_id = j->spec.id, .done = done, .total = total};
        evring_push(j->spec.ring, &ev);
    }
    pthread_mutex_unlock(&j->pmu);
}

int job_pause_requested(Job *j) { return atomic_load(&j->pause) && !atomic_load(&j->cancel); }

int job_wait_resumed(Job *j)
{
    assert(current == j && "job_wait_resumed: only from the job's own function");
    pthread_mutex_lock(&j->mu);
    while (atomic_load(&j->pause) && !atomic_load(&j->cancel)) pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
    return atomic_load(&j->cancel);
}
