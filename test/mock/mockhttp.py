"""Minimal asyncio HTTP/1.1 server shared by synchub's mock servers.

Keep-alive, pipelining (in order), Content-Length and chunked request bodies,
`Expect: 100-continue`, many concurrent connections.  Every non-control
request goes through the fault rules and the request recorder; `/_mock/...`
paths are answered by the control API (see control.py) and never counted.
"""

import argparse
import asyncio
import json
import os
import signal
import time
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote

MAX_HEAD = 1 << 20


class Request:
    __slots__ = ("method", "target", "path", "query", "query_list", "headers",
                 "body", "conn", "t", "version", "account", "record", "page",
                 "version_path")

    def __init__(self, method, target, version, headers, body, conn, t):
        self.method = method
        self.target = target
        self.version = version
        path, _, qs = target.partition("?")
        self.path = unquote(path)
        self.query_list = parse_qsl(qs, keep_blank_values=True)
        self.query = dict(self.query_list)
        self.headers = headers
        self.body = body
        self.conn = conn
        self.t = t
        self.account = None   # set by handlers: key for per-account stats
        self.record = None    # the recorder's entry for this request
        self.page = False     # set by handlers: this response is a list page
        self.version_path = None

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        """Parsed JSON body; raises ValueError when absent or invalid."""
        return json.loads(self.body.decode("utf-8"))

    def bearer(self):
        auth = self.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None

    def form(self):
        return dict(parse_qsl(self.text(), keep_blank_values=True))


class Response:
    __slots__ = ("status", "headers", "body", "close")

    def __init__(self, status=200, body=b"", headers=None,
                 content_type="text/plain; charset=utf-8"):
        self.status = status
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.body = body
        self.headers = dict(headers or {})
        if content_type and body is not None:
            self.headers.setdefault("Content-Type", content_type)
        self.close = False


def json_response(obj, status=200, headers=None):
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return Response(status, body, headers, "application/json;charset=utf-8")


class Drop:
    """Returned by a handler or fault to drop the connection unanswered."""

    def __init__(self, reset=False):
        self.reset = reset


def _reason(status):
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def iso_now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


class BadRequest(Exception):
    pass


