/* ui/scr_runs.c -- screen 4, Runs (UI thread only): the run store's
 * training runs (db_run_list) in a sortable table; Enter shows a run's
 * details (hyperparameters, evaluations, checkpoints, student) and its loss
 * curve; m marks a run and a second run's curve is drawn over it for
 * comparison; r resumes from the latest checkpoint (Train screen), d
 * deletes (asks first), e exports to a directory by running `onebit-tui
 * runs export` as a child process (its output goes to the Log), c chats
 * with the run's student, t shows the conversations the Chat screen kept
 * with it (db_chat_list, as `runs chats`) in a scrolling view. r and c are
 * requests to the Train and Chat screens (app_post), not calls. */
#include <fcntl.h>
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ui/app.h"
#include "ui/chart.h"
#include "base/common.h"
#include "db/db.h"
#include "ui/table.h"

static const UiColumn run_cols[] = {
    {"id", 5, 1}, {"name", 16, 0}, {"status", 11, 0}, {"steps", 13, 1}, {"best ppl", 9, 1}, {"updated", 16, 0}, {"teacher", 0, 0},
};
#define NCOLS ((int)(sizeof run_cols / sizeof run_cols[0]))

typedef struct {
    int64_t id;
    DbMetric *m;
    int n;
    double *x, *loss;
} Curve;

typedef struct {
    UiTable t;
    DbRun *runs;
    int nruns;
    int detail;          /* showing the selected run's details */
    int64_t mark;        /* run marked for comparison (0: none) */
    Curve cur, cmp;
    int64_t del_id;
    double last_refresh;
    int stale;           /* the store changed since the last read */
    int data_version;    /* the store's PRAGMA data_version at the last look */
    double last_look;
    int inited;
    int64_t export_id;   /* the run the export prompt is for */
    /* the chats view (t): the run's kept conversations, scrolled by rows */
    int64_t chats_run;   /* 0: not shown */
    DbChat *chat;
    int nchat, chat_rows, chat_page;
    long chat_top;       /* first row shown */
} RunsState;

static RunsState *state(App *a) { return app_state(a, &ui_scr_runs); }

static void curve_free(Curve *c)
{
    free(c->m);
    free(c->x);
    free(c->loss);
    memset(c, 0, sizeof *c);
}

static void curve_load(App *a, Curve *c, int64_t id)
{
    if (c->id == id && c->m) return;
    curve_free(c);
    char err[OB_ERRLEN];
    if (!a->db || db_metrics(a->db, id, &c->m, &c->n, err)) { if (a->db) app_msg(a, 1, "run store: %s", err); return; }
    c->id = id;
    c->x = ob_malloc(sizeof(double) * (c->n + 1));
    c->loss = ob_malloc(sizeof(double) * (c->n + 1));
    for (int i = 0; i < c->n; i++) { c->x[i] = c->m[i].step; c->loss[i] = c->m[i].loss; }
}

static const DbRun *selected(RunsState *S)
{
    int r = ui_table_selected(&S->t);
    return r >= 0 && r < S->nruns ? &S->runs[r] : NULL;
}

static void refresh(App *a)
{
    RunsState *S = state(a);
    if (!S->inited) { ui_table_init(&S->t, run_cols, NCOLS); S->inited = 1; S->t.sort_col = -1; }
    if (!a->db) return;
    int64_t sel = selected(S) ? selected(S)->id : 0;
    DbRun *runs;
    int n;
    char err[OB_ERRLEN];
    if (db_run_list(a->db, &runs, &n, err)) { app_msg(a, 1, "run store: %s", err); return; }
    db_run_list_free(S->runs, S->nruns);
    S->runs = runs;
    S->nruns = n;
    ui_table_clear(&S->t);
    for (int i = 0; i < n; i++) {
        const DbRun *r = &runs[i];
        int row = ui_table_add(&S->t);
        char b[64];
        ui_table_setf(&S->t, row, 0, (double)r->id, "%lld", (long long)r->id);
        ui_table_set(&S->t, row, 1, r->name, NAN);
        ui_table_set(&S->t, row, 2, run_status_name(r->status), NAN);
        ui_table_setf(&S->t, row, 3, r->steps_done, "%d/%d", r->steps_done, r->total_steps);
        if (isfinite(r->best_ppl)) ui_table_setf(&S->t, row, 4, r->best_ppl, "%.3f", r->best_ppl);
        else ui_table_set(&S->t, row, 4, "-", INFINITY);
        time_t tt = (time_t)r->updated;
        struct tm tm;
        localtime_r(&tt, &tm);
        strftime(b, sizeof b, "%Y-%m-%d %H:%M", &tm);
        ui_table_set(&S->t, row, 5, b, r->updated);
        const char *tp = r->teacher_path ? strrchr(r->teacher_path, '/') : NULL;
        ui_table_set(&S->t, row, 6, tp ? tp + 1 : r->teacher_path ? r->teacher_path : "", NAN);
        if (r->id == sel) ui_table_select_row(&S->t, row);
    }
    ui_table_sort(&S->t, S->t.sort_col, S->t.sort_desc);
    if (sel) for (int i = 0; i < n; i++) if (runs[i].id == sel) ui_table_select_row(&S->t, i);
    S->last_refresh = ob_now();
    S->stale = 0;
    app_dirty(a);
}

