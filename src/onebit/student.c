/* src/onebit/student.c -- (reentrant; student_quantize fans out to helper
 * jobs through svid_model_rank1 and student_load checks the file's checksum
 * on a thread of its own, each joined before it returns; student_set_exec:
 * the owner of a loaded student, between forwards) the .onebit student file: writer
 * (temp file + fsync + rename), mmap loader that validates every field, the
 * execution context of a loaded student's layers, and post-training
 * quantisation of a teacher by SVID / XNOR (see student.h). The byte layout
 * is documented in man/onebit-tui.1 (FILES) and summarised here.
 *
 * All integers little-endian. Header, 128 bytes:
 *   0 magic "ONEBIT\0\0"   8 u32 version (2; 1 is read too)   12 u32 header size (128)
 *  16 i32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim,
 *         vocab_size, seq_len        48 f32 rope_theta  52 f32 norm_eps
 *  56 u32 shared_classifier          60 u32 n_tensors
 *  64 u64 table offset (128)         72 u64 data offset (table end, 64-aligned)
 *  80 u64 file size                  88 i32 tokenizer vocab (0 = none)
 *  92 i32 bos id   96 i32 eos id    100 u32 reserved (0)
 * 104 u64 checksum: 64-bit FNV-1a over the whole file with these 8 bytes zero
 * 112 16 reserved bytes (0)
 * Tensor table: n_tensors entries of 128 bytes:
 *   0 name[64] (NUL-terminated, NUL-padded)  64 u32 type (0 F32, 1 F16,
 *   2 U64, 3 BLOB bytes, 4 Q8_0)  68 u32 flags  72 u32 ndim (1|2)  76 u32 reserved
 *  80 u64 shape[2] (shape[1] = 1 when ndim = 1)  96 u64 offset  104 u64 size
 * 112 16 reserved bytes (0)
 * Data: every tensor at a 64-byte aligned offset inside [data offset, file
 * size), no two overlapping, size = elements × element size (Q8_0: 34 bytes
 * per 32 elements of a row, rows a multiple of 32).
 * Version 2 (this writer): tok_emb and wcls are F16 (the default), Q8_0 or
 * F32; version 1 files have them F32 and are otherwise the same, so they load
 * unchanged (the migration is the version check). The loader keeps F16 and
 * Q8_0 ones in the mapping, which the model then holds (extra_free unmaps).
 * A mixture of scales (--mos, bitlinear.h) adds, for each linear that has
 * one, three F16 tensors after the fixed ones: layers.L.NAME.router (E,in),
 * .g_experts (E,in), .h_experts (E,out), 2 <= E <= 64, all three or none;
 * its g and h entries then hold the experts' means (a uniform router).
 * Files without them load as before; older programs refuse files with them
 * ("unexpected tensor"), so the version stays 2. */
#include "onebit/student.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onebit/bitlinear.h"
#include "base/common.h"
#include "base/pool.h"
#include "base/file.h"

enum { T_F32 = 0, T_F16 = 1, T_U64 = 2, T_BLOB = 3, T_Q8_0 = 4 };
#define HDR_SIZE 128
#define ENT_SIZE 128
#define NAME_LEN 64
#define CKSUM_OFF 104
#define MAX_PIECE 65536

static const size_t type_size[5] = {4, 2, 8, 1, 0};
static const char *const type_name[5] = {"F32", "F16", "U64", "BLOB", "Q8_0"};

/* the file type of a STUDENT_HEAD_* and back */
static uint32_t head_ftype(int head) { return head == STUDENT_HEAD_F16 ? T_F16 : head == STUDENT_HEAD_Q8_0 ? T_Q8_0 : T_F32; }
static int ftype_head(uint32_t t) { return t == T_F16 ? STUDENT_HEAD_F16 : t == T_Q8_0 ? STUDENT_HEAD_Q8_0 : STUDENT_HEAD_F32; }

int student_head_wtype(int head) { return head == STUDENT_HEAD_F16 ? LINEAR_W_F16 : head == STUDENT_HEAD_Q8_0 ? LINEAR_W_Q8_0 : LINEAR_W_F32; }

/* bytes of a (d0, d1) tensor of type t; -1 on overflow or a Q8_0 row that
 * is not whole blocks */
static int tensor_bytes(uint32_t t, uint64_t d0, uint64_t d1, size_t *out)
{
    size_t elems;
    if (ob_mul_size(d0, d1, &elems)) return -1;
    if (t == T_Q8_0) {
        if (d1 % KERN_Q8_0_BLOCK) return -1;
        return ob_mul_size(elems / KERN_Q8_0_BLOCK, sizeof(KernQ8_0), out);
    }
    return ob_mul_size(elems, type_size[t], out);
}

int student_head_parse(const char *name)
{
    if (!strcmp(name, "f16")) return STUDENT_HEAD_F16;
    if (!strcmp(name, "q8_0")) return STUDENT_HEAD_Q8_0;
    if (!strcmp(name, "f32")) return STUDENT_HEAD_F32;
    return -1;
}

const char *student_head_name(int head) { return head == STUDENT_HEAD_F16 ? "f16" : head == STUDENT_HEAD_Q8_0 ? "q8_0" : "f32"; }

/* ---- checksum ------------------------------------------------------------ */

uint64_t student_checksum(const unsigned char *file, size_t n)
{
    static const unsigned char zero[8] = {0};
    if (n < CKSUM_OFF + 8) return file_fnv1a(FILE_FNV_INIT, file, n);
    uint64_t h = file_fnv1a(FILE_FNV_INIT, file, CKSUM_OFF);
    h = file_fnv1a(h, zero, 8);
    /* a mapped file's pages are dropped as they are hashed, so validating
     * a file of gigabytes costs page cache, not the process's memory (on
     * other memory file_map_fnv1a is file_fnv1a) */
    return file_map_fnv1a(h, file + CKSUM_OFF + 8, n - CKSUM_OFF - 8);
}


/* ---- the expected tensors of a config ------------------------------------- */

typedef struct {
    char name[NAME_LEN];
    uint32_t type, flags, ndim;
    uint64_t shape[2], offset, size;
} Entry;

static void set_entry(Entry *e, const char *name, uint32_t type, uint64_t d0, uint64_t d1, int ndim)
{
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->type = type;
    e->ndim = (uint32_t)ndim;
    e->shape[0] = d0;
    e->shape[1] = ndim == 2 ? d1 : 1;
    size_t b = 0;
    tensor_bytes(type, d0, e->shape[1], &b); /* bounded by model_config_check */
    e->size = b;
}

/* the fixed part of the table for cfg: FP tensors then per linear sign/g/h,
 * with the embedding and the head of file types emb and cls. Returns the
 * count; e may be NULL to count. */