async def _read_chunked(reader):
    parts = []
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass          # trailers
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class MockServer:
    """Owns the listening socket, the recorder and the fault rules.

    `app` must provide `async handle(req) -> Response | Drop`, and may provide
    `control(req)` for extra `/_mock/` endpoints (return None if unknown),
    `reset()` and `after_page(req, rule)` for page-triggered faults.
    """

    def __init__(self, app, recorder, faults, control, log_path=None):
        self.app = app
        self.recorder = recorder
        self.faults = faults
        self.control = control
        self.conn_serial = 0
        self.log = open(log_path, "a", buffering=1, encoding="utf-8") if log_path else None
        self.server = None

    def _log(self, req, status):
        if self.log:
            t = req.t
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)
            self.log.write("%s %s %s %s\n" % (stamp, req.method, req.path,
                                              "-" if status is None else status))

    async def dispatch(self, req):
        if req.path.startswith("/_mock/"):
            try:
                resp = await self.control.handle(req)
            except Exception as e:  # keep the server alive on control misuse
                resp = json_response({"error": "%s: %s" % (type(e).__name__, e)}, 400)
            self._log(req, resp.status)
            return resp
        rec = self.recorder.begin(req)
        try:
            resp = await self._dispatch_app(req)
        except Exception as e:
            import traceback
            traceback.print_exc()
            resp = json_response({"error": "mock internal error: %s" % e}, 500)
        status = None if isinstance(resp, Drop) else resp.status
        self.recorder.end(rec, req, status)
        self._log(req, status)
        return resp

    async def _dispatch_app(self, req):
        delay, rule = self.faults.check(req)
        if delay:
            await asyncio.sleep(delay / 1000.0)
        if rule is not None:
            if rule.get("close"):
                return Drop(reset=rule.get("close") == "reset")
            if "status" in rule:
                body = rule.get("body", "")
                headers = dict(rule.get("headers") or {})
                if isinstance(body, (dict, list)):
                    return json_response(body, int(rule["status"]), headers)
                return Response(int(rule["status"]), str(body), headers)
        resp = await self.app.handle(req)
        if rule is not None and rule.get("malformed") and not isinstance(resp, Drop):
            body = resp.body or b'{"results":[{"id":"1"}]}'
            resp = Response(200, body[:max(1, len(body) // 2)], resp.headers,
                            "application/json;charset=utf-8")
            resp.headers["Content-Type"] = "application/json;charset=utf-8"
        if req.page and not isinstance(resp, Drop) and resp.status < 300:
            for prule in self.faults.page_served(req):
                self.app.after_page(req, prule)
        return resp

    async def _connection(self, reader, writer):
        self.conn_serial += 1
        serial = self.conn_serial
        self.recorder.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        ConnectionError):
                    break
                t = time.time()
                try:
                    req = await self._parse(head, reader, writer, serial, t)
                except (BadRequest, ValueError, UnicodeDecodeError):
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                    break
                if req is None:
                    continue
                resp = await self.dispatch(req)
                if isinstance(resp, Drop):
                    if resp.reset:
                        writer.transport.abort()
                    break
                keep = self._keep_alive(req) and not resp.close
                writer.write(self._serialize(req, resp, keep))
                await writer.drain()
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    @staticmethod
    def _keep_alive(req):
        conn = req.headers.get("connection", "").lower()
        if req.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn

    async def _parse(self, head, reader, writer, serial, t):
        text = head.decode("latin-1").lstrip("\r\n")
        if not text.strip():
            return None
        lines = text.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise BadRequest(lines[0])
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            if not line:
                continue
            k, sep, v = line.partition(":")
            if not sep:
                raise BadRequest(line)
            k = k.strip().lower()
            v = v.strip()
            headers[k] = headers[k] + ", " + v if k in headers else v
        te = headers.get("transfer-encoding", "").lower()
        clen = headers.get("content-length")
        expects_body = "chunked" in te or (clen is not None and int(clen) > 0)
        if expects_body and headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in te:
            body = await _read_chunked(reader)
        elif clen is not None:
            n = int(clen)
            if n < 0:
                raise BadRequest("negative length")
            body = await reader.readexactly(n) if n else b""
        else:
            body = b""
        return Request(method, target, version, headers, body, serial, t)

    @staticmethod
    def _serialize(req, resp, keep):
        out = ["HTTP/1.1 %d %s\r\n" % (resp.status, _reason(resp.status))]
        for k, v in resp.headers.items():
            out.append("%s: %s\r\n" % (k, v))
        body = resp.body or b""
        out.append("Content-Length: %d\r\n" % len(body))
        if not keep:
            out.append("Connection: close\r\n")
        elif req.version == "HTTP/1.0":
            out.append("Connection: keep-alive\r\n")
        out.append("\r\n")
        head = "".join(out).encode("utf-8")
        if req.method == "HEAD" or resp.status in (204, 304):
            return head
        return head + body

    async def serve(self, port, port_file=None):
        self.server = await asyncio.start_server(
            self._connection, "127.0.0.1", port, limit=MAX_HEAD, backlog=1024)
        bound = self.server.sockets[0].getsockname()[1]
        if port_file:
            tmp = "%s.tmp.%d" % (port_file, os.getpid())
            with open(tmp, "w") as f:
                f.write("%d\n" % bound)
            os.replace(tmp, port_file)
        return bound


def common_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--port-file", help="write the bound port here once listening")
    p.add_argument("--log", help="append one line per request: time method path status")
    return p


def run(make_server, args):
    """Build the server inside the loop, listen, serve until SIGTERM/SIGINT."""

    async def main():
        server = make_server()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        port = await server.serve(args.port, args.port_file)
        print("listening on 127.0.0.1:%d" % port, flush=True)
        await stop.wait()
        server.server.close()
        if server.log:
            server.log.close()

    asyncio.run(main())
