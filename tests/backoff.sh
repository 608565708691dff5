#!/bin/sh
# BackoffResetSec: a connection that lasted that long starts the backoff
# again (the next delay is exactly BackoffMinSec); a shorter one keeps
# the count (the next delay is drawn from a wider range).  The exact
# delays come from the daemon's -v line "connected for N ms; reconnecting
# in D ms".
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"

# Three refused attempts (the count goes to 3), a connection of 0.1 s, one
# of 1.6 s, then one that holds.
cat >"$T/script.json" <<'EOF'
[{"status": 500}, {"status": 500}, {"status": 500},
 {"messages": [{"sleep": 0.1}], "after": "abort"},
 {"messages": [{"sleep": 1.6}], "after": "abort"},
 {"after": "hold"}]
EOF
wspeer_start "$T/script.json"
"$DCEVENTS" -v -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=no \
    -o Output.Stdout=yes -o Stream.BackoffMinSec=200ms \
    -o Stream.BackoffMaxSec=1min -o Stream.BackoffResetSec=1s \
    >"$T/out" 2>"$T/err" &
DC=$!
PIDS="$PIDS $DC"
connects6() { [ "$(count "$T/peer" '"ev":"connect"')" -ge 6 ]; }
check "six connections" wait_until 15 connects6
sed -n 's/.*debug: \(connected for .*\)/# \1/p' "$T/err"
# delay N: the reconnect delay after the Nth connection that opened.
delay() {
	sed -n 's/.*debug: connected for [0-9]* ms; reconnecting in \([0-9]*\) ms$/\1/p' \
	    "$T/err" | sed -n "${1}p"
}
up() {
	sed -n 's/.*debug: connected for \([0-9]*\) ms; .*/\1/p' "$T/err" |
	    sed -n "${1}p"
}
d1=$(delay 1) d2=$(delay 2)
# After three failures the range is 200 ms to 1.6 s: exactly 200 ms by
# chance once in 1401.
check "a 0.1 s connection keeps the backoff (${d1:-no} ms after $(up 1) ms up)" \
    test -n "$d1" -a "${d1:-0}" -ge 200 -a "${d1:-0}" -ne 200
check "a connection past BackoffResetSec resets it: BackoffMinSec next (${d2:-no} ms after $(up 2) ms up)" \
    test "${d2:-0}" -eq 200 -a "$(up 2)" -ge 1000
kill "$DC"
wait "$DC"
finish
