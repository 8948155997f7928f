#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after another at
# the lowest CPU priority, then prints executions and coverage per target.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). Works on a stable
# toolchain through fuzz/rustc-bootstrap.sh (ASan needs -Z flags). Seed
# corpora are written from captures/ on first use (examples/fuzz_seeds.rs);
# crashes land in fuzz/artifacts/TARGET/. Keep a fixed crash's input in
# fuzz/regressions/TARGET/: tests/fuzz_regressions.rs replays them on stable.
# Environment: FUZZ_TARGET_DIR (fuzz build dir, default fuzz/target),
# FUZZ_ARGS (extra libFuzzer flags).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-60}
shift || true
export RUSTC_WRAPPER="$root/fuzz/rustc-bootstrap.sh"
fuzz_target_dir=${FUZZ_TARGET_DIR:-$root/fuzz/target}

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^phonehome-fuzz$')
fi

if [ ! -d fuzz/corpus ]; then
    echo "== writing seed corpora from captures/"
    (unset RUSTC_WRAPPER; nice -n 19 cargo run -q --release --example fuzz_seeds -- fuzz/corpus) || exit 1
fi

echo "== building ${#targets[@]} targets (ASan, release with debug assertions)"
CARGO_TARGET_DIR=$fuzz_target_dir nice -n 19 cargo fuzz build -O || exit 1

mkdir -p fuzz/logs
status=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    echo "== $t for ${secs}s"
    # shellcheck disable=SC2086
    CARGO_TARGET_DIR=$fuzz_target_dir nice -n 19 cargo fuzz run -O "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
        ${FUZZ_ARGS:-} >"fuzz/logs/$t.log" 2>&1 || status=1
done

printf '\n%-12s %12s %8s %8s %8s %s\n' target execs cov ft corpus crashes
for t in "${targets[@]}"; do
    log="fuzz/logs/$t.log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    crashes=$(find "fuzz/artifacts/$t" -type f | wc -l)
    printf '%-12s %12s %8s %8s %8s %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$crashes"
done
exit $status
