/* src/onebit/bitlinear.c -- the OneBit layer (see bitlinear.h): packing,
 * the scalar reference, the forward on the layer's own execution context
 * (kernel, precision, pool: bl->ex) and the defaults new layers take.
 * Forwards: any thread, concurrently; writing a layer: its owner only. */
#include "onebit/bitlinear.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/file.h"
#include "base/pool.h"
#include "kernels/kernels.h"
#include "model/model.h"

/* kbits for the layer's kernel: allocated (zeroed) when it reads them, none
 * when it reads only the canonical bits */
static void kbits_fit(BitLinear *bl)
{
    if (bl->ex.kernel->needs_kbits && !bl->kbits) bl->kbits = ob_huge_alloc(kern_kbits_bytes(&bl->km));
    else if (!bl->ex.kernel->needs_kbits && bl->kbits) {
        free(bl->kbits);
        bl->kbits = NULL;
    }
    bl->km.kbits = bl->kbits;
}

static size_t bits_bytes(const BitLinear *bl) { return (size_t)bl->out * bl->words_per_row * sizeof(uint64_t); }

/* a layer on the signs `mapped` (NULL: a zeroed buffer of its own) */
static BitLinear *make(int out, int in, const uint64_t *mapped)
{
    BitLinear *bl = ob_calloc(1, sizeof *bl);
    bl->in = in;
    bl->out = out;
    bl->words_per_row = (in + 63) / 64;
    /* read only when mapped: nothing writes a mapped layer's bits (bits_own first) */
    bl->bits = mapped ? (uint64_t *)mapped : ob_aligned_alloc(64, bits_bytes(bl));
    bl->bits_mapped = mapped != NULL;
    bl->g = ob_aligned_alloc(64, (size_t)in * sizeof(float));
    bl->h = ob_aligned_alloc(64, (size_t)out * sizeof(float));
    bl->km = (KernMat){in, out, bl->words_per_row, bl->bits, bl->h, NULL, KERN_LAYOUT_BW};
    for (int i = 0; i < in; i++) bl->g[i] = 1.0f;
    for (int i = 0; i < out; i++) bl->h[i] = 1.0f;
    bl->norm = 1;
    bitlinear_default_exec(&bl->ex);
    kbits_fit(bl);
    atomic_init(&bl->running, 0);
    return bl;
}

BitLinear *bitlinear_new(int out, int in) { return make(out, in, NULL); }

BitLinear *bitlinear_new_mapped(int out, int in, const uint64_t *bits)
{
    BitLinear *bl = make(out, in, bits);
    bitlinear_repack(bl);
    return bl;
}

/* the layer owns its canonical signs from now on (about to write them):
 * for mapped ones a buffer of its own, contents undefined */
static void bits_own(BitLinear *bl)
{
    if (!bl->bits_mapped) return;
    bl->bits = ob_aligned_alloc(64, bits_bytes(bl));
    bl->km.bits = bl->bits;
    bl->bits_mapped = 0;
}

void bitlinear_free(BitLinear *bl)
{
    if (!bl) return;
    kern_exec_fini(&bl->ex);
    if (!bl->bits_mapped) free(bl->bits);
    free(bl->g);
    free(bl->h);
    free(bl->kbits);
    bitlinear_set_mos(bl, 0, NULL, NULL, NULL);
    free(bl);
}

int bitlinear_set_mos(BitLinear *bl, int E, const float *router, const float *g_experts, const float *h_experts)
{
    if (E != 0 && (E < 2 || E > BITLINEAR_MOS_MAX)) return -1;
    free(bl->router); free(bl->g_experts); free(bl->h_experts); free(bl->ones);
    bl->router = bl->g_experts = bl->h_experts = bl->ones = NULL;
    bl->mos = E;
    bl->km.h = bl->h;
    if (!E) return 0;
    size_t ni = (size_t)E * bl->in * sizeof(float), no = (size_t)E * bl->out * sizeof(float);
    bl->router = ob_aligned_alloc(64, ni);
    bl->g_experts = ob_aligned_alloc(64, ni);
    bl->h_experts = ob_aligned_alloc(64, no);
    memcpy(bl->router, router, ni);
    memcpy(bl->g_experts, g_experts, ni);
    memcpy(bl->h_experts, h_experts, no);
    bl->ones = ob_aligned_alloc(64, (size_t)bl->out * sizeof(float));
    for (int i = 0; i < bl->out; i++) bl->ones[i] = 1.0f;
    bl->km.h = bl->ones;
    return 0;
}

/* MoS: the router's probabilities r (E) of token x (in): its E logits by
 * gemv (a KernExec's gemv_rows: the kernel's FP32 GEMV), then softmax */
static void mos_route(const BitLinear *bl, void (*gemv)(const float *, const float *, float *, int, int, int), const float *x,
                      float *r)
{
    gemv(bl->router, x, r, bl->in, 0, bl->mos);
    model_softmax(r, bl->mos);
}

/* MoS: v (n) = r · M (E, n): g(x) or h(x) */
static void mos_mix(const float *r, const float *M, int E, int n, float *v)
{
    for (int i = 0; i < n; i++) v[i] = r[0] * M[i];
    for (int e = 1; e < E; e++)
        for (int i = 0; i < n; i++) v[i] += r[e] * M[(size_t)e * n + i];
}

