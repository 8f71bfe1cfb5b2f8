/* bitllama.c -- the OneBit authors' bitllama checkpoints in and out (see
 * bitllama.h): a directory read through format/hf.h's HFModel into
 * student_new's student, and a student written as BitLlamaForCausalLMInf. */
#include "onebit/bitllama.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "base/file.h"
#include "format/hf.h"
#include "format/safetensors.h"
#include "format/spm.h"
#include "onebit/bitlinear.h"
#include "onebit/student.h"

/* their names of the LIN_ order (q k v o gate down up) */
static const char *const proj_names[LIN_PER_LAYER] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj", "mlp.down_proj", "mlp.up_proj",
};

/* the engine's (interleaved RoPE pairs) row of Hugging Face row r of a
 * q/k projection (heads of hd rows; heads 0: any other projection) */
static int engine_row(int r, int heads, int hd)
{
    if (!heads) return r;
    int h = r / hd, rem = r % hd, j = rem / (hd / 2), i = rem % (hd / 2);
    return h * hd + 2 * i + j;
}

static int rope_heads(const ModelConfig *c, int k) { return k == LIN_Q ? c->n_heads : k == LIN_K ? c->n_kv_heads : 0; }

static int all_finite(const float *x, size_t n, const char *dir, const char *name, char *err)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) { ob_seterr(err, "%s: tensor %s: element %zu is not finite", dir, name, i); return -1; }
    return 0;
}

/* one projection: signs (packed int8 or latent FP), h, g */
static int load_proj(const HFModel *h, BitLinear *bl, int l, int k, char *err)
{
    const ModelConfig *c = &h->cfg;
    int out = bl->out, in = bl->in, wpr = bl->words_per_row, heads = rope_heads(c, k);
    char nm[160];
    snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, proj_names[k]);
    const STTensor *t;
    const uint8_t *data;
    if (hf_model_tensor(h, nm, &t, &data, err)) return -1;
    uint64_t *words = ob_calloc((size_t)out * wpr, sizeof(uint64_t));
    int rc = -1;
    char shape[160];
    st_shape_str(t, shape, sizeof shape);
    if (t->dtype == ST_I8 || t->dtype == ST_U8) {
        /* packed: byte j of a row holds columns 8j..8j+7, bit 1 = -1 */
        int nb = (in + 7) / 8;
        if (t->n_dims != 2 || t->shape[0] != (uint64_t)out || t->shape[1] != (uint64_t)nb) {
            ob_seterr(err, "%s: tensor %s is %s [%s]; packed signs of a (%d, %d) projection are [%d, %d] (8 per byte)", h->dir, nm,
                      st_dtype_name(t->dtype), shape, out, in, out, nb);
            goto out;
        }
        for (int r = 0; r < out; r++) {
            const uint8_t *src = data + (size_t)r * nb;
            uint64_t *dst = words + (size_t)engine_row(r, heads, c->head_dim) * wpr;
            for (int j = 0; j < nb; j++) {
                uint64_t plus = (uint8_t)~src[j]; /* canonical: 1 = +1 */
                dst[(8 * j) / 64] |= plus << ((8 * j) & 63);
            }
        } /* bitlinear_set_bits clears the padding bits past in */
    } else if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16) {
        /* the training checkpoint's latent weights: sign(W) */
        float *w = ob_malloc((size_t)out * in * sizeof(float));
        if (hf_model_f32(h, nm, (uint64_t)out, (uint64_t)in, w, err)) { free(w); goto out; }
        for (int r = 0; r < out; r++) {
            const float *row = w + (size_t)r * in;
            uint64_t *dst = words + (size_t)engine_row(r, heads, c->head_dim) * wpr;
            for (int j = 0; j < in; j++)
                if (!(row[j] < 0)) dst[j / 64] |= 1ull << (j & 63);
        }
        free(w);
    } else {
        ob_seterr(err, "%s: tensor %s has dtype %s (packed signs are I8; latent weights F32, F16 or BF16)", h->dir, nm, st_dtype_name(t->dtype));
        goto out;
    }
    bitlinear_set_bits(bl, words);
    float *hs = ob_malloc((size_t)out * sizeof(float));
    snprintf(nm, sizeof nm, "model.layers.%d.%s.weight_scale", l, proj_names[k]);
    if (hf_model_f32(h, nm, 0, (uint64_t)out, hs, err) || all_finite(hs, (size_t)out, h->dir, nm, err)) { free(hs); goto out; }
    for (int r = 0; r < out; r++) bl->h[engine_row(r, heads, c->head_dim)] = hs[r];
    free(hs);
    snprintf(nm, sizeof nm, "model.layers.%d.%s.input_factor", l, proj_names[k]);
    if (hf_model_f32(h, nm, 0, (uint64_t)in, bl->g, err) || all_finite(bl->g, (size_t)in, h->dir, nm, err)) goto out;
    bl->norm = 1;
    rc = 0;
out:
    free(words);
    return rc;
}

