/* file.h -- file utilities shared by every layer: atomic writes (a temp
 * file, fsync, rename over the target, fsync of the directory), read-only
 * mappings (and dropping their resident pages), SHA-256
 * (FIPS 180-4) of bytes and files, 64-bit FNV-1a, little-endian get/put of
 * fixed-width integers, joining a directory and a name, and directories
 * written whole (a temporary directory renamed into place). */
#ifndef OB_FILE_H
#define OB_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- atomic writes ------------------------------------------------------- */
/* A file written in steps to PATH.tmp.XXXXXX (mkstemp, mode 0666 & ~umask),
 * then fsync'd, renamed over PATH and the directory fsync'd: readers see the
 * old file or the whole new one, never a part. */
typedef struct {
    int fd;           /* write here (write, pwrite) between open and commit */
    char *tmp;
    const char *path; /* borrowed until commit/abort */
} FileAtomic;

int file_atomic_open(FileAtomic *a, const char *path, char *err);
/* every byte of buf at the current offset (short writes, EINTR) */
int file_atomic_write(FileAtomic *a, const void *buf, size_t n, char *err);
/* fsync, rename over path, fsync the directory; on failure the temporary
 * file is removed */
int file_atomic_commit(FileAtomic *a, char *err);
/* close and remove the temporary file */
void file_atomic_abort(FileAtomic *a);

/* write buf to path atomically (the steps above) */
int file_write_atomic(const char *path, const void *buf, size_t n, char *err);
/* the same for nparts buffers written back to back */
int file_write_atomic_parts(const char *path, const void *const *bufs, const size_t *lens, int nparts, char *err);

/* ---- read-only mappings ------------------------------------------------- */
/* map a whole regular file read-only (MAP_PRIVATE); an empty file maps
 * nothing (*data NULL, *size 0). Errors are "path: why". */
int file_map(const char *path, void **data, size_t *size, char *err);
void file_unmap(void *data, size_t size);
/* release the pages of [p, p + n) from the process (its RSS) when the range
 * lies inside a live file_map mapping, widened to whole pages (the
 * neighbours' share of the end pages goes too): they stay in the page cache
 * and are read back from it if touched again. Anything else (memory that is
 * not such a mapping, or a range past one's end) is left alone, so it is
 * safe on any pointer; returns the bytes released. For code that has read
 * a big mapped tensor once (a teacher's matrix converted to FP32, its
 * load-time check, a student's signs once repacked). Any thread. */
size_t file_map_drop(const void *p, size_t n);
/* 64-bit FNV-1a (file_fnv1a) of [p, p + n), dropping the pages as it goes
 * when they are a file_map mapping's (file_map_drop): the whole file is
 * never resident at once; other memory is only hashed */
uint64_t file_map_fnv1a(uint64_t h, const void *p, size_t n);

/* ---- SHA-256 ------------------------------------------------------------- */
typedef struct {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t n;
} FileSha256;

void file_sha256_init(FileSha256 *s);
void file_sha256_update(FileSha256 *s, const void *p, size_t n);
/* 64 lowercase hex digits + NUL */
void file_sha256_final(FileSha256 *s, char hex[65]);
/* feed the contents of a regular file into s */
int file_sha256_add_file(FileSha256 *s, const char *path, char *err);
/* SHA-256 of one regular file (a directory is an error naming the path) */
int file_sha256(const char *path, char hex[65], char *err);

/* ---- FNV-1a 64 (offset basis 14695981039346656037, prime 1099511628211) -- */
#define FILE_FNV_INIT 0xcbf29ce484222325ull
uint64_t file_fnv1a(uint64_t h, const void *p, size_t n);

/* ---- little-endian fixed-width integers ---------------------------------- */
static inline void file_put_u32le(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void file_put_u64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint32_t file_get_u32le(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static inline uint64_t file_get_u64le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static inline void file_put_f32le(unsigned char *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    file_put_u32le(p, v);
}
static inline float file_get_f32le(const unsigned char *p)
{
    uint32_t v = file_get_u32le(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

/* Files we write are little-endian. FILE_HOST_LITTLE_ENDIAN lets a writer
 * pass its float arrays straight to the file on little-endian hosts; the
 * array conversions work on any host (by shifts, not by casts) and are the
 * path for the others. dst may equal src. */
#if !defined(__BYTE_ORDER__)
#error "__BYTE_ORDER__ is not defined: say the host's byte order in file.h"
#endif
#define FILE_HOST_LITTLE_ENDIAN (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
void file_f32_to_le(void *dst, const float *src, size_t n);   /* 4n bytes out */
void file_f32_from_le(float *dst, const void *src, size_t n); /* 4n bytes in */

/* ---- paths --------------------------------------------------------------- */
/* "dir/name" (malloc'd); no second slash when dir already ends with one */
char *file_join(const char *dir, const char *name);
/* path made absolute against the working directory, as the run store keeps
 * paths (malloc'd; NULL for NULL; a path the working directory cannot be
 * read for stays as it is) */
char *file_abs(const char *path);
/* where a per-user file lives by the XDG base directory spec: $VAR/rel when
 * the variable VAR holds an absolute path, else $HOME/home_dir/rel (HOME
 * absolute); NULL with err when neither (malloc'd) */
char *file_xdg_path(const char *var, const char *home_dir, const char *rel, char *err);

/* ---- directories written whole ------------------------------------------- */
/* A directory of files is filled in a temporary directory beside it
 * (DIR/.NAME.tmp-XXXXXX, the usual directory mode) and renamed into place:
 * readers see no directory or the whole one. file_dir_begin: out must not
 * exist or be an empty directory ("exists and is not empty" otherwise);
 * the temporary path (malloc'd), or NULL with err. */
char *file_dir_begin(const char *out, char *err);
/* rename tmp over out (an empty directory there is replaced) and fsync the
 * parent; on failure tmp is removed. Frees tmp. */
int file_dir_commit(char *tmp, const char *out, char *err);
/* remove tmp (its plain files, then itself); frees tmp */
void file_dir_abort(char *tmp);

#endif
