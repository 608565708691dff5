#!/bin/sh
# The private rsyslogd harness (rsyslog.sh), remote side: RFC 5424 records
# sent over UDP, TCP and TLS (octet counting, also split and coalesced
# writes) come back parsed exactly, hostile values included, and a
# restarted collector takes new connections on the same ports.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/rsyslog.sh"

[ -x "$PY" ] || skip "needs $PY"

t0=$(now_ms)
rsyslog_start
echo "# rsyslogd up in $(( $(now_ms) - t0 )) ms (with certificates):" \
    "udp $RSYSLOG_UDP_PORT, tcp $RSYSLOG_TCP_PORT, tls $RSYSLOG_TLS_PORT"

# send TRANSPORT PORT MSGID...: RFC 5424 records, one per MSGID, with the
# hostile structured data and MSG (UTF-8, \x01); for tcp, MSGIDs after the
# first two go in a write of their own, split in two (length, then MSG).
cat >"$T/send.py" <<'EOF'
import socket, ssl, sys, time
how, port, ids = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
SD = r'[dockercloud@32473 type="container" state="Running" parent="a\]b" q="x\"y" bs="c\\d"]'
MSG = "héllo ✓ \x01 ctl \"q\" \\ ] end".encode()
def rec(msgid):
    return ("<134>1 2024-12-02T01:02:03.456789+01:00 host.example dcevents "
            "123 %s %s " % (msgid, SD)).encode() + MSG
def frame(b):
    return str(len(b)).encode() + b" " + b
if how == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in ids:
        s.sendto(rec(i), ("127.0.0.1", port))
    sys.exit(0)
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
if how == "tls":
    ctx = ssl.create_default_context(cafile=sys.argv[0].rsplit("/", 1)[0]
                                     + "/pki/ca.pem")
    s = ctx.wrap_socket(s, server_hostname="localhost")
s.sendall(b"".join(frame(rec(i)) for i in ids[:2]))
for i in ids[2:]:
    f = frame(rec(i))
    time.sleep(0.1)
    s.sendall(f[:2])
    time.sleep(0.1)
    s.sendall(f[2:40])
    time.sleep(0.1)
    s.sendall(f[40:])
time.sleep(0.1)
if how == "tls":
    s = s.unwrap()
s.close()
EOF

# expect FILE MSGID...: FILE's records from send (PRI 134) are exactly
# these, fields as sent.
cat >"$T/expect.py" <<'EOF'
import json, sys
SD = r'[dockercloud@32473 type="container" state="Running" parent="a\]b" q="x\"y" bs="c\\d"]'
MSG = "héllo ✓ \x01 ctl \"q\" \\ ] end"
want = dict(pri=134, facility=16, severity=6, protocol_version="1",
            timestamp="2024-12-02T01:02:03.456789+01:00",
            hostname="host.example", app_name="dcevents", procid="123",
            structured_data=SD, syslogtag="dcevents[123]", msg=MSG)
f, ids = sys.argv[1], sys.argv[2:]
lines = open(f, "rb").read().decode("utf-8").splitlines()
recs = [r for r in map(json.loads, lines) if r["pri"] == 134]
ok = len(recs) == len(ids)
for r, i in zip(recs, ids):
    w = dict(want, msgid=i)
    for k, v in w.items():
        if r.get(k) != v:
            print("# %s: %s is %r, not %r" % (i, k, r.get(k), v))
            ok = False
if not ok:
    print("# got %d records, want %s:" % (len(recs), ids))
    for l in lines:
        print("#  ", l)
sys.exit(0 if ok else 1)
EOF

"$PY" "$T/send.py" udp "$RSYSLOG_UDP_PORT" UDP1
check "the UDP record arrives" rsyslog_wait "$T/rsyslog-udp.json" 1
check "UDP: every field as sent (SD, UTF-8, \\x01)" \
    "$PY" "$T/expect.py" "$T/rsyslog-udp.json" UDP1

"$PY" "$T/send.py" tcp "$RSYSLOG_TCP_PORT" TCP1 TCP2 TCP3
check "the three TCP records arrive" rsyslog_wait "$T/rsyslog-tcp.json" 3
check "TCP: two in one write, one split in three, fields as sent" \
    "$PY" "$T/expect.py" "$T/rsyslog-tcp.json" TCP1 TCP2 TCP3

