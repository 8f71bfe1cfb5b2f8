#!/bin/sh
# cli_generate.sh -- `generate` prints exactly what llama2.c's run prints
# (greedy and seeded top-p sampling), golden files in tests/golden/.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.bin models/tok512.bin
M="$SHARED/models/stories260K.bin"
Z="$SHARED/models/tok512.bin"

expect_exit 0 "greedy" "$BIN" generate --teacher "$M" --tokenizer "$Z" --temp 0 -n 256
check "greedy text equals llama2.c" cmp -s "$TMP/out" "$SRCDIR/tests/golden/stories260K_greedy.txt"
check "tok/s on stderr" contains "$TMP/err" "achieved tok/s"
expect_exit 0 "prompted greedy" "$BIN" generate --teacher "$M" --tokenizer "$Z" --temp 0 -n 252 --prompt "Once upon a time"
check "prompted greedy equals llama2.c -i" cmp -s "$TMP/out" "$SRCDIR/tests/golden/stories260K_greedy.txt"
expect_exit 0 "sampled" "$BIN" generate --teacher "$M" --tokenizer "$Z" --temp 1.0 --top-p 0.9 --seed 133742 -n 256
check "seeded top-p text equals llama2.c" cmp -s "$TMP/out" "$SRCDIR/tests/golden/stories260K_t1_p09_s133742.txt"
expect_exit 0 "-n 5" "$BIN" generate --teacher "$M" --tokenizer "$Z" --temp 0 -n 5
check "-n 5 prints 5 tokens" test "$(cat "$TMP/out")" = "Once upon a time,"
# tokenizer found beside the teacher by vocabulary size
mkdir "$TMP/m"
cp "$M" "$Z" "$TMP/m/"
expect_exit 0 "tokenizer beside the teacher" "$BIN" generate --teacher "$TMP/m/stories260K.bin" --temp 0 -n 5
check "same text" test "$(cat "$TMP/out")" = "Once upon a time,"
rm "$TMP/m/tok512.bin"
expect_exit 1 "no tokenizer beside the teacher" "$BIN" generate --teacher "$TMP/m/stories260K.bin" --temp 0 -n 5
check "names the missing tokenizer" contains "$TMP/err" "tok512.bin"
# a tokenizer with fewer tokens than the model
head -c 100 "$Z" > "$TMP/short_tok.bin"
expect_exit 1 "short tokenizer" "$BIN" generate --teacher "$M" --tokenizer "$TMP/short_tok.bin"
check "short tokenizer message" contains "$TMP/err" "truncated"
done_tests
