/* tests/test_job.c -- the background-job module (src/base/job.h): a job's
 * result and end event, cancellation (of a running and of a paused job),
 * pause and resume, progress events (ordered, throttled, the last one
 * always sent), many jobs at once on one ring, job_wait's timeout, and
 * job_free of a job that is still running; the thread contracts (only the
 * owner joins, job_wait_resumed only inside the job) abort when broken. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/common.h"
#include "base/job.h"
#include "test.h"

/* every event of the ring, in order */
static int drain(EventRing *r, Event *out, int max)
{
    int n = 0, k;
    while (n < max && (k = evring_pop(r, out + n, max - n)) > 0) n += k;
    return n;
}

static int ret_value(Job *j, void *arg)
{
    (void)j;
    return *(int *)arg;
}

static void test_result_and_end_event(void)
{
    EventRing ring;
    evring_init(&ring, 64);
    char err[OB_ERRLEN];
    int zero = 0, seven = 7;
    Job *a, *b;
    CHECK(job_start(&a, &(JobSpec){.name = "ok job", .id = 11, .ring = &ring, .fn = ret_value, .arg = &zero, .end_event = 1}, err) == 0,
          "start: %s", err);
    CHECK(job_start(&b, &(JobSpec){.name = "bad job", .id = 12, .ring = &ring, .fn = ret_value, .arg = &seven, .end_event = 1}, err) == 0,
          "start: %s", err);
    CHECK(job_wait(a, -1) == 1 && job_done(a), "a done");
    CHECK(job_join(a) == 0, "a returns 0");
    CHECK(job_join(a) == 0, "a second join is harmless");
    CHECK(job_join(b) == 7, "b returns its value");
    CHECK(job_id(a) == 11 && job_id(b) == 12, "ids");
    Event ev[8];
    int n = drain(&ring, ev, 8);
    CHECK(n == 2, "one end event per job (%d)", n);
    for (int i = 0; i < n; i++) {
        CHECK(ev[i].kind == EV_STATUS, "end event kind");
        if (ev[i].run_id == 11) CHECK(ev[i].status == RUN_FINISHED && !strcmp(ev[i].text, "ok job"), "a finished: %s", ev[i].text);
        else CHECK(ev[i].run_id == 12 && ev[i].status == RUN_FAILED && !strcmp(ev[i].text, "bad job"), "b failed");
    }
    job_free(a);
    job_free(b);
    /* no end event unless asked */
    CHECK(job_start(&a, &(JobSpec){.name = "quiet", .id = 13, .ring = &ring, .fn = ret_value, .arg = &zero}, err) == 0, "start");
    CHECK(job_join(a) == 0, "quiet joined");
    CHECK(evring_pop(&ring, ev, 8) == 0, "no end event");
    job_free(a);
    evring_destroy(&ring);
}

/* runs until cancelled, counting its rounds as progress (total unknown: -1) */
static int until_cancelled(Job *j, void *arg)
{
    atomic_long *rounds = arg;
    while (!job_cancelled(j)) {
        if (job_pause_requested(j) && job_wait_resumed(j)) break;
        atomic_fetch_add(rounds, 1);
        ob_sleep(0.0005);
    }
    return 0;
}

/* a job with an end event on a new ring of cap events */
static Job *start_ringed(EventRing *ring, int cap, const char *name, int64_t id, JobFn fn, void *arg)
{
    char err[OB_ERRLEN];
    Job *j = NULL;
    evring_init(ring, cap);
    CHECK(job_start(&j, &(JobSpec){.name = name, .id = id, .ring = ring, .fn = fn, .arg = arg, .end_event = 1}, err) == 0,
          "start: %s", err);
    return j;
}

static void test_cancel_and_pause(void)
{
    EventRing ring;
    atomic_long rounds = 0;
    Job *j = start_ringed(&ring, 16, "loop", 5, until_cancelled, &rounds);
    CHECK(job_wait(j, 0.05) == 0, "still running after the timeout");
    CHECK(!job_done(j) && !job_cancelled(j), "running, not cancelled");
    /* pause: the count stops moving */
    job_pause(j);
    long before = -1, after = -2;
    for (int i = 0; i < 2000 && before != after; i++) { /* until two reads 20 ms apart agree */
        before = atomic_load(&rounds);
        ob_sleep(0.02);
        after = atomic_load(&rounds);
    }
    CHECK(before == after, "paused: no progress (%ld -> %ld)", before, after);
    job_resume(j);
    for (int i = 0; i < 4000 && atomic_load(&rounds) == after; i++) ob_sleep(0.001);
    CHECK(atomic_load(&rounds) > after, "resumed: progress again");
    /* cancel a paused job: the cancel wakes it */
    job_pause(j);
    ob_sleep(0.01);
    job_cancel(j);
    CHECK(job_cancelled(j), "flag set");
    CHECK(job_wait(j, 30) == 1, "a cancelled job ends");
    CHECK(job_join(j) == 0, "returned 0");
    Event ev[16];
    int n = drain(&ring, ev, 16);
    CHECK(n == 1 && ev[0].kind == EV_STATUS && ev[0].status == RUN_STOPPED, "stopped (%d events, status %d)", n,
          n ? (int)ev[0].status : -1);
    job_free(j);
    evring_destroy(&ring);
}

static int counter(Job *j, void *arg)
{
    long total = *(long *)arg;
    for (long i = 0; i <= total; i++) job_progress(j, i, total);
    return 0;
}

