#!/bin/sh
# [Spool] Mode=overflow, the bounds and the failures, against the websocket
# peer, a private journald and stdout pipes:
# (o) overflow: stdout a full pipe nobody reads, QueueMax=100: the records
#     go to the spool (sqlite3 sees them, the README's queries work on it),
#     the stream is not paused; SIGTERM, then a restart with stdout healthy:
#     every event once, in order, the spooled ones before the new ones;
# (k) 100,000 records queued in memory (stdout stuck) at SIGTERM: exit
#     within 2 s, all of them in the spool, all written after a restart;
# (h) Mode=always, SIGTERM while a healthy but slow stdout still has
#     records queued: the restart writes nothing again (the positions are
#     stored after the final flush);
# (p) WhenFull=pause with MaxBytes=256K: reading pauses at the bound, the
#     files stay within it, reading resumes once the output drains, every
#     event once, in order;
# (d) WhenFull=drop-oldest: the oldest spooled records are dropped, one
#     loss record in the journal counts them, the rest come in order;
# (f) the spool on a full 1 MiB tmpfs: one record in the journal, records
#     go on in memory, and once space is freed one record says the spool
#     is used again, and it is;
# (c) a damaged spool's record is in the journal, with SPOOL_MOVED_TO;
# (t) Mode=always, 50,000 spooled events and QueueMax=100: the replay
#     hands on a batch at a time, as the queue has room;
# (r) a reload: Mode and Path change at the next start (said once), -t
#     shows the spool.
# SPOOL_ONLY="o k" runs some sections only.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/journal.sh"
journal_enter "$@"
. "$top_srcdir/tests/lib/lib.sh"

[ "${WITH_SYSTEMD:-yes}" = yes ] || skip "built without libsystemd"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v sqlite3 >/dev/null || skip "needs sqlite3 (apt-get install sqlite3)"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
journal_start
NK=${SPOOL_NK:-100000}
# peer SECTION: a websocket peer of its own for the section: its first
# connection gets the events of the section (ev() below), then nothing.
peer() {
	[ -n "${PEER:-}" ] && kill "$PEER" 2>/dev/null
	"$PY" - "$1" "$NK" >"$T/script-$1.json" <<'PYEOF'
import json, sys
def ev(p, i, pad=0):
    e = {"type": "container", "action": "update", "state": "Running",
         "uuid": "%s-%06d" % (p, i)}
    if pad:
        e["pad"] = "x" * pad
    return json.dumps(e)
sec, nk = sys.argv[1], int(sys.argv[2])
first = {
    "o": {"messages": [ev("o", i) for i in range(2000)]},
    "n": {"messages": [ev("n", i) for i in range(50)]},
    "k": {"messages": [ev("k", i) for i in range(nk)], "together": True},
    "h": {"messages": [ev("h", i, 200) for i in range(3000)]},
    "p": {"messages": [ev("p", i, 1000) for i in range(1000)]},
    "d": {"messages": [ev("d", i, 1000) for i in range(1000)]},
    "f": {"messages": [m for i in range(3000) for m in [ev("f", i, 1000)] +
                       ([{"sleep": 0.1}] if i % 100 == 99 else [])]},
}.get(sec, {"messages": []})
print(json.dumps([first, {"messages": []}]))
PYEOF
	wspeer_start "$T/script-$1.json"
	echo "# $(date +%T) ($1)"
}
only() { [ -z "${SPOOL_ONLY:-}" ] || [ "${SPOOL_ONLY#*$1}" != "$SPOOL_ONLY" ]; }

