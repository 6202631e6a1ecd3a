#!/usr/bin/env python3
"""synchub's CRM mock: HubSpot, Salesforce or Pipedrive REST APIs.

  crm.py --provider hubspot|salesforce|pipedrive [--contacts N] [--seed S]
         [--page-limit-cap N] [--search-cap N] [--port N] [--port-file F] [--log F]

One process serves one provider. Accounts (token -> contact store) are created
at start (`--contacts N` makes account "test-token") or with
`POST /_mock/accounts`. The provider modules in providers/ implement the API;
this file holds the CLI and the CRM control endpoints (README.md).
"""

import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from accounts import Accounts  # noqa: E402
from control import Control  # noqa: E402
from datagen import people  # noqa: E402
from faults import Faults  # noqa: E402
from mockhttp import MockServer, common_args, json_response, run  # noqa: E402
from providers.common import now_ms  # noqa: E402
from recorder import Recorder  # noqa: E402

PROVIDERS = ("hubspot", "salesforce", "pipedrive")


class CrmApp:
    def __init__(self, provider_name, recorder, config):
        self.recorder = recorder
        self.accounts = Accounts()
        self.config = config
        mod = importlib.import_module("providers." + provider_name)
        self.provider = mod.Provider(self.accounts, recorder, config)

    # -- data ---------------------------------------------------------------
    def create_account(self, cfg):
        if not cfg.get("token"):
            raise ValueError("token is required")
        if cfg.get("rate_limit") and "per_seconds" not in cfg["rate_limit"]:
            cfg = dict(cfg, rate_limit=dict(cfg["rate_limit"],
                                            per_seconds=self.provider.DEFAULT_WINDOW))
        acct = self.accounts.create(cfg)
        n = int(cfg.get("contacts", 0))
        seed = int(cfg.get("seed", 1))
        base = (now_ms() // 60000) * 60000
        self.provider.new_store(acct, people(n, seed, base))
        return acct

    # -- HTTP ---------------------------------------------------------------
    async def handle(self, req):
        return await self.provider.handle(req)

    def after_page(self, req, rule):
        acct = self.accounts.get(req.account) if req.account else None
        if acct is not None:
            self.provider.update(acct, rule.get("ids"), rule.get("count", 1),
                                 rule.get("fields"))

    def reset(self):
        for acct in self.accounts.by_key.values():
            acct.used = 0
            acct.throttle_count = 0
            if acct.limiter:
                acct.limiter.accepted.clear()
            self.provider.reset_counters(acct)

    def stats(self):
        return {"usage": {k: {"used": a.used, "daily_quota": a.daily_quota,
                              "throttled": a.throttle_count}
                          for k, a in self.accounts.by_key.items()}}

    def _acct(self, body_or_query):
        token = body_or_query.get("token", "test-token")
        acct = self.accounts.account_of_token(token)
        if acct is None:
            raise ValueError("unknown account token")
        return acct

    def control(self, req):
        p, m = req.path, req.method
        if p == "/_mock/accounts" and m == "POST":
            body = req.json()
            for cfg in (body if isinstance(body, list) else [body]):
                self.create_account(cfg)
            return json_response({"ok": True})
        if p == "/_mock/accounts" and m == "GET":
            return json_response({k: {"contacts": len(a.store.ids), "used": a.used,
                                      "refresh_token": a.refresh_token}
                                  for k, a in self.accounts.by_key.items()})
        if p == "/_mock/contacts" and m == "GET":
            acct = self._acct(req.query)
            return json_response(self.provider.contacts(acct, req.query))
        if p == "/_mock/expire" and m == "POST":
            ok = self.accounts.expire(req.json().get("token"))
            return json_response({"ok": ok}, 200 if ok else 404)
        if p == "/_mock/config" and m == "POST":
            self.config.update(req.json())
            return json_response(self.config)
        if p == "/_mock/config" and m == "GET":
            return json_response(self.config)
        if m == "POST" and p in ("/_mock/update", "/_mock/archive", "/_mock/create"):
            body = req.json()
            acct = self._acct(body)
            if p == "/_mock/update":
                ids = self.provider.update(acct, body.get("ids"), body.get("count"),
                                           body.get("fields"))
            elif p == "/_mock/archive":
                ids = self.provider.archive(acct, body.get("ids"), body.get("count"))
            else:
                ids = self.provider.create(acct, int(body.get("count", 1)))
            return json_response({"ok": True, "ids": ids})
        return None


def main():
    ap = common_args("synchub CRM mock")
    ap.add_argument("--provider", required=True, choices=PROVIDERS)
    ap.add_argument("--contacts", type=int, default=None,
                    help='create account "test-token" with N contacts')
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--page-limit-cap", type=int, default=None,
                    help="lower the provider's maximum page size")
    ap.add_argument("--search-cap", type=int, default=10000,
                    help="HubSpot: results reachable per search query")
    ap.add_argument("--search-rate", type=float, default=5,
                    help="HubSpot: search requests per second per account")
    args = ap.parse_args()
    config = {"page_limit_cap": args.page_limit_cap, "search_cap": args.search_cap,
              "search_rate": args.search_rate}

    def make():
        recorder = Recorder()
        faults = Faults()
        app = CrmApp(args.provider, recorder, config)
        if args.contacts is not None:
            app.create_account({"token": "test-token", "contacts": args.contacts,
                                "seed": args.seed, "refresh_token": "test-refresh"})
        return MockServer(app, recorder, faults, Control(app, recorder, faults), args.log)

    run(make, args)


if __name__ == "__main__":
    main()
