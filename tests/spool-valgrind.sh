#!/bin/sh
# The spool under valgrind memcheck, two daemon runs: (1) on a spool file
# of garbage (moved aside, a new spool), 300 events spooled while stdout
# is a full pipe nobody reads, SIGTERM; (2) the restart replays them,
# then 50 new ones, SIGTERM.  Each run: no valgrind error, no definitely,
# indirectly (or, but for the first run's blocked writer thread,
# possibly) lost byte (tests/valgrind.supp covers libraries only).
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$top_srcdir/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/spool.sh"

[ "${WITH_SANITIZERS:-no}" = yes ] && skip "valgrind and the sanitizers do not mix"
command -v valgrind >/dev/null || skip "needs valgrind"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v sqlite3 >/dev/null || skip "needs sqlite3 (apt-get install sqlite3)"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
spool_script "$T/script.json" a:300 b:50 -
wspeer_start "$T/script.json"

SUPP=
[ -f "$top_srcdir/tests/valgrind.supp" ] &&
    SUPP="--suppressions=$top_srcdir/tests/valgrind.supp"
# vg NAME [KINDS]: the command that runs the daemon's next run of NAME;
# KINDS the leak kinds that are errors (definite,indirect,possible).
vg() {
	n=$(ls "$T/$1".vg* 2>/dev/null | wc -l)
	k=${2:-definite,indirect,possible}
	echo "valgrind --tool=memcheck --leak-check=full" \
	    "--show-leak-kinds=$k --errors-for-leak-kinds=$k" \
	    "--error-exitcode=99 --num-callers=40 $SUPP" \
	    "--log-file=$T/$1.vg$n"
}
# clean NAME: each valgrind log of NAME reports no error.
clean() {
	for l in "$T/$1".vg*; do
		grep -q "ERROR SUMMARY: 0 errors from 0 contexts" "$l" &&
		    continue
		echo "# $l:"
		sed 's/^/#   /' "$l" | tail -60
		return 1
	done
}
handed() { [ "$(spool_handed "$1")" -ge "$2" ]; }
rows() { sqlite3 "$T/$1/spool.db" "SELECT count(*) FROM events" 2>/dev/null; }

# (1) garbage; stdout full, nobody reads.
mkdir -p "$T/s"
head -c 20000 /dev/urandom >"$T/s/spool.db"
stopped_reader "$T/pipe" /dev/null full
# At SIGTERM the stdout writer is still blocked in write(): the exit
# leaves it (the stop budget), and valgrind calls its thread's memory
# (glibc's DTV) possibly lost; only definite and indirect losses count.
SPOOL_OUT=$T/pipe SPOOL_RUN=$(vg s definite,indirect) spool_dc s \
    -o Output.Stdout=yes
exec 3>&-
check "(1) the damaged spool is reported" \
    wait_for "$T/s/err" "was damaged or unreadable: moved to" 60
check "(1) 300 events handed on" wait_until 60 handed s 300
kill "$DC"
wait "$DC"
check "(1) valgrind: exit 0 (got $?)" test $? -eq 0
kill -KILL "$READER"
check "(1) the 300 unwritten events are in the spool" test "$(rows s)" = 300
# (2) replay, then new events.
SPOOL_RUN=$(vg s) spool_dc s -o Output.Stdout=yes
check "(2) replayed and new events written" \
    wait_until 60 has_lines "$T/s/out" 350
kill "$DC"
wait "$DC"
check "(2) valgrind: exit 0 (got $?)" test $? -eq 0
check "(2) the spool is empty" test "$(rows s)" = 0
check "valgrind: no error, no loss in either run" clean s
finish
