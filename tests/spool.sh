#!/bin/sh
# [Spool] Mode=always against the websocket peer, with stdout as the output:
# (b) stdout a full pipe nobody reads, dcevents killed with SIGKILL, then
#     restarted with stdout healthy: the spooled events come out first, in
#     order, once, then the new ones; (d) sqlite3 sees them spooled before
#     the restart and deleted once written;
# (a) dcevents killed with SIGKILL in the middle of a stream into a slow
#     reader, restarted: every event the first run had handed on appears
#     across both runs' outputs, in order, duplicates bounded;
# (c) damaged spool files (garbage, truncated, a WAL without its database):
#     the daemon starts, the file is moved aside, a record says so;
# (e) after a restart, events the server sends again that were written
#     before it are not written again (the duplicate ring is persisted);
# (s) SIGTERM in a stream at full speed with small batches: exit 0 (under
#     ASan: the stop does not resume reading on the freed connection).
# Every check but (s) fails with Mode=no (SPOOL_MODE=no to see it).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v sqlite3 >/dev/null || skip "needs sqlite3 (apt-get install sqlite3)"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
MODE=${SPOOL_MODE:-always}
NA=300 NB=50 NC=3000
# Connection 1: (b)'s first run; 2: its second; 3: its third, where the
# server sends again events written before (the persisted duplicate
# ring); 4: (a)'s first run; then nothing new.
"$PY" - "$NA" "$NB" "$NC" >"$T/script.json" <<'PYEOF'
import json, sys
def ev(p, i):
    return json.dumps({"type": "container", "action": "update",
                       "state": "Running", "uuid": "%s-%05d" % (p, i)})
na, nb, nc = map(int, sys.argv[1:])
print(json.dumps([
    {"messages": [ev("a", i) for i in range(na)]},
    {"messages": [ev("b", i) for i in range(nb)]},
    {"messages": [ev("a", i) for i in range(10)] + [ev("d", 0)]},
    {"messages": [m for i in range(nc) for m in
                  ([ev("c", i)] + ([{"sleep": 0.05}] if i % 200 == 199 else []))]},
    {"messages": []}]))
PYEOF
wspeer_start "$T/script.json"

dc() {
	"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=no \
	    -o Output.Stdout=yes -o "Spool.Mode=$MODE" -v "$@" &
	DC=$!
	PIDS="$PIDS $DC"
}
events() { [ "$(count "$1" "event: ")" -ge "$2" ]; }
rows() { sqlite3 "$1" "SELECT count(*) FROM events" 2>/dev/null; }
rows_are() { [ "$(rows "$1")" = "$2" ]; }

# (b) stdout is a pipe, full, its reader stopped.
stopped_reader "$T/pipe" /dev/null full
mkdir "$T/b"
dc -o "Spool.Path=$T/b/spool.db" >"$T/pipe" 2>"$T/b/err1"
exec 3>&-
check "(b) the first run handed on all $NA events" \
    wait_until 5 events "$T/b/err1" "$NA"
sleep 0.3
kill -KILL "$DC"
wait "$DC" 2>/dev/null
kill -KILL "$READER"
check "(d) sqlite3: the $NA unwritten events are in the spool" \
    rows_are "$T/b/spool.db" "$NA"
dc -o "Spool.Path=$T/b/spool.db" >"$T/b/out" 2>"$T/b/err2"
check "(b) the restart wrote the spooled and the new events" \
    wait_until 5 has_lines "$T/b/out" $((NA + NB))
check "(b) the spooled events first, in order, once, then the new ones" \
    "$PY" - "$T/b/out" "$NA" "$NB" <<'PYEOF'
import json, sys
got = [json.loads(l)["uuid"] for l in open(sys.argv[1])]
want = ["a-%05d" % i for i in range(int(sys.argv[2]))] + \
    ["b-%05d" % i for i in range(int(sys.argv[3]))]
if got != want:
    print("# got %d lines, first %s" % (len(got), got[:3]))
sys.exit(got != want)
PYEOF
check "(d) sqlite3: written events are deleted from the spool" \
    wait_until 3 rows_are "$T/b/spool.db" 0
check "(d) sqlite3: stdout's position is the last event's row" \
    test "$(sqlite3 "$T/b/spool.db" \
	"SELECT id FROM positions WHERE output = 'stdout'" 2>/dev/null)" \
    = $((NA + NB))
kill "$DC"
wait "$DC"
check "(b) exit 0 at SIGTERM (and no leak under ASan)" test $? -eq 0
check "(d) the commit time is measured" contains "$T/b/err2" " us at most"
grep -h " us at most" "$T/b/err2" | sed 's/^/# /'
dc -o "Spool.Path=$T/b/spool.db" >"$T/b/out3" 2>"$T/b/err3"
wait_until 5 contains "$T/b/out3" '"d-00000"'
check "(e) events written before the restart, sent again, are not written" \
    test "$(grep -o '"uuid":"[a-z]-[0-9]*"' "$T/b/out3" | tr '\n' ' ')" \
    = '"uuid":"d-00000" '
kill "$DC"
wait "$DC"

