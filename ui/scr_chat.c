/* ui/scr_chat.c -- screen 5, Chat (UI thread only, but for the generation
 * jobs' functions on_token and gen_main and the student's load job,
 * student_load_main): type a prompt and the teacher, a 1-bit student (a
 * finished run's .onebit or a OneBit checkpoint directory, open_student,
 * loaded in a background job) or both side by
 * side continue it. Each reply is gen_run in a background job (base/job.h)
 * whose per-token callback appends to the job's text under a mutex, pushes
 * an EV_TOKEN to wake the UI and checks the job's cancel flag (Esc), so a
 * partial reply is kept. The
 * transcript follows the output only while it is scrolled to the bottom (a
 * reply taller than the view keeps its header on the view's first row) and
 * is saved to the run store (db_chat_add). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ui/app.h"
#include "base/common.h"
#include "base/job.h"
#include "db/db.h"
#include "model/chat.h"
#include "model/generate.h"
#include "onebit/open.h"
#include "onebit/student.h"

enum { ROLE_USER, ROLE_TEACHER, ROLE_STUDENT };
enum { TO_TEACHER, TO_STUDENT, TO_BOTH };
enum { T_STREAMING, T_DONE, T_STOPPED, T_FAILED };
/* the input line's focus: on arrival it waits (FOCUS_READY): the first key
 * that is not a screen key starts the message; Enter or i focus it */
enum { FOCUS_TYPING = 1, FOCUS_READY };

typedef struct {
    int role, state;
    char *text;
    int ntok;
    double tps;
    int64_t job, pair;    /* pair: the user turn and its replies share it */
} Turn;

typedef struct {
    Job *job;             /* its end event (EV_STATUS) says finished / stopped / failed */
    int64_t id;
    EventRing *ring;
    const Model *m;
    const Tokenizer *t;
    char *prompt;
    ChatFamily fam;       /* the model's chat template; CHAT_NONE: the prompt is continued */
    GenParams gp;
    pthread_mutex_t mu;
    char *text;
    size_t len, cap;
    int ntok;
    double t0, tps;
    char err[OB_ERRLEN];
} GenJob;

/* a student loading in a background job (student_load_main: open_student,
 * whose checks and kernel layouts take seconds for a 7B student), put in
 * place by the UI thread at the job's end event (student_loaded) */
typedef struct {
    Job *job;
    char path[4096];
    int64_t run;
    Model *m;
    Tokenizer *t;         /* the student's own tokenizer, or NULL */
    char err[OB_ERRLEN];
} StudentLoad;

typedef struct {
    Turn *turns;
    int n, cap;
    UiInput input;
    int focus;            /* 0: the chat's keys; FOCUS_TYPING; FOCUS_READY: just shown, nothing typed */
    int follow, top;      /* first shown line when not following */
    int view_h, nlines;
    GenJob *jobs[2];      /* [0] teacher, [1] student */
    int target;
    Model *student;
    Tokenizer *stok;      /* the student's own tokenizer, or NULL: the teacher's */
    StudentLoad *loading; /* the student being loaded, or NULL */
    char student_path[4096];
    int64_t student_run;
    int64_t sess[2];      /* run-store chat sessions (0: none yet) */
    float temp, topp;
    int topk;             /* llama.cpp's filters, 0: off */
    float minp, rpen;
    int n_new;
    unsigned long seed;   /* 0: from the clock */
    int inited;
} ChatState;

static ChatState *state(App *a) { return app_state(a, &ui_scr_chat); }

/* ---- the worker ------------------------------------------------------------ */
static int on_token(void *user, int token, const char *piece, int is_prompt)
{
    GenJob *j = user;
    (void)token;
    Job *job = job_current();
    if (is_prompt) return job_cancelled(job);
    double now = ob_now();
    pthread_mutex_lock(&j->mu);
    if (j->ntok == 0) j->t0 = now;
    j->ntok++;
    if (j->ntok > 1) j->tps = (j->ntok - 1) / (now - j->t0 > 1e-9 ? now - j->t0 : 1e-9);
    if (tok_piece_printable(piece)) {
        size_t l = strlen(piece);
        if (j->len + l + 1 > j->cap) {
            size_t nc = j->cap ? j->cap * 2 : 256;
            while (nc < j->len + l + 1) nc *= 2;
            char *nt = ob_malloc(nc);
            if (j->text) memcpy(nt, j->text, j->len + 1);
            free(j->text);
            j->text = nt;
            j->cap = nc;
        }
        memcpy(j->text + j->len, piece, l + 1);
        j->len += l;
    }
    Event ev = {.kind = EV_TOKEN, .run_id = j->id, .step = j->ntok, .tokens_per_s = j->tps};
    pthread_mutex_unlock(&j->mu);
    snprintf(ev.text, sizeof ev.text, "%s", piece);
    evring_push(j->ring, &ev);
    return job_cancelled(job);
}

