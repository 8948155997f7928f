#!/usr/bin/env bash
# A/B comparison of phonehome builds on one capture, for judging a change
# on a machine whose speed drifts (this project's shared VM moves by tens of
# percent between minutes, more than most single changes are worth).
#
#   benches/ab.sh [-t THREADS] [-r ROUNDS] [-f FILE] [-i] BINARY...
#
# Runs `BINARY analyze --threads THREADS FILE` for each binary in turn,
# ROUNDS times (interleaved, the order reversed every other round: a, b,
# b, a, ... so that neither always runs right after the other), and prints
# per binary the minimum and median wall and CPU seconds and the CPU
# seconds' trimmed mean (the middle half of the rounds), with its change
# against the first binary. The minimum is the run least disturbed, the
# median the typical one; with 12 rounds or more the trimmed mean resolved
# changes of ~3 % here that minimum and median alone did not. A change is
# real when they move the same way, and across two invocations.
#
# With -i, also counts each binary's instructions once with valgrind's
# callgrind (needs `valgrind`): an exact, drift-free figure for changes
# that remove work, blind to cache effects (use a small FILE: callgrind is
# ~50x slower; `gen-bulk --size 64M` makes a fitting one).
#
# Build the binaries first, e.g. `cp target/release/phonehome /tmp/ph_a`
# before a change and compare /tmp/ph_a with target/release/phonehome.
# FILE defaults to throughput.sh's generated capture.
set -euo pipefail
THREADS=1
ROUNDS=6
FILE="${SCRATCH:-${TMPDIR:-/tmp}/phonehome-bench}/bulk-1G-seed1.pcap"
COUNT=0
while getopts "t:r:f:i" opt; do
    case "$opt" in
        t) THREADS="$OPTARG" ;;
        r) ROUNDS="$OPTARG" ;;
        f) FILE="$OPTARG" ;;
        i) COUNT=1 ;;
        *) sed -n '2,22p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,22p' "$0" >&2; exit 2; }
[ -r "$FILE" ] || { echo "cannot read $FILE (run benches/throughput.sh once, or pass -f)" >&2; exit 1; }
cat "$FILE" >/dev/null

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
bins=("$@")
for round in $(seq "$ROUNDS"); do
    order=$(seq 0 $(($# - 1)))
    [ $((round % 2)) = 0 ] && order=$(seq $(($# - 1)) -1 0)
    for i in $order; do
        /usr/bin/env time -f "%e %U %S" "${bins[$i]}" analyze -q --threads "$THREADS" "$FILE" \
            -o /dev/null --format json 2>>"$OUT/$i" >/dev/null || true
    done
done

echo "file: $FILE, $THREADS thread(s), $ROUNDS interleaved rounds, load average $(cut -d' ' -f1-3 /proc/loadavg)"
i=0
for bin in "$@"; do
    python3 - "$bin" "$OUT/$i" "$OUT/0" <<'EOF'
import statistics, sys
name, path, first = sys.argv[1], sys.argv[2], sys.argv[3]
def cpu_of(p):
    rows = [[float(x) for x in l.split()] for l in open(p) if l.strip() and l.split()[0][0].isdigit()]
    return rows, sorted(r[1] + r[2] for r in rows)
def trimmed(v):
    q = len(v) // 4
    return statistics.mean(v[q:len(v) - q])
rows, cpu = cpu_of(path)
if not rows:
    sys.exit(f"{name}: no successful run")
wall = [r[0] for r in rows]
_, base = cpu_of(first)
change = (trimmed(cpu) / trimmed(base) - 1) * 100 if base else 0.0
print(f"{name}: wall min {min(wall):.2f} median {statistics.median(wall):.2f} s, "
      f"CPU min {min(cpu):.2f} median {statistics.median(cpu):.2f} "
      f"trimmed mean {trimmed(cpu):.2f} s ({change:+.1f} %)")
EOF
    if [ "$COUNT" = 1 ]; then
        valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" "$bin" analyze -q \
            --threads "$THREADS" "$FILE" -o /dev/null --format json 2>&1 >/dev/null \
            | sed -n 's/.*Collected : \([0-9]*\).*/    instructions: \1/p'
    fi
    i=$((i + 1))
done
