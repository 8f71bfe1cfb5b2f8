/* fuzz_student.c -- libFuzzer harness for the .onebit reader (student_load:
 * header, tensor table, shapes and offsets, packed signs and their padding,
 * FP16 g/h, the mixture-of-scales router and experts, FP16/Q8_0/FP32
 * embedding and head, tokenizer, metadata), then two decode steps of what
 * loaded. The checksum over the input is recomputed first, so that the
 * mutations reach the checks behind it. Built by `make fuzz` (clang). Seed
 * corpus: students written by the CLI, e.g. `onebit-tui quantize --teacher
 * stories260K.bin --head f16|q8_0|f32 --out S` and a `train --mos 2` one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/common.h"
#include "model/model.h"
#include "onebit/student.h"

#define CKSUM_AT 104 /* student.h: the u64 checksum's offset */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    if (size >= CKSUM_AT + 8) {
        uint64_t h = student_checksum(buf, size);
        for (int i = 0; i < 8; i++) buf[CKSUM_AT + i] = (unsigned char)(h >> 8 * i);
    }
    int fd = memfd_create("fuzz.onebit", 0);
    if (fd < 0 || write(fd, buf, size) != (ssize_t)size) abort();
    free(buf);
    char path[64], err[OB_ERRLEN];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    Model m;
    Tokenizer t = {0};
    if (student_load(&m, &t, path, err) == 0) {
        const ModelConfig *c = &m.cfg;
        /* decode only what a fuzzer's inputs can afford */
        if ((double)c->dim * c->hidden_dim * c->n_layers < 1e7 && (double)c->vocab_size * c->dim < 1e7) {
            ModelState s;
            if (model_state_init(&s, c) == 0) {
                model_step(&m, &s, 0, 0);
                model_step(&m, &s, c->vocab_size - 1, 1);
                model_state_free(&s);
            }
        }
        tok_free(&t);
        model_free(&m);
    }
    close(fd);
    return 0;
}
