/* src/cli/cmd_export.c -- `onebit-tui export` and `onebit-tui convert`, one
 * command under two names (--format and --to are the same option), for
 * moving work between onebit-tui and the OneBit authors' GPU trainer:
 *   onebit          a 1-bit student (--student: a .onebit or their
 *                   checkpoint directory, inference or training layout)
 *                   as our .onebit
 *   bitllama-inf    a student as their inference checkpoint
 *   bitllama-start  the start checkpoint their trainer begins from: SVID of
 *                   --teacher (--init), or one of our QAT checkpoints (--ckpt)
 *   dataset         a self-generation token cache (--data-cache) as their
 *                   LLaMA-Factory dataset
 * The writers are onebit/bitllama.h, onebit/student.h and train/data.h; the
 * options are one table (export_opts). Main thread only. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "base/common.h"
#include "format/loader.h"
#include "onebit/bitllama.h"
#include "onebit/student.h"
#include "onebit/svid.h"
#include "train/data.h"
#include "train/trainer.h"

enum { FMT_ONEBIT, FMT_INF, FMT_START, FMT_DATASET, FMT_N };
static const char *const fmt_names[FMT_N] = {"onebit", "bitllama-inf", "bitllama-start", "dataset"};

typedef struct {
    char *format;                /* a name of fmt_names (--format or --to) */
    int init;                    /* SvidMethod: nmf | svd */
    uint64_t shard_size;         /* bytes per safetensors shard */
    char *student, *teacher, *tokenizer, *ckpt, *data_cache, *out, *data;
    int fmt;                     /* set by check: the index of format */
    const char *cmd;             /* "export" or "convert" (not a row: set before parsing) */
} ExportOpts;

