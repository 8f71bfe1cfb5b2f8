/* src/cli/cmd_generate.c -- `onebit-tui generate` (print the prompt and its
 * continuation as llama2.c's run does) and `onebit-tui chat` (an interactive
 * conversation in the terminal, with the model's chat template), with
 * llama.cpp's names for the options that mean the same (-m, -p, -n, -t, -c,
 * --temp, --top-k, --top-p, --min-p, --repeat-penalty, --seed) and its
 * timings on stderr. One option struct, two row tables that share their
 * rows. Main thread only. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "base/blas.h"
#include "base/common.h"
#include "model/chat.h"
#include "model/generate.h"
#include "onebit/bitlinear.h"

typedef struct {
    char *teacher, *student, *model, *tokenizer, *prompt, *act, *system, *tmpl;
    int n, threads, ctx, top_k, repeat_last_n;
    float temp, top_p, min_p, repeat_penalty;
    long seed;                   /* -1: not given (from the clock) */
} GenOpts;

#define F(field) offsetof(GenOpts, field)
#define ALIAS(name, type, field) {name, type, F(field), OPT_ALIAS, 0, 0, NULL, NULL, NULL, NULL, NULL}
/* the model and the sampling: the rows generate and chat share */
#define MODEL_ROWS                                                                                                     \
    {"model", OPT_STR, F(model), 0, 0, 0, NULL, NULL, "M",                                                         \
     "a teacher or a 1-bit student, told apart by content\n(llama.cpp's -m)", NULL},                              \
        ALIAS("m", OPT_STR, model),                                                                                    \
        {"teacher", OPT_STR, F(teacher), 0, 0, 0, NULL, NULL, "M",                                                 \
         "a teacher (default: $ONEBIT_TEACHER, models/stories260K.bin)", NULL},                                    \
        {"student", OPT_STR, F(student), 0, 0, 0, NULL, NULL, "S",                                                 \
         "a 1-bit student (.onebit, or a OneBit checkpoint directory)", NULL},                                     \
        {"tokenizer", OPT_STR, F(tokenizer), 0, 0, 0, NULL, NULL, "T",                                             \
         "tokenizer.bin, tokenizer.json or tokenizer.model (default:\nthe model's own, or beside the teacher)", NULL}, \
        {"threads", OPT_INT, F(threads), 0, 1, 1024, NULL, NULL, "N", "threads (default: the online CPUs)", NULL},  \
        ALIAS("t", OPT_INT, threads),                                                                                  \
        {"ctx-size", OPT_INT, F(ctx), 0, 1, 1 << 24, NULL, NULL, "N", "context length (default and at most: the model's)", NULL}, \
        ALIAS("c", OPT_INT, ctx)
#define SAMPLING_ROWS                                                                                                  \
    {"n-predict", OPT_INT, F(n), 0, 0, 1 << 24, "256", NULL, "N", "new tokens (default 256; chat: per reply)", NULL}, \
        ALIAS("n", OPT_INT, n),                                                                                \
        {"temp", OPT_FLOAT, F(temp), 0, 0, INFINITY, "1", NULL, "X", "temperature, 0 = greedy (default 1.0)", NULL}, \
        {"top-k", OPT_INT, F(top_k), 0, 0, 1 << 24, "0", NULL, "K", "keep the K most likely tokens, 0 = off (default 0)", NULL}, \
        {"top-p", OPT_FLOAT, F(top_p), 0, 0, 1, "0.9", NULL, "P", "nucleus sampling threshold, 0 or 1 = off (default 0.9)", NULL}, \
        {"min-p", OPT_FLOAT, F(min_p), 0, 0, 1, "0", NULL, "P", "drop tokens below P x the most likely one's\nprobability, 0 = off (default 0)", NULL}, \
        {"repeat-penalty", OPT_FLOAT, F(repeat_penalty), 0, 0, 100, "1", NULL, "X",                                \
         "penalise the last --repeat-last-n tokens, 1 = off (default 1)", NULL},                                   \
        {"repeat-last-n", OPT_INT, F(repeat_last_n), 0, 1, 1 << 24, "64", NULL, "N", "tokens the penalty looks back (default 64)", NULL}, \
        {"seed", OPT_LONG, F(seed), 0, 0, (double)__LONG_MAX__, "-1", NULL, "S", "random seed (default: time)", NULL}, \
        {"act", OPT_STR, F(act), 0, 0, 0, NULL, NULL, "A",                                                         \
         "a student's activations: fp32 (default, exact) or int8\n(faster batched kernels, slightly lossy; see the man page)", NULL}
