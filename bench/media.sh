#!/usr/bin/env bash
# bench/media.sh - Opus <-> PCMU transcoding benchmark (run by `make bench-media`).
#
# N concurrent calls, 20 ms frames, transcoded both ways (Opus from the
# caller -> PCMU to the callee, PCMU from the callee -> Opus to the caller),
# through two gateway processes measured the same way by one client,
# examples/media_bench_wire/ (`--target callgate` / `--target rtpengine`):
#   callgate  : `callgate run` with a generated plan ($OUT/plan.yaml): a route
#               mode: b2bua, media: anchor to a trunk with codecs: [PCMU]; the
#               client's UAC sends INVITE with an Opus-only SDP, its UAS on the
#               trunk address answers PCMU only, so the B2BUA transcodes;
#   rtpengine : Debian's rtpengine-daemon in userspace (--table=-1), the same
#               calls set up over its ng protocol (offer: Opus-only SDP plus
#               codec/transcode=[PCMU]; answer: PCMU-only SDP).
# Set-up is outside the measurement. Then the same real RTP from 127.0.0.1
# sockets: Opus (PT 111, callgate's encoder) from every caller, 160-byte PCMU
# from every callee, 50 packets/s per direction per call. Figure = the
# gateway's whole-process CPU (utime+stime from /proc/PID/stat, every thread:
# sockets, syscalls, transcoding) over WINDOW_SECS after WARMUP_SECS, per
# call-second (CPU microseconds per second of two-way call). A run counts only
# if what reached the callees was PT 0 with 160-byte payloads and what
# reached the callers was Opus, i.e. it really transcoded, and if the gateway
# kept up: at least 99% of the packets sent in the window came back in it (a
# gateway short of CPU only gets what it gets, so its CPU per call-second
# would be a lower bound: such a figure is printed as NA with the reason).
#
# Lateness, measured by the client on its receiving sockets: each transcoded
# packet is matched to its input (the first packet a socket gets is the output
# of the first input sent toward it; the output RTP timestamp counts 20 ms
# frames from there), and its latency is its kernel receive time
# (SO_TIMESTAMPNS: when the gateway's sendto delivered it on loopback) minus
# the input's send time (taken just before the sendto that delivered it to the
# gateway): how long the gateway held the frame. Late = more than one frame
# period (20 ms). Also per stream: gaps > 30 ms between packets, the largest
# gap, sequence and timestamp discontinuities.
#
# CPUs: the gateways run under `taskset -c $GW_CPUS` (default 0) and the
# client under `taskset -c $LOAD_CPUS` (default 1), so the load generator does
# not compete with the gateway for its core. callgate sizes its runtime
# threads (shards) from the CPUs it may run on (available_parallelism honours
# the affinity mask): on one CPU it runs one shard. Other processes on the
# machine still run on that CPU: the load average is printed before and after
# every run; on a loaded machine a gateway may not get the core it needs.
#
# Runs, in order:
#   1. callgate in process, transcoding work only (examples/media_bench.rs
#      --fast: one MediaHost fed the last N of RT_CALLS (else CALLS) calls
#      in simulated time, no sockets, no syscalls): printed, not on the last
#      line;
#   2. the comparison: CALLS calls through callgate, then through rtpengine
#      (same N, same CPUs) -> the last line;
#   3. real time at each N of RT_CALLS (default "300 360", in rising order;
#      0 skips), stopping after the first N that misses: callgate, then
#      rtpengine, the lateness of each and the CPU callgate used -> one
#      `bench-media-realtime:` line per N, printed together before the last
#      line. `no_late_frame: met` means callgate kept up (>= 99% of the
#      packets back in the window) and no frame of the window was late;
#      calls_per_core_at_full_cpu = 1e6 / its CPU per call-second (what a
#      core would carry at 100%, queueing).
# CALLS defaults to 50 because rtpengine needs 10-13 ms of CPU per
# call-second: 300 calls would need 3-4 cores, so at 300 on one core it
# cannot keep up and its figure would not be a measurement. Both gateways
# cost less per call-second as N grows (more packets per wake-up): callgate
# measured 2900-3700 us at 50 calls and 2250-2400 at 300 (Opus encoded as
# CELT: no loss reported), so 1e6 / X of the 50-call run says less about a
# core's capacity than the real-time runs do.
#
# Last line:
#   bench-media: callgate_us_per_call_second=X rtpengine_us_per_call_second=Y ratio=X/Y callgate_calls_per_core=N
# with N = the largest real-time N (step 3) that met no_late_frame, divided
# by the CPUs of GW_CPUS (1 by default): calls a core carries with no late
# frame, measured rather than extrapolated. Values that could not be
# measured are NA, with the reason on the line before.
#
# Knobs (environment or arguments): CALLS (first argument, 50) WINDOW_SECS
# (second argument, 10) RT_CALLS ("300 360") WARMUP_SECS (3) IDLE_SECS (2)
# GW_CPUS (0; empty: not pinned) LOAD_CPUS (1; empty: not pinned)
# RTPENGINE_BIN BENCH_OUT; ports: SIP_PORT (29160) CARRIER_PORT (29162)
# TRUNK_PORT (29164) ADMIN_PORT (29166) NG_PORT (29168) CALLGATE_MEDIA
# (31000-32767, 442 calls) RTPENGINE_MEDIA (7000-8999). The media ranges stay
# below the kernel's ephemeral ports (32768-60999), where the client's own
# RTP sockets (127.0.0.1, ephemeral) are. Every wait and run is bounded.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

