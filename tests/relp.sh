#!/bin/sh
# RELP when the collector misbehaves: it refuses the session, refuses a
# record (500), answers with something that is no RELP frame, or ends the
# session (serverclose) mid-batch.  Each is reported with what the
# collector said, the session is opened again after the backoff, and the
# records the collector did not take are sent again: in the end it has
# taken every event exactly once, in order.  (The real collector, rsyslog's
# imrelp, restarted mid-stream: tests/outage.sh.)
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the test peers"
sh "$top_srcdir/tests/certs.sh" "$T/pki" || skip "cannot make test certificates"
N=60
"$PY" - "$N" >"$T/script.json" <<'PYEOF'
import json, sys
msgs = [json.dumps({"type": "container", "action": "update",
                    "state": "Running", "uuid": "ev-%06d" % i,
                    "resource_uri": "/api/app/v1/t/container/c%d/" % i})
        for i in range(int(sys.argv[1]))]
print(json.dumps([{"messages": msgs, "interval": 0.01, "after": "hold"}]))
PYEOF
wspeer_start "$T/script.json"
"$PY" "$top_srcdir/tests/relppeer.py" --portfile "$T/relp.port" \
    --out "$T/taken" \
    --sessions badopen,refuse@3,garbage@4,serverclose@5,ok 2>"$T/relp.err" &
PIDS="$PIDS $!"
wait_until 5 test -s "$T/relp.port" || fail "the RELP peer did not start"
"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=no \
    -o "Output.Syslog=relp://127.0.0.1:$(cat "$T/relp.port")" \
    >"$T/dc.out" 2>"$T/dc.err" &
DC=$!
PIDS="$PIDS $DC"
check "all $N events and the connected record are taken" \
    wait_until 20 has_lines "$T/taken" $((N + 1))
kill "$DC"
wait "$DC"
check "exit 0 after SIGTERM" test $? -eq 0
check "a refused session is reported" contains "$T/dc.err" "the collector refused: 500 not today"
check "a refused record is reported" contains "$T/dc.err" "the collector refused: 500 test refusal"
check "an answer that is no RELP frame is reported" contains "$T/dc.err" "RELP: malformed answer"
check "a serverclose is reported" contains "$T/dc.err" "session closed (serverclose)"
check "the recovery is reported" contains "$T/dc.err" "syslog output is back"
check "the events were taken exactly once, in order" "$PY" - "$T/taken" "$N" <<'PYEOF'
import re, sys
got = [m.group(1) for m in (re.search(r'uuid="(ev-\d+)"', l)
       for l in open(sys.argv[1], errors="surrogateescape")) if m]
want = ["ev-%06d" % i for i in range(int(sys.argv[2]))]
if got != want:
    print("# taken: %d, duplicates: %d, first: %s" % (len(got),
          len(got) - len(set(got)), got[:6]))
    sys.exit(1)
PYEOF
finish
