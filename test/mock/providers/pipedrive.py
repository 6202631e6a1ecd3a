"""Pipedrive persons API as synchub's mock serves it.

GET   /v1/persons?start&limit (limit capped at 500)   active persons, by id
GET   /v1/persons/{id}, GET /v1/personFields
GET   /api/v2/persons?limit&cursor&updated_since&updated_until&sort_by&sort_direction
GET   /api/v2/persons/{id}
POST  /api/v2/persons, PATCH /api/v2/persons/{id}     one record a call
Auth: api_token query parameter, x-api-token header or Bearer token.
Deleted persons are left out of both lists (v1 and v2).
"""

import base64
import bisect
import hashlib
import json

from mockhttp import json_response
from providers.base import BaseProvider
from providers.common import iso_sec, now_ms, parse_time, space_sec

CUSTOM = (("lead_source", "Lead source", "varchar"), ("score", "Score", "double"))
SOURCES = ["Web", "Referral", "Event", "Partner", None]
OWNER = {"id": 1, "name": "Mock Owner", "email": "owner@example.com", "has_pic": 0,
         "pic_hash": None, "active_flag": True, "value": 1}


def fail(status, error, code=None, **extra):
    body = {"success": False, "error": error}
    if code:
        body["code"] = code
    body.update(extra)
    return json_response(body, status)


def bad_request(msg):
    return fail(400, "Validation failed: " + msg, "ERR_SCHEMA_VALIDATION_FAILED",
                error_info="Please check developers.pipedrive.com for more information "
                           "about Pipedrive API.", data=None, additional_data=None)


def custom_keys(seed):
    return {name: hashlib.sha1(("%s:%s" % (seed, name)).encode()).hexdigest()
            for name, _, _ in CUSTOM}


def encode_cursor(key):
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(c):
    return json.loads(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))


