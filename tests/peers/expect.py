"""The records dcevents must write for a stream of messages: an
independent model of the journal fields, priorities, MESSAGE, syslog
pairs and stdout lines (dcevents(8), JOURNAL FIELDS, SYSLOG, STDOUT;
README, Records), used by the integration tests to compare journald,
rsyslog and stdout output field by field.

  expect.py MESSAGES.json OUTPUT [options]   prints the expected records

MESSAGES.json is the list of messages as sent (each a JSON text, an
object that is sent as its compact JSON text, or ["binary", HEX]: these
bytes in a binary message).  Text that is not UTF-8 becomes U+FFFD, as
in every output (README, Records): each escape of a lone surrogate, and
each maximal invalid subpart of the bytes (what Python's "replace"
error handler does).  OUTPUT is journal, stdout or syslog; the records
are printed as one JSON object per line.
"""
import json
import re
import sys

WARNING = {"Unreachable", "Partly running", "Partly deployed"}
NOTICE = {"Canceled", "Stopped", "Terminated", "Empty cluster"}
MIDS = {
    "stack": "9e863a589b434b6ea66e7a15478cd8a5",
    "service": "9c2b03e7ef394de78b9df429e98541a3",
    "container": "2d5b08411d17441eb2311e51539d27d3",
    "nodecluster": "44c8bce0e20a499a9c21182cb49d202e",
    "node": "f56b35086eb74b98adc2a393323f4cdd",
    "action": "7c3967fc02f84e91abc6545b8c22f0c2",
    "error": "8137c0e190594924a6c88920d39808bf",
    "auth": "c0b7811cf6db4f51a903a03d493402c2",
    "user-notification": "cee89c3d082d4052bbdd2bb63838956f",
    "user-notifications": "cee89c3d082d4052bbdd2bb63838956f",
}
OTHER = "60ac6ef7c5b84cd7a9261121a1bf88bd"
KNOWN = ["type", "action", "state", "uuid", "resource_uri", "datetime",
         "date", "parents"]
NOTICE_TYPES = ("auth", "user-notification", "user-notifications")
RESERVED = {"TYPE", "ACTION", "STATE", "UUID", "RESOURCE_URI",
            "OBJECT_UUID", "PARENT", "DATETIME", "NAMESPACE", "ERROR"}


def escape(s):
    """Control characters as \\n, \\r, \\t or \\xNN, as MESSAGE and
    syslog text have them (dcevents(8), JOURNAL FIELDS)."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    return "".join(out)


def priority(ev, rules):
    """The built-in priority (README, Records), with [Priority] rules
    {"TYPE.STATE"|"TYPE"|"Default": n}."""
    t, s = ev.get("type") or "", ev.get("state")
    if isinstance(s, str) and s and f"{t}.{s}" in rules:
        return rules[f"{t}.{s}"]
    if t in rules:
        return rules[t]
    if "Default" in rules:
        return rules["Default"]
    if t == "error" or s == "Failed":
        return 3
    if t in NOTICE_TYPES:
        return 7
    if s in WARNING:
        return 4
    if s in NOTICE:
        return 5
    return 6


def text(v):
    """A member as dcevents keeps it: strings as they are, else JSON."""
    return v if isinstance(v, str) else json.dumps(v)


def known(ev, k):
    """A known member's value as a string, or None if absent or not scalar."""
    v = ev.get(k)
    if v is None or isinstance(v, (dict, list)):
        return None
    return text(v)


def object_uuid(uri):
    """The last path segment of the resource URI."""
    parts = [p for p in (uri or "").split("/") if p]
    return parts[-1] if parts else None


def kept(ev):
    """The members kept as they came, in order, as (name, value, in_data):
    unknown top-level scalars (data too, when it is one) and the scalar
    members of the object data but a string errorMessage."""
    out = []
    for k, v in ev.items():
        if k == "data" and isinstance(v, dict):
            out += [(dk, dv, True) for dk, dv in v.items()
                    if dv is not None and not isinstance(dv, (dict, list))
                    and not (dk == "errorMessage" and isinstance(dv, str))]
        elif k not in KNOWN and v is not None \
                and not isinstance(v, (dict, list)):
            out.append((k, v, False))
    return out


