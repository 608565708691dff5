#!/bin/sh
# The daemon under the seccomp filters of its systemd unit
# (tests/peers/sandbox.py builds them as systemd 252 does:
# SystemCallFilter=@system-service ~@privileged @resources with EPERM,
# RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6, MemoryDenyWriteExecute,
# RestrictNamespaces, SystemCallArchitectures=native, NoNewPrivileges).
# First controls that the filters are real; then the daemon on a TLS
# websocket, by name, into a private journald, stdout and UDP syslog, with
# sd_notify, SIGHUP and SIGTERM; then, outside the filters, strace: every
# system call the daemon makes must be on the allow list, with allowed
# arguments.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/journal.sh"
[ "$(id -u)" -eq 0 ] || journal_skip "needs root (the private journald)"
journal_enter "$@"
. "$top_srcdir/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/mid.sh"

[ "${WITH_SYSTEMD:-yes}" = yes ] || skip "built without libsystemd"
[ -x "$PY" ] || skip "needs $PY (Debian's python3)"
"$PY" -c 'import seccomp' 2>/dev/null ||
    skip "needs python3-seccomp (Debian's libseccomp binding) for $PY"
command -v systemd-analyze >/dev/null || skip "needs systemd-analyze"
"$DCEVENTS" -V | grep -q . || skip "no daemon binary"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
journal_start
# In a sanitizer build: LeakSanitizer stops the world with ptrace(), which
# the filter (@debug is not allowed) and strace both rule out; the other
# drivers check for leaks.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS

# none FILE ERE: no line of FILE matches ERE; shows those that do.
none() {
	grep -E -- "$2" "$1" | cut -c1-160 | sed 's/^/# unexpected: /' |
	    grep . && return 1
	return 0
}

# The unit still says what sandbox.py builds (else update sandbox.py).
FAMILIES="AF_UNIX AF_INET AF_INET6"
cat "$top_srcdir/systemd/hardening.conf" \
    "$top_srcdir/systemd/dcevents.service.in" >"$T/unit" 2>/dev/null
unit_says() {
	for l in SystemCallArchitectures=native SystemCallFilter=@system-service \
	    "SystemCallFilter=~@privileged @resources" SystemCallErrorNumber=EPERM \
	    "RestrictAddressFamilies=$FAMILIES" \
	    NoNewPrivileges=yes MemoryDenyWriteExecute=yes RestrictNamespaces=yes; do
		grep -qxF -- "$l" "$T/unit" || { echo "# not in the unit: $l"; return 1; }
	done
}
check "the unit's seccomp settings are the ones sandbox.py builds" unit_says

# sandboxed COMMAND...: COMMAND under the unit's filters.
sandboxed() {
	"$PY" "$top_srcdir/tests/peers/sandbox.py" -- "$@"
}

"$PY" "$top_srcdir/tests/peers/sandbox.py" --filter-dump "$T/allowed" -- true
rc=$?
check "the filters load ($(wc -l <"$T/allowed") system calls allowed)" \
    test "$rc" -eq 0 -a -s "$T/allowed"
check "setuid, chown, setpriority are not allowed (@privileged, @resources)" \
    test -z "$(grep -x -e setuid -e chown -e setpriority "$T/allowed")"

# The controls: each probe prints its name and the errno it got (0: none),
# outside the filters (where all succeed as root) and under them.
cat >"$T/probe.py" <<'PYEOF'
import ctypes, mmap, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def probe(name, f):
    try:
        f()
        r = 0
    except OSError as e:
        r = e.errno
    print(name, r)
def sock(af, t=socket.SOCK_DGRAM):
    return lambda: socket.socket(af, t).close()
def unshare():
    if libc.unshare(0x00020000) != 0:            # CLONE_NEWNS
        raise OSError(ctypes.get_errno(), "unshare")
def status():
    st = dict(l.split(":\t", 1) for l in open("/proc/self/status"))
    print("status", st["NoNewPrivs"].strip(), st["Seccomp_filters"].strip())
