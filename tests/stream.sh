#!/bin/sh
# The stream client against a real TLS websocket server (tests/peers/wspeer.py):
# delivery, the upgrade request, reconnects, keepalive, HTTP failures,
# certificate failures, close frames, limits and protocol errors.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v openssl >/dev/null || skip "needs openssl for test certificates"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"

# peer NAME SCRIPT [wspeer options]: start a peer, set PORT and PEER.
peer() {
	pname=$1
	printf '%s\n' "$2" >"$T/$pname.json"
	shift 2
	"$PY" "$top_srcdir/tests/peers/wspeer.py" --portfile "$T/$pname.port" \
	    --log "$T/$pname.peer" --script "$T/$pname.json" \
	    --cert "$T/pki/server.pem" --key "$T/pki/server.key" "$@" \
	    2>"$T/$pname.peererr" &
	PEER=$!
	PIDS="$PIDS $PEER"
	wait_until 5 test -s "$T/$pname.port" || {
		fail "peer $pname did not start"
		cat "$T/$pname.peererr"
		return 1
	}
	PORT=$(cat "$T/$pname.port")
}

# dc NAME [options]: run dcevents against the peer; stdout and stderr kept.
dc() {
	dname=$1
	shift
	"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=no \
	    -o Output.Stdout=yes -o Stream.BackoffMinSec=50ms \
	    -o Stream.BackoffMaxSec=200ms "$@" \
	    >"$T/$dname.out" 2>"$T/$dname.err" &
	DC=$!
	PIDS="$PIDS $DC"
}

stop() {
	kill "$DC" 2>/dev/null
	wait "$DC"
	DCRC=$?
	kill "$PEER" 2>/dev/null
	wait "$PEER" 2>/dev/null
}

# pq NAME EXPR: evaluate a Python expression over the peer's log, where
# ev(kind[, n]) lists events and t(kind, n) is the time of the first one.
pq() {
	"$PY" - "$T/$1.peer" "$2" <<'PYEOF'
import json, sys
E = [json.loads(l) for l in open(sys.argv[1])]
def ev(kind, n=None):
    return [e for e in E if e["ev"] == kind and (n is None or e.get("n") == n)]
def t(kind, n):
    return ev(kind, n)[0]["t"]
print(eval(sys.argv[2]))
PYEOF
}

# same_json FILE JSONLIST: FILE's lines are exactly these JSON objects
# (compared as objects; a "namespace" member is ignored).
same_json() {
	"$PY" - "$1" "$2" <<'PYEOF'
import json, sys
got = []
for l in open(sys.argv[1]):
    o = json.loads(l)
    o.pop("namespace", None)
    got.append(o)
want = json.loads(sys.argv[2])
if got != want:
    print("# got ", got)
    print("# want", want)
    sys.exit(1)
PYEOF
}

connects() { pq "$1" 'len(ev("connect"))'; }
has_connects() { [ "$(connects "$1")" -ge "$2" ]; }
# pq_is NAME EXPR VALUE: the expression's value is VALUE.
pq_is() { [ "$(pq "$1" "$2")" = "$3" ]; }
pq_ge() { [ "$(pq "$1" "$2")" -ge "$3" ]; }

# 1. Delivery, plain and fragmented (with a ping between fragments).
peer deliver '[{"messages": [
  "{\"type\":\"container\",\"action\":\"update\",\"state\":\"Running\",\"uuid\":\"u1\"}",
  {"fragments": ["{\"type\":\"ser", "vice\",\"uuid\":", "\"u2\"}"]},
  {"fragments": ["{\"type\":\"node\",", "\"uuid\":\"u3\"}"], "ping_between": true},
  "{\"type\":\"stack\",\"uuid\":\"u4\",\"x\":\"\u00e9\u65e5\"}"]}]'
printf 'the-api-key\n' >"$T/key"
dc deliver -o Stream.User=alice -o "Stream.APIKeyFile=$T/key" \
    -o Stream.Namespace=acme -o Stream.Type=container,service \
    -o Stream.Object=/api/app/v1/acme/container/1/
check "delivery: four messages on stdout" wait_until 5 has_lines "$T/deliver.out" 4
check "delivery: each whole, fragments joined, UTF-8 intact" same_json "$T/deliver.out" \
    '[{"type":"container","action":"update","state":"Running","uuid":"u1"},
      {"type":"service","uuid":"u2"}, {"type":"node","uuid":"u3"},
      {"type":"stack","uuid":"u4","x":"\u00e9\u65e5"}]'
