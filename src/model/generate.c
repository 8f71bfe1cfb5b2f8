/* generate.c -- prompt + sampling loop over model_step (see generate.h). */
#include "model/generate.h"

#include <stdlib.h>

#include "base/common.h"
#include "model/sampler.h"

int gen_run(const Model *m, const Tokenizer *t, const char *prompt, const GenParams *p,
            gen_callback cb, void *user, GenStats *st, char *err)
{
    const ModelConfig *c = &m->cfg;
    if (t->vocab_size < c->vocab_size) {
        ob_seterr(err, "tokenizer has %d tokens but the model has %d", t->vocab_size, c->vocab_size);
        return -1;
    }
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
    if (n_toks > (size_t)c->seq_len) {
        ob_seterr(err, "prompt has %zu tokens; the model's context is %d", n_toks, c->seq_len);
        free(toks);
        return -1;
    }
    int nt = (int)n_toks;
    for (int i = 0; i < nt; i++) {
        if (toks[i] >= c->vocab_size) {
            ob_seterr(err, "prompt token %d is outside the model's vocabulary (%d)", toks[i], c->vocab_size);
            free(toks);
            return -1;
        }
    }
    ModelState s;
    model_state_init(&s, c);
    Sampler sm;
    sampler_init(&sm, c->vocab_size, p->temperature, p->topp, p->seed);
    int token = toks[0], generated = 0, stop = 0;
    double t0 = 0;
    for (int pos = 0; pos < c->seq_len && !stop; pos++) {
        if (pos >= nt - 1 && generated >= p->n_new) break;
        float *logits = model_step(m, &s, token, pos);
        int next, is_prompt = pos < nt - 1;
        if (is_prompt) next = toks[pos + 1];
        else {
            if (generated == 0) t0 = ob_now();
            next = sampler_sample(&sm, logits);
            generated++;
        }
        if (!is_prompt && (next == t->bos_id || next == t->eos_id)) break;
        if (cb && cb(user, next, tok_decode(t, token, next), is_prompt)) stop = 1;
        token = next;
    }
    if (st) {
        st->prompt_tokens = nt;
        st->generated = generated;
        st->seconds = generated ? ob_now() - t0 : 0;
    }
    sampler_free(&sm);
    model_state_free(&s);
    free(toks);
    return 0;
}
