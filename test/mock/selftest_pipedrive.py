"""Self-test of the Pipedrive mock (run by selftest.py)."""

import time

from mockclient import Client
from providers.common import parse_time

CONTACTS = 1200
V1 = "/v1/persons"
V2 = "/api/v2/persons"
H = {"x-api-token": "test-token"}


def v1_all(c, limit):
    out, start, pages = [], 0, 0
    while True:
        r = c.get(V1, query={"start": start, "limit": limit, "api_token": "test-token"})
        assert r.status == 200, r.body
        b = r.json()
        out += b["data"] or []
        pages += 1
        pag = b["additional_data"]["pagination"]
        if not pag["more_items_in_collection"]:
            return out, pages, pag
        start = pag["next_start"]


def v2_all(c, query, headers=H):
    out, cursor, pages = [], None, 0
    while True:
        q = dict(query)
        if cursor:
            q["cursor"] = cursor
        r = c.get(V2, query=q, headers=headers)
        assert r.status == 200, r.body
        b = r.json()
        out += b["data"]
        pages += 1
        cursor = b["additional_data"]["next_cursor"]
        if cursor is None:
            return out, pages


def run(t, srv):
    c = Client(srv.port)
    r = c.get(V1, query={"api_token": "nope"})
    t.check("401 unauthorized access", r.status == 401 and r.json()["success"] is False
            and r.json()["error"] == "unauthorized access", r.body)
    t.check("auth by x-api-token header", c.get(V1, headers=H).status == 200)
    t.check("auth by Bearer", c.get(V1, headers={"Authorization": "Bearer test-token"}).status == 200)
    lists(t, c)
    writes(t, c)
    limits(t, c)


