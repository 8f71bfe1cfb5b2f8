/* tokenizer.c -- llama2.c-compatible BPE tokenizer. Encoding gives exactly
 * llama2.c's ids (greedy highest-score merge, leftmost on ties) but in
 * O(n log n) with a heap over a linked list of symbols, so whole corpora can
 * be encoded at once. Also byte-level BPE (GPT-2 style, merge ranks) with the
 * same heap, after a pre-tokenizer that follows the GPT-2 / Llama 3 split
 * regexes (Unicode letters approximated: every non-ASCII code point that is
 * not a space or general punctuation counts as a letter). Reads llama2.c
 * tokenizer.bin and Hugging Face tokenizer.json (cJSON). */
#include "format/tokenizer.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/common.h"

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    return h;
}

int tok_lookup(const Tokenizer *t, const char *piece, size_t len)
{
    size_t mask = t->hash_cap - 1, i = hash_bytes(piece, len) & mask;
    for (;;) {
        int id = t->hash[i];
        if (id < 0) return -1;
        if ((size_t)t->vocab_len[id] == len && memcmp(t->vocab[id], piece, len) == 0) return id;
        i = (i + 1) & mask;
    }
}

static void build_index(Tokenizer *t)
{
    size_t cap = 16;
    while (cap < (size_t)t->vocab_size * 2) cap <<= 1;
    t->hash_cap = cap;
    t->hash = ob_malloc(cap * sizeof(int));
    for (size_t i = 0; i < cap; i++) t->hash[i] = -1;
    for (int id = 0; id < t->vocab_size; id++) {
        size_t i = hash_bytes(t->vocab[id], t->vocab_len[id]) & (cap - 1);
        int dup = 0;
        while (t->hash[i] >= 0) {
            int o = t->hash[i];
            if (t->vocab_len[o] == t->vocab_len[id] && memcmp(t->vocab[o], t->vocab[id], t->vocab_len[id]) == 0) { dup = 1; break; }
            i = (i + 1) & (cap - 1);
        }
        if (!dup) t->hash[i] = id; /* first id wins for duplicate pieces */
    }
    for (int i = 0; i < 256; i++) { t->byte_pieces[i * 2] = (unsigned char)i; t->byte_pieces[i * 2 + 1] = 0; }
    /* byte fallback: llama2.c assumes <0x00> at id 3; check it is there */
    t->byte_base = -1;
    int id0 = tok_lookup(t, "<0x00>", 6);
    if (id0 >= 0 && id0 + 255 < t->vocab_size && tok_lookup(t, "<0xFF>", 6) == id0 + 255) t->byte_base = id0;
}

int tok_load(Tokenizer *t, const char *path, int vocab_size, char *err)
{
    memset(t, 0, sizeof *t);
    char *data;
    size_t len;
    if (ob_read_file(path, &data, &len, err)) return -1;
    size_t off = 0;
    int32_t maxlen;
    if (len < 4) { ob_seterr(err, "%s: too short for a tokenizer", path); free(data); return -1; }
    memcpy(&maxlen, data, 4);
    off = 4;
    if (maxlen <= 0 || maxlen > 1 << 16) { ob_seterr(err, "%s: bad max_token_length %d", path, maxlen); free(data); return -1; }
    int cap = vocab_size > 0 ? vocab_size : 1024, n = 0;
    if (vocab_size > (1 << 22)) { ob_seterr(err, "%s: vocab size %d too large", path, vocab_size); free(data); return -1; }
    t->vocab = ob_malloc(cap * sizeof(char *));
    t->vocab_len = ob_malloc(cap * sizeof(int));
    t->scores = ob_malloc(cap * sizeof(float));
    while (vocab_size > 0 ? n < vocab_size : off < len) {
        float score;
        int32_t l;
        if (len - off < 8) {
            ob_seterr(err, "%s: truncated at token %d (expected %d tokens)", path, n, vocab_size > 0 ? vocab_size : n + 1);
            goto fail;
        }
        memcpy(&score, data + off, 4);
        memcpy(&l, data + off + 4, 4);
        off += 8;
        if (l < 0 || l > maxlen || (size_t)l > len - off) {
            ob_seterr(err, "%s: token %d has length %d past the end of the file or above max_token_length %d", path, n, l, maxlen);
            goto fail;
        }
        if (n == cap) {
            cap *= 2;
            t->vocab = realloc(t->vocab, cap * sizeof(char *));
            t->vocab_len = realloc(t->vocab_len, cap * sizeof(int));
            t->scores = realloc(t->scores, cap * sizeof(float));
            if (!t->vocab || !t->vocab_len || !t->scores) { fprintf(stderr, "error: out of memory\n"); exit(1); }
        }
        t->vocab[n] = ob_malloc((size_t)l + 1);
        memcpy(t->vocab[n], data + off, l);
        t->vocab[n][l] = 0;
        t->vocab_len[n] = (int)strlen(t->vocab[n]); /* a piece ends at an embedded NUL, as in llama2.c */
        t->scores[n] = score;
        off += l;
        n++;
        t->vocab_size = n;
    }
    if (n < 3) { ob_seterr(err, "%s: only %d tokens", path, n); goto fail; }
    free(data);
    t->max_token_length = maxlen;
    t->bos_id = 1;
    t->eos_id = 2;
    build_index(t);
    return 0;
fail:
    free(data);
    tok_free(t);
    return -1;
}

