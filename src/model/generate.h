/* generate.h -- text generation with the incremental forward: feed the
 * prompt, then sample N new tokens, stopping at BOS/EOS or the context end. */
#ifndef OB_GENERATE_H
#define OB_GENERATE_H

#include <stdint.h>
#include "model/model.h"
#include "format/tokenizer.h"

typedef struct {
    int n_new;          /* new tokens to generate */
    float temperature;  /* 0 = greedy */
    float topp;         /* 0 or 1 = off */
    uint64_t seed;
} GenParams;

typedef struct {
    int prompt_tokens;
    int generated;
    double seconds;     /* wall time of the generated part */
} GenStats;

/* Called for every token after BOS, prompt tokens included (as llama2.c
 * prints them); piece is the decoded text. Return nonzero to stop. */
typedef int (*gen_callback)(void *user, int token, const char *piece, int is_prompt);

int gen_run(const Model *m, const Tokenizer *t, const char *prompt, const GenParams *p,
            gen_callback cb, void *user, GenStats *st, char *err);

#endif
