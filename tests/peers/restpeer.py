"""restpeer: a Docker Cloud REST API stand-in for dcevents' enrichment tests.

An HTTPS (or, with --plain, HTTP) server on loopback answering GET requests
for resource URIs with JSON objects shaped as Docker Cloud's API returned
them, over kept-alive HTTP/1.1 connections.

  /usr/bin/python3 restpeer.py --portfile F --log F [--cert F --key F |
                               --plain] [--script F] [--auth VALUE]

Log: one JSON line per request: {"path", "auth" (true when the
Authorization header matched --auth, or was present without --auth),
"status", "conn" (connection number), "took" (seconds from the request to
the answer written), "t"}, written once it is answered; when one arrives,
{"ev":"request","req":PATH}; {"ev":"connect"} for each connection.

Objects: the last two path segments TYPE/UUID make the object; its name is
TYPE-UUID[:4] (e.g. "container-0b0e"), unless the script names it.
  container: name, image_name, image_tag, node, service, state,
             container_envvars (with a secret: see SECRET)
  service: name, image_name, stack     stack: name
  node: external_fqdn, node_cluster, region
  nodecluster: name, region, provider

Script (a JSON object, read again when its file changes, so a test may
rewrite it while the server runs; all keys optional):
  delay S              seconds from each request to its answer
  status {PATH: N}     answer N (no body) for PATH; "*" for every path
  headers {NAME: V}    extra headers on every non-200 answer
  names {PATH: NAME}   the object's name
  garbage [PATH]       answer 200 with a body that is not JSON
  huge [PATH]          answer 200 with a 1 MiB JSON body
  chunked true         bodies in chunks (Transfer-Encoding: chunked)
  close true           "Connection: close" on each answer, then close
  http10 true          answer as HTTP/1.0 (no keep-alive), then close
  drop S               keep-alive answers, but close S seconds after each
                       (what the client sent meanwhile is never answered)
SIGTERM or SIGINT: stop at once, exit 0.
"""
import argparse, asyncio, json, os, signal, ssl, sys, time

SECRET = "s3cr3t-envvar-value-7f1e"
T0 = time.monotonic()
A = None
LOG = None
NCONN = 0


def log(**kw):
    kw["t"] = round(time.monotonic() - T0, 3)
    LOG.write(json.dumps(kw, separators=(",", ":")) + "\n")
    LOG.flush()


_SCRIPT = (None, {})


def script():
    """The script, read again when its file changed."""
    global _SCRIPT
    if not A.script:
        return {}
    try:
        st = os.stat(A.script)
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key != _SCRIPT[0]:
            with open(A.script) as f:
                _SCRIPT = (key, json.load(f))
    except (OSError, ValueError):
        return {}
    return _SCRIPT[1]


def make_object(path, sc):
    segs = [s for s in path.split("/") if s]
    if len(segs) < 2:
        return None
    typ, uuid = segs[-2], segs[-1]
    ns = "/".join(segs[:-2])
    name = sc.get("names", {}).get(path, "%s-%s" % (typ, uuid[:4]))
    app = "/api/app/v1/test"
    infra = "/api/infra/v1/test"
    if typ == "container":
        return {"uuid": uuid, "resource_uri": path, "name": name,
                "image_name": "nginx:1.25", "image_tag": "/api/repo/v1/tag/nginx/1.25/",
                "node": infra + "/node/n1/", "service": app + "/service/s1/",
                "state": "Running", "exit_code": None, "cpu_shares": 512,
                "privileged": False,
                "container_envvars": [{"key": "DB_PASSWORD", "value": SECRET,
                                       "origin": "USER"}],
                "calculated_envvars": [{"key": "X", "value": SECRET}],
                "run_command": "/bin/sh -c 'echo %s'" % SECRET}
    if typ == "service":
        return {"uuid": uuid, "resource_uri": path, "name": name,
                "image_name": "nginx:1.25", "stack": app + "/stack/k1/",
                "state": "Running", "target_num_containers": 2}
    if typ == "stack":
        return {"uuid": uuid, "resource_uri": path, "name": name,
                "state": "Running"}
    if typ == "node":
        return {"uuid": uuid, "resource_uri": path,
                "external_fqdn": "%s.node.dockerapp.io" % uuid[:8],
                "node_cluster": infra + "/nodecluster/c1/",
                "region": "/api/infra/v1/region/aws/us-east-1/"}
    if typ == "nodecluster":
        return {"uuid": uuid, "resource_uri": path, "name": name,
                "region": "/api/infra/v1/region/aws/us-east-1/",
                "provider": "/api/infra/v1/provider/aws/"}
    return {"uuid": uuid, "resource_uri": path}