#define END_ROW {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL}

static const OptSpec gen_opts[] = {
    MODEL_ROWS,
    {"prompt", OPT_STR, F(prompt), 0, 0, 0, NULL, NULL, "TEXT", "prompt (default: empty, start from BOS)", NULL},
    ALIAS("p", OPT_STR, prompt),
    SAMPLING_ROWS,
    END_ROW,
};
static const OptSpec chat_opts[] = {
    MODEL_ROWS,
    {"system-prompt", OPT_STR, F(system), 0, 0, 0, NULL, NULL, "TEXT", "the system message of the conversation", NULL},
    ALIAS("sys", OPT_STR, system),
    {"chat-template", OPT_STR, F(tmpl), 0, 0, 0, NULL, NULL, "NAME",
     "none, llama2, mistral, llama3, chatml or zephyr (default:\nthe one the model ships, else none: plain completion)", NULL},
    SAMPLING_ROWS,
    END_ROW,
};
#undef F

static void gen_help(void)
{
    printf("Usage: onebit-tui generate [-m M | --teacher M | --student S] [--tokenizer T] [-p TEXT] [-n N]\n"
           "                           [--temp X] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--act fp32|int8]\n"
           "\n"
           "Print the prompt and N new tokens (stops early at BOS/EOS or the end of\n"
           "the context), then the timings on stderr.\n"
           "\n");
    opt_help_width(stdout, gen_opts, 22);
}

static void chat_help(void)
{
    printf("Usage: onebit-tui chat [-m M | --teacher M | --student S] [--sys TEXT] [--chat-template NAME]\n"
           "                       [-n N] [--temp X] [--top-k K] [--top-p P] [--min-p P] [--seed S]\n"
           "\n"
           "A conversation in the terminal: each line read from the standard input is\n"
           "a user message, the reply streams back; the conversation stays in the\n"
           "model's context (a full context starts a new one). EOF (Ctrl-D) or /exit\n"
           "ends it, /reset starts afresh. Timings of each reply on stderr.\n"
           "\n");
    opt_help_width(stdout, chat_opts, 22);
}

/* the checks and the set-up both commands share: --act, -t, the model (-m
 * told apart by content), -c; 0, or the exit code */
static int gen_open(const char *cmd, const GenOpts *o, Model *m, Tokenizer *t)
{
    char err[OB_ERRLEN];
    int given = !!o->teacher + !!o->student + !!o->model;
    if (given > 1) return cli_usage_error(cmd, "-m/--model, --teacher and --student exclude each other");
    if (o->act && cli_set_act(cmd, o->act)) return EXIT_USAGE; /* it printed why */
    if (o->threads > 0 && (bitlinear_set_threads(o->threads, err) || blas_set_threads(o->threads, err)))
        return cli_error("%s", err);
    const char *teacher = o->teacher, *student = o->student;
    if (o->model) {
        if (open_is_student(o->model)) student = o->model;
        else teacher = o->model;
    }
    if (open_model(teacher, student, o->tokenizer, m, t, err)) return cli_error("%s", err);
    if (o->ctx > m->cfg.seq_len) {
        int sl = m->cfg.seq_len;
        tok_free(t);
        model_free(m);
        return cli_usage_error(cmd, "-c %d: the model's context is %d tokens", o->ctx, sl);
    }
    if (o->ctx > 0) m->cfg.seq_len = o->ctx; /* the KV cache is sized from it */
    return EXIT_OK;
}

