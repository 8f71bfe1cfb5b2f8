#!/bin/sh
# check_layers.sh -- the include graph follows the layers, and no two modules
# include each other. Data flows one way:
#   src/base -> src/kernels -> src/format -> src/model -> src/onebit
#   -> src/train -> db -> src/cli, ui
# A file includes only from its own folder and the folders below it; ui never
# includes src/cli (the program's main.c, in src/cli, starts the workbench
# through ui/tui.h). A module is a file name without its extension (model.c +
# model.h); module A depends on B when a file of A includes B's header, and
# the module graph must have no cycle. Prints every violation and exits 1 when
# there is one. Usage: check_layers.sh [SRCDIR]
top=${1:-${ONEBIT_SRCDIR:-$(dirname "$0")/..}}
cd "$top" || exit 2

files=$(find src db ui -name '*.[ch]' ! -name sql.c | sort)
[ -n "$files" ] || { echo "check_layers: no sources under $top" >&2; exit 2; }

# one line per include: FILE INCLUDED (both as paths from the top)
for f in $files; do
    d=$(dirname "$f")
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" | while read -r inc; do
        case "$inc" in
            config.h) continue ;;
            */*) if [ -f "src/$inc" ]; then echo "$f src/$inc"; elif [ -f "$inc" ]; then echo "$f $inc";
                 else echo "$f MISSING:$inc"; fi ;;
            *) echo "$f $d/$inc" ;;
        esac
    done
done | awk '
function layer(p) {
    if (p ~ /^src\/base\//) return 0
    if (p ~ /^src\/kernels\//) return 1
    if (p ~ /^src\/format\//) return 2
    if (p ~ /^src\/model\//) return 3
    if (p ~ /^src\/onebit\//) return 4
    if (p ~ /^src\/train\//) return 5
    if (p ~ /^db\//) return 6
    if (p ~ /^src\/cli\//) return 7
    if (p ~ /^ui\//) return 7
    return -1
}
function module(p) { sub(/\.[ch]$/, "", p); sub(/_internal$/, "", p); return p }
{
    f = $1; inc = $2
    if (inc ~ /^MISSING:/) { printf "%s: includes %s, which does not exist\n", f, substr(inc, 9); bad = 1; next }
    lf = layer(f); li = layer(inc)
    if (li < 0) { printf "%s: includes %s outside the layers\n", f, inc; bad = 1; next }
    if (li > lf) { printf "%s: includes %s, a layer above its own\n", f, inc; bad = 1 }
    if (f ~ /^ui\// && inc ~ /^src\/cli\//) { printf "%s: the workbench includes %s (src/cli)\n", f, inc; bad = 1 }
    if (f ~ /^src\/cli\// && inc ~ /^ui\// && !(f == "src/cli/main.c" && inc == "ui/tui.h")) {
        printf "%s: includes %s (only main.c starts the workbench, through ui/tui.h)\n", f, inc; bad = 1 }
    a = module(f); b = module(inc)
    if (a != b && !((a, b) in edge)) { edge[a, b] = 1; out[a] = out[a] " " b; mods[a] = 1; mods[b] = 1 }
}
function dfs(m,    n, i, k, lst) {
    state[m] = 1; stack[++sp] = m
    n = split(out[m], lst, " ")
    for (i = 1; i <= n; i++) {
        k = lst[i]
        if (state[k] == 1) {
            for (j = sp; j >= 1 && stack[j] != k; j--) ;
            cyc = ""; for (; j <= sp; j++) cyc = cyc stack[j] " -> "
            printf "cycle: %s%s\n", cyc, k; bad = 1
        } else if (state[k] == 0) dfs(k)
    }
    sp--; state[m] = 2
}
END {
    for (m in mods) state[m] = 0
    for (m in mods) if (state[m] == 0) dfs(m)
    exit bad ? 1 : 0
}'
