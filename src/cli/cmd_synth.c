/* src/cli/cmd_synth.c -- `onebit-tui synth`: write a random-weight LLaMA
 * teacher of a real shape (Hugging Face directory or GGUF file), to measure
 * a machine before downloading a model and to give tests real shapes. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "base/common.h"
#include "format/synth.h"

static void help(void)
{
    printf("Usage: onebit-tui synth --shape SHAPE --format hf|gguf --dtype bf16|f16|f32 --out PATH\n"
           "                        [--seed N] [--seq-len N] [--tokenizer tokenizer.bin]\n"
           "                        [--max-shard-size BYTES] [--quiet]\n"
           "\n"
           "Write a LLaMA teacher with random weights (normal-ish, std 0.02; norms 1)\n"
           "of a real shape, so a machine can be measured before a model is downloaded.\n"
           "The same seed gives byte-identical files; hf and gguf hold the same model.\n"
           "\n"
           "  --shape S     tinyllama-1.1b, llama2-7b, llama3-8b, or\n"
           "                DIM,HIDDEN,LAYERS,HEADS,KV,VOCAB (e.g. 64,172,2,4,2,512)\n"
           "  --format F    hf: a directory (config.json, safetensors shards of at most\n"
           "                --max-shard-size bytes, default 5 GB, with\n"
           "                model.safetensors.index.json when there are several,\n"
           "                tokenizer.json); gguf: one GGUF file with the tokenizer\n"
           "  --dtype D     the matrices' type (bf16, f16 or f32)\n"
           "  --seed N      weights (default 1)\n"
           "  --seq-len N   max_position_embeddings / context_length (default: the\n"
           "                preset's, 2048 for a custom shape)\n"
           "  --tokenizer T a llama2.c tokenizer.bin with exactly VOCAB entries (e.g. the\n"
           "                Llama 2 tokenizer.bin for 32000) instead of the synthetic one\n"
           "  --out PATH    must not exist; written under a temporary name, then renamed\n"
           "  --quiet       no progress line\n"
           "\n"
           "The free space is checked first. Peak memory stays a few MB whatever the\n"
           "shape: one tensor at a time through a 4 MB buffer.\n");
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

int cli_synth(int argc, char **argv)
{
    static const struct option opts[] = {
        {"shape", required_argument, 0, 's'},   {"format", required_argument, 0, 'f'},
        {"dtype", required_argument, 0, 'd'},   {"seed", required_argument, 0, 'S'},
        {"seq-len", required_argument, 0, 'L'}, {"tokenizer", required_argument, 0, 'z'},
        {"out", required_argument, 0, 'o'},     {"max-shard-size", required_argument, 0, 'M'},
        {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    SynthOpts o;
    memset(&o, 0, sizeof o);
    o.seed = 1;
    o.format = -1;
    o.dtype = -1;
    const char *shape = NULL, *out = NULL;
    long seq = 0, lv;
    int quiet = 0, ch;
    char err[OB_ERRLEN];
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 's': shape = optarg; break;
        case 'f':
            if (synth_format_parse(optarg, &o.format)) return cli_usage_error("synth", "--format must be hf or gguf, not '%s'", optarg);
            break;
        case 'd':
            if (synth_dtype_parse(optarg, &o.dtype)) return cli_usage_error("synth", "--dtype must be bf16, f16 or f32, not '%s'", optarg);
            break;
        case 'S':
            if (ob_parse_int(optarg, 0, __LONG_MAX__, &lv)) return cli_usage_error("synth", "--seed needs a nonnegative integer, not '%s'", optarg);
            o.seed = (uint64_t)lv;
            break;
        case 'L':
            if (ob_parse_int(optarg, 1, 1 << 24, &seq)) return cli_usage_error("synth", "--seq-len needs an integer in [1, 16777216], not '%s'", optarg);
            break;
        case 'M':
            if (ob_parse_int(optarg, 1, __LONG_MAX__, &lv)) return cli_usage_error("synth", "--max-shard-size needs a positive number of bytes, not '%s'", optarg);
            o.max_shard_bytes = (uint64_t)lv;
            break;
        case 'z': o.tokenizer_path = optarg; break;
        case 'o': out = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': help(); return EXIT_OK;
        case ':': return cli_usage_error("synth", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("synth", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("synth", "unexpected argument '%s'", argv[optind]);
    if (!shape) return cli_usage_error("synth", "--shape is required (tinyllama-1.1b, llama2-7b, llama3-8b or DIM,HIDDEN,LAYERS,HEADS,KV,VOCAB)");
    if (o.format < 0) return cli_usage_error("synth", "--format hf|gguf is required");
    if (o.dtype < 0) return cli_usage_error("synth", "--dtype bf16|f16|f32 is required");
    if (!out) return cli_usage_error("synth", "--out PATH is required");
    if (synth_shape_parse(shape, &o.shape, err)) return cli_usage_error("synth", "%s", err);
    if (seq) o.shape.seq_len = (int)seq;
    Prog p = {ob_now(), 0};
    if (!quiet && isatty(STDERR_FILENO)) { o.progress = progress; o.progress_ctx = &p; }
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
           o.format == SYNTH_HF ? "Hugging Face directory" : "GGUF", o.shape.name, np >= 1e9 ? np / 1e9 : np / 1e6, np >= 1e9 ? "B" : "M",
           bytes / 1e9, synth_dtype_name(o.dtype), (unsigned long long)o.seed, el);
    return EXIT_OK;
}
