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

/* One run of the session on the loaded teacher: options checked, record
 * begun, data, training, summary. Returns the exit status. rank > 0 prints
 * nothing (stdout is /dev/null) and records nothing. *joined: the
 * trainer ended normally (the ranks leave together). */
static int train_one(const SessionOpts *o, const Model *m, const Tokenizer *tok, const char *tpath, const char *sha,
                     int rank, int *joined)
{
    char err[OB_ERRLEN];
    int rc = EXIT_RUNTIME;
    Session *s = NULL;
    EventRing ring;
    int ring_ok = 0;
    *joined = 0;
    /* the options against the teacher, writable outputs; then the run
     * record before the data: a locked or broken store fails fast */
    if (session_init(&s, o, tpath, m, tok, sha, o->db ? train_db_record(o->db) : NULL, err) ||
        session_record_begin(s, err)) {
        cli_error("%s", err);
        goto out;
    }
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
    *joined = !jr;
    drain(&ring, s);
    clear_bar();
    if (jr) { cli_error("%s", sum.message); goto out; }
    printf("\nheld-out split: %ld tokens predicted\n", sum.eval_tokens);
    printf("  %-22s nll %.6f  ppl %10.4f\n", "teacher", sum.teacher_nll, exp(sum.teacher_nll));
    printf("  %-22s nll %.6f  ppl %10.4f\n", "PTQ XNOR (sign x mean)", sum.xnor_nll, exp(sum.xnor_nll));
    char init_name[32]; /* the untrained student: "PTQ SVID (nmf)", "PTQ init (sign)" */
    snprintf(init_name, sizeof init_name, "PTQ %s (%s)", so->cfg.init <= SVID_SVD ? "SVID" : "init",
             svid_method_name(so->cfg.init));
    printf("  %-22s nll %.6f  ppl %10.4f\n", init_name, sum.svid_nll, exp(sum.svid_nll));
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
    return rc;
}

/* ---- --sweep: a grid of runs queued in the run store, run one by one ---- */
#define SWEEP_AXES 8
#define SWEEP_MAX_RUNS 1000
typedef struct {
    const OptSpec *row;
    char *vals[64];
    int n;
} SweepAxis;

/* "KEY=V1,V2[;KEY2=...]" into axes over session_opts's recorded rows */
static int sweep_parse(const char *spec, SweepAxis *ax, int *nax, long *nruns, char *err)
{
    *nax = 0;
    *nruns = 1;
    char *copy = ob_strdup(spec), *save = NULL;
    int rc = 0;
    for (char *part = strtok_r(copy, ";", &save); part && !rc; part = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(part, '=');
        if (!eq) { ob_seterr(err, "--sweep: '%s' is not KEY=V1,V2,...", part); rc = -1; break; }
        *eq = 0;
        const OptSpec *row = opt_find(session_opts, part);
        if (!row || !(row->flags & OPT_STORE) || (row->flags & (OPT_NOCLI | OPT_ALIAS)) || row->type == OPT_NOTE ||
            !strcmp(part, "out") || !strcmp(part, "ckpt") || !strcmp(part, "preset")) {
            ob_seterr(err, "--sweep: '%s' is not a training option a sweep can vary (e.g. lr, ste, init, steps)", part);
            rc = -1;
            break;
        }
        for (int i = 0; i < *nax; i++)
            if (ax[i].row == row) { ob_seterr(err, "--sweep: '%s' is given twice", part); rc = -1; }
        if (rc) break;
        if (*nax == SWEEP_AXES) { ob_seterr(err, "--sweep: at most %d options", SWEEP_AXES); rc = -1; break; }
        SweepAxis *a = &ax[(*nax)++];
        a->row = row;
        a->n = 0;
        char *vsave = NULL;
        for (char *v = strtok_r(eq + 1, ",", &vsave); v; v = strtok_r(NULL, ",", &vsave)) {
            if (a->n == 64) { ob_seterr(err, "--sweep: at most 64 values of '%s'", part); rc = -1; break; }
            a->vals[a->n++] = ob_strdup(v);
        }
        if (!rc && a->n == 0) { ob_seterr(err, "--sweep: '%s' has no values", part); rc = -1; }
        *nruns *= a->n > 0 ? a->n : 1;
        if (!rc && *nruns > SWEEP_MAX_RUNS) { ob_seterr(err, "--sweep: more than %d runs", SWEEP_MAX_RUNS); rc = -1; }
    }
    if (!rc && *nax == 0) { ob_seterr(err, "--sweep: give KEY=V1,V2[;KEY2=...]"); rc = -1; }
    free(copy);
    return rc;
}

