#!/usr/bin/env bash
# bench/cps.sh - calls-per-second benchmark (run by `make bench-cps`).
#
# The same SIPp traffic through each of these, one after the other:
#   callgate        : SIPp uac -> callgate 127.0.0.1:35060 (stateful proxy: dialplans/loopback-proxy.yaml
#                     with the bench's ports) -> SIPp uas 127.0.0.1:35070
#   callgate-bypass : the same through callgate's B2BUA (mode: b2bua, media: bypass): two dialogs per
#                     call, SDP untouched
#   callgate-anchor : mode: b2bua, media: anchor: also rewrites SDP per leg and allocates and binds four
#                     relay ports per call (no RTP flows: SIPp uac_basic sends none)
#   kamailio        : SIPp uac -> Kamailio 127.0.0.1:35190 (sip-fixtures/kamailio/bench-proxy.cfg with
#                     the bench's ports) -> SIPp uas 127.0.0.1:35070
# Calls are uac_basic.xml / uas_basic.xml (INVITE/180/200/ACK/BYE/200, the
# route set honoured, so the proxies see ACK and BYE). The dial plans and the
# Kamailio config are written to $OUT with the ports below.
#
# Two figures per proxy:
#   us_per_call : the proxy's CPU time (utime+stime from /proc/PID/stat, summed
#                 over its whole process group - Kamailio forks workers) per
#                 call, at a fixed rate (FIXED_RATE cps), in steady state: the
#                 CPU is sampled over FIXED_SECS s after FIXED_WARM s (default
#                 34) of the same load. callgate keeps a finished call's
#                 transactions 64*T1 = 32 s (RFC 3261 Timers J/K, RFC 6026 L/M),
#                 Kamailio 5 s (wait_timer); a window starting at once measured
#                 callgate while it only created state and freed none (0.94-0.98
#                 of Kamailio then, 1.1-1.2 in steady state);
#   max_cps     : the highest of STEP_RATES (tried in order, STEP_SECS s each)
#                 with 0 failed calls and >= 90 % of the target rate offered
#                 (calls created / time until the last one was created);
#                 stops at the first rate that fails. SIPp shares the 2 cores,
#                 so this is a lower bound of what the proxy alone can do.
# The last two lines are machine-readable:
#   bench-cps: callgate_us_per_call=X kamailio_us_per_call=Y ratio=X/Y callgate_max_cps=A kamailio_max_cps=B
#   bench-b2bua: bypass_us_per_call=X anchor_us_per_call=Y kamailio_us_per_call=Z
#
# Everything runs on 127.0.0.1; every wait and every run is bounded.
# The ports are not the tests' fixed ones, so the bench can run beside them.
# Rounds: the fixed-rate sample is taken ROUNDS times (default 3) per proxy,
# every proxy once per round in turn, and us_per_call is the median: on this
# VM one proxy's figure moved by up to 20 % between runs minutes apart
# (Kamailio 89.5-118.2 us, callgate 98.8-111.5 us), more than the
# differences being measured.
# Knobs (environment): ROUNDS FIXED_RATE FIXED_SECS FIXED_WARM STEP_RATES STEP_SECS PROXIES
# CALLGATE_BIN CALLGATE_DIALPLAN (proxy row; its ports must match) BENCH_OUT;
# ports UAS_PORT UAC_PORT CALLGATE_PORT CALLGATE_CARRIER_PORT CALLGATE_ADMIN_PORT
# KAMAILIO_PORT MEDIA_PORTS (relay range of callgate-anchor, 10000-19999: below
# the kernel's ephemeral ports, and 10,000 of them, as each shard gets its
# slice and a call holds four; with 2,000 a scheduling stall at 2000 calls/s
# left some calls with "503 no media ports left").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