dc() {
	mode=$1
	shift
	"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Stdout=yes \
	    -o "Spool.Mode=$mode" "$@" &
	DC=$!
	PIDS="$PIDS $DC"
}
rows() { sqlite3 "$1" "SELECT count(*) FROM spill" 2>/dev/null; }
rows_are() { [ "$(rows "$1")" = "$2" ]; }
rows_at_least() { [ "$(rows "$1")" -ge "$2" ]; }
# in_order FILE PREFIX N [M]: FILE's events are PREFIX-0..N-1 once, in
# order (then M events n-...); with N = -DROPPED, some missing at the start
# but the rest increasing.
in_order() {
	"$PY" - "$@" <<'PYEOF'
import json, sys
f, p, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = int(sys.argv[4]) if len(sys.argv) > 4 else 0
got = []
for l in open(f):
    try:
        got.append(json.loads(l)["uuid"])
    except Exception:
        pass
want = ["%s-%06d" % (p, i) for i in range(n)] + \
    ["n-%06d" % i for i in range(m)]
if got != want:
    print("# got %d events, %d distinct; first %s; want %d" %
          (len(got), len(set(got)), got[:2], len(want)))
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            print("# first difference at %d: %s, want %s" % (i, a, b))
            break
sys.exit(got != want)
PYEOF
}
# read_at_least FILE N: dcevents -v said it handed on N events.
read_at_least() { [ "$(grep -c "event: " "$1")" -ge "$2" ]; }
# out_at_least FILE PREFIX N: N events PREFIX-... written to FILE.
out_at_least() { [ "$(grep -c "\"$2-" "$1")" -ge "$3" ]; }
took_ms() { awk -v t0="$1" -v now="$(date +%s.%N)" 'BEGIN { printf "%d", (now - t0) * 1000 }'; }

# (o) overflow, stdout stuck.
if only o; then
peer o
mkdir "$T/o"
stopped_reader "$T/o/pipe" /dev/null full
dc overflow -o Output.Journal=no -o Output.QueueMax=100 \
    -o "Spool.Path=$T/o/spool.db" >"$T/o/pipe" 2>"$T/o/err1"
exec 3>&-
check "(o) the records past QueueMax go to the spool" \
    wait_until 10 rows_at_least "$T/o/spool.db" 1800
check "(o) ... and the stream is not paused" lacks "$T/o/err1" "reading paused"
# The README's queries, as an operator would type them, on this spool.
sed -n '/^```sh spool/,/^```/p' "$top_srcdir/README.md" | grep -v '^```' |
    sed "s|/var/lib/private/dcevents/spool.db|$T/o/spool.db|" >"$T/o/queries"
check "(o) the README has sqlite3 queries" grep -q sqlite3 "$T/o/queries"
sh -e "$T/o/queries" >"$T/o/q.out" 2>"$T/o/q.err"
check "(o) the README's sqlite3 queries work on a real spool" \
    test $? -eq 0 -a ! -s "$T/o/q.err"
check "(o) ... and show the spooled records" grep -q '^stdout|' "$T/o/q.out"
sed 's/^/# /' "$T/o/q.out" | head -5
kill "$DC"
wait "$DC"
check "(o) exit 0 at SIGTERM with the output stuck" test $? -eq 0
kill -KILL "$READER"
check "(o) nothing is lost at stop" lacks "$T/o/err1" "could not be written"
peer n
dc overflow -o Output.Journal=no -o "Spool.Path=$T/o/spool.db" \
    >"$T/o/out" 2>"$T/o/err2"
check "(o) the restart writes the spooled events and the new ones" \
    wait_until 10 has_lines "$T/o/out" 2050
sleep 0.3
check "(o) each once, in order, the spooled first" in_order "$T/o/out" o 2000 50
check "(o) the spool is empty after" wait_until 3 rows_are "$T/o/spool.db" 0
kill "$DC"
wait "$DC"
grep -h "us at most" "$T/o/err1" | sed 's/^/# spilling: /'
fi

# (k) $NK records in memory at SIGTERM.
if only k; then
peer k
mkdir "$T/k"
stopped_reader "$T/k/pipe" /dev/null full
dc overflow -o Output.Journal=no -o Output.QueueMax=1000000 \
    -o Output.QueueMaxBytes=1G -o "Spool.Path=$T/k/spool.db" -v \
    >"$T/k/pipe" 2>"$T/k/err1"
exec 3>&-
check "(k) $NK events read, queued in memory" \
    wait_until 30 read_at_least "$T/k/err1" "$NK"
check "(k) ... none spooled yet" test "$(rows "$T/k/spool.db")" = 0
t0=$(date +%s.%N)
kill "$DC"
wait "$DC"
rc=$?
ms=$(took_ms "$t0")
kill -KILL "$READER"
# Under the sanitizers, the walk over 100,000 records is much slower.
limit=2000
[ "${WITH_SANITIZERS:-no}" = yes ] && limit=20000
check "(k) exit 0 within 2 s of SIGTERM ($ms ms)" test "$rc" -eq 0 -a "$ms" -lt "$limit"
check "(k) all $NK records kept in the spool" test "$(rows "$T/k/spool.db")" -ge "$NK"
grep -h "us at most" "$T/k/err1" | sed 's/^/# /'
peer none
dc overflow -o Output.Journal=no -o "Spool.Path=$T/k/spool.db" \
    >"$T/k/out" 2>"$T/k/err2"
check "(k) the restart writes them" wait_until 30 has_lines "$T/k/out" "$NK"
sleep 0.3
check "(k) each once, in order" in_order "$T/k/out" k "$NK"
kill "$DC"
wait "$DC"
grep -h "us at most" "$T/k/err2" | sed 's/^/# the replay: /'

fi

# (h) Mode=always, stdout a pipe whose reader is stopped until SIGTERM,
# records queued: the final flush writes them, the restart not again.
if only h; then
peer h
mkdir "$T/h"
stopped_reader "$T/h/pipe" "$T/h/out1"
dc always -o Output.Journal=no -o "Spool.Path=$T/h/spool.db" -v \
    >"$T/h/pipe" 2>"$T/h/err1"
wait_until 10 read_at_least "$T/h/err1" 3000
queued=$((3000 - $(wc -l <"$T/h/out1")))
exec 3>&-
kill "$DC"
kill -CONT "$READER"
wait "$DC"
wait "$READER"
check "(h) records were queued at SIGTERM ($queued)" test "$queued" -gt 100
check "(h) the final flush wrote all 3000" in_order "$T/h/out1" h 3000
dc always -o Output.Journal=no -o "Spool.Path=$T/h/spool.db" \
    >"$T/h/out2" 2>"$T/h/err2"
wait_for "$T/h/err2" "connected" >/dev/null
sleep 1
check "(h) the restart writes none of them again" test ! -s "$T/h/out2"
kill "$DC"
wait "$DC"

fi

# (p) WhenFull=pause, MaxBytes=256K; Mode=always and stdout stuck.
if only p; then
peer p
mkdir "$T/p"
stopped_reader "$T/p/pipe" "$T/p/out" full
dc always -o Output.Journal=no -o "Spool.Path=$T/p/spool.db" \
    -o Spool.MaxBytes=256K -o Spool.WhenFull=pause \
    >"$T/p/pipe" 2>"$T/p/err"
exec 3>&-
check "(p) reading pauses at MaxBytes" \
    wait_for "$T/p/err" "MaxBytes=262144 reached: reading paused"
sleep 0.5
size=$(($(stat -c %s "$T/p/spool.db") + $(stat -c %s "$T/p/spool.db-wal")))
check "(p) the database and its WAL within MaxBytes ($size bytes)" \
    test "$size" -le 262144
kill -CONT "$READER"
check "(p) reading resumes once the output drains" \
    wait_for "$T/p/err" "below MaxBytes again: reading resumes"
sleep 0.5
wait_until 10 out_at_least "$T/p/out" p 1000
check "(p) every event once, in order" in_order "$T/p/out" p 1000
kill "$DC"
wait "$DC"

fi

# (d) WhenFull=drop-oldest; overflow, stdout stuck, the journal healthy.
if only d; then
peer d
mkdir "$T/d"
stopped_reader "$T/d/pipe" "$T/d/out" full
dc overflow -o Output.Journal=yes -o Output.Identifier=spoold \
    -o Output.QueueMax=50 -o "Spool.Path=$T/d/spool.db" \
    -o Spool.MaxBytes=256K -o Spool.WhenFull=drop-oldest \
    >"$T/d/pipe" 2>"$T/d/err"
exec 3>&-
check "(d) the journal gets every event meanwhile" \
    journal_wait SYSLOG_IDENTIFIER=spoold 1000 10 DOCKERCLOUD_TYPE=container
check "(d) the stream is not paused" lacks "$T/d/err" "reading paused"
kill -CONT "$READER"
check "(d) once the output drains, a loss record in the journal" \
    journal_wait SYSLOG_IDENTIFIER=spoold 1 10 \
	    MESSAGE_ID=2340ebd085994d41aa383b4ce2e064c9
sleep 0.5
journal_json SYSLOG_IDENTIFIER=spoold \
    MESSAGE_ID=2340ebd085994d41aa383b4ce2e064c9 >"$T/d/loss.json"
dropped=$(sed -n 's/.*"SPOOL_DROPPED":"\([0-9]*\)".*/\1/p' "$T/d/loss.json")
check "(d) ... one record, that counts them ($dropped)" \
    test "$(wc -l <"$T/d/loss.json")" = 1 -a "${dropped:-0}" -gt 0
wait_until 10 out_at_least "$T/d/out" d $((1000 - dropped))
sleep 0.5
check "(d) the others come once, in order, the dropped ones missing" \
    "$PY" - "$T/d/out" "$dropped" <<'PYEOF'
import json, sys
got = [json.loads(l)["uuid"] for l in open(sys.argv[1]) if l.startswith("{")]
d = int(sys.argv[2])
n = [int(u[2:]) for u in got]
print("# %d written, %d dropped" % (len(n), d))
sys.exit(not (len(n) == 1000 - d and n == sorted(set(n))))
PYEOF
kill "$DC"
wait "$DC"

fi

# (f) the spool on a full tmpfs of 1 MiB (this test's own mount namespace).
if only f; then
peer f
mkdir "$T/f" "$T/f/disk"
if mount -t tmpfs -o size=1m tmpfs "$T/f/disk"; then
	head -c 700000 /dev/zero >"$T/f/disk/filler"
	stopped_reader "$T/f/pipe" "$T/f/out" full
	dc overflow -o Output.Journal=yes -o Output.Identifier=spoolf \
	    -o Output.QueueMax=1000 -o "Spool.Path=$T/f/disk/spool.db" \
	    -o Spool.MaxBytes=512K \
	    >"$T/f/pipe" 2>"$T/f/err"
	exec 3>&-
	check "(f) a full disk: one record in the journal" \
	    journal_wait SYSLOG_IDENTIFIER=spoolf 1 10 \
		    MESSAGE_ID=2c9da980968c40bcbc2f8a32808b26b5
	check "(f) ... the records go on in memory (the journal too)" \
	    journal_wait SYSLOG_IDENTIFIER=spoolf 1000 10 DOCKERCLOUD_TYPE=container
	sleep 2.5
	check "(f) ... one record only, while it stays full" test "$(journal_count \
	    SYSLOG_IDENTIFIER=spoolf MESSAGE_ID=2c9da980968c40bcbc2f8a32808b26b5)" = 1
	check "(f) ... and none saying it is used again (a probe fits where a spill does not)" \
	    test "$(journal_count SYSLOG_IDENTIFIER=spoolf \
		MESSAGE_ID=33ab4ad4e72a4417bf253413f58f8e25)" = 0
	before=$(rows "$T/f/disk/spool.db")
	rm "$T/f/disk/filler"
	check "(f) space freed: one record says the spool is used again" \
	    journal_wait SYSLOG_IDENTIFIER=spoolf 1 5 \
		    MESSAGE_ID=33ab4ad4e72a4417bf253413f58f8e25
	check "(f) ... and it is ($before rows before)" \
	    wait_until 10 rows_at_least "$T/f/disk/spool.db" $((before + 50))
	kill -CONT "$READER"
	wait_until 20 out_at_least "$T/f/out" f 3000
	check "(f) every event once, in order" in_order "$T/f/out" f 3000
	kill "$DC"
	wait "$DC"
	umount "$T/f/disk"
else
	echo "# cannot mount a tmpfs: (f) not run"
fi

fi

# (c) a damaged spool: the record is in the journal.
if only c; then
peer c
mkdir "$T/c"
head -c 20000 /dev/urandom >"$T/c/spool.db"
dc always -o Output.Journal=yes -o Output.Identifier=spoolc \
    -o "Spool.Path=$T/c/spool.db" >/dev/null 2>"$T/c/err"
check "(c) the damaged spool's record is in the journal" \
    journal_wait SYSLOG_IDENTIFIER=spoolc 1 5 \
	    MESSAGE_ID=19baf2d41ff24376853a84cd6fecc884
journal_json SYSLOG_IDENTIFIER=spoolc >"$T/c/j.json"
check "(c) ... with where the file went" \
    grep -q "\"SPOOL_MOVED_TO\":\"$T/c/spool.db.bad-" "$T/c/j.json"
kill "$DC"
wait "$DC"
fi

# (t) Mode=always, a spool of 50,000 events, restarted with stdout stuck
# and QueueMax=100: the replay hands on batches as the queue has room,
# not the whole spool at once; once stdout reads, all in order.
if only t; then
peer none
mkdir "$T/t"
dc always -o Output.Journal=no -o "Spool.Path=$T/t/spool.db" >/dev/null 2>"$T/t/err0"
wait_for "$T/t/err0" "connected to" >/dev/null
kill "$DC"
wait "$DC"
sqlite3 "$T/t/spool.db" "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL
    SELECT x + 1 FROM n WHERE x < 49999) INSERT INTO events(msg)
    SELECT CAST(json_object('type', 'container', 'uuid',
    printf('t-%06d', x)) AS BLOB) FROM n"
