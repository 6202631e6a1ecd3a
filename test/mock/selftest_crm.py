"""Self-test of crm.py: dispatch to one module per provider."""

import asyncio
import importlib
import json
import time

from mockclient import AsyncConn, Server


def run(t, provider):
    mod = importlib.import_module("selftest_" + provider)
    srv = Server("crm.py", "--provider", provider, "--contacts", str(mod.CONTACTS), "--seed", "7")
    try:
        mod.run(t, srv)
    finally:
        code = srv.stop()
    t.check("exits cleanly on SIGTERM", code == 0, code)


def page_rate(port, path, headers, conns=4, seconds=1.5):
    """Pages per second served on keep-alive connections."""
    async def go():
        done = 0
        bad = 0
        stop = time.time() + seconds

        async def worker():
            nonlocal done, bad
            c = await AsyncConn().open(port)
            while time.time() < stop:
                status, body = await c.request("GET", path, headers)
                done += 1
                bad += status != 200 or not json.loads(body)
            c.close()
        t0 = time.time()
        await asyncio.gather(*[worker() for _ in range(conns)])
        return done / (time.time() - t0), bad
    return asyncio.run(go())


def is_json(body):
    try:
        json.loads(body)
        return True
    except ValueError:
        return False
