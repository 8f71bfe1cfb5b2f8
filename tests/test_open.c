/* test_open.c -- opening models as the CLI and the workbench do
 * (onebit/open.h): a teacher with an embedded or a named tokenizer, and a
 * 1-bit student with its own tokenizer or a named one of either kind -- a
 * tokenizer.json included, which open_model once refused for a student. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "onebit/open.h"
#include "onebit/student.h"
#include "test.h"

static char dir[512];

static const char *sub(const char *name) { return test_sub(dir, name); }

/* a SentencePiece-style BPE tokenizer.json with tok512's pieces */
static void write_tokenizer_json(const char *path, const Tokenizer *t)
{
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true},"
               "{\"id\":1,\"content\":\"<s>\",\"special\":true},{\"id\":2,\"content\":\"</s>\",\"special\":true}],"
               "\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"unk_token\":\"<unk>\",\"vocab\":{");
    test_json_sp_vocab(f, t->vocab, t->vocab_size);
    fprintf(f, "},\"merges\":[]}}\n");
    fclose(f);
}

int main(void)
{
    const char *bin = shared_path("models/stories260K.bin"), *gguf = shared_path("models/stories260K.gguf");
    const char *tok = shared_path("models/tok512.bin");
    if (!bin || access(bin, R_OK) || access(gguf, R_OK) || access(tok, R_OK)) {
        printf("SKIP: shared models not found\n");
        return 77;
    }
    unsetenv("ONEBIT_TOKENIZER");
    unsetenv("ONEBIT_TEACHER");
    if (test_tmpdir(dir, sizeof dir, "onebit-open")) return 1;
    char err[OB_ERRLEN] = "";
    Model m;
    Tokenizer t;
    int embedded = -1;

    /* teachers */
    CHECK(open_teacher(gguf, NULL, &m, &t, &embedded, err) == 0 && embedded == 1 && t.vocab_size == 512,
          "gguf with its own tokenizer: %s", err);
    if (m.arena) { model_free(&m); tok_free(&t); }
    CHECK(open_teacher(gguf, tok, &m, &t, &embedded, err) == 0 && embedded == 0, "gguf with --tokenizer: %s", err);
    if (m.arena) { model_free(&m); tok_free(&t); }
    CHECK(open_teacher(bin, sub("none.bin"), &m, &t, NULL, err) == -1 && strstr(err, "none.bin"),
          "a missing tokenizer is named: %s", err);
    CHECK(open_teacher(bin, tok, &m, &t, &embedded, err) == 0 && embedded == 0 && t.vocab_size == 512,
          "llama2.c + tok512: %s", err);

    /* a student without a tokenizer of its own, and a tokenizer.json */
    int nlin = m.cfg.n_layers * LIN_PER_LAYER;
    StudentLinearSrc *lin = ob_calloc((size_t)nlin, sizeof *lin);
    CHECK(student_quantize(&m, SVID_SVD, 1, lin, err) == 0, "quantize: %s", err);
    CHECK(student_write(sub("s.onebit"), &m, NULL, lin, NULL, err) == 0, "write: %s", err);
    CHECK(student_write(sub("st.onebit"), &m, &t, lin, NULL, err) == 0, "write with tokenizer: %s", err);
    student_src_free(lin, nlin);
    free(lin);
    write_tokenizer_json(sub("tokenizer.json"), &t);
    model_free(&m);
    tok_free(&t);

    CHECK(open_model(NULL, sub("s.onebit"), sub("tokenizer.json"), &m, &t, err) == 0 && t.vocab_size == 512 &&
              m.lin[0].kind == LINEAR_ONEBIT,
          "student + tokenizer.json: %s", err);
    if (m.arena) {
        int *ids = NULL;
        size_t n = 0;
        CHECK(tok_encode(&t, "Once upon a time", 1, 0, &ids, &n) == 0 && n > 2 && ids[0] == 1, "encode with it");
        free(ids);
        model_free(&m);
        tok_free(&t);
    }
    CHECK(open_model(NULL, sub("s.onebit"), tok, &m, &t, err) == 0 && t.vocab_size == 512, "student + tok512.bin: %s", err);
    if (m.arena) { model_free(&m); tok_free(&t); }
    CHECK(open_model(NULL, sub("s.onebit"), NULL, &m, &t, err) == -1 && strstr(err, "no tokenizer"),
          "a student without a tokenizer needs one: %s", err);
    CHECK(open_model(NULL, sub("st.onebit"), NULL, &m, &t, err) == 0 && t.vocab_size == 512, "student's own: %s", err);
    if (m.arena) { model_free(&m); tok_free(&t); }
    CHECK(open_model(NULL, sub("s.onebit"), sub("none.json"), &m, &t, err) == -1 && strstr(err, "none.json"),
          "a missing tokenizer is named: %s", err);

    /* the tokenizer beside a teacher; inside a directory first */
    char *kp = open_resolve_tokenizer(NULL, bin, 512, err);
    CHECK(kp && strstr(kp, "tok512.bin"), "beside the teacher: %s", kp ? kp : err);
    free(kp);
    kp = open_resolve_tokenizer(NULL, sub("x.bin"), 777, err);
    CHECK(!kp && strstr(err, "tok777.bin"), "names what it looked for: %s", err);
    free(kp);

    test_rmtree(dir);
    return test_done("test_open");
}
