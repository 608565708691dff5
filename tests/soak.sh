#!/bin/sh
# A bounded soak: 1,000,000 events over 100 TLS websocket connections, each
# ended by the server (close 1001, then the TCP connection dropped), into
# dcevents' stdout, read by a verifier (tests/peers/soakpeer.py): every uuid
# exactly once, in order within each connection.  RSS and open descriptors
# are sampled twice in the same state (connected, idle, everything written
# out): after the first 100,000 events and at the end; the descriptors
# must be equal and the final RSS within 10% (RSS is not compared under
# sanitizers: ASan's quarantine holds freed memory).  QueueMax=1000 bounds
# the records that may legitimately wait in memory (about 300 kB, however
# the verifier is scheduled), so that a difference in RSS means a leak;
# it also has the back-pressure pause and resume reading many times.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v openssl >/dev/null || skip "needs openssl for test certificates"
[ -d /proc/self/fd ] || skip "needs /proc"
command -v mkfifo >/dev/null || skip "needs mkfifo"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"

CONNS=100
PER=10000
TOTAL=$((CONNS * PER))
FIRST=100000
QMAX=${SOAK_QUEUEMAX:-1000}
T0=$(now_ms)

# The verifier reads dcevents' stdout through a FIFO until EOF.
mkfifo "$T/out"
"$PY" "$top_srcdir/tests/peers/soakpeer.py" verify --input "$T/out" \
    --progress "$T/progress" --connections $CONNS --per $PER \
    >"$T/verify" 2>&1 &
VERIFIER=$!
PIDS="$PIDS $VERIFIER"

# Connection FIRST/PER + 1 waits for SIGUSR1 (the first sample); every
# connection after the last one is held, idle (the second sample).
"$PY" "$top_srcdir/tests/peers/soakpeer.py" serve --portfile "$T/port" \
    --log "$T/peer" --cert "$T/pki/server.pem" --key "$T/pki/server.key" \
    --connections $CONNS --per $PER --hold-before $((FIRST / PER)) \
    2>"$T/peer.err" &
PEER=$!
PIDS="$PIDS $PEER"
wait_until 5 test -s "$T/port" || skip "the peer did not start"
PORT=$(cat "$T/port")

"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=no \
    -o Output.Stdout=yes -o Stream.BackoffMinSec=10ms \
    -o Stream.BackoffMaxSec=20ms -o "Output.QueueMax=$QMAX" >"$T/out" 2>"$T/err" &
DC=$!
PIDS="$PIDS $DC"

progress() { cat "$T/progress" 2>/dev/null || echo 0; }
reached() { [ "$(progress)" -ge "$1" ]; }
held() { grep -qx "hold $1" "$T/peer"; }
# wait_at SECONDS EVENTS CONNECTION: until the verifier has seen EVENTS
# lines and the peer holds CONNECTION; 1 at once if dcevents has exited.
wait_at() {
	w=$(( $1 * 10 ))
	while [ "$w" -gt 0 ]; do
		reached "$2" && held "$3" && return 0
		kill -0 "$DC" 2>/dev/null || { echo "# dcevents has exited"; return 1; }
		sleep 0.1
		w=$((w - 1))
	done
	return 1
}
fds() { ls "/proc/$DC/fd" | wc -l; }
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$DC/status"; }
# sample: the smallest of 10 readings 20 ms apart (the daemon is idle).
sample() {
	s_fd=99999
	s_rss=99999999
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		f=$(fds)
		r=$(rss)
		[ "$f" -lt "$s_fd" ] && s_fd=$f
		[ "$r" -lt "$s_rss" ] && s_rss=$r
		sleep 0.02
	done
}

# stuck WHAT: report where the soak stopped and end the test.
stuck() {
	fail "$1 (at $(progress) events)"
	echo "# the peer's log:"
	tail -5 "$T/peer" | sed 's/^/#   /'
	echo "# dcevents' stderr:"
	tail -20 "$T/err" | sed 's/^/#   /'
	finish
}

wait_at 60 $FIRST $((FIRST / PER + 1)) ||
    stuck "the first $FIRST events, connected and idle"
pass "the first $FIRST events, connected and idle"
t1=$(now_ms)
sample
fd1=$s_fd
rss1=$s_rss
echo "# after $(progress) events ($((t1 - T0)) ms): VmRSS $rss1 kB, $fd1 descriptors"
kill -USR1 "$PEER"

wait_at 150 $TOTAL $((CONNS + 1)) ||
    stuck "all $TOTAL events, connected and idle"
pass "all $TOTAL events, connected and idle"
t2=$(now_ms)
sample
fd2=$s_fd
rss2=$s_rss
echo "# after $(progress) events ($((t2 - T0)) ms): VmRSS $rss2 kB, $fd2 descriptors"
rate=$(( (TOTAL - FIRST) * 1000 / ( (t2 - t1) > 0 ? (t2 - t1) : 1 ) ))
echo "# $((TOTAL - FIRST)) events in $((t2 - t1)) ms: $rate events/s"

kill "$DC"
wait "$DC"
check "exit 0 after SIGTERM" test $? -eq 0
wait "$VERIFIER"
vrc=$?
sed 's/^/  /' "$T/verify"
check "every uuid exactly once, in order within each connection" test "$vrc" -eq 0
check "$CONNS connections ended by the server, each close answered" \
    test "$(grep -c '^done [0-9]* 1001$' "$T/peer")" -eq "$CONNS"
check "no connection failed at the peer" lacks "$T/peer" "fail"
check "$((CONNS + 1)) connections made" test "$(count "$T/err" "connected to wss://")" -eq $((CONNS + 1))
check "no message skipped" lacks "$T/err" "skipped"
echo "# reading paused (QueueMax) $(count "$T/err" "reading paused") times"
check "descriptors: $fd1 after $FIRST events, $fd2 after $TOTAL" test "$fd2" -eq "$fd1"
if [ "${WITH_SANITIZERS:-no}" = yes ]; then
	echo "# RSS not compared under sanitizers: $rss1 kB, then $rss2 kB"
else
	check "RSS: $rss1 kB after $FIRST events, $rss2 kB after $TOTAL (at most 10% more)" \
	    test $((rss2 * 10)) -le $((rss1 * 11))
fi
echo "# the whole test: $(( $(now_ms) - T0 )) ms"
finish