void bitlinear_signs(const float *W, int out, int in, uint64_t *bits)
{
    int wpr = (in + 63) / 64;
    for (int r = 0; r < out; r++) {
        uint64_t *row = bits + (size_t)r * wpr;
        memset(row, 0, wpr * sizeof(uint64_t));
        const float *w = W + (size_t)r * in;
        for (int c = 0; c < in; c++)
            if (!(w[c] < 0)) row[c >> 6] |= 1ull << (c & 63);
    }
}

void bitlinear_pack(BitLinear *bl, const float *W)
{
    bits_own(bl);
    bitlinear_signs(W, bl->out, bl->in, bl->bits);
    bitlinear_repack(bl);
}

void bitlinear_repack(BitLinear *bl)
{
    kbits_fit(bl);
    const int layout = kern_layout_for(bl->ex.kernel, bl->ex.act);
    if (bl->kbits) kern_repack(&bl->km, layout);
    else bl->km.layout = layout;
    /* mapped signs were read (a kbits layout built, or the padding checked
     * by the loader): not kept resident beside kbits; a kernel without
     * kbits reads them back from the file at its first forward */
    if (bl->bits_mapped) file_map_drop(bl->bits, bits_bytes(bl));
}

static void repack_task(void *ctx, int i) { bitlinear_repack(((BitLinear *const *)ctx)[i]); }

int bitlinear_set_exec_all(BitLinear *const *bl, int n, const KernExec *ex, char *err)
{
    /* claim every layer (running 0 -> -1: no forward in it, and none can
     * start until released), or release the ones claimed and fail */
    for (int i = 0; i < n; i++) {
        int idle = 0;
        if (!atomic_compare_exchange_strong(&bl[i]->running, &idle, -1)) {
            while (i-- > 0) atomic_store(&bl[i]->running, 0);
            ob_seterr(err, "a forward is running on this layer: change its execution context between forwards");
            return -1;
        }
    }
    /* the contexts here (they hold pool references: pool_free is not for
     * a pool's own tasks), the layouts a layer a task on ex's pool: the 7B
     * student's 224 layers, fp32 <-> int8: 0.51-0.83 s on one thread,
     * 0.26-0.43 s on two */
    for (int i = 0; i < n; i++) kern_exec_copy(&bl[i]->ex, ex);
    if (ex->pool && n > 1) pool_run(ex->pool, repack_task, (void *)bl, n);
    else
        for (int i = 0; i < n; i++) bitlinear_repack(bl[i]);
    for (int i = 0; i < n; i++) atomic_store(&bl[i]->running, 0);
    return 0;
}

int bitlinear_set_exec(BitLinear *bl, const KernExec *ex, char *err) { return bitlinear_set_exec_all(&bl, 1, ex, err); }

void bitlinear_set_bits(BitLinear *bl, const uint64_t *bits)
{
    bits_own(bl);
    memcpy(bl->bits, bits, bits_bytes(bl));
    int tail = bl->in & 63;
    if (tail) /* keep the padding zero whatever the file said */
        for (int r = 0; r < bl->out; r++) bl->bits[(size_t)r * bl->words_per_row + bl->words_per_row - 1] &= (1ull << tail) - 1;
    bitlinear_repack(bl);
}

void bitlinear_get_bits(const BitLinear *bl, uint64_t *bits)
{
    memcpy(bits, bl->bits, bits_bytes(bl));
}

void bitlinear_set_scales(BitLinear *bl, const float *g, const float *h)
{
    memcpy(bl->g, g, (size_t)bl->in * sizeof(float));
    memcpy(bl->h, h, (size_t)bl->out * sizeof(float));
}

int bitlinear_sign(const BitLinear *bl, int row, int col) { return kern_sign(&bl->km, row, col); }

void bitlinear_layernorm(float *y, int n) { kern_layernorm_ref(y, y, n); }

void bitlinear_forward_ref(const BitLinear *bl, const float *x, float *y, int N)
{
    float *gx = ob_malloc((size_t)bl->in * sizeof(float)), *gv = NULL, *hv = NULL, rt[BITLINEAR_MOS_MAX];
    if (bl->mos) {
        gv = ob_malloc((size_t)bl->in * sizeof(float));
        hv = ob_malloc((size_t)bl->out * sizeof(float));
    }
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * bl->in, *g = bl->g, *h = bl->h;
        float *yn = y + (size_t)n * bl->out;
        if (bl->mos) {
            mos_route(bl, kern_gemv_rows_ref, xn, rt);
            mos_mix(rt, bl->g_experts, bl->mos, bl->in, gv);
            mos_mix(rt, bl->h_experts, bl->mos, bl->out, hv);
            g = gv;
            h = hv;
        }
        for (int c = 0; c < bl->in; c++) gx[c] = xn[c] * g[c];
        for (int r = 0; r < bl->out; r++) {
            float acc = 0.0f;
            for (int c = 0; c < bl->in; c++) acc += bitlinear_sign(bl, r, c) > 0 ? gx[c] : -gx[c];
            yn[r] = acc * h[r];
        }
        if (bl->norm) bitlinear_layernorm(yn, bl->out);
    }
    free(gx);
    free(gv);
    free(hv);
}

/* ---- the fast path: kernel variants on the thread pool ----------------- */

/* per-thread scratch, grown as needed and kept (no allocation per call);
 * freed by a thread-specific-data destructor when the thread exits (chat and
 * training start threads of their own) */
