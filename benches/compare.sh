#!/usr/bin/env bash
# Side-by-side SIP load on one machine, in one go (see BENCHMARKS.md):
#
#   calls (INVITE/ACK/BYE):  SIPp UAC -> SIPp UAS                (the loopback ceiling)
#                            SIPp UAC -> Kamailio (tm) -> SIPp UAS (when kamailio is installed)
#                            SIPp UAC -> cpm-focus                (tests/sipp/join_leave.xml)
#   group messages (MESSAGE, fan-out to members answered by a SIPp UAS):
#                            SIPp UAC -> SIPp UAS                 (the MESSAGE ceiling)
#                            SIPp UAC -> Kamailio imc (room of 10) -> SIPp UAS (when imc loads)
#                            SIPp UAC -> cpm-focus (group of 10 listed members) -> SIPp UAS
#                            (the focus's outbound proxy)
#
# Every leg runs closed-loop at saturation: SIPp starts calls as fast as it can with at most
# CONCURRENCY open, CALLS in all; the rate is completed calls over wall time. The ratios at
# the end compare legs of the same run, since absolute figures drift on a shared machine.
#
# Environment: CALLS (default 30000), MESSAGES (20000), CONCURRENCY (200), ROUNDS (1: each
# leg is run ROUNDS times and the median is printed), SKIP_BUILD=1 to use the built binary,
# ONLY=calls or ONLY=messages to run one half.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CALLS=${CALLS:-30000}
MESSAGES=${MESSAGES:-20000}
CONCURRENCY=${CONCURRENCY:-200}
ROUNDS=${ROUNDS:-1}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cpm-compare.XXXXXX")
PIDS=()

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

command -v sipp >/dev/null || { echo "compare.sh: sipp is missing (apt-get install -y sip-tester)" >&2; exit 2; }
if [ -z "${SKIP_BUILD:-}" ]; then
	(cd "$ROOT" && cargo build --release --features load-tool --bin cpm-focus --bin focus-load >&2)
fi
FOCUS_BIN=$TARGET/release/cpm-focus

# Larger socket buffers keep bursts from being dropped on loopback (best effort).
sysctl -qw net.core.rmem_max=16777216 net.core.wmem_max=16777216 2>/dev/null || true
BUF=(-buff_size 8388608)

free_port() {
	python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# cpu_s PID: user+system CPU seconds of a process.
cpu_s() {
	awk '{ split($0, a, ") "); split(a[2], f, " "); printf "%.2f", (f[12] + f[13]) / 100 }' "/proc/$1/stat"
}

# sipp_uas NAME PORT [SCENARIO]: a SIPp UAS in the background; sets UAS_PID.
sipp_uas() {
	local name=$1 port=$2 scen=${3:-}
	local args=(-sn uas)
	[ -n "$scen" ] && args=(-sf "$scen")
	# -l: a member UAS holds each MESSAGE "call" for its 1 s time-wait; at tens of thousands
	# of deliveries a second the default call limit would drop deliveries.
	sipp "${args[@]}" -i 127.0.0.1 -p "$port" "${BUF[@]}" -l 1000000 -nostdin -trace_stat -fd 1 \
		-stf "$WORK/$name.uas.csv" >"$WORK/$name.uas.out" 2>&1 &
	UAS_PID=$!
	PIDS+=("$UAS_PID")
	sleep 0.5
}

# last_csv FILE COLUMN: a column of the last row of a SIPp -trace_stat file.
last_csv() {
	awk -F';' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i } END { print $c + 0 }' "$1"
}

# sipp_uac NAME DEST COUNT SCENARIO-ARGS...: runs a SIPp UAC at saturation; prints
# "ok failed seconds".
sipp_uac() {
	local name=$1 dest=$2 count=$3
	shift 3
	local start end
	start=$(date +%s.%N)
	timeout 600 sipp "$@" "$dest" -i 127.0.0.1 -r 100000 -rp 1000 -l "$CONCURRENCY" -m "$count" \
		"${BUF[@]}" -recv_timeout 10s -timeout 500s -nostdin -trace_stat -fd 1 \
		-stf "$WORK/$name.csv" >"$WORK/$name.out" 2>&1 || true
	end=$(date +%s.%N)
	echo "$(last_csv "$WORK/$name.csv" 'SuccessfulCall(C)') $(last_csv "$WORK/$name.csv" 'FailedCall(C)') $(echo "$end - $start" | bc)"
}

# start_focus NAME CONFIG: a release cpm-focus on a free port; sets FOCUS_PID and FOCUS_SIP.
start_focus() {
	local name=$1 config=$2
	"$FOCUS_BIN" --config "$config" --sip-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
		--msrp-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 >"$WORK/$name.focus.out" 2>"$WORK/$name.focus.err" &
	FOCUS_PID=$!
	PIDS+=("$FOCUS_PID")
	for _ in $(seq 100); do
		grep -q "cpm-focus ready" "$WORK/$name.focus.out" 2>/dev/null && break
		sleep 0.1
	done
	FOCUS_SIP=$(sed -n 's/.*sip_udp=\([^ ]*\).*/\1/p' "$WORK/$name.focus.out")
	[ -n "$FOCUS_SIP" ] || { echo "compare.sh: cpm-focus did not start" >&2; cat "$WORK/$name.focus.err" >&2; exit 2; }
}