static GenParams gen_params(const GenOpts *o)
{
    GenParams gp = {o->n, o->temp, o->top_p, o->seed >= 0 ? (uint64_t)o->seed : (uint64_t)(ob_now() * 1e6),
                    o->top_k, o->min_p, o->repeat_penalty, o->repeat_last_n};
    if (gp.seed == 0) gp.seed = 1; /* xorshift needs a nonzero state */
    return gp;
}

/* llama.cpp's timing lines */
static void print_timings(const GenStats *st)
{
    if (st->prompt_tokens > 0)
        fprintf(stderr, "prompt eval time = %10.2f ms / %5d tokens (%8.2f ms per token, %8.2f tokens per second)\n",
                1e3 * st->prompt_seconds, st->prompt_tokens, 1e3 * st->prompt_seconds / st->prompt_tokens,
                st->prompt_seconds > 0 ? st->prompt_tokens / st->prompt_seconds : 0.0);
    if (st->generated > 0) {
        fprintf(stderr, "       eval time = %10.2f ms / %5d tokens (%8.2f ms per token, %8.2f tokens per second)\n",
                1e3 * st->seconds, st->generated, 1e3 * st->seconds / st->generated,
                st->seconds > 0 ? st->generated / st->seconds : 0.0);
        fprintf(stderr, "time to first token = %.2f ms\n", 1e3 * st->first_token_seconds);
        fprintf(stderr, "achieved tok/s: %f (%d tokens)\n", st->seconds > 0 ? st->generated / st->seconds : 0.0, st->generated);
    }
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
    GenOpts o;
    opt_defaults(gen_opts, &o);
    int rc = cli_parse_opts("generate", gen_opts, &o, argc, argv, gen_help);
    Model m;
    Tokenizer t;
    if (rc < 0) rc = gen_open("generate", &o, &m, &t);
    else { opt_free(gen_opts, &o); return rc; }
    if (rc != EXIT_OK) { opt_free(gen_opts, &o); return rc; }
    GenParams gp = gen_params(&o);
    GenStats st;
    char err[OB_ERRLEN];
    rc = gen_run(&m, &t, o.prompt ? o.prompt : "", &gp, print_piece, NULL, &st, err);
    printf("\n");
    fflush(stdout);
    if (rc) rc = cli_error("%s", err);
    else print_timings(&st);
    tok_free(&t);
    model_free(&m);
    opt_free(gen_opts, &o);
    return rc;
}

/* ---- chat ------------------------------------------------------------------- */

/* a reply's pieces into an ObBuf (user), printed as they come */
static int collect_piece(void *user, int token, const char *piece, int is_prompt)
{
    (void)token;
    if (is_prompt) return 0;
    ob_buf_put(user, piece, strlen(piece));
    if (tok_piece_printable(piece)) fputs(piece, stdout);
    fflush(stdout);
    return 0;
}

/* the conversation so far: role/text pairs, the texts malloc'd */
typedef struct {
    ChatMsg *m;
    int n, cap;
} Conv;

static void conv_add(Conv *c, const char *role, const char *text)
{
    c->m = ob_grow(c->m, (size_t)c->n, &c->cap, 16, sizeof *c->m);
    c->m[c->n++] = (ChatMsg){role, ob_strdup(text)};
}

static void conv_clear(Conv *c, int keep)
{
    for (int i = keep; i < c->n; i++) free((char *)c->m[i].text);
    c->n = keep;
}

/* one reply to the conversation in c (its last message the user's): the
 * tokens of the rendered conversation the context does not hold yet are fed
 * (all of them after a reset or when the context's tokens are not its
 * prefix), then the reply is sampled; 0, 1 when the context is full, -1 */
