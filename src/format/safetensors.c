/* safetensors.c -- safetensors header parser, dtype conversion and writer
 * (see safetensors.h). JSON through cJSON (Debian: libcjson-dev). */
#include "format/safetensors.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/file.h"
#include "format/llama.h"

static const char *const dtype_names[ST_NDTYPES] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL",
                                                    "F8_E4M3", "F8_E5M2"};
static const int dtype_size[ST_NDTYPES] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1, 1, 1};

const char *st_dtype_name(int d) { return d >= 0 && d < ST_NDTYPES ? dtype_names[d] : "?"; }

/* a JSON number that is an exact integer in [0, 2^53] */
static int json_u64(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j)) return -1;
    double v = j->valuedouble;
    if (!(v >= 0) || v > 9007199254740992.0 || v != floor(v)) return -1;
    *out = (uint64_t)v;
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const STTensor *)a)->name, ((const STTensor *)b)->name);
}

static int cmp_begin(const void *a, const void *b)
{
    const STTensor *x = *(const STTensor *const *)a, *y = *(const STTensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

void st_show(char *dst, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (; k < n && k + 4 < cap; k++) dst[k] = (s[k] >= 32 && s[k] < 127) ? s[k] : '?';
    if (k < n) { dst[k++] = '.'; dst[k++] = '.'; dst[k++] = '.'; }
    dst[k] = 0;
}

static void shown(char *dst, size_t cap, const char *s) { st_show(dst, cap, s, strlen(s)); }

int st_index(STFile *f, char *err)
{
    if (f->n > 1) qsort(f->t, f->n, sizeof *f->t, cmp_name);
    for (size_t i = 1; i < f->n; i++)
        if (!strcmp(f->t[i - 1].name, f->t[i].name)) {
            char nb[96];
            shown(nb, sizeof nb, f->t[i].name);
            ob_seterr(err, "duplicate tensor name %s", nb);
            return -1;
        }
    return 0;
}

int st_parse(STFile *f, const void *data, size_t size, char *err)
{
    memset(f, 0, sizeof *f);
    const uint8_t *p = data;
    if (size < 8) { ob_seterr(err, "too short for a safetensors file (%zu bytes)", size); return -1; }
    uint64_t hl;
    memcpy(&hl, p, 8);
    if (hl > size - 8) {
        ob_seterr(err, "header length %llu runs past the end of the file (%zu bytes)", (unsigned long long)hl, size);
        return -1;
    }
    if (hl > ST_MAX_HEADER) { ob_seterr(err, "header length %llu is above the %u-byte limit", (unsigned long long)hl, ST_MAX_HEADER); return -1; }
    if (hl < 2 || p[8] != '{') { ob_seterr(err, "header does not start with a JSON object"); return -1; }
    const char *hdr = (const char *)p + 8, *end = NULL;
    const char *nul = memchr(hdr, 0, (size_t)hl);
    if (nul) { ob_seterr(err, "NUL byte in the JSON header at header byte %ld", (long)(nul - hdr)); return -1; }
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hl, &end, 0);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        long at = e && e >= hdr && e <= hdr + hl ? (long)(e - hdr) : -1;
        ob_seterr(err, "JSON header is not valid or not terminated (error near header byte %ld of %llu)", at, (unsigned long long)hl);
        return -1;
    }
    for (const char *q = end; q && q < hdr + hl; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
            ob_seterr(err, "junk after the JSON header at header byte %ld", (long)(q - hdr));
            cJSON_Delete(root);
            return -1;
        }
    if (!cJSON_IsObject(root)) { ob_seterr(err, "JSON header is not an object"); cJSON_Delete(root); return -1; }
    f->base = p + 8 + hl;
    f->data_size = size - 8 - hl;
    size_t cap = 0;
    for (cJSON *it = root->child; it; it = it->next) cap++;
    f->t = ob_calloc(cap ? cap : 1, sizeof(STTensor));
    char nb[96];
    for (cJSON *it = root->child; it; it = it->next) {
        if (!it->string) continue;
        if (!strcmp(it->string, "__metadata__")) continue;
        shown(nb, sizeof nb, it->string);
        if (!cJSON_IsObject(it)) { ob_seterr(err, "tensor %s: entry is not an object", nb); goto fail; }
        STTensor *t = &f->t[f->n];
        t->name = ob_strdup(it->string);
        f->n++;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt)) { ob_seterr(err, "tensor %s: no dtype", nb); goto fail; }
        t->dtype = -1;
        for (int d = 0; d < ST_NDTYPES; d++)
            if (!strcmp(dt->valuestring, dtype_names[d])) t->dtype = d;
        if (t->dtype < 0) {
            char db[40];
            shown(db, sizeof db, dt->valuestring);
            ob_seterr(err, "tensor %s: unknown dtype %s", nb, db);
            goto fail;
        }
        if (!cJSON_IsArray(sh)) { ob_seterr(err, "tensor %s: no shape", nb); goto fail; }
        int nd = cJSON_GetArraySize(sh);
        if (nd > ST_MAX_DIMS) { ob_seterr(err, "tensor %s has %d dimensions (at most %d)", nb, nd, ST_MAX_DIMS); goto fail; }
        t->n_dims = nd;
        uint64_t ne = 1;
        int k = 0;
        for (const cJSON *d = sh->child; d; d = d->next, k++) {
            if (json_u64(d, &t->shape[k])) { ob_seterr(err, "tensor %s: bad shape entry %d", nb, k); goto fail; }
            if (t->shape[k] && ne > (UINT64_C(1) << 62) / t->shape[k]) { ob_seterr(err, "tensor %s: shape product overflows", nb); goto fail; }
            ne *= t->shape[k];
        }
        t->n_elems = ne;
        if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || json_u64(of->child, &t->begin) ||
            json_u64(of->child->next, &t->end)) {
            ob_seterr(err, "tensor %s: data_offsets is not a pair of integers", nb);
            goto fail;
        }
        if (t->begin > t->end) {
            ob_seterr(err, "tensor %s: data_offsets [%llu, %llu] out of order", nb, (unsigned long long)t->begin, (unsigned long long)t->end);
            goto fail;
        }
        if (t->end > f->data_size) {
            ob_seterr(err, "tensor %s: data_offsets end %llu is past the end of the data (%llu bytes)", nb,
                      (unsigned long long)t->end, (unsigned long long)f->data_size);
            goto fail;
        }
        if (ne > (UINT64_C(1) << 62) / 8 || t->end - t->begin != ne * (uint64_t)dtype_size[t->dtype]) {
            ob_seterr(err, "tensor %s: %llu bytes for %llu %s elements", nb, (unsigned long long)(t->end - t->begin),
                      (unsigned long long)ne, dtype_names[t->dtype]);
            goto fail;
        }
    }
    cJSON_Delete(root);
    root = NULL;
    if (st_index(f, err)) goto fail;
    if (f->n > 1) {
        const STTensor **ix = ob_malloc(f->n * sizeof *ix);
        for (size_t i = 0; i < f->n; i++) ix[i] = &f->t[i];
        qsort(ix, f->n, sizeof *ix, cmp_begin);
        int bad = 0;
        for (size_t i = 1; i < f->n && !bad; i++)
            if (ix[i]->begin < ix[i - 1]->end && ix[i]->end > ix[i]->begin) {
                char nb2[96];
                shown(nb, sizeof nb, ix[i - 1]->name);
                shown(nb2, sizeof nb2, ix[i]->name);
                ob_seterr(err, "data of tensors %s and %s overlap", nb, nb2);
                bad = 1;
            }
        free(ix);
        if (bad) goto fail;
    }
    return 0;
