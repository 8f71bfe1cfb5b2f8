/* fuzz_stfile.h -- what the safetensors and torch.save harnesses check of
 * the tensor list (STFile) a reader yields from a fuzzed input of `size`
 * bytes: every tensor found by name, inside the input, and every F32/F16/
 * BF16 one converted to FP32 (ASan watches the reads). Then it is freed. */
#ifndef FUZZ_STFILE_H
#define FUZZ_STFILE_H

#include <stdlib.h>

#include "format/safetensors.h"

static void fuzz_check_stfile(STFile *f, size_t size)
{
    for (size_t i = 0; i < f->n; i++) {
        const STTensor *t = &f->t[i];
        if (st_find(f, t->name) != t) abort(); /* lookup must find every tensor */
        if (t->begin > t->end || t->end > size) abort(); /* inside the input */
        if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16) continue;
        float *dst = malloc(t->n_elems * sizeof(float) + 1);
        st_to_f32(f, t, dst);
        free(dst);
    }
    st_free(f);
}

#endif
