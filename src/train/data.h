/* src/train/data.h -- training data for the QAT trainer: a text file tokenized once
 * (one stream, or one sequence per document with --split), or sequences the
 * teacher generates itself (LLM-QAT / OneBit data-free distillation), cached
 * to a token file. A seeded xorshift RNG samples training windows; a
 * held-out split that training never sees is kept for evaluation.
 *
 * Held-out split (documented in the man page):
 *   stream (text without --split): the last 5% of the tokens, at least one
 *     window of seq_len tokens; training windows lie wholly before it.
 *   documents / generated sequences: the last 5% of the sequences, at least 1.
 *
 * Token cache file (self-generation), little-endian:
 *   "OBTOKC1\n" magic (8 bytes)
 *   u32 version (1), u32 count, u32 seq_len, u32 vocab, u64 seed,
 *   char teacher_sha256[64] (hex),
 *   u32 lengths[count], i32 tokens[sum lengths],
 *   u64 FNV-1a 64 checksum of every byte before it.
 * Written atomically (file_write_atomic: a temporary file, fsync, rename). */
#ifndef OB_DATA_H
#define OB_DATA_H

#include <stdint.h>

#include "model/model.h"
#include "format/tokenizer.h"

#define DATA_HELDOUT_PCT 5      /* held-out share, percent */
#define DATA_GREEDY_TOKENS 4    /* greedy tokens after the random first token */

typedef struct {
    int n_seq;          /* sequences; a stream is 2: [train part, held-out part] */
    int64_t *off;       /* (n_seq+1) offsets into tok */
    int *tok;           /* every token, sequences back to back */
    int n_train;        /* sequences [0,n_train) train, [n_train,n_seq) held out */
    int stream;         /* 1: windows at any offset of the one training stream */
    int seq_len;        /* window length (tokens) */
    int vocab;
    int64_t train_tokens;    /* tokens in training sequences */
    int64_t heldout_tokens;  /* tokens in held-out sequences */
} DataSet;

/* the RNG that samples windows (xorshift as in sampler.c) and its cursor */
typedef struct {
    uint64_t rng;
    uint64_t drawn;     /* windows drawn so far */
} DataCursor;

void data_cursor_init(DataCursor *c, uint64_t seed);
/* Build from text. split NULL or "": one stream (encoded once with BOS);
 * else one BOS-prefixed sequence per document (eval_split_docs rules).
 * Errors: empty text, text shorter than two windows (one to train, one held
 * out), fewer than two documents, seq_len < 2 or above model_ctx, tokens
 * outside the vocabulary. */
int data_from_text(DataSet *d, const Tokenizer *t, const char *text, const char *split,
                   int seq_len, int model_ctx, int vocab, char *err);
/* Build from sequences (copied); the last 5% (>= 1) are held out. */
int data_from_seqs(DataSet *d, int n, const int *lens, const int *tokens, int seq_len,
                   int model_ctx, int vocab, char *err);
void data_free(DataSet *d);

/* draw one training window of exactly seq_len tokens into out: a random
 * training sequence from a random offset; a sequence shorter than the window
 * is followed by further random sequences from their start (packing, each
 * keeps its BOS). Returns seq_len. Deterministic in the cursor. */
int data_sample(const DataSet *d, DataCursor *c, int *out);

/* held-out evaluation windows: each held-out sequence cut into
 * non-overlapping windows of seq_len tokens (pieces under 2 tokens dropped).
 * Returns the number of windows; window i is tok+start[i], len[i]. */
int data_heldout_windows(const DataSet *d, int64_t **start, int **len);

/* ---- teacher self-generation ---------------------------------------------- */
/* progress callback: done of total sequences; return nonzero to cancel */
typedef int (*DataProgressFn)(void *ud, int done, int total);

/* N sequences of at most seq_len tokens: BOS, a uniformly random first token
 * (not UNK/BOS/EOS nor a <0xXX> byte piece), DATA_GREEDY_TOKENS greedy tokens,
 * then sampled at temperature 1 until EOS/BOS (kept) or seq_len. Sequence i
 * has its own RNG seeded from (seed, i), so the result does not depend on
 * the number of threads (sequences are spread over `threads` worker jobs,
 * base/job.h, joined before this returns; fn is called from the caller's
 * thread, about every 0.2 s, and a nonzero return cancels the workers).
 * *lens and *tokens are malloc'd. */
int data_self_generate(const Model *m, const Tokenizer *t, int n, int seq_len, uint64_t seed, int threads,
                       int **lens, int **tokens, DataProgressFn fn, void *ud, char *err);

/* cache file name for a key: DIR/selfgen-<sha[0..16]>-s<seed>-n<N>-l<L>.tok (malloc'd) */
char *data_cache_path(const char *dir, const char *teacher_sha, uint64_t seed, int n, int seq_len);
int data_cache_write(const char *path, const char *teacher_sha, uint64_t seed, int seq_len, int vocab,
                     int n, const int *lens, const int *tokens, char *err);
/* read and validate (magic, version, checksum, key, lengths, token range);
 * a mismatching key or corrupt file is an error with a clear message */
int data_cache_read(const char *path, const char *teacher_sha, uint64_t seed, int seq_len, int vocab,
                    int n, int **lens, int **tokens, char *err);

/* a cache file's key, and any cache file read whatever its key (want NULL;
 * else a mismatch is data_cache_read's error): the same checks otherwise */
typedef struct {
    char teacher_sha[65];
    uint64_t seed;
    int n, seq_len, vocab;
} DataCacheKey;
int data_cache_load(const char *path, const DataCacheKey *want, DataCacheKey *key, int **lens, int **tokens, char *err);

/* The sequences as the OneBit authors' trainer (LLaMA-Factory) takes a
 * dataset, into the new or empty directory dir (written whole): a JSON list
 * of {"text": ...} in dir/onebit_selfgen.json (each sequence decoded with
 * t, without its BOS and from its first EOS/BOS on; bytes that are not
 * UTF-8 as U+FFFD) and dir/dataset_info.json with the entry
 * {"onebit_selfgen": {"file_name": "onebit_selfgen.json", "columns":
 * {"prompt": "text"}}} (pretraining-style: the text is the prompt column). */
#define DATA_LF_NAME "onebit_selfgen"
int data_write_llamafactory(const char *dir, const Tokenizer *t, int n, const int *lens, const int *tokens, char *err);

/* self-generate or reuse the cache (dir NULL: no cache) and build the set */
int data_self_generated(DataSet *d, const Model *m, const Tokenizer *t, const char *teacher_sha,
                        const char *cache_dir, int n, int seq_len, uint64_t seed, int threads, int *reused,
                        DataProgressFn fn, void *ud, char *err);

#endif
