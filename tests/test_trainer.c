/* test_trainer.c -- the QAT trainer on stories260K: determinism, bitwise
 * resume (N steps straight == K steps + checkpoint + resume + N-K steps,
 * losses and final parameters), pause/resume/stop from another thread,
 * hostile checkpoints (corrupt, other teacher, other config), version 1
 * and 2 checkpoints still resuming, --layernorm off (its checkpoint and
 * student, a resume with another --layernorm or --ste refused),
 * --optim-state bf16 (its own bitwise resume,
 * losses near fp32's, its checkpoint refused by an fp32 run), the memory
 * check's hints (trainer_memory_check), and a
 * checkpoint path longer than an event's text reaching the run store
 * intact (the DbWriter records and hashes the file the trainer wrote). */
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/blas.h"
#include "base/common.h"
#include "db/db.h"
#include "base/file.h"
#include "blaswatch.h"
#include "train/data.h"
#include "onebit/bitlinear.h"
#include "onebit/student.h"
#include "test.h"
#include "train/qat.h"
#include "train/trainer.h"
#include "train/session.h"
#include "base/opt.h"

enum { MAXSTEPS = 64 };

static Model M;
static Tokenizer TK;
static DataSet D;
static char SHA[65];
static char dir[256];

typedef struct {
    double loss[MAXSTEPS + 1];   /* by step */
    int nsteps, ckpts, paused, status_final;
    int eval_kinds;              /* bits: teacher 1, ptq-xnor 2, ptq-svid 4, student 8 */
    double eval_student;         /* last "student" EV_EVAL */
    char status_msg[512];
} Seen;

static void collect(EventRing *r, Seen *s)
{
    Event ev[64];
    int n;
    while ((n = evring_pop(r, ev, 64)) > 0)
        for (int i = 0; i < n; i++) {
            const Event *e = &ev[i];
            if (e->kind == EV_STEP && e->step >= 1 && e->step <= MAXSTEPS) { s->loss[e->step] = e->loss; s->nsteps++; }
            if (e->kind == EV_CKPT) s->ckpts++;
            if (e->kind == EV_EVAL) {
                if (!strcmp(e->text, "teacher")) s->eval_kinds |= 1;
                if (!strcmp(e->text, "ptq-xnor")) s->eval_kinds |= 2;
                if (!strcmp(e->text, "ptq-svid")) s->eval_kinds |= 4;
                if (!strcmp(e->text, "student")) { s->eval_kinds |= 8; s->eval_student = e->eval_nll; }
            }
            if (e->kind == EV_STATUS) {
                if (e->status == RUN_PAUSED) s->paused++;
                s->status_final = e->status;
                snprintf(s->status_msg, sizeof s->status_msg, "%s", e->text);
            }
        }
}

/* the test's small, fast settings, given as a user types them: through
 * train's own option rows (session_opts), on top of their defaults */
static void base_cfg(TrainConfig *c, long steps)
{
    static const char *const set[][2] = {{"seq-len", "32"}, {"batch", "2"}, {"accum", "2"}, {"lr", "2e-3"},
                                         {"warmup", "2"},   {"seed", "11"}, {"eval-windows", "4"}};
    char err[OB_ERRLEN];
    SessionOpts o;
    session_opts_init(&o);
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        CHECK(opt_set(opt_find(session_opts, set[i][0]), &o, set[i][1], err) == 0, "--%s: %s", set[i][0], err);
    *c = o.cfg;
    c->steps = steps;
    session_opts_free(&o);
}

/* run to the end; returns the join result; params malloc'd into *p */
static int run(const TrainConfig *c, const char *sha, Seen *s, float **p, size_t *np, TrainSummary *sum, char *err)
{
    EventRing r;
    evring_init(&r, 8192);
    memset(s, 0, sizeof *s);
    Trainer *t;
    if (trainer_start(&t, c, &M, &TK, &D, sha, &r, err)) { evring_destroy(&r); return -2; }
    int rc = trainer_join(t, sum);
    collect(&r, s);
    if (p) { *p = NULL; trainer_params(t, p, np); }
    trainer_free(t);
    evring_destroy(&r);
    return rc;
}

/* resume checkpoint ck with c (its optimizer state): the final parameters
 * must be want (n); then with the other state it must be refused, naming
 * the checkpoint's. The resumed run's events in *s. */
