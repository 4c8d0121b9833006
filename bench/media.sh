#!/usr/bin/env bash
# bench/media.sh - Opus <-> PCMU transcoding benchmark (run by `make bench-media`).
#
# N concurrent calls, 20 ms frames, transcoded both ways (Opus from the
# caller -> PCMU to the callee, PCMU from the callee -> Opus to the caller):
#   callgate  : examples/media_bench.rs --fast: the N calls in one MediaHost
#               on one thread, packets fed in simulated time order as fast as
#               the thread goes; figure = that thread's CPU time per
#               call-second (both directions), calls_per_core = 1e6 / it;
#   rtpengine : Debian's rtpengine-daemon in userspace (--table=-1), the same
#               N calls set up over its ng protocol by
#               examples/media_bench_rtpengine.rs (offer: Opus-only SDP from
#               the caller + codec/transcode=[PCMU]; answer: PCMU-only SDP from
#               the callee), then real RTP from 127.0.0.1 sockets (Opus
#               packets encoded by callgate's encoder from the caller, 160-byte
#               PCMU from the callee) at 50 packets/s per direction per call;
#               figure = rtpengine's whole-process CPU (utime+stime from
#               /proc/PID/stat, every thread) over WINDOW_SECS after
#               WARMUP_SECS, per call-second. The run only counts if what
#               reaches the callees is PT 0 with 160-byte payloads and what
#               reaches the callers is Opus (PT 111), i.e. it really transcoded.
# Both figures are CPU microseconds per second of two-way call. rtpengine's
# idle CPU (measured for IDLE_SECS before any call) is printed, not subtracted.
#
# Last line:
#   bench-media: callgate_us_per_call_second=X rtpengine_us_per_call_second=Y ratio=X/Y callgate_calls_per_core=N
# (Y and ratio are NA, with the reason on the line before, when rtpengine
# could not be measured.)
#
# Knobs (environment or arguments): CALLS (first argument, 100) WINDOW_SECS
# (second argument, 10: callgate's media seconds and rtpengine's window)
# WARMUP_SECS (3) IDLE_SECS (2) RTPENGINE_BIN BENCH_OUT; ports: NG_PORT
# (22240) RTPENGINE_MEDIA (46000-47999). The benchmark's own RTP sockets take
# ephemeral ports on 127.0.0.1. Every wait and run is bounded.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

CALLS=${1:-${CALLS:-100}}
WINDOW_SECS=${2:-${WINDOW_SECS:-10}}
WARMUP_SECS=${WARMUP_SECS:-3}
IDLE_SECS=${IDLE_SECS:-2}
CARGO=${CARGO:-cargo}
RTPENGINE_BIN=${RTPENGINE_BIN:-rtpengine}
OUT=${BENCH_OUT:-$ROOT/target/bench-media}
LO=127.0.0.1
NG_PORT=${NG_PORT:-22240}
RTPENGINE_MEDIA=${RTPENGINE_MEDIA:-46000-47999}
CLK_TCK=$(getconf CLK_TCK)

rm -rf "$OUT"
mkdir -p "$OUT"

# ------------------------------------------------------------ processes ---
STARTED=()

# start NAME CMD... : own session/process group, output to $OUT/NAME.log; sets PID
start() {
    local name=$1
    shift
    setsid "$@" >"$OUT/$name.log" 2>&1 </dev/null &
    PID=$!
    STARTED+=("$PID")
}

alive() { kill -0 "$1" 2>/dev/null; }

# stop PID : SIGTERM to its group, SIGKILL after 10 s
stop() {
    local pg=$1 i
    kill -TERM -- "-$pg" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$pg" || break
        sleep 0.1
    done
    kill -KILL -- "-$pg" 2>/dev/null || true
    wait "$pg" 2>/dev/null || true
}

cleanup() {
    local pg
    for pg in "${STARTED[@]}"; do
        kill -KILL -- "-$pg" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

udp_bound() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" 'NR > 1 && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
        /proc/net/udp /proc/net/udp6 2>/dev/null
}

# utime+stime of PID in clock ticks
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# get KEY LINE : the value of KEY=... in LINE
get() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

STATUS=0
echo "bench-media: $CALLS calls, Opus <-> PCMU both ways, 20 ms frames; load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------- callgate ---
echo "== callgate: cargo run --release --example media_bench -- $CALLS $WINDOW_SECS --fast"
"$CARGO" build --release --quiet --example media_bench --example media_bench_rtpengine
if timeout --signal=TERM --kill-after=5 $((WINDOW_SECS * 20 + 120)) \
    "$CARGO" run --release --quiet --example media_bench -- "$CALLS" "$WINDOW_SECS" --fast \
    >"$OUT/callgate.log" 2>&1; then
    :
else
    echo "   media_bench failed (exit $?)"
    STATUS=1
