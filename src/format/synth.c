/* src/format/synth.c -- random-weight LLaMA teachers of real shapes as
 * Hugging Face directories or GGUF files, streamed tensor by tensor (see
 * synth.h). */
#include "format/synth.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/common.h"
#include "base/file.h"
#include "format/gguf.h"
#include "format/loader.h"
#include "format/tokenizer.h"

#define CHUNK_BYTES (4u << 20)  /* the write buffer: all the weights held at once */
#define GGUF_ALIGN 32
#define DEFAULT_SHARD 5000000000ull

/* ---- shapes ------------------------------------------------------------- */

static const SynthShape presets[] = {
    {"tinyllama-1.1b", 2048, 5632, 22, 32, 4, 32000, 2048, 10000.0, 1e-5},
    {"llama2-7b", 4096, 11008, 32, 32, 32, 32000, 4096, 10000.0, 1e-5},
    {"llama3-8b", 4096, 14336, 32, 32, 8, 128256, 8192, 500000.0, 1e-5},
};

int synth_shape_check(const SynthShape *s, char *err)
{
    struct { const char *what; int v; int hi; } d[] = {
        {"DIM", s->dim, 1 << 16},          {"HIDDEN", s->hidden_dim, 1 << 18}, {"LAYERS", s->n_layers, 1024},
        {"HEADS", s->n_heads, 1024},       {"KV", s->n_kv_heads, 1024},        {"VOCAB", s->vocab_size, 1 << 22},
        {"--seq-len", s->seq_len, 1 << 24},
    };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if (d[i].v < 1 || d[i].v > d[i].hi) {
            ob_seterr(err, "%s is %d; it must be in [1, %d]", d[i].what, d[i].v, d[i].hi);
            return -1;
        }
    if (s->dim % s->n_heads) { ob_seterr(err, "HEADS %d does not divide DIM %d", s->n_heads, s->dim); return -1; }
    if (s->n_heads % s->n_kv_heads) { ob_seterr(err, "KV %d does not divide HEADS %d", s->n_kv_heads, s->n_heads); return -1; }
    if ((s->dim / s->n_heads) % 2) {
        ob_seterr(err, "the head size DIM/HEADS = %d is odd (RoPE rotates pairs)", s->dim / s->n_heads);
        return -1;
    }
    if (s->vocab_size < 3) { ob_seterr(err, "VOCAB %d is below 3 (<unk>, <s>, </s>)", s->vocab_size); return -1; }
    return 0;
}

int synth_shape_parse(const char *str, SynthShape *out, char *err)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(str, presets[i].name)) { *out = presets[i]; return 0; }
    SynthShape s = {"custom", 0, 0, 0, 0, 0, 0, 2048, 10000.0, 1e-5};
    int *f[6] = {&s.dim, &s.hidden_dim, &s.n_layers, &s.n_heads, &s.n_kv_heads, &s.vocab_size};
    const char *p = str;
    for (int i = 0; i < 6; i++) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > (1L << 30) || *end != (i < 5 ? ',' : '\0')) {
            ob_seterr(err, "shape '%.64s' is neither tinyllama-1.1b, llama2-7b, llama3-8b nor DIM,HIDDEN,LAYERS,HEADS,KV,VOCAB", str);
            return -1;
        }
        *f[i] = (int)v;
        p = end + 1;
    }
    if (synth_shape_check(&s, err)) return -1;
    *out = s;
    return 0;
}

int synth_format_parse(const char *s, int *out)
{
    if (!strcmp(s, "hf")) *out = SYNTH_HF;
    else if (!strcmp(s, "gguf")) *out = SYNTH_GGUF;
    else return -1;
    return 0;
}

static const char *const dtype_args[LLAMA_NDTYPES] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q5_0", "q4_k", "q5_k", "q6_k"};

int synth_dtype_parse(const char *s, int *out)
{
    for (int d = 0; d < LLAMA_NDTYPES; d++)
        if (!strcmp(s, dtype_args[d])) { *out = d; return 0; }
    return -1;
}

const char *synth_dtype_name(int dtype) { return llama_dtype_name(dtype); }

int synth_check(const SynthOpts *o, char *err)
{
    if (synth_shape_check(&o->shape, err)) return -1;
    int blk = llama_dtype_block(o->dtype);
    if (blk < 1) { ob_seterr(err, "unknown dtype %d", o->dtype); return -1; }
    if (blk > 1 && o->format != SYNTH_GGUF) {
        ob_seterr(err, "dtype %s is for GGUF output (safetensors has no such type)", dtype_args[o->dtype]);
        return -1;
    }
    if (o->shape.dim % blk || o->shape.hidden_dim % blk) {
        ob_seterr(err, "dtype %s quantizes rows in blocks of %d: DIM %d and HIDDEN %d must be multiples of %d",
                  dtype_args[o->dtype], blk, o->shape.dim, o->shape.hidden_dim, blk);
        return -1;
    }
    return 0;
}

