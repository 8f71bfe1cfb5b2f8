/* file.c -- file utilities: atomic writes, read-only mappings, SHA-256,
 * FNV-1a, path join (see file.h). Any thread (the table of live mappings
 * has a mutex). */
#include "base/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"

/* ---- atomic writes ------------------------------------------------------- */

int file_atomic_open(FileAtomic *a, const char *path, char *err)
{
    memset(a, 0, sizeof *a);
    a->fd = -1;
    size_t pl = strlen(path) + 16;
    a->tmp = ob_malloc(pl);
    snprintf(a->tmp, pl, "%s.tmp.XXXXXX", path);
    a->fd = mkstemp(a->tmp);
    if (a->fd < 0) {
        ob_seterr(err, "%s: cannot create a temporary file: %s", a->tmp, strerror(errno));
        free(a->tmp);
        a->tmp = NULL;
        return -1;
    }
    (void)fcntl(a->fd, F_SETFD, FD_CLOEXEC);
    mode_t um = umask(0); /* mkstemp makes 0600; give the usual 0666 & ~umask */
    umask(um);
    (void)fchmod(a->fd, 0666 & ~um); /* failure is harmless: the file stays private */
    a->path = path;
    return 0;
}

int file_atomic_write(FileAtomic *a, const void *buf, size_t n, char *err)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(a->fd, p, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            ob_seterr(err, "%s: write failed: %s", a->path, w < 0 ? strerror(errno) : "no space");
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void file_atomic_abort(FileAtomic *a)
{
    if (a->fd >= 0) close(a->fd);
    if (a->tmp) { unlink(a->tmp); free(a->tmp); }
    a->fd = -1;
    a->tmp = NULL;
}

int file_atomic_commit(FileAtomic *a, char *err)
{
    if (fsync(a->fd) != 0) {
        ob_seterr(err, "%s: fsync failed: %s", a->path, strerror(errno));
        file_atomic_abort(a);
        return -1;
    }
    int rc = close(a->fd);
    a->fd = -1;
    if (rc != 0 || rename(a->tmp, a->path) != 0) {
        ob_seterr(err, "%s: cannot rename into place: %s", a->path, strerror(errno));
        file_atomic_abort(a);
        return -1;
    }
    free(a->tmp);
    a->tmp = NULL;
    /* make the rename durable */
    char *dir = ob_dir_of(a->path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    free(dir);
    return 0;
}

int file_write_atomic_parts(const char *path, const void *const *bufs, const size_t *lens, int nparts, char *err)
{
    FileAtomic a;
    if (file_atomic_open(&a, path, err)) return -1;
    for (int k = 0; k < nparts; k++) {
        if (file_atomic_write(&a, bufs[k], lens[k], err)) {
            file_atomic_abort(&a);
            return -1;
        }
    }
    return file_atomic_commit(&a, err);
}

int file_write_atomic(const char *path, const void *buf, size_t n, char *err)
{
    return file_write_atomic_parts(path, &buf, &n, 1, err);
}

/* ---- read-only mappings ------------------------------------------------- */

/* the live mappings, for file_map_drop (a fixed table: a process maps a few
 * files at once; past its size a mapping is simply not droppable) */
#define MAPS_MAX 256
static struct { const char *p; size_t n; } maps[MAPS_MAX];
static pthread_mutex_t maps_mu = PTHREAD_MUTEX_INITIALIZER;

static void maps_set(const void *p, size_t n, const void *from)
{
    pthread_mutex_lock(&maps_mu);
    for (int i = 0; i < MAPS_MAX; i++)
        if (maps[i].p == from) {
            maps[i].p = p;
            maps[i].n = n;
            break;
        }
    pthread_mutex_unlock(&maps_mu);
}

size_t file_map_drop(const void *p, size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), done = 0;
    const char *a = p;
    pthread_mutex_lock(&maps_mu);
    for (int i = 0; i < MAPS_MAX && n; i++) {
        if (!maps[i].p || a < maps[i].p || a + n > maps[i].p + maps[i].n) continue;
        /* widened to whole pages (a neighbour's part of one is dropped too:
         * it reads back from the file), within the mapping */
        uintptr_t lo = (uintptr_t)a / pg * pg, hi = ((uintptr_t)a + n + pg - 1) / pg * pg;
        uintptr_t mhi = ((uintptr_t)maps[i].p + maps[i].n + pg - 1) / pg * pg;
        if (hi > mhi) hi = mhi;
        if (hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0) done = hi - lo;
        break;
    }
    pthread_mutex_unlock(&maps_mu);
    return done;
}

int file_map(const char *path, void **data, size_t *size, char *err)
{
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { ob_seterr(err, "%s: %s", path, strerror(errno)); return -1; }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ob_seterr(err, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size == 0) { close(fd); return 0; }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) { ob_seterr(err, "%s: mmap: %s", path, strerror(errno)); return -1; }
    *data = map;
    *size = (size_t)st.st_size;
    maps_set(map, *size, NULL);
    return 0;
}

void file_unmap(void *data, size_t size)
{
    if (!data) return;
    maps_set(NULL, 0, data);
    munmap(data, size);
}

/* bytes hashed between drops */
#define MAP_FNV_CHUNK ((size_t)16 << 20)

uint64_t file_map_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t o = 0; o < n; o += MAP_FNV_CHUNK) {
        size_t k = n - o < MAP_FNV_CHUNK ? n - o : MAP_FNV_CHUNK;
        h = file_fnv1a(h, s + o, k);
        file_map_drop(s + o, k);
    }
    return h;
}