static int gen_main(Job *job, void *arg)
{
    (void)job;
    GenJob *j = arg;
    GenStats st;
    if (j->fam == CHAT_NONE) return gen_run(j->m, j->t, j->prompt, &j->gp, on_token, j, &st, j->err);
    /* an instruction-tuned model: the message as a user turn of its template,
     * the reply up to its end-of-turn token */
    ChatMsg msg = {"user", j->prompt};
    int *ids, n;
    if (chat_render(j->fam, j->t, &msg, 1, &ids, &n, j->err)) return -1;
    GenCtx g;
    int rc = gen_ctx_init(&g, j->m, j->t, &j->gp, j->err);
    if (!rc) rc = gen_ctx_feed(&g, ids, n, NULL, NULL, &st, j->err);
    if (!rc) gen_ctx_generate(&g, j->gp.n_new, chat_stop_token(j->fam, j->t), on_token, j, &st);
    gen_ctx_free(&g);
    free(ids);
    return rc;
}

/* ---- transcript ------------------------------------------------------------ */
static Turn *add_turn(ChatState *C, int role, const char *text)
{
    if (C->n == C->cap) {
        C->cap = C->cap ? C->cap * 2 : 16;
        Turn *nt = ob_calloc(C->cap, sizeof(Turn));
        if (C->turns) memcpy(nt, C->turns, sizeof(Turn) * C->n);
        free(C->turns);
        C->turns = nt;
    }
    Turn *t = &C->turns[C->n++];
    memset(t, 0, sizeof *t);
    t->role = role;
    t->text = ob_strdup(text);
    return t;
}

static Turn *job_turn(ChatState *C, int64_t id)
{
    for (int i = C->n - 1; i >= 0; i--)
        if (C->turns[i].job == id) return &C->turns[i];
    return NULL;
}

static void sync_turn(ChatState *C, GenJob *j)
{
    Turn *t = job_turn(C, j->id);
    if (!t) return;
    pthread_mutex_lock(&j->mu);
    free(t->text);
    t->text = ob_strdup(j->text ? j->text : "");
    t->ntok = j->ntok;
    t->tps = j->tps;
    pthread_mutex_unlock(&j->mu);
}

static const char *role_name(int role) { return role == ROLE_USER ? "you" : role == ROLE_TEACHER ? "teacher" : "student"; }

/* save a line of the conversation in side's session */
static void save(App *a, int side, const char *role, const char *text)
{
    ChatState *C = state(a);
    if (!a->db || a->db_ro) return; /* not recorded: the banner says so */
    char err[OB_ERRLEN];
    int64_t run = side ? C->student_run : 0, teacher = side && C->student_run ? 0 : a->teacher_id;
    if (!run && !teacher) return;
    if (!C->sess[side]) {
        C->sess[side] = db_chat_new_session(a->db, run, teacher, err);
        if (C->sess[side] <= 0) { C->sess[side] = 0; app_msg(a, 1, "run store: %s", err); return; }
    }
    if (db_chat_add(a->db, run, teacher, C->sess[side], role, text, err) <= 0) app_msg(a, 1, "run store: %s", err);
}

static void finish_job(App *a, int side)
{
    ChatState *C = state(a);
    GenJob *j = C->jobs[side];
    int rc = job_join(j->job), stopped = job_cancelled(j->job);
    job_free(j->job);
    sync_turn(C, j);
    Turn *t = job_turn(C, j->id);
    if (t) {
        t->state = rc ? T_FAILED : stopped ? T_STOPPED : T_DONE;
        if (rc) app_msg(a, 1, "%s: generation failed: %s", role_name(t->role), j->err);
        else app_msg(a, 0, "%s %s: %d tokens, %.1f tokens/s", role_name(t->role), t->state == T_STOPPED ? "stopped" : "done",
                     t->ntok, t->tps);
        if (!rc) save(a, side, "assistant", t->text);
    }
    if (side == 0) a->teacher_users--;
    pthread_mutex_destroy(&j->mu);
    free(j->prompt);
    free(j->text);
    free(j);
    C->jobs[side] = NULL;
}

