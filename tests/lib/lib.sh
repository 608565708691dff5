# Shared helpers for the integration drivers (sourced).  Each driver runs in
# its own temporary directory, removed on exit, and uses loopback only.
# Exit status: 0 all checks passed, 77 skipped, 1 a check failed.

set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${DCEVENTS:=$top_builddir/daemon/dcevents}"
PY=/usr/bin/python3
# The host's proxy variables play no part unless a test sets them.
unset wss_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

T=$(mktemp -d /tmp/dcevents-test.XXXXXX)
failures=0
checks=0
PIDS=

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

skip() {
	echo "SKIP: $*"
	exit 77
}

pass() {
	checks=$((checks + 1))
	echo "ok $checks - $*"
}

fail() {
	checks=$((checks + 1))
	failures=$((failures + 1))
	echo "not ok $checks - $*"
}

# check DESCRIPTION COMMAND...: pass if the command succeeds.
check() {
	d=$1
	shift
	if "$@"; then pass "$d"; else fail "$d"; fi
}

# contains FILE TEXT: FILE holds TEXT (fixed string); shows FILE if not.
contains() {
	if grep -qF -- "$2" "$1"; then return 0; fi
	echo "# expected in $1: $2"
	sed 's/^/#   /' "$1" | tail -20
	return 1
}

lacks() {
	if grep -qF -- "$2" "$1"; then
		echo "# unexpected in $1: $2"
		return 1
	fi
	return 0
}

# wait_for FILE TEXT [SECONDS]: until FILE holds TEXT.
wait_for() {
	_wf_n=$(( ${3:-5} * 20 ))
	while [ "$_wf_n" -gt 0 ]; do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
		_wf_n=$((_wf_n - 1))
	done
	echo "# timed out waiting for \"$2\" in $1"
	[ -f "$1" ] && sed 's/^/#   /' "$1" | tail -20
	return 1
}

# count FILE TEXT: lines of FILE holding TEXT.
count() {
	grep -cF -- "$2" "$1" 2>/dev/null || true
}

now_ms() {
	echo $(( $(date +%s%N) / 1000000 ))
}

finish() {
	echo "$checks checks, $failures failed"
	[ "$failures" -eq 0 ] || exit 1
	exit 0
}

# stopped_reader FIFO OUT [full]: a FIFO read into OUT by a reader that is
# stopped at once (its pid in READER), held open for writing on fd 3 so
# that it never ends; with "full", the pipe's buffer is filled up first,
# so that the next write to it blocks.
stopped_reader() {
	mkfifo "$1"
	cat "$1" >"$2" &
	READER=$!
	PIDS="$PIDS $READER"
	exec 3>"$1"
	kill -STOP "$READER"
	[ "${3:-}" = full ] || return 0
	"$PY" - "$1" <<'PYEOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK)
try:
    while True:
        os.write(fd, b"#" * 4095 + b"\n")
except BlockingIOError:
    pass
PYEOF
}

# wait_until SECONDS COMMAND...: poll until COMMAND succeeds (quietly; the
# arguments are expanded once, so pass a predicate, not "$(...)").
wait_until() {
	_wu_n=$(( $1 * 20 ))
	shift
	while [ "$_wu_n" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
		_wu_n=$((_wu_n - 1))
	done
	return 1
}

# gone PID: no process PID (any more).
gone() {
	! kill -0 "$1" 2>/dev/null
}

# has_lines FILE N: FILE has at least N lines.
has_lines() {
	[ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ]
}

# tcp_recvq PORT: the bytes waiting unread in the established TCP socket
# whose remote port is PORT (a client's connection to a test server), from
# /proc/net/tcp{,6}; -1 if there is none.
tcp_recvq() {
	"$PY" - "$1" <<'PYEOF'
import sys
port = "%04X" % int(sys.argv[1])
for f in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(f).readlines()[1:]:
        x = line.split()
        if x[2].endswith(":" + port) and x[3] == "01":
            print(int(x[4].split(":")[1], 16))
            sys.exit(0)
print(-1)
PYEOF
}

# wspeer_start SCRIPT [wspeer options]: start tests/peers/wspeer.py with the
# JSON script SCRIPT and the test certificates in $T/pki, logging to
# $T/peer; sets PORT and PEER.  Skips if it does not start.
wspeer_start() {
	script=$1
	shift
	rm -f "$T/port"
	"$PY" "$top_srcdir/tests/peers/wspeer.py" --portfile "$T/port" \
	    --log "$T/peer" --script "$script" --cert "$T/pki/server.pem" \
	    --key "$T/pki/server.key" "$@" 2>"$T/peer.err" &
	PEER=$!
	PIDS="$PIDS $PEER"
	wait_until 5 test -s "$T/port" || skip "the websocket peer did not start"
	PORT=$(cat "$T/port")
}
