/* test_student_hostile.c -- damaged and hostile .onebit files (mixtures of
 * scales included): each gives a clear error from student_load (and
 * nothing leaks or crashes under ASan). Most damage is made with a recomputed checksum, so the specific
 * structural check is what must catch it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "model/model.h"
#include "onebit/bitlinear.h"
#include "onebit/student.h"
#include "test.h"
#include "format/tokenizer.h"

static char dir[] = "/tmp/onebit-hostile.XXXXXX";
static unsigned char *orig;
static size_t orig_n;

static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint64_t get64(const unsigned char *p) { uint64_t v = 0; for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i); return v; }

/* the table entry of tensor `name` in buf */
static unsigned char *entry(unsigned char *buf, const char *name)
{
    uint32_t n = buf[60] | buf[61] << 8 | buf[62] << 16 | (uint32_t)buf[63] << 24;
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp((char *)buf + 128 + 128 * i, name)) return buf + 128 + 128 * i;
    fprintf(stderr, "no tensor %s\n", name);
    exit(1);
}

static void fix_checksum(unsigned char *buf, size_t n) { put64(buf + 104, student_checksum(buf, n)); }

/* write buf[0..n) to a file, load it, expect failure with `want` in the message */
static void expect_fail(const unsigned char *buf, size_t n, const char *want, const char *what)
{
    char path[4096], err[OB_ERRLEN] = "";
    snprintf(path, sizeof path, "%s/bad.onebit", dir);
    FILE *f = fopen(path, "wb");
    if (n) fwrite(buf, 1, n, f);
    fclose(f);
    Model m;
    Tokenizer t;
    int rc = student_load(&m, &t, path, err);
    CHECK(rc == -1 && strstr(err, want) && strstr(err, path), "%s: rc %d, error '%s' (wanted '%s')", what, rc, err, want);
    if (rc == 0) { model_free(&m); tok_free(&t); }
}

/* tensor `name`'s table entry renamed to `to`, or its shape (d0, d1) and
 * type t set (to NULL), checksum recomputed: load fails with `want` */
static void expect_fail_entry(const char *name, const char *to, uint32_t t, uint64_t d0, uint64_t d1, const char *want)
{
    unsigned char *b = malloc(orig_n), *e;
    memcpy(b, orig, orig_n);
    e = entry(b, name);
    if (to) {
        memset(e, 0, 64);
        strcpy((char *)e, to);
    } else {
        put32(e + 64, t);
        put64(e + 80, d0);
        put64(e + 88, d1);
    }
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, want, name);
    free(b);
}

/* a student with a mixture of 2 scales on layer 0's wq and wk (the rest
 * of src) written to PATH; the file becomes orig. Its damages: experts
 * missing, of the wrong shape, type or expert count, a NaN in them,
 * unknown names; the file itself loads with its experts */
