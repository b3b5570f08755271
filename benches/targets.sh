#!/usr/bin/env bash
# The issue-7 targets with focus-load against a release cpm-focus (see BENCHMARKS.md): one
# focus per scenario, started here on free ports with a configuration from `focus-load config`.
# Prints each phase as JSON (one object per line) and keeps the files in a work directory.
#
# Environment: SKIP_BUILD=1 to use the built binaries; ONLY=join|message|chat|storm|soak to run
# one scenario; LOAD_ARGS (e.g. "--threads 2") for every focus-load run; JOIN_RATE (10000), JOIN_SECS (60), CHAT_RATE (1000 SENDs/s to 100 participants),
# MSG_RATE (3600 MESSAGEs/s to 10 members), SOAK_SESSIONS (10000), SOAK_PARTICIPANTS (10).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cpm-targets.XXXXXX")
ONLY=${ONLY:-}
JOIN_RATE=${JOIN_RATE:-10000}
JOIN_SECS=${JOIN_SECS:-60}
CHAT_RATE=${CHAT_RATE:-1000}
MSG_RATE=${MSG_RATE:-3600}
SOAK_SESSIONS=${SOAK_SESSIONS:-10000}
SOAK_PARTICIPANTS=${SOAK_PARTICIPANTS:-10}
FOCUS_PID=
cleanup() { [ -n "$FOCUS_PID" ] && kill "$FOCUS_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

if [ -z "${SKIP_BUILD:-}" ]; then
	(cd "$ROOT" && cargo build --release --features load-tool --bin cpm-focus --bin focus-load >&2)
fi
LOAD=$TARGET/release/focus-load
sysctl -qw net.core.rmem_max=16777216 net.core.wmem_max=16777216 2>/dev/null || true

# start NAME CONFIG-ARGS...: a focus with `focus-load config CONFIG-ARGS`; sets FOCUS_PID/FOCUS_SIP.
start() {
	local name=$1
	shift
	"$LOAD" config "$@" >"$WORK/$name.toml"
	"$TARGET/release/cpm-focus" --config "$WORK/$name.toml" --sip-listen 127.0.0.1:0 \
		--msrp-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
		>"$WORK/$name.focus.out" 2>"$WORK/$name.focus.err" &
	FOCUS_PID=$!
	for _ in $(seq 200); do
		grep -q "cpm-focus ready" "$WORK/$name.focus.out" 2>/dev/null && break
		sleep 0.1
	done
	FOCUS_SIP=$(sed -n 's/.*sip_udp=\([^ ]*\).*/\1/p' "$WORK/$name.focus.out")
	[ -n "$FOCUS_SIP" ] || { echo "targets.sh: cpm-focus did not start" >&2; cat "$WORK/$name.focus.err" >&2; exit 2; }
}
stop() { kill "$FOCUS_PID" 2>/dev/null || true; wait "$FOCUS_PID" 2>/dev/null || true; FOCUS_PID=; }
# load NAME SCENARIO-ARGS...: focus-load against the running focus; its JSON lines to stdout.
load() {
	local name=$1
	shift
	echo "== $name: focus-load $*" >&2
	"$LOAD" ${LOAD_ARGS:-} --focus "$FOCUS_SIP" --focus-pid "$FOCUS_PID" --json --max-fail-ratio 0.001 "$@" \
		2>"$WORK/$name.err" | tee "$WORK/$name.json" || echo "  ($name: focus-load exited non-zero)" >&2
}

echo "cpm-focus targets: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ), work dir $WORK" >&2
if [ -z "$ONLY" ] || [ "$ONLY" = join ]; then
	start join --groups 100 --max-participants 1000
	load join-full join-leave --groups 100 --rate "$JOIN_RATE" --duration "$JOIN_SECS" --sockets 4
	load join-80pct join-leave --groups 100 --rate "$((JOIN_RATE * 8 / 10))" --duration 20 --sockets 4
	stop
fi
if [ -z "$ONLY" ] || [ "$ONLY" = message ]; then
	start message --groups 10 --max-participants 100 --pager-rate 1000000
	load message group-message --groups 10 --members 10 --rate "$MSG_RATE" --duration 20
	stop
fi
if [ -z "$ONLY" ] || [ "$ONLY" = chat ]; then
	start chat --groups 1 --max-participants 200
	load chat-full group-chat --groups 1 --sessions 1 --participants 100 --rate "$CHAT_RATE" --duration 20
	load chat-half group-chat --groups 1 --sessions 1 --participants 100 --rate "$((CHAT_RATE / 2))" --duration 20
	stop
fi
if [ -z "$ONLY" ] || [ "$ONLY" = storm ]; then
	start storm --groups 1 --max-participants 2000 --min-notify-interval-ms 1000
	load storm roster-storm --groups 1 --participants 1000 --subscribers 1000 --rate 100 --duration 20 --interval-ms 1000
	stop
fi
if [ -z "$ONLY" ] || [ "$ONLY" = soak ]; then
	start soak --groups "$SOAK_SESSIONS" --max-participants 100 --min-notify-interval-ms 1000
	load soak idle-soak --groups "$SOAK_SESSIONS" --sessions "$SOAK_SESSIONS" --participants "$SOAK_PARTICIPANTS" --duration 10 --interval-ms 1000
	stop
fi
echo "files: $WORK" >&2
