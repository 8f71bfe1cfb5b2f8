/* cli_common.c -- shared pieces of the subcommands: errors, default paths. */
#include "onebit/bitlinear.h"
#include "cli/cli.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "format/hf.h"
#include "onebit/student.h"

#ifndef OB_DATADIR
#define OB_DATADIR "/usr/local/share/onebit-tui"
#endif

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "onebit-tui%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'onebit-tui %s%s--help' for more information.\n", cmd ? cmd : "", cmd ? " " : "");
    return EXIT_USAGE;
}

int cli_parse_opts(const char *cmd, const OptSpec *rows, void *obj, int argc, char **argv, void (*help)(void))
{
    char err[OB_ERRLEN];
    int k = opt_parse_argv(rows, obj, argc, argv, err);
    if (k == 1) { help(); return EXIT_OK; }
    if (k < 0) return cli_usage_error(cmd, "%s", err);
    return -1;
}

int cli_set_act(const char *cmd, const char *name)
{
    char err[OB_ERRLEN];
    if (bitlinear_set_act(name, err)) return cli_usage_error(cmd, "--act: %s", err);
    return 0;
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_RUNTIME;
}

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

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = ob_malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

char *cli_resolve_teacher(const char *explicit_path, char *err)
{
    if (explicit_path) return ob_strdup(explicit_path);
    const char *env = getenv("ONEBIT_TEACHER");
    if (env && *env) return ob_strdup(env);
    char *dir = exe_dir();
    if (dir) {
        char *p = join(dir, "models/stories260K.bin");
        free(dir);
        if (exists(p)) return p;
        free(p);
    }
    char *p = join(OB_DATADIR, "models/stories260K.bin");
    if (exists(p)) return p;
    free(p);
    ob_seterr(err, "no teacher given and no default teacher found (run 'make models', or pass --teacher, or set ONEBIT_TEACHER)");
    return NULL;
}

char *cli_resolve_tokenizer(const char *explicit_path, const char *teacher, int vocab, char *err)
{
    if (explicit_path) return ob_strdup(explicit_path);
    const char *env = getenv("ONEBIT_TOKENIZER");
    if (env && *env) return ob_strdup(env);
    char name[64];
    if (vocab == 32000) snprintf(name, sizeof name, "tokenizer.bin");
    else snprintf(name, sizeof name, "tok%d.bin", vocab);
    struct stat st;
    if (stat(teacher, &st) == 0 && S_ISDIR(st.st_mode)) { /* a directory: inside it first */
        char *in = join(teacher, name);
        if (exists(in)) return in;
        free(in);
    }
    char *dir = ob_strdup(teacher);
    char *slash = strrchr(dir, '/');
    while (slash && slash[1] == 0 && slash > dir) { *slash = 0; slash = strrchr(dir, '/'); } /* "dir/" */
    if (slash) *slash = 0;
    else { free(dir); dir = ob_strdup("."); }
    char *p = join(dir, name);
    free(dir);
    if (exists(p)) return p;
    ob_seterr(err, "no tokenizer given and %s does not exist (pass --tokenizer or set ONEBIT_TOKENIZER)", p);
    free(p);
    return NULL;
}

int cli_load_teacher(const char *teacher, const char *tokenizer, Model *m, Tokenizer *t)
{
    char err[OB_ERRLEN];
    char *tp = cli_resolve_teacher(teacher, err);
    if (!tp) return cli_error("%s", err);
    /* an embedded tokenizer (GGUF, tokenizer.json) is used unless one is
     * named explicitly (--tokenizer or $ONEBIT_TOKENIZER) */
    const char *env = getenv("ONEBIT_TOKENIZER");
    int want_embedded = !tokenizer && !(env && *env), embedded = 0;
    if (model_load_ex(m, want_embedded ? t : NULL, &embedded, tp, err)) { free(tp); return cli_error("%s", err); }
    if (embedded) { free(tp); return 0; }
    char *kp = cli_resolve_tokenizer(tokenizer, tp, m->cfg.vocab_size, err);
    free(tp);
    if (!kp) { model_free(m); return cli_error("%s", err); }
    /* a tokenizer.json (a JSON object) or a llama2.c tokenizer.bin, by content */
    FILE *f = fopen(kp, "rb");
    int c = ' ';
    if (f) { do c = fgetc(f); while (c == ' ' || c == '\n' || c == '\r' || c == '\t'); fclose(f); }
    if (c == '{' ? hf_tokenizer_load(t, kp, m->cfg.vocab_size, err) : tok_load(t, kp, m->cfg.vocab_size, err)) {
        free(kp);
        model_free(m);
        return cli_error("%s", err);
    }
    free(kp);
    return 0;
}

int cli_load_model(const char *teacher, const char *student, const char *tokenizer, Model *m, Tokenizer *t)
{
    if (!student) return cli_load_teacher(teacher, tokenizer, m, t);
    char err[OB_ERRLEN];
    if (student_load(m, tokenizer ? NULL : t, student, err)) return cli_error("%s", err);
    if (tokenizer && tok_load(t, tokenizer, m->cfg.vocab_size, err)) {
        model_free(m);
        return cli_error("%s", err);
    }
    return 0;
}