CALLS=${1:-${CALLS:-50}}
WINDOW_SECS=${2:-${WINDOW_SECS:-10}}
RT_CALLS=${RT_CALLS-"300 360"}
WARMUP_SECS=${WARMUP_SECS:-3}
IDLE_SECS=${IDLE_SECS:-2}
CARGO=${CARGO:-cargo}
RTPENGINE_BIN=${RTPENGINE_BIN:-rtpengine}
OUT=${BENCH_OUT:-$ROOT/target/bench-media}
LO=127.0.0.1
if [ "$(nproc)" -ge 2 ]; then
    GW_CPUS=${GW_CPUS-0}
    LOAD_CPUS=${LOAD_CPUS-1}
else
    GW_CPUS=${GW_CPUS-}
    LOAD_CPUS=${LOAD_CPUS-}
fi
SIP_PORT=${SIP_PORT:-29160}
CARRIER_PORT=${CARRIER_PORT:-29162}
TRUNK_PORT=${TRUNK_PORT:-29164}
ADMIN_PORT=${ADMIN_PORT:-29166}
NG_PORT=${NG_PORT:-29168}
CALLGATE_MEDIA=${CALLGATE_MEDIA:-31000-32767}
RTPENGINE_MEDIA=${RTPENGINE_MEDIA:-7000-8999}
CLK_TCK=$(getconf CLK_TCK)
CALLGATE_BIN=$ROOT/target/release/callgate
CLIENT_BIN=$ROOT/target/release/examples/media_bench_wire

rm -rf "$OUT"
mkdir -p "$OUT"

# ------------------------------------------------------------ processes ---
STOP_GRACE_SECS=15
source "$ROOT/bench/lib.sh"

# wait_bound PID PORT : up to 10 s for PORT to be bound while PID lives
wait_bound() {
    local i
    for ((i = 0; i < 100; i++)); do
        alive "$1" || return 1
        udp_bound "$2" && return 0
        sleep 0.1
    done
    return 1
}

# utime+stime of PID in clock ticks
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# idle_cpu PID : print its CPU per second over IDLE_SECS
idle_cpu() {
    local a b
    a=$(cpu_ticks "$1")
    sleep "$IDLE_SECS"
    b=$(cpu_ticks "$1")
    awk -v t=$((b - a)) -v h="$CLK_TCK" -v s="$IDLE_SECS" 'BEGIN { printf "%.1f ms CPU per second", t * 1000 / h / s }'
}

# get KEY LINE : the value of KEY=... in LINE
get() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# command prefixes pinning the gateways and the client (empty: not pinned)
GW_PIN=()
LOAD_PIN=()
[ -z "$GW_CPUS" ] || GW_PIN=(taskset -c "$GW_CPUS")
[ -z "$LOAD_CPUS" ] || LOAD_PIN=(taskset -c "$LOAD_CPUS")

load() { cut -d' ' -f1-3 /proc/loadavg; }

# http_get PORT PATH : the body, or nothing (bounded: 3 s)
http_get() {
    (
        exec 3<>"/dev/tcp/$LO/$1" || exit 0
        printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$2" "$LO" >&3
        timeout 3 cat <&3 | sed '1,/^\r\{0,1\}$/d'
    ) 2>/dev/null || true
}

