/* tests/test_pool.c -- the persistent thread pool (src/base/pool.c): every task of
 * every run executes exactly once, across runs of changing task counts
 * back to back (a worker still finishing the previous run races the next
 * run's setup) and after pauses long enough for the workers to fall asleep;
 * a run never hangs (a watchdog fails the test instead); pool_run_each runs
 * task i once, on thread i (pool_thread_index) or, for a late worker, on
 * the caller (thread 0), which a pool confined to one CPU forces: there
 * the caller takes over the workers' tasks (checked to happen). Regression
 * test for
 * a claim of generation g-1 succeeding against generation g's task count,
 * which ran a task twice and left pool_run waiting forever. A task that
 * calls pool_run on its own pool (pool.h: not reentrant) aborts instead of
 * deadlocking, on the caller's thread and on a worker's. And the global
 * pool: replacing it (pool_set_global_threads) while another thread holds
 * and runs the old one leaves the old one working until its holder lets go
 * (it used to be freed at once: a use after free). */
#include <pthread.h>
#include <sys/wait.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "base/common.h"
#include "base/pool.h"
#include "test.h"

#define MAXT 64

typedef struct {
    atomic_int hits[MAXT];
    atomic_int bad_index; /* pool_thread_index() out of range, or neither i nor 0 in pool_run_each */
    atomic_int by_caller; /* pool_run_each: tasks i > 0 that ran on the caller */
    int n, threads, each;
} Run;

