/* tests/test_opt.c -- option tables (src/base/opt.h) and the train options
 * (session_opts, src/train/session.h): defaults, command-line parsing with
 * bounds, switches and one-letter options, --help, the run store's JSON written and read back (also with
 * more than 32 stored options), stored values out of bounds refused.
 * Single-threaded. */
#include <cJSON.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "base/common.h"
#include "base/opt.h"
#include "onebit/svid.h"
#include "train/session.h"
#include "test.h"

typedef struct {
    int n;
    long big;
    uint64_t seed;
    float x;
    char *path, *label;
    int mode;
} Toy;

static const OptSpec toy[] = {
    {"num", OPT_INT, offsetof(Toy, n), OPT_STORE | OPT_REQUIRED, 1, 100, NULL, NULL, "N", "how many", "Counts"},
    {"big", OPT_LONG, offsetof(Toy, big), OPT_STORE, 0, 1e12, "-1", NULL, "B", "a big one\nover two lines", NULL},
    {"seed", OPT_U64, offsetof(Toy, seed), OPT_STORE, 0, 9.2e18, "7", NULL, "S", "seed (7)", NULL},
    {"rate", OPT_FLOAT, offsetof(Toy, x), OPT_STORE | OPT_LO_OPEN, 0, 10, "0.002", NULL, "X", "a rate", "Numbers"},
    {"path", OPT_STR, offsetof(Toy, path), OPT_STORE | OPT_PATH, 0, 0, NULL, NULL, "FILE", "a file", NULL},
    {"label", OPT_STR, offsetof(Toy, label), OPT_STORE, 0, 0, "hi", NULL, "L", "a label", NULL},
    {"mode", OPT_CHOICE, offsetof(Toy, mode), OPT_STORE, 0, 0, "b", "a|b|c", "a|b|c", "the mode", NULL},
    {"mode", OPT_NOTE, 0, 0, 0, 0, NULL, NULL, "c", "c is the third", NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

static int parse(const OptSpec *rows, void *obj, char *err, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, err);
    argv[argc++] = "cmd";
    for (char *a; argc < 31 && (a = va_arg(ap, char *));) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return opt_parse_argv(rows, obj, argc, argv, err);
}

/* a getter over JSON text (cJSON): numbers as %.17g, strings as they are */
static int json_get(void *ud, const char *key, char *buf, size_t n, char *err)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive((cJSON *)ud, key);
    if (!o) return 0;
    if (cJSON_IsString(o)) snprintf(buf, n, "%s", o->valuestring);
    else if (cJSON_IsNumber(o)) snprintf(buf, n, "%.17g", o->valuedouble);
    else { ob_seterr(err, "%s: not a number or string", key); return -1; }
    return 1;
}

static int from_json(const OptSpec *rows, void *obj, const char *json, char *err)
{
    cJSON *j = cJSON_Parse(json);
    if (!j) { ob_seterr(err, "not JSON: %s", json); return -1; }
    int rc = opt_load(rows, obj, json_get, j, err);
    cJSON_Delete(j);
    return rc;
}

