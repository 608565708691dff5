#!/bin/sh
# The spool against a private, real journald.
# (k) Thousands of events streamed into the journal; in the middle of the
#     stream journald and dcevents are killed with SIGKILL (one kill(1):
#     journald first), both restarted: every event dcevents had handed on
#     is in the journal, in order, then the new ones; the duplicates
#     (what was written after the last stored position) are counted and
#     bounded.
# (c) Damaged or unreadable spool files, each at a daemon's start: garbage,
#     truncated, a WAL without its database, a directory, a file the
#     daemon may not read (no CAP_DAC_OVERRIDE), and two it cannot move
#     (immutable, a path under a regular file): a record with
#     MID_SPOOL_DAMAGED in the journal, the file moved to
#     spool.db.bad-TIMESTAMP (the record's SPOOL_MOVED_TO) when it can be,
#     and events flow.
# Mode=always; (k) fails with SPOOL_MODE=no (events are lost).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/journal.sh"
journal_enter "$@"
. "$top_srcdir/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/mid.sh"
. "$top_srcdir/tests/lib/spool.sh"

[ "${WITH_SYSTEMD:-yes}" = yes ] || skip "built without libsystemd"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v sqlite3 >/dev/null || skip "needs sqlite3 (apt-get install sqlite3)"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
journal_start

# (k)'s stream: NK events, 20 every 10 ms (at most 2,000 a second), then
# NB new ones after the restart; every later connection (c) one event.
NK=4000 NB=50
spool_script "$T/script.json" "k:$NK/20:0.01" "b:$NB" "d:1"
wspeer_start "$T/script.json"

# uuids IDENT: the uuids of IDENT's event records, in the journal's order.
uuids() {
	journal_json "SYSLOG_IDENTIFIER=$1" DOCKERCLOUD_TYPE=container |
	    "$PY" -c 'import json, sys
for l in sys.stdin:
    print(json.loads(l)["DOCKERCLOUD_UUID"])'
}
handed() { [ "$(spool_handed k)" -ge "$1" ]; }

# (k)
J="-o Output.Journal=yes -o Output.Identifier=dce-k"
spool_dc k $J
check "(k) dcevents hands on the stream" wait_until 20 handed 1000
# journald first: a record it was storing when killed is lost with it,
# and was sent last, after the position dcevents stored; one kill(1)
# leaves the acknowledgement timer no time to store a newer one.
kill -KILL "$JOURNAL_PID" "$DC"
wait "$DC" 2>/dev/null
journal_stop KILL
K=$(spool_handed k)
echo "# killed after $K of $NK events handed on"
check "(k) killed in the middle of the stream" test "$K" -lt "$NK"
P=$(sqlite3 "$T/k/spool.db" "SELECT id FROM positions WHERE output = 'journal'" 2>/dev/null)
echo "# the journal's stored position: ${P:-none}; rows spooled: $(sqlite3 \
    "$T/k/spool.db" "SELECT count(*) FROM events" 2>/dev/null)"
check "(k) journald back" journal_restart
spool_dc k $J
check "(k) the new events after the restart" \
    journal_wait DOCKERCLOUD_UUID=b-$(printf %05d $((NB - 1))) 1 20
sleep 0.3
kill "$DC"
wait "$DC"
check "(k) exit 0 at SIGTERM" test $? -eq 0
uuids dce-k >"$T/k/uuids"
# Positions are stored every 200 ms: what the journal output wrote in
# that time (at most 400 events at this stream's 2,000 a second) may be
# written again after a SIGKILL.  1000: two and a half periods (a timer
# late under load, or the sanitizers).  And no more than the events
# handed on beyond the stored position (row id N is event N-1): the
# replay starts right after it.
MAXDUPS=1000
case $P in
'' | *[!0-9]*) ;;
*) [ $((K - P)) -lt "$MAXDUPS" ] && MAXDUPS=$((K - P)) ;;
esac
check "(k) every event handed on ($K) in the journal, in order, then the new" \
    spool_uuids_check "$T/k/uuids" "$MAXDUPS" "k:$K" "b=$NB"

# (c) Each case: a directory, the spool's path in it, made damaged.
mkdir "$T/good"
sqlite3 "$T/good/spool.db" "PRAGMA journal_mode=WAL; CREATE TABLE events(id \
    INTEGER PRIMARY KEY AUTOINCREMENT, msg BLOB NOT NULL); INSERT INTO \
    events(msg) SELECT randomblob(3000) FROM (WITH RECURSIVE n(x) AS \
    (SELECT 1 UNION ALL SELECT x+1 FROM n WHERE x < 50) SELECT x FROM n); \
    PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