static int busy(const ChatState *C) { return C->jobs[0] || C->jobs[1]; }

/* the template a model's replies use: its tokenizer's, else (a student
 * keeps none in its file) the teacher's when the vocabularies agree */
static ChatFamily chat_template_of(const App *a, const Tokenizer *t)
{
    if (t->chat_template) return chat_detect(t->chat_template);
    if (a->tok && a->tok != t && a->tok->vocab_size == t->vocab_size) return chat_detect(a->tok->chat_template);
    return CHAT_NONE;
}

static GenJob *start_job(App *a, int side, const Model *m, const Tokenizer *t, const char *text, int64_t pair)
{
    ChatState *C = state(a);
    GenJob *j = ob_calloc(1, sizeof *j);
    j->id = app_new_id(a);
    j->ring = &a->ring;
    j->m = m;
    j->t = t;
    j->prompt = ob_strdup(text);
    j->fam = chat_template_of(a, t);
    j->gp = (GenParams){.n_new = C->n_new, .temperature = C->temp, .topp = C->topp, .top_k = C->topk, .min_p = C->minp,
                        .repeat_penalty = C->rpen,
                        .seed = C->seed ? C->seed : (uint64_t)time(NULL) ^ (uint64_t)pair};
    pthread_mutex_init(&j->mu, NULL);
    Turn *tu = add_turn(C, side ? ROLE_STUDENT : ROLE_TEACHER, "");
    tu->job = j->id;
    tu->pair = pair;
    char err[OB_ERRLEN];
    JobSpec js = {.name = side ? "student reply" : "teacher reply", .id = j->id, .ring = j->ring, .fn = gen_main, .arg = j,
                  .end_event = 1};
    if (job_start(&j->job, &js, err)) {
        tu->state = T_FAILED;
        app_msg(a, 1, "%s", err);
        pthread_mutex_destroy(&j->mu);
        free(j->prompt);
        free(j);
        return NULL;
    }
    if (side == 0) a->teacher_users++;
    C->jobs[side] = j;
    return j;
}

static void send(App *a)
{
    ChatState *C = state(a);
    if (busy(C)) { app_msg(a, 1, "a reply is still streaming: Esc stops it"); return; }
    int want_t = C->target != TO_STUDENT, want_s = C->target != TO_TEACHER;
    if (want_t && !a->teacher) { app_msg(a, 1, "no teacher loaded (screen 1, o)"); return; }
    /* a load ends with the student beside the teacher: what is sent waits
     * for it (the input line keeps the message) */
    if (C->loading) { app_msg(a, 1, "the student is still loading: %s", C->loading->path); return; }
    if (want_s && !C->student) { app_msg(a, 1, "no student loaded (l, or c on the Runs screen)"); return; }
    const char *text = C->input.buf;
    Turn *u = add_turn(C, ROLE_USER, text);
    int64_t pair = app_new_id(a);
    u->pair = pair;
    if (want_t) { save(a, 0, "user", text); start_job(a, 0, a->teacher, a->tok, text, pair); }
    if (want_s) { save(a, 1, "user", text); start_job(a, 1, C->student, C->stok ? C->stok : a->tok, text, pair); }
    C->follow = 1;
    ui_input_set(&C->input, "");
}

/* ---- students --------------------------------------------------------------- */
static void free_student(ChatState *C)
{
    if (C->student) { model_free(C->student); free(C->student); C->student = NULL; }
    if (C->stok) { tok_free(C->stok); free(C->stok); C->stok = NULL; }
}

static int student_load_main(Job *job, void *arg)
{
    (void)job;
    StudentLoad *l = arg;
    int has = open_student_has_tokenizer(l->path, l->err);
    if (has < 0) return -1;
    l->m = ob_calloc(1, sizeof *l->m);
    l->t = has ? ob_calloc(1, sizeof *l->t) : NULL;
    if (open_student(l->m, l->t, l->path, l->err)) {
        free(l->m);
        free(l->t);
        l->m = NULL;
        l->t = NULL;
        return -1;
    }
    return 0;
}

/* start loading the student at path (of run, or 0) in a background job;
 * 0 when it started */
