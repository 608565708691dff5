"""conformance: a websocket (RFC 6455) conformance server for clients.

Modelled on Autobahn|Testsuite's fuzzingserver, groups 1-7 and 9 (framing,
ping/pong, reserved bits, opcodes, fragmentation, UTF-8, close handling,
limits and performance), which cannot be installed here.  Raw asyncio
streams and ssl: the deliberately broken frames need a hand-made encoder.
The client under test connects once per case and echoes every message:

  GET /getCaseCount                   one text message: the number of cases
  GET /runCase?case=N&agent=A         case N (1-based) runs on this socket
  GET /updateReports?agent=A          the report for A is written, printed
                                      on stdout and the socket closed

  /usr/bin/python3 conformance.py [--host 127.0.0.1] [--port 0]
      [--portfile F] [--cert F --key F] [--report F] [--cases RE]
      [--exit-after-report] [--list]

--port 0 picks a free port; --portfile gets it once listening.  --cases
keeps the case IDs matching a regular expression (at the start).  --list
prints the cases and exits.

Each case sends frames, possibly invalid, then judges the client as
Autobahn does.  Behaviour: the messages (opcode and bytes) and pongs the
client sent must match the expected ones (OK) or an allowed weaker set
(NON-STRICT).  Close: for a valid exchange the server closes (1000) once
the client has answered, and the client must answer the close; for a
protocol violation the client must fail the connection itself, with the
expected code (1002, or 1007 for bad UTF-8) or by dropping TCP (an empty
close is NON-STRICT); for a close we sent, the answer must carry an
allowed code.  A client frame that breaks RFC 6455 (unmasked, reserved
bits, ...) is a failure.  Report: one line a case,
"CASE-ID OK|NON-STRICT|FAILED|INFORMATIONAL detail"; cases never run are
FAILED.
"""
import argparse, asyncio, base64, hashlib, os, re, signal, socket, ssl
import struct, sys, time, urllib.parse

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
OK, NON_STRICT, FAILED, INFO = "OK", "NON-STRICT", "FAILED", "INFORMATIONAL"
RANK = {OK: 0, INFO: 0, NON_STRICT: 1, FAILED: 2}
FAIL_WAIT = 2.0     # seconds a client has to fail the connection
CLOSE_WAIT = 2.0    # seconds a client has to answer our close
PAUSE = 1.0         # fail-fast: how long the client has to fail
SYNC = b"conformance-sync"