FIXED_RATE=${FIXED_RATE:-2000}
FIXED_SECS=${FIXED_SECS:-20}
FIXED_WARM=${FIXED_WARM:-34}
ROUNDS=${ROUNDS:-3}
STEP_RATES=${STEP_RATES:-"1000 2000 4000 6000 8000 10000"}
STEP_SECS=${STEP_SECS:-10}
PROXIES=${PROXIES:-"callgate callgate-bypass callgate-anchor kamailio"}
CALLGATE_BIN=${CALLGATE_BIN:-$ROOT/target/release/callgate}
KAMAILIO_SRC_CFG=$ROOT/sip-fixtures/kamailio/bench-proxy.cfg
UAC_XML=$ROOT/sip-fixtures/sipp/uac_basic.xml
UAS_XML=$ROOT/sip-fixtures/sipp/uas_basic.xml
OUT=${BENCH_OUT:-$ROOT/target/bench-cps}

LO=127.0.0.1
UAS_PORT=${UAS_PORT:-35070}
UAC_PORT=${UAC_PORT:-35100}
CALLGATE_PORT=${CALLGATE_PORT:-35060}
CALLGATE_CARRIER_PORT=${CALLGATE_CARRIER_PORT:-35080}
CALLGATE_ADMIN_PORT=${CALLGATE_ADMIN_PORT:-39090}
KAMAILIO_PORT=${KAMAILIO_PORT:-35190}
MEDIA_PORTS=${MEDIA_PORTS:-10000-19999}

CLK_TCK=$(getconf CLK_TCK)

for tool in sipp kamailio setsid timeout awk; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
        echo "bench-cps: $tool is not installed: run 'make deps'" >&2
        exit 2
    fi
done
KAMAILIO=$(command -v kamailio || echo /usr/sbin/kamailio)

rm -rf "$OUT"
mkdir -p "$OUT"

# ---------------------------------------------------------- configs ---
# callgate_plan MODE [MEDIA] : dialplans/loopback-proxy.yaml (MODE proxy) or
# loopback.yaml (MODE b2bua, MEDIA anchor|bypass) with the bench's ports and
# one trunk
callgate_plan() {
    cat <<EOF
# written by bench/cps.sh
version: 1
admin: $LO:$CALLGATE_ADMIN_PORT
media:
  address: $LO
  ports: $MEDIA_PORTS
listeners:
  - name: client
    side: client
    udp: $LO:$CALLGATE_PORT
  - name: carrier
    side: carrier
    udp: $LO:$CALLGATE_CARRIER_PORT
trunks:
  - name: carrier-a
    address: $LO:$UAS_PORT
    transport: udp
routes:
  - name: client-to-carriers
    match:
      source: client
    mode: $1
    trunks: [carrier-a]
EOF
    [ "$1" != b2bua ] || echo "    media: $2"
}
if [ -n "${CALLGATE_DIALPLAN:-}" ]; then
    cp "$CALLGATE_DIALPLAN" "$OUT/callgate.yaml"
else
    callgate_plan proxy >"$OUT/callgate.yaml"
fi
callgate_plan b2bua bypass >"$OUT/callgate-bypass.yaml"
callgate_plan b2bua anchor >"$OUT/callgate-anchor.yaml"
KAMAILIO_CFG=$OUT/kamailio.cfg
sed -e "s/^listen=udp:127\.0\.0\.1:5190\$/listen=udp:$LO:$KAMAILIO_PORT/" \
    -e "s/sip:127\.0\.0\.1:5070\"/sip:$LO:$UAS_PORT\"/" "$KAMAILIO_SRC_CFG" >"$KAMAILIO_CFG"
if ! grep -q "^listen=udp:$LO:$KAMAILIO_PORT\$" "$KAMAILIO_CFG" ||
    ! grep -q "sip:$LO:$UAS_PORT\"" "$KAMAILIO_CFG"; then
    echo "bench-cps: could not set the ports in a copy of $KAMAILIO_SRC_CFG" >&2
    exit 2
fi

# ------------------------------------------------------------ processes ---
source "$ROOT/bench/lib.sh"