static void task(void *ctx, int i)
{
    Run *r = ctx;
    if (i >= 0 && i < MAXT) atomic_fetch_add(&r->hits[i], 1);
    else atomic_fetch_add(&r->hits[0], 1000); /* out of range: counted as wrong */
    int t = pool_thread_index();
    if (t < 0 || t >= r->threads || (r->each && t != i && t != 0)) atomic_fetch_add(&r->bad_index, 1);
    if (r->each && i > 0 && t == 0) atomic_fetch_add(&r->by_caller, 1);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL: pool_run did not return within the watchdog time (lost wake-up or miscounted tasks)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

/* n_runs runs on pool p with task counts from `counts`, every 5th (from
 * the 3rd) a pool_run_each (task i on thread i); pause_every > 0 sleeps 1 ms
 * after every pause_every-th run (the workers go to sleep) */
static int exercise(Pool *p, long n_runs, const int *counts, int ncounts, int pause_every)
{
    int bad = 0;
    for (long k = 0; k < n_runs; k++) {
        Run r = {.n = counts[k % ncounts], .threads = pool_threads(p), .each = k % 5 == 2};
        if (r.each) r.n = r.threads;
        for (int i = 0; i < MAXT; i++) atomic_init(&r.hits[i], 0);
        atomic_init(&r.bad_index, 0);
        atomic_init(&r.by_caller, 0);
        if (r.each) pool_run_each(p, task, &r);
        else pool_run(p, task, &r, r.n);
        if (atomic_load(&r.bad_index)) {
            if (bad < 5) fprintf(stderr, "run %ld (n=%d, each %d): %d tasks saw a wrong pool_thread_index\n", k, r.n, r.each, atomic_load(&r.bad_index));
            bad++;
        }
        for (int i = 0; i < MAXT; i++) {
            int want = i < r.n ? 1 : 0, got = atomic_load(&r.hits[i]);
            if (got != want) {
                if (bad < 5) fprintf(stderr, "run %ld (n=%d): task %d ran %d times\n", k, r.n, i, got);
                bad++;
            }
        }
        if (pause_every > 0 && k % pause_every == pause_every - 1) ob_sleep(1e-3);
    }
    return bad;
}

/* pool_run_each with every thread on one CPU: a worker cannot start its
 * task while the caller spins through POOL_EACH_GRACE_S, so the caller takes
 * it over; every task still runs exactly once, on its own thread or on the
 * caller, and at least one is taken over (else the takeover path went
 * untested). The pool's threads inherit the affinity from pool_new. */
static void test_each_takeover(void)
{
    cpu_set_t old, one;
    CHECK(sched_getaffinity(0, sizeof old, &old) == 0, "sched_getaffinity");
    int cpu = -1;
    for (int c = 0; c < CPU_SETSIZE && cpu < 0; c++)
        if (CPU_ISSET(c, &old)) cpu = c;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    CHECK(cpu >= 0 && sched_setaffinity(0, sizeof one, &one) == 0, "confining the test to CPU %d", cpu);
    char err[OB_ERRLEN];
    Pool *p = pool_new(3, err);
    CHECK(p != NULL, "pool_new(3): %s", err);
    if (p) {
        static const int counts[] = {3};
        long taken = 0;
        int bad = 0;
        for (long k = 0; k < 2000; k++) {
            Run r = {.n = 3, .threads = 3, .each = 1};
            for (int i = 0; i < MAXT; i++) atomic_init(&r.hits[i], 0);
            atomic_init(&r.bad_index, 0);
            atomic_init(&r.by_caller, 0);
            pool_run_each(p, task, &r);
            for (int i = 0; i < MAXT; i++) bad += atomic_load(&r.hits[i]) != (i < 3);
            bad += atomic_load(&r.bad_index) != 0;
            taken += atomic_load(&r.by_caller);
        }
        CHECK(bad == 0, "one CPU: %d wrong task counts or thread indices", bad);
        CHECK(taken > 0, "one CPU: the caller never took over a late worker's task in 2000 runs");
        /* and plain runs still work there */
        CHECK(exercise(p, 2000, counts, 1, 0) == 0, "one CPU: pool_run");
        pool_free(p);
    }
    CHECK(sched_setaffinity(0, sizeof old, &old) == 0, "restoring the affinity");
}

static Pool *nested_pool;
static atomic_int nested_ran;
static void nop(void *ctx, int i) { (void)ctx; (void)i; atomic_fetch_add(&nested_ran, 1); }
static void nests(void *ctx, int i)
{
    (void)ctx;
    if (i == *(int *)ctx) pool_run(nested_pool, nop, NULL, 4); /* forbidden */
}

/* 1 when a task i == which that calls pool_run on its pool aborts the process (in a child) */
static int nested_aborts(int which)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char err[OB_ERRLEN];
        alarm(20); /* a deadlock ends as SIGALRM, not SIGABRT */
        signal(SIGALRM, SIG_DFL);
        nested_pool = pool_new(3, err);
        if (!nested_pool) _exit(3);
        int w = which;
        for (int k = 0; k < 200; k++) pool_run_each(nested_pool, nests, &w); /* task 'which' on thread 'which' (mostly) */
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

/* a thread that holds the global pool of the moment and runs on it,
 * while the main thread replaces the global pool again and again */
typedef struct {
    atomic_int stop, bad, runs;
} Holder;

static void *holder(void *arg)
{
    Holder *h = arg;
    static const int counts[] = {8, 3};
    while (!atomic_load(&h->stop)) {
        Pool *p = pool_global_ref();
        int t = pool_threads(p);
        if (exercise(p, 50, counts, 2, 0)) atomic_fetch_add(&h->bad, 1);
        if (pool_threads(p) != t) atomic_fetch_add(&h->bad, 1);
        pool_free(p);
        atomic_fetch_add(&h->runs, 1);
    }
    return NULL;
}

static void test_global_replace(void)
{
    char err[OB_ERRLEN];
    static const int counts[] = {16, 5};
    CHECK(pool_set_global_threads(2, err) == 0, "%s", err);
    Pool *p = pool_global_ref();
    CHECK(pool_threads(p) == 2, "global pool of 2: %d", pool_threads(p));
    CHECK(pool_set_global_threads(3, err) == 0, "%s", err);
    /* the old pool is still whole: its thread count, its workers */
    CHECK(pool_threads(p) == 2, "the replaced pool held here: %d threads (freed?)", pool_threads(p));
    CHECK(exercise(p, 2000, counts, 2, 0) == 0, "the replaced pool held here runs every task once");
    Pool *q = pool_global_ref();
    CHECK(q != p && pool_threads(q) == 3, "the new global pool: %d threads", pool_threads(q));
    pool_free(q);
    pool_free(p);
    /* concurrently */
    Holder h;
    atomic_init(&h.stop, 0);
    atomic_init(&h.bad, 0);
    atomic_init(&h.runs, 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, holder, &h) == 0, "thread");
    for (int k = 0; k < 200; k++) CHECK(pool_set_global_threads(2 + k % 3, err) == 0, "%s", err);
    while (atomic_load(&h.runs) < 20) ob_sleep(1e-3);
    atomic_store(&h.stop, 1);
    pthread_join(th, NULL);
    CHECK(atomic_load(&h.bad) == 0, "%d runs on a held global pool went wrong while it was replaced", atomic_load(&h.bad));
    CHECK(pool_set_global_threads(0, err) == 0, "%s", err);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(120);
    char err[OB_ERRLEN];
    static const int counts[] = {16, 2, 16, 1, 7, 2, 33, 3, 64, 2};
    for (int nt = 2; nt <= 4; nt++) {
        Pool *p = pool_new(nt, err);
        CHECK(p != NULL, "pool_new(%d): %s", nt, err);
        if (!p) continue;
        CHECK(pool_threads(p) == nt, "%d threads", nt);
        int bad = exercise(p, 200000, counts, (int)(sizeof counts / sizeof *counts), 0);
        CHECK(bad == 0, "%d threads, back to back: %d wrong task counts", nt, bad);
        bad = exercise(p, 2000, counts, (int)(sizeof counts / sizeof *counts), 3);
        CHECK(bad == 0, "%d threads, with pauses: %d wrong task counts", nt, bad);
        pool_free(p);
    }
    /* a one-thread pool runs everything on the caller */
    Pool *p1 = pool_new(1, err);
    CHECK(p1 && pool_threads(p1) == 1, "one-thread pool");
    if (p1) {
        CHECK(exercise(p1, 1000, counts, 3, 0) == 0, "one thread: every task once");
        pool_free(p1);
    }
    test_each_takeover();
#ifndef NDEBUG
    CHECK(nested_aborts(0), "pool_run inside a task on the caller's thread aborts");
    CHECK(nested_aborts(1), "pool_run inside a task on a worker aborts");
#endif
    test_global_replace();
    alarm(0);
    return test_done("test_pool");
}
