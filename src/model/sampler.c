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
    s->top_k = 0;
    s->min_p = 0.0f;
    s->rng_state = seed;
    s->probindex = ob_malloc((size_t)vocab_size * sizeof(ProbIndex));
}

void sampler_free(Sampler *s)
{
    free(s->probindex);
    s->probindex = NULL;
}

void sampler_set_filters(Sampler *s, int top_k, float min_p)
{
    s->top_k = top_k > 0 && top_k < s->vocab_size ? top_k : 0;
    s->min_p = min_p > 0 && min_p <= 1 ? min_p : 0.0f;
}

void sampler_penalize(float *logits, int vocab_size, const int *recent, int n, float penalty)
{
    if (penalty == 1.0f || !(penalty > 0)) return;
    for (int i = 0; i < n; i++) {
        int t = recent[i];
        if (t < 0 || t >= vocab_size) continue;
        int seen = 0; /* each token once, as llama.cpp counts them */
        for (int j = 0; j < i && !seen; j++) seen = recent[j] == t;
        if (seen) continue;
        logits[t] = logits[t] > 0 ? logits[t] / penalty : logits[t] * penalty;
    }
}

/* probabilities p to 0 outside the k largest (ties at the k-th value
 * kept), the rest renormalised (the temperature keeps the order of the
 * logits, so this is top-k over the logits) */
static void keep_top_k(float *p, int n, int k, ProbIndex *pi)
{
    for (int i = 0; i < n; i++) { pi[i].prob = p[i]; pi[i].index = i; }
    /* the k-th largest by quickselect */
    int lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float pivot = pi[(lo + hi) / 2].prob;
        int i = lo, j = hi;
        while (i <= j) {
            while (pi[i].prob > pivot) i++;
            while (pi[j].prob < pivot) j--;
            if (i <= j) { ProbIndex t = pi[i]; pi[i] = pi[j]; pi[j] = t; i++; j--; }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break;
    }
    float kth = pi[want].prob, sum = 0.0f;
    for (int i = 0; i < n; i++) {
        if (p[i] < kth) p[i] = 0.0f;
        sum += p[i];
    }
    for (int i = 0; i < n; i++) p[i] /= sum;
}

/* probabilities below min_p x the largest to 0, the rest renormalised */
static void keep_min_p(float *p, int n, float min_p)
{
    float mx = 0.0f;
    for (int i = 0; i < n; i++) if (p[i] > mx) mx = p[i];
    float cut = min_p * mx, sum = 0.0f;
    for (int i = 0; i < n; i++) {
        if (p[i] < cut) p[i] = 0.0f;
        sum += p[i];
    }
    for (int i = 0; i < n; i++) p[i] /= sum;
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
    if (s->top_k) keep_top_k(logits, s->vocab_size, s->top_k, s->probindex);
    if (s->min_p > 0) keep_min_p(logits, s->vocab_size, s->min_p);
    float coin = sampler_random_f32(&s->rng_state);
    if (s->topp <= 0 || s->topp >= 1) return sample_mult(logits, s->vocab_size, coin);
    return sample_topp(logits, s->vocab_size, s->topp, s->probindex, coin);
}
