#!/bin/sh
# cli_sweep.sh -- `train --sweep`: usage errors queue nothing; a 2x2 grid on
# stories260K is queued as pending runs named BASE-KEY=V-KEY2=V, trained
# one after another (each a normal recorded run with its own student), and
# `runs compare --sweep` reads it back.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.bin models/tok512.bin
M="$SHARED/models/stories260K.bin"
Z="$SHARED/models/tok512.bin"
T="--teacher $M --tokenizer $Z"
DB="$TMP/runs.db"
A="--self-generate 40 --steps 3 --seq-len 32 --batch 2 --log-every 1 --threads 1"

# ---- usage errors: exit 2, nothing queued ----
expect_exit 2 "sweep without db" "$BIN" train $T $A --sweep 'lr=0.001,0.002'
check "needs --db" contains "$TMP/err" "--sweep needs --db"
expect_exit 2 "sweep with out" "$BIN" train $T $A --db "$DB" --out "$TMP/x.onebit" --sweep 'lr=0.001,0.002'
check "no --out" contains "$TMP/err" "no --resume, --out or --ckpt"
expect_exit 2 "unknown key" "$BIN" train $T $A --db "$DB" --sweep 'frob=1,2'
check "unknown key message" contains "$TMP/err" "'frob' is not a training option a sweep can vary"
expect_exit 2 "preset is no sweep key" "$BIN" train $T $A --db "$DB" --sweep 'preset=onebit,best'
check "preset key message" contains "$TMP/err" "'preset' is not a training option a sweep can vary"
expect_exit 2 "no values" "$BIN" train $T $A --db "$DB" --sweep 'lr='
check "no values message" contains "$TMP/err" "'lr' has no values"
expect_exit 2 "not KEY=V" "$BIN" train $T $A --db "$DB" --sweep 'lr'
expect_exit 2 "key twice" "$BIN" train $T $A --db "$DB" --sweep 'lr=1;lr=2'
expect_exit 2 "a bad value in the grid" "$BIN" train $T $A --db "$DB" --sweep 'lr=0.001,abc'
check "bad value names the option" contains "$TMP/err" "--lr needs a number"
expect_exit 2 "a bad ste in the grid" "$BIN" train $T $A --db "$DB" --sweep 'ste=onebit,smooth:0'
check "bad ste message" contains "$TMP/err" "run sweep-ste=smooth:0: --ste"
expect_exit 0 "nothing was queued" "$BIN" runs list --db "$DB"
check "empty store" contains "$TMP/out" "no runs recorded"

# ---- a 2x2 grid ----
expect_exit 0 "sweep" "$BIN" train $T $A --db "$DB" --name sw --sweep 'ste=onebit,clip;lr=0.002,0.004'
cp "$TMP/out" "$TMP/sweep.out"
check "4 runs queued" contains "$TMP/sweep.out" "sweep 'sw': 4 runs queued"
check "last run announced" contains "$TMP/sweep.out" "run 4 of 4: sw-ste=clip-lr=0.004"
check "a queued run is started" contains "$TMP/sweep.out" "starting the queued run"
check "four students" test "$(grep -c '^wrote ' "$TMP/sweep.out")" = 4
for n in sw-ste=onebit-lr=0.002 sw-ste=onebit-lr=0.004 sw-ste=clip-lr=0.002 sw-ste=clip-lr=0.004; do
    check "student of $n" test -s "$(ls "$TMP"/students/$n-*.onebit)"
done
expect_exit 0 "runs list" "$BIN" runs list --db "$DB"
check "all finished" test "$(grep -c 'finished *3/3' "$TMP/out")" = 4
expect_exit 0 "compare" "$BIN" runs compare --db "$DB" --sweep sw
cp "$TMP/out" "$TMP/cmp.out"
check "compare header" contains "$TMP/cmp.out" "HELD-OUT PPL"
check "compare: 4 rows of 3 steps" test "$(grep -c ' finished  *3 ' "$TMP/cmp.out")" = 4
check "compare shows the varied options" grep -q '^sw-ste=clip-lr=0.004  *0.004  *clip  *finished' "$TMP/cmp.out"
expect_exit 0 "compare --json" "$BIN" runs compare --db "$DB" --sweep sw --json
check "json options" contains "$TMP/out" '"options":{"lr":"0.004","ste":"clip"},"steps":3,"heldout_ppl":'
# a name in use: refused before training, and nothing of it stays queued
expect_exit 1 "a sweep name in use" "$BIN" train $T $A --db "$DB" --name sw --sweep 'ste=smooth:3,onebit;lr=0.002'
check "name in use message" contains "$TMP/err" "'sw-ste=onebit-lr=0.002' exists already"
expect_exit 0 "runs list after" "$BIN" runs list --db "$DB"
check "its first run was taken back" test "$(grep -c 'sw-ste=smooth' "$TMP/out")" = 0
done_tests
