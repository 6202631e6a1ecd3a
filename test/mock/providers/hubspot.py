"""HubSpot CRM v3 contacts API, as synchub's mock serves it.

GET  /crm/v3/objects/contacts           list (limit <= 100, after, properties, archived)
POST /crm/v3/objects/contacts/search    search (filters, sorts, limit <= 200, 10k cap, 5/s)
POST /crm/v3/objects/contacts/batch/upsert   (<= 100 inputs, idProperty email)
POST /oauth/v1/token                    refresh_token grant
"""

import bisect
import json

from mockhttp import json_response
from providers.base import BaseProvider
from providers.common import correlation_id, iso_z, now_ms, parse_time, valid_email
from ratelimit import SlidingWindow

BASE = "/crm/v3/objects/contacts"
DEFAULT_PROPS = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")
ALWAYS_PROPS = ("createdate", "hs_object_id", "lastmodifieddate")
READ_ONLY = ("hs_object_id", "lastmodifieddate", "createdate")
TIME_PROPS = ("lastmodifieddate", "createdate")
FIRST_ID = 501


def error(status, message, category, **extra):
    body = {"status": "error", "message": message, "correlationId": correlation_id(),
            "category": category}
    body.update(extra)
    return json_response(body, status)


class Provider(BaseProvider):
    # ---- store ------------------------------------------------------------
    def make_record(self, st, p):
        rid = str(FIRST_ID + len(st.ids))
        created, updated = iso_z(p["created"]), iso_z(p["updated"])
        rec = {"id": rid,
               "properties": {"createdate": created, "email": p["email"],
                              "firstname": p["first"], "lastname": p["last"],
                              "company": p["company"], "phone": p["phone"],
                              "lastmodifieddate": updated, "hs_object_id": rid},
               "createdAt": created, "updatedAt": updated, "archived": False}
        return rid, rec

    def is_live(self, st, rid):
        return not st.recs[rid]["archived"]

    def touch(self, st, rid, ms, fields):
        st.version += 1
        rec = st.recs[rid]
        rec["properties"].update(fields)
        rec["properties"]["lastmodifieddate"] = rec["updatedAt"] = iso_z(ms)

    def mark_deleted(self, st, rid, ms):
        st.version += 1
        rec = st.recs[rid]
        rec["archived"] = True
        rec["archivedAt"] = iso_z(ms)      # lastmodifieddate is left alone

    def export(self, st, rid, query):
        return st.recs[rid]

    # ---- auth and limits ----------------------------------------------------
    def _auth(self, req):
        acct = self.accounts.resolve(req.bearer())
        if acct is None:
            msg = ("Authentication credentials not found. This API supports OAuth 2.0 "
                   "authentication and you can find more details at "
                   "https://developers.hubspot.com/docs/methods/auth/oauth-overview")
            if req.bearer():
                msg = "The access token used to make this call is invalid or expired."
            return None, error(401, msg, "INVALID_AUTHENTICATION")
        req.account = acct.key
        return acct, None

    def _rate_headers(self, acct):
        h = {}
        if acct.limiter:
            h["X-HubSpot-RateLimit-Max"] = str(acct.limiter.limit)
            h["X-HubSpot-RateLimit-Remaining"] = str(acct.limiter.remaining())
            h["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(int(acct.limiter.seconds * 1000))
        if acct.daily_quota is not None:
            h["X-HubSpot-RateLimit-Daily"] = str(acct.daily_quota)
            h["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, acct.daily_quota - acct.used))
        return h

    def _too_many(self, acct, req, message, policy, headers, retry_s):
        self.throttled(acct, req)
        mode = acct.retry_after
        send = mode == "always" or (mode == "alternate" and acct.throttle_count % 2 == 1)
        if send:
            headers["Retry-After"] = str(retry_s)
        resp = json_response({"status": "error", "message": message, "errorType": "RATE_LIMIT",
                              "correlationId": correlation_id(), "policyName": policy}, 429)
        resp.headers.update(headers)
        return resp

    def _limit(self, acct, req, search):
        """None if the request may proceed, else the 429 response."""
        if search:
            lim = acct.extra.get("search_limiter")
            rate = float(self.config.get("search_rate") or 5)
            if lim is None or lim.limit != int(rate):
                lim = acct.extra["search_limiter"] = SlidingWindow(int(rate), 1.0)
            if not lim.allow():
                return self._too_many(acct, req, "You have reached your secondly limit.",
                                      "SECONDLY", {}, 1)
        headers = {} if search else self._rate_headers(acct)
        if acct.daily_quota is not None and acct.used >= acct.daily_quota:
            return self._too_many(acct, req, "You have reached your daily limit.", "DAILY",
                                  headers, 3600)
        if acct.limiter and not acct.limiter.allow():
            headers = {} if search else self._rate_headers(acct)
            return self._too_many(acct, req, "You have reached your ten_secondly_rolling limit.",
                                  "TEN_SECONDLY_ROLLING", headers, acct.limiter.retry_after())
        acct.used += 1
        return None

    # ---- routes ---------------------------------------------------------------
    async def handle(self, req):
        path, m = req.path.rstrip("/"), req.method
        if path == "/oauth/v1/token" and m == "POST":
            return self.oauth(req)
        if not path.startswith(BASE):
            return error(404, "Not found", "OBJECT_NOT_FOUND")
        acct, err = self._auth(req)
        if err:
            return err
        search = path == BASE + "/search"
        limited = self._limit(acct, req, search)
        if limited:
            return limited
        if path == BASE and m == "GET":
            resp = self.list(acct, req)
        elif search and m == "POST":
            resp = self.search(acct, req)
        elif path == BASE + "/batch/upsert" and m == "POST":
            resp = self.upsert(acct, req)
        elif path.startswith(BASE + "/") and m == "GET" and path.count("/") == 5:
            resp = self.get_one(acct, req, path.rsplit("/", 1)[1])
        else:
            resp = error(404, "Unknown endpoint %s %s" % (m, path), "OBJECT_NOT_FOUND")
        if not search:
            resp.headers.update(self._rate_headers(acct))
        return resp

    def oauth(self, req):
        acct, token = self.accounts.refresh(req.form())
        if acct is None:
            return json_response({"status": "BAD_REFRESH_TOKEN",
                                  "message": "missing or unknown refresh token",
                                  "correlationId": correlation_id()}, 400)
        return json_response({"token_type": "bearer", "refresh_token": acct.refresh_token,
                              "access_token": token,
                              "expires_in": int(acct.token_ttl or 1800)})

    @staticmethod
    def _props(requested):
        if not requested:
            return DEFAULT_PROPS
        props = list(requested)
        for p in ALWAYS_PROPS:
            if p not in props:
                props.append(p)
        return props

    @staticmethod
    def _view(rec, props):
        src = rec["properties"]
        out = {"id": rec["id"], "properties": {p: src.get(p) for p in props},
               "createdAt": rec["createdAt"], "updatedAt": rec["updatedAt"],
               "archived": rec["archived"]}
        if rec["archived"]:
            out["archivedAt"] = rec["archivedAt"]
        return out

    def _int_param(self, raw, default, cap, what):
        try:
            v = int(raw) if raw not in (None, "") else default
        except (TypeError, ValueError):
            raise ValueError("%s must be an integer" % what)
        if v < 1 or v > cap:
            raise ValueError("%s must be between 1 and %d, was %d" % (what, cap, v))
        return v

    def list(self, acct, req):
        st = acct.store
        try:
            limit = self._int_param(req.query.get("limit"), 10, self.page_cap(100), "limit")
            after = int(req.query.get("after") or 0)
        except ValueError as e:
            return error(400, str(e), "VALIDATION_ERROR")
        archived = req.query.get("archived", "false").lower() == "true"
        requested = []
        for k, v in req.query_list:
            if k == "properties":
                requested += [p for p in v.split(",") if p]
        props = self._props(requested)
        req.page = True
        results = []
        nxt = None
        # ids are increasing integers in creation order
        for pos in range(bisect.bisect_left(st.ids, after, key=int), len(st.ids)):
            rid = st.ids[pos]
            rec = st.recs[rid]
            if rec["archived"] != archived:
                continue
            if len(results) == limit:
                nxt = rid
                break
            results.append(self._view(rec, props))
        body = {"results": results}
        if nxt is not None:
            host = req.headers.get("host", "127.0.0.1")
            link = "http://%s%s?limit=%d&after=%s" % (host, BASE, limit, nxt)
            body["paging"] = {"next": {"after": nxt, "link": link}}
        return json_response(body)

    def get_one(self, acct, req, rid):
        rec = acct.store.recs.get(rid)
        archived = req.query.get("archived", "false").lower() == "true"
        if rec is None or rec["archived"] != archived:
            return error(404, "Object not found.  objectId are usually numeric.",
                         "OBJECT_NOT_FOUND")
        props = self._props([p for p in req.query.get("properties", "").split(",") if p])
        return json_response(self._view(rec, props))

    # ---- search -----------------------------------------------------------------
    @staticmethod
    def _value(st, rid, prop):
        if prop in TIME_PROPS:
            if prop == "lastmodifieddate":
                return st.mod[rid]
            return parse_time(st.recs[rid]["properties"]["createdate"])
        if prop == "hs_object_id":
            return int(rid)
        return st.recs[rid]["properties"].get(prop)

    @staticmethod
    def _coerce(prop, v):
        if prop in TIME_PROPS:
            return parse_time(v)
        if prop == "hs_object_id":
            return int(v)
        return v if v is None else str(v)

    def _filter_fn(self, st, f):
        prop, op = f.get("propertyName"), str(f.get("operator", "EQ")).upper()
        if not prop:
            raise ValueError("filter without propertyName")
        if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            want = op == "HAS_PROPERTY"
            return lambda rid: (self._value(st, rid, prop) not in (None, "")) == want
        if op in ("IN", "NOT_IN"):
            vals = {self._coerce(prop, v) for v in f.get("values", [])}
            neg = op == "NOT_IN"
            return lambda rid: (self._value(st, rid, prop) in vals) != neg
        if op == "BETWEEN":
            lo, hi = self._coerce(prop, f.get("value")), self._coerce(prop, f.get("highValue"))
            return lambda rid: (lambda x: x is not None and lo <= x <= hi)(self._value(st, rid, prop))
        if "value" not in f:
            raise ValueError("filter on %s needs a value" % prop)
        val = self._coerce(prop, f["value"])
        cmp = {"EQ": lambda x: x == val, "NEQ": lambda x: x != val,
               "GT": lambda x: x is not None and x > val, "GTE": lambda x: x is not None and x >= val,
               "LT": lambda x: x is not None and x < val, "LTE": lambda x: x is not None and x <= val,
               "CONTAINS_TOKEN": lambda x: x is not None and str(val).strip("*").lower() in str(x).lower(),
               }.get(op)
        if cmp is None:
            raise ValueError("unsupported operator %s" % op)
        return lambda rid: cmp(self._value(st, rid, prop))

    def search(self, acct, req):
        st = acct.store
        try:
            body = req.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            limit = self._int_param(body.get("limit"), 10, self.page_cap(200), "limit")
            after = int(body.get("after") or 0)
            groups = body.get("filterGroups") or []
            if len(groups) > 5 or sum(len(g.get("filters", [])) for g in groups) > 18 \
                    or any(len(g.get("filters", [])) > 6 for g in groups):
                raise ValueError("too many filters: at most 5 filterGroups, 6 filters each, 18 total")
            preds = [[self._filter_fn(st, f) for f in g.get("filters", [])] for g in groups]
            sorts = body.get("sorts") or []
            if len(sorts) > 1:
                raise ValueError("only one sort is supported")
        except (ValueError, TypeError, AttributeError) as e:
            return error(400, "Invalid input JSON on line 1: %s" % e, "VALIDATION_ERROR")
        cap = int(self.config.get("search_cap") or 10000)
        if after + limit > cap:
            return error(400, "There was a problem with the request. Paging past %d results "
                         "is not supported for search requests (after=%d, limit=%d)."
                         % (cap, after, limit), "VALIDATION_ERROR")
        ckey = (st.version, json.dumps([groups, sorts], sort_keys=True))
        ids = st.cache.get(ckey)
        if ids is None:
            try:
                ids = self._matches(st, preds, sorts)
            except (TypeError, ValueError) as e:
                return error(400, "Invalid filter value: %s" % e, "VALIDATION_ERROR")
            if len(st.cache) > 16:
                st.cache.clear()
            st.cache[ckey] = ids
        props = self._props(body.get("properties") or [])
        req.page = True
        page = ids[after:after + limit]
        out = {"total": len(ids), "results": [self._view(st.recs[r], props) for r in page]}
        if after + limit < len(ids):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return json_response(out)

    def _matches(self, st, preds, sorts):
        """Ids of live records matching the filter groups, in the requested order."""
        ids = [rid for rid in st.ids if not st.recs[rid]["archived"]
               and (not preds or any(all(p(rid) for p in g) for g in preds))]
        if sorts:
            s = sorts[0]
            prop = s.get("propertyName") if isinstance(s, dict) else str(s).lstrip("-")
            desc = (isinstance(s, dict) and str(s.get("direction", "")).upper() == "DESCENDING") \
                or (isinstance(s, str) and s.startswith("-"))

            def key(rid):
                v = self._value(st, rid, prop)
                return (v is None, v if v is not None else 0, int(rid))
            ids.sort(key=key, reverse=desc)
        return ids

    # ---- batch upsert --------------------------------------------------------------
    def upsert(self, acct, req):
        st = acct.store
        try:
            inputs = req.json().get("inputs")
            if not isinstance(inputs, list) or not inputs:
                raise ValueError("inputs must be a non-empty array")
        except (ValueError, AttributeError) as e:
            return error(400, "Invalid input JSON on line 1: %s" % e, "VALIDATION_ERROR")
        if len(inputs) > 100:
            return error(400, "Batch input limit exceeded: %d inputs, at most 100"
                         % len(inputs), "VALIDATION_ERROR")
        seen, dups = set(), []
        for inp in inputs:
            k = str((inp or {}).get("id", "")).lower()
            if k in seen:
                dups.append(k)
            seen.add(k)
        if dups:
            return error(400, "Duplicate IDs found in batch input: %s" % sorted(set(dups)),
                         "VALIDATION_ERROR")
        by_email = {st.recs[r]["properties"]["email"].lower(): r for r in st.ids
                    if not st.recs[r]["archived"] and st.recs[r]["properties"]["email"]}
        for inp in inputs:   # a conflicting email change fails the whole batch
            props = (inp or {}).get("properties") or {}
            key = str(inp.get("id", "")).lower()
            new = str(props.get("email") or key).lower()
            if new != key and new in by_email and by_email.get(key) != by_email[new]:
                return error(409, "Contact already exists. Existing ID: %s" % by_email[new],
                             "CONFLICT")
        started = iso_z(now_ms())
        results, errors = [], []
        for inp in inputs:
            err = self._validate(inp)
            if err:
                errors.append(err)
                continue
            results.append(self._apply(st, inp, by_email))
        body = {"status": "COMPLETE", "results": results, "startedAt": started,
                "completedAt": iso_z(now_ms())}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return json_response(body, 207)
        return json_response(body)

    @staticmethod
    def _validate(inp):
        ident = inp.get("id") if isinstance(inp, dict) else None
        props = inp.get("properties") if isinstance(inp, dict) else None

        def fail(msg, code, prop):
            return {"status": "error", "category": "VALIDATION_ERROR",
                    "message": "Property values were not valid: [%s]" % msg,
                    "context": {"ids": [str(ident)]},
                    "errors": [{"message": msg, "code": code, "in": prop,
                                "context": {"propertyName": [prop]}}]}
        if not isinstance(inp, dict) or not isinstance(props, dict):
            return fail("input needs id and properties", "MISSING_REQUIRED_PROPERTY", "properties")
        if inp.get("idProperty", "email") != "email":
            return fail("idProperty must be email", "INVALID_ID_PROPERTY", "idProperty")
        for k, v in props.items():
            if k in READ_ONLY:
                return fail("%s is a read only property" % k, "READ_ONLY_VALUE", k)
            if isinstance(v, (dict, list)):
                return fail("%s must be a scalar" % k, "INVALID_OPTION", k)
        for v, where in ((ident, "id"), (props.get("email", ident), "email")):
            if not valid_email(v):
                return fail("Email address %s is invalid" % v, "INVALID_EMAIL", where)
        return None

    def _apply(self, st, inp, by_email):
        ms = now_ms()
        key = str(inp["id"]).lower()
        props = {k: (v if v is None else str(v)) for k, v in inp["properties"].items()}
        rid = by_email.get(key)
        new = rid is None
        if new:
            rid = str(FIRST_ID + len(st.ids))
            when = iso_z(ms)
            rec = {"id": rid, "properties": {"createdate": when, "email": inp["id"],
                                             "firstname": None, "lastname": None,
                                             "company": None, "phone": None,
                                             "lastmodifieddate": when, "hs_object_id": rid},
                   "createdAt": when, "updatedAt": when, "archived": False}
            st.ids.append(rid)
            st.recs[rid] = rec
            by_email[key] = rid
        self.touch(st, rid, ms, props)
        st.mod[rid] = ms
        rec = st.recs[rid]
        return {"id": rid, "properties": dict(rec["properties"]), "createdAt": rec["createdAt"],
                "updatedAt": rec["updatedAt"], "archived": False, "new": new}
