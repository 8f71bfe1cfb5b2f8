/* test_torch.c -- the restricted torch.save reader (format/torch.h): files
 * made by torchwriter.h as torch.save makes them (an OrderedDict with
 * _metadata, two tensors sharing a storage at non-zero offsets, ZIP64
 * fields), hostile files (globals outside the allowlist, missing storages,
 * offsets past a storage, memo indexes out of range, deep nesting, truncated
 * zip directories and files: each a clear error, never a crash), Hugging
 * Face directories with pytorch_model*.bin through the loader registry, and
 * stories260K written in torch format giving the logits of its safetensors
 * directory. `test_torch --write-hf SRC OUT DTYPE SHARDS` only writes the
 * model at SRC as such a directory, its tensors packed into one storage
 * per dtype when SHARDS > 1 (for tests/cli_teacher_torch.sh);
 * `test_torch --write-seeds DIR` writes small files to seed fuzz_torch. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "format/loader.h"
#include "format/torch.h"
#include "test.h"
#include "torchwriter.h"

static char dir[] = "/tmp/onebit-torch-XXXXXX";
static const int greedy8[8] = {1, 403, 407, 261, 378, 432, 383, 286};

static char *sub(const char *name) { return test_path_in(dir, name); }

/* parse a copy of b (exactly its size, so that ASan sees any overread) */
static int parse(const Buf *b, STFile *f, char *err)
{
    void *copy = malloc(b->n ? b->n : 1);
    memcpy(copy, b->p, b->n);
    int rc = torch_parse(f, copy, b->n, err);
    if (rc == 0) {
        /* the tensors point into the buffer: check against a copy that stays */
        f->base = b->p;
    }
    free(copy);
    return rc;
}

/* b must be rejected with a message containing want */
static void expect_reject(const Buf *b, const char *want, const char *what)
{
    STFile f;
    char err[OB_ERRLEN] = "";
    int rc = parse(b, &f, err);
    CHECK(rc != 0, "%s: accepted", what);
    if (rc == 0) { st_free(&f); return; }
    CHECK(strstr(err, want) != NULL, "%s: message '%s' lacks '%s'", what, err, want);
}

/* the zip of a good w with the pickle replaced by pk's bytes */
static void with_pickle(const TW *w, const Pk *pk, Buf *out);

/* the pickle made again from w (after a test changed w) must be refused */
static void reject_repickled(const TW *w, Pk *p, Buf *out, const char *want, const char *what)
{
    p->b.n = 0;
    p->memo = 0;
    tw_pickle(w, p);
    with_pickle(w, p, out);
    expect_reject(out, want, what);
}

static void with_pickle(const TW *w, const Pk *pk, Buf *out)
{
    out->n = 0;
    tw_build(w, &pk->b, out);
}

static void pk_start(Pk *p) { p->b.n = 0; p->memo = 0; pk_op(p, 0x80); pk_op(p, 2); }

/* a small state dict: storage 0 (12 floats) shared by a [2, 3] at offset 0
 * and b [3, 2] at offset 6; c [4] F16; d, a 0-d BF16 at offset 1; e [2] int64 */
static void small_dict(TW *w, float *fl)
{
    memset(w, 0, sizeof *w);
    for (int i = 0; i < 12; i++) fl[i] = (float)i + 0.5f;
    int s0 = tw_storage(w, "FloatStorage", 4, fl, 12);
    tw_tensor(w, "a", s0, 0, 2, (int64_t[]){2, 3});
    tw_tensor(w, "b", s0, 6, 2, (int64_t[]){3, 2});
    uint16_t h[4] = {ob_fp32_to_fp16(1), ob_fp32_to_fp16(-2), ob_fp32_to_fp16(3), ob_fp32_to_fp16(0.25f)};
    tw_tensor(w, "c", tw_storage(w, "HalfStorage", 2, h, 4), 0, 1, (int64_t[]){4});
    uint16_t bf[2] = {ob_fp32_to_bf16(7), ob_fp32_to_bf16(-9)};
    tw_tensor(w, "d", tw_storage(w, "BFloat16Storage", 2, bf, 2), 1, 0, NULL);
    int64_t l[2] = {-5, 1LL << 40};
    tw_tensor(w, "e", tw_storage(w, "LongStorage", 8, l, 2), 0, 1, (int64_t[]){2});
    w->metadata = 1;
}

