/* src/onebit/student.h -- the 1-bit student: the .onebit file (write, mmap
 * + validate + load) and post-training quantisation of a teacher (SVID /
 * XNOR init without training). Threads: a loaded student's forward may run
 * on any thread; student_set_exec only on its owner's, between forwards.
 *
 * A .onebit file holds the FP tensors (token embedding and output head in
 * FP16 / Q8_0 / FP32, RMSNorm weights in FP32), per linear the packed signs (bitlinear.h canonical layout),
 * FP16 g and h and the LayerNorm flag, with a mixture of scales (--mos)
 * its FP16 router and experts, the tokenizer and a metadata JSON
 * string. The layout is documented in man/onebit-tui.1 (FILES). */
#ifndef OB_STUDENT_H
#define OB_STUDENT_H

#include <stdint.h>

#include "kernels/kernels.h"
#include "model/model.h"
#include "onebit/svid.h"
#include "format/tokenizer.h"

#define STUDENT_MAGIC "ONEBIT\0\0"
/* version 2: the embedding and the head may be FP16 or Q8_0 (version 1
 * files, FP32 ones, still load) */
#define STUDENT_VERSION 2

/* how a .onebit stores the embedding and the output head: FP16 by
 * default; Q8_0 as GGUF's (needs dim % 32 == 0). The order of the option
 * choices "f32|f16|q8_0"; student_head_wtype gives linear.h's LINEAR_W_* */
enum { STUDENT_HEAD_F32 = 0, STUDENT_HEAD_F16 = 1, STUDENT_HEAD_Q8_0 = 2 };
int student_head_wtype(int head);
#define STUDENT_HEAD_DEFAULT STUDENT_HEAD_F16
/* "f32" / "f16" / "q8_0" -> STUDENT_HEAD_*, or -1 */
int student_head_parse(const char *name);
const char *student_head_name(int head);

typedef struct {
    const float *w;  /* (out, in) sign source: sign(w) (w >= 0 -> +1) */
    const float *g;  /* (in) */
    const float *h;  /* (out) */
    int norm;        /* 1: LayerNorm after (OneBit); 0: none (PTQ baseline) */
    const uint64_t *bits; /* when w is NULL: the canonical packed signs
                           * (bitlinear.h) */
    uint64_t *own_bits;   /* bits when they are the source's own (malloc'd;
                           * student_src_free frees them) */
    int mos;              /* mixture of scales: experts E (0: none; then the
                           * three below are NULL and unused) */
    const float *router;    /* (E, in): expert e's router weights, row e */
    const float *g_experts; /* (E, in) */
    const float *h_experts; /* (E, out) */
} StudentLinearSrc;

/* write a .onebit: FP tensors (embedding and head FP16, norms FP32) from teacher, packed
 * signs + FP16 g,h per linear (lin: L*7 in LIN_ order; a linear with mos
 * writes its router and experts, and as g, h the experts' means), the
 * tokenizer (may be NULL: then the file has none) and free-form metadata
 * JSON (may be NULL). Written to PATH.tmp.XXXXXX, fsync'd, renamed over
 * PATH. Fails on non-finite g/h/experts or values out of FP16 range, and
 * on a mixture without 2 to BITLINEAR_MOS_MAX experts or a router. */
int student_write(const char *path, const Model *teacher, const Tokenizer *tok,
                  const StudentLinearSrc *lin, const char *meta_json, char *err);
/* the same with the embedding and head stored as head (STUDENT_HEAD_*); FP16
 * fails on values out of its range, Q8_0 on a dim not a multiple of 32 */
int student_write_ex(const char *path, const Model *teacher, const Tokenizer *tok, const StudentLinearSrc *lin,
                     const char *meta_json, int head, char *err);

/* load with mmap and validate everything (magic, version, config, every
 * offset/size/count/shape/string, checksum, finite values); m gets
 * LINEAR_ONEBIT linears (BitLinear objects owned through m->extra /
 * m->free_extra; model_free releases them). The layers' signs stay in the
 * mapped file (bitlinear_new_mapped: one copy in memory, the kernel's
 * layout or the mapping's pages, also during the load: the checksum and
 * the checks drop the pages they read). An FP16 / Q8_0 embedding and head
 * stay there too (m->emb_w, m->cls_w; m->tok_emb and m->wcls are NULL;
 * m->emb_mapped: only the rows used stay resident); FP32 ones are copied.
 * tok may be NULL; if the file has no tokenizer and tok != NULL it fails. */
int student_load(Model *m, Tokenizer *tok, const char *path, char *err);

/* the empty student of config c that student_load fills: m's FP arena
 * (tok_emb, norms, wcls) and L*7 BitLinears in LIN_ order (norm 1, signs
 * all +1, g and h 0) that the caller fills (bitlinear_set_bits / _pack,
 * g, h); m->lin are set. 0, or -1 with err. */
int student_new(Model *m, const ModelConfig *c, char *err);
/* the same with the embedding and head kept as emb_type / cls_type
 * (STUDENT_HEAD_*): not F32, they are the caller's to point at (emb_w, cls_w) */
int student_new_lean(Model *m, const ModelConfig *c, int emb_type, int cls_type, char *err);
/* the i-th 1-bit linear (LIN_ order, layer-major) of a student, or NULL */
struct BitLinear *student_linear(const Model *m, int i);
/* the sources student_write takes for a loaded student's own layers
 * (signs, g, h borrowed from m): L*7 entries into lin */
int student_sources(const Model *m, StudentLinearSrc *lin, char *err);

/* run every 1-bit linear of a student_load'ed m with ex from now on (its
 * kernel, activation precision and pool; each layer repacks its signs for
 * it). The owner of m calls it between forwards: it checks that no forward
 * runs on any layer of m and then fails with err set (changing nothing). 0;
 * -1 also for a model that is not a student. */
int student_set_exec(Model *m, const KernExec *ex, char *err);
/* the execution context m's 1-bit linears run with (a borrowed pointer,
 * valid until the next student_set_exec or model_free), or NULL */
const KernExec *student_exec(const Model *m);

/* the metadata JSON of a .onebit (malloc'd; "" when none); validates the
 * file like student_load */
int student_read_meta(const char *path, char **meta_json, char *err);

/* has the file a tokenizer? 1/0, -1 on error. Validates the header and the
 * tensor table, not the checksum over the whole file (student_load checks
 * that: a 7B student's is about 1.5 s of hashing) */
int student_has_tokenizer(const char *path, char *err);

/* PTQ: a student from a dense teacher without training. lin_out receives
 * L*7 sources (w points into an FP32 arena teacher; a mapped teacher's
 * signs are packed into own_bits, one matrix converted at a time; g, h
 * malloc'd), free with student_src_free(lin_out, L*7). */
int student_quantize(const Model *teacher, SvidMethod init, int norm, StudentLinearSrc *lin_out, char *err);
void student_src_free(StudentLinearSrc *lin, int n);

/* the file checksum: 64-bit FNV-1a (offset basis 14695981039346656037,
 * prime 1099511628211) over all n bytes of the file with the 8 checksum
 * bytes at offset 104 taken as zero; on a mapped file (base/file.h
 * file_map) the pages it has hashed are dropped as it goes */
uint64_t student_checksum(const unsigned char *file, size_t n);

/* 1-bit storage in bytes of a model config: signs + FP16 g,h for the
 * linears, FP16 for the FP tensors (the `inspect` accounting) */
uint64_t student_onebit_bytes(const ModelConfig *c);

#endif
