/* src/cli/cmd_synth.c -- `onebit-tui synth`: write a random-weight LLaMA
 * teacher of a real shape (Hugging Face directory or GGUF file), to measure
 * a machine before downloading a model and to give tests real shapes. The
 * options are one table (synth_opts). Main thread only. */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "base/common.h"
#include "format/synth.h"

typedef struct {
    char *shape, *format, *dtype, *tokenizer, *out;
    uint64_t seed, max_shard;
    int seq_len, quiet;
} SynthCli;

#define F(field) offsetof(SynthCli, field)
static const OptSpec synth_opts[] = {
    {"shape", OPT_STR, F(shape), OPT_REQUIRED, 0, 0, NULL, NULL, "S",
     "tinyllama-1.1b, llama2-7b, llama3-8b, or\nDIM,HIDDEN,LAYERS,HEADS,KV,VOCAB (e.g. 64,172,2,4,2,512)", NULL},
    {"format", OPT_STR, F(format), OPT_REQUIRED, 0, 0, NULL, NULL, "hf|gguf",
     "hf: a directory (config.json, safetensors shards of at most\n--max-shard-size bytes with model.safetensors.index.json\n"
     "when there are several, tokenizer.json); gguf: one GGUF file", NULL},
    {"dtype", OPT_STR, F(dtype), OPT_REQUIRED, 0, 0, NULL, NULL, "T",
     "the matrices' type: bf16, f16, f32, or for gguf one of ggml's\n"
     "q8_0, q4_0, q5_0 (blocks of 32 weights), q4_k, q5_k, q6_k (256):\n"
     "each block quantized round-to-nearest from its largest weight\n"
     "(no scale search); DIM and HIDDEN must be multiples of the block", NULL},
    {"out", OPT_STR, F(out), OPT_REQUIRED | OPT_PATH, 0, 0, NULL, NULL, "PATH",
     "must not exist; written under a temporary name, then renamed", NULL},
    {"o", OPT_STR, F(out), OPT_NOHELP | OPT_PATH, 0, 0, NULL, NULL, "PATH", "the same as --out", NULL},
    {"seed", OPT_U64, F(seed), 0, 0, 1e18, "1", NULL, "N", "the weights (default 1)", NULL},
    {"seq-len", OPT_INT, F(seq_len), 0, 1, 1 << 24, NULL, NULL, "N",
     "max_position_embeddings / context_length (default: the\npreset's, 2048 for a custom shape)", NULL},
    {"tokenizer", OPT_STR, F(tokenizer), OPT_PATH, 0, 0, NULL, NULL, "T",
     "a llama2.c tokenizer.bin or a tokenizer.model with exactly VOCAB\nentries (e.g. the Llama 2 one for 32000) instead of the synthetic\nvocabulary", NULL},
    {"max-shard-size", OPT_U64, F(max_shard), 0, 1, 1e18, NULL, NULL, "N", "bytes per hf shard at most (default 5000000000)", NULL},
    {"quiet", OPT_FLAG, F(quiet), 0, 0, 1, NULL, NULL, NULL, "no progress line", NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
#undef F

static void help(void)
{
    printf("Usage: onebit-tui synth --shape S --format hf|gguf --dtype T --out PATH\n"
           "                        [--seed N] [--seq-len N] [--tokenizer tokenizer.bin]\n"
           "                        [--max-shard-size N] [--quiet]\n"
           "\n"
           "Write a LLaMA teacher with random weights (normal-ish, std 0.02; norms 1)\n"
           "of a real shape (presets: tinyllama-1.1b, llama2-7b, llama3-8b), so a\n"
           "machine can be measured before a model is downloaded. The same seed gives\n"
           "byte-identical files; hf and gguf hold the same model. The free space is\n"
           "checked first; memory stays a few MB whatever the shape (one tensor at a\n"
           "time through a 4 MB buffer).\n"
           "\n");
    opt_help_width(stdout, synth_opts, 20);
}

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

typedef struct { double t0, last; } Prog;

static void progress(void *ctx, const char *file, uint64_t done, uint64_t total)
{
    Prog *p = ctx;
    double now = ob_now();
    if (now - p->last < 0.25 && done < total) return;
    p->last = now;
    double el = now - p->t0, rate = el > 0 ? done / el : 0;
    char eta[32] = "?";
    if (rate > 0) ob_fmt_duration(eta, sizeof eta, (double)(total - done) / rate);
    fprintf(stderr, "\r\033[Ksynth: %s %5.1f%% (%.2f/%.2f GB, %.0f MB/s, ETA %s)", file, total ? 100.0 * done / total : 100.0,
            done / 1e9, total / 1e9, rate / 1e6, eta);
    fflush(stderr);
}

static int synth_main(const SynthCli *c)
{
    SynthOpts o;
    memset(&o, 0, sizeof o);
    char err[OB_ERRLEN];
    if (synth_format_parse(c->format, &o.format)) return cli_usage_error("synth", "--format must be hf or gguf, not '%s'", c->format);
    if (synth_dtype_parse(c->dtype, &o.dtype))
        return cli_usage_error("synth", "--dtype must be bf16, f16, f32, q8_0, q4_0, q5_0, q4_k, q5_k or q6_k, not '%s'", c->dtype);
    if (synth_shape_parse(c->shape, &o.shape, err)) return cli_usage_error("synth", "%s", err);
    if (c->seq_len > 0) o.shape.seq_len = c->seq_len;
    if (synth_check(&o, err)) return cli_usage_error("synth", "%s", err);
    o.seed = c->seed;
    o.max_shard_bytes = c->max_shard;
    o.tokenizer_path = c->tokenizer;
    const char *out = c->out;
    Prog p = {ob_now(), 0};
    if (!c->quiet && isatty(STDERR_FILENO)) { o.progress = progress; o.progress_ctx = &p; }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    o.cancel = &interrupted;
    int rc = synth_write(&o, out, err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (o.progress) fprintf(stderr, "\r\033[K");
    if (rc) return cli_error("%s", err);
    double el = ob_now() - p.t0;
    uint64_t bytes = synth_data_bytes(&o);
    double np = (double)synth_param_count(&o.shape);
    printf("%s: %s %s, %.3g%s parameters, %.2f GB of %s weights, seed %llu (%.1fs)\n", out,
           o.format == SYNTH_HF ? "Hugging Face directory" : "GGUF", o.shape.name, np >= 1e9 ? np / 1e9 : np / 1e6,
           np >= 1e9 ? "B" : "M", bytes / 1e9, synth_dtype_name(o.dtype), (unsigned long long)o.seed, el);
    return EXIT_OK;
}

int cli_synth(int argc, char **argv)
{
    SynthCli c;
    opt_defaults(synth_opts, &c);
    char err[OB_ERRLEN];
    int rc = cli_parse_opts("synth", synth_opts, &c, argc, argv, help);
    if (rc < 0 && opt_check_required(synth_opts, &c, err)) rc = cli_usage_error("synth", "%s", err);
    if (rc < 0) rc = synth_main(&c);
    opt_free(synth_opts, &c);
    return rc;
}
