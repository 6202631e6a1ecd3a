"""Request log and load statistics for synchub's mock servers."""

import time

DEFAULT_WINDOWS = (1, 2, 10)


def max_in_window(times, window):
    """Largest number of timestamps inside any half-open window of `window` s."""
    best = 0
    j = 0
    for i, t in enumerate(times):
        while t - times[j] >= window:
            j += 1
        if i - j + 1 > best:
            best = i - j + 1
    return best


class Recorder:
    def __init__(self):
        self.reset()

    def reset(self):
        self.entries = []
        self.times = []            # arrival times, in arrival order
        self.account_times = {}    # account key -> arrival times
        self.throttled = {}        # account key -> number of 429/403-limit answers
        self.connections = 0
        self.in_flight = 0
        self.max_concurrent = 0

    def begin(self, req):
        rec = {"t": req.t, "method": req.method, "path": req.path,
               "query": req.query, "headers": req.headers, "body": req.text(),
               "status": None, "conn": req.conn}
        req.record = rec
        self.entries.append(rec)
        self.times.append(req.t)
        self.in_flight += 1
        if self.in_flight > self.max_concurrent:
            self.max_concurrent = self.in_flight
        return rec

    def end(self, rec, req, status):
        self.in_flight -= 1
        rec["status"] = status
        if req.account is not None:
            rec["account"] = req.account
            self.account_times.setdefault(req.account, []).append(req.t)

    def note_throttled(self, account):
        self.throttled[account] = self.throttled.get(account, 0) + 1

    def requests(self, query):
        out = self.entries
        prefix = query.get("path")
        if prefix:
            out = [r for r in out if r["path"].startswith(prefix)]
        if "since" in query:
            since = float(query["since"])
            out = [r for r in out if r["t"] >= since]
        return out

    def stats(self, query):
        windows = DEFAULT_WINDOWS
        if query.get("windows"):
            windows = tuple(float(w) for w in query["windows"].split(","))

        def key(w):
            return ("%g" % w)

        accounts = {}
        for acct, times in self.account_times.items():
            ts = sorted(times)
            accounts[acct] = {
                "requests": len(ts),
                "throttled": self.throttled.get(acct, 0),
                "max_in_window": {key(w): max_in_window(ts, w) for w in windows},
            }
        return {
            "requests": len(self.entries),
            "connections": self.connections,
            "max_in_window": {key(w): max_in_window(self.times, w) for w in windows},
            "max_concurrent": self.max_concurrent,
            "in_flight": self.in_flight,
            "accounts": accounts,
            "now": time.time(),
        }
