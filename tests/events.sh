#!/bin/sh
# The whole scripted stream (every type and state, hostile values, the
# older date, unknown members and types, errors, duplicates, fragments,
# invalid JSON between events, lone surrogates and a binary message with
# bytes that are not UTF-8) through a TLS websocket into a private,
# real journald and onto stdout, compared field by field with an
# independent model of the records (tests/peers/expect.py) built from
# dcevents(8), JOURNAL FIELDS and STDOUT, and the README's Records.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/journal.sh"
journal_enter "$@"
. "$top_srcdir/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/mid.sh"

[ "${WITH_SYSTEMD:-yes}" = yes ] || skip "built without libsystemd"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
journal_start

"$PY" "$top_srcdir/tests/peers/stream-events.py" "$top_srcdir/demo/events.json" \
    "$T/messages.json" "$T/script.json"
opts="namespace=demo identifier=dce-events facility=20 rule=node.Upgrading=2"
# shellcheck disable=SC2086
"$PY" "$top_srcdir/tests/peers/expect.py" "$T/messages.json" journal $opts >"$T/want.journal"
# shellcheck disable=SC2086
"$PY" "$top_srcdir/tests/peers/expect.py" "$T/messages.json" stdout $opts >"$T/want.stdout"
n=$(wc -l <"$T/want.journal")

wspeer_start "$T/script.json"

"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
    -o "Stream.CAFile=$T/pki/ca.pem" -o Stream.Namespace=demo \
    -o Output.Journal=yes -o Output.Stdout=yes \
    -o Output.Identifier=dce-events -o Output.SyslogFacility=local4 \
    -o Priority.node.Upgrading=crit >"$T/stdout" 2>"$T/err" &
DC=$!
PIDS="$PIDS $DC"

check "$n event records in the journal" journal_wait "SYSLOG_IDENTIFIER=dce-events" $((n + 4)) 20
check "$n lines on stdout" wait_until 10 has_lines "$T/stdout" "$n"
kill "$DC"
wait "$DC"
check "exit 0 after SIGTERM" test $? -eq 0
journal_json SYSLOG_IDENTIFIER=dce-events >"$T/journal.json"

check "journal: every field of every record as specified" \
    "$PY" "$top_srcdir/tests/peers/compare.py" journal "$T/want.journal" "$T/journal.json"
check "stdout: every object member by member" \
    "$PY" "$top_srcdir/tests/peers/compare.py" stdout "$T/want.stdout" "$T/stdout"
check "stdout: a strict decoder takes every line (json.loads(line.decode()))" \
    "$PY" -c 'import json, sys
for l in open(sys.argv[1], "rb"):
    json.loads(l.decode())' "$T/stdout"

PARSE=$MID_PARSE_ERROR
"$PY" - "$T/journal.json" "$PARSE" >"$T/parse" <<'PYEOF'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("MESSAGE_ID") == sys.argv[2]:
        print(r["PRIORITY"], r["MESSAGE"])
PYEOF
check "invalid JSON: one warning each, with an excerpt" test "$(cat "$T/parse")" = "4 message skipped: invalid JSON: {not json
4 message skipped: invalid JSON: {\"a\":\\xff\\xfe}
4 message skipped: not a JSON object: [1, 2]
4 message skipped: not a JSON object: \"just a string\""
check "the duplicates are not written twice" test "$(grep -c '"DOCKERCLOUD_UUID":"'"$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[3]["uuid"])' "$top_srcdir/demo/events.json")" "$T/journal.json")" -eq 1
finish
