#!/bin/sh
# Group-message deliveries per second to a 100-member group (tests/sipp/README.md).
#
#   tests/sipp/pager_load.sh FOCUS_BINARY MESSAGES RATE [EXTRA_TOML]
#
# Starts the focus on free loopback ports with pager_group.toml (100 members, all played by
# one SIPp UAS, pager_uas.xml, on a free UDP port), sends MESSAGES group messages at RATE per
# second with pager_uac.xml (UDP), waits until every delivery is answered or failed, and
# prints deliveries/s (first delivery sent to last answered, from the focus's counters),
# failures and the focus's CPU time. Needs sipp, curl and python3.
set -eu
bin=$1 messages=$2 rate=$3 extra=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
members=100
deliveries=$((messages * members))
port=$(python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
sed "s/127.0.0.1:5070/127.0.0.1:$port/" "$here/pager_group.toml" > "$dir/focus.toml"
printf '%s\n' "$extra" >> "$dir/focus.toml"
cleanup() {
    [ -n "${uas:-}" ] && kill "$uas" 2>/dev/null || true
    [ -n "${focus:-}" ] && kill "$focus" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
admin=
"$bin" --help | grep -q -- --admin-listen && admin="--admin-listen 127.0.0.1:0"
# shellcheck disable=SC2086
RUST_LOG=warn "$bin" --config "$dir/focus.toml" --sip-listen 127.0.0.1:0 \
    --msrp-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 $admin \
    > "$dir/focus.out" 2> "$dir/focus.err" &
focus=$!
for _ in $(seq 300); do grep -q 'cpm-focus ready' "$dir/focus.out" && break; sleep 0.1; done
line=$(grep 'cpm-focus ready' "$dir/focus.out") || { cat "$dir/focus.err"; exit 1; }
sip=$(echo "$line" | tr ' ' '\n' | sed -n 's/^sip_udp=//p')
metrics=$(echo "$line" | tr ' ' '\n' | sed -n 's/^metrics=//p')
(cd "$dir" && sipp -sf "$here/pager_uas.xml" -p "$port" -i 127.0.0.1 -m "$deliveries" \
    -d 2000 -timeout 300s -timeout_error -bg -trace_stat > /dev/null 2>&1) || true
uas=$(pgrep -n -f "pager_uas.xml -p $port" || true)
count() {
    curl -s "http://$metrics/metrics" | awk -v o="$1" \
        '$1 == "focus_group_message_deliveries_total{outcome=\"" o "\"}" { print $2 }' | grep . || echo 0
}
cpu() { awk '{ print $14 + $15 }' "/proc/$focus/stat"; }
tck=$(getconf CLK_TCK)
cpu0=$(cpu)
t0=$(date +%s.%N)
sipp -sf "$here/pager_uac.xml" -s club "$sip" -i 127.0.0.1 -m "$messages" -r "$rate" \
    -l "$messages" -recv_timeout 10s -timeout 300s -timeout_error > /dev/null 2> "$dir/uac.err" \
    && uac=ok || uac="exit $?"
sent=$(date +%s.%N)
# Every delivery ends within 64*T1 (32 s) of its MESSAGE: wait for that, no longer.
while :; do
    d=$(count delivered) f=$(count failed)
    [ "$(printf '%.0f' "$d")" -ge "$deliveries" ] && break
    [ "$(printf '%.0f' "$(echo "$d + $f" | bc)")" -ge "$deliveries" ] && break
    [ "$(echo "$(date +%s.%N) - $sent > 40" | bc)" = 1 ] && break
    sleep 0.05
done
t1=$(date +%s.%N)
cpu1=$(cpu)
secs=$(echo "$t1 - $t0" | bc -l)
printf 'messages %s at %s/s (sender: %s), deliveries %s delivered, %s failed of %s\n' \
    "$messages" "$rate" "$uac" "$d" "$f" "$deliveries"
printf 'wall %.2f s, %.0f deliveries/s, focus CPU %.2f s (%.0f%% of one core)\n' \
    "$secs" "$(echo "$d / $secs" | bc -l)" "$(echo "($cpu1 - $cpu0) / $tck" | bc -l)" \
    "$(echo "100 * ($cpu1 - $cpu0) / $tck / $secs" | bc -l)"