static void resume_same_refuse_other(TrainConfig c, const char *ck, const float *want, size_t n, const char *what, Seen *s)
{
    char err[OB_ERRLEN];
    c.resume_path = ck;
    c.stop_after = 0;
    c.ckpt_path = NULL;
    TrainSummary sum;
    float *p = NULL;
    size_t np = 0;
    CHECK(run(&c, SHA, s, &p, &np, &sum, err) == 0, "%s: resume: %s", what, sum.message);
    CHECK(np == n && p && !memcmp(p, want, n * sizeof(float)), "%s: bit-identical final parameters after resume", what);
    int own = c.optim_state;
    c.optim_state = own == QAT_OPTIM_BF16 ? QAT_OPTIM_FP32 : QAT_OPTIM_BF16;
    Seen s2;
    CHECK(run(&c, SHA, &s2, NULL, NULL, &sum, err) == -1 &&
              strstr(sum.message, own == QAT_OPTIM_BF16 ? "--optim-state bf16" : "--optim-state fp32"),
          "%s: refused with the other optimizer state: %s", what, sum.message);
    free(p);
}

/* the exported .onebit sp: every linear's LayerNorm flag is norm, and
 * (up to FP16 g, h) it gives the trainer's held-out NLL; sp removed */
static void check_student(const char *sp, double nll_want, int norm, const char *what)
{
    char err[OB_ERRLEN];
    Model sm;
    Tokenizer st;
    if (student_load(&sm, &st, sp, err) == 0) {
        int norms = 0, n = sm.cfg.n_layers * LIN_PER_LAYER;
        for (int i = 0; i < n; i++) norms += ((const BitLinear *)sm.lin[i].impl)->norm;
        CHECK(norms == norm * n, "%s: %d of %d linears of the student have a LayerNorm", what, norms, n);
        double nll;
        long nt;
        CHECK(trainer_dense_nll(&sm, &D, 0, &nll, &nt, err) == 0, "%s: student eval: %s", what, err);
        CHECK_NEAR(nll, nll_want, 0.02, "packed student vs trainer held-out NLL");
        tok_free(&st);
        model_free(&sm);
    } else
        CHECK(0, "%s: student_load: %s", what, err);
    unlink(sp);
}

/* version 1 and 2 checkpoints, made from the version 3 file v3 of n
 * parameters by dropping the fields they lack (version 2: the experts,
 * the estimator and the LayerNorm flag, 20 bytes; version 1: the optimizer
 * state too):
 * each resumes to the same final parameters want, taking the defaults
 * (a resume with another --ste is refused) */
static void check_ckpt_old(const TrainConfig *base, const char *v3, size_t n, const float *want)
{
    char err[OB_ERRLEN], old[600];
    char *raw = NULL;
    size_t size = 0;
    if (ob_read_file(v3, &raw, &size, err) || size < 8 + 3 * n * 4 + 32) { CHECK(0, "read %s: %s", v3, err); free(raw); return; }
    size_t arrays = size - 8 - 3 * n * 4, code = arrays - 24; /* u32 optimizer state, u32 experts, u32 + f64 ste, u32 no LayerNorm */
    const unsigned char *u = (unsigned char *)raw;
    CHECK(file_get_u32le(u + 8) == 3 && file_get_u32le(u + code) == 0 && file_get_u32le(u + code + 4) == 0 && file_get_u32le(u + code + 8) == QAT_STE_ONEBIT &&
              file_get_u32le(u + arrays - 4) == 0,
          "a version 3 checkpoint with FP32 state (code 0), no experts, the paper's estimator, LayerNorm on");
    unsigned char *o = malloc(size);
    for (uint32_t ver = 2; ver >= 1; ver--) {
        size_t cut = ver == 2 ? 20 : 24, at = arrays - cut; /* the fields dropped end where the arrays begin */
        memcpy(o, raw, at);
        memcpy(o + at, raw + arrays, size - 8 - arrays);
        size_t len = size - 8 - cut;
        o[8] = (unsigned char)ver; o[9] = o[10] = o[11] = 0;
        uint64_t h = file_fnv1a(FILE_FNV_INIT, o, len);
        for (int i = 0; i < 8; i++) o[len + (size_t)i] = (unsigned char)(h >> 8 * i);
        snprintf(old, sizeof old, "%s.v%u", v3, ver);
        CHECK(file_write_atomic(old, o, len + 8, err) == 0, "write %s: %s", old, err);
        Seen s;
        resume_same_refuse_other(*base, old, want, n, ver == 2 ? "version 2 checkpoint" : "version 1 checkpoint", &s);
        TrainConfig c = *base;
        c.resume_path = old;
        c.ckpt_path = NULL;
        c.ste.kind = QAT_STE_CLIP;
        TrainSummary sum;
        CHECK(run(&c, SHA, &s, NULL, NULL, &sum, err) == -1 && strstr(sum.message, "--ste onebit"),
              "version %u: the default estimator taken, --ste clip refused: %s", ver, sum.message);
        unlink(old);
    }
    free(o);
    free(raw);
}

