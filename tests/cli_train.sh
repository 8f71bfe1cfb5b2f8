#!/bin/sh
# cli_train.sh -- `train`: bad flags (exit 2), bad data (exit 1), a short run
# on stories260K that lowers the loss and beats the SVID PTQ student on the
# held-out split, stop + resume == straight run (byte-identical .onebit),
# self-generation cache reuse, --mos recorded and its student evaluated,
# SIGINT = checkpoint + exit 130.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.bin models/tok512.bin data/tinystories_train_head_sample.txt
M="$SHARED/models/stories260K.bin"
Z="$SHARED/models/tok512.bin"
X="$SHARED/data/tinystories_train_head_sample.txt"
T="--teacher $M --tokenizer $Z"
S='<|endoftext|>'

# ---- usage errors: exit 2 ----
expect_exit 2 "no data" "$BIN" train $T --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit"
check "no data message" contains "$TMP/err" "--data FILE or --self-generate"
expect_exit 2 "both data kinds" "$BIN" train $T --data "$X" --self-generate 10 --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit"
expect_exit 2 "split without data" "$BIN" train $T --self-generate 10 --split x --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit"
expect_exit 2 "no steps" "$BIN" train $T --data "$X" --seq-len 32 --batch 2 --out "$TMP/s.onebit"
check "steps message" contains "$TMP/err" "--steps S is required (or a time budget: --time D)"
expect_exit 2 "no out" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2
expect_exit 2 "bad lr" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit" --lr abc
check "lr message" contains "$TMP/err" "--lr"
expect_exit 2 "zero lr" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit" --lr 0
expect_exit 2 "bad init" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit" --init pca
check "init message" contains "$TMP/err" "nmf, svd, xnor, sign or arb"
expect_exit 2 "bad optim-state" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit" --optim-state fp16
check "optim-state choices named" contains "$TMP/err" "fp32 or bf16"
expect_exit 2 "bad batch" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 0 --out "$TMP/s.onebit"
expect_exit 2 "warmup > steps" "$BIN" train $T --data "$X" --steps 5 --warmup 9 --seq-len 32 --batch 2 --out "$TMP/s.onebit"
expect_exit 2 "bad ste" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit" --ste smooth:0
check "ste message" contains "$TMP/err" "smooth:A needs a number A > 0"
expect_exit 2 "unknown ste" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit" --ste sigmoid
check "ste choices named" contains "$TMP/err" "onebit (1.001-tanh^2(W)), tanh (1-tanh^2(W)), smooth:A"
expect_exit 2 "one expert" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit" --mos 1
check "mos message" contains "$TMP/err" "--mos must be 0 (off) or 2 to 64 experts, not 1"
expect_exit 2 "too many experts" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit" --mos 65
check "mos range message" contains "$TMP/err" "--mos"
expect_exit 2 "bad time" "$BIN" train $T --data "$X" --seq-len 32 --batch 2 --out "$TMP/s.onebit" --time 10x
check "time message" contains "$TMP/err" "--time needs a duration such as 90s"
expect_exit 2 "zero time" "$BIN" train $T --data "$X" --seq-len 32 --batch 2 --out "$TMP/s.onebit" --time 0s
expect_exit 2 "unknown option" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit" --frobnicate
expect_exit 2 "missing value" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out
expect_exit 2 "stray argument" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit" extra
expect_exit 0 "help" "$BIN" train --help
check "help mentions --resume" contains "$TMP/out" "--resume CKPT"