int bitllama_load(Model *m, Tokenizer *tok, const char *dir, char *err)
{
    memset(m, 0, sizeof *m);
    if (tok) memset(tok, 0, sizeof *tok);
    HFModel h;
    if (hf_model_open(&h, dir, err)) return -1;
    if (strcmp(h.model_type, "bitllama")) {
        ob_seterr(err, "%s: model_type '%s' is not a OneBit checkpoint (bitllama); a dense model is a --teacher", h.dir, h.model_type);
        hf_model_close(&h);
        return -1;
    }
    const ModelConfig *c = &h.cfg;
    if (student_new(m, c, err)) { hf_model_close(&h); return -1; }
    size_t C = (size_t)c->dim, V = (size_t)c->vocab_size;
    char nm[160];
    int rc = -1;
    if (hf_model_f32(&h, "model.embed_tokens.weight", V, C, m->tok_emb, err)) goto fail;
    if (hf_model_f32(&h, "model.norm.weight", 0, C, m->rms_final, err)) goto fail;
    if (!c->shared_classifier && hf_model_f32(&h, "lm_head.weight", V, C, m->wcls, err)) goto fail;
    for (int l = 0; l < c->n_layers; l++) {
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        if (hf_model_f32(&h, nm, 0, C, m->rms_att + (size_t)l * C, err)) goto fail;
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        if (hf_model_f32(&h, nm, 0, C, m->rms_ffn + (size_t)l * C, err)) goto fail;
        for (int k = 0; k < LIN_PER_LAYER; k++)
            if (load_proj(&h, student_linear(m, l * LIN_PER_LAYER + k), l, k, err)) goto fail;
    }
    if (tok) {
        int loaded = 0;
        if (hf_model_tokenizer(&h, tok, &loaded, err)) goto fail;
        if (!loaded) { ob_seterr(err, "%s: no tokenizer.json or tokenizer.model (pass --tokenizer)", h.dir); goto fail; }
    }
    rc = 0;
fail: /* the directory's state, and on failure the half-built model */
    hf_model_close(&h);
    if (rc) model_free(m);
    return rc;
}

/* ---- export ---------------------------------------------------------------*/

static int write_text(const char *dir, const char *name, const char *text, char *err)
{
    char *p = file_join(dir, name);
    int rc = file_write_atomic(p, text, strlen(text), err);
    free(p);
    return rc;
}

/* copy dir/name into out when it exists: 1 copied, 0 absent, -1 error */
static int copy_if_there(const char *dir, const char *name, const char *out, char *err)
{
    char *src = file_join(dir, name), *dst = file_join(out, name);
    int rc = 0;
    if (access(src, F_OK) == 0) {
        char *data;
        size_t n;
        rc = -1;
        if (ob_read_file(src, &data, &n, err) == 0) {
            rc = file_write_atomic(dst, data, n, err) ? -1 : 1;
            free(data);
        }
    }
    free(src);
    free(dst);
    return rc;
}

/* out: made, or already there and empty */
static int make_out_dir(const char *out, char *err)
{
    if (mkdir(out, 0777) == 0) return 0;
    if (errno != EEXIST) { ob_seterr(err, "%s: %s", out, strerror(errno)); return -1; }
    DIR *d = opendir(out);
    if (!d) { ob_seterr(err, "%s: %s", out, strerror(errno)); return -1; }
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    if (!empty) { ob_seterr(err, "%s: exists and is not empty", out); return -1; }
    return 0;
}

