/* test_loaders_hostile.c -- broken and hostile GGUF files and Hugging Face
 * directories: each must fail with "<path>: <what>", never crash (run under
 * --enable-asan). The files are made here from a tiny random model. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/hf.h"
#include "format/safetensors.h"
#include "test.h"
#include "writers.h"

static char dir[] = "/tmp/onebit-hostile2-XXXXXX";
static Model tm;   /* dim 32, hidden 32, 1 layer, 2 heads, 1 kv head, vocab 8, tied */
static Tokenizer tt;

static char *path_of(const char *name) { return test_path_in(dir, name); }

/* load path; expect failure mentioning errpath (default path) and needle */
static void expect_fail(const char *path, const char *errpath, const char *needle, const char *what)
{
    Model m;
    Tokenizer t;
    int tl = 0;
    char err[OB_ERRLEN] = "";
    int rc = model_load_ex(&m, &t, &tl, path, err);
    CHECK(rc == -1, "%s: loaded", what);
    CHECK(strncmp(err, errpath ? errpath : path, strlen(errpath ? errpath : path)) == 0 && (!needle || strstr(err, needle)),
          "%s: message '%s' lacks '%s: ' or '%s'", what, err, errpath ? errpath : path, needle ? needle : "");
    if (rc == 0) {
        if (tl) tok_free(&t);
        model_free(&m);
    }
}

/* ---- GGUF ----------------------------------------------------------------*/
enum {
    G_GOOD, G_DIMS5, G_OVERFLOW, G_TYPE99, G_Q4K, G_DUP, G_MISSING, G_SHAPE, G_MISALIGN, G_OVERLAP, G_PASTEND,
    G_ALIGN3, G_ARCH, G_NOLAYERS, G_LAYERS_STR, G_KVTYPE, G_DEEP, G_ARRBIG, G_Q8ROW, G_TOKCOUNT, G_DUPKEY, G_BOS,
    G_NAN, G_V1, G_V99, G_Q6KROW, G_Q50ROW, G_Q41, G_NG
};

