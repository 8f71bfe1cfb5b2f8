/* src/cli/cmd_generate.c -- `onebit-tui generate`: print the prompt and its
 * continuation as llama2.c's run does, tokens/s on stderr. The options are
 * one table (gen_opts). Main thread only. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "base/common.h"
#include "model/generate.h"

typedef struct {
    char *teacher, *student, *tokenizer, *prompt, *act;
    int n;
    float temp, top_p;
    long seed;                   /* -1: not given (from the clock) */
} GenOpts;

#define F(field) offsetof(GenOpts, field)
static const OptSpec gen_opts[] = {
    {"teacher", OPT_STR, F(teacher), 0, 0, 0, NULL, NULL, "M",
     "llama2.c checkpoint (default: $ONEBIT_TEACHER, models/stories260K.bin)", NULL},
    {"student", OPT_STR, F(student), 0, 0, 0, NULL, NULL, "S", "a 1-bit student (.onebit, or a OneBit checkpoint directory)\ninstead of the teacher", NULL},
    {"tokenizer", OPT_STR, F(tokenizer), 0, 0, 0, NULL, NULL, "T",
     "tokenizer.bin, tokenizer.json or tokenizer.model (default:\nbeside the teacher; a student's own tokenizer)", NULL},
    {"prompt", OPT_STR, F(prompt), 0, 0, 0, NULL, NULL, "TEXT", "prompt (default: empty, start from BOS)", NULL},
    {"n", OPT_INT, F(n), 0, 0, 1 << 24, "256", NULL, "N", "new tokens (default 256)", NULL},
    {"temp", OPT_FLOAT, F(temp), 0, 0, INFINITY, "1", NULL, "X", "temperature, 0 = greedy (default 1.0)", NULL},
    {"top-p", OPT_FLOAT, F(top_p), 0, 0, 1, "0.9", NULL, "P", "nucleus sampling threshold, 0 or 1 = off (default 0.9)", NULL},
    {"seed", OPT_LONG, F(seed), 0, 0, (double)__LONG_MAX__, "-1", NULL, "S", "random seed (default: time)", NULL},
    {"act", OPT_STR, F(act), 0, 0, 0, NULL, NULL, "A",
     "a student's activations: fp32 (default, exact) or int8\n(faster batched kernels, slightly lossy; see the man page)", NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
#undef F

static void help(void)
{
    printf("Usage: onebit-tui generate [--teacher M | --student S] [--tokenizer T] [--prompt TEXT] [-n N]\n"
           "                           [--temp X] [--top-p P] [--seed S] [--act fp32|int8]\n"
           "\n"
           "Print the prompt and N new tokens (stops early at BOS/EOS or the end of\n"
           "the context), then a line with tokens/s on stderr.\n"
           "\n");
    opt_help_width(stdout, gen_opts, 15);
}

static int print_piece(void *user, int token, const char *piece, int is_prompt)
{
    (void)user; (void)token; (void)is_prompt;
    if (tok_piece_printable(piece)) fputs(piece, stdout);
    fflush(stdout);
    return 0;
}

int cli_generate(int argc, char **argv)
{
    GenOpts o;
    opt_defaults(gen_opts, &o);
    int rc = cli_parse_opts("generate", gen_opts, &o, argc, argv, help);
    if (rc < 0 && o.act && cli_set_act("generate", o.act)) rc = EXIT_USAGE; /* it printed why */
    if (rc < 0 && o.teacher && o.student) rc = cli_usage_error("generate", "--teacher and --student exclude each other");
    if (rc >= 0) { opt_free(gen_opts, &o); return rc; }
    GenParams gp = {o.n, o.temp, o.top_p, o.seed >= 0 ? (uint64_t)o.seed : (uint64_t)(ob_now() * 1e6)};
    if (gp.seed == 0) gp.seed = 1; /* xorshift needs a nonzero state */
    Model m;
    Tokenizer t;
    char err[OB_ERRLEN];
    if (open_model(o.teacher, o.student, o.tokenizer, &m, &t, err)) {
        opt_free(gen_opts, &o);
        return cli_error("%s", err);
    }
    GenStats st;
    rc = gen_run(&m, &t, o.prompt ? o.prompt : "", &gp, print_piece, NULL, &st, err);
    printf("\n");
    fflush(stdout);
    if (rc) rc = cli_error("%s", err);
    else if (st.generated > 0)
        fprintf(stderr, "achieved tok/s: %f (%d tokens)\n", st.seconds > 0 ? st.generated / st.seconds : 0.0, st.generated);
    tok_free(&t);
    model_free(&m);
    opt_free(gen_opts, &o);
    return rc;
}