static void mos_hostile(const Model *t, const Tokenizer *tok, StudentLinearSrc *src, const char *path)
{
    char err[OB_ERRLEN];
    int in = t->cfg.dim, E = 2;
    float *v = malloc((size_t)E * in * 3 * sizeof(float));
    for (int i = 0; i < E * in * 3; i++) v[i] = (float)((i * 37 % 101) - 50) * 0.01f + (i < 2 * E * in ? 1.0f : 0.0f);
    for (int j = 0; j < 2; j++) src[j].mos = E, src[j].g_experts = v, src[j].h_experts = v + E * in, src[j].router = v + 2 * E * in;
    CHECK(student_write(path, t, tok, src, NULL, err) == 0, "write MoS: %s", err);
    free(v);
    free(orig);
    char *data;
    CHECK(ob_read_file(path, &data, &orig_n, err) == 0, "%s", err);
    orig = (unsigned char *)data;
    Model m;
    int rc = student_load(&m, NULL, path, err);
    CHECK(rc == 0, "the MoS file loads: %s", err);
    if (rc == 0) {
        const BitLinear *a = m.lin[0].impl, *b = m.lin[2].impl;
        CHECK(a->mos == E && b->mos == 0, "experts where the file has them: %d, %d", a->mos, b->mos);
        model_free(&m);
    }
    expect_fail_entry("layers.0.wq.g_experts", "layers.0.wv.g_experts", 0, 0, 0, "layers.0.wq has a mixture of scales without its g_experts");
    expect_fail_entry("layers.0.wk.g_experts", "layers.0.wk.q_experts", 0, 0, 0, "unexpected tensor 'layers.0.wk.q_experts'");
    expect_fail_entry("layers.0.wk.router", "layers.7.wk.router", 0, 0, 0, "unexpected tensor 'layers.7.wk.router'");
    expect_fail_entry("layers.0.wq.g_experts", NULL, 1, (uint64_t)in, 2, "layers.0.wq.g_experts is F16 (40, 2), a mixture of 2 scales needs F16 (2, 40)");
    expect_fail_entry("layers.0.wq.g_experts", NULL, 0, 2, (uint64_t)in / 2, "needs F16 (2, 40)");
    expect_fail_entry("layers.0.wq.router", NULL, 1, 1, 2 * (uint64_t)in, "router is F16 (1, 80), a mixture of 1 scales needs F16 (1, 40) with 2 to");
    expect_fail_entry("layers.0.wk.h_experts", NULL, 1, 4, (uint64_t)in / 2, "layers.0.wk.h_experts is F16 (4, 20)");
    unsigned char *b = malloc(orig_n);
    memcpy(b, orig, orig_n);
    b[get64(entry(b, "layers.0.wk.router") + 96) + 7] = 0x7e;
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, "layers.0.wk.router: element 3 is not finite", "NaN router");
    free(b);
}

static unsigned char *copy(void)
{
    unsigned char *b = malloc(orig_n);
    memcpy(b, orig, orig_n);
    return b;
}

/* One field set to a hostile value, the checksum recomputed: the little-
 * endian integer of `width` (4 or 8) bytes at `off` from the start of the
 * file (name NULL) or of tensor `name`'s table entry. */
typedef struct {
    const char *name;
    size_t off;
    int width;
    uint64_t v;
    const char *want, *what; /* as for expect_fail */
} Damage;

static const Damage damages[] = {
    {NULL, 8, 4, 3, "version 3", "version"},
    /* version 1 files have an FP32 embedding (this one is FP16) */
    {NULL, 8, 4, 1, "tok_emb is F16", "version 1 with an FP16 embedding"},
    /* Q8_0 rows of 40 are not whole blocks of 32 */
    {"tok_emb", 64, 4, 4, "does not match its shape", "Q8_0 block count"},
    {NULL, 28, 4, 0, "bad model config", "config"},                 /* n_heads */
    {NULL, 20, 4, 80, "the config needs", "config vs shapes"},      /* hidden_dim 72 -> 80 */
    {NULL, 60, 4, 0xffffffffu, "tensors, the config needs", "huge count"},
    /* huge shape: size no longer matches (and the product overflows) */
    {"tok_emb", 80, 8, 1ull << 62, "does not match its shape", "huge shape"},
    /* offsets wrapping around 2^64, inside the header/table */
    {"layers.0.wq.g", 96, 8, 0xffffffffffffffc0ull, "outside the data area", "offset wrap"},
    {"layers.0.wq.g", 96, 8, 0, "outside the data area", "offset in header"},
    /* unknown type, bad rank, flags */
    {"rms_final", 64, 4, 9, "unknown type", "type"},
    {"rms_final", 72, 4, 3, "bad rank", "rank"},
    {"layers.0.wv.sign", 68, 4, 6, "unknown flags", "flags"},
    /* tokenizer: bad bos, count mismatch */
    {NULL, 92, 4, 12, "bad bos/eos", "bos"},
    {NULL, 88, 4, 11, "tokenizer has 11 tokens", "tokenizer count"},
};

static void expect_fail_damage(const Damage *d)
{
    unsigned char *b = copy();
    unsigned char *p = (d->name ? entry(b, d->name) : b) + d->off;
    if (d->width == 4) put32(p, (uint32_t)d->v);
    else put64(p, d->v);
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, d->want, d->what);
    free(b);
}

