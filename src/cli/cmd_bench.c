/* src/cli/cmd_bench.c -- `onebit-tui bench ...`: speed measurements (never
 * tests). Every figure is a median over repetitions. Runs on the program's
 * main thread, which sets the thread counts (the 1-bit defaults, OpenBLAS's)
 * before it makes layers or starts threads. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "base/blas.h"
#include "base/common.h"
#include "base/opt.h"
#include "train/qat.h"
#include "train/dist.h"
#include "train/trainer.h"
#include "onebit/student.h"
#include "onebit/svid.h"
#include "base/pool.h"
#include "kernels/kernels.h"
#include "format/llama.h"
#include "onebit/bitlinear.h"

/* pause before each round of 1-bit calls (see bench gemv) */
#define BENCH_BLAS_QUIET_S 0.3
/* untimed 1-bit work after the pause, for at least this long: the pool's
 * workers have fallen asleep and the cores idled, which a decode loop (one
 * layer right after another) never sees. After an idle 0.3 s, 2 threads take
 * 10-30 ms of work to come back to speed: 11008x4096 int8 cold, rounds of 30
 * calls (/tmp harness), with 2 ms of warm-up calls 0-9 of a round took a
 * median 0.29 ms, 10-19 0.20 and 20-29 0.15, against a flat 0.126-0.175
 * without pauses; with 30 ms and more the positions were flat (1 thread: flat
 * either way) */
#define BENCH_WARM_S 50e-3

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

static int random_model(Model *m, const char *spec, int seq_len, char *err);

/* T token ids in [0, vocab), the same every run */
static int *random_tokens(long T, int vocab)
{
    int *tok = ob_malloc(T * sizeof(int));
    uint64_t rng = 42;
    for (long i = 0; i < T; i++) tok[i] = (int)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 33) % vocab;
    return tok;
}

/* the process's peak resident set so far, in MB (getrusage) */
static double max_rss_mb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) ? 0.0 : ru.ru_maxrss / 1024.0;
}

/* the bytes a decoded token of m reads (model_step_bytes), on average over
 * the positions pos0 .. pos0 + T - 1 (linear in the position) */
static double step_bytes_mean(const Model *m, const ModelState *s, long pos0, long T)
{
    return (model_step_bytes(m, s, (int)pos0) + model_step_bytes(m, s, (int)(pos0 + T - 1))) / 2;
}

/* one repetition of m over the T tokens tok: prefill (the batched forward,
 * logits of every token) and decode tokens/s, decoded at positions pos0 ..
 * pos0 + T - 1 (the cache before pos0 filled); with ps, also the prompt as
 * generate and chat feed it (model_forward_kv into the cache ps, logits of
 * the last token only, as llama.cpp's llama-bench times its prompts): *ttft
 * is that time to the first token in seconds */
static void time_model(const Model *m, ModelActs *a, ModelState *s, ModelState *ps, const int *tok, int T, int pos0, float *logits,
                       double *pre, double *dec, double *ttft)
{
    double t0 = ob_now();
    model_forward(m, a, tok, T, logits, NULL);
    *pre = T / (ob_now() - t0);
    if (ps) {
        t0 = ob_now();
        model_forward_kv(m, a, ps, tok, T, 0, logits, 1);
        *ttft = ob_now() - t0;
    }
    t0 = ob_now();
    for (int p = 0; p < T; p++) model_step(m, s, tok[p], pos0 + p);
    *dec = T / (ob_now() - t0);
}

/* --random-model: a random LLaMA-shaped teacher and its 1-bit student (XNOR
 * init, LayerNorm on, written to a temporary .onebit and loaded from it as
 * any student is), timed in alternating repetitions in one process */
static int bench_forward_random(const char *spec, long T, long reps, int head, int json)
{
    char err[OB_ERRLEN];
    Model tm, sm;
    if (random_model(&tm, spec, (int)T, err)) return cli_usage_error("bench forward", "%s", err);
    const ModelConfig *c = &tm.cfg;
    int nlin = c->n_layers * 7, rc = EXIT_OK;
    StudentLinearSrc *lin = ob_calloc((size_t)nlin, sizeof *lin);
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/onebit-bench-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) rc = cli_error("%s: %s", path, strerror(errno));
    else close(fd);
    if (rc == EXIT_OK && student_quantize(&tm, SVID_XNOR, 1, lin, err)) rc = cli_error("%s", err);
    if (rc == EXIT_OK && student_write_ex(path, &tm, NULL, lin, NULL, head, err)) rc = cli_error("%s", err);
    if (rc == EXIT_OK && student_load(&sm, NULL, path, err)) rc = cli_error("%s", err);
    if (fd >= 0) unlink(path); /* the student stays mapped */
    student_src_free(lin, nlin);
    free(lin);
    if (rc != EXIT_OK) { model_free(&tm); return rc; }
    int *tok = random_tokens(T, c->vocab_size);
    ModelActs a;
    ModelState st, ss, pst, pss;
    model_acts_init(&a, c, (int)T);
    model_state_init(&st, c);
    model_state_init(&ss, &sm.cfg);
    model_state_init(&pst, c);
    model_state_init(&pss, &sm.cfg);
    float *logits = ob_aligned_alloc(64, (size_t)T * c->vocab_size * 4);
    double *v = ob_malloc(6 * reps * sizeof(double)), *tp = v, *td = v + reps, *sp = v + 2 * reps, *sd = v + 3 * reps;
    double *tf = v + 4 * reps, *sf = v + 5 * reps;
    time_model(&tm, &a, &st, &pst, tok, (int)T, 0, logits, tp, td, tf); /* warm up */
    time_model(&sm, &a, &ss, &pss, tok, (int)T, 0, logits, sp, sd, sf);
    for (long r = 0; r < reps; r++) {
        time_model(&tm, &a, &st, &pst, tok, (int)T, 0, logits, tp + r, td + r, tf + r);
        /* OpenBLAS's threads busy-wait after the teacher's sgemv/sgemm (see
         * bench gemv); the student's own head sgemv is part of its time */
        if (bitlinear_threads() > 1) {
            ob_sleep(BENCH_BLAS_QUIET_S);
            /* untimed decode steps wake the pool and the cores (BENCH_WARM_S);
             * time_model starts again at position 0 */
            double w0 = ob_now();
            for (long k = 0; ob_now() - w0 < BENCH_WARM_S; k++) model_step(&sm, &ss, tok[k % T], (int)(k % T));
        }
        time_model(&sm, &a, &ss, &pss, tok, (int)T, 0, logits, sp + r, sd + r, sf + r);
    }
    double mtp = median(tp, (int)reps), mtd = median(td, (int)reps), msp = median(sp, (int)reps), msd = median(sd, (int)reps);
    double mtf = median(tf, (int)reps), msf = median(sf, (int)reps);
    double rb = step_bytes_mean(&sm, &ss, 0, T); /* a student's token */
    if (json)
        printf("{\"model\":\"%s\",\"tokens\":%ld,\"reps\":%ld,\"act\":\"%s\",\"head\":\"%s\",\"teacher_prefill_tok_s\":%.2f,\"teacher_decode_tok_s\":%.2f,"
               "\"student_prefill_tok_s\":%.2f,\"student_decode_tok_s\":%.2f,\"decode_ratio\":%.2f,\"prefill_ratio\":%.2f,"
               "\"teacher_prompt_tok_s\":%.2f,\"student_prompt_tok_s\":%.2f,\"student_ttft_ms\":%.1f,\"student_read_mb_per_token\":%.1f,"
               "\"student_decode_gb_s\":%.2f,\"student_kv_mb\":%.1f,\"max_rss_mb\":%.0f}\n",
               spec, T, reps, bitlinear_act_name(bitlinear_default_act()), student_head_name(head), mtp, mtd, msp, msd, msd / mtd, msp / mtp,
               T / mtf, T / msf, msf * 1e3, rb / 1e6, rb * msd / 1e9, model_state_kv_bytes(&ss) / 1048576.0, max_rss_mb());
    else
        printf("random model %s (%ld tokens, median of %ld)\n"
               "teacher FP32:  prefill %.1f tok/s  decode %.2f tok/s\n"
               "student 1-bit (%s activations, %s embedding and head): prefill %.1f tok/s  decode %.2f tok/s  (%.2fx / %.2fx the teacher)\n"
               "prompt (KV cache, last token's logits): teacher %.1f tok/s, student %.1f tok/s (first token after %.1f ms)\n"
               "student decode: %.1f MB read a token = %.2f GB/s\n",
               spec, T, reps, mtp, mtd, bitlinear_act_name(bitlinear_default_act()), student_head_name(head), msp, msd, msp / mtp, msd / mtd,
               T / mtf, T / msf, msf * 1e3, rb / 1e6, rb * msd / 1e9);
    free(v); free(tok); free(logits);
    model_acts_free(&a);
    model_state_free(&st);
    model_state_free(&ss);
    model_state_free(&pst);
    model_state_free(&pss);
    model_free(&sm);
    model_free(&tm);
    return EXIT_OK;
}

