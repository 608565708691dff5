"""Compare records field by field: compare.py KIND EXPECTED ACTUAL

KIND journal: ACTUAL is journalctl -o json output; the event records
(MESSAGE_ID of an event type) are taken in order, journald's own fields
(_* and __*) dropped, byte arrays decoded.  KIND stdout: ACTUAL holds one
JSON object per line.  KIND syslog: ACTUAL is the rsyslog harness' JSON
output.  Prints every difference; exits 1 if there is one."""
import json
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import expect  # noqa: E402

EVENT_IDS = set(expect.MIDS.values()) | {expect.OTHER}


def jvalue(v):
    """A journalctl JSON value as text (byte arrays decoded)."""
    if isinstance(v, list) and v and all(isinstance(x, int) for x in v):
        return bytes(v).decode("utf-8", "surrogateescape")
    if isinstance(v, list):
        return [jvalue(x) for x in v]
    return v


def actual(kind, path):
    """The records of ACTUAL, normalised for comparison."""
    recs = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
    if kind == "journal":
        out = []
        for r in recs:
            r = {k: jvalue(v) for k, v in r.items() if not k.startswith("_")}
            # journald keeps repeated fields, not their order
            r = {k: sorted(v) if isinstance(v, list) else v
                 for k, v in r.items()}
            if r.get("MESSAGE_ID") in EVENT_IDS:
                out.append(r)
        return out
    if kind == "syslog":
        return [{k: r.get(k) for k in ("pri", "msgid", "structured_data",
                                        "msg", "app_name")}
                for r in recs if r.get("msgid") != "dcevents"]
    if kind == "local":
        # the daemon's own records (connected, ...) have no pairs
        return [{k: r.get(k) for k in ("pri", "msg", "app_name")}
                for r in recs if ' type="' in r.get("msg", "")]
    return recs


def main():
    kind, exp_path, act_path = sys.argv[1:4]
    want = [json.loads(l) for l in open(exp_path, encoding="utf-8")]
    if kind == "journal":
        want = [{k: sorted(v) if isinstance(v, list) else v
                 for k, v in w.items()} for w in want]
    got = actual(kind, act_path)
    if kind in ("syslog", "local"):
        for w in want:
            w["pri"] = str(w["pri"])
        for g in got:
            g["pri"] = str(g["pri"])
    bad = 0
    if len(got) != len(want):
        print(f"# {len(got)} records, expected {len(want)}")
        bad = 1
    for i, (w, g) in enumerate(zip(want, got)):
        if w == g:
            continue
        bad = 1
        print(f"# record {i + 1}:")
        for k in sorted(set(w) | set(g)):
            if w.get(k) != g.get(k):
                print(f"#   {k}: want {w.get(k)!r}")
                print(f"#   {k}:  got {g.get(k)!r}")
        if bad > 5:
            break
    sys.exit(bad)


if __name__ == "__main__":
    main()