static void sweep_free(SweepAxis *ax, int nax)
{
    for (int i = 0; i < nax; i++)
        for (int k = 0; k < ax[i].n; k++) free(ax[i].vals[k]);
}

/* run k of the grid (the last axis varies fastest): base's options with
 * the axes' values, named BASE-KEY=V-KEY2=V2; checked against the teacher */
static int sweep_opts(const SessionOpts *base, const char *sweep, const SweepAxis *ax, int nax, long k,
                      const ModelConfig *mc, SessionOpts *o, char *err)
{
    session_opts_copy(o, base);
    ObBuf name = {0};
    ob_buf_printf(&name, "%s", sweep);
    long rest = k;
    int idx[SWEEP_AXES];
    for (int i = nax - 1; i >= 0; i--) {
        idx[i] = (int)(rest % ax[i].n);
        rest /= ax[i].n;
    }
    char e2[OB_ERRLEN];
    for (int i = 0; i < nax; i++) {
        const char *v = ax[i].vals[idx[i]];
        ob_buf_printf(&name, "-%s=%s", ax[i].row->name, v);
        if (opt_set(ax[i].row, o, v, e2)) {
            ob_seterr(err, "--sweep: --%s %s", ax[i].row->name, e2);
            free(name.s);
            return -1;
        }
    }
    free(o->name);
    o->name = name.s;
    if (session_opts_check(o, mc, 0, e2)) {
        ob_seterr(err, "--sweep: run %s: %s", o->name, e2);
        return -1;
    }
    return 0;
}

/* delete the n runs queued so far (a later one could not be queued) */
static void unqueue(const char *store, const int64_t *ids, long n)
{
    char err[OB_ERRLEN];
    Db *db = n > 0 ? db_open(store, 0, err) : NULL;
    for (long i = 0; db && i < n; i++)
        if (db_run_delete(db, ids[i], err)) fprintf(stderr, "error: %s\n", err);
    db_close(db);
}

static int run_sweep(const SessionOpts *base, const char *spec, const Model *m, const Tokenizer *tok, const char *tpath,
                     const char *sha)
{
    char err[OB_ERRLEN];
    SweepAxis ax[SWEEP_AXES];
    int nax;
    long n;
    if (sweep_parse(spec, ax, &nax, &n, err)) { sweep_free(ax, nax); return cli_usage_error("train", "%s", err); }
    const char *sweep = base->name ? base->name : "sweep";
    SessionOpts *runs = ob_calloc((size_t)n, sizeof *runs);
    int64_t *ids = ob_calloc((size_t)n, sizeof *ids);
    long made = 0, queued = 0;
    int rc = EXIT_OK;
    /* every run's options are checked before any is queued */
    for (; made < n; made++)
        if (sweep_opts(base, sweep, ax, nax, made, &m->cfg, &runs[made], err)) {
            session_opts_free(&runs[made]);
            rc = cli_usage_error("train", "%s", err);
            break;
        }
    for (; rc == EXIT_OK && queued < n; queued++) {
        SessionOpts q;
        session_opts_copy(&q, &runs[queued]);
        free(q.teacher);
        q.teacher = ob_strdup(tpath); /* recorded as the session records it */
        ids[queued] = train_db_queue(base->db, &q, sha, &m->cfg, sweep, err);
        session_opts_free(&q);
        if (ids[queued] < 0) {
            rc = cli_error("%s", err);
            unqueue(base->db, ids, queued); /* all or nothing */
            break;
        }
    }
    if (rc == EXIT_OK) printf("sweep '%s': %ld runs queued in %s\n", sweep, n, base->db);
    for (long i = 0; rc == EXIT_OK && i < n; i++) {
        if (g_interrupted) break;
        printf("\n==== sweep '%s': run %ld of %ld: %s ====\n", sweep, i + 1, n, runs[i].name);
        fflush(stdout);
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)ids[i]);
        free(runs[i].resume);
        runs[i].resume = ob_strdup(id); /* with --db: take over the queued run */
        int joined;
        int r = train_one(&runs[i], m, tok, tpath, sha, 0, &joined);
        if (r != EXIT_OK) rc = r;
    }
    if (queued == n) {
        if (g_interrupted || rc != EXIT_OK)
            fprintf(stderr, "sweep '%s' ended early; a pending run starts with: onebit-tui train --db %s --resume NAME\n",
                    sweep, base->db);
        printf("\ncompare them: onebit-tui runs compare --db %s --sweep %s\n", base->db, sweep);
    }
    for (long i = 0; i < made; i++) session_opts_free(&runs[i]);
    free(runs);
    free(ids);
    sweep_free(ax, nax);
    return rc;
}

