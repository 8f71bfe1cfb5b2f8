# lib.sh -- helpers for the shell tests: counted checks, SKIP (77) without
# the shared models, a private temporary directory.
set -u
T_PASS=0
T_FAIL=0
BIN=${ONEBIT_BIN:?ONEBIT_BIN not set (run through make check)}
SRCDIR=${ONEBIT_SRCDIR:-.}
SHARED=${ONEBIT_SHARED:-}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/onebit-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

need_shared() { # need_shared REL...
    for rel in "$@"; do
        if [ -z "$SHARED" ] || [ ! -e "$SHARED/$rel" ]; then
            echo "SKIP: $rel not found (set ONEBIT_SHARED)"
            exit 77
        fi
    done
}

ok()   { T_PASS=$((T_PASS + 1)); }
bad()  { T_FAIL=$((T_FAIL + 1)); echo "FAIL: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then ok; else bad "$what"; fi
}
# expect_exit CODE DESCRIPTION COMMAND... (stdout/stderr to $TMP/out, $TMP/err)
expect_exit() {
    local want=$1 what=$2; shift 2
    local rc=0
    "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else bad "$what: exit $rc, wanted $want; stderr: $(head -c 400 "$TMP/err")"; fi
}
contains() { grep -qF -- "$2" "$1"; }
# same_student WHAT A B: the students A and B (.onebit or checkpoint
# directories) give the same greedy text and the same held-out numbers on
# $TMP/ev.txt (made by the caller), 2 checks
same_student() {
    local what=$1 a=$2 b=$3
    "$BIN" generate --student "$a" --temp 0 -n 48 --prompt "Once upon a time" > "$TMP/same.a" 2>/dev/null
    "$BIN" generate --student "$b" --temp 0 -n 48 --prompt "Once upon a time" > "$TMP/same.b" 2>/dev/null
    check "$what: same greedy text" sh -c "test -s '$TMP/same.a' && cmp -s '$TMP/same.a' '$TMP/same.b'"
    "$BIN" eval --student "$a" --text "$TMP/ev.txt" --seq-len 64 --json > "$TMP/same.a" 2>/dev/null
    "$BIN" eval --student "$b" --text "$TMP/ev.txt" --seq-len 64 --json > "$TMP/same.b" 2>/dev/null
    check "$what: same held-out nll" sh -c "grep -q nll '$TMP/same.a' && cmp -s '$TMP/same.a' '$TMP/same.b'"
}
done_tests() {
    echo "$(basename "$0"): $T_PASS checks passed, $T_FAIL failed"
    [ "$T_FAIL" -eq 0 ] && [ "$T_PASS" -gt 0 ]
}