/* ---- the options of every bench: one struct, one row table per bench ---- */

typedef struct {
    char *teacher, *tokenizer, *student, *spec, *kernel, *act;
    int tokens, reps, batch, seq_len, steps, peak, rows, cols, threads, mib, chunk, optim, recompute, context, mos;
    int cold, json;
    int head;  /* STUDENT_HEAD_*: the order of "f32|f16|q8_0" */
    int dtype; /* LLAMA_*: the order of dequant's --dtype choices */
} BenchOpts;

#define F(field) offsetof(BenchOpts, field)
#define ROW_JSON {"json", OPT_FLAG, F(json), 0, 0, 1, NULL, NULL, NULL, "one JSON object instead of text", NULL}
#define ROW_ACT {"act", OPT_STR, F(act), 0, 0, 0, NULL, NULL, "fp32|int8", "the 1-bit layers' activations (default fp32)", NULL}
#define ROW_END {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL}
static const OptSpec forward_opts[] = {
    {"teacher", OPT_STR, F(teacher), 0, 0, 0, NULL, NULL, "M", "a teacher (default: the default teacher)", NULL},
    {"student", OPT_STR, F(student), 0, 0, 0, NULL, NULL, "S", "a 1-bit student (.onebit) instead", NULL},
    {"random-model", OPT_STR, F(spec), 0, 0, 0, NULL, NULL, "D,F,L,H,KV,V",
     "a random teacher of this shape and its 1-bit student", NULL},
    {"head", OPT_CHOICE, F(head), 0, 0, 0, "f16", "f32|f16|q8_0", "f16|q8_0|f32",
     "--random-model: the student's embedding and head (f16)", NULL},
    {"tokenizer", OPT_STR, F(tokenizer), 0, 0, 0, NULL, NULL, "T", "the tokenizer", NULL},
    {"tokens", OPT_INT, F(tokens), 0, 1, 1 << 20, NULL, NULL, "N", "tokens per repetition", NULL},
    {"reps", OPT_INT, F(reps), 0, 1, 1000000, NULL, NULL, "R", "repetitions", NULL},
    {"context", OPT_INT, F(context), 0, 0, 1 << 20, "0", NULL, "C",
     "decode after C tokens in the cache (filled untimed once), at positions C .. C+N-1 (0)", NULL},
    ROW_ACT, ROW_JSON, ROW_END};
static const OptSpec train_opts[] = {
    {"teacher", OPT_STR, F(teacher), 0, 0, 0, NULL, NULL, "M", "a teacher (default: the default teacher)", NULL},
    {"random-model", OPT_STR, F(spec), 0, 0, 0, NULL, NULL, "D,F,L,H,KV,V", "a random teacher of this shape instead", NULL},
    {"batch", OPT_INT, F(batch), 0, 1, 4096, "4", NULL, "B", "sequences per step (4)", NULL},
    {"seq-len", OPT_INT, F(seq_len), 0, 1, 1 << 16, "256", NULL, "T", "tokens per sequence (256, at most the context)", NULL},
    {"steps", OPT_INT, F(steps), 0, 1, 1000000, "10", NULL, "N", "timed steps (10)", NULL},
    {"threads", OPT_INT, F(threads), 0, 1, 1024, NULL, NULL, "K", "training threads (default: online CPUs)", NULL},
    {"peak-size", OPT_INT, F(peak), 0, 16, 8192, "1024", NULL, "P", "the sgemm peak's P x P x P (1024)", NULL},
    {"optim-state", OPT_CHOICE, F(optim), 0, 0, 0, "fp32", "fp32|bf16", "fp32|bf16", "AdamW moments' storage, as train's (fp32)", NULL},
    {"recompute", OPT_FLAG, F(recompute), 0, 0, 1, NULL, NULL, NULL, "recompute block activations in the backward, as train's", NULL},
    {"mos", OPT_INT, F(mos), 0, 0, QAT_MOS_MAX, "0", NULL, "E", "a mixture of E scale experts per linear, as train's (0: off)", NULL},
    ROW_JSON, ROW_END};
