/* test_model.c -- the FP32 engine against llama2.c: reference logits at
 * positions 0..7, the 256 greedy ids, batched == incremental forward, and
 * the reference NLLs of PROVENANCE.md through eval_text. */
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/eval.h"
#include "model/generate.h"
#include "model/model.h"
#include "test.h"
#include "format/tokenizer.h"

static int collect(void *user, int token, const char *piece, int is_prompt)
{
    int *ids = user;
    (void)piece; (void)is_prompt;
    ids[++ids[0]] = token;
    return 0;
}

int main(void)
{
    REQUIRE_SHARED(bin, "models/stories260K.bin");
    REQUIRE_SHARED(tokp, "models/tok512.bin");
    REQUIRE_SHARED(refp, "models/stories260K.ref_logits_pos0-7.txt");
    REQUIRE_SHARED(stories, "data/tinystories_train_head_sample.txt");
    REQUIRE_SHARED(wiki, "data/wiki.test.raw");
    const char *srcdir = getenv("ONEBIT_SRCDIR") ? getenv("ONEBIT_SRCDIR") : ".";
    char err[OB_ERRLEN];
    Model m;
    Tokenizer t;
    if (model_load(&m, bin, err) || tok_load(&t, tokp, 512, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const ModelConfig *c = &m.cfg;
    CHECK(c->dim == 64 && c->hidden_dim == 172 && c->n_layers == 5 && c->n_heads == 8 && c->n_kv_heads == 4 &&
          c->vocab_size == 512 && c->seq_len == 512 && c->shared_classifier, "config");
    CHECK(model_count_params(c) == 32768 + 320 + 20480 + 10240 + 10240 + 20480 + 320 + 3 * 55040 + 64, "params");

    /* reference logits, incremental and batched */
    FILE *f = fopen(refp, "r");
    int V = c->vocab_size;
    float *ref = malloc(8 * V * sizeof(float));
    int in_tok[8];
    for (int p = 0; p < 8; p++) {
        int pp;
        CHECK(fscanf(f, " pos %d in %d:", &pp, &in_tok[p]) == 2 && pp == p, "ref header %d", p);
        int got = 0;
        for (int i = 0; i < V; i++) got += fscanf(f, "%f", &ref[p * V + i]) == 1;
        CHECK(got == V, "ref values at pos %d: %d", p, got);
    }
    fclose(f);
    ModelState s;
    model_state_init(&s, c);
    double maxd = 0;
    for (int p = 0; p < 8; p++) {
        float *lg = model_step(&m, &s, in_tok[p], p);
        for (int i = 0; i < V; i++) { double d = fabs(lg[i] - ref[p * V + i]); if (d > maxd) maxd = d; }
    }
    CHECK(maxd <= 1e-4, "incremental logits differ from llama2.c by %g", maxd);
    ModelActs a;
    model_acts_init(&a, c, c->seq_len);
    float *logits = malloc((size_t)c->seq_len * V * sizeof(float));
    model_forward(&m, &a, in_tok, 8, logits, NULL);
    maxd = 0;
    for (int i = 0; i < 8 * V; i++) { double d = fabs(logits[i] - ref[i]); if (d > maxd) maxd = d; }
    CHECK(maxd <= 1e-4, "batched logits differ from llama2.c by %g", maxd);

    /* greedy generation from BOS: the 256 reference ids */
    char gp[4096];
    snprintf(gp, sizeof gp, "%s/tests/golden/stories260K_greedy_ids.txt", srcdir);
    f = fopen(gp, "r");
    CHECK(f != NULL, "open %s", gp);
    int want[256], nw = 0;
    while (f && nw < 256 && fscanf(f, "%d", &want[nw]) == 1) nw++;
    if (f) fclose(f);
    CHECK(nw == 256, "golden ids: %d", nw);
    int got[300] = {0};
    GenParams gpar = {.n_new = 256, .temperature = 0.0f, .topp = 0.0f, .seed = 1};
    GenStats st;
    CHECK(gen_run(&m, &t, "", &gpar, collect, got, &st, err) == 0, "%s", err);
    int same = got[0] == 256;
    for (int i = 0; same && i < 256; i++) same = got[1 + i] == want[i];
    CHECK(same, "greedy ids differ from llama2.c (%d generated)", got[0]);
    /* with the prompt: the ids after the prompt are ids 5..256 */
    memset(got, 0, sizeof got);
    gpar.n_new = 252;
    CHECK(gen_run(&m, &t, "Once upon a time", &gpar, collect, got, &st, err) == 0, "%s", err);
    same = got[0] == 256 && st.prompt_tokens == 5;
    for (int i = 0; same && i < 256; i++) same = got[1 + i] == want[i];
    CHECK(same, "prompted greedy ids differ (%d tokens)", got[0]);
    /* text of the first 60 ids */
    char text[2048] = "";
    int prev = 1;
    for (int i = 0; i < 60; i++) { strcat(text, tok_decode(&t, prev, want[i])); prev = want[i]; }
    CHECK(strcmp(text, "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
                       "One day, she saw a big, red ball. She wanted to play with it, but it was too high") == 0,
          "decoded: %s", text);

    /* batched == incremental over the whole 256-token greedy path */
    int seq[257];
    seq[0] = 1;
    memcpy(seq + 1, want, 256 * sizeof(int));
    model_forward(&m, &a, seq, 257, logits, NULL);
    model_state_free(&s);
    model_state_init(&s, c);
    maxd = 0;
    for (int p = 0; p < 257; p++) {
        float *lg = model_step(&m, &s, seq[p], p);
        for (int i = 0; i < V; i++) { double d = fabs(lg[i] - logits[(size_t)p * V + i]); if (d > maxd) maxd = d; }
    }
    CHECK(maxd <= 1e-4, "batched vs incremental: max diff %g", maxd);
    /* hidden states are returned per layer and the last equals the stream */
    float *hidden = malloc((size_t)c->n_layers * 16 * c->dim * sizeof(float));
    model_forward(&m, &a, seq, 16, logits, hidden);
    CHECK(memcmp(hidden + (size_t)(c->n_layers - 1) * 16 * c->dim, a.x, 16 * c->dim * sizeof(float)) == 0, "hidden");
    free(hidden);

    /* reference NLLs */
    char *txt;
    size_t len;
    CHECK(ob_read_file(stories, &txt, &len, err) == 0, "%s", err);
    EvalResult r;
    CHECK(eval_text(&m, &t, txt, 512, "<|endoftext|>", &r, err) == 0, "%s", err);
    CHECK(r.windows == 317 && r.tokens == 127850, "stories: %d docs, %ld tokens", r.windows, r.tokens);
    CHECK_NEAR(r.nll_sum / r.tokens, 1.505659, 1e-4, "TinyStories NLL");
    free(txt);
    CHECK(ob_read_file(wiki, &txt, &len, err) == 0, "%s", err);
    txt[20000] = 0;
    CHECK(eval_text(&m, &t, txt, 512, NULL, &r, err) == 0, "%s", err);
    CHECK(r.tokens == 12333, "wiki tokens %ld", r.tokens);
    CHECK_NEAR(r.nll_sum / r.tokens, 4.702608, 1e-4, "wiki NLL");
    free(txt);
    /* bad seq-len */
    CHECK(eval_text(&m, &t, "hello", 513, NULL, &r, err) == -1, "seq-len above the model's");
    /* a tokenizer that cannot encode: an error, in both modes (tok_encode's
     * result was unchecked) */
    Tokenizer empty;
    memset(&empty, 0, sizeof empty);
    err[0] = 0;
    CHECK(eval_text(&m, &empty, "Once upon a time there was a cat.", 16, NULL, &r, err) == -1 && strstr(err, "tokenizer"),
          "eval with an empty tokenizer: %s", err);
    err[0] = 0;
    CHECK(eval_text(&m, &empty, "a<|endoftext|>b", 16, "<|endoftext|>", &r, err) == -1 && strstr(err, "tokenizer"),
          "eval (documents) with an empty tokenizer: %s", err);
    empty.vocab_size = c->vocab_size; /* past gen_run's size check */
    GenParams egp = {.n_new = 4, .temperature = 0, .topp = 1, .seed = 1};
    err[0] = 0;
    CHECK(gen_run(&m, &empty, "Once", &egp, NULL, NULL, NULL, err) == -1 && strstr(err, "tokenizer"),
          "generate with an empty tokenizer: %s", err);

    free(logits);
    free(ref);
    model_acts_free(&a);
    model_state_free(&s);
    tok_free(&t);
    model_free(&m);
    return test_done("test_model");
}
