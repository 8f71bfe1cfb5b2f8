/* fuzz_tok.h -- what the tokenizer harnesses (fuzz_spm.c,
 * fuzz_tokenizer_json.c) do with a tokenizer that parsed: encode a text with
 * spaces, newlines, digits, multi-byte and invalid UTF-8, check that every id
 * is a token of the vocabulary, decode each one after the one before, free.
 * Built by `make fuzz` (clang); one translation unit each, so static. */
#ifndef OB_FUZZ_TOK_H
#define OB_FUZZ_TOK_H

#include <stdlib.h>

#include "format/tokenizer.h"

static void fuzz_tok_use(Tokenizer *t)
{
    int *ids;
    size_t n;
    tok_encode(t, "  Hello, world's  test\n\n123 caf\xc3\xa9!! \xf0\x9f\x98\x80 \xff ", 1, 1, &ids, &n);
    int prev = t->bos_id;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size) abort(); /* every id is a token */
        (void)tok_decode(t, prev, ids[i]);
        prev = ids[i];
    }
    free(ids);
    tok_free(t);
}

#endif