"$PY" "$T/send.py" tls "$RSYSLOG_TLS_PORT" TLS1
check "the TLS record arrives" rsyslog_wait "$T/rsyslog-tls.json" 1
check "TLS: fields as sent" "$PY" "$T/expect.py" "$T/rsyslog-tls.json" TLS1

# What rsyslog does with the awkward: NUL, LF, long records; the JSON
# stays valid (invalid UTF-8 aside).
"$PY" - "$RSYSLOG_UDP_PORT" "$RSYSLOG_TCP_PORT" <<'EOF'
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def udp(b):
    u.sendto(b, ("127.0.0.1", int(sys.argv[1])))
udp(b"<13>1 - - - - NUL - a\x00b\x01c")
udp(b"<13>1 - - - - LF - a\nb\tc\r\n")
udp(b"<13>1 - - - - BIG - " + b"u" * 60000)
t = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
big = b"<13>1 - - - - BIG - " + b"t" * 200000
t.sendall(str(len(big)).encode() + b" " + big)
t.close()
EOF
check "the awkward records arrive" rsyslog_wait "$T/rsyslog-udp.json" 4
check "the 200000-byte TCP record arrives" rsyslog_wait "$T/rsyslog-tcp.json" 4
check "NUL becomes #000 and other controls go; LF, TAB, CR kept; big whole" \
    "$PY" - "$T/rsyslog-udp.json" "$T/rsyslog-tcp.json" <<'EOF'
import json, sys
r = {}
for f in sys.argv[1:]:
    for l in open(f, "rb").read().decode("utf-8").splitlines():
        j = json.loads(l)
        r[(f[-8:-5], j["msgid"])] = j["msg"]
want = {("udp", "NUL"): "a#000bc", ("udp", "LF"): "a\nb\tc\r",
        ("udp", "BIG"): "u" * 60000, ("tcp", "BIG"): "t" * 200000}
bad = [k for k in want if r.get(k) != want[k]]
for k in bad:
    print("# %s: %r" % (k, (r.get(k) or "")[:60]))
sys.exit(1 if bad else 0)
EOF

# Down and back on the same ports.
port=$RSYSLOG_TCP_PORT
t0=$(now_ms)
rsyslog_stop
echo "# rsyslogd stopped in $(( $(now_ms) - t0 )) ms"
check "rsyslog_stop leaves no rsyslogd" test -z "$RSYSLOG_PID"
"$PY" "$T/send.py" tcp "$RSYSLOG_TCP_PORT" LOST 2>/dev/null
check "a TCP connection while it is down is refused" test $? -ne 0
t0=$(now_ms)
check "rsyslogd comes back" rsyslog_restart
echo "# rsyslogd back in $(( $(now_ms) - t0 )) ms"
check "on the same TCP port" test "$RSYSLOG_TCP_PORT" = "$port"
"$PY" "$T/send.py" tcp "$RSYSLOG_TCP_PORT" TCP4
"$PY" "$T/send.py" tls "$RSYSLOG_TLS_PORT" TLS2
"$PY" "$T/send.py" udp "$RSYSLOG_UDP_PORT" UDP2
check "new TCP, TLS and UDP records arrive after the restart" \
    rsyslog_wait "$T/rsyslog-tls.json" 2
rsyslog_wait "$T/rsyslog-tcp.json" 5 && rsyslog_wait "$T/rsyslog-udp.json" 5
check "TLS, TCP, UDP files: old and new records, nothing else" eval \
    '"$PY" "$T/expect.py" "$T/rsyslog-tls.json" TLS1 TLS2 &&
    "$PY" "$T/expect.py" "$T/rsyslog-tcp.json" TCP1 TCP2 TCP3 TCP4 &&
    "$PY" "$T/expect.py" "$T/rsyslog-udp.json" UDP1 UDP2'
check "no framing or TLS complaints" lacks "$T/rsyslog-internal.log" rror
check "rsyslogd wrote nothing to stderr" test ! -s "$RSYSLOG_LOG"

finish