static void toy_table(void)
{
    char err[OB_ERRLEN], buf[64];
    Toy t;
    opt_defaults(toy, &t);
    CHECK(t.n == 0 && !opt_given(&toy[0], &t), "n not given: %d", t.n);
    CHECK(t.big == -1 && !opt_given(&toy[1], &t), "big not given: %ld", t.big);
    CHECK(t.seed == 7 && t.x == 0.002f && t.path == NULL && !strcmp(t.label, "hi") && t.mode == 1, "defaults");
    CHECK(opt_check_required(toy, &t, err) == -1 && !strcmp(err, "--num N is required"), "required: %s", err);
    opt_format(&toy[3], &t, buf, sizeof buf);
    CHECK(!strcmp(buf, "0.002"), "shortest float text: %s", buf);

    /* the command line */
    CHECK(parse(toy, &t, err, "--num", "5", "--rate", "1.5", "--path", "f.txt", "--mode", "c", "--seed", "123456789012",
                NULL) == 0, "parse: %s", err);
    CHECK(t.n == 5 && t.x == 1.5f && !strcmp(t.path, "f.txt") && t.mode == 2 && t.seed == 123456789012ull, "values");
    CHECK(parse(toy, &t, err, "--num", "0", NULL) == -1 && !strcmp(err, "--num needs an integer from 1 to 100, not '0'"),
          "int below: %s", err);
    CHECK(parse(toy, &t, err, "--num", "101", NULL) == -1 && strstr(err, "not '101'"), "int above: %s", err);
    CHECK(parse(toy, &t, err, "--num", "2x", NULL) == -1, "int junk");
    CHECK(parse(toy, &t, err, "--rate", "0", NULL) == -1 && !strcmp(err, "--rate needs a number from 0 to 10, not '0'"),
          "open lower bound: %s", err);
    CHECK(parse(toy, &t, err, "--rate", "nan", NULL) == -1, "nan refused");
    CHECK(parse(toy, &t, err, "--mode", "d", NULL) == -1 && !strcmp(err, "--mode must be a, b or c, not 'd'"),
          "choice: %s", err);
    CHECK(parse(toy, &t, err, "--frob", "1", NULL) == -1 && !strcmp(err, "unknown option '--frob'"), "unknown: %s", err);
    CHECK(parse(toy, &t, err, "--num", NULL) == -1 && !strcmp(err, "option '--num' needs a value"), "no value: %s", err);
    CHECK(parse(toy, &t, err, "--num", "3", "extra", NULL) == -1 && !strcmp(err, "unexpected argument 'extra'"),
          "stray: %s", err);
    CHECK(parse(toy, &t, err, "--help", NULL) == 1, "--help");
    CHECK(t.n == 3, "the last good value stays: %d", t.n);

    /* --help */
    char *h = NULL;
    size_t hn = 0;
    FILE *f = open_memstream(&h, &hn);
    opt_help(f, toy);
    fclose(f);
    CHECK(!strcmp(h, "Counts:\n"
                     "  --num N              how many\n"
                     "  --big B              a big one\n"
                     "                       over two lines\n"
                     "  --seed S             seed (7)\n"
                     "Numbers:\n"
                     "  --rate X             a rate\n"
                     "  --path FILE          a file\n"
                     "  --label L            a label\n"
                     "  --mode a|b|c         the mode\n"
                     "  --mode c             c is the third\n"),
          "help:\n%s", h);
    free(h);

    /* JSON: what is given, paths absolute, read back equal */
    char *j = opt_to_json(toy, &t);
    char cwd[4096], want[4200];
    CHECK(getcwd(cwd, sizeof cwd) != NULL, "cwd");
    snprintf(want, sizeof want, "{\"num\":3,\"seed\":123456789012,\"rate\":1.5,\"path\":\"%s/f.txt\",\"label\":\"hi\",\"mode\":\"c\"}",
             cwd);
    CHECK(!strcmp(j, want), "json: %s", j);
    Toy u;
    opt_defaults(toy, &u);
    CHECK(from_json(toy, &u, j, err) == 0, "load: %s", err);
    CHECK(u.n == 3 && u.big == -1 && u.seed == 123456789012ull && u.x == 1.5f && !strcmp(u.path + strlen(cwd), "/f.txt") &&
              !strcmp(u.label, "hi") && u.mode == 2,
          "round trip");
    free(j);

    /* stored values are checked as on the command line */
    opt_free(toy, &u);
    opt_defaults(toy, &u);
    CHECK(from_json(toy, &u, "{\"num\":500}", err) == -1 && !strcmp(err, "stored option 'num' needs an integer from 1 to 100, not '500'"),
          "stored out of bounds: %s", err);
    CHECK(from_json(toy, &u, "{\"rate\":\"abc\"}", err) == -1 && strstr(err, "stored option 'rate'"), "stored junk: %s", err);
    CHECK(from_json(toy, &u, "{\"num\":2.5}", err) == -1 && strstr(err, "'num'"), "stored fraction: %s", err);
    CHECK(from_json(toy, &u, "{\"mode\":\"z\"}", err) == -1 && strstr(err, "must be a, b or c"), "stored choice: %s", err);
    CHECK(from_json(toy, &u, "{\"num\":\"\"}", err) == -1 && strstr(err, "'num' is empty"), "stored empty: %s", err);
    CHECK(from_json(toy, &u, "{\"other\":1,\"num\":4}", err) == 0 && u.n == 4, "unknown keys are ignored: %s", err);

    /* a deep copy */
    Toy c;
    opt_copy(toy, &c, &t);
    CHECK(c.path != t.path && !strcmp(c.path, t.path) && c.n == t.n && c.mode == t.mode, "copy");
    opt_free(toy, &c);
    CHECK(c.path == NULL && c.label == NULL, "free leaves NULLs");
    opt_free(toy, &u);
    opt_free(toy, &t);
}