check "delivery: the server's ping was answered" wait_until 3 pq_ge deliver 'len(ev("pong"))' 1
check "request: path, namespace and encoded filters" test "$(pq deliver 'ev("connect")[0]["path"]')" = \
    "/api/audit/v1/acme/events/?type=container%2Cservice&object=%2Fapi%2Fapp%2Fv1%2Facme%2Fcontainer%2F1%2F"
check "request: Basic credentials from APIKeyFile" test "$(pq deliver 'ev("connect")[0]["headers"]["authorization"]')" = \
    "Basic $(printf 'alice:the-api-key' | base64)"
check "request: Host with the port" test "$(pq deliver 'ev("connect")[0]["headers"]["host"]')" = "localhost:$PORT"
check "request: User-Agent" test "$(pq deliver 'ev("connect")[0]["headers"]["user-agent"]')" = "dcevents/$("$DCEVENTS" -V | cut -d' ' -f2)"
check "request: a 16-byte Sec-WebSocket-Key" test "$(pq deliver 'len(__import__("base64").b64decode(ev("connect")[0]["headers"]["sec-websocket-key"]))')" = 16
check "connected is reported with TLS" contains "$T/deliver.err" "connected to wss://localhost:$PORT/ (TLSv1."
check "the key never reaches stderr" lacks "$T/deliver.err" "the-api-key"
start=$(now_ms)
stop
took=$(( $(now_ms) - start ))
check "SIGTERM while connected: exit 0 within 2 s (${took} ms)" test "$DCRC" -eq 0 -a "$took" -lt 2000
check "SIGTERM sends close 1001" test "$(pq deliver '[e["code"] for e in ev("close")]')" = "[1001]"

# 2. Keepalive: pings go out and pongs keep a quiet connection alive.
peer quiet '[{"after": "hold"}]'
dc quiet -o Stream.PingIntervalSec=200ms -o Stream.PongTimeoutSec=200ms
sleep 1.5
check "keepalive: pings every PingIntervalSec" test "$(pq quiet 'len(ev("ping"))')" -ge 5
check "keepalive: a quiet server that answers pings is kept" test "$(connects quiet)" -eq 1
stop

# 3. A server that stops reading (no pongs) is replaced after ping + pong.
peer deaf '[{"messages": ["{\"n\":1}"], "after": "stop_reading"}, {"after": "hold"}]'
dc deaf -o Stream.PingIntervalSec=300ms -o Stream.PongTimeoutSec=300ms
check "no pongs: a new connection" wait_until 5 has_connects deaf 2
gap=$(pq deaf 'int(1000 * (t("connect", 2) - t("open", 1)))')
check "no pongs: replaced after ping + pong (600 ms) plus backoff (${gap} ms)" test "$gap" -ge 550 -a "$gap" -le 1400
check "no pongs: the reason is logged" contains "$T/deaf.err" "(keepalive)"
stop

# 4. Abort mid-stream: reconnect within the backoff, disconnect and gap reported.
peer abort '[{"messages": ["{\"n\":1}"], "after": "abort"}, {"messages": ["{\"n\":2}"]}]'
dc abort
check "abort: reconnected" wait_until 5 has_connects abort 2
gap=$(pq abort 'int(1000 * (t("connect", 2) - t("abort", 1)))')
check "abort: within BackoffMaxSec (${gap} ms)" test "$gap" -le 700
check "abort: both messages delivered" wait_until 3 has_lines "$T/abort.out" 2
check "abort: the disconnect is reported" contains "$T/abort.err" "disconnected from wss://localhost:$PORT/"
check "abort: a gap record follows the reconnect" wait_until 3 contains "$T/abort.err" "may be missing"
stop

# 4b. The server's pings answered into a connection it has just reset:
# what it sent before is still read, nothing is lost.
"$PY" "$top_srcdir/tests/peers/stream-events.py" "$top_srcdir/demo/events.json" \
    "$T/rst.messages" "$T/rst.script"
"$PY" - "$T/rst.script" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
s[0]["after"] = "abort"
s.append({"after": "hold"})
json.dump(s, open(sys.argv[1], "w"))
PYEOF
n=$("$PY" "$top_srcdir/tests/peers/expect.py" "$T/rst.messages" stdout | wc -l)
peer rst "$(cat "$T/rst.script")"
dc rst
wait_until 10 has_lines "$T/rst.out" "$n"
check "reset after pings: all $n events delivered ($(wc -l <"$T/rst.out"))" has_lines "$T/rst.out" "$n"
check "reset after pings: the reason is the socket's" wait_until 3 grep -qE "disconnected from .*: (Connection reset by peer|Broken pipe|connection closed)" "$T/rst.err"
stop

