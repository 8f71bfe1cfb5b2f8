/* src/train/trainer.h -- the QAT trainer around qat.h: a background job
 * (base/job.h; trainer_start, trainer_join and trainer_free from the thread
 * that started it, pause/resume/stop/done from any thread) that
 * distils a OneBit student from a teacher on a DataSet, with AdamW, the
 * cosine schedule, clipping, periodic held-out evaluation, checkpoints with
 * bit-identical resume, and export of the packed .onebit student. Progress
 * goes out as events into an EventRing (events.h); consumers (CLI, run
 * store, UI) only read events.
 *
 * Determinism: the same data, config, seed and thread count give
 * bit-identical losses and parameters, also across a checkpoint + resume.
 *
 * Data parallelism (train/dist.h, started by mpirun in a --with-mpi build):
 * every rank runs the job; rank r trains on micro-batches r·accum ..
 * r·accum+accum-1 of the step's ranks·accum, the gradients are summed over
 * the ranks before clipping and AdamW (replicated), the state starts from
 * rank 0's; rank 0 alone writes the checkpoint and the student, whose
 * "accum" is ranks·accum (2 ranks == 1 rank with --accum 2, bit for bit,
 * and a checkpoint resumes on any number of ranks with the same product).
 * A failing rank ends every rank (dist_abort).
 *
 * Events: EV_STATUS (running/paused/finished/failed/stopped + message),
 * EV_STEP every log_every steps (means over the interval of loss, kl, mse;
 * lr, grad_norm of the last step; tokens/s, elapsed, ETA), EV_CKPT (path),
 * EV_LOG (text), EV_EVAL (held-out NLL; text says whose: "teacher",
 * "ptq-xnor", "ptq-svid" at step 0, then "student" — or "student-partial"
 * when max_eval_windows caps a periodic eval).
 *
 * Checkpoint file (little-endian; written to PATH.tmp.XXXXXX, fsync'd,
 * renamed over PATH):
 *   "OBCKPT1\n" (8), u32 version (3), char teacher_sha256[64],
 *   u64 data fingerprint (FNV-1a of the data set's tokens and split),
 *   u32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len,
 *   u64 n_params, u64 step, u64 rng, u64 windows drawn, f64 elapsed seconds,
 *   TrainConfig numbers (u64 steps, u32 seq_len, batch, accum, warmup, init,
 *   seed(u64), f64 lr, lr_min, alpha, kl_scale, beta1, beta2, eps, wd, clip),
 *   u32 optimizer state (0 FP32, 1 BF16; version 2 on),
 *   u32 mixture-of-scales experts per linear (0: none), u32 estimator kind
 *   (a QatSteKind), f64 its sharpness, u32 1 when the linears have no
 *   LayerNorm (--layernorm off) (version 3 on),
 *   f32 params[n_params], adam_m[n_params], adam_v[n_params] (f32, or BF16
 *   as u16 with --optim-state bf16),
 *   u64 FNV-1a 64 checksum of every byte before it.
 * Version 1 files (no optimizer state field, FP32 moments) and version 2
 * files (no experts, estimator or LayerNorm flag: the defaults) still load;
 * a checkpoint resumes only with the optimizer state, --mos, --ste and
 * --layernorm it was written with (else a message naming the value to give). */
#ifndef OB_TRAINER_H
#define OB_TRAINER_H

#include <stdint.h>

#include "train/data.h"
#include "base/events.h"
#include "model/model.h"
#include "onebit/svid.h"
#include "format/tokenizer.h"
#include "onebit/student.h"
#include "train/qat.h"

