/* qat.c -- quantisation-aware training of a OneBit student: FP32 forward and
 * full backward of the LLaMA block with 1-bit linears (every matmul is a
 * cblas_sgemm over all B·T tokens), the distillation loss (KL on logits +
 * normalised hidden-state MSE), AdamW, cosine LR schedule, gradient clipping.
 * Numerics of the FP parts follow src/model/model.c (llama2.c) exactly.
 * Memory (qat.h): per trainable parameter only W, its gradient and the two
 * moments; sign(W) is expanded per linear into one scratch (expand_S), the
 * STE factor computed in the backward (lp_ste); every buffer comes from
 * take(), which qat_memory_bytes runs dry. Threads: a QatModel is used by
 * one thread at a time (asserted); its work runs on its own pool (par_for,
 * qsgemm), whose tasks never call back into the pool. */
#include "train/qat.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/blas.h"
#include "base/common.h"
#include "base/pool.h"
#include "kernels/kernels.h"
#include "onebit/svid.h"

#define QAT_LN_EPS 1e-5 /* = BITLINEAR_EPS */

typedef struct {
    int in, out;
    size_t off_w, off_g, off_h; /* into the params / grads arenas */
    size_t off_r;               /* the router (MoS; qat.h): E·in */
} QLin;

/* activations of one block kept for the backward pass; N = max_B·max_T rows.
 * With recompute, every layer has its own x, and all share the rest: the
 * backward pass recomputes them from x, block by block. */
typedef struct {
    float *x;                 /* (N,C) block input (residual stream) */
    float *xn1, *r1;          /* (N,C) RMSNorm(att) output, (N) its 1/rms */
    float *ly[LIN_PER_LAYER]; /* (N,out) each linear's output (after LayerNorm) */
    float *la[LIN_PER_LAYER]; /* (N,out) S·(g⊙x) before h and LayerNorm */
    float *lr[LIN_PER_LAYER]; /* (N) each linear's LayerNorm 1/std */
    float *lrt[LIN_PER_LAYER]; /* (N,E) each linear's router probabilities (MoS; else NULL) */
    float *qr, *kr;           /* (N,qd), (N,kvd) q, k after RoPE */
    float *att;               /* (B,H,T,T) attention probabilities */
    float *ao;                /* (N,qd) attention output */
    float *xm;                /* (N,C) residual after attention */
    float *xn2, *r2;          /* (N,C) RMSNorm(ffn) output, (N) */
    float *hp;                /* (N,F) silu(gate)·up */
} QLayer;

struct QatModel {
    QatPar par;         /* the pool qat splits its work over (qat_set_threads) */
    atomic_int in_use;  /* 1 during a forward(-backward): one thread at a time (qat.h), asserted */
    const Model *t;     /* the teacher: frozen FP tensors live there */
    const float *emb, *cls; /* its embedding and head in FP32 (V, C): the arena's, or a
                             * mapped teacher's converted into emb32 / cls32 (owned) */
    float *emb32, *cls32;
    ModelConfig cfg;
    int maxB, maxT, B, T; /* bounds; shape of the last forward */
    int reuse_teacher;
    double tsec[QAT_NTIMERS]; /* accumulated seconds per phase */
    size_t nparams;
    float *params, *grads;
    QatOptim optim;
    int shards, shard;  /* ZeRO-1: this model's slice [lo, hi) of the arena (qat_shard_range) */
    size_t lo, hi;
    void *m, *v;        /* AdamW moments (hi - lo floats or BF16 bits) */
    float *Sx;          /* (maxout·maxin) sign(W) of the linear at hand, expanded before its sgemms */
    double bytes;       /* what take() allocated (or counted, when dry) */
    int dry;            /* qat_memory_bytes: count only the big buffers */
    int recompute;      /* the layers share one set of block activations (all but x), recomputed in the backward */
    QatSte ste;         /* the sign's straight-through estimator (qat_set_ste) */
    int mos;            /* experts per linear (QatSize.mos; 0: OneBit) */
    unsigned long long mos_seed;
    float *gv, *hv, *dhv, *dr; /* MoS scratch: (N,maxin) g(x), (N,maxout) h(x) and its gradient, (N,E) */
    int no_norm;        /* the linears without their LayerNorm (qat_set_layernorm) */
    double *klrow;      /* (N) per-token KL */
    QLin *lin;          /* (L, LIN_PER_LAYER) */
    QLayer *layer;      /* (L) */
    float *xL;          /* (N,C) last block's output */
    float *xf, *rf;     /* (N,C) final RMSNorm output, (N) */
    float *logits;      /* (N,V) student */
    float *tlogits;     /* (N,V) teacher */
    float *thid;        /* (L,N,C) teacher hidden states */
    float *rope_cos, *rope_sin; /* (seq_len, hd/2) */
    /* backward scratch */
    float *dres, *dyb, *dxn, *dhp, *dgate, *dup, *dao, *dq, *dk, *dv, *dlogits;
    float *gx, *dgx;    /* (N, maxin) */
    float *dSw;         /* (maxout·maxin) */
    float *dP;          /* (T,T) */
};

/* ---- small helpers ------------------------------------------------------ */


/* ---- fork-join for the non-BLAS loops, on the persistent pool ---------- */
/* fn(ctx, lo, hi) over [0, n) split into nt contiguous chunks, run as tasks
 * of the QatModel's own pool (qat_set_threads; pool.h: no thread creation
 * per call, a training step runs hundreds of these loops). Every loop run this way
 * computes each output element from the same inputs in the same order
 * whatever the split, so results do not depend on the thread count. No
 * ParFn calls pool_run itself (pool_run is not reentrant). */
#define QAT_MAX_THREADS 64
typedef void (*ParFn)(void *ctx, size_t lo, size_t hi);
typedef struct { ParFn fn; void *ctx; size_t n; int nt; } ParJob;

static void par_task(void *arg, int t)
{
    const ParJob *j = arg;
    size_t lo = j->n * (size_t)t / (size_t)j->nt, hi = j->n * (size_t)(t + 1) / (size_t)j->nt;
    if (hi > lo) j->fn(j->ctx, lo, hi);
}

static int par_threads(const QatPar *par) { return par && par->pool ? pool_threads(par->pool) : 1; }

static void par_for(const QatPar *par, size_t n, size_t work_per_item, ParFn fn, void *ctx)
{
    int nt = par_threads(par);
    if (nt > QAT_MAX_THREADS) nt = QAT_MAX_THREADS;
    if ((double)n * (double)work_per_item < 32768.0 || nt < 2 || n < 2) { fn(ctx, 0, n); return; }
    if ((size_t)nt > n) nt = (int)n;
    ParJob job = {fn, ctx, n, nt};
    pool_run(par->pool, par_task, &job, nt);
}

/* the STE factor 1.001 − tanh²(w) = 0.001 + sech²(w), with one expf:
 * sech²(w) = 4t/(1+t)², t = e^{−2|w|} */
static inline float ste_of(float w)
{
    float t = expf(-2.0f * fabsf(w)), d = 1.0f + t;
    return 0.001f + 4.0f * t / (d * d);
}

float qat_ste(float w) { return ste_of(w); }

/* sech²(x) = 1 − tanh²(x), with one expf as ste_of */
static inline float sech2(float x)
{
    float t = expf(-2.0f * fabsf(x)), d = 1.0f + t;
    return 4.0f * t / (d * d);
}

float qat_ste_factor(const QatSte *s, float w)
{
    switch (s->kind) {
    case QAT_STE_SMOOTH: return s->a * sech2(s->a * w);
    case QAT_STE_CLIP: return fabsf(w) <= 1.0f ? 1.0f : 0.0f;
    default: return ste_of(w);
    }
}

int qat_ste_parse(const char *s, QatSte *out, char *err)
{
    QatSte r = {QAT_STE_ONEBIT, 0};
    if (!strcmp(s, "clip")) r.kind = QAT_STE_CLIP;
    else if (!strcmp(s, "tanh")) r = (QatSte){QAT_STE_SMOOTH, 1.0f};
    else if (!strncmp(s, "smooth:", 7)) {
        char *end;
        double a = strtod(s + 7, &end);
        if (end == s + 7 || *end || !(a > 0) || !isfinite(a) || a > 1e6) {
            ob_seterr(err, "'%s': smooth:A needs a number A > 0 (e.g. smooth:5)", s);
            return -1;
        }
        r.kind = QAT_STE_SMOOTH;
        r.a = (float)a;
    } else if (strcmp(s, "onebit")) {
        ob_seterr(err, "'%s' is not an estimator: onebit (1.001-tanh^2(W)), tanh (1-tanh^2(W)), smooth:A "
                  "(A*(1-tanh^2(A*W))) or clip (1 where |W|<=1)", s);
        return -1;
    }
    *out = r;
    return 0;
}

void qat_ste_format(const QatSte *s, char *buf, size_t n)
{
    if (s->kind == QAT_STE_SMOOTH && s->a == 1.0f) snprintf(buf, n, "tanh");
    else if (s->kind == QAT_STE_SMOOTH) snprintf(buf, n, "smooth:%g", (double)s->a);
    else snprintf(buf, n, "%s", s->kind == QAT_STE_CLIP ? "clip" : "onebit");
}

/* S = sign(W) (w >= 0 -> +1) of one linear into the scratch q->Sx, right
 * before the sgemms that use it: S is never kept (qat.h, Memory) */
typedef struct { const float *W; float *S; } SignCtx;
static void sign_range(void *c, size_t lo, size_t hi)
{
    const SignCtx *p = c;
    for (size_t k = lo; k < hi; k++) p->S[k] = p->W[k] >= 0.0f ? 1.0f : -1.0f;
}

static const float *expand_S(QatModel *q, const QLin *L)
{
    SignCtx sc = {q->params + L->off_w, q->Sx};
    par_for(&q->par, (size_t)L->in * L->out, 1, sign_range, &sc);
    return q->Sx;
}

/* ---- construction ------------------------------------------------------ */

/* every buffer of a QatModel comes from take(): 64-byte aligned, zeroed,
 * its rounded size counted in q->bytes. A dry model (qat_memory_bytes)
 * counts the same calls; it allocates only the small ones (the per-linear
 * and per-layer tables the sizes are computed from). */