static int expected_entries(const ModelConfig *c, uint32_t emb, uint32_t cls, Entry *e)
{
    int n = 0;
    uint64_t V = c->vocab_size, C = c->dim, L = c->n_layers;
    if (e) set_entry(&e[n], "tok_emb", emb, V, C, 2);
    n++;
    if (e) set_entry(&e[n], "rms_att", T_F32, L, C, 2);
    n++;
    if (e) set_entry(&e[n], "rms_ffn", T_F32, L, C, 2);
    n++;
    if (e) set_entry(&e[n], "rms_final", T_F32, C, 1, 1);
    n++;
    if (!c->shared_classifier) {
        if (e) set_entry(&e[n], "wcls", cls, V, C, 2);
        n++;
    }
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < LIN_PER_LAYER; k++) {
            int out, in;
            model_lin_shape(c, k, &out, &in);
            if (e) {
                char nm[NAME_LEN];
                snprintf(nm, sizeof nm, "layers.%d.%s.sign", l, model_lin_names[k]);
                set_entry(&e[n], nm, T_U64, out, (in + 63) / 64, 2);
                snprintf(nm, sizeof nm, "layers.%d.%s.g", l, model_lin_names[k]);
                set_entry(&e[n + 1], nm, T_F16, in, 1, 1);
                snprintf(nm, sizeof nm, "layers.%d.%s.h", l, model_lin_names[k]);
                set_entry(&e[n + 2], nm, T_F16, out, 1, 1);
            }
            n += 3;
        }
    return n;
}

static uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

/* the names of a mixture of scales' tensors, the suffixes of
 * layers.L.NAME., in the order of mos_entries */
static const char *const mos_kind[3] = {"router", "g_experts", "h_experts"};

/* the three F16 entries of a mixture of E scales of linear NAME of layer
 * l: router (E,in), g_experts (E,in), h_experts (E,out) */
static void mos_entries(Entry *e, int l, const char *name, int E, int in, int out)
{
    char nm[NAME_LEN];
    for (int k = 0; k < 3; k++) {
        snprintf(nm, sizeof nm, "layers.%d.%s.%s", l, name, mos_kind[k]);
        set_entry(&e[k], nm, T_F16, (uint64_t)E, (uint64_t)(k == 2 ? out : in), 2);
    }
}

/* ---- writer ---------------------------------------------------------------- */

typedef struct {
    FileAtomic *f;
    uint64_t pos, hash;
    unsigned char buf[1 << 16];
    size_t n;
    int failed;
    char *err;
} Writer;

static void w_flush(Writer *w)
{
    if (!w->failed && w->n && file_atomic_write(w->f, w->buf, w->n, w->err)) w->failed = 1;
    w->n = 0;
}

static void w_bytes(Writer *w, const void *p, size_t n)
{
    const unsigned char *s = p;
    w->hash = file_fnv1a(w->hash, s, n);
    w->pos += n;
    while (n > 0 && !w->failed) {
        size_t k = sizeof w->buf - w->n;
        if (k > n) k = n;
        memcpy(w->buf + w->n, s, k);
        w->n += k;
        s += k;
        n -= k;
        if (w->n == sizeof w->buf) w_flush(w);
    }
}

static void w_pad(Writer *w, uint64_t to)
{
    static const unsigned char z[64] = {0};
    while (w->pos < to) w_bytes(w, z, to - w->pos > 64 ? 64 : (size_t)(to - w->pos));
}

static void w_f32(Writer *w, const float *x, size_t n)
{
    unsigned char b[4];
    for (size_t i = 0; i < n; i++) { file_put_f32le(b, x[i]); w_bytes(w, b, 4); }
}

static int fp16_ok(float x, uint16_t *out)
{
    if (!isfinite(x)) return 0;
    uint16_t h = ob_fp32_to_fp16(x);
    if ((h & 0x7c00) == 0x7c00) return 0;
    *out = h;
    return 1;
}

/* v (n) = the mean of the E rows of M (E, n) as FP16 stores them (so that
 * a loaded student writes the same file again) */
static void expert_mean(const float *M, int E, int n, float *v)
{
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int e = 0; e < E; e++) s += ob_fp16_to_fp32(ob_fp32_to_fp16(M[(size_t)e * n + i]));
        v[i] = (float)(s / E);
    }
}

/* -1 with err when a value of linear i's g, h (without MoS) or experts
 * and router (with) is not a finite FP16 value or its MoS is incomplete */
static int lin_not_fp16(const char *path, const ModelConfig *c, int i, const StudentLinearSrc *s, char *err)
{
    int out, in, E = s->mos;
    model_lin_shape(c, i % LIN_PER_LAYER, &out, &in);
    const char *nm = model_lin_names[i % LIN_PER_LAYER];
    if (E && (E < 2 || E > BITLINEAR_MOS_MAX || !s->router || !s->g_experts || !s->h_experts)) {
        ob_seterr(err, "%s: layers.%d.%s: a mixture of scales needs 2 to %d experts, a router and both experts", path,
                  i / LIN_PER_LAYER, nm, BITLINEAR_MOS_MAX);
        return -1;
    }
    const float *v[3] = {E ? s->router : s->g, E ? s->g_experts : s->h, E ? s->h_experts : NULL};
    const char *what[3] = {E ? "router" : "g", E ? "g_experts" : "h", "h_experts"};
    size_t len[3] = {(size_t)(E ? E : 1) * in, E ? (size_t)E * in : (size_t)out, (size_t)E * out};
    uint16_t hv;
    for (int k = 0; k < 3; k++)
        for (size_t j = 0; v[k] && j < len[k]; j++)
            if (!fp16_ok(v[k][j], &hv)) {
                ob_seterr(err, "%s: layers.%d.%s %s[%zu] = %g is not a finite FP16 value", path, i / LIN_PER_LAYER, nm,
                          what[k], j, v[k][j]);
                return -1;
            }
    return 0;
}

/* an FP32 matrix of n values as file type t (F32, F16 or Q8_0; fp16_ok
 * checked by the caller for F16) */
static void w_mat(Writer *w, const float *x, size_t n, uint32_t t)
{
    if (t == T_F32) { w_f32(w, x, n); return; }
    if (t == T_F16) {
        unsigned char b[2];
        for (size_t i = 0; i < n; i++) {
            uint16_t v = ob_fp32_to_fp16(x[i]);
            b[0] = v & 0xff;
            b[1] = v >> 8;
            w_bytes(w, b, 2);
        }
        return;
    }
    KernQ8_0 blk;
    for (size_t i = 0; i < n; i += KERN_Q8_0_BLOCK) {
        kern_q8_0_quantize(x + i, &blk, KERN_Q8_0_BLOCK);
        unsigned char b[sizeof blk];
        b[0] = blk.d & 0xff;
        b[1] = blk.d >> 8;
        memcpy(b + 2, blk.q, KERN_Q8_0_BLOCK);
        w_bytes(w, b, sizeof b);
    }
}

/* the first of x's n values that FP16 cannot hold, or -1 */
/* rows [r0, r0 + n) of the embedding (head 0) or the output head (1) of m
 * in FP32: in place when they are, else converted into buf */
static const float *vocab_rows(const Model *m, int head, size_t r0, size_t n, float *buf)
{
    int type = head ? m->cls_type : m->emb_type;
    const void *w = head ? m->cls_w : m->emb_w;
    size_t C = (size_t)m->cfg.dim;
    if (type == LINEAR_W_F32) return (const float *)w + r0 * C;
    linear_w_rows_f32(type, w, r0, n, C, buf);
    return buf;
}

/* rows of the embedding / head converted per step (a bounded scratch) */
#define VOCAB_ROWS 256

/* the index of the first element of the embedding / head that is not a
 * finite FP16 value (its value in *bad), or -1 */
