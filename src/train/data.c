/* src/train/data.c -- training data for the QAT trainer: text windows,
 * teacher self-generation (its workers are jobs, base/job.h, joined before
 * data_self_generate returns; the progress callback runs in the caller's
 * thread), the token cache, the held-out split (see data.h). Reentrant. */
#include "train/data.h"

#include <cblas.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <time.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "base/job.h"
#include "model/eval.h"
#include "model/sampler.h"

/* ---- helpers ------------------------------------------------------------- */
uint64_t data_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int data_write_atomic_parts(const char *path, const void *const *bufs, const size_t *lens, int nparts, char *err)
{
    size_t pl = strlen(path) + 32;
    char *tmp = ob_malloc(pl);
    snprintf(tmp, pl, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        ob_seterr(err, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    for (int k = 0; k < nparts; k++) {
        const char *p = bufs[k];
        size_t left = lens[k];
        while (left > 0) {
            ssize_t w = write(fd, p, left > ((size_t)1 << 30) ? ((size_t)1 << 30) : left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                ob_seterr(err, "%s: write failed: %s", tmp, w < 0 ? strerror(errno) : "no space");
                close(fd);
                unlink(tmp);
                free(tmp);
                return -1;
            }
            p += w;
            left -= (size_t)w;
        }
    }
    if (fsync(fd) != 0) {
        ob_seterr(err, "%s: fsync failed: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        ob_seterr(err, "%s: cannot rename into place: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    /* make the rename durable */
    char *dir = ob_strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) { if (slash == dir) slash[1] = 0; else *slash = 0; }
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    free(dir);
    return 0;
}

int data_write_atomic(const char *path, const void *buf, size_t n, char *err)
{
    return data_write_atomic_parts(path, &buf, &n, 1, err);
}

/* SHA-256 (FIPS 180-4) */
typedef struct { uint32_t h[8]; uint64_t len; unsigned char buf[64]; size_t n; } Sha256;
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
static void sha_block(Sha256 *s, const unsigned char *p)
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
static void sha_init(Sha256 *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->len = 0;
    s->n = 0;
}
static void sha_update(Sha256 *s, const unsigned char *p, size_t n)
{
    s->len += n;
    while (n > 0) {
        size_t k = 64 - s->n < n ? 64 - s->n : n;
        memcpy(s->buf + s->n, p, k);
        s->n += k; p += k; n -= k;
        if (s->n == 64) { sha_block(s, s->buf); s->n = 0; }
    }
}
static void sha_final(Sha256 *s, char hex[65])
{
    uint64_t bits = s->len * 8;
    unsigned char pad = 0x80, zero = 0, lenb[8];
    sha_update(s, &pad, 1);
    while (s->n != 56) sha_update(s, &zero, 1);
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha_update(s, lenb, 8);
    for (int i = 0; i < 8; i++) snprintf(hex + 8 * i, 9, "%08x", s->h[i]);
}

int data_sha256_file(const char *path, char hex[65], char *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) { ob_seterr(err, "%s: %s", path, strerror(errno)); return -1; }
    Sha256 s;
    sha_init(&s);
    unsigned char *buf = ob_malloc(1 << 20);
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0) sha_update(&s, buf, n);
    int bad = ferror(f);
    fclose(f);
    free(buf);
    if (bad) { ob_seterr(err, "%s: read error", path); return -1; }
    sha_final(&s, hex);
    return 0;
}

/* ---- the data set ---------------------------------------------------------- */
void data_cursor_init(DataCursor *c, uint64_t seed)
{
    /* xorshift must not start at 0; spread small seeds over the state */
    c->rng = (seed ^ 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
    if (c->rng == 0) c->rng = 0x2545F4914F6CDD1Dull;
    c->drawn = 0;
}

static uint64_t rand_below(uint64_t *rng, uint64_t n)
{
    uint64_t r = (uint64_t)sampler_random_u32(rng) << 32 | sampler_random_u32(rng);
    return n ? r % n : 0;
}

void data_free(DataSet *d)
{
    free(d->off);
    free(d->tok);
    memset(d, 0, sizeof *d);
}

static int check_len(int seq_len, int model_ctx, char *err)
{
    if (seq_len < 2 || seq_len > model_ctx) {
        ob_seterr(err, "--seq-len %d must be between 2 and the model's context %d", seq_len, model_ctx);
        return -1;
    }
    return 0;
}

static int check_vocab(const int *tok, int64_t n, int V, char *err)
{
    for (int64_t i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= V) {
            ob_seterr(err, "token id %d is outside the model's vocabulary (%d): wrong tokenizer?", tok[i], V);
            return -1;
        }
    return 0;
}

static void finish_counts(DataSet *d)
{
    d->train_tokens = d->off[d->n_train] - d->off[0];
    d->heldout_tokens = d->off[d->n_seq] - d->off[d->n_train];
}

int data_from_seqs(DataSet *d, int n, const int *lens, const int *tokens, int seq_len,
                   int model_ctx, int vocab, char *err)
{
    memset(d, 0, sizeof *d);
    if (check_len(seq_len, model_ctx, err)) return -1;
    int64_t total = 0;
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i] < 0) { ob_seterr(err, "sequence %d has a negative length", i); return -1; }
        total += lens[i];
        if (lens[i] >= 2) kept++;
    }
    if (check_vocab(tokens, total, vocab, err)) return -1;
    if (kept < 2) {
        ob_seterr(err, "%d usable sequence%s (of at least 2 tokens): need at least 2, one to train and one held out",
                  kept, kept == 1 ? "" : "s");
        return -1;
    }
    d->off = ob_malloc((size_t)(kept + 1) * sizeof(int64_t));
    d->tok = ob_malloc((size_t)(total ? total : 1) * sizeof(int));
    int64_t src = 0, dst = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i] >= 2) {
            d->off[k++] = dst;
            memcpy(d->tok + dst, tokens + src, (size_t)lens[i] * sizeof(int));
            dst += lens[i];
        }
        src += lens[i];
    }
    d->off[k] = dst;
    d->n_seq = kept;
    int held = kept * DATA_HELDOUT_PCT / 100;
    if (held < 1) held = 1;
    d->n_train = kept - held;
    d->stream = 0;
    d->seq_len = seq_len;
    d->vocab = vocab;
    finish_counts(d);
    return 0;
}

