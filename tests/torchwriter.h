/* torchwriter.h -- writes what torch.save writes, without torch: a zip (the
 * way PyTorch's miniz writer makes it: an "archive/" prefix, STORED entries
 * whose data start on 64-byte boundaries through an "FB" extra field of 'Z'
 * padding, zeroed sizes in the local headers with a data descriptor after
 * each entry, ZIP64 end records) holding data.pkl, byteorder, data/KEY,
 * version and .data/serialization_id; data.pkl a protocol-2 pickle of an
 * OrderedDict state dict as Python's pickler emits it (memo puts and gets,
 * BINPERSID storage ids, _rebuild_tensor_v2, batched SETITEMS, _metadata
 * set by BUILD). Storages may be shared by several tensors at non-zero
 * offsets; a Hugging Face directory may be sharded with an index. The
 * pieces (Pk, tw_zip) are also there to build hostile files by hand. */
#ifndef OB_TEST_TORCHWRITER_H
#define OB_TEST_TORCHWRITER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "writers.h"

/* ---- pickle, protocol 2 ----------------------------------------------------*/
typedef struct { Buf b; int memo; } Pk;

static inline void pk_op(Pk *p, int op) { uint8_t c = (uint8_t)op; buf_put(&p->b, &c, 1); }
/* memoize the top of the stack (BINPUT, LONG_BINPUT from 256); its index */
static inline int pk_put(Pk *p)
{
    int i = p->memo++;
    if (i < 256) { pk_op(p, 'q'); pk_op(p, i); }
    else { pk_op(p, 'r'); buf_u32(&p->b, (uint32_t)i); }
    return i;
}
static inline void pk_get(Pk *p, int i)
{
    if (i < 256) { pk_op(p, 'h'); pk_op(p, i); }
    else { pk_op(p, 'j'); buf_u32(&p->b, (uint32_t)i); }
}
static inline int pk_str(Pk *p, const char *s)
{
    pk_op(p, 'X');
    buf_u32(&p->b, (uint32_t)strlen(s));
    buf_put(&p->b, s, strlen(s));
    return pk_put(p);
}
/* as pickle's save_long at protocol 2 */
static inline void pk_int(Pk *p, int64_t v)
{
    if (v >= 0 && v <= 0xff) { pk_op(p, 'K'); pk_op(p, (int)v); }
    else if (v >= 0 && v <= 0xffff) { pk_op(p, 'M'); pk_op(p, (int)(v & 0xff)); pk_op(p, (int)(v >> 8)); }
    else if (v >= INT32_MIN && v <= INT32_MAX) { pk_op(p, 'J'); buf_u32(&p->b, (uint32_t)(int32_t)v); }
    else { pk_op(p, 0x8a); pk_op(p, 8); buf_u64(&p->b, (uint64_t)v); }
}
static inline int pk_global(Pk *p, const char *mod, const char *name)
{
    pk_op(p, 'c');
    buf_put(&p->b, mod, strlen(mod));
    buf_put(&p->b, "\n", 1);
    buf_put(&p->b, name, strlen(name));
    buf_put(&p->b, "\n", 1);
    return pk_put(p);
}
/* a tuple of ints as save_tuple writes it (TUPLE1..3, MARK..TUPLE above) */
static inline void pk_int_tuple(Pk *p, const int64_t *v, int n)
{
    if (n == 0) { pk_op(p, ')'); return; }
    if (n > 3) pk_op(p, '(');
    for (int i = 0; i < n; i++) pk_int(p, v[i]);
    pk_op(p, n > 3 ? 't' : 0x85 + n - 1);
    pk_put(p);
}

/* ---- a state dict ------------------------------------------------------------*/
typedef struct {
    char name[128];
    int storage;          /* index into TW.s */
    uint64_t offset;      /* in elements */
    int n_dims;
    int64_t shape[4], stride[4]; /* stride all 0: contiguous */
} TWTensor;

typedef struct { char key[24]; const char *cls; Buf data; uint64_t numel; size_t es; } TWStorage;

typedef struct {
    TWTensor t[600];
    int nt;
    TWStorage s[600];
    int ns;
    int metadata;        /* write an OrderedDict _metadata through BUILD */
    int zip64_extra;     /* central directory entries through ZIP64 extra fields */
} TW;

