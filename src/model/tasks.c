/* tasks.c -- zero-shot multiple-choice tasks: JSONL reading and
 * lm-eval-harness loglikelihood scoring over a KV cache (see tasks.h). */
#include "model/tasks.h"

#include <cJSON.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

const char *const task_names[] = {"arc_easy", "arc_challenge", "piqa", "boolq", "tinystories_mc", "winogrande", NULL};
static const TaskFormat task_formats[] = {TASK_MC, TASK_MC, TASK_MC, TASK_MC, TASK_MC, TASK_SCHEMA};

int task_format_of(const char *name)
{
    for (int i = 0; task_names[i]; i++)
        if (strcmp(name, task_names[i]) == 0) return (int)task_formats[i];
    return -1;
}

const char *task_names_list(void)
{
    return "arc_easy, arc_challenge, piqa, boolq, tinystories_mc (multiple choice), winogrande (schema)";
}

int task_utf8_len(const char *s)
{
    int n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

double task_stderr(double p, int n)
{
    if (n < 2) return NAN;
    return sqrt(p * (1.0 - p) / (n - 1));
}

/* ---- reading ------------------------------------------------------------ */

static char *cat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = ob_malloc(la + lb + 1);
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

static void item_free(TaskItem *it)
{
    for (int c = 0; c < it->n_choices; c++) {
        if (it->ctx) free(it->ctx[c]);
        if (it->cont) free(it->cont[c]);
    }
    free(it->ctx);
    free(it->cont);
    free(it->norm_len);
    memset(it, 0, sizeof *it);
}

void task_free(Task *t)
{
    for (int i = 0; i < t->n_items; i++) item_free(&t->items[i]);
    free(t->items);
    memset(t, 0, sizeof *t);
}

static const char *fmt_hint(TaskFormat f)
{
    return f == TASK_MC ? " (multiple choice: {\"query\",\"choices\",\"gold\"}; winogrande files need --task winogrande)"
                        : " (schema: {\"context_options\",\"continuation\",\"gold\"})";
}

/* one JSON object into it; 0, or -1 with err (without the location) */
static int item_from_json(const cJSON *o, TaskFormat f, TaskItem *it, char *err)
{
    memset(it, 0, sizeof *it);
    if (!cJSON_IsObject(o)) { ob_seterr(err, "not a JSON object%s", fmt_hint(f)); return -1; }
    const char *list_key = f == TASK_MC ? "choices" : "context_options";
    const cJSON *query = NULL, *cont = NULL;
    if (f == TASK_MC) {
        query = cJSON_GetObjectItemCaseSensitive(o, "query");
        if (!cJSON_IsString(query)) {
            ob_seterr(err, "\"query\" is %s%s", query ? "not a string" : "missing", fmt_hint(f));
            return -1;
        }
    } else {
        cont = cJSON_GetObjectItemCaseSensitive(o, "continuation");
        if (!cJSON_IsString(cont)) {
            ob_seterr(err, "\"continuation\" is %s%s", cont ? "not a string" : "missing", fmt_hint(f));
            return -1;
        }
        if (!*cont->valuestring) { ob_seterr(err, "\"continuation\" is empty"); return -1; }
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, list_key);
    if (!cJSON_IsArray(list)) {
        ob_seterr(err, "\"%s\" is %s%s", list_key, list ? "not an array" : "missing", fmt_hint(f));
        return -1;
    }
    int n = cJSON_GetArraySize(list);
    if (n < 2) { ob_seterr(err, "\"%s\" has %d entries; an item needs at least 2", list_key, n); return -1; }
    const cJSON *gold = cJSON_GetObjectItemCaseSensitive(o, "gold");
    if (!cJSON_IsNumber(gold)) { ob_seterr(err, "\"gold\" is %s", gold ? "not a number" : "missing"); return -1; }
    double g = gold->valuedouble;
    if (g != floor(g) || g < 0 || g >= n) {
        ob_seterr(err, "\"gold\" is %g; it must be the index of one of the %d %s (0..%d)", g, n, list_key, n - 1);
        return -1;
    }
    int c = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        if (!cJSON_IsString(e)) { ob_seterr(err, "\"%s\"[%d] is not a string", list_key, c); return -1; }
        if (!*e->valuestring) { ob_seterr(err, "\"%s\"[%d] is empty", list_key, c); return -1; }
        c++;
    }
    it->n_choices = n;
    it->gold = (int)g;
    it->ctx = ob_calloc((size_t)n, sizeof(char *));
    it->cont = ob_calloc((size_t)n, sizeof(char *));
    it->norm_len = ob_calloc((size_t)n, sizeof(int));
    c = 0;
    cJSON_ArrayForEach(e, list) {
        if (f == TASK_MC) {
            it->ctx[c] = ob_strdup(query->valuestring);
            it->cont[c] = cat(" ", e->valuestring);
            it->norm_len[c] = task_utf8_len(e->valuestring);
        } else {
            it->ctx[c] = ob_strdup(e->valuestring);
            it->cont[c] = cat(" ", cont->valuestring);
            it->norm_len[c] = task_utf8_len(cont->valuestring);
        }
        c++;
    }
    return 0;
}

