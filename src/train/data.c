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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "base/job.h"
#include "base/file.h"
#include "model/eval.h"
#include "model/sampler.h"

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
    if (eval_check_tokens(tokens, (size_t)total, vocab, err)) return -1;
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
        int bad = 0;
        for (int i = 0; i < nd; i++) {
            int *tok = NULL;
            size_t n = 0;
            if (!bad && tok_encode(t, docs[i], 1, 0, &tok, &n)) {
                ob_seterr(err, "cannot encode the text: the tokenizer is empty");
                bad = 1;
            } else if (!bad && n > (size_t)INT_MAX) {
                ob_seterr(err, "document %d gives %zu tokens, more than %d", i + 1, n, INT_MAX);
                bad = 1;
            }
            if (!bad) {
                if (total + (int64_t)n > cap) {
                    cap = (total + (int64_t)n) * 2;
                    all = realloc(all, (size_t)cap * sizeof(int));
                    if (!all) abort();
                }
                memcpy(all + total, tok, n * sizeof(int));
                total += (int64_t)n;
                lens[i] = (int)n;
            }
            free(tok);
            free(docs[i]);
        }
        free(docs);
        if (bad) {
            free(lens);
            free(all);
            return -1;
        }
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
    int *tok;
    size_t nt;
    if (tok_encode(t, text, 1, 0, &tok, &nt)) { ob_seterr(err, "cannot encode the text: the tokenizer is empty"); return -1; }
    int64_t n = (int64_t)nt;
    if (eval_check_tokens(tok, (size_t)n, vocab, err)) { free(tok); return -1; }
    if (n < 2 * (int64_t)seq_len) {
        ob_seterr(err, "the text gives %lld tokens, fewer than two windows of %d (one to train, one held out): "
                  "use more text or a smaller --seq-len", (long long)n, seq_len);
        free(tok);
        return -1;
    }
    int64_t held = n * DATA_HELDOUT_PCT / 100;
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


int data_cache_write(const char *path, const char *teacher_sha, uint64_t seed, int seq_len, int vocab,
                     int n, const int *lens, const int *tokens, char *err)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += lens[i];
    size_t size = CACHE_HDR + (size_t)n * 4 + (size_t)total * 4 + 8;
    unsigned char *b = ob_malloc(size), *p = b;
    memcpy(p, CACHE_MAGIC, 8); p += 8;
    file_put_u32le(p, 1); p += 4;
    file_put_u32le(p, (uint32_t)n); p += 4;
    file_put_u32le(p, (uint32_t)seq_len); p += 4;
    file_put_u32le(p, (uint32_t)vocab); p += 4;
    file_put_u64le(p, seed); p += 8;
    memset(p, 0, 64);
    memcpy(p, teacher_sha, strnlen(teacher_sha, 64)); p += 64;
    for (int i = 0; i < n; i++, p += 4) file_put_u32le(p, (uint32_t)lens[i]);
    for (int64_t i = 0; i < total; i++, p += 4) file_put_u32le(p, (uint32_t)tokens[i]);
    file_put_u64le(p, file_fnv1a(FILE_FNV_INIT, b, (size_t)(p - b)));
    int rc = file_write_atomic(path, b, size, err);
    free(b);
    return rc;
}

int data_cache_read(const char *path, const char *teacher_sha, uint64_t seed, int seq_len, int vocab,
                    int n, int **lens_out, int **tokens_out, char *err)
{
    DataCacheKey want = {.seed = seed, .n = n, .seq_len = seq_len, .vocab = vocab}, got;
    snprintf(want.teacher_sha, sizeof want.teacher_sha, "%s", teacher_sha);
    return data_cache_load(path, &want, &got, lens_out, tokens_out, err);
}

