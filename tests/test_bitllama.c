/* test_bitllama.c -- the OneBit authors' checkpoints: a PTQ student of
 * stories260K exported as BitLlamaForCausalLMInf and read back gives the
 * same signs, g, h, logits and greedy tokens; a training checkpoint
 * (BitLlamaForCausalLM: latent FP weights, teacher_model.* keys) written
 * here gives the student of its signs; converting back to .onebit gives
 * the same file; hostile directories (wrong shapes of weight /
 * weight_scale / input_factor, missing tensors, packed widths that are not
 * ceil(in/8), a dense model_type, no tokenizer) fail with clear errors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "format/safetensors.h"
#include "onebit/bitlinear.h"
#include "onebit/bitllama.h"
#include "onebit/open.h"
#include "onebit/student.h"
#include "test.h"

static const char *const proj[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                    "mlp.gate_proj", "mlp.down_proj", "mlp.up_proj"};

/* the embedding (head = 0) or the head of a and b as FP32, equal (a lean
 * student keeps them in FP16 or Q8_0; its checkpoint holds them in FP32) */
static int rows_equal(const Model *a, const Model *b, int head)
{
    size_t C = a->cfg.dim, V = a->cfg.vocab_size;
    float *ra = malloc(V * C * 4), *rb = malloc(V * C * 4);
    linear_w_rows_f32(head ? a->cls_type : a->emb_type, head ? a->cls_w : a->emb_w, 0, V, C, ra);
    linear_w_rows_f32(head ? b->cls_type : b->emb_type, head ? b->cls_w : b->emb_w, 0, V, C, rb);
    int ok = !memcmp(ra, rb, V * C * 4);
    free(ra);
    free(rb);
    return ok;
}

static int same_students(const Model *a, const Model *b, const char *what)
{
    int nlin = a->cfg.n_layers * LIN_PER_LAYER, ok = 1;
    ok &= !memcmp(&a->cfg, &b->cfg, sizeof a->cfg);
    size_t C = a->cfg.dim, V = a->cfg.vocab_size, L = a->cfg.n_layers;
    ok &= rows_equal(a, b, 0) && !memcmp(a->rms_att, b->rms_att, L * C * 4) &&
          !memcmp(a->rms_ffn, b->rms_ffn, L * C * 4) && !memcmp(a->rms_final, b->rms_final, C * 4);
    if (!a->cfg.shared_classifier) ok &= rows_equal(a, b, 1);
    (void)V;
    for (int i = 0; i < nlin && ok; i++) {
        const BitLinear *x = student_linear(a, i), *y = student_linear(b, i);
        ok &= x && y && x->norm == y->norm && !memcmp(x->bits, y->bits, (size_t)x->out * x->words_per_row * 8) &&
              !memcmp(x->g, y->g, (size_t)x->in * 4) && !memcmp(x->h, y->h, (size_t)x->out * 4);
        if (!ok) fprintf(stderr, "%s: linear %d differs\n", what, i);
    }
    CHECK(ok, "%s: the same student (config, FP tensors, signs, g, h)", what);
    return ok;
}

static void same_logits(const Model *a, const Model *b, const char *what)
{
    int T = 12, V = a->cfg.vocab_size, toks[12] = {1, 403, 407, 261, 378, 9, 300, 77, 12, 410, 2, 500};
    for (int i = 0; i < T; i++) toks[i] %= V;
    ModelActs acts;
    char err[OB_ERRLEN];
    if (model_acts_init(&acts, &a->cfg, T) != 0) { CHECK(0, "acts: %s", err); return; }
    float *la = malloc((size_t)T * V * 4), *lb = malloc((size_t)T * V * 4);
    model_forward(a, &acts, toks, T, la, NULL);
    model_forward(b, &acts, toks, T, lb, NULL);
    CHECK(!memcmp(la, lb, (size_t)T * V * 4), "%s: logits identical", what);
    /* greedy continuation with the KV cache */
    ModelState sa, sb;
    model_state_init(&sa, &a->cfg);
    model_state_init(&sb, &b->cfg);
    int ta = 1, tb = 1, same = 1;
    int n = a->cfg.seq_len < 48 ? a->cfg.seq_len : 48;
    for (int pos = 0; pos < n; pos++) {
        float *xa = model_step(a, &sa, ta, pos), *xb = model_step(b, &sb, tb, pos);
        int ba = 0, bb = 0;
        for (int v = 1; v < V; v++) { if (xa[v] > xa[ba]) ba = v; if (xb[v] > xb[bb]) bb = v; }
        same &= ba == bb && !memcmp(xa, xb, (size_t)V * 4);
        ta = ba;
        tb = bb;
    }
    CHECK(same, "%s: %d greedy tokens and their logits identical", what, n);
    model_state_free(&sa);
    model_state_free(&sb);
    model_acts_free(&acts);
    free(la);
    free(lb);
}

