/* test_data.c -- the trainer's data module: windows, packing, the held-out
 * split and its disjointness, determinism, text errors, the token cache
 * (round trip, corruption, wrong key), SHA-256, teacher self-generation. */
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include <cblas.h>

#include "base/blas.h"
#include "base/common.h"
#include "base/file.h"
#include "blaswatch.h"
#include "train/data.h"
#include "test.h"

static char tmpdir[256];

typedef struct {
    pthread_t self;
    int calls, last, in_order, same_thread, cancel_at;
} Prog;

static int prog(void *ud, int done, int total)
{
    Prog *p = ud;
    if (p->calls++ == 0) p->in_order = p->same_thread = 1;
    if (done < p->last || total <= 0) p->in_order = 0;
    if (!pthread_equal(pthread_self(), p->self)) p->same_thread = 0;
    p->last = done;
    return p->cancel_at >= 0 && done >= p->cancel_at;
}

static void synthetic(void)
{
    /* 40 sequences; every token of sequence i is 3+i, lengths 1..60 */
    enum { N = 40, V = 100 };
    int lens[N], tok[N * 60], k = 0;
    for (int i = 0; i < N; i++) {
        lens[i] = 1 + (i * 37) % 60;
        for (int j = 0; j < lens[i]; j++) tok[k++] = 3 + i;
    }
    char err[OB_ERRLEN];
    DataSet d;
    CHECK(data_from_seqs(&d, N, lens, tok, 16, 64, V, err) == 0, "from_seqs: %s", err);
    int usable = 0;
    for (int i = 0; i < N; i++) usable += lens[i] >= 2;
    CHECK(d.n_seq == usable, "1-token sequences dropped: %d of %d", d.n_seq, usable);
    int held = usable * DATA_HELDOUT_PCT / 100;
    if (held < 1) held = 1;
    CHECK(d.n_train == usable - held, "held-out = 5%% (>= 1): n_train %d", d.n_train);
    /* the held-out sequences' ids (tokens) */
    int held_id[N + 3] = {0}; /* by token: sequence i is all 3+i */
    for (int s = d.n_train; s < d.n_seq; s++) held_id[d.tok[d.off[s]]] = 1;
    DataCursor c1, c2, c3;
    data_cursor_init(&c1, 7);
    data_cursor_init(&c2, 7);
    data_cursor_init(&c3, 8);
    int w1[16], w2[16], w3[16], same = 1, differs = 0, leak = 0, len_ok = 1;
    for (int i = 0; i < 2000; i++) {
        int n1 = data_sample(&d, &c1, w1), n2 = data_sample(&d, &c2, w2);
        data_sample(&d, &c3, w3);
        if (n1 != 16 || n2 != 16) len_ok = 0;
        if (memcmp(w1, w2, sizeof w1)) same = 0;
        if (memcmp(w1, w3, sizeof w1)) differs = 1;
        for (int j = 0; j < 16; j++) if (held_id[w1[j]]) leak = 1;
    }
    CHECK(len_ok, "every window has seq_len tokens (packing)");
    CHECK(same, "same seed, same windows");
    CHECK(differs, "another seed, other windows");
    CHECK(!leak, "no training window touches the held-out split");
    CHECK(c1.drawn == 2000, "cursor counts windows (%llu)", (unsigned long long)c1.drawn);
    /* resuming from a copied cursor continues the same stream */
    DataCursor c4 = c1;
    data_sample(&d, &c1, w1);
    data_sample(&d, &c4, w2);
    CHECK(!memcmp(w1, w2, sizeof w1), "copied cursor continues identically");
    int64_t *st;
    int *ln;
    int nw = data_heldout_windows(&d, &st, &ln);
    int64_t cover = 0;
    int only_held = 1;
    for (int i = 0; i < nw; i++) {
        cover += ln[i];
        CHECK(ln[i] >= 2 && ln[i] <= 16, "window length %d", ln[i]);
        for (int j = 0; j < ln[i]; j++) if (!held_id[d.tok[st[i] + j]]) only_held = 0;
    }
    CHECK(only_held, "held-out windows lie in held-out sequences");
    CHECK(nw >= 1 && cover <= d.heldout_tokens && cover >= d.heldout_tokens - nw, "held-out windows cover the split (%lld of %lld)",
          (long long)cover, (long long)d.heldout_tokens);
    free(st);
    free(ln);
    data_free(&d);

    CHECK(data_from_seqs(&d, 1, lens + 1, tok, 16, 64, V, err) == -1 && strstr(err, "at least 2"), "one sequence: %s", err);
    CHECK(data_from_seqs(&d, N, lens, tok, 128, 64, V, err) == -1 && strstr(err, "context 64"), "seq-len above context: %s", err);
    CHECK(data_from_seqs(&d, N, lens, tok, 16, 64, 10, err) == -1 && strstr(err, "vocabulary"), "token out of vocab: %s", err);

    /* cache round trip, corruption, wrong key */
    char path[512];
    snprintf(path, sizeof path, "%s/c.tok", tmpdir);
    const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    CHECK(data_cache_write(path, sha, 5, 60, V, N, lens, tok, err) == 0, "cache write: %s", err);
    int *l2, *t2;
    int rd = data_cache_read(path, sha, 5, 60, V, N, &l2, &t2, err);
    CHECK(rd == 0, "cache read: %s", err);
    if (rd == 0) {
        CHECK(!memcmp(l2, lens, sizeof lens) && !memcmp(t2, tok, (size_t)k * sizeof(int)), "cache round trip");
        free(l2);
        free(t2);
    }
    CHECK(data_cache_read(path, sha, 6, 60, V, N, &l2, &t2, err) == -1 && strstr(err, "another teacher"), "wrong seed: %s", err);
    char *raw;
    size_t size;
    ob_read_file(path, &raw, &size, err);
    raw[size / 2] ^= 1;
    file_write_atomic(path, raw, size, err);
    CHECK(data_cache_read(path, sha, 5, 60, V, N, &l2, &t2, err) == -1 && strstr(err, "checksum"), "flipped bit: %s", err);
    file_write_atomic(path, raw, size - 4, err);
    CHECK(data_cache_read(path, sha, 5, 60, V, N, &l2, &t2, err) == -1, "truncated: %s", err);
    file_write_atomic(path, "hello", 5, err);
    CHECK(data_cache_read(path, sha, 5, 60, V, N, &l2, &t2, err) == -1 && strstr(err, "magic"), "junk: %s", err);
    free(raw);
    unlink(path);

    /* SHA-256("abc") */
    snprintf(path, sizeof path, "%s/abc", tmpdir);
    file_write_atomic(path, "abc", 3, err);
    char hex[65];
    CHECK(file_sha256(path, hex, err) == 0 &&
              !strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
          "sha256 abc: %s", hex);
    unlink(path);
}

