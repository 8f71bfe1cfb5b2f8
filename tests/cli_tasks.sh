#!/bin/sh
# tests/cli_tasks.sh -- `eval --task`: usage errors, hostile task files,
# --limit, --json (parsed by jq or python3), a hand-made task whose acc and
# acc_norm are known, teacher and student side by side, and the same result
# on 1 and 2 threads.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.bin models/tok512.bin data/tasks/tinystories_mc.jsonl data/tasks/winogrande.jsonl
M="$SHARED/models/stories260K.bin"
Z="$SHARED/models/tok512.bin"
TS="$SHARED/data/tasks/tinystories_mc.jsonl"
E="$BIN eval --teacher $M --tokenizer $Z"

# field PATH: a value of the JSON in $TMP/out, by jq or python3
if command -v jq >/dev/null 2>&1; then
    field() { jq -r "$1" "$TMP/out"; }
    parses() { jq -e . "$TMP/out" >/dev/null; }
else
    field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); exec('for k in sys.argv[2].lstrip(\".\").split(\".\"): d=d[k]'); print(d)" "$TMP/out" "$1"; }
    parses() { python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$TMP/out"; }
fi
near() { awk -v g="$1" -v w="$2" -v t="$3" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= t) }'; }

# usage errors
expect_exit 2 "unknown task" $E --task hellaswag --task-file "$TS"
check "unknown task lists the known ones" contains "$TMP/err" "arc_easy, arc_challenge, piqa, boolq, tinystories_mc"
check "... and winogrande" contains "$TMP/err" "winogrande"
expect_exit 2 "no task file" $E --task arc_easy
check "no task file message" contains "$TMP/err" "needs --task-file"
expect_exit 2 "task file without task" $E --task-file "$TS"
expect_exit 2 "--limit 0" $E --task tinystories_mc --task-file "$TS" --limit 0
expect_exit 2 "--text with --task" $E --task tinystories_mc --task-file "$TS" --text "$TS"
expect_exit 2 "--limit without --task" $E --text "$TS" --limit 3
expect_exit 1 "missing file" $E --task arc_easy --task-file "$TMP/none.jsonl"

# hostile task files: exit 1, the file, the line and what is wrong
good='{"query": "Q", "choices": ["a", "b"], "gold": 0}'
goodwg='{"context_options": ["a", "b"], "continuation": "c", "gold": 0}'
hostile() { # hostile NAME TASK LINE2 EXPECTED... (line 1 is a good item)
    name=$1 task=$2 line=$3; shift 3
    first=$good
    [ "$task" = winogrande ] && first=$goodwg
    printf '%s\n%s\n' "$first" "$line" > "$TMP/$name.jsonl"
    expect_exit 1 "$name" $E --task "$task" --task-file "$TMP/$name.jsonl"
    check "$name: names file and line" contains "$TMP/err" "$name.jsonl:2:"
    for want in "$@"; do check "$name: says '$want'" contains "$TMP/err" "$want"; done
}
hostile badjson arc_easy '{"query": "Q", "choices": ["a", "b"], "gold": 0' "not valid JSON"
hostile goldrange arc_easy '{"query": "Q", "choices": ["a", "b"], "gold": 2}' '"gold" is 2' "0..1"
hostile goldneg piqa '{"query": "Q", "choices": ["a", "b"], "gold": -1}' '"gold" is -1'
hostile nochoices boolq '{"query": "Q", "choices": [], "gold": 0}' '"choices" has 0 entries'
hostile emptychoice arc_challenge '{"query": "Q", "choices": ["a", ""], "gold": 0}' '"choices"[1] is empty'
hostile noquery tinystories_mc '{"choices": ["a", "b"], "gold": 0}' '"query" is missing'
hostile nogold arc_easy '{"query": "Q", "choices": ["a", "b"]}' '"gold" is missing'
hostile wrongformat winogrande "$good" '"continuation" is missing' 'schema: {"context_options","continuation","gold"}'
hostile nocont winogrande '{"context_options": ["a", "b"], "gold": 0}' '"continuation" is missing'
printf '\n\n' > "$TMP/blank.jsonl"
expect_exit 1 "no items" $E --task arc_easy --task-file "$TMP/blank.jsonl"
check "no items message" contains "$TMP/err" "no items"

