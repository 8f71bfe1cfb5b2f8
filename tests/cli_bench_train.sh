#!/bin/sh
# cli_bench_train.sh -- `bench train`: usage errors, a tiny random model's
# JSON report (no timing assertions), the default teacher when present.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"

expect_exit 0 "bench train --help" "$BIN" bench train --help
check "help names --random-model" contains "$TMP/out" "--random-model"
expect_exit 2 "bad --batch" "$BIN" bench train --batch 0
expect_exit 2 "bad --steps" "$BIN" bench train --steps x
expect_exit 2 "bad --random-model" "$BIN" bench train --random-model 12,20
check "random-model usage named" contains "$TMP/err" "dim,hidden,layers,heads,kv_heads,vocab"
expect_exit 2 "heads not dividing dim" "$BIN" bench train --random-model 13,20,2,3,1,37
expect_exit 2 "teacher and random model" "$BIN" bench train --teacher x --random-model 12,20,2,3,1,37
expect_exit 1 "missing teacher" "$BIN" bench train --teacher "$TMP/nope.bin"
check "error names the file" contains "$TMP/err" "$TMP/nope.bin"
expect_exit 0 "tiny random model" "$BIN" bench train --random-model 12,20,2,3,1,37 --batch 2 --seq-len 7 --steps 2 --peak-size 64 --json
check "json tok_s" contains "$TMP/out" '"tok_s":'
check "json fraction" contains "$TMP/out" '"fraction":'
check "json shape" contains "$TMP/out" '"dim":12,"hidden":20,"layers":2,"heads":3,"kv_heads":1,"vocab":37,"batch":2,"seq_len":7'
# the phase split: every phase named, with its median ms and share; the shares add up to 100%
for ph in teacher student_forward loss backward optimizer comm; do
    check "json phase $ph" grep -q "\"$ph\":{\"ms\":[0-9.]*,\"pct\":[0-9.]*}" "$TMP/out"
done
check "json one rank" contains "$TMP/out" '"ranks":1,'
ns=$(grep -o '"pct":[0-9.]*' "$TMP/out" | cut -d: -f2 | awk '{ s += $1; n++ } END { print n, s }')
check "json: 6 shares summing to 100% ($ns)" awk -v n="${ns% *}" -v s="${ns#* }" 'BEGIN { exit !(n == 6 && s > 99.9 && s < 100.1) }'
expect_exit 0 "bf16 moments" "$BIN" bench train --random-model 12,20,2,3,1,37 --batch 2 --seq-len 7 --steps 2 --peak-size 64 --json --optim-state bf16
check "json optim_state" contains "$TMP/out" '"optim_state":"bf16"'
expect_exit 0 "a mixture of scales" "$BIN" bench train --random-model 12,20,2,3,1,37 --batch 2 --seq-len 7 --steps 2 --peak-size 64 --json --mos 3
check "json mos" contains "$TMP/out" '"mos":3,'
# the experts: OneBit's 2560 (W 1104 + g, h 176 per layer) and per layer
# (E - 1) x sum(in + out) more g, h experts + E x sum(in) router weights:
# 2 x 176 + 3 x 92 = 628, two layers
check "json: the experts' parameters" contains "$TMP/out" '"trainable_params":3816,'
expect_exit 2 "one expert" "$BIN" bench train --random-model 12,20,2,3,1,37 --mos 1
check "mos message" contains "$TMP/err" "--mos must be 0 (off) or 2 to 64"
expect_exit 0 "text report" "$BIN" bench train --random-model 12,20,2,3,1,37 --batch 2 --seq-len 7 --steps 2 --peak-size 64
check "training state first" contains "$TMP/out" "training state"
check "bytes per parameter" contains "$TMP/out" "at 16 bytes each"
check "text phase split" contains "$TMP/out" "per step (medians over 1 rank): teacher forward"
for ph in "student forward" "loss" "backward" "optimizer (clip, AdamW)" "communication"; do
    check "text phase $ph" contains "$TMP/out" ", $ph "
done
expect_exit 1 "too big for this machine" "$BIN" bench train --random-model 12,20,2,3,1,37000 --batch 4096 --seq-len 4096 --steps 1
check "refusal names --batch" contains "$TMP/err" "--batch"
if [ -n "$SHARED" ] && [ -e "$SHARED/models/stories260K.bin" ]; then
    expect_exit 0 "stories260K" "$BIN" bench train --teacher "$SHARED/models/stories260K.bin" --batch 2 --seq-len 16 --steps 2 --peak-size 64
    check "text report" contains "$TMP/out" "tok/s"
fi
done_tests
