/* tests/test_trainer_state.c -- Hugging Face Trainer's trainer_state.json
 * (src/format/trainer_state.c): a log_history as transformers writes it
 * (training logs, evaluations, the final summary, the OneBit trainer's extra
 * loss terms) into rows, loading from a directory, and hostile files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "format/trainer_state.h"
#include "test.h"

static char dir[4096];

static const char good[] =
    "{\"best_metric\": null, \"epoch\": 0.03, \"global_step\": 30, \"max_steps\": 1000,\n"
    " \"log_history\": [\n"
    "  {\"epoch\": 0.01, \"learning_rate\": 2e-05, \"loss\": 7.25, \"step\": 10},\n"
    "  {\"epoch\": 0.02, \"grad_norm\": 1.5, \"learning_rate\": 4e-05, \"loss\": 5.5, \"kl_loss\": 4.0,"
    "   \"mse_loss\": 1.5, \"step\": 20},\n"
    "  {\"epoch\": 0.02, \"eval_loss\": 2.75, \"eval_runtime\": 3.1, \"step\": 20},\n"
    "  {\"epoch\": 0.03, \"learning_rate\": 6e-05, \"loss\": 4.0, \"kl\": 3.0, \"mse\": 1.0, \"step\": 30},\n"
    "  {\"epoch\": 0.03, \"step\": 30, \"total_flos\": 1e12, \"train_loss\": 5.58, \"train_runtime\": 321.5}\n"
    " ],\n"
    " \"num_train_epochs\": 1, \"trial_name\": null}\n";

static void test_good(void)
{
    TState s;
    char err[OB_ERRLEN] = "";
    CHECK(tstate_parse(good, sizeof good - 1, &s, err) == 0, "%s", err);
    CHECK(s.n == 4, "4 rows (the summary has no loss), not %d", s.n);
    CHECK(s.global_step == 30 && s.max_steps == 1000, "global_step %d max_steps %d", s.global_step, s.max_steps);
    CHECK(s.train_runtime == 321.5, "train_runtime %g", s.train_runtime);
    if (s.n == 4) {
        CHECK(s.rows[0].step == 10 && s.rows[0].loss == 7.25 && s.rows[0].lr == 2e-05 && isnan(s.rows[0].grad_norm) &&
                  isnan(s.rows[0].kl) && isnan(s.rows[0].eval_loss) && s.rows[0].epoch == 0.01,
              "row 0");
        CHECK(s.rows[1].grad_norm == 1.5 && s.rows[1].kl == 4.0 && s.rows[1].mse == 1.5, "row 1: kl_loss, mse_loss");
        CHECK(s.rows[2].step == 20 && s.rows[2].eval_loss == 2.75 && isnan(s.rows[2].loss), "row 2: an evaluation");
        CHECK(s.rows[3].kl == 3.0 && s.rows[3].mse == 1.0, "row 3: kl, mse");
    }
    tstate_free(&s);
    /* from a directory, as the trainer leaves it */
    char path[4200];
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    FILE *f = fopen(path, "w");
    fputs(good, f);
    fclose(f);
    CHECK(tstate_load(dir, &s, err) == 0 && s.n == 4, "load DIR: %s", err);
    tstate_free(&s);
    CHECK(tstate_load(path, &s, err) == 0 && s.n == 4, "load FILE: %s", err);
    tstate_free(&s);
    snprintf(path, sizeof path, "%s/nope.json", dir);
    CHECK(tstate_load(path, &s, err) == -1 && strstr(err, "nope.json"), "missing file: %s", err);
    /* an empty history is a run with no metrics yet */
    const char *empty = "{\"global_step\": 0, \"log_history\": []}";
    CHECK(tstate_parse(empty, strlen(empty), &s, err) == 0 && s.n == 0 && s.max_steps == -1, "empty history: %s", err);
    tstate_free(&s);
}

static void bad(const char *text, const char *want)
{
    TState s;
    char err[OB_ERRLEN] = "";
    int rc = tstate_parse(text, strlen(text), &s, err);
    CHECK(rc == -1 && strstr(err, want), "'%s': wanted an error with '%s', got rc %d '%s'", text, want, rc, err);
    CHECK(s.rows == NULL && s.n == 0, "nothing is left allocated after an error");
}

static void test_hostile(void)
{
    bad("", "not valid JSON");
    bad("{\"log_history\": [", "not valid JSON");
    bad("[1, 2]", "not a JSON object");
    bad("{\"global_step\": 3}", "no \"log_history\"");
    bad("{\"log_history\": {\"step\": 1}}", "no \"log_history\"");
    bad("{\"log_history\": [3]}", "log_history[0] is not an object");
    bad("{\"log_history\": [{\"loss\": 1.0}]}", "log_history[0]: no whole \"step\"");
    bad("{\"log_history\": [{\"loss\": 1.0, \"step\": 1}, {\"loss\": 1.0, \"step\": 2.5}]}", "log_history[1]: no whole \"step\"");
    bad("{\"log_history\": [{\"loss\": 1.0, \"step\": -4}]}", "no whole \"step\"");
    bad("{\"log_history\": [{\"loss\": \"low\", \"step\": 1}]}", "\"loss\" is not a finite number");
    bad("{\"log_history\": [{\"loss\": 1e999, \"step\": 1}]}", "\"loss\" is not a finite number");
    bad("{\"log_history\": [{\"loss\": 1, \"learning_rate\": [1], \"step\": 1}]}", "\"learning_rate\" is not a finite number");
    bad("{\"log_history\": [{\"eval_loss\": true, \"step\": 1}]}", "\"eval_loss\" is not a finite number");
    /* NUL inside the text: cJSON stops there */
    bad("{\"log_history\": [\0]}", "not valid JSON");
}

int main(void)
{
    if (test_tmpdir(dir, sizeof dir, "onebit-test-tstate")) return 1;
    test_good();
    test_hostile();
    test_rmtree(dir);
    return test_done("test_trainer_state");
}
