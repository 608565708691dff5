#!/bin/sh
# The daemon's lifecycle against a real sd_notify peer: READY=1, WATCHDOG=1,
# SIGHUP with a good and a bad new file, SIGTERM and SIGINT within 2 s.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the notify peer"
"$DCEVENTS" -V | grep -q . || skip "no daemon binary"

"$PY" "$top_srcdir/tests/peers/notify_peer.py" "$T/notify.sock" "$T/notify" &
PIDS="$PIDS $!"
wait_for "$T/notify" listening || skip "the notify peer did not start"

# sd_notify checks need libsystemd; the signal checks run in every build.
ncheck() {
	if [ "${WITH_SYSTEMD:-yes}" = yes ]; then
		check "$@"
	else
		echo "# skipped, built without libsystemd: $1"
	fi
}

write_conf() {
	printf '[Stream]\nURL=wss://%s/\n[Output]\nStdout=yes\nIdentifier=%s\n' \
	    "$1" "$2" >"$T/dc.conf"
}

write_conf a.example one
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=200000 \
    "$DCEVENTS" -c "$T/dc.conf" >"$T/out" 2>"$T/err" &
pid=$!
PIDS="$PIDS $pid"
check "the daemon starts" wait_for "$T/err" "started"
ncheck "READY=1 once the configuration is loaded" wait_for "$T/notify" "READY=1|STATUS="
ncheck "WATCHDOG=1 with WATCHDOG_USEC set" wait_for "$T/notify" "WATCHDOG=1"
n1=$(count "$T/notify" "WATCHDOG=1")
sleep 0.5
n2=$(count "$T/notify" "WATCHDOG=1")
ncheck "WATCHDOG=1 repeats at half the interval ($n1 then $n2 in 0.5 s)" test $((n2 - n1)) -ge 3

# A bad new file: reported with file and line, the old configuration kept.
printf '[Stream]\nURL=wss://b.example/\nPingIntervalSec=never\n' >"$T/dc.conf"
kill -HUP "$pid"
ncheck "SIGHUP sends RELOADING=1" wait_for "$T/notify" "RELOADING=1|MONOTONIC_USEC="
check "a bad reload names file, line and key" wait_for "$T/err" "$T/dc.conf:3: PingIntervalSec: invalid value \"never\""
check "a bad reload keeps the previous configuration" wait_for "$T/err" "keeping the previous configuration"
ncheck "a bad reload sends READY=1 again" wait_for "$T/notify" "READY=1|STATUS=Reload failed"
check "the daemon survives a bad reload" kill -0 "$pid"

# A good new file with the same stream: compared with the kept one.
write_conf a.example two
kill -HUP "$pid"
check "a good reload is applied" wait_for "$T/err" "configuration reloaded"
check "the kept configuration was the original (same stream)" lacks "$T/err" "stream settings changed"
# READY=1 at the start, after the bad and after the good reload.
ready3() { [ "$(count "$T/notify" "READY=1|STATUS=")" -ge 3 ]; }
ncheck "a good reload sends READY=1" wait_until 5 ready3
write_conf c.example two
kill -HUP "$pid"
check "a new URL is seen as a stream change" wait_for "$T/err" "configuration reloaded; stream settings changed"

start=$(now_ms)
kill -TERM "$pid"
wait "$pid"
rc=$?
took=$(( $(now_ms) - start ))
check "SIGTERM: exit status 0" test "$rc" -eq 0
check "SIGTERM: exit within 2 s (${took} ms)" test "$took" -lt 2000
ncheck "SIGTERM sends STOPPING=1" wait_for "$T/notify" "STOPPING=1"

"$DCEVENTS" -c "$T/dc.conf" >"$T/out" 2>"$T/err2" &
pid=$!
PIDS="$PIDS $pid"
wait_for "$T/err2" "started" >/dev/null
start=$(now_ms)
kill -INT "$pid"
wait "$pid"
rc=$?
took=$(( $(now_ms) - start ))
check "SIGINT without NOTIFY_SOCKET: exit status 0" test "$rc" -eq 0
check "SIGINT: exit within 2 s (${took} ms)" test "$took" -lt 2000

finish