static void *take(QatModel *q, size_t bytes, int small)
{
    size_t sz = (bytes + 63) / 64 * 64;
    if (sz == 0) sz = 64;
    q->bytes += (double)sz;
    return q->dry && !small ? NULL : ob_aligned_alloc(64, sz);
}
static float *ftake(QatModel *q, size_t n) { return take(q, n * sizeof(float), 0); }

/* the parameter layout and every buffer, for q->cfg, maxB, maxT, optim */
static void alloc_buffers(QatModel *q)
{
    const ModelConfig *c = &q->cfg;
    int Lc = c->n_layers, C = c->dim, F = c->hidden_dim, V = c->vocab_size, H = c->n_heads;
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    size_t N = (size_t)q->maxB * q->maxT;
    q->lin = take(q, (size_t)Lc * LIN_PER_LAYER * sizeof(QLin), 1);
    size_t off = 0, maxio = 0, E = q->mos > 1 ? (size_t)q->mos : 1;
    int maxin = 0, maxout = 0;
    for (int l = 0; l < Lc; l++) {
        for (int j = 0; j < LIN_PER_LAYER; j++) {
            QLin *L = &q->lin[l * LIN_PER_LAYER + j];
            model_lin_shape(c, j, &L->out, &L->in);
            L->off_w = off; off += (size_t)L->in * L->out;
            L->off_g = off; off += E * L->in;
            L->off_h = off; off += E * L->out;
            L->off_r = off; off += E > 1 ? E * L->in : 0;
            if (L->in > maxin) maxin = L->in;
            if (L->out > maxout) maxout = L->out;
            if ((size_t)L->in * L->out > maxio) maxio = (size_t)L->in * L->out;
        }
    }
    q->nparams = off;
    qat_shard_range(off, q->shards, q->shard, &q->lo, &q->hi);
    q->params = ftake(q, off);
    q->grads = ftake(q, off);
    size_t mb = q->optim == QAT_OPTIM_BF16 ? sizeof(uint16_t) : sizeof(float);
    q->m = take(q, (q->hi - q->lo) * mb, 0);
    q->v = take(q, (q->hi - q->lo) * mb, 0);
    q->Sx = ftake(q, maxio);
    q->klrow = take(q, N * sizeof(double), 0);
    q->layer = take(q, (size_t)Lc * sizeof(QLayer), 1);
    for (int l = 0; l < Lc; l++) {
        QLayer *a = &q->layer[l];
        a->x = ftake(q, N * C);
        if (q->recompute && l > 0) { /* the rest: layer 0's */
            float *x = a->x;
            *a = q->layer[0];
            a->x = x;
            continue;
        }
        a->xn1 = ftake(q, N * C); a->r1 = ftake(q, N);
        for (int j = 0; j < LIN_PER_LAYER; j++) {
            const QLin *L = &q->lin[l * LIN_PER_LAYER + j];
            a->ly[j] = ftake(q, N * L->out);
            a->la[j] = ftake(q, N * L->out);
            a->lr[j] = ftake(q, N);
            if (E > 1) a->lrt[j] = ftake(q, N * E);
        }
        a->qr = ftake(q, N * qd);
        a->kr = ftake(q, N * kvd);
        a->att = ftake(q, (size_t)q->maxB * H * q->maxT * q->maxT);
        a->ao = ftake(q, N * qd);
        a->xm = ftake(q, N * C);
        a->xn2 = ftake(q, N * C); a->r2 = ftake(q, N);
        a->hp = ftake(q, N * F);
    }
    q->xL = ftake(q, N * C);
    q->xf = ftake(q, N * C); q->rf = ftake(q, N);
    q->logits = ftake(q, N * V);
    q->tlogits = ftake(q, N * V);
    q->dlogits = ftake(q, N * V);
    q->thid = ftake(q, (size_t)Lc * N * C);
    q->rope_cos = ftake(q, (size_t)c->seq_len * c->head_dim / 2);
    q->rope_sin = ftake(q, (size_t)c->seq_len * c->head_dim / 2);
    int D = C > F ? C : F;
    if (qd > D) D = qd;
    q->dres = ftake(q, N * C);
    q->dyb = ftake(q, N * D);
    q->dxn = ftake(q, N * C);
    q->dhp = ftake(q, N * F); q->dgate = ftake(q, N * F); q->dup = ftake(q, N * F);
    q->dao = ftake(q, N * qd); q->dq = ftake(q, N * qd); q->dk = ftake(q, N * kvd); q->dv = ftake(q, N * kvd);
    q->gx = ftake(q, N * maxin); q->dgx = ftake(q, N * maxin);
    q->dSw = ftake(q, maxio);
    q->dP = ftake(q, (size_t)q->maxT * q->maxT);
    if (E > 1) {
        q->gv = ftake(q, N * maxin);
        q->hv = ftake(q, N * maxout);
        q->dhv = ftake(q, N * maxout);
        q->dr = ftake(q, N * E);
    }
}

/* free what alloc_buffers took (the NULLs of a dry run included) */
static void free_buffers(QatModel *q)
{
    if (q->layer)
        for (int l = 0; l < q->cfg.n_layers; l++) {
            QLayer *a = &q->layer[l];
            free(a->x);
            if (q->recompute && l > 0) continue; /* the rest is layer 0's */
            free(a->xn1); free(a->r1);
            for (int j = 0; j < LIN_PER_LAYER; j++) { free(a->ly[j]); free(a->la[j]); free(a->lr[j]); free(a->lrt[j]); }
            free(a->qr); free(a->kr); free(a->att); free(a->ao); free(a->xm); free(a->xn2); free(a->r2); free(a->hp);
        }
    free(q->layer); free(q->lin);
    free(q->params); free(q->grads); free(q->m); free(q->v); free(q->Sx); free(q->klrow);
    free(q->xL); free(q->xf); free(q->rf); free(q->logits); free(q->tlogits); free(q->dlogits);
    free(q->thid);
    free(q->rope_cos); free(q->rope_sin);
    free(q->dres); free(q->dyb); free(q->dxn); free(q->dhp); free(q->dgate); free(q->dup);
    free(q->dao); free(q->dq); free(q->dk); free(q->dv); free(q->gx); free(q->dgx); free(q->dSw); free(q->dP);
    free(q->gv); free(q->hv); free(q->dhv); free(q->dr);
}

/* the QatModel struct itself, counted like a buffer */
#define QAT_STRUCT_BYTES ((double)((sizeof(QatModel) + 63) / 64 * 64))

/* one FP32 copy of a (V, C) embedding or head, as take() would count it */
static double vocab_copy_bytes(const ModelConfig *c)
{
    return (double)(((size_t)c->vocab_size * c->dim * sizeof(float) + 63) / 64 * 64);
}

int qat_vocab_copies(const Model *t)
{
    return (t->emb_type != LINEAR_W_F32) + (!t->cfg.shared_classifier && t->cls_type != LINEAR_W_F32);
}

/* a dry model of (c, sz): its byte count and parameter count, no big buffer */
static double dry_bytes(const ModelConfig *c, const QatSize *sz, size_t *nparams)
{
    QatModel d;
    memset(&d, 0, sizeof d);
    d.cfg = *c;
    d.maxB = sz->max_B;
    d.maxT = sz->max_T;
    d.optim = sz->optim;
    d.recompute = sz->recompute != 0;
    d.shards = sz->shards;
    d.shard = sz->shard;
    d.mos = sz->mos;
    d.dry = 1;
    d.bytes = QAT_STRUCT_BYTES + sz->vocab_copies * vocab_copy_bytes(c);
    alloc_buffers(&d);
    free_buffers(&d);
    if (nparams) *nparams = d.nparams;
    return d.bytes;
}

double qat_memory_bytes(const ModelConfig *c, const QatSize *sz) { return dry_bytes(c, sz, NULL); }

size_t qat_config_params_mos(const ModelConfig *c, int mos)
{
    size_t n;
    dry_bytes(c, &(QatSize){1, 1, QAT_OPTIM_FP32, 0, 0, 0, 0, mos, 0}, &n);
    return n;
}

size_t qat_config_params(const ModelConfig *c) { return qat_config_params_mos(c, 0); }

void qat_shard_range(size_t n, int shards, int shard, size_t *lo, size_t *hi)
{
    if (shards <= 1) { *lo = 0; *hi = n; return; }
    /* shard r: blocks [ceil(nb·r/S), ceil(nb·(r+1)/S)), shard 0 the first ceil(nb/S) */
    size_t nb = (n + QAT_CLIP_BLOCK - 1) / QAT_CLIP_BLOCK, S = (size_t)shards;
    size_t b0 = (nb * (size_t)shard + S - 1) / S, b1 = (nb * ((size_t)shard + 1) + S - 1) / S;
    *lo = b0 * QAT_CLIP_BLOCK < n ? b0 * QAT_CLIP_BLOCK : n;
    *hi = b1 * QAT_CLIP_BLOCK < n ? b1 * QAT_CLIP_BLOCK : n;
}

void qat_shard_offsets(size_t n, int shards, size_t *off)
{
    int S = shards > 1 ? shards : 1;
    for (int r = 0; r < S; r++) {
        size_t hi;
        qat_shard_range(n, S, r, &off[r], &hi);
    }
    off[S] = n;
}

double qat_param_state_bytes(const ModelConfig *c, QatOptim optim, int shards)
{
    return qat_param_state_bytes_mos(c, optim, shards, 0);
}

double qat_param_state_bytes_mos(const ModelConfig *c, QatOptim optim, int shards, int mos)
{
    size_t n = qat_config_params_mos(c, mos), lo, hi;
    qat_shard_range(n, shards, 0, &lo, &hi);
    return (double)n * 8.0 + (double)(hi - lo) * (optim == QAT_OPTIM_BF16 ? 4.0 : 8.0);
}

double qat_allocated_bytes(const QatModel *q) { return q->bytes; }

double qat_memory_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        double kb = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
        fclose(f);
        if (kb >= 0) return kb * 1024.0;
    }
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    return have > 0 ? have : 0;
}

