/* qat.h -- quantisation-aware training of a OneBit student (issue 4): the
 * trainable student's FP32 forward and full backward pass (cblas_sgemm for
 * every matmul), the distillation loss, AdamW, the LR schedule and gradient
 * clipping. The trainer (data, checkpoints, threads) is built around this.
 *
 * Student linear (every q,k,v,o,gate,down,up projection):
 *     y = LayerNorm( h ⊙ (S · (g ⊙ x)) ),   S = sign(W) (w >= 0 -> +1)
 * LayerNorm without affine parameters, eps 1e-5, over the output dim
 * (qat_set_layernorm: optionally none, for the ablation). The
 * latent FP32 W (out,in), g (in), h (out) are trained; the gradient through
 * sign is the STE dW = dS ⊙ (1.001 − tanh²(W)) by default (QatSte: other
 * straight-through estimators as options). Embedding, RMSNorm weights
 * and the output head are the teacher's, frozen (referenced, not copied).
 *
 * Loss of one micro-batch of B sequences of T tokens (N = B·T tokens):
 *     kl   = Σ_{b,t} KL(p_teacher ‖ p_student) / B          (raw, nats)
 *     mse  = Σ_layers (1/N) Σ_{b,t} ‖t/‖t‖ − s/‖s‖‖²          (raw)
 *     loss = kl_scale · kl + alpha · mse
 * where t, s are each block's output residual stream (teacher, student);
 * "mean_tokens" averages over all N = B·T tokens. QatLoss reports the raw kl
 * and mse and the weighted total in `loss`.
 *
 * Parameter arena layout (qat_params / qat_grads, same layout): for layer l
 * in 0..L-1, for linear j in LIN_Q..LIN_UP (model.h order): W (out·in, row
 * major), then g (in), then h (out). qat_linear_params() gives the pointers.
 *
 * Mixture of scales (QatSize.mos = E >= 2, BinaryMoS): per linear E scale
 * experts and a router; per token (row x)
 *     r = softmax(x · Gᵀ) (E),  g(x) = r · G_in (in),  h(x) = r · H_out (out)
 *     y = LayerNorm( h(x) ⊙ (S · (g(x) ⊙ x)) )
 * The arena holds per linear W, then G_in (E·in, expert-major: where g is
 * without MoS), H_out (E·out, where h is), then the router G (E·in: one row
 * of in weights per expert, i.e. the (in x E) router transposed). With one
 * expert and no router this is the layout above; with a uniform router (G =
 * 0) and identical experts, exactly the OneBit linear. qat_new sets every
 * expert to the SVID g and h and G to N(0, 0.02²) from mos_seed, so that
 * the experts' gradients differ from the first step.
 *
 * Determinism: the same inputs and OpenBLAS thread count give bit-identical
 * results (fixed reduction order everywhere, no atomics); different thread
 * counts agree to rounding.
 *
 * Threads: a QatModel splits its work over its own pool of
 * qat_set_threads() threads (1 after qat_new): the sgemms by rows (each
 * piece one OpenBLAS call), attention per (sequence, kv head) group, and the
 * elementwise and per-row work (LayerNorm, reductions over tokens, KL, clip,
 * AdamW). OpenBLAS's own count is the main thread's business
 * (src/base/blas.h); qat never changes it. With it at 1 (what `train` and
 * `bench train` set) every product is split by qat; with it above 1 (the
 * workbench, for chat) large products go to OpenBLAS whole. A QatModel must
 * be used from one thread at a time (asserted in qat_forward_backward and
 * qat_eval_nll_sum).
 */
#ifndef OB_QAT_H
#define OB_QAT_H

#include <stddef.h>

#include "base/pool.h"
#include "model/model.h"
#include "onebit/svid.h"

typedef struct QatModel QatModel;

/* The straight-through estimator of sign: dW = dS ⊙ f(W), f the
 * derivative of a smooth surrogate of sign (--ste):
 *   QAT_STE_ONEBIT  f = 1.001 − tanh²(w)    (tanh(w) + 0.001·w; the paper's, default)
 *   QAT_STE_SMOOTH  f = a·(1 − tanh²(a·w))  (tanh(a·w); LittleBit's, "smooth:A";
 *                   a = 1 is "tanh", plain tanh(w) without OneBit's 0.001·w)
 *   QAT_STE_CLIP    f = 1 for |w| <= 1, else 0 (clamp(w, −1, 1); the clipped identity)
 * A zeroed QatSte is the default. */
