#!/bin/sh
# The real units under a real systemd.  systemd 252 boots as PID 1 of new
# PID, mount, UTS, IPC, network and cgroup namespaces, in a cgroup of its
# own under the cgroup2 hierarchy, on an overlay of / whose upper layer is
# a tmpfs: what it writes (units, /etc/dcevents, its journal) exists only
# there, and the host's journal, units and /dev are never touched.  The
# build is installed into that root (/usr/sbin, /etc), tests/peers/wspeer.py
# serves the stream on the namespace's loopback, and the checks drive
# systemctl and journalctl of that systemd through nsenter: enable --now
# (Type=notify, the key from LoadCredential=), the events in its journal,
# STATUS=, reload with a changed and with a broken file, the watchdog,
# stop, an instance, a missing key and a configuration error that are not
# restarted, the start limit, the README's systemd-run check, and
# systemd-analyze security.  The namespaces, the root and the clean-up
# are tests/lib/systemd.sh's.  Skips (77) where systemd cannot boot like
# this.

# sd_stage ROOT: the build, as "./configure --prefix=/usr --sysconfdir=/etc"
# would install it, into the root systemd boots from: the staged tree has
# the configured paths.
sd_stage() {
	install -m 0755 "$T/stage$SBINDIR/dcevents" "$1/usr/sbin/dcevents"
	for u in dcevents.service dcevents@.service; do
		sed -e "s|$SBINDIR/dcevents|/usr/sbin/dcevents|g" \
		    -e "s|$SYSCONFDIR/dcevents/|/etc/dcevents/|g" \
		    "$T/stage$UNITDIR/$u" >"$1/etc/systemd/system/$u"
	done
	mkdir -p "$1/etc/dcevents"
}

if [ "${1:-}" = --pid1 ]; then
	. "$(dirname "$0")/lib/systemd.sh"
	sd_pid1 "$2" sd_stage
	exit 1
fi

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/systemd.sh"

[ "${WITH_SYSTEMD:-yes}" = yes ] || skip "built without libsystemd"
[ "$(id -u)" -eq 0 ] || skip "booting systemd needs root"
command -v make >/dev/null || skip "needs make"
[ -x "$PY" ] || skip "needs $PY (Debian's python3)"
[ -f "$top_builddir/Makefile" ] || skip "no build tree"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"

# Stage the build.
mkvar() {
	sed -n "s/^$1 = //p" "$top_builddir/Makefile" | sed -e "s|\${prefix}|$2|" \
	    -e "s|\$(prefix)|$2|" -e "s|\${exec_prefix}|$2|"
}
prefix=$(mkvar prefix "")
SBINDIR=$(mkvar sbindir "$prefix")
SYSCONFDIR=$(mkvar sysconfdir "$prefix")
UNITDIR=$(mkvar systemdsystemunitdir "$prefix")
export SBINDIR SYSCONFDIR UNITDIR T
make -C "$top_builddir" install DESTDIR="$T/stage" >"$T/install.log" 2>&1 ||
    { sed 's/^/#   /' "$T/install.log" | tail -20; fail "make install"; finish; }

# Boot.
sd_boot "$0"
pass "systemd 252 boots in the namespaces ($(E systemctl is-system-running))"

# The stream server, on the namespace's loopback.  Each connection gets
# three container events, then the connection is held.
"$PY" - "$T/script" <<'EOF'
import json, sys
ev = [{"type": "container", "action": "update", "state": s,
       "uuid": "0b0e3a1c-0000-4000-8000-00000000000%d" % i,
       "resource_uri": "/api/app/v1/ns/container/0b0e3a1c-%d/" % i,
       "parents": [], "datetime": "2016-03-08T14:02:1%dZ" % i}
      for i, s in enumerate(("Starting", "Running", "Stopped"))]
json.dump([{"messages": [json.dumps(e) for e in ev], "after": "hold"}],
          open(sys.argv[1], "w"))
