#!/bin/sh
# The stream through HTTP CONNECT proxies (README "Proxies"): Debian's
# tinyproxy on loopback, plain and behind stunnel as an https:// proxy;
# ws:// and wss:// origins (tests/peers/wspeer.py); Proxy=, the
# environment's variables in their order, Proxy=none, NoProxy forms
# (direct: the proxy saw no CONNECT), the password from a file, the
# credential and the environment (never in any output), -t, STATUS= and
# a reload that changes the proxy.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v openssl >/dev/null || skip "needs openssl for test certificates"
. "$top_srcdir/tests/lib/proxy.sh"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"

PW='pr0xy-Pa55-w0rd-x17'
printf '%s\n' "$PW" >"$T/pw"
tinyproxy_start tp ""
TP=$TP_PORT
tinyproxy_start tpauth "" "BasicAuth alice $PW"
TPA=$TP_PORT

# got NAME UUID: the daemon NAME wrote the event UUID on stdout.
got() { grep -q "\"uuid\":\"$2\"" "$T/$1.out"; }

# 1. wss:// and ws:// through an http:// proxy.
origin_start wss "$ONE_EVENT" $TLS_CERT
WSS=$PORT
dcp a -v -o "Stream.URL=wss://localhost:$WSS/" -o "Stream.Proxy=http://127.0.0.1:$TP"
check "wss through tinyproxy: the event arrives" wait_until 5 got a u1
check "wss through tinyproxy: the proxy was asked for localhost:$WSS" \
    grep -q "CONNECT localhost:$WSS HTTP/1.1" "$T/tp.log"
check "wss through tinyproxy: connected record says via proxy" \
    contains "$T/a.err" "connected to wss://localhost:$WSS/ (TLSv1.3, TLS_AES_256_GCM_SHA384) via proxy http://127.0.0.1:$TP/"
check "-v logs the tunnel's steps" sh -c "grep -q 'connected to the proxy http://127.0.0.1:$TP/' '$T/a.err' &&
    grep -q 'proxy http://127.0.0.1:$TP/: CONNECT localhost:$WSS' '$T/a.err' &&
    grep -q 'tunnel to localhost:$WSS open' '$T/a.err' &&
    grep -q 'TLS handshake with localhost:$WSS through the proxy' '$T/a.err'"
check "the daemon resolved only the proxy" lacks "$T/a.err" "port $WSS"
dcp_stop
check "wss through tinyproxy: SIGTERM exits 0" test "$DCRC" -eq 0

origin_start ws "$ONE_EVENT"
WS=$PORT
dcp b -o "Stream.URL=ws://localhost:$WS/" -o Stream.AllowInsecure=yes \
    -o "Stream.Proxy=http://127.0.0.1:$TP"
check "ws through tinyproxy: the event arrives" wait_until 5 got b u1
check "ws through tinyproxy: CONNECT localhost:$WS" grep -q "CONNECT localhost:$WS HTTP/1.1" "$T/tp.log"
check "ws through tinyproxy: no TLS in the record" contains "$T/b.err" "(no TLS) via proxy http://127.0.0.1:$TP/"
dcp_stop

# 2. An https:// proxy: stunnel (the test certificate) in front of tinyproxy.
stunnel_start st "$TP"
n0=$(tp_connects tp)
dcp c -o "Stream.URL=wss://localhost:$WSS/" -o "Stream.Proxy=https://localhost:$ST_PORT"
check "wss through an https:// proxy: the event arrives" wait_until 5 got c u1
check "wss through an https:// proxy: via proxy https://localhost:$ST_PORT/" \
    contains "$T/c.err" "via proxy https://localhost:$ST_PORT/"
check "wss through an https:// proxy: tinyproxy behind stunnel got the CONNECT" \
    test "$(tp_connects tp)" -gt "$n0"
dcp_stop
dcp c2 -o "Stream.URL=ws://localhost:$WS/" -o Stream.AllowInsecure=yes \
    -o "Stream.Proxy=https://localhost:$ST_PORT"