# wait_udp PORT PID SECONDS
wait_udp() {
    local port=$1 pid=$2 i
    for ((i = 0; i < $3 * 10; i++)); do
        alive "$pid" || return 1
        udp_bound "$port" && return 0
        sleep 0.1
    done
    return 1
}

# cpu_ticks PGID : utime+stime (clock ticks) of every process in the group
cpu_ticks() {
    local pg=$1 total=0 f line
    for f in /proc/[0-9]*/stat; do
        read -r line <"$f" 2>/dev/null || continue
        # fields after "pid (comm) ": state ppid pgrp ... utime(12th) stime(13th)
        set -- ${line##*) }
        if [ "$3" = "$pg" ]; then
            total=$((total + ${12} + ${13}))
        fi
    done
    echo "$total"
}

# ----------------------------------------------------------------- SIPp ---

# run_calls LABEL TARGET RATE CALLS : runs a SIPp uac; prints
# "rc successful failed elapsed_s generation_s" (generation_s: until the last
# call was created, at the 1 s resolution of SIPp's statistics dumps)
run_calls() {
    local label=$1 target=$2 rate=$3 calls=$4 rc=0
    local secs=$((calls / rate + 1))
    local dir=$OUT/$label
    mkdir -p "$dir"
    timeout --signal=TERM --kill-after=5 $((secs * 3 + 30)) \
        sipp "$target" -sf "$UAC_XML" -i $LO -p $UAC_PORT -bind_local -nostdin \
        -r "$rate" -m "$calls" -l $((rate * 3 + 100)) -timeout $((secs * 3 + 20))s \
        -max_recv_loops 10000 -max_sched_loops 10000 \
        -trace_stat -fd 1 -stf "$dir/uac.csv" -trace_err -error_file "$dir/uac-errors.log" \
        >"$dir/uac.screen" 2>&1 </dev/null || rc=$?
    if [ ! -s "$dir/uac.csv" ]; then
        echo "$rc 0 $calls 0 0"
        return
    fi
    # last row: totals; first row with every call created: generation time
    awk -F';' -v rc="$rc" -v calls="$calls" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        NF > 1 {
            last = $0
            if (gen == "" && $col["OutgoingCall(C)"] >= calls) {
                split($col["StartTime"], a, "\t"); split($col["CurrentTime"], b, "\t")
                gen = b[3] - a[3]
            }
        }
        END {
            split(last, v, ";")
            split(v[col["StartTime"]], a, "\t"); split(v[col["CurrentTime"]], b, "\t")
            if (gen == "") gen = b[3] - a[3]
            printf "%d %d %d %.3f %.3f\n", rc, v[col["SuccessfulCall(C)"]], v[col["FailedCall(C)"]], b[3] - a[3], gen
        }' "$dir/uac.csv"
}

# start_uas LABEL : sets UAS to the pid of a SIPp uas on $UAS_PORT
start_uas() {
    start "uas-$1" sipp -sf "$UAS_XML" -i $LO -p $UAS_PORT -bind_local -nostdin -aa \
        -max_recv_loops 10000 -max_sched_loops 10000
    UAS=$PID
    if ! wait_udp $UAS_PORT "$UAS" 10; then
        echo "bench-cps: SIPp uas did not come up on $LO:$UAS_PORT (port busy?)" >&2
        tail -5 "$OUT/uas-$1.log" >&2 || true
        exit 1
    fi
}

# start_proxy NAME : sets PROXY_PG to the proxy's process-group id, empty if it failed
start_proxy() {
    local i
    PROXY_PG=
    case $1 in
    callgate*)
        if [ ! -x "$CALLGATE_BIN" ]; then
            echo "bench-cps: $CALLGATE_BIN not built (make build)" >&2
            return 0
        fi
        start "$1" "$CALLGATE_BIN" run --dialplan "$OUT/$1.yaml"
        for ((i = 0; i < 200; i++)); do
            alive "$PID" || break
            if [ "$(http_status $CALLGATE_ADMIN_PORT /healthz)" = 200 ]; then
                PROXY_PG=$PID
                return 0
            fi
            sleep 0.1
        done
        ;;
    kamailio)
        mkdir -p "$OUT/kamailio.run"
        start kamailio "$KAMAILIO" -f "$KAMAILIO_CFG" -DD -E -x tlsf -X tlsf \
            -b 4194304 -m 1024 -Y "$OUT/kamailio.run"
        if wait_udp $KAMAILIO_PORT "$PID" 15; then
            sleep 0.5 # workers settle
            PROXY_PG=$PID
            return 0
        fi
        ;;
    esac
    echo "bench-cps: $1 did not start; log $OUT/$1.log:" >&2
    tail -20 "$OUT/$1.log" >&2 || true
    stop "$PID"
}

