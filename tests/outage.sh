#!/bin/sh
# Outputs that go away and come back lose nothing: journald stopped and
# restarted mid-stream, journald frozen (SIGSTOP) until the queue is full
# (reading pauses, keepalive suspended, reading resumes), an rsyslog TCP
# and a TLS collector stopped and restarted: every event the server sent
# arrives exactly once and in order.  SIGTERM with an output down reports
# the records left.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/journal.sh"
journal_enter "$@"
. "$top_srcdir/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/rsyslog.sh"

[ "${WITH_SYSTEMD:-yes}" = yes ] || skip "built without libsystemd"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
journal_start
rsyslog_start

# peer NAME COUNT INTERVAL: a server sending COUNT numbered events.
peer() {
	"$PY" - "$2" "$3" >"$T/$1.json" <<'PYEOF'
import json, sys
n, iv = int(sys.argv[1]), float(sys.argv[2])
msgs = [json.dumps({"type": "container", "action": "update",
                    "state": "Running", "uuid": "ev-%06d" % i,
                    "resource_uri": "/api/app/v1/t/container/c%d/" % i})
        for i in range(n)]
print(json.dumps([{"messages": msgs, "interval": iv, "after": "hold"}]))
PYEOF
	rm -f "$T/$1.port"
	"$PY" "$top_srcdir/tests/peers/wspeer.py" --portfile "$T/$1.port" \
	    --log "$T/$1.peer" --script "$T/$1.json" \
	    --cert "$T/pki/server.pem" --key "$T/pki/server.key" 2>/dev/null &
	PEER=$!
	PIDS="$PIDS $PEER"
	wait_until 5 test -s "$T/$1.port"
	PORT=$(cat "$T/$1.port")
}

dc() {
	name=$1
	shift
	"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o "Output.Identifier=$name" "$@" \
	    >"$T/$name.out" 2>"$T/$name.err" &
	DC=$!
	PIDS="$PIDS $DC"
}

# in_order FILE N [LOST]: FILE lists ev-000000 .. ev-N-1, each at most
# once, in order, missing at most LOST (default 0) consecutive ones.
in_order() {
	"$PY" - "$1" "$2" "${3:-0}" <<'PYEOF'
import sys
got = [l.strip() for l in open(sys.argv[1]) if l.strip()]
want = ["ev-%06d" % i for i in range(int(sys.argv[2]))]
missing = [i for i, w in enumerate(want) if w not in set(got)]
window = not missing or missing == list(range(missing[0], missing[-1] + 1))
if got != [w for w in want if w in set(got)] or len(missing) > int(sys.argv[3]) \
        or not window:
    dup = len(got) - len(set(got))
    missing = sorted(set(want) - set(got))
    print("# %d received, %d duplicates, %d missing (first %s), in order: %s"
          % (len(got), dup, len(missing), missing[:3], got == sorted(got)))
    sys.exit(1)
PYEOF
}

journal_uuids() {
	journal_json "SYSLOG_IDENTIFIER=$1" |
	    "$PY" -c 'import json, sys
for l in sys.stdin:
    r = json.loads(l)
    if "DOCKERCLOUD_UUID" in r: print(r["DOCKERCLOUD_UUID"])'
}

# 1. journald stopped and started again mid-stream.  The harness holds
# journald's sockets as systemd does (socket activation: they belong to
# the holder, not to journald), so they outlive it: while journald is
# stopped, what the daemon sends waits in the native socket (up to
# net.unix.max_dgram_qlen datagrams; past that, sd_journal_sendv blocks
# and the records wait in the daemon's queue), and the next journald reads
# it.  Nothing fails, so no outage is reported, and every event arrives
# exactly once, in order.
N=400
peer jr $N 0.005
dc jr -o Output.Journal=yes
check "journal restart: the first events arrive" journal_wait SYSLOG_IDENTIFIER=jr 100 10
journal_stop
at_stop=$(journal_count SYSLOG_IDENTIFIER=jr)
check "journal restart: stopped mid-stream ($at_stop of $((N + 1)) records in)" test "$at_stop" -lt $((N - 100))
sleep 1
# held_queue: ss's Recv-Q of the held native socket (for a datagram
# socket: the size of the first datagram waiting, 0 if none).
held_queue() {
	ss -xanp 2>/dev/null | awk -v p="pid=$JOURNAL_HOLDER," \
	    '$5 == "/run/systemd/journal/socket" && index($0, p) { print $3 }'
}
if command -v ss >/dev/null; then
	q=$(held_queue)
	check "journal restart: records wait in the held socket (first: ${q:-no} bytes)" test "${q:-0}" -gt 0
fi
journal_restart
check "journal restart: all $N events and the connected record" journal_wait SYSLOG_IDENTIFIER=jr $((N + 1)) 20
journal_uuids jr >"$T/jr.uuids"
check "journal restart: each event exactly once, in order" in_order "$T/jr.uuids" $N
check "journal restart: no outage reported (the sockets stayed)" lacks "$T/jr.err" "journal output is down"
kill "$DC"; wait "$DC"; kill "$PEER"