stopped_reader "$T/t/pipe" "$T/t/out" full
dc always -o Output.Journal=no -o Output.QueueMax=100 \
    -o "Spool.Path=$T/t/spool.db" -v >"$T/t/pipe" 2>"$T/t/err"
exec 3>&-
check "(t) the replay stops at QueueMax" wait_for "$T/t/err" "(QueueMax); reading paused"
sleep 1
n=$(grep -c "event: " "$T/t/err")
check "(t) ... having handed on a batch, not the spool ($n events)" \
    test "$n" -lt 1000
kill -CONT "$READER"
check "(t) once stdout reads, all 50,000, in order" \
    wait_until 20 out_at_least "$T/t/out" t 50000
sleep 0.3
check "(t) ... each once, in order" in_order "$T/t/out" t 50000
kill "$DC"
wait "$DC"
grep -h "us at most" "$T/t/err" | sed 's/^/# the replay of 50,000: /'
fi

# (r) a reload: Mode and Path at the next start (said once), the daemon
# runs on as it was; -t shows the spool.
if only r; then
peer r
mkdir "$T/r"
rconf() {
	printf '[Stream]\nURL=wss://localhost:%s/\nCAFile=%s\n[Output]\nJournal=no\nStdout=yes\n[Spool]\nMode=%s\nPath=%s\n' \
	    "$PORT" "$T/pki/ca.pem" "$1" "$T/r/spool.db" >"$T/r/dcevents.conf"
}
rconf overflow
"$DCEVENTS" -t -c "$T/r/dcevents.conf" >"$T/r/t.out" 2>&1
check "(r) -t shows the spool's settings" sh -c "grep -qx 'Mode=overflow' '$T/r/t.out' &&
    grep -qx 'Path=$T/r/spool.db' '$T/r/t.out' && grep -qx 'WhenFull=pause' '$T/r/t.out'"
