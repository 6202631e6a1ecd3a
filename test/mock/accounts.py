"""Accounts of the CRM mocks: tokens, OAuth refresh, quotas, rate limits.

Each account owns a contact store (kept by the provider module). Tokens map
to accounts; `expire` invalidates a token; the refresh token mints new
access tokens for the same account.
"""

import secrets
import time

from ratelimit import SlidingWindow


class Account:
    def __init__(self, key, cfg):
        self.key = key
        self.cfg = cfg
        self.refresh_token = cfg.get("refresh_token")
        self.client_id = cfg.get("client_id")
        self.client_secret = cfg.get("client_secret")
        self.token_ttl = cfg.get("token_ttl")
        rl = cfg.get("rate_limit")
        self.limiter = SlidingWindow(rl["requests"], rl.get("per_seconds", 10)) if rl else None
        self.daily_quota = cfg.get("daily_quota")
        self.used = int(cfg.get("used", 0))   # requests counted against the daily quota
        self.retry_after = cfg.get("retry_after", "alternate")
        self.throttle_count = 0
        self.extra = {}                        # provider-specific state
        self.store = None                      # provider-specific contact store


class Accounts:
    def __init__(self):
        self.by_key = {}
        self.tokens = {}       # token -> [account key, expires_at or None, valid]

    def create(self, cfg):
        key = cfg["token"]
        old = self.by_key.get(key)
        if old is not None:
            self.tokens = {t: v for t, v in self.tokens.items() if v[0] != key}
        acct = Account(key, cfg)
        self.by_key[key] = acct
        exp = time.time() + acct.token_ttl if acct.token_ttl else None
        self.tokens[key] = [key, exp, True]
        return acct

    def get(self, key):
        return self.by_key.get(key)

    def resolve(self, token):
        """-> Account for a currently valid token, else None."""
        if not token:
            return None
        ent = self.tokens.get(token)
        if ent is None or not ent[2]:
            return None
        if ent[1] is not None and time.time() >= ent[1]:
            ent[2] = False
            return None
        return self.by_key.get(ent[0])

    def account_of_token(self, token):
        """Account for any token ever issued (valid or not), for control calls."""
        ent = self.tokens.get(token)
        return self.by_key.get(ent[0]) if ent else self.by_key.get(token)

    def expire(self, token):
        ent = self.tokens.get(token)
        if ent is None:
            return False
        ent[2] = False
        return True

    def refresh(self, form):
        """OAuth refresh_token grant -> (account, new access token) or (None, reason)."""
        if form.get("grant_type") != "refresh_token":
            return None, "unsupported_grant_type"
        rt = form.get("refresh_token")
        for acct in self.by_key.values():
            if acct.refresh_token and rt == acct.refresh_token:
                if acct.client_id and form.get("client_id") != acct.client_id:
                    return None, "invalid_client"
                if acct.client_secret and form.get("client_secret") != acct.client_secret:
                    return None, "invalid_client"
                token = "%s-%s" % (acct.key.split("-")[0][:8], secrets.token_hex(12))
                exp = time.time() + acct.token_ttl if acct.token_ttl else None
                self.tokens[token] = [acct.key, exp, True]
                return acct, token
        return None, "invalid_grant"
