/* tasks.h -- zero-shot multiple-choice tasks (ARC, PIQA, BoolQ, WinoGrande,
 * tinystories_mc) read from llm-foundry's JSONL files and scored the way
 * lm-eval-harness scores loglikelihood requests.
 *
 * Every choice of an item is one request (context, continuation):
 * - multiple choice ({"query","choices","gold"}): context = query,
 *   continuation = " " + choice (the harness's target delimiter);
 * - schema (winogrande, {"context_options","continuation","gold"}): context =
 *   the choice's context option, continuation = " " + the shared
 *   continuation (partial scoring).
 * A request is tokenized as the harness's _encode_pair does: whitespace at
 * the end of the context moves to the front of the continuation; the whole
 * string and the context are encoded separately (with BOS) and the
 * continuation's tokens are the whole encoding's tokens after the first
 * len(context encoding). Its score is the sum of the log-probabilities of
 * the continuation's tokens after the context's tokens; when the two exceed
 * the model's context they are truncated from the left (the harness's
 * (ctx + cont)[-(seq_len + 1):]). A continuation longer than the model's
 * context (the harness fails on those) is cut, from its end, into chunks
 * of seq_len tokens, each scored in the (seq_len + 1)-token window that ends
 * with it, so that every token of it is scored.
 * acc counts the items whose best score (first on ties) is the gold one;
 * acc_norm does so with score / the choice's length in characters (Unicode
 * code points of the choice, delimiter excluded; a schema item's choices
 * share their continuation, so there acc_norm = acc). */
#ifndef OB_TASKS_H
#define OB_TASKS_H

#include "model/model.h"
#include "format/tokenizer.h"

typedef enum { TASK_MC = 0, TASK_SCHEMA = 1 } TaskFormat;

typedef struct {
    int n_choices;
    char **ctx;      /* (n_choices) context of each choice's request */
    char **cont;     /* (n_choices) continuation, delimiter included */
    int *norm_len;   /* (n_choices) characters acc_norm divides by */
    int gold;
    int line;        /* in the file, for messages */
} TaskItem;

typedef struct {
    const char *name;    /* a static string: one of task_names */
    TaskFormat format;
    int n_items;
    TaskItem *items;
} Task;

/* the known task names, NULL-terminated */
extern const char *const task_names[];
/* the format of a known task name; -1 when unknown */
int task_format_of(const char *name);
/* "arc_easy, arc_challenge, ..." (a static string) */
const char *task_names_list(void);

/* read the JSONL file of task `name` (at most `limit` items when limit > 0);
 * blank lines are skipped. Errors name the file, line and field. */
int task_load(Task *t, const char *name, const char *path, int limit, char *err);
/* the same from text in memory; `what` names it in errors */
int task_parse(Task *t, const char *name, const char *text, const char *what, int limit, char *err);
void task_free(Task *t);

/* the harness's split of a request into context and continuation tokens
 * (see above); both malloc'd (also on an error) */
int task_encode_pair(const Tokenizer *tok, const char *ctx, const char *cont, int **ctx_tok, int *n_ctx,
                     int **cont_tok, int *n_cont, char *err);

typedef struct {
    int n;                    /* items scored */
    int *choice0;             /* (n + 1) offset of item i's choices in ll */
    double *ll;               /* (choices) sum of log-probabilities */
    int *pred, *pred_norm;    /* (n) argmax of ll, of ll / norm_len */
    int correct, correct_norm;
    double acc, acc_stderr, acc_norm, acc_norm_stderr;
    long tokens;              /* tokens run through the model */
    double seconds;
} TaskResult;

/* score every item of t with m. threads > 1 scores items in parallel, each
 * thread with its own activations and KV cache; m's forward must allow
 * concurrent callers (a dense model's OpenBLAS calls, a student's 1-bit
 * layers) and pays best when its products run on the calling thread alone
 * (OpenBLAS at one thread, a student's kernels on a one-thread pool: the
 * caller sets that up). Results do not depend on threads. */
/* progress (may be NULL) is called on the calling thread, at most every
 * 0.25 s and once at the end, with the items scored so far. */
int task_score(const Model *m, const Tokenizer *tok, const Task *t, int threads,
               void (*progress)(void *user, int done, int total), void *user, TaskResult *r, char *err);
void task_result_free(TaskResult *r);

/* sample standard error of the mean of n 0/1 values with mean p, as
 * lm-eval-harness reports it: sqrt(p (1 - p) / (n - 1)); NAN when n < 2 */
double task_stderr(double p, int n);
/* acc, acc_norm and their standard errors from r->ll (sets pred*, correct*) */
void task_metrics(const Task *t, TaskResult *r);
/* Unicode code points of UTF-8 text (bytes 10xxxxxx not counted) */
int task_utf8_len(const char *s);

#endif