int data_cache_load(const char *path, const DataCacheKey *want, DataCacheKey *key, int **lens_out, int **tokens_out, char *err)
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
    if (file_get_u64le(b + size - 8) != file_fnv1a(FILE_FNV_INIT, b, size - 8)) {
        ob_seterr(err, "%s: checksum mismatch: the token cache is corrupt (delete it to regenerate)", path);
        goto out;
    }
    uint32_t ver = file_get_u32le(b + 8), cn = file_get_u32le(b + 12), cl = file_get_u32le(b + 16), cv = file_get_u32le(b + 20);
    uint64_t cs = file_get_u64le(b + 24);
    char sha[65];
    memcpy(sha, b + 32, 64);
    sha[64] = 0;
    if (ver != 1) { ob_seterr(err, "%s: unsupported token cache version %u", path, ver); goto out; }
    *key = (DataCacheKey){.seed = cs, .n = (int)cn, .seq_len = (int)cl, .vocab = (int)cv};
    memcpy(key->teacher_sha, sha, 65);
    if (cn > INT32_MAX || cl > INT32_MAX || cv > INT32_MAX) { ob_seterr(err, "%s: bad header (count %u, seq-len %u, vocab %u)", path, cn, cl, cv); goto out; }
    if (want && ((int)cn != want->n || (int)cl != want->seq_len || (int)cv != want->vocab || cs != want->seed ||
                 strncmp(sha, want->teacher_sha, 64) != 0)) {
        ob_seterr(err, "%s: the token cache was made for another teacher/seed/count/seq-len "
                  "(teacher %.16s seed %" PRIu64 " n %u seq-len %u vocab %u)", path, sha, cs, cn, cl, cv);
        goto out;
    }
    if ((size - CACHE_HDR - 8) / 4 < cn) { ob_seterr(err, "%s: truncated lengths", path); goto out; }
    lens = ob_malloc((size_t)(cn ? cn : 1) * sizeof(int));
    uint64_t total = 0;
    for (uint32_t i = 0; i < cn; i++) {
        uint32_t l = file_get_u32le(b + CACHE_HDR + 4 * (size_t)i);
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
        uint32_t v = file_get_u32le(p + 4 * i);
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

/* ---- the OneBit authors' trainer: a LLaMA-Factory dataset ---------------------- */

static int write_json_file(const char *dir, const char *name, const ObBuf *b, char *err)
{
    char *p = file_join(dir, name);
    int rc = file_write_atomic(p, b->s, b->n, err);
    free(p);
    return rc;
}

int data_write_llamafactory(const char *dir, const Tokenizer *t, int n, const int *lens, const int *tokens, char *err)
{
    ObBuf j = {0}, text = {0};
    ob_buf_printf(&j, "[");
    const int *p = tokens;
    for (int i = 0; i < n; i++) {
        text.n = 0;
        ob_buf_put(&text, "", 0);
        int prev = t->bos_id;
        for (int k = 0; k < lens[i]; k++) {
            int id = p[k];
            if (id == t->bos_id && k == 0) continue;
            if (id == t->bos_id || id == t->eos_id) break; /* the end of the sequence (kept in the cache) */
            const char *piece = tok_decode(t, prev, id);
            ob_buf_put(&text, piece, strlen(piece));
            prev = id;
        }
        p += lens[i];
        ob_buf_printf(&j, "%s\n  {\"text\": \"", i ? "," : "");
        ob_buf_json_string(&j, text.s);
        ob_buf_printf(&j, "\"}");
    }
    ob_buf_printf(&j, "\n]\n");
    free(text.s);
    ObBuf info = {0};
    ob_buf_printf(&info, "{\n  \"%s\": {\n    \"file_name\": \"%s.json\",\n    \"columns\": {\"prompt\": \"text\"}\n  }\n}\n",
                  DATA_LF_NAME, DATA_LF_NAME);
    char *tmp = file_dir_begin(dir, err);
    int rc = -1;
    if (tmp) {
        if (write_json_file(tmp, DATA_LF_NAME ".json", &j, err) || write_json_file(tmp, "dataset_info.json", &info, err)) file_dir_abort(tmp);
        else rc = file_dir_commit(tmp, dir, err);
    }
    free(j.s);
    free(info.s);
    return rc;
}
