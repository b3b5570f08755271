# Sourced by benches/compare.sh for each round: Kamailio imc fanning each MESSAGE of one
# member ("sender", SIPp's From in tests/sipp/load_group_message_uac.xml) out to the 9 other
# members of a room of 10, all answered by one SIPp UAS behind imc's outbound proxy.
# Sets IMC_US_PER_DELIVERY (Kamailio CPU per delivered MESSAGE, all its processes).

UAS_PORT=$(free_port)
KAM_PORT=$(free_port)
rm -rf "$WORK/imcdb" && mkdir -p "$WORK/imcdb"
for t in version imc_rooms imc_members; do
	cp "/usr/share/kamailio/dbtext/kamailio/$t" "$WORK/imcdb/"
done
sed -e "s/@LISTEN@/127.0.0.1:$KAM_PORT/" -e "s/@UAS@/127.0.0.1:$UAS_PORT/" -e "s/@CHILDREN@/2/" \
	-e "s|@DB@|$WORK/imcdb|" "$ROOT/benches/kamailio-imc.cfg" >"$WORK/kamailio-imc.cfg"
sipp_uas "imc-$round" "$UAS_PORT" "$ROOT/tests/sipp/load_group_message_uas.xml"
start_kamailio imc "$WORK/kamailio-imc.cfg"
{
	echo "SEQUENTIAL"
	echo "sender"
	for k in $(seq 9); do echo "m$k"; done
} >"$WORK/imc_members.csv"
timeout 60 sipp -sf "$ROOT/benches/imc_join.xml" -inf "$WORK/imc_members.csv" -s gm \
	"127.0.0.1:$KAM_PORT" -i 127.0.0.1 -m 10 -r 10 -recv_timeout 5s -nostdin \
	>"$WORK/imc-join.out" 2>&1 || echo "  imc: joining the room failed (see $WORK/imc-join.out)" >&2
sleep 1
base=$(last_csv "$WORK/imc-$round.uas.csv" 'IncomingCall(C)')
kam_cpu() {
	local total=0 p
	for p in $KAM_PID $(pgrep -P "$KAM_PID"); do total=$(echo "$total + $(cpu_s "$p")" | bc); done
	echo "$total"
}
c0=$(kam_cpu)
read -r ok failed secs < <(sipp_uac "imc-$round" "127.0.0.1:$KAM_PORT" "$MESSAGES" \
	-sf "$ROOT/tests/sipp/load_group_message_uac.xml" -s gm)
settle "$WORK/imc-$round.uas.csv"
c1=$(kam_cpu)
delivered=$(($(last_csv "$WORK/imc-$round.uas.csv" 'IncomingCall(C)') - base))
cpu=$(echo "$c1 - $c0" | bc)
record "group MESSAGE: Kamailio imc" msgs "$ok" "$failed" "$secs" "$cpu"
record "deliveries: Kamailio imc" deliveries "$delivered" 0 "$secs" "$cpu"
IMC_US_PER_DELIVERY=$(echo "scale=2; $cpu * 1000000 / ($delivered + 0.0001)" | bc)
IMC_US+=("$IMC_US_PER_DELIVERY")
echo "  imc CPU per delivery: ${IMC_US_PER_DELIVERY} us ($delivered deliveries of $((ok * 9)) expected)" >&2
stop "$KAM_PID"
stop "$UAS_PID"