typedef struct {
    long steps;          /* optimizer steps (required) */
    int seq_len;         /* tokens per sequence (required) */
    int batch;           /* sequences per micro-batch (required) */
    int accum;           /* micro-batches per step (1) */
    float lr;            /* peak learning rate (TRAINER_DEFAULT_LR) */
    float lr_min;        /* cosine floor (lr / 10) ; < 0: lr/10 */
    long warmup;         /* warmup steps (-1: steps / 20) */
    float alpha;         /* hidden-state MSE weight (1) */
    float kl_scale;      /* KL weight (0.01) */
    float beta1, beta2, eps, wd, clip; /* 0.9, 0.98, 1e-8, 0.01, 1.0 */
    SvidMethod init;     /* SVID_NMF | SVID_SVD | SVID_XNOR | SVID_SIGN (SVID_NMF) */
    QatSte ste;          /* the sign's straight-through estimator (zero: the paper's) */
    int no_layernorm;    /* 1: the student's linears without their LayerNorm
                          * (qat_set_layernorm; --layernorm off) (0) */
    double time_limit;   /* wall-clock budget of the steps in seconds (0: none): the
                          * trainer times one step's micro-batches (twice, not
                          * applied), sets steps to those that fit (at most
                          * steps) and stops when the time is up, finishing as at
                          * the last step; a resumed run keeps its checkpoint's
                          * steps and the budget bounds the new session */
    long eval_every;     /* held-out eval every K steps (0: only at the end) */
    long ckpt_every;     /* checkpoint every K steps (0: only at stop/end) */
    long log_every;      /* EV_STEP every K steps (1) */
    int threads;         /* threads of the training (qat's pool) and of
                          * self-generation; 0: all online cores (0) */
    uint64_t seed;       /* data sampling seed (1) */
    int optim_state;     /* AdamW moments' storage, a QatOptim (QAT_OPTIM_FP32) */
    int recompute;       /* recompute each block's activations in the backward (0);
                          * same results, so not part of a checkpoint */
    int mos;             /* mixture of scales: experts per linear (0: off, the
                          * OneBit linear; 2..QAT_MOS_MAX; qat.h) */
    const char *out_path;    /* .onebit to export at the end (NULL: none) */
    const char *ckpt_path;   /* checkpoint file (NULL: no checkpoints) */
    const char *resume_path; /* checkpoint to resume from (NULL: fresh) */
    /* called on the trainer's thread before each periodic checkpoint with
     * the last step it logged; waits until the run record holds it
     * (session.c; NULL: none). A failure only means the record lags: the
     * checkpoint is written. Not before the final one (see trainer.c) */
    int (*ckpt_gate)(void *ud, long step);
    void *ckpt_gate_ud;
    long stop_after;         /* stop like trainer_stop once this many steps are done (0: never) */
    long max_eval_windows;   /* cap on held-out windows per eval (0: all) */
    int64_t run_id;          /* copied into every event */
} TrainConfig;

#define TRAINER_DEFAULT_LR 2e-3f

/* the defaults above; steps, seq_len, batch stay 0 (required) */
void trainer_config_default(TrainConfig *c);
/* check ranges; the message names the option (--lr ...) */
/* the threads a run uses: --threads, or all online cores when it is 0 */
int trainer_threads(const TrainConfig *c);
int trainer_config_check(const TrainConfig *c, const ModelConfig *mc, char *err);

/* Memory: the training state of c on the teacher (qat_memory_bytes of its
 * batch, seq_len, optim_state and the teacher's FP32 copies) in words: total,
 * bytes per trainable parameter, activations. trainer_memory_check: 0 when
 * it fits in `have` bytes (have <= 0: unknown, fits), else -1 with err
 * saying so and naming the options that would make it fit (--optim-state
 * bf16, --recompute, the largest --batch, the largest --seq-len). trainer_start checks
 * against qat_memory_available() and the run logs the text first. */
void trainer_memory_text(const Model *teacher, const TrainConfig *c, char *buf, size_t n);
/* the bytes trainer_memory_text totals (per rank) */
double trainer_memory_bytes(const Model *teacher, const TrainConfig *c);
int trainer_memory_check(const Model *teacher, const TrainConfig *c, double have, char *err);

