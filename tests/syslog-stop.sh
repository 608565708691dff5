#!/bin/sh
# The flush at a stop keeps the output's back-off: a syslog collector
# that keeps failing is not hammered during SIGTERM's two seconds.
# Counted at the collector (its accepted connections, with the time of
# each) while running and after SIGTERM, for tls:// with a certificate
# that fails verification (wrong name) and relp:// to a collector that
# closes every connection at once; and, for tcp:// refused (nothing to
# count at a peer that is not there), the daemon's own connect() calls
# under strace.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

# LeakSanitizer's check at the exit takes its time.
limit=2000
[ "${WITH_SANITIZERS:-no}" = yes ] && limit=3000
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the test peers"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
# Events keep coming, so that records always wait for the collector.
"$PY" - >"$T/script.json" <<'PYEOF'
import json
msgs = [json.dumps({"type": "container", "uuid": "ev-%06d" % i})
        for i in range(1000)]
print(json.dumps([{"messages": msgs, "interval": 0.01, "after": "hold"}]))
PYEOF
wspeer_start "$T/script.json"

# collector NAME tls|close: a listener that logs the time of every
# accepted connection to $T/NAME.accepts; tls: a TLS handshake with the
# wrong-name certificate (the client rejects it); close: closes at once.
collector() {
	rm -f "$T/$1.port"
	"$PY" - "$T/$1.port" "$T/$1.accepts" "$2" "$T/pki/other.pem" \
	    "$T/pki/other.key" <<'PYEOF' &
import os, socket, ssl, sys, time
port, log, how, cert, key = sys.argv[1:]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(128)
open(port + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename(port + ".tmp", port)
out = open(log, "a", buffering=1)
while True:
    c, _ = s.accept()
    out.write("%.6f\n" % time.time())
    c.settimeout(1)
    if how == "tls":
        try:
            ctx.wrap_socket(c, server_side=True).close()
        except (OSError, ssl.SSLError):
            pass
    c.close()
PYEOF
	COLL=$!
	PIDS="$PIDS $COLL"
	wait_until 5 test -s "$T/$1.port" || skip "the $1 collector did not start"
	: >"$T/$1.accepts"
}

# after FILE T0 [T1]: lines of FILE (times) at or after T0 (and before T1).
after() {
	awk -v t0="$2" -v t1="${3:-1e12}" '$1 >= t0 && $1 < t1' "$1" | wc -l
}

# run NAME TARGET [COMMAND...]: dcevents for 2 s, then SIGTERM; sets
# START, TERM (epoch seconds) and took (ms from SIGTERM to the exit).
run() {
	name=$1 target=$2
	shift 2
	START=$(date +%s.%N)
	"$@" "$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=no \
	    -o "Output.Syslog=$target" -o "Output.SyslogCAFile=$T/pki/ca.pem" \
	    >"$T/$name.out" 2>"$T/$name.err" &
	DC=$!
	PIDS="$PIDS $DC"
	wait_for "$T/$name.err" "syslog output is down" >/dev/null
	sleep 2
	TERM=$(date +%s.%N)
	# under strace, the daemon is strace's child
	kill "$(pgrep -P "$DC" -x dcevents || echo "$DC")"
	wait "$DC"
	rc=$?
	took=$(echo "$TERM" | awk -v now="$(date +%s.%N)" '{ printf "%d", (now - $1) * 1000 }')
}

# check_counts NAME RUNNING STOPPING: the attempts while running (at most
# about one a back-off: 0.1 s doubling to 5 s, 5 in 2 s) and in
# the stop (one at once, then the back-off: at most 2).
check_counts() {
	check "$1: exit 0 within 2 s of SIGTERM (${took} ms)" \
	    test "$rc" -eq 0 -a "$took" -lt "$limit"
	check "$1: backs off while running ($2 attempts in 2 s)" test "$2" -le 6
	check "$1: backs off in the stop flush too ($3 attempts)" test "$3" -le 2
	check "$1: what was not written is counted" \
	    grep -qE "[0-9]+ records could not be written before the exit" \
	    "$T/$1.err"
}

collector tls tls
run tls "tls://localhost:$(cat "$T/tls.port")"
check "tls: the wrong name is the reason" \
    contains "$T/tls.err" "TLS certificate verification failed: hostname mismatch"
check_counts tls "$(after "$T/tls.accepts" 0 "$TERM")" "$(after "$T/tls.accepts" "$TERM")"
kill "$COLL"

collector relp close
run relp "relp://127.0.0.1:$(cat "$T/relp.port")"
check_counts relp "$(after "$T/relp.accepts" 0 "$TERM")" "$(after "$T/relp.accepts" "$TERM")"
kill "$COLL"

# tcp:// to a port where nothing listens: connect() refused, counted
# under strace (one line per call, with the time).
if command -v strace >/dev/null && strace -o /dev/null true 2>/dev/null; then
	port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	# (LeakSanitizer cannot work under strace)
	run tcp "tcp://127.0.0.1:$port" \
	    env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	    strace -f -qq -ttt -e trace=connect -o "$T/tcp.strace"
	grep "htons($port)" "$T/tcp.strace" | awk '{ print $2 }' >"$T/tcp.accepts"
	check_counts tcp "$(after "$T/tcp.accepts" 0 "$TERM")" "$(after "$T/tcp.accepts" "$TERM")"
else
	echo "# tcp refused: skipped, strace cannot run here"
fi
kill "$PEER"
finish