/* --layernorm off: the losses differ from base's (first step loss0), the
 * checkpoint records it (trainer_ckpt_read: norm 0; a resume with LayerNorm
 * on, or with another --ste, refused naming the checkpoint's), the resumed
 * run writes a student whose every linear has no LayerNorm and whose
 * held-out NLL is the trainer's (so the file's flag is honoured) */
static void check_layernorm_off(const TrainConfig *base, double loss0)
{
    char err[OB_ERRLEN], ck[512], sp[512];
    snprintf(ck, sizeof ck, "%s/noln.ckpt", dir);
    snprintf(sp, sizeof sp, "%s/noln.onebit", dir);
    TrainConfig c = *base;
    c.resume_path = NULL;
    c.no_layernorm = 1;
    c.steps = 6;
    c.stop_after = 3;
    c.ckpt_path = ck;
    Seen s;
    TrainSummary sum;
    CHECK(run(&c, SHA, &s, NULL, NULL, &sum, err) == 0 && sum.status == RUN_STOPPED, "no LN: 3 steps: %s", sum.message);
    CHECK(isfinite(s.loss[1]) && s.loss[1] != loss0, "no LN: another loss at step 1 (%.9g vs %.9g)", s.loss[1], loss0);
    TrainerCkpt k;
    CHECK(trainer_ckpt_read(ck, &M.cfg, SHA, &k, err) == 0 && k.norm == 0 && k.step == 3, "no LN: checkpoint: %s", err);
    StudentLinearSrc *src = calloc((size_t)M.cfg.n_layers * LIN_PER_LAYER, sizeof *src);
    trainer_ckpt_sources(&k, &M.cfg, src);
    int off = 1;
    for (int i = 0; i < M.cfg.n_layers * LIN_PER_LAYER; i++) off &= src[i].norm == 0;
    CHECK(off, "no LN: the checkpoint's sources have norm 0");
    free(src);
    trainer_ckpt_free(&k);
    c.stop_after = 0;
    c.resume_path = ck;
    c.ckpt_path = NULL;
    c.no_layernorm = 0;
    CHECK(run(&c, SHA, &s, NULL, NULL, &sum, err) == -1 && strstr(sum.message, "--layernorm off"),
          "no LN: a resume with LayerNorm on refused: %s", sum.message);
    c.no_layernorm = 1;
    c.ste.kind = QAT_STE_SMOOTH;
    c.ste.a = 1;
    CHECK(run(&c, SHA, &s, NULL, NULL, &sum, err) == -1 && strstr(sum.message, "--ste onebit") && strstr(sum.message, "not tanh"),
          "no LN: a resume with --ste tanh refused: %s", sum.message);
    c.ste = base->ste;
    c.out_path = sp;
    CHECK(run(&c, SHA, &s, NULL, NULL, &sum, err) == 0 && sum.status == RUN_FINISHED && s.nsteps == 3,
          "no LN: resumed to 6: %s", sum.message);
    check_student(sp, sum.student_nll, 0, "no LN");
    unlink(ck);
}

/* --optim-state bf16: its own bit-identical resume, half the moment bytes
 * in the checkpoint, losses near fp32's (fp32 run: loss by step in a32,
 * final parameters p32), and an FP32 resume of its checkpoint refused */
static void check_bf16(const TrainConfig *base, const char *ck, const float *p32, size_t n, const Seen *a32)
{
    char err[OB_ERRLEN];
    TrainConfig c = *base;
    c.optim_state = QAT_OPTIM_BF16;
    c.resume_path = NULL;
    c.stop_after = 0;
    c.ckpt_path = NULL;
    Seen a, b, b2;
    TrainSummary sa, sb;
    float *pa = NULL;
    size_t na = 0;
    CHECK(run(&c, SHA, &a, &pa, &na, &sa, err) == 0 && a.nsteps == 12, "bf16 run: %s", sa.message);
    CHECK(na == n && pa && memcmp(pa, p32, n * sizeof(float)) != 0, "bf16 moments change the parameters");
    double worst = 0;
    for (int i = 1; i <= 12; i++) worst = fmax(worst, fabs(a.loss[i] - a32->loss[i]) / a32->loss[i]);
    CHECK(a.loss[1] == a32->loss[1] && worst < 0.02, "bf16 losses within 2%% of fp32's (worst %.4f)", worst);
    c.ckpt_path = ck;
    c.stop_after = 5;
    CHECK(run(&c, SHA, &b, NULL, NULL, &sb, err) == 0 && sb.steps_done == 5, "bf16 5 steps: %s", sb.message);
    struct stat st;
    CHECK(stat(ck, &st) == 0, "bf16 checkpoint written");
    char *raw = NULL;
    size_t size = 0;
    ob_read_file(ck, &raw, &size, err);
    CHECK(size > n * 8 + 32 && file_get_u32le((unsigned char *)raw + size - 8 - n * 8 - 24) == 1,
          "bf16 checkpoint: params (4 bytes) + m, v (2 bytes each) per parameter after the code 1 (and the "
          "experts, estimator and LayerNorm fields) (%zu bytes)", size);
    free(raw);
    resume_same_refuse_other(c, ck, pa, na, "bf16", &b2);
    int same = b2.nsteps == 7;
    for (int i = 1; i <= 5; i++) same &= b.loss[i] == a.loss[i];
    for (int i = 6; i <= 12; i++) same &= b2.loss[i] == a.loss[i];
    CHECK(same, "bf16: 5 + resume + 7 steps, bit-identical losses");
    free(pa);
    unlink(ck);
}

