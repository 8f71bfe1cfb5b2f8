/* src/cli/cmd_convert.c -- `onebit-tui convert --to onebit`: a 1-bit
 * student opened with --student (the OneBit authors' bitllama checkpoint
 * directory, inference or training layout, or a .onebit) written as our
 * .onebit. The options are one table (convert_opts). Main thread only. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli/cli.h"
#include "base/common.h"
#include "onebit/student.h"

typedef struct {
    int to;                      /* the order of "onebit" */
    char *student, *tokenizer, *out;
} ConvertOpts;

#define F(field) offsetof(ConvertOpts, field)
static const OptSpec convert_opts[] = {
    {"to", OPT_CHOICE, F(to), OPT_NOHELP, 0, 0, "onebit", "onebit", "onebit", "the output format", NULL},
    {"student", OPT_STR, F(student), OPT_NOHELP | OPT_REQUIRED, 0, 0, NULL, NULL, "DIR", "the checkpoint", NULL},
    {"tokenizer", OPT_STR, F(tokenizer), 0, 0, 0, NULL, NULL, "T",
     "a tokenizer file instead of the directory's tokenizer.json or\ntokenizer.model (tokenizer.json, tokenizer.model or tokenizer.bin)", NULL},
    {"out", OPT_STR, F(out), OPT_NOHELP | OPT_REQUIRED, 0, 0, NULL, NULL, "S.onebit", "the .onebit file", NULL},
    {"o", OPT_STR, F(out), OPT_NOHELP, 0, 0, NULL, NULL, "S", "the same as --out", NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
#undef F

static void help(void)
{
    printf("Usage: onebit-tui convert --to onebit --student DIR --out S.onebit [--tokenizer T]\n"
           "\n"
           "Write the 1-bit student in DIR -- the OneBit authors' checkpoint, a Hugging\n"
           "Face directory with model_type bitllama: BitLlamaForCausalLMInf (signs packed\n"
           "8 per int8) or BitLlamaForCausalLM (latent weights, taken as sign(W)) -- as a\n"
           "self-contained .onebit (signs, g and h, embedding, norms, head, tokenizer).\n"
           "\n");
    opt_help_width(stdout, convert_opts, 13);
}

static int convert_student(Model *m, Tokenizer *t, const void *ctx)
{
    const ConvertOpts *o = ctx;
    char err[OB_ERRLEN];
    int nlin = m->cfg.n_layers * LIN_PER_LAYER, rc = EXIT_OK;
    StudentLinearSrc *lin = ob_calloc((size_t)nlin, sizeof *lin);
    double t0 = ob_now();
    if (student_sources(m, lin, err)) rc = cli_error("%s: %s", o->student, err);
    else {
        char esc[2048], meta[4096];
        cli_json_string(esc, sizeof esc, o->student);
        snprintf(meta, sizeof meta, "{\"kind\":\"import\",\"format\":\"bitllama\",\"source\":\"%s\",\"created\":%lld}", esc,
                 (long long)time(NULL));
        if (student_write(o->out, m, t, lin, meta, err)) rc = cli_error("%s", err);
        else fprintf(stderr, "wrote %s: %d 1-bit linears from %s (%.2f s)\n", o->out, nlin, o->student, ob_now() - t0);
    }
    free(lin);
    return rc;
}

static int convert_run(const void *p)
{
    const ConvertOpts *o = p;
    return cli_with_student(o->student, o->tokenizer, convert_student, o);
}

int cli_convert(int argc, char **argv)
{
    ConvertOpts o;
    return cli_run_opts("convert", convert_opts, &o, argc, argv, help, NULL, convert_run);
}
