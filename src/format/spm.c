/* spm.c -- SentencePiece tokenizer.model reader (see spm.h): a protobuf
 * wire-format walker that checks every varint and length against the end of
 * its message, then tok_init_spm on the pieces; and a writer of the same
 * messages. */
#include "format/spm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/file.h"

/* one message's bytes [p, end) */
typedef struct { const unsigned char *p, *end; } Pb;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* a varint of at most 10 bytes; -1 when it runs past the end or longer */
static int pb_varint(Pb *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end) return -1;
        unsigned char b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) { *v = x; return 0; }
    }
    return -1;
}

/* the next field's number, wire type and, for WT_LEN, its bytes (*sub);
 * the value of WT_VARINT/WT_I32/WT_I64 in *v. 1 at the end, 0 for a
 * field, -1 (err) for a malformed one. */
static int pb_field(Pb *r, uint32_t *field, int *wt, uint64_t *v, Pb *sub, const char *what, char *err)
{
    if (r->p >= r->end) return 1;
    uint64_t key;
    if (pb_varint(r, &key)) { ob_seterr(err, "%s: truncated field key", what); return -1; }
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    if (key >> 3 == 0 || key >> 3 > 0x1fffffff) { ob_seterr(err, "%s: bad field number %llu", what, (unsigned long long)(key >> 3)); return -1; }
    size_t left = (size_t)(r->end - r->p);
    switch (*wt) {
    case WT_VARINT:
        if (pb_varint(r, v)) { ob_seterr(err, "%s: field %u: truncated varint", what, *field); return -1; }
        return 0;
    case WT_I64:
    case WT_I32: {
        size_t k = *wt == WT_I32 ? 4 : 8;
        if (left < k) { ob_seterr(err, "%s: field %u: fixed-size value past the end", what, *field); return -1; }
        uint64_t x = 0;
        for (size_t i = 0; i < k; i++) x |= (uint64_t)r->p[i] << (8 * i);
        r->p += k;
        *v = x;
        return 0;
    }
    case WT_LEN: {
        uint64_t n;
        if (pb_varint(r, &n)) { ob_seterr(err, "%s: field %u: truncated length", what, *field); return -1; }
        left = (size_t)(r->end - r->p);
        if (n > left) {
            ob_seterr(err, "%s: field %u: length %llu past the end (%zu bytes left)", what, *field, (unsigned long long)n, left);
            return -1;
        }
        sub->p = r->p;
        sub->end = r->p + n;
        r->p += n;
        return 0;
    }
    default:
        ob_seterr(err, "%s: field %u: unsupported wire type %d", what, *field, *wt);
        return -1;
    }
}

/* an int32 field (negative ones are 10-byte varints) */
static int32_t pb_i32(uint64_t v) { return (int32_t)(uint32_t)v; }

int spm_probe(const unsigned char *head, size_t n)
{
    Pb r = {head, head + n};
    uint64_t key, len;
    if (pb_varint(&r, &key) || key != ((1u << 3) | WT_LEN) || pb_varint(&r, &len) || len < 2) return 0;
    /* the piece message starts with its piece string (field 1) */
    if (pb_varint(&r, &key) || key != ((1u << 3) | WT_LEN) || pb_varint(&r, &len)) return 0;
    return 1;
}

typedef struct {
    int model_type;       /* 1 unigram, 2 BPE, 3 word, 4 char */
    int byte_fallback;
    int unk_id, bos_id, eos_id;
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
} SpmSpec;

static int read_specs(Pb sub, uint32_t which, SpmSpec *s, char *err)
{
    uint32_t f;
    int wt, rc;
    uint64_t v;
    Pb inner;
    const char *what = which == 2 ? "trainer_spec" : "normalizer_spec";
    while ((rc = pb_field(&sub, &f, &wt, &v, &inner, what, err)) == 0) {
        if (wt != WT_VARINT) continue;
        if (which == 2) {
            if (f == 3) s->model_type = pb_i32(v);
            else if (f == 35) s->byte_fallback = v != 0;
            else if (f == 40) s->unk_id = pb_i32(v);
            else if (f == 41) s->bos_id = pb_i32(v);
            else if (f == 42) s->eos_id = pb_i32(v);
        } else {
            if (f == 3) s->add_dummy_prefix = v != 0;
            else if (f == 4) s->remove_extra_whitespaces = v != 0;
            else if (f == 5) s->escape_whitespaces = v != 0;
        }
    }
    return rc < 0 ? -1 : 0;
}

