#!/usr/bin/env bash
# bench/relay.sh - RTP relay benchmark (run by `make bench-relay`).
#
# N concurrent calls with 20 ms RTP both ways (PCMU, 172-byte packets, 50
# packets/s per direction per call) through two media relays, one after the
# other, for each N of CALL_COUNTS:
#   callgate  : calls set up over SIP by examples/relay_bench.rs (caller and
#               callee in one process) through `callgate run` in mode: b2bua,
#               media: anchor (dial plan written to $OUT);
#   rtpengine : Debian's rtpengine-daemon in userspace (--table=-1, no kernel
#               module), the same calls set up through its ng control protocol
#               (offer/answer/delete, bencode over UDP) by the same program.
# The program binds every endpoint's RTP socket on 127.0.0.1, sends from all of
# them spread evenly over each 20 ms, counts what comes back through the relay,
# and reads the relay's CPU time (utime+stime of the whole process, all
# threads, from /proc/PID/stat) over a window of WINDOW_SECS after WARMUP_SECS
# of media. us_per_packet = CPU time in the window / packets that crossed the
# relay in the window. Loss = packets sent - packets received over the whole
# run, counted once the received count has stood still for 300 ms (callgate
# binds a call's ports before the SIP message naming them leaves, so even the
# first packets find them open); win_lost = the same within the window
# (steady state, give or take the packets in flight at its ends). The sends
# all come from one thread in 1 ms slots (a burst of 2N/20 packets a ms).
#
# Every N runs ROUNDS times, the relays alternating (callgate, rtpengine,
# callgate, ...), so a burst of other work on the machine hits both alike.
# Last line (figures summed over every N and round: total CPU / total packets):
#   bench-relay: callgate_us_per_packet=X rtpengine_us_per_packet=Y ratio=X/Y
#
# callgate moves media with io_uring when the kernel allows it, else with one
# tokio task per port (src/runtime/media_uring.rs, media_tokio.rs); each
# callgate row says which (io column, from its log). RELAYS may also name
# callgate-tokio: callgate forced onto the tokio path (CALLGATE_MEDIA_IO=tokio),
# reported as callgate_tokio_us_per_packet on the last line. callgate reads
# CALLGATE_MEDIA_IO (auto|tokio|uring) and CALLGATE_MEDIA_COALESCE_US (how long
# its io_uring driver may wait for more packets once one is there; default 0)
# from the environment this script runs in.
#
# Everything runs on 127.0.0.1; every wait and run is bounded.
# Knobs (environment): CALL_COUNTS ROUNDS WARMUP_SECS WINDOW_SECS PPS RELAYS
# CALLGATE_BIN RTPENGINE_BIN CLIENT_BIN (a built relay_bench; default: cargo builds it)
# BENCH_OUT; ports: SIP_PORT (35060) CARRIER_PORT (35080)
# TRUNK_PORT (35070) UAC_PORT (35100) ADMIN_PORT (39090) NG_PORT (39223)
# CALLGATE_MEDIA (21000-22999) RTPENGINE_MEDIA (23000-24999) RTP_BASE (27000:
# the endpoints use RTP_BASE .. RTP_BASE+4N). The media ranges stay below the
# kernel's ephemeral ports (32768-60999), where any process's socket could
# take a relay port; a port callgate cannot bind shows as bind_err (that leg
# gets no media, its packets count as lost).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

CALL_COUNTS=${CALL_COUNTS:-"100 300"}
ROUNDS=${ROUNDS:-2}
WARMUP_SECS=${WARMUP_SECS:-3}
WINDOW_SECS=${WINDOW_SECS:-10}
PPS=${PPS:-50}
RELAYS=${RELAYS:-"callgate rtpengine"}
CARGO=${CARGO:-cargo}
CALLGATE_BIN=${CALLGATE_BIN:-$ROOT/target/release/callgate}
RTPENGINE_BIN=${RTPENGINE_BIN:-rtpengine}
CLIENT_BIN=${CLIENT_BIN:-}
OUT=${BENCH_OUT:-$ROOT/target/bench-relay}

LO=127.0.0.1
SIP_PORT=${SIP_PORT:-35060}
CARRIER_PORT=${CARRIER_PORT:-35080}
TRUNK_PORT=${TRUNK_PORT:-35070}
UAC_PORT=${UAC_PORT:-35100}
ADMIN_PORT=${ADMIN_PORT:-39090}
NG_PORT=${NG_PORT:-39223}
CALLGATE_MEDIA=${CALLGATE_MEDIA:-21000-22999}
RTPENGINE_MEDIA=${RTPENGINE_MEDIA:-23000-24999}
RTP_BASE=${RTP_BASE:-27000}
CLK_TCK=$(getconf CLK_TCK)