def message(ev):
    """The one-line MESSAGE (dcevents(8), JOURNAL FIELDS)."""
    t = known(ev, "type")
    if t == "error":
        err = (ev.get("data") or {}).get("errorMessage") \
            if isinstance(ev.get("data"), dict) else None
        return "error: " + (escape(err) if isinstance(err, str)
                            else "(no errorMessage)")
    if t in NOTICE_TYPES:
        # what data says: its message (or data itself), then NAME=VALUE
        said = [escape(text(v)) if k == ("message" if d else "data")
                else escape(k) + "=" + escape(text(v))
                for k, v, d in kept(ev) if d or k == "data"]
        if said:
            return t + ": " + " ".join(said)
    m = escape(t) if t is not None else "event"
    uri = known(ev, "resource_uri")
    obj = object_uuid(uri)
    if obj:
        m += " " + escape(obj[:8])
    if known(ev, "action") is not None:
        m += " " + escape(known(ev, "action"))
    if known(ev, "state") is not None:
        m += ": " + escape(known(ev, "state"))
    if uri is not None:
        m += " (" + escape(uri) + ")"
    return m


def datetime(ev):
    """datetime, or the older date when datetime is absent."""
    d = known(ev, "datetime")
    return d if d is not None else known(ev, "date")


def field(k):
    """A member's name as journald takes it: upper-cased, others as _."""
    return re.sub(r"[^A-Z0-9_]", "_", "".join(
        c.upper() if c.isascii() else "_" * len(c.encode()) for c in k))


def valid(v):
    """v with every string (and member name) made valid UTF-8."""
    if isinstance(v, str):
        return re.sub("[\ud800-\udfff]", "\ufffd", v)
    if isinstance(v, list):
        return [valid(x) for x in v]
    if isinstance(v, dict):
        return {valid(k): valid(x) for k, x in v.items()}
    return v


def events(messages):
    """The objects that become records: parsed, deduplicated."""
    seen = []
    for m in messages:
        if isinstance(m, list):     # ["binary", HEX]
            raw = bytes.fromhex(m[1]).decode("utf-8", "replace")
        else:
            raw = m if isinstance(m, str) else json.dumps(m)
        try:
            ev = valid(json.loads(raw))
        except ValueError:
            continue
        if not isinstance(ev, dict):
            continue
        u = known(ev, "uuid")
        if u is not None:
            if u in seen[-4096:]:
                continue
            seen.append(u)
        yield ev


def journal(ev, o):
    """The journal fields (dcevents(8), JOURNAL FIELDS), lists for
    repeated fields."""
    r = {"MESSAGE": message(ev), "PRIORITY": str(priority(ev, o["rules"])),
         "SYSLOG_IDENTIFIER": o["identifier"],
         "SYSLOG_FACILITY": str(o["facility"]),
         "MESSAGE_ID": MIDS.get(known(ev, "type"), OTHER)}
    for k in ("type", "action", "state", "uuid", "resource_uri"):
        if known(ev, k) is not None:
            r["DOCKERCLOUD_" + k.upper()] = known(ev, k)
    if object_uuid(known(ev, "resource_uri")):
        r["DOCKERCLOUD_OBJECT_UUID"] = object_uuid(known(ev, "resource_uri"))
    parents = [p for p in ev.get("parents") or [] if isinstance(p, str)] \
        if isinstance(ev.get("parents"), list) else []
    if parents:
        r["DOCKERCLOUD_PARENT"] = parents if len(parents) > 1 else parents[0]
    if datetime(ev) is not None:
        r["DOCKERCLOUD_DATETIME"] = datetime(ev)
    if o["namespace"]:
        r["DOCKERCLOUD_NAMESPACE"] = o["namespace"]
    data = ev.get("data")
    if isinstance(data, dict) and isinstance(data.get("errorMessage"), str):
        r["DOCKERCLOUD_ERROR"] = data["errorMessage"]
    for k, v, d in kept(ev):
        name = ("DOCKERCLOUD_DATA_" if d else "DOCKERCLOUD_") + field(k)
        if len(name) <= 64 and (d or name[12:] not in RESERVED):
            r[name] = text(v)
    return r


