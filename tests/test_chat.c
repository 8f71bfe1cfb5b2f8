/* tests/test_chat.c -- chat templates (src/model/chat.c): the family of
 * real models' Jinja templates, each family's rendering decoded back to the
 * text it stands for (Llama 2's SentencePiece tokenizer for llama2, mistral,
 * zephyr and plain completion; a byte-level tokenizer with the special
 * tokens for chatml and llama3, which must come out as single ids), stop
 * tokens, bad conversations; and the sampler's llama.cpp filters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/chat.h"
#include "model/sampler.h"
#include "test.h"

/* ids back to text: SentencePiece BOS/EOS as <s>/</s>, the rest as
 * tok_decode gives them */
static char *ids_text(const Tokenizer *t, const int *ids, int n)
{
    size_t cap = 16;
    for (int i = 0; i < n; i++) cap += 16 + (ids[i] >= 0 && ids[i] < t->vocab_size ? strlen(t->vocab[ids[i]]) : 0);
    char *s = calloc(1, cap);
    for (int i = 0; i < n; i++) {
        if (t->mode == TOK_SPM && ids[i] == t->bos_id) strcat(s, "<s>");
        else if (t->mode == TOK_SPM && ids[i] == t->eos_id) strcat(s, "</s>");
        else strcat(s, tok_decode(t, i ? ids[i - 1] : -1, ids[i]));
    }
    return s;
}

static void render_is(ChatFamily f, const Tokenizer *t, const ChatMsg *m, int n, const char *want)
{
    int *ids, k;
    char err[OB_ERRLEN] = "";
    CHECK(chat_render(f, t, m, n, &ids, &k, err) == 0, "%s: %s", chat_family_name(f), err);
    if (!ids) return;
    char *got = ids_text(t, ids, k);
    CHECK(!strcmp(got, want), "%s renders\n  '%s'\nnot\n  '%s'", chat_family_name(f), got, want);
    free(got);
    free(ids);
}

static int count_id(const Tokenizer *t, ChatFamily f, const ChatMsg *m, int n, int id)
{
    int *ids, k, c = 0;
    char err[OB_ERRLEN];
    if (chat_render(f, t, m, n, &ids, &k, err)) return -1;
    for (int i = 0; i < k; i++) c += ids[i] == id;
    free(ids);
    return c;
}

static const ChatMsg conv[] = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Why?"}};

static void test_detect(void)
{
    /* markers of the templates these families ship with */
    CHECK(chat_detect(NULL) == CHAT_NONE && chat_detect("{{ messages }}") == CHAT_NONE, "none");
    CHECK(chat_detect("{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}"
                      "{{ bos_token + '[INST] ' + content + ' [/INST]' }}") == CHAT_LLAMA2, "llama2");
    CHECK(chat_detect("{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}") == CHAT_MISTRAL, "mistral");
    CHECK(chat_detect("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}") == CHAT_LLAMA3, "llama3");
    CHECK(chat_detect("{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}") == CHAT_CHATML, "chatml");
    CHECK(chat_detect("{{ '<|user|>\\n' + message['content'] + eos_token }}{{ '<|assistant|>' }}") == CHAT_ZEPHYR, "zephyr (TinyLlama chat)");
    for (int f = 0; f < CHAT_NFAMILIES; f++) CHECK(chat_family_parse(chat_family_name(f)) == f, "name %d", f);
    CHECK(chat_family_parse("vicuna") == -1, "unknown name");
}

static void test_spm(const char *path)
{
    Tokenizer t;
    char err[OB_ERRLEN];
    CHECK(tok_load(&t, path, 32000, err) == 0, "%s", err);
    if (!t.vocab) return;
    render_is(CHAT_LLAMA2, &t, conv, 4, "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] Why? [/INST]");
    render_is(CHAT_MISTRAL, &t, conv, 4, "<s>[INST] Be brief.\n\nHi [/INST]Hello</s> [INST] Why? [/INST]");
    render_is(CHAT_ZEPHYR, &t, conv, 4,
              "<s><|system|>\nBe brief.</s> \n<|user|>\nHi</s> \n<|assistant|>\nHello</s> \n<|user|>\nWhy?</s> \n<|assistant|>\n");
    render_is(CHAT_NONE, &t, conv, 4, "<s>Be brief.\nHi\nHello\nWhy?");
    render_is(CHAT_LLAMA2, &t, conv + 1, 1, "<s>[INST] Hi [/INST]");
    /* Llama 2 does not have the other families' special tokens: their text */
    render_is(CHAT_CHATML, &t, conv + 1, 1, " <|im_start|> user\nHi <|im_end|> \n <|im_start|> assistant\n");
    CHECK(chat_stop_token(CHAT_LLAMA2, &t) == t.eos_id && chat_stop_token(CHAT_NONE, &t) == -1, "spm stop tokens");
    /* bad conversations */
    int *ids, k;
    const ChatMsg bad1[] = {{"user", "a"}, {"user", "b"}}, bad2[] = {{"system", "s"}}, bad3[] = {{"user", "a"}, {"assistant", "b"}},
                  bad4[] = {{"tool", "x"}};
    CHECK(chat_render(CHAT_LLAMA2, &t, bad1, 2, &ids, &k, err) == -1 && strstr(err, "'assistant'"), "two user messages: %s", err);
    CHECK(chat_render(CHAT_LLAMA2, &t, bad2, 1, &ids, &k, err) == -1 && strstr(err, "needs a user"), "system only: %s", err);
    CHECK(chat_render(CHAT_LLAMA2, &t, bad3, 2, &ids, &k, err) == -1 && strstr(err, "last message"), "ends with the assistant: %s", err);
    CHECK(chat_render(CHAT_LLAMA2, &t, bad4, 1, &ids, &k, err) == -1 && strstr(err, "'tool'"), "unknown role: %s", err);
    CHECK(chat_render(CHAT_LLAMA2, &t, conv, 0, &ids, &k, err) == -1 && ids == NULL, "empty conversation");
    tok_free(&t);
}


