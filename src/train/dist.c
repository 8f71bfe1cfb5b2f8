/* src/train/dist.c -- dist.h: MPI (MPI_THREAD_SERIALIZED) when built with
 * HAVE_MPI and started by a launcher, else rank 0 of 1. dist_init and
 * dist_finalize from the main thread; the rest from one thread at a time
 * (the trainer's). */
#include "config.h"
#include "train/dist.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/file.h"

#ifdef HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_mpi = 0;
#ifdef HAVE_MPI
static float *g_stage; /* the ZeRO-1 collectives' staging buffer, g_stage_n floats */
static size_t g_stage_n;
#endif

static int launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

int dist_init(int *argc, char ***argv, char *err)
{
    if (g_mpi || !launched()) return 0;
#ifdef HAVE_MPI
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
        ob_seterr(err, "MPI_Init_thread failed");
        return -1;
    }
    g_mpi = 1;
    if (provided < MPI_THREAD_SERIALIZED) {
        ob_seterr(err, "the MPI library does not support MPI_THREAD_SERIALIZED (got level %d)", provided);
        return -1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    return 0;
#else
    (void)argc; (void)argv;
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (n && atoi(n) > 1) {
        ob_seterr(err, "started by mpirun with %s ranks, but this onebit-tui was built without MPI "
                       "(./configure --with-mpi)", n);
        return -1;
    }
    return 0;
#endif
}

void dist_finalize(void)
{
#ifdef HAVE_MPI
    if (g_mpi) MPI_Finalize();
    free(g_stage);
    g_stage = NULL;
    g_stage_n = 0;
#endif
    g_mpi = 0;
    g_rank = 0;
    g_size = 1;
}

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }

int dist_any(int flag)
{
#ifdef HAVE_MPI
    if (g_size > 1) {
        int in = flag != 0, out = 0;
        MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
        return out;
    }
#endif
    return flag != 0;
}

void dist_sum_ordered(double *v, int n)
{
#ifdef HAVE_MPI
    if (g_size > 1 && n > 0) {
        double *all = ob_malloc((size_t)n * g_size * sizeof(double));
        MPI_Allgather(v, n, MPI_DOUBLE, all, n, MPI_DOUBLE, MPI_COMM_WORLD);
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int r = 0; r < g_size; r++) s += all[(size_t)r * n + i];
            v[i] = s;
        }
        free(all);
    }
#else
    (void)v; (void)n;
#endif
}

