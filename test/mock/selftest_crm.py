"""Self-test of crm.py: dispatch to one module per provider."""

import importlib
import json

from mockclient import Server
from selftest_http import parallel_load


def run(t, provider):
    mod = importlib.import_module("selftest_" + provider)
    srv = Server("crm.py", "--provider", provider, "--contacts", str(mod.CONTACTS), "--seed", "7")
    try:
        mod.run(t, srv)
    finally:
        code = srv.stop()
    t.check("exits cleanly on SIGTERM", code == 0, code)


def page_rate(port, path, headers, procs=2, conns=2, seconds=1.5):
    """Pages per second served on keep-alive connections."""
    return parallel_load(port, path, headers, procs, conns, seconds)


def is_json(body):
    try:
        json.loads(body)
        return True
    except ValueError:
        return False
