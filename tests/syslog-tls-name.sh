#!/bin/sh
# The syslog output checks the collector's name as the stream does (both
# set up by daemon/tls.c), against a TLS collector on Python's ssl that
# logs each handshake (with the SNI it got) and what it received:
# - a certificate for another name: refused (hostname mismatch);
# - an IP address: no SNI sent, checked against the certificate's IP
#   addresses (127.0.0.1 is in it, 127.0.0.2 is not: refused);
# - a name too long for SNI (over 255 bytes, resolved through a private
#   /etc/hosts, the certificate made for it): the connection is not made
#   ("cannot set up TLS"), as for the stream; the syslog output used to go
#   on without SNI.  This part needs root and unshare --mount (a private
#   mount namespace for /etc/hosts); elsewhere it is skipped.
if [ -z "${DCEVENTS_HOSTS_NS:-}" ] && [ "$(id -u)" -eq 0 ] &&
    command -v unshare >/dev/null &&
    unshare --mount --propagation private true 2>/dev/null; then
	DCEVENTS_HOSTS_NS=1
	export DCEVENTS_HOSTS_NS
	exec unshare --mount --propagation private -- \
	    "$(readlink /proc/$$/exe 2>/dev/null || echo /bin/sh)" "$0" "$@"
fi
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the peers"
command -v openssl >/dev/null || skip "needs openssl"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"

cat >"$T/collector.py" <<'PYEOF'
# collector.py PORTFILE CERT KEY HOST LOG: a TLS syslog collector; one
# line per handshake ("handshake sni=NAME") and per read ("data N").
import os, socket, ssl, sys
portfile, cert, key, host, log = sys.argv[1:]
out = open(log, "a", buffering=1)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
sni = []
ctx.sni_callback = lambda s, name, c: sni.append(name)
s = socket.socket()
s.bind((host, 0))
s.listen(8)
open(portfile + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename(portfile + ".tmp", portfile)
while True:
    c, _ = s.accept()
    sni.clear()
    try:
        t = ctx.wrap_socket(c, server_side=True)
    except (ssl.SSLError, OSError) as e:
        out.write("refused %s\n" % e)
        c.close()
        continue
    out.write("handshake sni=%s\n" % (sni[0] if sni else None))
    try:
        while (d := t.recv(65536)):
            out.write("data %d\n" % len(d))
    except (ssl.SSLError, OSError):
        pass
    t.close()
PYEOF

"$PY" - >"$T/script.json" <<'PYEOF'
import json
msgs = [json.dumps({"type": "container", "action": "update",
                    "uuid": "ev-%03d" % i}) for i in range(3)]
print(json.dumps([{"messages": msgs, "after": "hold"}]))
PYEOF
wspeer_start "$T/script.json"

# collector NAME CERT HOST: start one; sets CPORT.
collector() {
	rm -f "$T/$1.port"
	"$PY" "$T/collector.py" "$T/$1.port" "$2.pem" "$2.key" "$3" \
	    "$T/$1.log" 2>"$T/$1.pyerr" &
	PIDS="$PIDS $!"
	wait_until 5 test -s "$T/$1.port" || fail "$1: the collector did not start"
	CPORT=$(cat "$T/$1.port")
	: >>"$T/$1.log"
}

# dc NAME TARGET: the daemon writing to the syslog TARGET; until SIGTERM.
dc() {
	"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=no \
	    -o "Output.Syslog=$2" -o "Output.SyslogCAFile=$T/pki/ca.pem" \
	    >"$T/$1.out" 2>"$T/$1.err" &
	DC=$!
	PIDS="$PIDS $DC"
}

# stop [SIGNAL]: end the daemon (KILL where its records cannot go out
# anyway: SIGTERM would spend its 2 s trying).
stop() {
	kill -"${1:-TERM}" "$DC"
	wait "$DC" 2>/dev/null
}

# 1. A certificate for another name.
collector wrongname "$T/pki/other" 127.0.0.1
dc wrongname "tls://localhost:$CPORT"
check "a collector with another name's certificate is refused" \
    wait_for "$T/wrongname.err" "syslog output is down: localhost port $CPORT: TLS certificate verification failed: hostname mismatch"
check "wrong name: nothing reaches it" lacks "$T/wrongname.log" "data"
stop KILL

# 2. Its address, which the certificate has: no SNI, records arrive.
collector addr "$T/pki/server" 127.0.0.1
dc addr "tls://127.0.0.1:$CPORT"
check "by address: the records arrive" wait_for "$T/addr.log" "data"
check "by address: no SNI" contains "$T/addr.log" "handshake sni=None"
stop

# 3. An address the certificate does not have.
collector wrongaddr "$T/pki/server" 127.0.0.2
dc wrongaddr "tls://127.0.0.2:$CPORT"
check "an address the certificate lacks is refused" \
    wait_for "$T/wrongaddr.err" "syslog output is down: 127.0.0.2 port $CPORT: TLS certificate verification failed: IP address mismatch"
check "wrong address: nothing reaches it" lacks "$T/wrongaddr.log" "data"
stop KILL

# 4. A name longer than SNI allows, with a certificate for it.
if [ -n "${DCEVENTS_HOSTS_NS:-}" ]; then
	long=$("$PY" -c "print('.'.join(['a' * 60] * 5) + '.example')")
	cp /etc/hosts "$T/hosts"
	echo "127.0.0.1 $long" >>"$T/hosts"
	mount --bind "$T/hosts" /etc/hosts || fail "cannot bind $T/hosts"
	printf 'subjectAltName = DNS:%s\n' "$long" >"$T/long.ext"
	if openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
	    -nodes -keyout "$T/long.key" -subj /CN=long -out "$T/long.csr" \
	    >"$T/openssl.log" 2>&1 &&
	    openssl x509 -req -in "$T/long.csr" -CA "$T/pki/ca.pem" \
	    -CAkey "$T/pki/ca.key" -set_serial 77 -days 1 \
	    -extfile "$T/long.ext" -out "$T/long.pem" >>"$T/openssl.log" 2>&1
	then
		collector long "$T/long" 127.0.0.1
		dc long "tls://$long:$CPORT"
		check "a name too long for SNI: not connected without it" \
		    wait_for "$T/long.err" ": cannot set up TLS: "
		check "too long a name: said as the syslog output's" \
		    contains "$T/long.err" "syslog output is down: aaaa"
		sleep 0.3
		check "too long a name: no handshake" lacks "$T/long.log" "handshake"
		check "too long a name: nothing reaches it" lacks "$T/long.log" "data"
		stop KILL
	else
		sed 's/^/#   /' "$T/openssl.log"
		fail "cannot make the certificate for the long name"
	fi
else
	echo "# a name too long for SNI: skipped (needs root and unshare --mount)"
fi
finish
