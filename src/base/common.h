/* common.h -- small shared helpers for libonebit: error strings, allocation,
 * whole-file reads, timing, checked size arithmetic, FP16/BF16 conversion. */
#ifndef OB_COMMON_H
#define OB_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define OB_ERRLEN 512

/* Every fallible libonebit call takes `char *err` (OB_ERRLEN bytes) and
 * returns 0 on success, -1 on failure with a message in err. */
void ob_seterr(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "error: <message>\n" on stderr, for the command-line front ends */
void ob_verror(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* a growing string: ob_buf_printf appends (aborts on OOM); s is malloc'd,
 * NULL until the first append */
typedef struct {
    char *s;
    size_t n, cap;
} ObBuf;
void ob_buf_printf(ObBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* append n bytes (any bytes, NULs too; a NUL is kept after them) */
void ob_buf_put(ObBuf *b, const void *p, size_t n);
/* append s as the inside of a JSON string literal: quotes and backslashes
 * escaped, control characters as \uXXXX, bytes that are not UTF-8 as
 * \ufffd (what a decoder's errors="replace" gives) */
void ob_buf_json_string(ObBuf *b, const char *s);
/* the same, cut short (between characters and escapes) at max bytes */
void ob_buf_json_string_n(ObBuf *b, const char *s, size_t max);

/* room for one more elem-byte item in a growing array of n items: when n
 * == *cap, *cap doubles (first: first) and the items move to a new block;
 * returns the (possibly new) array */
void *ob_grow(void *arr, size_t n, int *cap, int first, size_t elem);

void *ob_malloc(size_t n);           /* aborts with a message on OOM */
void *ob_calloc(size_t n, size_t sz);
void *ob_aligned_alloc(size_t align, size_t n); /* zeroed; free() it */
/* zeroed, 64-byte aligned; from 2 MiB up, 2 MiB aligned and its whole
 * 2 MiB pages marked for transparent huge pages (streamed weights: far
 * fewer TLB misses; the tail stays in small pages, nothing past n resident) */
void *ob_huge_alloc(size_t n);
char *ob_strdup(const char *s);
/* the directory part of a path (malloc'd): "." without a slash, "/" for "/x" */
char *ob_dir_of(const char *path);
/* 0 when files can be created where `path` goes: in its directory, or for a
 * directory (is_dir) in itself, or, when it does not exist yet, in its
 * parent (where it would be made); else -1 with err naming path and why.
 * For failing fast, before hours of work whose result could not be saved. */
int ob_check_writable(const char *path, int is_dir, char *err);

/* checked arithmetic: return 0 and set *out, or -1 on overflow */
int ob_mul_size(size_t a, size_t b, size_t *out);
int ob_add_size(size_t a, size_t b, size_t *out);

/* read a whole file; NUL-terminated (the NUL is not counted in *len) */
int ob_read_file(const char *path, char **data, size_t *len, char *err);

double ob_now(void);                 /* monotonic seconds */
void ob_sleep(double seconds);        /* nanosleep, resumed after signals */
/* a duration for people: "42s", "3m07s", "2h05m"; "?" if negative or not finite */
void ob_fmt_duration(char *buf, size_t n, double seconds);
/* bytes for people: "1.25 GiB" from 1 GiB up, else "12.5 MiB"; returns buf */
const char *ob_fmt_bytes(char *buf, size_t n, double bytes);
/* a duration as people write it: "90", "90s", "2.5m", "10m", "1h" (a plain
 * number is seconds) -> 0 with *seconds > 0; -1 for anything else */
int ob_parse_duration(const char *s, double *seconds);


float ob_fp16_to_fp32(uint16_t h);
uint16_t ob_fp32_to_fp16(float f);   /* round to nearest even */
/* BF16 <-> FP32 inline: the AdamW loop (train/qat.c) converts every
 * moment of every step. To BF16: round to nearest even, NaN stays NaN. */
static inline float ob_bf16_to_fp32(uint16_t h)
{
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}
static inline uint16_t ob_fp32_to_bf16(float f)
{
    union { float f; uint32_t u; } v = {f};
    uint32_t x = v.u;
    if ((x & 0x7fffffff) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* parse a positive/nonnegative integer or float option; -1 on junk */
int ob_parse_int(const char *s, long lo, long hi, long *out);
int ob_parse_float(const char *s, double *out);

#endif
