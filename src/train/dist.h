/* src/train/dist.h -- data parallelism across processes (issue 17): the
 * only place that talks MPI. Built with MPI (./configure --with-mpi,
 * HAVE_MPI) a program started by mpirun is rank dist_rank() of
 * dist_size(); otherwise, or when the process was not started by an MPI
 * launcher, it is rank 0 of 1 and every call below is a no-op (the same API,
 * so that the trainer has no #ifdef).
 *
 * Threads: MPI is initialised with MPI_THREAD_SERIALIZED. dist_init and
 * dist_finalize belong to the program's main thread; every other call is
 * made by one thread at a time, in practice the trainer's job thread while
 * the main thread makes none (it only polls the event ring). The collectives
 * must be called by every rank in the same order.
 *
 * Determinism: dist_sum_f32 sums in fixed buckets of DIST_BUCKET floats in
 * arena order (MPI_Allreduce, MPI_SUM); with 2 ranks a+b is exact whatever
 * the order, so 2 ranks give the bits of 1 rank with --accum 2.
 * dist_sum_ordered gathers every rank's values and adds them in rank order
 * (the order of --accum's micro-batches).
 *
 * ZeRO-1 (the trainer's optimizer step): the parameter arena is cut into
 * one contiguous slice per rank, off[r] .. off[r+1] (train/qat.h's
 * qat_shard_offsets); dist_reduce_scatter_f32 leaves on each rank the sum
 * of its own slice (MPI_Reduce_scatter, MPI_SUM: with 2 ranks the bits of
 * dist_sum_f32's), dist_allgather_f32 copies every rank's slice to every
 * rank. Both go in rounds of at most DIST_BUCKET floats over all ranks
 * through one staging buffer of that size; together they move the bytes
 * of one allreduce. dist_gather / dist_scatter move slices of elements of
 * any size between rank 0 and the others (checkpoints). */
#ifndef OB_DIST_H
#define OB_DIST_H

#include <stddef.h>

#define DIST_BUCKET ((size_t)1 << 22) /* floats per allreduce (16 MiB) */

/* Join the MPI job when this process was started by an MPI launcher (mpirun
 * sets OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK); else stay rank 0 of 1.
 * Started by a launcher with more than one rank but built without MPI: -1
 * (N independent runs would write the same files). Idempotent. */
int dist_init(int *argc, char ***argv, char *err);
/* leave the MPI job (after the last collective); no-op without one */
void dist_finalize(void);
int dist_rank(void);
int dist_size(void);
/* 1 on every rank when flag is nonzero on any rank */
int dist_any(int flag);
/* v[0..n) := Σ over ranks in rank order (0.0 + v_rank0 + v_rank1 + ...) */
void dist_sum_ordered(double *v, int n);
/* buf[0..n) := Σ over ranks, in place, in buckets of DIST_BUCKET floats */
void dist_sum_f32(float *buf, size_t n);
/* buf[off[r], off[r+1]) := Σ over ranks of it, on rank r (off: size + 1
 * offsets, off[0] = 0, off[size] = n); the rest of buf is left undefined */
void dist_reduce_scatter_f32(float *buf, const size_t *off);
/* buf[off[r], off[r+1]) := rank r's, on every rank */
void dist_allgather_f32(float *buf, const size_t *off);
/* rank r's mine (off[r+1] − off[r] elements of elem bytes) to
 * all + off[r]·elem on rank 0 (all is only used there) */
void dist_gather(const void *mine, void *all, const size_t *off, size_t elem);
/* the reverse: all + off[r]·elem on rank 0 to rank r's mine */
void dist_scatter(const void *all, void *mine, const size_t *off, size_t elem);
/* rank 0's bytes to every rank (in chunks below 1 GiB) */
void dist_bcast(void *buf, size_t bytes);
/* 1 on every rank when buf's bytes (FNV-1a) are rank 0's on every rank:
 * that the replicas of the trained state did not drift apart */
int dist_same(const void *buf, size_t bytes);
/* every rank waits for the others */
void dist_barrier(void);
/* end the whole job at once: msg to stderr (with the rank), MPI_Abort(code)
 * with more than one rank, else nothing (returns) */
void dist_abort(int code, const char *msg);

#endif