int tok_init(Tokenizer *t, int n, const char *const *pieces, const float *scores, int bos_id, int eos_id, char *err)
{
    memset(t, 0, sizeof *t);
    if (n < 3 || n > (1 << 22)) { ob_seterr(err, "bad vocabulary size %d", n); return -1; }
    if (bos_id < 0 || bos_id >= n || eos_id < 0 || eos_id >= n) { ob_seterr(err, "bad bos/eos ids %d/%d", bos_id, eos_id); return -1; }
    t->vocab = ob_malloc(n * sizeof(char *));
    t->vocab_len = ob_malloc(n * sizeof(int));
    t->scores = ob_malloc(n * sizeof(float));
    int maxlen = 1;
    for (int i = 0; i < n; i++) {
        t->vocab[i] = ob_strdup(pieces[i]);
        t->vocab_len[i] = (int)strlen(pieces[i]);
        if (t->vocab_len[i] > maxlen) maxlen = t->vocab_len[i];
        t->scores[i] = scores ? scores[i] : 0.0f;
        t->vocab_size = i + 1;
    }
    t->max_token_length = maxlen;
    t->bos_id = bos_id;
    t->eos_id = eos_id;
    build_index(t);
    return 0;
}

void tok_free(Tokenizer *t)
{
    if (!t) return;
    if (t->vocab) for (int i = 0; i < t->vocab_size; i++) free(t->vocab[i]);
    free(t->vocab);
    free(t->vocab_len);
    free(t->scores);
    free(t->hash);
    free(t->merges);
    free(t->mhash);
    free(t->chat_template);
    memset(t, 0, sizeof *t);
}

/* ---- encode ------------------------------------------------------------ */

/* pair (left, next(left)); symbol positions are 64-bit (a corpus may hold
 * more than 2^31 symbols); seq stamps both symbols' versions */
typedef struct { float score; int64_t left, right_id; int merged; uint32_t seq; } Cand;

typedef struct { Cand *a; size_t n, cap; } Heap;

/* higher score first; on equal score the leftmost pair, as llama2.c's scan */
static int cand_before(const Cand *x, const Cand *y)
{
    if (x->score != y->score) return x->score > y->score;
    return x->left < y->left;
}

static void heap_push(Heap *h, Cand c)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 256;
        h->a = realloc(h->a, h->cap * sizeof(Cand));
        if (!h->a) { fprintf(stderr, "error: out of memory\n"); exit(1); }
    }
    size_t i = h->n++;
    h->a[i] = c;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&h->a[i], &h->a[p])) break;
        Cand tmp = h->a[i]; h->a[i] = h->a[p]; h->a[p] = tmp;
        i = p;
    }
}

static Cand heap_pop(Heap *h)
{
    Cand top = h->a[0];
    h->a[0] = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, b = i;
        if (l < h->n && cand_before(&h->a[l], &h->a[b])) b = l;
        if (r < h->n && cand_before(&h->a[r], &h->a[b])) b = r;
        if (b == i) break;
        Cand tmp = h->a[i]; h->a[i] = h->a[b]; h->a[b] = tmp;
        i = b;
    }
    return top;
}

typedef struct Enc {
    const Tokenizer *t;
    int *id;                      /* symbol tokens */
    int64_t *prev, *next;         /* symbol list */
    uint32_t *ver;                /* bumps when a symbol changes */
    char *buf;                    /* llama2.c mode: the concatenated pair */
    const int64_t *seg;           /* byte-level mode: pre-token of each symbol */
    Heap heap;
    void (*try_pair)(struct Enc *e, int64_t left); /* push the pair (left, next) if it merges */
} Enc;

#define STAMP(e, l, r) ((e)->ver[l] * 65536u + ((e)->ver[r] & 0xffffu))

/* The merge loop of both encoders: merge the best candidate pair until none
 * is left (the heap orders by score, then leftmost, as llama2.c's scan does),
 * with e->try_pair proposing the candidates. Compacts the surviving symbols
 * to the front of e->id and returns their count. */
static size_t bpe_merge(Enc *e, size_t n)
{
    e->prev = ob_malloc((n + 1) * sizeof(int64_t));
    e->next = ob_malloc((n + 1) * sizeof(int64_t));
    e->ver = ob_calloc(n + 1, sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) { e->prev[i] = (int64_t)i - 1; e->next[i] = i + 1 < n ? (int64_t)i + 1 : -1; }
    for (size_t i = 0; i + 1 < n; i++) e->try_pair(e, (int64_t)i);
    while (e->heap.n) {
        Cand c = heap_pop(&e->heap);
        int64_t left = c.left, right = c.right_id;
        if (e->id[left] < 0 || e->next[left] != right || e->id[right] < 0) continue;
        if (c.seq != STAMP(e, left, right)) continue;
        e->id[left] = c.merged;
        e->ver[left]++;
        e->id[right] = -1;
        e->next[left] = e->next[right];
        if (e->next[right] >= 0) e->prev[e->next[right]] = left;
        if (e->prev[left] >= 0) e->try_pair(e, e->prev[left]);
        e->try_pair(e, left);
    }
    size_t m = 0;
    for (int64_t i = n ? 0 : -1; i >= 0; i = e->next[i]) e->id[m++] = e->id[i]; /* m <= i: in place */
    free(e->prev); free(e->next); free(e->ver); free(e->heap.a);
    return m;
}

