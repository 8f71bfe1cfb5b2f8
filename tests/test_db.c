/* test_db.c -- the run store: schema and forward migration from a v1
 * database, CRUD of every table, cascading delete, interrupted detection
 * (dead, SIGKILLed, rebooted, pid-reused owners), clear errors for
 * not-a-database, newer and read-only files, a read-only directory, a
 * locked database and a full disk (RLIMIT_FSIZE) with committed data
 * intact afterwards. The writer thread is in test_db_writer.c. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/common.h"
#include "db/db.h"
#include "db/db_internal.h"
#include "db/db_svid.h"
#include "dbtest.h"
#include "test.h"

static void q_text(sqlite3 *h, const char *sql, char *out, size_t n)
{
    sqlite3_stmt *st;
    snprintf(out, n, "?");
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) return;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) snprintf(out, n, "%s", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *h = NULL;
    if (sqlite3_open(path, &h) != SQLITE_OK) { sqlite3_close(h); return NULL; }
    sqlite3_busy_timeout(h, 5000);
    return h;
}

/* every table's columns, indexes and foreign keys, as one string */
static char *schema_signature(sqlite3 *h)
{
    static const char *sql =
        "SELECT group_concat(x, '\n') FROM ("
        " SELECT m.name || '.' || c.name || ' ' || c.type || ' nn' || c.\"notnull\" || ' d' || coalesce(c.dflt_value, '-') "
        "   || ' pk' || c.pk AS x FROM sqlite_master m, pragma_table_info(m.name) c WHERE m.type='table'"
        " UNION ALL SELECT m.name || ' index ' || i.name || ' u' || i.\"unique\" || ' ' || (SELECT group_concat(ii.name) FROM "
        "   pragma_index_info(i.name) ii) FROM sqlite_master m, pragma_index_list(m.name) i WHERE m.type='table'"
        " UNION ALL SELECT m.name || ' fk ' || f.\"from\" || '->' || f.\"table\" || '.' || f.\"to\" || ' ' || f.on_delete "
        "   FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type='table'"
        " ORDER BY x)";
    char *out = ob_malloc(1 << 16);
    q_text(h, sql, out, 1 << 16);
    return out;
}

/* The v1 schema as it shipped (frozen here: never edit it). */
static const char *const schema_v1 =
    "CREATE TABLE teachers (id INTEGER PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL DEFAULT '',"
    " format TEXT NOT NULL DEFAULT '', config TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL, UNIQUE (path, sha256));"
    "CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " teacher_id INTEGER REFERENCES teachers(id) ON DELETE SET NULL, hparams TEXT NOT NULL DEFAULT '{}',"
    " status TEXT NOT NULL DEFAULT 'running'"
    " CHECK (status IN ('pending','running','paused','finished','failed','stopped','interrupted')),"
    " message TEXT NOT NULL DEFAULT '', total_steps INTEGER NOT NULL DEFAULT 0, student_path TEXT,"
    " created REAL NOT NULL, updated REAL NOT NULL);"
    "CREATE INDEX runs_teacher ON runs(teacher_id);"
    "CREATE TABLE metrics (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL,"
    " loss REAL, kl REAL, mse REAL, lr REAL, grad_norm REAL, tokens_per_s REAL, wall REAL,"
    " PRIMARY KEY (run_id, step)) WITHOUT ROWID;"
    "CREATE TABLE evals (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, step INTEGER NOT NULL,"
    " dataset TEXT NOT NULL DEFAULT '', nll REAL, ppl REAL, time REAL NOT NULL,"
    " PRIMARY KEY (run_id, step, dataset)) WITHOUT ROWID;"
    "CREATE TABLE checkpoints (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    " step INTEGER NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL DEFAULT '', time REAL NOT NULL,"
    " UNIQUE (run_id, step));"
    "CREATE TABLE layer_stats (teacher_id INTEGER NOT NULL REFERENCES teachers(id) ON DELETE CASCADE,"
    " layer INTEGER NOT NULL, kind INTEGER NOT NULL, name TEXT NOT NULL, rows INTEGER NOT NULL, cols INTEGER NOT NULL,"
    " nmf_err REAL, svd_err REAL, xnor_err REAL, pos_frac REAL, detail TEXT NOT NULL DEFAULT '{}', time REAL NOT NULL,"
    " PRIMARY KEY (teacher_id, layer, kind)) WITHOUT ROWID;"
    "CREATE TABLE chats (id INTEGER PRIMARY KEY, run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,"
    " teacher_id INTEGER REFERENCES teachers(id) ON DELETE CASCADE, session INTEGER NOT NULL DEFAULT 0,"
    " role TEXT NOT NULL CHECK (role IN ('system','user','assistant')), text TEXT NOT NULL, time REAL NOT NULL,"
    " CHECK (run_id IS NOT NULL OR teacher_id IS NOT NULL));"
    "CREATE INDEX chats_run ON chats(run_id, session, id);"
    "CREATE INDEX chats_teacher ON chats(teacher_id, session, id);"
    "PRAGMA user_version = 1;";

