#!/bin/sh
# soak.sh -- the workbench left open with a run training and a chat every
# minute (issue #20's soak; not part of `make check`: it takes MINUTES).
# Every minute it prints the process's RSS, its total CPU time and that of the
# UI thread alone (the main thread; the trainer and the chat run on their
# own), so a leak shows as a growing RSS and a busy UI loop as UI CPU that
# grows while nobody types; then one idle minute (the run stopped).
#   tests/soak.sh [MINUTES]     (default 30; run from the build directory)
# Needs tmux and ../shared (or ONEBIT_SHARED). Writes into a temporary
# directory only.
MIN=${1:-30}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${ONEBIT_SHARED:-$SRC/../shared}
BIN=${ONEBIT_BIN:-$PWD/onebit-tui}
[ -x "$BIN" ] || { echo "soak: no $BIN (run from the build directory)" >&2; exit 2; }
command -v tmux >/dev/null 2>&1 || { echo "soak: tmux not found" >&2; exit 2; }
TMP=$(mktemp -d)
SOCK=onebit-soak-$$
tm() { tmux -L "$SOCK" -f /dev/null "$@"; }
trap 'tm kill-server 2>/dev/null; rm -rf "$TMP"' EXIT
screen_has() { tm capture-pane -p -t soak | grep -qF -- "$1"; }
wait_for() { # wait_for TEXT SECONDS
    _end=$(( $(date +%s) + $2 ))
    until screen_has "$1"; do
        [ "$(date +%s)" -ge "$_end" ] && { echo "soak: timeout waiting for '$1'" >&2; tm capture-pane -p -t soak >&2; exit 1; }
        sleep 0.2
    done
}
# field VALUE: replace the form field under the cursor by VALUE (empty: keep
# it), go down
field() { [ -n "$1" ] && tm send-keys -t soak C-u && tm send-keys -t soak -l "$1"; tm send-keys -t soak Down; }
# utime+stime of /proc/PID[/task/TID]/stat in clock ticks
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "$1"; }

# its own settings file (the New-run form it fills is remembered there)
tm new-session -d -s soak -x 140 -y 45 "env TERM=screen OPENBLAS_NUM_THREADS=1 XDG_CONFIG_HOME=$TMP $BIN \
    --teacher $SHARED/models/stories260K.bin --tokenizer $SHARED/models/tok512.bin --db $TMP/runs.db; sleep 600"
wait_for "1-bit bpw" 60
PID=$(pgrep -P "$(tm display-message -p -t soak '#{pane_pid}')" | head -n1) # the shell's child: env exec'd the workbench
tm send-keys -t soak 3 n
wait_for "New training run" 30
# name, data, split, self-generate, steps, seq-len, batch, lr, warmup,
# eval-every, eval-windows, ckpt-every, threads
for v in soak "$SHARED/data/tinystories_train_head_sample.txt" "<|endoftext|>" "" 1000000 64 2 "" "" 500 16 1000 1; do
    field "$v"
done
tm send-keys -t soak Enter
wait_for "run 1 " 60
HZ=$(getconf CLK_TCK)
printf 'minute  rss_kib  cpu_s_total  cpu_s_ui_thread  ui_cpu_pct_last_minute  step\n'
ui0=$(ticks /proc/$PID/task/$PID/stat)
m=0
while [ "$m" -lt "$MIN" ]; do
    # a chat: to Chat, focus the input, a message, wait for the reply, back
    tm send-keys -t soak 5 i
    tm send-keys -t soak -l "Once upon a time"
    tm send-keys -t soak Enter
    sleep 20
    tm send-keys -t soak Escape Escape 3
    sleep 40
    m=$((m + 1))
    [ -d /proc/$PID ] || { echo "soak: the workbench exited" >&2; exit 1; }
    rss=$(awk '/^VmRSS/ { print $2 }' /proc/$PID/status)
    all=$(ticks /proc/$PID/stat)
    ui=$(ticks /proc/$PID/task/$PID/stat)
    step=$(tm capture-pane -p -t soak | sed -n 's/.* step \([0-9]*\)\/.*/\1/p' | head -n1)
    printf '%6d  %7d  %11.1f  %15.2f  %22.2f  %s\n' "$m" "$rss" "$(echo "$all / $HZ" | bc -l)" \
        "$(echo "$ui / $HZ" | bc -l)" "$(echo "($ui - $ui0) * 100 / $HZ / 60" | bc -l)" "$step"
    ui0=$ui
done
# then idle: the run stopped, nobody typing, the Train screen shown
tm send-keys -t soak 3 x
sleep 1
tm send-keys -t soak y
sleep 10
ui0=$(ticks /proc/$PID/task/$PID/stat)
all0=$(ticks /proc/$PID/stat)
sleep 60
printf 'idle minute: UI thread %.2f%%, whole process %.2f%% of a core, rss %s KiB\n' \
    "$(echo "($(ticks /proc/$PID/task/$PID/stat) - $ui0) * 100 / $HZ / 60" | bc -l)" \
    "$(echo "($(ticks /proc/$PID/stat) - $all0) * 100 / $HZ / 60" | bc -l)" "$(awk '/^VmRSS/ { print $2 }' /proc/$PID/status)"
