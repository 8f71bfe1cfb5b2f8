/* hf.c -- Hugging Face directory reader and fingerprint (see hf.h).
 * JSON through cJSON (Debian: libcjson-dev). */
#include "format/hf.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "base/file.h"
#include "format/safetensors.h"
#include "format/spm.h"
#include "format/torch.h"

#define MAX_SHARDS 1024

/* ---- config.json ---------------------------------------------------------*/

/* 0 ok, 1 absent (or null), -1 bad */
static int cfg_int(const cJSON *o, const char *key, long lo, long hi, int *out, char *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) return 1;
    double v = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!(v == floor(v)) || v < lo || v > hi) { ob_seterr(err, "%s is not an integer in [%ld, %ld]", key, lo, hi); return -1; }
    *out = (int)v;
    return 0;
}

static int cfg_float(const cJSON *o, const char *key, float *out, char *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) return 1;
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || !(j->valuedouble > 0)) {
        ob_seterr(err, "%s is not a positive number", key);
        return -1;
    }
    *out = (float)j->valuedouble;
    return 0;
}

/* first integer of a number or an array of numbers (eos_token_id may be a list) */
static int cfg_token_id(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsArray(j)) j = j->child;
    if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble > (1 << 22) || j->valuedouble != floor(j->valuedouble)) return -1;
    return (int)j->valuedouble;
}

static int parse_config(const cJSON *o, LlamaConfig *c, int *bos, int *eos, char *err)
{
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(o)) { ob_seterr(err, "not a JSON object"); return -1; }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(o, "model_type");
    if (cJSON_IsString(mt)) {
        if (strcmp(mt->valuestring, "llama") && strcmp(mt->valuestring, "mistral") && strcmp(mt->valuestring, "bitllama")) {
            char b[48];
            snprintf(b, sizeof b, "%s", mt->valuestring);
            ob_seterr(err, "model_type '%s' is not supported (llama, mistral, bitllama)", b);
            return -1;
        }
    } else {
        ob_seterr(err, "no model_type");
        return -1;
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(o, "hidden_act");
    if (act && !(cJSON_IsString(act) && !strcmp(act->valuestring, "silu"))) { ob_seterr(err, "hidden_act must be silu"); return -1; }
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(o, "rope_scaling");
    if (rs && !cJSON_IsNull(rs)) { ob_seterr(err, "rope_scaling is not supported"); return -1; }
    const char *bias[] = {"attention_bias", "mlp_bias"};
    for (int i = 0; i < 2; i++)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, bias[i]))) { ob_seterr(err, "%s is not supported", bias[i]); return -1; }
    struct { const char *key; int *dst; int required; long hi; } ints[] = {
        {"hidden_size", &c->dim, 1, 1 << 20},
        {"intermediate_size", &c->hidden_dim, 1, 1 << 22},
        {"num_hidden_layers", &c->n_layers, 1, 1 << 16},
        {"num_attention_heads", &c->n_heads, 1, 1 << 16},
        {"num_key_value_heads", &c->n_kv_heads, 0, 1 << 16},
        {"head_dim", &c->head_dim, 0, 1 << 16},
        {"vocab_size", &c->vocab_size, 1, 1 << 22},
        {"max_position_embeddings", &c->seq_len, 0, 1 << 24},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int rc = cfg_int(o, ints[i].key, 1, ints[i].hi, ints[i].dst, err);
        if (rc < 0) return -1;
        if (rc == 1 && ints[i].required) { ob_seterr(err, "missing %s", ints[i].key); return -1; }
    }
    if (!c->n_kv_heads) c->n_kv_heads = c->n_heads;
    if (!c->seq_len) c->seq_len = 2048;
    if (!c->head_dim) {
        if (c->dim % c->n_heads) { ob_seterr(err, "hidden_size %d is not a multiple of num_attention_heads %d", c->dim, c->n_heads); return -1; }
        c->head_dim = c->dim / c->n_heads;
    }
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-6f; /* LlamaConfig's default */
    if (cfg_float(o, "rope_theta", &c->rope_theta, err) < 0) return -1;
    if (cfg_float(o, "rms_norm_eps", &c->norm_eps, err) < 0) return -1;
    c->shared_classifier = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "tie_word_embeddings"));
    *bos = cfg_token_id(o, "bos_token_id");
    *eos = cfg_token_id(o, "eos_token_id");
    return llama_config_check(c, err);
}