# (a) a slow reader (about 200 lines a second, a pipe of 4 KiB), SIGKILL
# in mid-stream.
mkdir "$T/a"
mkfifo "$T/a/pipe"
"$PY" -c '
import fcntl, os, select, sys, time
# Opened read-write: the pipe is made small (4 KiB) before dcevents opens
# it; the reader ends after 1 s without data (dcevents was killed).
fd = os.open(sys.argv[2], os.O_RDWR)
fcntl.fcntl(fd, 1031, 4096)  # F_SETPIPE_SZ
open(sys.argv[3], "w").close()
out, buf = open(sys.argv[1], "wb"), b""
while select.select([fd], [], [], 1)[0]:
    buf += os.read(fd, 4096)
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        out.write(line + b"\n")
        out.flush()
        time.sleep(0.005)
out.write(buf)
' "$T/a/out1" "$T/a/pipe" "$T/a/ready" &
READER=$!
PIDS="$PIDS $READER"
wait_until 5 test -e "$T/a/ready"
dc -o "Spool.Path=$T/a/spool.db" >"$T/a/pipe" 2>"$T/a/err1"
wait_until 10 has_lines "$T/a/out1" 150
kill -KILL "$DC"
wait "$DC" 2>/dev/null
wait "$READER"
K=$(count "$T/a/err1" "event: ")
echo "# the first run handed on $K events, wrote $(wc -l <"$T/a/out1")"
dc -o "Spool.Path=$T/a/spool.db" >"$T/a/out2" 2>"$T/a/err2"
check "(a) the first run had handed on more than it wrote" \
    test "$K" -gt "$(wc -l <"$T/a/out1")"
check "(a) the restart writes what the first run had read" \
    wait_until 10 has_lines "$T/a/out2" $((K - $(wc -l <"$T/a/out1")))
sleep 0.5
check "(a) every event handed on ($K) is out across both runs, in order" \
    "$PY" - "$T/a/out1" "$T/a/out2" "$K" <<'PYEOF'
import json, sys
# The first run's last line may be torn by the SIGKILL.
l1 = open(sys.argv[1]).read().split("\n")
l1 = [l for l in l1 if l.endswith("}")]
got = [json.loads(l)["uuid"] for l in l1 + list(open(sys.argv[2]))]
k = int(sys.argv[3])
first, seen = [], set()
for u in got:
    if u not in seen:
        seen.add(u)
        first.append(u)
dups = len(got) - len(first)
print("# %d lines, %d distinct, %d duplicates" % (len(got), len(first), dups))
ok = k > 0 and len(first) >= k and \
    first == ["c-%05d" % i for i in range(len(first))] and dups <= 1000
sys.exit(not ok)
PYEOF
kill "$DC"
wait "$DC"

# (c) damaged files.
mkdir "$T/c1" "$T/c2" "$T/c3"
head -c 20000 /dev/urandom >"$T/c1/spool.db"
cp "$T/b/spool.db" "$T/c2/spool.db"
sqlite3 "$T/c2/spool.db" "INSERT INTO events(msg) SELECT randomblob(3000) \
    FROM (WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n \
    WHERE x < 50) SELECT x FROM n); PRAGMA wal_checkpoint(TRUNCATE);" \
    >/dev/null 2>&1
truncate -s 16384 "$T/c2/spool.db"
head -c 40000 /dev/urandom >"$T/c3/spool.db-wal"
for c in c1 c2 c3; do
	dc -o "Spool.Path=$T/$c/spool.db" >"$T/$c/out" 2>"$T/$c/err"
	check "($c) the damaged spool is reported" \
	    wait_for "$T/$c/err" "was damaged or unreadable: moved to"
	check "($c) ... moved aside" \
	    sh -c "ls '$T/$c'/spool.db.bad-* >/dev/null 2>&1"
	check "($c) ... and the daemon runs on a new spool" \
	    wait_until 3 rows_are "$T/$c/spool.db" 0
	kill -0 "$DC" 2>/dev/null || fail "($c) the daemon stopped"
	kill "$DC"
	wait "$DC"
done

# (s) SIGTERM in a stream at full speed, a small MaxBytes (small batches,
# so that reading is often paused for the committer): the stop resumes
# reading after the connection is gone; exit 0 each time (under ASan: no
# use after free of the connection).  A peer of its own: NS runs of NE.
NS=4 NE=15000
"$PY" - "$NS" "$NE" >"$T/script-s.json" <<'PYEOF'
import json, sys
ns, ne = map(int, sys.argv[1:])
ev = [json.dumps({"type": "container", "action": "update",
                  "state": "Running", "uuid": "s-%05d" % i}) for i in range(ne)]
print(json.dumps([{"messages": ev}] * ns + [{"messages": []}]))
PYEOF
wspeer_start "$T/script-s.json"
mkdir "$T/s"
for i in $(seq "$NS"); do
	dc -o "Spool.Path=$T/s/spool.db" -o Spool.MaxBytes=1M \
	    >"$T/s/out$i" 2>"$T/s/err$i"
	wait_until 10 has_lines "$T/s/out$i" 5000
	kill "$DC"
	wait "$DC"
	check "(s) SIGTERM in a stream at full speed, run $i: exit 0" \
	    test $? -eq 0
done
finish