def header(op, n, fin=True, rsv=0, mask=None):
    """A frame header for n bytes of payload, minimally encoded."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    m = 0x80 if mask else 0
    if n < 126:
        h = bytes([b0, m | n])
    elif n < 65536:
        h = struct.pack("!BBH", b0, m | 126, n)
    else:
        h = struct.pack("!BBQ", b0, m | 127, n)
    return h + (mask or b"")


def frame(op, payload=b"", fin=True, rsv=0, mask=None):
    """One frame as the server sends it (masked only if asked to)."""
    h = header(op, len(payload), fin, rsv, mask)
    return h + (xor(payload, mask) if mask else payload)


def xor(data, key):
    """Apply a 4-byte websocket masking key."""
    if not data:
        return b""
    k = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(
        len(data), "big")


def close_payload(code, reason=b""):
    """The payload of a close frame."""
    return struct.pack("!H", code) + reason


def T(s):
    """An expected text message."""
    return ("message", TEXT, s.encode() if isinstance(s, str) else s)


def B(b):
    """An expected binary message."""
    return ("message", BINARY, b)


def P(b):
    """An expected pong."""
    return ("pong", b.encode() if isinstance(b, str) else b)


def describe(events):
    """Events, short: [text 13B, pong 0B]."""
    out = []
    for e in events:
        if e[0] == "message":
            out.append("%s %dB" % ("text" if e[1] == TEXT else "binary",
                                   len(e[2])))
        else:
            out.append("pong %dB" % len(e[1]))
    return "[" + ", ".join(out) + "]"


class Peer:
    """The server side of one websocket to the client under test."""

    def __init__(self, reader, writer):
        self.r, self.w = reader, writer
        self.sock = writer.get_extra_info("socket")
        self.events = []        # ("message", opcode, bytes) and ("pong", b)
        self.errors = []        # RFC 6455 violations by the client
        self.close_sent = None  # code of the close we sent (0: empty)
        self.close_recv = None  # (code or None, reason) from the client
        self.first = None       # "server" or "client": who closed first
        self.ended = asyncio.Event()
        self.synced = False
        self.gave_up = False
        self.fast = None        # fail-fast cases: failed during the pause
        self.frag = None        # (opcode, [data]) of a fragmented message
        self.expect = None      # expected events set by the run
        self.E = None
        self.tick = asyncio.Event()

    def poke(self):
        """Wake whoever waits in until()."""
        self.tick.set()
        self.tick = asyncio.Event()

    def failed(self):
        """Has the client closed or dropped the connection?"""
        return self.ended.is_set() or self.close_recv is not None

    async def until(self, pred, timeout):
        """Wait until pred() holds (True) or timeout seconds pass (False)."""
        end = time.monotonic() + timeout
        while not pred():
            left = end - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self.tick.wait(), left)
            except asyncio.TimeoutError:
                return pred()
        return True

    async def send(self, data, chop=None, delay=0.0):
        """Write data, optionally in chops of chop bytes, delay apart."""
        if self.ended.is_set():
            return
        try:
            if chop is None:
                self.w.write(data)
                await self.w.drain()
                return
            for i in range(0, len(data), chop):
                if self.ended.is_set():
                    return
                self.w.write(data[i:i + chop])
                await self.w.drain()
                await asyncio.sleep(delay)
        except (ConnectionError, OSError):
            pass

    async def frames(self, frames, chop=None):
        """Send frames: together, one by one ("frame"), or in chops."""
        if chop == "frame":
            for f in frames:
                await self.send(f)
                await asyncio.sleep(0.005)
        elif chop is None:
            await self.send(b"".join(frames))
        else:
            await self.send(b"".join(frames), chop=chop,
                            delay=0.001 if chop < 8 else 0)

    async def close(self, code=1000, reason=b"", payload=None, rsv=0):
        """Send a close frame (payload overrides code and reason)."""
        if self.first is None:
            self.first = "server"
        if self.close_sent is None:
            self.close_sent = code if payload is None else 0
        if payload is None:
            payload = close_payload(code, reason)
        await self.send(frame(CLOSE, payload, rsv=rsv))

    async def sync(self, timeout):
        """Ping and wait for its pong: the client has seen all before it."""
        await self.send(frame(PING, SYNC))
        await self.until(lambda: self.synced or self.failed(), timeout)

    def drop(self):
        """Close our end of the TCP connection (after what is written)."""
        try:
            self.w.close()
        except Exception:
            pass

    def delayed_ack(self):
        """ACK late, as Autobahn|Testsuite's peer does: a client that sends
        a frame in two writes under Nagle's algorithm then waits for the
        delayed ACK (40 ms a message; tests/conformance.sh times 9.7/9.8)."""
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
        except (OSError, AttributeError):
            pass

    def error(self, why):
        """Note an RFC 6455 violation by the client."""
        if why not in self.errors:
            self.errors.append(why)

    async def read_loop(self):
        """Read client frames until the connection ends."""
        try:
            while True:
                b0, b1 = await self.r.readexactly(2)
                fin, rsv, op = b0 >> 7, (b0 >> 4) & 7, b0 & 15
                masked, n = b1 >> 7, b1 & 127
                if n == 126:
                    n = struct.unpack("!H", await self.r.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await self.r.readexactly(8))[0]
                key = await self.r.readexactly(4) if masked else None
                self.delayed_ack()
                data = await self.r.readexactly(n)
                if masked:
                    data = xor(data, key)
                else:
                    self.error("unmasked frame from the client")
                if rsv:
                    self.error("client frame with reserved bits %d" % rsv)
                if self.close_recv is not None:
                    self.error("client frame after its close")
                    continue
                self.frame_in(fin, op, data)
                self.poke()
        except (asyncio.IncompleteReadError, ConnectionError, OSError,
                ssl.SSLError):
            pass
        finally:
            if self.first is None:
                self.first = "client"
            self.ended.set()
            self.poke()
            self.drop()

    def frame_in(self, fin, op, data):
        """One client frame: messages, pongs, the close."""
        if op >= 8 and (not fin or len(data) > 125):
            self.error("invalid control frame from the client")
        if op == CLOSE:
            code = None
            if len(data) == 1:
                self.error("1-byte close payload from the client")
            elif len(data) >= 2:
                code = struct.unpack("!H", data[:2])[0]
            self.close_recv = (code, data[2:])
            if self.first is None:
                self.first = "client"
            if self.close_sent is None:
                self.close_sent = code or 0
                self.w.write(frame(CLOSE, data[:2]))
            # The closing handshake is complete: the server drops TCP.
            self.drop()
        elif op == PING:
            if self.close_sent is None:
                self.w.write(frame(PONG, data))
        elif op == PONG:
            if data == SYNC and not self.synced:
                self.synced = True
            else:
                self.events.append(("pong", data))
        elif op in (TEXT, BINARY):
            if self.frag is not None:
                self.error("new message inside a fragmented one")
            self.frag = (op, [data])
        elif op == CONT:
            if self.frag is None:
                self.error("continuation without a message")
                return
            self.frag[1].append(data)
        else:
            self.error("reserved opcode %d from the client" % op)
            return
        if op in (TEXT, BINARY, CONT) and fin and self.frag is not None:
            mop, parts = self.frag
            self.frag = None
            self.events.append(("message", mop, b"".join(parts)))


class Close:
    """How a case ends: who closes, which codes are right, clean or not."""

    def __init__(self, kind, codes=(1000,), clean=True, empty=OK):
        self.kind, self.codes, self.clean, self.empty = (kind, codes, clean,
                                                         empty)


NORMAL = Close("normal")


def FAIL(*codes):
    """The client must fail the connection (a drop counts)."""
    return Close("fail", codes or (1002,), clean=False, empty=NON_STRICT)


def CLOSING(*codes, clean=True, empty=OK):
    """The case sends a close itself; the client answers."""
    return Close("closing", codes, clean=clean, empty=empty)


class Case:
    """One case: its frames (run), the expected events and the close."""

    def __init__(self, cid, desc, run, ok=(), ns=None, close=NORMAL,
                 info=False, settle=2.0, judge=None):
        self.cid, self.desc, self.run = cid, desc, run
        # A callable ok (T or B) means the run sets p.expect itself.
        self.ok, self.ns = (ok if callable(ok) else list(ok)), ns
        self.close, self.info, self.settle = close, info, settle
        self.judge = judge


CASES = []


def add(cid, desc, run, **kw):
    """Add a case to the list (the order is the case numbers)."""
    CASES.append(Case(cid, desc, run, **kw))


def sends(*frames, chop=None):
    """A run that sends frames (see Peer.frames)."""
    async def run(p):
        await p.frames(frames, chop)
    return run


def judge_close(c, p):
    """The close behaviour: (verdict, detail)."""
    got = p.close_recv
    if c.kind == "fail":
        if p.gave_up:
            return FAILED, "the client did not fail the connection"
    elif p.first == "client":
        return FAILED, "the client %s first" % (
            "dropped TCP" if got is None else
            "closed (%s)" % (got[0] if got[0] is not None else "empty"))
    if got is None:
        if c.clean:
            return FAILED, "TCP dropped without a close reply (unclean)"
        return OK, "TCP dropped"
    code = got[0]
    if code is None:
        if c.empty == OK:
            return OK, "empty close"
        return c.empty, "empty close instead of %s" % "/".join(
            map(str, c.codes))
    if code in c.codes:
        return OK, "close %d" % code
    return FAILED, "close %d instead of %s" % (
        code, "/".join(map(str, c.codes)))


def verdict(case, p):
    """The case's result: (verdict, detail)."""
    ok = p.expect or []
    if case.judge is not None:
        beh, bwhy = case.judge(case, p)
    elif p.events == ok:
        beh, bwhy = OK, "events as expected"
    elif case.ns is not None and p.events == case.ns:
        beh, bwhy = NON_STRICT, "events %s instead of %s" % (
            describe(p.events), describe(ok))
    elif len(p.events) == len(ok):
        bad = [i for i in range(len(ok)) if p.events[i] != ok[i]]
        beh, bwhy = FAILED, "events %s differ from the expected from #%d" % (
            describe(p.events[:3]), bad[0])
    else:
        beh, bwhy = FAILED, "events %s, expected %s" % (
            describe(p.events[:8]), describe(ok[:8]))
    cbeh, cwhy = judge_close(case.close, p)
    res = max(beh, cbeh, key=RANK.get)
    if p.errors:
        res, bwhy = FAILED, "; ".join(p.errors)
    if case.info:
        res = INFO
    return res, "%s; %s" % (bwhy, cwhy)