static Buf gguf_variant(int v)
{
    GGUFW w = {0};
    if (v == G_ALIGN3) gw_u32(&w, "general.alignment", 3);
    if (v == G_KVTYPE) { gw_key(&w, "general.weird", 99); buf_u32(&w.kv, 0); }
    if (v == G_DEEP) { /* array of array of array of array of array of u8 */
        gw_key(&w, "general.deep", GGUF_ARRAY);
        for (int i = 0; i < 5; i++) { buf_u32(&w.kv, GGUF_ARRAY); buf_u64(&w.kv, 1); }
        buf_u32(&w.kv, GGUF_U8); buf_u64(&w.kv, 1); buf_put(&w.kv, "x", 1);
    }
    if (v == G_ARRBIG) { gw_key(&w, "general.big", GGUF_ARRAY); buf_u32(&w.kv, GGUF_U32); buf_u64(&w.kv, 1ull << 40); }
    if (v == G_ARCH) gw_str(&w, "general.architecture", "gpt2");
    if (v == G_LAYERS_STR) gw_str(&w, "llama.block_count", "one");
    if (v == G_DUPKEY) gw_u32(&w, "llama.embedding_length", 32);
    Model *m = &tm;
    gw_model(&w, m, GGML_F32, 1);
    if (v == G_NOLAYERS || v == G_ARCH || v == G_LAYERS_STR) {
        /* rebuild the metadata without the second architecture/block_count */
        GGUFW w2 = {0};
        if (v != G_ARCH) gw_str(&w2, "general.architecture", "llama");
        if (v == G_ARCH) gw_str(&w2, "general.architecture", "gpt2");
        if (v == G_LAYERS_STR) gw_str(&w2, "llama.block_count", "one");
        gw_u32(&w2, "llama.embedding_length", 32);
        gw_u32(&w2, "llama.feed_forward_length", 32);
        gw_u32(&w2, "llama.attention.head_count", 2);
        memcpy(w2.t, w.t, sizeof w.t);
        w2.n_t = w.n_t;
        free(w.kv.p);
        w = w2;
    }
    if (v != G_TOKCOUNT) gw_tokenizer(&w, &tt);
    else {
        gw_str(&w, "tokenizer.ggml.model", "llama");
        gw_key(&w, "tokenizer.ggml.tokens", GGUF_ARRAY);
        buf_u32(&w.kv, GGUF_STRING); buf_u64(&w.kv, 9);
        for (int i = 0; i < 9; i++) buf_gstr(&w.kv, "a");
    }
    if (v == G_BOS) gw_u32(&w, "tokenizer.ggml.unknown_token_id", 99);
    WTensor *q = &w.t[3]; /* blk.0.attn_q.weight */
    if (v == G_Q8ROW) { q->type = GGML_Q8_0; q->ne[0] = 16; q->ne[1] = 64; }
    if (v == G_DIMS5) { q->n_dims = 5; q->ne[2] = q->ne[3] = q->ne[4] = 1; }
    if (v == G_OVERFLOW) { q->ne[0] = 1ull << 40; q->ne[1] = 1ull << 40; }
    if (v == G_TYPE99) q->type = 99;
    if (v == G_Q4K) q->type = 12;
    if (v == G_Q6KROW) q->type = GGML_Q6_K;
    if (v == G_Q50ROW) { q->type = GGML_Q5_0; q->ne[0] = 16; q->ne[1] = 64; }
    if (v == G_Q41) q->type = 3; /* Q4_1: a ggml type not read here */
    if (v == G_DUP) snprintf(w.t[4].name, sizeof w.t[4].name, "%s", q->name);
    if (v == G_MISSING) w.n_t--; /* drops blk.0.ffn_up.weight */
    if (v == G_SHAPE) { q->ne[1] = 16; }
    if (v == G_MISALIGN) q->off_override = 36;
    if (v == G_OVERLAP) w.t[4].off_override = 0;
    if (v == G_PASTEND) q->off_override = 1 << 20;
    static float nanbuf[32 * 32];
    if (v == G_NAN) { memcpy(nanbuf, q->src, sizeof nanbuf); nanbuf[7] = NAN; q->src = nanbuf; }
    if (v == G_V1) w.version = 1;
    if (v == G_V99) w.version = 99;
    Buf b = {0};
    gw_build(&w, &b);
    free(w.kv.p);
    return b;
}

