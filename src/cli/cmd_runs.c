/* cmd_runs.c -- `onebit-tui runs`: list, show, curves, compare, delete and
 * export the training runs recorded in the run store (db/db.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "base/common.h"
#include "db/db.h"
#include "train/session.h"

static void help(void)
{
    printf("Usage: onebit-tui runs [list] [--db DB] [--json]\n"
           "       onebit-tui runs show RUN [--db DB] [--json]\n"
           "       onebit-tui runs curves RUN [--csv | --json] [--db DB]\n"
           "       onebit-tui runs chats RUN [--db DB] [--json]\n"
           "       onebit-tui runs compare RUN... | --sweep NAME [--db DB] [--json]\n"
           "       onebit-tui runs delete RUN [--db DB]\n"
           "       onebit-tui runs export RUN DIR [--db DB]\n"
           "\n"
           "The training runs recorded by 'onebit-tui train --db DB'. RUN is a run id or\n"
           "name. A run whose training process died reads as interrupted.\n"
           "\n"
           "  list     id, name, teacher, status, steps done/total, best held-out\n"
           "           perplexity, last update (newest first)\n"
           "  show     everything about one run: hyperparameters, the loss curve's ends,\n"
           "           evaluations, checkpoints\n"
           "  curves   the per-step metrics (loss, kl, mse, lr, grad norm, tokens/s, wall time)\n"
           "  chats    the conversations kept from the Chat screen with the run's student\n"
           "  compare  one row per run (the runs given, and/or those of sweep NAME from\n"
           "           'train --sweep'): the options whose values differ, steps done,\n"
           "           the final held-out perplexity, the latest TinyStories perplexity\n"
           "           and tinystories_mc accuracy of the student when recorded, the\n"
           "           training's wall time\n"
           "  delete   remove the run and its metrics, evaluations, checkpoint records and\n"
           "           chats from the database (files on disk are kept)\n"
           "  export   write DIR/run.json, metrics.csv, evals.csv, checkpoints.csv and a\n"
           "           copy of the student file\n"
           "\n"
           "  --db DB   the database (default $XDG_DATA_HOME/onebit-tui/runs.db,\n"
           "            ~/.local/share/onebit-tui/runs.db without XDG_DATA_HOME)\n"
           "  --json    machine-readable output\n"
           "  --sweep NAME  compare: the runs queued by train --sweep under NAME\n"
           "  --csv     curves as CSV\n");
}

/* ---- output helpers ---------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

/* ,"key":value */
static void json_str_field(FILE *f, const char *key, const char *s)
{
    fprintf(f, ",\"%s\":", key);
    json_str(f, s);
}

static void json_num_field(FILE *f, const char *key, double v)
{
    fprintf(f, ",\"%s\":", key);
    json_num(f, v);
}

/* n more number fields of a JSON object: ,"key[i]":v[i] */
static void json_num_fields(FILE *f, const char *const *key, const double *v, int n)
{
    for (int i = 0; i < n; i++) json_num_field(f, key[i], v[i]);
}

static void csv_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.9g", v);
}

