#!/bin/sh
# The README's syslog-ng recipe, as printed (conf/recipes/syslog-ng.conf,
# the file for /etc/syslog-ng/conf.d/, and syslog-ng-own.conf; README.md
# holds both verbatim, tests/recipes.sh checks that), run by Debian's
# real syslog-ng 3.38 against a private journald (tests/lib/journal.sh) that
# dcevents writes to.  syslog-ng-core conflicts with the rsyslog packages
# the other tests need: tools/syslog-ng.sh fetches it with apt-get
# download and unpacks it into a cache directory ($DCEVENTS_SYSLOG_NG,
# default /var/cache/dcevents/syslog-ng), without installing it; when
# that fails, the test is skipped.
#
# Inside journal.sh's mount namespace the test makes a Debian host of
# its own: /run/systemd/system exists (as when systemd booted, so that
# system() in Debian's s_src is systemd-journal()), /var/log is a tmpfs,
# /dev a private tmpfs (rsyslog.sh's) and /run/utmp empty, so that
# Debian's whole syslog-ng.conf runs, writing its files, consoles and
# pipes there, not on the host.  Checked:
# - Debian's /etc/syslog-ng/syslog-ng.conf (from the package) with the
#   recipe in conf.d passes syslog-ng --syntax-only, and runs: each
#   dcevents record arrives in /var/log/dockercloud.log with its
#   DOCKERCLOUD_* fields (a second systemd-journal() source, as the
#   README once had, stops syslog-ng from starting);
# - syslog-ng-own.conf (a configuration of its own) including the recipe
#   does the same.
# Paths only are substituted (sed): the includes of scl.conf (the
# package's) and of conf.d (the test's).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/journal.sh"
journal_enter "$@"
. "$top_srcdir/tests/lib/lib.sh"

[ "${WITH_SYSTEMD:-yes}" = yes ] || skip "built without libsystemd"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
SNG=${DCEVENTS_SYSLOG_NG:-/var/cache/dcevents/syslog-ng}
sh "$top_srcdir/tools/syslog-ng.sh" "$SNG" >"$T/fetch.log" 2>&1 ||
    skip "cannot fetch Debian's syslog-ng-core into $SNG:" \
    "$(tail -n 1 "$T/fetch.log")"
. "$top_srcdir/tests/lib/rsyslog.sh"
journal_start
mkdir -p /run/systemd/system
_rsyslog_private_dev || exit 77
mount -n -t tmpfs -o mode=0755 tmpfs /var/log ||
    skip "cannot mount a tmpfs on /var/log"
if [ -e /run/utmp ]; then
	: >"$T/utmp"
	mount -n --bind "$T/utmp" /run/utmp || skip "cannot bind over /run/utmp"
fi
REC=$top_srcdir/conf/recipes
LOG=/var/log/dockercloud.log

# sng ARGS...: the unpacked syslog-ng, its own libraries and modules, no
# service-manager variables.
sng() {
	env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID \
	    LD_LIBRARY_PATH="$SNG/usr/lib/syslog-ng:$SNG/usr/lib/x86_64-linux-gnu" \
	    SYSLOGNG_PREFIX="$SNG/usr" "$SNG/usr/sbin/syslog-ng" "$@"
}

mkdir "$T/conf.d"
cp "$REC/syslog-ng.conf" "$T/conf.d/dcevents.conf"
sed -e "s|^@include \"scl.conf\"|@include \"$SNG/etc/syslog-ng/scl.conf\"|" \
    -e "s|/etc/syslog-ng/conf.d/|$T/conf.d/|" \
    "$SNG/etc/syslog-ng/syslog-ng.conf" >"$T/debian.conf"
check "Debian's syslog-ng.conf includes conf.d" \
    contains "$T/debian.conf" "@include \"$T/conf.d/*.conf\""
check "Debian's syslog-ng.conf with the recipe in conf.d: syntax ok" \
    sng --syntax-only -f "$T/debian.conf"
sed "s|/etc/syslog-ng/conf.d/|$T/conf.d/|" "$REC/syslog-ng-own.conf" \
    >"$T/own.conf"
check "syslog-ng-own.conf: syntax ok" sng --syntax-only -f "$T/own.conf"

