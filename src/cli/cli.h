/* cli.h -- the headless subcommands (`onebit-tui generate|eval|bench ...`)
 * and what they share: error reporting and option helpers (models are
 * opened through onebit/open.h, as the workbench opens them).
 * Exit codes: 0 ok, 1 runtime error, 2 usage error. */
#ifndef OB_CLI_H
#define OB_CLI_H

#include "base/opt.h"
#include "onebit/open.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);  /* argv[0] is the subcommand; NULL: a heading */
    const char *summary;
} CliCommand;

extern const CliCommand cli_commands[];

/* usage error: prints "onebit-tui CMD: msg" and a hint, returns EXIT_USAGE */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* runtime error: prints "error: msg", returns EXIT_RUNTIME */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse argv (argv[0] is the subcommand) by the option table's rows into
 * obj: -1 to go on, else the exit code to return with (--help printed by
 * help: 0; a usage error printed: 2). */
int cli_parse_opts(const char *cmd, const OptSpec *rows, void *obj, int argc, char **argv, void (*help)(void));

/* a whole option-table subcommand: defaults, cli_parse_opts, the
 * OPT_REQUIRED rows (a usage error for the first one missing), then check
 * (NULL: none; returns -1 to go on, else an exit code) and run, then
 * opt_free; the exit code */
int cli_run_opts(const char *cmd, const OptSpec *rows, void *obj, int argc, char **argv, void (*help)(void),
                 int (*check)(const void *obj), int (*run)(const void *obj));

/* open the 1-bit student (a .onebit or a checkpoint directory; tokenizer
 * as open_model), run fn on it and free it; fn's exit code, or
 * EXIT_RUNTIME with the error printed when it does not open */
int cli_with_student(const char *student, const char *tokenizer, int (*fn)(Model *m, Tokenizer *t, const void *ctx),
                     const void *ctx);

/* --act NAME: the activation precision of the 1-bit layers (fp32 or int8,
 * bitlinear_set_act); 0, or a usage error's exit code for `cmd` */
int cli_set_act(const char *cmd, const char *name);

/* s as the inside of a JSON string literal (quotes and backslashes
 * escaped, control characters as \uXXXX) into dst (n bytes, cut short) */
void cli_json_string(char *dst, size_t n, const char *s);

int cli_generate(int argc, char **argv);
int cli_chat(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_runs(int argc, char **argv);
int cli_train(int argc, char **argv);
int cli_inspect(int argc, char **argv);
int cli_quantize(int argc, char **argv);
int cli_synth(int argc, char **argv);
int cli_export(int argc, char **argv);
int cli_import(int argc, char **argv);

#endif
