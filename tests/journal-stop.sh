#!/bin/sh
# The flush at a stop keeps the back-off for the journal too: with
# journald gone (its sockets removed, a real outage), the daemon's tries
# (each looks for journald's socket first) are counted under strace while
# running and after SIGTERM.  (Syslog collectors: tests/syslog-stop.sh.)
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/journal.sh"
journal_enter "$@"
. "$top_srcdir/tests/lib/lib.sh"

[ "${WITH_SYSTEMD:-yes}" = yes ] || skip "built without libsystemd"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v strace >/dev/null && strace -o /dev/null true 2>/dev/null ||
    skip "needs strace"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
"$PY" - >"$T/script.json" <<'PYEOF'
import json
msgs = [json.dumps({"type": "container", "uuid": "ev-%06d" % i})
        for i in range(1000)]
print(json.dumps([{"messages": msgs, "interval": 0.01, "after": "hold"}]))
PYEOF
journal_start
wspeer_start "$T/script.json"
sock=/run/systemd/journal/socket

# LeakSanitizer cannot work under strace.
env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -qq -ttt -e trace=access,faccessat,faccessat2 \
    -o "$T/strace" "$DCEVENTS" -c /dev/null \
    -o "Stream.URL=wss://localhost:$PORT/" -o "Stream.CAFile=$T/pki/ca.pem" \
    -o Output.Journal=yes -o Output.Identifier=jstop \
    >"$T/out" 2>"$T/err" &
DC=$!
PIDS="$PIDS $DC"
check "the events reach journald first" journal_wait SYSLOG_IDENTIFIER=jstop 20 10
journal_close
check "journald gone: the output is reported down" \
    wait_for "$T/err" "journal output is down: $sock: No such file or directory"
sleep 2
TERM=$(date +%s.%N)
kill "$(pgrep -P "$DC" -x dcevents)"
wait "$DC"
rc=$?
took=$(echo "$TERM" | awk -v now="$(date +%s.%N)" '{ printf "%d", (now - $1) * 1000 }')
# tries: the daemon's checks for the socket that failed, with their times
grep -F "\"$sock\"" "$T/strace" | grep ENOENT | awk '{ print $2 }' >"$T/tries"
down=$(awk -v t0="$TERM" '$1 < t0' "$T/tries" | wc -l)
stopping=$(awk -v t0="$TERM" '$1 >= t0' "$T/tries" | wc -l)
check "exit 0 within 2 s of SIGTERM (${took} ms)" test "$rc" -eq 0 -a "$took" -lt 2000
check "journald gone: backs off while running ($down tries)" test "$down" -le 8
check "journald gone: backs off in the stop flush too ($stopping tries)" \
    test "$stopping" -le 2
check "what was not written is counted" \
    grep -qE "[0-9]+ records could not be written before the exit" "$T/err"
kill "$PEER"
finish
