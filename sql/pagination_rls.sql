-- Keyset pagination runs as the caller: row-level security filters every
-- page, and cursors cannot reach another role's rows.
\i test/regress_setup.sql
CREATE SCHEMA pagination_rls;
SET search_path = pagination_rls, public;
CREATE ROLE regress_pagination_a;
CREATE ROLE regress_pagination_b;
CREATE TABLE leads (id int PRIMARY KEY, owner name NOT NULL, updated timestamptz);
INSERT INTO leads
SELECT g, CASE WHEN g % 3 = 0 THEN 'regress_pagination_a' ELSE 'regress_pagination_b' END,
       timestamptz '2024-01-01 00:00+00' + (g % 7) * interval '1 hour'
  FROM generate_series(1, 50) g;
ALTER TABLE leads ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON leads USING (owner = current_user);
GRANT USAGE ON SCHEMA synchub, pagination_rls TO regress_pagination_a, regress_pagination_b;
GRANT EXECUTE ON FUNCTION synchub.paginate(regclass, integer, text, text, jsonb) TO regress_pagination_a, regress_pagination_b;
GRANT SELECT ON leads TO regress_pagination_a, regress_pagination_b;

-- all pages of a role, forwards and backwards, and whose rows they hold
CREATE FUNCTION pg_temp.pages(page_size int, order_by text) RETURNS TABLE(page int, direction text, n int, owners text)
LANGUAGE plpgsql AS $$
DECLARE
    p jsonb;
    i int := 0;
BEGIN
    p := synchub.paginate('pagination_rls.leads', page_size, NULL, order_by);
    LOOP
        i := i + 1;
        page := i; direction := 'forwards'; n := jsonb_array_length(p->'data');
        owners := (SELECT string_agg(DISTINCT r->>'owner', ',') FROM jsonb_array_elements(p->'data') r);
        RETURN NEXT;
        EXIT WHEN p->>'next_cursor' IS NULL;
        p := synchub.paginate('pagination_rls.leads', page_size, p->>'next_cursor', order_by);
    END LOOP;
    WHILE p->>'prev_cursor' IS NOT NULL LOOP
        p := synchub.paginate('pagination_rls.leads', page_size, p->>'prev_cursor', order_by);
        i := i - 1;
        page := i; direction := 'backwards'; n := jsonb_array_length(p->'data');
        owners := (SELECT string_agg(DISTINCT r->>'owner', ',') FROM jsonb_array_elements(p->'data') r);
        RETURN NEXT;
    END LOOP;
END
$$;

SET ROLE regress_pagination_a;
SELECT * FROM pg_temp.pages(5, 'updated DESC');
SELECT count(*) AS visible FROM leads;
SELECT synchub.paginate('pagination_rls.leads', 100, NULL, 'updated DESC')->'data'
     = (SELECT jsonb_agg(to_jsonb(l) ORDER BY updated DESC, id) FROM leads l) AS same_as_order_by;
SELECT synchub.paginate('pagination_rls.leads', 8, NULL, 'updated DESC')->>'next_cursor' AS a_cursor \gset
RESET ROLE;

SET ROLE regress_pagination_b;
SELECT * FROM pg_temp.pages(10, NULL);
-- a's cursor, used by b, shows only b's rows
SELECT jsonb_array_length(p->'data') AS n,
       (SELECT string_agg(DISTINCT r->>'owner', ',') FROM jsonb_array_elements(p->'data') r) AS owners
  FROM synchub.paginate('pagination_rls.leads', 100, :'a_cursor', 'updated DESC') p;
RESET ROLE;

DROP SCHEMA pagination_rls CASCADE;
DROP OWNED BY regress_pagination_a;
DROP OWNED BY regress_pagination_b;
DROP ROLE regress_pagination_a;
DROP ROLE regress_pagination_b;
