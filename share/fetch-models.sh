#!/bin/sh
# fetch-models.sh -- put teacher models (or zero-shot task files) for
# onebit-tui into a directory.
#
#   fetch-models.sh [--dest DIR] [--from MIRROR] [--all] [--tasks]
#
# Default: the default teacher, llama2.c's stories260K.bin with its tok512.bin
# tokenizer. --all adds stories15M/42M/110M and the Llama 2 tokenizer.bin.
# Files come from their public home (karpathy/tinyllamas on Hugging Face,
# karpathy/llama2.c on GitHub), or with --from from a local directory that
# mirrors them. Every file is written to a temporary name, checked against
# its pinned sha256 and only then renamed, so no partial file is ever left.
# --tasks fetches the task files of `eval --task` instead (default --dest
# tasks): ARC-e/-c, PIQA, BoolQ, WinoGrande from mosaicml/llm-foundry on
# GitHub at a pinned commit; tinystories_mc.jsonl only from a mirror.
# Exit status: 0 when every required file is in place, 1 otherwise, 2 usage.
set -u

dest=
from=
all=0
tasks=0
while [ $# -gt 0 ]; do
    case $1 in
        --dest) [ $# -ge 2 ] || { echo "fetch-models.sh: --dest needs a directory" >&2; exit 2; }; dest=$2; shift 2 ;;
        --from) [ $# -ge 2 ] || { echo "fetch-models.sh: --from needs a directory" >&2; exit 2; }; from=$2; shift 2 ;;
        --all) all=1; shift ;;
        --tasks) tasks=1; shift ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --version) echo "fetch-models.sh (onebit-tui) 0.1.0"; exit 0 ;;
        *) echo "fetch-models.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

if [ -z "$dest" ]; then
    if [ "$tasks" = 1 ]; then dest=tasks; else dest=models; fi
fi

HF=https://huggingface.co/karpathy/tinyllamas/resolve/main
GH=https://raw.githubusercontent.com/karpathy/llama2.c/master
# llm-foundry's local eval data at the commit data/tasks/PROVENANCE.md names
LF=https://raw.githubusercontent.com/mosaicml/llm-foundry/8c8dd48f72168c5d51e2f7b151595892a8fba43d/scripts/eval/local_data

# name  required  sha256 (-: not pinned)  url (-: only from a mirror)
list() {
    if [ "$tasks" = 1 ]; then
        echo "arc_easy.jsonl 1 d2d12e59543acf9a5ef6079634a72b30215e36c2fd4236fff3bc855d287b87f5 $LF/world_knowledge/arc_easy.jsonl"
        echo "arc_challenge.jsonl 1 1ae3aeedf1951d881cbd5c2e3a31e78a1993d251479afbe4cb413b6707244636 $LF/world_knowledge/arc_challenge.jsonl"
        echo "piqa.jsonl 1 d2870e73aec5154df3faf259b7700876e11608eebdf69e9d6667435673dbe4e0 $LF/commonsense_reasoning/piqa.jsonl"
        echo "boolq.jsonl 1 454ff101e614370bb1807fe7ebbda6fdb57e794b9662cc1ccae211bf1ff626c8 $LF/reading_comprehension/boolq.jsonl"
        echo "winogrande.jsonl 1 ea1592526f3bfdd0948ed3acb1b4dfa3f83d23698917118688ee1df7f8d4b8d7 $LF/language_understanding/winogrande.jsonl"
        # made from the TinyStories sample (see its PROVENANCE.md); not published
        echo "tinystories_mc.jsonl 0 a879cbb03c3e49aa963de3e6749429d6da5723c22174eb6a1badb4b2c184c347 -"
        return
    fi
    echo "stories260K.bin 1 b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696 $HF/stories260K/stories260K.bin"
    echo "tok512.bin 1 037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312 $HF/stories260K/tok512.bin"
    if [ "$all" = 1 ]; then
        echo "tokenizer.bin 0 50a52ef822ee9e83de5ce9d0be0a025a773d019437f58b5ff9dcafb063ece361 $GH/tokenizer.bin"
        # no verified checksum could be obtained for these yet: see the man page
        echo "stories15M.bin 0 - $HF/stories15M.bin"
        echo "stories42M.bin 0 - $HF/stories42M.bin"
        echo "stories110M.bin 0 - $HF/stories110M.bin"
    fi
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

fetch_one() { # name required sum url -> 0 ok, 1 failed
    name=$1 sum=$3 url=$4
    out="$dest/$name"
    if [ -f "$out" ] && { [ "$sum" = - ] || [ "$(sha "$out")" = "$sum" ]; }; then
        echo "ok       $out (already present)"
        return 0
    fi
    part="$dest/.$name.part.$$"
    trap 'rm -f "$part"' EXIT INT TERM
    if [ -n "$from" ]; then
        if [ ! -f "$from/$name" ]; then
            echo "skipped  $name: not in mirror $from" >&2
            return 1
        fi
        cp "$from/$name" "$part" || { rm -f "$part"; echo "failed   $name: copy from $from" >&2; return 1; }
    elif [ "$url" = - ]; then
        echo "skipped  $name: not published; only from a mirror (--from)" >&2
        return 1
    else
        if command -v curl >/dev/null 2>&1; then
            curl -fL --retry 2 -o "$part" "$url" || { rm -f "$part"; echo "failed   $name: download $url" >&2; return 1; }
        elif command -v wget >/dev/null 2>&1; then
            wget -q -O "$part" "$url" || { rm -f "$part"; echo "failed   $name: download $url" >&2; return 1; }
        else
            echo "failed   $name: neither curl nor wget is installed" >&2
            return 1
        fi
    fi
    if [ "$sum" != - ]; then
        got=$(sha "$part")
        if [ "$got" != "$sum" ]; then
            rm -f "$part"
            echo "failed   $name: sha256 $got, expected $sum" >&2
            return 1
        fi
    else
        echo "warning  $name: no pinned sha256; not verified" >&2
    fi
    mv -f "$part" "$out" || { rm -f "$part"; return 1; }
    trap - EXIT INT TERM
    echo "fetched  $out"
    return 0
}

mkdir -p "$dest" || exit 1
status=0
list > "$dest/.list.$$"
while read -r name req sum url; do
    if ! fetch_one "$name" "$req" "$sum" "$url" </dev/null; then
        [ "$req" = 1 ] && status=1
    fi
done < "$dest/.list.$$"
rm -f "$dest/.list.$$"
exit $status
