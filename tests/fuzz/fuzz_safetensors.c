/* fuzz_safetensors.c -- libFuzzer harness for the safetensors reader: header
 * length, JSON header, dtypes, shapes and data offsets, then every F32/F16/
 * BF16 tensor converted to FP32. Built by `make fuzz` (clang). */
#include <stdint.h>
#include <stdlib.h>

#include "base/common.h"
#include "fuzz_stfile.h"
#include "format/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    STFile f;
    char err[OB_ERRLEN];
    if (st_parse(&f, data, size, err) == 0) fuzz_check_stfile(&f, size);
    return 0;
}
