#!/bin/sh
# cli_bitllama.sh -- the OneBit authors' checkpoints from the command line:
# `export --format bitllama-inf` of a quantized stories260K, `--student DIR`
# generating the same greedy text as the .onebit, `convert --to onebit`
# back, a teacher directory's tokenizer files copied, and `--tokenizer
# tokenizer.model` (by content) wherever a tokenizer is taken.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.bin models/tok512.bin
M="$SHARED/models/stories260K.bin"
Z="$SHARED/models/tok512.bin"

expect_exit 0 "quantize --norm" "$BIN" quantize --teacher "$M" --tokenizer "$Z" --norm --out "$TMP/x.onebit"
expect_exit 0 "export" "$BIN" export --format bitllama-inf --student "$TMP/x.onebit" --out "$TMP/inf"
for f in config.json model.safetensors tokenizer.model tokenizer_config.json; do
    check "export wrote $f" test -s "$TMP/inf/$f"
done
check "config: model_type bitllama" contains "$TMP/inf/config.json" '"model_type": "bitllama"'
check "config: BitLlamaForCausalLMInf" contains "$TMP/inf/config.json" '"BitLlamaForCausalLMInf"'
check "safetensors metadata format pt" contains "$TMP/inf/model.safetensors" '"__metadata__":{"format":"pt"}'
check "packed signs are I8" contains "$TMP/inf/model.safetensors" '"model.layers.0.self_attn.q_proj.weight":{"dtype":"I8","shape":[64,8]'
expect_exit 0 "generate .onebit" "$BIN" generate --student "$TMP/x.onebit" --temp 0 -n 48 --prompt "Once upon a time"
cp "$TMP/out" "$TMP/greedy.onebit.txt"
expect_exit 0 "generate --student DIR" "$BIN" generate --student "$TMP/inf" --temp 0 -n 48 --prompt "Once upon a time"
check "same greedy text from the directory" cmp -s "$TMP/out" "$TMP/greedy.onebit.txt"
expect_exit 0 "generate -m DIR (a bitllama directory is a student by its config.json)" "$BIN" generate -m "$TMP/inf" --temp 0 -n 48 -p "Once upon a time"
check "-m DIR: the same greedy text" cmp -s "$TMP/out" "$TMP/greedy.onebit.txt"
expect_exit 0 "convert --to onebit" "$BIN" convert --to onebit --student "$TMP/inf" --out "$TMP/y.onebit"
check "convert reports" contains "$TMP/err" "35 1-bit linears"
expect_exit 0 "generate converted" "$BIN" generate --student "$TMP/y.onebit" --temp 0 -n 48 --prompt "Once upon a time"
check "same greedy text from the converted .onebit" cmp -s "$TMP/out" "$TMP/greedy.onebit.txt"
# the exported tokenizer.model is tok512.bin, taken by content wherever a tokenizer is
cp "$TMP/inf/tokenizer.model" "$TMP/tok.anyname"
expect_exit 0 "generate --tokenizer tokenizer.model" "$BIN" generate --teacher "$M" --tokenizer "$TMP/tok.anyname" --temp 0 -n 24 --prompt "Once upon a time"
cp "$TMP/out" "$TMP/t1.txt"
expect_exit 0 "generate --tokenizer tok512.bin" "$BIN" generate --teacher "$M" --tokenizer "$Z" --temp 0 -n 24 --prompt "Once upon a time"
check "tokenizer.model = tok512.bin" cmp -s "$TMP/out" "$TMP/t1.txt"
# a teacher directory's tokenizer files are copied as they are
mkdir "$TMP/teacher"
cp "$TMP/inf/tokenizer.model" "$TMP/teacher/tokenizer.model"
printf '{"tokenizer_class": "LlamaTokenizer", "marker": 1}\n' > "$TMP/teacher/tokenizer_config.json"
expect_exit 0 "export --teacher DIR" "$BIN" export --format bitllama-inf --student "$TMP/x.onebit" --teacher "$TMP/teacher" --out "$TMP/inf2"
check "tokenizer_config.json copied" contains "$TMP/inf2/tokenizer_config.json" '"marker": 1'
check "tokenizer.model copied" cmp -s "$TMP/inf2/tokenizer.model" "$TMP/teacher/tokenizer.model"
# synth --tokenizer takes a tokenizer.model as the tokenizer.bin it was exported to
if [ -e "$SHARED/models/tokenizer.model" ] && [ -e "$SHARED/models/tokenizer.bin" ]; then
    expect_exit 0 "synth --tokenizer tokenizer.bin" "$BIN" synth --shape 64,172,1,4,2,32000 --format hf --dtype f16 --tokenizer "$SHARED/models/tokenizer.bin" --out "$TMP/sb" --quiet
    expect_exit 0 "synth --tokenizer tokenizer.model" "$BIN" synth --shape 64,172,1,4,2,32000 --format hf --dtype f16 --tokenizer "$SHARED/models/tokenizer.model" --out "$TMP/sm" --quiet
    check "synth: the same tokenizer.json from either" cmp -s "$TMP/sb/tokenizer.json" "$TMP/sm/tokenizer.json"
    check "synth: the same weights" cmp -s "$TMP/sb/model.safetensors" "$TMP/sm/model.safetensors"
    rm -rf "$TMP/sb" "$TMP/sm"
fi
# errors
expect_exit 1 "export into a non-empty directory" "$BIN" export --format bitllama-inf --student "$TMP/x.onebit" --out "$TMP/inf"
check "non-empty message" contains "$TMP/err" "not empty"
expect_exit 0 "quantize without LayerNorm" "$BIN" quantize --teacher "$M" --tokenizer "$Z" --out "$TMP/nonorm.onebit"
expect_exit 1 "export a student without LayerNorm" "$BIN" export --format bitllama-inf --student "$TMP/nonorm.onebit" --out "$TMP/inf3"
check "no LayerNorm message" contains "$TMP/err" "no LayerNorm"
expect_exit 2 "export bad --format" "$BIN" export --format gguf --student "$TMP/x.onebit" --out "$TMP/inf4"
expect_exit 2 "export without --out" "$BIN" export --format bitllama-inf --student "$TMP/x.onebit"
expect_exit 2 "convert without --student" "$BIN" convert --to onebit --out "$TMP/z.onebit"
expect_exit 2 "convert bad --to" "$BIN" convert --to gguf --student "$TMP/inf" --out "$TMP/z.onebit"
expect_exit 1 "bitllama directory as a teacher" "$BIN" generate --teacher "$TMP/inf" -n 2
check "teacher message" contains "$TMP/err" "open it with --student"
expect_exit 0 "help lists convert and export" "$BIN" --help
check "help: convert" contains "$TMP/out" "convert"
check "help: export" contains "$TMP/out" "export"
done_tests
