/* test_db_writer.c -- the run store's writer thread: batching (counted
 * with SQLite's commit hook, no timing), checkpoints and status changes
 * committed at once, a resumed step replacing the old row, a locked
 * database reported (EV_LOG + db_writer_error) and retried without loss,
 * a full disk (RLIMIT_FSIZE) reported with every committed event intact,
 * and a run deleted under the writer. */
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/common.h"
#include "db/db.h"
#include "db/db_internal.h"
#include "dbtest.h"
#include "test.h"

static void nap(void)
{
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* wait (a hang guard, not a timing assertion) until sql returns want */
static int wait_for(sqlite3 *h, const char *sql, long long want)
{
    for (int i = 0; i < 12000; i++) {
        if (q_int(h, sql) == want) return 1;
        nap();
    }
    return 0;
}

/* the writer's stats once they count `events` stored events (or an error
 * stopped it): a commit is visible to other connections a moment before the
 * writer thread counts it, so a test that saw the rows waits for the count
 * too (a hang guard, not a timing assertion) */
static DbWriterStats stats_when(DbWriter *w, long events)
{
    DbWriterStats st;
    char err[OB_ERRLEN];
    for (int i = 0; i < 12000; i++) {
        db_writer_stats(w, &st);
        if (st.events >= events || db_writer_error(w, err)) break;
        nap();
    }
    return st;
}

static Event step_ev(int step, double loss)
{
    Event e = {.kind = EV_STEP, .step = step, .total_steps = 1000, .loss = loss, .kl = loss / 2, .mse = 0.1, .lr = 1e-3,
               .grad_norm = 0.5, .tokens_per_s = 1234, .elapsed = step * 0.01};
    return e;
}

static int64_t new_run(const char *path, const char *name, Db **out)
{
    char err[OB_ERRLEN];
    Db *db = db_open(path, 0, err);
    CHECK(db != NULL, "open %s: %s", path, err);
    if (!db) return -1;
    int64_t id = db_run_create(db, name, 0, "{}", 1000, err);
    CHECK(id > 0, "run: %s", err);
    if (out) *out = db;
    else db_close(db);
    return id;
}

/* steps s0..s1-1 with loss loss0 - s * dloss */
static void push_steps(DbWriter *w, int s0, int s1, double loss0, double dloss)
{
    for (int s = s0; s < s1; s++) {
        Event e = step_ev(s, loss0 - s * dloss);
        db_writer_push(w, &e);
    }
}

/* a run named name in a new database path (kept open in *db) and a writer
 * for it (NULL when it could not start: that is a failed check) */
static DbWriter *new_writer(const char *path, const char *name, EventRing *notify, Db **db, int64_t *run)
{
    char err[OB_ERRLEN];
    *run = new_run(path, name, db);
    DbWriter *w = db_writer_start(path, *run, notify, err);
    CHECK(w != NULL, "start: %s", err);
    return w;
}

/* a writer on a new run in tmp(file), with its path and open database */
typedef struct {
    const char *path;
    Db *db;
    int64_t run;
    DbWriter *w;
} WriterFix;

static int fix_start(WriterFix *f, const char *file, const char *name)
{
    f->path = tmp(file);
    f->w = new_writer(f->path, name, NULL, &f->db, &f->run);
    return f->w ? 0 : -1;
}

static void test_batching(void)
{
    char err[OB_ERRLEN];
    WriterFix f;
    if (fix_start(&f, "batch.db", "batch")) return;
    db_writer_set_batch(f.w, 256, 3600); /* only the count triggers a commit */
    push_steps(f.w, 0, 1000, 10.0, 0.001);
    DbWriterStats st;
    db_writer_stats(f.w, &st);
    CHECK(db_writer_stop(f.w, err) == 0, "stop: %s", err);
    /* stats are gone with the writer: read them before stop next time */
    CHECK(q_int(f.db->h, "SELECT count(*) FROM metrics") == 1000, "all 1000 steps stored");
    CHECK(q_int(f.db->h, "SELECT total_steps FROM runs") == 1000, "total steps");
    CHECK(q_int(f.db->h, "SELECT count(*) FROM metrics WHERE loss IS NULL OR kl IS NULL OR wall IS NULL") == 0, "values");
    db_close(f.db);

    /* again, keeping the stats */
    f.run = new_run(f.path, "batch2", &f.db);
    f.w = db_writer_start(f.path, f.run, NULL, err);
    if (!f.w) return;
    db_writer_set_batch(f.w, 256, 3600);
    push_steps(f.w, 0, 1000, 1, 0);
    /* a commit takes at least 256 events, so at most 255 wait for stop */
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) >= 745 FROM metrics WHERE run_id=%lld", (long long)f.run);
    CHECK(wait_for(f.db->h, sql, 1), "full batches committed before stop");
    st = stats_when(f.w, 745);
    CHECK(st.commits >= 2 && st.commits <= 3, "batched: %ld transactions for %ld events", st.commits, st.events);
    CHECK(st.dropped == 0, "nothing dropped");
    CHECK(db_writer_stop(f.w, err) == 0, "stop: %s", err);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM metrics WHERE run_id=%lld", (long long)f.run);
    CHECK(q_int(f.db->h, sql) == 1000, "the rest committed by stop");
    db_close(f.db);
}