async def run_case(case, p):
    """Run one case on p and judge it."""
    reader = asyncio.ensure_future(p.read_loop())
    t0 = time.monotonic()
    if callable(case.ok):
        p.E, p.expect = case.ok, None
    else:
        p.expect = case.ok
    try:
        await asyncio.wait_for(case.run(p), case.settle + 10)
    except asyncio.TimeoutError:
        p.error("the case's frames could not be sent in time")
    kind = case.close.kind
    if kind == "normal":
        if not p.failed():
            await p.sync(case.settle)
            await p.until(lambda: len(p.events) >= len(p.expect or ()) or
                          p.failed(), case.settle if not p.synced else 0.2)
            if not p.failed():
                await p.close(1000)
        await p.until(p.ended.is_set, CLOSE_WAIT)
    elif kind == "fail":
        if not await p.until(p.failed, FAIL_WAIT):
            p.gave_up = True
            await p.close(1000)
        await p.until(p.ended.is_set, CLOSE_WAIT)
    else:
        await p.until(p.ended.is_set, CLOSE_WAIT)
    p.drop()
    try:
        await asyncio.wait_for(reader, 1)
    except asyncio.TimeoutError:
        reader.cancel()
    res, why = verdict(case, p)
    return res, "%s (%.0f ms)" % (why, 1000 * (time.monotonic() - t0))


# ---------------------------------------------------------------- cases

def group1():
    for sub, op, name, fill, E in ((1, TEXT, "text", b"*", T),
                                   (2, BINARY, "binary", b"\xfe", B)):
        for i, n in enumerate((0, 125, 126, 127, 128, 65535, 65536), 1):
            data = fill * n
            add("1.%d.%d" % (sub, i), "%s message of %d bytes" % (name, n),
                sends(frame(op, data)), ok=[E(data)])
        data = fill * 65536
        add("1.%d.8" % sub, "%s message of 65536 bytes in chops of 997 "
            "octets" % name, sends(frame(op, data), chop=997), ok=[E(data)])
    # Beyond Autobahn: masked server frames, non-minimal lengths.
    m = b"\x12\x34\x56\x78"
    add("1.3.1", "masked text frame from the server",
        sends(frame(TEXT, b"Hello", mask=m)), close=FAIL())
    add("1.3.2", "masked binary frame from the server",
        sends(frame(BINARY, b"\x00\x01", mask=m)), close=FAIL())
    add("1.3.3", "length 5 encoded in 16 bits",
        sends(struct.pack("!BBH", 0x81, 126, 5) + b"Hello"), close=FAIL())
    add("1.3.4", "length 200 encoded in 64 bits",
        sends(struct.pack("!BBQ", 0x81, 127, 200) + b"*" * 200),
        close=FAIL())
    add("1.3.5", "64-bit length with the most significant bit set",
        sends(struct.pack("!BBQ", 0x82, 127, 1 << 63) + b"\0" * 16),
        close=FAIL())


