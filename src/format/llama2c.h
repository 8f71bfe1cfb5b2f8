/* llama2c.h -- the llama2.c legacy checkpoint (karpathy/llama2.c run.c):
 * a 7 x int32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size -- negative when the output head is not tied -- seq_len), then
 * FP32 tensors stacked over layers, the unused freq_cis tables, and the own
 * output head. It has no magic: the header must describe exactly the file's
 * size. */
#ifndef OB_LLAMA2C_H
#define OB_LLAMA2C_H

#include <stddef.h>
#include <sys/stat.h>

#include "format/llama.h"
#include "format/tokenizer.h"

/* 1 when path (stat st, first n bytes head) is a llama2.c checkpoint, else
 * 0 with why saying what does not fit (no path in it) */
int llama2c_probe(const char *path, const struct stat *st, const unsigned char *head, size_t n, char *why);
/* mmap path into f (F32 tensors pointing into the mapping); a llama2.c
 * checkpoint carries no tokenizer (*tok_loaded = 0) */
int llama2c_load(LlamaFile *f, Tokenizer *tok, int *tok_loaded, const char *path, char *err);

#endif
