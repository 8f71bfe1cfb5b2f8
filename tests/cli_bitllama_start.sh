#!/bin/sh
# cli_bitllama_start.sh -- handing work to the OneBit authors' GPU trainer:
# `export --format bitllama-start` from a QAT checkpoint (opened as a
# student it is the student our trainer writes from that checkpoint) and
# from a teacher (SVID: `quantize --norm --init nmf`), sharded with an
# index; `export --format dataset` of a self-generation cache (valid JSON,
# one text per sequence, the texts round-trip through the tokenizer);
# errors leave nothing behind.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.bin models/tok512.bin data/tinystories_train_head_sample.txt
M="$SHARED/models/stories260K.bin"
Z="$SHARED/models/tok512.bin"
T="--teacher $M --tokenizer $Z"
head -c 20000 "$SHARED/data/tinystories_train_head_sample.txt" > "$TMP/ev.txt"

# a short QAT run on self-generated data (cached); its checkpoint is g.onebit.ckpt
mkdir "$TMP/cache"
expect_exit 0 "train" "$BIN" train $T --self-generate 24 --data-cache "$TMP/cache" --steps 4 --seq-len 64 --batch 2 --out "$TMP/g.onebit"
check "checkpoint written" test -s "$TMP/g.onebit.ckpt"

# ---- the checkpoint as a start checkpoint ----
expect_exit 0 "export --ckpt" "$BIN" export --format bitllama-start --ckpt "$TMP/g.onebit.ckpt" $T --out "$TMP/start"
for f in config.json model.safetensors tokenizer.model tokenizer_config.json; do
    check "wrote $f" test -s "$TMP/start/$f"
done
check "config: BitLlamaForCausalLM" contains "$TMP/start/config.json" '"BitLlamaForCausalLM"]'
check "config: model_type bitllama" contains "$TMP/start/config.json" '"model_type": "bitllama"'
check "latent weights are F32 (out, in)" contains "$TMP/start/model.safetensors" '"model.layers.0.self_attn.q_proj.weight":{"dtype":"F32","shape":[64,64]'
check "weight_scale" contains "$TMP/start/model.safetensors" '"model.layers.4.mlp.down_proj.weight_scale":{"dtype":"F32"'
check "input_factor" contains "$TMP/start/model.safetensors" '"model.layers.4.mlp.down_proj.input_factor":{"dtype":"F32"'
check "no temporary directory left" test -z "$(ls -a "$TMP" | grep 'tmp-')"
expect_exit 0 "convert the start checkpoint" "$BIN" convert --to onebit --student "$TMP/start" --out "$TMP/start.onebit"
same_student "start checkpoint (sign(W)) = the trainer's student" "$TMP/start.onebit" "$TMP/g.onebit"

# sharded: several model-i-of-n files and an index; the same student
expect_exit 0 "export sharded" "$BIN" export --format bitllama-start --ckpt "$TMP/g.onebit.ckpt" $T --shard-size 200000 --out "$TMP/sharded"
check "index written" contains "$TMP/sharded/model.safetensors.index.json" '"weight_map"'
check "first shard" test -s "$TMP/sharded/model-00001-of-0000$(ls "$TMP/sharded" | grep -c '^model-0')".safetensors
check "no model.safetensors when sharded" test ! -e "$TMP/sharded/model.safetensors"
same_student "sharded = single file" "$TMP/sharded" "$TMP/start"
if command -v python3 >/dev/null 2>&1; then
    check "index names every tensor once, in existing shards" python3 - "$TMP/sharded" <<'PY'