static void test_progress(void)
{
    EventRing ring;
    long total = 100000;
    Job *j = start_ringed(&ring, 4096, "count", 9, counter, &total);
    CHECK(job_join(j) == 0, "joined");
    long d, t;
    job_progress_get(j, &d, &t);
    CHECK(d == total && t == total, "progress kept: %ld/%ld", d, t);
    static Event ev[4096];
    int n = drain(&ring, ev, 4096);
    CHECK(ring.dropped == 0, "nothing dropped");
    CHECK(n >= 3 && n <= 300, "throttled: %d events for %ld calls", n, total + 1);
    CHECK(ev[0].kind == EV_PROGRESS && ev[0].done == 0 && ev[0].run_id == 9, "the first call is sent");
    int mono = 1;
    for (int i = 1; i < n - 1; i++) mono &= ev[i].kind == EV_PROGRESS && ev[i].done > ev[i - 1].done && ev[i].total == total;
    CHECK(mono, "in order");
    CHECK(n >= 2 && ev[n - 2].done == total, "the last call (done == total) is sent");
    CHECK(ev[n - 1].kind == EV_STATUS && ev[n - 1].status == RUN_FINISHED, "the end event comes last");
    job_free(j);
    /* without a ring: progress is kept, nothing is pushed */
    char err[OB_ERRLEN];
    CHECK(job_start(&j, &(JobSpec){.name = "no ring", .fn = counter, .arg = &total, .end_event = 1}, err) == 0, "start");
    CHECK(job_join(j) == 0, "joined");
    job_progress_get(j, &d, NULL);
    CHECK(d == total, "progress without a ring");
    job_free(j);
    evring_destroy(&ring);
}

#define NJOBS 64
static void test_many(void)
{
    EventRing ring;
    evring_init(&ring, NJOBS * 300);
    char err[OB_ERRLEN];
    Job *j[NJOBS];
    long total[NJOBS];
    for (int i = 0; i < NJOBS; i++) {
        total[i] = 1000 + i;
        CHECK(job_start(&j[i], &(JobSpec){.name = "many", .id = 100 + i, .ring = &ring, .fn = counter, .arg = &total[i], .end_event = 1},
                        err) == 0, "start %d: %s", i, err);
    }
    for (int i = 0; i < NJOBS; i++) CHECK(job_join(j[i]) == 0, "join %d", i);
    static Event ev[NJOBS * 300];
    int n = drain(&ring, ev, NJOBS * 300);
    CHECK(ring.dropped == 0, "nothing dropped");
    int ends[NJOBS] = {0}, last_done[NJOBS], order_ok = 1, after_end = 0;
    for (int i = 0; i < NJOBS; i++) last_done[i] = -1;
    for (int k = 0; k < n; k++) {
        int i = (int)(ev[k].run_id - 100);
        if (i < 0 || i >= NJOBS) { order_ok = 0; continue; }
        if (ev[k].kind == EV_STATUS) ends[i]++;
        else {
            if (ends[i]) after_end++;
            if (ev[k].done <= last_done[i]) order_ok = 0;
            last_done[i] = (int)ev[k].done;
        }
    }
    int all = 1;
    for (int i = 0; i < NJOBS; i++) all &= ends[i] == 1 && last_done[i] == total[i];
    CHECK(all, "every job: its progress up to its total and one end event");
    CHECK(order_ok, "each job's events in order");
    CHECK(after_end == 0, "no progress after a job's end event");
    for (int i = 0; i < NJOBS; i++) job_free(j[i]);
    evring_destroy(&ring);
}

static void test_free_running(void)
{
    char err[OB_ERRLEN];
    atomic_long rounds = 0;
    Job *j;
    CHECK(job_start(&j, &(JobSpec){.name = "free me", .fn = until_cancelled, .arg = &rounds}, err) == 0, "start");
    job_pause(j); /* a paused job is woken by the cancel in job_free */
    job_free(j);  /* cancels and joins: would hang if the cancel did not reach the job */
    CHECK(1, "freed while running");
    CHECK(job_current() == NULL, "the test thread runs no job");
}

static void *join_from_elsewhere(void *arg)
{
    job_join(arg); /* not the owner: aborts */
    return NULL;
}

/* run f in a child; 1 when the child died by SIGABRT */
static int aborts(void (*f)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        f();
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void wrong_joiner(void)
{
    char err[OB_ERRLEN];
    int zero = 0;
    Job *j;
    if (job_start(&j, &(JobSpec){.name = "owned", .fn = ret_value, .arg = &zero}, err)) _exit(3);
    pthread_t th;
    pthread_create(&th, NULL, join_from_elsewhere, j);
    pthread_join(th, NULL);
}

static void wait_resumed_outside(void)
{
    char err[OB_ERRLEN];
    int zero = 0;
    Job *j;
    if (job_start(&j, &(JobSpec){.name = "owned", .fn = ret_value, .arg = &zero}, err)) _exit(3);
    job_join(j);
    job_wait_resumed(j); /* the owner is not the job's thread: aborts */
}

static void test_contracts(void)
{
#ifdef NDEBUG
    printf("NDEBUG: the thread contracts are not checked in this build\n");
    return;
#endif
    CHECK(aborts(wrong_joiner), "job_join from a thread that is not the owner aborts");
    CHECK(aborts(wait_resumed_outside), "job_wait_resumed outside the job aborts");
}

int main(void)
{
    test_result_and_end_event();
    test_cancel_and_pause();
    test_progress();
    test_many();
    test_free_running();
    test_contracts();
    return test_done("test_job");
}