# ---- bad data: exit 1 ----
: > "$TMP/empty.txt"
expect_exit 1 "empty data" "$BIN" train $T --data "$TMP/empty.txt" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit"
check "empty message" contains "$TMP/err" "empty"
echo "Once upon a time there was a cat." > "$TMP/short.txt"
expect_exit 1 "short data" "$BIN" train $T --data "$TMP/short.txt" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit"
check "short message" contains "$TMP/err" "fewer than two windows"
# outputs that cannot be written fail before any data is read or generated
expect_exit 1 "unwritable student directory" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/no/such/dir/s.onebit"
check "it names the directory" contains "$TMP/err" "cannot write into directory $TMP/no/such/dir"
expect_exit 1 "unwritable data cache" "$BIN" train $T --self-generate 100000 --data-cache "$TMP/no/such/cache" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit"
check "it names the cache's parent" contains "$TMP/err" "cannot write into directory $TMP/no/such:"
expect_exit 1 "one document" "$BIN" train $T --data "$TMP/short.txt" --split "$S" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit"
check "one document message" contains "$TMP/err" "1 document"
expect_exit 1 "seq-len above context" "$BIN" train $T --data "$X" --steps 5 --seq-len 1024 --batch 2 --out "$TMP/s.onebit"
check "context message" contains "$TMP/err" "context 512"
expect_exit 1 "missing data" "$BIN" train $T --data "$TMP/none.txt" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit"
expect_exit 1 "missing resume" "$BIN" train $T --data "$X" --split "$S" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit" --resume "$TMP/none.ckpt"
check "resume message" contains "$TMP/err" "none.ckpt"
expect_exit 1 "unwritable out" "$BIN" train $T --data "$X" --split "$S" --steps 5 --seq-len 32 --batch 2 --out "$TMP/nodir/s.onebit"
check "unwritable out message" contains "$TMP/err" "nodir"
expect_exit 1 "bad teacher" "$BIN" train --teacher "$TMP/short.txt" --tokenizer "$Z" --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit"

# ---- a short run: the loss falls, the student beats PTQ SVID ----
head -c 150000 "$X" > "$TMP/stories.txt"  # the file is 261693 bytes
expect_exit 0 "short run" "$BIN" train $T --data "$TMP/stories.txt" --split "$S" --steps 60 --seq-len 64 --batch 4 \
    --log-every 10 --eval-every 30 --out "$TMP/run.onebit"
cp "$TMP/out" "$TMP/run.out"
check "progress lines" contains "$TMP/run.out" "step 60/60 loss"
check "eval lines" contains "$TMP/run.out" "eval step 30: held-out student nll"
check "student written" test -s "$TMP/run.onebit"
check "checkpoint written" test -s "$TMP/run.onebit.ckpt"
nll() { awk -v k="$1" 'index($0, k) == 3 { for (i = 1; i <= NF; i++) if ($i == "nll") { print $(i + 1); exit } }' "$TMP/run.out"; }
first=$(awk '/^step 10\/60/ { print $4 }' "$TMP/run.out")
last=$(awk '/^step 60\/60/ { print $4 }' "$TMP/run.out")
check "loss falls clearly ($first -> $last)" awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < 0.75 * a) }'
svid=$(nll "PTQ SVID")
qat=$(nll "student (QAT)")
teach=$(nll "teacher")
check "student ($qat) beats PTQ SVID ($svid)" awk -v a="$qat" -v b="$svid" 'BEGIN { exit !(a + 0 > 0 && a < b) }'
check "teacher ($teach) beats the student ($qat)" awk -v a="$teach" -v b="$qat" 'BEGIN { exit !(a + 0 > 0 && a < b) }'

# ---- stop after 25 + resume == 60 straight (same .onebit bytes) ----
expect_exit 0 "stop after 25" "$BIN" train $T --data "$TMP/stories.txt" --split "$S" --steps 60 --seq-len 64 --batch 4 \
    --log-every 10 --eval-every 30 --out "$TMP/res.onebit" --stop-after 25
check "stopped message" contains "$TMP/err" "resume with --resume"
check "no student before the end" test ! -e "$TMP/res.onebit"
expect_exit 0 "resume" "$BIN" train $T --data "$TMP/stories.txt" --split "$S" --steps 60 --seq-len 64 --batch 4 \
    --log-every 10 --eval-every 30 --out "$TMP/res.onebit" --resume "$TMP/res.onebit.ckpt"
check "resumed at 25" contains "$TMP/out" "at step 25"
check "resume gives the straight run's student, byte for byte" cmp -s "$TMP/run.onebit" "$TMP/res.onebit"
grep '^step 60/60' "$TMP/run.out" | sed 's/ tok\/s.*//' > "$TMP/a60"
grep '^step 60/60' "$TMP/out" | sed 's/ tok\/s.*//' > "$TMP/b60"
check "same last loss line" cmp -s "$TMP/a60" "$TMP/b60"
expect_exit 1 "resume with another batch" "$BIN" train $T --data "$TMP/stories.txt" --split "$S" --steps 60 --seq-len 64 --batch 3 \
    --out "$TMP/res2.onebit" --resume "$TMP/res.onebit.ckpt"
check "batch mismatch message" contains "$TMP/err" "--batch"
expect_exit 1 "resume on other data" "$BIN" train $T --data "$X" --split "$S" --steps 60 --seq-len 64 --batch 4 \
    --out "$TMP/res2.onebit" --resume "$TMP/res.onebit.ckpt"
