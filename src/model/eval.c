/* eval.c -- perplexity evaluation with the batched forward (see eval.h). */
#include "model/eval.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

double eval_nll_sum(const float *logits, const int *tokens, int T, int V)
{
    double sum = 0;
    for (int t = 0; t + 1 < T; t++) {
        const float *row = logits + (size_t)t * V;
        float max = row[0];
        for (int i = 1; i < V; i++) if (row[i] > max) max = row[i];
        double s = 0;
        for (int i = 0; i < V; i++) s += exp((double)row[i] - max);
        sum += log(s) + max - row[tokens[t + 1]];
    }
    return sum;
}

int eval_split_docs(const char *text, const char *sep, char ***docs)
{
    size_t cap = 64, n = 0, sl = strlen(sep);
    char **d = ob_malloc(cap * sizeof(char *));
    const char *p = text;
    for (;;) {
        const char *e = sl ? strstr(p, sep) : NULL;
        const char *end = e ? e : p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        if (b > a) {
            if (n == cap) { cap *= 2; d = realloc(d, cap * sizeof(char *)); if (!d) abort(); }
            d[n] = ob_malloc(b - a + 1);
            memcpy(d[n], a, b - a);
            d[n][b - a] = 0;
            n++;
        }
        if (!e) break;
        p = e + sl;
    }
    *docs = d;
    return (int)n;
}

int eval_check_tokens(const int *tok, size_t n, int V, char *err)
{
    for (size_t i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= V) {
            ob_seterr(err, "token id %d is outside the model's vocabulary (%d): wrong tokenizer?", tok[i], V);
            return -1;
        }
    return 0;
}

int eval_text(const Model *m, const Tokenizer *t, const char *text, int seq_len,
              const char *split, EvalResult *r, char *err)
{
    const ModelConfig *c = &m->cfg;
    memset(r, 0, sizeof *r);
    if (seq_len < 2 || seq_len > c->seq_len) {
        ob_seterr(err, "--seq-len %d must be between 2 and the model's context %d", seq_len, c->seq_len);
        return -1;
    }
    ModelActs a;
    model_acts_init(&a, c, seq_len);
    float *logits = ob_aligned_alloc(64, (size_t)seq_len * c->vocab_size * sizeof(float));
    int rc = 0;
    if (split && *split) {
        char **docs;
        int nd = eval_split_docs(text, split, &docs);
        for (int i = 0; i < nd; i++) {
            int *tok = NULL;
            size_t nt = 0;
            if (rc == 0 && tok_encode(t, docs[i], 1, 0, &tok, &nt)) {
                ob_seterr(err, "cannot encode the text: the tokenizer is empty");
                rc = -1;
            }
            int n = nt > (size_t)seq_len ? seq_len : (int)nt;
            if (rc == 0 && eval_check_tokens(tok, (size_t)n, c->vocab_size, err)) rc = -1;
            if (rc == 0 && n >= 2) {
                model_forward(m, &a, tok, n, logits, NULL);
                r->nll_sum += eval_nll_sum(logits, tok, n, c->vocab_size);
                r->tokens += n - 1;
                r->windows++;
            }
            free(tok);
            free(docs[i]);
        }
        free(docs);
    } else {
        int *tok;
        size_t n;
        if (tok_encode(t, text, 1, 0, &tok, &n)) {
            ob_seterr(err, "cannot encode the text: the tokenizer is empty");
            rc = -1;
        }
        if (rc == 0 && eval_check_tokens(tok, n, c->vocab_size, err)) rc = -1;
        for (size_t s = 0; rc == 0 && s < n; s += (size_t)seq_len) {
            int w = n - s < (size_t)seq_len ? (int)(n - s) : seq_len;
            if (w < 2) break;
            model_forward(m, &a, tok + s, w, logits, NULL);
            r->nll_sum += eval_nll_sum(logits, tok + s, w, c->vocab_size);
            r->tokens += w - 1;
            r->windows++;
        }
        free(tok);
    }
    free(logits);
    model_acts_free(&a);
    if (rc == 0 && r->tokens == 0) {
        ob_seterr(err, "the text gives no token to predict");
        return -1;
    }
    return rc;
}