/* one SentencePiece message: piece (1), score (2, float), type (3) */
static int read_piece(Pb sub, int idx, char **piece, float *score, int *type, char *err)
{
    uint32_t f;
    int wt, rc;
    uint64_t v;
    Pb s = {NULL, NULL};
    char what[48];
    snprintf(what, sizeof what, "piece %d", idx);
    *score = 0.0f;
    *type = 1;
    while ((rc = pb_field(&sub, &f, &wt, &v, &s, what, err)) == 0) {
        if (f == 1 && wt == WT_LEN) {
            size_t n = (size_t)(s.end - s.p);
            if (n > 4096) { ob_seterr(err, "%s: %zu bytes long (at most 4096)", what, n); return -1; }
            free(*piece);
            *piece = ob_malloc(n + 1);
            memcpy(*piece, s.p, n);
            (*piece)[n] = 0; /* a piece ends at an embedded NUL, as tok_load reads them */
        } else if (f == 2 && wt == WT_I32) {
            uint32_t u = (uint32_t)v;
            memcpy(score, &u, 4);
        } else if (f == 3 && wt == WT_VARINT) *type = pb_i32(v);
        else if (f <= 3) { ob_seterr(err, "%s: field %u has wire type %d", what, f, wt); return -1; }
    }
    if (rc < 0) return -1;
    if (!*piece) { ob_seterr(err, "%s has no piece string", what); return -1; }
    return 0;
}

int spm_parse(Tokenizer *t, const unsigned char *buf, size_t len, int vocab_size, char *err)
{
    memset(t, 0, sizeof *t);
    SpmSpec s = {.model_type = 1, .unk_id = 0, .bos_id = 1, .eos_id = 2,
                 .add_dummy_prefix = 1, .remove_extra_whitespaces = 1, .escape_whitespaces = 1};
    Pb r = {buf, buf + len}, sub;
    uint32_t f;
    int wt, rc, n = 0;
    uint64_t v;
    /* pass 1: count the pieces, read the specs */
    while ((rc = pb_field(&r, &f, &wt, &v, &sub, "ModelProto", err)) == 0) {
        if (wt != WT_LEN) continue;
        if (f == 1) {
            if (++n > (1 << 22)) { ob_seterr(err, "more than %d pieces", 1 << 22); return -1; }
        } else if ((f == 2 || f == 3) && read_specs(sub, f, &s, err)) return -1;
    }
    if (rc < 0) return -1;
    if (n == 0) { ob_seterr(err, "no pieces (not a SentencePiece model)"); return -1; }
    if (s.model_type != 1 && s.model_type != 2) {
        ob_seterr(err, "model type %d is not supported (BPE or Unigram)", s.model_type);
        return -1;
    }
    int nv = n;
    if (vocab_size > 0) {
        if (n > vocab_size) { ob_seterr(err, "%d pieces, more than the model's vocabulary of %d", n, vocab_size); return -1; }
        nv = vocab_size;
    }
    char **pieces = ob_calloc((size_t)nv, sizeof(char *));
    float *scores = ob_calloc((size_t)nv, sizeof(float));
    int *types = ob_calloc((size_t)nv, sizeof(int));
    /* pass 2: the pieces (pass 1 checked every length) */
    r = (Pb){buf, buf + len};
    int i = 0;
    rc = -1;
    while (pb_field(&r, &f, &wt, &v, &sub, "ModelProto", err) == 0)
        if (f == 1 && wt == WT_LEN) {
            if (read_piece(sub, i, &pieces[i], &scores[i], &types[i], err)) goto out;
            i++;
        }
    for (; i < nv; i++) { pieces[i] = ob_strdup(""); scores[i] = -1e30f; types[i] = 5; }
    if (nv < 3) { ob_seterr(err, "only %d pieces", nv); goto out; }
    const char *ids[] = {"unk", "bos", "eos"};
    int idv[] = {s.unk_id, s.bos_id, s.eos_id};
    for (int k = 0; k < 3; k++)
        if (idv[k] < 0 || idv[k] >= n) {
            ob_seterr(err, "trainer_spec %s_id %d is not a piece (0..%d)", ids[k], idv[k], n - 1);
            goto out;
        }
    /* llama2.c's tokenizer.py: BOS and EOS stand out in decoded text */
    free(pieces[s.bos_id]);
    pieces[s.bos_id] = ob_strdup("\n<s>\n");
    if (s.eos_id != s.bos_id) {
        free(pieces[s.eos_id]);
        pieces[s.eos_id] = ob_strdup("\n</s>\n");
    }
    /* types only for the padding: llama2.c keeps every score as it is */
    for (int k = 0; k < n; k++) types[k] = 1;
    if (tok_init_spm(t, nv, (const char *const *)pieces, scores, types, s.bos_id, s.eos_id, s.unk_id, err)) goto out;
    if (!s.byte_fallback) t->byte_base = -1;
    t->no_dummy_prefix = !s.add_dummy_prefix;
    t->squeeze_spaces = s.remove_extra_whitespaces;
    rc = 0;
out:
    for (int k = 0; k < nv; k++) free(pieces[k]);
    free(pieces);
    free(scores);
    free(types);
    return rc;
}

