/* llama2c.c -- llama2.c checkpoint reader (see llama2c.h). */
#include "format/llama2c.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "base/file.h"

#define HEADER_BYTES 28

/* the config a header describes and the file size it implies */
static int parse_header(const unsigned char *h, unsigned long long size, LlamaConfig *c, size_t *floats, char *why)
{
    int32_t v[7];
    for (int i = 0; i < 7; i++) v[i] = (int32_t)file_get_u32le(h + 4 * i);
    memset(c, 0, sizeof *c);
    c->dim = v[0]; c->hidden_dim = v[1]; c->n_layers = v[2]; c->n_heads = v[3]; c->n_kv_heads = v[4];
    c->vocab_size = v[5] < 0 ? (v[5] == INT32_MIN ? 0 : -v[5]) : v[5];
    c->shared_classifier = v[5] > 0;
    c->seq_len = v[6];
    c->head_dim = c->n_heads > 0 ? c->dim / c->n_heads : 0;
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    char e[OB_ERRLEN];
    if (c->n_heads > 0 && c->dim % c->n_heads) {
        ob_seterr(why, "dim %d is not a multiple of n_heads %d", c->dim, c->n_heads);
        return -1;
    }
    if (llama_config_check(c, e)) { ob_seterr(why, "%s", e); return -1; }
    /* bounded by llama_config_check: every product fits in 64 bits */
    size_t C = c->dim, F = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t n = V * C + L * C * 2 + L * (qd * C * 2 + kvd * C * 2) + L * F * C * 3 + C
             + (size_t)c->seq_len * c->head_dim + (c->shared_classifier ? 0 : V * C);
    size_t expect = HEADER_BYTES + n * sizeof(float);
    if (size != expect) {
        ob_seterr(why, "size %llu bytes does not match the header (dim=%d hidden=%d layers=%d heads=%d kv_heads=%d vocab=%d seq_len=%d needs %zu bytes)",
                  size, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len, expect);
        return -1;
    }
    *floats = n;
    return 0;
}

int llama2c_probe(const char *path, const struct stat *st, const unsigned char *head, size_t n, char *why)
{
    (void)path;
    if (!S_ISREG(st->st_mode)) { ob_seterr(why, "%s", S_ISDIR(st->st_mode) ? "is a directory" : "not a regular file"); return 0; }
    if (n < HEADER_BYTES) {
        ob_seterr(why, "file too short for a llama2.c header (%lld bytes)", (long long)st->st_size);
        return 0;
    }
    LlamaConfig c;
    size_t floats;
    char e[OB_ERRLEN];
    if (parse_header(head, (unsigned long long)st->st_size, &c, &floats, e)) {
        ob_seterr(why, "not a llama2.c checkpoint: %s", e);
        return 0;
    }
    return 1;
}

int llama2c_load(LlamaFile *f, Tokenizer *tok, int *tok_loaded, const char *path, char *err)
{
    (void)tok;
    if (tok_loaded) *tok_loaded = 0;
    llama_file_init(f);
    void *map;
    size_t size;
    if (file_map(path, &map, &size, err)) return -1;
    if (size < HEADER_BYTES) {
        ob_seterr(err, "%s: file too short for a llama2.c header (%zu bytes)", path, size);
        file_unmap(map, size);
        return -1;
    }
    llama_file_own(f, map, size, 1);
    LlamaConfig c;
    size_t floats;
    char why[OB_ERRLEN];
    if (parse_header(map, (unsigned long long)size, &c, &floats, why)) {
        ob_seterr(err, "%s: not a llama2.c checkpoint: %s", path, why);
        llama_file_free(f);
        return -1;
    }
    f->cfg = c;
    f->format = "llama2c";
    size_t C = c.dim, F = c.hidden_dim, L = c.n_layers, V = c.vocab_size;
    size_t qd = (size_t)c.n_heads * c.head_dim, kvd = (size_t)c.n_kv_heads * c.head_dim;
    const float *p = (const float *)((const char *)map + HEADER_BYTES);
    llama_file_add(f, LLAMA_TOK_EMB, -1, LLAMA_F32, V, C, p, 0);
    p += V * C;
    /* layer tensors stacked over layers, in llama2.c order */
    struct { int role; size_t rows, cols; } stacked[] = {
        {LLAMA_RMS_ATT_L, 1, C}, {LLAMA_WQ_L, qd, C}, {LLAMA_WK_L, kvd, C}, {LLAMA_WV_L, kvd, C},
        {LLAMA_WO_L, C, qd}, {LLAMA_RMS_FFN_L, 1, C}, {LLAMA_W1_L, F, C}, {LLAMA_W2_L, C, F}, {LLAMA_W3_L, F, C}};
    for (size_t k = 0; k < sizeof stacked / sizeof stacked[0]; k++) {
        size_t each = stacked[k].rows * stacked[k].cols;
        for (size_t l = 0; l < L; l++) llama_file_add(f, stacked[k].role, (int)l, LLAMA_F32, stacked[k].rows, stacked[k].cols, p + l * each, 0);
        p += L * each;
    }
    llama_file_add(f, LLAMA_RMS_FINAL, -1, LLAMA_F32, 1, C, p, 0);
    p += C;
    p += (size_t)c.seq_len * c.head_dim; /* freq_cis_real + freq_cis_imag: unused */
    if (!c.shared_classifier) llama_file_add(f, LLAMA_WCLS, -1, LLAMA_F32, V, C, p, 0);
    return 0;
}