def group2():
    add("2.1", "ping without payload", sends(frame(PING)), ok=[P(b"")])
    add("2.2", "ping with a text payload",
        sends(frame(PING, b"Hello, world!")), ok=[P("Hello, world!")])
    data = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    add("2.3", "ping with a binary payload", sends(frame(PING, data)),
        ok=[P(data)])
    data = b"\xfe" * 125
    add("2.4", "ping with a 125-byte payload", sends(frame(PING, data)),
        ok=[P(data)])
    add("2.5", "ping with a 126-byte payload (too long)",
        sends(frame(PING, b"\xfe" * 126)), close=FAIL())
    add("2.6", "ping with a 125-byte payload in 1-byte chops",
        sends(frame(PING, data), chop=1), ok=[P(data)])
    add("2.7", "unsolicited pong without payload", sends(frame(PONG)))
    add("2.8", "unsolicited pong with payload",
        sends(frame(PONG, b"unsolicited pong payload")))
    add("2.9", "unsolicited pong, then a ping",
        sends(frame(PONG, b"unsolicited pong payload"),
              frame(PING, b"ping payload")), ok=[P("ping payload")])
    pings = [b"payload-%d" % i for i in range(10)]
    add("2.10", "10 pings with payloads",
        sends(*[frame(PING, x) for x in pings]), ok=[P(x) for x in pings],
        ns=[P(pings[-1])])
    add("2.11", "10 pings with payloads, in 1-byte chops",
        sends(*[frame(PING, x) for x in pings], chop=1),
        ok=[P(x) for x in pings], ns=[P(pings[-1])])


def group3():
    hello = b"Hello, world!"
    add("3.1", "text frame with RSV = 1",
        sends(frame(TEXT, hello, rsv=1)), close=FAIL())
    for cid, rsv, chop in (("3.2", 2, None), ("3.3", 3, "frame"),
                           ("3.4", 4, 1)):
        add(cid, "text, text with RSV = %d, ping%s" % (
            rsv, {None: "", "frame": " (frame by frame)",
                  1: " (in 1-byte chops)"}[chop]),
            sends(frame(TEXT, hello), frame(TEXT, hello, rsv=rsv),
                  frame(PING), chop=chop),
            ok=[T(hello)], ns=[], close=FAIL())
    add("3.5", "binary frame with RSV = 5",
        sends(frame(BINARY, b"\xff" * 8, rsv=5)), close=FAIL())
    add("3.6", "ping with RSV = 6",
        sends(frame(PING, hello, rsv=6)), close=FAIL())
    add("3.7", "close with RSV = 7",
        sends(frame(CLOSE, close_payload(1000), rsv=7)), close=FAIL())


def group4():
    hello = b"Hello, world!"
    for sub, ops in ((1, (3, 4, 5, 6, 7)), (2, (11, 12, 13, 14, 15))):
        add("4.%d.1" % sub, "reserved opcode %d" % ops[0],
            sends(frame(ops[0])), close=FAIL())
        add("4.%d.2" % sub, "reserved opcode %d with payload" % ops[1],
            sends(frame(ops[1], b"reserved opcode payload")), close=FAIL())
        for i, op in enumerate(ops[2:], 3):
            pay = b"" if i == 3 else b"reserved opcode payload"
            add("4.%d.%d" % (sub, i), "text, reserved opcode %d, ping" % op,
                sends(frame(TEXT, hello), frame(op, pay), frame(PING)),
                ok=[T(hello)], ns=[], close=FAIL())


