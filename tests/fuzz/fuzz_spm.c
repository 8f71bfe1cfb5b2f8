/* fuzz_spm.c -- libFuzzer harness for the SentencePiece tokenizer.model
 * reader: the protobuf walk, pieces, specs; then encode/decode text
 * (fuzz_tok.h). Built by `make fuzz` (clang). */
#include <stdint.h>

#include "base/common.h"
#include "format/spm.h"
#include "fuzz_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Tokenizer t;
    char err[OB_ERRLEN];
    (void)spm_probe(data, size);
    if (spm_parse(&t, data, size, 0, err) == 0) fuzz_tok_use(&t);
    return 0;
}
