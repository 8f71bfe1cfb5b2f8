/* cmd_eval.c -- `onebit-tui eval`: mean NLL and perplexity on a text file. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "base/common.h"
#include "model/eval.h"

static void help(void)
{
    printf("Usage: onebit-tui eval [--teacher M | --student S] [--tokenizer T] --text FILE [--seq-len L]\n"
           "                       [--split SEP] [--act fp32|int8] [--json]\n"
           "\n"
           "Teacher-forced mean negative log-likelihood (nats/token) and perplexity.\n"
           "Without --split the whole file is encoded once with BOS and cut into\n"
           "non-overlapping windows of L tokens; the loss covers tokens 1..L-1 of each.\n"
           "With --split SEP (e.g. '<|endoftext|>') every document is stripped, encoded\n"
           "with BOS and truncated to L tokens.\n"
           "\n"
           "  --student S   evaluate a 1-bit student (.onebit); its own tokenizer\n"
           "                unless --tokenizer is given\n"
           "  --seq-len L   window length (default: the model's context)\n"
           "  --act A       a student's activations: fp32 (default, exact) or int8\n"
           "  --json        print {\"nll\":..,\"ppl\":..,\"tokens\":..}\n");
}

int cli_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        {"teacher", required_argument, 0, 'm'}, {"tokenizer", required_argument, 0, 'z'},
        {"text", required_argument, 0, 'x'},    {"seq-len", required_argument, 0, 'l'},
        {"split", required_argument, 0, 's'},   {"json", no_argument, 0, 'j'},
        {"student", required_argument, 0, 'S'}, {"act", required_argument, 0, 'A'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *teacher = NULL, *tokenizer = NULL, *text_path = NULL, *split = NULL, *student = NULL;
    long seq_len = 0;
    int json = 0, ch, rc0;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': teacher = optarg; break;
        case 'S': student = optarg; break;
        case 'A': if ((rc0 = cli_set_act("eval", optarg))) return rc0; break;
        case 'z': tokenizer = optarg; break;
        case 'x': text_path = optarg; break;
        case 'l':
            if (ob_parse_int(optarg, 2, 1 << 20, &seq_len)) return cli_usage_error("eval", "--seq-len needs an integer >= 2, not '%s'", optarg);
            break;
        case 's': split = optarg; break;
        case 'j': json = 1; break;
        case 'h': help(); return EXIT_OK;
        case ':': return cli_usage_error("eval", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("eval", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!text_path) return cli_usage_error("eval", "--text FILE is required");
    if (teacher && student) return cli_usage_error("eval", "--teacher and --student exclude each other");
    char err[OB_ERRLEN];
    char *text;
    size_t len;
    if (ob_read_file(text_path, &text, &len, err)) return cli_error("%s", err);
    Model m;
    Tokenizer t;
    if (open_model(teacher, student, tokenizer, &m, &t, err)) { free(text); return cli_error("%s", err); }
    if (seq_len == 0) seq_len = m.cfg.seq_len;
    EvalResult r;
    int rc = EXIT_OK;
    if (eval_text(&m, &t, text, (int)seq_len, split, &r, err)) rc = cli_error("%s: %s", text_path, err);
    else {
        double nll = r.nll_sum / r.tokens;
        if (json) printf("{\"nll\":%.6f,\"ppl\":%.6f,\"tokens\":%ld,\"windows\":%d}\n", nll, exp(nll), r.tokens, r.windows);
        else printf("nll %.6f  ppl %.6f  tokens %ld  %s %d\n", nll, exp(nll), r.tokens, split ? "documents" : "windows", r.windows);
    }
    free(text);
    tok_free(&t);
    model_free(&m);
    return rc;
}