def group5():
    chops = {0: None, 1: 1, 2: "frame"}
    tail = {None: "", 1: " (in 1-byte chops)", "frame": " (frame by frame)"}
    add("5.1", "ping in two fragments",
        sends(frame(PING, b"fragment1", fin=False),
              frame(CONT, b"fragment2")), close=FAIL())
    add("5.2", "pong in two fragments",
        sends(frame(PONG, b"fragment1", fin=False),
              frame(CONT, b"fragment2")), close=FAIL())
    two = (frame(TEXT, b"fragment1", fin=False), frame(CONT, b"fragment2"))
    for i in range(3):
        add("5.%d" % (3 + i), "text in two fragments" + tail[chops[i]],
            sends(*two, chop=chops[i]), ok=[T("fragment1fragment2")])
    for i in range(3):
        add("5.%d" % (6 + i), "text in two fragments, ping between" +
            tail[chops[i]],
            sends(two[0], frame(PING, b"ping payload"), two[1],
                  chop=chops[i]),
            ok=[P("ping payload"), T("fragment1fragment2")])
    bad = (frame(CONT, b"non-continuation payload"),
           frame(TEXT, b"Hello, world!"))
    for i in range(3):
        add("5.%d" % (9 + i), "continuation without a message, then text" +
            tail[chops[i]], sends(*bad, chop=chops[i]), close=FAIL())
    bad = (frame(CONT, b"non-continuation payload", fin=False),
           frame(TEXT, b"Hello, world!"))
    for i in range(3):
        add("5.%d" % (12 + i), "unfinished continuation without a message, "
            "then text" + tail[chops[i]], sends(*bad, chop=chops[i]),
            close=FAIL())
    add("5.15", "text in two fragments, then a continuation and a new "
        "first fragment",
        sends(frame(TEXT, b"fragment1", fin=False), frame(CONT, b"fragment2"),
              frame(CONT, b"fragment3", fin=False), frame(TEXT, b"fragment4")),
        ok=[T("fragment1fragment2")], ns=[], close=FAIL())
    seq = [frame(CONT, b"fragment1", fin=False),
           frame(TEXT, b"fragment2", fin=False), frame(CONT, b"fragment3")]
    add("5.16", "continuation, text, continuation (twice)",
        sends(*(seq * 2)), close=FAIL())
    seq[0] = frame(CONT, b"fragment1")
    add("5.17", "final continuation, text, continuation (twice)",
        sends(*(seq * 2)), close=FAIL())
    add("5.18", "text in two fragments, both with the text opcode",
        sends(frame(TEXT, b"fragment1", fin=False), frame(TEXT, b"fragment2")),
        close=FAIL())
    for cid, chop in (("5.19", None), ("5.20", "frame")):
        async def run(p, chop=chop):
            f = [frame(TEXT, b"fragment%d" % i, fin=i == 5) if i == 1 else
                 frame(CONT, b"fragment%d" % i, fin=i == 5)
                 for i in range(1, 6)]
            await p.frames([f[0], f[1], frame(PING, b"pongme 1!")], chop)
            await asyncio.sleep(0.1)
            await p.frames([f[2]], chop)
            await asyncio.sleep(0.1)
            await p.frames([f[3], frame(PING, b"pongme 2!")], chop)
            await asyncio.sleep(0.1)
            await p.frames([f[4]], chop)
        add(cid, "text in five fragments, pings between, with pauses" +
            tail[chop], run, ok=[P("pongme 1!"), P("pongme 2!"),
                                 T(b"".join(b"fragment%d" % i
                                            for i in range(1, 6)))])


KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # κόσμε
BAD = KOSME + b"\xed\xa0\x80edited"      # a UTF-16 surrogate inside


def utf8_sequences():
    """(category, [(valid, bytes)...]) as in Markus Kuhn's stress test."""
    cats = []
    cats.append(("valid sequences", [(True, KOSME), (True, b"\xef\xbb\xbf"),
                                     (True, "Ａ𝄞é\u0000z".encode()),
                                     (True, "\u00a9\u2603\U0001f600".encode()),
                                     (True, bytes(range(0x20, 0x7f)))]))
    cats.append(("prefixes of κόσμε",
                 [(k in (2, 5, 7, 9, 11), KOSME[:k]) for k in range(1, 12)]))
    cats.append(("first sequence of each length",
                 [(True, b"\x00"), (True, b"\xc2\x80"),
                  (True, b"\xe0\xa0\x80"), (True, b"\xf0\x90\x80\x80")]))
    cats.append(("first 5- and 6-byte sequences",
                 [(False, b"\xf8\x88\x80\x80\x80"),
                  (False, b"\xfc\x84\x80\x80\x80\x80")]))
    cats.append(("last sequence of each length",
                 [(True, b"\x7f"), (True, b"\xdf\xbf"),
                  (True, b"\xef\xbf\xbf"), (True, b"\xf4\x8f\xbf\xbf")]))
    cats.append(("beyond U+10FFFF",
                 [(False, b"\xf7\xbf\xbf\xbf"),
                  (False, b"\xfb\xbf\xbf\xbf\xbf"),
                  (False, b"\xfd\xbf\xbf\xbf\xbf\xbf")]))
    cats.append(("other boundaries",
                 [(True, b"\xed\x9f\xbf"), (True, b"\xee\x80\x80"),
                  (True, b"\xef\xbf\xbd"), (True, b"\xf4\x8f\xbf\xbf"),
                  (False, b"\xf4\x90\x80\x80")]))
    cats.append(("unexpected continuation bytes",
                 [(False, x) for x in (b"\x80", b"\xbf", b"\x80\xbf",
                                       b"\x80\xbf\x80", b"\x80\xbf\x80\xbf",
                                       b"\x80\xbf\x80\xbf\x80",
                                       b"\x80\xbf\x80\xbf\x80\xbf",
                                       bytes(range(0x80, 0xc0)))]))
    cats.append(("lonely start bytes",
                 [(False, b"".join(bytes([c]) + b" " for c in r))
                  for r in (range(0xc0, 0xe0), range(0xe0, 0xf0),
                            range(0xf0, 0xf8), range(0xf8, 0xfc),
                            range(0xfc, 0xfe))]))
    last = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80",
            b"\xfc\x80\x80\x80\x80", b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf",
            b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    cats.append(("last byte missing", [(False, x) for x in last]))
    cats.append(("all of those concatenated", [(False, b"".join(last))]))
    cats.append(("impossible bytes", [(False, b"\xfe"), (False, b"\xff"),
                                      (False, b"\xfe\xfe\xff\xff")]))
    cats.append(("overlong slash",
                 [(False, x) for x in (b"\xc0\xaf", b"\xe0\x80\xaf",
                                       b"\xf0\x80\x80\xaf",
                                       b"\xf8\x80\x80\x80\xaf",
                                       b"\xfc\x80\x80\x80\x80\xaf")]))
    cats.append(("maximum overlong sequences",
                 [(False, x) for x in (b"\xc1\xbf", b"\xe0\x9f\xbf",
                                       b"\xf0\x8f\xbf\xbf",
                                       b"\xf8\x87\xbf\xbf\xbf",
                                       b"\xfc\x83\xbf\xbf\xbf\xbf")]))
    cats.append(("overlong NUL",
                 [(False, x) for x in (b"\xc0\x80", b"\xe0\x80\x80",
                                       b"\xf0\x80\x80\x80",
                                       b"\xf8\x80\x80\x80\x80",
                                       b"\xfc\x80\x80\x80\x80\x80")]))
    single = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80",
              b"\xed\xaf\xbf", b"\xed\xb0\x80", b"\xed\xbe\x80",
              b"\xed\xbf\xbf"]
    cats.append(("single UTF-16 surrogates", [(False, x) for x in single]))
    cats.append(("paired UTF-16 surrogates",
                 [(False, hi + lo) for hi in single[0:4:1]
                  for lo in (single[4], single[6])]))
    nonchars = [chr(0xfffe), chr(0xffff)] + [
        chr(plane << 16 | low) for plane in range(1, 17)
        for low in (0xfffe, 0xffff)]
    cats.append(("noncharacters", [(True, c.encode()) for c in nonchars]))
    cats.append(("specials", [(True, "\ufffd".encode()),
                              (True, "\ufffc".encode()),
                              (True, "\ufeff".encode())]))
    return cats