fail:
    if (root) cJSON_Delete(root);
    st_free(f);
    return -1;
}

void st_free(STFile *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    memset(f, 0, sizeof *f);
}

const STTensor *st_find(const STFile *f, const char *name)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) { /* sorted by name after st_parse */
        size_t mid = (lo + hi) / 2;
        int c = strcmp(f->t[mid].name, name);
        if (!c) return &f->t[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

int st_to_f32(const STFile *f, const STTensor *t, float *dst)
{
    int dtype = t->dtype == ST_F32 ? LLAMA_F32 : t->dtype == ST_F16 ? LLAMA_F16 : t->dtype == ST_BF16 ? LLAMA_BF16 : -1;
    if (dtype < 0) return -1;
    llama_dequant(dtype, f->base + t->begin, dst, (size_t)t->n_elems);
    return 0;
}

void st_shape_str(const STTensor *t, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (int d = 0; d < t->n_dims && k + 24 < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
}

int st_write_file(const char *path, const STWrite *t, size_t n, char *err)
{
    ObBuf h = {0};
    uint64_t off = 0;
    ob_buf_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t *bytes = ob_calloc(n ? n : 1, sizeof *bytes);
    for (size_t i = 0; i < n; i++) {
        uint64_t ne = 1;
        ob_buf_printf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, st_dtype_name(t[i].dtype));
        for (int d = 0; d < t[i].n_dims; d++) {
            ob_buf_printf(&h, "%s%llu", d ? "," : "", (unsigned long long)t[i].shape[d]);
            ne *= t[i].shape[d];
        }
        bytes[i] = (size_t)(ne * (uint64_t)dtype_size[t[i].dtype]);
        ob_buf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + bytes[i]));
        off += bytes[i];
    }
    ob_buf_printf(&h, "}");
    while (h.n % 8) ob_buf_printf(&h, " ");
    unsigned char hl[8];
    file_put_u64le(hl, (uint64_t)h.n);
    FileAtomic fa;
    int rc = file_atomic_open(&fa, path, err);
    if (!rc) rc = file_atomic_write(&fa, hl, 8, err);
    if (!rc) rc = file_atomic_write(&fa, h.s, h.n, err);
    for (size_t i = 0; i < n && !rc; i++) rc = file_atomic_write(&fa, t[i].data, bytes[i], err);
    if (rc) file_atomic_abort(&fa);
    else rc = file_atomic_commit(&fa, err);
    free(bytes);
    free(h.s);
    return rc;
}
