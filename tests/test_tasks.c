/* tests/test_tasks.c -- zero-shot task scoring (src/model/tasks.c): hostile
 * task files, the metrics on known scores, and with stories260K the scores
 * against an independent computation (the harness's tokenization redone
 * here, one full-sequence model_forward per choice, log-softmax summed by
 * hand), acc/acc_norm on a hand-made task whose answers are known, and
 * model_forward_kv against model_forward. */
#include <ctype.h>
#include <pthread.h>

#include "test.h"
#include "base/common.h"
#include "base/pool.h"
#include "model/model.h"
#include "model/tasks.h"
#include "onebit/student.h"
#include <unistd.h>

/* ---- model-free: parsing and metrics ------------------------------------ */

static void expect_parse_error(const char *name, const char *text, const char *want1, const char *want2)
{
    Task t;
    char err[OB_ERRLEN] = "";
    int rc = task_parse(&t, name, text, "f.jsonl", 0, err);
    CHECK(rc == -1, "%s parsed: %s", name, text);
    CHECK(strstr(err, want1) != NULL, "error '%s' lacks '%s'", err, want1);
    if (want2) CHECK(strstr(err, want2) != NULL, "error '%s' lacks '%s'", err, want2);
    if (rc == 0) task_free(&t);
}

static void test_parse(void)
{
    const char *ok = "{\"query\": \"Q\\n\", \"choices\": [\"a\", \"bé\"], \"gold\": 1}\n"
                     "\n  \n"
                     "{\"query\": \"\", \"choices\": [\"x\", \"y\", \"z\"], \"gold\": 0}\n";
    Task t;
    char err[OB_ERRLEN];
    CHECK(task_parse(&t, "arc_easy", ok, "f", 0, err) == 0, "%s", err);
    CHECK(t.n_items == 2 && t.format == TASK_MC, "%d items", t.n_items);
    if (t.n_items == 2) {
        CHECK(t.items[0].n_choices == 2 && t.items[0].gold == 1 && t.items[1].n_choices == 3, "choices");
        CHECK(strcmp(t.items[0].ctx[1], "Q\n") == 0 && strcmp(t.items[0].cont[1], " bé") == 0, "request");
        CHECK(t.items[0].norm_len[1] == 2, "characters, not bytes: %d", t.items[0].norm_len[1]);
        CHECK(t.items[0].line == 1 && t.items[1].line == 4, "lines %d %d", t.items[0].line, t.items[1].line);
    }
    task_free(&t);
    CHECK(task_parse(&t, "piqa", ok, "f", 1, err) == 0 && t.n_items == 1, "--limit 1");
    task_free(&t);
    const char *wg = "{\"context_options\": [\"A so B\", \"A so C\"], \"continuation\": \"went.\", \"gold\": 1}";
    CHECK(task_parse(&t, "winogrande", wg, "f", 0, err) == 0 && t.format == TASK_SCHEMA, "%s", err);
    if (t.n_items == 1) {
        CHECK(strcmp(t.items[0].ctx[1], "A so C") == 0 && strcmp(t.items[0].cont[0], " went.") == 0 &&
                  strcmp(t.items[0].cont[1], " went.") == 0 && t.items[0].norm_len[0] == 5,
              "schema requests");
    }
    task_free(&t);
    CHECK(task_format_of("boolq") == TASK_MC && task_format_of("winogrande") == TASK_SCHEMA &&
              task_format_of("hellaswag") == -1, "names");

    expect_parse_error("hellaswag", ok, "unknown task 'hellaswag'", "arc_challenge");
    expect_parse_error("arc_easy", "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n{\"query\": \"Q\",",
                       "f.jsonl:2:", "not valid JSON");
    expect_parse_error("arc_easy", "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 2}", "\"gold\" is 2", "0..1");
    expect_parse_error("arc_easy", "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": -1}", "\"gold\" is -1", NULL);
    expect_parse_error("arc_easy", "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 0.5}", "\"gold\" is 0.5", NULL);
    expect_parse_error("arc_easy", "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": \"0\"}", "\"gold\" is not a number", NULL);
    expect_parse_error("arc_easy", "{\"query\": \"Q\", \"choices\": [], \"gold\": 0}", "\"choices\" has 0 entries", NULL);
    expect_parse_error("arc_easy", "{\"query\": \"Q\", \"choices\": [\"a\"], \"gold\": 0}", "at least 2", NULL);
    expect_parse_error("arc_easy", "{\"query\": \"Q\", \"choices\": [\"a\", \"\"], \"gold\": 0}", "\"choices\"[1] is empty", NULL);
    expect_parse_error("arc_easy", "{\"query\": \"Q\", \"choices\": [\"a\", 3], \"gold\": 0}", "\"choices\"[1] is not a string", NULL);
    expect_parse_error("arc_easy", "{\"choices\": [\"a\", \"b\"], \"gold\": 0}", "\"query\" is missing", NULL);
    expect_parse_error("arc_easy", "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"]}", "\"gold\" is missing", NULL);
    expect_parse_error("arc_easy", "{\"query\": \"Q\", \"choices\": \"ab\", \"gold\": 0}", "\"choices\" is not an array", NULL);
    expect_parse_error("arc_easy", "[1, 2]", "not a JSON object", NULL);
    expect_parse_error("arc_easy", wg, "\"query\" is missing", "--task winogrande");
    expect_parse_error("winogrande", "{\"context_options\": [\"a\", \"b\"], \"gold\": 0}", "\"continuation\" is missing", NULL);
    expect_parse_error("winogrande", "{\"context_options\": [\"a\", \"b\"], \"continuation\": \"\", \"gold\": 0}",
                       "\"continuation\" is empty", NULL);
    expect_parse_error("boolq", "\n\n", "no items", NULL);
}

