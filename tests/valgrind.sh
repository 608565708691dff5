#!/bin/sh
# The daemon under valgrind memcheck through the integration scenarios, in
# one run: the scripted stream (every type, hostile values, fragments,
# invalid JSON, duplicates) to stdout, a private journald and syslog over
# UDP; reconnects after a server close, an abort, a reset, a 401, a
# garbage reply, a wrong accept, an oversized message, invalid UTF-8 and a
# keepalive timeout; SIGHUP to a server with an untrusted certificate (and other
# outputs), SIGHUP with a broken file, SIGHUP back; SIGTERM.  valgrind
# must report no error and no definitely, indirectly or possibly lost
# byte.  Suppressions (tests/valgrind.supp) cover libraries only.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib/journal.sh"

if [ "${WITH_SANITIZERS:-no}" = yes ]; then
	echo "SKIP: valgrind and the sanitizers do not mix"
	exit 77
fi
command -v valgrind >/dev/null || { echo "SKIP: needs valgrind"; exit 77; }
# The private journald needs root; without it the journal is left out.
JOURNAL=no
if [ "${WITH_SYSTEMD:-yes}" = yes ] && [ "$(id -u)" -eq 0 ]; then
	journal_enter "$@"
	JOURNAL=yes
fi
. "$top_srcdir/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v openssl >/dev/null || skip "needs openssl for test certificates"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
[ "$JOURNAL" = yes ] && journal_start

# The peer's script: connection N follows entry N (the last repeats).  The
# stream ends with a close handshake, not an abort: a server that drops
# TCP while the slow (valgrind) client still answers its pings gets an RST
# back, and the client may lose what it had not read yet.
"$PY" "$top_srcdir/tests/peers/stream-events.py" "$top_srcdir/demo/events.json" \
    "$T/messages.json" "$T/stream.json"
"$PY" - "$T/stream.json" "$T/script.json" <<'PYEOF'
import json, sys
stream = json.load(open(sys.argv[1]))[0]["messages"]
def ev(n):
    return json.dumps({"type": "container", "action": "update",
                       "state": "Running", "uuid": "vg-%d" % n,
                       "resource_uri": "/api/app/v1/demo/container/vg-%d/" % n,
                       "parents": ["/api/app/v1/demo/service/s/"],
                       "datetime": "2016-03-08T14:03:21Z"})
json.dump([
    {"_": "1: the stream, then a server close (answered: all delivered)",
     "messages": stream, "after": "close"},
    {"_": "2", "after": "abort"},
    {"_": "3", "after": "reset"},
    {"_": "4", "status": 401},
    {"_": "5", "raw_reply": "garbage\r\n\r\n"},
    {"_": "6", "bad_accept": True},
    {"_": "7: an oversized message skipped, then invalid UTF-8 (1007)",
     "messages": [ev(1), {"size": 3000}, ev(2), {"raw_text": "7bc3287d"}]},
    {"_": "8: no pongs (keepalive)", "messages": [ev(3)],
     "after": "stop_reading"},
    {"_": "9: idle until SIGHUP", "after": "hold"},
    {"_": "10: after SIGHUP", "messages": [ev(4), ev(5)], "after": "hold"},
], open(sys.argv[2], "w"))
PYEOF
# The events written (what the model says: duplicates once, none for
# invalid JSON), plus the five above.
nev=$("$PY" "$top_srcdir/tests/peers/expect.py" "$T/messages.json" stdout | wc -l)
want=$((nev + 5))

"$PY" "$top_srcdir/tests/peers/wspeer.py" --portfile "$T/port" --log "$T/peer" \
    --script "$T/script.json" --cert "$T/pki/server.pem" \
    --key "$T/pki/server.key" 2>"$T/peer.err" &
PIDS="$PIDS $!"
"$PY" "$top_srcdir/tests/peers/wspeer.py" --portfile "$T/badport" --log "$T/bad" \
    --cert "$T/pki/untrusted.pem" --key "$T/pki/untrusted.key" \
    2>"$T/bad.err" &
PIDS="$PIDS $!"
# Two syslog collectors over UDP: each datagram a line (repr).
"$PY" - "$T/udp" <<'PYEOF' &
import os, select, socket, sys
socks = []
for i in (1, 2):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    socks.append((s, open("%s%d" % (sys.argv[1], i), "a", buffering=1)))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(" ".join(str(s.getsockname()[1]) for s, _ in socks) + "\n")
os.replace(sys.argv[1] + ".tmp", sys.argv[1] + ".ports")
while True:
    for s in select.select([s for s, _ in socks], [], [])[0]:
        dict(socks)[s].write(repr(s.recv(65536)) + "\n")
PYEOF
PIDS="$PIDS $!"
wait_until 5 test -s "$T/port" -a -s "$T/badport" -a -s "$T/udp.ports" ||
    skip "the peers did not start"
PORT=$(cat "$T/port")
BADPORT=$(cat "$T/badport")
read -r UDP1 UDP2 <"$T/udp.ports"

