"""The `/_mock/` control API common to synchub's mock servers."""

from mockhttp import json_response


class Control:
    """Common endpoints; `app.control(req)` may answer extra ones."""

    def __init__(self, app, recorder, faults):
        self.app = app
        self.recorder = recorder
        self.faults = faults

    async def handle(self, req):
        route = (req.method, req.path)
        if route == ("GET", "/_mock/health"):
            return json_response({"ok": True})
        if route == ("GET", "/_mock/requests"):
            return json_response(self.recorder.requests(req.query))
        if route == ("GET", "/_mock/stats"):
            stats = self.recorder.stats(req.query)
            extra = getattr(self.app, "stats", None)
            if extra:
                stats.update(extra())
            return json_response(stats)
        if route == ("POST", "/_mock/reset"):
            self.recorder.reset()
            self.faults.reset()
            if hasattr(self.app, "reset"):
                self.app.reset()
            return json_response({"ok": True})
        if route == ("POST", "/_mock/faults"):
            body = req.json()
            rules = body if isinstance(body, list) else [body]
            ids = [self.faults.add(r) for r in rules]
            return json_response({"ok": True, "ids": ids})
        if route == ("GET", "/_mock/faults"):
            return json_response(self.faults.public())
        if route == ("DELETE", "/_mock/faults"):
            self.faults.reset()
            return json_response({"ok": True})
        extra = getattr(self.app, "control", None)
        if extra:
            resp = extra(req)
            if resp is not None:
                return resp
        return json_response({"error": "unknown control endpoint %s %s" % route}, 404)
