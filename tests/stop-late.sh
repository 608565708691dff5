#!/bin/sh
# Stopping reads on until the server's close.  SIGTERM sends our close
# (1001); the server, which had not read it yet, still sends events before
# its own close.  Those events were on their way before we closed: they
# are handed on like any other (with a spool they are kept), and the
# daemon still exits within its 2 s budget.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
"$PY" - >"$T/script.json" <<'PYEOF'
import json
ev = lambda i: json.dumps({"type": "container", "action": "update",
                           "state": "Running", "uuid": "ev-%03d" % i})
print(json.dumps([{"messages": [ev(i) for i in range(3)],
                   "late_messages": [ev(i) for i in range(3, 8)],
                   "after": "hold"}]))
PYEOF
wspeer_start "$T/script.json"

"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=no \
    -o Output.Stdout=yes >"$T/out" 2>"$T/err" &
DC=$!
PIDS="$PIDS $DC"
events() { [ "$(grep -c '"uuid"' "$T/out")" -ge "$1" ]; }
check "the first 3 events are out" wait_until 5 events 3
start=$(now_ms)
kill -TERM "$DC"
wait "$DC"
rc=$?
took=$(( $(now_ms) - start ))
check "SIGTERM: exit status 0" test "$rc" -eq 0
check "SIGTERM: exit within 2 s (${took} ms)" test "$took" -lt 2000
check "the server got our close (1001)" contains "$T/peer" '"ev":"close","n":1,"code":1001'
check "the 5 events sent after our close are out too" events 8
check "in order" test "$(grep -o 'ev-[0-9]*' "$T/out" | tr '\n' ' ')" = \
    "ev-000 ev-001 ev-002 ev-003 ev-004 ev-005 ev-006 ev-007 "
finish
