/* bitllama.c -- the OneBit authors' bitllama checkpoints in and out (see
 * bitllama.h): a directory read through format/hf.h's HFModel into
 * student_new's student, and a student written as BitLlamaForCausalLMInf. */
#include "onebit/bitllama.h"

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

/* ---- export ----------------------------------------------------------------*/

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

/* config.json: LlamaConfig's fields with their model type and `arch` */
static int write_config(const ModelConfig *c, const Tokenizer *tok, const char *arch, const char *out, char *err)
{
    int bos = tok ? tok->bos_id : 1, eos = tok ? tok->eos_id : 2;
    ObBuf b = {0};
    ob_buf_printf(&b, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"bitllama\",\n", arch);
    ob_buf_printf(&b, "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n", c->dim, c->hidden_dim, c->n_layers);
    ob_buf_printf(&b, "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n", c->n_heads, c->n_kv_heads, c->head_dim);
    ob_buf_printf(&b, "  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n", c->vocab_size, c->seq_len);
    ob_buf_printf(&b, "  \"rms_norm_eps\": %.9g,\n  \"rope_theta\": %.9g,\n  \"rope_scaling\": null,\n", (double)c->norm_eps, (double)c->rope_theta);
    ob_buf_printf(&b, "  \"hidden_act\": \"silu\",\n  \"attention_bias\": false,\n  \"mlp_bias\": false,\n  \"pretraining_tp\": 1,\n");
    ob_buf_printf(&b, "  \"initializer_range\": 0.02,\n  \"use_cache\": true,\n  \"tie_word_embeddings\": %s,\n", c->shared_classifier ? "true" : "false");
    ob_buf_printf(&b, "  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"torch_dtype\": \"float32\"\n}\n", bos, eos);
    int rc = write_text(out, "config.json", b.s, err);
    free(b.s);
    return rc;
}

/* the tokenizer: tok_dir's files (a teacher's directory), else tok written
 * as a tokenizer.model with a tokenizer_config.json */
static int write_tokenizer(const ModelConfig *c, const Tokenizer *tok, const char *tok_dir, const char *out, char *err)
{
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
    if (copied || !tok) return 0;
    char *tp = file_join(out, "tokenizer.model");
    int rc = spm_write(tok, tp, err);
    free(tp);
    if (rc) return -1;
    ObBuf tc = {0};
    ob_buf_printf(&tc, "{\n  \"tokenizer_class\": \"LlamaTokenizer\",\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n"
                       "  \"bos_token\": \"<s>\",\n  \"eos_token\": \"</s>\",\n  \"unk_token\": \"<unk>\",\n"
                       "  \"model_max_length\": %d,\n  \"legacy\": true\n}\n", c->seq_len);
    rc = write_text(out, "tokenizer_config.json", tc.s, err);
    free(tc.s);
    return rc;
}

/* One tensor of a checkpoint to write: an FP tensor as it is (fp), or a
 * projection's part computed when its shard is written (lin >= 0). */
enum { PART_FP, PART_PACKED, PART_LATENT, PART_H };
typedef struct {
    char name[128];
    int dtype, nd;
    uint64_t d0, d1;
    int part, lin;         /* lin: the linear (LIN_ order, layer-major) */
    const float *fp;       /* PART_FP */
    uint64_t bytes;
} OutTensor;

typedef struct {
    OutTensor *t;
    int n, cap;
} OutList;

static void out_add(OutList *o, const char *name, int dtype, int nd, uint64_t d0, uint64_t d1, int part, int lin, const float *fp)
{
    o->t = ob_grow(o->t, (size_t)o->n, &o->cap, 64, sizeof *o->t);
    OutTensor *t = &o->t[o->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype;
    t->nd = nd;
    t->d0 = d0;
    t->d1 = d1;
    t->part = part;
    t->lin = lin;
    t->fp = fp;
    t->bytes = d0 * (nd == 2 ? d1 : 1) * (dtype == ST_I8 ? 1 : 4);
}

/* the tensors of a checkpoint in the order Hugging Face's state dict has
 * them: fp's embedding, norms and head; per projection weight (packed or
 * latent), weight_scale (h) and input_factor (g: ing[i], or NULL) */
static void out_list(OutList *o, const Model *fp, int weight_part, const float *const *ing)
{
    const ModelConfig *c = &fp->cfg;
    size_t C = (size_t)c->dim, V = (size_t)c->vocab_size;
    char nm[128];
    out_add(o, "model.embed_tokens.weight", ST_F32, 2, V, C, PART_FP, -1, fp->tok_emb);
    for (int l = 0; l < c->n_layers; l++) {
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        out_add(o, nm, ST_F32, 1, C, 0, PART_FP, -1, fp->rms_att + (size_t)l * C);
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        out_add(o, nm, ST_F32, 1, C, 0, PART_FP, -1, fp->rms_ffn + (size_t)l * C);
        for (int k = 0; k < LIN_PER_LAYER; k++) {
            int i = l * LIN_PER_LAYER + k, out, in;
            model_lin_shape(c, k, &out, &in);
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, proj_names[k]);
            if (weight_part == PART_PACKED) out_add(o, nm, ST_I8, 2, (uint64_t)out, (uint64_t)(in + 7) / 8, PART_PACKED, i, NULL);
            else out_add(o, nm, ST_F32, 2, (uint64_t)out, (uint64_t)in, PART_LATENT, i, NULL);
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight_scale", l, proj_names[k]);
            out_add(o, nm, ST_F32, 1, (uint64_t)out, 0, PART_H, i, NULL);
            snprintf(nm, sizeof nm, "model.layers.%d.%s.input_factor", l, proj_names[k]);
            out_add(o, nm, ST_F32, 1, (uint64_t)in, 0, PART_FP, i, ing[i]);
        }
    }
    out_add(o, "model.norm.weight", ST_F32, 1, C, 0, PART_FP, -1, fp->rms_final);
    if (!c->shared_classifier) out_add(o, "lm_head.weight", ST_F32, 2, V, C, PART_FP, -1, fp->wcls);
}