check "ws through an https:// proxy: the event arrives" wait_until 5 got c2 u1
dcp_stop
# The proxy's certificate is verified like the stream's (CAFile=).
"$DCEVENTS" -c /dev/null -o Output.Journal=no -o Output.Stdout=yes \
    -o "Stream.URL=wss://localhost:$WSS/" -o "Stream.Proxy=https://localhost:$ST_PORT" \
    -o Stream.BackoffMinSec=5s -o Stream.BackoffMaxSec=5s >"$T/c3.out" 2>"$T/c3.err" &
DC=$! dcp_name=c3
PIDS="$PIDS $DC"
check "an https:// proxy with an untrusted certificate is refused" \
    wait_for "$T/c3.err" "TLS with the proxy https://localhost:$ST_PORT/: certificate verification failed"
dcp_stop

# 3. The environment: wss_proxy, https_proxy, HTTPS_PROXY, all_proxy,
# ALL_PROXY in that order; Proxy= wins; Proxy=none goes direct.
vars="wss_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY"
i=0
for v in $vars; do
	i=$((i + 1))
	# this variable and every later one set: this one is chosen
	envs= j=0
	for w in $vars; do
		j=$((j + 1))
		[ "$j" -ge "$i" ] && envs="$envs $w=http://127.0.0.1:$((10000 + j))"
	done
	env $envs "$DCEVENTS" -c /dev/null -o Output.Stdout=yes -t >"$T/env$i.t" 2>&1
	check "environment: \$$v is chosen over the variables after it" \
	    contains "$T/env$i.t" "# proxy: http://127.0.0.1:$((10000 + i))/ from \$$v"
done
https_proxy=http://127.0.0.1:1 "$DCEVENTS" -c /dev/null -o Output.Stdout=yes \
    -o "Stream.Proxy=http://127.0.0.1:2" -t >"$T/env-over.t" 2>&1
check "environment: Proxy= wins over it" contains "$T/env-over.t" "# proxy: http://127.0.0.1:2/ from Proxy= (-o Stream.Proxy)"
n0=$(tp_connects tp)
https_proxy="http://127.0.0.1:$TP" dcp e1 -o "Stream.URL=wss://localhost:$WSS/"
check "environment: https_proxy is used" wait_until 5 got e1 u1
check "environment: through the proxy" contains "$T/e1.err" "via proxy http://127.0.0.1:$TP/"
dcp_stop
check "environment: the proxy saw the CONNECT" test "$(tp_connects tp)" -gt "$n0"
n0=$(tp_connects tp)
https_proxy="http://127.0.0.1:$TP" dcp e2 -o "Stream.URL=wss://localhost:$WSS/" -o Stream.Proxy=none
check "Proxy=none: the event arrives directly" wait_until 5 got e2 u1
dcp_stop
check "Proxy=none: the proxy saw no CONNECT" test "$(tp_connects tp)" -eq "$n0"
lacks "$T/e2.err" "via proxy" && pass "Proxy=none: no via proxy" || fail "Proxy=none: no via proxy"

