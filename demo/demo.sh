#!/bin/sh
# demo.sh [BUILDDIR]: replay demo/events.json (a sample Docker Cloud event
# stream) from a local TLS websocket server (tests/peers/wspeer.py, with
# certificates from tests/lib/certs.sh) and show what dcevents makes of it:
# its stdout records, plus journal records when a journald socket exists.
# BUILDDIR (default: the source tree) holds daemon/dcevents.  Needs
# /usr/bin/python3 and openssl.  Exit status 0 when the daemon stopped
# cleanly and printed one line per event sent.

set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC}
DCEVENTS=$BUILD/daemon/dcevents
EVENTS=$SRC/demo/events.json
PY=/usr/bin/python3
MAXWAIT=60              # seconds before the daemon is stopped regardless

die() {
	echo "demo: $*" >&2
	exit 1
}

[ -x "$DCEVENTS" ] || die "no daemon at $DCEVENTS (build it, or pass BUILDDIR)"
[ -x "$PY" ] || die "needs $PY for the websocket server"
command -v openssl >/dev/null 2>&1 || die "needs openssl for the certificates"
[ -r "$EVENTS" ] || die "cannot read $EVENTS"

T=$(mktemp -d "${TMPDIR:-/tmp}/dcevents-demo.XXXXXX") || die "no temp dir"
PEER='' DC='' TEE=''
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	for p in $DC $PEER $TEE; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

sh "$SRC/tests/lib/certs.sh" "$T/pki" || die "cannot make test certificates"

# One scenario: every event as one text message, 50 ms apart, then keep the
# connection open until the client goes away.
N=$("$PY" - "$EVENTS" "$T/script.json" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    events = json.load(f)
msgs = [json.dumps(e, separators=(",", ":")) for e in events]
with open(sys.argv[2], "w") as f:
    json.dump([{"messages": msgs, "interval": 0.05, "after": "hold"}], f)
print(len(msgs))
EOF
) || die "cannot convert $EVENTS"

"$PY" "$SRC/tests/peers/wspeer.py" --host 127.0.0.1 \
    --cert "$T/pki/server.pem" --key "$T/pki/server.key" \
    --portfile "$T/port" --script "$T/script.json" --log "$T/peer.log" \
    2>"$T/peer.err" &
PEER=$!
i=0
while [ ! -s "$T/port" ]; do
	i=$((i + 1))
	if [ "$i" -gt 100 ] || ! kill -0 "$PEER" 2>/dev/null; then
		cat "$T/peer.err" >&2
		die "the websocket server did not start"
	fi
	sleep 0.05
done
PORT=$(cat "$T/port")

if [ -S /run/systemd/journal/socket ]; then J=yes; else J=no; fi

echo "dcevents demo: $N events from a local TLS websocket server on port $PORT"
echo "(journal output: $J; stdout records follow, diagnostics on stderr)"
echo

# The daemon's stdout goes through tee (shown and counted); stderr as is.
mkfifo "$T/stdout" || die "cannot make a fifo in $T"
tee "$T/out" <"$T/stdout" &
TEE=$!
"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
    -o "Stream.CAFile=$T/pki/ca.pem" -o Stream.Namespace=demo \
    -o Output.Stdout=yes -o "Output.Journal=$J" >"$T/stdout" &
DC=$!
START=$(date +%s)

# Wait until the server has sent everything (then 1 s more for the daemon
# to write it out), the daemon ends by itself, or MAXWAIT passes.
sent='' timedout=''
deadline=$((START + MAXWAIT))
while kill -0 "$DC" 2>/dev/null; do
	if grep -q '"ev":"sent"' "$T/peer.log" 2>/dev/null; then
		sent=$(sed -n 's/.*"ev":"sent".*"count":\([0-9]*\).*/\1/p' \
		    "$T/peer.log" | head -n 1)
		sleep 1
		break
	fi
	if [ "$(date +%s)" -ge "$deadline" ]; then
		timedout=yes
		break
	fi
	sleep 0.1
done
kill -TERM "$DC" 2>/dev/null
i=0
while kill -0 "$DC" 2>/dev/null && [ "$i" -lt 100 ]; do
	i=$((i + 1))
	sleep 0.1
done
if kill -0 "$DC" 2>/dev/null; then
	echo "demo: dcevents ignored SIGTERM for 10 s; killing it" >&2
	kill -KILL "$DC" 2>/dev/null
fi
wait "$DC"
RC=$?
DC=
wait "$TEE"
TEE=
ELAPSED=$(( $(date +%s) - START ))

LINES=$(wc -l <"$T/out" | tr -d ' ')
echo
echo "$LINES events shown (the server sent ${sent:-none} of $N) in about ${ELAPSED} s; journal: $J"
if [ "$J" = yes ]; then
	echo "try: journalctl -t dcevents DOCKERCLOUD_TYPE=container"
fi

status=0
if [ -n "$timedout" ]; then
	echo "demo: FAILED: the server had not sent all events after $MAXWAIT s" >&2
	status=1
fi
if [ "$RC" -ne 0 ]; then
	echo "demo: FAILED: dcevents exited with status $RC" >&2
	status=1
fi
if [ "${sent:-}" != "$N" ]; then
	echo "demo: FAILED: the server sent ${sent:-no} events, not $N" >&2
	sed 's/^/demo:   peer: /' "$T/peer.err" >&2
	status=1
fi
if [ "$LINES" != "$N" ]; then
	echo "demo: FAILED: dcevents printed $LINES lines for $N events" >&2
	status=1
fi
exit "$status"
