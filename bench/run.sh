#!/bin/sh
# make bench: the benchmark (bench/bench.py) inside a private mount
# namespace, so that the journald it starts (tests/lib/journal.sh's harness:
# tmpfs on /run/systemd and /run/log) and the rsyslogd never touch the
# host's logs.  Needs root, like the integration tests.  Results: the
# table on stdout, files in $BENCH_OUT.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/journal.sh"
journal_enter "$@"
. "$top_srcdir/tests/lib/lib.sh"

[ "${WITH_SYSTEMD:-yes}" = yes ] || skip "built without libsystemd"
[ -x "$PY" ] || skip "needs $PY (Debian's python3)"
"$PY" -c 'import websocket, systemd.journal' 2>/dev/null ||
    skip "needs python3-websocket and python3-systemd"
[ -x /usr/sbin/rsyslogd ] || skip "needs rsyslogd"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
# The mounts and journald's test configuration, then no journald: each
# journal run starts its own on an empty journal.
journal_start
journal_close
PYTHONDONTWRITEBYTECODE=1
export T DCEVENTS top_srcdir PYTHONDONTWRITEBYTECODE
"$PY" "$top_srcdir/bench/bench.py"
