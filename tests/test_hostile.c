/* test_hostile.c -- broken and hostile llama2.c checkpoints and tokenizers:
 * each must give a clear error (never a crash; run under --enable-asan). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "model/model.h"
#include "test.h"
#include "format/tokenizer.h"

static char dir[] = "/tmp/onebit-hostile-XXXXXX";

static const char *write_file(const char *name, const void *data, size_t n)
{
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (n) fwrite(data, 1, n, f);
    fclose(f);
    return p;
}

/* a tiny valid checkpoint: header + floats */
static size_t make_ckpt(int32_t *h, float **out)
{
    ModelConfig c = {h[0], h[1], h[2], h[3], h[4], h[3] ? h[0] / h[3] : 0, abs(h[5]), h[6], 10000, 1e-5f, h[5] > 0};
    size_t n;
    model_arena_size(&c, 1, &n);
    n += (size_t)c.seq_len * c.head_dim;
    size_t bytes = 28 + n * 4;
    char *buf = calloc(1, bytes);
    memcpy(buf, h, 28);
    float *w = (float *)(buf + 28);
    for (size_t i = 0; i < n; i++) w[i] = 0.01f * (float)((i * 7919) % 101) - 0.5f;
    *out = (float *)buf;
    return bytes;
}

static void expect_model_error(const char *name, const void *data, size_t n, const char *needle)
{
    char err[OB_ERRLEN] = "";
    Model m;
    const char *p = write_file(name, data, n);
    int rc = model_load(&m, p, err);
    CHECK(rc == -1, "%s: loaded a bad file", name);
    CHECK(strstr(err, p) != NULL && (!needle || strstr(err, needle)), "%s: message '%s' lacks path or '%s'", name, err, needle ? needle : "");
    if (rc == 0) model_free(&m);
}

int main(void)
{
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char err[OB_ERRLEN];
    Model m;
    int32_t good[7] = {16, 24, 2, 4, 2, 40, 8};
    float *buf;
    size_t n = make_ckpt(good, &buf);
    const char *p = write_file("good.bin", buf, n);
    CHECK(model_load(&m, p, err) == 0, "good tiny model: %s", err);
    if (m.arena) model_free(&m);

    expect_model_error("zero.bin", "", 0, "too short");
    expect_model_error("short.bin", buf, 20, "too short");
    expect_model_error("truncated.bin", buf, n - 4, "does not match");
    char *longer = calloc(1, n + 8);
    memcpy(longer, buf, n);
    expect_model_error("longer.bin", longer, n + 8, "does not match");
    free(longer);
    int32_t h[7];
    struct { const char *name; int idx; int32_t val; const char *needle; } cases[] = {
        {"neg_layers.bin", 2, -3, "n_layers"},
        {"zero_dim.bin", 0, 0, "dim"},
        {"huge_dim.bin", 0, 1 << 30, "dim"},
        {"huge_layers.bin", 2, 1 << 30, "n_layers"},
        {"huge_vocab.bin", 5, INT32_MAX, "vocab"},
        {"min_vocab.bin", 5, INT32_MIN, "vocab"},
        {"kv_gt_heads.bin", 4, 8, "n_kv_heads"},
        {"kv_not_div.bin", 4, 3, "n_kv_heads"},
        {"dim_not_div.bin", 3, 5, "multiple of n_heads"},
        {"huge_seq.bin", 6, INT32_MAX, "seq_len"},
        {"huge_hidden.bin", 1, INT32_MAX, "hidden_dim"},
        {"neg_hidden.bin", 1, -1, "hidden_dim"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(h, good, sizeof h);
        h[cases[i].idx] = cases[i].val;
        char *b2 = malloc(n);
        memcpy(b2, buf, n);
        memcpy(b2, h, 28);
        expect_model_error(cases[i].name, b2, n, cases[i].needle);
        free(b2);
    }
    /* size overflow: large but individually legal dims */
    int32_t big[7] = {65536, 262144, 1024, 1024, 1024, 4194304, 1048576};
    expect_model_error("overflow.bin", big, 28, "does not match");
    /* NaN weight */
    float *nanbuf = malloc(n);
    memcpy(nanbuf, buf, n);
    ((float *)((char *)nanbuf + 28))[5] = NAN;
    expect_model_error("nan.bin", nanbuf, n, "not finite");
    free(nanbuf);
    /* a directory and a missing file */
    CHECK(model_load(&m, dir, err) == -1 && strstr(err, "directory"), "directory: %s", err);
    CHECK(model_load(&m, "/nonexistent/x.bin", err) == -1 && strstr(err, "No such file"), "missing: %s", err);
    free(buf);

    /* tokenizers */
    Tokenizer t;
    unsigned char tk[64];
    int32_t maxlen = 4, len;
    float score = 0;
    size_t o = 0;
    memcpy(tk, &maxlen, 4); o = 4;
    for (int i = 0; i < 3; i++) {
        memcpy(tk + o, &score, 4); o += 4;
        len = 1; memcpy(tk + o, &len, 4); o += 4;
        tk[o++] = (unsigned char)('a' + i);
    }
    p = write_file("tok_ok.bin", tk, o);
    CHECK(tok_load(&t, p, 3, err) == 0, "good tokenizer: %s", err);
    if (t.vocab) tok_free(&t);
    CHECK(tok_load(&t, p, 4, err) == -1 && strstr(err, "truncated"), "too few tokens: %s", err);
    /* length past the end */
    len = 1000;
    memcpy(tk + 4 + 4, &len, 4);
    p = write_file("tok_len.bin", tk, o);
    CHECK(tok_load(&t, p, 3, err) == -1 && strstr(err, "length"), "len past end: %s", err);
    len = -5;
    memcpy(tk + 4 + 4, &len, 4);
    p = write_file("tok_neg.bin", tk, o);
    CHECK(tok_load(&t, p, 3, err) == -1 && strstr(err, "length"), "negative len: %s", err);
    p = write_file("tok_empty.bin", tk, 0);
    CHECK(tok_load(&t, p, 3, err) == -1 && strstr(err, "too short"), "empty tokenizer: %s", err);
    maxlen = -1;
    memcpy(tk, &maxlen, 4);
    p = write_file("tok_maxlen.bin", tk, o);
    CHECK(tok_load(&t, p, 3, err) == -1 && strstr(err, "max_token_length"), "bad maxlen: %s", err);

    CHECK(test_rmtree(dir) == 0, "cleanup");
    return test_done("test_hostile");
}