static void try_pair(Enc *e, int64_t left)
{
    int64_t right = e->next[left];
    if (right < 0) return;
    const Tokenizer *t = e->t;
    int a = e->id[left], b = e->id[right];
    size_t la = t->vocab_len[a], lb = t->vocab_len[b];
    memcpy(e->buf, t->vocab[a], la);
    memcpy(e->buf + la, t->vocab[b], lb);
    int id = tok_lookup(t, e->buf, la + lb);
    if (id < 0 || !(t->scores[id] > -1e10f)) return;
    /* stamp both versions so a stale candidate is recognised */
    heap_push(&e->heap, (Cand){t->scores[id], left, right, id, STAMP(e, left, right)});
}

static int encode_bytelevel(const Tokenizer *t, const char *text, int bos, int eos, int **out, size_t *n_out);

int tok_encode(const Tokenizer *t, const char *text, int bos, int eos, int **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!text || !t || t->vocab_size <= 0 || !t->vocab || !t->hash) { errno = EINVAL; return -1; }
    if (t->mode == TOK_BYTELEVEL) return encode_bytelevel(t, text, bos, eos, out, n_out);
    char *squeezed = NULL;
    if (t->squeeze_spaces) { /* SentencePiece's remove_extra_whitespaces */
        char *q = squeezed = ob_malloc(strlen(text) + 1);
        for (const char *c = text; *c; c++)
            if (*c != ' ' || (q > squeezed && q[-1] != ' ')) *q++ = *c;
        if (q > squeezed && q[-1] == ' ') q--;
        *q = 0;
        text = squeezed;
    }
    size_t tl = strlen(text);
    size_t cap = tl + 3;
    int *tok = ob_malloc(cap * sizeof(int));
    size_t n = 0;
    if (bos) tok[n++] = t->bos_id;
    if (text[0] != '\0' && !t->no_dummy_prefix) {
        int dummy = tok_lookup(t, " ", 1);
        if (dummy >= 0) tok[n++] = dummy;
    }
    char sb[8];
    size_t sl = 0;
    for (const char *c = text; *c; c++) {
        if ((*c & 0xC0) != 0x80) sl = 0;
        sb[sl++] = *c;
        if ((c[1] & 0xC0) == 0x80 && sl < 4) continue;
        int id = tok_lookup(t, sb, sl);
        if (id >= 0) tok[n++] = id;
        else if (t->byte_base >= 0) {
            for (size_t i = 0; i < sl; i++) tok[n++] = (unsigned char)sb[i] + t->byte_base;
        } else {
            int unk = t->unk_id; /* no byte fallback: the unknown token, as SentencePiece does */
            tok[n++] = unk;
        }
        sl = 0;
    }
    /* merges */
    Enc e = {0};
    e.t = t;
    e.id = tok;
    e.buf = ob_malloc((size_t)t->max_token_length * 2 + 8);
    e.try_pair = try_pair;
    size_t m = bpe_merge(&e, n);
    free(e.buf);
    free(squeezed);
    if (eos) tok[m++] = t->eos_id;
    *out = tok;
    *n_out = m;
    return 0;
}

/* ---- decode ------------------------------------------------------------ */

const char *tok_decode(const Tokenizer *t, int prev, int token)
{
    if (token < 0 || token >= t->vocab_size) return "";
    const char *piece = t->vocab[token];
    if (t->mode == TOK_BYTELEVEL) return piece;
    if (prev == t->bos_id && piece[0] == ' ') piece++;
    unsigned int b;
    if (piece[0] == '<' && piece[1] == '0' && piece[2] == 'x' && strlen(piece) == 6 && piece[5] == '>' &&
        sscanf(piece, "<0x%02X>", &b) == 1)
        return (const char *)t->byte_pieces + b * 2;
    return piece;
}

int tok_piece_printable(const char *piece)
{
    if (!piece || piece[0] == '\0') return 0;
    if (piece[1] == '\0') {
        unsigned char b = (unsigned char)piece[0];
        if (!(isprint(b) || isspace(b))) return 0;
    }
    return 1;
}

/* ---- SentencePiece vocabularies from GGUF / tokenizer.json -------------- */

