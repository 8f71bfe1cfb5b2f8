/* cli_bench.c -- `onebit-tui bench ...`: speed measurements (never tests).
 * Every figure is a median over repetitions. */
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common.h"
#include "qat.h"

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


/* ---- bench train: QAT step throughput vs this machine's sgemm peak ---- */

/* GFLOP/s of single n×n×n sgemms into g[0..reps-1] */
static void sgemm_rate(int n, int reps, double *g)
{
    float *a = ob_aligned_alloc(64, (size_t)n * n * 4), *b = ob_aligned_alloc(64, (size_t)n * n * 4),
          *c = ob_aligned_alloc(64, (size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)n * n; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.1f; }
    for (int r = 0; r < reps; r++) {
        double t0 = ob_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        g[r] = 2.0 * n * n * (double)n / (ob_now() - t0) * 1e-9;
    }
    free(a); free(b); free(c);
}

/* a LLaMA-shaped model with random weights: dim,hidden,layers,heads,kv_heads,vocab */
static int random_model(Model *m, const char *spec, int seq_len, char *err)
{
    int v[6];
    char tail;
    if (sscanf(spec, "%d,%d,%d,%d,%d,%d%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6) {
        ob_seterr(err, "--random-model needs dim,hidden,layers,heads,kv_heads,vocab");
        return -1;
    }
    if (v[3] <= 0 || v[0] % v[3]) { ob_seterr(err, "--random-model: dim must be a multiple of heads"); return -1; }
    ModelConfig c = {v[0], v[1], v[2], v[3], v[4], v[0] / v[3], v[5], seq_len, 10000.0f, 1e-5f, 1};
    if (model_alloc(m, &c, 1, err)) return -1;
    uint64_t s = 7;
    float scale = 1.0f / sqrtf((float)v[0]);
    for (size_t i = 0; i < m->arena_floats; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        m->arena[i] = ((float)(s >> 40) / 16777216.0f * 2.0f - 1.0f) * scale;
    }
    for (size_t i = 0; i < (size_t)c.n_layers * c.dim; i++) { m->rms_att[i] = 1.0f; m->rms_ffn[i] = 1.0f; }
    for (int i = 0; i < c.dim; i++) m->rms_final[i] = 1.0f;
    return 0;
}

static int bench_train(int argc, char **argv)
{
    static const struct option opts[] = {
        {"teacher", required_argument, 0, 'm'}, {"batch", required_argument, 0, 'b'},
        {"seq-len", required_argument, 0, 't'}, {"steps", required_argument, 0, 's'},
        {"random-model", required_argument, 0, 'r'}, {"peak-size", required_argument, 0, 'p'},
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *teacher = NULL, *spec = NULL;
    long B = 4, T = 256, steps = 10, psize = 1024;
    int json = 0, ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': teacher = optarg; break;
        case 'r': spec = optarg; break;
        case 'b': if (ob_parse_int(optarg, 1, 4096, &B)) return cli_usage_error("bench train", "--batch needs a positive integer"); break;
        case 't': if (ob_parse_int(optarg, 1, 1 << 16, &T)) return cli_usage_error("bench train", "--seq-len needs a positive integer"); break;
        case 's': if (ob_parse_int(optarg, 1, 1000000, &steps)) return cli_usage_error("bench train", "--steps needs a positive integer"); break;
        case 'p': if (ob_parse_int(optarg, 16, 8192, &psize)) return cli_usage_error("bench train", "--peak-size needs an integer in 16..8192"); break;
        case 'j': json = 1; break;
        case 'h':
            printf("Usage: onebit-tui bench train [--teacher M | --random-model D,F,L,H,KV,V] [--batch B]\n"
                   "                              [--seq-len T] [--steps N] [--peak-size P] [--json]\n"
                   "\nQAT training steps (teacher forward, student forward + backward, clip,\n"
                   "AdamW) on B random sequences of T tokens: median tokens/s and GFLOP/s of\n"
                   "the matmuls, as a fraction of this machine's sgemm rate on P×P×P (default\n"
                   "1024) measured in the same process between the steps (medians).\n");
            return EXIT_OK;
        case ':': return cli_usage_error("bench train", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("bench train", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("bench train", "unexpected argument '%s'", argv[optind]);
    if (teacher && spec) return cli_usage_error("bench train", "--teacher and --random-model exclude each other");
    char err[OB_ERRLEN];
    Model m;
    if (spec) {
        if (random_model(&m, spec, (int)T, err)) return cli_usage_error("bench train", "%s", err);
    } else {
        char *tp = cli_resolve_teacher(teacher, err);
        if (!tp) return cli_error("%s", err);
        if (model_load(&m, tp, err)) { free(tp); return cli_error("%s", err); }
        free(tp);
    }
    const ModelConfig *c = &m.cfg;
    if (T > c->seq_len) T = c->seq_len;
    QatModel *q = qat_new(&m, QAT_INIT_NMF, (int)B, (int)T, err);
    if (!q) { model_free(&m); return cli_error("%s", err); }
    size_t np = qat_num_params(q);
    int *tok = ob_malloc((size_t)B * T * sizeof(int));
    uint64_t rng = 42;
    for (long i = 0; i < B * T; i++)
        tok[i] = (int)(((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 33) % c->vocab_size);
    float *mm = ob_aligned_alloc(64, np * 4), *vv = ob_aligned_alloc(64, np * 4);
    double *dt = ob_malloc(steps * sizeof(double));
    QatLossCfg lc = {1.0f, 0.01f};
    AdamWCfg ac = {1e-4f, 0.9f, 0.98f, 1e-8f, 0.01f};
    QatLoss L;
    /* training steps interleaved with sgemm peak samples, so that both see
     * the same machine load; medians of each */
    double *pk = ob_malloc((size_t)(steps + 1) * 4 * sizeof(double));
    sgemm_rate((int)psize, 2, pk); /* warm up */
    for (long s = 0; s <= steps; s++) { /* step 0 warms up */
        sgemm_rate((int)psize, 4, pk + s * 4);
        double t0 = ob_now();
        qat_zero_grads(q);
        qat_forward_backward(q, tok, (int)B, (int)T, &lc, 1.0f, &L);
        qat_clip_grads(q, 1.0f);
        qat_adamw_step(q, mm, vv, s + 1, &ac);
        if (s) dt[s - 1] = ob_now() - t0;
    }
    double peak = median(pk + 4, (int)steps * 4);
    free(pk);
    double ph[QAT_NTIMERS];
    qat_times(q, ph);
    double phs = 0;
    for (int i = 0; i < QAT_NTIMERS; i++) phs += ph[i];
    double step = median(dt, (int)steps), flops = qat_flops(q, (int)B, (int)T);
    double tps = B * T / step, gf = flops / step * 1e-9;
    if (json)
        printf("{\"dim\":%d,\"hidden\":%d,\"layers\":%d,\"heads\":%d,\"kv_heads\":%d,\"vocab\":%d,"
               "\"batch\":%ld,\"seq_len\":%ld,\"steps\":%ld,\"threads\":%d,\"step_s\":%.6f,\"tok_s\":%.1f,"
               "\"gflop_per_step\":%.4f,\"gflop_s\":%.2f,\"peak_gflop_s\":%.2f,\"fraction\":%.4f,\"loss\":%.6f}\n",
               c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, B, T, steps,
               openblas_get_num_threads(), step, tps, flops * 1e-9, gf, peak, gf / peak, L.loss);
    else
        printf("model dim %d hidden %d layers %d heads %d/%d vocab %d, batch %ld x %ld tokens, %d threads\n"
               "train %.1f tok/s  step %.4f s  %.2f GFLOP/s (%.3f GFLOP/step)  sgemm %.2f GFLOP/s (%ld^3)  fraction %.1f%%\n",
               c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, B, T,
               openblas_get_num_threads(), tps, step, gf, flops * 1e-9, peak, psize, 100 * gf / peak);
    if (!json)
        printf("time split: teacher %.0f%%  student forward %.0f%%  loss %.0f%%  backward %.0f%%  optimizer %.0f%%\n",
               100 * ph[QAT_T_TEACHER] / phs, 100 * ph[QAT_T_FORWARD] / phs, 100 * ph[QAT_T_LOSS] / phs,
               100 * ph[QAT_T_BACKWARD] / phs, 100 * ph[QAT_T_OPTIM] / phs);
    free(dt); free(mm); free(vv); free(tok);
    qat_free(q);
    model_free(&m);
    return EXIT_OK;
}

static const struct { const char *name; int (*run)(int, char **); const char *summary; } benches[] = {
    {"forward", bench_forward, "prefill and decode tokens/s of a teacher or student"},
    {"train", bench_train, "QAT training tokens/s and fraction of the sgemm peak"},
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