# 5. 401, 403 and 429: one error record each, then AuthBackoffSec.
for st in 401 403; do
	peer "s$st" "[{\"status\": $st}, {\"messages\": [\"{\\\"n\\\":1}\"]}]"
	dc "s$st" -o Stream.AuthBackoffSec=1500ms
	check "$st: reported as an authentication failure" wait_until 3 contains "$T/s$st.err" "authentication failed at wss://localhost:$PORT/: HTTP $st"
	check "$st: the next attempt waits AuthBackoffSec" wait_until 5 has_connects "s$st" 2
	gap=$(pq "s$st" 'int(1000 * (t("connect", 2) - t("connect", 1)))')
	check "$st: ${gap} ms between attempts (>= 1500)" test "$gap" -ge 1450
	check "$st: one error line for one refusal" test "$(count "$T/s$st.err" "authentication failed")" -eq 1
	stop
done
peer s429 '[{"status": 429, "headers": {"Retry-After": "2"}}, {"after": "hold"}]'
dc s429 -o Stream.AuthBackoffSec=500ms
check "429: too many login attempts" wait_until 3 contains "$T/s429.err" "HTTP 429 (too many login attempts); retrying in 2 s"
wait_until 5 has_connects s429 2
gap=$(pq s429 'int(1000 * (t("connect", 2) - t("connect", 1)))')
check "429: Retry-After (2 s) beats a shorter AuthBackoffSec (${gap} ms)" test "$gap" -ge 1950
stop

# 6. Other statuses and garbage: the normal backoff.
peer s503 '[{"status": 503}, {"after": "hold"}]'
dc s503 -o Stream.AuthBackoffSec=10s
check "503: retried with the normal backoff" wait_until 3 has_connects s503 2
check "503: reported" contains "$T/s503.err" "HTTP 503 instead of an upgrade"
stop
peer junk '[{"raw_reply": "SSH-2.0-OpenSSH_9.2\r\n"}]'
dc junk
check "garbage reply: refused" wait_until 3 contains "$T/junk.err" "bad upgrade reply: not an HTTP reply"
stop

# 7. Upgrade replies that must be refused.
refused() {
	peer "$1" "[{$2, \"messages\": [\"{\\\"leak\\\":1}\"]}]"
	dc "$1"
	check "$1: refused ($3)" wait_until 3 contains "$T/$1.err" "$3"
	check "$1: nothing delivered" test ! -s "$T/$1.out"
	check "$1: never connected" lacks "$T/$1.err" "connected to"
	stop
}
refused badaccept '"bad_accept": true' "wrong Sec-WebSocket-Accept"
refused extension '"reply_headers": {"Sec-WebSocket-Extensions": "permessage-deflate"}' "extension we did not offer"
refused subproto '"reply_headers": {"Sec-WebSocket-Protocol": "chat"}' "subprotocol we did not offer"

# 8. Certificates: another host name, an untrusted chain, expired.
cert() {
	peer "$1" '[{"messages": ["{\"leak\":1}"]}]' --cert "$T/pki/$1.pem" --key "$T/pki/$1.key"
	dc "$1"
	check "$1 certificate: refused ($2)" wait_until 3 contains "$T/$1.err" "TLS certificate verification failed: $2"
	check "$1 certificate: nothing delivered" test ! -s "$T/$1.out"
	check "$1 certificate: never connected" lacks "$T/$1.err" "connected to"
	stop
}
cert other "hostname mismatch"
cert untrusted "self-signed certificate"
cert expired "certificate has expired"

# Without CAFile or CAPath: the system's anchors.  SSL_CERT_DIR stands
# for /etc/ssl/certs: looked up there by subject hash, and the bundle file
# (OpenSSL's default, 1.4 MiB in memory on Debian) is never opened.
mkdir "$T/certdir" && cp "$T/pki/ca.pem" "$T/certdir/" &&
    openssl rehash "$T/certdir" 2>/dev/null ||
    c_rehash "$T/certdir" >/dev/null
