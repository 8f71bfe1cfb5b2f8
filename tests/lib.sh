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
done_tests() {
    echo "$(basename "$0"): $T_PASS checks passed, $T_FAIL failed"
    [ "$T_FAIL" -eq 0 ] && [ "$T_PASS" -gt 0 ]
}