/* Where a projection's rows come from: a loaded student's BitLinear (bl),
 * or a source's FP weights (w: sign or latent) and h, in engine row order. */
typedef struct {
    const Model *m;           /* the config (and the student, for bl) */
    const StudentLinearSrc *lin; /* NULL: the student's own BitLinears */
    int latent;               /* 1: w as it is; 0: 0.01·sign(w) */
} OutSrc;

/* the bytes of a computed tensor (malloc'd), in Hugging Face's row order */
static void *out_make(const OutSrc *s, const OutTensor *t)
{
    const ModelConfig *c = &s->m->cfg;
    int k = t->lin % LIN_PER_LAYER, heads = rope_heads(c, k), out = (int)t->d0;
    const BitLinear *bl = s->lin ? NULL : student_linear(s->m, t->lin);
    const StudentLinearSrc *src = s->lin ? &s->lin[t->lin] : NULL;
    void *buf = ob_malloc((size_t)t->bytes);
    for (int r = 0; r < out; r++) { /* Hugging Face row r from engine row er */
        int er = engine_row(r, heads, c->head_dim);
        if (t->part == PART_H) ((float *)buf)[r] = bl ? bl->h[er] : src->h[er];
        else if (t->part == PART_PACKED) {
            int in = bl->in, nb = (int)t->d1;
            const uint64_t *w = bl->bits + (size_t)er * bl->words_per_row;
            uint8_t *dst = (uint8_t *)buf + (size_t)r * nb;
            for (int j = 0; j < nb; j++) {
                uint8_t minus = (uint8_t)~(w[(8 * j) / 64] >> ((8 * j) & 63));
                if (8 * j + 8 > in) minus &= (uint8_t)((1u << (in - 8 * j)) - 1); /* padding bits 0 */
                dst[j] = minus;
            }
        } else if (!src->w) { /* PART_LATENT from packed signs (a mapped teacher's quantize) */
            size_t in = (size_t)t->d1, wpr = (in + 63) / 64;
            const uint64_t *w = src->bits + (size_t)er * wpr;
            float *dst = (float *)buf + (size_t)r * in;
            for (size_t j = 0; j < in; j++) dst[j] = w[j / 64] >> (j & 63) & 1 ? 0.01f : -0.01f;
        } else { /* PART_LATENT */
            size_t in = (size_t)t->d1;
            const float *w = src->w + (size_t)er * in;
            float *dst = (float *)buf + (size_t)r * in;
            if (s->latent) memcpy(dst, w, in * sizeof(float));
            else
                for (size_t j = 0; j < in; j++) dst[j] = w[j] < 0 ? -0.01f : 0.01f;
        }
    }
    return buf;
}

/* the tensors into dir as shards of at most shard_bytes (a tensor larger
 * than that alone): model.safetensors, or model-0000i-of-0000n.safetensors
 * and model.safetensors.index.json */
static int write_shards(const OutList *o, const OutSrc *s, uint64_t shard_bytes, const char *dir, char *err)
{
    int *shard = ob_malloc((size_t)o->n * sizeof(int)), ns = 0;
    uint64_t cur = 0, total = 0;
    for (int i = 0; i < o->n; i++) {
        if (i == 0 || (cur > 0 && cur + o->t[i].bytes > shard_bytes)) { ns++; cur = 0; }
        shard[i] = ns - 1;
        cur += o->t[i].bytes;
        total += o->t[i].bytes;
    }
    int rc = 0;
    char fname[64];
    ObBuf idx = {0};
    ob_buf_printf(&idx, "{\n  \"metadata\": {\"total_size\": %llu},\n  \"weight_map\": {", (unsigned long long)total);
    STWrite *w = ob_calloc((size_t)o->n, sizeof *w);
    void **bufs = ob_calloc((size_t)o->n, sizeof *bufs);
    for (int sh = 0, i0 = 0; sh < ns && !rc; sh++) {
        if (ns == 1) snprintf(fname, sizeof fname, "model.safetensors");
        else snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", sh + 1, ns);
        int n = 0;
        for (int i = i0; i < o->n && shard[i] == sh; i++, n++) {
            const OutTensor *t = &o->t[i];
            const void *data = t->fp;
            if (t->part != PART_FP) data = bufs[n] = out_make(s, t);
            w[n] = (STWrite){t->name, t->dtype, t->nd, {t->d0, t->d1}, data};
            ob_buf_printf(&idx, "%s\n    \"%s\": \"%s\"", i ? "," : "", t->name, fname);
        }
        char *p = file_join(dir, fname);
        rc = st_write_file(p, w, (size_t)n, err);
        free(p);
        for (int i = 0; i < n; i++) { free(bufs[i]); bufs[i] = NULL; }
        i0 += n;
    }
    ob_buf_printf(&idx, "\n  }\n}\n");
    if (!rc && ns > 1) rc = write_text(dir, "model.safetensors.index.json", idx.s, err);
    free(idx.s);
    free(w);
    free(bufs);
    free(shard);
    return rc;
}

