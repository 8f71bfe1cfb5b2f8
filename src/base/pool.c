/* src/base/pool.c -- the persistent thread pool (see pool.h; pool_run from
 * any thread but not from a task of the same pool, asserted). Workers wait for a new
 * generation number: spinning for up to POOL_SPIN_S seconds (calls in a
 * decode loop come microseconds apart), then sleeping on a condition
 * variable. Tasks are claimed with an atomic counter. */
#include "base/pool.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"

#define POOL_SPIN_S 100e-6
/* how long pool_run_each waits for a worker to start its task before the
 * caller runs it (a spinning worker starts within a microsecond or two) */
#define POOL_EACH_GRACE_S 10e-6
#define POOL_MAX_THREADS 1024

struct Pool {
    int n;                      /* threads in all, the caller included */
    pthread_t *th;
    pthread_mutex_t mu;         /* guards sleeping on cv_work / cv_done */
    pthread_cond_t cv_work, cv_done;
    pthread_mutex_t run_mu;     /* one pool_run at a time */
    atomic_uint gen;            /* bumped once per pool_run; workers wait for it */
    atomic_int stop;
    /* (generation << 32) | next task: a task is claimed by a CAS that also
     * checks the generation, so a worker that wakes late never runs a task
     * of a newer run with the fields of an older one (or the reverse) */
    _Atomic uint64_t next;
    atomic_int done;            /* tasks finished in the current run */
    /* (generation << 32) | the tasks < 32 taken, each by its own thread or,
     * when that one is late, by the caller: the generation is the current
     * run's in a pool_run_each, and one no worker can hold in a claimed run
     * (a late worker holds one of the last few) */
    _Atomic uint64_t each_taken;
    struct WorkerArg { struct Pool *p; int index; } *args;
    _Atomic(PoolFn) fn;
    _Atomic(void *) ctx;
    atomic_int n_tasks;
    atomic_int refs;            /* pool_ref / pool_free */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* the calling thread's index in the pool whose worker it is (0: not a worker) */
static __thread int tls_index;
/* the pool whose tasks this thread runs now (a worker: its pool; a caller:
 * during pool_run), to catch the reentrant call pool.h forbids */
static __thread const Pool *tls_pool;

int pool_thread_index(void) { return tls_index; }

/* count a finished task of a run of n; the last one wakes the caller */
static void task_done(Pool *p, int n)
{
    if (atomic_fetch_add(&p->done, 1) + 1 == n) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->cv_done);
        pthread_mutex_unlock(&p->mu);
    }
}

/* claim and run tasks of generation g until none is left */
static void run_tasks(Pool *p, unsigned g)
{
    uint64_t v = atomic_load(&p->next);
    for (;;) {
        if ((unsigned)(v >> 32) != g) return;
        PoolFn fn = atomic_load_explicit(&p->fn, memory_order_acquire);
        void *ctx = atomic_load_explicit(&p->ctx, memory_order_acquire);
        int n = atomic_load_explicit(&p->n_tasks, memory_order_acquire);
        int i = (int)(uint32_t)v;
        if (i >= n) return;
        if (!atomic_compare_exchange_weak(&p->next, &v, v + 1)) continue; /* v reloaded */
        fn(ctx, i);
        task_done(p, n);
        v = atomic_load(&p->next);
    }
}

/* take task i of pool_run_each g (tasks from 32 on: always their own
 * thread's); 0 if it is taken or run g is over */
static int take_each(Pool *p, unsigned g, int i)
{
    if (i >= 32) return 1;
    uint64_t v = atomic_load(&p->each_taken), bit = 1ull << i;
    for (;;) {
        if ((unsigned)(v >> 32) != g || (v & bit)) return 0;
        if (atomic_compare_exchange_weak(&p->each_taken, &v, v | bit)) return 1;
    }
}

static void *worker(void *arg)
{
    struct WorkerArg *wa = arg;
    Pool *p = wa->p;
    tls_index = wa->index;
    tls_pool = wa->p;
    unsigned seen = 0; /* gen at creation: a run may start before this thread does */
    for (;;) {
        /* wait for a new generation: spin, then sleep */
        double t0 = ob_now();
        unsigned g;
        int k = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !atomic_load(&p->stop)) {
            cpu_relax();
            if (++k % 64 == 0 && ob_now() - t0 > POOL_SPIN_S) {
                pthread_mutex_lock(&p->mu);
                while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !atomic_load(&p->stop))
                    pthread_cond_wait(&p->cv_work, &p->mu);
                pthread_mutex_unlock(&p->mu);
                break;
            }
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = g;
        /* a pool_run_each of generation g (not of a later one: a worker that
         * missed runs reads the generation first) runs once on every thread */
        if ((unsigned)(atomic_load(&p->each_taken) >> 32) == g) {
            if (take_each(p, g, tls_index)) {
                PoolFn fn = atomic_load(&p->fn);
                fn(atomic_load(&p->ctx), tls_index);
                task_done(p, atomic_load(&p->n_tasks));
            }
        } else run_tasks(p, g);
    }
}

int pool_default_threads(void)
{
    const char *s = getenv("ONEBIT_THREADS");
    long v;
    if (s && *s && !ob_parse_int(s, 1, POOL_MAX_THREADS, &v)) return (int)v;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c < 1 ? 1 : c > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int)c;
}