# ---------------------------------------------------------------- runs ---
# client TARGET N TAG EXTRA... : run the client against the gateway $GW_PID;
# its output in $OUT/TAG.out, its result line in RESULT (empty on failure)
client() {
    local target=$1 n=$2 tag=$3
    shift 3
    timeout --signal=TERM --kill-after=5 $((WARMUP_SECS + WINDOW_SECS + 150)) \
        "${LOAD_PIN[@]}" "$CLIENT_BIN" --target "$target" --calls "$n" \
        --secs "$WINDOW_SECS" --warmup "$WARMUP_SECS" --pid "$GW_PID" --clk-tck "$CLK_TCK" \
        --setup-secs 60 "$@" >"$OUT/$tag.out" 2>&1 || true
    grep -v '^media_bench_wire: target=' "$OUT/$tag.out" | sed 's/^/   /'
    RESULT=$(grep '^media_bench_wire: target=' "$OUT/$tag.out" | tail -1 || true)
}

# verdict TAG : sets FIG (us per call-second or NA) and WHY from RESULT
verdict() {
    local tag=$1 err sent got
    FIG=NA
    WHY=""
    err=$(sed -n 's/.* error=//p' <<<"$RESULT")
    if [ -z "$RESULT" ]; then
        WHY="$tag: no result from the client: $(tail -3 "$OUT/$tag.out" | tr '\n' ' ')"
    elif [ -n "$err" ]; then
        WHY="$tag: $err"
    elif [ "$(get transcoded "$RESULT")" != yes ]; then
        WHY="$tag did not transcode (callee side: $(get win_a2b_pcmu160 "$RESULT") of $(get win_a2b "$RESULT") packets PT 0/160 bytes; caller side: $(get win_b2a_opus "$RESULT") of $(get win_b2a "$RESULT") Opus)"
    else
        sent=$(get win_sent "$RESULT")
        got=$(($(get win_a2b "$RESULT") + $(get win_b2a "$RESULT")))
        if [ "$(awk -v g="$got" -v s="$sent" 'BEGIN { print (s > 0 && g >= 0.99 * s) }')" != 1 ]; then
            WHY="$tag did not keep up: $got of $sent packets came back within the window ($(get cores_used "$RESULT") cores used; load $(load))"
        else
            FIG=$(get us_per_call_second "$RESULT")
            echo "   verified: callee side got PT 0 / 160-byte payloads only, caller side Opus only; $got of $sent packets back in the window"
        fi
    fi
    [ -z "$WHY" ] || echo "   $WHY"
}

# run_callgate N TAG : sets RESULT, FIG, WHY
run_callgate() {
    local n=$1 tag=$2
    RESULT=""
    echo "== $tag: $n calls through callgate run (B2BUA, media: anchor), CPUs ${GW_CPUS:-all}; load $(load)"
    cat >"$OUT/plan.yaml" <<EOF
# bench/media.sh: Opus-only callers through the B2BUA to a PCMU-only trunk.
version: 1
admin: $LO:$ADMIN_PORT
timers:
  no_answer_s: 30
media:
  address: $LO
  ports: $CALLGATE_MEDIA
  rtp_timeout_s: 120
listeners:
  - { name: client, side: client, udp: "$LO:$SIP_PORT" }
  - { name: carrier, side: carrier, udp: "$LO:$CARRIER_PORT" }
trunks:
  - { name: bench-trunk, address: "$LO:$TRUNK_PORT", codecs: [PCMU] }
routes:
  - name: bench
    match: { source: client }
    mode: b2bua
    media: anchor
    trunks: [bench-trunk]
EOF
    local p
    for p in "$SIP_PORT" "$CARRIER_PORT" "$TRUNK_PORT" "$ADMIN_PORT"; do
        if udp_bound "$p"; then
            FIG=NA
            WHY="$tag: UDP port $p is already in use (see the knobs at the head of bench/media.sh)"
            echo "   $WHY"
            return
        fi
    done
    start "$tag-gateway" "${GW_PIN[@]}" "$CALLGATE_BIN" run --dialplan "$OUT/plan.yaml"
    GW_PID=$PID
    if ! wait_bound "$GW_PID" "$SIP_PORT"; then
        FIG=NA
        WHY="$tag: callgate did not start: $(tail -3 "$OUT/$tag-gateway.log" | tr '\n' ' ')"
        echo "   $WHY"
        stop "$GW_PID"
        return
    fi
    echo "   callgate idle: $(idle_cpu "$GW_PID")"
    client callgate "$n" "$tag" --sip "$LO:$SIP_PORT" --trunk "$LO:$TRUNK_PORT"
    local m
    m=$(http_get "$ADMIN_PORT" /metrics | grep -E '^callgate_(media_|rtp_packets)' | grep -v ' 0$' | tr '\n' ' ' || true)
    echo "   callgate /metrics (non-zero): ${m:-none}"
    alive "$GW_PID" || RESULT=""
    stop "$GW_PID"
    verdict "$tag"
    echo "   load after: $(load)"
}

