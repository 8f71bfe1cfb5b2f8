/* src/model/chat.c -- chat templates (see chat.h): recognising a model's
 * family from its Jinja template, rendering a conversation to token ids. */
#include "model/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

static const char *const names[CHAT_NFAMILIES] = {"none", "llama2", "mistral", "llama3", "chatml", "zephyr"};

const char *chat_family_name(ChatFamily f) { return f >= 0 && f < CHAT_NFAMILIES ? names[f] : "?"; }

int chat_family_parse(const char *name)
{
    for (int i = 0; i < CHAT_NFAMILIES; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

const char *chat_family_list(void) { return "none|llama2|mistral|llama3|chatml|zephyr"; }

ChatFamily chat_detect(const char *j)
{
    if (!j) return CHAT_NONE;
    if (strstr(j, "<|start_header_id|>")) return CHAT_LLAMA3;
    if (strstr(j, "<|im_start|>")) return CHAT_CHATML;
    if (strstr(j, "<|user|>") && strstr(j, "<|assistant|>")) return CHAT_ZEPHYR;
    if (strstr(j, "<<SYS>>")) return CHAT_LLAMA2;
    if (strstr(j, "[INST]")) return CHAT_MISTRAL;
    return CHAT_NONE;
}

/* ---- token ids, growing -------------------------------------------------- */
typedef struct {
    const Tokenizer *t;
    int *v;
    int n, cap, bad;
} Ids;

static void put_id(Ids *b, int id)
{
    if (id < 0) return;
    b->v = ob_grow(b->v, (size_t)b->n, &b->cap, 256, sizeof(int));
    b->v[b->n++] = id;
}

/* text encoded on its own (no BOS/EOS) */
static void put_text(Ids *b, const char *s)
{
    if (!*s) return;
    int *ids;
    size_t n;
    if (tok_encode(b->t, s, 0, 0, &ids, &n)) { b->bad = 1; return; }
    for (size_t i = 0; i < n; i++) put_id(b, ids[i]);
    free(ids);
}

/* a special token as a whole piece of the vocabulary, else its text */
static int special_id(const Tokenizer *t, const char *piece) { return tok_lookup(t, piece, strlen(piece)); }

static void put_special(Ids *b, const char *piece)
{
    int id = special_id(b->t, piece);
    if (id >= 0) put_id(b, id);
    else put_text(b, piece);
}

/* text of the formats below (role/text spliced into a fixed frame) */
static void put_fmt(Ids *b, const char *a, const char *mid, const char *c)
{
    size_t n = strlen(a) + strlen(mid) + strlen(c) + 1;
    char *s = ob_malloc(n);
    snprintf(s, n, "%s%s%s", a, mid, c);
    put_text(b, s);
    free(s);
}

/* messages: an optional system one first, then user/assistant alternating,
 * ending with a user one */
static int check_order(const ChatMsg *m, int n, char *err)
{
    int i = n > 0 && !strcmp(m[0].role, "system") ? 1 : 0;
    if (i >= n) { ob_seterr(err, "a conversation needs a user message"); return -1; }
    for (int k = 0; i < n; i++, k++) {
        const char *want = k % 2 ? "assistant" : "user";
        if (!m[i].text) { ob_seterr(err, "message %d has no text", i); return -1; }
        if (strcmp(m[i].role, want)) {
            ob_seterr(err, "message %d is '%s' where a '%s' one belongs (system first, then user and assistant turns, ending with user)",
                      i, m[i].role, want);
            return -1;
        }
    }
    if (strcmp(m[n - 1].role, "user")) { ob_seterr(err, "the last message must be the user's"); return -1; }
    return 0;
}

int chat_render(ChatFamily f, const Tokenizer *t, const ChatMsg *msgs, int n, int **out, int *nout, char *err)
{
    *out = NULL;
    *nout = 0;
    if (!t || t->vocab_size <= 0) { ob_seterr(err, "no tokenizer"); return -1; }
    if (check_order(msgs, n, err)) return -1;
    const char *sys = !strcmp(msgs[0].role, "system") ? msgs[0].text : NULL;
    int i0 = sys ? 1 : 0;
    Ids b = {t, NULL, 0, 0, 0};
    switch (f) {
    case CHAT_LLAMA2: /* Meta's reference: [BOS] "[INST] U [/INST] A " [EOS] per turn */
    case CHAT_MISTRAL: /* [BOS] "[INST] U [/INST]A" [EOS] ... "[INST] U [/INST]" */
        for (int i = i0; i < n; i += 2) {
            const char *u = msgs[i].text, *a = i + 1 < n ? msgs[i + 1].text : NULL;
            size_t k = strlen(u) + (sys ? strlen(sys) : 0) + (a ? strlen(a) : 0) + 48;
            char *turn = ob_malloc(k), *p = turn;
            p += sprintf(p, "[INST] ");
            if (i == i0 && sys) p += sprintf(p, f == CHAT_LLAMA2 ? "<<SYS>>\n%s\n<</SYS>>\n\n" : "%s\n\n", sys);
            p += sprintf(p, "%s [/INST]", u);
            if (a) sprintf(p, f == CHAT_LLAMA2 ? " %s " : "%s", a);
            if (f == CHAT_LLAMA2 || i == i0) put_id(&b, t->bos_id);
            put_text(&b, turn);
            free(turn);
            if (a) put_id(&b, t->eos_id);
        }
        break;
    case CHAT_LLAMA3:
        put_special(&b, "<|begin_of_text|>");
        for (int i = 0; i <= n; i++) {
            put_special(&b, "<|start_header_id|>");
            put_text(&b, i < n ? msgs[i].role : "assistant");
            put_special(&b, "<|end_header_id|>");
            if (i == n) { put_text(&b, "\n\n"); break; }
            put_fmt(&b, "\n\n", msgs[i].text, "");
            put_special(&b, "<|eot_id|>");
        }
        break;
    case CHAT_CHATML:
        for (int i = 0; i <= n; i++) {
            put_special(&b, "<|im_start|>");
            if (i == n) { put_text(&b, "assistant\n"); break; }
            put_fmt(&b, msgs[i].role, "\n", msgs[i].text);
            put_special(&b, "<|im_end|>");
            put_text(&b, "\n");
        }
        break;
    case CHAT_ZEPHYR: /* [BOS] "<|R|>\nT" [EOS] "\n<|R|>\nT" [EOS] ... "\n<|assistant|>\n" */
        put_id(&b, t->bos_id);
        for (int i = 0; i <= n; i++) {
            char tag[32];
            snprintf(tag, sizeof tag, "%s<|%s|>\n", i ? "\n" : "", i < n ? msgs[i].role : "assistant");
            if (i == n) { put_text(&b, tag); break; }
            put_fmt(&b, tag, msgs[i].text, "");
            put_id(&b, t->eos_id);
        }
        break;
    default: /* plain completion: one text */
        put_id(&b, t->bos_id);
        {
            size_t k = 1;
            for (int i = 0; i < n; i++) k += strlen(msgs[i].text) + 2;
            char *s = ob_malloc(k), *p = s;
            for (int i = 0; i < n; i++) p += sprintf(p, "%s%s", i ? "\n" : "", msgs[i].text);
            put_text(&b, s);
            free(s);
        }
        break;
    }
    if (b.bad || b.n == 0) {
        free(b.v);
        ob_seterr(err, "cannot encode the conversation");
        return -1;
    }
    *out = b.v;
    *nout = b.n;
    return 0;
}

int chat_stop_token(ChatFamily f, const Tokenizer *t)
{
    switch (f) {
    case CHAT_LLAMA3: return special_id(t, "<|eot_id|>");
    case CHAT_CHATML: return special_id(t, "<|im_end|>");
    case CHAT_LLAMA2: case CHAT_MISTRAL: case CHAT_ZEPHYR: return t->eos_id;
    default: return -1;
    }
}
