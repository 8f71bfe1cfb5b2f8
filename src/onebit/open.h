/* open.h -- opening a model the way the CLI and the workbench both do: the
 * default teacher and tokenizer paths, a teacher of any format (through the
 * loader registry) with its embedded or a named tokenizer, or a 1-bit
 * student (.onebit). Errors go to err; the callers print them. */
#ifndef OB_OPEN_H
#define OB_OPEN_H

#include "format/tokenizer.h"
#include "model/model.h"

/* The teacher path: explicit, else $ONEBIT_TEACHER, else models/stories260K.bin
 * beside the executable (build tree), else the installed data directory.
 * Returns a malloc'd path or NULL with err set. */
char *open_resolve_teacher(const char *explicit_path, char *err);
/* The tokenizer: explicit, else $ONEBIT_TOKENIZER, else beside the teacher
 * (tokenizer.bin for a 32000 vocabulary, tok<V>.bin otherwise; for a
 * directory, inside it first). Returns a malloc'd path or NULL with err. */
char *open_resolve_tokenizer(const char *explicit_path, const char *teacher, int vocab, char *err);

/* load the teacher and its tokenizer: an embedded one (GGUF
 * tokenizer.ggml.*, a directory's tokenizer.json) unless one is named
 * (tokenizer or $ONEBIT_TOKENIZER), else as open_resolve_tokenizer finds
 * it; a tokenizer file is a tokenizer.json, a SentencePiece tokenizer.model
 * or a llama2.c tokenizer.bin, by content. *embedded (may be NULL) says whether the teacher's own was used. */
int open_teacher(const char *teacher, const char *tokenizer, Model *m, Tokenizer *t, int *embedded, char *err);
/* the tokenizer open_teacher gives, and the teacher's vocabulary, without
 * building the model (its file is read and mapped, not converted) */
int open_teacher_tokenizer(const char *teacher, const char *tokenizer, Tokenizer *t, int *vocab, char *err);

/* a student: a .onebit (student_load) or, for a directory with a
 * config.json, the OneBit authors' checkpoint (bitllama_load); tok may be
 * NULL. A directory without config.json is student_load's error. */
int open_student(Model *m, Tokenizer *tok, const char *path, char *err);
/* 1 when path is a 1-bit student by content: a .onebit file (its magic)
 * or a directory whose config.json says model_type bitllama; else 0 (a
 * teacher, or nothing openable: the open call says why) */
int open_is_student(const char *path);
/* 1 when path is a student with a tokenizer (a checkpoint directory
 * always: it fails to open without one), 0 without, -1 on error */
int open_student_has_tokenizer(const char *path, char *err);

/* a student (.onebit or a checkpoint directory) when student is not NULL -- its tokenizer from the
 * file unless tokenizer names one (any kind open_teacher takes) -- else the
 * teacher as open_teacher */
int open_model(const char *teacher, const char *student, const char *tokenizer, Model *m, Tokenizer *t, char *err);

#endif
