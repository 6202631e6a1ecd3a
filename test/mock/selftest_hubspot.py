"""Self-test of the HubSpot mock (run by selftest.py)."""

import time

from mockclient import Client
from providers.common import parse_time
from selftest_crm import is_json, page_rate

CONTACTS = 1000
AUTH = {"Authorization": "Bearer test-token"}
LIST = "/crm/v3/objects/contacts"
SEARCH = LIST + "/search"


def list_all(c, headers, extra=None, limit=100):
    out, after, pages = [], None, 0
    while True:
        q = {"limit": limit, "properties": "email,firstname,lastname,company,phone"}
        q.update(extra or {})
        if after:
            q["after"] = after
        r = c.get(LIST, headers=headers, query=q)
        assert r.status == 200, (r.status, r.body)
        body = r.json()
        out += body["results"]
        pages += 1
        nxt = body.get("paging", {}).get("next")
        if not nxt:
            return out, pages
        after = nxt["after"]


def search_all(c, body, headers=AUTH):
    out, after = [], None
    while True:
        b = dict(body)
        if after:
            b["after"] = after
        r = c.post(SEARCH, body=b, headers=headers)
        if r.status == 429:
            time.sleep(0.25)
            continue
        assert r.status == 200, (r.status, r.body)
        page = r.json()
        out += page["results"]
        nxt = page.get("paging", {}).get("next")
        if not nxt:
            return out, page["total"]
        after = nxt["after"]


def run(t, srv):
    c = Client(srv.port)
    auth(t, c)
    listing(t, c)
    search(t, c)
    upsert(t, c)
    limits(t, c)
    faults(t, c, srv)


def auth(t, c):
    r = c.get(LIST, headers={"Authorization": "Bearer nope"})
    b = r.json()
    t.check("401 INVALID_AUTHENTICATION", r.status == 401 and b["status"] == "error"
            and b["category"] == "INVALID_AUTHENTICATION" and "correlationId" in b, r.body)
    t.check("401 without a token", c.get(LIST).status == 401)
    c.ctl("/_mock/accounts", {"token": "oauth-a", "contacts": 5, "seed": 2,
                              "refresh_token": "rt-a", "client_id": "cid", "client_secret": "cs"})
    h = {"Authorization": "Bearer oauth-a"}
    t.check("second account works", c.get(LIST, headers=h).status == 200)
    c.ctl("/_mock/expire", {"token": "oauth-a"})
    t.check("expired token -> 401", c.get(LIST, headers=h).status == 401)
    form = {"grant_type": "refresh_token", "refresh_token": "rt-a", "client_id": "cid",
            "client_secret": "cs"}
    r = c.post("/oauth/v1/token", form=form)
    b = r.json()
    t.check("refresh issues a token", r.status == 200 and b["access_token"] and
            b["refresh_token"] == "rt-a" and b["expires_in"] > 0, r.body)
    r2 = c.get(LIST, headers={"Authorization": "Bearer " + b["access_token"]})
    t.check("refreshed token reaches the same account", r2.status == 200
            and len(r2.json()["results"]) == 5)
    bad = c.post("/oauth/v1/token", form=dict(form, refresh_token="wrong"))
    t.check("bad refresh token -> 400", bad.status == 400 and bad.json()["status"] == "BAD_REFRESH_TOKEN")
    wrong = c.post("/oauth/v1/token", form=dict(form, client_secret="x"))
    t.check("wrong client secret -> 400", wrong.status == 400)
    c.ctl("/_mock/accounts", {"token": "short", "contacts": 1, "token_ttl": 0.3})
    hs = {"Authorization": "Bearer short"}
    ok1 = c.get(LIST, headers=hs).status
    time.sleep(0.35)
    t.check("token_ttl: token expires by itself", ok1 == 200 and c.get(LIST, headers=hs).status == 401)


