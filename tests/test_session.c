/* tests/test_session.c -- one training session (src/train/session.h) on
 * stories260K with a recording SessionRecord: default paths, the
 * fail-fast checks (context, unwritable outputs) before any data, the
 * record's calls in order (begin before the data when asked, the events,
 * end with the exit code), resume from a checkpoint bit-identical to a
 * straight run, and the record's resume checkpoint used over --resume.
 * Single-threaded but for the trainer's own thread. */
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "base/file.h"
#include "train/session.h"
#include "test.h"

static Model M;
static Tokenizer TK;
static char SHA[65];
static char dir[256];

static const char *tmp(const char *name)
{
    static char buf[8][512];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

/* a run record that writes down what the session asks of it */
typedef struct {
    SessionRecord r;
    char calls[64];          /* b(egin) a(ttach) e(nd) */
    int events, steps, end_code, *freed;
    const char *resume_ckpt; /* what begin hands back for a resume */
} Rec;

static void call(Rec *x, char c)
{
    size_t n = strlen(x->calls);
    if (n + 1 < sizeof x->calls) { x->calls[n] = c; x->calls[n + 1] = 0; }
}

static int r_begin(SessionRecord *r, SessionOpts *o, const char *sha, const ModelConfig *mc, char *err)
{
    Rec *x = (Rec *)r;
    (void)err;
    call(x, 'b');
    CHECK(!strcmp(sha, SHA) && mc == &M.cfg && o->out && o->ckpt, "begin sees the session's options");
    o->cfg.run_id = 42;
    if (x->resume_ckpt) o->resume_ckpt = ob_strdup(x->resume_ckpt);
    return 0;
}
static int r_attach(SessionRecord *r, EventRing *ring, char *err)
{
    (void)ring; (void)err;
    call((Rec *)r, 'a');
    return 0;
}
static void r_event(SessionRecord *r, const Event *e)
{
    Rec *x = (Rec *)r;
    x->events++;
    if (e->kind == EV_STEP) x->steps++;
}
static int r_end(SessionRecord *r, int code, char *err)
{
    Rec *x = (Rec *)r;
    (void)err;
    call(x, 'e');
    x->end_code = code;
    (*x->freed)++;
    return 0;
}

static Rec *rec(Rec *x, int *freed)
{
    memset(x, 0, sizeof *x);
    x->r = (SessionRecord){r_begin, r_attach, r_event, NULL, r_end};
    x->freed = freed;
    return x;
}

static void opts(SessionOpts *o, const char *data, long steps)
{
    session_opts_init(o);
    o->data = ob_strdup(data);
    o->split = ob_strdup("<|endoftext|>");
    o->cfg.steps = steps;
    o->cfg.seq_len = 32;
    o->cfg.batch = 2;
    o->cfg.log_every = 1;
}

/* init, data, start, every event to the session, join, end */
static int run(SessionOpts *o, Rec *x, TrainSummary *sum, char *err)
{
    Session *s;
    if (session_init(&s, o, NULL, &M, &TK, SHA, x ? &x->r : NULL, err)) return -1;
    EventRing ring;
    evring_init(&ring, 4096);
    int rc = -1;
    if (session_prepare_data(s, NULL, NULL, err) == 0 && session_start(s, &ring, err) == 0) {
        Event ev[64];
        for (;;) {
            struct pollfd p = {evring_fd(&ring), POLLIN, 0};
            poll(&p, 1, 100);
            int n;
            while ((n = evring_pop(&ring, ev, 64)) > 0)
                for (int i = 0; i < n; i++) session_event(s, &ev[i]);
            if (trainer_done(session_trainer(s))) break;
        }
        rc = session_join(s, sum);
        int n;
        while ((n = evring_pop(&ring, ev, 64)) > 0)
            for (int i = 0; i < n; i++) session_event(s, &ev[i]);
    }
    char e2[OB_ERRLEN];
    session_end(s, rc ? 1 : 0, e2);
    evring_destroy(&ring);
    return rc;
}

static int same_file(const char *a, const char *b)
{
    char *x, *y;
    size_t nx, ny;
    char err[OB_ERRLEN];
    if (ob_read_file(a, &x, &nx, err) || ob_read_file(b, &y, &ny, err)) return 0;
    int same = nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

int main(void)
{
    REQUIRE_SHARED(mp, "models/stories260K.bin");
    REQUIRE_SHARED(tp, "models/tok512.bin");
    REQUIRE_SHARED(dp, "data/tinystories_train_head_sample.txt");
    char err[OB_ERRLEN];
    snprintf(dir, sizeof dir, "%s/onebit-test-session.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    if (model_load(&M, mp, err) || tok_load(&TK, tp, M.cfg.vocab_size, err)) { fprintf(stderr, "%s\n", err); return 1; }
    file_sha256(mp, SHA, err);
    if (test_copy_head(dp, tmp("stories.txt"), 60000)) return 1;
    char data[600];
    snprintf(data, sizeof data, "%s", tmp("stories.txt"));

    /* fail fast: nothing of the record but its end, no data read */
    SessionOpts o;
    Rec x;
    int freed = 0;
    Session *s;
    opts(&o, "/nonexistent-data.txt", 4);
    o.out = ob_strdup("/nonexistent-ob/s.onebit");
    CHECK(session_init(&s, &o, NULL, &M, &TK, SHA, &rec(&x, &freed)->r, err) == -1 &&
              strstr(err, "/nonexistent-ob/s.onebit: cannot write"),
          "unwritable student: %s", err);
    CHECK(!strcmp(x.calls, "e") && freed == 1, "the record is only ended (and freed): %s", x.calls);
    o.cfg.seq_len = 4096;
    CHECK(session_init(&s, &o, NULL, &M, &TK, SHA, NULL, err) == -1 && strstr(err, "context 512"), "context: %s", err);
    session_opts_free(&o);

    /* defaults: the checkpoint beside the student, the cache in its directory */
    opts(&o, data, 4);
    free(o.data);
    o.data = NULL;
    free(o.split);
    o.split = NULL;
    o.self_generate = 8;
    o.out = ob_strdup(tmp("g.onebit"));
    CHECK(session_init(&s, &o, "/the/teacher.bin", &M, &TK, SHA, NULL, err) == 0, "init: %s", err);
    const SessionOpts *so = s ? session_opts_of(s) : NULL;
    CHECK(so && !strcmp(so->ckpt, tmp("g.onebit.ckpt")) && !strcmp(so->data_cache, dir) &&
              !strcmp(so->teacher, "/the/teacher.bin"),
          "defaults: %s %s", so ? so->ckpt : "-", so ? so->data_cache : "-");
    session_end(s, 0, err);
    session_opts_free(&o);

    /* a straight run, recorded: begin before the data, events, end 0 */
    TrainSummary sum;
    opts(&o, data, 8);
    o.out = ob_strdup(tmp("a.onebit"));
    freed = 0;
    CHECK(run(&o, rec(&x, &freed), &sum, err) == 0, "straight run: %s", err);
    CHECK(!strcmp(x.calls, "bae") && freed == 1 && x.end_code == 0, "record calls: %s", x.calls);
    CHECK(x.steps == 8 && x.events > 8, "every event reached the record: %d steps, %d events", x.steps, x.events);
    CHECK(sum.status == RUN_FINISHED && sum.steps_done == 8 && access(tmp("a.onebit"), F_OK) == 0, "finished");
    session_opts_free(&o);

    /* 3 steps, then a resume from the checkpoint: the same student */
    opts(&o, data, 8);
    o.out = ob_strdup(tmp("b.onebit"));
    o.cfg.stop_after = 3;
    CHECK(run(&o, NULL, &sum, err) == 0 && sum.status == RUN_STOPPED && sum.steps_done == 3, "stopped: %s", err);
    o.cfg.stop_after = 0;
    o.resume = ob_strdup(tmp("b.onebit.ckpt"));
    CHECK(run(&o, NULL, &sum, err) == 0 && sum.status == RUN_FINISHED, "resumed: %s", err);
    CHECK(same_file(tmp("a.onebit"), tmp("b.onebit")), "stop + resume == straight, byte for byte");
    session_opts_free(&o);

    /* with a record, --resume names the run: the record's checkpoint is used */
    opts(&o, data, 8);
    o.out = ob_strdup(tmp("c.onebit"));
    o.cfg.stop_after = 3;
    CHECK(run(&o, NULL, &sum, err) == 0 && sum.steps_done == 3, "stopped: %s", err);
    o.cfg.stop_after = 0;
    o.resume = ob_strdup("run-7");
    rec(&x, &freed)->resume_ckpt = tmp("c.onebit.ckpt");
    CHECK(run(&o, &x, &sum, err) == 0 && sum.status == RUN_FINISHED, "resumed through the record: %s", err);
    CHECK(x.steps == 5 && same_file(tmp("a.onebit"), tmp("c.onebit")), "from step 3 on (%d steps), same student", x.steps);
    session_opts_free(&o);

    tok_free(&TK);
    model_free(&M);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return test_done("test_session");
}