# conf URL JOURNAL SYSLOGPORT: the configuration file.
conf() {
	cat >"$T/dc.conf" <<-EOF
	[Stream]
	URL=$1
	CAFile=$T/pki/ca.pem
	Namespace=demo
	BackoffMinSec=50ms
	BackoffMaxSec=200ms
	AuthBackoffSec=100ms
	PingIntervalSec=1s
	PongTimeoutSec=1s
	MaxMessageBytes=2048
	[Output]
	Journal=$2
	Syslog=udp://127.0.0.1:$3
	Stdout=yes
	EOF
}
conf "wss://localhost:$PORT/" "$JOURNAL" "$UDP1"

SUPP=
[ -f "$top_srcdir/tests/valgrind.supp" ] &&
    SUPP="--suppressions=$top_srcdir/tests/valgrind.supp"
start=$(now_ms)
# shellcheck disable=SC2086
valgrind --tool=memcheck --leak-check=full \
    --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
    --track-fds=no --num-callers=40 --log-file="$T/vg.log" $SUPP \
    "$DCEVENTS" -c "$T/dc.conf" >"$T/stdout" 2>"$T/err" &
DC=$!
PIDS="$PIDS $DC"

opened() { grep -q "\"ev\":\"open\",\"n\":$1," "$T/peer"; }
tls_fails() { [ "$(count "$T/bad" '"ev":"tls-fail"')" -ge "$1" ]; }

at_hold() { has_lines "$T/stdout" $((nev + 3)) && opened 9; }
check "the stream and the reconnects: $((nev + 3)) events, connection 9 open" \
    wait_until 60 at_hold

# SIGHUP: another URL (an untrusted certificate), no journal, another
# syslog collector.
conf "wss://localhost:$BADPORT/" no "$UDP2"
kill -HUP "$DC"
check "SIGHUP: the new URL, its certificate refused twice" wait_until 20 tls_fails 2

# SIGHUP with a broken file: reported, the running configuration kept.
printf '[Stream]\nURL=ftp://nowhere/\nNoSuchKey=1\n[Output]\nQueueMax=x\n' \
    >"$T/dc.conf"
kill -HUP "$DC"
check "SIGHUP with a broken file: kept" \
    wait_for "$T/err" "reload failed; keeping the previous configuration" 20
check "the running configuration still tries the new URL" wait_until 20 tls_fails 4

# SIGHUP back: the first URL, the journal, the first collector.
conf "wss://localhost:$PORT/" "$JOURNAL" "$UDP1"
kill -HUP "$DC"
check "SIGHUP back: $want events on stdout" \
    wait_until 30 has_lines "$T/stdout" "$want"
check "connection 10 open" opened 10

kill "$DC"
wait "$DC"
rc=$?
took=$(( $(now_ms) - start ))
echo "# under valgrind for $took ms"

check "scenario: 401" contains "$T/err" "authentication failed"
check "scenario: garbage reply" contains "$T/err" "bad upgrade reply: not an HTTP reply"
check "scenario: wrong accept" contains "$T/err" "wrong Sec-WebSocket-Accept"
check "scenario: oversized message" contains "$T/err" "larger than MaxMessageBytes"
check "scenario: server close" contains "$T/err" "the server closed the websocket (code 1000)"
check "scenario: abort, reset" test "$(count "$T/peer" '"ev":"abort"')" -eq 1 -a \
    "$(count "$T/peer" '"ev":"reset"')" -eq 1
check "scenario: invalid UTF-8" contains "$T/err" "invalid UTF-8"
check "scenario: keepalive" contains "$T/err" "(keepalive)"
check "scenario: untrusted certificate" contains "$T/err" "TLS certificate verification failed"
check "scenario: invalid JSON" contains "$T/err" "invalid JSON"
check "exactly $want lines on stdout" test "$(wc -l <"$T/stdout")" -eq "$want"
check "syslog: at least $want datagrams to the first collector" has_lines "$T/udp1" "$want"
check "syslog: the second collector got the disconnect" has_lines "$T/udp2" 1
if [ "$JOURNAL" = yes ]; then
	check "journal: at least $want event records" test \
	    "$(journal_json SYSLOG_IDENTIFIER=dcevents | grep -c '"DOCKERCLOUD_TYPE"')" -ge "$want"
else
	echo "# journal not tested (needs root and libsystemd)"
fi

check "valgrind's exit status 0 (daemon exit 0, no error) (got $rc)" test "$rc" -eq 0
check "ERROR SUMMARY: 0 errors" contains "$T/vg.log" "ERROR SUMMARY: 0 errors from 0 contexts"
# lost: valgrind's log reports no lost byte of these kinds.
lost() {
	! grep -E '(definitely|indirectly|possibly) lost: [1-9]' "$T/vg.log" |
	    sed 's/^/# /' | grep .
}
check "no definitely, indirectly or possibly lost bytes" lost
if [ "$failures" -gt 0 ]; then
	echo "# the peer's log:"
	cut -c1-200 "$T/peer" | sed 's/^/#   /' | tail -40
	echo "# valgrind's log:"
	sed 's/^/#   /' "$T/vg.log" | tail -200
	echo "# stderr:"
	sed 's/^/#   /' "$T/err" | tail -40
fi
finish
