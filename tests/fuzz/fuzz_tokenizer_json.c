/* fuzz_tokenizer_json.c -- libFuzzer harness for tokenizer.json: vocab,
 * merges, added tokens, pre-tokenizer detection; then encode/decode text.
 * Built by `make fuzz` (clang). */
#include <stdint.h>
#include <stdlib.h>

#include "base/common.h"
#include "format/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Tokenizer t;
    char err[OB_ERRLEN];
    if (tok_json_parse(&t, (const char *)data, size, 4096, 1, 2, err) == 0) {
        int *ids;
        size_t n;
        tok_encode(&t, "Hello, world's  test\n\n123 caf\xc3\xa9!! \xff", 1, 1, &ids, &n);
        int prev = t.bos_id;
        for (size_t i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] >= t.vocab_size) abort(); /* every id is a token */
            (void)tok_decode(&t, prev, ids[i]);
            prev = ids[i];
        }
        free(ids);
        tok_free(&t);
    }
    return 0;
}