# start_kamailio NAME CFG: sets KAM_PID (the main process; its children go with it).
# Shared memory: tm keeps every transaction for its wait timer; at tens of thousands of
# transactions a second 512 MB runs out and imc stops delivering ("short of cell shmem").
start_kamailio() {
	local name=$1 cfg=$2
	kamailio -f "$cfg" -DD -E -m 4096 -M 64 -w "$WORK" >"$WORK/$name.kamailio.log" 2>&1 &
	KAM_PID=$!
	PIDS+=("$KAM_PID")
	sleep 1.5
}

stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# settle CSV: waits until a UAS's IncomingCall(C) stops growing for 3 s (deliveries trail
# the sender's answers, and a lost one is retransmitted after 0.5, 1, 2 s...).
settle() {
	local prev=-1 same=0 now
	for _ in $(seq 120); do
		sleep 1
		now=$(last_csv "$1" 'IncomingCall(C)')
		if [ "$now" = "$prev" ]; then
			same=$((same + 1))
			[ "$same" -ge 3 ] && break
		else
			same=0
		fi
		prev=$now
	done
}

RESULTS=()
FOCUS_US=()
IMC_US=()
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print 0 }'; }
# record LEG UNIT OK FAILED SECONDS [CPU]
record() {
	local leg=$1 unit=$2 ok=$3 failed=$4 secs=$5 cpu=${6:-}
	local rate
	rate=$(echo "scale=0; $ok / $secs" | bc)
	RESULTS+=("$leg|$unit|$rate|$ok|$failed|$secs|$cpu")
	printf '%-28s %8s %-16s ok=%-7s failed=%-5s %6.1fs %s\n' "$leg" "$rate" "$unit/s" "$ok" "$failed" "$secs" "${cpu:+server_cpu=${cpu}s}" >&2
}

median_rate() {
	printf '%s\n' "${RESULTS[@]}" | awk -F'|' -v leg="$1" '$1 == leg { print $3 }' | sort -n |
		awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print 0 }'
}

echo "cpm-focus compare: $(nproc) cores, $(uname -r), $(sipp -v 2>&1 | grep -o 'SIPp v[0-9.]*' | head -1), $(kamailio -v 2>/dev/null | head -1 | awk '{print $2, $3}' || echo 'no kamailio')" >&2
echo "work dir: $WORK" >&2

# --- the focus configurations -------------------------------------------------------------
cat >"$WORK/calls.toml" <<TOML
[policy]
max_participants_per_session = 100000
[[groups]]
uri = "sip:team@focus.example.com"
max_participants = 100000
TOML