enum { SCR_GX, SCR_ACC, SCR_SCALE, SCR_Q, SCR_ACC16, SCR_PREP, SCR_MOS, SCR_RANGES, SCR_N };
typedef struct {
    void *p[SCR_N];      /* 64-byte aligned buffers, by SCR_* */
    size_t have[SCR_N];  /* their sizes in bytes */
} Scratch;
static pthread_key_t s_key;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    Scratch *s = p;
    for (int i = 0; i < SCR_N; i++) free(s->p[i]);
    free(s);
}

static void scratch_key_init(void) { pthread_key_create(&s_key, scratch_free); }

static Scratch *scratch_get(void)
{
    pthread_once(&s_once, scratch_key_init);
    Scratch *s = pthread_getspecific(s_key);
    if (!s) {
        s = ob_calloc(1, sizeof *s);
        pthread_setspecific(s_key, s);
    }
    return s;
}

/* buffer `which` of s, at least n bytes */
static void *scratch_bytes(Scratch *s, int which, size_t n)
{
    if (s->have[which] < n) {
        free(s->p[which]);
        s->p[which] = ob_aligned_alloc(64, n);
        s->have[which] = n;
    }
    return s->p[which];
}

static float *scratch(Scratch *s, int which, size_t n) { return scratch_bytes(s, which, n * sizeof(float)); }

/* the kernels' FP32 sums of bl for N tokens: y itself when they are its
 * output (no LayerNorm, no mixture of scales) and its rows need no padding
 * (out a multiple of KERN_ROWBLK: the sums of token n then start at
 * y + n * out), which saves fwd_norm_task a copy of every output (1.7-1.8%
 * of a 7B no-norm student's 128-token int8 prompt by the profile); else
 * scratch buffer SCR_ACC of n floats */
static int acc_is_y(const BitLinear *bl) { return !bl->norm && !bl->mos && bl->out % KERN_ROWBLK == 0; }

static float *acc_for(const BitLinear *bl, float *y, Scratch *sc, size_t n)
{
    if (acc_is_y(bl)) return y;
    return scratch(sc, SCR_ACC, n);
}

/* panels (KERN_PANEL row blocks) of m */
static int npanels(const KernMat *m) { return (kern_nblk(m) + KERN_PANEL - 1) / KERN_PANEL; }

/* bytes of one copy of the kernel's int8 preparation for N tokens, rounded
 * up so that every copy starts 64-byte aligned */
static size_t prep_copy_bytes(const BitKernel *K, const KernMat *m, int N) { return (K->prep_q8_bytes(m, N) + 63) & ~(size_t)63; }

/* a range of panels, claimed from the front by its owner and from the back
 * by the others: (back << 32) | front, one cache line each */
typedef struct {
    _Atomic uint64_t fb;
    char pad[64 - sizeof(uint64_t)];
} PanelRange;

#define FWD_MAX_RANGES 64

/* int8 activations for at most this many tokens: every thread makes the
 * kernel's tables (and the quantized input) itself, in its own copy. One
 * shared copy, made by one thread and read by all, costs more: before the
 * next call can write it, every cache line of it must be taken back from the
 * other cores (11008x4096, N = 1, 2 threads: 15 us for 80 KB of tables, against
 * 1.4 us on one thread; the rows take 60-100 us) */
#define FWD_COPIES_N 8
/* int8 with the kernel's tables: tokens per call of the kernels (see
 * bitlinear_forward). 4096x4096, 2 threads, in-process medians: N = 64 in
 * chunks of 8 1.51 ms against 1.98 in one; N = 512 12.6 against 25.0; chunks
 * of 16 were no better than one */
#define FWD_CHUNK_N FWD_COPIES_N

typedef struct {
    const KernMat *bl;
    const KernExec *ex;
    const BitKernel *K;
    const float *x;
    float *gx;
    int16_t *q;           /* int8 activations (NULL: FP32) */
    float *scale;
    void *prep;           /* the kernel's per-call int8 preparation */
    int16_t *acc16;
    float *acc, *y;
    const float *g;       /* the layer's g */
    int norm;             /* the layer's norm */
    const BitLinear *mos; /* the layer when it has a mixture of scales, else NULL */
    float *r;             /* mos: (copies, N, E) the router's probabilities per token */
    int N, nblk, ntasks, by_panel;
    /* int8 with a copy per thread (FWD_COPIES_N): thread t makes gx, q,
     * scale and prep of every token in copy t (pool_run_each; the caller
     * makes it when thread t is late) and its rows tasks read copy t; 0: one
     * copy, the input split by tokens */
    int copies;
    size_t prep_bytes;
    PanelRange *ranges;  /* by_panel: one per task */
} FwdCtx;

/* up to `want` panels of r from the front (back = 0), or one from the back:
 * the first, with *n set to how many; -1 if none is left */
static int claim_panels(PanelRange *r, int back, int want, int *n)
{
    uint64_t v = atomic_load(&r->fb);
    for (;;) {
        uint32_t f = (uint32_t)v, b = (uint32_t)(v >> 32);
        if (f >= b) return -1;
        uint32_t k = back ? 1 : b - f < (uint32_t)want ? b - f : (uint32_t)want;
        uint64_t nv = back ? (uint64_t)(b - 1) << 32 | f : v + k;
        if (atomic_compare_exchange_weak(&r->fb, &v, nv)) {
            *n = (int)k;
            return (int)(back ? b - 1 : f);
        }
    }
}

