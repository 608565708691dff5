#!/bin/sh
# STATUS= (sd_notify, against tests/peers/notify_peer.py) stays current: while
# events stream on one connection it shows the count growing, at most
# about once a second, and after a good and a bad SIGHUP it says the
# connection state and the count again (not just "Running").
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ "${WITH_SYSTEMD:-yes}" = yes ] || skip "built without libsystemd (no sd_notify)"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the peers"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"

"$PY" "$top_srcdir/tests/peers/notify_peer.py" "$T/notify.sock" "$T/notify" &
PIDS="$PIDS $!"
wait_for "$T/notify" listening >/dev/null || skip "the notify peer did not start"

# 40 events, 0.1 s apart: about 4 s of stream, then the connection held.
N=40
"$PY" - "$N" >"$T/script.json" <<'PYEOF'
import json, sys
msgs = [json.dumps({"type": "container", "action": "update",
                    "state": "Running", "uuid": "ev-%06d" % i,
                    "resource_uri": "/api/app/v1/t/container/c%d/" % i})
        for i in range(int(sys.argv[1]))]
print(json.dumps([{"messages": msgs, "interval": 0.1, "after": "hold"}]))
PYEOF
wspeer_start "$T/script.json"
printf '[Output]\nIdentifier=one\n' >"$T/dc.conf"
NOTIFY_SOCKET=$T/notify.sock "$DCEVENTS" -c "$T/dc.conf" \
    -o "Stream.URL=wss://localhost:$PORT/" -o "Stream.CAFile=$T/pki/ca.pem" \
    -o Output.Journal=no -o Output.Stdout=yes >"$T/out" 2>"$T/err" &
DC=$!
PIDS="$PIDS $DC"
CONNECTED="Connected to wss://localhost:$PORT/"

# counts: the event counts of the "Connected to" STATUS= lines so far.
counts() {
	sed -n "s|.*STATUS=$CONNECTED; \([0-9]*\) events\$|\1|p" "$T/notify" |
	    tr '\n' ' '
}
check "all $N events arrive" wait_until 10 has_lines "$T/out" "$N"
sleep 1.3
c=$(counts)
echo "# STATUS= counts while streaming: $c"
check "one connection for the whole stream" test "$(grep -c '"ev":"connect"' "$T/peer")" -eq 1
check "STATUS= showed the count growing while events streamed, up to $N" \
    "$PY" -c 'import sys
n, c = int(sys.argv[1]), [int(x) for x in sys.argv[2:]]
sys.exit(not (c == sorted(c) and c[-1] == n and
              len([x for x in c if 0 < x < n]) >= 2))' "$N" $c
# About once a second: one update a second of the stream (as the server
# logged it) and the one at the connect, with one to spare; not one an event.
secs=$("$PY" -c 'import json, math, sys
t = {e["ev"]: e["t"] for e in map(json.loads, open(sys.argv[1]))}
print(math.ceil(t["sent"] - t["open"]))' "$T/peer")
check "STATUS= at most about once a second ($(echo $c | wc -w) updates in ${secs} s, $N events)" \
    test "$(echo $c | wc -w)" -le $((secs + 2))

# ready_after_reload: the READY=1 line after the last RELOADING=1 line.
ready_after_reload() {
	awk '/^RELOADING=1/ { r = 1; s = ""; next }
	    r && /^READY=1\|STATUS=/ { s = $0 } END { print s }' "$T/notify"
}
ready_is() {
	test "$(ready_after_reload)" = "$1"
}
printf '[Output]\nIdentifier=two\n' >"$T/dc.conf"
kill -HUP "$DC"
wait_until 5 contains "$T/err" "configuration reloaded"
check "after a good reload STATUS= says the state and the count" \
    wait_until 3 ready_is "READY=1|STATUS=$CONNECTED; $N events"
echo "# $(ready_after_reload)"
printf '[Output]\nIdentifier=two\nQueueMax=none\n' >"$T/dc.conf"
kill -HUP "$DC"
wait_until 5 contains "$T/err" "keeping the previous configuration"
check "after a bad reload STATUS= says so, the state and the count" \
    wait_until 3 ready_is "READY=1|STATUS=Reload failed (previous configuration kept); $CONNECTED; $N events"
echo "# $(ready_after_reload)"
kill "$DC"
wait "$DC"
check "exit 0" test $? -eq 0
finish
