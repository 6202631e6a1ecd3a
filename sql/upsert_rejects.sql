-- synchub.bulk_upsert: every reject reason, the rejects table, job and
-- integration ids, and on_reject "error".
\i test/regress_setup.sql
CREATE SCHEMA upsert_rej;
SET search_path = upsert_rej, public;

CREATE TABLE accounts (id integer PRIMARY KEY);
INSERT INTO accounts VALUES (1);
CREATE TABLE leads (
    external_id text PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    age         integer CHECK (age >= 0),
    born        date,
    code        varchar(4),
    account     integer REFERENCES accounts (id)
);
INSERT INTO leads (external_id, email) VALUES ('taken', 'taken@x.org');
DELETE FROM synchub.rejects;

-- one record per reason, among good ones that are stored
SELECT * FROM synchub.bulk_upsert('leads', '[
    {"external_id": "ok1", "email": "ok1@x.org", "age": 30},
    {"external_id": "bad-int", "email": "b1@x.org", "age": "thirty"},
    {"external_id": "bad-date", "email": "b2@x.org", "born": "2024-02-30"},
    {"external_id": "too-long", "email": "b3@x.org", "code": "ABCDE"},
    {"external_id": null, "email": "b4@x.org"},
    {"email": "b5@x.org"},
    {"external_id": "check", "email": "b6@x.org", "age": -1},
    {"external_id": "not-null", "email": null},
    {"external_id": "not-null-missing"},
    {"external_id": "fk", "email": "b7@x.org", "account": 99},
    {"external_id": "other-unique", "email": "taken@x.org"},
    "not an object",
    {"external_id": "bad-array", "email": "b8@x.org", "age": [1]},
    {"external_id": "ok2", "email": "ok2@x.org", "account": 1}
]', '{external_id}', NULL, '{"job_id": 7, "integration_id": 3, "external_id_path": "external_id"}');
SELECT external_id, email, age, account FROM leads ORDER BY external_id;
SELECT record_index, job_id, integration_id, target, external_id, sqlstate, error, record
  FROM synchub.rejects ORDER BY record_index;
SELECT count(*) FILTER (WHERE owner = current_user::regrole) AS mine,
       count(*) FILTER (WHERE at IS NOT NULL) AS stamped
  FROM synchub.rejects;

-- a record rejected by the statement (check) in a larger batch: the rest of
-- the batch is stored
DELETE FROM synchub.rejects;
SELECT * FROM synchub.bulk_upsert('leads',
    (SELECT jsonb_agg(jsonb_build_object('external_id', 'n' || g, 'email', 'n' || g || '@x.org',
                                         'age', CASE WHEN g IN (17, 60) THEN -g ELSE g END))
       FROM generate_series(1, 100) g),
    '{external_id}');
SELECT count(*) FROM leads WHERE external_id LIKE 'n%';
SELECT record_index, external_id, error FROM synchub.rejects ORDER BY record_index;

-- an update that violates a check is rejected; the stored row is kept
DELETE FROM synchub.rejects;
SELECT * FROM synchub.bulk_upsert('leads', '[{"external_id": "ok1", "email": "ok1@x.org", "age": -5},
                                             {"external_id": "ok2", "email": "ok2@x.org", "age": 5}]',
                                  '{external_id}');
SELECT external_id, age FROM leads WHERE external_id IN ('ok1', 'ok2') ORDER BY 1;
SELECT record_index, sqlstate, error FROM synchub.rejects;
-- the row proposed for insertion is checked before the conflict is found, as
-- with INSERT ... ON CONFLICT: leaving out a NOT NULL column is rejected even
-- for a stored key
DELETE FROM synchub.rejects;
SELECT * FROM synchub.bulk_upsert('leads', '[{"external_id": "ok2", "age": 6}]', '{external_id}');
SELECT record_index, sqlstate, error FROM synchub.rejects;

-- a duplicate whose last occurrence is rejected: last wins, so the earlier
-- occurrence is not stored either
DELETE FROM synchub.rejects;
SELECT * FROM synchub.bulk_upsert('leads', '[{"external_id": "dup", "email": "d1@x.org", "age": 1},
                                             {"external_id": "dup", "email": "d2@x.org", "age": "x"}]',
                                  '{external_id}');
SELECT external_id, email, age FROM leads WHERE external_id = 'dup';

-- on_reject "error": the call fails, naming the record, and stores nothing
DELETE FROM synchub.rejects;
SELECT pg_temp.err($$SELECT * FROM synchub.bulk_upsert('leads', '[{"external_id": "e1", "email": "e1@x.org"}, {"external_id": "e2", "email": "e2@x.org", "age": "x"}]', '{external_id}', NULL, '{"on_reject": "error"}')$$);
SELECT pg_temp.err($$SELECT * FROM synchub.bulk_upsert('leads', '[{"external_id": "e1", "email": "e1@x.org"}, {"external_id": "e2", "email": "e2@x.org", "age": -2}]', '{external_id}', NULL, '{"on_reject": "error"}')$$);
SELECT pg_temp.err($$SELECT * FROM synchub.bulk_upsert('leads', '[{"external_id": "e1", "email": "e1@x.org"}, {"email": "e2@x.org"}]', '{external_id}', NULL, '{"on_reject": "error"}')$$);
SELECT count(*) AS stored FROM leads WHERE external_id IN ('e1', 'e2');
SELECT count(*) AS rejects FROM synchub.rejects;
SELECT * FROM synchub.bulk_upsert('leads', '[{"external_id": "e1", "email": "e1@x.org"}]', '{external_id}', NULL, '{"on_reject": "error"}');

-- rejects default to no job and no external id
DELETE FROM synchub.rejects;
SELECT * FROM synchub.bulk_upsert('leads', '[{"external_id": "z", "email": null}]', '{external_id}');
SELECT job_id, integration_id, external_id, record_index FROM synchub.rejects;
SELECT pg_temp.err($$SELECT * FROM synchub.bulk_upsert('leads', '[]', '{external_id}', NULL, '{"external_id_path": "a..b"}')$$);
SELECT pg_temp.err($$SELECT * FROM synchub.bulk_upsert('leads', '[]', '{external_id}', NULL, '{"job_id": "seven"}')$$);

DELETE FROM synchub.rejects;
DROP SCHEMA upsert_rej CASCADE;