static void gguf_cases(void)
{
    static const struct { int v; const char *needle; } cases[] = {
        {G_DIMS5, "dimensions"}, {G_OVERFLOW, "too large"}, {G_TYPE99, "type unknown (99)"}, {G_Q4K, "Q4_K row length 32 is not a multiple of 256"},
        {G_Q6KROW, "Q6_K row length 32 is not a multiple of 256"}, {G_Q50ROW, "Q5_0 row length 16 is not a multiple of 32"},
        {G_Q41, "type Q4_1 (3); supported: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K"},
        {G_DUP, "duplicate tensor name blk.0.attn_q.weight"}, {G_MISSING, "missing tensor blk.0.ffn_up.weight"},
        {G_SHAPE, "shape [32, 16]"}, {G_MISALIGN, "alignment"}, {G_OVERLAP, "overlap"}, {G_PASTEND, "past the end"},
        {G_ALIGN3, "general.alignment"}, {G_ARCH, "architecture 'gpt2'"}, {G_NOLAYERS, "missing metadata llama.block_count"},
        {G_LAYERS_STR, "expected an integer"}, {G_KVTYPE, "unknown metadata value type 99"}, {G_DEEP, "nested"},
        {G_ARRBIG, "runs past the end"}, {G_Q8ROW, "not a multiple of 32"}, {G_TOKCOUNT, "tokenizer.ggml.tokens has 9 entries"},
        {G_DUPKEY, "duplicate metadata key llama.embedding_length"}, {G_BOS, "out of range"}, {G_NAN, "not finite"},
        {G_V1, "version 1"}, {G_V99, "version 99"},
    };
    Buf good = gguf_variant(G_GOOD);
    char *gp = path_of("good.gguf");
    write_buf(gp, good.p, good.n);
    Model m;
    Tokenizer t;
    int tl = 0;
    char err[OB_ERRLEN];
    CHECK(model_load_ex(&m, &t, &tl, gp, err) == 0 && tl == 1, "tiny good gguf: %s", err);
    if (m.arena) model_free(&m);
    if (tl) tok_free(&t);
    const char *dump = getenv("ONEBIT_FUZZ_SEEDS");
    if (dump) {
        char sp[1000];
        snprintf(sp, sizeof sp, "%s/tiny_spm.gguf", dump);
        write_buf(sp, good.p, good.n);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Buf b = gguf_variant(cases[i].v);
        char name[64];
        snprintf(name, sizeof name, "case%d.gguf", cases[i].v);
        char *p = path_of(name);
        write_buf(p, b.p, b.n);
        free(b.p);
        expect_fail(p, NULL, cases[i].needle, name);
    }
    /* patched header fields */
    Buf b = {0};
    buf_put(&b, good.p, good.n);
    char *p = path_of("patched.gguf");
    struct { size_t off; uint64_t val; int width; const char *needle; } pat[] = {
        {0, 0x46554746, 4, "not a llama2.c checkpoint"}, /* not GGUF by content: read as llama2.c */
        {4, 0x03000000, 4, "big-endian"},
        {8, 1ull << 60, 8, "tensor count"},
        {16, 1ull << 60, 8, "metadata count"},
        {24, 1ull << 62, 8, "metadata key length"},
    };
    for (size_t i = 0; i < sizeof pat / sizeof pat[0]; i++) {
        memcpy(b.p, good.p, good.n);
        memcpy(b.p + pat[i].off, &pat[i].val, pat[i].width);
        write_buf(p, b.p, b.n);
        expect_fail(p, NULL, pat[i].needle, pat[i].needle);
    }
    GGUF g;
    memcpy(b.p, good.p, good.n);
    b.p[1] = 'X';
    CHECK(gguf_parse(&g, b.p, b.n, err) == -1 && strstr(err, "bad magic"), "gguf_parse: bad magic: %s", err);
    CHECK(gguf_parse(&g, good.p, good.n, err) == 0 && g.version == 3 && g.n_tensors == 11 && g.alignment == 32 &&
          g.data_offset % 32 == 0, "gguf_parse good: %s", err);
    if (g.kv) gguf_free(&g);
    /* every truncation of the header and a stride through the data */
    int bad = 0, n = 0;
    for (size_t cut = 0; cut < good.n; cut += cut < 4096 ? 1 : 97) {
        write_buf(p, good.p, cut);
        Model mm;
        Tokenizer tk;
        int tk_l = 0;
        err[0] = 0;
        int rc = model_load_ex(&mm, &tk, &tk_l, p, err);
        if (rc == 0) { model_free(&mm); if (tk_l) tok_free(&tk); }
        bad += rc != -1 || strncmp(err, p, strlen(p)) != 0;
        n++;
    }
    CHECK(bad == 0, "%d of %d truncated GGUF files loaded or gave no path", bad, n);
    free(b.p);
    free(good.p);
}

/* each ggml block type read: a tiny model (rows of 256) in that type loads
 * with logits near its F32 original's; the file one byte short fails
 * naming the last tensor with its exact size in the type; the files seed
 * the fuzz corpus */
static void gguf_quant_cases(void)
{
    static const struct { uint32_t type; int block, bytes; } q[] = {
        {GGML_Q4_0, 32, 18}, {GGML_Q5_0, 32, 22}, {GGML_Q4_K, 256, 144}, {GGML_Q5_K, 256, 176}, {GGML_Q6_K, 256, 210},
    };
    static const int toks[4] = {1, 5, 2, 7};
    Model qm;
    tiny_model(&qm, 256, 256, 1, 4, 1, 8, 1);
    const char *dump = getenv("ONEBIT_FUZZ_SEEDS");
    for (size_t k = 0; k < sizeof q / sizeof q[0]; k++) {
        GGUFW w = {0};
        gw_model(&w, &qm, q[k].type, 1);
        gw_tokenizer(&w, &tt);
        Buf b = {0};
        gw_build(&w, &b);
        free(w.kv.p);
        char name[64], needle[96], err[OB_ERRLEN];
        snprintf(name, sizeof name, "tiny_%s.gguf", gguf_type_name(q[k].type));
        char *p = path_of(name);
        write_buf(p, b.p, b.n);
        if (dump) {
            char sp[1000];
            snprintf(sp, sizeof sp, "%s/%s", dump, name);
            write_buf(sp, b.p, b.n);
        }
        Model m;
        Tokenizer t;
        int tl = 0;
        if (model_load_ex(&m, &t, &tl, p, err) == 0) {
            double d = max_logit_diff(&qm, &m, toks, 4);
            printf("%s: max |logit diff| vs F32 %g\n", name, d);
            CHECK(d > 0 && d < 0.05, "%s: logits differ from F32 by %g", name, d);
            model_free(&m);
            if (tl) tok_free(&t);
        } else CHECK(0, "%s: %s", name, err);
        write_buf(p, b.p, b.n - 1);
        snprintf(needle, sizeof needle, "tensor blk.0.ffn_up.weight (%d bytes", 256 * 256 / q[k].block * q[k].bytes);
        expect_fail(p, NULL, needle, name);
        free(b.p);
    }
    model_free(&qm);
}

