"""Small HTTP/1.1 clients used by the mock servers' self-test.

`Client` is a blocking keep-alive client (http.client) with JSON helpers;
`AsyncConn` is a minimal asyncio keep-alive client for load measurements.
"""

import asyncio
import http.client
import json
import subprocess
import sys
import tempfile
import time
import os
from urllib.parse import urlencode


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None, headers=None, query=None, form=None):
        if query:
            path += ("&" if "?" in path else "?") + urlencode(query)
        headers = dict(headers or {})
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
            return Reply(r.status, r.getheaders(), r.read())
        except Exception:
            self.conn.close()
            self.conn = None
            raise

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def ctl(self, path, body=None):
        """Control call: GET when body is None, else POST; returns parsed JSON."""
        r = self.request("GET" if body is None else "POST", path, body=body)
        return r.json()


class AsyncConn:
    """One keep-alive connection; request() returns (status, body)."""

    async def open(self, port):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        return self

    async def request(self, method, path, headers=None, body=b""):
        head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n" % (
            method, path, len(body))
        for k, v in (headers or {}).items():
            head += "%s: %s\r\n" % (k, v)
        self.writer.write(head.encode() + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        length = 0
        for line in lines[1:]:
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        return status, await self.reader.readexactly(length)

    def close(self):
        self.writer.close()


class Server:
    """A mock server started as a subprocess on a free port."""

    def __init__(self, script, *args):
        self.dir = tempfile.mkdtemp(prefix="mock-")
        self.port_file = os.path.join(self.dir, "port")
        self.log = os.path.join(self.dir, "requests.log")
        here = os.path.dirname(os.path.abspath(__file__))
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(here, script), "--port", "0",
             "--port-file", self.port_file, "--log", self.log] + list(args),
            stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while not os.path.exists(self.port_file):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("%s did not start" % script)
            time.sleep(0.02)
        with open(self.port_file) as f:
            self.port = int(f.read())

    def stop(self):
        self.proc.terminate()
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9
