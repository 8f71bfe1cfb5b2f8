/* cmd_generate.c -- `onebit-tui generate`: print the prompt and its
 * continuation as llama2.c's run does, tokens/s on stderr. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "base/common.h"
#include "model/generate.h"

static void help(void)
{
    printf("Usage: onebit-tui generate [--teacher M | --student S] [--tokenizer T] [--prompt TEXT] [-n N]\n"
           "                           [--temp X] [--top-p P] [--seed S] [--act fp32|int8]\n"
           "\n"
           "Print the prompt and N new tokens (stops early at BOS/EOS or the end of\n"
           "the context), then a line with tokens/s on stderr.\n"
           "\n"
           "  --teacher M     llama2.c checkpoint (default: $ONEBIT_TEACHER, models/stories260K.bin)\n"
           "  --student S     a 1-bit student (.onebit) instead of the teacher\n"
           "  --tokenizer T   llama2.c tokenizer.bin (default: beside the teacher; a\n"
           "                  student's own tokenizer)\n"
           "  --prompt TEXT   prompt (default: empty, start from BOS)\n"
           "  -n N            new tokens (default 256)\n"
           "  --temp X        temperature, 0 = greedy (default 1.0)\n"
           "  --top-p P       nucleus sampling threshold, 0 or 1 = off (default 0.9)\n"
           "  --seed S        random seed (default: time)\n"
           "  --act A         a student's activations: fp32 (default, exact) or int8\n"
           "                  (faster batched kernels, slightly lossy; see the man page)\n");
}

static int print_piece(void *user, int token, const char *piece, int is_prompt)
{
    (void)user; (void)token; (void)is_prompt;
    if (tok_piece_printable(piece)) fputs(piece, stdout);
    fflush(stdout);
    return 0;
}

int cli_generate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"teacher", required_argument, 0, 'm'}, {"tokenizer", required_argument, 0, 'z'},
        {"prompt", required_argument, 0, 'i'},  {"temp", required_argument, 0, 't'},
        {"top-p", required_argument, 0, 'p'},   {"seed", required_argument, 0, 's'},
        {"student", required_argument, 0, 'S'}, {"act", required_argument, 0, 'A'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *teacher = NULL, *tokenizer = NULL, *prompt = "", *student = NULL;
    GenParams gp = {256, 1.0f, 0.9f, 0};
    int seeded = 0, rc0;
    long lv;
    double dv;
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":n:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': teacher = optarg; break;
        case 'S': student = optarg; break;
        case 'A': if ((rc0 = cli_set_act("generate", optarg))) return rc0; break;
        case 'z': tokenizer = optarg; break;
        case 'i': prompt = optarg; break;
        case 'n':
            if (ob_parse_int(optarg, 0, 1 << 24, &lv)) return cli_usage_error("generate", "-n needs a nonnegative integer, not '%s'", optarg);
            gp.n_new = (int)lv;
            break;
        case 't':
            if (ob_parse_float(optarg, &dv) || dv < 0) return cli_usage_error("generate", "--temp needs a number >= 0, not '%s'", optarg);
            gp.temperature = (float)dv;
            break;
        case 'p':
            if (ob_parse_float(optarg, &dv) || dv < 0 || dv > 1) return cli_usage_error("generate", "--top-p needs a number in [0,1], not '%s'", optarg);
            gp.topp = (float)dv;
            break;
        case 's':
            if (ob_parse_int(optarg, 0, __LONG_MAX__, &lv)) return cli_usage_error("generate", "--seed needs a nonnegative integer, not '%s'", optarg);
            gp.seed = (uint64_t)lv;
            seeded = 1;
            break;
        case 'h': help(); return EXIT_OK;
        case ':': return cli_usage_error("generate", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("generate", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("generate", "unexpected argument '%s'", argv[optind]);
    if (teacher && student) return cli_usage_error("generate", "--teacher and --student exclude each other");
    if (!seeded) gp.seed = (uint64_t)(ob_now() * 1e6);
    if (gp.seed == 0) gp.seed = 1; /* xorshift needs a nonzero state */
    Model m;
    Tokenizer t;
    char err[OB_ERRLEN];
    if (open_model(teacher, student, tokenizer, &m, &t, err)) return cli_error("%s", err);
    GenStats st;
    int rc = gen_run(&m, &t, prompt, &gp, print_piece, NULL, &st, err);
    printf("\n");
    fflush(stdout);
    if (rc) rc = cli_error("%s", err);
    else if (st.generated > 0)
        fprintf(stderr, "achieved tok/s: %f (%d tokens)\n", st.seconds > 0 ? st.generated / st.seconds : 0.0, st.generated);
    tok_free(&t);
    model_free(&m);
    return rc;
}