static cJSON *read_json(const char *path, char *err)
{
    char *txt;
    size_t len;
    if (ob_read_file(path, &txt, &len, err)) return NULL;
    cJSON *j = cJSON_ParseWithLength(txt, len);
    free(txt);
    if (!j) ob_seterr(err, "%s: not valid JSON", path);
    return j;
}

/* ---- shards --------------------------------------------------------------*/

typedef struct { char *path; void *map; size_t size; STFile st; } Shard;

typedef struct {
    const char *dir;
    Shard sh[MAX_SHARDS];
    int n;
    cJSON *index;            /* weight_map when sharded */
} HF;

static int open_shard(HF *h, const char *file, char *err)
{
    for (int i = 0; i < h->n; i++)
        if (!strcmp(strrchr(h->sh[i].path, '/') + 1, file)) return i;
    if (h->n == MAX_SHARDS) { ob_seterr(err, "%s: more than %d shards", h->dir, MAX_SHARDS); return -1; }
    Shard *s = &h->sh[h->n];
    memset(s, 0, sizeof *s);
    s->path = file_join(h->dir, file);
    if (file_map(s->path, &s->map, &s->size, err)) { free(s->path); return -1; }
    char why[OB_ERRLEN];
    /* by content: a torch.save zip, else safetensors */
    int bad = torch_is_zip(s->map, s->size) ? torch_parse(&s->st, s->map, s->size, why) : st_parse(&s->st, s->map, s->size, why);
    if (bad) {
        ob_seterr(err, "%s: %s", s->path, why);
        file_unmap(s->map, s->size);
        free(s->path);
        return -1;
    }
    return h->n++;
}

static void close_shards(HF *h)
{
    for (int i = 0; i < h->n; i++) {
        st_free(&h->sh[i].st);
        file_unmap(h->sh[i].map, h->sh[i].size);
        free(h->sh[i].path);
    }
    h->n = 0;
    if (h->index) cJSON_Delete(h->index);
    h->index = NULL;
}

static int valid_shard_name(const char *s)
{
    return s[0] && s[0] != '.' && !strchr(s, '/') && strlen(s) < 256;
}

/* the weight files a directory may hold, looked for in this order (as
 * transformers prefers safetensors): an index naming the shards, or one file */
static const struct { const char *index, *single; } weight_sets[] = {
    {"model.safetensors.index.json", "model.safetensors"},
    {"pytorch_model.bin.index.json", "pytorch_model.bin"},
};
#define N_WEIGHT_SETS ((int)(sizeof weight_sets / sizeof weight_sets[0]))

/* the weights of dir: *index (malloc'd path) when sharded, else *single (a
 * name in dir); -1 with err when there are none */
static int find_weights(const char *dir, char **index, const char **single, char *err)
{
    *index = NULL;
    *single = NULL;
    for (int i = 0; i < N_WEIGHT_SETS; i++) {
        char *ip = file_join(dir, weight_sets[i].index), *sp = file_join(dir, weight_sets[i].single);
        int has_index = access(ip, F_OK) == 0, has_single = access(sp, F_OK) == 0;
        free(sp);
        if (has_index) { *index = ip; return 0; }
        free(ip);
        if (has_single) { *single = weight_sets[i].single; return 0; }
    }
    ob_seterr(err, "%s: no model.safetensors, pytorch_model.bin or their sharded .index.json", dir);
    return -1;
}

/* the weight_map of index file ip, every entry checked to be a file name in
 * the directory; NULL with err */