static int load_student(App *a, const char *path, int64_t run)
{
    ChatState *C = state(a);
    if (C->jobs[1]) { app_msg(a, 1, "the student is still replying: Esc stops it"); return -1; }
    if (C->loading) { app_msg(a, 1, "a student is still loading: %s", C->loading->path); return -1; }
    StudentLoad *l = ob_calloc(1, sizeof *l);
    snprintf(l->path, sizeof l->path, "%s", path);
    l->run = run;
    char err[OB_ERRLEN];
    JobSpec js = {.name = "student load", .id = app_new_id(a), .ring = &a->ring, .fn = student_load_main, .arg = l, .end_event = 1};
    if (job_start(&l->job, &js, err)) {
        app_msg(a, 1, "%s: %s", path, err);
        free(l);
        return -1;
    }
    C->loading = l;
    app_msg(a, 0, "loading the student %s ...", path);
    return 0;
}

/* a loaded student not put in place: freed */
static void load_discard(StudentLoad *l)
{
    model_free(l->m);
    free(l->m);
    if (l->t) tok_free(l->t);
    free(l->t);
}

/* the load's end event: the student in place of the one before, or the
 * error said */
static void student_loaded(App *a)
{
    ChatState *C = state(a);
    StudentLoad *l = C->loading;
    int rc = job_join(l->job);
    job_free(l->job);
    C->loading = NULL;
    if (rc) app_msg(a, 1, "error: %s", l->err);
    else if (!l->t && (!a->tok || a->tok->vocab_size < l->m->cfg.vocab_size)) {
        app_msg(a, 1, "%s has no tokenizer and the teacher's does not fit", l->path);
        load_discard(l);
    } else { /* (no student reply runs: load_student refused to start beside one, send waits for the load) */
        free_student(C);
        C->student = l->m;
        C->stok = l->t;
        C->student_run = l->run;
        C->sess[1] = 0;
        snprintf(C->student_path, sizeof C->student_path, "%s", l->path);
        C->target = a->teacher ? TO_BOTH : TO_STUDENT;
        app_msg(a, 0, "student %s loaded; talking to %s", l->path,
                C->target == TO_BOTH ? "teacher and student side by side" : "the student");
    }
    free(l);
    app_dirty(a);
}

static void student_prompt_done(App *a, const char *path)
{
    if (path[0]) load_student(a, path, 0);
}

/* ---- drawing --------------------------------------------------------------- */
typedef struct { UiGrid *g; int y, skip, rows, x, w, attr; int count; } WrapDraw;
static void wrap_line(void *user, const char *s, int len)
{
    WrapDraw *d = user;
    if (d->g && d->count >= d->skip && d->count - d->skip < d->rows) {
        char *tmp = ob_malloc(len + 1);
        memcpy(tmp, s, len);
        tmp[len] = 0;
        ui_grid_text(d->g, d->x, d->y + d->count - d->skip, d->w, d->attr, tmp);
        free(tmp);
    }
    d->count++;
}

static const char *turn_header(const Turn *t, char *buf, int n)
{
    if (t->role == ROLE_USER) { snprintf(buf, n, "you"); return buf; }
    const char *st = t->state == T_STREAMING ? " ..." : t->state == T_STOPPED ? "  [stopped]" : t->state == T_FAILED ? "  [failed]" : "";
    snprintf(buf, n, "%s   %d tokens, %.1f tokens/s%s", role_name(t->role), t->ntok, t->tps, st);
    return buf;
}

/* one turn (header + wrapped text) at column x, width w, from transcript
 * line line0; returns its lines */
static int reply(UiGrid *g, const Turn *t, int x, int w, int y, int line0, int skip, int rows)
{
    char hb[128];
    int attr = t->role == ROLE_USER ? UI_A_BOLD : t->role == ROLE_TEACHER ? UI_A_S1 : UI_A_S2;
    if (g && line0 >= skip && line0 - skip < rows) ui_grid_text(g, x, y + line0 - skip, w, attr, turn_header(t, hb, sizeof hb));
    WrapDraw d = {g, y, skip, rows, x + 2, w - 2, t->role == ROLE_USER ? UI_A_BOLD : UI_A_NORMAL, line0 + 1};
    ui_wrap(t->text, w - 2 > 1 ? w - 2 : 1, wrap_line, &d);
    return d.count - line0;
}