/* switches and one-letter options: -n N, --on/--off on one field */
typedef struct {
    int n, on;
    char *out;
} Sw;

static const OptSpec sw[] = {
    {"n", OPT_INT, offsetof(Sw, n), 0, 0, 50, "7", NULL, "N", "count", NULL},
    {"out", OPT_STR, offsetof(Sw, out), 0, 0, 0, NULL, NULL, "F", "output", NULL},
    {"o", OPT_STR, offsetof(Sw, out), OPT_NOHELP, 0, 0, NULL, NULL, "F", "the same", NULL},
    {"on", OPT_FLAG, offsetof(Sw, on), 0, 0, 1, NULL, NULL, NULL, "switch on", NULL},
    {"off", OPT_FLAG, offsetof(Sw, on), 0, 0, 0, NULL, NULL, NULL, "switch off", NULL},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

static void switches(void)
{
    char err[OB_ERRLEN];
    Sw s;
    opt_defaults(sw, &s);
    CHECK(s.n == 7 && s.on == 0 && !s.out, "defaults");
    CHECK(parse(sw, &s, err, "-n", "3", "--on", "-o", "x", NULL) == 0 && s.n == 3 && s.on == 1 && !strcmp(s.out, "x"),
          "-n, --on, -o: %s", err);
    CHECK(parse(sw, &s, err, "--off", "--out", "y", NULL) == 0 && s.on == 0 && !strcmp(s.out, "y"), "--off, --out: %s", err);
    CHECK(parse(sw, &s, err, "-n", "99", NULL) == -1 && !strcmp(err, "-n needs an integer from 0 to 50, not '99'"), "-n 99: %s",
          err);
    CHECK(parse(sw, &s, err, "--n", "3", NULL) == -1 && strstr(err, "unknown option"), "no --n: %s", err);
    CHECK(parse(sw, &s, err, "--on=1", NULL) == -1, "a switch takes no value: %s", err);
    CHECK(parse(sw, &s, err, "-n", "", NULL) == -1 && !strcmp(err, "option '-n' needs a value") && s.n == 3,
          "an empty number on the command line: %s", err);
    char *h = NULL;
    size_t hn = 0;
    FILE *f = open_memstream(&h, &hn);
    opt_help_width(f, sw, 8);
    fclose(f);
    CHECK(!strcmp(h, "  -n N     count\n  --out F  output\n  --on     switch on\n  --off    switch off\n"), "help:\n%s", h);
    free(h);
    opt_free(sw, &s);
}

/* 40 stored options: nothing assumes a limit on their number */
#define NMANY 40
typedef struct {
    long v[NMANY];
} Many;

static void many_rows(void)
{
    static OptSpec rows[NMANY + 1];
    static char names[NMANY][8];
    for (int i = 0; i < NMANY; i++) {
        snprintf(names[i], sizeof names[i], "k%d", i);
        rows[i] = (OptSpec){names[i], OPT_LONG, offsetof(Many, v) + sizeof(long) * (size_t)i, OPT_STORE, 0, 1e9, "-1",
                            NULL, "V", "a value", NULL};
    }
    Many a, b;
    opt_defaults(rows, &a);
    for (int i = 0; i < NMANY; i++) a.v[i] = 1000 + i;
    char *j = opt_to_json(rows, &a);
    opt_defaults(rows, &b);
    char err[OB_ERRLEN];
    CHECK(from_json(rows, &b, j, err) == 0, "load 40: %s", err);
    int same = 0;
    for (int i = 0; i < NMANY; i++) same += b.v[i] == 1000 + i;
    CHECK(same == NMANY, "all %d stored options come back: %d", NMANY, same);
    free(j);
}

static void train_options(void)
{
    char err[OB_ERRLEN];
    SessionOpts o;
    session_opts_init(&o);
    TrainConfig d;
    trainer_config_default(&d);
    const TrainConfig *c = &o.cfg;
    CHECK(c->steps == d.steps && c->seq_len == d.seq_len && c->batch == d.batch && c->accum == d.accum && c->lr == d.lr &&
              c->lr_min == d.lr_min && c->warmup == d.warmup && c->alpha == d.alpha && c->kl_scale == d.kl_scale &&
              c->beta1 == d.beta1 && c->beta2 == d.beta2 && c->eps == d.eps && c->wd == d.wd && c->clip == d.clip &&
              c->init == d.init && c->eval_every == d.eval_every && c->ckpt_every == d.ckpt_every &&
              c->log_every == d.log_every && c->threads == d.threads && c->seed == d.seed && c->stop_after == d.stop_after &&
              c->max_eval_windows == d.max_eval_windows,
          "the table's defaults are trainer_config_default's");
    CHECK(o.data == NULL && o.self_generate == 0 && o.out == NULL, "no data, no student");
    CHECK(session_opts_check(&o, NULL, 1, err) == -1 && strstr(err, "--data FILE or --self-generate"), "no data: %s", err);

    char *argv[] = {"train", "--data", "d.txt", "--split", "<|e|>", "--steps", "60", "--seq-len", "64", "--batch", "4",
                    "--lr", "1e-3", "--warmup", "5", "--init", "svd", "--seed", "9", "--out", "s.onebit", "--db", "r.db",
                    NULL};
    CHECK(opt_parse_argv(session_opts, &o, 23, argv, err) == 0, "parse: %s", err);
    CHECK(c->steps == 60 && c->seq_len == 64 && c->batch == 4 && c->lr == 1e-3f && c->warmup == 5 &&
              c->init == SVID_SVD && c->seed == 9 && !strcmp(o.out, "s.onebit") && !strcmp(o.db, "r.db"),
          "train values");
    CHECK(session_opts_check(&o, NULL, 1, err) == 0, "check: %s", err);
    char *bad[] = {"train", "--batch", "0"};
    CHECK(opt_parse_argv(session_opts, &o, 3, bad, err) == -1 &&
              !strcmp(err, "--batch needs an integer from 1 to 65536, not '0'"),
          "--batch 0: %s", err);
    char *badlr[] = {"train", "--lr", "0"};
    CHECK(opt_parse_argv(session_opts, &o, 3, badlr, err) == -1 && strstr(err, "--lr needs a number > 0"), "--lr 0: %s",
          err);

    /* the stored record: the run's options, not where it is kept */
    char *j = opt_to_json(session_opts, &o);
    CHECK(strstr(j, "\"steps\":60,\"seq-len\":64,\"batch\":4,") && strstr(j, "\"lr\":0.001,") &&
              strstr(j, "\"init\":\"svd\"") && strstr(j, "\"beta2\":0.98") && !strstr(j, "\"lr-min\"") &&
              !strstr(j, "\"db\"") && !strstr(j, "\"resume\"") && !strstr(j, "\"stop-after\""),
          "train JSON: %s", j);
    SessionOpts r;
    session_opts_init(&r);
    CHECK(from_json(session_opts, &r, j, err) == 0, "load: %s", err);
    CHECK(r.cfg.steps == 60 && r.cfg.lr == 1e-3f && r.cfg.init == SVID_SVD && r.cfg.warmup == 5 && r.cfg.lr_min < 0 &&
              r.data[0] == '/' && !strcmp(r.split, "<|e|>") && r.db == NULL,
          "train round trip");
    session_opts_free(&r);
    session_opts_init(&r);
    CHECK(from_json(session_opts, &r, "{\"steps\":10,\"seq-len\":8,\"batch\":100000}", err) == -1 &&
              !strcmp(err, "stored option 'batch' needs an integer from 1 to 65536, not '100000'"),
          "stored batch out of bounds: %s", err);
    session_opts_free(&r);
    free(j);
    session_opts_free(&o);
}

int main(void)
{
    toy_table();
    switches();
    many_rows();
    train_options();
    return test_done("test_opt");
}
