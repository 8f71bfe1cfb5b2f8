/* open.c -- default paths and model opening for the CLI and the workbench
 * (see open.h). */
#include "onebit/open.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "base/file.h"
#include "format/hf.h"
#include "format/loader.h"
#include "onebit/bitllama.h"
#include "onebit/student.h"

#ifndef OB_DATADIR
#define OB_DATADIR "/usr/local/share/onebit-tui"
#endif

static int exists(const char *p) { return access(p, R_OK) == 0; }

static char *exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return NULL;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (!slash) return NULL;
    *slash = 0;
    return ob_strdup(buf);
}

char *open_resolve_teacher(const char *explicit_path, char *err)
{
    if (explicit_path) return ob_strdup(explicit_path);
    const char *env = getenv("ONEBIT_TEACHER");
    if (env && *env) return ob_strdup(env);
    char *dir = exe_dir();
    if (dir) {
        char *p = file_join(dir, "models/stories260K.bin");
        free(dir);
        if (exists(p)) return p;
        free(p);
    }
    char *p = file_join(OB_DATADIR, "models/stories260K.bin");
    if (exists(p)) return p;
    free(p);
    ob_seterr(err, "no teacher given and no default teacher found (run 'make models', or pass --teacher, or set ONEBIT_TEACHER)");
    return NULL;
}

char *open_resolve_tokenizer(const char *explicit_path, const char *teacher, int vocab, char *err)
{
    if (explicit_path) return ob_strdup(explicit_path);
    const char *env = getenv("ONEBIT_TOKENIZER");
    if (env && *env) return ob_strdup(env);
    char name[64];
    if (vocab == 32000) snprintf(name, sizeof name, "tokenizer.bin");
    else snprintf(name, sizeof name, "tok%d.bin", vocab);
    struct stat st;
    if (stat(teacher, &st) == 0 && S_ISDIR(st.st_mode)) { /* a directory: inside it first */
        char *in = file_join(teacher, name);
        if (exists(in)) return in;
        free(in);
    }
    char *dir = ob_strdup(teacher);
    char *slash = strrchr(dir, '/');
    while (slash && slash[1] == 0 && slash > dir) { *slash = 0; slash = strrchr(dir, '/'); } /* "dir/" */
    if (slash) *slash = 0;
    else { free(dir); dir = ob_strdup("."); }
    char *p = file_join(dir, name);
    free(dir);
    if (exists(p)) return p;
    ob_seterr(err, "no tokenizer given and %s does not exist (pass --tokenizer or set ONEBIT_TOKENIZER)", p);
    free(p);
    return NULL;
}

/* the teacher's tokenizer when it carries none (or another is named):
 * tokenizer, else as open_resolve_tokenizer finds it beside tp */
static int named_tokenizer(const char *tokenizer, const char *tp, int vocab, Tokenizer *t, char *err)
{
    char *kp = open_resolve_tokenizer(tokenizer, tp, vocab, err);
    int rc = !kp || loader_load_tokenizer(t, kp, vocab, err) ? -1 : 0;
    free(kp);
    return rc;
}

/* an embedded tokenizer (GGUF, tokenizer.json) is used unless one is named
 * explicitly (--tokenizer or $ONEBIT_TOKENIZER) */
static int want_embedded(const char *tokenizer)
{
    const char *env = getenv("ONEBIT_TOKENIZER");
    return !tokenizer && !(env && *env);
}

int open_teacher(const char *teacher, const char *tokenizer, Model *m, Tokenizer *t, int *embedded, char *err)
{
    int dummy;
    if (!embedded) embedded = &dummy;
    *embedded = 0;
    char *tp = open_resolve_teacher(teacher, err);
    if (!tp) return -1;
    if (model_load_ex(m, want_embedded(tokenizer) ? t : NULL, embedded, tp, err)) { free(tp); return -1; }
    int rc = *embedded ? 0 : named_tokenizer(tokenizer, tp, m->cfg.vocab_size, t, err);
    /* a directory's chat template goes with it whatever the tokenizer */
    struct stat st;
    if (!rc && !t->chat_template && stat(tp, &st) == 0 && S_ISDIR(st.st_mode)) t->chat_template = hf_chat_template(tp);
    free(tp);
    if (rc) model_free(m);
    return rc;
}

int open_teacher_tokenizer(const char *teacher, const char *tokenizer, Tokenizer *t, int *vocab, char *err)
{
    char *tp = open_resolve_teacher(teacher, err);
    if (!tp) return -1;
    LlamaFile f;
    int embedded = 0, rc = -1;
    if (loader_load(&f, want_embedded(tokenizer) ? t : NULL, &embedded, tp, err) == 0) {
        *vocab = f.cfg.vocab_size;
        rc = embedded ? 0 : named_tokenizer(tokenizer, tp, f.cfg.vocab_size, t, err);
        llama_file_free(&f);
    }
    free(tp);
    return rc;
}

/* a directory holding a config.json */
static int is_ckpt_dir(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    char *cfg = file_join(path, "config.json");
    int yes = access(cfg, F_OK) == 0;
    free(cfg);
    return yes;
}

int open_student(Model *m, Tokenizer *tok, const char *path, char *err)
{
    if (is_ckpt_dir(path)) return bitllama_load(m, tok, path, err);
    return student_load(m, tok, path, err);
}

int open_is_student(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    if (S_ISDIR(st.st_mode)) {
        char type[32];
        return hf_model_type(path, type, sizeof type) == 0 && !strcmp(type, "bitllama");
    }
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char magic[8];
    int yes = fread(magic, 1, 8, f) == 8 && !memcmp(magic, "ONEBIT\0\0", 8);
    fclose(f);
    return yes;
}

int open_student_has_tokenizer(const char *path, char *err)
{
    return is_ckpt_dir(path) ? 1 : student_has_tokenizer(path, err);
}

int open_model(const char *teacher, const char *student, const char *tokenizer, Model *m, Tokenizer *t, char *err)
{
    if (!student) return open_teacher(teacher, tokenizer, m, t, NULL, err);
    if (open_student(m, tokenizer ? NULL : t, student, err)) return -1;
    if (tokenizer && loader_load_tokenizer(t, tokenizer, m->cfg.vocab_size, err)) {
        model_free(m);
        return -1;
    }
    return 0;
}
