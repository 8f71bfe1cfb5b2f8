/* src/cli/cmd_inspect.c -- `onebit-tui inspect`: per-layer SVID errors, sign
 * balance and scale ranges of a teacher, and what a 1-bit student of it
 * costs (parameters, sizes, bits per weight). Table, JSON or CSV. The
 * options are one table (insp_opts). Main thread only. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "base/common.h"
#include "format/loader.h"
#include "train/data.h"
#include "db/db_svid.h"
#include "db/train_db.h"
#include "onebit/student.h"
#include "onebit/svid.h"

typedef struct {
    char *teacher, *tokenizer, *db;
    int init;                    /* SvidMethod: the order of "nmf|svd|xnor|sign|arb" */
    int threads;                 /* 0: the online CPUs */
    int json, csv;
} InspOpts;

/* deliberately its own table (like cmd_eval.c's): each subcommand's rows are
 * data that --help prints in order; rows alike in shape are not shared logic */
#define F(field) offsetof(InspOpts, field)
static const OptSpec insp_opts[] = {
    {"teacher", OPT_STR, F(teacher), OPT_NOHELP, 0, 0, NULL, NULL, "M", "the teacher", NULL},
    {"tokenizer", OPT_STR, F(tokenizer), 0, 0, 0, NULL, NULL, "T", "only checked against the teacher (not needed)", NULL},
    {"init", OPT_CHOICE, F(init), 0, 0, 0, "nmf", "nmf|svd|xnor|sign|arb", "M", "method for the g/h ranges (default nmf)", NULL},
    {"threads", OPT_INT, F(threads), 0, 1, 1024, NULL, NULL, "N", "worker threads (default: online CPUs)", NULL},
    {"json", OPT_FLAG, F(json), 0, 0, 1, NULL, NULL, NULL, "{\"layers\":[...],\"totals\":{...}} with histograms", NULL},
    {"csv", OPT_FLAG, F(csv), 0, 0, 1, NULL, NULL, NULL, "one CSV row per layer, then a 'total' row", NULL},
    {"db", OPT_STR, F(db), 0, 0, 0, NULL, NULL, "DB", "also store the statistics for this teacher in the run store", NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
#undef F

typedef struct {
    unsigned long long params, params_1bit, fp32_bytes, fp16_bytes, onebit_bytes;
    double bpw_model, bpw_linears, mean_err[3];
} Totals;

static void totals_of(const ModelConfig *c, const LayerStats *st, int n, Totals *t)
{
    memset(t, 0, sizeof *t);
    t->params = model_count_params(c);
    unsigned long long scales = 0;
    for (int i = 0; i < n; i++) {
        t->params_1bit += (unsigned long long)st[i].rows * st[i].cols;
        scales += (unsigned long long)st[i].rows + st[i].cols;
        t->mean_err[0] += st[i].nmf_err / n;
        t->mean_err[1] += st[i].svd_err / n;
        t->mean_err[2] += st[i].xnor_err / n;
    }
    t->fp32_bytes = 4 * t->params;
    t->fp16_bytes = 2 * t->params;
    t->onebit_bytes = student_onebit_bytes(c);
    t->bpw_model = 8.0 * t->onebit_bytes / t->params;
    t->bpw_linears = (t->params_1bit + 16.0 * scales) / t->params_1bit;
}

static int progress(void *user, int done, int total)
{
    (void)user;
    fprintf(stderr, "\rinspect: %d/%d layers", done, total);
    if (done == total) fputc('\n', stderr);
    return 0;
}

static void print_hist(const long *h, int n)
{
    putchar('[');
    for (int i = 0; i < n; i++) printf("%s%ld", i ? "," : "", h[i]);
    putchar(']');
}

static int inspect_main(const InspOpts *o)
{
    const char *teacher = o->teacher, *tokenizer = o->tokenizer, *store = o->db;
    SvidMethod init = (SvidMethod)o->init;
    long threads = o->threads ? o->threads : sysconf(_SC_NPROCESSORS_ONLN);
    int json = o->json, csv = o->csv;
    if (threads < 1) threads = 1;
    Model m;
    char err[OB_ERRLEN];
    if (tokenizer) { /* only checked: it must fit the teacher */
        Tokenizer t;
        if (open_teacher(teacher, tokenizer, &m, &t, NULL, err)) return cli_error("%s", err);
        tok_free(&t);
    } else {
        char *tp = open_resolve_teacher(teacher, err);
        if (!tp) return cli_error("%s", err);
        int rc = model_load(&m, tp, err);
        free(tp);
        if (rc) return cli_error("%s", err);
    }
    const ModelConfig *c = &m.cfg;
    int n = c->n_layers * LIN_PER_LAYER;
    LayerStats *st = ob_calloc((size_t)n, sizeof *st);
    if (svid_model_stats(&m, (int)threads, init, st, isatty(2) ? progress : NULL, NULL, err)) {
        free(st);
        model_free(&m);
        return cli_error("%s", err);
    }
    if (store) { /* the run store keeps them for the workbench */
        char *tp = open_resolve_teacher(teacher, err), sha[65];
        Db *db = tp && loader_fingerprint(tp, sha, NULL, err) == 0 ? db_open(store, 0, err) : NULL;
        int64_t tid = db ? train_db_teacher(db, tp, sha, c, err) : -1;
        int ok = tid > 0 && db_layer_stats_save(db, tid, st, n, err) == 0;
        if (ok) fprintf(stderr, "stored %d layer statistics of teacher %lld in %s\n", n, (long long)tid, db_path(db));
        db_close(db);
        free(tp);
        if (!ok) {
            free(st);
            model_free(&m);
            return cli_error("%s", err);
        }
    }
    Totals T;
    totals_of(c, st, n, &T);
    if (json) {
        printf("{\"init\":\"%s\",\"config\":{\"dim\":%d,\"hidden_dim\":%d,\"n_layers\":%d,\"n_heads\":%d,\"n_kv_heads\":%d,"
               "\"vocab_size\":%d,\"seq_len\":%d},\"layers\":[",
               svid_method_name(init), c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len);
        for (int i = 0; i < n; i++) {
            const LayerStats *s = &st[i];
            printf("%s\n{\"name\":\"%s\",\"layer\":%d,\"rows\":%d,\"cols\":%d,\"nmf_err\":%.6g,\"svd_err\":%.6g,\"xnor_err\":%.6g,"
                   "\"pos_frac\":%.6g,\"row_pos_min\":%.6g,\"row_pos_max\":%.6g,\"row_pos_std\":%.6g,"
                   "\"col_pos_min\":%.6g,\"col_pos_max\":%.6g,\"col_pos_std\":%.6g,"
                   "\"g_min\":%.6g,\"g_max\":%.6g,\"h_min\":%.6g,\"h_max\":%.6g,\"bpw\":%.6g,"
                   "\"abs_lo\":%.6g,\"abs_hi\":%.6g,\"w_lo\":%.6g,\"w_hi\":%.6g,\"abs_hist\":",
                   i ? "," : "", s->name, s->layer, s->rows, s->cols, s->nmf_err, s->svd_err, s->xnor_err, s->pos_frac,
                   s->row_pos_min, s->row_pos_max, s->row_pos_std, s->col_pos_min, s->col_pos_max, s->col_pos_std,
                   s->g_min, s->g_max, s->h_min, s->h_max, s->bpw, s->abs_lo, s->abs_hi, s->w_lo, s->w_hi);
            print_hist(s->abs_hist, s->bins);
            printf(",\"w_hist\":");
            print_hist(s->w_hist, s->bins);
            putchar('}');
        }
        printf("],\n\"totals\":{\"params\":%llu,\"params_1bit\":%llu,\"fp32_bytes\":%llu,\"fp16_bytes\":%llu,"
               "\"onebit_bytes\":%llu,\"bpw_model\":%.6g,\"bpw_linears\":%.6g,"
               "\"mean_nmf_err\":%.6g,\"mean_svd_err\":%.6g,\"mean_xnor_err\":%.6g}}\n",
               T.params, T.params_1bit, T.fp32_bytes, T.fp16_bytes, T.onebit_bytes, T.bpw_model, T.bpw_linears,
               T.mean_err[0], T.mean_err[1], T.mean_err[2]);
    } else if (csv) {
        printf("name,rows,cols,nmf_err,svd_err,xnor_err,pos_frac,row_pos_min,row_pos_max,row_pos_std,"
               "col_pos_min,col_pos_max,col_pos_std,g_min,g_max,h_min,h_max,bpw\n");
        for (int i = 0; i < n; i++) {
            const LayerStats *s = &st[i];
            printf("%s,%d,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", s->name, s->rows,
                   s->cols, s->nmf_err, s->svd_err, s->xnor_err, s->pos_frac, s->row_pos_min, s->row_pos_max, s->row_pos_std,
                   s->col_pos_min, s->col_pos_max, s->col_pos_std, s->g_min, s->g_max, s->h_min, s->h_max, s->bpw);
        }
        printf("total,,%llu,%.6g,%.6g,%.6g,,,,,,,,,,,,%.6g\n", T.params_1bit, T.mean_err[0], T.mean_err[1], T.mean_err[2], T.bpw_linears);
    } else {
        printf("%-16s %6s %6s %8s %8s %8s %6s %13s %19s %19s %6s\n", "layer", "rows", "cols", "nmf_err", "svd_err", "xnor_err",
               "pos", "row pos range", "g range", "h range", "bpw");
        for (int i = 0; i < n; i++) {
            const LayerStats *s = &st[i];
            printf("%-16s %6d %6d %8.5f %8.5f %8.5f %6.4f %6.4f-%6.4f %9.3g-%9.3g %9.3g-%9.3g %6.3f\n", s->name, s->rows, s->cols,
                   s->nmf_err, s->svd_err, s->xnor_err, s->pos_frac, s->row_pos_min, s->row_pos_max, s->g_min, s->g_max,
                   s->h_min, s->h_max, s->bpw);
        }
        printf("\nmean SVID error     nmf %.5f  svd %.5f  xnor %.5f  (g, h ranges from %s)\n", T.mean_err[0], T.mean_err[1],
               T.mean_err[2], svid_method_name(init));
        printf("parameters          %llu, of which 1-bit-able %llu (%.1f%%)\n", T.params, T.params_1bit,
               100.0 * T.params_1bit / T.params);
        printf("size FP32           %llu bytes (%.2f MiB)\n", T.fp32_bytes, T.fp32_bytes / 1048576.0);
        printf("size FP16           %llu bytes (%.2f MiB)\n", T.fp16_bytes, T.fp16_bytes / 1048576.0);
        printf("size 1-bit          %llu bytes (%.2f MiB): signs + FP16 g,h; FP16 embeddings, norms, head\n",
               T.onebit_bytes, T.onebit_bytes / 1048576.0);
        printf("bits per weight     model %.3f, linears %.3f\n", T.bpw_model, T.bpw_linears);
    }
    free(st);
    model_free(&m);
    return EXIT_OK;
}

static int inspect_check(const void *p)
{
    const InspOpts *o = p;
    return o->json && o->csv ? cli_usage_error("inspect", "--json and --csv exclude each other") : -1;
}

static int inspect_run(const void *o) { return inspect_main(o); }

static void help(void)
{
    printf("Usage: onebit-tui inspect [--teacher M] [--tokenizer T] [--init nmf|svd|xnor|sign|arb]\n"
           "                          [--threads N] [--json|--csv] [--db DB]\n"
           "\n"
           "For every linear layer of the teacher: the relative Frobenius error\n"
           "||W - sign(W)*(a b^T)||/||W|| of the three rank-1 inits (nmf, svd, xnor), the\n"
           "fraction of weights >= 0 (whole matrix, min/max over rows and columns), the\n"
           "range of g and h from the --init method, and bits per weight of the layer.\n"
           "Then totals: parameters (all, 1-bit-able), FP32/FP16/1-bit sizes and bpw.\n"
           "\n");
    opt_help_width(stdout, insp_opts, 13);
}

int cli_inspect(int argc, char **argv)
{
    InspOpts o;
    return cli_run_opts("inspect", insp_opts, &o, argc, argv, help, inspect_check, inspect_run);
}
