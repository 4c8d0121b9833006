#!/usr/bin/env bash
# bench/demo.sh - one call through the gateway, explained (run by `make demo`).
#
#   SIPp uac_pcap ──SIP──► callgate (mode: b2bua, media: anchor) ──SIP──► SIPp uas -rtp_echo
#   (the caller)   ◄─RTP─►  relays RTP on its own ports          ◄─RTP─►  (carrier-a)
#
# Starts callgate on a private dial plan (a copy of dialplans/loopback.yaml
# with the demo's own ports, written to a temporary directory), SIPp as the
# carrier (answers, echoes RTP) and SIPp as the caller (one call: INVITE with
# a PCMA offer, ACK, ~5 s of recorded audio plus a DTMF event, BYE). Half-way
# through it asks the admin endpoint for GET /calls, then prints a ladder
# diagram built from both SIPp message logs (each leg's own Call-ID), the
# relay counters of that snapshot and the gateway's /metrics after the call,
# and stops everything it started (by PID; also on failure or Ctrl-C).
#
# Ports (environment, defaults chosen to avoid the tests' fixed ports):
#   DEMO_SIP=25060 (callgate client listener)  DEMO_CARRIER_SIP=25080 (carrier listener)
#   DEMO_TRUNK=25070 (SIPp uas)  DEMO_CALLER=25100 (SIPp uac)  DEMO_ADMIN=29090
#   DEMO_MEDIA=26000-26099 (callgate relay)  DEMO_CALLER_MEDIA=26500  DEMO_TRUNK_MEDIA=26600
# Needs: sipp (make deps), root or CAP_NET_RAW (SIPp plays the pcap through a
# raw socket), a release build (make build). Bounded: about 12 s, 30 s at most.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
START_NS=$(date +%s%N)

LO=127.0.0.1
SIP=${DEMO_SIP:-25060}
CARRIER_SIP=${DEMO_CARRIER_SIP:-25080}
TRUNK=${DEMO_TRUNK:-25070}
CALLER=${DEMO_CALLER:-25100}
ADMIN=${DEMO_ADMIN:-29090}
MEDIA=${DEMO_MEDIA:-26000-26099}
CALLER_MEDIA=${DEMO_CALLER_MEDIA:-26500}
TRUNK_MEDIA=${DEMO_TRUNK_MEDIA:-26600}
BIN=${CALLGATE_BIN:-$ROOT/target/release/callgate}
PCAP_DIR=${SIPP_PCAP_DIR:-/usr/share/sip-tester}

die() {
    echo "demo: $*" >&2
    exit 1
}

command -v sipp >/dev/null 2>&1 || die "sipp is not installed: run 'make deps'"
[ -x "$BIN" ] || die "$BIN is not built: run 'make build' (or 'make demo')"
[ -r "$PCAP_DIR/g711a.pcap" ] || die "$PCAP_DIR/g711a.pcap missing (Debian package sip-tester ships it)"

WORK=$(mktemp -d /tmp/callgate-demo.XXXXXX)
PIDS=()
cleanup() {
    local rc=$? pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ]; then
        echo "demo: failed (exit $rc); logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- helpers ---
udp_bound() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" 'NR > 1 && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
        /proc/net/udp /proc/net/udp6 2>/dev/null
}
tcp_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
# http_get PORT PATH : body of GET http://127.0.0.1:PORT/PATH (empty on error)
http_get() {
    (
        exec 3<>"/dev/tcp/$LO/$1" || exit 0
        printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$2" "$LO" >&3
        timeout 3 cat <&3 | tr -d '\r' | awk 'body { print } /^$/ { body = 1 }'
    ) 2>/dev/null || true
}
now_ts() { date +%H:%M:%S.%6N; }

for p in $SIP $CARRIER_SIP $TRUNK $CALLER $CALLER_MEDIA $TRUNK_MEDIA; do
    ! udp_bound "$p" || die "UDP port $p is in use; pick other ports (see the head of bench/demo.sh)"