/* a uniform variate in (0, 1) from the splitmix64 state *s */
static double mos_uniform(unsigned long long *s)
{
    unsigned long long z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

/* MoS (qat.h): every expert of linear L a copy of its SVID g and h (expert
 * 0, in place), the router N(0, 0.02²) by Box-Muller from the seed and the
 * linear's index i */
static void mos_init(QatModel *q, const QLin *L, unsigned long long i)
{
    if (q->mos < 2) return;
    float *p = q->params;
    for (int e = 1; e < q->mos; e++) {
        memcpy(p + L->off_g + (size_t)e * L->in, p + L->off_g, (size_t)L->in * sizeof(float));
        memcpy(p + L->off_h + (size_t)e * L->out, p + L->off_h, (size_t)L->out * sizeof(float));
    }
    unsigned long long st = q->mos_seed * 0x100000001b3ull ^ (i + 1) * 0xd6e8feb86659fd93ull;
    for (size_t k = 0, n = (size_t)q->mos * L->in; k < n; k++) {
        double u1 = mos_uniform(&st), u2 = mos_uniform(&st);
        p[L->off_r + k] = (float)(0.02 * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
    }
}

QatModel *qat_new(const Model *teacher, SvidMethod init, const QatSize *sz, char *err)
{
    const ModelConfig *c = &teacher->cfg;
    int max_B = sz->max_B, max_T = sz->max_T;
    if (!svid_method_ok(init)) {
        ob_seterr(err, "unknown SVID init method %d", (int)init);
        return NULL;
    }
    if (sz->optim != QAT_OPTIM_FP32 && sz->optim != QAT_OPTIM_BF16) {
        ob_seterr(err, "unknown optimizer state precision %d", (int)sz->optim);
        return NULL;
    }
    if (sz->shards < 0 || sz->shard < 0 || sz->shard >= (sz->shards > 1 ? sz->shards : 1)) {
        ob_seterr(err, "bad optimizer shard %d of %d", sz->shard, sz->shards);
        return NULL;
    }
    if (sz->mos < 0 || sz->mos == 1 || sz->mos > QAT_MOS_MAX) {
        ob_seterr(err, "a mixture of scales has 2 to %d experts (0: off), not %d", QAT_MOS_MAX, sz->mos);
        return NULL;
    }
    if (max_B <= 0 || max_T <= 0 || max_T > c->seq_len || (long)max_B * max_T > (1L << 24)) {
        ob_seterr(err, "bad batch shape %d x %d (seq_len %d)", max_B, max_T, c->seq_len);
        return NULL;
    }
    for (int i = 0; i < c->n_layers * LIN_PER_LAYER; i++) {
        int in, out;
        model_lin_shape(c, i % LIN_PER_LAYER, &out, &in);
        if (!model_lin_dense(teacher, i)) {
            ob_seterr(err, "teacher linear %s of layer %d is not dense", model_lin_names[i % LIN_PER_LAYER],
                      i / LIN_PER_LAYER);
            return NULL;
        }
        if (teacher->lin[i].in != in || teacher->lin[i].out != out) {
            ob_seterr(err, "teacher linear %s of layer %d is %dx%d, the config says %dx%d",
                      model_lin_names[i % LIN_PER_LAYER], i / LIN_PER_LAYER, teacher->lin[i].out,
                      teacher->lin[i].in, out, in);
            return NULL;
        }
    }
    double need = qat_memory_bytes(c, sz), have = qat_memory_available();
    if (have > 0 && need > have) {
        double ps = qat_param_state_bytes_mos(c, sz->optim, sz->shards, sz->mos);
        ob_seterr(err, "training batch %d x %d tokens needs %.1f GiB (parameters, gradients and AdamW state %.1f GiB, "
                  "activations and scratch %.1f GiB); %.1f GiB of memory is available",
                  max_B, max_T, need / 1073741824.0, ps / 1073741824.0, (need - ps) / 1073741824.0, have / 1073741824.0);
        return NULL;
    }
    QatModel *q = ob_aligned_alloc(64, sizeof *q);
    q->t = teacher;
    q->cfg = *c;
    q->maxB = max_B;
    q->maxT = max_T;
    q->optim = sz->optim;
    q->recompute = sz->recompute != 0;
    q->shards = sz->shards;
    q->shard = sz->shard;
    q->ste = (QatSte){QAT_STE_ONEBIT, 0};
    q->mos = sz->mos;
    q->mos_seed = sz->mos_seed;
    q->bytes = QAT_STRUCT_BYTES;
    alloc_buffers(q);
    /* SVID init from the teacher: |W| ≈ a·bᵀ, h = a, g = b, W = 0.01·sign(W) */
    for (int i = 0; i < c->n_layers * LIN_PER_LAYER; i++) {
        QLin *L = &q->lin[i];
        float *tmp; /* a mapped teacher's matrix, converted one at a time */
        const float *Wt = model_lin_f32(teacher, i, &tmp);
        float *W = q->params + L->off_w;
        size_t n = (size_t)L->in * L->out;
        for (size_t k = 0; k < n; k++) W[k] = Wt[k] >= 0.0f ? 0.01f : -0.01f;
        char why[OB_ERRLEN];
        int bad = svid_rank1(Wt, L->out, L->in, (SvidMethod)init, q->params + L->off_h, q->params + L->off_g, NULL, why);
        free(tmp);
        if (bad) {
            ob_seterr(err, "SVID of layer %d %s: %s", i / LIN_PER_LAYER, model_lin_names[i % LIN_PER_LAYER], why);
            free_buffers(q);
            free(q);
            return NULL;
        }
        mos_init(q, L, (unsigned long long)i);
    }
    q->emb = model_vocab_f32(teacher, 0, &q->emb32);
    q->cls = c->shared_classifier ? q->emb : model_vocab_f32(teacher, 1, &q->cls32);
    q->bytes += ((q->emb32 != NULL) + (q->cls32 != NULL)) * vocab_copy_bytes(c);
    model_rope_table(c, q->rope_cos, q->rope_sin);
    return q;
}

void qat_free(QatModel *q)
{
    if (!q) return;
    free_buffers(q);
    free(q->emb32);
    free(q->cls32);
    pool_free(q->par.pool);
    free(q);
}

int qat_set_threads(QatModel *q, int n, char *err)
{
    assert(!atomic_load(&q->in_use) && "qat_set_threads while the model is in use");
    if (n < 1 || n > 1024) { ob_seterr(err, "qat threads must be between 1 and 1024, not %d", n); return -1; }
    if (n == qat_threads(q)) return 0;
    Pool *p = NULL;
    if (n > 1 && !(p = pool_new(n, err))) return -1;
    pool_free(q->par.pool);
    q->par.pool = p;
    return 0;
}

int qat_threads(const QatModel *q) { return par_threads(&q->par); }
void qat_set_ste(QatModel *q, const QatSte *s) { q->ste = *s; }
void qat_set_layernorm(QatModel *q, int on) { q->no_norm = !on; }
int qat_layernorm(const QatModel *q) { return !q->no_norm; }

const ModelConfig *qat_config(const QatModel *q) { return &q->cfg; }
size_t qat_num_params(const QatModel *q) { return q->nparams; }
float *qat_params(QatModel *q) { return q->params; }
float *qat_grads(QatModel *q) { return q->grads; }
void qat_zero_grads(QatModel *q) { memset(q->grads, 0, q->nparams * sizeof(float)); }
const float *qat_logits(const QatModel *q) { return q->logits; }
void qat_reuse_teacher(QatModel *q, int on) { q->reuse_teacher = on; }
const float *qat_input_grad(const QatModel *q) { return q->dres; }
const float *qat_teacher_logits(const QatModel *q) { return q->tlogits; }
const float *qat_teacher_hidden(const QatModel *q) { return q->thid; }
QatOptim qat_optim(const QatModel *q) { return q->optim; }
void qat_shard(const QatModel *q, size_t *lo, size_t *hi) { *lo = q->lo; *hi = q->hi; }

void *qat_moments(QatModel *q, int which, size_t *elem_bytes)
{
    if (elem_bytes) *elem_bytes = q->optim == QAT_OPTIM_BF16 ? sizeof(uint16_t) : sizeof(float);
    return which ? q->v : q->m;
}

float qat_moment(const QatModel *q, int which, size_t i)
{
    const void *a = which ? q->v : q->m;
    return q->optim == QAT_OPTIM_BF16 ? ob_bf16_to_fp32(((const uint16_t *)a)[i]) : ((const float *)a)[i];
}
void qat_times(const QatModel *q, double sec[QAT_NTIMERS]) { memcpy(sec, q->tsec, sizeof q->tsec); }
void qat_add_time(QatModel *q, int phase, double sec)
{
    if (phase >= 0 && phase < QAT_NTIMERS) q->tsec[phase] += sec;
}

int qat_linear_params(QatModel *q, int l, int j, float **W, float **g, float **h, int *in, int *out)
{
    if (l < 0 || l >= q->cfg.n_layers || j < 0 || j >= LIN_PER_LAYER) return -1;
    const QLin *L = &q->lin[l * LIN_PER_LAYER + j];
    if (W) *W = q->params + L->off_w;
    if (g) *g = q->params + L->off_g;
    if (h) *h = q->params + L->off_h;
    if (in) *in = L->in;
    if (out) *out = L->out;
    return 0;
}

int qat_mos(const QatModel *q) { return q->mos; }

int qat_linear_mos(QatModel *q, int l, int j, float **Gin, float **Hout, float **G)
{
    if (l < 0 || l >= q->cfg.n_layers || j < 0 || j >= LIN_PER_LAYER) return -1;
    const QLin *L = &q->lin[l * LIN_PER_LAYER + j];
    int on = q->mos > 1;
    if (Gin) *Gin = on ? q->params + L->off_g : NULL;
    if (Hout) *Hout = on ? q->params + L->off_h : NULL;
    if (G) *G = on ? q->params + L->off_r : NULL;
    return on ? q->mos : 0;
}

int qat_linear_srcs(const QatModel *q, void *lin_out)
{
    QatLinearSrc *o = lin_out;
    int n = q->cfg.n_layers * LIN_PER_LAYER, E = q->mos > 1 ? q->mos : 0;
    for (int i = 0; i < n; i++) {
        const QLin *L = &q->lin[i];
        const float *g = q->params + L->off_g, *h = q->params + L->off_h;
        o[i] = (QatLinearSrc){L->in, L->out, q->params + L->off_w, g, h, !q->no_norm, E,
                              E ? q->params + L->off_r : NULL, E ? g : NULL, E ? h : NULL};
    }
    return n;
}

/* ---- FP building blocks (forward as model.c, plus backward) ------------ */

/* out (N,C) = RMSNorm(x) ⊙ w, numerics of model_rmsnorm; rstd (N) saved */
void qat_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps)
{
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float ss = 0.0f;
        for (int j = 0; j < C; j++) ss += xn[j] * xn[j];
        ss /= C;
        ss += eps;
        ss = 1.0f / sqrtf(ss);
        rstd[n] = ss;
        for (int j = 0; j < C; j++) o[j] = w[j] * (ss * xn[j]);
    }
}