/* ---- the weights ---------------------------------------------------------*/

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t tensor_key(uint64_t seed, uint32_t id) { return mix64(mix64(seed) ^ mix64((uint64_t)id + 0x51ed)); }

/* Irwin-Hall of four 16-bit uniforms: mean 0, std 0.02, |x| < 0.07 */
static inline float normalish(uint64_t key, uint64_t idx)
{
    uint64_t u = mix64(key + idx * 0x9e3779b97f4a7c15ull);
    int s = (int)(u & 0xffff) + (int)((u >> 16) & 0xffff) + (int)((u >> 32) & 0xffff) + (int)(u >> 48);
    return (float)(s - 131070) * (float)(0.02 / 37837.22);
}

float synth_weight(uint64_t seed, uint32_t tensor_id, uint64_t idx) { return normalish(tensor_key(seed, tensor_id), idx); }

/* ---- the tensor list -----------------------------------------------------*/

typedef struct {
    char hf[96], gg[96];  /* names in both conventions */
    uint64_t rows, cols;  /* rows 0: a 1-D norm of cols ones */
    uint32_t id;          /* weight tensor id (synth_weight) */
    int heads;            /* q/k: heads to permute to HF's rotate-half order */
    int dtype;            /* as written */
    uint64_t bytes;
    int shard;            /* HF */
    uint64_t off;         /* from the start of its file's data section */
} STns;

static int tensor_list(const SynthOpts *o, STns **out)
{
    const SynthShape *s = &o->shape;
    int n = 3 + 9 * s->n_layers, k = 0;
    STns *t = ob_calloc((size_t)n, sizeof *t);
    uint64_t C = s->dim, F = s->hidden_dim, V = s->vocab_size, hd = s->dim / s->n_heads;
    uint64_t qd = (uint64_t)s->n_heads * hd, kvd = (uint64_t)s->n_kv_heads * hd;
    int normtype = o->format == SYNTH_GGUF ? SYNTH_F32 : o->dtype; /* as llama.cpp's and HF's converters */
#define ADD(h, g, r, c, i, hh)                                                                   \
    do {                                                                                         \
        STns *x = &t[k++];                                                                       \
        snprintf(x->hf, sizeof x->hf, "%s", h); snprintf(x->gg, sizeof x->gg, "%s", g);          \
        x->rows = r; x->cols = c; x->id = i; x->heads = hh;                                      \
        x->dtype = (r) ? o->dtype : normtype;                                                    \
        x->bytes = ((r) ? (r) : 1) * llama_dtype_bytes(x->dtype, c);                             \
    } while (0)
    ADD("model.embed_tokens.weight", "token_embd.weight", V, C, 0, 0);
    char h[96], g[96];
    static const struct { const char *hf, *gg; int lin; } L[] = {
        {"self_attn.q_proj", "attn_q", 0}, {"self_attn.k_proj", "attn_k", 1}, {"self_attn.v_proj", "attn_v", 2},
        {"self_attn.o_proj", "attn_output", 3}, {"mlp.gate_proj", "ffn_gate", 4}, {"mlp.up_proj", "ffn_up", 6},
        {"mlp.down_proj", "ffn_down", 5},
    };
    for (int l = 0; l < s->n_layers; l++) {
        snprintf(h, sizeof h, "model.layers.%d.input_layernorm.weight", l);
        snprintf(g, sizeof g, "blk.%d.attn_norm.weight", l);
        ADD(h, g, 0, C, 0, 0);
        for (int j = 0; j < 7; j++) {
            int lin = L[j].lin;
            uint64_t r = lin == 0 ? qd : lin <= 2 ? kvd : lin == 3 || lin == 5 ? C : F;
            uint64_t c = lin == 3 ? qd : lin == 5 ? F : C;
            snprintf(h, sizeof h, "model.layers.%d.%s.weight", l, L[j].hf);
            snprintf(g, sizeof g, "blk.%d.%s.weight", l, L[j].gg);
            ADD(h, g, r, c, 16 + 16 * (uint32_t)l + (uint32_t)lin, lin == 0 ? s->n_heads : lin == 1 ? s->n_kv_heads : 0);
        }
        snprintf(h, sizeof h, "model.layers.%d.post_attention_layernorm.weight", l);
        snprintf(g, sizeof g, "blk.%d.ffn_norm.weight", l);
        ADD(h, g, 0, C, 0, 0);
    }
    ADD("model.norm.weight", "output_norm.weight", 0, C, 0, 0);
    ADD("lm_head.weight", "output.weight", V, C, 1, 0);
#undef ADD
    *out = t;
    return n;
}

uint64_t synth_param_count(const SynthShape *s)
{
    uint64_t C = s->dim, F = s->hidden_dim, V = s->vocab_size, hd = s->dim / s->n_heads;
    uint64_t qd = (uint64_t)s->n_heads * hd, kvd = (uint64_t)s->n_kv_heads * hd;
    return 2 * V * C + C + (uint64_t)s->n_layers * (2 * C + qd * C * 2 + kvd * C * 2 + 3 * F * C);
}

