/* src/cli/cmd_export.c -- `onebit-tui export --format bitllama-inf`: a
 * 1-bit student (--student: a .onebit, or a checkpoint directory) written
 * as the OneBit authors' inference checkpoint (onebit/bitllama.h), which
 * their BitLlamaForCausalLMInf loads. The options are one table
 * (export_opts). Main thread only. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "base/common.h"
#include "onebit/bitllama.h"

typedef struct {
    int format;                  /* the order of "bitllama-inf" */
    char *student, *teacher, *tokenizer, *out;
} ExportOpts;

#define F(field) offsetof(ExportOpts, field)
static const OptSpec export_opts[] = {
    {"format", OPT_CHOICE, F(format), OPT_NOHELP, 0, 0, "bitllama-inf", "bitllama-inf", "bitllama-inf", "the output format", NULL},
    {"student", OPT_STR, F(student), OPT_NOHELP | OPT_REQUIRED, 0, 0, NULL, NULL, "S.onebit", "the student", NULL},
    {"teacher", OPT_STR, F(teacher), 0, 0, 0, NULL, NULL, "DIR",
     "the teacher's Hugging Face directory: its tokenizer.model,\ntokenizer.json, tokenizer_config.json and special_tokens_map.json\nare copied (else the student's tokenizer is written as a\ntokenizer.model)", NULL},
    {"tokenizer", OPT_STR, F(tokenizer), 0, 0, 0, NULL, NULL, "T", "a tokenizer file instead of the student's", NULL},
    {"out", OPT_STR, F(out), OPT_NOHELP | OPT_REQUIRED, 0, 0, NULL, NULL, "DIR", "the output directory (new or empty)", NULL},
    {"o", OPT_STR, F(out), OPT_NOHELP, 0, 0, NULL, NULL, "DIR", "the same as --out", NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
#undef F

static void help(void)
{
    printf("Usage: onebit-tui export --format bitllama-inf --student S.onebit --out DIR\n"
           "                         [--teacher DIR] [--tokenizer T]\n"
           "\n"
           "Write the student as the OneBit authors' inference checkpoint: config.json\n"
           "(model_type bitllama, BitLlamaForCausalLMInf), model.safetensors (signs packed\n"
           "8 per int8 byte, weight_scale = h, input_factor = g, FP32) and the tokenizer.\n"
           "Every layer must have its LayerNorm (students of --norm or of training).\n"
           "\n");
    opt_help_width(stdout, export_opts, 13);
}

static int export_student(Model *m, Tokenizer *t, const void *ctx)
{
    const ExportOpts *o = ctx;
    char err[OB_ERRLEN];
    double t0 = ob_now();
    if (bitllama_export(m, t, o->teacher, o->out, err)) return cli_error("%s", err);
    fprintf(stderr, "wrote %s: bitllama inference checkpoint of %s (%.2f s)\n", o->out, o->student, ob_now() - t0);
    return EXIT_OK;
}

/* the entry glue of every student subcommand (cmd_convert.c's alike on
 * purpose: the options' struct differs, the steps are the shared ones) */
static int export_run(const void *p)
{
    const ExportOpts *o = p;
    return cli_with_student(o->student, o->tokenizer, export_student, o);
}

int cli_export(int argc, char **argv)
{
    ExportOpts o;
    return cli_run_opts("export", export_opts, &o, argc, argv, help, NULL, export_run);
}
