#!/bin/sh
# tui_e2e.sh -- the workbench end to end, driven through tmux on a private
# socket at a fixed size: load the teacher, visit every screen and the help,
# chat and receive tokens, stop a generation with Esc, change the sampling
# settings, resize (also below the minimum), quit; then the same in --ascii
# mode, whose screen must be pure ASCII. Every wait polls the screen for the
# expected text until a deadline; there are no fixed sleeps.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"

command -v tmux >/dev/null 2>&1 || { echo "SKIP: tmux not found"; exit 77; }
need_shared models/stories260K.bin models/tok512.bin
TEACHER=$SHARED/models/stories260K.bin
SOCK=onebit-e2e-$$
tm() { tmux -L "$SOCK" -f /dev/null "$@"; }
trap 'tm kill-server 2>/dev/null; rm -rf "$TMP"' EXIT

# wait_for TEXT [SECONDS]: poll the pane until TEXT shows
wait_for() {
    deadline=$(( $(date +%s) + ${2:-30} ))
    while :; do
        tm capture-pane -p -t e2e >"$TMP/screen" 2>/dev/null || true
        if grep -qF -- "$1" "$TMP/screen"; then return 0; fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "timeout waiting for '$1'; the screen:" >&2
            cat "$TMP/screen" >&2
            return 1
        fi
        sleep 0.05
    done
}
# wait_gone TEXT [SECONDS]: poll until TEXT is no longer shown
wait_gone() {
    deadline=$(( $(date +%s) + ${2:-30} ))
    while :; do
        tm capture-pane -p -t e2e >"$TMP/screen" 2>/dev/null || true
        if ! grep -qF -- "$1" "$TMP/screen"; then return 0; fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "timeout waiting for '$1' to go; the screen:" >&2
            cat "$TMP/screen" >&2
            return 1
        fi
        sleep 0.05
    done
}
wait_file() { # wait_file PATH [SECONDS]
    deadline=$(( $(date +%s) + ${2:-30} ))
    while [ ! -s "$1" ]; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.05
    done
}
start() { # start ARGS...: the TUI in a fresh 100x30 session
    rm -f "$TMP/exit"
    tm new-session -d -s e2e -x 100 -y 30 \
        "env LC_ALL=C.UTF-8 TERM=screen OPENBLAS_NUM_THREADS=1 $BIN $*; echo \$? >$TMP/exit; sleep 600"
}

start --teacher "$TEACHER"
check "Model screen shows the teacher" wait_for "1-bit bpw"
check "config shown" wait_for "dim 64"
check "bpw of wq (64x64) is 1.5" grep -q "wq .*1\.500" "$TMP/screen"
check "status bar keys" grep -q "o open" "$TMP/screen"

tm send-keys -t e2e '?'
check "help opens" wait_for "Everywhere but while typing"
check "help lists F10" grep -q "F10" "$TMP/screen"
tm send-keys -t e2e Escape
check "help closes" wait_for "1-bit bpw"

tm send-keys -t e2e 6
check "Log screen" wait_for "onebit-tui started"
tm send-keys -t e2e Tab
check "Tab wraps to Model" wait_for "1-bit bpw"

tm send-keys -t e2e 5
check "Chat screen" wait_for "Chat with the teacher"
tm send-keys -t e2e -l "Once upon a time"
tm send-keys -t e2e Enter
check "tokens stream in" wait_for "tokens/s"
check "reply finishes" wait_for "done:"
check "prompt echoed" grep -q "Once upon a time" "$TMP/screen"

# number keys are text while typing; Esc leaves the input line
tm send-keys -t e2e -l "1"
check "1 typed into the input" wait_for "> 1"
tm send-keys -t e2e C-u Escape
check "input left" wait_for "Enter or i to type"

# sampling settings: long replies so that Esc stops one midway
tm send-keys -t e2e s
check "settings form" wait_for "temperature"
tm send-keys -t e2e Down Down C-u
tm send-keys -t e2e -l "100000"
tm send-keys -t e2e Enter
check "settings applied" wait_for "max tokens 100000"
tm send-keys -t e2e i
tm send-keys -t e2e -l "The dog"
tm send-keys -t e2e Enter Escape
check "Esc stops the generation and keeps the reply" wait_for "[stopped]"

# resize: smaller, below the minimum, back
tm resize-window -t e2e -x 80 -y 24
check "redrawn at 80x24" wait_for "Chat with the teacher"
tm capture-pane -p -t e2e >"$TMP/screen"
check "24 lines after resize" test "$(wc -l <"$TMP/screen")" -eq 24
tm resize-window -t e2e -x 40 -y 10
check "too small message" wait_for "terminal too small"
tm resize-window -t e2e -x 100 -y 30
check "back to normal" wait_for "Chat with the teacher"

tm send-keys -t e2e Escape q
check "q quits" wait_file "$TMP/exit"
check "exit status 0" test "$(cat "$TMP/exit" 2>/dev/null)" = 0
check "terminal restored (no tab bar left)" wait_gone "1 Model"
tm kill-session -t e2e

# ASCII, no colour: the screen is pure ASCII
start --ascii --no-color --teacher "$TEACHER"
check "ascii: Model screen" wait_for "1-bit bpw"
tm send-keys -t e2e 5
check "ascii: Chat" wait_for "Chat with the teacher"
check "ascii: only ASCII on screen" sh -c "! LC_ALL=C grep -q '[^ -~]' '$TMP/screen'"
tm send-keys -t e2e F10
check "F10 quits from the input line" wait_file "$TMP/exit"
tm kill-session -t e2e

# bad teacher: the error shows in the message line, the UI keeps running
start --teacher "$TMP/nope.bin"
check "load error in the message line" wait_for "nope.bin"
tm send-keys -t e2e q
check "quits after an error" wait_file "$TMP/exit"
done_tests
