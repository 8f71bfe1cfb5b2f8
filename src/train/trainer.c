/* src/train/trainer.c -- the background QAT trainer: a job (base/job.h)
 * that trains, its control (pause/resume/stop are the job's flags), events,
 * evaluation, checkpoints and resume, export (see trainer.h). trainer_start,
 * trainer_join and trainer_free belong to the thread that started the
 * trainer; pause, resume, stop and done to any thread; everything static
 * below "the thread" runs in the trainer's job. */
#include "train/trainer.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "base/job.h"
#include "base/pool.h"
#include "base/file.h"
#include "model/eval.h"
#include "train/qat.h"
#include "train/dist.h"
#include "onebit/student.h"

struct Trainer {
    TrainConfig cfg;
    char *out_path, *ckpt_path, *resume_path;
    const Model *teacher;
    const Tokenizer *tok;
    const DataSet *data;
    char sha[65];
    EventRing *ring;
    Job *job;           /* the training thread; pause/stop are its flags */
    int joined;
    /* training state */
    QatModel *q;        /* the student, with AdamW's moments */
    long step;          /* completed optimizer steps */
    DataCursor cur;
    double elapsed;     /* active training seconds, over all sessions */
    uint64_t data_fp;
    int *batch_tok;     /* (batch, seq_len) */
    size_t *off;        /* ZeRO-1: every rank's slice of the arena (dist_size() + 1 offsets) */
    void *ld[2];        /* rank 0, resuming: the checkpoint's whole moments until share_state hands out the slices */
    TrainSummary sum;
    int rc;
};

void trainer_config_default(TrainConfig *c)
{
    memset(c, 0, sizeof *c);
    c->accum = 1;
    c->lr = TRAINER_DEFAULT_LR;
    c->lr_min = -1;
    c->warmup = -1;
    c->alpha = 1.0f;
    c->kl_scale = 0.01f;
    c->beta1 = 0.9f;
    c->beta2 = 0.98f;
    c->eps = 1e-8f;
    c->wd = 0.01f;
    c->clip = 1.0f;
    c->init = SVID_NMF;
    c->log_every = 1;
    c->threads = 0; /* all online cores (trainer_threads) */
    c->seed = 1;
}

int trainer_threads(const TrainConfig *c) { return c->threads > 0 ? c->threads : pool_default_threads(); }

int trainer_config_check(const TrainConfig *c, const ModelConfig *mc, char *err)
{
#define BAD(...) do { ob_seterr(err, __VA_ARGS__); return -1; } while (0)
    if (c->steps < 1) BAD("--steps must be at least 1");
    if (c->seq_len < 2) BAD("--seq-len must be at least 2");
    if (mc && c->seq_len > mc->seq_len) BAD("--seq-len %d must be between 2 and the model's context %d", c->seq_len, mc->seq_len);
    if (c->batch < 1) BAD("--batch must be at least 1");
    if (c->accum < 1) BAD("--accum must be at least 1");
    if (!(c->lr > 0) || !isfinite(c->lr)) BAD("--lr must be a positive number");
    if (c->lr_min >= 0 && (c->lr_min > c->lr || !isfinite(c->lr_min))) BAD("--lr-min must be between 0 and --lr");
    if (c->warmup > c->steps) BAD("--warmup %ld exceeds --steps %ld", c->warmup, c->steps);
    if (!(c->alpha >= 0) || !isfinite(c->alpha)) BAD("--alpha must be >= 0");
    if (!(c->kl_scale >= 0) || !isfinite(c->kl_scale)) BAD("--kl-scale must be >= 0");
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1)) BAD("betas must be in [0, 1)");
    if (!(c->eps > 0)) BAD("eps must be positive");
    if (!(c->wd >= 0) || !isfinite(c->wd)) BAD("--wd must be >= 0");
    if (!(c->clip >= 0) || !isfinite(c->clip)) BAD("--clip must be >= 0 (0: no clipping)");
    if (!svid_method_ok(c->init))
        BAD("--init must be nmf, svd, xnor, sign or arb");
    if (c->ste.kind < QAT_STE_ONEBIT || c->ste.kind > QAT_STE_CLIP || (c->ste.kind == QAT_STE_SMOOTH && !(c->ste.a > 0)))
        BAD("--ste must be onebit, tanh, smooth:A (A > 0) or clip");
    if (c->eval_every < 0 || c->ckpt_every < 0 || c->log_every < 1) BAD("--eval-every/--ckpt-every must be >= 0, log interval >= 1");
    if (c->stop_after < 0) BAD("--stop-after must be >= 0");
    if (c->threads < 0 || c->threads > 1024) BAD("--threads must be between 0 (all cores) and 1024");
    if (c->optim_state != QAT_OPTIM_FP32 && c->optim_state != QAT_OPTIM_BF16) BAD("--optim-state must be fp32 or bf16");
    if (c->mos < 0 || c->mos == 1 || c->mos > QAT_MOS_MAX) BAD("--mos must be 0 (off) or 2 to %d experts, not %d", QAT_MOS_MAX, c->mos);
    if (c->no_layernorm != 0 && c->no_layernorm != 1) BAD("--layernorm must be on or off");
    return 0;
#undef BAD
}

/* ---- memory ------------------------------------------------------------------ */
static double need_of(const Model *t, const TrainConfig *c, int B, int T, int optim)
{
    /* per rank: ZeRO-1 shards the moments over dist_size() ranks, shard 0's the largest */
    return qat_memory_bytes(&t->cfg, &(QatSize){B, T, (QatOptim)optim, c->recompute, dist_size(), 0, qat_vocab_copies(t),
                                                c->mos, c->seed});
}

/* the largest n in [1, hi) for which need(n) fits in have (need grows with
 * n), 0 when none */
static int largest_fit(const Model *t, const TrainConfig *c, int optim, int vary_T, int hi, double have)
{
    int lo = 0;
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        double n = vary_T ? need_of(t, c, c->batch, mid, optim) : need_of(t, c, mid, c->seq_len, optim);
        if (n <= have) lo = mid;
        else hi = mid;
    }
    return vary_T && lo < 2 ? 0 : lo;
}

static const char *gib(char *buf, double bytes) { return ob_fmt_bytes(buf, 32, bytes); }

double trainer_memory_bytes(const Model *t, const TrainConfig *c)
{
    return need_of(t, c, c->batch, c->seq_len, c->optim_state);
}

void trainer_memory_text(const Model *t, const TrainConfig *c, char *buf, size_t n)
{
    int ranks = dist_size();
    double need = need_of(t, c, c->batch, c->seq_len, c->optim_state),
           ps = qat_param_state_bytes_mos(&t->cfg, (QatOptim)c->optim_state, ranks, c->mos);
    size_t np = qat_config_params_mos(&t->cfg, c->mos);
    char g[3][32], zero[64] = "";
    if (ranks > 1) snprintf(zero, sizeof zero, " sharded over %d ranks: ZeRO-1", ranks);
    snprintf(buf, n, "training state %s%s: %zu trainable parameters at %.0f bytes each (%s AdamW moments%s) %s, "
             "activations and scratch for %d x %d tokens%s %s",
             gib(g[0], need), ranks > 1 ? " per rank" : "", np, ps / (double)np,
             c->optim_state == QAT_OPTIM_BF16 ? "BF16" : "FP32", zero, gib(g[1], ps), c->batch, c->seq_len,
             c->recompute ? " (recomputed per block)" : "", gib(g[2], need - ps));
}