/* --mos 3: a run of 12 steps; 5 + checkpoint + resume gives its bits; the
 * checkpoint records E (resuming it without --mos or with another E is
 * refused, naming it; so is the OneBit checkpoint ck5 with --mos); the
 * memory text counts the experts; the exported student has them */
static void check_mos(const TrainConfig *base, const char *ck, const char *ck5)
{
    char err[OB_ERRLEN], sp[600];
    TrainConfig c = *base;
    c.mos = 3;
    c.resume_path = NULL;
    c.stop_after = 0;
    c.ckpt_path = NULL;
    snprintf(sp, sizeof sp, "%s.mos.onebit", ck);
    c.out_path = sp;
    Seen a, b, b2, h;
    TrainSummary sa, sb, sh;
    float *pa = NULL, *pb = NULL;
    size_t na = 0, nb = 0;
    CHECK(run(&c, SHA, &a, &pa, &na, &sa, err) == 0 && a.nsteps == 12, "--mos 3 run: %s", sa.message);
    CHECK(na == qat_config_params_mos(&M.cfg, 3) && na > qat_config_params(&M.cfg), "--mos 3: %zu parameters", na);
    printf("--mos 3: held-out student nll %.4f (svid %.4f, teacher %.4f)\n", sa.student_nll, sa.svid_nll, sa.teacher_nll);
    Model sm;
    if (student_load(&sm, NULL, sp, err) == 0) {
        const BitLinear *bl = student_linear(&sm, 0);
        double nll;
        long nt;
        CHECK(bl && bl->mos == 3, "the exported student has 3 experts per linear");
        CHECK(trainer_dense_nll(&sm, &D, 0, &nll, &nt, err) == 0, "student eval: %s", err);
        CHECK_NEAR(nll, sa.student_nll, 0.02, "packed --mos student vs trainer held-out NLL");
        model_free(&sm);
    } else
        CHECK(0, "student_load: %s", err);
    unlink(sp);
    c.out_path = NULL;
    c.ckpt_path = ck;
    c.stop_after = 5;
    CHECK(run(&c, SHA, &b, NULL, NULL, &sb, err) == 0 && sb.steps_done == 5, "--mos 5 steps: %s", sb.message);
    c.stop_after = 0;
    c.resume_path = ck;
    c.ckpt_path = NULL;
    CHECK(run(&c, SHA, &b2, &pb, &nb, &sb, err) == 0 && b2.nsteps == 7, "--mos resume: %s", sb.message);
    CHECK(nb == na && pa && pb && !memcmp(pa, pb, na * 4), "--mos: 5 + resume + 7 steps, bit-identical parameters");
    c.mos = 2;
    CHECK(run(&c, SHA, &h, NULL, NULL, &sh, err) == -1 && strstr(sh.message, "resume with --mos 3"), "--mos 2 refused: %s", sh.message);
    c.mos = 0;
    CHECK(run(&c, SHA, &h, NULL, NULL, &sh, err) == -1 && strstr(sh.message, "--mos 3"), "no --mos refused: %s", sh.message);
    c.mos = 3;
    c.resume_path = ck5;
    CHECK(run(&c, SHA, &h, NULL, NULL, &sh, err) == -1 && strstr(sh.message, "resume with --mos 0"), "a OneBit checkpoint with --mos 3: %s", sh.message);
    char txt[512];
    trainer_memory_text(&M, &c, txt, sizeof txt);
    char want[64];
    snprintf(want, sizeof want, "%zu trainable parameters", na);
    CHECK(strstr(txt, want) != NULL, "memory text counts the experts: %s", txt);
    c.mos = 1;
    CHECK(trainer_config_check(&c, &M.cfg, err) == -1 && strstr(err, "--mos"), "--mos 1 refused: %s", err);
    free(pa);
    free(pb);
    unlink(ck);
}

