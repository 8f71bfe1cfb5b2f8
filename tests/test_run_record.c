/* tests/test_run_record.c -- the run record of `train --db` and the
 * workbench (db/train_db.c) without a model: two runs taken over for a
 * resume in one process keep their own checkpoint paths; a run's options
 * go into the store and come back through the option table (SQLite's JSON
 * in between); stored options out of bounds are refused with the run and
 * the option named, by train_db_load_opts and by `train --db --resume`.
 * Single-threaded (and one child process). */
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "db/db.h"
#include "base/opt.h"
#include "db/train_db.h"
#include "dbtest.h"
#include "test.h"

/* a stopped run with one checkpoint file at path; returns its id */
static int64_t stopped_run(Db *db, const char *name, const char *ckpt)
{
    char err[OB_ERRLEN];
    FILE *f = fopen(ckpt, "w");
    if (f) { fputs("ckpt", f); fclose(f); }
    int64_t id = db_run_create(db, name, 0, "{\"steps\":10,\"seq-len\":8,\"batch\":1}", 10, err);
    CHECK(id > 0, "create %s: %s", name, err);
    CHECK(db_checkpoint_put(db, id, 5, ckpt, "00", err) == 0, "checkpoint: %s", err);
    CHECK(db_run_set_status(db, id, RUN_STOPPED, "stopped", err) == 0, "stop: %s", err);
    return id;
}

static void two_resumes(void)
{
    char err[OB_ERRLEN];
    Db *db = db_open(tmp("runs.db"), 0, err);
    CHECK(db != NULL, "open: %s", err);
    if (!db) return;
    char a[600], b[600];
    snprintf(a, sizeof a, "%s", tmp("a.ckpt"));
    snprintf(b, sizeof b, "%s", tmp("b.ckpt"));
    stopped_run(db, "a", a);
    stopped_run(db, "b", b);
    db_close(db);

    SessionOpts oa, ob;
    session_opts_init(&oa);
    session_opts_init(&ob);
    oa.resume = ob_strdup("a");
    ob.resume = ob_strdup("b");
    TrainDb *ta = NULL, *tb = NULL;
    CHECK(train_db_begin(&ta, tmp("runs.db"), &oa, "", NULL, err) == 0, "begin a: %s", err);
    CHECK(train_db_begin(&tb, tmp("runs.db"), &ob, "", NULL, err) == 0, "begin b: %s", err);
    CHECK(oa.resume_ckpt && !strcmp(oa.resume_ckpt, a), "run a resumes from its own checkpoint: %s",
          oa.resume_ckpt ? oa.resume_ckpt : "(null)");
    CHECK(ob.resume_ckpt && !strcmp(ob.resume_ckpt, b), "run b resumes from its own checkpoint: %s",
          ob.resume_ckpt ? ob.resume_ckpt : "(null)");
    if (ta) train_db_end(ta, 1, err);
    if (tb) train_db_end(tb, 1, err);
    session_opts_free(&oa);
    session_opts_free(&ob);
}

static char want[128]; /* the error about run "bad" */

static void stored_options(void)
{
    char err[OB_ERRLEN];
    Db *db = db_open(tmp("runs.db"), 0, err);
    CHECK(db != NULL, "open: %s", err);
    if (!db) return;
    /* written by the rows, stored by SQLite, read back by the rows */
    SessionOpts o, r;
    session_opts_init(&o);
    char *argv[] = {"train", "--self-generate", "40", "--data-cache", "cache", "--steps", "150", "--seq-len", "32",
                    "--batch", "2", "--lr", "3e-4", "--lr-min", "1e-5", "--kl-scale", "0.5", "--init", "svd", "--seed",
                    "4611686018427387905", "--eval-windows", "4", "--out", "s.onebit"};
    CHECK(opt_parse_argv(session_opts, &o, 25, argv, err) == 0, "parse: %s", err);
    char *j = opt_to_json(session_opts, &o);
    int64_t id = db_run_create(db, "stored", 0, j, 150, err);
    free(j);
    CHECK(id > 0, "create: %s", err);
    session_opts_init(&r);
    CHECK(train_db_load_opts(db, id, &r, err) == 0, "load: %s", err);
    CHECK(r.self_generate == 40 && r.cfg.steps == 150 && r.cfg.seq_len == 32 && r.cfg.batch == 2 && r.cfg.lr == 3e-4f &&
              r.cfg.lr_min == 1e-5f && r.cfg.kl_scale == 0.5f && r.cfg.init == 1 && r.cfg.seed == 4611686018427387905ull &&
              r.cfg.max_eval_windows == 4 && r.cfg.warmup == -1 && r.data == NULL,
          "the stored options come back, the 63-bit seed exactly (%llu)", (unsigned long long)r.cfg.seed);
    CHECK(r.data_cache && r.data_cache[0] == '/' && !strcmp(r.data_cache + strlen(r.data_cache) - 6, "/cache") && r.out &&
              r.out[0] == '/',
          "paths absolute: %s %s", r.data_cache ? r.data_cache : "-", r.out ? r.out : "-");
    session_opts_free(&r);
    session_opts_free(&o);

    /* out of bounds in the record: refused, naming the run and the option */
    int64_t bad = db_run_create(db, "bad", 0, "{\"data\":\"/x.txt\",\"steps\":10,\"seq-len\":32,\"batch\":0}", 10, err);
    CHECK(bad > 0, "create: %s", err);
    db_run_set_status(db, bad, RUN_STOPPED, "stopped", err);
    session_opts_init(&r);
    snprintf(want, sizeof want, "run %lld: stored option 'batch' needs an integer from 1 to 65536, not '0'", (long long)bad);
    CHECK(train_db_load_opts(db, bad, &r, err) == -1 && strstr(err, want),
          "stored batch 0: %s", err);
    session_opts_free(&r);
    int64_t bad2 = db_run_create(db, "bad2", 0, "{\"data\":\"/x.txt\",\"steps\":10,\"seq-len\":32,\"batch\":2,\"lr\":\"fast\"}", 10, err);
    db_run_set_status(db, bad2, RUN_STOPPED, "stopped", err);
    session_opts_init(&r);
    CHECK(train_db_load_opts(db, bad2, &r, err) == -1 && strstr(err, "stored option 'lr' needs a number > 0, not 'fast'"),
          "stored lr junk: %s", err);
    session_opts_free(&r);
    db_close(db);

    /* and `train --db DB --resume RUN` says so before loading any model */
    const char *bin = getenv("ONEBIT_BIN");
    if (!bin) { printf("(ONEBIT_BIN not set: the command line is not tried)\n"); return; }
    char dbp[600];
    snprintf(dbp, sizeof dbp, "%s", tmp("runs.db"));
    char *cmd[] = {(char *)bin, "train", "--db", dbp, "--resume", "bad", NULL};
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(tmp("resume.err"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(126);
        execv(cmd[0], cmd);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    char log[4096];
    FILE *f = fopen(tmp("resume.err"), "r");
    size_t n = f ? fread(log, 1, sizeof log - 1, f) : 0;
    log[n] = 0;
    if (f) fclose(f);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(log, want),
          "train --resume of a run with a bad record: exit %d: %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, log);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/onebit-test-record.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    two_resumes();
    stored_options();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return test_done("test_run_record");
}
