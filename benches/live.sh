#!/usr/bin/env bash
# Live capture benchmark: the highest tcpreplay rate at which `phonehome
# live` loses nothing (no kernel, interface or worker-queue drop), per
# capture method. Runs as root: it creates two network namespaces joined by
# a veth pair, replays a capture in a loop from one into the veth, and runs
# the sensor on the other end; the namespaces are removed on exit. Traffic
# never leaves them.
#
#   sudo benches/live.sh                       # release binary, demo capture
#   BIN=... PCAP=... LOOPS=400 RATES="20000 50000 topspeed" METHODS=pcap benches/live.sh
#   METHODS="afxdp:native afxdp:skb" ...      # AF_XDP in an XDP mode (--features afxdp)
#
# Prints one line per run: method, asked rate, rate tcpreplay achieved,
# packets sent, received, kernel/interface/queue drops, the sensor's CPU
# seconds (user + system, all its threads; softirq work of the kernel's
# receive path is not in it), verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/phonehome}
PCAP=${PCAP:-captures/demo.pcapng}
LOOPS=${LOOPS:-300}
RATES=${RATES:-"5000 10000 20000 50000 100000 topspeed"}
THREADS=${THREADS:-$(nproc)}
[ "$(id -u)" -eq 0 ] || { echo "benches/live.sh: needs root (network namespaces)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "benches/live.sh: no binary at $BIN (cargo build --release)" >&2; exit 1; }
# AF_XDP too when the binary was built with it (--features afxdp).
if grep -q "built without AF_XDP support" "$BIN"; then
    METHODS=${METHODS:-"afpacket pcap"}
else
    METHODS=${METHODS:-"afpacket pcap afxdp:native afxdp:skb"}
fi

S=$$
A=phbA$S B=phbB$S VA=pba$S VB=pbb$S
D=$(mktemp -d)
chmod 777 "$D"
cleanup() {
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT
ip netns add "$A"
ip netns add "$B"
ip link add "$VA" type veth peer name "$VB"
ip link set "$VA" netns "$A"
ip link set "$VB" netns "$B"
for n in "$A:$VA" "$B:$VB"; do
    ip netns exec "${n%%:*}" sysctl -qw "net.ipv6.conf.${n#*:}.disable_ipv6=1"
    ip -n "${n%%:*}" link set "${n#*:}" mtu 9000 up
done

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "capture: $PCAP x $LOOPS loops, sensor threads $THREADS"
printf '%-12s %-9s %9s %8s %8s %6s %6s %8s %6s  %s\n' method rate pps_sent sent received kdrop ifdrop qdrop cpu_s verdict
for m in $METHODS; do
    xdp=()
    [ "${m%%:*}" = afxdp ] && xdp=(--xdp-mode "${m#*:}")
    [ "$m" = afxdp ] && xdp=()
    for r in $RATES; do
        rm -f "$D/report.json" "$D/err"
        ip netns exec "$B" "$BIN" live -i "$VB" --method "${m%%:*}" "${xdp[@]}" -j "$THREADS" \
            --alerts /dev/null --report "$D/report.json" --format json --report-every 3600 \
            2>"$D/err" &
        P=$!
        for _ in $(seq 100); do grep -q "capturing on" "$D/err" 2>/dev/null && break; sleep 0.1; done
        if [ "$r" = topspeed ]; then speed=--topspeed; else speed=--pps=$r; fi
        out=$(ip netns exec "$A" tcpreplay -i "$VA" "$speed" --loop="$LOOPS" "$PCAP" 2>&1)
        sleep 1
        # `ip netns exec` execs the sensor: $P is its pid.
        cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$P/stat" 2>/dev/null || echo 0)
        kill -INT "$P"
        wait "$P" || true
        sent=$(sed -n 's/.*Successful packets: *\([0-9]*\).*/\1/p' <<<"$out" | head -1)
        pps=$(sed -n 's/.*Rated:.* \([0-9.]*\) pps.*/\1/p' <<<"$out" | head -1)
        python3 - "$D/report.json" "$m" "$r" "${pps:-0}" "${sent:-0}" "$LOOPS" "$cpu" <<'PY'
import json, sys
path, m, r, pps, sent, loops, cpu = sys.argv[1:]
c = json.load(open(path))["summary"]["capture"]
q = sum(c["queue_drops"])
sent = int(sent)
# The kernel reassembles IP fragments before fanout: the demo's two
# fragments arrive as one packet per loop with afpacket.
lost = c["kernel_drops"] + c["interface_drops"] + q
short = sent - c["received"] > (int(loops) if m == "afpacket" else 0)
verdict = "zero drops" if lost == 0 and not short else "DROPS"
print(f'{m:<12} {r:<9} {float(pps):9.0f} {sent:8d} {c["received"]:8d} {c["kernel_drops"]:6d} {c["interface_drops"]:6d} {q:8d} {float(cpu):6.2f}  {verdict}')
PY
    done
done
