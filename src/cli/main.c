/* main.c -- entry point of onebit-tui: dispatches to a headless subcommand,
 * or starts the workbench (ui/, linked into the program only) when there is
 * none. No curses here. */
#include <stdio.h>
#include <string.h>

#include "base/blas.h"
#include "cli/cli.h"
#include "config.h"
#include "ui/tui.h"

/* a heading row of the command list in --help */
#define CLI_GROUP(title) {"", NULL, title}

const CliCommand cli_commands[] = {
    CLI_GROUP("Run a model"),
    {"generate", cli_generate, "generate text with a teacher or a 1-bit student"},
    {"chat", cli_chat, "a conversation in the terminal, with the model's chat template"},
    {"eval", cli_eval, "perplexity on a text file, or zero-shot accuracy on a task (--task)"},
    {"bench", cli_bench, "benchmarks: forward, gemv, membw, train"},
    CLI_GROUP("Look at a teacher"),
    {"inspect", cli_inspect, "per-layer SVID errors, sign balance and 1-bit sizes of a teacher"},
    {"synth", cli_synth, "a random-weight teacher of a real shape (HF directory or GGUF)"},
    CLI_GROUP("Make, keep and move students"),
    {"quantize", cli_quantize, "a 1-bit student from a teacher without training (SVID/XNOR)"},
    {"train", cli_train, "distil a 1-bit student from the teacher (QAT), with checkpoints"},
    {"runs", cli_runs, "list, show, curves, delete and export recorded training runs"},
    {"export", cli_export, "students, start checkpoints and data to/from the OneBit authors' formats"},
    {"convert", cli_export, "the same as export (--to for --format)"},
    {"import", cli_import, "a run trained elsewhere (the OneBit authors' trainer) into the run store"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: onebit-tui [--teacher M] [--tokenizer T] [--db F] [--ascii] [--no-color] [--no-mouse]\n"
            "       onebit-tui COMMAND [OPTIONS]\n"
            "       onebit-tui --help | --version\n"
            "\n"
            "Make a 1-bit (OneBit) model of a LLaMA-family language model.\n"
            "Without a command: the full-screen workbench (see man onebit-tui).\n");
    for (const CliCommand *c = cli_commands; c->name; c++) {
        if (c->run) fprintf(f, "  %-10s %s\n", c->name, c->summary);
        else fprintf(f, "\n%s:\n", c->summary);
    }
    fprintf(f,
            "\n"
            "'onebit-tui COMMAND --help' describes a command's options.\n"
            "Exit status: 0 ok, 1 runtime error, 2 usage error.\n"
            "Report bugs to: " PACKAGE_BUGREPORT "\n");
}

int main(int argc, char **argv)
{
    /* this thread owns OpenBLAS's thread count (base/blas.h): OpenBLAS's
     * default until a subcommand's --threads, before it starts threads */
    blas_threads_init(0);
    if (argc < 2) return ui_main(argc, argv);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("onebit-tui " PACKAGE_VERSION "\n");
        return EXIT_OK;
    }
    if (argv[1][0] == '-') return ui_main(argc, argv); /* workbench options */
    for (const CliCommand *c = cli_commands; c->name; c++)
        if (c->run && !strcmp(argv[1], c->name)) return c->run(argc - 1, argv + 1);
    return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
}