/* a reply's header kept on the first row of the view while the reply's
 * lines (or its pair's) are shown and the header has scrolled off: the
 * tokens and speed of a long reply stay in sight as it streams */
static void pin_header(UiGrid *g, const Turn *t, int x, int w, int y)
{
    char hb[128];
    if (t->role == ROLE_USER) return;
    ui_grid_hline(g, x, y, w, ' ', UI_A_NORMAL);
    ui_grid_text(g, x, y, w, t->role == ROLE_TEACHER ? UI_A_S1 : UI_A_S2, turn_header(t, hb, sizeof hb));
}

/* lines of the transcript at width w; draws rows [skip, skip+rows) when g.
 * The replies of teacher and student to one prompt go side by side. */
static int transcript(const ChatState *C, UiGrid *g, int y, int w, int skip, int rows)
{
    int line = 0;
    for (int i = 0; i < C->n; i++) {
        const Turn *t = &C->turns[i];
        if (t->role != ROLE_USER && i + 1 < C->n && C->turns[i + 1].role != ROLE_USER && C->turns[i + 1].pair == t->pair) {
            int half = (w - 1) / 2;
            int l1 = reply(g, t, 0, half, y, line, skip, rows);
            int l2 = reply(g, &C->turns[i + 1], half + 1, w - half - 1, y, line, skip, rows);
            int l = l1 > l2 ? l1 : l2;
            if (g && rows > 0 && line < skip && line + l > skip) {
                pin_header(g, t, 0, half, y);
                pin_header(g, &C->turns[i + 1], half + 1, w - half - 1, y);
            }
            line += l + 1;
            i++;
            continue;
        }
        int l = reply(g, t, 0, w, y, line, skip, rows);
        if (g && rows > 0 && line < skip && line + l > skip) pin_header(g, t, 0, w, y);
        line += l + 1;
    }
    return line;
}

static void chat_draw(App *a, UiGrid *g)
{
    ChatState *C = state(a);
    const char *sb = strrchr(C->student_path, '/');
    sb = sb ? sb + 1 : C->student_path;
    char who[300];
    if (C->target == TO_TEACHER) snprintf(who, sizeof who, "the teacher");
    else if (C->target == TO_STUDENT) snprintf(who, sizeof who, "student %.200s", sb);
    else snprintf(who, sizeof who, "teacher | student %.200s", sb);
    ChatFamily fam = a->tok ? chat_template_of(a, a->tok) : CHAT_NONE;
    ui_grid_printf(g, 0, 0, g->w, UI_A_DIM, "Chat with %s%s   template %s   temperature %.2f   top-p %.2f   max tokens %d   seed %s", who,
                   C->target != TO_TEACHER && C->student && student_exec(C->student) && student_exec(C->student)->act == KERN_ACT_INT8 ? " (int8)" : "",
                   chat_family_name(fam), C->temp, C->topp, C->n_new, C->seed ? "fixed" : "clock");
    int view_h = g->h - 3;
    if (view_h < 1) view_h = 1;
    C->view_h = view_h;
    C->nlines = transcript(C, NULL, 0, g->w, 0, 0);
    int maxtop = C->nlines - view_h > 0 ? C->nlines - view_h : 0;
    if (C->follow || C->top > maxtop) C->top = maxtop;
    if (C->top < 0) C->top = 0;
    if (C->n == 0)
        ui_grid_text(g, 2, 2, g->w - 4, UI_A_DIM, "Type a prompt below and press Enter; the model continues it.");
    transcript(C, g, 1, g->w, C->top, view_h);
    uint32_t hb = g->ascii ? '-' : 0x2500;
    ui_grid_hline(g, 0, g->h - 2, g->w, hb, UI_A_DIM);
    if (!C->follow && C->top < maxtop) ui_grid_printf(g, 2, g->h - 2, g->w - 4, UI_A_DIM, " %d more lines below (End follows) ", maxtop - C->top);
    char extra[96] = ""; /* llama.cpp's filters that are on, at the right of the rule (the header is full) */
    size_t k = 0;
    if (C->topk) k += (size_t)snprintf(extra + k, sizeof extra - k, " top-k %d ", C->topk);
    if (C->minp > 0) k += (size_t)snprintf(extra + k, sizeof extra - k, " min-p %.2f ", C->minp);
    if (C->rpen > 0 && C->rpen != 1) k += (size_t)snprintf(extra + k, sizeof extra - k, " repeat penalty %.2f ", C->rpen);
    if (k && (int)k < g->w / 2) ui_grid_text(g, g->w - (int)k - 2, g->h - 2, (int)k, UI_A_DIM, extra);
    int x = ui_grid_text(g, 0, g->h - 1, 2, C->focus ? UI_A_BOLD : UI_A_DIM, "> "), cx;
    ui_input_render(&C->input, g, x, g->h - 1, g->w - x, C->focus ? UI_A_INPUT : UI_A_NORMAL, &cx);
    if (C->focus) app_cursor(a, cx, g->h - 1);
    if (C->focus == FOCUS_READY && !C->input.len)
        ui_grid_text(g, x + 1, g->h - 1, g->w - x - 1, UI_A_DIM, "(type a message; 1-6 and Tab still switch screens)");
    else if (!C->focus && !C->input.len) ui_grid_text(g, x, g->h - 1, g->w - x, UI_A_DIM, "(Enter or i to type)");
}