# run_rtpengine N TAG : sets RESULT, FIG, WHY
run_rtpengine() {
    local n=$1 tag=$2
    RESULT=""
    echo "== $tag: $n calls through rtpengine (userspace), CPUs ${GW_CPUS:-all}; load $(load)"
    if ! command -v "$RTPENGINE_BIN" >/dev/null 2>&1; then
        FIG=NA
        WHY="$tag: $RTPENGINE_BIN is not installed (Debian package rtpengine-daemon: make deps)"
        echo "   $WHY"
        return
    fi
    if udp_bound "$NG_PORT"; then
        FIG=NA
        WHY="$tag: UDP port $NG_PORT (ng) is already in use (NG_PORT)"
        echo "   $WHY"
        return
    fi
    start "$tag-gateway" "${GW_PIN[@]}" "$RTPENGINE_BIN" --config-file=none --table=-1 \
        --foreground --log-stderr --log-level=5 --interface=$LO --listen-ng=$LO:$NG_PORT \
        --port-min="${RTPENGINE_MEDIA%-*}" --port-max="${RTPENGINE_MEDIA#*-}" \
        --timeout=120 --delete-delay=0
    GW_PID=$PID
    if ! wait_bound "$GW_PID" "$NG_PORT"; then
        FIG=NA
        WHY="$tag: rtpengine did not start: $(tail -3 "$OUT/$tag-gateway.log" | tr '\n' ' ')"
        echo "   $WHY"
        stop "$GW_PID"
        return
    fi
    echo "   rtpengine idle: $(idle_cpu "$GW_PID")"
    client rtpengine "$n" "$tag" --ng "$LO:$NG_PORT"
    alive "$GW_PID" || RESULT=""
    stop "$GW_PID"
    verdict "$tag"
    echo "   load after: $(load)"
}

# lateness TAG : one summary of RESULT's lateness fields
lateness() {
    local r=$RESULT
    if [ -z "$r" ] || [ -n "$(sed -n 's/.* error=//p' <<<"$r")" ]; then
        echo "NA"
        return
    fi
    echo "late=$(get late "$r")/$(get frames "$r") p50_ms=$(get lat_p50_ms "$r") p99_ms=$(get lat_p99_ms "$r") max_ms=$(get lat_max_ms "$r") gaps30=$(get gaps30 "$r") max_gap_ms=$(get max_gap_ms "$r") cores_used=$(get cores_used "$r") us_per_call_second=$(get us_per_call_second "$r")"
}

STATUS=0
echo "bench-media: Opus <-> PCMU both ways, 20 ms frames; comparison at $CALLS calls, real time at $RT_CALLS; gateways on CPUs ${GW_CPUS:-all}, client on CPUs ${LOAD_CPUS:-all} of $(nproc); load before the run: $(load)"
"$CARGO" build --release --quiet --bin callgate --example media_bench --example media_bench_wire

# ------------------------------------------------- 1. in process (--fast) ---
FAST_CALLS=$CALLS
for n in $RT_CALLS; do
    [ "$n" -le 0 ] || FAST_CALLS=$n
done
echo "== callgate in process, transcoding work only: examples/media_bench.rs $FAST_CALLS $WINDOW_SECS --fast, CPUs ${GW_CPUS:-all}"
if timeout --signal=TERM --kill-after=5 $((WINDOW_SECS * 20 + 120)) \
    "${GW_PIN[@]}" "$ROOT/target/release/examples/media_bench" "$FAST_CALLS" "$WINDOW_SECS" --fast \
    >"$OUT/in-process.log" 2>&1; then
    :
else
    echo "   media_bench failed (exit $?)"
    STATUS=1