/* a CSV field, quoted when it needs to be */
static void csv_str(FILE *f, const char *s)
{
    if (!s) return;
    if (!strpbrk(s, ",\"\n\r")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* t as local "YYYY-MM-DD HH:MM" ("-" when unset) or as UTC ISO 8601 */
static const char *fmt_time(double t, char *buf, size_t n, int utc)
{
    time_t s = (time_t)t;
    struct tm tm;
    if (t <= 0 || !(utc ? gmtime_r(&s, &tm) : localtime_r(&s, &tm))) {
        snprintf(buf, n, "%s", utc ? "1970-01-01T00:00:00Z" : "-");
        return buf;
    }
    strftime(buf, n, utc ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M", &tm);
    return buf;
}

static const char *local_time(double t, char *buf, size_t n) { return fmt_time(t, buf, n, 0); }
static const char *utc_time(double t, char *buf, size_t n) { return fmt_time(t, buf, n, 1); }

static const char *base_name(const char *p)
{
    const char *s = p ? strrchr(p, '/') : NULL;
    return s ? s + 1 : p ? p : "";
}

/* ---- the database ----------------------------------------------------------------- */

/* open for reading: read-write when we may (that migrates an older file and
 * stores interrupted runs), else read-only. *missing = 1 when there is no
 * database file at all. */
static Db *open_for_read(const char *path, int *missing, char *err)
{
    char *def = NULL;
    *missing = 0;
    if (!path) {
        if (!(def = db_default_path(err))) return NULL;
        path = def;
    }
    Db *db = NULL;
    if (access(path, F_OK) != 0) {
        ob_seterr(err, "%s: %s", path, strerror(errno));
        *missing = errno == ENOENT;
    } else {
        if (access(path, W_OK) == 0) db = db_open(path, 0, err);
        if (!db) db = db_open(path, 1, err);
    }
    free(def);
    return db;
}

/* ---- list ------------------------------------------------------------------------ */

static void run_json(FILE *f, const DbRun *r, int with_hparams)
{
    char t1[32], t2[32];
    fprintf(f, "{\"id\":%lld,\"name\":", (long long)r->id);
    json_str(f, r->name);
    json_str_field(f, "teacher", r->teacher_path);
    json_str_field(f, "status", run_status_name(r->status));
    json_str_field(f, "message", r->message);
    fprintf(f, ",\"steps_done\":%d,\"total_steps\":%d,\"last_checkpoint_step\":", r->steps_done, r->total_steps);
    if (r->last_ckpt_step >= 0) fprintf(f, "%d", r->last_ckpt_step);
    else fputs("null", f);
    json_num_field(f, "best_ppl", r->best_ppl);
    fputs(",\"student\":", f);
    if (r->student_path) json_str(f, r->student_path);
    else fputs("null", f);
    fprintf(f, ",\"created\":\"%s\",\"updated\":\"%s\"", utc_time(r->created, t1, sizeof t1),
            utc_time(r->updated, t2, sizeof t2));
    if (with_hparams) fprintf(f, ",\"hparams\":%s", r->hparams && *r->hparams ? r->hparams : "{}");
    fputc('}', f);
}

static int cmd_list(Db *db, int json)
{
    char err[OB_ERRLEN];
    DbRun *runs;
    int n;
    if (db_run_list(db, &runs, &n, err)) return cli_error("%s", err);
    if (json) {
        fputc('[', stdout);
        for (int i = 0; i < n; i++) {
            if (i) fputc(',', stdout);
            run_json(stdout, &runs[i], 0);
        }
        fputs("]\n", stdout);
    } else if (n == 0) {
        printf("no runs recorded in %s\n", db_path(db));
    } else {
        printf("%5s  %-20s %-20s %-11s %13s %10s  %s\n", "ID", "NAME", "TEACHER", "STATUS", "STEPS", "BEST PPL", "UPDATED");
        for (int i = 0; i < n; i++) {
            const DbRun *r = &runs[i];
            char steps[32], ppl[32], t[32];
            snprintf(steps, sizeof steps, "%d/%d", r->steps_done, r->total_steps);
            if (isfinite(r->best_ppl)) snprintf(ppl, sizeof ppl, "%.3f", r->best_ppl);
            else snprintf(ppl, sizeof ppl, "-");
            printf("%5lld  %-20s %-20s %-11s %13s %10s  %s\n", (long long)r->id, r->name, base_name(r->teacher_path),
                   run_status_name(r->status), steps, ppl, local_time(r->updated, t, sizeof t));
        }
    }
    db_run_list_free(runs, n);
    return EXIT_OK;
}

/* ---- show ------------------------------------------------------------------------ */

static int write_run_json(FILE *f, Db *db, const DbRun *r, char *err)
{
    DbEval *ev;
    DbCheckpoint *ck;
    int ne, nc;
    if (db_evals(db, r->id, &ev, &ne, err)) return -1;
    if (db_checkpoints(db, r->id, &ck, &nc, err)) { free(ev); return -1; }
    DbTeacher t = {0};
    int have_t = r->teacher_id > 0 && db_teacher_get(db, r->teacher_id, &t, err) == 0;
    fputs("{\"run\":", f);
    run_json(f, r, 1);
    fputs(",\"teacher\":", f);
    if (have_t) {
        fprintf(f, "{\"id\":%lld,\"path\":", (long long)t.id);
        json_str(f, t.path);
        json_str_field(f, "sha256", t.sha256);
        json_str_field(f, "format", t.format);
        fprintf(f, ",\"config\":%s}", t.config && *t.config ? t.config : "{}");
    } else fputs("null", f);
    fputs(",\"evals\":[", f);
    for (int i = 0; i < ne; i++) {
        fprintf(f, "%s{\"step\":%d,\"model\":", i ? "," : "", ev[i].step);
        json_str(f, ev[i].model);
        json_str_field(f, "dataset", ev[i].dataset);
        json_num_field(f, "nll", ev[i].nll);
        json_num_field(f, "ppl", ev[i].ppl);
        fputc('}', f);
    }
    DbTaskResult *tr;
    int nt;
    if (db_task_results(db, r->id, r->teacher_id, &tr, &nt, err)) {
        if (have_t) db_teacher_free(&t);
        free(ev);
        db_checkpoints_free(ck, nc);
        return -1;
    }
    fputs("],\"tasks\":[", f);
    for (int i = 0; i < nt; i++) {
        fprintf(f, "%s{\"task\":", i ? "," : "");
        json_str(f, tr[i].task);
        json_str_field(f, "model", tr[i].model);
        json_str_field(f, "file", tr[i].file);
        fprintf(f, ",\"items\":%d", tr[i].items);
        static const char *const keys[] = {"acc", "acc_stderr", "acc_norm", "acc_norm_stderr"};
        json_num_fields(f, keys, (const double[]){tr[i].acc, tr[i].acc_stderr, tr[i].acc_norm, tr[i].acc_norm_stderr}, 4);
        fputc('}', f);
    }
    db_task_results_free(tr, nt);
    fputs("],\"checkpoints\":[", f);
    for (int i = 0; i < nc; i++) {
        char tb[32];
        fprintf(f, "%s{\"step\":%d,\"path\":", i ? "," : "", ck[i].step);
        json_str(f, ck[i].path);
        json_str_field(f, "sha256", ck[i].sha256);
        fprintf(f, ",\"time\":\"%s\"}", utc_time(ck[i].time, tb, sizeof tb));
    }
    fputs("]}\n", f);
    if (have_t) db_teacher_free(&t);
    free(ev);
    db_checkpoints_free(ck, nc);
    return 0;
}

static int cmd_show(Db *db, const DbRun *r, int json)
{
    char err[OB_ERRLEN];
    if (json) {
        if (write_run_json(stdout, db, r, err)) return cli_error("%s", err);
        return EXIT_OK;
    }
    DbEval *ev;
    DbCheckpoint *ck;
    int ne, nc;
    if (db_evals(db, r->id, &ev, &ne, err)) return cli_error("%s", err);
    if (db_checkpoints(db, r->id, &ck, &nc, err)) { free(ev); return cli_error("%s", err); }
    char t1[32], t2[32];
    printf("run          %lld  %s\n", (long long)r->id, r->name);
    printf("status       %s%s%s\n", run_status_name(r->status), *r->message ? ": " : "", r->message);
    printf("teacher      %s\n", *r->teacher_path ? r->teacher_path : "-");
    printf("steps        %d/%d\n", r->steps_done, r->total_steps);
    if (isfinite(r->best_ppl)) printf("best ppl     %.4f\n", r->best_ppl);
    printf("student      %s\n", r->student_path ? r->student_path : "-");
    printf("created      %s\n", local_time(r->created, t1, sizeof t1));
    printf("updated      %s\n", local_time(r->updated, t2, sizeof t2));
    printf("hparams      %s\n", r->hparams);
    DbMetric *m;
    int nm;
    if (db_metrics(db, r->id, &m, &nm, err) == 0) { /* the curve in one line: `runs curves` has it all */
        printf("metrics      %d", nm);
        if (nm > 0) printf(" (steps %d..%d, loss %.4f -> %.4f)", m[0].step, m[nm - 1].step, m[0].loss, m[nm - 1].loss);
        printf("\n");
        free(m);
    }
    printf("evaluations  %d\n", ne);
    for (int i = 0; i < ne; i++)
        printf("  step %-8d %-16s %-24s nll %.6f  ppl %.4f\n", ev[i].step, ev[i].model,
               *ev[i].dataset ? ev[i].dataset : "-", ev[i].nll, ev[i].ppl);
    DbTaskResult *tr;
    int nt;
    if (db_task_results(db, r->id, r->teacher_id, &tr, &nt, err)) {
        free(ev);
        db_checkpoints_free(ck, nc);
        return cli_error("%s", err);
    }
    printf("tasks        %d\n", nt);
    for (int i = 0; i < nt; i++) {
        /* the student's newest result beside its teacher's newest on the
         * same task: the share of the teacher's accuracy it keeps */
        printf("  %-16s %-8s acc %.4f +- %.4f  acc_norm %.4f +- %.4f  items %d", tr[i].task, tr[i].model, tr[i].acc,
               tr[i].acc_stderr, tr[i].acc_norm, tr[i].acc_norm_stderr, tr[i].items);
        if (!strcmp(tr[i].model, "student"))
            for (int j = 0; j < nt; j++)
                if (!strcmp(tr[j].model, "teacher") && !strcmp(tr[j].task, tr[i].task)) {
                    if (tr[j].acc > 0) printf("  keeps %.1f%%", 100 * tr[i].acc / tr[j].acc);
                    break;
                }
        printf("\n");
    }
    db_task_results_free(tr, nt);
    /* one line per file (a run rewrites one checkpoint file at every step
     * it saves): its steps, the newest last, the state it holds now */
    printf("checkpoints  %d\n", nc);
    for (int i = 0; i < nc; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(ck[j].path, ck[i].path);
        if (seen) continue;
        int n = 0, last = ck[i].step;
        for (int j = i; j < nc; j++)
            if (!strcmp(ck[j].path, ck[i].path)) { n++; last = ck[j].step; }
        if (n == 1) printf("  step %-8d %s\n", last, ck[i].path);
        else printf("  steps %d..%d (%d saves; holds step %d)  %s\n", ck[i].step, last, n, last, ck[i].path);
    }
    free(ev);
    db_checkpoints_free(ck, nc);
    return EXIT_OK;
}

/* ---- curves ----------------------------------------------------------------------- */

static const char *const metric_header = "step,loss,kl,mse,lr,grad_norm,tokens_per_s,wall";

static void metrics_csv(FILE *f, const DbMetric *m, int n)
{
    fprintf(f, "%s\n", metric_header);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%d,", m[i].step);
        csv_num(f, m[i].loss); fputc(',', f);
        csv_num(f, m[i].kl); fputc(',', f);
        csv_num(f, m[i].mse); fputc(',', f);
        csv_num(f, m[i].lr); fputc(',', f);
        csv_num(f, m[i].grad_norm); fputc(',', f);
        csv_num(f, m[i].tokens_per_s); fputc(',', f);
        csv_num(f, m[i].wall); fputc('\n', f);
    }
}

static int cmd_curves(Db *db, const DbRun *r, int json, int csv)
{
    char err[OB_ERRLEN];
    DbMetric *m;
    int n;
    if (db_metrics(db, r->id, &m, &n, err)) return cli_error("%s", err);
    if (csv) metrics_csv(stdout, m, n);
    else if (json) {
        fputc('[', stdout);
        for (int i = 0; i < n; i++) {
            printf("%s{\"step\":%d,\"loss\":", i ? "," : "", m[i].step);
            json_num(stdout, m[i].loss);
            static const char *const keys[] = {"kl", "mse", "lr", "grad_norm", "tokens_per_s", "wall"};
            json_num_fields(stdout, keys, (const double[]){m[i].kl, m[i].mse, m[i].lr, m[i].grad_norm, m[i].tokens_per_s, m[i].wall}, 6);
            fputc('}', stdout);
        }
        fputs("]\n", stdout);
    } else {
        printf("%8s %12s %12s %12s %10s %10s %10s %10s\n", "STEP", "LOSS", "KL", "MSE", "LR", "GRADNORM", "TOK/S", "WALL");
        for (int i = 0; i < n; i++)
            printf("%8d %12.6g %12.6g %12.6g %10.4g %10.4g %10.1f %10.1f\n", m[i].step, m[i].loss, m[i].kl, m[i].mse,
                   m[i].lr, m[i].grad_norm, m[i].tokens_per_s, m[i].wall);
    }
    free(m);
    return EXIT_OK;
}

/* ---- export ------------------------------------------------------------------------ */

/* close f, reporting a failed write (a full disk shows up here) */
static int close_checked(FILE *f, const char *path, char *err)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        ob_seterr(err, "%s: write failed: %s", path, strerror(errno ? errno : EIO));
        return -1;
    }
    return 0;
}

