"""loadgen: the benchmark's websocket server (RFC 6455, TLS or plain).

Raw asyncio streams + ssl, like tests/peers/wspeer.py, but built to send fast:
every event frame is encoded once, before the client connects, into one
bytes object (a pool of POOL distinct events, cycled; the daemon's
duplicate filter remembers the last 4096 uuids, so a pool of 8192 never
repeats within its window), and is written in CHUNK-byte slices, each
awaited with drain().  A fixed-rate mode instead encodes each event when
it is due, with its send time (CLOCK_REALTIME, ns) as the member "sent".

  /usr/bin/python3 loadgen.py [--port 0] [--portfile F] [--cert F --key F]
        [--count N] [--rate R] [--end] [--close] [--log F]
  /usr/bin/python3 loadgen.py --dump DIR [--pool N]

Every connection gets the same run: after the 101, COUNT events (as fast
as the client takes them, or R a second with --rate), then with --end one
text message "END" that is not JSON (dcevents writes a warning record for
it: the end marker in every sink), then with --close a close frame and
the end of TCP (the ceiling reader stops at EOF); otherwise the
connection is held, pings answered, until the client leaves.

Log (--log): JSON lines {"ev": EV, ...}: listening port; open n (the 101
was sent); first real_ns (just before the first event is written);
sent count real_ns mono_ns (the last byte was taken by the kernel);
gone n.  SIGTERM: exit at once.

--dump DIR writes what the C ceilings use: events.jsonl (the pool's JSON
payloads, one a line), frames.bin (the pool's frames, as sent).
"""
import argparse, asyncio, bisect, gc, hashlib, json, os, signal, ssl, struct
import sys, time

# The test server's frame codec (tests/peers/wspeer.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "tests", "peers"))
from wspeer import accept_for, frame, read_frame  # noqa: E402

POOL = 8192
CHUNK = 256 * 1024
NAMESPACE = "bench"
DATETIME = "2016-03-08T14:02:21.031891Z"
STAMP = 10 ** 18                # a send-time placeholder: 19 digits, as now