def group6():
    add("6.1.1", "empty text message", sends(frame(TEXT)), ok=[T("")])
    add("6.1.2", "text in three empty fragments",
        sends(frame(TEXT, fin=False), frame(CONT, fin=False), frame(CONT)),
        ok=[T("")])
    add("6.1.3", "text: empty, non-empty, empty fragment",
        sends(frame(TEXT, fin=False), frame(CONT, b"middle frame payload",
                                            fin=False), frame(CONT)),
        ok=[T("middle frame payload")])
    hello = "Hello-µ@ßöäüàá-UTF-8!!".encode()
    add("6.2.1", "valid UTF-8 in one frame", sends(frame(TEXT, hello)),
        ok=[T(hello)])
    cut = len("Hello-µ@ßöä".encode())
    add("6.2.2", "valid UTF-8 in two fragments at a code point",
        sends(frame(TEXT, hello[:cut], fin=False), frame(CONT, hello[cut:])),
        ok=[T(hello)])

    def bytewise(data, op=TEXT):
        return [frame(op if i == 0 else CONT, data[i:i + 1],
                      fin=i == len(data) - 1) for i in range(len(data))]
    add("6.2.3", "valid UTF-8 in 1-byte fragments", sends(*bytewise(hello)),
        ok=[T(hello)])
    add("6.2.4", "κόσμε in 1-byte fragments", sends(*bytewise(KOSME)),
        ok=[T(KOSME)])
    add("6.3.1", "invalid UTF-8 in one frame", sends(frame(TEXT, BAD)),
        close=FAIL(1007))
    add("6.3.2", "invalid UTF-8 in 1-byte fragments", sends(*bytewise(BAD)),
        close=FAIL(1007))

    def fast(parts, rest, single):
        async def run(p):
            if single:
                total = sum(map(len, parts)) + len(rest)
                await p.send(header(TEXT, total) + parts[0])
                for x in parts[1:]:
                    await asyncio.sleep(0.02)
                    await p.send(x)
                tail = rest
            else:
                await p.send(frame(TEXT, parts[0], fin=False) +
                             frame(CONT, parts[1], fin=False))
                tail = frame(CONT, rest)
            p.fast = await p.until(p.failed, PAUSE)
            if not p.fast:
                await p.send(tail)
        return run

    def judge_fast(case, p):
        if p.events:
            return FAILED, "events %s, expected none" % describe(p.events)
        if p.fast:
            return OK, "failed fast"
        if p.failed():
            return NON_STRICT, "failed only at the end of the message"
        return FAILED, "never failed"
    for cid, parts, rest, single in (
            ("6.4.1", [KOSME, b"\xf4\x90\x80\x80"], b"edited", False),
            ("6.4.2", [KOSME + b"\xf4", b"\x90\x80\x80"], b"edited", False),
            ("6.4.3", [KOSME, b"\xf4\x90\x80\x80"], b"edited", True),
            ("6.4.4", [KOSME, b"\xf4\x90"], b"\x80\x80edited", True)):
        add(cid, "fail fast on invalid UTF-8 %s" % (
            "in one frame sent in parts" if single else "in a fragment"),
            fast(parts, rest, single), close=FAIL(1007), judge=judge_fast)
    for i, (cat, seqs) in enumerate(utf8_sequences(), 5):
        for j, (valid, data) in enumerate(seqs, 1):
            what = "valid" if valid else "invalid"
            add("6.%d.%d" % (i, j), "%s: %s UTF-8 %s" % (cat, what,
                                                          data[:12].hex()),
                sends(frame(TEXT, data)), ok=[T(data)] if valid else [],
                close=NORMAL if valid else FAIL(1007))


