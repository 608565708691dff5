#!/bin/sh
# [Enrich] in all three outputs at once: a private journald (the journal
# fields and MESSAGE), a real rsyslogd over TCP (RFC 5424 SD-PARAMs and
# MSG) and stdout (the "object" member), the names coming from
# tests/peers/restpeer.py; a secret in container_envvars appears in none of
# them, nor on stderr.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/journal.sh"
journal_enter "$@"
. "$top_srcdir/tests/lib/lib.sh"
. "$top_srcdir/tests/lib/rsyslog.sh"
. "$top_srcdir/tests/lib/enrich.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the peers"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"
journal_start
rsyslog_start

A=/api/app/v1/test
I=/api/infra/v1/test
enrich_events o "service:update:$A/service/s1/" \
    "container:update:$A/container/c1000000/:$A/service/s1/" \
    "node:update:$I/node/n1000000/" "nodecluster:update:$I/nodecluster/k1/" \
    >"$T/o.ws"
enrich_peers o '{}' "$T/o.ws" || skip "the peers did not start"
# shellcheck disable=SC2086
"$DCEVENTS" -c /dev/null $ENRICH_OPTS -o Output.Journal=yes \
    -o "Output.Syslog=tcp://127.0.0.1:$RSYSLOG_TCP_PORT" -o Output.Stdout=yes \
    -o "Enrich.Fields=image_tag,region" >"$T/o.out" 2>"$T/o.err" &
DC=$!
PIDS="$PIDS $DC"
check "journal: 4 event records" journal_wait DOCKERCLOUD_UUID=o-4 1 10
check "syslog: 4 event records (and the connected one)" \
    rsyslog_wait "$T/rsyslog-tcp.json" 5 10
check "stdout: 4 lines" wait_until 10 has_lines "$T/o.out" 4
kill "$DC"
wait "$DC"
check "exit 0 after SIGTERM" test $? -eq 0
journal_json DOCKERCLOUD_TYPE=container >"$T/j.json"
journal_json >"$T/all.json"

# jf MATCH FIELD: FIELD of the journal record with DOCKERCLOUD_UUID=MATCH.
jf() {
	"$PY" - "$T/all.json" "$1" "$2" <<'PYEOF'
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o.get("DOCKERCLOUD_UUID") == sys.argv[2]:
        print(o.get(sys.argv[3]))
PYEOF
}
check "journal: DOCKERCLOUD_NAME of the container" \
    [ "$(jf o-2 DOCKERCLOUD_NAME)" = container-c100 ]
check "journal: DOCKERCLOUD_IMAGE" [ "$(jf o-2 DOCKERCLOUD_IMAGE)" = nginx:1.25 ]
check "journal: DOCKERCLOUD_OBJECT_IMAGE_TAG (Fields=)" \
    [ "$(jf o-2 DOCKERCLOUD_OBJECT_IMAGE_TAG)" = /api/repo/v1/tag/nginx/1.25/ ]
check "journal: the parent service's name" \
    [ "$(jf o-2 DOCKERCLOUD_SERVICE_NAME)" = service-s1 ]
check "journal: MESSAGE uses the name" \
    [ "$(jf o-2 MESSAGE)" = "container container-c100 (c1000000) update: Running" ]
check "journal: a node's name is its external_fqdn" \
    [ "$(jf o-3 DOCKERCLOUD_NAME)" = n1000000.node.dockerapp.io ]
check "journal: a node's region (Fields=)" \
    [ "$(jf o-3 DOCKERCLOUD_OBJECT_REGION)" = /api/infra/v1/region/aws/us-east-1/ ]
check "journal: the node cluster's name" \
    [ "$(jf o-4 DOCKERCLOUD_NAME)" = nodecluster-k1 ]

# sf UUID: the syslog record of the event with that uuid (SD and MSG).
sf() {
	"$PY" - "$T/rsyslog-tcp.json" "$1" <<'PYEOF'
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if 'uuid="%s"' % sys.argv[2] in o["structured_data"]:
        print(o["structured_data"])
        print(o["msg"])
PYEOF
}
sf o-2 >"$T/s2"
check "syslog: name= and image= SD-PARAMs" \
    contains "$T/s2" 'name="container-c100" image="nginx:1.25"'
check "syslog: object.image_tag= (Fields=)" \
    contains "$T/s2" 'object.image_tag="/api/repo/v1/tag/nginx/1.25/"'
check "syslog: parent.service=" contains "$T/s2" 'parent.service="service-s1"'
check "syslog: MSG uses the name" \
    contains "$T/s2" "container container-c100 (c1000000) update: Running"
check "stdout: the object member" \
    contains "$T/o.out" '"object":{"name":"container-c100","image":"nginx:1.25","image_tag":"/api/repo/v1/tag/nginx/1.25/","parents":{"service":"service-s1"}}'
check "restpeer: one GET per object" [ "$(grep -c '"path"' "$T/o.rest")" = 4 ]
for f in all.json rsyslog-tcp.json o.out o.err; do
	check "the container_envvars secret is not in $f" lacks "$T/$f" "$SECRET"
done
check "the API key is not in the journal" lacks "$T/all.json" "user:key"
finish
