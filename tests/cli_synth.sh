#!/bin/sh
# tests/cli_synth.sh -- `synth`: a small shape in each format and dtype loads
# (generate, inspect and eval run and stay finite), GGUF in each ggml block
# type evaluates within a little of the F32 file, the same seed gives
# byte-identical output and another seed does not, sharding, usage errors
# for bad shapes, runtime errors for outputs that cannot be written.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
S=64,172,2,4,2,512
# the JSON checks need python3; without it they are left out, the rest runs
PY3=python3
command -v python3 >/dev/null 2>&1 || { echo "python3 not found: JSON checks skipped"; PY3=true; }
printf 'Once upon a time there was a little cat. The cat sat on the mat and was happy.\n' > "$TMP/text"

for f in hf gguf; do
    for d in f32 f16 bf16; do
        o="$TMP/m-$f-$d"
        expect_exit 0 "synth $f $d" "$BIN" synth --shape $S --format $f --dtype $d --seed 5 --out "$o"
        check "$f $d: summary names the output" contains "$TMP/out" "$o: "
        expect_exit 0 "generate $f $d" "$BIN" generate --teacher "$o" --temp 0 -n 8
        check "$f $d: generate printed text" test -s "$TMP/out"
        check "$f $d: 8 tokens generated" contains "$TMP/err" "(8 tokens)"
        expect_exit 0 "inspect $f $d" "$BIN" inspect --teacher "$o" --threads 2
        check "$f $d: inspect lists the layers" contains "$TMP/out" "layers.1.w3"
        check "$f $d: inspect finite" sh -c "! grep -qiE 'nan|inf' '$TMP/out'"
        expect_exit 0 "eval $f $d" "$BIN" eval --teacher "$o" --text "$TMP/text" --seq-len 16
        # random weights: the perplexity is near the vocabulary size, and finite
        check "$f $d: eval perplexity finite and near 512" awk '/^nll/ { ok = ($4 > 300 && $4 < 900) } END { exit !ok }' "$TMP/out"
    done
done
# the two formats hold the same model: the same greedy text
"$BIN" generate --teacher "$TMP/m-hf-bf16" --temp 0 -n 16 > "$TMP/g1" 2>/dev/null
"$BIN" generate --teacher "$TMP/m-gguf-bf16" --temp 0 -n 16 > "$TMP/g2" 2>/dev/null
check "hf and gguf greedy text equal" cmp -s "$TMP/g1" "$TMP/g2"
check "config.json fields" $PY3 -c "
import json, sys
c = json.load(open('$TMP/m-hf-bf16/config.json'))
assert c['architectures'] == ['LlamaForCausalLM'] and c['torch_dtype'] == 'bfloat16' and c['tie_word_embeddings'] is False
assert (c['hidden_size'], c['intermediate_size'], c['num_hidden_layers'], c['num_attention_heads'], c['num_key_value_heads'], c['vocab_size']) == (64, 172, 2, 4, 2, 512)
assert c['rope_theta'] == 10000 and c['rms_norm_eps'] == 1e-5 and c['max_position_embeddings'] == 2048
"

# ggml's block types (GGUF only): DIM and HIDDEN multiples of the block
SQ=256,512,1,4,2,512
expect_exit 0 "synth gguf f32 $SQ" "$BIN" synth --shape $SQ --format gguf --dtype f32 --seed 5 --out "$TMP/q-f32.gguf"
expect_exit 0 "eval f32 $SQ" "$BIN" eval --teacher "$TMP/q-f32.gguf" --text "$TMP/text" --seq-len 16
nll32=$(awk '/^nll/ { print $2 }' "$TMP/out")
for d in q8_0 q4_0 q5_0 q4_k q5_k q6_k; do
    o="$TMP/q-$d.gguf"
    D=$(echo $d | tr a-z A-Z)
    expect_exit 0 "synth gguf $d" "$BIN" synth --shape $SQ --format gguf --dtype $d --seed 5 --out "$o"
    check "$d: summary names the type" contains "$TMP/out" "of $D weights"
    expect_exit 0 "generate $d" "$BIN" generate -m "$o" --temp 0 -n 8
    check "$d: 8 tokens generated" contains "$TMP/err" "(8 tokens)"
    expect_exit 0 "eval $d" "$BIN" eval --teacher "$o" --text "$TMP/text" --seq-len 16
    # random weights: the held-out nll moves by the quantization error only
    check "$d: eval nll within 0.05 of F32's $nll32" awk -v r="$nll32" '/^nll/ { d = $2 - r; ok = (d < 0.05 && d > -0.05) } END { exit !ok }' "$TMP/out"
done
expect_exit 2 "q4_k with HIDDEN 172" "$BIN" synth --shape $S --format gguf --dtype q4_k --out "$TMP/bad.gguf"
check "q4_k: names the block" contains "$TMP/err" "must be multiples of 256"
expect_exit 2 "q8_0 as hf" "$BIN" synth --shape $SQ --format hf --dtype q8_0 --out "$TMP/bad-hf"
check "q8_0 hf: says gguf only" contains "$TMP/err" "is for GGUF output"