peer sysdir '[{"messages": ["{\"n\":1}"]}]'
if command -v strace >/dev/null; then
	env -u SSL_CERT_FILE SSL_CERT_DIR="$T/certdir" \
	    strace -f -qq -e trace=openat \
	    -o "$T/sysdir.trace" "$DCEVENTS" -c /dev/null \
	    -o "Stream.URL=wss://localhost:$PORT/" -o Output.Journal=no \
	    -o Output.Stdout=yes >"$T/sysdir.out" 2>"$T/sysdir.err" &
	DC=$!
	PIDS="$PIDS $DC"
	check "system store (hashed directory): verified and delivered" \
	    wait_until 5 test -s "$T/sysdir.out"
	check "system store: the anchor read by its hash" \
	    grep -q "$T/certdir/[0-9a-f]*\.0" "$T/sysdir.trace"
	check "system store: no other certificate file opened" \
	    test "$(grep -E '\.(pem|crt)"|/[0-9a-f]{8}\.[0-9]+"' "$T/sysdir.trace" |
		grep -vc "$T/certdir/")" -eq 0
	# The daemon first: strace leaves its tracee running when stopped.
	pkill -P "$DC" 2>/dev/null
	stop
else
	echo "# strace is missing (tools/deps.sh installs it): the hashed directory is not checked"
	stop
fi
# SSL_CERT_FILE names a bundle: that is read.
peer sysfile '[{"messages": ["{\"n\":2}"]}]'
SSL_CERT_FILE=$T/pki/ca.pem
export SSL_CERT_FILE
dc sysfile -o Stream.CAFile=
unset SSL_CERT_FILE
check "system store (SSL_CERT_FILE): verified and delivered" \
    wait_until 5 test -s "$T/sysfile.out"
stop

# A server without any certificate (anonymous DH): we offer no such cipher.
peer anon '[{"messages": ["{\"leak\":1}"]}]' --anon
dc anon
check "no certificate: refused during the TLS handshake" wait_until 3 contains "$T/anon.err" "TLS handshake"
check "no certificate: the server found no shared cipher" wait_until 3 grep -q NO_SHARED_CIPHER "$T/anon.peer"
check "no certificate: nothing delivered" test ! -s "$T/anon.out"
check "no certificate: never connected" lacks "$T/anon.err" "connected to"
stop

# 9. IP literals are verified against the certificate's IP addresses.
peer ipv4 '[{"messages": ["{\"n\":4}"]}]'
dc ipv4 -o "Stream.URL=wss://127.0.0.1:$PORT/"
check "wss://127.0.0.1: verified and delivered" wait_until 3 test -s "$T/ipv4.out"
stop
if "$PY" -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
	peer ipv6 '[{"messages": ["{\"n\":6}"]}]' --host ::1
	dc ipv6 -o "Stream.URL=wss://[::1]:$PORT/"
	check "wss://[::1]: verified and delivered" wait_until 3 test -s "$T/ipv6.out"
	stop
else
	echo "# no IPv6 loopback: IPv6 case skipped"
fi

# 10. ws:// only with AllowInsecure=yes.
"$DCEVENTS" -t -c /dev/null -o Stream.URL=ws://localhost:1/ >"$T/ws.out" 2>"$T/ws.err"
check "ws:// without AllowInsecure: exit 1" test $? -eq 1
check "ws:// without AllowInsecure: explained" contains "$T/ws.err" "set AllowInsecure=yes"
peer plain '[{"messages": ["{\"n\":7}"]}]' --cert "" --key ""
dc plain -o "Stream.URL=ws://localhost:$PORT/" -o Stream.AllowInsecure=yes
check "ws:// with AllowInsecure=yes: delivered" wait_until 3 test -s "$T/plain.out"
stop

# 11. A name that does not resolve.
PORT=1
dc noname -o Stream.URL=wss://dcevents-test.invalid/ -o Stream.ConnectTimeoutSec=2
check "unresolvable name: reported" wait_until 4 grep -qE "cannot resolve dcevents-test.invalid|within ConnectTimeoutSec" "$T/noname.err"
kill "$DC"; wait "$DC"

# 12. The server's close frame is answered, then a reconnect.
peer closing '[{"messages": ["{\"n\":1}"], "after": "close", "close_code": 1001, "close_reason": "bye"}, {"after": "hold"}]'
dc closing
check "server close: answered with the same code" wait_until 3 pq_is closing '[e["code"] for e in ev("close", 1)]' "[1001]"
check "server close: reported" wait_until 3 contains "$T/closing.err" "the server closed the websocket (code 1001)"
check "server close: reconnected" wait_until 3 has_connects closing 2
stop