static int parse_bytes(Tokenizer *t, const char *data, size_t len, int vocab_size, char *err)
{
    return spm_parse(t, (const unsigned char *)data, len, vocab_size, err);
}

int spm_load(Tokenizer *t, const char *path, int vocab_size, char *err)
{
    return tok_load_file(t, path, vocab_size, parse_bytes, err);
}

/* ---- writer ----------------------------------------------------------------*/

static void po_varint(ObBuf *o, uint64_t v)
{
    unsigned char c[10];
    size_t k = 0;
    while (v >= 0x80) { c[k++] = (unsigned char)(v | 0x80); v >>= 7; }
    c[k++] = (unsigned char)v;
    ob_buf_put(o, c, k);
}
static void po_int(ObBuf *o, uint32_t f, int64_t v) { po_varint(o, (uint64_t)f << 3 | WT_VARINT); po_varint(o, (uint64_t)v); }
static void po_bytes(ObBuf *o, uint32_t f, const void *p, size_t n)
{
    po_varint(o, (uint64_t)f << 3 | WT_LEN);
    po_varint(o, n);
    ob_buf_put(o, p, n);
}

int spm_write(const Tokenizer *t, const char *path, char *err)
{
    if (t->mode != TOK_SPM || t->vocab_size < 3) { ob_seterr(err, "%s: only a SentencePiece-style tokenizer can be written as a tokenizer.model", path); return -1; }
    ObBuf o = {0}, p = {0}, sp = {0};
    for (int i = 0; i < t->vocab_size; i++) {
        const char *v = t->vocab[i];
        sp.n = 0;
        if (i == t->bos_id && !strcmp(v, "\n<s>\n")) v = "<s>";
        else if (i == t->eos_id && !strcmp(v, "\n</s>\n")) v = "</s>";
        for (; *v; v++) {
            if (*v == ' ') ob_buf_put(&sp, "\xe2\x96\x81", 3);
            else ob_buf_put(&sp, v, 1);
        }
        int type = i == t->unk_id ? 2 : i == t->bos_id || i == t->eos_id ? 3
                   : t->byte_base >= 0 && i >= t->byte_base && i < t->byte_base + 256 ? 6 : t->vocab_len[i] == 0 ? 5 : 1;
        p.n = 0;
        po_bytes(&p, 1, sp.s ? sp.s : "", sp.n);
        uint32_t u;
        memcpy(&u, &t->scores[i], 4);
        unsigned char le[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16), (unsigned char)(u >> 24)};
        po_varint(&p, 2u << 3 | WT_I32);
        ob_buf_put(&p, le, 4);
        if (type != 1) po_int(&p, 3, type);
        po_bytes(&o, 1, p.s, p.n);
    }
    p.n = 0; /* trainer_spec */
    po_int(&p, 3, 2);
    po_int(&p, 4, t->vocab_size);
    po_int(&p, 35, t->byte_base >= 0);
    po_int(&p, 40, t->unk_id);
    po_int(&p, 41, t->bos_id);
    po_int(&p, 42, t->eos_id);
    po_int(&p, 43, -1);
    po_bytes(&o, 2, p.s, p.n);
    p.n = 0; /* normalizer_spec */
    po_bytes(&p, 1, "identity", 8);
    po_int(&p, 3, !t->no_dummy_prefix);
    po_int(&p, 4, t->squeeze_spaces);
    po_int(&p, 5, 1);
    po_bytes(&o, 3, p.s, p.n);
    int rc = file_write_atomic(path, o.s, o.n, err);
    free(o.s);
    free(p.s);
    free(sp.s);
    return rc;
}