static int copy_file(const char *from, const char *to, char *err)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) { ob_seterr(err, "%s: %s", from, strerror(errno)); return -1; }
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) { ob_seterr(err, "%s: %s", to, strerror(errno)); close(in); return -1; }
    char buf[1 << 16];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            ob_seterr(err, "%s: %s", from, strerror(errno));
            rc = -1;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR) continue;
                ob_seterr(err, "%s: %s", to, strerror(errno));
                rc = -1;
                break;
            }
            off += w;
        }
        if (rc) break;
    }
    if (close(out) != 0 && rc == 0) { ob_seterr(err, "%s: %s", to, strerror(errno)); rc = -1; }
    close(in);
    return rc;
}

static FILE *create_in(const char *dir, const char *name, char *path, size_t n, char *err)
{
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) ob_seterr(err, "%s: %s", path, strerror(errno));
    return f;
}

static int cmd_export(Db *db, const DbRun *r, const char *dir)
{
    char err[OB_ERRLEN], path[4096];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return cli_error("%s: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return cli_error("%s: not a directory", dir);

    FILE *f = create_in(dir, "run.json", path, sizeof path, err);
    if (!f) return cli_error("%s", err);
    if (write_run_json(f, db, r, err)) { fclose(f); return cli_error("%s", err); }
    if (close_checked(f, path, err)) return cli_error("%s", err);

    DbMetric *m;
    int n;
    if (db_metrics(db, r->id, &m, &n, err)) return cli_error("%s", err);
    if (!(f = create_in(dir, "metrics.csv", path, sizeof path, err))) { free(m); return cli_error("%s", err); }
    metrics_csv(f, m, n);
    free(m);
    if (close_checked(f, path, err)) return cli_error("%s", err);

    DbEval *ev;
    if (db_evals(db, r->id, &ev, &n, err)) return cli_error("%s", err);
    if (!(f = create_in(dir, "evals.csv", path, sizeof path, err))) { free(ev); return cli_error("%s", err); }
    fputs("step,model,dataset,nll,ppl\n", f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%d,", ev[i].step);
        csv_str(f, ev[i].model);
        fputc(',', f);
        csv_str(f, ev[i].dataset);
        fputc(',', f);
        csv_num(f, ev[i].nll);
        fputc(',', f);
        csv_num(f, ev[i].ppl);
        fputc('\n', f);
    }
    free(ev);
    if (close_checked(f, path, err)) return cli_error("%s", err);

    DbCheckpoint *ck;
    if (db_checkpoints(db, r->id, &ck, &n, err)) return cli_error("%s", err);
    if (!(f = create_in(dir, "checkpoints.csv", path, sizeof path, err))) { db_checkpoints_free(ck, n); return cli_error("%s", err); }
    fputs("step,path,sha256,time\n", f);
    for (int i = 0; i < n; i++) {
        char tb[32];
        fprintf(f, "%d,", ck[i].step);
        csv_str(f, ck[i].path);
        fprintf(f, ",%s,%s\n", ck[i].sha256, utc_time(ck[i].time, tb, sizeof tb));
    }
    db_checkpoints_free(ck, n);
    if (close_checked(f, path, err)) return cli_error("%s", err);

    int copied = 0;
    if (r->student_path && *r->student_path) {
        if (access(r->student_path, R_OK) == 0) {
            snprintf(path, sizeof path, "%s/%s", dir, base_name(r->student_path));
            if (copy_file(r->student_path, path, err)) return cli_error("%s", err);
            copied = 1;
        } else {
            fprintf(stderr, "onebit-tui runs: warning: student file %s: %s (not copied)\n", r->student_path,
                    strerror(errno));
        }
    }
    printf("exported run %lld to %s: run.json metrics.csv evals.csv checkpoints.csv%s%s\n", (long long)r->id, dir,
           copied ? " " : "", copied ? base_name(r->student_path) : "");
    return EXIT_OK;
}

/* ---- chats: the transcripts the Chat screen kept -------------------------------------- */

static int cmd_chats(Db *db, const DbRun *r, int json)
{
    char err[OB_ERRLEN];
    DbChat *c;
    int n;
    if (db_chat_list(db, r->id, 0, -1, &c, &n, err)) return cli_error("%s", err);
    if (json) fputc('[', stdout);
    for (int i = 0; i < n; i++) {
        if (json) {
            char tb[32];
            fprintf(stdout, "%s{\"session\":%lld,\"role\":", i ? "," : "", (long long)c[i].session);
            json_str(stdout, c[i].role);
            fputs(",\"text\":", stdout);
            json_str(stdout, c[i].text);
            fprintf(stdout, ",\"time\":\"%s\"}", utc_time(c[i].time, tb, sizeof tb));
            continue;
        }
        if (i == 0 || c[i].session != c[i - 1].session) {
            char tb[32];
            printf("%s-- conversation %lld, %s\n", i ? "\n" : "", (long long)c[i].session, local_time(c[i].time, tb, sizeof tb));
        }
        printf("%-9s %s\n", c[i].role, c[i].text);
    }
    if (json) fputs("]\n", stdout);
    else if (n == 0) printf("no chats kept with run %lld's student\n", (long long)r->id);
    db_chat_list_free(c, n);
    return EXIT_OK;
}

/* ---- dispatch ------------------------------------------------------------------------ */


/* ---- compare -------------------------------------------------------------------- */

/* what compare shows of one run */
typedef struct {
    double heldout_ppl, ts_ppl, ts_mc_acc, wall; /* NAN: not recorded */
} RunFigures;

static int has_ci(const char *hay, const char *needle) { return strcasestr(hay, needle) != NULL; }

static int run_figures(Db *db, const DbRun *r, RunFigures *f, char *err)
{
    f->heldout_ppl = f->ts_ppl = f->ts_mc_acc = f->wall = NAN;
    DbEval *ev;
    DbMetric *m;
    DbTaskResult *tr;
    int ne, nm, nt;
    if (db_evals(db, r->id, &ev, &ne, err)) return -1;
    /* in step order: the last full student evaluation of each kind wins */
    for (int i = 0; i < ne; i++) {
        if (strcmp(ev[i].model, "student") && *ev[i].model) continue;
        if (strstr(ev[i].dataset, " held-out")) f->heldout_ppl = ev[i].ppl;
        else if (has_ci(ev[i].dataset, "tinystories")) f->ts_ppl = ev[i].ppl; /* eval --text --db */
    }
    free(ev);
    if (db_metrics(db, r->id, &m, &nm, err)) return -1;
    if (nm > 0) f->wall = m[nm - 1].wall;
    free(m);
    if (db_task_results(db, r->id, 0, &tr, &nt, err)) return -1;
    for (int i = 0; i < nt; i++) /* newest first */
        if (!strcmp(tr[i].model, "student") && !strcmp(tr[i].task, "tinystories_mc")) {
            f->ts_mc_acc = tr[i].acc;
            break;
        }
    db_task_results_free(tr, nt);
    return 0;
}

/* a recorded option of run r as text; the row's default when absent */
static void run_option(Db *db, const DbRun *r, const OptSpec *o, char *buf, size_t n)
{
    char err[OB_ERRLEN];
    if (db_run_hparam(db, r->id, o->name, buf, n, err) != 1) snprintf(buf, n, "%s", o->def ? o->def : "-");
}

/* the recorded train options whose values differ between the runs (each
 * run's own out and ckpt aside) */
static int varied_options(Db *db, const DbRun *runs, int n, const OptSpec **out)
{
    int k = 0;
    for (const OptSpec *o = session_opts; o->name; o++) {
        if (!(o->flags & OPT_STORE) || !strcmp(o->name, "out") || !strcmp(o->name, "ckpt")) continue;
        char first[256], v[256];
        run_option(db, &runs[0], o, first, sizeof first);
        for (int i = 1; i < n; i++) {
            run_option(db, &runs[i], o, v, sizeof v);
            if (strcmp(v, first)) { out[k++] = o; break; }
        }
    }
    return k;
}

static void fmt_fig(char *buf, size_t n, const char *fmt, double v)
{
    if (isfinite(v)) snprintf(buf, n, fmt, v);
    else snprintf(buf, n, "-");
}

static int cmd_compare(Db *db, DbRun *runs, int n, int json)
{
    char err[OB_ERRLEN];
    const OptSpec *var[128];
    int nv = varied_options(db, runs, n, var);
    RunFigures *fig = ob_calloc((size_t)n, sizeof *fig);
    for (int i = 0; i < n; i++)
        if (run_figures(db, &runs[i], &fig[i], err)) { free(fig); return cli_error("%s", err); }
    char v[256];
    if (json) {
        fputc('[', stdout);
        for (int i = 0; i < n; i++) {
            fprintf(stdout, "%s{\"id\":%lld", i ? "," : "", (long long)runs[i].id);
            json_str_field(stdout, "name", runs[i].name);
            json_str_field(stdout, "status", run_status_name(runs[i].status));
            fputs(",\"options\":{", stdout);
            for (int k = 0; k < nv; k++) {
                run_option(db, &runs[i], var[k], v, sizeof v);
                fprintf(stdout, "%s\"%s\":", k ? "," : "", var[k]->name);
                json_str(stdout, v);
            }
            fprintf(stdout, "},\"steps\":%d", runs[i].steps_done);
            static const char *const keys[] = {"heldout_ppl", "tinystories_ppl", "tinystories_mc_acc", "wall"};
            json_num_fields(stdout, keys, (const double[]){fig[i].heldout_ppl, fig[i].ts_ppl, fig[i].ts_mc_acc, fig[i].wall}, 4);
            fputc('}', stdout);
        }
        fputs("]\n", stdout);
        free(fig);
        return EXIT_OK;
    }
    int wn = 3;
    for (int i = 0; i < n; i++)
        if ((int)strlen(runs[i].name) > wn) wn = (int)strlen(runs[i].name);
    int w[128];
    for (int k = 0; k < nv; k++) {
        w[k] = (int)strlen(var[k]->name);
        for (int i = 0; i < n; i++) {
            run_option(db, &runs[i], var[k], v, sizeof v);
            if ((int)strlen(v) > w[k]) w[k] = (int)strlen(v);
        }
    }
    printf("%-*s", wn, "RUN");
    for (int k = 0; k < nv; k++) printf("  %-*s", w[k], var[k]->name);
    printf("  %-11s %6s %12s %15s %9s %8s\n", "STATUS", "STEPS", "HELD-OUT PPL", "TINYSTORIES PPL", "TS_MC ACC", "WALL");
    for (int i = 0; i < n; i++) {
        printf("%-*s", wn, runs[i].name);
        for (int k = 0; k < nv; k++) {
            run_option(db, &runs[i], var[k], v, sizeof v);
            printf("  %-*s", w[k], v);
        }
        char a[32], b[32], c[32], d[32];
        fmt_fig(a, sizeof a, "%.3f", fig[i].heldout_ppl);
        fmt_fig(b, sizeof b, "%.3f", fig[i].ts_ppl);
        fmt_fig(c, sizeof c, "%.4f", fig[i].ts_mc_acc);
        if (isfinite(fig[i].wall)) ob_fmt_duration(d, sizeof d, fig[i].wall);
        else snprintf(d, sizeof d, "-");
        printf("  %-11s %6d %12s %15s %9s %8s\n", run_status_name(runs[i].status), runs[i].steps_done, a, b, c, d);
    }
    free(fig);
    return EXIT_OK;
}

/* the runs named on the command line, then those of sweep (id order) */
static int compare_runs(Db *db, char **names, int nn, const char *sweep, DbRun **out, int *n, char *err)
{
    DbRun *all = NULL;
    int na = 0, cap = nn;
    if (sweep && db_run_list(db, &all, &na, err)) return -1;
    cap += na;
    DbRun *r = ob_calloc((size_t)(cap > 0 ? cap : 1), sizeof *r);
    int k = 0;
    for (int i = 0; i < nn; i++, k++)
        if (db_run_find(db, names[i], &r[k], err)) { db_run_list_free(r, k); db_run_list_free(all, na); return -1; }
    for (int i = na - 1; i >= 0; i--) /* the list is newest first */
        if (all[i].sweep && !strcmp(all[i].sweep, sweep)) {
            r[k++] = all[i];
            memset(&all[i], 0, sizeof all[i]); /* moved */
        }
    db_run_list_free(all, na);
    if (sweep && k == nn) {
        ob_seterr(err, "%s: no runs of sweep '%s' (train --sweep queues them)", db_path(db), sweep);
        db_run_list_free(r, k);
        return -1;
    }
    *out = r;
    *n = k;
    return 0;
}

int cli_runs(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, 0, 'd'}, {"json", no_argument, 0, 'j'},
                                         {"csv", no_argument, 0, 'c'},       {"help", no_argument, 0, 'h'},
                                         {"sweep", required_argument, 0, 's'}, {0, 0, 0, 0}};
    const char *dbpath = NULL, *sweep = NULL;
    int json = 0, csv = 0, ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': dbpath = optarg; break;
        case 'j': json = 1; break;
        case 'c': csv = 1; break;
        case 's': sweep = optarg; break;
        case 'h': help(); return EXIT_OK;
        case ':': return cli_usage_error("runs", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("runs", "unknown option '%s'", argv[optind - 1]);
        }
    }
    char **pos = argv + optind;
    int npos = argc - optind;
    const char *sub = npos > 0 ? pos[0] : "list";
    int want; /* positional arguments after the subcommand */
    if (!strcmp(sub, "list")) want = 0;
    else if (!strcmp(sub, "show") || !strcmp(sub, "curves") || !strcmp(sub, "chats") || !strcmp(sub, "delete")) want = 1;
    else if (!strcmp(sub, "export")) want = 2;
    else if (!strcmp(sub, "compare")) want = -1;
    else return cli_usage_error("runs", "unknown subcommand '%s' (list, show, curves, compare, chats, delete, export)", sub);
    int have = npos > 0 ? npos - 1 : 0;
    if (sweep && want != -1) return cli_usage_error("runs", "--sweep goes with 'compare'");
    if (want == -1 && have == 0 && !sweep) return cli_usage_error("runs", "'compare' needs RUNs or --sweep NAME");
    if (want == -1) want = have;
    if (have < want)
        return cli_usage_error("runs", "'%s' needs %s", sub, want == 1 ? "a RUN (id or name)" : "a RUN and a DIR");
    if (have > want) return cli_usage_error("runs", "unexpected argument '%s'", pos[1 + want]);
    if (csv && strcmp(sub, "curves")) return cli_usage_error("runs", "--csv goes with 'curves'");
    if (csv && json) return cli_usage_error("runs", "--csv and --json exclude each other");
    if (json && (!strcmp(sub, "delete") || !strcmp(sub, "export")))
        return cli_usage_error("runs", "--json does not apply to '%s'", sub);

    char err[OB_ERRLEN];
    Db *db;
    int rc;
    if (!strcmp(sub, "delete")) {
        if (!(db = db_open(dbpath, 0, err))) return cli_error("%s", err);
    } else {
        int missing;
        if (!(db = open_for_read(dbpath, &missing, err))) {
            if (missing && !strcmp(sub, "list")) { /* nothing recorded yet: an empty list */
                if (json) printf("[]\n");
                else printf("no runs recorded yet (%s)\n", err);
                return EXIT_OK;
            }
            return cli_error("%s", err);
        }
    }
    if (!strcmp(sub, "list")) {
        rc = cmd_list(db, json);
        db_close(db);
        return rc;
    }
    if (!strcmp(sub, "compare")) {
        DbRun *runs;
        int n;
        if (compare_runs(db, pos + 1, have, sweep, &runs, &n, err)) rc = cli_error("%s", err);
        else {
            rc = cmd_compare(db, runs, n, json);
            db_run_list_free(runs, n);
        }
        db_close(db);
        return rc;
    }
    DbRun r;
    if (db_run_find(db, pos[1], &r, err)) {
        db_close(db);
        return cli_error("%s", err);
    }
    if (!strcmp(sub, "show")) rc = cmd_show(db, &r, json);
    else if (!strcmp(sub, "curves")) rc = cmd_curves(db, &r, json, csv);
    else if (!strcmp(sub, "chats")) rc = cmd_chats(db, &r, json);
    else if (!strcmp(sub, "export")) rc = cmd_export(db, &r, pos[2]);
    else {
        if (r.status == RUN_RUNNING || r.status == RUN_PAUSED) {
            rc = cli_error("%s: run %lld '%s' is %s (process %lld); stop it before deleting", db_path(db), (long long)r.id,
                           r.name, run_status_name(r.status), (long long)r.owner_pid);
        } else if (db_run_delete(db, r.id, err)) {
            rc = cli_error("%s", err);
        } else {
            printf("deleted run %lld '%s' (checkpoint and student files on disk are kept)\n", (long long)r.id, r.name);
            rc = EXIT_OK;
        }
    }
    db_run_free(&r);
    db_close(db);
    return rc;
}
