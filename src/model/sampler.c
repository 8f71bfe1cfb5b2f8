/* sampler.c -- llama2.c-compatible sampling (same RNG, same top-p rule), so a
 * seed gives the same text as llama2.c's run. */
#include "model/sampler.h"

#include <stdlib.h>

#include "base/common.h"
#include "model/model.h"

void sampler_init(Sampler *s, int vocab_size, float temperature, float topp, uint64_t seed)
{
    s->vocab_size = vocab_size;
    s->temperature = temperature;
    s->topp = topp;
    s->rng_state = seed;
    s->probindex = ob_malloc((size_t)vocab_size * sizeof(ProbIndex));
}

void sampler_free(Sampler *s)
{
    free(s->probindex);
    s->probindex = NULL;
}

uint32_t sampler_random_u32(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

float sampler_random_f32(uint64_t *state)
{
    return (sampler_random_u32(state) >> 8) / 16777216.0f;
}

int sampler_argmax(const float *v, int n)
{
    int best = 0;
    float max = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] > max) { max = v[i]; best = i; }
    return best;
}

static int sample_mult(const float *p, int n, float coin)
{
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += p[i];
        if (coin < cdf) return i;
    }
    return n - 1;
}

static int cmp_prob(const void *a, const void *b)
{
    const ProbIndex *x = a, *y = b;
    if (x->prob > y->prob) return -1;
    if (x->prob < y->prob) return 1;
    return 0;
}

static int sample_topp(const float *p, int n, float topp, ProbIndex *pi, float coin)
{
    int n0 = 0;
    const float cutoff = (1.0f - topp) / (n - 1);
    for (int i = 0; i < n; i++)
        if (p[i] >= cutoff) { pi[n0].index = i; pi[n0].prob = p[i]; n0++; }
    qsort(pi, n0, sizeof(ProbIndex), cmp_prob);
    float cum = 0.0f;
    int last = n0 - 1;
    for (int i = 0; i < n0; i++) {
        cum += pi[i].prob;
        if (cum > topp) { last = i; break; }
    }
    float r = coin * cum;
    float cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += pi[i].prob;
        if (r < cdf) return pi[i].index;
    }
    return pi[last].index;
}

int sampler_sample(Sampler *s, float *logits)
{
    if (s->temperature == 0.0f) return sampler_argmax(logits, s->vocab_size);
    for (int q = 0; q < s->vocab_size; q++) logits[q] /= s->temperature;
    model_softmax(logits, s->vocab_size);
    float coin = sampler_random_f32(&s->rng_state);
    if (s->topp <= 0 || s->topp >= 1) return sample_mult(logits, s->vocab_size, coin);
    return sample_topp(logits, s->vocab_size, s->topp, s->probindex, coin);
}