CASES="garbage truncated walonly directory unreadable"
mkdir "$T/garbage" "$T/truncated" "$T/walonly" "$T/directory" "$T/unreadable" \
    "$T/immutable" "$T/underfile"
head -c 20000 /dev/urandom >"$T/garbage/spool.db"
cp "$T/good/spool.db" "$T/truncated/spool.db"
truncate -s 16384 "$T/truncated/spool.db"
head -c 40000 /dev/urandom >"$T/walonly/spool.db-wal"
mkdir "$T/directory/spool.db"
cp "$T/good/spool.db" "$T/unreadable/spool.db"
chmod 000 "$T/unreadable/spool.db"
# Cannot be moved aside: the daemon goes on without a spool.
NOMOVE=underfile
: >"$T/underfile/file"
cp "$T/good/spool.db" "$T/immutable/spool.db"
if chattr +i "$T/immutable/spool.db" 2>/dev/null; then
	NOMOVE="$NOMOVE immutable"
else
	echo "# chattr +i fails here: the immutable case is left out"
fi
for c in $CASES $NOMOVE; do
	path=$T/$c/spool.db
	[ "$c" = underfile ] && path=$T/underfile/file/spool.db
	# Root reads any file: "unreadable" runs without CAP_DAC_OVERRIDE.
	run=
	[ "$c" = unreadable ] && run="setpriv --inh-caps=-all --bounding-set=-dac_override,-dac_read_search"
	SPOOL_RUN=$run spool_dc "$c" -o Output.Journal=yes \
	    -o "Output.Identifier=dce-$c" -o "Spool.Path=$path"
	eval "DC_$c=\$DC"
done
# moved CASE: the record's SPOOL_MOVED_TO names a file, or directory,
# that exists and is no longer at the spool's path.
moved() {
	journal_json "SYSLOG_IDENTIFIER=dce-$1" "MESSAGE_ID=$MID_SPOOL_DAMAGED" |
	    "$PY" -c 'import json, os, sys
r = [json.loads(l) for l in sys.stdin]
to = r[0].get("SPOOL_MOVED_TO", "") if r else ""
print("# %s: %s" % (sys.argv[1], r[0]["MESSAGE"] if r else "no record"))
# A WAL without its database: only TO-wal exists.
sys.exit(not (to.startswith(sys.argv[2] + ".bad-") and
              (os.path.lexists(to) or os.path.lexists(to + "-wal"))))
' "$1" "$T/$1/spool.db"
}
# not_moved CASE: the record says the file stays and events go on
# without a spool, and claims no move.
not_moved() {
	journal_json "SYSLOG_IDENTIFIER=dce-$1" "MESSAGE_ID=$MID_SPOOL_DAMAGED" |
	    "$PY" -c 'import json, sys
r = [json.loads(l) for l in sys.stdin]
print("# %s: %s" % (sys.argv[1], r[0]["MESSAGE"] if r else "no record"))
sys.exit(not (r and "SPOOL_MOVED_TO" not in r[0] and
              "without a spool" in r[0]["MESSAGE"]))
' "$1"
}
for c in $CASES $NOMOVE; do
	check "($c) a MID_SPOOL_DAMAGED record in the journal" \
	    journal_wait "MESSAGE_ID=$MID_SPOOL_DAMAGED" 1 10 "SYSLOG_IDENTIFIER=dce-$c"
	case " $NOMOVE " in
	*" $c "*) check "($c) cannot be moved: the record says so" not_moved "$c" ;;
	*)
		check "($c) moved to SPOOL_MOVED_TO" moved "$c"
		check "($c) a new spool" wait_until 5 \
		    sqlite3 "$T/$c/spool.db" "SELECT count(*) FROM positions" ;;
	esac
	check "($c) events flow" \
	    journal_wait DOCKERCLOUD_UUID=d-00000 1 10 "SYSLOG_IDENTIFIER=dce-$c"
	eval "DC=\$DC_$c"
	kill "$DC"
	wait "$DC"
	check "($c) exit 0 at SIGTERM" test $? -eq 0
done
[ -e "$T/immutable/spool.db" ] && chattr -i "$T/immutable/spool.db"
finish
