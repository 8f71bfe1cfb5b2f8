/* src/cli/cmd_eval.c -- `onebit-tui eval`: mean NLL and perplexity on a text
 * file. The options are one table (eval_opts). Main thread only. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "db/db.h"
#include "db/train_db.h"
#include "format/loader.h"
#include "base/common.h"
#include "base/file.h"
#include "base/blas.h"
#include "model/eval.h"
#include "model/tasks.h"
#include "onebit/bitlinear.h"

typedef struct {
    char *teacher, *student, *tokenizer, *text, *split, *act, *task, *task_file, *db, *run;
    int seq_len;                 /* 0: the model's context */
    int limit;                   /* 0: every item */
    int threads;                 /* 0: online CPUs */
    int json;
} EvalOpts;

#define F(field) offsetof(EvalOpts, field)
static const OptSpec eval_opts[] = {
    {"teacher", OPT_STR, F(teacher), OPT_NOHELP, 0, 0, NULL, NULL, "M", "the teacher", NULL},
    {"student", OPT_STR, F(student), 0, 0, 0, NULL, NULL, "S",
     "evaluate a 1-bit student (.onebit, or a OneBit checkpoint\ndirectory); its own tokenizer unless --tokenizer is given", NULL},
    {"tokenizer", OPT_STR, F(tokenizer), OPT_NOHELP, 0, 0, NULL, NULL, "T", "the tokenizer", NULL},
    {"text", OPT_STR, F(text), OPT_NOHELP, 0, 0, NULL, NULL, "FILE", "the text", NULL},
    {"seq-len", OPT_INT, F(seq_len), 0, 2, 1 << 20, NULL, NULL, "L", "window length (default: the model's context)", NULL},
    {"split", OPT_STR, F(split), OPT_NOHELP, 0, 0, NULL, NULL, "SEP", "one document per SEP", NULL},
    {"act", OPT_STR, F(act), 0, 0, 0, NULL, NULL, "A", "a student's activations: fp32 (default, exact) or int8", NULL},
    {"json", OPT_FLAG, F(json), 0, 0, 1, NULL, NULL, NULL, "print {\"nll\":..,\"ppl\":..,\"tokens\":..}", NULL},
    {"task", OPT_STR, F(task), 0, 0, 0, NULL, NULL, "NAME",
     "zero-shot accuracy: arc_easy, arc_challenge, piqa, boolq,\ntinystories_mc (multiple choice) or winogrande (schema)", "With --task"},
    {"task-file", OPT_STR, F(task_file), 0, 0, 0, NULL, NULL, "F", "the task's JSONL file (llm-foundry's format)", NULL},
    {"limit", OPT_INT, F(limit), 0, 1, 1 << 30, NULL, NULL, "N", "the first N items only", NULL},
    {"threads", OPT_INT, F(threads), 0, 1, 1024, NULL, NULL, "N", "items scored in parallel, each on one thread\n(default: online CPUs)", NULL},
    {"db", OPT_STR, F(db), 0, 0, 0, NULL, NULL, "DB", "record the accuracies in the run store DB: the teacher's\nunder the teacher, the student's under its run; with\n--text, the student's perplexity as an evaluation of its run", NULL},
    {"run", OPT_STR, F(run), 0, 0, 0, NULL, NULL, "RUN", "the run (id or name) the student's result belongs to\n(default: the run whose student file it is)", NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
#undef F

static void help(void)
{
    printf("Usage: onebit-tui eval [--teacher M | --student S] [--tokenizer T] --text FILE [--seq-len L]\n"
           "                       [--split SEP] [--act fp32|int8] [--json]\n"
           "       onebit-tui eval [--teacher M] [--student S] [--tokenizer T] --task NAME --task-file FILE\n"
           "                       [--limit N] [--threads N] [--act fp32|int8] [--json]\n"
           "\n"
           "Teacher-forced mean negative log-likelihood (nats/token) and perplexity.\n"
           "Without --split the whole file is encoded once with BOS and cut into\n"
           "non-overlapping windows of L tokens; the loss covers tokens 1..L-1 of each.\n"
           "With --split SEP (e.g. '<|endoftext|>') every document is stripped, encoded\n"
           "with BOS and truncated to L tokens.\n"
           "With --task: zero-shot accuracy as lm-eval-harness scores it (acc, acc_norm\n"
           "and their standard errors; see the man page for the tokenization). With both\n"
           "--teacher and --student, both are scored and the share of the teacher's\n"
           "accuracy the student keeps is printed.\n"
           "\n");
    opt_help_width(stdout, eval_opts, 13);
}

static int64_t student_run(Db *db, const char *run, const char *student, char *err);

/* --text with --db: the student's perplexity as an evaluation of its run
 * (model student, dataset the file's name, at the run's last step), which
 * `runs show` and `runs compare` read back */
static int record_text_eval(const EvalOpts *o, double nll, char *err)
{
    Db *db = db_open(o->db, 0, err);
    if (!db) return -1;
    int64_t run = student_run(db, o->run, o->student, err);
    DbRun r;
    int rc = run > 0 ? db_run_get(db, run, &r, err) : -1;
    if (rc == 0) {
        DbEval e = {.step = r.steps_done, .model = "student", .nll = nll, .ppl = exp(nll)};
        const char *b = strrchr(o->text, '/');
        snprintf(e.dataset, sizeof e.dataset, "%s%s", b ? b + 1 : o->text, o->split ? " (documents)" : "");
        rc = db_eval_put(db, run, &e, err);
        if (rc == 0) fprintf(stderr, "recorded as an evaluation of run %lld '%s' at step %d in %s\n", (long long)run, r.name,
                             r.steps_done, db_path(db));
        db_run_free(&r);
    }
    db_close(db);
    return rc;
}

static int eval_main(const EvalOpts *o)
{
    char err[OB_ERRLEN];
    char *text;
    size_t len;
    if (ob_read_file(o->text, &text, &len, err)) return cli_error("%s", err);
    Model m;
    Tokenizer t;
    if (open_model(o->teacher, o->student, o->tokenizer, &m, &t, err)) { free(text); return cli_error("%s", err); }
    int seq_len = o->seq_len > 0 ? o->seq_len : m.cfg.seq_len;
    EvalResult r;
    int rc = EXIT_OK;
    if (eval_text(&m, &t, text, seq_len, o->split, &r, err)) rc = cli_error("%s: %s", o->text, err);
    else {
        double nll = r.nll_sum / r.tokens;
        if (o->json) printf("{\"nll\":%.6f,\"ppl\":%.6f,\"tokens\":%ld,\"windows\":%d}\n", nll, exp(nll), r.tokens, r.windows);
        else printf("nll %.6f  ppl %.6f  tokens %ld  %s %d\n", nll, exp(nll), r.tokens, o->split ? "documents" : "windows", r.windows);
        if (o->db && record_text_eval(o, nll, err)) rc = cli_error("%s", err);
    }
    free(text);
    tok_free(&t);
    model_free(&m);
    return rc;
}

static void progress(void *user, int done, int total)
{
    fprintf(stderr, "\r%s: %d/%d items", (const char *)user, done, total);
    if (done == total) fputs("\r\033[K", stderr);
}

typedef struct {
    const char *label;   /* "teacher" or "student" */
    TaskResult r;
    ModelConfig cfg;
} Scored;

/* the run a student's result goes to: --run, else the run whose student file
 * it is; 0 with a message when there is none, -1 on an error */
static int64_t student_run(Db *db, const char *run, const char *student, char *err)
{
    if (run) {
        DbRun r;
        if (db_run_find(db, run, &r, err)) return -1;
        int64_t id = r.id;
        db_run_free(&r);
        return id;
    }
    char *a = file_abs(student), *rp = realpath(student, NULL);
    int64_t id = db_run_of_student(db, a, err);
    if (id == 0 && rp) id = db_run_of_student(db, rp, err);
    free(a);
    free(rp);
    if (id == 0) ob_seterr(err, "%s: no run in the store has this student (give --run RUN)", student);
    return id;
}

/* the scored results into the run store: the teacher's under its
 * fingerprinted teacher, the student's under run_id */
static int record_results(Db *db, const char *teacher, const Task *task, const char *file, const Scored *sc, int n,
                          int64_t run_id, char *err)
{
    for (int k = 0; k < n; k++) {
        DbTaskResult r = {0};
        int is_student = sc[k].label[0] == 's';
        if (is_student) r.run_id = run_id;
        else {
            char *tp = open_resolve_teacher(teacher, err), sha[65];
            if (!tp) return -1;
            int64_t tid = loader_fingerprint(tp, sha, NULL, err) ? -1 : train_db_teacher(db, tp, sha, &sc[k].cfg, err);
            free(tp);
            if (tid < 0) return -1;
            r.teacher_id = tid;
        }
        snprintf(r.model, sizeof r.model, "%s", sc[k].label);
        snprintf(r.task, sizeof r.task, "%s", task->name);
        r.file = realpath(file, NULL);
        if (!r.file) r.file = file_abs(file);
        r.items = sc[k].r.n;
        r.acc = sc[k].r.acc;
        r.acc_stderr = sc[k].r.acc_stderr;
        r.acc_norm = sc[k].r.acc_norm;
        r.acc_norm_stderr = sc[k].r.acc_norm_stderr;
        int64_t id = db_task_result_put(db, &r, err);
        free(r.file);
        if (id < 0) return -1;
    }
    return 0;
}

static void json_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static int run_task(const char *teacher, const char *student, const char *tokenizer, const char *name,
                    const char *file, long limit, long threads, int json, const char *store, const char *run)
{
    char err[OB_ERRLEN];
    Task task;
    /* the store first: a result with nowhere to go is found out before the
     * scoring, not after it */
    Db *db = NULL;
    int64_t run_id = 0;
    if (store) {
        if (!(db = db_open(store, 0, err))) return cli_error("%s", err);
        if (student && (run_id = student_run(db, run, student, err)) <= 0) { db_close(db); return cli_error("%s", err); }
    } else if (run) return cli_usage_error("eval", "--run goes with --db");
    if (task_load(&task, name, file, (int)limit, err)) { db_close(db); return cli_error("%s", err); }
    /* items in parallel, each thread running its model's products alone:
     * OpenBLAS at one thread, the 1-bit kernels' pool at one thread (else
     * each thread's products would wait for the pool, which serves one
     * caller at a time). --threads 1 leaves both as they are. */
    if (threads > 1) {
        if (blas_set_threads(1, err) || bitlinear_set_threads(1, err)) { /* the students loaded below take it */
            task_free(&task);
            return cli_error("%s", err);
        }
    }
    /* the teacher when asked for or when no student is given, then the student */
    const char *which[2] = {NULL, NULL};
    int nm = 0;
    if (teacher || !student) which[nm++] = "teacher";
    if (student) which[nm++] = "student";
    Scored sc[2];
    int rc = EXIT_OK, done = 0;
    for (int k = 0; k < nm && rc == EXIT_OK; k++) {
        Model m;
        Tokenizer t;
        int is_student = which[k][0] == 's';
        if (open_model(is_student ? NULL : teacher, is_student ? student : NULL, tokenizer, &m, &t, err)) {
            rc = cli_error("%s", err);
            break;
        }
        sc[k].label = which[k];
        sc[k].cfg = m.cfg;
        if (task_score(&m, &t, &task, (int)threads, isatty(2) ? progress : NULL, (void *)which[k], &sc[k].r, err)) {
            if (isatty(2)) fputc('\n', stderr);
            rc = cli_error("%s: %s", file, err);
        } else done++;
        tok_free(&t);
        model_free(&m);
    }
    if (rc == EXIT_OK) {
        double kept = NAN, kept_norm = NAN;
        if (done == 2) {
            if (sc[0].r.acc > 0) kept = sc[1].r.acc / sc[0].r.acc;
            if (sc[0].r.acc_norm > 0) kept_norm = sc[1].r.acc_norm / sc[0].r.acc_norm;
        }
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "task", task.name);
            cJSON_AddNumberToObject(o, "items", task.n_items);
            for (int k = 0; k < done; k++) {
                cJSON *e = cJSON_AddObjectToObject(o, sc[k].label);
                json_num(e, "acc", sc[k].r.acc);
                json_num(e, "acc_stderr", sc[k].r.acc_stderr);
                json_num(e, "acc_norm", sc[k].r.acc_norm);
                json_num(e, "acc_norm_stderr", sc[k].r.acc_norm_stderr);
                cJSON_AddNumberToObject(e, "correct", sc[k].r.correct);
                cJSON_AddNumberToObject(e, "correct_norm", sc[k].r.correct_norm);
                cJSON_AddNumberToObject(e, "tokens", (double)sc[k].r.tokens);
                json_num(e, "seconds", sc[k].r.seconds);
            }
            if (done == 2) {
                cJSON *e = cJSON_AddObjectToObject(o, "kept");
                json_num(e, "acc", kept);
                json_num(e, "acc_norm", kept_norm);
            }
            char *txt = cJSON_PrintUnformatted(o);
            printf("%s\n", txt);
            free(txt);
            cJSON_Delete(o);
        } else {
            printf("task %s  items %d  (%s)\n", task.name, task.n_items, file);
            for (int k = 0; k < done; k++)
                printf("%-8s acc %.4f +- %.4f  acc_norm %.4f +- %.4f  tokens %ld  %.1fs\n", sc[k].label,
                       sc[k].r.acc, sc[k].r.acc_stderr, sc[k].r.acc_norm, sc[k].r.acc_norm_stderr, sc[k].r.tokens,
                       sc[k].r.seconds);
            if (done == 2) {
                if (isfinite(kept)) printf("student keeps %.1f%% of the teacher's acc", 100 * kept);
                else printf("student keeps ? of the teacher's acc (the teacher's is 0)");
                if (isfinite(kept_norm)) printf(", %.1f%% of its acc_norm\n", 100 * kept_norm);
                else printf(", ? of its acc_norm (the teacher's is 0)\n");
            }
        }
    }
    if (rc == EXIT_OK && db) {
        if (record_results(db, teacher, &task, file, sc, done, run_id, err)) rc = cli_error("%s", err);
        else fprintf(stderr, "recorded %d result%s of %s in %s\n", done, done == 1 ? "" : "s", task.name, db_path(db));
    }
    db_close(db);
    for (int k = 0; k < done; k++) task_result_free(&sc[k].r);
    task_free(&task);
    return rc;
}

