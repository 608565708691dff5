#!/bin/sh
# The journal catalog fits the records: the daemon runs against a private,
# real journald and a scripted server that provoke every record it can
# write, then for each MESSAGE_ID seen, every @FIELD@ of its catalog entry
# must be a field of each record with that id, the entry's claims must fit
# (tests/peers/catalog.py: FITS), and "journalctl -x", with the catalog compiled
# into the database it reads (bound over /var/lib/systemd/catalog inside
# this test's mount namespace only), must render each entry with the
# record's values and no placeholder left.
#
# Provoked: connected, disconnected (server abort), disconnected at stop
# (SIGTERM), authentication failure (HTTP 401), gap, message skipped
# (invalid JSON, not an object), queue full (stdout into a pipe nobody
# reads, QueueMax=5), and events of every type with an id: stack,
# service, container, nodecluster, node, action, error (with and without
# a message), auth, user-notification, user-notifications, a type of
# another name and none; the statistics record (SIGUSR1), whose counters
# must fit what was sent.  Not provoked: records lost at stop (MID_LOSS,
# defined in the catalog only), the damaged spool (MID_SPOOL_DAMAGED,
# tests/spool.sh and tests/spool-journal.sh provoke it) and the spool's
# others (MID_SPOOL_DROPPED, MID_SPOOL_FAILED, MID_SPOOL_BACK:
# tests/spool-full.sh provokes them against a journald and checks their
# fields).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/journal.sh"
journal_enter "$@"
. "$top_srcdir/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/mid.sh"

[ "${WITH_SYSTEMD:-yes}" = yes ] || skip "built without libsystemd"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
journal_start

# The catalog compiled as journalctl --update-catalog would install it,
# into a root of our own, and bound where journalctl -x looks.
mkdir -p "$T/root/usr/lib/systemd/catalog"
cp "$top_srcdir/systemd/dcevents.catalog" "$T/root/usr/lib/systemd/catalog/"
journalctl --root="$T/root" --update-catalog 2>"$T/catalog.err"
check "the catalog compiles without complaint" test $? -eq 0 -a ! -s "$T/catalog.err"
rendered=$T/rendered
if [ ! -d /var/lib/systemd/catalog ] ||
    ! mount --bind "$T/root/var/lib/systemd/catalog" /var/lib/systemd/catalog; then
	echo "# no /var/lib/systemd/catalog to bind over: journalctl -x not checked"
	rendered=-
fi

# 1: the demo stream and its hostile cases, events of every kind, then
# enough padded events to fill the stdout pipe and QueueMax; then an
# abort.  2: HTTP 401.  3: one event after the reconnect (the gap), held.
"$PY" "$top_srcdir/tests/peers/stream-events.py" "$top_srcdir/demo/events.json" \
    "$T/messages.json" "$T/stream.json"
"$PY" - "$T/stream.json" >"$T/script.json" <<'PYEOF'
import json, sys
items = json.load(open(sys.argv[1]))[0]["messages"]
more = [{"type": "user-notifications", "data": {"message": "n"}},
        {"type": "error"}, {"uuid": "no-type-1", "action": "create"},
        {"type": "stack", "uuid": "no-action-1"}]
pad = [{"type": "container", "action": "update", "state": "Running",
        "uuid": "pad-%d" % i, "resource_uri": "/api/app/v1/t/container/p%d/" % i,
        "pad": "x" * 300} for i in range(400)]
items += [json.dumps(m) for m in more + pad]
last = {"type": "service", "action": "update", "state": "Running",
        "uuid": "after-gap", "resource_uri": "/api/app/v1/t/service/s/"}
print(json.dumps([{"messages": items, "after": "abort"}, {"status": 401},
                  {"messages": [json.dumps(last)], "after": "hold"}]))
PYEOF
wspeer_start "$T/script.json"

