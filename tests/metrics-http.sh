#!/bin/sh
# The metrics endpoint ([Metrics] Listen=) and the statistics record: GET
# /metrics only (404, 405), HEAD, a header over the limit, a unix: socket
# (0600, removed at exit), a reload that moves the listener and one that
# cannot (refused, the old one kept), bad values; 50 idle connections and
# a slowloris client do not delay events (the gaps between paced events
# with and without them) and do not hold more than the connection limit;
# SIGUSR1 and StatsIntervalSec= write the statistics record.
. "$(dirname "$0")/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v curl >/dev/null || skip "needs curl"

# hold_port FILE: another process listens on 127.0.0.1, on a port of its
# own choice (a port dcevents let go of may meanwhile be taken by another
# test), for 30 s; FILE gets the port once it listens; HOLD is its pid.
hold_port() {
	"$PY" -c 'import os,socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); os.rename(sys.argv[1] + ".tmp", sys.argv[1]); time.sleep(30)' "$1" &
	HOLD=$!
	PIDS="$PIDS $HOLD"
	check "another process listens on a port" wait_until 10 test -s "$1"
}
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Bad values are refused, naming the key.
for v in nonsense 127.0.0.1 127.0.0.1: '[::1]' unix:relative 'u@h:1'; do
	"$DCEVENTS" -c /dev/null -o "Metrics.Listen=$v" -t >/dev/null 2>"$T/bad"
	rc=$?
	check "Listen=$v is refused" test "$rc" -eq 1
	check "...naming the key" contains "$T/bad" "Listen"
done
"$DCEVENTS" -c /dev/null -o Metrics.StatsIntervalSec=-1 -t >/dev/null 2>"$T/bad"
check "StatsIntervalSec=-1 is refused" test $? -eq 1
"$DCEVENTS" -c /dev/null -o 'Metrics.Listen=[::1]:9464' \
    -o Metrics.StatsIntervalSec=5min -t >"$T/t" 2>&1
check "-t prints Listen= and StatsIntervalSec=" \
    sh -c "grep -qx 'Listen=\[::1\]:9464' '$T/t' && grep -qx 'StatsIntervalSec=5min' '$T/t'"

# Paced events: 20, a pause while the test opens its idle and slow
# connections, 20 more.
"$PY" - >"$T/script.json" <<'PYEOF'
import json
ev = lambda i: json.dumps({"type": "container", "action": "update",
                           "state": "Running", "uuid": "p-%d" % i})
msgs = [ev(i) for i in range(20)] + [{"sleep": 4}] + [ev(i) for i in range(20, 40)]
print(json.dumps([{"messages": msgs, "interval": 0.05, "after": "hold"}]))
PYEOF
wspeer_start "$T/script.json"
MP=$(free_port)
cat >"$T/dc.conf" <<EOF
[Stream]
URL=wss://localhost:$PORT/
CAFile=$T/pki/ca.pem
[Output]
Journal=no
Stdout=yes
[Metrics]
Listen=127.0.0.1:$MP
EOF
# Each line of stdout with the time it arrived (CLOCK_MONOTONIC, s).
mkfifo "$T/out"
"$PY" -c '
import sys, time
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as o:
    for line in f:
        o.write("%.6f %s" % (time.monotonic(), line)); o.flush()
' "$T/out" "$T/arrivals" &
PIDS="$PIDS $!"
"$DCEVENTS" -c "$T/dc.conf" >"$T/out" 2>"$T/err" &
DC=$!
PIDS="$PIDS $DC"
URL=http://127.0.0.1:$MP
wait_until 5 curl -sf "$URL/metrics" -o /dev/null

code() {
	curl -s -o /dev/null -w '%{http_code}' "$@"
}
check "GET /metrics: 200" test "$(code "$URL/metrics")" = 200
curl -s -D "$T/h" -o "$T/body" "$URL/metrics"
check "...Content-Type text/plain; version=0.0.4" \
    grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/h"
check "...with HELP and TYPE lines" \
    sh -c "grep -q '^# HELP dcevents_connected ' '$T/body' && grep -q '^# TYPE dcevents_connected gauge' '$T/body'"
check "HEAD /metrics: 200" test "$(code -I "$URL/metrics")" = 200
check "GET /: 404" test "$(code "$URL/")" = 404
check "GET /metrics/x: 404" test "$(code "$URL/metrics/x")" = 404
check "POST /metrics: 405" test "$(code -X POST -d x "$URL/metrics")" = 405
check "DELETE /metrics: 405" test "$(code -X DELETE "$URL/metrics")" = 405
curl -s -D "$T/h405" -o /dev/null -X PUT "$URL/metrics"
check "...with Allow: GET, HEAD" grep -qi '^Allow: GET, HEAD' "$T/h405"
check "a 5 KiB header is refused (not 200)" \
    test "$(code -H "X-Big: $(head -c 5000 /dev/zero | tr '\0' a)" "$URL/metrics")" != 200
check "GET /metrics with a query string: 200" test "$(code "$URL/metrics?x=1")" = 200
check "the endpoint still serves after them" test "$(code "$URL/metrics")" = 200

# The first 20 events, unhindered.
check "20 events arrive" wait_until 10 has_lines "$T/arrivals" 20
fds0=$(ls /proc/$DC/fd | wc -l)