/* whether any of the T ranges r has a panel left */
static int panels_left(PanelRange *r, int T)
{
    for (int j = 0; j < T; j++) {
        uint64_t v = atomic_load(&r[j].fb);
        if ((uint32_t)v < (uint32_t)(v >> 32)) return 1;
    }
    return 0;
}

/* task t's own range of T over np panels, contiguous */
static void range_init(PanelRange *r, int np, int t, int T)
{
    uint64_t p0 = (uint64_t)np * t / T, p1 = (uint64_t)np * (t + 1) / T;
    atomic_init(&r->fb, p1 << 32 | p0);
}

/* blocks [b0, b1), with the call's activation precision (int8 with copies:
 * the calling thread's copy) */
static void fwd_blocks(const FwdCtx *c, int b0, int b1)
{
    if (c->q) {
        size_t k = c->copies ? (size_t)(pool_thread_index() % c->copies) : 0, nq = (size_t)c->N * kern_nqblk(c->bl);
        c->K->rows_q8(c->bl, c->q + k * c->N * kern_in_pad(c->bl), c->scale + k * nq, c->prep ? (char *)c->prep + k * c->prep_bytes : NULL,
                      c->N, b0, b1, c->acc, c->acc16);
    } else c->K->rows(c->bl, c->gx, c->N, b0, b1, c->acc);
}

/* panels [p, p + n) */
static void fwd_panels(const FwdCtx *c, int p, int n)
{
    fwd_blocks(c, p * KERN_PANEL, (p + n) * KERN_PANEL < c->nblk ? (p + n) * KERN_PANEL : c->nblk);
}

/* panels per claim from a thread's own range: for N > 1 the kernels build
 * each token's tables once per call and use them for every panel of it */
#define FWD_CLAIM_N 4

static void fwd_rows_task(void *vc, int t)
{
    const FwdCtx *c = vc;
    if (c->by_panel) {
        /* task t's own panels in order: one contiguous stream of signs
         * (kernels.h), which DRAM and the prefetchers do best with; then
         * what is left of the others' ranges, one panel at a time from their
         * ends, so a thread that is held up (a busy machine) delays little */
        int p, n, want = c->N > 1 ? FWD_CLAIM_N : 1;
        while ((p = claim_panels(&c->ranges[t], 0, want, &n)) >= 0) fwd_panels(c, p, n);
        for (int j = 1; j < c->ntasks; j++)
            while ((p = claim_panels(&c->ranges[(t + j) % c->ntasks], 1, 1, &n)) >= 0) fwd_panels(c, p, n);
        return;
    }
    long b0 = (long)c->nblk * t / c->ntasks, b1 = (long)c->nblk * (t + 1) / c->ntasks;
    const long al = kern_blk_align(c->bl); /* the same rounding for the range before */
    b0 -= b0 % al;
    if (t + 1 < c->ntasks) b1 -= b1 % al;
    if (b1 > b0) fwd_blocks(c, (int)b0, (int)b1);
}

/* the input of tokens [n0, n1) of task t: gx = g ⊙ x, zero-padded; with
 * int8 activations its quantization and the kernel's tables for it (with
 * copies: all tokens, in copy t, t = the thread) */
static void fwd_input_task(void *vc, int t)
{
    const FwdCtx *c = vc;
    const KernMat *bl = c->bl;
    const float *g = c->g;
    const int in = bl->in, in_pad = kern_in_pad(bl), nq = kern_nqblk(bl);
    int n0 = (int)((long)c->N * t / c->ntasks), n1 = (int)((long)c->N * (t + 1) / c->ntasks);
    /* copy t: all the tokens */
    const size_t k = c->copies ? (size_t)t : 0;
    if (c->copies) n0 = 0, n1 = c->N;
    float *gx = c->gx + k * c->N * in_pad, *scale = c->q ? c->scale + k * c->N * nq : NULL;
    int16_t *q = c->q ? c->q + k * c->N * in_pad : NULL;
    for (int n = n0; n < n1; n++) {
        float *gn = gx + (size_t)n * in_pad;
        const float *xn = c->x + (size_t)n * in;
        if (c->mos) { /* gn = x ⊙ g(x) */
            float *r = c->r + (k * c->N + (size_t)n) * c->mos->mos;
            mos_route(c->mos, c->ex->gemv_rows, xn, r);
            mos_mix(r, c->mos->g_experts, c->mos->mos, in, gn);
            for (int i = 0; i < in; i++) gn[i] *= xn[i];
        } else c->ex->mul(xn, g, gn, in);
        memset(gn + in, 0, (size_t)(in_pad - in) * sizeof(float));
        if (q) c->ex->quantize(gn, in_pad, q + (size_t)n * in_pad, scale + (size_t)n * nq);
    }
    if (c->prep && n1 > n0) c->K->prep_q8(bl, q, c->N, n0, n1, (char *)c->prep + k * c->prep_bytes);
}

/* fwd_norm_task's tasks for N tokens of out values on T threads: by tokens
 * once there are enough of them */
static int norm_ntasks(int T, int N, int out) { return T > 1 && N >= 4 && (double)N * out >= 1 << 16 ? (T < N ? T : N) : 1; }