EOF
sd_wspeer "$T/script"

# peer N FIELD: a field of connection N's "connect" line ("auth": the
# Authorization header, "path").
peer() {
	"$PY" - "$T/peer" "$1" "$2" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["ev"] == "connect" and r["n"] == int(sys.argv[2]):
        if sys.argv[3] == "auth":
            print(r["headers"].get("authorization", ""))
        else:
            print(r[sys.argv[3]])
EOF
}
connects() {
	_c=$(count "$T/peer" '"ev":"connect"')
	echo "${_c:-0}"
}
has_connects() {
	[ "$(connects)" -ge "$1" ]
}
basic() {
	printf 'Basic %s\n' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"
}

conf() {
	cat <<EOF
[Stream]
URL=wss://localhost:$PORT/
CAFile=/etc/dcevents/ca.pem
User=$1
BackoffMinSec=100ms
BackoffMaxSec=500ms
$2
EOF
}
KEY=k-$$-main
KEY2=k-$$-acme
E install -m 0644 "$T/pki/ca.pem" /etc/dcevents/ca.pem
conf tester "" | put /etc/dcevents/dcevents.conf 0644
echo "$KEY" | put /etc/dcevents/apikey 0600

# systemd-analyze security, before the test's drop-ins.
for u in dcevents.service dcevents@acme.service; do
	E systemd-analyze security --no-pager "$u" >"$T/sec" 2>&1
	level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$T/sec")
	check "$u: systemd-analyze security rates it $level, at most 1.5" \
	    awk -v l="$level" 'BEGIN { exit !(l != "" && l <= 1.5) }'
	readme=$(tr '\n' ' ' <"$top_srcdir/README.md" |
	    sed -n 's/.*`systemd-analyze security` rates both *units \([0-9.]*\).*/\1/p')
	check "$u: the README says $readme" test "$readme" = "$level"
done

# Faster restarts, so that a restart that should not happen shows within
# a second; a short watchdog that kills (SIGKILL rather than SIGABRT: the
# kernel's core_pattern is the host's, and no core may reach its handler).
# A sanitizer build runs in the sandbox too, but LeakSanitizer stops the
# world with ptrace(), which SystemCallFilter= forbids (@debug): it would
# turn every exit into status 1; the other drivers check for leaks.
asan=
[ "${WITH_SANITIZERS:-no}" = yes ] && asan=Environment=ASAN_OPTIONS=detect_leaks=0
for u in dcevents.service dcevents@.service; do
	E sh -c "mkdir -p /etc/systemd/system/$u.d && cat >/etc/systemd/system/$u.d/test.conf" <<EOF
[Service]
RestartSec=200ms
WatchdogSec=3s
WatchdogSignal=SIGKILL
$asan
EOF
done
E systemctl daemon-reload

# enable --now returns once READY=1 came (Type=notify).
E systemctl enable --now dcevents.service >"$T/enable" 2>&1
check "systemctl enable --now dcevents succeeds" test $? -eq 0
check "dcevents is enabled" test "$(E systemctl is-enabled dcevents.service)" = enabled
check "dcevents is active" test "$(show dcevents.service ActiveState)" = active
pid1=$(show dcevents.service MainPID)
check "the server sees a connection" wait_until 5 has_connects 1
check "the key came by LoadCredential= (Authorization header)" \
    test "$(peer 1 auth)" = "$(basic tester "$KEY")"
journal_events() {
	[ "$(jlog "$@" DOCKERCLOUD_TYPE=container -o cat | wc -l)" -ge 3 ]
}
check "journalctl DOCKERCLOUD_TYPE=container shows the events" \
    wait_until 5 journal_events _SYSTEMD_UNIT=dcevents.service