int data_from_text(DataSet *d, const Tokenizer *t, const char *text, const char *split,
                   int seq_len, int model_ctx, int vocab, char *err)
{
    memset(d, 0, sizeof *d);
    if (check_len(seq_len, model_ctx, err)) return -1;
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (!*p) { ob_seterr(err, "the text is empty"); return -1; }
    if (split && *split) {
        char **docs;
        int nd = eval_split_docs(text, split, &docs);
        int *lens = ob_malloc((size_t)(nd ? nd : 1) * sizeof(int));
        int *all = NULL;
        int64_t total = 0, cap = 0;
        for (int i = 0; i < nd; i++) {
            int *tok, n;
            tok_encode(t, docs[i], 1, 0, &tok, &n);
            if (total + n > cap) {
                cap = (total + n) * 2;
                all = realloc(all, (size_t)cap * sizeof(int));
                if (!all) abort();
            }
            memcpy(all + total, tok, (size_t)n * sizeof(int));
            total += n;
            lens[i] = n;
            free(tok);
            free(docs[i]);
        }
        free(docs);
        int rc;
        if (nd < 2) {
            ob_seterr(err, "the text has %d document%s separated by '%s': need at least 2, one to train and one held out",
                      nd, nd == 1 ? "" : "s", split);
            rc = -1;
        } else
            rc = data_from_seqs(d, nd, lens, all, seq_len, model_ctx, vocab, err);
        free(lens);
        free(all);
        return rc;
    }
    int *tok, n;
    tok_encode(t, text, 1, 0, &tok, &n);
    if (check_vocab(tok, n, vocab, err)) { free(tok); return -1; }
    if (n < 2 * seq_len) {
        ob_seterr(err, "the text gives %d tokens, fewer than two windows of %d (one to train, one held out): "
                  "use more text or a smaller --seq-len", n, seq_len);
        free(tok);
        return -1;
    }
    int held = (int)((int64_t)n * DATA_HELDOUT_PCT / 100);
    if (held < seq_len) held = seq_len;
    d->n_seq = 2;
    d->off = ob_malloc(3 * sizeof(int64_t));
    d->off[0] = 0;
    d->off[1] = n - held;
    d->off[2] = n;
    d->tok = tok;
    d->n_train = 1;
    d->stream = 1;
    d->seq_len = seq_len;
    d->vocab = vocab;
    finish_counts(d);
    return 0;
}