int trainer_memory_check(const Model *t, const TrainConfig *c, double have, char *err)
{
    double need = need_of(t, c, c->batch, c->seq_len, c->optim_state);
    if (have <= 0 || need <= have) return 0;
    ObBuf b = {0};
    int o = c->optim_state, bf = QAT_OPTIM_BF16;
    if (o != bf && need_of(t, c, c->batch, c->seq_len, bf) <= have) ob_buf_printf(&b, ", --optim-state bf16");
    if (!c->recompute) {
        TrainConfig r = *c;
        r.recompute = 1;
        if (need_of(t, &r, c->batch, c->seq_len, o) <= have) ob_buf_printf(&b, ", --recompute");
    }
    int kb = largest_fit(t, c, o, 0, c->batch, have), kt = largest_fit(t, c, o, 1, c->seq_len, have);
    if (kb) ob_buf_printf(&b, ", --batch %d", kb);
    if (kt) ob_buf_printf(&b, ", --seq-len %d", kt);
    if (!b.s && o != bf) { /* bf16 and a smaller batch or sequence together */
        kb = largest_fit(t, c, bf, 0, c->batch, have);
        kt = largest_fit(t, c, bf, 1, c->seq_len, have);
        if (kb) ob_buf_printf(&b, ", --optim-state bf16 --batch %d", kb);
        if (kt) ob_buf_printf(&b, ", --optim-state bf16 --seq-len %d", kt);
    }
    char what[512];
    trainer_memory_text(t, c, what, sizeof what);
    char g[2][32];
    if (b.s)
        ob_seterr(err, "%s; %s of memory is available; it would fit with%s", what, gib(g[0], have), b.s + 1);
    else
        ob_seterr(err, "%s; %s of memory is available, too little even with --optim-state bf16 --batch 1 --seq-len 2 (%s)",
                  what, gib(g[0], have), gib(g[1], need_of(t, c, 1, 2, bf)));
    free(b.s);
    return -1;
}


/* micro-batches of --batch sequences per optimizer step over all ranks (data
 * parallelism, train/dist.h): what checkpoints and students record as accum */
static int global_accum(const TrainConfig *c) { return c->accum * dist_size(); }
static float eff_lr_min(const TrainConfig *c) { return c->lr_min >= 0 ? c->lr_min : c->lr / 10; }
static long eff_warmup(const TrainConfig *c) { return c->warmup >= 0 ? c->warmup : c->steps / 20; }

/* ---- events ------------------------------------------------------------------ */
static void emit(Trainer *t, Event *e)
{
    e->run_id = t->cfg.run_id;
    e->total_steps = (int)t->cfg.steps;
    if (t->ring) evring_push(t->ring, e);
}

static void emit_status(Trainer *t, RunStatus s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void emit_status(Trainer *t, RunStatus s, const char *fmt, ...)
{
    Event e = {.kind = EV_STATUS, .status = s, .step = (int)t->step};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.text, sizeof e.text, fmt, ap);
    va_end(ap);
    emit(t, &e);
}

static void emit_log(Trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit_log(Trainer *t, const char *fmt, ...)
{
    Event e = {.kind = EV_LOG, .step = (int)t->step};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.text, sizeof e.text, fmt, ap);
    va_end(ap);
    emit(t, &e);
}

static void emit_eval(Trainer *t, long step, const char *what, double nll)
{
    Event e = {.kind = EV_EVAL, .step = (int)step, .eval_nll = nll, .eval_ppl = exp(nll)};
    snprintf(e.text, sizeof e.text, "%s", what);
    emit(t, &e);
}

/* ---- evaluation ------------------------------------------------------------- */
int trainer_dense_nll(const Model *m, const DataSet *d, long max_windows, double *nll, long *tokens, char *err)
{
    int64_t *st;
    int *ln;
    int nw = data_heldout_windows(d, &st, &ln);
    if (max_windows > 0 && nw > max_windows) nw = (int)max_windows;
    ModelActs a;
    if (model_acts_init(&a, &m->cfg, d->seq_len)) {
        free(st); free(ln);
        ob_seterr(err, "cannot allocate activations");
        return -1;
    }
    float *logits = ob_aligned_alloc(64, (size_t)d->seq_len * m->cfg.vocab_size * sizeof(float));
    double sum = 0;
    long n = 0;
    for (int i = 0; i < nw; i++) {
        model_forward(m, &a, d->tok + st[i], ln[i], logits, NULL);
        sum += eval_nll_sum(logits, d->tok + st[i], ln[i], m->cfg.vocab_size);
        n += ln[i] - 1;
    }
    free(logits);
    model_acts_free(&a);
    free(st);
    free(ln);
    if (n == 0) { ob_seterr(err, "the held-out split has no token to predict"); return -1; }
    *nll = sum / n;
    *tokens = n;
    return 0;
}

static int student_nll(Trainer *t, long max_windows, double *nll, long *tokens, char *err)
{
    int64_t *st;
    int *ln;
    int nw = data_heldout_windows(t->data, &st, &ln);
    if (max_windows > 0 && nw > max_windows) nw = (int)max_windows;
    double sum = 0;
    long n = 0;
    int rc = 0;
    for (int i = 0; i < nw; i++) {
        long np = 0;
        double s = qat_eval_nll_sum(t->q, t->data->tok + st[i], 1, ln[i], &np);
        if (s < 0) { ob_seterr(err, "student evaluation failed (window %d)", i); rc = -1; break; }
        sum += s;
        n += np;
    }
    free(st);
    free(ln);
    if (rc) return -1;
    if (n == 0) { ob_seterr(err, "the held-out split has no token to predict"); return -1; }
    *nll = sum / n;
    *tokens = n;
    return 0;
}

/* XNOR-style PTQ: every linear sign(W) × per-row mean|W|, no LayerNorm */
static int xnor_nll(const Model *teacher, const DataSet *d, double *nll, char *err)
{
    const ModelConfig *c = &teacher->cfg;
    int nl = c->n_layers * LIN_PER_LAYER;
    Model x = *teacher;
    x.lin = ob_calloc((size_t)nl, sizeof(Linear));
    float **bufs = ob_calloc((size_t)nl, sizeof(float *));
    for (int k = 0; k < nl; k++) {
        const Linear *src = &teacher->lin[k];
        x.lin[k] = *src;
        if (src->kind != LINEAR_DENSE) continue;
        float *w = ob_malloc((size_t)src->in * src->out * sizeof(float)), *tmp;
        const float *W = model_lin_f32(teacher, k, &tmp); /* a mapped teacher's converted */
        for (int r = 0; r < src->out; r++) {
            const float *row = W + (size_t)r * src->in;
            double s = 0;
            for (int i = 0; i < src->in; i++) s += fabsf(row[i]);
            float a = (float)(s / src->in);
            for (int i = 0; i < src->in; i++) w[(size_t)r * src->in + i] = row[i] >= 0 ? a : -a;
        }
        free(tmp);
        bufs[k] = w;
        x.lin[k] = (Linear){.kind = LINEAR_DENSE, .in = src->in, .out = src->out, .w = w};
    }
    long n;
    int rc = trainer_dense_nll(&x, d, 0, nll, &n, err);
    for (int k = 0; k < nl; k++) free(bufs[k]);
    free(bufs);
    free(x.lin);
    return rc;
}