static const OptSpec gemv_opts[] = {
    {"rows", OPT_INT, F(rows), 0, 1, 1 << 20, "4096", NULL, "R", "weight rows (4096)", NULL},
    {"cols", OPT_INT, F(cols), 0, 1, 1 << 20, "4096", NULL, "C", "weight columns (4096)", NULL},
    {"batch", OPT_INT, F(batch), 0, 1, 4096, "1", NULL, "N", "input vectors (1)", NULL},
    {"threads", OPT_INT, F(threads), 0, 1, 1024, NULL, NULL, "T", "threads (default: $ONEBIT_THREADS or online CPUs)", NULL},
    {"cold", OPT_FLAG, F(cold), 0, 0, 1, NULL, NULL, NULL, "read the weights from DRAM every call", NULL},
    {"reps", OPT_INT, F(reps), 0, 1, 1000000, "100", NULL, "K", "repetitions (100)", NULL},
    {"kernel", OPT_STR, F(kernel), 0, 0, 0, NULL, NULL, "NAME", "ref, avx2, avx2flip, avx512, avx512mask, avx512vnni, avx512amx (default: fastest)", NULL},
    ROW_ACT, ROW_JSON, ROW_END};
static const OptSpec membw_opts[] = {
    {"threads", OPT_INT, F(threads), 0, 1, 1024, NULL, NULL, "T", "threads (default: online CPUs)", NULL},
    {"mib", OPT_INT, F(mib), 0, 1, 1 << 20, "1024", NULL, "M", "buffer size in MiB (1024)", NULL},
    {"chunk", OPT_INT, F(chunk), 0, 1, 1 << 20, "8", NULL, "C", "chunk size in MiB (8)", NULL},
    {"reps", OPT_INT, F(reps), 0, 1, 10000000, "500", NULL, "K", "chunks timed (500)", NULL},
    ROW_JSON, ROW_END};
static const OptSpec ops_opts[] = {
    {"reps", OPT_INT, F(reps), 0, 1, 1000000, "3", NULL, "K", "repetitions, the median printed (3)", NULL},
    ROW_JSON, ROW_END};
static const OptSpec dequant_opts[] = {
    {"dtype", OPT_CHOICE, F(dtype), 0, 0, 0, "q4_k", "f32|f16|bf16|q8_0|q4_0|q5_0|q4_k|q5_k|q6_k", "T",
     "the element type (q4_k)", NULL},
    {"mib", OPT_INT, F(mib), 0, 1, 1 << 16, "64", NULL, "M", "FP32 output per repetition, in MiB (64)", NULL},
    {"reps", OPT_INT, F(reps), 0, 1, 100000, "10", NULL, "K", "timed repetitions (10)", NULL},
    ROW_JSON, ROW_END};
static const OptSpec allreduce_opts[] = {
    {"mib", OPT_INT, F(mib), 0, 1, 1 << 20, "64", NULL, "M", "floats to sum, in MiB (64)", NULL},
    {"reps", OPT_INT, F(reps), 0, 1, 100000, "10", NULL, "K", "timed repetitions (10)", NULL},
    ROW_JSON, ROW_END};
#undef ROW_JSON
#undef ROW_ACT
#undef ROW_END
#undef F

/* parse a bench's options: -1 go on, else the exit code (after --help:
 * the description, then the option list from the rows) */
static int bench_opts(const char *cmd, const OptSpec *rows, BenchOpts *o, int argc, char **argv, const char *usage)
{
    char err[OB_ERRLEN];
    opt_defaults(rows, o);
    int k = opt_parse_argv(rows, o, argc, argv, err);
    if (k == 1) {
        fputs(usage, stdout);
        opt_help(stdout, rows);
        return EXIT_OK;
    }
    if (k < 0) return cli_usage_error(cmd, "%s", err);
    if (o->act && cli_set_act(cmd, o->act)) return EXIT_USAGE; /* it printed why */
    return -1;
}

static const char forward_usage[] =
    "Usage: onebit-tui bench forward [--teacher M | --student S | --random-model D,F,L,H,KV,V]\n"
    "                             [--head f16|q8_0|f32] [--tokenizer T] [--tokens N] [--reps R]\n"
    "                             [--context C] [--act fp32|int8]\n"
    "                             [--json]\n"
    "\nPrefill (batched forward over N tokens, logits of each), prompt (N tokens\n"
    "into the KV cache, logits of the last only: what generate and chat do before\n"
    "their first token, and what llama.cpp's llama-bench times as pp; the time to\n"
    "the first token is printed with it) and decode (incremental, KV cache)\n"
    "tokens/s, medians over R repetitions (default 20). N defaults to the model's\n"
    "context (less C). --context C decodes at positions C .. C+N-1, after C tokens\n"
    "filled the KV cache once (untimed): the speed at that context.\n"
    "--random-model times a LLaMA-shaped teacher with random weights (dim,\n"
    "hidden, layers, heads, kv heads, vocab) and its 1-bit student (XNOR init,\n"
    "LayerNorm on) in alternating repetitions of one process (N default 16,\n"
    "R default 5); 4096,11008,2,32,32,32000 is two LLaMA-7B layers (about 3.3 GB).\n"
    "--head stores its embedding and head as FP16 (the default), Q8_0 or FP32.\n"
    "--act sets the student's activation precision (default fp32).\n\n";

