/* src/base/pool.h -- a persistent pthread pool for data-parallel kernels.
 *
 * Threads are created once (pool_new) and wait between calls, spinning
 * briefly and then sleeping on a condition variable, so pool_run costs no
 * thread creation. pool_run(p, fn, ctx, n) calls fn(ctx, i) for every task
 * i in [0, n) across the pool's threads (the caller is one of them) and
 * returns when all tasks are done. Tasks are claimed dynamically, so which
 * thread runs task i varies; callers that need deterministic results make
 * each task's result independent of the thread that runs it.
 *
 * Threads: pool_run and pool_run_each may be called from any thread; they
 * are not reentrant: one caller at a time per pool (it serialises concurrent
 * callers with a mutex), and fn must not call pool_run on the same pool.
 *
 * A pool is reference-counted: pool_new returns one reference, pool_ref
 * takes another, pool_free drops one and the last one stops the threads
 * and frees the pool. Whoever keeps a pool past the call that gave it (a
 * packed layer, a forward running on it) holds a reference, so replacing
 * the global pool never frees one that is in use.
 */
#ifndef OB_POOL_H
#define OB_POOL_H

typedef struct Pool Pool;
typedef void (*PoolFn)(void *ctx, int task);

/* a pool of n threads in all (n-1 workers + the caller); n < 1 means the
 * number of online CPUs. NULL with err set when threads cannot be made. */
Pool *pool_new(int n, char *err);
/* drop a reference; the last one joins the threads and frees p. Not from
 * one of p's own tasks. */
void pool_free(Pool *p);
/* take another reference to p; returns p */
Pool *pool_ref(Pool *p);
int pool_threads(const Pool *p);
void pool_run(Pool *p, PoolFn fn, void *ctx, int n_tasks);
/* fn(ctx, i) once for every thread i of the pool, on thread i (0 = the
 * caller, i = pool_thread_index() on worker i) unless worker i has not
 * started it by the time the caller has run task 0: then the caller runs it
 * (a sleeping or descheduled worker would cost far more). Returns when all
 * are done. For work that should stay in one core's caches, read later by
 * the same thread in a pool_run (whose tasks may run anywhere: use
 * pool_thread_index there); task i must not depend on running on thread i.
 * From worker 32 on, tasks always run on their own thread. */
void pool_run_each(Pool *p, PoolFn fn, void *ctx);
/* the calling thread's index in its pool (1..n-1 on a worker; 0 on any
 * other thread, the caller of pool_run included) */
int pool_thread_index(void);

/* The process-wide default pool, created on first use with $ONEBIT_THREADS
 * threads (default: online CPUs), with a reference taken for the caller
 * (release it with pool_free). Any thread. */
Pool *pool_global_ref(void);
/* replace the global pool by one of n threads (n < 1: the default) for the
 * callers of pool_global_ref from now on; whoever holds the old one keeps
 * it until they drop it. 0, or -1 with err set. Any thread. */
int pool_set_global_threads(int n, char *err);
/* the default thread count: $ONEBIT_THREADS if valid, else online CPUs */
int pool_default_threads(void);

#endif
