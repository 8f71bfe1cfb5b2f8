/* fuzz_gguf.c -- libFuzzer harness for the GGUF reader: parse, llama config,
 * tensor shapes and dequantization (every block type read: Q8_0, Q4_0,
 * Q5_0, Q4_K, Q5_K, Q6_K), the embedded tokenizer (then encode and decode a
 * little text with it). Built by `make fuzz` (clang). Seed corpus: the files
 * tests/test_gguf and tests/test_loaders_hostile write into
 * $ONEBIT_FUZZ_SEEDS (a tiny model in each block type among them). */
#include <stdint.h>
#include <stdlib.h>

#include "base/common.h"
#include "format/gguf.h"
#include "model/model.h"
#include "format/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    LlamaFile f;
    Model m;
    Tokenizer t;
    int tl = 0;
    char err[OB_ERRLEN];
    if (gguf_read(&f, &t, &tl, data, size, err) == 0) {
        if (tl) {
            int *ids;
            size_t n;
            tok_encode(&t, "Once upon a time, 12 caf\xc3\xa9s <s>", 1, 1, &ids, &n);
            int prev = t.bos_id;
            for (size_t i = 0; i < n; i++) { (void)tok_decode(&t, prev, ids[i]); prev = ids[i]; }
            free(ids);
            tok_free(&t);
        }
        if (model_from_llama(&m, &f, "fuzz", err) == 0) model_free(&m);
        llama_file_free(&f);
    }
    return 0;
}
