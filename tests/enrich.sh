#!/bin/sh
# [Enrich] Lookup=yes against a real TLS websocket server (tests/peers/wspeer.py)
# and a Docker Cloud REST stand-in (tests/peers/restpeer.py), stdout output:
# names and Fields= in the JSON lines, one GET per object (cache and
# coalescing), delete eviction, 404, slow lookups (order, TimeoutSec=),
# 401, 429 with Retry-After, 5xx, garbage and huge bodies, chunked,
# Connection: close and HTTP/1.0 answers, and a secret of
# container_envvars that appears nowhere.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/enrich.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the peers"
command -v openssl >/dev/null || skip "needs openssl for test certificates"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
C=/api/app/v1/test/container
S=/api/app/v1/test/service

# run NAME REST_SCRIPT WS_SCRIPT_FILE N [dcevents options]: start both
# peers and dcevents, wait for N lines of stdout (10 s), stop; $T/NAME.out,
# .err, .rest (restpeer's log); LINES_MS: how long the N lines took.
run() {
	rn=$1 want=$4
	enrich_peers "$1" "$2" "$3" ||
	    { fail "$rn: the peers did not start"; return 1; }
	shift 4
	# shellcheck disable=SC2086
	"$DCEVENTS" -c /dev/null $ENRICH_OPTS -o Output.Journal=no \
	    -o Output.Stdout=yes "$@" >"$T/$rn.out" 2>"$T/$rn.err" &
	DC=$!
	PIDS="$PIDS $DC"
	t0=$(now_ms)
	wait_until 10 has_lines "$T/$rn.out" "$want" ||
	    echo "# $rn: only $(wc -l <"$T/$rn.out") of $want lines"
	LINES_MS=$(( $(now_ms) - t0 ))
	sleep 0.2
	kill "$DC" 2>/dev/null
	wait "$DC"
	check "$rn: exit 0 after SIGTERM (no sanitizer report)" test $? -eq 0
	lacks "$T/$rn.err" "runtime error" || fail "$rn: UBSan"
	kill "$WP" "$RP" 2>/dev/null
	wait "$WP" "$RP" 2>/dev/null
}

# gets NAME [PATH]: the GETs restpeer answered (of PATH).
gets() {
	grep '"path"' "$T/$1.rest" | grep -c "\"path\":\"${2:-}" || true
}

# requests NAME N: restpeer has received at least N requests.
requests() {
	[ "$(count "$T/$1.rest" '"ev":"request"')" -ge "$2" ]
}

# jq NAME EXPR: a Python expression over the JSON lines L (a list).
jq() {
	"$PY" - "$T/$1.out" "$2" <<'PYEOF'
import json, sys
L = [json.loads(l) for l in open(sys.argv[1])]
print(eval(sys.argv[2]))
PYEOF
}

# a) Names, images, Fields=, parents' names; 100 events about 5 objects
# make 5 GETs (and one for the service); the secret appears nowhere.
set -- "service:update:$S/s1/"
for i in $(seq 0 99); do
	set -- "$@" "container:update:$C/c$((i % 5))000000/:$S/s1/"
done
enrich_events a "$@" >"$T/a.ws"
run a '{"delay": 0.02}' "$T/a.ws" 101 -o "Enrich.Fields=image_tag cpu_shares"
check "a: 101 lines" has_lines "$T/a.out" 101
check "a: the service's name" \
    [ "$(jq a 'L[0]["object"]["name"]')" = service-s1 ]
check "a: every container event named, with image and fields" \
    [ "$(jq a 'sum(1 for o in L[1:] if o["object"]["name"].startswith("container-c") and o["object"]["image"] == "nginx:1.25" and o["object"]["cpu_shares"] == 512 and o["object"]["image_tag"].startswith("/api/repo"))')" = 100 ]
check "a: the parent service's name" \
    [ "$(jq a 'sum(1 for o in L[1:] if o["object"]["parents"] == {"service": "service-s1"})')" = 100 ]
check "a: stream order kept" \
    [ "$(jq a '[o["uuid"] for o in L] == ["a-%d" % i for i in range(1, 102)]')" = True ]
