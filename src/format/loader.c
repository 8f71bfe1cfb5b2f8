/* loader.c -- the registry of teacher formats and content sniffing (see
 * loader.h). */
#include "format/loader.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "base/file.h"
#include "format/gguf.h"
#include "format/hf.h"
#include "format/llama2c.h"
#include "format/spm.h"

const LoaderFormat loader_formats[] = {
    {"gguf", gguf_probe, gguf_load, file_sha256},
    {"hf", hf_probe, hf_load, hf_fingerprint},
    {"llama2c", llama2c_probe, llama2c_load, file_sha256},
};
const int loader_n_formats = (int)(sizeof loader_formats / sizeof loader_formats[0]);

#define HEAD_BYTES 64

const LoaderFormat *loader_detect(const char *path, char *err)
{
    struct stat st;
    if (stat(path, &st) != 0) { ob_seterr(err, "%s: %s", path, strerror(errno)); return NULL; }
    unsigned char head[HEAD_BYTES];
    size_t n = 0;
    if (S_ISREG(st.st_mode)) {
        FILE *f = fopen(path, "rb");
        if (!f) { ob_seterr(err, "%s: %s", path, strerror(errno)); return NULL; }
        n = fread(head, 1, sizeof head, f);
        int bad = ferror(f);
        fclose(f);
        if (bad) { ob_seterr(err, "%s: read error", path); return NULL; }
    }
    char tried[OB_ERRLEN] = "", why[OB_ERRLEN];
    size_t k = 0;
    for (int i = 0; i < loader_n_formats; i++) {
        why[0] = 0;
        if (loader_formats[i].probe(path, &st, head, n, why)) return &loader_formats[i];
        if (k < sizeof tried)
            k += (size_t)snprintf(tried + k, sizeof tried - k, "%s%s: %s", i ? "; " : "", loader_formats[i].name, why);
    }
    /* text (a story, a README) says so first: the formats' own reasons,
     * its letters read as a header's numbers, mislead */
    int text = n >= 16;
    for (size_t i = 0; i < n && text; i++) text = head[i] == '\n' || head[i] == '\r' || head[i] == '\t' || (head[i] >= 32 && head[i] < 127) || head[i] >= 0x80;
    if (text) {
        ob_seterr(err, "%s: a text file, not a model (a teacher is a llama2.c checkpoint, a GGUF file or a Hugging Face directory)", path);
        return NULL;
    }
    ob_seterr(err, "%s: not a teacher this program reads (tried %s)", path, tried);
    return NULL;
}

int loader_load(LlamaFile *f, Tokenizer *tok, int *tok_loaded, const char *path, char *err)
{
    int dummy;
    if (!tok_loaded) tok_loaded = &dummy;
    *tok_loaded = 0;
    llama_file_init(f);
    const LoaderFormat *fmt = loader_detect(path, err);
    if (!fmt) return -1;
    if (fmt->load(f, tok, tok_loaded, path, err)) return -1;
    f->format = fmt->name;
    return 0;
}

int loader_fingerprint(const char *path, char hex[65], const char **format, char *err)
{
    const LoaderFormat *fmt = loader_detect(path, err);
    if (!fmt) return -1;
    if (fmt->fingerprint(path, hex, err)) return -1;
    if (format) *format = fmt->name;
    return 0;
}

int loader_load_tokenizer(Tokenizer *t, const char *path, int vocab_size, char *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) { ob_seterr(err, "%s: %s", path, strerror(errno)); return -1; }
    unsigned char head[HEAD_BYTES];
    size_t n = fread(head, 1, sizeof head, f);
    int c;
    rewind(f);
    do c = fgetc(f); while (c == ' ' || c == '\n' || c == '\r' || c == '\t');
    fclose(f);
    if (c == '{') return tok_json_load(t, path, vocab_size, err);
    if (spm_probe(head, n)) return spm_load(t, path, vocab_size, err);
    return tok_load(t, path, vocab_size, err);
}