static void with_model(const char *mp, const char *tp, const char *textp)
{
    char err[OB_ERRLEN];
    Model m;
    Tokenizer t;
    if (model_load(&m, mp, err) || tok_load(&t, tp, m.cfg.vocab_size, err)) {
        CHECK(0, "load: %s", err);
        return;
    }
    char *text;
    size_t len;
    CHECK(ob_read_file(textp, &text, &len, err) == 0, "read text");
    DataSet d;
    /* stream */
    CHECK(data_from_text(&d, &t, text, NULL, 128, m.cfg.seq_len, m.cfg.vocab_size, err) == 0, "stream: %s", err);
    CHECK(d.stream && d.n_train == 1 && d.heldout_tokens >= 128, "stream split");
    int64_t ntok = d.train_tokens + d.heldout_tokens;
    CHECK(d.heldout_tokens == (ntok * 5 / 100 > 128 ? ntok * 5 / 100 : 128), "5%% held out");
    data_free(&d);
    /* documents */
    CHECK(data_from_text(&d, &t, text, "<|endoftext|>", 256, m.cfg.seq_len, m.cfg.vocab_size, err) == 0, "docs: %s", err);
    CHECK(!d.stream && d.n_seq > 100, "docs: %d", d.n_seq);
    int bos_first = 1;
    for (int s = 0; s < d.n_seq; s++) if (d.tok[d.off[s]] != t.bos_id) bos_first = 0;
    CHECK(bos_first, "every document starts with BOS");
    data_free(&d);
    /* bad text */
    CHECK(data_from_text(&d, &t, "  \n", NULL, 64, 512, m.cfg.vocab_size, err) == -1 && strstr(err, "empty"), "empty: %s", err);
    CHECK(data_from_text(&d, &t, "Once upon a time.", NULL, 64, 512, m.cfg.vocab_size, err) == -1 && strstr(err, "fewer than two windows"),
          "short: %s", err);
    CHECK(data_from_text(&d, &t, "One story.", "<|endoftext|>", 64, 512, m.cfg.vocab_size, err) == -1 && strstr(err, "1 document"),
          "one doc: %s", err);
    CHECK(data_from_text(&d, &t, text, NULL, 1024, 512, m.cfg.vocab_size, err) == -1 && strstr(err, "context 512"), "ctx: %s", err);
    free(text);

    /* self-generation: deterministic, BOS first, greedy prefix, bounded */
    int *l1, *t1, *l2, *t2;
    CHECK(data_self_generate(&m, &t, 6, 64, 3, 1, &l1, &t1, NULL, NULL, err) == 0, "selfgen: %s", err);
    /* OpenBLAS's thread count is the main thread's to set (base/blas.h):
     * self-generation never changes it, not even for a while */
    CHECK(blas_set_threads(2, err) == 0, "%s", err);
    BlasWatch bw;
    CHECK(blaswatch_start(&bw) == 0, "watch thread");
    CHECK(data_self_generate(&m, &t, 6, 64, 3, 3, &l2, &t2, NULL, NULL, err) == 0, "selfgen 3 threads: %s", err);
    int changed = blaswatch_stop(&bw);
    CHECK(changed == 0, "self-generation changed OpenBLAS's thread count (seen %d times in %d polls)", changed, atomic_load(&bw.polls));
    int64_t tot = 0;
    int ok = 1;
    for (int i = 0; i < 6; i++) {
        if (l1[i] < 2 || l1[i] > 64 || t1[tot] != t.bos_id) ok = 0;
        if (t1[tot + 1] < 259) ok = 0; /* not UNK/BOS/EOS/byte */
        tot += l1[i];
    }
    CHECK(ok, "sequences start with BOS and an ordinary token, fit seq_len");
    CHECK(!memcmp(l1, l2, 6 * sizeof(int)) && !memcmp(t1, t2, (size_t)tot * sizeof(int)), "self-generation is deterministic, whatever the thread count");
    free(l2);
    free(t2);
    /* with worker jobs: progress in the caller's thread, in order, ending at n; a cancel stops them */
    Prog pr = {.self = pthread_self(), .last = -1, .cancel_at = -1};
    CHECK(data_self_generate(&m, &t, 6, 64, 3, 3, &l2, &t2, prog, &pr, err) == 0, "selfgen with progress: %s", err);
    CHECK(pr.calls > 0 && pr.in_order && pr.same_thread && pr.last == 6, "progress: %d calls, in order %d, caller's thread %d, last %d",
          pr.calls, pr.in_order, pr.same_thread, pr.last);
    CHECK(!memcmp(l1, l2, 6 * sizeof(int)), "the same sequences with a progress callback");
    free(l2);
    free(t2);
    Prog pc = {.self = pthread_self(), .last = -1, .cancel_at = 0};
    CHECK(data_self_generate(&m, &t, 400, 64, 3, 3, &l2, &t2, prog, &pc, err) == -1 && strstr(err, "cancelled"), "cancelled: %s", err);
    CHECK(pc.same_thread && pc.last < 400, "cancelled early (progress %d of 400)", pc.last);
    char hex[65];
    CHECK(file_sha256(mp, hex, err) == 0, "sha");
    int reused;
    CHECK(data_self_generated(&d, &m, &t, hex, tmpdir, 6, 64, 3, 2, &reused, NULL, NULL, err) == 0 && !reused, "gen + cache: %s", err);
    CHECK(d.train_tokens + d.heldout_tokens == tot && !memcmp(d.tok, t1, (size_t)tot * sizeof(int)), "same as direct");
    data_free(&d);
    CHECK(data_self_generated(&d, &m, &t, hex, tmpdir, 6, 64, 3, 2, &reused, NULL, NULL, err) == 0 && reused, "reused: %s", err);
    CHECK(d.train_tokens + d.heldout_tokens == tot && !memcmp(d.tok, t1, (size_t)tot * sizeof(int)), "cache gives the same");
    data_free(&d);
    char *cp = data_cache_path(tmpdir, hex, 3, 6, 64);
    unlink(cp);
    free(cp);
    free(l1);
    free(t1);
    tok_free(&t);
    model_free(&m);
}

int main(void)
{
    if (test_tmpdir(tmpdir, sizeof tmpdir, "test_data")) return 1;
    synthetic();
    const char *mp = shared_path("models/stories260K.bin");
    const char *tp = shared_path("models/tok512.bin");
    const char *xp = shared_path("data/tinystories_train_head_sample.txt");
    if (mp && tp && xp) with_model(mp, tp, xp);
    else printf("note: shared models absent, model tests skipped\n");
    rmdir(tmpdir);
    return test_done("test_data");
}