static void test_metrics(void)
{
    CHECK(isnan(task_stderr(0.5, 1)), "stderr of one item");
    CHECK_NEAR(task_stderr(0.25, 4), sqrt(0.25 * 0.75 / 3), 1e-15, "stderr");
    CHECK(task_utf8_len("aé€😀") == 4, "utf8 length %d", task_utf8_len("aé€😀"));
    /* three items with known scores */
    const char *text = "{\"query\": \"q\", \"choices\": [\"ab\", \"abcdefgh\"], \"gold\": 1}\n"
                       "{\"query\": \"q\", \"choices\": [\"a\", \"b\", \"c\"], \"gold\": 0}\n"
                       "{\"query\": \"q\", \"choices\": [\"éé\", \"abcd\"], \"gold\": 0}\n";
    Task t;
    char err[OB_ERRLEN];
    if (task_parse(&t, "arc_easy", text, "f", 0, err)) { CHECK(0, "%s", err); return; }
    TaskResult r = {0};
    int c0[] = {0, 2, 5, 7};
    /* item 1: raw picks 0 (-2 > -4), per character 1 (-4/8 > -2/2); item 2:
     * a tie, the first wins; item 3: raw picks 1 (-3 > -3.5), and per
     * character too (-3/4 > -3.5/2: "éé" is 2 characters, not 4 bytes) */
    double ll[] = {-2, -4, -1, -1, -1, -3.5, -3};
    int pred[3], predn[3];
    r.n = 3;
    r.choice0 = c0;
    r.ll = ll;
    r.pred = pred;
    r.pred_norm = predn;
    task_metrics(&t, &r);
    CHECK(pred[0] == 0 && predn[0] == 1, "item 1: %d %d", pred[0], predn[0]);
    CHECK(pred[1] == 0 && predn[1] == 0, "ties: %d %d", pred[1], predn[1]);
    CHECK(pred[2] == 1 && predn[2] == 1, "item 3: %d %d", pred[2], predn[2]);
    CHECK(r.correct == 1 && r.correct_norm == 2, "%d %d", r.correct, r.correct_norm);
    CHECK_NEAR(r.acc, 1.0 / 3, 1e-15, "acc");
    CHECK_NEAR(r.acc_norm, 2.0 / 3, 1e-15, "acc_norm");
    CHECK_NEAR(r.acc_stderr, sqrt(1.0 / 3 * 2.0 / 3 / 2), 1e-15, "acc_stderr");
    task_free(&t);
}

