/* test_hf.c -- Hugging Face directories: stories260K-hf against the .bin,
 * F16/BF16/sharded/untied directories written here from the .bin (q/k rows
 * in rotate-half layout), tokenizer.json (SentencePiece-style BPE from
 * merges, Unigram scores, byte-level BPE with its pre-tokenizers). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/hf.h"
#include "test.h"
#include "writers.h"

static char dir[] = "/tmp/onebit-hf-XXXXXX";
static const int greedy8[8] = {1, 403, 407, 261, 378, 432, 383, 286};

static char *sub(const char *name) { return test_path_in(dir, name); }

/* write m into directory name with matrices of dtype; shards > 1 splits by layer */
static const char *write_hf(const Model *m, const char *name, const char *dtype, int tied, int shards)
{
    const char *d = ob_strdup(sub(name));
    mkdir(d, 0755);
    char p[800];
    snprintf(p, sizeof p, "%s/config.json", d);
    st_config(p, &m->cfg, tied);
    STens *ts = calloc(512, sizeof(STens));
    int n = st_model(m, ts, dtype, tied);
    if (shards <= 1) {
        snprintf(p, sizeof p, "%s/model.safetensors", d);
        st_write(p, ts, n);
    } else {
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
        FILE *f = fopen(p, "w");
        fprintf(f, "{\"metadata\":{\"total_size\":0},\"weight_map\":{");
        int per = (n + shards - 1) / shards;
        for (int s = 0; s < shards; s++) {
            int a = s * per, b = a + per < n ? a + per : n;
            char file[64], sp[900];
            snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, shards);
            snprintf(sp, sizeof sp, "%s/%s", d, file);
            st_write(sp, ts + a, b - a);
            for (int i = a; i < b; i++) fprintf(f, "%s\"%s\":\"%s\"", i ? "," : "", ts[i].name, file);
        }
        fprintf(f, "}}\n");
        fclose(f);
    }
    free(ts);
    return d;
}

static float through(const char *dt, float x)
{
    return !strcmp(dt, "F16") ? ob_fp16_to_fp32(ob_fp32_to_fp16(x)) : !strcmp(dt, "BF16") ? ob_bf16_to_fp32(ob_fp32_to_bf16(x)) : x;
}

