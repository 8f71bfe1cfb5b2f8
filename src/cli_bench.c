/* cli_bench.c -- `onebit-tui bench ...`: speed measurements (never tests).
 * Every figure is a median over repetitions. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int bench_forward(int argc, char **argv)
{
    static const struct option opts[] = {
        {"teacher", required_argument, 0, 'm'}, {"tokenizer", required_argument, 0, 'z'},
        {"tokens", required_argument, 0, 't'},  {"reps", required_argument, 0, 'r'},
        {"json", no_argument, 0, 'j'},          {"help", no_argument, 0, 'h'},
        {"student", required_argument, 0, 'S'}, {0, 0, 0, 0}};
    const char *teacher = NULL, *tokenizer = NULL, *student = NULL;
    long T = 0, reps = 20;
    int json = 0, ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': teacher = optarg; break;
        case 'S': student = optarg; break;
        case 'z': tokenizer = optarg; break;
        case 't': if (ob_parse_int(optarg, 1, 1 << 20, &T)) return cli_usage_error("bench forward", "--tokens needs a positive integer"); break;
        case 'r': if (ob_parse_int(optarg, 1, 1000000, &reps)) return cli_usage_error("bench forward", "--reps needs a positive integer"); break;
        case 'j': json = 1; break;
        case 'h':
            printf("Usage: onebit-tui bench forward [--teacher M | --student S] [--tokenizer T] [--tokens N] [--reps R] [--json]\n"
                   "\nPrefill (batched forward over N tokens) and decode (incremental, KV cache)\n"
                   "tokens/s, medians over R repetitions. N defaults to the model's context.\n");
            return EXIT_OK;
        case ':': return cli_usage_error("bench forward", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("bench forward", "unknown option '%s'", argv[optind - 1]);
        }
    }
    Model m;
    Tokenizer t;
    if (teacher && student) return cli_usage_error("bench forward", "--teacher and --student exclude each other");
    if (cli_load_model(teacher, student, tokenizer, &m, &t)) return EXIT_RUNTIME;
    const ModelConfig *c = &m.cfg;
    if (T == 0 || T > c->seq_len) T = c->seq_len;
    int *tok = ob_malloc(T * sizeof(int));
    uint64_t rng = 42;
    for (int i = 0; i < T; i++) tok[i] = (int)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 33) % c->vocab_size;
    ModelActs a;
    model_acts_init(&a, c, (int)T);
    float *logits = ob_aligned_alloc(64, (size_t)T * c->vocab_size * 4);
    double *pre = ob_malloc(reps * sizeof(double)), *dec = ob_malloc(reps * sizeof(double));
    ModelState s;
    model_state_init(&s, c);
    model_forward(&m, &a, tok, (int)T, logits, NULL); /* warm up */
    for (int r = 0; r < reps; r++) {
        double t0 = ob_now();
        model_forward(&m, &a, tok, (int)T, logits, NULL);
        pre[r] = T / (ob_now() - t0);
        t0 = ob_now();
        for (int p = 0; p < T; p++) model_step(&m, &s, tok[p], p);
        dec[r] = T / (ob_now() - t0);
    }
    double mp = median(pre, (int)reps), md = median(dec, (int)reps);
    if (json) printf("{\"tokens\":%ld,\"reps\":%ld,\"prefill_tok_s\":%.1f,\"decode_tok_s\":%.1f}\n", T, reps, mp, md);
    else printf("prefill %.1f tok/s  decode %.1f tok/s  (%ld tokens, median of %ld)\n", mp, md, T, reps);
    free(pre); free(dec); free(tok); free(logits);
    model_acts_free(&a);
    model_state_free(&s);
    tok_free(&t);
    model_free(&m);
    return EXIT_OK;
}

static const struct { const char *name; int (*run)(int, char **); const char *summary; } benches[] = {
    {"forward", bench_forward, "prefill and decode tokens/s of a teacher or student"},
};

int cli_bench(int argc, char **argv)
{
    size_t nb = sizeof benches / sizeof benches[0];
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "Usage: onebit-tui bench WHAT [OPTIONS]\n\n");
        for (size_t i = 0; i < nb; i++) fprintf(f, "  %-10s %s\n", benches[i].name, benches[i].summary);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    for (size_t i = 0; i < nb; i++)
        if (!strcmp(argv[1], benches[i].name)) return benches[i].run(argc - 1, argv + 1);
    return cli_usage_error("bench", "unknown benchmark '%s'", argv[1]);
}
