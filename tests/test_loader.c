/* test_loader.c -- the loader registry: every format detected by content
 * (also under a wrong extension), an unknown file refused with an error
 * naming each format tried, loads giving the same config, and fingerprints:
 * a file's SHA-256, a Hugging Face directory's over its config and weight
 * files (stable, and changed by a weight or config change, not by other
 * files). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "base/file.h"
#include "format/loader.h"
#include "format/tokenizer.h"
#include "test.h"

static char dir[512];

static const char *sub(const char *name) { return test_sub(dir, name); }

static int copy(const char *from, const char *to)
{
    char *d;
    size_t n;
    char err[OB_ERRLEN];
    if (ob_read_file(from, &d, &n, err)) { fprintf(stderr, "%s\n", err); return -1; }
    FILE *f = fopen(to, "wb");
    int ok = f && fwrite(d, 1, n, f) == n;
    if (f) ok = (fclose(f) == 0) && ok;
    free(d);
    return ok ? 0 : -1;
}

/* flip one byte of a file at offset off from its end */
static int poke(const char *path, long off_end)
{
    FILE *f = fopen(path, "r+b");
    if (!f) return -1;
    fseek(f, -off_end, SEEK_END);
    int c = fgetc(f);
    fseek(f, -off_end, SEEK_END);
    fputc(c ^ 0x55, f);
    return fclose(f);
}

static void expect_format(const char *path, const char *want, const char *what)
{
    char err[OB_ERRLEN] = "";
    const LoaderFormat *f = loader_detect(path, err);
    CHECK(f && !strcmp(f->name, want), "%s: detected %s, wanted %s (%s)", what, f ? f->name : "nothing", want, err);
    LlamaFile lf;
    Tokenizer t;
    int tl = 0;
    int rc = loader_load(&lf, &t, &tl, path, err);
    CHECK(rc == 0 && !strcmp(lf.format, want) && lf.cfg.dim == 64 && lf.cfg.n_layers == 5 && lf.cfg.vocab_size == 512 &&
              llama_file_check(&lf, err) == 0,
          "%s: load: %s", what, err);
    if (rc == 0) {
        if (tl) tok_free(&t);
        llama_file_free(&lf);
    }
}

