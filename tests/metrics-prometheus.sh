#!/bin/sh
# The metrics against a real Prometheus: Debian's prometheus server,
# started here on loopback with conf/prometheus/prometheus.yml (paths and
# targets substituted) and the rules of conf/prometheus/dcevents.rules.yml,
# scrapes two daemons every second; the values are read back through its
# HTTP API and compared with what tests/peers/wspeer.py sent.
#   A: healthy: stdout into a file; events of every type, each one of
#      five sent twice (duplicates), two invalid messages.
#   B: both outputs down: stdout into a stopped reader whose pipe is full,
#      syslog over TCP to a port nobody listens on; QueueMax=20, so
#      that reading pauses.
# For both: every family present, received - duplicates + daemon records
# = written + dropped + queued for each output, in Prometheus and in each
# of many scrapes taken while the events flow; B's queue alert is pending;
# promtool lints the exposition and checks the rules and the config.
. "$(dirname "$0")/lib/lib.sh"

command -v prometheus >/dev/null && command -v promtool >/dev/null ||
	skip "needs Debian's prometheus (prometheus, promtool)"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"

RULES=$top_srcdir/conf/prometheus/dcevents.rules.yml
check "promtool check rules: the README's alerting rules" \
    promtool check rules "$RULES"
# The README shows both files verbatim.
for f in prometheus.yml dcevents.rules.yml; do
	"$PY" -c 'import sys; sys.exit(open(sys.argv[2]).read() not in open(sys.argv[1]).read())' \
	    "$top_srcdir/README.md" "$top_srcdir/conf/prometheus/$f"
	check "README.md holds conf/prometheus/$f verbatim" test $? -eq 0
done

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The stream: N events of every type, five of them twice, two invalid
# messages, then held open.
"$PY" - >"$T/script.json" <<'PYEOF'
import json
types = ["stack", "service", "container", "nodecluster", "node", "action",
         "error", "auth"]
msgs = []
for i in range(120):
    t = types[i % len(types)]
    msgs.append(json.dumps({"type": t, "action": "update", "state": "Running",
                            "uuid": "u-%d" % i,
                            "resource_uri": "/api/app/v1/%s/%d/" % (t, i),
                            "pad": "x" * 200}))
msgs += msgs[3:8]                         # duplicates
msgs += ["{not json", "[1, 2]"]           # invalid_json, not_an_object
print(json.dumps([{"messages": msgs, "interval": 0.005, "after": "hold"}]))
PYEOF
SENT=127 DUPS=5 EVENTS=125
wspeer_start "$T/script.json"

MA=$(free_port)
MB=$(free_port)
PP=$(free_port)
DEAD=$(free_port)

common="-c /dev/null -o Stream.URL=wss://localhost:$PORT/ -o Stream.CAFile=$T/pki/ca.pem \
    -o Output.Journal=no -o Output.Stdout=yes"
# shellcheck disable=SC2086
"$DCEVENTS" $common -o "Metrics.Listen=127.0.0.1:$MA" >"$T/a.out" 2>"$T/a.err" &
A=$!
PIDS="$PIDS $A"
stopped_reader "$T/fifo" "$T/b.out" full
# shellcheck disable=SC2086
"$DCEVENTS" $common -o "Metrics.Listen=127.0.0.1:$MB" -o Output.QueueMax=20 \
    -o "Output.Syslog=tcp://127.0.0.1:$DEAD" >"$T/fifo" 2>"$T/b.err" &
B=$!
PIDS="$PIDS $B"

# Scrapes taken while the events flow: each must hold the invariant.
"$PY" - "$MA" "$MB" "$T/scrapes" <<'PYEOF' &
import sys, time, urllib.request
a, b, out = sys.argv[1], sys.argv[2], sys.argv[3]
end = time.monotonic() + 3
n = 0
with open(out, "w") as f:
    while time.monotonic() < end:
        for port in (a, b):
            try:
                body = urllib.request.urlopen(
                    "http://127.0.0.1:%s/metrics" % port, timeout=2).read()
            except OSError:
                continue
            f.write(body.decode() + "\n#EOF\n")
            n += 1
        time.sleep(0.01)
PYEOF
SCRAPER=$!

