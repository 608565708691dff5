#!/bin/sh
# Proxies that refuse or fail (README "Proxies"): a wrong password (401
# from Debian's tinyproxy 1.11) and none (407): one authentication-failure
# record naming the proxy, then AuthBackoffSec, no loop; a ConnectPort
# rule that refuses the port (the status line in the record); tinyproxy
# killed mid-stream and started again (reconnected through it); proxies
# that never answer (ConnectTimeoutSec), answer garbage or a header
# without end (tests/peers/badproxy.py); an origin certificate for another
# name behind the proxy; the proxy, not the daemon, resolves the origin.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v openssl >/dev/null || skip "needs openssl for test certificates"
. "$top_srcdir/tests/lib/proxy.sh"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"

PW='pr0xy-Pa55-w0rd-x17'
printf 'not-%s\n' "$PW" >"$T/wrongpw"
origin_start wss "$ONE_EVENT" $TLS_CERT
WSS=$PORT
got() { grep -q "\"uuid\":\"$2\"" "$T/$1.out"; }

# 1. Wrong password: 401, one record naming the proxy, AuthBackoffSec.
tinyproxy_start tpauth "" "BasicAuth alice $PW"
TPA=$TP_PORT
dcp auth -o "Stream.URL=wss://localhost:$WSS/" -o "Stream.Proxy=http://alice@127.0.0.1:$TPA/" \
    -o "Stream.ProxyPasswordFile=$T/wrongpw" -o Stream.AuthBackoffSec=2s
check "wrong password: an authentication failure naming the proxy" wait_for "$T/auth.err" \
    "proxy authentication failed at http://alice@127.0.0.1:$TPA/: HTTP/1.0 401 Unauthorized; retrying in 2 s"
sleep 1.2
check "wrong password: one record, one CONNECT (no loop) in the back-off" \
    test "$(count "$T/auth.err" "proxy authentication failed")" -eq 1 -a "$(tp_connects tpauth)" -eq 1
check "wrong password: tried again after AuthBackoffSec" wait_until 3 sh -c \
    "[ \$(grep -c 'proxy authentication failed' '$T/auth.err') -eq 2 ]"
check "wrong password: two CONNECTs in about 2 s" test "$(tp_connects tpauth)" -eq 2
lacks "$T/auth.err" "authentication failed at wss://" && pass "wrong password: the stream is not blamed" ||
    fail "wrong password: the stream is not blamed"
dcp_stop
dcp noauth -o "Stream.URL=wss://localhost:$WSS/" -o "Stream.Proxy=http://127.0.0.1:$TPA/" \
    -o Stream.AuthBackoffSec=5s
check "no credentials: 407 is an authentication failure at the proxy" wait_for "$T/noauth.err" \
    "proxy authentication failed at http://127.0.0.1:$TPA/: HTTP/1.0 407"
dcp_stop

# 2. ConnectPort allows 443 only: CONNECT to the origin's port is refused.
tinyproxy_start tpport "" "ConnectPort 443"
dcp port -o "Stream.URL=wss://localhost:$WSS/" -o "Stream.Proxy=http://127.0.0.1:$TP_PORT/"
check "ConnectPort: the proxy's status line in the failure" wait_for "$T/port.err" \
    "cannot connect to wss://localhost:$WSS/: the proxy http://127.0.0.1:$TP_PORT/ refused CONNECT localhost:$WSS: HTTP/1.1 403 Access violation"
check "ConnectPort: a connection failure, retried with backoff" wait_until 3 sh -c \
    "[ \$(grep -c 'refused CONNECT' '$T/port.err') -ge 2 ]"
dcp_stop

# 3. The proxy killed mid-stream and started again: reconnected through it.
origin_start two '[{"messages": ["{\"type\":\"node\",\"uuid\":\"n1\"}"]},
  {"messages": ["{\"type\":\"node\",\"uuid\":\"n2\"}"]}]' $TLS_CERT
TWO=$PORT
tinyproxy_start tpk ""
TPK=$TP_PORT
dcp kill -o "Stream.URL=wss://localhost:$TWO/" -o "Stream.Proxy=http://127.0.0.1:$TPK/"
check "killed proxy: the first event arrives" wait_until 5 got kill n1
kill "$TP_PID"
wait "$TP_PID" 2>/dev/null
check "killed proxy: the disconnect is reported" wait_for "$T/kill.err" "disconnected from wss://localhost:$TWO/"
check "killed proxy: connecting fails meanwhile" wait_for "$T/kill.err" \
    "cannot connect to the proxy http://127.0.0.1:$TPK/: Connection refused"
tinyproxy_start tpk "$TPK"
check "killed proxy: after its restart the next event arrives" wait_until 5 got kill n2
check "killed proxy: reconnected through it" test "$(count "$T/kill.err" "via proxy http://127.0.0.1:$TPK/")" -eq 2
dcp_stop