static void test_urgent(void)
{
    char err[OB_ERRLEN];
    Db *db;
    int64_t run;
    DbWriter *w = new_writer(tmp("urgent.db"), "urgent", NULL, &db, &run);
    if (!w) return;
    db_writer_set_batch(w, 1000000, 3600); /* never by count or time */
    db_writer_set_dataset(w, "tinystories");
    push_steps(w, 0, 10, 5.0, 0);
    Event redo = step_ev(9, 4.5); /* a resumed run re-does step 9 */
    db_writer_push(w, &redo);
    Event ck = {.kind = EV_CKPT, .step = 10};
    snprintf(ck.text, sizeof ck.text, "/ckpt/urgent-10.ckpt");
    db_writer_push(w, &ck);
    CHECK(wait_for(db->h, "SELECT count(*) FROM checkpoints WHERE step=10 AND path='/ckpt/urgent-10.ckpt'", 1),
          "a checkpoint is committed without waiting for the batch");
    CHECK(q_int(db->h, "SELECT count(*) FROM metrics") == 10, "the steps before it are in the same commit");
    CHECK(q_int(db->h, "SELECT loss * 10 FROM metrics WHERE step=9") == 45, "the re-done step replaced the old row");
    DbWriterStats st = stats_when(w, 12);
    CHECK(st.commits == 1 && st.events == 12, "one transaction: %ld commits, %ld events", st.commits, st.events);
    Event ev = {.kind = EV_EVAL, .step = 10, .eval_nll = 2.0, .eval_ppl = 7.389};
    snprintf(ev.text, sizeof ev.text, "student");
    db_writer_push(w, &ev);
    Event tev = {.kind = EV_EVAL, .step = 10, .eval_nll = 1.0, .eval_ppl = 2.718}; /* same step, another model */
    snprintf(tev.text, sizeof tev.text, "teacher");
    db_writer_push(w, &tev);
    Event fin = {.kind = EV_STATUS, .status = RUN_FINISHED};
    snprintf(fin.text, sizeof fin.text, "finished 10 steps");
    db_writer_push(w, &fin);
    CHECK(wait_for(db->h, "SELECT count(*) FROM runs WHERE status='finished' AND owner_pid IS NULL", 1),
          "a status change is committed at once");
    CHECK(q_int(db->h, "SELECT count(*) FROM evals WHERE dataset='tinystories' AND step=10 AND model='student'") == 1 &&
              q_int(db->h, "SELECT count(*) FROM evals WHERE dataset='tinystories' AND step=10 AND model='teacher'") == 1,
          "evals stored with the dataset and whose they are");
    st = stats_when(w, 15);
    CHECK(st.commits == 2 && st.events == 15, "two transactions: %ld (%ld events)", st.commits, st.events);
    /* a real checkpoint file gets its sha256 after the commit */
    FILE *f = fopen(tmp("abc.ckpt"), "w");
    fputs("abc", f);
    fclose(f);
    Event ck2 = {.kind = EV_CKPT, .step = 11};
    snprintf(ck2.text, sizeof ck2.text, "%s", tmp("abc.ckpt"));
    db_writer_push(w, &ck2);
    CHECK(wait_for(db->h,
                   "SELECT count(*) FROM checkpoints WHERE step=11 AND "
                   "sha256='ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'",
                   1),
          "checkpoint sha256 recorded");
    CHECK(q_int(db->h, "SELECT count(*) FROM checkpoints WHERE step=10 AND sha256=''") == 1, "a missing file has no hash");
    /* a checkpoint path longer than Event.text travels in Event.path:
     * recorded and hashed whole (text holds a cut copy, for display) */
    {
        char ld[2048], lp[2200];
        int k = snprintf(ld, sizeof ld, "%s", dir);
        for (int i = 0; i < 4; i++) {
            k += snprintf(ld + k, sizeof ld - k, "/%0200d", i);
            mkdir(ld, 0777);
        }
        snprintf(lp, sizeof lp, "%s/x.ckpt", ld);
        FILE *lf = fopen(lp, "w");
        CHECK(lf != NULL, "create %s", lp);
        if (lf) { fputs("abc", lf); fclose(lf); }
        Event ck3 = {.kind = EV_CKPT, .step = 12, .path = evring_intern(lp)};
        memcpy(ck3.text, lp, sizeof ck3.text - 1); /* cut, as a producer's snprintf would */
        db_writer_push(w, &ck3);
        CHECK(wait_for(db->h,
                       "SELECT count(*) FROM checkpoints WHERE step=12 AND length(path) > 800 AND "
                       "sha256='ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'",
                       1),
              "a %zu-character checkpoint path recorded whole, with its sha256", strlen(lp));
    }
    Event other = {.kind = EV_LOG};
    db_writer_push(w, &other); /* ignored */
    CHECK(db_writer_stop(w, err) == 0, "stop: %s", err);
    DbRun r;
    CHECK(db_run_get(db, run, &r, err) == 0 && r.status == RUN_FINISHED && !strcmp(r.message, "finished 10 steps") &&
              r.steps_done == 9 && r.last_ckpt_step == 12 && fabs(r.best_ppl - 7.389) < 1e-12,
          "run after the writer");
    db_run_free(&r);
    db_close(db);
}