# Prometheus, as the README configures it, scraping every second.
sed -e "s|/etc/prometheus/dcevents.rules.yml|$RULES|" \
    -e "s|scrape_interval: 15s|scrape_interval: 1s|" \
    -e "s|evaluation_interval: 15s|evaluation_interval: 1s|" \
    -e "s|\['localhost:9464'\]|['127.0.0.1:$MA', '127.0.0.1:$MB']|" \
    "$top_srcdir/conf/prometheus/prometheus.yml" >"$T/prometheus.yml"
check "promtool check config: the README's scrape configuration" \
    promtool check config "$T/prometheus.yml"
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
    --web.listen-address="127.0.0.1:$PP" >"$T/prom.log" 2>&1 &
PIDS="$PIDS $!"
API=http://127.0.0.1:$PP/api/v1

# query PROMQL: the result's values, one "labels value" a line.
query() {
	"$PY" - "$API" "$1" <<'PYEOF'
import json, sys, urllib.parse, urllib.request
url = sys.argv[1] + "/query?" + urllib.parse.urlencode({"query": sys.argv[2]})
try:
    r = json.load(urllib.request.urlopen(url, timeout=5))
except OSError:
    sys.exit(1)
for s in r["data"]["result"]:
    m = s["metric"]
    print(",".join("%s=%s" % kv for kv in sorted(m.items()) if kv[0] != "job"),
          s["value"][1])
PYEOF
}

# value PROMQL: the single value of the query (empty if none).
value() {
	query "$1" | awk '{ print $NF }' | head -1
}

# is PROMQL VALUE: the query's single value is VALUE.
is() {
	[ "$(value "$1")" = "$2" ]
}

wait_for "$T/a.out" '"uuid":"u-119"' 15
sleep 0.2
check "A wrote every event but the duplicates" test "$(wc -l <"$T/a.out")" -eq $((EVENTS - DUPS))
wait "$SCRAPER"

check "Prometheus scrapes both daemons" wait_until 30 is "count(up == 1)" 2
iA="instance=\"127.0.0.1:$MA\""
iB="instance=\"127.0.0.1:$MB\""
# Once a scrape has seen them all.
wait_until 10 is "sum(dcevents_events_received_total{$iA})" $EVENTS
check "A: events received = events sent ($EVENTS, duplicates included)" \
    is "sum(dcevents_events_received_total{$iA})" $EVENTS
check "A: 5 duplicates" is "dcevents_events_duplicate_total{$iA}" $DUPS
check "A: 15 container events" \
    is "dcevents_events_received_total{$iA,type=\"container\"}" 15
check "A: 16 of type auth (one a duplicate) counted as other" \
    is "dcevents_events_received_total{$iA,type=\"other\"}" 16
check "A: one invalid JSON message" \
    is "dcevents_messages_invalid_total{$iA,reason=\"invalid_json\"}" 1
check "A: one message not an object" \
    is "dcevents_messages_invalid_total{$iA,reason=\"not_an_object\"}" 1
check "A: stdout wrote $((EVENTS - DUPS)) records" \
    is "dcevents_records_written_total{$iA,output=\"stdout\"}" $((EVENTS - DUPS))
check "A: its stdout queue is empty" \
    is "dcevents_queue_records{$iA,output=\"stdout\"}" 0
check "A: connected, one connect" \
    is "dcevents_connected{$iA} + dcevents_connects_total{$iA}" 2
check "A: the last event's time is within the last minute" \
    is "time() - dcevents_last_event_timestamp_seconds{$iA} < bool 60" 1
check "A: build_info has the version" \
    is "count(dcevents_build_info{$iA,version=\"$("$DCEVENTS" -V | cut -d' ' -f2)\"})" 1

check "B: reading paused at QueueMax: 10 to 30 events received" \
    is "(sum(dcevents_events_received_total{$iB}) >= 10) <= bool 30" 1
check "B: stdout (stopped) wrote nothing, 10 or more records wait" \
    is "dcevents_records_written_total{$iB,output=\"stdout\"} == 0 and dcevents_queue_records{$iB,output=\"stdout\"} >= 10" 0
