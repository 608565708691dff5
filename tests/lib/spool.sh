# What the spool drivers share (sourced after lib.sh): the scripted stream
# of numbered events, the daemon with a spool, the modes to test, and the
# check of what reached an output (every event, in order, duplicates
# counted).
#
#	spool_script FILE CONN...	the websocket peer's script
#	spool_modes			the [Spool] modes this build accepts
#	spool_dc NAME [OPTIONS...]	dcevents on $T/NAME/spool.db (DC)
#	spool_handed NAME		events the last run of NAME handed on
#	spool_uuids_check FILE MAXDUPS WANT...	the uuids that arrived
#
# Events are container events whose uuid is PREFIX-NNNNN (NNNNN from 0):
# the uuid says which connection sent it and in what order.

# spool_script FILE CONN...: a wspeer.py script, one entry a connection
# (the last repeats; "-" sends nothing).  A CONN is a comma-separated list
# of PREFIX:N (events PREFIX-00000 .. N-1), PREFIX:FROM-TO (FROM .. TO-1)
# and sleep:SECONDS; /EVERY:SECONDS after an event range sleeps that long
# after every EVERY events (a paced stream).  The connection then holds.
spool_script() {
	_sp_f=$1
	shift
	"$PY" - "$@" >"$_sp_f" <<'PYEOF'
import json, sys
def ev(p, i):
    return json.dumps({"type": "container", "action": "update",
                       "state": "Running", "uuid": "%s-%05d" % (p, i),
                       "resource_uri": "/api/app/v1/t/container/%s%d/" % (p, i)})
script = []
for conn in sys.argv[1:]:
    msgs = []
    for part in ([] if conn == "-" else conn.split(",")):
        part, _, pace = part.partition("/")
        p, _, r = part.partition(":")
        if p == "sleep":
            msgs.append({"sleep": float(r)})
            continue
        lo, _, hi = r.partition("-")
        lo, hi = (int(lo), int(hi)) if hi else (0, int(lo))
        every, _, s = pace.partition(":")
        for i in range(lo, hi):
            msgs.append(ev(p, i))
            if pace and (i - lo) % int(every) == int(every) - 1:
                msgs.append({"sleep": float(s)})
    script.append({"messages": msgs, "after": "hold"})
print(json.dumps(script))
PYEOF
}

# spool_modes: the modes of SPOOL_MODES (default "always overflow") that
# "dcevents -t" accepts; says which it refuses (not built yet).
spool_modes() {
	for _sp_m in ${SPOOL_MODES:-always overflow}; do
		if "$DCEVENTS" -c /dev/null -o "Spool.Mode=$_sp_m" \
		    -o "Spool.Path=$T/modes.db" -t >/dev/null 2>&1; then
			echo "$_sp_m"
		else
			echo "# Mode=$_sp_m not available: not tested" >&2
		fi
	done
}

# spool_dc NAME [OPTIONS...]: dcevents against the peer at $PORT (-v: each
# event handed on is a line "event: " on stderr), [Spool] Mode=$SPOOL_MODE
# (always by default), Path=$T/NAME/spool.db, no output unless OPTIONS
# enable one; stdout to $T/NAME/out (or SPOOL_OUT), stderr appended to
# $T/NAME/err (a line "# run" before each run).  Its pid in DC.
# SPOOL_RUN: a command (and its arguments) to run it under.
spool_dc() {
	_sp_n=$1
	shift
	mkdir -p "$T/$_sp_n"
	echo "# run" >>"$T/$_sp_n/err"
	${SPOOL_RUN:-} "$DCEVENTS" -c /dev/null \
	    -o "Stream.URL=wss://localhost:$PORT/" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o Stream.BackoffMinSec=50ms \
	    -o Stream.BackoffMaxSec=200ms -o Output.Journal=no \
	    -o Output.Stdout=no -o "Spool.Mode=${SPOOL_MODE:-always}" \
	    -o "Spool.Path=$T/$_sp_n/spool.db" -v "$@" \
	    >"${SPOOL_OUT:-$T/$_sp_n/out}" 2>>"$T/$_sp_n/err" &
	DC=$!
	PIDS="$PIDS $DC"
}

# spool_handed NAME: how many events NAME's last run handed on.
spool_handed() {
	sed -n '/^# run$/h; /^# run$/!H; ${x; p}' "$T/$1/err" |
	    grep -cF "event: " || true
}

# spool_uuids_check FILE MAXDUPS WANT...: FILE holds the uuids that arrived,
# one a line, in arrival order.  Each WANT, PREFIX:N (at least events 0 ..
# N-1 arrived) or PREFIX=N (exactly 0 .. N-1), in order: counted by first
# arrival, the events of each PREFIX arrived in order, without a gap, the
# PREFIXes one after the other, nothing else arrived, and at most MAXDUPS
# arrived more than once.  Prints the counts.
spool_uuids_check() {
	"$PY" - "$@" <<'PYEOF'
import sys
got = [l.strip() for l in open(sys.argv[1]) if l.strip()]
maxdups, wants = int(sys.argv[2]), sys.argv[3:]
first, seen = [], set()
for u in got:
    if u not in seen:
        seen.add(u)
        first.append(u)
dups = len(got) - len(first)
bad, at = [], 0
for w in wants:
    exact = "=" in w
    p, n = w.split("=" if exact else ":")
    n = int(n)
    run = 0
    while at < len(first) and first[at] == "%s-%05d" % (p, run):
        at += 1
        run += 1
    print("# %s: %d events arrived (wanted %s%d)" %
          (p, run, "" if exact else "at least ", n))
    if run < n or (exact and run > n):
        bad.append("%s: %d events, then %s" % (
            p, run, first[at] if at < len(first) else "nothing"))
if at < len(first):
    bad.append("unexpected after the last: %s" % first[at:at + 3])
print("# %d arrived, %d distinct, %d duplicates (at most %d allowed)" %
      (len(got), len(first), dups, maxdups))
if dups > maxdups:
    bad.append("%d duplicates" % dups)
for b in bad:
    print("# " + b)
sys.exit(1 if bad else 0)
PYEOF
}