jlog DOCKERCLOUD_TYPE=container -o cat | sed 's/^/#   /'
# STATUS= follows the count while events flow (at most once a second).
status_count() {
	E systemctl status --no-pager dcevents.service >"$T/status" 2>&1
	n=$(sed -n 's/.*Status: ".*[^0-9]\([0-9][0-9]*\) events.*/\1/p' "$T/status")
	[ -n "$n" ] && [ "$n" -ge 3 ]
}
check "systemctl status shows the live event count (3 or more)" \
    wait_until 4 status_count
grep 'Status:' "$T/status" | sed 's/^/#  /'
check "no key in the journal" test "$(jlog -u dcevents.service -o cat | grep -c "$KEY")" -eq 0

# README: -t as the unit would run it, with the credential.
E systemd-run -P --wait -q -p DynamicUser=yes \
    -p LoadCredential=apikey:/etc/dcevents/apikey \
    /usr/sbin/dcevents -t -c /etc/dcevents/dcevents.conf >"$T/dash-t" 2>&1
check "systemd-run ... dcevents -t exits 0" test $? -eq 0
check "systemd-run ... dcevents -t sees the credential" \
    contains "$T/dash-t" "# credential: systemd credential /run/credentials/"
check "dcevents -t does not print the key" lacks "$T/dash-t" "$KEY"

# Reload with a changed file: the new stream setting is used.
conf tester "Namespace=ns2" | put /etc/dcevents/dcevents.conf 0644
E systemctl reload dcevents.service
check "reload (changed file) succeeds" test $? -eq 0
check "the changed file is used (a new connection for the namespace)" \
    wait_until 5 has_connects 2
check "the new connection asks for ns2 ($(peer 2 path))" \
    eval 'case "$(peer 2 path)" in */ns2/*) ;; *) false ;; esac'
check "reloaded, not restarted" test "$(show dcevents.service MainPID)" = "$pid1"

# Reload with a broken file: reported in the journal, the old
# configuration keeps running (systemctl reload itself says nothing).
E sh -c 'printf "Bogus=1\n" >>/etc/dcevents/dcevents.conf'
E systemctl reload dcevents.service
check "reload (broken file) returns 0 all the same" test $? -eq 0
broken() {
	jlog -u dcevents.service -o cat | grep -q "dcevents.conf:8: .*Bogus"
}
check "the broken file's error is in the journal (file:line, key)" \
    wait_until 5 broken
jlog -u dcevents.service -o cat | grep Bogus | sed 's/^/#   /'
E systemctl status --no-pager dcevents.service >"$T/status" 2>&1
check "systemctl status shows it too (README)" contains "$T/status" "dcevents.conf:8: Bogus"
check "still active after the broken reload" test "$(show dcevents.service ActiveState)" = active
check "still the same process" test "$(show dcevents.service MainPID)" = "$pid1"
check "still on the old connection" test "$(connects)" -eq 2
conf tester "Namespace=ns2" | put /etc/dcevents/dcevents.conf 0644

# The watchdog: a stopped daemon is killed and restarted.
E kill -STOP "$pid1"
restarted() {
	p=$(show dcevents.service MainPID)
	[ "$p" != 0 ] && [ "$p" != "$pid1" ] &&
	    [ "$(show dcevents.service ActiveState)" = active ]
}
check "the watchdog replaces a stopped daemon" wait_until 10 restarted
check "the journal says it was the watchdog" \
    wait_until 2 sh -c "nsenter -t $SDPID -a journalctl -q -u dcevents.service -o cat | grep -q 'Watchdog timeout'"
check "one restart" test "$(show dcevents.service NRestarts)" -eq 1

# Stop: exit 0 within 2 s.
start=$(now_ms)
E systemctl stop dcevents.service
rc=$?
ms=$(( $(now_ms) - start ))
check "systemctl stop succeeds" test "$rc" -eq 0
check "stopped in $ms ms (at most 2000)" test "$ms" -le 2000
check "exit status 0" test "$(show dcevents.service ExecMainStatus)" = 0
check "result success" test "$(show dcevents.service Result)" = success