static void test_fresh_and_migration(void)
{
    char err[OB_ERRLEN];
    /* a new database */
    Db *db = db_open(tmp("sub/dir/fresh.db"), 0, err);
    CHECK(db != NULL, "open creates directories: %s", err);
    if (!db) return;
    CHECK(db_schema_version() >= 2, "there is at least one migration");
    CHECK(q_int(db->h, "PRAGMA user_version") == db_schema_version(), "user_version");
    char mode[32];
    q_text(db->h, "PRAGMA journal_mode", mode, sizeof mode);
    CHECK(!strcmp(mode, "wal"), "WAL mode, got %s", mode);
    CHECK(q_int(db->h, "PRAGMA foreign_keys") == 1, "foreign keys on");
    CHECK(q_int(db->h, "PRAGMA busy_timeout") == DB_BUSY_MS, "busy_timeout");
    CHECK(db_integrity_check(db, err) == 0, "integrity: %s", err);
    char *fresh = schema_signature(db->h);
    db_close(db);

    /* a v1-era database with data, including a run that was running */
    sqlite3 *h = raw_open(tmp("old.db"));
    CHECK(h && sqlite3_exec(h, schema_v1, NULL, NULL, NULL) == SQLITE_OK, "create v1: %s", h ? sqlite3_errmsg(h) : "");
    CHECK(sqlite3_exec(h,
                       "INSERT INTO teachers(path, sha256, format, created) VALUES ('/m/t.bin', 'abc', 'llama2c', 1);"
                       "INSERT INTO runs(name, teacher_id, hparams, status, total_steps, created, updated) VALUES"
                       " ('old-done', 1, '{\"lr\":0.001}', 'finished', 10, 1, 2),"
                       " ('old-running', 1, '{}', 'running', 10, 1, 2);"
                       "INSERT INTO metrics(run_id, step, loss) VALUES (1, 0, 5.0), (1, 1, 4.0);"
                       "INSERT INTO evals(run_id, step, dataset, nll, ppl, time) VALUES (1, 1, 'wiki', 2.0, 7.389, 3);"
                       "INSERT INTO checkpoints(run_id, step, path, time) VALUES (1, 1, '/c/1.ckpt', 3);",
                       NULL, NULL, NULL) == SQLITE_OK,
          "fill v1: %s", sqlite3_errmsg(h));
    sqlite3_close(h);

    /* read-only cannot migrate: a clear message */
    db = db_open(tmp("old.db"), 1, err);
    CHECK(db == NULL && strstr(err, "version 1 needs an upgrade"), "read-only v1: %s", err);
    db_close(db);

    db = db_open(tmp("old.db"), 0, err);
    CHECK(db != NULL, "migrate v1: %s", err);
    if (!db) { free(fresh); return; }
    CHECK(q_int(db->h, "PRAGMA user_version") == db_schema_version(), "migrated version");
    char *migrated = schema_signature(db->h);
    CHECK(!strcmp(fresh, migrated), "migrated schema equals a new one:\n--- new\n%s\n--- migrated\n%s", fresh, migrated);
    free(migrated);
    DbRun r;
    CHECK(db_run_find(db, "old-done", &r, err) == 0, "old run: %s", err);
    CHECK(r.status == RUN_FINISHED && r.steps_done == 1 && r.last_ckpt_step == 1, "old run intact");
    CHECK_NEAR(r.best_ppl, 7.389, 1e-9, "old best ppl");
    db_run_free(&r);
    /* a v1 run that was "running" has no owner to check: interrupted */
    CHECK(db_run_find(db, "old-running", &r, err) == 0, "old running run: %s", err);
    CHECK(r.status == RUN_INTERRUPTED, "v1 running run -> interrupted, got %s", run_status_name(r.status));
    db_run_free(&r);
    char st[32];
    q_text(db->h, "SELECT status FROM runs WHERE name='old-running'", st, sizeof st);
    CHECK(!strcmp(st, "interrupted"), "stored as interrupted: %s", st);
    CHECK(db_integrity_check(db, err) == 0, "integrity after migration: %s", err);
    db_close(db);
    /* opening again is a no-op */
    db = db_open(tmp("old.db"), 1, err);
    CHECK(db != NULL, "read-only after migration: %s", err);
    db_close(db);
    free(fresh);

    /* newer than we know */
    h = raw_open(tmp("new.db"));
    sqlite3_exec(h, "CREATE TABLE x(a); PRAGMA user_version = 999;", NULL, NULL, NULL);
    sqlite3_close(h);
    db = db_open(tmp("new.db"), 0, err);
    CHECK(db == NULL && strstr(err, "newer than this onebit-tui"), "newer: %s", err);
    /* somebody else's database */
    h = raw_open(tmp("other.db"));
    sqlite3_exec(h, "CREATE TABLE x(a);", NULL, NULL, NULL);
    sqlite3_close(h);
    db = db_open(tmp("other.db"), 0, err);
    CHECK(db == NULL && strstr(err, "not a onebit-tui database"), "other: %s", err);
    /* not a database at all */
    FILE *f = fopen(tmp("junk.db"), "w");
    fputs("this is not an SQLite file, it is just some text that goes on for a while ......................", f);
    fclose(f);
    db = db_open(tmp("junk.db"), 0, err);
    CHECK(db == NULL && strstr(err, "junk.db: not a onebit-tui database"), "junk: %s", err);
    /* read-only open of a missing file */
    db = db_open(tmp("missing.db"), 1, err);
    CHECK(db == NULL && strstr(err, "missing.db: no database here"), "missing: %s", err);
    CHECK(access(tmp("missing.db"), F_OK) != 0, "read-only open did not create the file");
}

