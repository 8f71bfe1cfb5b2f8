/* quants.h -- ggml's block quantizations, written from their byte layouts:
 * Q8_0, Q4_0, Q5_0 (32 weights a block, one fp16 scale) and the K types
 * Q4_K, Q5_K (256 weights, fp16 d and dmin, eight 6-bit scales and mins
 * packed in 12 bytes) and Q6_K (256 weights, sixteen int8 scales, fp16 d).
 * Scalar dequantization and simple round-to-nearest quantizers: each block's (or sub-block's) scale comes from its largest
 * magnitude and every weight rounds to the nearest level -- valid files of
 * these types, not llama.cpp's searched scales or imatrix. The K types'
 * weights are expanded by the fastest decode kernel (kernels.h KernDec;
 * bit-identical to its scalar reference). Pure functions of their
 * arguments: any thread may call them. format/llama.h's
 * llama_dequant, llama_quantize and llama_dtype_bytes dispatch here (its
 * LLAMA_Q8_0 ... LLAMA_Q6_K are these types in this order). */
#ifndef OB_QUANTS_H
#define OB_QUANTS_H

#include <stddef.h>
#include <stdint.h>

enum { QUANT_Q8_0, QUANT_Q4_0, QUANT_Q5_0, QUANT_Q4_K, QUANT_Q5_K, QUANT_Q6_K, QUANT_NTYPES };

/* weights and bytes of one block of type q (QUANT_*); 0 when q is none */
int quant_block_elems(int q);
int quant_block_bytes(int q);
/* nb blocks of type q at src into nb * quant_block_elems(q) floats */
void quant_dequant(int q, const uint8_t *src, float *dst, size_t nb);
/* nb * quant_block_elems(q) floats into nb blocks, round to nearest */
void quant_quantize(int q, const float *src, uint8_t *dst, size_t nb);

#endif