int tok_init_spm(Tokenizer *t, int n, const char *const *pieces, const float *scores, const int *types,
                 int bos_id, int eos_id, int unk_id, char *err)
{
    memset(t, 0, sizeof *t);
    if (n < 3 || n > (1 << 22)) { ob_seterr(err, "bad vocabulary size %d", n); return -1; }
    if (unk_id < 0 || unk_id >= n) { ob_seterr(err, "bad unknown-token id %d", unk_id); return -1; }
    char **conv = ob_malloc((size_t)n * sizeof(char *));
    for (int i = 0; i < n; i++) {
        const char *p = pieces[i];
        char *q = conv[i] = ob_malloc(strlen(p) + 1);
        while (*p) {
            if ((unsigned char)p[0] == 0xe2 && (unsigned char)p[1] == 0x96 && (unsigned char)p[2] == 0x81) { *q++ = ' '; p += 3; }
            else *q++ = *p++;
        }
        *q = 0;
    }
    int rc = tok_init(t, n, (const char *const *)conv, scores, bos_id, eos_id, err);
    for (int i = 0; i < n; i++) free(conv[i]);
    free(conv);
    if (rc) return -1;
    t->unk_id = unk_id;
    /* unknown, control, unused and byte tokens are never merge results */
    if (types)
        for (int i = 0; i < n; i++)
            if (types[i] == 2 || types[i] == 3 || types[i] == 5 || types[i] == 6) t->scores[i] = -1e30f;
    return 0;
}

/* ---- byte-level BPE ----------------------------------------------------- */

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to
 * U+0100.. in order; u2b is the inverse for code points < 324 */
static void byte_unicode_tables(int b2u[256], int u2b[324])
{
    int k = 0;
    for (int i = 0; i < 324; i++) u2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        b2u[b] = keep ? b : 256 + k++;
        u2b[b2u[b]] = b;
    }
}

/* decode one UTF-8 code point at s[i] (n bytes left); invalid -> -1, len 1 */
static int utf8_cp(const unsigned char *s, size_t n, int *len)
{
    unsigned c = s[0];
    int l = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (l == 0 || (size_t)l > n) { *len = 1; return -1; }
    int cp = l == 1 ? (int)c : l == 2 ? (int)(c & 0x1f) : l == 3 ? (int)(c & 0x0f) : (int)(c & 0x07);
    for (int i = 1; i < l; i++) {
        if ((s[i] & 0xc0) != 0x80) { *len = 1; return -1; }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    *len = l;
    return cp;
}

/* the raw bytes of a piece in GPT-2 spelling; -1 if a code point is not one
 * of the 256 byte stand-ins */
static int unmap_piece(const char *piece, const int *u2b, char *out, int *out_len)
{
    const unsigned char *s = (const unsigned char *)piece;
    size_t n = strlen(piece), i = 0;
    int k = 0;
    while (i < n) {
        int l, cp = utf8_cp(s + i, n - i, &l);
        if (cp < 0 || cp >= 324 || u2b[cp] < 0) return -1;
        out[k++] = (char)u2b[cp];
        i += l;
    }
    *out_len = k;
    return 0;
}

static uint64_t pair_hash(int a, int b) { return ((uint64_t)(uint32_t)a * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)(uint32_t)b * 0xC2B2AE3D27D4EB4Full); }

static int merge_rank(const Tokenizer *t, int a, int b)
{
    size_t mask = t->mhash_cap - 1, i = (size_t)(pair_hash(a, b) >> 17) & mask;
    for (;;) {
        int r = t->mhash[i];
        if (r < 0) return -1;
        if (t->merges[r].a == a && t->merges[r].b == b) return r;
        i = (i + 1) & mask;
    }
}

