/* src/format/trainer_state.c -- Hugging Face Trainer's trainer_state.json:
 * log_history into rows (see trainer_state.h). cJSON parses; every value is
 * checked before use. Reentrant. */
#include "format/trainer_state.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/common.h"
#include "base/file.h"

/* *v = the number at key (NAN when absent); -1 with err when it is there but
 * not a finite number */
static int num_at(const cJSON *o, const char *key, int i, double *v, char *err)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    *v = NAN;
    if (!x || cJSON_IsNull(x)) return 0;
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble)) {
        ob_seterr(err, "log_history[%d]: \"%s\" is not a finite number", i, key);
        return -1;
    }
    *v = x->valuedouble;
    return 0;
}

/* the first of two spellings that is present */
static int num_either(const cJSON *o, const char *a, const char *b, int i, double *v, char *err)
{
    if (num_at(o, a, i, v, err)) return -1;
    return isnan(*v) ? num_at(o, b, i, v, err) : 0;
}

/* a top-level integer (global_step, max_steps): -1 when absent or not one */
static int int_at(const cJSON *root, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 2e9 || x->valuedouble != floor(x->valuedouble))
        return -1;
    return (int)x->valuedouble;
}

int tstate_parse(const char *text, size_t len, TState *out, char *err)
{
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) { ob_seterr(err, "not valid JSON"); return -1; }
    int rc = -1;
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(root, "log_history");
    if (!cJSON_IsObject(root)) { ob_seterr(err, "not a JSON object (a trainer_state.json is one)"); goto out; }
    if (!cJSON_IsArray(hist)) { ob_seterr(err, "no \"log_history\" list: not a Trainer's trainer_state.json"); goto out; }
    out->global_step = int_at(root, "global_step");
    out->max_steps = int_at(root, "max_steps");
    out->train_runtime = NAN;
    int cap = cJSON_GetArraySize(hist);
    out->rows = ob_calloc(cap > 0 ? (size_t)cap : 1, sizeof *out->rows);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, hist) {
        if (!cJSON_IsObject(e)) { ob_seterr(err, "log_history[%d] is not an object", i); goto out; }
        double step, rt;
        if (num_at(e, "step", i, &step, err)) goto out;
        if (isnan(step) || step < 0 || step > 2e9 || step != floor(step)) {
            ob_seterr(err, "log_history[%d]: no whole \"step\" from 0", i);
            goto out;
        }
        TStateRow r = {.step = (int)step};
        if (num_at(e, "loss", i, &r.loss, err) || num_at(e, "learning_rate", i, &r.lr, err) ||
            num_at(e, "grad_norm", i, &r.grad_norm, err) || num_either(e, "kl_loss", "kl", i, &r.kl, err) ||
            num_either(e, "mse_loss", "mse", i, &r.mse, err) || num_at(e, "epoch", i, &r.epoch, err) ||
            num_at(e, "eval_loss", i, &r.eval_loss, err) || num_at(e, "train_runtime", i, &rt, err))
            goto out;
        if (!isnan(rt)) out->train_runtime = rt;
        if (!isnan(r.loss) || !isnan(r.eval_loss)) out->rows[out->n++] = r;
        i++;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc) tstate_free(out);
    return rc;
}

int tstate_load(const char *path, TState *out, char *err)
{
    memset(out, 0, sizeof *out);
    struct stat sb;
    char *file = NULL;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) file = file_join(path, "trainer_state.json");
    const char *f = file ? file : path;
    char *text;
    size_t len;
    char e2[OB_ERRLEN];
    int rc = ob_read_file(f, &text, &len, err);
    if (rc == 0) {
        rc = tstate_parse(text, len, out, e2);
        if (rc) ob_seterr(err, "%s: %s", f, e2);
        free(text);
    }
    free(file);
    return rc;
}

void tstate_free(TState *s)
{
    free(s->rows);
    memset(s, 0, sizeof *s);
}