target_of() {
    case $1 in
    callgate*) echo "$LO:$CALLGATE_PORT" ;;
    kamailio) echo "$LO:$KAMAILIO_PORT" ;;
    esac
}

# ---------------------------------------------------------------- bench ---
declare -A US_PER_CALL MAX_CPS FIXED_LINE
TABLE=()
STATUS=0

declare -A SAMPLES
for proxy in $PROXIES; do
    US_PER_CALL[$proxy]=NA
    MAX_CPS[$proxy]=NA
    SAMPLES[$proxy]=
done

# fixed_sample PROXY PG TARGET ROUND : one steady-state CPU-per-call sample
fixed_sample() {
    local proxy=$1 pg=$2 target=$3 round=$4 calls window_calls runner t0 t1 ticks cpu_s us cpu_pct
    local rc ok failed el gen
    # SIPp offers FIXED_RATE for FIXED_WARM + FIXED_SECS + 2 s and the
    # proxy's CPU is sampled over [FIXED_WARM, FIXED_WARM + FIXED_SECS] only,
    # once the state of earlier calls expires as fast as new calls create it.
    calls=$((FIXED_RATE * (FIXED_WARM + FIXED_SECS + 2)))
    window_calls=$((FIXED_RATE * FIXED_SECS))
    run_calls "$proxy-fixed-$FIXED_RATE-r$round" "$target" "$FIXED_RATE" "$calls" >"$OUT/$proxy-fixed-r$round.result" &
    runner=$!
    sleep "$FIXED_WARM"
    t0=$(cpu_ticks "$pg")
    sleep "$FIXED_SECS"
    t1=$(cpu_ticks "$pg")
    wait "$runner" || true
    read -r rc ok failed el gen <"$OUT/$proxy-fixed-r$round.result"
    ticks=$((t1 - t0))
    cpu_s=$(awk -v t="$ticks" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
    us=NA
    if [ "$ok" -gt 0 ]; then
        us=$(awk -v t="$ticks" -v hz="$CLK_TCK" -v n="$window_calls" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
        SAMPLES[$proxy]="${SAMPLES[$proxy]} $us"
    fi
    cpu_pct=$(awk -v c="$cpu_s" -v e="$FIXED_SECS" 'BEGIN { printf "%.0f", 100 * c / e }')
    echo "   fixed (round $round): $(printf '%-15s %6s cps %7s calls  ok=%-7s failed=%-5s cpu=%ss over %ss after %ss (%s%% of a core)  us/call=%s' \
        "$proxy" "$FIXED_RATE" "$calls" "$ok" "$failed" "$cpu_s" "$FIXED_SECS" "$FIXED_WARM" "$cpu_pct" "$us")"
    if [ "$failed" != 0 ] || [ "$rc" != 0 ]; then
        echo "   (fixed-rate run had failures: sipp rc=$rc, see $OUT/$proxy-fixed-$FIXED_RATE-r$round/)"
        STATUS=1
    fi
}

# median of the numbers given as arguments (NA when none)
median() {
    [ $# -gt 0 ] || {
        echo NA
        return
    }
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Rounds: every proxy once per round, in turn, so a slow phase of the
# (virtual) machine hits each of them alike; the figure is the median of
# its rounds. The maximum-rate steps run in the last round only.
for ((round = 1; round <= ROUNDS; round++)); do
    for proxy in $PROXIES; do
        echo "== $proxy (round $round of $ROUNDS)"
        start_uas "$proxy"
        uas=$UAS
        start_proxy "$proxy"
        pg=$PROXY_PG
        if [ -z "$pg" ]; then
            stop "$uas"
            STATUS=1
            continue
        fi
        target=$(target_of "$proxy")

        # warm-up: 1 s at 500 cps
        read -r rc ok failed el gen <<<"$(run_calls "$proxy-warmup-r$round" "$target" 500 500)"
        echo "   warm-up: 500 calls, successful=$ok failed=$failed"

        fixed_sample "$proxy" "$pg" "$target" "$round"

        # highest rate with 0 failed calls
        if [ "$round" = "$ROUNDS" ]; then
            best=0
            for rate in $STEP_RATES; do
                alive "$pg" || break
                sleep 2 # let the uas finish its time-wait calls
                calls=$((rate * STEP_SECS))
                read -r rc ok failed el gen <<<"$(run_calls "$proxy-step-$rate" "$target" "$rate" "$calls")"
                # the rate SIPp really offered (it shares the CPU with the proxy)
                achieved=$(awk -v n="$calls" -v e="$gen" 'BEGIN { if (e > 0) printf "%.0f", n / e; else print 0 }')
                if [ "$rc" = 0 ] && [ "$failed" = 0 ] && [ "$ok" = "$calls" ] &&
                    awk -v a="$achieved" -v r="$rate" 'BEGIN { exit !(a >= 0.9 * r) }'; then
                    verdict=ok
                    best=$rate
                else
                    verdict=FAIL
                fi
                line=$(printf '%-15s step %6s cps: ok=%-7s failed=%-5s achieved=%6s cps sipp_rc=%-3s %s' \
                    "$proxy" "$rate" "$ok" "$failed" "$achieved" "$rc" "$verdict")
                echo "   $line"
                TABLE+=("$line")
                [ "$verdict" = ok ] || break
            done
            MAX_CPS[$proxy]=$best
        fi

        alive "$pg" || {
            echo "bench-cps: $proxy died during the run" >&2
            STATUS=1
        }
        stop "$pg"
        stop "$uas"
    done
done
for proxy in $PROXIES; do
    # shellcheck disable=SC2086 # the samples are a space-separated list
    US_PER_CALL[$proxy]=$(median ${SAMPLES[$proxy]})
    FIXED_LINE[$proxy]="$(printf '%-15s us/call median=%s of rounds:%s' "$proxy" "${US_PER_CALL[$proxy]}" "${SAMPLES[$proxy]:- none}")"
done

echo
echo "fixed rate: $FIXED_RATE cps, CPU over $FIXED_SECS s after $FIXED_WARM s of the same load, $ROUNDS rounds; steps of $STEP_SECS s over: $STEP_RATES"
for proxy in $PROXIES; do
    echo "${FIXED_LINE[$proxy]:-$proxy: no result}"
done
for line in "${TABLE[@]}"; do
    echo "$line"
done
echo "logs and SIPp statistics: $OUT"

cg=${US_PER_CALL[callgate]:-NA}
ka=${US_PER_CALL[kamailio]:-NA}
ratio=$(awk -v a="$cg" -v b="$ka" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "NA" }')
echo "bench-cps: callgate_us_per_call=$cg kamailio_us_per_call=$ka ratio=$ratio callgate_max_cps=${MAX_CPS[callgate]:-NA} kamailio_max_cps=${MAX_CPS[kamailio]:-NA}"
echo "bench-b2bua: bypass_us_per_call=${US_PER_CALL[callgate-bypass]:-NA} anchor_us_per_call=${US_PER_CALL[callgate-anchor]:-NA} kamailio_us_per_call=$ka"
exit $STATUS
