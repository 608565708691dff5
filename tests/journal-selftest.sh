#!/bin/sh
# The private journald harness (journal.sh) itself: records with fields
# sent natively come back exactly, host and test journals stay apart, and
# records written after a restart are read too.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/journal.sh"
journal_enter "$@"
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY"

t0=$(now_ms)
journal_start
echo "# journald up in $(( $(now_ms) - t0 )) ms"

run="$$-$(now_ms)"
# send MESSAGE [FIELD=VALUE...]: one record over the native protocol
# (python3-systemd, i.e. sd_journal_sendv, or by hand without it).
send() {
	"$PY" - "$@" <<'EOF'
import sys
msg, fields = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
try:
    from systemd import journal
    journal.send(msg, **fields)
except ImportError:
    import socket, struct
    buf = b""
    for k, v in [("MESSAGE", msg)] + list(fields.items()):
        v = v.encode()
        buf += k.encode() + b"\n" + struct.pack("<Q", len(v)) + v + b"\n"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(buf, "/run/systemd/journal/socket")
EOF
}

# expect FILE COUNT: FILE holds COUNT records of this run, exactly as sent.
expect() {
	"$PY" - "$@" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
want = {"DOCKERCLOUD_TYPE": "container", "PRIORITY": "5", "FOO": "a\nb"}
ok = len(recs) == int(sys.argv[2])
for i, r in enumerate(recs):
    if r.get("MESSAGE") != "hello %d" % (i + 1):
        ok = False
    for k, v in want.items():
        if r.get(k) != v:
            ok = False
if not ok:
    print("# got:", json.dumps(recs, indent=1).replace("\n", "\n# "))
sys.exit(0 if ok else 1)
EOF
}

nl='
'
for i in 1 2 3; do
	send "hello $i" DOCKERCLOUD_TYPE=container PRIORITY=5 "FOO=a${nl}b" \
	    "SELFTEST_RUN=$run"
done
check "3 records arrive" journal_wait "SELFTEST_RUN=$run" 3
journal_json "SELFTEST_RUN=$run" >"$T/j1.json"
check "MESSAGE, PRIORITY, DOCKERCLOUD_TYPE, multi-line FOO come back" \
    expect "$T/j1.json" 3
check "matches combine (3 with PRIORITY=5, 0 with PRIORITY=4)" \
    test "$(journal_count "SELFTEST_RUN=$run" PRIORITY=5)/$(journal_count \
    "SELFTEST_RUN=$run" PRIORITY=4)" = 3/0

# Apart from the host: its mount namespace (PID 1's) neither reaches our
# journald nor receives our records.
if command -v nsenter >/dev/null &&
    [ "$(readlink /proc/1/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ]; then
	host() { nsenter --mount=/proc/1/ns/mnt "$@"; }
	host "$PY" -c 'from systemd import journal; journal.send("host",
	    SELFTEST_RUN="'"$run"'")' 2>/dev/null
	sleep 0.2
	check "a host process does not reach the private journald" \
	    test "$(journal_count "SELFTEST_RUN=$run" MESSAGE=host)" = 0
	check "the host's journal holds none of our records" test "$(host \
	    journalctl -q --no-pager -o json "SELFTEST_RUN=$run" 2>/dev/null |
	    wc -l)" = 0
else
	echo "# no nsenter or no host namespace: isolation not checked"
fi

# An outage, then a restart on the same journal and the same sockets,
# which the harness holds as systemd does: a record sent while journald
# is down waits in the native socket for the next journald.
check "journald runs on the held sockets (socket activation)" _journal_adopted
journal_stop
check "journal_stop leaves no journald" test -z "$JOURNAL_PID"
check "journal_stop keeps the sockets" test -S "$JOURNAL_SOCKET"
send "hello 4" DOCKERCLOUD_TYPE=container PRIORITY=5 "FOO=a${nl}b" \
    "SELFTEST_RUN=$run"
check "a record sent while journald is down is taken" test $? -eq 0
check "journald comes back" journal_restart
send "hello 5" DOCKERCLOUD_TYPE=container PRIORITY=5 "FOO=a${nl}b" \
    "SELFTEST_RUN=$run"
check "the records sent during and after the stop arrive" \
    journal_wait "SELFTEST_RUN=$run" 5
journal_json "SELFTEST_RUN=$run" >"$T/j2.json"
check "old and new records are read back, nothing lost or extra" \
    expect "$T/j2.json" 5

# The sockets gone too (journal_close): new ones on the next start.
journal_close
check "journal_close removes the sockets" test ! -e "$JOURNAL_SOCKET"
check "journald comes back on new sockets" journal_restart
send "hello 6" DOCKERCLOUD_TYPE=container PRIORITY=5 "FOO=a${nl}b" \
    "SELFTEST_RUN=$run"
check "a record sent after that arrives" journal_wait "SELFTEST_RUN=$run" 6
journal_json "SELFTEST_RUN=$run" >"$T/j3.json"
check "all records are read back" expect "$T/j3.json" 6
check "journald wrote nothing to stderr" test ! -s "$JOURNAL_LOG"

finish