int task_parse(Task *t, const char *name, const char *text, const char *what, int limit, char *err)
{
    memset(t, 0, sizeof *t);
    int f = task_format_of(name);
    if (f < 0) { ob_seterr(err, "unknown task '%s' (known: %s)", name, task_names_list()); return -1; }
    for (int i = 0; task_names[i]; i++)
        if (strcmp(name, task_names[i]) == 0) t->name = task_names[i];
    t->format = (TaskFormat)f;
    int cap = 0, line = 0;
    const char *p = text;
    while (*p && (limit <= 0 || t->n_items < limit)) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        line++;
        size_t k = 0;
        while (k < len && isspace((unsigned char)p[k])) k++;
        if (k < len) {
            cJSON *o = cJSON_ParseWithLength(p, len);
            char msg[OB_ERRLEN];
            TaskItem it = {0};
            int rc = -1;
            if (!o) ob_seterr(msg, "not valid JSON");
            else rc = item_from_json(o, t->format, &it, msg);
            cJSON_Delete(o);
            if (rc) {
                ob_seterr(err, "%s:%d: %s", what, line, msg);
                item_free(&it);
                task_free(t);
                return -1;
            }
            if (t->n_items == cap) {
                cap = cap ? 2 * cap : 256;
                t->items = realloc(t->items, (size_t)cap * sizeof *t->items);
                if (!t->items) abort();
            }
            it.line = line;
            t->items[t->n_items++] = it;
        }
        if (!e) break;
        p = e + 1;
    }
    if (t->n_items == 0) {
        ob_seterr(err, "%s: no items (one JSON object per line expected%s)", what, fmt_hint(t->format));
        task_free(t);
        return -1;
    }
    return 0;
}

int task_load(Task *t, const char *name, const char *path, int limit, char *err)
{
    memset(t, 0, sizeof *t);
    if (task_format_of(name) < 0) { ob_seterr(err, "unknown task '%s' (known: %s)", name, task_names_list()); return -1; }
    char *text;
    size_t len;
    if (ob_read_file(path, &text, &len, err)) return -1;
    if (strlen(text) != len) {
        free(text);
        ob_seterr(err, "%s: contains a NUL byte; not a JSONL text file", path);
        return -1;
    }
    int rc = task_parse(t, name, text, path, limit, err);
    free(text);
    return rc;
}

/* ---- tokenization ------------------------------------------------------- */