static cJSON *read_index(const char *ip, const cJSON **wm, char *err)
{
    cJSON *idx = read_json(ip, err);
    if (!idx) return NULL;
    *wm = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
    if (!cJSON_IsObject(*wm)) { ob_seterr(err, "%s: no weight_map object", ip); cJSON_Delete(idx); return NULL; }
    for (const cJSON *e = (*wm)->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !valid_shard_name(e->valuestring)) {
            ob_seterr(err, "%s: weight_map entry for %.64s is not a file name in the directory", ip, e->string ? e->string : "?");
            cJSON_Delete(idx);
            return NULL;
        }
    }
    return idx;
}

static int open_shards(HF *h, char *err)
{
    char *ip;
    const char *single;
    if (find_weights(h->dir, &ip, &single, err)) return -1;
    if (single) return open_shard(h, single, err) < 0 ? -1 : 0;
    const cJSON *wm;
    h->index = read_index(ip, &wm, err);
    free(ip);
    if (!h->index) return -1;
    for (const cJSON *e = wm->child; e; e = e->next)
        if (open_shard(h, e->valuestring, err) < 0) return -1;
    return 0;
}

/* find a tensor: the shard named by the index, and nowhere else */
static int find_tensor(const HF *h, const char *name, const Shard **sh, const STTensor **t, char *err)
{
    int where = -1;
    for (int i = 0; i < h->n; i++) {
        const STTensor *x = st_find(&h->sh[i].st, name);
        if (!x) continue;
        if (where >= 0) {
            ob_seterr(err, "%s: tensor %s is in both %s and %s", h->dir, name, h->sh[where].path, h->sh[i].path);
            return -1;
        }
        where = i;
        *t = x;
    }
    if (where < 0) { ob_seterr(err, "%s: missing tensor %s", h->dir, name); return -1; }
    if (h->index) {
        const cJSON *wm = cJSON_GetObjectItemCaseSensitive(h->index, "weight_map");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(wm, name);
        const char *base = strrchr(h->sh[where].path, '/') + 1;
        if (!cJSON_IsString(f) || strcmp(f->valuestring, base)) {
            ob_seterr(err, "%s: tensor %s is in %s but the index says %s", h->dir, name, base,
                      cJSON_IsString(f) ? f->valuestring : "nothing");
            return -1;
        }
    }
    *sh = &h->sh[where];
    return 0;
}

static int take(const HF *h, LlamaFile *f, const char *name, int role, int layer, size_t rows, size_t cols, int heads, char *err)
{
    const Shard *s = NULL;
    const STTensor *t = NULL;
    if (find_tensor(h, name, &s, &t, err)) return -1;
    int ok = rows == 0 ? (t->n_dims == 1 && t->shape[0] == cols) : (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (!ok) {
        char shape[160];
        st_shape_str(t, shape, sizeof shape);
        if (rows) ob_seterr(err, "%s: tensor %s has shape [%s], config.json implies [%zu, %zu]", s->path, name, shape, rows, cols);
        else ob_seterr(err, "%s: tensor %s has shape [%s], config.json implies [%zu]", s->path, name, shape, cols);
        return -1;
    }
    int dtype = t->dtype == ST_F32 ? LLAMA_F32 : t->dtype == ST_F16 ? LLAMA_F16 : t->dtype == ST_BF16 ? LLAMA_BF16 : -1;
    if (dtype < 0) {
        ob_seterr(err, "%s: tensor %s has dtype %s (supported: F32, F16, BF16)", s->path, name, st_dtype_name(t->dtype));
        return -1;
    }
    llama_file_add(f, role, layer, dtype, rows ? rows : 1, cols, s->st.base + t->begin, heads);
    return 0;
}

/* every tensor of the config, with its shape and dtype, into f; q and k
 * are marked as rotate-half rows */
static int add_tensors(const HF *h, LlamaFile *f, char *err)
{
    const LlamaConfig *c = &f->cfg;
    size_t C = c->dim, F = c->hidden_dim, V = c->vocab_size, hd = c->head_dim;
    size_t qd = (size_t)c->n_heads * hd, kvd = (size_t)c->n_kv_heads * hd;
    if (take(h, f, "model.embed_tokens.weight", LLAMA_TOK_EMB, -1, V, C, 0, err)) return -1;
    if (take(h, f, "model.norm.weight", LLAMA_RMS_FINAL, -1, 0, C, 0, err)) return -1;
    if (!c->shared_classifier && take(h, f, "lm_head.weight", LLAMA_WCLS, -1, V, C, 0, err)) return -1;
    char nm[128];
#define TAKE(s, role, r, cc, heads)                                                  \
    do {                                                                             \
        snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, s);                  \
        if (take(h, f, nm, role, l, r, cc, heads, err)) return -1;                   \
    } while (0)
    for (int l = 0; l < c->n_layers; l++) {
        TAKE("input_layernorm", LLAMA_RMS_ATT_L, 0, C, 0);
        TAKE("self_attn.q_proj", LLAMA_WQ_L, qd, C, c->n_heads);
        TAKE("self_attn.k_proj", LLAMA_WK_L, kvd, C, c->n_kv_heads);
        TAKE("self_attn.v_proj", LLAMA_WV_L, kvd, C, 0);
        TAKE("self_attn.o_proj", LLAMA_WO_L, C, qd, 0);
        TAKE("post_attention_layernorm", LLAMA_RMS_FFN_L, 0, C, 0);
        TAKE("mlp.gate_proj", LLAMA_W1_L, F, C, 0);
        TAKE("mlp.down_proj", LLAMA_W2_L, C, F, 0);
        TAKE("mlp.up_proj", LLAMA_W3_L, F, C, 0);
    }
#undef TAKE
    return 0;
}