rconf no
"$DCEVENTS" -c "$T/r/dcevents.conf" >"$T/r/out" 2>"$T/r/err" &
DC=$!
PIDS="$PIDS $DC"
wait_for "$T/r/err" "connected to" >/dev/null
rconf always
kill -HUP "$DC"
check "(r) Mode=no -> always on SIGHUP: takes effect at the next start" \
    wait_for "$T/r/err" "take effect at the next start; running on with Mode=no"
check "(r) ... the reload is done" wait_for "$T/r/err" "configuration reloaded"
check "(r) ... no spool was opened" test ! -e "$T/r/spool.db"
rconf no
kill -HUP "$DC"
wait_until 5 test "$(grep -c "configuration reloaded" "$T/r/err")" -ge 2
check "(r) always -> no again: reloaded, no more warning" \
    test "$(grep -c "take effect at the next start" "$T/r/err")" = 1
check "(r) ... and the daemon runs on" kill -0 "$DC"
kill "$DC"
wait "$DC"
check "(r) exit 0" test $? -eq 0
fi

# The spool's records fit their catalog entries (tests/peers/catalog.py;
# the rendering by journalctl -x is tests/catalog.sh's).
journal_json MESSAGE_ID=2340ebd085994d41aa383b4ce2e064c9 \
    MESSAGE_ID=2c9da980968c40bcbc2f8a32808b26b5 \
    MESSAGE_ID=33ab4ad4e72a4417bf253413f58f8e25 \
    MESSAGE_ID=19baf2d41ff24376853a84cd6fecc884 >"$T/records.json"
ids=
for id in 2340ebd085994d41aa383b4ce2e064c9 2c9da980968c40bcbc2f8a32808b26b5 \
    33ab4ad4e72a4417bf253413f58f8e25 19baf2d41ff24376853a84cd6fecc884; do
	grep -q "$id" "$T/records.json" && ids="$ids $id"
done
if [ -n "$ids" ]; then
	# shellcheck disable=SC2086
	"$PY" "$top_srcdir/tests/peers/catalog.py" \
	    "$top_srcdir/systemd/dcevents.catalog" "$T/records.json" - $ids \
	    >"$T/catalog"
	check "the spool's records fit their catalog entries ($ids)" test $? -eq 0
	grep -v "^ok" "$T/catalog"
fi
kill "$PEER"
finish
