/* model.h -- the LLaMA-family model: config, one FP32 parameter arena with
 * pointers into it (llama2.c / llm.c style) built from what a format loader
 * read (format/llama.h; the model knows no file format), the batched
 * forward pass over a sequence and the incremental forward with a KV cache
 * used for generation. */
#ifndef OB_MODEL_H
#define OB_MODEL_H

#include <stddef.h>
#include "base/pool.h"
#include "format/llama.h"
#include "model/linear.h"

/* the LLaMA config, as the loaders describe it (format/llama.h) */
typedef LlamaConfig ModelConfig;

/* the seven projections of a block, in this order everywhere */
enum { LIN_Q, LIN_K, LIN_V, LIN_O, LIN_GATE, LIN_DOWN, LIN_UP, LIN_PER_LAYER };
extern const char *const model_lin_names[LIN_PER_LAYER]; /* "wq","wk",... */
/* projection k's shape: out rows by in columns */
void model_lin_shape(const ModelConfig *c, int k, int *out, int *in);

typedef struct Model {
    ModelConfig cfg;
    float *arena;        /* every FP32 parameter lives here (a mapped
                          * teacher's: only the norms and FP32 embedding /
                          * head; its linears are in lin[].wd) */
    size_t arena_floats;
    /* pointers into the arena; layer tensors are stacked over layers */
    float *tok_emb;   /* (V, C) */
    float *rms_att;   /* (L, C) */
    float *wq;        /* (L, H*hd, C) -- NULL in a 1-bit student and a
                       * mapped teacher (model_lin_f32 reads any) */
    float *wk;        /* (L, KV*hd, C) */
    float *wv;        /* (L, KV*hd, C) */
    float *wo;        /* (L, C, H*hd) */
    float *rms_ffn;   /* (L, C) */
    float *w1;        /* gate (L, F, C) */
    float *w2;        /* down (L, C, F) */
    float *w3;        /* up   (L, F, C) */
    float *rms_final; /* (C) */
    float *wcls;      /* (V, C); equals tok_emb when shared */
    Linear *lin;      /* (L, LIN_PER_LAYER): what the forward pass calls */
    /* the embedding rows and the output head as the forward passes read
     * them: emb_type / cls_type are LINEAR_W_* (linear.h); FP32 ones point
     * at tok_emb / wcls, a lean student's FP16 or Q8_0 ones into its file
     * (then tok_emb / wcls are NULL). Embedding rows are converted to FP32
     * on lookup; the head runs on the stored weights. */
    int emb_type, cls_type;
    const void *emb_w, *cls_w;
    /* 1: emb_w lies in a read-only file mapping (base/file.h file_map) that
     * model_embed reads only the looked-up rows of: it drops the pages a
     * lookup brought in (the kernel maps 64 KB around each fault), so only
     * the rows in use stay resident, as the lookup copies them */
    int emb_mapped;
    /* owner of anything else the model points into (e.g. an mmap'd student) */
    void *extra;
    void (*free_extra)(void *extra);
} Model;

/* size in floats of the arena for cfg (dense weights when with_linears) */
int model_arena_size(const ModelConfig *c, int with_linears, size_t *out);
/* allocate a zeroed arena for cfg and set every pointer; with_linears=0
 * leaves wq..w3 NULL (a 1-bit student keeps its linears elsewhere) and
 * m->lin zeroed for the caller to fill; otherwise m->lin is dense */
int model_alloc(Model *m, const ModelConfig *c, int with_linears, char *err);
/* the same without FP32 copies of the embedding (emb_type not LINEAR_W_F32)
 * or of the head (cls_type not LINEAR_W_F32; a shared classifier takes
 * emb_type): tok_emb / wcls are then NULL and the caller points emb_w /
 * cls_w at the rows (a lean student; linears as with_linears = 0) */
int model_alloc_lean(Model *m, const ModelConfig *c, int emb_type, int cls_type, char *err);
void model_free(Model *m);
/* token's embedding row in FP32 (C floats) */
void model_embed(const Model *m, int token, float *out);
/* The one way to the FP32 matrix of dense linear i (layer i / LIN_PER_LAYER,
 * LIN_* i % LIN_PER_LAYER), (out, in) row-major, for a teacher in the FP32
 * arena or a mapped one: a pointer into the arena (*tmp = NULL), or the
 * matrix converted into *tmp (ob_aligned_alloc'd, the caller frees it),
 * rows in the engine's order. NULL (and *tmp NULL) when linear i is not
 * dense (a 1-bit student). One matrix at a time: what inspect and quantize
 * hold of a mapped teacher. Any thread. */