void dist_sum_f32(float *buf, size_t n)
{
#ifdef HAVE_MPI
    if (g_size > 1)
        for (size_t o = 0; o < n; o += DIST_BUCKET) {
            size_t k = n - o < DIST_BUCKET ? n - o : DIST_BUCKET;
            MPI_Allreduce(MPI_IN_PLACE, buf + o, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        }
#else
    (void)buf; (void)n;
#endif
}

#ifdef HAVE_MPI
/* the rounds of the ZeRO-1 collectives: in round k rank r's piece is
 * [off[r] + k·P, +cnt[r]) with P = DIST_BUCKET / size; returns the number
 * of rounds (0: nothing to move) */
static size_t zero_rounds(const size_t *off, int size, size_t *P)
{
    size_t most = 0;
    for (int r = 0; r < size; r++)
        if (off[r + 1] - off[r] > most) most = off[r + 1] - off[r];
    *P = DIST_BUCKET / (size_t)size;
    return (most + *P - 1) / *P;
}

/* round k's counts and displacements into the staging buffer */
static void zero_round(const size_t *off, int size, size_t P, size_t k, int *cnt, int *dsp)
{
    size_t at = 0;
    for (int r = 0; r < size; r++) {
        size_t len = off[r + 1] - off[r], c = len > k * P ? len - k * P : 0;
        cnt[r] = (int)(c < P ? c : P);
        dsp[r] = (int)at;
        at += (size_t)cnt[r];
    }
}
#endif

/* one ZeRO-1 collective: reduce-scatter (gather = 0) or all-gather; with
 * one rank the slice is the whole arena and nothing moves */
static void zero_collective(float *buf, const size_t *off, int gather)
{
#ifdef HAVE_MPI
    size_t P, nr = g_size > 1 ? zero_rounds(off, g_size, &P) : 0;
    if (!nr) return;
    /* one staging buffer kept from call to call (until dist_finalize): a
     * fresh one each time costs the transport far more than the copies */
    size_t need = off[g_size] < DIST_BUCKET ? off[g_size] : DIST_BUCKET;
    if (need > g_stage_n) {
        free(g_stage);
        g_stage = ob_malloc(need * sizeof(float));
        g_stage_n = need;
    }
    float *stage = g_stage;
    int *cnt = ob_malloc(2 * (size_t)g_size * sizeof(int)), *dsp = cnt + g_size;
    for (size_t k = 0; k < nr; k++) {
        zero_round(off, g_size, P, k, cnt, dsp);
        float *mine = buf + off[g_rank] + k * P;
        if (!gather) {
            for (int r = 0; r < g_size; r++)
                if (cnt[r]) memcpy(stage + dsp[r], buf + off[r] + k * P, (size_t)cnt[r] * sizeof(float));
            MPI_Reduce_scatter(stage, mine, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        } else {
            MPI_Allgatherv(mine, cnt[g_rank], MPI_FLOAT, stage, cnt, dsp, MPI_FLOAT, MPI_COMM_WORLD);
            for (int r = 0; r < g_size; r++)
                if (r != g_rank && cnt[r]) memcpy(buf + off[r] + k * P, stage + dsp[r], (size_t)cnt[r] * sizeof(float));
        }
    }
    free(cnt);
#else
    (void)buf; (void)off; (void)gather;
#endif
}

#ifdef HAVE_MPI
/* rank 0 <-> rank r, bytes at p, in chunks below 1 GiB */
static void zero_p2p(void *p, size_t bytes, int r, int send)
{
    const size_t chunk = (size_t)1 << 30;
    for (size_t o = 0; o < bytes; o += chunk) {
        int k = (int)(bytes - o < chunk ? bytes - o : chunk);
        if (send) MPI_Send((char *)p + o, k, MPI_BYTE, r, 17, MPI_COMM_WORLD);
        else MPI_Recv((char *)p + o, k, MPI_BYTE, r, 17, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
}
#endif

void dist_reduce_scatter_f32(float *buf, const size_t *off) { zero_collective(buf, off, 0); }
void dist_allgather_f32(float *buf, const size_t *off) { zero_collective(buf, off, 1); }

/* dist_gather (to_root) and dist_scatter: rank 0 copies its own slice and
 * exchanges the others' with their ranks in rank order */
static void zero_move(void *all, void *mine, const size_t *off, size_t elem, int to_root)
{
    size_t n0 = (off[1] - off[0]) * elem;
    if (g_rank == 0 && n0) {
        if (to_root) memcpy((char *)all + off[0] * elem, mine, n0);
        else memcpy(mine, (char *)all + off[0] * elem, n0);
    }
#ifdef HAVE_MPI
    for (int r = 1; r < g_size; r++) {
        size_t n = (off[r + 1] - off[r]) * elem;
        if (g_rank == 0) zero_p2p((char *)all + off[r] * elem, n, r, !to_root);
        else if (g_rank == r) zero_p2p(mine, n, 0, to_root);
    }
#endif
}

void dist_gather(const void *mine, void *all, const size_t *off, size_t elem) { zero_move(all, (void *)mine, off, elem, 1); }
void dist_scatter(const void *all, void *mine, const size_t *off, size_t elem) { zero_move((void *)all, mine, off, elem, 0); }

void dist_bcast(void *buf, size_t bytes)
{
#ifdef HAVE_MPI
    const size_t chunk = (size_t)1 << 30;
    if (g_size > 1)
        for (size_t o = 0; o < bytes; o += chunk) {
            size_t k = bytes - o < chunk ? bytes - o : chunk;
            MPI_Bcast((char *)buf + o, (int)k, MPI_BYTE, 0, MPI_COMM_WORLD);
        }
#else
    (void)buf; (void)bytes;
#endif
}

int dist_same(const void *buf, size_t bytes)
{
    if (g_size < 2) return 1;
    uint64_t h = file_fnv1a(FILE_FNV_INIT, buf, bytes), h0 = h;
    dist_bcast(&h0, sizeof h0);
    return !dist_any(h != h0);
}

void dist_barrier(void)
{
#ifdef HAVE_MPI
    if (g_size > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

void dist_abort(int code, const char *msg)
{
    if (g_size <= 1) return;
    fprintf(stderr, "onebit-tui: rank %d of %d: %s: ending all ranks\n", g_rank, g_size, msg ? msg : "failed");
    fflush(stderr);
#ifdef HAVE_MPI
    MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}
