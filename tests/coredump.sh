#!/bin/sh
# The credential stays out of core dumps.  A connected daemon, after the
# upgrade and a delivered event, is dumped with gdb's gcore (a real core,
# as root takes it, whatever the process's dumpable flag says), and the
# core must hold neither the key nor base64(user:key) nor the verbatim
# $DOCKERCLOUD_AUTH: over ws:// and wss://, with the key from APIKeyFile=,
# the systemd credential, APIKey= in the file, $DOCKERCLOUD_APIKEY and
# $DOCKERCLOUD_AUTH; nor the proxy's password, through tinyproxy.  The daemon's own environment (/proc/PID/environ, the
# initial stack) must no longer hold what it took from it.  The key is
# random per run and only ever searched for (grep -q), never printed.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

# ASan reserves terabytes of shadow memory that gcore would write out.
[ "${WITH_SANITIZERS:-no}" = yes ] &&
    skip "under the sanitizers a core is tens of GB (ASan's shadow memory)"
ldd "$DCEVENTS" 2>/dev/null | grep -q 'lib[at]san' &&
    skip "$DCEVENTS is built with a sanitizer: a core would be tens of GB"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v gcore >/dev/null || skip "needs gcore (package gdb)"
command -v openssl >/dev/null || skip "needs openssl for test certificates"
command -v base64 >/dev/null || skip "needs base64 (coreutils)"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
export DEBUGINFOD_URLS= # gdb must not go looking for debug symbols

# core FILE PID: a core of PID in FILE (a few MB, about a second); never
# of a process larger than 1 GiB, so that the disk cannot fill.
core() {
	vm=$(awk '/^VmSize:/ { print $2 }' "/proc/$2/status")
	if [ "${vm:-0}" -gt 1048576 ]; then
		echo "refusing to dump $2: VmSize $vm kB" >"$T/gcore.log"
		return 1
	fi
	timeout 60 gcore -o "$T/gcore" "$2" >"$T/gcore.log" 2>&1 &&
	    mv "$T/gcore.$2" "$1"
}

# Can we take a core at all (ptrace may be forbidden here)?
sleep 30 &
probe=$!
PIDS="$PIDS $probe"
core "$T/probe.core" "$probe" ||
    skip "gcore cannot dump a process here (ptrace not permitted?): $(tail -1 "$T/gcore.log")"
kill "$probe"
rm -f "$T/probe.core"

rand() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
key=$(rand 24)
user=u$(rand 4)
basic=$(printf '%s:%s' "$user" "$key" | base64 -w0)
auth="TutumAccessKey $key"
printf '%s\n' "$key" >"$T/key"
mkdir "$T/creds"
printf '%s\n' "$key" >"$T/creds/apikey"
printf '[Stream]\nUser=%s\nAPIKey=%s\n' "$user" "$key" >"$T/inline.conf"

printf '%s\n' '[{"messages": ["{\"type\":\"container\",\"uuid\":\"u1\"}"], "after": "hold"}]' >"$T/script.json"
peer() {
	pname=$1
	shift
	"$PY" "$top_srcdir/tests/peers/wspeer.py" --portfile "$T/$pname.port" \
	    --log "$T/$pname.peer" --script "$T/script.json" "$@" \
	    2>"$T/$pname.peererr" &
	PIDS="$PIDS $!"
	wait_until 5 test -s "$T/$pname.port" ||
	    skip "the websocket peer did not start"
}
peer ws
peer wss --cert "$T/pki/server.pem" --key "$T/pki/server.key"
WS=ws://127.0.0.1:$(cat "$T/ws.port")/
WSS=wss://localhost:$(cat "$T/wss.port")/

# sent NAME HEADER: the peer's last upgrade request carried this
# Authorization (compared in Python, printed nowhere).
sent() {
	"$PY" - "$T/$1.peer" "$2" <<'PYEOF'
import json, sys
h = [json.loads(l) for l in open(sys.argv[1])]
h = [e for e in h if e["ev"] == "connect"]
sys.exit(0 if h and h[-1]["headers"].get("authorization") == sys.argv[2] else 1)
PYEOF
}

# run_dc WHAT URL CONFIG [env VAR=VALUE...]: start dcevents (its pid in
# dc, its output in $T/$n.out and .err) and wait for the first event;
# 1, with WHAT reported failed, if none came.
n=0
run_dc() {
	_what=$1 _url=$2 _conf=$3
	shift 3
	n=$((n + 1))
	"$@" "$DCEVENTS" -c "$_conf" -o "Stream.URL=$_url" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o Stream.AllowInsecure=yes \
	    -o Output.Journal=no -o Output.Stdout=yes \
	    -o Stream.PingIntervalSec=60min >"$T/$n.out" 2>"$T/$n.err" &
	dc=$!
	PIDS="$PIDS $dc"
	wait_until 5 test -s "$T/$n.out" && return 0
	fail "$_what"
	sed 's/^/#   /' "$T/$n.err"
	kill "$dc" 2>/dev/null; wait "$dc"
	return 1
}

