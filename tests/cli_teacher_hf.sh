#!/bin/sh
# cli_teacher_hf.sh -- a Hugging Face directory as the teacher of `train
# --db` and `inspect --db`: fingerprinted by its config and weight files
# (a directory has no single file to hash), recorded in the run store with
# the format the loader detected, and found again as the same teacher.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K-hf/config.json models/stories260K.bin models/tok512.bin data/tinystories_train_head_sample.txt
H="$SHARED/models/stories260K-hf"
Z="$SHARED/models/tok512.bin"
X="$SHARED/data/tinystories_train_head_sample.txt"
DB="$TMP/runs.db"

expect_exit 0 "train --teacher HF_DIR --db" "$BIN" train --teacher "$H" --tokenizer "$Z" --data "$X" \
    --steps 2 --seq-len 32 --batch 2 --out "$TMP/s.onebit" --db "$DB"
check "the student was written" test -s "$TMP/s.onebit"
expect_exit 0 "runs show" "$BIN" runs --db "$DB" --json show 1
check "the run has its teacher" contains "$TMP/out" '"teacher":{"id":1,'
check "recorded as format hf" contains "$TMP/out" '"format":"hf"'
check "recorded by its directory" contains "$TMP/out" 'stories260K-hf"'
sha=$(sed -n 's/.*"teacher":{[^}]*"sha256":"\([0-9a-f]*\)".*/\1/p' "$TMP/out")
check "with a sha256 fingerprint" test "${#sha}" -eq 64
# inspect records layer statistics for the same teacher: same fingerprint
expect_exit 0 "inspect --teacher HF_DIR --db" "$BIN" inspect --teacher "$H" --db "$DB"
check "inspect stored them for teacher 1" contains "$TMP/err" "of teacher 1 in"
# a llama2.c teacher is recorded by content too, whatever its name
cp "$SHARED/models/stories260K.bin" "$TMP/teacher.gguf"
expect_exit 0 "inspect a llama2.c file named .gguf" "$BIN" inspect --teacher "$TMP/teacher.gguf" --db "$DB"
check "a second teacher" contains "$TMP/err" "of teacher 2 in"
expect_exit 0 "train with it" "$BIN" train --teacher "$TMP/teacher.gguf" --tokenizer "$Z" --data "$X" \
    --steps 1 --seq-len 32 --batch 2 --out "$TMP/s2.onebit" --db "$DB"
expect_exit 0 "runs show 2" "$BIN" runs --db "$DB" --json show 2
check "recorded as format llama2c" contains "$TMP/out" '"format":"llama2c"'
done_tests
