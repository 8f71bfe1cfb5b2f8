/* test_cli_runs.c -- `onebit-tui runs` on a database built here through
 * the db_ API: list/show/curves (text, --json, --csv), export, delete,
 * interrupted runs, usage errors (exit 2) and runtime errors (exit 1). */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/common.h"
#include "db/db.h"
#include "dbtest.h"
#include "test.h"

static const char *bin;

static char out[1 << 16], errout[1 << 14];

/* run `onebit-tui ARGS` (a shell word list), capture stdout/stderr, return the exit status */
static int run(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", bin, args, tmp("stdout"), tmp("stderr"));
    int st = system(cmd);
    test_slurp(tmp("stdout"), out, sizeof out);
    test_slurp(tmp("stderr"), errout, sizeof errout);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static int64_t fixture(const char *path)
{
    char err[OB_ERRLEN];
    Db *db = db_open(path, 0, err);
    CHECK(db != NULL, "open: %s", err);
    if (!db) return -1;
    int64_t t = db_teacher_upsert(db, "/models/stories260K.bin", "ab12", "llama2c", "{\"dim\":64}", err);
    int64_t r = db_run_create(db, "distill-a", t, "{\"lr\":0.0004,\"steps\":20,\"note\":\"a \\\"quoted\\\" one\"}", 20, err);
    CHECK(r > 0, "run: %s", err);
    for (int s = 1; s <= 12; s++) {
        DbMetric m = {s, 6.0 - 0.25 * s, 5.0 - 0.2 * s, 0.5, 4e-4, 1.25, 2000, 0.5 * s};
        db_metric_put(db, r, &m, err);
    }
    DbEval e1 = {.step = 5, .dataset = "tiny,stories", .nll = 2.5, .ppl = 12.182};
    DbEval e2 = {.step = 10, .dataset = "tiny,stories", .nll = 2.25, .ppl = 9.4877};
    DbEval e0 = {.step = 0, .dataset = "tiny,stories", .model = "teacher", .nll = 1.72, .ppl = 5.5845};
    db_eval_put(db, r, &e0, err);
    db_eval_put(db, r, &e1, err);
    db_eval_put(db, r, &e2, err);
    db_checkpoint_put(db, r, 5, "/ckpt/a-5.ckpt", "c5", err);
    db_checkpoint_put(db, r, 10, "/ckpt/a-10.ckpt", "c10", err);
    /* one file saved three times: one line, its steps */
    for (int st = 4; st <= 12; st += 4) db_checkpoint_put(db, r, st, "/ckpt/a.ckpt", "cc", err);
    FILE *f = fopen(tmp("a.onebit"), "w");
    fputs("student bytes", f);
    fclose(f);
    db_run_set_student(db, r, tmp("a.onebit"), err);
    db_run_set_status(db, r, RUN_FINISHED, "done", err);
    int64_t r2 = db_run_create(db, "second", t, "{}", 100, err);
    db_run_set_status(db, r2, RUN_FAILED, "NaN loss at step 3", err);
    db_close(db);
    return r;
}


/* runs compare: a sweep of two queued runs (one trained, with a
 * TinyStories evaluation and a tinystories_mc result; one still pending)
 * and a run of its own, by --sweep and by name */
static void test_compare(void)
{
    char err[OB_ERRLEN], a[2048], db[600];
    snprintf(db, sizeof db, "%s", tmp("cmp.db"));
    Db *h = db_open(db, 0, err);
    CHECK(h != NULL, "open: %s", err);
    if (!h) return;
    int64_t t = db_teacher_upsert(h, "/models/stories260K.bin", "ab12", "llama2c", "{}", err);
    int64_t s1 = db_run_queue(h, "sw-ste=onebit", t, "{\"ste\":\"onebit\",\"lr\":0.002,\"out\":\"/s/1.onebit\"}", 40, "sw", err);
    int64_t s2 = db_run_queue(h, "sw-ste=clip", t, "{\"ste\":\"clip\",\"lr\":0.002,\"out\":\"/s/2.onebit\"}", 40, "sw", err);
    int64_t solo = db_run_create(h, "solo", t, "{\"lr\":0.004}", 40, err);
    CHECK(s1 > 0 && s2 > 0 && solo > 0, "fixture: %s", err);
    for (int st = 1; st <= 40; st++) {
        DbMetric m = {st, 5.0, 4.0, 0.1, 2e-3, 1.0, 1000, 2.5 * st};
        db_metric_put(h, s1, &m, err);
    }
    DbEval e1 = {.step = 20, .dataset = "self-generated held-out", .model = "student", .nll = 3, .ppl = 20.0855};
    DbEval e2 = {.step = 40, .dataset = "self-generated held-out", .model = "student", .nll = 2.5, .ppl = 12.1825};
    DbEval e3 = {.step = 40, .dataset = "tinystories_train_head_sample.txt", .model = "student", .nll = 2.75, .ppl = 15.6426};
    DbEval e4 = {.step = 0, .dataset = "self-generated held-out", .model = "teacher", .nll = 1, .ppl = 2.71828};
    db_eval_put(h, s1, &e1, err);
    db_eval_put(h, s1, &e2, err);
    db_eval_put(h, s1, &e3, err);
    db_eval_put(h, s1, &e4, err);
    DbTaskResult tr = {.run_id = s1, .model = "student", .task = "tinystories_mc", .file = "/t/ts.jsonl", .items = 50,
                       .acc = 0.42, .acc_stderr = 0.07, .acc_norm = 0.4, .acc_norm_stderr = 0.07};
    CHECK(db_task_result_put(h, &tr, err) > 0, "task result: %s", err);
    db_run_set_status(h, s1, RUN_FINISHED, "finished 40 steps", err);
    db_close(h);

    snprintf(a, sizeof a, "runs compare --sweep sw --db '%s'", db);
    CHECK(run(a) == 0, "compare --sweep: %s", errout);
    CHECK(has(out, "RUN") && has(out, "ste") && !has(out, " lr ") && !has(out, " out ") && has(out, "HELD-OUT PPL") &&
              has(out, "TS_MC ACC"),
          "the varied option is the only option column:\n%s", out);
    CHECK(has(out, "sw-ste=onebit  onebit  finished") && has(out, " 12.18") && has(out, "15.643") && has(out, "0.4200") &&
              has(out, "1m40s"),
          "the trained run's row:\n%s", out);
    CHECK(has(out, "sw-ste=clip    clip    pending") && strstr(out, "sw-ste=onebit") < strstr(out, "sw-ste=clip") &&
              !has(out, "solo"),
          "the pending run, in queue order, no other runs:\n%s", out);
    snprintf(a, sizeof a, "runs compare --sweep sw --json --db '%s'", db);
    CHECK(run(a) == 0 &&
              has(out, "\"name\":\"sw-ste=onebit\",\"status\":\"finished\",\"options\":{\"ste\":\"onebit\"},\"steps\":40,"
                       "\"heldout_ppl\":12.1825,\"tinystories_ppl\":15.6426,\"tinystories_mc_acc\":0.42,\"wall\":100}") &&
              has(out, "\"options\":{\"ste\":\"clip\"},\"steps\":0,\"heldout_ppl\":null,\"tinystories_ppl\":null,"
                       "\"tinystories_mc_acc\":null,\"wall\":null}"),
          "compare --json: %s", out);
    /* by name: the options that differ between these two; a missing ste is its default */
    snprintf(a, sizeof a, "runs compare solo sw-ste=clip --json --db '%s'", db);
    CHECK(run(a) == 0 && has(out, "\"name\":\"solo\",\"status\":\"running\",\"options\":{\"lr\":\"0.004\",\"ste\":\"onebit\"}") &&
              has(out, "\"options\":{\"lr\":\"0.002\",\"ste\":\"clip\"}"),
          "compare by name: %s", out);
    snprintf(a, sizeof a, "runs compare --sweep nope --db '%s'", db);
    CHECK(run(a) == 1 && has(errout, "no runs of sweep 'nope'"), "unknown sweep: %s", errout);
    snprintf(a, sizeof a, "runs compare --db '%s'", db);
    CHECK(run(a) == 2 && has(errout, "needs RUNs or --sweep NAME"), "compare without runs: %s", errout);
    snprintf(a, sizeof a, "runs list --sweep sw --db '%s'", db);
    CHECK(run(a) == 2 && has(errout, "--sweep goes with 'compare'"), "--sweep elsewhere: %s", errout);
    snprintf(a, sizeof a, "runs compare solo nope --db '%s'", db);
    CHECK(run(a) == 1 && has(errout, "no run 'nope'"), "compare a missing run: %s", errout);
}

int main(void)
{
    bin = getenv("ONEBIT_BIN");
    if (!bin) { printf("SKIP: ONEBIT_BIN not set (run through make check)\n"); return 77; }
    if (test_tmpdir(dir, sizeof dir, "onebit-test-runs")) return 1;
    char db[600], a[2048];
    snprintf(db, sizeof db, "%s", tmp("runs.db"));

    /* nothing recorded yet */
    snprintf(a, sizeof a, "runs --db '%s'", db);
    CHECK(run(a) == 0 && has(out, "no runs recorded yet"), "empty: %s%s", out, errout);
    snprintf(a, sizeof a, "runs list --json --db '%s'", db);
    CHECK(run(a) == 0 && !strcmp(out, "[]\n"), "empty json: %s", out);
    CHECK(access(db, F_OK) != 0, "listing did not create a database");

    int64_t r = fixture(db);
    test_compare();

    snprintf(a, sizeof a, "runs list --db '%s'", db);
    CHECK(run(a) == 0, "list: %s", errout);
    CHECK(has(out, "ID") && has(out, "distill-a") && has(out, "stories260K.bin") && has(out, "finished") &&
              has(out, "12/20") && has(out, "9.488") && has(out, "second") && has(out, "failed") && has(out, "0/100"),
          "list columns:\n%s", out);
    CHECK(strstr(out, "second") < strstr(out, "distill-a"), "newest first");

    snprintf(a, sizeof a, "runs --json --db '%s'", db);
    CHECK(run(a) == 0 && out[0] == '[' && has(out, "\"name\":\"distill-a\"") && has(out, "\"status\":\"finished\"") &&
              has(out, "\"steps_done\":12") && has(out, "\"total_steps\":20") && has(out, "\"best_ppl\":9.4877") &&
              has(out, "\"best_ppl\":null") && has(out, "\"message\":\"NaN loss at step 3\""),
          "list --json: %s", out);

    snprintf(a, sizeof a, "runs show distill-a --db '%s'", db);
    CHECK(run(a) == 0 && has(out, "finished: done") && has(out, "/ckpt/a-10.ckpt") && has(out, "\"lr\":0.0004") &&
              has(out, "checkpoints  5") && has(out, "evaluations  3") && has(out, "teacher") &&
              has(out, "steps 4..12 (3 saves; holds step 12)  /ckpt/a.ckpt") && !has(out, "step 8 "),
          "show:\n%s", out);
    snprintf(a, sizeof a, "runs show %lld --json --db '%s'", (long long)r, db);
    CHECK(run(a) == 0 && has(out, "\"hparams\":{\"lr\":0.0004,\"steps\":20,\"note\":\"a \\\"quoted\\\" one\"}") &&
              has(out, "\"teacher\":{\"id\":1,\"path\":\"/models/stories260K.bin\",\"sha256\":\"ab12\"") &&
              has(out, "\"config\":{\"dim\":64}") && has(out, "{\"step\":10,\"path\":\"/ckpt/a-10.ckpt\",\"sha256\":\"c10\""),
          "show --json: %s", out);

    /* the Chat screen's kept conversations with the run's student */
    {
        char e2[OB_ERRLEN];
        Db *h = db_open(db, 0, e2);
        int64_t s1 = h ? db_chat_new_session(h, r, 0, e2) : -1;
        if (h) {
            db_chat_add(h, r, 0, s1, "user", "Once upon a time", e2);
            db_chat_add(h, r, 0, s1, "assistant", "there was a \"dog\".", e2);
            db_close(h);
        }
        snprintf(a, sizeof a, "runs chats distill-a --db '%s'", db);
        CHECK(run(a) == 0 && has(out, "-- conversation") && has(out, "user      Once upon a time") &&
                  has(out, "assistant there was a \"dog\"."),
              "chats:\n%s", out);
        snprintf(a, sizeof a, "runs chats distill-a --json --db '%s'", db);
        CHECK(run(a) == 0 && has(out, "\"role\":\"assistant\",\"text\":\"there was a \\\"dog\\\".\""), "chats --json: %s", out);
    }

    snprintf(a, sizeof a, "runs curves distill-a --csv --db '%s'", db);
    static const char head[] = "step,loss,kl,mse,lr,grad_norm,tokens_per_s,wall\n1,5.75,4.8,0.5,0.0004,1.25,2000,0.5\n";
    CHECK(run(a) == 0 && !strncmp(out, head, strlen(head)) &&
              has(out, "\n12,3,2.6,0.5,0.0004,1.25,2000,6\n"),
          "curves --csv:\n%s", out);
    int lines = 0;
    for (char *p = out; *p; p++) lines += *p == '\n';
    CHECK(lines == 13, "header + 12 rows: %d", lines);
    snprintf(a, sizeof a, "runs curves distill-a --json --db '%s'", db);
    CHECK(run(a) == 0 && has(out, "{\"step\":12,\"loss\":3,\"kl\":2.6"), "curves --json: %.200s", out);
    snprintf(a, sizeof a, "runs curves distill-a --db '%s'", db);
    CHECK(run(a) == 0 && has(out, "STEP") && has(out, "3.25"), "curves text");

    snprintf(a, sizeof a, "runs export distill-a '%s' --db '%s'", tmp("exp"), db);
    CHECK(run(a) == 0 && has(out, "exported run"), "export: %s", errout);
    test_slurp(tmp("exp/metrics.csv"), out, sizeof out);
    CHECK(has(out, "11,3.25,2.8"), "metrics.csv");
    test_slurp(tmp("exp/evals.csv"), out, sizeof out);
    CHECK(!strcmp(out, "step,model,dataset,nll,ppl\n0,teacher,\"tiny,stories\",1.72,5.5845\n5,student,\"tiny,stories\",2.5,12.182\n"
                       "10,student,\"tiny,stories\",2.25,9.4877\n"),
          "evals.csv quoted: %s", out);
    test_slurp(tmp("exp/checkpoints.csv"), out, sizeof out);
    CHECK(has(out, "step,path,sha256,time\n4,/ckpt/a.ckpt,cc,") && has(out, "\n5,/ckpt/a-5.ckpt,c5,"), "checkpoints.csv: %s", out);
    test_slurp(tmp("exp/run.json"), out, sizeof out);
    CHECK(has(out, "\"name\":\"distill-a\"") && has(out, "\"evals\":["), "run.json");
    test_slurp(tmp("exp/a.onebit"), out, sizeof out);
    CHECK(!strcmp(out, "student bytes"), "student copied");

    /* a run whose process died */
    pid_t pid = fork();
    if (pid == 0) {
        char err[OB_ERRLEN];
        Db *d = db_open(db, 0, err);
        if (d) db_run_create(d, "crashed", 1, "{}", 50, err);
        raise(SIGKILL);
        _exit(1);
    }
    waitpid(pid, NULL, 0);
    snprintf(a, sizeof a, "runs show crashed --db '%s'", db);
    CHECK(run(a) == 0 && has(out, "interrupted"), "killed run shows interrupted: %s", out);

    /* errors */
    snprintf(a, sizeof a, "runs show nope --db '%s'", db);
    CHECK(run(a) == 1 && has(errout, "error: ") && has(errout, "no run 'nope'"), "missing run: %s", errout);
    snprintf(a, sizeof a, "runs show --db '%s'", db);
    CHECK(run(a) == 2 && has(errout, "needs a RUN"), "show without RUN: %s", errout);
    CHECK(run("runs frob") == 2 && has(errout, "unknown subcommand 'frob'"), "bad subcommand: %s", errout);
    snprintf(a, sizeof a, "runs list --csv --db '%s'", db);
    CHECK(run(a) == 2, "--csv with list");
    snprintf(a, sizeof a, "runs export distill-a --db '%s'", db);
    CHECK(run(a) == 2, "export without DIR");
    CHECK(run("runs list --db") == 2, "--db without value");
    CHECK(run("runs --help") == 0 && has(out, "XDG_DATA_HOME"), "help");
    FILE *f = fopen(tmp("junk.db"), "w");
    fputs("junk junk junk junk junk junk junk junk junk junk junk junk junk junk junk junk junk junk", f);
    fclose(f);
    snprintf(a, sizeof a, "runs list --db '%s'", tmp("junk.db"));
    CHECK(run(a) == 1 && has(errout, "junk.db: not a onebit-tui database"), "junk db: %s", errout);
    snprintf(a, sizeof a, "runs list --db '%s'", dir);
    CHECK(run(a) == 1 && has(errout, "is a directory, not a database file"), "directory as --db: %s", errout);
    snprintf(a, sizeof a, "runs export distill-a '%s/run.json' --db '%s'", tmp("exp"), db);
    CHECK(run(a) == 1 && has(errout, "not a directory"), "export onto a file: %s", errout);

    /* default location */
    mkdir(tmp("xdg"), 0755);
    mkdir(tmp("xdg/onebit-tui"), 0755);
    char cp[2048];
    snprintf(cp, sizeof cp, "cp '%s' '%s'", db, tmp("xdg/onebit-tui/runs.db"));
    CHECK(system(cp) == 0, "copy");
    snprintf(a, sizeof a, "runs list");
    setenv("XDG_DATA_HOME", tmp("xdg"), 1);
    CHECK(run(a) == 0 && has(out, "distill-a"), "default --db under XDG_DATA_HOME: %s%s", out, errout);

    /* delete */
    snprintf(a, sizeof a, "runs delete distill-a --db '%s'", db);
    CHECK(run(a) == 0 && has(out, "deleted run"), "delete: %s", errout);
    snprintf(a, sizeof a, "runs show distill-a --db '%s'", db);
    CHECK(run(a) == 1, "gone after delete");
    CHECK(access(tmp("a.onebit"), F_OK) == 0, "the student file is kept");
    char err[OB_ERRLEN];
    Db *d = db_open(db, 0, err);
    DbMetric *m;
    int n = -1;
    if (d) db_metrics(d, r, &m, &n, err), free(m);
    CHECK(n == 0, "metrics deleted with the run: %d", n);
    CHECK(d && db_integrity_check(d, err) == 0, "integrity: %s", err);
    db_close(d);

    test_rmtree(dir);
    return test_done("test_cli_runs");
}
