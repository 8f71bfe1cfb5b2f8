#!/bin/sh
# cli_chat.sh -- llama.cpp's option names on `generate` (-m told apart by
# content, -p, -n, -t, -c, --top-k, --min-p, --repeat-penalty) and its timing
# lines; `chat` on stdin: plain completion for a model without a template (its
# first reply is generate's continuation), /reset, a template named or
# shipped in tokenizer_config.json, bad options.
. "${ONEBIT_SRCDIR:-.}/tests/lib.sh"
need_shared models/stories260K.bin models/tok512.bin models/stories260K-hf/config.json
M="$SHARED/models/stories260K.bin"
Z="$SHARED/models/tok512.bin"

expect_exit 0 "generate --prompt" "$BIN" generate --teacher "$M" --tokenizer "$Z" --temp 0 -n 24 --prompt "Once upon a time"
cp "$TMP/out" "$TMP/long_names"
expect_exit 0 "generate -m -p -n -t -c" "$BIN" generate -m "$M" --tokenizer "$Z" --temp 0 -n 24 -p "Once upon a time" -t 1 -c 128
check "the same text under llama.cpp's names" cmp -s "$TMP/out" "$TMP/long_names"
check "prompt eval timing" contains "$TMP/err" "prompt eval time ="
check "eval timing" contains "$TMP/err" "       eval time ="
check "time to first token" contains "$TMP/err" "time to first token ="
expect_exit 0 "--top-k 1 at temperature 1" "$BIN" generate -m "$M" --tokenizer "$Z" --temp 1 --top-k 1 --seed 5 -n 24 -p "Once upon a time"
check "top-k 1 is greedy" cmp -s "$TMP/out" "$TMP/long_names"
expect_exit 0 "--min-p 1 at temperature 1" "$BIN" generate -m "$M" --tokenizer "$Z" --temp 1 --min-p 1 --seed 5 -n 24 -p "Once upon a time"
check "min-p 1 is greedy" cmp -s "$TMP/out" "$TMP/long_names"
expect_exit 0 "--repeat-penalty" "$BIN" generate -m "$M" --tokenizer "$Z" --temp 0 --repeat-penalty 3 -n 24 -p "Once upon a time"
check "the penalty changes the greedy text" sh -c "! cmp -s \"$TMP/out\" \"$TMP/long_names\""
expect_exit 2 "-c beyond the model's context" "$BIN" generate -m "$M" --tokenizer "$Z" -c 100000 -n 2
check "-c names the context" contains "$TMP/err" "context is 512"
expect_exit 2 "-m with --teacher" "$BIN" generate -m "$M" --teacher "$M" -n 2
expect_exit 2 "bad -n" "$BIN" generate -m "$M" -n x
check "the error names -n" contains "$TMP/err" "-n needs an integer"

# -m takes a student too (by content)
expect_exit 0 "quantize" "$BIN" quantize --teacher "$M" --tokenizer "$Z" --init xnor --out "$TMP/s.onebit"
expect_exit 0 "--student" "$BIN" generate --student "$TMP/s.onebit" --temp 0 -n 16
cp "$TMP/out" "$TMP/student_out"
expect_exit 0 "-m student" "$BIN" generate -m "$TMP/s.onebit" --temp 0 -n 16
check "-m opens the student" cmp -s "$TMP/out" "$TMP/student_out"

# chat: plain completion; the first reply continues the message as generate does
printf 'Once upon a time\n/reset\nOnce upon a time\n' >"$TMP/in"
expect_exit 0 "chat (plain completion)" sh -c "\"$BIN\" chat -m \"$M\" --tokenizer \"$Z\" --temp 0 -n 20 <\"$TMP/in\""
check "no template: plain completion" contains "$TMP/err" "chat template: none"
cont=$(head -n 1 "$TMP/long_names" | sed 's/^Once upon a time//' | cut -c1-30)
check "the reply is generate's continuation" test "$(head -n 1 "$TMP/out" | cut -c1-30)" = "$cont"
check "/reset starts again: the same reply" test "$(sed -n 1p "$TMP/out")" = "$(sed -n 2p "$TMP/out")"
check "timings per reply" test "$(grep -c 'time to first token' "$TMP/err")" -eq 2
# a template named, and one shipped in tokenizer_config.json
printf 'Hello\nTell me a story\n' >"$TMP/in2"
expect_exit 0 "chat --chat-template llama2" sh -c "\"$BIN\" chat -m \"$M\" --tokenizer \"$Z\" --chat-template llama2 --sys 'Be kind.' --temp 0 -n 8 <\"$TMP/in2\""
check "the template named" contains "$TMP/err" "chat template: llama2 (--chat-template)"
check "two replies" test "$(grep -c 'time to first token' "$TMP/err")" -eq 2
cp -r "$SHARED/models/stories260K-hf" "$TMP/hf"
cp "$Z" "$TMP/hf/tok512.bin"
printf '{"chat_template": "{%% for m in messages %%}{{ \\"<|im_start|>\\" + m[\\"role\\"] }}{%% endfor %%}"}\n' >"$TMP/hf/tokenizer_config.json"
expect_exit 0 "chat with a shipped template" sh -c "\"$BIN\" chat -m \"$TMP/hf\" --tokenizer \"$Z\" --temp 0 -n 8 <\"$TMP/in2\""
check "tokenizer_config.json's template: chatml" contains "$TMP/err" "chat template: chatml (the model's)"
expect_exit 2 "unknown template" "$BIN" chat -m "$M" --chat-template vicuna
check "lists the templates" contains "$TMP/err" "llama2|mistral"
done_tests