int data_sample(const DataSet *d, DataCursor *c, int *out)
{
    int64_t fill = 0;
    int first = 1;
    while (fill < d->seq_len) {
        int s = d->stream ? 0 : (int)rand_below(&c->rng, (uint64_t)d->n_train);
        int64_t a = d->off[s], len = d->off[s + 1] - a;
        int64_t o = 0;
        /* the first piece starts at a random offset; later ones at a start */
        if (first && len > d->seq_len) o = (int64_t)rand_below(&c->rng, (uint64_t)(len - d->seq_len + 1));
        int64_t w = len - o;
        if (w > d->seq_len - fill) w = d->seq_len - fill;
        memcpy(out + fill, d->tok + a + o, (size_t)w * sizeof(int));
        fill += w;
        first = 0;
    }
    c->drawn++;
    return d->seq_len;
}

int data_heldout_windows(const DataSet *d, int64_t **start, int **len)
{
    int cap = 16, n = 0;
    int64_t *st = ob_malloc(cap * sizeof(int64_t));
    int *ln = ob_malloc(cap * sizeof(int));
    for (int s = d->n_train; s < d->n_seq; s++) {
        for (int64_t o = d->off[s]; o < d->off[s + 1]; o += d->seq_len) {
            int64_t w = d->off[s + 1] - o;
            if (w > d->seq_len) w = d->seq_len;
            if (w < 2) break;
            if (n == cap) {
                cap *= 2;
                st = realloc(st, cap * sizeof(int64_t));
                ln = realloc(ln, cap * sizeof(int));
                if (!st || !ln) abort();
            }
            st[n] = o;
            ln[n] = (int)w;
            n++;
        }
    }
    *start = st;
    *len = ln;
    return n;
}

/* ---- self-generation ------------------------------------------------------- */
typedef struct {
    const Model *m;
    const Tokenizer *t;
    const int *cand;
    int nc, n, seq_len, nthreads, id;
    uint64_t seed;
    int *lens, *tok;           /* tok: (n, seq_len) fixed stride */
    atomic_int *done;          /* sequences finished, over all workers */
    atomic_int *cancel;        /* 1: cancelled by the progress callback, 2: a worker failed */
} GenJob;

/* sequence s only depends on (seed, s): the result is the same for any
 * number of threads */
static void gen_one(GenJob *j, ModelState *st, Sampler *sm, int s)
{
    const Tokenizer *t = j->t;
    int V = j->m->cfg.vocab_size;
    DataCursor c;
    data_cursor_init(&c, j->seed ^ ((uint64_t)(s + 1) * 0xD1B54A32D192ED03ull));
    sm->rng_state = c.rng;
    int *q = j->tok + (size_t)s * j->seq_len, len = 0;
    q[len++] = t->bos_id;
    model_step(j->m, st, t->bos_id, 0);
    q[len++] = j->cand[rand_below(&sm->rng_state, (uint64_t)j->nc)];
    while (len < j->seq_len) {
        float *logits = model_step(j->m, st, q[len - 1], len - 1);
        int next = len - 2 < DATA_GREEDY_TOKENS ? sampler_argmax(logits, V) : sampler_sample(sm, logits);
        q[len++] = next;
        if (next == t->eos_id || next == t->bos_id) break;
    }
    j->lens[s] = len;
}

