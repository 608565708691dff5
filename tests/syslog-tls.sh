#!/bin/sh
# Syslog over TLS and RELP over TLS against a real rsyslogd, the events
# server and the collector each with a CA of its own:
# - Stream.CAFile= verifies the events server only, Output.SyslogCAFile=
#   the collector: both work at once; with SyslogCAFile= unset the
#   collector (private CA) fails verification against the system store
#   while the stream goes on.
# - A stop closes the collector's TLS session with a close_notify:
#   rsyslog's own log has no "unexpected eof" or "closed due to error".
# - A relp+tls collector killed mid-stream: the daemon says what happened
#   (the connection closed, errno, OpenSSL's reason), never the empty
#   "error:00000000:lib(0)::reason(0)".
# - A SIGHUP to a configuration whose tls:// output cannot be opened (a
#   SyslogCAFile= that is not PEM) is refused: the daemon keeps running
#   on its old configuration and its old collector connection.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/rsyslog.sh"
. "$top_srcdir/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
# Two CAs: $T/pki for the collector (rsyslog.sh uses it), $T/spki for
# the events server.
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" &&
    sh "$top_srcdir/tests/lib/certs.sh" "$T/spki" ||
    skip "cannot make test certificates"
rsyslog_start

N=20
"$PY" - "$N" >"$T/script.json" <<'PYEOF'
import json, sys
msgs = [json.dumps({"type": "container", "action": "update",
                    "state": "Running", "uuid": "ev-%06d" % i})
        for i in range(int(sys.argv[1]))]
print(json.dumps([{"messages": msgs, "interval": 0.02, "after": "hold"}]))
PYEOF
"$PY" - >"$T/burst.json" <<'PYEOF'
import json
msgs = [json.dumps({"type": "container", "uuid": "burst-%06d" % i})
        for i in range(30000)]
print(json.dumps([{"messages": msgs, "after": "hold"}]))
PYEOF

# peer SCRIPT: the websocket server with the stream's own CA; sets PORT.
peer() {
	rm -f "$T/port"
	"$PY" "$top_srcdir/tests/peers/wspeer.py" --portfile "$T/port" \
	    --log "$T/peer" --script "$1" --cert "$T/spki/server.pem" \
	    --key "$T/spki/server.key" 2>"$T/peer.err" &
	PEER=$!
	PIDS="$PIDS $PEER"
	wait_until 5 test -s "$T/port" || skip "the websocket peer did not start"
	PORT=$(cat "$T/port")
}

# dc NAME OPTION...: the daemon, the stream verified against $T/spki only.
dc() {
	name=$1
	shift
	"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
	    -o "Stream.CAFile=$T/spki/ca.pem" -o Output.Journal=no \
	    -o "Output.Identifier=$name" "$@" \
	    >"$T/$name.out" 2>"$T/$name.err" &
	DC=$!
	PIDS="$PIDS $DC"
}

# stop: SIGTERM the daemon; its exit status in rc.
stop() {
	kill "$DC"
	wait "$DC"
	rc=$?
}

# 1. Two CAs at once, then a clean stop: no complaint from rsyslog.
for tr in tls relptls; do
	case $tr in
	tls) target=tls://localhost:$RSYSLOG_TLS_PORT ;;
	relptls)
		if [ -z "$RSYSLOG_RELPTLS_PORT" ]; then
			echo "# relp+tls: skipped, rsyslog has no imrelp"
			continue
		fi
		target=relp+tls://localhost:$RSYSLOG_RELPTLS_PORT ;;
	esac
	peer "$T/script.json"
	: >"$T/rsyslog-internal.log"
	dc "$tr" -o "Output.Syslog=$target" \
	    -o "Output.SyslogCAFile=$T/pki/ca.pem"
	check "$tr: the stream (its CA) and the collector (another CA) both verified: $N events and the connected record" \
	    rsyslog_wait "$T/rsyslog-$tr.json" $((N + 1)) 10
	sleep 0.3
	stop
	check "$tr: exit 0 after SIGTERM" test "$rc" -eq 0
	kill "$PEER"
	# rsyslog notices the end of the session at once; give it a moment.
	sleep 0.5
	check "$tr: the session ended with a close_notify (rsyslog: no unexpected eof)" \
	    lacks "$T/rsyslog-internal.log" "unexpected eof"
	check "$tr: rsyslog closed nothing due to an error" \
	    lacks "$T/rsyslog-internal.log" "due to error"
	sed 's/^/#   rsyslog: /' "$T/rsyslog-internal.log"
