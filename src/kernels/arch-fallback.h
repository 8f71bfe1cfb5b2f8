/* src/kernels/arch-fallback.h -- for builds without the x86 variant files
 * (as ggml's arch-fallback.h): every x86 function name the table in
 * table.c lists becomes the generic (scalar) function of the same
 * signature, so the table compiles unchanged. Those entries need CPU
 * features such a host never reports (base/cpu.c), so they are never chosen;
 * the mapping only keeps one table for all builds. Included by variants.h
 * only. */
#ifndef OB_KERNELS_ARCH_FALLBACK_H
#define OB_KERNELS_ARCH_FALLBACK_H

#define kern_rows_avx2 kern_rows_ref
#define kern_rows_q8_avx2 kern_rows_q8_ref
#define kern_rows_avx2flip kern_rows_ref
#define kern_gemv_rows_avx2 kern_gemv_rows_ref
#define kern_rows_avx512 kern_rows_ref
#define kern_rows_q8_avx512 kern_rows_q8_ref
#define kern_prep_q8_bytes_avx512 NULL
#define kern_prep_q8_avx512 NULL
#define kern_prep_q8_bytes_vnni NULL
#define kern_prep_q8_vnni NULL
#define kern_rows_q8_vnni kern_rows_q8_ref
#define kern_prep_q8_bytes_amx NULL
#define kern_prep_q8_amx NULL
#define kern_rows_q8_amx kern_rows_q8_ref
#define kern_amx_usable() 0
#define kern_rows_avx512mask kern_rows_ref
#define kern_gemv_rows_avx512 kern_gemv_rows_ref
#define kern_mul_avx512 kern_mul_ref
#define kern_quantize_avx512 kern_quantize_ref
#define kern_layernorm_avx512 kern_layernorm_ref
#define kern_silu_mul_avx512 kern_silu_mul_ref
#define kern_dec_score_f32_avx2 kern_dec_score_f32_ref
#define kern_dec_score_f16_avx2 kern_dec_score_f16_ref
#define kern_dec_accum_f32_avx2 kern_dec_accum_f32_ref
#define kern_dec_accum_f16_avx2 kern_dec_accum_f16_ref
#define kern_dec_to_f16_avx2 kern_dec_to_f16_ref
#define kern_dec_from_f16_avx2 kern_dec_from_f16_ref
#define kern_dec_gemv_f16_avx2 kern_dec_gemv_f16_ref
#define kern_dec_gemv_q8_0_avx2 kern_dec_gemv_q8_0_ref
#define kern_dec_from_bf16_avx2 kern_dec_from_bf16_ref
#define kern_dec_gemv_bf16_avx2 kern_dec_gemv_bf16_ref
#define kern_dec_attn_f16_avx2 kern_dec_attn_f16_ref
#define kern_dec_step_f16_avx2 kern_dec_step_f16_ref
#define kern_dec_score_f32_avx512 kern_dec_score_f32_ref
#define kern_dec_score_f16_avx512 kern_dec_score_f16_ref
#define kern_dec_accum_f32_avx512 kern_dec_accum_f32_ref
#define kern_dec_accum_f16_avx512 kern_dec_accum_f16_ref
#define kern_dec_to_f16_avx512 kern_dec_to_f16_ref
#define kern_dec_from_f16_avx512 kern_dec_from_f16_ref
#define kern_dec_gemv_f16_avx512 kern_dec_gemv_f16_ref
#define kern_dec_gemv_q8_0_avx512 kern_dec_gemv_q8_0_ref
#define kern_dec_from_bf16_avx512 kern_dec_from_bf16_ref
#define kern_dec_gemv_bf16_avx512 kern_dec_gemv_bf16_ref
#define kern_dec_attn_f16_avx512 kern_dec_attn_f16_ref
#define kern_dec_step_f16_avx512 kern_dec_step_f16_ref
#define kern_dec_gemv_bf16_avx512bf16 kern_dec_gemv_bf16_ref
#define kern_dec_dq_q4_k_avx2 kern_dec_dq_q4_k_ref
#define kern_dec_dq_sym_avx2 kern_dec_dq_sym_ref
#define kern_dec_dq_q5_k_avx2 kern_dec_dq_q5_k_ref
#define kern_dec_dq_q6_k_avx2 kern_dec_dq_q6_k_ref

#endif