# --limit and --json
expect_exit 0 "--limit 7 --json" $E --task tinystories_mc --task-file "$TS" --limit 7 --json
check "json parses" parses
check "7 items" test "$(field .items)" = 7
check "task name" test "$(field .task)" = tinystories_mc
check "acc = correct / items" near "$(field .teacher.acc)" "$(awk -v c="$(field .teacher.correct)" 'BEGIN { printf "%.17g", c / 7 }')" 1e-12
check "no student, no kept" test "$(field .kept)" = null
expect_exit 0 "plain output" $E --task tinystories_mc --task-file "$TS" --limit 7
check "plain output" contains "$TMP/out" "teacher  acc "
check "plain output items" contains "$TMP/out" "items 7"

# a hand-made task whose answers are known (see tests/test_tasks.c):
# acc 1/4, acc_norm 3/4, both standard errors 0.25
cat > "$TMP/known.jsonl" <<'EOF'
{"query": "Once upon a time, there was a little girl named Lily. She loved to play", "choices": ["outside with her friends.", "zqx vbnm kkkp wert."], "gold": 0}
{"query": "Tom went to the park with his mom. He saw a big", "choices": ["dog", "tree and he wanted to climb it, so he ran to it and said hello to his friend."], "gold": 1}
{"query": "The sun was shining and the birds were singing. Sam and his dog went for a", "choices": ["walk", "qqqq zzzz xxxx"], "gold": 1}

{"query": "Mia had a red ball. She liked to", "choices": ["play with it every day in the garden with her mom and dad.", "jump", "xkcd qwerty asdf zxcv poiu lkjh mnbv."], "gold": 0}
EOF
expect_exit 0 "known task" $E --task tinystories_mc --task-file "$TMP/known.jsonl" --json
check "known: 4 items" test "$(field .items)" = 4
check "known: acc 0.25" near "$(field .teacher.acc)" 0.25 1e-12
check "known: acc_norm 0.75" near "$(field .teacher.acc_norm)" 0.75 1e-12
check "known: acc stderr 0.25" near "$(field .teacher.acc_stderr)" 0.25 1e-12
check "known: acc_norm stderr 0.25" near "$(field .teacher.acc_norm_stderr)" 0.25 1e-12
expect_exit 0 "known task, --limit 1" $E --task tinystories_mc --task-file "$TMP/known.jsonl" --json --limit 1
check "one item: acc 1" near "$(field .teacher.acc)" 1 0
check "one item: stderr null" test "$(field .teacher.acc_stderr)" = null

# threads do not change results
expect_exit 0 "winogrande 1 thread" $E --task winogrande --task-file "$SHARED/data/tasks/winogrande.jsonl" --limit 60 --threads 1 --json
c1="$(field .teacher.correct) $(field .teacher.correct_norm)"
expect_exit 0 "winogrande 2 threads" $E --task winogrande --task-file "$SHARED/data/tasks/winogrande.jsonl" --limit 60 --threads 2 --json
c2="$(field .teacher.correct) $(field .teacher.correct_norm)"
check "1 and 2 threads agree ($c1 / $c2)" test "$c1" = "$c2"
check "winogrande: acc_norm = acc" test "$(field .teacher.acc)" = "$(field .teacher.acc_norm)"

# teacher and student side by side
expect_exit 0 "quantize" "$BIN" quantize --teacher "$M" --tokenizer "$Z" --out "$TMP/s.onebit"
expect_exit 0 "teacher + student" $E --student "$TMP/s.onebit" --task tinystories_mc --task-file "$TS" --limit 40 --json
check "both json parses" parses
t_acc=$(field .teacher.acc) s_acc=$(field .student.acc)
check "kept = student / teacher acc" near "$(field .kept.acc)" "$(awk -v s="$s_acc" -v t="$t_acc" 'BEGIN { printf "%.17g", s / t }')" 1e-12
check "kept acc_norm" near "$(field .kept.acc_norm)" "$(awk -v s="$(field .student.acc_norm)" -v t="$(field .teacher.acc_norm)" 'BEGIN { printf "%.17g", s / t }')" 1e-12
tc=$(field .teacher.correct)
expect_exit 0 "student alone" "$BIN" eval --student "$TMP/s.onebit" --task tinystories_mc --task-file "$TS" --limit 40 --json
check "student alone: no teacher" test "$(field .teacher)" = null
check "student alone = student beside the teacher" near "$(field .student.acc)" "$s_acc" 0
sc="$(field .student.correct) $(field .student.correct_norm)"
expect_exit 0 "student, 1 thread" "$BIN" eval --student "$TMP/s.onebit" --task tinystories_mc --task-file "$TS" --limit 40 --threads 1 --json
check "student: 1 and 2 threads agree" test "$(field .student.correct) $(field .student.correct_norm)" = "$sc"
expect_exit 0 "teacher + student plain" $E --student "$TMP/s.onebit" --task tinystories_mc --task-file "$TS" --limit 40
check "plain: keeps" contains "$TMP/out" "student keeps"
check "teacher correct is an integer ($tc)" test "$tc" -ge 0

