#!/bin/sh
# The private rsyslogd harness (rsyslog.sh), local side: an RFC 3164
# datagram to /dev/log comes back parsed, tag and timestamp as sent;
# logger reaches it; the host's /dev/log is untouched and host processes
# do not reach ours; /dev/log goes with a stop and comes back.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/rsyslog.sh"
rsyslog_local_enter "$@"
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY"

# devlog [nsenter...]: how /dev/log looks (type, device:inode, mtime) or
# "absent", here or on the host side (the namespace we left, our parent's
# or PID 1's).
devlog() {
	"$@" stat -c '%F %d:%i %Y' /dev/log 2>/dev/null || echo absent
}
host=
for p in $PPID 1; do
	[ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$DCEVENTS_RSYSLOG_NS" ] ||
	    continue
	command -v nsenter >/dev/null && host="nsenter --mount=/proc/$p/ns/mnt"
	break
done
if [ -n "$host" ]; then
	before=$(devlog $host)
else
	echo "# the namespace we left is out of reach: host side not checked"
fi

t0=$(now_ms)
rsyslog_local_start
echo "# local rsyslogd up in $(( $(now_ms) - t0 )) ms"
check "/dev is our own tmpfs, with /dev/log a socket in it" eval \
    'test "$(findmnt -n -o FSTYPE -M /dev | tail -n 1)" = tmpfs &&
    test -S /dev/log'
check "/dev/null, /dev/urandom and /dev/fd work in it" eval \
    'echo x >/dev/null && head -c1 /dev/urandom >/dev/null &&
    test -e /dev/fd/0'

# send DATAGRAM: one datagram to /dev/log (AF_UNIX, SOCK_DGRAM).
send() {
	"$PY" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(sys.argv[1].encode(), "/dev/log")' "$1"
}

send '<30>Dec  2 01:02:03 dcevents[123]: hello key="v"'
check "the RFC 3164 datagram arrives" rsyslog_wait "$T/rsyslog-local.json" 1
check "parsed: severity 6, facility 3, dcevents[123], time and MSG as sent" \
    "$PY" - "$T/rsyslog-local.json" "$(hostname)" <<'EOF'
import json, re, sys
r = json.loads(open(sys.argv[1], "rb").readline().decode())
want = dict(pri=30, facility=3, severity=6, protocol_version="0",
            hostname=sys.argv[2], app_name="dcevents", procid="123",
            msgid="-", structured_data="-", syslogtag="dcevents[123]:",
            msg=' hello key="v"',
            rawmsg='<30>Dec  2 01:02:03 dcevents[123]: hello key="v"')
bad = [k for k in want if r.get(k) != want[k]]
if not re.fullmatch(r"\d{4}-12-02T01:02:03[-+]\d\d:\d\d", r["timestamp"]):
    bad.append("timestamp")
for k in bad:
    print("# %s is %r, not %r" % (k, r.get(k), want.get(k)))
sys.exit(1 if bad else 0)
EOF

logger -t rsyslog-selftest "via logger $$"
check "logger reaches our rsyslogd" rsyslog_wait "$T/rsyslog-local.json" 2
want='"syslogtag":"rsyslog-selftest:", "msg":" via logger '$$'"'
check "with its tag and message" contains "$T/rsyslog-local.json" "$want"

if [ -n "$host" ]; then
	check "the host's /dev/log is as it was ($before)" \
	    test "$(devlog $host)" = "$before"
	if [ "$before" = absent ]; then
		$host logger -u /dev/log "from the host $$" 2>/dev/null
		sleep 0.3
		check "logger on the host does not reach ours" \
		    lacks "$T/rsyslog-local.json" "from the host $$"
	else
		# Sending would log on the host: compare the sockets instead.
		check "the host's /dev/log is not ours" \
		    test "$(devlog $host)" != "$(devlog)"
	fi
fi

# Down (TERM: /dev/log removed; KILL: left, refusing) and back.
rsyslog_local_stop
check "a TERM stop removes /dev/log" test ! -e /dev/log
check "rsyslogd comes back" rsyslog_local_restart
send '<30>Dec  2 01:02:04 dcevents[123]: after restart'
check "a datagram after the restart arrives" \
    rsyslog_wait "$T/rsyslog-local.json" 3
rsyslog_local_stop KILL
send '<30>Dec  2 01:02:05 dcevents[123]: lost' 2>"$T/refused"
check "after a KILL, /dev/log stays and refuses" eval \
    'test -S /dev/log && grep -q ConnectionRefused "$T/refused"'
check "rsyslogd comes back after a KILL" rsyslog_local_restart
send '<30>Dec  2 01:02:06 dcevents[123]: after kill'
check "a datagram after that arrives, the lost one does not" eval \
    'rsyslog_wait "$T/rsyslog-local.json" 4 &&
    lacks "$T/rsyslog-local.json" lost'
check "rsyslogd wrote nothing to stderr" test ! -s "$RSYSLOG_LOCAL_LOG"

finish