"$PY" - >"$T/script.json" <<'PYEOF'
import json
ev = [("container", "update", "Running", "c0ffee01-0000-4000-8000-000000000001"),
      ("service", "update", "Partly running", "5e41ce01-0000-4000-8000-000000000002"),
      ("container", "delete", "Terminated", "c0ffee03-0000-4000-8000-000000000003")]
msgs = [json.dumps({"type": t, "action": a, "state": s, "uuid": "ev-%d" % i,
                    "resource_uri": "/api/app/v1/demo/%s/%s/" % (t, u)})
        for i, (t, a, s, u) in enumerate(ev)]
print(json.dumps([{"messages": msgs, "after": "hold"}] * 2))
PYEOF
rm -f "$T/port"
"$PY" "$top_srcdir/tests/peers/wspeer.py" --portfile "$T/port" \
    --script "$T/script.json" 2>"$T/peer.err" &
PIDS="$PIDS $!"
wait_until 5 test -s "$T/port" || skip "the websocket peer did not start"
PORT=$(cat "$T/port")

# run NAME CONF: syslog-ng on CONF, dcevents writing its connected
# record and the three events to the journal (the journal has $want
# dcevents records then); every dcevents record of the journal is in the
# recipe's file, with its fields.
run() {
	name=$1
	rm -f "$LOG" "$T/ctl"
	sng -F -e -f "$2" -R "$T/$name.persist" -c "$T/ctl" -p "$T/$name.pid" \
	    </dev/null >"$T/$name.err" 2>&1 &
	sngpid=$!
	PIDS="$PIDS $sngpid"
	# $! is the shell running sng; syslog-ng is its child, known by the
	# pid file (killing only the shell left syslog-ng running on).
	if ! wait_until 10 test -S "$T/ctl" ||
	    ! wait_until 5 test -s "$T/$name.pid"; then
		fail "$name: syslog-ng started"
		sed 's/^/#   /' "$T/$name.err"
		return
	fi
	sngpid=$(cat "$T/$name.pid")
	PIDS="$PIDS $sngpid"
	pass "$name: syslog-ng started"
	"$DCEVENTS" -c /dev/null -o "Stream.URL=ws://127.0.0.1:$PORT/" \
	    -o Stream.AllowInsecure=yes -o Stream.Namespace=demo \
	    >"$T/dc.out" 2>"$T/dc.err" &
	dc=$!
	PIDS="$PIDS $dc"
	if ! journal_wait SYSLOG_IDENTIFIER=dcevents "$want" 10; then
		fail "$name: dcevents wrote its records to the journal"
		sed 's/^/#   /' "$T/dc.err"
	fi
	kill "$dc"
	wait "$dc"
	n=$(journal_count SYSLOG_IDENTIFIER=dcevents)
	check "$name: all $n dcevents records in the recipe's file" \
	    wait_until 10 has_lines "$LOG" "$n"
	kill "$sngpid"
	wait_until 10 gone "$sngpid"
	journal_json SYSLOG_IDENTIFIER=dcevents >"$T/journal.json"
	check "$name: each with its DOCKERCLOUD_* fields" "$PY" - \
	    "$T/journal.json" "$LOG" <<'PYEOF'
import json, sys
want = []
for l in open(sys.argv[1]):
    r = json.loads(l)
    want.append(" ".join(r.get(k, "") for k in ("DOCKERCLOUD_TYPE",
        "DOCKERCLOUD_STATE", "DOCKERCLOUD_OBJECT_UUID", "MESSAGE")))
got = [l.rstrip("\n").split(" ", 1)[1] for l in open(sys.argv[2])]
events = [w for w in want if w.split(" ")[0] in ("container", "service")]
runs = [w for w in want if "connected to ws://" in w]
ok = got == want and len(events) == 3 * len(runs) > 0
if not ok:
    print("# want:", *want, "# got:", *got, sep="\n#   ")
sys.exit(not ok)
PYEOF
	check "$name: syslog-ng complained of nothing" \
	    lacks "$T/$name.err" "rror"
}

want=4
run debian "$T/debian.conf"
# A new syslog-ng reads the journal from its start (new persist file).
want=9
run own "$T/own.conf"
finish
