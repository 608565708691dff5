#!/bin/sh
# [Enrich] lookups through the stream's HTTP CONNECT proxy (README
# "Enrichment"): Debian's tinyproxy on loopback, plain and behind stunnel
# as an https:// proxy; the REST stand-in tests/peers/restpeer.py over TLS
# inside the tunnel.  Proxy= and $https_proxy, NoProxy= sending the REST
# host direct, BasicAuth with ProxyPasswordFile=, and a proxy refusing the
# credential (407): lookups fail (counted, logged once a minute), the
# events go out without names, the stream is untouched.  The stream itself
# goes direct here (NoProxy=localhost:ITS_PORT), so that each CONNECT in
# the proxy's log is a lookup's.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/enrich.sh"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the peers"
command -v openssl >/dev/null || skip "needs openssl for test certificates"
command -v curl >/dev/null || skip "needs curl for the metrics"
. "$top_srcdir/tests/lib/proxy.sh"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
C=/api/app/v1/test/container

PW='pr0xy-Pa55-w0rd-e20'
printf '%s\n' "$PW" >"$T/pw"
printf 'wrong\n' >"$T/badpw"
tinyproxy_start tp ""
TP=$TP_PORT
tinyproxy_start tpauth "" "BasicAuth alice $PW"
TPA=$TP_PORT

# run NAME N [dcevents options]: both peers (restpeer over TLS), three
# container events, dcevents with the metrics endpoint; waits for N lines
# of stdout, keeps the metrics in $T/NAME.metrics, stops everything.
# WPORT, RPORT: the peers' ports, set before the options are read, so
# that the options may name them ($1 is read after enrich_peers).
run() {
	rn=$1 want=$2
	shift 2
	"$DCEVENTS" -c /dev/null $ENRICH_OPTS -o Output.Journal=no \
	    -o Output.Stdout=yes -o "Metrics.Listen=127.0.0.1:$MPORT" "$@" \
	    >"$T/$rn.out" 2>"$T/$rn.err" &
	DC=$!
	PIDS="$PIDS $DC"
	wait_until 10 has_lines "$T/$rn.out" "$want" ||
	    echo "# $rn: only $(wc -l <"$T/$rn.out") of $want lines"
	curl -s --noproxy '*' "http://127.0.0.1:$MPORT/metrics" >"$T/$rn.metrics"
	kill "$DC" 2>/dev/null
	wait "$DC"
	check "$rn: exit 0 after SIGTERM (no sanitizer report)" test $? -eq 0
	lacks "$T/$rn.err" "runtime error" || fail "$rn: UBSan"
	kill "$WP" "$RP" 2>/dev/null
	wait "$WP" "$RP" 2>/dev/null
}

# peers NAME: start the two peers for three container events.
peers() {
	enrich_events "$1" "container:update:$C/${1}1/" \
	    "container:update:$C/${1}2/" "container:update:$C/${1}3/" >"$T/$1.ws"
	enrich_peers "$1" '{}' "$T/$1.ws" || skip "the peers did not start"
	WPORT=$(cat "$T/$1.wport") RPORT=$(cat "$T/$1.rport")
	MPORT=$(free_port)
}

# named NAME: all three events carry their names, in order.
named() {
	"$PY" -c 'import json, sys; L = [json.loads(l) for l in open(sys.argv[1])]; sys.exit(not ([o.get("object", {}).get("name") for o in L] == ["container-%s%d" % (sys.argv[2], i) for i in (1, 2, 3)]))' "$T/$1.out" "$1"
}

# connects LOG PORT: the CONNECTs tinyproxy LOG was asked for localhost:PORT.
connects() {
	grep -c "CONNECT localhost:$2 HTTP/1.1" "$T/$1.log" 2>/dev/null || true
}

# a) Proxy=: the lookups go through tinyproxy, the stream direct.
peers a
run a 3 -o "Stream.Proxy=http://127.0.0.1:$TP" -o "Stream.NoProxy=localhost:$WPORT" \
    -o Enrich.Concurrency=1
check "a: Proxy=: the names arrived" named a
check "a: the proxy saw the CONNECT to the REST host" test "$(connects tp "$RPORT")" -ge 1
check "a: one kept-alive tunnel for the three GETs" test "$(connects tp "$RPORT")" -eq 1
check "a: the REST server answered the three GETs" test "$(grep -c '"status":200' "$T/a.rest")" -eq 3
check "a: the stream went direct" test "$(connects tp "$WPORT")" -eq 0

# b) $https_proxy (and $no_proxy for the stream).
peers b
https_proxy="http://127.0.0.1:$TP" no_proxy="localhost:$WPORT" \
    run b 3
check "b: \$https_proxy: the names arrived" named b
check "b: the proxy saw the CONNECT to the REST host" test "$(connects tp "$RPORT")" -ge 1

# c) NoProxy= naming the REST host: direct, the proxy sees nothing.
peers c
run c 3 -o "Stream.Proxy=http://127.0.0.1:$TP" -o "Stream.NoProxy=localhost"
check "c: NoProxy=: the names arrived" named c
check "c: NoProxy=: the proxy saw no CONNECT to the REST host" test "$(connects tp "$RPORT")" -eq 0

# d) A proxy with BasicAuth, the password from ProxyPasswordFile=.
peers d
run d 3 -o "Stream.Proxy=http://alice@127.0.0.1:$TPA" -o "Stream.ProxyPasswordFile=$T/pw" \
    -o "Stream.NoProxy=localhost:$WPORT"
check "d: BasicAuth: the names arrived" named d
check "d: BasicAuth: the proxy saw the CONNECT" test "$(connects tpauth "$RPORT")" -ge 1

# e) An https:// proxy (stunnel in front of tinyproxy): TLS to the proxy,
# the origin's TLS inside the tunnel.
stunnel_start st "$TP"
peers e
run e 3 -o "Stream.Proxy=https://localhost:$ST_PORT" -o "Stream.NoProxy=localhost:$WPORT"
check "e: https:// proxy: the names arrived" named e
check "e: https:// proxy: tinyproxy behind stunnel saw the CONNECT" test "$(connects tp "$RPORT")" -ge 1

# f) The proxy refuses the credential (407; tinyproxy answers 401): each lookup fails, counted as
# server_error, logged once; the events go out without names; the stream
# (direct) is untouched.
peers f
run f 3 -o "Stream.Proxy=http://alice@127.0.0.1:$TPA" -o "Stream.ProxyPasswordFile=$T/badpw" \
    -o "Stream.NoProxy=localhost:$WPORT"
check "f: 407: three events out" has_lines "$T/f.out" 3
check "f: 407: without names" test "$(grep -c '"object"' "$T/f.out")" -eq 0
check "f: 407: the proxy was asked" test "$(connects tpauth "$RPORT")" -ge 3
check "f: 407: no GET reached the REST server" test "$(grep -c '"path"' "$T/f.rest")" -eq 0
check "f: 407: counted as server_error" \
    grep -q 'dcevents_enrich_lookups_total{result="server_error"} 3' "$T/f.metrics"
check "f: 407: logged once, naming the proxy" \
    test "$(grep -c "enrichment: .*the proxy http://alice@127.0.0.1:$TPA/ refused the credentials: HTTP/1.. 40[17]" "$T/f.err")" -eq 1
check "f: the stream is untouched (one connection)" \
    test "$(count "$T/f.peer" '"ev":"connect"')" -eq 1

# The password appears in nothing the daemon wrote.
leaks=$(grep -lF -- "$PW" "$T"/*.out "$T"/*.err "$T"/*.metrics 2>/dev/null)
check "the proxy password is in no output" test -z "$leaks"
finish
