/* src/base/job.h -- background jobs: one function run in its own thread,
 * with a cancel flag, a pause flag, progress, and an optional end event,
 * all reported through an EventRing (events.h). The design (what a job is,
 * which thread calls what, lifetime, cancellation) is described at the top
 * of job.c.
 *
 * Threads: job_start, job_wait, job_join and job_free belong to the thread
 * that started the job (its owner; checked with assert). job_cancel,
 * job_pause, job_resume, job_cancelled, job_done, job_progress_get and
 * job_id may be called from any thread. job_wait_resumed only from the
 * job's own thread, inside its function (checked); job_progress from it or
 * from threads working for it (a job's function may fan out). */
#ifndef OB_JOB_H
#define OB_JOB_H

#include <stdint.h>

#include "base/events.h"

typedef struct Job Job;

/* the work; runs in the job's thread. Returns 0 on success, nonzero on
 * failure. It should poll job_cancelled(j) and return soon once it is set. */
typedef int (*JobFn)(Job *j, void *arg);

typedef struct {
    const char *name;  /* for messages and the end event's text ("layer statistics"); copied */
    int64_t id;        /* run_id of the job's events */
    EventRing *ring;   /* where EV_PROGRESS and the end event go (NULL: nowhere) */
    JobFn fn;
    void *arg;         /* borrowed: must outlive the job's thread (job_join) */
    int end_event;     /* 1: when fn returns, push EV_STATUS with status finished (0),
                        * stopped (0 after job_cancel) or failed (nonzero) and the
                        * name in text; it is the job's last event */
} JobSpec;

/* start spec->fn(job, spec->arg) in a new thread; the caller becomes the
 * owner. -1 with err when the thread cannot be created. */
int job_start(Job **out, const JobSpec *spec, char *err);

/* loop(arg) on the calling thread and on up to threads-1 helper jobs named
 * name (fewer when threads cannot be made: slower, same result); returns
 * when all are done. loop takes its work items from arg itself. */
void job_run_parallel(const char *name, int threads, void (*loop)(void *arg), void *arg);

/* fn(ctx, i, err) for every item i in [0, total), in parallel as
 * job_run_parallel does (each thread takes the next item under a lock).
 * After the first failure no new item is taken and err holds that item's
 * message; after each success progress(user, done, total) is called (may be
 * NULL; under the lock, so calls are serial) and a nonzero return stops
 * taking items. 0 all done, -1 an item failed, 1 cancelled by progress. */
int job_for_items(const char *name, int threads, int total, int (*fn)(void *ctx, int i, char *err), void *ctx,
                  int (*progress)(void *user, int done, int total), void *user, char *err);

/* a progress callback for code that reports (done, total) and stops when
 * it returns nonzero: job_progress on the Job *job, nonzero once cancelled */
int job_progress_cb(void *job, int done, int total);

/* ---- any thread ----------------------------------------------------------- */
void job_cancel(Job *j);          /* set the cancel flag (and wake a paused job); idempotent */
int job_cancelled(Job *j);        /* 1 once job_cancel was called */
void job_pause(Job *j);           /* ask the job to wait in job_wait_resumed */
void job_resume(Job *j);
int job_done(Job *j);             /* 1 once fn has returned (its end event is in the ring) */
void job_progress_get(Job *j, long *done, long *total);  /* the latest job_progress */
int64_t job_id(const Job *j);

/* ---- the owner -------------------------------------------------------------- */
/* wait at most `seconds` (< 0: forever) for fn to return; 1 when it has */
int job_wait(Job *j, double seconds);
/* wait for the thread; returns fn's result. Once only. */
int job_join(Job *j);
/* cancel, join if not joined yet, free; NULL is fine */
void job_free(Job *j);

/* ---- the job's own thread ------------------------------------------------- */
/* record progress (done of total) and push it as EV_PROGRESS: the first
 * call, the last (done == total) and about 256 in between are pushed.
 * From the job's thread or its helpers; calls are serialised. */
void job_progress(Job *j, long done, long total);
/* 1 when a pause is requested and the job is not cancelled */
int job_pause_requested(Job *j);
/* block while paused (until job_resume or job_cancel); returns job_cancelled */
int job_wait_resumed(Job *j);
/* the job whose function the calling thread runs, or NULL */
Job *job_current(void);

#endif
