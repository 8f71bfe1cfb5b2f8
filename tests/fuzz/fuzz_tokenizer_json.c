/* fuzz_tokenizer_json.c -- libFuzzer harness for tokenizer.json: vocab,
 * merges, added tokens, pre-tokenizer detection; then encode/decode text
 * (fuzz_tok.h). Built by `make fuzz` (clang). */
#include <stdint.h>

#include "base/common.h"
#include "format/tokenizer.h"
#include "fuzz_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Tokenizer t;
    char err[OB_ERRLEN];
    if (tok_json_parse(&t, (const char *)data, size, 4096, 1, 2, err) == 0) fuzz_tok_use(&t);
    return 0;
}
