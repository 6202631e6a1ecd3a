-- synchub.bulk_upsert runs as the caller: privileges, row-level security,
-- triggers, defaults and generated columns apply as with INSERT ... ON
-- CONFLICT; synchub.rejects shows a role only its own rejects.
\i test/regress_setup.sql
CREATE SCHEMA upsert_sec;
SET search_path = upsert_sec, public;

CREATE TABLE accounts (
    id        text PRIMARY KEY,
    tenant    text NOT NULL,
    email     text,
    seats     integer NOT NULL DEFAULT 5,
    plan      text DEFAULT 'free',
    seat_cost integer GENERATED ALWAYS AS (seats * 10) STORED
);
CREATE TABLE audit (op text, id text, email text);
CREATE FUNCTION lower_email() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.email := lower(NEW.email);
    RETURN NEW;
END
$$;
CREATE FUNCTION log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO upsert_sec.audit VALUES (TG_OP, NEW.id, NEW.email);
    RETURN NULL;
END
$$;
CREATE TRIGGER accounts_lower BEFORE INSERT OR UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION lower_email();
CREATE TRIGGER accounts_log AFTER INSERT OR UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION log_change();
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY accounts_tenant ON accounts
    USING (tenant = current_user) WITH CHECK (tenant = current_user);

CREATE ROLE regress_upsert_writer;
CREATE ROLE regress_upsert_reader;
GRANT USAGE ON SCHEMA synchub, upsert_sec TO regress_upsert_writer, regress_upsert_reader;
GRANT EXECUTE ON FUNCTION synchub.bulk_upsert(regclass, jsonb, text[], jsonb, jsonb)
    TO regress_upsert_writer, regress_upsert_reader;
GRANT SELECT, INSERT ON synchub.rejects TO regress_upsert_writer, regress_upsert_reader;
GRANT SELECT, INSERT, UPDATE ON accounts TO regress_upsert_writer;
GRANT INSERT ON audit TO regress_upsert_writer;
GRANT SELECT ON accounts TO regress_upsert_reader;

-- a reject made by the owner, which the writer must not see
DELETE FROM synchub.rejects;
SELECT * FROM synchub.bulk_upsert('accounts', '[{"id": null}]', '{id}');
INSERT INTO accounts (id, tenant, email) VALUES ('other-1', 'someone_else', 'x@y.org');

SET ROLE regress_upsert_writer;
-- defaults and generated columns on insert; the BEFORE trigger lowers the
-- email; a row for another tenant fails the policy and is rejected
SELECT * FROM synchub.bulk_upsert('accounts', '[
    {"id": "w-1", "tenant": "regress_upsert_writer", "email": "ANN@X.ORG"},
    {"id": "w-2", "tenant": "regress_upsert_writer", "email": "bob@x.org", "seats": 2, "plan": "pro", "seat_cost": 1},
    {"id": "w-3", "tenant": "someone_else", "email": "eve@x.org"}
]', '{id}');
SELECT id, tenant, email, seats, plan, seat_cost FROM accounts ORDER BY id;
-- a stored row the policy hides cannot be updated either
SELECT * FROM synchub.bulk_upsert('accounts', '[{"id": "other-1", "tenant": "regress_upsert_writer", "email": "mine@x.org"}]', '{id}');
-- unchanged rows fire no trigger; changed ones update, and the generated
-- column follows
SELECT * FROM synchub.bulk_upsert('accounts', '[
    {"id": "w-1", "tenant": "regress_upsert_writer", "email": "ann@x.org"},
    {"id": "w-2", "tenant": "regress_upsert_writer", "email": "bob@x.org", "seats": 3}
]', '{id}');
SELECT id, email, seats, plan, seat_cost FROM accounts ORDER BY id;
-- the writer sees its own rejects only
SELECT record_index, external_id, sqlstate, error, owner FROM synchub.rejects ORDER BY id;
RESET ROLE;
SELECT op, id, email FROM audit ORDER BY op, id;
SELECT count(*) AS all_rejects FROM synchub.rejects;

-- a role without INSERT on the target is refused by the executor, before
-- any record is touched, and nothing is rejected
SET ROLE regress_upsert_reader;
SELECT pg_temp.err($$SELECT * FROM synchub.bulk_upsert('accounts', '[{"id": "r-1", "tenant": "regress_upsert_reader"}]', '{id}')$$);
SELECT count(*) AS reader_rejects FROM synchub.rejects;
RESET ROLE;
-- INSERT without UPDATE is refused too (the statement may update)
GRANT INSERT ON accounts TO regress_upsert_reader;
SET ROLE regress_upsert_reader;
SELECT pg_temp.err($$SELECT * FROM synchub.bulk_upsert('accounts', '[{"id": "r-1", "tenant": "regress_upsert_reader"}]', '{id}')$$);
RESET ROLE;
-- without EXECUTE the function cannot be called at all
CREATE ROLE regress_upsert_nobody;
SET ROLE regress_upsert_nobody;
SELECT pg_temp.err($$SELECT * FROM synchub.bulk_upsert('upsert_sec.accounts', '[]', '{id}')$$);
RESET ROLE;
SELECT count(*) AS reader_rows FROM accounts WHERE id LIKE 'r-%';

DELETE FROM synchub.rejects;
DROP SCHEMA upsert_sec CASCADE;
REVOKE ALL ON synchub.rejects FROM regress_upsert_writer, regress_upsert_reader;
REVOKE ALL ON FUNCTION synchub.bulk_upsert(regclass, jsonb, text[], jsonb, jsonb)
    FROM regress_upsert_writer, regress_upsert_reader;
REVOKE ALL ON SCHEMA synchub FROM regress_upsert_writer, regress_upsert_reader;
DROP ROLE regress_upsert_writer;
DROP ROLE regress_upsert_reader;
DROP ROLE regress_upsert_nobody;