check "B: syslog (down) wrote nothing and failed" \
    is "dcevents_records_written_total{$iB,output=\"syslog\"} == 0 and dcevents_output_errors_total{$iB,output=\"syslog\"} > 0" 0
check "B: the syslog queue holds the records" \
    is "dcevents_queue_records{$iB,output=\"syslog\"} >= bool 20" 1
check "B: the capacity is QueueMax=20" \
    is "max(dcevents_queue_capacity_records{$iB})" 20

# The invariant, per daemon and output, in Prometheus.
INV='dcevents_records_written_total
    + on(instance, output) sum without(reason) (dcevents_records_dropped_total)
    + on(instance, output) dcevents_queue_records
    - on(instance, output) dcevents_records_daemon_total
    - on(instance) group_left() (sum by (instance) (dcevents_events_received_total)
        - on(instance) sum by (instance) (dcevents_events_duplicate_total))
    and on(instance, output) dcevents_output_open == 1'
query "$INV" >"$T/inv"
sed 's/^/# invariant: /' "$T/inv"
check "the invariant has a series for each open output (A: 1, B: 2)" \
    test "$(wc -l <"$T/inv")" -eq 3
check "received - duplicates + daemon = written + dropped + queued, each output" \
    test "$(awk '$NF != 0' "$T/inv" | wc -l)" -eq 0

check "every family is present from start (A and B alike)" \
    is "count(count by (__name__) ({__name__=~\"dcevents_.*|process_.*\", $iB}))" \
    "$(value "count(count by (__name__) ({__name__=~\"dcevents_.*|process_.*\", $iA}))")"
check "28 families" \
    is "count(count by (__name__) ({__name__=~\"dcevents_.*|process_.*\", $iA}))" 28
check "process_ families: resident memory, fds, start time" \
    is "count(process_resident_memory_bytes > 0) + count(process_open_fds > 0) + count(process_start_time_seconds > 1e9)" 6

check "the queue alert is pending or firing for B's stdout" \
    wait_until 10 sh -c "curl -s $API/alerts | grep -q DcEventsQueueHigh"
curl -s "$API/alerts" >"$T/alerts"
check "...and for B only" lacks "$T/alerts" "127.0.0.1:$MA"

# Every scrape taken while the events flowed.
"$PY" - "$T/scrapes" >"$T/scrapes.result" <<'PYEOF'
import collections, re, sys
bodies = open(sys.argv[1]).read().split("#EOF\n")
bad = n = 0
for body in bodies:
    if not body.strip():
        continue
    n += 1
    v = collections.defaultdict(float)
    per = collections.defaultdict(lambda: collections.defaultdict(float))
    for line in body.splitlines():
        if line.startswith("#") or not line:
            continue
        m = re.match(r'(\w+)(?:\{(.*)\})? (\S+)$', line)
        name, labels, val = m.group(1), m.group(2) or "", float(m.group(3))
        lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        v[name] += val
        if "output" in lab:
            per[lab["output"]][name] += val
    for o, p in per.items():
        if p["dcevents_output_open"] != 1:
            continue
        lhs = (v["dcevents_events_received_total"]
               - v["dcevents_events_duplicate_total"]
               + p["dcevents_records_daemon_total"])
        rhs = (p["dcevents_records_written_total"]
               + p["dcevents_records_dropped_total"]
               + p["dcevents_queue_records"])
        if lhs != rhs:
            bad += 1
            print("# %s: %g != %g" % (o, lhs, rhs))
print("scrapes", n, "bad", bad)
PYEOF
cat "$T/scrapes.result"
check "the invariant held in each of many scrapes taken while events flowed" \
    grep -q "bad 0$" "$T/scrapes.result"
check "...which were at least 50" \
    test "$(awk '{ print $2 }' "$T/scrapes.result" | tail -1)" -ge 50

curl -s "http://127.0.0.1:$MA/metrics" >"$T/expo"
promtool check metrics <"$T/expo" >"$T/lint" 2>&1
rc=$?
sed 's/^/# promtool: /' "$T/lint"
check "promtool check metrics: the exposition lints clean" test "$rc" -eq 0 -a ! -s "$T/lint"

kill -CONT "$READER"
kill "$A" "$B"
wait "$A"
check "A exits 0 at SIGTERM" test $? -eq 0
finish