/* the run's hyperparameters as "name value" pairs, wrapped to the width,
 * numbers as %g (the stored JSON keeps every digit); the next free line */
static int draw_hparams(UiGrid *g, const char *json, int y, int x0)
{
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    if (!cJSON_IsObject(o)) {
        ui_grid_text(g, x0, y++, g->w - x0, UI_A_DIM, json ? json : "");
        cJSON_Delete(o);
        return y;
    }
    char line[1024] = "", item[600];
    size_t k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, o) {
        if (cJSON_IsNumber(e)) snprintf(item, sizeof item, "%s %g", e->string, e->valuedouble);
        else if (cJSON_IsString(e)) {
            const char *v = strrchr(e->valuestring, '/'); /* paths: the file's name */
            snprintf(item, sizeof item, "%s %.500s", e->string, v && v[1] ? v + 1 : e->valuestring);
        } else continue;
        size_t il = strlen(item);
        if (k && (int)(k + 2 + il) > g->w - x0) {
            ui_grid_text(g, x0, y++, g->w - x0, UI_A_DIM, line);
            k = 0;
        }
        k += (size_t)snprintf(line + k, sizeof line - k, "%s%s", k ? "  " : "", item);
    }
    if (k) ui_grid_text(g, x0, y++, g->w - x0, UI_A_DIM, line);
    cJSON_Delete(o);
    return y;
}

static void draw_detail(App *a, UiGrid *g, const DbRun *r, int y0)
{
    RunsState *S = state(a);
    int y = y0;
    char err[OB_ERRLEN];
    ui_grid_printf(g, 0, y++, g->w, UI_A_BOLD, "run %lld  %s  [%s]  %d/%d steps%s%s", (long long)r->id, r->name,
                   run_status_name(r->status), r->steps_done, r->total_steps, r->message && r->message[0] ? "  " : "",
                   r->message ? r->message : "");
    ui_grid_printf(g, 2, y++, g->w - 2, UI_A_NORMAL, "teacher %s", r->teacher_path ? r->teacher_path : "-");
    ui_grid_printf(g, 2, y++, g->w - 2, UI_A_NORMAL, "student %s", r->student_path ? r->student_path : "(not written yet)");
    y = draw_hparams(g, r->hparams, y, 2);
    DbEval *ev = NULL;
    int ne = 0;
    if (a->db && db_evals(a->db, r->id, &ev, &ne, err) == 0 && ne > 0) {
        /* one line per step: whose perplexity, labelled (step 0: the
         * teacher and the PTQ baselines; then the student) */
        for (int i = 0; i < ne && y < g->h - 8;) {
            char line[512];
            size_t k = (size_t)snprintf(line, sizeof line, "held-out ppl at step %d:", ev[i].step);
            int step = ev[i].step;
            for (; i < ne && ev[i].step == step; i++)
                if (k < sizeof line - 40)
                    k += (size_t)snprintf(line + k, sizeof line - k, "  %s %.3f", ev[i].model[0] ? ev[i].model : "student", ev[i].ppl);
            ui_grid_text(g, 2, y++, g->w - 2, UI_A_NORMAL, line);
        }
    }
    free(ev);
    /* zero-shot tasks (eval --task --db): per task the student's newest
     * accuracy beside its teacher's */
    DbTaskResult *tr = NULL;
    int nt = 0;
    if (a->db && db_task_results(a->db, r->id, r->teacher_id, &tr, &nt, err) == 0)
        for (int i = 0; i < nt; i++) {
            if (i && !strcmp(tr[i].task, tr[i - 1].task)) continue; /* the newest of each task and model first */
            double st = NAN, te = NAN;
            for (int j = i; j < nt && !strcmp(tr[j].task, tr[i].task); j++) {
                if (!strcmp(tr[j].model, "student") && isnan(st)) st = tr[j].acc;
                if (!strcmp(tr[j].model, "teacher") && isnan(te)) te = tr[j].acc;
            }
            char keeps[32] = "", sb[16] = "-", tb[16] = "-";
            if (isfinite(st)) snprintf(sb, sizeof sb, "%.3f", st);
            if (isfinite(te)) snprintf(tb, sizeof tb, "%.3f", te);
            if (isfinite(st) && te > 0) snprintf(keeps, sizeof keeps, "  keeps %.1f%%", 100 * st / te);
            ui_grid_printf(g, 2, y++, g->w - 2, UI_A_NORMAL, "task %-16s student acc %s  teacher acc %s%s", tr[i].task, sb,
                           tb, keeps);
        }
    db_task_results_free(tr, nt);
    DbCheckpoint ck;
    int have = a->db ? db_checkpoint_latest(a->db, r->id, &ck, err) : 0;
    if (have == 1) {
        ui_grid_printf(g, 2, y++, g->w - 2, UI_A_NORMAL, "latest checkpoint: step %d  %s", ck.step, ck.path);
        free(ck.path);
    } else ui_grid_text(g, 2, y++, g->w - 2, UI_A_DIM, "no checkpoint");
    /* the loss curve, and the marked run's over it */
    curve_load(a, &S->cur, r->id);
    UiChart c = {.title = "loss", .xlabel = "step"};
    char n1[80], n2[80];
    snprintf(n1, sizeof n1, "run %lld", (long long)r->id);
    c.series[c.nseries++] = (UiSeries){n1, S->cur.x, S->cur.loss, S->cur.n, 0};
    if (S->mark && S->mark != r->id) {
        curve_load(a, &S->cmp, S->mark);
        snprintf(n2, sizeof n2, "run %lld (marked)", (long long)S->mark);
        c.series[c.nseries++] = (UiSeries){n2, S->cmp.x, S->cmp.loss, S->cmp.n, 0};
    }
    if (g->h - y > 6) ui_chart_render(&c, g, 0, y + 1, g->w, g->h - y - 1);
}

