"""wspeer: a scriptable websocket (RFC 6455) server peer for dcevents' tests.

Raw asyncio streams + ssl, no websockets library, so that the correct path
and the deliberate protocol violations share one small code path.  The
correct path is a proper RFC 6455 server: it checks the upgrade request
(else 400), answers with the right Sec-WebSocket-Accept, unmasks and checks
client frames (unmasked or malformed -> close 1002, bad UTF-8 -> 1007),
reassembles fragmented messages, answers pings and echoes the client's
close.  One asyncio process serves any number of connections at once.

  /usr/bin/python3 wspeer.py [--host 127.0.0.1|::1] [--port 0] [--portfile F]
                             [--cert F --key F | --anon] [--log F]
                             [--script F]
--port 0 picks a free port; --portfile gets it (written atomically) once
listening.  SIGTERM or SIGINT: stop at once, exit 0.

Log: one compact JSON object a line, flushed at once, starting {"ev":EV,"n":N
(N counts accepted TCP connections from 1) and ending with "t" (seconds
since start).  EV and its other fields:
  listening port           tls-fail error           tls version sni
  connect path method version headers (names lower-cased, repeats joined)
  open (101 sent)          sent count (messages)    ping, pong data (hex)
  recv opcode data frames (text as is; binary data in hex)
  bytes data (hex: raw input after raw_reply or during delay_handshake)
  close code reason (the client's close frame, code 1005 if empty; both null
  when TCP ended without one)   abort   reset   stopped-reading   peer-closed
  error error [code]       disconnect (always the connection's last line)

Script: a JSON list of scenarios; connection N uses entry N-1, the last one
repeats.  Keys, all optional (keys starting with "_" are ignored):
  delay_tls S         sleep S seconds before the TLS handshake
  delay_handshake S   read the request, then wait S seconds before replying
  status N, headers {}   reply N (not 101) with these headers, then close
  raw_reply "text"    reply these bytes (chars U+0000-U+00FF, one byte each)
                      instead, then log what arrives until the client closes
  bad_accept true     the 101 reply has a wrong Sec-WebSocket-Accept
  reply_headers {}    extra headers in the 101 reply
  messages [...]      sent after the 101 in order, each one of:
    "text" | {"fragments": [...], "ping_between": true, "pause": S}
    | {"raw_text": "hex"} | {"size": N} (JSON text of exactly N >= 2 bytes)
    | {"binary": "hex"} | {"masked_text": "..."} | {"ping": "text"}
    | {"sleep": S}
  late_messages [...] text messages sent when the client's close arrives,
                      before our answer to it (a server that had not yet
                      read the close: its events were on the way)
  interval S          seconds between messages
  together true       write all the messages (strings only) at once: one
                      write, over TLS one record of up to 16 KiB
  after               hold (default): serve until the client goes away
                      abort: drop TCP (FIN; no close frame, no close_notify)
                      reset: drop TCP with an RST
                      close: send close_code (1000) and close_reason, then
                        wait up to 10 s for the client's close
                      stop_reading: read and answer nothing until the client
                        has closed TCP, then log what it had sent
Without --script every connection gets {"after": "hold"}.
"""
import argparse, asyncio, base64, hashlib, http, json, logging, os, signal
import fcntl, socket, ssl, struct, sys, termios, time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEYS = {"delay_tls", "delay_handshake", "status", "headers", "raw_reply",
        "bad_accept", "reply_headers", "messages", "interval", "after",
        "close_code", "close_reason", "together", "late_messages"}
AFTER = {"hold", "abort", "reset", "close", "stop_reading"}
ITEMS = {"fragments", "raw_text", "size", "binary", "masked_text", "ping",
         "sleep"}
CLOSE_WAIT = 10                 # seconds to wait for the client's close frame
T0 = time.monotonic()
LOG, SCRIPT, COUNT = None, [{"after": "hold"}], 0


