/* test_train_db.c -- crash safety of `train --db` for real: train in a
 * child process, SIGKILL it mid-run, then the database passes
 * PRAGMA integrity_check, the run reads (and is stored) as interrupted,
 * `train --db DB --resume RUN` finishes it with the same step numbering
 * (every step 1..S recorded once, no holes), and no more than one
 * checkpoint interval of the recorded steps is re-done. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/common.h"
#include "base/file.h"
#include "train/data.h"
#include "db/db.h"
#include "db/db_internal.h"
#include "db/db_svid.h"
#include "dbtest.h"
#include "test.h"

#define STEPS 120
#define CKPT_EVERY 20
#define KILL_AFTER 50

static pid_t spawn(char *const argv[], const char *out)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void nap(void)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* steps recorded so far for the run named `name`, -1 when not yet there */
static int steps_done(const char *path, const char *name)
{
    char err[OB_ERRLEN];
    if (access(path, F_OK) != 0) return -1;
    Db *db = db_open(path, 1, err);
    if (!db) return -1;
    DbRun r;
    int s = -1;
    if (db_run_find(db, name, &r, err) == 0) {
        s = r.steps_done;
        db_run_free(&r);
    }
    db_close(db);
    return s;
}

int main(void)
{
    REQUIRE_SHARED(teacher, "models/stories260K.bin");
    REQUIRE_SHARED(tokpath, "models/tok512.bin");
    REQUIRE_SHARED(datapath, "data/tinystories_train_head_sample.txt");
    const char *bin = getenv("ONEBIT_BIN");
    if (!bin) { printf("SKIP: ONEBIT_BIN not set (run through make check)\n"); return 77; }
    if (test_tmpdir(dir, sizeof dir, "onebit-test-traindb")) return 1;
    char err[OB_ERRLEN];

    /* the first 150 kB of the stories, as cli_train.sh uses */
    if (test_copy_head(datapath, tmp("stories.txt"), 150000)) return 1;

    char data[600], db[600], out[600], steps[16], every[16];
    snprintf(data, sizeof data, "%s", tmp("stories.txt"));
    snprintf(db, sizeof db, "%s", tmp("runs.db"));
    snprintf(out, sizeof out, "%s", tmp("s.onebit"));
    snprintf(steps, sizeof steps, "%d", STEPS);
    snprintf(every, sizeof every, "%d", CKPT_EVERY);
    char *train[] = {(char *)bin, "train", "--teacher", (char *)teacher, "--tokenizer", (char *)tokpath, "--data", data,
                     "--split", "<|endoftext|>", "--steps", steps, "--seq-len", "32", "--batch", "2", "--log-every", "1",
                     "--ckpt-every", every, "--eval-windows", "4", "--out", out, "--db", db, "--name", "killme", NULL};
    pid_t pid = spawn(train, tmp("train.out"));
    int s = -1, status, exited = 0;
    for (int i = 0; i < 30000 && s < KILL_AFTER; i++) { /* a hang guard, not a timing assertion */
        if (waitpid(pid, &status, WNOHANG) == pid) { exited = 1; break; }
        nap();
        s = steps_done(db, "killme");
    }
    CHECK(!exited && s >= KILL_AFTER, "training ran to step %d before the kill", s);
    if (exited || s < KILL_AFTER) {
        char cat[700];
        snprintf(cat, sizeof cat, "cat '%s' >&2", tmp("train.out"));
        if (system(cat)) {}
        kill(pid, SIGKILL);
        return test_done("test_train_db");
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child was killed");

    /* after the crash */
    int recorded = steps_done(db, "killme");
    Db *d = db_open(db, 0, err);
    CHECK(d != NULL, "open after SIGKILL: %s", err);
    if (!d) return test_done("test_train_db");
    CHECK(db_integrity_check(d, err) == 0, "integrity_check after SIGKILL: %s", err);
    DbRun r;
    CHECK(db_run_find(d, "killme", &r, err) == 0, "run: %s", err);
    CHECK(r.status == RUN_INTERRUPTED, "the killed run is interrupted, got %s", run_status_name(r.status));
    int ckpt = r.last_ckpt_step;
    CHECK(ckpt >= CKPT_EVERY && ckpt % CKPT_EVERY == 0, "a checkpoint was recorded before the kill: %d", ckpt);
    CHECK(recorded >= ckpt, "steps recorded %d >= checkpoint %d", recorded, ckpt);
    int64_t id = r.id;
    db_run_free(&r);
    CHECK(q_int(d->h, "SELECT count(*) FROM runs WHERE name='killme' AND status='interrupted'") == 1, "stored as interrupted");
    db_close(d);

    /* resume by id, from another directory */
    char idstr[32];
    snprintf(idstr, sizeof idstr, "%lld", (long long)id);
    char *resume[] = {(char *)bin, "train", "--db", db, "--resume", idstr, NULL};
    mkdir(tmp("other"), 0755);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    if (chdir(tmp("other"))) {}
    pid = spawn(resume, tmp("resume.out"));
    waitpid(pid, &status, 0);
    if (chdir(cwd)) {}
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "resume exits 0 (status %d)", status);
    char log[1 << 16];
    test_slurp(tmp("resume.out"), log, sizeof log);
    const char *at = strstr(log, "resumed from ");
    at = at ? strstr(at, " at step ") : NULL;
    int from = at ? atoi(at + 9) : -1;
    CHECK(from >= ckpt, "resumed from step %d (recorded checkpoint %d)", from, ckpt);
    CHECK(recorded - from <= CKPT_EVERY, "at most one checkpoint interval lost: recorded %d, resumed at %d", recorded, from);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) fprintf(stderr, "%s\n", log);
    printf("killed with %d steps recorded, last recorded checkpoint %d, resumed at step %d (%d re-done)\n", recorded, ckpt,
           from, recorded - from);

    d = db_open(db, 0, err);
    CHECK(d != NULL, "open after resume: %s", err);
    if (!d) return test_done("test_train_db");
    CHECK(db_integrity_check(d, err) == 0, "integrity: %s", err);
    CHECK(db_run_get(d, id, &r, err) == 0 && r.status == RUN_FINISHED && r.steps_done == STEPS && r.total_steps == STEPS,
          "finished: %s %d/%d", run_status_name(r.status), r.steps_done, r.total_steps);
    CHECK(r.student_path && !strcmp(r.student_path, out) && access(out, F_OK) == 0, "student recorded: %s",
          r.student_path ? r.student_path : "(none)");
    CHECK(isfinite(r.best_ppl), "held-out perplexity recorded");
    db_run_free(&r);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) = %d AND min(step) = 1 AND max(step) = %d FROM metrics WHERE run_id=%lld",
             STEPS, STEPS, (long long)id);
    CHECK(q_int(d->h, sql) == 1, "every step 1..%d once, same numbering across the resume", STEPS);
    /* The trainer rewrites one checkpoint file: a kill can land after the
     * file holds step `from` but before that row was committed (then the
     * resume starts at from > ckpt). What must hold: every checkpoint up to
     * the last recorded one, and every one after the resume, has a row with
     * an absolute path. */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM checkpoints WHERE run_id=%lld AND path LIKE '/%%' AND step <= %d",
             (long long)id, ckpt);
    CHECK(q_int(d->h, sql) == ckpt / CKPT_EVERY, "checkpoints up to %d recorded with absolute paths: %lld", ckpt,
          q_int(d->h, sql));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM checkpoints WHERE run_id=%lld AND path LIKE '/%%' AND step > %d",
             (long long)id, from);
    CHECK(q_int(d->h, sql) == (STEPS - from) / CKPT_EVERY, "checkpoints after the resume at %d recorded: %lld", from,
          q_int(d->h, sql));
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM evals WHERE run_id=%lld AND step=0 AND model IN ('teacher','ptq-xnor','ptq-svid'))"
             " * 1000 + (SELECT count(*) FROM evals WHERE run_id=%lld AND step=%d AND model='student')",
             (long long)id, (long long)id, STEPS);
    CHECK(q_int(d->h, sql) == 3001, "teacher/PTQ evals at step 0 once, the student's at the end: %lld", q_int(d->h, sql));
    /* the final checkpoint's hash is the file's */
    DbCheckpoint c;
    char hex[65];
    CHECK(db_checkpoint_latest(d, id, &c, err) == 1 && c.step == STEPS && file_sha256(c.path, hex, err) == 0 &&
              !strcmp(hex, c.sha256),
          "latest checkpoint sha256 '%s' matches the file", c.sha256);
    free(c.path);
    db_close(d);

    /* a finished run cannot be resumed; an unknown one is named */
    pid = spawn(resume, tmp("again.out"));
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "resuming a finished run fails");
    char *bad[] = {(char *)bin, "train", "--db", db, "--resume", "nope", NULL};
    pid = spawn(bad, tmp("bad.out"));
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "resuming an unknown run fails");

    /* inspect --db stores the teacher's layer statistics under the same teacher */
    char *insp[] = {(char *)bin, "inspect", "--teacher", (char *)teacher, "--threads", "1", "--csv", "--db", db, NULL};
    pid = spawn(insp, tmp("inspect.out"));
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "inspect --db exits 0 (status %d)", status);
    d = db_open(db, 1, err);
    CHECK(d != NULL, "open: %s", err);
    if (d) {
        long long tid = q_int(d->h, "SELECT teacher_id FROM runs WHERE name='killme'");
        snprintf(sql, sizeof sql, "SELECT count(*) FROM layer_stats WHERE teacher_id=%lld", tid);
        CHECK(tid > 0 && q_int(d->h, sql) == 35, "35 linears stored for the run's teacher %lld", tid);
        LayerStats *ls;
        int nl = 0;
        CHECK(db_layer_stats_load(d, tid, &ls, &nl, err) == 0 && nl == 35 && !strcmp(ls[0].name, "layers.0.wq") &&
                  ls[0].rows == 64 && ls[0].bins == SVID_BINS && ls[0].nmf_err > 0 && ls[0].nmf_err < 1,
              "load them back: %d %s", nl, err);
        if (nl) free(ls);
        db_close(d);
    }

    /* a database that cannot take the run: clear errors before any training */
    FILE *j = fopen(tmp("junk.db"), "w");
    fputs("junk junk junk junk junk junk junk junk junk junk junk junk junk junk junk junk junk junk", j);
    fclose(j);
    char junk[600];
    snprintf(junk, sizeof junk, "%s", tmp("junk.db"));
    train[25] = junk; /* --db */
    train[27] = "other"; /* --name */
    pid = spawn(train, tmp("junk.out"));
    waitpid(pid, &status, 0);
    test_slurp(tmp("junk.out"), log, sizeof log);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1 && strstr(log, "junk.db: not a onebit-tui database"),
          "train --db on a junk file: %s", log);
    /* locked by another process for longer than the busy timeout */
    sqlite3 *h = NULL;
    sqlite3_open(db, &h);
    CHECK(sqlite3_exec(h, "BEGIN EXCLUSIVE; UPDATE runs SET message=message;", NULL, NULL, NULL) == SQLITE_OK, "lock");
    train[25] = db;
    pid = spawn(train, tmp("locked.out"));
    waitpid(pid, &status, 0);
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(h);
    test_slurp(tmp("locked.out"), log, sizeof log);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1 && strstr(log, "runs.db: database is locked by another process"),
          "train --db on a locked database: %s", log);
    d = db_open(db, 1, err);
    CHECK(d && db_run_find(d, "other", &r, err) == -1, "no half-made run left behind");
    CHECK(d && db_integrity_check(d, err) == 0, "integrity: %s", err);
    db_close(d);

    test_rmtree(dir);
    return test_done("test_train_db");
}
