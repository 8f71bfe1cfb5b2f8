#!/bin/sh
# cli_student.sh -- `quantize` writes self-contained .onebit students of
# stories260K that `eval`, `generate` and `bench forward` run with --student.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.bin models/tok512.bin data/tinystories_train_head_sample.txt
M="$SHARED/models/stories260K.bin"
Z="$SHARED/models/tok512.bin"
# the first three stories (the scalar 1-bit reference is slow; keep it small)
awk '/<\|endoftext\|>/ { n++ } n < 3' "$SHARED/data/tinystories_train_head_sample.txt" > "$TMP/text.txt"
field() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" "$TMP/out"; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

expect_exit 0 "teacher eval" "$BIN" eval --teacher "$M" --tokenizer "$Z" --json --split '<|endoftext|>' --text "$TMP/text.txt"
T_NLL=$(field nll)
for init in nmf svd xnor; do
    expect_exit 0 "quantize $init" "$BIN" quantize --teacher "$M" --tokenizer "$Z" --init $init --out "$TMP/$init.onebit"
    check "quantize $init reports" contains "$TMP/err" "LayerNorm off"
    expect_exit 0 "eval --student $init" "$BIN" eval --student "$TMP/$init.onebit" --json --split '<|endoftext|>' --text "$TMP/text.txt"
    eval "NLL_$init=\$(field nll)"
    check "student $init is worse than the teacher ($(field nll) vs $T_NLL)" lt "$T_NLL" "$(field nll)"
    check "same token count as the teacher" test "$(field tokens)" -gt 100