typedef enum { QAT_STE_ONEBIT = 0, QAT_STE_SMOOTH = 1, QAT_STE_CLIP = 2 } QatSteKind;
typedef struct {
    int kind;  /* a QatSteKind */
    float a;   /* QAT_STE_SMOOTH's sharpness (> 0) */
} QatSte;
/* "onebit" | "tanh" (= smooth:1) | "smooth:A" (A > 0, finite) | "clip" -> 0;
 * else -1 with err saying what is accepted */
int qat_ste_parse(const char *s, QatSte *out, char *err);
/* the text qat_ste_parse reads back ("tanh" for smooth:1) */
void qat_ste_format(const QatSte *s, char *buf, size_t n);
/* f(w) of the estimator */
float qat_ste_factor(const QatSte *s, float w);

/* the threads a piece of qat work may use: a pool (NULL: the calling
 * thread alone). The helpers below that take one accept NULL. */
typedef struct { Pool *pool; } QatPar;

typedef struct {
    float alpha;    /* weight of the hidden-state MSE term (1) */
    float kl_scale; /* weight of the KL term (0.01) */
} QatLossCfg;

typedef struct {
    double loss;    /* kl_scale·kl + alpha·mse */
    double kl;      /* raw Σ_tokens KL / B */
    double mse;     /* raw Σ_layers mean_tokens ‖t̂ − ŝ‖² */
    long tokens;    /* B·T */
} QatLoss;

/* how AdamW's two moments are stored: FP32, or BF16 (arithmetic in FP32,
 * rounded to nearest even on store). The enum's values are --optim-state's
 * choice indices and the checkpoint's code. */
typedef enum { QAT_OPTIM_FP32 = 0, QAT_OPTIM_BF16 = 1 } QatOptim;

/* what a QatModel is sized for: max_B, max_T bound qat_forward_backward's
 * B and T (max_T <= the teacher's seq_len); optim: the moments' storage;
 * recompute != 0: keep only each block's input for the backward pass and
 * recompute the block's forward there (one block's activations instead of
 * every block's; about one more student forward per step; the same
 * results, bit for bit) */
typedef struct {
    int max_B, max_T;
    QatOptim optim;
    int recompute;
    /* ZeRO-1 (train/dist.h): with shards > 1 the model keeps AdamW's
     * moments only for its slice qat_shard_range(nparams, shards, shard)
     * of the parameter arena, and clips and updates only that slice;
     * 0 or 1: the whole arena (shard must then be 0) */
    int shards, shard;
    /* how many of the teacher's embedding and head (0 to 2) training keeps
     * as FP32 copies: those stored in another precision (a mapped teacher;
     * qat_vocab_copies) */
    int vocab_copies;
    /* mixture of scales (BinaryMoS, --mos): E scale experts per linear
     * (0: off, the OneBit linear; 2..QAT_MOS_MAX), and the seed of the
     * routers' random initialisation */
    int mos;
    unsigned long long mos_seed;
} QatSize;
#define QAT_MOS_MAX 64

/* QatSize.vocab_copies for this teacher */
int qat_vocab_copies(const Model *teacher);

/* the ZeRO-1 slices: slice `shard` of `shards` of an arena of n floats is
 * [lo, hi), in whole blocks of QAT_CLIP_BLOCK floats (so that a slice's
 * part of the gradient norm is made of whole blocks of qat_clip_grads'),
 * shard 0's the largest (it sizes the memory check); slices may be empty.
 * off[0..shards] receives every slice's start and n at the end. */
#define QAT_CLIP_BLOCK ((size_t)65536)
void qat_shard_range(size_t n, int shards, int shard, size_t *lo, size_t *hi);
void qat_shard_offsets(size_t n, int shards, size_t *off);

/* Student initialised from the teacher by SVID of every dense linear:
 * |W| ≈ a·bᵀ (rank 1), h = a, g = b, latent W = 0.01·sign(W). init is
 * the SvidMethod (svid_rank1 of |W|). The teacher must stay alive and
 * unchanged while q exists. NULL with err on failure, also when
 * qat_memory_bytes exceeds qat_memory_available (the message says both, in
 * GiB). */
QatModel *qat_new(const Model *teacher, SvidMethod init, const QatSize *sz, char *err);
void qat_free(QatModel *q);
/* split the work over n threads (n >= 1; n - 1 pool workers are started,
 * n = 1 stops them) from now on. Not while the model is in use. 0, or -1
 * with err set (threads could not be made; nothing changes) */