def log(ev, n=None, **kw):
    """Append one JSON event line to the log file, if any, flushed at once."""
    rec = dict({"ev": ev} if n is None else {"ev": ev, "n": n}, **kw)
    rec["t"] = round(time.monotonic() - T0, 3)
    if LOG:
        LOG.write(json.dumps(rec, separators=(",", ":")) + "\n")
        LOG.flush()


def xor(data, key):
    """Apply a 4-byte websocket masking key to data."""
    k = int.from_bytes((key * (len(data) // 4 + 1))[:len(data)], "big")
    return (int.from_bytes(data, "big") ^ k).to_bytes(len(data), "big")


def frame(opcode, payload, fin=True, mask=False):
    """Encode one frame; a server sets the mask bit only to break the rules."""
    b0, m, n = (0x80 if fin else 0) | opcode, 0x80 if mask else 0, len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    key = os.urandom(4) if mask else b""
    return head + key + (xor(payload, key) if mask else payload)


async def read_frame(r):
    """Read one frame: (fin, rsv bits, opcode, masked, unmasked payload)."""
    b0, b1 = await r.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await r.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await r.readexactly(8))[0]
    if n > 64 << 20:
        raise ProtocolError(1009, "frame too big")
    key = await r.readexactly(4) if b1 & 0x80 else None
    data = await r.readexactly(n)
    return (b0 & 0x80, b0 & 0x70, b0 & 0x0F, key is not None,
            xor(data, key) if key else data)


def pad_message(size):
    """A JSON object text of exactly size bytes (size >= 2)."""
    base = '{"type":"pad","x":""}'
    if size >= len(base):
        return '{"type":"pad","x":"' + "a" * (size - len(base)) + '"}'
    return "{" + " " * (size - 2) + "}"


def accept_for(key):
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def response(status, headers):
    """An HTTP/1.1 response head with these headers."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    lines = [f"HTTP/1.1 {status} {phrase}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def check_upgrade(method, version, h):
    """Why a request is no valid websocket upgrade (RFC 6455 4.2.1), or None."""
    def has(name, token):
        return token in [t.strip().lower() for t in h.get(name, "").split(",")]
    try:
        key = base64.b64decode(h.get("sec-websocket-key", ""), validate=True)
    except ValueError:
        key = b""
    for bad, why in (
            (method != "GET" or version != "HTTP/1.1", "not GET ... HTTP/1.1"),
            ("host" not in h, "no Host header"),
            (not has("upgrade", "websocket"), "Upgrade is not websocket"),
            (not has("connection", "upgrade"), "Connection lacks upgrade"),
            (h.get("sec-websocket-version") != "13", "version is not 13"),
            (len(key) != 16, "bad Sec-WebSocket-Key")):
        if bad:
            return why
    return None


def valid_close_code(code):
    """Whether a client may send this close code (RFC 6455 7.4)."""
    return (1000 <= code <= 1014 and code not in (1004, 1005, 1006)
            or 3000 <= code <= 4999)


class ProtocolError(Exception):
    """A client protocol violation, with the close code to answer it."""

    def __init__(self, code, reason):
        """Keep the close code and reason."""
        super().__init__(reason)
        self.code, self.reason = code, reason


class Conn:
    """One client connection: TLS, HTTP upgrade, then the scripted scenario."""

    def __init__(self, n, reader, writer, sc):
        """Keep the streams and the scenario for connection number n."""
        self.n, self.r, self.w, self.sc = n, reader, writer, sc
        self.raw = writer.transport     # the TCP transport, also under TLS
        self.quiet = False              # read and log, but answer nothing
        self.close_sent = False
        self.deadline = None            # when to give up on the client's close

    def log(self, ev, **kw):
        """Log an event of this connection."""
        log(ev, self.n, **kw)

    def send(self, opcode, payload, fin=True, mask=False):
        """Queue one frame for the client."""
        self.w.write(frame(opcode, payload, fin, mask))

    def send_close(self, code=None, reason=""):
        """Send our close frame once and start waiting for the client's."""
        if not self.close_sent:
            self.close_sent = True
            self.deadline = asyncio.get_running_loop().time() + CLOSE_WAIT
            self.send(8, b"" if code is None else
                      struct.pack("!H", code) + reason.encode())

    async def watch_raw(self, timeout=None):
        """Log raw bytes from the client until EOF (True) or timeout (False)."""
        loop = asyncio.get_running_loop()
        end = None if timeout is None else loop.time() + timeout
        while end is None or loop.time() < end:
            try:
                data = await asyncio.wait_for(
                    self.r.read(65536), None if end is None else end - loop.time())
            except TimeoutError:
                return False
            except ConnectionError:
                return True
            if not data:
                return True
            self.log("bytes", data=data.hex())
        return False

    async def run(self, ctx):
        """Do TLS and the HTTP part of the scenario, then the websocket part."""
        sc = self.sc
        if ctx:
            # Before any await: else the ClientHello may land in the plain
            # stream buffer and the TLS handshake would wait for it forever.
            self.raw.pause_reading()
            await asyncio.sleep(sc.get("delay_tls", 0))
            try:
                await self.w.start_tls(ctx, ssl_handshake_timeout=10)
            except Exception as e:          # any failure is the test's subject
                self.log("tls-fail", error=str(e) or type(e).__name__)
                return
            so = self.w.get_extra_info("ssl_object")
            self.log("tls", version=so.version(), sni=getattr(so, "sni", None))
        try:
            head = await asyncio.wait_for(self.r.readuntil(b"\r\n\r\n"), 30)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, TimeoutError):
            self.log("error", error="no complete HTTP request")
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path, version = (lines[0].split(" ", 2) + ["", ""])[:3]
        hdrs = {}
        for line in filter(None, lines[1:]):
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            hdrs[name] = hdrs[name] + ", " + value if name in hdrs else value
        self.log("connect", path=path, method=method, version=version,
                 headers=hdrs)
        if sc.get("delay_handshake") and await self.watch_raw(sc["delay_handshake"]):
            return                          # the client gave up meanwhile
        if "raw_reply" in sc:
            self.w.write(sc["raw_reply"].encode("latin-1"))
            await self.watch_raw()
        elif "status" in sc:
            self.w.write(response(int(sc["status"]), {
                **sc.get("headers", {}), "Content-Length": 0, "Connection": "close"}))
        elif check_upgrade(method, version, hdrs):
            self.log("error", error=check_upgrade(method, version, hdrs))
            self.w.write(response(400, {"Content-Length": 0, "Connection": "close"}))
        else:
            key = hdrs["sec-websocket-key"] + ("x" if sc.get("bad_accept") else "")
            self.w.write(response(101, {
                "Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Accept": accept_for(key), **sc.get("reply_headers", {})}))
            self.log("open")
            await self.websocket()

    async def pause(self, rd, seconds):
        """Sleep, but no longer than the reading task lives."""
        if seconds:
            await asyncio.wait({rd}, timeout=seconds)

    async def websocket(self):
        """Send the scripted messages and ending while reading client frames."""
        sc = self.sc
        rd = asyncio.create_task(self.read_loop())
        sent = 0
        if sc.get("together"):
            msgs = sc.get("messages", [])
            self.w.write(b"".join(frame(1, m.encode()) for m in msgs))
            await self.w.drain()
            sent = len(msgs)
        for m in [] if sc.get("together") else sc.get("messages", []):
            await self.pause(rd, sent and sc.get("interval", 0))
            if rd.done():
                break
            await self.send_message(m, rd)
            sent += 1
        self.log("sent", count=sent)
        after = sc.get("after", "hold")
        if rd.done():
            pass
        elif after in ("abort", "reset"):
            await self.flush()
            await self.acked()
            if after == "reset":
                self.raw.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.log(after)
            self.w.transport.abort()
        elif after == "close":
            self.send_close(sc.get("close_code", 1000), sc.get("close_reason", ""))
        elif after == "stop_reading":
            await self.stop_reading(rd)
        await rd

    async def send_message(self, m, rd):
        """Send one scripted message item (see the module docstring)."""
        if isinstance(m, str):
            self.send(1, m.encode())
        elif "fragments" in m:
            parts = [p.encode() for p in m["fragments"]]
            for i, p in enumerate(parts):
                if i:
                    await self.pause(rd, m.get("pause", 0))
                    if m.get("ping_between"):
                        self.send(9, b"between")
                self.send(0 if i else 1, p, fin=i == len(parts) - 1)
        elif "raw_text" in m:
            self.send(1, bytes.fromhex(m["raw_text"]))
        elif "size" in m:
            self.send(1, pad_message(m["size"]).encode())
        elif "binary" in m:
            self.send(2, bytes.fromhex(m["binary"]))
        elif "masked_text" in m:
            self.send(1, m["masked_text"].encode(), mask=True)
        elif "ping" in m:
            self.send(9, m["ping"].encode())
        elif "sleep" in m:
            await self.pause(rd, m["sleep"])
        await self.w.drain()

    async def acked(self):
        """Wait (up to 2 s) until the client's kernel has acknowledged every
        byte sent, so that a drop loses nothing that was sent."""
        fd = self.raw.get_extra_info("socket").fileno()
        for _ in range(400):
            left = struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ,
                                                  b"\0\0\0\0"))[0]
            if left == 0:
                return
            await asyncio.sleep(0.005)

    async def flush(self):
        """Wait (up to 5 s) until everything written has gone to the kernel."""
        for _ in range(500):
            if not (self.w.transport.get_write_buffer_size()
                    or self.raw.get_write_buffer_size()):
                return
            await asyncio.sleep(0.01)

    async def stop_reading(self, rd):
        """Read nothing until the client has closed TCP, then read what it sent."""
        self.quiet = True
        self.w.transport.pause_reading()
        self.log("stopped-reading")
        sock = self.raw.get_extra_info("socket")
        # tcp_info's first byte is the TCP state: 7 CLOSE (reset), 8 CLOSE_WAIT.
        while not rd.done() and sock.getsockopt(
                socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] not in (7, 8):
            await asyncio.sleep(0.05)
        self.log("peer-closed")
        self.w.transport.resume_reading()
        await asyncio.wait({rd}, timeout=5)

    async def read_loop(self):
        """Read client frames until its close frame or EOF, logging and answering."""
        loop = asyncio.get_running_loop()
        op0, parts = None, []            # the fragmented message being read
        while True:
            try:
                left = self.deadline and max(0, self.deadline - loop.time())
                fin, rsv, op, masked, data = await asyncio.wait_for(
                    read_frame(self.r), left)
                if rsv or not masked or op in (3, 4, 5, 6, 7) or op > 10:
                    raise ProtocolError(1002, "reserved bits set" if rsv else
                                        "unmasked client frame" if not masked
                                        else f"unknown opcode {op}")
                if op >= 8 and (not fin or len(data) > 125):
                    raise ProtocolError(1002, "bad control frame")
                if op == 8:
                    return self.on_close(data)
                if op == 9:
                    self.log("ping", data=data.hex())
                    if not self.quiet and not self.close_sent:
                        self.send(10, data)
                elif op == 10:
                    self.log("pong", data=data.hex())
                elif (op == 0) != (op0 is not None):
                    raise ProtocolError(1002, "bad continuation sequence")
                else:
                    op0 = op0 or op
                    parts.append(data)
                if op < 8 and fin:
                    self.on_message(op0, parts)
                    op0, parts = None, []
            except ProtocolError as e:
                self.log("error", error=e.reason, code=e.code)
                if self.close_sent:
                    return
                self.send_close(e.code, e.reason)
                op0, parts = None, []
            except TimeoutError:
                self.log("error", error="no close frame from the client")
                return
            except (asyncio.IncompleteReadError, OSError):
                self.log("close", code=None, reason=None)
                return

    def on_message(self, opcode, parts):
        """Log one complete client message (text must be UTF-8)."""
        payload = b"".join(parts)
        if opcode == 1:
            try:
                data = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError(1007, "invalid UTF-8 text")
        else:
            data = payload.hex()
        self.log("recv", opcode=opcode, data=data, frames=len(parts))

    def on_close(self, data):
        """Log the client's close frame and answer it unless we already closed."""
        if len(data) == 1:
            raise ProtocolError(1002, "one-byte close payload")
        code = struct.unpack("!H", data[:2])[0] if data else 1005
        self.log("close", code=code, reason=data[2:].decode("utf-8", "replace"))
        answer = None if not data else code if valid_close_code(code) else 1002
        try:
            data[2:].decode("utf-8")
        except UnicodeDecodeError:
            answer = 1007
        if not self.quiet and not self.close_sent:
            for m in self.sc.get("late_messages", []):
                self.send(1, m.encode())
            self.send_close(answer)