done
check "nmf no worse than xnor ($NLL_nmf vs $NLL_xnor)" lt "$NLL_nmf" "$NLL_xnor"
# int8 activations: close to the exact (fp32) NLL, and not the same computation
expect_exit 0 "eval --student --act int8" "$BIN" eval --student "$TMP/nmf.onebit" --act int8 --json --split '<|endoftext|>' --text "$TMP/text.txt"
NLL_i8=$(field nll)
check "int8 NLL $NLL_i8 within 0.01 of fp32 $NLL_nmf" awk -v a="$NLL_i8" -v b="$NLL_nmf" 'BEGIN { d = a - b; exit !(d < 0.01 && d > -0.01) }'
check "int8 is not the fp32 computation" test "$NLL_i8" != "$NLL_nmf"
expect_exit 0 "eval --student ONEBIT_ACT=int8" env ONEBIT_ACT=int8 "$BIN" eval --student "$TMP/nmf.onebit" --json --split '<|endoftext|>' --text "$TMP/text.txt"
check "ONEBIT_ACT=int8 = --act int8" test "$(field nll)" = "$NLL_i8"
expect_exit 2 "eval bad --act" "$BIN" eval --student "$TMP/nmf.onebit" --act fp16 --text "$TMP/text.txt"
# the tokenizer inside the student equals tok512.bin
expect_exit 0 "eval --student --tokenizer" "$BIN" eval --student "$TMP/nmf.onebit" --tokenizer "$Z" --json --split '<|endoftext|>' --text "$TMP/text.txt"
check "own tokenizer = tok512.bin" test "$(field nll)" = "$NLL_nmf"
# LayerNorm without training
expect_exit 0 "quantize --norm" "$BIN" quantize --teacher "$M" --tokenizer "$Z" --norm --out "$TMP/norm.onebit"
check "quantize --norm reports" contains "$TMP/err" "LayerNorm on"
expect_exit 0 "eval --student norm" "$BIN" eval --student "$TMP/norm.onebit" --json --split '<|endoftext|>' --text "$TMP/text.txt"
check "LayerNorm without training is worse ($(field nll) vs $NLL_nmf)" lt "$NLL_nmf" "$(field nll)"
# generate and bench
expect_exit 0 "generate --student" "$BIN" generate --student "$TMP/nmf.onebit" --temp 0 -n 20 --prompt "Once upon a time"
check "generate prints the prompt" contains "$TMP/out" "Once upon a time"
check "generate tok/s" contains "$TMP/err" "achieved tok/s"
expect_exit 0 "bench forward --student" "$BIN" bench forward --student "$TMP/xnor.onebit" --tokens 8 --reps 2
check "bench prints prefill" contains "$TMP/out" "prefill"
expect_exit 0 "bench forward --student --act int8" "$BIN" bench forward --student "$TMP/xnor.onebit" --tokens 8 --reps 2 --act int8 --json
check "bench forward json says int8" contains "$TMP/out" '"act":"int8"'
check "bench forward json gives the max RSS" contains "$TMP/out" '"max_rss_mb":'
check "bench forward json gives the prompt's speed" contains "$TMP/out" '"prompt_tok_s":'
check "bench forward json gives the time to the first token" contains "$TMP/out" '"ttft_ms":'
check "bench forward json gives the bytes a token reads" contains "$TMP/out" '"read_mb_per_token":'
check "bench forward json gives the decode's bandwidth" contains "$TMP/out" '"decode_gb_s":'
expect_exit 0 "bench forward --context" "$BIN" bench forward --student "$TMP/xnor.onebit" --tokens 8 --reps 2 --context 100 --json
check "bench forward json gives the context" contains "$TMP/out" '"tokens":8,"context":100,'
expect_exit 2 "bench forward --context past the model's" "$BIN" bench forward --student "$TMP/xnor.onebit" --context 512
check "bench forward --context error" contains "$TMP/err" "the model's context is 512 tokens"
expect_exit 0 "generate --student --act int8" "$BIN" generate --student "$TMP/nmf.onebit" --act int8 --temp 0 -n 20 --prompt "Once upon a time"
check "generate int8 prints the prompt" contains "$TMP/out" "Once upon a time"
# the embedding and head: FP16 by default, the same greedy text as FP32 for
# the reference prompts; q8_0 runs; the files shrink
expect_exit 0 "quantize --head f32" "$BIN" quantize --teacher "$M" --tokenizer "$Z" --init xnor --head f32 --out "$TMP/h32.onebit"
check "quantize reports the head" contains "$TMP/err" "embedding and head f32"
expect_exit 0 "quantize --head q8_0" "$BIN" quantize --teacher "$M" --tokenizer "$Z" --init xnor --head q8_0 --out "$TMP/hq8.onebit"
sz() { wc -c < "$1" | tr -d ' '; }
check "f16 file smaller than f32 ($(sz "$TMP/xnor.onebit") < $(sz "$TMP/h32.onebit"))" lt "$(sz "$TMP/xnor.onebit")" "$(sz "$TMP/h32.onebit")"
check "q8_0 file smaller than f16" lt "$(sz "$TMP/hq8.onebit")" "$(sz "$TMP/xnor.onebit")"
for p in "" "Once upon a time"; do
    for h in h32 xnor hq8; do
        expect_exit 0 "generate --student $h '$p'" "$BIN" generate --student "$TMP/$h.onebit" --temp 0 -n 60 --prompt "$p"
        cp "$TMP/out" "$TMP/gen_$h.txt"
    done
    check "FP16 head: the same greedy text as FP32 after '$p'" cmp -s "$TMP/gen_h32.txt" "$TMP/gen_xnor.txt"
    check "Q8_0 head generates text after '$p'" test -s "$TMP/gen_hq8.txt"
done
expect_exit 2 "quantize bad --head" "$BIN" quantize --teacher "$M" --out "$TMP/x.onebit" --head bf16
# errors
expect_exit 2 "--teacher with --student" "$BIN" eval --teacher "$M" --student "$TMP/nmf.onebit" --text "$TMP/text.txt"
expect_exit 2 "quantize without --out" "$BIN" quantize --teacher "$M" --tokenizer "$Z"
expect_exit 2 "quantize bad --init" "$BIN" quantize --teacher "$M" --out "$TMP/x.onebit" --init foo
expect_exit 1 "quantize into a missing directory" "$BIN" quantize --teacher "$M" --tokenizer "$Z" --out "$TMP/no/dir/x.onebit"
check "missing directory message" contains "$TMP/err" "error: "
head -c 1000 "$TMP/nmf.onebit" > "$TMP/cut.onebit"
expect_exit 1 "truncated student" "$BIN" generate --student "$TMP/cut.onebit" -n 2
check "truncated message" contains "$TMP/err" "cut.onebit: truncated"
expect_exit 1 "a teacher given as student" "$BIN" eval --student "$M" --text "$TMP/text.txt"
check "bad magic message" contains "$TMP/err" "bad magic"
done_tests
