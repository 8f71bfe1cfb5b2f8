/* src/model/chat.h -- chat templates: the common families of instruction-
 * tuned LLaMA-style models, recognised from the Jinja template a model ships
 * (GGUF tokenizer.chat_template, tokenizer_config.json's chat_template: see
 * Tokenizer.chat_template) or named by the user, and a conversation rendered
 * into the token ids of the prompt, ending where the assistant's reply
 * starts. Reentrant: pure functions of their arguments.
 *
 *   llama2   <s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST] A </s><s>[INST] U [/INST]
 *   mistral  <s>[INST] S\n\nU [/INST]A</s>[INST] U [/INST]
 *   llama3   <|begin_of_text|><|start_header_id|>R<|end_header_id|>\n\nT<|eot_id|> ...
 *   chatml   <|im_start|>R\nT<|im_end|>\n ... <|im_start|>assistant\n
 *   zephyr   <|R|>\nT</s>\n ... <|assistant|>\n
 *   none     plain completion: BOS, the system text and the messages, one
 *            per line (a base model continues the text)
 * <s>/</s> are the tokenizer's BOS/EOS ids; the other <|...|> markers are
 * the vocabulary's special tokens when it has them (looked up as whole
 * pieces), else plain text. The text between two special tokens is encoded
 * on its own, as Meta's Llama 2 reference code encodes each turn (a
 * SentencePiece tokenizer adds its dummy-prefix space to each). */
#ifndef OB_CHAT_H
#define OB_CHAT_H

#include "format/tokenizer.h"

typedef enum { CHAT_NONE, CHAT_LLAMA2, CHAT_MISTRAL, CHAT_LLAMA3, CHAT_CHATML, CHAT_ZEPHYR, CHAT_NFAMILIES } ChatFamily;

typedef struct {
    const char *role; /* "system", "user" or "assistant" */
    const char *text;
} ChatMsg;

/* "llama2", ..., "none" */
const char *chat_family_name(ChatFamily f);
/* the family called name, -1 when none is */
int chat_family_parse(const char *name);
/* "none|llama2|mistral|llama3|chatml|zephyr" */
const char *chat_family_list(void);
/* the family of a Jinja chat template by its markers; CHAT_NONE for NULL or
 * one this does not know */
ChatFamily chat_detect(const char *jinja);

/* the prompt of msgs[0..n) (an optional first system message, then user
 * and assistant turns; the last one a user message) as token ids, *ids
 * malloc'd. 0, or -1 with err (bad roles or order, an empty tokenizer). */
int chat_render(ChatFamily f, const Tokenizer *t, const ChatMsg *msgs, int n, int **ids, int *nids, char *err);
/* the token that ends an assistant turn (EOS, <|im_end|>, <|eot_id|>); -1
 * for none (plain completion stops at EOS as generate does) */
int chat_stop_token(ChatFamily f, const Tokenizer *t);

#endif