/* hand the shards' mappings to f (the tensors point into them) */
static void give_shards(HF *h, LlamaFile *f)
{
    for (int i = 0; i < h->n; i++) {
        if (h->sh[i].map) llama_file_own(f, h->sh[i].map, h->sh[i].size, 1);
        h->sh[i].map = NULL;
    }
    close_shards(h);
}

/* a safetensors file: 8-byte little-endian header length, then '{' */
static int is_safetensors(const struct stat *st, const unsigned char *head, size_t n)
{
    if (!S_ISREG(st->st_mode) || n < 9 || head[8] != '{') return 0;
    uint64_t hl = file_get_u64le(head);
    return hl <= (uint64_t)st->st_size - 8;
}

int hf_probe(const char *path, const struct stat *st, const unsigned char *head, size_t n, char *why)
{
    (void)path;
    if (S_ISDIR(st->st_mode) || is_safetensors(st, head, n) || (S_ISREG(st->st_mode) && torch_is_zip(head, n))) return 1;
    ob_seterr(why, "neither a directory nor a safetensors or torch.save file");
    return 0;
}

/* the model directory of path: path itself, or the directory of a
 * safetensors or torch.save file (malloc'd), or NULL with err set */
static char *model_dir(const char *path, char *err)
{
    struct stat st;
    if (stat(path, &st) != 0) { ob_seterr(err, "%s: %s", path, strerror(errno)); return NULL; }
    if (S_ISDIR(st.st_mode)) return ob_strdup(path);
    char *dir = ob_dir_of(path);
    char *cp = file_join(dir, "config.json");
    int ok = access(cp, F_OK) == 0;
    free(cp);
    if (!ok) {
        ob_seterr(err, "%s: is a weights file without config.json beside it (pass the model directory)", path);
        free(dir);
        return NULL;
    }
    return dir;
}

/* ---- an open directory (hf.h HFModel) -------------------------------------*/

static void json_str(const cJSON *o, const char *key, char *dst, size_t n)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsArray(j)) j = j->child;
    snprintf(dst, n, "%s", cJSON_IsString(j) ? j->valuestring : "");
}