/* dx (N,C) += d/dx of RMSNorm given dout:
 * dx = r·(w⊙dy) − x·r³/C·Σ(w⊙dy⊙x) */
void qat_rmsnorm_bwd(float *dx, const float *dout, const float *x, const float *w, const float *rstd, int N, int C)
{
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * C, *dy = dout + (size_t)n * C;
        float *d = dx + (size_t)n * C;
        double r = rstd[n], dot = 0;
        for (int j = 0; j < C; j++) dot += (double)w[j] * dy[j] * xn[j];
        double k = dot * r * r * r / C;
        for (int j = 0; j < C; j++) d[j] += (float)(r * w[j] * dy[j] - k * xn[j]);
    }
}

/* RoPE of every row n at position n % T (model_rope), in place */
void qat_rope_fwd(float *v, int N, int T, int n_dim, int hd, const float *cosv, const float *sinv)
{
    int half = hd / 2;
    for (int n = 0; n < N; n++) {
        int t = n % T;
        model_rope(v + (size_t)n * n_dim, n_dim, hd, cosv + (size_t)t * half, sinv + (size_t)t * half);
    }
}

/* transpose of the rotation, in place: the gradient of qat_rope_fwd */
void qat_rope_bwd(float *d, int N, int T, int n_dim, int hd, const float *cosv, const float *sinv)
{
    int half = hd / 2;
    for (int n = 0; n < N; n++) {
        const float *cs = cosv + (size_t)(n % T) * half, *sn = sinv + (size_t)(n % T) * half;
        float *v = d + (size_t)n * n_dim;
        for (int i = 0; i < n_dim; i += 2) {
            int p = (i % hd) / 2;
            float c = cs[p], s = sn[p], d0 = v[i], d1 = v[i + 1];
            v[i] = d0 * c + d1 * s;
            v[i + 1] = -d0 * s + d1 * c;
        }
    }
}

/* C (M,N) = alpha·op(A)·op(B) + beta·C, row-major. Small products are split
 * over row blocks of C, one single-threaded sgemm per thread (OpenBLAS's own
 * threading costs more than it gains on them); large ones go to OpenBLAS as
 * they are. A row of C is computed the same way either way. */
typedef struct {
    enum CBLAS_TRANSPOSE ta, tb;
    int M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
} GemmCtx;

static void gemm_rows(void *ctx, size_t lo, size_t hi)
{
    const GemmCtx *g = ctx;
    int r0 = (int)lo * 16, r1 = (int)hi * 16 < g->M ? (int)hi * 16 : g->M;
    if (r1 <= r0) return;
    const float *A = g->ta == CblasNoTrans ? g->A + (size_t)r0 * g->lda : g->A + r0;
    cblas_sgemm(CblasRowMajor, g->ta, g->tb, r1 - r0, g->N, g->K, g->alpha, A, g->lda, g->B, g->ldb, g->beta,
                g->C + (size_t)r0 * g->ldc, g->ldc);
}

#define QAT_SMALL_GEMM 1.5e8 /* flops under which rows are split by hand */

/* C = alpha·op(A)·op(B) + beta·C. With one qat thread: one OpenBLAS call
 * (OpenBLAS threads it as its own count says). With more: split over rows on
 * qat's pool, each piece one OpenBLAS call -- except a large product while
 * OpenBLAS itself has several threads (the workbench, where the main thread
 * keeps OpenBLAS's count for chat), which goes to OpenBLAS whole. The
 * trainer and bench train set OpenBLAS to 1 thread (base/blas.h, from the
 * main thread before training), so every product is split here. */
static void qsgemm(const QatPar *par, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K,
                   float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    double flops = 2.0 * M * N * K;
    if (par_threads(par) < 2 || M < 32 || (flops >= QAT_SMALL_GEMM && blas_threads() > 1)) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    GemmCtx g = {ta, tb, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C};
    par_for(par, (size_t)(M + 15) / 16, (size_t)16 * N * K, gemm_rows, &g);
}

/* causal GQA attention of B sequences, one (b, head) at a time with two
 * sgemms as model.c's attention_batched; the (b, kv head) groups run in
 * parallel. q (N,qd), k, v (N,kvd) -> att (B,H,T,T) probabilities,
 * out (N,qd) */
typedef struct {
    const ModelConfig *c;
    const float *q, *k, *v, *att, *dout;
    float *atto, *out, *dq, *dk, *dv;
    int B, T;
    int hd, H, KV, qd, kvd, kv_mul; /* from c, set by att_ctx_dims */
    float scale;
} AttCtx;

/* the head geometry both attention passes work with */
static void att_ctx_dims(AttCtx *p)
{
    const ModelConfig *c = p->c;
    p->hd = c->head_dim;
    p->H = c->n_heads;
    p->KV = c->n_kv_heads;
    p->qd = p->H * p->hd;
    p->kvd = p->KV * p->hd;
    p->kv_mul = p->H / p->KV;
    p->scale = 1.0f / sqrtf((float)p->hd);
}

static void att_fwd_groups(void *ctx, size_t lo, size_t hi)
{
    const AttCtx *p = ctx;
    int T = p->T, hd = p->hd, H = p->H, KV = p->KV, qd = p->qd, kvd = p->kvd, kv_mul = p->kv_mul;
    float scale = p->scale;
    for (size_t gi = lo; gi < hi; gi++) {
        int b = (int)(gi / KV), kh = (int)(gi % KV);
        for (int h = kh * kv_mul; h < (kh + 1) * kv_mul; h++) {
            const float *Q = p->q + (size_t)b * T * qd + h * hd;
            const float *K = p->k + (size_t)b * T * kvd + kh * hd;
            const float *V = p->v + (size_t)b * T * kvd + kh * hd;
            float *A = p->atto + ((size_t)b * H + h) * T * T;
            // A (T,T) = scale · Q (T,hd) · Kᵀ
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, Q, qd, K, kvd, 0.0f, A, T);
            for (int t = 0; t < T; t++) {
                float *row = A + (size_t)t * T;
                model_softmax(row, t + 1);
                memset(row + t + 1, 0, (size_t)(T - t - 1) * sizeof(float));
            }
            // out (T,hd) = A (T,T) · V (T,hd)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, A, T, V, kvd, 0.0f,
                        p->out + (size_t)b * T * qd + h * hd, qd);
        }
    }
}

void qat_attention_fwd(const QatPar *par, const ModelConfig *c, const float *qm, const float *km, const float *vm, float *att,
                       float *out, int B, int T)
{
    AttCtx p = {.c = c, .q = qm, .k = km, .v = vm, .atto = att, .out = out, .B = B, .T = T};
    att_ctx_dims(&p);
    int kv_mul = c->n_heads / c->n_kv_heads;
    par_for(par, (size_t)B * c->n_kv_heads, (size_t)kv_mul * T * T * c->head_dim * 2, att_fwd_groups, &p);
}

static void att_bwd_groups(void *ctx, size_t lo, size_t hi)
{
    const AttCtx *p = ctx;
    int T = p->T, hd = p->hd, H = p->H, KV = p->KV, qd = p->qd, kvd = p->kvd, kv_mul = p->kv_mul;
    float scale = p->scale;
    float *dP = ob_aligned_alloc(64, (size_t)T * T * sizeof(float));
    for (size_t gi = lo; gi < hi; gi++) {
        int b = (int)(gi / KV), kh = (int)(gi % KV);
        size_t ko = (size_t)b * T * kvd + kh * hd;
        for (int t = 0; t < T; t++) {
            memset(p->dk + ko + (size_t)t * kvd, 0, hd * sizeof(float));
            memset(p->dv + ko + (size_t)t * kvd, 0, hd * sizeof(float));
        }
        for (int h = kh * kv_mul; h < (kh + 1) * kv_mul; h++) {
            size_t qo = (size_t)b * T * qd + h * hd;
            const float *A = p->att + ((size_t)b * H + h) * T * T;
            const float *dO = p->dout + qo;
            // dP (T,T) = dO (T,hd) · Vᵀ
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dO, qd, p->v + ko, kvd, 0.0f, dP, T);
            // dV (T,hd) += Aᵀ (T,T) · dO (T,hd)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, A, T, dO, qd, 1.0f, p->dv + ko, kvd);
            // softmax backward, causal: dS = A ⊙ (dP − Σ_j A·dP)
            for (int t = 0; t < T; t++) {
                const float *a = A + (size_t)t * T;
                float *d = dP + (size_t)t * T;
                double s = 0;
                for (int j = 0; j <= t; j++) s += (double)a[j] * d[j];
                for (int j = 0; j <= t; j++) d[j] = a[j] * (d[j] - (float)s);
                memset(d + t + 1, 0, (size_t)(T - t - 1) * sizeof(float));
            }
            // dQ (T,hd) = scale · dS (T,T) · K (T,hd)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, scale, dP, T, p->k + ko, kvd, 0.0f,
                        p->dq + qo, qd);
            // dK (T,hd) += scale · dSᵀ · Q
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, scale, dP, T, p->q + qo, qd, 1.0f,
                        p->dk + ko, kvd);
        }
    }
    free(dP);
}

/* gradients of qat_attention_fwd: dq (N,qd), dk, dv (N,kvd) written (heads
 * sharing a kv head accumulate in head order); dP is unused scratch kept
 * for the interface (each worker has its own) */
void qat_attention_bwd(const QatPar *par, const ModelConfig *c, const float *qm, const float *km, const float *vm, const float *att,
                       const float *dout, float *dq, float *dk, float *dv, float *dP, int B, int T)
{
    (void)dP;
    AttCtx p = {.c = c, .q = qm, .k = km, .v = vm, .att = att, .dout = dout, .dq = dq, .dk = dk, .dv = dv,
                .B = B, .T = T};
    att_ctx_dims(&p);
    int kv_mul = c->n_heads / c->n_kv_heads;
    par_for(par, (size_t)B * c->n_kv_heads, (size_t)kv_mul * T * T * c->head_dim * 4, att_bwd_groups, &p);
}