static int files_equal(const char *p, const char *q)
{
    char *a, *b, err[OB_ERRLEN];
    size_t na, nb;
    if (ob_read_file(p, &a, &na, err) || ob_read_file(q, &b, &nb, err)) return 0;
    int eq = na == nb && !memcmp(a, b, na);
    free(a);
    free(b);
    return eq;
}

/* ---- directories written by hand -------------------------------------------*/

typedef struct { STWrite *t; char **names; void **bufs; int n, cap; } TList;

static void tl_add(TList *l, const char *name, int dtype, int nd, uint64_t d0, uint64_t d1, void *data)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->t = realloc(l->t, l->cap * sizeof *l->t);
        l->names = realloc(l->names, l->cap * sizeof *l->names);
        l->bufs = realloc(l->bufs, l->cap * sizeof *l->bufs);
    }
    l->names[l->n] = strdup(name);
    l->bufs[l->n] = data;
    l->t[l->n] = (STWrite){l->names[l->n], dtype, nd, {d0, d1}, data};
    l->n++;
}

static void tl_free(TList *l)
{
    for (int i = 0; i < l->n; i++) { free(l->names[i]); free(l->bufs[i]); }
    free(l->t); free(l->names); free(l->bufs);
    memset(l, 0, sizeof *l);
}

/* the tensors of dir/model.safetensors, copied (skip: a name to leave out) */
static void tl_read(TList *l, const char *dir, const char *skip)
{
    char *data, err[OB_ERRLEN];
    size_t n;
    STFile f;
    if (ob_read_file(test_sub(dir, "model.safetensors"), &data, &n, err) || st_parse(&f, data, n, err)) { fprintf(stderr, "%s\n", err); exit(1); }
    for (size_t i = 0; i < f.n; i++) {
        const STTensor *t = &f.t[i];
        if (skip && !strcmp(t->name, skip)) continue;
        void *copy = malloc(t->end - t->begin + 1);
        memcpy(copy, f.base + t->begin, t->end - t->begin);
        tl_add(l, t->name, t->dtype, t->n_dims, t->shape[0], t->n_dims > 1 ? t->shape[1] : 0, copy);
    }
    st_free(&f);
    free(data);
}

static STWrite *tl_find(TList *l, const char *name)
{
    for (int i = 0; i < l->n; i++) if (!strcmp(l->names[i], name)) return &l->t[i];
    return NULL;
}

static void copy_file(const char *src, const char *dst)
{
    char *d, err[OB_ERRLEN];
    size_t n;
    if (ob_read_file(src, &d, &n, err)) { fprintf(stderr, "%s\n", err); exit(1); }
    FILE *f = fopen(dst, "wb");
    fwrite(d, 1, n, f);
    fclose(f);
    free(d);
}

/* a new directory base/name with inf's config (model_type/arch replaced
 * when given) and tokenizer, and l as its model.safetensors */
static const char *make_dir(const char *base, const char *name, const char *inf, TList *l, const char *from, const char *to)
{
    static char dir[8][600];
    static int k;
    char *d = dir[k++ % 8];
    snprintf(d, sizeof dir[0], "%s/%s", base, name);
    mkdir(d, 0777);
    char *cfg, err[OB_ERRLEN];
    size_t n;
    ob_read_file(test_sub(inf, "config.json"), &cfg, &n, err);
    FILE *f = fopen(test_sub(d, "config.json"), "w");
    char *at = from ? strstr(cfg, from) : NULL;
    if (at) { fwrite(cfg, 1, at - cfg, f); fputs(to, f); fputs(at + strlen(from), f); }
    else fputs(cfg, f);
    fclose(f);
    free(cfg);
    copy_file(test_sub(inf, "tokenizer.model"), test_sub(d, "tokenizer.model"));
    if (st_write_file(test_sub(d, "model.safetensors"), l->t, (size_t)l->n, err)) { fprintf(stderr, "%s\n", err); exit(1); }
    return d;
}

/* the training checkpoint of student s: latent weights whose signs are s's
 * (zeros where the sign is +1, random magnitudes, BF16 for some), rows of
 * q/k in rotate-half order, g/h as F16 (exact: they come from a .onebit),
 * plus teacher_model.* keys to ignore */
