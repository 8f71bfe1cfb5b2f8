/* tokenizer.c -- llama2.c-compatible BPE tokenizer. Encoding gives exactly
 * llama2.c's ids (greedy highest-score merge, leftmost on ties) but in
 * O(n log n) with a heap over a linked list of symbols, so whole corpora can
 * be encoded at once. */
#include "tokenizer.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"

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
    memset(t, 0, sizeof *t);
}

/* ---- encode ------------------------------------------------------------ */

typedef struct { float score; int left; int right_id; int merged; int seq; } Cand; /* pair (left, next(left)) */

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

typedef struct {
    const Tokenizer *t;
    int *id, *prev, *next, *ver;  /* symbol list; ver bumps when a symbol changes */
    char *buf;
    Heap heap;
} Enc;

static void try_pair(Enc *e, int left)
{
    int right = e->next[left];
    if (right < 0) return;
    const Tokenizer *t = e->t;
    int a = e->id[left], b = e->id[right];
    size_t la = t->vocab_len[a], lb = t->vocab_len[b];
    memcpy(e->buf, t->vocab[a], la);
    memcpy(e->buf + la, t->vocab[b], lb);
    int id = tok_lookup(t, e->buf, la + lb);
    if (id < 0 || !(t->scores[id] > -1e10f)) return;
    /* stamp both versions so a stale candidate is recognised */
    heap_push(&e->heap, (Cand){t->scores[id], left, right, id, e->ver[left] * 65536 + (e->ver[right] & 0xffff)});
}

int tok_encode(const Tokenizer *t, const char *text, int bos, int eos, int **out, int *n_out)
{
    size_t tl = strlen(text);
    size_t cap = tl + 3;
    int *tok = ob_malloc(cap * sizeof(int));
    int n = 0;
    if (bos) tok[n++] = t->bos_id;
    if (text[0] != '\0') {
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
            int unk = 0; /* no byte fallback: the unknown token, as SentencePiece does */
            tok[n++] = unk;
        }
        sl = 0;
    }
    /* merges */
    Enc e = {0};
    e.t = t;
    e.id = tok;
    e.prev = ob_malloc((n + 1) * sizeof(int));
    e.next = ob_malloc((n + 1) * sizeof(int));
    e.ver = ob_calloc(n + 1, sizeof(int));
    e.buf = ob_malloc((size_t)t->max_token_length * 2 + 8);
    for (int i = 0; i < n; i++) { e.prev[i] = i - 1; e.next[i] = i + 1 < n ? i + 1 : -1; }
    for (int i = 0; i + 1 < n; i++) try_pair(&e, i);
    while (e.heap.n) {
        Cand c = heap_pop(&e.heap);
        int left = c.left, right = c.right_id;
        if (e.id[left] < 0 || e.next[left] != right || e.id[right] < 0) continue;
        if (c.seq != e.ver[left] * 65536 + (e.ver[right] & 0xffff)) continue;
        e.id[left] = c.merged;
        e.ver[left]++;
        e.id[right] = -1;
        e.next[left] = e.next[right];
        if (e.next[right] >= 0) e.prev[e.next[right]] = left;
        if (e.prev[left] >= 0) try_pair(&e, e.prev[left]);
        try_pair(&e, left);
    }
    int m = 0;
    for (int i = 0; i >= 0 && i < n; i = e.next[i]) tok[m++] = e.id[i];
    if (n == 0) m = 0;
    if (eos) tok[m++] = t->eos_id;
    free(e.prev); free(e.next); free(e.ver); free(e.buf); free(e.heap.a);
    *out = tok;
    *n_out = m;
    return 0;
}

/* ---- decode ------------------------------------------------------------ */

const char *tok_decode(const Tokenizer *t, int prev, int token)
{
    if (token < 0 || token >= t->vocab_size) return "";
    const char *piece = t->vocab[token];
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