def listing(t, c):
    got, pages = list_all(c, AUTH)
    store = c.ctl("/_mock/contacts?token=test-token")
    live = [s for s in store if not s["archived"]]
    t.check("list pages to the end", pages == 10 and len(got) == CONTACTS, (pages, len(got)))
    same = all(g["id"] == s["id"] and all(g["properties"][k] == s["properties"][k]
                                          for k in g["properties"]) and g["updatedAt"] == s["updatedAt"]
               for g, s in zip(got, live))
    t.check("list matches /_mock/contacts field by field", same and len(got) == len(live))
    props = got[0]["properties"]
    t.check("list returns requested + always properties",
            set(props) == {"email", "firstname", "lastname", "company", "phone", "createdate",
                           "hs_object_id", "lastmodifieddate"}, props)
    r = c.get(LIST, headers=AUTH)
    t.check("default limit 10 and default properties", len(r.json()["results"]) == 10 and
            "phone" not in r.json()["results"][0]["properties"])
    r = c.get(LIST, headers=AUTH, query={"limit": 101})
    t.check("limit > 100 -> 400", r.status == 400 and r.json()["category"] == "VALIDATION_ERROR")
    c.ctl("/_mock/config", {"page_limit_cap": 50})
    r = c.get(LIST, headers=AUTH, query={"limit": 60})
    t.check("page_limit_cap lowers the maximum page", r.status == 400 and
            c.get(LIST, headers=AUTH, query={"limit": 50}).status == 200)
    c.ctl("/_mock/config", {"page_limit_cap": None})
    ties = {}
    for s in store:
        ties[s["properties"]["lastmodifieddate"]] = ties.get(s["properties"]["lastmodifieddate"], 0) + 1
    t.check("data has a block of identical timestamps", max(ties.values()) >= 100, max(ties.values()))
    t.check("data has unicode names, null phones and companies",
            any(ord(ch) > 127 for s in store for ch in s["properties"]["firstname"])
            and any(s["properties"]["phone"] is None for s in store)
            and any(s["properties"]["company"] is None for s in store))
    emails = [s["properties"]["email"] for s in store]
    t.check("emails unique", len(set(emails)) == len(emails))
    before = {s["id"]: s for s in store}
    ids = c.ctl("/_mock/archive", {"token": "test-token", "count": 3})["ids"]
    got2, _ = list_all(c, AUTH)
    arch, _ = list_all(c, AUTH, {"archived": "true"})
    t.check("archived records leave the default list", len(got2) == CONTACTS - 3
            and not set(ids) & {g["id"] for g in got2})
    t.check("archived=true lists them with archivedAt, lastmodifieddate unchanged",
            [a["id"] for a in arch] == ids and all(a["archived"] and a["archivedAt"] for a in arch)
            and all(a["properties"]["lastmodifieddate"] == before[a["id"]]["properties"]["lastmodifieddate"]
                    for a in arch))
    store = c.ctl("/_mock/contacts?token=test-token")
    t.check("/_mock/contacts includes archived ones", sum(s["archived"] for s in store) == 3)
    upd = c.ctl("/_mock/update", {"token": "test-token", "count": 2, "fields": {"firstname": "Zed"}})
    store = {s["id"]: s for s in c.ctl("/_mock/contacts?token=test-token")}
    t.check("/_mock/update bumps lastmodifieddate and sets fields",
            all(store[i]["properties"]["firstname"] == "Zed" and
                parse_time(store[i]["properties"]["lastmodifieddate"]) > time.time() * 1000 - 5000
                for i in upd["ids"]) and len(upd["ids"]) == 2)
    new = c.ctl("/_mock/create", {"token": "test-token", "count": 4})["ids"]
    t.check("/_mock/create adds records", len(new) == 4 and all(i in store or True for i in new)
            and len(c.ctl("/_mock/contacts?token=test-token")) == CONTACTS + 4)
    rate, bad = page_rate(c.port, LIST + "?limit=100&properties=email,firstname,lastname,company,phone",
                          AUTH)
    t.check("list pages of 100 at >= 200 pages/s", rate >= 200 and not bad, rate)
    t.note("hubspot list pages of 100 contacts: %.0f pages/s (2 client processes x 2 connections)" % rate)
    c.ctl("/_mock/reset", {})


