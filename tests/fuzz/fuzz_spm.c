/* fuzz_spm.c -- libFuzzer harness for the SentencePiece tokenizer.model
 * reader: the protobuf walk, pieces, specs; then encode/decode text.
 * Built by `make fuzz` (clang). */
#include <stdint.h>
#include <stdlib.h>

#include "base/common.h"
#include "format/spm.h"
#include "format/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Tokenizer t;
    char err[OB_ERRLEN];
    (void)spm_probe(data, size);
    if (spm_parse(&t, data, size, 0, err) == 0) {
        int *ids;
        size_t n;
        tok_encode(&t, "  Hello, world's  test\n\n123 caf\xc3\xa9!! \xf0\x9f\x98\x80 \xff ", 1, 1, &ids, &n);
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