def group7():
    hello = b"Hello World!"

    async def run711(p):
        await p.send(frame(TEXT, hello))
        await p.close(1000)
    add("7.1.1", "text, then a close", run711, ok=[T(hello)],
        close=CLOSING(1000))

    def closing(*after):
        async def run(p):
            await p.close(1000)
            await p.frames(after)
        return run
    add("7.1.2", "two closes", closing(frame(CLOSE, close_payload(1000))),
        close=CLOSING(1000))
    add("7.1.3", "close, then a ping", closing(frame(PING, b"ping")),
        close=CLOSING(1000))
    add("7.1.4", "close, then text", closing(frame(TEXT, hello)),
        close=CLOSING(1000))

    async def run715(p):
        await p.send(frame(TEXT, b"fragment1", fin=False))
        await p.close(1000)
        await p.send(frame(CONT, b"fragment2"))
    add("7.1.5", "first fragment, close, last fragment", run715,
        close=CLOSING(1000))
    big = (b"BAsd7&jh23" * 26215)[:256 * 1024]

    async def run716(p):
        await p.send(frame(TEXT, big))
        await p.close(1000)
        await p.send(frame(PING, b"ping"))
    add("7.1.6", "256 KiB text, close, ping (informational)", run716,
        close=CLOSING(1000), info=True)

    def close_with(payload):
        async def run(p):
            await p.close(payload=payload)
        return run
    add("7.3.1", "close without payload", close_with(b""),
        close=CLOSING(1000))
    add("7.3.2", "close with a 1-byte payload", close_with(b"\x03"),
        close=CLOSING(1002, clean=False, empty=NON_STRICT))
    add("7.3.3", "close 1000 without reason",
        close_with(close_payload(1000)), close=CLOSING(1000))
    add("7.3.4", "close 1000 with a reason",
        close_with(close_payload(1000, b"Hello World!")),
        close=CLOSING(1000))
    add("7.3.5", "close 1000 with a 123-byte reason",
        close_with(close_payload(1000, b"*" * 123)), close=CLOSING(1000))
    add("7.3.6", "close with a 126-byte payload (too long)",
        close_with(close_payload(1000, b"*" * 124)),
        close=CLOSING(1002, clean=False, empty=NON_STRICT))
    add("7.5.1", "close with an invalid UTF-8 reason",
        close_with(close_payload(1000, BAD)),
        close=CLOSING(1002, 1007, clean=False, empty=NON_STRICT))
    for i, code in enumerate((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                              1011, 3000, 3999, 4000, 4999), 1):
        add("7.7.%d" % i, "close with valid code %d" % code,
            close_with(close_payload(code)), close=CLOSING(1000, code))
    for i, code in enumerate((0, 999, 1004, 1005, 1006, 1016, 1100, 2000,
                              2999), 1):
        add("7.9.%d" % i, "close with invalid code %d" % code,
            close_with(close_payload(code)),
            close=CLOSING(1002, clean=False, empty=NON_STRICT))
    for i, code in enumerate((5000, 65535), 1):
        add("7.13.%d" % i, "close with code %d, beyond the defined "
            "ranges (informational)" % code, close_with(close_payload(code)),
            close=CLOSING(1000, 1002, code, clean=False), info=True)


