#!/bin/sh
# cli_teacher_torch.sh -- a Hugging Face directory whose weights are
# torch.save files (pytorch_model.bin, or sharded pytorch_model-*.bin with
# pytorch_model.bin.index.json) is a teacher like the safetensors one:
# `generate` prints the same text, and the run store fingerprints the .bin
# files. The directories are written by test_torch --write-hf (what
# torch.save writes, without torch).
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K-hf/config.json models/tok512.bin
H="$SHARED/models/stories260K-hf"
Z="$SHARED/models/tok512.bin"
W="$(dirname "$BIN")/tests/test_torch"

expect_exit 0 "write pytorch_model.bin (F32)" "$W" --write-hf "$H" "$TMP/t32" F32 1
check "pytorch_model.bin written" test -s "$TMP/t32/pytorch_model.bin"
check "no safetensors there" test ! -e "$TMP/t32/model.safetensors"
expect_exit 0 "write 3 BF16 shards" "$W" --write-hf "$H" "$TMP/tbf" BF16 3
check "the index written" test -s "$TMP/tbf/pytorch_model.bin.index.json"
check "the last shard written" test -s "$TMP/tbf/pytorch_model-00003-of-00003.bin"

expect_exit 0 "generate from the safetensors directory" "$BIN" generate --teacher "$H" --tokenizer "$Z" --temp 0 -n 16
cp "$TMP/out" "$TMP/ref.txt"
check "16 tokens of text" test -s "$TMP/ref.txt"
expect_exit 0 "generate from pytorch_model.bin" "$BIN" generate --teacher "$TMP/t32" --tokenizer "$Z" --temp 0 -n 16
check "the same text as safetensors" cmp -s "$TMP/out" "$TMP/ref.txt"
expect_exit 0 "write 2 F32 shards, tensors packed into shared storages" "$W" --write-hf "$H" "$TMP/t32s" F32 2
expect_exit 0 "generate from F32 shards" "$BIN" generate --teacher "$TMP/t32s" --tokenizer "$Z" --temp 0 -n 16
check "the same text again" cmp -s "$TMP/out" "$TMP/ref.txt"
expect_exit 0 "generate from BF16 shards" "$BIN" generate --teacher "$TMP/tbf" --tokenizer "$Z" --temp 0 -n 16
check "BF16 shards print text" test -s "$TMP/out"

# the run store: format hf, fingerprinted by the .bin files
DB="$TMP/runs.db"
expect_exit 0 "inspect --teacher TORCH_DIR --db" "$BIN" inspect --teacher "$TMP/t32" --db "$DB"
check "stored for teacher 1" contains "$TMP/err" "of teacher 1 in"
expect_exit 0 "inspect it again" "$BIN" inspect --teacher "$TMP/t32" --db "$DB"
check "found again as teacher 1" contains "$TMP/err" "of teacher 1 in"
printf 'x' >> "$TMP/t32/pytorch_model.bin"
expect_exit 1 "a .bin with a byte appended" "$BIN" generate --teacher "$TMP/t32" --tokenizer "$Z" --temp 0 -n 4
check "is no zip any more" contains "$TMP/err" "pytorch_model.bin: no zip end-of-central-directory record"
# written again: the same content, the same teacher
expect_exit 0 "write it again" "$W" --write-hf "$H" "$TMP/t32" F32 1
expect_exit 0 "inspect the rewritten directory" "$BIN" inspect --teacher "$TMP/t32" --db "$DB"
check "the same fingerprint again" contains "$TMP/err" "of teacher 1 in"
done_tests
