"""Fault rules for synchub's mock servers.

A rule is a JSON object added with `POST /_mock/faults`:
  match (path prefix), method, count (default 1, -1 = forever), after (skip
  the first K matching requests) and one action:
  status (+ body, headers) | delay_ms | malformed | close (true or "reset") |
  mutate_after_page (CRM servers: after serving list page k, update `count`
  records).
Rules are checked in the order added. Every matching rule counts the request;
delays add up; the first status/malformed/close rule that fires decides the
answer and later rules do not see the request.
"""

TERMINAL = ("status", "malformed", "close")


class Faults:
    def __init__(self):
        self.rules = []

    def reset(self):
        self.rules = []

    def add(self, rule):
        if not isinstance(rule, dict):
            raise ValueError("a fault rule is a JSON object")
        actions = [k for k in TERMINAL + ("delay_ms", "mutate_after_page") if k in rule]
        if len(actions) != 1:
            raise ValueError("a fault rule needs exactly one of status, delay_ms, "
                             "malformed, close, mutate_after_page")
        r = dict(rule)
        r["_seen"] = 0
        r["_fired"] = 0
        if "mutate_after_page" in r:
            r["_pages"] = 0
        self.rules.append(r)
        return len(self.rules) - 1

    @staticmethod
    def _matches(rule, req):
        if "match" in rule and not req.path.startswith(rule["match"]):
            return False
        if "method" in rule and rule["method"].upper() != req.method:
            return False
        return True

    def _fire(self, rule):
        rule["_seen"] += 1
        if rule["_seen"] <= int(rule.get("after", 0)):
            return False
        count = int(rule.get("count", 1))
        if count != -1 and rule["_fired"] >= count:
            return False
        rule["_fired"] += 1
        return True

    def check(self, req):
        """-> (total delay in ms, terminal rule or None) for this request."""
        delay = 0
        for rule in self.rules:
            if "mutate_after_page" in rule or not self._matches(rule, req):
                continue
            if not self._fire(rule):
                continue
            if "delay_ms" in rule:
                delay += float(rule["delay_ms"])
            else:
                return delay, rule
        return delay, None

    def page_served(self, req):
        """Rules whose page-k trigger fires now (each fires once)."""
        due = []
        for rule in self.rules:
            if "mutate_after_page" not in rule or not self._matches(rule, req):
                continue
            if rule["_fired"]:
                continue
            rule["_pages"] += 1
            if rule["_pages"] == int(rule["mutate_after_page"]):
                rule["_fired"] = 1
                due.append(rule)
        return due

    def public(self):
        return [{k: v for k, v in r.items()} for r in self.rules]