def text_of(n):
    return (b"BAsd7&jh23" * (n // 10 + 1))[:n]


def binary_of(n):
    return (bytes(range(256)) * (n // 256 + 1))[:n]


def group9():
    """Large and finely fragmented messages, built only when they run."""
    K, M = 1024, 1024 * 1024
    kinds = ((TEXT, "text", text_of, T), (BINARY, "binary", binary_of, B))

    def big(make, n, frames, chop=None):
        async def run(p):
            data = make(n)
            p.expect = [p.E(data)]
            await p.frames(frames(data), chop)
        return run

    def whole(op):
        return lambda data: [frame(op, data)]

    def pieces(op, size):
        return lambda data: [frame(op if k == 0 else CONT, data[k:k + size],
                                   fin=k + size >= len(data))
                             for k in range(0, len(data), size)]
    for sub, (op, name, make, E) in enumerate(kinds, 1):
        for i, n in enumerate((64 * K, 256 * K, M, 4 * M, 8 * M, 16 * M), 1):
            add("9.%d.%d" % (sub, i), "%s message of %d KiB" % (name, n // K),
                big(make, n, whole(op)), ok=E, settle=20)
    for sub, (op, name, make, E) in enumerate(kinds, 3):
        for i, fs in enumerate((64, 256, K, 4 * K, 16 * K, 64 * K, 256 * K,
                                M, 4 * M), 1):
            add("9.%d.%d" % (sub, i), "4 MiB %s message in %d-byte "
                "fragments" % (name, fs), big(make, 4 * M, pieces(op, fs)),
                ok=E, settle=20)
    for sub, (op, name, make, E) in enumerate(kinds, 5):
        for i, chop in enumerate((64, 128, 256, 512, 1024, 2048), 1):
            add("9.%d.%d" % (sub, i), "1 MiB %s message in chops of %d "
                "octets" % (name, chop), big(make, M, whole(op), chop),
                ok=E, settle=20)
    for sub, (op, name, make, E) in enumerate(kinds, 7):
        for i, n in enumerate((0, 16, 64, 256, K, 4 * K), 1):
            async def run(p, op=op, n=n, make=make, E=E):
                data = make(n)
                p.expect = [E(data)] * 1000
                for k in range(1000):
                    await p.send(frame(op, data))
                    if not await p.until(lambda: len(p.events) > k or
                                         p.failed(), 5):
                        return
            add("9.%d.%d" % (sub, i), "1000 %s messages of %d bytes, one "
                "at a time" % (name, n), run, ok=E, settle=20)
    for i, (op, name, make, E) in enumerate(kinds, 1):
        add("9.9.%d" % i, "64 KiB %s message in 1-byte fragments" % name,
            big(make, 64 * K, pieces(op, 1)), ok=E, settle=20)


for g in (group1, group2, group3, group4, group5, group6, group7, group9):
    g()


# ---------------------------------------------------------------- server

RESULTS = {}        # agent -> {case id: (verdict, detail)}
RUNNING = set()     # peers of cases not judged yet
ARGS = None
STOP = None         # set: exit


def report(agent):
    """The report for agent: one line a case, then a summary."""
    res = RESULTS.get(agent, {})
    lines = []
    for c in CASES:
        v, why = res.get(c.cid, (FAILED, "not run"))
        lines.append("%s %s %s" % (c.cid, v, why))
    count = {}
    for line in lines:
        v = line.split(" ", 2)[1]
        count[v] = count.get(v, 0) + 1
    lines.append("# agent %s: %d cases: %s" % (agent, len(CASES), ", ".join(
        "%d %s" % (count[v], v) for v in sorted(count))))
    return "\n".join(lines) + "\n"


async def handshake(reader, writer):
    """Read the upgrade request; answer 101; return the request target."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ") + ["", "", ""])[:3]
    h = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            h[k.strip().lower()] = v.strip()
    key = h.get("sec-websocket-key", "")
    if (method != "GET" or h.get("upgrade", "").lower() != "websocket" or
            "upgrade" not in h.get("connection", "").lower() or
            h.get("sec-websocket-version") != "13" or
            len(base64.b64decode(key + "==")) < 16):
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n")
        await writer.drain()
        return None
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
    url = urllib.parse.urlsplit(target)
    if url.path not in ("/getCaseCount", "/runCase", "/updateReports"):
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return None
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                 b"\r\n\r\n")
    await writer.drain()
    return url.path, urllib.parse.parse_qs(url.query)


async def serve(reader, writer):
    """One connection: the case count, a case, or the report."""
    try:
        writer.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass
    p = None
    try:
        req = await asyncio.wait_for(handshake(reader, writer), 10)
        if req is None:
            return
        path, q = req
        agent = q.get("agent", ["unknown"])[0]
        p = Peer(reader, writer)
        if path == "/getCaseCount":
            reader_task = asyncio.ensure_future(p.read_loop())
            await p.send(frame(TEXT, str(len(CASES)).encode()))
            await p.close(1000)
            await p.until(p.ended.is_set, CLOSE_WAIT)
            reader_task.cancel()
        elif path == "/updateReports":
            for _ in range(500):        # cases still finishing
                if not RUNNING:
                    break
                await asyncio.sleep(0.01)
            text = report(agent)
            if ARGS.report:
                with open(ARGS.report, "w") as f:
                    f.write(text)
            sys.stdout.write(text)
            sys.stdout.flush()
            reader_task = asyncio.ensure_future(p.read_loop())
            await p.close(1000)
            await p.until(p.ended.is_set, CLOSE_WAIT)
            reader_task.cancel()
            if ARGS.exit_after_report:
                asyncio.get_running_loop().call_soon(STOP.set)
        else:
            n = int(q.get("case", ["0"])[0])
            if not 1 <= n <= len(CASES):
                await p.close(1008, b"no such case")
                return
            case = CASES[n - 1]
            RUNNING.add(p)
            try:
                res = await run_case(case, p)
                RESULTS.setdefault(agent, {})[case.cid] = res
            finally:
                RUNNING.discard(p)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError,
            asyncio.LimitOverrunError, ConnectionError, OSError, ssl.SSLError,
            ValueError):
        pass
    finally:
        if p is not None:
            p.drop()
        else:
            writer.close()


async def main():
    global STOP
    STOP = asyncio.Event()
    ctx = None
    if ARGS.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.cert, ARGS.key)
    server = await asyncio.start_server(serve, ARGS.host, ARGS.port, ssl=ctx,
                                        limit=1 << 16)
    port = server.sockets[0].getsockname()[1]
    if ARGS.portfile:
        with open(ARGS.portfile + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(ARGS.portfile + ".tmp", ARGS.portfile)
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, STOP.set)
    await STOP.wait()
    server.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--portfile")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--report")
    ap.add_argument("--cases", help="keep the case IDs matching this regex")
    ap.add_argument("--exit-after-report", action="store_true")
    ap.add_argument("--list", action="store_true")
    ARGS = ap.parse_args()
    if ARGS.cases:
        CASES[:] = [c for c in CASES if re.match(ARGS.cases, c.cid)]
    if ARGS.list:
        for c in CASES:
            print(c.cid, c.desc)
        sys.exit(0)
    asyncio.run(main())