int task_encode_pair(const Tokenizer *tok, const char *ctx, const char *cont, int **ctx_tok, int *n_ctx,
                     int **cont_tok, int *n_cont, char *err)
{
    size_t L = strlen(ctx), k = L;
    while (k > 0 && isspace((unsigned char)ctx[k - 1])) k--;
    char *c = ob_malloc(k + 1);
    memcpy(c, ctx, k);
    c[k] = 0;
    char *whole = cat(ctx, cont); /* = context without its end whitespace + (that whitespace + cont) */
    int *ct = NULL, *wt = NULL;
    size_t nc = 0, nw = 0;
    if (tok_encode(tok, c, 1, 0, &ct, &nc) || tok_encode(tok, whole, 1, 0, &wt, &nw) || nw > INT_MAX) {
        ob_seterr(err, "cannot tokenize a request (an empty tokenizer, or over 2^31 tokens)");
        free(ct);
        free(wt);
        free(whole);
        free(c);
        return -1;
    }
    int n = nw > nc ? (int)(nw - nc) : 0;
    *cont_tok = ob_malloc((size_t)(n ? n : 1) * sizeof(int));
    memcpy(*cont_tok, wt + (nw - n), (size_t)n * sizeof(int));
    *n_cont = n;
    *ctx_tok = ct;
    *n_ctx = (int)nc;
    free(wt);
    free(whole);
    free(c);
    return 0;
}

/* ---- scoring ------------------------------------------------------------ */

static double row_logprob(const float *row, int V, int tok)
{
    float max = row[0];
    for (int i = 1; i < V; i++) if (row[i] > max) max = row[i];
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)row[i] - max);
    return (double)row[tok] - max - log(s);
}

typedef struct {
    ModelActs a;
    ModelState s;
    float *last;    /* (V) the prefix's last row */
    float *logits;  /* (rows, V), grown as continuations need */
    int rows;
} Work;

static void work_init(Work *w, const ModelConfig *c)
{
    model_acts_init(&w->a, c, c->seq_len);
    model_state_init(&w->s, c);
    /* scores are log-likelihoods compared across models: an FP32 cache
     * unless $ONEBIT_KV says otherwise (FP16 moves them by ~1e-4) */
    if (w->s.kv == MODEL_KV_AUTO) model_state_set_kv(&w->s, MODEL_KV_F32);
    w->last = ob_aligned_alloc(64, (size_t)c->vocab_size * sizeof(float));
    w->logits = NULL;
    w->rows = 0;
}

static float *work_logits(Work *w, int rows, int V)
{
    if (rows > w->rows) {
        free(w->logits);
        w->logits = ob_aligned_alloc(64, (size_t)rows * V * sizeof(float));
        w->rows = rows;
    }
    return w->logits;
}

static void work_free(Work *w)
{
    model_acts_free(&w->a);
    model_state_free(&w->s);
    free(w->last);
    free(w->logits);
}

/* one forward's worth of a choice: cont[0..K) scored after pre[0..P) */
typedef struct {
    const int *pre, *cont;
    int P, K, choice;
} Req;

/* the choices' scores of one item. A choice's tokens X = context +
 * continuation (N of them) are cut, from the end, into chunks of at most
 * seq_len continuation tokens, each scored after the tokens before it in the
 * (seq_len + 1)-token window that ends with it: one chunk, the harness's
 * (ctx + cont)[-(seq_len + 1):], unless the continuation alone is longer than
 * the model's context. Each distinct prefix runs once and fills the KV
 * cache, from the first position where it differs from the prefix before
 * it; every chunk sharing it is scored from there, its first token from the
 * prefix's last row. 0, or -1 with err. */