/* hp = silu(gate) ⊙ up, numerics of model.c */
void qat_swiglu_fwd(float *hp, const float *gate, const float *up, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = gate[i];
        v *= 1.0f / (1.0f + expf(-v));
        hp[i] = v * up[i];
    }
}

void qat_swiglu_bwd(float *dgate, float *dup, const float *dhp, const float *gate, const float *up, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float a = gate[i], sg = 1.0f / (1.0f + expf(-a));
        dup[i] = dhp[i] * a * sg;
        dgate[i] = dhp[i] * up[i] * sg * (1.0f + a * (1.0f - sg));
    }
}

/* ---- the OneBit linear --------------------------------------------------- */

/* the elementwise and per-row/per-column parts of the OneBit linear, as
 * par_for bodies. g and h are one vector (gs, hs 0) or, with a mixture of
 * scales, one per row (gs = in, hs = out: g(x), h(x)) */
typedef struct {
    int in, out;
    const float *x, *g, *h, *a, *y, *rstd_in, *dgx;
    float *gx, *yo, *rstd, *dy, *dx, *dg, *dh;
    size_t N;
    int accumulate;
    size_t gs, hs;
} LinPar;

static void lp_gx(void *c, size_t lo, size_t hi) /* rows: gx = x ⊙ g */
{
    const LinPar *p = c;
    for (size_t n = lo; n < hi; n++) {
        const float *xn = p->x + n * p->in, *g = p->g + n * p->gs;
        float *gxn = p->gx + n * p->in;
        for (int i = 0; i < p->in; i++) gxn[i] = xn[i] * g[i];
    }
}

static void lp_ln_fwd(void *c, size_t lo, size_t hi) /* rows: y = LN(h ⊙ a), or h ⊙ a without rstd */
{
    const LinPar *p = c;
    int out = p->out;
    for (size_t n = lo; n < hi; n++) {
        const float *an = p->a + n * out, *h = p->h + n * p->hs;
        float *yn = p->yo + n * out;
        for (int o = 0; o < out; o++) yn[o] = an[o] * h[o];
        if (p->rstd) p->rstd[n] = kern_layernorm_inplace(yn, out, QAT_LN_EPS); /* as bitlinear_layernorm */
    }
}

/* MoS: the router's probabilities r (N,E) = softmax(x · Gᵀ) and from them
 * g(x) = r · G_in (N,in) into m->gv, h(x) = r · H_out (N,out) into m->hv */
static void mos_scales(const QatPar *par, int in, int out, const QatMos *m, const float *x, int N, float *r, int route)
{
    int E = m->E;
    if (route) {
        // r (N,E) = x (N,in) · Gᵀ (in,E), then softmax per row
        qsgemm(par, CblasNoTrans, CblasTrans, N, E, in, 1.0f, x, in, m->G, in, 0.0f, r, E);
        for (int n = 0; n < N; n++) model_softmax(r + (size_t)n * E, E);
    }
    // gv (N,in) = r (N,E) · G_in (E,in);  hv (N,out) = r · H_out (E,out)
    qsgemm(par, CblasNoTrans, CblasNoTrans, N, in, E, 1.0f, r, E, m->Gin, in, 0.0f, m->gv, in);
    qsgemm(par, CblasNoTrans, CblasNoTrans, N, out, E, 1.0f, r, E, m->Hout, out, 0.0f, m->hv, out);
}

/* y (N,out) = LayerNorm(h ⊙ (S · (g ⊙ x))); keeps a = S·(g⊙x) (N,out) and
 * the LayerNorm's 1/std (N); rstd NULL: no LayerNorm; gx: (N,in) scratch; gs,
 * hs: LinPar's */
static void onebit_fwd(const QatPar *par, int in, int out, const float *S, const float *g, const float *h, size_t gs,
                       size_t hs, const float *x, int N, float *gx, float *a, float *y, float *rstd)
{
    LinPar p = {.in = in, .out = out, .x = x, .g = g, .h = h, .a = a, .gx = gx, .yo = y, .rstd = rstd, .gs = gs, .hs = hs};
    par_for(par, (size_t)N, (size_t)in, lp_gx, &p);
    // a (N,out) = gx (N,in) · Sᵀ (in,out)
    qsgemm(par, CblasNoTrans, CblasTrans, N, out, in, 1.0f, gx, in, S, in, 0.0f, a, out);
    par_for(par, (size_t)N, (size_t)out * 4, lp_ln_fwd, &p);
}

void qat_onebit_fwd(const QatPar *par, int in, int out, const float *S, const float *g, const float *h, const float *x, int N,
                    float *gx, float *a, float *y, float *rstd)
{
    onebit_fwd(par, in, out, S, g, h, 0, 0, x, N, gx, a, y, rstd);
}

void qat_mos_fwd(const QatPar *par, int in, int out, const float *S, const QatMos *m, const float *x, int N, float *gx,
                 float *r, float *a, float *y, float *rstd)
{
    mos_scales(par, in, out, m, x, N, r, 1);
    onebit_fwd(par, in, out, S, m->gv, m->hv, (size_t)in, (size_t)out, x, N, gx, a, y, rstd);
}

static void lp_ln_bwd(void *c, size_t lo, size_t hi) /* rows: du = r·(dy − mean(dy) − y·mean(dy⊙y)) */
{
    const LinPar *p = c;
    int out = p->out;
    for (size_t n = lo; n < hi; n++) {
        float *d = p->dy + n * out;
        const float *yn = p->y + n * out;
        double s1 = 0, s2 = 0;
        for (int o = 0; o < out; o++) { s1 += d[o]; s2 += (double)d[o] * yn[o]; }
        s1 /= out;
        s2 /= out;
        double r = p->rstd_in[n];
        for (int o = 0; o < out; o++) d[o] = (float)(r * (d[o] - s1 - yn[o] * s2));
    }
}

/* out[j] += Σ_n a[n,j]·b[n,j] for columns lo..hi-1 of (N, width) arrays: in
 * blocks of 64 columns, double accumulators, rows in order (deterministic
 * whatever the column split) */
static void colsum_prod(const float *a, const float *b, size_t N, size_t width, size_t lo, size_t hi, float *out)
{
    for (size_t j0 = lo; j0 < hi; j0 += 64) {
        size_t j1 = j0 + 64 < hi ? j0 + 64 : hi;
        double acc[64] = {0};
        for (size_t n = 0; n < N; n++) {
            const float *an = a + n * width, *bn = b + n * width;
            for (size_t j = j0; j < j1; j++) acc[j - j0] += (double)an[j] * bn[j];
        }
        for (size_t j = j0; j < j1; j++) out[j] += (float)acc[j - j0];
    }
}

static void lp_dh(void *c, size_t lo, size_t hi) /* columns: dh += Σ_n du ⊙ a */
{
    const LinPar *p = c;
    colsum_prod(p->dy, p->a, p->N, (size_t)p->out, lo, hi, p->dh);
}

static void lp_dz_gx(void *c, size_t lo, size_t hi) /* rows: dz = du ⊙ h; gx = x ⊙ g */
{
    const LinPar *p = c;
    for (size_t n = lo; n < hi; n++) {
        float *d = p->dy + n * p->out;
        const float *h = p->h + n * p->hs;
        for (int o = 0; o < p->out; o++) d[o] *= h[o];
    }
    lp_gx(c, lo, hi);
}

static void lp_dhv(void *c, size_t lo, size_t hi) /* rows (MoS): d(h(x)) = du ⊙ a into dh */
{
    const LinPar *p = c;
    for (size_t k = lo * p->out; k < hi * p->out; k++) p->dh[k] = p->dy[k] * p->a[k];
}

static void lp_dgv(void *c, size_t lo, size_t hi) /* rows (MoS): d(g(x)) = d(gx) ⊙ x, in place */
{
    const LinPar *p = c;
    float *d = (float *)p->dgx;
    for (size_t k = lo * p->in; k < hi * p->in; k++) d[k] *= p->x[k];
}

static void lp_dg(void *c, size_t lo, size_t hi) /* columns: dg += Σ_n d(gx) ⊙ x */
{
    const LinPar *p = c;
    colsum_prod(p->dgx, p->x, p->N, (size_t)p->in, lo, hi, p->dg);
}

static void lp_dx(void *c, size_t lo, size_t hi) /* rows: dx (+)= d(gx) ⊙ g */
{
    const LinPar *p = c;
    int in = p->in;
    for (size_t n = lo; n < hi; n++) {
        const float *dg = p->dgx + n * in, *g = p->g + n * p->gs;
        float *dxn = p->dx + n * in;
        if (p->accumulate) for (int i = 0; i < in; i++) dxn[i] += dg[i] * g[i];
        else for (int i = 0; i < in; i++) dxn[i] = dg[i] * g[i];
    }
}

typedef struct { const float *dS, *W; float *dW; const QatSte *ste; } SteCtx;
static void lp_ste(void *c, size_t lo, size_t hi) /* dW += dS ⊙ f(W), from W (QatSte) */
{
    const SteCtx *p = c;
    if (p->ste->kind == QAT_STE_ONEBIT) /* the default, inlined */
        for (size_t k = lo; k < hi; k++) p->dW[k] += p->dS[k] * ste_of(p->W[k]);
    else
        for (size_t k = lo; k < hi; k++) p->dW[k] += p->dS[k] * qat_ste_factor(p->ste, p->W[k]);
}

/* MoS: softmax backward of the router in place, dr -> dz = r ⊙ (dr − r·dr) */
static void mos_softmax_bwd(float *dr, const float *r, int N, int E)
{
    for (int n = 0; n < N; n++) {
        float *d = dr + (size_t)n * E;
        const float *rn = r + (size_t)n * E;
        double s = 0;
        for (int e = 0; e < E; e++) s += (double)rn[e] * d[e];
        for (int e = 0; e < E; e++) d[e] = rn[e] * (d[e] - (float)s);
    }
}

/* the backward of onebit_fwd; with m (MoS) g(x), h(x) are m->gv, m->hv
 * (mos_scales, r the router's probabilities) and the experts' and router's
 * gradients go to m */