/* a checkpoint directory written whole: tensors, config, tokenizer */
static int write_ckpt_dir(const OutList *o, const OutSrc *s, uint64_t shard_bytes, const char *arch, const Tokenizer *tok,
                          const char *tok_dir, const char *out, char *err)
{
    char *tmp = file_dir_begin(out, err);
    if (!tmp) return -1;
    const ModelConfig *c = &s->m->cfg;
    if (write_shards(o, s, shard_bytes, tmp, err) || write_config(c, tok, arch, tmp, err) ||
        write_tokenizer(c, tok, tok_dir, tmp, err)) {
        file_dir_abort(tmp);
        return -1;
    }
    return file_dir_commit(tmp, out, err);
}

/* m with an FP32 embedding and head (what out_list reads): a lean
 * student's or a mapped teacher's converted into *emb / *cls (freed by the
 * caller; NULL when m has them in FP32) */
static Model fp_view(const Model *m, float **emb, float **cls)
{
    Model fpm = *m;
    fpm.tok_emb = (float *)model_vocab_f32(m, 0, emb);
    *cls = NULL;
    fpm.wcls = m->cfg.shared_classifier ? fpm.tok_emb : (float *)model_vocab_f32(m, 1, cls);
    return fpm;
}

int bitllama_export(const Model *m, const Tokenizer *tok, const char *tok_dir, const char *out, char *err)
{
    const ModelConfig *c = &m->cfg;
    int nlin = c->n_layers * LIN_PER_LAYER;
    const float **g = ob_calloc((size_t)nlin, sizeof *g);
    for (int i = 0; i < nlin; i++) {
        const BitLinear *bl = student_linear(m, i);
        if (!bl) { ob_seterr(err, "not a 1-bit student"); free(g); return -1; }
        if (!bl->norm) {
            ob_seterr(err, "layers.%d.%s has no LayerNorm (a PTQ baseline): bitllama always normalizes", i / LIN_PER_LAYER, proj_names[i % LIN_PER_LAYER]);
            free(g);
            return -1;
        }
        if (bl->mos) {
            ob_seterr(err, "layers.%d.%s has a mixture of %d scales (train --mos): bitllama has one g and h per projection",
                      i / LIN_PER_LAYER, proj_names[i % LIN_PER_LAYER], bl->mos);
            free(g);
            return -1;
        }
        g[i] = bl->g;
    }
    /* a lean student keeps its embedding and head in FP16 or Q8_0: their
     * checkpoint holds FP32 (exact for FP16) */
    float *emb, *cls;
    Model fpm = fp_view(m, &emb, &cls);
    OutList o = {0};
    out_list(&o, &fpm, PART_PACKED, g);
    OutSrc s = {m, NULL, 0};
    int rc = write_ckpt_dir(&o, &s, UINT64_MAX, "BitLlamaForCausalLMInf", tok, tok_dir, out, err);
    free(o.t);
    free(g);
    free(emb);
    free(cls);
    return rc;
}

int bitllama_export_start(const Model *fp, const StudentLinearSrc *lin, int latent, const Tokenizer *tok, const char *tok_dir,
                          uint64_t shard_bytes, const char *out, char *err)
{
    const ModelConfig *c = &fp->cfg;
    int nlin = c->n_layers * LIN_PER_LAYER;
    const float **g = ob_calloc((size_t)nlin, sizeof *g);
    for (int i = 0; i < nlin; i++) g[i] = lin[i].g;
    float *emb, *cls; /* a mapped teacher's embedding and head in FP32 */
    Model fpm = fp_view(fp, &emb, &cls);
    OutList o = {0};
    out_list(&o, &fpm, PART_LATENT, g);
    OutSrc s = {fp, lin, latent};
    int rc = write_ckpt_dir(&o, &s, shard_bytes ? shard_bytes : BITLLAMA_SHARD_BYTES, "BitLlamaForCausalLM", tok, tok_dir, out, err);
    free(o.t);
    free(g);
    free(emb);
    free(cls);
    return rc;
}