def search(t, c):
    time.sleep(1.0)
    store = [s for s in c.ctl("/_mock/contacts?token=test-token") if not s["archived"]]
    mods = sorted(parse_time(s["properties"]["lastmodifieddate"]) for s in store)
    cut = mods[len(mods) // 2]
    expect = [s for s in store if parse_time(s["properties"]["lastmodifieddate"]) >= cut]
    body = {"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                           "value": str(cut)}]}],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["email", "lastmodifieddate"], "limit": 200}
    got, total = search_all(c, body)
    t.check("search GTE ms epoch pages to the end", total == len(expect) == len(got)
            and {g["id"] for g in got} == {e["id"] for e in expect}, (total, len(expect), len(got)))
    keys = [(parse_time(g["properties"]["lastmodifieddate"]), int(g["id"])) for g in got]
    t.check("search sorted by lastmodifieddate (then id)", keys == sorted(keys))
    iso = dict(body, filterGroups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GT",
                                                 "value": got[0]["properties"]["lastmodifieddate"]}]}])
    got2, total2 = search_all(c, iso)
    t.check("search GT ISO value", total2 == len(expect) - sum(
        1 for k in keys if k[0] == keys[0][0]), (total2,))
    sl = dict(body, filterGroups=[{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(keys[0][0])},
        {"propertyName": "hs_object_id", "operator": "GT", "value": str(keys[0][1])}]}])
    got3, _ = search_all(c, sl)
    t.check("search hs_object_id GT slicing", [g["id"] for g in got3] ==
            [str(k[1]) for k in keys if k[0] == keys[0][0]][1:])
    time.sleep(1.0)
    r = c.post(SEARCH, body=dict(body, limit=201), headers=AUTH)
    t.check("search limit > 200 -> 400", r.status == 400)
    r = c.post(SEARCH, body=dict(body, after="9900", limit=200), headers=AUTH)
    b = r.json()
    t.check("search after+limit > 10000 -> 400", r.status == 400 and b["status"] == "error"
            and b["category"] == "VALIDATION_ERROR", r.body)
    r = c.post(SEARCH, body=dict(body, after="9800", limit=200), headers=AUTH)
    t.check("search after+limit == 10000 allowed", r.status == 200, r.status)
    t.check("search responses carry no rate-limit headers",
            not any(h.startswith("x-hubspot-ratelimit") for h in r.headers))
    c.ctl("/_mock/config", {"search_cap": 300})
    time.sleep(1.0)
    r1 = c.post(SEARCH, body=dict(body, limit=150), headers=AUTH)
    r2 = c.post(SEARCH, body=dict(body, limit=150, after="150"), headers=AUTH)
    r3 = c.post(SEARCH, body=dict(body, limit=150, after="200"), headers=AUTH)
    t.check("search cap configurable (/_mock/config)", (r1.status, r2.status, r3.status) == (200, 200, 400)
            and r1.json()["total"] == len(expect), (r1.status, r2.status, r3.status))
    c.ctl("/_mock/config", {"search_cap": 10000})
    time.sleep(1.0)
    rs = [c.post(SEARCH, body=body, headers=AUTH) for _ in range(8)]
    codes = [r.status for r in rs]
    t.check("search limited to 5/s per account", codes.count(200) == 5 and codes.count(429) == 3, codes)
    b = rs[-1].json()
    t.check("search 429 body", b["errorType"] == "RATE_LIMIT" and b["policyName"] == "SECONDLY")
    arch = c.ctl("/_mock/archive", {"token": "test-token", "count": 1})["ids"]
    time.sleep(1.0)
    got4, _ = search_all(c, {"limit": 200, "properties": ["email"]})
    t.check("search never returns archived", arch[0] not in {g["id"] for g in got4})


def upsert(t, c):
    url = LIST + "/batch/upsert"
    inputs = [{"id": "new.person@example.com", "idProperty": "email",
               "properties": {"firstname": "New", "lastname": "Person"}},
              {"id": "not-an-email", "idProperty": "email", "properties": {"firstname": "Bad"}}]
    store = c.ctl("/_mock/contacts?token=test-token")
    existing = next(s for s in store if not s["archived"])
    inputs.append({"id": existing["properties"]["email"], "idProperty": "email",
                   "properties": {"phone": "+1-000"}})
    r = c.post(url, body={"inputs": inputs}, headers=AUTH)
    b = r.json()
    t.check("upsert partial -> 207 with errors naming the input", r.status == 207 and
            b["numErrors"] == 1 and b["errors"][0]["context"]["ids"] == ["not-an-email"], r.body)
    res = {x["id"]: x for x in b["results"]}
    t.check("upsert results carry ids (new and existing)", len(b["results"]) == 2 and
            existing["id"] in res and not res[existing["id"]]["new"]
            and any(x["new"] for x in b["results"]))
    t.check("upsert carries rate-limit-free 200 when all ok",
            c.post(url, body={"inputs": inputs[:1]}, headers=AUTH).status == 200)
    store = {s["properties"]["email"]: s for s in c.ctl("/_mock/contacts?token=test-token")}
    t.check("upsert visible in the store", store["new.person@example.com"]["properties"]["lastname"]
            == "Person" and store[existing["properties"]["email"]]["properties"]["phone"] == "+1-000")
    many = [{"id": "p%d@example.com" % i, "idProperty": "email", "properties": {}} for i in range(101)]
    t.check("upsert > 100 inputs -> 400", c.post(url, body={"inputs": many}, headers=AUTH).status == 400)
    dup = c.post(url, body={"inputs": inputs[:1] * 2}, headers=AUTH)
    t.check("duplicate ids in a batch -> 400", dup.status == 400)
    emails = [e for e, s in store.items() if not s["archived"]][:2]
    conflict = c.post(url, body={"inputs": [{"id": emails[0], "idProperty": "email",
                                             "properties": {"email": emails[1]}}]}, headers=AUTH)
    t.check("email change onto another contact -> 409", conflict.status == 409, conflict.body)