class Provider(BaseProvider):
    DEFAULT_WINDOW = 2

    @staticmethod
    def stamp(ms):
        return ms - ms % 1000            # Pipedrive keeps whole seconds

    # ---- store ------------------------------------------------------------
    def make_record(self, st, p):
        rid = len(st.ids) + 1
        orgs = st.__dict__.setdefault("orgs", {})
        keys = st.__dict__.get("custom_keys") or st.__dict__.setdefault("custom_keys", custom_keys(st.seed))
        org_id = orgs.setdefault(p["company"], len(orgs) + 1) if p["company"] else None
        rec = {"id": rid, "first_name": p["first"], "last_name": p["last"],
               "name": " ".join(x for x in (p["first"], p["last"]) if x),
               "emails": [{"value": p["email"], "primary": True, "label": "work"}] if p["email"] else [],
               "phones": [{"value": p["phone"], "primary": True, "label": "work"}] if p["phone"] else [],
               "org_id": org_id, "org_name": p["company"],
               "add_time": self.stamp(p["created"]), "update_time": self.stamp(p["updated"]),
               "delete_time": None, "active_flag": True,
               "custom_fields": {keys["lead_source"]: SOURCES[rid % len(SOURCES)],
                                 keys["score"]: (rid * 37) % 100 if rid % 4 else None}}
        return rid, rec

    def is_live(self, st, rid):
        return st.recs[rid]["active_flag"]

    def touch(self, st, rid, ms, fields):
        st.version += 1
        rec = st.recs[rid]
        for k, v in fields.items():
            if k == "custom_fields":
                rec["custom_fields"].update(v)
            elif k in ("email", "emails"):
                rec["emails"] = v if isinstance(v, list) else [{"value": v, "primary": True, "label": "work"}]
            elif k in ("phone", "phones"):
                rec["phones"] = v if isinstance(v, list) else [{"value": v, "primary": True, "label": "work"}]
            else:
                rec[k] = v
        if "name" in fields and not ({"first_name", "last_name"} & set(fields)):
            first, _, last = str(fields["name"]).partition(" ")
            rec["first_name"], rec["last_name"] = first, last or None
        elif {"first_name", "last_name"} & set(fields) and "name" not in fields:
            rec["name"] = " ".join(x for x in (rec["first_name"], rec["last_name"]) if x)
        rec["update_time"] = ms

    def mark_deleted(self, st, rid, ms):
        st.version += 1
        rec = st.recs[rid]
        rec["active_flag"] = False
        rec["delete_time"] = ms

    def export(self, st, rid, query):
        rec = st.recs[rid]
        if query.get("format") == "v2":
            out = self.v2(st, rec)
            out["is_deleted"] = not rec["active_flag"]
            return out
        return self.v1(st, rec)

    @staticmethod
    def v1(st, rec):
        org = None
        if rec["org_id"] is not None:
            org = {"name": rec["org_name"], "owner_id": 1, "address": None,
                   "active_flag": True, "cc_email": None, "value": rec["org_id"]}
        out = {"id": rec["id"], "company_id": 1, "owner_id": dict(OWNER), "org_id": org,
               "name": rec["name"], "first_name": rec["first_name"], "last_name": rec["last_name"],
               "email": rec["emails"] or [{"value": "", "primary": True}],
               "phone": rec["phones"] or [{"value": "", "primary": True}],
               "first_char": (rec["name"] or "?")[0].lower(),
               "add_time": space_sec(rec["add_time"]), "update_time": space_sec(rec["update_time"]),
               "delete_time": space_sec(rec["delete_time"]) if rec["delete_time"] else None,
               "visible_to": "3", "active_flag": rec["active_flag"], "label": None,
               "org_name": rec["org_name"], "owner_name": OWNER["name"], "cc_email": "mock@pipedrivemail.com"}
        out.update(rec["custom_fields"])
        return out

    @staticmethod
    def v2(st, rec):
        return {"id": rec["id"], "name": rec["name"], "first_name": rec["first_name"],
                "last_name": rec["last_name"], "owner_id": 1, "org_id": rec["org_id"],
                "add_time": iso_sec(rec["add_time"]), "update_time": iso_sec(rec["update_time"]),
                "emails": rec["emails"], "phones": rec["phones"], "is_deleted": False,
                "visible_to": 3, "label_ids": [], "custom_fields": dict(rec["custom_fields"])}

    # ---- auth and limits ----------------------------------------------------
    def _token(self, req):
        return req.query.get("api_token") or req.headers.get("x-api-token") or req.bearer()

    def _rate_headers(self, acct):
        if not acct.limiter:
            return {}
        lim = acct.limiter
        return {"x-ratelimit-limit": str(lim.limit), "x-ratelimit-remaining": str(lim.remaining()),
                "x-ratelimit-reset": str(lim.retry_after())}

    async def handle(self, req):
        acct = self.accounts.resolve(self._token(req))
        if acct is None:
            return fail(401, "unauthorized access", errorCode=401,
                        error_info="Please check developers.pipedrive.com for more information "
                                   "about Pipedrive API.")
        req.account = acct.key
        over = (acct.daily_quota is not None and acct.used >= acct.daily_quota) or \
            (acct.limiter is not None and not acct.limiter.allow())
        if over:
            self.throttled(acct, req)
            resp = fail(429, "Request over limit")
        else:
            acct.used += 1
            resp = self.route(acct, req)
        resp.headers.update(self._rate_headers(acct))
        return resp

    def route(self, acct, req):
        parts = req.path.rstrip("/").split("/")
        m = req.method
        if parts[:3] == ["", "v1", "persons"]:
            if len(parts) == 3 and m == "GET":
                return self.list_v1(acct, req)
            if len(parts) == 4 and m == "GET":
                return self.get_one(acct, parts[3], v1=True)
        if parts[:3] == ["", "v1", "personFields"] and m == "GET":
            return self.person_fields(acct)
        if parts[:4] == ["", "api", "v2", "persons"]:
            if len(parts) == 4 and m == "GET":
                return self.list_v2(acct, req)
            if len(parts) == 4 and m == "POST":
                return self.write(acct, req, None)
            if len(parts) == 5 and m == "GET":
                return self.get_one(acct, parts[4], v1=False)
            if len(parts) == 5 and m == "PATCH":
                return self.write(acct, req, parts[4])
        return fail(404, "Unknown method .", "ERR_NOT_FOUND")

    # ---- reads -------------------------------------------------------------------
    def list_v1(self, acct, req):
        st = acct.store
        try:
            start = int(req.query.get("start", 0))
            limit = int(req.query.get("limit", 100))
        except ValueError:
            return fail(400, "start and limit must be integers")
        limit = max(1, min(limit, self.page_cap(500)))
        live = [r for r in st.ids if st.recs[r]["active_flag"]]
        sort = req.query.get("sort", "")
        if sort:
            field, _, direction = sort.partition(" ")
            if field not in ("id", "update_time", "add_time"):
                return fail(400, "Invalid sort field")
            live.sort(key=lambda r: (st.recs[r][field], r), reverse=direction.upper() == "DESC")
        chunk = live[start:start + limit]
        more = start + limit < len(live)
        pag = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pag["next_start"] = start + limit
        req.page = True
        return json_response({"success": True,
                              "data": [self.v1(st, st.recs[r]) for r in chunk] or None,
                              "additional_data": {"pagination": pag}})

    def list_v2(self, acct, req):
        st = acct.store
        q = req.query
        try:
            limit = int(q.get("limit", 100))
            if limit < 1 or limit > self.page_cap(500):
                return bad_request("limit: Number must be less than or equal to %d"
                                   % self.page_cap(500))
            since = parse_time(q["updated_since"]) if q.get("updated_since") else None
            until = parse_time(q["updated_until"]) if q.get("updated_until") else None
            cursor = decode_cursor(q["cursor"]) if q.get("cursor") else None
            if cursor is not None and not (isinstance(cursor, list) and cursor and
                                           all(isinstance(x, int) for x in cursor)):
                raise ValueError("bad cursor")
        except (ValueError, KeyError, TypeError):
            return bad_request("invalid limit, cursor or timestamp")
        sort_by = q.get("sort_by", "id")
        if sort_by not in ("id", "update_time", "add_time"):
            return bad_request("sort_by: Invalid enum value. Expected 'id' | 'update_time' | 'add_time'")
        desc = q.get("sort_direction", "asc").lower() == "desc"

        def key(r):
            rec = st.recs[r]
            return [r] if sort_by == "id" else [rec[sort_by], r]
        ckey = ("v2", sort_by, st.version)
        order = st.cache.get(ckey)
        if order is None:          # live rows sorted ascending, with their keys
            rows = sorted((r for r in st.ids if st.recs[r]["active_flag"]), key=key)
            if len(st.cache) > 16:
                st.cache.clear()
            order = st.cache[ckey] = (rows, [key(r) for r in rows])
        rows, keys = order
        if desc:
            end = bisect.bisect_left(keys, cursor) if cursor is not None else len(rows)
            scan = range(end - 1, -1, -1)
        else:
            begin = bisect.bisect_right(keys, cursor) if cursor is not None else 0
            scan = range(begin, len(rows))
        chunk, more = [], False
        for i in scan:
            ut = st.recs[rows[i]]["update_time"]
            if (since is not None and ut < since) or (until is not None and ut >= until):
                continue
            if len(chunk) == limit:
                more = True
                break
            chunk.append(rows[i])
        nxt = encode_cursor(key(chunk[-1])) if more else None
        req.page = True
        return json_response({"success": True, "data": [self.v2(st, st.recs[r]) for r in chunk],
                              "additional_data": {"next_cursor": nxt}})

    def get_one(self, acct, rid, v1):
        st = acct.store
        rec = st.recs.get(int(rid)) if rid.isdigit() else None
        if rec is None or not rec["active_flag"]:
            return fail(404, "Person not found", "ERR_NOT_FOUND" if not v1 else None)
        return json_response({"success": True, "data": self.v1(st, rec) if v1 else self.v2(st, rec)})

    def person_fields(self, acct):
        st = acct.store
        keys = st.__dict__.setdefault("custom_keys", custom_keys(st.seed))
        std = [("name", "Name", "varchar"), ("first_name", "First name", "varchar"),
               ("last_name", "Last name", "varchar"), ("email", "Email", "varchar"),
               ("phone", "Phone", "phone"), ("org_id", "Organization", "org"),
               ("update_time", "Update time", "date"), ("add_time", "Person created", "date")]
        data = [{"id": i + 1, "key": k, "name": n, "field_type": t, "edit_flag": False}
                for i, (k, n, t) in enumerate(std)]
        data += [{"id": 100 + i, "key": keys[k], "name": n, "field_type": t, "edit_flag": True}
                 for i, (k, n, t) in enumerate(CUSTOM)]
        return json_response({"success": True, "data": data,
                              "additional_data": {"pagination": {"start": 0, "limit": 500,
                                                                 "more_items_in_collection": False}}})

    # ---- writes ------------------------------------------------------------------
    def write(self, acct, req, rid):
        st = acct.store
        if rid is not None:
            rid = int(rid) if rid.isdigit() else None
            if rid not in st.recs or not st.recs[rid]["active_flag"]:
                return fail(404, "Person not found", "ERR_NOT_FOUND")
        try:
            body = req.json()
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return bad_request("body must be a JSON object")
        err = self._validate(st, body, creating=rid is None)
        if err:
            return bad_request(err)
        ms = self.stamp(now_ms())
        if rid is None:
            p = {"first": None, "last": None, "email": None, "company": None, "phone": None,
                 "created": ms, "updated": ms}
            rid, rec = self.make_record(st, p)
            rec["custom_fields"] = {k: None for k in rec["custom_fields"]}
            st.ids.append(rid)
            st.recs[rid] = rec
        fields = {k: v for k, v in body.items() if k in ("name", "emails", "phones", "org_id",
                                                         "custom_fields", "owner_id")}
        fields.pop("owner_id", None)
        self.touch(st, rid, ms, fields)
        st.mod[rid] = ms
        return json_response({"success": True, "data": self.v2(st, st.recs[rid])})

    @staticmethod
    def _validate(st, body, creating):
        if creating and not (isinstance(body.get("name"), str) and body["name"].strip()):
            return "name: Required"
        if "name" in body and not (isinstance(body["name"], str) and body["name"].strip()):
            return "name: String must contain at least 1 character(s)"
        for f in ("emails", "phones"):
            if f in body:
                v = body[f]
                if not isinstance(v, list) or not all(
                        isinstance(e, dict) and isinstance(e.get("value"), str) for e in v):
                    return "%s: Expected array of {value, primary, label}" % f
        if "org_id" in body and body["org_id"] is not None and not isinstance(body["org_id"], int):
            return "org_id: Expected number"
        cf = body.get("custom_fields", {})
        if not isinstance(cf, dict):
            return "custom_fields: Expected object"
        known = set(st.__dict__.get("custom_keys", {}).values())
        unknown = [k for k in cf if k not in known]
        if unknown:
            return "custom_fields: Unknown custom field key(s): %s" % ", ".join(unknown)
        return None