/* ---- SHA-256 (FIPS 180-4) ------------------------------------------------ */

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(FileSha256 *s, const unsigned char *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, h;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3];
    e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
    s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

void file_sha256_init(FileSha256 *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->len = 0;
    s->n = 0;
}

void file_sha256_update(FileSha256 *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    s->len += n;
    while (n > 0) {
        size_t k = 64 - s->n < n ? 64 - s->n : n;
        memcpy(s->buf + s->n, p, k);
        s->n += k; p += k; n -= k;
        if (s->n == 64) { sha_block(s, s->buf); s->n = 0; }
    }
}

void file_sha256_final(FileSha256 *s, char hex[65])
{
    uint64_t bits = s->len * 8;
    unsigned char pad = 0x80, zero = 0, lenb[8];
    file_sha256_update(s, &pad, 1);
    while (s->n != 56) file_sha256_update(s, &zero, 1);
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
    file_sha256_update(s, lenb, 8);
    for (int i = 0; i < 8; i++) snprintf(hex + 8 * i, 9, "%08x", s->h[i]);
}

int file_sha256_add_file(FileSha256 *s, const char *path, char *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) { ob_seterr(err, "%s: %s", path, strerror(errno)); return -1; }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        ob_seterr(err, "%s: %s", path, strerror(errno));
        fclose(f);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        ob_seterr(err, "%s: %s", path, S_ISDIR(st.st_mode) ? "is a directory, not a file" : "not a regular file");
        fclose(f);
        return -1;
    }
    unsigned char *buf = ob_malloc(1 << 20);
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0) file_sha256_update(s, buf, n);
    int bad = ferror(f);
    fclose(f);
    free(buf);
    if (bad) { ob_seterr(err, "%s: read error", path); return -1; }
    return 0;
}

int file_sha256(const char *path, char hex[65], char *err)
{
    FileSha256 s;
    file_sha256_init(&s);
    if (file_sha256_add_file(&s, path, err)) return -1;
    file_sha256_final(&s, hex);
    return 0;
}

/* ---- FNV-1a -------------------------------------------------------------- */

uint64_t file_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ---- little-endian arrays ------------------------------------------------ */

void file_f32_to_le(void *dst, const float *src, size_t n)
{
    unsigned char *d = dst;
    for (size_t i = 0; i < n; i++) file_put_f32le(d + 4 * i, src[i]);
}

void file_f32_from_le(float *dst, const void *src, size_t n)
{
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++) dst[i] = file_get_f32le(s + 4 * i);
}

/* ---- paths --------------------------------------------------------------- */

char *file_join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), n = dl + strlen(name) + 2;
    char *p = ob_malloc(n);
    snprintf(p, n, "%s%s%s", dir, (dl && dir[dl - 1] == '/') ? "" : "/", name);
    return p;
}

char *file_abs(const char *p)
{
    if (!p) return NULL;
    char cwd[4096];
    if (p[0] == '/' || !getcwd(cwd, sizeof cwd)) return ob_strdup(p);
    return file_join(cwd, p);
}

char *file_xdg_path(const char *var, const char *home_dir, const char *rel, char *err)
{
    const char *x = getenv(var), *home = getenv("HOME");
    if (x && x[0] == '/') return file_join(x, rel);
    if (!home || home[0] != '/') {
        ob_seterr(err, "neither %s nor HOME is set to an absolute path", var);
        return NULL;
    }
    char *d = file_join(home, home_dir), *p = file_join(d, rel);
    free(d);
    return p;
}

/* ---- directories written whole -------------------------------------------- */

char *file_dir_begin(const char *out, char *err)
{
    struct stat st;
    if (!*out) { ob_seterr(err, "empty output path"); return NULL; }
    if (stat(out, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) { ob_seterr(err, "%s: exists and is not a directory", out); return NULL; }
        DIR *d = opendir(out);
        if (!d) { ob_seterr(err, "%s: %s", out, strerror(errno)); return NULL; }
        struct dirent *e;
        int empty = 1;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
        closedir(d);
        if (!empty) { ob_seterr(err, "%s: exists and is not empty", out); return NULL; }
    } else if (errno != ENOENT) {
        ob_seterr(err, "%s: %s", out, strerror(errno));
        return NULL;
    }
    char *p = ob_strdup(out); /* "dir/" names dir */
    for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--) p[n - 1] = 0;
    char *dir = ob_dir_of(p);
    const char *base = strrchr(p, '/') ? strrchr(p, '/') + 1 : p;
    size_t tl = strlen(dir) + strlen(base) + 32;
    char *tmp = ob_malloc(tl);
    snprintf(tmp, tl, "%s/.%s.tmp-XXXXXX", dir, base);
    free(dir);
    free(p);
    if (!mkdtemp(tmp)) {
        ob_seterr(err, "%s: cannot create a temporary directory: %s", tmp, strerror(errno));
        free(tmp);
        return NULL;
    }
    mode_t um = umask(0); /* mkdtemp makes it 0700: give it a directory's usual mode */
    umask(um);
    chmod(tmp, 0777 & ~um);
    return tmp;
}

void file_dir_abort(char *tmp)
{
    if (!tmp) return;
    DIR *d = opendir(tmp);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = file_join(tmp, e->d_name);
            unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(tmp);
    free(tmp);
}

int file_dir_commit(char *tmp, const char *out, char *err)
{
    if (rename(tmp, out)) {
        ob_seterr(err, "%s: rename: %s", out, strerror(errno));
        file_dir_abort(tmp);
        return -1;
    }
    free(tmp);
    char *pd = ob_dir_of(out);
    int dfd = open(pd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    free(pd);
    return 0;
}
