/* train_db.h -- `onebit-tui train --db DB`: record a training run in the
 * run store (db/db.h) and resume one by its id or name.
 *
 * The run's hyperparameters are stored as a JSON object keyed by the train
 * option names ("steps", "seq-len", "lr", "data", ...; paths absolute), so
 * `train --db DB --resume RUN` can rebuild the command line: the stored
 * options come first and anything given again on the command line
 * overrides them. Training then continues from the run's latest checkpoint,
 * with the same step numbers, and its events go to a db_writer. */
#ifndef OB_TRAIN_DB_H
#define OB_TRAIN_DB_H

#include "db/db.h"
#include "base/events.h"
#include "model/model.h"
#include "train/trainer.h"

/* What `train` parsed besides the TrainConfig. */
typedef struct {
    const char *teacher;      /* resolved path */
    const char *tokenizer;    /* as given (NULL: beside the teacher) */
    const char *data;         /* --data or NULL */
    const char *split;        /* --split or NULL */
    long self_generate;       /* --self-generate or 0 */
    const char *data_cache;   /* --data-cache or NULL */
} TrainDbArgs;

typedef struct TrainDb TrainDb;

/* record (or find) the teacher file: absolute path, sha256, format from
 * its content (the loader registry's name), shape as config JSON; returns its id or -1 */
int64_t train_db_teacher(Db *db, const char *teacher_path, const char *sha, const ModelConfig *mc, char *err);

/* For `--db DB --resume RUN`: a new argv (free with train_db_free_argv):
 * argv[0], RUN's stored options, then argv[1..]. */
int train_db_resume_argv(const char *db_path, const char *run, int argc, char **argv, int *out_argc, char ***out_argv,
                         char *err);
void train_db_free_argv(int argc, char **argv);

/* Open the store and either create a run (resume == NULL; name may be
 * NULL) or take over run `resume` (id or name): then cfg->resume_path
 * becomes its latest checkpoint, or NULL to start over when it has none.
 * Sets cfg->run_id. Prints one line saying which run it is. */
int train_db_begin(TrainDb **out, const char *db_path, const char *name, const char *resume, const TrainDbArgs *a,
                   TrainConfig *cfg, const char *teacher_sha, const ModelConfig *mc, char *err);
/* start the writer; its errors go to notify as EV_LOG */
int train_db_attach(TrainDb *t, EventRing *notify, char *err);
/* hand one trainer event to the writer (never blocks) */
void train_db_event(TrainDb *t, const Event *e);
/* Stop the writer (everything is committed), record the student when the
 * run finished, and mark a run that never reported its end failed.
 * -1 with err when the store could not keep up (training results are not
 * affected). Frees t. */
int train_db_end(TrainDb *t, int exit_code, char *err);

#endif