# determinism
expect_exit 0 "gguf again, same seed" "$BIN" synth --shape $S --format gguf --dtype bf16 --seed 5 --out "$TMP/again.gguf"
check "same seed: byte-identical gguf" cmp -s "$TMP/m-gguf-bf16" "$TMP/again.gguf"
expect_exit 0 "hf again, same seed" "$BIN" synth --shape $S --format hf --dtype f16 --seed 5 --out "$TMP/again-hf"
check "same seed: byte-identical hf directory" diff -r "$TMP/m-hf-f16" "$TMP/again-hf"
expect_exit 0 "gguf, other seed" "$BIN" synth --shape $S --format gguf --dtype bf16 --seed 6 --out "$TMP/other.gguf"
check "other seed: gguf differs" sh -c "! cmp -s '$TMP/m-gguf-bf16' '$TMP/other.gguf'"
check "other seed: same size" test "$(wc -c < "$TMP/m-gguf-bf16")" -eq "$(wc -c < "$TMP/other.gguf")"
expect_exit 0 "hf, other seed" "$BIN" synth --shape $S --format hf --dtype f16 --seed 6 --out "$TMP/other-hf"
check "other seed: safetensors differ" sh -c "! cmp -s '$TMP/m-hf-f16/model.safetensors' '$TMP/other-hf/model.safetensors'"
check "other seed: same tokenizer" cmp -s "$TMP/m-hf-f16/tokenizer.json" "$TMP/other-hf/tokenizer.json"

# shards
expect_exit 0 "hf sharded" "$BIN" synth --shape $S --format hf --dtype bf16 --seed 5 --max-shard-size 100000 --out "$TMP/sh"
check "index written" test -f "$TMP/sh/model.safetensors.index.json"
check "four shards named model-0000i-of-00004" test "$(ls "$TMP/sh" | grep -c '^model-0000[1-4]-of-00004\.safetensors$')" -eq 4
# what the safetensors reference implementation demands: header length,
# JSON, offsets contiguous from 0 to the end of the file, sizes = shape x
# dtype; the index's weight_map and total_size agree with the shards
check "shards and index are well-formed" $PY3 - "$TMP/sh" <<'PY'
import json, os, struct, sys
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
wm, total, seen = idx["weight_map"], 0, {}
for f in sorted(set(wm.values())):
    raw = open(os.path.join(d, f), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    assert n % 8 == 0
    h = json.loads(raw[8:8 + n])
    h.pop("__metadata__")
    end = 0
    for name, t in sorted(h.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e = t["data_offsets"]
        assert b == end, (f, name)
        size = {"BF16": 2, "F16": 2, "F32": 4}[t["dtype"]]
        for x in t["shape"]: size *= x
        assert e - b == size, name
        end = e
        seen[name] = f
    assert 8 + n + end == len(raw), f
    total += end
assert seen == wm, "weight_map"
assert idx["metadata"]["total_size"] == total
assert len(wm) == 3 + 9 * 2
PY
expect_exit 0 "generate sharded" "$BIN" generate --teacher "$TMP/sh" --temp 0 -n 16
check "sharded = unsharded greedy text" cmp -s "$TMP/out" "$TMP/g1"

# usage errors: bad shapes and options
for bad in 64,172,2,5,1,512:"HEADS 5 does not divide DIM 64" 64,172,2,4,3,512:"KV 3 does not divide HEADS 4" \
           0,172,2,4,2,512:"DIM is 0" 64,172,2,4,0,512:"KV is 0" 64,172:"neither tinyllama-1.1b" llama2-70b:"neither"; do
    shape=${bad%%:*}
    msg=${bad#*:}
    expect_exit 2 "bad shape $shape" "$BIN" synth --shape "$shape" --format gguf --dtype f16 --out "$TMP/bad.gguf"
    check "bad shape $shape: says '$msg'" contains "$TMP/err" "$msg"
done
check "no output for bad shapes" test ! -e "$TMP/bad.gguf"
expect_exit 2 "bad format" "$BIN" synth --shape $S --format onnx --dtype f16 --out "$TMP/x"
check "names the formats" contains "$TMP/err" "--format must be hf or gguf"
expect_exit 2 "bad dtype" "$BIN" synth --shape $S --format gguf --dtype q4 --out "$TMP/x"
check "names the dtypes" contains "$TMP/err" "--dtype must be bf16, f16, f32, q8_0, q4_0, q5_0, q4_k, q5_k or q6_k"
expect_exit 2 "no --out" "$BIN" synth --shape $S --format gguf --dtype f16
expect_exit 0 "--help" "$BIN" synth --help
check "help lists the presets" contains "$TMP/out" "tinyllama-1.1b, llama2-7b, llama3-8b"

# runtime errors: outputs that cannot be written, and nothing left behind
expect_exit 1 "missing parent directory" "$BIN" synth --shape $S --format gguf --dtype f16 --out "$TMP/nodir/x.gguf"
check "says it cannot write" contains "$TMP/err" "cannot write into directory $TMP/nodir"
: > "$TMP/plainfile"
expect_exit 1 "parent is a file" "$BIN" synth --shape $S --format hf --dtype f16 --out "$TMP/plainfile/x"
check "says it cannot write there" contains "$TMP/err" "cannot write"
expect_exit 1 "output exists" "$BIN" synth --shape $S --format gguf --dtype f16 --out "$TMP/m-gguf-f16"
check "says it exists" contains "$TMP/err" "already exists"
if [ "$(id -u)" -ne 0 ]; then
    mkdir "$TMP/ro" && chmod 555 "$TMP/ro"
    expect_exit 1 "read-only directory" "$BIN" synth --shape $S --format gguf --dtype f16 --out "$TMP/ro/x.gguf"
    check "read-only: says it cannot write" contains "$TMP/err" "cannot write into directory"
    chmod 755 "$TMP/ro"
fi
check "no temporary files left" sh -c "! ls -a '$TMP' | grep -q '\.tmp-'"
done_tests
