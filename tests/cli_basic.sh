#!/bin/sh
# cli_basic.sh -- --help/--version, exit codes 0/1/2 and error messages.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"

expect_exit 0 "--help" "$BIN" --help
check "--help lists generate" contains "$TMP/out" "generate"
# the subcommands of runs that --help names exist (it once promised a 'runs plot')
runs_words=$(sed -n 's/^ *runs  *\(.*\) recorded training runs$/\1/p' "$TMP/out" | sed 's/,/ /g; s/ and / /')
check "--help describes runs" test -n "$runs_words"
"$BIN" runs --help >"$TMP/runs_help" 2>&1
for w in $runs_words; do
    check "--help names 'runs $w', which runs --help lists" grep -qE "onebit-tui runs (\[$w\]|$w )" "$TMP/runs_help"
done
expect_exit 0 "--version" "$BIN" --version
check "--version prints the name" contains "$TMP/out" "onebit-tui"
expect_exit 2 "unknown command" "$BIN" frobnicate
check "unknown command named" contains "$TMP/err" "unknown command 'frobnicate'"
expect_exit 2 "unknown option" "$BIN" generate --frob
check "unknown option named" contains "$TMP/err" "--frob"
expect_exit 2 "bad -n" "$BIN" generate -n abc
expect_exit 2 "bad --top-p" "$BIN" generate --top-p 2
expect_exit 2 "missing value" "$BIN" eval --text
expect_exit 2 "eval without --text" "$BIN" eval
expect_exit 0 "generate --help" "$BIN" generate --help
expect_exit 0 "eval --help" "$BIN" eval --help
expect_exit 0 "bench forward --help" "$BIN" bench forward --help
expect_exit 2 "bench without what" "$BIN" bench
# a random teacher and its 1-bit student in one process (a tiny shape)
expect_exit 0 "bench forward --random-model" "$BIN" bench forward --random-model 64,172,2,4,4,100 --tokens 8 --reps 2 --json
for key in teacher_prefill_tok_s teacher_decode_tok_s student_prefill_tok_s student_decode_tok_s decode_ratio teacher_prompt_tok_s student_prompt_tok_s student_ttft_ms student_read_mb_per_token student_decode_gb_s; do
    check "random-model json has $key" contains "$TMP/out" "\"$key\":"
done
check "random-model json names the shape" contains "$TMP/out" '"model":"64,172,2,4,4,100","tokens":8,"reps":2'
expect_exit 2 "random-model bad spec" "$BIN" bench forward --random-model 64,172
check "bad spec named" contains "$TMP/err" "dim,hidden,layers,heads,kv_heads,vocab"
expect_exit 2 "random-model heads not dividing dim" "$BIN" bench forward --random-model 64,172,2,5,5,100
expect_exit 2 "random-model with --student" "$BIN" bench forward --random-model 64,172,2,4,4,100 --student x.onebit
expect_exit 2 "bench forward stray argument" "$BIN" bench forward extra
expect_exit 1 "missing teacher file" "$BIN" generate --teacher "$TMP/nope.bin"
check "error: <path>: ..." contains "$TMP/err" "error: $TMP/nope.bin: No such file"
printf 'garbage!' > "$TMP/garbage.bin"
expect_exit 1 "garbage teacher" "$BIN" generate --teacher "$TMP/garbage.bin" --tokenizer "$TMP/garbage.bin"
check "garbage error names the file" contains "$TMP/err" "error: $TMP/garbage.bin:"
ONEBIT_TEACHER="$TMP/env.bin" expect_exit 1 "ONEBIT_TEACHER is used" "$BIN" generate
check "ONEBIT_TEACHER path in message" contains "$TMP/err" "$TMP/env.bin"
# the man page renders with its paragraphs apart (EXAMPLES, FILES and
# TOKENIZERS once ran together)
if command -v groff >/dev/null 2>&1; then
    groff -man -Tutf8 -P-cbou "$SRCDIR/man/onebit-tui.1" >"$TMP/man.txt" 2>/dev/null
    check "man: an example starts its own paragraph" grep -qE '^ +Train a student on 2000 sequences' "$TMP/man.txt"
    check "man: the next example too" grep -qE '^ +Where the 1-bit budget goes' "$TMP/man.txt"
    check "man: FILES has *.onebit as an entry" grep -qE '^ +\*\.onebit$' "$TMP/man.txt"
    check "man: the run store once in FILES" test "$(grep -cE '^ +\$XDG_DATA_HOME/onebit-tui/runs\.db$' "$TMP/man.txt")" -eq 1
    check "man: no words run together in TOKENIZERS" sh -c "! grep -q 'addedspecial' '$TMP/man.txt'"
fi
done_tests