static void scroll(ChatState *C, int delta)
{
    int maxtop = C->nlines - C->view_h > 0 ? C->nlines - C->view_h : 0;
    if (C->follow) C->top = maxtop;
    C->top += delta;
    if (C->top < 0) C->top = 0;
    if (C->top >= maxtop) { C->top = maxtop; C->follow = 1; }
    else C->follow = 0;
}

/* ---- settings ------------------------------------------------------------- */
static void settings_done(App *a, UiForm *f, int ok)
{
    ChatState *C = state(a);
    if (ok) {
        double v;
        ui_form_num(f, 0, &v); C->temp = (float)v;
        ui_form_num(f, 1, &v); C->topp = (float)v;
        ui_form_num(f, 2, &v); C->n_new = (int)v;
        ui_form_num(f, 3, &v); C->seed = (unsigned long)v;
        ui_form_num(f, 4, &v); C->topk = (int)v;
        ui_form_num(f, 5, &v); C->minp = (float)v;
        ui_form_num(f, 6, &v); C->rpen = (float)v;
        app_msg(a, 0, "sampling: temperature %.2f, top-p %.2f, %d tokens", C->temp, C->topp, C->n_new);
        /* the next start begins with these (the settings file) */
        app_conf_set(a, "chat.temperature", "%g", C->temp);
        app_conf_set(a, "chat.top-p", "%g", C->topp);
        app_conf_set(a, "chat.max-tokens", "%d", C->n_new);
        app_conf_set(a, "chat.seed", "%lu", C->seed);
        app_conf_set(a, "chat.top-k", "%d", C->topk);
        app_conf_set(a, "chat.min-p", "%g", C->minp);
        app_conf_set(a, "chat.repeat-penalty", "%g", C->rpen);
    }
    ui_form_free(f);
    free(f);
}

static void open_settings(App *a)
{
    ChatState *C = state(a);
    UiForm *f = ob_malloc(sizeof *f);
    char b[7][32];
    snprintf(b[0], 32, "%g", C->temp);
    snprintf(b[1], 32, "%g", C->topp);
    snprintf(b[2], 32, "%d", C->n_new);
    snprintf(b[3], 32, "%lu", C->seed);
    snprintf(b[4], 32, "%d", C->topk);
    snprintf(b[5], 32, "%g", C->minp);
    snprintf(b[6], 32, "%g", C->rpen);
    ui_form_init(f, "Sampling");
    ui_form_add(f, "temperature", UI_F_NUM, b[0], 0, 10, "0 = greedy (always the most likely token)");
    ui_form_add(f, "top-p", UI_F_NUM, b[1], 0, 1, "nucleus sampling threshold; 0 or 1 = off");
    ui_form_add(f, "max new tokens", UI_F_INT, b[2], 1, 1 << 20, "the reply stops here, at EOS or at the context end");
    ui_form_add(f, "seed", UI_F_INT, b[3], 0, 2147483647, "0 = a new seed from the clock for every reply");
    ui_form_add(f, "top-k", UI_F_INT, b[4], 0, 1 << 20, "keep the k most likely tokens; 0 = off (as llama.cpp's --top-k)");
    ui_form_add(f, "min-p", UI_F_NUM, b[5], 0, 1, "drop tokens below min-p x the top probability; 0 = off");
    ui_form_add(f, "repeat penalty", UI_F_NUM, b[6], 0, 10, "> 1 penalises repeats of the last 64 tokens; 0 or 1 = off");
    app_form(a, f, settings_done);
}