static long vocab_not_fp16(const Model *m, int head, float *buf, float *bad)
{
    size_t V = (size_t)m->cfg.vocab_size, C = (size_t)m->cfg.dim;
    uint16_t h;
    for (size_t r0 = 0; r0 < V; r0 += VOCAB_ROWS) {
        size_t n = V - r0 < VOCAB_ROWS ? V - r0 : VOCAB_ROWS;
        const float *x = vocab_rows(m, head, r0, n, buf);
        for (size_t i = 0; i < n * C; i++)
            if (!fp16_ok(x[i], &h)) { *bad = x[i]; return (long)(r0 * C + i); }
    }
    return -1;
}

/* the embedding / head as file type t, converted VOCAB_ROWS rows at a time
 * (a mapped teacher's or a lean student's never whole in FP32) */
static void w_vocab(Writer *w, const Model *m, int head, uint32_t t, float *buf)
{
    size_t V = (size_t)m->cfg.vocab_size, C = (size_t)m->cfg.dim;
    for (size_t r0 = 0; r0 < V; r0 += VOCAB_ROWS) {
        size_t n = V - r0 < VOCAB_ROWS ? V - r0 : VOCAB_ROWS;
        w_mat(w, vocab_rows(m, head, r0, n, buf), n * C, t);
    }
}

int student_write(const char *path, const Model *teacher, const Tokenizer *tok,
                  const StudentLinearSrc *lin, const char *meta_json, char *err)
{
    return student_write_ex(path, teacher, tok, lin, meta_json, STUDENT_HEAD_DEFAULT, err);
}

int student_write_ex(const char *path, const Model *teacher, const Tokenizer *tok, const StudentLinearSrc *lin,
                     const char *meta_json, int head, char *err)
{
    const ModelConfig *c = &teacher->cfg;
    if (llama_config_check(c, err)) return -1;
    const uint32_t ht = head_ftype(head);
    if (ht == T_Q8_0 && c->dim % KERN_Q8_0_BLOCK) {
        ob_seterr(err, "%s: a Q8_0 embedding and head need a dimension that is a multiple of %d (this one is %d)", path,
                  KERN_Q8_0_BLOCK, c->dim);
        return -1;
    }
    if (ht == T_F16) {
        float *buf = ob_malloc((size_t)VOCAB_ROWS * c->dim * sizeof(float)), bad = 0;
        long i = vocab_not_fp16(teacher, 0, buf, &bad), j = c->shared_classifier || i >= 0 ? -1 : vocab_not_fp16(teacher, 1, buf, &bad);
        free(buf);
        if (i >= 0 || j >= 0) {
            ob_seterr(err, "%s: %s[%ld] = %g is not a finite FP16 value (write the head as f32 or q8_0)", path,
                      i >= 0 ? "tok_emb" : "wcls", i >= 0 ? i : j, bad);
            return -1;
        }
    }
    if (tok && tok->vocab_size != c->vocab_size) {
        ob_seterr(err, "%s: tokenizer has %d tokens, the model %d", path, tok->vocab_size, c->vocab_size);
        return -1;
    }
    int nlin = c->n_layers * LIN_PER_LAYER, nmos = 0;
    /* validate the sources before creating anything */
    for (int i = 0; i < nlin; i++) {
        if ((!lin[i].w && !lin[i].bits) || (!lin[i].mos && (!lin[i].g || !lin[i].h))) {
            ob_seterr(err, "%s: linear %d has no weights", path, i);
            return -1;
        }
        if (lin_not_fp16(path, c, i, &lin[i], err)) return -1;
        nmos += lin[i].mos != 0;
    }
    int nfix = expected_entries(c, ht, ht, NULL), n = nfix + 3 * nmos + (tok ? 2 : 0) + (meta_json ? 1 : 0);
    Entry *e = ob_calloc((size_t)n, sizeof *e);
    expected_entries(c, ht, ht, e);
    for (int i = 0; i < nlin; i++) e[nfix - 3 * nlin + 3 * i].flags = lin[i].norm ? 1 : 0;
    /* a mixture of scales: the experts after the fixed tensors */
    for (int i = 0, k = nfix; i < nlin; i++) {
        if (!lin[i].mos) continue;
        int out, in;
        model_lin_shape(c, i % LIN_PER_LAYER, &out, &in);
        mos_entries(&e[k], i / LIN_PER_LAYER, model_lin_names[i % LIN_PER_LAYER], lin[i].mos, in, out);
        k += 3;
    }
    uint64_t pieces_size = 0;
    int ktok = nfix + 3 * nmos;
    if (tok) {
        for (int i = 0; i < tok->vocab_size; i++) pieces_size += 4 + (uint64_t)tok->vocab_len[i];
        set_entry(&e[ktok], "tokenizer.pieces", T_BLOB, pieces_size, 1, 1);
        set_entry(&e[ktok + 1], "tokenizer.scores", T_F32, (uint64_t)tok->vocab_size, 1, 1);
    }
    if (meta_json) set_entry(&e[n - 1], "meta", T_BLOB, strlen(meta_json), 1, 1);
    uint64_t data_off = align64(HDR_SIZE + (uint64_t)n * ENT_SIZE), off = data_off;
    for (int i = 0; i < n; i++) {
        e[i].offset = off;
        off = align64(off + e[i].size);
    }
    uint64_t file_size = e[n - 1].offset + e[n - 1].size;

    FileAtomic fa;
    if (file_atomic_open(&fa, path, err)) { free(e); return -1; }
    Writer *w = ob_calloc(1, sizeof *w);
    w->f = &fa;
    w->hash = FILE_FNV_INIT;
    w->err = err;
    unsigned char h[HDR_SIZE] = {0};
    memcpy(h, STUDENT_MAGIC, 8);
    file_put_u32le(h + 8, STUDENT_VERSION);
    file_put_u32le(h + 12, HDR_SIZE);
    int32_t ci[8] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size, c->seq_len};
    for (int i = 0; i < 8; i++) file_put_u32le(h + 16 + 4 * i, (uint32_t)ci[i]);
    file_put_f32le(h + 48, c->rope_theta);
    file_put_f32le(h + 52, c->norm_eps);
    file_put_u32le(h + 56, c->shared_classifier ? 1 : 0);
    file_put_u32le(h + 60, (uint32_t)n);
    file_put_u64le(h + 64, HDR_SIZE);
    file_put_u64le(h + 72, data_off);
    file_put_u64le(h + 80, file_size);
    file_put_u32le(h + 88, tok ? (uint32_t)tok->vocab_size : 0);
    file_put_u32le(h + 92, tok ? (uint32_t)tok->bos_id : 0);
    file_put_u32le(h + 96, tok ? (uint32_t)tok->eos_id : 0);
    w_bytes(w, h, HDR_SIZE); /* checksum field still zero */
    for (int i = 0; i < n; i++) {
        unsigned char b[ENT_SIZE] = {0};
        memcpy(b, e[i].name, NAME_LEN);
        file_put_u32le(b + 64, e[i].type);
        file_put_u32le(b + 68, e[i].flags);
        file_put_u32le(b + 72, e[i].ndim);
        file_put_u64le(b + 80, e[i].shape[0]);
        file_put_u64le(b + 88, e[i].shape[1]);
        file_put_u64le(b + 96, e[i].offset);
        file_put_u64le(b + 104, e[i].size);
        w_bytes(w, b, ENT_SIZE);
    }
    int k = 0;
    size_t C = c->dim, L = c->n_layers;
    float *vbuf = ob_malloc((size_t)VOCAB_ROWS * C * sizeof(float));
    w_pad(w, e[k].offset); w_vocab(w, teacher, 0, ht, vbuf); k++;
    w_pad(w, e[k].offset); w_f32(w, teacher->rms_att, L * C); k++;
    w_pad(w, e[k].offset); w_f32(w, teacher->rms_ffn, L * C); k++;
    w_pad(w, e[k].offset); w_f32(w, teacher->rms_final, C); k++;
    if (!c->shared_classifier) { w_pad(w, e[k].offset); w_vocab(w, teacher, 1, ht, vbuf); k++; }
    free(vbuf);
    /* a mixture of scales: the linear's g and h are its experts' means
     * (what a uniform router gives) */
    float **mean = ob_calloc((size_t)nlin, sizeof *mean);
    for (int i = 0; i < nlin; i++) {
        if (!lin[i].mos) continue;
        int out, in;
        model_lin_shape(c, i % LIN_PER_LAYER, &out, &in);
        mean[i] = ob_malloc((size_t)(in + out) * sizeof(float));
        expert_mean(lin[i].g_experts, lin[i].mos, in, mean[i]);
        expert_mean(lin[i].h_experts, lin[i].mos, out, mean[i] + in);
    }
    for (int i = 0; i < nlin && !w->failed; i++) {
        int out, in;
        model_lin_shape(c, i % LIN_PER_LAYER, &out, &in);
        int wpr = (in + 63) / 64;
        w_pad(w, e[k++].offset);
        unsigned char b[8];
        for (int r = 0; r < out && !lin[i].w; r++)
            for (int q = 0; q < wpr; q++) {
                file_put_u64le(b, lin[i].bits[(size_t)r * wpr + q]);
                w_bytes(w, b, 8);
            }
        for (int r = 0; r < out && lin[i].w; r++) {
            const float *row = lin[i].w + (size_t)r * in;
            for (int q = 0; q < wpr; q++) {
                uint64_t word = 0;
                for (int j = 64 * q; j < in && j < 64 * q + 64; j++)
                    if (!(row[j] < 0)) word |= 1ull << (j & 63);
                file_put_u64le(b, word);
                w_bytes(w, b, 8);
            }
        }
        w_pad(w, e[k++].offset);
        w_mat(w, mean[i] ? mean[i] : lin[i].g, (size_t)in, T_F16);
        w_pad(w, e[k++].offset);
        w_mat(w, mean[i] ? mean[i] + in : lin[i].h, (size_t)out, T_F16);
    }
    for (int i = 0; i < nlin && !w->failed; i++) {
        if (!lin[i].mos) continue;
        int out, in;
        model_lin_shape(c, i % LIN_PER_LAYER, &out, &in);
        size_t ei = (size_t)lin[i].mos * in;
        w_pad(w, e[k++].offset);
        w_mat(w, lin[i].router, ei, T_F16);
        w_pad(w, e[k++].offset);
        w_mat(w, lin[i].g_experts, ei, T_F16);
        w_pad(w, e[k++].offset);
        w_mat(w, lin[i].h_experts, (size_t)lin[i].mos * out, T_F16);
    }
    for (int i = 0; i < nlin; i++) free(mean[i]);
    free(mean);
    if (tok) {
        w_pad(w, e[k++].offset);
        unsigned char b[4];
        for (int i = 0; i < tok->vocab_size; i++) {
            file_put_u32le(b, (uint32_t)tok->vocab_len[i]);
            w_bytes(w, b, 4);
            w_bytes(w, tok->vocab[i], (size_t)tok->vocab_len[i]);
        }
        w_pad(w, e[k++].offset);
        w_f32(w, tok->scores, (size_t)tok->vocab_size);
    }
    if (meta_json) { w_pad(w, e[k].offset); w_bytes(w, meta_json, strlen(meta_json)); }
    w_flush(w);
    int rc = w->failed ? -1 : 0;
    if (!rc) {
        unsigned char b[8];
        file_put_u64le(b, w->hash);
        if (pwrite(fa.fd, b, 8, CKSUM_OFF) != 8) { ob_seterr(err, "%s: write failed: %s", path, strerror(errno)); rc = -1; }
    }
    if (rc) file_atomic_abort(&fa);
    else rc = file_atomic_commit(&fa, err);
    free(w); free(e);
    return rc;
}