int cli_eval(int argc, char **argv)
{
    EvalOpts o;
    opt_defaults(eval_opts, &o);
    int rc = cli_parse_opts("eval", eval_opts, &o, argc, argv, help);
    if (rc < 0 && o.act && cli_set_act("eval", o.act)) rc = EXIT_USAGE; /* it printed why */
    if (rc < 0 && (o.task || o.task_file)) {
        if (!o.task) rc = cli_usage_error("eval", "--task-file needs --task NAME (%s)", task_names_list());
        else if (task_format_of(o.task) < 0) rc = cli_usage_error("eval", "unknown task '%s' (known: %s)", o.task, task_names_list());
        else if (!o.task_file) rc = cli_usage_error("eval", "--task %s needs --task-file FILE", o.task);
        else if (o.text || o.split || o.seq_len) rc = cli_usage_error("eval", "--text, --split and --seq-len do not go with --task");
        else rc = run_task(o.teacher, o.student, o.tokenizer, o.task, o.task_file, o.limit,
                           o.threads ? o.threads : pool_default_threads(), o.json, o.db, o.run);
        opt_free(eval_opts, &o);
        return rc;
    }
    if (rc < 0 && (o.limit || o.threads)) rc = cli_usage_error("eval", "--limit and --threads go with --task");
    if (rc < 0 && (o.db || o.run) && !o.student)
        rc = cli_usage_error("eval", "--db and --run record a student's perplexity (--student S) or task results (--task)");
    if (rc < 0 && o.run && !o.db) rc = cli_usage_error("eval", "--run goes with --db");
    if (rc < 0 && !o.text) rc = cli_usage_error("eval", "--text FILE (or --task NAME --task-file FILE) is required");
    if (rc < 0 && o.teacher && o.student) rc = cli_usage_error("eval", "--teacher and --student exclude each other");
    if (rc >= 0) { opt_free(eval_opts, &o); return rc; }
    rc = eval_main(&o);
    opt_free(eval_opts, &o);
    return rc;
}
