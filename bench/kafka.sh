#!/bin/sh
# make bench's Kafka rows (bench/kafka.py): dcevents into librdkafka's
# mock cluster beside a bare rd_kafka_producev loop.  No root needed.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ "${WITH_KAFKA:-yes}" = yes ] || skip "built --without-kafka: no Kafka rows"
[ -x "$PY" ] || skip "needs $PY (Debian's python3)"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" >/dev/null ||
    skip "cannot make test certificates"
PYTHONDONTWRITEBYTECODE=1
export T DCEVENTS top_srcdir PYTHONDONTWRITEBYTECODE
"$PY" "$top_srcdir/bench/kafka.py"