/* ---- checkpoints -------------------------------------------------------------- */
#define CKPT_MAGIC "OBCKPT1\n"
#define CKPT_VERSION 3 /* 3: MoS experts, the estimator and the LayerNorm flag after the moments' storage;
                        * 2: the moments' storage after the config; 1: FP32 moments, no code */

typedef struct { unsigned char *p; size_t n, cap; } Buf;
static void bput(Buf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void bu32(Buf *b, uint32_t v) { unsigned char x[4]; for (int i = 0; i < 4; i++) x[i] = (unsigned char)(v >> 8 * i); bput(b, x, 4); }
static void bu64(Buf *b, uint64_t v) { unsigned char x[8]; for (int i = 0; i < 8; i++) x[i] = (unsigned char)(v >> 8 * i); bput(b, x, 8); }
static void bf64(Buf *b, double d) { uint64_t v; memcpy(&v, &d, 8); bu64(b, v); }

typedef struct { const unsigned char *p; size_t n, at; int bad; } Rd;
static void rget(Rd *r, void *dst, size_t n)
{
    if (r->bad || r->n - r->at < n) { r->bad = 1; memset(dst, 0, n); return; }
    memcpy(dst, r->p + r->at, n);
    r->at += n;
}
static uint32_t ru32(Rd *r) { unsigned char x[4]; rget(r, x, 4); return file_get_u32le(x); }
static uint64_t ru64(Rd *r) { unsigned char x[8]; rget(r, x, 8); return file_get_u64le(x); }
static double rf64(Rd *r) { uint64_t v = ru64(r); double d; memcpy(&d, &v, 8); return d; }

/* the fields version 3 added after the moments' storage (earlier versions:
 * the defaults): experts per linear, the estimator, the no-LayerNorm flag */
typedef struct { uint32_t mos, no_ln; QatSte ste; } CkptV3;
static CkptV3 rv3(Rd *r, uint32_t ver)
{
    CkptV3 v = {0, 0, {QAT_STE_ONEBIT, 0}};
    if (ver < 3) return v;
    v.mos = ru32(r);
    v.ste.kind = (int)ru32(r);
    v.ste.a = (float)rf64(r);
    v.no_ln = ru32(r);
    return v;
}

/* FNV-1a of n integers of `size` bytes as they are little-endian, so that
 * the fingerprint (and a checkpoint) is the same on every host */
static uint64_t fnv_le(uint64_t h, const void *v, size_t size, size_t n)
{
    if (FILE_HOST_LITTLE_ENDIAN) return file_fnv1a(h, v, size * n);
    const unsigned char *p = v;
    for (size_t i = 0; i < n; i++, p += size)
        for (size_t k = size; k-- > 0;) h = file_fnv1a(h, p + k, 1);
    return h;
}

static uint64_t data_fingerprint(const DataSet *d)
{
    uint64_t h = FILE_FNV_INIT;
    int32_t hdr[4] = {d->n_seq, d->n_train, d->stream, d->seq_len};
    h = fnv_le(h, hdr, sizeof hdr[0], 4);
    h = fnv_le(h, d->off, sizeof d->off[0], (size_t)d->n_seq + 1);
    return fnv_le(h, d->tok, sizeof d->tok[0], (size_t)d->off[d->n_seq]);
}

static void put_cfg(Buf *b, const TrainConfig *c)
{
    bu64(b, (uint64_t)c->steps);
    bu32(b, (uint32_t)c->seq_len); bu32(b, (uint32_t)c->batch); bu32(b, (uint32_t)global_accum(c));
    bu32(b, (uint32_t)eff_warmup(c)); bu32(b, (uint32_t)c->init);
    bu64(b, c->seed);
    double f[9] = {c->lr, eff_lr_min(c), c->alpha, c->kl_scale, c->beta1, c->beta2, c->eps, c->wd, c->clip};
    for (int i = 0; i < 9; i++) bf64(b, f[i]);
}

/* the whole moments on rank 0: its own arrays with one rank, else the
 * ranks' slices gathered into mv (freed by the caller); NULLs elsewhere */
static void gather_moments(Trainer *t, void *mv[2], void *own[2])
{
    size_t eb;
    void *mine[2] = {qat_moments(t->q, 0, &eb), qat_moments(t->q, 1, NULL)};
    for (int i = 0; i < 2; i++) {
        own[i] = NULL;
        mv[i] = mine[i];
        if (dist_size() < 2) continue;
        own[i] = mv[i] = dist_rank() == 0 ? ob_malloc(qat_num_params(t->q) * eb) : NULL;
        dist_gather(mine[i], mv[i], t->off, eb);
    }
}

static int write_ckpt(Trainer *t, char *err)
{
    /* rank 0 writes the whole state: the (replicated) parameters and every
     * rank's slice of the moments, so that any number of ranks resumes */
    void *mv[2], *own[2];
    gather_moments(t, mv, own);
    if (dist_rank() != 0) return 0;
    const ModelConfig *c = &t->teacher->cfg;
    size_t np = qat_num_params(t->q);
    Buf b = {0};
    bput(&b, CKPT_MAGIC, 8);
    bu32(&b, CKPT_VERSION);
    bput(&b, t->sha, 64);
    bu64(&b, t->data_fp);
    uint32_t dims[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len};
    for (int i = 0; i < 7; i++) bu32(&b, dims[i]);
    bu64(&b, np);
    bu64(&b, (uint64_t)t->step);
    bu64(&b, t->cur.rng);
    bu64(&b, t->cur.drawn);
    bf64(&b, t->elapsed);
    put_cfg(&b, &t->cfg);
    bu32(&b, (uint32_t)qat_optim(t->q));
    bu32(&b, (uint32_t)qat_mos(t->q)); /* version 3 */
    bu32(&b, (uint32_t)t->cfg.ste.kind);
    bf64(&b, t->cfg.ste.a);
    bu32(&b, (uint32_t)t->cfg.no_layernorm);
    /* the arrays, little-endian like the header: on a little-endian host
     * straight from memory to the file (no copy of the state), elsewhere
     * byte-swapped into one copy */
    size_t eb;
    qat_moments(t->q, 0, &eb);
    const void *parts[5] = {b.p, qat_params(t->q), mv[0], mv[1], NULL};
    size_t lens[5] = {b.n, np * sizeof(float), np * eb, np * eb, 8};
    unsigned char *le = NULL;
    if (!FILE_HOST_LITTLE_ENDIAN) {
        le = ob_malloc(lens[1] + 2 * lens[2]);
        file_f32_to_le(le, parts[1], np);
        for (int i = 0; i < 2; i++) {
            unsigned char *d = le + lens[1] + (size_t)i * lens[2];
            if (eb == sizeof(float)) file_f32_to_le(d, parts[2 + i], np);
            else for (size_t k = 0; k < np; k++) { uint16_t x = ((const uint16_t *)parts[2 + i])[k]; d[2 * k] = (unsigned char)x; d[2 * k + 1] = (unsigned char)(x >> 8); }
            parts[2 + i] = d;
        }
        parts[1] = le;
    }
    uint64_t h = FILE_FNV_INIT;
    for (int i = 0; i < 4; i++) h = file_fnv1a(h, parts[i], lens[i]);
    unsigned char ck[8];
    for (int i = 0; i < 8; i++) ck[i] = (unsigned char)(h >> 8 * i);
    parts[4] = ck;
    int rc = file_write_atomic_parts(t->ckpt_path, parts, lens, 5, err);
    free(le);
    free(b.p);
    free(own[0]);
    free(own[1]);
    if (rc == 0) {
        Event e = {.kind = EV_CKPT, .step = (int)t->step, .path = evring_intern(t->ckpt_path)};
        snprintf(e.text, sizeof e.text, "%s", t->ckpt_path); /* for display; path is the whole */
        emit(t, &e);
    }
    return rc;
}

/* the parameters of config c: per linear W (out·in), g (in), h (out) */
static size_t ckpt_num_params(const ModelConfig *c)
{
    size_t np = 0;
    for (int k = 0; k < LIN_PER_LAYER; k++) {
        int out, in;
        model_lin_shape(c, k, &out, &in);
        np += (size_t)out * in + (size_t)in + (size_t)out;
    }
    return np * (size_t)c->n_layers;
}

/* a mapped checkpoint's header up to the parameter count: magic, checksum,
 * version, teacher (sha), data fingerprint (*fp), model shape against c,
 * the parameter count (*np: the caller checks it); r is left after them */
static int ckpt_head(const char *path, const char *raw, size_t size, const ModelConfig *c, uint64_t *np, char sha[65],
                     uint64_t *fp, uint32_t *version, Rd *r, char *err)
{
    *r = (Rd){(const unsigned char *)raw, size, 0, 0};
    char magic[8];
    if (size < 16) { ob_seterr(err, "%s: not a onebit-tui checkpoint (%zu bytes)", path, size); return -1; }
    rget(r, magic, 8);
    if (r->bad || memcmp(magic, CKPT_MAGIC, 8) != 0) { ob_seterr(err, "%s: not a onebit-tui checkpoint (bad magic)", path); return -1; }
    if (ru64(&(Rd){(const unsigned char *)raw + size - 8, 8, 0, 0}) != file_fnv1a(FILE_FNV_INIT, raw, size - 8)) {
        ob_seterr(err, "%s: checksum mismatch: the checkpoint is truncated or corrupt", path);
        return -1;
    }
    uint32_t ver = ru32(r);
    if (ver < 1 || ver > CKPT_VERSION) { ob_seterr(err, "%s: unsupported checkpoint version %u", path, ver); return -1; }
    *version = ver;
    rget(r, sha, 64);
    sha[64] = 0;
    *fp = ru64(r);
    uint32_t dims[7], want[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len};
    for (int i = 0; i < 7; i++) dims[i] = ru32(r);
    if (memcmp(dims, want, sizeof dims) != 0) {
        ob_seterr(err, "%s: the checkpoint's model shape (dim %u, layers %u, vocab %u) does not match the teacher (dim %u, layers %u, vocab %u)",
                  path, dims[0], dims[2], dims[5], want[0], want[2], want[5]);
        return -1;
    }
    *np = ru64(r);
    return 0;
}

static int ckpt_np(const char *path, uint64_t cnp, size_t np, char *err)
{
    if (cnp == np) return 0;
    ob_seterr(err, "%s: %" PRIu64 " parameters, the student has %zu", path, cnp, np);
    return -1;
}

/* element i of a moment array of elem_bytes 4 (FP32) or 2 (BF16) as FP32 */
static float moment_at(const void *a, size_t elem_bytes, size_t i)
{
    return elem_bytes == 2 ? ob_bf16_to_fp32(((const uint16_t *)a)[i]) : ((const float *)a)[i];
}

static int load_ckpt(Trainer *t, const char *path, char *err)
{
    /* mapped, not read: a big model's state is not copied twice */
    void *map;
    size_t size;
    if (file_map(path, &map, &size, err)) return -1;
    char *raw = map;
    Rd r;
    int rc = -1;
    size_t np = qat_num_params(t->q);
    char sha[65];
    uint64_t fp;
    uint32_t ver;
    uint64_t cnp;
    if (ckpt_head(path, raw, size, &t->teacher->cfg, &cnp, sha, &fp, &ver, &r, err)) goto out;
    if (strncmp(sha, t->sha, 64) != 0) {
        ob_seterr(err, "%s: the checkpoint is for another teacher (sha256 %.16s..., this teacher %.16s...)", path, sha, t->sha);
        goto out;
    }
    if (fp != t->data_fp) {
        ob_seterr(err, "%s: the checkpoint was trained on other data (different --data/--split/--self-generate/--seq-len/--seed)", path);
        goto out;
    }
    uint64_t step = ru64(&r), rng = ru64(&r), drawn = ru64(&r);
    double elapsed = rf64(&r);
    uint64_t steps = ru64(&r);
    uint32_t seq_len = ru32(&r), batch = ru32(&r), accum = ru32(&r), warmup = ru32(&r), init = ru32(&r);
    uint64_t seed = ru64(&r);
    double f[9];
    for (int i = 0; i < 9; i++) f[i] = rf64(&r);
    uint32_t optim = ver >= 2 ? ru32(&r) : QAT_OPTIM_FP32; /* version 1: FP32 moments */
    const CkptV3 v3 = rv3(&r, ver);
    const uint32_t mos = v3.mos, no_ln = v3.no_ln;
    const QatSte ste = v3.ste;
    if (t->cfg.time_limit > 0 && steps >= 1 && steps <= (uint64_t)t->cfg.steps) t->cfg.steps = (long)steps; /* its plan */
    const TrainConfig *k = &t->cfg;
    double g[9] = {k->lr, eff_lr_min(k), k->alpha, k->kl_scale, k->beta1, k->beta2, k->eps, k->wd, k->clip};
    static const char *const fname[9] = {"--lr", "--lr-min", "--alpha", "--kl-scale", "beta1", "beta2", "eps", "--wd", "--clip"};
    if (r.bad) { ob_seterr(err, "%s: truncated header", path); goto out; }
    if ((int)seq_len != k->seq_len || (int)batch != k->batch || (int)accum != global_accum(k)) {
        ob_seterr(err, "%s: the checkpoint was made with --seq-len %u --batch %u --accum %u, not %d/%d/%d%s",
                  path, seq_len, batch, accum, k->seq_len, k->batch, global_accum(k),
                  dist_size() > 1 ? " (--accum times the number of ranks)" : "");
        goto out;
    }
    if ((long)warmup != eff_warmup(k) || init != (uint32_t)k->init || seed != k->seed) {
        ob_seterr(err, "%s: the checkpoint was made with --warmup %u --init %s --seed %" PRIu64 ", not %ld --init %s --seed %" PRIu64,
                  path, warmup, svid_method_name((SvidMethod)init), seed, eff_warmup(k), svid_method_name(k->init), k->seed);
        goto out;
    }
    for (int i = 0; i < 9; i++)
        if (f[i] != g[i]) { ob_seterr(err, "%s: the checkpoint was made with %s %g, not %g", path, fname[i], f[i], g[i]); goto out; }
    if (optim != (uint32_t)qat_optim(t->q)) {
        ob_seterr(err, "%s: the checkpoint holds %s optimizer state, this run keeps %s: resume with --optim-state %s",
                  path, optim == QAT_OPTIM_BF16 ? "BF16" : optim == QAT_OPTIM_FP32 ? "FP32" : "unknown",
                  k->optim_state == QAT_OPTIM_BF16 ? "BF16" : "FP32", optim == QAT_OPTIM_BF16 ? "bf16" : "fp32");
        goto out;
    }
    if (mos != (uint32_t)qat_mos(t->q)) {
        ob_seterr(err, "%s: the checkpoint's student has %u scale experts per linear (--mos %u), this run %d: resume with --mos %u",
                  path, mos, mos, qat_mos(t->q), mos);
        goto out;
    }
    if (ste.kind != k->ste.kind || (ste.kind == QAT_STE_SMOOTH && ste.a != k->ste.a)) {
        char was[48], now[48];
        qat_ste_format(&ste, was, sizeof was);
        qat_ste_format(&k->ste, now, sizeof now);
        ob_seterr(err, "%s: the checkpoint was made with --ste %s, not %s: resume with --ste %s", path, was, now, was);
        goto out;
    }
    if (no_ln != (uint32_t)k->no_layernorm) {
        const char *was = no_ln ? "off" : "on";
        ob_seterr(err, "%s: the checkpoint was made with --layernorm %s, not %s: resume with --layernorm %s", path, was,
                  k->no_layernorm ? "off" : "on", was);
        goto out;
    }
    if (ckpt_np(path, cnp, np, err)) goto out;
    if ((long)step > k->steps) { ob_seterr(err, "%s: the checkpoint is at step %" PRIu64 ", beyond --steps %ld", path, step, k->steps); goto out; }
    size_t eb;
    qat_moments(t->q, 0, &eb);
    if (r.n - r.at != np * (sizeof(float) + 2 * eb) + 8) { ob_seterr(err, "%s: size does not match %zu parameters", path, np); goto out; }
    /* one rank: straight into its moments; several: the whole moments
     * until share_state gives each rank its slice */
    void *mv[2] = {qat_moments(t->q, 0, NULL), qat_moments(t->q, 1, NULL)};
    for (int i = 0; i < 2 && dist_size() > 1; i++) mv[i] = t->ld[i] = ob_malloc(np * eb);
    float *p = qat_params(t->q);
    rget(&r, p, np * sizeof(float));
    rget(&r, mv[0], np * eb);
    rget(&r, mv[1], np * eb);
    if (!FILE_HOST_LITTLE_ENDIAN) {
        file_f32_from_le(p, p, np);
        for (int i = 0; i < 2; i++) {
            if (eb == sizeof(float)) file_f32_from_le(mv[i], mv[i], np);
            else for (size_t k2 = 0; k2 < np; k2++) {
                unsigned char *x = (unsigned char *)mv[i] + 2 * k2;
                ((uint16_t *)mv[i])[k2] = (uint16_t)(x[0] | x[1] << 8);
            }
        }
    }
    for (size_t i = 0; i < np; i++) {
        float mi = moment_at(mv[0], eb, i), vi = moment_at(mv[1], eb, i);
        if (!isfinite(p[i]) || !isfinite(mi) || !(vi >= 0) || !isfinite(vi)) {
            ob_seterr(err, "%s: non-finite value in the saved state (parameter %zu)", path, i);
            goto out;
        }
    }
    t->step = (long)step;
    t->cur.rng = rng;
    t->cur.drawn = drawn;
    t->elapsed = elapsed;
    rc = 0;
out:
    file_unmap(raw, size);
    return rc;
}

/* data parallelism (train/dist.h): every rank continues from rank 0's state
 * (its SVID init, or the checkpoint only rank 0 read), so that the replicas
 * agree whatever each host's kernels, and takes its slice of the moments
 * (ZeRO-1; zero without a checkpoint); -1 when a rank's data differs */
static int share_state(Trainer *t, char *err)
{
    size_t eb; /* the moments as the student keeps them: FP32 or BF16 */
    void *mv[2] = {qat_moments(t->q, 0, &eb), qat_moments(t->q, 1, NULL)};
    if (dist_size() < 2) return 0;
    if (t->resume_path) /* rank 0 read the checkpoint (or failed and ended the job) */
        for (int i = 0; i < 2; i++) {
            dist_scatter(t->ld[i], mv[i], t->off, eb);
            free(t->ld[i]);
            t->ld[i] = NULL;
        }
    dist_bcast(qat_params(t->q), qat_num_params(t->q) * sizeof(float));
    uint64_t h[5] = {(uint64_t)t->step, t->cur.rng, t->cur.drawn, 0, t->data_fp};
    memcpy(&h[3], &t->elapsed, sizeof(double));
    dist_bcast(h, sizeof h);
    t->step = (long)h[0];
    t->cur.rng = h[1];
    t->cur.drawn = h[2];
    memcpy(&t->elapsed, &h[3], sizeof(double));
    if (dist_any(h[4] != t->data_fp)) {
        ob_seterr(err, "the ranks have different training data (each rank must read the same --data / cache)");
        return -1;
    }
    return 0;
}

int trainer_ckpt_read(const char *path, const ModelConfig *c, const char *teacher_sha, TrainerCkpt *out, char *err)
{
    memset(out, 0, sizeof *out);
    void *map;
    size_t size;
    if (file_map(path, &map, &size, err)) return -1;
    Rd r;
    size_t np = ckpt_num_params(c);
    uint64_t fp;
    int rc = -1;
    uint32_t ver;
    uint64_t cnp;
    if (ckpt_head(path, map, size, c, &cnp, out->teacher_sha, &fp, &ver, &r, err)) goto out;
    if (teacher_sha && strncmp(out->teacher_sha, teacher_sha, 64) != 0) {
        ob_seterr(err, "%s: the checkpoint is for another teacher (sha256 %.16s..., this teacher %.16s...)", path, out->teacher_sha, teacher_sha);
        goto out;
    }
    out->step = (long)ru64(&r);
    unsigned char skip[8 + 8 + 8 + 8 + 4 * 5 + 8 + 9 * 8];
    rget(&r, skip, sizeof skip); /* rng, drawn, elapsed, the TrainConfig (bounds-checked) */
    /* version 2: the moments' storage, then moments of that size; version
     * 3: the experts, the estimator (u32, f64) and the LayerNorm flag */
    uint32_t optim = ver >= 2 ? ru32(&r) : QAT_OPTIM_FP32;
    const CkptV3 v3 = rv3(&r, ver);
    if (v3.mos) {
        ob_seterr(err, "%s: the checkpoint's student is a mixture of scales (--mos): only a OneBit one can be read here", path);
        goto out;
    }
    out->norm = !v3.no_ln;
    if (ckpt_np(path, cnp, np, err)) goto out;
    size_t eb = optim == QAT_OPTIM_BF16 ? 2 : 4;
    if (r.bad || r.at > r.n || r.n - r.at != np * (sizeof(float) + 2 * eb) + 8) {
        ob_seterr(err, "%s: size does not match %zu parameters", path, np);
        goto out;
    }
    out->params = ob_malloc(np * sizeof(float));
    out->n_params = np;
    file_f32_from_le(out->params, r.p + r.at, np);
    for (size_t i = 0; i < np; i++)
        if (!isfinite(out->params[i])) { ob_seterr(err, "%s: non-finite value in the saved state (parameter %zu)", path, i); goto out; }
    rc = 0;
out:
    file_unmap(map, size);
    if (rc) trainer_ckpt_free(out);
    return rc;
}

void trainer_ckpt_sources(const TrainerCkpt *k, const ModelConfig *c, StudentLinearSrc *lin)
{
    const float *p = k->params;
    for (int l = 0; l < c->n_layers; l++)
        for (int j = 0; j < LIN_PER_LAYER; j++) {
            int out, in;
            model_lin_shape(c, j, &out, &in);
            StudentLinearSrc *s = &lin[l * LIN_PER_LAYER + j];
            memset(s, 0, sizeof *s);
            s->w = p;
            s->g = p + (size_t)out * in;
            s->h = s->g + in;
            s->norm = k->norm;
            p = s->h + out;
        }
}

void trainer_ckpt_free(TrainerCkpt *k)
{
    free(k->params);
    memset(k, 0, sizeof *k);
}

/* ---- export ----------------------------------------------------------------------- */
static int export_student(Trainer *t, char *err)
{
    if (dist_rank() != 0) return 0; /* rank 0 writes the student */
    const ModelConfig *c = &t->teacher->cfg;
    int nl = c->n_layers * LIN_PER_LAYER;
    QatLinearSrc *qs = ob_calloc((size_t)nl, sizeof(QatLinearSrc));
    StudentLinearSrc *ss = ob_calloc((size_t)nl, sizeof(StudentLinearSrc));
    int n = qat_linear_srcs(t->q, qs);
    for (int i = 0; i < n && i < nl; i++) {
        ss[i].w = qs[i].w;
        ss[i].g = qs[i].g;
        ss[i].h = qs[i].h;
        ss[i].norm = qs[i].norm;
        ss[i].mos = qs[i].mos;
        ss[i].router = qs[i].router;
        ss[i].g_experts = qs[i].g_experts;
        ss[i].h_experts = qs[i].h_experts;
    }
    char meta[1024], ste[48];
    const TrainConfig *k = &t->cfg;
    qat_ste_format(&k->ste, ste, sizeof ste);
    snprintf(meta, sizeof meta,
             "{\"method\":\"onebit-qat\",\"teacher_sha256\":\"%s\",\"steps\":%ld,\"seq_len\":%d,\"batch\":%d,\"accum\":%d,"
             "\"lr\":%g,\"lr_min\":%g,\"warmup\":%ld,\"alpha\":%g,\"kl_scale\":%g,\"init\":\"%s\",\"ste\":\"%s\","
             "\"layernorm\":%s,\"seed\":%" PRIu64 ",\"mos\":%d,\"heldout_nll\":%.6f,\"teacher_heldout_nll\":%.6f}",
             t->sha, t->step, k->seq_len, k->batch, global_accum(k), k->lr, eff_lr_min(k), eff_warmup(k), k->alpha, k->kl_scale,
             svid_method_name(k->init), ste, k->no_layernorm ? "false" : "true", k->seed, k->mos, t->sum.student_nll,
             t->sum.teacher_nll);
    int rc = n == nl ? student_write(t->out_path, t->teacher, t->tok, ss, meta, err) : -1;
    if (n != nl) ob_seterr(err, "the student has %d linears, expected %d", n, nl);
    free(qs);
    free(ss);
    return rc;
}

/* ---- the optimizer step (ZeRO-1) ------------------------------------------------------ */
float trainer_zero_step(QatModel *q, const size_t *off, float clip, long t, const AdamWCfg *ac)
{
    double c0 = ob_now();
    dist_reduce_scatter_f32(qat_grads(q), off);
    double comm = ob_now() - c0;
    /* the global norm: each rank's blocks, added in block order on every rank */
    size_t nb = qat_grad_blocks(q);
    double *part = ob_calloc(nb ? nb : 1, sizeof(double));
    qat_grad_sq_blocks(q, part);
    c0 = ob_now();
    dist_sum_ordered(part, (int)nb); /* one rank's value and zeros: exact */
    comm += ob_now() - c0;
    float gn = qat_clip_parts(q, part, clip);
    free(part);
    qat_adamw_step(q, t, ac);
    c0 = ob_now();
    dist_allgather_f32(qat_params(q), off);
    qat_add_time(q, QAT_T_COMM, comm + ob_now() - c0);
    return gn;
}

/* ---- the thread ------------------------------------------------------------------------ */
static int fail(Trainer *t, const char *msg)
{
    t->sum.status = RUN_FAILED;
    snprintf(t->sum.message, sizeof t->sum.message, "%s", msg);
    emit_status(t, RUN_FAILED, "%s", msg);
    t->rc = -1;
    dist_abort(1, msg); /* with several ranks the others would wait forever */
    return -1;
}

/* wait while paused; returns 1 when a stop was requested */
static int control(Trainer *t, double *active_since)
{
    Job *j = job_current(); /* the trainer's job: this runs in its thread */
    if (job_pause_requested(j)) {
        t->elapsed += ob_now() - *active_since;
        emit_status(t, RUN_PAUSED, "paused at step %ld", t->step);
        int stop = job_wait_resumed(j);
        *active_since = ob_now();
        if (!stop) emit_status(t, RUN_RUNNING, "resumed at step %ld", t->step);
    }
    return job_cancelled(j);
}

/* --time: time one step's micro-batches twice (the first warms the
 * caches; the gradients are thrown away, the data cursor is a copy) and
 * set steps to those that fit in what is left of the budget after the
 * two; every rank takes rank 0's plan. 0, or -1 with err. */
static int plan_time(Trainer *t, char *err)
{
    const TrainConfig *k = &t->cfg;
    DataCursor cur = t->cur;
    QatLossCfg lc = {.alpha = k->alpha, .kl_scale = k->kl_scale};
    double t0 = 0, step_s = 0;
    for (int pass = 0; pass < 2; pass++) {
        t0 = ob_now();
        for (int a = 0; a < k->accum; a++) {
            for (int b = 0; b < k->batch; b++) data_sample(t->data, &cur, t->batch_tok + (size_t)b * k->seq_len);
            QatLoss ql;
            if (qat_forward_backward(t->q, t->batch_tok, k->batch, k->seq_len, &lc, 1.0f / k->accum, &ql)) {
                ob_seterr(err, "qat_forward_backward rejected the batch (token out of range or bad shape)");
                return -1;
            }
        }
        step_s = ob_now() - t0;
    }
    qat_zero_grads(t->q);
    double left = k->time_limit - 2 * step_s;
    long fit = left > 0 ? (long)(left / (step_s + 1e-9)) : 0;
    if (fit < 1) fit = 1;
    long plan = fit < k->steps ? fit : k->steps;
    int64_t p64 = plan;
    dist_bcast(&p64, sizeof p64);
    t->cfg.steps = (long)p64;
    char b1[32];
    ob_fmt_duration(b1, sizeof b1, k->time_limit);
    emit_log(t, "time budget %s: a step takes about %.1f ms, the schedule is laid over %ld steps", b1, 1e3 * step_s,
             t->cfg.steps);
    return 0;
}

static void *run(void *arg);
static int run_job(Job *j, void *arg)
{
    (void)j;
    Trainer *t = arg;
    run(t);
    return t->rc;
}

static void *run(void *arg)
{
    Trainer *t = arg;
    const TrainConfig *k = &t->cfg;
    char err[OB_ERRLEN];
    /* OpenBLAS's thread count is the caller's (base/blas.h): set on the
     * program's main thread, never here (chat and layer jobs may be in
     * cblas right now) */
    emit_status(t, RUN_RUNNING, "preparing: teacher and PTQ baselines on the held-out split");
    long ntok;
    if (trainer_dense_nll(t->teacher, t->data, 0, &t->sum.teacher_nll, &ntok, err)) { fail(t, err); return NULL; }
    t->sum.eval_tokens = ntok;
    if (xnor_nll(t->teacher, t->data, &t->sum.xnor_nll, err)) { fail(t, err); return NULL; }
    trainer_memory_text(t->teacher, k, err, sizeof err);
    emit_log(t, "%s", err);
    t->q = qat_new(t->teacher, k->init,
                   &(QatSize){k->batch, k->seq_len, (QatOptim)k->optim_state, k->recompute, dist_size(), dist_rank(),
                              qat_vocab_copies(t->teacher), k->mos, k->seed}, err);
    if (!t->q) { fail(t, err); return NULL; }
    t->off = ob_malloc(((size_t)dist_size() + 1) * sizeof(size_t));
    qat_shard_offsets(qat_num_params(t->q), dist_size(), t->off);
    if (qat_set_threads(t->q, trainer_threads(k), err)) { fail(t, err); return NULL; }
    qat_set_ste(t->q, &k->ste);
    qat_set_layernorm(t->q, !k->no_layernorm);
    t->batch_tok = ob_malloc((size_t)k->batch * k->seq_len * sizeof(int));
    if (student_nll(t, 0, &t->sum.svid_nll, &ntok, err)) { fail(t, err); return NULL; }
    emit_log(t, "held-out split: %ld tokens to predict", ntok);
    emit_eval(t, 0, "teacher", t->sum.teacher_nll);
    emit_eval(t, 0, "ptq-xnor", t->sum.xnor_nll);
    emit_eval(t, 0, "ptq-svid", t->sum.svid_nll);
    data_cursor_init(&t->cur, k->seed);
    if (t->resume_path && dist_rank() == 0) {
        if (load_ckpt(t, t->resume_path, err)) { fail(t, err); return NULL; }
        emit_log(t, "resumed from %s at step %ld", t->resume_path, t->step);
    }
    if (share_state(t, err)) { fail(t, err); return NULL; }
    double budget_since = ob_now(); /* --time bounds this session's training */
    if (k->time_limit > 0 && t->step == 0 && plan_time(t, err)) { fail(t, err); return NULL; }
    if (dist_size() > 1)
        emit_log(t, "data parallel: %d ranks x --batch %d x --accum %d = global batch of %d sequences of %d tokens",
                 dist_size(), k->batch, k->accum, k->batch * global_accum(k), k->seq_len);
    emit_status(t, RUN_RUNNING, "training");
    QatLossCfg lc = {.alpha = k->alpha, .kl_scale = k->kl_scale};
    AdamWCfg ac = {.lr = k->lr, .beta1 = k->beta1, .beta2 = k->beta2, .eps = k->eps, .weight_decay = k->wd};
    float lr_min = eff_lr_min(k);
    long warmup = eff_warmup(k);
    double active_since = ob_now(), elapsed0 = t->elapsed, probe_s = active_since - budget_since;
    long session_steps = 0;
    double iv_loss = 0, iv_kl = 0, iv_mse = 0;
    int iv_n = 0, first_logged = 0, stopped = 0, time_up = 0;
    long last_logged = 0; /* the last step an EV_STEP went out for in this session (0: none) */
    while (t->step < k->steps && !time_up) {
        /* every rank stops after the same step */
        if (dist_any((k->stop_after > 0 && t->step >= k->stop_after) || control(t, &active_since))) { stopped = 1; break; }
        qat_zero_grads(t->q);
        double loss = 0, kl = 0, mse = 0;
        /* the step's na micro-batches are drawn on every rank (one cursor);
         * rank r trains on micro-batches r·accum .. r·accum+accum-1, as one
         * rank with --accum na would */
        int na = global_accum(k), mine = dist_rank() * k->accum;
        for (int a = 0; a < na; a++) {
            for (int b = 0; b < k->batch; b++) data_sample(t->data, &t->cur, t->batch_tok + (size_t)b * k->seq_len);
            if (a < mine || a >= mine + k->accum) continue;
            QatLoss ql;
            if (qat_forward_backward(t->q, t->batch_tok, k->batch, k->seq_len, &lc, 1.0f / na, &ql)) {
                fail(t, "qat_forward_backward rejected the batch (token out of range or bad shape)");
                return NULL;
            }
            loss += ql.loss / na;
            kl += ql.kl / na;
            mse += ql.mse / na;
        }
        if (dist_size() > 1) {
            double c0 = ob_now(), lkm[3] = {loss, kl, mse};
            dist_sum_ordered(lkm, 3);
            loss = lkm[0]; kl = lkm[1]; mse = lkm[2];
            qat_add_time(t->q, QAT_T_COMM, ob_now() - c0);
        }
        if (!isfinite(loss)) {
            snprintf(err, sizeof err, "the loss is not finite at step %ld (try a lower --lr)", t->step + 1);
            fail(t, err);
            return NULL;
        }
        ac.lr = qat_lr(t->step, k->steps, warmup, k->lr, lr_min);
        float gn = trainer_zero_step(t->q, t->off, k->clip, t->step + 1, &ac);
        t->step++;
        session_steps++;
        iv_loss += loss; iv_kl += kl; iv_mse += mse; iv_n++;
        double now = ob_now();
        double active = t->elapsed + (now - active_since);
        /* --time: paused time does not count (active is training time) */
        if (k->time_limit > 0 && dist_any(probe_s + active - elapsed0 >= k->time_limit)) time_up = 1;
        if (t->step % k->log_every == 0 || t->step == k->steps || time_up) {
            Event e = {.kind = EV_STEP, .step = (int)t->step};
            e.loss = iv_loss / iv_n;
            e.kl = iv_kl / iv_n;
            e.mse = iv_mse / iv_n;
            e.lr = ac.lr;
            e.grad_norm = gn;
            double sps = session_steps / (active - elapsed0 + 1e-9);
            e.tokens_per_s = sps * k->batch * global_accum(k) * k->seq_len;
            e.elapsed = active;
            e.eta = (k->steps - t->step) / sps;
            emit(t, &e);
            last_logged = t->step;
            if (!first_logged) { t->sum.first_loss = e.loss; first_logged = 1; }
            t->sum.last_loss = e.loss;
            iv_loss = iv_kl = iv_mse = 0;
            iv_n = 0;
        }
        if (k->eval_every > 0 && t->step % k->eval_every == 0 && t->step < k->steps && !time_up) {
            double nll;
            if (student_nll(t, k->max_eval_windows, &nll, &ntok, err)) { fail(t, err); return NULL; }
            emit_eval(t, t->step, k->max_eval_windows > 0 ? "student-partial" : "student", nll);
        }
        if (t->ckpt_path && k->ckpt_every > 0 && t->step % k->ckpt_every == 0 && t->step < k->steps && !time_up) {
            t->elapsed += ob_now() - active_since;
            /* the run record first: a kill right after the checkpoint must
             * not leave steps it covers unrecorded */
            if (k->ckpt_gate && last_logged > 0) k->ckpt_gate(k->ckpt_gate_ud, last_logged);
            active_since = ob_now();
            if (write_ckpt(t, err)) { fail(t, err); return NULL; }
        }
    }
    t->elapsed += ob_now() - active_since;
    if (dist_size() > 1 && session_steps > 0) {
        double ph[QAT_NTIMERS];
        qat_times(t->q, ph);
        emit_log(t, "data parallel (ZeRO-1): gradient reduce-scatter and parameter all-gather of %zu floats (%.2f MB) "
                 "took %.3f ms per step (%.1f%% of the step time)", qat_num_params(t->q), qat_num_params(t->q) * 4e-6,
                 1e3 * ph[QAT_T_COMM] / session_steps, 100 * ph[QAT_T_COMM] / (t->elapsed - elapsed0 + 1e-9));
    }
    if (!dist_same(qat_params(t->q), qat_num_params(t->q) * sizeof(float))) {
        fail(t, "data parallel: the ranks' parameters differ after training (the MPI sum is not the same on every rank)");
        return NULL;
    }
    t->sum.steps_done = t->step;
    t->sum.elapsed = t->elapsed;
    /* no gate here: at a stop the caller may be joining this thread instead
     * of passing events on, and its record's end stores what is left */
    if (t->ckpt_path && write_ckpt(t, err)) { fail(t, err); return NULL; }
    if (student_nll(t, 0, &t->sum.student_nll, &ntok, err)) { fail(t, err); return NULL; }
    emit_eval(t, t->step, "student", t->sum.student_nll);
    if (stopped) {
        t->sum.status = RUN_STOPPED;
        snprintf(t->sum.message, sizeof t->sum.message, "stopped at step %ld of %ld%s%s", t->step, k->steps,
                 t->ckpt_path ? "; checkpoint " : "", t->ckpt_path ? t->ckpt_path : "");
        emit_status(t, RUN_STOPPED, "%s", t->sum.message);
        return NULL;
    }
    if (t->out_path) {
        if (export_student(t, err)) { fail(t, err); return NULL; }
    }
    t->sum.status = RUN_FINISHED;
    snprintf(t->sum.message, sizeof t->sum.message, "finished %ld steps%s%s%s", t->step,
             k->time_limit > 0 ? " in the time budget" : "", t->out_path ? "; wrote " : "", t->out_path ? t->out_path : "");
    emit_status(t, RUN_FINISHED, "%s", t->sum.message);
    return NULL;
}

int trainer_start(Trainer **out, const TrainConfig *cfg, const Model *teacher, const Tokenizer *tok,
                  const DataSet *data, const char *teacher_sha, EventRing *ring, char *err)
{
    *out = NULL;
    if (trainer_config_check(cfg, &teacher->cfg, err)) return -1;
    if (data->seq_len != cfg->seq_len) {
        ob_seterr(err, "the data set has windows of %d tokens, the config %d", data->seq_len, cfg->seq_len);
        return -1;
    }
    for (int k = 0; k < teacher->cfg.n_layers * LIN_PER_LAYER; k++)
        if (teacher->lin[k].kind != LINEAR_DENSE) { ob_seterr(err, "the teacher must be a dense model, not a 1-bit student"); return -1; }
    if (trainer_memory_check(teacher, cfg, qat_memory_available(), err)) return -1;
    Trainer *t = ob_calloc(1, sizeof *t);
    t->cfg = *cfg;
    t->out_path = cfg->out_path ? ob_strdup(cfg->out_path) : NULL;
    t->ckpt_path = cfg->ckpt_path ? ob_strdup(cfg->ckpt_path) : NULL;
    t->resume_path = cfg->resume_path ? ob_strdup(cfg->resume_path) : NULL;
    t->cfg.out_path = t->out_path;
    t->cfg.ckpt_path = t->ckpt_path;
    t->cfg.resume_path = t->resume_path;
    t->teacher = teacher;
    t->tok = tok;
    t->data = data;
    snprintf(t->sha, sizeof t->sha, "%s", teacher_sha ? teacher_sha : "");
    t->ring = ring;
    t->data_fp = data_fingerprint(data);
    t->sum.status = RUN_RUNNING;
    t->sum.first_loss = t->sum.last_loss = NAN;
    /* the trainer sends its own final EV_STATUS (with the summary's message) */
    JobSpec js = {.name = "trainer", .id = cfg->run_id, .ring = ring, .fn = run_job, .arg = t, .end_event = 0};
    if (job_start(&t->job, &js, err)) {
        trainer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void trainer_pause(Trainer *t) { job_pause(t->job); }
void trainer_resume(Trainer *t) { job_resume(t->job); }
void trainer_stop(Trainer *t) { job_cancel(t->job); }
int trainer_done(Trainer *t) { return job_done(t->job); }

int trainer_join(Trainer *t, TrainSummary *sum)
{
    if (!t->joined) {
        job_join(t->job); /* asserts that the starting thread joins */
        t->joined = 1;
    }
    if (sum) *sum = t->sum;
    return t->rc;
}

int trainer_params(Trainer *t, float **out, size_t *n)
{
    if (!t->joined || !t->q) return -1;
    *n = qat_num_params(t->q);
    *out = ob_malloc(*n * sizeof(float));
    memcpy(*out, qat_params(t->q), *n * sizeof(float));
    return 0;
}

/* one free() per owned buffer, like tok_free's: each struct frees its own
 * fields (the pair duplicates reports is only the shape of a free list) */
void trainer_free(Trainer *t)
{
    if (!t) return;
    job_free(t->job); /* a running trainer: stop (checkpoint) and join */
    if (t->q) qat_free(t->q);
    free(t->batch_tok);
    free(t->off);
    free(t->ld[0]);
    free(t->ld[1]);
    free(t->out_path);
    free(t->ckpt_path);
    free(t->resume_path);
    free(t);
}