static void test_default_path(void)
{
    char err[OB_ERRLEN];
    /* the XDG rules are file_xdg_path's (test_common): here the names */
    unsetenv("XDG_DATA_HOME");
    setenv("HOME", "/home/u", 1);
    char *p = db_default_path(err);
    CHECK(p && !strcmp(p, "/home/u/.local/share/onebit-tui/runs.db"), "HOME: %s", p ? p : err);
    free(p);
    unsetenv("HOME");
    CHECK(db_default_path(err) == NULL && strstr(err, "--db"), "neither: %s", err);
    /* the default is used by db_open(NULL) */
    setenv("XDG_DATA_HOME", dir, 1);
    Db *db = db_open(NULL, 0, err);
    CHECK(db && access(tmp("onebit-tui/runs.db"), F_OK) == 0, "db_open(NULL) -> XDG_DATA_HOME: %s", err);
    db_close(db);
}

/* db_open(tmp(name)) read-write; NULL is a failed check */
static Db *open_tmp(const char *name)
{
    char err[OB_ERRLEN];
    Db *db = db_open(tmp(name), 0, err);
    CHECK(db != NULL, "open: %s", err);
    return db;
}

static void test_crud(void)
{
    char err[OB_ERRLEN];
    Db *db = open_tmp("crud.db");
    if (!db) return;
    int64_t t1 = db_teacher_upsert(db, "/m/a.bin", "sha-a", "llama2c", "{\"dim\":64}", err);
    int64_t t1b = db_teacher_upsert(db, "/m/a.bin", "sha-a", "llama2c", "{\"dim\":64,\"layers\":5}", err);
    int64_t t2 = db_teacher_upsert(db, "/m/a.bin", "sha-b", "llama2c", "{}", err);
    CHECK(t1 > 0 && t1 == t1b && t2 > 0 && t2 != t1, "teacher upsert: %lld %lld %lld", (long long)t1, (long long)t1b,
          (long long)t2);
    DbTeacher t;
    CHECK(db_teacher_get(db, t1, &t, err) == 0 && !strcmp(t.config, "{\"dim\":64,\"layers\":5}") &&
              !strcmp(t.format, "llama2c"),
          "teacher get: %s", err);
    db_teacher_free(&t);
    CHECK(db_teacher_upsert(db, "/m/x.bin", "s", "f", "{not json", err) == -1, "bad config JSON refused");

    int64_t r1 = db_run_create(db, "alpha", t1, "{\"lr\":0.0004,\"steps\":100,\"seq_len\":64,\"ema\":true}", 100, err);
    CHECK(r1 > 0, "create: %s", err);
    int64_t r2 = db_run_create(db, NULL, 0, NULL, 0, err);
    CHECK(r2 > 0, "create unnamed: %s", err);
    CHECK(db_run_create(db, "alpha", t1, "{}", 1, err) == -1 && strstr(err, "'alpha' exists already"), "dup: %s", err);
    CHECK(db_run_create(db, "123", t1, "{}", 1, err) == -1 && strstr(err, "all digits"), "digits: %s", err);
    CHECK(db_run_create(db, "x", 4242, "{}", 1, err) == -1 && strstr(err, "no teacher 4242"), "fk: %s", err);
    CHECK(db_run_create(db, "y", t1, "[1,", 1, err) == -1, "bad hparams JSON refused");

    DbRun r;
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)r1);
    CHECK(db_run_find(db, key, &r, err) == 0 && r.id == r1 && !strcmp(r.name, "alpha"), "find by id: %s", err);
    CHECK(r.status == RUN_RUNNING && r.teacher_id == t1 && !strcmp(r.teacher_path, "/m/a.bin") && r.total_steps == 100,
          "fields");
    CHECK(r.steps_done == 0 && r.last_ckpt_step == -1 && isnan(r.best_ppl) && r.owner_pid == getpid(), "empty run");
    db_run_free(&r);
    CHECK(db_run_find(db, "alpha", &r, err) == 0 && r.id == r1, "find by name: %s", err);
    db_run_free(&r);
    snprintf(key, sizeof key, "run-%lld", (long long)r2);
    CHECK(db_run_find(db, key, &r, err) == 0 && r.id == r2, "unnamed run is run-<id>: %s", err);
    db_run_free(&r);
    CHECK(db_run_find(db, "nope", &r, err) == -1 && strstr(err, "no run 'nope'"), "find missing: %s", err);

    char v[64];
    CHECK(db_run_hparam(db, r1, "lr", v, sizeof v, err) == 1 && atof(v) == 0.0004, "hparam lr: %s", v);
    CHECK(db_run_hparam(db, r1, "steps", v, sizeof v, err) == 1 && !strcmp(v, "100"), "hparam steps: %s", v);
    CHECK(db_run_hparam(db, r1, "ema", v, sizeof v, err) == 1 && !strcmp(v, "1"), "hparam bool: %s", v);
    CHECK(db_run_hparam(db, r1, "nope", v, sizeof v, err) == 0, "hparam absent");

    for (int s = 0; s < 10; s++) {
        DbMetric m = {s, 10.0 - s, 5.0 - s * 0.1, 0.01, 1e-3, 0.5, 1000, s * 0.1};
        CHECK(db_metric_put(db, r1, &m, err) == 0, "metric: %s", err);
    }
    DbMetric redo = {9, 1.5, NAN, NAN, NAN, NAN, NAN, NAN};
    CHECK(db_metric_put(db, r1, &redo, err) == 0, "replace a step: %s", err);
    DbEval e1 = {.step = 4, .dataset = "tinystories", .nll = 2.5, .ppl = 12.18};
    DbEval e2 = {.step = 9, .dataset = "tinystories", .nll = 2.0, .ppl = 7.39};
    CHECK(db_eval_put(db, r1, &e1, err) == 0 && db_eval_put(db, r1, &e2, err) == 0, "evals: %s", err);
    CHECK(db_checkpoint_put(db, r1, 5, "/c/a-5.ckpt", "h5", err) == 0, "ckpt: %s", err);
    CHECK(db_checkpoint_put(db, r1, 10, "/c/a-10.ckpt", "h10", err) == 0, "ckpt: %s", err);
    DbMetric *m;
    int n;
    CHECK(db_metrics(db, r1, &m, &n, err) == 0 && n == 10, "metrics: %d", n);
    if (n == 10) {
        CHECK(m[0].step == 0 && m[0].loss == 10.0 && m[3].wall == 3 * 0.1 && m[9].loss == 1.5 && isnan(m[9].kl),
              "metric values");
    }
    free(m);
    DbEval *ev;
    CHECK(db_evals(db, r1, &ev, &n, err) == 0 && n == 2 && ev[1].step == 9 && !strcmp(ev[1].dataset, "tinystories"),
          "evals list");
    free(ev);
    DbCheckpoint c;
    CHECK(db_checkpoint_latest(db, r1, &c, err) == 1 && c.step == 10 && !strcmp(c.path, "/c/a-10.ckpt") &&
              !strcmp(c.sha256, "h10"),
          "latest ckpt");
    free(c.path);
    CHECK(db_checkpoint_latest(db, r2, &c, err) == 0, "no ckpt");
    CHECK(db_run_get(db, r1, &r, err) == 0 && r.steps_done == 9 && r.last_ckpt_step == 10, "derived: %s", err);
    CHECK_NEAR(r.best_ppl, 7.39, 1e-12, "best ppl");
    db_run_free(&r);
    CHECK(db_metric_put(db, 4242, &redo, err) == -1, "metric for a missing run refused (foreign key)");

    CHECK(db_run_set_status(db, r1, RUN_FINISHED, "done", err) == 0, "status: %s", err);
    CHECK(db_run_set_student(db, r1, "/s/alpha.onebit", err) == 0, "student: %s", err);
    CHECK(db_run_set_total(db, r1, 200, err) == 0, "total: %s", err);
    CHECK(db_run_get(db, r1, &r, err) == 0 && r.status == RUN_FINISHED && !strcmp(r.message, "done") &&
              !strcmp(r.student_path, "/s/alpha.onebit") && r.total_steps == 200 && r.owner_pid == 0,
          "updated run");
    db_run_free(&r);
    CHECK(db_run_set_status(db, 4242, RUN_FINISHED, "", err) == -1 && strstr(err, "no run 4242"), "status of missing");

    DbRun *list;
    CHECK(db_run_list(db, &list, &n, err) == 0 && n == 2 && list[0].id == r2 && list[1].id == r1, "list newest first");
    db_run_list_free(list, n);

    /* chats */
    int64_t s1 = db_chat_new_session(db, r1, 0, err);
    CHECK(s1 == 1, "first session");
    CHECK(db_chat_add(db, r1, 0, s1, "user", "Once upon a time", err) > 0, "chat: %s", err);
    CHECK(db_chat_add(db, r1, 0, s1, "assistant", "there was a \"cat\"\n", err) > 0, "chat: %s", err);
    CHECK(db_chat_new_session(db, r1, 0, err) == 2, "second session");
    CHECK(db_chat_add(db, 0, t1, db_chat_new_session(db, 0, t1, err), "user", "hi teacher", err) > 0, "teacher chat");
    CHECK(db_chat_add(db, r1, 0, s1, "robot", "x", err) == -1 && strstr(err, "role"), "bad role: %s", err);
    CHECK(db_chat_add(db, 0, 0, s1, "user", "x", err) == -1, "chat without owner");
    DbChat *ch;
    CHECK(db_chat_list(db, r1, 0, -1, &ch, &n, err) == 0 && n == 2 && !strcmp(ch[0].role, "user") &&
              !strcmp(ch[1].text, "there was a \"cat\"\n"),
          "chat list");
    db_chat_list_free(ch, n);
    CHECK(db_chat_list(db, 0, t1, -1, &ch, &n, err) == 0 && n == 1 && !strcmp(ch[0].text, "hi teacher"), "teacher chats");
    db_chat_list_free(ch, n);

    /* delete cascades */
    CHECK(db_run_delete(db, r1, err) == 0, "delete: %s", err);
    CHECK(q_int(db->h, "SELECT count(*) FROM metrics") == 0 && q_int(db->h, "SELECT count(*) FROM evals") == 0 &&
              q_int(db->h, "SELECT count(*) FROM checkpoints") == 0 &&
              q_int(db->h, "SELECT count(*) FROM chats WHERE run_id IS NOT NULL") == 0,
          "cascade");
    CHECK(q_int(db->h, "SELECT count(*) FROM chats") == 1, "teacher chat stays");
    CHECK(db_run_delete(db, r1, err) == -1 && strstr(err, "no run"), "delete twice: %s", err);
    CHECK(db_integrity_check(db, err) == 0, "integrity: %s", err);
    db_close(db);
}

