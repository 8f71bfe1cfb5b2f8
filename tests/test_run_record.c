/* tests/test_run_record.c -- the run record of `train --db` and the
 * workbench (db/train_db.c) without a model: two runs taken over for a
 * resume in one process keep their own checkpoint paths. Single-threaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "db/db.h"
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

    TrainConfig ca, cb;
    trainer_config_default(&ca);
    trainer_config_default(&cb);
    TrainDbArgs args = {0};
    TrainDb *ta = NULL, *tb = NULL;
    CHECK(train_db_begin(&ta, tmp("runs.db"), NULL, "a", &args, &ca, "", NULL, err) == 0, "begin a: %s", err);
    CHECK(train_db_begin(&tb, tmp("runs.db"), NULL, "b", &args, &cb, "", NULL, err) == 0, "begin b: %s", err);
    CHECK(ca.resume_path && !strcmp(ca.resume_path, a), "run a resumes from its own checkpoint: %s",
          ca.resume_path ? ca.resume_path : "(null)");
    CHECK(cb.resume_path && !strcmp(cb.resume_path, b), "run b resumes from its own checkpoint: %s",
          cb.resume_path ? cb.resume_path : "(null)");
    if (ta) train_db_end(ta, 1, err);
    if (tb) train_db_end(tb, 1, err);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/onebit-test-record.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    two_resumes();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return test_done("test_run_record");
}