static void test_good(void)
{
    TW *w = calloc(1, sizeof *w);
    float fl[12];
    for (int z64 = 0; z64 < 2; z64++) {
        small_dict(w, fl);
        w->zip64_extra = z64;
        Buf b = {0};
        tw_build(w, NULL, &b);
        STFile f;
        char err[OB_ERRLEN];
        if (parse(&b, &f, err)) { CHECK(0, "small dict (zip64 extra %d): %s", z64, err); free(b.p); tw_free(w); continue; }
        CHECK(f.n == 5, "5 tensors, got %zu", f.n);
        const STTensor *a = st_find(&f, "a"), *bb = st_find(&f, "b"), *c = st_find(&f, "c"), *d = st_find(&f, "d"), *e = st_find(&f, "e");
        CHECK(a && bb && c && d && e, "every tensor found by name");
        if (a && bb && c && d && e) {
            CHECK(a->dtype == ST_F32 && a->n_dims == 2 && a->shape[0] == 2 && a->shape[1] == 3 && a->n_elems == 6, "a's dtype and shape");
            CHECK(a->begin % 64 == 0, "storage data on a 64-byte boundary (at %llu)", (unsigned long long)a->begin);
            CHECK(bb->begin == a->begin + 24 && bb->end == a->begin + 48, "b shares a's storage at offset 6");
            float x[6];
            st_to_f32(&f, bb, x);
            CHECK(x[0] == 6.5f && x[5] == 11.5f, "b's values %g..%g", (double)x[0], (double)x[5]);
            st_to_f32(&f, a, x);
            CHECK(x[0] == 0.5f && x[5] == 5.5f, "a's values");
            st_to_f32(&f, c, x);
            CHECK(c->dtype == ST_F16 && x[1] == -2 && x[3] == 0.25f, "c F16");
            CHECK(d->dtype == ST_BF16 && d->n_dims == 0 && d->n_elems == 1, "d 0-d BF16");
            st_to_f32(&f, d, x);
            CHECK(x[0] == -9, "d at storage offset 1: %g", (double)x[0]);
            int64_t lv;
            memcpy(&lv, f.base + e->begin + 8, 8);
            CHECK(e->dtype == ST_I64 && lv == (1LL << 40), "e int64");
        }
        st_free(&f);
        /* every prefix of the file is rejected cleanly */
        size_t n0 = b.n;
        int bad = 0;
        for (size_t cut = 0; cut < n0; cut += (cut < 64 || n0 - cut < 300) ? 1 : 37) {
            b.n = cut;
            char e2[OB_ERRLEN];
            if (parse(&b, &f, e2) == 0) { bad++; st_free(&f); }
        }
        b.n = n0;
        CHECK(bad == 0, "%d truncated files accepted", bad);
        /* random byte flips: never a crash (ASan), errors or a consistent parse */
        uint32_t s = 777 + (uint32_t)z64;
        for (int it = 0; it < 3000; it++) {
            Buf m = {0};
            buf_put(&m, b.p, b.n);
            for (int k = 0; k < 1 + it % 4; k++) {
                s = s * 1664525u + 1013904223u;
                m.p[(s >> 8) % m.n] ^= (uint8_t)(1u << (s >> 29));
            }
            char e2[OB_ERRLEN];
            if (parse(&m, &f, e2) == 0) {
                for (size_t i = 0; i < f.n; i++) bad += f.t[i].end > m.n || f.t[i].begin > f.t[i].end;
                st_free(&f);
            }
            free(m.p);
        }
        CHECK(bad == 0, "a mutated file parsed with tensors outside it");
        free(b.p);
        tw_free(w);
    }
    free(w);
}