int hf_model_open(HFModel *m, const char *path, char *err)
{
    memset(m, 0, sizeof *m);
    char *dir = model_dir(path, err);
    if (!dir) return -1;
    char *cp = file_join(dir, "config.json");
    if (access(cp, F_OK) != 0) {
        ob_seterr(err, "%s: is a directory without config.json (not a Hugging Face model directory)", dir);
        free(cp);
        free(dir);
        return -1;
    }
    cJSON *cfg = read_json(cp, err);
    if (!cfg) { free(cp); free(dir); return -1; }
    char why[OB_ERRLEN];
    if (parse_config(cfg, &m->cfg, &m->bos, &m->eos, why)) {
        ob_seterr(err, "%s: %s", cp, why);
        cJSON_Delete(cfg);
        free(cp);
        free(dir);
        return -1;
    }
    json_str(cfg, "model_type", m->model_type, sizeof m->model_type);
    json_str(cfg, "architectures", m->arch, sizeof m->arch);
    json_str(cfg, "torch_dtype", m->torch_dtype, sizeof m->torch_dtype);
    cJSON_Delete(cfg);
    free(cp);
    HF *h = ob_calloc(1, sizeof *h);
    h->dir = dir;
    m->dir = dir;
    m->priv = h;
    if (open_shards(h, err)) { hf_model_close(m); return -1; }
    return 0;
}

void hf_model_close(HFModel *m)
{
    if (m->priv) close_shards(m->priv);
    free(m->priv);
    free(m->dir);
    memset(m, 0, sizeof *m);
}

int hf_model_tensor(const HFModel *m, const char *name, const STTensor **t, const uint8_t **data, char *err)
{
    const Shard *s = NULL;
    if (find_tensor(m->priv, name, &s, t, err)) return -1;
    *data = s->st.base + (*t)->begin;
    return 0;
}