# The sockets really gone (journal_close, as when the socket units stop
# too): sd_journal_sendv would drop records silently, so the daemon looks
# for the socket first, reports the output down and keeps the records;
# when journald and its sockets are back, it says so and writes them all.
# (Closed mid-stream, the datagrams queued in the sockets would die with
# them; so the daemon starts while they are gone.)
N=200
journal_close
peer jg $N 0.005
dc jg -o Output.Journal=yes
check "journal gone: the outage is reported" wait_until 5 contains "$T/jg.err" "journal output is down"
check "journal gone: journald and new sockets come up" journal_restart
check "journal gone: the recovery is reported" wait_until 10 contains "$T/jg.err" "journal output is back"
check "journal gone: all $N events and the connected record" journal_wait SYSLOG_IDENTIFIER=jg $((N + 1)) 20
journal_uuids jg >"$T/jg.uuids"
check "journal gone: each event exactly once, in order" in_order "$T/jg.uuids" $N
kill "$DC"; wait "$DC"; kill "$PEER"

# 2. journald frozen: the queue fills, reading pauses and the keepalive
# waits; after SIGCONT everything arrives.
N=2000
peer jf $N 0
dc jf -o Output.Journal=yes -o Output.QueueMax=50 \
    -o Stream.PingIntervalSec=300ms -o Stream.PongTimeoutSec=300ms
check "frozen journal: the first events arrive" journal_wait SYSLOG_IDENTIFIER=jf 10 10
kill -STOP "$JOURNAL_PID"
check "frozen journal: reading pauses at QueueMax, said once" wait_until 5 contains "$T/jf.err" "records wait (QueueMax); reading paused"
sleep 1.5
check "frozen journal: the connection is kept (keepalive suspended)" test "$(grep -c '"ev":"connect"' "$T/jf.peer")" -eq 1
kill -CONT "$JOURNAL_PID"
check "frozen journal: reading resumes below half" wait_until 5 contains "$T/jf.err" "reading resumes"
check "frozen journal: all $N events" journal_wait SYSLOG_IDENTIFIER=jf $((N + 1)) 20
journal_uuids jf >"$T/jf.uuids"
check "frozen journal: each event once, in order" in_order "$T/jf.uuids" $N
paused=$(count "$T/jf.err" "reading paused")
resumed=$(count "$T/jf.err" "reading resumes")
check "frozen journal: each pause said once ($paused pauses, $resumed resumes)" test "$paused" -ge 1 -a "$paused" -eq "$resumed"
kill "$DC"; wait "$DC"; kill "$PEER"

# 3. rsyslog stopped and started again mid-stream.  Over RELP (plain and
# TLS) the collector answers each record once it has it, so every event
# arrives exactly once, in order.  Plain syslog over TCP and TLS has no
# answers: records the collector's kernel had taken while it was stopping
# die with it.  At 5 ms a record that is up to 10, one run of them, and
# nothing after.
for tr in relp relptls tcp tls; do
	N=400
	case $tr in
	tcp) target=tcp://127.0.0.1:$RSYSLOG_TCP_PORT lost=10 ;;
	tls) target=tls://localhost:$RSYSLOG_TLS_PORT lost=10 ;;
	relp) target=relp://127.0.0.1:$RSYSLOG_RELP_PORT lost=0 ;;
	relptls) target=relp+tls://localhost:$RSYSLOG_RELPTLS_PORT lost=0 ;;
	esac
	if [ -z "$RSYSLOG_RELP_PORT" ] && [ $lost = 0 ]; then
		echo "# $tr: skipped, rsyslog has no imrelp (rsyslog-relp)"
		continue
	fi
	peer "s$tr" $N 0.005
	dc "s$tr" -o Output.Journal=no -o "Output.Syslog=$target" \
	    -o "Output.SyslogCAFile=$T/pki/ca.pem"
	check "$tr collector restart: the first events arrive" rsyslog_wait "$T/rsyslog-$tr.json" 100 10
	rsyslog_stop
	sleep 1
	rsyslog_restart
	check "$tr collector restart: the events after the restart" rsyslog_wait "$T/rsyslog-$tr.json" $((N + 1 - lost)) 20
	wait_until 2 has_lines "$T/rsyslog-$tr.json" $((N + 1))
	"$PY" -c 'import json, re, sys
for l in open(sys.argv[1], errors="surrogateescape"):
    m = re.search(r"uuid=\"(ev-\d+)\"", json.loads(l).get("structured_data", ""))
    if m: print(m.group(1))' "$T/rsyslog-$tr.json" >"$T/s$tr.uuids"
	if [ $lost = 0 ]; then
		check "$tr collector restart: each event exactly once, in order" in_order "$T/s$tr.uuids" $N
	else
		check "$tr collector restart: each event at most once, in order, at most $lost lost at the stop" in_order "$T/s$tr.uuids" $N $lost
	fi
	kill "$DC"; wait "$DC"; kill "$PEER"
done

# 4. SIGTERM with the journal down: flushed for 2 s, the rest counted.
# journald stopped with its sockets held: past the few datagrams the
# socket queues, the writer blocks inside sd_journal_sendv and is left
# behind at the deadline.
peer term 50 0
journal_stop
dc term -o Output.Journal=yes
wait_until 5 grep -q '"ev":"sent"' "$T/term.peer"
start=$(now_ms)
kill "$DC"
wait "$DC"
rc=$?
took=$(( $(now_ms) - start ))
check "SIGTERM with the journal down: exit 0 within 2 s (${took} ms)" test "$rc" -eq 0 -a "$took" -lt 2000
check "SIGTERM with the journal down: the records left are counted" grep -qE "[0-9]+ records could not be written before the exit" "$T/term.err"
kill "$PEER"
finish
