/* src/cli/cmd_eval.c -- `onebit-tui eval`: mean NLL and perplexity on a text
 * file. The options are one table (eval_opts). Main thread only. */
#include <math.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "base/common.h"
#include "model/eval.h"

typedef struct {
    char *teacher, *student, *tokenizer, *text, *split, *act;
    int seq_len;                 /* 0: the model's context */
    int json;
} EvalOpts;

#define F(field) offsetof(EvalOpts, field)
static const OptSpec eval_opts[] = {
    {"teacher", OPT_STR, F(teacher), OPT_NOHELP, 0, 0, NULL, NULL, "M", "the teacher", NULL},
    {"student", OPT_STR, F(student), 0, 0, 0, NULL, NULL, "S",
     "evaluate a 1-bit student (.onebit); its own tokenizer\nunless --tokenizer is given", NULL},
    {"tokenizer", OPT_STR, F(tokenizer), OPT_NOHELP, 0, 0, NULL, NULL, "T", "the tokenizer", NULL},
    {"text", OPT_STR, F(text), OPT_NOHELP, 0, 0, NULL, NULL, "FILE", "the text", NULL},
    {"seq-len", OPT_INT, F(seq_len), 0, 2, 1 << 20, NULL, NULL, "L", "window length (default: the model's context)", NULL},
    {"split", OPT_STR, F(split), OPT_NOHELP, 0, 0, NULL, NULL, "SEP", "one document per SEP", NULL},
    {"act", OPT_STR, F(act), 0, 0, 0, NULL, NULL, "A", "a student's activations: fp32 (default, exact) or int8", NULL},
    {"json", OPT_FLAG, F(json), 0, 0, 1, NULL, NULL, NULL, "print {\"nll\":..,\"ppl\":..,\"tokens\":..}", NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
#undef F

static void help(void)
{
    printf("Usage: onebit-tui eval [--teacher M | --student S] [--tokenizer T] --text FILE [--seq-len L]\n"
           "                       [--split SEP] [--act fp32|int8] [--json]\n"
           "\n"
           "Teacher-forced mean negative log-likelihood (nats/token) and perplexity.\n"
           "Without --split the whole file is encoded once with BOS and cut into\n"
           "non-overlapping windows of L tokens; the loss covers tokens 1..L-1 of each.\n"
           "With --split SEP (e.g. '<|endoftext|>') every document is stripped, encoded\n"
           "with BOS and truncated to L tokens.\n"
           "\n");
    opt_help_width(stdout, eval_opts, 13);
}

static int eval_main(const EvalOpts *o)
{
    char err[OB_ERRLEN];
    char *text;
    size_t len;
    if (ob_read_file(o->text, &text, &len, err)) return cli_error("%s", err);
    Model m;
    Tokenizer t;
    if (open_model(o->teacher, o->student, o->tokenizer, &m, &t, err)) { free(text); return cli_error("%s", err); }
    int seq_len = o->seq_len > 0 ? o->seq_len : m.cfg.seq_len;
    EvalResult r;
    int rc = EXIT_OK;
    if (eval_text(&m, &t, text, seq_len, o->split, &r, err)) rc = cli_error("%s: %s", o->text, err);
    else {
        double nll = r.nll_sum / r.tokens;
        if (o->json) printf("{\"nll\":%.6f,\"ppl\":%.6f,\"tokens\":%ld,\"windows\":%d}\n", nll, exp(nll), r.tokens, r.windows);
        else printf("nll %.6f  ppl %.6f  tokens %ld  %s %d\n", nll, exp(nll), r.tokens, o->split ? "documents" : "windows", r.windows);
    }
    free(text);
    tok_free(&t);
    model_free(&m);
    return rc;
}

int cli_eval(int argc, char **argv)
{
    EvalOpts o;
    opt_defaults(eval_opts, &o);
    int rc = cli_parse_opts("eval", eval_opts, &o, argc, argv, help);
    if (rc < 0 && o.act && cli_set_act("eval", o.act)) rc = EXIT_USAGE; /* it printed why */
    if (rc < 0 && !o.text) rc = cli_usage_error("eval", "--text FILE is required");
    if (rc < 0 && o.teacher && o.student) rc = cli_usage_error("eval", "--teacher and --student exclude each other");
    if (rc >= 0) { opt_free(eval_opts, &o); return rc; }
    rc = eval_main(&o);
    opt_free(eval_opts, &o);
    return rc;
}