done
! tcp_listening "$ADMIN" || die "TCP port $ADMIN is in use (DEMO_ADMIN)"

# ------------------------------------------------------------- dial plan ---
# dialplans/loopback.yaml with the demo's ports; one trunk (carrier-a).
cat >"$WORK/demo.yaml" <<EOF
# callgate demo plan (written by bench/demo.sh from dialplans/loopback.yaml)
version: 1
admin: $LO:$ADMIN
media:
  address: $LO
  ports: $MEDIA
listeners:
  - name: client
    side: client
    udp: $LO:$SIP
  - name: carrier
    side: carrier
    udp: $LO:$CARRIER_SIP
trunks:
  - name: carrier-a
    address: $LO:$TRUNK
    transport: udp
routes:
  - name: client-to-carriers
    match:
      source: client
    mode: b2bua
    media: anchor
    trunks: [carrier-a]
EOF
"$BIN" check "$WORK/demo.yaml" >/dev/null || die "demo dial plan rejected"

echo "callgate demo: one anchored B2BUA call on $LO"
echo "  caller    SIPp uac_pcap      SIP $LO:$CALLER   RTP $LO:$CALLER_MEDIA"
echo "  callgate  $BIN"
echo "            SIP $LO:$SIP (client) / $LO:$CARRIER_SIP (carrier)   RTP relay $LO:$MEDIA   admin http://$LO:$ADMIN"
echo "  carrier-a SIPp uas -rtp_echo   SIP $LO:$TRUNK   RTP $LO:$TRUNK_MEDIA"
echo "  dial plan $WORK/demo.yaml"
echo