rm -rf "$OUT"
mkdir -p "$OUT"

if [ -z "$CLIENT_BIN" ]; then
    echo "bench-relay: building examples/relay_bench.rs"
    "$CARGO" build --release --quiet --example relay_bench
    CLIENT_BIN=$ROOT/target/release/examples/relay_bench
fi
[ -x "$CALLGATE_BIN" ] || {
    echo "bench-relay: $CALLGATE_BIN not built (make build)" >&2
    exit 2
}

# ------------------------------------------------------------ processes ---
source "$ROOT/bench/lib.sh"

for p in $SIP_PORT $CARRIER_PORT $TRUNK_PORT $UAC_PORT $NG_PORT; do
    if udp_bound "$p"; then
        echo "bench-relay: UDP port $p is in use (see the knobs at the head of bench/relay.sh)" >&2
        exit 1
    fi
done

# ------------------------------------------------------------- relays ---
cat >"$OUT/relay.yaml" <<EOF
# bench/relay.sh: every call through the B2BUA with media anchored
version: 1
admin: $LO:$ADMIN_PORT
media:
  address: $LO
  ports: $CALLGATE_MEDIA
listeners:
  - name: client
    side: client
    udp: $LO:$SIP_PORT
  - name: carrier
    side: carrier
    udp: $LO:$CARRIER_PORT
trunks:
  - name: carrier-a
    address: $LO:$TRUNK_PORT
    transport: udp
routes:
  - name: bench
    match:
      source: client
    mode: b2bua
    media: anchor
    trunks: [carrier-a]
EOF

RTPENGINE_WHY=""
if ! command -v "$RTPENGINE_BIN" >/dev/null 2>&1; then
    RTPENGINE_WHY="$RTPENGINE_BIN is not installed (Debian package rtpengine-daemon: make deps)"
fi

# start_relay NAME : sets RELAY_PID, empty if it did not come up (reason in RELAY_WHY)
start_relay() {
    local i
    RELAY_PID=
    RELAY_WHY=
    case $1 in
    callgate | callgate-tokio)
        local io=${CALLGATE_MEDIA_IO:-auto}
        [ "$1" = callgate ] || io=tokio
        start $1-$2 env CALLGATE_MEDIA_IO="$io" "$CALLGATE_BIN" run --dialplan "$OUT/relay.yaml"
        for ((i = 0; i < 100; i++)); do
            alive "$PID" || break
            if [ "$(http_status "$ADMIN_PORT" /healthz)" = 200 ]; then
                RELAY_PID=$PID
                return 0
            fi
            sleep 0.1
        done
        RELAY_WHY="callgate did not start: $(tail -3 "$OUT/$1-$2.log" | tr '\n' ' ')"
        ;;
    rtpengine)
        if [ -n "$RTPENGINE_WHY" ]; then
            RELAY_WHY=$RTPENGINE_WHY
            return 0
        fi
        # userspace forwarding only (--table=-1: no kernel module, no
        # iptables); one interface on loopback; no config file
        start rtpengine-$2 "$RTPENGINE_BIN" --config-file=none --table=-1 --foreground --log-stderr \
            --log-level=4 --interface=$LO --listen-ng=$LO:$NG_PORT \
            --port-min="${RTPENGINE_MEDIA%-*}" --port-max="${RTPENGINE_MEDIA#*-}" \
            --timeout=60 --delete-delay=0
        for ((i = 0; i < 100; i++)); do
            alive "$PID" || break
            if udp_bound "$NG_PORT"; then
                RELAY_PID=$PID
                return 0
            fi
            sleep 0.1
        done
        RELAY_WHY="rtpengine did not start: $(tail -3 "$OUT/rtpengine-$2.log" | tr '\n' ' ')"
        ;;
    esac
    [ -z "${PID:-}" ] || stop "$PID"
}

