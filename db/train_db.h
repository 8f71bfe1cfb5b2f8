/* db/train_db.h -- the run record of a training session (`onebit-tui train
 * --db DB`, the workbench): record a run in the run store (db/db.h) and
 * resume one by its id or name. The session's owner thread calls it.
 *
 * The run's hyperparameters are stored as a JSON object keyed by the train
 * option names ("steps", "seq-len", "lr", "data", ...; paths absolute),
 * written and read back by the rows of session_opts (train/session.h), so
 * `train --db DB --resume RUN` gets the stored options, checked as on the
 * command line, and anything given again on the command line overrides
 * them. Training then continues from the run's latest checkpoint,
 * with the same step numbers, and its events go to a db_writer. */
#ifndef OB_TRAIN_DB_H
#define OB_TRAIN_DB_H

#include "db/db.h"
#include "base/events.h"
#include "format/trainer_state.h"
#include "model/model.h"
#include "train/session.h"
#include "train/trainer.h"

typedef struct TrainDb TrainDb;

/* record (or find) the teacher file: absolute path, sha256, format from
 * its content (the loader registry's name), shape as config JSON; returns its id or -1 */
int64_t train_db_teacher(Db *db, const char *teacher_path, const char *sha, const ModelConfig *mc, char *err);

/* The options stored for run `run` over o, each read and checked by its
 * row of session_opts as on the command line; an error names the store,
 * the run and the option ("stored option 'batch' needs an integer from 1
 * to 65536, not '0'"). Options absent from the record keep their value. */
int train_db_load_opts(Db *db, int64_t run, SessionOpts *o, char *err);
/* the same for `--db DB --resume RUN` (RUN: id or name) */
int train_db_load_opts_named(const char *db_path, const char *run, SessionOpts *o, char *err);

/* Open the store and either create a run named o->name (NULL: run-<id>)
 * with o's options as its hyperparameters (o->resume == NULL), or take
 * over run o->resume (id or name): then o->resume_ckpt becomes a copy of
 * its latest checkpoint's path, or NULL to start over when it has none.
 * Sets o->cfg.run_id. Prints one line saying which run it is. */
int train_db_begin(TrainDb **out, const char *db_path, SessionOpts *o, const char *teacher_sha, const ModelConfig *mc,
                   char *err);
/* Queue a run named o->name with o's options in state pending, as part of
 * sweep (NULL: none), for a later train_db_begin with o->resume naming it
 * (which starts it from step 0: it has no checkpoint). Returns its id, or
 * -1 with err (a name taken already, a store that cannot be written). */
int64_t train_db_queue(const char *db_path, const SessionOpts *o, const char *teacher_sha, const ModelConfig *mc,
                       const char *sweep, char *err);
/* start the writer; its errors go to notify as EV_LOG */
int train_db_attach(TrainDb *t, EventRing *notify, char *err);
/* hand one trainer event to the writer (never blocks) */
void train_db_event(TrainDb *t, const Event *e);
/* any thread (the trainer's, before it writes a checkpoint): wait up to
 * 10 s until the metrics of steps up to step are committed; 0, or -1 */
int train_db_wait_step(TrainDb *t, int step);
/* Stop the writer (everything is committed), record the student when the
 * run finished, and mark a run that never reported its end failed.
 * -1 with err when the store could not keep up (training results are not
 * affected). Frees t. */
int train_db_end(TrainDb *t, int exit_code, char *err);

/* A run trained elsewhere (`onebit-tui import`) into the store at db_path:
 * the teacher (when teacher_path is given: its sha256 and shape), a run
 * named name (NULL: run-<id>) with hyperparameters {"imported-from": DIR,
 * "format": "bitllama", "global-step", "max-steps", "train-runtime" as
 * trainer_state.json has them} and total steps max_steps (else the last
 * step), a metric per training log row (loss, kl, mse, lr, grad_norm), an
 * evaluation per eval_loss row (model "student", dataset "imported
 * eval_loss", nll = eval_loss, ppl = exp), then write_student(ud) writes the
 * student file, which becomes the run's student, and the run is finished.
 * When anything fails the run is deleted again (nothing half-written) and
 * -1 returned with err; else the run's id, counts (may be NULL) filled. */
typedef struct {
    const char *name, *source, *student_path;
    const char *teacher_path, *teacher_sha; /* NULL: no teacher */
    const ModelConfig *mc;                   /* the teacher's shape */
    const TState *ts;                        /* NULL: no metrics */
} TrainImport;
typedef struct { int metrics, evals; } TrainImportCounts;
int64_t train_db_import(const char *db_path, const TrainImport *im, int (*write_student)(void *ud, char *err), void *ud,
                        TrainImportCounts *counts, char *err);

/* the session's run record (session.h) in the store at db_path: begin,
 * attach, event and end above; its end frees it */
SessionRecord *train_db_record(const char *db_path);

#endif
