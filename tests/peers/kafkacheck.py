"""kafkacheck: what kcat read from the topic against what was sent.

  kafkacheck.py KCAT.json SCRIPT.json STDOUT [FIRST_CONNECTION [COUNT]]

KCAT.json is `kcat -C -J -o beginning -e` (one message a line); SCRIPT.json
the wspeer script whose connections FIRST_CONNECTION (from 1; default 1)
to FIRST+COUNT-1 sent the events; STDOUT the same run's Stdout= lines.
Checks that every event sent is in the topic exactly once (no loss, no
duplicate), that each message's value is its Stdout= line without the
newline, its key the object UUID (the last part of resource_uri), its
headers type, action, state and namespace, and that one object's events
are in the order sent (they share a partition).  Prints what is wrong as
"# " lines; exit status 0 when all holds.
"""
import json
import sys

kcat, script, stdout = sys.argv[1:4]
first = int(sys.argv[4]) if len(sys.argv) > 4 else 1
count = int(sys.argv[5]) if len(sys.argv) > 5 else 1
sent = []
for conn in json.load(open(script))[first - 1:first - 1 + count]:
    sent += [json.loads(m) for m in conn.get("messages", [])
             if isinstance(m, str)]
lines = {}
for line in open(stdout, "rb"):
    lines[json.loads(line)["uuid"]] = line.rstrip(b"\n").decode()
msgs = [json.loads(l) for l in open(kcat) if l.startswith("{")]
bad = []


def wrong(what):
    if len(bad) < 10:
        print("# " + what)
    bad.append(what)


seen = {}
for m in msgs:
    ev = json.loads(m["payload"])
    u = ev["uuid"]
    if u in seen:
        wrong("duplicate %s" % u)
    seen[u] = m
    if lines.get(u) != m["payload"]:
        wrong("%s: value %r is not the Stdout= line %r" %
              (u, m["payload"], lines.get(u)))
    obj = ev.get("resource_uri", "").rstrip("/").rsplit("/", 1)[-1] or None
    if m["key"] != obj:
        wrong("%s: key %r, object %r" % (u, m["key"], obj))
    h = m.get("headers") or []
    got = dict(zip(h[0::2], h[1::2]))
    want = {k: ev[k] for k in ("type", "action", "state", "namespace")
            if ev.get(k)}
    if got != want:
        wrong("%s: headers %r, want %r" % (u, got, want))
missing = [e["uuid"] for e in sent if e["uuid"] not in seen]
if missing:
    wrong("%d of %d events missing, first %s" %
          (len(missing), len(sent), missing[:3]))
extra = set(seen) - {e["uuid"] for e in sent}
if extra:
    wrong("%d events not sent: %s" % (len(extra), sorted(extra)[:3]))
# Per object: the order sent, by the partition's offsets.
order = {}
for e in sent:
    if e["uuid"] in seen:
        m = seen[e["uuid"]]
        order.setdefault(m["key"], []).append((m["partition"], m["offset"]))
for key, pos in order.items():
    if len({p for p, _ in pos}) != 1:
        wrong("object %s in several partitions" % key)
    elif [o for _, o in pos] != sorted(o for _, o in pos):
        wrong("object %s out of order" % key)
print("# %d messages, %d events sent, %d objects" %
      (len(msgs), len(sent), len(order)))
sys.exit(1 if bad else 0)