/* ---- keys and events -------------------------------------------------------- */
static void stop_gen(App *a)
{
    ChatState *C = state(a);
    if (!busy(C)) return;
    for (int i = 0; i < 2; i++)
        if (C->jobs[i]) job_cancel(C->jobs[i]->job);
    app_msg(a, 0, "stopping the generation ...");
}

static int chat_key(App *a, const UiKey *k, int key)
{
    ChatState *C = state(a);
    if (C->focus == FOCUS_READY) { /* the screen keys went to the app (the READY context) */
        if (k && k->action == A_FOCUS) { C->focus = FOCUS_TYPING; return 1; }
        if (!k) { /* any key without a meaning here starts the message */
            C->focus = FOCUS_TYPING;
            k = ui_keymap_find(UI_CTX_CHAT_INPUT, key);
        } /* else Esc, PgUp, PgDn: as in the input line */
    }
    if (C->focus) {
        if (k) {
            switch (k->action) {
            case A_SEND:
                if (C->input.len) send(a);
                return 1;
            case A_ESCAPE:
                if (busy(C)) stop_gen(a);
                else C->focus = 0;
                return 1;
            case A_PGUP: scroll(C, -(C->view_h - 1)); return 1;
            case A_PGDN: scroll(C, C->view_h - 1); return 1;
            default: break;
            }
        }
        return ui_input_key(&C->input, key);
    }
    if (!k) return 0;
    switch (k->action) {
    case A_FOCUS: C->focus = FOCUS_TYPING; return 1;
    case A_ESCAPE: stop_gen(a); return 1;
    case A_SETTINGS: open_settings(a); return 1;
    case A_NEW_CHAT:
        if (busy(C)) { app_msg(a, 1, "a reply is still streaming: Esc stops it"); return 1; }
        for (int i = 0; i < C->n; i++) free(C->turns[i].text);
        C->n = 0;
        C->follow = 1;
        C->sess[0] = C->sess[1] = 0;
        return 1;
    case A_STUDENT: app_prompt(a, "Student (.onebit or checkpoint dir)", C->student_path, 1, student_prompt_done); return 1;
    case A_TARGET_CYCLE:
        if (!C->student) { C->target = TO_TEACHER; app_msg(a, 1, "no student loaded: l loads one"); return 1; }
        C->target = (C->target + 1) % 3;
        if (C->target != TO_STUDENT && !a->teacher) C->target = TO_STUDENT;
        app_msg(a, 0, "talking to %s", C->target == TO_TEACHER ? "the teacher" : C->target == TO_STUDENT ? "the student" : "both, side by side");
        return 1;
    case A_ACT_TOGGLE: {
        /* the student's own execution context (its layers hold it): only
         * this screen runs it, and only between replies, so no forward can
         * see the switch half-way (student_set_exec also checks) */
        if (busy(C)) { app_msg(a, 1, "a reply is still streaming: Esc stops it"); return 1; }
        const KernExec *cur = C->student ? student_exec(C->student) : NULL;
        if (!cur) { app_msg(a, 1, "no student loaded: l loads one"); return 1; }
        int on = cur->act != KERN_ACT_INT8;
        KernExec ex;
        kern_exec_init(&ex, cur->asked, on ? KERN_ACT_INT8 : KERN_ACT_FP32, cur->pool);
        char err[OB_ERRLEN];
        int rc = student_set_exec(C->student, &ex, err);
        kern_exec_fini(&ex);
        if (rc) { app_msg(a, 1, "%s", err); return 1; }
        app_msg(a, 0, "student activations: %s", on ? "int8 (per-512-column scales; faster batched kernels, slightly lossy)" : "fp32 (exact)");
        return 1;
    }
    case A_UP: scroll(C, -1); return 1;
    case A_DOWN: scroll(C, 1); return 1;
    case A_PGUP: scroll(C, -(C->view_h - 1)); return 1;
    case A_PGDN: scroll(C, C->view_h - 1); return 1;
    case A_HOME: C->follow = 0; C->top = 0; return 1;
    case A_END: C->follow = 1; return 1;
    default: return 0;
    }
}

static void use_student(App *a, const char *path, int64_t run);