/* ---- with the model ------------------------------------------------------ */

typedef struct {
    pthread_t main;
    int calls, last, total, bad;
} Progress;

static void on_progress(void *user, int done, int total)
{
    Progress *p = user;
    if (!pthread_equal(pthread_self(), p->main) || done < p->last || done > total) p->bad++;
    p->calls++;
    p->last = done;
    p->total = total;
}

static void test_forward_kv(const Model *m)
{
    const ModelConfig *c = &m->cfg;
    int V = c->vocab_size, T = 40;
    int tok[40];
    for (int i = 0; i < T; i++) tok[i] = i == 0 ? 1 : 3 + (i * 37) % (V - 3);
    ModelActs a;
    ModelState s;
    model_acts_init(&a, c, c->seq_len);
    model_state_init(&s, c);
    float *ref = ob_malloc((size_t)T * V * sizeof(float)), *got = ob_malloc((size_t)T * V * sizeof(float));
    model_forward(m, &a, tok, T, ref, NULL);
    /* a prefix of 25, then 15 from its cache; and the whole from position 0 */
    model_forward_kv(m, &a, &s, tok, 25, 0, got, 25);
    model_forward_kv(m, &a, &s, tok + 25, 15, 25, got + (size_t)25 * V, 15);
    double md = 0;
    for (size_t i = 0; i < (size_t)T * V; i++) md = fmax(md, fabs(got[i] - ref[i]));
    CHECK(md < 1e-4, "prefix + continuation vs model_forward: max diff %g", md);
    model_forward_kv(m, &a, &s, tok, T, 0, got, 3); /* the last 3 rows only */
    md = 0;
    for (size_t i = 0; i < (size_t)3 * V; i++) md = fmax(md, fabs(got[i] - ref[(size_t)(T - 3) * V + i]));
    CHECK(md < 1e-4, "last rows: max diff %g", md);
    free(ref);
    free(got);
    model_acts_free(&a);
    model_state_free(&s);
}

/* tok_encode with BOS into *out; the token count */
static int encode(const Tokenizer *tok, const char *text, int **out)
{
    size_t n = 0;
    if (tok_encode(tok, text, 1, 0, out, &n)) return -1;
    return (int)n;
}

/* the score of one request, independently: the harness's _encode_pair,
 * (ctx + cont)[-(seq_len+1):] and one model_forward per window, log-softmax
 * by hand. A continuation longer than seq_len: its last seq_len tokens in
 * that window, the seq_len before them in the window ending with them, ... */
static double independent_score(const Model *m, const Tokenizer *tok, const char *ctx, const char *cont, int *ntrunc)
{
    size_t n = strlen(ctx), k = n;
    while (k && isspace((unsigned char)ctx[k - 1])) k--;
    char *c = ob_malloc(k + 1), *cc = ob_malloc(n + strlen(cont) + 1);
    memcpy(c, ctx, k);
    c[k] = 0;
    strcpy(cc, c);
    strcat(cc, ctx + k); /* the moved whitespace starts the continuation */
    strcat(cc, cont);
    int *ct, *wt, nc = encode(tok, c, &ct), nw = encode(tok, cc, &wt);
    int nk = nw - nc, S = m->cfg.seq_len, V = m->cfg.vocab_size;
    int *all = ob_malloc((size_t)(nc + nk) * sizeof(int));
    memcpy(all, ct, (size_t)nc * sizeof(int));
    memcpy(all + nc, wt + nc, (size_t)nk * sizeof(int));
    int len = nc + nk;
    *ntrunc = len > S + 1;
    double sum = 0;
    ModelActs a;
    model_acts_init(&a, &m->cfg, S);
    float *lg = ob_malloc((size_t)S * V * sizeof(float));
    for (int end = len; end > nc; end -= S) { /* targets [first, end) */
        int first = end - S > nc ? end - S : nc, start = end - (S + 1) > 0 ? end - (S + 1) : 0;
        int T = end - 1 - start; /* inputs all[start .. end-1) */
        model_forward(m, &a, all + start, T, lg, NULL);
        for (int j = first; j < end; j++) {
            const float *r = lg + (size_t)(j - 1 - start) * V;
            double z = 0;
            for (int v = 0; v < V; v++) z += exp((double)r[v]);
            sum += r[all[j]] - log(z);
        }
    }
    free(lg);
    model_acts_free(&a);
    free(all); free(ct); free(wt); free(c); free(cc);
    return sum;
}

