/* cmd_quantize.c -- `onebit-tui quantize`: post-training quantisation of a
 * teacher into a .onebit student (SVID or XNOR init, no training). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "base/common.h"
#include "onebit/student.h"
#include "onebit/svid.h"

static void help(void)
{
    printf("Usage: onebit-tui quantize [--teacher M] [--tokenizer T] --out S.onebit\n"
           "                           [--init nmf|svd|xnor] [--norm|--no-norm]\n"
           "\n"
           "Write a 1-bit student of the teacher without training: every linear\n"
           "becomes sign(W) with g, h from a rank-1 fit |W| ~ h g^T (--init, default\n"
           "nmf; xnor = per-row mean |W|, g = 1). The student holds the teacher's\n"
           "embedding, norms, head and tokenizer, so it is self-contained.\n"
           "\n"
           "  --out S       the .onebit file (written to a temporary file, then renamed)\n"
           "  --no-norm     no LayerNorm after the 1-bit product (the default: the\n"
           "                layer then approximates W itself)\n"
           "  --norm        LayerNorm after it, the OneBit architecture that training\n"
           "                (QAT) needs; without training it changes the layer's scale\n");
}

static void json_string(char *dst, size_t n, const char *s)
{
    size_t k = 0;
    for (; *s && k + 7 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') { dst[k++] = '\\'; dst[k++] = (char)ch; }
        else if (ch < 0x20) k += (size_t)snprintf(dst + k, n - k, "\\u%04x", ch);
        else dst[k++] = (char)ch;
    }
    dst[k] = 0;
}

int cli_quantize(int argc, char **argv)
{
    static const struct option opts[] = {
        {"teacher", required_argument, 0, 'm'}, {"tokenizer", required_argument, 0, 'z'},
        {"out", required_argument, 0, 'o'},     {"init", required_argument, 0, 'i'},
        {"norm", no_argument, 0, 'N'},          {"no-norm", no_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *teacher = NULL, *tokenizer = NULL, *out = NULL;
    SvidMethod init = SVID_NMF;
    int norm = 0, ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': teacher = optarg; break;
        case 'z': tokenizer = optarg; break;
        case 'o': out = optarg; break;
        case 'i':
            if (svid_method_parse(optarg, &init)) return cli_usage_error("quantize", "--init must be nmf, svd or xnor, not '%s'", optarg);
            break;
        case 'N': norm = 1; break;
        case 'n': norm = 0; break;
        case 'h': help(); return EXIT_OK;
        case ':': return cli_usage_error("quantize", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("quantize", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("quantize", "unexpected argument '%s'", argv[optind]);
    if (!out) return cli_usage_error("quantize", "--out S.onebit is required");
    char err[OB_ERRLEN];
    char *tp = open_resolve_teacher(teacher, err);
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
        json_string(esc, sizeof esc, tp);
        snprintf(meta, sizeof meta, "{\"kind\":\"ptq\",\"init\":\"%s\",\"norm\":%s,\"teacher\":\"%s\",\"created\":%lld}",
                 svid_method_name(init), norm ? "true" : "false", esc, (long long)time(NULL));
        if (student_write(out, &m, &t, lin, meta, err)) rc = cli_error("%s", err);
        else
            fprintf(stderr, "wrote %s: %d 1-bit linears, init %s, LayerNorm %s (%.2f s)\n", out, nlin, svid_method_name(init),
                    norm ? "on" : "off", ob_now() - t0);
        student_src_free(lin, nlin);
    }
    free(lin);
    free(tp);
    tok_free(&t);
    model_free(&m);
    return rc;
}
