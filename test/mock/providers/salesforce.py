"""Salesforce REST (Contact) as synchub's mock serves it.

GET   /services/data/vNN.0/query?q=SOQL        (and /queryAll: deleted rows too)
GET   /services/data/vNN.0/query/<locator>-<n>  next batch (nextRecordsUrl)
PATCH /services/data/vNN.0/composite/sobjects/Contact/<ExternalIdField>
POST  /services/oauth2/token                    refresh_token grant
Every API response carries `Sforce-Limit-Info: api-usage=U/M`.
"""

import collections
import re
import secrets
import time

from mockhttp import json_response
from providers import soql
from providers.base import BaseProvider
from providers.common import iso_sf, now_ms, parse_time, valid_email

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DATA_RE = re.compile(r"^/services/data/(v\d+\.\d+)(/.*)$")
LOCATOR_TTL = 15 * 60
MAX_LOCATORS = 10
DEFAULT_QUOTA = 1000000
FIELDS = ["Id", "FirstName", "LastName", "Name", "Email", "Phone", "Title", "AccountId",
          "Account.Name", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted"]
TYPES = {"CreatedDate": "datetime", "LastModifiedDate": "datetime",
         "SystemModstamp": "datetime", "IsDeleted": "boolean"}
WRITABLE = {"FirstName", "LastName", "Email", "Phone", "Title", "AccountId", "MobilePhone",
            "Department", "Description", "MailingCity", "MailingCountry", "Salutation"}
READ_ONLY = {"Id", "Name", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted"}


def sf_id(prefix, n):
    """18-character Salesforce id; base62 serial so string order = creation order."""
    digits = ""
    for _ in range(5):
        n, r = divmod(n, 62)
        digits = B62[r] + digits
    base = prefix + "Dn00000" + digits
    suffix = ""
    for chunk in range(3):
        bits = 0
        for j, ch in enumerate(base[chunk * 5:chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << j
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return base + suffix


def errors(status, code, message, fields=None):
    err = {"message": message, "errorCode": code}
    if fields is not None:
        err["fields"] = fields
    return json_response([err], status)


class Provider(BaseProvider):
    # ---- store ------------------------------------------------------------
    def make_record(self, st, p):
        rid = sf_id("003", len(st.ids) + 1)
        accts = st.__dict__.setdefault("sf_accounts", {})
        account = None
        acct_id = None
        if p["company"]:
            acct_id = accts.setdefault(p["company"], sf_id("001", len(accts) + 1))
            account = {"attributes": {"type": "Account",
                                      "url": "/services/data/v60.0/sobjects/Account/" + acct_id},
                       "Name": p["company"]}
        rec = {"attributes": {"type": "Contact",
                              "url": "/services/data/v60.0/sobjects/Contact/" + rid},
               "Id": rid, "FirstName": p["first"], "LastName": p["last"],
               "Name": "%s %s" % (p["first"], p["last"]), "Email": p["email"],
               "Phone": p["phone"], "Title": None, "AccountId": acct_id, "Account": account,
               "CreatedDate": iso_sf(p["created"]), "LastModifiedDate": iso_sf(p["updated"]),
               "SystemModstamp": iso_sf(p["updated"]), "IsDeleted": False}
        return rid, rec

    def is_live(self, st, rid):
        return not st.recs[rid]["IsDeleted"]

    def touch(self, st, rid, ms, fields):
        st.version += 1
        rec = st.recs[rid]
        rec.update(fields)
        rec["Name"] = " ".join(x for x in (rec.get("FirstName"), rec.get("LastName")) if x)
        rec["LastModifiedDate"] = rec["SystemModstamp"] = iso_sf(ms)

    def mark_deleted(self, st, rid, ms):
        st.version += 1
        # deleting a row stamps it, so queryAll ... WHERE SystemModstamp > X finds it
        rec = st.recs[rid]
        rec["IsDeleted"] = True
        rec["LastModifiedDate"] = rec["SystemModstamp"] = iso_sf(ms)
        st.mod[rid] = ms

    def export(self, st, rid, query):
        return st.recs[rid]

    def reset_counters(self, acct):
        acct.extra.pop("locators", None)

    # ---- plumbing -----------------------------------------------------------
    def _quota(self, acct):
        return acct.daily_quota if acct.daily_quota is not None else DEFAULT_QUOTA

    def _limit_info(self, acct, resp):
        resp.headers["Sforce-Limit-Info"] = "api-usage=%d/%d" % (acct.used, self._quota(acct))
        return resp

    async def handle(self, req):
        if req.path == "/services/oauth2/token" and req.method == "POST":
            return self.oauth(req)
        m = DATA_RE.match(req.path)
        if not m:
            return errors(404, "NOT_FOUND", "The requested resource does not exist")
        acct = self.accounts.resolve(req.bearer())
        if acct is None:
            return errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        req.account = acct.key
        if acct.used >= self._quota(acct):
            self.throttled(acct, req)
            return self._limit_info(acct, errors(403, "REQUEST_LIMIT_EXCEEDED",
                                                 "TotalRequests Limit exceeded."))
        if acct.limiter and not acct.limiter.allow():
            self.throttled(acct, req)
            return self._limit_info(acct, errors(403, "REQUEST_LIMIT_EXCEEDED",
                                                 "ConcurrentPerOrgLongTxn Limit exceeded."))
        acct.used += 1
        req.version_path = "/services/data/" + m.group(1)
        return self._limit_info(acct, self.route(acct, req, m.group(2).rstrip("/")))

    def route(self, acct, req, sub):
        if req.method == "GET" and sub in ("/query", "/queryAll"):
            return self.query(acct, req, sub == "/queryAll")
        if req.method == "GET" and (sub.startswith("/query/") or sub.startswith("/queryAll/")):
            return self.more(acct, req, sub.split("/", 2)[2], sub.startswith("/queryAll"))
        if req.method == "PATCH" and sub.startswith("/composite/sobjects/Contact/"):
            return self.upsert(acct, req, sub.rsplit("/", 1)[1])
        if req.method == "GET" and sub.startswith("/sobjects/Contact/"):
            rec = acct.store.recs.get(sub.rsplit("/", 1)[1])
            if rec is None or rec["IsDeleted"]:
                return errors(404, "NOT_FOUND", "The requested resource does not exist")
            return json_response(rec)
        return errors(404, "NOT_FOUND", "The requested resource does not exist")

    def oauth(self, req):
        acct, token = self.accounts.refresh(req.form())
        if acct is None:
            return json_response({"error": "invalid_grant",
                                  "error_description": "expired access/refresh token"}, 400)
        host = "http://" + req.headers.get("host", "127.0.0.1")
        return json_response({"access_token": token, "instance_url": host,
                              "id": host + "/id/00DDn00000000001AAA/005Dn00000000001AAA",
                              "token_type": "Bearer", "issued_at": str(now_ms()),
                              "signature": secrets.token_urlsafe(32),
                              "scope": "api refresh_token"})

    # ---- query --------------------------------------------------------------------
    def _field_map(self, st):
        names = FIELDS + sorted(st.__dict__.get("custom_fields", set()))
        return {n.lower(): n for n in names}

    @staticmethod
    def _getter(st, rid):
        rec = st.recs[rid]

        def get(f):
            if f == "SystemModstamp" or f == "LastModifiedDate":
                return st.mod[rid]
            if f == "CreatedDate":
                return parse_time(rec[f])
            if f == "Account.Name":
                return rec["Account"]["Name"] if rec.get("Account") else None
            return rec.get(f)
        return get

    def query(self, acct, req, include_deleted):
        st = acct.store
        q = req.query.get("q")
        if not q:
            return errors(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            qry = soql.parse(q, self._field_map(st), TYPES)
        except soql.SoqlError as e:
            return errors(400, e.code, "\n%s\n^\nERROR at Row:1:Column:1\n%s" % (q, e.message))
        rows = []
        for rid in st.ids:
            if st.recs[rid]["IsDeleted"] and not include_deleted:
                continue
            if qry.where is None or qry.where(self._getter(st, rid)):
                rows.append(rid)
        order = qry.order or [("Id", False, False)]
        for f, desc, nulls_last in reversed(order):
            def key(rid, f=f, nl=nulls_last, desc=desc):
                v = self._getter(st, rid)(f)
                isnull = v is None
                return ((not isnull) if (nl == desc) else isnull, v if v is not None else 0)
            rows.sort(key=key, reverse=desc)
        rows = rows[qry.offset:]
        if qry.limit is not None:
            rows = rows[:qry.limit]
        batch = 2000
        m = re.search(r"batchSize\s*=\s*(\d+)", req.headers.get("sforce-query-options", ""))
        if m:
            batch = min(2000, max(200, int(m.group(1))))
        batch = self.page_cap(batch)
        cur = {"rows": rows, "fields": qry.fields, "batch": batch, "touched": time.time()}
        return self._page(acct, req, cur, 0, include_deleted)

    def _page(self, acct, req, cur, offset, all_rows):
        st = acct.store
        chunk = cur["rows"][offset:offset + cur["batch"]]
        out = {"totalSize": len(cur["rows"]), "done": True,
               "records": [self._render(st, rid, cur["fields"]) for rid in chunk]}
        nxt = offset + len(chunk)
        locs = acct.extra.setdefault("locators", collections.OrderedDict())
        loc = cur.get("id")
        if nxt < len(cur["rows"]):
            if loc is None:
                loc = cur["id"] = "01g" + sf_id("Dn", secrets.randbelow(62 ** 5))[2:17]
                locs[loc] = cur
                while len(locs) > MAX_LOCATORS:
                    locs.popitem(last=False)    # the oldest cursor is released
            cur["touched"] = time.time()
            out["done"] = False
            out["nextRecordsUrl"] = "%s/%s/%s-%d" % (
                req.version_path, "queryAll" if all_rows else "query", loc, nxt)
        elif loc is not None:
            locs.pop(loc, None)
        req.page = True
        return json_response(out)

    def more(self, acct, req, tail, all_rows):
        loc, _, off = tail.rpartition("-")
        cur = acct.extra.get("locators", {}).get(loc)
        if cur is None or not off.isdigit() or time.time() - cur["touched"] > LOCATOR_TTL:
            return errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(acct, req, cur, int(off), all_rows)

    @staticmethod
    def _render(st, rid, fields):
        rec = st.recs[rid]
        out = {"attributes": rec["attributes"]}
        for f in fields:
            if f == "Account.Name":
                out["Account"] = ({"attributes": rec["Account"]["attributes"],
                                   "Name": rec["Account"]["Name"]} if rec.get("Account") else None)
            else:
                out[f] = rec.get(f)
        return out

    # ---- composite upsert -----------------------------------------------------------
    def _ext_ok(self, acct, field):
        allowed = set(acct.cfg.get("external_id_fields", []))
        return field == "Id" or field.endswith("__c") or field in allowed

    def upsert(self, acct, req, ext):
        st = acct.store
        if not self._ext_ok(acct, ext):
            return errors(400, "NOT_FOUND", "Provided external ID field does not exist or is "
                          "not accessible: %s" % ext)
        try:
            body = req.json()
            recs = body["records"]
            if not isinstance(recs, list):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return errors(400, "JSON_PARSER_ERROR", "Unexpected body: a JSON object with "
                          "a records array is required")
        if len(recs) > self.page_cap(200):
            return errors(400, "EXCEEDED_ID_LIMIT", "Record limit exceeded: at most 200 "
                          "records per request")
        for r in recs:
            for k in (r if isinstance(r, dict) else {}):
                if k != "attributes" and k not in WRITABLE and k not in READ_ONLY \
                        and not k.endswith("__c"):
                    return errors(400, "INVALID_FIELD",
                                  "No such column '%s' on sobject of type Contact" % k)
        keys = collections.Counter(str(r.get(ext)) for r in recs if isinstance(r, dict))
        index = self._index(st, ext)
        results, plan = [], []
        for r in recs:
            err, target = self._check(st, r, ext, index, keys)
            results.append(err)
            plan.append(target)
        all_or_none = bool(body.get("allOrNone"))
        if all_or_none and any(results):
            rolled = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                      "message": "Record rolled back because not all records were valid and "
                                 "the request was using AllOrNone header", "fields": []}
            return json_response([{"id": None, "success": False, "errors": e or [rolled]}
                                  for e in results])
        out = []
        for r, err, target in zip(recs, results, plan):
            if err:
                out.append({"id": None, "success": False, "errors": err})
                continue
            rid, created = self._write(st, r, ext, target)
            if created:
                index[self._norm(ext, r.get(ext))] = rid
            out.append({"id": rid, "success": True, "errors": [], "created": created})
        return json_response(out)

    @staticmethod
    def _norm(ext, v):
        return str(v).lower() if ext == "Email" else str(v)

    def _index(self, st, ext):
        return {self._norm(ext, st.recs[r].get(ext)): r for r in st.ids
                if not st.recs[r]["IsDeleted"] and st.recs[r].get(ext) is not None}

    def _check(self, st, r, ext, index, keys):
        def err(code, msg, fields):
            return [{"statusCode": code, "message": msg, "fields": fields}], None
        if not isinstance(r, dict) or (r.get("attributes") or {}).get("type") != "Contact":
            return err("INVALID_TYPE", "Must send a concrete entity type.", [])
        key = r.get(ext)
        if key in (None, ""):
            return err("MISSING_ARGUMENT", "%s not specified" % ext, [ext])
        if keys[str(key)] > 1:
            return err("DUPLICATE_VALUE", "Duplicate external id specified: %s" % key, [ext])
        bad = sorted(k for k in r if k in READ_ONLY and k != ext)
        if bad:
            return err("INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: %s. "
                       "Please check the security settings of this field and verify that it is "
                       "read/write for your profile or permission set." % ", ".join(bad), bad)
        if "Email" in r and r["Email"] not in (None, "") and not valid_email(r["Email"]):
            return err("INVALID_EMAIL_ADDRESS", "Email: invalid email address: %s" % r["Email"],
                       ["Email"])
        target = index.get(self._norm(ext, key))
        if target is None and ext == "Id":
            return err("NOT_FOUND", "Provided external ID field does not exist or is not "
                       "accessible: %s" % key, ["Id"])
        if target is None and not r.get("LastName"):
            return err("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]",
                       ["LastName"])
        return None, target

    def _write(self, st, r, ext, target):
        ms = now_ms()
        fields = {k: v for k, v in r.items() if k != "attributes" and not (ext == "Id" and k == "Id")}
        for k in fields:
            if k.endswith("__c"):
                st.__dict__.setdefault("custom_fields", set()).add(k)
        if target is not None:
            self.touch(st, target, ms, fields)
            st.mod[target] = ms
            return target, False
        p = {"first": None, "last": None, "email": None, "company": None, "phone": None,
             "created": ms, "updated": ms}
        rid, rec = self.make_record(st, p)
        rec["Name"] = ""
        st.ids.append(rid)
        st.recs[rid] = rec
        st.mod[rid] = ms
        self.touch(st, rid, ms, fields)
        return rid, True