check "a: 5 GETs for 100 container events" [ "$(gets a $C/)" = 5 ]
check "a: one GET for the service" [ "$(gets a $S/)" = 1 ]
check "a: the credential was sent" lacks "$T/a.rest" '"auth":false'
check "a: the secret is not in stdout" lacks "$T/a.out" "$SECRET"
check "a: the secret is not in stderr" lacks "$T/a.err" "$SECRET"
check "a: the API key is not in stderr" lacks "$T/a.err" "user:key"

# b) A delete evicts: update, delete (no GET; named from the cache),
# update (a new GET).
enrich_events b "container:update:$C/d1/" "container:delete:$C/d1/" \
    "container:update:$C/d1/" >"$T/b.ws"
run b '{}' "$T/b.ws" 3
check "b: 2 GETs (delete evicted, no GET for the delete)" \
    [ "$(gets b $C/d1/)" = 2 ]
check "b: the delete event carries the cached name" \
    [ "$(jq b 'L[1]["object"]["name"]')" = container-d1 ]

# c) 404: no object, remembered (one GET for two events).
enrich_events c "container:update:$C/gone/" "container:update:$C/gone/" \
    "container:update:$C/here/" >"$T/c.ws"
run c "{\"status\": {\"$C/gone/\": 404}}" "$T/c.ws" 3
check "c: events about a missing object have no object" \
    [ "$(jq c '["object" in o for o in L]')" = "[False, False, True]" ]
check "c: the 404 is cached" [ "$(gets c $C/gone/)" = 1 ]

# d) Slow lookups within TimeoutSec=: order kept, all named; beyond it:
# out after about TimeoutSec, in order, without names.
enrich_events d "container:update:$C/s1/" "stack:update:/api/app/v1/test/stack/k1/" \
    "container:update:$C/s2/" >"$T/d.ws"
run d '{"delay": 0.3}' "$T/d.ws" 3 -o Enrich.TimeoutSec=2s
check "d: slow lookups: order kept" \
    [ "$(jq d '[o["uuid"] for o in L]')" = "['d-1', 'd-2', 'd-3']" ]
check "d: slow lookups: all named" \
    [ "$(jq d 'sum(1 for o in L if "name" in o.get("object", {}))')" = 3 ]
enrich_events e "container:update:$C/t1/" "container:update:$C/t2/" >"$T/e.ws"
run e '{"delay": 3}' "$T/e.ws" 2 -o Enrich.TimeoutSec=300ms
check "e: timed-out lookups: out in order, without names" \
    [ "$(jq e '[(o["uuid"], "object" in o) for o in L]')" = "[('e-1', False), ('e-2', False)]" ]
check "e: TimeoutSec honoured (both out ${LINES_MS} ms after the start; the GETs take 3 s)" \
    [ "$LINES_MS" -lt 2500 ]

# e) The cache after the lookup ended: three events about one object,
# 0.4 s apart, make one GET; with CacheTTLSec=100ms each makes its own.
ENRICH_INTERVAL=0.4 enrich_events ca "container:update:$C/e1/" \
    "container:update:$C/e1/" "container:update:$C/e1/" >"$T/ca.ws"
run ca '{}' "$T/ca.ws" 3
check "e: 3 events 0.4 s apart, cached: 1 GET" [ "$(gets ca $C/e1/)" = 1 ]
check "e: ... all three named" \
    [ "$(jq ca 'sum(1 for o in L if o["object"]["name"] == "container-e1")')" = 3 ]
cp "$T/ca.ws" "$T/cb.ws"
run cb '{}' "$T/cb.ws" 3 -o Enrich.CacheTTLSec=100ms
check "e: with CacheTTLSec=100ms: 3 GETs" [ "$(gets cb $C/e1/)" = 3 ]

# f) 401: lookups stop (AuthBackoffSec), events go out at once; logged
# once; the stream is not touched.
set --
for i in 1 2 3 4 5 6; do set -- "$@" "container:update:$C/f$i/"; done
enrich_events f "$@" >"$T/f.ws"
run f '{"status": {"*": 401}}' "$T/f.ws" 6 -o Enrich.Concurrency=1
check "f: all 6 events out, without names" \
    [ "$(jq f 'sum(1 for o in L if "object" not in o)')" = 6 ]