/* a new storage of class cls (element size es) holding n elements from data */
static inline int tw_storage(TW *w, const char *cls, size_t es, const void *data, uint64_t n)
{
    TWStorage *s = &w->s[w->ns];
    memset(s, 0, sizeof *s);
    snprintf(s->key, sizeof s->key, "%d", w->ns);
    s->cls = cls;
    s->es = es;
    if (data) buf_put(&s->data, data, n * es);
    s->numel = n;
    return w->ns++;
}

static inline TWTensor *tw_tensor(TW *w, const char *name, int storage, uint64_t offset, int n_dims, const int64_t *shape)
{
    TWTensor *t = &w->t[w->nt++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->storage = storage;
    t->offset = offset;
    t->n_dims = n_dims;
    for (int d = 0; d < n_dims; d++) t->shape[d] = shape[d];
    int64_t st = 1;
    for (int d = n_dims - 1; d >= 0; d--) { t->stride[d] = st; st *= shape[d]; }
    return t;
}

static inline void tw_free(TW *w)
{
    for (int i = 0; i < w->ns; i++) free(w->s[i].data.p);
    w->ns = w->nt = 0;
}

/* the pickle of w's state dict, as torch.save writes it */
static inline void tw_pickle(const TW *w, Pk *p)
{
    pk_op(p, 0x80);
    pk_op(p, 2);
    int od = pk_global(p, "collections", "OrderedDict");
    pk_op(p, ')');
    pk_op(p, 'R');
    pk_put(p);
    int rebuild = -1, m_storage = -1, m_cpu = -1, cls_memo[600], key_memo[600];
    const char *cls_seen[600];
    int ncls = 0;
    for (int i = 0; i < w->ns; i++) key_memo[i] = -1;
    for (int b = 0; b < w->nt; b += 1000) { /* pickle's batch_setitems */
        int n = w->nt - b < 1000 ? w->nt - b : 1000;
        if (n > 1) pk_op(p, '(');
        for (int i = b; i < b + n; i++) {
            const TWTensor *t = &w->t[i];
            const TWStorage *s = &w->s[t->storage];
            pk_str(p, t->name);
            if (rebuild < 0) rebuild = pk_global(p, "torch._utils", "_rebuild_tensor_v2");
            else pk_get(p, rebuild);
            pk_op(p, '(');
            pk_op(p, '('); /* the persistent id */
            if (m_storage < 0) m_storage = pk_str(p, "storage");
            else pk_get(p, m_storage);
            int c = 0;
            while (c < ncls && strcmp(cls_seen[c], s->cls)) c++;
            if (c == ncls) { cls_seen[ncls] = s->cls; cls_memo[ncls++] = pk_global(p, "torch", s->cls); }
            else pk_get(p, cls_memo[c]);
            if (key_memo[t->storage] < 0) key_memo[t->storage] = pk_str(p, s->key);
            else pk_get(p, key_memo[t->storage]);
            if (m_cpu < 0) m_cpu = pk_str(p, "cpu");
            else pk_get(p, m_cpu);
            pk_int(p, (int64_t)s->numel);
            pk_op(p, 't');
            pk_put(p);
            pk_op(p, 'Q');
            pk_int(p, (int64_t)t->offset);
            pk_int_tuple(p, t->shape, t->n_dims);
            pk_int_tuple(p, t->stride, t->n_dims);
            pk_op(p, 0x89); /* requires_grad False */
            pk_get(p, od);  /* backward hooks: OrderedDict() */
            pk_op(p, ')');
            pk_op(p, 'R');
            pk_put(p);
            pk_op(p, 't');
            pk_put(p);
            pk_op(p, 'R');
            pk_put(p);
        }
        pk_op(p, n > 1 ? 'u' : 's');
    }
    if (w->metadata) { /* state {'_metadata': OrderedDict({'': {'version': 1}, 'model': {'version': 1}})}, then BUILD */
        pk_op(p, '}');
        pk_put(p);
        pk_str(p, "_metadata");
        pk_get(p, od);
        pk_op(p, ')');
        pk_op(p, 'R');
        pk_put(p);
        pk_op(p, '(');
        pk_str(p, "");
        pk_op(p, '}');
        pk_put(p);
        int ver = pk_str(p, "version");
        pk_int(p, 1);
        pk_op(p, 's');
        pk_str(p, "model");
        pk_op(p, '}');
        pk_put(p);
        pk_get(p, ver);
        pk_int(p, 1);
        pk_op(p, 's');
        pk_op(p, 'u');
        pk_op(p, 's');
        pk_op(p, 'b');
    }
    pk_op(p, '.');
}

/* ---- zip ---------------------------------------------------------------------*/
typedef struct { char name[200]; const void *data; size_t n; } TWEntry;

static inline uint32_t tw_crc32(const void *d, size_t n)
{
    const uint8_t *p = d;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static inline void buf_u16(Buf *b, unsigned v) { uint16_t x = (uint16_t)v; buf_put(b, &x, 2); }

/* the zip of ne entries as PyTorch's writer makes it */
static inline void tw_zip(Buf *out, const TWEntry *e, int ne, int zip64_extra)
{
    uint64_t *lho = calloc((size_t)ne + 1, sizeof *lho);
    uint32_t *crc = calloc((size_t)ne + 1, sizeof *crc);
    for (int i = 0; i < ne; i++) {
        size_t nl = strlen(e[i].name);
        lho[i] = out->n;
        crc[i] = tw_crc32(e[i].data, e[i].n);
        buf_u32(out, 0x04034b50);
        buf_u16(out, 0);      /* version needed */
        buf_u16(out, 0x0808); /* data descriptor follows; UTF-8 names */
        buf_u16(out, 0);      /* STORED */
        buf_u16(out, 0);
        buf_u16(out, 0x2100);
        buf_u32(out, 0);      /* crc and sizes: in the descriptor */
        buf_u32(out, 0);
        buf_u32(out, 0);
        size_t start = out->n + 4 + nl + 4, pad = (64 - start % 64) % 64;
        buf_u16(out, (unsigned)nl);
        buf_u16(out, (unsigned)(4 + pad));
        buf_put(out, e[i].name, nl);
        buf_put(out, "FB", 2);
        buf_u16(out, (unsigned)pad);
        for (size_t k = 0; k < pad; k++) buf_put(out, "Z", 1);
        buf_put(out, e[i].data, e[i].n);
        buf_u32(out, 0x08074b50);
        buf_u32(out, crc[i]);
        buf_u32(out, (uint32_t)e[i].n);
        buf_u32(out, (uint32_t)e[i].n);
    }
    uint64_t cd = out->n;
    for (int i = 0; i < ne; i++) {
        size_t nl = strlen(e[i].name);
        buf_u32(out, 0x02014b50);
        buf_u16(out, 0x031e);
        buf_u16(out, zip64_extra ? 45 : 0);
        buf_u16(out, 0x0808);
        buf_u16(out, 0);
        buf_u16(out, 0);
        buf_u16(out, 0x2100);
        buf_u32(out, crc[i]);
        uint32_t x = zip64_extra ? 0xffffffffu : 0;
        buf_u32(out, x ? x : (uint32_t)e[i].n);
        buf_u32(out, x ? x : (uint32_t)e[i].n);
        buf_u16(out, (unsigned)nl);
        buf_u16(out, zip64_extra ? 4 + 24 : 0);
        buf_u16(out, 0);
        buf_u16(out, 0);
        buf_u16(out, 0);
        buf_u32(out, 0);
        buf_u32(out, x ? x : (uint32_t)lho[i]);
        buf_put(out, e[i].name, nl);
        if (zip64_extra) {
            buf_u16(out, 1);
            buf_u16(out, 24);
            buf_u64(out, e[i].n);
            buf_u64(out, e[i].n);
            buf_u64(out, lho[i]);
        }
    }
    uint64_t cd_size = out->n - cd, z64 = out->n;
    buf_u32(out, 0x06064b50); /* ZIP64 end record */
    buf_u64(out, 44);
    buf_u16(out, 0x031e);
    buf_u16(out, 45);
    buf_u32(out, 0);
    buf_u32(out, 0);
    buf_u64(out, (uint64_t)ne);
    buf_u64(out, (uint64_t)ne);
    buf_u64(out, cd_size);
    buf_u64(out, cd);
    buf_u32(out, 0x07064b50); /* its locator */
    buf_u32(out, 0);
    buf_u64(out, z64);
    buf_u32(out, 1);
    buf_u32(out, 0x06054b50); /* the end record */
    buf_u16(out, 0);
    buf_u16(out, 0);
    buf_u16(out, (unsigned)ne);
    buf_u16(out, (unsigned)ne);
    buf_u32(out, (uint32_t)cd_size);
    buf_u32(out, (uint32_t)cd);
    buf_u16(out, 0);
    free(lho);
    free(crc);
}

/* the whole torch.save file of w into out; pkl (may be NULL) replaces the
 * pickle w would give */
static inline void tw_build(const TW *w, const Buf *pkl, Buf *out)
{
    Pk p = {0};
    if (!pkl) tw_pickle(w, &p);
    TWEntry *e = calloc((size_t)w->ns + 8, sizeof *e);
    int ne = 0;
#define ENT(nm, d, len) (snprintf(e[ne].name, sizeof e[ne].name, "archive/%s", nm), e[ne].data = (d), e[ne].n = (len), ne++)
    ENT("data.pkl", pkl ? pkl->p : p.b.p, pkl ? pkl->n : p.b.n);
    ENT("byteorder", "little", 6);
    for (int i = 0; i < w->ns; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "data/%s", w->s[i].key);
        ENT(nm, w->s[i].data.p, w->s[i].data.n);
    }
    ENT("version", "3\n", 2);
    ENT(".data/serialization_id", "1402925318245539113200004025640296740298", 40);
#undef ENT
    tw_zip(out, e, ne, w->zip64_extra);
    free(e);
    free(p.b.p);
}

static inline int tw_save(const TW *w, const char *path)
{
    Buf b = {0};
    tw_build(w, NULL, &b);
    int rc = write_buf(path, b.p, b.n);
    free(b.p);
    return rc;
}

/* tensors ts[0..n) into w; pack: all tensors of a dtype share one storage,
 * each at its own offset (else one storage each, as a state dict has) */
static inline void tw_add(TW *w, const STens *ts, int n, int pack)
{
    int packed[3] = {-1, -1, -1};
    for (int i = 0; i < n; i++) {
        const STens *t = &ts[i];
        int k = !strcmp(t->dtype, "F32") ? 0 : !strcmp(t->dtype, "F16") ? 1 : 2;
        const char *cls = k == 0 ? "FloatStorage" : k == 1 ? "HalfStorage" : "BFloat16Storage";
        size_t es = k == 0 ? 4 : 2;
        int s = pack ? packed[k] : -1;
        if (s < 0) s = tw_storage(w, cls, es, NULL, 0);
        if (pack) packed[k] = s;
        TWStorage *st = &w->s[s];
        uint64_t off = st->numel;
        st_tensor_bytes(t, &st->data);
        st->numel = st->data.n / es;
        int64_t shape[4];
        for (int d = 0; d < t->n_dims; d++) shape[d] = (int64_t)t->shape[d];
        tw_tensor(w, t->name, s, off, t->n_dims, shape);
    }
}

/* a Hugging Face directory dir with m's weights (matrices in dtype) in
 * pytorch_model.bin, or in shards > 1 pytorch_model-0000k-of-0000n.bin with
 * pytorch_model.bin.index.json; 0 or -1 */
static inline int tw_hf_dir(const Model *m, const char *dir, const char *dtype, int tied, int shards, int pack)
{
    mkdir(dir, 0755);
    char p[1024];
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (st_config(p, &m->cfg, tied)) return -1;
    STens *ts = calloc(600, sizeof *ts);
    int n = st_model(m, ts, dtype, tied), rc = 0;
    TW *w = calloc(1, sizeof *w);
    if (shards <= 1) {
        w->metadata = 1;
        tw_add(w, ts, n, pack);
        snprintf(p, sizeof p, "%s/pytorch_model.bin", dir);
        rc = tw_save(w, p);
        tw_free(w);
    } else {
        snprintf(p, sizeof p, "%s/pytorch_model.bin.index.json", dir);
        FILE *f = fopen(p, "w");
        if (!f) rc = -1;
        else fprintf(f, "{\"metadata\":{\"total_size\":0},\"weight_map\":{");
        int per = (n + shards - 1) / shards;
        for (int s = 0; s < shards && !rc; s++) {
            int a = s * per, b = a + per < n ? a + per : n;
            char file[64];
            snprintf(file, sizeof file, "pytorch_model-%05d-of-%05d.bin", s + 1, shards);
            snprintf(p, sizeof p, "%s/%s", dir, file);
            w->metadata = 1;
            tw_add(w, ts + a, b - a, pack);
            rc = tw_save(w, p);
            tw_free(w);
            for (int i = a; i < b; i++) fprintf(f, "%s\"%s\":\"%s\"", i ? "," : "", ts[i].name, file);
        }
        if (f) {
            fprintf(f, "}}\n");
            if (fclose(f)) rc = -1;
        }
    }
    free(w);
    free(ts);
    return rc;
}

#endif
