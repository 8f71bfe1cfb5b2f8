/* cli_common.c -- shared pieces of the subcommands: errors, --act. */
#include "onebit/bitlinear.h"
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

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

int cli_run_opts(const char *cmd, const OptSpec *rows, void *obj, int argc, char **argv, void (*help)(void),
                 int (*check)(const void *obj), int (*run)(const void *obj))
{
    opt_defaults(rows, obj);
    int rc = cli_parse_opts(cmd, rows, obj, argc, argv, help);
    char err[OB_ERRLEN];
    if (rc < 0 && opt_check_required(rows, obj, err)) rc = cli_usage_error(cmd, "%s", err);
    if (rc < 0 && check) rc = check(obj);
    if (rc < 0) rc = run(obj);
    opt_free(rows, obj);
    return rc;
}

int cli_with_student(const char *student, const char *tokenizer, int (*fn)(Model *m, Tokenizer *t, const void *ctx),
                     const void *ctx)
{
    char err[OB_ERRLEN];
    Model m;
    Tokenizer t;
    if (open_model(NULL, student, tokenizer, &m, &t, err)) return cli_error("%s", err);
    int rc = fn(&m, &t, ctx);
    tok_free(&t);
    model_free(&m);
    return rc;
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
    va_start(ap, fmt);
    ob_verror(fmt, ap);
    va_end(ap);
    return EXIT_RUNTIME;
}

void cli_json_string(char *dst, size_t n, const char *s)
{
    ObBuf b = {0};
    ob_buf_json_string_n(&b, s, n - 1);
    memcpy(dst, b.s, b.n + 1);
    free(b.s);
}
