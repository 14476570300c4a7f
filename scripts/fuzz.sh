#!/usr/bin/env bash
# Runs natter's fuzz targets (fuzz/, cargo fuzz with libFuzzer), each for a bounded time, and
# fails on the first crash, printing the input that caused it.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   default: 30 s each, every target in fuzz/Cargo.toml
#
# cargo-fuzz is installed from crates.io once per machine. The instrumented build goes to
# NATTER_CACHE_DIR/fuzz-target (default ~/.cache/natter), outside the repo, so later runs on the
# same machine reuse it. No sanitizer: natter is safe Rust, where a memory error is a panic and
# libFuzzer catches it; this keeps the build on the stable compiler. New inputs a run finds go
# to a temporary folder; the seeds in fuzz/corpus/ are only read.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^natter-fuzz$')
fi

cache=${NATTER_CACHE_DIR:-$HOME/.cache/natter}
mkdir -p "$cache"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io"
    cargo install --locked cargo-fuzz
fi
export CARGO_TARGET_DIR=$cache/fuzz-target

work=$(mktemp -d /tmp/natter-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd fuzz
echo "fuzz: building the targets (instrumented, release; the first build takes minutes)"
cargo fuzz build --sanitizer none 2>&1 | tail -n 3
for target in "${targets[@]}"; do
    mkdir -p "$work/$target"
    log=$work/$target.log
    if ! cargo fuzz run --sanitizer none "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -artifact_prefix="$work/$target-" \
        >"$log" 2>&1; then
        tail -n 40 "$log"
        for artifact in "$work/$target"-*; do
            [ -e "$artifact" ] || continue
            echo "fuzz: $target failed on $artifact:"
            od -c "$artifact" | head -n 20
        done
        echo "fuzz: $target crashed" >&2
        exit 1
    fi
    summary=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
    echo "fuzz: $target ran ${seconds} s without a crash: ${summary}"
done