static void fwd_norm_task(void *vc, int t)
{
    const FwdCtx *c = vc;
    int out = c->bl->out;
    size_t out_pad = (size_t)c->nblk * KERN_ROWBLK;
    int n0 = (int)((long)c->N * t / c->ntasks), n1 = (int)((long)c->N * (t + 1) / c->ntasks);
    for (int n = n0; n < n1; n++) {
        float *yn = c->y + (size_t)n * out;
        float *an = c->acc + n * out_pad;
        if (c->mos) { /* the kernel's rows had scales 1: an ⊙ h(x), h(x) in yn */
            mos_mix(c->r + (size_t)n * c->mos->mos, c->mos->h_experts, c->mos->mos, out, yn);
            for (int o = 0; o < out; o++) an[o] *= yn[o];
        }
        if (!c->norm) {
            if (an != yn) memcpy(yn, an, (size_t)out * sizeof(float));
        }
        else c->ex->layernorm(an, yn, out);
    }
}

/* c, a context with a copy of the input per thread, made to read copy t
 * (gx_n, q_n, scale_n: the elements of one copy; the prep's prep_bytes),
 * and copy t made there as copy 0 of a one-copy call; then ntasks = T for
 * the rows (fwd_chunks_task, fwd_many_task) */
static void fwd_own_input(FwdCtx *c, int t, int T, size_t gx_n, size_t q_n, size_t scale_n)
{
    c->gx += (size_t)t * gx_n;
    if (c->q) {
        c->q += (size_t)t * q_n;
        c->scale += (size_t)t * scale_n;
    }
    if (c->prep) c->prep = (char *)c->prep + (size_t)t * c->prep_bytes;
    c->copies = 1;
    c->ntasks = 1;
    fwd_input_task(c, 0);
    c->ntasks = T;
}

/* int8 with the kernel's tables for N tokens in chunks (bitlinear_forward),
 * on T > 1 threads: one pool_run_each for all the chunks and one pool_run
 * for the norms, where a call per chunk made three pool runs (input, rows,
 * norms): 48 a layer for a 128-token prompt, 10752 for a 7B model's. Task
 * t goes through the chunks in order: its own copy t of the chunk's input
 * and tables (as fwd_input_task with copies), then its own panels of the
 * chunk and what is left of the other tasks' (fwd_rows_task), with no wait
 * between chunks; a chunk with nothing left is skipped, so a task that
 * starts late (pool_run_each: a sleeping worker, or the caller standing in
 * for it) makes no tables for nothing. Each row of each token is still one
 * kernel call's over tables made from the same input, so the results are
 * those of the call per chunk, on any thread. */
typedef struct {
    FwdCtx base;         /* the whole call (x, acc, y of all N tokens); gx,
                          * q, scale, prep, acc16: copy 0 of T */
    int T, chunk, nch;
    size_t gx_n, q_n, scale_n, acc16_n; /* elements of one copy */
    PanelRange *ranges;  /* (nch, T) */
} ChunksCtx;

static void fwd_chunks_task(void *vc, int t)
{
    const ChunksCtx *cc = vc;
    const FwdCtx *b = &cc->base;
    const size_t out_pad = (size_t)b->nblk * KERN_ROWBLK;
    for (int ch = 0; ch < cc->nch; ch++) {
        PanelRange *r = cc->ranges + (size_t)ch * cc->T;
        if (!panels_left(r, cc->T)) continue;
        const int n0 = ch * cc->chunk;
        FwdCtx c = *b;
        c.N = b->N - n0 < cc->chunk ? b->N - n0 : cc->chunk;
        c.x = b->x + (size_t)n0 * b->bl->in;
        c.acc = b->acc + (size_t)n0 * out_pad;
        c.acc16 = b->acc16 + (size_t)t * cc->acc16_n; /* the rows of one chunk: the int16 sums per thread too */
        fwd_own_input(&c, t, cc->T, cc->gx_n, cc->q_n, cc->scale_n);
        c.by_panel = 1;
        c.ranges = r;
        fwd_rows_task(&c, t);
    }
}

/* bitlinear_forward's int8 chunks this way (fwd_chunks_task); 0 when it
 * does not apply (one thread, a mixture of scales, too few panels to split,
 * chunks above FWD_COPIES_N), and the caller makes a call per chunk */
static int forward_chunks(const BitLinear *bl, const float *x, float *y, int N, int chunk)
{
    const KernExec *ex = &bl->ex;
    const BitKernel *K = ex->kernel;
    const KernMat *km = &bl->km;
    Pool *pool = ex->pool;
    const int T = pool_threads(pool), nblk = kern_nblk(km), np = npanels(km);
    if (T < 2 || T > FWD_MAX_RANGES || bl->mos || chunk > FWD_COPIES_N || np < 2 * T) return 0;
    const int in_pad = kern_in_pad(km), nch = (N + chunk - 1) / chunk;
    ChunksCtx cc = {.T = T, .chunk = chunk, .nch = nch};
    cc.gx_n = (size_t)chunk * in_pad;
    cc.q_n = (size_t)chunk * in_pad;
    cc.scale_n = (size_t)chunk * kern_nqblk(km);
    cc.acc16_n = (size_t)chunk * kern_acc16_per_token(km);
    Scratch *sc = scratch_get();
    FwdCtx *c = &cc.base;
    *c = (FwdCtx){.bl = km, .ex = ex, .K = K, .x = x, .y = y, .g = bl->g, .norm = bl->norm, .N = N, .nblk = nblk, .ntasks = 1};
    c->gx = scratch(sc, SCR_GX, (size_t)T * cc.gx_n);
    c->acc = acc_for(bl, y, sc, (size_t)N * nblk * KERN_ROWBLK);
    c->q = scratch_bytes(sc, SCR_Q, (size_t)T * cc.q_n * sizeof(int16_t));
    c->scale = scratch(sc, SCR_SCALE, (size_t)T * cc.scale_n);
    c->acc16 = scratch_bytes(sc, SCR_ACC16, (size_t)T * cc.acc16_n * sizeof(int16_t));
    c->prep_bytes = prep_copy_bytes(K, km, chunk);
    c->prep = scratch_bytes(sc, SCR_PREP, (size_t)T * c->prep_bytes);
    cc.ranges = scratch_bytes(sc, SCR_RANGES, (size_t)nch * T * sizeof(PanelRange));
    for (int ch = 0; ch < nch; ch++)
        for (int t = 0; t < T; t++) range_init(&cc.ranges[(size_t)ch * T + t], np, t, T);
    pool_run_each(pool, fwd_chunks_task, &cc);
    c->ntasks = norm_ntasks(T, N, bl->out);
    pool_run(pool, fwd_norm_task, c, c->ntasks);
    return 1;
}