/* one worker job: sequences id, id + nthreads, ... until done or cancelled */
static int gen_worker(Job *self, void *arg)
{
    GenJob *j = arg;
    ModelState st;
    if (model_state_init(&st, &j->m->cfg)) {
        atomic_store(j->cancel, 2);
        return -1;
    }
    Sampler sm;
    sampler_init(&sm, j->m->cfg.vocab_size, 1.0f, 1.0f, 1);
    for (int s = j->id; s < j->n; s += j->nthreads) {
        if (atomic_load(j->cancel) || job_cancelled(self)) break;
        gen_one(j, &st, &sm, s);
        atomic_fetch_add(j->done, 1);
    }
    sampler_free(&sm);
    model_state_free(&st);
    return 0;
}

int data_self_generate(const Model *m, const Tokenizer *t, int n, int seq_len, uint64_t seed, int threads,
                       int **lens_out, int **tokens_out, DataProgressFn fn, void *ud, char *err)
{
    const ModelConfig *c = &m->cfg;
    if (check_len(seq_len, c->seq_len, err)) return -1;
    if (n < 2) { ob_seterr(err, "--self-generate needs at least 2 sequences (one is held out), not %d", n); return -1; }
    if (threads < 1) threads = 1;
    if (threads > n) threads = n;
    int V = c->vocab_size;
    /* candidate first tokens: not UNK(0)/BOS/EOS, not a byte piece */
    int *cand = ob_malloc((size_t)V * sizeof(int)), nc = 0;
    for (int i = 0; i < V; i++) {
        if (i == 0 || i == t->bos_id || i == t->eos_id) continue;
        if (t->byte_base >= 0 && i >= t->byte_base && i < t->byte_base + 256) continue;
        cand[nc++] = i;
    }
    if (nc == 0) {
        free(cand);
        ob_seterr(err, "the vocabulary has no ordinary token to start a sequence with");
        return -1;
    }
    size_t cells;
    if (ob_mul_size((size_t)n, (size_t)seq_len, &cells) || cells > ((size_t)1 << 34)) {
        free(cand);
        ob_seterr(err, "--self-generate %d x --seq-len %d is too many tokens", n, seq_len);
        return -1;
    }
    int *lens = ob_calloc((size_t)n, sizeof(int));
    int *tok = ob_malloc(cells * sizeof(int));
    /* each generation thread runs one small sgemv at a time. OpenBLAS's
     * thread count is not touched here (base/blas.h: chat and layer jobs
     * may be in cblas now); the CLI sets it to 1 before calling this */
    atomic_int done = 0, cancel_ = 0;
    GenJob *work = ob_calloc((size_t)threads, sizeof(GenJob));
    Job **jobs = ob_calloc((size_t)threads, sizeof(Job *));
    int started = 0;
    for (int i = 0; i < threads; i++) {
        work[i] = (GenJob){m, t, cand, nc, n, seq_len, threads, i, seed, lens, tok, &done, &cancel_};
        if (threads == 1) break;
        char e2[OB_ERRLEN];
        if (job_start(&jobs[i], &(JobSpec){.name = "self-generation", .fn = gen_worker, .arg = &work[i]}, e2) != 0) break;
        started++;
    }
    int cancel = 0;
    if (threads == 1) {
        /* in the caller's thread, reporting progress as it goes */
        ModelState st;
        if (model_state_init(&st, c)) cancel = 2;
        else {
            Sampler sm;
            sampler_init(&sm, V, 1.0f, 1.0f, 1);
            for (int s = 0; s < n && !cancel; s++) {
                gen_one(&work[0], &st, &sm, s);
                if (fn && fn(ud, s + 1, n)) cancel = 1;
            }
            sampler_free(&sm);
            model_state_free(&st);
        }
    } else {
        /* the workers are jobs; this thread reports their progress (fn is
         * called from the caller's thread only) and passes on a cancel */
        if (started < threads) atomic_store(&cancel_, 2);
        for (int w = 0; w < started;) {
            if (job_wait(jobs[w], 0.2)) { w++; continue; } /* this one has finished: wait for the next */
            int d = atomic_load(&done);
            if (fn && !atomic_load(&cancel_)) { /* every tick, so that a cancel is seen before the first sequence */
                if (fn(ud, d, n)) {
                    atomic_store(&cancel_, 1);
                    for (int i = 0; i < started; i++) job_cancel(jobs[i]);
                }
            }
        }
        for (int i = 0; i < started; i++) {
            job_join(jobs[i]);
            job_free(jobs[i]);
        }
        cancel = atomic_load(&cancel_);
        if (fn && !cancel) fn(ud, n, n);
    }
    free(work);
    free(jobs);
    free(cand);
    if (cancel) {
        if (cancel == 2) ob_seterr(err, "cannot start the self-generation threads or allocate their state");
        else ob_seterr(err, "self-generation cancelled");
        free(lens);
        free(tok);
        return -1;
    }
    /* compact the fixed-stride rows */
    int64_t total = 0;
    for (int s = 0; s < n; s++) {
        memmove(tok + total, tok + (size_t)s * seq_len, (size_t)lens[s] * sizeof(int));
        total += lens[s];
    }
    *lens_out = lens;
    *tokens_out = tok;
    return 0;
}