static void onebit_bwd(const QatPar *par, const QatOnebitGrad *p, const QatMos *m, const float *r, const float *x, int N,
                       const float *a, const float *y, const float *rstd, float *dy, float *dx, int accumulate)
{
    int in = p->in, out = p->out;
    LinPar lp = {.in = in, .out = out, .x = x, .g = m ? m->gv : p->g, .h = m ? m->hv : p->h, .a = a, .y = y,
                 .rstd_in = rstd, .dgx = p->dgx, .gx = p->gx, .dy = dy, .dx = dx, .dg = p->dg,
                 .dh = m ? m->dhv : p->dh, .N = (size_t)N, .accumulate = accumulate,
                 .gs = m ? (size_t)in : 0, .hs = m ? (size_t)out : 0};
    if (rstd) par_for(par, (size_t)N, (size_t)out * 4, lp_ln_bwd, &lp); /* else du = dy */
    if (m) par_for(par, (size_t)N, (size_t)out, lp_dhv, &lp);
    else par_for(par, (size_t)out, (size_t)N * 2, lp_dh, &lp);
    par_for(par, (size_t)N, (size_t)(in + out), lp_dz_gx, &lp);
    // d(gx) (N,in) = dz (N,out) · S (out,in)
    qsgemm(par, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, dy, out, p->S, in, 0.0f, p->dgx, in);
    // dS (out,in) = dzᵀ (out,N) · gx (N,in)
    qsgemm(par, CblasTrans, CblasNoTrans, out, in, N, 1.0f, dy, out, p->gx, in, 0.0f, p->dS, in);
    if (p->W) {
        SteCtx sc = {p->dS, p->W, p->dW, &p->ste};
        par_for(par, (size_t)in * out, 2, lp_ste, &sc);
    }
    par_for(par, (size_t)N, (size_t)in, lp_dx, &lp);
    if (!m) {
        par_for(par, (size_t)in, (size_t)N * 2, lp_dg, &lp);
        return;
    }
    int E = m->E;
    par_for(par, (size_t)N, (size_t)in, lp_dgv, &lp); /* p->dgx is now d(g(x)) */
    // dG_in (E,in) += rᵀ (E,N) · d(g(x)) (N,in);  dH_out (E,out) += rᵀ · d(h(x))
    qsgemm(par, CblasTrans, CblasNoTrans, E, in, N, 1.0f, r, E, p->dgx, in, 1.0f, m->dGin, in);
    qsgemm(par, CblasTrans, CblasNoTrans, E, out, N, 1.0f, r, E, m->dhv, out, 1.0f, m->dHout, out);
    // dr (N,E) = d(g(x)) · G_inᵀ + d(h(x)) · H_outᵀ, then through the softmax
    qsgemm(par, CblasNoTrans, CblasTrans, N, E, in, 1.0f, p->dgx, in, m->Gin, in, 0.0f, m->dr, E);
    qsgemm(par, CblasNoTrans, CblasTrans, N, E, out, 1.0f, m->dhv, out, m->Hout, out, 1.0f, m->dr, E);
    mos_softmax_bwd(m->dr, r, N, E);
    // dG (E,in) += dzᵀ (E,N) · x (N,in);  dx (N,in) += dz (N,E) · G (E,in)
    qsgemm(par, CblasTrans, CblasNoTrans, E, in, N, 1.0f, m->dr, E, x, in, 1.0f, m->dG, in);
    qsgemm(par, CblasNoTrans, CblasNoTrans, N, in, E, 1.0f, m->dr, E, m->G, in, 1.0f, dx, in);
}

void qat_onebit_bwd(const QatPar *par, const QatOnebitGrad *p, const float *x, int N, const float *a, const float *y,
                    const float *rstd, float *dy, float *dx, int accumulate)
{
    onebit_bwd(par, p, NULL, NULL, x, N, a, y, rstd, dy, dx, accumulate);
}

void qat_mos_bwd(const QatPar *par, const QatOnebitGrad *p, const QatMos *m, const float *x, int N, const float *r,
                 const float *a, const float *y, const float *rstd, float *dy, float *dx, int accumulate)
{
    mos_scales(par, p->in, p->out, m, x, N, (float *)r, 0);
    onebit_bwd(par, p, m, r, x, N, a, y, rstd, dy, dx, accumulate);
}

/* MoS: linear L's experts, gradients and scratch, and its router
 * probabilities (*r, (N,E) of its layer's activations) */
static QatMos qlin_mos(QatModel *q, const QLin *L, float **r)
{
    size_t i = (size_t)(L - q->lin);
    *r = q->layer[i / LIN_PER_LAYER].lrt[i % LIN_PER_LAYER];
    return (QatMos){q->mos, q->params + L->off_r, q->params + L->off_g, q->params + L->off_h, q->grads + L->off_r,
                    q->grads + L->off_g, q->grads + L->off_h, q->gv, q->hv, q->dhv, q->dr};
}

static void qlin_fwd(QatModel *q, const QLin *L, const float *x, int N, float *a, float *y, float *rstd)
{
    float *rs = q->no_norm ? NULL : rstd;
    if (q->mos > 1) {
        float *r;
        QatMos m = qlin_mos(q, L, &r);
        qat_mos_fwd(&q->par, L->in, L->out, expand_S(q, L), &m, x, N, q->gx, r, a, y, rs);
        return;
    }
    qat_onebit_fwd(&q->par, L->in, L->out, expand_S(q, L), q->params + L->off_g, q->params + L->off_h, x, N, q->gx, a, y, rs);
}

static void qlin_bwd(QatModel *q, const QLin *L, const float *x, int N, const float *a, const float *y,
                     const float *rstd, float *dy, float *dx, int accumulate)
{
    QatOnebitGrad p = {L->in, L->out, expand_S(q, L), q->params + L->off_w, q->params + L->off_g,
                       q->params + L->off_h, q->grads + L->off_w, q->grads + L->off_g, q->grads + L->off_h,
                       q->dSw, q->gx, q->dgx, q->ste};
    const float *rs = q->no_norm ? NULL : rstd;
    if (q->mos > 1) {
        float *r;
        QatMos m = qlin_mos(q, L, &r);
        qat_mos_bwd(&q->par, &p, &m, x, N, r, a, y, rs, dy, dx, accumulate);
        return;
    }
    qat_onebit_bwd(&q->par, &p, x, N, a, y, rs, dy, dx, accumulate);
}

/* ---- the student forward ------------------------------------------------ */

/* block l of the student from its input q->layer[l].x into its activations
 * and, unless xout is NULL (a recomputation), its output xout */
static void block_forward(QatModel *q, int l, int B, int T, float *xout)
{
    const Model *m = q->t;
    const ModelConfig *c = &q->cfg;
    int C = c->dim, F = c->hidden_dim, N = B * T;
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    QLayer *a = &q->layer[l];
    const QLin *L = q->lin + (size_t)l * LIN_PER_LAYER;
    qat_rmsnorm_fwd(a->xn1, a->r1, a->x, m->rms_att + (size_t)l * C, N, C, c->norm_eps);
    for (int j = LIN_Q; j <= LIN_V; j++) qlin_fwd(q, &L[j], a->xn1, N, a->la[j], a->ly[j], a->lr[j]);
    memcpy(a->qr, a->ly[LIN_Q], (size_t)N * qd * sizeof(float));
    memcpy(a->kr, a->ly[LIN_K], (size_t)N * kvd * sizeof(float));
    qat_rope_fwd(a->qr, N, T, qd, c->head_dim, q->rope_cos, q->rope_sin);
    qat_rope_fwd(a->kr, N, T, kvd, c->head_dim, q->rope_cos, q->rope_sin);
    qat_attention_fwd(&q->par, c, a->qr, a->kr, a->ly[LIN_V], a->att, a->ao, B, T);
    qlin_fwd(q, &L[LIN_O], a->ao, N, a->la[LIN_O], a->ly[LIN_O], a->lr[LIN_O]);
    for (size_t i = 0; i < (size_t)N * C; i++) a->xm[i] = a->x[i] + a->ly[LIN_O][i];
    qat_rmsnorm_fwd(a->xn2, a->r2, a->xm, m->rms_ffn + (size_t)l * C, N, C, c->norm_eps);
    qlin_fwd(q, &L[LIN_GATE], a->xn2, N, a->la[LIN_GATE], a->ly[LIN_GATE], a->lr[LIN_GATE]);
    qlin_fwd(q, &L[LIN_UP], a->xn2, N, a->la[LIN_UP], a->ly[LIN_UP], a->lr[LIN_UP]);
    qat_swiglu_fwd(a->hp, a->ly[LIN_GATE], a->ly[LIN_UP], (size_t)N * F);
    qlin_fwd(q, &L[LIN_DOWN], a->hp, N, a->la[LIN_DOWN], a->ly[LIN_DOWN], a->lr[LIN_DOWN]);
    if (xout)
        for (size_t i = 0; i < (size_t)N * C; i++) xout[i] = a->xm[i] + a->ly[LIN_DOWN][i];
}

static void student_forward(QatModel *q, const int *tokens, int B, int T)
{
    const Model *m = q->t;
    const ModelConfig *c = &q->cfg;
    int C = c->dim, N = B * T;
    q->B = B;
    q->T = T;
    float *x0 = q->layer[0].x;
    for (int n = 0; n < N; n++) memcpy(x0 + (size_t)n * C, q->emb + (size_t)tokens[n] * C, C * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) block_forward(q, l, B, T, l + 1 < c->n_layers ? q->layer[l + 1].x : q->xL);
    qat_rmsnorm_fwd(q->xf, q->rf, q->xL, m->rms_final, N, C, c->norm_eps);
    // logits (N,V) = xf (N,C) · wclsᵀ
    qsgemm(&q->par, CblasNoTrans, CblasTrans, N, c->vocab_size, C, 1.0f, q->xf, C, q->cls, C, 0.0f,
                q->logits, c->vocab_size);
}

/* LinearGemmFn on qat's pool (ctx: the QatPar) */
static void qsgemm_nt(void *ctx, int N, int n, int in, const float *x, const float *tile, float *y, int ldc)
{
    qsgemm(ctx, CblasNoTrans, CblasTrans, N, n, in, 1.0f, x, in, tile, in, 0.0f, y, ldc);
}

/* y (N,out) = x (N,in) · Wᵀ: a dense teacher linear. A mapped teacher's
 * (rows in its file's precision) as linear_forward does it, tiles of rows
 * converted to FP32 in a bounded scratch, but the products on qat's own
 * pool (training runs OpenBLAS on one thread) */
