"""Base of the CRM provider modules: contact store and quota bookkeeping."""

from datagen import people
from providers.common import now_ms, pick


class Store:
    """Records of one account, by id, in creation order (= id order)."""

    def __init__(self):
        self.ids = []       # creation order
        self.recs = {}      # id -> provider-format record
        self.mod = {}       # id -> last-modified epoch ms (for filters/sorts)
        self.next_n = 0     # next generator index
        self.seed = 1
        self.version = 0    # bumped on every change (invalidates cached orderings)
        self.cache = {}     # provider-specific cached orderings, keyed with version


class BaseProvider:
    def __init__(self, accounts, recorder, config):
        self.accounts = accounts
        self.recorder = recorder
        self.config = config

    # provider modules implement: make_record(store, person) -> (id, record),
    # touch(store, id, ms, fields), mark_deleted(store, id, ms), is_live(store, id),
    # export(store, id, query), handle(req)

    def new_store(self, acct, persons):
        st = Store()
        st.seed = int(acct.cfg.get("seed", 1))
        acct.store = st
        for p in persons:
            self._add(st, p)
        st.next_n = len(persons)

    def _add(self, st, person):
        rid, rec = self.make_record(st, person)
        st.version += 1
        st.ids.append(rid)
        st.recs[rid] = rec
        st.mod[rid] = self.stamp(person["updated"])
        return rid

    DEFAULT_WINDOW = 10     # seconds of a configured rate_limit without per_seconds

    @staticmethod
    def stamp(ms):
        """Provider precision of a modification time (ms by default)."""
        return ms

    def page_cap(self, default):
        cap = self.config.get("page_limit_cap")
        return min(default, cap) if cap else default

    def contacts(self, acct, query):
        st = acct.store
        return [self.export(st, i, query) for i in st.ids]

    def _norm_ids(self, st, ids):
        if ids is None:
            return None
        sample = st.ids[0] if st.ids else None
        if isinstance(sample, int):
            return [int(i) for i in ids]
        return [str(i) for i in ids]

    def update(self, acct, ids, count, fields):
        st = acct.store
        chosen = pick(st.recs, lambda i: self.is_live(st, i), self._norm_ids(st, ids),
                      count if ids is None else None)
        ms = self.stamp(now_ms())
        for i in chosen:
            self.touch(st, i, ms, fields or {})
            st.mod[i] = ms
        return chosen

    def archive(self, acct, ids, count):
        st = acct.store
        chosen = pick(st.recs, lambda i: self.is_live(st, i), self._norm_ids(st, ids),
                      count if ids is None else None)
        ms = self.stamp(now_ms())
        for i in chosen:
            self.mark_deleted(st, i, ms)
        return chosen

    def create(self, acct, count):
        st = acct.store
        # generate as if the account had more people, then stamp them now
        fresh = people(st.next_n + count, st.seed, now_ms())[st.next_n:]
        ms = self.stamp(now_ms())
        out = []
        for p in fresh:
            p = dict(p, created=ms, updated=ms,
                     email=p["email"].replace("@", ".new%d@" % st.next_n, 1))
            out.append(self._add(st, p))
            st.next_n += 1
        return out

    def reset_counters(self, acct):
        acct.extra.pop("search_limiter", None)

    def count_request(self, acct, req):
        """Attribute the request to the account (stats) and the daily quota."""
        req.account = acct.key

    def throttled(self, acct, req):
        acct.throttle_count += 1
        self.recorder.note_throttled(acct.key)