/* ---- the defaults new layers take ------------------------------------- */

int bitlinear_set_threads(int n, char *err) { return pool_set_global_threads(n, err); }

int bitlinear_threads(void)
{
    Pool *p = pool_global_ref();
    int n = pool_threads(p);
    pool_free(p);
    return n;
}

static _Atomic(const BitKernel *) g_kernel; /* NULL: kern_default() */
static _Atomic int g_act = -1;             /* -1: not read from $ONEBIT_ACT yet */

int bitlinear_set_kernel(const char *name, char *err)
{
    const BitKernel *k = kern_lookup(name, err);
    if (!k) return -1;
    atomic_store(&g_kernel, k);
    return 0;
}

int bitlinear_act_parse(const char *name)
{
    if (!strcmp(name, "fp32")) return BITLINEAR_ACT_FP32;
    if (!strcmp(name, "int8")) return BITLINEAR_ACT_INT8;
    return -1;
}

const char *bitlinear_act_name(int act) { return act == BITLINEAR_ACT_INT8 ? "int8" : "fp32"; }

int bitlinear_default_act(void)
{
    int a = atomic_load(&g_act);
    if (a >= 0) return a;
    const char *env = getenv("ONEBIT_ACT");
    a = BITLINEAR_ACT_FP32;
    if (env && *env) {
        int p = bitlinear_act_parse(env);
        if (p < 0) fprintf(stderr, "onebit-tui: warning: ONEBIT_ACT=%s is not fp32 or int8; using fp32\n", env);
        else a = p;
    }
    int expect = -1;
    atomic_compare_exchange_strong(&g_act, &expect, a);
    return atomic_load(&g_act);
}

int bitlinear_set_act(const char *name, char *err)
{
    int a = bitlinear_act_parse(name);
    if (a < 0) {
        ob_seterr(err, "unknown activation precision '%s' (try fp32 or int8)", name);
        return -1;
    }
    atomic_store(&g_act, a);
    return 0;
}

void bitlinear_default_exec(KernExec *ex)
{
    kern_exec_init(ex, atomic_load(&g_kernel), bitlinear_default_act(), NULL);
}

/* the waits of bitlinear_forward for a layer's switch, and the release */
static void running_enter(const BitLinear *bl)
{
    atomic_int *run = (atomic_int *)&bl->running;
    for (int v = atomic_load(run);;) {
        if (v < 0) { sched_yield(); v = atomic_load(run); continue; }
        if (atomic_compare_exchange_weak(run, &v, v + 1)) break;
    }
}

static void running_leave(const BitLinear *bl) { atomic_fetch_sub((atomic_int *)&bl->running, 1); }

/* ---- the forward ------------------------------------------------------- */