#define F(field) offsetof(ExportOpts, field)
static const OptSpec export_opts[] = {
    {"format", OPT_STR, F(format), OPT_NOHELP, 0, 0, NULL, NULL, "F", "the output format", NULL},
    {"to", OPT_STR, F(format), OPT_NOHELP, 0, 0, NULL, NULL, "F", "the same as --format", NULL},
    {"student", OPT_STR, F(student), 0, 0, 0, NULL, NULL, "S",
     "onebit, bitllama-inf: the student, a .onebit or a OneBit\ncheckpoint directory", NULL},
    {"teacher", OPT_STR, F(teacher), 0, 0, 0, NULL, NULL, "M",
     "bitllama-start, dataset: the teacher (its FP tensors and\ntokenizer); bitllama-inf: a Hugging Face directory whose\n"
     "tokenizer files are copied. A directory's tokenizer.model,\ntokenizer.json, tokenizer_config.json and\n"
     "special_tokens_map.json are copied (else the tokenizer is\nwritten as a tokenizer.model)", NULL},
    {"tokenizer", OPT_STR, F(tokenizer), 0, 0, 0, NULL, NULL, "T",
     "a tokenizer file (tokenizer.json, tokenizer.model or\ntokenizer.bin) instead of the student's or teacher's", NULL},
    {"init", OPT_CHOICE, F(init), 0, 0, 0, "nmf", "nmf|svd", "nmf|svd", "bitllama-start: SVID of the teacher (nmf)", NULL},
    {"ckpt", OPT_STR, F(ckpt), 0, 0, 0, NULL, NULL, "CKPT",
     "bitllama-start: the latent weights, g and h of this `train`\ncheckpoint (of --teacher) instead of SVID", NULL},
    {"shard-size", OPT_U64, F(shard_size), 0, 1, 1e15, "5000000000", NULL, "BYTES",
     "bitllama-start: safetensors shards of at most BYTES\n(5000000000), with model.safetensors.index.json", NULL},
    {"data-cache", OPT_STR, F(data_cache), 0, 0, 0, NULL, NULL, "F",
     "dataset: a token cache of `train --self-generate N\n--data-cache DIR` (DIR/selfgen-*.tok)", NULL},
    {"data", OPT_STR, F(data), 0, 0, 0, NULL, NULL, "DIR",
     "the self-generated data (--data-cache) as their LLaMA-Factory\ndataset in DIR: beside --format bitllama-start, or alone\n(= --format dataset --out DIR)", NULL},
    {"out", OPT_STR, F(out), OPT_NOHELP, 0, 0, NULL, NULL, "OUT", "the output", NULL},
    {"o", OPT_STR, F(out), OPT_NOHELP, 0, 0, NULL, NULL, "OUT", "the same as --out", NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
#undef F

static void help(void)
{
    printf("Usage: onebit-tui export --format onebit --student DIR --out S.onebit\n"
           "       onebit-tui export --format bitllama-inf --student S --out DIR [--teacher DIR]\n"
           "       onebit-tui export --format bitllama-start --teacher M [--init nmf|svd | --ckpt CKPT]\n"
           "                         --out DIR [--shard-size BYTES]\n"
           "       onebit-tui export --format dataset --data-cache F --teacher M --out DIR\n"
           "       onebit-tui convert --to onebit ... (the same command)\n"
           "\n"
           "Move work between onebit-tui and the OneBit authors' GPU trainer:\n"
           "  onebit          a student (a .onebit, or their checkpoint directory:\n"
           "                  BitLlamaForCausalLMInf, or BitLlamaForCausalLM taken as\n"
           "                  sign(W)) as a self-contained .onebit\n"
           "  bitllama-inf    a student as their inference checkpoint (signs packed 8 per\n"
           "                  int8, weight_scale = h, input_factor = g; every layer must\n"
           "                  have its LayerNorm and no mixture of scales)\n"
           "  bitllama-start  the start checkpoint their trainer begins from, as their\n"
           "                  build_start_ckpt.py writes it: latent FP32 weight =\n"
           "                  0.01 sign(W), weight_scale, input_factor from SVID of the\n"
           "                  teacher -- or the trained latent weights of --ckpt -- and the\n"
           "                  teacher's embedding, norms and head\n"
           "  dataset         self-generated training sequences as their LLaMA-Factory\n"
           "                  dataset: DIR/onebit_selfgen.json and DIR/dataset_info.json\n"
           "Directories are new or empty, and written whole or not at all.\n"
           "\n");
    opt_help_width(stdout, export_opts, 13);
}

/* ---- onebit, bitllama-inf: a student in --------------------------------------- */

static int export_student(Model *m, Tokenizer *t, const void *ctx)
{
    const ExportOpts *o = ctx;
    char err[OB_ERRLEN];
    double t0 = ob_now();
    if (o->fmt == FMT_INF) {
        if (bitllama_export(m, t, o->teacher, o->out, err)) return cli_error("%s", err);
        fprintf(stderr, "wrote %s: bitllama inference checkpoint of %s (%.2f s)\n", o->out, o->student, ob_now() - t0);
        return EXIT_OK;
    }
    int nlin = m->cfg.n_layers * LIN_PER_LAYER, rc = EXIT_OK;
    StudentLinearSrc *lin = ob_calloc((size_t)nlin, sizeof *lin);
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

/* ---- bitllama-start: SVID of the teacher, or a QAT checkpoint ------------------ */

static int export_start(const ExportOpts *o)
{
    char err[OB_ERRLEN];
    Model m;
    Tokenizer t;
    if (open_teacher(o->teacher, o->tokenizer, &m, &t, NULL, err)) return cli_error("%s", err);
    const ModelConfig *c = &m.cfg;
    int nlin = c->n_layers * LIN_PER_LAYER, rc = EXIT_RUNTIME, latent = 0;
    double t0 = ob_now();
    StudentLinearSrc *lin = ob_calloc((size_t)nlin, sizeof *lin);
    TrainerCkpt k = {0};
    char *tpath = NULL;
    if (o->ckpt) { /* the trained latent weights; the teacher must be the checkpoint's */
        char sha[65];
        tpath = open_resolve_teacher(o->teacher, err);
        if (!tpath || loader_fingerprint(tpath, sha, NULL, err) || trainer_ckpt_read(o->ckpt, c, sha, &k, err)) {
            cli_error("%s", err);
            goto out;
        }
        if (!k.norm) { /* bitllama's BitLinear always normalizes */
            cli_error("%s: trained with --layernorm off; a bitllama start checkpoint has the LayerNorm after every "
                      "1-bit product", o->ckpt);
            goto out;
        }
        trainer_ckpt_sources(&k, c, lin);
        latent = 1;
    } else if (student_quantize(&m, (SvidMethod)o->init, 1, lin, err)) { /* what `quantize --norm` writes */
        cli_error("%s", err);
        goto out;
    }
    if (bitllama_export_start(&m, lin, latent, &t, o->teacher, o->shard_size, o->out, err)) { cli_error("%s", err); goto out; }
    if (o->ckpt) fprintf(stderr, "wrote %s: bitllama start checkpoint from %s (step %ld) (%.2f s)\n", o->out, o->ckpt, k.step, ob_now() - t0);
    else fprintf(stderr, "wrote %s: bitllama start checkpoint, SVID (%s) of %s (%.2f s)\n", o->out, svid_method_name((SvidMethod)o->init),
                 o->teacher ? o->teacher : "the default teacher", ob_now() - t0);
    rc = EXIT_OK;
out:
    if (!latent) student_src_free(lin, nlin);
    free(lin);
    free(tpath);
    trainer_ckpt_free(&k);
    tok_free(&t);
    model_free(&m);
    return rc;
}

/* ---- dataset: a token cache decoded with the teacher's tokenizer ---------------- */

static int export_dataset(const ExportOpts *o)
{
    char err[OB_ERRLEN];
    DataCacheKey key;
    int *lens = NULL, *tok = NULL;
    if (data_cache_load(o->data_cache, NULL, &key, &lens, &tok, err)) return cli_error("%s", err);
    Tokenizer t;
    char sha[65];
    char *tpath = NULL;
    int rc = EXIT_RUNTIME, vocab;
    if (open_teacher_tokenizer(o->teacher, o->tokenizer, &t, &vocab, err)) { free(lens); free(tok); return cli_error("%s", err); }
    tpath = open_resolve_teacher(o->teacher, err);
    if (!tpath || loader_fingerprint(tpath, sha, NULL, err)) { cli_error("%s", err); goto out; }
    if (strncmp(sha, key.teacher_sha, 64)) { /* its tokenizer decodes the tokens */
        cli_error("%s: the sequences were generated by another teacher (sha256 %.16s..., %s is %.16s...)", o->data_cache, key.teacher_sha,
                  tpath, sha);
        goto out;
    }
    if (key.vocab != vocab || key.vocab != t.vocab_size) {
        cli_error("%s: vocabulary %d, the teacher's is %d and its tokenizer's %d", o->data_cache, key.vocab, vocab, t.vocab_size);
        goto out;
    }
    if (data_write_llamafactory(o->out, &t, key.n, lens, tok, err)) { cli_error("%s", err); goto out; }
    fprintf(stderr, "wrote %s: %d sequences as the LLaMA-Factory dataset '%s'\n", o->out, key.n, DATA_LF_NAME);
    rc = EXIT_OK;
out:
    free(tpath);
    free(lens);
    free(tok);
    tok_free(&t);
    return rc;
}

/* ---- the command ------------------------------------------------------------------ */

static int export_check(const void *p)
{
    ExportOpts *o = (ExportOpts *)p; /* fmt is the check's result */
    o->fmt = -1;
    /* --data DIR alone: the dataset into DIR */
    if (o->data && !o->format) o->format = ob_strdup("dataset");
    if (o->data && !o->out && !strcmp(o->format, "dataset")) o->out = ob_strdup(o->data);
    if (!o->out) return cli_usage_error(o->cmd, "--out OUT is required");
    for (int i = 0; i < FMT_N && o->format; i++)
        if (!strcmp(o->format, fmt_names[i])) o->fmt = i;
    if (!o->format)
        return cli_usage_error(o->cmd, "--%s F is required (onebit, bitllama-inf, bitllama-start, dataset)", strcmp(o->cmd, "convert") ? "format" : "to");
    if (o->fmt < 0) return cli_usage_error(o->cmd, "unknown format '%s' (onebit, bitllama-inf, bitllama-start, dataset)", o->format);
    int with_student = o->fmt == FMT_ONEBIT || o->fmt == FMT_INF;
    if (with_student && !o->student) return cli_usage_error(o->cmd, "--format %s needs --student S", o->format);
    if (!with_student && o->student) return cli_usage_error(o->cmd, "--format %s takes no --student (it starts from --teacher)", o->format);
    if (o->ckpt && o->fmt != FMT_START) return cli_usage_error(o->cmd, "--ckpt is for --format bitllama-start");
    int with_data = o->fmt == FMT_DATASET || (o->fmt == FMT_START && o->data);
    if (o->data && o->fmt != FMT_DATASET && o->fmt != FMT_START) return cli_usage_error(o->cmd, "--data is for --format bitllama-start or dataset");
    if (o->data_cache && !with_data) return cli_usage_error(o->cmd, "--data-cache is for --format dataset or --data DIR");
    if (with_data && !o->data_cache) return cli_usage_error(o->cmd, "the dataset needs --data-cache F");
    return -1;
}

static int export_run(const void *p)
{
    const ExportOpts *o = p;
    if (o->fmt == FMT_START) {
        int rc = export_start(o);
        if (rc != EXIT_OK || !o->data) return rc;
        ExportOpts d = *o; /* the dataset beside it, into --data */
        d.out = o->data;
        return export_dataset(&d);
    }
    if (o->fmt == FMT_DATASET) return export_dataset(o);
    return cli_with_student(o->student, o->tokenizer, export_student, o);
}

int cli_export(int argc, char **argv)
{
    ExportOpts o;
    o.cmd = argv[0];
    return cli_run_opts(argv[0], export_opts, &o, argc, argv, help, export_check, export_run);
}