uint64_t synth_data_bytes(const SynthOpts *o)
{
    STns *t;
    int n = tensor_list(o, &t);
    uint64_t b = 0;
    for (int i = 0; i < n; i++) b += o->format == SYNTH_GGUF ? (t[i].bytes + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN : t[i].bytes;
    free(t);
    return b;
}

/* ---- output files ----------------------------------------------------------*/

typedef struct {
    const SynthOpts *o;
    uint8_t *buf;         /* CHUNK_BYTES */
    uint64_t done, total; /* progress over all files */
    const char *file;     /* shown in progress */
    const char *out_base; /* the output's name, for progress */
    char disp[320];
} W;

static int write_all(int fd, const void *p, size_t n, const char *path, char *err)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            ob_seterr(err, "%s: write: %s", path, k < 0 ? strerror(errno) : "no progress");
            return -1;
        }
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* write the k bytes gathered in w->buf, report progress, honour cancel */
static int flush_chunk(W *w, int fd, size_t *k, const char *path, char *err)
{
    if (*k && write_all(fd, w->buf, *k, path, err)) return -1;
    w->done += *k;
    *k = 0;
    if (w->o->progress) w->o->progress(w->o->progress_ctx, w->file, w->done, w->total);
    if (w->o->cancel && *w->o->cancel) { ob_seterr(err, "interrupted"); return -1; }
    return 0;
}

/* stream tensor t's data into fd a row at a time (converted to its dtype
 * by llama_quantize), CHUNK_BYTES at most per write; HF order permutes q/k
 * rows to rotate-half */
static int write_tensor(W *w, int fd, const STns *t, int hf, const char *path, char *err)
{
    uint64_t rows = t->rows ? t->rows : 1, cols = t->cols;
    uint64_t key = tensor_key(w->o->seed, t->id);
    uint64_t hd = t->heads ? rows / (uint64_t)t->heads : 0;
    size_t rb = llama_dtype_bytes(t->dtype, cols), k = 0; /* rb <= 1 MB: cols <= 2^18 */
    float *x = ob_malloc((size_t)cols * sizeof(float));
    int rc = 0;
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t lr = r; /* the logical (interleaved) row written here */
        if (hf && t->heads) {
            uint64_t h = r / hd, rem = r % hd, j = rem / (hd / 2), i = rem % (hd / 2);
            lr = h * hd + 2 * i + j;
        }
        for (uint64_t c = 0; c < cols; c++) x[c] = t->rows ? normalish(key, lr * cols + c) : 1.0f;
        if (k + rb > CHUNK_BYTES && (rc = flush_chunk(w, fd, &k, path, err))) break;
        llama_quantize(t->dtype, x, w->buf + k, (size_t)cols);
        k += rb;
    }
    if (!rc) rc = flush_chunk(w, fd, &k, path, err);
    free(x);
    return rc;
}

static int pad_to(int fd, uint64_t *pos, uint64_t align, const char *path, char *err)
{
    static const uint8_t zero[64];
    uint64_t p = (align - *pos % align) % align;
    if (p && write_all(fd, zero, (size_t)p, path, err)) return -1;
    *pos += p;
    return 0;
}

static int create_file(const char *path, char *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) ob_seterr(err, "%s: %s", path, strerror(errno));
    return fd;
}

static int finish_file(int fd, const char *path, char *err)
{
    int rc = 0;
    if (fsync(fd)) { ob_seterr(err, "%s: fsync: %s", path, strerror(errno)); rc = -1; }
    if (close(fd) && !rc) { ob_seterr(err, "%s: close: %s", path, strerror(errno)); rc = -1; }
    return rc;
}

/* growable byte buffer for headers */
typedef struct { uint8_t *p; size_t n, cap; } SBuf;
static void sb_put(SBuf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
        if (!b->p) { fprintf(stderr, "error: out of memory\n"); exit(1); }
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void sb_str(SBuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_fmt(SBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(SBuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)(n < (int)sizeof tmp ? n : (int)sizeof tmp - 1));
}
/* a JSON string literal */
static void sb_json(SBuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { sb_put(b, "\\", 1); sb_put(b, s, 1); }
        else if (c < 0x20) sb_fmt(b, "\\u%04x", c);
        else sb_put(b, s, 1);
    }
    sb_put(b, "\"", 1);
}
static void sb_u32(SBuf *b, uint32_t v) { uint8_t d[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)}; sb_put(b, d, 4); }
static void sb_u64(SBuf *b, uint64_t v) { sb_u32(b, (uint32_t)v); sb_u32(b, (uint32_t)(v >> 32)); }
static void sb_gstr(SBuf *b, const char *s) { sb_u64(b, strlen(s)); sb_str(b, s); }