Pool *pool_new(int n, char *err)
{
    if (n < 1) n = pool_default_threads();
    if (n > POOL_MAX_THREADS) n = POOL_MAX_THREADS;
    Pool *p = ob_calloc(1, sizeof *p);
    p->n = n;
    atomic_init(&p->refs, 1);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    p->th = ob_calloc(n, sizeof(pthread_t));
    p->args = ob_calloc(n, sizeof *p->args);
    for (int i = 1; i < n; i++) {
        p->args[i].p = p;
        p->args[i].index = i;
        int rc = pthread_create(&p->th[i], NULL, worker, &p->args[i]);
        if (rc) {
            ob_seterr(err, "cannot create thread %d of %d: %s", i, n, strerror(rc));
            p->n = i; /* free only the threads that exist */
            pool_free(p);
            return NULL;
        }
    }
    return p;
}

Pool *pool_ref(Pool *p)
{
    if (p) atomic_fetch_add(&p->refs, 1);
    return p;
}

void pool_free(Pool *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    free(p->th);
    free(p->args);
    free(p);
}

int pool_threads(const Pool *p) { return p ? p->n : 1; }

/* wait until all n tasks of the current run are done (not for every worker
 * to show up, in a claimed run): spin, then sleep */
static void wait_done(Pool *p, int n)
{
    double t0 = ob_now();
    int k = 0;
    while (atomic_load(&p->done) != n) {
        cpu_relax();
        if (++k % 64 == 0 && ob_now() - t0 > POOL_SPIN_S) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->done) != n) pthread_cond_wait(&p->cv_done, &p->mu);
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
}

/* publish run g (fn, ctx, n tasks; each: a pool_run_each) and wake the workers */
static unsigned start_run(Pool *p, PoolFn fn, void *ctx, int n_tasks, int each)
{
    unsigned g = atomic_load(&p->gen) + 1;
    /* the new generation goes into `next` first: a worker still in
     * run_tasks for the previous run may have read next = (g-1, i) with
     * i = the old task count; if it then read the new n_tasks (larger) its
     * claim (g-1, i) -> (g-1, i+1) would succeed and run a task of this run
     * with a stale index and count it twice (done would pass n_tasks and
     * pool_run would wait forever). Once next holds generation g, every
     * claim of generation g-1 fails, and a worker that sees the new fields
     * below (seq_cst) also sees this store. In a pool_run_each `next` is
     * (g, n_tasks): nothing to claim. */
    atomic_store(&p->next, (uint64_t)g << 32 | (each ? (unsigned)n_tasks : 0u));
    atomic_store(&p->fn, fn);
    atomic_store(&p->ctx, ctx);
    atomic_store(&p->n_tasks, n_tasks);
    atomic_store(&p->done, 0);
    atomic_store(&p->each_taken, (uint64_t)(each ? g : g + 0x80000000u) << 32);
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->gen, g, memory_order_release);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    return g;
}

void pool_run(Pool *p, PoolFn fn, void *ctx, int n_tasks)
{
    if (n_tasks <= 0) return;
    assert((!p || tls_pool != p) && "pool_run: not reentrant (a task called pool_run on its own pool)");
    if (!p || p->n == 1 || n_tasks == 1) {
        for (int i = 0; i < n_tasks; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->run_mu);
    const Pool *outer = tls_pool;
    tls_pool = p;
    unsigned g = start_run(p, fn, ctx, n_tasks, 0);
    run_tasks(p, g);
    wait_done(p, n_tasks);
    tls_pool = outer;
    pthread_mutex_unlock(&p->run_mu);
}

void pool_run_each(Pool *p, PoolFn fn, void *ctx)
{
    assert((!p || tls_pool != p) && "pool_run_each: not reentrant (a task called it on its own pool)");
    if (!p || p->n == 1) {
        fn(ctx, 0);
        return;
    }
    pthread_mutex_lock(&p->run_mu);
    const Pool *outer = tls_pool;
    tls_pool = p;
    unsigned g = start_run(p, fn, ctx, p->n, 1);
    take_each(p, g, 0);
    fn(ctx, 0);
    task_done(p, p->n);
    /* the tasks of threads that have not started theirs within
     * POOL_EACH_GRACE_S (asleep, or descheduled on a busy machine: waiting
     * for them would cost far more) */
    const uint64_t all = p->n >= 32 ? 0xffffffffu : (1ull << p->n) - 1;
    double t0 = ob_now();
    int k = 0;
    while ((atomic_load(&p->each_taken) & all) != all && (++k % 16 || ob_now() - t0 < POOL_EACH_GRACE_S)) cpu_relax();
    for (int i = 1; i < p->n && i < 32; i++)
        if (take_each(p, g, i)) {
            fn(ctx, i);
            task_done(p, p->n);
        }
    wait_done(p, p->n);
    tls_pool = outer;
    pthread_mutex_unlock(&p->run_mu);
}

/* ---- the global pool ---------------------------------------------------- */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static Pool *g_pool;
static int g_registered; /* atexit(pool_global_free) done */

static void pool_global_free(void)
{
    pthread_mutex_lock(&g_mu);
    Pool *p = g_pool;
    g_pool = NULL;
    pthread_mutex_unlock(&g_mu);
    pool_free(p);
}

Pool *pool_global_ref(void)
{
    pthread_mutex_lock(&g_mu);
    if (!g_pool) {
        char err[OB_ERRLEN];
        g_pool = pool_new(0, err);
        if (!g_pool) g_pool = pool_new(1, err); /* a one-thread pool never fails */
        if (!g_registered) { atexit(pool_global_free); g_registered = 1; }
    }
    Pool *p = pool_ref(g_pool);
    pthread_mutex_unlock(&g_mu);
    return p;
}

int pool_set_global_threads(int n, char *err)
{
    Pool *np = pool_new(n, err);
    if (!np) return -1;
    pthread_mutex_lock(&g_mu);
    Pool *old = g_pool;
    g_pool = np;
    if (!g_registered) { atexit(pool_global_free); g_registered = 1; }
    pthread_mutex_unlock(&g_mu);
    pool_free(old); /* the global's reference: holders keep theirs */
    return 0;
}