int qat_set_threads(QatModel *q, int n, char *err);
int qat_threads(const QatModel *q);
/* the STE of the backward passes from now on (qat_new: the default) */
void qat_set_ste(QatModel *q, const QatSte *s);
/* on = 0: every student linear without its LayerNorm, y = h ⊙ (S·(g⊙x)),
 * in the forward and backward passes from now on and in qat_linear_srcs'
 * norm flag (qat_new: on, the paper's). Memory is the same either way. */
void qat_set_layernorm(QatModel *q, int on);
int qat_layernorm(const QatModel *q);

/* Memory. Per trainable parameter a QatModel holds the latent value and
 * its gradient (FP32) and the two AdamW moments (FP32 or BF16): 16 or 12
 * bytes; a sharded one (QatSize.shards) the moments of its slice only. The ±1 matrix S = sign(W) and the STE factor are not stored: S is
 * expanded into one scratch of the largest linear right before each of
 * its sgemms, the STE factor recomputed from W in the backward pass.
 * Besides: the activations kept for the backward pass (per layer), the
 * teacher's logits and hidden states, and backward scratch, all for
 * (max_B, max_T). The frozen teacher (embedding, norms, head, and the
 * dense linears for the teacher forward) is the caller's and not counted.
 * qat_memory_bytes is exactly what qat_new allocates (every buffer goes
 * through one counting allocator; qat_allocated_bytes says what a model
 * holds), apart from transient scratch of the calls (per worker thread at
 * most vocab_size + max_T² floats) and the pool's threads. */
double qat_memory_bytes(const ModelConfig *c, const QatSize *sz);
/* the part of it that grows with the parameters (params, grads, and the
 * moments of shard 0's slice of `shards`: all with 0 or 1) */
double qat_param_state_bytes(const ModelConfig *c, QatOptim optim, int shards);
/* the same with E experts per linear (QatSize.mos) */
double qat_param_state_bytes_mos(const ModelConfig *c, QatOptim optim, int shards, int mos);
/* trainable parameters of a config (qat_num_params of a model of it),
 * with E experts per linear (mos: QatSize.mos) */
size_t qat_config_params(const ModelConfig *c);
size_t qat_config_params_mos(const ModelConfig *c, int mos);
double qat_allocated_bytes(const QatModel *q);
/* what this process may still allocate: MemAvailable of /proc/meminfo, or
 * (without it) the physical memory; 0 when unknown */
double qat_memory_available(void);

const ModelConfig *qat_config(const QatModel *q);

/* the trainable parameters as one flat FP32 arena and its gradient arena */
size_t qat_num_params(const QatModel *q);
float *qat_params(QatModel *q);
float *qat_grads(QatModel *q);
void qat_zero_grads(QatModel *q);
/* pointers of linear j (LIN_*) of layer l into the params arena (grads:
 * qat_grads(q) + the same offsets); in/out sizes. 0, or -1 on bad l/j. */
int qat_linear_params(QatModel *q, int l, int j, float **W, float **g, float **h, int *in, int *out);
/* the experts of a mixture of scales (QatSize.mos): E, and the pointers of
 * linear j of layer l to G_in (E,in) (= *g above), H_out (E,out) (= *h) and
 * the router G (E,in); E = 0 (pointers NULL) without MoS; -1 on bad l/j */
int qat_mos(const QatModel *q);
int qat_linear_mos(QatModel *q, int l, int j, float **Gin, float **Hout, float **G);
/* AdamW's moments: QatSize.optim, and the raw arrays (one element per
 * parameter of the model's slice [lo, hi) of qat_shard, float or uint16_t
 * BF16 bits; *elem_bytes 4 or 2), for checkpoints; zero after qat_new */
QatOptim qat_optim(const QatModel *q);
void qat_shard(const QatModel *q, size_t *lo, size_t *hi);
void *qat_moments(QatModel *q, int which /* 0: m, 1: v */, size_t *elem_bytes);
/* moment which (0: m, 1: v) of parameter lo + i (i-th of the slice) as FP32 */
float qat_moment(const QatModel *q, int which, size_t i);

/* One micro-batch: tokens (B,T) row-major. Runs the teacher forward (no
 * grad), the student forward and backward, and ACCUMULATES into the grads
 * arena grad_scale × d(loss)/d(params): A micro-batches with grad_scale =
 * 1/A give the gradient of one batch of A·B sequences. 0, or -1 when B, T
 * exceed the bounds or a token is out of range (nothing accumulated). */