/* ---- the chats view --------------------------------------------------------- */
typedef struct {
    UiGrid *g;
    const char *role;    /* the role column of the first row of a message */
    long row, top;
} ChatDraw;

enum { ROLE_W = 10 };    /* the role column, "assistant " */

static void chat_row(void *user, const char *start, int len)
{
    ChatDraw *d = user;
    long y = d->row++ - d->top;
    if (y < 1 || y >= d->g->h) return; /* row 0 of the grid: the title */
    char buf[1024];
    if (len > (int)sizeof buf - 1) len = (int)sizeof buf - 1;
    memcpy(buf, start, (size_t)len);
    buf[len] = 0;
    if (d->role) ui_grid_text(d->g, 0, (int)y, ROLE_W, UI_A_BOLD, d->role);
    ui_grid_text(d->g, ROLE_W, (int)y, d->g->w - ROLE_W, UI_A_NORMAL, buf);
    d->role = NULL;
}

/* the conversations, a header line before each; also counts the rows */
static void draw_chats(App *a, UiGrid *g)
{
    RunsState *S = state(a);
    S->chat_page = g->h - 1;
    ChatDraw d = {.g = g, .row = 1, .top = S->chat_top};
    for (int i = 0; i < S->nchat; i++) {
        const DbChat *c = &S->chat[i];
        if (i == 0 || c->session != S->chat[i - 1].session) {
            long y = d.row++ - d.top;
            char tb[32];
            time_t tt = (time_t)c->time;
            struct tm tm;
            localtime_r(&tt, &tm);
            strftime(tb, sizeof tb, "%Y-%m-%d %H:%M", &tm);
            if (y >= 1 && y < g->h) ui_grid_printf(g, 0, (int)y, g->w, UI_A_DIM, "-- conversation %lld, %s", (long long)c->session, tb);
        }
        d.role = c->role;
        ui_wrap(c->text, g->w - ROLE_W > 8 ? g->w - ROLE_W : 8, chat_row, &d);
    }
    S->chat_rows = (int)d.row - 1;
    ui_grid_hline(g, 0, 0, g->w, ' ', UI_A_TITLE);
    ui_grid_printf(g, 0, 0, g->w, UI_A_TITLE, " chats kept with run %lld's student: %d message%s  (Up/Down/PgUp/PgDn scroll, Esc or t: back)",
                   (long long)S->chats_run, S->nchat, S->nchat == 1 ? "" : "s");
    if (S->nchat == 0) ui_grid_text(g, 2, 2, g->w - 4, UI_A_DIM, "no chats kept with this run's student (c chats with it)");
}

