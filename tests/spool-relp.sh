#!/bin/sh
# The spool and a RELP collector (a real rsyslogd with imrelp) that goes
# down: 100 events reach it, it stops (SIGTERM), 200 more arrive while it
# is down, dcevents gets SIGTERM (what it could not deliver stays in the
# spool), then rsyslog and dcevents come back: every event reaches the
# collector, in order, then the new ones; duplicates (records rsyslog took
# but had not answered when it stopped) at most one RELP window.  For each
# [Spool] Mode this build accepts (always; overflow once it exists).
# Fails with SPOOL_MODES=no: the stop loses what waited.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/rsyslog.sh"
. "$top_srcdir/tests/lib/spool.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v sqlite3 >/dev/null || skip "needs sqlite3 (apt-get install sqlite3)"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
rsyslog_start
[ -n "$RSYSLOG_RELP_PORT" ] || skip "needs rsyslog's imrelp (apt-get install rsyslog-relp)"
MODES=$(spool_modes)
[ -n "$MODES" ] || skip "no [Spool] Mode accepted"

# Per mode, two connections: 100 events, 2 s of nothing (rsyslog stops
# then), 200 more; after the restart 50 new ones.
script=
for m in $MODES; do
	script="$script a:100,sleep:2,a:100-300 b:50"
done
# shellcheck disable=SC2086
spool_script "$T/script.json" $script -
wspeer_start "$T/script.json"

# taken MODE: the uuids the collector took from MODE's daemon, in order.
taken() {
	"$PY" - "$T/rsyslog-relp.json" "dce-$1" <<'PYEOF'
import json, re, sys
for l in open(sys.argv[1], errors="surrogateescape"):
    r = json.loads(l)
    m = re.search(r'uuid="([^"]*)"', r["structured_data"])
    if r["app_name"] == sys.argv[2] and m:
        print(m.group(1))
PYEOF
}
has() { taken "$1" | grep -qx "$2"; }
handed() { [ "$(spool_handed "relp-$1")" -ge "$2" ]; }

for m in $MODES; do
	RELP="-o Output.Syslog=relp://127.0.0.1:$RSYSLOG_RELP_PORT -o Output.Identifier=dce-$m"
	SPOOL_MODE=$m spool_dc "relp-$m" $RELP
	check "($m) the first 100 events reach rsyslog" wait_until 10 has "$m" a-00099
	rsyslog_stop
	check "($m) 200 more are handed on while rsyslog is down" \
	    wait_until 10 handed "$m" 300
	kill "$DC"
	wait "$DC"
	echo "# ($m) exit status $? at SIGTERM with rsyslog down"
	# always: the events; overflow: the records kept at the stop.
	table=events
	[ "$m" = overflow ] && table=spill
	check "($m) what was not delivered waits in the spool ($table)" test \
	    "$(sqlite3 "$T/relp-$m/spool.db" "SELECT count(*) FROM $table" 2>/dev/null || echo 0)" -ge 200
	check "($m) rsyslog back" rsyslog_restart
	SPOOL_MODE=$m spool_dc "relp-$m" $RELP
	check "($m) the new events after the restart" wait_until 20 has "$m" b-00049
	sleep 0.3
	kill "$DC"
	wait "$DC"
	check "($m) exit 0 at SIGTERM" test $? -eq 0
	taken "$m" >"$T/relp-$m/uuids"
	# RELP_WINDOW (output_syslog.c): records sent before the answers.
	check "($m) every event delivered, in order, then the new ones" \
	    spool_uuids_check "$T/relp-$m/uuids" 128 a=300 b=50
done
finish