# 13. A message over MaxMessageBytes is skipped; the connection is kept.
peer big '[{"messages": ["{\"n\":1}", {"size": 5000}, {"fragments": ["{\"n\":", "2}"]}, {"size": 1024}]}]'
dc big -o Stream.MaxMessageBytes=1K
wait_until 3 has_lines "$T/big.out" 3
check "oversize: the others delivered" test "$(wc -l <"$T/big.out")" -eq 3
check "oversize: exactly the small ones and the 1 KiB one" "$PY" -c '
import json, sys
L = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(not (L[0]["n"] == 1 and L[1]["n"] == 2 and L[2]["type"] == "pad"))' "$T/big.out"
check "oversize: one warning" test "$(count "$T/big.err" "larger than MaxMessageBytes=1024")" -eq 1
check "oversize: same connection" test "$(connects big)" -eq 1
stop

# 14. Invalid UTF-8 closes with 1007; a masked server frame with 1002.
peer utf8 '[{"messages": ["{\"n\":1}", {"raw_text": "7b226e223a22c328227d"}]}, {"after": "hold"}]'
dc utf8
check "invalid UTF-8: closed with 1007" wait_until 3 pq_is utf8 '[e["code"] for e in ev("close", 1)]' "[1007]"
check "invalid UTF-8: reported" contains "$T/utf8.err" "invalid UTF-8 from the server (closed with 1007)"
check "invalid UTF-8: reconnected" wait_until 3 has_connects utf8 2
check "invalid UTF-8: the valid message before it delivered, not the bad one" same_json "$T/utf8.out" '[{"n":1}]'
stop
peer masked '[{"messages": [{"masked_text": "{\"n\":1}"}]}, {"after": "hold"}]'
dc masked
check "masked server frame: closed with 1002" wait_until 3 pq_is masked '[e["code"] for e in ev("close", 1)]' "[1002]"
check "masked server frame: nothing delivered" test ! -s "$T/masked.out"
stop

# 15. One deadline covers TCP, TLS and the upgrade.
peer slow '[{"delay_handshake": 5}]'
dc slow -o Stream.ConnectTimeoutSec=1
check "connect timeout: reported" wait_until 3 contains "$T/slow.err" "no websocket within ConnectTimeoutSec (1.0 s)"
wait_until 3 has_connects slow 2
gap=$(pq slow 'int(1000 * (t("connect", 2) - t("connect", 1)))')
check "connect timeout: the next attempt after about 1 s (${gap} ms)" test "$gap" -ge 950 -a "$gap" -le 1600
stop

# 16. SIGHUP: unchanged stream settings keep the connection, a new URL
# closes it (1000) and connects to the new server at once; STATUS= follows.
"$PY" "$top_srcdir/tests/peers/notify_peer.py" "$T/notify.sock" "$T/notify" &
PIDS="$PIDS $!"
wait_until 5 test -s "$T/notify"
peer hup2 '[{"after": "hold"}]'
PORT2=$PORT
PEER2=$PEER
peer hup1 '[{"after": "hold"}]'
hupconf() {
	printf '[Stream]\nURL=wss://localhost:%s/\nCAFile=%s\n[Output]\nJournal=no\nStdout=yes\nIdentifier=%s\n' \
	    "$1" "$T/pki/ca.pem" "$2" >"$T/hup.conf"
}
hupconf "$PORT" one
NOTIFY_SOCKET=$T/notify.sock "$DCEVENTS" -c "$T/hup.conf" >"$T/hup.out" 2>"$T/hup.err" &
DC=$!
PIDS="$PIDS $DC"
ncheck() {
	if [ "${WITH_SYSTEMD:-yes}" = yes ]; then check "$@"; else echo "# skipped without libsystemd: $1"; fi
}
ncheck "STATUS= says connected" wait_until 5 contains "$T/notify" "STATUS=Connected to wss://localhost:$PORT/"
wait_until 5 contains "$T/hup.err" "connected to"
hupconf "$PORT" two
kill -HUP "$DC"
wait_until 3 contains "$T/hup.err" "configuration reloaded"
sleep 0.5
check "SIGHUP, same stream: the connection is kept" test "$(connects hup1)" -eq 1 -a "$(connects hup2)" -eq 0
hupconf "$PORT2" two
start=$(now_ms)
kill -HUP "$DC"
check "SIGHUP, new URL: the old connection closed with 1000" wait_until 3 pq_is hup1 '[e["code"] for e in ev("close", 1)]' "[1000]"
check "SIGHUP, new URL: connected to the new server" wait_until 3 has_connects hup2 1
took=$(( $(now_ms) - start ))
check "SIGHUP, new URL: without backoff (${took} ms)" test "$took" -lt 1000
ncheck "STATUS= follows the new server" wait_until 3 contains "$T/notify" "STATUS=Connected to wss://localhost:$PORT2/"
kill "$PEER2"
stop

finish
