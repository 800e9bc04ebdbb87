"""A client that is not ours: Debian's python3-zmq and python3-msgpack
talking to `batos run` as a DEALER, and subscribing to its events.
Usage: interop.py REQUEST_ENDPOINT EVENT_ENDPOINT. Exits non-zero on the
first wrong answer."""
import sys
import time

import msgpack
import zmq

req_addr, ev_addr = sys.argv[1], sys.argv[2]
ctx = zmq.Context()
dealer = ctx.socket(zmq.DEALER)
dealer.setsockopt(zmq.RCVTIMEO, 10000)
dealer.setsockopt(zmq.LINGER, 0)
dealer.connect(req_addr)
sub = ctx.socket(zmq.SUB)
sub.setsockopt(zmq.RCVTIMEO, 10000)
sub.setsockopt(zmq.LINGER, 0)
sub.setsockopt(zmq.SUBSCRIBE, b"commit.")
sub.connect(ev_addr)


def call(request):
    dealer.send(msgpack.packb(request))
    return msgpack.unpackb(dealer.recv(), raw=False)


def expect(cond, what, reply):
    if not cond:
        print("FAIL:", what, reply)
        sys.exit(1)


r = call({"id": 1, "command": "ping"})
expect(r == {"id": 1, "ok": True, "result": "pong"}, "ping", r)

r = call({"id": 2, "command": "eval",
          "code": "genesis.greet = method(\"def greet(self, name):\\n    return 'hello ' + name\")"})
expect(r["ok"] is True and r["id"] == 2, "eval installing a method", r)

# The subscription may take a moment to be in place: send until an event
# for one of our sends arrives.
time.sleep(0.2)
r = call({"id": 3, "command": "send", "target": "genesis", "selector": "greet", "args": ["ada"]})
expect(r["ok"] is True and r["result"]["value"] == "hello ada", "send greet", r)

r = call({"id": 4, "command": "eval", "code": "genesis.count = 1"})
expect(r["ok"] is True, "eval committing", r)
topic, payload = sub.recv_multipart()
event = msgpack.unpackb(payload, raw=False)
expect(topic.startswith(b"commit.") and "tid" in event, "commit event", (topic, event))

r = call({"id": 5, "command": "inspect", "target": "genesis"})
names = [s["name"] for s in r["result"]["own"]]
expect(r["ok"] is True and "greet" in names, "inspect", r)

r = call({"id": 6, "command": "frobnicate"})
expect(r["ok"] is False and r["error"]["kind"] == "unknown_command", "unknown command", r)

r = call({"id": 7, "command": "send", "target": "genesis", "selector": "display_yourself"})
expect(r["ok"] is False and r["error"]["kind"] == "no_mind", "not understood", r)

r = call({"id": 8, "command": "log", "limit": 2})
expect(r["ok"] is True and len(r["result"]) == 2, "log", r)

# A value with no plain form comes tagged, never as nil (nil is None).
r = call({"id": 9, "command": "eval", "code": "[1, len]"})
expect(r["ok"] is True and r["result"]["value"] == {"$repr": "[1, <built-in function len>]", "$type": "list"},
       "a list holding a built-in", r)
r = call({"id": 10, "command": "eval", "code": "1 << 70"})
expect(r["ok"] is True and r["result"]["value"] == {"$repr": str(1 << 70), "$type": "int"}, "an integer beyond int64", r)
r = call({"id": 11, "command": "eval", "code": "None"})
expect(r["ok"] is True and r["result"]["value"] is None, "None", r)

# An unknown field is refused, naming it.
r = call({"id": 12, "command": "log", "limt": 2})
expect(r["ok"] is False and r["error"]["kind"] == "bad_request" and '"limt"' in r["error"]["message"],
       "a mistyped field", r)

# A malformed request still gets its id back.
dealer.send(msgpack.packb({"id": 13, "command": "ping", "x": [2 ** 64 - 1]}))
r = msgpack.unpackb(dealer.recv(), raw=False)
expect(r["id"] == 13 and r["ok"] is False and r["error"]["kind"] == "bad_request", "the id of a bad request", r)

# A running eval is cancelled by a cancel naming its id, sent at once
# after it: the loop stops, nothing it did is saved.
loop = "for i in range(1000000000):\n    pass\ngenesis.spun = True"
dealer.send(msgpack.packb({"id": 14, "command": "eval", "code": loop}))
dealer.send(msgpack.packb({"id": 15, "command": "cancel", "request": 14}))
replies = {}
for _ in range(2):
    r = msgpack.unpackb(dealer.recv(), raw=False)
    replies[r["id"]] = r
expect(replies[15]["ok"] is True and replies[15]["result"] == {"cancelled": 1}, "cancel", replies)
expect(replies[14]["ok"] is False and replies[14]["error"]["kind"] == "cancelled", "the cancelled eval", replies)
r = call({"id": 16, "command": "eval", "code": "'spun' in dir(genesis)"})
expect(r["ok"] is True and r["result"]["value"] is False, "nothing saved by the cancelled eval", r)

# A cancel of nothing running is not_found.
r = call({"id": 17, "command": "cancel", "request": 14})
expect(r["ok"] is False and r["error"]["kind"] == "not_found", "cancel of a finished request", r)

print("interop ok")