/* One optimizer step of data-parallel training with ZeRO-1 (train/dist.h),
 * after every rank's backward passes into q's grads: the gradients summed
 * over the ranks into each rank's slice (off: qat_shard_offsets of q's
 * shards; reduce-scatter), the global norm from every slice's blocks added
 * in block order (the single-rank norm, bit for bit) clipped to clip,
 * AdamW step t (1-based) on the rank's slice with its moments, and the
 * updated slices to every rank (all-gather). One rank: clip and AdamW over
 * the whole arena. The collectives' seconds go to qat's QAT_T_COMM.
 * Every rank calls it at the same step. Returns the pre-clip norm. */
float trainer_zero_step(QatModel *q, const size_t *off, float clip, long t, const AdamWCfg *ac);

/* numbers of the final summary (also sent as EV_LOG lines) */
typedef struct {
    double teacher_nll, svid_nll, xnor_nll, student_nll; /* held-out, nats/token */
    long eval_tokens;
    long steps_done;
    double first_loss, last_loss;     /* mean of the first/last logged intervals of this session (NAN: none) */
    double elapsed;
    RunStatus status;
    char message[512];
} TrainSummary;

typedef struct Trainer Trainer;

/* Start training in a new job (its own thread). teacher, tok, data and ring are borrowed
 * and must outlive the trainer; teacher_sha identifies the teacher in
 * checkpoints. Config strings are copied. The thread builds the student
 * (SVID init), evaluates teacher / SVID PTQ / XNOR PTQ on the held-out split,
 * loads the resume checkpoint, trains, exports, and ends with EV_STATUS
 * finished | stopped | failed. */
int trainer_start(Trainer **out, const TrainConfig *cfg, const Model *teacher, const Tokenizer *tok,
                  const DataSet *data, const char *teacher_sha, EventRing *ring, char *err);
/* pause after the current step / resume. Thread-safe, idempotent. */
void trainer_pause(Trainer *t);
void trainer_resume(Trainer *t);
/* finish the current step, write a checkpoint, stop (status stopped) */
void trainer_stop(Trainer *t);
/* 1 once the thread has ended (its last event is in the ring) */
int trainer_done(Trainer *t);
/* wait for the thread; fills sum (may be NULL). Returns 0 when the run
 * finished or was stopped cleanly, -1 when it failed (sum->message). */
int trainer_join(Trainer *t, TrainSummary *sum);
/* stop and join if still running, free everything */
void trainer_free(Trainer *t);

/* the final parameters (for tests): a malloc'd copy of the qat_params arena
 * (n floats); only after trainer_join. -1 otherwise. */
int trainer_params(Trainer *t, float **out, size_t *n);

/* A checkpoint's trained student, read without a trainer (`export
 * --format bitllama-start --ckpt`): the file is checked (magic, version,
 * checksum, the model shape against c, the parameter count, finite values;
 * the teacher when teacher_sha is not NULL; a OneBit student, not a
 * mixture of scales) and its latent parameters copied out (the qat_params
 * layout). */
typedef struct {
    char teacher_sha[65];
    long step;
    int norm;            /* 1: the linears have their LayerNorm (0: --layernorm off) */
    float *params;
    size_t n_params;
} TrainerCkpt;
int trainer_ckpt_read(const char *path, const ModelConfig *c, const char *teacher_sha, TrainerCkpt *out, char *err);
/* the L*7 sources (latent w, g, h, k's norm; pointing into k) of the student
 * the trainer writes from these parameters */
void trainer_ckpt_sources(const TrainerCkpt *k, const ModelConfig *c, StudentLinearSrc *lin);
void trainer_ckpt_free(TrainerCkpt *k);

/* held-out NLL of a dense model (the teacher) over the data's held-out windows */
int trainer_dense_nll(const Model *m, const DataSet *d, long max_windows, double *nll, long *tokens, char *err);

#endif
