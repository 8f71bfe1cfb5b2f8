/* src/format/trainer_state.h -- the Hugging Face Trainer's
 * `trainer_state.json` (what the OneBit authors' GPU trainer, transformers'
 * Trainer with DeepSpeed, writes beside every checkpoint): its `log_history`
 * as rows of training metrics and evaluations, so that `import` can put a run
 * trained elsewhere into the run store. Reentrant: pure functions of their
 * arguments.
 *
 * log_history is a list of objects, each with a `step`. A training log has
 * `loss` (and usually `learning_rate`, `epoch`, in newer versions
 * `grad_norm`); an evaluation log has `eval_loss`; the final summary has
 * `train_loss`/`train_runtime`. The OneBit trainer may log its two loss terms
 * too: `kl_loss`/`kl` and `mse_loss`/`mse` are read when present. Keys this
 * reader does not know are ignored; a value that is there but not a finite
 * number is an error naming the entry. */
#ifndef OB_TRAINER_STATE_H
#define OB_TRAINER_STATE_H

#include <stddef.h>

typedef struct {
    int step;
    /* NAN when the entry does not have it */
    double loss, lr, grad_norm, kl, mse, epoch;
    double eval_loss; /* an evaluation entry: NAN on training logs */
} TStateRow;

typedef struct {
    TStateRow *rows;   /* in the file's order; entries without loss or eval_loss are left out */
    int n;
    int global_step;   /* -1 when absent */
    int max_steps;     /* -1 when absent */
    double train_runtime; /* seconds of the final summary; NAN when absent */
} TState;

/* parse text (len bytes, need not be NUL-terminated); 0, or -1 with err */
int tstate_parse(const char *text, size_t len, TState *out, char *err);
/* read and parse a file; a directory means DIR/trainer_state.json */
int tstate_load(const char *path, TState *out, char *err);
void tstate_free(TState *s);

#endif