def lists(t, c):
    ids = c.ctl("/_mock/archive", {"token": "test-token", "count": 4})["ids"]
    store = c.ctl("/_mock/contacts?token=test-token")
    live = [s for s in store if s["active_flag"]]
    got, pages, last = v1_all(c, 500)
    t.check("v1 pages to the end", pages == 3 and len(got) == CONTACTS - 4 and "next_start" not in last,
            (pages, len(got)))
    t.check("v1 matches /_mock/contacts field by field", got == live)
    t.check("v1 omits deleted persons", not set(ids) & {g["id"] for g in got})
    t.check("/_mock/contacts shows deleted with active_flag false",
            sum(not s["active_flag"] for s in store) == 4)
    r = c.get(V1, query={"limit": 1000}, headers=H)
    t.check("v1 limit capped at 500", len(r.json()["data"]) == 500 and
            r.json()["additional_data"]["pagination"]["limit"] == 500)
    r = c.get(V1, query={"start": 5000}, headers=H)
    t.check("v1 past the end: data null", r.json()["data"] is None)
    g = got[0]
    t.check("v1 record format", g["update_time"].count(":") == 2 and "T" not in g["update_time"] and
            g["email"][0]["primary"] is True and isinstance(g["org_id"], dict) and
            any(len(k) == 40 for k in g), g)
    t.check("v1 empty phone is [{value:'',primary:true}]",
            any(x["phone"] == [{"value": "", "primary": True}] for x in got))
    full, p2 = v2_all(c, {"limit": 500})
    t.check("v2 cursor pages to the end", len(full) == CONTACTS - 4 and p2 == 3)
    v2store = {s["id"]: s for s in c.ctl("/_mock/contacts?token=test-token&format=v2")}
    t.check("v2 matches /_mock/contacts?format=v2", all(x == v2store[x["id"]] for x in full))
    t.check("v2 record format", full[0]["update_time"].endswith("Z") and "T" in full[0]["update_time"]
            and isinstance(full[0]["custom_fields"], dict) and "org_name" not in full[0])
    stamps = sorted(parse_time(x["update_time"]) for x in full)
    since = stamps[len(stamps) // 2]
    inc, _ = v2_all(c, {"limit": 100, "sort_by": "update_time",
                        "updated_since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since / 1000))})
    exp = [x for x in full if parse_time(x["update_time"]) >= since]
    keys = [(parse_time(x["update_time"]), x["id"]) for x in inc]
    t.check("v2 updated_since (inclusive) sorted by update_time", len(inc) == len(exp) and keys == sorted(keys),
            (len(inc), len(exp)))
    r = c.get(V2, query={"limit": 501}, headers=H)
    t.check("v2 limit > 500 -> 400", r.status == 400 and r.json()["success"] is False)
    r = c.get(V2, query={"updated_since": "yesterday"}, headers=H)
    t.check("v2 bad timestamp -> 400", r.status == 400)
    r = c.get("/v1/personFields", headers=H)
    t.check("personFields lists the 40-char custom keys",
            sum(len(f["key"]) == 40 for f in r.json()["data"]) == 2)


def writes(t, c):
    r = c.post(V2, body={"emails": [{"value": "a@b.c", "primary": True}]}, headers=H)
    t.check("POST without name -> 400", r.status == 400 and r.json()["success"] is False)
    r = c.post(V2, body={"name": "Ada Lovelace", "emails": [{"value": "ada@example.com", "primary": True,
                                                             "label": "work"}]}, headers=H)
    b = r.json()
    t.check("POST creates", r.status == 200 and b["success"] and b["data"]["first_name"] == "Ada")
    pid = b["data"]["id"]
    time.sleep(1.05)
    r = c.request("PATCH", "%s/%d" % (V2, pid), body={"phones": [{"value": "+44 1", "primary": True}]},
                  headers=H)
    t.check("PATCH updates update_time", r.status == 200 and r.json()["data"]["phones"][0]["value"] == "+44 1"
            and r.json()["data"]["update_time"] > b["data"]["update_time"], r.body)
    r = c.request("PATCH", "%s/999999" % V2, body={"name": "x"}, headers=H)
    t.check("PATCH unknown id -> 404", r.status == 404)
    r = c.post(V2, body={"name": "X", "custom_fields": {"nope": 1}}, headers=H)
    t.check("unknown custom field -> 400", r.status == 400)
    t.check("GET one", c.get("%s/%d" % (V2, pid), headers=H).json()["data"]["name"] == "Ada Lovelace")


def limits(t, c):
    c.ctl("/_mock/accounts", {"token": "pr", "contacts": 2, "rate_limit": {"requests": 4}})
    h = {"x-api-token": "pr"}
    rs = [c.get(V1, headers=h) for _ in range(6)]
    t.check("2 s window -> 429", [r.status for r in rs] == [200] * 4 + [429] * 2 and
            rs[4].json() == {"success": False, "error": "Request over limit"}, [r.status for r in rs])
    t.check("x-ratelimit headers", [r.headers["x-ratelimit-remaining"] for r in rs[:4]] == ["3", "2", "1", "0"]
            and rs[0].headers["x-ratelimit-limit"] == "4" and 1 <= int(rs[5].headers["x-ratelimit-reset"]) <= 2,
            rs[5].headers)
    c.ctl("/_mock/accounts", {"token": "pq", "contacts": 2, "daily_quota": 2})
    codes = [c.get(V2, headers={"x-api-token": "pq"}).status for _ in range(3)]
    t.check("daily quota -> 429", codes == [200, 200, 429], codes)
    r = c.get(V2, query={"cursor": "bm9wZQ"}, headers=H)
    t.check("bad cursor -> 400", r.status == 400, r.status)
    time.sleep(2.05)
    t.check("window rolls", c.get(V1, headers=h).status == 200)
    st = c.ctl("/_mock/stats")
    t.check("stats: max in 2 s window per account", st["accounts"]["pr"]["max_in_window"]["2"] == 6
            and st["accounts"]["pr"]["throttled"] == 2, st["accounts"]["pr"])
