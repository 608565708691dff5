"""soakpeer: a fast websocket server for the soak test, and its verifier.

  /usr/bin/python3 soakpeer.py serve --portfile F --cert F --key F --log F
                   [--connections 100] [--per 10000] [--hold-before N]...
  /usr/bin/python3 soakpeer.py verify --input F --progress F
                   [--connections 100] [--per 10000]

serve: a TLS websocket server on 127.0.0.1 (raw asyncio + ssl, like
wspeer.py, but built for volume).  Connection N (1 to --connections)
streams --per events, uuids s-0000000 onwards with no gaps across
connections, as unmasked text frames encoded in advance and written in
large chunks; the daemon's back-pressure paces the writes.  Then it sends
a close frame (1001) and waits for the client's close, which proves that
the client has consumed every frame before it, and drops the connection
with transport.abort().  Every connection after the last one is held open
and idle.  Connection N+1 waits for SIGUSR1 before it streams when N is
given to --hold-before (the driver samples the daemon there, connected
and idle).  Pings are answered with pongs.  SIGTERM: exit 0.
The log gets one line a step: "open N", "hold N", "done N CODE" (the
client's close code), "fail N WHY" (anything unexpected), flushed at once.

verify: reads the daemon's stdout (one JSON object a line) until EOF and
checks that every uuid arrives exactly once and, within each connection,
in order.  A line equal to the expected output of the next event in
sequence is taken as such (fast path); any other line is parsed.  Every
10,000 lines the count goes to --progress (replaced atomically).  At EOF
it prints a summary and exits 0 only if the stream was exact.
"""
import argparse, asyncio, json, os, signal, ssl, struct
import sys

from wspeer import accept_for, frame, read_frame  # tests/peers/wspeer.py

STATES = ("Running", "Stopped", "Starting", "Stopping")
CHUNK = 4096                    # frames (about 900 kB) a write()/drain()
CLOSE_WAIT = 10                 # seconds for the client's close frame


