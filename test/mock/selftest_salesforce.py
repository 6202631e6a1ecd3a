"""Self-test of the Salesforce mock (run by selftest.py)."""

import time

from mockclient import Client
from providers.common import parse_time
from selftest_crm import is_json

CONTACTS = 500
AUTH = {"Authorization": "Bearer test-token"}
Q = "/services/data/v60.0/query"
SOQL = ("SELECT Id,Email,FirstName,LastName,Phone,Account.Name,SystemModstamp FROM Contact "
        "WHERE SystemModstamp > %s ORDER BY SystemModstamp, Id")


def query_all(c, soql, path=Q, batch=None, headers=AUTH):
    h = dict(headers)
    if batch:
        h["Sforce-Query-Options"] = "batchSize=%d" % batch
    r = c.get(path, headers=h, query={"q": soql})
    pages, usage = [r], []
    while True:
        assert r.status == 200, (r.status, r.body)
        usage.append(r.headers.get("sforce-limit-info"))
        b = r.json()
        if b["done"]:
            break
        r = c.get(b["nextRecordsUrl"], headers=h)
        pages.append(r)
    recs = [x for p in pages for x in p.json()["records"]]
    return recs, pages, usage


def run(t, srv):
    c = Client(srv.port)
    r = c.get(Q, headers={"Authorization": "Bearer bad"}, query={"q": "SELECT Id FROM Contact"})
    t.check("401 INVALID_SESSION_ID", r.status == 401 and r.json() ==
            [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], r.body)
    queries(t, c)
    deletes(t, c)
    upserts(t, c)
    quota_and_oauth(t, c)
    faults(t, c)


