# Helpers for the [Enrich] drivers (sourced after lib.sh): the websocket
# peer's script from event specs, and the two peers (tests/peers/wspeer.py,
# tests/peers/restpeer.py) started together.

SECRET=s3cr3t-envvar-value-7f1e # restpeer.py's, in container_envvars

# enrich_events NAME SPEC...: a websocket script on stdout, one message per
# SPEC "TYPE:ACTION:URI[:PARENT]", uuids NAME-1, NAME-2...; the messages
# ENRICH_INTERVAL seconds apart (default: at once).
enrich_events() {
	"$PY" - "$@" <<'PYEOF'
import json, os, sys
name, specs = sys.argv[1], sys.argv[2:]
msgs = []
for i, s in enumerate(specs):
    f = s.split(":")
    ev = {"type": f[0], "action": f[1], "resource_uri": f[2],
          "parents": f[3:], "state": "Running", "uuid": "%s-%d" % (name, i + 1),
          "datetime": "2016-02-01T16:47:28Z"}
    msgs.append(json.dumps(ev))
json.dump([{"messages": msgs, "after": "hold",
            "interval": float(os.environ.get("ENRICH_INTERVAL", "0"))}],
          sys.stdout)
PYEOF
}

# enrich_peers NAME REST_SCRIPT WS_SCRIPT_FILE: start both peers (the REST
# one expects user:key and serves $T/pki/$REST_CERT.pem, default server), set WP, RP and ENRICH_OPTS (dcevents' options for
# them: stream, CA, credential, Lookup=yes, URL); 1 if they do not start.
enrich_peers() {
	printf '%s\n' "$2" >"$T/$1.rs"
	rm -f "$T/$1.wport" "$T/$1.rport"
	"$PY" "$top_srcdir/tests/peers/wspeer.py" --portfile "$T/$1.wport" \
	    --log "$T/$1.peer" --script "$3" --cert "$T/pki/server.pem" \
	    --key "$T/pki/server.key" 2>"$T/$1.wserr" &
	WP=$!
	"$PY" "$top_srcdir/tests/peers/restpeer.py" --portfile "$T/$1.rport" \
	    --log "$T/$1.rest" --script "$T/$1.rs" \
	    --auth "Basic $(printf 'user:key' | base64)" \
	    --cert "$T/pki/${REST_CERT:-server}.pem" \
	    --key "$T/pki/${REST_CERT:-server}.key" \
	    2>"$T/$1.rserr" &
	RP=$!
	PIDS="$PIDS $WP $RP"
	wait_until 10 test -s "$T/$1.wport" -a -s "$T/$1.rport" || return 1
	printf 'key\n' >"$T/apikey"
	ENRICH_OPTS="-o Stream.URL=wss://localhost:$(cat "$T/$1.wport")/
	    -o Stream.CAFile=$T/pki/ca.pem -o Stream.User=user
	    -o Stream.APIKeyFile=$T/apikey -o Enrich.Lookup=yes
	    -o Enrich.URL=https://localhost:$(cat "$T/$1.rport")/"
}
