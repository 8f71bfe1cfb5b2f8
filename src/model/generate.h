/* generate.h -- text generation with the incremental forward: feed the
 * prompt, then sample N new tokens, stopping at BOS/EOS (or a chat
 * template's end-of-turn token) or the context end. gen_run does one prompt;
 * a GenCtx keeps the KV cache between calls, so a chat feeds each turn on top
 * of the last. Reentrant: one GenCtx per thread; the model is only read. */
#ifndef OB_GENERATE_H
#define OB_GENERATE_H

#include <stdint.h>
#include "model/model.h"
#include "model/sampler.h"
#include "format/tokenizer.h"

typedef struct {
    int n_new;          /* new tokens to generate */
    float temperature;  /* 0 = greedy */
    float topp;         /* 0 or 1 = off */
    uint64_t seed;
    /* llama.cpp's, off when 0 (the fields a short initialiser leaves out) */
    int top_k;          /* keep the k most likely tokens */
    float min_p;        /* drop tokens below min_p x the top probability */
    float repeat_penalty; /* > 1 penalises the last repeat_last_n tokens (0 or 1: off) */
    int repeat_last_n;  /* 0: 64, as llama.cpp */
} GenParams;

typedef struct {
    int prompt_tokens;
    int generated;
    double seconds;        /* wall time of the generated part (from the first sample) */
    double prompt_seconds; /* wall time of feeding the prompt */
    double first_token_seconds; /* from the start to the first new token (time to first token) */
} GenStats;

/* Called for every token after BOS, prompt tokens included (as llama2.c
 * prints them); piece is the decoded text. Return nonzero to stop. */
typedef int (*gen_callback)(void *user, int token, const char *piece, int is_prompt);

int gen_run(const Model *m, const Tokenizer *t, const char *prompt, const GenParams *p,
            gen_callback cb, void *user, GenStats *st, char *err);

/* ---- a generation context kept across calls (chat) ---------------------- */
typedef struct {
    const Model *m;
    const Tokenizer *t;
    GenParams p;
    ModelState s;
    Sampler sm;
    int pos;            /* tokens in the KV cache */
    int last;           /* the last token fed (-1: none) */
    float *logits;      /* model_step's logits after it (NULL before any) */
    int *hist;          /* every token fed, for the repetition penalty */
    int nhist, cap;
    double t_start;     /* when the current gen_ctx_feed began */
} GenCtx;

int gen_ctx_init(GenCtx *g, const Model *m, const Tokenizer *t, const GenParams *p, char *err);
void gen_ctx_free(GenCtx *g);
/* feed tokens on top of the context (a prompt, a chat turn); cb (may be
 * NULL) sees each one after the first token of the context. -1 with err
 * when they do not fit the context or are outside the vocabulary. st (may be
 * NULL) gets prompt_tokens and prompt_seconds. */
int gen_ctx_feed(GenCtx *g, const int *toks, int n, gen_callback cb, void *user, GenStats *st, char *err);
/* sample up to n_new tokens after what was fed, each fed back except the
 * last; stops at BOS, EOS, stop_token (-1: none), the context end or cb's
 * nonzero return. st gets generated, seconds, first_token_seconds (from the
 * last gen_ctx_feed's start). The stop token is fed (it ends the turn in
 * the cache) but not passed to cb. */
int gen_ctx_generate(GenCtx *g, int n_new, int stop_token, gen_callback cb, void *user, GenStats *st);

#endif