char *data_cache_path(const char *dir, const char *teacher_sha, uint64_t seed, int n, int seq_len)
{
    size_t k = strlen(dir) + 128;
    char *p = ob_malloc(k);
    snprintf(p, k, "%s/selfgen-%.16s-s%" PRIu64 "-n%d-l%d.tok", dir, teacher_sha, seed, n, seq_len);
    return p;
}

#define CACHE_MAGIC "OBTOKC1\n"
#define CACHE_HDR (8 + 4 * 4 + 8 + 64)

static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t get32(const unsigned char *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

int data_cache_write(const char *path, const char *teacher_sha, uint64_t seed, int seq_len, int vocab,
                     int n, const int *lens, const int *tokens, char *err)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += lens[i];
    size_t size = CACHE_HDR + (size_t)n * 4 + (size_t)total * 4 + 8;
    unsigned char *b = ob_malloc(size), *p = b;
    memcpy(p, CACHE_MAGIC, 8); p += 8;
    put32(p, 1); p += 4;
    put32(p, (uint32_t)n); p += 4;
    put32(p, (uint32_t)seq_len); p += 4;
    put32(p, (uint32_t)vocab); p += 4;
    put64(p, seed); p += 8;
    memset(p, 0, 64);
    memcpy(p, teacher_sha, strnlen(teacher_sha, 64)); p += 64;
    for (int i = 0; i < n; i++, p += 4) put32(p, (uint32_t)lens[i]);
    for (int64_t i = 0; i < total; i++, p += 4) put32(p, (uint32_t)tokens[i]);
    put64(p, data_fnv1a(DATA_FNV_INIT, b, (size_t)(p - b)));
    int rc = data_write_atomic(path, b, size, err);
    free(b);
    return rc;
}

