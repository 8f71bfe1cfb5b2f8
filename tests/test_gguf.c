/* test_gguf.c -- the GGUF reader: stories260K.gguf against stories260K.bin
 * (logits, embedded tokenizer), and F16/BF16/Q8_0/tied files written here
 * from the .bin, with dequantization checked value by value. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "writers.h"

static char dir[] = "/tmp/onebit-gguf-XXXXXX";

static const int greedy8[8] = {1, 403, 407, 261, 378, 432, 383, 286};

/* write m as GGUF with matrices of type ty and load it back */
static int roundtrip(const Model *m, const Tokenizer *t, uint32_t ty, int tied, Model *out, Tokenizer *tok, int *tl, const char *name)
{
    GGUFW w = {0};
    gw_model(&w, m, ty, tied);
    if (t) gw_tokenizer(&w, t);
    char path[600], err[OB_ERRLEN];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gw_save(&w, path);
    int rc = model_load_ex(out, tok, tl, path, err);
    CHECK(rc == 0, "%s: %s", name, err);
    const char *dump = getenv("ONEBIT_FUZZ_SEEDS");
    if (dump && rc == 0) {
        char cmd[1400];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s/'", path, dump);
        CHECK(system(cmd) == 0, "copy seed");
    }
    return rc;
}

/* expected value of every weight after a trip through type ty */
static float through(uint32_t ty, float x) {
    return ty == GGML_F16 ? ob_fp16_to_fp32(ob_fp32_to_fp16(x)) : ty == GGML_BF16 ? ob_bf16_to_fp32(ob_fp32_to_bf16(x)) : x;
}