# 50 idle connections and a slowloris client (a header line every 0.3 s).
"$PY" - "$MP" "$T/load.ready" <<'PYEOF' &
import socket, sys, time
port = int(sys.argv[1])
idle = []
for i in range(50):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    idle.append(s)
slow = socket.create_connection(("127.0.0.1", port))
slow.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
open(sys.argv[2], "w").close()
end = time.monotonic() + 8
i = 0
while time.monotonic() < end:
    try:
        slow.send(b"X-%d: y\r\n" % i)
    except OSError:
        break
    i += 1
    time.sleep(0.3)
PYEOF
LOAD=$!
PIDS="$PIDS $LOAD"
wait_until 5 test -e "$T/load.ready"
sleep 0.5
fds1=$(ls /proc/$DC/fd | wc -l)
echo "# fds: $fds0 before, $fds1 with 51 clients"
check "51 clients hold at most 16 more descriptors (the limit)" \
    test "$fds1" -le $((fds0 + 16))
check "the next 20 events arrive meanwhile" wait_until 15 has_lines "$T/arrivals" 40
wait "$LOAD"
"$PY" - "$T/arrivals" >"$T/gaps" <<'PYEOF'
import sys
t = [float(l.split()[0]) for l in open(sys.argv[1])]
g1 = max(b - a for a, b in zip(t[:20], t[1:20]))
g2 = max(b - a for a, b in zip(t[20:40], t[21:40]))
print("%d %d" % (g1 * 1000, g2 * 1000))
PYEOF
read -r gap1 gap2 <"$T/gaps"
echo "# the longest gap between paced events (50 ms apart): $gap1 ms alone, $gap2 ms with the clients"
check "the clients do not delay events (longest gap <= alone + 100 ms, < 250 ms)" \
    test "$gap2" -le $((gap1 + 100)) -a "$gap2" -lt 250
check "a scrape once the clients are gone" \
    wait_until 15 sh -c "test \"\$(curl -s -o /dev/null -w '%{http_code}' $URL/metrics)\" = 200"

# SIGUSR1: the statistics record at once (StatsIntervalSec=0).
kill -USR1 "$DC"
check "SIGUSR1 writes the statistics record" \
    wait_for "$T/err" "statistics: 40 events received, 0 duplicates, 40 records written, 0 dropped, 0 queued"

# Reload: Listen= moves; StatsIntervalSec= starts the timer.
MP2=$(free_port)
sed -i "s/^Listen=.*/Listen=127.0.0.1:$MP2/" "$T/dc.conf"
echo "StatsIntervalSec=300ms" >>"$T/dc.conf"
kill -HUP "$DC"
check "after a reload the new address serves" \
    wait_until 5 curl -sf "http://127.0.0.1:$MP2/metrics" -o /dev/null
check "...and the old one is closed" test "$(code "$URL/metrics")" = 000
n0=$(count "$T/err" "statistics:")
sleep 1.2
check "StatsIntervalSec=300ms: a statistics record every 300 ms" \
    test "$(count "$T/err" "statistics:")" -ge $((n0 + 3))
# A reload to an address in use is refused; the old listener stays.
hold_port "$T/holding1"
MP=$(cat "$T/holding1")
sed -i "s/^Listen=.*/Listen=127.0.0.1:$MP/" "$T/dc.conf"
kill -HUP "$DC"
check "a reload to an address in use is refused" \
    wait_for "$T/err" "reload failed; keeping the previous configuration"
check "...saying why" contains "$T/err" "cannot listen on 127.0.0.1 port $MP"
check "...and the old address still serves" \
    test "$(code "http://127.0.0.1:$MP2/metrics")" = 200
kill "$HOLD"

kill "$DC"
wait "$DC"
check "exit 0 at SIGTERM" test $? -eq 0

# unix:PATH: 0600, served, removed at exit; a stale socket is replaced.
"$PY" -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/m.sock"
"$DCEVENTS" -c "$T/dc.conf" -o "Metrics.Listen=unix:$T/m.sock" \
    -o Stream.URL=ws://127.0.0.1:1/ -o Stream.AllowInsecure=yes \
    >/dev/null 2>"$T/err2" &
DC=$!
PIDS="$PIDS $DC"
check "unix: serves GET /metrics" \
    wait_until 5 curl -sf --unix-socket "$T/m.sock" http://x/metrics -o "$T/ubody"
check "...the exposition" grep -q '^dcevents_connected 0' "$T/ubody"
check "...the socket is 0600" test "$(stat -c %a "$T/m.sock")" = 600
kill "$DC"
wait "$DC"
check "...exit 0 at SIGTERM" test $? -eq 0
check "...the socket is removed" test ! -e "$T/m.sock"

# An address in use at start: exit 2, saying why.
hold_port "$T/holding2"
MP=$(cat "$T/holding2")
"$DCEVENTS" -c "$T/dc.conf" -o "Metrics.Listen=127.0.0.1:$MP" >/dev/null 2>"$T/err3"
check "an address in use at start: exit 2" test $? -eq 2
check "...saying why" contains "$T/err3" "cannot listen on 127.0.0.1 port $MP"
kill "$HOLD"
finish
