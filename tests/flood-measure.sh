#!/bin/bash
# Overload measurement (docs/hardening.md "Overload and flood control"; run from the repository root
# after `cargo build --release --examples`; needs sipp). Usage: tests/flood-measure.sh RATE SECONDS CPS.
# trusted-core joins (SIPp from 127.0.0.10) while 8 untrusted sources
# flood OPTIONS at RATE requests/s in total.
RATE=${1:-60000}; SECS=${2:-20}; CPS=${3:-100}
BIN=${BIN:-target/release}
cat > /tmp/flood.toml <<T
[overload]
trusted_sources = ["127.0.0.10"]
[[groups]]
uri = "sip:team@focus.example.com"
T
$BIN/cpm-focus --config /tmp/flood.toml --sip-listen 127.0.0.1:25060 --msrp-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:29090 > /tmp/focus.out 2>/tmp/focus.err &
PID=$!
for i in $(seq 50); do grep -q ready /tmp/focus.out && break; sleep 0.2; done
T0=$(awk '{print $14+$15}' /proc/$PID/stat)
$BIN/examples/flood 127.0.0.1:25060 $RATE $SECS 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6 127.0.0.7 127.0.0.8 127.0.0.9 > /tmp/flood.out &
FL=$!
sipp -sf tests/sipp/join_leave.xml -s team 127.0.0.1:25060 -i 127.0.0.10 -r $CPS -m $((CPS*SECS)) -recv_timeout 10s -nostdin -trace_stat -fd 1 -stf /tmp/sipp-flood.csv > /dev/null 2>&1
wait $FL
T1=$(awk '{print $14+$15}' /proc/$PID/stat)
cat /tmp/flood.out
python3 - <<P
import csv
rows=list(csv.reader(open('/tmp/sipp-flood.csv'),delimiter=';'))
h,l=rows[0],rows[-1]
g=lambda n: l[h.index(n)]
print('sipp trusted joins: created', g('TotalCallCreated'), 'successful', g('SuccessfulCall(C)'), 'failed', g('FailedCall(C)'))
P
echo "focus CPU: $(( (T1-T0) )) ticks ($(getconf CLK_TCK)/s) over ${SECS}s"
curl -s 127.0.0.1:29090/metrics | grep -E "^focus_(flood_dropped|overload_rejections|sip_requests_received_total)" 
kill -TERM $PID; wait $PID
