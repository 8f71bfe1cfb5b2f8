#!/bin/sh
# cli_inspect.sh -- `inspect` on stories260K: the JSON parses (python3) and
# has the documented fields and totals; CSV and table agree; usage errors.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.bin models/tok512.bin
if ! command -v python3 >/dev/null 2>&1; then echo "SKIP: python3 not found (needed to parse the JSON)"; exit 77; fi
M="$SHARED/models/stories260K.bin"
Z="$SHARED/models/tok512.bin"

expect_exit 0 "inspect --json" "$BIN" inspect --teacher "$M" --tokenizer "$Z" --threads 2 --json
cp "$TMP/out" "$TMP/json"
check "json parses, fields and totals consistent" python3 - "$TMP/json" <<'PY'
import json, math, sys
d = json.load(open(sys.argv[1]))
L = d["layers"]; T = d["totals"]
assert len(L) == 35, len(L)
assert L[0]["name"] == "layers.0.wq" and L[5]["name"] == "layers.0.w2" and L[34]["name"] == "layers.4.w3"
assert (L[5]["rows"], L[5]["cols"]) == (64, 172) and (L[1]["rows"], L[1]["cols"]) == (32, 64)
for l in L:
    for k in ("nmf_err", "svd_err", "xnor_err", "pos_frac", "row_pos_min", "row_pos_max", "col_pos_min", "col_pos_max",
              "g_min", "g_max", "h_min", "h_max", "bpw"):
        assert math.isfinite(l[k]), (l["name"], k)
    assert 0 < l["nmf_err"] <= l["svd_err"] + 1e-5 and l["svd_err"] <= l["xnor_err"] + 1e-5, l["name"]
    assert l["row_pos_min"] <= l["pos_frac"] <= l["row_pos_max"]
    assert 0 <= l["g_min"] <= l["g_max"] and 0 <= l["h_min"] <= l["h_max"]
    m, n = l["rows"], l["cols"]
    assert abs(l["bpw"] - (1 + 16 * (m + n) / (m * n))) < 1e-4
    assert sum(l["abs_hist"]) == m * n and sum(l["w_hist"]) == m * n and len(l["abs_hist"]) == 64
assert T["params"] == 260032 and T["params_1bit"] == sum(l["rows"] * l["cols"] for l in L) == 226560
assert T["fp32_bytes"] == 4 * 260032 and T["fp16_bytes"] == 2 * 260032
scales = sum(l["rows"] + l["cols"] for l in L)
assert T["onebit_bytes"] == 226560 // 8 + 2 * scales + 2 * (260032 - 226560), T["onebit_bytes"]
assert abs(T["bpw_linears"] - (226560 + 16 * scales) / 226560) < 1e-4
assert abs(T["mean_nmf_err"] - sum(l["nmf_err"] for l in L) / 35) < 1e-5
PY
expect_exit 0 "inspect --csv" "$BIN" inspect --teacher "$M" --tokenizer "$Z" --csv --threads 1
check "csv: header + 35 layers + total" test "$(wc -l < "$TMP/out")" -eq 37
check "csv header" test "$(head -1 "$TMP/out" | cut -d, -f1-4)" = "name,rows,cols,nmf_err"
check "csv total row" test "$(tail -1 "$TMP/out" | cut -d, -f1,3)" = "total,226560"
check "csv = json (threads 1 vs 2)" python3 - "$TMP/json" "$TMP/out" <<'PY'
import csv, json, sys
L = json.load(open(sys.argv[1]))["layers"]
rows = list(csv.DictReader(open(sys.argv[2])))[:-1]
assert [r["name"] for r in rows] == [l["name"] for l in L]
for r, l in zip(rows, L):
    for k in ("nmf_err", "svd_err", "xnor_err", "pos_frac", "g_max", "h_min"):
        assert float(r[k]) == l[k], (l["name"], k)
PY
expect_exit 0 "inspect table" "$BIN" inspect --teacher "$M" --tokenizer "$Z" --init xnor
check "table has layers" contains "$TMP/out" "layers.4.w3"
check "table has bpw" contains "$TMP/out" "bits per weight"
check "table has sizes" contains "$TMP/out" "size 1-bit"
cp "$M" "$TMP/alone.bin" # no tokenizer beside it: inspect does not need one
expect_exit 0 "inspect without a tokenizer" "$BIN" inspect --teacher "$TMP/alone.bin" --csv
check "same csv without a tokenizer" test "$(tail -1 "$TMP/out")" = "$(cd "$TMP" && "$BIN" inspect --teacher "$M" --tokenizer "$Z" --csv | tail -1)"
expect_exit 0 "inspect --init arb" "$BIN" inspect --teacher "$M" --tokenizer "$Z" --init arb --json
check "arb named as the init" contains "$TMP/out" '"init":"arb"'
expect_exit 2 "bad --init" "$BIN" inspect --teacher "$M" --init pca
check "bad --init message" contains "$TMP/err" "nmf, svd, xnor, sign or arb"
expect_exit 2 "--json --csv" "$BIN" inspect --teacher "$M" --json --csv
expect_exit 2 "bad --threads" "$BIN" inspect --teacher "$M" --threads 0
expect_exit 1 "missing teacher" "$BIN" inspect --teacher "$TMP/none.bin" --tokenizer "$Z"
check "missing teacher message" contains "$TMP/err" "none.bin"
done_tests
