/* test_spm.c -- the SentencePiece tokenizer.model reader: the shared Llama 2
 * tokenizer.model against the tokenizer.bin llama2.c exported from it (same
 * vocabulary, scores, ids and decoded text), content sniffing, a Hugging
 * Face directory with tokenizer.model and no tokenizer.json, normalizer
 * flags, and hostile files (truncated varints, lengths past the end, no
 * pieces, huge lengths, bad ids). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "format/hf.h"
#include "format/loader.h"
#include "format/spm.h"
#include "format/tokenizer.h"
#include "test.h"

/* ---- a small protobuf writer --------------------------------------------*/

typedef struct { unsigned char *b; size_t n, cap; } Buf;

static void put(Buf *o, const void *p, size_t n)
{
    if (o->n + n > o->cap) { o->cap = (o->n + n) * 2 + 64; o->b = realloc(o->b, o->cap); }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void put_varint(Buf *o, uint64_t v)
{
    unsigned char c;
    while (v >= 0x80) { c = (unsigned char)(v | 0x80); put(o, &c, 1); v >>= 7; }
    c = (unsigned char)v;
    put(o, &c, 1);
}
static void put_key(Buf *o, unsigned f, unsigned wt) { put_varint(o, (uint64_t)f << 3 | wt); }
static void put_bytes(Buf *o, unsigned f, const void *p, size_t n) { put_key(o, f, 2); put_varint(o, n); put(o, p, n); }
static void put_int(Buf *o, unsigned f, int64_t v) { put_key(o, f, 0); put_varint(o, (uint64_t)v); }

/* pieces (spaces written as U+2581) with scores and types; trainer and
 * normalizer fields as given (-2: leave out) */
static Buf model_proto(int n, char *const *pieces, const float *scores, const int *types, int model_type, int byte_fallback,
                       int bos, int eos, int dummy_prefix, int squeeze)
{
    Buf o = {0};
    for (int i = 0; i < n; i++) {
        Buf p = {0};
        char sp[8192];
        test_sp_piece(sp, sizeof sp, pieces[i]);
        put_bytes(&p, 1, sp, strlen(sp));
        put_key(&p, 2, 5);
        put(&p, &scores[i], 4);
        if (types[i] != 1) put_int(&p, 3, types[i]);
        put_bytes(&o, 1, p.b, p.n);
        free(p.b);
    }
    Buf ts = {0}, ns = {0};
    if (model_type != -2) put_int(&ts, 3, model_type);
    put_int(&ts, 4, n);
    if (byte_fallback != -2) put_int(&ts, 35, byte_fallback);
    put_int(&ts, 40, 0);
    if (bos != -2) put_int(&ts, 41, bos);
    if (eos != -2) put_int(&ts, 42, eos);
    put_int(&ts, 43, -1); /* pad_id -1: a 10-byte varint */
    put_bytes(&ns, 1, "identity", 8);
    if (dummy_prefix != -2) put_int(&ns, 3, dummy_prefix);
    if (squeeze != -2) put_int(&ns, 4, squeeze);
    put_bytes(&o, 2, ts.b, ts.n);
    put_bytes(&o, 3, ns.b, ns.n);
    free(ts.b);
    free(ns.b);
    return o;
}

/* tok512.bin's vocabulary as a tokenizer.model (types: unknown, control,
 * byte as SentencePiece has them) */
static Buf proto_of(const Tokenizer *t, int model_type, int dummy_prefix, int squeeze)
{
    int *types = malloc(t->vocab_size * sizeof(int));
    char **pieces = malloc(t->vocab_size * sizeof(char *));
    for (int i = 0; i < t->vocab_size; i++) {
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
        pieces[i] = i == 1 ? "<s>" : i == 2 ? "</s>" : t->vocab[i];
    }
    Buf b = model_proto(t->vocab_size, pieces, t->scores, types, model_type, 1, 1, 2, dummy_prefix, squeeze);
    free(types);
    free(pieces);
    return b;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    fwrite(p, 1, n, f);
    fclose(f);
}

/* ---- equality with tokenizer.bin ----------------------------------------*/

static void check_same(const Tokenizer *a, const Tokenizer *b, const char *text, const char *what)
{
    int *ia, *ib;
    size_t na, nb;
    CHECK(tok_encode(a, text, 1, 1, &ia, &na) == 0 && tok_encode(b, text, 1, 1, &ib, &nb) == 0, "%s: encode", what);
    int same = na == nb;
    size_t first = 0;
    for (size_t i = 0; same && i < na; i++)
        if (ia[i] != ib[i]) { same = 0; first = i; }
    CHECK(same, "%s: tokenizer.model gives %zu ids, tokenizer.bin %zu (first difference at %zu)", what, na, nb, first);
    /* decoded the same, piece by piece */
    int dsame = 1;
    for (size_t i = 1; same && dsame && i < na; i++) dsame = !strcmp(tok_decode(a, ia[i - 1], ia[i]), tok_decode(b, ib[i - 1], ib[i]));
    CHECK(dsame, "%s: decoded text differs", what);
    free(ia);
    free(ib);
}

static char *prefix(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static void check_llama2(const char *model, const char *bin, const char *stories, const char *wiki)
{
    char err[OB_ERRLEN];
    Tokenizer m, b;
    CHECK(spm_load(&m, model, 32000, err) == 0, "%s", err);
    CHECK(tok_load(&b, bin, 32000, err) == 0, "%s", err);
    CHECK(m.vocab_size == 32000 && b.vocab_size == 32000, "vocab sizes %d %d", m.vocab_size, b.vocab_size);
    int vs = 1, ss = 1, bad = -1;
    for (int i = 0; i < m.vocab_size && i < b.vocab_size; i++) {
        if (strcmp(m.vocab[i], b.vocab[i]) || m.vocab_len[i] != b.vocab_len[i]) { if (vs) bad = i; vs = 0; }
        if (memcmp(&m.scores[i], &b.scores[i], 4)) { if (ss) bad = i; ss = 0; }
    }
    CHECK(vs, "pieces equal (first difference at %d: '%s' vs '%s')", bad, bad >= 0 ? m.vocab[bad] : "", bad >= 0 ? b.vocab[bad] : "");
    CHECK(ss, "scores equal (first difference at %d)", bad);
    CHECK(m.bos_id == 1 && m.eos_id == 2 && m.unk_id == 0 && m.byte_base == 3, "ids %d %d %d %d", m.bos_id, m.eos_id, m.unk_id, m.byte_base);
    CHECK(!m.no_dummy_prefix && !m.squeeze_spaces, "Llama 2's normalizer: dummy prefix, spaces kept");
    const char *texts[] = {
        "Once upon a time",
        "Hello, world!",
        "caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac 10 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
        "emoji \xf0\x9f\x98\x80\xf0\x9f\xa6\x99 and \xf0\x9f\x8f\xb3\xef\xb8\x8f\xe2\x80\x8d\xf0\x9f\x8c\x88 fallback",
        " leading", "trailing ", "  two  spaces   three    four", "     ", " ",
        "",
        "line one\nline two\n\nline four\r\n\ttab",
        "<s> </s> <unk> <0x41> literal specials",
        "\x01\x7f control bytes \xff invalid utf-8 \xc3",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) check_same(&m, &b, texts[i], texts[i]);
    char *st, *wk;
    size_t sl, wl;
    if (ob_read_file(stories, &st, &sl, err) == 0) {
        char *p = prefix(st, sl < 4000 ? sl : 4000);
        check_same(&m, &b, p, "tinystories paragraph");
        free(p);
        check_same(&m, &b, st, "tinystories sample, whole");
        free(st);
    }
    if (ob_read_file(wiki, &wk, &wl, err) == 0) {
        char *p = prefix(wk + 2000, 6000);
        check_same(&m, &b, p, "wiki.test.raw paragraph");
        free(p);
        p = prefix(wk, 200000);
        check_same(&m, &b, p, "wiki.test.raw, 200 kB");
        free(p);
        free(wk);
    }
    /* the tokenizer sniffer: a tokenizer.model by content, whatever its name */
    Tokenizer s;
    CHECK(loader_load_tokenizer(&s, model, 32000, err) == 0, "%s", err);
    CHECK(s.vocab_size == 32000 && !strcmp(s.vocab[9038], " Once"), "sniffed as tokenizer.model");
    tok_free(&s);
    CHECK(loader_load_tokenizer(&s, bin, 32000, err) == 0 && s.vocab_size == 32000, "tokenizer.bin still sniffed as such: %s", err);
    tok_free(&s);
    /* more pieces than the model has tokens */
    CHECK(spm_load(&s, model, 512, err) == -1 && strstr(err, "32000 pieces"), "vocab 512: %s", err);
    tok_free(&m);
    tok_free(&b);
}

/* ---- hostile -------------------------------------------------------------*/

static void expect_fail(const void *p, size_t n, const char *want, const char *what)
{
    char err[OB_ERRLEN] = "";
    Tokenizer t;
    int rc = spm_parse(&t, p, n, 0, err);
    CHECK(rc == -1 && strstr(err, want), "%s: rc %d, error '%s' (want '%s')", what, rc, err, want);
    if (rc == 0) tok_free(&t);
}

static void check_hostile(const Tokenizer *t512)
{
    Buf good = proto_of(t512, 2, -2, -2);
    char err[OB_ERRLEN];
    Tokenizer t;
    CHECK(spm_parse(&t, good.b, good.n, 0, err) == 0, "the good one: %s", err);
    tok_free(&t);
    /* every truncation fails cleanly or parses a prefix (never crashes) */
    int ok = 0;
    for (size_t cut = 0; cut < good.n; cut += 1 + cut / 64)
        if (spm_parse(&t, good.b, cut, 0, err) == 0) { ok++; tok_free(&t); }
    CHECK(ok >= 0, "truncations");
    expect_fail(good.b, 0, "no pieces", "empty file");
    unsigned char tv[] = {0x0a, 0x85};
    expect_fail(tv, sizeof tv, "truncated length", "truncated varint");
    unsigned char tk[] = {0x8a};
    expect_fail(tk, sizeof tk, "truncated field key", "truncated key");
    unsigned char past[] = {0x0a, 0x10, 0x0a, 0x01, 'a'};
    expect_fail(past, sizeof past, "past the end", "length past end");
    unsigned char huge[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    expect_fail(huge, sizeof huge, "past the end", "huge length");
    unsigned char longv[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    expect_fail(longv, sizeof longv, "truncated varint", "11-byte varint");
    unsigned char group[] = {0x0b};
    expect_fail(group, sizeof group, "wire type 3", "group wire type");
    unsigned char inner[] = {0x0a, 0x04, 0x0a, 0x05, 'a', 'b'};
    expect_fail(inner, sizeof inner, "past the end", "piece length past its message");
    unsigned char nostr[] = {0x0a, 0x02, 0x18, 0x01, 0x0a, 0x02, 0x18, 0x01, 0x0a, 0x02, 0x18, 0x01};
    expect_fail(nostr, sizeof nostr, "no piece string", "piece without string");
    unsigned char badscore[] = {0x0a, 0x05, 0x0a, 0x01, 'a', 0x10, 0x01};
    expect_fail(badscore, sizeof badscore, "wire type 0", "score as varint");
    /* no pieces, only specs */
    Buf o = {0};
    put_bytes(&o, 2, "\x18\x02", 2);
    expect_fail(o.b, o.n, "no pieces", "piece count 0");
    free(o.b);
    /* ids out of range, unsupported model types */
    char *p3[] = {"<unk>", "<s>", "</s>", "a"};
    float s3[] = {0, 0, 0, -1};
    int ty[] = {2, 3, 3, 1};
    Buf b1 = model_proto(4, p3, s3, ty, 2, 0, 7, 2, -2, -2);
    expect_fail(b1.b, b1.n, "bos_id 7", "bos id past the pieces");
    Buf b2 = model_proto(4, p3, s3, ty, 2, 0, 1, -1, -2, -2);
    expect_fail(b2.b, b2.n, "eos_id -1", "eos id -1");
    Buf b3 = model_proto(4, p3, s3, ty, 3, 0, 1, 2, -2, -2);
    expect_fail(b3.b, b3.n, "model type 3", "word model");
    /* a piece of 5000 bytes */
    char *big = malloc(5001);
    memset(big, 'x', 5000);
    big[5000] = 0;
    char *p4[] = {"<unk>", "<s>", "</s>", big};
    Buf b4 = model_proto(4, p4, s3, ty, 2, 0, 1, 2, -2, -2);
    expect_fail(b4.b, b4.n, "5000 bytes", "huge piece");
    /* defaults: no model type (Unigram), no ids (0/1/2), no byte fallback */
    Buf b5 = model_proto(4, p3, s3, ty, -2, -2, -2, -2, -2, -2);
    CHECK(spm_parse(&t, b5.b, b5.n, 8, err) == 0 && t.vocab_size == 8 && t.bos_id == 1 && t.eos_id == 2 && t.byte_base == -1,
          "defaults, padded to 8: %s", err);
    if (t.vocab) tok_free(&t);
    free(big); free(b1.b); free(b2.b); free(b3.b); free(b4.b); free(b5.b);
    free(good.b);
}

/* ---- normalizer flags, Hugging Face directory -----------------------------*/

static void ids_of(const Tokenizer *t, const char *text, int *out, size_t *n)
{
    int *ids;
    tok_encode(t, text, 0, 0, &ids, n);
    memcpy(out, ids, *n * sizeof(int));
    free(ids);
}

static void check_flags(const Tokenizer *t512)
{
    char err[OB_ERRLEN];
    Buf b = proto_of(t512, 2, 0, 1);
    Tokenizer t;
    CHECK(spm_parse(&t, b.b, b.n, 512, err) == 0, "%s", err);
    CHECK(t.no_dummy_prefix && t.squeeze_spaces, "flags read");
    int a[64], c[64];
    size_t na, nc;
    ids_of(&t, "  Once   upon a  time  ", a, &na);
    ids_of(&t, "Once upon a time", c, &nc);
    CHECK(na == nc && !memcmp(a, c, na * sizeof(int)), "extra spaces removed (%zu vs %zu ids)", na, nc);
    ids_of(t512, "Once", c, &nc);
    ids_of(&t, "Once", a, &na);
    CHECK(nc >= 1 && (na != nc || memcmp(a, c, na * sizeof(int))), "no dummy prefix: 'Once' differs from ' Once'");
    ids_of(&t, "   ", a, &na);
    CHECK(na == 0, "only spaces: nothing left (%zu ids)", na);
    tok_free(&t);
    free(b.b);
}

static void check_hf_dir(const Tokenizer *t512, const char *hfdir)
{
    char dir[512], err[OB_ERRLEN];
    if (test_tmpdir(dir, sizeof dir, "test_spm")) { CHECK(0, "tmpdir"); return; }
    char src[2100];
    snprintf(src, sizeof src, "%s/config.json", hfdir);
    CHECK(symlink(src, test_sub(dir, "config.json")) == 0, "symlink config");
    snprintf(src, sizeof src, "%s/model.safetensors", hfdir);
    CHECK(symlink(src, test_sub(dir, "model.safetensors")) == 0, "symlink weights");
    Buf b = proto_of(t512, 2, -2, -2);
    write_file(test_sub(dir, "tokenizer.model"), b.b, b.n);
    free(b.b);
    LlamaFile f;
    Tokenizer t;
    int loaded = 0;
    CHECK(loader_load(&f, &t, &loaded, dir, err) == 0, "%s", err);
    CHECK(loaded, "the directory's tokenizer.model is used");
    if (loaded) {
        check_same(&t, t512, "Once upon a time, there was a little girl named Lily.", "hf dir tokenizer.model");
        tok_free(&t);
        llama_file_free(&f);
    }
    test_rmtree(dir);
}

int main(void)
{
    REQUIRE_SHARED(model, "models/tokenizer.model");
    REQUIRE_SHARED(bin, "models/tokenizer.bin");
    REQUIRE_SHARED(tok512, "models/tok512.bin");
    REQUIRE_SHARED(hfcfg, "models/stories260K-hf/config.json");
    const char *stories = shared_path("data/tinystories_train_head_sample.txt");
    const char *wiki = shared_path("data/wiki.test.raw");
    char err[OB_ERRLEN];
    unsigned char head[8];
    FILE *f = fopen(model, "rb");
    CHECK(f && fread(head, 1, 8, f) == 8 && spm_probe(head, 8), "tokenizer.model probes as SentencePiece");
    if (f) fclose(f);
    f = fopen(bin, "rb");
    CHECK(f && fread(head, 1, 8, f) == 8 && !spm_probe(head, 8), "tokenizer.bin does not");
    if (f) fclose(f);
    check_llama2(model, bin, stories ? stories : "/nonexistent", wiki ? wiki : "/nonexistent");
    Tokenizer t512;
    CHECK(tok_load(&t512, tok512, 512, err) == 0, "%s", err);
    check_hostile(&t512);
    check_flags(&t512);
    char hfdir[1024];
    snprintf(hfdir, sizeof hfdir, "%s", hfcfg);
    *strrchr(hfdir, '/') = 0;
    check_hf_dir(&t512, hfdir);
    tok_free(&t512);
    return test_done("test_spm");
}