def event(i):
    """Event i as the JSON text sent (fixed member order, as dcevents
    writes them back)."""
    return ('{"type":"container","action":"update","state":"%s",'
            '"uuid":"s-%07d","resource_uri":"/api/app/v1/soak/container/'
            'c%07d/","parents":["/api/app/v1/soak/service/v%04d/"],'
            '"datetime":"2016-03-08T14:03:21Z"}'
            % (STATES[i % 4], i, i, i // 10000))


def expected(i):
    """The line dcevents writes to stdout for event i (no Namespace=)."""
    return (event(i)[:-1] + ',"namespace":null}\n').encode()


# ---------------------------------------------------------------- serve

class Server:
    def __init__(self, a):
        self.a = a
        self.count = 0
        self.log = open(a.log, "a", buffering=1)
        self.go = {n + 1: asyncio.Event() for n in a.hold_before}

    def note(self, *words):
        self.log.write(" ".join(str(w) for w in words) + "\n")

    def release(self):
        """SIGUSR1: let the connection held for sampling stream on."""
        for ev in self.go.values():
            if not ev.is_set():
                ev.set()
                return

    async def handshake(self, r, w):
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
        key = None
        for line in head.decode("latin-1").split("\r\n")[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "sec-websocket-key":
                key = v.strip()
        if key is None:
            raise ValueError("no Sec-WebSocket-Key")
        w.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                accept_for(key).encode() + b"\r\n\r\n")
        await w.drain()

    async def reader(self, r, w, closed):
        """Client frames: pongs for pings; the close frame ends it."""
        while True:
            _, _, op, _, data = await read_frame(r)
            if op == 0x9:
                w.write(frame(0xA, data))
            elif op == 0x8:
                closed.set_result(
                    struct.unpack("!H", data[:2])[0] if len(data) >= 2
                    else 1005)
                return

    async def serve(self, r, w):
        self.count += 1
        n = self.count
        closed = asyncio.get_running_loop().create_future()
        rt = None
        try:
            await self.handshake(r, w)
            self.note("open", n)
            rt = asyncio.ensure_future(self.reader(r, w, closed))
            if n > self.a.connections:
                self.note("hold", n)
                await rt
                return
            if n in self.go:
                self.note("hold", n)
                await self.go[n].wait()
            first = (n - 1) * self.a.per
            # Whole frames a write: a pong may go out between two.
            for c in range(first, first + self.a.per, CHUNK):
                w.write(b"".join(frame(0x1, event(i).encode()) for i in
                                 range(c, min(c + CHUNK, first + self.a.per))))
                await w.drain()
            w.write(frame(0x8, struct.pack("!H", 1001) + b"soak: next"))
            await w.drain()
            code = await asyncio.wait_for(asyncio.shield(closed), CLOSE_WAIT)
            self.note("done", n, code)
        except (asyncio.IncompleteReadError, ConnectionError, OSError,
                asyncio.TimeoutError, ssl.SSLError, ValueError) as e:
            self.note("fail", n, type(e).__name__, str(e).replace("\n", " "))
        finally:
            if rt is not None:
                rt.cancel()
            w.transport.abort()


async def serve_main(a):
    srv = Server(a)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    server = await asyncio.start_server(srv.serve, "127.0.0.1", 0, ssl=ctx,
                                        limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    with open(a.portfile + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.replace(a.portfile + ".tmp", a.portfile)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, srv.release)
    await stop.wait()
    os._exit(0)


# ---------------------------------------------------------------- verify

def verify(a):
    total = a.connections * a.per
    seen = bytearray(total)
    last = [-1] * a.connections     # last index seen per connection
    lines = nxt = dup = disorder = bad = 0
    problems = []

    def progress():
        with open(a.progress + ".tmp", "w") as f:
            f.write("%d\n" % lines)
        os.replace(a.progress + ".tmp", a.progress)

    def problem(text):
        if len(problems) < 10:
            problems.append(text)

    want = expected(0)
    with open(a.input, "rb") as f:
        progress()
        for line in f:
            lines += 1
            if line == want:        # the next event in sequence, exact
                i = nxt
            else:
                try:
                    u = json.loads(line)["uuid"]
                    if not (isinstance(u, str) and u.startswith("s-")):
                        raise ValueError("uuid %r" % (u,))
                    i = int(u[2:])
                    if not 0 <= i < total:
                        raise ValueError("uuid %r out of range" % u)
                    if line != expected(i):
                        raise ValueError("content differs")
                except (ValueError, KeyError, TypeError) as e:
                    bad += 1
                    problem("line %d: %s: %r" % (lines, e, line[:200]))
                    continue
            if seen[i]:
                dup += 1
                problem("line %d: s-%07d again" % (lines, i))
            else:
                seen[i] = 1
            c = i // a.per
            if i <= last[c]:
                disorder += 1
                problem("line %d: s-%07d after s-%07d" % (lines, i, last[c]))
            last[c] = i
            nxt = i + 1
            want = expected(nxt) if nxt < total else b""
            if lines % 10000 == 0:
                progress()
    progress()
    missing = total - sum(seen)
    if missing:
        gone = [i for i in range(total) if not seen[i]]
        problem("missing: %d, first s-%07d, last s-%07d"
                % (missing, gone[0], gone[-1]))
    print("# verifier: %d lines, %d distinct of %d, %d missing, %d duplicate, "
          "%d out of order, %d bad" % (lines, sum(seen), total, missing, dup,
                                       disorder, bad))
    for p in problems:
        print("#   " + p)
    return 0 if (lines == total and not missing and not dup and not disorder
                 and not bad) else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--portfile", required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--hold-before", type=int, action="append", default=[])
    v = sub.add_parser("verify")
    v.add_argument("--input", required=True)
    v.add_argument("--progress", required=True)
    for x in (s, v):
        x.add_argument("--connections", type=int, default=100)
        x.add_argument("--per", type=int, default=10000)
    a = p.parse_args()
    if a.cmd == "serve":
        asyncio.run(serve_main(a))
    else:
        sys.exit(verify(a))


if __name__ == "__main__":
    main()
