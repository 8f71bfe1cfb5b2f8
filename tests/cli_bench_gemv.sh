#!/bin/sh
# cli_bench_gemv.sh -- `bench gemv` / `bench membw`: options, usage errors,
# the --json keys, every kernel name (no timing thresholds: speed is reported,
# never tested).
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"

expect_exit 0 "bench gemv --help" "$BIN" bench gemv --help
check "help names --cold" contains "$TMP/out" "--cold"
expect_exit 2 "bad --rows" "$BIN" bench gemv --rows 0
expect_exit 2 "bad --batch" "$BIN" bench gemv --batch x
expect_exit 2 "unknown kernel" "$BIN" bench gemv --kernel nope
check "unknown kernel named" contains "$TMP/err" "nope"
expect_exit 2 "stray argument" "$BIN" bench gemv extra
expect_exit 2 "unknown --act" "$BIN" bench gemv --act int4
check "--act names the choices" contains "$TMP/err" "fp32 or int8"
expect_exit 0 "gemv --act int8" "$BIN" bench gemv --rows 33 --cols 600 --batch 5 --threads 2 --reps 3 --act int8 --json
check "json says int8" contains "$TMP/out" '"act":"int8"'
expect_exit 0 "gemv ONEBIT_ACT=int8" env ONEBIT_ACT=int8 "$BIN" bench gemv --rows 33 --cols 65 --reps 2 --json
check "ONEBIT_ACT is read" contains "$TMP/out" '"act":"int8"'
expect_exit 0 "gemv bad ONEBIT_ACT" env ONEBIT_ACT=int3 "$BIN" bench gemv --rows 33 --cols 65 --reps 2 --json
check "bad ONEBIT_ACT warns" contains "$TMP/err" "ONEBIT_ACT=int3"
check "bad ONEBIT_ACT falls back to fp32" contains "$TMP/out" '"act":"fp32"'
# a kernel without an int8 variant (avx2flip): the reference runs it, with a
# warning, and the report says so; avx2 has its own
rc=0
"$BIN" bench gemv --rows 20 --cols 70 --reps 2 --kernel avx2flip --act int8 >"$TMP/out" 2>"$TMP/err" || rc=$?
if [ $rc -eq 2 ] && contains "$TMP/err" "not available"; then echo "kernel avx2flip not available here"; else
    check "avx2flip int8 runs (exit $rc)" [ $rc -eq 0 ]
    check "avx2flip int8 warns" contains "$TMP/err" "no int8-activation variant"
    check "avx2flip int8 reports ref" contains "$TMP/out" "kernel=ref act=int8"
    expect_exit 0 "avx2 int8" "$BIN" bench gemv --rows 20 --cols 70 --reps 2 --kernel avx2 --act int8
    check "avx2 int8 is its own" contains "$TMP/out" "kernel=avx2 act=int8"
    check "avx2 int8 does not warn" test "$(grep -c 'no int8-activation variant' "$TMP/err")" = 0
fi

# a kernel with an int8 variant of its own, where the CPU has it: it runs,
# reports itself and warns of nothing (else "not available")
own_int8() {
    k=$1; shift
    rc=0
    "$BIN" bench gemv --reps 2 --kernel $k --act int8 "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    if [ $rc -eq 2 ] && contains "$TMP/err" "not available"; then echo "kernel $k not available here"; return; fi
    check "$k int8 runs (exit $rc)" [ $rc -eq 0 ]
    check "$k int8 is its own" contains "$TMP/out" "kernel=$k act=int8"
    check "$k int8 does not warn" test "$(grep -c 'warning' "$TMP/err")" = 0
}
# avx512vnni (only with AVX512_VNNI), at N > 1; avx512amx (only with usable
# AMX-INT8 that passed its self-test; with a failed self-test it says so)
own_int8 avx512vnni --rows 20 --cols 70 --batch 3
own_int8 avx512amx --rows 40 --cols 1100 --batch 19
expect_exit 0 "gemv json" "$BIN" bench gemv --rows 33 --cols 65 --batch 3 --threads 2 --reps 3 --json
for key in rows cols batch threads cold kernel act onebit_ms sgemv_ms ratio; do
    check "json has $key" contains "$TMP/out" "\"$key\":"
done
check "json rows" contains "$TMP/out" '"rows":33,"cols":65,"batch":3,"threads":2,"cold":false'
for k in ref avx2 avx2flip avx512 avx512mask avx512vnni avx512amx; do
    rc=0
    "$BIN" bench gemv --rows 20 --cols 70 --reps 2 --kernel $k >"$TMP/out" 2>"$TMP/err" || rc=$?
    if [ $rc -eq 2 ] && contains "$TMP/err" "not available"; then echo "kernel $k not available here"; continue; fi
    check "kernel $k runs (exit $rc)" [ $rc -eq 0 ]
    check "kernel $k reported" contains "$TMP/out" "kernel=$k"
done
expect_exit 0 "membw json" "$BIN" bench membw --mib 8 --chunk 2 --reps 4 --threads 2 --json
check "membw gb_s" contains "$TMP/out" '"gb_s":'
expect_exit 2 "membw bad --mib" "$BIN" bench membw --mib -3
for d in q4_k q6_k q5_0; do
    expect_exit 0 "dequant $d" "$BIN" bench dequant --dtype $d --mib 1 --reps 2 --json
    D=$(echo $d | tr a-z A-Z)
    check "dequant $d json" contains "$TMP/out" "\"dtype\":\"$D\",\"weights\":262144,\"reps\":2"
done
expect_exit 0 "dequant ONEBIT_KERNEL=ref" env ONEBIT_KERNEL=ref "$BIN" bench dequant --dtype q6_k --mib 1 --reps 1
check "dequant names the reference" contains "$TMP/out" "kernel=ref"
expect_exit 2 "dequant bad --dtype" "$BIN" bench dequant --dtype q3_k
check "dequant names the types" contains "$TMP/err" "q4_k"
# bench ops: the clock, and on AVX-512 CPUs the permute and sum rates
expect_exit 0 "ops json" "$BIN" bench ops --reps 1 --json
check "ops gives the clock" contains "$TMP/out" '"ghz":'
if grep -q avx512bw /proc/cpuinfo 2>/dev/null; then
    check "ops measures vpermt2w" contains "$TMP/out" '"op":"vpermt2w zmm","per_ns":'
    check "ops measures the mix" contains "$TMP/out" '"op":"vpermt2w + vpaddw"'
fi
expect_exit 2 "ops bad --reps" "$BIN" bench ops --reps 0
done_tests