int tok_init_bytelevel(Tokenizer *t, int n, const char *const *pieces, const int *types, int n_merges,
                       const char *const *merges, int bos_id, int eos_id, int pretok, char *err)
{
    memset(t, 0, sizeof *t);
    if (n < 1 || n > (1 << 22)) { ob_seterr(err, "bad vocabulary size %d", n); return -1; }
    if (n_merges < 0 || n_merges > (1 << 24)) { ob_seterr(err, "bad merge count %d", n_merges); return -1; }
    if (bos_id < -1 || bos_id >= n || eos_id < -1 || eos_id >= n) { ob_seterr(err, "bad bos/eos ids %d/%d", bos_id, eos_id); return -1; }
    int b2u[256], u2b[324];
    byte_unicode_tables(b2u, u2b);
    t->mode = TOK_BYTELEVEL;
    t->pretok = pretok;
    t->vocab = ob_malloc((size_t)n * sizeof(char *));
    t->vocab_len = ob_malloc((size_t)n * sizeof(int));
    t->scores = ob_calloc((size_t)n, sizeof(float));
    int maxlen = 1;
    for (int i = 0; i < n; i++) {
        size_t pl = strlen(pieces[i]);
        char *raw = ob_malloc(pl + 1);
        int rl;
        if ((types && types[i] == 3) || unmap_piece(pieces[i], u2b, raw, &rl)) { memcpy(raw, pieces[i], pl); rl = (int)pl; }
        raw[rl] = 0;
        t->vocab[i] = raw;
        t->vocab_len[i] = rl;
        if (rl > maxlen) maxlen = rl;
        t->vocab_size = i + 1;
    }
    t->max_token_length = maxlen;
    t->bos_id = bos_id;
    t->eos_id = eos_id;
    t->unk_id = -1;
    build_index(t);
    t->byte_base = -1;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_id[b] = tok_lookup(t, &c, 1);
    }
    t->merges = ob_malloc(((size_t)n_merges + 1) * sizeof *t->merges);
    size_t cap = 16;
    while (cap < (size_t)n_merges * 2) cap <<= 1;
    t->mhash_cap = cap;
    t->mhash = ob_malloc(cap * sizeof(int));
    for (size_t i = 0; i < cap; i++) t->mhash[i] = -1;
    char *buf = ob_malloc((size_t)maxlen * 2 + 8);
    for (int r = 0; r < n_merges; r++) {
        t->merges[r] = (struct TokMerge){-1, -1, -1};
        const char *m = merges[r], *sp = strchr(m, ' ');
        if (!sp || sp == m || !sp[1]) continue;
        size_t la = (size_t)(sp - m), lb = strlen(sp + 1);
        char *ma = ob_malloc(la + 1), *ra = ob_malloc(la + 1), *rb = ob_malloc(lb + 1);
        memcpy(ma, m, la);
        ma[la] = 0;
        int a = -1, b = -1, lra, lrb;
        if (!unmap_piece(ma, u2b, ra, &lra) && !unmap_piece(sp + 1, u2b, rb, &lrb)) {
            a = tok_lookup(t, ra, (size_t)lra);
            b = tok_lookup(t, rb, (size_t)lrb);
            if (a >= 0 && b >= 0 && lra + lrb <= maxlen) {
                memcpy(buf, ra, lra);
                memcpy(buf + lra, rb, lrb);
                int res = tok_lookup(t, buf, (size_t)(lra + lrb));
                if (res >= 0 && merge_rank(t, a, b) < 0) {
                    t->merges[r] = (struct TokMerge){a, b, res};
                    size_t i = (size_t)(pair_hash(a, b) >> 17) & (cap - 1);
                    while (t->mhash[i] >= 0) i = (i + 1) & (cap - 1);
                    t->mhash[i] = r;
                }
            }
        }
        free(ma); free(ra); free(rb);
    }
    t->n_merges = n_merges;
    free(buf);
    return 0;
}

/* character classes for the pre-tokenizer (an approximation of \p{L} and
 * \p{N} without Unicode tables) */
static int cls_space(int c)
{
    return c == ' ' || (c >= 9 && c <= 13) || c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
           c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}
static int cls_digit(int c) { return (c >= '0' && c <= '9') || (c >= 0xff10 && c <= 0xff19); }
static int cls_letter(int c)
{
    if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (c < 0xc0) return c == 0xaa || c == 0xb5 || c == 0xba;
    if (c == 0xd7 || c == 0xf7) return 0;
    if (cls_space(c) || cls_digit(c)) return 0;
    if (c >= 0x2000 && c <= 0x2bff) return 0;   /* punctuation, symbols, arrows, math */
    if (c >= 0x3000 && c <= 0x303f) return 0;   /* CJK punctuation */
    if (c >= 0xfe30 && c <= 0xfe4f) return 0;
    if (c >= 0xff00 && c <= 0xff20) return 0;
    if (c >= 0x1f000) return 0;                 /* emoji and pictographs */
    return 1;
}
enum { C_SPACE, C_LETTER, C_DIGIT, C_OTHER };
static int cls_at(const unsigned char *s, size_t n, size_t i, int *len)
{
    if (i >= n) { *len = 0; return -1; }
    int c = utf8_cp(s + i, n - i, len);
    if (c < 0) return C_OTHER;
    return cls_space(c) ? C_SPACE : cls_letter(c) ? C_LETTER : cls_digit(c) ? C_DIGIT : C_OTHER;
}
static size_t run_of(const unsigned char *s, size_t n, size_t i, int cls)
{
    int l;
    while (i < n && cls_at(s, n, i, &l) == cls) i += l;
    return i;
}

