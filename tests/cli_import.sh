#!/bin/sh
# cli_import.sh -- `import --from DIR`: a directory as the OneBit authors'
# trainer leaves it (a BitLlamaForCausalLM training checkpoint, here the SVID
# start checkpoint of stories260K, plus the Hugging Face Trainer's
# trainer_state.json) becomes a .onebit (the same student as `quantize
# --norm --init nmf`) and a finished run in a fresh run store that `runs
# list/show/curves` show with its metrics and evaluations; hostile cases:
# no trainer_state.json, a bad one, a taken name, a locked and a read-only
# store -- nothing recorded, no .onebit left behind.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.bin models/tok512.bin data/tinystories_train_head_sample.txt
DB="$TMP/runs.db"
head -c 20000 "$SHARED/data/tinystories_train_head_sample.txt" > "$TMP/ev.txt"
T="--teacher $SHARED/models/stories260K.bin --tokenizer $SHARED/models/tok512.bin"
nruns() { "$BIN" runs list --db "$DB" --json 2>/dev/null | grep -o '"id":' | wc -l; }

expect_exit 0 "a training checkpoint directory" "$BIN" export --format bitllama-start $T --out "$TMP/gpu-run"
cat > "$TMP/gpu-run/trainer_state.json" <<'JSON'
{
  "best_metric": null,
  "best_model_checkpoint": null,
  "epoch": 1.0,
  "eval_steps": 10,
  "global_step": 30,
  "is_hyper_param_search": false,
  "log_history": [
    {"epoch": 0.33, "grad_norm": 1.75, "learning_rate": 2e-05, "loss": 3.25, "step": 10},
    {"epoch": 0.33, "eval_loss": 2.5, "eval_runtime": 1.5, "eval_samples_per_second": 10.0, "step": 10},
    {"epoch": 0.67, "grad_norm": 1.25, "learning_rate": 1.5e-05, "loss": 2.75, "kl_loss": 120.5, "mse_loss": 0.25, "step": 20},
    {"epoch": 1.0, "grad_norm": 1.0, "learning_rate": 1e-05, "loss": 2.5, "step": 30},
    {"epoch": 1.0, "eval_loss": 2.25, "eval_runtime": 1.5, "step": 30},
    {"epoch": 1.0, "step": 30, "total_flos": 1.0e12, "train_loss": 2.8, "train_runtime": 120.5, "train_samples_per_second": 4.0}
  ],
  "logging_steps": 10,
  "max_steps": 30,
  "num_train_epochs": 1,
  "total_flos": 1.0e12,
  "train_batch_size": 8
}
JSON
expect_exit 0 "import" "$BIN" import --from "$TMP/gpu-run" $T --name gpu-7b --db "$DB"
check "import reports the counts" contains "$TMP/out" "3 metrics, 2 evaluations"
check "student written beside DIR" test -s "$TMP/gpu-run.onebit"
expect_exit 0 "runs list" "$BIN" runs list --db "$DB"
check "listed" contains "$TMP/out" "gpu-7b"
check "finished" contains "$TMP/out" "finished"
expect_exit 0 "runs show" "$BIN" runs show gpu-7b --db "$DB"
cp "$TMP/out" "$TMP/show.txt"
check "show: 30/30 steps" contains "$TMP/show.txt" "steps        30/30"
check "show: the curve" contains "$TMP/show.txt" "metrics      3 (steps 10..30, loss 3.2500 -> 2.5000)"
check "show: two evaluations" contains "$TMP/show.txt" "evaluations  2"
check "show: eval dataset" contains "$TMP/show.txt" "imported eval_loss"
check "show: best ppl = exp(2.25)" contains "$TMP/show.txt" "best ppl     9.4877"
check "show: the teacher" contains "$TMP/show.txt" "stories260K.bin"
check "show: the student" contains "$TMP/show.txt" "gpu-run.onebit"
check "show: where from" contains "$TMP/show.txt" "imported-from"
expect_exit 0 "runs curves" "$BIN" runs curves gpu-7b --csv --db "$DB"
check "curves: header + 3 rows" test "$(wc -l < "$TMP/out")" = 4
check "curves: kl and mse of step 20" contains "$TMP/out" "20,2.75,120.5,0.25,1.5e-05,1.25"
# the imported student is the start checkpoint's: quantize --norm --init nmf
expect_exit 0 "quantize" "$BIN" quantize $T --norm --init nmf --out "$TMP/q.onebit"
same_student "the imported student = the student" "$TMP/gpu-run.onebit" "$TMP/q.onebit"

