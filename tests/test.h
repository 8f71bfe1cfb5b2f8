/* test.h -- the unit-test harness: CHECK macros that count, a summary line,
 * automake's exit codes (0 pass, 1 fail, 77 skip), temporary directories. */
#ifndef OB_TEST_H
#define OB_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_pass, t_fail;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) t_pass++;                                                     \
        else {                                                                  \
            t_fail++;                                                           \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

#define CHECK_NEAR(a, b, tol, what)                                             \
    CHECK(fabs((double)(a) - (double)(b)) <= (tol), "%s: %.9g vs %.9g (tol %g)", what, (double)(a), (double)(b), (double)(tol))

static inline int test_done(const char *name)
{
    printf("%s: %d checks passed, %d failed\n", name, t_pass, t_fail);
    return t_fail ? 1 : (t_pass ? 0 : 1); /* a test that checked nothing fails */
}

/* path (n bytes) = a new directory $TMPDIR/<name>.XXXXXX (/tmp when TMPDIR
 * is unset); -1 with a message when it cannot be made */
static inline int test_tmpdir(char *path, size_t n, const char *name)
{
    snprintf(path, n, "%s/%s.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name);
    if (!mkdtemp(path)) { perror("mkdtemp"); return -1; }
    return 0;
}

/* the start of file path (at most n-1 bytes) in buf, NUL-terminated; ""
 * when it cannot be read */
static inline void test_slurp(const char *path, char *buf, size_t n)
{
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = 0;
    fclose(f);
}

/* rm -rf path; -1 with a warning when that fails */
static inline int test_rmtree(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) == 0) return 0;
    fprintf(stderr, "warning: could not remove %s\n", path);
    return -1;
}

/* path under $ONEBIT_SHARED, or NULL when the shared tree is absent */
static inline const char *shared_path(const char *rel)
{
    static char buf[8][4096];
    static int k;
    const char *s = getenv("ONEBIT_SHARED");
    if (!s || !*s) return NULL;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", s, rel);
    FILE *f = fopen(b, "rb");
    if (!f) return NULL;
    fclose(f);
    return b;
}

#define REQUIRE_SHARED(var, rel)                                                \
    const char *var = shared_path(rel);                                         \
    if (!var) {                                                                 \
        printf("SKIP: %s not found (set ONEBIT_SHARED)\n", rel);                \
        return 77;                                                              \
    }

/* base/name in one of eight rotating buffers (a test's scratch files) */
static inline const char *test_sub(const char *base, const char *name)
{
    static char p[8][700];
    static int k;
    char *b = p[k++ % 8];
    snprintf(b, sizeof p[0], "%s/%s", base, name);
    return b;
}

/* s as a JSON string literal (for tests that write JSON files) */
static inline void test_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* p with its spaces as U+2581, as SentencePiece writes pieces */
static inline void test_sp_piece(char *sp, size_t cap, const char *p)
{
    size_t k = 0;
    for (; *p && k < cap - 4; p++) {
        if (*p == ' ') { memcpy(sp + k, "\xe2\x96\x81", 3); k += 3; }
        else sp[k++] = *p;
    }
    sp[k] = 0;
}

/* a tokenizer.json "vocab" object's members: "piece":id for ids 0..n-1, with
 * ids 1 and 2 as <s> and </s> */
static inline void test_json_sp_vocab(FILE *f, char *const *vocab, int n)
{
    char sp[256];
    for (int i = 0; i < n; i++) {
        test_sp_piece(sp, sizeof sp, i == 1 ? "<s>" : i == 2 ? "</s>" : vocab[i]);
        if (i) fputc(',', f);
        test_json_str(f, sp);
        fprintf(f, ":%d", i);
    }
}

/* folder/name in one of 8 rotating buffers (a call may hold up to 8 at once) */
static inline char *test_path_in(const char *folder, const char *name)
{
    static char p[8][700];
    static int k;
    char *b = p[k++ % 8];
    snprintf(b, 700, "%s/%s", folder, name);
    return b;
}

/* the first max bytes of src (all of it when shorter) into a new file dst;
 * 0, or -1 with a message on stderr */
static inline int test_copy_head(const char *src, const char *dst, size_t max)
{
    FILE *in = fopen(src, "rb");
    if (!in) { perror(src); return -1; }
    char *b = malloc(max ? max : 1);
    size_t n = fread(b, 1, max, in);
    fclose(in);
    FILE *out = fopen(dst, "wb");
    if (!out) { perror(dst); free(b); return -1; }
    fwrite(b, 1, n, out);
    fclose(out);
    free(b);
    return 0;
}

/* GPT-2's byte -> unicode stand-in for byte b, UTF-8 encoded into out (3
 * bytes), as a tokenizer.json spells bytes */
static inline void test_b2u(int b, char *out)
{
    int k = 0, cp = -1;
    for (int x = 0; x < 256; x++) {
        int keep = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
        int c = keep ? x : 256 + k++;
        if (x == b) cp = c;
    }
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xc0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3f)); out[2] = 0; }
}

#endif