/* inspect's LayerStats round-trip exactly */
static void test_layer_stats_roundtrip(void)
{
    char err[OB_ERRLEN];
    Db *db = open_tmp("svid.db");
    if (!db) return;
    int64_t t = db_teacher_upsert(db, "/m/svid.bin", "s", "llama2c", "{}", err);
    LayerStats st[3];
    memset(st, 0, sizeof st);
    unsigned x = 12345;
    for (int k = 0; k < 3; k++) {
        int rows = 24 + 8 * k, cols = 40 - 4 * k;
        float *w = ob_malloc(sizeof(float) * rows * cols);
        for (int i = 0; i < rows * cols; i++) {
            x = x * 1103515245u + 12345u;
            w[i] = ((x >> 8) & 0xffff) / 32768.0f - 1.0f + 0.01f * k;
        }
        CHECK(svid_layer_stats(w, rows, cols, SVID_NMF, &st[k], err) == 0, "svid_layer_stats: %s", err);
        free(w);
        st[k].layer = k / 2;
        st[k].kind = k % 2;
        snprintf(st[k].name, sizeof st[k].name, "layers.%d.w%d", k / 2, k % 2);
    }
    st[2].svd_err = NAN; /* a missing number survives as NAN */
    CHECK(db_layer_stats_save(db, t, st, 3, err) == 0, "save: %s", err);
    LayerStats *got;
    int n;
    CHECK(db_layer_stats_load(db, t, &got, &n, err) == 0 && n == 3, "load: %d %s", n, err);
    for (int k = 0; k < n && n == 3; k++) {
        const LayerStats *a = &st[k], *b = &got[k];
        int same = !strcmp(a->name, b->name) && a->layer == b->layer && a->kind == b->kind && a->rows == b->rows &&
                   a->cols == b->cols && a->nmf_err == b->nmf_err && a->xnor_err == b->xnor_err &&
                   a->pos_frac == b->pos_frac && a->row_pos_min == b->row_pos_min && a->row_pos_max == b->row_pos_max &&
                   a->row_pos_std == b->row_pos_std && a->col_pos_min == b->col_pos_min &&
                   a->col_pos_max == b->col_pos_max && a->col_pos_std == b->col_pos_std && a->g_min == b->g_min &&
                   a->g_max == b->g_max && a->h_min == b->h_min && a->h_max == b->h_max && a->bpw == b->bpw &&
                   a->bins == b->bins && a->abs_lo == b->abs_lo && a->abs_hi == b->abs_hi && a->w_lo == b->w_lo &&
                   a->w_hi == b->w_hi && !memcmp(a->abs_hist, b->abs_hist, sizeof a->abs_hist) &&
                   !memcmp(a->w_hist, b->w_hist, sizeof a->w_hist);
        same = same && (k == 2 ? isnan(b->svd_err) : a->svd_err == b->svd_err);
        CHECK(same, "layer %d round trip is exact", k);
    }
    CHECK(n == 3 && got[0].bins == SVID_BINS && got[0].abs_hist[0] + got[0].abs_hist[SVID_BINS - 1] > 0, "histograms");
    free(got);
    CHECK(db_layer_stats_load(db, t + 1, &got, &n, err) == 0 && n == 0, "none for another teacher");
    free(got);
    /* a save replaces the teacher's whole set; a missing teacher is refused */
    CHECK(db_layer_stats_save(db, t, st, 2, err) == 0, "save again: %s", err);
    CHECK(db_layer_stats_load(db, t, &got, &n, err) == 0 && n == 2 && !strcmp(got[0].name, "layers.0.w0") &&
              !strcmp(got[1].name, "layers.0.w1") && got[1].rows == st[1].rows && got[0].nmf_err == st[0].nmf_err,
          "replaced by the 2 saved last: %d %s", n, err);
    free(got);
    CHECK(q_int(db->h, "SELECT count(*) FROM layer_stats") == 2, "no rows of the first save left");
    CHECK(db_layer_stats_save(db, 4242, st, 1, err) == -1 && strstr(err, "no teacher 4242"), "stats fk: %s", err);
    CHECK(q_int(db->h, "SELECT count(*) FROM layer_stats") == 2, "a refused save changes nothing");
    sqlite3_exec(db->h, "UPDATE layer_stats SET detail='{\"bins\":64,\"abs_hist\":[1,2]}' WHERE kind=1", NULL, NULL, NULL);
    CHECK(db_layer_stats_load(db, t, &got, &n, err) == -1 && strstr(err, "damaged layer statistics for layers.0.w1"),
          "damaged detail: %s", err);
    db_close(db);
}

