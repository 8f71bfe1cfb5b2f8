#!/bin/sh
# cli_eval.sh -- `eval` reproduces the reference NLLs of PROVENANCE.md.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.bin models/tok512.bin data/tinystories_train_head_sample.txt data/wiki.test.raw
M="$SHARED/models/stories260K.bin"
Z="$SHARED/models/tok512.bin"

near() { # near GOT WANT TOL
    awk -v g="$1" -v w="$2" -v t="$3" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= t) }'
}
field() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" "$TMP/out"; }

expect_exit 0 "stories" "$BIN" eval --teacher "$M" --tokenizer "$Z" --json --split '<|endoftext|>' --seq-len 512 \
    --text "$SHARED/data/tinystories_train_head_sample.txt"
check "stories NLL 1.505659 (got $(field nll))" near "$(field nll)" 1.505659 1e-4
check "stories tokens 127850" test "$(field tokens)" = 127850
head -c 20000 "$SHARED/data/wiki.test.raw" > "$TMP/wiki20k.txt"
expect_exit 0 "wiki" "$BIN" eval --teacher "$M" --tokenizer "$Z" --json --seq-len 512 --text "$TMP/wiki20k.txt"
check "wiki NLL 4.702608 (got $(field nll))" near "$(field nll)" 4.702608 1e-4
check "wiki tokens 12333" test "$(field tokens)" = 12333
check "ppl = exp(nll)" near "$(field ppl)" 110.234275 1e-2
expect_exit 0 "plain output" "$BIN" eval --teacher "$M" --tokenizer "$Z" --seq-len 512 --text "$TMP/wiki20k.txt"
check "plain output has nll" contains "$TMP/out" "nll 4.7026"
: > "$TMP/empty.txt"
expect_exit 1 "empty text" "$BIN" eval --teacher "$M" --tokenizer "$Z" --text "$TMP/empty.txt"
check "empty text message" contains "$TMP/err" "no token to predict"
expect_exit 1 "seq-len too long" "$BIN" eval --teacher "$M" --tokenizer "$Z" --text "$TMP/wiki20k.txt" --seq-len 4096
check "seq-len message" contains "$TMP/err" "context 512"
expect_exit 1 "missing text" "$BIN" eval --teacher "$M" --tokenizer "$Z" --text "$TMP/none.txt"
done_tests