/* trainer_memory_check against a given amount of memory: fits, or refused
 * naming what would fit */
static void check_memory_hints(void)
{
    char err[OB_ERRLEN];
    TrainConfig c;
    base_cfg(&c, 10);
    const ModelConfig *mc = &M.cfg;
    c.batch = 64;
    c.seq_len = 256;
    double f32 = qat_memory_bytes(mc, &(QatSize){64, 256, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0});
    double b16 = qat_memory_bytes(mc, &(QatSize){64, 256, QAT_OPTIM_BF16, 0, 0, 0, 0, 0, 0});
    double one = qat_memory_bytes(mc, &(QatSize){1, 256, QAT_OPTIM_FP32, 0, 0, 0, 0, 0, 0});
    double np4 = 4.0 * (double)qat_config_params(mc);
    CHECK(f32 - b16 >= np4 - 128 && f32 - b16 <= np4 + 128, "bf16 saves 4 bytes per parameter: %.0f for %.0f", f32 - b16, np4);
    CHECK(trainer_memory_check(&M, &c, f32, err) == 0, "fits in exactly its size");
    CHECK(trainer_memory_check(&M, &c, 0, err) == 0, "unknown memory: fits");
    CHECK(trainer_memory_check(&M, &c, f32 - 1, err) == -1 && strstr(err, "--optim-state bf16") && strstr(err, "--batch 63") &&
              strstr(err, "--seq-len") && strstr(err, "training state"), "one byte short: %s", err);
    CHECK(trainer_memory_check(&M, &c, one + 1, err) == -1 && strstr(err, "--batch 1") && !strstr(err, "--optim-state"),
          "room for batch 1 only: %s", err);
    c.optim_state = QAT_OPTIM_BF16;
    CHECK(trainer_memory_check(&M, &c, 1000, err) == -1 && strstr(err, "too little even with"), "nothing fits: %s", err);
    char txt[512];
    trainer_memory_text(&M, &c, txt, sizeof txt);
    CHECK(strstr(txt, "at 12 bytes each (BF16 AdamW moments)") != NULL, "memory text: %s", txt);
    c.optim_state = QAT_OPTIM_FP32;
    trainer_memory_text(&M, &c, txt, sizeof txt);
    CHECK(strstr(txt, "at 16 bytes each (FP32 AdamW moments)") != NULL, "memory text: %s", txt);
}

static int file_copy(const char *from, const char *to)
{
    char *b, e[OB_ERRLEN];
    size_t n;
    if (ob_read_file(from, &b, &n, e)) return -1;
    int rc = file_write_atomic(to, b, n, e);
    free(b);
    return rc;
}

/* the trainer's thread never sets OpenBLAS's thread count (base/blas.h):
 * the caller's stays, during the run and after it, whatever cfg.threads */
static void check_blas_owner(void)
{
    char err[OB_ERRLEN];
    TrainConfig c;
    base_cfg(&c, 2);
    c.threads = 1;
    int nt0 = blas_threads();
    CHECK(blas_set_threads(2, err) == 0, "%s", err);
    BlasWatch bw;
    CHECK(blaswatch_start(&bw) == 0, "watch thread");
    Seen s;
    TrainSummary sum;
    int rc = run(&c, SHA, &s, NULL, NULL, &sum, err);
    int changed = blaswatch_stop(&bw);
    CHECK(rc == 0, "run: %s", err);
    CHECK(changed == 0, "the trainer changed OpenBLAS's thread count (seen %d times in %d polls)", changed, atomic_load(&bw.polls));
    CHECK(blas_set_threads(nt0, err) == 0, "%s", err);
}