/* a child creates a running run and dies; returns the run id */
static int64_t child_run(const char *path, const char *name, int how)
{
    int fd[2];
    if (pipe(fd)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        char err[OB_ERRLEN];
        close(fd[0]);
        Db *db = db_open(path, 0, err);
        int64_t id = db ? db_run_create(db, name, 0, "{}", 10, err) : -1;
        if (write(fd[1], &id, sizeof id) != sizeof id) _exit(3);
        if (how == 0) _exit(0); /* without finishing the run or closing */
        for (;;) pause();       /* wait for SIGKILL */
    }
    close(fd[1]);
    int64_t id = -1;
    if (read(fd[0], &id, sizeof id) != sizeof id) id = -1;
    close(fd[0]);
    if (how == 1) kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    return id;
}

static void test_interrupted(void)
{
    char err[OB_ERRLEN];
    const char *path = tmp("intr.db");
    int64_t a = child_run(path, "exited", 0);
    int64_t b = child_run(path, "killed", 1);
    CHECK(a > 0 && b > 0, "children created runs");
    /* a reader opened before the death notices it too: open read-only */
    Db *ro = db_open(path, 1, err);
    CHECK(ro != NULL, "read-only open: %s", err);
    DbRun r;
    if (ro) {
        CHECK(db_run_get(ro, b, &r, err) == 0 && r.status == RUN_INTERRUPTED, "read-only reader sees interrupted");
        db_run_free(&r);
        char st[32];
        q_text(ro->h, "SELECT status FROM runs WHERE name='killed'", st, sizeof st);
        CHECK(!strcmp(st, "running"), "read-only did not write: %s", st);
        db_close(ro);
    }
    Db *db = db_open(path, 0, err);
    CHECK(db != NULL, "open: %s", err);
    if (!db) return;
    CHECK(db_run_get(db, a, &r, err) == 0 && r.status == RUN_INTERRUPTED, "_exit -> interrupted: %s",
          run_status_name(r.status));
    db_run_free(&r);
    CHECK(db_run_get(db, b, &r, err) == 0 && r.status == RUN_INTERRUPTED, "SIGKILL -> interrupted");
    db_run_free(&r);
    CHECK(q_int(db->h, "SELECT count(*) FROM runs WHERE status='interrupted' AND owner_pid IS NULL") == 2, "stored");

    /* our own run stays running; so does a paused one */
    int64_t mine = db_run_create(db, "mine", 0, "{}", 10, err);
    int64_t paused = db_run_create(db, "paused", 0, "{}", 10, err);
    CHECK(db_run_set_status(db, paused, RUN_PAUSED, "", err) == 0, "pause");
    /* fakes: rebooted since, pid reused, another host */
    int64_t reboot = db_run_create(db, "rebooted", 0, "{}", 10, err);
    int64_t reused = db_run_create(db, "reused", 0, "{}", 10, err);
    int64_t remote = db_run_create(db, "remote", 0, "{}", 10, err);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE runs SET owner_boot='00000000-0000-0000-0000-000000000000' WHERE id=%lld", (long long)reboot);
    sqlite3_exec(db->h, sql, NULL, NULL, NULL);
    snprintf(sql, sizeof sql, "UPDATE runs SET owner_start=owner_start+1 WHERE id=%lld", (long long)reused);
    sqlite3_exec(db->h, sql, NULL, NULL, NULL);
    snprintf(sql, sizeof sql, "UPDATE runs SET owner_host='elsewhere.example', owner_pid=999999999 WHERE id=%lld",
             (long long)remote);
    sqlite3_exec(db->h, sql, NULL, NULL, NULL);
    db_close(db);
    db = db_open(path, 0, err);
    if (!db) return;
    struct { int64_t id; RunStatus want; const char *what; } cases[] = {
        {mine, RUN_RUNNING, "live owner"}, {paused, RUN_PAUSED, "live paused owner"},
        {reboot, RUN_INTERRUPTED, "rebooted"}, {reused, RUN_INTERRUPTED, "pid reused"},
        {remote, RUN_RUNNING, "another host (cannot tell)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(db_run_get(db, cases[i].id, &r, err) == 0 && r.status == cases[i].want, "%s: got %s", cases[i].what,
              run_status_name(r.status));
        db_run_free(&r);
    }
    CHECK(db_integrity_check(db, err) == 0, "integrity: %s", err);
    db_close(db);
}

