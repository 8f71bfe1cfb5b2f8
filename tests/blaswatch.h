/* tests/blaswatch.h -- a thread that watches OpenBLAS's thread count while
 * a test runs something, and counts every time it differs from what the
 * test set: nothing but the main thread may change it (src/base/blas.h),
 * since other threads may be in cblas at the same moment. */
#ifndef OB_TEST_BLASWATCH_H
#define OB_TEST_BLASWATCH_H

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    pthread_t th;
    int want;
    atomic_int stop, changed, polls;
} BlasWatch;

static void *blaswatch_main(void *arg)
{
    BlasWatch *w = arg;
    while (!atomic_load(&w->stop)) {
        if (openblas_get_num_threads() != w->want) atomic_fetch_add(&w->changed, 1);
        atomic_fetch_add(&w->polls, 1);
    }
    return NULL;
}

/* watch for a count other than `want` (the current one) */
static inline int blaswatch_start(BlasWatch *w)
{
    w->want = openblas_get_num_threads();
    atomic_init(&w->stop, 0);
    atomic_init(&w->changed, 0);
    atomic_init(&w->polls, 0);
    return pthread_create(&w->th, NULL, blaswatch_main, w);
}

/* stop; the number of polls that saw another count (also after the end) */
static inline int blaswatch_stop(BlasWatch *w)
{
    atomic_store(&w->stop, 1);
    pthread_join(w->th, NULL);
    return atomic_load(&w->changed) + (openblas_get_num_threads() != w->want);
}

#endif
