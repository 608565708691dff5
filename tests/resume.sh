#!/bin/sh
# Resuming reads what is already buffered.  The server sends 100 events in
# one TLS record and then nothing (a keepalive of a minute: no pong comes
# to wake the reader); stdout is a pipe that is full, its reader stopped,
# so reading pauses at QueueMax=20 with the rest of the record read and
# waiting in the daemon.  Once the reader goes on, reading resumes and
# every event is out within about a second, not at the next frame.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
N=100
"$PY" - "$N" >"$T/script.json" <<'PYEOF'
import json, sys
msgs = [json.dumps({"type": "container", "action": "update",
                    "state": "Running", "uuid": "ev-%06d" % i})
        for i in range(int(sys.argv[1]))]
assert sum(len(m) + 2 for m in msgs) < 16000  # one TLS record
print(json.dumps([{"messages": msgs, "together": True, "after": "hold"}]))
PYEOF
wspeer_start "$T/script.json"

# The reader holds the pipe open, stopped, and the pipe is filled up.
stopped_reader "$T/pipe" "$T/out" full
"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=no \
    -o Output.Stdout=yes -o Output.QueueMax=20 \
    -o Stream.PingIntervalSec=1min >"$T/pipe" 2>"$T/err" &
DC=$!
PIDS="$PIDS $DC"
exec 3>&-
check "reading pauses at QueueMax" wait_until 5 contains "$T/err" "(QueueMax); reading paused"
check "the server sent all $N events at once" wait_until 5 contains "$T/peer" '"ev":"sent"'
sleep 0.5
kill -CONT "$READER"
check "reading resumes" wait_until 5 contains "$T/err" "reading resumes"
start=$(now_ms)
events() { [ "$(grep -c '"uuid"' "$T/out")" -ge "$N" ]; }
wait_until 10 events
took=$(( $(now_ms) - start ))
check "every event within about a second of resuming (${took} ms)" events
check "... that is, under 1.5 s" test "$took" -lt 1500
check "each event once, in order" "$PY" - "$T/out" "$N" <<'PYEOF'
import json, sys
got = [json.loads(l)["uuid"] for l in open(sys.argv[1]) if not l.startswith("#")]
sys.exit(got != ["ev-%06d" % i for i in range(int(sys.argv[2]))])
PYEOF
check "one connection throughout" test "$(grep -c '"ev":"connect"' "$T/peer")" -eq 1
kill "$DC"
wait "$DC"
finish