static void forward(const BitLinear *bl, const float *x, float *y, int N)
{
    const KernExec *ex = &bl->ex;
    const BitKernel *K = ex->kernel;
    const int q8 = ex->act == KERN_ACT_INT8;
    const KernMat *km = &bl->km;
    const int in = bl->in, in_pad = kern_in_pad(km), nblk = kern_nblk(km);
    /* int8 with the kernel's tables, many tokens: FWD_CHUNK_N (or the
     * kernel's own q8_chunk) at a time.
     * Every panel of rows reads the tables of all N tokens (80 KB per token
     * for 4096 columns), which for many tokens no longer fit in the caches;
     * a chunk's do, and the signs are read once per chunk instead. Tokens
     * are independent, so the results are the same. */
    const int chunk = K->q8_chunk ? K->q8_chunk : FWD_CHUNK_N;
    if (q8 && K->prep_q8 && N > chunk) {
        if (forward_chunks(bl, x, y, N, chunk)) return;
        for (int n0 = 0; n0 < N; n0 += chunk)
            forward(bl, x + (size_t)n0 * in, y + (size_t)n0 * bl->out, N - n0 < chunk ? N - n0 : chunk);
        return;
    }
    Pool *pool = ex->pool;
    int T = pool_threads(pool);
    /* int8 with the kernel's tables: for a few tokens every thread makes its
     * own copy (FWD_COPIES_N) */
    const int copies = q8 && K->prep_q8 && T > 1 && T <= FWD_MAX_RANGES && N <= FWD_COPIES_N ? T : 0, nc = copies ? copies : 1;
    Scratch *sc = scratch_get();
    float *gx = scratch(sc, SCR_GX, (size_t)nc * N * in_pad);
    float *acc = acc_for(bl, y, sc, (size_t)N * nblk * KERN_ROWBLK);
    int16_t *q = NULL, *acc16 = NULL;
    float *qscale = NULL;
    void *prep = NULL;
    size_t prep_bytes = 0;
    if (q8) {
        q = scratch_bytes(sc, SCR_Q, (size_t)nc * N * in_pad * sizeof(int16_t));
        qscale = scratch(sc, SCR_SCALE, (size_t)nc * N * kern_nqblk(km));
        acc16 = scratch_bytes(sc, SCR_ACC16, (size_t)N * kern_acc16_per_token(km) * sizeof(int16_t));
        if (K->prep_q8) {
            prep_bytes = prep_copy_bytes(K, km, N);
            prep = scratch_bytes(sc, SCR_PREP, nc * prep_bytes);
        }
    }
    double work = (double)bl->out * in * N;
    PanelRange ranges[FWD_MAX_RANGES];
    FwdCtx c = {km, ex, K, x, gx, q, qscale, prep, acc16, acc, y, bl->g, bl->norm, bl->mos ? bl : NULL, NULL,
                N, nblk, 1, 0, copies, prep_bytes, ranges};
    if (bl->mos) c.r = scratch(sc, SCR_MOS, (size_t)nc * N * bl->mos);
    /* the input, split by tokens or one copy per thread (one pool run, so
     * the threads are awake for the rows) */
    c.ntasks = copies ? copies : T > 1 && N > 1 && (double)N * in_pad >= 1 << 13 ? (T < N ? T : N) : 1;
    if (copies) pool_run_each(pool, fwd_input_task, &c);
    else pool_run(pool, fwd_input_task, &c, c.ntasks);
    c.ntasks = 1;
    if (T > 1 && work >= 1 << 18) {
        int np = npanels(km);
        if (np >= 2 * T && T <= FWD_MAX_RANGES) {
            /* whole panels: a contiguous range per thread, with stealing
             * (fwd_rows_task) */
            c.by_panel = 1;
            c.ntasks = T;
            for (int t = 0; t < T; t++) range_init(&ranges[t], np, t, T);
        } else {
            /* blocks: up to 8 ranges per thread, claimed dynamically */
            c.ntasks = T * 8 < nblk ? T * 8 : nblk;
        }
    }
    pool_run(pool, fwd_rows_task, &c, c.ntasks);
    c.ntasks = norm_ntasks(T, N, bl->out);
    pool_run(pool, fwd_norm_task, &c, c.ntasks);
}

void bitlinear_forward(const BitLinear *bl, const float *x, float *y, int N)
{
    if (N <= 0) return;
    /* the owner's writes (bitlinear_set_exec) check this; a forward only
     * reads the layer, so concurrent forwards are fine; while a switch holds
     * the layer (-1), wait for it (a repack: milliseconds) */
    running_enter(bl);
    forward(bl, x, y, N);
    running_leave(bl);
}

/* ---- several layers of one input ---------------------------------------- */

/* bitlinear_forward_many: the layers' contexts, their rows in one pool run
 * (fwd_many_task) */
#define FWD_MANY_MAX 4
typedef struct {
    FwdCtx c[FWD_MANY_MAX];
    PanelRange ranges[FWD_MANY_MAX][FWD_MAX_RANGES];
    int n, T;
    /* int8 with a copy per thread: the elements of one copy */
    int copies;
    size_t gx_n, q_n, scale_n;
} ManyCtx;

/* task t: layer by layer, (int8 with copies: its own copy t of the layer's
 * input and tables, as fwd_input_task, unless no panel is left) its own
 * panels of the layer and what is left of the others' (fwd_rows_task),
 * with no wait between layers */
static void fwd_many_task(void *vc, int t)
{
    const ManyCtx *mc = vc;
    for (int i = 0; i < mc->n; i++) {
        FwdCtx c = mc->c[i];
        if (mc->copies) {
            if (!panels_left(c.ranges, mc->T)) continue;
            fwd_own_input(&c, t, mc->T, mc->gx_n, mc->q_n, mc->scale_n);
        }
        fwd_rows_task(&c, t);
    }
}

/* the conditions of bitlinear_forward_many's one run: the same pool,
 * kernel, activations and input width, no mixture of scales, few tokens,
 * and every layer split in whole panels (as forward does them) */
static int many_ok(const BitLinear *const *bl, int n, int N)
{
    if (n < 2 || n > FWD_MANY_MAX || N > FWD_COPIES_N) return 0;
    const int T = pool_threads(bl[0]->ex.pool);
    if (T < 2 || T > FWD_MAX_RANGES) return 0;
    for (int i = 0; i < n; i++) {
        const KernExec *ex = &bl[i]->ex;
        int np = npanels(&bl[i]->km);
        if (bl[i]->mos || ex->pool != bl[0]->ex.pool || ex->kernel != bl[0]->ex.kernel || ex->act != bl[0]->ex.act ||
            bl[i]->in != bl[0]->in || np < 2 * T || (double)bl[i]->out * bl[i]->in * N < 1 << 18)
            return 0;
    }
    return 1;
}