def answer(status, body, headers=None, sc=None):
    sc = sc or {}
    reason = {200: "OK", 401: "UNAUTHORIZED", 403: "FORBIDDEN",
              404: "NOT FOUND", 429: "TOO MANY REQUESTS",
              500: "INTERNAL SERVER ERROR", 502: "BAD GATEWAY",
              503: "SERVICE UNAVAILABLE"}.get(status, "X")
    h = "HTTP/1.%d %d %s\r\nContent-Type: application/json\r\n" % (
        0 if sc.get("http10") else 1, status, reason)
    if sc.get("chunked"):
        h += "Transfer-Encoding: chunked\r\n"
        half = len(body) // 2
        body = b"".join(b"%x;n=1\r\n%s\r\n" % (len(p), p)
                        for p in (body[:half], body[half:]) if p) + \
            b"0\r\nX-Trailer: t\r\n\r\n"
    else:
        h += "Content-Length: %d\r\n" % len(body)
    if sc.get("close"):
        h += "Connection: close\r\n"
    for k, v in (headers or {}).items():
        h += "%s: %s\r\n" % (k, v)
    return h.encode() + b"\r\n" + body


async def handle(reader, writer):
    global NCONN
    NCONN += 1
    n = NCONN
    log(ev="connect", conn=n)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            hdrs = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            t0 = time.monotonic()
            log(ev="request", req=path, conn=n)
            sc = script()
            if sc.get("delay"):
                # asyncio wakes up about 1 ms late (its timers round up to
                # the millisecond): asked for 5 ms, the answer takes 5.
                await asyncio.sleep(max(0, sc["delay"] - 0.001))
            got = hdrs.get("authorization")
            auth_ok = got is not None and (A.auth is None or got == A.auth)
            st = sc.get("status", {})
            status = st.get(path, st.get("*", 200))
            if A.auth is not None and not auth_ok:
                status = 401
            body = b""
            if status == 200:
                if path in sc.get("garbage", []):
                    body = b"<html>not json</html>"
                elif path in sc.get("huge", []):
                    body = json.dumps({"name": "x" * (1 << 20)}).encode()
                else:
                    obj = make_object(path, sc)
                    if obj is None:
                        status = 404
                    else:
                        body = json.dumps(obj).encode()
            writer.write(answer(status, body,
                                None if status == 200 else sc.get("headers"),
                                sc))
            await writer.drain()
            log(path=path, method=method, auth=auth_ok, status=status,
                conn=n, took=round(time.monotonic() - t0, 6))
            if sc.get("close") or sc.get("http10"):
                break
            if sc.get("drop"):
                await asyncio.sleep(sc["drop"])
                break
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError,
            ValueError):
        pass
    finally:
        writer.close()


async def main():
    ctx = None
    if not A.plain:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(A.cert, A.key)
    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    port = srv.sockets[0].getsockname()[1]
    tmp = A.portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, A.portfile)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, lambda: stop.done() or stop.set_result(0))
    async with srv:
        await stop


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Docker Cloud REST stand-in")
    p.add_argument("--portfile", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--plain", action="store_true")
    p.add_argument("--script")
    p.add_argument("--auth")
    A = p.parse_args()
    LOG = open(A.log, "a")
    asyncio.run(main())
    sys.exit(0)
