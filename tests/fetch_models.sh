#!/bin/sh
# fetch_models.sh -- share/fetch-models.sh from a local mirror: copies and
# verifies, reports and skips missing files, rejects a bad checksum and
# leaves no partial file behind; the same for the task files (--tasks) when
# the shared tree has them.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.bin models/tok512.bin
F="$SRCDIR/share/fetch-models.sh"

expect_exit 0 "fetch from mirror" sh "$F" --dest "$TMP/m" --from "$SHARED/models"
check "teacher copied" cmp -s "$TMP/m/stories260K.bin" "$SHARED/models/stories260K.bin"
check "tokenizer copied" cmp -s "$TMP/m/tok512.bin" "$SHARED/models/tok512.bin"
expect_exit 0 "second run" sh "$F" --dest "$TMP/m" --from "$SHARED/models"
check "second run sees files" contains "$TMP/out" "already present"
expect_exit 0 "--all from a mirror without the big models" sh "$F" --dest "$TMP/m" --from "$SHARED/models" --all
check "missing files reported" contains "$TMP/err" "stories15M.bin: not in mirror"
# a corrupted mirror: checksum mismatch, nothing left behind
mkdir "$TMP/bad"
cp "$SHARED/models/tok512.bin" "$TMP/bad/"
head -c 1000 "$SHARED/models/stories260K.bin" > "$TMP/bad/stories260K.bin"
expect_exit 1 "bad checksum" sh "$F" --dest "$TMP/d" --from "$TMP/bad"
check "checksum message" contains "$TMP/err" "sha256"
check "no teacher written" test ! -e "$TMP/d/stories260K.bin"
check "no partial file" test -z "$(ls -A "$TMP/d" | grep -v '^tok512.bin$')"
expect_exit 2 "bad argument" sh "$F" --frob

# the zero-shot task files (--tasks), from $SHARED/data/tasks
TASKS="arc_easy arc_challenge piqa boolq winogrande tinystories_mc"
if [ -d "$SHARED/data/tasks" ]; then
    expect_exit 0 "tasks from mirror" sh "$F" --tasks --dest "$TMP/t" --from "$SHARED/data/tasks"
    for t in $TASKS; do check "$t copied" cmp -s "$TMP/t/$t.jsonl" "$SHARED/data/tasks/$t.jsonl"; done
    check "no models with --tasks" test ! -e "$TMP/t/stories260K.bin"
    expect_exit 0 "tasks second run" sh "$F" --tasks --dest "$TMP/t" --from "$SHARED/data/tasks"
    check "tasks second run sees files" contains "$TMP/out" "ok       $TMP/t/boolq.jsonl (already present)"
    # default destination: ./tasks
    (cd "$TMP" && sh "$F" --tasks --from "$SHARED/data/tasks" >/dev/null 2>&1)
    check "default --dest tasks" cmp -s "$TMP/tasks/piqa.jsonl" "$SHARED/data/tasks/piqa.jsonl"
    # a mirror without tinystories_mc (not published): reported, not required
    mkdir "$TMP/pub"
    for t in arc_easy arc_challenge piqa boolq winogrande; do cp "$SHARED/data/tasks/$t.jsonl" "$TMP/pub/"; done
    expect_exit 0 "tasks mirror without tinystories_mc" sh "$F" --tasks --dest "$TMP/t2" --from "$TMP/pub"
    check "tinystories_mc reported" contains "$TMP/err" "tinystories_mc.jsonl: not in mirror"
    # a corrupted task file: checksum mismatch, exit 1, nothing left behind
    head -c 5000 "$SHARED/data/tasks/boolq.jsonl" > "$TMP/pub/boolq.jsonl"
    expect_exit 1 "tasks bad checksum" sh "$F" --tasks --dest "$TMP/t3" --from "$TMP/pub"
    check "tasks checksum message" contains "$TMP/err" "boolq.jsonl: sha256"
    check "no boolq written" test ! -e "$TMP/t3/boolq.jsonl"
    check "no partial task file" test -z "$(ls -A "$TMP/t3" | grep -v '^\(arc_easy\|arc_challenge\|piqa\|winogrande\)\.jsonl$')"
else
    echo "note: $SHARED/data/tasks not found; --tasks not checked"
fi
done_tests
