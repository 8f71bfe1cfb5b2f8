#!/bin/sh
# fetch_models.sh -- share/fetch-models.sh from a local mirror: copies and
# verifies, reports and skips missing files, rejects a bad checksum and
# leaves no partial file behind.
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
done_tests