int data_cache_read(const char *path, const char *teacher_sha, uint64_t seed, int seq_len, int vocab,
                    int n, int **lens_out, int **tokens_out, char *err)
{
    char *raw;
    size_t size;
    if (ob_read_file(path, &raw, &size, err)) return -1;
    const unsigned char *b = (const unsigned char *)raw;
    int rc = -1;
    int *lens = NULL, *tok = NULL;
    if (size < CACHE_HDR + 8 || memcmp(b, CACHE_MAGIC, 8) != 0) {
        ob_seterr(err, "%s: not a onebit-tui token cache (bad magic or too short)", path);
        goto out;
    }
    if (get64(b + size - 8) != data_fnv1a(DATA_FNV_INIT, b, size - 8)) {
        ob_seterr(err, "%s: checksum mismatch: the token cache is corrupt (delete it to regenerate)", path);
        goto out;
    }
    uint32_t ver = get32(b + 8), cn = get32(b + 12), cl = get32(b + 16), cv = get32(b + 20);
    uint64_t cs = get64(b + 24);
    char sha[65];
    memcpy(sha, b + 32, 64);
    sha[64] = 0;
    if (ver != 1) { ob_seterr(err, "%s: unsupported token cache version %u", path, ver); goto out; }
    if ((int)cn != n || (int)cl != seq_len || (int)cv != vocab || cs != seed || strncmp(sha, teacher_sha, 64) != 0) {
        ob_seterr(err, "%s: the token cache was made for another teacher/seed/count/seq-len "
                  "(teacher %.16s seed %" PRIu64 " n %u seq-len %u vocab %u)", path, sha, cs, cn, cl, cv);
        goto out;
    }
    if ((size - CACHE_HDR - 8) / 4 < cn) { ob_seterr(err, "%s: truncated lengths", path); goto out; }
    lens = ob_malloc((size_t)(cn ? cn : 1) * sizeof(int));
    uint64_t total = 0;
    for (uint32_t i = 0; i < cn; i++) {
        uint32_t l = get32(b + CACHE_HDR + 4 * (size_t)i);
        if (l < 1 || l > cl) { ob_seterr(err, "%s: sequence %u has length %u (max %u)", path, i, l, cl); goto out; }
        lens[i] = (int)l;
        total += l;
    }
    if (CACHE_HDR + 4 * (uint64_t)cn + 4 * total + 8 != size) {
        ob_seterr(err, "%s: size %zu does not match its %u sequences", path, size, cn);
        goto out;
    }
    tok = ob_malloc((size_t)(total ? total : 1) * sizeof(int));
    const unsigned char *p = b + CACHE_HDR + 4 * (size_t)cn;
    for (uint64_t i = 0; i < total; i++) {
        uint32_t v = get32(p + 4 * i);
        if (v >= cv) { ob_seterr(err, "%s: token %u outside the vocabulary %u", path, v, cv); goto out; }
        tok[i] = (int)v;
    }
    *lens_out = lens;
    *tokens_out = tok;
    lens = tok = NULL;
    rc = 0;
out:
    free(lens);
    free(tok);
    free(raw);
    return rc;
}

int data_self_generated(DataSet *d, const Model *m, const Tokenizer *t, const char *teacher_sha,
                        const char *cache_dir, int n, int seq_len, uint64_t seed, int threads, int *reused,
                        DataProgressFn fn, void *ud, char *err)
{
    int *lens = NULL, *tok = NULL;
    char *path = cache_dir ? data_cache_path(cache_dir, teacher_sha, seed, n, seq_len) : NULL;
    *reused = 0;
    if (path && access(path, F_OK) == 0) {
        if (data_cache_read(path, teacher_sha, seed, seq_len, m->cfg.vocab_size, n, &lens, &tok, err)) {
            free(path);
            return -1;
        }
        *reused = 1;
    } else {
        if (data_self_generate(m, t, n, seq_len, seed, threads, &lens, &tok, fn, ud, err)) { free(path); return -1; }
        if (path) {
            mkdir(cache_dir, 0755);
            if (data_cache_write(path, teacher_sha, seed, seq_len, m->cfg.vocab_size, n, lens, tok, err)) {
                free(path); free(lens); free(tok);
                return -1;
            }
        }
    }
    free(path);
    int rc = data_from_seqs(d, n, lens, tok, seq_len, m->cfg.seq_len, m->cfg.vocab_size, err);
    free(lens);
    free(tok);
    return rc;
}
