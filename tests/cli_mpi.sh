#!/bin/sh
# cli_mpi.sh -- data-parallel `train` over Open MPI (src/train/dist.h), on
# stories260K: 2 ranks with --batch B write the student of 1 rank with
# --batch B --accum 2 byte for byte (the final summary line too), FP32 and
# BF16 moments, although with ZeRO-1 each rank keeps and updates only its
# slice of the moments (and says so: less training state per rank); a
# 2-rank checkpoint (rank 0 gathers the slices) resumes on 1 rank, and a
# 1-rank one on 2 ranks (each takes its slice), to the student of an
# uninterrupted run; a rank killed mid-run
# ends the job promptly with a non-zero exit and the last checkpoint valid
# (the recorded run shows as interrupted and resumes on 1 rank). SKIP (77)
# without --with-mpi or without mpirun; a build without MPI refuses to run
# as several ranks.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.bin models/tok512.bin data/tinystories_train_head_sample.txt
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not found (apt-get install openmpi-bin)"; exit 77; }
# root (CI containers) needs Open MPI's consent
OMPI_ALLOW_RUN_AS_ROOT=1; OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
MPI="mpirun --oversubscribe -np 2"
M="$SHARED/models/stories260K.bin"
Z="$SHARED/models/tok512.bin"
X="$SHARED/data/tinystories_train_head_sample.txt"
A="--teacher $M --tokenizer $Z --data $X --seq-len 32 --batch 2 --threads 1"
# a container where Open MPI cannot start two processes at all
$MPI true > "$TMP/mpi.err" 2>&1 || { echo "SKIP: '$MPI true' fails here: $(head -c 300 "$TMP/mpi.err")"; exit 77; }

if [ "${ONEBIT_MPI:-0}" != 1 ]; then
    # without MPI: refuse rather than run 2 independent copies on the same files
    expect_exit 1 "no-MPI build under mpirun" $MPI "$BIN" train $A --steps 2 --out "$TMP/x.onebit"
    check "no-MPI message" contains "$TMP/err" "built without MPI"
    done_tests || exit 1
    echo "SKIP: built without --with-mpi"
    exit 77
fi

# ---- 2 ranks --batch 2 == 1 rank --batch 2 --accum 2 ----
expect_exit 0 "1 rank --accum 2" "$BIN" train $A --steps 6 --accum 2 --out "$TMP/a.onebit"
cp "$TMP/out" "$TMP/a.log"
expect_exit 0 "2 ranks" $MPI "$BIN" train $A --steps 6 --out "$TMP/b.onebit"
cp "$TMP/out" "$TMP/b.log"
# the training state per rank: ZeRO-1 shards the moments, so 2 ranks hold less each
state_mib() { sed -n 's/^training state \([0-9.]*\) MiB.*/\1/p' "$1" | head -n 1; }
s1=$(state_mib "$TMP/a.log"); s2=$(state_mib "$TMP/b.log")
check "2 ranks: state printed per rank" contains "$TMP/b.log" "MiB per rank: 232340 trainable parameters"
check "2 ranks: moments sharded" contains "$TMP/b.log" "sharded over 2 ranks: ZeRO-1"
check "2 ranks: less state per rank ($s2 < $s1 MiB)" awk -v a="$s1" -v b="$s2" 'BEGIN { exit !(a > 0 && b > 0 && b < a) }'
check "2 ranks: global batch logged" contains "$TMP/b.log" "2 ranks x --batch 2 x --accum 1 = global batch of 4 sequences"
check "2 ranks: reduce-scatter time logged" contains "$TMP/b.log" "gradient reduce-scatter and parameter all-gather of"
check "2 ranks: same student bytes" cmp "$TMP/a.onebit" "$TMP/b.onebit"
grep "student (QAT)" "$TMP/a.log" > "$TMP/a.sum"
grep "student (QAT)" "$TMP/b.log" > "$TMP/b.sum"
check "2 ranks: same final loss line" sh -c "test -s '$TMP/a.sum' && cmp -s '$TMP/a.sum' '$TMP/b.sum'"
check "rank 1 is silent" sh -c "test \$(grep -c 'wrote $TMP/b.onebit' '$TMP/b.log') -eq 2" # the [finished] line and the summary, once each

