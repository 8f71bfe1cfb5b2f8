/* loader.h -- the registry of teacher formats: one table of {name, probe,
 * load, fingerprint} (llama2.c checkpoint, GGUF, Hugging Face directory).
 * Which format a path is gets decided here, by content, and nowhere else:
 * the model, the CLI, the workbench and the run store all ask the loader. */
#ifndef OB_LOADER_H
#define OB_LOADER_H

#include <stddef.h>
#include <sys/stat.h>

#include "format/llama.h"
#include "format/tokenizer.h"

typedef struct {
    const char *name; /* "llama2c", "gguf", "hf" (as the run store records it) */
    /* 1 when path (stat st; head: its first n bytes, none for a
     * directory) is this format, else 0 with why saying why not */
    int (*probe)(const char *path, const struct stat *st, const unsigned char *head, size_t n, char *why);
    /* read path into f; tok (may be NULL) receives a tokenizer the file
     * carries (*tok_loaded = 1) */
    int (*load)(LlamaFile *f, Tokenizer *tok, int *tok_loaded, const char *path, char *err);
    /* a SHA-256 identifying the teacher's content: of the file, or of a
     * directory's config and weight files */
    int (*fingerprint)(const char *path, char hex[65], char *err);
} LoaderFormat;

/* the formats, in probing order (the one without a magic last) */
extern const LoaderFormat loader_formats[];
extern const int loader_n_formats;

/* the format of path; NULL with err ("path: ...", naming every format
 * tried and why it does not fit) when none is */
const LoaderFormat *loader_detect(const char *path, char *err);
/* detect and read; tok/tok_loaded as LoaderFormat.load */
int loader_load(LlamaFile *f, Tokenizer *tok, int *tok_loaded, const char *path, char *err);
/* detect and fingerprint; *format (may be NULL) gets the format's name */
int loader_fingerprint(const char *path, char hex[65], const char **format, char *err);
/* a tokenizer file by content: a tokenizer.json (a JSON object), a
 * SentencePiece tokenizer.model (a protobuf whose first field is a piece)
 * or a llama2.c tokenizer.bin; vocab_size as tok_load */
int loader_load_tokenizer(Tokenizer *t, const char *path, int vocab_size, char *err);

#endif
