/* fuzz_torch.c -- libFuzzer harness for the torch.save reader: the zip
 * (end records, ZIP64, central directory, local headers), the restricted
 * pickle machine (opcodes, memo, marks, globals, persistent ids) and the
 * tensors it yields, each looked up by name and every F32/F16/BF16 one
 * converted to FP32. Built by `make fuzz` (clang). Seed corpus: files from
 * tests/torchwriter.h (test_torch --write-hf, or any small torch.save file). */
#include <stdint.h>
#include <stdlib.h>

#include "base/common.h"
#include "fuzz_stfile.h"
#include "format/torch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    STFile f;
    char err[OB_ERRLEN];
    if (torch_parse(&f, data, size, err) == 0) fuzz_check_stfile(&f, size);
    return 0;
}
