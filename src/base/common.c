/* common.c -- small shared helpers for libonebit (see common.h). */
#include "base/common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void ob_verror(const char *fmt, va_list ap)
{
    fprintf(stderr, "error: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void ob_buf_printf(ObBuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) abort();
        if (b->s && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s) abort();
    }
}

void ob_buf_put(ObBuf *b, const void *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s) abort();
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}

/* the length of the UTF-8 sequence at s (1..4), 0 when it is not one */
static int utf8_len(const unsigned char *s)
{
    int n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 2 && s[0] < 0xc2) return 0; /* overlong */
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0; /* overlong, surrogate */
    if (n == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || s[0] > 0xf4 || (s[0] == 0xf4 && s[1] >= 0x90))) return 0;
    return n;
}

void ob_buf_json_string_n(ObBuf *b, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = b->n;
    char esc[8];
    while (*p) {
        int n = utf8_len(p), used = 1;
        const char *piece = esc;
        size_t len;
        if (*p == '"' || *p == '\\') len = (size_t)snprintf(esc, sizeof esc, "\\%c", *p);
        else if (*p < 0x20) len = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
        else if (n) { piece = (const char *)p; len = (size_t)n; used = n; }
        else len = (size_t)snprintf(esc, sizeof esc, "\\ufffd");
        if (b->n - start + len > max) break;
        ob_buf_put(b, piece, len);
        p += used;
    }
    if (!b->s) ob_buf_put(b, "", 0);
}

void ob_buf_json_string(ObBuf *b, const char *s) { ob_buf_json_string_n(b, s, (size_t)-1); }

void *ob_grow(void *arr, size_t n, int *cap, int first, size_t elem)
{
    if (n < (size_t)*cap) return arr;
    *cap = *cap ? *cap * 2 : first;
    void *p = ob_malloc(elem * (size_t)*cap);
    if (arr) memcpy(p, arr, elem * n);
    free(arr);
    return p;
}

void ob_seterr(char *err, const char *fmt, ...)
{
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, OB_ERRLEN, fmt, ap);
    va_end(ap);
}

static void oom(size_t n)
{
    fprintf(stderr, "error: out of memory (allocating %zu bytes)\n", n);
    exit(1);
}

void *ob_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *ob_calloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) oom(n * sz);
    return p;
}

void *ob_aligned_alloc(size_t align, size_t n)
{
    void *p = NULL;
    size_t sz = (n + align - 1) / align * align;
    if (sz == 0) sz = align;
    if (posix_memalign(&p, align, sz) != 0) oom(n);
    memset(p, 0, sz);
    return p;
}

void *ob_huge_alloc(size_t n)
{
    const size_t huge = (size_t)2 << 20;
    if (n < huge) return ob_aligned_alloc(64, n);
    void *p = NULL;
    if (posix_memalign(&p, huge, n) != 0) oom(n);
#ifdef MADV_HUGEPAGE
    /* a hint: without THP the memory is still good. Only the whole huge
     * pages: a huge page for the tail would make up to 2 MiB past n
     * resident (60 MiB over a 7B student's 224 matrices) */
    madvise(p, n / huge * huge, MADV_HUGEPAGE);
#endif
    memset(p, 0, n);
    return p;
}

char *ob_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = ob_malloc(n);
    memcpy(p, s, n);
    return p;
}

char *ob_dir_of(const char *path)
{
    char *d = ob_strdup(path);
    char *slash = strrchr(d, '/');
    if (!slash) { free(d); return ob_strdup("."); }
    if (slash == d) slash[1] = 0;
    else *slash = 0;
    return d;
}

int ob_check_writable(const char *path, int is_dir, char *err)
{
    char *d = is_dir ? ob_strdup(path) : ob_dir_of(path);
    struct stat st;
    if (is_dir && stat(d, &st) != 0 && errno == ENOENT) { /* made later: its parent must take it */
        char *p = ob_dir_of(d);
        free(d);
        d = p;
    }
    int rc = 0;
    if (access(d, W_OK | X_OK) != 0) {
        ob_seterr(err, "%s: cannot write into directory %s: %s", path, d, strerror(errno));
        rc = -1;
    }
    free(d);
    return rc;
}

int ob_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

int ob_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a) return -1;
    *out = a + b;
    return 0;
}

int ob_read_file(const char *path, char **data, size_t *len, char *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) { ob_seterr(err, "%s: %s", path, strerror(errno)); return -1; }
    size_t cap = 1 << 16, n = 0;
    char *buf = ob_malloc(cap + 1);
    for (;;) {
        if (n == cap) { cap *= 2; buf = realloc(buf, cap + 1); if (!buf) oom(cap); }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        ob_seterr(err, "%s: read error: %s", path, strerror(errno));
        fclose(f); free(buf); return -1;
    }
    fclose(f);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

double ob_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void ob_fmt_duration(char *b, size_t n, double s)
{
    if (!isfinite(s) || s < 0) { snprintf(b, n, "?"); return; }
    long x = (long)(s + 0.5);
    if (x >= 3600) snprintf(b, n, "%ldh%02ldm", x / 3600, x / 60 % 60);
    else if (x >= 60) snprintf(b, n, "%ldm%02lds", x / 60, x % 60);
    else snprintf(b, n, "%lds", x);
}

const char *ob_fmt_bytes(char *b, size_t n, double bytes)
{
    if (bytes >= 1073741824.0) snprintf(b, n, "%.2f GiB", bytes / 1073741824.0);
    else snprintf(b, n, "%.1f MiB", bytes / 1048576.0);
    return b;
}

int ob_parse_duration(const char *s, double *seconds)
{
    char *end;
    double v = strtod(s, &end), unit = 1;
    if (end == s || !isfinite(v)) return -1;
    if (*end == 'h') unit = 3600, end++;
    else if (*end == 'm') unit = 60, end++;
    else if (*end == 's') end++;
    if (*end || !(v > 0) || v * unit > 1e9) return -1;
    *seconds = v * unit;
    return 0;
}

void ob_sleep(double seconds)
{
    if (!(seconds > 0)) return;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/* the IEEE-754 bits of a float and back */
static float f32_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint32_t f32_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

float ob_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            man &= 0x3ff;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (man << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    return f32_from_bits(bits);
}

uint16_t ob_fp32_to_fp16(float f)
{
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffff;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* overflow -> inf */
    if (absx < 0x38800000u) { /* subnormal or zero in half */
        if (absx < 0x33000000u) return (uint16_t)sign;
        uint32_t man = (absx & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(absx >> 23);      /* 14..24 */
        uint32_t r = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = (absx >> 13) - ((127 - 15) << 10);
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}


int ob_parse_int(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int ob_parse_float(const char *s, double *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}