# ---- hostile ----
expect_exit 1 "the name is taken" "$BIN" import --from "$TMP/gpu-run" --name gpu-7b --out "$TMP/again.onebit" --db "$DB"
check "no student left" test ! -e "$TMP/again.onebit"
check "still one run" test "$(nruns)" = 1
mkdir "$TMP/nostate"
cp "$TMP/gpu-run"/*.json "$TMP/gpu-run"/*.safetensors "$TMP/gpu-run"/tokenizer.model "$TMP/nostate/"
rm "$TMP/nostate/trainer_state.json"
expect_exit 0 "no trainer_state.json" "$BIN" import --from "$TMP/nostate/" --db "$DB"
check "says so" contains "$TMP/err" "no trainer_state.json"
check "0 metrics" contains "$TMP/out" "0 metrics, 0 evaluations"
check "named after the directory" contains "$TMP/out" "'nostate'"
expect_exit 0 "runs show nostate" "$BIN" runs show nostate --db "$DB"
check "metrics 0" contains "$TMP/out" "metrics      0"
mkdir "$TMP/bad"
cp "$TMP/nostate"/* "$TMP/bad/"
printf '{"global_step": 5, "log_history": [{"loss": "high", "step": 1}]}' > "$TMP/bad/trainer_state.json"
expect_exit 1 "bad trainer_state.json" "$BIN" import --from "$TMP/bad" --db "$DB"
check "the error names the file" contains "$TMP/err" "bad/trainer_state.json"
check "nothing recorded" test "$(nruns)" = 2
check "no student" test ! -e "$TMP/bad.onebit"
printf '{"log_history": [' > "$TMP/bad/trainer_state.json"
expect_exit 1 "truncated trainer_state.json" "$BIN" import --from "$TMP/bad" --db "$DB"
check "truncated: names the file" contains "$TMP/err" "trainer_state.json"
check "truncated: nothing recorded" test "$(nruns)" = 2
rm "$TMP/bad/model.safetensors"
printf '{"global_step": 5, "log_history": []}' > "$TMP/bad/trainer_state.json"
expect_exit 1 "no weights" "$BIN" import --from "$TMP/bad" --db "$DB"
check "no weights: nothing recorded" test "$(nruns)" = 2
expect_exit 1 "not a directory" "$BIN" import --from "$TMP/ev.txt" --db "$DB"
check "not a directory message" contains "$TMP/err" "not a directory"
expect_exit 2 "no --from" "$BIN" import --db "$DB"
if command -v python3 >/dev/null 2>&1 && python3 -c 'import sqlite3' 2>/dev/null; then
    # another process holds the store's write lock past the busy timeout (5 s)
    python3 - "$DB" "$TMP/locked" <<'PY' &
import sqlite3, sys, time, os
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(9)
c.execute("ROLLBACK")
PY
    pid=$!
    i=0
    while [ ! -e "$TMP/locked" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    expect_exit 1 "a locked store" "$BIN" import --from "$TMP/gpu-run" --name locked --out "$TMP/locked.onebit" --db "$DB"
    check "locked message" contains "$TMP/err" "locked"
    check "locked: no student" test ! -e "$TMP/locked.onebit"
    wait $pid
    check "locked: nothing recorded" test "$(nruns)" = 2
fi
if [ "$(id -u)" -ne 0 ]; then
    chmod 444 "$DB"
    expect_exit 1 "a read-only store" "$BIN" import --from "$TMP/gpu-run" --name ro --out "$TMP/ro.onebit" --db "$DB"
    check "read-only: no student" test ! -e "$TMP/ro.onebit"
    chmod 644 "$DB"
fi
mkdir "$TMP/rodir"
expect_exit 1 "a store that cannot be created" "$BIN" import --from "$TMP/gpu-run" --name ro --out "$TMP/ro.onebit" --db "$TMP/ev.txt/runs.db"
check "no store: no student" test ! -e "$TMP/ro.onebit"
check "no temporary files left" sh -c "! ls -a '$TMP' | grep -q '\.tmp'"
done_tests