static int forward_run(const BenchOpts *o)
{
    const char *teacher = o->teacher, *tokenizer = o->tokenizer, *student = o->student, *spec = o->spec;
    long T = o->tokens, reps = o->reps;
    int json = o->json;
    if (spec) {
        if (teacher || student || tokenizer || o->context)
            return cli_usage_error("bench forward", "--random-model excludes --teacher, --student, --tokenizer and --context");
        return bench_forward_random(spec, T ? T : 16, reps ? reps : 5, o->head, json);
    }
    if (reps == 0) reps = 20;
    Model m;
    Tokenizer t;
    if (teacher && student) return cli_usage_error("bench forward", "--teacher and --student exclude each other");
    char err[OB_ERRLEN];
    if (open_model(teacher, student, tokenizer, &m, &t, err)) return cli_error("%s", err);
    const ModelConfig *c = &m.cfg;
    const long C = o->context;
    if (C >= c->seq_len) {
        int n = c->seq_len;
        tok_free(&t);
        model_free(&m);
        return cli_usage_error("bench forward", "--context %ld: the model's context is %d tokens", C, n);
    }
    if (T == 0 || T > c->seq_len - C) T = c->seq_len - C;
    int *tok = random_tokens(C + T, c->vocab_size), *dtok = tok + C;
    ModelActs a;
    model_acts_init(&a, c, (int)T);
    float *logits = ob_aligned_alloc(64, (size_t)T * c->vocab_size * 4);
    double *pre = ob_malloc(reps * sizeof(double)), *dec = ob_malloc(reps * sizeof(double)), *ft = ob_malloc(reps * sizeof(double));
    ModelState s, ps;
    model_state_init(&s, c);
    model_state_init(&ps, c);
    model_forward(&m, &a, dtok, (int)T, logits, NULL); /* warm up */
    for (long p = 0; p < C; p++) model_step(&m, &s, tok[p], (int)p); /* the cache before the timed positions */
    for (int r = 0; r < reps; r++) time_model(&m, &a, &s, &ps, dtok, (int)T, (int)C, logits, pre + r, dec + r, ft + r);
    double mp = median(pre, (int)reps), md = median(dec, (int)reps), mf = median(ft, (int)reps);
    /* what a decoded token reads, and the bandwidth that makes at the
     * decode's speed */
    double rb = step_bytes_mean(&m, &s, C, T);
    const char *an = student ? bitlinear_act_name(bitlinear_default_act()) : "fp32";
    if (json)
        printf("{\"tokens\":%ld,\"context\":%ld,\"reps\":%ld,\"act\":\"%s\",\"prefill_tok_s\":%.1f,\"prompt_tok_s\":%.1f,\"ttft_ms\":%.1f,"
               "\"decode_tok_s\":%.2f,\"read_mb_per_token\":%.1f,\"decode_gb_s\":%.2f,\"kv_mb\":%.1f,\"max_rss_mb\":%.0f}\n",
               T, C, reps, an, mp, T / mf, mf * 1e3, md, rb / 1e6, rb * md / 1e9, model_state_kv_bytes(&s) / 1048576.0, max_rss_mb());
    else printf("prefill %.1f tok/s  prompt %.1f tok/s (first token after %.1f ms)  decode %.2f tok/s, %.1f MB read a token = %.2f GB/s  (%ld tokens after %ld, median of %ld%s)\n",
                mp, T / mf, mf * 1e3, md, rb / 1e6, rb * md / 1e9, T, C, reps,
                student && bitlinear_default_act() == BITLINEAR_ACT_INT8 ? ", int8 activations" : "");
    free(pre); free(dec); free(ft); free(tok); free(logits);
    model_acts_free(&a);
    model_state_free(&s);
    model_state_free(&ps);
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

static const char train_usage[] =
    "Usage: onebit-tui bench train [--teacher M | --random-model D,F,L,H,KV,V] [--batch B]\n"
    "                              [--seq-len T] [--steps N] [--threads K] [--peak-size P]\n"
    "                              [--optim-state fp32|bf16] [--recompute] [--mos E] [--json]\n"
    "\nQAT training steps (teacher forward, student forward + backward, clip,\n"
    "AdamW) on B random sequences of T tokens, split over K threads as `train`\n"
    "does (OpenBLAS on one thread each): median tokens/s and GFLOP/s of the\n"
    "matmuls, as a fraction of this machine's sgemm rate on P x P x P on the same\n"
    "threads (OpenBLAS's own threading) measured in the same process between the\n"
    "steps (medians). The training state (as `train` counts it) is printed\n"
    "first; like `train`, it refuses to start when that exceeds the available memory.\n"
    "Then each phase's median time per step and its share of their sum: teacher\n"
    "forward, student forward, loss, backward, optimizer (clip and AdamW) and\n"
    "communication (MPI collectives; 0 on one rank). Under mpirun -np N (a\n"
    "--with-mpi build) every rank runs the steps as `train` does on N ranks\n"
    "(ZeRO-1: gradient reduce-scatter, AdamW on the rank's slice, parameter\n"
    "all-gather); tok/s counts the tokens of all N ranks; rank 0 prints.\n\n";

/* the phases of the split, in qat.h's QAT_T_* order: JSON name, text name */
static const char *const phase_names[QAT_NTIMERS][2] = {
    {"teacher", "teacher forward"}, {"student_forward", "student forward"}, {"loss", "loss"},
    {"backward", "backward"}, {"optimizer", "optimizer (clip, AdamW)"}, {"comm", "communication"}};

static int train_body(const BenchOpts *o);
static int train_run(const BenchOpts *o)
{
    char err[OB_ERRLEN];
    if (dist_init(NULL, NULL, err)) return cli_error("%s", err);
    if (dist_rank() > 0 && !freopen("/dev/null", "w", stdout)) return cli_error("rank %d: /dev/null", dist_rank());
    int rc = train_body(o);
    dist_finalize();
    return rc;
}

static int train_body(const BenchOpts *o)
{
    const char *teacher = o->teacher, *spec = o->spec;
    long B = o->batch, T = o->seq_len, steps = o->steps, psize = o->peak;
    int json = o->json, nt = o->threads > 0 ? o->threads : pool_default_threads();
    if (teacher && spec) return cli_usage_error("bench train", "--teacher and --random-model exclude each other");
    if (o->mos == 1) return cli_usage_error("bench train", "--mos must be 0 (off) or 2 to %d experts, not 1", QAT_MOS_MAX);
    char err[OB_ERRLEN];
    Model m;
    if (spec) {
        if (random_model(&m, spec, (int)T, err)) return cli_usage_error("bench train", "%s", err);
    } else {
        char *tp = open_resolve_teacher(teacher, err);
        if (!tp) return cli_error("%s", err);
        if (model_load(&m, tp, err)) { free(tp); return cli_error("%s", err); }
        free(tp);
    }
    const ModelConfig *c = &m.cfg;
    if (T > c->seq_len) T = c->seq_len;
    TrainConfig tc;
    trainer_config_default(&tc);
    tc.batch = (int)B;
    tc.seq_len = (int)T;
    tc.optim_state = o->optim;
    tc.recompute = o->recompute;
    tc.mos = o->mos;
    char mem[OB_ERRLEN];
    trainer_memory_text(&m, &tc, mem, sizeof mem);
    if (!json) { printf("%s\n", mem); fflush(stdout); }
    if (trainer_memory_check(&m, &tc, qat_memory_available(), err)) { model_free(&m); return cli_error("%s", err); }
    QatModel *q = qat_new(&m, SVID_NMF, &(QatSize){(int)B, (int)T, (QatOptim)o->optim, o->recompute, dist_size(), dist_rank(),
                                                               qat_vocab_copies(&m), o->mos, 1}, err);
    if (!q) { model_free(&m); return cli_error("%s", err); }
    if (qat_set_threads(q, nt, err)) { qat_free(q); model_free(&m); return cli_error("%s", err); }
    int *tok = random_tokens(B * T, c->vocab_size), ranks = dist_size();
    double *dt = ob_malloc(steps * sizeof(double)), *pt = ob_malloc((size_t)steps * QAT_NTIMERS * sizeof(double));
    size_t *off = ob_malloc(((size_t)ranks + 1) * sizeof(size_t));
    qat_shard_offsets(qat_num_params(q), ranks, off);
    QatLossCfg lc = {1.0f, 0.01f};
    AdamWCfg ac = {1e-4f, 0.9f, 0.98f, 1e-8f, 0.01f};
    QatLoss L;
    /* training steps interleaved with sgemm peak samples, so that both see
     * the same machine load; medians of each */
    double *pk = ob_malloc((size_t)(steps + 1) * 4 * sizeof(double));
    /* the peak on nt threads of OpenBLAS; the steps as `train` runs them:
     * qat's nt threads, OpenBLAS on one (this is the main thread, which
     * owns OpenBLAS's count: base/blas.h) */
    if (blas_set_threads(nt, err)) { free(pk); free(pt); free(off); free(dt); free(tok); qat_free(q); model_free(&m); return cli_error("%s", err); }
    sgemm_rate((int)psize, 2, pk); /* warm up */
    for (long s = 0; s <= steps; s++) { /* step 0 warms up */
        blas_set_threads(nt, err);
        sgemm_rate((int)psize, 4, pk + s * 4);
        blas_set_threads(1, err);
        double t0 = ob_now(), p0[QAT_NTIMERS], p1[QAT_NTIMERS];
        qat_times(q, p0);
        qat_zero_grads(q);
        qat_forward_backward(q, tok, (int)B, (int)T, &lc, 1.0f, &L);
        trainer_zero_step(q, off, 1.0f, s + 1, &ac);
        if (!s) continue;
        dt[s - 1] = ob_now() - t0;
        qat_times(q, p1);
        for (int i = 0; i < QAT_NTIMERS; i++) pt[(size_t)i * steps + s - 1] = p1[i] - p0[i];
    }
    double peak = median(pk + 4, (int)steps * 4);
    free(pk);
    /* each phase's median per step, and its share of their sum */
    double ph[QAT_NTIMERS], phs = 0;
    for (int i = 0; i < QAT_NTIMERS; i++) phs += ph[i] = median(pt + (size_t)i * steps, (int)steps);
    double step = median(dt, (int)steps), flops = qat_flops(q, (int)B, (int)T);
    double tps = B * T * ranks / step, gf = flops / step * 1e-9;
    ObBuf split = {0};
    if (json)
        printf("{\"dim\":%d,\"hidden\":%d,\"layers\":%d,\"heads\":%d,\"kv_heads\":%d,\"vocab\":%d,"
               "\"batch\":%ld,\"seq_len\":%ld,\"steps\":%ld,\"threads\":%d,\"step_s\":%.6f,\"tok_s\":%.1f,"
               "\"gflop_per_step\":%.4f,\"gflop_s\":%.2f,\"peak_gflop_s\":%.2f,\"fraction\":%.4f,\"loss\":%.6f,"
               "\"optim_state\":\"%s\",\"recompute\":%d,\"mos\":%d,\"state_bytes\":%.0f,\"trainable_params\":%zu,\"ranks\":%d,"
               "\"phases\":{",
               c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, B, T, steps,
               nt, step, tps, flops * 1e-9, gf, peak, gf / peak, L.loss, o->optim == QAT_OPTIM_BF16 ? "bf16" : "fp32",
               o->recompute, o->mos, qat_allocated_bytes(q), qat_num_params(q), ranks);
    else
        printf("model dim %d hidden %d layers %d heads %d/%d vocab %d, batch %ld x %ld tokens, %d threads\n"
               "train %.1f tok/s  step %.4f s  %.2f GFLOP/s (%.3f GFLOP/step)  sgemm %.2f GFLOP/s (%ld^3)  fraction %.1f%%\n",
               c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, B, T,
               nt, tps, step, gf, flops * 1e-9, peak, psize, 100 * gf / peak);
    for (int i = 0; i < QAT_NTIMERS; i++) {
        double pct = phs > 0 ? 100 * ph[i] / phs : 0;
        if (json) ob_buf_printf(&split, "%s\"%s\":{\"ms\":%.4f,\"pct\":%.2f}", i ? "," : "", phase_names[i][0], 1e3 * ph[i], pct);
        else ob_buf_printf(&split, "%s%s %.3f ms (%.1f%%)", i ? ", " : "", phase_names[i][1], 1e3 * ph[i], pct);
    }
    if (json) printf("%s}}\n", split.s);
    else printf("per step (medians over %d rank%s): %s\n", ranks, ranks > 1 ? "s" : "", split.s);
    free(split.s);
    free(dt); free(pt); free(off); free(tok);
    qat_free(q);
    model_free(&m);
    return EXIT_OK;
}


/* ---- bench gemv: the 1-bit layer vs FP32 OpenBLAS of the same shape ---- */

static uint64_t bench_rng(uint64_t *s)
{
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

static const char gemv_usage[] =
    "Usage: onebit-tui bench gemv [--rows R] [--cols C] [--batch N] [--threads T] [--cold]\n"
    "                            [--reps K] [--kernel NAME] [--act fp32|int8] [--json]\n"
    "\nTimes the packed 1-bit layer (bitlinear_forward: g scaling, sign GEMV/GEMM, h\n"
    "scaling, LayerNorm) on an R x C weight matrix and N input vectors, and FP32\n"
    "OpenBLAS (cblas_sgemv for N = 1, cblas_sgemm otherwise) on the same shape, in\n"
    "the same process, in alternating rounds (with T > 1 a 0.3 s pause before each\n"
    "1-bit round lets OpenBLAS's busy-waiting threads sleep, then 50 ms of untimed\n"
    "1-bit calls wake the pool); prints both medians over K reps and ratio =\n"
    "sgemv_ms / onebit_ms. --cold cycles through >= 1 GiB of weight copies for\n"
    "each so every call reads its weights from DRAM. Kernels: see ONEBIT_KERNEL\n"
    "in the man page; --act int8 quantizes the activations (see ONEBIT_ACT).\n\n";

static int gemv_run(const BenchOpts *o)
{
    long R = o->rows, C = o->cols, N = o->batch, T = o->threads > 0 ? o->threads : 0, reps = o->reps;
    int cold = o->cold, json = o->json;
    const char *kname = o->kernel;
    char err[OB_ERRLEN];
    if (kname && bitlinear_set_kernel(kname, err)) return cli_usage_error("bench gemv", "%s", err);
    if (T == 0) T = pool_default_threads();
    if (bitlinear_set_threads((int)T, err)) return cli_error("%s", err);
    if (blas_set_threads((int)T, err)) return cli_error("%s", err);

    /* weights: one random sign pattern, copied as often as --cold needs */
    uint64_t seed = 0x2545f4914f6cdd1dull;
    BitLinear *proto = bitlinear_new((int)R, (int)C);
    size_t nwords = (size_t)R * proto->words_per_row;
    uint64_t *bits = ob_malloc(nwords * 8);
    for (size_t i = 0; i < nwords; i++) bits[i] = bench_rng(&seed);
    float *g = ob_malloc(C * 4), *h = ob_malloc(R * 4);
    for (long i = 0; i < C; i++) g[i] = 0.5f + (float)(bench_rng(&seed) % 1000) / 1000.0f;
    for (long i = 0; i < R; i++) h[i] = 0.01f + (float)(bench_rng(&seed) % 1000) / 1e5f;
    size_t bit_bytes = nwords * 8, fp_bytes = (size_t)R * C * 4;
    const size_t GiB = (size_t)1 << 30;
    int n_bl = cold ? (int)((GiB + bit_bytes - 1) / bit_bytes) : 1;
    int n_fp = cold ? (int)((GiB + fp_bytes - 1) / fp_bytes) : 1;
    BitLinear **bl = ob_malloc(n_bl * sizeof *bl);
    bl[0] = proto;
    for (int i = 0; i < n_bl; i++) {
        if (i) bl[i] = bitlinear_new((int)R, (int)C);
        bitlinear_set_bits(bl[i], bits);
        bitlinear_set_scales(bl[i], g, h);
    }
    float **W = ob_malloc(n_fp * sizeof *W);
    for (int i = 0; i < n_fp; i++) {
        W[i] = ob_aligned_alloc(64, fp_bytes);
        for (size_t j = 0; j < (size_t)R * C; j++) W[i][j] = (bits[j / C * proto->words_per_row + j % C / 64] >> (j % 64)) & 1 ? h[j / C] : -h[j / C];
    }
    float *x = ob_aligned_alloc(64, (size_t)N * C * 4), *y = ob_aligned_alloc(64, (size_t)N * R * 4);
    for (size_t i = 0; i < (size_t)N * C; i++) x[i] = (float)(bench_rng(&seed) % 2001) / 1000.0f - 1.0f;
    double *t1 = ob_malloc(reps * sizeof(double)), *tb = ob_malloc(reps * sizeof(double));
    /* warm up both (page faults, pool threads, OpenBLAS buffers) */
    for (int i = 0; i < (n_bl > 3 ? n_bl : 3); i++) bitlinear_forward(bl[i % n_bl], x, y, (int)N);
    for (int i = 0; i < (n_fp > 3 ? n_fp : 3); i++)
        if (N == 1) cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)R, (int)C, 1.0f, W[i % n_fp], (int)C, x, 1, 0.0f, y, 1);
        else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)R, (int)C, 1.0f, x, (int)C, W[i % n_fp], (int)C, 0.0f, y, (int)R);
    /* rounds of back-to-back calls of one, then of the other: alternating
     * single calls would let the pool's workers fall asleep during every
     * sgemv and time their wake-up, which a decode loop never pays; rounds
     * still spread slow phases of a busy machine over both */
    long round = reps < 10 ? reps : reps / 10;
    for (long r0 = 0; r0 < reps; r0 += round) {
        long r1 = r0 + round < reps ? r0 + round : reps;
        /* OpenBLAS's worker threads busy-wait for a while after each call
         * (2^28 cycles by default, OPENBLAS_THREAD_TIMEOUT) and would share
         * the cores with our pool during the next round: let them sleep */
        if (T > 1) {
            ob_sleep(BENCH_BLAS_QUIET_S);
            /* on other copies than the round's first (cold) ones */
            double w0 = ob_now();
            for (long k = 0; ob_now() - w0 < BENCH_WARM_S; k++) bitlinear_forward(bl[(r0 + n_bl / 2 + k) % n_bl], x, y, (int)N);
        }
        for (long r = r0; r < r1; r++) {
            double t0 = ob_now();
            bitlinear_forward(bl[r % n_bl], x, y, (int)N);
            t1[r] = ob_now() - t0;
        }
        for (long r = r0; r < r1; r++) {
            const float *w = W[r % n_fp];
            double t0 = ob_now();
            if (N == 1) cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)R, (int)C, 1.0f, w, (int)C, x, 1, 0.0f, y, 1);
            else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)R, (int)C, 1.0f, x, (int)C, w, (int)C, 0.0f, y, (int)R);
            tb[r] = ob_now() - t0;
        }
    }
    double ms1 = 1e3 * median(t1, (int)reps), msb = 1e3 * median(tb, (int)reps);
    double min1 = 1e3 * t1[0], minb = 1e3 * tb[0]; /* median() sorted them */
    /* the kernel that ran (int8 activations without a variant of their own
     * run on ref) and the precision: what the layers were made with */
    const char *kn = bl[0]->ex.kernel->name;
    const char *an = bitlinear_act_name(bl[0]->ex.act);
    if (json)
        printf("{\"rows\":%ld,\"cols\":%ld,\"batch\":%ld,\"threads\":%ld,\"cold\":%s,\"kernel\":\"%s\",\"act\":\"%s\",\"reps\":%ld,"
               "\"onebit_ms\":%.5f,\"sgemv_ms\":%.5f,\"ratio\":%.2f,\"onebit_min_ms\":%.5f,\"sgemv_min_ms\":%.5f}\n",
               R, C, N, T, cold ? "true" : "false", kn, an, reps, ms1, msb, msb / ms1, min1, minb);
    else
        printf("gemv %ldx%ld N=%ld threads=%ld %s kernel=%s act=%s: onebit %.4f ms  %s %.4f ms  ratio %.1fx  (median of %ld; min %.4f / %.4f ms)\n",
               R, C, N, T, cold ? "cold" : "hot", kn, an, ms1, N == 1 ? "sgemv" : "sgemm", msb, msb / ms1, reps, min1, minb);
    for (int i = 0; i < n_bl; i++) bitlinear_free(bl[i]);
    for (int i = 0; i < n_fp; i++) free(W[i]);
    free(bl); free(W); free(bits); free(g); free(h); free(x); free(y); free(t1); free(tb);
    return EXIT_OK;
}