int main(void)
{
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char err[OB_ERRLEN], path[4096];
    ModelConfig c = {.dim = 40, .hidden_dim = 72, .n_layers = 2, .n_heads = 5, .n_kv_heads = 5, .head_dim = 8,
                     .vocab_size = 12, .seq_len = 16, .rope_theta = 10000, .norm_eps = 1e-5f, .shared_classifier = 1};
    Model t;
    if (model_alloc(&t, &c, 1, err)) { fprintf(stderr, "%s\n", err); return 1; }
    for (size_t i = 0; i < t.arena_floats; i++) t.arena[i] = (float)((int)(i * 7919 % 201) - 100) * 0.001f;
    const char *pieces[12] = {"<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc", "abc", " ", " a", "x"};
    float scores[12] = {0, 0, 0, -1, -2, -3, -4, -5, -6, -7, -8, -9};
    Tokenizer tok;
    if (tok_init(&tok, 12, pieces, scores, 1, 2, err)) { fprintf(stderr, "%s\n", err); return 1; }
    StudentLinearSrc src[2 * LIN_PER_LAYER];
    CHECK(student_quantize(&t, SVID_NMF, 1, src, err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/good.onebit", dir);
    CHECK(student_write(path, &t, &tok, src, "{\"a\":1}", err) == 0, "write: %s", err);
    char *data;
    if (ob_read_file(path, &data, &orig_n, err)) { fprintf(stderr, "%s\n", err); return 1; }
    orig = (unsigned char *)data;
    {
        Model m;
        Tokenizer tt;
        CHECK(student_load(&m, &tt, path, err) == 0, "the good file loads: %s", err);
        int nm = 0;
        for (int i = 0; i < 2 * LIN_PER_LAYER; i++) nm += ((const BitLinear *)m.lin[i].impl)->mos != 0;
        CHECK(nm == 0, "a file without experts: no mixture of scales (%d)", nm);
        model_free(&m);
        tok_free(&tt);
    }
    unsigned char *b;

    /* truncation at every interesting point */
    size_t cuts[] = {0, 7, 100, 127, 128, 300, orig_n / 2, orig_n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) expect_fail(orig, cuts[i], "truncated", "truncated");
    b = copy();
    memcpy(b, "ONEBIT\0\1", 8);
    expect_fail(b, orig_n, "bad magic", "magic");
    free(b);
    /* single fields: header, table entries */
    for (size_t i = 0; i < sizeof damages / sizeof damages[0]; i++) expect_fail_damage(&damages[i]);
    /* trailing garbage */
    b = malloc(orig_n + 64);
    memcpy(b, orig, orig_n);
    memset(b + orig_n, 0, 64);
    expect_fail(b, orig_n + 64, "trailing data", "trailing");
    free(b);
    /* huge size consistent with a huge shape: outside the file */
    b = copy();
    put64(entry(b, "tok_emb") + 80, 1ull << 40);
    put64(entry(b, "tok_emb") + 104, (1ull << 40) * 40 * 2);
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, "outside the data area", "huge size");
    free(b);
    /* an FP16 embedding used in place: an infinity in it */
    b = copy();
    {
        uint64_t off = get64(entry(b, "tok_emb") + 96);
        b[off + 2 * 77] = 0x00;
        b[off + 2 * 77 + 1] = 0x7c;
    }
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, "element 77 is not finite", "FP16 embedding inf");
    free(b);
    /* offset past the end */
    b = copy();
    put64(entry(b, "layers.1.w2.sign") + 96, (orig_n + 4096) & ~(uint64_t)63);
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, "outside the data area", "offset past end");
    free(b);
    /* unaligned */
    b = copy();
    put64(entry(b, "layers.0.wk.h") + 96, get64(entry(b, "layers.0.wk.h") + 96) + 2);
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, "not 64-byte aligned", "unaligned");
    free(b);
    /* overlapping */
    b = copy();
    put64(entry(b, "layers.0.wk.g") + 96, get64(entry(b, "layers.0.wq.g") + 96));
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, "overlap", "overlap");
    free(b);
    /* wrong type for a known tensor (same byte size: F32 (40) -> F16 (80)) */
    b = copy();
    put32(entry(b, "rms_final") + 64, 1);
    put64(entry(b, "rms_final") + 80, 80);
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, "the config needs F32", "type mismatch");
    free(b);
    /* names: unterminated, unknown, duplicate */
    b = copy();
    memset(entry(b, "meta"), 'x', 64);
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, "not NUL-terminated", "unterminated name");
    free(b);
    b = copy();
    strcpy((char *)entry(b, "meta"), "metb");
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, "unexpected tensor 'metb'", "unknown name");
    free(b);
    b = copy();
    strcpy((char *)entry(b, "layers.1.wo.g"), "layers.0.wo.g");
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, "appears twice", "duplicate");
    free(b);
    /* checksum */
    b = copy();
    b[orig_n - 3] ^= 0x10;
    expect_fail(b, orig_n, "checksum mismatch", "checksum (data)");
    free(b);
    b = copy();
    b[105] ^= 1;
    expect_fail(b, orig_n, "checksum mismatch", "checksum (field)");
    /* student_has_tokenizer reads the header and table only (the checksum
     * is student_load's) */
    snprintf(path, sizeof path, "%s/bad.onebit", dir);
    err[0] = 0;
    CHECK(student_has_tokenizer(path, err) == 1, "has_tokenizer on a bad checksum: %s", err);
    free(b);
    /* damage the layers' build finds too, the checksum not redone: the
     * checksum (computed beside the build) is the error */
    b = copy();
    memcpy(b + get64(entry(b, "layers.1.w3.g") + 96) + 6, (const unsigned char[]){0x00, 0x7e}, 2);
    expect_fail(b, orig_n, "checksum mismatch", "NaN g and a bad checksum");
    free(b);
    b = copy();
    b[get64(entry(b, "layers.0.wq.sign") + 96) + 7] |= 0x80;
    expect_fail(b, orig_n, "checksum mismatch", "padding bits and a bad checksum");
    free(b);
    /* in the data: NaN / Inf in g (FP16), h and an FP32 tensor, a
     * tokenizer piece length past the end */
    static const struct {
        const char *name;
        size_t at, n;
        unsigned char bytes[4];
        const char *want, *what;
    } data_damages[] = {
        {"layers.1.w3.g", 6, 2, {0x00, 0x7e}, "layers.1.w3.g: element 3 is not finite", "NaN g"},
        {"layers.0.wo.h", 0, 2, {0x00, 0x7c}, "not finite", "Inf h"},
        {"rms_att", 8, 4, {0x00, 0x00, 0xc0, 0x7f}, "rms_att: element 2 is not finite", "NaN rms"},
        {"tokenizer.pieces", 0, 4, {0xe8, 0x03, 0x00, 0x00}, "past the end of tokenizer.pieces", "piece length"},
    };
    for (size_t i = 0; i < sizeof data_damages / sizeof data_damages[0]; i++) {
        b = copy();
        memcpy(b + get64(entry(b, data_damages[i].name) + 96) + data_damages[i].at, data_damages[i].bytes, data_damages[i].n);
        fix_checksum(b, orig_n);
        expect_fail(b, orig_n, data_damages[i].want, data_damages[i].what);
        free(b);
    }
    /* padding bits of a sign row (in = 40 < 64) */
    b = copy();
    b[get64(entry(b, "layers.0.wq.sign") + 96) + 7] |= 0x80;
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, "padding bits", "padding");
    free(b);
    /* reserved bytes */
    b = copy();
    b[120] = 1;
    fix_checksum(b, orig_n);
    expect_fail(b, orig_n, "reserved", "reserved header");
    free(b);
    mos_hostile(&t, &tok, src, path);
    student_src_free(src, 2 * LIN_PER_LAYER);
    /* not a file */
    {
        Model m;
        CHECK(student_load(&m, NULL, dir, err) == -1 && strstr(err, "not a regular file"), "directory: %s", err);
        snprintf(path, sizeof path, "%s/none.onebit", dir);
        CHECK(student_load(&m, NULL, path, err) == -1 && strstr(err, "No such file"), "missing: %s", err);
    }
    free(orig);
    tok_free(&tok);
    model_free(&t);
    snprintf(path, sizeof path, "%s/good.onebit", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/bad.onebit", dir);
    unlink(path);
    rmdir(dir);
    return test_done("test_student_hostile");
}