def stdout(ev, o):
    """The stdout object: the members dcevents keeps, plus namespace."""
    r = {}
    for k in ("type", "action", "state", "uuid", "resource_uri"):
        if known(ev, k) is not None:
            r[k] = ev[k]
    if isinstance(ev.get("parents"), list):
        r["parents"] = [p for p in ev["parents"] if isinstance(p, str)]
    if datetime(ev) is not None:
        r["datetime"] = datetime(ev)
    data = ev.get("data")
    if isinstance(data, dict) and isinstance(data.get("errorMessage"), str):
        r["data"] = {"errorMessage": data["errorMessage"]}
    for k, v, d in kept(ev):
        if d:
            r.setdefault("data", {})[k] = v
        else:
            r[k] = v
    r["namespace"] = o["namespace"] or None
    return r


def sd_value(v):
    """Control characters escaped as in MESSAGE, then RFC 5424
    PARAM-VALUE escaping (dcevents(8), SYSLOG)."""
    return re.sub(r'(["\\\]])', r"\\\1", escape(v))


def syslog(ev, o):
    """The RFC 5424 parts: PRI, MSGID, structured data and MSG."""
    params = []
    for k in ("type", "action", "state", "uuid", "resource_uri"):
        if known(ev, k) is not None:
            params.append((k, known(ev, k)))
    if isinstance(ev.get("parents"), list):
        params += [("parent", p) for p in ev["parents"] if isinstance(p, str)]
    if datetime(ev) is not None:
        params.append(("datetime", datetime(ev)))
    data = ev.get("data")
    if isinstance(data, dict) and isinstance(data.get("errorMessage"), str):
        params.append(("error", data["errorMessage"]))
    if o["namespace"]:
        params.append(("namespace", o["namespace"]))
    for k, v, d in kept(ev):
        name = ("data." if d else "") + "".join(
            c if 32 < ord(c) < 127 and c not in '="]'
            else "_" * len(c.encode()) for c in k)
        if 0 < len(k.encode()) and len(name) <= 32:
            params.append((name, text(v)))
    sd = "[dockercloud@32473" + "".join(
        f' {k}="{sd_value(v)}"' for k, v in params) + "]"
    t = known(ev, "type") or ""
    msgid = "".join(c if 32 < ord(c) < 127 else "_" * len(c.encode())
                    for c in t)[:32] or "-"
    return {"pri": o["facility"] * 8 + priority(ev, o["rules"]),
            "msgid": msgid, "structured_data": sd, "msg": message(ev),
            "app_name": o["identifier"]}


def local(ev, o):
    """RFC 3164 to /dev/log as rsyslog parses it: MESSAGE, then pairs."""
    r = syslog(ev, o)
    pairs = r["structured_data"][len("[dockercloud@32473"):-1]
    return {"pri": r["pri"], "app_name": o["identifier"],
            "msg": " " + r["msg"] + pairs}


def main():
    messages = json.load(open(sys.argv[1]))
    kind = sys.argv[2]
    o = {"identifier": "dcevents", "facility": 3, "namespace": "",
         "rules": {}}
    for a in sys.argv[3:]:
        k, v = a.split("=", 1)
        if k == "rule":
            rk, rv = v.split("=", 1)
            o["rules"][rk] = int(rv)
        elif k == "facility":
            o["facility"] = int(v)
        else:
            o[k] = v
    fn = {"journal": journal, "stdout": stdout, "syslog": syslog,
          "local": local}[kind]
    for ev in events(messages):
        print(json.dumps(fn(ev, o), ensure_ascii=False))


if __name__ == "__main__":
    main()