static void training_tensors(TList *l, const Model *s, const char *inf)
{
    TList src = {0};
    tl_read(&src, inf, NULL);
    const ModelConfig *c = &s->cfg;
    uint32_t rng = 7;
    for (int i = 0; i < src.n; i++) {
        const char *nm = src.names[i];
        if (strstr(nm, "_proj.")) continue;
        size_t bytes = (size_t)src.t[i].shape[0] * (src.t[i].n_dims > 1 ? src.t[i].shape[1] : 1) * 4;
        void *d = malloc(bytes);
        memcpy(d, src.t[i].data, bytes);
        tl_add(l, nm, src.t[i].dtype, src.t[i].n_dims, src.t[i].shape[0], src.t[i].n_dims > 1 ? src.t[i].shape[1] : 0, d);
    }
    for (int li = 0; li < c->n_layers; li++)
        for (int k = 0; k < 7; k++) {
            const BitLinear *bl = student_linear(s, li * 7 + k);
            int out = bl->out, in = bl->in, heads = k == 0 ? c->n_heads : k == 1 ? c->n_kv_heads : 0, hd = c->head_dim;
            int bf16 = (li + k) % 2;
            void *w = malloc((size_t)out * in * 4);
            uint16_t *hh = malloc(out * 2), *gg = malloc(in * 2);
            for (int r = 0; r < out; r++) {
                int er = r;
                if (heads) { int h = r / hd, rem = r % hd, j = rem / (hd / 2), i = rem % (hd / 2); er = h * hd + 2 * i + j; }
                for (int j = 0; j < in; j++) {
                    rng = rng * 1664525u + 1013904223u;
                    float mag = (float)((rng >> 8) % 1000 + 1) * 1e-4f;
                    int plus = bitlinear_sign(bl, er, j) > 0;
                    float v = plus ? ((rng & 15) == 0 ? 0.0f : mag) : -mag;
                    if (bf16) ((uint16_t *)w)[(size_t)r * in + j] = ob_fp32_to_bf16(v);
                    else ((float *)w)[(size_t)r * in + j] = v;
                }
                hh[r] = ob_fp32_to_fp16(bl->h[er]);
            }
            for (int j = 0; j < in; j++) gg[j] = ob_fp32_to_fp16(bl->g[j]);
            char nm[160];
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", li, proj[k]);
            tl_add(l, nm, bf16 ? ST_BF16 : ST_F32, 2, out, in, w);
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight_scale", li, proj[k]);
            tl_add(l, nm, ST_F16, 1, out, 0, hh);
            snprintf(nm, sizeof nm, "model.layers.%d.%s.input_factor", li, proj[k]);
            tl_add(l, nm, ST_F16, 1, in, 0, gg);
            snprintf(nm, sizeof nm, "teacher_model.model.layers.%d.%s.weight", li, proj[k]);
            tl_add(l, nm, ST_F32, 1, 3, 0, calloc(3, 4)); /* a shape no student has: ignored */
        }
    tl_free(&src);
}

static void expect_fail(const char *dir, const char *want, const char *what)
{
    Model m;
    Tokenizer t;
    char err[OB_ERRLEN] = "";
    int rc = open_student(&m, &t, dir, err);
    CHECK(rc == -1 && strstr(err, want), "%s: rc %d, '%s' (want '%s')", what, rc, err, want);
    if (rc == 0) { model_free(&m); tok_free(&t); }
}