static void forward_many(const BitLinear *const *bl, int n, const float *x, float *const *y, int N)
{
    ManyCtx many, *mc = &many;
    const KernExec *ex = &bl[0]->ex;
    const BitKernel *K = ex->kernel;
    const int q8 = ex->act == KERN_ACT_INT8, T = pool_threads(ex->pool), in_pad = kern_in_pad(&bl[0]->km);
    const int nq = kern_nqblk(&bl[0]->km);
    mc->n = n;
    mc->T = T;
    mc->copies = q8 && K->prep_q8 ? T : 0;
    const int nc = mc->copies ? T : 1;
    mc->gx_n = mc->q_n = (size_t)N * in_pad;
    mc->scale_n = (size_t)N * nq;
    /* the layers' buffers, one after the other in each scratch */
    size_t acc_n = 0, a16_n = 0, prep_n = 0;
    for (int i = 0; i < n; i++) {
        if (!acc_is_y(bl[i])) acc_n += (size_t)N * kern_nblk(&bl[i]->km) * KERN_ROWBLK;
        if (q8) a16_n += (size_t)N * kern_acc16_per_token(&bl[i]->km);
        if (q8 && K->prep_q8) prep_n += nc * prep_copy_bytes(K, &bl[i]->km, N);
    }
    Scratch *sc = scratch_get();
    float *gx = scratch(sc, SCR_GX, (size_t)n * nc * mc->gx_n), *acc = acc_n ? scratch(sc, SCR_ACC, acc_n) : NULL;
    int16_t *q = q8 ? scratch_bytes(sc, SCR_Q, (size_t)n * nc * mc->q_n * sizeof(int16_t)) : NULL;
    float *qscale = q8 ? scratch(sc, SCR_SCALE, (size_t)n * nc * mc->scale_n) : NULL;
    int16_t *acc16 = q8 ? scratch_bytes(sc, SCR_ACC16, a16_n * sizeof(int16_t)) : NULL;
    char *prep = prep_n ? scratch_bytes(sc, SCR_PREP, prep_n) : NULL;
    for (int i = 0; i < n; i++) {
        const KernMat *km = &bl[i]->km;
        const int nblk = kern_nblk(km), np = npanels(km);
        FwdCtx *c = &mc->c[i];
        *c = (FwdCtx){.bl = km, .ex = &bl[i]->ex, .K = K, .x = x, .gx = gx, .q = q, .scale = qscale, .acc16 = acc16,
                      .acc = acc_is_y(bl[i]) ? y[i] : acc,
                      .y = y[i], .g = bl[i]->g, .norm = bl[i]->norm, .N = N, .nblk = nblk, .ntasks = T, .by_panel = 1,
                      .copies = mc->copies, .ranges = mc->ranges[i]};
        for (int t = 0; t < T; t++) range_init(&mc->ranges[i][t], np, t, T);
        gx += nc * mc->gx_n;
        if (!acc_is_y(bl[i])) acc += (size_t)N * nblk * KERN_ROWBLK;
        if (q8) {
            q += nc * mc->q_n;
            qscale += nc * mc->scale_n;
            acc16 += (size_t)N * kern_acc16_per_token(km);
        }
        if (prep) {
            c->prep = prep;
            c->prep_bytes = prep_copy_bytes(K, km, N);
            prep += nc * c->prep_bytes;
        }
        if (!mc->copies) { /* the input here, by the caller (as forward's for so few tokens) */
            FwdCtx in = *c;
            in.ntasks = 1;
            fwd_input_task(&in, 0);
        }
    }
    if (mc->copies) pool_run_each(ex->pool, fwd_many_task, mc);
    else pool_run(ex->pool, fwd_many_task, mc, T);
    for (int i = 0; i < n; i++) {
        FwdCtx *c = &mc->c[i];
        c->ntasks = norm_ntasks(T, N, bl[i]->out);
        pool_run(ex->pool, fwd_norm_task, c, c->ntasks);
    }
}

void bitlinear_forward_many(const BitLinear *const *bl, int n, const float *x, float *const *y, int N)
{
    if (N <= 0 || n <= 0) return;
    for (int i = 0; i < n; i++) running_enter(bl[i]);
    if (many_ok(bl, n, N)) forward_many(bl, n, x, y, N);
    else
        for (int i = 0; i < n; i++) forward(bl[i], x, y[i], N);
    for (int i = 0; i < n; i++) running_leave(bl[i]);
}

/* ---- as a model's Linear ------------------------------------------------ */

/* the head y = W x (FP32, FP16, Q8_0 or any LINEAR_W_* rows) on the layer's pool, with its helpers */
static void lin_head(const void *impl, const void *W, int wtype, const float *x, float *y, int rows, int cols)
{
    const BitLinear *bl = impl;
    linear_gemv_pool(bl->ex.pool, bl->ex.dec, bl->ex.gemv_rows, wtype, W, x, y, rows, cols);
}

static void lin_forward(const void *impl, const float *x, float *y, int N) { bitlinear_forward(impl, x, y, N); }

static const KernExec *lin_exec(const void *impl) { return &((const BitLinear *)impl)->ex; }

static void lin_forward_many(const void *const *impls, int n, const float *x, float *const *ys, int N)
{
    bitlinear_forward_many((const BitLinear *const *)impls, n, x, ys, N);
}

static const LinearOps onebit_ops = {"onebit", lin_forward, lin_head, lin_exec, lin_forward_many};

Linear bitlinear_linear(const BitLinear *bl)
{
    return (Linear){.kind = LINEAR_ONEBIT, .in = bl->in, .out = bl->out, .ops = &onebit_ops, .impl = bl};
}