/* end of the pre-token starting at s[i] */
static size_t pre_next(const unsigned char *s, size_t n, size_t i, int mode)
{
    if (i >= n) return n;
    int l, l2;
    int c = cls_at(s, n, i, &l);
    /* contractions */
    if (s[i] == '\'' && i + 1 < n) {
        unsigned char a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
        if (mode == TOK_PRE_LLAMA3) { a = (unsigned char)tolower(a); b = (unsigned char)tolower(b); }
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    }
    if (mode == TOK_PRE_LLAMA3) {
        if (c == C_LETTER) return run_of(s, n, i, C_LETTER);
        int c2 = cls_at(s, n, i + l, &l2);
        if (c != C_DIGIT && s[i] != '\r' && s[i] != '\n' && c2 == C_LETTER) return run_of(s, n, i + l, C_LETTER);
        if (c == C_DIGIT) {
            size_t j = i;
            for (int k = 0; k < 3 && cls_at(s, n, j, &l2) == C_DIGIT; k++) j += l2;
            return j;
        }
        size_t j = i;
        if (s[i] == ' ' && c2 == C_OTHER) j = i + 1;
        if (cls_at(s, n, j, &l2) == C_OTHER) {
            j = run_of(s, n, j, C_OTHER);
            while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
            return j;
        }
        /* whitespace */
        size_t k = run_of(s, n, i, C_SPACE), last_nl = 0;
        int has_nl = 0;
        for (size_t q = i; q < k; q++) if (s[q] == '\r' || s[q] == '\n') { last_nl = q; has_nl = 1; }
        if (has_nl) return last_nl + 1;
        if (k >= n) return k;
        size_t q = i, prevq = i;
        while (q < k) { prevq = q; cls_at(s, n, q, &l2); q += l2; }
        return prevq > i ? prevq : k;
    }
    /* GPT-2 (optionally with digits split off one by one) */
    size_t j = i;
    int digits = mode == TOK_PRE_GPT2_DIGITS;
    if (c == C_SPACE && s[i] == ' ') {
        int c2 = cls_at(s, n, i + 1, &l2);
        if (c2 >= 0 && c2 != C_SPACE && !(digits && c2 == C_DIGIT)) { j = i + 1; c = c2; l = l2; }
    }
    if (c == C_LETTER) return run_of(s, n, j, C_LETTER);
    if (c == C_DIGIT) return digits ? j + l : run_of(s, n, j, C_DIGIT);
    if (c == C_OTHER) return run_of(s, n, j, C_OTHER);
    size_t k = run_of(s, n, i, C_SPACE);
    if (k >= n) return k;
    if (digits && cls_at(s, n, k, &l2) == C_DIGIT) return k;
    size_t q = i, prevq = i;
    while (q < k) { prevq = q; cls_at(s, n, q, &l2); q += l2; }
    return prevq > i ? prevq : k;
}

static void try_pair_bl(Enc *e, int64_t left)
{
    int64_t right = e->next[left];
    if (right < 0 || e->seg[left] != e->seg[right]) return;
    int r = merge_rank(e->t, e->id[left], e->id[right]);
    if (r < 0) return;
    heap_push(&e->heap, (Cand){-(float)r, left, right, e->t->merges[r].res, STAMP(e, left, right)});
}

static int encode_bytelevel(const Tokenizer *t, const char *text, int bos, int eos, int **out, size_t *n_out)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t tl = strlen(text);
    int *tok = ob_malloc((tl + 3) * sizeof(int));
    int64_t *seg = ob_malloc((tl + 3) * sizeof(int64_t));
    size_t n = 0;
    int64_t nseg = 0;
    /* with bos requested the result is never empty: a tokenizer without BOS
     * starts an empty text with EOS (GPT-2's document separator) */
    if (bos && (t->bos_id >= 0 || tl == 0)) {
        seg[n] = -1;
        tok[n++] = t->bos_id >= 0 ? t->bos_id : t->eos_id >= 0 ? t->eos_id : 0;
    }
    for (size_t i = 0; i < tl;) {
        size_t e = pre_next(s, tl, i, t->pretok);
        if (e <= i) e = i + 1;
        for (size_t k = i; k < e; k++) {
            int id = t->byte_id[s[k]];
            if (id < 0) id = t->unk_id;
            if (id < 0) continue;
            seg[n] = nseg;
            tok[n++] = id;
        }
        nseg++;
        i = e;
    }
    Enc e = {0};
    e.t = t;
    e.id = tok;
    e.seg = seg;
    e.try_pair = try_pair_bl;
    size_t m = bpe_merge(&e, n);
    if (eos && t->eos_id >= 0) tok[m++] = t->eos_id;
    free(seg);
    *out = tok;
    *n_out = m;
    return 0;
}

size_t tok_pretoken_end(const char *text, size_t n, size_t i, int pretok)
{
    size_t e = pre_next((const unsigned char *)text, n, i, pretok);
    return e > i ? e : i + 1;
}

/* ---- tokenizer.json ------------------------------------------------------*/

/* does j (recursively) hold an object with "type": type? */
static int has_type(const cJSON *j, const char *type, int depth)
{
    if (!j || depth > 8) return 0;
    if (cJSON_IsObject(j)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
        if (cJSON_IsString(t) && !strcmp(t->valuestring, type)) return 1;
    }
    if (cJSON_IsObject(j) || cJSON_IsArray(j))
        for (const cJSON *c = j->child; c; c = c->next)
            if (has_type(c, type, depth + 1)) return 1;
    return 0;
}

/* does any string inside j contain needle? */
static int has_string(const cJSON *j, const char *needle, int depth)
{
    if (!j || depth > 8) return 0;
    if (cJSON_IsString(j) && strstr(j->valuestring, needle)) return 1;
    for (const cJSON *c = j->child; c; c = c->next)
        if (has_string(c, needle, depth + 1)) return 1;
    return 0;
}

