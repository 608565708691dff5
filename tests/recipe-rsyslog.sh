#!/bin/sh
# The README's rsyslog recipes, as printed (conf/recipes/; README.md holds
# them verbatim, tests/recipes.sh checks that), run by the real rsyslogd:
# the collector's certificates (collector-certs.sh), RFC 5424 over TLS
# (rsyslog-tls.conf, imtcp with the ossl driver) and RELP, plain and over
# TLS (rsyslog-relp.conf, imrelp).  Each file passes rsyslogd -N1 alone
# and as /etc/rsyslog.d/ of Debian's /etc/rsyslog.conf, and runs alone:
# dcevents sends the events to it (tls://, relp://, relp+tls://, with the
# certificate verified against the recipe's CA) and each arrives in the
# recipe's file as RFC 5424 with its MSGID (the event type) and its
# structured data (the template RSYSLOG_SyslogProtocol23Format writes
# %MSGID% and %STRUCTURED-DATA%: what the ruleset has as $msgid and
# $structured-data).
# Paths and ports only are substituted (sed): /etc/rsyslog/ and /var/log/
# go to the test's directory, the ports to free ones, and logs.example
# to localhost.  rsyslogd gets a preamble of the test's own before the
# recipe (work directory and its own messages in $T, as tests/lib/rsyslog.sh
# does), so that nothing is written outside $T.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/rsyslog.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
_rsyslog_check
_rsyslog_module lmnsd_ossl ||
    skip "needs rsyslog's ossl driver (apt-get install rsyslog-openssl)"
command -v openssl >/dev/null || skip "needs openssl"
REC=$top_srcdir/conf/recipes
mkdir "$T/etc" "$T/log"