probe("netlink", sock(socket.AF_NETLINK, socket.SOCK_RAW))
probe("packet", sock(socket.AF_PACKET, socket.SOCK_RAW))
probe("gap", sock(3))
probe("inet", sock(socket.AF_INET, socket.SOCK_STREAM))
probe("inet6", sock(socket.AF_INET6))
probe("unix", sock(socket.AF_UNIX))
probe("setuid", lambda: os.setuid(0))
probe("setpriority", lambda: os.setpriority(os.PRIO_PROCESS, 0, 0))
probe("wx", lambda: mmap.mmap(-1, 4096, prot=7).close())
probe("rx", lambda: mmap.mmap(-1, 4096, prot=5).close())
probe("unshare", unshare)
status()
PYEOF
"$PY" "$T/probe.py" >"$T/probe.host" 2>&1
sandboxed "$PY" "$T/probe.py" >"$T/probe.sandbox" 2>&1
# probe NAME HOST SANDBOX...: the errno NAME got outside and under the
# filters (HOST "-": any); more triples may follow.
probe() {
	while [ $# -ge 3 ]; do
		{ [ "$2" = - ] || contains "$T/probe.host" "$1 $2"; } &&
		    contains "$T/probe.sandbox" "$1 $3" || return 1
		shift 3
	done
}
check "AF_NETLINK: EAFNOSUPPORT (97) under the filters, allowed outside" probe netlink 0 97
check "AF_PACKET: EAFNOSUPPORT (97) under the filters, allowed outside" probe packet 0 97
check "family 3, between AF_INET and AF_INET6: EAFNOSUPPORT (97)" probe gap - 97
check "AF_INET, AF_INET6, AF_UNIX sockets still work" \
    probe inet 0 0 inet6 0 0 unix 0 0
check "setuid (@privileged): EPERM (1) under the filters" probe setuid 0 1
check "setpriority (@resources): EPERM (1) under the filters" probe setpriority 0 1
check "mmap PROT_WRITE|PROT_EXEC: EPERM (1) under the filters" probe wx 0 1
check "mmap PROT_EXEC without PROT_WRITE still works" probe rx 0 0
check "unshare(CLONE_NEWNS): EPERM (1) under the filters" probe unshare 0 1
check "no_new_privs set and 4 seccomp filters stacked" contains "$T/probe.sandbox" "status 1 4"

# The real thing: 20 demo events over TLS, by name, into every output.
"$PY" - "$top_srcdir/demo/events.json" "$T/messages.json" "$T/script.json" <<'PYEOF'
import json, sys
msgs = [json.dumps(e) for e in json.load(open(sys.argv[1]))[:20]]
json.dump(msgs, open(sys.argv[2], "w"))
json.dump([{"messages": msgs}], open(sys.argv[3], "w"))
PYEOF
nev=$("$PY" "$top_srcdir/tests/peers/expect.py" "$T/messages.json" journal \
    identifier=dce-sandbox | tee "$T/want.journal" | wc -l)
"$PY" "$top_srcdir/tests/peers/expect.py" "$T/messages.json" stdout \
    identifier=dce-sandbox >"$T/want.stdout"

"$PY" "$top_srcdir/tests/peers/wspeer.py" --portfile "$T/port" --log "$T/peer" \
    --script "$T/script.json" --cert "$T/pki/server.pem" \
    --key "$T/pki/server.key" 2>"$T/peer.err" &
PIDS="$PIDS $!"
# A UDP syslog receiver: one line per datagram.
"$PY" - "$T/udpport" "$T/udp" <<'PYEOF' &
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(sys.argv[1] + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(65536).decode("utf-8", "replace").replace("\n", " ") + "\n")
PYEOF
PIDS="$PIDS $!"
"$PY" "$top_srcdir/tests/peers/notify_peer.py" "$T/notify.sock" "$T/notify" &
PIDS="$PIDS $!"
wait_until 5 test -s "$T/port" || skip "the peer did not start"
wait_until 5 test -s "$T/udpport" || skip "the UDP receiver did not start"
wait_for "$T/notify" listening >/dev/null || skip "the notify peer did not start"
PORT=$(cat "$T/port")
UDPPORT=$(cat "$T/udpport")

# run_daemon IDENTIFIER NOTIFY_SOCKET [WRAPPER...]: the daemon, in the
# background, with every output on.
run_daemon() {
	id=$1 ns=$2
	shift 2
	NOTIFY_SOCKET=$ns "$@" "$DCEVENTS" -c /dev/null \
	    -o "Stream.URL=wss://localhost:$PORT/" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=yes \
	    -o Output.Stdout=yes -o "Output.Syslog=udp://127.0.0.1:$UDPPORT" \
	    -o "Output.Identifier=$id" -o "Metrics.Listen=unix:$T/m.$id.sock" \
	    >"$T/out.$id" 2>"$T/err.$id" &
}

CONNECTED=$MID_CONNECTED
run_daemon dce-sandbox "$T/notify.sock" \
    "$PY" "$top_srcdir/tests/peers/sandbox.py" --
DC=$!
PIDS="$PIDS $DC"
check "READY=1 under the filters" wait_for "$T/notify" "READY=1"
check "the running daemon has no_new_privs and the 4 filters" wait_until 5 \
    grep -Eq '^Seccomp_filters:[[:space:]]+4$' "/proc/$DC/status"
check "the connected record in the journal" \
    journal_wait "MESSAGE_ID=$CONNECTED" 1 10 SYSLOG_IDENTIFIER=dce-sandbox
check "$nev event records in the journal" \
    journal_wait SYSLOG_IDENTIFIER=dce-sandbox $((nev + 1)) 10
check "$nev lines on stdout" wait_until 10 has_lines "$T/out.dce-sandbox" "$nev"
check "$nev event datagrams and the connected one at the UDP receiver" \
    wait_until 10 has_lines "$T/udp" $((nev + 1))
check "the metrics endpoint (unix:) serves under the filters" \
    sh -c "curl -s --unix-socket '$T/m.dce-sandbox.sock' http://x/metrics | grep -q '^dcevents_connected 1'"
kill -USR1 "$DC"
check "SIGUSR1: the statistics record under the filters" \
    journal_wait MESSAGE_ID=51bc5d57502f4779af969ba552486a5d 1 10 SYSLOG_IDENTIFIER=dce-sandbox
kill -HUP "$DC"
check "SIGHUP: configuration reloaded" \
    wait_for "$T/err.dce-sandbox" "configuration reloaded"
check "SIGHUP: READY=1 again" wait_until 5 test "$(count "$T/notify" READY=1)" -ge 2
check "the daemon runs on after the reload" kill -0 "$DC"
kill -TERM "$DC"
wait "$DC"
check "SIGTERM: exit status 0" test $? -eq 0
check "SIGTERM: STOPPING=1" wait_for "$T/notify" "STOPPING=1"
journal_json SYSLOG_IDENTIFIER=dce-sandbox >"$T/journal.json"
check "journal: every event record as specified" \
    "$PY" "$top_srcdir/tests/peers/compare.py" journal "$T/want.journal" "$T/journal.json"
check "stdout: every event as specified" \
    "$PY" "$top_srcdir/tests/peers/compare.py" stdout "$T/want.stdout" "$T/out.dce-sandbox"
check "nothing refused: no EPERM, EAFNOSUPPORT, ENOSYS on stderr" none \
    "$T/err.dce-sandbox" 'not permitted|EPERM|EAFNOSUPPORT|not supported|ENOSYS|not implemented'
check "$nev event datagrams at the UDP receiver" \
    test "$(grep -c ' dce-sandbox .*\[dockercloud@' "$T/udp")" -eq "$nev"

# Cross-check outside the filters: the same run under strace.
if ! command -v strace >/dev/null; then
	echo "# strace not installed: no cross-check"
	finish
fi
: >"$T/notify"
run_daemon dce-strace "$T/notify.sock" strace -f -qq -e trace=all -o "$T/strace"
ST=$!
PIDS="$PIDS $ST"
wait_until 10 has_lines "$T/out.dce-strace" "$nev" ||
    echo "# the traced daemon wrote $(wc -l <"$T/out.dce-strace") lines"
dcpid=$(sed -n 's/^\([0-9]*\) .*/\1/p;q' "$T/strace")
[ -n "$dcpid" ] || dcpid=$ST
kill -HUP "$dcpid"
wait_for "$T/err.dce-strace" "configuration reloaded" >/dev/null
kill -TERM "$dcpid"
wait "$ST"
check "traced: exit status 0 after SIGHUP and SIGTERM" test $? -eq 0
sed -nE 's/^[0-9]+ +([a-z_][a-z0-9_]*)\(.*/\1/p' "$T/strace" | sort -u >"$T/used"
sort -u "$T/allowed" | comm -23 "$T/used" - >"$T/refused"
sed 's/^/# would be refused: /' "$T/refused"
check "traced: all $(wc -l <"$T/used") distinct system calls are allowed" test ! -s "$T/refused"
grep -E ' socket\(' "$T/strace" |
    grep -vE " socket\(($(echo "$FAMILIES" | tr ' ' '|')),"  >"$T/sockets"
check "traced: socket() only for $FAMILIES" none "$T/sockets" .
check "traced: no mmap() writable and executable, no mprotect() executable" \
    none "$T/strace" ' (mmap\([^,]*, [^,]*, [^,]*PROT_WRITE\|PROT_EXEC|(pkey_)?mprotect\([^,]*, [^,]*, [^,]*PROT_EXEC)'
check "traced: no namespace flags, no setns()" \
    none "$T/strace" ' ((clone3?|unshare)\(.*CLONE_NEW|setns\()'
if grep -q ' clone3(' "$T/strace"; then
	echo "# clone3() used: the unit's RestrictNamespaces= makes it ENOSYS;" \
	    "the run under the filters shows the fallback to clone() works"
fi
finish