const float *model_lin_f32(const Model *m, int i, float **tmp);
/* 1 if linear i is dense (model_lin_f32 gives its matrix), without converting */
int model_lin_dense(const Model *m, int i);
/* the same for the embedding (head = 0) or the output head (head = 1),
 * (V, C): tok_emb / wcls when FP32, else converted into *tmp */
const float *model_vocab_f32(const Model *m, int head, float **tmp);
/* point m->lin at the dense weights in the arena */
void model_bind_dense(Model *m);

/* the FP32 model of what a loader read (any format: the model knows none);
 * every weight must be finite. path is only for messages. */
int model_from_llama(Model *m, const LlamaFile *f, const char *path, char *err);
/* the mapped teacher of what a loader read: linears, embedding and head
 * stay in the file's own precision where f's data pointers are (Linear
 * wtype / wd, emb_type / emb_w, cls_type / cls_w; wq..w3 NULL; tok_emb /
 * wcls only for FP32 ones, copied), the norms go into the FP32 arena. m
 * takes f over (model_free frees it; f is zeroed), also on failure. Every
 * weight must be finite (the file is read through once). */
int model_from_llama_mapped(Model *m, LlamaFile *f, const char *path, char *err);
/* how model_load opens a teacher: MODEL_TEACHER_AUTO maps it when a linear
 * is stored in another precision than FP32 (else the FP32 arena), ARENA
 * always converts it to the FP32 arena, MAPPED always maps it. Set by
 * $ONEBIT_TEACHER_LOAD (auto|arena|mapped), read at each load. */
enum { MODEL_TEACHER_AUTO = 0, MODEL_TEACHER_ARENA = 1, MODEL_TEACHER_MAPPED = 2 };
/* 1 if m is a mapped teacher (dense linears not in the arena) */
int model_is_mapped(const Model *m);
/* any supported teacher format, detected by content (format/loader.h): a
 * llama2.c .bin, a GGUF file, or a Hugging Face directory (config.json +
 * safetensors); mapped or in the FP32 arena as $ONEBIT_TEACHER_LOAD says */
int model_load(Model *m, const char *path, char *err);
/* the same; when tok is not NULL and the teacher carries a tokenizer (GGUF
 * tokenizer.ggml.*, a directory's tokenizer.json) it is loaded into tok and
 * *tok_loaded set to 1, else *tok_loaded = 0 and tok is untouched */
struct Tokenizer;
int model_load_ex(Model *m, struct Tokenizer *tok, int *tok_loaded, const char *path, char *err);

size_t model_count_params(const ModelConfig *c);

/* ---- batched forward over one sequence --------------------------------- */
typedef struct {
    int T;                 /* capacity in tokens */
    float *x;              /* (T, C) residual stream */
    float *xb;             /* (T, C) */
    float *xb2;            /* (T, C) */
    float *q;              /* (T, H*hd) */
    float *k;              /* (T, KV*hd) */
    float *v;              /* (T, KV*hd) */
    float *att;            /* (T, T) one head at a time */
    float *attout;         /* (T, H*hd) */
    float *hb;             /* (T, F) */
    float *hb2;            /* (T, F) */
    float *rope_cos;       /* (seq_len, hd/2) */
    float *rope_sin;
} ModelActs;

int model_acts_init(ModelActs *a, const ModelConfig *c, int T);
void model_acts_free(ModelActs *a);

/* logits (T, V) for tokens[0..T-1] at positions 0..T-1. If hidden is not
 * NULL it receives each block's output residual stream, (L, T, C). */
void model_forward(const Model *m, ModelActs *a, const int *tokens, int T,
                   float *logits, float *hidden);

/* ---- incremental forward with a KV cache -------------------------------
 * The cache holds each layer's keys and values, FP32 or FP16, in chunks of
 * MODEL_KV_CHUNK positions allocated as the positions advance (nothing is
 * sized to the context up front). The precision: $ONEBIT_KV (f32|f16) or
 * model_state_set_kv, else chosen at the first forward (MODEL_KV_AUTO): FP32
 * for a model with dense FP32 linears (a teacher, whose greedy outputs stay
 * those of the reference), FP16 for the others (a 1-bit student).
 *
 * model_step runs attention on the model's pool (the 1-bit layers' KernExec
 * pool, else the global pool of base/pool.h), with the decode helpers of
 * kernels.h (KernDec), split over the heads (a task per query head) or over
 * the positions (flash-decoding: a task per range of positions for
 * all heads, reading whole cached rows, whose partial outputs are merged per
 * head in range order with log-sum-exp rescaling). Either way every task's
 * work and the merge order are fixed, so results do not depend on the
 * thread count.
 * Threads: a state belongs to one caller at a time. */
