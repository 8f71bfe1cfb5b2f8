/* fuzz_safetensors.c -- libFuzzer harness for the safetensors reader: header
 * length, JSON header, dtypes, shapes and data offsets, then every F32/F16/
 * BF16 tensor converted to FP32. Built by `make fuzz` (clang). */
#include <stdint.h>
#include <stdlib.h>

#include "base/common.h"
#include "format/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    STFile f;
    char err[OB_ERRLEN];
    if (st_parse(&f, data, size, err) == 0) {
        for (size_t i = 0; i < f.n; i++) {
            const STTensor *t = &f.t[i];
            if (st_find(&f, t->name) != t) abort(); /* lookup must find every tensor */
            if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16) continue;
            float *dst = malloc(t->n_elems * sizeof(float) + 1);
            st_to_f32(&f, t, dst);
            free(dst);
        }
        st_free(&f);
    }
    return 0;
}