static void dense_fwd(const QatPar *par, const Linear *L, const float *x, float *y, int N)
{
    if (L->w) {
        qsgemm(par, CblasNoTrans, CblasTrans, N, L->out, L->in, 1.0f, x, L->in, L->w, L->in, 0.0f, y, L->out);
        return;
    }
    if (N <= LINEAR_SMALL_N || !par->pool) { linear_forward(L, x, y, N); return; }
    linear_forward_tiles(L, qsgemm_nt, (void *)par, x, y, N);
}

/* the teacher's forward (model_forward's computation) batched over all B·T
 * tokens like the student's: hidden states into thid (L,N,C), logits into
 * tlogits. Scratch: the student's layer-0 buffers and xL, which the
 * student forward rewrites afterwards. */
static void teacher_forward(QatModel *q, const int *tokens, int B, int T)
{
    const Model *m = q->t;
    const ModelConfig *c = &q->cfg;
    int C = c->dim, F = c->hidden_dim, N = B * T;
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    QLayer *s = &q->layer[0];
    float *x = q->xL;
    for (int n = 0; n < N; n++) memcpy(x + (size_t)n * C, q->emb + (size_t)tokens[n] * C, C * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        const Linear *L = m->lin + (size_t)l * LIN_PER_LAYER;
        qat_rmsnorm_fwd(s->xn1, s->r1, x, m->rms_att + (size_t)l * C, N, C, c->norm_eps);
        dense_fwd(&q->par, &L[LIN_Q], s->xn1, s->qr, N);
        dense_fwd(&q->par, &L[LIN_K], s->xn1, s->kr, N);
        dense_fwd(&q->par, &L[LIN_V], s->xn1, s->ly[LIN_V], N);
        qat_rope_fwd(s->qr, N, T, qd, c->head_dim, q->rope_cos, q->rope_sin);
        qat_rope_fwd(s->kr, N, T, kvd, c->head_dim, q->rope_cos, q->rope_sin);
        qat_attention_fwd(&q->par, c, s->qr, s->kr, s->ly[LIN_V], s->att, s->ao, B, T);
        dense_fwd(&q->par, &L[LIN_O], s->ao, s->ly[LIN_O], N);
        for (size_t i = 0; i < (size_t)N * C; i++) x[i] += s->ly[LIN_O][i];
        qat_rmsnorm_fwd(s->xn2, s->r2, x, m->rms_ffn + (size_t)l * C, N, C, c->norm_eps);
        dense_fwd(&q->par, &L[LIN_GATE], s->xn2, s->ly[LIN_GATE], N);
        dense_fwd(&q->par, &L[LIN_UP], s->xn2, s->ly[LIN_UP], N);
        qat_swiglu_fwd(s->hp, s->ly[LIN_GATE], s->ly[LIN_UP], (size_t)N * F);
        dense_fwd(&q->par, &L[LIN_DOWN], s->hp, s->ly[LIN_DOWN], N);
        for (size_t i = 0; i < (size_t)N * C; i++) x[i] += s->ly[LIN_DOWN][i];
        memcpy(q->thid + (size_t)l * N * C, x, (size_t)N * C * sizeof(float));
    }
    qat_rmsnorm_fwd(q->xf, q->rf, x, m->rms_final, N, C, c->norm_eps);
    qsgemm(&q->par, CblasNoTrans, CblasTrans, N, c->vocab_size, C, 1.0f, q->xf, C, q->cls, C, 0.0f,
                q->tlogits, c->vocab_size);
}

static const float *layer_out(const QatModel *q, int l)
{
    return l + 1 < q->cfg.n_layers ? q->layer[l + 1].x : q->xL;
}

/* the hidden-state term of layer l: returns Σ_n ‖t̂ − ŝ‖² (double); when
 * ds is not NULL adds coef · d/ds of it to ds (N,C):
 * d/ds ‖t̂ − ŝ‖² = (2/‖s‖)·(ŝ(ŝ·t̂) − t̂) */
static double hidden_term(const QatModel *q, int l, int N, float *ds, double coef)
{
    int C = q->cfg.dim;
    const float *S = layer_out(q, l), *Tt = q->thid + (size_t)l * N * C;
    double total = 0;
    for (int n = 0; n < N; n++) {
        const float *s = S + (size_t)n * C, *t = Tt + (size_t)n * C;
        double ss = 0, tt = 0, st = 0;
        for (int i = 0; i < C; i++) { ss += (double)s[i] * s[i]; tt += (double)t[i] * t[i]; st += (double)s[i] * t[i]; }
        double ns = sqrt(ss), nt = sqrt(tt);
        double is = ns > 0 ? 1 / ns : 0, it = nt > 0 ? 1 / nt : 0, f = 0;
        for (int i = 0; i < C; i++) { double d = t[i] * it - s[i] * is; f += d * d; }
        total += f;
        if (ds && ns > 0) {
            double cosv = st * is * it, k = coef * 2 * is;
            float *d = ds + (size_t)n * C;
            for (int i = 0; i < C; i++) d[i] += (float)(k * (s[i] * is * cosv - t[i] * it));
        }
    }
    return total;
}

/* ---- forward + backward -------------------------------------------------- */

static int check_batch(const QatModel *q, const int *tokens, int B, int T)
{
    if (!tokens || B <= 0 || T <= 0 || B > q->maxB || T > q->maxT) return -1;
    for (long i = 0; i < (long)B * T; i++)
        if (tokens[i] < 0 || tokens[i] >= q->cfg.vocab_size) return -1;
    return 0;
}

/* KL(p_t ‖ p_s) of rows [lo, hi) into klrow; dlogits = coef·(p_s − p_t).
 * exp in float, sums in double, fixed order within a row */
typedef struct { const float *zs, *zt; float *d; double *klrow; int V; float coef; } KlCtx;
static void kl_rows(void *c, size_t lo, size_t hi)
{
    const KlCtx *p = c;
    int V = p->V;
    float *et = ob_malloc((size_t)V * sizeof(float));
    for (size_t n = lo; n < hi; n++) {
        const float *zs = p->zs + n * V, *zt = p->zt + n * V;
        float *d = p->d + n * V;
        float ms = zs[0], mt = zt[0];
        for (int v = 1; v < V; v++) { ms = zs[v] > ms ? zs[v] : ms; mt = zt[v] > mt ? zt[v] : mt; }
        double ss = 0, st = 0;
        for (int v = 0; v < V; v++) { d[v] = expf(zs[v] - ms); et[v] = expf(zt[v] - mt); }
        for (int v = 0; v < V; v++) { ss += d[v]; st += et[v]; }
        /* log p_t − log p_s = (zt − mt − log st) − (zs − ms − log ss) */
        float off = (float)((double)ms + log(ss) - (double)mt - log(st));
        float is = (float)(1.0 / ss), it = (float)(1.0 / st), kc = p->coef;
        double k = 0;
        for (int v = 0; v < V; v++) {
            float pt = et[v] * it;
            k += (double)(pt * (zt[v] - zs[v] + off));
            d[v] = kc * (d[v] * is - pt);
        }
        p->klrow[n] = k;
    }
    free(et);
}

/* the contract of qat.h, "one thread at a time": a second thread entering
 * while one is inside would share every activation buffer */
static void use_begin(QatModel *q)
{
    int was = atomic_exchange(&q->in_use, 1);
    assert(!was && "a QatModel is used from two threads at once (qat.h: one thread at a time)");
    (void)was;
}
static void use_end(QatModel *q) { atomic_store(&q->in_use, 0); }

static int forward_backward(QatModel *q, const int *tokens, int B, int T, const QatLossCfg *lc, float grad_scale,
                            QatLoss *out);
int qat_forward_backward(QatModel *q, const int *tokens, int B, int T, const QatLossCfg *lc, float grad_scale, QatLoss *out)
{
    use_begin(q);
    int rc = forward_backward(q, tokens, B, T, lc, grad_scale, out);
    use_end(q);
    return rc;
}

static double eval_nll_sum(QatModel *q, const int *tokens, int B, int T, long *n_pred);
double qat_eval_nll_sum(QatModel *q, const int *tokens, int B, int T, long *n_pred)
{
    use_begin(q);
    double r = eval_nll_sum(q, tokens, B, T, n_pred);
    use_end(q);
    return r;
}

