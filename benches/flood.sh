#!/usr/bin/env bash
# Full-size flood benchmark: generates the flood captures (synth's gen-flood:
# 1M unanswered SYNs from random sources, 100k random names under ESET's domain, 100k
# ClientHellos that never complete, 100k IPv4 datagrams that never complete,
# 100k hosts, and one Kaspersky client at 70 % of the flood), analyses them
# with the release binary, and prints peak memory (VmHWM) against the caps
# documented in README's Limits table, and whether the Kaspersky host is
# still reported with its server name.
#
#   benches/flood.sh [WORKDIR]      (default: a temporary folder)
#
# Needs python3 (to read the JSON report). Peak RSS comes from GNU time
# (/usr/bin/time -v) when installed, else from polling /proc/PID/status.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cargo build -q --release --locked --bin phonehome -p phonehome -p phonehome-synth --bin gen-flood
bin=${CARGO_TARGET_DIR:-target}/release

# peak_kib INPUT CMD... : runs CMD with INPUT on standard input (stdout to
# $work/out.json) and prints its VmHWM in KiB. The capture is read through
# standard input so that the figure is the analyser's own memory: a file
# given by name is memory-mapped, and the pages of the map it has read
# (clean, file-backed, reclaimable by the kernel at any time) would count in
# VmHWM on top, up to the size of the file.
peak_kib() {
    local input=$1
    shift
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%M' -o "$work/time.txt" "$@" <"$input" >"$work/out.json" 2>"$work/err.txt" || true
        tail -1 "$work/time.txt"
    else
        "$@" <"$input" >"$work/out.json" 2>"$work/err.txt" &
        local pid=$! hwm=0 v
        while kill -0 "$pid" 2>/dev/null; do
            v=$(sed -n 's/^VmHWM: *\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null || true)
            [ -n "$v" ] && hwm=$v
            sleep 0.1
        done
        wait "$pid" || true
        echo "$hwm"
    fi
}

# The documented cost of each capped structure (README, Limits), in MiB, for
# the flags of a run: flows x 450 B (a TCP connection with payload), stream memory, 32 MiB of fragments,
# pdns entries x 150 B, hosts reported x 4 KB (measured ~3 KB: the host
# table and the report built from it, one contact per host), plus 64 MiB for the
# binary, feeds and buffers.
cap_mib() { # max_flows stream_mib pdns_entries hosts
    echo $((($1 * 450 + $3 * 150 + $4 * 4000) / 1048576 + $2 + 32 + 64))
}

printf '%-22s %9s %7s %8s %9s %9s  %s\n' scenario packets hosts secs peak_MiB cap_MiB kaspersky
run() { # name divisor max_flows stream_mib pdns_entries
    local name=$1 div=$2 flows=$3 smib=$4 pdns=$5
    local pcap="$work/flood-$div.pcap"
    [ -f "$pcap" ] || "$bin/gen-flood" "$pcap" "$div" >/dev/null
    local start end kib
    start=$(date +%s%N)
    kib=$(peak_kib "$pcap" "$bin/phonehome" analyze -q --format json --max-flows "$flows" \
        --stream-memory-mib "$smib" --pdns-entries "$pdns" -)
    end=$(date +%s%N)
    local verdict packets hosts
    read -r packets hosts verdict < <(python3 - "$work/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ev = []
for h in r["hosts"]:
    if h["ip"] == "10.99.0.7":
        for c in h["contacts"]:
            if c["vendor"] == "kaspersky":
                ev = c["evidence"]
print(r["summary"]["packets"], r["summary"]["hosts_reported"], ("reported: " + ",".join(ev)) if ev else "LOST")
PY
)
    local ms=$(((end - start) / 1000000))
    printf '%-22s %9s %7s %4d.%03d %9d %9d  %s\n' "$name" "$packets" "$hosts" $((ms / 1000)) $((ms % 1000)) \
        $((kib / 1024)) "$(cap_mib "$flows" "$smib" "$pdns" "$hosts")" "$verdict"
}

run "full, default caps" 1 1000000 256 500000
run "full, caps lowered" 1 100000 16 50000
run "tenth, default caps" 10 1000000 256 500000
echo "captures and the last report are in $work"