# case NAME URL HEADER CONFIG [env VAR=VALUE...]: run dcevents with this
# credential, wait for the event, take a core and search it.
case_() {
	name=$1 url=$2 header=$3 conf=$4
	shift 4
	peername=ws
	case $url in wss:*) peername=wss ;; esac
	run_dc "$name: an event arrives" "$url" "$conf" "$@" || return
	check "$name: the Authorization header was sent" sent "$peername" "$header"
	if core "$T/$n.core" "$dc"; then
		pass "$name: gcore took a core"
	else
		fail "$name: gcore took a core"
		sed 's/^/#   /' "$T/gcore.log"
	fi
	check "$name: the core is searchable (it holds the URL)" \
	    grep -qaF -- "$url" "$T/$n.core"
	check "$name: the key is not in the core" \
	    test "$(grep -caF -- "$key" "$T/$n.core")" = 0
	check "$name: base64(user:key) is not in the core" \
	    test "$(grep -caF -- "$basic" "$T/$n.core")" = 0
	check "$name: the key is not in /proc/PID/environ" \
	    test "$(tr '\0' '\n' <"/proc/$dc/environ" | grep -cF -- "$key")" = 0
	check "$name: the key is not on stderr" lacks "$T/$n.err" "$key"
	[ -n "${after:-}" ] && $after
	kill "$dc"
	wait "$dc"
	check "$name: exits 0 after SIGTERM" test $? -eq 0
	rm -f "$T/$n.core"
}

printf '[Stream]\nUser=%s\nAPIKeyFile=%s\n' "$user" "$T/key" >"$T/file.conf"
case_ "ws://, APIKeyFile=" "$WS" "Basic $basic" "$T/file.conf"
case_ "wss://, APIKeyFile=" "$WSS" "Basic $basic" "$T/file.conf"
case_ "wss://, systemd credential" "$WSS" "Basic $basic" /dev/null \
    env "CREDENTIALS_DIRECTORY=$T/creds" "DOCKERCLOUD_USER=$user"
case_ "ws://, APIKey= in the file" "$WS" "Basic $basic" "$T/inline.conf"
# The environment is wiped, yet a reload still has the credential: a
# changed Namespace= reconnects with the same Authorization.
connects() {
	[ "$(grep -c '"ev":"connect"' "$T/ws.peer")" -ge "$1" ]
}
reload() {
	c0=$(grep -c '"ev":"connect"' "$T/ws.peer")
	printf '[Stream]\nNamespace=other\n' >"$T/ns.conf"
	kill -HUP "$dc"
	check "$name: reloaded, reconnects" wait_until 5 connects $((c0 + 1))
	check "$name: the reload kept the credential" sent ws "$auth"
}
printf '[Stream]\nNamespace=first\n' >"$T/ns.conf"
after=reload
case_ "ws://, \$DOCKERCLOUD_AUTH" "$WS" "$auth" "$T/ns.conf" \
    env "DOCKERCLOUD_AUTH=$auth"
after=
case_ "wss://, \$DOCKERCLOUD_AUTH" "$WSS" "$auth" /dev/null \
    env "DOCKERCLOUD_AUTH=$auth"
case_ "wss://, \$DOCKERCLOUD_APIKEY" "$WSS" "Basic $basic" /dev/null \
    env "DOCKERCLOUD_APIKEY=$key" "DOCKERCLOUD_USER=$user"

# The proxy's password (issue 17): through tinyproxy with BasicAuth, from
# ProxyPasswordFile=, the credential proxypassword and $https_proxy, over
# ws:// and wss://; neither it nor base64(user:password) is in the core.
if command -v tinyproxy >/dev/null; then
	. "$top_srcdir/tests/lib/proxy.sh"
	ppw=$(rand 24)
	puser=p$(rand 4)
	pbasic=$(printf '%s:%s' "$puser" "$ppw" | base64 -w0)
	printf '%s\n' "$ppw" >"$T/ppw"
	mkdir "$T/pcreds"
	printf '%s\n' "$ppw" >"$T/pcreds/proxypassword"
	printf '[Stream]\nProxyPasswordFile=%s\n' "$T/ppw" >"$T/ppw.conf"
	tinyproxy_start tp "" "BasicAuth $puser $ppw"
	pcase() { # NAME URL CONF [env VAR=VALUE...]
		pname=$1
		shift
		run_dc "$pname: an event arrives through the proxy" "$@" ||
		    return
		check "$pname: through the proxy" grep -q "via proxy" "$T/$n.err"
		if core "$T/$n.core" "$dc"; then
			check "$pname: the proxy password is not in the core" \
			    test "$(grep -caF -- "$ppw" "$T/$n.core")" = 0
			check "$pname: base64(user:password) is not in the core" \
			    test "$(grep -caF -- "$pbasic" "$T/$n.core")" = 0
		else
			fail "$pname: gcore took a core"
		fi
		check "$pname: the password is not in /proc/PID/environ" \
		    test "$(tr '\0' '\n' <"/proc/$dc/environ" | grep -cF -- "$ppw")" = 0
		check "$pname: the password is not on stderr" lacks "$T/$n.err" "$ppw"
		kill "$dc"
		wait "$dc"
		rm -f "$T/$n.core"
	}
	pcase "ws:// via proxy, ProxyPasswordFile=" "$WS" "$T/ppw.conf" env \
	    "https_proxy=http://$puser@127.0.0.1:$TP_PORT/"
	pcase "wss:// via proxy, credential proxypassword" "$WSS" /dev/null env \
	    "https_proxy=http://$puser@127.0.0.1:$TP_PORT/" "CREDENTIALS_DIRECTORY=$T/pcreds"
	pcase "wss:// via proxy, password in \$https_proxy" "$WSS" /dev/null env \
	    "https_proxy=http://$puser:$ppw@127.0.0.1:$TP_PORT/"
else
	echo "# no tinyproxy: the proxy password cases are not run"
fi
finish
