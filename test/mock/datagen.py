"""Deterministic synthetic contacts for synchub's CRM mocks.

`people(n, seed, now)` returns provider-neutral dicts:
  {"n": index, "first", "last", "email", "company" | None, "phone" | None,
   "created": epoch ms, "updated": epoch ms}
Same (n, seed, now) -> same data. Timestamps spread over the 90 days before
`now`; a block of records shares one updated timestamp (tie-break tests),
some pairs share timestamps too; a few names are non-ASCII; about 5% have no
phone and about 5% no company. Emails are unique.
"""

import random

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael",
         "Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan",
         "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Daniel",
         "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra",
         "Steven", "Ashley", "Paul", "Emily", "Andrew", "Donna", "Joshua",
         "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa",
         "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller",
        "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez",
        "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
        "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
        "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King",
        "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green"]
# (display name, ascii form for the email)
UNICODE_FIRST = [("José", "jose"), ("Zoë", "zoe"), ("Łukasz", "lukasz"),
                 ("Søren", "soren"), ("Ólafur", "olafur"), ("Chloé", "chloe"),
                 ("Jürgen", "jurgen"), ("Ngọc", "ngoc")]
UNICODE_LAST = [("Müller", "muller"), ("Ñúñez", "nunez"), ("Dvořák", "dvorak"),
                ("O'Brien", "obrien"), ("Šimić", "simic"), ("李", "li"),
                ("Østergård", "ostergard"), ("Nguyễn", "nguyen")]
COMPANY_A = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli",
             "Vandelay", "Wonka", "Tyrell", "Cyberdyne", "Soylent", "Massive",
             "Northwind", "Contoso", "Fabrikam", "Pied Piper", "Aperture"]
COMPANY_B = ["Corp", "Inc", "GmbH", "Ltd", "Industries", "Labs", "Systems",
             "Partners", "Holdings", "& Co"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com"]

DAY_MS = 86400 * 1000


def tie_block_size(n):
    return min(250, n // 10)


def people(n, seed, now_ms):
    rng = random.Random(seed)
    start = now_ms - 90 * DAY_MS
    tie_ts = start + rng.randrange(10 * DAY_MS, 80 * DAY_MS)
    tie_n = tie_block_size(n)
    tie_at = set(rng.sample(range(n), tie_n)) if tie_n else set()
    out = []
    prev_updated = None
    for i in range(n):
        if n >= 20 and i % 37 == 5:
            first, first_a = UNICODE_FIRST[(i // 37) % len(UNICODE_FIRST)]
            last, last_a = UNICODE_LAST[(i // 37 + seed) % len(UNICODE_LAST)]
        else:
            first = first_a = rng.choice(FIRST)
            last = last_a = rng.choice(LAST)
            first_a, last_a = first_a.lower(), last_a.lower()
        email = "%s.%s.%d@%s" % (first_a, last_a, i + 1, rng.choice(DOMAINS))
        company = "%s %s" % (rng.choice(COMPANY_A), rng.choice(COMPANY_B))
        phone = "+1-%03d-555-%04d" % (rng.randrange(201, 990), rng.randrange(10000))
        r = rng.random()
        if r < 0.05:
            company = None
        elif r < 0.10:
            phone = None
        if i in tie_at:
            updated = tie_ts
        elif prev_updated is not None and rng.random() < 0.03:
            updated = prev_updated           # an accidental tie with a neighbour
        else:
            updated = start + rng.randrange(90 * DAY_MS - 60000)
        created = updated - rng.randrange(0, 30 * DAY_MS)
        prev_updated = updated
        out.append({"n": i, "first": first, "last": last, "email": email,
                    "company": company, "phone": phone,
                    "created": created, "updated": updated})
    return out
