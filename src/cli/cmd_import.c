/* src/cli/cmd_import.c -- `onebit-tui import --from DIR`: a run trained
 * elsewhere (the OneBit authors' GPU trainer: a bitllama checkpoint
 * directory, training or inference layout, with the Hugging Face Trainer's
 * trainer_state.json) becomes a .onebit (as `convert` writes it) and a
 * finished run in the run store (db/train_db.h: train_db_import), with its
 * training logs as metrics and its eval_loss rows as evaluations, so that
 * `runs`, the workbench, `eval` and `chat` see it beside local runs. The
 * options are one table (import_opts). Main thread only. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "base/common.h"
#include "base/file.h"
#include "db/train_db.h"
#include "format/loader.h"
#include "format/trainer_state.h"
#include "onebit/student.h"

typedef struct {
    char *from, *teacher, *tokenizer, *name, *out, *db;
} ImportOpts;

#define F(field) offsetof(ImportOpts, field)
static const OptSpec import_opts[] = {
    {"from", OPT_STR, F(from), OPT_NOHELP | OPT_REQUIRED, 0, 0, NULL, NULL, "DIR", "the trained checkpoint directory", NULL},
    {"teacher", OPT_STR, F(teacher), 0, 0, 0, NULL, NULL, "M", "the teacher it was distilled from (recorded with the run)", NULL},
    {"tokenizer", OPT_STR, F(tokenizer), 0, 0, 0, NULL, NULL, "T", "a tokenizer file instead of DIR's", NULL},
    {"name", OPT_STR, F(name), 0, 0, 0, NULL, NULL, "NAME", "the run's name (default: DIR's name)", NULL},
    {"out", OPT_STR, F(out), 0, 0, 0, NULL, NULL, "S.onebit", "the student file (default: DIR.onebit)", NULL},
    {"o", OPT_STR, F(out), OPT_NOHELP, 0, 0, NULL, NULL, "S.onebit", "the same as --out", NULL},
    {"db", OPT_STR, F(db), 0, 0, 0, NULL, NULL, "DB", "the run store (default: as `runs`)", NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
#undef F

typedef struct {
    const ImportOpts *o;
    const char *out;            /* the .onebit */
    const char *name;           /* the run's */
    const TState *ts;           /* NULL: none */
    Model *m;
    Tokenizer *t;
    int wrote;
} ImportCtx;

static int write_onebit(void *ud, char *err)
{
    ImportCtx *c = ud;
    int nlin = c->m->cfg.n_layers * LIN_PER_LAYER, rc = -1;
    StudentLinearSrc *lin = ob_calloc((size_t)nlin, sizeof *lin);
    if (student_sources(c->m, lin, err) == 0) {
        ObBuf meta = {0};
        ob_buf_printf(&meta, "{\"kind\":\"import\",\"format\":\"bitllama\",\"source\":\"");
        ob_buf_json_string(&meta, c->o->from);
        ob_buf_printf(&meta, "\",\"created\":%lld}", (long long)time(NULL));
        rc = student_write(c->out, c->m, c->t, lin, meta.s, err);
        free(meta.s);
        c->wrote = rc == 0;
    }
    free(lin);
    return rc;
}

static int import_student(Model *m, Tokenizer *t, const void *ctx)
{
    ImportCtx *c = (ImportCtx *)ctx;
    const ImportOpts *o = c->o;
    char err[OB_ERRLEN], sha[65];
    c->m = m;
    c->t = t;
    char *tpath = NULL;
    if (o->teacher) { /* fingerprinted as train records it */
        tpath = open_resolve_teacher(o->teacher, err);
        if (!tpath || loader_fingerprint(tpath, sha, NULL, err)) { free(tpath); return cli_error("%s", err); }
    }
    TrainImport im = {c->name, o->from, c->out, tpath, tpath ? sha : NULL, &m->cfg, c->ts};
    TrainImportCounts n = {0, 0};
    int64_t run = train_db_import(o->db, &im, write_onebit, c, &n, err);
    free(tpath);
    if (run < 0) {
        if (c->wrote) unlink(c->out);
        return cli_error("%s", err);
    }
    printf("imported %s as run %lld '%s': %d metrics, %d evaluations; student %s\n", o->from, (long long)run, c->name, n.metrics,
           n.evals, c->out);
    return EXIT_OK;
}

static int import_run(const void *p)
{
    const ImportOpts *o = p;
    char err[OB_ERRLEN];
    struct stat st;
    if (stat(o->from, &st)) return cli_error("%s: %s", o->from, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return cli_error("%s: not a directory (import takes the trained checkpoint's directory)", o->from);
    /* the logs first: a bad trainer_state.json stops before anything is loaded or written */
    char *tsp = file_join(o->from, "trainer_state.json");
    TState ts = {0};
    int have_ts = access(tsp, F_OK) == 0, rc;
    if (have_ts && tstate_load(tsp, &ts, err)) { free(tsp); return cli_error("%s", err); }
    if (!have_ts) fprintf(stderr, "note: %s has no trainer_state.json: importing the weights without metrics\n", o->from);
    free(tsp);
    /* defaults: DIR's name, DIR.onebit */
    char *dir = ob_strdup(o->from);
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--) dir[n - 1] = 0;
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    char *out = o->out ? ob_strdup(o->out) : NULL;
    if (!out && asprintf(&out, "%s.onebit", dir) < 0) abort();
    ImportCtx c = {o, out, o->name ? o->name : base, have_ts ? &ts : NULL, NULL, NULL, 0};
    if (access(out, F_OK) == 0) rc = cli_error("%s: exists (pass another --out, or remove it)", out);
    else rc = cli_with_student(o->from, o->tokenizer, import_student, &c);
    free(out);
    free(dir);
    tstate_free(&ts);
    return rc;
}

static void help(void)
{
    printf("Usage: onebit-tui import --from DIR [--teacher M] [--name NAME] [--out S.onebit]\n"
           "                         [--db DB] [--tokenizer T]\n"
           "\n"
           "Bring a run trained elsewhere -- the OneBit authors' trainer's output\n"
           "directory: a bitllama checkpoint (BitLlamaForCausalLM latent weights, taken as\n"
           "sign(W), or BitLlamaForCausalLMInf; teacher_model.* keys are ignored) and the\n"
           "Hugging Face Trainer's trainer_state.json -- into onebit-tui: the student as a\n"
           ".onebit, and a finished run in the run store with the training logs as its\n"
           "metrics (loss, lr, grad_norm, kl, mse) and eval_loss as held-out evaluations\n"
           "(dataset \"imported eval_loss\"). Without trainer_state.json the run has no\n"
           "metrics. Nothing is recorded when anything fails.\n"
           "\n");
    opt_help_width(stdout, import_opts, 13);
}

int cli_import(int argc, char **argv)
{
    ImportOpts o;
    return cli_run_opts("import", import_opts, &o, argc, argv, help, NULL, import_run);
}
