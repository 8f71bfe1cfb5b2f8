/* test_common.c -- unit tests of common.c: FP16/BF16 conversion, checked
 * arithmetic, number parsing, little-endian float arrays, JSON string
 * escaping, the XDG base directory paths, dropping a file mapping's pages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "base/file.h"
#include "test.h"

/* file_xdg_path: the XDG base directory rules the run store and the
 * settings file share */
static void test_xdg(void)
{
    char err[OB_ERRLEN];
    setenv("XDG_STATE_HOME", "/x/state/", 1);
    setenv("HOME", "/home/u", 1);
    char *p = file_xdg_path("XDG_STATE_HOME", ".local/state", "app/f", err);
    CHECK(p && !strcmp(p, "/x/state/app/f"), "an absolute $XDG_STATE_HOME wins: %s", p ? p : err);
    free(p);
    setenv("XDG_STATE_HOME", "relative/ignored", 1); /* the spec: only absolute paths count */
    p = file_xdg_path("XDG_STATE_HOME", ".local/state", "app/f", err);
    CHECK(p && !strcmp(p, "/home/u/.local/state/app/f"), "else under $HOME: %s", p ? p : err);
    free(p);
    setenv("HOME", "home/relative", 1);
    CHECK(!file_xdg_path("XDG_STATE_HOME", ".local/state", "app/f", err) && strstr(err, "XDG_STATE_HOME"),
          "a relative HOME is no location: %s", err);
    unsetenv("XDG_STATE_HOME");
    unsetenv("HOME");
    CHECK(!file_xdg_path("XDG_STATE_HOME", ".local/state", "app/f", err) && strstr(err, "HOME"), "neither: %s", err);
}

/* resident pages of this process (/proc/self/statm's second field) */
static long resident_pages(void)
{
    long size = 0, res = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
    if (f) fclose(f);
    return res;
}

/* file_map_drop: a 32 MiB mapped file read through leaves the RSS when
 * dropped and reads back the same; memory that is no file mapping, and a
 * range past a mapping's end, are left alone */
static void test_map_drop(void)
{
    char dir[512], path[600], err[OB_ERRLEN];
    if (test_tmpdir(dir, sizeof dir, "common")) return;
    snprintf(path, sizeof path, "%s/m.bin", dir);
    size_t n = 32u << 20, pg = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *buf = ob_malloc(n);
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(i * 2654435761u >> 13);
    CHECK(file_write_atomic(path, buf, n, err) == 0, "write: %s", err);
    void *map;
    size_t size;
    CHECK(file_map(path, &map, &size, err) == 0 && size == n, "map: %s", err);
    if (!map) { free(buf); return; }
    const unsigned char *m = map;
    long r0 = resident_pages();
    unsigned sum = 0, want = 0;
    for (size_t i = 0; i < n; i += pg) sum += ((const volatile unsigned char *)m)[i];
    for (size_t i = 0; i < n; i += pg) want += buf[i];
    long r1 = resident_pages();
    CHECK(sum == want, "the mapping holds the file");
    CHECK(r1 - r0 >= (long)(n / pg) * 9 / 10, "reading the mapping makes it resident (%ld pages)", r1 - r0);
    CHECK(file_map_drop(m + 1, n) == 0, "a range past the mapping's end is refused");
    CHECK(file_map_drop(buf, n) == 0 && buf[12345] == (unsigned char)(12345u * 2654435761u >> 13),
          "malloc'd memory is no file mapping: left alone");
    CHECK(file_map_drop(m + 1, n - 2) == n, "widened to whole pages: %zu bytes", n);
    long r2 = resident_pages();
    CHECK(r1 - r2 >= (long)(n / pg) * 9 / 10, "dropped pages leave the RSS (%ld of %zu)", r1 - r2, n / pg);
    CHECK(!memcmp(m, buf, n), "and read back the file's bytes");
    file_unmap(map, size);
    CHECK(file_map_drop(m, pg) == 0, "an unmapped range is no mapping any more");
    free(buf);
    test_rmtree(dir);
}

