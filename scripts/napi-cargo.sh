#!/usr/bin/env bash
# `napi build` always passes `--target <triple>`, even for the host. Cargo then compiles the
# whole dependency tree a second time, under target/<triple>/, although `cargo build`,
# `cargo test` and maturin have just compiled it under target/release/ (the target kind is
# part of every unit's hash). package.json runs napi with CARGO pointing here: for the host
# triple this drops `--target`, so the addon shares target/release/ with the other builds,
# and links the artifacts where napi looks for them (target/<triple>/<profile>/).
set -euo pipefail
cargo=${NAPI_REAL_CARGO:-cargo}
host=$(rustc -vV | sed -n 's/^host: //p')
target=""
profile=debug
args=()
while (($#)); do
    case "$1" in
        --target) target=$2; shift 2 ;;
        --target=*) target=${1#--target=}; shift ;;
        --release) profile=release; args+=("$1"); shift ;;
        --profile) profile=$2; args+=("$1" "$2"); shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
if [[ -n "$target" && "$target" != "$host" ]]; then
    exec "$cargo" "${args[@]}" --target "$target"
fi
"$cargo" "${args[@]}"
if [[ -n "$target" && ${args[0]:-} == build ]]; then
    dir=$("$cargo" metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    mkdir -p "$dir/$target/$profile"
    for f in "$dir/$profile"/*.so "$dir/$profile"/*.d; do
        if [[ -e $f ]]; then
            ln -f "$f" "$dir/$target/$profile/" 2>/dev/null || cp -f "$f" "$dir/$target/$profile/"
        fi
    done
fi