static void check_against_independent(const Model *m, const Tokenizer *tok, const Task *t, const char *what,
                                      int *truncated)
{
    char err[OB_ERRLEN];
    TaskResult r1, r2;
    if (task_score(m, tok, t, 1, NULL, NULL, &r1, err)) { CHECK(0, "%s: %s", what, err); return; }
    if (task_score(m, tok, t, 2, NULL, NULL, &r2, err)) { CHECK(0, "%s: %s", what, err); task_result_free(&r1); return; }
    double md = 0, mt = 0;
    for (int i = 0; i < t->n_items; i++)
        for (int c = 0; c < t->items[i].n_choices; c++) {
            int tr;
            double want = independent_score(m, tok, t->items[i].ctx[c], t->items[i].cont[c], &tr);
            if (tr) (*truncated)++;
            double got = r1.ll[r1.choice0[i] + c];
            md = fmax(md, fabs(got - want) / fmax(1.0, fabs(want)));
            mt = fmax(mt, fabs(got - r2.ll[r2.choice0[i] + c]));
            CHECK(got < 0 && isfinite(got), "%s item %d choice %d: %g", what, i, c, got);
        }
    CHECK(md < 1e-4, "%s: scores vs the independent computation: max relative diff %g", what, md);
    CHECK(mt == 0, "%s: 1 vs 2 threads: max diff %g", what, mt);
    CHECK(r1.correct == r2.correct && r1.correct_norm == r2.correct_norm, "%s: threads change acc", what);
    task_result_free(&r1);
    task_result_free(&r2);
}

static void test_encode_pair(const Tokenizer *tok)
{
    int *ct, nc, *kt, nk, *a, *b;
    char err[OB_ERRLEN];
    CHECK(task_encode_pair(tok, "Question: what is it?\n", " A dog", &ct, &nc, &kt, &nk, err) == 0, "%s", err);
    int na = encode(tok, "Question: what is it?", &a), nb = encode(tok, "Question: what is it?\n A dog", &b);
    CHECK(nc == na && memcmp(ct, a, (size_t)na * sizeof(int)) == 0, "context: the stripped context's tokens");
    CHECK(nk == nb - na && nk > 0 && memcmp(kt, b + na, (size_t)nk * sizeof(int)) == 0,
          "continuation: the whole string's tokens after len(context)");
    CHECK(ct[0] == tok->bos_id, "BOS first");
    free(ct); free(kt); free(a); free(b);
}

