/* src/base/blas.h -- the one place that sets OpenBLAS's thread count.
 *
 * openblas_set_num_threads is process-wide: changing it while another
 * thread is inside a cblas call (a chat reply, a layer job, training) races
 * with that call. So the count is set once, at start-up, by the program's
 * main thread (blas_threads_init, called by main() and by the tests' mains),
 * and afterwards only by that same thread while it knows no cblas call runs
 * (a subcommand applying its --threads before it starts any thread:
 * blas_set_threads). Nothing else calls openblas_set_num_threads; code that
 * wants to know the count (training splits its small products over this
 * many threads) calls blas_threads, from any thread.
 */
#ifndef OB_BLAS_H
#define OB_BLAS_H

/* make the calling thread the owner; n >= 1 sets that many threads, n < 1
 * keeps OpenBLAS's own default ($OPENBLAS_NUM_THREADS or the CPUs). Once,
 * at start-up; a second call is a no-op returning -1. */
int blas_threads_init(int n);
/* the owner thread only, while no cblas call runs: n (>= 1) threads from
 * now on. 0; -1 with err set on another thread (nothing changes) */
int blas_set_threads(int n, char *err);
/* OpenBLAS's thread count (any thread) */
int blas_threads(void);

#endif