static void test_locked(void)
{
    char err[OB_ERRLEN];
    const char *path = tmp("locked.db");
    Db *db;
    int64_t run;
    EventRing notify;
    evring_init(&notify, 64);
    DbWriter *w = new_writer(path, "locked", &notify, &db, &run);
    if (!w) return;
    db_writer_set_batch(w, 1000000, 3600);
    db_writer_set_busy_timeout(w, 100);
    sqlite3 *h = NULL;
    sqlite3_open(path, &h);
    CHECK(sqlite3_exec(h, "BEGIN EXCLUSIVE; UPDATE runs SET message='x';", NULL, NULL, NULL) == SQLITE_OK, "lock");
    push_steps(w, 0, 5, 3.0, 0);
    Event ck = {.kind = EV_CKPT, .step = 5};
    snprintf(ck.text, sizeof ck.text, "/ckpt/5");
    db_writer_push(w, &ck);
    int seen = 0;
    for (int i = 0; i < 12000 && !(seen = db_writer_error(w, err)); i++) nap();
    CHECK(seen && strstr(err, "locked.db: database is locked by another process"), "error surfaced: %s", err);
    Event got[8];
    int n = evring_pop(&notify, got, 8);
    CHECK(n >= 1 && got[0].kind == EV_LOG && strstr(got[0].text, "run store:") && strstr(got[0].text, "locked"),
          "EV_LOG to the consumer: %d %s", n, n ? got[0].text : "");
    push_steps(w, 5, 8, 3.0, 0); /* the producer carries on */
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(h);
    CHECK(wait_for(db->h, "SELECT count(*) FROM checkpoints", 1), "retried after the lock went away");
    DbWriterStats st = stats_when(w, 6); /* the 5 steps and the checkpoint */
    CHECK(st.failures >= 1 && st.dropped == 0, "failures %ld dropped %ld", st.failures, st.dropped);
    /* the row is visible at COMMIT, a moment before the writer clears its error */
    int cleared = 0;
    for (int i = 0; i < 12000 && !(cleared = db_writer_error(w, err) == 0); i++) nap();
    CHECK(cleared, "error cleared after a good commit");
    CHECK(db_writer_stop(w, err) == 0, "stop: %s", err);
    CHECK(q_int(db->h, "SELECT count(*) FROM metrics") == 8, "nothing lost: %lld", q_int(db->h, "SELECT count(*) FROM metrics"));
    CHECK(db_integrity_check(db, err) == 0, "integrity: %s", err);
    db_close(db);
    evring_destroy(&notify);
}

