/* generate.c -- prompt + sampling loop over model_step (see generate.h). */
#include "model/generate.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"

int gen_ctx_init(GenCtx *g, const Model *m, const Tokenizer *t, const GenParams *p, char *err)
{
    memset(g, 0, sizeof *g);
    const ModelConfig *c = &m->cfg;
    if (t->vocab_size < c->vocab_size) {
        ob_seterr(err, "tokenizer has %d tokens but the model has %d", t->vocab_size, c->vocab_size);
        return -1;
    }
    g->m = m;
    g->t = t;
    g->p = *p;
    g->last = -1;
    model_state_init(&g->s, c);
    sampler_init(&g->sm, c->vocab_size, p->temperature, p->topp, p->seed);
    sampler_set_filters(&g->sm, p->top_k, p->min_p);
    return 0;
}

void gen_ctx_free(GenCtx *g)
{
    if (!g->m) return;
    sampler_free(&g->sm);
    model_state_free(&g->s);
    free(g->hist);
    memset(g, 0, sizeof *g);
}

static void step(GenCtx *g, int token)
{
    g->logits = model_step(g->m, &g->s, token, g->pos++);
    g->last = token;
    g->hist = ob_grow(g->hist, (size_t)g->nhist, &g->cap, 256, sizeof(int));
    g->hist[g->nhist++] = token;
}

int gen_ctx_feed(GenCtx *g, const int *toks, int n, gen_callback cb, void *user, GenStats *st, char *err)
{
    const ModelConfig *c = &g->m->cfg;
    g->t_start = ob_now();
    if (n <= 0) { ob_seterr(err, "nothing to feed"); return -1; }
    if ((long)g->pos + n > c->seq_len) {
        ob_seterr(err, "%d more tokens do not fit: %d of the model's context of %d are used", n, g->pos, c->seq_len);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (toks[i] < 0 || toks[i] >= c->vocab_size) {
            ob_seterr(err, "token %d is outside the model's vocabulary (%d)", toks[i], c->vocab_size);
            return -1;
        }
    int stop = 0;
    for (int i = 0; i < n; i++) {
        if (cb && !stop && g->last >= 0 && cb(user, toks[i], tok_decode(g->t, g->last, toks[i]), 1)) stop = 1;
        step(g, toks[i]);
    }
    if (st) {
        st->prompt_tokens = n;
        st->prompt_seconds = ob_now() - g->t_start;
    }
    return 0;
}

int gen_ctx_generate(GenCtx *g, int n_new, int stop_token, gen_callback cb, void *user, GenStats *st)
{
    const ModelConfig *c = &g->m->cfg;
    const Tokenizer *t = g->t;
    int generated = 0;
    double t0 = ob_now(), first = 0;
    int last_n = g->p.repeat_last_n > 0 ? g->p.repeat_last_n : 64;
    while (g->logits && generated < n_new) {
        if (g->p.repeat_penalty > 0 && g->p.repeat_penalty != 1.0f) {
            int k = g->nhist < last_n ? g->nhist : last_n;
            sampler_penalize(g->logits, c->vocab_size, g->hist + g->nhist - k, k, g->p.repeat_penalty);
        }
        int next = sampler_sample(&g->sm, g->logits);
        generated++;
        if (generated == 1) first = ob_now() - g->t_start;
        if (next == stop_token && g->pos < c->seq_len) { step(g, next); break; }
        if (next == t->bos_id || next == t->eos_id || next == stop_token) break;
        if (cb && cb(user, next, tok_decode(t, g->last, next), 0)) break;
        if (generated >= n_new || g->pos >= c->seq_len) { g->last = next; break; }
        step(g, next);
    }
    if (st) {
        st->generated = generated;
        st->seconds = generated ? ob_now() - t0 : 0;
        st->first_token_seconds = first;
    }
    return generated;
}

int gen_run(const Model *m, const Tokenizer *t, const char *prompt, const GenParams *p,
            gen_callback cb, void *user, GenStats *st, char *err)
{
    int *toks;
    size_t n_toks;
    if (tok_encode(t, prompt ? prompt : "", 1, 0, &toks, &n_toks)) {
        ob_seterr(err, "cannot encode the prompt: the tokenizer is empty");
        return -1;
    }
    if (n_toks == 0) {
        ob_seterr(err, "the prompt gives no tokens");
        free(toks);
        return -1;
    }
    if (n_toks > (size_t)m->cfg.seq_len) {
        ob_seterr(err, "prompt has %zu tokens; the model's context is %d", n_toks, m->cfg.seq_len);
        free(toks);
        return -1;
    }
    GenCtx g;
    GenStats s = {0};
    int rc = gen_ctx_init(&g, m, t, p, err);
    if (!rc) rc = gen_ctx_feed(&g, toks, (int)n_toks, cb, user, &s, err);
    if (!rc) gen_ctx_generate(&g, p->n_new, -1, cb, user, &s);
    if (st) *st = s;
    gen_ctx_free(&g);
    free(toks);
    return rc;
}
