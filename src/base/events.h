/* src/base/events.h -- progress events from worker threads (training, layer
 * statistics, generation) to their consumers (the CLI, the run store, the
 * UI): a mutex-guarded ring buffer plus a self-pipe whose read end a
 * consumer can poll() on, so an idle UI blocks instead of spinning.
 * Producers never block: when the ring is full the oldest event is dropped
 * and counted. Any number of threads may push; one thread pops a ring.
 * evring_intern may be called from any thread.
 *
 * Events are plain values (copied into and out of rings, kept in arrays by
 * the run store's writer), so text is a fixed buffer for messages. A path
 * must arrive intact however long it is, so paths travel in `path`: a
 * pointer to an interned copy (evring_intern) that lives as long as the
 * process and is never freed, so any copy of the event may use it. */
#ifndef OB_EVENTS_H
#define OB_EVENTS_H

#include <pthread.h>
#include <stdint.h>

typedef enum {
    EV_STEP = 1,   /* one optimizer step finished */
    EV_EVAL,       /* a held-out evaluation finished */
    EV_CKPT,       /* a checkpoint was written (path) */
    EV_STATUS,     /* status changed (status, msg) */
    EV_LOG,        /* a line of text for a log (msg) */
    EV_PROGRESS,   /* generic progress of a background job (done/total) */
    EV_TOKEN,      /* generation produced text (msg) */
    EV_REQUEST,    /* one consumer asks others in the same process (the workbench's
                    * screens) for something: req says what (ui/app.h) */
} EventKind;

typedef enum {
    RUN_PENDING = 0, RUN_RUNNING, RUN_PAUSED, RUN_FINISHED, RUN_FAILED, RUN_STOPPED, RUN_INTERRUPTED,
} RunStatus;
const char *run_status_name(RunStatus s); /* "running", "paused", ... */

typedef struct {
    EventKind kind;
    int64_t run_id;       /* whose event: a run, a job, a chat */
    int step, total_steps;
    double loss, kl, mse, lr, grad_norm, tokens_per_s, elapsed, eta;
    double eval_nll, eval_ppl;   /* EV_EVAL */
    long done, total;            /* EV_PROGRESS */
    RunStatus status;            /* EV_STATUS */
    int req;                     /* EV_REQUEST: what is asked (the consumers' own numbers) */
    char text[512];              /* EV_STATUS/EV_LOG message, EV_TOKEN text; EV_CKPT: the path, for display only (may be cut) */
    const char *path;            /* EV_CKPT: the full path (evring_intern), or NULL: text is the path */
} Event;

/* an immutable copy of s that lives until the process exits; the same
 * string gives the same pointer (so a run's one checkpoint path costs one
 * copy however many checkpoints are written). For paths in events. */
const char *evring_intern(const char *s);
/* the path an EV_CKPT names: ev->path, else ev->text */
static inline const char *event_path(const Event *ev) { return ev->path ? ev->path : ev->text; }

typedef struct {
    pthread_mutex_t mu;
    Event *buf;
    int cap, head, count;
    long dropped;
    int pipefd[2];               /* [0]: poll() this for readability */
} EventRing;

int evring_init(EventRing *r, int capacity);
void evring_destroy(EventRing *r);
/* copy ev into the ring and wake the consumer (never blocks) */
void evring_push(EventRing *r, const Event *ev);
/* pop up to max events into out; returns how many. Drains the pipe. */
int evring_pop(EventRing *r, Event *out, int max);
/* file descriptor that becomes readable after a push */
int evring_fd(const EventRing *r);

#endif
