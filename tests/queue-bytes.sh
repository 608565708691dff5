#!/bin/sh
# QueueMaxBytes: a stalled output (stdout into a pipe whose reader is
# stopped before the daemon starts) holds at most QueueMaxBytes of
# records, however few they are: reading pauses (said with the count and
# size) and really stops (the server's data waits unread in the daemon's
# socket), the connection is kept while paused (keepalive suspended), and
# once the reader goes on reading resumes and every event arrives exactly
# once, in order.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
N=3000
"$PY" - "$N" >"$T/script.json" <<'PYEOF'
import json, sys
msgs = [json.dumps({"type": "container", "action": "update",
                    "state": "Running", "uuid": "ev-%06d" % i,
                    "resource_uri": "/api/app/v1/t/container/c%d/" % i,
                    "pad": "x" * 200})
        for i in range(int(sys.argv[1]))]
print(json.dumps([{"messages": msgs, "interval": 0, "after": "hold"}]))
PYEOF
wspeer_start "$T/script.json"
# The reader holds the pipe open and is stopped before anything is written.
stopped_reader "$T/pipe" "$T/out"
"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=no \
    -o Output.Stdout=yes -o Output.QueueMaxBytes=64K \
    -o Stream.PingIntervalSec=300ms -o Stream.PongTimeoutSec=300ms \
    >"$T/pipe" 2>"$T/err" &
DC=$!
PIDS="$PIDS $DC"
exec 3>&-
check "reading pauses at QueueMaxBytes" wait_until 5 contains "$T/err" "(QueueMaxBytes); reading paused"
check "the queue held 64 KiB and one record at most" "$PY" - "$T/err" <<'PYEOF'
import re, sys
m = re.search(r"(\d+) records of (\d+) bytes wait", open(sys.argv[1]).read())
n, b = int(m.group(1)), int(m.group(2))
print("# %d records, %d bytes" % (n, b))
sys.exit(not (65536 <= b < 65536 + 1024 and n < 1000))
PYEOF
sleep 0.3
q1=$(tcp_recvq "$PORT")
sleep 1.2
q2=$(tcp_recvq "$PORT")
check "reading stopped: the server's data waits unread ($q1 bytes, then $q2 after 1.2 s)" \
    test "$q1" -gt 0 -a "$q2" -ge "$q1"
check "the connection is kept while paused" test "$(grep -c '"ev":"connect"' "$T/peer")" -eq 1
kill -CONT "$READER"
check "reading resumes" wait_until 10 contains "$T/err" "reading resumes"
check "all $N events arrive" wait_until 20 has_lines "$T/out" "$N"
check "each event once, in order" "$PY" - "$T/out" "$N" <<'PYEOF'
import json, sys
got = [json.loads(l)["uuid"] for l in open(sys.argv[1])]
sys.exit(got != ["ev-%06d" % i for i in range(int(sys.argv[2]))])
PYEOF
paused=$(count "$T/err" "reading paused")
resumed=$(count "$T/err" "reading resumes")
check "paused as often as resumed, at least once ($paused, $resumed)" \
    test "$paused" -ge 1 -a "$paused" -eq "$resumed"
kill "$DC"
wait "$DC"
finish