# stdout goes into a pipe that this shell holds open and nobody reads.
mkfifo "$T/pipe"
exec 3<>"$T/pipe"
"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
    -o "Stream.CAFile=$T/pki/ca.pem" -o Stream.Namespace=demo \
    -o Output.Journal=yes -o Output.Stdout=yes -o Output.QueueMax=5 \
    -o Output.Identifier=dce-catalog \
    -o Stream.BackoffMinSec=50ms -o Stream.BackoffMaxSec=100ms \
    -o Stream.AuthBackoffSec=300ms >"$T/pipe" 2>"$T/err" &
DC=$!
PIDS="$PIDS $DC"

CONNECTED=$MID_CONNECTED DISCONNECTED=$MID_DISCONNECTED STOPPED=$MID_STOPPED
AUTH=$MID_AUTH_FAILED GAP=$MID_GAP QUEUE=$MID_QUEUE_FULL PARSE=$MID_PARSE_ERROR
STATS=$MID_STATS

check "a queue-full record while stdout is stalled" journal_wait "MESSAGE_ID=$QUEUE" 1 10
cat "$T/pipe" >/dev/null &
PIDS="$PIDS $!"
check "a gap record after the abort and the 401" journal_wait "MESSAGE_ID=$GAP" 1 15
check "the event after the gap" journal_wait DOCKERCLOUD_UUID=after-gap 1
kill -USR1 "$DC"
check "a statistics record on SIGUSR1" journal_wait "MESSAGE_ID=$STATS" 1
kill "$DC"
wait "$DC"
check "exit 0 after SIGTERM" test $? -eq 0
check "a disconnected-at-stop record" journal_wait "MESSAGE_ID=$STOPPED" 1
exec 3>&-

journal_json SYSLOG_IDENTIFIER=dce-catalog >"$T/records.json"
journal_sync
journalctl -D "$JOURNAL_DIR" -q --no-pager --all -x -o short-unix \
    SYSLOG_IDENTIFIER=dce-catalog >"$T/rendered" 2>"$T/rendered.err"
check "journalctl -x runs" test $? -eq 0
ids=$(sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$top_srcdir/systemd/dcevents.catalog" |
    grep -v -e "$MID_LOSS" -e "$MID_SPOOL_DAMAGED" -e "$MID_SPOOL_DROPPED" \
	-e "$MID_SPOOL_FAILED" -e "$MID_SPOOL_BACK")
# shellcheck disable=SC2086
"$PY" "$top_srcdir/tests/peers/catalog.py" "$top_srcdir/systemd/dcevents.catalog" \
    "$T/records.json" "$rendered" $ids >"$T/result"
rc=$?
cat "$T/result"
check "every record fits its catalog entry" test "$rc" -eq 0
# The statistics record's fields: the events of the stream, by type.
"$PY" - "$T/records.json" >"$T/stats" <<'PYEOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
st = [r for r in recs if r.get("MESSAGE_ID") == "51bc5d57502f4779af969ba552486a5d"][-1]
ev = [r for r in recs if "DOCKERCLOUD_TYPE" in r or
      r.get("MESSAGE_ID") == "60ac6ef7c5b84cd7a9261121a1bf88bd"]
print("fields", len([k for k in st if k.startswith("DCEVENTS_")]))
print("received", sum(int(v) for k, v in st.items()
                      if k.startswith("DCEVENTS_EVENTS_RECEIVED_TOTAL_"))
      - int(st["DCEVENTS_EVENTS_DUPLICATE_TOTAL"]))
print("written", len(ev))
print("journal", st["DCEVENTS_RECORDS_WRITTEN_TOTAL_JOURNAL"])
print("invalid", sum(int(v) for k, v in st.items()
                     if k.startswith("DCEVENTS_MESSAGES_INVALID_TOTAL_")))
PYEOF
sed 's/^/# statistics: /' "$T/stats"
check "the statistics record has a field for every series" \
    test "$(sed -n 's/^fields //p' "$T/stats")" -ge 70
check "...events received, by type, less the duplicates, are the events written" \
    test "$(sed -n 's/^received //p' "$T/stats")" = "$(sed -n 's/^written //p' "$T/stats")"
check "...the two invalid messages" test "$(sed -n 's/^invalid //p' "$T/stats")" -ge 2
finish