static int forward_backward(QatModel *q, const int *tokens, int B, int T, const QatLossCfg *lc, float grad_scale,
                            QatLoss *out)
{
    if (check_batch(q, tokens, B, T)) return -1;
    const Model *m = q->t;
    const ModelConfig *c = &q->cfg;
    int C = c->dim, F = c->hidden_dim, V = c->vocab_size, N = B * T, Lc = c->n_layers;
    int qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    double t0 = ob_now();
    /* teacher: logits and per-layer hidden states */
    if (!q->reuse_teacher) teacher_forward(q, tokens, B, T);
    double t1 = ob_now();
    student_forward(q, tokens, B, T);
    double t2 = ob_now();
    /* KL(p_t ‖ p_s) per token; dlogits = coef·(p_s − p_t). exp in float,
     * sums in double, fixed order */
    KlCtx kc = {q->logits, q->tlogits, q->dlogits, q->klrow, V, (float)((double)lc->kl_scale / B * grad_scale)};
    par_for(&q->par, (size_t)N, (size_t)V * 8, kl_rows, &kc);
    double kl = 0;
    for (int n = 0; n < N; n++) kl += q->klrow[n];
    kl /= B;
    double t3 = ob_now();
    /* backward: head (frozen) -> final RMSNorm */
    // dxf (N,C) = dlogits (N,V) · wcls (V,C)
    qsgemm(&q->par, CblasNoTrans, CblasNoTrans, N, C, V, 1.0f, q->dlogits, V, q->cls, C, 0.0f, q->dxn, C);
    memset(q->dres, 0, (size_t)N * C * sizeof(float));
    qat_rmsnorm_bwd(q->dres, q->dxn, q->xL, m->rms_final, q->rf, N, C);
    double mse = 0, hcoef = (double)lc->alpha / N * grad_scale;
    for (int l = Lc - 1; l >= 0; l--) {
        QLayer *a = &q->layer[l];
        const QLin *L = q->lin + (size_t)l * LIN_PER_LAYER;
        mse += hidden_term(q, l, N, q->dres, hcoef) / N;
        /* the shared activations hold the last block's after the forward */
        if (q->recompute && l + 1 < Lc) block_forward(q, l, B, T, NULL);
        /* FFN: xout = xm + down(swiglu(gate(xn2), up(xn2))) */
        memcpy(q->dyb, q->dres, (size_t)N * C * sizeof(float));
        qlin_bwd(q, &L[LIN_DOWN], a->hp, N, a->la[LIN_DOWN], a->ly[LIN_DOWN], a->lr[LIN_DOWN], q->dyb, q->dhp, 0);
        qat_swiglu_bwd(q->dgate, q->dup, q->dhp, a->ly[LIN_GATE], a->ly[LIN_UP], (size_t)N * F);
        qlin_bwd(q, &L[LIN_GATE], a->xn2, N, a->la[LIN_GATE], a->ly[LIN_GATE], a->lr[LIN_GATE], q->dgate, q->dxn, 0);
        qlin_bwd(q, &L[LIN_UP], a->xn2, N, a->la[LIN_UP], a->ly[LIN_UP], a->lr[LIN_UP], q->dup, q->dxn, 1);
        qat_rmsnorm_bwd(q->dres, q->dxn, a->xm, m->rms_ffn + (size_t)l * C, a->r2, N, C);
        /* attention: xm = x + o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1))) */
        memcpy(q->dyb, q->dres, (size_t)N * C * sizeof(float));
        qlin_bwd(q, &L[LIN_O], a->ao, N, a->la[LIN_O], a->ly[LIN_O], a->lr[LIN_O], q->dyb, q->dao, 0);
        qat_attention_bwd(&q->par, c, a->qr, a->kr, a->ly[LIN_V], a->att, q->dao, q->dq, q->dk, q->dv, q->dP, B, T);
        qat_rope_bwd(q->dq, N, T, qd, c->head_dim, q->rope_cos, q->rope_sin);
        qat_rope_bwd(q->dk, N, T, kvd, c->head_dim, q->rope_cos, q->rope_sin);
        qlin_bwd(q, &L[LIN_Q], a->xn1, N, a->la[LIN_Q], a->ly[LIN_Q], a->lr[LIN_Q], q->dq, q->dxn, 0);
        qlin_bwd(q, &L[LIN_K], a->xn1, N, a->la[LIN_K], a->ly[LIN_K], a->lr[LIN_K], q->dk, q->dxn, 1);
        qlin_bwd(q, &L[LIN_V], a->xn1, N, a->la[LIN_V], a->ly[LIN_V], a->lr[LIN_V], q->dv, q->dxn, 1);
        qat_rmsnorm_bwd(q->dres, q->dxn, a->x, m->rms_att + (size_t)l * C, a->r1, N, C);
        /* dres is now the gradient w.r.t. block l's input; the embedding is frozen */
    }
    double t4 = ob_now();
    q->tsec[QAT_T_TEACHER] += t1 - t0;
    q->tsec[QAT_T_FORWARD] += t2 - t1;
    q->tsec[QAT_T_LOSS] += t3 - t2;
    q->tsec[QAT_T_BACKWARD] += t4 - t3;
    if (out) {
        out->kl = kl;
        out->mse = mse;
        out->loss = lc->kl_scale * kl + lc->alpha * mse;
        out->tokens = N;
    }
    return 0;
}

static double eval_nll_sum(QatModel *q, const int *tokens, int B, int T, long *n_pred)
{
    if (check_batch(q, tokens, B, T)) return -1.0;
    int V = q->cfg.vocab_size;
    student_forward(q, tokens, B, T);
    double nll = 0;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t + 1 < T; t++) {
            const float *z = q->logits + ((size_t)b * T + t) * V;
            double mx = z[0], s = 0;
            for (int v = 1; v < V; v++) if (z[v] > mx) mx = z[v];
            for (int v = 0; v < V; v++) s += exp(z[v] - mx);
            nll += mx + log(s) - z[tokens[(size_t)b * T + t + 1]];
        }
    }
    if (n_pred) *n_pred = (long)B * (T - 1);
    return nll;
}

/* ---- optimiser ----------------------------------------------------------- */

/* squares of the grads in fixed blocks of QAT_CLIP_BLOCK (independent of
 * threads and of the ZeRO-1 slices, which are made of whole blocks);
 * tasks count blocks from b0, the slice's first */
typedef struct { const float *g; size_t n, b0; double *part; float k; float *gw; } ClipCtx;
static void clip_sq(void *c, size_t lo, size_t hi)
{
    const ClipCtx *p = c;
    for (size_t b = p->b0 + lo; b < p->b0 + hi; b++) {
        size_t i1 = (b + 1) * QAT_CLIP_BLOCK < p->n ? (b + 1) * QAT_CLIP_BLOCK : p->n;
        double s = 0;
        for (size_t i = b * QAT_CLIP_BLOCK; i < i1; i++) s += (double)p->g[i] * p->g[i];
        p->part[b] = s;
    }
}
static void clip_scale(void *c, size_t lo, size_t hi)
{
    const ClipCtx *p = c;
    for (size_t i = lo; i < hi; i++) p->gw[i] *= p->k;
}

size_t qat_grad_blocks(const QatModel *q) { return (q->nparams + QAT_CLIP_BLOCK - 1) / QAT_CLIP_BLOCK; }

void qat_grad_sq_blocks(QatModel *q, double *part)
{
    double t0 = ob_now();
    size_t b0 = q->lo / QAT_CLIP_BLOCK, b1 = (q->hi + QAT_CLIP_BLOCK - 1) / QAT_CLIP_BLOCK;
    ClipCtx cc = {q->grads, q->hi, b0, part, 1.0f, NULL};
    par_for(&q->par, b1 - b0, QAT_CLIP_BLOCK, clip_sq, &cc);
    q->tsec[QAT_T_OPTIM] += ob_now() - t0;
}

float qat_clip_parts(QatModel *q, const double *part, float max_norm)
{
    double t0 = ob_now(), ss = 0;
    for (size_t b = 0, nb = qat_grad_blocks(q); b < nb; b++) ss += part[b];
    double norm = sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        ClipCtx cc = {NULL, 0, 0, NULL, (float)(max_norm / (norm + 1e-6)), q->grads + q->lo};
        par_for(&q->par, q->hi - q->lo, 1, clip_scale, &cc);
    }
    q->tsec[QAT_T_OPTIM] += ob_now() - t0;
    return (float)norm;
}

float qat_clip_grads(QatModel *q, float max_norm)
{
    size_t nb = qat_grad_blocks(q);
    double *part = ob_calloc(nb ? nb : 1, sizeof(double));
    qat_grad_sq_blocks(q, part);
    float norm = qat_clip_parts(q, part, max_norm);
    free(part);
    return norm;
}

typedef struct { float lr, b1, b2, eps, wd, ib1, ib2; } AdamK;

/* AdamW on params lo + [i0, i1) of the model's slice; the moments in FP32
 * arithmetic whatever their storage */
static void adamw_range(QatModel *q, size_t i0, size_t i1, const AdamK *k)
{
    float *p = q->params + q->lo;
    const float *g = q->grads + q->lo;
    if (q->optim == QAT_OPTIM_FP32) {
        float *m = q->m, *v = q->v;
        for (size_t i = i0; i < i1; i++) {
            m[i] = k->b1 * m[i] + (1.0f - k->b1) * g[i];
            v[i] = k->b2 * v[i] + (1.0f - k->b2) * g[i] * g[i];
            float mh = m[i] * k->ib1, vh = v[i] * k->ib2;
            p[i] -= k->lr * (mh / (sqrtf(vh) + k->eps) + k->wd * p[i]);
        }
    } else {
        uint16_t *m = q->m, *v = q->v;
        for (size_t i = i0; i < i1; i++) {
            float mi = k->b1 * ob_bf16_to_fp32(m[i]) + (1.0f - k->b1) * g[i];
            float vi = k->b2 * ob_bf16_to_fp32(v[i]) + (1.0f - k->b2) * g[i] * g[i];
            m[i] = ob_fp32_to_bf16(mi);
            v[i] = ob_fp32_to_bf16(vi);
            float mh = mi * k->ib1, vh = vi * k->ib2;
            p[i] -= k->lr * (mh / (sqrtf(vh) + k->eps) + k->wd * p[i]);
        }
    }
}

typedef struct { QatModel *q; const AdamK *k; } AdamCtx;
static void adam_par(void *c, size_t lo, size_t hi)
{
    const AdamCtx *p = c;
    adamw_range(p->q, lo, hi, p->k);
}

void qat_adamw_step(QatModel *q, long t, const AdamWCfg *c)
{
    double t0 = ob_now();
    AdamK k = {c->lr, c->beta1, c->beta2, c->eps, c->weight_decay,
               (float)(1.0 / (1.0 - pow(c->beta1, (double)t))), (float)(1.0 / (1.0 - pow(c->beta2, (double)t)))};
    AdamCtx ac = {q, &k};
    par_for(&q->par, q->hi - q->lo, 16, adam_par, &ac);
    q->tsec[QAT_T_OPTIM] += ob_now() - t0;
}

float qat_lr(long step, long total, long warmup, float lr_max, float lr_min)
{
    if (step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
    if (step >= total) return lr_min;
    double r = (double)(step - warmup) / (double)(total - warmup);
    double coeff = 0.5 * (1.0 + cos(M_PI * r));
    return (float)(lr_min + coeff * (lr_max - lr_min));
}

/* ---- FLOP count ------------------------------------------------------------ */

double qat_flops(const QatModel *q, int B, int T)
{
    const ModelConfig *c = &q->cfg;
    double N = (double)B * T, lin = 0, mos = 0;
    for (int j = 0; j < LIN_PER_LAYER; j++) {
        int in, out;
        model_lin_shape(c, j, &out, &in);
        lin += 2.0 * N * in * out;
        /* MoS: router, g(x), h(x) forward; g(x), h(x) again, dG_in, dH_out,
         * dr (2), dG, dx backward */
        mos += 2.0 * N * q->mos * (6.0 * in + 4.0 * out + 4.0 * in);
    }
    lin *= c->n_layers;
    mos *= q->mos > 1 ? c->n_layers : 0;
    double att = 4.0 * B * c->n_heads * (double)T * T * c->head_dim * c->n_layers; /* QKᵀ + PV */
    double head = 2.0 * N * c->dim * c->vocab_size;
    double teacher = lin + att + head;
    double student_fwd = lin + att + head;
    double student_bwd = 2 * lin + 2 * att + head; /* dX and dS per linear; dP,dV,dQ,dK; dxf */
    return teacher + student_fwd + student_bwd + mos;
}