int main(void)
{
    test_xdg();
    test_map_drop();
    /* fp16 round trip of every finite half value */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if (((h >> 10) & 0x1f) == 31) continue;
        float f = ob_fp16_to_fp32((uint16_t)h);
        if (ob_fp32_to_fp16(f) != h) bad++;
    }
    CHECK(bad == 0, "%d halves do not round-trip", bad);
    CHECK(ob_fp16_to_fp32(0x3c00) == 1.0f, "1.0");
    CHECK(ob_fp16_to_fp32(0xc000) == -2.0f, "-2.0");
    CHECK(ob_fp16_to_fp32(0x0001) == ldexpf(1.0f, -24), "smallest subnormal");
    CHECK(ob_fp32_to_fp16(65520.0f) == 0x7c00, "overflow to inf");
    CHECK(ob_fp32_to_fp16(1.0f + ldexpf(1.0f, -11)) == 0x3c00, "tie rounds to even");
    CHECK(ob_fp32_to_fp16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3c02, "tie rounds to even (up)");
    CHECK(isnan(ob_fp16_to_fp32(ob_fp32_to_fp16(NAN))), "nan stays nan");
    CHECK(ob_bf16_to_fp32(ob_fp32_to_bf16(1.5f)) == 1.5f, "bf16 1.5");
    CHECK(ob_fp32_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3f80, "bf16 tie to even");
    /* little-endian float arrays: the bytes of known values, whatever the
     * host's byte order, and a bit-identical way back (also in place) */
    {
        const float f[4] = {1.0f, -2.5f, 0x345678p-149f /* subnormal, bits 0x00345678 */, -0.0f};
        static const unsigned char want[16] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0,
                                               0x78, 0x56, 0x34, 0x00, 0x00, 0x00, 0x00, 0x80};
        unsigned char le[16];
        file_f32_to_le(le, f, 4);
        CHECK(!memcmp(le, want, 16), "1, -2.5, a subnormal, -0 as little-endian bytes");
        float back[4];
        file_f32_from_le(back, want, 4);
        CHECK(!memcmp(back, f, sizeof f), "little-endian bytes back to the same floats");
        /* every exponent, sign and a few mantissas, NaN payloads included */
        float g[1024], h[1024];
        for (uint32_t i = 0; i < 1024; i++) {
            uint32_t bits = (i << 22) ^ (i * 2654435761u >> 9);
            memcpy(&g[i], &bits, 4);
        }
        file_f32_to_le(h, g, 1024);
        int order = 1;
        for (uint32_t i = 0; i < 1024; i++) {
            uint32_t bits;
            memcpy(&bits, &g[i], 4);
            const unsigned char *b = (const unsigned char *)&h[i];
            order &= b[0] == (bits & 0xff) && b[1] == (bits >> 8 & 0xff) && b[2] == (bits >> 16 & 0xff) && b[3] == bits >> 24;
        }
        CHECK(order, "1024 bit patterns: least significant byte first");
        file_f32_from_le(h, h, 1024);
        CHECK(!memcmp(g, h, sizeof g), "in place, bit-identical round trip (NaN payloads too)");
        CHECK(FILE_HOST_LITTLE_ENDIAN == (le[3] == ((const unsigned char *)&f[0])[3]), "FILE_HOST_LITTLE_ENDIAN says the host's order");
    }
    size_t out;
    CHECK(ob_mul_size(SIZE_MAX / 2, 3, &out) == -1, "mul overflow");
    CHECK(ob_mul_size(1000, 1000, &out) == 0 && out == 1000000, "mul");
    CHECK(ob_add_size(SIZE_MAX, 1, &out) == -1, "add overflow");
    long v;
    char dur[32];
    ob_fmt_duration(dur, sizeof dur, 42.4);
    CHECK(!strcmp(dur, "42s"), "duration %s", dur);
    ob_fmt_duration(dur, sizeof dur, 187.0);
    CHECK(!strcmp(dur, "3m07s"), "duration %s", dur);
    ob_fmt_duration(dur, sizeof dur, 7530.0);
    CHECK(!strcmp(dur, "2h05m"), "duration %s", dur);
    CHECK(!strcmp(ob_fmt_bytes(dur, sizeof dur, 1.5 * 1073741824.0), "1.50 GiB"), "bytes %s", dur);
    CHECK(!strcmp(ob_fmt_bytes(dur, sizeof dur, 12.5 * 1048576.0), "12.5 MiB"), "bytes %s", dur);
    ob_fmt_duration(dur, sizeof dur, -1.0);
    CHECK(!strcmp(dur, "?"), "negative duration %s", dur);
    ob_fmt_duration(dur, sizeof dur, NAN);
    CHECK(!strcmp(dur, "?"), "NaN duration %s", dur);
    /* durations as --time takes them */
    double sec = 0;
    CHECK(ob_parse_duration("90", &sec) == 0 && sec == 90, "90 -> %g", sec);
    CHECK(ob_parse_duration("90s", &sec) == 0 && sec == 90, "90s -> %g", sec);
    CHECK(ob_parse_duration("2.5m", &sec) == 0 && sec == 150, "2.5m -> %g", sec);
    CHECK(ob_parse_duration("1h", &sec) == 0 && sec == 3600, "1h -> %g", sec);
    const char *bad_dur[] = {"", "m", "0", "-5s", "10x", "10 s", "1hh", "inf", "nan", "1e12"};
    for (size_t i = 0; i < sizeof bad_dur / sizeof *bad_dur; i++)
        CHECK(ob_parse_duration(bad_dur[i], &sec) == -1, "'%s' is not a duration", bad_dur[i]);
    CHECK(ob_parse_int("12", 0, 100, &v) == 0 && v == 12, "int");
    CHECK(ob_parse_int("12x", 0, 100, &v) == -1, "junk int");
    CHECK(ob_parse_int("101", 0, 100, &v) == -1, "range");
    double d;
    CHECK(ob_parse_float("0.9", &d) == 0 && d == 0.9, "float");
    CHECK(ob_parse_float("nan", &d) == -1, "nan rejected");
    static const char *dirs[][2] = {{"a/b/c.onebit", "a/b"}, {"c.onebit", "."}, {"/c", "/"}, {"/x/y", "/x"}, {"", "."}};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char *dd = ob_dir_of(dirs[i][0]);
        CHECK(!strcmp(dd, dirs[i][1]), "dir of '%s': '%s', wanted '%s'", dirs[i][0], dd, dirs[i][1]);
        free(dd);
    }
    /* ob_check_writable: a new file, a directory to be made, and missing parents */
    char tmpl[] = "/tmp/ob-common-XXXXXX", path[256], err[OB_ERRLEN];
    CHECK(mkdtemp(tmpl) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/s.onebit", tmpl);
    CHECK(ob_check_writable(path, 0, err) == 0, "file in a writable directory: %s", err);
    snprintf(path, sizeof path, "%s/cache", tmpl);
    CHECK(ob_check_writable(path, 1, err) == 0, "a directory to be made in a writable one: %s", err);
    CHECK(ob_check_writable(tmpl, 1, err) == 0, "an existing directory: %s", err);
    snprintf(path, sizeof path, "%s/no/such/s.onebit", tmpl);
    CHECK(ob_check_writable(path, 0, err) == -1 && strstr(err, "cannot write into directory") && strstr(err, "/no/such:"),
          "missing directory: %s", err);
    snprintf(path, sizeof path, "%s/no/cache", tmpl);
    CHECK(ob_check_writable(path, 1, err) == -1 && strstr(err, "/no:"), "missing parent of a directory: %s", err);
    rmdir(tmpl);
    /* JSON string insides: escapes, UTF-8 kept, other bytes as U+FFFD, cut
     * between characters and escapes */
    {
        ObBuf b = {0};
        ob_buf_json_string(&b, "a\"b\\c\n\x01 \xc3\xa9 \xe2\x96\x81 \xff \xc3 \xed\xa0\x80 \xf0\x9f\x98\x80");
        CHECK(b.s && !strcmp(b.s, "a\\\"b\\\\c\\u000a\\u0001 \xc3\xa9 \xe2\x96\x81 \\ufffd \\ufffd \\ufffd\\ufffd\\ufffd \xf0\x9f\x98\x80"),
              "escaped: %s", b.s ? b.s : "(null)");
        free(b.s);
        b = (ObBuf){0};
        ob_buf_json_string(&b, "");
        CHECK(b.s && !*b.s, "empty string");
        free(b.s);
        b = (ObBuf){0};
        ob_buf_json_string_n(&b, "ab\"cd", 3);
        CHECK(!strcmp(b.s, "ab"), "cut before an escape: %s", b.s);
        free(b.s);
        b = (ObBuf){0};
        ob_buf_json_string_n(&b, "a\xc3\xa9", 2);
        CHECK(!strcmp(b.s, "a"), "cut before a character: %s", b.s);
        free(b.s);
    }
    return test_done("test_common");
}