# --------------------------------------------------------------- start ---
RUST_LOG=${RUST_LOG:-warn} "$BIN" run --dialplan "$WORK/demo.yaml" >"$WORK/callgate.log" 2>&1 </dev/null &
CG=$!
PIDS+=("$CG")
cd "$WORK"
mkdir -p pcap
ln -s "$PCAP_DIR"/*.pcap pcap/
timeout 25 sipp -sn uas -rtp_echo -i $LO -p "$TRUNK" -mp "$TRUNK_MEDIA" -bind_local -nostdin -m 1 \
    -trace_msg -message_file "$WORK/carrier.msg" >"$WORK/carrier.screen" 2>&1 </dev/null &
UAS=$!
PIDS+=("$UAS")

for ((i = 0; i < 50; i++)); do
    if [ "$(http_get "$ADMIN" /healthz)" = ok ] && udp_bound "$TRUNK"; then
        break
    fi
    kill -0 "$CG" 2>/dev/null || {
        cat "$WORK/callgate.log" >&2
        die "callgate exited"
    }
    kill -0 "$UAS" 2>/dev/null || {
        cat "$WORK/carrier.screen" >&2
        die "SIPp uas exited"
    }
    sleep 0.1
done
[ "$i" -lt 50 ] || die "callgate or SIPp uas did not come up in 5 s"

echo "placing one call (about 10 s: ~5 s of audio, a DTMF event, then BYE) ..."
timeout 25 sipp "$LO:$SIP" -sn uac_pcap -i $LO -p "$CALLER" -mp "$CALLER_MEDIA" -bind_local -nostdin \
    -m 1 -timeout 20s -trace_msg -message_file "$WORK/caller.msg" \
    -trace_err -error_file "$WORK/caller.err" >"$WORK/caller.screen" 2>&1 </dev/null &
UAC=$!
PIDS+=("$UAC")

# mid-call snapshot of /calls (the pcap plays for ~5 s after the ACK)
sleep 3
SNAP_TS=$(now_ts)
CALLS=$(http_get "$ADMIN" /calls)
echo "$CALLS" >"$WORK/calls.json"

rc=0
wait "$UAC" || rc=$?
for ((i = 0; i < 30; i++)); do
    kill -0 "$UAS" 2>/dev/null || break
    sleep 0.1
done
METRICS=$(http_get "$ADMIN" /metrics)
if [ "$rc" -ne 0 ]; then
    tail -20 "$WORK/caller.screen" >&2 || true
    cat "$WORK/caller.err" >&2 2>/dev/null || true
    die "the call failed (SIPp uac exit $rc)"
fi

# -------------------------------------------------------------- ladder ---
# Each SIPp message log entry: "----- YYYY-MM-DD HH:MM:SS.us", then
# "UDP message sent|received ...", a blank line, the start line, headers, body.
# Rows: time side dir label call-id; side c = caller log, t = carrier log.
extract() {
    awk -v side="$1" '
        function flush() {
            if (start == "") return
            label = start
            if (start ~ /^SIP\/2\.0/) {
                label = substr(start, 9)
                if (cseq != "") label = label " (" cseq ")"
            } else {
                split(start, w, " "); label = w[1]
            }
            if (sdp != "") label = label " sdp:" sdp
            printf "%s\t%s\t%s\t%s\t%s\n", ts, side, dir, label, callid
            start = ""
        }
        { sub(/\r$/, "") }
        /^---------------------/ { flush(); ts = $3; dir = ""; start = ""; callid = ""; cseq = ""; sdp = ""; n = 0; next }
        /^UDP message sent/ { dir = "out"; n = 1; next }
        /^UDP message received/ { dir = "in"; n = 1; next }
        n == 1 && /^$/ { next }
        n == 1 { start = $0; n = 2; next }
        n == 2 && tolower($0) ~ /^call-id:/ { callid = $2 }
        n == 2 && tolower($0) ~ /^cseq:/ { cseq = $3 }
        n == 2 && /^m=audio / { sdp = $2 }
        END { flush() }
    ' "$2"
}
{
    extract c "$WORK/caller.msg"
    extract t "$WORK/carrier.msg"
    printf '%s\tr\t-\tRTP\t-\n' "$SNAP_TS"
} | sort -s -t$'\t' -k1,1 >"$WORK/ladder.tsv"

A_ID=$(awk -F'\t' '$2 == "c" { print $5; exit }' "$WORK/ladder.tsv")
B_ID=$(awk -F'\t' '$2 == "t" { print $5; exit }' "$WORK/ladder.tsv")
pkt() { grep -o "\"$1\":{[^}]*}" <<<"$CALLS" | grep -o '"packets":[0-9]*' | head -1 | cut -d: -f2; }
A2B=$(pkt a_to_b)
B2A=$(pkt b_to_a)
P1=$(grep -o '"media_port":[0-9]*' <<<"$CALLS" | cut -d: -f2 | sed -n 1p || true)
P2=$(grep -o '"media_port":[0-9]*' <<<"$CALLS" | cut -d: -f2 | sed -n 2p || true)

echo
echo "ladder (from the two SIPp message logs; sdp:PORT = the m=audio port each side is told):"
awk -F'\t' -v a="$A_ID" -v b="$B_ID" -v a2b="${A2B:-?}" -v b2a="${B2A:-?}" \
    -v cport="$CALLER_MEDIA" -v tport="$TRUNK_MEDIA" -v p1="${P1:-?}" -v p2="${P2:-?}" '
    function secs(t, p) { split(t, p, ":"); return p[1] * 3600 + p[2] * 60 + p[3] }
    function rep(ch, n, s) { s = ""; while (n-- > 0) s = s ch; return s }
    # arrow of width W with the label in it, pointing right (r=1) or left
    function arrow(lbl, r, W, body, pad) {
        lbl = " " lbl " "
        if (length(lbl) > W - 4) lbl = substr(lbl, 1, W - 4)
        pad = W - 2 - length(lbl)
        body = rep("-", int(pad / 2)) lbl rep("-", pad - int(pad / 2))
        return r ? "-" body ">" : "<" body "-"
    }
    BEGIN {
        W = 34
        blank = rep(" ", W)
        printf "%8s  %-*s%-*s%s\n", "", W, "caller", W, "callgate", "carrier-a"
        printf "%8s  %-*s%-*s%s\n", "", W, "SIPp uac", W, "b2bua, anchor", "SIPp uas -rtp_echo"
        printf "%8s  %-*s%s\n", "", W, "leg A Call-ID:", "leg B Call-ID:"
        printf "%8s  %-*s %s\n", "", W - 1, a, b
        printf "%8s  |%s|%s|\n", "   t (s)", blank, blank
    }
    {
        t = secs($1)
        if (NR == 1) t0 = t
        rel = sprintf("%8.3f", t - t0)
        if ($2 == "c") {
            row = "|" arrow($4, $3 == "out", W) "|" blank "|"
        } else if ($2 == "t") {
            row = "|" blank "|" arrow($4, $3 == "in", W) "|"
        } else {
            m1 = sprintf(" RTP :%s <=> :%s callgate :%s <=> :%s ", cport, p1, p2, tport)
            m2 = sprintf(" GET /calls: %s packets relayed caller->carrier, %s back ", a2b, b2a)
            printf "%8s  |%s|%s|\n", "", blank, blank
            printf "%8s  |%s|\n", "", substr("~~" m1 rep("~", 2 * W), 1, 2 * W + 1)
            printf "%8s  |%s|\n", rel, substr("~~" m2 rep("~", 2 * W), 1, 2 * W + 1)
            printf "%8s  |%s|%s|\n", "", blank, blank
            next
        }
        printf "%8s  %s\n", rel, row
    }
' "$WORK/ladder.tsv"

# ---------------------------------------------------------------- media ---
metric() { awk -v m="$1" '$1 == m { print $2; exit }' <<<"$METRICS"; }
ECHOED=$(awk '/Total echo RTP pckts 1st stream/ { print $1; exit }' "$WORK/carrier.screen" 2>/dev/null || true)
echo
echo "media, from GET /calls at t=$SNAP_TS (mid-call):"
if [ -n "$CALLS" ] && [ "$CALLS" != "[]" ]; then
    field() { grep -o "\"$1\":$2" <<<"$CALLS" | cut -d: -f2- | tr -d '"[]' || true; }
    paste <(field via '"[^"]*"') <(field call_id '"[^"]*"') <(field media_port '[0-9a-z]*') \
        <(field codecs '\[[^]]*\]') | while IFS=$'\t' read -r via id port codecs; do
        printf '  leg via %-10s Call-ID %-36s relay port %s  codecs %s\n' "$via" "$id" "$port" "$codecs"
    done
    printf '  RTP packets relayed: caller->carrier %s, carrier->caller %s\n' "${A2B:-?}" "${B2A:-?}"
else
    echo "  (no call listed: ${CALLS:-no answer})"
fi
echo
echo "after the call, GET /metrics:"
for m in callgate_calls_total callgate_active_calls callgate_rtp_packets_relayed_total \
    callgate_rtp_bytes_relayed_total callgate_rtcp_packets_relayed_total \
    callgate_media_ports_in_use callgate_media_send_errors_total; do
    printf '  %-40s %s\n' "$m" "$(metric "$m")"
done
dropped=$(awk '/^callgate_media_packets_dropped_total/ { s += $2 } END { print s + 0 }' <<<"$METRICS")
printf '  %-40s %s\n' "callgate_media_packets_dropped_total" "$dropped (all reasons)"
[ -n "$ECHOED" ] && echo "  (SIPp uas echoed $ECHOED RTP packets back)"
elapsed=$((($(date +%s%N) - START_NS) / 1000000))
echo
echo "demo: ok in $((elapsed / 1000)).$(printf '%03d' $((elapsed % 1000))) s; stopping callgate (pid $CG)"