/* ---- bench membw: streaming read bandwidth (the floor for cold GEMV) ---- */

typedef struct {
    const uint64_t *buf;        /* the current chunk */
    size_t n;                   /* its words */
    int ntasks;
    uint64_t sums[1024];
} MembwCtx;

static void membw_task(void *vc, int t)
{
    MembwCtx *c = vc;
    size_t i0 = c->n * t / c->ntasks, i1 = c->n * (t + 1) / c->ntasks;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = i0; i + 4 <= i1; i += 4) {
        s0 += c->buf[i]; s1 += c->buf[i + 1]; s2 += c->buf[i + 2]; s3 += c->buf[i + 3];
    }
    c->sums[t] += s0 + s1 + s2 + s3;
}

static const char membw_usage[] =
    "Usage: onebit-tui bench membw [--threads T] [--mib M] [--chunk C] [--reps K] [--json]\n"
    "\nDRAM read bandwidth: T threads sum chunks of C MiB taken in turn from a\n"
    "buffer of M MiB (far larger than the caches), so every chunk comes from\n"
    "DRAM; the median over K chunks, in GB/s (1e9 bytes/s). Short chunks keep the\n"
    "median meaningful on a busy machine. A cold 1-bit GEMV cannot beat its sign\n"
    "bytes divided by this.\n\n";

