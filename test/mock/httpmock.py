#!/usr/bin/env python3
"""Generic HTTP mock for synchub's `http` job tests.

  ANY /echo                     -> 200 {"method","path","query","headers","body"}
  ANY /status/<code>            -> that status (?retry_after=S, ?body=text)
  ANY /delay/<ms>               -> 200 {"delayed": ms} after ms
  GET /bytes/<n>                -> n bytes of 'x' (text/plain)
  GET /json/<n>                 -> a JSON document of n bytes (about, >= 64)
  ANY /flaky/<key>?fail=N&code=C -> C (default 500) N times, then 200
  ANY /ok                       -> 200 {"ok":true}
  ANY /limited?rate=R&key=K     -> token bucket of R req/s per key; 429 + Retry-After: 1
Plus the common /_mock/ control API (README.md).
"""

import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from control import Control  # noqa: E402
from faults import Faults  # noqa: E402
from mockhttp import MockServer, Response, common_args, json_response, run  # noqa: E402
from ratelimit import TokenBucket  # noqa: E402
from recorder import Recorder  # noqa: E402

OK_BODY = b'{"ok":true}'


def json_of_size(n):
    items = []
    size = 32
    i = 0
    while size + 60 < n:
        item = {"id": i, "name": "item %d" % i, "value": i * 7 % 1000}
        items.append(item)
        size += len(json.dumps(item, separators=(",", ":"))) + 1
        i += 1
    doc = {"count": len(items), "items": items, "pad": ""}
    cur = len(json.dumps(doc, separators=(",", ":")))
    doc["pad"] = "x" * max(0, n - cur)
    return json.dumps(doc, separators=(",", ":"))


class HttpMock:
    def __init__(self, recorder):
        self.recorder = recorder
        self.reset()

    def reset(self):
        self.flaky = {}
        self.buckets = {}
        self.limited = {}

    def stats(self):
        return {"limited": self.limited}

    async def handle(self, req):
        parts = req.path.strip("/").split("/")
        head = parts[0]
        arg = parts[1] if len(parts) > 1 else None
        if head == "ok":
            return Response(200, OK_BODY, content_type="application/json")
        if head == "jsontext":
            # the query's body, sent as is under a JSON content type
            return Response(200, req.query.get("body", ""), content_type="application/json")
        if head == "echo":
            return json_response({"method": req.method, "path": req.path,
                                  "query": req.query, "headers": req.headers,
                                  "body": req.text()})
        try:
            if head == "status" and arg:
                return self.status(int(arg), req)
            if head == "delay" and arg:
                ms = float(arg)
                await asyncio.sleep(ms / 1000.0)
                return json_response({"delayed": int(ms) if ms.is_integer() else ms})
            if head == "bytes" and arg:
                return Response(200, b"x" * int(arg))
            if head == "json" and arg:
                return Response(200, json_of_size(int(arg)), content_type="application/json")
        except ValueError:
            return json_response({"error": "bad number in path"}, 400)
        if head == "flaky" and arg:
            return self.flaky_answer(arg, req)
        if head == "limited":
            return self.limited_answer(req)
        return json_response({"error": "not found", "path": req.path}, 404)

    @staticmethod
    def status(code, req):
        headers = {}
        if "retry_after" in req.query:
            headers["Retry-After"] = req.query["retry_after"]
        return Response(code, req.query.get("body", ""), headers)

    def flaky_answer(self, key, req):
        n = self.flaky.get(key, 0) + 1
        self.flaky[key] = n
        fail = int(req.query.get("fail", 1))
        if n <= fail:
            code = int(req.query.get("code", 500))
            return json_response({"ok": False, "key": key, "attempt": n}, code)
        return json_response({"ok": True, "key": key, "attempt": n})

    def limited_answer(self, req):
        key = req.query.get("key", "default")
        rate = float(req.query.get("rate", 10))
        req.account = "limited:" + key
        bucket = self.buckets.get(key)
        if bucket is None or bucket.rate != rate:
            bucket = self.buckets[key] = TokenBucket(rate)
        counts = self.limited.setdefault(key, {"allowed": 0, "rejected": 0})
        if bucket.allow():
            counts["allowed"] += 1
            return json_response({"ok": True, "key": key})
        counts["rejected"] += 1
        self.recorder.note_throttled(req.account)
        return json_response({"error": "rate limited", "key": key}, 429, {"Retry-After": "1"})


def main():
    args = common_args("synchub generic HTTP mock").parse_args()

    def make():
        recorder = Recorder()
        faults = Faults()
        app = HttpMock(recorder)
        return MockServer(app, recorder, faults, Control(app, recorder, faults), args.log)

    run(make, args)


if __name__ == "__main__":
    main()