# recipe FILE: the recipe with the test's paths, ports and host name.
recipe() {
	sed -e "s|/etc/rsyslog|$T/etc/rsyslog|g" -e "s|/var/log/|$T/log/|g" \
	    -e "s|port=\"6514\"|port=\"$P1\"|" -e "s|port=\"2514\"|port=\"$P1\"|" \
	    -e "s|port=\"2515\"|port=\"$P2\"|" -e "s|logs\.example|localhost|g" \
	    "$REC/$1"
}
# shellcheck disable=SC2046
set -- $("$PY" -c 'import socket
s = [socket.socket() for i in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
P1=$1 P2=$2

recipe collector-certs.sh >"$T/certs.sh"
if sh -e "$T/certs.sh" >"$T/certs.log" 2>&1; then
	pass "collector-certs.sh makes the CA and the certificate"
else
	fail "collector-certs.sh makes the CA and the certificate"
	sed 's/^/#   /' "$T/certs.log"
fi
check "the certificate is valid for localhost under the CA" \
    openssl verify -CAfile "$T/etc/rsyslog/ca.pem" -verify_hostname localhost \
    -purpose sslserver "$T/etc/rsyslog/cert.pem"

# The collector's CA, as the README says: [Output] SyslogCAFile= (the
# stream itself is ws:// here).
CA="Output.SyslogCAFile=$T/etc/rsyslog/ca.pem"

"$PY" - >"$T/script.json" <<'PYEOF'
import json
ev = [("container", "update", "Running"), ("service", "update", "Partly running"),
      ("container", "delete", "Terminated")]
msgs = [json.dumps({"type": t, "action": a, "state": s, "uuid": "ev-%d" % i,
                    "resource_uri": "/api/app/v1/demo/%s/r%d/" % (t, i)})
        for i, (t, a, s) in enumerate(ev)]
print(json.dumps([{"messages": msgs, "after": "hold"}] * 3))
PYEOF
rm -f "$T/port"
"$PY" "$top_srcdir/tests/peers/wspeer.py" --portfile "$T/port" \
    --script "$T/script.json" 2>"$T/peer.err" &
PIDS="$PIDS $!"
wait_until 5 test -s "$T/port" || skip "the websocket peer did not start"
PORT=$(cat "$T/port")

# listening PID PORT: PID has a TCP socket (IPv4 or IPv6) listening on PORT.
listening() {
	_rsyslog_alive "$1" || return 1
	for v in tcp tcp6; do
		_rsyslog_ports "$1" "$v" 0A | grep -qx "$2" && return 0
	done
	return 1
}

# collector NAME FILE PORTS: rsyslogd -N1 on the recipe FILE alone and in
# Debian's rsyslog.conf, then rsyslogd running it (COLLECTOR, its pid).
collector() {
	mkdir -p "$T/$1.d" "$T/$1-work"
	recipe "$2" >"$T/$1.d/dockercloud.conf"
	{
		echo "global(workDirectory=\"$T/$1-work\"" \
		    "processInternalMessages=\"on\")"
		echo "action(type=\"omfile\" file=\"$T/$1-internal.log\")"
		cat "$T/$1.d/dockercloud.conf"
	} >"$T/$1.conf"
	if "$RSYSLOGD" -N1 -f "$T/$1.conf" >"$T/$1.check" 2>&1; then
		pass "$1: $2 passes rsyslogd -N1"
	else
		fail "$1: $2 passes rsyslogd -N1"
		sed 's/^/#   /' "$T/$1.check"
	fi
	if [ -f /etc/rsyslog.conf ] &&
	    grep -q '^\$IncludeConfig /etc/rsyslog.d/\*.conf' /etc/rsyslog.conf; then
		sed "s|^\$IncludeConfig /etc/rsyslog.d/|\$IncludeConfig $T/$1.d/|" \
		    /etc/rsyslog.conf >"$T/$1-debian.conf"
		check "$1: $2 in Debian's rsyslog.d passes rsyslogd -N1" \
		    "$RSYSLOGD" -N1 -f "$T/$1-debian.conf"
	else
		echo "# $1: no Debian /etc/rsyslog.conf with rsyslog.d here"
	fi
	env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID setpriv \
	    --pdeathsig KILL "$RSYSLOGD" -n -f "$T/$1.conf" -i "$T/$1.pid" \
	    </dev/null >"$T/$1.err" 2>&1 &
	COLLECTOR=$!
	PIDS="$PIDS $COLLECTOR"
	for p in $3; do
		wait_until 5 listening "$COLLECTOR" "$p" ||
		    { fail "$1: rsyslogd listens on $p"; sed 's/^/#   /' \
		    "$T/$1.err" "$T/$1-internal.log"
		    _rsyslog_kill "$COLLECTOR" KILL; return 1; }
	done
	pass "$1: rsyslogd runs it"
}

# send NAME URL: dcevents sends its connected record and the three events
# to URL; they arrive in $T/log/dockercloud.log (after the lines already
# there) as RFC 5424 with MSGID and structured data.
send() {
	skip_lines=$({ wc -l <"$T/log/dockercloud.log"; } 2>/dev/null || echo 0)
	"$DCEVENTS" -c /dev/null -o "Stream.URL=ws://127.0.0.1:$PORT/" \
	    -o Stream.AllowInsecure=yes -o Stream.Namespace=demo \
	    -o Output.Journal=no -o "Output.Syslog=$2" -o "$CA" \
	    >"$T/dc.out" 2>"$T/dc.err.$1" &
	dc=$!
	PIDS="$PIDS $dc"
	if wait_until 10 has_lines "$T/log/dockercloud.log" $((skip_lines + 4))
	then
		pass "$1: the connected record and the three events arrive"
	else
		fail "$1: the connected record and the three events arrive"
		sed 's/^/#   /' "$T/dc.err.$1"
	fi
	kill "$dc"
	wait "$dc"
	check "$1: dcevents exits 0" test $? -eq 0
	check "$1: each as RFC 5424 with MSGID and structured data" "$PY" - \
	    "$T/log/dockercloud.log" "$skip_lines" <<'PYEOF'
import re, sys
lines = open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]
rx = re.compile(r'<(\d+)>1 \S+ \S+ dcevents \S+ (\S+) '
                r'(\[dockercloud@32473 type="(\w+)" action="(\w+)" '
                r'state="([^"]+)" uuid="(ev-\d)" [^]]*\]) (.*)$')
want = [("container", "update", "Running", "ev-0"),
        ("service", "update", "Partly running", "ev-1"),
        ("container", "delete", "Terminated", "ev-2")]
got = []
for l in lines:
    m = rx.match(l)
    if m and m.group(2) == m.group(4):
        got.append(m.group(4, 5, 6, 7))
ok = got[:3] == want
if not ok:
    print("# got:", *lines, sep="\n#   ")
sys.exit(not ok)
PYEOF
}

if collector tls rsyslog-tls.conf "$P1"; then
	send tls "tls://localhost:$P1"
	_rsyslog_kill "$COLLECTOR" TERM
fi
if ! _rsyslog_module imrelp; then
	echo "# relp: skipped, rsyslog has no imrelp (apt-get install rsyslog-relp)"
elif collector relp rsyslog-relp.conf "$P1 $P2"; then
	send relp "relp://127.0.0.1:$P1"
	send relptls "relp+tls://localhost:$P2"
	_rsyslog_kill "$COLLECTOR" TERM
fi
finish
