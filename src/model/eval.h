/* eval.h -- teacher-forced negative log-likelihood / perplexity of a model
 * on a text, in the two windowings our reference figures use. */
#ifndef OB_EVAL_H
#define OB_EVAL_H

#include "model/model.h"
#include "format/tokenizer.h"

typedef struct {
    double nll_sum;   /* nats */
    long tokens;      /* predicted tokens */
    int windows;      /* windows or documents */
} EvalResult;

/* Without split: the whole text encoded once with BOS, cut into
 * non-overlapping windows of seq_len tokens, loss on tokens 1..L-1 of each.
 * With split (e.g. "<|endoftext|>"): each whitespace-stripped, non-empty
 * document encoded with BOS and truncated to seq_len. */
int eval_text(const Model *m, const Tokenizer *t, const char *text, int seq_len,
              const char *split, EvalResult *r, char *err);

/* split text into documents: stripped, non-empty; returns the count.
 * *docs is malloc'd, each entry malloc'd. */
int eval_split_docs(const char *text, const char *sep, char ***docs);

/* NLL sum over positions 0..T-2 of logits (T,V) predicting tokens[1..T-1] */
/* 0 when every id in tok[0..n) is in 0..V-1, else -1 with err */
int eval_check_tokens(const int *tok, size_t n, int V, char *err);

double eval_nll_sum(const float *logits, const int *tokens, int T, int V);

#endif
