"""Self-test of httpmock.py (run by selftest.py)."""

import asyncio
import http.client
import json
import multiprocessing
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from mockclient import AsyncConn, Client, Server


def raw(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out


async def load(port, path, conns, seconds, headers=None):
    done = 0
    bad = 0
    stop = time.time() + seconds

    async def worker():
        nonlocal done, bad
        c = await AsyncConn().open(port)
        while time.time() < stop:
            status, _ = await c.request("GET", path, headers)
            done += 1
            bad += status != 200
        c.close()
    t0 = time.time()
    await asyncio.gather(*[worker() for _ in range(conns)])
    return done / (time.time() - t0), bad


async def many_connections(port, n):
    async def one():
        c = await AsyncConn().open(port)
        status, _ = await c.request("GET", "/delay/500")
        c.close()
        return status
    return await asyncio.gather(*[one() for _ in range(n)])


def _load_proc(args):
    port, path, headers, conns, seconds = args
    return asyncio.run(load(port, path, conns, seconds, headers))


def parallel_load(port, path, headers, procs, conns, seconds):
    """Requests/s summed over `procs` client processes (the client is the slow side)."""
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        res = pool.map(_load_proc, [(port, path, headers, conns, seconds)] * procs)
    return sum(r for r, _ in res), sum(b for _, b in res)


def run(t):
    srv = Server("httpmock.py")
    c = Client(srv.port)
    try:
        basics(t, c, srv)
        faults(t, c, srv)
        control(t, c, srv)
    finally:
        code = srv.stop()
    t.check("exits cleanly on SIGTERM", code == 0, code)


def basics(t, c, srv):
    t.check("port file written", srv.port > 0)
    t.check("health", c.get("/_mock/health").status == 200)
    r = c.get("/ok")
    t.check("/ok", r.status == 200 and r.json() == {"ok": True})
    r = c.post("/echo?a=1&b=two", body="hello", headers={"X-Test": "v"})
    e = r.json()
    t.check("/echo", e["method"] == "POST" and e["query"] == {"a": "1", "b": "two"}
            and e["headers"]["x-test"] == "v" and e["body"] == "hello", e)
    out = raw(srv.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET /ok HTTP/1.0\r\n\r\n")
    t.check("chunked request body", b'"body":"hello world"' in out, out[-200:])
    out = raw(srv.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                        b"Expect: 100-continue\r\nConnection: close\r\n\r\nabc")
    t.check("Expect: 100-continue", out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200")
            and b'"body":"abc"' in out, out[:200])
    out = raw(srv.port, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
                        b"GET /echo?p=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    t.check("pipelined requests answered in order",
            out.count(b"HTTP/1.1 200") == 2 and out.find(b'{"ok":true}') < out.find(b'"p"'), out)
    r = c.get("/status/503", query={"retry_after": "2", "body": "later"})
    t.check("/status/<code>", r.status == 503 and r.headers.get("retry-after") == "2"
            and r.body == b"later", (r.status, r.headers))
    t0 = time.time()
    r = c.get("/delay/200")
    t.check("/delay/<ms>", r.status == 200 and r.json() == {"delayed": 200}
            and time.time() - t0 >= 0.19)
    r = c.get("/bytes/1000")
    t.check("/bytes/<n>", r.status == 200 and r.body == b"x" * 1000)
    r = c.get("/json/5000")
    doc = r.json()
    t.check("/json/<n>", len(r.body) == 5000 and len(doc["items"]) > 10, len(r.body))
    codes = [c.get("/flaky/k1", query={"fail": 2, "code": 502}) for _ in range(3)]
    t.check("/flaky/<key>", [x.status for x in codes] == [502, 502, 200]
            and codes[2].json() == {"ok": True, "key": "k1", "attempt": 3})
    statuses = [c.get("/limited", query={"rate": 5, "key": "a"}) for _ in range(12)]
    n429 = [x for x in statuses if x.status == 429]
    t.check("/limited token bucket", 5 <= 12 - len(n429) <= 7 and n429
            and n429[0].headers.get("retry-after") == "1", [x.status for x in statuses])
    st = c.ctl("/_mock/stats")
    t.check("/limited violations recorded", st["limited"]["a"]["rejected"] == len(n429)
            and st["accounts"]["limited:a"]["throttled"] == len(n429), st["limited"])
    t.check("unknown path 404", c.get("/nope").status == 404)


def faults(t, c, srv):
    c.ctl("/_mock/reset", {})
    c.ctl("/_mock/faults", {"match": "/ok", "after": 1, "count": 2, "status": 503,
                            "body": {"error": "busy"}, "headers": {"Retry-After": "2"}})
    rs = [c.get("/ok") for _ in range(4)]
    t.check("status fault with after/count", [r.status for r in rs] == [200, 503, 503, 200]
            and rs[1].json() == {"error": "busy"} and rs[1].headers.get("retry-after") == "2",
            [r.status for r in rs])
    c.ctl("/_mock/faults", {"match": "/echo", "method": "GET", "delay_ms": 300})
    t0 = time.time()
    c.post("/echo")
    fast = time.time() - t0
    t0 = time.time()
    c.get("/echo")
    t.check("delay fault (method filter)", fast < 0.2 and time.time() - t0 >= 0.29)
    c.ctl("/_mock/faults", {"match": "/json", "malformed": True})
    r = c.get("/json/2000")
    try:
        json.loads(r.body)
        parsed = True
    except ValueError:
        parsed = False
    t.check("malformed fault: 200 with truncated JSON", r.status == 200 and not parsed
            and r.headers["content-type"].startswith("application/json"))
    t.check("malformed fault applies once", c.get("/json/2000").status == 200
            and json.loads(c.get("/json/100").body) is not None)
    c.ctl("/_mock/faults", {"match": "/ok", "close": True})
    try:
        c.get("/ok")
        dropped = False
    except (http.client.HTTPException, ConnectionError):
        dropped = True
    t.check("close fault drops the connection", dropped)
    c.ctl("/_mock/faults", {"match": "/ok", "close": "reset"})
    try:
        c.get("/ok")
        dropped = False
    except (http.client.HTTPException, ConnectionError):
        dropped = True
    t.check("close=reset fault drops the connection", dropped)
    t.check("after the close faults /ok works again", c.get("/ok").status == 200)
    c.ctl("/_mock/faults", {"match": "/ok", "count": -1, "status": 500})
    t.check("count -1 applies forever", all(c.get("/ok").status == 500 for _ in range(5)))
    c.ctl("/_mock/reset", {})
    t.check("reset clears faults", c.get("/ok").status == 200)


def control(t, c, srv):
    c.ctl("/_mock/reset", {})
    c.get("/echo?secret=abc", headers={"Authorization": "Bearer s3cret"})
    c.post("/status/201", body="x")
    reqs = c.ctl("/_mock/requests")
    t.check("requests log", len(reqs) == 2 and reqs[0]["path"] == "/echo"
            and reqs[0]["query"] == {"secret": "abc"}
            and reqs[0]["headers"]["authorization"] == "Bearer s3cret"
            and reqs[1]["status"] == 201 and reqs[1]["body"] == "x"
            and isinstance(reqs[0]["t"], float) and isinstance(reqs[0]["conn"], int), reqs)
    t.check("control calls are not recorded", all(not r["path"].startswith("/_mock") for r in reqs))
    with ThreadPoolExecutor(20) as ex:
        list(ex.map(lambda _: Client(srv.port).get("/delay/300").status, range(20)))
    st = c.ctl("/_mock/stats")
    t.check("stats max_concurrent", st["max_concurrent"] >= 15, st["max_concurrent"])
    t.check("stats counts", st["requests"] == 22 and st["connections"] >= 20
            and st["max_in_window"]["1"] >= 20 and set(st["max_in_window"]) == {"1", "2", "10"}, st)
    t0 = time.time()
    res = asyncio.run(many_connections(srv.port, 300))
    took = time.time() - t0
    st = c.ctl("/_mock/stats")
    t.check("300 simultaneous connections", res == [200] * 300 and took < 3
            and st["max_concurrent"] >= 250, (took, st["max_concurrent"], sorted(set(res))))
    log = open(srv.log).read()
    t.check("log has no query strings or header values",
            "secret" not in log and "s3cret" not in log and " GET /echo 200\n" in log)
    rps, bad = parallel_load(srv.port, "/ok", None, 2, 4, 1.5)
    t.check("throughput /ok >= 2000 req/s on keep-alive", rps >= 2000 and not bad, rps)
    t.note("httpmock /ok: %.0f requests/s (2 client processes x 4 keep-alive connections)" % rps)
    c.ctl("/_mock/reset", {})
    st = c.ctl("/_mock/stats")
    t.check("reset clears the log", st["requests"] == 0 and c.ctl("/_mock/requests") == [])