typedef struct {
    const char *path;
    int64_t run;
} FullDisk;

/* the child of test_full_disk: steps through a writer until the file size
 * limit; *res (long): how many the writer stored */
static int write_until_full(void *ctx, void *res)
{
    const FullDisk *a = ctx;
    char err[OB_ERRLEN];
    long *stored = res;
    *stored = -1;
    DbWriter *w = db_writer_start(a->path, a->run, NULL, err);
    if (!w) return 2;
    db_writer_set_batch(w, 64, 3600);
    if (limit_file_size(192 * 1024)) return 3;
    for (int s = 0; s < 20000; s++) {
        Event e = step_ev(s, 1.0);
        db_writer_push(w, &e);
        if (s % 64 == 63) { /* let it commit, as it would during training */
            stats_when(w, s + 1);
            if (db_writer_error(w, err)) break;
        }
    }
    DbWriterStats st;
    db_writer_stats(w, &st);
    *stored = st.events;
    int rc = db_writer_stop(w, err);
    int clear = rc == -1 && strstr(err, "full.db: file size limit reached (ulimit -f)") && strstr(err, "not stored");
    if (!clear) fprintf(stderr, "writer stop: %d %s\n", rc, err);
    return clear ? 0 : 1;
}

static void test_full_disk(void)
{
    const char *path = tmp("full.db");
    FullDisk a = {path, new_run(path, "full", NULL)};
    long stored = -1;
    int status;
    in_child(write_until_full, &a, &stored, sizeof stored, &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer reported the full disk clearly (status %d)", status);
    char err[OB_ERRLEN];
    Db *db = db_open(path, 0, err);
    CHECK(db != NULL, "reopen: %s", err);
    if (!db) return;
    CHECK(db_integrity_check(db, err) == 0, "integrity: %s", err);
    long long n = q_int(db->h, "SELECT count(*) FROM metrics");
    CHECK(stored > 0 && n == stored, "every committed step is there: %lld stored %ld", n, stored);
    CHECK(q_int(db->h, "SELECT count(*) FROM metrics WHERE step >= 0 AND step < (SELECT count(*) FROM metrics)") == n,
          "a prefix of the steps, no holes");
    db_close(db);
}

static void test_deleted_run(void)
{
    char err[OB_ERRLEN];
    WriterFix f;
    if (fix_start(&f, "deleted.db", "doomed")) return;
    CHECK(db_writer_start(f.path, 4242, NULL, err) == NULL && strstr(err, "no run 4242"), "writer for a missing run: %s", err);
    CHECK(db_run_delete(f.db, f.run, err) == 0, "delete: %s", err);
    Event e = step_ev(1, 1.0);
    db_writer_push(f.w, &e);
    CHECK(db_writer_stop(f.w, err) == -1 && strstr(err, "no longer exists"), "deleted run: %s", err);
    CHECK(q_int(f.db->h, "SELECT count(*) FROM metrics") == 0, "nothing stored");
    db_close(f.db);
}

/* db_writer_wait_step: returns once the steps are committed (and so the
 * rows are there), gives up after its timeout for steps never pushed */
static void test_wait_step(void)
{
    char err[OB_ERRLEN];
    WriterFix f;
    if (fix_start(&f, "wait.db", "wait")) return;
    db_writer_set_batch(f.w, 256, 0.2);
    push_steps(f.w, 1, 41, 5.0, 0.01);
    CHECK(db_writer_wait_step(f.w, 40, 30.0) == 0, "steps up to 40 committed");
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM metrics WHERE run_id=%lld", (long long)f.run);
    CHECK(q_int(f.db->h, sql) == 40, "all 40 rows are there when it returns");
    double t0 = ob_now();
    CHECK(db_writer_wait_step(f.w, 41, 0.3) == -1, "a step never pushed: it gives up");
    CHECK(ob_now() - t0 >= 0.25, "after its timeout");
    CHECK(db_writer_stop(f.w, err) == 0, "stop: %s", err);
    db_close(f.db);
}

int main(void)
{
    if (test_tmpdir(dir, sizeof dir, "onebit-test-dbw")) return 1;
    test_batching();
    test_urgent();
    test_locked();
    test_full_disk();
    test_deleted_run();
    test_wait_step();
    test_rmtree(dir);
    return test_done("test_db_writer");
}