# ---- results in the run store: the teacher's and a run's student's, side by side ----
X="$SHARED/data/tinystories_train_head_sample.txt"
head -c 40000 "$X" > "$TMP/small.txt"
expect_exit 0 "a short recorded run" "$BIN" train --teacher "$M" --tokenizer "$Z" --data "$TMP/small.txt" --steps 3 \
    --seq-len 32 --batch 2 --out "$TMP/run.onebit" --db "$TMP/runs.db" --name taskrun
expect_exit 2 "--db without --task" $E --text "$TMP/small.txt" --db "$TMP/runs.db"
expect_exit 2 "--run without --db" $E --student "$TMP/run.onebit" --task tinystories_mc --task-file "$TS" --limit 5 --run taskrun
expect_exit 1 "a student no run has" $E --student "$TMP/s.onebit" --task tinystories_mc --task-file "$TS" --limit 5 --db "$TMP/runs.db"
check "says which run is missing" contains "$TMP/err" "no run in the store has this student"
expect_exit 0 "recorded" $E --student "$TMP/run.onebit" --task tinystories_mc --task-file "$TS" --limit 20 --db "$TMP/runs.db" --json
st=$(field .student.acc)
check "recorded both" contains "$TMP/err" "recorded 2 results of tinystories_mc"
expect_exit 0 "the student alone, its run named" "$BIN" eval --student "$TMP/run.onebit" --task tinystories_mc --task-file "$TS" \
    --limit 20 --db "$TMP/runs.db" --run taskrun
expect_exit 0 "runs show" "$BIN" runs show taskrun --db "$TMP/runs.db"
check "runs show lists the tasks" contains "$TMP/out" "tasks        3"
check "the teacher's result" grep -q "tinystories_mc   teacher" "$TMP/out"
check "the share the student keeps" grep -q "tinystories_mc   student .* keeps" "$TMP/out"
expect_exit 0 "runs show --json" "$BIN" runs show taskrun --db "$TMP/runs.db" --json
first_task() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['tasks'][0][sys.argv[2]])" "$TMP/out" "$1"; }
check "json tasks" test "$(first_task task)" = tinystories_mc
check "the student's acc as recorded ($(first_task acc) = $st)" test "$(first_task acc)" = "$st"
# a student's perplexity on a text, recorded as an evaluation of its run; runs compare shows both
expect_exit 2 "--db with --text needs --student" $E --text "$TMP/small.txt" --db "$TMP/runs.db"
check "says what --db records" contains "$TMP/err" "record a student's perplexity (--student S) or task results"
expect_exit 0 "a student's perplexity recorded" "$BIN" eval --student "$TMP/run.onebit" --text "$X" --split '<|endoftext|>' \
    --db "$TMP/runs.db" --json
ppl=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ppl'])" "$TMP/out")
check "recorded at the run's last step" contains "$TMP/err" "recorded as an evaluation of run 1 'taskrun' at step 3"
expect_exit 0 "runs compare" "$BIN" runs compare taskrun --db "$TMP/runs.db" --json
check "compare: TinyStories ppl = eval's ($ppl), tinystories_mc acc = $st" python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))[0]
sys.exit(not (abs(r['tinystories_ppl'] - float(sys.argv[2])) < 1e-4 * float(sys.argv[2]) and r['tinystories_mc_acc'] == float(sys.argv[3])
              and r['steps'] == 3 and r['heldout_ppl'] > 1))" "$TMP/out" "$ppl" "$st"
done_tests