static int score_item(const Model *m, const Tokenizer *tok, const TaskItem *it, Work *w, double *ll, long *ntok,
                      char *err)
{
    const int S = m->cfg.seq_len, V = m->cfg.vocab_size, n = it->n_choices;
    int **X = ob_calloc((size_t)n, sizeof(int *));
    Req *rq = NULL;
    int nrq = 0, caprq = 0, rc = 0;
    *ntok = 0;
    for (int c = 0; c < n && rc == 0; c++) {
        int *ct, nc, *kt, nk;
        if (task_encode_pair(tok, it->ctx[c], it->cont[c], &ct, &nc, &kt, &nk, err)) rc = -1;
        int N = nc + nk;
        X[c] = ob_malloc((size_t)(N ? N : 1) * sizeof(int));
        memcpy(X[c], ct, (size_t)nc * sizeof(int));
        memcpy(X[c] + nc, kt, (size_t)nk * sizeof(int));
        free(ct);
        free(kt);
        for (int i = 0; i < N && rc == 0; i++)
            if (X[c][i] < 0 || X[c][i] >= V) {
                ob_seterr(err, "token id %d is outside the model's vocabulary (%d): wrong tokenizer?", X[c][i], V);
                rc = -1;
            }
        if (rc == 0 && nk == 0) {
            ob_seterr(err, "choice %d gives no token of its own after the context", c);
            rc = -1;
        }
        for (int b = N; rc == 0 && b > nc; b -= S) {
            int a = b - S > nc ? b - S : nc, s0 = b - 1 - S > 0 ? b - 1 - S : 0; /* a - s0 >= 1 */
            if (nrq == caprq) {
                caprq = caprq ? 2 * caprq : 2 * n;
                rq = realloc(rq, (size_t)caprq * sizeof *rq);
                if (!rq) abort();
            }
            rq[nrq++] = (Req){X[c] + s0, X[c] + a, a - s0, b - a, c};
        }
    }
    for (int c = 0; c < n; c++) ll[c] = 0;
    const int *cached = NULL; /* the prefix whose keys and values the cache holds */
    int ncached = 0;
    for (int r = 0; r < nrq && rc == 0; r++) {
        if (!rq[r].pre) continue; /* done */
        const int *pre = rq[r].pre;
        int P = rq[r].P;
        /* positions shared with the prefix in the cache (winogrande's
         * options share their start) are not run again; the last one
         * always is, for its logits */
        int keep = 0;
        while (keep < ncached && keep < P - 1 && cached[keep] == pre[keep]) keep++;
        model_forward_kv(m, &w->a, &w->s, pre + keep, P - keep, keep, w->last, 1);
        *ntok += P - keep;
        cached = pre;
        ncached = P;
        for (int j = r; j < nrq; j++) {
            Req *q = &rq[j];
            if (!q->pre || q->P != P || (q->pre != pre && memcmp(q->pre, pre, (size_t)P * sizeof(int)))) continue;
            double sum = row_logprob(w->last, V, q->cont[0]);
            if (q->K > 1) {
                float *lg = work_logits(w, q->K - 1, V);
                model_forward_kv(m, &w->a, &w->s, q->cont, q->K - 1, P, lg, q->K - 1);
                *ntok += q->K - 1;
                for (int i = 1; i < q->K; i++) sum += row_logprob(lg + (size_t)(i - 1) * V, V, q->cont[i]);
            }
            ll[q->choice] += sum;
            q->pre = NULL;
        }
    }
    for (int c = 0; c < n; c++) free(X[c]);
    free(X);
    free(rq);
    return rc;
}

typedef struct {
    const Model *m;
    const Tokenizer *tok;
    const Task *t;
    TaskResult *r;
    long *ntok;          /* (n_items) */
    void (*progress)(void *user, int done, int total);
    void *user;
    pthread_t caller;    /* the only thread that calls progress */
    atomic_int next, done;
    atomic_int failed;   /* set on the first error: no new item is started */
    pthread_mutex_t mu;
    int err_item;        /* the lowest failing item (-1: none) and its error */
    char err[OB_ERRLEN];
} ScoreJob;

static void job_fail(ScoreJob *j, int item, const char *msg)
{
    pthread_mutex_lock(&j->mu);
    if (j->err_item < 0 || item < j->err_item) {
        j->err_item = item;
        snprintf(j->err, sizeof j->err, "%s", msg);
    }
    pthread_mutex_unlock(&j->mu);
    atomic_store(&j->failed, 1);
}

