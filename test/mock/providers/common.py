"""Helpers shared by the CRM provider modules."""

import calendar
import re
import time
import uuid

EMAIL_RE = re.compile(r"^[^@\s,;<>()\[\]]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def now_ms():
    return int(time.time() * 1000)


def valid_email(v):
    return isinstance(v, str) and bool(EMAIL_RE.match(v))


def correlation_id():
    return str(uuid.uuid4())


def _split_ms(ms):
    return time.gmtime(ms // 1000), ms % 1000


def iso_z(ms):
    """2024-05-01T10:00:00.000Z (HubSpot)."""
    t, frac = _split_ms(ms)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03dZ" % frac


def iso_sf(ms):
    """2024-05-01T10:00:00.000+0000 (Salesforce)."""
    t, frac = _split_ms(ms)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03d+0000" % frac


def iso_sec(ms):
    """2024-05-01T10:00:00Z (Pipedrive v2, RFC 3339, whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def space_sec(ms):
    """2024-05-01 10:00:00 (Pipedrive v1, UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000))


ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(value):
    """ISO 8601 / RFC 3339 / 'YYYY-MM-DD HH:MM:SS' / epoch ms -> epoch ms.

    Raises ValueError on anything else. A value without zone is UTC."""
    if isinstance(value, (int, float)):
        return int(value)
    s = str(value).strip()
    if s.isdigit():
        return int(s)
    m = ISO_RE.match(s)
    if not m:
        raise ValueError("not a timestamp: %r" % value)
    y, mo, d, h, mi, sec, frac, tz = m.groups()
    secs = calendar.timegm((int(y), int(mo), int(d), int(h or 0), int(mi or 0),
                            int(sec or 0), 0, 0, 0))
    ms = secs * 1000 + (int((frac or "0")[:3].ljust(3, "0")))
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        tz = tz[1:].replace(":", "")
        ms -= sign * (int(tz[:2]) * 3600 + int(tz[2:]) * 60) * 1000
    return ms


def pick(store_ids, live, ids=None, count=None):
    """Ids to act on: the given ones, else the first `count` live ones."""
    if ids is not None:
        return [i for i in ids if i in store_ids]
    out = []
    for i in store_ids:
        if len(out) >= int(count or 0):
            break
        if live(i):
            out.append(i)
    return out