static int membw_run(const BenchOpts *o)
{
    long T = o->threads > 0 ? o->threads : 0, mib = o->mib, chunk = o->chunk, reps = o->reps;
    int json = o->json;
    if (chunk > mib) chunk = mib;
    char err[OB_ERRLEN];
    if (T == 0) T = pool_default_threads();
    if (bitlinear_set_threads((int)T, err)) return cli_error("%s", err);
    MembwCtx *c = ob_calloc(1, sizeof *c);
    size_t bytes = (size_t)mib << 20, cbytes = (size_t)chunk << 20, nchunks = bytes / cbytes;
    uint64_t *buf = ob_aligned_alloc(64, bytes);
    for (size_t i = 0; i < bytes / 8; i++) buf[i] = i;
    c->n = cbytes / 8;
    c->ntasks = (int)T;
    double *t = ob_malloc(reps * sizeof(double));
    Pool *pool = pool_global_ref();
    for (size_t i = 0; i < nchunks; i++) { /* one pass to warm up */
        c->buf = buf + i * c->n;
        pool_run(pool, membw_task, c, c->ntasks);
    }
    for (long r = 0; r < reps; r++) {
        c->buf = buf + (size_t)(r % nchunks) * c->n;
        double t0 = ob_now();
        pool_run(pool, membw_task, c, c->ntasks);
        t[r] = ob_now() - t0;
    }
    pool_free(pool);
    uint64_t s = 0;
    for (int i = 0; i < c->ntasks; i++) s += c->sums[i];
    double gbs = cbytes / median(t, (int)reps) / 1e9;
    if (json) printf("{\"mib\":%ld,\"chunk_mib\":%ld,\"threads\":%ld,\"reps\":%ld,\"gb_s\":%.2f}\n", mib, chunk, T, reps, gbs);
    else printf("membw %ld MiB in %ld MiB chunks, threads=%ld: %.2f GB/s read (median of %ld; checksum %llx)\n", mib, chunk, T, gbs, reps,
                (unsigned long long)s);
    free(buf); free(t); free(c);
    return EXIT_OK;
}