fi
sed 's/^/   /' "$OUT/callgate.log"
# "  CPU X s over Y s wall: Z us per call-second, W us per packet"
CG=$(awk '/^  CPU .* us per call-second/ { for (i = 1; i < NF; i++) if ($(i + 1) == "us" && $(i + 2) == "per" && $(i + 3) == "call-second,") print $i }' "$OUT/callgate.log")
CG=${CG:-NA}
if [ "$CG" = NA ] || [ "$(awk -v x="$CG" 'BEGIN { print (x + 0 > 0) }')" != 1 ]; then
    echo "   no callgate figure in the output"
    CG=NA
    STATUS=1
fi

# ------------------------------------------------------------ rtpengine ---
RE=NA
WHY=""
echo "== rtpengine: $CALLS calls transcoded Opus <-> PCMU, ${WARMUP_SECS} s warm-up, ${WINDOW_SECS} s window"
if ! command -v "$RTPENGINE_BIN" >/dev/null 2>&1; then
    WHY="$RTPENGINE_BIN is not installed (Debian package rtpengine-daemon: make deps)"
elif udp_bound "$NG_PORT"; then
    WHY="UDP port $NG_PORT (ng) is already in use (NG_PORT)"
else
    start rtpengine "$RTPENGINE_BIN" --config-file=none --table=-1 --foreground --log-stderr \
        --log-level=5 --interface=$LO --listen-ng=$LO:$NG_PORT \
        --port-min="${RTPENGINE_MEDIA%-*}" --port-max="${RTPENGINE_MEDIA#*-}" \
        --timeout=60 --delete-delay=0
    RE_PID=$PID
    up=""
    for ((i = 0; i < 100; i++)); do
        alive "$RE_PID" || break
        if udp_bound "$NG_PORT"; then
            up=1
            break
        fi
        sleep 0.1
    done
    if [ -z "$up" ]; then
        WHY="rtpengine did not start: $(tail -3 "$OUT/rtpengine.log" | tr '\n' ' ')"
    else
        idle0=$(cpu_ticks "$RE_PID")
        sleep "$IDLE_SECS"
        idle1=$(cpu_ticks "$RE_PID")
        echo "   rtpengine idle: $(awk -v t=$((idle1 - idle0)) -v h="$CLK_TCK" -v s="$IDLE_SECS" 'BEGIN { printf "%.1f ms CPU per second", t * 1000 / h / s }')"
        line=$(timeout --signal=TERM --kill-after=5 $((WARMUP_SECS + WINDOW_SECS + 120)) \
            "$ROOT/target/release/examples/media_bench_rtpengine" --ng "$LO:$NG_PORT" \
            --calls "$CALLS" --secs "$WINDOW_SECS" --warmup "$WARMUP_SECS" --pid "$RE_PID" \
            --clk-tck "$CLK_TCK" 2>"$OUT/client.log" | tail -1) || true
        echo "   ${line:-no output from media_bench_rtpengine (see $OUT/client.log)}"
        alive "$RE_PID" || WHY="rtpengine died during the run (log $OUT/rtpengine.log)"
        stop "$RE_PID"
        if [ -z "$WHY" ]; then
            err=$(sed -n 's/.* error=//p' <<<"$line")
            if [ "${line#media_bench_rtpengine:}" = "$line" ]; then
                WHY="no result from media_bench_rtpengine: $(tail -3 "$OUT/client.log" | tr '\n' ' ')"
            elif [ -n "$err" ]; then
                WHY="rtpengine refused the transcoding setup: $err"
            elif [ "$(get transcoded "$line")" != yes ]; then
                WHY="rtpengine did not transcode (callee side: $(get win_a2b_pcmu160 "$line") of $(get win_a2b "$line") packets PT 0/160 bytes; caller side: $(get win_b2a_opus "$line") of $(get win_b2a "$line") Opus)"
            else
                RE=$(get us_per_call_second "$line")
                lost=$(($(get win_sent "$line") - $(get win_a2b "$line") - $(get win_b2a "$line")))
                echo "   verified: callee side got PT 0 / 160-byte payloads only, caller side Opus only; window loss $lost packets"
            fi
        fi
    fi
fi
if [ "$RE" = NA ]; then
    echo "bench-media: rtpengine not measured: $WHY"
    STATUS=1
fi

echo "logs: $OUT"
fmt() { awk -v x="$1" 'BEGIN { if (x == "NA") print "NA"; else printf "%.1f", x }'; }
ratio=$(awk -v a="$CG" -v b="$RE" 'BEGIN { if (a != "NA" && b != "NA" && b + 0 > 0) printf "%.3f", a / b; else print "NA" }')
per_core=$(awk -v a="$CG" 'BEGIN { if (a != "NA" && a + 0 > 0) printf "%.0f", 1e6 / a; else print "NA" }')
echo "bench-media: callgate_us_per_call_second=$(fmt "$CG") rtpengine_us_per_call_second=$(fmt "$RE") ratio=$ratio callgate_calls_per_core=$per_core"
exit $STATUS
