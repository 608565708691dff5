#!/bin/sh
# The Kafka output against librdkafka's mock cluster (tests/peers/kafkamock:
# 3 brokers on loopback, the Kafka protocol on real sockets), read back with
# Debian's kcat; tests/peers/kafkacheck.py compares every message (value,
# key, headers, order per object) with what wspeer sent and Stdout= wrote.
# (a) a plain run; (b) all brokers down, then up: nothing lost, no
# duplicate; (c) one broker down; (d) Produce requests failing (request
# timed out, not leader), at the start and mid-stream; (e) a topic that
# does not exist; (f) bad Option= lines: file:line errors, exit 1; (g)
# SIGTERM with the brokers down: the records are counted, and with [Spool]
# Mode=always kept and delivered after the restart; (h) a fatal error of
# the idempotent producer (its producer id refused) with records waiting:
# a new producer sends them, none lost.  Skips when built --without-kafka.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

MOCK=$top_builddir/tests/peers/kafkamock
if [ "${WITH_KAFKA:-yes}" != yes ]; then
	# Built without: a [Kafka] key is a clear configuration error.
	"$DCEVENTS" -c /dev/null -o Kafka.Brokers=localhost:9092 -t \
	    >"$T/nokafka" 2>&1
	check "without Kafka: Brokers= is refused, exit 1" test $? -eq 1
	check "without Kafka: the error says so" contains "$T/nokafka" \
	    "Brokers: this dcevents was built without Kafka"
	[ "$failures" -eq 0 ] || finish
	skip "built --without-kafka (the [Kafka] keys are refused: checked)"
