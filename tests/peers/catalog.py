"""catalog.py: does the journal catalog fit the records dcevents wrote?

  catalog.py CATALOG RECORDS.json RENDERED [ID...]

CATALOG is systemd/dcevents.catalog; RECORDS.json the records, one JSON
object a line (journalctl -o json); RENDERED what "journalctl -x -o
short-unix" printed for the same records, in the same order, with that
catalog compiled into the database journalctl reads, or "-" where that
database cannot be replaced (the rendering is then not checked).  The IDs
are the
MESSAGE_IDs the caller provoked: each must be among the records.

For every record (the catalog's own rules, as systemd applies them:
@FIELD@ becomes the record's field, or the bare name when the record has
no such field or its "FIELD=value" is longer than 256 bytes):
  - its MESSAGE_ID has a catalog entry;
  - every @FIELD@ of that entry is a field of the record;
  - the entry's claims fit the record (FITS below);
  - journalctl -x renders the entry for it exactly as the record's fields
    fill it in: no placeholder, no bare field name left.
Prints "ok"/"not ok" lines (TAP-like, for the driver's log); exit 1 on
any failure.
"""
import json
import re
import sys

PREFIX = "\u2591\u2591 "        # what journalctl -x puts before catalog lines
REPLACE_VAR_MAX = 256            # systemd's limit on a substituted field
PLACEHOLDER = re.compile(r"@([A-Z0-9_]+)@")
KNOWN = {"stack", "service", "container", "nodecluster", "node", "action",
         "error", "auth", "user-notification", "user-notifications"}

# (what the catalog text says, a blank matching any run of blanks and line
# breaks; what the record must then satisfy)
FITS = [
    (r"reconnects after", "says it reconnects, and so does MESSAGE",
     lambda r: "reconnecting in" in r["MESSAGE"]),
    (r"does not reconnect", "says it does not reconnect, nor does MESSAGE",
     lambda r: "reconnect" not in r["MESSAGE"]),
    (r"waits @DCEVENTS_RETRY_MS@ ms", "the wait is what MESSAGE says",
     lambda r: "retrying in %.0f s" % (int(r["DCEVENTS_RETRY_MS"]) / 1000)
     in r["MESSAGE"]),
    (r"logged at debug priority", "says debug: PRIORITY is 7",
     lambda r: r["PRIORITY"] == "7"),
    (r"^Subject: Docker Cloud (\w+) event$", "names the event's type",
     lambda r, m: r.get("DOCKERCLOUD_TYPE") == m.group(1)),
    (r"a type dcevents does not know", "a type without an id of its own",
     lambda r: r.get("DOCKERCLOUD_TYPE") not in KNOWN),
    (r"could not be parsed", "a skipped message: MESSAGE says so",
     lambda r: r["MESSAGE"].startswith("message skipped: ")),
    (r"reading paused", "a full queue: MESSAGE says reading paused",
     lambda r: "reading paused" in r["MESSAGE"]),
    (r"may be missing", "a gap: from start to end",
     lambda r: r["DCEVENTS_GAP_START"] <= r["DCEVENTS_GAP_END"]),
]


def parse_catalog(path):
    """{id: [lines]} for each "-- ID" entry (language variants skipped)."""
    entries, cur = {}, None
    for line in open(path, encoding="utf-8").read().split("\n"):
        m = re.fullmatch(r"-- ([0-9a-f]{32})( .*)?", line)
        if m:
            cur = None if m.group(2) else entries.setdefault(m.group(1), [])
            continue
        if line[:1] in ("#", ";"):     # comments, as systemd skips them
            continue
        if cur is not None:
            cur.append(line)
    for lines in entries.values():
        while lines and not lines[-1].strip():
            lines.pop()
    return entries


def value(r, name):
    """The field as journalctl's catalog lookup sees it, or None."""
    v = r.get(name)
    if isinstance(v, list):         # repeated field: the first one
        v = v[0]
    if v is None:
        return None
    if not isinstance(v, str):      # byte array: not valid UTF-8
        v = bytes(v).decode("utf-8", "replace")
    if len((name + "=" + v).encode()) > REPLACE_VAR_MAX:
        return None
    return v


def render(lines, r):
    text = "\n".join(lines)
    text = PLACEHOLDER.sub(
        lambda m: value(r, m.group(1)) if value(r, m.group(1)) is not None
        else m.group(1), text)
    return [(PREFIX + l).rstrip() for l in text.split("\n")]


def blocks(path):
    """The catalog lines journalctl printed after each record's line."""
    out = []
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if line.startswith(PREFIX.rstrip()):
            out[-1].append(line.rstrip())
        elif re.match(r"\d+\.\d+ ", line):
            out.append([])
        # else: a continuation line of a multi-line MESSAGE
    return out


def main():
    catalog = parse_catalog(sys.argv[1])
    records = [json.loads(l) for l in open(sys.argv[2])]
    rendered = blocks(sys.argv[3]) if sys.argv[3] != "-" else None
    wanted = sys.argv[4:]
    n, failed = 0, 0

    def check(ok, what, detail=None):
        nonlocal n, failed
        n += 1
        print("%sok %d - %s" % ("" if ok else "not ", n, what))
        if not ok:
            failed += 1
            if detail:
                print("#   " + detail.replace("\n", "\n#   "))

    seen = {}
    for r in records:
        seen.setdefault(r.get("MESSAGE_ID"), []).append(r)
    for mid in wanted:
        check(mid in seen, "%s provoked (%d records)" %
              (mid, len(seen.get(mid, []))))
    if rendered is not None:
        check(len(rendered) == len(records),
              "journalctl -x printed %d records, -o json %d" %
              (len(rendered), len(records)))
    for mid, recs in sorted(seen.items(), key=lambda kv: str(kv[0])):
        lines = catalog.get(mid)
        check(lines is not None, "%s: a catalog entry" % mid)
        if lines is None:
            continue
        text = "\n".join(lines)
        fields = sorted(set(PLACEHOLDER.findall(text)))
        missing = [(f, r) for r in recs for f in fields if f not in r]
        check(not missing,
              "%s: each of its %d records has %s" %
              (mid, len(recs), ", ".join(fields) or "(no placeholder)"),
              missing and "no %s in %s" % (missing[0][0],
                                           json.dumps(missing[0][1])))
        for pattern, what, test in FITS:
            m = re.search(pattern.replace(" ", r"\s+"), text, re.M)
            if not m:
                continue
            bad = [r for r in recs
                   if not (test(r, m) if test.__code__.co_argcount == 2
                           else test(r))]
            check(not bad, "%s: fits: %s" % (mid, what),
                  bad and json.dumps(bad[0]))
    if rendered is None:
        print("# journalctl -x not checked: no catalog database of ours")
        print("# MESSAGE_IDs seen: %d" % len(seen))
        return 1 if failed else 0
    bad = []
    for i, r in enumerate(records):
        lines = catalog.get(r.get("MESSAGE_ID"))
        want = render(lines, r) if lines is not None else []
        got = rendered[i] if i < len(rendered) else None
        if got != want:
            bad.append((r, want, got))
    check(not bad, "journalctl -x renders each entry as the record's "
          "fields fill it in",
          bad and "record %s\nwant %s\ngot  %s" % (
              json.dumps(bad[0][0]), json.dumps(bad[0][1]),
              json.dumps(bad[0][2])))
    print("# MESSAGE_IDs seen: %d" % len(seen))
    return 1 if failed else 0


sys.exit(main())