int qat_forward_backward(QatModel *q, const int *tokens, int B, int T, const QatLossCfg *lc,
                         float grad_scale, QatLoss *out);
/* student NLL summed over tokens (B,T) predicting t+1 (B·(T−1) predictions
 * into *n_pred), no grads; -1.0 on bad input */
double qat_eval_nll_sum(QatModel *q, const int *tokens, int B, int T, long *n_pred);

/* student logits (B·T, V) of the last forward (qat_forward_backward or
 * qat_eval_nll_sum); valid until the next call */
const float *qat_logits(const QatModel *q);

/* clip the global L2 norm of the grads to max_norm; returns the pre-clip
 * norm (computed in double, fixed order); max_norm <= 0: no clip. A
 * sharded model: the norm and the clip of its slice alone. */
float qat_clip_grads(QatModel *q, float max_norm);
/* the same in two halves, for ZeRO-1: qat_grad_sq_blocks writes Σg² of
 * every block of QAT_CLIP_BLOCK floats of the model's slice into
 * part[block] (part has qat_grad_blocks(q) entries; the others are left
 * alone); qat_clip_parts takes the norm as the square root of all parts
 * added in block order (so that the slices' parts, combined, give the
 * whole arena's norm bit for bit), clips the slice's grads and returns it.
 * Both count as QAT_T_OPTIM. */
size_t qat_grad_blocks(const QatModel *q);
void qat_grad_sq_blocks(QatModel *q, double *part);
float qat_clip_parts(QatModel *q, const double *part, float max_norm);

typedef struct { float lr, beta1, beta2, eps, weight_decay; } AdamWCfg; /* ?, 0.9, 0.98, 1e-8, 0.01 */
/* AdamW over the arena, or a sharded model's slice of it (decoupled
 * weight decay p -= lr·wd·p on every parameter) with the model's moments
 * (qat_moments; zero at t = 1); t is the 1-based step. The moments' arithmetic is FP32 whatever their
 * storage. */
void qat_adamw_step(QatModel *q, long t, const AdamWCfg *c);
/* llm.c convention, step 0-based: step < warmup: lr_max·(step+1)/warmup;
 * then cosine from lr_max (step = warmup) to lr_min (step = total);
 * lr_min after total */
float qat_lr(long step, long total, long warmup, float lr_max, float lr_min);

/* one linear of the current student, for writing a .onebit file */
typedef struct {
    int in, out;
    const float *w;  /* (out, in) latent weights: the sign is what counts */
    const float *g;  /* (in) */
    const float *h;  /* (out) */
    int norm;        /* 1: LayerNorm after */
    int mos;         /* experts E (0: none; then the three below are NULL) */
    const float *router, *g_experts; /* (E, in) each */
    const float *h_experts;          /* (E, out) */
} QatLinearSrc;
/* fills lin_out (a QatLinearSrc array of L*LIN_PER_LAYER, layer-major) with
 * pointers into the params arena; returns the count */
int qat_linear_srcs(const QatModel *q, void *lin_out);

/* seconds spent so far in each phase (for benchmarks and progress): qat
 * times its own phases with one monotonic clock read at each phase's ends;
 * QAT_T_COMM is what the caller adds with qat_add_time (the trainer's MPI
 * collectives) */
enum { QAT_T_TEACHER, QAT_T_FORWARD, QAT_T_LOSS, QAT_T_BACKWARD, QAT_T_OPTIM, QAT_T_COMM, QAT_NTIMERS };
void qat_times(const QatModel *q, double sec[QAT_NTIMERS]);
void qat_add_time(QatModel *q, int phase, double sec);

/* FLOPs of one qat_forward_backward with (B,T): matmuls only (teacher
 * forward, student forward and backward, a mixture of scales' products),
 * for `bench train` */
double qat_flops(const QatModel *q, int B, int T);

/* ---- testing hooks ------------------------------------------------------ */
/* on != 0: qat_forward_backward reuses the teacher logits and hidden states
 * of its previous call instead of running the teacher (same tokens, B, T
 * assumed), e.g. to differentiate the loss w.r.t. the student's input */
void qat_reuse_teacher(QatModel *q, int on);
/* the teacher's logits (B·T, V) and hidden states (L, B·T, C) of the last
 * qat_forward_backward */
const float *qat_teacher_logits(const QatModel *q);
const float *qat_teacher_hidden(const QatModel *q);
/* (B·T, C): grad_scale × d(loss)/d(the student's embedded input rows) of the
 * last qat_forward_backward (the embedding itself is frozen) */
