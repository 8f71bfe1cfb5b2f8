/* src/cli/cmd_train.c -- `onebit-tui train`: distil a OneBit student from a teacher
 * (QAT) on a text file or on teacher-generated sequences, with progress
 * lines (a progress bar on a TTY), checkpoints, resume, SIGINT = graceful
 * stop, and a final held-out summary: teacher, PTQ baselines, student.
 * A thin caller of train/session.h; the options are session_opts's rows.
 * Main thread only (signals, getopt). */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "base/blas.h"
#include "base/common.h"
#include "format/loader.h"
#include "train/data.h"
#include "train/qat.h"
#include "base/opt.h"
#include "db/train_db.h"
#include "train/dist.h"
#include "train/session.h"
#include "train/trainer.h"

static void help(void)
{
    printf("Usage: onebit-tui train [--teacher M] [--tokenizer T]\n"
           "                        (--data FILE [--split SEP] | --self-generate N [--data-cache DIR])\n"
           "                        --steps S --seq-len L --batch B --out S.onebit [OPTIONS]\n"
           "\n"
           "Quantisation-aware training of a OneBit student by distillation from the\n"
           "teacher (KL on logits x kl-scale + alpha x normalised hidden-state MSE),\n"
           "AdamW, cosine schedule with warmup, gradient clipping. The last 5%% of the\n"
           "documents / generated sequences (of the tokens without --split) are held\n"
           "out for evaluation and never trained on.\n"
           "\n");
    opt_help(stdout, session_opts);
    printf("\n"
           "SIGINT/SIGTERM finish the current step, write the checkpoint and exit 130;\n"
           "a second one exits at once (the last checkpoint stays valid).\n"
           "Exit status: 0 finished (or stopped by --stop-after), 1 runtime error,\n"
           "2 usage error, 130 interrupted (checkpoint written).\n"
           "\n"
           "Data parallel (built with ./configure --with-mpi): mpirun -np N onebit-tui train ...\n"
           "trains on N ranks, each on its own --batch x --accum sequences of every step;\n"
           "rank 0 alone prints, writes the checkpoint, the student and the run store.\n");
}

static volatile sig_atomic_t g_interrupted;
/* the first SIGINT/SIGTERM asks for a graceful stop; a second one exits at
 * once (checkpoints are renamed into place, so the last one stays valid) */
static void on_signal(int sig)
{
    (void)sig;
    if (g_interrupted) _exit(130);
    g_interrupted = 1;
}

static int g_tty;

static int gen_progress(void *ud, int done, int total)
{
    (void)ud;
    if (g_tty && (done % 16 == 0 || done == total)) {
        printf("\rgenerating training sequences with the teacher: %d/%d\033[K", done, total);
        fflush(stdout);
    }
    return g_interrupted ? 1 : 0;
}

static int g_bar_shown;
static void clear_bar(void)
{
    if (g_tty && g_bar_shown) { printf("\r\033[K"); g_bar_shown = 0; }
}

static void show_event(const Event *e)
{
    char el[32], eta[32];
    switch (e->kind) {
    case EV_STEP:
        ob_fmt_duration(el, sizeof el, e->elapsed);
        ob_fmt_duration(eta, sizeof eta, e->eta);
        if (g_tty) {
            int w = 24, f = e->total_steps > 0 ? (int)((long)w * e->step / e->total_steps) : 0;
            char bar[32];
            for (int i = 0; i < w; i++) bar[i] = i < f ? '#' : '.';
            bar[w] = 0;
            printf("\r[%s] %d/%d loss %.4f kl %.3f mse %.4f lr %.2e gnorm %.3f %.0f tok/s %s eta %s\033[K", bar, e->step,
                   e->total_steps, e->loss, e->kl, e->mse, e->lr, e->grad_norm, e->tokens_per_s, el, eta);
            g_bar_shown = 1;
        } else
            printf("step %d/%d loss %.6f kl %.4f mse %.6f lr %.3e gnorm %.4f tok/s %.0f elapsed %s eta %s\n", e->step,
                   e->total_steps, e->loss, e->kl, e->mse, e->lr, e->grad_norm, e->tokens_per_s, el, eta);
        break;
    case EV_EVAL:
        clear_bar();
        printf("eval step %d: held-out %s nll %.6f ppl %.4f\n", e->step, e->text, e->eval_nll, e->eval_ppl);
        break;
    case EV_CKPT:
        clear_bar();
        printf("checkpoint step %d: %s\n", e->step, event_path(e));
        break;
    case EV_LOG:
        clear_bar();
        printf("%s\n", e->text);
        break;
    case EV_STATUS:
        clear_bar();
        if (e->status == RUN_FAILED) break; /* reported as the error */
        printf("[%s] %s\n", run_status_name(e->status), e->text);
        break;
    default: break;
    }
    fflush(stdout);
}