/* ---- bench ops: the int8 kernels' vector operations per ns and cycle ---- */
static const char ops_usage[] =
    "Usage: onebit-tui bench ops [--reps K] [--json]\n"
    "\nThroughput of the vector operations the int8 1-bit kernels are made of (the\n"
    "avx512 lookup tables' vpermw/vpermt2w and vpaddw, avx512vnni's vpdpbusd), on\n"
    "one thread, in operations per ns and, with the clock a chain of dependent\n"
    "scalar adds shows, per cycle; the mixed rows tell whether two kinds share a\n"
    "pipe. Medians of K repetitions. Needs AVX-512 (else only the clock).\n\n";

#define OPS_MAX 16
#define OPS_ITERS 20000000L

static int ops_run(const BenchOpts *o)
{
    long reps = o->reps;
    KernOpRate r[OPS_MAX];
    double *v = ob_malloc((size_t)reps * OPS_MAX * sizeof(double)), med[OPS_MAX];
    int n = 0;
    for (long k = 0; k < reps; k++) {
        n = kern_op_rates(r, OPS_MAX, OPS_ITERS);
        for (int i = 0; i < n; i++) v[(size_t)i * reps + k] = r[i].per_ns;
    }
    for (int i = 0; i < n; i++) med[i] = median(v + (size_t)i * reps, (int)reps);
    free(v);
    if (n == 0) return cli_error("bench ops: this build has no x86 kernels");
    const double ghz = med[0]; /* one dependent add a cycle */
    if (o->json) {
        printf("{\"reps\":%ld,\"ghz\":%.3f,\"ops\":[", reps, ghz);
        for (int i = 1; i < n; i++) printf("%s{\"op\":\"%s\",\"per_ns\":%.3f,\"per_cycle\":%.3f}", i > 1 ? "," : "", r[i].name, med[i], med[i] / ghz);
        printf("]}\n");
    } else {
        printf("clock (dependent scalar adds): %.2f GHz (median of %ld)\n", ghz, reps);
        for (int i = 1; i < n; i++) printf("  %-22s %6.2f per ns  %5.2f per cycle   %s\n", r[i].name, med[i], med[i] / ghz, r[i].what);
        if (n == 1) printf("  (no AVX-512 on this CPU: nothing else to measure)\n");
    }
    return EXIT_OK;
}

/* ---- bench dequant: a teacher's conversion to FP32 at load, per type ---- */
static const char dequant_usage[] =
    "Usage: onebit-tui bench dequant [--dtype T] [--mib M] [--reps K] [--json]\n"
    "\nllama_dequant of M MiB worth of FP32 weights stored as T (a GGUF type: what a\n"
    "teacher's load spends converting its tensors), one thread, the median of K\n"
    "repetitions after one untimed. The blocks of Q4_0, Q5_0 and the K types are\n"
    "expanded by the fastest decode kernels on this CPU; ONEBIT_KERNEL=ref times\n"
    "the scalar reference.\n\n";

