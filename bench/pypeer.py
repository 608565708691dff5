"""pypeer: the Python consumer dcevents is compared with.

Written the way users of the Docker Cloud Python SDK wrote theirs: a
websocket-client (python3-websocket) WebSocketApp with an on_message
callback, json.loads of each message, then one record per event with
systemd.journal.send(), the logging module's SysLogHandler, or a JSON line
on stdout (flushed per line, as PYTHONUNBUFFERED=1 does in a container).
websocket-client runs with its defaults (UTF-8 validation of every text
message in pure Python, as the SDK left it).  The records carry the same
fields as dcevents' (MESSAGE "TYPE OBJECT ACTION: STATE (URI)", PRIORITY,
SYSLOG_IDENTIFIER, MESSAGE_ID, DOCKERCLOUD_*).  A message that is not JSON
is logged as an error record (the benchmark's end marker) and on stderr.

  /usr/bin/python3 pypeer.py URL CAFILE journal|stdout|udp:PORT|tcp:PORT
                             [IDENTIFIER]
"""
import json, logging, logging.handlers, socket, ssl, sys

import websocket

MIDS = {"container": "2d5b08411d17441eb2311e51539d27d3"}
OTHER_MID = "60ac6ef7c5b84cd7a9261121a1bf88bd"
PARSE_MID = "f8052b8f3c11438a8b8e76367d667c46"
NAMESPACE = "bench"


def message(ev):
    """The one-line MESSAGE dcevents writes."""
    uri = ev.get("resource_uri", "")
    obj = uri.rstrip("/").rsplit("/", 1)[-1][:8]
    return "%s %s %s: %s (%s)" % (ev.get("type", "event"), obj,
                                  ev.get("action", ""), ev.get("state", ""),
                                  uri)


def main():
    url, cafile, sink = sys.argv[1], sys.argv[2], sys.argv[3]
    ident = sys.argv[4] if len(sys.argv) > 4 else "pypeer"
    err = logging.getLogger("pypeer")
    err.addHandler(logging.StreamHandler(sys.stderr))

    if sink == "journal":
        from systemd import journal

        def write(ev):
            uri = ev.get("resource_uri", "")
            fields = {
                "PRIORITY": "6", "SYSLOG_IDENTIFIER": ident,
                "SYSLOG_FACILITY": "3",
                "MESSAGE_ID": MIDS.get(ev.get("type"), OTHER_MID),
                "DOCKERCLOUD_TYPE": ev.get("type"),
                "DOCKERCLOUD_ACTION": ev.get("action"),
                "DOCKERCLOUD_STATE": ev.get("state"),
                "DOCKERCLOUD_UUID": ev.get("uuid"),
                "DOCKERCLOUD_RESOURCE_URI": uri,
                "DOCKERCLOUD_OBJECT_UUID": uri.rstrip("/").rsplit("/", 1)[-1],
                # journal.send() takes one value a field: the parents joined.
                "DOCKERCLOUD_PARENT": " ".join(ev.get("parents", [])),
                "DOCKERCLOUD_DATETIME": ev.get("datetime"),
                "DOCKERCLOUD_NAMESPACE": NAMESPACE,
            }
            if "sent" in ev:
                fields["DOCKERCLOUD_SENT"] = str(ev["sent"])
            journal.send(message(ev), **fields)

        def bad(text):
            journal.send("message skipped: invalid JSON: " + text[:48],
                         PRIORITY="4", SYSLOG_IDENTIFIER=ident,
                         MESSAGE_ID=PARSE_MID)
    elif sink == "stdout":
        def write(ev):
            ev["namespace"] = NAMESPACE
            print(json.dumps(ev), flush=True)

        def bad(text):
            pass
    else:
        proto, port = sink.split(":")
        h = logging.handlers.SysLogHandler(
            ("127.0.0.1", int(port)), logging.handlers.SysLogHandler.LOG_DAEMON,
            socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
        # rsyslog frames TCP by LF; the default NUL would run records together.
        h.append_nul = False
        h.setFormatter(logging.Formatter(ident + ": %(message)s\n"))
        log = logging.getLogger("events")
        log.setLevel(logging.INFO)
        log.propagate = False
        log.addHandler(h)

        def write(ev):
            pairs = " ".join('%s="%s"' % (k, v) for k, v in (
                ("type", ev.get("type")), ("action", ev.get("action")),
                ("state", ev.get("state")), ("uuid", ev.get("uuid")),
                ("resource_uri", ev.get("resource_uri")))
                if v is not None)
            pairs += "".join(' parent="%s"' % p for p in ev.get("parents", []))
            pairs += ' datetime="%s" namespace="%s"' % (ev.get("datetime"),
                                                         NAMESPACE)
            if "sent" in ev:
                pairs += ' sent="%s"' % ev["sent"]
            log.info("%s %s", message(ev), pairs)

        def bad(text):
            log.error("message skipped: invalid JSON: %s", text[:48])

    def on_message(ws, msg):
        try:
            ev = json.loads(msg)
        except ValueError:
            err.error("message skipped: invalid JSON: %s", msg[:48])
            bad(msg)
            return
        write(ev)

    app = websocket.WebSocketApp(url, on_message=on_message)
    app.run_forever(sslopt={"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": cafile})


if __name__ == "__main__":
    main()