/* the special token a TemplateProcessing post-processor puts first */
static const char *template_bos(const cJSON *root)
{
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    if (!cJSON_IsObject(pp)) return NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(pp, "type");
    if (cJSON_IsString(t) && !strcmp(t->valuestring, "Sequence")) {
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(pp, "processors");
        for (const cJSON *p = ps ? ps->child : NULL; p; p = p->next) {
            const cJSON *pt = cJSON_GetObjectItemCaseSensitive(p, "type");
            if (cJSON_IsString(pt) && !strcmp(pt->valuestring, "TemplateProcessing")) { pp = p; t = pt; break; }
        }
    }
    if (!cJSON_IsString(t) || strcmp(t->valuestring, "TemplateProcessing")) return NULL;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
    const cJSON *first = cJSON_IsArray(single) ? single->child : NULL;
    const cJSON *sp = first ? cJSON_GetObjectItemCaseSensitive(first, "SpecialToken") : NULL;
    const cJSON *id = sp ? cJSON_GetObjectItemCaseSensitive(sp, "id") : NULL;
    return cJSON_IsString(id) ? id->valuestring : NULL;
}

static int json_id(const cJSON *j, int *out)
{
    if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble >= (1 << 22) || j->valuedouble != floor(j->valuedouble)) return -1;
    *out = (int)j->valuedouble;
    return 0;
}