# 4. A proxy that accepts TCP and never answers: ConnectTimeoutSec.
badproxy_start silent
start=$(now_ms)
dcp silent -o "Stream.URL=wss://localhost:$WSS/" -o "Stream.Proxy=http://127.0.0.1:$BP_PORT/" \
    -o Stream.ConnectTimeoutSec=1s
check "silent proxy: ConnectTimeoutSec ends the attempt" wait_for "$T/silent.err" \
    "no websocket within ConnectTimeoutSec (1.0 s) via the proxy http://127.0.0.1:$BP_PORT/ (waiting for the proxy's answer to CONNECT)"
took=$(( $(now_ms) - start ))
check "silent proxy: after about 1 s (${took} ms)" test "$took" -ge 900 -a "$took" -lt 3000
dcp_stop

# 5. Garbage, and a header without end: clear failures, bounded.
badproxy_start garbage
dcp garbage -o "Stream.URL=wss://localhost:$WSS/" -o "Stream.Proxy=http://127.0.0.1:$BP_PORT/"
check "garbage: not an HTTP reply" wait_for "$T/garbage.err" \
    "bad answer from the proxy http://127.0.0.1:$BP_PORT/ to CONNECT localhost:$WSS: not an HTTP reply"
dcp_stop
badproxy_start hostile
dcp hostile -o "Stream.URL=wss://localhost:$WSS/" -o "Stream.Proxy=http://127.0.0.1:$BP_PORT/"
check "hostile status line: quoted escaped, as UTF-8" wait_for "$T/hostile.err" \
    'refused CONNECT localhost:'"$WSS"': HTTP/1.1 403 Denied \x1b[31mred\xff\xfe'
dcp_stop
badproxy_start huge
dcp huge -o "Stream.URL=wss://localhost:$WSS/" -o "Stream.Proxy=http://127.0.0.1:$BP_PORT/"
check "huge header: refused at 16 KiB" wait_for "$T/huge.err" \
    "bad answer from the proxy http://127.0.0.1:$BP_PORT/ to CONNECT localhost:$WSS: reply header larger than 16 KiB"
check "huge header: retried, not stuck" wait_until 5 sh -c \
    "[ \$(grep -c 'larger than 16 KiB' '$T/huge.err') -ge 3 ]"
if [ "$WITH_SANITIZERS" != yes ]; then
	hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$DC/status")
	check "huge header: memory stays bounded (VmHWM ${hwm} kB)" test "$hwm" -lt 20000
fi
dcp_stop

# 6. Behind the proxy, an origin whose certificate is for another name.
origin_start other "$ONE_EVENT" --cert "$T/pki/other.pem" --key "$T/pki/other.key"
tinyproxy_start tp ""
TP=$TP_PORT
dcp name -o "Stream.URL=wss://localhost:$PORT/" -o "Stream.Proxy=http://127.0.0.1:$TP/"
check "wrong name behind the proxy: refused, naming the origin" wait_for "$T/name.err" \
    "TLS with localhost:$PORT through the proxy http://127.0.0.1:$TP/: certificate verification failed: hostname mismatch"
check "wrong name behind the proxy: no event" test ! -s "$T/name.out"
dcp_stop

# 7. The proxy resolves the origin's name: tinyproxy in a mount namespace
# whose /etc/hosts knows origin.test, which the daemon cannot resolve.
origin_start plain "$ONE_EVENT"
PLAIN=$PORT
printf '127.0.0.1 origin.test\n' >"$T/hosts"
if unshare --mount true 2>/dev/null; then
	RP=$(free_port)
	printf 'Port %s\nListen 127.0.0.1\nAllow 127.0.0.1\nLogLevel Info\n' "$RP" >"$T/tpns.conf"
	unshare --mount sh -c "mount --bind '$T/hosts' /etc/hosts && exec tinyproxy -d -c '$T/tpns.conf'" \
	    >"$T/tpns.log" 2>&1 &
	PIDS="$PIDS $!"
	wait_until 5 tcp_listening "$RP" || fail "tinyproxy in a namespace did not start"
	dcp ns -o "Stream.URL=ws://origin.test:$PLAIN/" -o Stream.AllowInsecure=yes \
	    -o "Stream.Proxy=http://127.0.0.1:$RP/"
	check "the proxy resolves origin.test: the event arrives" wait_until 5 got ns u1
	check "the proxy resolves origin.test: CONNECT origin.test" grep -q "CONNECT origin.test:$PLAIN" "$T/tpns.log"
	dcp_stop
	dcp nsdirect -o "Stream.URL=ws://origin.test:$PLAIN/" -o Stream.AllowInsecure=yes \
	    -o Stream.ConnectTimeoutSec=1s
	check "without the proxy the daemon cannot resolve origin.test" wait_for "$T/nsdirect.err" "cannot connect to ws://origin.test:$PLAIN/"
	dcp_stop
else
	echo "# no mount namespace here: the resolution case is not run"
fi

leaks=$(grep -lF -- "$PW" "$T"/*.out "$T"/*.err 2>/dev/null)
check "the password is in no output or log of the daemon" test -z "$leaks"
finish