int main(void)
{
    /* the loaders' FP32 arena conversion, whatever the dtype (the mapped
     * teacher has its own test, test_teacher_mapped) */
    setenv("ONEBIT_TEACHER_LOAD", "arena", 1);
    REQUIRE_SHARED(bin, "models/stories260K.bin");
    REQUIRE_SHARED(gguf, "models/stories260K.gguf");
    REQUIRE_SHARED(tokp, "models/tok512.bin");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char err[OB_ERRLEN];
    Model ref, g;
    Tokenizer t512, tg;
    int tl = -1;
    if (model_load(&ref, bin, err) || tok_load(&t512, tokp, 512, err)) { fprintf(stderr, "%s\n", err); return 1; }

    /* the real stories260K.gguf */
    CHECK(model_load_ex(&g, &tg, &tl, gguf, err) == 0, "%s", err);
    CHECK(tl == 1, "embedded tokenizer loaded");
    const ModelConfig *c = &g.cfg;
    CHECK(stories_config_ok(c, 2048, 0), "config %d %d %d %d %d %d %d %d, rope_theta %g eps %g", c->dim, c->hidden_dim,
          c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size, c->seq_len, c->rope_theta, c->norm_eps);
    double d = max_logit_diff(&ref, &g, greedy8, 8);
    printf("stories260K.gguf vs .bin: max |logit diff| = %g\n", d);
    CHECK(d <= 1e-5, "gguf logits differ from the .bin by %g", d);
    int *ids;
    size_t n;
    tok_encode(&tg, "Once upon a time", 1, 0, &ids, &n);
    CHECK(n == 5 && ids[0] == 1 && ids[1] == 403 && ids[2] == 407 && ids[3] == 261 && ids[4] == 378,
          "embedded tokenizer: %zu ids, %d %d %d %d %d", n, ids[0], n > 1 ? ids[1] : -1, n > 2 ? ids[2] : -1,
          n > 3 ? ids[3] : -1, n > 4 ? ids[4] : -1);
    free(ids);
    CHECK(tg.bos_id == 1 && tg.eos_id == 2 && tg.unk_id == 0 && tg.vocab_size == 512, "bos/eos/unk");
    CHECK(!strcmp(tg.vocab[1], "<s>") && !strcmp(tg.vocab[2], "</s>"), "BOS/EOS spelled <s>/</s>");
    CHECK(!strcmp(tok_decode(&tg, 1, 403), "Once") && !strcmp(tok_decode(&tg, 403, 407), " upon"), "decode");
    /* same ids as tok512 on a longer text (BOS/EOS pieces aside, the vocabularies agree) */
    const char *txt = "Lily saw a big, red ball. She said, \"I want to play!\" 123 caf\xc3\xa9 \xe2\x82\xac";
    int *a, *b;
    size_t na, nb;
    tok_encode(&tg, txt, 1, 1, &a, &na);
    tok_encode(&t512, txt, 1, 1, &b, &nb);
    CHECK(na == nb && !memcmp(a, b, na * sizeof(int)), "embedded and tok512 encodings differ (%zu vs %zu ids)", na, nb);
    free(a); free(b);
    tok_free(&tg);
    model_free(&g);

    /* F32 written here, tied (no output.weight) and untied: bit-identical */
    Model r;
    tl = -1;
    if (!roundtrip(&ref, &t512, GGML_F32, 1, &r, &tg, &tl, "f32_tied.gguf")) {
        CHECK(r.cfg.shared_classifier && r.wcls == r.tok_emb, "tied classifier");
        CHECK(r.arena_floats == ref.arena_floats && !memcmp(r.arena, ref.arena, ref.arena_floats * 4), "F32 weights bit-identical");
        CHECK(tl == 1 && tg.vocab_size == 512, "tokenizer written here");
        tok_encode(&tg, "Once upon a time", 1, 0, &ids, &n);
        CHECK(n == 5 && ids[1] == 403 && ids[4] == 378, "written tokenizer encodes");
        free(ids);
        tok_free(&tg);
        model_free(&r);
    }
    if (!roundtrip(&ref, NULL, GGML_F32, 0, &r, NULL, NULL, "f32_untied.gguf")) {
        CHECK(!r.cfg.shared_classifier && !memcmp(r.wcls, ref.wcls, (size_t)512 * 64 * 4), "untied classifier");
        d = max_logit_diff(&ref, &r, greedy8, 8);
        CHECK(d == 0, "untied F32 logits differ by %g", d);
        model_free(&r);
    }
    /* F16 and BF16: every weight equals the rounding of the original */
    uint32_t types[2] = {GGML_F16, GGML_BF16};
    for (int k = 0; k < 2; k++) {
        uint32_t ty = types[k];
        char name[64];
        snprintf(name, sizeof name, "%s.gguf", gguf_type_name(ty));
        if (roundtrip(&ref, NULL, ty, 1, &r, NULL, NULL, name)) continue;
        size_t bad = 0, nmat = 0;
        const float *mats[7] = {ref.wq, ref.wk, ref.wv, ref.wo, ref.w1, ref.w2, ref.w3};
        float *got[7] = {r.wq, r.wk, r.wv, r.wo, r.w1, r.w2, r.w3};
        size_t cnt[7] = {5 * 64 * 64, 5 * 32 * 64, 5 * 32 * 64, 5 * 64 * 64, 5 * 172 * 64, 5 * 172 * 64, 5 * 172 * 64};
        for (int j = 0; j < 7; j++)
            for (size_t i = 0; i < cnt[j]; i++, nmat++) bad += got[j][i] != through(ty, mats[j][i]);
        for (size_t i = 0; i < 512 * 64; i++, nmat++) bad += r.tok_emb[i] != through(ty, ref.tok_emb[i]);
        CHECK(bad == 0 && nmat > 200000, "%s: %zu of %zu weights differ from the rounded originals", name, bad, nmat);
        CHECK(!memcmp(r.rms_att, ref.rms_att, 5 * 64 * 4) && !memcmp(r.rms_final, ref.rms_final, 64 * 4), "%s: F32 norms", name);
        d = max_logit_diff(&ref, &r, greedy8, 8);
        printf("%s: max |logit diff| vs F32 = %g\n", name, d);
        CHECK(d > 0 && d < (ty == GGML_F16 ? 0.05 : 0.2), "%s logits differ by %g", name, d);
        model_free(&r);
    }
    /* stories260K in Q8_0 where rows allow it (64 columns), F16 for the
     * down projection (172 columns is not a multiple of 32) */
    {
        GGUFW w = {0};
        gw_model(&w, &ref, GGML_Q8_0, 0);
        int nq = 0;
        for (int i = 0; i < w.n_t; i++)
            if (w.t[i].type == GGML_Q8_0 && w.t[i].ne[0] % 32) w.t[i].type = GGML_F16;
            else nq += w.t[i].type == GGML_Q8_0;
        char path[600];
        snprintf(path, sizeof path, "%s/stories_q8_0.gguf", dir);
        gw_save(&w, path);
        CHECK(nq == 2 + 6 * 5, "Q8_0 tensors: %d", nq);
        if (model_load(&r, path, err) == 0) {
            d = max_logit_diff(&ref, &r, greedy8, 8);
            printf("stories260K Q8_0/F16: max |logit diff| vs F32 = %g\n", d);
            CHECK(d > 0 && d < 0.5, "Q8_0 logits differ by %g", d);
            model_free(&r);
        } else CHECK(0, "stories Q8_0: %s", err);
    }
    /* Q8_0 on a model whose rows are multiples of 32: dim 64, hidden 96 */
    Model tm;
    tiny_model(&tm, 64, 96, 2, 4, 2, 32, 0);
    if (!roundtrip(&tm, NULL, GGML_Q8_0, 0, &r, NULL, NULL, "q8_0.gguf")) {
        size_t bad = 0;
        const float *mats[3] = {tm.wq, tm.w2, tm.wcls};
        float *got[3] = {r.wq, r.w2, r.wcls};
        size_t cnt[3] = {2 * 64 * 64, 2 * 64 * 96, 32 * 64};
        for (int j = 0; j < 3; j++)
            for (size_t b0 = 0; b0 < cnt[j]; b0 += 32) {
                const float *x = mats[j] + b0;
                float amax = 0;
                for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
                float dd = ob_fp16_to_fp32(ob_fp32_to_fp16(amax / 127.0f));
                for (int i = 0; i < 32; i++) {
                    float q = roundf(x[i] * (amax ? 127.0f / amax : 0));
                    bad += got[j][b0 + i] != dd * q && fabsf(got[j][b0 + i] - dd * q) > 1e-7f;
                }
            }
        CHECK(bad == 0, "Q8_0: %zu weights differ from d*q", bad);
        double md = 0;
        for (size_t i = 0; i < 2 * 64 * 64; i++) md = fmax(md, fabs(r.wq[i] - tm.wq[i]));
        CHECK(md > 0 && md <= 0.1 / 127 * 0.5 + 1e-4, "Q8_0 error %g within half a step", md);
        model_free(&r);
    }
    model_free(&tm);
    /* a tiny model with a byte-level ("gpt2") tokenizer: 256 byte tokens
     * in GPT-2 spelling, merges "h e", "t he", "Ġ the" */
    tiny_model(&tm, 16, 16, 1, 2, 1, 264, 1); /* 4 rows of padding past the 260 tokens */
    {
        GGUFW w = {0};
        gw_model(&w, &tm, GGML_F16, 1);
        gw_str(&w, "tokenizer.ggml.model", "gpt2");
        gw_str(&w, "tokenizer.ggml.pre", "smollm");
        gw_key(&w, "tokenizer.ggml.tokens", GGUF_ARRAY);
        buf_u32(&w.kv, GGUF_STRING);
        buf_u64(&w.kv, 260);
        int k = 0;
        for (int bt = 0; bt < 256; bt++) {
            int keep = (bt >= 33 && bt <= 126) || (bt >= 161 && bt <= 172) || (bt >= 174 && bt <= 255);
            int cp = keep ? bt : 256 + k++;
            char u[3] = {(char)cp, 0, 0};
            if (cp >= 0x80) { u[0] = (char)(0xc0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3f)); }
            buf_gstr(&w.kv, u);
        }
        buf_gstr(&w.kv, "he");
        buf_gstr(&w.kv, "the");
        buf_gstr(&w.kv, "\xc4\xa0the");
        buf_gstr(&w.kv, "<|endoftext|>");
        gw_key(&w, "tokenizer.ggml.token_type", GGUF_ARRAY);
        buf_u32(&w.kv, GGUF_I32);
        buf_u64(&w.kv, 260);
        for (int i = 0; i < 260; i++) buf_u32(&w.kv, i == 259 ? 3 : 1);
        gw_key(&w, "tokenizer.ggml.merges", GGUF_ARRAY);
        buf_u32(&w.kv, GGUF_STRING);
        buf_u64(&w.kv, 3);
        buf_gstr(&w.kv, "h e");
        buf_gstr(&w.kv, "t he");
        buf_gstr(&w.kv, "\xc4\xa0 the");
        gw_u32(&w, "tokenizer.ggml.eos_token_id", 259);
        char path[600];
        snprintf(path, sizeof path, "%s/tiny_gpt2.gguf", dir);
        gw_save(&w, path);
        tl = -1;
        CHECK(model_load_ex(&r, &tg, &tl, path, err) == 0 && tl == 1, "tiny gpt2 gguf: %s", err);
        if (tl == 1) {
            int *ids2;
            size_t n2;
            tok_encode(&tg, "the the", 1, 1, &ids2, &n2);
            CHECK(tg.mode == TOK_BYTELEVEL && tg.bos_id == -1 && tg.eos_id == 259, "byte-level from GGUF: mode %d bos %d eos %d", tg.mode, tg.bos_id, tg.eos_id);
            CHECK(tg.vocab_size == 264 && tg.vocab_len[263] == 0, "padded vocabulary: %d", tg.vocab_size);
            CHECK(n2 == 3 && ids2[0] == 257 && ids2[1] == 258 && ids2[2] == 259, "gpt2 GGUF encodes 'the the' as 257 258 259 (%zu ids)", n2);
            CHECK(!strcmp(tok_decode(&tg, 257, 258), " the"), "gpt2 GGUF decode");
            free(ids2);
            tok_free(&tg);
            model_free(&r);
        }
        const char *dump = getenv("ONEBIT_FUZZ_SEEDS");
        if (dump) {
            char cmd[1400];
            snprintf(cmd, sizeof cmd, "cp '%s' '%s/'", path, dump);
            CHECK(system(cmd) == 0, "copy seed");
        }
    }
    model_free(&tm);
    /* one hand-made Q8_0 block: d = 0.5 (fp16 0x3800), q = -128, -1, 0, 1, 127 ... */
    uint8_t blk[34] = {0x00, 0x38};
    int8_t qs[32] = {-128, -1, 0, 1, 127, 2, -2, 64};
    memcpy(blk + 2, qs, 32);
    float out[32];
    llama_dequant(LLAMA_Q8_0, blk, out, 32);
    CHECK(out[0] == -64.0f && out[1] == -0.5f && out[2] == 0.0f && out[3] == 0.5f && out[4] == 63.5f && out[5] == 1.0f &&
          out[6] == -1.0f && out[7] == 32.0f && out[31] == 0.0f, "Q8_0 block: %g %g %g %g %g", out[0], out[1], out[2], out[3], out[4]);
    uint8_t h2[4] = {0x00, 0x3c, 0x00, 0xc0}; /* fp16 1.0, -2.0 */
    llama_dequant(LLAMA_F16, h2, out, 2);
    CHECK(out[0] == 1.0f && out[1] == -2.0f, "F16 dequant %g %g", out[0], out[1]);
    uint8_t b2[4] = {0x80, 0x3f, 0x40, 0xc0}; /* bf16 1.0, -3.0 */
    llama_dequant(LLAMA_BF16, b2, out, 2);
    CHECK(out[0] == 1.0f && out[1] == -3.0f, "BF16 dequant %g %g", out[0], out[1]);

    tok_free(&t512);
    model_free(&ref);
    CHECK(test_rmtree(dir) == 0, "cleanup");
    return test_done("test_gguf");
}
