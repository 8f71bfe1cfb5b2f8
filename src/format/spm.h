/* spm.h -- SentencePiece tokenizer.model (a protobuf ModelProto: pieces
 * {piece, score, type}, trainer_spec {model_type, byte_fallback, unk/bos/eos
 * ids}, normalizer_spec {add_dummy_prefix, remove_extra_whitespaces,
 * escape_whitespaces}) read with a small bounds-checked protobuf parser
 * into the same Tokenizer that llama2.c's tokenizer.bin export of it gives
 * (format/tokenizer.h): '\xe2\x96\x81' becomes ' ', the BOS and EOS pieces
 * become "\n<s>\n" and "\n</s>\n" as llama2.c's tokenizer.py writes them,
 * scores as they are. Also the reverse (spm_write). */
#ifndef OB_SPM_H
#define OB_SPM_H

#include <stddef.h>

#include "format/tokenizer.h"

/* 1 when the first n bytes look like a ModelProto (its first field is a
 * piece message whose first field is the piece string), else 0 */
int spm_probe(const unsigned char *head, size_t n);
/* a tokenizer.model's bytes into t; vocab_size > 0: more pieces than that
 * is an error, fewer are padded with empty pieces that never merge */
int spm_parse(Tokenizer *t, const unsigned char *buf, size_t len, int vocab_size, char *err);
/* the file at path; errors name it */
int spm_load(Tokenizer *t, const char *path, int vocab_size, char *err);
/* t (a SentencePiece-mode Tokenizer) as a tokenizer.model at path
 * (atomically): ' ' back to U+2581, "\n<s>\n"/"\n</s>\n" back to <s> and
 * </s>, types unknown/control/byte/normal, model type BPE, byte fallback
 * when t has <0x00>..<0xFF>, the normalizer flags; spm_load of it gives t
 * back */
int spm_write(const Tokenizer *t, const char *path, char *err);

#endif