static int chat_turn(GenCtx *g, ChatFamily fam, int stop, const Conv *c, int n_new, ObBuf *reply, char *err)
{
    int *ids, n;
    if (chat_render(fam, g->t, c->m, c->n, &ids, &n, err)) return -1;
    int common = 0;
    while (common < g->nhist && common < n && g->hist[common] == ids[common]) common++;
    if (common < g->nhist) { /* not a continuation: start the context again */
        GenParams p = g->p;
        const Model *m = g->m;
        const Tokenizer *t = g->t;
        gen_ctx_free(g);
        if (gen_ctx_init(g, m, t, &p, err)) { free(ids); return -1; }
        common = 0;
    }
    if (n - common <= 0 || g->pos + (n - common) >= g->m->cfg.seq_len) { free(ids); return 1; }
    GenStats st = {0};
    int rc = gen_ctx_feed(g, ids + common, n - common, NULL, NULL, &st, err);
    free(ids);
    if (rc) return -1;
    reply->n = 0;
    if (reply->s) reply->s[0] = 0;
    gen_ctx_generate(g, n_new, stop, collect_piece, reply, &st);
    printf("\n");
    fflush(stdout);
    print_timings(&st);
    return 0;
}

int cli_chat(int argc, char **argv)
{
    GenOpts o;
    opt_defaults(chat_opts, &o);
    int rc = cli_parse_opts("chat", chat_opts, &o, argc, argv, chat_help);
    if (rc >= 0) { opt_free(chat_opts, &o); return rc; }
    int fam_opt = o.tmpl ? chat_family_parse(o.tmpl) : -1;
    if (o.tmpl && fam_opt < 0) {
        rc = cli_usage_error("chat", "unknown --chat-template '%s' (%s)", o.tmpl, chat_family_list());
        opt_free(chat_opts, &o);
        return rc;
    }
    Model m;
    Tokenizer t;
    if ((rc = gen_open("chat", &o, &m, &t)) != EXIT_OK) { opt_free(chat_opts, &o); return rc; }
    ChatFamily fam = fam_opt >= 0 ? (ChatFamily)fam_opt : chat_detect(t.chat_template);
    int stop = chat_stop_token(fam, &t), tty = isatty(0);
    fprintf(stderr, "chat template: %s%s; %d tokens of context. /exit or EOF ends, /reset starts again.\n",
            chat_family_name(fam), fam_opt >= 0 ? " (--chat-template)" : t.chat_template ? " (the model's)" : " (none shipped: plain completion)",
            m.cfg.seq_len);
    GenParams gp = gen_params(&o);
    GenCtx g;
    char err[OB_ERRLEN];
    Conv c = {0};
    if (o.system) conv_add(&c, "system", o.system);
    int keep = c.n;
    ObBuf reply = {0};
    char *line = NULL;
    size_t cap = 0;
    rc = EXIT_OK;
    if (gen_ctx_init(&g, &m, &t, &gp, err)) { rc = cli_error("%s", err); goto out; }
    for (;;) {
        if (tty) { fputs("> ", stdout); fflush(stdout); }
        ssize_t k = getline(&line, &cap, stdin);
        if (k < 0) break;
        while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r')) line[--k] = 0;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            conv_clear(&c, keep);
            fprintf(stderr, "(a new conversation)\n");
            continue;
        }
        if (!*line) continue;
        conv_add(&c, "user", line);
        int r = chat_turn(&g, fam, stop, &c, o.n, &reply, err);
        if (r == 1) { /* full: the new message alone in a fresh conversation */
            fprintf(stderr, "(the context of %d tokens is full: a new conversation)\n", m.cfg.seq_len);
            conv_clear(&c, keep);
            conv_add(&c, "user", line);
            r = chat_turn(&g, fam, stop, &c, o.n, &reply, err);
        }
        if (r == 1) { fprintf(stderr, "error: the message does not fit the context\n"); conv_clear(&c, keep); continue; }
        if (r < 0) { rc = cli_error("%s", err); break; }
        conv_add(&c, "assistant", reply.s ? reply.s : "");
    }
    gen_ctx_free(&g);
out:
    conv_clear(&c, 0);
    free(c.m);
    free(reply.s);
    free(line);
    tok_free(&t);
    model_free(&m);
    opt_free(chat_opts, &o);
    return rc;
}
