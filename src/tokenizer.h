/* tokenizer.h -- SentencePiece-style BPE as llama2.c does it: encode by
 * merge scores with byte fallback (<0xXX> pieces at ids 3..258), a BOS token
 * and a dummy-prefix space; decode that strips the space after BOS. */
#ifndef OB_TOKENIZER_H
#define OB_TOKENIZER_H

#include <stddef.h>

typedef struct {
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
} Tokenizer;

/* llama2.c tokenizer.bin. vocab_size > 0 reads exactly that many entries
 * (as llama2.c does); 0 reads every entry up to the end of the file. */
int tok_load(Tokenizer *t, const char *path, int vocab_size, char *err);
/* build from pieces and scores (GGUF, tokenizer.json); copies everything */
int tok_init(Tokenizer *t, int n, const char *const *pieces, const float *scores, int bos_id, int eos_id, char *err);
void tok_free(Tokenizer *t);

/* token id of a piece, or -1 */
int tok_lookup(const Tokenizer *t, const char *piece, size_t len);

/* encode text; *out is malloc'd (caller frees), *n its length.
 * bos/eos: prepend BOS / append EOS. */
int tok_encode(const Tokenizer *t, const char *text, int bos, int eos, int **out, int *n);

/* the printable text of token after prev (space after BOS stripped,
 * <0xXX> turned into the byte). Never NULL. */
const char *tok_decode(const Tokenizer *t, int prev, int token);
/* llama2.c safe_printf rule: 1 if the piece is worth printing (not empty, not
 * a lone non-printable, non-space byte) */
int tok_piece_printable(const char *piece);

#endif
