/* test_student_mem.c -- a loaded student holds one copy of its signs
 * (issue #21, lean students): a synthetic student with 64 MB of signs is
 * written, then loaded while the process's resident memory is watched
 * (/proc/self/status VmRSS, and VmHWM reset through /proc/self/clear_refs
 * for the peak during the load). With a kernel that keeps its own layout
 * (kbits) the load adds about one copy of the signs, also at its peak; with
 * the reference kernel (canonical bits only) the signs stay in the file's
 * mapping, one copy once a token has run. The loaded student computes
 * bit-identical logits to the same student built in memory (owned signs)
 * with every kernel, and writing it again gives the same file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "onebit/bitlinear.h"
#include "onebit/student.h"
#include "test.h"

/* a sanitizer's shadow memory (ASan: 1/8 of what is touched, TSan: several
 * times) grows the resident set with the program's: the bounds would
 * measure it, not the student; the other checks still run */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RSS_BOUNDS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RSS_BOUNDS 0
#endif
#endif
#ifndef RSS_BOUNDS
#define RSS_BOUNDS 1
#endif

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t next(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

/* a field of /proc/self/status in bytes, -1 if missing */
static long long status_bytes(const char *field)
{
    char buf[8192];
    test_slurp("/proc/self/status", buf, sizeof buf);
    const char *p = strstr(buf, field);
    return p ? atoll(p + strlen(field) + 1) * 1024 : -1;
}

/* reset VmHWM to the current RSS; 0 when the kernel allows it */
static int reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* bytes of canonical signs of a config */
static size_t sign_bytes(const ModelConfig *c)
{
    size_t n = 0;
    for (int k = 0; k < LIN_PER_LAYER; k++) {
        int out, in;
        model_lin_shape(c, k, &out, &in);
        n += (size_t)out * ((in + 63) / 64) * 8;
    }
    return n * c->n_layers;
}

/* the logits of two tokens through model_step */
static float *step_logits(const Model *m)
{
    int V = m->cfg.vocab_size;
    float *lg = malloc((size_t)2 * V * sizeof *lg);
    ModelState s;
    model_state_init(&s, &m->cfg);
    for (int p = 0; p < 2; p++) memcpy(lg + (size_t)p * V, model_step(m, &s, 3 + 5 * p, p), (size_t)V * sizeof *lg);
    model_state_free(&s);
    return lg;
}

/* load path with the default kernel k, watching memory: the growth of RSS
 * at the load's peak and after it, and after two tokens */
static void load_watched(Model *m, const char *path, const char *k, size_t signs)
{
    char err[OB_ERRLEN];
    CHECK(bitlinear_set_kernel(k, err) == 0, "%s", err);
    const int peak_ok = reset_peak() == 0;
    long long rss0 = status_bytes("VmRSS:");
    CHECK(student_load(m, NULL, path, err) == 0, "load: %s", err);
    long long peak = status_bytes("VmHWM:") - rss0, after = status_bytes("VmRSS:") - rss0;
    free(step_logits(m));
    long long used = status_bytes("VmRSS:") - rss0;
    const double one = (double)signs * 1.2 + (8 << 20); /* one copy, with room for the arena and the heap */
    printf("%s: signs %.1f MB; RSS growth: peak during the load %.1f MB, after %.1f MB, after 2 tokens %.1f MB\n", k,
           signs / 1e6, peak_ok ? peak / 1e6 : -1.0, after / 1e6, used / 1e6);
    if (RSS_BOUNDS) {
        if (peak_ok) CHECK(peak <= one, "%s: peak during the load %lld bytes, one copy of the signs is %zu", k, peak, signs);
        CHECK(after <= one, "%s: after the load %lld bytes, one copy of the signs is %zu", k, after, signs);
        CHECK(used <= one, "%s: after two tokens %lld bytes, one copy of the signs is %zu", k, used, signs);
    }
    const BitLinear *bl = student_linear(m, 0);
    CHECK(bl && bl->bits_mapped && (bl->kbits != NULL) == bl->ex.kernel->needs_kbits, "%s: signs in the mapping, kbits only when the kernel reads them", k);
}

int main(void)
{
    char dir[4096], path[4200], again[4200], err[OB_ERRLEN];
    if (access("/proc/self/status", R_OK)) { printf("test_student_mem: no /proc/self/status, skipped\n"); return 77; }
    if (test_tmpdir(dir, sizeof dir, "onebit-mem")) return 1;
    snprintf(path, sizeof path, "%s/s.onebit", dir);
    snprintf(again, sizeof again, "%s/again.onebit", dir);
    /* 10 layers of 2048 x 2048 and 2048 x 5632: 64 MB of signs */
    ModelConfig c = {.dim = 2048, .hidden_dim = 5632, .n_layers = 10, .n_heads = 16, .n_kv_heads = 16, .head_dim = 128,
                     .vocab_size = 512, .seq_len = 16, .rope_theta = 10000, .norm_eps = 1e-5f, .shared_classifier = 0};
    const size_t signs = sign_bytes(&c);
    const int nlin = c.n_layers * LIN_PER_LAYER;
    {
        Model t;
        CHECK(model_alloc(&t, &c, 0, err) == 0, "%s", err);
        for (size_t i = 0; i < t.arena_floats; i++) t.arena[i] = (float)((int)(next() % 2001) - 1000) * 1e-4f;
        for (int i = 0; i < c.n_layers * c.dim; i++) t.rms_att[i] = t.rms_ffn[i] = 1;
        for (int i = 0; i < c.dim; i++) t.rms_final[i] = 1;
        StudentLinearSrc *src = calloc(nlin, sizeof *src);
        for (int i = 0; i < nlin; i++) {
            int out, in;
            model_lin_shape(&c, i % LIN_PER_LAYER, &out, &in);
            size_t nw = (size_t)out * ((in + 63) / 64);
            src[i].own_bits = malloc(nw * 8);
            for (size_t w = 0; w < nw; w++) src[i].own_bits[w] = next();
            src[i].bits = src[i].own_bits;
            float *g = malloc((size_t)in * 4), *h = malloc((size_t)out * 4);
            for (int j = 0; j < in; j++) g[j] = 0.5f + (float)(next() % 1000) * 1e-3f;
            for (int j = 0; j < out; j++) h[j] = 0.01f + (float)(next() % 1000) * 1e-5f;
            src[i].g = g;
            src[i].h = h;
            src[i].norm = i % 2;
        }
        CHECK(student_write_ex(path, &t, NULL, src, NULL, STUDENT_HEAD_F16, err) == 0, "write: %s", err);
        student_src_free(src, nlin);
        free(src);
        model_free(&t);
    }
    /* with the default kernel (kbits when it has them) and with the
     * reference (the mapping's pages only) */
    Model m;
    load_watched(&m, path, kern_default()->name, signs);
    model_free(&m);
    load_watched(&m, path, "ref", signs);
    /* the same student with its signs in memory (owned): the same logits
     * with every kernel, switched on both */
    Model o;
    CHECK(student_new_lean(&o, &c, m.emb_type, m.cls_type, err) == 0, "%s", err);
    o.emb_w = m.emb_w;
    o.cls_w = m.cls_w;
    memcpy(o.rms_att, m.rms_att, (size_t)c.n_layers * c.dim * 4);
    memcpy(o.rms_ffn, m.rms_ffn, (size_t)c.n_layers * c.dim * 4);
    memcpy(o.rms_final, m.rms_final, (size_t)c.dim * 4);
    for (int i = 0; i < nlin; i++) {
        BitLinear *a = student_linear(&m, i), *b = student_linear(&o, i);
        bitlinear_set_bits(b, a->bits);
        bitlinear_set_scales(b, a->g, a->h);
        b->norm = a->norm;
    }
    for (const BitKernel *const *k = kern_all(); *k; k++) {
        if (!kern_available(*k)) continue;
        KernExec ex;
        kern_exec_init(&ex, *k, KERN_ACT_FP32, NULL);
        CHECK(student_set_exec(&m, &ex, err) == 0 && student_set_exec(&o, &ex, err) == 0, "%s: %s", (*k)->name, err);
        kern_exec_fini(&ex);
        float *a = step_logits(&m), *b = step_logits(&o);
        CHECK(!memcmp(a, b, (size_t)2 * c.vocab_size * 4), "%s: mapped and owned signs give the same logits", (*k)->name);
        free(a);
        free(b);
        CHECK((student_linear(&m, 0)->kbits != NULL) == (*k)->needs_kbits, "%s: kbits only when the kernel reads them", (*k)->name);
    }
    model_free(&o);
    /* written again from the mapping: the same bytes */
    StudentLinearSrc *lin = calloc(nlin, sizeof *lin);
    CHECK(student_sources(&m, lin, err) == 0, "%s", err);
    CHECK(student_write_ex(again, &m, NULL, lin, NULL, STUDENT_HEAD_F16, err) == 0, "write again: %s", err);
    free(lin);
    FILE *f1 = fopen(path, "rb"), *f2 = fopen(again, "rb");
    int same = f1 && f2;
    while (same) {
        static char b1[1 << 16], b2[1 << 16];
        size_t n1 = fread(b1, 1, sizeof b1, f1), n2 = fread(b2, 1, sizeof b2, f2);
        same = n1 == n2 && !memcmp(b1, b2, n1);
        if (!n1) break;
    }
    CHECK(same, "a loaded student written again is byte-identical");
    if (f1) fclose(f1);
    if (f2) fclose(f2);
    /* writing its signs makes a layer own them */
    BitLinear *b0 = student_linear(&m, 0);
    uint64_t *w = malloc((size_t)b0->out * b0->words_per_row * 8);
    bitlinear_get_bits(b0, w);
    w[0] ^= 1;
    bitlinear_set_bits(b0, w);
    CHECK(!b0->bits_mapped && b0->bits[0] == w[0], "set_bits on a loaded layer: its own copy");
    free(w);
    model_free(&m);
    unlink(path);
    unlink(again);
    test_rmtree(dir);
    return test_done("test_student_mem");
}
