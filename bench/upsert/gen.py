#!/usr/bin/env python3
"""bench/upsert/gen.py — input files for the bulk upsert benchmark.

   gen.py DIR N

Writes, for N records into a contacts-like table, half of them new and, of
the existing half, 20% changed (the rest equal to the stored rows):
  base.csv      the N/2 stored rows (before the upsert)
  records.json  the N records as one JSON array, in random order
  records.copy  the JSON array as one row of COPY text format (one jsonb
                value sent without SQL quoting, as a driver sends a bind
                parameter)
  records.csv   the same records as CSV (for COPY)
  rows.sql      one INSERT ... ON CONFLICT per record
  batches.sql   INSERT ... ON CONFLICT with 100-row VALUES lists
Every file is deterministic (fixed seed).
"""
import csv
import json
import random
import sys

COLS = ["integration_id", "external_id", "email", "first_name", "last_name",
        "company", "phone", "properties", "remote_updated_at", "archived"]
FIRST = ["Ann", "Bob", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivo", "Jo"]
LAST = ["Smith", "Berg", "Ito", "Novak", "Olsen", "Park", "Rossi", "Silva"]

def contact(i, version):
    r = random.Random(i * 7 + version)
    return {
        "integration_id": 1 + i % 3,
        "external_id": "ext-%07d" % i,
        "email": "user%d@example.com" % i,
        "first_name": r.choice(FIRST),
        "last_name": r.choice(LAST),
        "company": "Company %d" % (i % 5000 + version * 100000),
        "phone": "+1-555-%07d" % r.randrange(10**7),
        "properties": {"source": "import", "score": r.randrange(100), "tags": ["a", "b"][: 1 + i % 2]},
        "remote_updated_at": "2024-%02d-%02dT%02d:%02d:00+00:00" % (1 + i % 12, 1 + i % 28, i % 24, version),
        "archived": i % 10 == 0,
    }

def sql_lit(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        v = json.dumps(v)
    return "'" + str(v).replace("'", "''") + "'"

def csv_row(rec):
    return [json.dumps(rec[c]) if isinstance(rec[c], dict) else
            ("t" if rec[c] is True else "f" if rec[c] is False else rec[c]) for c in COLS]

def main():
    out, n = sys.argv[1], int(sys.argv[2])
    half = n // 2
    rnd = random.Random(42)
    records = []
    with open(out + "/base.csv", "w", newline="") as f:
        w = csv.writer(f)
        for i in range(half):
            base = contact(i, 0)
            w.writerow(csv_row(base))
            changed = rnd.random() < 0.2
            records.append(contact(i, 1) if changed else base)
    records += [contact(i, 0) for i in range(half, n)]
    rnd.shuffle(records)

    with open(out + "/records.json", "w") as f:
        json.dump(records, f)
    with open(out + "/records.copy", "w") as f:
        f.write(json.dumps(records).replace("\\", "\\\\") + "\n")
    with open(out + "/records.csv", "w", newline="") as f:
        w = csv.writer(f)
        for rec in records:
            w.writerow(csv_row(rec))

    cols = ", ".join(COLS)
    upd = ", ".join("%s = EXCLUDED.%s" % (c, c) for c in COLS[2:])
    cmp_ = "(c.%s) IS DISTINCT FROM (EXCLUDED.%s)" % (", c.".join(COLS[2:]), ", EXCLUDED.".join(COLS[2:]))
    tail = (" ON CONFLICT (integration_id, external_id) DO UPDATE SET %s WHERE %s;\n" % (upd, cmp_))
    with open(out + "/rows.sql", "w") as f:
        f.write("BEGIN;\n")
        for rec in records:
            f.write("INSERT INTO contacts AS c (%s) VALUES (%s)%s"
                    % (cols, ", ".join(sql_lit(rec[c]) for c in COLS), tail))
        f.write("COMMIT;\n")
    with open(out + "/batches.sql", "w") as f:
        f.write("BEGIN;\n")
        for s in range(0, n, 100):
            vals = ",\n".join("(%s)" % ", ".join(sql_lit(rec[c]) for c in COLS)
                              for rec in records[s:s + 100])
            f.write("INSERT INTO contacts AS c (%s) VALUES %s%s" % (cols, vals, tail))
        f.write("COMMIT;\n")

main()
