#!/bin/sh
# cli_basic.sh -- --help/--version, exit codes 0/1/2 and error messages.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"

expect_exit 0 "--help" "$BIN" --help
check "--help lists generate" contains "$TMP/out" "generate"
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
expect_exit 1 "missing teacher file" "$BIN" generate --teacher "$TMP/nope.bin"
check "error: <path>: ..." contains "$TMP/err" "error: $TMP/nope.bin: No such file"
printf 'garbage!' > "$TMP/garbage.bin"
expect_exit 1 "garbage teacher" "$BIN" generate --teacher "$TMP/garbage.bin" --tokenizer "$TMP/garbage.bin"
check "garbage error names the file" contains "$TMP/err" "error: $TMP/garbage.bin:"
ONEBIT_TEACHER="$TMP/env.bin" expect_exit 1 "ONEBIT_TEACHER is used" "$BIN" generate
check "ONEBIT_TEACHER path in message" contains "$TMP/err" "$TMP/env.bin"
done_tests