ONLY=${ONLY:-}
for round in $(seq "$ROUNDS"); do
	if [ "$ONLY" != messages ]; then
	# --- calls: the ceiling -----------------------------------------------------------------
	UAS_PORT=$(free_port)
	sipp_uas ceiling "$UAS_PORT"
	read -r ok failed secs < <(sipp_uac "calls-ceiling-$round" "127.0.0.1:$UAS_PORT" "$CALLS" -sn uac)
	record "calls: SIPp->SIPp" calls "$ok" "$failed" "$secs"

	# --- calls: through Kamailio ------------------------------------------------------------
	if command -v kamailio >/dev/null; then
		KAM_PORT=$(free_port)
		sed -e "s/@LISTEN@/127.0.0.1:$KAM_PORT/" -e "s/@UAS@/127.0.0.1:$UAS_PORT/" -e "s/@CHILDREN@/2/" \
			"$ROOT/benches/kamailio.cfg" >"$WORK/kamailio.cfg"
		start_kamailio proxy "$WORK/kamailio.cfg"
		read -r ok failed secs < <(sipp_uac "calls-kamailio-$round" "127.0.0.1:$KAM_PORT" "$CALLS" -sn uac)
		record "calls: SIPp->Kamailio->SIPp" calls "$ok" "$failed" "$secs"
		stop "$KAM_PID"
	fi
	stop "$UAS_PID"

	# --- calls: cpm-focus -------------------------------------------------------------------
	start_focus calls "$WORK/calls.toml"
	c0=$(cpu_s "$FOCUS_PID")
	read -r ok failed secs < <(sipp_uac "calls-focus-$round" "$FOCUS_SIP" "$CALLS" \
		-sf "$ROOT/tests/sipp/join_leave.xml" -s team)
	c1=$(cpu_s "$FOCUS_PID")
	record "calls: SIPp->cpm-focus" calls "$ok" "$failed" "$secs" "$(echo "$c1 - $c0" | bc)"
	stop "$FOCUS_PID"
	fi
	[ "$ONLY" = calls ] && continue

	# --- MESSAGE: the ceiling ---------------------------------------------------------------
	UAS_PORT=$(free_port)
	sipp_uas "msg-$round" "$UAS_PORT" "$ROOT/tests/sipp/load_group_message_uas.xml"
	read -r ok failed secs < <(sipp_uac "msg-ceiling-$round" "127.0.0.1:$UAS_PORT" "$MESSAGES" \
		-sf "$ROOT/tests/sipp/load_group_message_uac.xml" -s member)
	record "MESSAGE: SIPp->SIPp" msgs "$ok" "$failed" "$secs"
	stop "$UAS_PID"

	# --- group MESSAGE: cpm-focus, 10 listed members behind an outbound proxy (the SIPp UAS) ---
	# A member is listed by its address of record (no port), so the focus reaches the members
	# through sip.outbound_proxy, as it would through the S-CSCF in a deployment.
	UAS_PORT=$(free_port)
	{
		echo "[sip]"
		echo "outbound_proxy = \"127.0.0.1:$UAS_PORT\""
		echo "[policy]"
		echo "pager_rate = 1000000"
		echo "pager_queue = 1000000"
		echo "[[groups]]"
		echo "uri = \"sip:gm@focus.example.com\""
		for k in $(seq 10); do
			echo "[[groups.members]]"
			echo "uri = \"sip:m$k@example.com\""
		done
	} >"$WORK/gm.toml"
	sipp_uas "gm-focus-$round" "$UAS_PORT" "$ROOT/tests/sipp/load_group_message_uas.xml"
	start_focus gm "$WORK/gm.toml"
	c0=$(cpu_s "$FOCUS_PID")
	read -r ok failed secs < <(sipp_uac "gm-focus-$round" "$FOCUS_SIP" "$MESSAGES" \
		-sf "$ROOT/tests/sipp/load_group_message_uac.xml" -s gm)
	# Deliveries trail the 202s: wait until the members stop receiving.
	settle "$WORK/gm-focus-$round.uas.csv"
	c1=$(cpu_s "$FOCUS_PID")
	delivered=$(last_csv "$WORK/gm-focus-$round.uas.csv" 'IncomingCall(C)')
	cpu=$(echo "$c1 - $c0" | bc)
	record "group MESSAGE: cpm-focus" msgs "$ok" "$failed" "$secs" "$cpu"
	record "deliveries: cpm-focus" deliveries "$delivered" 0 "$secs" "$cpu"
	FOCUS_US_PER_DELIVERY=$(echo "scale=2; $cpu * 1000000 / ($delivered + 0.0001)" | bc)
	FOCUS_US+=("$FOCUS_US_PER_DELIVERY")
	echo "  focus CPU per delivery: ${FOCUS_US_PER_DELIVERY} us ($delivered deliveries of $((ok * 10)) expected)" >&2
	stop "$FOCUS_PID"
	stop "$UAS_PID"

	if [ -f "$ROOT/benches/imc.sh" ] && command -v kamailio >/dev/null; then
		# shellcheck source=benches/imc.sh
		. "$ROOT/benches/imc.sh"
	fi
done

# --- ratios -----------------------------------------------------------------------------------
ceil=$(median_rate "calls: SIPp->SIPp")
kam=$(median_rate "calls: SIPp->Kamailio->SIPp")
focus=$(median_rate "calls: SIPp->cpm-focus")
mceil=$(median_rate "MESSAGE: SIPp->SIPp")
gm=$(median_rate "deliveries: cpm-focus")
echo
echo "summary ($(date -u +%Y-%m-%d), $ROUNDS round(s), medians):"
printf '  %-36s %8s/s\n' "calls SIPp->SIPp (ceiling)" "$ceil" "calls SIPp->Kamailio->SIPp" "$kam" \
	"calls SIPp->cpm-focus" "$focus" "MESSAGE SIPp->SIPp (ceiling)" "$mceil" \
	"group-message deliveries cpm-focus" "$gm"
ratio() { if [ "${2:-0}" != 0 ]; then echo "scale=2; $1 / $2" | bc; else echo "n/a"; fi; }
echo "  cpm-focus calls / ceiling:        $(ratio "$focus" "$ceil")"
echo "  cpm-focus calls / Kamailio proxy: $(ratio "$focus" "$kam")"
echo "  cpm-focus deliveries / MESSAGE ceiling: $(ratio "$gm" "$mceil")"
if [ "${#IMC_US[@]}" -gt 0 ]; then
	imc=$(median_rate "deliveries: Kamailio imc")
	fu=$(median "${FOCUS_US[@]}")
	iu=$(median "${IMC_US[@]}")
	echo "  imc deliveries:                   $imc/s"
	echo "  focus CPU per delivery / imc's:   $(echo "scale=2; $fu / $iu" | bc) ($fu us vs $iu us, medians)"
fi
echo "  files: $WORK"
