/* src/cli/cmd_quantize.c -- `onebit-tui quantize`: post-training quantisation of a
 * teacher into a .onebit student (SVID or XNOR init, no training). The
 * options are one table (quant_opts). Main thread only. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "base/common.h"
#include "onebit/student.h"
#include "onebit/svid.h"

typedef struct {
    char *teacher, *tokenizer, *out;
    int init;                    /* SvidMethod: the order of "nmf|svd|xnor|sign|arb" */
    int norm;
    int head;                    /* STUDENT_HEAD_*: the order of "f32|f16|q8_0" */
} QuantOpts;

#define F(field) offsetof(QuantOpts, field)
static const OptSpec quant_opts[] = {
    {"teacher", OPT_STR, F(teacher), OPT_NOHELP, 0, 0, NULL, NULL, "M", "the teacher", NULL},
    {"tokenizer", OPT_STR, F(tokenizer), OPT_NOHELP, 0, 0, NULL, NULL, "T", "its tokenizer", NULL},
    {"out", OPT_STR, F(out), 0, 0, 0, NULL, NULL, "S", "the .onebit file (written to a temporary file, then renamed)", NULL},
    {"o", OPT_STR, F(out), OPT_NOHELP, 0, 0, NULL, NULL, "S", "the same as --out", NULL},
    {"init", OPT_CHOICE, F(init), OPT_NOHELP, 0, 0, "nmf", "nmf|svd|xnor|sign|arb", "nmf|svd|xnor|sign|arb", "the rank-1 fit", NULL},
    {"no-norm", OPT_FLAG, F(norm), 0, 0, 0, NULL, NULL, NULL,
     "no LayerNorm after the 1-bit product (the default: the\nlayer then approximates W itself)", NULL},
    {"norm", OPT_FLAG, F(norm), 0, 0, 1, NULL, NULL, NULL,
     "LayerNorm after it, the OneBit architecture that training\n(QAT) needs; without training it changes the layer's scale", NULL},
    {"head", OPT_CHOICE, F(head), 0, 0, 0, "f16", "f32|f16|q8_0", "f16|q8_0|f32",
     "how the embedding and the output head are stored (f16;\nq8_0: GGUF's 8-bit blocks of 32; f32: as the teacher)", NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
#undef F

static void help(void)
{
    printf("Usage: onebit-tui quantize [--teacher M] [--tokenizer T] --out S.onebit\n"
           "                           [--init nmf|svd|xnor|sign|arb] [--norm|--no-norm] [--head f16|q8_0|f32]\n"
           "\n"
           "Write a 1-bit student of the teacher without training: every linear\n"
           "becomes sign(W) with g, h from a rank-1 fit |W| ~ h g^T (--init, default\n"
           "nmf; xnor = per-row mean |W|, g = 1). The student holds the teacher's\n"
           "embedding, norms, head and tokenizer, so it is self-contained.\n"
           "\n");
    opt_help_width(stdout, quant_opts, 13);
}

static int quantize_main(const QuantOpts *o)
{
    const char *tokenizer = o->tokenizer, *out = o->out;
    SvidMethod init = (SvidMethod)o->init;
    int norm = o->norm;
    char err[OB_ERRLEN];
    char *tp = open_resolve_teacher(o->teacher, err);
    if (!tp) return cli_error("%s", err);
    Model m;
    Tokenizer t;
    if (open_teacher(tp, tokenizer, &m, &t, NULL, err)) { free(tp); return cli_error("%s", err); }
    int nlin = m.cfg.n_layers * LIN_PER_LAYER;
    StudentLinearSrc *lin = ob_calloc((size_t)nlin, sizeof *lin);
    double t0 = ob_now();
    int rc = EXIT_OK;
    if (student_quantize(&m, init, norm, lin, err)) rc = cli_error("%s: %s", tp, err);
    else {
        char esc[2048], meta[4096];
        cli_json_string(esc, sizeof esc, tp);
        snprintf(meta, sizeof meta, "{\"kind\":\"ptq\",\"init\":\"%s\",\"norm\":%s,\"head\":\"%s\",\"teacher\":\"%s\",\"created\":%lld}",
                 svid_method_name(init), norm ? "true" : "false", student_head_name(o->head), esc, (long long)time(NULL));
        if (student_write_ex(out, &m, &t, lin, meta, o->head, err)) rc = cli_error("%s", err);
        else
            fprintf(stderr, "wrote %s: %d 1-bit linears, init %s, LayerNorm %s, embedding and head %s (%.2f s)\n", out, nlin,
                    svid_method_name(init), norm ? "on" : "off", student_head_name(o->head), ob_now() - t0);
        student_src_free(lin, nlin);
    }
    free(lin);
    free(tp);
    tok_free(&t);
    model_free(&m);
    return rc;
}

static int quantize_check(const void *p)
{
    const QuantOpts *o = p;
    return !o->out ? cli_usage_error("quantize", "--out S.onebit is required") : -1;
}

static int quantize_run(const void *o) { return quantize_main(o); }

int cli_quantize(int argc, char **argv)
{
    QuantOpts o;
    return cli_run_opts("quantize", quant_opts, &o, argc, argv, help, quantize_check, quantize_run);
}