def uuid_for(kind, i):
    """A fixed, distinct, well-formed uuid per (kind, index)."""
    h = hashlib.md5(f"{kind}-{i}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def event(i, sent=None):
    """Event number i: a container update with a stack and a service parent,
    the shape of most of a Docker Cloud stream (demo/events.json)."""
    stack, service = uuid_for("stack", i % 16), uuid_for("service", i % 64)
    ev = {
        "type": "container",
        "action": "update",
        "parents": [f"/api/app/v1/{NAMESPACE}/stack/{stack}/",
                    f"/api/app/v1/{NAMESPACE}/service/{service}/"],
        "resource_uri": f"/api/app/v1/{NAMESPACE}/container/"
                        f"{uuid_for('container', i)}/",
        "state": "Running",
        "uuid": uuid_for("event", i),
        "datetime": DATETIME,
    }
    if sent is not None:
        ev["sent"] = sent
    return ev


def payload(i, sent=None):
    """The JSON text of event i, as a Docker Cloud server writes it."""
    return json.dumps(event(i, sent)).encode()


def pool_frames(n=POOL):
    """The pool: all frames in one bytes object, and each frame's end."""
    frames = [frame(1, payload(i)) for i in range(n)]
    ends, off = [], 0
    for f in frames:
        off += len(f)
        ends.append(off)
    return b"".join(frames), ends


class Run:
    def __init__(self, args):
        self.a = args
        self.log_f = open(args.log, "a", buffering=1) if args.log else None
        self.n = 0
        if not args.rate:
            self.pool, self.ends = pool_frames(args.pool)

    def log(self, ev, **kw):
        if self.log_f:
            self.log_f.write(json.dumps(dict({"ev": ev}, **kw)) + "\n")

    async def handle(self, r, w):
        self.n += 1
        n = self.n
        sock = w.get_extra_info("socket")
        try:
            sock.setsockopt(6, 1, 1)            # TCP_NODELAY for latency runs
        except OSError:
            pass
        try:
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, TimeoutError, ssl.SSLError):
            w.close()
            return
        key = ""
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-key":
                key = value.strip()
        w.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: "
                 f"{accept_for(key)}\r\n\r\n").encode())
        self.log("open", n=n)
        rd = asyncio.create_task(self.read_loop(r, w))
        try:
            if self.a.rate:
                await self.send_rate(w)
            else:
                await self.send_fast(w)
            if self.a.end:
                w.write(frame(1, b"END"))
                await w.drain()
            if self.a.close:
                w.write(frame(8, struct.pack("!H", 1000)))
                await w.drain()
                w.close()
                return
            await rd
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            rd.cancel()
            self.log("gone", n=n)
            w.close()

    async def send_fast(self, w):
        """COUNT frames from the pool, written in slices of about CHUNK
        bytes that end on a frame boundary (a pong answered meanwhile must
        not land inside a frame)."""
        pool, ends = self.pool, self.ends
        mv = memoryview(pool)
        self.log("first", real_ns=time.time_ns())
        left, i, total = self.a.count, 0, 0     # i: the next frame's index
        while left > 0:
            off = ends[i - 1] if i else 0
            j = bisect.bisect_right(ends, off + CHUNK, i) - 1
            j = max(j, i)                       # at least one frame
            j = min(j, i + left - 1, len(ends) - 1)
            w.write(mv[off:ends[j]])
            total += ends[j] - off
            await w.drain()
            left -= j + 1 - i
            i = (j + 1) % len(ends)
        self.log("sent", count=self.a.count, bytes=total,
                 real_ns=time.time_ns(), mono_ns=time.monotonic_ns())

    async def send_rate(self, w):
        """COUNT events at RATE a second, each stamped with its send time:
        the frame is encoded ahead with a placeholder of the same width,
        which is overwritten just before the write."""
        loop = asyncio.get_running_loop()
        period = 1.0 / self.a.rate
        start = loop.time()
        self.log("first", real_ns=time.time_ns())
        i = 0
        nxt = bytearray(frame(1, payload(0, STAMP)))
        while i < self.a.count:
            due = start + i * period
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
            # Every event due by now goes out, each with its own stamp.
            while i < self.a.count and start + i * period <= loop.time():
                k = nxt.rindex(b"%d" % STAMP)
                nxt[k:k + 19] = b"%d" % time.time_ns()
                w.write(bytes(nxt))
                i += 1
                nxt = bytearray(frame(1, payload(i, STAMP)))
            await w.drain()
        self.log("sent", count=i, real_ns=time.time_ns(),
                 mono_ns=time.monotonic_ns())

    async def read_loop(self, r, w):
        """Client frames: answer pings, echo a close; until EOF."""
        try:
            while True:
                _, _, op, _, data = await read_frame(r)
                if op == 9:
                    w.write(frame(10, data))
                elif op == 8:
                    w.write(frame(8, data[:2]))
                    await w.drain()
                    return
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            return


async def serve(args):
    run = Run(args)
    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    srv = await asyncio.start_server(run.handle, args.host, args.port,
                                     ssl=ctx, limit=1 << 20)
    port = srv.sockets[0].getsockname()[1]
    run.log("listening", port=port)
    if args.portfile:
        tmp = args.portfile + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, args.portfile)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with srv:
        await stop.wait()


def dump(d, n):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "events.jsonl"), "wb") as f:
        for i in range(n):
            f.write(payload(i) + b"\n")
    with open(os.path.join(d, "frames.bin"), "wb") as f:
        f.write(pool_frames(n)[0])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--portfile")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--count", type=int, default=100000)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--pool", type=int, default=POOL)
    p.add_argument("--end", action="store_true")
    p.add_argument("--close", action="store_true")
    p.add_argument("--log")
    p.add_argument("--dump")
    a = p.parse_args()
    if a.dump:
        dump(a.dump, a.pool)
        return
    gc.disable()                # no collector pause between stamp and write
    try:
        asyncio.run(serve(a))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