int hf_model_f32(const HFModel *m, const char *name, uint64_t rows, uint64_t cols, float *dst, char *err)
{
    const Shard *s = NULL;
    const STTensor *t = NULL;
    if (find_tensor(m->priv, name, &s, &t, err)) return -1;
    int ok = rows == 0 ? (t->n_dims == 1 && t->shape[0] == cols) : (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (!ok) {
        char shape[160];
        st_shape_str(t, shape, sizeof shape);
        if (rows) ob_seterr(err, "%s: tensor %s has shape [%s], config.json implies [%llu, %llu]", s->path, name, shape, (unsigned long long)rows, (unsigned long long)cols);
        else ob_seterr(err, "%s: tensor %s has shape [%s], config.json implies [%llu]", s->path, name, shape, (unsigned long long)cols);
        return -1;
    }
    if (st_to_f32(&s->st, t, dst)) {
        ob_seterr(err, "%s: tensor %s has dtype %s (supported: F32, F16, BF16)", s->path, name, st_dtype_name(t->dtype));
        return -1;
    }
    return 0;
}

char *hf_chat_template(const char *dir)
{
    char *path = file_join(dir, "tokenizer_config.json"), *out = NULL, why[OB_ERRLEN];
    cJSON *root = access(path, F_OK) == 0 ? read_json(path, why) : NULL;
    if (root) {
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
        if (cJSON_IsString(ct)) out = ob_strdup(ct->valuestring);
        else if (cJSON_IsArray(ct)) {
            const cJSON *e, *pick = NULL;
            cJSON_ArrayForEach(e, ct) {
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"), *tp = cJSON_GetObjectItemCaseSensitive(e, "template");
                if (!cJSON_IsString(tp)) continue;
                if (!pick || (cJSON_IsString(nm) && !strcmp(nm->valuestring, "default"))) pick = tp;
            }
            if (pick) out = ob_strdup(pick->valuestring);
        }
        cJSON_Delete(root);
    }
    free(path);
    return out;
}

int hf_model_type(const char *dir, char *buf, size_t n)
{
    char *path = file_join(dir, "config.json"), why[OB_ERRLEN];
    cJSON *root = read_json(path, why);
    free(path);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    int rc = cJSON_IsString(mt) ? 0 : -1;
    if (!rc) snprintf(buf, n, "%s", mt->valuestring);
    cJSON_Delete(root);
    return rc;
}

int hf_model_tokenizer(const HFModel *m, Tokenizer *tok, int *loaded, char *err)
{
    *loaded = 0;
    char why[OB_ERRLEN];
    char *tp = file_join(m->dir, "tokenizer.json");
    if (access(tp, F_OK) == 0) {
        char *txt;
        size_t len;
        if (ob_read_file(tp, &txt, &len, err)) { free(tp); return -1; }
        int rc = tok_json_parse(tok, txt, len, m->cfg.vocab_size, m->bos, m->eos, why);
        free(txt);
        if (rc) { ob_seterr(err, "%s: %s", tp, why); free(tp); return -1; }
        *loaded = 1;
    } else {
        /* no tokenizer.json: a SentencePiece tokenizer.model */
        free(tp);
        tp = file_join(m->dir, "tokenizer.model");
        if (access(tp, F_OK) == 0) {
            if (spm_load(tok, tp, m->cfg.vocab_size, err)) { free(tp); return -1; }
            *loaded = 1;
        }
    }
    free(tp);
    if (*loaded) tok->chat_template = hf_chat_template(m->dir);
    return 0;
}

int hf_load(LlamaFile *f, Tokenizer *tok, int *tok_loaded, const char *path, char *err)
{
    int dummy;
    if (!tok_loaded) tok_loaded = &dummy;
    *tok_loaded = 0;
    llama_file_init(f);
    HFModel m;
    if (hf_model_open(&m, path, err)) return -1;
    if (!strcmp(m.model_type, "bitllama")) {
        ob_seterr(err, "%s: is a 1-bit OneBit checkpoint (model_type bitllama): open it with --student", m.dir);
        hf_model_close(&m);
        return -1;
    }
    HF *h = m.priv;
    f->format = "hf";
    f->cfg = m.cfg;
    int rc = add_tensors(h, f, err) || (tok && hf_model_tokenizer(&m, tok, tok_loaded, err)) ? -1 : 0;
    if (!rc) give_shards(h, f); /* f owns the maps from now on */
    hf_model_close(&m);
    if (rc) llama_file_free(f);
    return rc;
}

/* ---- fingerprint ---------------------------------------------------------*/

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int hf_fingerprint(const char *path, char hex[65], char *err)
{
    char *dir = model_dir(path, err);
    if (!dir) return -1;
    /* the files the loader reads: config.json, the index and the shards it
     * names, or model.safetensors or pytorch_model.bin */
    int cap = 8, n = 0, rc = -1;
    char **names = ob_malloc((size_t)cap * sizeof *names);
    names[n++] = ob_strdup("config.json");
    char *ip = NULL;
    const char *single;
    if (find_weights(dir, &ip, &single, err)) goto out;
    if (ip) {
        names[n++] = ob_strdup(strrchr(ip, '/') + 1);
        const cJSON *wm;
        cJSON *idx = read_index(ip, &wm, err);
        if (!idx) goto out;
        for (const cJSON *e = wm->child; e; e = e->next) {
            int seen = 0;
            for (int i = 0; i < n && !seen; i++) seen = !strcmp(names[i], e->valuestring);
            if (seen) continue;
            if (n == cap) { cap *= 2; names = realloc(names, (size_t)cap * sizeof *names); if (!names) abort(); }
            names[n++] = ob_strdup(e->valuestring);
        }
        cJSON_Delete(idx);
    } else names[n++] = ob_strdup(single);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    /* sha256 over (name, NUL, u64 size, contents) of each, in name order */
    FileSha256 s;
    file_sha256_init(&s);
    for (int i = 0; i < n; i++) {
        char *fp = file_join(dir, names[i]);
        struct stat st;
        if (stat(fp, &st) != 0) { ob_seterr(err, "%s: %s", fp, strerror(errno)); free(fp); goto out; }
        unsigned char sz[8];
        file_put_u64le(sz, (uint64_t)st.st_size);
        file_sha256_update(&s, names[i], strlen(names[i]) + 1);
        file_sha256_update(&s, sz, 8);
        int bad = file_sha256_add_file(&s, fp, err);
        free(fp);
        if (bad) goto out;
    }
    file_sha256_final(&s, hex);
    rc = 0;
out:
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(ip);
    free(dir);
    return rc;
}