# ---------------------------------------------------------------- bench ---
declare -A CPU_SUM PKT_SUM
ROWS=()
ROW_FMT='%-14s %5s %5s %7s %7s %9s %6s %6s %6s %7s %6s %6s %8s %8s %8s'
# get KEY : the value of KEY=... in $line
get() { tr ' ' '\n' <<<"$line" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
STATUS=0
echo "bench-relay: load before the run: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores; other work skews the figures)"

RUNS=()
for n in $CALL_COUNTS; do
    for ((round = 1; round <= ROUNDS; round++)); do
        for relay in $RELAYS; do
            RUNS+=("$n $relay $round")
        done
    done
done

for run in "${RUNS[@]}"; do
    read -r n relay round <<<"$run"
    tag=$relay-$n-r$round
    echo "== $relay, $n calls ($((2 * n)) streams, $((2 * n * PPS)) packets/s offered), round $round"
    start_relay "$relay" "$tag"
    if [ -z "$RELAY_PID" ]; then
        echo "   $RELAY_WHY"
        ROWS+=("$(printf '%-10s %5s %5s  %s' "$relay" "$n" "$round" "not run: $RELAY_WHY")")
        if [ "$relay" = rtpengine ]; then
            RTPENGINE_WHY=${RTPENGINE_WHY:-$RELAY_WHY}
        fi
        STATUS=1
        continue
    fi
    client=$relay
    if [ "$relay" != rtpengine ]; then
        client=callgate
        extra=(--sip "$LO:$SIP_PORT" --uac "$LO:$UAC_PORT" --uas "$LO:$TRUNK_PORT" --admin "$LO:$ADMIN_PORT")
    else
        extra=(--ng "$LO:$NG_PORT")
    fi
    line=$(timeout --signal=TERM --kill-after=5 $((WARMUP_SECS + WINDOW_SECS + 90)) \
        "$CLIENT_BIN" "$client" --calls "$n" --pps "$PPS" --warmup "$WARMUP_SECS" \
        --secs "$WINDOW_SECS" --pid "$RELAY_PID" --clk-tck "$CLK_TCK" --rtp-base "$RTP_BASE" \
        "${extra[@]}" 2>"$OUT/client-$tag.log" | tail -1) || true
    alive "$RELAY_PID" || {
        echo "   $relay died during the run (log $OUT/$tag.log)"
        STATUS=1
    }
    stop "$RELAY_PID"
    if [ "${line#relay_bench:}" = "$line" ]; then
        echo "   no result; client log:"
        sed 's/^/   /' "$OUT/client-$tag.log" | tail -5
        ROWS+=("$(printf '%-10s %5s %5s  %s' "$relay" "$n" "$round" "no result (see $OUT)")")
        STATUS=1
        continue
    fi
    # which media path callgate took (its start-up log line)
    io=-
    if [ "$client" = callgate ]; then
        io=$(grep -ao 'media I/O: io_uring' "$OUT/$relay-$tag.log" 2>/dev/null | head -1 || true)
        io=${io:+io_uring}
        io=${io:-tokio}
    fi
    echo "   $line io=$io"
    echo "$line io=$io" >>"$OUT/results.txt"
    cpu=$(get cpu_s)
    relayed=$(get relayed)
    if [ "$cpu" != NA ]; then
        CPU_SUM[$relay]=$(awk -v a="${CPU_SUM[$relay]:-0}" -v b="$cpu" 'BEGIN { print a + b }')
        PKT_SUM[$relay]=$((${PKT_SUM[$relay]:-0} + relayed))
    fi
    ROWS+=("$(printf "$ROW_FMT" "$relay" "$n" "$round" "$(get streams)" "$(get offered_pps)" \
        "$relayed" "$cpu" "$(get user_s)" "$(get sys_s)" "$(get us_per_packet)" "$(get lost)" \
        "$(get loss_pct)" "$(get window_lost)" "$(get relay_bind_errors)" "$io")")
    bind_err=$(get relay_bind_errors)
    if [ "$(get setup_failed)" != 0 ] || [ "$(get teardown_failed)" != 0 ] || [ "${bind_err:-0}" != 0 ]; then
        STATUS=1
    fi
    sleep 1
done

echo
echo "window: $WINDOW_SECS s after $WARMUP_SECS s of media; $PPS packets/s per direction per call"
printf "$ROW_FMT\n" relay calls round streams pps relayed cpu_s user_s sys_s us/pkt lost loss% win_lost bind_err io
for r in "${ROWS[@]}"; do
    echo "$r"
done
echo "logs: $OUT"

us_of() {
    awk -v c="${CPU_SUM[$1]:-0}" -v p="${PKT_SUM[$1]:-0}" 'BEGIN { if (p > 0) printf "%.2f", c * 1e6 / p; else print "NA" }'
}
cg=$(us_of callgate)
re=$(us_of rtpengine)
ratio=$(awk -v a="$cg" -v b="$re" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "NA" }')
if [ "$re" = NA ] && [ -n "$RTPENGINE_WHY" ]; then
    echo "bench-relay: rtpengine not measured: $RTPENGINE_WHY"
fi
tk=""
if [ -n "${PKT_SUM[callgate-tokio]:-}" ]; then
    tk=" callgate_tokio_us_per_packet=$(us_of callgate-tokio)"
fi
echo "bench-relay: callgate_us_per_packet=$cg rtpengine_us_per_packet=$re ratio=$ratio$tk"
exit $STATUS