/* run fn in a child as an unprivileged user (root ignores file modes) */
static int as_nobody(int (*fn)(void))
{
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(77);
        _exit(fn());
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

/* in a child: a read-only open of tmp(name) finds the run "kept"; 1 (and
 * a FAIL line about `what`) when not */
static int kept_readable(const char *name, const char *what)
{
    char err[OB_ERRLEN];
    Db *db = db_open(tmp(name), 1, err);
    DbRun r;
    int bad = !db || db_run_find(db, "kept", &r, err);
    if (bad) fprintf(stderr, "FAIL read-only open %s: %s\n", what, err);
    else db_run_free(&r);
    db_close(db);
    return bad;
}

static int ro_file_child(void)
{
    char err[OB_ERRLEN];
    int bad = 0;
    Db *db = db_open(tmp("rodir1/ro.db"), 0, err);
    if (db || !strstr(err, "ro.db: database is read-only")) { fprintf(stderr, "FAIL rw open of 0444 file: %s\n", err); bad++; }
    db_close(db);
    bad += kept_readable("rodir1/ro.db", "of 0444 file");
    return bad ? 1 : 0;
}

static int ro_dir_child(void)
{
    char err[OB_ERRLEN];
    int bad = 0;
    Db *db = db_open(tmp("rodir2/w.db"), 0, err);
    int64_t id = db ? db_run_create(db, "new", 0, "{}", 1, err) : -1;
    if (id > 0 || !(strstr(err, "w.db: cannot write in the directory") && strstr(err, "Permission denied"))) {
        fprintf(stderr, "FAIL write in a read-only directory: %lld %s\n", (long long)id, err);
        bad++;
    }
    db_close(db);
    bad += kept_readable("rodir2/w.db", "in a read-only directory");
    return bad ? 1 : 0;
}

static void make_db_with_run(const char *path)
{
    char err[OB_ERRLEN];
    Db *db = db_open(path, 0, err);
    CHECK(db && db_run_create(db, "kept", 0, "{}", 1, err) > 0 && db_run_set_status(db, 1, RUN_FINISHED, "", err) == 0,
          "fixture %s: %s", path, err);
    db_close(db);
}

static void test_read_only(void)
{
    mkdir(tmp("rodir1"), 0755);
    mkdir(tmp("rodir2"), 0755);
    chmod(dir, 0755);
    make_db_with_run(tmp("rodir1/ro.db"));
    make_db_with_run(tmp("rodir2/w.db"));
    chmod(tmp("rodir1/ro.db"), 0444);
    chmod(tmp("rodir1"), 0555);
    if (geteuid() == 0 && chown(tmp("rodir2/w.db"), 65534, 65534) != 0) perror("chown");
    chmod(tmp("rodir2"), 0555);
    int rc = as_nobody(ro_file_child);
    if (rc != 77) CHECK(rc == 0, "read-only file gives clear errors (child exit %d)", rc);
    rc = as_nobody(ro_dir_child);
    if (rc != 77) CHECK(rc == 0, "read-only directory gives clear errors (child exit %d)", rc);
    chmod(tmp("rodir1"), 0755);
    chmod(tmp("rodir2"), 0755);
    chmod(dir, 0700);
}

static void test_locked(void)
{
    char err[OB_ERRLEN];
    const char *path = tmp("locked.db");
    make_db_with_run(path);
    sqlite3 *h = raw_open(path);
    CHECK(sqlite3_exec(h, "BEGIN EXCLUSIVE; UPDATE runs SET message='locker' WHERE id=1;", NULL, NULL, NULL) == SQLITE_OK,
          "lock: %s", sqlite3_errmsg(h));
    Db *db = db_open(path, 0, err);
    CHECK(db != NULL, "open while locked (reads still work in WAL mode): %s", err);
    if (db) {
        db_set_busy_timeout(db, 300);
        CHECK(db_run_create(db, "blocked", 0, "{}", 1, err) == -1 && strstr(err, "locked.db: database is locked by another process"),
              "locked: %s", err);
        DbMetric m = {1, 1, 1, 1, 1, 1, 1, 1};
        CHECK(db_metric_put(db, 1, &m, err) == -1 && strstr(err, "locked"), "locked metric: %s", err);
        DbRun r;
        CHECK(db_run_find(db, "kept", &r, err) == 0 && !strcmp(r.message, ""), "reads work, uncommitted invisible");
        db_run_free(&r);
    }
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(h);
    if (db) {
        CHECK(db_run_create(db, "after", 0, "{}", 1, err) > 0, "works after unlock: %s", err);
        CHECK(db_integrity_check(db, err) == 0, "integrity: %s", err);
    }
    db_close(db);
}

/* the child of test_full_disk: chat rows into the database at path until
 * the file size limit; *res (long): how many were committed */
static int fill_until_full(void *path, void *res)
{
    char err[OB_ERRLEN];
    long *ok = res;
    *ok = 0;
    Db *db = db_open(path, 0, err);
    if (!db) return 2;
    if (limit_file_size(256 * 1024)) return 3;
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    for (int s = 0; s < 100000; s++) {
        /* each one its own transaction, with a chat text to fill pages fast */
        if (db_chat_add(db, 1, 0, 1, "user", big, err) < 0) break;
        (*ok)++;
    }
    int full = strstr(err, "full.db: file size limit reached (ulimit -f)") != NULL;
    if (!full) fprintf(stderr, "full disk message: %s\n", err);
    db_close(db);
    return full ? 0 : 1;
}

/* fill the database under RLIMIT_FSIZE until the disk is "full" */
static void test_full_disk(void)
{
    const char *path = tmp("full.db");
    make_db_with_run(path);
    long ok = -1;
    int status;
    in_child(fill_until_full, (void *)path, &ok, sizeof ok, &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child saw a clear full-disk error (status %d)", status);
    CHECK(ok > 10 && ok < 100000, "some inserts succeeded before the limit: %ld", ok);
    char err[OB_ERRLEN];
    Db *db = db_open(path, 0, err);
    CHECK(db != NULL, "reopen after full disk: %s", err);
    if (!db) return;
    CHECK(db_integrity_check(db, err) == 0, "integrity after full disk: %s", err);
    CHECK(q_int(db->h, "SELECT count(*) FROM chats") == ok, "every committed row is there: %lld vs %ld",
          q_int(db->h, "SELECT count(*) FROM chats"), ok);
    DbRun r;
    CHECK(db_run_find(db, "kept", &r, err) == 0, "earlier data intact");
    db_run_free(&r);
    db_close(db);
}

/* the child of test_full_tmpfs: res (long[3]) = {the error said "disk
 * full", the database was intact after it, rows committed}; 77 when no
 * tmpfs can be mounted */
static int fill_tmpfs(void *ctx, void *res)
{
    char err[OB_ERRLEN], mnt[600], path[700];
    snprintf(mnt, sizeof mnt, "%s", tmp("tmpfs"));
    snprintf(path, sizeof path, "%s/full.db", mnt);
    mkdir(mnt, 0755);
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0)
        _exit(77);
    Db *db = db_open(path, 0, err);
    int64_t run = db ? db_run_create(db, "kept", 0, "{}", 1, err) : -1;
    if (run < 0) _exit(2);
    long ok = 0;
    char big[2000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = 0;
    for (int i = 0; i < 100000 && db_chat_add(db, run, 0, 1, "user", big, err) > 0; i++) ok++;
    int clear = strstr(err, "full.db: disk full") != NULL;
    if (!clear) fprintf(stderr, "tmpfs full message: %s\n", err);
    db_close(db);
    /* the checks run here: the mount exists only in this namespace */
    db = db_open(path, 1, err);
    long long n = db ? q_int(db->h, "SELECT count(*) FROM chats") : -1;
    int intact = db && db_integrity_check(db, err) == 0 && n == ok && ok > 10;
    if (!intact) fprintf(stderr, "after ENOSPC: %lld rows vs %ld committed: %s\n", n, ok, err);
    db_close(db);
    long *r = res;
    r[0] = clear;
    r[1] = intact;
    r[2] = ok;
    return 0;
}

/* a real ENOSPC: a 1 MiB tmpfs in a private mount namespace, when the
 * kernel lets us mount one (else only the RLIMIT_FSIZE test above runs) */
static void test_full_tmpfs(void)
{
    long res[3] = {0, 0, 0};
    int status;
    int got = in_child(fill_tmpfs, NULL, res, sizeof res, &status) == 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        printf("note: cannot mount a tmpfs here; the ENOSPC test did not run\n");
        return;
    }
    CHECK(got && WIFEXITED(status) && WEXITSTATUS(status) == 0, "tmpfs child (status %d)", status);
    CHECK(res[0] == 1, "ENOSPC gives 'disk full'");
    CHECK(res[1] == 1, "after ENOSPC: integrity ok and all %ld committed rows there", res[2]);
}

/* db.h's thread contract, asserted: another thread's statement aborts
 * (in a child: the assertion kills it), after db_adopt it works */
typedef struct { Db *db; int adopt, rc; } OtherThread;

static void *other_thread(void *arg)
{
    OtherThread *o = arg;
    char err[OB_ERRLEN];
    DbRun *runs = NULL;
    int n = 0;
    if (o->adopt) db_adopt(o->db);
    o->rc = db_run_list(o->db, &runs, &n, err);
    for (int i = 0; i < n; i++) db_run_free(&runs[i]);
    free(runs);
    return NULL;
}

static void test_thread_contract(void)
{
    char path[4200], err[OB_ERRLEN];
    snprintf(path, sizeof path, "%s/thread.db", dir);
    Db *db = db_open(path, 0, err);
    CHECK(db != NULL, "%s", err);
    if (!db) return;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        freopen("/dev/null", "w", stderr);
        OtherThread o = {db, 0, 0};
        pthread_t th;
        pthread_create(&th, NULL, other_thread, &o);
        pthread_join(th, NULL);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "a Db used from another thread aborts (status %d)", status);
    OtherThread o = {db, 1, -1};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, other_thread, &o) == 0, "thread");
    pthread_join(th, NULL);
    CHECK(o.rc == 0, "after db_adopt another thread uses it");
    db_adopt(db);
    db_close(db);
}