import json, os, struct, sys
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
seen = {}
for f in set(idx["weight_map"].values()):
    b = open(os.path.join(d, f), "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    for k in json.loads(b[8:8 + n]):
        if k != "__metadata__": seen[k] = f
assert seen == idx["weight_map"], "index and shards differ"
assert len(seen) == 2 + 5 * (2 + 21), len(seen)
PY
fi

# ---- SVID of the teacher = quantize --norm --init nmf ----
expect_exit 0 "export from the teacher" "$BIN" export --format bitllama-start $T --out "$TMP/svid"
if command -v python3 >/dev/null 2>&1; then
    check "latent weights are 0.01 sign(W)" python3 - "$TMP/svid/model.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
t = h["model.layers.2.mlp.up_proj.weight"]
s, e = t["data_offsets"]
v = struct.unpack("<%df" % ((e - s) // 4), b[8 + n + s:8 + n + e])
assert all(x in (struct.unpack("<f", struct.pack("<f", 0.01))[0], struct.unpack("<f", struct.pack("<f", -0.01))[0]) for x in v)
assert any(x < 0 for x in v) and any(x > 0 for x in v)
PY
fi
expect_exit 0 "quantize --norm --init nmf" "$BIN" quantize $T --norm --init nmf --out "$TMP/q.onebit"
expect_exit 0 "convert the SVID checkpoint" "$BIN" convert --to onebit --student "$TMP/svid" --out "$TMP/svid.onebit"
same_student "SVID start checkpoint = quantize --norm --init nmf" "$TMP/svid.onebit" "$TMP/q.onebit"

# ---- the self-generated sequences as a LLaMA-Factory dataset ----
f=$(ls "$TMP/cache"/selfgen-*.tok)
expect_exit 0 "export dataset" "$BIN" export --format dataset --data-cache "$f" $T --out "$TMP/ds"
check "reports the count" contains "$TMP/err" "24 sequences"
check "dataset_info.json entry" contains "$TMP/ds/dataset_info.json" '"onebit_selfgen"'
if command -v python3 >/dev/null 2>&1; then
    check "valid JSON: 24 texts, the dataset_info entry" python3 - "$TMP/ds" <<'PY'
import json, os, sys
d = sys.argv[1]
rows = json.load(open(os.path.join(d, "onebit_selfgen.json"), encoding="utf-8"))
assert isinstance(rows, list) and len(rows) == 24, len(rows)
assert all(set(r) == {"text"} and isinstance(r["text"], str) and r["text"] for r in rows)
info = json.load(open(os.path.join(d, "dataset_info.json")))
assert info == {"onebit_selfgen": {"file_name": "onebit_selfgen.json", "columns": {"prompt": "text"}}}, info
for i in range(3):
    open(os.path.join(d, "t%d.txt" % i), "w", encoding="utf-8").write(rows[i]["text"])
PY
    for i in 0 1 2; do
        text=$(cat "$TMP/ds/t$i.txt")
        "$BIN" generate $T --temp 0 -n 0 --prompt "$text" > "$TMP/rt$i.txt" 2>/dev/null
        check "text $i round-trips through the tokenizer" test "$(cat "$TMP/rt$i.txt")" = "$text"
    done
fi

# --data DIR: the same dataset alone, or beside a start checkpoint
expect_exit 0 "export --data alone" "$BIN" export --data "$TMP/ds2" --data-cache "$f" $T
check "--data alone: the same dataset" cmp "$TMP/ds/onebit_selfgen.json" "$TMP/ds2/onebit_selfgen.json"
expect_exit 0 "bitllama-start with --data" "$BIN" export --format bitllama-start $T --out "$TMP/start2" --data "$TMP/ds3" --data-cache "$f"
check "--data beside the start checkpoint" cmp "$TMP/ds/onebit_selfgen.json" "$TMP/ds3/onebit_selfgen.json"
check "and the start checkpoint" test -s "$TMP/start2/config.json"
expect_exit 2 "--data without --data-cache" "$BIN" export --data "$TMP/ds4" $T
expect_exit 2 "--data with bitllama-inf" "$BIN" export --format bitllama-inf --student "$TMP/q.onebit" --out "$TMP/inf9" --data "$TMP/ds5" --data-cache "$f"

# ---- errors: nothing written ----
expect_exit 1 "into a non-empty directory" "$BIN" export --format bitllama-start $T --out "$TMP/svid"
check "non-empty message" contains "$TMP/err" "not empty"
cp "$M" "$TMP/other.bin"
printf 'X' | dd of="$TMP/other.bin" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect_exit 1 "checkpoint of another teacher" "$BIN" export --format bitllama-start --ckpt "$TMP/g.onebit.ckpt" --teacher "$TMP/other.bin" --tokenizer "$Z" --out "$TMP/x1"
check "another-teacher message names the checkpoint" contains "$TMP/err" "g.onebit.ckpt: the checkpoint is for another teacher"
expect_exit 1 "dataset of another teacher" "$BIN" export --format dataset --data-cache "$f" --teacher "$TMP/other.bin" --tokenizer "$Z" --out "$TMP/x2"
check "dataset teacher message" contains "$TMP/err" "another teacher"
# a checkpoint trained without the LayerNorms: bitllama always normalizes
expect_exit 0 "train --layernorm off" "$BIN" train $T --self-generate 24 --data-cache "$TMP/cache" --steps 2 --seq-len 64 --batch 2 --layernorm off --out "$TMP/noln.onebit"
expect_exit 1 "export of a --layernorm off checkpoint" "$BIN" export --format bitllama-start --ckpt "$TMP/noln.onebit.ckpt" $T --out "$TMP/x6"
check "layernorm-off message" contains "$TMP/err" "noln.onebit.ckpt: trained with --layernorm off"
head -c 300 "$TMP/g.onebit.ckpt" > "$TMP/trunc.ckpt"
expect_exit 1 "truncated checkpoint" "$BIN" export --format bitllama-start --ckpt "$TMP/trunc.ckpt" $T --out "$TMP/x3"
check "truncated message" contains "$TMP/err" "trunc.ckpt"
cp "$f" "$TMP/bad.tok"
printf 'X' | dd of="$TMP/bad.tok" bs=1 seek=200 conv=notrunc 2>/dev/null
expect_exit 1 "corrupt cache" "$BIN" export --format dataset --data-cache "$TMP/bad.tok" $T --out "$TMP/x4"
check "corrupt cache message" contains "$TMP/err" "checksum"
for x in x1 x2 x3 x4; do check "nothing at $x" test ! -e "$TMP/$x"; done
check "no temporary directory left" test -z "$(ls -a "$TMP" | grep 'tmp-')"
expect_exit 2 "no --format" "$BIN" export --student "$TMP/g.onebit" --out "$TMP/x5"
expect_exit 2 "bad --format" "$BIN" export --format gguf --student "$TMP/g.onebit" --out "$TMP/x5"
expect_exit 2 "--ckpt with bitllama-inf" "$BIN" export --format bitllama-inf --student "$TMP/g.onebit" --ckpt "$TMP/g.onebit.ckpt" --out "$TMP/x5"
expect_exit 2 "--student with bitllama-start" "$BIN" export --format bitllama-start --student "$TMP/g.onebit" --out "$TMP/x5"
expect_exit 2 "dataset without --data-cache" "$BIN" export --format dataset $T --out "$TMP/x5"
expect_exit 2 "bad --shard-size" "$BIN" export --format bitllama-start $T --shard-size 0 --out "$TMP/x5"
done_tests