int main(void)
{
    const char *bin = shared_path("models/stories260K.bin"), *gguf = shared_path("models/stories260K.gguf");
    const char *hf = shared_path("models/stories260K-hf"), *tok = shared_path("models/tok512.bin");
    if (!bin || access(bin, R_OK) || access(gguf, R_OK) || access(hf, R_OK) || access(tok, R_OK)) {
        printf("SKIP: shared models not found\n");
        return 77;
    }
    if (test_tmpdir(dir, sizeof dir, "onebit-loader")) return 1;
    char err[OB_ERRLEN], a[65], b[65], c[65];

    /* ---- by content, whatever the name ---- */
    expect_format(bin, "llama2c", "stories260K.bin");
    expect_format(gguf, "gguf", "stories260K.gguf");
    expect_format(hf, "hf", "stories260K-hf");
    char st_path[700];
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", hf);
    expect_format(st_path, "hf", "model.safetensors named directly");
    CHECK(copy(gguf, sub("gguf-named.bin")) == 0, "copy");
    expect_format(sub("gguf-named.bin"), "gguf", "a GGUF named .bin");
    CHECK(copy(bin, sub("bin-named.gguf")) == 0, "copy");
    expect_format(sub("bin-named.gguf"), "llama2c", "a llama2.c checkpoint named .gguf");
    CHECK(mkdir(sub("h"), 0755) == 0, "mkdir");
    char from[700];
    snprintf(from, sizeof from, "%s/config.json", hf);
    CHECK(copy(from, sub("h/config.json")) == 0, "copy config");
    CHECK(copy(st_path, sub("h/model.safetensors")) == 0, "copy weights");
    CHECK(copy(st_path, sub("h/weights.bin")) == 0, "copy weights");
    expect_format(sub("h/weights.bin"), "hf", "a safetensors file named .bin");

    /* ---- unknown: an error naming the path and every format tried ---- */
    FILE *f = fopen(sub("notes.txt"), "w");
    fputs("Once upon a time there was no model in this file.\n", f);
    fclose(f);
    err[0] = 0;
    CHECK(loader_detect(sub("notes.txt"), err) == NULL, "a text file detected as a model");
    CHECK(!strncmp(err, sub("notes.txt"), strlen(sub("notes.txt"))) && strstr(err, "a text file, not a model"),
          "a text file is called one: %s", err);
    /* binary that no format takes: every format's reason */
    f = fopen(sub("blob.bin"), "wb");
    for (int i = 0; i < 200; i++) fputc((i * 37 + 11) & 0xff, f);
    fclose(f);
    err[0] = 0;
    CHECK(loader_detect(sub("blob.bin"), err) == NULL, "a blob detected as a model");
    CHECK(!strncmp(err, sub("blob.bin"), strlen(sub("blob.bin"))) && strstr(err, "not a teacher") &&
              strstr(err, "gguf: no GGUF magic") && strstr(err, "hf: ") && strstr(err, "llama2c: "),
          "unknown file message: %s", err);
    LlamaFile lf;
    CHECK(loader_load(&lf, NULL, NULL, sub("notes.txt"), err) == -1, "loaded a text file");
    CHECK(loader_detect(sub("missing.bin"), err) == NULL && strstr(err, "No such file"), "missing: %s", err);

    /* ---- fingerprints ---- */
    CHECK(loader_fingerprint(bin, a, NULL, err) == 0 && file_sha256(bin, b, err) == 0 && !strcmp(a, b),
          "a llama2.c file's fingerprint is its sha256: %s", err);
    const char *fmt = NULL;
    CHECK(loader_fingerprint(gguf, a, &fmt, err) == 0 && file_sha256(gguf, b, err) == 0 && !strcmp(a, b) &&
              fmt && !strcmp(fmt, "gguf"),
          "a GGUF file's fingerprint is its sha256: %s", err);
    CHECK(loader_fingerprint(sub("h"), a, &fmt, err) == 0 && strlen(a) == 64 && fmt && !strcmp(fmt, "hf"),
          "directory fingerprint: %s", err);
    CHECK(loader_fingerprint(sub("h"), b, NULL, err) == 0 && !strcmp(a, b), "directory fingerprint is stable");
    CHECK(loader_fingerprint(sub("h/model.safetensors"), b, NULL, err) == 0 && !strcmp(a, b),
          "a safetensors file named directly has its directory's fingerprint");
    CHECK(loader_fingerprint(hf, c, NULL, err) == 0 && !strcmp(a, c), "same files elsewhere, same fingerprint: %s", err);
    f = fopen(sub("h/README.md"), "w");
    fputs("not a weight file\n", f);
    fclose(f);
    CHECK(loader_fingerprint(sub("h"), b, NULL, err) == 0 && !strcmp(a, b), "a README does not change it");
    CHECK(poke(sub("h/model.safetensors"), 3) == 0, "poke");
    CHECK(loader_fingerprint(sub("h"), b, NULL, err) == 0 && strcmp(a, b), "a changed weight changes it");
    CHECK(poke(sub("h/model.safetensors"), 3) == 0, "poke back");
    CHECK(loader_fingerprint(sub("h"), b, NULL, err) == 0 && !strcmp(a, b), "restored: the same again");
    f = fopen(sub("h/config.json"), "a");
    fputs(" ", f);
    fclose(f);
    CHECK(loader_fingerprint(sub("h"), b, NULL, err) == 0 && strcmp(a, b), "a changed config changes it");
    unlink(sub("h/model.safetensors"));
    CHECK(loader_fingerprint(sub("h"), b, NULL, err) == -1 && strstr(err, "model.safetensors"),
          "a directory without its weights: %s", err);

    /* ---- tokenizers by content ---- */
    CHECK(copy(tok, sub("tok512.json")) == 0, "copy");
    Tokenizer t;
    CHECK(loader_load_tokenizer(&t, sub("tok512.json"), 512, err) == 0 && t.vocab_size == 512,
          "a tokenizer.bin named .json: %s", err);
    if (t.vocab) tok_free(&t);

    test_rmtree(dir);
    return test_done("test_loader");
}
