/* torch.c -- restricted torch.save checkpoint reader: the zip container
 * (central directory, ZIP64, STORED entries) and a pickle stack machine that
 * accepts only a state dict's opcodes and globals (see torch.h). */
#include "format/torch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/file.h"

#define TORCH_MAX_OBJECTS (1u << 22)

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* ---- zip ------------------------------------------------------------------*/

enum { ZIP_LOCAL = 0x04034b50, ZIP_CENTRAL = 0x02014b50, ZIP_END = 0x06054b50, ZIP64_END = 0x06064b50, ZIP64_LOCATOR = 0x07064b50 };

typedef struct {
    const char *name; /* into the central directory, not NUL-terminated */
    size_t nlen;
    uint64_t usize, csize, lho;
    int method;
    int dtype;        /* a storage: the dtype it was first used as, else -1 */
} ZEntry;

typedef struct {
    const uint8_t *p;
    size_t size;
    ZEntry *e;
    size_t n;
    const ZEntry *pkl;  /* PREFIX/data.pkl */
    size_t plen;        /* length of PREFIX */
} Zip;

static int cmp_entry(const void *a, const void *b)
{
    const ZEntry *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

static const ZEntry *zip_find(const Zip *z, const char *name, size_t nlen)
{
    ZEntry key = {.name = name, .nlen = nlen};
    return bsearch(&key, z->e, z->n, sizeof *z->e, cmp_entry);
}

/* the ZIP64 extended information of a central directory entry: the 64-bit
 * values of the fields saturated at 0xFFFFFFFF, in this order */
static int zip64_extra(ZEntry *e, const uint8_t *x, size_t xlen, char *err)
{
    while (xlen >= 4) {
        unsigned id = get16(x), len = get16(x + 2);
        if (len > xlen - 4) { ob_seterr(err, "an extra field of a zip central directory entry runs past its end"); return -1; }
        if (id == 1) {
            const uint8_t *q = x + 4, *end = x + 4 + len;
            uint64_t *fld[3] = {&e->usize, &e->csize, &e->lho};
            for (int k = 0; k < 3; k++) {
                if (*fld[k] != 0xFFFFFFFFu) continue;
                if (end - q < 8) { ob_seterr(err, "a ZIP64 extra field is shorter than the values it must hold"); return -1; }
                *fld[k] = file_get_u64le(q);
                q += 8;
            }
        }
        x += 4 + len;
        xlen -= 4 + len;
    }
    return 0;
}

static int zip_open(Zip *z, const uint8_t *p, size_t size, char *err)
{
    memset(z, 0, sizeof *z);
    z->p = p;
    z->size = size;
    if (size < 22) { ob_seterr(err, "too short for a zip archive (%zu bytes)", size); return -1; }
    size_t pos = size - 22, eocd = SIZE_MAX;
    for (;;) { /* the end record, behind a comment of at most 65535 bytes */
        if (file_get_u32le(p + pos) == ZIP_END && pos + 22 + get16(p + pos + 20) == size) { eocd = pos; break; }
        if (pos == 0 || size - 22 - pos >= 65535) break;
        pos--;
    }
    if (eocd == SIZE_MAX) { ob_seterr(err, "no zip end-of-central-directory record (not a zip file, or a truncated one)"); return -1; }
    uint64_t count = get16(p + eocd + 10), cd_size = file_get_u32le(p + eocd + 12), cd_off = file_get_u32le(p + eocd + 16);
    uint64_t limit = eocd;
    if (eocd >= 20 && file_get_u32le(p + eocd - 20) == ZIP64_LOCATOR) {
        uint64_t z64 = file_get_u64le(p + eocd - 20 + 8);
        if (z64 > eocd - 20 || eocd - 20 - z64 < 56 || file_get_u32le(p + z64) != ZIP64_END) {
            ob_seterr(err, "the ZIP64 end record at offset %llu is not there (truncated or damaged archive)", (unsigned long long)z64);
            return -1;
        }
        count = file_get_u64le(p + z64 + 32);
        cd_size = file_get_u64le(p + z64 + 40);
        cd_off = file_get_u64le(p + z64 + 48);
        limit = z64;
    }
    if (cd_off > limit || cd_size > limit - cd_off) {
        ob_seterr(err, "the zip central directory (%llu bytes at offset %llu) runs past its end record at %llu (truncated archive?)",
                  (unsigned long long)cd_size, (unsigned long long)cd_off, (unsigned long long)limit);
        return -1;
    }
    if (count > cd_size / 46) {
        ob_seterr(err, "the zip central directory claims %llu entries in %llu bytes (truncated archive?)", (unsigned long long)count,
                  (unsigned long long)cd_size);
        return -1;
    }
    z->e = ob_calloc(count ? count : 1, sizeof *z->e);
    const uint8_t *q = p + cd_off, *end = p + cd_off + cd_size;
    for (uint64_t i = 0; i < count; i++) {
        if (end - q < 46 || file_get_u32le(q) != ZIP_CENTRAL) {
            ob_seterr(err, "zip central directory entry %llu is truncated or has a bad signature", (unsigned long long)i);
            return -1;
        }
        ZEntry *e = &z->e[z->n];
        size_t nlen = get16(q + 28), xlen = get16(q + 30), clen = get16(q + 32);
        if ((size_t)(end - q) - 46 < nlen + xlen + clen) {
            ob_seterr(err, "zip central directory entry %llu runs past the directory's end", (unsigned long long)i);
            return -1;
        }
        e->method = get16(q + 10);
        e->csize = file_get_u32le(q + 20);
        e->usize = file_get_u32le(q + 24);
        e->lho = file_get_u32le(q + 42);
        e->name = (const char *)q + 46;
        e->nlen = nlen;
        e->dtype = -1;
        if (zip64_extra(e, q + 46 + nlen, xlen, err)) return -1;
        z->n++;
        q += 46 + nlen + xlen + clen;
    }
    /* PREFIX/data.pkl, PREFIX one path component (the archive's name) */
    for (size_t i = 0; i < z->n; i++) {
        const ZEntry *e = &z->e[i];
        if (e->nlen < 10 || memcmp(e->name + e->nlen - 9, "/data.pkl", 9) || memchr(e->name, '/', e->nlen - 9)) continue;
        if (z->pkl) { ob_seterr(err, "the archive holds more than one data.pkl"); return -1; }
        z->pkl = e;
    }
    if (!z->pkl) { ob_seterr(err, "no data.pkl in the zip archive (not a torch.save checkpoint)"); return -1; }
    const char *pkl = z->pkl->name;
    z->plen = z->pkl->nlen - 9;
    qsort(z->e, z->n, sizeof *z->e, cmp_entry);
    for (size_t i = 1; i < z->n; i++)
        if (!cmp_entry(&z->e[i - 1], &z->e[i])) {
            char nb[300];
            st_show(nb, sizeof nb, z->e[i].name, z->e[i].nlen);
            ob_seterr(err, "the zip archive has two entries named %s", nb);
            return -1;
        }
    z->pkl = zip_find(z, pkl, z->plen + 9); /* moved by the sort */
    return 0;
}

/* the bytes of entry e, checked against the file */
static int zip_data(const Zip *z, const ZEntry *e, const uint8_t **data, char *err)
{
    char nb[300];
    st_show(nb, sizeof nb, e->name, e->nlen);
    if (e->method != 0) {
        ob_seterr(err, "zip entry %s is compressed (method %d); torch.save stores its entries uncompressed", nb, e->method);
        return -1;
    }
    if (e->csize != e->usize) {
        ob_seterr(err, "zip entry %s is stored with %llu bytes but says %llu uncompressed", nb, (unsigned long long)e->csize,
                  (unsigned long long)e->usize);
        return -1;
    }
    if (e->lho > z->size || z->size - e->lho < 30 || file_get_u32le(z->p + e->lho) != ZIP_LOCAL) {
        ob_seterr(err, "zip entry %s: no local header at offset %llu (truncated archive?)", nb, (unsigned long long)e->lho);
        return -1;
    }
    uint64_t off = e->lho + 30 + get16(z->p + e->lho + 26) + get16(z->p + e->lho + 28);
    if (off > z->size || e->usize > z->size - off) {
        ob_seterr(err, "zip entry %s (%llu bytes at offset %llu) runs past the end of the file (%zu bytes; truncated?)", nb,
                  (unsigned long long)e->usize, (unsigned long long)off, z->size);
        return -1;
    }
    *data = z->p + off;
    return 0;
}

/* ---- the allowed globals -----------------------------------------------------*/

enum { G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER, G_REBUILD_PARAMETER_STATE, G_STORAGE };

static const struct { const char *name; int dtype, size; } storages[] = {
    {"FloatStorage", ST_F32, 4}, {"HalfStorage", ST_F16, 2}, {"BFloat16Storage", ST_BF16, 2}, {"DoubleStorage", ST_F64, 8},
    {"CharStorage", ST_I8, 1},   {"ByteStorage", ST_U8, 1},  {"ShortStorage", ST_I16, 2},    {"IntStorage", ST_I32, 4},
    {"LongStorage", ST_I64, 8},  {"BoolStorage", ST_BOOL, 1},
};
#define N_STORAGES ((int)(sizeof storages / sizeof storages[0]))

static int lookup_global(const char *mod, size_t ml, const char *name, size_t nl)
{
#define IS(s, l, lit) ((l) == sizeof(lit) - 1 && !memcmp(s, lit, l))
    if (IS(mod, ml, "collections") && IS(name, nl, "OrderedDict")) return G_ORDERED_DICT;
    if (IS(mod, ml, "torch._utils")) {
        if (IS(name, nl, "_rebuild_tensor_v2")) return G_REBUILD_TENSOR_V2;
        if (IS(name, nl, "_rebuild_parameter")) return G_REBUILD_PARAMETER;
        if (IS(name, nl, "_rebuild_parameter_with_state")) return G_REBUILD_PARAMETER_STATE;
    }
    if (IS(mod, ml, "torch"))
        for (int i = 0; i < N_STORAGES; i++)
            if (nl == strlen(storages[i].name) && !memcmp(name, storages[i].name, nl)) return G_STORAGE + i;
#undef IS
    return -1;
}

/* ---- pickle objects -----------------------------------------------------------*/

enum { K_NONE, K_BOOL, K_INT, K_FLOAT, K_STR, K_TUPLE, K_LIST, K_DICT, K_GLOBAL, K_STORAGE, K_TENSOR };
static const char *const kind_names[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict", "global", "storage", "tensor"};

typedef struct {
    struct Obj *storage;
    uint64_t offset;
    int nd;
    int64_t shape[ST_MAX_DIMS], stride[ST_MAX_DIMS];
} Tensor;

typedef struct Obj {
    int kind, depth;
    union {
        int64_t i;                                        /* INT, BOOL, GLOBAL */
        const char *s;                                    /* STR (n bytes, into the pickle) */
        struct { struct Obj **v; int cap; } seq;          /* TUPLE, LIST, DICT (k, v, k, v...) */
        struct { ZEntry *entry; uint64_t numel; } sto;    /* STORAGE (dtype: entry->dtype) */
        Tensor *t;                                        /* TENSOR */
    } u;
    size_t n;                                             /* STR length, seq items */
} Obj;

typedef struct {
    const uint8_t *p;
    size_t n, pos, op_at;
    Zip *z;
    Obj **all;
    size_t nall;
    int capall;
    Obj **st;
    size_t nst;
    int capst;
    size_t marks[TORCH_MAX_DEPTH];
    int nmarks;
    Obj **memo;
    size_t nmemo;
    int capmemo;
    Obj none, yes, no;
    char *err;
} VM;

static Obj *new_obj(VM *vm, int kind)
{
    if (vm->nall >= TORCH_MAX_OBJECTS) {
        ob_seterr(vm->err, "more than %u objects in the pickle", TORCH_MAX_OBJECTS);
        return NULL;
    }
    vm->all = ob_grow(vm->all, vm->nall, &vm->capall, 256, sizeof *vm->all);
    Obj *o = ob_calloc(1, sizeof *o);
    o->kind = kind;
    vm->all[vm->nall++] = o;
    return o;
}

static void free_vm(VM *vm)
{
    for (size_t i = 0; i < vm->nall; i++) {
        Obj *o = vm->all[i];
        if (o->kind == K_TUPLE || o->kind == K_LIST || o->kind == K_DICT) free(o->u.seq.v);
        if (o->kind == K_TENSOR) free(o->u.t);
        free(o);
    }
    free(vm->all);
    free(vm->st);
    free(vm->memo);
}

static int push(VM *vm, Obj *o)
{
    if (!o) return -1;
    vm->st = ob_grow(vm->st, vm->nst, &vm->capst, 64, sizeof *vm->st);
    vm->st[vm->nst++] = o;
    return 0;
}

static int fail(VM *vm, const char *what)
{
    ob_seterr(vm->err, "pickle byte %zu: %s", vm->op_at, what);
    return -1;
}

static Obj *pop(VM *vm)
{
    size_t floor = vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
    if (vm->nst <= floor) { fail(vm, vm->nst ? "pops past a MARK" : "stack underflow"); return NULL; }
    return vm->st[--vm->nst];
}

/* append item to a container, keeping its nesting depth in bounds */
static int add_item(VM *vm, Obj *c, Obj *item)
{
    if (c->n >= INT32_MAX / 2) return fail(vm, "container too large");
    c->u.seq.v = ob_grow(c->u.seq.v, c->n, &c->u.seq.cap, 4, sizeof *c->u.seq.v);
    c->u.seq.v[c->n++] = item;
    if (item->depth + 1 > c->depth) c->depth = item->depth + 1;
    if (c->depth > TORCH_MAX_DEPTH) {
        char m[64];
        snprintf(m, sizeof m, "objects nested deeper than %d", TORCH_MAX_DEPTH);
        return fail(vm, m);
    }
    return 0;
}

/* the items from the top MARK up, as a new container of kind */
static Obj *pop_mark(VM *vm, int kind)
{
    if (!vm->nmarks) { fail(vm, "no MARK to pop to"); return NULL; }
    size_t m = vm->marks[--vm->nmarks];
    Obj *c = new_obj(vm, kind);
    if (!c) return NULL;
    for (size_t i = m; i < vm->nst; i++)
        if (add_item(vm, c, vm->st[i])) return NULL;
    vm->nst = m;
    return c;
}

static Obj *new_seq(VM *vm, int kind, Obj **items, int n)
{
    Obj *c = new_obj(vm, kind);
    for (int i = 0; c && i < n; i++)
        if (add_item(vm, c, items[i])) return NULL;
    return c;
}

static Obj *new_int(VM *vm, int64_t v)
{
    Obj *o = new_obj(vm, K_INT);
    if (o) o->u.i = v;
    return o;
}

/* n bytes of operand, or NULL (truncated pickle) */
static const uint8_t *arg(VM *vm, size_t n)
{
    if (vm->n - vm->pos < n) { fail(vm, "the pickle ends inside an opcode (truncated data.pkl)"); return NULL; }
    const uint8_t *a = vm->p + vm->pos;
    vm->pos += n;
    return a;
}

/* an int object's value in [lo, hi] */
static int int_in(const Obj *o, int64_t lo, int64_t hi, int64_t *v)
{
    if (o->kind != K_INT || o->u.i < lo || o->u.i > hi) return -1;
    *v = o->u.i;
    return 0;
}

static int is_str(const Obj *o, const char *s)
{
    return o->kind == K_STR && o->n == strlen(s) && !memcmp(o->u.s, s, o->n);
}

/* BINPERSID: ('storage', torch.XStorage, key, location, numel) */
static Obj *persistent_load(VM *vm, Obj *pid)
{
    Obj **a = pid->u.seq.v;
    if (pid->kind != K_TUPLE || pid->n != 5 || !is_str(a[0], "storage")) {
        fail(vm, "a persistent id that is not ('storage', class, key, location, numel)");
        return NULL;
    }
    int64_t numel;
    if (a[1]->kind != K_GLOBAL || a[1]->u.i < G_STORAGE || a[2]->kind != K_STR || a[3]->kind != K_STR || int_in(a[4], 0, INT64_MAX / 8, &numel)) {
        fail(vm, "a storage persistent id with the wrong types (want a torch.*Storage class, key, location, numel)");
        return NULL;
    }
    int si = (int)(a[1]->u.i - G_STORAGE);
    if (a[2]->n > 200) { fail(vm, "a storage key longer than 200 bytes"); return NULL; }
    char name[300], key[256];
    st_show(key, sizeof key, a[2]->u.s, a[2]->n);
    snprintf(name, sizeof name, "%.*s/data/%.*s", (int)vm->z->plen, vm->z->pkl->name, (int)a[2]->n, a[2]->u.s);
    ZEntry *e = (ZEntry *)zip_find(vm->z, name, strlen(name));
    if (!e || memchr(a[2]->u.s, 0, a[2]->n)) {
        ob_seterr(vm->err, "storage '%s' is not in the archive (no %.*s/data/%s)", key, (int)vm->z->plen, vm->z->pkl->name, key);
        return NULL;
    }
    const uint8_t *data;
    if (zip_data(vm->z, e, &data, vm->err)) return NULL;
    if (e->dtype >= 0 && e->dtype != storages[si].dtype) {
        ob_seterr(vm->err, "storage '%s' is used as %s and as %s (dtype mismatch)", key, st_dtype_name(e->dtype), st_dtype_name(storages[si].dtype));
        return NULL;
    }
    if ((uint64_t)numel * (uint64_t)storages[si].size != e->usize) {
        ob_seterr(vm->err, "storage '%s' holds %lld %s elements (%llu bytes) but its entry has %llu bytes (dtype or size mismatch)", key,
                  (long long)numel, storages[si].name, (unsigned long long)numel * (unsigned long long)storages[si].size,
                  (unsigned long long)e->usize);
        return NULL;
    }
    e->dtype = storages[si].dtype;
    Obj *o = new_obj(vm, K_STORAGE);
    if (o) {
        o->u.sto.entry = e;
        o->u.sto.numel = (uint64_t)numel;
    }
    return o;
}

/* a tuple of at most ST_MAX_DIMS non-negative ints into v */
static int int_tuple(const Obj *o, int64_t *v, int *nd)
{
    if (o->kind != K_TUPLE || o->n > ST_MAX_DIMS) return -1;
    for (size_t i = 0; i < o->n; i++)
        if (int_in(o->u.seq.v[i], 0, INT64_MAX, &v[i])) return -1;
    *nd = (int)o->n;
    return 0;
}

/* REDUCE: fn(*args) for the allowed callables */
static Obj *reduce(VM *vm, Obj *fn, Obj *args)
{
    if (fn->kind != K_GLOBAL) { fail(vm, "REDUCE calls something that is not an allowed global"); return NULL; }
    if (args->kind != K_TUPLE) { fail(vm, "REDUCE's arguments are not a tuple"); return NULL; }
    Obj **a = args->u.seq.v;
    switch (fn->u.i) {
    case G_ORDERED_DICT:
        if (args->n) { fail(vm, "collections.OrderedDict called with arguments"); return NULL; }
        return new_obj(vm, K_DICT);
    case G_REBUILD_TENSOR_V2: {
        /* (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
        int64_t off;
        Tensor t = {0};
        int nds = 0;
        if ((args->n != 6 && args->n != 7) || a[0]->kind != K_STORAGE || int_in(a[1], 0, INT64_MAX, &off) ||
            int_tuple(a[2], t.shape, &t.nd) || int_tuple(a[3], t.stride, &nds) || nds != t.nd || a[4]->kind != K_BOOL ||
            (a[5]->kind != K_DICT && a[5]->kind != K_NONE)) {
            char m[200];
            snprintf(m, sizeof m, "torch._utils._rebuild_tensor_v2 called with arguments other than (storage, offset, size, stride, "
                                  "requires_grad, hooks), or more than %d dimensions", ST_MAX_DIMS);
            fail(vm, m);
            return NULL;
        }
        t.storage = a[0];
        t.offset = (uint64_t)off;
        Obj *o = new_obj(vm, K_TENSOR);
        if (o) {
            o->u.t = ob_malloc(sizeof t);
            *o->u.t = t;
        }
        return o;
    }
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_STATE:
        if (args->n != (fn->u.i == G_REBUILD_PARAMETER ? 3u : 4u) || a[0]->kind != K_TENSOR || a[1]->kind != K_BOOL) {
            fail(vm, "torch._utils._rebuild_parameter called with arguments other than (tensor, requires_grad, hooks)");
            return NULL;
        }
        return a[0];
    default: {
        char m[160];
        snprintf(m, sizeof m, "torch.%s called as a function (only a persistent id names a storage class)",
                 storages[fn->u.i - G_STORAGE].name);
        fail(vm, m);
        return NULL;
    }
    }
}

enum {
    OP_MARK = '(', OP_STOP = '.', OP_BINFLOAT = 'G', OP_BININT = 'J', OP_BININT1 = 'K', OP_BININT2 = 'M', OP_NONE = 'N',
    OP_BINPERSID = 'Q', OP_REDUCE = 'R', OP_BINUNICODE = 'X', OP_APPEND = 'a', OP_BUILD = 'b', OP_GLOBAL = 'c',
    OP_APPENDS = 'e', OP_BINGET = 'h', OP_LONG_BINGET = 'j', OP_EMPTY_LIST = ']', OP_BINPUT = 'q', OP_LONG_BINPUT = 'r',
    OP_SETITEM = 's', OP_TUPLE = 't', OP_SETITEMS = 'u', OP_EMPTY_DICT = '}', OP_EMPTY_TUPLE = ')', OP_PROTO = 0x80,
    OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87, OP_NEWTRUE = 0x88, OP_NEWFALSE = 0x89, OP_LONG1 = 0x8a,
};

/* one line of a GLOBAL operand (module or name), without its newline */
static const char *global_line(VM *vm, size_t *len)
{
    const uint8_t *s = vm->p + vm->pos, *nl = memchr(s, '\n', vm->n - vm->pos < 256 ? vm->n - vm->pos : 256);
    if (!nl) { fail(vm, "GLOBAL without a newline-terminated module and name (at most 255 bytes)"); return NULL; }
    *len = (size_t)(nl - s);
    vm->pos += *len + 1;
    return (const char *)s;
}

static int memo_index(VM *vm, int op, size_t *idx)
{
    const uint8_t *a = arg(vm, op == OP_BINPUT || op == OP_BINGET ? 1 : 4);
    if (!a) return -1;
    *idx = op == OP_BINPUT || op == OP_BINGET ? a[0] : file_get_u32le(a);
    return 0;
}

/* run the pickle; *result gets what STOP returns */
static int run(VM *vm, Obj **result)
{
    for (;;) {
        vm->op_at = vm->pos;
        const uint8_t *a = arg(vm, 1);
        if (!a) return -1;
        int op = a[0];
        Obj *o = NULL, *x, *y;
        switch (op) {
        case OP_PROTO:
            if (!(a = arg(vm, 1))) return -1;
            if (a[0] != 2) {
                char m[80];
                snprintf(m, sizeof m, "pickle protocol %d (torch.save writes protocol 2)", a[0]);
                return fail(vm, m);
            }
            continue;
        case OP_STOP:
            if (vm->nmarks || vm->nst != 1) return fail(vm, "STOP with other than one object on the stack");
            *result = vm->st[0];
            return 0;
        case OP_MARK:
            if (vm->nmarks == TORCH_MAX_DEPTH) {
                char m[64];
                snprintf(m, sizeof m, "MARKs nested deeper than %d", TORCH_MAX_DEPTH);
                return fail(vm, m);
            }
            vm->marks[vm->nmarks++] = vm->nst;
            continue;
        case OP_NONE: o = &vm->none; break;
        case OP_NEWTRUE: o = &vm->yes; break;
        case OP_NEWFALSE: o = &vm->no; break;
        case OP_BININT:
            if (!(a = arg(vm, 4))) return -1;
            o = new_int(vm, (int32_t)file_get_u32le(a));
            break;
        case OP_BININT1:
            if (!(a = arg(vm, 1))) return -1;
            o = new_int(vm, a[0]);
            break;
        case OP_BININT2:
            if (!(a = arg(vm, 2))) return -1;
            o = new_int(vm, get16(a));
            break;
        case OP_LONG1: {
            if (!(a = arg(vm, 1))) return -1;
            size_t n = a[0];
            if (n > 8) return fail(vm, "LONG1 of more than 8 bytes");
            if (!(a = arg(vm, n))) return -1;
            uint64_t v = 0;
            for (size_t i = 0; i < n; i++) v |= (uint64_t)a[i] << (8 * i);
            if (n && n < 8 && (a[n - 1] & 0x80)) v |= ~UINT64_C(0) << (8 * n); /* sign-extend */
            int64_t sv;
            memcpy(&sv, &v, 8);
            o = new_int(vm, sv);
            break;
        }
        case OP_BINFLOAT:
            if (!(a = arg(vm, 8))) return -1;
            o = new_obj(vm, K_FLOAT); /* the value itself is never needed */
            break;
        case OP_BINUNICODE: {
            if (!(a = arg(vm, 4))) return -1;
            uint32_t n = file_get_u32le(a);
            if (!(a = arg(vm, n))) return -1;
            if ((o = new_obj(vm, K_STR))) {
                o->u.s = (const char *)a;
                o->n = n;
            }
            break;
        }
        case OP_EMPTY_TUPLE: o = new_obj(vm, K_TUPLE); break;
        case OP_EMPTY_LIST: o = new_obj(vm, K_LIST); break;
        case OP_EMPTY_DICT: o = new_obj(vm, K_DICT); break;
        case OP_TUPLE: o = pop_mark(vm, K_TUPLE); break;
        case OP_TUPLE1:
        case OP_TUPLE2:
        case OP_TUPLE3: {
            int k = op - OP_TUPLE1 + 1;
            Obj *it[3];
            for (int i = k - 1; i >= 0; i--)
                if (!(it[i] = pop(vm))) return -1;
            o = new_seq(vm, K_TUPLE, it, k);
            break;
        }
        case OP_APPEND:
            if (!(x = pop(vm)) || !(y = pop(vm))) return -1;
            if (y->kind != K_LIST) return fail(vm, "APPEND to something that is not a list");
            if (add_item(vm, y, x)) return -1;
            o = y;
            break;
        case OP_SETITEM:
            if (!(x = pop(vm)) || !(y = pop(vm)) || !(o = pop(vm))) return -1;
            if (o->kind != K_DICT) return fail(vm, "SETITEM on something that is not a dict");
            if (add_item(vm, o, y) || add_item(vm, o, x)) return -1;
            break;
        case OP_APPENDS:
        case OP_SETITEMS: {
            Obj *items = pop_mark(vm, K_TUPLE);
            if (!items || !(o = pop(vm))) return -1;
            if (o->kind != (op == OP_APPENDS ? K_LIST : K_DICT))
                return fail(vm, op == OP_APPENDS ? "APPENDS to something that is not a list" : "SETITEMS on something that is not a dict");
            if (op == OP_SETITEMS && items->n % 2) return fail(vm, "SETITEMS with an odd number of items");
            for (size_t i = 0; i < items->n; i++)
                if (add_item(vm, o, items->u.seq.v[i])) return -1;
            break;
        }
        case OP_BINPUT:
        case OP_LONG_BINPUT: {
            size_t idx;
            if (memo_index(vm, op, &idx)) return -1;
            if (!vm->nst) return fail(vm, "stack underflow (PUT on an empty stack)");
            if (idx >= TORCH_MAX_MEMO) {
                char m[80];
                snprintf(m, sizeof m, "memo index %zu is above the limit of %u", idx, TORCH_MAX_MEMO);
                return fail(vm, m);
            }
            while (vm->nmemo <= idx) {
                vm->memo = ob_grow(vm->memo, vm->nmemo, &vm->capmemo, 64, sizeof *vm->memo);
                vm->memo[vm->nmemo++] = NULL;
            }
            vm->memo[idx] = vm->st[vm->nst - 1];
            continue;
        }
        case OP_BINGET:
        case OP_LONG_BINGET: {
            size_t idx;
            if (memo_index(vm, op, &idx)) return -1;
            if (idx >= vm->nmemo || !vm->memo[idx]) {
                char m[96];
                snprintf(m, sizeof m, "memo index %zu out of range (%zu memo slots)", idx, vm->nmemo);
                return fail(vm, m);
            }
            o = vm->memo[idx];
            break;
        }
        case OP_GLOBAL: {
            size_t ml, nl;
            const char *mod = global_line(vm, &ml), *name = mod ? global_line(vm, &nl) : NULL;
            if (!name) return -1;
            int g = lookup_global(mod, ml, name, nl);
            if (g < 0) {
                char mb[128], nb[128], m[OB_ERRLEN];
                st_show(mb, sizeof mb, mod, ml);
                st_show(nb, sizeof nb, name, nl);
                snprintf(m, sizeof m,
                         "global %s.%s is not allowed (a state dict needs only collections.OrderedDict, "
                         "torch._utils._rebuild_tensor_v2 and _rebuild_parameter, and the torch.*Storage classes)", mb, nb);
                return fail(vm, m);
            }
            if ((o = new_obj(vm, K_GLOBAL))) o->u.i = g;
            break;
        }
        case OP_REDUCE:
            if (!(x = pop(vm)) || !(y = pop(vm))) return -1;
            o = reduce(vm, y, x);
            if (!o) return -1;
            break;
        case OP_BUILD:
            if (!(x = pop(vm)) || !(o = pop(vm))) return -1;
            if (o->kind != K_DICT || (x->kind != K_DICT && x->kind != K_NONE))
                return fail(vm, "BUILD other than an OrderedDict's attributes (its _metadata)");
            break; /* the attributes (_metadata) are not needed */
        case OP_BINPERSID:
            if (!(x = pop(vm))) return -1;
            if (!(o = persistent_load(vm, x))) return -1;
            break;
        default: {
            char m[96];
            snprintf(m, sizeof m, "opcode 0x%02x is not one that torch.save's protocol-2 pickles use", op);
            return fail(vm, m);
        }
        }
        if (push(vm, o)) return -1;
    }
}

/* ---- the state dict --------------------------------------------------------*/

static int add_tensor(STFile *f, size_t *cap, const Obj *key, const Tensor *t, const Zip *z, char *err)
{
    char nb[96];
    st_show(nb, sizeof nb, key->u.s, key->n);
    if (memchr(key->u.s, 0, key->n)) { ob_seterr(err, "tensor name %s has a NUL byte", nb); return -1; }
    const ZEntry *e = t->storage->u.sto.entry;
    uint64_t es = 0;
    for (int i = 0; i < N_STORAGES; i++)
        if (storages[i].dtype == e->dtype) es = (uint64_t)storages[i].size;
    uint64_t ne = 1, expect = 1;
    for (int d = 0; d < t->nd; d++) {
        uint64_t s = (uint64_t)t->shape[d];
        if (s && ne > (UINT64_C(1) << 60) / s) { ob_seterr(err, "tensor %s: shape product overflows", nb); return -1; }
        ne *= s;
    }
    for (int d = t->nd - 1; d >= 0 && ne; d--) {
        if (t->shape[d] != 1 && (uint64_t)t->stride[d] != expect) {
            ob_seterr(err, "tensor %s: strides are not those of a contiguous tensor (dimension %d has stride %lld, want %llu)", nb, d,
                      (long long)t->stride[d], (unsigned long long)expect);
            return -1;
        }
        expect *= (uint64_t)t->shape[d];
    }
    uint64_t numel = t->storage->u.sto.numel;
    if (t->offset > numel || ne > numel - t->offset) {
        ob_seterr(err, "tensor %s: elements [%llu, %llu) run past its storage of %llu elements", nb, (unsigned long long)t->offset,
                  (unsigned long long)(t->offset + ne), (unsigned long long)numel);
        return -1;
    }
    const uint8_t *data;
    if (zip_data(z, e, &data, err)) return -1;
    if (f->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        f->t = realloc(f->t, *cap * sizeof *f->t);
        if (!f->t) abort();
    }
    STTensor *s = &f->t[f->n++];
    memset(s, 0, sizeof *s);
    s->name = ob_malloc(key->n + 1);
    memcpy(s->name, key->u.s, key->n);
    s->name[key->n] = 0;
    s->dtype = e->dtype;
    s->n_dims = t->nd;
    for (int d = 0; d < t->nd; d++) s->shape[d] = (uint64_t)t->shape[d];
    s->n_elems = ne;
    s->begin = (uint64_t)(data - z->p) + t->offset * es;
    s->end = s->begin + ne * es;
    return 0;
}

int torch_is_zip(const unsigned char *head, size_t n)
{
    return n >= 4 && head[0] == 'P' && head[1] == 'K' && ((head[2] == 3 && head[3] == 4) || (head[2] == 5 && head[3] == 6));
}

int torch_parse(STFile *f, const void *data, size_t size, char *err)
{
    memset(f, 0, sizeof *f);
    Zip z;
    VM vm;
    memset(&vm, 0, sizeof vm);
    int rc = -1;
    if (zip_open(&z, data, size, err)) goto out;
    char bo[300];
    snprintf(bo, sizeof bo, "%.*s/byteorder", (int)z.plen, z.pkl->name);
    const ZEntry *be = zip_find(&z, bo, strlen(bo));
    const uint8_t *p;
    if (be) {
        if (zip_data(&z, be, &p, err)) goto out;
        if (be->usize != 6 || memcmp(p, "little", 6)) { ob_seterr(err, "the storages are not little-endian (%s)", bo); goto out; }
    }
    if (zip_data(&z, z.pkl, &p, err)) goto out;
    vm.p = p;
    vm.n = (size_t)z.pkl->usize;
    vm.z = &z;
    vm.err = err;
    vm.none.kind = K_NONE;
    vm.yes.kind = vm.no.kind = K_BOOL;
    vm.yes.u.i = 1;
    Obj *top = NULL; /* run() sets it when it returns 0 */
    if (run(&vm, &top)) goto out;
    if (top->kind != K_DICT) { ob_seterr(err, "data.pkl holds a %s, not a state dict", kind_names[top->kind]); goto out; }
    f->base = data;
    f->data_size = size;
    size_t cap = 0;
    for (size_t i = 0; i + 1 < top->n; i += 2) {
        const Obj *k = top->u.seq.v[i], *v = top->u.seq.v[i + 1];
        if (k->kind != K_STR || v->kind != K_TENSOR) continue;
        if (add_tensor(f, &cap, k, v->u.t, &z, err)) goto out;
    }
    rc = st_index(f, err);
out:
    free_vm(&vm);
    free(z.e);
    if (rc) st_free(f);
    return rc;
}
