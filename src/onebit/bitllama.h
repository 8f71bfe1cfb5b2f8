/* bitllama.h -- the OneBit authors' checkpoints (model_type "bitllama", a
 * Hugging Face directory) as our in-memory 1-bit student, and our students
 * written back as their inference checkpoint.
 *
 * Per projection model.layers.{i}.self_attn.{q,k,v,o}_proj and
 * mlp.{gate,up,down}_proj: `weight` int8 (out, in/8), 8 signs per byte,
 * column 8j+k in bit k of byte j, bit 1 = -1 (BitLlamaForCausalLMInf) -- or
 * the training checkpoint's latent FP `weight` (out, in), taken as sign(W)
 * (w >= 0 -> +1, as bitlinear.h); `weight_scale` (out) = h; `input_factor`
 * (in) = g; F32, F16 or BF16. A parameter-free LayerNorm follows every
 * projection (norm = 1). Embedding, norms and an untied lm_head are FP.
 * An input width that is not a multiple of 8 (small test models; never
 * LLaMA's) packs into ceil(in/8) bytes, the last one's unused bits 0.
 * q/k rows come in Hugging Face's rotate-half order and are reordered to
 * the engine's interleaved RoPE pairs (signs and h alike), and back on
 * export. Other keys (teacher_model.*, the optimizer's) are ignored.
 * Checkpoints are written as safetensors ({"format":"pt"}), whole
 * directories renamed into place. */
#ifndef OB_BITLLAMA_H
#define OB_BITLLAMA_H

#include <stdint.h>

#include "format/tokenizer.h"
#include "model/model.h"
#include "onebit/student.h"

/* the directory's student into m (student_new: what student_load gives
 * for a .onebit); tok (may be NULL) gets its tokenizer.json or
 * tokenizer.model -- an error when it has neither */
int bitllama_load(Model *m, Tokenizer *tok, const char *dir, char *err);

/* write student m (student_load'ed, every layer with LayerNorm) to the new or empty directory out as an
 * inference checkpoint: model.safetensors ({"format":"pt"}), config.json
 * (BitLlamaForCausalLMInf, torch_dtype float32), and the tokenizer: the
 * tokenizer.model / tokenizer.json / tokenizer_config.json /
 * special_tokens_map.json of tok_dir when it names a directory holding
 * them, else tok (may be NULL) written as a tokenizer.model */
int bitllama_export(const Model *m, const Tokenizer *tok, const char *tok_dir, const char *out, char *err);

/* what the authors' scripts/build_start_ckpt.py shards at */
#define BITLLAMA_SHARD_BYTES 5000000000ull

/* write the start checkpoint their trainer (BitLlamaForCausalLM) starts
 * from into the new or empty directory out: per projection the latent FP32
 * `weight` (out, in) -- lin[i].w as it is when latent (a QAT checkpoint's
 * trained weights), else 0.01·sign(w) (SVID from a teacher's weights) --
 * `weight_scale` = lin[i].h, `input_factor` = lin[i].g (lin: L*7 sources in
 * LIN_ order, engine row order; written in Hugging Face's); fp's embedding,
 * norms and head (the frozen FP tensors); config.json; the tokenizer as
 * bitllama_export. Shards of at most shard_bytes (0: BITLLAMA_SHARD_BYTES)
 * with model.safetensors.index.json when there is more than one. The
 * directory is written whole (file_dir_begin) or not at all. */
int bitllama_export_start(const Model *fp, const StudentLinearSrc *lin, int latent, const Tokenizer *tok, const char *tok_dir,
                          uint64_t shard_bytes, const char *out, char *err);

#endif
