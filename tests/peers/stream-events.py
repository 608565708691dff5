"""The scripted stream of the integration tests: the demo's events (every
type and state) with hostile values, the older date member, unknown
members and types, error events, auth and notification events with their
data, duplicates, fragmented messages and
invalid JSON between valid events, and text that is not UTF-8: escapes of
lone surrogates, and a binary message with bytes that are not UTF-8
(in messages.json as ["binary", HEX]).

  stream-events.py DEMO.json MESSAGES.json SCRIPT.json

writes the messages (what expect.py reads) and the wspeer script that
sends them (long messages fragmented, every seventh with a ping between
fragments)."""
import json
import sys

demo = json.load(open(sys.argv[1]))
hostile = [
    {"type": "container", "action": "update",
     "state": "Run\nning \"q\" ]x\\y\t",
     "uuid": "h-1", "resource_uri": "/api/app/v1/demo/container/h-1/",
     "parents": ["/p/\u0000nul/", "/p/\u00e9\u65e5/", 7],
     "datetime": "2016-03-08T14:03:21Z", "note": "line1\nline2",
     "Weird-Key.x": "v]\"\\", "num": 42, "flag": False, "nothing": None,
     "nested": {"a": [1, {"b": 2}]}, "priority": "0", "MESSAGE_ID": "x",
     "object_uuid": "spoof",
     "a_member_name_that_is_far_too_long_for_a_journal_field_x": "y"},
    {"type": "service", "action": "update", "state": "Running",
     "uuid": "d-1", "resource_uri": "/api/app/v1/demo/service/d-1/",
     "date": "2015-01-02T03:04:05Z"},
    {"type": "volume", "action": "create", "state": "Ready",
     "uuid": "t-1", "resource_uri": "/api/app/v1/demo/volume/t-1/"},
    {"type": "error", "data": {"errorMessage": "UNAUTHORIZED\n\"x\""}},
    {"type": "container", "state": "Stopped", "uuid": "ctl-\u0001-\u007f",
     "resource_uri": "/x/y/"},
    # data kept: in MESSAGE (auth, notifications), DOCKERCLOUD_DATA_*,
    # data.* parameters and the data object on stdout
    {"type": "user-notification", "uuid": "n-1",
     "data": {"message": "Stack \"web\" is running:\n2 services]",
              "level": "info", "count": 2, "sticky": False, "none": None,
              "nested": {"a": 1}, "list": [1, 2],
              "a_data_member_name_that_is_far_too_long_for_syslog": "y"},
     "datetime": "2016-03-08T14:05:22Z"},
    {"type": "user-notifications", "uuid": "n-2", "data": "plain text"},
    {"type": "auth", "uuid": "n-3", "data": {}},
    {"type": "service", "action": "update", "state": "Running",
     "uuid": "n-4", "resource_uri": "/api/app/v1/demo/service/n-4/",
     "data": {"message": "not in MESSAGE", "type": "not ours"}},
    {"type": "error", "data": {"code": 401, "errorMessage": "UNAUTHORIZED"}},
]
# Text that is not UTF-8: each becomes U+FFFD in every output (README,
# Records).
not_utf8 = [
    '{"type":"container","action":"update","state":"Run\\udfffning",'
    '"uuid":"u8-1","resource_uri":"/api/app/v1/demo/container/u8\\ud800/",'
    '"parents":["/p/\\udc00\\ud800/","/p/\\ud83d\\ude00/"],'
    '"datetime":"2016-03-08T14:03:22Z","note":"\\ud800\\u0041\\ud800",'
    '"k\\udfffey":"\\\\udfff"}',
    '{"type":"error","data":{"errorMessage":"bad \\udfff"}}',
    ["binary", (b'{"type":"container","action":"update","state":"Bin\xffary",'
                b'"uuid":"u8-2","resource_uri":"/api/app/v1/demo/container/'
                b'u8-2\xed\xa0\x80/","note":"\xc0\xaf|\xe0\x80\xaf|'
                b'\xed\xbf\xbf|\xf4\x90\x80\x80|\xe2\x82|\xc3\xa9\xf0\x9f'
                b'\x98\x80|\x80","n\xfe":"x"}').hex()],
    ["binary", b'{"a":\xff\xfe}'.hex()],   # invalid JSON: \xff\xfe in the warning
]
messages = []
for i, ev in enumerate(demo):
    messages.append(ev)
    if i == 5:
        messages.append("{not json")
    if i == 20:
        messages.append("[1, 2]")
        messages.append(demo[3])            # a duplicate uuid
    if i == 40:
        messages.append('"just a string"')
        messages.append(demo[40])           # the one just sent
messages[10:10] = hostile + not_utf8
json.dump(messages, open(sys.argv[2], "w"), ensure_ascii=False)

items = []
for i, m in enumerate(messages):
    if isinstance(m, list):
        items.append({"binary": m[1]})
        continue
    t = m if isinstance(m, str) else json.dumps(m, ensure_ascii=False)
    if len(t) > 80 and i % 3 == 0:
        n = len(t) // 3
        item = {"fragments": [t[:n], t[n:2 * n], t[2 * n:]]}
        if i % 7 == 0:
            item["ping_between"] = True
        items.append(item)
    else:
        items.append(t)
json.dump([{"messages": items, "after": "hold"}], open(sys.argv[3], "w"),
          ensure_ascii=False)