int main(void)
{
    REQUIRE_SHARED(mp, "models/stories260K.bin");
    REQUIRE_SHARED(tp, "models/tok512.bin");
    REQUIRE_SHARED(xp, "data/tinystories_train_head_sample.txt");
    char err[OB_ERRLEN];
    if (test_tmpdir(dir, sizeof dir, "test_trainer")) return 1;
    if (model_load(&M, mp, err) || tok_load(&TK, tp, M.cfg.vocab_size, err)) { fprintf(stderr, "%s\n", err); return 1; }
    char *text;
    size_t len;
    ob_read_file(xp, &text, &len, err);
    text[len > 60000 ? 60000 : len] = 0; /* a few hundred stories are plenty */
    CHECK(data_from_text(&D, &TK, text, "<|endoftext|>", 32, M.cfg.seq_len, M.cfg.vocab_size, err) == 0, "data: %s", err);
    free(text);
    file_sha256(mp, SHA, err);
    char ck[512], ck5[512];
    snprintf(ck, sizeof ck, "%s/run.ckpt", dir);
    snprintf(ck5, sizeof ck5, "%s/step5.ckpt", dir);
    check_blas_owner();
    check_memory_hints();

    /* A: 12 steps straight */
    TrainConfig c;
    base_cfg(&c, 12);
    Seen a, b, b2;
    float *pa, *pb, *pb2;
    size_t na, nb, nb2;
    TrainSummary sa, sb, sb2;
    CHECK(run(&c, SHA, &a, &pa, &na, &sa, err) == 0, "run A: %s", sa.message);
    CHECK(a.nsteps == 12 && sa.status == RUN_FINISHED, "A: %d steps, status %d", a.nsteps, sa.status);
    int finite = 1;
    for (int i = 1; i <= 12; i++) finite &= isfinite(a.loss[i]) && a.loss[i] > 0;
    CHECK(finite, "A losses finite and positive");
    CHECK(a.eval_kinds == 15 && a.eval_student == sa.student_nll, "EV_EVAL for teacher, PTQs, student (%d)", a.eval_kinds);
    CHECK(sa.teacher_nll < sa.svid_nll, "teacher %.4f beats PTQ SVID %.4f", sa.teacher_nll, sa.svid_nll);

    /* the exported .onebit gives (up to FP16 g, h) the trainer's held-out NLL */
    {
        char sp[512];
        snprintf(sp, sizeof sp, "%s/a.onebit", dir);
        TrainConfig ce = c;
        ce.out_path = sp;
        Seen e;
        TrainSummary se;
        CHECK(run(&ce, SHA, &e, NULL, NULL, &se, err) == 0 && access(sp, R_OK) == 0, "export: %s", se.message);
        CHECK(se.student_nll == sa.student_nll, "export does not change the run");
        check_student(sp, sa.student_nll, 1, "LayerNorm on");
    }

    /* determinism: the same run again, bit for bit */
    CHECK(run(&c, SHA, &b, &pb, &nb, &sb, err) == 0, "run A again");
    CHECK(!memcmp(a.loss, b.loss, sizeof a.loss), "same config, bit-identical losses");
    CHECK(na == nb && pa && pb && !memcmp(pa, pb, na * sizeof(float)), "same config, bit-identical parameters");
    free(pb);

    /* B: 5 steps + checkpoint, then resume to 12 */
    c.ckpt_path = ck;
    c.stop_after = 5;
    float *pb1;
    size_t nb1;
    CHECK(run(&c, SHA, &b, &pb1, &nb1, &sb, err) == 0, "run B1: %s", sb.message);
    CHECK(sb.status == RUN_STOPPED && sb.steps_done == 5 && b.ckpts >= 1, "B1 stopped at 5 (%ld) with a checkpoint", sb.steps_done);
    file_copy(ck, ck5);
    /* the parameters on disk are little-endian, whatever the host: the
     * bytes of each value least significant first (params, Adam m, Adam v,
     * then the u64 checksum end the file) */
    {
        char *raw = NULL;
        size_t size = 0;
        CHECK(ob_read_file(ck5, &raw, &size, err) == 0 && pb1 && size > 3 * nb1 * 4 + 8, "read the checkpoint: %s", err);
        if (pb1 && size > 3 * nb1 * 4 + 8) {
            const unsigned char *at = (const unsigned char *)raw + size - 8 - 3 * nb1 * 4;
            size_t wrong = 0;
            for (size_t i = 0; i < nb1; i++) {
                uint32_t bits, disk = 0;
                memcpy(&bits, &pb1[i], 4);
                for (int k = 0; k < 4; k++) disk |= (uint32_t)at[4 * i + (size_t)k] << 8 * k;
                wrong += disk != bits;
            }
            CHECK(wrong == 0, "%zu of %zu parameters on disk are not their little-endian bytes", wrong, nb1);
            uint32_t bits0;
            memcpy(&bits0, &pb1[0], 4);
            CHECK(bits0 != 0 && at[0] == (bits0 & 0xff) && at[3] == bits0 >> 24, "parameter 0 (%08x): %02x %02x %02x %02x",
                  (unsigned)bits0, at[0], at[1], at[2], at[3]);
        }
        free(raw);
    }
    free(pb1);
    c.stop_after = 0;
    c.resume_path = ck5;
    CHECK(run(&c, SHA, &b2, &pb2, &nb2, &sb2, err) == 0, "run B2: %s", sb2.message);
    int same = 1;
    for (int i = 1; i <= 5; i++) same &= b.loss[i] == a.loss[i];
    for (int i = 6; i <= 12; i++) same &= b2.loss[i] == a.loss[i];
    CHECK(same, "5 + resume + 7 steps: bit-identical losses");
    CHECK(b2.nsteps == 7, "resume ran 7 steps (%d)", b2.nsteps);
    CHECK(nb2 == na && pb2 && !memcmp(pa, pb2, na * sizeof(float)), "bit-identical final parameters after resume");
    CHECK(sb2.student_nll == sa.student_nll, "same held-out NLL %.9g vs %.9g", sb2.student_nll, sa.student_nll);
    free(pb2);
    check_ckpt_old(&c, ck5, na, pa);
    check_layernorm_off(&c, a.loss[1]);
    check_mos(&c, ck, ck5);
    check_bf16(&c, ck, pa, na, &a);
    free(pa);

    /* hostile checkpoints */
    Seen h;
    TrainSummary sh;
    CHECK(run(&c, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", &h, NULL, NULL, &sh, err) == -1 &&
              strstr(sh.message, "another teacher"), "other teacher: %s", sh.message);
    c.batch = 3;
    CHECK(run(&c, SHA, &h, NULL, NULL, &sh, err) == -1 && strstr(sh.message, "--batch"), "other batch: %s", sh.message);
    c.batch = 2;
    c.lr = 1e-3f;
    CHECK(run(&c, SHA, &h, NULL, NULL, &sh, err) == -1 && strstr(sh.message, "--lr"), "other lr: %s", sh.message);
    c.lr = 2e-3f;
    char *raw;
    size_t size;
    ob_read_file(ck5, &raw, &size, err);
    raw[size / 2] ^= 0x10;
    file_write_atomic(ck5, raw, size, err);
    CHECK(run(&c, SHA, &h, NULL, NULL, &sh, err) == -1 && strstr(sh.message, "checksum"), "corrupt: %s", sh.message);
    raw[size / 2] ^= 0x10;
    file_write_atomic(ck5, raw, size / 3, err);
    CHECK(run(&c, SHA, &h, NULL, NULL, &sh, err) == -1 && strstr(sh.message, "checksum"), "truncated: %s", sh.message);
    file_write_atomic(ck5, "OBCKPT1\n", 8, err);
    CHECK(run(&c, SHA, &h, NULL, NULL, &sh, err) == -1, "header only: %s", sh.message);
    file_write_atomic(ck5, "junk", 4, err);
    CHECK(run(&c, SHA, &h, NULL, NULL, &sh, err) == -1 && strstr(sh.message, "not a onebit-tui checkpoint"), "junk: %s", sh.message);
    free(raw);
    c.resume_path = "/nonexistent/x.ckpt";
    CHECK(run(&c, SHA, &h, NULL, NULL, &sh, err) == -1 && strstr(sh.message, "/nonexistent/x.ckpt"), "missing: %s", sh.message);
    c.resume_path = NULL;

    /* bad configs are refused before the thread starts */
    TrainConfig bad;
    base_cfg(&bad, 10);
    bad.seq_len = 1024;
    CHECK(trainer_start(&(Trainer *){0}, &bad, &M, &TK, &D, SHA, NULL, err) == -1 && strstr(err, "context 512"), "seq-len: %s", err);
    base_cfg(&bad, 10);
    bad.seq_len = 16;
    CHECK(trainer_start(&(Trainer *){0}, &bad, &M, &TK, &D, SHA, NULL, err) == -1, "data/config seq-len mismatch: %s", err);

    /* pause / resume / stop through the API from this thread */
    TrainConfig pc;
    base_cfg(&pc, 100000);
    pc.ckpt_path = ck;
    EventRing r;
    evring_init(&r, 8192);
    Trainer *t;
    CHECK(trainer_start(&t, &pc, &M, &TK, &D, SHA, &r, err) == 0, "start: %s", err);
    Seen s;
    memset(&s, 0, sizeof s);
    struct pollfd pf = {evring_fd(&r), POLLIN, 0};
    int last_step = 0, state = 0, paused_at = -1, steps_while_paused = 0, resumed_ok = 0, stopped = 0;
    while (!stopped) {
        poll(&pf, 1, 1000);
        Event ev[64];
        int n = evring_pop(&r, ev, 64);
        for (int i = 0; i < n; i++) {
            Event *e = &ev[i];
            if (e->kind == EV_STEP) {
                if (state == 2) steps_while_paused++;
                last_step = e->step;
                if (state == 3 && e->step > paused_at) resumed_ok = 1;
            }
            if (e->kind == EV_STATUS && e->status == RUN_PAUSED) { state = 2; paused_at = last_step; }
            if (e->kind == EV_STATUS && (e->status == RUN_STOPPED || e->status == RUN_FAILED || e->status == RUN_FINISHED)) {
                stopped = 1;
                s.status_final = e->status;
            }
            if (e->kind == EV_CKPT) s.ckpts++;
        }
        if (state == 0 && last_step >= 2) { trainer_pause(t); state = 1; }
        if (state == 2) {
            /* paused: no step may arrive; wait for silence a while, then resume */
            if (poll(&pf, 1, 300) == 0) { trainer_resume(t); state = 3; }
        }
        if (state == 3 && resumed_ok) { trainer_stop(t); state = 4; }
    }
    TrainSummary ss;
    CHECK(trainer_join(t, &ss) == 0, "join after stop: %s", ss.message);
    CHECK(paused_at >= 2 && steps_while_paused == 0, "paused at %d, %d steps while paused", paused_at, steps_while_paused);
    CHECK(resumed_ok, "steps again after resume");
    CHECK(s.status_final == RUN_STOPPED && ss.status == RUN_STOPPED, "status stopped (%d)", s.status_final);
    CHECK(ss.steps_done > paused_at && ss.steps_done < 100000, "stopped at %ld", ss.steps_done);
    CHECK(s.ckpts >= 1 && access(ck, R_OK) == 0, "checkpoint on stop");
    trainer_free(t);
    evring_destroy(&r);
    /* the stop checkpoint resumes */
    pc.resume_path = ck;
    pc.stop_after = ss.steps_done + 1;
    Seen s2;
    TrainSummary ss2;
    CHECK(run(&pc, SHA, &s2, NULL, NULL, &ss2, err) == 0 && ss2.steps_done == ss.steps_done + 1, "resume the stop checkpoint: %s",
          ss2.message);

    /* a long checkpoint path: trainer -> ring -> DbWriter, as in train --db */
    {
        char ldir[2048], lp[2300], dbp[512];
        int k = snprintf(ldir, sizeof ldir, "%s", dir);
        for (int i = 0; i < 5; i++) { /* five levels of 150 characters */
            k += snprintf(ldir + k, sizeof ldir - k, "/%03d", i);
            for (int j = 0; j < 146; j++) ldir[k++] = 'd';
            ldir[k] = 0;
            CHECK(mkdir(ldir, 0777) == 0, "mkdir level %d", i);
        }
        snprintf(lp, sizeof lp, "%s/long-path.ckpt", ldir);
        snprintf(dbp, sizeof dbp, "%s/long.db", dir);
        CHECK(strlen(lp) > 512, "the path is long (%zu)", strlen(lp));
        Db *db = db_open(dbp, 0, err);
        CHECK(db != NULL, "db: %s", err);
        int64_t id = db ? db_run_create(db, "long", 0, "{}", 2, err) : -1;
        DbWriter *w = id > 0 ? db_writer_start(dbp, id, NULL, err) : NULL;
        CHECK(w != NULL, "writer: %s", err);
        TrainConfig lc;
        base_cfg(&lc, 2);
        lc.ckpt_path = lp;
        lc.run_id = id;
        EventRing r2;
        evring_init(&r2, 8192);
        Trainer *lt;
        TrainSummary ls;
        CHECK(w && trainer_start(&lt, &lc, &M, &TK, &D, SHA, &r2, err) == 0, "start: %s", err);
        if (w) {
            CHECK(trainer_join(lt, &ls) == 0, "long-path run: %s", ls.message);
            trainer_free(lt);
            Event ev[64];
            int n;
            while ((n = evring_pop(&r2, ev, 64)) > 0)
                for (int i = 0; i < n; i++) db_writer_push(w, &ev[i]);
            CHECK(db_writer_stop(w, err) == 0, "writer stop: %s", err);
            CHECK(access(lp, R_OK) == 0, "the trainer wrote %s", lp);
            char want[65];
            file_sha256(lp, want, err);
            DbCheckpoint c1;
            int have = db_checkpoint_latest(db, id, &c1, err);
            CHECK(have == 1, "checkpoint recorded: %s", err);
            if (have == 1) {
                CHECK(!strcmp(c1.path, lp), "the full path is recorded (%zu of %zu characters)", strlen(c1.path), strlen(lp));
                CHECK(!strcmp(c1.sha256, want), "and the file's sha256 (%s)", c1.sha256);
                free(c1.path);
            }
        }
        evring_destroy(&r2);
        if (db) db_close(db);
        unlink(lp);
        unlink(dbp);
        for (int i = 0; i < 5; i++) { rmdir(ldir); *strrchr(ldir, '/') = 0; }
    }

    unlink(ck);
    unlink(ck5);
    rmdir(dir);
    data_free(&D);
    tok_free(&TK);
    model_free(&M);
    return test_done("test_trainer");
}