# ---- a 2-rank checkpoint resumes on 1 rank (--accum 2) to the same student ----
# the same with BF16 AdamW moments: rank 0's moments go to the others at
# their stored size
expect_exit 0 "1 rank --accum 2, bf16 moments" "$BIN" train $A --steps 6 --accum 2 --optim-state bf16 --out "$TMP/a16.onebit"
expect_exit 0 "2 ranks, bf16 moments" $MPI "$BIN" train $A --steps 6 --optim-state bf16 --out "$TMP/b16.onebit"
check "2 ranks, bf16 moments: same student bytes" cmp "$TMP/a16.onebit" "$TMP/b16.onebit"
expect_exit 0 "2 ranks stop after 3" $MPI "$BIN" train $A --steps 6 --stop-after 3 --out "$TMP/c.onebit"
check "2 ranks: checkpoint written" test -s "$TMP/c.onebit.ckpt"
cp "$TMP/c.onebit.ckpt" "$TMP/c3.ckpt" # the resumed run below rewrites it at its end
expect_exit 0 "resume on 1 rank" "$BIN" train $A --steps 6 --accum 2 --resume "$TMP/c.onebit.ckpt" --out "$TMP/c.onebit"
check "resumed on 1 rank: same student bytes" cmp "$TMP/a.onebit" "$TMP/c.onebit"
# the same with BF16 moments, and the other way: a 1-rank checkpoint
# resumes on 2 ranks, each taking its slice of the moments
expect_exit 0 "2 ranks stop after 3, bf16" $MPI "$BIN" train $A --steps 6 --stop-after 3 --optim-state bf16 --out "$TMP/c16.onebit"
expect_exit 0 "resume on 1 rank, bf16" "$BIN" train $A --steps 6 --accum 2 --optim-state bf16 --resume "$TMP/c16.onebit.ckpt" --out "$TMP/c16.onebit"
check "resumed on 1 rank, bf16: same student bytes" cmp "$TMP/a16.onebit" "$TMP/c16.onebit"
expect_exit 0 "1 rank stops after 3" "$BIN" train $A --steps 6 --accum 2 --stop-after 3 --out "$TMP/e.onebit"
expect_exit 0 "resume on 2 ranks" $MPI "$BIN" train $A --steps 6 --resume "$TMP/e.onebit.ckpt" --out "$TMP/e.onebit"
check "resumed on 2 ranks: from the checkpoint" contains "$TMP/out" "resumed from $TMP/e.onebit.ckpt at step 3"
check "resumed on 2 ranks: same student bytes" cmp "$TMP/a.onebit" "$TMP/e.onebit"
expect_exit 0 "1 rank stops after 3, bf16" "$BIN" train $A --steps 6 --accum 2 --stop-after 3 --optim-state bf16 --out "$TMP/e16.onebit"
expect_exit 0 "resume on 2 ranks, bf16" $MPI "$BIN" train $A --steps 6 --optim-state bf16 --resume "$TMP/e16.onebit.ckpt" --out "$TMP/e16.onebit"
check "resumed on 2 ranks, bf16: same student bytes" cmp "$TMP/a16.onebit" "$TMP/e16.onebit"
# a 2-rank checkpoint holds the whole state: resumed on 2 ranks at step 3, the same student
expect_exit 0 "resume on 2 ranks from 2 ranks" $MPI "$BIN" train $A --steps 6 --resume "$TMP/c3.ckpt" --out "$TMP/f.onebit"
check "2 -> 2 ranks: from step 3" contains "$TMP/out" "resumed from $TMP/c3.ckpt at step 3"
check "2 -> 2 ranks: same student bytes" cmp "$TMP/a.onebit" "$TMP/f.onebit"
expect_exit 1 "resume on 1 rank without --accum 2" "$BIN" train $A --steps 6 --resume "$TMP/c.onebit.ckpt" --out "$TMP/d.onebit"
check "accum mismatch message" contains "$TMP/err" "--accum 2"

# ---- bench train on 2 ranks: ZeRO-1's step, the communication timed ----
expect_exit 0 "bench train on 2 ranks" $MPI "$BIN" bench train --teacher "$M" --batch 2 --seq-len 16 --steps 2 --threads 1 --peak-size 64 --json
check "bench train: one report (rank 0)" sh -c "test \$(grep -c '\"ranks\":2,' '$TMP/out') -eq 1"
check "bench train: communication timed" grep -q '"comm":{"ms":[0-9.]*,"pct":[0-9.]*}' "$TMP/out"
sb() { sed -n 's/.*"state_bytes":\([0-9]*\).*/\1/p' "$1"; }
s2=$(sb "$TMP/out")
expect_exit 0 "bench train on 1 rank" "$BIN" bench train --teacher "$M" --batch 2 --seq-len 16 --steps 2 --threads 1 --peak-size 64 --json
s1=$(sb "$TMP/out")
check "bench train: less state per rank on 2 ranks ($s2 < $s1 bytes)" test -n "$s1" -a -n "$s2" -a "$s2" -lt "$s1"

# ---- bench allreduce times the allreduce and ZeRO-1's reduce-scatter + all-gather ----
expect_exit 0 "bench allreduce on 2 ranks" $MPI "$BIN" bench allreduce --mib 1 --reps 2 --json
check "bench allreduce: both timed" grep -q '"ranks":2,"reps":2,"ms":[0-9.]*,"bus_gb_s":[0-9.]*,"zero_ms":[0-9.]*}' "$TMP/out"

# ---- a killed rank ends the job; the last checkpoint stays valid, the
# ---- recorded run shows as interrupted and resumes on 1 rank ----
rm -f "$TMP"/pid.*
$MPI sh -c 'echo $$ > "$0/pid.$OMPI_COMM_WORLD_RANK"; exec "$@"' "$TMP" \
    "$BIN" train $A --steps 120 --ckpt-every 2 --db "$TMP/runs.db" --name k --out "$TMP/k.onebit" > "$TMP/k.out" 2> "$TMP/k.err" &
job=$!
i=0
while [ ! -s "$TMP/k.onebit.ckpt" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
check "killed run: a checkpoint before the kill" test -s "$TMP/k.onebit.ckpt"
kill -9 "$(cat "$TMP/pid.1")" 2>/dev/null
i=0
while kill -0 $job 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 $job 2>/dev/null; then bad "killed run: mpirun still running 30 s after the kill"; kill $job; else ok; fi
rc=0; wait $job || rc=$?
check "killed run: non-zero exit ($rc)" test "$rc" -ne 0
# rank 0 may linger a moment as a zombie until it is reaped
i=0
until "$BIN" runs --db "$TMP/runs.db" 2>/dev/null | grep -q interrupted || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
check "killed run: shows as interrupted" sh -c "'$BIN' runs --db '$TMP/runs.db' | grep -q 'k .*interrupted'"
expect_exit 0 "killed run: resumes on 1 rank" "$BIN" train --db "$TMP/runs.db" --resume k --accum 2
check "killed run: resumed from the checkpoint" contains "$TMP/out" "resumed from $TMP/k.onebit.ckpt"
check "killed run: resumed to the end" test -s "$TMP/k.onebit"
check "killed run: finished in the store" sh -c "'$BIN' runs --db '$TMP/runs.db' | grep -q 'k .*finished'"

done_tests