const float *qat_input_grad(const QatModel *q);

/* ---- building blocks, forward and backward (used by the gradient checks).
 * Shapes: N = B·T rows; *_bwd ADD into dx unless said otherwise. -------- */
/* out (N,C) = RMSNorm(x)⊙w with model_rmsnorm's numerics; rstd (N) kept */
void qat_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps);
void qat_rmsnorm_bwd(float *dx, const float *dout, const float *x, const float *w, const float *rstd, int N, int C);
/* RoPE (model_rope) of rows v (N, n_dim) at positions n % T, in place;
 * _bwd applies the transposed rotation to a gradient in place */
void qat_rope_fwd(float *v, int N, int T, int n_dim, int hd, const float *cosv, const float *sinv);
void qat_rope_bwd(float *d, int N, int T, int n_dim, int hd, const float *cosv, const float *sinv);
/* causal GQA attention of B sequences: q (N,qd), k, v (N,kvd) -> att
 * (B,H,T,T) probabilities, out (N,qd). _bwd WRITES dq (N,qd), dk, dv
 * (N,kvd); dP is unused (each worker has its own scratch) */
void qat_attention_fwd(const QatPar *par, const ModelConfig *c, const float *q, const float *k, const float *v, float *att,
                       float *out, int B, int T);
void qat_attention_bwd(const QatPar *par, const ModelConfig *c, const float *q, const float *k, const float *v, const float *att,
                       const float *dout, float *dq, float *dk, float *dv, float *dP, int B, int T);
/* hp = silu(gate) ⊙ up; _bwd WRITES dgate, dup */
void qat_swiglu_fwd(float *hp, const float *gate, const float *up, size_t n);
void qat_swiglu_bwd(float *dgate, float *dup, const float *dhp, const float *gate, const float *up, size_t n);
/* the OneBit linear with S a free FP (out,in) matrix: y = LN(h⊙(S·(g⊙x)));
 * keeps a = S·(g⊙x) (N,out), rstd (N); gx (N,in) scratch. rstd NULL: no
 * LayerNorm, y = h⊙(S·(g⊙x)) (and qat_onebit_bwd given NULL likewise) */
void qat_onebit_fwd(const QatPar *par, int in, int out, const float *S, const float *g, const float *h, const float *x, int N,
                    float *gx, float *a, float *y, float *rstd);
typedef struct {
    int in, out;
    const float *S, *W, *g, *h; /* W: latent weights for the STE; NULL: skip dW */
    float *dW, *dg, *dh;        /* accumulated */
    float *dS;                  /* (out,in) written: d/dS */
    float *gx, *dgx;            /* (N,in) scratch */
    QatSte ste;                 /* the estimator (zero: the default) */
} QatOnebitGrad;
/* 1.001 − tanh²(w), the default STE factor (computed from W in the
 * backward pass, never stored) */
float qat_ste(float w);
/* consumes dy (N,out); dx (N,in) written, or added when accumulate;
 * dW += dS ⊙ qat_ste_factor(&p->ste, W) */
void qat_onebit_bwd(const QatPar *par, const QatOnebitGrad *p, const float *x, int N, const float *a, const float *y,
                    const float *rstd, float *dy, float *dx, int accumulate);
/* the mixture-of-scales linear (qat.h, Mixture of scales) with S free:
 * its experts, their gradients and scratch */
typedef struct {
    int E;
    const float *G, *Gin, *Hout; /* router (E,in), g experts (E,in), h experts (E,out) */
    float *dG, *dGin, *dHout;    /* accumulated by qat_mos_bwd */
    float *gv, *hv, *dhv, *dr;   /* scratch: (N,in), (N,out), (N,out), (N,E) */
} QatMos;
/* y (N,out) = LN(h(x) ⊙ (S·(g(x) ⊙ x))); keeps r (N,E) the router's
 * probabilities, a = S·(g(x)⊙x) (N,out) and rstd (N); gx (N,in) scratch */
void qat_mos_fwd(const QatPar *par, int in, int out, const float *S, const QatMos *m, const float *x, int N, float *gx,
                 float *r, float *a, float *y, float *rstd);
/* as qat_onebit_bwd (p's g, h, dg, dh unused), the experts' gradients
 * into m's; r, a, y, rstd from qat_mos_fwd */
void qat_mos_bwd(const QatPar *par, const QatOnebitGrad *p, const QatMos *m, const float *x, int N, const float *r,
                 const float *a, const float *y, const float *rstd, float *dy, float *dx, int accumulate);

#endif
