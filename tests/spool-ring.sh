#!/bin/sh
# [Spool] Mode=overflow keeps the duplicate ring across a restart: events
# written before a SIGTERM are not written again when the server sends
# them again after the restart (Mode=always keeps it row by row:
# tests/spool.sh (e)).  sqlite3 sees the ring in the spool.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/spool.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
command -v sqlite3 >/dev/null || skip "needs sqlite3 (apt-get install sqlite3)"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
SPOOL_MODES=overflow
[ -n "$(spool_modes)" ] || skip "Mode=overflow is not built"
SPOOL_MODE=overflow

# Connection 1: a-0..99; 2: a-0..99 again, then b-0..9; then nothing.
spool_script "$T/script.json" a:100 a:100,b:10 -
wspeer_start "$T/script.json"

uuids() { grep -o '"uuid":"[a-z]-[0-9]*"' "$1" | cut -d'"' -f4; }

spool_dc r -o Output.Stdout=yes
check "the first run wrote a-0 .. a-99" wait_until 10 has_lines "$T/r/out" 100
kill "$DC"
wait "$DC"
check "exit 0 at SIGTERM" test $? -eq 0
check "sqlite3: the ring holds 100 hashes" \
    test "$(sqlite3 "$T/r/spool.db" "SELECT count(*) FROM ring")" = 100
mv "$T/r/out" "$T/r/out1"
spool_dc r -o Output.Stdout=yes
check "the second run wrote b-0 .. b-9" \
    wait_until 10 contains "$T/r/out" '"b-00009"'
sleep 0.3
kill "$DC"
wait "$DC"
uuids "$T/r/out" >"$T/r/got"
check "events written before the restart, sent again, are not written" \
    spool_uuids_check "$T/r/got" 0 b=10

finish