static int write_sbuf(const char *path, const SBuf *b, char *err)
{
    int fd = create_file(path, err);
    if (fd < 0) return -1;
    if (write_all(fd, b->p, b->n, path, err)) { close(fd); return -1; }
    return finish_file(fd, path, err);
}

/* ---- the vocabulary ------------------------------------------------------*/

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };

typedef struct {
    int n;
    char **piece;   /* SentencePiece spelling: U+2581 for a space */
    float *score;
    int *type;
    Tokenizer idx;  /* lookups of pieces (spaces for U+2581) */
} Vocab;

static void vocab_free(Vocab *v)
{
    for (int i = 0; i < v->n; i++) free(v->piece[i]);
    free(v->piece); free(v->score); free(v->type);
    if (v->idx.vocab) tok_free(&v->idx);
    memset(v, 0, sizeof *v);
}

static char *to_sp(const char *s) /* spaces to U+2581 */
{
    size_t n = 0;
    for (const char *p = s; *p; p++) n += *p == ' ' ? 3 : 1;
    char *o = ob_malloc(n + 1), *q = o;
    for (const char *p = s; *p; p++) {
        if (*p == ' ') { memcpy(q, "\xe2\x96\x81", 3); q += 3; }
        else *q++ = *p;
    }
    *q = 0;
    return o;
}

/* FNV set for the synthetic generator */
static uint64_t fnv(const char *s) { uint64_t h = 1469598103934665603ull; for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ull; } return h; }

static void vocab_synthetic(Vocab *v, int V)
{
    v->piece = ob_calloc((size_t)V, sizeof(char *));
    v->score = ob_calloc((size_t)V, sizeof(float));
    v->type = ob_calloc((size_t)V, sizeof(int));
    size_t cap = 16;
    while (cap < (size_t)V * 2) cap <<= 1;
    int *set = ob_malloc(cap * sizeof(int));
    for (size_t i = 0; i < cap; i++) set[i] = -1;
    int n = 0;
#define ADDP(str, ty)                                                                        \
    do {                                                                                     \
        size_t hi = fnv(str) & (cap - 1);                                                    \
        int dup = 0;                                                                         \
        while (set[hi] >= 0) { if (!strcmp(v->piece[set[hi]], str)) { dup = 1; break; } hi = (hi + 1) & (cap - 1); } \
        if (!dup && n < V) { set[hi] = n; v->piece[n] = ob_strdup(str); v->type[n] = ty; v->score[n] = ty == TT_NORMAL ? -(float)n : 0; n++; } \
    } while (0)
    ADDP("<unk>", TT_UNKNOWN);
    ADDP("<s>", TT_CONTROL);
    ADDP("</s>", TT_CONTROL);
    char b[64];
    if (V >= 3 + 256 + 96) /* byte fallback when there is room for it and the characters */
        for (int i = 0; i < 256; i++) { snprintf(b, sizeof b, "<0x%02X>", i); ADDP(b, TT_BYTE); }
    /* characters, commonest first: a-z, the word-start mark, A-Z, digits, punctuation */
    static const char chars[] = "etaoinshrdlcumwfgypbvkjxqz" "_ETAOINSHRDLCUMWFGYPBVKJXQZ0123456789.,'\"!?;:-()[]{}<>/\\|@#$%^&*+=~`";
    int first = n, nchars = 0;
    const char *alpha[128];
    for (const char *c = chars; *c; c++) {
        if (*c == '_') snprintf(b, sizeof b, "\xe2\x96\x81");
        else snprintf(b, sizeof b, "%c", *c);
        int before = n;
        ADDP(b, TT_NORMAL);
        if (n > before) alpha[nchars++] = v->piece[n - 1];
    }
    /* longer pieces: an earlier piece extended by a character, both drawn
     * with a fixed generator (the vocabulary does not depend on the seed) */
    uint64_t st = 0x70c3;
    while (n < V) {
        uint64_t r = mix64(st++);
        uint64_t span = (uint64_t)(n - first), x = ((r & 0xffffff) * ((r >> 24) & 0xffffff)) >> 24;
        int i = first + (int)((x * span) >> 24); /* favour the early (short, frequent) pieces */
        int j = (int)((r >> 48) % 27);           /* a letter, or 26: the word start in front */
        const char *a = v->piece[i], *c = alpha[j];
        size_t la = strlen(a), lc = strlen(c);
        unsigned char a0 = (unsigned char)a[0];
        if (la + lc > 16 || !(a0 == 0xe2 || (a0 >= 'a' && a0 <= 'z') || (a0 >= 'A' && a0 <= 'Z'))) continue; /* word-like */
        if (j == 26) {
            if (strstr(a, "\xe2\x96\x81")) continue; /* one word start per piece */
            memcpy(b, c, lc);
            memcpy(b + lc, a, la + 1);
        } else {
            memcpy(b, a, la);
            memcpy(b + la, c, lc + 1);
        }
        ADDP(b, TT_NORMAL);
    }
#undef ADDP
    free(set);
    v->n = n;
}