fi
[ -x "$MOCK" ] || skip "tests/peers/kafkamock is not built (make check builds it)"
command -v kcat >/dev/null || skip "needs kcat (apt-get install kcat)"
[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the websocket peer"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"

# One connection per run: 8 objects' events interleaved, states cycling.
"$PY" - >"$T/script.json" <<'PYEOF'
import json
def conn(p, n):
    states = ["Starting", "Running", "Stopping", "Stopped"]
    return {"messages": [json.dumps({
        "type": "container", "action": "update", "state": states[i % 4],
        "uuid": "%s-%04d" % (p, i),
        "resource_uri": "/api/app/v1/ns1/container/obj-%s-%d/" % (p, i % 8),
        "datetime": "2016-03-08T14:03:21Z"}) for i in range(n)]}
print(json.dumps([conn("a", 400), conn("b", 200), conn("c", 200),
                  dict(conn("d", 200), interval=0.02), conn("e", 50),
                  conn("g", 100), conn("s", 100), {"messages": []},
                  conn("h", 100)]))
PYEOF
wspeer_start "$T/script.json"

# The cluster: commands on a FIFO held open on fd 4, answers in $T/mock.out.
mkfifo "$T/mock.in"
"$MOCK" dc.events <"$T/mock.in" >"$T/mock.out" 2>"$T/mock.err" &
MOCKPID=$!
PIDS="$PIDS $MOCKPID"
exec 4>"$T/mock.in"
wait_until 5 has_lines "$T/mock.out" 1 || skip "the mock cluster did not start"
B=$(head -n 1 "$T/mock.out")
mock() {
	echo "$*" >&4
	wait_for "$T/mock.out" "ok $*"
}

# dc NAME TOPIC [options]: dcevents into TOPIC, stdout $T/NAME.out.
dc() {
	_n=$1 _t=$2
	DCNAME=$1
	shift 2
	"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o Stream.Namespace=ns1 \
	    -o Output.Journal=no -o Output.Stdout=yes -o "Kafka.Brokers=$B" \
	    -o "Kafka.Topic=$_t" "$@" >"$T/$_n.out" 2>"$T/$_n.err" &
	DC=$!
	PIDS="$PIDS $DC"
}
# consume TOPIC: the topic's messages to $T/TOPIC.json (kcat, JSON lines).
consume() {
	timeout 5 kcat -C -J -q -b "$B" -t "$1" -o beginning -e \
	    >"$T/$1.json" 2>"$T/$1.kcat"
}
# delivered TOPIC N SECONDS: until the topic holds N messages (at most
# SECONDS); shows the run's log if it never does.
delivered() {
	_end=$(( $(now_ms) + $3 * 1000 ))
	while [ "$(now_ms)" -lt "$_end" ]; do
		consume "$1" && has_lines "$T/$1.json" "$2" && return 0
		sleep 0.2
	done
	echo "# $1: $(wc -l <"$T/$1.json") messages of $2"
	tail -n 8 "$T/$1.kcat" "$T/$DCNAME.err" | sed 's/^/#   /'
	return 1
}
stop() {
	kill -TERM "$DC"
	wait "$DC"
}
# compare TOPIC RUN CONNECTION [RUNS]
compare() {
	"$PY" "$top_srcdir/tests/peers/kafkacheck.py" "$T/$1.json" \
	    "$T/script.json" "$T/$2.out" "$3" "${4:-1}"
}

# (a) a plain run.
dc a ta
check "(a) 400 events delivered" delivered ta 400 15
check "(a) each once, value = the Stdout= line, key, headers, order per key" \
    compare ta a 1
stop

# (b) every broker down before the events come, then up.
mock down all
dc b tb
check "(b) the events arrived from the stream" wait_until 5 has_lines "$T/b.out" 200
check "(b) the output is reported down" \
    wait_for "$T/b.err" "kafka output is down" 10
mock up all
check "(b) all delivered once the brokers are back" delivered tb 200 20
check "(b) nothing lost, no duplicate, order kept" compare tb b 2
check "(b) the output is reported back" wait_for "$T/b.err" "kafka output is back" 5
stop
grep kafka "$T/b.err" | sed 's/^/# (b) /'

# (c) one broker down: the others' partitions go on, its own wait.
mock down 2
dc c tc
check "(c) the events arrived from the stream" wait_until 5 has_lines "$T/c.out" 200
sleep 1
mock up 2
check "(c) all delivered once the broker is back" delivered tc 200 20
check "(c) nothing lost, no duplicate, order kept" compare tc c 3
stop

# (d) Produce requests fail (request timed out, not leader), injected by
# the mock cluster into the first requests, and once every partition's
# first request went through (librdkafka's debug=msg lines tell) into
# those that follow, mid-stream: the events come every 20 ms, the brokers
# answer 50 ms late.  Run with one request in flight per broker: the mock
# cluster does not check the idempotent producer's sequence numbers
# (librdkafka checks them there only for a transactional producer), so
# with several in flight it stores the request after a failed one, which
# a broker refuses (OUT_OF_ORDER_SEQUENCE_NUMBER), and librdkafka, rightly
# for a broker, takes that success for proof that the failed request was
# stored ("implicitly acked") and reports its records delivered: lost in
# the mock, not in Kafka (README, "Kafka").
failed_requests() {
	[ "$(count "$T/d.err" "encountered error: Broker: ")" -ge "$1" ]
}
# The topic's 4 partitions (the mock's default) each had a first request
# stored.
first_requests_stored() {
	[ "$(count "$T/d.err" "(MsgId 1, BaseSeq 0) delivered")" -ge 4 ]
}
mock rtt all 50
mock errors 4 REQUEST_TIMED_OUT NOT_LEADER_FOR_PARTITION
dc d td -v -o Kafka.Option=max.in.flight.requests.per.connection=1 \
    -o Kafka.Option=debug=msg
t0=$(now_ms)
check "(d) the first requests failed" wait_until 10 failed_requests 4
check "(d) then went through" wait_until 10 first_requests_stored
echo "# (d) more errors after $(( $(now_ms) - t0 )) ms," \
    "$(wc -l <"$T/d.out") of 200 events"
mock errors 12 REQUEST_TIMED_OUT NOT_LEADER_FOR_PARTITION
check "(d) all delivered despite the failed requests" delivered td 200 20
check "(d) nothing lost, no duplicate, order kept" compare td d 4
stop
mock no-errors
mock rtt all 0
check "(d) requests after the first ones failed too" sh -c \
    "grep 'encountered error: Broker: ' '$T/d.err' | grep -qv '(MsgId 1,'"
check "(d) no record taken for stored on a later request's success" \
    lacks "$T/d.err" "implicitly acked by subsequent batch success"
grep kafka "$T/d.err" | grep -v ' debug: ' | sed 's/^/# (d) /'

# (e) a topic nobody created: the mock cluster, like a broker with
# auto.create.topics.enable=true (Kafka's default), creates it.
dc e never.created
check "(e) delivered into the topic the cluster created" \
    delivered never.created 50 20
check "(e) nothing lost, no duplicate, order kept" compare never.created e 5
timeout 10 kcat -L -b "$B" -t never.created >"$T/e.meta" 2>&1
check "(e) kcat -L shows the new topic" contains "$T/e.meta" 'topic "never.created" with'
stop
grep kafka "$T/e.err" | sed 's/^/# (e) /'

# (f) bad Option= lines: each named with file:line; exit 1; -t masks.
cat >"$T/bad.conf" <<EOF2
[Kafka]
Brokers=$B
Option=enable.idempotence=false
Option=acks=1
Option=no.such.property=1
Option=sasl.password=hunter2
Option=without-a-value
Option=request.required.acks=0
Option=message.timeout.ms=5000
Option=linger.ms=5
EOF2
"$DCEVENTS" -c "$T/bad.conf" -t >"$T/f.out" 2>"$T/f.err"
check "(f) -t exits 1" test $? -eq 1
check "(f) enable.idempotence=false refused at its line" \
    contains "$T/f.err" "bad.conf:3: Option: refused: enable.idempotence must stay true"
check "(f) acks=1 refused at its line" \
    contains "$T/f.err" "bad.conf:4: Option: refused: acks must stay all"
check "(f) an unknown property: librdkafka's words, at its line" \
    contains "$T/f.err" "bad.conf:5: Option: No such configuration property: \"no.such.property\""
check "(f) sasl.password refused at its line" \
    contains "$T/f.err" "bad.conf:6: Option: refused: sasl.password comes from PasswordFile="
check "(f) KEY=VALUE expected" contains "$T/f.err" "bad.conf:7: Option: invalid value"
check "(f) an alias of acks refused too" contains "$T/f.err" "bad.conf:8: Option: refused: acks"
check "(f) a message timeout refused" contains "$T/f.err" "bad.conf:9: Option: refused: message.timeout.ms"
check "(f) a good line is not an error" lacks "$T/f.err" "bad.conf:10"
check "(f) the password is not printed" lacks "$T/f.err" hunter2
# A password from PasswordFile=: masked in -t, never printed.
printf 'hunter3\n' >"$T/kpass"
"$DCEVENTS" -c /dev/null -o "Kafka.Brokers=$B" -o "Kafka.PasswordFile=$T/kpass" \
    -o Kafka.Option=sasl.username=u -o Kafka.Option=ssl.key.password=k3y \
    -t >"$T/f2.out" 2>&1
check "(f) -t with PasswordFile= exits 0" test $? -eq 0
check "(f) -t says where the password comes from, masked" \
    contains "$T/f2.out" "# sasl.password: (masked) from $T/kpass"
check "(f) -t masks a password Option=" contains "$T/f2.out" "Option=ssl.key.password=(masked)"
check "(f) neither secret is printed" sh -c "! grep -q 'hunter3\|k3y' '$T/f2.out'"
"$DCEVENTS" -c /dev/null -o "Kafka.Brokers=$B" -o Output.Journal=no \
    -o Output.Stdout=no -t >"$T/f4.out" 2>&1
check "(f) Kafka alone is an output (-t exits 0)" test $? -eq 0
mkdir "$T/cred"
printf 'hunter4\n' >"$T/cred/kafkapassword"
CREDENTIALS_DIRECTORY=$T/cred "$DCEVENTS" -c /dev/null -o "Kafka.Brokers=$B" \
    -t >"$T/f3.out" 2>&1
check "(f) the credential kafkapassword is taken, masked" \
    contains "$T/f3.out" "# sasl.password: (masked) from $T/cred/kafkapassword"

# (g) SIGTERM with the brokers down: out within the 2 s, what is left
# counted; with the spool it stays there and goes out after a restart.
mock down all
dc g tg
wait_until 5 has_lines "$T/g.out" 100
sleep 0.5
t0=$(now_ms)
stop
rc=$? took=$(( $(now_ms) - t0 ))
check "(g) exit 0 within 2 s at SIGTERM (${took} ms)" test "$rc" -eq 0 -a "$took" -lt 2000
check "(g) the 100 undelivered records are counted" \
    contains "$T/g.err" "100 records could not be written before the exit"
dc s ts -o Spool.Mode=always -o "Spool.Path=$T/spool.db"
wait_until 5 has_lines "$T/s.out" 100
sleep 0.5
stop
check "(g) with the spool: counted at the exit too" \
    contains "$T/s.err" "100 records could not be written before the exit"
mock up all
mv "$T/s.out" "$T/s1.out"
dc s ts -o Spool.Mode=always -o "Spool.Path=$T/spool.db"
check "(g) after the restart the spooled events are delivered" \
    delivered ts 100 20
check "(g) each once, in order" compare ts s1 7
stop
cp "$T/s1.out" "$T/s.out"

# (h) records wait for brokers that are down; when they come back, the
# producer id is refused: a fatal error.  The producer is made anew and
# every record not stored is handed to it again.
mock down all
dc h th
check "(h) the events arrived from the stream" wait_until 5 has_lines "$T/h.out" 100
mock pid-errors 1 CLUSTER_AUTHORIZATION_FAILED
mock up all
check "(h) all delivered by the new producer" delivered th 100 20
check "(h) nothing lost, no duplicate, order kept" compare th h 9
check "(h) the fatal error is reported" contains "$T/h.err" \
    "kafka: fatal error: Failed to acquire idempotence PID"
stop

check "no sanitizer report in any run" \
    sh -c "! grep -l 'Sanitizer\|runtime error' '$T'/*.err"
exec 4>&-
finish