# An instance, with its own file and key.
conf acme "Namespace=acme" | put /etc/dcevents/acme.conf 0644
echo "$KEY2" | put /etc/dcevents/acme.apikey 0600
c0=$(connects)
E systemctl start dcevents@acme.service
check "dcevents@acme starts" test $? -eq 0
check "dcevents@acme is active" test "$(show dcevents@acme.service ActiveState)" = active
check "dcevents@acme connects" wait_until 5 has_connects $((c0 + 1))
check "dcevents@acme uses acme.apikey" \
    test "$(peer $((c0 + 1)) auth)" = "$(basic acme "$KEY2")"
check "dcevents@acme's events are in the journal" \
    wait_until 5 journal_events _SYSTEMD_UNIT=dcevents@acme.service

# The start limit: repeated failures end in start-limit-hit.  The unit
# allows StartLimitBurst=5 starts: the first and 4 restarts after a crash
# (SIGKILL); the restart after the 5th crash is refused.
crash() {
	n=$(show dcevents@acme.service NRestarts)
	E kill -KILL "$(show dcevents@acme.service MainPID)"
	wait_until 10 eval '[ "$(show dcevents@acme.service NRestarts)" -gt "$n" ] &&
	    [ "$(show dcevents@acme.service ActiveState)" = active ]'
}
for i in 1 2 3 4; do
	crash || break
done
check "4 crashes: restarted 4 times" test "$(show dcevents@acme.service NRestarts)" -eq 4
E kill -KILL "$(show dcevents@acme.service MainPID)"
limit() {
	[ "$(show dcevents@acme.service ActiveState)" = failed ] &&
	    jlog -u dcevents@acme.service -o cat |
	    grep -q "Start request repeated too quickly"
}
check "the 5th crash hits the start limit" wait_until 5 limit
check "and the unit stays failed" test "$(show dcevents@acme.service ActiveState)" = failed
echo "# Result=$(show dcevents@acme.service Result)"

# A missing key: one clear failure naming the file, no restart.
conf nokey "" | put /etc/dcevents/nokey.conf 0644
E systemctl start dcevents@nokey.service >"$T/nokey" 2>&1
check "dcevents@nokey (no key file) fails to start" test $? -ne 0
sleep 1 # 5 times RestartSec: a restart would have happened
jlog -u dcevents@nokey.service -o cat >"$T/nokey.log"
sed 's/^/#   /' "$T/nokey.log"
check "the journal names the missing file" \
    contains "$T/nokey.log" "No API key: /etc/dcevents/nokey.apikey is missing"
check "not systemd's bare \"Protocol error\"" lacks "$T/nokey.log" "Protocol error"
check "no restart (missing key)" test "$(show dcevents@nokey.service NRestarts)" = 0
check "failed (missing key)" test "$(show dcevents@nokey.service ActiveState)" = failed
check "started once" test "$(grep -c '^Starting' "$T/nokey.log")" -eq 1

# A configuration error: exit 1, no restart.
conf bad "Bogus=1" | put /etc/dcevents/bad.conf 0644
echo k-bad | put /etc/dcevents/bad.apikey 0600
E systemctl start dcevents@bad.service >/dev/null 2>&1
check "dcevents@bad (configuration error) fails to start" test $? -ne 0
sleep 1
jlog -u dcevents@bad.service -o cat >"$T/bad.log"
check "the error names file, line and key" contains "$T/bad.log" "/etc/dcevents/bad.conf:7:"
check "exit status 1" test "$(show dcevents@bad.service ExecMainStatus)" = 1
check "no restart (configuration error)" test "$(show dcevents@bad.service NRestarts)" = 0
check "failed (configuration error)" test "$(show dcevents@bad.service ActiveState)" = failed
check "started once (configuration error)" test "$(grep -c '^Starting' "$T/bad.log")" -eq 1

finish