static void hostile(const char *base, const char *inf)
{
    struct { const char *name, *tensor; int dtype; uint64_t d0, d1; const char *want; } cases[] = {
        /* dtype -1: leave the tensor out */
        {"no_scale", "model.layers.1.mlp.up_proj.weight_scale", -1, 0, 0, "missing tensor model.layers.1.mlp.up_proj.weight_scale"},
        {"no_factor", "model.layers.0.self_attn.k_proj.input_factor", -1, 0, 0, "missing tensor model.layers.0.self_attn.k_proj.input_factor"},
        {"no_weight", "model.layers.4.mlp.down_proj.weight", -1, 0, 0, "missing tensor model.layers.4.mlp.down_proj.weight"},
        {"no_emb", "model.embed_tokens.weight", -1, 0, 0, "missing tensor model.embed_tokens.weight"},
        {"no_norm", "model.layers.2.post_attention_layernorm.weight", -1, 0, 0, "missing tensor model.layers.2.post_attention_layernorm.weight"},
        {"scale_shape", "model.layers.0.self_attn.q_proj.weight_scale", ST_F32, 63, 0, "weight_scale has shape [63]"},
        {"scale_2d", "model.layers.0.self_attn.v_proj.weight_scale", ST_F32, 32, 1, "weight_scale has shape [32, 1]"},
        {"factor_shape", "model.layers.2.mlp.down_proj.input_factor", ST_F32, 171, 0, "input_factor has shape [171]"},
        {"packed_width", "model.layers.0.mlp.gate_proj.weight", ST_I8, 172, 9, "packed signs of a (172, 64) projection are [172, 8]"},
        {"packed_down", "model.layers.0.mlp.down_proj.weight", ST_I8, 64, 21, "are [64, 22]"},
        {"packed_rows", "model.layers.1.self_attn.k_proj.weight", ST_U8, 31, 8, "is U8 [31, 8]"},
        {"latent_shape", "model.layers.0.self_attn.q_proj.weight", ST_F32, 64, 63, "has shape [64, 63], config.json implies [64, 64]"},
        {"weight_dtype", "model.layers.3.self_attn.o_proj.weight", ST_I32, 64, 2, "has dtype I32"},
        {"scale_dtype", "model.layers.3.self_attn.o_proj.weight_scale", ST_I8, 64, 0, "weight_scale has dtype I8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TList l = {0};
        tl_read(&l, inf, cases[i].dtype < 0 ? cases[i].tensor : NULL);
        STWrite *t = tl_find(&l, cases[i].tensor);
        if (cases[i].dtype >= 0 && t) { /* the new shape with zero data of its size */
            int k = (int)(t - l.t);
            t->dtype = cases[i].dtype;
            t->n_dims = cases[i].d1 ? 2 : 1;
            t->shape[0] = cases[i].d0;
            t->shape[1] = cases[i].d1;
            free(l.bufs[k]);
            l.bufs[k] = calloc(cases[i].d0 * (cases[i].d1 ? cases[i].d1 : 1), 4);
            t->data = l.bufs[k];
        }
        const char *d = make_dir(base, cases[i].name, inf, &l, NULL, NULL);
        expect_fail(d, cases[i].want, cases[i].name);
        tl_free(&l);
    }
    TList l = {0};
    tl_read(&l, inf, NULL);
    expect_fail(make_dir(base, "dense", inf, &l, "\"bitllama\"", "\"llama\""), "is not a OneBit checkpoint", "model_type llama");
    const char *d = make_dir(base, "notok", inf, &l, NULL, NULL);
    unlink(test_sub(d, "tokenizer.model"));
    expect_fail(d, "no tokenizer.json or tokenizer.model", "no tokenizer");
    Model m;
    char err[OB_ERRLEN];
    CHECK(open_student(&m, NULL, d, err) == 0, "no tokenizer needed when none is asked for: %s", err);
    model_free(&m);
    tl_free(&l);
    /* a dense teacher directory is no student, a student directory no teacher */
    CHECK(model_load(&m, inf, err) == -1 && strstr(err, "open it with --student"), "bitllama as a teacher: %s", err);
}

/* a random student with an untied head, GQA and no tokenizer: exported
 * and read back the same (the head and a tokenizer-less directory) */
static void untied(const char *base)
{
    ModelConfig c = {32, 48, 2, 4, 2, 8, 40, 16, 10000.0f, 1e-5f, 0};
    Model m, r;
    char err[OB_ERRLEN] = "", dir[600];
    if (student_new(&m, &c, err)) { CHECK(0, "%s", err); return; }
    uint32_t s = 99;
#define RND() (s = s * 1664525u + 1013904223u, ((float)(s >> 8) / 16777216.0f - 0.5f))
    float *fp[] = {m.tok_emb, m.wcls, m.rms_att, m.rms_ffn, m.rms_final};
    size_t nn[] = {(size_t)c.vocab_size * c.dim, (size_t)c.vocab_size * c.dim, (size_t)c.n_layers * c.dim, (size_t)c.n_layers * c.dim, (size_t)c.dim};
    for (int k = 0; k < 5; k++) for (size_t i = 0; i < nn[k]; i++) fp[k][i] = RND();
    for (int i = 0; i < c.n_layers * LIN_PER_LAYER; i++) {
        BitLinear *bl = student_linear(&m, i);
        float *w = malloc((size_t)bl->out * bl->in * 4);
        for (int j = 0; j < bl->out * bl->in; j++) w[j] = RND();
        bitlinear_pack(bl, w);
        free(w);
        for (int j = 0; j < bl->in; j++) bl->g[j] = ob_fp16_to_fp32(ob_fp32_to_fp16(RND() + 1.0f));
        for (int j = 0; j < bl->out; j++) bl->h[j] = ob_fp16_to_fp32(ob_fp32_to_fp16(RND() * 0.1f));
    }
#undef RND
    snprintf(dir, sizeof dir, "%s/untied", base);
    CHECK(bitllama_export(&m, NULL, NULL, dir, err) == 0, "untied export: %s", err);
    CHECK(access(test_sub(dir, "tokenizer.model"), F_OK) != 0, "no tokenizer to write: none written");
    int ok = open_student(&r, NULL, dir, err) == 0;
    CHECK(ok, "untied: %s", err);
    if (ok) {
        same_students(&m, &r, "untied head, GQA");
        same_logits(&m, &r, "untied head, GQA");
        model_free(&r);
    }
    Tokenizer t;
    CHECK(open_student(&r, &t, dir, err) == -1 && strstr(err, "no tokenizer"), "asks for a tokenizer: %s", err);
    model_free(&m);
}

int main(void)
{
    REQUIRE_SHARED(teacher, "models/stories260K.bin");
    REQUIRE_SHARED(tok512, "models/tok512.bin");
    char base[512], err[OB_ERRLEN];
    if (test_tmpdir(base, sizeof base, "test_bitllama")) return 1;
    bitlinear_set_threads(1, err);
    Model t;
    Tokenizer tk;
    CHECK(open_teacher(teacher, tok512, &t, &tk, NULL, err) == 0, "%s", err);
    int nlin = t.cfg.n_layers * LIN_PER_LAYER;
    StudentLinearSrc *src = calloc(nlin, sizeof *src);
    CHECK(student_quantize(&t, SVID_NMF, 1, src, err) == 0, "%s", err);
    char x[600], y[600], inf[600];
    snprintf(x, sizeof x, "%s/x.onebit", base);
    snprintf(y, sizeof y, "%s/y.onebit", base);
    snprintf(inf, sizeof inf, "%s/inf", base);
    CHECK(student_write(x, &t, &tk, src, "{\"kind\":\"test\"}", err) == 0, "%s", err);
    student_src_free(src, nlin);
    model_free(&t);
    tok_free(&tk);
    Model s, r;
    Tokenizer st, rt;
    CHECK(student_load(&s, &st, x, err) == 0, "%s", err);

    /* inference checkpoint round trip */
    CHECK(bitllama_export(&s, &st, NULL, inf, err) == 0, "export: %s", err);
    CHECK(access(test_sub(inf, "tokenizer.model"), F_OK) == 0 && access(test_sub(inf, "tokenizer_config.json"), F_OK) == 0, "tokenizer files");
    CHECK(bitllama_export(&s, &st, NULL, inf, err) == -1 && strstr(err, "not empty"), "a second export into it: %s", err);
    CHECK(open_student(&r, &rt, inf, err) == 0, "open the directory: %s", err);
    same_students(&s, &r, "inference checkpoint");
    same_logits(&s, &r, "inference checkpoint");
    int tsame = rt.vocab_size == st.vocab_size && rt.bos_id == st.bos_id && rt.eos_id == st.eos_id;
    for (int i = 0; tsame && i < st.vocab_size; i++) tsame = !strcmp(rt.vocab[i], st.vocab[i]) && rt.scores[i] == st.scores[i];
    CHECK(tsame, "the tokenizer.model written gives the student's tokenizer back");
    /* convert back: the same .onebit, byte for byte */
    StudentLinearSrc *ls = calloc(nlin, sizeof *ls);
    CHECK(student_sources(&r, ls, err) == 0, "%s", err);
    CHECK(student_write(y, &r, &rt, ls, "{\"kind\":\"test\"}", err) == 0, "%s", err);
    CHECK(files_equal(x, y), "convert back: the .onebit is byte-identical");
    free(ls);
    model_free(&r);
    tok_free(&rt);

    /* training checkpoint: latent weights give their signs */
    TList tl = {0};
    training_tensors(&tl, &s, inf);
    const char *trn = make_dir(base, "train", inf, &tl, "BitLlamaForCausalLMInf", "BitLlamaForCausalLM");
    tl_free(&tl);
    CHECK(open_student(&r, &rt, trn, err) == 0, "open the training checkpoint: %s", err);
    same_students(&s, &r, "training checkpoint");
    same_logits(&s, &r, "training checkpoint");
    model_free(&r);
    tok_free(&rt);

    /* a student without LayerNorm cannot be one of theirs */
    BitLinear *b0 = student_linear(&s, 3);
    b0->norm = 0;
    CHECK(bitllama_export(&s, &st, NULL, test_sub(base, "nonorm"), err) == -1 && strstr(err, "no LayerNorm"), "norm 0: %s", err);
    b0->norm = 1;
    hostile(base, inf);
    untied(base);
    model_free(&s);
    tok_free(&st);
    free(src);
    test_rmtree(base);
    return test_done("test_bitllama");
}