static int vocab_from_bin(Vocab *v, const char *path, int V, char *err)
{
    Tokenizer t;
    if (loader_load_tokenizer(&t, path, V, err)) return -1;
    if (t.mode != TOK_SPM) {
        ob_seterr(err, "%s: a byte-level tokenizer; synth carries SentencePiece-style ones (tokenizer.bin, tokenizer.model)", path);
        tok_free(&t);
        return -1;
    }
    v->piece = ob_calloc((size_t)V, sizeof(char *));
    v->score = ob_calloc((size_t)V, sizeof(float));
    v->type = ob_calloc((size_t)V, sizeof(int));
    static const char *special[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < V; i++) {
        unsigned x;
        char tail;
        if (i < 3) { v->piece[i] = ob_strdup(special[i]); v->type[i] = i ? TT_CONTROL : TT_UNKNOWN; }
        else {
            v->piece[i] = to_sp(t.vocab[i]);
            v->type[i] = sscanf(t.vocab[i], "<0x%2X%c", &x, &tail) == 2 && tail == '>' && strlen(t.vocab[i]) == 6 ? TT_BYTE : TT_NORMAL;
        }
        v->score[i] = t.scores[i];
    }
    tok_free(&t);
    v->n = V;
    return 0;
}

static int vocab_build(Vocab *v, const SynthOpts *o, char *err)
{
    memset(v, 0, sizeof *v);
    if (o->tokenizer_path) {
        if (vocab_from_bin(v, o->tokenizer_path, o->shape.vocab_size, err)) return -1;
    } else vocab_synthetic(v, o->shape.vocab_size);
    if (tok_init_spm(&v->idx, v->n, (const char *const *)v->piece, v->score, v->type, 1, 2, 0, err)) { vocab_free(v); return -1; }
    return 0;
}

/* BPE merges equivalent to the score-ordered SentencePiece merging: every
 * split of a normal piece into two normal pieces, ordered by the score of
 * the piece they make (the conversion transformers uses for Llama) */
typedef struct { float score; int res, a, b; } Merge;
static int merge_cmp(const void *x, const void *y)
{
    const Merge *p = x, *q = y;
    if (p->score != q->score) return p->score > q->score ? -1 : 1;
    if (p->res != q->res) return p->res < q->res ? -1 : 1;
    return p->a != q->a ? (p->a < q->a ? -1 : 1) : (p->b < q->b ? -1 : p->b > q->b);
}

static Merge *vocab_merges(const Vocab *v, size_t *n_out)
{
    size_t n = 0, cap = 1024;
    Merge *m = ob_malloc(cap * sizeof *m);
    const Tokenizer *t = &v->idx;
    for (int id = 0; id < v->n; id++) {
        if (v->type[id] != TT_NORMAL) continue;
        const char *p = t->vocab[id];
        int len = t->vocab_len[id];
        for (int k = 1; k < len; k++) {
            if (((unsigned char)p[k] & 0xc0) == 0x80) continue; /* inside a character */
            int a = tok_lookup(t, p, (size_t)k), b = tok_lookup(t, p + k, (size_t)(len - k));
            if (a < 0 || b < 0 || v->type[a] != TT_NORMAL || v->type[b] != TT_NORMAL) continue;
            if (n == cap) { cap *= 2; m = realloc(m, cap * sizeof *m); if (!m) { fprintf(stderr, "error: out of memory\n"); exit(1); } }
            m[n++] = (Merge){v->score[id], id, a, b};
        }
    }
    qsort(m, n, sizeof *m, merge_cmp);
    *n_out = n;
    return m;
}

/* tokenizer.json as transformers writes it for Llama 2 (BPE, byte fallback) */
static int write_tokenizer_json(const Vocab *v, const char *path, char *err)
{
    SBuf b = {0};
    sb_str(&b, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[");
    int first = 1;
    for (int i = 0; i < v->n; i++) {
        if (v->type[i] != TT_CONTROL && v->type[i] != TT_UNKNOWN) continue;
        sb_fmt(&b, "%s{\"id\":%d,\"content\":", first ? "" : ",", i);
        sb_json(&b, v->piece[i]);
        sb_str(&b, ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}");
        first = 0;
    }
    sb_str(&b, "],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xe2\x96\x81\"},"
               "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xe2\x96\x81\"}]},\"pre_tokenizer\":null,"
               "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
               "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
               "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":1}},"
               "{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}},"
               "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\xe2\x96\x81\"},\"content\":\" \"},"
               "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
               "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"continuing_subword_prefix\":null,"
               "\"end_of_word_suffix\":null,\"fuse_unk\":true,\"byte_fallback\":true,\"ignore_merges\":false,\"vocab\":{");
    for (int i = 0; i < v->n; i++) {
        if (i) sb_put(&b, ",", 1);
        sb_json(&b, v->piece[i]);
        sb_fmt(&b, ":%d", i);
    }
    sb_str(&b, "},\"merges\":[");
    size_t nm;
    Merge *m = vocab_merges(v, &nm);
    for (size_t i = 0; i < nm; i++) {
        size_t la = strlen(v->piece[m[i].a]), lb = strlen(v->piece[m[i].b]);
        char *s = ob_malloc(la + lb + 2);
        memcpy(s, v->piece[m[i].a], la);
        s[la] = ' ';
        memcpy(s + la + 1, v->piece[m[i].b], lb + 1);
        if (i) sb_put(&b, ",", 1);
        sb_json(&b, s);
        free(s);
    }
    free(m);
    sb_str(&b, "]}}\n");
    int rc = write_sbuf(path, &b, err);
    free(b.p);
    return rc;
}