# 4. NoProxy forms: listed hosts go direct (no CONNECT at the proxy), the
# others through it.  The certificate is for localhost and 127.0.0.1.
noproxy_case() { # DESCRIPTION URL-HOST NOPROXY direct|proxy [env]
	n0=$(tp_connects tp)
	name=np$((checks + 1))
	if [ "${5:-}" = env ]; then
		no_proxy="$3" dcp "$name" -o "Stream.URL=wss://$2:$WSS/" \
		    -o "Stream.Proxy=http://127.0.0.1:$TP"
	else
		dcp "$name" -o "Stream.URL=wss://$2:$WSS/" \
		    -o "Stream.Proxy=http://127.0.0.1:$TP" -o "Stream.NoProxy=$3"
	fi
	if wait_until 5 got "$name" u1; then
		dcp_stop
		n1=$(tp_connects tp)
		if [ "$4" = direct ] && [ "$n1" -eq "$n0" ] &&
		    ! grep -q "via proxy" "$T/$name.err"; then
			pass "NoProxy $1: $3 for $2: direct, the proxy saw no CONNECT"
		elif [ "$4" = proxy ] && [ "$n1" -gt "$n0" ]; then
			pass "NoProxy $1: $3 for $2: through the proxy"
		else
			fail "NoProxy $1: $3 for $2: expected $4 (CONNECTs $n0 -> $n1)"
		fi
	else
		dcp_stop
		fail "NoProxy $1: $3 for $2: no event"
		sed 's/^/#   /' "$T/$name.err"
	fi
}
noproxy_case "exact host" localhost localhost direct
noproxy_case "suffix with a leading dot" localhost .localhost direct
noproxy_case "*.suffix" localhost '*.localhost' direct
noproxy_case "in a list, with blanks" localhost 'example.com, localhost' direct
noproxy_case "IPv4 address" 127.0.0.1 127.0.0.1 direct
noproxy_case "CIDR range" 127.0.0.1 127.0.0.0/8 direct
noproxy_case "star" localhost '*' direct
noproxy_case "host:port, that port" localhost "localhost:$WSS" direct
noproxy_case "from \$no_proxy" localhost 'other.example,.localhost' direct env
noproxy_case "a suffix matches whole labels only" localhost calhost proxy
noproxy_case "host:port, another port" localhost "localhost:1" proxy
noproxy_case "another CIDR range" 127.0.0.1 10.0.0.0/8 proxy
noproxy_case "a name does not match an address" 127.0.0.1 localhost proxy

# 5. Credentials: USER@ in Proxy=, the password from ProxyPasswordFile=, the
# credential proxypassword, or the environment's URL; never shown.
dcp f1 -o "Stream.URL=wss://localhost:$WSS/" -o "Stream.Proxy=http://alice@127.0.0.1:$TPA" \
    -o "Stream.ProxyPasswordFile=$T/pw"
check "BasicAuth: the password from ProxyPasswordFile= is accepted" wait_until 5 got f1 u1
dcp_stop
mkdir "$T/creds"
printf '%s\n' "$PW" >"$T/creds/proxypassword"
CREDENTIALS_DIRECTORY="$T/creds" dcp f2 -o "Stream.URL=wss://localhost:$WSS/" \
    -o "Stream.Proxy=http://alice@127.0.0.1:$TPA"
check "BasicAuth: the password from the credential proxypassword" wait_until 5 got f2 u1
dcp_stop
https_proxy="http://alice:$PW@127.0.0.1:$TPA/" dcp f3 -o "Stream.URL=wss://localhost:$WSS/"
check "BasicAuth: user and password in \$https_proxy" wait_until 5 got f3 u1
if tr '\0' '\n' <"/proc/$DC/environ" | grep -qF -- "$PW"; then
	fail "the environment's password is wiped from /proc/PID/environ"
else
	pass "the environment's password is wiped from /proc/PID/environ"
fi
dcp_stop