int tok_json_parse(Tokenizer *t, const char *json, size_t len, int vocab_size, int bos_cfg, int eos_cfg, char *err)
{
    memset(t, 0, sizeof *t);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) { ob_seterr(err, "not valid JSON"); return -1; }
    int rc = -1, n = 0;
    char **pieces = NULL, **merges = NULL;
    int *types = NULL, n_merges = 0;
    float *scores = NULL;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *mtype = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *mg = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    int unigram = cJSON_IsString(mtype) && !strcmp(mtype->valuestring, "Unigram");
    int bpe = !unigram && (!cJSON_IsString(mtype) || !strcmp(mtype->valuestring, "BPE"));
    if (!bpe && !unigram) { ob_seterr(err, "model type %.32s is not supported (BPE, Unigram)", mtype->valuestring); goto out; }
    if (bpe ? !cJSON_IsObject(vocab) : !cJSON_IsArray(vocab)) { ob_seterr(err, "model.vocab is missing or malformed"); goto out; }
    /* vocabulary size: largest id + 1 */
    int id = 0;
    if (bpe) {
        for (const cJSON *e = vocab->child; e; e = e->next) {
            if (json_id(e, &id)) { ob_seterr(err, "vocab entry %.64s has a bad id", e->string ? e->string : "?"); goto out; }
            if (id + 1 > n) n = id + 1;
        }
    } else n = cJSON_GetArraySize(vocab);
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        if (json_id(cJSON_GetObjectItemCaseSensitive(a, "id"), &id) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(a, "content"))) {
            ob_seterr(err, "malformed added_tokens entry");
            goto out;
        }
        if (id + 1 > n) n = id + 1;
    }
    if (n < 1) { ob_seterr(err, "empty vocabulary"); goto out; }
    if (vocab_size > 0) {
        if (n > vocab_size) { ob_seterr(err, "%d tokens, more than the model's vocabulary of %d", n, vocab_size); goto out; }
        n = vocab_size;
    }
    pieces = ob_calloc(n, sizeof(char *));
    types = ob_calloc(n, sizeof(int));
    scores = ob_calloc(n, sizeof(float));
    if (bpe) {
        for (const cJSON *e = vocab->child; e; e = e->next) {
            json_id(e, &id);
            if (pieces[id]) { ob_seterr(err, "token id %d appears twice in model.vocab", id); goto out; }
            pieces[id] = ob_strdup(e->string ? e->string : "");
        }
    } else {
        id = 0;
        for (const cJSON *e = vocab->child; e; e = e->next, id++) {
            const cJSON *p = cJSON_GetArrayItem(e, 0), *s = cJSON_GetArrayItem(e, 1);
            if (!cJSON_IsString(p) || !cJSON_IsNumber(s)) { ob_seterr(err, "Unigram vocab entry %d is not [piece, score]", id); goto out; }
            pieces[id] = ob_strdup(p->valuestring);
            scores[id] = (float)s->valuedouble;
        }
    }
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        json_id(cJSON_GetObjectItemCaseSensitive(a, "id"), &id);
        free(pieces[id]);
        pieces[id] = ob_strdup(cJSON_GetObjectItemCaseSensitive(a, "content")->valuestring);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "special"))) types[id] = 3;
    }
    for (int i = 0; i < n; i++)
        if (!pieces[i]) { pieces[i] = ob_strdup(""); types[i] = 5; }
    if (bpe && mg) {
        if (!cJSON_IsArray(mg)) { ob_seterr(err, "model.merges is not an array"); goto out; }
        int cnt = cJSON_GetArraySize(mg);
        merges = ob_calloc(cnt ? cnt : 1, sizeof(char *));
        for (const cJSON *e = mg->child; e; e = e->next) {
            if (cJSON_IsString(e)) merges[n_merges++] = ob_strdup(e->valuestring);
            else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) && cJSON_IsString(e->child->next)) {
                size_t l = strlen(e->child->valuestring) + strlen(e->child->next->valuestring) + 2;
                merges[n_merges] = ob_malloc(l);
                snprintf(merges[n_merges++], l, "%s %s", e->child->valuestring, e->child->next->valuestring);
            } else { ob_seterr(err, "merge %d is neither \"a b\" nor [a, b]", n_merges); goto out; }
        }
    }
    const char *bos_piece = template_bos(root);
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    int bytelevel = bpe && (has_type(pre, "ByteLevel", 0) || has_type(cJSON_GetObjectItemCaseSensitive(root, "decoder"), "ByteLevel", 0));
    if (bytelevel) {
        int pretok = has_type(pre, "Digits", 0) ? TOK_PRE_GPT2_DIGITS : has_string(pre, "{1,3}", 0) ? TOK_PRE_LLAMA3 : TOK_PRE_GPT2;
        if (tok_init_bytelevel(t, n, (const char *const *)pieces, types, n_merges, (const char *const *)merges, -1, -1, pretok, err)) goto out;
        t->bos_id = bos_piece ? tok_lookup(t, bos_piece, strlen(bos_piece)) : -1;
        t->eos_id = eos_cfg >= 0 && eos_cfg < n ? eos_cfg : -1;
        /* no config.json id: the usual end-of-text specials */
        const char *eos_names[] = {"<|endoftext|>", "<|end_of_text|>", "</s>"};
        for (int i = 0; i < 3 && t->eos_id < 0; i++) t->eos_id = tok_lookup(t, eos_names[i], strlen(eos_names[i]));
    } else {
        int unk = 0;
        const cJSON *uk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
        const cJSON *ukid = cJSON_GetObjectItemCaseSensitive(model, "unk_id");
        if (n < 3) { ob_seterr(err, "only %d tokens", n); goto out; }
        if (tok_init_spm(t, n, (const char *const *)pieces, unigram ? scores : NULL, types, 0, 0, 0, err)) goto out;
        if (cJSON_IsString(uk)) unk = tok_lookup(t, uk->valuestring, strlen(uk->valuestring));
        else if (json_id(ukid, &unk) || unk >= n) unk = tok_lookup(t, "<unk>", 5);
        t->unk_id = unk >= 0 ? unk : 0;
        int b = bos_piece ? tok_lookup(t, bos_piece, strlen(bos_piece)) : tok_lookup(t, "<s>", 3);
        int e = tok_lookup(t, "</s>", 4);
        t->bos_id = b >= 0 ? b : bos_cfg >= 0 && bos_cfg < n ? bos_cfg : 1;
        t->eos_id = eos_cfg >= 0 && eos_cfg < n ? eos_cfg : e >= 0 ? e : 2;
        if (bpe) {
            /* SentencePiece-style scores from merge ranks: the token a merge
             * makes scores -rank (earliest merge wins); the rest never merge */
            float *best = ob_malloc((size_t)n * sizeof(float));
            for (int i = 0; i < n; i++) best[i] = NAN;
            char *buf = ob_malloc((size_t)t->max_token_length * 4 + 8);
            for (int r = 0; r < n_merges; r++) {
                const char *sp = strchr(merges[r], ' ');
                if (!sp) continue;
                size_t k = 0;
                for (const char *p = merges[r]; *p && k < (size_t)t->max_token_length * 4; p++) {
                    if (p == sp) continue;
                    if ((unsigned char)p[0] == 0xe2 && (unsigned char)p[1] == 0x96 && (unsigned char)p[2] == 0x81) { buf[k++] = ' '; p += 2; }
                    else buf[k++] = *p;
                }
                int res = tok_lookup(t, buf, k);
                if (res >= 0 && isnan(best[res])) best[res] = -(float)r;
            }
            for (int i = 0; i < n; i++) t->scores[i] = isnan(best[i]) || types[i] ? -1e30f : best[i];
            free(best);
            free(buf);
        }
    }
    rc = 0;
out:
    if (pieces) for (int i = 0; i < n; i++) free(pieces[i]);
    if (merges) for (int i = 0; i < n_merges; i++) free(merges[i]);
    free(pieces); free(merges); free(types); free(scores);
    cJSON_Delete(root);
    if (rc && t->vocab) tok_free(t);
    return rc;
}

int tok_load_file(Tokenizer *t, const char *path, int vocab_size, TokParseFn parse, char *err)
{
    char *data, why[OB_ERRLEN];
    size_t len;
    memset(t, 0, sizeof *t);
    if (ob_read_file(path, &data, &len, err)) return -1;
    int rc = parse(t, data, len, vocab_size, why);
    free(data);
    if (rc) ob_seterr(err, "%s: %s", path, why);
    return rc;
}

static int json_parse_no_ids(Tokenizer *t, const char *data, size_t len, int vocab_size, char *err)
{
    return tok_json_parse(t, data, len, vocab_size, -1, -1, err);
}

int tok_json_load(Tokenizer *t, const char *path, int vocab_size, char *err)
{
    return tok_load_file(t, path, vocab_size, json_parse_no_ids, err);
}
