#!/bin/sh
# A server limited to TLS 1.0 or 1.1: the failure names the protocol
# version, with OpenSSL's reason, whichever way the server refuses.  A
# legacy server answers with a ServerHello of its own version (OpenSSL:
# "unsupported protocol"); a current OpenSSL limited to 1.1 (openssl
# s_server -tls1_1) sends a protocol_version alert; Python's asyncio
# drops that alert and just closes.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/lib.sh"

[ -x "$PY" ] || skip "needs $PY (Debian's python3) for the TLS servers"
sh "$top_srcdir/tests/lib/certs.sh" "$T/pki" || skip "cannot make test certificates"

# A TLS server on loopback, as MODE says; writes its port to $T/port.
cat >"$T/server.py" <<'PYEOF'
import asyncio, os, socket, ssl, sys, warnings
warnings.simplefilter("ignore")         # the old protocol constants
mode, cert, key, portfile = sys.argv[1:5]
if mode in ("legacy1.0", "legacy1.1"):
    # A version-specific method: it takes TLS 1.2 hellos and answers 1.x.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLSv1 if mode == "legacy1.0"
                         else ssl.PROTOCOL_TLSv1_1)
else:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
ctx.load_cert_chain(cert, key)

def ready(port):
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.replace(portfile + ".tmp", portfile)

async def serve(r, w):
    try:
        await w.start_tls(ctx)
    except Exception as e:
        print("handshake failed:", e, flush=True)
    w.close()

async def main():
    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    ready(srv.sockets[0].getsockname()[1])
    await asyncio.sleep(60)

if mode == "asyncio":
    asyncio.run(main())
else:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    ready(s.getsockname()[1])
    while True:
        c, _ = s.accept()
        try:
            ctx.wrap_socket(c, server_side=True)
        except Exception as e:
            print("handshake failed:", e, flush=True)
        c.close()
PYEOF

# attempt NAME: the daemon against the server on $PORT until its first
# failure; the warning is in $T/NAME.err.
attempt() {
	"$DCEVENTS" -c /dev/null -o "Stream.URL=wss://localhost:$PORT/" \
	    -o "Stream.CAFile=$T/pki/ca.pem" -o Output.Journal=no \
	    -o Output.Stdout=yes >/dev/null 2>"$T/$1.err" &
	dc=$!
	wait_until 5 contains "$T/$1.err" "cannot connect to"
	kill "$dc"
	wait "$dc"
	grep "cannot connect" "$T/$1.err" | head -1 | sed 's/^/# /'
}

server() {
	rm -f "$T/port"
	"$PY" "$T/server.py" "$1" "$T/pki/server.pem" "$T/pki/server.key" \
	    "$T/port" >"$T/$1.server" 2>&1 &
	SERVER=$!
	PIDS="$PIDS $SERVER"
	wait_until 5 test -s "$T/port" || skip "the $1 TLS server did not start"
	PORT=$(cat "$T/port")
}

for v in 1.0 1.1; do
	server "legacy$v"
	attempt "legacy$v"
	check "TLS $v-only legacy server: OpenSSL's reason and the version" \
	    contains "$T/legacy$v.err" "TLS handshake: unsupported protocol (the server offers TLS $v; TLS 1.2 or newer is required)"
	kill "$SERVER"
done

if command -v openssl >/dev/null; then
	PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	openssl s_server -accept "127.0.0.1:$PORT" -cert "$T/pki/server.pem" \
	    -key "$T/pki/server.key" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' \
	    -quiet </dev/null >"$T/s_server.out" 2>&1 &
	SERVER=$!
	PIDS="$PIDS $SERVER"
	wait_until 5 "$PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])))' "$PORT"
	attempt s_server
	check "openssl s_server -tls1_1: the protocol_version alert, explained" \
	    contains "$T/s_server.err" "TLS handshake: tlsv1 alert protocol version (the server accepts neither TLS 1.2 nor 1.3; TLS 1.2 or newer is required)"
	kill "$SERVER"
else
	echo "# no openssl command: the s_server case is skipped"
fi

server asyncio
attempt asyncio
check "a server that closes without an alert: said, and why it may" \
    contains "$T/asyncio.err" "TLS handshake: the connection was closed before the server answered our hello (a server without TLS 1.2 or newer"
finish