static void test_hostile(void)
{
    TW *w = calloc(1, sizeof *w);
    float fl[12];
    small_dict(w, fl);
    Buf out = {0};
    Pk p = {0};

    /* globals outside the allowlist */
    pk_start(&p);
    pk_global(&p, "os", "system");
    pk_str(&p, "echo pwned");
    pk_op(&p, 0x85);
    pk_op(&p, 'R');
    pk_op(&p, '.');
    with_pickle(w, &p, &out);
    expect_reject(&out, "global os.system is not allowed", "os.system");
    pk_start(&p);
    pk_global(&p, "__builtin__", "eval");
    pk_op(&p, '.');
    with_pickle(w, &p, &out);
    expect_reject(&out, "global __builtin__.eval is not allowed", "eval");
    pk_start(&p);
    pk_global(&p, "torch", "FloatStorage");
    pk_op(&p, ')');
    pk_op(&p, 'R');
    pk_op(&p, '.');
    with_pickle(w, &p, &out);
    expect_reject(&out, "torch.FloatStorage called as a function", "a storage class called");

    /* a storage key that is not in the zip */
    strcpy(w->s[1].key, "77");
    p.b.n = 0; p.memo = 0;
    tw_pickle(w, &p);
    strcpy(w->s[1].key, "1");
    with_pickle(w, &p, &out);
    expect_reject(&out, "storage '77' is not in the archive", "missing storage");

    /* an offset past its storage; a size past it */
    w->t[1].offset = 10;
    reject_repickled(w, &p, &out, "tensor b: elements [10, 16) run past its storage of 12 elements", "offset past the storage");
    w->t[1].offset = 6;
    w->t[1].shape[0] = 4;
    w->t[1].stride[0] = 2;
    reject_repickled(w, &p, &out, "run past its storage", "size past the storage");
    w->t[1].shape[0] = 3;

    /* non-contiguous strides (a transposed view) */
    w->t[0].stride[0] = 1;
    w->t[0].stride[1] = 2;
    reject_repickled(w, &p, &out, "tensor a: strides are not those of a contiguous tensor", "transposed strides");
    w->t[0].stride[0] = 3;
    w->t[0].stride[1] = 1;

    /* the storage's numel does not fit its entry; one key as two dtypes */
    w->s[1].numel = 3;
    reject_repickled(w, &p, &out, "storage '1' holds 3 HalfStorage elements (6 bytes) but its entry has 8 bytes", "numel mismatch");
    w->s[1].numel = 4;
    STFile f;
    char err[OB_ERRLEN];
    {
        /* two tensors on key '1': one through HalfStorage, one FloatStorage */
        Pk m = {0};
        pk_start(&m);
        int od = pk_global(&m, "collections", "OrderedDict");
        pk_op(&m, ')'); pk_op(&m, 'R'); pk_put(&m);
        pk_op(&m, '(');
        for (int k = 0; k < 2; k++) {
            pk_str(&m, k ? "y" : "x");
            pk_global(&m, "torch._utils", "_rebuild_tensor_v2");
            pk_op(&m, '(');
            pk_op(&m, '(');
            pk_str(&m, "storage");
            pk_global(&m, "torch", k ? "FloatStorage" : "HalfStorage");
            pk_str(&m, "1");
            pk_str(&m, "cpu");
            pk_int(&m, k ? 2 : 4);
            pk_op(&m, 't'); pk_op(&m, 'Q');
            pk_int(&m, 0);
            pk_int_tuple(&m, (int64_t[]){2}, 1);
            pk_int_tuple(&m, (int64_t[]){1}, 1);
            pk_op(&m, 0x89);
            pk_get(&m, od); pk_op(&m, ')'); pk_op(&m, 'R');
            pk_op(&m, 't'); pk_op(&m, 'R');
        }
        pk_op(&m, 'u'); pk_op(&m, '.');
        with_pickle(w, &m, &out);
        expect_reject(&out, "storage '1' is used as F16 and as F32 (dtype mismatch)", "one storage, two dtypes");
        free(m.b.p);
    }

    /* memo indexes out of range */
    pk_start(&p);
    pk_op(&p, 'h'); pk_op(&p, 5);
    with_pickle(w, &p, &out);
    expect_reject(&out, "memo index 5 out of range (0 memo slots)", "BINGET 5");
    pk_start(&p);
    pk_op(&p, '}'); pk_put(&p);
    pk_op(&p, 'j'); buf_u32(&p.b, 0xffffffffu);
    with_pickle(w, &p, &out);
    expect_reject(&out, "memo index 4294967295 out of range (1 memo slots)", "LONG_BINGET");
    pk_start(&p);
    pk_op(&p, '}');
    pk_op(&p, 'r'); buf_u32(&p.b, 0xfffffff0u);
    with_pickle(w, &p, &out);
    expect_reject(&out, "memo index 4294967280 is above the limit", "LONG_BINPUT far away");

    /* stack underflow, a missing MARK, popping past a MARK */
    /* pickles of a few opcodes after PROTO 2, each refused */
    static const struct { const char *ops; size_t n; const char *want, *what; } bad[] = {
        {"R", 1, "pickle byte 2: stack underflow", "REDUCE on an empty stack"},
        {"t", 1, "no MARK to pop to", "TUPLE without MARK"},
        {"}(Ns", 4, "pops past a MARK", "SETITEM across a MARK"},
        {"\x95", 1, "opcode 0x95 is not one that torch.save's protocol-2 pickles use", "FRAME"},
        {"].", 2, "data.pkl holds a list, not a state dict", "a list"},
        {"X\xe8\x03\x00\x00" "abc", 8, "ends inside an opcode", "truncated BINUNICODE"},
        {"cos", 3, "GLOBAL without a newline", "unterminated GLOBAL"},
        {"}N.", 3, "STOP with other than one object", "two objects at STOP"},
        {"}NbN}b", 6, "BUILD other than an OrderedDict's attributes", "BUILD on None"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pk_start(&p);
        buf_put(&p.b, bad[i].ops, bad[i].n);
        with_pickle(w, &p, &out);
        expect_reject(&out, bad[i].want, bad[i].what);
    }

    /* deep nesting: MARKs, and tuples in tuples */
    pk_start(&p);
    for (int i = 0; i < 100000; i++) pk_op(&p, '(');
    with_pickle(w, &p, &out);
    expect_reject(&out, "MARKs nested deeper than 64", "100000 MARKs");
    pk_start(&p);
    pk_op(&p, ')');
    for (int i = 0; i < 100000; i++) pk_op(&p, 0x85);
    pk_op(&p, '.');
    with_pickle(w, &p, &out);
    expect_reject(&out, "objects nested deeper than 64", "100000 nested tuples");
    pk_start(&p);
    pk_op(&p, ']'); pk_put(&p);
    for (int i = 0; i < 100; i++) { pk_get(&p, 0); pk_op(&p, 'a'); }
    pk_op(&p, '.');
    with_pickle(w, &p, &out);
    expect_reject(&out, "nested deeper than 64", "a list appended to itself");

    /* other opcodes, protocols, shapes of pickle */
    p.b.n = 0;
    pk_op(&p, 0x80); pk_op(&p, 4);
    with_pickle(w, &p, &out);
    expect_reject(&out, "pickle protocol 4 (torch.save writes protocol 2)", "protocol 4");
    pk_start(&p);
    pk_op(&p, '('); pk_str(&p, "storage"); pk_op(&p, 't'); pk_op(&p, 'Q');
    with_pickle(w, &p, &out);
    expect_reject(&out, "persistent id that is not ('storage'", "a short persistent id");
    p.b.n = 0;
    pk_op(&p, 0x80); pk_op(&p, 2); pk_op(&p, '}');
    with_pickle(w, &p, &out);
    expect_reject(&out, "ends inside an opcode", "no STOP");

    /* the zip: a truncated file, a central directory past its end record, a
     * deflated entry, no data.pkl */
    Buf good = {0};
    tw_build(w, NULL, &good);
    CHECK(parse(&good, &f, err) == 0, "the small dict again: %s", err);
    if (f.t) st_free(&f);
    Buf t = {0};
    buf_put(&t, good.p, good.n / 2);
    expect_reject(&t, "no zip end-of-central-directory record", "half a file");
    /* cut 40 bytes out of the central directory, keep the end records */
    uint64_t cd = file_get_u64le(good.p + good.n - 22 - 20 - 56 + 48);
    t.n = 0;
    buf_put(&t, good.p, (size_t)cd + 10);
    buf_put(&t, good.p + cd + 50, good.n - cd - 50);
    expect_reject(&t, "the ZIP64 end record at offset", "central directory with a hole (ZIP64 locator off)");
    /* the same without ZIP64 records: the plain end record points past itself */
    t.n = 0;
    buf_put(&t, good.p, (size_t)cd + 10);
    buf_put(&t, good.p + good.n - 22, 22);
    expect_reject(&t, "runs past its end record", "truncated central directory");
    t.n = 0;
    buf_put(&t, good.p, good.n);
    t.p[cd + 10] = 8; /* entry 0's method: deflate */
    expect_reject(&t, "zip entry archive/data.pkl is compressed (method 8)", "a deflated entry");
    t.n = 0;
    buf_put(&t, good.p, good.n);
    memcpy(t.p + cd + 46, "archive/data.pkX", 16);
    expect_reject(&t, "no data.pkl in the zip archive", "no data.pkl");
    t.n = 0;
    buf_put(&t, good.p, good.n);
    t.p[cd + 42] = 0xf0; /* local header offset */
    expect_reject(&t, "no local header at offset", "a bad local header offset");
    expect_reject(&(Buf){(uint8_t *)"PK\3\4", 4, 4}, "too short for a zip archive", "4 bytes");

    free(t.p);
    free(good.p);
    free(out.p);
    free(p.b.p);
    tw_free(w);
    free(w);
}

/* Hugging Face directories with pytorch_model*.bin through the registry */
static void test_hf_dirs(void)
{
    Model m, r;
    char err[OB_ERRLEN];
    tiny_model(&m, 32, 48, 2, 4, 2, 40, 0);
    for (int k = 0; k < 2; k++) {
        const char *dd = sub(k ? "tiny_sharded" : "tiny");
        CHECK(tw_hf_dir(&m, dd, "F32", 0, k ? 3 : 1, k) == 0, "write %s", dd);
        if (model_load(&r, dd, err)) { CHECK(0, "%s: %s", dd, err); continue; }
        CHECK(r.arena_floats == m.arena_floats && !memcmp(r.arena, m.arena, m.arena_floats * 4), "%s: weights bit-identical", dd);
        model_free(&r);
        if (!k) { /* the .bin named directly stands for its directory */
            int lr = model_load(&r, test_path_in(dd, "pytorch_model.bin"), err);
            CHECK(lr == 0, "tiny/pytorch_model.bin: %s", err);
            if (!lr) model_free(&r);
        }
        char hex[65], hex2[65];
        const char *fmt = NULL;
        CHECK(loader_fingerprint(dd, hex, &fmt, err) == 0 && fmt && !strcmp(fmt, "hf"), "fingerprint %s: %s", dd, err);
        /* one byte of the weights changes the fingerprint */
        char bin[800];
        snprintf(bin, sizeof bin, "%s/%s", dd, k ? "pytorch_model-00002-of-00003.bin" : "pytorch_model.bin");
        FILE *f = fopen(bin, "r+b");
        if (f) {
            fseek(f, -200, SEEK_END);
            int c = fgetc(f);
            fseek(f, -200, SEEK_END);
            fputc(c ^ 1, f);
            fclose(f);
        }
        CHECK(loader_fingerprint(dd, hex2, NULL, err) == 0 && strcmp(hex, hex2), "%s: the .bin is part of the fingerprint", dd);
    }
    /* a hostile .bin in a directory: the error names the file */
    {
        const char *dd = sub("evil");
        mkdir(dd, 0755);
        st_config(test_path_in(dd, "config.json"), &m.cfg, 0);
        TW *w = calloc(1, sizeof *w);
        Pk p = {0};
        pk_start(&p);
        pk_global(&p, "os", "system");
        Buf b = {0};
        tw_build(w, &p.b, &b);
        write_buf(test_path_in(dd, "pytorch_model.bin"), b.p, b.n);
        CHECK(model_load(&r, dd, err) != 0, "evil directory accepted");
        CHECK(strstr(err, "evil/pytorch_model.bin: pickle byte 2: global os.system is not allowed"), "evil: %s", err);
        free(b.p);
        free(p.b.p);
        free(w);
    }
    model_free(&m);
}

/* stories260K as torch-format directories against its safetensors one */
static void test_stories(const char *hfdir)
{
    Model h, r, s;
    char err[OB_ERRLEN];
    if (model_load(&h, hfdir, err)) { CHECK(0, "%s", err); return; }
    const char *dts[3] = {"F32", "BF16", "F16"};
    for (int k = 0; k < 3; k++) {
        char tn[32], sn[32];
        snprintf(tn, sizeof tn, "torch_%s", dts[k]);
        snprintf(sn, sizeof sn, "st_%s", dts[k]);
        const char *td = ob_strdup(sub(tn)), *sd = ob_strdup(sub(sn));
        /* F32: one storage per tensor in one file, as a state dict is saved;
         * the others sharded in 3 with packed storages */
        CHECK(tw_hf_dir(&h, td, dts[k], 1, k ? 3 : 1, k != 0) == 0, "write %s", td);
        mkdir(sd, 0755);
        st_config(test_path_in(sd, "config.json"), &h.cfg, 1);
        STens *ts = calloc(600, sizeof *ts);
        int n = st_model(&h, ts, dts[k], 1);
        st_write(test_path_in(sd, "model.safetensors"), ts, n);
        free(ts);
        int lt = model_load(&r, td, err);
        CHECK(lt == 0, "%s: %s", td, err);
        int ls = model_load(&s, sd, err);
        CHECK(ls == 0, "%s: %s", sd, err);
        if (!lt && !ls) {
            CHECK(r.arena_floats == s.arena_floats && !memcmp(r.arena, s.arena, s.arena_floats * 4), "%s: the weights of the safetensors load", tn);
            double d = max_logit_diff(&s, &r, greedy8, 8);
            printf("%s vs safetensors: max |logit diff| = %g\n", tn, d);
            CHECK(d == 0, "%s: logits differ by %g", tn, d);
            if (k == 0) {
                d = max_logit_diff(&h, &r, greedy8, 8);
                CHECK(d == 0 && !memcmp(r.arena, h.arena, h.arena_floats * 4), "F32 torch equals the shared stories260K-hf exactly (%g)", d);
            }
        }
        if (!lt) model_free(&r);
        if (!ls) model_free(&s);
        free((char *)td);
        free((char *)sd);
    }
    model_free(&h);
}

int main(int argc, char **argv)
{
    /* the loaders' FP32 arena conversion, whatever the dtype (the mapped
     * teacher has its own test, test_teacher_mapped) */
    setenv("ONEBIT_TEACHER_LOAD", "arena", 1);
    if (argc == 6 && !strcmp(argv[1], "--write-hf")) {
        Model m;
        char err[OB_ERRLEN];
        if (model_load(&m, argv[2], err)) { fprintf(stderr, "%s\n", err); return 1; }
        int shards = atoi(argv[5]);
        int rc = tw_hf_dir(&m, argv[3], argv[4], m.cfg.shared_classifier, shards, shards > 1);
        model_free(&m);
        return rc ? 1 : 0;
    }
    if (argc == 3 && !strcmp(argv[1], "--write-seeds")) { /* a corpus for tests/fuzz/fuzz_torch */
        TW *w = calloc(1, sizeof *w);
        float fl[12];
        int rc = 0;
        for (int z64 = 0; z64 < 2; z64++) {
            small_dict(w, fl);
            w->zip64_extra = z64;
            w->metadata = !z64;
            rc |= tw_save(w, test_path_in(argv[2], z64 ? "small_zip64.bin" : "small.bin"));
            tw_free(w);
        }
        free(w);
        return rc ? 1 : 0;
    }
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_good();
    test_hostile();
    test_hf_dirs();
    const char *hfcfg = shared_path("models/stories260K-hf/config.json");
    if (hfcfg) {
        char hfdir[4096];
        snprintf(hfdir, sizeof hfdir, "%s", hfcfg);
        *strrchr(hfdir, '/') = 0;
        test_stories(hfdir);
    } else printf("stories260K round trips skipped: models/stories260K-hf not found (set ONEBIT_SHARED)\n");
    CHECK(test_rmtree(dir) == 0, "cleanup");
    return test_done("test_torch");
}