static void chat_event(App *a, const Event *ev)
{
    ChatState *C = state(a);
    if (ev->kind == EV_REQUEST) {
        if (ev->req == UI_REQ_CHAT_STUDENT && ev->path) use_student(a, ev->path, ev->run_id);
        return;
    }
    if (C->loading && ev->kind == EV_STATUS && ev->run_id == job_id(C->loading->job)) {
        student_loaded(a);
        return;
    }
    for (int i = 0; i < 2; i++) {
        if (!C->jobs[i] || ev->run_id != C->jobs[i]->id) continue;
        if (ev->kind == EV_TOKEN) sync_turn(C, C->jobs[i]);
        else if (ev->kind == EV_STATUS) finish_job(a, i);
        app_dirty(a);
    }
}

static UiCtx chat_typing(App *a)
{
    int f = state(a)->focus;
    return f == FOCUS_READY ? UI_CTX_CHAT_READY : f ? UI_CTX_CHAT_INPUT : 0;
}

static void chat_status(App *a, char *buf, int n)
{
    ChatState *C = state(a);
    for (int i = 0; i < 2; i++) {
        Turn *t = C->jobs[i] ? job_turn(C, C->jobs[i]->id) : NULL;
        if (t) { snprintf(buf, n, "%s: %d tokens, %.1f tokens/s ", role_name(t->role), t->ntok, t->tps); return; }
    }
}

/* the first visit: sampling as the settings file keeps it (the bounds of
 * the Sampling form), else the defaults */
static void chat_enter_init(App *a, ChatState *C)
{
    if (!C->inited) {
        C->inited = 1;
        ui_input_init(&C->input);
        C->temp = (float)app_conf_num(a, "chat.temperature", 0.8, 0, 10);
        C->topp = (float)app_conf_num(a, "chat.top-p", 0.9, 0, 1);
        C->n_new = (int)app_conf_num(a, "chat.max-tokens", 256, 1, 1 << 20);
        C->seed = (unsigned long)app_conf_num(a, "chat.seed", 0, 0, 2147483647);
        C->topk = (int)app_conf_num(a, "chat.top-k", 0, 0, 1 << 20);
        C->minp = (float)app_conf_num(a, "chat.min-p", 0, 0, 1);
        C->rpen = (float)app_conf_num(a, "chat.repeat-penalty", 0, 0, 10);
        C->follow = 1;
    }
}

/* the teacher is the default until a student exists: then the newest
 * finished run's student joins it, side by side */
static void default_student(App *a)
{
    ChatState *C = state(a);
    if (C->student || C->loading || C->jobs[1] || !a->db) return;
    DbRun *runs;
    int n;
    char err[OB_ERRLEN];
    if (db_run_list(a->db, &runs, &n, err)) return;
    for (int i = 0; i < n; i++) /* newest first */
        if (runs[i].status == RUN_FINISHED && runs[i].student_path && access(runs[i].student_path, R_OK) == 0) {
            load_student(a, runs[i].student_path, runs[i].id);
            break;
        }
    db_run_list_free(runs, n);
}

static void chat_enter(App *a)
{
    ChatState *C = state(a);
    chat_enter_init(a, C);
    default_student(a);
    C->focus = FOCUS_READY;
}

/* UI_REQ_CHAT_STUDENT (Runs: c) */
static void use_student(App *a, const char *path, int64_t run)
{
    ChatState *C = state(a);
    chat_enter_init(a, C);
    if (load_student(a, path, run) == 0) app_switch(a, 5);
}

static void chat_fini(App *a)
{
    ChatState *C = state(a);
    for (int i = 0; i < 2; i++)
        if (C->jobs[i]) {
            job_cancel(C->jobs[i]->job);
            finish_job(a, i);
        }
    if (C->loading) { /* (the load cannot be cut short: it ends by itself) */
        StudentLoad *l = C->loading;
        if (job_join(l->job) == 0) load_discard(l);
        job_free(l->job);
        free(l);
    }
    free_student(C);
    for (int i = 0; i < C->n; i++) free(C->turns[i].text);
    free(C->turns);
    if (C->inited) ui_input_free(&C->input);
    memset(C, 0, sizeof *C);
}

const UiScreen ui_scr_chat = {
    .name = "Chat", .number = 5, .ctx = UI_CTX_CHAT, .list = 1,
    .draw = chat_draw, .key = chat_key, .event = chat_event, .typing = chat_typing,
    .status = chat_status, .enter = chat_enter, .fini = chat_fini, .state_size = sizeof(ChatState),
};