static void chats_close(RunsState *S)
{
    db_chat_list_free(S->chat, S->nchat);
    S->chat = NULL;
    S->nchat = 0;
    S->chats_run = 0;
}

static void chats_open(App *a, const DbRun *r)
{
    RunsState *S = state(a);
    char err[OB_ERRLEN];
    DbChat *c;
    int n;
    if (db_chat_list(a->db, r->id, 0, -1, &c, &n, err)) { app_msg(a, 1, "run store: %s", err); return; }
    chats_close(S);
    S->chat = c;
    S->nchat = n;
    S->chats_run = r->id;
    S->chat_top = 0;
}

/* the list keys scroll the view, Esc and t close it; 1 when k was one of them */
static int chats_key(RunsState *S, UiAction act)
{
    if (act == A_ESCAPE || act == A_CHATS) { chats_close(S); return 1; }
    long page = S->chat_page > 1 ? S->chat_page : 1;
    return ui_scroll(&S->chat_top, act, page, S->chat_rows - page > 0 ? S->chat_rows - page : 0);
}

static void runs_draw(App *a, UiGrid *g)
{
    RunsState *S = state(a);
    if (S->chats_run) { draw_chats(a, g); return; }
    /* another process (a CLI or MPI run, its writer) committed to the store:
     * SQLite's data_version says so without reading a table; looked at at
     * most once a second, while shown (watch_ms wakes the loop for it) */
    if (a->db && ob_now() - S->last_look >= 1.0) {
        int v = db_data_version(a->db);
        if (S->inited && v >= 0 && v != S->data_version) S->stale = 1;
        S->data_version = v;
        S->last_look = ob_now();
    }
    if (!S->inited || (S->stale && ob_now() - S->last_refresh > 1.0)) { /* read only while shown, at most once a second */
        refresh(a);
        curve_free(&S->cur);
    }
    if (!a->db) { ui_grid_text(g, 2, 1, g->w - 4, UI_A_ERR, "No run store: see the Log screen (6)."); return; }
    if (S->nruns == 0) { ui_grid_text(g, 2, 1, g->w - 4, UI_A_NORMAL, "No runs yet: start one on the Train screen (3)."); return; }
    int th = S->detail ? (g->h / 3 > 4 ? g->h / 3 : 4) : g->h;
    if (th > S->nruns + 1 && S->detail) th = S->nruns + 1;
    ui_table_render(&S->t, g, 0, 0, g->w, th, 1);
    if (S->mark) {
        for (int i = 0; i < S->t.page && S->t.top + i < S->t.nshow; i++)
            if (S->runs[S->t.order[S->t.top + i]].id == S->mark) ui_grid_put(g, 0, 1 + i, '*', UI_A_BOLD);
    }
    const DbRun *r = selected(S);
    if (S->detail && r) draw_detail(a, g, r, th + 1);
}

static void delete_answer(App *a, int yes)
{
    RunsState *S = state(a);
    if (!yes || !S->del_id) return;
    char err[OB_ERRLEN];
    if (db_run_delete(a->db, S->del_id, err)) app_msg(a, 1, "run store: %s", err);
    else app_msg(a, 0, "deleted run %lld (its files are kept)", (long long)S->del_id);
    if (S->mark == S->del_id) S->mark = 0;
    curve_free(&S->cur);
    curve_free(&S->cmp);
    S->del_id = 0;
    refresh(a);
}