check "data mismatch message" contains "$TMP/err" "other data"

# ---- --time: a tiny budget ends the run with its student, in fewer steps
# than --steps allows; the plan and the options are recorded ----
expect_exit 0 "time budget" "$BIN" train $T --data "$TMP/stories.txt" --split "$S" --time 1s --steps 1000000 --seq-len 64 \
    --batch 4 --log-every 100000 --ste smooth:3 --out "$TMP/time.onebit" --db "$TMP/time.db" --name timed
cp "$TMP/out" "$TMP/time.out"
check "the plan is logged" contains "$TMP/time.out" "time budget 1s: a step takes about"
planned=$(sed -n 's/.*laid over \([0-9]*\) steps.*/\1/p' "$TMP/time.out")
ran=$(sed -n 's/.*student (QAT).*(\([0-9]*\) steps.*/\1/p' "$TMP/time.out")
check "planned ($planned) and ran ($ran) at least 1, fewer than --steps, ran <= planned" \
    awk -v p="$planned" -v r="$ran" 'BEGIN { exit !(p >= 1 && r >= 1 && p < 1000000 && r <= p) }'
check "the last step is logged" grep -q "^step $ran/$planned loss" "$TMP/time.out"
check "timed student written" test -s "$TMP/time.onebit"
check "timed checkpoint written" test -s "$TMP/time.onebit.ckpt"
expect_exit 0 "runs show the timed run" "$BIN" runs show timed --db "$TMP/time.db" --json
check "--time recorded" contains "$TMP/out" '"time":"1s"'
check "--ste recorded" contains "$TMP/out" '"ste":"smooth:3"'
check "steps recorded ($ran/$planned)" contains "$TMP/out" "\"steps_done\":$ran,\"total_steps\":$planned"
check "finished in the budget" contains "$TMP/out" "finished $ran steps in the time budget"

# a budget that fits --steps: the plan is --steps, and the timing probe
# leaves the training alone (the same student as a plain run, byte for
# byte); a stopped timed run resumes with its checkpoint's plan
B3="--data $TMP/stories.txt --seq-len 64 --batch 4 --log-every 10"
expect_exit 0 "plain 30 steps" "$BIN" train $T $B3 --split "$S" --steps 30 --out "$TMP/p30.onebit"
expect_exit 0 "1h budget, at most 30 steps" "$BIN" train $T $B3 --split "$S" --time 1h --steps 30 --out "$TMP/t30.onebit"
check "the plan is --steps" contains "$TMP/out" "the schedule is laid over 30 steps"
check "timed = plain, byte for byte" cmp -s "$TMP/p30.onebit" "$TMP/t30.onebit"
expect_exit 0 "timed, stopped at 12" "$BIN" train $T $B3 --split "$S" --time 1h --steps 30 --out "$TMP/r30.onebit" --stop-after 12
expect_exit 0 "timed, resumed without --steps" "$BIN" train $T $B3 --split "$S" --time 1h --out "$TMP/r30.onebit" \
    --resume "$TMP/r30.onebit.ckpt"
check "resumed at 12 with the plan of 30" contains "$TMP/out" "step 30/30 loss"
check "stop + resume = straight, byte for byte" cmp -s "$TMP/p30.onebit" "$TMP/r30.onebit"

# ---- --preset: recorded with its values; the command line overrides them ----
expect_exit 2 "unknown preset" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit" --preset fast
check "preset message" contains "$TMP/err" "--preset must be onebit or best, not 'fast'"
expect_exit 2 "preset with resume" "$BIN" train $T --data "$X" --steps 5 --seq-len 32 --batch 2 --out "$TMP/s.onebit" \
    --preset best --resume "$TMP/none.ckpt"
check "preset with resume message" contains "$TMP/err" "a resumed run keeps its options"
for p in onebit best best-lr; do
    extra=
    [ $p = best-lr ] && extra="--lr 0.001"
    expect_exit 0 "preset $p" "$BIN" train $T --data "$TMP/stories.txt" --split "$S" --steps 2 --seq-len 32 --batch 2 \
        --out "$TMP/p-$p.onebit" --db "$TMP/time.db" --name "p-$p" --preset "${p%-lr}" $extra