check "f: one GET, then none (401 stops the lookups)" [ "$(gets f)" = 1 ]
check "f: logged once" [ "$(count "$T/f.err" "(unauthorized;")" = 1 ]
check "f: the stream stayed up" [ "$(count "$T/f.peer" '"ev":"connect"')" = 1 ]

# g) 429 with Retry-After: 1: no GET for a second, then again.
"$PY" - "$C" >"$T/g.ws" <<'PYEOF'
import json, sys
C = sys.argv[1]
ev = lambda i: json.dumps({"type": "container", "action": "update",
    "resource_uri": "%s/g%d/" % (C, i), "parents": [], "state": "Running",
    "uuid": "g-%d" % i})
json.dump([{"messages": [ev(1), ev(2), {"sleep": 1.5}, ev(3)],
            "after": "hold"}], sys.stdout)
PYEOF
run g "{\"status\": {\"$C/g1/\": 429}, \"headers\": {\"Retry-After\": \"1\"}}" \
    "$T/g.ws" 3 -o Enrich.Concurrency=1
check "g: 429: the next event makes no GET" [ "$(gets g $C/g2/)" = 0 ]
check "g: after Retry-After, lookups again" [ "$(gets g $C/g3/)" = 1 ]
check "g: the one after is named" \
    [ "$(jq g 'L[2]["object"]["name"]')" = container-g3 ]
check "g: logged as rate_limited" contains "$T/g.err" "(rate_limited;"

# h) 5xx, garbage and a huge body: no names, logged once per kind.
enrich_events h "container:update:$C/h1/" "container:update:$C/h2/" \
    "container:update:$C/h3/" "container:update:$C/h4/" \
    "container:update:$C/h5/" >"$T/h.ws"
run h "{\"status\": {\"$C/h1/\": 500, \"$C/h2/\": 503}, \"garbage\": [\"$C/h3/\"], \"huge\": [\"$C/h4/\"]}" \
    "$T/h.ws" 5
check "h: failed lookups: no object; the last one named" \
    [ "$(jq h '["object" in o for o in L]')" = "[False, False, False, False, True]" ]
check "h: 5xx logged once for two" [ "$(count "$T/h.err" "(server_error;")" = 1 ]
check "h: garbage and huge logged once as invalid" \
    [ "$(count "$T/h.err" "(invalid;")" = 1 ]
check "h: the stream stayed up" [ "$(count "$T/h.peer" '"ev":"connect"')" = 1 ]

# m) The HTTP/1.1 client (http.c) against other answers: chunked bodies on
# one kept-alive connection; Connection: close and HTTP/1.0, where each
# GET needs a connection of its own; a connection closed as it is reused.
conns() { count "$T/$1.rest" '"ev":"connect"'; }
for m in chunked close http10; do
	enrich_events "m$m" "container:update:$C/m1/" "container:update:$C/m2/" \
	    "container:update:$C/m3/" >"$T/m$m.ws"
	run "m$m" "{\"$m\": true}" "$T/m$m.ws" 3 -o Enrich.Concurrency=1
	check "m: $m: all three named" \
	    [ "$(jq "m$m" '[o["object"].get("name") for o in L]')" = "['container-m1', 'container-m2', 'container-m3']" ]
done
check "m: chunked: one kept-alive connection" [ "$(conns mchunked)" = 1 ]
check "m: Connection: close: a connection per GET" [ "$(conns mclose)" = 3 ]
check "m: HTTP/1.0: a connection per GET" [ "$(conns mhttp10)" = 3 ]
# A kept-alive connection the server closes as the next GET goes out:
# that GET is made again on a new connection.
enrich_events mdrop "container:update:$C/m1/" "container:update:$C/m2/" \
    "container:update:$C/m3/" >"$T/mdrop.ws"
run mdrop '{"drop": 0.3}' "$T/mdrop.ws" 3 -o Enrich.Concurrency=1
check "m: closed while reused: all three named" \
    [ "$(jq mdrop '[o["object"].get("name") for o in L]')" = "['container-m1', 'container-m2', 'container-m3']" ]
check "m: closed while reused: nothing logged" lacks "$T/mdrop.err" "enrichment:"

# k) Waiting events count against QueueMax: a full FIFO pauses reading;
# it resumes, and every event goes out, named, in order.
set --
for i in $(seq 1 40); do set -- "$@" "container:update:$C/k$i/"; done
enrich_events k "$@" >"$T/k.ws"
run k '{"delay": 0.2}' "$T/k.ws" 40 -o Output.QueueMax=8 \
    -o Enrich.TimeoutSec=30s -o Enrich.Concurrency=2
check "k: the full FIFO paused reading" \
    contains "$T/k.err" "wait for their lookups (QueueMax, QueueMaxBytes); reading paused"
check "k: all 40 out, named, in order" \
    [ "$(jq k '[o["uuid"] for o in L if "name" in o["object"]] == ["k-%d" % i for i in range(1, 41)]')" = True ]

# l) The REST server's certificate is verified as the stream's: a name it
# does not hold fails every lookup (no GET reaches it), the stream goes on.
enrich_events l "container:update:$C/l1/" "container:update:$C/l2/" >"$T/l.ws"
REST_CERT=other
run l '{}' "$T/l.ws" 2
REST_CERT=
check "l: a certificate for another name: no GET answered" [ "$(gets l)" = 0 ]
check "l: ... the events out without names" \
    [ "$(jq l 'sum(1 for o in L if "object" not in o)')" = 2 ]
check "l: ... the verification failure logged" \
    contains "$T/l.err" "certificate verification failed"

# j) [Spool] Mode=always: events waiting for their lookups survive kill -9
# (committed before they were parsed) and are written, named and in
# order, by the next run.
"$PY" - "$C" >"$T/j.ws" <<'PYEOF'
import json, sys
ev = lambda i: json.dumps({"type": "container", "action": "update",
    "resource_uri": "%s/j%d/" % (sys.argv[1], i), "parents": [],
    "state": "Running", "uuid": "j-%d" % i})
json.dump([{"messages": [ev(1), ev(2), ev(3)]}, {"messages": []}], sys.stdout)
PYEOF
if enrich_peers j '{"delay": 30}' "$T/j.ws"; then
	# shellcheck disable=SC2086
	"$DCEVENTS" -c /dev/null $ENRICH_OPTS -o Output.Journal=no \
	    -o Output.Stdout=yes -o Spool.Mode=always \
	    -o "Spool.Path=$T/spool.db" -o Enrich.TimeoutSec=60s \
	    >"$T/j1.out" 2>"$T/j1.err" &
	DC=$!
	wait_until 10 requests j 3 ||
	    echo "# j: only $(count "$T/j.rest" '"ev":"request"') GETs under way"
	kill -9 "$DC"
	wait "$DC" 2>/dev/null
	check "j: nothing written while the lookups were under way" \
	    test ! -s "$T/j1.out"
	printf '{}\n' >"$T/j.rs"
	# shellcheck disable=SC2086
	"$DCEVENTS" -c /dev/null $ENRICH_OPTS -o Output.Journal=no \
	    -o Output.Stdout=yes -o Spool.Mode=always \
	    -o "Spool.Path=$T/spool.db" >"$T/j2.out" 2>"$T/j2.err" &
	DC=$!
	PIDS="$PIDS $DC"
	wait_until 10 has_lines "$T/j2.out" 3
	sleep 0.2
	kill "$DC"
	wait "$DC"
	cp "$T/j2.out" "$T/j.out"
	check "j: after kill -9, the three events, named, in order" \
	    [ "$(jq j '[(o["uuid"], o["object"]["name"]) for o in L]')" = "[('j-1', 'container-j1'), ('j-2', 'container-j2'), ('j-3', 'container-j3')]" ]
	kill "$WP" "$RP" 2>/dev/null
	wait "$WP" "$RP" 2>/dev/null
else
	fail "j: the peers did not start"
fi

# i) Fields= refuses what can hold secrets, naming file and line.
printf '[Enrich]\nLookup=yes\nFields=name container_envvars\n' >"$T/bad.conf"
"$DCEVENTS" -c "$T/bad.conf" -t >/dev/null 2>"$T/bad.err"
check "i: Fields=container_envvars refused with file:line" \
    contains "$T/bad.err" "$T/bad.conf:3: Fields: invalid value \"name container_envvars\": container_envvars can hold secrets"

finish
