/* test_teacher_mapped.c -- a teacher kept in its file's precision (model.h
 * model_from_llama_mapped) against the same file converted to the FP32
 * arena (model_from_llama): synth teachers in BF16 and F16 (a Hugging Face
 * directory, whose q/k rows are in rotate-half order, and a GGUF file) give
 * and a tied Q8_0 GGUF give the same logits within 1e-4 of the largest in the batched forward (tiles
 * of converted rows and sgemm), the cached forward of a few tokens (blocks of
 * rows dotted with each token) and decode (GEMV on the stored rows), on a
 * pool of 2, every matrix through model_lin_f32 / model_vocab_f32
 * bit-identical to the arena's, the same SVID statistics and the same
 * .onebit bytes from quantize; a non-finite BF16 weight is refused; model_load
 * maps by default and $ONEBIT_TEACHER_LOAD=arena forces the arena. */
#include <stdint.h>
#include <stdlib.h>

#include "base/common.h"
#include "base/pool.h"
#include "format/loader.h"
#include "format/synth.h"
#include "model/model.h"
#include "onebit/student.h"
#include "onebit/svid.h"
#include "train/qat.h"
#include "test.h"
#include "writers.h"

static char dir[512];

static const char *sub(const char *name)
{
    static char p[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* max |a - b| over n, relative to max |b| */
static double max_rel(const float *a, const float *b, size_t n)
{
    double d = 0, mx = 1e-30;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        mx = fmax(mx, fabs((double)b[i]));
    }
    return d / mx;
}

static int same_file(const char *a, const char *b)
{
    char *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    char err[OB_ERRLEN];
    int ok = !ob_read_file(a, &da, &na, err) && !ob_read_file(b, &db, &nb, err) && na == nb && !memcmp(da, db, na);
    free(da);
    free(db);
    return ok;
}

/* arena (a) and mapped (m) models of path */
static int load_both(const char *path, Model *a, Model *m)
{
    char err[OB_ERRLEN];
    LlamaFile f;
    if (loader_load(&f, NULL, NULL, path, err)) { CHECK(0, "%s", err); return -1; }
    int rc = model_from_llama(a, &f, path, err);
    llama_file_free(&f);
    CHECK(rc == 0, "arena %s: %s", path, err);
    if (rc) return -1;
    if (loader_load(&f, NULL, NULL, path, err)) { CHECK(0, "%s", err); model_free(a); return -1; }
    rc = model_from_llama_mapped(m, &f, path, err);
    CHECK(rc == 0 && f.t == NULL, "mapped %s: %s (the model took the file over)", path, err);
    if (rc) { model_free(a); return -1; }
    return 0;
}

static void compare_logits(const Model *a, const Model *m, const char *what)
{
    const ModelConfig *c = &a->cfg;
    enum { T = 20 }; /* > LINEAR_SMALL_N: tiles and sgemm; the 4-token prefix: blocks of rows */
    int tok[T];
    for (int t = 0; t < T; t++) tok[t] = (t * 37 + 5) % c->vocab_size;
    size_t V = (size_t)c->vocab_size;
    float *la = malloc(T * V * 4), *lm = malloc(T * V * 4);
    ModelActs acts;
    model_acts_init(&acts, c, T);
    model_forward(a, &acts, tok, T, la, NULL);
    model_forward(m, &acts, tok, T, lm, NULL);
    double e = max_rel(lm, la, T * V);
    CHECK(e < 1e-4, "%s: batched forward logits within 1e-4 of the arena's (%g)", what, e);
    /* decode: a prefix through the cached forward, the rest token by token */
    ModelState sa, sm;
    model_state_init(&sa, c);
    model_state_init(&sm, c);
    model_forward_kv(a, &acts, &sa, tok, 4, 0, la, 1);
    model_forward_kv(m, &acts, &sm, tok, 4, 0, lm, 1);
    double ek = max_rel(lm, la, V), ed = 0;
    for (int p = 4; p < T; p++) {
        const float *ya = model_step(a, &sa, tok[p], p), *ym = model_step(m, &sm, tok[p], p);
        ed = fmax(ed, max_rel(ym, ya, V));
    }
    CHECK(ek < 1e-4, "%s: cached forward within 1e-4 (%g)", what, ek);
    CHECK(ed < 1e-4, "%s: decode (GEMV on the stored rows) within 1e-4 (%g)", what, ed);
    model_state_free(&sa);
    model_state_free(&sm);
    model_acts_free(&acts);
    free(la);
    free(lm);
}

static void compare_matrices(const Model *a, const Model *m, const char *what)
{
    const ModelConfig *c = &a->cfg;
    int n = c->n_layers * LIN_PER_LAYER, bad = 0, inplace = 0;
    for (int i = 0; i < n; i++) {
        float *ta, *tm;
        const float *wa = model_lin_f32(a, i, &ta), *wm = model_lin_f32(m, i, &tm);
        inplace += ta == NULL && wa == a->lin[i].w;
        bad += !wa || !wm || memcmp(wa, wm, (size_t)a->lin[i].out * a->lin[i].in * 4) != 0;
        free(ta);
        free(tm);
    }
    CHECK(inplace == n, "%s: the arena's matrices in place", what);
    CHECK(bad == 0, "%s: %d of %d matrices differ from the arena's (q/k rows un-permuted)", what, bad, n);
    size_t VC = (size_t)c->vocab_size * c->dim;
    for (int head = 0; head < 2; head++) {
        float *ta, *tm;
        const float *va = model_vocab_f32(a, head, &ta), *vm = model_vocab_f32(m, head, &tm);
        CHECK(!memcmp(va, vm, VC * 4), "%s: %s equal", what, head ? "head" : "embedding");
        free(ta);
        free(tm);
    }
    CHECK(!memcmp(a->rms_att, m->rms_att, (size_t)c->n_layers * c->dim * 4) && !memcmp(a->rms_final, m->rms_final, (size_t)c->dim * 4),
          "%s: norms equal", what);
}

static void compare_tools(const Model *a, const Model *m, const char *what)
{
    char err[OB_ERRLEN];
    int n = a->cfg.n_layers * LIN_PER_LAYER;
    LayerStats *sa = calloc(n, sizeof *sa), *sm = calloc(n, sizeof *sm);
    CHECK(svid_model_stats(a, 2, SVID_NMF, sa, NULL, NULL, err) == 0, "stats arena: %s", err);
    CHECK(svid_model_stats(m, 2, SVID_NMF, sm, NULL, NULL, err) == 0, "stats mapped: %s", err);
    CHECK(!memcmp(sa, sm, n * sizeof *sa), "%s: inspect's SVID statistics identical", what);
    free(sa);
    free(sm);
    StudentLinearSrc *la = calloc(n, sizeof *la), *lm = calloc(n, sizeof *lm);
    CHECK(student_quantize(a, SVID_NMF, 1, la, err) == 0, "quantize arena: %s", err);
    CHECK(student_quantize(m, SVID_NMF, 1, lm, err) == 0, "quantize mapped: %s", err);
    for (int head = STUDENT_HEAD_F32; head <= STUDENT_HEAD_F16; head++) {
        CHECK(student_write_ex(sub("a.onebit"), a, NULL, la, "{}", head, err) == 0, "write arena: %s", err);
        CHECK(student_write_ex(sub("m.onebit"), m, NULL, lm, "{}", head, err) == 0, "write mapped: %s", err);
        CHECK(same_file(sub("a.onebit"), sub("m.onebit")), "%s: quantize writes the same .onebit bytes (head %s)", what,
              student_head_name(head));
    }
    student_src_free(la, n);
    student_src_free(lm, n);
    free(la);
    free(lm);
}

static void check_pair(const char *name, int emb, int rope_heads);

static void one(const char *name, int format, int dtype)
{
    char err[OB_ERRLEN];
    SynthOpts o;
    memset(&o, 0, sizeof o);
    /* big enough that decode's GEMV goes to the pool (rows x cols >= 2^18) */
    CHECK(synth_shape_parse("256,1024,2,8,2,600", &o.shape, err) == 0, "%s", err);
    o.shape.seq_len = 64;
    o.format = format;
    o.dtype = dtype;
    o.seed = 3;
    CHECK(synth_write(&o, sub(name), err) == 0, "synth %s: %s", name, err);
    check_pair(name, dtype, format == SYNTH_HF ? 8 : 0); /* SYNTH_ and LINEAR_W_ types are LLAMA_ dtypes */
}

/* training on a mapped teacher: its embedding and head in another precision
 * are FP32 copies in the QatModel, counted by qat_memory_bytes exactly */
static void qat_counts(const Model *m, const char *what)
{
    char err[OB_ERRLEN];
    QatSize sz = {2, 8, QAT_OPTIM_FP32, 0, 0, 0, qat_vocab_copies(m), 0, 0};
    int want = (m->emb_type != LINEAR_W_F32) + (!m->cfg.shared_classifier && m->cls_type != LINEAR_W_F32);
    QatModel *q = qat_new(m, SVID_NMF, &sz, err);
    CHECK(q && sz.vocab_copies == want, "%s: qat on the mapped teacher (%d FP32 copies): %s", what, want, q ? "" : err);
    if (!q) return;
    CHECK(qat_allocated_bytes(q) == qat_memory_bytes(&m->cfg, &sz), "%s: qat_memory_bytes %.0f == allocated %.0f", what,
          qat_memory_bytes(&m->cfg, &sz), qat_allocated_bytes(q));
    qat_free(q);
}

/* training's teacher forward on qat's pool of 2 (B·T = 32 tokens: tiles of
 * converted rows and qat's own sgemm split, training keeps OpenBLAS on one
 * thread): the mapped teacher's logits and loss are the arena's within 1e-4 */
static void qat_teacher(const Model *a, const Model *m, const char *what)
{
    char err[OB_ERRLEN];
    QatSize sz = {.max_B = 2, .max_T = 16, .optim = QAT_OPTIM_FP32}, szm = sz;
    szm.vocab_copies = qat_vocab_copies(m);
    QatModel *qa = qat_new(a, SVID_NMF, &sz, err), *qm = qat_new(m, SVID_NMF, &szm, err);
    CHECK(qa && qm && !qat_set_threads(qa, 2, err) && !qat_set_threads(qm, 2, err), "%s: qat on 2 threads: %s", what, err);
    if (qa && qm) {
        int tok[32];
        for (int i = 0; i < 32; i++) tok[i] = (i * 7 + 1) % a->cfg.vocab_size;
        QatLossCfg lc = {1.0f, 0.01f};
        QatLoss la, lm;
        CHECK(!qat_forward_backward(qa, tok, 2, 16, &lc, 1.0f, &la) && !qat_forward_backward(qm, tok, 2, 16, &lc, 1.0f, &lm),
              "%s: forward_backward", what);
        double d = max_rel(qat_teacher_logits(qm), qat_teacher_logits(qa), (size_t)32 * a->cfg.vocab_size);
        CHECK(d < 1e-4, "%s: qat's mapped teacher logits within 1e-4 of the arena's (%.2g)", what, d);
        CHECK(fabs(la.loss - lm.loss) <= 1e-4 * fabs(la.loss), "%s: loss %.7g vs %.7g", what, lm.loss, la.loss);
    }
    qat_free(qa);
    qat_free(qm);
}

/* arena vs mapped for the file name: embedding type emb, q's rope_heads */
static void check_pair(const char *name, int emb, int rope_heads)
{
    Model a, m;
    if (load_both(sub(name), &a, &m)) return;
    CHECK(model_is_mapped(&m) && !model_is_mapped(&a) && m.wq == NULL, "%s: mapped", name);
    /* an FP32 embedding and head are copied into the arena, the others stay in the file */
    CHECK(m.emb_type == emb && (emb == LINEAR_W_F32) == (m.tok_emb != NULL) && m.lin[LIN_GATE].wtype == emb, "%s: embedding type", name);
    CHECK(emb == LINEAR_W_F32 || m.arena_floats * 20 < a.arena_floats, "%s: the mapped arena holds only the norms (%zu of %zu floats)",
          name, m.arena_floats, a.arena_floats);
    CHECK(m.lin[LIN_Q].rope_heads == rope_heads, "%s: q rows in their file's order", name);
    compare_logits(&a, &m, name);
    compare_matrices(&a, &m, name);
    compare_tools(&a, &m, name);
    qat_counts(&m, name);
    qat_teacher(&a, &m, name);
    model_free(&a);
    model_free(&m);
}

/* model_load: mapped by default for BF16, the arena with ONEBIT_TEACHER_LOAD=arena */
static void load_modes(void)
{
    char err[OB_ERRLEN];
    Model m;
    unsetenv("ONEBIT_TEACHER_LOAD");
    CHECK(model_load(&m, sub("hf-bf16"), err) == 0 && model_is_mapped(&m), "auto maps a BF16 teacher: %s", err);
    model_free(&m);
    setenv("ONEBIT_TEACHER_LOAD", "arena", 1);
    CHECK(model_load(&m, sub("hf-bf16"), err) == 0 && !model_is_mapped(&m) && m.wq, "arena forced: %s", err);
    model_free(&m);
    setenv("ONEBIT_TEACHER_LOAD", "mapped", 1);
    CHECK(model_load(&m, sub("hf-f32"), err) == 0 && model_is_mapped(&m), "an F32 file mapped on request: %s", err);
    model_free(&m);
    unsetenv("ONEBIT_TEACHER_LOAD");
    CHECK(model_load(&m, sub("hf-f32"), err) == 0 && !model_is_mapped(&m), "an F32 file stays in the arena: %s", err);
    model_free(&m);
}

/* a NaN in the last BF16 weight of the file: refused with a message */
static void nonfinite(void)
{
    char err[OB_ERRLEN];
    const char *p = sub("hf-bf16/model.safetensors");
    FILE *f = fopen(p, "r+b");
    CHECK(f != NULL, "open %s", p);
    if (!f) return;
    fseek(f, -2, SEEK_END);
    unsigned char nan[2] = {0xc0, 0x7f};
    fwrite(nan, 1, 2, f);
    fclose(f);
    Model m;
    err[0] = 0;
    CHECK(model_load(&m, sub("hf-bf16"), err) == -1 && strstr(err, "not finite"), "NaN weight: %s", err);
}

int main(void)
{
    if (test_tmpdir(dir, sizeof dir, "teacher_mapped")) return 1;
    char err[OB_ERRLEN];
    pool_set_global_threads(2, err);
    one("hf-bf16", SYNTH_HF, SYNTH_BF16);
    one("g-f16.gguf", SYNTH_GGUF, SYNTH_F16);
    one("hf-f16", SYNTH_HF, SYNTH_F16);
    one("hf-f32", SYNTH_HF, SYNTH_F32);
    /* GGUF block types: rows through llama_dequant (the K types' expansions) */
    one("g-q4_k.gguf", SYNTH_GGUF, LLAMA_Q4_K);
    one("g-q6_k.gguf", SYNTH_GGUF, LLAMA_Q6_K);
    one("g-q5_0.gguf", SYNTH_GGUF, LLAMA_Q5_0);
    /* Q8_0 everywhere (rows of 32-multiples), tied head: GGUF's own type */
    Model t;
    tiny_model_hd(&t, 256, 1024, 2, 8, 2, 32, 600, 1);
    t.cfg.seq_len = 64; /* the 20-token forward of compare_logits */
    GGUFW w = {0};
    gw_model(&w, &t, GGML_Q8_0, 1);
    CHECK(gw_save(&w, sub("q8_0.gguf")) == 0, "write q8_0.gguf");
    model_free(&t);
    check_pair("q8_0.gguf", LINEAR_W_Q8_0, 0);
    load_modes();
    nonfinite();
    test_rmtree(dir);
    return test_done("test_teacher_mapped");
}
