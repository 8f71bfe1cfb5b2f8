/* sampler.h -- next-token sampling as llama2.c does it: greedy (temp 0),
 * temperature, top-p (nucleus), xorshift RNG with a seed; and, off unless
 * set, llama.cpp's top-k, min-p and repetition penalty. With those off a seed
 * gives llama2.c's text. Reentrant: one Sampler per thread. */
#ifndef OB_SAMPLER_H
#define OB_SAMPLER_H

#include <stdint.h>

typedef struct { float prob; int index; } ProbIndex;

typedef struct {
    int vocab_size;
    float temperature;
    float topp;
    int top_k;          /* keep the k most likely tokens (0: off) */
    float min_p;        /* drop tokens below min_p x the most likely one's probability (0: off) */
    uint64_t rng_state;
    ProbIndex *probindex;
} Sampler;

void sampler_init(Sampler *s, int vocab_size, float temperature, float topp, uint64_t seed);
void sampler_free(Sampler *s);
/* llama.cpp's filters, on the probabilities after the temperature: top-k,
 * then min-p, each renormalising; 0 turns each off (the default) */
void sampler_set_filters(Sampler *s, int top_k, float min_p);
/* llama.cpp's repetition penalty on logits (before sampling): every token
 * among recent[0..n) has its logit divided by penalty when positive, else
 * multiplied by it (each token once); penalty 1 changes nothing */
void sampler_penalize(float *logits, int vocab_size, const int *recent, int n, float penalty);
/* samples from logits (modified in place) */
int sampler_sample(Sampler *s, float *logits);
int sampler_argmax(const float *v, int n);
uint32_t sampler_random_u32(uint64_t *state);
float sampler_random_f32(uint64_t *state);

#endif