static int drain(EventRing *r, Session *s)
{
    Event ev[64];
    int n, any = 0;
    while ((n = evring_pop(r, ev, 64)) > 0) {
        for (int i = 0; i < n; i++) {
            show_event(&ev[i]);
            session_event(s, &ev[i]);
        }
        any = 1;
    }
    return any;
}

int cli_train(int argc, char **argv)
{
    SessionOpts o;
    session_opts_init(&o);
    char err[OB_ERRLEN];
    int k = opt_parse_argv(session_opts, &o, argc, argv, err);
    if (k == 1) { session_opts_free(&o); help(); return EXIT_OK; }
    if (k == 0 && o.name && !o.db) { ob_seterr(err, "--name needs --db"); k = -1; }
    if (k == 0 && o.name && o.resume) { ob_seterr(err, "--name names a new run; --resume continues one"); k = -1; }
    if (k == 0 && o.db && o.resume) { /* RUN's stored options, then the command line's again over them */
        char *db = ob_strdup(o.db), *run = ob_strdup(o.resume);
        session_opts_free(&o);
        session_opts_init(&o);
        int r = train_db_load_opts_named(db, run, &o, err);
        free(db);
        free(run);
        if (r) { session_opts_free(&o); return cli_error("%s", err); }
        k = opt_parse_argv(session_opts, &o, argc, argv, err);
    }
    if (k == 0) k = session_opts_check(&o, NULL, 1, err);
    if (k) { session_opts_free(&o); return cli_usage_error("train", "%s", err); }
    /* data parallelism (train/dist.h): rank 0 alone records the run and
     * prints; the others are silent but for errors */
    if (dist_init(&argc, &argv, err)) { session_opts_free(&o); return cli_error("%s", err); }
    int rank = dist_rank(), joined = 0;
    if (rank > 0) {
        free(o.db);
        free(o.name);
        o.db = o.name = NULL;
        if (!freopen("/dev/null", "w", stdout)) { session_opts_free(&o); return cli_error("rank %d: /dev/null: %s", rank, strerror(errno)); }
    }

    int rc = EXIT_RUNTIME;
    Session *s = NULL;
    EventRing ring;
    int ring_ok = 0;
    Model m;
    Tokenizer tok;
    if (open_teacher(o.teacher, o.tokenizer, &m, &tok, NULL, err)) { session_opts_free(&o); return cli_error("%s", err); }
    char *tpath = open_resolve_teacher(o.teacher, err);
    char sha[65];
    if (!tpath || loader_fingerprint(tpath, sha, NULL, err)) { cli_error("%s", err); goto out; }
    /* the options against the teacher, writable outputs; then the run
     * record before the data: a locked or broken store fails fast */
    if (session_init(&s, &o, tpath, &m, &tok, sha, o.db ? train_db_record(o.db) : NULL, err) ||
        session_record_begin(s, err)) {
        cli_error("%s", err);
        goto out;
    }
    g_tty = isatty(STDOUT_FILENO);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    const SessionOpts *so = session_opts_of(s);
    /* self-generation's threads run one small sgemv each: one OpenBLAS
     * thread (set here, on the main thread, before any thread starts) */
    if (so->self_generate > 0 && blas_set_threads(1, err)) { cli_error("%s", err); goto out; }
    if (session_prepare_data(s, gen_progress, NULL, err)) {
        if (so->self_generate > 0 && g_tty) printf("\n");
        if (so->self_generate > 0 && g_interrupted) {
            fprintf(stderr, "interrupted during self-generation; nothing written\n");
            rc = 130;
            goto out;
        }
        cli_error("%s", err);
        goto out;
    }
    if (so->self_generate > 0 && g_tty) printf("\r\033[K");
    char line[8192];
    session_data_text(s, line, sizeof line);
    printf("%s\n", line);
    if (evring_init(&ring, 4096)) { cli_error("cannot create the event ring: %s", strerror(errno)); goto out; }
    ring_ok = 1;
    /* training splits its work over its own --threads (qat.h) and wants
     * every OpenBLAS call on the calling thread: one OpenBLAS thread (set
     * here, by the main thread, before the trainer's thread starts:
     * base/blas.h) */
    if (blas_set_threads(1, err)) { cli_error("%s", err); goto out; }
    if (session_start(s, &ring, err)) { cli_error("%s", err); goto out; }
    Trainer *tr = session_trainer(s);
    int stop_sent = 0;
    struct pollfd p = {evring_fd(&ring), POLLIN, 0};
    for (;;) {
        if (g_interrupted && !stop_sent) {
            clear_bar();
            if (rank == 0) fprintf(stderr, "interrupt: stopping after the current step and writing the checkpoint "
                            "(interrupt again to quit at once)...\n");
            trainer_stop(tr);
            stop_sent = 1;
        }
        int r = poll(&p, 1, 200);
        if (r < 0 && errno != EINTR) break;
        drain(&ring, s);
        if (trainer_done(tr)) break; /* the rest is drained after the join */
    }
    TrainSummary sum;
    int jr = session_join(s, &sum);
    joined = !jr;
    drain(&ring, s);
    clear_bar();
    if (jr) { cli_error("%s", sum.message); goto out; }
    printf("\nheld-out split: %ld tokens predicted\n", sum.eval_tokens);
    printf("  %-22s nll %.6f  ppl %10.4f\n", "teacher", sum.teacher_nll, exp(sum.teacher_nll));
    printf("  %-22s nll %.6f  ppl %10.4f\n", "PTQ XNOR (sign x mean)", sum.xnor_nll, exp(sum.xnor_nll));
    printf("  %-22s nll %.6f  ppl %10.4f\n", so->cfg.init ? "PTQ SVID (svd)" : "PTQ SVID (nmf)", sum.svid_nll,
           exp(sum.svid_nll));
    printf("  %-22s nll %.6f  ppl %10.4f  (%ld steps", "student (QAT)", sum.student_nll, exp(sum.student_nll),
           sum.steps_done);
    if (isfinite(sum.first_loss)) printf(", loss %.4f -> %.4f", sum.first_loss, sum.last_loss);
    printf(")\n");
    if (sum.status == RUN_STOPPED && rank == 0) {
        if (so->db)
            fprintf(stderr, "stopped at step %ld of %ld: resume with --db %s --resume %lld\n", sum.steps_done,
                    so->cfg.steps, so->db, (long long)session_run_id(s));
        else
            fprintf(stderr, "stopped at step %ld of %ld: resume with --resume %s\n", sum.steps_done, so->cfg.steps,
                    so->ckpt);
        rc = g_interrupted ? 130 : EXIT_OK;
    } else if (sum.status == RUN_STOPPED) {
        rc = g_interrupted ? 130 : EXIT_OK;
    } else {
        printf("wrote %s\n", so->out);
        rc = EXIT_OK;
    }
out:
    if (s && ring_ok) drain(&ring, s);
    if (session_end(s, rc, err)) fprintf(stderr, "error: %s (training results are not affected)\n", err);
    if (ring_ok) evring_destroy(&ring);
    free(tpath);
    session_opts_free(&o);
    tok_free(&tok);
    model_free(&m);
    /* a rank that fails before or while training ends every rank (they
     * would wait in a collective); after a clean end the ranks leave together */
    if (!joined) dist_abort(rc == EXIT_OK ? EXIT_RUNTIME : rc, "train failed");
    dist_finalize();
    return rc;
}