static void export_to(App *a, const char *dir)
{
    RunsState *S = state(a);
    if (!dir[0]) return;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) { app_msg(a, 1, "cannot find the onebit-tui executable"); return; }
    self[n] = 0;
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)S->export_id);
    int pfd[2];
    if (pipe(pfd)) { app_msg(a, 1, "export: pipe failed"); return; }
    pid_t pid = fork();
    if (pid < 0) { close(pfd[0]); close(pfd[1]); app_msg(a, 1, "export: fork failed"); return; }
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        execl(self, self, "runs", "export", id, dir, "--db", a->db_path, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    /* the export is quick (a few small files and one copy): wait for it */
    char buf[4096];
    size_t len = 0;
    ssize_t r;
    while ((r = read(pfd[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)r;
    buf[len] = 0;
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) app_log(a, "export: %s", line);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) app_msg(a, 0, "exported run %lld to %s", (long long)S->export_id, dir);
    else app_msg(a, 1, "export of run %lld failed (see the Log)", (long long)S->export_id);
}

static int runs_key(App *a, const UiKey *k, int key)
{
    RunsState *S = state(a);
    if (!k) return 0;
    if (S->chats_run) return chats_key(S, k->action);
    const DbRun *r = selected(S);
    switch (k->action) {
    case A_CHATS:
        if (r && a->db) chats_open(a, r);
        return 1;
    case A_OPEN: S->detail = !S->detail; return 1;
    case A_ESCAPE: S->detail = 0; return 1;
    case A_REFRESH: refresh(a); return 1;
    case A_MARK:
        if (!r) return 1;
        S->mark = S->mark == r->id ? 0 : r->id;
        if (S->mark) app_msg(a, 0, "run %lld marked: its curve is drawn over the selected run's", (long long)S->mark);
        S->detail = 1;
        return 1;
    case A_RESUME:
        if (!r) return 1;
        if (r->status == RUN_FINISHED) { app_msg(a, 1, "run %lld has finished", (long long)r->id); return 1; }
        if (r->status == RUN_RUNNING || r->status == RUN_PAUSED) { app_msg(a, 1, "run %lld is still training", (long long)r->id); return 1; }
        app_post(a, &(Event){.kind = EV_REQUEST, .req = UI_REQ_RESUME_RUN, .run_id = r->id});
        return 1;
    case A_DELETE: {
        if (!r || !app_db_writable(a, "delete a run")) return 1;
        if (r->status == RUN_RUNNING || r->status == RUN_PAUSED) { app_msg(a, 1, "stop run %lld first", (long long)r->id); return 1; }
        char q[160];
        snprintf(q, sizeof q, "Delete run %lld '%s' and its records (files stay)?", (long long)r->id, r->name);
        S->del_id = r->id;
        app_confirm(a, q, delete_answer);
        return 1;
    }
    case A_EXPORT: {
        if (!r) return 1;
        S->export_id = r->id;
        char dir[128];
        snprintf(dir, sizeof dir, "run-%lld-export", (long long)r->id);
        app_prompt(a, "Export to directory", dir, 1, export_to);
        return 1;
    }
    case A_CHAT_STUDENT:
        if (!r) return 1;
        if (!r->student_path) { app_msg(a, 1, "run %lld has no student file yet", (long long)r->id); return 1; }
        app_post(a, &(Event){.kind = EV_REQUEST, .req = UI_REQ_CHAT_STUDENT, .run_id = r->id,
                             .path = evring_intern(r->student_path)});
        return 1;
    default: return ui_table_keys(&S->t, k->action, NCOLS);
    }
}

static void runs_event(App *a, const Event *ev)
{
    RunsState *S = state(a);
    if (ev->kind == EV_REQUEST && ev->req == UI_REQ_RUNS_CHANGED) { S->stale = 1; S->last_refresh = 0; app_dirty(a); return; }
    /* status changes and checkpoints of runs change the table; steps at most once a second */
    if (ev->kind == EV_REQUEST || ev->run_id >= ((int64_t)1 << 40)) return;
    if (ev->kind == EV_STATUS || ev->kind == EV_CKPT || ev->kind == EV_STEP || ev->kind == EV_EVAL) S->stale = 1;
    if (ev->kind == EV_STATUS) S->last_refresh = 0; /* status changes show at once */
}

static void runs_enter(App *a)
{
    RunsState *S = state(a);
    refresh(a);
    curve_free(&S->cur);
    curve_free(&S->cmp);
}

static void runs_fini(App *a)
{
    RunsState *S = state(a);
    db_run_list_free(S->runs, S->nruns);
    curve_free(&S->cur);
    curve_free(&S->cmp);
    chats_close(S);
    if (S->inited) ui_table_free(&S->t);
    memset(S, 0, sizeof *S);
}

static UiTable *runs_table(App *a)
{
    RunsState *S = state(a);
    return S->inited && !S->chats_run ? &S->t : NULL;
}

const UiScreen ui_scr_runs = {
    .name = "Runs", .number = 4, .ctx = UI_CTX_RUNS, .list = 1,
    .draw = runs_draw, .key = runs_key, .event = runs_event, .enter = runs_enter, .fini = runs_fini,
    .state_size = sizeof(RunsState), .watch_ms = 1000, .table = runs_table,
};