int bitllama_export(const Model *m, const Tokenizer *tok, const char *tok_dir, const char *out, char *err)
{
    const ModelConfig *c = &m->cfg;
    int L = c->n_layers, nlin = L * LIN_PER_LAYER;
    for (int i = 0; i < nlin; i++) {
        const BitLinear *bl = student_linear(m, i);
        if (!bl) { ob_seterr(err, "not a 1-bit student"); return -1; }
        if (!bl->norm) { ob_seterr(err, "layers.%d.%s has no LayerNorm (a PTQ baseline): bitllama always normalizes", i / LIN_PER_LAYER, proj_names[i % LIN_PER_LAYER]); return -1; }
    }
    if (make_out_dir(out, err)) return -1;
    int nt = 2 + !c->shared_classifier + L * (2 + 3 * LIN_PER_LAYER);
    STWrite *t = ob_calloc((size_t)nt, sizeof *t);
    char **names = ob_calloc((size_t)nt, sizeof *names);
    void **bufs = ob_calloc((size_t)nlin * 2, sizeof *bufs);
    int n = 0;
    size_t C = (size_t)c->dim, V = (size_t)c->vocab_size;
#define ADD(nm, dt, nd, d0, d1, ptr)                                                       \
    do {                                                                                   \
        names[n] = ob_strdup(nm);                                                          \
        t[n] = (STWrite){names[n], dt, nd, {(uint64_t)(d0), (uint64_t)(d1)}, ptr};         \
        n++;                                                                               \
    } while (0)
    char nm[160];
    ADD("model.embed_tokens.weight", ST_F32, 2, V, C, m->tok_emb);
    for (int l = 0; l < L; l++) {
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        ADD(nm, ST_F32, 1, C, 0, m->rms_att + (size_t)l * C);
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        ADD(nm, ST_F32, 1, C, 0, m->rms_ffn + (size_t)l * C);
        for (int k = 0; k < LIN_PER_LAYER; k++) {
            int i = l * LIN_PER_LAYER + k;
            const BitLinear *bl = student_linear(m, i);
            int o = bl->out, in = bl->in, nb = (in + 7) / 8, heads = rope_heads(c, k);
            uint8_t *packed = ob_malloc((size_t)o * nb);
            float *hs = ob_malloc((size_t)o * sizeof(float));
            bufs[2 * i] = packed;
            bufs[2 * i + 1] = hs;
            for (int r = 0; r < o; r++) { /* Hugging Face row r from engine row er */
                int er = engine_row(r, heads, c->head_dim);
                const uint64_t *src = bl->bits + (size_t)er * bl->words_per_row;
                for (int j = 0; j < nb; j++) {
                    uint8_t minus = (uint8_t)~(src[(8 * j) / 64] >> ((8 * j) & 63));
                    if (8 * j + 8 > in) minus &= (uint8_t)((1u << (in - 8 * j)) - 1); /* padding bits 0 */
                    packed[(size_t)r * nb + j] = minus;
                }
                hs[r] = bl->h[er];
            }
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, proj_names[k]);
            ADD(nm, ST_I8, 2, o, nb, packed);
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight_scale", l, proj_names[k]);
            ADD(nm, ST_F32, 1, o, 0, hs);
            snprintf(nm, sizeof nm, "model.layers.%d.%s.input_factor", l, proj_names[k]);
            ADD(nm, ST_F32, 1, in, 0, bl->g);
        }
    }
    ADD("model.norm.weight", ST_F32, 1, C, 0, m->rms_final);
    if (!c->shared_classifier) ADD("lm_head.weight", ST_F32, 2, V, C, m->wcls);
#undef ADD
    char *sp = file_join(out, "model.safetensors");
    int rc = st_write_file(sp, t, (size_t)n, err);
    free(sp);
    for (int i = 0; i < n; i++) free(names[i]);
    for (int i = 0; i < 2 * nlin; i++) free(bufs[i]);
    free(names);
    free(bufs);
    free(t);
    if (rc) return -1;
    /* config.json: LlamaConfig's fields with their model type */
    int bos = tok ? tok->bos_id : 1, eos = tok ? tok->eos_id : 2;
    ObBuf b = {0};
    ob_buf_printf(&b, "{\n  \"architectures\": [\"BitLlamaForCausalLMInf\"],\n  \"model_type\": \"bitllama\",\n");
    ob_buf_printf(&b, "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n", c->dim, c->hidden_dim, c->n_layers);
    ob_buf_printf(&b, "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n", c->n_heads, c->n_kv_heads, c->head_dim);
    ob_buf_printf(&b, "  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n", c->vocab_size, c->seq_len);
    ob_buf_printf(&b, "  \"rms_norm_eps\": %.9g,\n  \"rope_theta\": %.9g,\n  \"rope_scaling\": null,\n", (double)c->norm_eps, (double)c->rope_theta);
    ob_buf_printf(&b, "  \"hidden_act\": \"silu\",\n  \"attention_bias\": false,\n  \"mlp_bias\": false,\n  \"pretraining_tp\": 1,\n");
    ob_buf_printf(&b, "  \"initializer_range\": 0.02,\n  \"use_cache\": true,\n  \"tie_word_embeddings\": %s,\n", c->shared_classifier ? "true" : "false");
    ob_buf_printf(&b, "  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"torch_dtype\": \"float32\"\n}\n", bos, eos);
    rc = write_text(out, "config.json", b.s, err);
    free(b.s);
    if (rc) return -1;
    /* the tokenizer: the teacher's files, else what the student carries */
    int copied = 0;
    struct stat st;
    if (tok_dir && stat(tok_dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        const char *files[] = {"tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};
        for (int i = 0; i < 4; i++) {
            int r = copy_if_there(tok_dir, files[i], out, err);
            if (r < 0) return -1;
            if (i < 2) copied += r;
        }
    }
    if (!copied && tok) {
        char *tp = file_join(out, "tokenizer.model");
        rc = spm_write(tok, tp, err);
        free(tp);
        if (rc) return -1;
        ObBuf tc = {0};
        ob_buf_printf(&tc, "{\n  \"tokenizer_class\": \"LlamaTokenizer\",\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n"
                           "  \"bos_token\": \"<s>\",\n  \"eos_token\": \"</s>\",\n  \"unk_token\": \"<unk>\",\n"
                           "  \"model_max_length\": %d,\n  \"legacy\": true\n}\n", c->seq_len);
        rc = write_text(out, "tokenizer_config.json", tc.s, err);
        free(tc.s);
        if (rc) return -1;
    }
    return 0;
}