done

# The same seen by the collector for relp+tls, where rsyslog (librelp)
# says nothing: a RELP collector on Python's ssl, strict about the end
# of TLS (unexpected EOFs not ignored, suppress_ragged_eofs off), says
# how the session ended.
rm -f "$T/relpc.port"
"$PY" - "$T/relpc.port" "$T/pki/server.pem" "$T/pki/server.key" \
    >"$T/relpc.log" 2>&1 <<'PYEOF' &
import os, socket, ssl, sys
port, cert, key = sys.argv[1:]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # Python's default hides it
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(4)
open(port + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename(port + ".tmp", port)
t = ctx.wrap_socket(s.accept()[0], server_side=True,
                    suppress_ragged_eofs=False)
buf, took = b"", []
def frame():
    # "TXNR CMD LEN[ DATA]LF", or None while incomplete
    global buf
    head = buf.split(b" ", 3)
    if len(head) < 3 or b"\n" not in buf:
        return None
    txnr, cmd = head[0], head[1]
    digits = head[2].split(b"\n", 1)[0]
    start = len(txnr) + len(cmd) + len(digits) + 3
    n = int(digits)
    if len(buf) < start + n + (1 if n else 0):
        return None
    buf = buf[start + n + (1 if n else 0):] if n else buf[start:]
    return txnr, cmd
while True:
    try:
        data = t.recv(65536)
    except ssl.SSLError as e:
        print("%d records, then ended without a close_notify: %s" %
              (len(took), e), flush=True)
        break
    if not data:
        print("%d records, then ended with a close_notify" % len(took),
              flush=True)
        t.unwrap()
        break
    buf += data
    while (f := frame()) is not None:
        txnr, cmd = f
        text = b"200 OK"
        if cmd == b"open":
            text += b"\nrelp_version=0\nrelp_software=test\ncommands=syslog"
        if cmd == b"syslog":
            took.append(1)
        t.sendall(b"%s rsp %d %s\n" % (txnr, len(text), text))
t.close()
PYEOF
relpc=$!
PIDS="$PIDS $relpc"
if wait_until 5 test -s "$T/relpc.port"; then
	peer "$T/script.json"
	dc relpc -o "Output.Syslog=relp+tls://localhost:$(cat "$T/relpc.port")" \
	    -o "Output.SyslogCAFile=$T/pki/ca.pem"
	sleep 1
	stop
	check "relp+tls: exit 0 after SIGTERM" test "$rc" -eq 0
	kill "$PEER"
	wait "$relpc"
	sed 's/^/#   collector: /' "$T/relpc.log"
	check "relp+tls: the session ended with a close_notify (the collector)" \
	    grep -qE "^[1-9][0-9]* records, then ended with a close_notify" "$T/relpc.log"
else
	fail "the relp+tls collector did not start"
fi

# 2. SyslogCAFile= unset: the system store, which lacks the collector's
# private CA, not Stream.CAFile=.  The stream still runs.
peer "$T/script.json"
dc nosyslogca -o "Output.Syslog=tls://localhost:$RSYSLOG_TLS_PORT" \
    -o Output.Stdout=yes
check "no SyslogCAFile: the collector's private CA is not trusted" \
    wait_for "$T/nosyslogca.err" "syslog output is down: localhost port $RSYSLOG_TLS_PORT: TLS certificate verification failed: "
check "no SyslogCAFile: the stream, verified against Stream.CAFile, runs" \
    wait_until 5 has_lines "$T/nosyslogca.out" "$N"
stop
kill "$PEER"

# 3. A reload whose syslog output cannot be opened (SyslogCAFile= names
# a file that exists but holds no certificate) is refused: the daemon
# says so and goes on writing to the collector it has.
"$PY" - >"$T/hup.json" <<'PYEOF'
import json
msgs = [json.dumps({"type": "container", "uuid": "hup-%06d" % i})
        for i in range(60)]
print(json.dumps([{"messages": msgs, "interval": 0.05, "after": "hold"}]))
PYEOF
echo "not a certificate" >"$T/garbage.pem"
hupconf() {
	printf '[Stream]\nURL=wss://localhost:%s/\nCAFile=%s\n[Output]\nJournal=no\nIdentifier=hup\nSyslog=tls://localhost:%s\nSyslogCAFile=%s\n' \
	    "$PORT" "$T/spki/ca.pem" "$RSYSLOG_TLS_PORT" "$1" >"$T/hup.conf"
}
hups() {
	_h=$(grep -c hup- "$T/rsyslog-tls.json" 2>/dev/null)
	echo "${_h:-0}"
}
more_hups() {
	[ "$(hups)" -ge "$1" ]
}
peer "$T/hup.json"
hupconf "$T/pki/ca.pem"
"$DCEVENTS" -c "$T/hup.conf" >"$T/hup.out" 2>"$T/hup.err" &
DC=$!
PIDS="$PIDS $DC"
check "reload: events reach the collector first" wait_until 5 more_hups 3
hupconf "$T/garbage.pem"
kill -HUP "$DC"
check "reload to a syslog output that cannot be opened: refused" \
    wait_for "$T/hup.err" "reload failed; keeping the previous configuration"
check "... saying why" contains "$T/hup.err" "cannot load the trust anchors"
check "... and the daemon still runs" kill -0 "$DC"
have=$(hups)
check "... writing events to the collector it had ($have so far)" \
    wait_until 5 more_hups $((have + 5))
stop
check "reload refused: exit 0 after SIGTERM" test "$rc" -eq 0
kill "$PEER"

# 4. The relp+tls collector killed (SIGKILL) mid-stream: a meaningful
# reason, no empty OpenSSL error.
if [ -n "$RSYSLOG_RELPTLS_PORT" ]; then
	peer "$T/burst.json"
	dc killed -o "Output.Syslog=relp+tls://localhost:$RSYSLOG_RELPTLS_PORT" \
	    -o "Output.SyslogCAFile=$T/pki/ca.pem"
	check "relp+tls killed: events arrive first" \
	    wait_until 10 grep -q burst-001000 "$T/rsyslog-relptls.json"
	rsyslog_stop KILL
	check "relp+tls killed: the output is reported down" \
	    wait_for "$T/killed.err" "output is down"
	sed 's/^/#   dcevents: /' "$T/killed.err"
	check "relp+tls killed: no empty OpenSSL error (lib(0))" \
	    lacks "$T/killed.err" "lib(0)"
	check "relp+tls killed: no bare \"connection failed\"" \
	    lacks "$T/killed.err" "connection failed"
	check "relp+tls killed: the reason says what happened" \
	    grep -qE ": (the collector closed the connection|connection closed( by the collector)?|Connection reset by peer|Broken pipe|unexpected eof)" "$T/killed.err"
	stop
	kill "$PEER"
fi

# 5. A collector that takes the connection and resets it (as a crashing
# one does) during the TLS handshake: the reason, not an empty error.
for how in reset close; do
	rm -f "$T/rst.port"
	"$PY" - "$T/rst.port" "$how" <<'PYEOF' &
import os, socket, struct, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1] + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    c, _ = s.accept()
    if sys.argv[2] == "reset":
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
    c.close()
PYEOF
	rst=$!
	PIDS="$PIDS $rst"
	wait_until 5 test -s "$T/rst.port" || fail "the $how listener did not start"
	peer "$T/script.json"
	dc "rst$how" -o "Output.Syslog=relp+tls://localhost:$(cat "$T/rst.port")" \
	    -o "Output.SyslogCAFile=$T/pki/ca.pem"
	check "handshake $how: the output is reported down" \
	    wait_for "$T/rst$how.err" "output is down"
	sed 's/^/#   dcevents: /' "$T/rst$how.err"
	check "handshake $how: no empty OpenSSL error (lib(0))" \
	    lacks "$T/rst$how.err" "lib(0)"
	check "handshake $how: the reason says what happened" \
	    grep -qE "TLS handshake: (Connection reset by peer|connection closed by the collector|unexpected eof)" "$T/rst$how.err"
	stop
	kill "$PEER" "$rst"
done
finish