/* ---- Hugging Face directory ---------------------------------------------*/

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = ob_malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static const char *torch_dtype(int d) { return d == SYNTH_F32 ? "float32" : d == SYNTH_F16 ? "float16" : "bfloat16"; }

static int write_hf(W *w, const char *dir, char *err)
{
    const SynthOpts *o = w->o;
    const SynthShape *s = &o->shape;
    STns *t;
    int nt = tensor_list(o, &t), rc = -1, nsh = 0;
    uint64_t maxsh = o->max_shard_bytes ? o->max_shard_bytes : DEFAULT_SHARD, cur = 0, total = 0;
    for (int i = 0; i < nt; i++) {
        if (cur && cur + t[i].bytes > maxsh) { nsh++; cur = 0; }
        t[i].shard = nsh;
        t[i].off = cur;
        cur += t[i].bytes;
        total += t[i].bytes;
    }
    nsh++;
    char name[64], *path = NULL;
    SBuf b = {0};
    for (int sh = 0; sh < nsh; sh++) {
        if (nsh == 1) snprintf(name, sizeof name, "model.safetensors");
        else snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", sh + 1, nsh);
        free(path);
        path = join(dir, name);
        b.n = 0;
        sb_str(&b, "{\"__metadata__\":{\"format\":\"pt\"}");
        for (int i = 0; i < nt; i++) {
            if (t[i].shard != sh) continue;
            sb_fmt(&b, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].hf, synth_dtype_name(t[i].dtype));
            if (t[i].rows) sb_fmt(&b, "%llu,%llu", (unsigned long long)t[i].rows, (unsigned long long)t[i].cols);
            else sb_fmt(&b, "%llu", (unsigned long long)t[i].cols);
            sb_fmt(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)t[i].off, (unsigned long long)(t[i].off + t[i].bytes));
        }
        sb_str(&b, "}");
        while (b.n % 8) sb_put(&b, " ", 1);
        int fd = create_file(path, err);
        if (fd < 0) goto out;
        uint8_t hl[8];
        for (int k = 0; k < 8; k++) hl[k] = (uint8_t)((uint64_t)b.n >> (8 * k));
        snprintf(w->disp, sizeof w->disp, "%s/%s", w->out_base, name);
        w->file = w->disp;
        if (write_all(fd, hl, 8, path, err) || write_all(fd, b.p, b.n, path, err)) { close(fd); goto out; }
        for (int i = 0; i < nt; i++)
            if (t[i].shard == sh && write_tensor(w, fd, &t[i], 1, path, err)) { close(fd); goto out; }
        if (finish_file(fd, path, err)) goto out;
    }
    if (nsh > 1) {
        b.n = 0;
        sb_fmt(&b, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {", (unsigned long long)total);
        for (int i = 0; i < nt; i++)
            sb_fmt(&b, "%s\n    \"%s\": \"model-%05d-of-%05d.safetensors\"", i ? "," : "", t[i].hf, t[i].shard + 1, nsh);
        sb_str(&b, "\n  }\n}\n");
        free(path);
        path = join(dir, "model.safetensors.index.json");
        if (write_sbuf(path, &b, err)) goto out;
    }
    /* config.json */
    b.n = 0;
    sb_fmt(&b, "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n  \"hidden_size\": %d,\n"
               "  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n",
           s->dim, s->hidden_dim, s->n_layers, s->n_heads);
    sb_fmt(&b, "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n",
           s->n_kv_heads, s->dim / s->n_heads, s->vocab_size, s->seq_len);
    sb_fmt(&b, "  \"rms_norm_eps\": %g,\n  \"rope_theta\": %.1f,\n  \"rope_scaling\": null,\n  \"hidden_act\": \"silu\",\n",
           s->norm_eps, s->rope_theta);
    sb_fmt(&b, "  \"initializer_range\": 0.02,\n  \"attention_bias\": false,\n  \"mlp_bias\": false,\n  \"pretraining_tp\": 1,\n"
               "  \"use_cache\": true,\n  \"torch_dtype\": \"%s\",\n  \"tie_word_embeddings\": false,\n"
               "  \"bos_token_id\": 1,\n  \"eos_token_id\": 2\n}\n", torch_dtype(o->dtype));
    free(path);
    path = join(dir, "config.json");
    if (write_sbuf(path, &b, err)) goto out;
    b.n = 0;
    sb_fmt(&b, "{\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n  \"bos_token\": \"<s>\",\n  \"eos_token\": \"</s>\",\n"
               "  \"unk_token\": \"<unk>\",\n  \"model_max_length\": %d,\n  \"tokenizer_class\": \"LlamaTokenizerFast\",\n"
               "  \"clean_up_tokenization_spaces\": false,\n  \"legacy\": false\n}\n", s->seq_len);
    free(path);
    path = join(dir, "tokenizer_config.json");
    if (write_sbuf(path, &b, err)) goto out;
    Vocab v;
    if (vocab_build(&v, o, err)) goto out;
    free(path);
    path = join(dir, "tokenizer.json");
    int trc = write_tokenizer_json(&v, path, err);
    vocab_free(&v);
    if (trc) goto out;
    rc = 0;
out:
    free(path);
    free(b.p);
    free(t);
    return rc;
}

/* ---- GGUF ----------------------------------------------------------------*/

static void gk(SBuf *b, const char *k, uint32_t type) { sb_gstr(b, k); sb_u32(b, type); }
static void gk_u32(SBuf *b, const char *k, uint32_t v) { gk(b, k, GGUF_U32); sb_u32(b, v); }
static void gk_f32(SBuf *b, const char *k, float v) { gk(b, k, GGUF_F32); uint32_t u; memcpy(&u, &v, 4); sb_u32(b, u); }
static void gk_str(SBuf *b, const char *k, const char *v) { gk(b, k, GGUF_STRING); sb_gstr(b, v); }

static int write_gguf(W *w, const char *path, char *err)
{
    const SynthOpts *o = w->o;
    const SynthShape *s = &o->shape;
    STns *t;
    int nt = tensor_list(o, &t), rc = -1;
    Vocab v;
    if (vocab_build(&v, o, err)) { free(t); return -1; }
    SBuf kv = {0}, b = {0};
    uint64_t nkv = 0;
#define K(call) (call, nkv++)
    K(gk_str(&kv, "general.architecture", "llama"));
    char nm[64];
    snprintf(nm, sizeof nm, "synth-%s", s->name);
    K(gk_str(&kv, "general.name", nm));
    /* llama.cpp's file types: all F32, mostly F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K_S, Q5_K_S, Q6_K */
    static const uint32_t file_type[LLAMA_NDTYPES] = {0, 1, 32, 7, 2, 8, 14, 16, 18};
    K(gk_u32(&kv, "general.file_type", file_type[o->dtype]));
    K(gk_u32(&kv, "general.alignment", GGUF_ALIGN));
    K(gk_u32(&kv, "llama.vocab_size", (uint32_t)s->vocab_size));
    K(gk_u32(&kv, "llama.context_length", (uint32_t)s->seq_len));
    K(gk_u32(&kv, "llama.embedding_length", (uint32_t)s->dim));
    K(gk_u32(&kv, "llama.block_count", (uint32_t)s->n_layers));
    K(gk_u32(&kv, "llama.feed_forward_length", (uint32_t)s->hidden_dim));
    K(gk_u32(&kv, "llama.rope.dimension_count", (uint32_t)(s->dim / s->n_heads)));
    K(gk_u32(&kv, "llama.attention.head_count", (uint32_t)s->n_heads));
    K(gk_u32(&kv, "llama.attention.head_count_kv", (uint32_t)s->n_kv_heads));
    K(gk_f32(&kv, "llama.attention.layer_norm_rms_epsilon", (float)s->norm_eps));
    K(gk_f32(&kv, "llama.rope.freq_base", (float)s->rope_theta));
    K(gk_str(&kv, "tokenizer.ggml.model", "llama"));
    K(gk(&kv, "tokenizer.ggml.tokens", GGUF_ARRAY));
    sb_u32(&kv, GGUF_STRING);
    sb_u64(&kv, (uint64_t)v.n);
    for (int i = 0; i < v.n; i++) sb_gstr(&kv, v.piece[i]);
    K(gk(&kv, "tokenizer.ggml.scores", GGUF_ARRAY));
    sb_u32(&kv, GGUF_F32);
    sb_u64(&kv, (uint64_t)v.n);
    for (int i = 0; i < v.n; i++) { uint32_t u; memcpy(&u, &v.score[i], 4); sb_u32(&kv, u); }
    K(gk(&kv, "tokenizer.ggml.token_type", GGUF_ARRAY));
    sb_u32(&kv, GGUF_I32);
    sb_u64(&kv, (uint64_t)v.n);
    for (int i = 0; i < v.n; i++) sb_u32(&kv, (uint32_t)v.type[i]);
    K(gk_u32(&kv, "tokenizer.ggml.bos_token_id", 1));
    K(gk_u32(&kv, "tokenizer.ggml.eos_token_id", 2));
    K(gk_u32(&kv, "tokenizer.ggml.unknown_token_id", 0));
    K(gk(&kv, "tokenizer.ggml.add_bos_token", GGUF_BOOL));
    sb_put(&kv, "\1", 1);
#undef K
    vocab_free(&v);
    sb_str(&b, "GGUF");
    sb_u32(&b, 3);
    sb_u64(&b, (uint64_t)nt);
    sb_u64(&b, nkv);
    sb_put(&b, kv.p, kv.n);
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        sb_gstr(&b, t[i].gg);
        sb_u32(&b, t[i].rows ? 2 : 1);
        sb_u64(&b, t[i].cols);
        if (t[i].rows) sb_u64(&b, t[i].rows);
        sb_u32(&b, gguf_ggml_type(t[i].dtype));
        sb_u64(&b, off);
        t[i].off = off;
        off += (t[i].bytes + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
    }
    while (b.n % GGUF_ALIGN) sb_put(&b, "", 1);
    int fd = create_file(path, err);
    if (fd < 0) goto out;
    uint64_t pos = 0;
    if (write_all(fd, b.p, b.n, path, err)) { close(fd); goto out; }
    for (int i = 0; i < nt; i++) {
        if (write_tensor(w, fd, &t[i], 0, path, err)) { close(fd); goto out; }
        pos += t[i].bytes;
        if (pad_to(fd, &pos, GGUF_ALIGN, path, err)) { close(fd); goto out; }
    }
    if (finish_file(fd, path, err)) goto out;
    rc = 0;
out:
    free(kv.p);
    free(b.p);
    free(t);
    return rc;
}

/* ---- the whole ------------------------------------------------------------*/

static int synth_write_to(const SynthOpts *o, const char *out, char *err);

int synth_write(const SynthOpts *o, const char *out, char *err)
{
    char *p = ob_strdup(out); /* "dir/" names dir */
    for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--) p[n - 1] = 0;
    int rc = synth_write_to(o, p, err);
    free(p);
    return rc;
}

