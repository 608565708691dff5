"""A scriptable RELP collector for tests/relp.sh (run by /usr/bin/python3).

relppeer.py --portfile F --out OUT --sessions S1,S2,...

Listens on 127.0.0.1 (a free port, written to F).  Session i behaves as
Si (the last one repeats): "ok" answers every frame with 200 OK;
"badopen" refuses the open with 500; "refuse@K", "garbage@K" and
"serverclose@K" answer the first K-1 syslog frames with 200 OK, then send
"500 test refusal", a line that is no RELP frame, or "0 serverclose 0" in
place of the K-th answer, and close.  Every record answered with 200 OK
is appended to OUT, one a line, so OUT holds what the collector took.
"""
import argparse
import asyncio
import os


async def frame(r):
    txnr = int((await r.readuntil(b" "))[:-1])
    cmd = (await r.readuntil(b" "))[:-1].decode()
    digits = b""
    while (c := await r.readexactly(1)) not in b" \n":
        digits += c
    n = int(digits)
    data = b""
    if n:
        data = await r.readexactly(n)
        if await r.readexactly(1) != b"\n":
            raise ValueError("no LF after the data")
    return txnr, cmd, data


def answer(w, txnr, text):
    w.write(b"%d rsp %d%s\n" % (txnr, len(text),
                                 b" " + text if text else b""))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--portfile", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sessions", default="ok")
    a = ap.parse_args()
    plan = a.sessions.split(",")
    out = open(a.out, "ab", buffering=0)
    seen = 0

    async def session(r, w):
        nonlocal seen
        kind, _, k = plan[min(seen, len(plan) - 1)].partition("@")
        seen += 1
        k, n = int(k or 0), 0
        try:
            while True:
                txnr, cmd, data = await frame(r)
                if cmd == "open" and kind == "badopen":
                    answer(w, txnr, b"500 not today")
                    break
                if cmd == "open":
                    answer(w, txnr, b"200 OK\nrelp_version=0\n"
                           b"relp_software=relppeer\ncommands=syslog")
                elif cmd == "syslog":
                    n += 1
                    if n == k and kind == "refuse":
                        answer(w, txnr, b"500 test refusal")
                        break
                    if n == k and kind == "garbage":
                        w.write(b"nonsense\n")
                        break
                    if n == k and kind == "serverclose":
                        w.write(b"0 serverclose 0\n")
                        break
                    out.write(data + b"\n")
                    answer(w, txnr, b"200 OK")
                elif cmd == "close":
                    answer(w, txnr, b"")
                    w.write(b"0 serverclose 0\n")
                    break
                else:
                    answer(w, txnr, b"500 unknown command")
                await w.drain()
            await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        w.close()

    srv = await asyncio.start_server(session, "127.0.0.1", 0)
    with open(a.portfile + ".tmp", "w") as f:
        f.write("%d\n" % srv.sockets[0].getsockname()[1])
    os.rename(a.portfile + ".tmp", a.portfile)
    await srv.serve_forever()


asyncio.run(main())
