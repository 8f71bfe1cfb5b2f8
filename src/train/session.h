/* src/train/session.h -- one training session, as `onebit-tui train` and
 * the workbench's Train screen both run it: the train options (one table,
 * session_opts), default paths, the checks that fail fast (options, the
 * teacher's context, writable outputs), the data (a text file, or
 * sequences the teacher generates, cached), the run record, the trainer's
 * start and join.
 *
 * The run record is an interface (SessionRecord) so that this layer does
 * not know the run store: db/train_db.h implements it; NULL records
 * nothing.
 *
 * Threads: a Session belongs to the thread that made it. The one exception
 * is session_prepare_data, which may run in a worker thread while the owner
 * leaves the Session alone (the workbench does so); its progress callback
 * runs in that worker. Calls in order:
 *   session_init -> [session_record_begin] -> session_prepare_data ->
 *   session_start -> session_event... -> session_join -> session_end
 * session_end may follow any of them (it marks a begun record failed when
 * the run never reported its end) and frees the session. */
#ifndef OB_SESSION_H
#define OB_SESSION_H

#include <stdint.h>

#include "base/events.h"
#include "base/opt.h"
#include "model/model.h"
#include "format/tokenizer.h"
#include "train/data.h"
#include "train/trainer.h"

/* The options of `train` (and of the Train form). Strings are malloc'd and
 * owned (session_opts_free); cfg's path pointers are not used here: the
 * session points them at out/ckpt/the resume checkpoint when it starts. */
typedef struct {
    TrainConfig cfg;
    char *teacher, *tokenizer;         /* as given (session_init: resolved teacher path) */
    char *data, *split;                /* --data FILE [--split SEP] */
    long self_generate;                /* --self-generate N (0: none) */
    char *data_cache;                  /* where generated sequences are cached */
    char *out, *ckpt;                  /* the student; its checkpoint (default out.ckpt) */
    char *resume;                      /* a checkpoint; with a run record: the run (id or name) */
    char *db, *name;                   /* the run store; the new run's name */
    char *ste;                         /* --ste as given (qat_ste_parse; into cfg.ste at the start) */
    char *time;                        /* --time as given (ob_parse_duration; into cfg.time_limit) */
    char *preset;                      /* --preset as given (recorded; session_apply_preset) */
    char *resume_ckpt;                 /* not an option: the checkpoint the record resumes from */
} SessionOpts;

/* the rows of every train option, in --help order; OPT_STORE rows are the
 * run's recorded hyperparameters */
extern const OptSpec session_opts[];

/* defaults (those of trainer_config_default); free with session_opts_free */
void session_opts_init(SessionOpts *o);
void session_opts_free(SessionOpts *o);
void session_opts_copy(SessionOpts *dst, const SessionOpts *src);
/* the combinations and ranges: data or self-generation (not both, --split
 * with --data, --data-cache with --self-generate), the required options
 * (--out too when need_out; --steps unless --time), --ste and --time,
 * trainer_config_check with the model's context when mc is given. The
 * message names the option. */
int session_opts_check(const SessionOpts *o, const ModelConfig *mc, int need_out, char *err);
/* the TrainConfig the options make: o->cfg with --ste and --time parsed
 * into it, and --steps SESSION_TIME_STEPS when only --time bounds the run */
int session_train_config(const SessionOpts *o, TrainConfig *cfg, char *err);
#define SESSION_TIME_STEPS 1000000000L

/* --preset NAME: a named set of option values. "onebit" is the paper's
 * recipe (the defaults, nothing set); "best" the defaults with what the
 * measurements of README's "Recipes and ablations" found to help. The
 * values as "KEY=V;KEY2=V2" ("" for none), NULL for an unknown name. */
const char *session_preset(const char *name);
/* set o->preset and its values, each through its row as on the command
 * line (give the command line again afterwards: it overrides them); -1
 * with err naming the presets for an unknown name */
int session_apply_preset(SessionOpts *o, const char *name, char *err);

/* ---- the run record --------------------------------------------------------------- */
typedef struct SessionRecord SessionRecord;
struct SessionRecord {
    /* create the run, or take over run o->resume; set o->cfg.run_id and,
     * for a resume, o->resume_ckpt (malloc'd; NULL: start over) */
    int (*begin)(SessionRecord *r, SessionOpts *o, const char *teacher_sha, const ModelConfig *mc, char *err);
    /* start storing events; errors go to notify as EV_LOG */
    int (*attach)(SessionRecord *r, EventRing *notify, char *err);
    /* one trainer event (never blocks) */
    void (*event)(SessionRecord *r, const Event *e);
    /* the trainer's thread, before a checkpoint: wait (bounded) until the
     * events of steps up to step are stored, so that a run killed after the
     * checkpoint resumes with every step recorded; 0, or -1 (it goes on) */
    int (*wait_step)(SessionRecord *r, int step);
    /* store what is left, mark a run that never ended failed (exit_code in
     * the message), free the record; -1 when the store could not keep up */
    int (*end)(SessionRecord *r, int exit_code, char *err);
};

/* ---- the session -------------------------------------------------------------------- */
typedef struct Session Session;

/* Copy the options, fill in the defaults (student: students/<name>-<time>.onebit
 * beside o->db, or ./runs.db, when o->out is not given; checkpoint: out.ckpt;
 * cache: the student's directory), check them against the teacher and
 * check that out, ckpt and the cache can be written. teacher, tok and
 * teacher_sha are borrowed until session_end; rec (may be NULL) is owned
 * from here on, also on failure. teacher_path is the resolved path to record. */
int session_init(Session **out, const SessionOpts *o, const char *teacher_path, const Model *teacher,
                 const Tokenizer *tok, const char *teacher_sha, SessionRecord *rec, char *err);
/* the options in effect (defaults filled in) */
const SessionOpts *session_opts_of(const Session *s);
/* create or take over the run now (else session_start does): before
 * the data, so that a store that cannot take the run fails fast */
int session_record_begin(Session *s, char *err);
/* read and tokenize the data, or generate (or reuse) the sequences;
 * progress as data_self_generated's (nonzero cancels) */
int session_prepare_data(Session *s, DataProgressFn progress, void *ud, char *err);
/* "data: ..." in words, after session_prepare_data */
void session_data_text(const Session *s, char *buf, size_t n);
/* begin the record if not yet, attach it to ring, start the trainer */
int session_start(Session *s, EventRing *ring, char *err);
/* the running trainer (pause/resume/stop/done), NULL before the start */
Trainer *session_trainer(Session *s);
int64_t session_run_id(const Session *s);
/* hand a trainer event to the record */
void session_event(Session *s, const Event *e);
/* wait for the trainer (trainer_join); sum may be NULL */
int session_join(Session *s, TrainSummary *sum);
/* stop and join a trainer still running, end the record, free everything;
 * -1 with err when the record could not be completed (the training's
 * results are not affected) */
int session_end(Session *s, int exit_code, char *err);

#endif
