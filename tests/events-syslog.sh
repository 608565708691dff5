#!/bin/sh
# The scripted stream into a real rsyslogd: RFC 5424 over UDP, TCP (octet
# counting), TLS, RELP and RELP over TLS, and RFC 3164 to /dev/log (imuxsock, in a private
# mount namespace), compared with tests/expect.py: PRI, APP-NAME, MSGID,
# the structured data exactly, and MSG.
. "${top_srcdir:-$(dirname "$0")/..}/tests/rsyslog.sh"
rsyslog_local_enter "$@"
. "$top_srcdir/tests/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
sh "$top_srcdir/tests/certs.sh" "$T/pki" || skip "cannot make test certificates"
rsyslog_start
rsyslog_local_start

"$PY" "$top_srcdir/tests/stream-events.py" "$top_srcdir/demo/events.json" \
    "$T/messages.json" "$T/script.json"

# run TRANSPORT SYSLOG= KIND: the whole stream through one transport.
run() {
	tr=$1
	opts="namespace=demo identifier=dce-syslog facility=17"
	# shellcheck disable=SC2086
	"$PY" "$top_srcdir/tests/expect.py" "$T/messages.json" "$3" $opts \
	    >"$T/want.$tr"
	n=$(wc -l <"$T/want.$tr")
	rm -f "$T/port"
	"$PY" "$top_srcdir/tests/wspeer.py" --portfile "$T/port" \
	    --script "$T/script.json" --cert "$T/pki/server.pem" \
	    --key "$T/pki/server.key" 2>"$T/peer.err" &
	peer=$!
	PIDS="$PIDS $peer"
	wait_until 5 test -s "$T/port" || { fail "$tr: peer did not start"; return; }
	"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$(cat "$T/port")/" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o Stream.Namespace=demo \
	    -o Output.Journal=no -o "Output.Syslog=$2" \
	    -o Output.Identifier=dce-syslog -o Output.SyslogFacility=local1 \
	    >"$T/out.$tr" 2>"$T/err.$tr" &
	dc=$!
	PIDS="$PIDS $dc"
	check "$tr: $n records and the connected record" \
	    rsyslog_wait "$T/rsyslog-$tr.json" $((n + 1)) 20
	kill "$dc"
	wait "$dc"
	check "$tr: exit 0 after SIGTERM" test $? -eq 0
	kill "$peer"
	wait "$peer" 2>/dev/null
	check "$tr: every record field by field" \
	    "$PY" "$top_srcdir/tests/compare.py" "$3" "$T/want.$tr" "$T/rsyslog-$tr.json"
}

run udp "udp://127.0.0.1:$RSYSLOG_UDP_PORT" syslog
run tcp "tcp://127.0.0.1:$RSYSLOG_TCP_PORT" syslog
run tls "tls://localhost:$RSYSLOG_TLS_PORT" syslog
if [ -n "$RSYSLOG_RELP_PORT" ]; then
	run relp "relp://127.0.0.1:$RSYSLOG_RELP_PORT" syslog
	run relptls "relp+tls://localhost:$RSYSLOG_RELPTLS_PORT" syslog
else
	echo "# relp, relp+tls: skipped, rsyslog has no imrelp (rsyslog-relp)"
fi
run local local local

# A record larger than a UDP datagram can be is cut to 65000 bytes, with a
# warning, and the records after it still arrive.
"$PY" - >"$T/big.json" <<'PYEOF2'
import json
msgs = [json.dumps({"type": "container", "uuid": "big-%d" % i,
                    "pad": "p" * (80000 if i == 1 else 10)}) for i in range(3)]
print(json.dumps([{"messages": msgs, "after": "hold"}]))
PYEOF2
before=$(wc -l <"$T/rsyslog-udp.json")
wspeer_start "$T/big.json"
"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=no \
    -o "Output.Syslog=udp://127.0.0.1:$RSYSLOG_UDP_PORT" \
    >"$T/out.big" 2>"$T/err.big" &
dc=$!
PIDS="$PIDS $dc"
check "udp: the connected record and three events, one cut" \
    rsyslog_wait "$T/rsyslog-udp.json" $((before + 4)) 10
check "udp: the cut is reported" contains "$T/err.big" "was cut to 65000 (datagram limit)"
check "udp: the events in order, the large one cut to 65000 bytes" \
    "$PY" - "$T/rsyslog-udp.json" "$before" <<'PYEOF2'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2]):]
ev = [r for r in recs if "big-" in r["structured_data"]]
ok = [("big-%d" % i) in ev[i]["structured_data"] for i in range(3)]
sys.exit(not (all(ok) and len(ev) == 3 and len(ev[1]["rawmsg"]) <= 65000
              and len(ev[1]["rawmsg"]) > 60000))
PYEOF2
kill "$dc"
wait "$dc"
kill "$PEER"
check "tcp: nothing garbled (no framing complaints)" lacks "$T/rsyslog-internal.log" "framing"
check "relp: no session errors (sessions closed properly)" lacks "$T/rsyslog-internal.log" "relp"
finish