#define MODEL_KV_CHUNK 64
enum { MODEL_KV_AUTO = 0, MODEL_KV_F32 = 1, MODEL_KV_F16 = 2 };
/* model_step's attention: MODEL_ATTN_AUTO (and MODEL_ATTN_POS) split over
 * the positions with an FP16 cache and over the heads with an FP32 one (a
 * teacher's greedy outputs stay those of the head split); MODEL_ATTN_HEADS
 * over the heads always */
enum { MODEL_ATTN_AUTO = 0, MODEL_ATTN_HEADS = 1, MODEL_ATTN_POS = 2 };
/* MODEL_ATTN_POS's tasks: a range of positions each, one per
 * MODEL_ATTN_MIN positions up to MODEL_ATTN_TASKS ranges (enough for 16
 * threads; each range's partial output is read once more by the merge) */
#define MODEL_ATTN_MIN 16
#define MODEL_ATTN_TASKS 16

typedef struct {
    float *x, *xb, *xb2, *q, *k, *v, *att, *hb, *hb2, *logits;
    int kv;                 /* MODEL_KV_*: AUTO until the first forward */
    int n_layers, kvd;      /* kvd = n_kv_heads * head_dim */
    int n_chunks;           /* chunk slots per layer: ceil(seq_len / MODEL_KV_CHUNK) */
    int chunks;             /* chunks allocated in every layer so far */
    void **kc, **vc;        /* (L, n_chunks): MODEL_KV_CHUNK x kvd elements each; chunk j of
                             * every layer in one allocation, which kc[j] (layer 0) begins */
    float *gather;          /* model_forward_kv: one KV head's keys and values in FP32 */
    size_t gather_cap;      /* floats */
    int attn;               /* MODEL_ATTN_*: how model_step splits its attention */
    float *part;            /* model_step's position ranges: partial outputs, maxima, sums, scratch */
    float *tile;            /* model_forward_kv's FP16 prompt attention: a slot per pool thread */
    size_t tile_cap;        /* floats */
    Pool *pool;             /* a global pool reference, for models without one */
    float *rope_cos, *rope_sin;
} ModelState;

int model_state_init(ModelState *s, const ModelConfig *c);
void model_state_free(ModelState *s);
/* the cache precision (MODEL_KV_*) from now on; only before the first
 * forward on s. 0, or -1 when s already holds positions. */
int model_state_set_kv(ModelState *s, int kv);
/* model_step's attention split (MODEL_ATTN_*) from now on; any time */
void model_state_set_attn(ModelState *s, int attn);
/* "f32"/"f16" -> MODEL_KV_F32/F16, "auto" -> MODEL_KV_AUTO; -1 if unknown */
int model_kv_parse(const char *name);
/* bytes the cache holds now (allocated chunks, keys and values) */
size_t model_state_kv_bytes(const ModelState *s);
/* logits (V) for token at pos, given the cache holds positions 0..pos-1 */
float *model_step(const Model *m, ModelState *s, int token, int pos);
/* the bytes a model_step at pos reads from memory: every linear's weights
 * (a 1-bit one's packed signs and FP32 g and h; a dense one's rows in its
 * precision), the norms, the output head in its precision and the cache's
 * keys and values of positions 0..pos (in s's precision, FP16 if not yet
 * settled for a 1-bit model); what a decode's bandwidth is measured by */
double model_step_bytes(const Model *m, const ModelState *s, int pos);
/* The batched forward continued from a KV cache (prefill after a prefix):
 * tokens[0..T-1] at positions pos0..pos0+T-1 attend to the cached positions
 * 0..pos0-1 and to themselves; their keys and values go into s's cache.
 * logits (n_logits, V) receive the rows of the last n_logits positions
 * (0 <= n_logits <= T). Needs pos0 + T <= seq_len and a capacity a->T >= T
 * with T * (pos0 + T) <= a->T * a->T (true for a->T = seq_len). With pos0 =
 * 0 it computes what model_forward does. With an FP16 cache the attention
 * runs on the model's pool, blocked (flash attention: tiles of queries of a
 * head, the keys read once per tile, an online softmax), the same bits at
 * any thread count. */
void model_forward_kv(const Model *m, ModelActs *a, ModelState *s, const int *tokens, int T, int pos0,
                      float *logits, int n_logits);

/* shared building blocks, also used by the trainer */
void model_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
void model_rope_table(const ModelConfig *c, float *cosv, float *sinv);
void model_rope(float *v, int n, int hd, const float *cosv, const float *sinv);
/* model_rope's variants for this CPU, the reference first (names "ref",
 * "avx512"; the same bits, tests/test_softmax); returns how many */
int model_rope_variants(const char **names, void (**fns)(float *, int, int, const float *, const float *), int max);
void model_softmax(float *x, int n);
/* the softmax variants this CPU runs ("ref" first), for tests and benches */
int model_softmax_variants(const char **names, void (**fns)(float *, int), int max);

#endif