async def handle(reader, writer, ctx):
    """Serve one accepted TCP connection with its scenario."""
    global COUNT
    COUNT += 1
    n = COUNT
    try:
        await Conn(n, reader, writer, SCRIPT[min(n, len(SCRIPT)) - 1]).run(ctx)
    except Exception as e:              # log it, keep serving others
        log("error", n, error=f"{type(e).__name__}: {e}")
    finally:
        writer.close()
        log("disconnect", n)


def load_script(path):
    """Read and check the script file: a list of scenario objects."""
    with open(path) as f:
        s = json.load(f)
    s = [s] if isinstance(s, dict) else s
    if not isinstance(s, list) or not s:
        sys.exit(f"wspeer: {path}: expected a non-empty list of scenarios")
    for i, sc in enumerate(s):
        bad = [k for k in sc if k not in KEYS and not k.startswith("_")]
        if bad or sc.get("after", "hold") not in AFTER or sc.get("status") == 101:
            sys.exit(f"wspeer: {path}: scenario {i}: bad key or value {bad}")
        for m in sc.get("messages", []):
            if not isinstance(m, str) and not (isinstance(m, dict) and ITEMS & set(m)):
                sys.exit(f"wspeer: {path}: scenario {i}: bad message {m!r}")
            if isinstance(m, dict) and m.get("size", 2) < 2:
                sys.exit(f"wspeer: {path}: scenario {i}: size below 2")
    return s


async def main(a):
    """Listen, report the port, and serve until SIGTERM or SIGINT."""
    ctx = None
    if a.anon:
        # TLS 1.2 with anonymous Diffie-Hellman: no certificate at all.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("aNULL:@SECLEVEL=0")
    elif a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)

        def sni(so, name, _ctx):
            """Remember the server name the client asked for."""
            so.sni = name
        ctx.sni_callback = sni
    server = await asyncio.start_server(lambda r, w: handle(r, w, ctx),
                                        a.host, a.port)
    port = server.sockets[0].getsockname()[1]
    log("listening", port=port)
    if a.portfile:
        with open(a.portfile + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(a.portfile + ".tmp", a.portfile)
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(s, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="scriptable websocket test server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    for opt in ("--portfile", "--cert", "--key", "--log", "--script"):
        p.add_argument(opt)
    p.add_argument("--anon", action="store_true",
                   help="TLS without a certificate (anonymous DH, TLS 1.2)")
    args = p.parse_args()
    if args.script:
        SCRIPT = load_script(args.script)
    if args.log:
        LOG = open(args.log, "a")
    logging.getLogger("asyncio").setLevel(logging.ERROR)   # no SSL chatter
    asyncio.run(main(args))
    sys.exit(0)
