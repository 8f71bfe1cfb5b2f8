/* tests/test_synth.c -- synth_*: shapes (presets, custom, bad ones), HF and
 * GGUF outputs loaded by the existing loaders hold the same model (the HF
 * q/k rotate-half permutation undone), weights as synth_weight says rounded
 * to the dtype, statistics of an initialised model, finite logits, the
 * synthetic tokenizer identical in tokenizer.json and GGUF, a llama2.c
 * tokenizer.bin carried over with the same encodings, sharding, and the
 * refusals (no space, existing output, interrupted) leaving nothing behind;
 * GGUF in each ggml block type close to the same seed's F32 model within
 * that type's quantization error. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "format/gguf.h"
#include "format/hf.h"
#include "format/synth.h"
#include "format/tokenizer.h"
#include "model/model.h"
#include "test.h"
#include "writers.h"

static char dir[600];

static char *sub(const char *name)
{
    static char p[8][700];
    static int k;
    char *b = p[k++ % 8];
    snprintf(b, 700, "%s/%s", dir, name);
    return b;
}

static int n_entries(const char *d) /* entries in d, . and .. excluded */
{
    DIR *x = opendir(d);
    int n = 0;
    struct dirent *e;
    while (x && (e = readdir(x)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (x) closedir(x);
    return n;
}

static SynthOpts small_opts(int format, int dtype, uint64_t seed)
{
    SynthOpts o;
    memset(&o, 0, sizeof o);
    char err[OB_ERRLEN];
    if (synth_shape_parse("64,172,2,4,2,512", &o.shape, err)) { fprintf(stderr, "%s\n", err); exit(1); }
    o.format = format;
    o.dtype = dtype;
    o.seed = seed;
    return o;
}

static void test_shapes(void)
{
    SynthShape s;
    char err[OB_ERRLEN];
    CHECK(synth_shape_parse("tinyllama-1.1b", &s, err) == 0, "%s", err);
    CHECK(s.dim == 2048 && s.hidden_dim == 5632 && s.n_layers == 22 && s.n_heads == 32 && s.n_kv_heads == 4 && s.vocab_size == 32000,
          "tinyllama shape");
    CHECK(synth_param_count(&s) == 1100048384ull, "tinyllama has 1100048384 parameters, not %llu", (unsigned long long)synth_param_count(&s));
    CHECK(synth_shape_parse("llama2-7b", &s, err) == 0 && synth_param_count(&s) == 6738415616ull, "llama2-7b parameters %llu",
          (unsigned long long)synth_param_count(&s));
    CHECK(synth_shape_parse("llama3-8b", &s, err) == 0 && synth_param_count(&s) == 8030261248ull && s.rope_theta == 500000.0,
          "llama3-8b parameters %llu", (unsigned long long)synth_param_count(&s));
    CHECK(synth_shape_parse("64,172,2,4,2,512", &s, err) == 0 && s.n_kv_heads == 2 && s.vocab_size == 512, "custom: %s", err);
    struct { const char *shape, *msg; } bad[] = {
        {"64,172,2,5,1,512", "HEADS 5 does not divide DIM 64"},
        {"64,172,2,4,3,512", "KV 3 does not divide HEADS 4"},
        {"64,172,0,4,2,512", "LAYERS is 0"},
        {"0,172,2,4,2,512", "DIM is 0"},
        {"64,172,2,4,2,2", "VOCAB 2 is below 3"},
        {"60,172,2,4,2,512", "head size DIM/HEADS = 15 is odd"},
        {"64,172,2,4,2", "neither tinyllama-1.1b"},
        {"64,172,2,4,2,512,9", "neither tinyllama-1.1b"},
        {"llama2-13b", "neither tinyllama-1.1b"},
        {"64,-172,2,4,2,512", "neither tinyllama-1.1b"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK(synth_shape_parse(bad[i].shape, &s, err) == -1 && strstr(err, bad[i].msg), "%s: '%s'", bad[i].shape, err);
    }
}

static int load(const char *path, Model *m, Tokenizer *t, int *tl)
{
    char err[OB_ERRLEN];
    int rc = model_load_ex(m, t, tl, path, err);
    if (rc) fprintf(stderr, "%s\n", err);
    return rc;
}

static float round_to(int dtype, float x)
{
    return dtype == SYNTH_F32 ? x : dtype == SYNTH_F16 ? ob_fp16_to_fp32(ob_fp32_to_fp16(x)) : ob_bf16_to_fp32(ob_fp32_to_bf16(x));
}

static void test_formats_agree(void)
{
    char err[OB_ERRLEN];
    static const char *text = "Once upon a time, Lily saw a big red ball in the park. It's 42!";
    for (int dt = SYNTH_F32; dt <= SYNTH_BF16; dt++) {
        char hn[32], gn[32];
        snprintf(hn, sizeof hn, "hf-%d", dt);
        snprintf(gn, sizeof gn, "g-%d.gguf", dt);
        SynthOpts oh = small_opts(SYNTH_HF, dt, 7), og = small_opts(SYNTH_GGUF, dt, 7);
        CHECK(synth_write(&oh, sub(hn), err) == 0, "hf %d: %s", dt, err);
        CHECK(synth_write(&og, sub(gn), err) == 0, "gguf %d: %s", dt, err);
        Model a, b;
        Tokenizer ta, tb;
        int la = 0, lb = 0;
        if (load(sub(hn), &a, &ta, &la) || load(sub(gn), &b, &tb, &lb)) { CHECK(0, "load dtype %d", dt); continue; }
        CHECK(la && lb, "both carry a tokenizer");
        const ModelConfig *c = &a.cfg;
        CHECK(c->dim == 64 && c->hidden_dim == 172 && c->n_layers == 2 && c->n_heads == 4 && c->n_kv_heads == 2 &&
              c->vocab_size == 512 && !c->shared_classifier && c->seq_len == 2048, "hf config");
        CHECK(!memcmp(&a.cfg, &b.cfg, sizeof a.cfg), "hf and gguf configs equal");
        CHECK(a.arena_floats == b.arena_floats && !memcmp(a.arena, b.arena, a.arena_floats * 4),
              "dtype %d: hf (q/k unpermuted) and gguf weights identical", dt);
        /* element values: what synth_weight says, rounded; tensors in place */
        int ok = 1;
        for (size_t i = 0; i < 512 * 64 && ok; i++) ok = b.tok_emb[i] == round_to(dt, synth_weight(7, 0, i));
        for (size_t i = 0; i < 512 * 64 && ok; i++) ok = b.wcls[i] == round_to(dt, synth_weight(7, 1, i));
        for (size_t i = 0; i < 64 * 64 && ok; i++) ok = b.wq[64 * 64 + i] == round_to(dt, synth_weight(7, 16 + 16 + 0, i));
        for (size_t i = 0; i < 172 * 64 && ok; i++) ok = b.w2[i] == round_to(dt, synth_weight(7, 16 + 5, i));
        CHECK(ok, "dtype %d: weights are synth_weight rounded to the dtype", dt);
        double s = 0, s2 = 0, mx = 0;
        size_t n = (size_t)c->n_layers * 172 * 64;
        for (size_t i = 0; i < n; i++) { s += b.w1[i]; s2 += (double)b.w1[i] * b.w1[i]; mx = fmax(mx, fabs(b.w1[i])); }
        CHECK(fabs(s / n) < 1e-3 && fabs(sqrt(s2 / n) - 0.02) < 1e-3 && mx < 0.07, "mean %g std %g max %g", s / n, sqrt(s2 / n), mx);
        int ones = 1;
        for (int i = 0; i < 64; i++) ones = ones && a.rms_final[i] == 1.0f && a.rms_att[64 + i] == 1.0f && a.rms_ffn[i] == 1.0f;
        CHECK(ones, "norms are 1");
        /* finite logits */
        int toks[6] = {1, 300, 301, 302, 303, 304}, fin = 1;
        ModelActs acts;
        model_acts_init(&acts, &a.cfg, 6);
        float *lg = malloc(6 * 512 * sizeof(float));
        model_forward(&a, &acts, toks, 6, lg, NULL);
        for (int i = 0; i < 6 * 512; i++) fin = fin && isfinite(lg[i]);
        CHECK(fin, "finite logits");
        free(lg);
        model_acts_free(&acts);
        /* the tokenizers: the same encoding from tokenizer.json and GGUF */
        int *ia, *ib;
        size_t na, nb;
        tok_encode(&ta, text, 1, 0, &ia, &na);
        tok_encode(&tb, text, 1, 0, &ib, &nb);
        CHECK(ta.vocab_size == 512 && tb.vocab_size == 512, "vocab sizes %d %d", ta.vocab_size, tb.vocab_size);
        CHECK(na == nb && !memcmp(ia, ib, na * sizeof(int)), "same ids from tokenizer.json and GGUF (%zu vs %zu)", na, nb);
        CHECK(na > 2 && na < strlen(text), "merges happen: %zu tokens for %zu bytes", na, strlen(text));
        CHECK(ia[0] == 1, "BOS first");
        char dec[512] = "";
        for (size_t i = 1; i < na; i++) strncat(dec, tok_decode(&ta, ia[i - 1], ia[i]), sizeof dec - strlen(dec) - 1);
        CHECK(!strcmp(dec, text), "decode round trip: '%s'", dec);
        free(ia); free(ib);
        tok_free(&ta); tok_free(&tb);
        model_free(&a); model_free(&b);
    }
}

static void test_determinism_and_shards(void)
{
    char err[OB_ERRLEN];
    SynthOpts o = small_opts(SYNTH_HF, SYNTH_BF16, 3);
    o.max_shard_bytes = 60000; /* several shards */
    CHECK(synth_write(&o, sub("sh"), err) == 0, "%s", err);
    struct stat st;
    CHECK(stat(sub("sh/model.safetensors.index.json"), &st) == 0, "index written");
    CHECK(stat(sub("sh/model-00001-of-00006.safetensors"), &st) == 0 && stat(sub("sh/model-00006-of-00006.safetensors"), &st) == 0,
          "six shards");
    CHECK(stat(sub("sh/model.safetensors"), &st) != 0, "no single-file model");
    SynthOpts o1 = small_opts(SYNTH_HF, SYNTH_BF16, 3);
    CHECK(synth_write(&o1, sub("one"), err) == 0, "%s", err);
    Model a, b;
    if (!load(sub("sh"), &a, NULL, NULL) && !load(sub("one"), &b, NULL, NULL)) {
        CHECK(a.arena_floats == b.arena_floats && !memcmp(a.arena, b.arena, a.arena_floats * 4), "sharded = one file");
        model_free(&a);
        model_free(&b);
    } else CHECK(0, "load sharded");
    /* a shard's header fits its tensors, and no shard goes over the limit
     * unless it holds a single bigger tensor */
    uint64_t total = 0;
    for (int k = 1; k <= 6; k++) {
        char nm[64];
        snprintf(nm, sizeof nm, "sh/model-%05d-of-00006.safetensors", k);
        if (stat(sub(nm), &st) == 0) total += (uint64_t)st.st_size;
    }
    CHECK(total > synth_data_bytes(&o), "shards hold all %llu bytes", (unsigned long long)synth_data_bytes(&o));
}

static void test_refusals(void)
{
    char err[OB_ERRLEN];
    int before = n_entries(dir);
    SynthOpts o = small_opts(SYNTH_GGUF, SYNTH_F16, 1);
    o.free_bytes_override = 100000; /* the model is ~330 kB */
    CHECK(synth_write(&o, sub("nospace.gguf"), err) == -1 && strstr(err, "not enough space"), "%s", err);
    o.free_bytes_override = 0;
    CHECK(synth_write(&o, sub("hf-0"), err) == -1 && strstr(err, "already exists"), "%s", err);
    volatile sig_atomic_t stop = 1;
    o.cancel = &stop;
    SynthOpts big = o;
    big.shape.n_layers = 8; /* more than one 4 MB chunk */
    big.shape.dim = 512;
    big.shape.hidden_dim = 1376;
    big.shape.n_heads = 8;
    big.shape.n_kv_heads = 8;
    CHECK(synth_write(&big, sub("cancel.gguf"), err) == -1 && strstr(err, "interrupted"), "%s", err);
    big.format = SYNTH_HF;
    CHECK(synth_write(&big, sub("cancel-hf"), err) == -1 && strstr(err, "interrupted"), "%s", err);
    CHECK(n_entries(dir) == before, "nothing left behind (%d entries, %d before)", n_entries(dir), before);
    CHECK(synth_write(&o, "/nonexistent-dir/x.gguf", err) == -1 && strstr(err, "cannot write"), "%s", err);
}

/* a llama2.c tokenizer.bin of V entries carried into both formats encodes
 * as the file itself */
static void test_llama2c_tokenizer(const char *rel, int V)
{
    const char *tb = shared_path(rel);
    if (!tb) { printf("%s not found: that tokenizer.bin part skipped\n", rel); return; }
    char err[OB_ERRLEN];
    Tokenizer ref;
    if (tok_load(&ref, tb, V, err)) { CHECK(0, "%s", err); return; }
    static const char *texts[] = {"Once upon a time, there was a little girl named Lily.", "She liked to play outside!",
                                  "The cat's hat: 3.5 zebras\nnew line \xc3\xa9t\xc3\xa9",
                                  "Il \xc3\xa9tait une fois \xe2\x80\x94 \xd0\xbc\xd0\xb8\xd1\x80, \xe4\xb8\x96\xe7\x95\x8c  double  spaces"};
    for (int f = SYNTH_HF; f <= SYNTH_GGUF; f++) {
        SynthOpts o = small_opts(f, SYNTH_F32, 1);
        o.shape.vocab_size = V;
        o.tokenizer_path = tb;
        char nm[64];
        snprintf(nm, sizeof nm, f == SYNTH_HF ? "tok-hf-%d" : "tok-%d.gguf", V);
        const char *p = sub(nm);
        CHECK(synth_write(&o, p, err) == 0, "%s", err);
        Model m;
        Tokenizer t;
        int tl = 0;
        if (load(p, &m, &t, &tl)) { CHECK(0, "load"); continue; }
        CHECK(tl && t.vocab_size == V, "tokenizer loaded");
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
            int *x, *y;
            size_t nx, ny;
            tok_encode(&ref, texts[i], 1, 0, &x, &nx);
            tok_encode(&t, texts[i], 1, 0, &y, &ny);
            CHECK(nx == ny && !memcmp(x, y, nx * sizeof(int)), "format %d text %zu: %zu vs %zu tokens", f, i, nx, ny);
            free(x); free(y);
        }
        tok_free(&t);
        model_free(&m);
    }
    SynthOpts o = small_opts(SYNTH_GGUF, SYNTH_F32, 1);
    o.shape.vocab_size = V + 1000;
    o.tokenizer_path = tb;
    CHECK(synth_write(&o, sub("tok-bad.gguf"), err) == -1 && strstr(err, "truncated"), "a %d-entry file for %d: %s", V, V + 1000, err);
    tok_free(&ref);
}

/* GGUF in each block type against the same seed's F32 file, both through
 * the normal loader: the weights' relative RMS error and the largest logit
 * difference over 8 tokens stay within each type's bound and fall with the
 * bits; shapes and formats a block type cannot have are refused */
static void test_quant_types(void)
{
    static const struct { int dtype; double werr, lerr; } q[] = {
        /* measured 0.0028/0.013, 0.010/0.048, 0.021/0.118, 0.023/0.125, 0.042/0.196, 0.046/0.225 */
        {LLAMA_Q8_0, 0.005, 0.03}, {LLAMA_Q6_K, 0.015, 0.08}, {LLAMA_Q5_K, 0.03, 0.18},
        {LLAMA_Q5_0, 0.035, 0.2}, {LLAMA_Q4_K, 0.06, 0.35}, {LLAMA_Q4_0, 0.07, 0.4},
    };
    static const int toks[8] = {1, 17, 300, 42, 7, 511, 256, 3};
    char err[OB_ERRLEN], nm[64];
    SynthOpts o = small_opts(SYNTH_GGUF, SYNTH_F32, 9);
    CHECK(synth_shape_parse("256,512,2,4,2,512", &o.shape, err) == 0, "%s", err);
    Model ref, m;
    Tokenizer t;
    int tl = 0;
    if (synth_write(&o, sub("q-f32.gguf"), err) || load(sub("q-f32.gguf"), &ref, &t, &tl)) { CHECK(0, "F32: %s", err); return; }
    if (tl) tok_free(&t);
    double werr[6], lerr[6];
    for (int k = 0; k < 6; k++) {
        const char *name = synth_dtype_name(q[k].dtype);
        o.dtype = q[k].dtype;
        snprintf(nm, sizeof nm, "q-%s.gguf", name);
        werr[k] = lerr[k] = INFINITY;
        if (synth_write(&o, sub(nm), err) || load(sub(nm), &m, &t, &tl)) { CHECK(0, "%s: %s", name, err); continue; }
        if (tl) tok_free(&t);
        CHECK(m.arena_floats == ref.arena_floats, "%s: the same weights", name);
        double se = 0, sx = 0;
        for (size_t i = 0; i < ref.arena_floats; i++) {
            double e = (double)m.arena[i] - ref.arena[i];
            se += e * e;
            sx += (double)ref.arena[i] * ref.arena[i];
        }
        werr[k] = sqrt(se / sx);
        lerr[k] = max_logit_diff(&ref, &m, toks, 8);
        printf("%s: relative RMS weight error %.4f, max |logit diff| vs F32 %.4f\n", name, werr[k], lerr[k]);
        CHECK(werr[k] > 0 && werr[k] < q[k].werr, "%s: weight error %g (bound %g)", name, werr[k], q[k].werr);
        CHECK(lerr[k] > 0 && lerr[k] < q[k].lerr, "%s: logit difference %g (bound %g)", name, lerr[k], q[k].lerr);
        model_free(&m);
    }
    CHECK(werr[0] < werr[1] && werr[1] < werr[2] && werr[2] < werr[4] && werr[3] < werr[5], "weight error falls with the bits");
    CHECK(lerr[0] < lerr[1] && lerr[1] < lerr[4] && lerr[3] < lerr[5], "logit error falls with the bits");
    model_free(&ref);
    o.dtype = LLAMA_Q4_K;
    o.shape.hidden_dim = 640;
    CHECK(synth_write(&o, sub("q-bad.gguf"), err) == -1 && strstr(err, "HIDDEN 640 must be multiples of 256"), "%s", err);
    o = small_opts(SYNTH_GGUF, LLAMA_Q4_0, 1); /* 172 is no multiple of 32 */
    CHECK(synth_write(&o, sub("q-bad.gguf"), err) == -1 && strstr(err, "blocks of 32"), "%s", err);
    o = small_opts(SYNTH_HF, LLAMA_Q8_0, 1);
    o.shape.hidden_dim = 192;
    CHECK(synth_write(&o, sub("q-bad-hf"), err) == -1 && strstr(err, "is for GGUF"), "%s", err);
    CHECK(access(sub("q-bad.gguf"), F_OK) != 0 && access(sub("q-bad-hf"), F_OK) != 0, "nothing written for refusals");
}

int main(void)
{
    /* the loaders' FP32 arena conversion, whatever the dtype (the mapped
     * teacher has its own test, test_teacher_mapped) */
    setenv("ONEBIT_TEACHER_LOAD", "arena", 1);
    if (test_tmpdir(dir, sizeof dir, "onebit-synth")) return 1;
    test_shapes();
    test_formats_agree();
    test_determinism_and_shards();
    test_refusals();
    test_quant_types();
    test_llama2c_tokenizer("models/tok512.bin", 512);
    test_llama2c_tokenizer("models/tokenizer.bin", 32000); /* Llama 2's */
    if (!t_fail) test_rmtree(dir);
    else fprintf(stderr, "kept %s\n", dir);
    return test_done("test_synth");
}
