/* db.h -- the run store: one SQLite file (default
 * $XDG_DATA_HOME/onebit-tui/runs.db) holding teachers, training runs and
 * their metrics, evaluations, checkpoints, per-layer statistics and chat
 * transcripts. All SQL of onebit-tui lives in db/. The schema is db/schema.sql
 * (compiled in); older databases are migrated forward on open (PRAGMA
 * user_version, db/migrations/). WAL mode, busy_timeout and foreign keys
 * are on for every connection.
 *
 * Two ways to write:
 *   - the direct calls below, on a Db of your own (the UI, the CLI), and
 *   - a DbWriter: a thread with its own connection that takes training
 *     Events (src/base/events.h) without ever blocking the producer and commits
 *     them in batches (not one fsync per step).
 *
 * A run in state running/paused records its owner process (pid, start time,
 * boot id, host). When the owner is gone the run reads as interrupted, and
 * a read-write open stores that.
 *
 * A Db is one connection: use it from the thread that opened it (each
 * reader, e.g. the UI thread, opens its own); another thread takes it over
 * with db_adopt, after the first one is done with it. Debug builds assert
 * this on every statement.
 *
 * Errors: every fallible call takes `char *err` (OB_ERRLEN) and returns -1
 * (or NULL) with "PATH: what happened" in it: a locked database, a read-only
 * file or directory, a full disk, an I/O error each get their own message. */
#ifndef OB_DB_H
#define OB_DB_H

#include <stddef.h>
#include <stdint.h>

#include "base/events.h"

typedef struct Db Db;

/* SQLite's data_version: it changes when another connection (another
 * process's run, its DB writer) has committed to the file since this
 * connection last looked; cheap (no table is read). -1 on an error */
int db_data_version(Db *db);

/* make the calling thread the one that uses db from now on (db.h) */
void db_adopt(Db *db);

/* the schema version this build creates and migrates to */
int db_schema_version(void);

/* $XDG_DATA_HOME/onebit-tui/runs.db, else $HOME/.local/share/onebit-tui/runs.db;
 * malloc'd, or NULL with err set when neither variable is usable */
char *db_default_path(char *err);

/* Open (path NULL: the default). Read-write creates the file and its
 * directories, migrates, and marks runs with a dead owner interrupted.
 * Read-only needs an existing database at the current version. */
Db *db_open(const char *path, int read_only, char *err);
void db_close(Db *db);
const char *db_path(const Db *db);
/* busy timeout in milliseconds (default 5000) */
void db_set_busy_timeout(Db *db, int ms);
/* PRAGMA integrity_check: 0 when "ok", else -1 with the first problem */
int db_integrity_check(Db *db, char *err);
/* store "interrupted" for every running/paused run whose owner is gone;
 * returns how many, or -1 */
int db_mark_interrupted(Db *db, char *err);

/* ---- teachers ----------------------------------------------------------- */
typedef struct {
    int64_t id;
    char *path, *sha256, *format, *config; /* config: JSON */
    double created;
} DbTeacher;

/* insert or find (path, sha256); format/config are updated; returns the id */
int64_t db_teacher_upsert(Db *db, const char *path, const char *sha256, const char *format,
                          const char *config_json, char *err);
int db_teacher_get(Db *db, int64_t id, DbTeacher *out, char *err);
void db_teacher_free(DbTeacher *t);

/* ---- runs --------------------------------------------------------------- */
typedef struct {
    int64_t id, teacher_id;       /* teacher_id 0: none */
    char *name, *teacher_path, *hparams, *message, *student_path; /* student_path may be NULL */
    RunStatus status;             /* interrupted when the owner died */
    int total_steps;
    int steps_done;               /* highest recorded step number (steps count from 1; 0: none) */
    int last_ckpt_step;           /* -1: no checkpoint */
    double best_ppl;              /* the student's lowest held-out perplexity (full evals,
                                     else capped ones), NAN: none */
    double created, updated;
    int64_t owner_pid;            /* 0: none */
    char *sweep;                  /* the sweep it was queued in (train --sweep), NULL: none */
} DbRun;

/* a new run in state running, owned by this process; name must be unique
 * (NULL: "run-<id>"); teacher_id 0 for none; returns the id */
int64_t db_run_create(Db *db, const char *name, int64_t teacher_id, const char *hparams_json,
                      int total_steps, char *err);
/* a run queued in state pending (no owner) as part of sweep (NULL: none),
 * to be taken over later as a resume is (train_db_begin); name as above */
int64_t db_run_queue(Db *db, const char *name, int64_t teacher_id, const char *hparams_json, int total_steps,
                     const char *sweep, char *err);
int db_run_get(Db *db, int64_t id, DbRun *out, char *err);
/* by id (all digits) or by name; "no run 'X'" when neither matches */
int db_run_find(Db *db, const char *id_or_name, DbRun *out, char *err);
/* all runs, newest first */
int db_run_list(Db *db, DbRun **out, int *n, char *err);
void db_run_free(DbRun *r);
void db_run_list_free(DbRun *runs, int n);
/* running/paused make this process the owner; the others clear it */
int db_run_set_status(Db *db, int64_t id, RunStatus st, const char *message, char *err);
int db_run_set_student(Db *db, int64_t id, const char *path, char *err);
int db_run_set_total(Db *db, int64_t id, int total_steps, char *err);
/* deletes the run and (cascade) its metrics, evals, checkpoints, chats;
 * files on disk are left alone */
int db_run_delete(Db *db, int64_t id, char *err);
/* a hyperparameter from the run's JSON as text (numbers as SQLite prints
 * them): 1 found, 0 absent, -1 error */