# 6. -t: the proxy in use, where it came from (file:line), the password masked.
cat >"$T/px.conf" <<CONF
[Stream]
URL=wss://localhost:$WSS/
CAFile=$T/pki/ca.pem
Proxy=http://alice@127.0.0.1:$TPA/
ProxyPasswordFile=$T/pw
NoProxy=.internal.example,10.0.0.0/8
[Output]
Journal=no
Stdout=yes
CONF
"$DCEVENTS" -c "$T/px.conf" -t >"$T/t.out" 2>&1
check "-t: the proxy and where it came from" contains "$T/t.out" "# proxy: http://alice@127.0.0.1:$TPA/ from Proxy= ($T/px.conf:4)"
check "-t: the password masked, and its file" contains "$T/t.out" "# proxy password: (masked) from ProxyPasswordFile $T/pw"
check "-t: NoProxy" contains "$T/t.out" "# NoProxy: .internal.example,10.0.0.0/8 from NoProxy= ($T/px.conf:6)"
https_proxy="http://bob:$PW@127.0.0.1:$TPA/" no_proxy=.corp "$DCEVENTS" -c /dev/null -o Output.Stdout=yes -t >"$T/t2.out" 2>&1
check "-t: the environment's proxy, password masked" contains "$T/t2.out" "# proxy: http://bob@127.0.0.1:$TPA/ from \$https_proxy"
check "-t: NoProxy from \$no_proxy" contains "$T/t2.out" "# NoProxy: .corp from \$no_proxy"
"$DCEVENTS" -c /dev/null -o "Stream.Proxy=http://alice:$PW@127.0.0.1:1/" -t >"$T/t3.out" 2>&1
check "a password in Proxy= is refused (not quoted)" contains "$T/t3.out" "a password does not belong here"
"$DCEVENTS" -c /dev/null -o Stream.Proxy=socks5://127.0.0.1:1080 -t >"$T/t4.out" 2>&1
check "a socks5:// proxy is refused" contains "$T/t4.out" "only http:// and https:// proxies are supported"
all_proxy=socks5://127.0.0.1:1080 "$DCEVENTS" -c /dev/null -o Output.Stdout=yes -t >"$T/t5.out" 2>&1
check "a socks5:// \$all_proxy is refused, naming the variable" contains "$T/t5.out" "\$all_proxy: only http:// and https://"
"$DCEVENTS" -c /dev/null -o Output.Stdout=yes -o Stream.Proxy=http://alice@127.0.0.1:1/ -t >"$T/t6.out" 2>&1
check "a user without a password is refused" contains "$T/t6.out" "the proxy's user alice needs a password"

# 7. STATUS= says "via proxy"; a reload to Proxy=none reconnects directly.
# sd_check: check, where sd_notify is built in.
sd_check() {
	if [ "${WITH_SYSTEMD:-yes}" = yes ]; then check "$@"; else echo "# skipped without libsystemd: $1"; fi
}
"$PY" "$top_srcdir/tests/peers/notify_peer.py" "$T/notify.sock" "$T/notify" &
PIDS="$PIDS $!"
wait_for "$T/notify" listening >/dev/null
NOTIFY_SOCKET="$T/notify.sock" "$DCEVENTS" -c "$T/px.conf" >"$T/r.out" 2>"$T/r.err" &
DC=$! dcp_name=r
PIDS="$PIDS $DC"
check "connected through the proxy (file)" wait_for "$T/r.err" "via proxy http://alice@127.0.0.1:$TPA/"
sd_check "STATUS=: Connected ... via proxy" wait_for "$T/notify" "STATUS=Connected to wss://localhost:$WSS/ via proxy http://alice@127.0.0.1:$TPA/"
n0=$(tp_connects tpauth)
sed -i 's|^Proxy=.*|Proxy=none|' "$T/px.conf"
kill -HUP "$DC"
check "reload: a new proxy setting reconnects" wait_for "$T/r.err" "stream settings changed: reconnecting"
check "reload: connected directly" wait_until 5 sh -c "grep 'connected to wss://localhost:$WSS/' '$T/r.err' | tail -1 | grep -vq 'via proxy'"
sd_check "reload: STATUS= without the proxy" wait_for "$T/notify" "STATUS=Connected to wss://localhost:$WSS/; "
check "reload: the proxy saw no new CONNECT" test "$(tp_connects tpauth)" -eq "$n0"
dcp_stop

# 8. The password never appears in anything the daemon wrote.
leaks=$(grep -lF -- "$PW" "$T"/*.out "$T"/*.err "$T"/*.t "$T/notify" 2>/dev/null)
check "the password is in no output or log of the daemon" test -z "$leaks"
[ -z "$leaks" ] || echo "# found in: $leaks"
finish
