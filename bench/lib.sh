# bench/lib.sh - process and port helpers shared by bench/cps.sh,
# bench/relay.sh and bench/media.sh (sourced after they set OUT and LO).
#
#   start NAME CMD...  CMD in its own session/process group (setsid execs it,
#                      so the pid is also the group id), output to
#                      $OUT/NAME.log; sets PID and records it for cleanup
#   alive PID          the process exists
#   stop PGID          SIGTERM to the group, SIGKILL after STOP_GRACE_SECS
#                      (default 10)
#   udp_bound PORT     some socket is bound to the UDP port (/proc/net/udp*)
#   http_status PORT PATH
#                      status code of GET http://$LO:PORT/PATH (empty on error)
# Sourcing it installs an EXIT trap that kills every started group, and
# makes INT/TERM exit 130 (which runs that trap). Every wait is bounded.

STARTED=()   # process-group ids of everything the script started
STOP_GRACE_SECS=${STOP_GRACE_SECS:-10}

start() {
    local name=$1
    shift
    setsid "$@" >"$OUT/$name.log" 2>&1 </dev/null &
    PID=$!
    STARTED+=("$PID")
}

alive() { kill -0 "$1" 2>/dev/null; }

stop() {
    local pg=$1 i
    kill -TERM -- "-$pg" 2>/dev/null || true
    for ((i = 0; i < STOP_GRACE_SECS * 10; i++)); do
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

http_status() {
    (
        exec 3<>"/dev/tcp/$LO/$1" || exit 0
        printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$2" "$LO" >&3
        IFS=' ' read -r -t 2 _ code _ <&3 || true
        echo "${code:-}"
    ) 2>/dev/null || true
}