int db_run_hparam(Db *db, int64_t id, const char *key, char *buf, size_t n, char *err);

/* ---- metrics, evaluations, checkpoints ------------------------------------ */
typedef struct {
    int step;
    double loss, kl, mse, lr, grad_norm, tokens_per_s, wall;
} DbMetric;

typedef struct {
    int step;
    char dataset[128];
    char model[32];               /* student | student-partial | teacher | ptq-xnor | ptq-svid ("": student) */
    double nll, ppl, time;
} DbEval;

typedef struct {
    int64_t id;
    int step;
    char *path;
    char sha256[65];
    double time;
} DbCheckpoint;

/* insert or replace (a resumed run re-does steps with the same numbers) */
int db_metric_put(Db *db, int64_t run, const DbMetric *m, char *err);
int db_eval_put(Db *db, int64_t run, const DbEval *e, char *err);
int db_checkpoint_put(Db *db, int64_t run, int step, const char *path, const char *sha256, char *err);
/* in step order; free() the array */
int db_metrics(Db *db, int64_t run, DbMetric **out, int *n, char *err);
int db_evals(Db *db, int64_t run, DbEval **out, int *n, char *err);
int db_checkpoints(Db *db, int64_t run, DbCheckpoint **out, int *n, char *err);
void db_checkpoints_free(DbCheckpoint *c, int n);
/* latest checkpoint: 1 found (free out->path), 0 none, -1 error */
int db_checkpoint_latest(Db *db, int64_t run, DbCheckpoint *out, char *err);

/* ---- per-layer statistics: db_svid.h ----------------------------------- */

/* ---- zero-shot task results (eval --task --db) ------------------------------ */
typedef struct {
    int64_t id;
    int64_t run_id, teacher_id;   /* a run's student, or a teacher (0: none) */
    char model[16];               /* teacher | student */
    char task[64];
    char *file;                   /* the task file's absolute path */
    int items;
    double acc, acc_stderr, acc_norm, acc_norm_stderr; /* NAN: none */
    double time;
} DbTaskResult;

/* record one (time 0: now); returns its id */
int64_t db_task_result_put(Db *db, const DbTaskResult *r, char *err);
/* the results of run's student and of teacher (either 0: none), in task
 * order, the student's before the teacher's, newest first; free with
 * db_task_results_free */
int db_task_results(Db *db, int64_t run, int64_t teacher, DbTaskResult **out, int *n, char *err);
void db_task_results_free(DbTaskResult *r, int n);
/* the run whose student is path (absolute), the newest; 0 when none */
int64_t db_run_of_student(Db *db, const char *path, char *err);

/* ---- chats ---------------------------------------------------------------- */
typedef struct {
    int64_t id, run_id, teacher_id, session; /* run_id/teacher_id 0: none */
    char role[16];                /* system | user | assistant */
    char *text;
    double time;
} DbChat;

/* a fresh session number for a run's (or, run 0, a teacher's) chats */
int64_t db_chat_new_session(Db *db, int64_t run, int64_t teacher, char *err);
int64_t db_chat_add(Db *db, int64_t run, int64_t teacher, int64_t session, const char *role,
                    const char *text, char *err);
/* a run's (run != 0) or a teacher's chats in order; session < 0: all */
int db_chat_list(Db *db, int64_t run, int64_t teacher, int64_t session, DbChat **out, int *n, char *err);
void db_chat_list_free(DbChat *c, int n);

/* ---- the writer thread ---------------------------------------------------- */
typedef struct DbWriter DbWriter;

typedef struct {
    long events;        /* stored */
    long commits;       /* successful transactions */
    long failures;      /* failed commit attempts (retried) */
    long dropped;       /* lost before storing: ring overflow */
    long pending;       /* waiting to be committed */
} DbWriterStats;

/* Start a writer for run_id on its own connection to path. Errors go to
 * notify (may be NULL) as EV_LOG events with the message in text, and are
 * kept for db_writer_error. */
DbWriter *db_writer_start(const char *path, int64_t run_id, EventRing *notify, char *err);
/* batch limits (defaults 256 events, 0.25 s); call before pushing */
void db_writer_set_batch(DbWriter *w, int max_events, double max_seconds);
/* how long one commit waits for a lock held by someone else (default 5000 ms) */
void db_writer_set_busy_timeout(DbWriter *w, int ms);
/* the dataset name stored with EV_EVAL results (default ""); before pushing */
void db_writer_set_dataset(DbWriter *w, const char *name);
/* Never blocks on the disk. EV_STEP -> metrics, EV_EVAL -> evals (whose:
 * text, "" = student), EV_CKPT -> checkpoints (event_path: path, else text), EV_STATUS ->
 * the run's status (message in text). EV_CKPT and EV_STATUS are committed
 * at once. */
void db_writer_push(DbWriter *w, const Event *ev);
void db_writer_stats(DbWriter *w, DbWriterStats *st);
/* 1 and the last error message when the latest commit failed, else 0 */
int db_writer_error(DbWriter *w, char *err);
/* commit what is left, stop the thread, close; -1 with err when events
 * could not be stored (what was committed before stays intact) */
int db_writer_stop(DbWriter *w, char *err);
/* any thread: wait until the metrics of steps up to step are committed
 * (so that a checkpoint written after it never runs ahead of the store);
 * 0, or -1 after timeout_s seconds or when the writer is failing */
int db_writer_wait_step(DbWriter *w, int step, double timeout_s);

#endif
