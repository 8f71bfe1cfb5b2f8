#!/bin/sh
# cli_loaders.sh -- `--teacher` takes a GGUF file or a Hugging Face directory
# (detected by content, not by name) and gives the llama2.c greedy text.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.gguf models/tok512.bin
G="$SHARED/models/stories260K.gguf"
Z="$SHARED/models/tok512.bin"
GOLD="$SRCDIR/tests/golden/stories260K_greedy.txt"

# GGUF with its embedded tokenizer (no --tokenizer, none beside it)
mkdir "$TMP/g"
cp "$G" "$TMP/g/teacher.weights"
expect_exit 0 "gguf greedy" "$BIN" generate --teacher "$TMP/g/teacher.weights" --temp 0 -n 256
check "gguf greedy text equals llama2.c" cmp -s "$TMP/out" "$GOLD"
expect_exit 0 "gguf prompted" "$BIN" generate --teacher "$G" --temp 0 -n 252 --prompt "Once upon a time"
check "gguf prompted greedy equals llama2.c" cmp -s "$TMP/out" "$GOLD"
expect_exit 0 "gguf with --tokenizer" "$BIN" generate --teacher "$G" --tokenizer "$Z" --temp 0 -n 256
check "gguf + tok512 greedy" cmp -s "$TMP/out" "$GOLD"
# a bad --tokenizer still wins over the embedded one
expect_exit 1 "gguf with a missing --tokenizer" "$BIN" generate --teacher "$G" --tokenizer "$TMP/none.bin" --temp 0 -n 5
check "names the tokenizer" contains "$TMP/err" "none.bin"
# hostile: a truncated GGUF
head -c 5000 "$G" > "$TMP/trunc.gguf"
expect_exit 1 "truncated gguf" "$BIN" generate --teacher "$TMP/trunc.gguf" -n 5
check "error: path: what" contains "$TMP/err" "error: $TMP/trunc.gguf: "
# Hugging Face directory (no tokenizer.json: --tokenizer, or tok512.bin inside/beside it)
if [ -e "$SHARED/models/stories260K-hf/config.json" ]; then
    H="$SHARED/models/stories260K-hf"
    expect_exit 0 "hf greedy" "$BIN" generate --teacher "$H" --tokenizer "$Z" --temp 0 -n 256
    check "hf greedy text equals llama2.c" cmp -s "$TMP/out" "$GOLD"
    expect_exit 0 "hf model.safetensors named directly" "$BIN" generate --teacher "$H/model.safetensors" --tokenizer "$Z" --temp 0 -n 256
    check "hf (file named) greedy text equals llama2.c" cmp -s "$TMP/out" "$GOLD"
    mkdir "$TMP/s"
    cp "$H/model.safetensors" "$TMP/s/"
    expect_exit 1 "safetensors without config.json" "$BIN" generate --teacher "$TMP/s/model.safetensors" --tokenizer "$Z" -n 5
    check "says config.json" contains "$TMP/err" "without config.json"
    mkdir "$TMP/h"
    cp "$H/config.json" "$H/model.safetensors" "$Z" "$TMP/h/"
    expect_exit 0 "hf with tok512.bin inside" "$BIN" generate --teacher "$TMP/h/" --temp 0 -n 256
    check "hf greedy (tokenizer inside the directory)" cmp -s "$TMP/out" "$GOLD"
    rm "$TMP/h/tok512.bin"
    expect_exit 1 "hf without a tokenizer" "$BIN" generate --teacher "$TMP/h" --temp 0 -n 5
    check "names the missing tokenizer" contains "$TMP/err" "tok512.bin"
    head -c 3000 "$H/model.safetensors" > "$TMP/h/model.safetensors"
    expect_exit 1 "truncated safetensors" "$BIN" generate --teacher "$TMP/h" --tokenizer "$Z" -n 5
    check "error: path: what" contains "$TMP/err" "error: $TMP/h/model.safetensors: "
    rm "$TMP/h/config.json"
    expect_exit 1 "directory without config.json" "$BIN" generate --teacher "$TMP/h" --tokenizer "$Z" -n 5
    check "says config.json" contains "$TMP/err" "config.json"
fi
# a text file given as a teacher is called one (issue #20, 8)
printf 'Once upon a time there was a little dog named Spot.\nHe liked to run.\n' >"$TMP/story.txt"
expect_exit 1 "a text file as the teacher" "$BIN" generate --teacher "$TMP/story.txt" -n 5
check "says it is text" contains "$TMP/err" "a text file, not a model"
done_tests