/* ---- safetensors / Hugging Face ------------------------------------------*/

static char *mkhf(const char *name, int tied)
{
    char *d = ob_strdup(path_of(name));
    mkdir(d, 0755);
    char p[800];
    snprintf(p, sizeof p, "%s/config.json", d);
    st_config(p, &tm.cfg, tied);
    return d;
}

static void raw_st(const char *d, const char *hdr, size_t data_bytes)
{
    char p[800];
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    FILE *f = fopen(p, "wb");
    uint64_t hl = strlen(hdr);
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
}

static void write_text(const char *d, const char *file, const char *text)
{
    char p[800];
    snprintf(p, sizeof p, "%s/%s", d, file);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static void hf_cases(void)
{
    char err[OB_ERRLEN], p[900];
    STens *ts = calloc(64, sizeof(STens));
    int n = st_model(&tm, ts, "F32", 1);
    char *good = mkhf("hf_good", 1);
    snprintf(p, sizeof p, "%s/model.safetensors", good);
    st_write(p, ts, n);
    Model m;
    CHECK(model_load(&m, good, err) == 0, "tiny good hf: %s", err);
    if (m.arena) model_free(&m);
    const char *dump = getenv("ONEBIT_FUZZ_SEEDS");
    if (dump) {
        char cmd[2000];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s/tiny.safetensors'", p, dump);
        CHECK(system(cmd) == 0, "seed");
    }
    char *gs = NULL;
    size_t gl;
    ob_read_file(p, &gs, &gl, err);

    /* truncations of model.safetensors */
    char *d = mkhf("hf_trunc", 1);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    int bad = 0, cnt = 0;
    for (size_t cut = 0; cut < gl; cut += cut < 2048 ? 1 : 61) {
        write_buf(p, gs, cut);
        err[0] = 0;
        Model mm;
        int rc = model_load(&mm, d, err);
        if (rc == 0) model_free(&mm);
        bad += rc != -1 || strncmp(err, p, strlen(p)) != 0;
        cnt++;
    }
    CHECK(bad == 0, "%d of %d truncated safetensors loaded or gave no path", bad, cnt);
    /* header length past EOF */
    uint64_t big = gl;
    memcpy(gs, &big, 8);
    write_buf(p, gs, gl);
    expect_fail(d, p, "header length", "header length past EOF");
    free(d);

    static const struct { const char *name, *hdr; size_t data; const char *needle; } raw[] = {
        {"st_unterminated", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}  ", 4, "not terminated"},
        {"st_junk", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, "junk"},
        {"st_array", "[1,2,3]", 0, "JSON object"},
        {"st_overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"},
        {"st_order", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8, "out of order"},
        {"st_past", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "past the end"},
        {"st_size", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "8 bytes for 3 F32"},
        {"st_dtype", "{\"a\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype F99"},
        {"st_dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, "9 dimensions"},
        {"st_overflow", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1099511627776,1099511627776,1099511627776],\"data_offsets\":[0,1]}}", 1, "overflow"},
        {"st_negative", "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1, "bad shape"},
        {"st_dup", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, "duplicate tensor name a"},
        {"st_offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 1, "data_offsets"},
        {"st_missing", "{\"__metadata__\":{\"x\":\"y\"}}", 0, "missing tensor model.embed_tokens.weight"},
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        d = mkhf(raw[i].name, 1);
        raw_st(d, raw[i].hdr, raw[i].data);
        snprintf(p, sizeof p, "%s/model.safetensors", d);
        expect_fail(d, strcmp(raw[i].name, "st_missing") ? p : d, raw[i].needle, raw[i].name);
        free(d);
    }
    /* an unsupported dtype for a needed tensor: norm written as I32 */
    d = mkhf("hf_i32", 1);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    char *hdr_i32 = malloc(gl);
    memcpy(hdr_i32, gs, gl);
    uint64_t hl0 = gl; /* restore the real header length */
    {
        STFile f;
        char *orig;
        size_t ol;
        char gp[900];
        snprintf(gp, sizeof gp, "%s/model.safetensors", good);
        ob_read_file(gp, &orig, &ol, err);
        memcpy(&hl0, orig, 8);
        memcpy(hdr_i32, orig, ol);
        char *at = strstr(hdr_i32 + 8, "\"model.norm.weight\":{\"dtype\":\"F32\"");
        if (at) memcpy(strstr(at, "F32"), "I32", 3);
        write_buf(p, hdr_i32, ol);
        CHECK(st_parse(&f, orig, ol, err) == 0, "good file parses: %s", err);
        if (f.t) st_free(&f);
        free(orig);
    }
    expect_fail(d, p, "dtype I32", "I32 norm");
    free(hdr_i32);
    free(d);
    /* shape mismatch with config.json */
    d = mkhf("hf_shape", 1);
    snprintf(p, sizeof p, "%s/config.json", d);
    ModelConfig c2 = tm.cfg;
    c2.hidden_dim = 48;
    st_config(p, &c2, 1);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    st_write(p, ts, n);
    expect_fail(d, p, "config.json implies [48, 32]", "shape mismatch");
    free(d);
    /* untied without lm_head */
    d = mkhf("hf_nohead", 0);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    st_write(p, ts, n);
    expect_fail(d, NULL, "missing tensor lm_head.weight", "untied without lm_head");
    free(d);
    /* config.json problems */
    static const struct { const char *name, *cfg, *needle; } cfgs[] = {
        {"cfg_json", "{\"model_type\": \"llama\",", "not valid JSON"},
        {"cfg_type", "{\"model_type\":\"gpt2\"}", "model_type 'gpt2'"},
        {"cfg_missing", "{\"model_type\":\"llama\",\"hidden_size\":32}", "missing intermediate_size"},
        {"cfg_neg", "{\"model_type\":\"llama\",\"hidden_size\":-32,\"intermediate_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"vocab_size\":8}", "hidden_size"},
        {"cfg_float", "{\"model_type\":\"llama\",\"hidden_size\":32.5,\"intermediate_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"vocab_size\":8}", "hidden_size"},
        {"cfg_heads", "{\"model_type\":\"llama\",\"hidden_size\":32,\"intermediate_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":3,\"vocab_size\":8}", "multiple"},
        {"cfg_rope", "{\"model_type\":\"llama\",\"hidden_size\":32,\"intermediate_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"vocab_size\":8,\"rope_scaling\":{\"type\":\"llama3\"}}", "rope_scaling"},
        {"cfg_act", "{\"model_type\":\"llama\",\"hidden_act\":\"gelu\"}", "silu"},
        {"cfg_eps", "{\"model_type\":\"llama\",\"hidden_size\":32,\"intermediate_size\":32,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"vocab_size\":8,\"rms_norm_eps\":\"x\"}", "rms_norm_eps"},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        d = mkhf(cfgs[i].name, 1);
        write_text(d, "config.json", cfgs[i].cfg);
        snprintf(p, sizeof p, "%s/config.json", d);
        expect_fail(d, p, cfgs[i].needle, cfgs[i].name);
        free(d);
    }
    /* a directory without config.json / without weights */
    d = ob_strdup(path_of("empty"));
    mkdir(d, 0755);
    expect_fail(d, NULL, "without config.json", "empty directory");
    free(d);
    d = mkhf("noweights", 1);
    expect_fail(d, NULL, "no model.safetensors", "no weights");
    free(d);
    /* sharded: a missing shard, a path outside, a tensor in two shards, the index naming the wrong shard */
    d = mkhf("shards", 1);
    snprintf(p, sizeof p, "%s/a.safetensors", d);
    st_write(p, ts, n / 2);
    snprintf(p, sizeof p, "%s/b.safetensors", d);
    st_write(p, ts + n / 2 - 1, n - n / 2 + 1); /* overlaps a by one tensor */
    Buf idx = {0};
    buf_put(&idx, "{\"weight_map\":{", 15);
    for (int i = 0; i < n; i++) {
        char e[256];
        snprintf(e, sizeof e, "%s\"%s\":\"%s\"", i ? "," : "", ts[i].name, i < n / 2 ? "a.safetensors" : "b.safetensors");
        buf_put(&idx, e, strlen(e));
    }
    buf_put(&idx, "}}", 3);
    write_text(d, "model.safetensors.index.json", (char *)idx.p);
    char want[1000];
    snprintf(want, sizeof want, "tensor %s is in both", ts[n / 2 - 1].name);
    expect_fail(d, NULL, want, "tensor in two shards");
    snprintf(p, sizeof p, "%s/b.safetensors", d);
    st_write(p, ts + n / 2, n - n / 2);
    Model ms;
    CHECK(model_load(&ms, d, err) == 0, "good shards: %s", err);
    if (ms.arena) model_free(&ms);
    /* index names the wrong shard for the first tensor */
    char *wrong = strstr((char *)idx.p, "a.safetensors");
    memcpy(wrong, "b", 1);
    write_text(d, "model.safetensors.index.json", (char *)idx.p);
    expect_fail(d, NULL, "the index says b.safetensors", "index names the wrong shard");
    write_text(d, "model.safetensors.index.json", "{\"weight_map\":{\"x\":\"c.safetensors\"}}");
    snprintf(p, sizeof p, "%s/c.safetensors", d);
    expect_fail(d, p, "No such file", "missing shard");
    write_text(d, "model.safetensors.index.json", "{\"weight_map\":{\"x\":\"../hf_good/model.safetensors\"}}");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
    expect_fail(d, p, "not a file name", "shard outside the directory");
    write_text(d, "model.safetensors.index.json", "{\"weight_map\":[1]}");
    expect_fail(d, p, "weight_map", "weight_map not an object");
    free(idx.p);
    free(d);
    free(gs);
    free(good);
    free(ts);
}

static void tokenizer_json_cases(void)
{
    static const struct { const char *json, *needle; } cases[] = {
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0,\"c\":1}}}", "appears twice"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1}}}", "bad id"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":99999}}}", "more than the model"},
        {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", "WordPiece"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":[]}}", "malformed"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2},\"merges\":[1]}}", "merge 0"},
        {"{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\"]]}}", "[piece, score]"},
        {"{\"added_tokens\":[{\"id\":\"x\"}],\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}}", "added_tokens"},
        {"{\"model\":", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = path_of("tokenizer.json");
        FILE *f = fopen(p, "w");
        fputs(cases[i].json, f);
        fclose(f);
        Tokenizer t;
        char err[OB_ERRLEN] = "";
        int rc = tok_json_load(&t, p, 16, err);
        CHECK(rc == -1 && !strncmp(err, p, strlen(p)) && strstr(err, cases[i].needle), "tokenizer.json case %zu: %s", i, err);
        if (rc == 0) tok_free(&t);
    }
}

int main(void)
{
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    tiny_model(&tm, 32, 32, 1, 2, 1, 8, 1);
    const char *pieces[8] = {"<unk>", "<s>", "</s>", " ", "a", "b", " a", "ab"};
    float scores[8] = {0, 0, 0, -1, -2, -3, -4, -5};
    char err[OB_ERRLEN];
    if (tok_init(&tt, 8, pieces, scores, 1, 2, err)) { fprintf(stderr, "%s\n", err); return 1; }
    gguf_cases();
    gguf_quant_cases();
    hf_cases();
    tokenizer_json_cases();
    tok_free(&tt);
    model_free(&tm);
    CHECK(test_rmtree(dir) == 0, "cleanup");
    return test_done("test_loaders_hostile");
}