static void test_bytelevel(void)
{
    static const char *special[] = {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|im_start|>", "<|im_end|>"};
    const int ns = 6, n = 256 + ns;
    char **pieces = calloc(n, sizeof *pieces);
    int *types = calloc(n, sizeof *types);
    for (int b = 0; b < 256; b++) { pieces[b] = malloc(4); test_b2u(b, pieces[b]); types[b] = 1; }
    for (int i = 0; i < ns; i++) { pieces[256 + i] = strdup(special[i]); types[256 + i] = 3; }
    Tokenizer t;
    char err[OB_ERRLEN];
    int rc = tok_init_bytelevel(&t, n, (const char *const *)pieces, types, 0, NULL, 256, -1, TOK_PRE_LLAMA3, err);
    for (int i = 0; i < n; i++) free(pieces[i]);
    free(pieces);
    free(types);
    CHECK(rc == 0, "byte-level tokenizer: %s", err);
    if (rc) return;
    render_is(CHAT_LLAMA3, &t, conv, 4,
              "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nWhy?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    render_is(CHAT_CHATML, &t, conv, 4,
              "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
              "<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n");
    CHECK(count_id(&t, CHAT_CHATML, conv, 4, 256 + 4) == 5 && count_id(&t, CHAT_CHATML, conv, 4, 256 + 5) == 4, "chatml specials as ids");
    CHECK(count_id(&t, CHAT_LLAMA3, conv, 4, 256 + 3) == 4 && count_id(&t, CHAT_LLAMA3, conv, 4, 256 + 0) == 1, "llama3 specials as ids");
    CHECK(chat_stop_token(CHAT_LLAMA3, &t) == 256 + 3 && chat_stop_token(CHAT_CHATML, &t) == 256 + 5, "stop tokens");
    tok_free(&t);
}

static void test_sampler(void)
{
    float base[8] = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f, -1.0f, 0.0f, 1.5f}, l[8];
    Sampler s;
    /* top-k 1 and min-p 1 are greedy whatever the temperature and seed */
    for (uint64_t seed = 1; seed < 40; seed++) {
        sampler_init(&s, 8, 1.5f, 0.0f, seed);
        sampler_set_filters(&s, 1, 0.0f);
        memcpy(l, base, sizeof l);
        CHECK(sampler_sample(&s, l) == 1, "top-k 1 is the argmax (seed %d)", (int)seed);
        sampler_set_filters(&s, 0, 1.0f);
        memcpy(l, base, sizeof l);
        CHECK(sampler_sample(&s, l) == 1, "min-p 1 is the argmax (seed %d)", (int)seed);
        /* top-k 2: only tokens 1 and 4 */
        sampler_set_filters(&s, 2, 0.0f);
        memcpy(l, base, sizeof l);
        int k = sampler_sample(&s, l);
        CHECK(k == 1 || k == 4, "top-k 2 gave %d", k);
        sampler_free(&s);
    }
    /* min-p 0.5 at temperature 1: p(4)/p(1) = e^-0.1 ~ 0.9 stays, p(2)/p(1) = e^-1 ~ 0.37 goes */
    sampler_init(&s, 8, 1.0f, 0.0f, 7);
    sampler_set_filters(&s, 0, 0.5f);
    int seen[8] = {0};
    for (int r = 0; r < 400; r++) { memcpy(l, base, sizeof l); seen[sampler_sample(&s, l)]++; }
    CHECK(seen[1] > 0 && seen[4] > 0 && seen[1] + seen[4] == 400, "min-p 0.5 keeps only tokens 1 and 4 (%d %d)", seen[1], seen[4]);
    sampler_free(&s);
    /* the repetition penalty, each token once */
    memcpy(l, base, sizeof l);
    int recent[] = {1, 5, 1, 9};
    sampler_penalize(l, 8, recent, 4, 2.0f);
    CHECK(l[1] == 1.5f && l[5] == -2.0f && l[0] == 1.0f && l[4] == 2.9f, "penalty: %g %g", l[1], l[5]);
    memcpy(l, base, sizeof l);
    sampler_penalize(l, 8, recent, 4, 1.0f);
    CHECK(!memcmp(l, base, sizeof l), "penalty 1 changes nothing");
}

int main(void)
{
    test_detect();
    test_bytelevel();
    test_sampler();
    REQUIRE_SHARED(tok32k, "models/tokenizer.bin"); /* after the model-free parts */
    test_spm(tok32k);
    return test_done("test_chat");
}
