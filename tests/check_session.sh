#!/bin/sh
# tests/check_session.sh -- `onebit-tui train` (src/cli/cmd_train.c) and the
# workbench's Train screen (ui/scr_train.c) are thin callers of one training
# session (src/train/session.h): both start runs through session_init and
# session_start, and neither does the session's work itself (data, output
# checks, run record, trainer start) nor parses the train options by hand.
# Prints each violation and exits 1 when there is one.
top=${1:-${ONEBIT_SRCDIR:-$(dirname "$0")/..}}
cd "$top" || exit 2
bad=0
pass=0
for f in src/cli/cmd_train.c ui/scr_train.c; do
    [ -f "$f" ] || { echo "check_session: $f is missing" >&2; exit 2; }
    for call in session_init session_prepare_data session_start session_join session_end; do
        if grep -q "\\b$call(" "$f"; then pass=$((pass + 1)); else echo "$f: does not call $call"; bad=1; fi
    done
    for call in trainer_start trainer_join data_self_generated data_from_text ob_check_writable ob_read_file \
        train_db_begin train_db_attach train_db_end trainer_config_default getopt_long atoi atol atof db_run_hparam; do
        if grep -q "\\b$call(" "$f"; then echo "$f: calls $call (the session's or the option table's work)"; bad=1;
        else pass=$((pass + 1)); fi
    done
done
echo "check_session: $pass checks passed"
exit $bad
