# Proxies for the proxy drivers (sourced after lib.sh): Debian's tinyproxy
# run in the foreground with a generated configuration, stunnel in front
# of it for an https:// proxy, and tests/peers/badproxy.py for proxies
# that misbehave.  Everything listens on 127.0.0.1, under $T.

command -v tinyproxy >/dev/null || skip "needs tinyproxy (Debian's tinyproxy)"

# free_port: a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# tinyproxy_start NAME PORT [configuration lines...]: tinyproxy on PORT
# ("": a free one) with Allow 127.0.0.1 (and, without ConnectPort lines,
# CONNECT to any port) and the lines given (BasicAuth ...);
# its log in $T/NAME.log.  Sets TP_PORT and TP_PID.
tinyproxy_start() {
	tp_name=$1
	TP_PORT=${2:-}
	[ -n "$TP_PORT" ] || TP_PORT=$(free_port)
	shift 2
	{
		echo "Port $TP_PORT"
		echo "Listen 127.0.0.1"
		echo "Timeout 60"
		echo "MaxClients 20"
		echo "LogLevel Info"
		echo "Allow 127.0.0.1"
		for l in "$@"; do echo "$l"; done
	} >"$T/$tp_name.conf"
	tinyproxy -d -c "$T/$tp_name.conf" >>"$T/$tp_name.log" 2>&1 &
	TP_PID=$!
	PIDS="$PIDS $TP_PID"
	wait_until 5 tcp_listening "$TP_PORT" ||
	    skip "tinyproxy did not start: $(tail -3 "$T/$tp_name.log")"
}

# tcp_listening PORT: something listens on 127.0.0.1:PORT.
tcp_listening() {
	"$PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1"
}

# tp_connects NAME: the CONNECT requests tinyproxy NAME has read.
tp_connects() {
	grep -c 'Request (file descriptor [0-9]*): CONNECT ' "$T/$1.log" 2>/dev/null || true
}

# stunnel_start NAME TO_PORT: TLS (the test certificate for localhost) on
# a free port in front of 127.0.0.1:TO_PORT; sets ST_PORT.
stunnel_start() {
	command -v stunnel >/dev/null || skip "needs stunnel (Debian's stunnel4)"
	ST_PORT=$(free_port)
	cat >"$T/$1.conf" <<STEOF
foreground = yes
pid =
[proxy]
accept = 127.0.0.1:$ST_PORT
connect = 127.0.0.1:$2
cert = $T/pki/server.pem
key = $T/pki/server.key
STEOF
	stunnel "$T/$1.conf" >"$T/$1.log" 2>&1 &
	PIDS="$PIDS $!"
	wait_until 5 tcp_listening "$ST_PORT" ||
	    skip "stunnel did not start: $(tail -3 "$T/$1.log")"
}

# badproxy_start MODE: tests/peers/badproxy.py (silent, garbage, huge) on
# a free port; sets BP_PORT.
badproxy_start() {
	rm -f "$T/bp.port"
	"$PY" "$top_srcdir/tests/peers/badproxy.py" "$1" "$T/bp.port" \
	    2>"$T/bp-$1.err" &
	PIDS="$PIDS $!"
	wait_until 5 test -s "$T/bp.port" || skip "badproxy.py did not start"
	BP_PORT=$(cat "$T/bp.port")
}

# dcp NAME [options]: dcevents with stdout output, short back-off, the
# test CA; stdout and stderr in $T/NAME.out and .err; sets DC.
dcp() {
	dcp_name=$1
	shift
	"$DCEVENTS" -c /dev/null -o "Stream.CAFile=$T/pki/ca.pem" \
	    -o Output.Journal=no -o Output.Stdout=yes \
	    -o Stream.BackoffMinSec=100ms -o Stream.BackoffMaxSec=300ms "$@" \
	    >"$T/$dcp_name.out" 2>"$T/$dcp_name.err" &
	DC=$!
	PIDS="$PIDS $DC"
}

# dcp_stop: SIGTERM the daemon; its exit status in DCRC, which must be 0
# (under the sanitizers: no leak, no error on any path it took).
dcp_stop() {
	kill "$DC" 2>/dev/null
	wait "$DC"
	DCRC=$?
	[ "$DCRC" -eq 0 ] && return 0
	fail "dcevents ($dcp_name) exited $DCRC after SIGTERM"
	sed 's/^/#   /' "$T/$dcp_name.err" | tail -30
}

# origin_start NAME SCRIPT [wspeer options]: tests/peers/wspeer.py with the
# JSON script SCRIPT (text), plain ws:// unless --cert/--key are given;
# its log in $T/NAME.peer; sets PORT.
origin_start() {
	printf '%s\n' "$2" >"$T/$1.json"
	o_name=$1
	shift 2
	rm -f "$T/$o_name.port"
	"$PY" "$top_srcdir/tests/peers/wspeer.py" --portfile "$T/$o_name.port" \
	    --log "$T/$o_name.peer" --script "$T/$o_name.json" "$@" \
	    2>"$T/$o_name.peererr" &
	PIDS="$PIDS $!"
	wait_until 5 test -s "$T/$o_name.port" || skip "wspeer.py did not start"
	PORT=$(cat "$T/$o_name.port")
}

# TLS options for origin_start: the test certificate for localhost.
TLS_CERT="--cert $T/pki/server.pem --key $T/pki/server.key"

# A script that sends one event (uuid u1) on every connection.
ONE_EVENT='[{"messages": ["{\"type\":\"container\",\"uuid\":\"u1\"}"]}]'