static int synth_write_to(const SynthOpts *o, const char *out, char *err)
{
    if (!*out) { ob_seterr(err, "empty output path"); return -1; }
    if (synth_check(o, err)) return -1;
    struct stat st;
    if (lstat(out, &st) == 0) { ob_seterr(err, "%s: already exists (remove it first)", out); return -1; }
    if (ob_check_writable(out, 0, err)) return -1;
    char *dir = ob_dir_of(out);
    uint64_t need = synth_data_bytes(o) + ((uint64_t)o->shape.vocab_size * 64 + (1u << 20)) * (o->format == SYNTH_HF ? 4 : 1);
    uint64_t avail = o->free_bytes_override;
    if (!avail) {
        struct statvfs vf;
        if (statvfs(dir, &vf)) { ob_seterr(err, "%s: statvfs: %s", dir, strerror(errno)); free(dir); return -1; }
        avail = (uint64_t)vf.f_bavail * vf.f_frsize;
    }
    if (need > avail) {
        ob_seterr(err, "%s: not enough space: the model needs %.2f GB, %s has %.2f GB free", out, need / 1e9, dir, avail / 1e9);
        free(dir);
        return -1;
    }
    const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
    size_t tl = strlen(dir) + strlen(base) + 32;
    char *tmp = ob_malloc(tl);
    snprintf(tmp, tl, "%s/.%s.tmp-XXXXXX", dir, base);
    free(dir);
    W w = {o, ob_malloc(CHUNK_BYTES), 0, synth_data_bytes(o), base, base, ""};
    int rc;
    if (o->format == SYNTH_HF) {
        char *td = file_dir_begin(out, err); /* renamed into place whole */
        if (!td) rc = -1;
        else if (write_hf(&w, td, err)) { file_dir_abort(td); rc = -1; }
        else rc = file_dir_commit(td, out, err);
        free(tmp);
        free(w.buf);
        return rc;
    } else {
        int fd = mkstemp(tmp);
        if (fd < 0) { ob_seterr(err, "%s: %s", tmp, strerror(errno)); rc = -1; }
        else {
            close(fd);
            unlink(tmp); /* write_gguf creates it exclusively */
            rc = write_gguf(&w, tmp, err);
            if (!rc && rename(tmp, out)) { ob_seterr(err, "%s: rename: %s", out, strerror(errno)); rc = -1; }
            if (rc) unlink(tmp);
        }
    }
    if (!rc) { /* the rename itself made durable */
        char *pd = ob_dir_of(out);
        int dfd = open(pd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) { fsync(dfd); close(dfd); }
        free(pd);
    }
    free(w.buf);
    free(tmp);
    return rc;
}
