#!/bin/sh
# The connection's own records in a private, real journald: connected,
# disconnected, authentication failure and gap, each with its MESSAGE_ID,
# priority and fields; and the catalog explains every MESSAGE_ID we use.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/journal.sh"
journal_enter "$@"
. "$top_srcdir/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/mid.sh"

[ "${WITH_SYSTEMD:-yes}" = yes ] || skip "built without libsystemd"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
journal_start

printf '%s\n' '[{"messages": ["{\"n\":1}"], "after": "abort"},
  {"status": 401}, {"messages": ["{\"n\":2}"]}]' >"$T/script.json"
wspeer_start "$T/script.json"

"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=yes \
    -o Output.Identifier=dce-test -o Output.SyslogFacility=local3 \
    -o Stream.BackoffMinSec=50ms -o Stream.BackoffMaxSec=100ms \
    -o Stream.AuthBackoffSec=300ms >"$T/out" 2>"$T/err" &
DC=$!
PIDS="$PIDS $DC"

CONNECTED=$MID_CONNECTED DISCONNECTED=$MID_DISCONNECTED STOPPED=$MID_STOPPED
AUTH=$MID_AUTH_FAILED GAP=$MID_GAP

check "two connected records" journal_wait "MESSAGE_ID=$CONNECTED" 2 10
check "a disconnected record" journal_wait "MESSAGE_ID=$DISCONNECTED" 1
check "an authentication failure record" journal_wait "MESSAGE_ID=$AUTH" 1
check "a gap record" journal_wait "MESSAGE_ID=$GAP" 1
kill "$DC"
wait "$DC"
journal_json SYSLOG_IDENTIFIER=dce-test >"$T/j.json"

# fields [-1] ID EXPR: every record with MESSAGE_ID=ID (with -1: one of
# them) satisfies EXPR (Python, r = the record); shows a record otherwise.
fields() {
	any=0
	[ "$1" = -1 ] && any=1 && shift
	"$PY" - "$T/j.json" "$1" "$2" "$any" <<'PYEOF'
import json, re, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
recs = [r for r in recs if r.get("MESSAGE_ID") == sys.argv[2]]
good = [r for r in recs if eval(sys.argv[3])]
if not recs or (not good if sys.argv[4] == "1" else len(good) != len(recs)):
    bad = [r for r in recs if r not in good]
    print("# no record" if not recs else "# " + json.dumps(bad[0]))
    sys.exit(1)
PYEOF
}

common='r["SYSLOG_IDENTIFIER"] == "dce-test" and r["SYSLOG_FACILITY"] == "19"'
check "connected: priority info, identifier, facility, URL and TLS version" fields $CONNECTED \
    "$common and r['PRIORITY'] == '6' and r['DCEVENTS_URL'] == 'wss://localhost:$PORT/' and r['DCEVENTS_TLS'].startswith('TLSv1.') and r['MESSAGE'].startswith('connected to wss://localhost:$PORT/')"
check "every disconnected record: priority warning, the reason and the delay" fields $DISCONNECTED \
    "$common and r['PRIORITY'] == '4' and r['DCEVENTS_REASON'].startswith('connection closed by the server') and r['DCEVENTS_RETRY_MS'].isdigit() and 'reconnecting in' in r['MESSAGE']"
check "disconnected at SIGTERM: its own MESSAGE_ID, priority info, no reconnect" fields $STOPPED \
    "$common and r['PRIORITY'] == '6' and r['DCEVENTS_REASON'] == 'dcevents is stopping' and 'DCEVENTS_RETRY_MS' not in r and 'reconnecting' not in r['MESSAGE']"
check "auth failure: priority err, the HTTP status, AuthBackoffSec" fields $AUTH \
    "$common and r['PRIORITY'] == '3' and r['DCEVENTS_HTTP_STATUS'] == '401' and r['DCEVENTS_RETRY_MS'] == '300' and 'HTTP 401 (bad credentials)' in r['MESSAGE']"
check "gap: priority notice, start and end in UTC" fields $GAP \
    "$common and r['PRIORITY'] == '5' and re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', r['DCEVENTS_GAP_START']) and r['DCEVENTS_GAP_START'] <= r['DCEVENTS_GAP_END'] and 'may be missing' in r['MESSAGE']"

# The catalog: journalctl accepts it and has an entry for every MESSAGE_ID.
mkdir -p "$T/root/usr/lib/systemd/catalog"
cp "$top_srcdir/systemd/dcevents.catalog" "$T/root/usr/lib/systemd/catalog/"
journalctl --root="$T/root" --update-catalog 2>"$T/catalog.err"
check "the catalog compiles without complaint" test $? -eq 0 -a ! -s "$T/catalog.err"
journalctl --root="$T/root" --list-catalog >"$T/catalog" 2>&1
ids=$(cat "$top_srcdir/daemon/dcevents.h" "$top_srcdir/daemon/event.c" |
    grep -oE '"[0-9a-f]{32}"' | tr -d '"' | sort -u)
check "MESSAGE_IDs found in the sources ($(echo "$ids" | wc -l))" test "$(echo "$ids" | wc -l)" -ge 17
for id in $ids; do
	check "catalog entry for $id" contains "$T/catalog" "$id"
done
finish