static void *score_worker(void *arg)
{
    ScoreJob *j = arg;
    Work w;
    work_init(&w, &j->m->cfg);
    char err[OB_ERRLEN];
    double last = ob_now();
    for (;;) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= j->t->n_items || atomic_load(&j->failed)) break;
        if (score_item(j->m, j->tok, &j->t->items[i], &w, j->r->ll + j->r->choice0[i], &j->ntok[i], err))
            job_fail(j, i, err);
        int d = atomic_fetch_add(&j->done, 1) + 1;
        if (j->progress && pthread_equal(pthread_self(), j->caller)) {
            double now = ob_now();
            if (now - last >= 0.25) {
                j->progress(j->user, d, j->t->n_items);
                last = now;
            }
        }
    }
    work_free(&w);
    return NULL;
}

void task_metrics(const Task *t, TaskResult *r)
{
    r->correct = r->correct_norm = 0;
    for (int i = 0; i < r->n; i++) {
        const TaskItem *it = &t->items[i];
        const double *ll = r->ll + r->choice0[i];
        int best = 0, bestn = 0;
        for (int c = 1; c < it->n_choices; c++) {
            if (ll[c] > ll[best]) best = c;
            if (ll[c] / it->norm_len[c] > ll[bestn] / it->norm_len[bestn]) bestn = c;
        }
        r->pred[i] = best;
        r->pred_norm[i] = bestn;
        r->correct += best == it->gold;
        r->correct_norm += bestn == it->gold;
    }
    r->acc = r->n ? (double)r->correct / r->n : NAN;
    r->acc_norm = r->n ? (double)r->correct_norm / r->n : NAN;
    r->acc_stderr = task_stderr(r->acc, r->n);
    r->acc_norm_stderr = task_stderr(r->acc_norm, r->n);
}

void task_result_free(TaskResult *r)
{
    free(r->choice0);
    free(r->ll);
    free(r->pred);
    free(r->pred_norm);
    memset(r, 0, sizeof *r);
}

int task_score(const Model *m, const Tokenizer *tok, const Task *t, int threads,
               void (*progress)(void *user, int done, int total), void *user, TaskResult *r, char *err)
{
    memset(r, 0, sizeof *r);
    double t0 = ob_now();
    int n = t->n_items;
    r->n = n;
    r->choice0 = ob_malloc((size_t)(n + 1) * sizeof(int));
    r->choice0[0] = 0;
    for (int i = 0; i < n; i++) r->choice0[i + 1] = r->choice0[i] + t->items[i].n_choices;
    r->ll = ob_calloc((size_t)r->choice0[n] + 1, sizeof(double));
    r->pred = ob_calloc((size_t)n + 1, sizeof(int));
    r->pred_norm = ob_calloc((size_t)n + 1, sizeof(int));
    ScoreJob j = {.m = m, .tok = tok, .t = t, .r = r, .progress = progress, .user = user, .err_item = -1};
    j.caller = pthread_self();
    j.ntok = ob_calloc((size_t)n + 1, sizeof(long));
    atomic_init(&j.next, 0);
    atomic_init(&j.done, 0);
    atomic_init(&j.failed, 0);
    pthread_mutex_init(&j.mu, NULL);
    if (threads < 1) threads = 1;
    if (threads > n) threads = n;
    if (threads == 1) score_worker(&j);
    else {
        pthread_t *th = ob_calloc((size_t)threads, sizeof(pthread_t));
        int started = 0;
        for (int i = 1; i < threads; i++)
            if (pthread_create(&th[started], NULL, score_worker, &j) == 0) started++;
        score_worker(&j); /* the caller is one of them */
        for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
        free(th);
    }
    pthread_mutex_destroy(&j.mu);
    for (int i = 0; i < n; i++) r->tokens += j.ntok[i];
    free(j.ntok);
    if (j.err_item >= 0) {
        ob_seterr(err, "item %d (line %d): %s", j.err_item + 1, t->items[j.err_item].line, j.err);
        task_result_free(r);
        return -1;
    }
    task_metrics(t, r);
    r->seconds = ob_now() - t0;
    if (progress) progress(user, n, n);
    return 0;
}
