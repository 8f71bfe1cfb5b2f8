/* src/base/blas.c -- the owner of OpenBLAS's thread count (see blas.h):
 * written by the owner thread only, read by any. */
#include "base/blas.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>

#include "base/common.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int have_owner;
static pthread_t owner;
static atomic_int count; /* 0: not read yet */

int blas_threads_init(int n)
{
    pthread_mutex_lock(&mu);
    int rc = -1;
    if (!have_owner) {
        have_owner = 1;
        owner = pthread_self();
        if (n >= 1) openblas_set_num_threads(n);
        atomic_store(&count, openblas_get_num_threads());
        rc = 0;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

int blas_set_threads(int n, char *err)
{
    if (n < 1) n = 1;
    pthread_mutex_lock(&mu);
    if (!have_owner) { /* a program without blas_threads_init: the first setter owns it */
        have_owner = 1;
        owner = pthread_self();
    }
    if (!pthread_equal(owner, pthread_self())) {
        pthread_mutex_unlock(&mu);
        ob_seterr(err, "the OpenBLAS thread count is set by the main thread only (at start-up)");
        return -1;
    }
    openblas_set_num_threads(n);
    atomic_store(&count, openblas_get_num_threads());
    pthread_mutex_unlock(&mu);
    return 0;
}

int blas_threads(void)
{
    int n = atomic_load(&count);
    return n > 0 ? n : openblas_get_num_threads();
}