/* train --sweep's queue: pending runs without an owner, grouped by sweep;
 * a read-write open leaves them pending (nobody owns them to die) */
static void test_queue(void)
{
    char err[OB_ERRLEN];
    Db *db = open_tmp("queue.db");
    if (!db) return;
    int64_t a = db_run_queue(db, "sw-lr=0.001", 0, "{\"lr\":0.001}", 50, "sw", err);
    int64_t b = db_run_queue(db, "sw-lr=0.002", 0, "{\"lr\":0.002}", 50, "sw", err);
    int64_t c = db_run_create(db, "solo", 0, "{}", 5, err);
    CHECK(a > 0 && b > a && c > b, "queue: %s", err);
    CHECK(db_run_queue(db, "sw-lr=0.001", 0, "{}", 50, "sw", err) == -1 && strstr(err, "exists already"), "dup: %s", err);
    db_close(db);
    db = db_open(tmp("queue.db"), 0, err);
    CHECK(db != NULL, "reopen: %s", err);
    if (!db) return;
    DbRun r;
    CHECK(db_run_get(db, a, &r, err) == 0 && r.status == RUN_PENDING && r.owner_pid == 0 && r.sweep &&
              !strcmp(r.sweep, "sw") && r.total_steps == 50,
          "a queued run is pending, unowned, in its sweep");
    db_run_free(&r);
    CHECK(db_run_get(db, c, &r, err) == 0 && r.sweep == NULL && r.status == RUN_RUNNING, "a plain run has no sweep");
    db_run_free(&r);
    char v[32];
    CHECK(db_run_hparam(db, b, "lr", v, sizeof v, err) == 1 && atof(v) == 0.002, "queued options: %s", v);
    db_close(db);
}

int main(void)
{
    if (test_tmpdir(dir, sizeof dir, "onebit-test-db")) return 1;
    test_fresh_and_migration();
    test_crud();
    test_queue();
    test_layer_stats_roundtrip();
    test_interrupted();
    test_read_only();
    test_locked();
    test_full_disk();
    test_full_tmpfs();
    test_default_path();
    test_thread_contract();
    test_rmtree(dir);
    return test_done("test_db");
}
