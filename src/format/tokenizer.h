/* tokenizer.h -- SentencePiece-style BPE as llama2.c does it: encode by
 * merge scores with byte fallback (<0xXX> pieces at ids 3..258), a BOS token
 * and a dummy-prefix space; decode that strips the space after BOS.
 * A second mode, byte-level BPE (GPT-2, SmolLM, Llama 3 tokenizer.json or
 * GGUF "gpt2"), encodes by merge rank after a regex-like pre-tokenization,
 * behind the same tok_encode/tok_decode API. Read from a llama2.c
 * tokenizer.bin (tok_load), a Hugging Face tokenizer.json (tok_json_*,
 * SentencePiece-style BPE/Unigram or byte-level BPE) or a SentencePiece
 * tokenizer.model (format/spm.h). */
#ifndef OB_TOKENIZER_H
#define OB_TOKENIZER_H

#include <stddef.h>

enum { TOK_SPM = 0, TOK_BYTELEVEL = 1 };
/* byte-level pre-tokenizers: GPT-2's regex, the same with every digit split
 * off (SmolLM), Llama 3's regex */
enum { TOK_PRE_GPT2 = 0, TOK_PRE_GPT2_DIGITS = 1, TOK_PRE_LLAMA3 = 2 };

typedef struct Tokenizer {
    int vocab_size;
    char **vocab;        /* piece bytes, NUL-terminated */
    int *vocab_len;      /* piece lengths (pieces may not contain NUL) */
    float *scores;
    int max_token_length;
    int bos_id, eos_id;  /* 1 and 2 for llama2.c */
    int byte_base;       /* id of <0x00>; -1 when there is no byte fallback */
    /* open-addressing hash of pieces -> id */
    int *hash;
    size_t hash_cap;
    unsigned char byte_pieces[512]; /* "\x00\0\x01\0..." for <0xXX> decode */
    int unk_id;          /* 0 for llama2.c */
    int mode;            /* TOK_SPM or TOK_BYTELEVEL */
    /* SentencePiece normalizer flags (tokenizer.model; 0 as llama2.c) */
    int no_dummy_prefix; /* add_dummy_prefix false: no leading space */
    int squeeze_spaces;  /* remove_extra_whitespaces: strip leading and
                          * trailing spaces, runs of spaces become one */
    /* byte-level mode only */
    int pretok;          /* TOK_PRE_* */
    int byte_id[256];    /* token of each single byte, -1 if none */
    int n_merges;
    struct TokMerge { int a, b, res; } *merges; /* rank r merges (a,b) into res */
    int *mhash;          /* open addressing over (a,b) -> rank */
    size_t mhash_cap;
    /* the model's chat template as shipped (GGUF tokenizer.chat_template,
     * tokenizer_config.json's chat_template; Jinja text, malloc'd), NULL
     * when there is none: model/chat.h recognises its family */
    char *chat_template;
} Tokenizer;

/* llama2.c tokenizer.bin. vocab_size > 0 reads exactly that many entries
 * (as llama2.c does); 0 reads every entry up to the end of the file. */
int tok_load(Tokenizer *t, const char *path, int vocab_size, char *err);
/* build from pieces and scores (GGUF, tokenizer.json); copies everything */
int tok_init(Tokenizer *t, int n, const char *const *pieces, const float *scores, int bos_id, int eos_id, char *err);
/* SentencePiece vocabulary (GGUF "llama", tokenizer.json): "\xe2\x96\x81"
 * (U+2581) becomes a space; unknown/control/unused tokens (types 2, 3, 5;
 * types may be NULL) are never produced by merges */
int tok_init_spm(Tokenizer *t, int n, const char *const *pieces, const float *scores, const int *types,
                 int bos_id, int eos_id, int unk_id, char *err);
/* byte-level BPE: pieces and merges ("A B") in GPT-2's byte-to-unicode
 * spelling; merge rank = position. types (may be NULL): control pieces
 * (3) are kept verbatim. bos_id/eos_id may be -1 (none). */
int tok_init_bytelevel(Tokenizer *t, int n, const char *const *pieces, const int *types, int n_merges,
                       const char *const *merges, int bos_id, int eos_id, int pretok, char *err);
void tok_free(Tokenizer *t);

/* tokenizer.json (its text) into t; vocab_size > 0 pads/limits the
 * vocabulary to the model's size; bos/eos from config.json or -1 */
int tok_json_parse(Tokenizer *t, const char *json, size_t len, int vocab_size, int bos_id, int eos_id, char *err);
int tok_json_load(Tokenizer *t, const char *path, int vocab_size, char *err);
/* a tokenizer file's bytes into t (vocab_size as the parser takes it) */
typedef int (*TokParseFn)(Tokenizer *t, const char *data, size_t len, int vocab_size, char *err);
/* read path whole and parse it; errors read "path: why" */
int tok_load_file(Tokenizer *t, const char *path, int vocab_size, TokParseFn parse, char *err);

/* byte-level pre-tokenization: end of the pre-token of text[0..n) that
 * starts at i (merges never cross pre-token boundaries) */
size_t tok_pretoken_end(const char *text, size_t n, size_t i, int pretok);

/* token id of a piece, or -1 */
int tok_lookup(const Tokenizer *t, const char *piece, size_t len);

/* encode text; *out is malloc'd (caller frees), *n its length (64-bit: a
 * corpus may give more than 2^31 tokens). bos/eos: prepend BOS / append
 * EOS (when the tokenizer has them; a byte-level tokenizer without BOS
 * starts an empty text with EOS, so that bos = 1 never gives zero tokens).
 * -1 (errno EINVAL, *out NULL, *n 0) for a NULL text or an empty
 * tokenizer. */
int tok_encode(const Tokenizer *t, const char *text, int bos, int eos, int **out, size_t *n);

/* the printable text of token after prev (space after BOS stripped,
 * <0xXX> turned into the byte). Never NULL. */
const char *tok_decode(const Tokenizer *t, int prev, int token);
/* llama2.c safe_printf rule: 1 if the piece is worth printing (not empty, not
 * a lone non-printable, non-space byte) */
int tok_piece_printable(const char *piece);

#endif