/* --sweep SPEC is no session option: taken out of argv before the table
 * parses the rest */
static char *take_sweep(int *argc, char **argv, char *err, int *bad)
{
    char *spec = NULL;
    *bad = 0;
    int j = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--sweep") || !strncmp(a, "--sweep=", 8)) {
            const char *v = a[7] == '=' ? a + 8 : (i + 1 < *argc ? argv[++i] : NULL);
            if (!v) { ob_seterr(err, "--sweep needs a value: KEY=V1,V2[;KEY2=...]"); *bad = 1; }
            else if (spec) { ob_seterr(err, "--sweep is given twice"); *bad = 1; }
            else spec = ob_strdup(v);
            continue;
        }
        argv[j++] = argv[i];
    }
    *argc = j;
    argv[j] = NULL;
    return spec;
}

int cli_train(int argc, char **argv)
{
    SessionOpts o;
    session_opts_init(&o);
    char err[OB_ERRLEN];
    int bad;
    char *sweep = take_sweep(&argc, argv, err, &bad);
    int k = bad ? -1 : opt_parse_argv(session_opts, &o, argc, argv, err);
    if (k == 1) { session_opts_free(&o); free(sweep); help(); return EXIT_OK; }
    if (k == 0 && o.name && !o.db) { ob_seterr(err, "--name needs --db"); k = -1; }
    if (k == 0 && o.name && o.resume) { ob_seterr(err, "--name names a new run; --resume continues one"); k = -1; }
    if (k == 0 && sweep && !o.db) { ob_seterr(err, "--sweep needs --db: the runs are queued in the run store"); k = -1; }
    if (k == 0 && sweep && (o.resume || o.out || o.ckpt)) {
        ob_seterr(err, "--sweep makes its own runs: no --resume, --out or --ckpt (each student goes beside the store)");
        k = -1;
    }
    if (k == 0 && o.preset && o.resume) { ob_seterr(err, "--preset starts a run; a resumed run keeps its options"); k = -1; }
    if (k == 0 && o.preset) { /* the preset's values, then the command line's again over them */
        char *name = ob_strdup(o.preset);
        session_opts_free(&o);
        session_opts_init(&o);
        k = session_apply_preset(&o, name, err);
        free(name);
        if (k == 0) k = opt_parse_argv(session_opts, &o, argc, argv, err);
    }
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
    if (k == 0) k = session_opts_check(&o, NULL, !sweep, err);
    if (k) { session_opts_free(&o); free(sweep); return cli_usage_error("train", "%s", err); }
    /* data parallelism (train/dist.h): rank 0 alone records the run and
     * prints; the others are silent but for errors */
    if (dist_init(&argc, &argv, err)) { session_opts_free(&o); free(sweep); return cli_error("%s", err); }
    int rank = dist_rank(), joined = 0;
    if (sweep && dist_size() > 1) {
        session_opts_free(&o);
        free(sweep);
        dist_abort(EXIT_USAGE, "--sweep runs in one process");
        return cli_usage_error("train", "--sweep runs its runs in one process, not under mpirun");
    }
    if (rank > 0) {
        free(o.db);
        free(o.name);
        o.db = o.name = NULL;
        if (!freopen("/dev/null", "w", stdout)) { session_opts_free(&o); return cli_error("rank %d: /dev/null: %s", rank, strerror(errno)); }
    }

    int rc = EXIT_RUNTIME;
    Model m;
    Tokenizer tok;
    if (open_teacher(o.teacher, o.tokenizer, &m, &tok, NULL, err)) { session_opts_free(&o); free(sweep); return cli_error("%s", err); }
    char *tpath = open_resolve_teacher(o.teacher, err);
    char sha[65];
    if (!tpath || loader_fingerprint(tpath, sha, NULL, err)) { cli_error("%s", err); goto out; }
    g_tty = isatty(STDOUT_FILENO);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (sweep) {
        rc = run_sweep(&o, sweep, &m, &tok, tpath, sha);
        joined = 1;
    } else
        rc = train_one(&o, &m, &tok, tpath, sha, rank, &joined);
out:
    free(tpath);
    free(sweep);
    session_opts_free(&o);
    tok_free(&tok);
    model_free(&m);
    /* a rank that fails before or while training ends every rank (they
     * would wait in a collective); after a clean end the ranks leave together */
    if (!joined) dist_abort(rc == EXIT_OK ? EXIT_RUNTIME : rc, "train failed");
    dist_finalize();
    return rc;
}