/* ---- loader ---------------------------------------------------------------- */

typedef struct {
    const unsigned char *data;
    size_t size;
    ModelConfig cfg;
    int n;
    Entry *e;
    int tok_n, bos, eos;
    const Entry *pieces, *scores, *meta;
    const Entry **lin; /* (L*7*3): sign, g, h */
    const Entry **mos; /* (L*7*3): router, g_experts, h_experts of a mixture of scales, or NULLs */
    int ver;
    const Entry *fp[5]; /* tok_emb, rms_att, rms_ffn, rms_final, wcls */
} Parsed;

static void parsed_free(Parsed *p)
{
    file_unmap((void *)p->data, p->size);
    free(p->e);
    free(p->lin);
    free(p->mos);
    memset(p, 0, sizeof *p);
}

static int cmp_off(const void *a, const void *b)
{
    const Entry *x = *(const Entry *const *)a, *y = *(const Entry *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* the index 3·i + k into Parsed.mos of a tensor named
 * layers.L.NAME.<mos_kind[k]> (linear i = L·7 + NAME's), or -1 */
static int mos_slot(const ModelConfig *c, const char *name)
{
    int l, at = 0;
    char lin[16], kind[16];
    if (sscanf(name, "layers.%d.%15[^.].%15s%n", &l, lin, kind, &at) != 3 || name[at] || l < 0 || l >= c->n_layers)
        return -1;
    for (int j = 0; j < LIN_PER_LAYER; j++)
        for (int k = 0; k < 3; k++)
            if (!strcmp(lin, model_lin_names[j]) && !strcmp(kind, mos_kind[k])) return 3 * (l * LIN_PER_LAYER + j) + k;
    return -1;
}

/* linear i's mixture-of-scales tensors e[3] (router, g_experts, h_experts):
 * none, or all three F16 (E,in), (E,in), (E,out) with one E in
 * 2..BITLINEAR_MOS_MAX; else -1 with err */
static int mos_bad(const char *path, const ModelConfig *c, int i, const Entry *const *e, char *err)
{
    int out, in, l = i / LIN_PER_LAYER;
    model_lin_shape(c, i % LIN_PER_LAYER, &out, &in);
    const char *nm = model_lin_names[i % LIN_PER_LAYER];
    if (!e[0] && !e[1] && !e[2]) return 0;
    for (int k = 0; k < 3; k++)
        if (!e[k]) {
            ob_seterr(err, "%s: layers.%d.%s has a mixture of scales without its %s tensor (router, g_experts and h_experts go together)",
                      path, l, nm, mos_kind[k]);
            return -1;
        }
    uint64_t E = e[0]->shape[0];
    for (int k = 0; k < 3; k++) {
        uint64_t cols = k == 2 ? (uint64_t)out : (uint64_t)in;
        if (e[k]->type != T_F16 || e[k]->ndim != 2 || e[k]->shape[0] != E || e[k]->shape[1] != cols || E < 2 ||
            E > BITLINEAR_MOS_MAX) {
            ob_seterr(err, "%s: tensor %s is %s (%llu, %llu), a mixture of %llu scales needs F16 (%llu, %llu) with 2 to %d experts",
                      path, e[k]->name, type_name[e[k]->type], (unsigned long long)e[k]->shape[0],
                      (unsigned long long)e[k]->shape[1], (unsigned long long)E, (unsigned long long)E,
                      (unsigned long long)cols, BITLINEAR_MOS_MAX);
            return -1;
        }
    }
    return 0;
}

/* -1 with err set when got is not the checksum the file's header says */
static int checksum_err(const Parsed *p, uint64_t got, const char *path, char *err)
{
    uint64_t want = file_get_u64le(p->data + CKSUM_OFF);
    if (want == got) return 0;
    ob_seterr(err, "%s: checksum mismatch (file says %016llx, contents give %016llx): the file is corrupt", path,
              (unsigned long long)want, (unsigned long long)got);
    return -1;
}

/* verify: also the whole file's checksum (student_load checks it itself,
 * beside the layers' build: load_checksum) */
static int parse(Parsed *p, const char *path, int verify, char *err)
{
    memset(p, 0, sizeof *p);
    void *map;
    size_t size;
    if (file_map(path, &map, &size, err)) return -1;
    if (size < HDR_SIZE) {
        ob_seterr(err, "%s: truncated: %zu bytes, a .onebit header alone is %d", path, size, HDR_SIZE);
        file_unmap(map, size);
        return -1;
    }
    p->data = map;
    p->size = size;
    const unsigned char *h = p->data;
    if (memcmp(h, STUDENT_MAGIC, 8) != 0) { ob_seterr(err, "%s: not a .onebit student (bad magic)", path); goto fail; }
    uint32_t ver = file_get_u32le(h + 8);
    if (ver != 1 && ver != STUDENT_VERSION) { ob_seterr(err, "%s: unsupported .onebit version %u (this program reads %d)", path, ver, STUDENT_VERSION); goto fail; }
    if (file_get_u32le(h + 12) != HDR_SIZE) { ob_seterr(err, "%s: bad header size %u", path, file_get_u32le(h + 12)); goto fail; }
    uint64_t fsize = file_get_u64le(h + 80);
    if (fsize != p->size) {
        ob_seterr(err, "%s: %s: header says %llu bytes, the file has %zu", path, fsize > p->size ? "truncated" : "trailing data",
                  (unsigned long long)fsize, p->size);
        goto fail;
    }
    ModelConfig *c = &p->cfg;
    int32_t ci[8];
    for (int i = 0; i < 8; i++) ci[i] = (int32_t)file_get_u32le(h + 16 + 4 * i);
    c->dim = ci[0]; c->hidden_dim = ci[1]; c->n_layers = ci[2]; c->n_heads = ci[3];
    c->n_kv_heads = ci[4]; c->head_dim = ci[5]; c->vocab_size = ci[6]; c->seq_len = ci[7];
    c->rope_theta = file_get_f32le(h + 48);
    c->norm_eps = file_get_f32le(h + 52);
    uint32_t shared = file_get_u32le(h + 56);
    if (shared > 1) { ob_seterr(err, "%s: bad shared_classifier flag %u", path, shared); goto fail; }
    c->shared_classifier = (int)shared;
    char why[OB_ERRLEN];
    if (llama_config_check(c, why)) { ob_seterr(err, "%s: bad model config: %s", path, why); goto fail; }
    for (int i = 100; i < 104; i++) if (h[i]) { ob_seterr(err, "%s: reserved header bytes are not zero", path); goto fail; }
    for (int i = 112; i < HDR_SIZE; i++) if (h[i]) { ob_seterr(err, "%s: reserved header bytes are not zero", path); goto fail; }
    uint32_t n = file_get_u32le(h + 60);
    uint64_t toff = file_get_u64le(h + 64), doff = file_get_u64le(h + 72);
    int nfix = expected_entries(c, T_F32, T_F32, NULL), nmax = nfix + 3 + 3 * c->n_layers * LIN_PER_LAYER;
    if (n < (uint32_t)nfix || n > (uint32_t)nmax) {
        ob_seterr(err, "%s: %u tensors, the config needs %d (+ up to %d optional)", path, n, nfix, nmax - nfix);
        goto fail;
    }
    if (toff != HDR_SIZE) { ob_seterr(err, "%s: tensor table at offset %llu, expected %d", path, (unsigned long long)toff, HDR_SIZE); goto fail; }
    uint64_t tend = HDR_SIZE + (uint64_t)n * ENT_SIZE;
    if (tend > p->size) { ob_seterr(err, "%s: truncated: the tensor table (%u entries) ends past the end of the file", path, n); goto fail; }
    if (doff != align64(tend)) { ob_seterr(err, "%s: data offset %llu, expected %llu", path, (unsigned long long)doff, (unsigned long long)align64(tend)); goto fail; }
    int32_t tn = (int32_t)file_get_u32le(h + 88), bos = (int32_t)file_get_u32le(h + 92), eos = (int32_t)file_get_u32le(h + 96);
    if (tn != 0 && tn != c->vocab_size) { ob_seterr(err, "%s: tokenizer has %d tokens, the model %d", path, tn, c->vocab_size); goto fail; }
    if (tn && (bos < 0 || bos >= tn || eos < 0 || eos >= tn)) { ob_seterr(err, "%s: bad bos/eos ids %d/%d", path, bos, eos); goto fail; }
    p->tok_n = tn; p->bos = bos; p->eos = eos;
    p->n = (int)n;
    p->e = ob_calloc(n, sizeof(Entry));
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *b = p->data + HDR_SIZE + (size_t)i * ENT_SIZE;
        Entry *e = &p->e[i];
        if (!memchr(b, 0, NAME_LEN)) { ob_seterr(err, "%s: tensor %u: name is not NUL-terminated", path, i); goto fail; }
        memcpy(e->name, b, NAME_LEN);
        for (int j = (int)strlen(e->name); j < NAME_LEN; j++)
            if (b[j]) { ob_seterr(err, "%s: tensor %u (%s): name padding is not zero", path, i, e->name); goto fail; }
        e->type = file_get_u32le(b + 64); e->flags = file_get_u32le(b + 68); e->ndim = file_get_u32le(b + 72);
        e->shape[0] = file_get_u64le(b + 80); e->shape[1] = file_get_u64le(b + 88);
        e->offset = file_get_u64le(b + 96); e->size = file_get_u64le(b + 104);
        if (file_get_u32le(b + 76)) { ob_seterr(err, "%s: tensor %s: reserved field is not zero", path, e->name); goto fail; }
        for (int j = 112; j < ENT_SIZE; j++) if (b[j]) { ob_seterr(err, "%s: tensor %s: reserved bytes are not zero", path, e->name); goto fail; }
        if (e->type > T_Q8_0) { ob_seterr(err, "%s: tensor %s: unknown type %u", path, e->name, e->type); goto fail; }
        if (e->ndim < 1 || e->ndim > 2 || (e->ndim == 1 && e->shape[1] != 1)) { ob_seterr(err, "%s: tensor %s: bad rank %u", path, e->name, e->ndim); goto fail; }
        size_t bytes;
        if (tensor_bytes(e->type, e->shape[0], e->shape[1], &bytes) || bytes != e->size) {
            ob_seterr(err, "%s: tensor %s: size %llu does not match its shape", path, e->name, (unsigned long long)e->size);
            goto fail;
        }
        if (e->offset % 64) { ob_seterr(err, "%s: tensor %s: offset %llu is not 64-byte aligned", path, e->name, (unsigned long long)e->offset); goto fail; }
        if (e->offset < doff || e->offset > p->size || e->size > p->size - e->offset) {
            ob_seterr(err, "%s: tensor %s: bytes [%llu, +%llu) lie outside the data area [%llu, %zu)", path, e->name,
                      (unsigned long long)e->offset, (unsigned long long)e->size, (unsigned long long)doff, p->size);
            goto fail;
        }
        if (e->flags && e->type != T_U64) { ob_seterr(err, "%s: tensor %s: unexpected flags %u", path, e->name, e->flags); goto fail; }
        if (e->flags > 1) { ob_seterr(err, "%s: tensor %s: unknown flags %u", path, e->name, e->flags); goto fail; }
    }
    /* no overlaps */
    const Entry **ord = ob_malloc(n * sizeof *ord);
    for (uint32_t i = 0; i < n; i++) ord[i] = &p->e[i];
    qsort(ord, n, sizeof *ord, cmp_off);
    for (uint32_t i = 1; i < n; i++)
        if (ord[i - 1]->offset + ord[i - 1]->size > ord[i]->offset) {
            ob_seterr(err, "%s: tensors %s and %s overlap", path, ord[i - 1]->name, ord[i]->name);
            free(ord);
            goto fail;
        }
    free(ord);
    /* match names against what the config needs */
    /* version 2: the embedding and the head in the type the file says, if
     * F32, F16 or Q8_0 (then checked like every other entry below) */
    uint32_t emb_t = T_F32, cls_t = T_F32;
    for (int i = 0; ver >= 2 && i < p->n; i++) {
        uint32_t t = p->e[i].type;
        if (t != T_F32 && t != T_F16 && t != T_Q8_0) continue;
        if (!strcmp(p->e[i].name, "tok_emb")) emb_t = t;
        if (!strcmp(p->e[i].name, "wcls")) cls_t = t;
    }
    p->ver = (int)ver;
    Entry *want = ob_calloc((size_t)nfix, sizeof *want);
    expected_entries(c, emb_t, cls_t, want);
    int nlin = c->n_layers * LIN_PER_LAYER;
    p->lin = ob_calloc((size_t)nlin * 3, sizeof *p->lin);
    p->mos = ob_calloc((size_t)nlin * 3, sizeof *p->mos);
    const Entry **slot = ob_calloc((size_t)nfix, sizeof *slot);
    int ok = 1;
    for (int i = 0; i < p->n && ok; i++) {
        Entry *e = &p->e[i];
        const Entry **dst = NULL;
        const Entry *w = NULL;
        int j;
        if (!strcmp(e->name, "tokenizer.pieces")) dst = &p->pieces;
        else if (!strcmp(e->name, "tokenizer.scores")) dst = &p->scores;
        else if (!strcmp(e->name, "meta")) dst = &p->meta;
        else if ((j = mos_slot(c, e->name)) >= 0) dst = &p->mos[j];
        else
            for (j = 0; j < nfix; j++)
                if (!strcmp(e->name, want[j].name)) { dst = &slot[j]; w = &want[j]; break; }
        if (!dst) { ob_seterr(err, "%s: unexpected tensor '%s'", path, e->name); ok = 0; break; }
        if (*dst) { ob_seterr(err, "%s: tensor '%s' appears twice", path, e->name); ok = 0; break; }
        *dst = e;
        if (w && (w->type != e->type || w->ndim != e->ndim || w->shape[0] != e->shape[0] || w->shape[1] != e->shape[1])) {
            ob_seterr(err, "%s: tensor %s is %s (%llu, %llu), the config needs %s (%llu, %llu)", path, e->name,
                      type_name[e->type], (unsigned long long)e->shape[0], (unsigned long long)e->shape[1], type_name[w->type],
                      (unsigned long long)w->shape[0], (unsigned long long)w->shape[1]);
            ok = 0;
        }
    }
    for (int j = 0; j < nfix && ok; j++)
        if (!slot[j]) { ob_seterr(err, "%s: missing tensor %s", path, want[j].name); ok = 0; }
    for (int i = 0; i < nlin && ok; i++) ok = !mos_bad(path, c, i, p->mos + 3 * i, err);
    if (ok && (p->pieces || p->scores || tn) && !(p->pieces && p->scores && tn)) {
        ob_seterr(err, "%s: incomplete tokenizer (pieces, scores and a token count are all needed)", path);
        ok = 0;
    }
    if (ok && p->pieces && (p->pieces->type != T_BLOB || p->pieces->ndim != 1)) { ob_seterr(err, "%s: tokenizer.pieces must be a BLOB", path); ok = 0; }
    if (ok && p->scores && (p->scores->type != T_F32 || p->scores->ndim != 1 || p->scores->shape[0] != (uint64_t)tn)) {
        ob_seterr(err, "%s: tokenizer.scores must be F32 (%d)", path, tn);
        ok = 0;
    }
    if (ok && p->meta && (p->meta->type != T_BLOB || p->meta->ndim != 1)) { ob_seterr(err, "%s: meta must be a BLOB", path); ok = 0; }
    if (ok) {
        int nfp = nfix - 3 * nlin;
        for (int j = 0; j < nfp; j++) p->fp[j] = slot[j];
        for (int j = 0; j < 3 * nlin; j++) p->lin[j] = slot[nfp + j];
    }
    free(want);
    free(slot);
    if (!ok) goto fail;
    if (verify && checksum_err(p, student_checksum(p->data, p->size), path, err)) goto fail;
    return 0;
fail:
    parsed_free(p);
    return -1;
}

/* what a loaded student owns besides its arena: the 1-bit layers and the
 * mapping of its file, where the layers' canonical signs (and an FP16 /
 * Q8_0 embedding and head) stay; NULL for a student built in memory */
typedef struct {
    int n;
    BitLinear **bl;
    void *map;
    size_t map_size;
} StudentExtra;

static void extra_free(void *x)
{
    StudentExtra *s = x;
    if (!s) return;
    for (int i = 0; i < s->n; i++) bitlinear_free(s->bl[i]);
    free(s->bl);
    file_unmap(s->map, s->map_size);
    free(s);
}

int student_set_exec(Model *m, const KernExec *ex, char *err)
{
    if (m->free_extra != extra_free) {
        ob_seterr(err, "not a 1-bit student");
        return -1;
    }
    StudentExtra *s = m->extra;
    if (!bitlinear_set_exec_all(s->bl, s->n, ex, err)) return 0;
    ob_seterr(err, "a forward is running on the student: change its execution context between forwards");
    return -1;
}

const KernExec *student_exec(const Model *m)
{
    if (m->free_extra != extra_free) return NULL;
    const StudentExtra *s = m->extra;
    return s->n ? &s->bl[0]->ex : NULL;
}

static int copy_f32(float *dst, const Parsed *p, const Entry *e, const char *path, char *err)
{
    size_t n = e->size / 4;
    const unsigned char *s = p->data + e->offset;
    for (size_t i = 0; i < n; i++) {
        dst[i] = file_get_f32le(s + 4 * i);
        if (!isfinite(dst[i])) { ob_seterr(err, "%s: tensor %s: element %zu is not finite", path, e->name, i); return -1; }
    }
    return 0;
}

static int copy_f16(float *dst, const Parsed *p, const Entry *e, const char *path, char *err)
{
    size_t n = e->size / 2;
    const unsigned char *s = p->data + e->offset;
    for (size_t i = 0; i < n; i++) {
        uint16_t v = (uint16_t)(s[2 * i] | s[2 * i + 1] << 8);
        if ((v & 0x7c00) == 0x7c00) { ob_seterr(err, "%s: tensor %s: element %zu is not finite", path, e->name, i); return -1; }
        dst[i] = ob_fp16_to_fp32(v);
    }
    return 0;
}

/* an FP16 or Q8_0 embedding / head used in place: every value (scale) finite */
static int check_in_place(const Parsed *p, const Entry *e, const char *path, char *err)
{
    const unsigned char *s = p->data + e->offset;
    size_t step = e->type == T_F16 ? 2 : sizeof(KernQ8_0);
    for (size_t i = 0; i < e->size / step; i++) {
        uint16_t v = (uint16_t)(s[step * i] | s[step * i + 1] << 8);
        if ((v & 0x7c00) == 0x7c00) {
            ob_seterr(err, "%s: tensor %s: %s %zu is not finite", path, e->name, e->type == T_F16 ? "element" : "the scale of block", i);
            return -1;
        }
    }
    file_map_drop(s, e->size); /* only the rows used are touched from now on */
    return 0;
}

static int load_tokenizer(Tokenizer *tok, const Parsed *p, const char *path, char *err)
{
    int n = p->tok_n;
    const unsigned char *s = p->data + p->pieces->offset;
    size_t len = p->pieces->size, off = 0;
    char **pieces = ob_calloc((size_t)n, sizeof(char *));
    float *scores = ob_malloc((size_t)n * sizeof(float));
    int rc = -1;
    for (int i = 0; i < n; i++) {
        if (len - off < 4) { ob_seterr(err, "%s: tokenizer.pieces truncated at token %d of %d", path, i, n); goto out; }
        uint32_t l = file_get_u32le(s + off);
        off += 4;
        if (l > MAX_PIECE || l > len - off) { ob_seterr(err, "%s: tokenizer piece %d has length %u past the end of tokenizer.pieces", path, i, l); goto out; }
        if (memchr(s + off, 0, l)) { ob_seterr(err, "%s: tokenizer piece %d contains a NUL byte", path, i); goto out; }
        pieces[i] = ob_malloc((size_t)l + 1);
        memcpy(pieces[i], s + off, l);
        pieces[i][l] = 0;
        off += l;
    }
    if (off != len) { ob_seterr(err, "%s: tokenizer.pieces has %zu bytes after the last piece", path, len - off); goto out; }
    if (copy_f32(scores, p, p->scores, path, err)) goto out;
    char why[OB_ERRLEN];
    if (tok_init(tok, n, (const char *const *)pieces, scores, p->bos, p->eos, why)) {
        ob_seterr(err, "%s: tokenizer: %s", path, why);
        goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < n; i++) free(pieces[i]);
    free(pieces);
    free(scores);
    return rc;
}

/* a mixture of scales from its checked entries e[3] into bl */
static int load_mos(BitLinear *bl, const Parsed *p, const Entry *const *e, const char *path, char *err)
{
    int E = (int)e[0]->shape[0];
    size_t ni = (size_t)E * bl->in;
    float *v = ob_malloc((2 * ni + (size_t)E * bl->out) * sizeof(float));
    int rc = copy_f16(v, p, e[0], path, err) || copy_f16(v + ni, p, e[1], path, err) || copy_f16(v + 2 * ni, p, e[2], path, err)
                 ? -1 : bitlinear_set_mos(bl, E, v, v + ni, v + 2 * ni);
    free(v);
    return rc;
}

int student_new(Model *m, const ModelConfig *c, char *err) { return student_new_lean(m, c, LINEAR_W_F32, LINEAR_W_F32, err); }

/* a student of config c without its 1-bit layers yet (student_add) */
static StudentExtra *student_alloc(Model *m, const ModelConfig *c, int emb_type, int cls_type, char *err)
{
    if (model_alloc_lean(m, c, emb_type, cls_type, err)) return NULL;
    StudentExtra *x = ob_calloc(1, sizeof *x);
    x->bl = ob_calloc((size_t)c->n_layers * LIN_PER_LAYER, sizeof *x->bl);
    m->extra = x;
    m->free_extra = extra_free;
    return x;
}

/* the next 1-bit layer of m (LIN_ order) */
static void student_add(Model *m, StudentExtra *x, BitLinear *bl)
{
    m->lin[x->n] = bitlinear_linear(bl);
    x->bl[x->n++] = bl;
}

int student_new_lean(Model *m, const ModelConfig *c, int emb_type, int cls_type, char *err)
{
    StudentExtra *x = student_alloc(m, c, emb_type, cls_type, err);
    if (!x) return -1;
    for (int i = 0; i < c->n_layers * LIN_PER_LAYER; i++) {
        int out, in;
        model_lin_shape(c, i % LIN_PER_LAYER, &out, &in);
        student_add(m, x, bitlinear_new(out, in));
    }
    return 0;
}

BitLinear *student_linear(const Model *m, int i)
{
    if (m->free_extra != extra_free) return NULL;
    const StudentExtra *x = m->extra;
    return i >= 0 && i < x->n ? x->bl[i] : NULL;
}

int student_sources(const Model *m, StudentLinearSrc *lin, char *err)
{
    int nlin = m->cfg.n_layers * LIN_PER_LAYER;
    for (int i = 0; i < nlin; i++) {
        const BitLinear *bl = student_linear(m, i);
        if (!bl) { ob_seterr(err, "not a 1-bit student"); return -1; }
        lin[i] = (StudentLinearSrc){.g = bl->g, .h = bl->h, .norm = bl->norm, .bits = bl->bits, .mos = bl->mos,
                                    .router = bl->router, .g_experts = bl->g_experts, .h_experts = bl->h_experts};
    }
    return 0;
}

/* the whole file's checksum on a thread of its own while student_load
 * builds the layers: FNV-1a goes a byte at a time (about 1 GB/s), and the
 * build (the kernels' layouts) is the other half of a load. The 7B
 * student (1.34 GB, 2 threads, alternated): 3.3-4.3 s -> 1.63-1.79 s */
typedef struct {
    const unsigned char *data;
    size_t size;
    uint64_t got;
} LoadChecksum;

static void *load_checksum(void *arg)
{
    LoadChecksum *c = arg;
    c->got = student_checksum(c->data, c->size);
    return NULL;
}

int student_load(Model *m, Tokenizer *tok, const char *path, char *err)
{
    memset(m, 0, sizeof *m);
    if (tok) memset(tok, 0, sizeof *tok);
    Parsed p;
    if (parse(&p, path, 0, err)) return -1;
    if (tok && !p.tok_n) { ob_seterr(err, "%s: the student has no tokenizer (pass --tokenizer)", path); parsed_free(&p); return -1; }
    /* the checksum beside the build; it joins before anything is freed or
     * returned, and a mismatch is the error whatever else failed */
    LoadChecksum ck = {p.data, p.size, 0};
    pthread_t ck_thread;
    int ck_threaded = pthread_create(&ck_thread, NULL, load_checksum, &ck) == 0;
    if (!ck_threaded) load_checksum(&ck);
    const ModelConfig *c = &p.cfg;
    int emb_h = ftype_head(p.fp[0]->type), cls_h = c->shared_classifier ? emb_h : ftype_head(p.fp[4]->type);
    StudentExtra *x = student_alloc(m, c, student_head_wtype(emb_h), student_head_wtype(cls_h), err);
    if (!x) {
        if (ck_threaded) pthread_join(ck_thread, NULL);
        checksum_err(&p, ck.got, path, err);
        parsed_free(&p);
        return -1;
    }
    float *fpdst[5] = {m->tok_emb, m->rms_att, m->rms_ffn, m->rms_final, m->wcls};
    int nfp = c->shared_classifier ? 4 : 5;
    int nlin = c->n_layers * LIN_PER_LAYER, rc = -1;
    /* the model keeps the mapping: its signs (and an FP16 / Q8_0 embedding
     * and head) stay there */
    x->map = (void *)p.data;
    x->map_size = p.size;
    for (int j = 0; j < nfp; j++) {
        if (fpdst[j]) {
            if (copy_f32(fpdst[j], &p, p.fp[j], path, err)) goto fail;
            continue;
        }
        /* FP16 / Q8_0 embedding or head: used where it lies in the mapping */
        if (check_in_place(&p, p.fp[j], path, err)) goto fail;
        if (j == 0) m->emb_w = p.data + p.fp[j]->offset;
        else m->cls_w = p.data + p.fp[j]->offset;
    }
    if (c->shared_classifier) m->cls_w = m->emb_w;
    /* only the rows looked up stay resident (model_embed drops the rest);
     * a shared head reads the whole table at every token anyway */
    else m->emb_mapped = !fpdst[0];
    for (int i = 0; i < nlin; i++) {
        int out, in;
        model_lin_shape(c, i % LIN_PER_LAYER, &out, &in);
        const Entry *es = p.lin[3 * i], *eg = p.lin[3 * i + 1], *eh = p.lin[3 * i + 2];
        const uint64_t *words = (const uint64_t *)(p.data + es->offset); /* 64-byte aligned in a page-aligned map */
        int wpr = (in + 63) / 64, tail = in & 63;
        if (tail)
            for (int r = 0; r < out; r++)
                if (words[(size_t)r * wpr + wpr - 1] >> tail) {
                    ob_seterr(err, "%s: tensor %s: padding bits of row %d are not zero", path, es->name, r);
                    goto fail;
                }
        /* one copy of the signs, also while loading: the layer's signs stay
         * in the mapping, the kernel's layout (if any) is built from them
         * and their pages dropped (bitlinear_new_mapped) */
        BitLinear *bl = bitlinear_new_mapped(out, in, words);
        student_add(m, x, bl);
        if (copy_f16(bl->g, &p, eg, path, err) || copy_f16(bl->h, &p, eh, path, err)) goto fail;
        bl->norm = (int)(es->flags & 1);
        if (p.mos[3 * i] && load_mos(bl, &p, p.mos + 3 * i, path, err)) goto fail;
    }
    if (tok && load_tokenizer(tok, &p, path, err)) goto fail;
    /* what the load touched besides (g, h, norms, the tokenizer, and the
     * 64 KB the kernel maps around each fault) is not kept either: the
     * head comes back at the first token, the signs when a kernel without
     * kbits reads them */
    if (ck_threaded) pthread_join(ck_thread, NULL);
    ck_threaded = 0;
    if (checksum_err(&p, ck.got, path, err)) goto fail;
    file_map_drop(p.data, p.size);
    rc = 0;
fail: /* the checksum's thread joined (its mismatch is the error), the
       * parse state (the mapping stays with the model: model_free unmaps
       * it, after the layers that point into it), and on failure the
       * half-built model */
    if (ck_threaded) {
        pthread_join(ck_thread, NULL);
        checksum_err(&p, ck.got, path, err);
    }
    p.data = NULL;
    parsed_free(&p);
    if (rc) {
        model_free(m);
        tok_free(tok); /* (zeroed above: also before load_tokenizer) */
    }
    return rc;
}

int student_read_meta(const char *path, char **meta_json, char *err)
{
    Parsed p;
    if (parse(&p, path, 1, err)) return -1;
    size_t n = p.meta ? p.meta->size : 0;
    if (p.meta && memchr(p.data + p.meta->offset, 0, n)) { ob_seterr(err, "%s: metadata contains a NUL byte", path); parsed_free(&p); return -1; }
    char *s = ob_malloc(n + 1);
    if (n) memcpy(s, p.data + p.meta->offset, n);
    s[n] = 0;
    *meta_json = s;
    parsed_free(&p);
    return 0;
}

int student_has_tokenizer(const char *path, char *err)
{
    Parsed p;
    if (parse(&p, path, 0, err)) return -1; /* the header and table only: student_load checks the rest */
    int has = p.tok_n > 0;
    parsed_free(&p);
    return has;
}

/* ---- PTQ ----------------------------------------------------------------- */

int student_quantize(const Model *teacher, SvidMethod init, int norm, StudentLinearSrc *lin_out, char *err)
{
    int nlin = teacher->cfg.n_layers * LIN_PER_LAYER;
    memset(lin_out, 0, (size_t)nlin * sizeof *lin_out);
    float **h = ob_malloc((size_t)nlin * sizeof *h), **g = ob_malloc((size_t)nlin * sizeof *g);
    for (int i = 0; i < nlin; i++) {
        const Linear *L = &teacher->lin[i];
        g[i] = ob_malloc((size_t)L->in * sizeof(float));
        h[i] = ob_malloc((size_t)L->out * sizeof(float));
        lin_out[i] = (StudentLinearSrc){.w = L->w, .g = g[i], .h = h[i], .norm = norm};
    }
    /* the linears are independent: one worker per CPU, each takes the next */
    int rc = svid_model_rank1(teacher, init, pool_default_threads(), h, g, err);
    free(h);
    free(g);
    /* a mapped teacher: the signs of each matrix, converted one at a time */
    for (int i = 0; i < nlin && !rc; i++) {
        const Linear *L = &teacher->lin[i];
        if (L->w) continue;
        float *tmp;
        const float *W = model_lin_f32(teacher, i, &tmp);
        lin_out[i].own_bits = ob_malloc((size_t)L->out * ((L->in + 63) / 64) * sizeof(uint64_t));
        bitlinear_signs(W, L->out, L->in, lin_out[i].own_bits);
        lin_out[i].bits = lin_out[i].own_bits;
        free(tmp);
    }
    if (rc) student_src_free(lin_out, nlin);
    return rc;
}

void student_src_free(StudentLinearSrc *lin, int n)
{
    for (int i = 0; i < n; i++) {
        free((void *)lin[i].g);
        free((void *)lin[i].h);
        free(lin[i].own_bits);
        lin[i].g = lin[i].h = NULL;
        lin[i].own_bits = NULL;
    }
}

uint64_t student_onebit_bytes(const ModelConfig *c)
{
    uint64_t fp;
    size_t all;
    model_arena_size(c, 0, &all);
    fp = all;
    uint64_t bits = 0, scales = 0;
    for (int k = 0; k < LIN_PER_LAYER; k++) {
        int out, in;
        model_lin_shape(c, k, &out, &in);
        bits += (uint64_t)out * in;
        scales += (uint64_t)out + in;
    }
    bits *= c->n_layers;
    scales *= c->n_layers;
    return (bits + 7) / 8 + 2 * scales + 2 * fp;
}