static int dequant_run(const BenchOpts *o)
{
    int blk = llama_dtype_block(o->dtype);
    size_t n = ((size_t)o->mib << 18) / (size_t)blk * (size_t)blk; /* mib MiB of floats, whole blocks */
    if (!n) return cli_usage_error("bench dequant", "--mib %d holds no whole block", o->mib);
    float *x = ob_malloc(n * sizeof(float)), *y = ob_malloc(n * sizeof(float));
    uint8_t *q = ob_malloc(llama_dtype_bytes(o->dtype, n));
    double *t = ob_malloc((size_t)o->reps * sizeof(double));
    uint64_t s = 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = ((float)(s >> 40) / 16777216.0f - 0.5f) * 0.1f;
    }
    llama_quantize(o->dtype, x, q, n);
    llama_dequant(o->dtype, q, y, n); /* untimed: page faults */
    for (int r = 0; r < o->reps; r++) {
        double t0 = ob_now();
        llama_dequant(o->dtype, q, y, n);
        t[r] = ob_now() - t0;
    }
    double sec = median(t, o->reps), mw = (double)n / sec / 1e6;
    const char *kern = kern_dec_default()->name, *name = llama_dtype_name(o->dtype);
    if (o->json)
        printf("{\"dtype\":\"%s\",\"weights\":%zu,\"reps\":%d,\"ms\":%.3f,\"mweights_s\":%.1f,\"kernel\":\"%s\"}\n", name, n, o->reps,
               sec * 1e3, mw, kern);
    else
        printf("dequant %s: %zu weights in %.3f ms (median of %d), %.0f M weights/s, %.2f GB/s of FP32 out, kernel=%s (checksum %g)\n",
               name, n, sec * 1e3, o->reps, mw, mw * 4e-3, kern, (double)y[n / 2]);
    free(x); free(y); free(q); free(t);
    return EXIT_OK;
}

/* ---- bench allreduce: the trainer's gradient sum across MPI ranks ---- */
static const char allreduce_usage[] =
    "Usage: mpirun -np N onebit-tui bench allreduce [--mib M] [--reps K] [--json]\n"
    "\nThe gradient sum of data-parallel training (train/dist.h: MPI_Allreduce in\n"
    "buckets of 16 MiB) over M MiB of floats, and what `train` does instead\n"
    "(ZeRO-1): the gradients' reduce-scatter plus the parameters' all-gather of\n"
    "the same M MiB in the trainer's slices; medians of K repetitions after one\n"
    "untimed; rank 0 prints them. Needs a --with-mpi build started by mpirun.\n\n";

static int allreduce_run(const BenchOpts *o)
{
    char err[OB_ERRLEN];
    if (dist_init(NULL, NULL, err)) return cli_error("%s", err);
    if (dist_size() < 2) {
        dist_finalize();
        return cli_error("bench allreduce needs several ranks: mpirun -np N onebit-tui bench allreduce (a --with-mpi build)");
    }
    size_t n = ((size_t)o->mib << 20) / sizeof(float);
    float *g = ob_malloc(n * sizeof(float));
    double *t = ob_malloc(2 * (size_t)o->reps * sizeof(double)), *tz = t + o->reps;
    size_t *off = ob_malloc(((size_t)dist_size() + 1) * sizeof(size_t));
    qat_shard_offsets(n, dist_size(), off);
    for (size_t i = 0; i < n; i++) g[i] = 1e-3f * (float)(i % 1000);
    for (int r = -1; r < o->reps; r++) { /* r = -1 untimed: connections, page faults */
        dist_barrier();
        double t0 = ob_now();
        dist_sum_f32(g, n);
        double t1 = ob_now();
        dist_barrier();
        double t2 = ob_now();
        dist_reduce_scatter_f32(g, off);
        dist_allgather_f32(g, off);
        if (r >= 0) { t[r] = t1 - t0; tz[r] = ob_now() - t2; }
    }
    double ms = 1e3 * median(t, o->reps), zms = 1e3 * median(tz, o->reps);
    /* a ring allreduce moves 2(N-1)/N of the data through each rank's link */
    double busbw = 2.0 * (dist_size() - 1) / dist_size() * (double)n * sizeof(float) / (ms * 1e-3) / 1e9;
    if (dist_rank() == 0) {
        if (o->json)
            printf("{\"mib\":%d,\"ranks\":%d,\"reps\":%d,\"ms\":%.3f,\"bus_gb_s\":%.2f,\"zero_ms\":%.3f}\n", o->mib, dist_size(),
                   o->reps, ms, busbw, zms);
        else printf("allreduce %d MiB (%zu floats) over %d ranks: %.3f ms (median of %d), %.2f GB/s bus bandwidth\n"
                    "reduce-scatter + all-gather (ZeRO-1) of the same: %.3f ms\n", o->mib, n, dist_size(), ms, o->reps, busbw, zms);
    }
    free(off);
    free(g);
    free(t);
    dist_finalize();
    return EXIT_OK;
}

/* every bench: its option rows, its --help text and its body */
static const struct {
    const char *name;
    const OptSpec *rows;
    const char *usage;
    int (*run)(const BenchOpts *o);
    const char *summary;
} benches[] = {
    {"forward", forward_opts, forward_usage, forward_run, "prefill and decode tokens/s of a teacher or student"},
    {"train", train_opts, train_usage, train_run, "QAT training tokens/s and fraction of the sgemm peak"},
    {"gemv", gemv_opts, gemv_usage, gemv_run, "1-bit layer vs FP32 OpenBLAS sgemv/sgemm, same shape"},
    {"membw", membw_opts, membw_usage, membw_run, "DRAM streaming read bandwidth (GB/s)"},
    {"dequant", dequant_opts, dequant_usage, dequant_run, "a GGUF type's conversion to FP32 (M weights/s)"},
    {"ops", ops_opts, ops_usage, ops_run, "vector operations per cycle of the int8 kernels (AVX-512)"},
    {"allreduce", allreduce_opts, allreduce_usage, allreduce_run, "MPI gradient allreduce time over the ranks (mpirun)"},
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
    for (size_t i = 0; i < nb; i++) {
        if (strcmp(argv[1], benches[i].name)) continue;
        char cmd[32];
        snprintf(cmd, sizeof cmd, "bench %s", benches[i].name);
        BenchOpts o;
        int rc = bench_opts(cmd, benches[i].rows, &o, argc - 1, argv + 1, benches[i].usage);
        if (rc < 0) rc = benches[i].run(&o);
        opt_free(benches[i].rows, &o);
        return rc;
    }
    return cli_usage_error("bench", "unknown benchmark '%s'", argv[1]);
}
