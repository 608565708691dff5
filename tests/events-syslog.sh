#!/bin/sh
# The scripted stream into a real rsyslogd: RFC 5424 over UDP, TCP (octet
# counting), TLS, RELP and RELP over TLS, and RFC 3164 to /dev/log (imuxsock, in a private
# mount namespace), compared with tests/peers/expect.py: PRI, APP-NAME, MSGID,
# the structured data exactly, and MSG.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/rsyslog.sh"
rsyslog_local_enter "$@"
. "$top_srcdir/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
rsyslog_start
rsyslog_local_start

"$PY" "$top_srcdir/tests/peers/stream-events.py" "$top_srcdir/demo/events.json" \
    "$T/messages.json" "$T/script.json"

# run TRANSPORT SYSLOG= KIND: the whole stream through one transport.
run() {
	tr=$1
	opts="namespace=demo identifier=dce-syslog facility=17"
	# shellcheck disable=SC2086
	"$PY" "$top_srcdir/tests/peers/expect.py" "$T/messages.json" "$3" $opts \
	    >"$T/want.$tr"
	n=$(wc -l <"$T/want.$tr")
	rm -f "$T/port"
	"$PY" "$top_srcdir/tests/peers/wspeer.py" --portfile "$T/port" \
	    --script "$T/script.json" --cert "$T/pki/server.pem" \
	    --key "$T/pki/server.key" 2>"$T/peer.err" &
	peer=$!
	PIDS="$PIDS $peer"
	wait_until 5 test -s "$T/port" || { fail "$tr: peer did not start"; return; }
	"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$(cat "$T/port")/" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o Stream.Namespace=demo \
	    -o "Output.SyslogCAFile=$T/pki/ca.pem" \
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
	    "$PY" "$top_srcdir/tests/peers/compare.py" "$3" "$T/want.$tr" "$T/rsyslog-$tr.json"
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

# Records larger than a UDP datagram can be are cut to 65000 bytes, still
# well-formed RFC 5424 (MSG first, then the long value, between characters
# and escapes, the element closed), with one warning for both; the records
# after them still arrive.
"$PY" - >"$T/big.json" <<'PYEOF2'
import json
pad = 'p"\u00e9\\]\u20ac' * 20000
msgs = [json.dumps({"type": "container", "uuid": "big-%d" % i,
                    "state": "Running",
                    "pad": pad if i in (1, 2) else "small"}) for i in range(4)]
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
check "udp: the connected record and four events, two cut" \
    rsyslog_wait "$T/rsyslog-udp.json" $((before + 5)) 10
check "udp: the cut is reported once, with its size" \
    test "$(grep -cE 'a record of [0-9]+ bytes was cut to [0-9]+ to fit a datagram \(MSG by [0-9]+ bytes, the structured data by [0-9]+\)' "$T/err.big")" -eq 1
check "udp: the cut records parse back as RFC 5424, values whole or cut between characters" \
    "$PY" - "$T/rsyslog-udp.json" "$before" <<'PYEOF2'
import json, re, sys
recs = [json.loads(l) for l in open(sys.argv[1], errors="surrogateescape")]
recs = recs[int(sys.argv[2]):]
ev = [r for r in recs if "big-" in r["structured_data"]]
pad = 'p"\u00e9\\]\u20ac' * 20000
def params(sd):
    # RFC 5424 SD-ELEMENT: [ID name="value"...], in a value \" \\ \] only
    m = re.fullmatch(r'\[dockercloud@32473((?: [^ ="\]]{1,32}="(?:[^"\\\]]|\\["\\\]])*")*)\]',
                     sd)
    if not m:
        print("# not a well-formed element:", sd[:80], "...", sd[-80:])
        return None
    return {k: re.sub(r'\\(.)', r'\1', v) for k, v in
            re.findall(r' ([^=]+)="((?:[^"\\]|\\.)*)"', m.group(1))}
ok = len(ev) == 4
for i, r in enumerate(ev):
    p = params(r["structured_data"])
    big = i in (1, 2)
    good = (p is not None and r["protocol_version"] == "1" and
            p.get("uuid") == "big-%d" % i and p.get("state") == "Running" and
            p.get("type") == "container" and len(r["rawmsg"].encode("utf-8", "surrogateescape")) <= 65000)
    if good and big:
        good = (r["msg"] == "" and len(p["pad"]) > 30000 and
                pad.startswith(p["pad"]))
    elif good:
        good = p["pad"] == "small" and r["msg"] == "container: Running"
    if not good:
        print("# record %d: %s" % (i, r["rawmsg"][:300]))
    ok = ok and good
sys.exit(not ok)
PYEOF2
kill "$dc"
wait "$dc"
kill "$PEER"
check "tcp: nothing garbled (no framing complaints)" lacks "$T/rsyslog-internal.log" "framing"
check "relp: no session errors (sessions closed properly)" lacks "$T/rsyslog-internal.log" "relp"
finish
