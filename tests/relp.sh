#!/bin/sh
# RELP when the collector misbehaves: it refuses the session, refuses a
# record (500), answers with something that is no RELP frame, or ends the
# session (serverclose) mid-batch.  Each is reported with what the
# collector said, the session is opened again after the backoff, and the
# records the collector did not take are sent again: in the end it has
# taken every event exactly once, in order.  The events come over 3 s, so
# that each misbehaving session still has records to answer when the
# back-off before it was long (a loaded machine).  Then the same under valgrind
# memcheck: no error, nothing lost (when valgrind is installed; not in a
# sanitizer build).  (The real collector, rsyslog's imrelp, restarted
# mid-stream: tests/outage.sh.)
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the test peers"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
N=60
"$PY" - "$N" >"$T/script.json" <<'PYEOF'
import json, sys
msgs = [json.dumps({"type": "container", "action": "update",
                    "state": "Running", "uuid": "ev-%06d" % i,
                    "resource_uri": "/api/app/v1/t/container/c%d/" % i})
        for i in range(int(sys.argv[1]))]
print(json.dumps([{"messages": msgs, "interval": 0.05, "after": "hold"}]))
PYEOF
wspeer_start "$T/script.json"

# scenario NAME [COMMAND...]: dcevents (run by COMMAND, e.g. valgrind)
# against a collector that misbehaves in each way once, then takes all.
scenario() {
	name=$1
	shift
	rm -f "$T/relp.port"
	"$PY" "$top_srcdir/tests/peers/relppeer.py" --portfile "$T/relp.port" \
	    --out "$T/taken.$name" \
	    --sessions badopen,refuse@3,garbage@4,serverclose@5,ok \
	    2>"$T/relp.err" &
	relp=$!
	PIDS="$PIDS $relp"
	wait_until 5 test -s "$T/relp.port" || fail "the RELP peer did not start"
	"$@" "$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=no \
	    -o "Output.Syslog=relp://127.0.0.1:$(cat "$T/relp.port")" \
	    >"$T/dc.out" 2>"$T/dc.err.$name" &
	DC=$!
	PIDS="$PIDS $DC"
	check "$name: all $N events and the connected record are taken" \
	    wait_until 60 has_lines "$T/taken.$name" $((N + 1))
	kill "$DC"
	wait "$DC"
	rc=$?
	kill "$relp"
	err=$T/dc.err.$name
	check "$name: a refused session is reported" contains "$err" "the collector refused: 500 not today"
	check "$name: a refused record is reported" contains "$err" "the collector refused: 500 test refusal"
	check "$name: an answer that is no RELP frame is reported" contains "$err" "RELP: malformed answer"
	check "$name: a serverclose is reported" contains "$err" "session closed (serverclose)"
	check "$name: the recovery is reported" contains "$err" "syslog output is back"
	check "$name: the events were taken exactly once, in order" "$PY" - "$T/taken.$name" "$N" <<'PYEOF2'
import re, sys
got = [m.group(1) for m in (re.search(r'uuid="(ev-\d+)"', l)
       for l in open(sys.argv[1], errors="surrogateescape")) if m]
want = ["ev-%06d" % i for i in range(int(sys.argv[2]))]
if got != want:
    print("# taken: %d, duplicates: %d, first: %s" % (len(got),
          len(got) - len(set(got)), got[:6]))
    sys.exit(1)
PYEOF2
}

scenario plain
check "plain: exit 0 after SIGTERM" test "$rc" -eq 0

# The same under valgrind memcheck: no error, nothing lost (the RELP
# sessions, the failures and the reconnects included).
if [ "${WITH_SANITIZERS:-no}" = yes ]; then
	echo "# valgrind: skipped (it does not mix with the sanitizers)"
elif ! command -v valgrind >/dev/null; then
	echo "# valgrind: skipped (not installed)"
else
	SUPP=
	[ -f "$top_srcdir/tests/valgrind.supp" ] &&
	    SUPP="--suppressions=$top_srcdir/tests/valgrind.supp"
	# shellcheck disable=SC2086
	scenario valgrind valgrind --tool=memcheck --leak-check=full \
	    --show-leak-kinds=definite,indirect,possible \
	    --errors-for-leak-kinds=definite,indirect,possible \
	    --error-exitcode=99 --num-callers=40 --log-file="$T/vg.log" $SUPP
	check "valgrind: exit 0 (no error, nothing lost) (got $rc)" test "$rc" -eq 0
	check "valgrind: ERROR SUMMARY: 0 errors" contains "$T/vg.log" "ERROR SUMMARY: 0 errors from 0 contexts"
fi
finish
