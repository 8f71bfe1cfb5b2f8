/* sampler.h -- next-token sampling as llama2.c does it: greedy (temp 0),
 * temperature, top-p (nucleus), xorshift RNG with a seed. */
#ifndef OB_SAMPLER_H
#define OB_SAMPLER_H

#include <stdint.h>

typedef struct { float prob; int index; } ProbIndex;

typedef struct {
    int vocab_size;
    float temperature;
    float topp;
    uint64_t rng_state;
    ProbIndex *probindex;
} Sampler;

void sampler_init(Sampler *s, int vocab_size, float temperature, float topp, uint64_t seed);
void sampler_free(Sampler *s);
/* samples from logits (modified in place) */
int sampler_sample(Sampler *s, float *logits);
int sampler_argmax(const float *v, int n);
uint32_t sampler_random_u32(uint64_t *state);
float sampler_random_f32(uint64_t *state);

#endif