def queries(t, c):
    store = c.ctl("/_mock/contacts?token=test-token")
    recs, pages, usage = query_all(c, SOQL % "2000-01-01T00:00:00Z", batch=200)
    t.check("query pages (batchSize=200)", len(pages) == 3 and len(recs) == CONTACTS and
            pages[0].json()["totalSize"] == CONTACTS and pages[0].json()["done"] is False and
            pages[-1].json()["done"] is True and "nextRecordsUrl" not in pages[-1].json(),
            [len(p.json()["records"]) for p in pages])
    t.check("nextRecordsUrl shape", pages[0].json()["nextRecordsUrl"].startswith(Q + "/01g")
            and pages[0].json()["nextRecordsUrl"].endswith("-200"))
    keys = [(parse_time(x["SystemModstamp"]), x["Id"]) for x in recs]
    t.check("ORDER BY SystemModstamp, Id", keys == sorted(keys))
    by_id = {s["Id"]: s for s in store}
    same = all(x[f] == by_id[x["Id"]][f] for x in recs
               for f in ("Email", "FirstName", "LastName", "Phone", "SystemModstamp")) and all(
        (x["Account"] or {}).get("Name") == (by_id[x["Id"]]["Account"] or {}).get("Name") for x in recs)
    t.check("query matches /_mock/contacts field by field", same)
    x = recs[0]
    t.check("record format", x["attributes"]["type"] == "Contact" and len(x["Id"]) == 18 and
            x["Id"].startswith("003") and x["SystemModstamp"].endswith("+0000") and
            list(x)[:3] == ["attributes", "Id", "Email"], x)
    t.check("Account.Name as nested object", any(r["Account"] and r["Account"]["Name"] for r in recs)
            and any(r["Account"] is None for r in recs))
    u = [int(v.split("=")[1].split("/")[0]) for v in usage]
    t.check("Sforce-Limit-Info on every response", all(usage) and u == sorted(u) and
            u[1] == u[0] + 1, usage)
    recs2, pages2, _ = query_all(c, SOQL % "2000-01-01T00:00:00Z")
    t.check("default batch 2000", len(pages2) == 1 and len(recs2) == CONTACTS)
    cut = sorted(parse_time(s["SystemModstamp"]) for s in store)[CONTACTS // 2]
    lit = store[0]["SystemModstamp"]
    exp = [s for s in store if parse_time(s["SystemModstamp"]) > parse_time(lit)]
    recs3, _, _ = query_all(c, SOQL % lit)
    t.check("WHERE SystemModstamp > literal (+0000 form)", len(recs3) == len(exp), (len(recs3), len(exp)))
    del cut
    ties = {}
    for s in store:
        ties.setdefault(s["SystemModstamp"], []).append(s["Id"])
    ts, ids = max(ties.items(), key=lambda kv: len(kv[1]))
    tb = ("SELECT Id FROM Contact WHERE SystemModstamp > %s OR (SystemModstamp = %s AND Id > '%s') "
          "ORDER BY SystemModstamp, Id" % (ts, ts, sorted(ids)[0]))
    recs4, _, _ = query_all(c, tb)
    exp4 = [s for s in store if parse_time(s["SystemModstamp"]) > parse_time(ts)
            or (s["SystemModstamp"] == ts and s["Id"] > sorted(ids)[0])]
    t.check("tie-break WHERE with OR/AND/parentheses", len(recs4) == len(exp4) and len(ids) >= 50,
            (len(recs4), len(exp4), len(ids)))
    r = c.get(Q, headers=AUTH, query={"q": "SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-01T00:00:00Z'"})
    t.check("quoted datetime -> 400", r.status == 400 and r.json()[0]["errorCode"] == "INVALID_QUERY_FILTER_OPERATOR")
    r = c.get(Q, headers=AUTH, query={"q": "SELECT Id, Foo FROM Contact"})
    t.check("unknown field -> 400 INVALID_FIELD", r.status == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD")
    r = c.get(Q, headers=AUTH, query={"q": "SELECT Id FROM Contact WHERE"})
    t.check("malformed -> 400 MALFORMED_QUERY", r.status == 400 and r.json()[0]["errorCode"] == "MALFORMED_QUERY")
    r = c.get(Q + "/01gDn0000000000-200", headers=AUTH)
    t.check("unknown locator -> 400 INVALID_QUERY_LOCATOR", r.status == 400 and
            r.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR")
    r = c.get(Q, headers=dict(AUTH, **{"Sforce-Query-Options": "batchSize=50"}), query={"q": "SELECT Id FROM Contact"})
    t.check("batchSize below 200 is raised to 200", len(r.json()["records"]) == 200)
    r = c.get(Q, headers=AUTH, query={"q": "SELECT Id FROM Contact ORDER BY Id LIMIT 7"})
    t.check("LIMIT", r.json()["totalSize"] == 7 and r.json()["done"])


def deletes(t, c):
    ids = c.ctl("/_mock/archive", {"token": "test-token", "count": 2})["ids"]
    recs, _, _ = query_all(c, "SELECT Id, IsDeleted FROM Contact")
    t.check("deleted rows leave query", len(recs) == CONTACTS - 2 and not set(ids) & {r["Id"] for r in recs})
    recs, _, _ = query_all(c, "SELECT Id, IsDeleted FROM Contact", path="/services/data/v60.0/queryAll")
    dele = [r for r in recs if r["IsDeleted"]]
    t.check("queryAll shows IsDeleted rows", len(recs) == CONTACTS and sorted(r["Id"] for r in dele) == sorted(ids))
    store = {s["Id"]: s for s in c.ctl("/_mock/contacts?token=test-token")}
    t.check("/_mock/contacts has IsDeleted", all(store[i]["IsDeleted"] for i in ids))


def upserts(t, c):
    url = "/services/data/v60.0/composite/sobjects/Contact/Ext_Id__c"
    recs = [{"attributes": {"type": "Contact"}, "Ext_Id__c": "k1", "LastName": "One", "Email": "one@example.com"},
            {"attributes": {"type": "Contact"}, "Ext_Id__c": "k2", "LastName": "Two", "Email": "bad@"},
            {"attributes": {"type": "Contact"}, "Ext_Id__c": "k3", "FirstName": "NoLast"},
            {"attributes": {"type": "Contact"}, "Ext_Id__c": "k4", "LastName": "Four"}]
    r = c.request("PATCH", url, body={"allOrNone": False, "records": recs}, headers=AUTH)
    b = r.json()
    t.check("composite upsert per-record results in order", r.status == 200 and len(b) == 4 and
            [x["success"] for x in b] == [True, False, False, True] and b[0]["created"] and
            b[1]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS" and b[1]["id"] is None and
            b[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING", r.body)
    r = c.request("PATCH", url, body={"allOrNone": False, "records": recs[:1]}, headers=AUTH)
    t.check("second upsert updates (created false)", r.json()[0]["created"] is False and
            r.json()[0]["id"] == b[0]["id"])
    q, _, _ = query_all(c, "SELECT Id, Ext_Id__c, LastName FROM Contact WHERE Ext_Id__c = 'k4'")
    t.check("upserted custom field queryable", len(q) == 1 and q[0]["LastName"] == "Four")
    r = c.request("PATCH", url, body={"allOrNone": True, "records": recs[:2]}, headers=AUTH)
    t.check("allOrNone rolls back", [x["success"] for x in r.json()] == [False, False] and
            r.json()[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK")
    many = [{"attributes": {"type": "Contact"}, "Ext_Id__c": "m%d" % i, "LastName": "x"} for i in range(201)]
    r = c.request("PATCH", url, body={"allOrNone": False, "records": many}, headers=AUTH)
    t.check("> 200 records -> 400", r.status == 400)
    r = c.request("PATCH", url.replace("Ext_Id__c", "Email"), body={"records": recs[:1]}, headers=AUTH)
    t.check("non external-id field -> 400", r.status == 400)


def quota_and_oauth(t, c):
    c.ctl("/_mock/accounts", {"token": "sq", "contacts": 3, "daily_quota": 2, "refresh_token": "rt-s"})
    h = {"Authorization": "Bearer sq"}
    rs = [c.get(Q, headers=h, query={"q": "SELECT Id FROM Contact"}) for _ in range(3)]
    t.check("daily quota -> 403 REQUEST_LIMIT_EXCEEDED", [r.status for r in rs] == [200, 200, 403] and
            rs[2].json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
            and rs[2].headers["sforce-limit-info"] == "api-usage=2/2" and "retry-after" not in rs[2].headers)
    c.ctl("/_mock/accounts", {"token": "sr", "contacts": 3, "rate_limit": {"requests": 3, "per_seconds": 10}})
    rs = [c.get(Q, headers={"Authorization": "Bearer sr"}, query={"q": "SELECT Id FROM Contact"})
          for _ in range(4)]
    t.check("configured rate_limit -> 403 REQUEST_LIMIT_EXCEEDED", [r.status for r in rs] == [200] * 3 + [403]
            and rs[3].json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED")
    c.ctl("/_mock/accounts", {"token": "so", "contacts": 3, "refresh_token": "rt-o"})
    c.ctl("/_mock/expire", {"token": "so"})
    t.check("expired session -> 401", c.get(Q, headers={"Authorization": "Bearer so"},
                                            query={"q": "SELECT Id FROM Contact"}).status == 401)
    r = c.post("/services/oauth2/token", form={"grant_type": "refresh_token", "refresh_token": "rt-o",
                                               "client_id": "a", "client_secret": "b"})
    b = r.json()
    t.check("oauth2 refresh", r.status == 200 and b["token_type"] == "Bearer" and b["instance_url"])
    r2 = c.get(Q, headers={"Authorization": "Bearer " + b["access_token"]}, query={"q": "SELECT Id FROM Contact"})
    t.check("new session works", r2.status == 200 and r2.json()["totalSize"] == 3)
    bad = c.post("/services/oauth2/token", form={"grant_type": "refresh_token", "refresh_token": "x"})
    t.check("bad refresh -> 400 invalid_grant", bad.status == 400 and bad.json()["error"] == "invalid_grant")


def faults(t, c):
    c.ctl("/_mock/reset", {})
    c.ctl("/_mock/faults", {"match": Q, "mutate_after_page": 1, "count": 3})
    t0 = time.time() * 1000
    h = dict(AUTH, **{"Sforce-Query-Options": "batchSize=200"})
    r = c.get(Q, headers=h, query={"q": "SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id"})
    first = r.json()
    r2 = c.get(first["nextRecordsUrl"], headers=h)
    r3 = c.get(r2.json()["nextRecordsUrl"], headers=h)
    later = r2.json()["records"] + r3.json()["records"]
    store = c.ctl("/_mock/contacts?token=test-token")
    fresh = {s["Id"] for s in store if parse_time(s["SystemModstamp"]) >= t0}
    t.check("mutate_after_page updated 3 rows after page 1", len(fresh) == 3, len(fresh))
    seen = [x for x in later if x["Id"] in fresh]
    t.check("rows changed mid-cursor are served with their new stamp",
            all(parse_time(x["SystemModstamp"]) >= t0 for x in seen), seen)
    c.ctl("/_mock/faults", {"match": Q, "malformed": True, "after": 1})
    c.get(Q, headers=AUTH, query={"q": "SELECT Id FROM Contact"})
    r = c.get(Q, headers=AUTH, query={"q": "SELECT Id FROM Contact"})
    t.check("malformed after 1", r.status == 200 and not is_json(r.body))