int main(void)
{
    test_parse();
    test_metrics();
    const char *bin = shared_path("models/stories260K.bin"), *tokp = shared_path("models/tok512.bin");
    if (!bin || !tokp) {
        printf("SKIP: the model checks (models/stories260K.bin not found; set ONEBIT_SHARED)\n");
        return test_done("test_tasks");
    }
    Model m;
    Tokenizer tok;
    char err[OB_ERRLEN];
    if (model_load(&m, bin, err) || tok_load(&tok, tokp, 512, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    test_forward_kv(&m);
    test_encode_pair(&tok);

    /* a few items of each shared task file, when they are there */
    int truncated = 0;
    for (int i = 0; task_names[i]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "data/tasks/%s.jsonl", task_names[i]);
        const char *p = shared_path(rel);
        if (!p) { printf("note: %s not found, its items not checked\n", rel); continue; }
        Task t;
        if (task_load(&t, task_names[i], p, 3, err)) { CHECK(0, "%s", err); continue; }
        check_against_independent(&m, &tok, &t, task_names[i], &truncated);
        task_free(&t);
    }

    /* hand-made items of both formats, one context past the model's 512
     * tokens with choices of different lengths (truncated differently) */
    size_t cap = 80000;
    char *text = ob_malloc(cap), *longq = ob_malloc(cap / 4);
    longq[0] = 0;
    for (int i = 0; i < 90; i++) strcat(longq, "Once upon a time there was a cat. ");
    /* a choice of about 1100 tokens: three windows */
    snprintf(text, cap,
             "{\"query\": \"%s\", \"choices\": [\"It was happy.\", \"The cat liked to play with a ball of red yarn "
             "in the sun every day.\", \"Zq.\"], \"gold\": 0}\n"
             "{\"query\": \"Question: Where is the ball?\\n\", \"choices\": [\"under the bed\", \"in the sky\"], \"gold\": 0}\n"
             "{\"query\": \"Ends with spaces  \", \"choices\": [\"yes\", \"no\"], \"gold\": 1}\n"
             "{\"query\": \"A long one:\", \"choices\": [\"%s%s\", \"short\"], \"gold\": 1}\n",
             longq, longq, longq);
    Task t, t_hand = {0};
    if (task_parse(&t_hand, "tinystories_mc", text, "hand-made", 0, err)) CHECK(0, "%s", err);
    else check_against_independent(&m, &tok, &t_hand, "hand-made mc", &truncated);
    CHECK(truncated >= 4, "the long context and choice were truncated (%d requests)", truncated);
    const char *wg = "{\"context_options\": [\"Lily had a cat and a dog. The cat\", \"Lily had a cat and a dog. The dog\"], "
                     "\"continuation\": \"was very happy.\", \"gold\": 0}\n";
    if (task_parse(&t, "winogrande", wg, "hand-made", 0, err)) CHECK(0, "%s", err);
    else {
        check_against_independent(&m, &tok, &t, "hand-made schema", &truncated);
        task_free(&t);
    }

    /* known answers: 1 fluent vs garbage (right both ways); 2 a short
     * likely word vs a long fluent gold sentence (acc wrong, acc_norm
     * right); 3 gold on garbage (wrong both ways); 4 the same as 2 with
     * three choices. acc 1/4, acc_norm 3/4. Schema: the context option that
     * makes sense first, then the garbled one. */
    const char *known =
        "{\"query\": \"Once upon a time, there was a little girl named Lily. She loved to play\", \"choices\": [\"outside with her friends.\", \"zqx vbnm kkkp wert.\"], \"gold\": 0}\n"
        "{\"query\": \"Tom went to the park with his mom. He saw a big\", \"choices\": [\"dog\", \"tree and he wanted to climb it, so he ran to it and said hello to his friend.\"], \"gold\": 1}\n"
        "{\"query\": \"The sun was shining and the birds were singing. Sam and his dog went for a\", \"choices\": [\"walk\", \"qqqq zzzz xxxx\"], \"gold\": 1}\n"
        "{\"query\": \"Mia had a red ball. She liked to\", \"choices\": [\"play with it every day in the garden with her mom and dad.\", \"jump\", \"xkcd qwerty asdf zxcv poiu lkjh mnbv.\"], \"gold\": 0}\n";
    if (task_parse(&t, "tinystories_mc", known, "known", 0, err)) CHECK(0, "%s", err);
    else {
        TaskResult r;
        Progress pg = {.main = pthread_self()};
        if (task_score(&m, &tok, &t, 2, on_progress, &pg, &r, err)) CHECK(0, "%s", err);
        else {
            int wp[] = {0, 0, 0, 1}, wn[] = {0, 1, 0, 0};
            for (int i = 0; i < 4; i++)
                CHECK(r.pred[i] == wp[i] && r.pred_norm[i] == wn[i], "known item %d: pred %d/%d, want %d/%d", i + 1,
                      r.pred[i], r.pred_norm[i], wp[i], wn[i]);
            CHECK(r.correct == 1 && r.correct_norm == 3, "correct %d %d", r.correct, r.correct_norm);
            CHECK(pg.calls >= 1 && pg.last == 4 && pg.total == 4 && pg.bad == 0,
                  "progress: %d calls, last %d/%d, %d bad", pg.calls, pg.last, pg.total, pg.bad);
            CHECK_NEAR(r.acc, 0.25, 1e-15, "acc");
            CHECK_NEAR(r.acc_norm, 0.75, 1e-15, "acc_norm");
            CHECK_NEAR(r.acc_stderr, 0.25, 1e-12, "acc_stderr");
            CHECK_NEAR(r.acc_norm_stderr, 0.25, 1e-12, "acc_norm_stderr");
            task_result_free(&r);
        }
        task_free(&t);
    }
    const char *wknown =
        "{\"context_options\": [\"Lily had a cat and a dog. The cat\", \"Lily had a cat and a dog. The cat zqx vbnm\"], \"continuation\": \"was very happy.\", \"gold\": 0}\n"
        "{\"context_options\": [\"Lily had a cat and a dog. The cat zqx vbnm\", \"Lily had a cat and a dog. The cat\"], \"continuation\": \"was very happy.\", \"gold\": 0}\n";
    if (task_parse(&t, "winogrande", wknown, "known", 0, err)) CHECK(0, "%s", err);
    else {
        TaskResult r;
        if (task_score(&m, &tok, &t, 1, NULL, NULL, &r, err)) CHECK(0, "%s", err);
        else {
            CHECK(r.pred[0] == 0 && r.pred[1] == 1, "schema preds %d %d", r.pred[0], r.pred[1]);
            CHECK(r.correct == 1 && r.correct_norm == 1, "schema: acc_norm = acc (%d %d)", r.correct, r.correct_norm);
            task_result_free(&r);
        }
        task_free(&t);
    }

    /* a PTQ student: the same checks, and the same scores with items in
     * parallel on a pool of two threads (its callers take turns) and on a
     * pool of one (each thread runs its own layers) */
    char dir[] = "/tmp/onebit-tasks.XXXXXX", path[64];
    int nl = m.cfg.n_layers * LIN_PER_LAYER;
    StudentLinearSrc *src = ob_calloc((size_t)nl, sizeof *src);
    Model st;
    Tokenizer stok;
    if (!mkdtemp(dir)) CHECK(0, "mkdtemp");
    else if (snprintf(path, sizeof path, "%s/s.onebit", dir), student_quantize(&m, SVID_NMF, 0, src, err) ||
             student_write(path, &m, &tok, src, NULL, err) || student_load(&st, &stok, path, err))
        CHECK(0, "student: %s", err);
    else {
        /* the student's layers run on the pool of their execution context */
        Pool *p2 = pool_new(2, err), *p1 = pool_new(1, err);
        KernExec ex;
        kern_exec_init(&ex, NULL, KERN_ACT_FP32, p2);
        CHECK(p2 && p1 && student_set_exec(&st, &ex, err) == 0, "%s", err);
        kern_exec_fini(&ex);
        check_against_independent(&st, &stok, &t_hand, "student", &truncated);
        TaskResult a, b;
        if (task_score(&st, &stok, &t_hand, 2, NULL, NULL, &a, err) == 0) {
            kern_exec_init(&ex, NULL, KERN_ACT_FP32, p1);
            CHECK(student_set_exec(&st, &ex, err) == 0, "%s", err);
            CHECK(student_exec(&st) && pool_threads(student_exec(&st)->pool) == 1, "the student runs on a pool of 1");
            kern_exec_fini(&ex);
            if (task_score(&st, &stok, &t_hand, 2, NULL, NULL, &b, err) == 0) {
                double md = 0;
                for (int i = 0; i < a.choice0[a.n]; i++) md = fmax(md, fabs(a.ll[i] - b.ll[i]));
                CHECK(md == 0, "student: pool of 2 vs pool of 1: max diff %g", md);
                task_result_free(&b);
            } else CHECK(0, "%s", err);
            task_result_free(&a);
        } else CHECK(0, "%s", err);
        tok_free(&stok);
        model_free(&st);
        pool_free(p2);
        pool_free(p1);
        unlink(path);
    }
    if (*dir) rmdir(dir);
    student_src_free(src, nl);
    free(src);
    task_free(&t_hand);

    free(text);
    free(longq);
    tok_free(&tok);
    model_free(&m);
    return test_done("test_tasks");
}