static int ids_are(const Tokenizer *t, const char *text, int bos, const int *want, int nw)
{
    int *ids;
    size_t nz;
    tok_encode(t, text, bos, 0, &ids, &nz);
    int n = (int)nz;
    int ok = n == nw && !memcmp(ids, want, nw * sizeof(int));
    if (!ok) {
        fprintf(stderr, "  '%s' ->", text);
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}


static void pretok_case(const char *text, int mode, const char *const *want, int nw)
{
    size_t n = strlen(text), i = 0;
    int k = 0, ok = 1;
    while (i < n) {
        size_t e = tok_pretoken_end(text, n, i, mode);
        if (k >= nw || strlen(want[k]) != e - i || memcmp(want[k], text + i, e - i)) ok = 0;
        k++;
        i = e;
    }
    CHECK(ok && k == nw, "pre-tokens of '%s' (mode %d): %d pieces", text, mode, k);
}

int main(void)
{
    /* the loaders' FP32 arena conversion, whatever the dtype (the mapped
     * teacher has its own test, test_teacher_mapped) */
    setenv("ONEBIT_TEACHER_LOAD", "arena", 1);
    REQUIRE_SHARED(bin, "models/stories260K.bin");
    REQUIRE_SHARED(hfcfg, "models/stories260K-hf/config.json");
    REQUIRE_SHARED(tokp, "models/tok512.bin");
    REQUIRE_SHARED(stories, "data/tinystories_train_head_sample.txt");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char err[OB_ERRLEN], hfdir[4096], cmd0[2000];
    snprintf(hfdir, sizeof hfdir, "%s", hfcfg);
    *strrchr(hfdir, '/') = 0;
    Model ref, h, r;
    Tokenizer t512, tk;
    int tl = -1;
    if (model_load(&ref, bin, err) || tok_load(&t512, tokp, 512, err)) { fprintf(stderr, "%s\n", err); return 1; }

    /* set up as test_gguf.c is, on purpose: each loader's test stands alone
     * against the .bin reference (the shape checks are stories_config_ok) */
    /* the shared stories260K-hf (q/k permuted to rotate-half, no tokenizer.json) */
    CHECK(model_load_ex(&h, &tk, &tl, hfdir, err) == 0, "%s", err);
    CHECK(tl == 0, "no tokenizer.json there");
    const ModelConfig *c = &h.cfg;
    CHECK(stories_config_ok(c, 512, 1) && h.wcls == h.tok_emb, "config");
    CHECK(h.arena_floats == ref.arena_floats && !memcmp(h.arena, ref.arena, ref.arena_floats * 4), "weights bit-identical to the .bin after un-permuting q/k");
    double d = max_logit_diff(&ref, &h, greedy8, 8);
    printf("stories260K-hf vs .bin: max |logit diff| = %g\n", d);
    CHECK(d <= 1e-5, "hf logits differ by %g", d);
    model_free(&h);

    /* the permutation and its inverse */
    float src[4 * 8 * 3], perm[4 * 8 * 3], back[4 * 8 * 3];
    for (int i = 0; i < 96; i++) src[i] = (float)i;
    st_permute(src, perm, 4, 8, 3);
    llama_unpermute_rows(perm, back, 4, 8, 3);
    CHECK(!memcmp(src, back, sizeof src), "unpermute inverts permute");
    CHECK(perm[(1 * 8 + 1 * 4 + 2) * 3] == src[(1 * 8 + 2 * 2 + 1) * 3], "HF row h*hd + j*hd/2 + i = interleaved row h*hd + 2i + j");

    /* written here: F32 sharded untied, F16, BF16 */
    const char *dts[3] = {"F32", "F16", "BF16"};
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "hf_%s", dts[k]);
        const char *dd = write_hf(&ref, name, dts[k], k != 0, k == 0 ? 3 : 1);
        int lrc = model_load_ex(&r, NULL, NULL, dd, err);
        free((char *)dd);
        if (lrc) { CHECK(0, "%s: %s", name, err); continue; }
        CHECK(r.cfg.shared_classifier == (k != 0), "%s: tied %d", name, r.cfg.shared_classifier);
        size_t bad = 0;
        for (size_t i = 0; i < ref.arena_floats; i++) {
            /* norms are written as F32; the rest through dtype */
            int is_norm = (ref.arena + i >= ref.rms_att && ref.arena + i < ref.rms_att + 5 * 64) ||
                          (ref.arena + i >= ref.rms_ffn && ref.arena + i < ref.rms_ffn + 5 * 64) ||
                          (ref.arena + i >= ref.rms_final && ref.arena + i < ref.rms_final + 64);
            bad += r.arena[i] != (is_norm ? ref.arena[i] : through(dts[k], ref.arena[i]));
        }
        if (k == 0) bad += memcmp(r.wcls, ref.wcls, 512 * 64 * 4) != 0;
        CHECK(bad == 0, "%s: %zu weights differ from the expected conversion", name, bad);
        d = max_logit_diff(&ref, &r, greedy8, 8);
        printf("%s: max |logit diff| = %g\n", name, d);
        CHECK(k == 0 ? d == 0 : d < 0.2, "%s logits differ by %g", name, d);
        model_free(&r);
    }

    /* head_dim larger than hidden_size / heads (32 / 4 = 8 < 16), GQA 4:2,
     * through a Hugging Face directory and a GGUF file */
    {
        Model hm, rt;
        tiny_model_hd(&hm, 32, 48, 2, 4, 2, 16, 40, 0);
        const char *dd = write_hf(&hm, "head_dim", "F32", 0, 1);
        if (model_load(&rt, dd, err) == 0) {
            CHECK(rt.cfg.head_dim == 16 && rt.cfg.n_kv_heads == 2 && rt.arena_floats == hm.arena_floats &&
                  !memcmp(rt.arena, hm.arena, hm.arena_floats * 4), "head_dim 16 directory round trip");
            d = max_logit_diff(&hm, &rt, greedy8, 1);
            CHECK(d == 0, "head_dim logits differ by %g", d);
            model_free(&rt);
        } else CHECK(0, "head_dim dir: %s", err);
        free((char *)dd);
        GGUFW w = {0};
        gw_model(&w, &hm, GGML_F32, 0);
        gw_save(&w, sub("head_dim.gguf"));
        if (model_load(&rt, sub("head_dim.gguf"), err) == 0) {
            CHECK(rt.cfg.head_dim == 16 && !memcmp(rt.arena, hm.arena, hm.arena_floats * 4), "head_dim 16 GGUF round trip");
            model_free(&rt);
        } else CHECK(0, "head_dim gguf: %s", err);
        model_free(&hm);
    }

    /* tokenizer.json, SentencePiece-style BPE: merges built from tok512's
     * scores (best score first) give tok512's encoding exactly */
    {
        char *tp = sub("spm_tokenizer.json");
        FILE *f = fopen(tp, "w");
        fprintf(f, "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true},"
                   "{\"id\":1,\"content\":\"<s>\",\"special\":true},{\"id\":2,\"content\":\"</s>\",\"special\":true}],"
                   "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"},"
                   "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}]},"
                   "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
                   "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}]},"
                   "\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"unk_token\":\"<unk>\",\"vocab\":{");
        test_json_sp_vocab(f, t512.vocab, 512);
        fprintf(f, "},\"merges\":[");
        /* merges in descending score order: any split into two pieces */
        int order[512], no = 0;
        for (int i = 259; i < 512; i++) order[no++] = i;
        for (int a = 0; a < no; a++)
            for (int b = a + 1; b < no; b++)
                if (t512.scores[order[b]] > t512.scores[order[a]]) { int x = order[a]; order[a] = order[b]; order[b] = x; }
        int first = 1;
        for (int k = 0; k < no; k++) {
            const char *p = t512.vocab[order[k]];
            int L = (int)strlen(p);
            for (int s = 1; s < L; s++) {
                if (tok_lookup(&t512, p, s) >= 0 && tok_lookup(&t512, p + s, L - s) >= 0) {
                    char m[256];
                    size_t q = 0;
                    for (int x = 0; x < L; x++) {
                        if (x == s) m[q++] = ' ';
                        if (p[x] == ' ') { memcpy(m + q, "\xe2\x96\x81", 3); q += 3; }
                        else m[q++] = p[x];
                    }
                    m[q] = 0;
                    if (!first) fputc(',', f);
                    first = 0;
                    test_json_str(f, m);
                    break;
                }
            }
        }
        fprintf(f, "]}}\n");
        fclose(f);
        Tokenizer tj;
        CHECK(tok_json_load(&tj, tp, 512, err) == 0, "%s", err);
        if (tj.vocab) {
            CHECK(tj.mode == TOK_SPM && tj.bos_id == 1 && tj.eos_id == 2 && tj.unk_id == 0 && tj.byte_base == 3, "spm tokenizer.json ids");
            CHECK(ids_are(&tj, "Once upon a time", 1, (int[]){1, 403, 407, 261, 378}, 5), "Once upon a time");
            char *txt;
            size_t len;
            CHECK(ob_read_file(stories, &txt, &len, err) == 0, "%s", err);
            txt[len > 20000 ? 20000 : len] = 0;
            int *a, *b;
            size_t na, nb;
            tok_encode(&tj, txt, 1, 1, &a, &na);
            tok_encode(&t512, txt, 1, 1, &b, &nb);
            CHECK(na == nb && !memcmp(a, b, na * sizeof(int)), "tokenizer.json (merges) vs tok512 on 20000 chars: %zu vs %zu ids", na, nb);
            free(a); free(b); free(txt);
            CHECK(!strcmp(tok_decode(&tj, 1, 403), "Once") && !strcmp(tok_decode(&tj, 403, 407), " upon"), "decode");
            tok_free(&tj);
        }
        /* a directory with tokenizer.json gives it to model_load_ex */
        snprintf(cmd0, sizeof cmd0, "cp '%s' '%s/tokenizer.json'", tp, sub("hf_BF16"));
        CHECK(system(cmd0) == 0, "copy tokenizer.json");
        tl = -1;
        CHECK(model_load_ex(&r, &tj, &tl, sub("hf_BF16"), err) == 0 && tl == 1, "directory with tokenizer.json: %s", err);
        if (tl == 1) {
            CHECK(ids_are(&tj, "Once upon a time", 1, (int[]){1, 403, 407, 261, 378}, 5), "embedded tokenizer.json");
            tok_free(&tj);
            model_free(&r);
        }
        /* the same vocabulary as Unigram [piece, score] */
        tp = sub("uni_tokenizer.json");
        f = fopen(tp, "w");
        fprintf(f, "{\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[");
        for (int i = 0; i < 512; i++) {
            char sp[256];
            test_sp_piece(sp, sizeof sp, t512.vocab[i]);
            fprintf(f, "%s[", i ? "," : "");
            test_json_str(f, sp);
            fprintf(f, ",%.9g]", (double)t512.scores[i]);
        }
        fprintf(f, "]}}\n");
        fclose(f);
        CHECK(tok_json_load(&tj, tp, 512, err) == 0, "%s", err);
        if (tj.vocab) {
            CHECK(ids_are(&tj, "Once upon a time", 1, (int[]){1, 403, 407, 261, 378}, 5), "unigram: Once upon a time");
            const char *txt = "Lily saw a big, red ball. She said, \"I want to play!\" 123";
            int *a, *b;
            size_t na, nb;
            tok_encode(&tj, txt, 1, 1, &a, &na);
            tok_encode(&t512, txt, 1, 1, &b, &nb);
            CHECK(na == nb && !memcmp(a, b, na * sizeof(int)), "unigram tokenizer.json vs tok512");
            free(a); free(b);
            tok_free(&tj);
        }
    }

    /* byte-level BPE: ids 0..255 are the bytes, then merges; EOS is the
     * special <|endoftext|> (267), given as config.json's eos_token_id */
    {
        const char *merges[] = {"\xc4\xa0 t", "h e", "\xc4\xa0t he", "c a", "ca t", "\xc4\xa0 c", "\xc4\xa0" "c at", "a t",
                                "e \xc4\xa0", "1 2", "t '", "' s"};
        const char *res[] = {"\xc4\xa0t", "he", "\xc4\xa0the", "ca", "cat", "\xc4\xa0" "c", NULL, "at", "e\xc4\xa0", "12", "t'", "'s"};
        for (int mode = 0; mode < 3; mode++) {
            char *tp = sub("bl_tokenizer.json");
            FILE *f = fopen(tp, "w");
            fprintf(f, "{\"added_tokens\":[{\"id\":%d,\"content\":\"<|endoftext|>\",\"special\":true}],", 256 + 11);
            fprintf(f, "\"pre_tokenizer\":%s,\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{",
                    mode == 0 ? "{\"type\":\"ByteLevel\",\"add_prefix_space\":false}"
                    : mode == 1 ? "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":true},{\"type\":\"ByteLevel\"}]}"
                                : "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\p{N}{1,3}\"}},{\"type\":\"ByteLevel\",\"use_regex\":false}]}");
            char u[4];
            for (int b = 0; b < 256; b++) { test_b2u(b, u); fprintf(f, "%s", b ? "," : ""); test_json_str(f, u); fprintf(f, ":%d", b); }
            int id = 256;
            for (int k = 0; k < 12; k++) if (res[k]) { fputc(',', f); test_json_str(f, res[k]); fprintf(f, ":%d", id++); }
            fprintf(f, "},\"merges\":[");
            for (int k = 0; k < 12; k++) { if (k) fputc(',', f); if (k % 2) test_json_str(f, merges[k]); else { char a[16], b[16]; sscanf(merges[k], "%15s %15s", a, b); fprintf(f, "["); test_json_str(f, a); fputc(',', f); test_json_str(f, b); fprintf(f, "]"); } }
            fprintf(f, "]}}\n");
            fclose(f);
            Tokenizer tj;
            CHECK(tok_json_load(&tj, tp, 300, err) == 0, "%s", err);
            if (!tj.vocab) continue;
            CHECK(tj.mode == TOK_BYTELEVEL && tj.vocab_size == 300 && tj.bos_id == -1, "byte-level: mode %d size %d bos %d", tj.mode, tj.vocab_size, tj.bos_id);
            CHECK(tj.pretok == (mode == 0 ? TOK_PRE_GPT2 : mode == 1 ? TOK_PRE_GPT2_DIGITS : TOK_PRE_LLAMA3), "pre-tokenizer %d", tj.pretok);
            /* "the" -> t he; " cat" -> ' ' then c+a (rank 3) before ' '+c (rank 5), then ca+t */
            CHECK(ids_are(&tj, "the cat", 1, (int[]){'t', 257, ' ', 260}, 4), "the cat (mode %d)", mode);
            CHECK(ids_are(&tj, " the", 0, (int[]){258}, 1), "' the'");
            CHECK(ids_are(&tj, "", 1, (int[]){267}, 1), "empty text starts with EOS when there is no BOS");
            /* "it's": the contraction is its own pre-token, so t+' never merges */
            CHECK(ids_are(&tj, "it's", 0, (int[]){'i', 't', 266}, 3), "it's");
            if (mode == 0) CHECK(ids_are(&tj, "a 12", 0, (int[]){'a', ' ', 264}, 3), "a 12 (gpt2: ' 12' one pre-token)");
            if (mode == 1) CHECK(ids_are(&tj, "a 12", 0, (int[]){'a', ' ', '1', '2'}, 4), "a 12 (digits split)");
            if (mode == 2) CHECK(ids_are(&tj, "a 12", 0, (int[]){'a', ' ', 264}, 3), "a 12 (llama3: 12 together)");
            CHECK(!strcmp(tok_decode(&tj, 't', 258), " the") && !strcmp(tok_decode(&tj, 0, 267), "<|endoftext|>"), "byte-level decode");
            tok_free(&tj);
        }
        const char *w1[] = {"Hello", ",", " world", "'s", "  ", " test", "\n", "\n", "123", " caf\xc3\xa9", "!!"};
        pretok_case("Hello, world's   test\n\n123 caf\xc3\xa9!!", TOK_PRE_GPT2, w1, 11); /* "\n\n1": \s+(?!\S) takes one \n, then \s+ the other */
        const char *w2[] = {"a", " ", "1", "2", "3", " b"};
        pretok_case("a 123 b", TOK_PRE_GPT2_DIGITS, w2, 6);
        const char *w3[] = {"hello", ",", " world", "!!\n\n", "ok", " ", "123", "45", " I", "'M", "\n"};
        pretok_case("hello, world!!\n\nok 12345 I'M\n", TOK_PRE_LLAMA3, w3, 11);
    }

    /* the CLI reads tokenizer.json from the directory */
    tok_free(&t512);
    model_free(&ref);
    CHECK(test_rmtree(dir) == 0, "cleanup");
    return test_done("test_hf");
}