def limits(t, c):
    c.ctl("/_mock/accounts", {"token": "rl", "contacts": 3, "rate_limit": {"requests": 5, "per_seconds": 2},
                              "retry_after": "always", "daily_quota": 1000})
    h = {"Authorization": "Bearer rl"}
    rs = [c.get(LIST, headers=h) for _ in range(8)]
    codes = [r.status for r in rs]
    t.check("10-secondly style limit -> 429", codes == [200] * 5 + [429] * 3, codes)
    rem = [int(r.headers["x-hubspot-ratelimit-remaining"]) for r in rs[:5]]
    t.check("rate-limit headers", rem == [4, 3, 2, 1, 0] and
            rs[0].headers["x-hubspot-ratelimit-max"] == "5" and
            rs[0].headers["x-hubspot-ratelimit-interval-milliseconds"] == "2000" and
            rs[0].headers["x-hubspot-ratelimit-daily"] == "1000" and
            rs[4].headers["x-hubspot-ratelimit-daily-remaining"] == "995", rs[0].headers)
    b = rs[5].json()
    t.check("429 body and Retry-After", b["policyName"] == "TEN_SECONDLY_ROLLING" and
            b["errorType"] == "RATE_LIMIT" and b["message"].startswith("You have reached your ten_secondly")
            and "retry-after" in rs[5].headers)
    st = c.ctl("/_mock/stats")
    t.check("stats per account", st["accounts"]["rl"]["requests"] == 8 and
            st["accounts"]["rl"]["throttled"] == 3 and st["accounts"]["rl"]["max_in_window"]["2"] == 8, st["accounts"].get("rl"))
    c.ctl("/_mock/accounts", {"token": "rl2", "contacts": 3, "rate_limit": {"requests": 2, "per_seconds": 1}})
    h2 = {"Authorization": "Bearer rl2"}
    ra = [("retry-after" in c.get(LIST, headers=h2).headers) for _ in range(6)][2:]
    t.check("Retry-After not always sent (alternate)", True in ra and False in ra, ra)
    c.ctl("/_mock/accounts", {"token": "dq", "contacts": 3, "daily_quota": 2})
    h3 = {"Authorization": "Bearer dq"}
    codes = [c.get(LIST, headers=h3).status for _ in range(3)]
    t.check("daily quota -> 429 DAILY", codes == [200, 200, 429] and
            c.get(LIST, headers=h3).json()["policyName"] == "DAILY", codes)


def faults(t, c, srv):
    c.ctl("/_mock/reset", {})
    c.ctl("/_mock/faults", {"match": LIST, "mutate_after_page": 2, "count": 5})
    t0 = time.time() * 1000
    r1 = c.get(LIST, headers=AUTH, query={"limit": 100})
    mid = c.ctl("/_mock/contacts?token=test-token")
    r2 = c.get(LIST, headers=AUTH, query={"limit": 100, "after": r1.json()["paging"]["next"]["after"]})
    after = c.ctl("/_mock/contacts?token=test-token")
    fresh = [s for s in after if parse_time(s["properties"]["lastmodifieddate"]) >= t0]
    t.check("mutate_after_page updates records after page k", r2.status == 200 and len(fresh) == 5
            and sum(parse_time(s["properties"]["lastmodifieddate"]) >= t0 for s in mid) == 0, len(fresh))
    c.ctl("/_mock/faults", {"match": LIST, "malformed": True})
    r = c.get(LIST, headers=AUTH, query={"limit": 100})
    t.check("malformed page", r.status == 200 and not is_json(r.body))
    c.ctl("/_mock/faults", {"match": LIST, "status": 502, "body": "<html>bad gateway</html>"})
    r = c.get(LIST, headers=AUTH)
    t.check("status fault before auth", r.status == 502 and b"bad gateway" in r.body)
    c.ctl("/_mock/faults", {"match": LIST, "close": True})
    try:
        c.get(LIST, headers=AUTH)
        ok = False
    except Exception:
        ok = True
    t.check("close fault", ok)
    reqs = c.ctl("/_mock/requests")
    t.check("requests log records account and status", reqs[0]["account"] == "test-token"
            and reqs[-1]["status"] is None and reqs[-2]["status"] == 502, reqs[-1])
    log = open(srv.log).read()
    t.check("log lines have no query string", "?" not in log and "after=" not in log)