fi
sed 's/^/   /' "$OUT/in-process.log"
# "  CPU X s over Y s wall: Z us per call-second, W us per packet"
FAST=$(awk '/^  CPU .* us per call-second/ { for (i = 1; i < NF; i++) if ($(i + 1) == "us" && $(i + 2) == "per" && $(i + 3) == "call-second,") print $i }' "$OUT/in-process.log")
echo "bench-media: in-process transcoding work only (one MediaHost, simulated time, no sockets or syscalls): callgate_inprocess_us_per_call_second=${FAST:-NA} calls_per_core=$(awk -v a="${FAST:-0}" 'BEGIN { if (a + 0 > 0) printf "%.0f", 1e6 / a; else print "NA" }')"

# ------------------------------------------------------- 2. comparison ---
run_callgate "$CALLS" callgate
CG=$FIG
CG_WHY=$WHY
CG_LATE=$(lateness)
run_rtpengine "$CALLS" rtpengine
RE=$FIG
RE_WHY=$WHY
RE_LATE=$(lateness)
echo "bench-media-lateness: calls=$CALLS callgate: $CG_LATE"
echo "bench-media-lateness: calls=$CALLS rtpengine: $RE_LATE"

# -------------------------------------------------------- 3. real time ---
RT_LINES=()
RT_MET=
RT_MISSED=
for n in $RT_CALLS; do
    [ "$n" -gt 0 ] || continue
    run_callgate "$n" "callgate-rt$n"
    rt_cg=$FIG
    rt_cg_why=$WHY
    rt_cg_late=$(lateness)
    rt_cg_result=$RESULT
    run_rtpengine "$n" "rtpengine-rt$n"
    rt_re_late=$(lateness)
    echo "bench-media-lateness: calls=$n callgate: $rt_cg_late"
    echo "bench-media-lateness: calls=$n rtpengine: $rt_re_late${WHY:+ ($WHY)}"
    late=$(get late "$rt_cg_result")
    if [ "$rt_cg" != NA ] && [ "$late" = 0 ]; then
        v="met: no late frame, $(get cores_used "$rt_cg_result") cores used"
    elif [ "$rt_cg" != NA ]; then
        v="NOT met: $late of $(get frames "$rt_cg_result") frames late (> 20 ms), max $(get lat_max_ms "$rt_cg_result") ms, $(get cores_used "$rt_cg_result") cores used"
    else
        v="NOT met: $rt_cg_why"
    fi
    RT_LINES+=("bench-media-realtime: calls=$n cpus=${GW_CPUS:-all} callgate_us_per_call_second=$rt_cg calls_per_core_at_full_cpu=$(awk -v a="$rt_cg" 'BEGIN { if (a != "NA" && a + 0 > 0) printf "%.0f", 1e6 / a; else print "NA" }') callgate_late=${late:-NA}/$(get frames "$rt_cg_result") no_late_frame: $v; load $(load)")
    case $v in
    met*) RT_MET=$n ;;
    *)
        RT_MISSED="$n calls: $v"
        break
        ;;
    esac
done

echo "logs: $OUT"
for l in "${RT_LINES[@]}"; do
    echo "$l"
done
[ "$CG" != NA ] || { echo "bench-media: callgate not measured: $CG_WHY"; STATUS=1; }
[ "$RE" != NA ] || { echo "bench-media: rtpengine not measured: $RE_WHY"; STATUS=1; }
fmt() { awk -v x="$1" 'BEGIN { if (x == "NA") print "NA"; else printf "%.1f", x }'; }
ratio=$(awk -v a="$CG" -v b="$RE" 'BEGIN { if (a != "NA" && b != "NA" && b + 0 > 0) printf "%.3f", a / b; else print "NA" }')
# CPUs in GW_CPUS ("0", "0,1", "0-1"); unpinned: every CPU.
gw_cpus=$(awk -v l="${GW_CPUS:-0-$(($(nproc) - 1))}" 'BEGIN { n = split(l, p, ","); c = 0; for (i = 1; i <= n; i++) { if (split(p[i], r, "-") == 2) c += r[2] - r[1] + 1; else c++ } print c }')
if [ -n "$RT_MET" ]; then
    per_core=$((RT_MET / gw_cpus))
else
    per_core=NA
    echo "bench-media: no real-time run met no_late_frame${RT_MISSED:+ (${RT_MISSED})}"
fi
echo "bench-media: callgate_us_per_call_second=$(fmt "$CG") rtpengine_us_per_call_second=$(fmt "$RE") ratio=$ratio callgate_calls_per_core=$per_core"
exit $STATUS