done
expect_exit 0 "compare the presets" "$BIN" runs compare p-onebit p-best p-best-lr --db "$TMP/time.db" --json
check "onebit: the defaults" contains "$TMP/out" '"name":"p-onebit","status":"finished","options":{"preset":"onebit","lr":"0.002","kl-scale":"0.01"}'
check "best: lr 0.016, kl-scale 0.05" contains "$TMP/out" '"name":"p-best","status":"finished","options":{"preset":"best","lr":"0.016","kl-scale":"0.05"}'
check "best --lr 0.001: the command line wins" contains "$TMP/out" '"options":{"preset":"best","lr":"0.001","kl-scale":"0.05"}'

# ---- --mos: a mixture of scales, recorded; its student evaluates ----
expect_exit 0 "a mixture of scales" "$BIN" train $T --data "$TMP/stories.txt" --split "$S" --steps 4 --seq-len 32 --batch 2 \
    --mos 2 --out "$TMP/mos.onebit" --db "$TMP/time.db" --name mos2
check "the MoS student trained" contains "$TMP/out" "student (QAT)"
expect_exit 0 "runs show mos2" "$BIN" runs show mos2 --db "$TMP/time.db" --json
check "--mos recorded" contains "$TMP/out" '"mos":2'
expect_exit 0 "eval the MoS student" "$BIN" eval --student "$TMP/mos.onebit" --text "$TMP/stories.txt" --split "$S" --seq-len 64 --json
check "its perplexity" contains "$TMP/out" '"ppl":'
expect_exit 0 "the MoS student with int8 activations" "$BIN" eval --student "$TMP/mos.onebit" --text "$TMP/stories.txt" \
    --split "$S" --seq-len 64 --act int8 --json
check "its int8 perplexity" contains "$TMP/out" '"ppl":'
expect_exit 1 "no bitllama checkpoint of a MoS student" "$BIN" export --format bitllama-inf --student "$TMP/mos.onebit" --out "$TMP/mos-inf"
check "the export says why" contains "$TMP/err" "a mixture of 2 scales (train --mos)"

# ---- self-generation: cached and reused ----
mkdir "$TMP/cache"
expect_exit 0 "self-generate" "$BIN" train $T --self-generate 24 --data-cache "$TMP/cache" --steps 3 --seq-len 64 --batch 2 --out "$TMP/g.onebit"
check "cache written" contains "$TMP/out" "cached in"
check "one cache file" test "$(ls "$TMP/cache" | grep -c '^selfgen-.*-s1-n24-l64\.tok$')" = 1
cp "$TMP/out" "$TMP/g1.out"
expect_exit 0 "self-generate again" "$BIN" train $T --self-generate 24 --data-cache "$TMP/cache" --steps 3 --seq-len 64 --batch 2 --out "$TMP/g2.onebit"
check "cache reused" contains "$TMP/out" "reused"
check "same student from the cache" cmp -s "$TMP/g.onebit" "$TMP/g2.onebit"
f=$(ls "$TMP/cache"/selfgen-*.tok)
printf 'X' | dd of="$f" bs=1 seek=200 conv=notrunc 2>/dev/null
expect_exit 1 "corrupt cache" "$BIN" train $T --self-generate 24 --data-cache "$TMP/cache" --steps 3 --seq-len 64 --batch 2 --out "$TMP/g3.onebit"
check "corrupt cache message" contains "$TMP/err" "checksum"

# ---- SIGINT: finish the step, checkpoint, exit 130 ----
"$BIN" train $T --data "$TMP/stories.txt" --split "$S" --steps 100000 --seq-len 64 --batch 4 \
    --out "$TMP/int.onebit" > "$TMP/int.out" 2> "$TMP/int.err" &
pid=$!
i=0
while [ $i -lt 600 ] && ! grep -q '^step 2/' "$TMP/int.out" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
rc=0
wait $pid || rc=$?
check "SIGINT exits 130 (got $rc)" test "$rc" = 130
check "SIGINT message" contains "$TMP/int.err" "interrupt"
check "SIGINT checkpoint" test -s "$TMP/int.onebit.ckpt"
check "SIGINT summary" contains "$TMP/int.out" "student (QAT)"
check "SIGINT checkpoint resumes" "$BIN" train $T --data "$TMP/stories.txt" --split "$S" --steps 100000 --seq-len 64 --batch 4 \
    --out "$TMP/int.onebit" --resume "$TMP/int.onebit.ckpt" --stop-after 3 > /dev/null 2>&1
done_tests
